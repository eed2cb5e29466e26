// `-p`/`--publish` and `-P`/`--publish-all`.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <charconv>
#include <functional>

#include "berth/network/network.hpp"
#include "berth/sdk/unique_fd.hpp"

namespace berth::network {

namespace {

Result<std::pair<uint16_t, uint16_t>> parse_range(const std::string& text, const std::string& spec,
                                                  const char* what) {
  auto parse_port = [&](const std::string& s) -> Result<uint16_t> {
    unsigned v = 0;
    auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (s.empty() || ec != std::errc() || ptr != s.data() + s.size() || v == 0 || v > 65535) {
      return fail(Errc::InvalidArgument, "invalid " + std::string(what) + " \"" + s +
                                             "\" in publish spec \"" + spec +
                                             "\" (ports are 1 to 65535)");
    }
    return static_cast<uint16_t>(v);
  };
  auto dash = text.find('-');
  if (dash == std::string::npos) {
    BERTH_TRY(auto p, parse_port(text));
    return std::pair{p, p};
  }
  BERTH_TRY(auto a, parse_port(text.substr(0, dash)));
  BERTH_TRY(auto b, parse_port(text.substr(dash + 1)));
  if (b < a) {
    return fail(Errc::InvalidArgument, "invalid " + std::string(what) + " range \"" + text +
                                           "\" in publish spec \"" + spec + "\": end before start");
  }
  return std::pair{a, b};
}

int socket_type(const std::string& proto) {
  return proto == "udp" ? SOCK_DGRAM : SOCK_STREAM;
}

// Binds (ip, port) to see whether it is free; port 0 asks the kernel for a free one, which is
// returned.
Result<uint16_t> try_bind(const std::string& host_ip, uint16_t port, const std::string& proto) {
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(port);
  sa.sin_addr.s_addr = htonl(INADDR_ANY);
  if (!host_ip.empty() && inet_pton(AF_INET, host_ip.c_str(), &sa.sin_addr) != 1) {
    return fail(Errc::InvalidArgument, "invalid host IP " + host_ip);
  }
  UniqueFd s(::socket(AF_INET, socket_type(proto) | SOCK_CLOEXEC, 0));
  if (!s) {
    return fail_errno("socket", "");
  }
  if (::bind(s.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
    return fail_errno(
        "bind", (host_ip.empty() ? "0.0.0.0" : host_ip) + ":" + std::to_string(port) + "/" + proto);
  }
  socklen_t len = sizeof sa;
  if (::getsockname(s.get(), reinterpret_cast<sockaddr*>(&sa), &len) != 0) {
    return fail_errno("getsockname", "");
  }
  return ntohs(sa.sin_port);
}

// A free run of `count` host ports.
Result<uint16_t> free_ports(const std::string& host_ip, uint16_t count, const std::string& proto) {
  for (int attempt = 0; attempt < 32; ++attempt) {
    BERTH_TRY(uint16_t p, try_bind(host_ip, 0, proto));
    bool ok = uint32_t{p} + count - 1 <= 65535;
    for (uint16_t i = 1; ok && i < count; ++i) {
      ok = try_bind(host_ip, static_cast<uint16_t>(p + i), proto).has_value();
    }
    if (ok) {
      return p;
    }
  }
  return fail(Errc::Unavailable,
              "could not find " + std::to_string(count) + " free consecutive host ports");
}

}  // namespace

Result<std::vector<sdk::PortMapping>> parse_publish(const std::string& spec, bool pick_free) {
  std::string s = spec;
  std::string proto = "tcp";
  if (auto slash = s.rfind('/'); slash != std::string::npos) {
    proto = s.substr(slash + 1);
    s = s.substr(0, slash);
  }
  std::vector<std::string> protos;
  for (size_t start = 0;;) {
    auto comma = proto.find(',', start);
    protos.push_back(proto.substr(start, comma - start));
    if (comma == std::string::npos) {
      break;
    }
    start = comma + 1;
  }
  for (const auto& p : protos) {
    if (p != "tcp" && p != "udp" && p != "sctp") {
      return fail(Errc::InvalidArgument, "invalid protocol \"" + p + "\" in publish spec \"" +
                                             spec + "\" (use tcp, udp or sctp)");
    }
  }
  std::string host_ip;
  if (!s.empty() && s[0] == '[') {
    auto close = s.find(']');
    if (close == std::string::npos || close + 1 >= s.size() || s[close + 1] != ':') {
      return fail(Errc::InvalidArgument, "invalid publish spec \"" + spec + "\"");
    }
    host_ip = s.substr(1, close - 1);
    s = s.substr(close + 2);
    return fail(Errc::NotSupported, "publish spec \"" + spec +
                                        "\": IPv6 host addresses are not supported by berth yet");
  }
  std::vector<std::string> parts;
  for (size_t start = 0;;) {
    auto colon = s.find(':', start);
    parts.push_back(s.substr(start, colon - start));
    if (colon == std::string::npos) {
      break;
    }
    start = colon + 1;
  }
  std::string host_part;
  std::string ctr_part;
  if (parts.size() == 1) {
    ctr_part = parts[0];
  } else if (parts.size() == 2) {
    host_part = parts[0];
    ctr_part = parts[1];
  } else if (parts.size() == 3) {
    host_ip = parts[0];
    host_part = parts[1];
    ctr_part = parts[2];
  } else {
    return fail(Errc::InvalidArgument, "invalid publish spec \"" + spec +
                                           "\" (expected [[ip:][hostPort]:]containerPort[/proto])");
  }
  if (!host_ip.empty()) {
    in_addr a{};
    if (inet_pton(AF_INET, host_ip.c_str(), &a) != 1) {
      return fail(Errc::InvalidArgument,
                  "invalid host IP \"" + host_ip + "\" in publish spec \"" + spec + "\"");
    }
  }
  BERTH_TRY(auto ctr, parse_range(ctr_part, spec, "container port"));
  uint16_t count = static_cast<uint16_t>(ctr.second - ctr.first + 1);
  std::vector<sdk::PortMapping> out;
  for (const auto& p : protos) {
    sdk::PortMapping m;
    m.host_ip = host_ip;
    m.container_port = ctr.first;
    m.range = count;
    m.protocol = p;
    if (host_part.empty()) {
      if (!pick_free) {
        out.push_back(m);
        continue;
      }
      BERTH_TRY(m.host_port, free_ports(host_ip, count, p == "udp" ? "udp" : "tcp"));
    } else {
      BERTH_TRY(auto host, parse_range(host_part, spec, "host port"));
      if (host.second - host.first + 1 != count) {
        return fail(Errc::InvalidArgument, "publish spec \"" + spec +
                                               "\": the host and container port ranges must be "
                                               "the same size");
      }
      m.host_port = host.first;
    }
    out.push_back(m);
  }
  return out;
}

Result<std::vector<sdk::PortMapping>> publish_all_ports(const std::vector<std::string>& exposed) {
  std::vector<sdk::PortMapping> out;
  for (const auto& e : exposed) {
    BERTH_TRY(auto ms, parse_publish(e, false));  // no host part: picked by pick_host_ports()
    out.insert(out.end(), ms.begin(), ms.end());
  }
  return out;
}

Result<void> pick_host_ports(std::vector<sdk::PortMapping>& ports,
                             const std::function<bool(const sdk::PortMapping&)>& taken) {
  for (size_t i = 0; i < ports.size(); ++i) {
    auto& m = ports[i];
    if (m.host_port != 0) {
      continue;
    }
    auto clashes = [&](const sdk::PortMapping& c) {
      for (size_t j = 0; j < ports.size(); ++j) {
        if (j != i && ports[j].host_port != 0 && overlaps(ports[j], c)) {
          return true;
        }
      }
      return taken(c);
    };
    for (int attempt = 0;; ++attempt) {
      sdk::PortMapping c = m;
      BERTH_TRY(c.host_port, free_ports(m.host_ip, m.range, m.protocol == "udp" ? "udp" : "tcp"));
      if (!clashes(c)) {
        m.host_port = c.host_port;
        break;
      }
      if (attempt == 64) {
        return fail(Errc::Unavailable, "could not find a free host port for container port " +
                                           std::to_string(m.container_port) + "/" + m.protocol +
                                           " that no other container publishes");
      }
    }
  }
  return {};
}

bool overlaps(const sdk::PortMapping& a, const sdk::PortMapping& b) {
  bool proto = a.protocol == b.protocol;
  bool ip = a.host_ip.empty() || b.host_ip.empty() || a.host_ip == b.host_ip ||
            a.host_ip == "0.0.0.0" || b.host_ip == "0.0.0.0";
  uint32_t a0 = a.host_port;
  uint32_t a1 = a0 + a.range - 1;
  uint32_t b0 = b.host_port;
  uint32_t b1 = b0 + b.range - 1;
  return proto && ip && a0 <= b1 && b0 <= a1;
}

// Used by connect_container: a port taken by something on the host is an error before any rule
// is written.
Result<void> check_host_port_free(const sdk::PortMapping& m) {
  for (uint16_t i = 0; i < m.range; ++i) {
    auto r = try_bind(m.host_ip, static_cast<uint16_t>(m.host_port + i),
                      m.protocol == "udp" ? "udp" : "tcp");
    if (!r) {
      return fail(Errc::Conflict, "cannot publish port " + std::to_string(m.host_port + i) + "/" +
                                      m.protocol + ": " + r.error().message() +
                                      " (the port is in use on the host; pick another host port)");
    }
  }
  return {};
}

}  // namespace berth::network
