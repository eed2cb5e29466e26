// The plugin's descriptor and factory; everything else is in berth_registry_client.
#include "berth/sdk/plugin.hpp"
#include "docker_transport.hpp"

namespace {
berth::Result<berth::sdk::TransportPtr> create_transport(const berth::sdk::PluginContext& ctx) {
  return berth::registry::create_docker_transport(ctx);
}
}  // namespace

BERTH_DECLARE_PLUGIN(create_transport);
