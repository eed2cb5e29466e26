// Container storage commands: cp, diff, export, commit, mount, unmount.
#include <fcntl.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "berth/container/storage_ops.hpp"
#include "berth/engine/engine.hpp"
#include "command.hpp"

namespace berth::cli {
namespace {

namespace bc = berth::container;
using nlohmann::json;

Result<int> run_cp(Context& ctx) {
  BERTH_TRY(auto* eng, ctx.engine());
  bc::CopyOptions o;
  o.source = ctx.args[0];
  o.destination = ctx.args[1];
  o.chown_to_user = ctx.flag("archive");
  o.overwrite = ctx.flag("overwrite");
  // Podman's tar on stdout: every entry owned by the container's user.
  o.tar_owners = bc::CopyOptions::TarOwners::ContainerUser;
  ctx.out.flush();
  BERTH_TRYV(bc::copy(*eng, o));
  return 0;
}

Result<int> run_diff(Context& ctx) {
  BERTH_TRY(auto* eng, ctx.engine());
  BERTH_TRY(auto changes, bc::diff(*eng, ctx.args[0]));
  const std::string format = ctx.str("format");
  if (format == "json") {
    json out = json::object();
    for (const auto& c : changes) {
      const char* key = c.kind == sdk::Change::Kind::Added     ? "added"
                        : c.kind == sdk::Change::Kind::Deleted ? "deleted"
                                                               : "changed";
      out[key].push_back(c.path);
    }
    ctx.out << out.dump(4) << "\n";
    return 0;
  }
  if (!format.empty()) {
    return fail(Errc::InvalidArgument, "diff: unknown --format \"" + format + "\" (only json)");
  }
  for (const auto& c : changes) {
    ctx.out << bc::change_letter(c.kind) << " " << c.path << "\n";
  }
  return 0;
}

Result<int> run_export(Context& ctx) {
  BERTH_TRY(auto* eng, ctx.engine());
  const std::string out = ctx.str("output");
  UniqueFd file;
  int fd = STDOUT_FILENO;
  if (out.empty()) {
    if (::isatty(STDOUT_FILENO) == 1) {
      return fail(Errc::InvalidArgument, "refusing to export to terminal. Use -o flag or redirect");
    }
  } else {
    file = UniqueFd(::open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
    if (!file) {
      return fail_errno("create", out);
    }
    fd = file.get();
  }
  ctx.out.flush();
  BERTH_TRYV(bc::export_rootfs(*eng, ctx.args[0], fd));
  return 0;
}

Result<int> run_commit(Context& ctx) {
  BERTH_TRY(auto* eng, ctx.engine());
  bc::CommitOptions o;
  if (ctx.args.size() > 1) {
    o.reference = ctx.args[1];
  }
  o.changes = ctx.strs("change");
  o.message = ctx.str("message");
  o.author = ctx.str("author");
  o.pause = ctx.flag("pause");
  if (ctx.has("format")) {
    o.format = ctx.str("format");
  }
  BERTH_TRY(auto id, bc::commit(*eng, ctx.args[0], o));
  ctx.out << id << "\n";
  return 0;
}

Result<int> run_mount(Context& ctx) {
  BERTH_TRY(auto* eng, ctx.engine());
  if (ctx.args.empty()) {
    BERTH_TRY(auto list, bc::mounted(*eng));
    if (ctx.str("format") == "json") {
      json out = json::array();
      for (const auto& [id, path] : list) {
        out.push_back({{"id", id}, {"mountpoint", path}});
      }
      ctx.out << out.dump(4) << "\n";
      return 0;
    }
    for (const auto& [id, path] : list) {
      ctx.out << (ctx.flag("no-trunc") ? id : id.substr(0, 12)) << " " << path << "\n";
    }
    return 0;
  }
  for (const auto& n : ctx.args) {
    BERTH_TRY(auto path, bc::mount(*eng, n));
    ctx.out << path << "\n";
  }
  return 0;
}

Result<int> run_unmount(Context& ctx) {
  BERTH_TRY(auto* eng, ctx.engine());
  std::vector<std::string> names = ctx.args;
  if (ctx.flag("all")) {
    BERTH_TRY(auto list, bc::mounted(*eng));
    names.clear();
    for (const auto& [id, _] : list) {
      names.push_back(id);
    }
  } else if (names.empty()) {
    return fail(Errc::InvalidArgument, "container ID must be specified or use --all");
  }
  int rc = 0;
  for (const auto& n : names) {
    auto r = bc::unmount(*eng, n, ctx.flag("force") || ctx.flag("all"));
    if (!r) {
      ctx.err << "Error: " << r.error().message() << "\n";
      rc = kExitEngineError;
      continue;
    }
    ctx.out << n << "\n";
  }
  return rc;
}

const Registrar reg([] {
  register_command("container",
                   make_command(
                       "cp", "Copy files/folders between a container and the local filesystem",
                       "[options] [CONTAINER:]SRC_PATH [CONTAINER:]DEST_PATH", 2, 2,
                       [](po::options_description& d) {
                         d.add_options()(
                             "archive,a",
                             po::value<bool>()->default_value(true)->implicit_value(true),
                             "Chown copied files to the primary uid/gid of the "
                             "destination container (false: keep the source's)")(
                             "overwrite", po::bool_switch(),
                             "Allow to overwrite directories with non-directories and vice versa");
                       },
                       run_cp));
  register_command(
      "container",
      make_command(
          "diff", "Inspect changes to the container's file systems", "[options] CONTAINER", 1, 1,
          [](po::options_description& d) {
            d.add_options()("format", po::value<std::string>(), "Change the output format (json)");
          },
          run_diff));
  register_command("container",
                   make_command(
                       "export", "Export a container's filesystem contents as a tar archive",
                       "[options] CONTAINER", 1, 1,
                       [](po::options_description& d) {
                         d.add_options()("output,o", po::value<std::string>(),
                                         "Write to a specified file (default: stdout)");
                       },
                       run_export));
  register_command(
      "container",
      make_command(
          "commit", "Create new image based on the changed container",
          "[options] CONTAINER [IMAGE]", 1, 2,
          [](po::options_description& d) {
            d.add_options()("change,c", po::value<std::vector<std::string>>()->composing(),
                            "Apply the following possible instructions to the created image "
                            "(default []): CMD | ENTRYPOINT | ENV | EXPOSE | LABEL | ONBUILD | "
                            "STOPSIGNAL | USER | VOLUME | WORKDIR")(
                "message,m", po::value<std::string>(), "Set commit message for imported image")(
                "author,a", po::value<std::string>(), "Set the author for the image committed")(
                "pause,p", po::bool_switch(), "Pause container during commit")(
                "format,f", po::value<std::string>(),
                "Format of the image manifest and "
                "metadata (oci or docker)")("quiet,q", po::bool_switch(), "Suppress output");
          },
          run_commit));
  register_command("container", make_command(
                                    "mount", "Mount a working container's root filesystem",
                                    "[options] [CONTAINER...]", 0, SIZE_MAX,
                                    [](po::options_description& d) {
                                      d.add_options()("format", po::value<std::string>(),
                                                      "Print the mounted containers in json")(
                                          "no-trunc", po::bool_switch(), "Do not truncate output");
                                    },
                                    run_mount));
  Command um = make_command(
      "unmount", "Unmount working container's root filesystem", "[options] CONTAINER [...]", 0,
      SIZE_MAX,
      [](po::options_description& d) {
        d.add_options()("all,a", po::bool_switch(),
                        "Unmount all of the currently mounted "
                        "containers")(
            "force,f", po::bool_switch(),
            "Force the complete unmount of the specified mounted containers");
      },
      run_unmount);
  um.aliases = {"umount"};
  register_command("container", std::move(um));
  for (const char* s : {"cp", "diff", "export", "commit", "mount", "unmount"}) {
    register_shortcut(s, std::string("container ") + s);
  }
  register_shortcut("umount", "container unmount");
});

}  // namespace
}  // namespace berth::cli
