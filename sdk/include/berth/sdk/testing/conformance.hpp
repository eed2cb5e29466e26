#pragma once
// The berth conformance suites: GoogleTest tests that every driver of a kind must pass, in-tree or
// third-party. A plugin author links BerthSDK::conformance into a runner whose main is
//
//   int main(int argc, char** argv) { return berth::sdk::testing::conformance_main(argc, argv); }
//
// and runs `./runner --plugin /path/berth-storage-x.so [--options '{"k":"v"}'] [gtest flags]`
// (berth_add_conformance_test() in BerthConformance.cmake does both). A driver linked statically
// (no plugin file) registers its factory with register_storage_suite() and calls
// RUN_ALL_TESTS() itself.
#include <filesystem>
#include <functional>
#include <string>

#include "berth/sdk/plugin.hpp"
#include "berth/sdk/result.hpp"
#include "berth/sdk/storage.hpp"

namespace berth::sdk::testing {

// Makes a fresh driver for one test; the suite passes a context whose home and run_root are new
// empty temporary directories, removed after the test.
using StorageDriverFactory = std::function<Result<StorageDriverPtr>(const PluginContext&)>;

// Registers the berth.storage.v1 suite with GoogleTest as test suite `storage.<label>`.
// `options_json` is passed to every driver as PluginContext::options_json. Call before
// RUN_ALL_TESTS(), after ::testing::InitGoogleTest().
void register_storage_suite(StorageDriverFactory factory, std::string options_json,
                            const std::string& label);

// Parses --plugin FILE and --options JSON (also --plugin=FILE, --options=JSON), loads the plugin
// with LoadedPlugin::open, registers the suite for the plugin's kind and runs the tests. Returns
// RUN_ALL_TESTS()'s result, or 2 when the arguments are wrong, the loader refuses the plugin or no
// suite exists for its kind (the reason is printed on stderr).
int conformance_main(int argc, char** argv);

// A temporary directory removed (recursively) when the object dies.
class TempDir {
 public:
  // Creates <TMPDIR or /tmp>/<prefix>XXXXXX. Aborts the test program when that fails: a suite
  // without a scratch directory cannot say anything about the driver.
  explicit TempDir(const std::string& prefix = "berth-conformance-");
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  ~TempDir();
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

}  // namespace berth::sdk::testing
