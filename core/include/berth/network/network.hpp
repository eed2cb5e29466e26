#pragma once
// berth's networks: configs (netavark's JSON shape, one file per network), IPAM (a flock'd lease
// file per network), network namespaces, and what the container module calls around a
// container's life: connect_container() at start, disconnect_container() at stop/rm,
// hosts_file()/resolv_conf() for its /etc files.
//
// Contract with the network drivers (beyond berth.network.v1), because sdk::SetupRequest has no
// field for them:
//   - PluginContext::run_root is the store's runroot; the leases of network N (the state the DNS
//     responder serves and `network reload` re-applies) are in <runroot>/networks/N.json.
//   - NetworkConfig::options_json holds the network's options ({"mtu": "1500", ...}).
//   - SetupRequest::ports go to every driver; a driver forwards them to the first address it got.
#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "berth/config/config.hpp"
#include "berth/sdk/network.hpp"
#include "berth/sdk/result.hpp"

namespace berth::engine {
class Engine;
}

namespace berth::network {

// ---------------------------------------------------------------------------------------------
// IPv4 addresses (host byte order)

Result<uint32_t> parse_ipv4(std::string_view text);
std::string format_ipv4(uint32_t addr);

struct Ipv4Net {
  uint32_t addr = 0;  // the network address (host bits cleared)
  int prefix = 0;

  // "10.88.0.0/16"; host bits set ("10.88.0.1/16") is an error naming the network address.
  static Result<Ipv4Net> parse(std::string_view cidr);
  uint32_t mask() const { return prefix == 0 ? 0 : ~uint32_t{0} << (32 - prefix); }
  uint32_t broadcast() const { return addr | ~mask(); }
  bool contains(uint32_t ip) const { return (ip & mask()) == addr; }
  bool overlaps(const Ipv4Net& o) const { return contains(o.addr) || o.contains(addr); }
  std::string str() const;
};

// The first subnet of each pool (in order) that overlaps nothing in `used`. Conflict when every
// pool is exhausted.
Result<Ipv4Net> pick_subnet(const std::vector<config::SubnetPool>& pools,
                            const std::vector<Ipv4Net>& used);
// IPv4 destinations of the host's routes (/proc/net/route), the default route excluded.
std::vector<Ipv4Net> host_routes();

// ---------------------------------------------------------------------------------------------
// IPv6 addresses, as 128-bit integers so that subnets and lease ranges are plain arithmetic

__extension__ typedef unsigned __int128 Uint128;

// An address or CIDR with a ':' is IPv6.
inline bool is_ipv6(std::string_view ip_or_cidr) {
  return ip_or_cidr.find(':') != std::string_view::npos;
}
Result<Uint128> parse_ipv6(std::string_view text);
std::string format_ipv6(Uint128 addr);  // RFC 5952 (inet_ntop)

struct Ipv6Net {
  Uint128 addr = 0;  // the network address (host bits cleared)
  int prefix = 0;

