#include "berth/engine/engine.hpp"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <filesystem>

#include "berth/util/fs.hpp"

namespace berth::engine {

namespace fs = std::filesystem;

namespace {
// The drivers tried, in order, when none is configured (containers/storage's priority list
// without the drivers berth does not have). vfs is not here: it is used only when named.
constexpr const char* kStoragePriority[] = {"overlay"};
}  // namespace

Result<std::unique_ptr<Engine>> Engine::open(const config::GlobalOverrides& overrides) {
  auto paths = config::ConfigPaths::from_host();
  BERTH_TRY(auto cfg, config::load_config(paths, overrides));
  auto e = std::unique_ptr<Engine>(new Engine());
  e->config_ = std::move(cfg);
  util::add_volatile_root(e->runroot());  // state under the run root does not outlive a reboot
  e->rootless_ = paths.rootless();
  e->plugin_dirs_ = plugin::Registry::default_search_path();
  return e;
}

std::unique_ptr<Engine> Engine::with(config::Config cfg, std::vector<fs::path> plugin_dirs) {
  auto e = std::unique_ptr<Engine>(new Engine());
  e->config_ = std::move(cfg);
  util::add_volatile_root(e->runroot());  // state under the run root does not outlive a reboot
  e->rootless_ = ::geteuid() != 0;
  e->plugin_dirs_ = std::move(plugin_dirs);
  return e;
}

plugin::Registry& Engine::plugins() {
  if (!registry_) {
    registry_ = plugin::Registry::discover(plugin_dirs_);
  }
  return *registry_;
}

sdk::PluginContext Engine::storage_context(const std::string& name) const {
  sdk::PluginContext ctx;
  ctx.home = (fs::path(graphroot()) / name).string();
  ctx.run_root = (fs::path(runroot()) / name).string();
  nlohmann::json opts = nlohmann::json::object();
  for (const auto& [k, v] : config_.storage.options_for_driver(name)) {
    opts[k] = v;
  }
  ctx.options_json = opts.dump();
  ctx.rootless = rootless_;
  return ctx;
}

Result<sdk::StorageDriverPtr> Engine::make_storage(const std::string& name) {
  return plugins().create<sdk::StorageDriver>(name, storage_context(name));
}

Result<StorageChoice> Engine::choose_storage() {
  StorageChoice choice;
  const auto& configured = config_.storage.driver;
  if (!configured.empty()) {
    choice.name = configured;
    choice.reason = "set by " + config_.storage.source_of("storage.driver");
    return choice;
  }
  // A previous store's driver directory decides, as containers/storage does.
  for (const auto* p : plugins().of_kind(sdk::StorageDriver::kKind)) {
    std::error_code ec;
    auto dir = fs::path(graphroot()) / p->name;
    if (fs::is_directory(dir, ec)) {
      choice.name = p->name;
      choice.reason = "a previous store used it (" + dir.string() + " exists)";
      return choice;
    }
  }
  for (const char* name : kStoragePriority) {
    auto driver = make_storage(name);
    if (!driver) {
      choice.rejected.push_back(std::string(name) + ": " + driver.error().message());
      continue;
    }
    auto probe = (*driver)->probe();
    if (!probe.supported) {
      choice.rejected.push_back(std::string(name) + ": " + probe.reason);
      continue;
    }
    choice.name = name;
    choice.reason = "default: first supported driver in the priority list (" + probe.reason + ")";
    storage_ = std::move(*driver);
    return choice;
  }
  std::string why;
  for (const auto& r : choice.rejected) {
    why += "; " + r;
  }
  return fail(Errc::NotSupported, "no storage driver works on this host" + why +
                                      "; name one with --storage-driver or in storage.conf "
                                      "(vfs works everywhere but copies every layer)");
}

Result<sdk::StorageDriver*> Engine::storage() {
  if (storage_ && storage_choice_) {
    return storage_.get();
  }
  BERTH_TRY(auto choice, choose_storage());
  if (!storage_) {
    BERTH_TRY(auto driver, make_storage(choice.name));
    auto probe = driver->probe();
    if (!probe.supported) {
      return fail(Errc::NotSupported, "storage driver " + choice.name + " (" + choice.reason +
                                          ") does not work on this host: " + probe.reason);
    }
    storage_ = std::move(driver);
  }
  storage_choice_ = std::move(choice);
  return storage_.get();
}

Result<store::Store*> Engine::store(bool read_only) {
  if (store_) {
    return store_.get();
  }
  BERTH_TRY(auto* driver, storage());
  store::StoreOptions opts;
  opts.graph_root = graphroot();
  opts.run_root = runroot();
  // A store never written has no database yet: the first command creates it.
  std::error_code ec;
  opts.read_only = read_only && fs::exists(fs::path(graphroot()) / "berth.db", ec);
  BERTH_TRY(auto st, store::Store::open(opts, *driver));
  store_ = std::move(st);
  return store_.get();
}

}  // namespace berth::engine
