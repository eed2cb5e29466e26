#include <gtest/gtest.h>
#include <stdlib.h>

#include <cstdio>
#include <cstring>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "berth/sdk/plugin_file.hpp"
#include "berth/sdk/storage.hpp"
#include "berth/sdk/testing/conformance.hpp"

namespace berth::sdk::testing {

TempDir::TempDir(const std::string& prefix) {
  std::error_code ec;
  auto base = std::filesystem::temp_directory_path(ec);
  if (ec) {
    base = "/tmp";
  }
  std::string tmpl = (base / (prefix + "XXXXXX")).string();
  if (::mkdtemp(tmpl.data()) == nullptr) {
    std::fprintf(stderr, "conformance: mkdtemp %s: %s (set TMPDIR to a writable directory)\n",
                 tmpl.c_str(), std::strerror(errno));
    std::abort();
  }
  path_ = tmpl;
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
  if (ec) {
    std::fprintf(stderr, "conformance: cannot remove %s: %s\n", path_.c_str(),
                 ec.message().c_str());
  }
}

namespace {

constexpr const char* kUsage =
    "usage: %s --plugin FILE [--options JSON] [gtest flags]\n"
    "Runs the berth conformance suite for the plugin's kind against FILE.\n";

// Takes `--name VALUE` or `--name=VALUE` out of argv; true when found.
bool take_flag(std::vector<char*>& args, std::string_view name, std::string& value) {
  const std::string eq = std::string(name) + "=";
  for (size_t i = 1; i < args.size(); ++i) {
    std::string_view a = args[i];
    if (a == name && i + 1 < args.size()) {
      value = args[i + 1];
      args.erase(args.begin() + static_cast<std::ptrdiff_t>(i),
                 args.begin() + static_cast<std::ptrdiff_t>(i) + 2);
      return true;
    }
    if (a.starts_with(eq)) {
      value = std::string(a.substr(eq.size()));
      args.erase(args.begin() + static_cast<std::ptrdiff_t>(i));
      return true;
    }
  }
  return false;
}

}  // namespace

int conformance_main(int argc, char** argv) {
  std::vector<char*> args(argv, argv + argc);
  std::string plugin_file;
  std::string options = "{}";
  const bool have_plugin = take_flag(args, "--plugin", plugin_file);
  take_flag(args, "--options", options);
  int n = static_cast<int>(args.size());
  args.push_back(nullptr);
  ::testing::InitGoogleTest(&n, args.data());
  if (!have_plugin || plugin_file.empty()) {
    std::fprintf(stderr, kUsage, argc > 0 ? argv[0] : "conformance");
    return 2;
  }
  auto plugin = LoadedPlugin::open(plugin_file);
  if (!plugin) {
    std::fprintf(stderr, "conformance: %s\n", plugin.error().message().c_str());
    return 2;
  }
  LoadedPluginPtr p = *plugin;
  const std::string kind = p->kind();
  if (kind == StorageDriver::kKind) {
    register_storage_suite(
        [p](const PluginContext& ctx) -> Result<StorageDriverPtr> {
          return p->create<StorageDriver>(ctx);
        },
        options, p->name());
  } else {
    std::fprintf(stderr, "conformance: plugin %s is of kind %s; this SDK has no suite for it yet\n",
                 plugin_file.c_str(), kind.c_str());
    return 2;
  }
  std::fprintf(stderr, "conformance: %s suite for plugin %s %s (%s)\n", kind.c_str(),
               p->name().c_str(), BERTH_FIELD(p->descriptor(), version).c_str(),
               plugin_file.c_str());
  return RUN_ALL_TESTS();
}

}  // namespace berth::sdk::testing
