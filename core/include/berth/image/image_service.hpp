#pragma once
// The image commands as library functions (load, save, import, images, inspect, tag, untag, rmi,
// history, prune, exists, mount, df, check, reset). The CLI and the API server call these; each
// takes the opened Store (which holds its storage driver) and returns Result.
#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "berth/sdk/result.hpp"
#include "berth/store/store.hpp"

namespace berth::image {

// "Used by a container": the container module answers; absent = never in use.
using InUsePredicate = std::function<bool(const std::string& image_id)>;
// How many containers use the image (for `images` and `df`); absent = 0.
using ContainerCounter = std::function<int(const std::string& image_id)>;

// ---- lookup
// Finds an image as Podman does: full or prefix (>= 3 hex) ID, "sha256:<id>", exact name, a
// short name ("busybox", "busybox:1") matching localhost/, docker.io/library/ or any registry's
// <reg>/busybox:<tag>, and name@digest.
Result<store::ImageRecord> lookup_image(store::Store& store, std::string_view name_or_id);

// ---- load / save / import
struct LoadOptions {
  std::string path;  // an archive file; or
  int fd = -1;       // a stream (stdin); spooled to a temporary file when not seekable
  // Images of an archive load one after another; the layers of one image load in parallel (up
  // to 3) when the driver's layers do not copy their parent (whiteout format Overlay).
};
struct LoadResult {
  // Podman prints "Loaded image: <x>" for each: the name, or "sha256:<id>" for an untagged image.
  std::vector<std::string> loaded;
  std::vector<std::string> ids;
};
Result<LoadResult> load(store::Store& store, const LoadOptions& opts);

enum class SaveFormat { DockerArchive, OciArchive, OciDir, DockerDir };
Result<SaveFormat> parse_save_format(std::string_view s);  // Podman's --format values
struct SaveOptions {
  SaveFormat format = SaveFormat::DockerArchive;
  std::string path;                 // file (archives) or directory (dir formats); or
  int fd = -1;                      // archives only
  std::vector<std::string> images;  // names or ids; a name given is written as the image's tag
};
Result<void> save(store::Store& store, const SaveOptions& opts);

struct ImportOptions {
  std::string path;
  int fd = -1;
  std::string reference;             // name to give ("" = untagged)
  std::vector<std::string> changes;  // "CMD ["/bin/sh"]", "ENV A=b", ...
  std::string message;               // history comment
  std::string os = "linux";
  std::string architecture;  // "" = this host's
};
Result<std::string> import_image(store::Store& store, const ImportOptions& opts);  // -> id
// Applies one Dockerfile-style change to an image config's "config" object.
Result<void> apply_change(nlohmann::json& config, std::string_view change);

// ---- listing and inspection
struct ListOptions {
  std::vector<std::string> filters;  // reference=, before=, since=, label=, dangling=
  std::string sort = "created";      // created, id, repository, tag, size
  ContainerCounter containers;
};
// `podman images --format json` objects.
Result<nlohmann::json> list_images(store::Store& store, const ListOptions& opts);
// `podman image inspect` object (one image).
Result<nlohmann::json> inspect_image(store::Store& store, std::string_view name);
// `podman history --format json` entries, newest first.
Result<nlohmann::json> image_history(store::Store& store, std::string_view name);
Result<bool> image_exists(store::Store& store, std::string_view name);

// ---- names
Result<void> tag_image(store::Store& store, std::string_view image, std::string_view new_name);
// Removes the given names, or all names when `names` is empty.
Result<void> untag_image(store::Store& store, std::string_view image,
                         const std::vector<std::string>& names);

// ---- removal
struct RemoveOptions {
  bool force = false;
  InUsePredicate in_use;
};
struct RemoveReport {
  std::vector<std::string> untagged;  // names removed
  std::vector<std::string> deleted;   // image ids removed
};
Result<RemoveReport> remove_images(store::Store& store, const std::vector<std::string>& images,
                                   const RemoveOptions& opts);
// Dangling (untagged) images not in use; with `all`, every image not in use. -> removed ids.
Result<std::vector<std::string>> prune_images(store::Store& store, bool all,
                                              const InUsePredicate& in_use);

// ---- mount
Result<std::string> mount_image(store::Store& store, std::string_view name);
Result<void> unmount_image(store::Store& store, std::string_view name);

// ---- system df, check, reset
struct ImagesDiskUsage {
  int64_t total = 0;   // images
  int64_t active = 0;  // used by a container
  int64_t size = 0;    // bytes of all layers, shared ones once
  int64_t reclaimable = 0;
  nlohmann::json images;  // per image: Repository, Tag, ImageID, Created, Size, SharedSize,
                          // UniqueSize, Containers
};
Result<ImagesDiskUsage> images_disk_usage(store::Store& store, const ContainerCounter& containers);
// Store check plus image checks (config digest = id, manifest digest, layer tar-split records).
Result<store::CheckReport> check(store::Store& store, bool repair);
Result<void> reset(store::Store& store);

}  // namespace berth::image
