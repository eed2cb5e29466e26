// berth plugin ls | inspect
#include "berth/engine/engine.hpp"
#include "berth/sdk/network.hpp"
#include "berth/sdk/runtime.hpp"
#include "command.hpp"
#include "output.hpp"

namespace berth::cli {
namespace {

void warn_refusals(Context& ctx, const plugin::Registry& reg) {
  for (const auto& r : reg.refusals()) {
    ctx.err << "WARNING: plugin refused: " << r.reason << "\n";
  }
}

Result<int> run_ls(Context& ctx) {
  BERTH_TRY(auto* engine, ctx.engine());
  auto& reg = engine->plugins();
  nlohmann::json rows = nlohmann::json::array();
  for (const auto& p : reg.plugins()) {
    rows.push_back(plugin::to_json(p));
  }
  format::ListSpec spec;
  spec.default_format = "table {{.Kind}}\t{{.Name}}\t{{.Version}}\t{{.ABI}}\t{{.File}}";
  spec.quiet_field = "Name";
  spec.headers = {{"ABI", "ABI"}};
  BERTH_TRY(int rc, print_list(ctx, rows, spec));
  warn_refusals(ctx, reg);
  return rc;
}

// Loads the plugin, creates a driver and asks it what it can do on this host.
nlohmann::json probe(engine::Engine& engine, const plugin::PluginInfo& p) {
  auto& reg = engine.plugins();
  auto ctx = engine.storage_context(p.name);
  if (p.kind == sdk::StorageDriver::kKind) {
    auto d = reg.create<sdk::StorageDriver>(p.name, ctx);
    if (!d) {
      return {{"Supported", false}, {"Reason", d.error().message()}};
    }
    auto pr = (*d)->probe();
    return {{"Supported", pr.supported}, {"Reason", pr.reason}};
  }
  if (p.kind == sdk::Runtime::kKind) {
    auto d = reg.create<sdk::Runtime>(p.name, ctx);
    if (!d) {
      return {{"Supported", false}, {"Reason", d.error().message()}};
    }
    auto f = (*d)->features();
    return {{"Supported", true},
            {"Reason", "runtime " + f.version},
            {"CgroupV1", f.cgroup_v1},
            {"CgroupV2", f.cgroup_v2},
            {"Seccomp", f.seccomp},
            {"UserNamespaces", f.user_namespaces}};
  }
  if (p.kind == sdk::NetworkDriver::kKind) {
    auto d = reg.create<sdk::NetworkDriver>(p.name, ctx);
    if (!d) {
      return {{"Supported", false}, {"Reason", d.error().message()}};
    }
    nlohmann::json info = nlohmann::json::object();
    for (const auto& [k, v] : (*d)->info()) {
      info[k] = v;
    }
    return {{"Supported", true}, {"Info", info}};
  }
  return {{"Supported", nullptr}, {"Reason", "no host probe for this kind"}};
}

Result<int> run_inspect(Context& ctx) {
  BERTH_TRY(auto* engine, ctx.engine());
  auto& reg = engine->plugins();
  nlohmann::json out = nlohmann::json::array();
  for (const auto& name : ctx.args) {
    std::vector<const plugin::PluginInfo*> hits;
    for (const auto& p : reg.plugins()) {
      bool alias = std::find(p.aliases.begin(), p.aliases.end(), name) != p.aliases.end();
      if (p.name == name || alias || p.kind + "/" + p.name == name) {
        hits.push_back(&p);
      }
    }
    if (hits.empty()) {
      return fail(Errc::NotFound, "no plugin named " + name + " (see `berth plugin ls`)");
    }
    for (const auto* p : hits) {
      auto j = plugin::to_json(*p);
      j["Probe"] = probe(*engine, *p);
      out.push_back(j);
    }
  }
  return print_objects(ctx, out);
}

const Registrar reg([] {
  Command group;
  group.name = "plugin";
  group.summary = "Manage berth driver plugins";
  register_command("", std::move(group));

  Command ls;
  ls.name = "ls";
  ls.aliases = {"list"};
  ls.summary = "List the driver plugins found in the plugin path";
  ls.usage = "[options]";
  ls.max_args = 0;
  ls.options = [](po::options_description& d) { add_format_options(d); };
  ls.run = run_ls;
  register_command("plugin", std::move(ls));

  Command inspect;
  inspect.name = "inspect";
  inspect.summary = "Show a plugin's descriptor and what it supports on this host";
  inspect.usage = "[options] NAME [NAME...]";
  inspect.min_args = 1;
  inspect.options = [](po::options_description& d) {
    d.add_options()("format,f", po::value<std::string>(),
                    "Change the output format to JSON or a Go template");
  };
  inspect.run = run_inspect;
  register_command("plugin", std::move(inspect));
});

}  // namespace
}  // namespace berth::cli
