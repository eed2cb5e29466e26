#include "berth/container/log_format.hpp"

#include <cctype>
#include <cstdio>
#include <ctime>

namespace berth::container {

std::string format_log_time(int64_t unix_nanos) {
  time_t secs = static_cast<time_t>(unix_nanos / 1000000000);
  long nanos = static_cast<long>(unix_nanos % 1000000000);
  struct tm tm {};
  localtime_r(&secs, &tm);
  long off = tm.tm_gmtoff;
  char sign = off < 0 ? '-' : '+';
  if (off < 0) {
    off = -off;
  }
  char buf[128];
  std::snprintf(buf, sizeof(buf), "%04d-%02d-%02dT%02d:%02d:%02d.%09ld%c%02ld:%02ld",
                tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                nanos, sign, off / 3600, (off % 3600) / 60);
  return buf;
}

namespace {

bool digits(std::string_view s, size_t pos, size_t n, int& out) {
  if (pos + n > s.size()) {
    return false;
  }
  out = 0;
  for (size_t i = pos; i < pos + n; ++i) {
    if (!std::isdigit(static_cast<unsigned char>(s[i]))) {
      return false;
    }
    out = out * 10 + (s[i] - '0');
  }
  return true;
}

}  // namespace

std::optional<int64_t> parse_rfc3339(std::string_view s) {
  int y, mo, d, h, mi, sec;
  if (!digits(s, 0, 4, y) || s.size() < 19 || s[4] != '-' || !digits(s, 5, 2, mo) || s[7] != '-' ||
      !digits(s, 8, 2, d) || (s[10] != 'T' && s[10] != 't' && s[10] != ' ') ||
      !digits(s, 11, 2, h) || s[13] != ':' || !digits(s, 14, 2, mi) || s[16] != ':' ||
      !digits(s, 17, 2, sec)) {
    return std::nullopt;
  }
  size_t pos = 19;
  int64_t nanos = 0;
  if (pos < s.size() && s[pos] == '.') {
    ++pos;
    int n = 0;
    while (pos < s.size() && std::isdigit(static_cast<unsigned char>(s[pos]))) {
      if (n < 9) {
        nanos = nanos * 10 + (s[pos] - '0');
        ++n;
      }
      ++pos;
    }
    for (; n < 9; ++n) {
      nanos *= 10;
    }
  }
  int64_t offset = 0;
  if (pos < s.size() && (s[pos] == 'Z' || s[pos] == 'z')) {
    ++pos;
  } else if (pos < s.size() && (s[pos] == '+' || s[pos] == '-')) {
    int oh, om;
    if (!digits(s, pos + 1, 2, oh) || pos + 3 >= s.size() || s[pos + 3] != ':' ||
        !digits(s, pos + 4, 2, om)) {
      return std::nullopt;
    }
    offset = (oh * 3600 + om * 60) * (s[pos] == '-' ? -1 : 1);
    pos += 6;
  } else {
    return std::nullopt;
  }
  if (pos != s.size()) {
    return std::nullopt;
  }
  struct tm tm {};
  tm.tm_year = y - 1900;
  tm.tm_mon = mo - 1;
  tm.tm_mday = d;
  tm.tm_hour = h;
  tm.tm_min = mi;
  tm.tm_sec = sec;
  int64_t t = static_cast<int64_t>(timegm(&tm)) - offset;
  return t * 1000000000 + nanos;
}

void append_log_records(std::string& out, int64_t unix_nanos, LogStream stream,
                        std::string_view chunk) {
  const std::string prefix =
      format_log_time(unix_nanos) + (stream == LogStream::Stdout ? " stdout " : " stderr ");
  while (!chunk.empty()) {
    size_t nl = chunk.find('\n');
    out += prefix;
    if (nl == std::string_view::npos) {
      out += "P ";
      out += chunk;
      out += '\n';
      return;
    }
    out += "F ";
    out += chunk.substr(0, nl);
    out += '\n';
    chunk.remove_prefix(nl + 1);
  }
}

std::optional<LogRecord> parse_log_record(std::string_view line) {
  size_t sp1 = line.find(' ');
  if (sp1 == std::string_view::npos) {
    return std::nullopt;
  }
  auto t = parse_rfc3339(line.substr(0, sp1));
  if (!t) {
    return std::nullopt;
  }
  std::string_view rest = line.substr(sp1 + 1);
  LogRecord r;
  r.time = *t;
  if (rest.starts_with("stdout ")) {
    r.stream = LogStream::Stdout;
  } else if (rest.starts_with("stderr ")) {
    r.stream = LogStream::Stderr;
  } else {
    return std::nullopt;
  }
  rest.remove_prefix(7);
  if (rest.size() < 2 || (rest[0] != 'F' && rest[0] != 'P') || rest[1] != ' ') {
    // A bare tag without content ("F") is a valid empty line.
    if (rest == "F" || rest == "P") {
      r.partial = rest[0] == 'P';
      return r;
    }
    return std::nullopt;
  }
  r.partial = rest[0] == 'P';
  r.content = std::string(rest.substr(2));
  return r;
}

std::vector<LogLine> parse_log(std::string_view content) {
  std::vector<LogLine> lines;
  // Parts are joined per stream: a stdout P record continues with the next stdout record.
  std::optional<size_t> open[2];
  while (!content.empty()) {
    size_t nl = content.find('\n');
    std::string_view line = content.substr(0, nl);
    content.remove_prefix(nl == std::string_view::npos ? content.size() : nl + 1);
    auto rec = parse_log_record(line);
    if (!rec) {
      continue;
    }
    auto& slot = open[rec->stream == LogStream::Stdout ? 0 : 1];
    if (slot) {
      lines[*slot].text += rec->content;
    } else {
      lines.push_back(LogLine{rec->time, rec->stream, rec->content, false});
      slot = lines.size() - 1;
    }
    if (!rec->partial) {
      lines[*slot].complete = true;
      slot.reset();
    }
  }
  return lines;
}

bool needs_rotation(int64_t current_size, int64_t incoming, int64_t max_size) {
  return max_size > 0 && current_size > 0 && current_size + incoming > max_size;
}

std::string rotated_path(const std::string& path) {
  return path + ".1";
}

std::optional<int64_t> parse_size(std::string_view text) {
  if (text.empty()) {
    return std::nullopt;
  }
  size_t i = 0;
  int64_t n = 0;
  while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i]))) {
    n = n * 10 + (text[i] - '0');
    ++i;
  }
  if (i == 0) {
    return std::nullopt;
  }
  std::string unit;
  for (; i < text.size(); ++i) {
    unit += static_cast<char>(std::tolower(static_cast<unsigned char>(text[i])));
  }
  if (unit.empty() || unit == "b") {
    return n;
  }
  if (unit == "k" || unit == "kb" || unit == "kib") {
    return n * 1024;
  }
  if (unit == "m" || unit == "mb" || unit == "mib") {
    return n * 1024 * 1024;
  }
  if (unit == "g" || unit == "gb" || unit == "gib") {
    return n * 1024 * 1024 * 1024;
  }
  return std::nullopt;
}

}  // namespace berth::container
