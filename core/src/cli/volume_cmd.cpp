// Volume commands: volume create, ls, inspect, rm, prune, exists, export, import, mount, unmount.
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <iostream>

#include "berth/container/service.hpp"
#include "berth/engine/engine.hpp"
#include "berth/events/events.hpp"
#include "berth/volume/volume.hpp"
#include "command.hpp"
#include "output.hpp"

namespace berth::cli {
namespace {

// Which containers use a volume: the containers whose records hold it (-v, --mount,
// --volumes-from, the image's VOLUME list). Read fresh on every call: `volume rm -f` removes
// users between calls.
volume::UsedBy volume_used_by(Context& ctx) {
  return [&ctx](const std::string& name) -> Result<std::vector<std::string>> {
    BERTH_TRY(auto* eng, ctx.engine());
    BERTH_TRY(auto recs, container::records(*eng));
    std::vector<std::string> ids;
    for (const auto& r : recs) {
      const auto& nv = r.options.storage.named_volumes;
      if (std::find(nv.begin(), nv.end(), name) != nv.end()) {
        ids.push_back(r.id);
      }
    }
    return ids;
  };
}

// `volume rm -f`: the users go first, as Podman does.
Result<void> remove_volume_users(Context& ctx, const std::vector<std::string>& ids,
                                 std::optional<unsigned> timeout) {
  BERTH_TRY(auto* eng, ctx.engine());
  for (const auto& id : ids) {
    container::RemoveOptions ro;
    ro.force = true;
    if (timeout) {
      ro.timeout = *timeout;
    }
    auto r = container::remove(*eng, id, ro);
    if (!r && r.error().code() != Errc::NotFound) {
      return fail(std::move(r).error().wrap("remove container " + id + " using the volume"));
    }
  }
  return {};
}

using nlohmann::json;

// The event log and the volume store of the store the global flags name.
struct Volumes {
  std::unique_ptr<events::EventLog> log;
  volume::VolumeStorePtr store;
};

Result<Volumes> open_volumes(Context& ctx) {
  BERTH_TRY(auto* engine, ctx.engine());
  Volumes v;
  v.log = std::make_unique<events::EventLog>(events::EventLog::from_config(engine->config()));
  BERTH_TRY(v.store, volume::VolumeStore::open(engine->config(), v.log.get()));
  return v;
}

// "key=value" or "key" (value "") into a map, as Podman's --label and --opt.
std::map<std::string, std::string> key_values(const std::vector<std::string>& items) {
  std::map<std::string, std::string> out;
  for (const auto& s : items) {
    auto eq = s.find('=');
    out[s.substr(0, eq)] = eq == std::string::npos ? "" : s.substr(eq + 1);
  }
  return out;
}

Result<int> run_create(Context& ctx) {
  volume::CreateOptions o;
  if (!ctx.args.empty()) {
    o.name = ctx.args[0];
  }
  o.driver = ctx.str("driver");
  o.labels = key_values(ctx.strs("label"));
  o.options = key_values(ctx.strs("opt"));
  o.ignore_existing = ctx.flag("ignore");
  BERTH_TRY(auto vs, open_volumes(ctx));
  BERTH_TRY(auto v, vs.store->create(o));
  ctx.out << v.name << "\n";
  return 0;
}

Result<int> run_ls(Context& ctx) {
  BERTH_TRY(auto vs, open_volumes(ctx));
  BERTH_TRY(auto list, vs.store->list(ctx.strs("filter"), volume_used_by(ctx)));
  json rows = json::array();
  for (const auto& v : list) {
    rows.push_back(volume::to_inspect_json(v));
  }
  format::ListSpec spec;
  spec.default_format = "table {{.Driver}}\t{{.Name}}";
  spec.headers = {{"Name", "VOLUME NAME"}};
  spec.quiet_field = "Name";
  return print_list(ctx, rows, spec);
}

Result<int> run_inspect(Context& ctx) {
  if (ctx.flag("all") == !ctx.args.empty()) {
    return fail(Errc::InvalidArgument, "provide one or more volume names or use --all");
  }
  BERTH_TRY(auto vs, open_volumes(ctx));
  json out = json::array();
  if (ctx.flag("all")) {
    BERTH_TRY(auto list, vs.store->list({}));
    for (const auto& v : list) {
      out.push_back(volume::to_inspect_json(v));
    }
  } else {
    for (const auto& name : ctx.args) {
      auto v = vs.store->get(name);
      if (!v) {
        if (v.error().code() == Errc::NotFound) {
          return fail(Errc::NotFound, "no such volume " + name);
        }
        return fail(v.error());
      }
      out.push_back(volume::to_inspect_json(*v));
    }
  }
  return print_objects(ctx, out);
}

Result<int> run_rm(Context& ctx) {
  bool all = ctx.flag("all");
  if (all == !ctx.args.empty()) {
    return fail(Errc::InvalidArgument, "choose either one or more volumes or all");
  }
  BERTH_TRY(auto vs, open_volumes(ctx));
  std::vector<std::string> names = ctx.args;
  if (all) {
    BERTH_TRY(auto list, vs.store->list({}));
    names.clear();
    for (const auto& v : list) {
      names.push_back(v.name);
    }
  }
  volume::RemoveOptions o;
  o.force = ctx.flag("force");
  o.used_by = volume_used_by(ctx);
  o.remove_containers = [&ctx](const std::vector<std::string>& ids,
                               std::optional<unsigned> timeout) {
    return remove_volume_users(ctx, ids, timeout);
  };
  if (ctx.has("time")) {
    o.timeout = ctx.get<unsigned>("time");
  }
  // Podman: every volume is tried; exit 1 if one was unknown, 2 if one was in use.
  int rc = 0;
  for (const auto& n : names) {
    auto r = vs.store->remove(n, o);
    if (!r) {
      ctx.err << "Error: " << r.error().message() << "\n";
      auto c = r.error().code();
      rc = c == Errc::NotFound                        ? std::max(rc, 1)
           : (c == Errc::Conflict || c == Errc::Busy) ? std::max(rc, 2)
                                                      : kExitEngineError;
      continue;
    }
    ctx.out << n << "\n";
  }
  return rc;
}

Result<int> run_prune(Context& ctx) {
  if (!ctx.flag("force")) {
    ctx.err << "WARNING! This will remove all volumes not used by at least one container. The "
               "following volumes will be removed:\n";
    BERTH_TRY(auto vs, open_volumes(ctx));
    BERTH_TRY(auto list, vs.store->list(ctx.strs("filter"), volume_used_by(ctx)));
    auto used_by = volume_used_by(ctx);
    for (const auto& v : list) {
      BERTH_TRY(auto users, used_by(v.name));
      if (users.empty()) {
        ctx.err << v.name << "\n";
      }
    }
    ctx.err << "Are you sure you want to continue? [y/N] ";
    std::string answer;
    if (!std::getline(std::cin, answer) || (answer != "y" && answer != "Y" && answer != "yes")) {
      return 0;
    }
  }
  BERTH_TRY(auto vs, open_volumes(ctx));
  BERTH_TRY(auto removed, vs.store->prune(ctx.strs("filter"), volume_used_by(ctx)));
  for (const auto& n : removed) {
    ctx.out << n << "\n";
  }
  return 0;
}

Result<int> run_exists(Context& ctx) {
  BERTH_TRY(auto vs, open_volumes(ctx));
  BERTH_TRY(bool ok, vs.store->exists(ctx.args[0]));
  return ok ? 0 : 1;
}

Result<int> run_export(Context& ctx) {
  std::string out = ctx.str("output");
  UniqueFd file;
  int fd = STDOUT_FILENO;
  BERTH_TRY(auto vs, open_volumes(ctx));
  BERTH_TRY(auto v, vs.store->get(ctx.args[0]));
  if (out.empty()) {
    if (::isatty(STDOUT_FILENO) == 1) {
      return fail(Errc::InvalidArgument,
                  "expects output path, use --output=[path] or redirect stdout");
    }
  } else {
    int f = ::open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (f < 0) {
      return fail_errno("create", out);
    }
    file = UniqueFd(f);
    fd = f;
  }
  ctx.out.flush();
  BERTH_TRYV(vs.store->export_tar(v.name, fd));
  return 0;
}

Result<int> run_import(Context& ctx) {
  const auto& src = ctx.args[1];
  UniqueFd file;
  int fd = STDIN_FILENO;
  BERTH_TRY(auto vs, open_volumes(ctx));
  BERTH_TRY(auto v, vs.store->get(ctx.args[0]));
  if (src != "-") {
    int f = ::open(src.c_str(), O_RDONLY | O_CLOEXEC);
    if (f < 0) {
      return fail_errno("open", src);
    }
    file = UniqueFd(f);
    fd = f;
  } else if (::isatty(STDIN_FILENO) == 1) {
    return fail(Errc::InvalidArgument, "cannot read a tarball from a terminal; redirect stdin");
  }
  BERTH_TRYV(vs.store->import_tar(v.name, fd));
  return 0;
}

Result<int> run_mount(Context& ctx) {
  BERTH_TRY(auto vs, open_volumes(ctx));
  for (const auto& n : ctx.args) {
    BERTH_TRY(auto path, vs.store->acquire(n));
    ctx.out << path << "\n";
  }
  return 0;
}

Result<int> run_unmount(Context& ctx) {
  BERTH_TRY(auto vs, open_volumes(ctx));
  for (const auto& n : ctx.args) {
    BERTH_TRYV(vs.store->release(n));
    ctx.out << n << "\n";
  }
  return 0;
}

const Registrar reg([] {
  Command group;
  group.name = "volume";
  group.summary = "Manage volumes";
  register_command("", std::move(group));

  register_command(
      "volume",
      make_command(
          "create", "Create a new volume", "[options] [NAME]", 0, 1,
          [](po::options_description& d) {
            d.add_options()("driver,d", po::value<std::string>()->default_value("local"),
                            "Specify volume driver name")(
                "label,l", po::value<std::vector<std::string>>()->composing(),
                "Set metadata for a volume (e.g. --label mykey=value)")(
                "opt,o", po::value<std::vector<std::string>>()->composing(),
                "Set driver specific options (type=tmpfs, device=, o=, uid=, gid=, nocopy)")(
                "ignore", po::bool_switch(), "Don't fail if volume already exists");
          },
          run_create));

  auto ls = make_command(
      "ls", "List volumes", "[options]", 0, 0,
      [](po::options_description& d) {
        add_format_options(d);
        d.add_options()("filter,f", po::value<std::vector<std::string>>()->composing(),
                        "Filter volume output (name, driver, label, opt, scope, "
                        "until, dangling)");
      },
      run_ls);
  ls.aliases = {"list"};
  register_command("volume", std::move(ls));

  register_command("volume", make_command(
                                 "inspect", "Display detailed information on one or more volumes",
                                 "[options] VOLUME [VOLUME...]", 0, SIZE_MAX,
                                 [](po::options_description& d) {
                                   d.add_options()("all,a", po::bool_switch(),
                                                   "Inspect all volumes")(
                                       "format,f", po::value<std::string>(),
                                       "Format volume output using JSON or a Go template");
                                 },
                                 run_inspect));

  auto rm = make_command(
      "rm", "Remove one or more volumes", "[options] VOLUME [VOLUME...]", 0, SIZE_MAX,
      [](po::options_description& d) {
        d.add_options()("all,a", po::bool_switch(), "Remove all volumes")(
            "force,f", po::bool_switch(),
            "Remove a volume by force, even if it is being used by a container")(
            "time,t", po::value<unsigned>(),
            "Seconds to wait for running containers to stop before killing them");
      },
      run_rm);
  rm.aliases = {"remove"};
  register_command("volume", std::move(rm));

  register_command("volume", make_command(
                                 "prune", "Remove all unused volumes", "[options]", 0, 0,
                                 [](po::options_description& d) {
                                   d.add_options()("force,f", po::bool_switch(),
                                                   "Do not prompt for confirmation")(
                                       "filter", po::value<std::vector<std::string>>()->composing(),
                                       "Provide filter values (e.g. 'label=<key>=<value>')");
                                 },
                                 run_prune));
  register_command("volume", make_command("exists", "Volume exists in local storage", "VOLUME", 1,
                                          1, nullptr, run_exists));
  register_command("volume", make_command(
                                 "export", "Export volumes", "[options] VOLUME", 1, 1,
                                 [](po::options_description& d) {
                                   d.add_options()("output,o", po::value<std::string>(),
                                                   "Write to a specified file (default: stdout)");
                                 },
                                 run_export));
  register_command("volume", make_command("import", "Import a tarball contents into a volume",
                                          "VOLUME [SOURCE]", 2, 2, nullptr, run_import));
  register_command("volume", make_command("mount", "Mount volume", "VOLUME [VOLUME...]", 1,
                                          SIZE_MAX, nullptr, run_mount));
  register_command("volume", make_command("unmount", "Unmount volume", "VOLUME [VOLUME...]", 1,
                                          SIZE_MAX, nullptr, run_unmount));
});

}  // namespace
}  // namespace berth::cli
