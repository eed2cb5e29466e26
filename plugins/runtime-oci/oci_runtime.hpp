#pragma once
// berth.runtime.v1 "oci": drives an external OCI runtime binary (runc, crun, youki) with a bundle,
// through its standard CLI (create/start/kill/delete/state/exec/pause/resume/update).
#include <string>

#include "berth/sdk/runtime.hpp"

namespace berth::oci {

class OciRuntime final : public sdk::Runtime {
 public:
  // `binary`: path of runc/crun; `root`: the binary's --root state directory.
  OciRuntime(std::string binary, std::string root);

  std::string name() const override { return "oci"; }
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

 private:
  struct Output {
    int status = 0;
    std::string out;
    std::string err;
  };
  // Runs the binary with global flags; stdio given (the container's) or captured (-1).
  Result<Output> run(const std::vector<std::string>& args, const int stdio[3],
                     const std::string& input = {}) const;
  Result<void> simple(const std::string& what, const std::vector<std::string>& args) const;
  Error failure(const std::string& what, const Output& out, const std::string& log_file) const;

  std::string binary_;
  std::string root_;  // scratch files (pid, log, process.json) go to <root_>.tmp
};

// options_json: {"path": "/usr/bin/crun"} (default: runc, then crun, from $PATH).
Result<sdk::RuntimePtr> make_oci_runtime(const sdk::PluginContext& ctx);

}  // namespace berth::oci
