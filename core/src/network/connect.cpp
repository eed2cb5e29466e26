// connect_container / disconnect_container / reload_networks: IPAM in the core, plumbing in the
// drivers.
#include <sys/stat.h>

#include <algorithm>
#include <set>

#include "berth/engine/engine.hpp"
#include "berth/network/network.hpp"
#include "berth/util/log.hpp"
#include "file_lock.hpp"
#include "internal.hpp"

namespace berth::network {

namespace fs = std::filesystem;

namespace {

struct Planned {
  Network network;
  std::string driver;
  sdk::Attachment attachment;
  bool leased = false;
};

// The driver that plumbs `n` for this engine: rootless has no bridge, so slirp stands in (the
// default where no bridge can be made).
std::string driver_for(const engine::Engine& engine, const Network& n) {
  const auto& backend = engine.config().containers.network.network_backend;
  if (n.is_default && (backend == "slirp" || backend == "pasta" || backend == "slirp4netns")) {
    return "slirp";
  }
  if (n.driver == "bridge" && engine.rootless()) {
    return "slirp";
  }
  return n.driver;
}

Result<sdk::NetworkDriverPtr> make_driver(engine::Engine& engine, const std::string& name) {
  sdk::PluginContext ctx;
  ctx.home = (fs::path(engine.graphroot()) / "networks").string();
  ctx.run_root = engine.runroot();
  BERTH_TRY(auto fw, firewall_driver(engine.config().containers));
  nlohmann::json opts = {
      {"dns_bind_port", engine.config().containers.network.dns_bind_port},
      {"firewall_driver", fw},
      {"default_network", NetworkStore::default_network(engine.config().containers).name}};
  ctx.options_json = opts.dump();
  ctx.rootless = engine.rootless();
  auto d = engine.plugins().create<sdk::NetworkDriver>(name, ctx);
  if (!d) {
    return fail(std::move(d).error().wrap("network driver " + name));
  }
  return std::move(*d);
}

bool uses_ipam(const std::string& driver) {
  return driver == "bridge";
}

// The names a lease gives the DNS responder besides the container's name and short id: the
// aliases and, as Docker's (API 1.44 DNSNames), the hostname.
std::vector<std::string> lease_aliases(std::vector<std::string> aliases,
                                       const ContainerNetRequest& req) {
  if (!req.hostname.empty() && req.hostname != req.container_id.substr(0, 12) &&
      req.hostname != req.container_name &&
      std::find(aliases.begin(), aliases.end(), req.hostname) == aliases.end()) {
    aliases.push_back(req.hostname);
  }
  return aliases;
}

// `tolerant` (teardown): networks removed since the container was connected are skipped.
Result<std::vector<Planned>> resolve(engine::Engine& engine, NetworkStore& store,
                                     const ContainerNetRequest& req, bool tolerant = false) {
  if (!req.user_mode.empty()) {
    if (req.user_mode != "slirp4netns" && req.user_mode != "pasta") {
      return fail(Errc::InvalidArgument,
                  "unknown user-mode network " + req.user_mode + " (use slirp4netns or pasta)");
    }
    Planned p;
    p.network.name = req.user_mode;
    p.network.driver = "slirp";
    p.driver = "slirp";
    p.attachment.network.name = req.user_mode;
    p.attachment.network.driver = "slirp";
    p.attachment.interface_name = "tap0";
    return std::vector<Planned>{std::move(p)};
  }
  if (req.no_networks && req.networks.empty()) {
    return std::vector<Planned>{};
  }
  std::vector<NetworkAttachRequest> nets = req.networks;
  if (nets.empty()) {
    NetworkAttachRequest def;
    def.network = NetworkStore::default_network(engine.config().containers).name;
    nets.push_back(def);
  }
  std::vector<Planned> out;
  std::set<std::string> seen;
  for (size_t i = 0; i < nets.size(); ++i) {
    auto got = store.get(nets[i].network);
    if (!got && tolerant && got.error().code() == Errc::NotFound) {
      continue;
    }
    BERTH_TRY(auto n, std::move(got));
    if (!seen.insert(n.name).second) {
      return fail(Errc::InvalidArgument, "network " + n.name + " is given twice");
    }
    Planned p;
    p.network = n;
    p.driver = driver_for(engine, n);
    p.attachment.network = to_driver_config(n);
    p.attachment.interface_name =
        nets[i].interface_name.empty() ? "eth" + std::to_string(i) : nets[i].interface_name;
    p.attachment.mac = nets[i].static_mac;
    p.attachment.aliases = nets[i].aliases;
    out.push_back(std::move(p));
  }
  return out;
}

sdk::SetupRequest request_for(const ContainerNetRequest& req,
                              const std::vector<sdk::Attachment>& atts,
                              const std::vector<sdk::PortMapping>& ports) {
  sdk::SetupRequest r;
  r.container_id = req.container_id;
  r.container_name = req.container_name;
  r.netns_path = req.netns_path;
  r.attachments = atts;
  r.ports = ports;
  return r;
}

// A published port held by another container's DNAT rule has no listening socket to collide
// with, so the leases of every network are checked too. Host ports left to berth (`-p 80`, -P)
// are picked here, under the ports lock, away from those.
Result<void> check_ports(NetworkStore& store, const ContainerNetRequest& req,
                         std::vector<sdk::PortMapping>& ports) {
  struct Held {
    sdk::PortMapping port;
    std::string by;
  };
  std::vector<Held> held;
  BERTH_TRY(auto all, store.list());
  for (const auto& n : all) {
    Ipam ipam(store.lease_file(n.name), n);
    BERTH_TRY(auto leases, ipam.leases());
    for (const auto& l : leases) {
      if (l.container_id == req.container_id) {
        continue;
      }
      for (const auto& theirs : l.ports) {
        held.push_back({theirs, l.container_name.empty() ? l.container_id : l.container_name});
      }
    }
  }
  BERTH_TRYV(pick_host_ports(ports, [&](const sdk::PortMapping& m) {
    return std::any_of(held.begin(), held.end(),
                       [&](const Held& h) { return overlaps(h.port, m); });
  }));
  for (size_t i = 0; i < ports.size(); ++i) {
    for (size_t j = 0; j < i; ++j) {
      if (overlaps(ports[i], ports[j])) {
        return fail(Errc::Conflict, "host port " + std::to_string(ports[i].host_port) + "/" +
                                        ports[i].protocol + " is published twice");
      }
    }
  }
  for (const auto& h : held) {
    for (const auto& mine : ports) {
      if (overlaps(h.port, mine)) {
        return fail(Errc::Conflict, "cannot publish port " + std::to_string(mine.host_port) + "/" +
                                        mine.protocol + ": it is already published by container " +
                                        h.by + " (pick another host port)");
      }
    }
  }
  for (const auto& m : ports) {
    BERTH_TRYV(check_host_port_free(m));
  }
  return {};
}

}  // namespace

Result<sdk::SetupStatus> connect_container(engine::Engine& engine, const ContainerNetRequest& req,
                                           std::vector<sdk::PortMapping>* published) {
  if (req.container_id.empty() || req.netns_path.empty()) {
    return fail(Errc::InvalidArgument, "connect container: container id and netns path needed");
  }
  auto store = NetworkStore::for_engine(engine);
  BERTH_TRY(auto plan, resolve(engine, store, req));
  if (plan.empty()) {
    // No network: loopback only (create_netns brought it up), nothing to forward ports to.
    if (published != nullptr) {
      published->clear();
    }
    return sdk::SetupStatus{};
  }
  std::vector<sdk::PortMapping> ports = req.ports;
  if (req.publish_all) {
    BERTH_TRY(auto more, publish_all_ports(req.exposed_ports));
    ports.insert(ports.end(), more.begin(), more.end());
  }

  // Leases (under the ports lock, so two containers cannot claim one host port).
  auto release_all = [&] {
    for (auto& p : plan) {
      if (p.leased) {
        Ipam ipam(store.lease_file(p.network.name), p.network);
        if (auto r = ipam.release(req.container_id); !r) {
          spdlog::warn("release lease: {}", r.error().message());
        }
      }
    }
  };
  {
    BERTH_TRY(auto lock, FileLock::acquire(store.lease_dir() / "ports.lock"));
    if (!ports.empty()) {
      BERTH_TRYV(check_ports(store, req, ports));
    }
    for (size_t i = 0; i < plan.size(); ++i) {
      auto& p = plan[i];
      if (!uses_ipam(p.driver)) {
        continue;
      }
      Lease want;
      want.container_id = req.container_id;
      want.container_name = req.container_name;
      want.mac = p.attachment.mac;
      want.interface_name = p.attachment.interface_name;
      want.aliases = lease_aliases(p.attachment.aliases, req);
      want.netns = req.netns_path;
      if (i == 0) {
        want.ports = ports;
      }
      const auto& nets = req.networks;
      if (i < nets.size()) {
        want.ip = nets[i].static_ip;
        want.ip6 = nets[i].static_ip6;
      }
      Ipam ipam(store.lease_file(p.network.name), p.network);
      auto lease = ipam.allocate(want);
      if (!lease) {
        release_all();
        return fail(std::move(lease).error());
      }
      p.leased = true;
      p.attachment.addresses = lease->addresses();
    }
  }

  // One setup call per driver, in the order the networks were given. Ports go to the driver of
  // the first network only.
  std::vector<std::string> order;
  for (const auto& p : plan) {
    if (std::find(order.begin(), order.end(), p.driver) == order.end()) {
      order.push_back(p.driver);
    }
  }
  sdk::SetupStatus status;
  std::vector<std::pair<sdk::NetworkDriverPtr, sdk::SetupRequest>> done;
  for (const auto& name : order) {
    std::vector<sdk::Attachment> atts;
    for (const auto& p : plan) {
      if (p.driver == name) {
        atts.push_back(p.attachment);
      }
    }
    auto setup_req = request_for(
        req, atts, name == plan.front().driver ? ports : std::vector<sdk::PortMapping>{});
    auto driver = make_driver(engine, name);
    Result<sdk::SetupStatus> st = driver
                                      ? (*driver)->setup(setup_req)
                                      : Result<sdk::SetupStatus>(std::unexpected(driver.error()));
    if (!st) {
      if (driver) {
        (void)(*driver)->teardown(setup_req);
      }
      for (auto& [d, r] : done) {
        (void)d->teardown(r);
      }
      release_all();
      return fail(std::move(st).error().wrap(
          "set up network for container " +
          (req.container_name.empty() ? req.container_id : req.container_name)));
    }
    status.interfaces.insert(status.interfaces.end(), st->interfaces.begin(), st->interfaces.end());
    status.dns_servers.insert(status.dns_servers.end(), st->dns_servers.begin(),
                              st->dns_servers.end());
    done.emplace_back(std::move(*driver), std::move(setup_req));
  }
  if (published != nullptr) {
    *published = ports;
  }
  return status;
}

Result<void> disconnect_container(engine::Engine& engine, const ContainerNetRequest& req) {
  auto store = NetworkStore::for_engine(engine);
  BERTH_TRY(auto plan, resolve(engine, store, req, true));
  std::vector<sdk::PortMapping> ports = req.ports;
  for (auto& p : plan) {
    if (!uses_ipam(p.driver)) {
      continue;
    }
    Ipam ipam(store.lease_file(p.network.name), p.network);
    BERTH_TRY(auto leases, ipam.leases());
    for (const auto& l : leases) {
      if (l.container_id == req.container_id) {
        p.attachment.addresses = l.addresses();
        p.attachment.interface_name = l.interface_name;
        if (!l.ports.empty()) {
          ports = l.ports;
        }
      }
    }
  }
  std::optional<Error> first_error;
  std::vector<std::string> order;
  for (const auto& p : plan) {
    if (std::find(order.begin(), order.end(), p.driver) == order.end()) {
      order.push_back(p.driver);
    }
  }
  for (const auto& name : order) {
    std::vector<sdk::Attachment> atts;
    for (const auto& p : plan) {
      if (p.driver == name) {
        atts.push_back(p.attachment);
      }
    }
    auto d = make_driver(engine, name);
    Result<void> r = d ? (*d)->teardown(request_for(req, atts, ports))
                       : Result<void>(std::unexpected(d.error()));
    if (!r && !first_error) {
      first_error = r.error();
    }
  }
  for (auto& p : plan) {
    if (uses_ipam(p.driver)) {
      Ipam ipam(store.lease_file(p.network.name), p.network);
      auto r = ipam.release(req.container_id);
      if (!r && !first_error) {
        first_error = r.error();
      }
    }
  }
  if (first_error) {
    return fail(std::move(*first_error)
                    .wrap("tear down network of container " +
                          (req.container_name.empty() ? req.container_id : req.container_name)));
  }
  return {};
}

Result<sdk::InterfaceStatus> connect_network(engine::Engine& engine, const ContainerNetRequest& req,
                                             const NetworkAttachRequest& net,
                                             std::vector<sdk::PortMapping>* published) {
  if (req.container_id.empty() || req.netns_path.empty() || net.interface_name.empty()) {
    return fail(Errc::InvalidArgument,
                "connect network: container id, netns path and interface name needed");
  }
  auto store = NetworkStore::for_engine(engine);
  ContainerNetRequest one = req;
  one.user_mode.clear();
  one.networks = {net};
  BERTH_TRY(auto plan, resolve(engine, store, one));
  Planned& p = plan.front();
  if (!uses_ipam(p.driver)) {
    return fail(Errc::NotSupported, "network " + p.network.name + " uses the " + p.driver +
                                        " driver, which cannot be added to a running container");
  }
  std::vector<sdk::PortMapping> ports = req.ports;
  if (req.publish_all) {
    BERTH_TRY(auto more, publish_all_ports(req.exposed_ports));
    ports.insert(ports.end(), more.begin(), more.end());
  }
  Ipam ipam(store.lease_file(p.network.name), p.network);
  // Under the ports lock, as connect_container, when there are ports to claim.
  std::optional<FileLock> ports_lock;
  if (!ports.empty()) {
    BERTH_TRY(auto lock, FileLock::acquire(store.lease_dir() / "ports.lock"));
    ports_lock.emplace(std::move(lock));
    BERTH_TRYV(check_ports(store, req, ports));
  }
  BERTH_TRY(auto existing, ipam.leases());
  for (const auto& l : existing) {
    if (l.container_id == req.container_id) {
      return fail(Errc::AlreadyExists, "container " + req.container_name +
                                           " is already connected to network " + p.network.name);
    }
  }
  Lease want;
  want.container_id = req.container_id;
  want.container_name = req.container_name;
  want.mac = net.static_mac;
  want.interface_name = net.interface_name;
  want.aliases = lease_aliases(net.aliases, req);
  want.netns = req.netns_path;
  want.ip = net.static_ip;
  want.ip6 = net.static_ip6;
  want.ports = ports;
  BERTH_TRY(auto lease, ipam.allocate(want));
  ports_lock.reset();
  p.attachment.addresses = lease.addresses();
  p.attachment.interface_name = net.interface_name;
  auto setup_req = request_for(req, {p.attachment}, ports);
  auto driver = make_driver(engine, p.driver);
  Result<sdk::SetupStatus> st = driver ? (*driver)->setup(setup_req)
                                       : Result<sdk::SetupStatus>(std::unexpected(driver.error()));
  if (!st || st->interfaces.empty()) {
    if (driver) {
      (void)(*driver)->teardown(setup_req);
    }
    (void)ipam.release(req.container_id);
    if (!st) {
      return fail(std::move(st).error().wrap("connect container " + req.container_name +
                                             " to network " + p.network.name));
    }
    return fail(Errc::Internal, "network driver " + p.driver + " reported no interface");
  }
  if (published != nullptr) {
    *published = ports;
  }
  return st->interfaces.front();
}

namespace {
// The container's request narrowed to `network` (by name), without user-mode networking.
ContainerNetRequest on_one_network(const ContainerNetRequest& req, const std::string& network) {
  ContainerNetRequest one = req;
  one.user_mode.clear();
  NetworkAttachRequest a;
  a.network = network;
  one.networks = {a};
  return one;
}
}  // namespace

Result<void> disconnect_network(engine::Engine& engine, const ContainerNetRequest& req,
                                const std::string& network) {
  auto store = NetworkStore::for_engine(engine);
  BERTH_TRY(auto plan, resolve(engine, store, on_one_network(req, network), true));
  if (plan.empty()) {
    return {};
  }
  Planned& p = plan.front();
  if (!uses_ipam(p.driver)) {
    return {};
  }
  Ipam ipam(store.lease_file(p.network.name), p.network);
  BERTH_TRY(auto leases, ipam.leases());
  std::vector<sdk::PortMapping> ports;
  bool found = false;
  for (const auto& l : leases) {
    if (l.container_id == req.container_id) {
      p.attachment.addresses = l.addresses();
      p.attachment.interface_name = l.interface_name;
      ports = l.ports;
      found = true;
    }
  }
  if (!found) {
    return {};
  }
  BERTH_TRY(auto driver, make_driver(engine, p.driver));
  auto r = driver->teardown(request_for(req, {p.attachment}, ports));
  if (!r) {
    return fail(std::move(r).error().wrap("disconnect container " + req.container_name +
                                          " from network " + p.network.name));
  }
  return ipam.release(req.container_id);
}

Result<void> forward_ports(engine::Engine& engine, const ContainerNetRequest& req,
                           const std::string& network) {
  if (req.ports.empty()) {
    return {};
  }
  auto store = NetworkStore::for_engine(engine);
  BERTH_TRY(auto plan, resolve(engine, store, on_one_network(req, network)));
  Planned& p = plan.front();
  if (!uses_ipam(p.driver)) {
    return fail(Errc::NotSupported, "network " + p.network.name + " uses the " + p.driver +
                                        " driver, which cannot take ports of a running container");
  }
  Ipam ipam(store.lease_file(p.network.name), p.network);
  BERTH_TRY(auto lock, FileLock::acquire(store.lease_dir() / "ports.lock"));
  auto ports = req.ports;  // already forwarded elsewhere: no host port left to pick
  BERTH_TRYV(check_ports(store, req, ports));
  BERTH_TRY(auto leases, ipam.leases());
  auto mine = std::find_if(leases.begin(), leases.end(),
                           [&](const Lease& l) { return l.container_id == req.container_id; });
  if (mine == leases.end()) {
    return fail(Errc::NotFound, "container " + req.container_name + " has no address on network " +
                                    p.network.name + " to forward its ports to");
  }
  Lease lease = *mine;
  lease.ports = req.ports;
  BERTH_TRYV(ipam.update(lease));
  sdk::Attachment a = p.attachment;
  a.addresses = lease.addresses();
  a.mac = lease.mac;
  a.interface_name = lease.interface_name;
  a.aliases = lease.aliases;
  // setup() of an attachment already plumbed keeps its link and applies the rules (as reload).
  auto driver = make_driver(engine, p.driver);
  Result<sdk::SetupStatus> st = driver ? (*driver)->setup(request_for(req, {a}, req.ports))
                                       : Result<sdk::SetupStatus>(std::unexpected(driver.error()));
  if (!st) {
    lease.ports.clear();
    if (auto r = ipam.update(lease); !r) {
      spdlog::warn("{}", r.error().message());
    }
    return fail(std::move(st).error().wrap("forward the ports of container " + req.container_name +
                                           " on network " + p.network.name));
  }
  return {};
}

Result<std::vector<std::string>> reload_networks(engine::Engine& engine) {
  auto store = NetworkStore::for_engine(engine);
  BERTH_TRY(auto all, store.list());
  std::vector<std::string> reloaded;
  for (const auto& n : all) {
    std::string dname = driver_for(engine, n);
    if (!uses_ipam(dname)) {
      continue;
    }
    Ipam ipam(store.lease_file(n.name), n);
    BERTH_TRY(auto leases, ipam.leases());
    if (leases.empty()) {
      continue;
    }
    BERTH_TRY(auto driver, make_driver(engine, dname));
    for (const auto& l : leases) {
      struct stat st {};
      if (l.netns.empty() || ::stat(l.netns.c_str(), &st) != 0) {
        continue;
      }
      sdk::Attachment a;
      a.network = to_driver_config(n);
      a.addresses = l.addresses();
      a.mac = l.mac;
      a.interface_name = l.interface_name;
      a.aliases = l.aliases;
      ContainerNetRequest cr;
      cr.container_id = l.container_id;
      cr.container_name = l.container_name;
      cr.netns_path = l.netns;
      // setup() of an already plumbed namespace keeps the links and re-applies the rules.
      auto r = driver->setup(request_for(cr, {a}, l.ports));
      if (!r) {
        return fail(std::move(r).error().wrap("reload network " + n.name + " for container " +
                                              l.container_id));
      }
      reloaded.push_back(l.container_id);
    }
  }
  return reloaded;
}

Result<Network> create_network(engine::Engine& engine, const CreateOptions& opts) {
  std::string driver = opts.driver.empty() ? "bridge" : opts.driver;
  if (engine.plugins().find(sdk::NetworkDriver::kKind, driver) == nullptr) {
    return fail(Errc::InvalidArgument, "unsupported driver " + driver +
                                           ": no network driver plugin of that name (see "
                                           "`berth plugin ls`)");
  }
  auto store = NetworkStore::for_engine(engine);
  return store.create(opts);
}

}  // namespace berth::network
