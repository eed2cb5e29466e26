#include "netlink.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_link.h>
#include <linux/rtnetlink.h>
#include <linux/veth.h>
#include <sched.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "berth/sdk/unique_fd.hpp"

namespace berth::netlink {

namespace {

std::string format_mac(const uint8_t* b, size_t n) {
  std::string out;
  char buf[4];
  for (size_t i = 0; i < n; ++i) {
    std::snprintf(buf, sizeof buf, i == 0 ? "%02x" : ":%02x", b[i]);
    out += buf;
  }
  return out;
}

bool parse_mac(const std::string& s, uint8_t out[6]) {
  unsigned v[6];
  if (std::sscanf(s.c_str(), "%x:%x:%x:%x:%x:%x", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5]) != 6) {
    return false;
  }
  for (int i = 0; i < 6; ++i) {
    out[i] = static_cast<uint8_t>(v[i]);
  }
  return true;
}

int link_attr_cb(const nlattr* attr, void* data) {
  auto* info = static_cast<LinkInfo*>(data);
  switch (mnl_attr_get_type(attr)) {
    case IFLA_ADDRESS:
      info->mac = format_mac(static_cast<const uint8_t*>(mnl_attr_get_payload(attr)),
                             mnl_attr_get_payload_len(attr));
      break;
    case IFLA_MASTER:
      info->master = static_cast<int>(mnl_attr_get_u32(attr));
      break;
    default:
      break;
  }
  return MNL_CB_OK;
}

int link_cb(const nlmsghdr* nlh, void* data) {
  auto* info = static_cast<LinkInfo*>(data);
  auto* ifm = static_cast<const ifinfomsg*>(mnl_nlmsg_get_payload(nlh));
  info->index = ifm->ifi_index;
  mnl_attr_parse(nlh, sizeof(*ifm), link_attr_cb, info);
  return MNL_CB_OK;
}

ifinfomsg* put_link_header(nlmsghdr* nlh, uint16_t type, uint16_t flags) {
  nlh->nlmsg_type = type;
  nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | flags;
  auto* ifm = static_cast<ifinfomsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(ifinfomsg)));
  ifm->ifi_family = AF_UNSPEC;
  return ifm;
}

}  // namespace

size_t Addr::size() const {
  return family == AF_INET6 ? 16 : 4;
}

Result<Addr> Addr::parse(const std::string& text) {
  Addr a;
  a.family = text.find(':') != std::string::npos ? AF_INET6 : AF_INET;
  if (inet_pton(a.family, text.c_str(), a.bytes) != 1) {
    return fail(Errc::InvalidArgument, "invalid IP address " + text);
  }
  return a;
}

std::string Addr::str() const {
  char buf[INET6_ADDRSTRLEN] = {};
  inet_ntop(family, bytes, buf, sizeof buf);
  return buf;
}

Result<Socket> Socket::open() {
  Socket s;
  s.nl_.reset(mnl_socket_open2(NETLINK_ROUTE, SOCK_CLOEXEC));
  if (!s.nl_) {
    return fail_errno("open netlink socket", "");
  }
  if (mnl_socket_bind(s.nl_.get(), 0, MNL_SOCKET_AUTOPID) < 0) {
    return fail_errno("bind netlink socket", "");
  }
  s.portid_ = mnl_socket_get_portid(s.nl_.get());
  return s;
}

Result<Socket> Socket::open_in(int netns_fd, const std::string& what) {
  UniqueFd orig(::open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC));
  if (!orig) {
    return fail_errno("open", "/proc/thread-self/ns/net");
  }
  if (::setns(netns_fd, CLONE_NEWNET) != 0) {
    return fail_errno("enter network namespace", what);
  }
  auto s = open();
  if (::setns(orig.get(), CLONE_NEWNET) != 0) {
    std::perror("berth net-bridge: setns back to the original network namespace");
    std::abort();
  }
  return s;
}

Result<void> Socket::talk(nlmsghdr* nlh, mnl_cb_t cb, void* data) {
  nlh->nlmsg_seq = seq_++;
  if (mnl_socket_sendto(nl_.get(), nlh, nlh->nlmsg_len) < 0) {
    return fail_errno("send netlink message", "");
  }
  std::vector<char> buf(MNL_SOCKET_BUFFER_SIZE);
  for (;;) {
    ssize_t n = mnl_socket_recvfrom(nl_.get(), buf.data(), buf.size());
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      return fail_errno("receive netlink reply", "");
    }
    int r = mnl_cb_run(buf.data(), static_cast<size_t>(n), nlh->nlmsg_seq, portid_, cb, data);
    if (r == MNL_CB_ERROR) {
      return fail_errno("netlink", "");
    }
    if (r == MNL_CB_STOP) {
      return {};
    }
  }
}

