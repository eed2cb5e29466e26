// A minimal storage plugin whose descriptor the build can spoil: BAD_ABI_MAJOR, BAD_BUILD_KEY,
// BAD_NO_DESCRIPTOR. Without any of them it is a good plugin whose factory refuses politely.
#include "berth/sdk/plugin.hpp"
#include "berth/sdk/storage.hpp"

#ifndef BAD_ABI_MAJOR
#define BAD_ABI_MAJOR BERTH_SDK_ABI_MAJOR
#endif
#ifndef BAD_BUILD_KEY
#define BAD_BUILD_KEY BERTH_BUILD_KEY
#endif

namespace bad {
berth::Result<berth::sdk::StorageDriverPtr> create_driver(const berth::sdk::PluginContext&) {
  return berth::fail(berth::Errc::NotSupported, "test plugin: no driver here");
}
}  // namespace bad

#ifndef BAD_NO_DESCRIPTOR
extern "C" BERTH_EXPORT __attribute__((section(BERTH_DESCRIPTOR_SECTION), used))
const berth_plugin_descriptor berth_plugin_descriptor_v1 = {BERTH_DESCRIPTOR_MAGIC,
                                                            sizeof(berth_plugin_descriptor),
                                                            BAD_ABI_MAJOR,
                                                            BERTH_SDK_ABI_MINOR,
                                                            BERTH_KIND_storage,
                                                            "bad",
                                                            "",
                                                            "0.0.1",
                                                            "Apache-2.0",
                                                            BAD_BUILD_KEY,
                                                            "loader refusal test"};
#endif
BOOST_DLL_ALIAS(bad::create_driver, berth_plugin_factory_v1)
