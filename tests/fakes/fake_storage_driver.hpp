#pragma once
// The one fake berth::sdk::StorageDriver every test uses: plain directories under a home, filled
// by the SDK's extract_layer. VfsLike copies the parent into a new layer (as the vfs driver does,
// whiteouts delete); OverlayLike keeps only the layer's own changes (whiteouts as 0:0 devices).
#include <sys/stat.h>

#include <atomic>
#include <filesystem>
#include <map>
#include <mutex>
#include <string>
#include <system_error>

#include "berth/sdk/layer_archive.hpp"
#include "berth/sdk/storage.hpp"

namespace berth::testing {

class FakeStorageDriver : public sdk::StorageDriver {
 public:
  enum class Mode { VfsLike, OverlayLike };
  explicit FakeStorageDriver(std::filesystem::path home, Mode mode = Mode::VfsLike)
      : home_(std::move(home)), mode_(mode) {
    std::filesystem::create_directories(home_ / "layers");
  }

  std::string name() const override { return mode_ == Mode::VfsLike ? "vfs" : "fake-overlay"; }
  sdk::ProbeResult probe() override { return {true, "plain directories"}; }
  sdk::WhiteoutFormat whiteout_format() const override {
    return mode_ == Mode::VfsLike ? sdk::WhiteoutFormat::Delete : sdk::WhiteoutFormat::Overlay;
  }

  Result<void> create(const std::string& id, const std::string& parent,
                      const sdk::CreateOptions& /*opts*/) override {
    auto dir = dir_of(id);
    std::error_code ec;
    if (std::filesystem::exists(dir, ec)) {
      return fail(Errc::AlreadyExists, "fake driver: layer " + id + " exists");
    }
    if (!parent.empty() && !std::filesystem::exists(dir_of(parent), ec)) {
      return fail(Errc::NotFound, "fake driver: parent layer " + parent + " does not exist");
    }
    if (::mkdir(dir.c_str(), 0755) != 0) {
      return fail_errno("mkdir", dir.string());
    }
    if (!parent.empty()) {
      std::lock_guard g(mu_);
      parents_[id] = parent;
    }
    if (mode_ == Mode::VfsLike && !parent.empty()) {
      return sdk::copy_tree(dir_of(parent), dir);
    }
    return {};
  }
  Result<void> remove(const std::string& id) override {
    {
      // As the real drivers: a mounted layer stays.
      std::lock_guard g(mu_);
      if (mounts_[id] > 0) {
        return fail(Errc::Conflict, "fake driver: layer " + id + " is mounted");
      }
    }
    std::error_code ec;
    std::filesystem::remove_all(dir_of(id), ec);
    if (ec) {
      return fail(Errc::Internal, "fake driver: remove " + id + ": " + ec.message());
    }
    ++removes;
    return {};
  }
  bool exists(const std::string& id) override {
    std::error_code ec;
    return std::filesystem::is_directory(dir_of(id), ec);
  }
  Result<std::string> mount(const std::string& id, const sdk::MountOptions& /*opts*/) override {
    if (!exists(id)) {
      return fail(Errc::NotFound, "fake driver: no layer " + id);
    }
    std::lock_guard g(mu_);
    ++mounts_[id];
    return dir_of(id).string();
  }
  Result<void> unmount(const std::string& id) override {
    std::lock_guard g(mu_);
    if (mounts_[id] == 0) {
      return fail(Errc::InvalidArgument, "fake driver: layer " + id + " is not mounted");
    }
    --mounts_[id];
    return {};
  }
  Result<std::string> layer_path(const std::string& id) override {
    if (!exists(id)) {
      return fail(Errc::NotFound, "fake driver: no layer " + id);
    }
    return dir_of(id).string();
  }
  Result<uint64_t> apply_diff(const std::string& id, int tar_fd,
                              const sdk::ApplyOptions& opts) override {
    ++applies;
    sdk::ExtractOptions eo;
    eo.whiteouts = whiteout_format();
    eo.allow_devices = opts.allow_devices;
    eo.uid_shift = opts.uid_shift;
    eo.gid_shift = opts.gid_shift;
    auto r = sdk::extract_layer(tar_fd, dir_of(id), eo);
    if (!r) {
      return fail(std::move(r).error());
    }
    return r->bytes;
  }
  Result<sdk::LayerUsage> usage(const std::string& id) override {
    return sdk::tree_usage(dir_of(id));
  }

  int mount_count(const std::string& id) {
    std::lock_guard g(mu_);
    return mounts_[id];
  }
  std::filesystem::path dir_of(const std::string& id) const { return home_ / "layers" / id; }

  std::atomic<int> applies{0};
  std::atomic<int> removes{0};

 private:
  std::filesystem::path home_;
  Mode mode_;
  std::mutex mu_;
  std::map<std::string, int> mounts_;
  std::map<std::string, std::string> parents_;
};

}  // namespace berth::testing
