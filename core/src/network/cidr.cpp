// IPv4 addresses and subnets, and picking a free subnet from the pools.
#include <arpa/inet.h>
#include <sys/random.h>

#include <cerrno>
#include <cstdio>
#include <fstream>
#include <sstream>

#include "berth/network/network.hpp"

namespace berth::network {

Result<uint32_t> parse_ipv4(std::string_view text) {
  in_addr a{};
  std::string s(text);
  if (inet_pton(AF_INET, s.c_str(), &a) != 1) {
    return fail(Errc::InvalidArgument, "invalid IPv4 address \"" + s + "\"");
  }
  return ntohl(a.s_addr);
}

std::string format_ipv4(uint32_t addr) {
  in_addr a{};
  a.s_addr = htonl(addr);
  char buf[INET_ADDRSTRLEN] = {};
  inet_ntop(AF_INET, &a, buf, sizeof buf);
  return buf;
}

namespace {

// "ADDR/PREFIX" for either family: Net has addr, prefix, mask() and str().
template <typename Net, typename ParseAddr>
Result<Net> parse_cidr(std::string_view cidr, const char* example, int max_prefix,
                       ParseAddr parse_addr) {
  std::string s(cidr);
  auto slash = s.find('/');
  if (slash == std::string::npos) {
    return fail(Errc::InvalidArgument,
                "invalid subnet \"" + s + "\": expected CIDR notation such as " + example);
  }
  auto ip = parse_addr(s.substr(0, slash));
  if (!ip) {
    return fail(Errc::InvalidArgument, "invalid subnet \"" + s + "\": " + ip.error().message());
  }
  std::string p = s.substr(slash + 1);
  int prefix = -1;
  if (!p.empty() && p.size() <= 3 && p.find_first_not_of("0123456789") == std::string::npos) {
    prefix = std::stoi(p);
  }
  if (prefix < 0 || prefix > max_prefix) {
    return fail(Errc::InvalidArgument, "invalid subnet \"" + s +
                                           "\": the prefix length must be 0 to " +
                                           std::to_string(max_prefix));
  }
  Net n;
  n.prefix = prefix;
  n.addr = *ip & n.mask();
  if (n.addr != *ip) {
    return fail(
        Errc::InvalidArgument,
        "invalid subnet \"" + s + "\": host bits are set (the network address is " + n.str() + ")");
  }
  return n;
}

}  // namespace

Result<Ipv4Net> Ipv4Net::parse(std::string_view cidr) {
  return parse_cidr<Ipv4Net>(cidr, "10.89.0.0/24", 32, parse_ipv4);
}

std::string Ipv4Net::str() const {
  return format_ipv4(addr) + "/" + std::to_string(prefix);
}

Result<Ipv4Net> pick_subnet(const std::vector<config::SubnetPool>& pools,
                            const std::vector<Ipv4Net>& used) {
  for (const auto& pool : pools) {
    auto base = Ipv4Net::parse(pool.base);
    if (!base || pool.size < base->prefix || pool.size > 30) {
      continue;  // a bad pool in containers.conf is skipped, as Podman does
    }
    uint64_t step = uint64_t{1} << (32 - pool.size);
    uint64_t end = uint64_t{base->addr} + (uint64_t{1} << (32 - base->prefix));
    for (uint64_t a = base->addr; a < end; a += step) {
      Ipv4Net cand{static_cast<uint32_t>(a), pool.size};
      bool clash = false;
      for (const auto& u : used) {
        if (cand.overlaps(u)) {
          clash = true;
          break;
        }
      }
      if (!clash) {
        return cand;
      }
    }
  }
  return fail(Errc::Conflict,
              "could not find a free subnet in default_subnet_pools: every subnet is used by a "
              "network or a host route (add pools in containers.conf or pass --subnet)");
}

std::vector<Ipv4Net> host_routes() {
  std::vector<Ipv4Net> out;
  std::ifstream f("/proc/net/route");
  std::string line;
  std::getline(f, line);  // header
  while (std::getline(f, line)) {
    std::istringstream ls(line);
    std::string iface;
    unsigned dest = 0;
    unsigned gw = 0;
    unsigned flags = 0;
    unsigned refcnt = 0;
    unsigned use = 0;
    unsigned metric = 0;
    unsigned mask = 0;
    ls >> iface >> std::hex >> dest >> gw >> flags >> std::dec >> refcnt >> use >> metric >>
        std::hex >> mask;
    if (!ls || mask == 0) {
      continue;
    }
    uint32_t m = ntohl(mask);
    Ipv4Net n;
    n.prefix = __builtin_popcount(m);
    n.addr = ntohl(dest) & n.mask();
    out.push_back(n);
  }
  return out;
}

Result<Uint128> parse_ipv6(std::string_view text) {
  in6_addr a{};
  std::string s(text);
  if (inet_pton(AF_INET6, s.c_str(), &a) != 1) {
    return fail(Errc::InvalidArgument, "invalid IPv6 address \"" + s + "\"");
  }
  Uint128 v = 0;
  for (uint8_t b : a.s6_addr) {
    v = v << 8 | b;
  }
  return v;
}

std::string format_ipv6(Uint128 addr) {
  in6_addr a{};
  for (int i = 15; i >= 0; --i) {
    a.s6_addr[i] = static_cast<uint8_t>(addr & 0xff);
    addr >>= 8;
  }
  char buf[INET6_ADDRSTRLEN] = {};
  inet_ntop(AF_INET6, &a, buf, sizeof buf);
  return buf;
}

Result<Ipv6Net> Ipv6Net::parse(std::string_view cidr) {
  return parse_cidr<Ipv6Net>(cidr, "fd10:2:3:4::/64", 128, parse_ipv6);
}

std::string Ipv6Net::str() const {
  return format_ipv6(addr) + "/" + std::to_string(prefix);
}

Result<Ipv6Net> pick_ula_subnet(const std::vector<Ipv6Net>& used) {
  for (int attempt = 0; attempt < 64; ++attempt) {
    uint8_t id[5];
    if (::getrandom(id, sizeof id, 0) != static_cast<ssize_t>(sizeof id)) {
      return fail_errno("getrandom", "IPv6 unique local subnet");
    }
    Uint128 a = 0xfd;
    for (uint8_t b : id) {
      a = a << 8 | b;
    }
    Ipv6Net cand{a << 80, 64};  // fdXX:XXXX:XXXX:0000::/64
    bool clash = false;
    for (const auto& u : used) {
      clash = clash || cand.overlaps(u);
    }
    if (!clash) {
      return cand;
    }
  }
  return fail(Errc::Conflict,
              "could not find a free IPv6 unique local subnet (pass --subnet with an IPv6 CIDR)");
}

std::vector<Ipv6Net> host_routes6() {
  std::vector<Ipv6Net> out;
  std::ifstream f("/proc/net/ipv6_route");
  std::string dest;
  std::string plen;
  std::string rest;
  while (f >> dest >> plen && std::getline(f, rest)) {
    if (dest.size() != 32) {
      continue;
    }
    int prefix = std::stoi(plen, nullptr, 16);
    Uint128 a = 0;
    for (char c : dest) {
      a = a << 4 | static_cast<Uint128>(std::stoi(std::string(1, c), nullptr, 16));
    }
    Ipv6Net n{a, prefix};
    n.addr &= n.mask();
    // The default route, link-local and multicast say nothing about which subnets are free.
    if (prefix == 0 || (a >> 118) == 0x3fa || (a >> 120) == 0xff) {
      continue;
    }
    out.push_back(n);
  }
  return out;
}

}  // namespace berth::network