namespace {
struct RouteDump {
  int family = 0;
  std::vector<Route>* out = nullptr;
  // The message being read.
  Route route;
  uint32_t table = 0;
};

int route_attr_cb(const nlattr* attr, void* data) {
  auto* dump = static_cast<RouteDump*>(data);
  switch (mnl_attr_get_type(attr)) {
    case RTA_TABLE:
      dump->table = mnl_attr_get_u32(attr);
      break;
    case RTA_OIF:
      dump->route.oif = static_cast<int>(mnl_attr_get_u32(attr));
      break;
    case RTA_DST:
      if (mnl_attr_get_payload_len(attr) == dump->route.dst.size()) {
        std::memcpy(dump->route.dst.bytes, mnl_attr_get_payload(attr), dump->route.dst.size());
      }
      break;
    default:
      break;
  }
  return MNL_CB_OK;
}

int route_cb(const nlmsghdr* nlh, void* data) {
  auto* dump = static_cast<RouteDump*>(data);
  auto* rtm = static_cast<const rtmsg*>(mnl_nlmsg_get_payload(nlh));
  if (nlh->nlmsg_type != RTM_NEWROUTE || rtm->rtm_family != dump->family ||
      rtm->rtm_type != RTN_UNICAST) {
    return MNL_CB_OK;
  }
  dump->route = Route{};
  dump->route.dst.family = dump->family;
  dump->route.prefix = rtm->rtm_dst_len;
  dump->table = rtm->rtm_table;
  mnl_attr_parse(nlh, sizeof(*rtm), route_attr_cb, dump);
  if (dump->table == RT_TABLE_MAIN) {
    dump->out->push_back(dump->route);
  }
  return MNL_CB_OK;
}
}  // namespace

Result<std::vector<Route>> Socket::routes(int family) {
  std::vector<char> buf(MNL_SOCKET_BUFFER_SIZE);
  nlmsghdr* nlh = mnl_nlmsg_put_header(buf.data());
  nlh->nlmsg_type = RTM_GETROUTE;
  nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
  auto* rtm = static_cast<rtmsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(rtmsg)));
  rtm->rtm_family = static_cast<unsigned char>(family);
  std::vector<Route> out;
  RouteDump dump;
  dump.family = family;
  dump.out = &out;
  BERTH_TRYV(talk(nlh, route_cb, &dump));
  return out;
}

Result<LinkInfo> Socket::link(const std::string& name) {
  std::vector<char> buf(MNL_SOCKET_BUFFER_SIZE);
  nlmsghdr* nlh = mnl_nlmsg_put_header(buf.data());
  put_link_header(nlh, RTM_GETLINK, 0);
  mnl_attr_put_strz(nlh, IFLA_IFNAME, name.c_str());
  LinkInfo info;
  auto r = talk(nlh, link_cb, &info);
  if (!r) {
    if (r.error().sys_errno() == ENODEV) {
      return fail(Errc::NotFound, "link " + name + " not found");
    }
    return fail(std::move(r).error().wrap("get link " + name));
  }
  if (info.index == 0) {
    return fail(Errc::NotFound, "link " + name + " not found");
  }
  return info;
}

Result<void> Socket::create_bridge(const std::string& name, uint32_t mtu) {
  std::vector<char> buf(MNL_SOCKET_BUFFER_SIZE);
  nlmsghdr* nlh = mnl_nlmsg_put_header(buf.data());
  put_link_header(nlh, RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL);
  mnl_attr_put_strz(nlh, IFLA_IFNAME, name.c_str());
  if (mtu != 0) {
    mnl_attr_put_u32(nlh, IFLA_MTU, mtu);
  }
  nlattr* info = mnl_attr_nest_start(nlh, IFLA_LINKINFO);
  mnl_attr_put_strz(nlh, IFLA_INFO_KIND, "bridge");
  mnl_attr_nest_end(nlh, info);
  auto r = talk(nlh);
  if (!r && r.error().sys_errno() != EEXIST) {
    return fail(std::move(r).error().wrap("create bridge " + name));
  }
  return {};
}

