#pragma once
// Shared inside berth_network only.
#include "berth/network/network.hpp"

namespace berth::network {

// Binds each host port of `m` once to prove it free. Conflict names the port.
Result<void> check_host_port_free(const sdk::PortMapping& m);

// containers.conf's [network] firewall_driver as written ("" when no file sets it).
Result<std::string> firewall_driver(const config::ContainersConfig& cfg);

}  // namespace berth::network
