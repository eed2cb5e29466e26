#pragma once
// The DNS responder of a network (aardvark-dns's role): a process of its own, forked from the
// plugin (no exec), answering A and AAAA queries for the names and aliases of the containers on
// the network from its lease file (<run_root>/networks/<network>.json, re-read when it changes) and
// forwarding every other query to the host's resolvers. One per network, started by the first
// setup, stopped when the network's bridge goes.
#include <string>

#include "berth/sdk/result.hpp"

namespace berth::dns {

struct ResponderConfig {
  std::string network;
  std::string listen_ip;  // the bridge's gateway address
  uint16_t port = 53;
  std::string lease_file;
  std::string pid_file;
};

// Starts the responder unless the one recorded in pid_file runs. The socket is bound before the
// fork, so a port already taken is reported here.
Result<void> ensure_running(const ResponderConfig& cfg);
// Stops it (idempotent).
Result<void> stop(const std::string& pid_file);

}  // namespace berth::dns
