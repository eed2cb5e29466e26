#pragma once
// Published TCP ports of slirp4netns containers without slirp's user-mode TCP stack: a detached
// process (forked from the plugin, no exec) listens on each host port and relays every
// connection to 127.0.0.1:<container port> inside the container's network namespace, with
// splice(2) through a pipe, as Podman's default port handler (rootlesskit's builtin driver) does.
// UDP ports stay with slirp4netns's add_hostfwd.
#include <sys/types.h>

#include <string>
#include <vector>

#include "berth/sdk/network.hpp"
#include "berth/sdk/result.hpp"

namespace berth::slirp {

// Binds every host port first (a taken port is reported here, nothing is left), then starts the
// relay. Returns its pid (the leader of a process group of its own: one child per connection).
Result<pid_t> start_port_proxy(const std::string& netns_path,
                               const std::vector<sdk::PortMapping>& tcp_ports);
// Stops the relay of `pid` and its connections (idempotent; a pid that is not a relay is left
// alone).
Result<void> stop_port_proxy(pid_t pid);

}  // namespace berth::slirp
