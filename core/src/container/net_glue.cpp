// A container's network: the mode chosen at create, the namespace plumbed at each start and
// torn down at each exit, its /etc/hostname, /etc/hosts and /etc/resolv.conf, NetworkSettings in
// inspect, Ports in ps, and `network connect/disconnect` and `port`.
//
// Bridge, slirp4netns and pasta containers get a network namespace at a fixed path,
// <runroot>/netns/berth-<id>, named in the spec written at create; net_before_init() creates and
// plumbs it at each start, net_after_exit() tears it down. An OCI runtime (runc, crun) given a
// user namespace makes the network namespace itself, inside that user namespace (it joins the user
// namespace first, also on exec, and then may not join one berth made): net_after_create() binds
// it at the same path once the runtime created the container, and plumbs it (Podman's
// PostConfigureNetNS). What was plumbed (interfaces, ports as forwarded) is in
// <runroot>/containers/<id>/network.json while the namespace exists. A berth
// killed mid-setup leaves the namespace file: the next start or cleanup of the container tears
// it down first, and the next start of any container sweeps namespaces of containers that are
// gone.
#include <dirent.h>
#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <set>

#include "berth/container/net_options.hpp"
#include "berth/container/service.hpp"
#include "berth/engine/engine.hpp"
#include "berth/image/image_service.hpp"
#include "berth/network/network.hpp"
#include "berth/util/fs.hpp"
#include "berth/util/log.hpp"
#include "features.hpp"
#include "internal.hpp"

