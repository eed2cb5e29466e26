#pragma once
// The plugin registry: finds plugin files in the search path, reads and checks their descriptors
// without running any plugin code, and loads a plugin only when a command needs a driver from it.
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "berth/sdk/plugin_file.hpp"
#include "berth/sdk/result.hpp"

namespace berth::plugin {

struct PluginInfo {
  std::string kind;     // "berth.storage.v1"
  std::string name;     // "vfs"
  std::vector<std::string> aliases;
  std::string version;
  std::string licence;
  std::string description;
  std::string abi;      // "1.0"
  std::string build_key;
  std::filesystem::path file;  // empty for built-in drivers
  bool builtin = false;
  bool sidecar = false;  // a sidecar manifest was found and agrees with the descriptor
};

// A plugin file the registry refused, and why; the engine goes on without it.
struct Refusal {
  std::filesystem::path file;
  std::string reason;
};

// Factory of a driver linked into the berth binary; type-erased like a plugin's factory.
using BuiltinFactory = std::function<Result<void*>(const sdk::PluginContext&)>;

class Registry {
 public:
  // $BERTH_PLUGIN_PATH (colon-separated, development), /etc/berth/plugins.d, the plugin directory
  // beside the running binary (<bindir>/../lib/berth/plugins), and the installed libdir.
  static std::vector<std::filesystem::path> default_search_path();

  // Scans the directories in order. The first plugin of a kind and name wins; later ones with the
  // same kind and name or alias are refused as duplicates.
  static Registry discover(const std::vector<std::filesystem::path>& dirs);

  // Adds a driver linked into the binary. Built-ins lose to no plugin: a plugin file with the same
  // kind and name is refused as a duplicate.
  void add_builtin(PluginInfo info, BuiltinFactory factory);

  const std::vector<PluginInfo>& plugins() const { return plugins_; }
  const std::vector<Refusal>& refusals() const { return refusals_; }
  const std::vector<std::filesystem::path>& search_path() const { return dirs_; }

  // By kind and name or alias.
  const PluginInfo* find(std::string_view kind, std::string_view name) const;
  // All plugins of a kind, in search order.
  std::vector<const PluginInfo*> of_kind(std::string_view kind) const;

  // Loads the plugin (once per process) and creates a driver of interface I.
  template <class I>
  Result<std::unique_ptr<I>> create(std::string_view name, const sdk::PluginContext& ctx) {
    const PluginInfo* info = find(I::kKind, name);
    if (info == nullptr) {
      return fail(Errc::NotFound, std::string("no ") + I::kKind + " driver named '" +
                                      std::string(name) + "'" + list_hint(I::kKind));
    }
    if (info->builtin) {
      BERTH_TRY(void* raw, builtins_.at(key(info->kind, info->name))(ctx));
      return std::unique_ptr<I>(static_cast<I*>(raw));
    }
    BERTH_TRY(auto loaded, load(*info));
    return loaded->template create<I>(ctx);
  }

 private:
  static std::string key(std::string_view kind, std::string_view name) {
    return std::string(kind) + "/" + std::string(name);
  }
  std::string list_hint(std::string_view kind) const;
  Result<sdk::LoadedPluginPtr> load(const PluginInfo& info);
  // Refuses `info` if its kind+name or an alias is taken; else records it.
  bool admit(PluginInfo info);

  std::vector<std::filesystem::path> dirs_;
  std::vector<PluginInfo> plugins_;
  std::vector<Refusal> refusals_;
  std::map<std::string, size_t> names_;  // kind/name-or-alias -> index in plugins_
  std::map<std::string, BuiltinFactory> builtins_;
  std::map<std::string, sdk::LoadedPluginPtr> loaded_;
};

nlohmann::json to_json(const PluginInfo& p);

}  // namespace berth::plugin