Result<void> Socket::create_veth(const std::string& host, const std::string& peer,
                                 int peer_netns_fd, uint32_t mtu, const std::string& peer_mac) {
  std::vector<char> buf(MNL_SOCKET_BUFFER_SIZE);
  nlmsghdr* nlh = mnl_nlmsg_put_header(buf.data());
  put_link_header(nlh, RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL);
  mnl_attr_put_strz(nlh, IFLA_IFNAME, host.c_str());
  if (mtu != 0) {
    mnl_attr_put_u32(nlh, IFLA_MTU, mtu);
  }
  nlattr* info = mnl_attr_nest_start(nlh, IFLA_LINKINFO);
  mnl_attr_put_strz(nlh, IFLA_INFO_KIND, "veth");
  nlattr* data = mnl_attr_nest_start(nlh, IFLA_INFO_DATA);
  nlattr* peer_attr = mnl_attr_nest_start(nlh, VETH_INFO_PEER);
  auto* pifm = static_cast<ifinfomsg*>(mnl_nlmsg_get_payload_tail(nlh));
  std::memset(pifm, 0, sizeof(*pifm));
  pifm->ifi_family = AF_UNSPEC;
  nlh->nlmsg_len += MNL_ALIGN(sizeof(ifinfomsg));
  mnl_attr_put_strz(nlh, IFLA_IFNAME, peer.c_str());
  mnl_attr_put_u32(nlh, IFLA_NET_NS_FD, static_cast<uint32_t>(peer_netns_fd));
  if (mtu != 0) {
    mnl_attr_put_u32(nlh, IFLA_MTU, mtu);
  }
  uint8_t mac[6];
  if (!peer_mac.empty()) {
    if (!parse_mac(peer_mac, mac)) {
      return fail(Errc::InvalidArgument, "invalid MAC address " + peer_mac);
    }
    mnl_attr_put(nlh, IFLA_ADDRESS, sizeof mac, mac);
  }
  mnl_attr_nest_end(nlh, peer_attr);
  mnl_attr_nest_end(nlh, data);
  mnl_attr_nest_end(nlh, info);
  auto r = talk(nlh);
  if (!r) {
    return fail(std::move(r).error().wrap("create veth pair " + host + "/" + peer));
  }
  return {};
}

Result<void> Socket::set_up(int index, int master) {
  std::vector<char> buf(MNL_SOCKET_BUFFER_SIZE);
  nlmsghdr* nlh = mnl_nlmsg_put_header(buf.data());
  ifinfomsg* ifm = put_link_header(nlh, RTM_NEWLINK, 0);
  ifm->ifi_index = index;
  ifm->ifi_flags = IFF_UP;
  ifm->ifi_change = IFF_UP;
  if (master > 0) {
    mnl_attr_put_u32(nlh, IFLA_MASTER, static_cast<uint32_t>(master));
  }
  auto r = talk(nlh);
  if (!r) {
    return fail(std::move(r).error().wrap("set link " + std::to_string(index) + " up"));
  }
  return {};
}

Result<void> Socket::add_address(int index, const Addr& ip, int prefix) {
  std::vector<char> buf(MNL_SOCKET_BUFFER_SIZE);
  nlmsghdr* nlh = mnl_nlmsg_put_header(buf.data());
  nlh->nlmsg_type = RTM_NEWADDR;
  nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL;
  auto* ifa = static_cast<ifaddrmsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(ifaddrmsg)));
  ifa->ifa_family = static_cast<uint8_t>(ip.family);
  ifa->ifa_prefixlen = static_cast<uint8_t>(prefix);
  ifa->ifa_index = static_cast<uint32_t>(index);
  ifa->ifa_scope = RT_SCOPE_UNIVERSE;
  mnl_attr_put(nlh, IFA_LOCAL, ip.size(), ip.bytes);
  mnl_attr_put(nlh, IFA_ADDRESS, ip.size(), ip.bytes);
  if (ip.family == AF_INET && prefix < 31) {
    uint32_t host = 0;
    std::memcpy(&host, ip.bytes, 4);
    host = ntohl(host);
    uint32_t bcast = htonl(host | ~(prefix == 0 ? 0 : ~uint32_t{0} << (32 - prefix)));
    mnl_attr_put_u32(nlh, IFA_BROADCAST, bcast);
  }
  if (ip.family == AF_INET6) {
    ifa->ifa_flags = IFA_F_NODAD;
    mnl_attr_put_u32(nlh, IFA_FLAGS, IFA_F_NODAD);
  }
  auto r = talk(nlh);
  if (!r && r.error().sys_errno() != EEXIST) {
    return fail(
        std::move(r).error().wrap("add address " + ip.str() + "/" + std::to_string(prefix)));
  }
  return {};
}

