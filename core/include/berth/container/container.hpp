#pragma once
// Containers: their records (SQLite, <graphroot>/containers.db), volatile state (<runroot>/
// containers/<id>/), per-container locks, and the status rules shared by every command.
#include <sys/types.h>

#include <cstdint>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "berth/container/mount_options.hpp"
#include "berth/container/net_options.hpp"
#include "berth/container/resource_options.hpp"
#include "berth/sdk/result.hpp"

namespace berth::container {

// Everything `berth create` was asked for; stored as JSON so a later start rebuilds the same
// container. Field names follow the flags.
struct CreateOptions {
  std::string image;  // as the user gave it
  std::string name;
  std::vector<std::string> command;  // empty: the image's Cmd
  std::optional<std::vector<std::string>> entrypoint;
  std::vector<std::string> env;  // KEY=VALUE, after --env-file and --env-host
  std::string workdir;
  std::string user;
  std::string hostname;
  bool tty = false;
  // With tty: the terminal's size when the process starts (rows, columns), so it never runs at
  // 0x0 before the first resize; the CLI's terminal at create, the API's HostConfig.ConsoleSize.
  std::optional<std::pair<uint16_t, uint16_t>> console_size;
  bool interactive = false;  // -i: keep stdin open
  bool init = false;
  std::string init_path;
  std::map<std::string, std::string> labels;
  std::map<std::string, std::string> annotations;
  int stop_signal = 15;
  uint32_t stop_timeout = 10;
  std::string log_driver = "k8s-file";
  std::map<std::string, std::string> log_opts;
  std::string network;  // "" (default: bridge rootful, slirp4netns rootless), none, host, NAME...
  std::string runtime;  // "native", "runc", "oci", a path
  std::vector<std::string> cap_add;
  std::vector<std::string> cap_drop;
  // Made through the Docker API: the default capabilities are Docker's (adds AUDIT_WRITE, MKNOD,
  // NET_RAW) while containers.conf default_capabilities is the stock list; an admin's own list
  // applies all the same.
  bool docker_default_caps = false;
  bool privileged = false;
  bool no_new_privileges = false;
  bool read_only = false;
  std::vector<std::string> ulimits;
  std::map<std::string, std::string> sysctls;
  std::optional<int> oom_score_adj;
  bool remove = false;  // --rm
  std::string restart_policy;
  std::string detach_keys;
  std::vector<std::string> create_command;  // argv of the CLI, for inspect
  std::string pull = "missing";             // missing, never, always, newer
  NetOptions net;
  MountOptions storage;
  ResourceOptions resources;
};
void to_json(nlohmann::json& j, const CreateOptions& o);
void from_json(const nlohmann::json& j, CreateOptions& o);

enum class Status { Configured, Created, Running, Paused, Stopping, Exited };
// Podman's words: "created", "running", "paused", "stopping", "exited" (configured -> "created").
std::string status_name(Status s);

// Persistent record.
struct ContainerRecord {
  std::string id;
  std::string name;
  std::string image_id;
  std::string image_name;
  std::string layer_id;
  int64_t created = 0;  // unix nanoseconds
  CreateOptions options;
  std::string bundle;                  // directory holding config.json (persistent userdata)
  std::vector<std::string> path_args;  // process.args of the spec: Path + Args
  // Survives reboots: the last known end of the container.
  int64_t started_at = 0;
  int64_t finished_at = 0;
  int exit_code = 0;
  int restart_count = 0;
  bool ever_started = false;
};

// The state the next command sees, derived from the record, the volatile state file and the
// monitor's exit file.
struct ContainerState {
  Status status = Status::Configured;
  pid_t pid = 0;
  pid_t monitor_pid = 0;
  int64_t started_at = 0;
  int64_t finished_at = 0;
  int exit_code = 0;
  bool oom_killed = false;
  std::string error;
  std::string runtime;   // the runtime that created it
  bool mounted = false;  // the rootfs is mounted for this container (one driver mount)
};

// The container store. Every write is a short BEGIN IMMEDIATE transaction.
class ContainerDb {
 public:
  static Result<std::unique_ptr<ContainerDb>> open(const std::string& graph_root, bool read_only);
  virtual ~ContainerDb() = default;

  virtual Result<void> insert(const ContainerRecord& rec) = 0;
  virtual Result<void> update(const ContainerRecord& rec) = 0;
  virtual Result<void> remove(const std::string& id) = 0;
  virtual Result<std::vector<ContainerRecord>> all() = 0;
  virtual Result<std::optional<ContainerRecord>> by_id(const std::string& id) = 0;
  // Exact name, exact id, or a unique id prefix (NotFound / InvalidArgument when ambiguous).
  virtual Result<ContainerRecord> lookup(const std::string& name_or_id) = 0;
  virtual Result<bool> name_taken(const std::string& name) = 0;
};

// An exclusive flock on <runroot>/locks/container-<id>.lock, released by the destructor.
//
// Lock order: a container's lock is taken before any lock of the layer store (its layer flocks
// and database transactions) and before the container database's write transaction; at most
// one container lock is held at a time by a process, except `rm --depend` which takes them one by
// one, never nested.
class ContainerLock {
 public:
  static Result<ContainerLock> acquire(const std::string& run_root, const std::string& id);
  ContainerLock(ContainerLock&& o) noexcept : fd_(o.fd_) { o.fd_ = -1; }
  ContainerLock& operator=(ContainerLock&&) = delete;
  ~ContainerLock();

 private:
  explicit ContainerLock(int fd) : fd_(fd) {}
  int fd_ = -1;
};

// Podman-style random name, "eager_turing".
std::string random_name();

// Volatile paths.
std::string run_dir(const std::string& run_root, const std::string& id);
std::string exit_file(const std::string& run_root, const std::string& id);

// Reads the state: exit file first (the monitor wrote it: exited with its code), then the
// volatile state file (a running/created container whose pid is gone is exited), then the record.
ContainerState read_state(const std::string& run_root, const ContainerRecord& rec);
// Writes <runroot>/containers/<id>/state.json atomically.
Result<void> write_state(const std::string& run_root, const std::string& id,
                         const ContainerState& st);

// "Up 5 seconds", "Exited (0) 2 minutes ago", "Created" as `podman ps`.
std::string status_string(const ContainerState& st, int64_t now_nanos);
// Go's units.HumanDuration, as Podman: "Less than a second", "5 seconds", "About a minute"...
std::string human_duration(int64_t nanos);

int64_t now_nanos();
std::string rfc3339_nano(int64_t unix_nanos);  // "2026-11-28T00:12:03.123456789Z" (UTC)

}  // namespace berth::container
