#include "berth/util/human.hpp"

#include <cstdio>
#include <ctime>

namespace berth::util {

std::string human_duration(int64_t s) {
  if (s < 1) {
    return "Less than a second";
  }
  if (s == 1) {
    return "1 second";
  }
  if (s < 60) {
    return std::to_string(s) + " seconds";
  }
  int64_t minutes = s / 60;
  if (minutes == 1) {
    return "About a minute";
  }
  if (minutes < 60) {
    return std::to_string(minutes) + " minutes";
  }
  auto hours = static_cast<int64_t>(static_cast<double>(s) / 3600.0 + 0.5);
  if (hours == 1) {
    return "About an hour";
  }
  if (hours < 48) {
    return std::to_string(hours) + " hours";
  }
  if (hours < 24 * 7 * 2) {
    return std::to_string(hours / 24) + " days";
  }
  if (hours < 24 * 30 * 2) {
    return std::to_string(hours / 24 / 7) + " weeks";
  }
  if (hours < 24 * 365 * 2) {
    return std::to_string(hours / 24 / 30) + " months";
  }
  return std::to_string(s / 3600 / 24 / 365) + " years";
}

std::string time_ago(int64_t unix_seconds) {
  return human_duration(static_cast<int64_t>(std::time(nullptr)) - unix_seconds) + " ago";
}

std::string human_size(double size) {
  static constexpr const char* kUnits[] = {"B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"};
  size_t i = 0;
  while (size >= 1000.0 && i + 1 < std::size(kUnits)) {
    size /= 1000.0;
    ++i;
  }
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.3g %s", size, kUnits[i]);
  return buf;
}

std::string rfc3339_nano(int64_t unix_nanos) {
  time_t secs = static_cast<time_t>(unix_nanos / 1000000000);
  int64_t nanos = unix_nanos % 1000000000;
  struct tm tm {};
  gmtime_r(&secs, &tm);
  char buf[64];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
  std::string out = buf;
  if (nanos != 0) {
    char frac[16];
    std::snprintf(frac, sizeof(frac), ".%09lld", static_cast<long long>(nanos));
    std::string f = frac;
    while (!f.empty() && f.back() == '0') {
      f.pop_back();
    }
    out += f;
  }
  return out + "Z";
}

std::string go_time_string(int64_t unix_nanos) {
  time_t secs = static_cast<time_t>(unix_nanos / 1000000000);
  struct tm tm {};
  gmtime_r(&secs, &tm);
  char buf[64];
  std::strftime(buf, sizeof(buf), "%Y-%m-%d %H:%M:%S", &tm);
  char frac[16];
  std::snprintf(frac, sizeof(frac), ".%09lld", static_cast<long long>(unix_nanos % 1000000000));
  return std::string(buf) + frac + " +0000 UTC";
}

}  // namespace berth::util
