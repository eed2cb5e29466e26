#pragma once
// Container log files as conmon writes them (k8s-file, the CRI format):
//   <RFC3339Nano timestamp> stdout|stderr F|P <content>
// F ends a line; P is a part of a line that continues in the next record. berth-monitor writes them
// and `berth logs` reads them. No dependency beyond the standard library, so the monitor stays
// small.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace berth::container {

enum class LogStream { Stdout, Stderr };

// "2026-11-28T00:12:03.123456789+00:00" (always nine digits, local offset, as conmon).
std::string format_log_time(int64_t unix_nanos);
// Parses RFC 3339 with or without fraction and offset ("Z", "+01:00"); nullopt when malformed.
std::optional<int64_t> parse_rfc3339(std::string_view text);

// Appends the records for one chunk read from a stream: one F record per complete line, one P
// record for a trailing part without a newline.
void append_log_records(std::string& out, int64_t unix_nanos, LogStream stream,
                        std::string_view chunk);

struct LogRecord {
  int64_t time = 0;  // unix nanoseconds
  LogStream stream = LogStream::Stdout;
  bool partial = false;
  std::string content;  // without the newline
};
// nullopt for a malformed line.
std::optional<LogRecord> parse_log_record(std::string_view line);

// Whole lines of a log: P records joined with the following ones into one line.
struct LogLine {
  int64_t time = 0;  // time of the first part
  LogStream stream = LogStream::Stdout;
  std::string text;      // without the newline
  bool complete = true;  // false for a trailing part still being written
};
std::vector<LogLine> parse_log(std::string_view content);

// Rotation of a log file at a size limit (--log-opt max-size): when writing `incoming` bytes
// would take the file past `max_size`, the current file becomes "<path>.1" (replacing an older
// one) and writing restarts in an empty file. max_size <= 0: no limit.
bool needs_rotation(int64_t current_size, int64_t incoming, int64_t max_size);
std::string rotated_path(const std::string& path);

// Podman's size strings for max-size: "10k", "1mb", "2g", plain bytes. nullopt when malformed.
std::optional<int64_t> parse_size(std::string_view text);

}  // namespace berth::container
