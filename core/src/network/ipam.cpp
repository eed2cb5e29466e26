// IPAM: a lease file per network, read-modify-written under an exclusive flock.
#include <map>
#include <optional>
#include <set>
#include <utility>

#include "berth/network/network.hpp"
#include "berth/util/fs.hpp"
#include "file_lock.hpp"

namespace berth::network {

namespace fs = std::filesystem;
using nlohmann::json;

json to_json(const Lease& l) {
  json ports = json::array();
  for (const auto& p : l.ports) {
    ports.push_back({{"host_ip", p.host_ip},
                     {"host_port", p.host_port},
                     {"container_port", p.container_port},
                     {"range", p.range},
                     {"protocol", p.protocol}});
  }
  return {{"container_id", l.container_id},
          {"container_name", l.container_name},
          {"ip", l.ip},
          {"prefix", l.prefix},
          {"gateway", l.gateway},
          {"ip6", l.ip6},
          {"prefix6", l.prefix6},
          {"gateway6", l.gateway6},
          {"mac", l.mac},
          {"interface_name", l.interface_name},
          {"aliases", l.aliases},
          {"netns", l.netns},
          {"ports", ports}};
}

Lease lease_from_json(const json& j) {
  Lease l;
  l.container_id = j.value("container_id", "");
  l.container_name = j.value("container_name", "");
  l.ip = j.value("ip", "");
  l.prefix = j.value("prefix", 0);
  l.gateway = j.value("gateway", "");
  l.ip6 = j.value("ip6", "");
  l.prefix6 = j.value("prefix6", 0);
  l.gateway6 = j.value("gateway6", "");
  l.mac = j.value("mac", "");
  l.interface_name = j.value("interface_name", "");
  if (j.contains("aliases") && j["aliases"].is_array()) {
    l.aliases = j["aliases"].get<std::vector<std::string>>();
  }
  l.netns = j.value("netns", "");
  if (j.contains("ports") && j["ports"].is_array()) {
    for (const auto& p : j["ports"]) {
      sdk::PortMapping m;
      m.host_ip = p.value("host_ip", "");
      m.host_port = p.value("host_port", uint16_t{0});
      m.container_port = p.value("container_port", uint16_t{0});
      m.range = p.value("range", uint16_t{1});
      m.protocol = p.value("protocol", "tcp");
      l.ports.push_back(m);
    }
  }
  return l;
}

std::vector<std::string> Lease::addresses() const {
  std::vector<std::string> out;
  if (!ip.empty()) {
    out.push_back(ip + "/" + std::to_string(prefix));
  }
  if (!ip6.empty()) {
    out.push_back(ip6 + "/" + std::to_string(prefix6));
  }
  return out;
}

namespace {

fs::path lock_path(const fs::path& file) {
  fs::path p = file;
  p.replace_extension(".lock");
  return p;
}

Result<std::vector<Lease>> load(const fs::path& file) {
  std::vector<Lease> out;
  std::error_code ec;
  if (!fs::exists(file, ec)) {
    return out;
  }
  BERTH_TRY(auto text, util::read_file(file));
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    return fail(Errc::Corrupt, "lease file " + file.string() +
                                   " is not valid JSON (remove it; running containers lose "
                                   "their address reservations)");
  }
  if (j.contains("leases") && j["leases"].is_array()) {
    for (const auto& l : j["leases"]) {
      out.push_back(lease_from_json(l));
    }
  }
  return out;
}

Result<void> store(const fs::path& file, const std::vector<Lease>& leases) {
  json arr = json::array();
  for (const auto& l : leases) {
    arr.push_back(to_json(l));
  }
  BERTH_TRYV(util::make_dirs(file.parent_path()));
  return util::write_file_atomic(file, json{{"leases", arr}}.dump(2) + "\n");
}

// Host-wide reservations of one bridge: {"reservations": [{container_id, ip, ip6, lease_file}]}.
struct Reservation {
  std::string container_id;
  std::string ip;
  std::string ip6;
  std::string lease_file;  // the store's lease file that holds the lease
};

class BridgeReservations {
 public:
  // Locks and reads the bridge's reservations, dropping those whose store no longer holds them
  // and those of `own_file` (the caller's store, rewritten from its leases by save()).
  static Result<BridgeReservations> open(const fs::path& dir, const std::string& bridge,
                                         const fs::path& own_file) {
    BERTH_TRY(auto lock, FileLock::acquire(dir / (bridge + ".lock")));
    BridgeReservations b(std::move(lock), dir / (bridge + ".json"));
    std::error_code ec;
    if (!fs::exists(b.file_, ec)) {
      return b;
    }
    BERTH_TRY(auto text, util::read_file(b.file_));
    json j = json::parse(text, nullptr, false);
    if (j.is_discarded() || !j.is_object()) {
      // Only a cache of the stores' lease files: rebuilt from the stores as they allocate.
      return b;
    }
    std::map<std::string, std::vector<Lease>> stores;
    for (const auto& e : j.value("reservations", json::array())) {
      Reservation r{e.value("container_id", ""), e.value("ip", ""), e.value("ip6", ""),
                    e.value("lease_file", "")};
      if (r.lease_file.empty() || fs::path(r.lease_file) == own_file) {
        continue;
      }
      if (!stores.contains(r.lease_file)) {
        auto leases = load(r.lease_file);
        stores[r.lease_file] = leases ? *leases : std::vector<Lease>{};
      }
      for (const auto& l : stores[r.lease_file]) {
        if (l.container_id == r.container_id && l.ip == r.ip && l.ip6 == r.ip6) {
          b.others_.push_back(r);
          break;
        }
      }
    }
    return b;
  }

