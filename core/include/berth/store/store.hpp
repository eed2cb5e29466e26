#pragma once
// The layer and image store: one SQLite database per store (<graphroot>/berth.db) holding layer and
// image metadata, shared safely by many berth processes. Layer content lives in the storage driver;
// the store decides when a layer may be created or removed.
//
// Lock order (the only one in this module): a layer's flock (<runroot>/locks/layer-<id>.lock) is
// always taken before a database write transaction, never while one is open; at most one layer
// flock is held at a time by a thread.
#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "berth/sdk/result.hpp"
#include "berth/sdk/storage.hpp"

namespace berth::store {

struct StoreOptions {
  std::string graph_root;  // persistent: berth.db, layer metadata
  std::string run_root;    // volatile (tmpfs): lock files
  bool read_only = false;  // commands that only read open the database read-only
};

struct LayerRecord {
  std::string id;                 // chain ID hex for image layers
  std::string parent;             // "" for a base layer
  std::string diff_id;            // "sha256:..." of the uncompressed tar
  std::string compressed_digest;  // "sha256:..." of the blob it came from ("" when unknown)
  int64_t compressed_size = -1;
  int64_t uncompressed_size = -1;
  int64_t created = 0;  // unix seconds
  bool incomplete = false;
  std::string writer;  // "<boot id>:<pid>:<start time>" of the process writing or removing it
  std::string driver;
};

struct ImageRecord {
  std::string id;      // config digest hex
  std::string digest;  // "sha256:..." of the manifest
  int64_t created = 0;
  int64_t size = 0;
  std::string top_layer;  // "" for an image without layers
  std::string config;     // the config blob, verbatim
  std::string manifest;   // the manifest blob, verbatim
  std::string manifest_type;
  std::vector<std::string> names;          // "docker.io/library/busybox:latest"
  std::vector<std::string> digests;        // "docker.io/library/busybox@sha256:..."
  std::vector<std::string> names_history;  // most recent first
};

// What a layer writer reports once the content is in place.
struct LayerFill {
  std::string diff_id;
  std::string compressed_digest;
  int64_t compressed_size = -1;
  int64_t uncompressed_size = -1;
  // A layer whose content must survive a power loss once recorded (an image layer) is synced
  // (one syncfs); an empty container layer has nothing to sync.
  bool sync = true;
};

struct CheckReport {
  std::vector<std::string> problems;  // one line each, for the user
  std::vector<std::string> repaired;  // what repair mode removed
};

class Store {
 public:
  // Opens (creating when needed) the store; removes layers left incomplete by dead writers.
  static Result<std::unique_ptr<Store>> open(const StoreOptions& opts, sdk::StorageDriver& driver);
  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  const StoreOptions& options() const;
  sdk::StorageDriver& driver();
  // Where per-layer files the core keeps beside the driver live (tar-split data).
  std::string layer_meta_path(const std::string& id, const std::string& suffix) const;

  // --- layers
  Result<std::optional<LayerRecord>> layer(const std::string& id);
  Result<std::vector<LayerRecord>> layers();
  // Returns the complete layer `want.id`, creating it when absent: takes the layer's lock, records
  // it incomplete, calls driver.create, then `fill(id)` (which applies the content), syncs the
  // layer and marks it complete. A concurrent writer of the same id is waited for and its layer
  // reused. On any failure nothing stays recorded or on disk. The parent must be complete. With
  // `parent_in_progress`, the parent may still be being written by this same process (layers of one
  // image applied in parallel on drivers whose layers do not copy their parent).
  Result<LayerRecord> create_layer(const LayerRecord& want,
                                   const std::function<Result<LayerFill>(const std::string&)>& fill,
                                   const sdk::CreateOptions& create_opts = {},
                                   bool parent_in_progress = false);
  // Removes the layer and then each parent that nothing uses any more. Conflict when in use.
  Result<std::vector<std::string>> remove_layer(const std::string& id);

  // --- images
  // Records the image, or adds names/digests to it when it exists. Conflict when a layer of it is
  // gone or not complete (removed concurrently): the caller recreates layers and retries. Names are
  // moved from any other image that held them.
  Result<ImageRecord> put_image(const ImageRecord& rec);
  Result<std::optional<ImageRecord>> image(const std::string& id);
  Result<std::vector<ImageRecord>> images();
  // Exact full name -> image id.
  Result<std::optional<std::string>> image_by_name(const std::string& name);
  // Every (name, image id) pair.
  Result<std::vector<std::pair<std::string, std::string>>> image_names();
  // Image ids starting with `prefix`.
  Result<std::vector<std::string>> images_by_id_prefix(const std::string& prefix);
  Result<void> add_name(const std::string& image_id, const std::string& name);
  // NotFound when the image does not hold the name.
  Result<void> remove_name(const std::string& image_id, const std::string& name);
  // Deletes the image, then the layers nobody uses any more. Returns the removed layer ids.
  Result<std::vector<std::string>> remove_image(const std::string& id);
  Result<void> set_big_data(const std::string& image_id, const std::string& key,
                            const std::string& value);
  Result<std::optional<std::string>> big_data(const std::string& image_id, const std::string& key);
  Result<std::vector<std::string>> big_data_keys(const std::string& image_id);
  // How many images and child layers use a layer.
  Result<int64_t> layer_users(const std::string& id);

  // Finds incomplete layers, layers whose content the driver lacks, names pointing nowhere; with
  // `repair` removes them (and images that lost layers).
  Result<CheckReport> check(bool repair);
  // Removes every image and layer (driver content included) and the database.
  Result<void> reset();

  // This process's writer identity.
  static std::string self_writer();
  static bool writer_alive(const std::string& writer);

  struct Impl;

 private:
  explicit Store(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};
using StorePtr = std::unique_ptr<Store>;

}  // namespace berth::store
