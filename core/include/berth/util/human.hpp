#pragma once
// Human-readable figures exactly as Podman prints them (docker/go-units).
#include <cstdint>
#include <string>

namespace berth::util {

// go-units HumanDuration: "Less than a second", "5 seconds", "About a minute", "3 hours", ...
std::string human_duration(int64_t seconds);
// "<HumanDuration> ago" of a unix time, relative to now.
std::string time_ago(int64_t unix_seconds);
// go-units HumanSizeWithPrecision(size, 3): "2.14 MB", "512 B" (decimal units).
std::string human_size(double bytes);
// RFC 3339 with nanoseconds in UTC ("2026-11-27T23:59:59.123456789Z"); Go's time.RFC3339Nano.
std::string rfc3339_nano(int64_t unix_nanos);
// Go's default time.Time String(): "2026-11-27 23:59:59.123456789 +0000 UTC".
std::string go_time_string(int64_t unix_nanos);

}  // namespace berth::util
