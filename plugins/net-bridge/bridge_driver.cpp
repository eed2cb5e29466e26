// The bridge network driver: a Linux bridge per network, a veth pair per container (the peer
// created directly in the container's namespace), NAT and published ports with nftables.
#include <arpa/inet.h>
#include <fcntl.h>
#include <net/if.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>

#include "berth/sdk/network.hpp"
#include "berth/sdk/plugin.hpp"
#include "berth/sdk/unique_fd.hpp"
#include "dns_responder.hpp"
#include "firewall.hpp"
#include "netlink.hpp"

namespace berth::bridge {

namespace fs = std::filesystem;

namespace {

constexpr uint32_t kDefaultMtu = 1500;

// A short stable name for kernel objects (interface names have 15 characters).
std::string short_hash(const std::string& s) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ull;
  }
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
  return std::string(buf, 12);
}

std::string veth_name(const std::string& container_id, const std::string& network) {
  return "vb" + short_hash(container_id + "/" + network);
}
// By name and subnet: stores (--root) each have a default network "berth" on the one host-wide
// bridge, with subnets of their own; their rules must not replace each other's.
std::string network_key(const sdk::NetworkConfig& n) {
  return "nw-" + short_hash(n.name + "/" + (n.subnets.empty() ? "" : n.subnets.front().subnet));
}
std::string container_key(const std::string& id) {
  return "ct-" + short_hash(id);
}

struct Cidr {
  netlink::Addr ip;
  int prefix = 0;
  bool v6() const { return ip.family == AF_INET6; }
};

Result<Cidr> parse_cidr(const std::string& s) {
  auto slash = s.find('/');
  if (slash == std::string::npos) {
    return fail(Errc::InvalidArgument, "invalid address " + s + " (expected CIDR)");
  }
  BERTH_TRY(auto ip, netlink::Addr::parse(s.substr(0, slash)));
  int prefix = std::atoi(s.c_str() + slash + 1);
  int max = ip.family == AF_INET6 ? 128 : 32;
  if (prefix < 0 || prefix > max || s.size() == slash + 1) {
    return fail(Errc::InvalidArgument, "invalid prefix in " + s);
  }
  return Cidr{ip, prefix};
}

Result<void> write_sysctl(const std::string& path, const std::string& value) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) {
    return fail_errno("open", path);
  }
  UniqueFd guard(fd);
  if (::write(fd, value.data(), value.size()) != static_cast<ssize_t>(value.size())) {
    return fail_errno("write", path);
  }
  return {};
}

bool bridge_has_ports(const std::string& bridge) {
  std::error_code ec;
  fs::path dir = fs::path("/sys/class/net") / bridge / "brif";
  if (!fs::exists(dir, ec)) {
    return false;
  }
  return !fs::is_empty(dir, ec);
}

// Whether `inner` (a route) lies inside `outer` (a subnet): same family, at least as long a
// prefix, and the subnet's leading bits.
bool within(const Cidr& inner, const Cidr& outer) {
  if (inner.ip.family != outer.ip.family || inner.prefix < outer.prefix) {
    return false;
  }
  for (int bit = 0; bit < outer.prefix; ++bit) {
    uint8_t mask = static_cast<uint8_t>(0x80 >> (bit % 8));
    if ((inner.ip.bytes[bit / 8] & mask) != (outer.ip.bytes[bit / 8] & mask)) {
      return false;
    }
  }
  return true;
}

// The name of the interface of a route of the host's main table that takes all or part of
// `subnet` from `bridge`: on another interface, with as long a prefix or longer, inside the
// subnet. Broader routes (a VPN's 10.0.0.0/8) and default routes lose to the bridge's own and
// do not count. Such a route is typically another engine's bridge on the same subnet (Podman's
// cni-podman0 keeps 10.88.0.0/16, linkdown, after its last container): the host's traffic to
// the containers would go there ("No route to host"), so the setup refuses instead of starting
// them unreachable.
Result<std::optional<std::string>> route_clash(netlink::Socket& host, const Cidr& subnet,
                                               int bridge_index) {
  BERTH_TRY(auto routes, host.routes(subnet.ip.family));
  for (const auto& r : routes) {
    if (r.oif == 0 || r.oif == bridge_index || r.prefix == 0 ||
        !within(Cidr{r.dst, r.prefix}, subnet)) {
      continue;
    }
    char name[IF_NAMESIZE] = {};
    if (::if_indextoname(static_cast<unsigned>(r.oif), name) == nullptr) {
      return std::optional<std::string>("interface " + std::to_string(r.oif));
    }
    return std::optional<std::string>(name);
  }
  return std::optional<std::string>();
}

