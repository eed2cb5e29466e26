// berth system service [URI]: the library behind the Docker-compatible REST API.
#include "berth/api/service.hpp"
#include "berth/engine/engine.hpp"
#include "command.hpp"

namespace berth::cli {
namespace {

Result<int> run_service(Context& ctx) {
  api::ServiceOptions o;
  if (!ctx.args.empty()) {
    o.uri = ctx.args[0];
  }
  o.idle_timeout = ctx.get<uint32_t>("time", 5);
  o.group = ctx.str("group");
  const auto& g = ctx.globals;
  if (!g.root.empty()) {
    o.overrides.root = g.root;
  }
  if (!g.runroot.empty()) {
    o.overrides.runroot = g.runroot;
  }
  if (!g.storage_driver.empty()) {
    o.overrides.storage_driver = g.storage_driver;
  }
  o.overrides.storage_opts = g.storage_opts;
  if (!g.config.empty()) {
    o.overrides.config_path = g.config;
  }
  // The store opens (and repairs what a crash left) once, before any thread starts.
  BERTH_TRY(auto* engine, ctx.engine());
  BERTH_TRYV(engine->store(false));
  BERTH_TRYV(api::serve(o));
  return 0;
}

const Registrar reg([] {
  Command c;
  c.name = "service";
  c.summary = "Run an API service";
  c.usage = "[options] [URI]";
  c.description =
      "Serve the Docker Engine API (and libpod-style routes) over the berth library on a unix "
      "socket (default unix:///run/berth/berth.sock as root, "
      "unix://$XDG_RUNTIME_DIR/berth/berth.sock rootless) or on tcp://127.0.0.1:PORT. A socket "
      "passed by systemd (LISTEN_FDS) is used when present.";
  c.examples =
      "berth system service --time 0 unix:///tmp/berth.sock\n"
      "DOCKER_HOST=unix:///tmp/berth.sock docker ps";
  c.max_args = 1;
  c.options = [](po::options_description& d) {
    d.add_options()("time,t", po::value<uint32_t>()->default_value(5),
                    "Time until the service session expires in seconds. Use 0 to disable the "
                    "timeout")("group", po::value<std::string>(),
                               "Group owning the unix socket (mode 0660)");
  };
  c.run = run_service;
  register_command("system", std::move(c));
});

}  // namespace
}  // namespace berth::cli
