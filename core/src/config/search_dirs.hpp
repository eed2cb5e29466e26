#pragma once
// The directories a config file is looked up in, for one ConfigPaths.
#include <filesystem>
#include <vector>

#include "berth/config/config.hpp"

namespace berth::config::detail {

struct SearchDir {
  std::filesystem::path path;
  bool berth_owned = false;
  bool user = false;
};

// Lowest priority first: /usr/share/containers, /etc/containers, /etc/berth, then (rootless)
// <user config>/containers, <user config>/berth.
std::vector<SearchDir> dirs_low_to_high(const ConfigPaths& paths);

}  // namespace berth::config::detail
