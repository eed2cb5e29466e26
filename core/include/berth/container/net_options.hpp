#pragma once
// A container's network flags (run/create --network, -p, --dns, ...), stored with its record,
// and what the network commands (`network connect/disconnect`, `port`) ask of containers.
// Owned by the network integration (core/src/container/net_glue.cpp).
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "berth/sdk/result.hpp"

namespace berth::engine {
class Engine;
}

namespace berth::container {

struct NetOptions {
  // The networks of bridge mode (CreateOptions::network == "bridge"), in order: "NAME" or
  // "NAME:ip=...,ip6=...,mac=...,alias=...,interface_name=..."; "bridge" names the default
  // network.
  // Empty: the default network, unless `disconnected`.
  std::vector<std::string> networks;
  // Bridge mode with every network disconnected (`network disconnect` of the last one): the
  // container's namespace has loopback only, at every start, until a `network connect`.
  bool disconnected = false;
  std::vector<std::string> publish;  // -p specs as given
  bool publish_all = false;          // -P
  std::vector<std::string> expose;   // --expose, and the image's ExposedPorts with -P
  std::vector<std::string> dns;
  std::vector<std::string> dns_search;
  std::vector<std::string> dns_options;
  std::vector<std::string> add_hosts;  // --add-host name:ip
  std::vector<std::string> aliases;    // --network-alias (every network)
  std::string ip;                      // --ip (first network)
  std::string ip6;                     // --ip6 (first network)
  std::string mac;                     // --mac-address (first network)
  bool no_hosts = false;               // --no-hosts
};
void to_json(nlohmann::json& j, const NetOptions& o);
void from_json(const nlohmann::json& j, NetOptions& o);

// Podman's ps rendering of a `ps --format json` row's Ports: "0.0.0.0:8080->80/tcp, ...".
std::string format_ports(const nlohmann::json& ports);

struct PublishedPort {
  std::string host_ip;  // "0.0.0.0" when all addresses
  uint16_t host_port = 0;
  uint16_t container_port = 0;
  std::string protocol;  // "tcp", "udp", "sctp"
};
// The ports of a running container as forwarded, one entry per port of a range (empty when it
// does not run or publishes nothing).
Result<std::vector<PublishedPort>> published_ports(engine::Engine& eng,
                                                   const std::string& name_or_id);

struct NetworkConnectOptions {
  std::vector<std::string> aliases;
  std::string ip;
  std::string ip6;
  std::string mac;
};
// `network connect`: adds the network to a bridge-mode container's record and, when it runs,
// plumbs it now (a new ethN).
Result<void> network_connect(engine::Engine& eng, const std::string& network,
                             const std::string& name_or_id, const NetworkConnectOptions& o);
// `network disconnect`: the reverse. `force`: a container not on the network is no error.
Result<void> network_disconnect(engine::Engine& eng, const std::string& network,
                                const std::string& name_or_id, bool force);
// Lets `network rm`/`prune` see (and with -f remove) containers configured on a network that
// hold no lease because they do not run.
void register_network_users(engine::Engine& eng);

}  // namespace berth::container
