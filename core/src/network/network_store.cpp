// Network configs: one JSON file per network in network_config_dir, in netavark's shape, and the
// implicit default network.
#include <algorithm>
#include <chrono>
#include <ctime>
#include <mutex>
#include <regex>
#include <set>

#include "berth/engine/engine.hpp"
#include "berth/network/network.hpp"
#include "berth/util/digest.hpp"
#include "berth/util/fs.hpp"
#include "file_lock.hpp"

namespace berth::network {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

NetworkUsers& users_hook() {
  static NetworkUsers hook;
  return hook;
}

std::string now_rfc3339() {
  auto now = std::chrono::system_clock::now();
  std::time_t t = std::chrono::system_clock::to_time_t(now);
  auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(now.time_since_epoch()).count() %
            1000000000;
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[64];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  char frac[16];
  std::snprintf(frac, sizeof frac, ".%09lldZ", static_cast<long long>(ns));
  return std::string(buf) + frac;
}

bool valid_name(const std::string& name) {
  static const std::regex re("^[a-zA-Z0-9][a-zA-Z0-9_.-]*$");
  return name.size() <= 200 && std::regex_match(name, re);
}

// Checks one subnet of a new network and fills its gateway and lease range.
Result<SubnetConfig> make_subnet(const std::string& cidr, const std::string& gateway,
                                 const std::string& range) {
  BERTH_TRY(auto net, Ipv4Net::parse(cidr));
  if (net.prefix > 30) {
    return fail(Errc::InvalidArgument, "subnet " + cidr +
                                           " is too small: it must have room for a gateway and a "
                                           "container (/30 or larger)");
  }
  SubnetConfig sc;
  sc.subnet = net.str();
  uint32_t gw = net.addr + 1;
  if (!gateway.empty()) {
    BERTH_TRY(gw, parse_ipv4(gateway));
    if (!net.contains(gw) || gw == net.addr || gw == net.broadcast()) {
      return fail(Errc::InvalidArgument,
                  "gateway " + gateway + " is not a host address of subnet " + sc.subnet);
    }
  }
  sc.gateway = format_ipv4(gw);
  if (!range.empty()) {
    uint32_t start = 0;
    uint32_t end = 0;
    if (auto dash = range.find('-'); dash != std::string::npos) {
      BERTH_TRY(start, parse_ipv4(range.substr(0, dash)));
      BERTH_TRY(end, parse_ipv4(range.substr(dash + 1)));
    } else {
      BERTH_TRY(auto r, Ipv4Net::parse(range));
      start = r.addr;
      end = r.broadcast();
    }
    start = std::max(start, net.addr + 1);
    end = std::min(end, net.broadcast() - 1);
    if (!net.contains(start) || !net.contains(end) || start > end) {
      return fail(Errc::InvalidArgument,
                  "ip range " + range + " is not inside subnet " + sc.subnet);
    }
    sc.lease_range = {format_ipv4(start), format_ipv4(end)};
  }
  return sc;
}

// The IPv6 counterpart of make_subnet (no broadcast address; the subnet-router anycast address,
// the network address, is never handed out).
Result<SubnetConfig> make_subnet6(const std::string& cidr, const std::string& gateway,
                                  const std::string& range) {
  BERTH_TRY(auto net, Ipv6Net::parse(cidr));
  if (net.prefix > 126) {
    return fail(Errc::InvalidArgument, "subnet " + cidr +
                                           " is too small: it must have room for a gateway and a "
                                           "container (/126 or larger)");
  }
  SubnetConfig sc;
  sc.subnet = net.str();
  Uint128 gw = net.addr + 1;
  if (!gateway.empty()) {
    BERTH_TRY(gw, parse_ipv6(gateway));
    if (!net.contains(gw) || gw == net.addr) {
      return fail(Errc::InvalidArgument,
                  "gateway " + gateway + " is not a host address of subnet " + sc.subnet);
    }
  }
  sc.gateway = format_ipv6(gw);
  if (!range.empty()) {
    Uint128 start = 0;
    Uint128 end = 0;
    if (auto dash = range.find('-'); dash != std::string::npos) {
      BERTH_TRY(start, parse_ipv6(range.substr(0, dash)));
      BERTH_TRY(end, parse_ipv6(range.substr(dash + 1)));
    } else {
      BERTH_TRY(auto r, Ipv6Net::parse(range));
      start = r.addr;
      end = r.last();
    }
    start = std::max(start, net.addr + 1);
    end = std::min(end, net.last());
    if (!net.contains(start) || !net.contains(end) || start > end) {
      return fail(Errc::InvalidArgument,
                  "ip range " + range + " is not inside subnet " + sc.subnet);
    }
    sc.lease_range = {format_ipv6(start), format_ipv6(end)};
  }
  return sc;
}

}  // namespace

