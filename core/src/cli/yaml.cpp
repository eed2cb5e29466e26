#include "yaml.hpp"

#include <yaml-cpp/yaml.h>

namespace berth::cli {
namespace {
void emit(YAML::Emitter& out, const nlohmann::json& j) {
  switch (j.type()) {
    case nlohmann::json::value_t::object:
      out << YAML::BeginMap;
      for (const auto& [k, v] : j.items()) {
        out << YAML::Key << k << YAML::Value;
        emit(out, v);
      }
      out << YAML::EndMap;
      break;
    case nlohmann::json::value_t::array:
      out << YAML::BeginSeq;
      for (const auto& v : j) {
        emit(out, v);
      }
      out << YAML::EndSeq;
      break;
    case nlohmann::json::value_t::string:
      out << j.get<std::string>();
      break;
    case nlohmann::json::value_t::null:
      out << YAML::Null;
      break;
    default:
      out << j.dump();
      break;
  }
}
}  // namespace

std::string to_yaml(const nlohmann::json& j) {
  YAML::Emitter out;
  emit(out, j);
  std::string s = out.c_str();
  if (s.empty() || s.back() != '\n') {
    s += '\n';
  }
  return s;
}
}  // namespace berth::cli
