// IPAM: a lease file per network, read-modify-written under an exclusive flock.
#include <set>

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

}  // namespace

Ipam::Ipam(fs::path lease_file, Network network)
    : file_(std::move(lease_file)), network_(std::move(network)) {}

Result<std::vector<Lease>> Ipam::leases() const {
  BERTH_TRY(auto lock, FileLock::acquire(lock_path(file_)));
  return load(file_);
}

Result<Lease> Ipam::allocate(Lease want) {
  if (network_.subnets.empty()) {
    return fail(Errc::InvalidArgument,
                "network " + network_.name + " has no subnet to allocate addresses from");
  }
  const auto& sc = network_.subnets.front();
  BERTH_TRY(auto net, Ipv4Net::parse(sc.subnet));
  BERTH_TRY(uint32_t gw, parse_ipv4(sc.gateway));
  uint32_t first = net.addr + 1;
  uint32_t last = net.broadcast() - 1;
  if (!sc.lease_range.start_ip.empty()) {
    BERTH_TRY(first, parse_ipv4(sc.lease_range.start_ip));
    BERTH_TRY(last, parse_ipv4(sc.lease_range.end_ip));
  }

  BERTH_TRY(auto lock, FileLock::acquire(lock_path(file_)));
  BERTH_TRY(auto all, load(file_));
  std::set<uint32_t> taken = {gw, net.addr, net.broadcast()};
  for (const auto& l : all) {
    if (l.container_id == want.container_id) {
      if (!want.ip.empty() && want.ip != l.ip) {
        return fail(Errc::Conflict, "container " + want.container_id + " already has address " +
                                        l.ip + " on network " + network_.name);
      }
      return l;
    }
    if (auto ip = parse_ipv4(l.ip)) {
      taken.insert(*ip);
    }
  }
  uint32_t chosen = 0;
  if (!want.ip.empty()) {
    auto ip = parse_ipv4(want.ip);
    if (!ip) {
      return fail(Errc::InvalidArgument, "--ip " + want.ip + ": " + ip.error().message());
    }
    if (!net.contains(*ip) || *ip == net.addr || *ip == net.broadcast()) {
      return fail(Errc::InvalidArgument, "--ip " + want.ip + " is not a host address of subnet " +
                                             sc.subnet + " of network " + network_.name);
    }
    if (taken.count(*ip) != 0) {
      return fail(Errc::Conflict, "IP address " + want.ip + " on network " + network_.name +
                                      " is already allocated (choose another --ip)");
    }
    chosen = *ip;
  } else {
    for (uint64_t a = first; a <= last; ++a) {
      if (taken.count(static_cast<uint32_t>(a)) == 0) {
        chosen = static_cast<uint32_t>(a);
        break;
      }
    }
    if (chosen == 0) {
      return fail(Errc::Conflict, "no free IP address left in subnet " + sc.subnet +
                                      " of network " + network_.name +
                                      " (remove containers or create a larger network)");
    }
  }
  want.ip = format_ipv4(chosen);
  want.prefix = net.prefix;
  want.gateway = sc.gateway;
  all.push_back(want);
  BERTH_TRYV(store(file_, all));
  return want;
}

Result<void> Ipam::release(const std::string& container_id) {
  BERTH_TRY(auto lock, FileLock::acquire(lock_path(file_)));
  BERTH_TRY(auto all, load(file_));
  auto n = std::erase_if(all, [&](const Lease& l) { return l.container_id == container_id; });
  if (n == 0) {
    return {};
  }
  return store(file_, all);
}

Result<void> Ipam::update(const Lease& lease) {
  BERTH_TRY(auto lock, FileLock::acquire(lock_path(file_)));
  BERTH_TRY(auto all, load(file_));
  for (auto& l : all) {
    if (l.container_id == lease.container_id) {
      std::string ip = l.ip;
      l = lease;
      l.ip = ip;
      return store(file_, all);
    }
  }
  return fail(Errc::NotFound,
              "container " + lease.container_id + " has no lease on network " + network_.name);
}

}  // namespace berth::network
