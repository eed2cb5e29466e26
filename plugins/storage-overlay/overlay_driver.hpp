#pragma once
// The overlay driver, laid out as containers/storage's overlay driver. Under the driver's home:
// (<id> stands for the directory name: see dir_name)
//   <id>/diff     the layer's own content (an image layer's files, a container's upper dir)
//   <id>/work     overlay's work dir (container layers only)
//   <id>/merged   the mount point
//   <id>/link     the layer's short name: l/<link> -> ../<id>/diff
//   <id>/lower    the parents, top first, as "l/<link>:l/<link>..." (absent for a base layer)
//   l/            26-character links, so that a long chain fits one page of mount options
//   staging/      layers being made or removed (flock-ed by their maker); leftovers of killed
//                 processes are removed at the next start
// Under the run root (volatile): overlay-mounts/<id>, the mount count shared by every process,
// and overlay-probe, what the host's probe found (kept until reboot).
#include <filesystem>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "berth/sdk/mount_counter.hpp"
#include "berth/sdk/storage.hpp"
#include "overlay_mount.hpp"

namespace berth::storage_overlay {

// The driver's options (PluginContext::options_json, all values strings).
struct OverlayOptions {
  std::string mount_program;          // fuse-overlayfs path; "" = kernel overlay
  std::vector<std::string> mountopt;  // extra mount options
  bool skip_mount_home = false;       // do not make the home a private bind mount
  bool ignore_chown_errors = false;   // rootless with one id: keep files owned by the user
  std::string force_mask;             // refused: not implemented
  std::string size;                   // refused: needs project quotas
  std::string mount_api;              // "" (auto), "lowerdir+" or "data" (tests, old kernels)
};
Result<OverlayOptions> parse_options(const std::string& json);

// What the probe found on this host (cached in the run root).
struct HostFacts {
  bool kernel_ok = false;
  std::string kernel_error;  // why kernel overlay was refused
  bool lowerdir_plus = false;
  bool native_diff = false;  // the upper dir is exactly the change (no redirect_dir, metacopy)
  bool d_type = false;
  std::string backing_fs;
};

class OverlayDriver final : public sdk::StorageDriver {
 public:
  static Result<sdk::StorageDriverPtr> make(const sdk::PluginContext& ctx);

  std::string name() const override { return "overlay"; }
  sdk::ProbeResult probe() override;
  sdk::WhiteoutFormat whiteout_format() const override { return sdk::WhiteoutFormat::Overlay; }

  // Staged then renamed into place (a concurrent create of the same id gets AlreadyExists).
  // A parent with children is not removed (Conflict), nor a mounted layer (Busy).
  Result<void> create(const std::string& id, const std::string& parent,
                      const sdk::CreateOptions& opts) override;
  Result<void> remove(const std::string& id) override;
  bool exists(const std::string& id) override;

  // A layer without parents is its diff dir (nothing to merge); any other is an overlay on
  // <id>/merged: upper + work for a container layer, read-only lowers for an image layer or a
  // read_only mount. Counted across processes; the first mount mounts, the last unmount
  // unmounts. Unmounting a layer that is not mounted succeeds.
  Result<std::string> mount(const std::string& id, const sdk::MountOptions& opts) override;
  Result<void> unmount(const std::string& id) override;
  Result<std::string> layer_path(const std::string& id) override;

  Result<uint64_t> apply_diff(const std::string& id, int tar_fd,
                              const sdk::ApplyOptions& opts) override;
  Result<sdk::LayerUsage> usage(const std::string& id) override;
  // Native: the diff dir is the change. NotSupported (the core then diffs naively) when the
  // parent asked for is not the layer's parent or the host's overlay is not native-diff safe.
  Result<UniqueFd> diff(const std::string& id, const std::string& parent) override;
  Result<std::vector<sdk::Change>> changes(const std::string& id,
                                           const std::string& parent) override;
  std::vector<std::pair<std::string, std::string>> status() override;
  // Releases the mounts this instance still holds, then the home's private bind mount if this
  // instance made it and nothing is mounted below it any more.
  Result<void> cleanup() override;

 private:
  OverlayDriver(std::filesystem::path home, std::filesystem::path run_root, OverlayOptions opts,
                sdk::MountCounter counter)
      : home_(std::move(home)),
        run_root_(std::move(run_root)),
        opts_(std::move(opts)),
        counter_(std::move(counter)) {}

  std::filesystem::path dir(const std::string& id) const { return home_ / dir_name(id); }
  // A layer's directory name: the id, with a '+' before ids that are the driver's own names
  // ("l", "staging") or start with '+' themselves, so that every id has a directory of its own.
  static std::string dir_name(const std::string& id);
  static std::string id_of(const std::string& dir_name);
  Result<void> require(const std::string& id);
  // The parents' links, top first ("l/ABC..."); empty for a base layer.
  Result<std::vector<std::string>> lowers_of(const std::string& id);
  // The id of `id`'s parent ("" for a base layer), found through its first lower link.
  Result<std::string> parent_of(const std::string& id);
  // Recreates l/<link> entries lost to a crash between a layer's rename and its link.
  Result<void> ensure_links(const std::vector<std::string>& lowers);
  // The user namespace to idmap the lowers of `id` with: from `given` (Podman's idmap option
  // value, then recorded with the layer) or the recorded one; an empty fd when neither. For a
  // read-write mount the upper dir's root is chowned to the mapped root.
  Result<UniqueFd> idmap_for(const std::string& id, const std::string& given, bool rw);
  Result<void> check_parent(const std::string& id, const std::string& parent);
  Result<void> setup_home();
  void probe_host();
  bool using_metacopy() const;
  bool native_diff() const;

  std::filesystem::path home_;
  std::filesystem::path run_root_;
  OverlayOptions opts_;
  sdk::MountCounter counter_;
  HostFacts facts_;
  MountMethod method_ = MountMethod::LowerdirPlus;
  std::string program_;  // with MountMethod::Program
  bool supported_ = false;
  std::string reason_;
  bool made_home_mount_ = false;
  std::mutex held_mu_;
  std::map<std::string, long> held_;  // mounts taken by this instance and not yet released
};

}  // namespace berth::storage_overlay
