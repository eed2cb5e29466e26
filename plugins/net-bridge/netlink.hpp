#pragma once
// rtnetlink over libmnl: links, addresses and routes, in the current network namespace or in
// another one (a socket opened inside it).
#include <libmnl/libmnl.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "berth/sdk/result.hpp"

namespace berth::netlink {

// An IPv4 or IPv6 address in network byte order.
struct Addr {
  int family = 0;  // AF_INET, AF_INET6
  uint8_t bytes[16] = {};
  size_t size() const;
  // "10.88.0.1" or "fd00::1"; InvalidArgument names the text.
  static Result<Addr> parse(const std::string& text);
  std::string str() const;
};

struct LinkInfo {
  int index = 0;
  std::string mac;
  int master = 0;
};

// A route of the main table.
struct Route {
  Addr dst;        // the destination's network address (all zeros for a default route)
  int prefix = 0;  // its prefix length
  int oif = 0;     // the output interface's index (0: none, such as a multipath route)
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
  // EEXIST is success. IPv6 addresses are added without duplicate address detection (the
  // subnet is berth's own), so they are usable at once.
  Result<void> add_address(int index, const Addr& ip, int prefix);
  Result<void> add_default_route(const Addr& gateway, int index);
  // A missing link is success.
  Result<void> delete_link(const std::string& name);
  // Removes every global address of link `name` (its routes go with them); link-local ones
  // stay. A missing link is success.
  Result<void> flush_addresses(const std::string& name);
  // The unicast routes of the main table for `family` (AF_INET, AF_INET6), as `ip route`.
  Result<std::vector<Route>> routes(int family);

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
