// The plugin's exported descriptor and factory (fields come from berth_add_plugin in CMake).
#include "berth/sdk/plugin.hpp"
#include "vfs_driver.hpp"

namespace berth::storage_vfs {
Result<sdk::StorageDriverPtr> create_driver(const sdk::PluginContext& ctx) {
  return VfsDriver::make(ctx);
}
}  // namespace berth::storage_vfs

BERTH_DECLARE_PLUGIN(berth::storage_vfs::create_driver);