void set_network_users(NetworkUsers users) {
  users_hook() = std::move(users);
}

json to_json(const Network& n) {
  json subnets = json::array();
  for (const auto& s : n.subnets) {
    json js = {{"subnet", s.subnet}, {"gateway", s.gateway}};
    if (!s.lease_range.start_ip.empty()) {
      js["lease_range"] = {{"start_ip", s.lease_range.start_ip}, {"end_ip", s.lease_range.end_ip}};
    }
    subnets.push_back(js);
  }
  json j = {{"name", n.name},
            {"id", n.id},
            {"driver", n.driver},
            {"network_interface", n.network_interface},
            {"created", n.created},
            {"subnets", subnets},
            {"ipv6_enabled", n.ipv6_enabled},
            {"internal", n.internal},
            {"dns_enabled", n.dns_enabled},
            {"ipam_options", n.ipam_options}};
  if (!n.options.empty()) {
    j["options"] = n.options;
  }
  if (!n.labels.empty()) {
    j["labels"] = n.labels;
  }
  return j;
}

Result<Network> network_from_json(const json& j, std::string_view file) {
  try {
    Network n;
    n.name = j.at("name").get<std::string>();
    n.id = j.value("id", "");
    n.driver = j.value("driver", "bridge");
    n.network_interface = j.value("network_interface", "");
    n.created = j.value("created", "");
    if (j.contains("subnets") && j["subnets"].is_array()) {
      for (const auto& s : j["subnets"]) {
        SubnetConfig sc;
        sc.subnet = s.at("subnet").get<std::string>();
        sc.gateway = s.value("gateway", "");
        if (s.contains("lease_range")) {
          sc.lease_range.start_ip = s["lease_range"].value("start_ip", "");
          sc.lease_range.end_ip = s["lease_range"].value("end_ip", "");
        }
        n.subnets.push_back(sc);
      }
    }
    n.ipv6_enabled = j.value("ipv6_enabled", false);
    n.internal = j.value("internal", false);
    n.dns_enabled = j.value("dns_enabled", false);
    if (j.contains("options")) {
      n.options = j["options"].get<std::map<std::string, std::string>>();
    }
    if (j.contains("labels")) {
      n.labels = j["labels"].get<std::map<std::string, std::string>>();
    }
    if (j.contains("ipam_options")) {
      n.ipam_options = j["ipam_options"].get<std::map<std::string, std::string>>();
    }
    return n;
  } catch (const json::exception& e) {
    return fail(Errc::Corrupt, "network config " + std::string(file) + ": " + e.what() +
                                   " (fix or remove the file)");
  }
}

sdk::NetworkConfig to_driver_config(const Network& n) {
  sdk::NetworkConfig c;
  c.name = n.name;
  c.id = n.id;
  c.driver = n.driver;
  c.interface = n.network_interface;
  for (const auto& s : n.subnets) {
    c.subnets.push_back({s.subnet, s.gateway});
  }
  c.internal = n.internal;
  c.ipv6 = n.ipv6_enabled;
  c.dns_enabled = n.dns_enabled;
  if (auto it = n.options.find("mtu"); it != n.options.end()) {
    try {
      c.mtu = static_cast<uint32_t>(std::stoul(it->second));
    } catch (const std::exception&) {
      c.mtu = 0;
    }
  }
  c.options_json = json(n.options).dump();
  return c;
}

NetworkStore::NetworkStore(fs::path config_dir, fs::path lease_dir, Network default_network,
                           std::vector<config::SubnetPool> pools)
    : config_dir_(std::move(config_dir)),
      lease_dir_(std::move(lease_dir)),
      default_(std::move(default_network)),
      pools_(std::move(pools)) {}