namespace berth::container {

using nlohmann::json;

void to_json(json& j, const NetOptions& o) {
  j = json{{"networks", o.networks},
           {"disconnected", o.disconnected},
           {"publish", o.publish},
           {"publish_all", o.publish_all},
           {"expose", o.expose},
           {"dns", o.dns},
           {"dns_search", o.dns_search},
           {"dns_options", o.dns_options},
           {"add_hosts", o.add_hosts},
           {"aliases", o.aliases},
           {"ip", o.ip},
           {"ip6", o.ip6},
           {"mac", o.mac},
           {"no_hosts", o.no_hosts}};
}

void from_json(const json& j, NetOptions& o) {
  NetOptions d;
  o.networks = j.value("networks", d.networks);
  o.disconnected = j.value("disconnected", d.disconnected);
  o.publish = j.value("publish", d.publish);
  o.publish_all = j.value("publish_all", d.publish_all);
  o.expose = j.value("expose", d.expose);
  o.dns = j.value("dns", d.dns);
  o.dns_search = j.value("dns_search", d.dns_search);
  o.dns_options = j.value("dns_options", d.dns_options);
  o.add_hosts = j.value("add_hosts", d.add_hosts);
  o.aliases = j.value("aliases", d.aliases);
  o.ip = j.value("ip", d.ip);
  o.ip6 = j.value("ip6", d.ip6);
  o.mac = j.value("mac", d.mac);
  o.no_hosts = j.value("no_hosts", d.no_hosts);
}

namespace {

namespace fs = std::filesystem;

enum class Mode { None, Host, Bridge, Slirp, Pasta, Container, Ns };

Mode mode_of(const std::string& network) {
  if (network == "host") {
    return Mode::Host;
  }
  if (network == "bridge") {
    return Mode::Bridge;
  }
  if (network == "slirp4netns") {
    return Mode::Slirp;
  }
  if (network == "pasta") {
    return Mode::Pasta;
  }
  if (network.starts_with("container:")) {
    return Mode::Container;
  }
  if (network.starts_with("ns:")) {
    return Mode::Ns;
  }
  return Mode::None;
}

bool managed(Mode m) {
  return m == Mode::Bridge || m == Mode::Slirp || m == Mode::Pasta;
}

std::string netns_dir(engine::Engine& eng) {
  return eng.runroot() + "/netns";
}
std::string netns_path(engine::Engine& eng, const std::string& id) {
  return netns_dir(eng) + "/berth-" + id;
}
std::string state_path(engine::Engine& eng, const std::string& id) {
  return run_dir(eng.runroot(), id) + "/network.json";
}

bool exists(const std::string& path) {
  struct stat st {};
  return ::lstat(path.c_str(), &st) == 0;
}

std::string default_network_name(engine::Engine& eng) {
  return network::NetworkStore::default_network(eng.config().containers).name;
}

// "NAME" or "NAME:ip=...,ip6=...,mac=...,alias=...".
Result<network::NetworkAttachRequest> parse_entry(const std::string& entry) {
  network::NetworkAttachRequest a;
  auto colon = entry.find(':');
  a.network = entry.substr(0, colon);
  if (a.network.empty()) {
    return fail(Errc::InvalidArgument, "--network \"" + entry + "\": no network name");
  }
  if (colon == std::string::npos) {
    return a;
  }
  std::string rest = entry.substr(colon + 1);
  for (size_t start = 0; start <= rest.size();) {
    auto comma = rest.find(',', start);
    std::string kv = rest.substr(start, comma == std::string::npos ? comma : comma - start);
    start = comma == std::string::npos ? rest.size() + 1 : comma + 1;
    if (kv.empty()) {
      continue;
    }
    auto eq = kv.find('=');
    std::string k = kv.substr(0, eq);
    std::string v = eq == std::string::npos ? "" : kv.substr(eq + 1);
    if (k == "ip") {
      a.static_ip = v;
    } else if (k == "ip6") {
      a.static_ip6 = v;
    } else if (k == "mac") {
      a.static_mac = v;
    } else if (k == "alias") {
      a.aliases.push_back(v);
    } else if (k == "interface_name") {
      a.interface_name = v;
    } else {
      return fail(Errc::InvalidArgument, "--network " + entry + ": unknown option \"" + k +
                                             "\" (known: ip, ip6, mac, alias, interface_name)");
    }
  }
  return a;
}

// --ip6 on `net` as IPAM will check it at start (whether the address is free is known only
// then): refused at create, before anything is made.
Result<void> check_static_ip6(const network::Network& net, const std::string& ip6) {
  if (!network::is_ipv6(ip6)) {
    return fail(Errc::InvalidArgument,
                "--ip6 " + ip6 + " is not an IPv6 address (an IPv4 address goes in --ip)");
  }
  auto ip = network::parse_ipv6(ip6);
  if (!ip) {
    return fail(Errc::InvalidArgument, "--ip6 " + ip6 + ": " + ip.error().message());
  }
  for (const auto& sc : net.subnets) {
    if (!network::is_ipv6(sc.subnet)) {
      continue;
    }
    BERTH_TRY(auto sub, network::Ipv6Net::parse(sc.subnet));
    if (!sub.contains(*ip) || *ip == sub.addr || *ip == sub.last()) {
      return fail(Errc::InvalidArgument, "--ip6 " + ip6 + " is not a host address of subnet " +
                                             sc.subnet + " of network " + net.name);
    }
    return {};
  }
  return fail(Errc::InvalidArgument, "--ip6 " + ip6 + ": network " + net.name +
                                         " has no IPv6 subnet (create it with --ipv6 or an "
                                         "IPv6 --subnet)");
}

// Whether a bridge-mode container was left with no network (empty `networks` is otherwise the
// default network).
bool no_networks(const NetOptions& o) {
  return o.networks.empty() && o.disconnected;
}

// The bridge-mode networks of a container, in order, with eth<N> names and the flags that apply.
Result<std::vector<network::NetworkAttachRequest>> attach_list(engine::Engine& eng,
                                                               const NetOptions& o) {
  std::vector<std::string> entries = o.networks;
  if (entries.empty() && !o.disconnected) {
    entries.push_back("bridge");
  }
  std::vector<network::NetworkAttachRequest> out;
  for (size_t i = 0; i < entries.size(); ++i) {
    BERTH_TRY(auto a, parse_entry(entries[i]));
    if (a.network == "bridge") {
      a.network = default_network_name(eng);
    }
    if (a.interface_name.empty()) {
      a.interface_name = "eth" + std::to_string(i);
    }
    a.aliases.insert(a.aliases.end(), o.aliases.begin(), o.aliases.end());
    if (i == 0) {
      if (a.static_ip.empty()) {
        a.static_ip = o.ip;
      }
      if (a.static_ip6.empty()) {
        a.static_ip6 = o.ip6;
      }
      if (a.static_mac.empty()) {
        a.static_mac = o.mac;
      }
    }
    out.push_back(std::move(a));
  }
  return out;
}

// The request of a managed-mode container (ports parsed only when `parse_ports`: a free host
// port is picked for each `-p CONTAINERPORT`).
Result<network::ContainerNetRequest> net_request(engine::Engine& eng, const ContainerRecord& rec,
                                                 bool parse_ports) {
  const auto& o = rec.options;
  network::ContainerNetRequest req;
  req.container_id = rec.id;
  req.container_name = rec.name;
  req.hostname = o.hostname;
  req.netns_path = netns_path(eng, rec.id);
  Mode m = mode_of(o.network);
  if (m == Mode::Slirp || m == Mode::Pasta) {
    req.user_mode = o.network;
  } else {
    BERTH_TRY(req.networks, attach_list(eng, o.net));
    req.no_networks = no_networks(o.net);
  }
  if (parse_ports) {
    for (const auto& p : o.net.publish) {
      BERTH_TRY(auto ms, network::parse_publish(p, false));  // host ports picked when connected
      req.ports.insert(req.ports.end(), ms.begin(), ms.end());
    }
  }
  req.publish_all = o.net.publish_all;
  req.exposed_ports = o.net.expose;
  req.dns_servers = o.net.dns;
  req.dns_search = o.net.dns_search;
  req.dns_options = o.net.dns_options;
  req.add_hosts = o.net.add_hosts;
  return req;
}

json port_json(const sdk::PortMapping& p) {
  return {{"host_ip", p.host_ip},
          {"container_port", p.container_port},
          {"host_port", p.host_port},
          {"range", p.range},
          {"protocol", p.protocol}};
}

sdk::PortMapping port_from_json(const json& j) {
  sdk::PortMapping p;
  p.host_ip = j.value("host_ip", "");
  p.container_port = j.value("container_port", uint16_t{0});
  p.host_port = j.value("host_port", uint16_t{0});
  p.range = j.value("range", uint16_t{1});
  p.protocol = j.value("protocol", "tcp");
  return p;
}

// The saved state of a plumbed namespace; null when there is none.
json read_net_state(engine::Engine& eng, const std::string& id) {
  auto text = util::read_file(state_path(eng, id));
  if (!text) {
    return nullptr;
  }
  json j = json::parse(*text, nullptr, false);
  return j.is_object() ? j : json(nullptr);
}

Result<void> write_net_state(engine::Engine& eng, const std::string& id, const json& j) {
  return util::write_file_atomic(state_path(eng, id), j.dump(2) + "\n");
}

// In place, so bind mounts of the file (the container's, and those of containers joined with
// container:) see the new content.
Result<void> write_in_place(const std::string& path, const std::string& text) {
  BERTH_TRY(auto fd, util::open_file(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  return util::write_all(fd.get(), text, path);
}

std::string host_file(const char* path) {
  auto t = util::read_file(path);
  return t ? *t : std::string();
}

// /etc/hosts and /etc/resolv.conf of a plumbed container from what it got.
Result<void> write_etc_files(engine::Engine& eng, const ContainerRecord& rec,
                             const network::ContainerNetRequest& req,
                             const sdk::SetupStatus& status) {
  if (!rec.options.net.no_hosts) {
    BERTH_TRY(auto hosts, network::hosts_file(eng, req, status));
    BERTH_TRYV(write_in_place(rec.bundle + "/hosts", hosts));
  }
  BERTH_TRY(auto resolv, network::resolv_conf(eng, req, status));
  return write_in_place(rec.bundle + "/resolv.conf", resolv);
}

sdk::SetupStatus status_from_state(const json& state) {
  sdk::SetupStatus st;
  for (const auto& i : state.value("interfaces", json::array())) {
    sdk::InterfaceStatus is;
    is.name = i.value("name", "");
    is.mac = i.value("mac", "");
    is.addresses = i.value("addresses", std::vector<std::string>{});
    is.gateway = i.value("gateway", "");
    st.interfaces.push_back(is);
  }
  st.dns_servers = state.value("dns", std::vector<std::string>{});
  return st;
}

// Tears down what a managed-mode container's namespace holds: drivers, leases, the namespace.
// Tries everything; returns the first error.
Result<void> teardown(engine::Engine& eng, const ContainerRecord& rec) {
  std::optional<Error> first;
  auto note = [&](Result<void> r) {
    if (!r && !first) {
      first = r.error();
    }
  };
  json state = read_net_state(eng, rec.id);
  auto req = net_request(eng, rec, false);
  // A container left with no network (`network disconnect` of its last one) or whose mode
  // changed has only its namespace to remove.
  bool drivers = managed(mode_of(rec.options.network));
  if (req) {
    if (state.is_object()) {
      // What was plumbed, including networks connected while it ran.
      std::vector<network::NetworkAttachRequest> nets;
      for (const auto& i : state.value("interfaces", json::array())) {
        if (i.contains("network")) {
          network::NetworkAttachRequest a;
          a.network = i.value("network", "");
          a.interface_name = i.value("name", "");
          nets.push_back(a);
        }
      }
      if (!nets.empty()) {
        req->networks = nets;
      } else if (req->user_mode.empty()) {
        drivers = false;
      }
      for (const auto& p : state.value("ports", json::array())) {
        req->ports.push_back(port_from_json(p));
      }
    }
    if (drivers) {
      note(network::disconnect_container(eng, *req));
    }
  } else {
    note(fail(std::move(req).error()));
  }
  note(network::remove_netns(netns_path(eng, rec.id)));
  if (::unlink(state_path(eng, rec.id).c_str()) != 0 && errno != ENOENT) {
    note(fail_errno("remove", state_path(eng, rec.id)));
  }
  if (first) {
    return fail(std::move(*first).wrap("tear down the network of container " + rec.name));
  }
  return {};
}

// Namespaces under <runroot>/netns whose container is gone (a create undone after its network
// was plumbed, a berth killed while removing): their leases, driver state and namespace go.
void sweep_stale(engine::Engine& eng, const std::string& self) {
  DIR* d = ::opendir(netns_dir(eng).c_str());
  if (d == nullptr) {
    return;
  }
  std::vector<std::string> ids;
  while (auto* e = ::readdir(d)) {
    std::string n = e->d_name;
    if (n.starts_with("berth-") && n.substr(6) != self) {
      ids.push_back(n.substr(6));
    }
  }
  ::closedir(d);
  if (ids.empty()) {
    return;
  }
  auto dbr = detail::open_db(eng, true);
  if (!dbr) {
    return;
  }
  ContainerDb& db = **dbr;
  auto store = network::NetworkStore::for_engine(eng);
  for (const auto& id : ids) {
    auto rec = db.by_id(id);
    if (!rec || rec->has_value()) {
      continue;
    }
    network::ContainerNetRequest req;
    req.container_id = id;
    req.netns_path = netns_path(eng, id);
    if (auto nets = store.list()) {
      for (const auto& n : *nets) {
        network::Ipam ipam(store.lease_file(n.name), n);
        auto leases = ipam.leases();
        if (!leases) {
          continue;
        }
        for (const auto& l : *leases) {
          if (l.container_id == id) {
            network::NetworkAttachRequest a;
            a.network = n.name;
            a.interface_name = l.interface_name;
            req.networks.push_back(a);
            req.ports.insert(req.ports.end(), l.ports.begin(), l.ports.end());
          }
        }
      }
    }
    if (!req.networks.empty()) {
      if (auto r = network::disconnect_container(eng, req); !r) {
        spdlog::warn("stale network of container {}: {}", id, r.error().message());
      }
    }
    if (exists(eng.runroot() + "/networks/slirp/" + id + ".json")) {
      network::ContainerNetRequest slirp = req;
      slirp.networks.clear();
      slirp.user_mode = "slirp4netns";
      (void)network::disconnect_container(eng, slirp);
    }
    if (auto r = network::remove_netns(req.netns_path); !r) {
      spdlog::warn("stale network namespace {}: {}", req.netns_path, r.error().message());
    }
  }
}

// The namespace a container:NAME container joins.
Result<spec::NamespaceMode> joined_namespace(engine::Engine& eng, ContainerDb& db,
                                             const ContainerRecord& target, int depth = 0) {
  spec::NamespaceMode ns;
  Mode m = mode_of(target.options.network);
  if (managed(m)) {
    ns.kind = spec::NamespaceMode::Kind::Path;
    ns.path = netns_path(eng, target.id);
    return ns;
  }
  if (m == Mode::Host) {
    ns.kind = spec::NamespaceMode::Kind::Host;
    return ns;
  }
  if (m == Mode::Ns) {
    ns.kind = spec::NamespaceMode::Kind::Path;
    ns.path = target.options.network.substr(3);
    return ns;
  }
  if (m == Mode::Container && depth < 8) {
    BERTH_TRY(auto next, db.lookup(target.options.network.substr(10)));
    return joined_namespace(eng, db, next, depth + 1);
  }
  ContainerState st = read_state(eng.runroot(), target);
  if (st.pid <= 0 || st.status == Status::Exited) {
    return fail(Errc::InvalidArgument,
                "container " + target.name +
                    " has no network namespace of its own while it is not running (network "
                    "mode " +
                    target.options.network + "): start it first");
  }
  ns.kind = spec::NamespaceMode::Kind::Path;
  ns.path = "/proc/" + std::to_string(st.pid) + "/ns/net";
  return ns;
}

// The image's ExposedPorts ("80/tcp").
std::vector<std::string> image_exposed_ports(engine::Engine& eng, const ContainerRecord& rec) {
  std::vector<std::string> out;
  auto layers = detail::open_layers(eng);
  if (!layers) {
    return out;
  }
  auto img = image::lookup_image(**layers, rec.image_id);
  if (!img) {
    return out;
  }
  json cfg = json::parse(img->config, nullptr, false);
  if (!cfg.is_object()) {
    return out;
  }
  json cc = cfg.value("config", json::object());
  if (cc.is_object() && cc.contains("ExposedPorts") && cc["ExposedPorts"].is_object()) {
    for (const auto& [k, v] : cc["ExposedPorts"].items()) {
      out.push_back(k);
    }
  }
  return out;
}

std::string port_key(uint32_t port, const std::string& proto) {
  return std::to_string(port) + "/" + proto;
}

}  // namespace

std::string format_ports(const json& ports) {
  if (!ports.is_array()) {
    return "";
  }
  std::string out;
  for (const auto& j : ports) {
    auto p = port_from_json(j);
    std::string ip = p.host_ip.empty() ? "0.0.0.0" : p.host_ip;
    std::string host = std::to_string(p.host_port);
    std::string ctr = std::to_string(p.container_port);
    if (p.range > 1) {
      host += "-" + std::to_string(p.host_port + p.range - 1);
      ctr += "-" + std::to_string(p.container_port + p.range - 1);
    }
    out += (out.empty() ? "" : ", ") + ip + ":" + host + "->" + ctr + "/" + p.protocol;
  }
  return out;
}

namespace {

// An OCI runtime makes the namespace of this managed-mode container (net_prepare): the spec names
// a network namespace without a path.
bool runtime_makes_netns(const ContainerRecord& rec) {
  const std::string& userns = rec.options.resources.userns;
  if (userns.empty() || userns == "host") {
    return false;  // the common case decided without reading the spec
  }
  auto text = util::read_file(rec.bundle + "/config.json");
  if (!text) {
    return false;
  }
  json spec = json::parse(*text, nullptr, false);
  if (!spec.is_object()) {
    return false;
  }
  const json namespaces = spec.value("/linux/namespaces"_json_pointer, json::array());
  for (const auto& ns : namespaces) {
    if (ns.is_object() && ns.value("type", "") == "network") {
      return ns.value("path", "").empty();
    }
  }
  return false;
}

// Binds the network namespace of the runtime's container process `pid` at `path`, as
// create_netns binds a new one (remove_netns undoes either).
Result<void> bind_netns(pid_t pid, const std::string& path) {
  const std::string src = "/proc/" + std::to_string(pid) + "/ns/net";
  struct stat own {};
  struct stat theirs {};
  if (::stat("/proc/self/ns/net", &own) != 0) {
    return fail_errno("stat", "/proc/self/ns/net");
  }
  if (::stat(src.c_str(), &theirs) != 0) {
    return fail(
        Error::from_errno("stat the network namespace of the container's process", src, errno)
            .hint("the container exited while it was created; see `berth logs`"));
  }
  if (own.st_ino == theirs.st_ino && own.st_dev == theirs.st_dev) {
    return fail(Errc::Internal,
                "the OCI runtime left the container in the host's network "
                "namespace although its spec asks for a new one (" +
                    src + ")");
  }
  BERTH_TRYV(util::make_dirs(fs::path(path).parent_path().string()));
  int fd = ::open(path.c_str(), O_RDONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0);
  if (fd < 0) {
    return fail_errno("create network namespace file", path);
  }
  ::close(fd);
  if (::mount(src.c_str(), path.c_str(), nullptr, MS_BIND, nullptr) != 0) {
    const int err = errno;
    ::unlink(path.c_str());
    return fail(Error::from_errno("bind mount " + src + " on", path, err));
  }
  return {};
}

// Plumbs the container's namespace, bound at its path, and records what it got; on failure tears
// down what was made, the namespace included.
Result<void> plumb(engine::Engine& eng, const ContainerRecord& rec,
                   const network::ContainerNetRequest& req) {
  const std::string path = netns_path(eng, rec.id);
  auto undo = [&](Error e) -> Result<void> {
    if (auto r = teardown(eng, rec); !r) {
      spdlog::warn("{}", r.error().message());
    }
    return fail(std::move(e).wrap("container " + rec.name));
  };
  std::vector<sdk::PortMapping> ports;
  auto st = network::connect_container(eng, req, &ports);
  if (!st) {
    return undo(std::move(st).error());
  }
  json ifaces = json::array();
  for (const auto& is : st->interfaces) {
    json j = {
        {"name", is.name}, {"mac", is.mac}, {"addresses", is.addresses}, {"gateway", is.gateway}};
    for (const auto& a : req.networks) {
      if (a.interface_name == is.name) {
        j["network"] = a.network;
        j["aliases"] = a.aliases;
      }
    }
    ifaces.push_back(std::move(j));
  }
  json ports_j = json::array();
  for (const auto& p : ports) {
    ports_j.push_back(port_json(p));
  }
  json state = {{"netns", path},
                {"mode", rec.options.network},
                {"interfaces", ifaces},
                {"ports", ports_j},
                {"dns", st->dns_servers}};
  if (auto r = write_net_state(eng, rec.id, state); !r) {
    return undo(std::move(r).error());
  }
  if (auto r = write_etc_files(eng, rec, req, *st); !r) {
    return undo(std::move(r).error());
  }
  return {};
}

}  // namespace

namespace detail {

Result<void> net_prepare(engine::Engine& eng, const ContainerRecord& rec, CreateOptions& opts,
                         spec::SpecOptions& so, std::vector<std::string>& warnings) {
  std::string mode = opts.network;
  if (mode.empty() || mode == "private" || mode == "default") {
    mode = eng.rootless() ? "slirp4netns" : "bridge";
  }
  for (const char* um : {"slirp4netns:", "pasta:"}) {
    if (mode.starts_with(um)) {
      warnings.push_back("network options \"" + mode.substr(mode.find(':') + 1) +
                         "\" are ignored (not supported yet)");
      mode = mode.substr(0, mode.find(':'));
    }
  }
  NetOptions& n = opts.net;
  Mode m = mode_of(mode);
  if (m == Mode::None && mode != "none") {
    // Network names given as the mode (the API, older callers): "a,b".
    std::vector<std::string> names;
    for (size_t start = 0; start <= mode.size();) {
      auto comma = mode.find(',', start);
      std::string tok = mode.substr(start, comma == std::string::npos ? comma : comma - start);
      start = comma == std::string::npos ? mode.size() + 1 : comma + 1;
      if (!tok.empty()) {
        names.push_back(tok);
      }
    }
    n.networks.insert(n.networks.begin(), names.begin(), names.end());
    mode = "bridge";
    m = Mode::Bridge;
  }
  if (!managed(m) && (!n.publish.empty() || n.publish_all)) {
    warnings.push_back(
        "Port mappings have been discarded as one of the Host, Container, Pod, and None network "
        "modes are in use");
    n.publish.clear();
    n.publish_all = false;
  }
  if (m != Mode::Bridge &&
      (!n.ip.empty() || !n.ip6.empty() || !n.aliases.empty() || !n.mac.empty())) {
    return fail(Errc::InvalidArgument,
                "--ip, --ip6, --mac-address and --network-alias need a bridge "
                "network (network mode is " +
                    mode + ")");
  }
  if (m == Mode::Bridge) {
    auto store = network::NetworkStore::for_engine(eng);
    std::set<std::string> seen;
    BERTH_TRY(auto nets, attach_list(eng, n));
    for (size_t i = 0; i < nets.size(); ++i) {
      const auto& a = nets[i];
      auto got = store.get(a.network);
      if (!got) {
        return fail(std::move(got).error().hint("create it with `berth network create " +
                                                a.network + "` or see `berth network ls`"));
      }
      if (!seen.insert(got->name).second) {
        return fail(Errc::InvalidArgument, "network " + got->name + " is given twice");
      }
      if (!a.static_ip6.empty()) {
        BERTH_TRYV(check_static_ip6(*got, a.static_ip6));
      }
      // Recorded by name (an id prefix given here would not match later).
      if (i < n.networks.size() && !got->is_default) {
        auto colon = n.networks[i].find(':');
        n.networks[i] = got->name + (colon == std::string::npos ? "" : n.networks[i].substr(colon));
      }
    }
  }
  for (const auto& p : n.publish) {
    BERTH_TRY(auto ms, network::parse_publish(p, false));
    (void)ms;
  }
  if (n.publish_all) {
    for (auto& e : image_exposed_ports(eng, rec)) {
      if (std::find(n.expose.begin(), n.expose.end(), e) == n.expose.end()) {
        n.expose.push_back(e);
      }
    }
  }
  for (const auto& e : n.expose) {
    BERTH_TRY(auto ms, network::parse_publish(e, false));
    (void)ms;
  }

  std::string hosts_src = rec.bundle + "/hosts";
  std::string resolv_src = rec.bundle + "/resolv.conf";
  if (managed(m) && so.userns.kind != spec::NamespaceMode::Kind::Host &&
      resolve_runtime_name(eng, opts.runtime) != "native") {
    // Made by the runtime in the container's user namespace; net_after_create plumbs it.
    so.network.kind = spec::NamespaceMode::Kind::Private;
  } else if (managed(m)) {
    so.network.kind = spec::NamespaceMode::Kind::Path;
    so.network.path = netns_path(eng, rec.id);
  } else if (m == Mode::Host) {
    so.network.kind = spec::NamespaceMode::Kind::Host;
  } else if (m == Mode::Ns) {
    std::string path = mode.substr(3);
    if (path.empty() || path[0] != '/' || !exists(path)) {
      return fail(Errc::InvalidArgument,
                  "--network " + mode + ": no network namespace at \"" + path + "\"");
    }
    so.network.kind = spec::NamespaceMode::Kind::Path;
    so.network.path = path;
  } else if (m == Mode::Container) {
    BERTH_TRY(auto db, open_db(eng, true));
    BERTH_TRY(auto target, db->lookup(mode.substr(10)));
    if (target.id == rec.id) {
      return fail(Errc::InvalidArgument, "a container cannot join its own network namespace");
    }
    BERTH_TRY(so.network, joined_namespace(eng, *db, target));
    if (so.userns.kind == spec::NamespaceMode::Kind::Private &&
        managed(mode_of(target.options.network)) && runtime_makes_netns(target) &&
        resolve_runtime_name(eng, opts.runtime) != "native") {
      // The OCI runtime would enter its new user namespace first (on exec too), which does not
      // own the target's network namespace.
      return fail(Errc::InvalidArgument,
                  "--network " + mode + ": the network namespace of container " + target.name +
                      " belongs to its user namespace, which an OCI runtime cannot enter from a "
                      "user namespace of the container's own: join that one too (--userns "
                      "container:" +
                      target.name + "), or use --runtime native");
    }
    mode = "container:" + target.id;
    hosts_src = target.bundle + "/hosts";
    resolv_src = target.bundle + "/resolv.conf";
  }
  opts.network = mode;

  // Generated from the container's record (as Podman's): replaced atomically, not fsynced.
  constexpr auto kGenerated = util::Durability::Replace;
  BERTH_TRYV(
      util::write_file_atomic(rec.bundle + "/hostname", opts.hostname + "\n", 0644, kGenerated));
  if (m != Mode::Container) {
    // Placeholders for managed modes until the first start writes the addresses.
    network::HostsInput hi;
    if (m == Mode::Host) {
      hi.base = host_file("/etc/hosts");
    }
    hi.hostname = opts.hostname;
    hi.container_name = rec.name;
    hi.add_hosts = n.add_hosts;
    BERTH_TRY(auto hosts, network::hosts_file(hi));
    std::string resolv;
    if (m == Mode::Host && n.dns.empty() && n.dns_search.empty() && n.dns_options.empty()) {
      resolv = host_file("/etc/resolv.conf");
    } else {
      network::ResolvInput ri;
      ri.host_resolv_conf = host_file("/etc/resolv.conf");
      const auto& cc = eng.config().containers.containers;
      ri.dns_servers = n.dns.empty() ? cc.dns_servers : n.dns;
      ri.dns_search = n.dns_search.empty() ? cc.dns_searches : n.dns_search;
      ri.dns_options = n.dns_options.empty() ? cc.dns_options : n.dns_options;
      BERTH_TRY(resolv, network::resolv_conf(ri));
    }
    BERTH_TRYV(util::write_file_atomic(rec.bundle + "/hosts", hosts, 0644, kGenerated));
    BERTH_TRYV(util::write_file_atomic(rec.bundle + "/resolv.conf", resolv, 0644, kGenerated));
  }
  std::vector<std::string> bind = {"rbind", "rprivate", "nosuid", "nodev"};
  so.mounts.push_back(spec::BindMount{rec.bundle + "/hostname", "/etc/hostname", bind});
  if (!n.no_hosts) {
    so.mounts.push_back(spec::BindMount{hosts_src, "/etc/hosts", bind});
  }
  so.mounts.push_back(spec::BindMount{resolv_src, "/etc/resolv.conf", bind});
  return {};
}

Result<void> net_before_init(engine::Engine& eng, const ContainerRecord& rec) {
  if (!managed(mode_of(rec.options.network))) {
    return {};
  }
  std::string path = netns_path(eng, rec.id);
  if (exists(path) || exists(state_path(eng, rec.id))) {
    // A previous run was not torn down (its berth or monitor was killed).
    BERTH_TRYV(teardown(eng, rec));
  }
  sweep_stale(eng, rec.id);
  if (runtime_makes_netns(rec)) {
    return {};
  }
  BERTH_TRY(auto req, net_request(eng, rec, true));
  BERTH_TRYV(network::create_netns(path));
  return plumb(eng, rec, req);
}

Result<void> net_after_create(engine::Engine& eng, const ContainerRecord& rec, pid_t pid) {
  if (!managed(mode_of(rec.options.network)) || !runtime_makes_netns(rec)) {
    return {};
  }
  if (pid <= 0) {
    return fail(Errc::Internal, "container " + rec.name +
                                    ": the runtime reported no process to "
                                    "plumb the network namespace of");
  }
  BERTH_TRY(auto req, net_request(eng, rec, true));
  if (auto r = bind_netns(pid, netns_path(eng, rec.id)); !r) {
    return fail(std::move(r).error().wrap("container " + rec.name));
  }
  return plumb(eng, rec, req);
}

Result<void> net_after_exit(engine::Engine& eng, const ContainerRecord& rec) {
  if (!exists(netns_path(eng, rec.id)) && !exists(state_path(eng, rec.id))) {
    return {};
  }
  return teardown(eng, rec);
}

void net_inspect(engine::Engine& eng, const ContainerRecord& rec, const ContainerState& st,
                 json& out) {
  const auto& o = rec.options;
  Mode m = mode_of(o.network);
  json state = nullptr;
  if (managed(m) && st.status != Status::Exited && st.status != Status::Configured) {
    state = read_net_state(eng, rec.id);
  }
  // Ports: as forwarded while plumbed, else as configured; exposed ports without a binding
  // are null, as Podman.
  std::vector<sdk::PortMapping> ports;
  if (state.is_object()) {
    for (const auto& p : state.value("ports", json::array())) {
      ports.push_back(port_from_json(p));
    }
  } else {
    for (const auto& p : o.net.publish) {
      if (auto ms = network::parse_publish(p, false)) {
        ports.insert(ports.end(), ms->begin(), ms->end());
      }
    }
  }
  json bindings = json::object();
  for (const auto& p : ports) {
    for (uint32_t i = 0; i < p.range; ++i) {
      std::string key = port_key(p.container_port + i, p.protocol);
      if (!bindings.contains(key) || bindings[key].is_null()) {
        bindings[key] = json::array();
      }
      bindings[key].push_back(
          {{"HostIp", p.host_ip},
           {"HostPort", p.host_port == 0 ? "" : std::to_string(p.host_port + i)}});
    }
  }
  json port_map = bindings;
  for (const auto& e : o.net.expose) {
    if (auto ms = network::parse_publish(e, false)) {
      for (const auto& p : *ms) {
        for (uint32_t i = 0; i < p.range; ++i) {
          std::string key = port_key(p.container_port + i, p.protocol);
          if (!port_map.contains(key)) {
            port_map[key] = nullptr;
          }
        }
      }
    }
  }

  json ns = {{"EndpointID", ""},
             {"Gateway", ""},
             {"IPAddress", ""},
             {"IPPrefixLen", 0},
             {"IPv6Gateway", ""},
             {"GlobalIPv6Address", ""},
             {"GlobalIPv6PrefixLen", 0},
             {"MacAddress", ""},
             {"Bridge", ""},
             {"SandboxID", ""},
             {"HairpinMode", false},
             {"LinkLocalIPv6Address", ""},
             {"LinkLocalIPv6PrefixLen", 0},
             {"Ports", port_map},
             {"SandboxKey", state.is_object() ? state.value("netns", "") : ""}};
  if (m == Mode::Bridge) {
    json networks = json::object();
    auto store = network::NetworkStore::for_engine(eng);
    std::vector<std::pair<std::string, std::vector<std::string>>> names;
    auto configured = attach_list(eng, o.net);
    if (state.is_object()) {
      for (const auto& i : state.value("interfaces", json::array())) {
        names.emplace_back(i.value("network", ""), i.value("aliases", std::vector<std::string>{}));
      }
    } else if (configured) {
      for (const auto& a : *configured) {
        names.emplace_back(a.network, a.aliases);
      }
    }
    bool first = true;
    for (const auto& [name, aliases] : names) {
      json e = {{"EndpointID", ""},         {"Gateway", ""},         {"IPAddress", ""},
                {"IPPrefixLen", 0},         {"IPv6Gateway", ""},     {"GlobalIPv6Address", ""},
                {"GlobalIPv6PrefixLen", 0}, {"MacAddress", ""},      {"NetworkID", name},
                {"DriverOpts", nullptr},    {"IPAMConfig", nullptr}, {"Links", nullptr}};
      std::vector<std::string> al = aliases;
      auto net = store.get(name);
      if (net && !net->is_default) {
        al.push_back(rec.id.substr(0, 12));
      }
      e["Aliases"] = al;
      // The addresses asked for (--ip, --ip6), as Docker's EndpointSettings.IPAMConfig.
      if (configured) {
        for (const auto& a : *configured) {
          if (a.network != name || (a.static_ip.empty() && a.static_ip6.empty())) {
            continue;
          }
          json ipam = json::object();
          if (!a.static_ip.empty()) {
            ipam[network::is_ipv6(a.static_ip) ? "IPv6Address" : "IPv4Address"] = a.static_ip;
          }
          if (!a.static_ip6.empty()) {
            ipam["IPv6Address"] = a.static_ip6;
          }
          e["IPAMConfig"] = std::move(ipam);
        }
      }
      if (state.is_object()) {
        for (const auto& i : state.value("interfaces", json::array())) {
          if (i.value("network", "") != name) {
            continue;
          }
          // IPv4 in IPAddress, IPv6 in GlobalIPv6Address (dual stack has both), as Docker.
          bool have4 = false;
          bool have6 = false;
          for (const auto& a : i.value("addresses", std::vector<std::string>{})) {
            auto slash = a.find('/');
            int len = slash == std::string::npos ? 0 : std::atoi(a.c_str() + slash + 1);
            bool v6 = network::is_ipv6(a);
            if (v6 && !have6) {
              e["GlobalIPv6Address"] = a.substr(0, slash);
              e["GlobalIPv6PrefixLen"] = len;
              have6 = true;
            } else if (!v6 && !have4) {
              e["IPAddress"] = a.substr(0, slash);
              e["IPPrefixLen"] = len;
              have4 = true;
            }
          }
          std::string gw = i.value("gateway", "");
          if (!network::is_ipv6(gw)) {
            e["Gateway"] = gw;
          }
          if (have6 && net) {
            for (const auto& sc : net->subnets) {
              if (network::is_ipv6(sc.subnet)) {
                e["IPv6Gateway"] = sc.gateway;
                break;
              }
            }
          }
          e["MacAddress"] = i.value("mac", "");
        }
      }
      if (first) {
        for (const char* k : {"IPAddress", "IPPrefixLen", "Gateway", "MacAddress",
                              "GlobalIPv6Address", "GlobalIPv6PrefixLen", "IPv6Gateway"}) {
          ns[k] = e[k];
        }
        first = false;
      }
      networks[name] = std::move(e);
    }
    ns["Networks"] = std::move(networks);
  }
  out["NetworkSettings"] = std::move(ns);
  out["HostConfig"]["NetworkMode"] = o.network;
  out["HostConfig"]["PortBindings"] = bindings;
  out["HostConfig"]["PublishAllPorts"] = o.net.publish_all;
  out["HostConfig"]["Dns"] = o.net.dns;
  out["HostConfig"]["DnsSearch"] = o.net.dns_search;
  out["HostConfig"]["DnsOptions"] = o.net.dns_options;
  out["HostConfig"]["ExtraHosts"] = o.net.add_hosts;
  if (!o.net.expose.empty() || !ports.empty()) {
    json exposed = json::object();
    for (const auto& [k, v] : port_map.items()) {
      exposed[k] = json::object();
    }
    out["Config"]["ExposedPorts"] = exposed;
  }
}

void net_ps_row(engine::Engine& eng, const ContainerRecord& rec, const ContainerState& st,
                json& row) {
  const auto& o = rec.options;
  Mode m = mode_of(o.network);
  json ports = json::array();
  bool plumbed = managed(m) && (st.status == Status::Running || st.status == Status::Paused);
  json state = plumbed ? read_net_state(eng, rec.id) : json(nullptr);
  if (state.is_object()) {
    ports = state.value("ports", json::array());
  } else {
    for (const auto& p : o.net.publish) {
      if (auto ms = network::parse_publish(p, false)) {
        for (const auto& pm : *ms) {
          ports.push_back(port_json(pm));
        }
      }
    }
  }
  row["Ports"] = ports.empty() ? json(nullptr) : ports;
  json nets = json::array();
  if (m == Mode::Bridge) {
    if (state.is_object()) {
      for (const auto& i : state.value("interfaces", json::array())) {
        nets.push_back(i.value("network", ""));
      }
    } else if (auto list = attach_list(eng, o.net)) {
      for (const auto& a : *list) {
        nets.push_back(a.network);
      }
    }
  }
  row["Networks"] = nets;
}

}  // namespace detail

using namespace detail;

Result<std::vector<PublishedPort>> published_ports(engine::Engine& eng,
                                                   const std::string& name_or_id) {
  BERTH_TRY(auto db, open_db(eng, true));
  BERTH_TRY(auto rec, db->lookup(name_or_id));
  std::vector<PublishedPort> out;
  ContainerState st = read_state(eng.runroot(), rec);
  if (st.status != Status::Running && st.status != Status::Paused) {
    return out;
  }
  json state = read_net_state(eng, rec.id);
  if (!state.is_object()) {
    return out;
  }
  for (const auto& j : state.value("ports", json::array())) {
    auto p = port_from_json(j);
    for (uint32_t i = 0; i < p.range; ++i) {
      out.push_back({p.host_ip.empty() ? "0.0.0.0" : p.host_ip,
                     static_cast<uint16_t>(p.host_port + i),
                     static_cast<uint16_t>(p.container_port + i), p.protocol});
    }
  }
  return out;
}

namespace {

struct Locked {
  std::unique_ptr<ContainerDb> db;
  ContainerRecord rec;
  ContainerLock lock;
};

Result<Locked> lock_container(engine::Engine& eng, const std::string& name_or_id) {
  BERTH_TRY(auto db, open_db(eng, false));
  BERTH_TRY(auto rec, db->lookup(name_or_id));
  BERTH_TRY(auto lock, ContainerLock::acquire(eng.runroot(), rec.id));
  BERTH_TRY(auto fresh, db->lookup(rec.id));
  return Locked{std::move(db), std::move(fresh), std::move(lock)};
}

// The entries of rec's networks with names resolved ("bridge" -> the default network's name).
Result<std::vector<std::pair<std::string, std::string>>> resolved_entries(
    engine::Engine& eng, const ContainerRecord& rec) {
  std::vector<std::string> entries = rec.options.net.networks;
  if (entries.empty() && !rec.options.net.disconnected) {
    entries.push_back("bridge");
  }
  std::vector<std::pair<std::string, std::string>> out;  // (name, entry)
  for (const auto& e : entries) {
    BERTH_TRY(auto a, parse_entry(e));
    out.emplace_back(a.network == "bridge" ? default_network_name(eng) : a.network, e);
  }
  return out;
}

bool plumbed(engine::Engine& eng, const ContainerRecord& rec) {
  ContainerState st = read_state(eng.runroot(), rec);
  return st.status != Status::Exited && st.status != Status::Configured &&
         read_net_state(eng, rec.id).is_object();
}

// Rewrites /etc/hosts and /etc/resolv.conf of a running container from its saved state.
Result<void> refresh_etc_files(engine::Engine& eng, const ContainerRecord& rec, const json& state) {
  BERTH_TRY(auto req, net_request(eng, rec, false));
  return write_etc_files(eng, rec, req, status_from_state(state));
}

}  // namespace

Result<void> network_connect(engine::Engine& eng, const std::string& network,
                             const std::string& name_or_id, const NetworkConnectOptions& o) {
  BERTH_TRY(auto l, lock_container(eng, name_or_id));
  auto& rec = l.rec;
  if (mode_of(rec.options.network) != Mode::Bridge) {
    return fail(Errc::InvalidArgument, "container " + rec.name + " uses network mode " +
                                           rec.options.network +
                                           ": only bridge-mode containers join networks");
  }
  auto store = network::NetworkStore::for_engine(eng);
  BERTH_TRY(auto net, store.get(network));
  BERTH_TRY(auto entries, resolved_entries(eng, rec));
  for (const auto& [name, entry] : entries) {
    if (name == net.name) {
      return fail(Errc::AlreadyExists,
                  "container " + rec.name + " is already connected to network " + net.name);
    }
  }
  std::string entry = net.name;
  std::string opts;
  for (const auto& a : o.aliases) {
    opts += (opts.empty() ? "" : ",") + std::string("alias=") + a;
  }
  if (!o.ip.empty()) {
    opts += (opts.empty() ? "" : ",") + std::string("ip=") + o.ip;
  }
  if (!o.ip6.empty()) {
    BERTH_TRYV(check_static_ip6(net, o.ip6));
    opts += (opts.empty() ? "" : ",") + std::string("ip6=") + o.ip6;
  }
  if (!o.mac.empty()) {
    opts += (opts.empty() ? "" : ",") + std::string("mac=") + o.mac;
  }
  if (!opts.empty()) {
    entry += ":" + opts;
  }
  if (plumbed(eng, rec)) {
    json state = read_net_state(eng, rec.id);
    std::set<std::string> used;
    for (const auto& i : state.value("interfaces", json::array())) {
      used.insert(i.value("name", ""));
    }
    std::string iface;
    for (int i = 0; iface.empty(); ++i) {
      if (used.count("eth" + std::to_string(i)) == 0) {
        iface = "eth" + std::to_string(i);
      }
    }
    // On no network now (its last one disconnected): this one gets the published ports.
    bool first = used.empty();
    BERTH_TRY(auto req, net_request(eng, rec, first));
    if (!first) {
      req.publish_all = false;
    }
    network::NetworkAttachRequest a;
    a.network = net.name;
    a.aliases = o.aliases;
    a.aliases.insert(a.aliases.end(), rec.options.net.aliases.begin(),
                     rec.options.net.aliases.end());
    a.static_ip = o.ip;
    a.static_ip6 = o.ip6;
    a.static_mac = o.mac;
    a.interface_name = iface;
    std::vector<sdk::PortMapping> published;
    BERTH_TRY(auto is, network::connect_network(eng, req, a, &published));
    if (first) {
      json ports_j = json::array();
      for (const auto& p : published) {
        ports_j.push_back(port_json(p));
      }
      state["ports"] = std::move(ports_j);
    }
    state["interfaces"].push_back({{"name", is.name},
                                   {"mac", is.mac},
                                   {"addresses", is.addresses},
                                   {"gateway", is.gateway},
                                   {"network", net.name},
                                   {"aliases", a.aliases}});
    if (net.dns_enabled && !net.subnets.empty()) {
      auto dns = state.value("dns", std::vector<std::string>{});
      if (std::find(dns.begin(), dns.end(), net.subnets.front().gateway) == dns.end()) {
        dns.push_back(net.subnets.front().gateway);
      }
      state["dns"] = dns;
    }
    BERTH_TRYV(write_net_state(eng, rec.id, state));
    BERTH_TRYV(refresh_etc_files(eng, rec, state));
  }
  std::vector<std::string> now;
  for (const auto& [name, e] : entries) {
    now.push_back(e);
  }
  now.push_back(entry);
  rec.options.net.networks = now;
  rec.options.net.disconnected = false;
  return l.db->update(rec);
}

Result<void> network_disconnect(engine::Engine& eng, const std::string& network,
                                const std::string& name_or_id, bool force) {
  BERTH_TRY(auto l, lock_container(eng, name_or_id));
  auto& rec = l.rec;
  if (mode_of(rec.options.network) != Mode::Bridge) {
    return fail(Errc::InvalidArgument, "container " + rec.name + " uses network mode " +
                                           rec.options.network + ": it is on no network");
  }
  auto store = network::NetworkStore::for_engine(eng);
  auto got = store.get(network);
  std::string name = got ? got->name : network;
  if (!got && !force) {
    return fail(std::move(got).error());
  }
  BERTH_TRY(auto entries, resolved_entries(eng, rec));
  std::vector<std::string> keep;
  bool found = false;
  for (const auto& [n, e] : entries) {
    if (n == name) {
      found = true;
    } else {
      keep.push_back(e);
    }
  }
  if (!found && !force) {
    return fail(Errc::NotFound, "container " + rec.name + " is not connected to network " + name);
  }
  if (found) {
    rec.options.net.networks = keep;
    // The last one gone, the container stays in bridge mode with loopback only (an empty list
    // alone would mean the default network at the next start), as Docker and Podman.
    rec.options.net.disconnected = keep.empty();
  }
  if (plumbed(eng, rec)) {
    BERTH_TRY(auto req, net_request(eng, rec, false));
    BERTH_TRYV(network::disconnect_network(eng, req, name));
    json state = read_net_state(eng, rec.id);
    json ifaces = json::array();
    bool first = true;
    bool ports_gone = false;
    for (const auto& i : state.value("interfaces", json::array())) {
      if (i.value("network", "") != name) {
        ifaces.push_back(i);
      } else if (first) {
        // The ports were forwarded to the first network's address: they went with it.
        ports_gone = true;
      }
      first = false;
    }
    state["interfaces"] = ifaces;
    if (ports_gone) {
      json ports = state.value("ports", json::array());
      state["ports"] = json::array();
      if (!ports.empty() && !ifaces.empty()) {
        // To the network now first, as Docker moves them to its new gateway endpoint; the
        // same host ports.
        req.ports.clear();
        for (const auto& p : ports) {
          req.ports.push_back(port_from_json(p));
        }
        auto moved = network::forward_ports(eng, req, ifaces.front().value("network", ""));
        if (moved) {
          state["ports"] = std::move(ports);
        } else {
          spdlog::warn("container {}: its published ports are no longer forwarded: {}", rec.name,
                       moved.error().message());
        }
      }
    }
    if (got && got->dns_enabled && !got->subnets.empty()) {
      auto dns = state.value("dns", std::vector<std::string>{});
      std::erase(dns, got->subnets.front().gateway);
      state["dns"] = dns;
    }
    BERTH_TRYV(write_net_state(eng, rec.id, state));
    BERTH_TRYV(refresh_etc_files(eng, rec, state));
  }
  if (!found) {
    return {};
  }
  return l.db->update(rec);
}

void register_network_users(engine::Engine& eng) {
  engine::Engine* e = &eng;
  network::NetworkUsers users;
  users.list = [e](const std::string& net) {
    std::vector<std::string> out;
    auto recs = records(*e);
    if (!recs) {
      return out;
    }
    for (const auto& r : *recs) {
      if (mode_of(r.options.network) != Mode::Bridge) {
        continue;
      }
      if (auto entries = resolved_entries(*e, r)) {
        for (const auto& [name, entry] : *entries) {
          if (name == net) {
            out.push_back(r.name);
          }
        }
      }
    }
    return out;
  };
  users.remove = [e](const std::vector<std::string>& names) -> Result<void> {
    RemoveOptions ro;
    ro.force = true;
    for (const auto& n : names) {
      auto r = remove(*e, n, ro);
      if (!r && r.error().code() != Errc::NotFound) {
        return r;
      }
    }
    return {};
  };
  network::set_network_users(std::move(users));
}

}  // namespace berth::container
