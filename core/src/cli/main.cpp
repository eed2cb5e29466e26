// berth's entry point: a command runs locally over the store, or, with --url, --connection or
// --remote before the command, on a berth service (docs/remote.md).
#include <string>
#include <vector>

#include "berth/api/client.hpp"
#include "berth/config/config.hpp"
#include "command.hpp"

namespace {

// The service URI the leading global flags ask for; "" to run locally.
berth::Result<std::string> remote_uri(const berth::api::RemoteArgs& ra) {
  if (!ra.url.empty()) {
    return ra.url;  // no configuration needed
  }
  berth::config::GlobalOverrides o;
  if (!ra.config.empty()) {
    o.config_path = ra.config;
  }
  BERTH_TRY(auto cfg, berth::config::load_config(berth::config::ConfigPaths::from_host(), o));
  return berth::api::resolve_service_uri(cfg, ra.url, ra.connection, ra.remote);
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  auto ra = berth::api::split_remote_args(args);
  if (ra.wanted()) {
    auto uri = remote_uri(ra);
    if (!uri) {
      std::cerr << "Error: " << uri.error().message() << "\n";
      return berth::cli::kExitEngineError;
    }
    if (!uri->empty()) {
      return berth::api::run_remote_cli(*uri, ra.forwarded);
    }
  }
  return berth::cli::run_cli(argc, argv);
}
