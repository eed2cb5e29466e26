// berth version
#include "berth/engine/info.hpp"
#include "command.hpp"
#include "output.hpp"

namespace berth::cli {
namespace {

nlohmann::json version_json() {
  auto client = engine::version_info();
  client["GitCommit"] = BERTH_GIT_COMMIT;
  return {{"Client", client}};
}

Result<int> run_version(Context& ctx) {
  auto v = version_json();
  if (ctx.has("format")) {
    return print_object(ctx, v);
  }
  const auto& c = v["Client"];
  ctx.out << "Client:       Berth Engine\n"
          << "Version:      " << c["Version"].get<std::string>() << "\n"
          << "API Version:  " << c["APIVersion"].get<std::string>() << "\n"
          << "Compiler:     " << c["CompilerVersion"].get<std::string>() << "\n"
          << "Git Commit:   " << c["GitCommit"].get<std::string>() << "\n"
          << "OS/Arch:      " << c["OsArch"].get<std::string>() << "\n";
  return 0;
}

const Registrar reg([] {
  Command c;
  c.name = "version";
  c.summary = "Display the berth version information";
  c.usage = "[options]";
  c.max_args = 0;
  c.options = [](po::options_description& d) { add_format_options(d, false, false); };
  c.run = run_version;
  register_command("", std::move(c));
});

}  // namespace
}  // namespace berth::cli