Network NetworkStore::default_network(const config::ContainersConfig& cfg) {
  Network n;
  bool named = cfg.sources.count("network.default_network") != 0;
  n.name = named ? cfg.network.default_network : "berth";
  // The id is the name's sha256, as Podman's; the usual one spelt out, so that a container start
  // on the default network does not load libcrypto for it.
  n.id = n.name == "berth" ? "5c2f64c7f21efd5fb5e3d6a499abe5eacb248ae6f6f0085387c9a056d10ef5fd"
                           : util::sha256_digest(n.name).substr(7);
  n.driver = "bridge";
  n.network_interface = "berth0";
  n.created = now_rfc3339();
  auto net = Ipv4Net::parse(cfg.network.default_subnet);
  std::string subnet = net ? net->str() : "10.88.0.0/16";
  std::string gw = net ? format_ipv4(net->addr + 1) : "10.88.0.1";
  n.subnets.push_back({subnet, gw, {}});
  n.dns_enabled = false;
  n.is_default = true;
  return n;
}

NetworkStore NetworkStore::for_engine(const engine::Engine& engine) {
  const auto& cfg = engine.config().containers;
  fs::path dir = cfg.network.network_config_dir.empty() ? fs::path(engine.graphroot()) / "networks"
                                                        : fs::path(cfg.network.network_config_dir);
  return NetworkStore(dir, fs::path(engine.runroot()) / "networks", default_network(cfg),
                      cfg.network.default_subnet_pools);
}

fs::path NetworkStore::lease_file(const std::string& network) const {
  return lease_dir_ / (network + ".json");
}

Result<Network> NetworkStore::read_file(const fs::path& file) const {
  BERTH_TRY(auto text, util::read_file(file));
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded()) {
    return fail(Errc::Corrupt,
                "network config " + file.string() + " is not valid JSON (fix or remove it)");
  }
  return network_from_json(j, file.string());
}

Result<std::vector<Network>> NetworkStore::list() const {
  std::vector<Network> out;
  bool default_has_file = false;
  std::error_code ec;
  if (fs::is_directory(config_dir_, ec)) {
    std::vector<fs::path> files;
    for (const auto& e : fs::directory_iterator(config_dir_, ec)) {
      if (e.path().extension() == ".json") {
        files.push_back(e.path());
      }
    }
    std::sort(files.begin(), files.end());
    for (const auto& f : files) {
      BERTH_TRY(auto n, read_file(f));
      if (n.name == default_.name) {
        default_has_file = true;
        n.is_default = true;
      }
      out.push_back(std::move(n));
    }
  }
  if (!default_has_file) {
    out.insert(out.begin(), default_);
  }
  return out;
}

Result<Network> NetworkStore::get(const std::string& name_or_id) const {
  BERTH_TRY(auto all, list());
  for (const auto& n : all) {
    if (n.name == name_or_id || n.id == name_or_id) {
      return n;
    }
  }
  const Network* hit = nullptr;
  for (const auto& n : all) {
    if (!name_or_id.empty() && n.id.starts_with(name_or_id)) {
      if (hit != nullptr) {
        return fail(Errc::InvalidArgument, "network id prefix " + name_or_id +
                                               " is ambiguous: give more characters or the name");
      }
      hit = &n;
    }
  }
  if (hit != nullptr) {
    return *hit;
  }
  return fail(Errc::NotFound, "unable to find network with name or ID " + name_or_id +
                                  ": network not found (see `berth network ls`)");
}

