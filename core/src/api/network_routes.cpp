// Network endpoints over berth::network and the container module's connect/disconnect: list (with
// Docker's filters), create, inspect, connect, disconnect, delete, prune. Docker's "bridge" names
// berth's default network.
#include <algorithm>
#include <mutex>

#include "berth/container/container.hpp"
#include "berth/container/net_options.hpp"
#include "berth/engine/engine.hpp"
#include "berth/network/network.hpp"
#include "routes.hpp"

namespace berth::api {
namespace {

using nlohmann::json;

// Docker clients name the default network "bridge".
std::string resolve_name(engine::Engine& eng, const std::string& name) {
  if (name == "bridge") {
    return network::NetworkStore::default_network(eng.config().containers).name;
  }
  return name;
}

// container::register_network_users() sets a process-wide hook (network::set_network_users)
// holding the engine it was given: network removal and pruning register their own engine and run
// under this lock, so the hook never serves another request's engine.
std::mutex& users_hook_mutex() {
  static std::mutex mu;
  return mu;
}

// Docker's network object; `containers` from the leases.
json docker_network(const network::Network& n, const json& containers) {
  json config = json::array();
  for (const auto& s : n.subnets) {
    json c = {{"Subnet", s.subnet}};
    if (!s.gateway.empty()) {
      c["Gateway"] = s.gateway;
    }
    if (!s.lease_range.start_ip.empty()) {
      c["IPRange"] = s.lease_range.start_ip + "-" + s.lease_range.end_ip;
    }
    config.push_back(c);
  }
  // Options are the driver options the client gave, by Docker's names: docker-compose compares
  // them with its file's driver_opts and refuses a network with one more ("needs to be
  // recreated"), so a bridge name berth picked itself (berth<N>) is not one of them.
  json options = json::object();
  for (const auto& [k, v] : n.options) {
    options[k == "mtu" ? "com.docker.network.driver.mtu" : k] = v;
  }
  const bool picked = n.network_interface.size() > 5 && n.network_interface.starts_with("berth") &&
                      n.network_interface.find_first_not_of("0123456789", 5) == std::string::npos;
  if (!n.network_interface.empty() && n.driver == "bridge" && !picked) {
    options["com.docker.network.bridge.name"] = n.network_interface;
  }
  return {{"Name", n.name},
          {"Id", n.id},
          {"Created", n.created.empty() ? "0001-01-01T00:00:00Z" : n.created},
          {"Scope", "local"},
          {"Driver", n.driver},
          {"EnableIPv6", n.ipv6_enabled},
          {"IPAM", {{"Driver", "default"}, {"Options", json::object()}, {"Config", config}}},
          {"Internal", n.internal},
          {"Attachable", false},
          {"Ingress", false},
          {"ConfigFrom", {{"Network", ""}}},
          {"ConfigOnly", false},
          {"Containers", containers},
          {"Options", options},
          {"Labels", n.labels}};
}

json network_containers(const network::NetworkStore& store, const network::Network& n) {
  json out = json::object();
  network::Ipam ipam(store.lease_file(n.name), n);
  auto leases = ipam.leases();
  if (!leases) {
    return out;
  }
  for (const auto& l : *leases) {
    out[l.container_id] = {
        {"Name", l.container_name},
        {"EndpointID", l.container_id.substr(0, 12) + "-" + n.id.substr(0, 12)},
        {"MacAddress", l.mac},
        {"IPv4Address", l.ip.empty() ? "" : l.ip + "/" + std::to_string(l.prefix)},
        {"IPv6Address", l.ip6.empty() ? "" : l.ip6 + "/" + std::to_string(l.prefix6)}};
  }
  return out;
}

// Docker's network filters: name (substring), id (prefix), driver, label (key or key=value),
// type (custom, builtin), dangling (true: no containers). Values of one key are ORed.
Result<bool> network_matches(const network::Network& n, const json& containers,
                             const std::multimap<std::string, std::string>& filters) {
  std::map<std::string, bool> per_key;
  for (const auto& [key, val] : filters) {
    bool m = false;
    if (key == "name") {
      m = n.name.find(val) != std::string::npos;
    } else if (key == "id") {
      m = n.id.rfind(val, 0) == 0;
    } else if (key == "driver") {
      m = n.driver == val;
    } else if (key == "label") {
      auto eq = val.find('=');
      auto it = n.labels.find(val.substr(0, eq));
      m = it != n.labels.end() && (eq == std::string::npos || it->second == val.substr(eq + 1));
    } else if (key == "type") {
      if (val != "custom" && val != "builtin") {
        return fail(Errc::InvalidArgument, "invalid filter: 'type'='" + val + "'");
      }
      m = (val == "builtin") == n.is_default;
    } else if (key == "dangling") {
      bool want = val == "true" || val == "1";
      m = want == (containers.empty() && !n.is_default);
    } else if (key == "scope") {
      m = val == "local";
    } else {
      return fail(Errc::InvalidArgument, "invalid filter '" + key + "'");
    }
    per_key[key] = per_key[key] || m;
  }
  return std::all_of(per_key.begin(), per_key.end(), [](const auto& kv) { return kv.second; });
}

std::multimap<std::string, std::string> split_filters(const std::vector<std::string>& fs) {
  std::multimap<std::string, std::string> out;
  for (const auto& f : fs) {
    auto eq = f.find('=');
    out.emplace(f.substr(0, eq), eq == std::string::npos ? "" : f.substr(eq + 1));
  }
  return out;
}

std::vector<std::string> strings_of(const json& v) {
  std::vector<std::string> out;
  if (v.is_array()) {
    for (const auto& e : v) {
      if (e.is_string()) {
        out.push_back(e.get<std::string>());
      }
    }
  }
  return out;
}

// POST /networks/create body -> network::CreateOptions.
Result<network::CreateOptions> create_options(const json& b) {
  if (!b.is_object()) {
    return fail(Errc::InvalidArgument, "the network config must be a JSON object");
  }
  network::CreateOptions o;
  o.name = jstr(b, "Name");
  if (o.name.empty()) {
    return fail(Errc::InvalidArgument, "network name (Name) is required");
  }
  o.driver = jstr(b, "Driver");
  if (o.driver.empty()) {
    o.driver = "bridge";
  }
  o.internal = jbool(b, "Internal", false);
  o.ipv6 = jbool(b, "EnableIPv6", false);
  if (b.contains("IPAM") && b["IPAM"].is_object()) {
    const auto& ipam = b["IPAM"];
    std::string drv = jstr(ipam, "Driver");
    if (!drv.empty() && drv != "default" && drv != "host-local") {
      return fail(Errc::NotSupported,
                  "IPAM driver " + drv + " is not supported (berth's IPAM is host-local)");
    }
    if (ipam.contains("Config") && ipam["Config"].is_array()) {
      for (const auto& c : ipam["Config"]) {
        std::string subnet = jstr(c, "Subnet");
        if (subnet.empty()) {
          continue;
        }
        o.subnets.push_back(subnet);
        o.gateways.push_back(jstr(c, "Gateway"));
        o.ip_ranges.push_back(jstr(c, "IPRange"));
      }
    }
  }
  if (b.contains("Options") && b["Options"].is_object()) {
    for (auto& [k, v] : b["Options"].items()) {
      if (!v.is_string()) {
        continue;
      }
      std::string s = v.get<std::string>();
      if (k == "com.docker.network.bridge.name") {
        o.interface_name = s;
      } else if (k == "com.docker.network.driver.mtu") {
        o.options["mtu"] = s;
      } else if (k.rfind("com.docker.network.", 0) == 0) {
        // Docker daemon tuning (enable_icc, host_binding_ipv4, ...): nothing of berth's.
        continue;
      } else {
        o.options[k] = s;
      }
    }
  }
  if (b.contains("Labels") && b["Labels"].is_object()) {
    for (auto& [k, v] : b["Labels"].items()) {
      if (v.is_string()) {
        o.labels[k] = v.get<std::string>();
      }
    }
  }
  return o;
}

}  // namespace

void add_network_routes(Router& r, const std::shared_ptr<ServiceContext>& ctx) {
  auto list = [ctx](Request& req, bool libpod) -> Response {
    auto fs = docker_filters(req);
    if (!fs) {
      return error_response(fs.error());
    }
    auto filters = split_filters(*fs);
    API_ENGINE(eng);
    auto store = network::NetworkStore::for_engine(eng);
    auto nets = store.list();
    if (!nets) {
      return error_response(nets.error());
    }
    json out = json::array();
    for (const auto& n : *nets) {
      json containers = network_containers(store, n);
      auto m = network_matches(n, containers, filters);
      if (!m) {
        return error_response(m.error());
      }
      if (*m) {
        out.push_back(libpod ? network::to_json(n) : docker_network(n, containers));
      }
    }
    return json_response(200, out);
  };
  r.add("GET", "/networks", [list](Request& req) { return list(req, false); });
  r.add("GET", "/libpod/networks/json", [list](Request& req) { return list(req, true); });

  auto inspect = [ctx](Request& req, bool libpod) -> Response {
    API_ENGINE(eng);
    auto store = network::NetworkStore::for_engine(eng);
    const auto& name = req.params["id"];
    auto n = store.get(resolve_name(eng, name));
    if (!n) {
      return object_error(n.error(), ObjectKind::Network, name, true);
    }
    return json_response(
        200, libpod ? network::to_json(*n) : docker_network(*n, network_containers(store, *n)));
  };
  r.add("GET", "/networks/{id}", [inspect](Request& req) { return inspect(req, false); });
  r.add("GET", "/libpod/networks/{id}/json",
        [inspect](Request& req) { return inspect(req, true); });

  r.add("POST", "/networks/create", [ctx](Request& req) -> Response {
    auto body = req.json_body();
    if (!body) {
      return error_response(body.error());
    }
    auto o = create_options(*body);
    if (!o) {
      return error_response(o.error());
    }
    API_ENGINE(eng);
    auto store = network::NetworkStore::for_engine(eng);
    if (auto existing = store.get(o->name); existing) {
      // Docker refuses a duplicate name (CheckDuplicate is always on since API 1.44).
      return error_response(409, "network with name " + o->name + " already exists");
    }
    auto n = network::create_network(eng, *o);
    if (!n) {
      return error_response(n.error());
    }
    return json_response(201, {{"Id", n->id}, {"Warning", ""}});
  });

  r.add("DELETE", "/networks/{id}", [ctx](Request& req) -> Response {
    API_ENGINE(eng);
    std::lock_guard hook_lock(users_hook_mutex());
    container::register_network_users(eng);
    auto store = network::NetworkStore::for_engine(eng);
    const auto& name = req.params["id"];
    if (auto res = store.remove(name, req.q_bool("force")); !res) {
      if (res.error().code() == Errc::InvalidArgument &&
          res.error().message().find("default") != std::string::npos) {
        return error_response(403, res.error().message());
      }
      return object_error(res.error(), ObjectKind::Network, name, true);
    }
    Response resp;
    resp.status = 204;
    resp.content_type.clear();
    return resp;
  });

  r.add("POST", "/networks/prune", [ctx](Request& req) -> Response {
    auto fs = docker_filters(req);
    if (!fs) {
      return error_response(fs.error());
    }
    std::map<std::string, std::string> labels;
    for (const auto& f : *fs) {
      if (f.rfind("label=", 0) != 0) {
        return error_response(400, "invalid filter \"" + f + "\" (network prune knows label)");
      }
      auto v = f.substr(6);
      auto eq = v.find('=');
      labels[v.substr(0, eq)] = eq == std::string::npos ? "" : v.substr(eq + 1);
    }
    API_ENGINE(eng);
    std::lock_guard hook_lock(users_hook_mutex());
    container::register_network_users(eng);
    auto store = network::NetworkStore::for_engine(eng);
    auto removed = store.prune(labels);
    if (!removed) {
      return error_response(removed.error());
    }
    return json_response(200, {{"NetworksDeleted", *removed}});
  });

  r.add("POST", "/networks/{id}/connect", [ctx](Request& req) -> Response {
    auto body = req.json_body();
    if (!body) {
      return error_response(body.error());
    }
    if (!body->is_object() || jstr(*body, "Container").empty()) {
      return error_response(400, "the container to connect (Container) is required");
    }
    container::NetworkConnectOptions o;
    if (body->contains("EndpointConfig") && (*body)["EndpointConfig"].is_object()) {
      const auto& ep = (*body)["EndpointConfig"];
      o.aliases = strings_of(ep.value("Aliases", json::array()));
      if (ep.contains("IPAMConfig") && ep["IPAMConfig"].is_object()) {
        o.ip = jstr(ep["IPAMConfig"], "IPv4Address");
        o.ip6 = jstr(ep["IPAMConfig"], "IPv6Address");
      }
      o.mac = jstr(ep, "MacAddress");
    }
    API_ENGINE(eng);
    const auto name = resolve_name(eng, req.params["id"]);
    const auto ctr = (*body)["Container"].get<std::string>();
    auto store = network::NetworkStore::for_engine(eng);
    if (auto n = store.get(name); !n) {
      return object_error(n.error(), ObjectKind::Network, req.params["id"], true);
    }
    if (auto res = container::network_connect(eng, name, ctr, o); !res) {
      if (res.error().code() == Errc::NotFound) {
        return error_response(404, "No such container: " + ctr);
      }
      if (res.error().code() == Errc::AlreadyExists) {
        return error_response(403, res.error().message());
      }
      return error_response(res.error());
    }
    return json_response(200, json::object());
  });

  r.add("POST", "/networks/{id}/disconnect", [ctx](Request& req) -> Response {
    auto body = req.json_body();
    if (!body) {
      return error_response(body.error());
    }
    if (!body->is_object() || jstr(*body, "Container").empty()) {
      return error_response(400, "the container to disconnect (Container) is required");
    }
    API_ENGINE(eng);
    const auto name = resolve_name(eng, req.params["id"]);
    const auto ctr = (*body)["Container"].get<std::string>();
    auto store = network::NetworkStore::for_engine(eng);
    if (auto n = store.get(name); !n) {
      return object_error(n.error(), ObjectKind::Network, req.params["id"], true);
    }
    if (auto res = container::network_disconnect(eng, name, ctr, jbool(*body, "Force", false));
        !res) {
      if (res.error().code() == Errc::NotFound) {
        return error_response(404, res.error().message());
      }
      return error_response(res.error());
    }
    return json_response(200, json::object());
  });
}

}  // namespace berth::api
