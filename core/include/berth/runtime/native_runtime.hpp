#pragma once
// The built-in OCI runtime (berth.runtime.v1 "native"): namespaces with one clone(), cgroupfs
// v1/v2, mounts and pivot_root, capabilities (libcap), seccomp (libseccomp, BPF cached per
// profile), rlimits clamped to the hard limit, pty via a console socket. No helper process is
// exec'd.
//
// State lives in <run_root>/native/<id>/ (state.json, exec.fifo while created).
// Errors from create()/exec() whose cause is the container's executable carry Errc::NotFound
// (exit code 127) or Errc::PermissionDenied (exit code 126).
#include <string>

#include "berth/sdk/plugin.hpp"
#include "berth/sdk/runtime.hpp"

namespace berth::runtime {

class NativeRuntime final : public sdk::Runtime {
 public:
  explicit NativeRuntime(std::string run_root);

  std::string name() const override { return "native"; }
  sdk::RuntimeFeatures features() override;
  Result<pid_t> create(const sdk::CreateRequest& req) override;
  Result<void> start(const std::string& id) override;
  Result<void> kill(const std::string& id, int signal, bool all) override;
  Result<void> remove(const std::string& id, bool force) override;
  Result<sdk::RuntimeState> state(const std::string& id) override;
  Result<pid_t> exec(const sdk::ExecRequest& req) override;
  Result<void> pause(const std::string& id) override;
  Result<void> resume(const std::string& id) override;
  Result<void> update(const std::string& id, const std::string& resources_json) override;

  // <run_root>/native/<id>
  std::string state_dir(const std::string& id) const;

 private:
  std::string root_;  // <run_root>/native
};

Result<sdk::RuntimePtr> make_native_runtime(const sdk::PluginContext& ctx);

// Exit code a CLI reports when create/exec failed because of the executable (127 not found,
// 126 not executable), else 125.
int exit_code_for(const Error& e);

}  // namespace berth::runtime
