// Start latency of the native runtime against `runc run` on the same bundle:
// create+start+wait+delete of `true` in a busybox rootfs, min and median of N runs each.
// Usage (root): berth_runtime_bench [runs]
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <vector>

#include "berth/runtime/native_runtime.hpp"
#include "berth/spec/spec_builder.hpp"

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

double ms_since(Clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

void report(const char* name, std::vector<double> v) {
  std::sort(v.begin(), v.end());
  std::printf("%-8s min %.2f ms  median %.2f ms  (n=%zu)\n", name, v.front(), v[v.size() / 2],
              v.size());
}

int run_runc(const std::string& bundle, const std::string& id) {
  pid_t pid = ::fork();
  if (pid == 0) {
    int null = ::open("/dev/null", O_RDWR);
    ::dup2(null, 0);
    ::dup2(null, 1);
    ::execlp("runc", "runc", "run", "--bundle", bundle.c_str(), id.c_str(), nullptr);
    ::_exit(127);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

}  // namespace

int main(int argc, char** argv) {
  const int runs = argc > 1 ? std::atoi(argv[1]) : 20;
  char tmpl[] = "/tmp/berth-bench-XXXXXX";
  const fs::path dir = ::mkdtemp(tmpl);
  const fs::path bundle = dir / "bundle";
  const fs::path rootfs = bundle / "rootfs";
  fs::create_directories(rootfs / "bin");
  fs::copy_file("/bin/busybox", rootfs / "bin/busybox");
  fs::create_symlink("busybox", rootfs / "bin/true");
  berth::spec::SpecOptions o;
  o.id = "bench";
  o.rootfs = rootfs.string();
  o.args = std::vector<std::string>{"/bin/true"};
  auto spec = berth::spec::build_spec({}, o);
  if (!spec) {
    std::fprintf(stderr, "spec: %s\n", spec.error().message().c_str());
    return 1;
  }
  std::ofstream(bundle / "config.json") << spec->dump();

  berth::runtime::NativeRuntime rt((dir / "run").string());
  std::vector<double> native;
  for (int i = 0; i < runs + 1; ++i) {
    const std::string id = "bench-native-" + std::to_string(i);
    berth::sdk::CreateRequest req;
    req.id = id;
    req.bundle = bundle.string();
    req.wait_for_start = false;
    auto t0 = Clock::now();
    auto pid = rt.create(req);
    if (!pid) {
      std::fprintf(stderr, "create: %s\n", pid.error().message().c_str());
      return 1;
    }
    int status = 0;
    ::waitpid(*pid, &status, 0);
    auto removed = rt.remove(id, false);
    if (!removed) {
      std::fprintf(stderr, "remove: %s\n", removed.error().message().c_str());
      return 1;
    }
    if (i > 0) {  // the first run fills the seccomp cache
      native.push_back(ms_since(t0));
    }
  }
  std::vector<double> runc;
  for (int i = 0; i < runs; ++i) {
    auto t0 = Clock::now();
    int rc = run_runc(bundle.string(), "bench-runc-" + std::to_string(i));
    if (rc != 0) {
      std::fprintf(stderr, "runc run exited with %d\n", rc);
      break;
    }
    runc.push_back(ms_since(t0));
  }
  report("native", native);
  if (!runc.empty()) {
    report("runc", runc);
  }
  fs::remove_all(dir);
  return 0;
}
