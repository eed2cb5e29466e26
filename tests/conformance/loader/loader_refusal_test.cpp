// The plugin loader refuses bad files with a message naming the file and the problem, and keeps
// loading good plugins afterwards.
#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "berth/sdk/plugin_file.hpp"
#include "berth/sdk/storage.hpp"

namespace {

namespace fs = std::filesystem;
using berth::sdk::LoadedPlugin;

class LoaderRefusal : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "berth-loader-XXXXXX").string();
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr) << tmpl;
    dir_ = tmpl;
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  // Opening `file` must fail with a message containing the file name and `problem`.
  void expect_refused(const fs::path& file, const std::string& problem) {
    auto r = LoadedPlugin::open(file);
    ASSERT_FALSE(r.has_value()) << file << " was loaded";
    const std::string& msg = r.error().message();
    EXPECT_NE(msg.find(file.string()), std::string::npos)
        << "message does not name the file: " << msg;
    EXPECT_NE(msg.find(problem), std::string::npos)
        << "message does not say '" << problem << "': " << msg;
  }
  // A copy of the good plugin cut to `size` bytes.
  fs::path truncated_copy(uintmax_t size) {
    fs::path copy = dir_ / ("truncated-" + std::to_string(size) + ".so");
    fs::copy_file(GOOD_PLUGIN, copy);
    fs::resize_file(copy, size);
    return copy;
  }
  // The good plugin still loads and makes a working driver.
  void expect_good_plugin_loads() {
    auto p = LoadedPlugin::open(GOOD_PLUGIN);
    ASSERT_TRUE(p.has_value()) << p.error().message();
    EXPECT_EQ((*p)->kind(), "berth.storage.v1");
    EXPECT_EQ((*p)->name(), "vfs");
    berth::sdk::PluginContext ctx;
    ctx.home = (dir_ / "home").string();
    ctx.run_root = (dir_ / "run").string();
    auto driver = (*p)->create<berth::sdk::StorageDriver>(ctx);
    ASSERT_TRUE(driver.has_value()) << driver.error().message();
    EXPECT_TRUE((*driver)->probe().supported);
    EXPECT_TRUE((*driver)->create("layer", "", {}).has_value());
    EXPECT_TRUE((*driver)->exists("layer"));
  }
  fs::path dir_;
};

TEST_F(LoaderRefusal, AbiMajor99) {
  expect_refused(ABI99_PLUGIN, "built for berth SDK ABI 99.0, this berth has ABI 1.");
  expect_good_plugin_loads();
}

TEST_F(LoaderRefusal, WrongBuildKey) {
  expect_refused(BUILD_KEY_PLUGIN, "built for C++ ABI 'itanium-1 libstdc++-cxx11abi0'");
  expect_good_plugin_loads();
}

TEST_F(LoaderRefusal, NoDescriptor) {
  expect_refused(NO_DESCRIPTOR_PLUGIN, "no berth plugin descriptor");
  expect_good_plugin_loads();
}

TEST_F(LoaderRefusal, TruncatedPlugin) {
  const uintmax_t size = fs::file_size(GOOD_PLUGIN);
  expect_refused(truncated_copy(size / 2), "truncated");
  expect_refused(truncated_copy(40), "truncated");
  expect_good_plugin_loads();
}

TEST_F(LoaderRefusal, NotAnElfFile) {
  const fs::path text = dir_ / "berth-storage-text.so";
  std::ofstream(text) << "#!/bin/sh\n# a script long enough to hold an ELF header, but not ELF\n"
                      << std::string(100, '#') << "\necho not a plugin\n";
  expect_refused(text, "not an ELF shared object");
  expect_refused(dir_ / "missing.so", "No such file");
  expect_good_plugin_loads();
}

TEST_F(LoaderRefusal, FactoryErrorNamesThePlugin) {
  auto p = LoadedPlugin::open(MINIMAL_PLUGIN);
  ASSERT_TRUE(p.has_value()) << p.error().message();
  auto driver = (*p)->create<berth::sdk::StorageDriver>(berth::sdk::PluginContext{});
  ASSERT_FALSE(driver.has_value());
  EXPECT_EQ(driver.error().code(), berth::Errc::NotSupported);
  EXPECT_NE(driver.error().message().find(MINIMAL_PLUGIN), std::string::npos)
      << driver.error().message();
  EXPECT_NE(driver.error().message().find("no driver here"), std::string::npos);
}

}  // namespace
