#include "berth/engine/engine.hpp"
#include "command.hpp"

namespace berth::cli {

Result<engine::Engine*> Context::engine() {
  if (!engine_) {
    config::GlobalOverrides o;
    if (!globals.root.empty()) {
      o.root = globals.root;
    }
    if (!globals.runroot.empty()) {
      o.runroot = globals.runroot;
    }
    if (!globals.storage_driver.empty()) {
      o.storage_driver = globals.storage_driver;
    }
    o.storage_opts = globals.storage_opts;
    if (!globals.config.empty()) {
      o.config_path = globals.config;
    }
    BERTH_TRY(auto e, engine::Engine::open(o));
    engine_ = std::move(e);
  }
  return engine_.get();
}

}  // namespace berth::cli
