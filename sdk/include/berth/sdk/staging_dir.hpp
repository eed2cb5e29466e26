#pragma once
// Staging directories for drivers that build a layer aside and rename it into place. Each is
// flock-ed while its maker lives, so a later start can tell leftovers of killed processes from work
// in progress, and is removed on scope exit unless released.
#include <filesystem>
#include <functional>
#include <memory>
#include <string>

#include "berth/sdk/result.hpp"
#include "berth/sdk/unique_fd.hpp"

namespace berth::sdk {

class StagingDir {
 public:
  StagingDir(std::filesystem::path p, UniqueFd lock);
  StagingDir(const StagingDir&) = delete;
  StagingDir& operator=(const StagingDir&) = delete;
  ~StagingDir();
  const std::filesystem::path& path() const { return path_; }
  // Keeps the directory (it was renamed into place).
  void release() { path_.clear(); }

 private:
  std::filesystem::path path_;
  UniqueFd lock_;
};

// Makes `<dir>/<what>-XXXXXX` and locks it. `who` names the driver in errors ("vfs").
// Creation and locking happen under a shared lock on `<dir>/.lock`, which clean_staging() takes
// exclusively: a cleaner never sees a directory that exists but is not locked yet.
Result<std::unique_ptr<StagingDir>> make_staging(const std::filesystem::path& dir,
                                                 const std::string& what, const std::string& who);

// Removes the staging directories in `dir` that no live process holds. `before_remove` may detach
// mounts left inside; returning false keeps that directory. Best effort.
void clean_staging(const std::filesystem::path& dir,
                   const std::function<bool(const std::filesystem::path&)>& before_remove = {});

}  // namespace berth::sdk
