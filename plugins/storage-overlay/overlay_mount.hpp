#pragma once
// Mounting one overlay: the kernel's new mount API (fsconfig "lowerdir+", no size limit), the
// classic mount(2) data page (4096 bytes, short relative links), or a FUSE mount program
// (fuse-overlayfs) exec'd with the same options.
#include <cstddef>
#include <filesystem>
#include <string>
#include <vector>

#include "berth/sdk/result.hpp"

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
};

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