  // "fd12:3456:789a:1::/64"; host bits set is an error naming the network address.
  static Result<Ipv6Net> parse(std::string_view cidr);
  Uint128 mask() const { return prefix == 0 ? Uint128(0) : ~Uint128(0) << (128 - prefix); }
  Uint128 last() const { return addr | ~mask(); }
  bool contains(Uint128 ip) const { return (ip & mask()) == addr; }
  bool overlaps(const Ipv6Net& o) const { return contains(o.addr) || o.contains(addr); }
  std::string str() const;
};

// A unique local /64 as RFC 4193 makes them (fd00::/8, a random 40-bit global id, subnet 0)
// that overlaps nothing in `used`; what Podman's --ipv6 picks when no IPv6 --subnet is given.
Result<Ipv6Net> pick_ula_subnet(const std::vector<Ipv6Net>& used);
// IPv6 destinations of the host's routes (/proc/net/ipv6_route), default and link-local
// excluded.
std::vector<Ipv6Net> host_routes6();

// ---------------------------------------------------------------------------------------------
// Network configs

struct LeaseRange {
  std::string start_ip;
  std::string end_ip;
};

struct SubnetConfig {
  std::string subnet;   // "10.89.0.0/24"
  std::string gateway;  // "10.89.0.1"
  LeaseRange lease_range;
};

struct Network {
  std::string name;
  std::string id;      // 64 hex
  std::string driver;  // "bridge", "slirp"
  std::string network_interface;
  std::string created;  // RFC 3339
  std::vector<SubnetConfig> subnets;
  bool ipv6_enabled = false;
  bool internal = false;
  bool dns_enabled = false;
  std::map<std::string, std::string> options;  // "mtu", ...
  std::map<std::string, std::string> labels;
  std::map<std::string, std::string> ipam_options = {{"driver", "host-local"}};
  bool is_default = false;  // the implicit default network (no file)
};

// Podman's `network inspect` object (netavark's config file shape).
nlohmann::json to_json(const Network& n);
Result<Network> network_from_json(const nlohmann::json& j, std::string_view file);
sdk::NetworkConfig to_driver_config(const Network& n);

struct CreateOptions {
  std::string name;  // empty: "berth1", "berth2", ... (the first unused, as Podman's podmanN)
  std::string driver = "bridge";
  std::vector<std::string> subnets;
  std::vector<std::string> gateways;   // by position, for the subnets
  std::vector<std::string> ip_ranges;  // by position: CIDR or "start-end"
  bool internal = false;
  bool ipv6 = false;
  bool disable_dns = false;
  std::string interface_name;
  std::map<std::string, std::string> options;
  std::map<std::string, std::string> labels;
  bool ignore_existing = false;  // --ignore: an existing network of that name is returned
};

// Who uses a network besides the leases: the container module registers these so `network rm`
// refuses (or, with -f, removes) containers that are configured on a network but not running.
struct NetworkUsers {
  std::function<std::vector<std::string>(const std::string& network)> list;
  std::function<Result<void>(const std::vector<std::string>& containers)> remove;
};
void set_network_users(NetworkUsers users);

class NetworkStore {
 public:
  NetworkStore(std::filesystem::path config_dir, std::filesystem::path lease_dir,
               Network default_network, std::vector<config::SubnetPool> pools);
  // The store of `engine`: network_config_dir (default <graphroot>/networks), leases under
  // <runroot>/networks, the default network from containers.conf.
  static NetworkStore for_engine(const engine::Engine& engine);
  // `berth` (bridge berth0 on default_subnet), or containers.conf's default_network when a file
  // sets it.
  static Network default_network(const config::ContainersConfig& cfg);

  Result<Network> create(const CreateOptions& opts);
  // By exact name, full id or unique id prefix. NotFound names the network.
  Result<Network> get(const std::string& name_or_id) const;
  Result<std::vector<Network>> list() const;
  // Refuses the default network and a network with containers (InvalidArgument / Busy) unless
  // `force` (the users are removed first).
  Result<void> remove(const std::string& name_or_id, bool force);
  // Removes unused networks (not the default); returns their names.
  Result<std::vector<std::string>> prune(const std::map<std::string, std::string>& labels = {});
  // Containers holding a lease or registered as users.
  Result<std::vector<std::string>> users(const Network& n) const;

  std::filesystem::path lease_file(const std::string& network) const;
  const std::filesystem::path& config_dir() const { return config_dir_; }
  const std::filesystem::path& lease_dir() const { return lease_dir_; }

 private:
  Result<Network> read_file(const std::filesystem::path& file) const;
  std::filesystem::path config_dir_;
  std::filesystem::path lease_dir_;
  Network default_;
  std::vector<config::SubnetPool> pools_;
};

// ---------------------------------------------------------------------------------------------
// IPAM: a JSON lease file per network, read and written under flock(2), so concurrent berth
// processes never hand out an address twice. The same file is the network's state: names and
// aliases for the DNS responder, ports for `network reload`.

struct Lease {
  std::string container_id;
  std::string container_name;
  std::string ip;  // IPv4, without prefix; empty on an IPv6-only network
  int prefix = 0;
  std::string gateway;
  std::string ip6;  // IPv6 (dual stack or IPv6-only networks), without prefix
  int prefix6 = 0;
  std::string gateway6;
  std::string mac;
  std::string interface_name;
  std::vector<std::string> aliases;
  std::string netns;
  std::vector<sdk::PortMapping> ports;

