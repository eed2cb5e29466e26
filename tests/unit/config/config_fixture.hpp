#pragma once
// A fake host for the config loaders: a temporary directory holding etc/berth, etc/containers,
// usr/share/containers and home/.config, with an environment given as a map.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <string>

#include "berth/config/config.hpp"

namespace berth::config::testing {

class ConfigFixture : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (std::filesystem::temp_directory_path() / "berth-config-XXXXXX").string();
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    root_ = tmpl;
    berth_ = root_ / "etc/berth";
    etc_ = root_ / "etc/containers";
    share_ = root_ / "usr/share/containers";
    home_ = root_ / "home/user";
    user_ = home_ / ".config";
  }
  void TearDown() override {
    std::error_code ec;
    std::filesystem::remove_all(root_, ec);
  }

  // Writes `content` to `path`, creating its directories.
  static void write(const std::filesystem::path& path, const std::string& content) {
    std::filesystem::create_directories(path.parent_path());
    std::ofstream out(path);
    out << content;
    ASSERT_TRUE(out.good()) << path;
  }

  ConfigPaths paths(uid_t uid = 0) const {
    ConfigPaths p;
    p.system_dirs = {{berth_, true}, {etc_, false}, {share_, false}};
    p.user_config_dir = user_;
    p.home_dir = home_;
    p.uid = uid;
    auto env = env_;
    p.env = [env](const std::string& name) -> std::optional<std::string> {
      auto it = env.find(name);
      if (it == env.end()) {
        return std::nullopt;
      }
      return it->second;
    };
    return p;
  }

  std::filesystem::path root_, berth_, etc_, share_, home_, user_;
  std::map<std::string, std::string> env_;
};

}  // namespace berth::config::testing
