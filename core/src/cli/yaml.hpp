#pragma once
#include <nlohmann/json.hpp>
#include <string>

namespace berth::cli {
// Podman prints `info` as YAML by default; the same keys as its JSON.
std::string to_yaml(const nlohmann::json& j);
}  // namespace berth::cli
