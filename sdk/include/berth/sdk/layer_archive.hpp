#pragma once
// Layer tar streams: extraction into a layer directory with whiteouts mapped to what the driver
// needs, and tar creation from a directory. Every storage driver may link these
// (BerthSDK::support), so hostile archives are refused the same way whichever driver holds the
// layer.
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "berth/sdk/id_map.hpp"
#include "berth/sdk/result.hpp"
#include "berth/sdk/storage.hpp"

namespace berth::sdk {

struct ExtractOptions {
  WhiteoutFormat whiteouts = WhiteoutFormat::Delete;
  bool allow_devices = true;      // false: a device node in the archive is an error
  bool restore_ownership = true;  // chown entries (needs CAP_CHOWN; rootless stores shift ids)
  uint32_t uid_shift = 0;
  uint32_t gid_shift = 0;
};

struct ExtractStats {
  uint64_t bytes = 0;    // regular file content written
  uint64_t entries = 0;  // tar entries processed
};

// Extracts the tar stream read from `tar_fd` (plain, gzip or zstd) into the existing directory
// `dest`. Paths that are absolute, contain "..", or would be written through a symlink, hard links
// or symlinks leading out of `dest` are refused with Errc::InvalidArgument naming the entry;
// nothing outside `dest` is ever touched. OCI/AUFS whiteouts (.wh.NAME, .wh..wh..opq) become
// deletions (Delete) or 0:0 char devices and the trusted.overlay.opaque xattr (Overlay).
Result<ExtractStats> extract_layer(int tar_fd, const std::filesystem::path& dest,
                                   const ExtractOptions& opts);

// Writes an uncompressed tar of the whole tree under `dir` to `out_fd` (paths relative to dir,
// ownership, modes, times, xattrs, hard links kept). With Overlay, whiteout devices and opaque
// xattrs in `dir` are written back as .wh. entries.
Result<void> write_tree_tar(const std::filesystem::path& dir, int out_fd, WhiteoutFormat whiteouts);

struct TreeTarOptions {
  WhiteoutFormat whiteouts = WhiteoutFormat::Delete;
  // The tree is a user namespace's files with host owners (a container's rootfs): the tar gets
  // the owners the namespace sees, an id outside its maps IdMappings::kOverflowId.
  IdMappings ids;
};
// As above, with the owners mapped.
Result<void> write_tree_tar(const std::filesystem::path& dir, int out_fd,
                            const TreeTarOptions& opts);

// Copies the tree `from` into the existing directory `to` with ownership, modes, times, xattrs,
// symlinks, hard links and device nodes kept (the vfs driver's layer copy).
Result<void> copy_tree(const std::filesystem::path& from, const std::filesystem::path& to);

// Disk usage of a tree: bytes of regular files (hard links counted once) and inodes.
Result<LayerUsage> tree_usage(const std::filesystem::path& dir);

}  // namespace berth::sdk
