// Manual benchmark (not a test): extract_layer of a layer blob into a fresh directory.
// Usage: archive_extract_bench BLOB DEST_DIR [overlay]   (DEST_DIR is created if missing)
#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "berth/sdk/layer_archive.hpp"
#include "berth/sdk/unique_fd.hpp"

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: %s BLOB DEST_DIR [overlay]\n", argv[0]);
    return 2;
  }
  berth::UniqueFd fd(::open(argv[1], O_RDONLY | O_CLOEXEC));
  if (!fd) {
    std::perror(argv[1]);
    return 1;
  }
  std::error_code ec;
  std::filesystem::create_directory(argv[2], ec);  // an existing directory gets the next layer
  if (ec) {
    std::fprintf(stderr, "create %s: %s\n", argv[2], ec.message().c_str());
    return 1;
  }
  berth::sdk::ExtractOptions opts;
  if (argc > 3 && std::strcmp(argv[3], "overlay") == 0) {
    opts.whiteouts = berth::sdk::WhiteoutFormat::Overlay;
  }
  auto start = std::chrono::steady_clock::now();
  auto r = berth::sdk::extract_layer(fd.get(), argv[2], opts);
  auto ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start);
  if (!r) {
    std::fprintf(stderr, "Error: %s\n", r.error().message().c_str());
    return 1;
  }
  std::printf("%llu entries, %llu bytes, %.1f ms\n", static_cast<unsigned long long>(r->entries),
              static_cast<unsigned long long>(r->bytes), ms.count());
  return 0;
}
