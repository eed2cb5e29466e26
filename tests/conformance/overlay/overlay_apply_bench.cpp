// Measures the overlay driver's apply_diff of one uncompressed layer tar (not a test: run by hand)
//   overlay_apply_bench <plugin.so> <layer.tar> [runs]
// Each run uses a fresh home under $TMPDIR and prints the wall time of apply_diff alone; the
// minimum is printed last, to compare with `tar -xf` of the same file into a fresh directory.
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "berth/sdk/plugin_file.hpp"
#include "berth/sdk/storage.hpp"
#include "berth/sdk/testing/conformance.hpp"

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: %s PLUGIN LAYER.tar [RUNS]\n", argv[0]);
    return 2;
  }
  const int runs = argc > 3 ? std::atoi(argv[3]) : 3;
  auto plugin = berth::sdk::LoadedPlugin::open(argv[1]);
  if (!plugin) {
    std::fprintf(stderr, "%s\n", plugin.error().message().c_str());
    return 1;
  }
  double best = 1e9;
  for (int i = 0; i < runs; ++i) {
    berth::sdk::testing::TempDir home("berth-overlay-bench-home-");
    berth::sdk::testing::TempDir run("berth-overlay-bench-run-");
    berth::sdk::PluginContext ctx;
    ctx.home = home.path().string();
    ctx.run_root = run.path().string();
    auto d = (*plugin)->create<berth::sdk::StorageDriver>(ctx);
    if (!d) {
      std::fprintf(stderr, "%s\n", d.error().message().c_str());
      return 1;
    }
    if (auto c = (*d)->create("layer", "", {}); !c) {
      std::fprintf(stderr, "%s\n", c.error().message().c_str());
      return 1;
    }
    berth::UniqueFd fd(::open(argv[2], O_RDONLY | O_CLOEXEC));
    if (!fd) {
      std::perror(argv[2]);
      return 1;
    }
    const auto t0 = std::chrono::steady_clock::now();
    auto r = (*d)->apply_diff("layer", fd.get(), {});
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (!r) {
      std::fprintf(stderr, "%s\n", r.error().message().c_str());
      return 1;
    }
    std::printf("run %d: apply_diff %.3f s (%llu bytes)\n", i + 1, s,
                static_cast<unsigned long long>(*r));
    best = std::min(best, s);
    (void)(*d)->cleanup();
  }
  std::printf("min: %.3f s\n", best);
  return 0;
}
