#pragma once
// berth.storage.v1: a way to lay out layers on disk and mount them as a container's root.
// The core owns the layer store (ids, parents, digests, locking); a driver owns only directories
// under its home. Within v1 this interface only grows by appending virtual methods with defaults.
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "berth/sdk/plugin.hpp"
#include "berth/sdk/result.hpp"
#include "berth/sdk/unique_fd.hpp"

namespace berth::sdk {

// How a driver wants whiteouts in an applied layer to land on disk.
enum class WhiteoutFormat {
  Delete,   // remove the hidden path (vfs: every layer is a full copy)
  Overlay,  // 0:0 character device for a deleted path; trusted.overlay.opaque=y for opaque dirs
};

struct ProbeResult {
  bool supported = false;
  std::string reason;  // why (not) supported, shown by `berth info`
};

struct CreateOptions {
  bool read_write = false;  // a container's layer rather than an image layer
  std::map<std::string, std::string> storage_opts;  // --storage-opt key=value (size=...)
};

struct MountOptions {
  std::vector<std::string> options;  // extra mount options (mountopt)
  std::string mount_label;
  bool read_only = false;
};

struct ApplyOptions {
  bool allow_devices = true;  // refuse device nodes when false
  // uid/gid shift for rootless stores: container id 0 maps to this host id.
  uint32_t uid_shift = 0;
  uint32_t gid_shift = 0;
};

struct LayerUsage {
  uint64_t bytes = 0;
  uint64_t inodes = 0;
};

struct Change {
  enum class Kind { Added, Modified, Deleted };
  std::string path;  // absolute inside the container: "/etc/hosts"
  Kind kind = Kind::Modified;
};

class BERTH_EXPORT StorageDriver {
 public:
  static constexpr const char* kKind = BERTH_KIND_storage;
  virtual ~StorageDriver() = default;

  virtual std::string name() const = 0;
  // Whether this host supports the driver as configured, and why.
  virtual ProbeResult probe() = 0;
  virtual WhiteoutFormat whiteout_format() const = 0;

  // Makes an empty layer `id` on top of `parent` ("" for a base layer). AlreadyExists if present;
  // NotFound for an unknown parent.
  virtual Result<void> create(const std::string& id, const std::string& parent,
                              const CreateOptions& opts) = 0;
  // Removes the layer. Removing an unknown id succeeds (idempotent). Removing a mounted layer is
  // Busy. A driver may refuse to remove a layer that has children (Conflict, both untouched); if it
  // removes it, every child must stay whole. The core removes children first.
  virtual Result<void> remove(const std::string& id) = 0;
  virtual bool exists(const std::string& id) = 0;

  // Mounts the layer with its parents and returns the root path. Mounts are counted (also across
  // processes): n mounts need n unmounts, and every mount returns the same path while mounted.
  // NotFound for an unknown id.
  virtual Result<std::string> mount(const std::string& id, const MountOptions& opts) = 0;
  // Unmounting a layer that is not mounted succeeds and changes nothing (the count never goes below
  // zero). NotFound for an unknown id.
  virtual Result<void> unmount(const std::string& id) = 0;
  // NotFound for an unknown id (as for apply_diff, usage, diff and changes).
  // The layer's own directory (its upper dir), where apply_diff writes.
  virtual Result<std::string> layer_path(const std::string& id) = 0;

  // Extracts an uncompressed tar stream read from `tar_fd` into the layer; returns the number of
  // bytes of content written. Hostile entries are refused without touching anything outside.
  virtual Result<uint64_t> apply_diff(const std::string& id, int tar_fd,
                                      const ApplyOptions& opts) = 0;
  virtual Result<LayerUsage> usage(const std::string& id) = 0;

  // Optional: a tar stream of what `id` changed relative to `parent`. The core falls back to a
  // naive diff (walking both mounted trees) on NotSupported.
  virtual Result<UniqueFd> diff(const std::string& /*id*/, const std::string& /*parent*/) {
    return fail(Errc::NotSupported, name() + ": diff is not supported");
  }
  // Optional: the paths `id` changed relative to `parent`.
  virtual Result<std::vector<Change>> changes(const std::string& /*id*/,
                                              const std::string& /*parent*/) {
    return fail(Errc::NotSupported, name() + ": changes is not supported");
  }
  // Driver facts for `berth info` (backing filesystem, native diff, ...).
  virtual std::vector<std::pair<std::string, std::string>> status() { return {}; }
  // Unmounts whatever this process mounted; called before the process exits.
  virtual Result<void> cleanup() { return {}; }
};
using StorageDriverPtr = std::unique_ptr<StorageDriver>;
using StorageFactory = Result<StorageDriverPtr>(const PluginContext&);

}  // namespace berth::sdk
