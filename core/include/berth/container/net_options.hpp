#pragma once
// A container's network flags (run/create --network, -p, --dns, ...), stored with its record.
// Owned by the network integration (core/src/container/net_glue.cpp).
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace berth::container {

struct NetOptions {
  // --network values beyond the mode in CreateOptions::network ("bridge" networks by name;
  // "name:alias=a,ip=..." forms parsed into these).
  std::vector<std::string> networks;
  std::vector<std::string> publish;  // -p specs as given
  bool publish_all = false;          // -P
  std::vector<std::string> expose;   // --expose
  std::vector<std::string> dns;
  std::vector<std::string> dns_search;
  std::vector<std::string> dns_options;
  std::vector<std::string> add_hosts;  // --add-host name:ip
  std::vector<std::string> aliases;    // --network-alias
  std::string ip;                      // --ip
  std::string mac;                     // --mac-address
  bool no_hosts = false;               // --no-hosts
};
void to_json(nlohmann::json& j, const NetOptions& o);
void from_json(const nlohmann::json& j, NetOptions& o);

}  // namespace berth::container
