// A container's /etc/hosts and /etc/resolv.conf.
#include <sstream>

#include "berth/engine/engine.hpp"
#include "berth/network/network.hpp"
#include "berth/util/fs.hpp"

namespace berth::network {

namespace {

constexpr const char* kLocalhost =
    "127.0.0.1\tlocalhost localhost.localdomain localhost4 localhost4.localdomain4\n"
    "::1\tlocalhost localhost.localdomain localhost6 localhost6.localdomain6\n";

std::string strip_prefix(const std::string& cidr) {
  return cidr.substr(0, cidr.find('/'));
}

std::vector<std::string> words(const std::string& line) {
  std::istringstream s(line);
  std::vector<std::string> out;
  for (std::string w; s >> w;) {
    out.push_back(w);
  }
  return out;
}

bool is_loopback(const std::string& ip) {
  return ip.starts_with("127.") || ip == "::1";
}

}  // namespace

Result<std::string> hosts_file(const HostsInput& in) {
  std::string out = in.base.empty() ? kLocalhost : in.base;
  if (!out.empty() && out.back() != '\n') {
    out += '\n';
  }
  for (const auto& h : in.add_hosts) {
    auto colon = h.rfind(':');
    // "name:ip"; an IPv6 address has colons of its own, so the name is before the first one.
    auto first = h.find(':');
    if (first == std::string::npos || first == 0 || first + 1 >= h.size()) {
      return fail(Errc::InvalidArgument,
                  "invalid --add-host \"" + h + "\": expected HOST:IP (e.g. db:10.0.0.5)");
    }
    (void)colon;
    std::string names = h.substr(0, first);
    std::string ip = h.substr(first + 1);
    if (ip == "host-gateway") {
      if (in.host_ip.empty()) {
        return fail(Errc::InvalidArgument,
                    "--add-host " + h + ": no host gateway address is known for this network");
      }
      ip = in.host_ip;
    }
    for (auto& c : names) {
      if (c == ';') {
        c = ' ';
      }
    }
    out += ip + "\t" + names + "\n";
  }
  std::string self;
  if (!in.hostname.empty()) {
    self = in.hostname;
  }
  if (!in.container_name.empty() && in.container_name != in.hostname) {
    self += (self.empty() ? "" : " ") + in.container_name;
  }
  if (!self.empty()) {
    if (in.container_ips.empty()) {
      out += "127.0.1.1\t" + self + "\n";
    }
    for (const auto& ip : in.container_ips) {
      out += strip_prefix(ip) + "\t" + self + "\n";
    }
  }
  if (!in.host_ip.empty()) {
    out += in.host_ip + "\thost.containers.internal host.docker.internal\n";
  }
  for (const auto& [ip, name] : in.peers) {
    out += strip_prefix(ip) + "\t" + name + "\n";
  }
  return out;
}

Result<std::string> resolv_conf(const ResolvInput& in) {
  std::vector<std::string> servers;
  std::vector<std::string> search;
  std::vector<std::string> options;
  std::istringstream s(in.host_resolv_conf);
  for (std::string line; std::getline(s, line);) {
    auto w = words(line);
    if (w.empty() || w[0][0] == '#' || w[0][0] == ';') {
      continue;
    }
    if (w[0] == "nameserver" && w.size() >= 2 && !is_loopback(w[1])) {
      servers.push_back(w[1]);
    } else if ((w[0] == "search" || w[0] == "domain") && w.size() >= 2) {
      search.assign(w.begin() + 1, w.end());
    } else if (w[0] == "options") {
      options.insert(options.end(), w.begin() + 1, w.end());
    }
  }
  if (!in.dns_servers.empty()) {
    servers = in.dns_servers;
  }
  if (!in.responders.empty()) {
    servers = in.responders;
  }
  if (servers.empty()) {
    servers = {"8.8.8.8", "8.8.4.4"};  // as Podman, when the host has only local resolvers
  }
  if (!in.dns_search.empty()) {
    search = in.dns_search.size() == 1 && in.dns_search[0] == "." ? std::vector<std::string>{}
                                                                  : in.dns_search;
  }
  if (!in.dns_options.empty()) {
    options = in.dns_options;
  }
  std::string out;
  if (!search.empty()) {
    out += "search";
    for (const auto& d : search) {
      out += " " + d;
    }
    out += "\n";
  }
  for (const auto& ns : servers) {
    out += "nameserver " + ns + "\n";
  }
  if (!options.empty()) {
    out += "options";
    for (const auto& o : options) {
      out += " " + o;
    }
    out += "\n";
  }
  return out;
}

Result<std::string> hosts_file(engine::Engine& engine, const ContainerNetRequest& req,
                               const sdk::SetupStatus& status) {
  const auto& cfg = engine.config().containers.containers;
  HostsInput in;
  std::string base_path = cfg.base_hosts_file.empty() ? "/etc/hosts" : cfg.base_hosts_file;
  if (base_path != "none") {
    if (auto text = util::read_file(base_path)) {
      in.base = *text;
    }
  }
  in.hostname = req.hostname;
  in.container_name = req.container_name;
  for (const auto& i : status.interfaces) {
    for (const auto& a : i.addresses) {
      in.container_ips.push_back(a);
    }
    if (in.host_ip.empty()) {
      in.host_ip = i.gateway;
    }
  }
  in.add_hosts = req.add_hosts;
  auto store = NetworkStore::for_engine(engine);
  std::vector<NetworkAttachRequest> nets = req.networks;
  if (nets.empty() && !req.no_networks) {
    nets.push_back({});
  }
  for (const auto& a : nets) {
    auto n = a.network.empty()
                 ? store.get(NetworkStore::default_network(engine.config().containers).name)
                 : store.get(a.network);
    if (!n || n->dns_enabled) {
      continue;
    }
    Ipam ipam(store.lease_file(n->name), *n);
    BERTH_TRY(auto leases, ipam.leases());
    for (const auto& l : leases) {
      if (l.container_id != req.container_id && !l.container_name.empty()) {
        for (const auto& ip : l.addresses()) {
          in.peers.emplace_back(ip, l.container_name);
        }
      }
    }
  }
  return hosts_file(in);
}

Result<std::string> resolv_conf(engine::Engine& engine, const ContainerNetRequest& req,
                                const sdk::SetupStatus& status) {
  const auto& cfg = engine.config().containers.containers;
  ResolvInput in;
  auto host = util::read_file("/etc/resolv.conf");
  if (host && host->find("nameserver 127.0.0.53") != std::string::npos) {
    // systemd-resolved's stub is unreachable from the namespace: use its upstream list.
    if (auto upstream = util::read_file("/run/systemd/resolve/resolv.conf")) {
      host = upstream;
    }
  }
  in.host_resolv_conf = host ? *host : "";
  in.responders = status.dns_servers;
  in.dns_servers = req.dns_servers.empty() ? cfg.dns_servers : req.dns_servers;
  in.dns_search = req.dns_search.empty() ? cfg.dns_searches : req.dns_search;
  in.dns_options = req.dns_options.empty() ? cfg.dns_options : req.dns_options;
  return resolv_conf(in);
}

}  // namespace berth::network