  const std::vector<Reservation>& others() const { return others_; }

  Result<void> save(const fs::path& own_file, const std::vector<Lease>& own) {
    json arr = json::array();
    auto add = [&](const Reservation& r) {
      arr.push_back({{"container_id", r.container_id},
                     {"ip", r.ip},
                     {"ip6", r.ip6},
                     {"lease_file", r.lease_file}});
    };
    for (const auto& r : others_) {
      add(r);
    }
    for (const auto& l : own) {
      add({l.container_id, l.ip, l.ip6, own_file.string()});
    }
    if (arr.empty()) {
      // Nothing on the bridge any more: no file is left behind for it.
      if (::unlink(file_.c_str()) != 0 && errno != ENOENT) {
        return fail_errno("remove", file_.string());
      }
      lock_.remove_locked();
      return {};
    }
    BERTH_TRYV(util::make_dirs(file_.parent_path()));
    return util::write_file_atomic(file_, json{{"reservations", arr}}.dump(2) + "\n");
  }

 private:
  BridgeReservations(FileLock lock, fs::path file)
      : lock_(std::move(lock)), file_(std::move(file)) {}
  FileLock lock_;
  fs::path file_;
  std::vector<Reservation> others_;
};

}  // namespace

Ipam::Ipam(fs::path lease_file, Network network, fs::path host_dir)
    : file_(std::move(lease_file)), network_(std::move(network)), host_dir_(std::move(host_dir)) {}

Result<std::vector<Lease>> Ipam::leases() const {
  BERTH_TRY(auto lock, FileLock::acquire(lock_path(file_)));
  return load(file_);
}

