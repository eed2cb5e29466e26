#pragma once
// NAT, forwarding and published ports of bridge networks, through a backend chosen at run time
// (containers.conf `[network] firewall_driver`, as Podman 5 / netavark):
//   nftables  libnftables, loaded with dlopen (no `nft` process), the table `inet berth`;
//   iptables  Debian's `iptables`/`ip6tables` (whatever alternative they point to: -nft or
//             -legacy), driven in batches through iptables-save/iptables-restore;
//   none      no rules at all (the admin manages the firewall);
//   ""        nftables, or iptables where libnftables or the kernel's nf_tables is missing.
//
// Both backends lay the rules out alike: the nat hooks prerouting/output send local destinations
// to a ports chain, which jumps to one chain per container (`ct-<hash>-dnat`); nat postrouting
// and filter forward jump to one chain per network (`nw-<hash>-post`, `nw-<hash>-fwd`). Every
// jump carries a comment naming its key, so teardown deletes exactly those rules; when no
// per-network or per-container chain is left, berth's base chains go too. A network's jumps are
// tagged `<key>@<bridge>/<hash of its rules>`: a start on a network whose rules are in place
// changes nothing, and when a bridge goes, every network's rules on it go (stores with their own
// subnets share one bridge; their rules used to outlive it).
//
// Published ports reached from the host itself (127.0.0.1:<port>) are DNAT'ed in the output
// hook; the bridge gets route_localnet=1 and the network masquerades 127.0.0.0/8 sources, as
// netavark does, so no userspace proxy runs. IPv6 subnets get the same rules in ip6 form; ::1 is
// not forwarded (IPv6 has no route_localnet).
#include <memory>
#include <string>
#include <vector>

#include "berth/sdk/network.hpp"
#include "berth/sdk/result.hpp"
#include "berth/sdk/unique_fd.hpp"

namespace berth::firewall {

struct NetworkRules {
  std::string key;                   // "nw-<hash>"
  std::string bridge;                // the bridge interface, e.g. "berth0"
  std::vector<std::string> subnets;  // CIDRs, IPv4 and/or IPv6
  bool internal = false;
};

struct ContainerRules {
  std::string key;            // "ct-<hash>"
  std::string container_ip;   // IPv4 target of the ports (empty: none)
  std::string container_ip6;  // IPv6 target (empty: none)
  std::vector<sdk::PortMapping> ports;
};

class Firewall {
 public:
  virtual ~Firewall() = default;
  // Idempotent: re-adding replaces the network's (container's) rules.
  virtual Result<void> add_network(const NetworkRules& n) = 0;
  virtual Result<void> remove_network(const std::string& key) = 0;
  // Removes the rules of every network tagged with `bridge` (the bridge is gone) and of `key`
  // (tagged or not), then berth's base chains when nothing else uses them.
  virtual Result<void> remove_networks_on(const std::string& bridge, const std::string& key) = 0;
  virtual Result<void> add_container(const ContainerRules& c) = 0;
  virtual Result<void> remove_container(const std::string& key) = 0;
  // Removes berth's base chains (the nftables table) when no network or container chain is left.
  virtual Result<void> remove_base_if_unused() = 0;
  // "nftables (libnftables, table inet berth)", for `berth info`.
  virtual std::string describe() const = 0;
};
using FirewallPtr = std::unique_ptr<Firewall>;

// The comment on a network's jumps: "<key>@<bridge>/<8 hex of the rules>".
std::string network_tag(const std::string& key, const std::string& bridge,
                        const std::string& rules);
struct Tag {
  std::string key;     // "nw-..." / "ct-..."
  std::string bridge;  // empty in a container's tag or one written before tags had it
};
Tag parse_tag(const std::string& comment);

// The backend for `driver` ("", "nftables", "iptables", "none"), holding `lock_file` (flock)
// for its life: the rules are host-wide, changed by berth processes of every store. A named
// driver that cannot work here is an error saying why; "" falls back as above.
Result<FirewallPtr> open_firewall(const std::string& driver, const std::string& lock_file);
// The two halves of open_firewall, for a caller that must hold the lock over its own steps
// (removing a bridge) and may need no backend at all: the lock (flock on `lock_file`, held while
// the fd lives), and the backend, used only while that lock is held.
Result<UniqueFd> lock_firewall(const std::string& lock_file);
Result<FirewallPtr> open_backend(const std::string& driver);

// What `driver` resolves to on this host, without taking the lock ("nftables", "iptables",
// "none") and why, for `berth info`.
std::string probe_description(const std::string& driver);

// The backends, for open_firewall and the tests.
Result<FirewallPtr> open_nftables();
Result<FirewallPtr> open_iptables();
// Why the backend cannot run here (empty: it can).
std::string nftables_missing();
std::string iptables_missing();

}  // namespace berth::firewall
