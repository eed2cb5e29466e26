#pragma once
// The container's filesystem view, set up by its init in its own mount namespace.
#include <string>

#include "oci_config.hpp"

namespace berth::runtime {

// Before pivot_root: root propagation, rootfs bind, the spec's mounts in order, /dev nodes and
// links. Every destination is resolved inside the rootfs (openat2 RESOLVE_IN_ROOT), so a symlink
// in the image cannot redirect a mount onto the host.
Result<void> prepare_rootfs(const ContainerSpec& spec);
// pivot_root(".", ".") then a lazy unmount of the old root.
Result<void> pivot_to_rootfs(const std::string& rootfs);
// After pivot_root: masked paths, read-only paths, sysctls, read-only root.
Result<void> finish_rootfs(const ContainerSpec& spec);
// mkdir -p of `path` in the current root (used for process.cwd).
Result<void> make_dirs_in_root(const std::string& path);

}  // namespace berth::runtime
