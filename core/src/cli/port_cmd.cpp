// berth port CONTAINER [PRIVATE_PORT[/PROTO]]: the published ports of a running container.
#include "berth/container/net_options.hpp"
#include "berth/container/service.hpp"
#include "berth/engine/engine.hpp"
#include "command.hpp"

namespace berth::cli {
namespace {

namespace bc = berth::container;

Result<int> run_port(Context& ctx) {
  BERTH_TRY(auto* eng, ctx.engine());
  bool all = ctx.flag("all");
  bool latest = ctx.flag("latest");
  std::vector<std::string> names;
  std::string filter;
  if (all || latest) {
    if (ctx.args.size() > 1) {
      return fail(Errc::InvalidArgument, "--all and --latest take at most a port argument");
    }
    if (!ctx.args.empty()) {
      filter = ctx.args[0];
    }
    BERTH_TRY(auto recs, bc::records(*eng));
    const bc::ContainerRecord* newest = nullptr;
    for (const auto& r : recs) {
      if (all) {
        names.push_back(r.id);
      }
      if (newest == nullptr || r.created > newest->created) {
        newest = &r;
      }
    }
    if (latest && newest != nullptr) {
      names.push_back(newest->id);
    }
  } else {
    if (ctx.args.empty()) {
      return fail(Errc::InvalidArgument, "you must supply a running container name or ID");
    }
    names.push_back(ctx.args[0]);
    if (ctx.args.size() > 1) {
      filter = ctx.args[1];
    }
  }
  uint32_t want_port = 0;
  std::string want_proto = "tcp";
  if (!filter.empty()) {
    auto slash = filter.find('/');
    std::string num = filter.substr(0, slash);
    if (slash != std::string::npos) {
      want_proto = filter.substr(slash + 1);
    }
    try {
      size_t used = 0;
      unsigned long v = std::stoul(num, &used);
      if (used != num.size() || v == 0 || v > 65535) {
        throw std::invalid_argument(num);
      }
      want_port = static_cast<uint32_t>(v);
    } catch (const std::exception&) {
      return fail(Errc::InvalidArgument, "invalid port \"" + filter + "\" (expected PORT[/PROTO])");
    }
  }
  for (const auto& name : names) {
    BERTH_TRY(auto ports, bc::published_ports(*eng, name));
    bool found = false;
    for (const auto& p : ports) {
      if (want_port != 0) {
        if (p.container_port != want_port || p.protocol != want_proto) {
          continue;
        }
        found = true;
        ctx.out << p.host_ip << ":" << p.host_port << "\n";
        continue;
      }
      if (all) {
        ctx.out << name.substr(0, 12) << "\t";
      }
      ctx.out << p.container_port << "/" << p.protocol << " -> " << p.host_ip << ":" << p.host_port
              << "\n";
    }
    if (want_port != 0 && !found && !all) {
      return fail(Errc::NotFound, "failed to find published port \"" + filter + "\"");
    }
  }
  return 0;
}

const Registrar reg([] {
  Command c;
  c.name = "port";
  c.summary = "List port mappings or a specific mapping for the container";
  c.usage = "[options] CONTAINER [PRIVATE_PORT[/PROTO]]";
  c.max_args = 2;
  c.options = [](po::options_description& d) {
    d.add_options()("all,a", po::bool_switch(), "Display port information for all containers")(
        "latest,l", po::bool_switch(), "Act on the latest container berth is aware of");
  };
  c.run = run_port;
  register_command("container", std::move(c));
  register_shortcut("port", "container port");
});

}  // namespace
}  // namespace berth::cli
