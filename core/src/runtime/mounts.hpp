#pragma once
// The container's filesystem view, set up by its init in its own mount namespace.
#include <functional>
#include <string>
#include <vector>

#include "oci_config.hpp"

namespace berth::runtime {

// Before pivot_root: root propagation, rootfs bind, the spec's mounts in order, /dev nodes and
// links. Every destination is resolved inside the rootfs (openat2 RESOLVE_IN_ROOT), so a symlink
// in the image cannot redirect a mount onto the host.
// `source_fds` (by mount index, -1 for none): bind sources cloned (open_tree) by the host's root
// before the user namespace, whose root may not search the directories above them (a store's
// 0700 directories): attached with move_mount.
// `before_cgroup_mounts`, when given, runs once before the first cgroup filesystem is mounted
// (or at the end when there is none): the init enters its cgroup namespace there, while the
// mounts before it overlap the runtime's cgroup attach.
Result<void> prepare_rootfs(const ContainerSpec& spec, const std::vector<int>& source_fds = {},
                            const std::function<Result<void>()>& before_cgroup_mounts = {});
// pivot_root(".", ".") then a lazy unmount of the old root.
Result<void> pivot_to_rootfs(const std::string& rootfs);
// After pivot_root: masked paths, read-only paths, sysctls, read-only root. With `skip_net`,
// the net.* sysctls are left out (written before the user namespace: see write_net_sysctls).
Result<void> finish_rootfs(const ContainerSpec& spec, bool skip_net = false);
// The net.* sysctls, written through the host's /proc into the network namespace joined (one
// made by the host, which the container's user namespace does not own). Group ranges
// (net.ipv4.ping_group_range) are translated to the host's gids through the spec's gid maps.
Result<void> write_net_sysctls(const ContainerSpec& spec);
// mkdir -p of `path` in the current root (used for process.cwd).
Result<void> make_dirs_in_root(const std::string& path);

}  // namespace berth::runtime
