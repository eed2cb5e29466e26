#pragma once
// tmpcopyup (an OCI mount option of crun and runc, Podman's default for tmpfs): a new tmpfs gets
// the content of the directory it covers in the rootfs.
#include <string>

#include "berth/sdk/result.hpp"

namespace berth::runtime {

// Copies the entries of the open directory `src_dir` into the open directory `dst_dir`,
// recursively: regular files, directories, symlinks, device nodes, fifos and sockets, with owner,
// mode and times (hard links become separate copies). `what` names the destination in errors.
Result<void> copy_dir_contents(int src_dir, int dst_dir, const std::string& what);

}  // namespace berth::runtime
