#pragma once
// Builds small layer tarballs in memory (libarchive's writer into a memfd) for driver tests.
#include <sys/types.h>

#include <cstdint>
#include <string>

#include "berth/sdk/result.hpp"
#include "berth/sdk/unique_fd.hpp"

struct archive;

namespace berth::sdk::testing {

class TarBuilder {
 public:
  TarBuilder();
  TarBuilder(const TarBuilder&) = delete;
  TarBuilder& operator=(const TarBuilder&) = delete;
  ~TarBuilder();

  // Paths are relative ("etc/hosts"); every entry is owned by 0:0.
  TarBuilder& dir(const std::string& path, mode_t mode = 0755, int64_t mtime = 1000000000);
  TarBuilder& file(const std::string& path, const std::string& content, mode_t mode = 0644,
                   int64_t mtime = 1000000000);
  TarBuilder& symlink(const std::string& path, const std::string& target);
  TarBuilder& hardlink(const std::string& path, const std::string& target);
  // An OCI whiteout: hides `path` ("dir/name" becomes "dir/.wh.name").
  TarBuilder& whiteout(const std::string& path);
  // An opaque-directory marker: hides everything the parents had under `dir`.
  TarBuilder& opaque(const std::string& dir);

  // Ends the archive; returns a readable fd positioned at its start. Any error while adding
  // entries is reported here, naming the entry.
  Result<UniqueFd> finish();

 private:
  void add(const std::string& path, unsigned type, mode_t mode, int64_t mtime,
           const std::string& content, const std::string& link, bool hard);

  UniqueFd fd_;
  ::archive* archive_ = nullptr;
  std::string error_;
};

}  // namespace berth::sdk::testing
