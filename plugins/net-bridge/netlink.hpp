#pragma once
// rtnetlink over libmnl: links, addresses and routes, in the current network namespace or in
// another one (a socket opened inside it).
#include <libmnl/libmnl.h>

#include <cstdint>
#include <memory>
#include <string>

#include "berth/sdk/result.hpp"

namespace berth::netlink {

struct LinkInfo {
  int index = 0;
  std::string mac;
  int master = 0;
};

class Socket {
 public:
  // A socket in the current network namespace.
  static Result<Socket> open();
  // A socket in the namespace of `netns_fd`; the calling thread returns to its own namespace.
  static Result<Socket> open_in(int netns_fd, const std::string& what);

  // NotFound when there is no such link.
  Result<LinkInfo> link(const std::string& name);
  Result<void> create_bridge(const std::string& name, uint32_t mtu);
  // A veth pair: `host` here, `peer` created directly in the namespace of `peer_netns_fd`.
  Result<void> create_veth(const std::string& host, const std::string& peer, int peer_netns_fd,
                           uint32_t mtu, const std::string& peer_mac);
  // Brings the link up (and sets its master when master > 0).
  Result<void> set_up(int index, int master = 0);
  // EEXIST is success.
  Result<void> add_address(int index, uint32_t ip, int prefix);
  Result<void> add_default_route(uint32_t gateway, int index);
  // A missing link is success.
  Result<void> delete_link(const std::string& name);

 private:
  struct Closer {
    void operator()(mnl_socket* s) const { mnl_socket_close(s); }
  };
  // Sends the message and waits for its ack; `cb` sees every reply message.
  Result<void> talk(nlmsghdr* nlh, mnl_cb_t cb = nullptr, void* data = nullptr);
  std::unique_ptr<mnl_socket, Closer> nl_;
  uint32_t seq_ = 1;
  uint32_t portid_ = 0;
};

}  // namespace berth::netlink
