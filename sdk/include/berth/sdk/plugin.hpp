#pragma once
// What a plugin author writes once per plugin:
//
//   BERTH_PLUGIN(storage, "myfs", "", "1.0.0", "Apache-2.0", "my storage driver",
//                my::create_driver);
//
// where `my::create_driver` has the kind's factory signature, for example
// `berth::Result<berth::sdk::StorageDriverPtr>(const berth::sdk::PluginContext&)`.
#include <boost/dll/alias.hpp>
#include <string>

#include "berth/sdk/descriptor.h"
#include "berth/sdk/result.hpp"

#define BERTH_EXPORT __attribute__((visibility("default")))

namespace berth::sdk {

// What every driver is given when it is created.
struct PluginContext {
  std::string home;          // the driver's own directory under the store (may be empty)
  std::string run_root;      // volatile state (tmpfs), per store
  std::string options_json;  // the driver's options from the host's config, a JSON object
  bool rootless = false;
};

}  // namespace berth::sdk

#define BERTH_KIND_storage "berth.storage.v1"
#define BERTH_KIND_network "berth.network.v1"
#define BERTH_KIND_transport "berth.transport.v1"
#define BERTH_KIND_verifier "berth.verifier.v1"
#define BERTH_KIND_runtime "berth.runtime.v1"

#define BERTH_PLUGIN(kind_, name_, aliases_, version_, licence_, description_, factory_)     \
  extern "C" BERTH_EXPORT __attribute__((section(BERTH_DESCRIPTOR_SECTION), used))          \
  const berth_plugin_descriptor berth_plugin_descriptor_v1 = {                               \
      BERTH_DESCRIPTOR_MAGIC, sizeof(berth_plugin_descriptor), BERTH_SDK_ABI_MAJOR,          \
      BERTH_SDK_ABI_MINOR, BERTH_KIND_##kind_, name_, aliases_, version_, licence_,          \
      BERTH_BUILD_KEY, description_};                                                        \
  BOOST_DLL_ALIAS(factory_, berth_plugin_factory_v1)

// With berth_add_plugin() the descriptor fields come from CMake:
//   BERTH_DECLARE_PLUGIN(my::create_driver);
#define BERTH_DECLARE_PLUGIN_INNER(kind_, factory_)                                      \
  BERTH_PLUGIN(kind_, BERTH_PLUGIN_NAME, BERTH_PLUGIN_ALIASES, BERTH_PLUGIN_VERSION,     \
               BERTH_PLUGIN_LICENCE, BERTH_PLUGIN_DESCRIPTION, factory_)
#define BERTH_DECLARE_PLUGIN_EXPAND(kind_, factory_) BERTH_DECLARE_PLUGIN_INNER(kind_, factory_)
#define BERTH_DECLARE_PLUGIN(factory_) BERTH_DECLARE_PLUGIN_EXPAND(BERTH_PLUGIN_KIND_ID, factory_)