Result<Network> NetworkStore::create(const CreateOptions& opts) {
  BERTH_TRY(auto lock, FileLock::acquire(config_dir_ / ".lock"));
  BERTH_TRY(auto all, list());
  std::set<std::string> names;
  std::set<std::string> ifaces;
  std::vector<std::pair<Ipv4Net, std::string>> used;
  std::vector<std::pair<Ipv6Net, std::string>> used6;
  for (const auto& n : all) {
    names.insert(n.name);
    ifaces.insert(n.network_interface);
    for (const auto& s : n.subnets) {
      if (is_ipv6(s.subnet)) {
        if (auto p = Ipv6Net::parse(s.subnet)) {
          used6.emplace_back(*p, n.name);
        }
      } else if (auto p = Ipv4Net::parse(s.subnet)) {
        used.emplace_back(*p, n.name);
      }
    }
  }
  Network n;
  n.name = opts.name;
  if (n.name.empty()) {
    for (int i = 1;; ++i) {
      n.name = "berth" + std::to_string(i);
      if (names.count(n.name) == 0) {
        break;
      }
    }
  }
  if (!valid_name(n.name)) {
    return fail(
        Errc::InvalidArgument,
        "network name " + n.name + " is invalid: names must match [a-zA-Z0-9][a-zA-Z0-9_.-]*");
  }
  if (names.count(n.name) != 0) {
    if (opts.ignore_existing) {
      return get(n.name);
    }
    return fail(Errc::AlreadyExists, "network name " + n.name +
                                         " already used: network already exists (remove it or "
                                         "use --ignore)");
  }
  n.driver = opts.driver.empty() ? "bridge" : opts.driver;
  if (opts.gateways.size() > opts.subnets.size() || opts.ip_ranges.size() > opts.subnets.size()) {
    return fail(Errc::InvalidArgument,
                "each --gateway and --ip-range needs a --subnet (they pair up by position)");
  }
  for (const auto& [k, v] : opts.options) {
    if (k == "mtu") {
      unsigned long mtu = 0;
      try {
        mtu = std::stoul(v);
      } catch (const std::exception&) {
        mtu = 0;
      }
      if (mtu < 68 || mtu > 65535) {
        return fail(Errc::InvalidArgument, "--opt mtu=" + v + ": the MTU must be 68 to 65535");
      }
    } else if (k != "isolate" && k != "metric" && k != "vlan") {
      return fail(Errc::InvalidArgument,
                  "unsupported network option " + k + " (the bridge driver knows mtu)");
    }
  }
  std::vector<Ipv4Net> routes = host_routes();
  std::vector<Ipv6Net> routes6 = host_routes6();
  bool have4 = false;
  bool have6 = false;
  for (size_t i = 0; i < opts.subnets.size(); ++i) {
    std::string gw = i < opts.gateways.size() ? opts.gateways[i] : "";
    std::string range = i < opts.ip_ranges.size() ? opts.ip_ranges[i] : "";
    if (is_ipv6(opts.subnets[i])) {
      // An IPv6 subnet implies --ipv6, as in Podman.
      BERTH_TRY(auto sc, make_subnet6(opts.subnets[i], gw, range));
      auto net = *Ipv6Net::parse(sc.subnet);
      for (const auto& [u, owner] : used6) {
        if (u.overlaps(net)) {
          return fail(Errc::Conflict, "subnet " + sc.subnet + " overlaps subnet " + u.str() +
                                          " of network " + owner + " (pick another --subnet)");
        }
      }
      for (const auto& r : routes6) {
        if (r.overlaps(net)) {
          return fail(Errc::Conflict, "subnet " + sc.subnet +
                                          " is already used on the host (route to " + r.str() +
                                          "); pick another --subnet");
        }
      }
      used6.emplace_back(net, n.name);
      n.subnets.push_back(sc);
      have6 = true;
      continue;
    }
    if (!gw.empty() && is_ipv6(gw)) {
      return fail(Errc::InvalidArgument,
                  "gateway " + gw + " is IPv6 but its subnet " + opts.subnets[i] + " is IPv4");
    }
    BERTH_TRY(auto sc, make_subnet(opts.subnets[i], gw, range));
    auto net = *Ipv4Net::parse(sc.subnet);
    for (const auto& [u, owner] : used) {
      if (u.overlaps(net)) {
        return fail(Errc::Conflict, "subnet " + sc.subnet + " overlaps subnet " + u.str() +
                                        " of network " + owner + " (pick another --subnet)");
      }
    }
    for (const auto& r : routes) {
      if (r.overlaps(net)) {
        return fail(Errc::Conflict, "subnet " + sc.subnet +
                                        " is already used on the host (route to " + r.str() +
                                        "); pick another --subnet");
      }
    }
    used.emplace_back(net, n.name);
    n.subnets.push_back(sc);
    have4 = true;
  }
  if (have6 && n.driver != "bridge") {
    return fail(Errc::InvalidArgument,
                "IPv6 subnets need the bridge driver (the " + n.driver + " driver has none)");
  }
  n.ipv6_enabled = opts.ipv6 || have6;
  if (n.ipv6_enabled && n.driver != "bridge") {
    return fail(Errc::InvalidArgument, "--ipv6 needs the bridge driver");
  }
  // No subnet given: an IPv4 one from the pools; with --ipv6 also a unique local /64 (dual
  // stack, as Podman). --ipv6 with only an IPv6 subnet makes an IPv6-only network.
  if (!have4 && !have6 && n.driver == "bridge") {
    std::vector<Ipv4Net> taken = routes;
    for (const auto& [u, owner] : used) {
      taken.push_back(u);
    }
    BERTH_TRY(auto net, pick_subnet(pools_, taken));
    BERTH_TRY(auto sc, make_subnet(net.str(), "", ""));
    n.subnets.push_back(sc);
  }
  if (n.ipv6_enabled && !have6) {
    std::vector<Ipv6Net> taken = routes6;
    for (const auto& [u, owner] : used6) {
      taken.push_back(u);
    }
    BERTH_TRY(auto net, pick_ula_subnet(taken));
    BERTH_TRY(auto sc, make_subnet6(net.str(), "", ""));
    n.subnets.push_back(sc);
  }
  n.network_interface = opts.interface_name;
  if (n.network_interface.empty() && n.driver == "bridge") {
    for (int i = 1;; ++i) {
      n.network_interface = "berth" + std::to_string(i);
      if (ifaces.count(n.network_interface) == 0) {
        break;
      }
    }
  } else if (!n.network_interface.empty()) {
    if (n.network_interface.size() > 15 ||
        n.network_interface.find_first_of("/ :") != std::string::npos) {
      return fail(Errc::InvalidArgument, "interface name " + n.network_interface +
                                             " is invalid (at most 15 characters, no '/', ':' or "
                                             "blank)");
    }
    if (ifaces.count(n.network_interface) != 0) {
      return fail(Errc::Conflict,
                  "bridge name " + n.network_interface + " already in use by another network");
    }
  }
  n.id = util::random_id();
  n.created = now_rfc3339();
  n.internal = opts.internal;
  n.dns_enabled = !opts.disable_dns && n.driver == "bridge";
  n.options = opts.options;
  n.labels = opts.labels;
  BERTH_TRYV(util::make_dirs(config_dir_));
  BERTH_TRYV(util::write_file_atomic(config_dir_ / (n.name + ".json"), to_json(n).dump(4) + "\n"));
  return n;
}

