#include "berth/plugin/registry.hpp"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <set>
#include <sstream>

#include "berth/util/fs.hpp"

namespace berth::plugin {

namespace fs = std::filesystem;

namespace {

std::vector<std::string> split_aliases(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ',')) {
    item.erase(0, item.find_first_not_of(' '));
    item.erase(item.find_last_not_of(' ') + 1);
    if (!item.empty()) {
      out.push_back(item);
    }
  }
  return out;
}

PluginInfo info_from_descriptor(const berth_plugin_descriptor& d, const fs::path& file) {
  PluginInfo p;
  p.kind = BERTH_FIELD(d, kind);
  p.name = BERTH_FIELD(d, name);
  p.aliases = split_aliases(BERTH_FIELD(d, aliases));
  p.version = BERTH_FIELD(d, version);
  p.licence = BERTH_FIELD(d, licence);
  p.description = BERTH_FIELD(d, description);
  p.abi = std::to_string(d.abi_major) + "." + std::to_string(d.abi_minor);
  p.build_key = BERTH_FIELD(d, build_key);
  p.file = file;
  return p;
}

// The sidecar manifest must agree with the descriptor; a stale one is a packaging error.
Result<bool> check_sidecar(const PluginInfo& p) {
  auto sidecar = p.file;
  sidecar.replace_extension(".json");
  std::error_code ec;
  if (!fs::exists(sidecar, ec)) {
    return false;
  }
  BERTH_TRY(auto text, util::read_file(sidecar));
  auto j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) {
    return fail(Errc::Corrupt, "plugin " + p.file.string() + ": sidecar manifest " +
                                   sidecar.string() + " is not a JSON object");
  }
  for (const auto& [key, want] : {std::pair{"kind", p.kind}, std::pair{"name", p.name},
                                  std::pair{"version", p.version}}) {
    auto got = j.value(key, std::string());
    if (got != want) {
      return fail(Errc::Corrupt, "plugin " + p.file.string() + ": sidecar manifest " +
                                     sidecar.string() + " says " + key + " '" + got +
                                     "' but the plugin's descriptor says '" + want +
                                     "'; reinstall the plugin");
    }
  }
  return true;
}

}  // namespace

std::vector<fs::path> Registry::default_search_path() {
  std::vector<fs::path> dirs;
  if (const char* env = std::getenv("BERTH_PLUGIN_PATH"); env != nullptr && *env != '\0') {
    std::stringstream ss(env);
    std::string item;
    while (std::getline(ss, item, ':')) {
      if (!item.empty()) {
        dirs.emplace_back(item);
      }
    }
  }
  dirs.emplace_back("/etc/berth/plugins.d");
  std::error_code ec;
  auto exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    auto beside = fs::weakly_canonical(exe.parent_path() / ".." / "lib" / "berth" / "plugins", ec);
    if (!ec) {
      dirs.push_back(beside);
    }
  }
  fs::path installed = BERTH_INSTALL_PLUGIN_DIR;
  if (std::find(dirs.begin(), dirs.end(), installed) == dirs.end()) {
    dirs.push_back(installed);
  }
  return dirs;
}

bool Registry::admit(PluginInfo info) {
  std::vector<std::string> keys{key(info.kind, info.name)};
  for (const auto& a : info.aliases) {
    keys.push_back(key(info.kind, a));
  }
  for (const auto& k : keys) {
    if (auto it = names_.find(k); it != names_.end()) {
      const auto& first = plugins_[it->second];
      refusals_.push_back(
          {info.file, "plugin " + info.file.string() + ": duplicate " + info.kind + " plugin '" + k.substr(k.find('/') + 1) +
                          "': already provided by " +
                          (first.builtin ? std::string("the built-in driver") : first.file.string()) +
                          "; remove one of them"});
      return false;
    }
  }
  plugins_.push_back(std::move(info));
  for (const auto& k : keys) {
    names_[k] = plugins_.size() - 1;
  }
  return true;
}