class BridgeDriver final : public sdk::NetworkDriver {
 public:
  explicit BridgeDriver(sdk::PluginContext ctx)
      : ctx_(std::move(ctx)),
        options_(nlohmann::json::parse(ctx_.options_json.empty() ? "{}" : ctx_.options_json,
                                       nullptr, false)) {
    if (!options_.is_object()) {
      options_ = nlohmann::json::object();
    }
  }

  std::string name() const override { return "bridge"; }

  Result<sdk::NetworkConfig> validate(const sdk::NetworkConfig& config) override {
    sdk::NetworkConfig c = config;
    if (c.interface.empty()) {
      return fail(Errc::InvalidArgument, "network " + c.name + ": no bridge interface name");
    }
    if (c.interface.size() > 15) {
      return fail(Errc::InvalidArgument,
                  "bridge name " + c.interface + " is longer than 15 characters");
    }
    if (c.subnets.empty()) {
      return fail(Errc::InvalidArgument, "network " + c.name + ": a bridge network needs a subnet");
    }
    for (const auto& s : c.subnets) {
      BERTH_TRY(auto cidr, parse_cidr(s.subnet));
      BERTH_TRY(auto gw, netlink::Addr::parse(s.gateway));
      if (gw.family != cidr.ip.family) {
        return fail(Errc::InvalidArgument, "network " + c.name + ": gateway " + s.gateway +
                                               " and subnet " + s.subnet +
                                               " are of different IP versions");
      }
    }
    if (c.mtu == 0) {
      c.mtu = kDefaultMtu;
    }
    return c;
  }