Result<std::vector<std::string>> NetworkStore::users(const Network& n) const {
  std::set<std::string> out;
  Ipam ipam(lease_file(n.name), n);
  BERTH_TRY(auto leases, ipam.leases());
  for (const auto& l : leases) {
    out.insert(l.container_name.empty() ? l.container_id : l.container_name);
  }
  if (users_hook().list) {
    for (auto& c : users_hook().list(n.name)) {
      out.insert(std::move(c));
    }
  }
  return std::vector<std::string>(out.begin(), out.end());
}

Result<void> NetworkStore::remove(const std::string& name_or_id, bool force) {
  BERTH_TRY(auto lock, FileLock::acquire(config_dir_ / ".lock"));
  BERTH_TRY(auto n, get(name_or_id));
  if (n.is_default) {
    return fail(Errc::InvalidArgument, "default network " + n.name + " cannot be removed");
  }
  BERTH_TRY(auto who, users(n));
  if (!who.empty()) {
    std::string list;
    for (const auto& c : who) {
      list += (list.empty() ? "" : ", ") + c;
    }
    if (!force) {
      return fail(Errc::Busy, "network " + n.name + " is being used by containers: " + list +
                                  " (remove them first or use -f)");
    }
    if (!users_hook().remove) {
      return fail(Errc::NotSupported, "network " + n.name + " is being used by containers: " +
                                          list + "; removing them needs the container module");
    }
    BERTH_TRYV(users_hook().remove(who));
  }
  fs::path file = config_dir_ / (n.name + ".json");
  if (::unlink(file.c_str()) != 0 && errno != ENOENT) {
    return fail_errno("remove network config", file.string());
  }
  std::error_code ec;
  fs::remove(lease_file(n.name), ec);
  fs::remove(lease_dir_ / (n.name + ".lock"), ec);
  return {};
}

Result<std::vector<std::string>> NetworkStore::prune(
    const std::map<std::string, std::string>& labels) {
  BERTH_TRY(auto all, list());
  std::vector<std::string> removed;
  for (const auto& n : all) {
    if (n.is_default) {
      continue;
    }
    bool match = true;
    for (const auto& [k, v] : labels) {
      auto it = n.labels.find(k);
      if (it == n.labels.end() || (!v.empty() && it->second != v)) {
        match = false;
      }
    }
    if (!match) {
      continue;
    }
    BERTH_TRY(auto who, users(n));
    if (!who.empty()) {
      continue;
    }
    BERTH_TRYV(remove(n.name, false));
    removed.push_back(n.name);
  }
  return removed;
}

}  // namespace berth::network
