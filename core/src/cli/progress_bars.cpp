#include "progress_bars.hpp"

#include <cstdio>

namespace berth::cli {

namespace {

std::string short_of(const std::string& digest) {
  auto colon = digest.find(':');
  std::string hex = colon == std::string::npos ? digest : digest.substr(colon + 1);
  return hex.substr(0, 12);
}

// Podman's sizes: "12.1MiB", "980.0KiB", "512b".
std::string iec(int64_t n) {
  if (n < 1024) {
    return std::to_string(n) + "b";
  }
  const char* units[] = {"KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(n) / 1024.0;
  int u = 0;
  while (v >= 1024.0 && u < 3) {
    v /= 1024.0;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f%s", v, units[u]);
  return buf;
}

}  // namespace

std::string ProgressBars::render(const std::string& short_hex, int64_t done, int64_t total,
                                 int width) {
  std::string head = "Copying blob " + short_hex + " ";
  std::string tail = " " + iec(done) + " / " + (total >= 0 ? iec(total) : std::string("?"));
  int cells = width - static_cast<int>(head.size() + tail.size()) - 3;  // one column spare
  if (cells < 10) {
    cells = 10;
  }
  std::string bar = "[";
  int fill = total > 0 ? static_cast<int>(static_cast<double>(std::min(done, total)) /
                                          static_cast<double>(total) * cells)
                       : 0;
  for (int i = 0; i < cells; ++i) {
    bar += i < fill ? '=' : (i == fill ? '>' : '-');
  }
  bar += "]";
  return head + bar + tail;
}

ProgressBars::Bar& ProgressBars::bar_of(const std::string& hex) {
  for (auto& b : bars_) {
    if (b.hex == hex) {
      return b;
    }
  }
  bars_.push_back(Bar{hex, 0, -1, ""});
  return bars_.back();
}

void ProgressBars::redraw_locked(bool force) {
  auto now = std::chrono::steady_clock::now();
  if (!force && now - last_ < std::chrono::milliseconds(100)) {
    return;
  }
  last_ = now;
  if (drawn_ > 0) {
    out_ << "\x1b[" << drawn_ << "A";
  }
  for (const auto& b : bars_) {
    out_ << "\r\x1b[K"
         << (b.final_text.empty() ? render(b.hex, b.done, b.total, width_) : b.final_text) << "\n";
  }
  drawn_ = bars_.size();
  out_ << std::flush;
}

void ProgressBars::line(const std::string& text) {
  std::lock_guard lock(mu_);
  const std::string prefix = "Copying blob ";
  if (text.rfind(prefix, 0) == 0 && text.size() >= prefix.size() + 12) {
    std::string hex = text.substr(prefix.size(), 12);
    Bar& b = bar_of(hex);
    b.final_text = text;
    redraw_locked(true);
    return;
  }
  // Above the bars: move up over them, print, then draw them again below.
  if (drawn_ > 0) {
    out_ << "\x1b[" << drawn_ << "A\r\x1b[J";
    drawn_ = 0;
  }
  out_ << text << "\n";
  redraw_locked(true);
}

void ProgressBars::bytes(const std::string& digest, int64_t done, int64_t total) {
  std::lock_guard lock(mu_);
  size_t before = bars_.size();
  Bar& b = bar_of(short_of(digest));
  if (!b.final_text.empty()) {
    return;
  }
  b.done = done;
  b.total = total;
  redraw_locked(bars_.size() != before);  // a new bar shows at once
}

void ProgressBars::finish() {
  std::lock_guard lock(mu_);
  if (finished_) {
    return;
  }
  finished_ = true;
  if (!bars_.empty()) {
    redraw_locked(true);
  }
}

}  // namespace berth::cli
