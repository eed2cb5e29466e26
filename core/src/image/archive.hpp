#pragma once
// The outer tar of docker-archive and oci-archive files: an index of a seekable tar (entries read
// in place with pread, no extraction) and a small streaming tar writer.
#include <cstdint>
#include <map>
#include <string>
#include <string_view>

#include "berth/sdk/result.hpp"
#include "berth/sdk/unique_fd.hpp"

namespace berth::image {

struct TarEntry {
  uint64_t offset = 0;  // of the content
  uint64_t size = 0;
  char type = '0';
  std::string link;  // symlink/hardlink target
};

class TarIndex {
 public:
  // Reads the headers of the tar in `fd` (seekable, uncompressed).
  static Result<TarIndex> build(int fd, const std::string& what);
  // Entry by path ("./" and leading "/" ignored), following hard and symbolic links in the archive.
  const TarEntry* find(std::string_view path) const;
  Result<std::string> read(std::string_view path, size_t limit) const;
  int fd() const { return fd_; }
  bool contains(std::string_view path) const { return find(path) != nullptr; }

 private:
  int fd_ = -1;
  std::string what_;
  std::map<std::string, TarEntry, std::less<>> entries_;
};

class TarWriter {
 public:
  explicit TarWriter(int fd) : fd_(fd) {}
  Result<void> add_dir(std::string_view name);
  // Writes the header; the caller then writes exactly `size` bytes with write() and calls pad().
  Result<void> begin_file(std::string_view name, uint64_t size);
  Result<void> write(std::string_view data);
  Result<void> end_file();
  // Counts bytes the caller wrote to fd() itself.
  void account(uint64_t n) { written_ += n; }
  Result<void> add_file(std::string_view name, std::string_view content);
  Result<void> finish();
  int fd() const { return fd_; }

 private:
  Result<void> header(std::string_view name, uint64_t size, char type, unsigned mode);
  int fd_;
  uint64_t pending_ = 0;
  uint64_t written_ = 0;
};

// An uncompressed, seekable copy of the stream: `fd` itself when it already is one, else a
// temporary file (unlinked) under `tmp_dir` holding the (decompressed) bytes.
Result<UniqueFd> seekable_plain(int fd, const std::string& tmp_dir, const std::string& what);

std::string clean_archive_path(std::string_view p);

}  // namespace berth::image
