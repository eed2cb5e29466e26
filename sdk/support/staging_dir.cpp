#include "berth/sdk/staging_dir.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

namespace berth::sdk {

namespace fs = std::filesystem;

namespace {
UniqueFd lock_dir(const fs::path& dir, int op) {
  UniqueFd fd(::open((dir / ".lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
  if (fd && ::flock(fd.get(), op) != 0) {
    fd.reset();
  }
  return fd;
}
}  // namespace

StagingDir::StagingDir(fs::path p, UniqueFd lock) : path_(std::move(p)), lock_(std::move(lock)) {}

StagingDir::~StagingDir() {
  if (!path_.empty()) {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
}

Result<std::unique_ptr<StagingDir>> make_staging(const fs::path& dir, const std::string& what,
                                                 const std::string& who) {
  UniqueFd guard = lock_dir(dir, LOCK_SH);
  if (!guard) {
    return fail_errno(who + ": lock staging area", (dir / ".lock").string());
  }
  std::string tmpl = (dir / (what + "-XXXXXX")).string();
  if (::mkdtemp(tmpl.data()) == nullptr) {
    return fail_errno(who + ": create staging directory", tmpl);
  }
  UniqueFd lock(::open(tmpl.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!lock || ::flock(lock.get(), LOCK_EX) != 0) {
    const int err = errno;
    ::rmdir(tmpl.c_str());
    return fail_errno(who + ": lock staging directory", tmpl, err);
  }
  return std::make_unique<StagingDir>(tmpl, std::move(lock));
}

void clean_staging(const fs::path& dir, const std::function<bool(const fs::path&)>& before_remove) {
  UniqueFd guard = lock_dir(dir, LOCK_EX);
  if (!guard) {
    return;
  }
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    if (entry.path().filename() == ".lock") {
      continue;
    }
    UniqueFd fd(::open(entry.path().c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!fd || ::flock(fd.get(), LOCK_EX | LOCK_NB) != 0) {
      continue;
    }
    if (before_remove && !before_remove(entry.path())) {
      continue;
    }
    std::error_code rm;
    fs::remove_all(entry.path(), rm);
  }
}

}  // namespace berth::sdk
