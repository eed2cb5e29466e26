// berth network create | ls | inspect | rm | prune | exists | reload | connect | disconnect
#include <regex>

#include "berth/container/net_options.hpp"
#include "berth/engine/engine.hpp"
#include "berth/format/output.hpp"
#include "berth/network/network.hpp"
#include "command.hpp"
#include "output.hpp"

namespace berth::cli {
namespace {

using nlohmann::json;

Result<std::map<std::string, std::string>> parse_kv(const std::vector<std::string>& items,
                                                    const char* flag) {
  std::map<std::string, std::string> out;
  for (const auto& i : items) {
    auto eq = i.find('=');
    if (eq == 0) {
      return fail(Errc::InvalidArgument, std::string(flag) + " " + i + ": expected KEY=VALUE");
    }
    out[i.substr(0, eq)] = eq == std::string::npos ? "" : i.substr(eq + 1);
  }
  return out;
}

// Podman's Go-struct view of a network, for templates and the table.
json row(const network::Network& n) {
  json subnets = json::array();
  for (const auto& s : n.subnets) {
    subnets.push_back({{"Subnet", s.subnet}, {"Gateway", s.gateway}});
  }
  return {{"Name", n.name},
          {"ID", n.id.substr(0, 12)},
          {"FullID", n.id},
          {"Driver", n.driver},
          {"NetworkInterface", n.network_interface},
          {"Created", n.created},
          {"Subnets", subnets},
          {"IPv6Enabled", n.ipv6_enabled},
          {"Internal", n.internal},
          {"DNSEnabled", n.dns_enabled},
          {"Labels", n.labels},
          {"Options", n.options}};
}

Result<bool> matches(const network::Network& n, const std::multimap<std::string, std::string>& f) {
  // Podman: values of one key are ORed, different keys ANDed.
  std::set<std::string> keys;
  for (const auto& [k, v] : f) {
    keys.insert(k);
  }
  for (const auto& key : keys) {
    bool any = false;
    auto [b, e] = f.equal_range(key);
    for (auto it = b; it != e; ++it) {
      const std::string& v = it->second;
      if (key == "name") {
        try {
          any = any || std::regex_search(n.name, std::regex(v));
        } catch (const std::regex_error&) {
          return fail(Errc::InvalidArgument, "--filter name=" + v + ": invalid regular expression");
        }
      } else if (key == "id") {
        any = any || n.id.starts_with(v);
      } else if (key == "driver") {
        any = any || n.driver == v;
      } else if (key == "label") {
        auto eq = v.find('=');
        auto lit = n.labels.find(v.substr(0, eq));
        any = any || (lit != n.labels.end() &&
                      (eq == std::string::npos || lit->second == v.substr(eq + 1)));
      } else {
        return fail(Errc::InvalidArgument,
                    "invalid filter \"" + key + "\" (network ls knows name, id, driver, label)");
      }
    }
    if (!any) {
      return false;
    }
  }
  return true;
}

Result<int> run_create(Context& ctx) {
  BERTH_TRY(auto* engine, ctx.engine());
  network::CreateOptions o;
  if (!ctx.args.empty()) {
    o.name = ctx.args[0];
  }
  o.driver = ctx.str("driver");
  o.subnets = ctx.strs("subnet");
  o.gateways = ctx.strs("gateway");
  o.ip_ranges = ctx.strs("ip-range");
  o.internal = ctx.flag("internal");
  o.ipv6 = ctx.flag("ipv6");
  o.disable_dns = ctx.flag("disable-dns");
  o.interface_name = ctx.str("interface-name");
  o.ignore_existing = ctx.flag("ignore");
  BERTH_TRY(o.options, parse_kv(ctx.strs("opt"), "--opt"));
  BERTH_TRY(o.labels, parse_kv(ctx.strs("label"), "--label"));
  BERTH_TRY(auto n, network::create_network(*engine, o));
  ctx.out << n.name << "\n";
  return 0;
}

Result<int> run_ls(Context& ctx) {
  BERTH_TRY(auto* engine, ctx.engine());
  auto store = network::NetworkStore::for_engine(*engine);
  BERTH_TRY(auto all, store.list());
  std::multimap<std::string, std::string> filters;
  for (const auto& f : ctx.strs("filter")) {
    auto eq = f.find('=');
    if (eq == std::string::npos) {
      return fail(Errc::InvalidArgument, "invalid filter \"" + f + "\": expected KEY=VALUE");
    }
    filters.emplace(f.substr(0, eq), f.substr(eq + 1));
  }
  json rows = json::array();
  json full = json::array();
  for (const auto& n : all) {
    BERTH_TRY(bool ok, matches(n, filters));
    if (ok) {
      rows.push_back(row(n));
      full.push_back(network::to_json(n));
    }
  }
  std::string format = ctx.str("format");
  if (!format.empty() && format::is_json_format(format) && !ctx.flag("quiet")) {
    ctx.out << full.dump(4) << "\n";
    return 0;
  }
  format::ListSpec spec;
  spec.default_format = "table {{.ID}}\t{{.Name}}\t{{.Driver}}";
  spec.headers = {{"ID", "NETWORK ID"}};
  spec.quiet_field = "Name";
  return print_list(ctx, rows, spec);
}

Result<int> run_inspect(Context& ctx) {
  BERTH_TRY(auto* engine, ctx.engine());
  auto store = network::NetworkStore::for_engine(*engine);
  json out = json::array();
  for (const auto& name : ctx.args) {
    BERTH_TRY(auto n, store.get(name));
    auto j = network::to_json(n);
    json containers = json::object();
    network::Ipam ipam(store.lease_file(n.name), n);
    BERTH_TRY(auto leases, ipam.leases());
    for (const auto& l : leases) {
      json subnets = json::array();
      if (!l.ip.empty()) {
        subnets.push_back(
            {{"ipnet", l.ip + "/" + std::to_string(l.prefix)}, {"gateway", l.gateway}});
      }
      if (!l.ip6.empty()) {
        subnets.push_back(
            {{"ipnet", l.ip6 + "/" + std::to_string(l.prefix6)}, {"gateway", l.gateway6}});
      }
      containers[l.container_id] = {
          {"name", l.container_name},
          {"interfaces", {{l.interface_name, {{"subnets", subnets}, {"mac_address", l.mac}}}}}};
    }
    j["containers"] = containers;
    out.push_back(j);
  }
  return print_objects(ctx, out);
}

Result<int> run_rm(Context& ctx) {
  BERTH_TRY(auto* engine, ctx.engine());
  container::register_network_users(*engine);
  auto store = network::NetworkStore::for_engine(*engine);
  std::optional<Error> last;
  for (const auto& name : ctx.args) {
    auto r = store.remove(name, ctx.flag("force"));
    if (!r) {
      if (last) {
        ctx.err << "Error: " << last->message() << "\n";
      }
      last = r.error();
      continue;
    }
    ctx.out << name << "\n";
  }
  if (last) {
    return fail(std::move(*last));
  }
  return 0;
}

Result<int> run_prune(Context& ctx) {
  BERTH_TRY(auto* engine, ctx.engine());
  std::map<std::string, std::string> labels;
  for (const auto& f : ctx.strs("filter")) {
    if (!f.starts_with("label=")) {
      return fail(Errc::InvalidArgument,
                  "invalid filter \"" + f + "\" (network prune knows label)");
    }
    auto v = f.substr(6);
    auto eq = v.find('=');
    labels[v.substr(0, eq)] = eq == std::string::npos ? "" : v.substr(eq + 1);
  }
  container::register_network_users(*engine);
  auto store = network::NetworkStore::for_engine(*engine);
  BERTH_TRY(auto removed, store.prune(labels));
  for (const auto& n : removed) {
    ctx.out << n << "\n";
  }
  return 0;
}

Result<int> run_exists(Context& ctx) {
  BERTH_TRY(auto* engine, ctx.engine());
  auto store = network::NetworkStore::for_engine(*engine);
  auto n = store.get(ctx.args[0]);
  if (!n) {
    if (n.error().code() == Errc::NotFound) {
      return 1;
    }
    return fail(std::move(n).error());
  }
  return 0;
}

Result<int> run_reload(Context& ctx) {
  BERTH_TRY(auto* engine, ctx.engine());
  if (!ctx.flag("all") && ctx.args.empty()) {
    return fail(Errc::InvalidArgument, "network reload needs --all or container names");
  }
  BERTH_TRY(auto ids, network::reload_networks(*engine));
  for (const auto& id : ids) {
    if (ctx.flag("all") || std::find(ctx.args.begin(), ctx.args.end(), id) != ctx.args.end()) {
      ctx.out << id << "\n";
    }
  }
  return 0;
}

Result<int> run_connect(Context& ctx) {
  BERTH_TRY(auto* engine, ctx.engine());
  if (ctx.command->name == "connect") {
    container::NetworkConnectOptions o;
    o.aliases = ctx.strs("alias");
    o.ip = ctx.str("ip");
    o.ip6 = ctx.str("ip6");
    o.mac = ctx.str("mac-address");
    BERTH_TRYV(container::network_connect(*engine, ctx.args[0], ctx.args[1], o));
  } else {
    BERTH_TRYV(container::network_disconnect(*engine, ctx.args[0], ctx.args[1], ctx.flag("force")));
  }
  return 0;
}

const Registrar reg([] {
  Command group;
  group.name = "network";
  group.summary = "Manage networks";
  register_command("", std::move(group));

  Command create;
  create.name = "create";
  create.summary = "Create a network";
  create.usage = "[options] [NAME]";
  create.max_args = 1;
  create.options = [](po::options_description& d) {
    d.add_options()("driver,d", po::value<std::string>()->default_value("bridge"),
                    "Driver to manage the network")(
        "subnet", po::value<std::vector<std::string>>()->composing(), "Subnet in CIDR format")(
        "gateway", po::value<std::vector<std::string>>()->composing(),
        "IPv4 gateway for the subnet")("ip-range",
                                       po::value<std::vector<std::string>>()->composing(),
                                       "Allocate container IPs from a range (CIDR or start-end)")(
        "internal", po::bool_switch(), "Restrict external access from this network")(
        "ipv6", po::bool_switch(), "Enable IPv6 networking")("disable-dns", po::bool_switch(),
                                                             "Disable DNS plugin")(
        "interface-name", po::value<std::string>(), "Interface name used by the driver")(
        "opt,o", po::value<std::vector<std::string>>()->composing(), "Driver options (mtu=N)")(
        "label", po::value<std::vector<std::string>>()->composing(), "Network metadata")(
        "ignore", po::bool_switch(), "Do not fail if the network already exists");
  };
  create.run = run_create;
  register_command("network", std::move(create));

  Command ls;
  ls.name = "ls";
  ls.aliases = {"list"};
  ls.summary = "List networks";
  ls.usage = "[options]";
  ls.max_args = 0;
  ls.options = [](po::options_description& d) {
    add_format_options(d);
    d.add_options()("filter,f", po::value<std::vector<std::string>>()->composing(),
                    "Provide filter values (e.g. 'name=berth')");
  };
  ls.run = run_ls;
  register_command("network", std::move(ls));

  Command inspect;
  inspect.name = "inspect";
  inspect.summary = "Inspect networks";
  inspect.usage = "[options] NETWORK [NETWORK...]";
  inspect.min_args = 1;
  inspect.options = [](po::options_description& d) {
    d.add_options()("format,f", po::value<std::string>(),
                    "Change the output format to JSON or a Go template");
  };
  inspect.run = run_inspect;
  register_command("network", std::move(inspect));

  Command rm;
  rm.name = "rm";
  rm.aliases = {"remove"};
  rm.summary = "Remove networks";
  rm.usage = "[options] NETWORK [NETWORK...]";
  rm.min_args = 1;
  rm.options = [](po::options_description& d) {
    d.add_options()("force,f", po::bool_switch(),
                    "Remove any containers using the network as well");
  };
  rm.run = run_rm;
  register_command("network", std::move(rm));

  Command prune;
  prune.name = "prune";
  prune.summary = "Remove networks no container uses";
  prune.usage = "[options]";
  prune.max_args = 0;
  prune.options = [](po::options_description& d) {
    d.add_options()("force,f", po::bool_switch(), "Do not prompt for confirmation")(
        "filter", po::value<std::vector<std::string>>()->composing(),
        "Provide filter values (e.g. 'label=<key>=<value>')");
  };
  prune.run = run_prune;
  register_command("network", std::move(prune));

  Command exists;
  exists.name = "exists";
  exists.summary = "Check if a network exists";
  exists.usage = "NETWORK";
  exists.min_args = 1;
  exists.max_args = 1;
  exists.run = run_exists;
  register_command("network", std::move(exists));

  Command reload;
  reload.name = "reload";
  reload.summary = "Reload firewall rules of containers' networks";
  reload.usage = "[options] [CONTAINER...]";
  reload.options = [](po::options_description& d) {
    d.add_options()("all,a", po::bool_switch(), "Reload network configuration of all containers");
  };
  reload.run = run_reload;
  register_command("network", std::move(reload));

  for (const char* name : {"connect", "disconnect"}) {
    Command c;
    c.name = name;
    c.summary = name == std::string("connect") ? "Add a container to a network"
                                               : "Remove a container from a network";
    c.usage = "[options] NETWORK CONTAINER";
    c.min_args = 2;
    c.max_args = 2;
    c.options = [](po::options_description& d) {
      d.add_options()("alias", po::value<std::vector<std::string>>()->composing(),
                      "Network scoped alias for the container")(
          "ip", po::value<std::string>(), "IPv4 address")("ip6", po::value<std::string>(),
                                                          "IPv6 address")(
          "mac-address", po::value<std::string>(), "MAC address")("force,f", po::bool_switch(),
                                                                  "Force the disconnect");
    };
    c.run = run_connect;
    register_command("network", std::move(c));
  }
});

}  // namespace
}  // namespace berth::cli
