#pragma once
// A container's file system from the outside: cp, diff, export, commit, mount/unmount. The CLI
// (core/src/cli/storage_cmds.cpp) and the API call these.
//
// Paths inside a container are always resolved inside its root (openat2 RESOLVE_IN_ROOT): a
// symlink the container planted is followed as the container would see it and never leads to the
// host's files. A path under a volume or bind mount of the container is resolved in that mount's
// source (copying into a volume writes the volume). Stopped containers have their rootfs mounted
// for the duration of the call.
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "berth/engine/engine.hpp"
#include "berth/sdk/result.hpp"
#include "berth/sdk/storage.hpp"

namespace berth::container {

// `berth cp SRC DST`: one of them is "CTR:PATH", the other a host path or "-" (a tar stream on
// `stdio_fd`: read for a copy in, written for a copy out). Modes and times are kept; owners as
// `chown_to_user` says for a copy in; files copied out to the host belong to the user running
// the copy (symlinks themselves, never what they point to), a tar copied out carries the owners
// `tar_owners` says.
// Docker's rules: into an existing directory the source keeps its name; to a path that does not
// exist the source is created under that name; "DIR/." copies the directory's content.
struct CopyOptions {
  std::string source;
  std::string destination;
  int stdin_fd = 0;
  int stdout_fd = 1;
  // A copy into a container is owned by the primary uid/gid of the container's user (`-u`, else
  // the image's USER, else 0:0; names resolved in the container's own /etc/passwd and
  // /etc/group), mapped through its user namespace. false: the owners the source records are
  // kept. Podman's --archive; the Docker API's copyUIDGID.
  bool chown_to_user = true;
  // A directory may be replaced by a non-directory and back. false: such a copy is refused
  // before anything is written. Podman's --overwrite; not the Docker API's noOverwriteDirNonDir.
  // A tar on `stdin_fd` is extracted as it is read, unless an entry may be refused (no
  // `overwrite`, or an owner kept that the container's user namespace might not map): then a
  // regular file is read twice (checked first), a pipe is stored in a temporary file first.
  bool overwrite = false;
  // Owners in the tar of a copy out to "-", as the container sees them. Kept: each file's
  // (Docker; the API's GET /containers/{id}/archive). ContainerUser: the container's user (as
  // for `chown_to_user`) on every entry (Podman's `cp CTR:PATH -`; Podman as root writes the
  // host ids of a user namespace container's user, berth the ids the container sees).
  enum class TarOwners { Kept, ContainerUser };
  TarOwners tar_owners = TarOwners::Kept;
};
Result<void> copy(engine::Engine& eng, const CopyOptions& opts);

// `berth diff`: what the container changed against its image, sorted by path.
Result<std::vector<sdk::Change>> diff(engine::Engine& eng, const std::string& name_or_id);
// 'A', 'C' or 'D', as Podman prints them.
char change_letter(sdk::Change::Kind k);

// `berth export`: a tar of the container's whole root file system (not its volumes).
Result<void> export_rootfs(engine::Engine& eng, const std::string& name_or_id, int out_fd);

// `berth container mount`: mounts the rootfs and returns its path (counted: each mount needs an
// unmount; all go when the container is removed).
Result<std::string> mount(engine::Engine& eng, const std::string& name_or_id);
// `berth container unmount`: undoes one mount (all of them with `force`). Conflict when the
// container was not mounted with `mount`.
Result<void> unmount(engine::Engine& eng, const std::string& name_or_id, bool force);
// `berth container mount` without arguments: (id, path) of each container mounted with `mount`.
Result<std::vector<std::pair<std::string, std::string>>> mounted(engine::Engine& eng);

// `berth commit`.
struct CommitOptions {
  std::string reference;             // IMAGE[:TAG]; "" = untagged
  std::vector<std::string> changes;  // -c/--change
  std::string message;               // -m
  std::string author;                // -a
  bool pause = false;                // --pause: freeze the container while its diff is read
  std::string format = "oci";        // -f oci|docker
};
// Returns the new image's id.
Result<std::string> commit(engine::Engine& eng, const std::string& name_or_id,
                           const CommitOptions& opts);

}  // namespace berth::container