  // The CIDRs the container gets: IPv4 first, then IPv6.
  std::vector<std::string> addresses() const;
};
nlohmann::json to_json(const Lease& l);
Lease lease_from_json(const nlohmann::json& j);

// Where the bridge networks' host-wide reservations live (see Ipam).
inline constexpr const char* kHostIpamDir = "/run/berth/ipam";

class Ipam {
 public:
  // `host_dir`: besides the store's lease file, a network on a bridge (network_interface set)
  // records every address it hands out in <host_dir>/<bridge>.json under a host-wide flock, and
  // avoids the addresses recorded there by other stores: stores with lease files of their own
  // (--root/--runroot) share one bridge (berth0) and never hand out an address twice on it.
  // A reservation whose store no longer holds the lease is dropped when next seen.
  Ipam(std::filesystem::path lease_file, Network network,
       std::filesystem::path host_dir = kHostIpamDir);
  // The lowest free address of the lease range (gateway, network and broadcast addresses never)
  // of the network's first IPv4 subnet, and of its first IPv6 subnet: one of each on a dual
  // stack network. `want.ip` / `want.ip6` when set (static --ip: must be in the subnet and
  // free; an IPv6 address in `want.ip` is taken as `want.ip6`). A container that already has a
  // lease gets it back. Conflict when the range is exhausted or the address is taken.
  Result<Lease> allocate(Lease want);
  // Idempotent.
  Result<void> release(const std::string& container_id);
  Result<std::vector<Lease>> leases() const;
  // Rewrites the lease of `lease.container_id` (ports, netns) keeping its address.
  Result<void> update(const Lease& lease);