Registry Registry::discover(const std::vector<fs::path>& dirs) {
  Registry reg;
  reg.dirs_ = dirs;
  std::set<fs::path> seen_dirs;
  for (const auto& dir : dirs) {
    std::error_code ec;
    auto canon = fs::weakly_canonical(dir, ec);
    if (!seen_dirs.insert(ec ? dir : canon).second) {
      continue;
    }
    if (!fs::is_directory(dir, ec)) {
      continue;
    }
    std::vector<fs::path> files;
    for (const auto& entry : fs::directory_iterator(dir, ec)) {
      if (entry.path().extension() == ".so") {
        files.push_back(entry.path());
      }
    }
    if (ec) {
      spdlog::warn("cannot list plugin directory {}: {}", dir.string(), ec.message());
      continue;
    }
    std::sort(files.begin(), files.end());
    for (const auto& file : files) {
      auto desc = sdk::read_descriptor(file);
      if (!desc) {
        reg.refusals_.push_back({file, desc.error().message()});
        continue;
      }
      if (auto ok = sdk::check_descriptor(*desc, file); !ok) {
        reg.refusals_.push_back({file, ok.error().message()});
        continue;
      }
      auto info = info_from_descriptor(*desc, file);
      auto sidecar = check_sidecar(info);
      if (!sidecar) {
        reg.refusals_.push_back({file, sidecar.error().message()});
        continue;
      }
      info.sidecar = *sidecar;
      reg.admit(std::move(info));
    }
  }
  for (const auto& r : reg.refusals_) {
    spdlog::debug("plugin refused: {}", r.reason);
  }
  return reg;
}

void Registry::add_builtin(PluginInfo info, BuiltinFactory factory) {
  info.builtin = true;
  auto k = key(info.kind, info.name);
  if (auto it = names_.find(k); it != names_.end()) {
    // A plugin file overrides nothing built in: keep the built-in, refuse the file.
    auto file = plugins_[it->second].file;
    refusals_.push_back({file, "plugin " + file.string() + ": duplicate " + info.kind +
                                   " plugin '" + info.name +
                                   "': berth has a built-in driver of that name; rename the plugin"});
    plugins_.erase(plugins_.begin() + static_cast<long>(it->second));
    names_.clear();
    auto rest = std::move(plugins_);
    plugins_.clear();
    for (auto& p : rest) {
      admit(std::move(p));
    }
  }
  builtins_[k] = std::move(factory);
  admit(std::move(info));
}

const PluginInfo* Registry::find(std::string_view kind, std::string_view name) const {
  auto it = names_.find(key(kind, name));
  return it == names_.end() ? nullptr : &plugins_[it->second];
}

std::vector<const PluginInfo*> Registry::of_kind(std::string_view kind) const {
  std::vector<const PluginInfo*> out;
  for (const auto& p : plugins_) {
    if (p.kind == kind) {
      out.push_back(&p);
    }
  }
  return out;
}

std::string Registry::list_hint(std::string_view kind) const {
  std::string names;
  for (const auto* p : of_kind(kind)) {
    names += names.empty() ? "" : ", ";
    names += p->name;
  }
  if (names.empty()) {
    return "; no plugin of that kind was found in the plugin path (see `berth plugin ls`)";
  }
  return "; available: " + names;
}

Result<sdk::LoadedPluginPtr> Registry::load(const PluginInfo& info) {
  auto k = key(info.kind, info.name);
  if (auto it = loaded_.find(k); it != loaded_.end()) {
    return it->second;
  }
  BERTH_TRY(auto plugin, sdk::LoadedPlugin::open(info.file));
  if (plugin->kind() != info.kind || plugin->name() != info.name) {
    return fail(Errc::Corrupt, "plugin " + info.file.string() + " changed while berth ran");
  }
  loaded_[k] = plugin;
  return plugin;
}

nlohmann::json to_json(const PluginInfo& p) {
  return nlohmann::json{{"Kind", p.kind},
                        {"Name", p.name},
                        {"Aliases", p.aliases},
                        {"Version", p.version},
                        {"Licence", p.licence},
                        {"Description", p.description},
                        {"ABI", p.abi},
                        {"BuildKey", p.build_key},
                        {"File", p.builtin ? std::string("(built-in)") : p.file.string()},
                        {"Builtin", p.builtin},
                        {"Sidecar", p.sidecar}};
}

}  // namespace berth::plugin
