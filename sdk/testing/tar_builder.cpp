#include "berth/sdk/testing/tar_builder.hpp"

#include <archive.h>
#include <archive_entry.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace berth::sdk::testing {

TarBuilder::TarBuilder() {
  fd_ = UniqueFd(::memfd_create("berth-test-layer.tar", MFD_CLOEXEC));
  if (!fd_) {
    error_ = std::string("memfd_create: ") + std::strerror(errno);
    return;
  }
  archive_ = archive_write_new();
  if (archive_ == nullptr || archive_write_set_format_pax_restricted(archive_) != ARCHIVE_OK ||
      archive_write_open_fd(archive_, fd_.get()) != ARCHIVE_OK) {
    error_ = std::string("libarchive: cannot open a tar writer: ") +
             (archive_ != nullptr ? archive_error_string(archive_) : "out of memory");
  }
}

TarBuilder::~TarBuilder() {
  if (archive_ != nullptr) {
    archive_write_free(archive_);
  }
}

void TarBuilder::add(const std::string& path, unsigned type, mode_t mode, int64_t mtime,
                     const std::string& content, const std::string& link, bool hard) {
  if (!error_.empty()) {
    return;
  }
  archive_entry* e = archive_entry_new();
  archive_entry_set_pathname(e, path.c_str());
  archive_entry_set_filetype(e, type);
  archive_entry_set_perm(e, mode);
  archive_entry_set_uid(e, 0);
  archive_entry_set_gid(e, 0);
  archive_entry_set_mtime(e, mtime, 0);
  if (hard) {
    archive_entry_set_hardlink(e, link.c_str());
    archive_entry_set_size(e, 0);
  } else if (type == AE_IFLNK) {
    archive_entry_set_symlink(e, link.c_str());
    archive_entry_set_size(e, 0);
  } else {
    archive_entry_set_size(e, static_cast<la_int64_t>(content.size()));
  }
  if (archive_write_header(archive_, e) != ARCHIVE_OK) {
    error_ = "tar entry " + path + ": " + archive_error_string(archive_);
  } else if (!content.empty() && archive_write_data(archive_, content.data(), content.size()) !=
                                     static_cast<la_ssize_t>(content.size())) {
    error_ = "tar entry " + path + ": " + archive_error_string(archive_);
  }
  archive_entry_free(e);
}

TarBuilder& TarBuilder::dir(const std::string& path, mode_t mode, int64_t mtime) {
  add(path, AE_IFDIR, mode, mtime, "", "", false);
  return *this;
}

TarBuilder& TarBuilder::file(const std::string& path, const std::string& content, mode_t mode,
                             int64_t mtime) {
  add(path, AE_IFREG, mode, mtime, content, "", false);
  return *this;
}

TarBuilder& TarBuilder::symlink(const std::string& path, const std::string& target) {
  add(path, AE_IFLNK, 0777, 1000000000, "", target, false);
  return *this;
}

TarBuilder& TarBuilder::hardlink(const std::string& path, const std::string& target) {
  add(path, AE_IFREG, 0644, 1000000000, "", target, true);
  return *this;
}

TarBuilder& TarBuilder::whiteout(const std::string& path) {
  const auto slash = path.rfind('/');
  const std::string wh = slash == std::string::npos
                             ? ".wh." + path
                             : path.substr(0, slash + 1) + ".wh." + path.substr(slash + 1);
  add(wh, AE_IFREG, 0644, 1000000000, "", "", false);
  return *this;
}

TarBuilder& TarBuilder::opaque(const std::string& dir) {
  add(dir + "/.wh..wh..opq", AE_IFREG, 0644, 1000000000, "", "", false);
  return *this;
}

Result<UniqueFd> TarBuilder::finish() {
  if (error_.empty() && archive_write_close(archive_) != ARCHIVE_OK) {
    error_ = std::string("close tar writer: ") + archive_error_string(archive_);
  }
  if (!error_.empty()) {
    return fail(Errc::Internal, "build test layer: " + error_);
  }
  if (::lseek(fd_.get(), 0, SEEK_SET) != 0) {
    return fail_errno("seek", "test layer memfd");
  }
  return std::move(fd_);
}

}  // namespace berth::sdk::testing
