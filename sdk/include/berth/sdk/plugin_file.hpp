#pragma once
// Reading, checking and loading a plugin file. Used by the core's plugin registry and by the
// conformance suites, so both refuse the same files for the same reasons.
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

#include "berth/sdk/descriptor.h"
#include "berth/sdk/plugin.hpp"
#include "berth/sdk/result.hpp"

namespace berth::sdk {

// Fixed-size descriptor fields as strings.
std::string field(const char* chars, size_t size);
#define BERTH_FIELD(desc, member) ::berth::sdk::field((desc).member, sizeof((desc).member))

// Reads the descriptor from the file's ELF section without mapping or running any of its code.
// Errors name the file and what is wrong with it (not ELF, truncated, no descriptor).
Result<berth_plugin_descriptor> read_descriptor(const std::filesystem::path& file);

// Checks a descriptor against this SDK: magic, ABI major and minor, C++ build key, kind.
Result<void> check_descriptor(const berth_plugin_descriptor& d, const std::filesystem::path& file);

// A plugin whose descriptor passed the checks, mapped into the process. It is never unmapped
// while the process runs (drivers made from it may live until exit).
class LoadedPlugin {
 public:
  // read_descriptor + check_descriptor, then dlopen and import the factory.
  static Result<std::shared_ptr<LoadedPlugin>> open(const std::filesystem::path& file);

  const berth_plugin_descriptor& descriptor() const { return descriptor_; }
  const std::filesystem::path& file() const { return file_; }
  std::string kind() const { return BERTH_FIELD(descriptor_, kind); }
  std::string name() const { return BERTH_FIELD(descriptor_, name); }

  // Makes a driver of interface `I` (StorageDriver, Runtime, ...). InvalidArgument when the
  // plugin is of another kind.
  template <class I>
  Result<std::unique_ptr<I>> create(const PluginContext& ctx) const {
    if (kind() != I::kKind) {
      return fail(Errc::InvalidArgument, "plugin " + file_.string() + " is of kind " + kind() +
                                             ", not " + I::kKind);
    }
    using Factory = Result<std::unique_ptr<I>>(const PluginContext&);
    auto* factory = reinterpret_cast<Factory*>(factory_);
    auto r = factory(ctx);
    if (!r) {
      return fail(std::move(r).error().wrap("plugin " + name() + " (" + file_.string() + ")"));
    }
    return r;
  }

 private:
  LoadedPlugin() = default;
  std::filesystem::path file_;
  berth_plugin_descriptor descriptor_{};
  void* handle_ = nullptr;
  void* factory_ = nullptr;
};
using LoadedPluginPtr = std::shared_ptr<LoadedPlugin>;

}  // namespace berth::sdk
