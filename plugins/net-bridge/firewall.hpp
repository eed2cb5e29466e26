#pragma once
// NAT, forwarding and published ports with nftables (libnftables, no `nft` process), in the
// table `inet berth`:
//   base chains prerouting/output (nat) jump to `ports` for local destinations; postrouting (nat)
//   and forward (filter) jump to one chain per network (`nw-<hash>-post`, `nw-<hash>-fwd`);
//   `ports` jumps to one chain per container (`ct-<hash>-dnat`).
// Every jump carries a comment naming its chain so teardown deletes exactly those rules; when no
// per-network chain is left the table goes too.
//
// Published ports reached from the host itself (127.0.0.1:<port>) are DNAT'ed in the output
// hook; the bridge gets route_localnet=1 and the network masquerades 127.0.0.0/8 sources, as
// netavark does, so no userspace proxy runs.
#include <string>
#include <vector>

#include "berth/sdk/network.hpp"
#include "berth/sdk/result.hpp"

struct nft_ctx;

namespace berth::firewall {

struct NetworkRules {
  std::string key;  // "nw-<hash>"
  std::string subnet;
  bool internal = false;
};

struct ContainerRules {
  std::string key;  // "ct-<hash>"
  std::string container_ip;
  std::vector<sdk::PortMapping> ports;
};

class Firewall {
 public:
  // `lock_file` serialises berth processes changing the table.
  static Result<Firewall> open(const std::string& lock_file);
  ~Firewall();
  Firewall(Firewall&& o) noexcept;
  Firewall& operator=(Firewall&&) = delete;

  Result<void> add_network(const NetworkRules& n);
  Result<void> remove_network(const std::string& key);
  Result<void> add_container(const ContainerRules& c);
  Result<void> remove_container(const std::string& key);
  // Deletes the table when no network chain is left.
  Result<void> remove_table_if_unused();

 private:
  Firewall() = default;
  Result<std::string> run(const std::string& cmds, bool json = false);
  Result<void> ensure_table();
  Result<void> delete_jumps(const std::string& chain, const std::string& comment);
  Result<std::vector<std::string>> chains();
  ::nft_ctx* ctx_ = nullptr;
  int lock_fd_ = -1;
};

}  // namespace berth::firewall
