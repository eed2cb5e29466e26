#pragma once
// The vfs driver. On disk, under the driver's home:
//   dir/<id>/          the layer: a full copy of its parent plus its own changes (the mount root)
//   parents/<id>       the parent's id ("" for a base layer)
//   staging/           layers being made or removed; leftovers are from killed processes
// and under the run root (volatile): vfs-mounts/<id>, the mount count, updated under flock so
// every process using the store agrees.
#include <filesystem>
#include <string>
#include <vector>

#include "berth/sdk/mount_counter.hpp"
#include "berth/sdk/storage.hpp"

namespace berth::storage_vfs {

class VfsDriver final : public sdk::StorageDriver {
 public:
  static Result<sdk::StorageDriverPtr> make(const sdk::PluginContext& ctx);

  std::string name() const override { return "vfs"; }
  sdk::ProbeResult probe() override;
  sdk::WhiteoutFormat whiteout_format() const override { return sdk::WhiteoutFormat::Delete; }

  // A parent may be removed while children exist: each child is a full copy and stays whole.
  // A mounted layer is not removed (Busy).
  Result<void> create(const std::string& id, const std::string& parent,
                      const sdk::CreateOptions& opts) override;
  Result<void> remove(const std::string& id) override;
  bool exists(const std::string& id) override;

  // The mount is the layer directory itself; read_only and mount options cannot be enforced
  // without a real mount and are ignored. Unmounting a layer that is not mounted succeeds.
  Result<std::string> mount(const std::string& id, const sdk::MountOptions& opts) override;
  Result<void> unmount(const std::string& id) override;
  Result<std::string> layer_path(const std::string& id) override;

  Result<uint64_t> apply_diff(const std::string& id, int tar_fd,
                              const sdk::ApplyOptions& opts) override;
  Result<sdk::LayerUsage> usage(const std::string& id) override;
  // Naive: compares the layer's tree with its parent's (both full copies).
  Result<UniqueFd> diff(const std::string& id, const std::string& parent) override;
  Result<std::vector<sdk::Change>> changes(const std::string& id,
                                           const std::string& parent) override;
  std::vector<std::pair<std::string, std::string>> status() override;

 private:
  VfsDriver(std::filesystem::path home, sdk::MountCounter counter)
      : home_(std::move(home)), counter_(std::move(counter)) {}

  std::filesystem::path layer_dir(const std::string& id) const { return home_ / "dir" / id; }
  std::filesystem::path parent_file(const std::string& id) const { return home_ / "parents" / id; }
  Result<void> require(const std::string& id);
  // Adds `delta` to the mount count of an existing layer (never below 0); returns the new count.
  Result<long> add_mounts(const std::string& id, long delta);
  // The tree `parent` as seen by `id`'s diff: the parent's directory, or an empty one.
  Result<std::filesystem::path> base_of(const std::string& id, const std::string& parent);

  std::filesystem::path home_;
  sdk::MountCounter counter_;  // <run_root>/vfs-mounts/<id>
};

}  // namespace berth::storage_vfs
