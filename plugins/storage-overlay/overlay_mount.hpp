#pragma once
// Mounting one overlay: the kernel's new mount API (fsconfig "lowerdir+", no size limit), the
// classic mount(2) data page (4096 bytes, short relative links), or a FUSE mount program
// (fuse-overlayfs) exec'd with the same options.
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "berth/sdk/result.hpp"
#include "berth/sdk/unique_fd.hpp"

namespace berth::storage_overlay {

// The kernel's limit on lower layers (OVL_MAX_STACK).
inline constexpr size_t kMaxKernelLowers = 500;

enum class MountMethod {
  LowerdirPlus,  // fsopen + fsconfig(lowerdir+) per layer: kernel 6.8 and later
  DataPage,      // mount(2) with "lowerdir=l/A:l/B,...": limited to one page of options
  Program,       // exec a mount program (fuse-overlayfs)
};

const char* method_name(MountMethod m);

struct OverlayMount {
  std::filesystem::path home;        // lowers, upper and work are relative to it
  std::vector<std::string> lowers;   // top first, e.g. "l/7XQ2..." (followed as symlinks)
  std::string upper;                 // "" for a read-only mount
  std::string work;                  // with upper
  std::vector<std::string> options;  // extra options: "nodev", "metacopy=on"
  std::filesystem::path target;      // absolute
  // A user namespace fd: the lower layers are mounted idmapped through it (open_tree +
  // mount_setattr(MOUNT_ATTR_IDMAP)), so that their files appear owned by the namespace's host
  // ids without a chown of the shared layers. -1: no idmapping. LowerdirPlus only.
  int userns_fd = -1;
};

// An id map in Podman's idmap mount option form: "uids=0-100000-65536#...;gids=0-100000-65536"
// (each triplet: first id on disk, first id on the host, count). A map without gids uses the
// uids for both.
struct IdMapEntry {
  uint32_t from = 0;
  uint32_t to = 0;
  uint32_t size = 0;
};
struct IdMaps {
  std::vector<IdMapEntry> uids;
  std::vector<IdMapEntry> gids;
};
Result<IdMaps> parse_idmap(const std::string& text);

// A user namespace with `maps` (made by a short-lived child), as an fd for MOUNT_ATTR_IDMAP.
Result<UniqueFd> make_userns(const IdMaps& maps);

// Mounts `m` with `method`; `program` is the mount program for MountMethod::Program. Errors name
// the target, the method and what the kernel or the program said.
Result<void> mount_overlay(const OverlayMount& m, MountMethod method, const std::string& program);

// Detaches the mount on `target`. A target that is no mount point is left alone.
Result<void> unmount_overlay(const std::filesystem::path& target);

// Whether `p` is the root of a mount (not merely a directory of its parent's filesystem).
bool is_mount_point(const std::filesystem::path& p);

enum class MountState { None, Live, Dead };  // Dead: a FUSE mount whose daemon is gone
MountState mount_state(const std::filesystem::path& p);

// Whether the running kernel accepts fsconfig "lowerdir+" for overlay (tried with `some_dir`).
bool kernel_has_lowerdir_plus(const std::filesystem::path& some_dir);

}  // namespace berth::storage_overlay