namespace {

// The address `want` (static) or the lowest free one in [first, last] of one subnet; T is
// uint32_t (IPv4) or Uint128 (IPv6).
template <typename T, typename Net>
Result<T> choose(const Net& net, T first, T last, const std::set<T>& taken, const std::string& want,
                 const std::string& subnet, const std::string& network,
                 Result<T> (*parse)(std::string_view), const std::string& flag) {
  if (!want.empty()) {
    auto ip = parse(want);
    if (!ip) {
      return fail(Errc::InvalidArgument, flag + " " + want + ": " + ip.error().message());
    }
    if (!net.contains(*ip) || *ip == net.addr || *ip == static_cast<T>(net.addr | ~net.mask())) {
      return fail(Errc::InvalidArgument, flag + " " + want + " is not a host address of subnet " +
                                             subnet + " of network " + network);
    }
    if (taken.count(*ip) != 0) {
      return fail(Errc::Conflict, "IP address " + want + " on network " + network +
                                      " is already allocated (choose another " + flag + ")");
    }
    return *ip;
  }
  for (T a = first;; ++a) {
    if (taken.count(a) == 0) {
      return a;
    }
    if (a == last) {
      break;
    }
  }
  return fail(Errc::Conflict, "no free IP address left in subnet " + subnet + " of network " +
                                  network + " (remove containers or create a larger network)");
}

}  // namespace

Result<Lease> Ipam::allocate(Lease want) {
  const SubnetConfig* sc4 = nullptr;
  const SubnetConfig* sc6 = nullptr;
  for (const auto& sc : network_.subnets) {
    const SubnetConfig*& slot = is_ipv6(sc.subnet) ? sc6 : sc4;
    if (slot == nullptr) {
      slot = &sc;
    }
  }
  if (sc4 == nullptr && sc6 == nullptr) {
    return fail(Errc::InvalidArgument,
                "network " + network_.name + " has no subnet to allocate addresses from");
  }
  // The flag the static IPv6 address came with, for the messages.
  std::string flag6 = "--ip6";
  if (!want.ip6.empty() && !is_ipv6(want.ip6)) {
    return fail(Errc::InvalidArgument,
                "--ip6 " + want.ip6 + " is not an IPv6 address (an IPv4 address goes in --ip)");
  }
  if (is_ipv6(want.ip)) {
    if (!want.ip6.empty()) {
      return fail(Errc::InvalidArgument, "--ip " + want.ip + " and --ip6 " + want.ip6 +
                                             ": two IPv6 addresses for one network (give one)");
    }
    want.ip6 = std::exchange(want.ip, "");
    flag6 = "--ip";
  }
  if (!want.ip.empty() && sc4 == nullptr) {
    return fail(Errc::InvalidArgument,
                "--ip " + want.ip + ": network " + network_.name + " has no IPv4 subnet");
  }
  if (!want.ip6.empty() && sc6 == nullptr) {
    return fail(Errc::InvalidArgument, flag6 + " " + want.ip6 + ": network " + network_.name +
                                           " has no IPv6 subnet (create it with --ipv6 or an "
                                           "IPv6 --subnet)");
  }

  BERTH_TRY(auto lock, FileLock::acquire(lock_path(file_)));
  BERTH_TRY(auto all, load(file_));
  // Lock order: the store's lease file, then the bridge's host-wide reservations.
  std::optional<BridgeReservations> host;
  if (!host_dir_.empty() && !network_.network_interface.empty()) {
    BERTH_TRY(auto h, BridgeReservations::open(host_dir_, network_.network_interface, file_));
    host.emplace(std::move(h));
  }
  std::set<uint32_t> taken4;
  std::set<Uint128> taken6;
  for (const auto& l : all) {
    if (l.container_id == want.container_id) {
      if ((!want.ip.empty() && want.ip != l.ip) || (!want.ip6.empty() && want.ip6 != l.ip6)) {
        return fail(Errc::Conflict, "container " + want.container_id + " already has address " +
                                        (want.ip.empty() ? l.ip6 : l.ip) + " on network " +
                                        network_.name);
      }
      if (host) {
        BERTH_TRYV(host->save(file_, all));
      }
      return l;
    }
    if (auto ip = parse_ipv4(l.ip)) {
      taken4.insert(*ip);
    }
    if (!l.ip6.empty()) {
      if (auto ip = parse_ipv6(l.ip6)) {
        taken6.insert(*ip);
      }
    }
  }
  if (host) {
    for (const auto& r : host->others()) {
      if (auto ip = parse_ipv4(r.ip)) {
        taken4.insert(*ip);
      }
      if (!r.ip6.empty()) {
        if (auto ip = parse_ipv6(r.ip6)) {
          taken6.insert(*ip);
        }
      }
    }
  }
  if (sc4 != nullptr) {
    BERTH_TRY(auto net, Ipv4Net::parse(sc4->subnet));
    BERTH_TRY(uint32_t gw, parse_ipv4(sc4->gateway));
    uint32_t first = net.addr + 1;
    uint32_t last = net.broadcast() - 1;
    if (!sc4->lease_range.start_ip.empty()) {
      BERTH_TRY(first, parse_ipv4(sc4->lease_range.start_ip));
      BERTH_TRY(last, parse_ipv4(sc4->lease_range.end_ip));
    }
    taken4.insert({gw, net.addr, net.broadcast()});
    BERTH_TRY(uint32_t ip, choose<uint32_t>(net, first, last, taken4, want.ip, sc4->subnet,
                                            network_.name, parse_ipv4, "--ip"));
    want.ip = format_ipv4(ip);
    want.prefix = net.prefix;
    want.gateway = sc4->gateway;
  } else {
    want.ip.clear();
  }
  if (sc6 != nullptr) {
    BERTH_TRY(auto net, Ipv6Net::parse(sc6->subnet));
    BERTH_TRY(Uint128 gw, parse_ipv6(sc6->gateway));
    Uint128 first = net.addr + 1;
    Uint128 last = net.last();
    if (!sc6->lease_range.start_ip.empty()) {
      BERTH_TRY(first, parse_ipv6(sc6->lease_range.start_ip));
      BERTH_TRY(last, parse_ipv6(sc6->lease_range.end_ip));
    }
    taken6.insert({gw, net.addr});
    BERTH_TRY(Uint128 ip, choose<Uint128>(net, first, last, taken6, want.ip6, sc6->subnet,
                                          network_.name, parse_ipv6, flag6));
    want.ip6 = format_ipv6(ip);
    want.prefix6 = net.prefix;
    want.gateway6 = sc6->gateway;
  } else {
    want.ip6.clear();
  }
  all.push_back(want);
  BERTH_TRYV(store(file_, all));
  if (host) {
    BERTH_TRYV(host->save(file_, all));
  }
  return want;
}

