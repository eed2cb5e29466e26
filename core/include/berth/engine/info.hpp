#pragma once
// `berth info` (and the API's /info): the host, the store, registries and plugins, shaped like
// `podman info --format json` so the same Go templates work (`{{.Store.GraphDriverName}}`).
#include <nlohmann/json.hpp>

#include "berth/engine/engine.hpp"

namespace berth::engine {

struct CgroupInfo {
  int version = 1;          // 1 (legacy or hybrid) or 2 (unified)
  std::string manager;      // "cgroupfs" or "systemd"
  std::vector<std::string> controllers;
  bool hybrid = false;      // v1 with a v2 hierarchy mounted beside it
};
CgroupInfo detect_cgroups(const config::Config& cfg);

nlohmann::json version_info();
nlohmann::json info(Engine& engine);

}  // namespace berth::engine
