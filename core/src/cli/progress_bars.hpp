#pragma once
// Podman-style progress on a terminal: one line per blob, redrawn in place
// ("Copying blob 3f4ca61aafcd [=====>-----------] 12.1MiB / 46.4MiB"), finished blobs shown as
// "Copying blob 3f4ca61aafcd done"; other progress lines printed above the bars. Thread-safe:
// the copy pipeline reports bytes from its worker threads.
#include <chrono>
#include <cstdint>
#include <mutex>
#include <ostream>
#include <string>
#include <vector>

namespace berth::cli {

class ProgressBars {
 public:
  explicit ProgressBars(std::ostream& out, int width = 80) : out_(out), width_(width) {}
  ~ProgressBars() { finish(); }
  ProgressBars(const ProgressBars&) = delete;
  ProgressBars& operator=(const ProgressBars&) = delete;

  // A line of the copy pipeline: "Copying blob HEX done|skipped..." finishes that blob's bar,
  // anything else is printed above the bars.
  void line(const std::string& text);
  // Bytes of a blob so far (`total` -1 when unknown).
  void bytes(const std::string& digest, int64_t done, int64_t total);
  // Draws the final state once (bars of unfinished blobs stay as they are).
  void finish();

  // One bar's text, exposed for tests: "Copying blob HEX [===>---] 1.0MiB / 2.0MiB".
  static std::string render(const std::string& short_hex, int64_t done, int64_t total, int width);

 private:
  struct Bar {
    std::string hex;  // 12 hex digits
    int64_t done = 0;
    int64_t total = -1;
    std::string final_text;  // set once finished
  };
  Bar& bar_of(const std::string& hex);
  void redraw_locked(bool force);

  std::ostream& out_;
  int width_;
  std::mutex mu_;
  std::vector<Bar> bars_;
  size_t drawn_ = 0;  // lines of bars on the screen below the cursor's line start
  std::chrono::steady_clock::time_point last_{};
  bool finished_ = false;
};

}  // namespace berth::cli