Result<void> Ipam::release(const std::string& container_id) {
  BERTH_TRY(auto lock, FileLock::acquire(lock_path(file_)));
  BERTH_TRY(auto all, load(file_));
  auto n = std::erase_if(all, [&](const Lease& l) { return l.container_id == container_id; });
  if (n != 0) {
    BERTH_TRYV(store(file_, all));
  }
  if (!host_dir_.empty() && !network_.network_interface.empty()) {
    std::error_code ec;
    if (fs::exists(host_dir_ / (network_.network_interface + ".json"), ec)) {
      BERTH_TRY(auto host, BridgeReservations::open(host_dir_, network_.network_interface, file_));
      BERTH_TRYV(host.save(file_, all));
    }
  }
  return {};
}

Result<void> Ipam::update(const Lease& lease) {
  BERTH_TRY(auto lock, FileLock::acquire(lock_path(file_)));
  BERTH_TRY(auto all, load(file_));
  for (auto& l : all) {
    if (l.container_id == lease.container_id) {
      Lease kept = l;
      l = lease;
      l.ip = kept.ip;
      l.prefix = kept.prefix;
      l.gateway = kept.gateway;
      l.ip6 = kept.ip6;
      l.prefix6 = kept.prefix6;
      l.gateway6 = kept.gateway6;
      return store(file_, all);
    }
  }
  return fail(Errc::NotFound,
              "container " + lease.container_id + " has no lease on network " + network_.name);
}

}  // namespace berth::network
