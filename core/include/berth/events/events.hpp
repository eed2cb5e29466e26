#pragma once
// The event log behind `berth events`: one JSON line per event in Podman's file-logger shape,
// appended by every berth process (O_APPEND, one write() per line, so lines never interleave) and
// rotated at a size limit keeping the newest half.
//
// Emitting is cheap (no fsync): open, one write, close, under a shared lock that only rotation
// takes exclusively. Any module logs with
//   events::EventLog::from_config(engine.config()).emit({.type = "container", .status = "start",
//                                                         .id = id, .name = name, .image = img});
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "berth/config/config.hpp"
#include "berth/sdk/result.hpp"

namespace berth::events {

// Podman's event types and statuses (libpod/events/config.go), as the strings written.
namespace type {
inline constexpr std::string_view kContainer = "container";
inline constexpr std::string_view kImage = "image";
inline constexpr std::string_view kVolume = "volume";
inline constexpr std::string_view kNetwork = "network";
inline constexpr std::string_view kPod = "pod";
inline constexpr std::string_view kSystem = "system";
}  // namespace type

struct Event {
  std::string type;     // one of events::type
  std::string status;   // "create", "start", "stop", "die", "remove", "pull", "tag", "untag", ...
  std::string id;       // container/image/pod id (empty for volumes: Podman names them)
  std::string name;     // container name, image reference, volume name, network name
  std::string image;    // container events: the image the container runs
  std::string network;  // network connect/disconnect
  std::string pod_id;
  std::string error;                              // "pull-error" and friends
  std::optional<int> exit_code;                   // "died" container events
  std::map<std::string, std::string> attributes;  // labels and extra details
  int64_t time_nano = 0;                          // UNIX time in ns; 0 = now, filled in by emit()
};

// The JSON object written to the log (Podman's field names: ID, Image, Name, Status, Time
// (RFC3339Nano), TimeNano, Type, Attributes, ...). Empty fields are left out.
nlohmann::json to_json(const Event& e);
Result<Event> from_json(const nlohmann::json& j);
// `podman events` default line: "2026-11-28 00:42:01.123456789 +0000 UTC volume create v1".
std::string to_human(const Event& e, bool truncate_ids = true);

// RFC3339Nano in local time as Go prints it ("2026-11-28T00:42:01.12345+01:00", "...Z" for UTC).
std::string format_rfc3339nano(int64_t unix_nano);
// Go's time.Time.String() without the monotonic part: "2026-11-28 00:42:01.12345 +0000 UTC".
std::string format_go_time(int64_t unix_nano);
// Podman's util.ParseInputTime: RFC3339(Nano), "2006-01-02T15:04:05[.999999999]",
// "2006-01-02Z07:00", "2006-01-02", a UNIX time ("1700000000", "1700000000.5") or a Go duration
// ("10m", "1h30m", "1.5s") taken back from `now_nano` for --since, forward for --until.
Result<int64_t> parse_time(std::string_view text, bool since, int64_t now_nano);
// Go's time.ParseDuration, in ns.
Result<int64_t> parse_duration(std::string_view text);
int64_t now_nano();

// `--filter` of `berth events`: type=, event= (status), container=, image=, volume=, network=,
// pod=, label= (key or key=value). Values of one key are ORed, different keys ANDed (Podman 4+).
class Filters {
 public:
  static Result<Filters> parse(const std::vector<std::string>& filters);
  bool match(const Event& e) const;
  bool empty() const { return by_key_.empty(); }

 private:
  std::map<std::string, std::vector<std::string>> by_key_;
};

struct LogOptions {
  std::filesystem::path path;       // the log file; its directory is created on first write
  uint64_t max_size = 1024 * 1024;  // rotate above this size (0: never), as events_logfile_max_size
  bool enabled = true;              // events_logger = "none" disables logging
};

struct ReadOptions {
  Filters filters;
  std::optional<int64_t> since;  // unix ns, inclusive
  std::optional<int64_t> until;  // unix ns, inclusive
  // Keep reading new events as they are appended (inotify) until the callback returns false,
  // `until` passes, or the process is interrupted. Without `since`/`until` only new events are
  // shown, as Podman.
  bool follow = false;
};

class EventLog {
 public:
  explicit EventLog(LogOptions opts) : opts_(std::move(opts)) {}
  // events_logger, events_logfile_path and events_logfile_max_size of containers.conf. berth has
  // no journald backend: "journald" logs to the file too; "none" disables.
  static EventLog from_config(const config::Config& cfg);

  // Appends one line; sets the time when e.time_nano is 0. Never fsyncs.
  Result<void> emit(const Event& e) const;
  // Calls `cb` for each matching event in log order; `cb` returns false to stop.
  Result<void> read(const ReadOptions& opts, const std::function<bool(const Event&)>& cb) const;

  const std::filesystem::path& path() const { return opts_.path; }
  bool enabled() const { return opts_.enabled; }

 private:
  Result<void> rotate_locked(int lock_fd) const;

  LogOptions opts_;
};

// Logs `e` with the logger containers.conf configures (EventLog::from_config); a failure to log
// is a warning, never the failure of the command that had the event.
void emit_or_warn(const config::Config& cfg, const Event& e);

// Podman's size strings for events_logfile_max_size: "1m", "10MB", "512k", "1000" (bytes).
Result<uint64_t> parse_size(std::string_view text);

}  // namespace berth::events
