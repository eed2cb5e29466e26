#pragma once
#include <map>
// Shared by the container module's files: opening the stores, the runtime and the monitor.
#include <memory>
#include <optional>
#include <string>

#include "berth/container/container.hpp"
#include "berth/engine/engine.hpp"
#include "berth/sdk/runtime.hpp"
#include "berth/store/store.hpp"

namespace berth::container::detail {

struct Stores {
  std::unique_ptr<ContainerDb> db;
  std::unique_ptr<store::Store> layers;  // opened on demand
};

// Go's time.Time String(), as Podman prints times: "2026-12-05 14:26:23.51 +0000 UTC".
std::string go_time(int64_t nanos);
Result<std::unique_ptr<ContainerDb>> open_db(engine::Engine& eng, bool read_only);
Result<std::unique_ptr<store::Store>> open_layers(engine::Engine& eng);

// The runtime a container uses: "native" (built in) or an OCI runtime binary through the
// runtime-oci plugin ("runc", "crun", "oci", a path). Empty: containers.conf's engine.runtime when
// the file sets it, else native.
std::string resolve_runtime_name(engine::Engine& eng, const std::string& requested);
Result<sdk::RuntimePtr> make_runtime(engine::Engine& eng, const std::string& name);
// The OCI runtime binary for a name, "" for native.
std::string runtime_binary(engine::Engine& eng, const std::string& name);

struct MonitorReport {
  pid_t pid = 0;
  pid_t monitor_pid = 0;
};
// berth-monitor beside this executable, else the installed one.
std::string monitor_binary();

// Appends a container event ("create", "died" with its exit code, ...) to the event log; a
// failure to log never fails the command.
void emit_event(engine::Engine& eng, const ContainerRecord& rec, const std::string& status,
                std::optional<int> exit_code = std::nullopt,
                const std::map<std::string, std::string>& extra = {});

// Restart policies: "no" (or ""), "on-failure[:N]", "always", "unless-stopped".
struct RestartPolicy {
  std::string name = "no";
  int max_retries = 0;  // on-failure:N; 0 = no limit
};
Result<RestartPolicy> parse_restart_policy(const std::string& text);

// Mounts nothing; writes <run dir>/monitor.json, starts berth-monitor and waits for its report.
// With `passthrough`, the container gets this process's stdio.
Result<MonitorReport> launch_monitor(engine::Engine& eng, const ContainerRecord& rec,
                                     const std::string& runtime_name);

// Mounts the container's rootfs (the storage driver is idempotent per layer).
Result<std::string> mount_rootfs(engine::Engine& eng, const ContainerRecord& rec);

// Creates the container in the runtime under a new monitor (the rootfs mounted); records the
// volatile state "created". The caller holds the container's lock.
Result<void> init_container(engine::Engine& eng, ContainerRecord& rec);

// Waits (polling) until the container is exited; false on timeout. timeout_ms < 0: forever.
bool wait_exited(const std::string& run_root, const ContainerRecord& rec, int timeout_ms);

// Error carrying a container exit code (126/127) from the monitor.
Error exec_error(int code, std::string message);

std::string self_exe();

}  // namespace berth::container::detail