Result<void> Socket::add_default_route(const Addr& gateway, int index) {
  std::vector<char> buf(MNL_SOCKET_BUFFER_SIZE);
  nlmsghdr* nlh = mnl_nlmsg_put_header(buf.data());
  nlh->nlmsg_type = RTM_NEWROUTE;
  nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL;
  auto* rtm = static_cast<rtmsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(rtmsg)));
  rtm->rtm_family = static_cast<uint8_t>(gateway.family);
  rtm->rtm_dst_len = 0;
  rtm->rtm_table = RT_TABLE_MAIN;
  rtm->rtm_protocol = RTPROT_BOOT;
  rtm->rtm_scope = RT_SCOPE_UNIVERSE;
  rtm->rtm_type = RTN_UNICAST;
  mnl_attr_put(nlh, RTA_GATEWAY, gateway.size(), gateway.bytes);
  mnl_attr_put_u32(nlh, RTA_OIF, static_cast<uint32_t>(index));
  auto r = talk(nlh);
  if (!r && r.error().sys_errno() != EEXIST) {
    return fail(std::move(r).error().wrap("add default route via " + gateway.str()));
  }
  return {};
}

namespace {
struct AddrDump {
  int index = 0;
  std::vector<std::pair<Addr, int>> out;  // address, prefix
};

int addr_cb(const nlmsghdr* nlh, void* data) {
  auto* dump = static_cast<AddrDump*>(data);
  auto* ifa = static_cast<const ifaddrmsg*>(mnl_nlmsg_get_payload(nlh));
  if (nlh->nlmsg_type != RTM_NEWADDR || static_cast<int>(ifa->ifa_index) != dump->index ||
      ifa->ifa_scope != RT_SCOPE_UNIVERSE) {
    return MNL_CB_OK;
  }
  Addr a;
  a.family = ifa->ifa_family;
  // IPv4: IFA_LOCAL is the address (IFA_ADDRESS the peer's); IPv6 has IFA_ADDRESS only.
  mnl_attr_parse(
      nlh, sizeof(*ifa),
      [](const nlattr* at, void* d) -> int {
        auto* addr = static_cast<Addr*>(d);
        const auto type = mnl_attr_get_type(at);
        if ((type == IFA_LOCAL || (type == IFA_ADDRESS && addr->family == AF_INET6)) &&
            mnl_attr_get_payload_len(at) == addr->size()) {
          std::memcpy(addr->bytes, mnl_attr_get_payload(at), addr->size());
        }
        return MNL_CB_OK;
      },
      &a);
  dump->out.emplace_back(a, ifa->ifa_prefixlen);
  return MNL_CB_OK;
}
}  // namespace

Result<void> Socket::flush_addresses(const std::string& name) {
  auto link_info = link(name);
  if (!link_info) {
    return link_info.error().code() == Errc::NotFound ? Result<void>()
                                                      : fail(std::move(link_info).error());
  }
  std::vector<char> buf(MNL_SOCKET_BUFFER_SIZE);
  nlmsghdr* nlh = mnl_nlmsg_put_header(buf.data());
  nlh->nlmsg_type = RTM_GETADDR;
  nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
  auto* req = static_cast<ifaddrmsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(ifaddrmsg)));
  req->ifa_family = AF_UNSPEC;
  AddrDump dump;
  dump.index = link_info->index;
  BERTH_TRYV(talk(nlh, addr_cb, &dump));
  for (const auto& [addr, prefix] : dump.out) {
    nlh = mnl_nlmsg_put_header(buf.data());
    nlh->nlmsg_type = RTM_DELADDR;
    nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
    auto* ifa = static_cast<ifaddrmsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(ifaddrmsg)));
    ifa->ifa_family = static_cast<uint8_t>(addr.family);
    ifa->ifa_prefixlen = static_cast<uint8_t>(prefix);
    ifa->ifa_index = static_cast<uint32_t>(link_info->index);
    mnl_attr_put(nlh, IFA_LOCAL, addr.size(), addr.bytes);
    auto r = talk(nlh);
    if (!r && r.error().sys_errno() != EADDRNOTAVAIL) {
      return fail(std::move(r).error().wrap("delete address " + addr.str() + " of " + name));
    }
  }
  return {};
}

Result<void> Socket::delete_link(const std::string& name) {
  std::vector<char> buf(MNL_SOCKET_BUFFER_SIZE);
  nlmsghdr* nlh = mnl_nlmsg_put_header(buf.data());
  put_link_header(nlh, RTM_DELLINK, 0);
  mnl_attr_put_strz(nlh, IFLA_IFNAME, name.c_str());
  auto r = talk(nlh);
  if (!r && r.error().sys_errno() != ENODEV && r.error().sys_errno() != ENOENT) {
    return fail(std::move(r).error().wrap("delete link " + name));
  }
  return {};
}

}  // namespace berth::netlink
