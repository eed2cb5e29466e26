#include "berth/util/fs.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <mutex>
#include <string>
#include <system_error>
#include <vector>

namespace berth::util {

Result<UniqueFd> open_file(const std::filesystem::path& path, int flags, mode_t mode) {
  int fd = ::open(path.c_str(), flags | O_CLOEXEC, mode);
  if (fd < 0) {
    return fail_errno("open", path.string());
  }
  return UniqueFd(fd);
}

Result<std::string> read_file(const std::filesystem::path& path) {
  BERTH_TRY(auto fd, open_file(path, O_RDONLY));
  return read_all(fd.get(), path.string());
}

Result<std::string> read_all(int fd, std::string_view what) {
  std::string out;
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n < 0) {
      return fail_errno("read", std::string(what));
    }
    if (n == 0) {
      break;
    }
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

Result<void> write_all(int fd, std::string_view data, std::string_view what) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n < 0) {
      return fail_errno("write", what);
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  return {};
}

namespace {

std::mutex volatile_mu;
std::vector<std::string>& volatile_roots() {
  static std::vector<std::string> roots;
  return roots;
}

}  // namespace

void add_volatile_root(const std::filesystem::path& root) {
  std::string r = root.lexically_normal().string();
  while (r.size() > 1 && r.back() == '/') {
    r.pop_back();
  }
  if (r.empty() || r == "/") {
    return;  // never the whole file system
  }
  std::lock_guard g(volatile_mu);
  auto& roots = volatile_roots();
  if (std::find(roots.begin(), roots.end(), r) == roots.end()) {
    roots.push_back(std::move(r));
  }
}

bool under_volatile_root(const std::filesystem::path& path) {
  const std::string p = path.lexically_normal().string();
  std::lock_guard g(volatile_mu);
  for (const auto& r : volatile_roots()) {
    if (p.size() > r.size() && p.compare(0, r.size(), r) == 0 && p[r.size()] == '/') {
      return true;
    }
  }
  return false;
}

Result<void> write_file_atomic(const std::filesystem::path& path, std::string_view content,
                               mode_t mode, Durability durability) {
  const bool sync = durability == Durability::Durable && !under_volatile_root(path);
  auto tmp = path;
  tmp += ".tmp-" + std::to_string(::getpid());
  {
    BERTH_TRY(auto fd, open_file(tmp, O_WRONLY | O_CREAT | O_TRUNC, mode));
    if (auto r = write_all(fd.get(), content, tmp.string()); !r) {
      ::unlink(tmp.c_str());
      return r;
    }
    if (sync && ::fsync(fd.get()) != 0) {
      int err = errno;
      ::unlink(tmp.c_str());
      return fail_errno("fsync", tmp.string(), err);
    }
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    return fail_errno("rename " + tmp.string() + " to", path.string(), err);
  }
  return {};
}

Result<void> make_dirs(const std::filesystem::path& path, mode_t mode) {
  std::error_code ec;
  std::filesystem::create_directories(path, ec);
  if (ec) {
    return fail(Error::from_errno("create directory", path.string(), ec.value()));
  }
  if (mode != 0755) {
    if (::chmod(path.c_str(), mode) != 0) {
      return fail_errno("chmod", path.string());
    }
  }
  return {};
}

Result<void> remove_tree(const std::filesystem::path& path) {
  std::error_code ec;
  std::filesystem::remove_all(path, ec);
  if (ec && ec.value() != ENOENT) {
    return fail(Error::from_errno("remove", path.string(), ec.value()));
  }
  return {};
}

}  // namespace berth::util
