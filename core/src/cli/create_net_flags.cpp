// run/create: network flags.
#include "create_flags.hpp"

namespace berth::cli {

namespace {

using strings = std::vector<std::string>;

bool is_mode(const std::string& v) {
  return v == "none" || v == "host" || v == "bridge" || v == "private" || v == "default" ||
         v == "slirp4netns" || v == "pasta" || v.starts_with("container:") ||
         v.starts_with("ns:") || v.starts_with("slirp4netns:") || v.starts_with("pasta:");
}

}  // namespace

void net_create_flags(po::options_description& d) {
  d.add_options()("network,net", po::value<strings>()->composing(),
                  "Connect a container to a network (bridge, NAME[,NAME], none, host, "
                  "container:NAME, ns:PATH, slirp4netns, pasta)")(
      "publish,p", po::value<strings>()->composing(),
      "Publish a container's port, or a range of ports, to the host")(
      "publish-all,P", po::bool_switch(),
      "Publish all exposed ports to random ports on the host interfaces")(
      "expose", po::value<strings>()->composing(), "Expose a port or a range of ports")(
      "ip", po::value<std::string>(), "Specify a static IPv4 address for the container")(
      "ip6", po::value<std::string>(), "Specify a static IPv6 address for the container")(
      "mac-address", po::value<std::string>(), "Container MAC address (e.g. 92:d0:c6:0a:29:33)")(
      "network-alias", po::value<strings>()->composing(),
      "Add network-scoped alias for the container")("dns", po::value<strings>()->composing(),
                                                    "Set custom DNS servers")(
      "dns-search", po::value<strings>()->composing(), "Set custom DNS search domains")(
      "dns-option", po::value<strings>()->composing(), "Set custom DNS options")(
      "add-host", po::value<strings>()->composing(), "Add a custom host-to-IP mapping (host:ip)")(
      "no-hosts", po::bool_switch(), "Do not create /etc/hosts within the container");
}

Result<void> parse_net_flags(Context& ctx, container::CreateOptions& o) {
  auto& n = o.net;
  // --network: one mode, or networks. A value may list several networks ("a,b"); options of a
  // network follow its name ("a:ip=10.0.0.5,alias=db"), so a token with '=' before any ':'
  // ("alias=db", "ip6=fd00::5") belongs to the network before it.
  std::string mode;
  std::vector<std::string> nets;
  for (const auto& v : ctx.strs("network")) {
    if (is_mode(v)) {
      if (!mode.empty() || !nets.empty()) {
        if (v == "bridge" && mode.empty()) {
          nets.push_back("bridge");
          continue;
        }
        return fail(Errc::InvalidArgument,
                    "--network " + v + " cannot be combined with other --network values");
      }
      mode = v;
      continue;
    }
    if (!mode.empty() && mode != "bridge") {
      return fail(Errc::InvalidArgument,
                  "--network " + mode + " cannot be combined with other --network values");
    }
    for (size_t start = 0; start <= v.size();) {
      auto comma = v.find(',', start);
      std::string tok = v.substr(start, comma == std::string::npos ? comma : comma - start);
      start = comma == std::string::npos ? v.size() + 1 : comma + 1;
      if (tok.empty()) {
        continue;
      }
      if (tok.find('=') < tok.find(':') && !nets.empty() &&
          nets.back().find(':') != std::string::npos) {
        nets.back() += "," + tok;
      } else {
        nets.push_back(tok);
      }
    }
  }
  if (!nets.empty()) {
    if (mode == "bridge") {
      nets.insert(nets.begin(), "bridge");
    }
    mode = "bridge";
  }
  o.network = mode;
  n.networks = nets;
  n.publish = ctx.strs("publish");
  n.publish_all = ctx.flag("publish-all");
  n.expose = ctx.strs("expose");
  n.ip = ctx.str("ip");
  n.ip6 = ctx.str("ip6");
  n.mac = ctx.str("mac-address");
  n.aliases = ctx.strs("network-alias");
  n.dns = ctx.strs("dns");
  n.dns_search = ctx.strs("dns-search");
  n.dns_options = ctx.strs("dns-option");
  n.add_hosts = ctx.strs("add-host");
  n.no_hosts = ctx.flag("no-hosts");
  return {};
}

}  // namespace berth::cli
