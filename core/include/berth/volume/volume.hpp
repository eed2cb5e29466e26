#pragma once
// Named volumes, as Podman's `local` driver: data in <volume_path>/<name>/_data, the record in
// <volume_path>/<name>/volume.json, mount counts of option volumes (type=tmpfs|nfs|none, device=,
// o=) in <runroot>/volumes/<name>.mounts.
//
// Safe under concurrent berth processes without a database: a volume is built in a private
// staging directory and renamed into place (rename fails when the name exists), and removed by
// renaming it away first, so readers never see half a volume and take no lock. Per-volume changes
// (mount count, copy-up, removal) hold an flock on the volume's mount-count file.
//
// For the container module:
//   VolumeStore vs = ...;                            // VolumeStore::open(engine config, events)
//   auto v = vs.get_or_create(name);                  // `-v name:/data` creates it if missing
//   BERTH_TRY(auto host, vs.acquire(name));           // at each start: mounts option volumes
//   BERTH_TRYV(vs.copy_up(name, rootfs, "/data"));   // image content into a new empty volume
//   ... bind `host` into the container; when it exits: vs.release(name) (the last unmounts).
// A mount found at the first acquire with no count behind it (a run root that is gone) is
// replaced by a fresh one, so a reboot or a new --runroot never leaves a stale or stacked mount.
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "berth/config/config.hpp"
#include "berth/events/events.hpp"
#include "berth/sdk/result.hpp"

namespace berth::volume {

struct Volume {
  std::string name;
  std::string driver = "local";
  std::string mountpoint;  // <volume_path>/<name>/_data
  int64_t created_nano = 0;
  std::map<std::string, std::string> labels;
  std::map<std::string, std::string> options;  // type, device, o (uid=/gid= taken out), copy...
  std::string scope = "local";
  std::optional<uint32_t> uid;
  std::optional<uint32_t> gid;
  bool anonymous = false;
  bool needs_copy_up = true;
  bool needs_chown = true;
  uint32_t lock_number = 0;
  uint64_t mount_count = 0;  // from the runroot, not persisted

  // Whether the volume is a mount (type= or device= given) made on first use.
  bool is_mount() const { return options.count("type") != 0 || options.count("device") != 0; }
};

// `podman volume inspect` JSON: Name, Driver, Mountpoint, CreatedAt, Labels, Scope, Options,
// UID, GID, Anonymous, MountCount, NeedsCopyUp, NeedsChown, LockNumber.
nlohmann::json to_inspect_json(const Volume& v);

// The ids of the containers using a volume (from the container module); empty = unused.
using UsedBy = std::function<Result<std::vector<std::string>>(const std::string& volume)>;

struct CreateOptions {
  std::string name;  // empty: a generated 64-hex name (an anonymous-style name, as Podman)
  std::string driver = "local";
  std::map<std::string, std::string> labels;
  // --opt key=value: type, device, o (with uid=, gid=, size= ... mount options), uid, gid, copy,
  // nocopy. Unknown keys are refused as Podman's local driver does.
  std::map<std::string, std::string> options;
  bool ignore_existing = false;  // --ignore: return the existing volume
  bool anonymous = false;        // made by `run -v /path` rather than by name
};

struct RemoveOptions {
  bool force = false;  // remove even when in use or mounted
  UsedBy used_by;      // empty: the volume is treated as unused by containers
  // With force and users: removes those containers first (the container module supplies it);
  // when empty, a used volume is refused even with force.
  std::function<Result<void>(const std::vector<std::string>& container_ids,
                             std::optional<unsigned> timeout)>
      remove_containers;
  std::optional<unsigned> timeout;  // -t: seconds to stop containers before removing them
};

class VolumeStore;
using VolumeStorePtr = std::unique_ptr<VolumeStore>;

class VolumeStore {
 public:
  // `events` may be null (no events); when given it must outlive the store.
  static Result<VolumeStorePtr> open(const std::filesystem::path& volume_path,
                                     const std::filesystem::path& runroot,
                                     const events::EventLog* events = nullptr);
  // engine.volume_path and the storage runroot of the configuration.
  static Result<VolumeStorePtr> open(const config::Config& cfg,
                                     const events::EventLog* events = nullptr);

  Result<Volume> create(const CreateOptions& opts);
  // The named volume, created with defaults when missing (`run -v name:/path`).
  Result<Volume> get_or_create(const std::string& name);
  Result<Volume> get(std::string_view name) const;
  Result<bool> exists(std::string_view name) const;
  // Filters of `podman volume ls`: name= (regex), driver=, scope=, label=key[=value],
  // label!=key[=value], opt=key[=value], until= (created before), dangling=true|false (needs
  // `used_by`). Values of one key are ORed, keys ANDed. Sorted by name.
  Result<std::vector<Volume>> list(const std::vector<std::string>& filters,
                                   const UsedBy& used_by = {}) const;
  Result<void> remove(std::string_view name, const RemoveOptions& opts);
  // Removes every unused volume matching `filters` (label=, label!=, until=); returns the names.
  Result<std::vector<std::string>> prune(const std::vector<std::string>& filters,
                                         const UsedBy& used_by);

  // Tar of the volume's data to `out_fd` (`volume export`).
  Result<void> export_tar(std::string_view name, int out_fd);
  // Extracts a tar (plain, gzip or zstd) from `in_fd` into the volume (`volume import`).
  Result<void> import_tar(std::string_view name, int in_fd);

  // For a container: the host path to bind-mount. Option volumes are mounted on the first
  // acquire and unmounted by the last release; the count lives in the runroot.
  Result<std::string> acquire(std::string_view name);
  Result<void> release(std::string_view name);
  // Podman's copy-up: when the volume still needs it (first use, no `nocopy` option) and its
  // data is empty, copies <image_rootfs>/<path_in_image> (ownership, modes, xattrs kept) into the
  // volume and gives the volume's root that directory's owner and mode. Returns whether anything
  // was copied. Clears NeedsCopyUp either way.
  Result<bool> copy_up(std::string_view name, const std::filesystem::path& image_rootfs,
                       const std::filesystem::path& path_in_image);
  // Podman's chown on first use: when NeedsChown (no uid=/gid= option) and the volume is not yet
  // used, chowns the data root to the container's user. Clears NeedsChown.
  Result<void> chown_for_container(std::string_view name, uint32_t uid, uint32_t gid);

  const std::filesystem::path& volume_path() const { return volume_path_; }

 private:
  VolumeStore(std::filesystem::path volume_path, std::filesystem::path runroot,
              const events::EventLog* events)
      : volume_path_(std::move(volume_path)), runroot_(std::move(runroot)), events_(events) {}

  std::filesystem::path dir_of(std::string_view name) const { return volume_path_ / name; }
  std::filesystem::path count_file(std::string_view name) const;
  Result<void> save(const Volume& v) const;
  Result<uint64_t> read_count(std::string_view name) const;
  void emit(std::string_view status, const Volume& v) const;
  void cleanup_stale() const;

  std::filesystem::path volume_path_;
  std::filesystem::path runroot_;
  const events::EventLog* events_ = nullptr;
};

// Podman's rule for volume names: [a-zA-Z0-9][a-zA-Z0-9_.-]*.
Result<void> validate_name(std::string_view name);

}  // namespace berth::volume
