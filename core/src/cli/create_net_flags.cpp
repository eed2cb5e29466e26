// run/create: network flags.
#include "create_flags.hpp"

namespace berth::cli {

void net_create_flags(po::options_description& d) {
  d.add_options()("network,net", po::value<std::string>(),
                  "Connect a container to a network (none, host)");
}

Result<void> parse_net_flags(Context& ctx, container::CreateOptions& o) {
  o.network = ctx.has("network") ? ctx.str("network") : "none";
  return {};
}

}  // namespace berth::cli
