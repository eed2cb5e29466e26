// Times `load` of oci-archives into a fresh store with the vfs-like fake driver:
//   berth_image_bench <work dir> <archive>...
#include <chrono>
#include <cstdio>
#include <cstdlib>

#include "berth/image/image_service.hpp"
#include "fakes/fake_storage_driver.hpp"

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: %s WORKDIR ARCHIVE...\n", argv[0]);
    return 2;
  }
  std::filesystem::path work = argv[1];
  for (int i = 2; i < argc; ++i) {
    std::filesystem::remove_all(work);
    // BENCH_MODE=overlay: layers hold only their own changes (no parent copy), as overlay does.
    const char* mode = std::getenv("BENCH_MODE");
    berth::testing::FakeStorageDriver driver(
        work / "driver", mode && std::string(mode) == "overlay"
                             ? berth::testing::FakeStorageDriver::Mode::OverlayLike
                             : berth::testing::FakeStorageDriver::Mode::VfsLike);
    berth::store::StoreOptions o{(work / "graph").string(), (work / "run").string(), false};
    auto st = berth::store::Store::open(o, driver);
    if (!st) {
      std::fprintf(stderr, "open: %s\n", st.error().message().c_str());
      return 1;
    }
    auto t0 = std::chrono::steady_clock::now();
    auto r = berth::image::load(**st, {argv[i], -1});
    auto t1 = std::chrono::steady_clock::now();
    if (!r) {
      std::fprintf(stderr, "load %s: %s\n", argv[i], r.error().message().c_str());
      return 1;
    }
    std::printf("%s: %.3f s (%s)\n", argv[i], std::chrono::duration<double>(t1 - t0).count(),
                r->ids[0].c_str());
    // BENCH_SAVE=<file>: also time `save --format oci-archive` (verifies every diff ID).
    if (const char* out = std::getenv("BENCH_SAVE")) {
      berth::image::SaveOptions so;
      so.format = berth::image::SaveFormat::OciArchive;
      so.path = out;
      so.images = {r->ids[0]};
      auto s0 = std::chrono::steady_clock::now();
      auto sr = berth::image::save(**st, so);
      auto s1 = std::chrono::steady_clock::now();
      if (!sr) {
        std::fprintf(stderr, "save: %s\n", sr.error().message().c_str());
        return 1;
      }
      std::printf("  save: %.3f s\n", std::chrono::duration<double>(s1 - s0).count());
    }
  }
  return 0;
}
