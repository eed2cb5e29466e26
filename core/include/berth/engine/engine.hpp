#pragma once
// The engine: what every command opens first. It loads the configuration (cheap) and hands out
// the rest lazily, so each command pays only for what it uses: `berth ps` never discovers or loads
// a network plugin, `berth version` opens nothing.
#include <memory>
#include <optional>
#include <string>

#include "berth/config/config.hpp"
#include "berth/plugin/registry.hpp"
#include "berth/sdk/storage.hpp"
#include "berth/store/store.hpp"

namespace berth::engine {

struct StorageChoice {
  std::string name;    // "overlay", "vfs", ...
  std::string reason;  // why this driver: "set in /etc/berth/storage.conf", "default: ..."
  std::vector<std::string> rejected;  // drivers tried and why they were skipped
};

class Engine {
 public:
  static Result<std::unique_ptr<Engine>> open(const config::GlobalOverrides& overrides);
  // For tests: explicit config and plugin directories.
  static std::unique_ptr<Engine> with(config::Config cfg,
                                      std::vector<std::filesystem::path> plugin_dirs);

  const config::Config& config() const { return config_; }
  bool rootless() const { return rootless_; }
  const std::string& graphroot() const { return config_.storage.graphroot; }
  const std::string& runroot() const { return config_.storage.runroot; }

  // Discovered on first use; holds the built-in drivers too.
  plugin::Registry& plugins();

  // The storage driver of this store, chosen on first use (see choose_storage()).
  Result<sdk::StorageDriver*> storage();
  const std::optional<StorageChoice>& storage_choice() const { return storage_choice_; }

  // The layer and image store over the chosen driver, opened on first use. Commands that only
  // read pass read_only (no write lock, no crash cleanup).
  Result<store::Store*> store(bool read_only = false);

  // The containers/storage rule: the configured driver; else the driver whose directory a previous
  // store left in graphroot; else the priority list (overlay), skipping drivers whose probe says
  // "not supported". vfs is used only when named.
  Result<StorageChoice> choose_storage();

  // The context a driver of `name` is created with: its home under graphroot, the run root and
  // its options from the config as JSON.
  sdk::PluginContext storage_context(const std::string& name) const;

 private:
  Engine() = default;
  Result<sdk::StorageDriverPtr> make_storage(const std::string& name);

  config::Config config_;
  bool rootless_ = false;
  std::vector<std::filesystem::path> plugin_dirs_;
  std::optional<plugin::Registry> registry_;
  sdk::StorageDriverPtr storage_;
  std::optional<StorageChoice> storage_choice_;
  store::StorePtr store_;
};

}  // namespace berth::engine
