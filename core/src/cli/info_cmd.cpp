// berth info (also `berth system info`)
#include "berth/engine/info.hpp"
#include "command.hpp"
#include "output.hpp"
#include "yaml.hpp"

namespace berth::cli {
namespace {

Result<int> run_info(Context& ctx) {
  BERTH_TRY(auto* engine, ctx.engine());
  auto j = engine::info(*engine);
  if (ctx.has("format")) {
    return print_object(ctx, j);
  }
  ctx.print(to_yaml(j));
  return 0;
}

Command info_command() {
  Command c;
  c.name = "info";
  c.summary = "Display berth system information";
  c.description =
      "Information about the host, the store (which storage driver was chosen and why), the "
      "configured registries and the plugins found.";
  c.usage = "[options]";
  c.examples = "berth info --format '{{.Store.GraphDriverName}}'";
  c.max_args = 0;
  c.options = [](po::options_description& d) {
    d.add_options()("format,f", po::value<std::string>(),
                    "Change the output format to JSON or a Go template");
    d.add_options()("debug,D", po::bool_switch(), "Display additional debug information");
  };
  c.run = run_info;
  return c;
}

const Registrar reg([] {
  register_command("", info_command());
  Command sys;
  sys.name = "system";
  sys.summary = "Manage berth";
  register_command("", std::move(sys));
  register_command("system", info_command());
});

}  // namespace
}  // namespace berth::cli
