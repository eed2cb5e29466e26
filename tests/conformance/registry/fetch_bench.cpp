// fetch_blob throughput: copies an OCI layout (default /work/shared/images/deb) into a local
// docker-registry with skopeo, then fetches its largest layer into /dev/null three times and
// prints the best time.   registry_fetch_bench [oci layout dir]
#include <fcntl.h>

#include <chrono>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "registry_fixture.hpp"

using namespace berth::registry::testing;

int main(int argc, char** argv) {
  std::string layout = argc > 1 ? argv[1] : "/work/shared/images/deb";
  LocalRegistry reg;
  if (auto err = reg.start(); !err.empty()) {
    std::fprintf(stderr, "%s\n", err.c_str());
    return 1;
  }
  std::string cmd = "skopeo copy --quiet oci:" + layout + ":latest docker://" + reg.host() +
                    "/bench:latest --dest-tls-verify=false";
  if (run(cmd) != 0) {
    std::fprintf(stderr, "failed: %s\n", cmd.c_str());
    return 1;
  }
  auto plugin = berth::sdk::LoadedPlugin::open(DOCKER_PLUGIN);
  if (!plugin) {
    std::fprintf(stderr, "%s\n", plugin.error().message().c_str());
    return 1;
  }
  auto transport = (*plugin)->create<berth::sdk::Transport>(berth::sdk::PluginContext{});
  if (!transport) {
    std::fprintf(stderr, "%s\n", transport.error().message().c_str());
    return 1;
  }
  berth::sdk::TransportOptions o;
  o.tls_verify = false;
  auto src = (*transport)->open_source(reg.host() + "/bench:latest", o);
  auto m = (*src)->manifest("");
  if (!m) {
    std::fprintf(stderr, "%s\n", m.error().message().c_str());
    return 1;
  }
  berth::sdk::BlobInfo biggest;
  auto manifest = nlohmann::json::parse(m->bytes);
  for (const auto& l : manifest["layers"]) {
    if (l["size"].get<int64_t>() > biggest.size) {
      biggest.digest = l["digest"].get<std::string>();
      biggest.size = l["size"].get<int64_t>();
      biggest.media_type = l["mediaType"].get<std::string>();
    }
  }
  berth::UniqueFd null(::open("/dev/null", O_WRONLY | O_CLOEXEC));
  double best = 1e9;
  for (int i = 0; i < 3; ++i) {
    auto t0 = std::chrono::steady_clock::now();
    auto n = (*src)->fetch_blob(biggest, 0, null.get());
    double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (!n) {
      std::fprintf(stderr, "%s\n", n.error().message().c_str());
      return 1;
    }
    std::printf("run %d: %lld bytes in %.3f s (%.0f MB/s)\n", i + 1, static_cast<long long>(*n), s,
                static_cast<double>(*n) / s / 1e6);
    best = std::min(best, s);
  }
  std::printf("best: %.3f s, %.0f MB/s for %s (%lld bytes)\n", best,
              static_cast<double>(biggest.size) / best / 1e6, biggest.digest.c_str(),
              static_cast<long long>(biggest.size));
  return 0;
}
