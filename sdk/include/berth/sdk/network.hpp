#pragma once
// berth.network.v1: plumbs a container's network namespace. The core owns network configs and
// IPAM; a driver turns them into interfaces, routes and forwarding rules. Modelled on netavark.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "berth/sdk/plugin.hpp"
#include "berth/sdk/result.hpp"

namespace berth::sdk {

struct Subnet {
  std::string subnet;   // CIDR "10.88.0.0/16"
  std::string gateway;  // "10.88.0.1"
};

struct NetworkConfig {
  std::string name;
  std::string id;
  std::string driver;     // "bridge", "slirp"
  std::string interface;  // host interface, e.g. "berth0"
  std::vector<Subnet> subnets;
  bool internal = false;
  bool ipv6 = false;
  bool dns_enabled = true;
  uint32_t mtu = 0;
  std::string options_json;  // driver options
};

struct PortMapping {
  std::string host_ip;
  uint16_t host_port = 0;
  uint16_t container_port = 0;
  uint16_t range = 1;
  std::string protocol = "tcp";
};

struct Attachment {
  NetworkConfig network;
  std::vector<std::string> addresses;  // CIDRs assigned by the core's IPAM
  std::string mac;
  std::string interface_name = "eth0";
  std::vector<std::string> aliases;
};

struct SetupRequest {
  std::string container_id;
  std::string container_name;
  std::string netns_path;
  std::vector<Attachment> attachments;
  std::vector<PortMapping> ports;
};

struct InterfaceStatus {
  std::string name;
  std::string mac;
  std::vector<std::string> addresses;
  std::string gateway;
};

struct SetupStatus {
  std::vector<InterfaceStatus> interfaces;
  std::vector<std::string> dns_servers;
};

class BERTH_EXPORT NetworkDriver {
 public:
  static constexpr const char* kKind = BERTH_KIND_network;
  virtual ~NetworkDriver() = default;

  virtual std::string name() const = 0;
  // Checks and completes a network config (defaults, interface name); rejects bad ones.
  virtual Result<NetworkConfig> validate(const NetworkConfig& config) = 0;
  virtual Result<SetupStatus> setup(const SetupRequest& req) = 0;
  // Idempotent: tearing down what is not there succeeds.
  virtual Result<void> teardown(const SetupRequest& req) = 0;
  virtual std::vector<std::pair<std::string, std::string>> info() { return {}; }
};
using NetworkDriverPtr = std::unique_ptr<NetworkDriver>;
using NetworkFactory = Result<NetworkDriverPtr>(const PluginContext&);

}  // namespace berth::sdk
