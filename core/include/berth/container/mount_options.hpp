#pragma once
// A container's storage flags (run/create -v, --mount, --tmpfs, --volumes-from, --read-only-tmpfs),
// stored with its record. Owned by core/src/container/mounts_glue.cpp.
//
// Named volumes are used as Podman does: recorded at create, acquired (an option volume mounted,
// its mount count raised) each time the container starts and released when it stops, so a
// reboot, which empties the run root and the mounts together, leaves nothing stale.
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "berth/sdk/result.hpp"

namespace berth::container {

// One mount the container got, as `podman inspect` shows it under Mounts.
struct MountPoint {
  std::string type;  // "bind", "volume", "tmpfs", "image"
  std::string name;  // volume name or image id; "" for bind and tmpfs
  std::string source;
  std::string destination;
  std::string driver;  // "local" for volumes
  std::string mode;    // "z", "Z", "" (SELinux relabel requested; accepted, not applied)
  bool rw = true;
  std::string propagation;           // "rprivate", "rshared", ...; "" for tmpfs
  std::vector<std::string> options;  // the spec's mount options
  bool anonymous = false;            // an anonymous volume (removed with `rm -v`)
  // Named volumes, applied when the container starts (the volume is mounted then): copy the
  // image's content into a new volume (nocopy clears it), chown it to the container's user (U).
  bool copy_up = true;
  bool chown = false;
  // A volume's subdirectory mounted instead of its root (--mount ...,subpath=, Docker's
  // VolumeOptions.Subpath): relative, checked at each start to stay inside the volume.
  std::string subpath;
};
void to_json(nlohmann::json& j, const MountPoint& m);
void from_json(const nlohmann::json& j, MountPoint& m);

struct MountOptions {
  std::vector<std::string> volumes;       // -v/--volume specs as given
  std::vector<std::string> mounts;        // --mount specs as given
  std::vector<std::string> tmpfs;         // --tmpfs DEST[:OPTIONS]
  std::vector<std::string> volumes_from;  // --volumes-from CTR[:ro|rw]
  // --read-only-tmpfs: with --read-only, tmpfs on /tmp, /var/tmp and /run (default true).
  bool read_only_tmpfs = true;
  // A read-only bind that does not choose (bind-recursive=...) is recursively read-only, its
  // submounts too, where the kernel can (Docker API 1.44 and later); else only its top mount is
  // (Podman's -v ...:ro and --mount ...,ro, and Docker API clients before 1.44).
  bool recursive_read_only_binds = false;
  // Filled at create: the named volumes this container holds (anonymous ones included) and which
  // of them are anonymous (removed with `rm -v`).
  std::vector<std::string> named_volumes;
  std::vector<std::string> anonymous_volumes;
  // Filled at create: images mounted for `--mount type=image` (unmounted at removal).
  std::vector<std::string> image_mounts;
  // Filled at create: every mount made, in order.
  std::vector<MountPoint> mount_points;
};
void to_json(nlohmann::json& j, const MountOptions& o);
void from_json(const nlohmann::json& j, MountOptions& o);

// The parsed form of one -v, --mount or --tmpfs flag (exposed for tests and the API).
struct MountRequest {
  std::string type;    // "bind", "volume", "tmpfs", "image"
  std::string source;  // host path, volume name ("" = anonymous) or image
  std::string destination;
  bool read_only = false;
  std::string relabel;      // "z" / "Z"
  bool chown = false;       // U: chown the source to the container's user
  std::string propagation;  // "" = default
  bool recursive = true;    // rbind (bind-nonrecursive / "bind" clears it)
  // Docker's bind-recursive for a read-only bind: "enabled" (recursively read-only where the
  // kernel can), "writable" (the top mount only: ReadOnlyNonRecursive), "readonly" (recursively
  // or an error: ReadOnlyForceRecursive); "" = MountOptions::recursive_read_only_binds decides.
  std::string read_only_recursion;
  std::optional<bool> copy;  // copy / nocopy (volumes)
  std::string subpath;       // volumes: subpath= / volume-subpath= (a directory of the volume)
  // tmpfs: copy the image's content at the destination into the new tmpfs (tmpcopyup, Podman's
  // default) or not (notmpcopyup).
  std::optional<bool> tmpcopyup;
  std::vector<std::string> flags;           // nosuid, nodev, noexec, suid, dev, exec
  std::vector<std::string> tmpfs_options;   // size=, mode=, ...
  std::vector<std::string> volume_options;  // volume-opt=key=value (a new named volume)
};
// -v SRC:DEST[:OPTS] | NAME:DEST[:OPTS] | DEST
Result<MountRequest> parse_volume_flag(const std::string& spec);
// --mount type=...,src=...,dst=...,...
Result<MountRequest> parse_mount_flag(const std::string& spec);
// --tmpfs DEST[:OPTS]
Result<MountRequest> parse_tmpfs_flag(const std::string& spec);

}  // namespace berth::container
