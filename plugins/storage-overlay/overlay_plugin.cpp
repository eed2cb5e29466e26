// The plugin's exported descriptor and factory (fields come from berth_add_plugin in CMake).
#include "berth/sdk/plugin.hpp"
#include "overlay_driver.hpp"

namespace berth::storage_overlay {
Result<sdk::StorageDriverPtr> create_driver(const sdk::PluginContext& ctx) {
  return OverlayDriver::make(ctx);
}
}  // namespace berth::storage_overlay

BERTH_DECLARE_PLUGIN(berth::storage_overlay::create_driver);