  Result<sdk::SetupStatus> setup(const sdk::SetupRequest& req) override {
    if (ctx_.rootless) {
      return fail(Errc::PermissionDenied,
                  "the bridge driver needs root (rootless containers use the slirp driver)");
    }
    BERTH_TRY(auto fw, open_firewall());
    UniqueFd ns(::open(req.netns_path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!ns) {
      return fail_errno("open network namespace", req.netns_path);
    }
    BERTH_TRY(auto host, netlink::Socket::open());
    BERTH_TRY(auto inner, netlink::Socket::open_in(ns.get(), req.netns_path));
    BERTH_TRY(auto lo, inner.link("lo"));
    BERTH_TRYV(inner.set_up(lo.index));
    BERTH_TRYV(write_sysctl("/proc/sys/net/ipv4/ip_forward", "1"));

    sdk::SetupStatus status;
    std::string first_ip;
    std::string first_ip6;
    for (const auto& a : req.attachments) {
      BERTH_TRY(auto cfg, validate(a.network));
      if (a.addresses.empty()) {
        return fail(Errc::InvalidArgument, "network " + cfg.name + ": no address was allocated");
      }
      bool has_v6 = false;
      std::vector<std::string> subnets;
      for (const auto& sn : cfg.subnets) {
        subnets.push_back(sn.subnet);
        has_v6 = has_v6 || sn.subnet.find(':') != std::string::npos;
      }
      if (has_v6 && !cfg.internal) {
        // Routing for the containers' IPv6 traffic out (netavark does the same).
        BERTH_TRYV(write_sysctl("/proc/sys/net/ipv6/conf/all/forwarding", "1"));
      }

      // The bridge, its gateway addresses (one per subnet), up.
      auto br = host.link(cfg.interface);
      if (!br && br.error().code() == Errc::NotFound) {
        BERTH_TRYV(host.create_bridge(cfg.interface, cfg.mtu));
        br = host.link(cfg.interface);
      }
      if (!br) {
        return fail(std::move(br).error());
      }
      for (const auto& sn : cfg.subnets) {
        BERTH_TRY(auto subnet, parse_cidr(sn.subnet));
        BERTH_TRY(auto other, route_clash(host, subnet, br->index));
        if (other) {
          return fail(
              Error(Errc::Conflict,
                    "network " + cfg.name + ": subnet " + sn.subnet + " is also routed through " +
                        *other + ", so the host could not reach containers on " + cfg.interface)
                  .hint("remove that route or interface (ip link delete " + *other +
                        " if it is an unused bridge), or give the network another subnet " +
                        "(network create --subnet; for the default network, default_subnet in " +
                        "containers.conf [network])"));
        }
        BERTH_TRY(auto gw, netlink::Addr::parse(sn.gateway));
        BERTH_TRYV(host.add_address(br->index, gw, subnet.prefix));
      }
      BERTH_TRYV(host.set_up(br->index));
      BERTH_TRYV(write_sysctl("/proc/sys/net/ipv4/conf/" + cfg.interface + "/route_localnet", "1"));

      // The veth pair: eth<N> inside, vb<hash> on the bridge with hairpin on.
      std::string vname = veth_name(req.container_id, cfg.name);
      auto veth = host.link(vname);
      if (!veth && veth.error().code() == Errc::NotFound) {
        BERTH_TRYV(host.create_veth(vname, a.interface_name, ns.get(), cfg.mtu, a.mac));
        veth = host.link(vname);
      }
      if (!veth) {
        return fail(std::move(veth).error());
      }
      BERTH_TRYV(host.set_up(veth->index, br->index));
      BERTH_TRYV(write_sysctl("/sys/class/net/" + vname + "/brport/hairpin_mode", "1"));

      BERTH_TRY(auto eth, inner.link(a.interface_name));
      BERTH_TRYV(inner.set_up(eth.index));
      std::string gw4;
      for (const auto& address : a.addresses) {
        BERTH_TRY(auto addr, parse_cidr(address));
        BERTH_TRYV(inner.add_address(eth.index, addr.ip, addr.prefix));
        std::string bare = address.substr(0, address.find('/'));
        std::string& first = addr.v6() ? first_ip6 : first_ip;
        if (first.empty()) {
          first = bare;
        }
        // The default route of each IP version through the gateway of its subnet.
        for (const auto& sn : cfg.subnets) {
          BERTH_TRY(auto gw, netlink::Addr::parse(sn.gateway));
          if (gw.family != addr.ip.family) {
            continue;
          }
          if (!cfg.internal) {
            BERTH_TRYV(inner.add_default_route(gw, eth.index));
          }
          if (!addr.v6() && gw4.empty()) {
            gw4 = sn.gateway;
          }
          break;
        }
      }
      BERTH_TRYV(fw->add_network({network_key(cfg), cfg.interface, subnets, cfg.internal}));

      // The interface's gateway as reported, and where the responder listens: the IPv4 gateway
      // (the IPv6 one on an IPv6-only network).
      std::string gateway = gw4.empty() ? cfg.subnets.front().gateway : gw4;
      if (cfg.dns_enabled) {
        BERTH_TRYV(dns::ensure_running(
            {cfg.name, gateway, dns_port(), lease_file(cfg.name), dns_pid_file(cfg.name)}));
        if (std::find(status.dns_servers.begin(), status.dns_servers.end(), gateway) ==
            status.dns_servers.end()) {
          status.dns_servers.push_back(gateway);
        }
      }

      sdk::InterfaceStatus is;
      is.name = a.interface_name;
      is.mac = eth.mac;
      is.addresses = a.addresses;
      is.gateway = gateway;
      status.interfaces.push_back(is);
    }
    if (!req.ports.empty() && (!first_ip.empty() || !first_ip6.empty())) {
      BERTH_TRYV(
          fw->add_container({container_key(req.container_id), first_ip, first_ip6, req.ports}));
    }
    return status;
  }

  Result<void> teardown(const sdk::SetupRequest& req) override {
    // The host-wide lock at once (a setup must not plug into a bridge this removes), the
    // firewall backend (a context and a listing) only when rules go: a container without
    // published ports leaving a bridge that stays changes none.
    BERTH_TRY(auto lock, firewall::lock_firewall(firewall_lock_file()));
    firewall::FirewallPtr fw_held;
    auto fw = [&]() -> Result<firewall::Firewall*> {
      if (!fw_held) {
        BERTH_TRY(fw_held, firewall::open_backend(option("firewall_driver")));
      }
      return fw_held.get();
    };
    BERTH_TRY(auto host, netlink::Socket::open());
    // The published ports' rules go with the request that names them (a full teardown, or the
    // disconnect of the network that carries them), not with the disconnect of another network.
    bool removed_rules = false;  // a container's port rules: the base chains may be unused now
    if (!req.ports.empty()) {
      BERTH_TRY(auto f, fw());
      BERTH_TRYV(f->remove_container(container_key(req.container_id)));
      removed_rules = true;
    }
    for (const auto& a : req.attachments) {
      BERTH_TRYV(host.delete_link(veth_name(req.container_id, a.network.name)));
      if (!a.network.interface.empty() && !bridge_has_ports(a.network.interface)) {
        // The last container left: the bridge goes, and with it the rules of every network on
        // it (other stores' networks share the bridge with subnets of their own), including
        // this one's rules as written before they were tagged with the bridge. The default
        // network's bridge itself stays, empty (as Docker's docker0 and Podman's cni-podman0):
        // deleting a bridge is ~40 ms of the kernel's waiting for RCU on every `run --rm`; its
        // addresses (every store's gateway on it) and their routes go.
        if (a.network.name == option("default_network")) {
          BERTH_TRYV(host.flush_addresses(a.network.interface));
        } else {
          BERTH_TRYV(host.delete_link(a.network.interface));
        }
        BERTH_TRY(auto f, fw());
        BERTH_TRYV(f->remove_networks_on(a.network.interface, network_key(a.network)));
        BERTH_TRYV(dns::stop(dns_pid_file(a.network.name)));
      }
    }
    // Only then can berth's base chains have become unused (each check is a listing).
    return removed_rules ? fw_held->remove_base_if_unused() : Result<void>();
  }

  std::vector<std::pair<std::string, std::string>> info() override {
    return {{"firewall", firewall::probe_description(option("firewall_driver"))},
            {"netlink", "libmnl"},
            {"dns", "berth-dns responder on the gateway, port " + std::to_string(dns_port())}};
  }

 private:
  fs::path state_dir() const {
    return fs::path(ctx_.run_root.empty() ? "/run/berth" : ctx_.run_root) / "networks";
  }
  std::string lease_file(const std::string& network) const {
    return (state_dir() / (network + ".json")).string();
  }
  std::string dns_pid_file(const std::string& network) const {
    return (state_dir() / ("dns-" + network + ".pid")).string();
  }
  uint16_t dns_port() const {
    if (auto it = options_.find("dns_bind_port"); it != options_.end() && it->is_number()) {
      uint16_t p = it->get<uint16_t>();
      return p == 0 ? 53 : p;
    }
    return 53;
  }
  // A string option of the plugin context (containers.conf's [network] values the core passes).
  std::string option(const std::string& key) const {
    if (auto it = options_.find(key); it != options_.end() && it->is_string()) {
      return it->get<std::string>();
    }
    return "";
  }

  // The rules are one set per host (network namespace), shared by every store: berth processes
  // over different stores (--root/--runroot) change them too, so the lock that serialises their
  // read-modify-write is host-wide, not per store.
  Result<firewall::FirewallPtr> open_firewall() {
    return firewall::open_firewall(option("firewall_driver"), firewall_lock_file());
  }
  std::string firewall_lock_file() const {
    fs::path dir = "/run/lock";
    std::error_code ec;
    if (!fs::is_directory(dir, ec)) {
      dir = "/run/berth";
      fs::create_directories(dir, ec);  // a failure shows when the lock file is opened
    }
    return (dir / "berth-nftables.lock").string();
  }

  sdk::PluginContext ctx_;
  nlohmann::json options_;  // ctx_.options_json, parsed once
};

}  // namespace

Result<sdk::NetworkDriverPtr> create_driver(const sdk::PluginContext& ctx) {
  return std::make_unique<BridgeDriver>(ctx);
}

}  // namespace berth::bridge

BERTH_DECLARE_PLUGIN(berth::bridge::create_driver)