 private:
  std::filesystem::path file_;
  Network network_;
  std::filesystem::path host_dir_;
};

// ---------------------------------------------------------------------------------------------
// Network namespaces

// A network namespace bind-mounted at a path (as `ip netns add`). Owns nothing: the namespace
// stays until remove_netns().
struct NetnsHandle {
  std::string path;
};
// Creates the namespace with unshare(CLONE_NEWNET) on the calling thread (which returns to its
// own namespace before this returns), brings its loopback up and bind-mounts it at `path` (its
// directory is made).
Result<NetnsHandle> create_netns(const std::string& path);
// Unmounts and removes; succeeds when nothing is there.
Result<void> remove_netns(const std::string& path);

// ---------------------------------------------------------------------------------------------
// Containers

struct NetworkAttachRequest {
  std::string network;  // name or id
  std::vector<std::string> aliases;
  std::string static_ip;
  std::string static_ip6;  // --ip6
  std::string static_mac;
  std::string interface_name;  // default eth<N>
};

struct ContainerNetRequest {
  std::string container_id;
  std::string container_name;
  std::string hostname;
  std::string netns_path;
  std::vector<NetworkAttachRequest> networks;  // empty: the default network, unless no_networks
  // A bridge-mode container whose every network was disconnected: nothing is plumbed (the
  // namespace keeps its loopback), no lease, no port forwarded.
  bool no_networks = false;
  std::vector<sdk::PortMapping> ports;     // parse_publish() of each -p
  bool publish_all = false;                // -P: a free host port for each exposed port
  std::vector<std::string> exposed_ports;  // "80/tcp", "53/udp", "8080"
  std::vector<std::string> dns_servers;
  std::vector<std::string> dns_search;
  std::vector<std::string> dns_options;
  std::vector<std::string> add_hosts;  // "name:ip" (several names: "a;b:ip")
  // "slirp4netns" or "pasta": user-mode networking instead of `networks` (the slirp driver
  // plumbs the namespace; no IPAM).
  std::string user_mode;
};

// `-p` syntax: [[ip:][hostPort[-hostPortEnd]]:]containerPort[-containerPortEnd][/tcp|/udp|/sctp].
// An empty host port picks a free one (host_port stays 0 when `pick_free` is false: for
// connect_container, which picks it under its ports lock).
Result<std::vector<sdk::PortMapping>> parse_publish(const std::string& spec, bool pick_free = true);
// -P: a mapping with host_port 0 (to be picked) to each exposed port.
Result<std::vector<sdk::PortMapping>> publish_all_ports(const std::vector<std::string>& exposed);
// Gives each mapping with host_port 0 a free run of host ports (bound to port 0 by the kernel)
// that overlaps no other mapping of `ports` and none for which `taken` is true.
Result<void> pick_host_ports(std::vector<sdk::PortMapping>& ports,
                             const std::function<bool(const sdk::PortMapping&)>& taken);
// Whether two mappings claim a common host port (same protocol, overlapping addresses).
bool overlaps(const sdk::PortMapping& a, const sdk::PortMapping& b);

// Allocates the container's addresses, loads each network's driver, plumbs the namespace and
// returns what the container got. On failure nothing is left (leases released, drivers torn
// down). `published` receives the host ports as forwarded (random ones and -P resolved).
Result<sdk::SetupStatus> connect_container(engine::Engine& engine, const ContainerNetRequest& req,
                                           std::vector<sdk::PortMapping>* published = nullptr);
// Tears down the drivers' work and releases the leases. Idempotent; networks removed since are
// skipped. req.ports: the mappings as forwarded (their rules are removed).
Result<void> disconnect_container(engine::Engine& engine, const ContainerNetRequest& req);
// One more network for a plumbed namespace (`network connect` on a running container): a lease
// and the driver's setup of that attachment alone. net.interface_name must be set. req.ports and
// req.publish_all are forwarded to this network's address (and held by its lease): set them only
// for a container on no other network, as the first network holds them; `published` receives
// them as forwarded.
Result<sdk::InterfaceStatus> connect_network(engine::Engine& engine, const ContainerNetRequest& req,
                                             const NetworkAttachRequest& net,
                                             std::vector<sdk::PortMapping>* published = nullptr);
// Undoes connect_network() (or one network of connect_container()). Idempotent.
Result<void> disconnect_network(engine::Engine& engine, const ContainerNetRequest& req,
                                const std::string& network);
// Forwards req.ports (host ports resolved) to the container's address on `network`, which it is
// connected to, and records them in that lease: where the ports go when the network that held
// them is disconnected from a running container and others remain (as Docker). Conflict when a
// host port is taken meanwhile.
Result<void> forward_ports(engine::Engine& engine, const ContainerNetRequest& req,
                           const std::string& network);
// Checks that a driver plugin of opts.driver exists, then NetworkStore::create.
Result<Network> create_network(engine::Engine& engine, const CreateOptions& opts);
// Re-applies the drivers' setup (firewall rules) of every container holding a lease whose
// namespace still exists, after a firewall flush. Returns the container ids reloaded.
Result<std::vector<std::string>> reload_networks(engine::Engine& engine);

// ---------------------------------------------------------------------------------------------
// /etc/hosts and /etc/resolv.conf of a container

struct HostsInput {
  std::string base;  // base_hosts_file content; empty: the localhost lines
  std::string hostname;
  std::string container_name;
  std::vector<std::string> container_ips;
  std::string host_ip;  // host.containers.internal (and host.docker.internal); empty: none
  std::vector<std::string> add_hosts;
  std::vector<std::pair<std::string, std::string>> peers;  // (ip, name) of other containers
};
Result<std::string> hosts_file(const HostsInput& in);
// The container's /etc/hosts: its addresses from `status`, the gateway as
// host.containers.internal, and, for networks without DNS, the other containers on them.
Result<std::string> hosts_file(engine::Engine& engine, const ContainerNetRequest& req,
                               const sdk::SetupStatus& status);

struct ResolvInput {
  std::string host_resolv_conf;          // the host's /etc/resolv.conf content
  std::vector<std::string> responders;   // DNS responders of the container's networks, first
  std::vector<std::string> dns_servers;  // --dns: replaces the host's servers
  std::vector<std::string> dns_search;
  std::vector<std::string> dns_options;
};
// Host resolvers minus 127.x/::1 (unreachable from the namespace); none left -> 8.8.8.8 as Podman.
Result<std::string> resolv_conf(const ResolvInput& in);
Result<std::string> resolv_conf(engine::Engine& engine, const ContainerNetRequest& req,
                                const sdk::SetupStatus& status);

}  // namespace berth::network
