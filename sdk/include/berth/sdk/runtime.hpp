#pragma once
// berth.runtime.v1: OCI runtime spec (config.json in a bundle) in, container out.
// Semantics follow the OCI runtime spec's operations: create, start, kill, delete, state.
#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "berth/sdk/plugin.hpp"
#include "berth/sdk/result.hpp"

namespace berth::sdk {

enum class ContainerStatus { Creating, Created, Running, Paused, Stopped };

struct RuntimeState {
  std::string id;
  ContainerStatus status = ContainerStatus::Stopped;
  pid_t pid = 0;
  std::string bundle;
};

struct CreateRequest {
  std::string id;
  std::string bundle;  // directory holding config.json
  // Stdio the container's process gets (-1: /dev/null). With a terminal, console_socket is the
  // path of a unix socket that receives the pty master (SCM_RIGHTS), as runc's --console-socket.
  int stdin_fd = -1;
  int stdout_fd = -1;
  int stderr_fd = -1;
  std::string console_socket;
  std::string pid_file;
  // When true, the runtime's create leaves the container waiting for start (OCI create);
  // when false, create+start in one step (runc run -d).
  bool wait_for_start = true;
};

struct ExecRequest {
  std::string id;
  std::string process_json;  // an OCI "process" object
  int stdin_fd = -1;
  int stdout_fd = -1;
  int stderr_fd = -1;
  std::string console_socket;
  std::string pid_file;
};

struct RuntimeFeatures {
  bool cgroup_v1 = false;
  bool cgroup_v2 = false;
  bool seccomp = false;
  bool user_namespaces = false;
  std::string version;
};

class BERTH_EXPORT Runtime {
 public:
  static constexpr const char* kKind = BERTH_KIND_runtime;
  virtual ~Runtime() = default;

  virtual std::string name() const = 0;
  virtual RuntimeFeatures features() = 0;
  // Creates the container; returns its init pid (a child of the calling process or re-parented
  // to the caller, which must be a sub-reaper).
  virtual Result<pid_t> create(const CreateRequest& req) = 0;
  virtual Result<void> start(const std::string& id) = 0;
  virtual Result<void> kill(const std::string& id, int signal, bool all) = 0;
  // Releases what create made (cgroup, state). Idempotent.
  virtual Result<void> remove(const std::string& id, bool force) = 0;
  virtual Result<RuntimeState> state(const std::string& id) = 0;
  // Starts a further process in a running container; returns its pid.
  virtual Result<pid_t> exec(const ExecRequest& req) = 0;
  virtual Result<void> pause(const std::string& id) = 0;
  virtual Result<void> resume(const std::string& id) = 0;
  // Applies an OCI "linux.resources" object to a running container.
  virtual Result<void> update(const std::string& id, const std::string& resources_json) = 0;
};
using RuntimePtr = std::unique_ptr<Runtime>;
using RuntimeFactory = Result<RuntimePtr>(const PluginContext&);

}  // namespace berth::sdk
