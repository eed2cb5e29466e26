// Local image commands: images, image inspect, load, save, import, tag, untag, rmi, history,
// image prune, image exists, image mount/unmount, system check/reset.
#include <unistd.h>

#include <iostream>
#include <set>

#include "berth/container/service.hpp"
#include "berth/copy/auth.hpp"
#include "berth/copy/copy.hpp"
#include "berth/engine/engine.hpp"
#include "berth/events/events.hpp"
#include "berth/image/image_service.hpp"
#include "berth/sdk/layer_archive.hpp"
#include "berth/util/human.hpp"
#include "berth/util/log.hpp"
#include "berth/volume/volume.hpp"
#include "command.hpp"
#include "image_usage.hpp"
#include "output.hpp"

namespace berth::cli {
namespace {

using nlohmann::json;

// Logs an image event (Podman's libimage events); a failure to log never fails the command.
void image_event(Context& ctx, const char* status, const std::string& id, const std::string& name) {
  auto engine = ctx.engine();
  if (!engine) {
    return;
  }
  events::Event e;
  e.type = std::string(events::type::kImage);
  e.status = status;
  e.id = id;
  e.name = name;
  // One engine per process: read the logger configuration once.
  static const events::EventLog log = events::EventLog::from_config((*engine)->config());
  if (auto r = log.emit(e); !r) {
    spdlog::warn("{}", r.error().message());
  }
}

// The names an image has now ("" -> none); for the tag/untag events.
std::vector<std::string> image_names(store::Store& st, const std::string& name) {
  auto rec = image::lookup_image(st, name);
  return rec ? rec->names : std::vector<std::string>{};
}

Result<store::Store*> open_store(Context& ctx, bool read_only = false) {
  BERTH_TRY(auto* engine, ctx.engine());
  return engine->store(read_only);
}

std::string short_id(const std::string& id, bool no_trunc) {
  return no_trunc ? "sha256:" + id : id.substr(0, 12);
}

// "docker.io/library/busybox:latest" -> {"docker.io/library/busybox", "latest"}.
std::pair<std::string, std::string> split_name(const std::string& name) {
  auto slash = name.rfind('/');
  auto colon = name.rfind(':');
  if (colon != std::string::npos && (slash == std::string::npos || colon > slash)) {
    return {name.substr(0, colon), name.substr(colon + 1)};
  }
  return {name, "<none>"};
}

// One table row per name, as `podman images`.
json image_rows(const json& list, bool no_trunc) {
  json rows = json::array();
  for (const auto& img : list) {
    std::vector<std::string> names;
    if (img["RepoTags"].is_array()) {
      names = img["RepoTags"].get<std::vector<std::string>>();
    }
    if (names.empty()) {
      names.push_back("");
    }
    std::string digest = img.value("Digest", "");
    for (const auto& n : names) {
      json r = img;
      auto [repo, tag] =
          n.empty() ? std::pair<std::string, std::string>{"<none>", "<none>"} : split_name(n);
      r["Repository"] = repo;
      r["Tag"] = tag;
      r["ID"] = short_id(img["Id"].get<std::string>(), no_trunc);
      r["Created"] = util::time_ago(img["Created"].get<int64_t>());
      r["CreatedSince"] = r["Created"];
      r["Size"] = util::human_size(static_cast<double>(img["Size"].get<int64_t>()));
      r["SharedSize"] = util::human_size(static_cast<double>(img["SharedSize"].get<int64_t>()));
      r["VirtualSize"] = r["Size"];
      r["Digest"] = digest;
      r["ReadOnly"] = false;
      rows.push_back(std::move(r));
    }
  }
  return rows;
}

Result<int> run_images(Context& ctx) {
  BERTH_TRY(auto* st, open_store(ctx, true));
  image::ListOptions o;
  o.filters = ctx.strs("filter");
  for (const auto& a : ctx.args) {
    o.filters.push_back("reference=" + a);
  }
  o.sort = ctx.str("sort");
  o.containers = image_container_count(ctx);
  BERTH_TRY(auto list, image::list_images(*st, o));
  bool no_trunc = ctx.flag("no-trunc");
  if (format::is_json_format(ctx.str("format"))) {
    return print_list(ctx, list, format::ListSpec{});
  }
  if (ctx.flag("quiet") && !ctx.has("format")) {
    std::set<std::string> seen;
    for (const auto& img : list) {
      auto id = short_id(img["Id"].get<std::string>(), no_trunc);
      if (seen.insert(id).second) {
        ctx.out << id << "\n";
      }
    }
    return 0;
  }
  format::ListSpec spec;
  spec.default_format =
      ctx.flag("digests")
          ? "table {{.Repository}}\t{{.Tag}}\t{{.Digest}}\t{{.ID}}\t{{.Created}}\t{{.Size}}"
          : "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.Created}}\t{{.Size}}";
  spec.headers = {{"ID", "IMAGE ID"}};
  spec.quiet_field = "ID";
  return print_list(ctx, image_rows(list, no_trunc), spec);
}

// `image inspect docker://REF`: the remote image as skopeo shows it; --raw: its manifest bytes.
Result<int> inspect_remote_images(Context& ctx) {
  copy::PullOptions o;
  if (ctx.has("tls-verify")) {
    o.access.tls_verify = ctx.get<bool>("tls-verify");
  }
  o.access.cert_dir = ctx.str("cert-dir");
  o.access.authfile = ctx.str("authfile");
  if (ctx.has("creds")) {
    BERTH_TRY(auto c, copy::parse_creds(ctx.str("creds")));
    o.access.credentials = c;
  }
  BERTH_TRY(auto* engine, ctx.engine());
  json out = json::array();
  for (const auto& name : ctx.args) {
    if (name.rfind("docker://", 0) != 0) {
      return fail(Errc::InvalidArgument,
                  "\"" + name + "\": local and docker:// images cannot be mixed in one inspect");
    }
    BERTH_TRY(auto img, copy::inspect_remote(*engine, name.substr(9), o));
    if (ctx.flag("raw")) {
      ctx.out << img.raw;
      if (!img.raw.empty() && img.raw.back() != '\n') {
        ctx.out << "\n";
      }
      continue;
    }
    BERTH_TRY(auto j, copy::remote_inspect_json(img));
    out.push_back(std::move(j));
  }
  if (ctx.flag("raw")) {
    return 0;
  }
  return print_objects(ctx, out);
}

Result<int> run_image_inspect(Context& ctx) {
  if (ctx.args.front().rfind("docker://", 0) == 0) {
    return inspect_remote_images(ctx);
  }
  if (ctx.flag("raw")) {
    return fail(Errc::InvalidArgument, "--raw applies to docker:// images");
  }
  BERTH_TRY(auto* st, open_store(ctx, true));
  json out = json::array();
  for (const auto& name : ctx.args) {
    BERTH_TRY(auto j, image::inspect_image(*st, name));
    out.push_back(std::move(j));
  }
  return print_objects(ctx, out);
}

bool stdin_is_tty() {
  return ::isatty(STDIN_FILENO) == 1;
}

Result<int> run_load(Context& ctx) {
  image::LoadOptions o;
  o.path = ctx.str("input");
  if (o.path.empty()) {
    if (stdin_is_tty()) {
      return fail(Errc::InvalidArgument,
                  "cannot read from terminal; use `berth load -i FILE` or redirect stdin");
    }
    o.fd = STDIN_FILENO;
  }
  BERTH_TRY(auto* st, open_store(ctx));
  BERTH_TRY(auto r, image::load(*st, o));
  for (size_t i = 0; i < r.ids.size(); ++i) {
    image_event(ctx, "loadfromarchive", r.ids[i], i < r.loaded.size() ? r.loaded[i] : "");
  }
  if (!ctx.flag("quiet")) {
    for (const auto& name : r.loaded) {
      ctx.out << "Loaded image: " << name << "\n";
    }
  }
  return 0;
}

Result<int> run_save(Context& ctx) {
  image::SaveOptions o;
  BERTH_TRY(o.format, image::parse_save_format(ctx.str("format").empty() ? "docker-archive"
                                                                         : ctx.str("format")));
  o.path = ctx.str("output");
  if (o.path.empty()) {
    if (o.format == image::SaveFormat::OciDir || o.format == image::SaveFormat::DockerDir) {
      return fail(Errc::InvalidArgument, "a directory format needs --output DIR");
    }
    if (::isatty(STDOUT_FILENO) == 1) {
      return fail(Errc::InvalidArgument,
                  "refusing to save to terminal; use -o FILE or redirect stdout");
    }
    o.fd = STDOUT_FILENO;
  }
  o.images = ctx.args;
  BERTH_TRY(auto* st, open_store(ctx, true));
  BERTH_TRYV(image::save(*st, o));
  for (const auto& name : o.images) {
    auto rec = image::lookup_image(*st, name);
    image_event(ctx, "save", rec ? rec->id : "", name);
  }
  return 0;
}

Result<int> run_import(Context& ctx) {
  image::ImportOptions o;
  const auto& src = ctx.args[0];
  if (src == "-") {
    o.fd = STDIN_FILENO;
  } else if (src.rfind("http://", 0) == 0 || src.rfind("https://", 0) == 0) {
    return fail(Errc::NotSupported,
                "import from a URL is not supported; download the tarball and import the file");
  } else {
    o.path = src;
  }
  if (ctx.args.size() > 1) {
    o.reference = ctx.args[1];
  }
  o.changes = ctx.strs("change");
  o.message = ctx.str("message");
  if (ctx.has("os")) {
    o.os = ctx.str("os");
  }
  o.architecture = ctx.str("arch");
  BERTH_TRY(auto* st, open_store(ctx));
  BERTH_TRY(auto id, image::import_image(*st, o));
  image_event(ctx, "import", id, o.reference);
  ctx.out << "sha256:" << id << "\n";
  return 0;
}

Result<int> run_tag(Context& ctx) {
  BERTH_TRY(auto* st, open_store(ctx));
  for (size_t i = 1; i < ctx.args.size(); ++i) {
    auto before = image_names(*st, ctx.args[0]);
    BERTH_TRYV(image::tag_image(*st, ctx.args[0], ctx.args[i]));
    auto rec = image::lookup_image(*st, ctx.args[0]);
    std::string added = ctx.args[i];
    for (const auto& n : rec ? rec->names : before) {
      if (std::find(before.begin(), before.end(), n) == before.end()) {
        added = n;  // the normalized name ("localhost/foo:latest")
      }
    }
    image_event(ctx, "tag", rec ? rec->id : "", added);
  }
  return 0;
}

Result<int> run_untag(Context& ctx) {
  BERTH_TRY(auto* st, open_store(ctx));
  std::vector<std::string> names(ctx.args.begin() + 1, ctx.args.end());
  auto untag_rec = image::lookup_image(*st, ctx.args[0]);
  BERTH_TRYV(image::untag_image(*st, ctx.args[0], names));
  if (untag_rec) {
    auto after = image_names(*st, untag_rec->id);
    for (const auto& n : untag_rec->names) {
      if (std::find(after.begin(), after.end(), n) == after.end()) {
        image_event(ctx, "untag", untag_rec->id, n);
      }
    }
  }
  return 0;
}

Result<int> run_rmi(Context& ctx) {
  BERTH_TRY(auto* st, open_store(ctx));
  std::vector<std::string> targets = ctx.args;
  if (ctx.flag("all")) {
    BERTH_TRY(auto imgs, st->images());
    targets.clear();
    for (const auto& i : imgs) {
      targets.push_back(i.id);
    }
  } else if (targets.empty()) {
    return fail(Errc::InvalidArgument, "image name or ID must be specified");
  }
  image::RemoveOptions o;
  o.force = ctx.flag("force");
  o.in_use = image_in_use(ctx);
  int rc = 0;
  // Podman: each image is tried; exit 1 if one was unknown, 2 if one was in use.
  for (const auto& t : targets) {
    auto rmi_rec = image::lookup_image(*st, t);
    auto r = image::remove_images(*st, {t}, o);
    if (!r) {
      ctx.err << "Error: " << r.error().message() << "\n";
      if (r.error().code() == Errc::NotFound) {
        rc = ctx.flag("ignore") ? rc : std::max(rc, 1);
      } else if (r.error().code() == Errc::Conflict) {
        rc = std::max(rc, 2);
      } else {
        rc = kExitEngineError;
      }
      continue;
    }
    for (const auto& n : r->untagged) {
      ctx.out << "Untagged: " << n << "\n";
      image_event(ctx, "untag", rmi_rec ? rmi_rec->id : "", n);
    }
    for (const auto& id : r->deleted) {
      ctx.out << "Deleted: " << id << "\n";
      image_event(ctx, "remove", id, t);
    }
  }
  return rc;
}

Result<int> run_history(Context& ctx) {
  BERTH_TRY(auto* st, open_store(ctx, true));
  BERTH_TRY(auto rows, image::image_history(*st, ctx.args[0]));
  if (format::is_json_format(ctx.str("format"))) {
    return print_list(ctx, rows, format::ListSpec{});
  }
  bool no_trunc = ctx.flag("no-trunc");
  bool human = !ctx.has("human") || ctx.flag("human");
  json table = json::array();
  for (const auto& r : rows) {
    json t = r;
    auto id = r.value("id", "");
    t["ID"] = id == "<missing>" || no_trunc ? id : id.substr(0, 12);
    std::string created = r.value("created", "");
    t["Created"] = created;
    t["CreatedSince"] = created;
    std::string by = r.value("CreatedBy", "");
    if (!no_trunc && by.size() > 45) {
      by = by.substr(0, 42) + "...";
    }
    t["CreatedBy"] = by;
    int64_t size = r.value("size", int64_t{0});
    t["Size"] = human ? util::human_size(static_cast<double>(size)) : std::to_string(size);
    t["Comment"] = r.value("comment", "");
    table.push_back(std::move(t));
  }
  format::ListSpec spec;
  spec.default_format = "table {{.ID}}\t{{.Created}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}";
  spec.quiet_field = "ID";
  return print_list(ctx, table, spec);
}

bool confirm(Context& ctx, const std::string& warning) {
  ctx.err << warning << "\nAre you sure you want to continue? [y/N] ";
  std::string answer;
  if (!std::getline(std::cin, answer)) {
    return false;
  }
  return answer == "y" || answer == "Y" || answer == "yes";
}

Result<int> run_image_prune(Context& ctx) {
  bool all = ctx.flag("all");
  if (!ctx.flag("force") &&
      !confirm(ctx, all ? "WARNING! This command removes all images without at least one "
                          "container associated with them."
                        : "WARNING! This command removes all dangling images.")) {
    return 0;
  }
  BERTH_TRY(auto* st, open_store(ctx));
  BERTH_TRY(auto removed, image::prune_images(*st, all, image_in_use(ctx)));
  for (const auto& id : removed) {
    ctx.out << id << "\n";
    image_event(ctx, "remove", id, "");
  }
  return 0;
}

Result<int> run_image_exists(Context& ctx) {
  BERTH_TRY(auto* st, open_store(ctx, true));
  BERTH_TRY(bool ok, image::image_exists(*st, ctx.args[0]));
  return ok ? 0 : 1;
}

Result<int> run_image_mount(Context& ctx) {
  BERTH_TRY(auto* st, open_store(ctx));
  for (const auto& name : ctx.args) {
    BERTH_TRY(auto path, image::mount_image(*st, name));
    auto mounted = image::lookup_image(*st, name);
    image_event(ctx, "mount", mounted ? mounted->id : "", name);
    ctx.out << path << "\n";
  }
  return 0;
}

Result<int> run_image_unmount(Context& ctx) {
  BERTH_TRY(auto* st, open_store(ctx));
  for (const auto& name : ctx.args) {
    BERTH_TRYV(image::unmount_image(*st, name));
    auto unmounted = image::lookup_image(*st, name);
    image_event(ctx, "unmount", unmounted ? unmounted->id : "", name);
  }
  return 0;
}

Result<int> run_check(Context& ctx) {
  BERTH_TRY(auto* st, open_store(ctx));
  BERTH_TRY(auto report, image::check(*st, ctx.flag("repair")));
  for (const auto& p : report.problems) {
    ctx.out << p << "\n";
  }
  for (const auto& r : report.repaired) {
    ctx.out << "Removed: " << r << "\n";
  }
  if (!report.problems.empty() && !ctx.flag("repair")) {
    ctx.err << "Error: the store has " << report.problems.size()
            << " problem(s); `berth system check --repair` removes what cannot be fixed\n";
    return 1;
  }
  return 0;
}

Result<int> run_reset(Context& ctx) {
  if (!ctx.flag("force") &&
      !confirm(ctx,
               "WARNING! This will remove all containers, volumes and images, and the store.")) {
    return 0;
  }
  // Containers first, as Podman: their monitors are stopped and their layers released before
  // the store under them goes.
  BERTH_TRY(auto* engine, ctx.engine());
  BERTH_TRY(auto recs, container::records(*engine));
  container::RemoveOptions ro;
  ro.force = true;
  ro.timeout = 0;
  for (const auto& r : recs) {
    BERTH_TRYV(container::remove(*engine, r.id, ro));
  }
  BERTH_TRY(auto vs, volume::VolumeStore::open(engine->config(), nullptr));
  BERTH_TRY(auto vols, vs->list({}, {}));
  volume::RemoveOptions vo;
  vo.force = true;
  for (const auto& v : vols) {
    BERTH_TRYV(vs->remove(v.name, vo));
  }
  BERTH_TRY(auto* st, open_store(ctx));
  BERTH_TRYV(image::reset(*st));
  return 0;
}

void list_options(po::options_description& d) {
  add_format_options(d);
  d.add_options()("all,a", po::bool_switch(), "Show all images (default hides intermediate)")(
      "digests", po::bool_switch(), "Show digests")("no-trunc", po::bool_switch(),
                                                    "Do not truncate output")(
      "filter,f", po::value<std::vector<std::string>>()->composing(),
      "Filter output based on conditions provided (reference, before, since, label, dangling)")(
      "sort", po::value<std::string>()->default_value("created"),
      "Sort by created, id, repository, size or tag");
}

const Registrar reg([] {
  Command group;
  group.name = "image";
  group.summary = "Manage images";
  register_command("", std::move(group));

  auto ls = make_command("list", "List images in local storage", "[options] [IMAGE]", 0, 1,
                         list_options, run_images);
  ls.aliases = {"ls"};
  register_command("image", std::move(ls));
  register_shortcut("images", "image list");

  auto inspect_opts = [](po::options_description& d) {
    d.add_options()("format,f", po::value<std::string>(),
                    "Change the output format to JSON or a Go template")(
        "raw", po::bool_switch(), "docker:// images: print the manifest as the registry serves it")(
        "authfile", po::value<std::string>(), "Path of the authentication file")(
        "cert-dir", po::value<std::string>(), "Certificates for the registry (docker://)")(
        "creds", po::value<std::string>(), "USERNAME[:PASSWORD] for the registry (docker://)")(
        "tls-verify", po::value<bool>()->implicit_value(true),
        "Require HTTPS and verify certificates (docker://)");
  };
  register_command("image", make_command("inspect", "Display the configuration of an image",
                                         "[options] IMAGE [IMAGE...]", 1, SIZE_MAX, inspect_opts,
                                         run_image_inspect));

  auto load_opts = [](po::options_description& d) {
    d.add_options()("input,i", po::value<std::string>(), "Read from specified archive file")(
        "quiet,q", po::bool_switch(), "Suppress the output");
  };
  register_command("image", make_command("load", "Load image(s) from a tar archive", "[options]", 0,
                                         0, load_opts, run_load));
  register_shortcut("load", "image load");

  auto save_opts = [](po::options_description& d) {
    d.add_options()("output,o", po::value<std::string>(), "Write to a specified file")(
        "format", po::value<std::string>(),
        "Save image to oci-archive, oci-dir, docker-archive or docker-dir")(
        "quiet,q", po::bool_switch(), "Suppress the output")(
        "multi-image-archive,m", po::bool_switch(), "Interpret additional arguments as images");
  };
  register_command(
      "image", make_command("save", "Save image(s) to an archive", "[options] IMAGE [IMAGE...]", 1,
                            SIZE_MAX, save_opts, run_save));
  register_shortcut("save", "image save");

  auto import_opts = [](po::options_description& d) {
    d.add_options()("change,c", po::value<std::vector<std::string>>()->composing(),
                    "Apply the following possible instructions to the created image: CMD, "
                    "ENTRYPOINT, ENV, EXPOSE, LABEL, STOPSIGNAL, USER, VOLUME, WORKDIR")(
        "message,m", po::value<std::string>(), "Set commit message for imported image")(
        "os", po::value<std::string>(), "Set the OS of the imported image")(
        "arch", po::value<std::string>(), "Set the architecture of the imported image")(
        "quiet,q", po::bool_switch(), "Suppress output");
  };
  register_command("image",
                   make_command("import", "Import a tarball to create a filesystem image",
                                "[options] PATH [REFERENCE]", 1, 2, import_opts, run_import));
  register_shortcut("import", "image import");

  register_command(
      "image", make_command("tag", "Add an additional name to a local image",
                            "IMAGE TARGET_NAME [TARGET_NAME...]", 2, SIZE_MAX, nullptr, run_tag));
  register_shortcut("tag", "image tag");
  register_command("image", make_command("untag", "Remove a name from a local image",
                                         "IMAGE [IMAGE...]", 1, SIZE_MAX, nullptr, run_untag));
  register_shortcut("untag", "image untag");

  auto rm = make_command(
      "rm", "Remove one or more images from local storage", "[options] IMAGE [IMAGE...]", 0,
      SIZE_MAX,
      [](po::options_description& d) {
        d.add_options()("all,a", po::bool_switch(), "Remove all images")(
            "force,f", po::bool_switch(), "Force removal of the image")(
            "ignore,i", po::bool_switch(), "Ignore errors if a specified image does not exist");
      },
      run_rmi);
  rm.aliases = {"remove"};
  register_command("image", std::move(rm));
  register_shortcut("rmi", "image rm");

  register_command(
      "image", make_command(
                   "history", "Show history of a specified image", "[options] IMAGE", 1, 1,
                   [](po::options_description& d) {
                     add_format_options(d);
                     d.add_options()("no-trunc", po::bool_switch(), "Do not truncate the output")(
                         "human,H", po::value<bool>()->implicit_value(true),
                         "Display sizes and dates in human readable format");
                   },
                   run_history));
  register_shortcut("history", "image history");

  register_command("image", make_command(
                                "prune", "Remove unused images", "[options]", 0, 0,
                                [](po::options_description& d) {
                                  d.add_options()("all,a", po::bool_switch(),
                                                  "Remove all images not in use by containers")(
                                      "force,f", po::bool_switch(),
                                      "Do not prompt for confirmation");
                                },
                                run_image_prune));
  register_command("image", make_command("exists", "Check if an image exists in local storage",
                                         "IMAGE", 1, 1, nullptr, run_image_exists));
  register_command("image",
                   make_command("mount", "Mount an image's root filesystem", "IMAGE [IMAGE...]", 1,
                                SIZE_MAX, nullptr, run_image_mount));
  register_command(
      "image", make_command("unmount", "Unmount an image's root filesystem", "IMAGE [IMAGE...]", 1,
                            SIZE_MAX, nullptr, run_image_unmount));

  register_command("system", make_command(
                                 "check", "Check the store for consistency", "[options]", 0, 0,
                                 [](po::options_description& d) {
                                   d.add_options()("repair,r", po::bool_switch(),
                                                   "Remove inconsistent images and layers");
                                 },
                                 run_check));
  register_command("system", make_command(
                                 "reset", "Reset berth storage", "[options]", 0, 0,
                                 [](po::options_description& d) {
                                   d.add_options()("force,f", po::bool_switch(),
                                                   "Do not prompt for confirmation");
                                 },
                                 run_reset));
});

}  // namespace
}  // namespace berth::cli

// berth system df: disk usage of images, containers and volumes, as `podman system df`.

namespace berth::cli {
namespace {

std::string reclaimable(int64_t bytes, int64_t total) {
  int pct =
      total > 0
          ? static_cast<int>(100.0 * static_cast<double>(bytes) / static_cast<double>(total) + 0.5)
          : 0;
  return util::human_size(static_cast<double>(bytes)) + " (" + std::to_string(pct) + "%)";
}

Result<int> run_df(Context& ctx) {
  BERTH_TRY(auto* engine, ctx.engine());
  BERTH_TRY(auto* st, open_store(ctx, true));
  BERTH_TRY(auto img, image::images_disk_usage(*st, image_container_count(ctx)));
  BERTH_TRY(auto recs, container::records(*engine));
  int64_t ctr_size = 0, ctr_reclaim = 0, running = 0;
  for (const auto& r : recs) {
    auto state = container::read_state(engine->runroot(), r);
    auto usage = st->driver().usage(r.layer_id);
    int64_t bytes = usage ? static_cast<int64_t>(usage->bytes) : 0;
    ctr_size += bytes;
    if (state.status == container::Status::Running || state.status == container::Status::Paused) {
      ++running;
    } else {
      ctr_reclaim += bytes;
    }
  }
  BERTH_TRY(auto vs, volume::VolumeStore::open(engine->config(), nullptr));
  BERTH_TRY(auto vols, vs->list({}, [](const std::string&) -> Result<std::vector<std::string>> {
    return std::vector<std::string>{};  // no container mounts volumes yet (see volume_cmd.cpp)
  }));
  int64_t vol_size = 0;
  for (const auto& v : vols) {
    auto usage = sdk::tree_usage(v.mountpoint);
    vol_size += usage ? static_cast<int64_t>(usage->bytes) : 0;
  }
  nlohmann::json rows = nlohmann::json::array();
  rows.push_back({{"Type", "Images"},
                  {"Total", img.total},
                  {"Active", img.active},
                  {"RawSize", img.size},
                  {"RawReclaimable", img.reclaimable},
                  {"Size", util::human_size(static_cast<double>(img.size))},
                  {"Reclaimable", reclaimable(img.reclaimable, img.size)}});
  rows.push_back({{"Type", "Containers"},
                  {"Total", recs.size()},
                  {"Active", running},
                  {"RawSize", ctr_size},
                  {"RawReclaimable", ctr_reclaim},
                  {"Size", util::human_size(static_cast<double>(ctr_size))},
                  {"Reclaimable", reclaimable(ctr_reclaim, ctr_size)}});
  rows.push_back({{"Type", "Local Volumes"},
                  {"Total", vols.size()},
                  {"Active", 0},
                  {"RawSize", vol_size},
                  {"RawReclaimable", vol_size},
                  {"Size", util::human_size(static_cast<double>(vol_size))},
                  {"Reclaimable", reclaimable(vol_size, vol_size)}});
  format::ListSpec spec;
  spec.default_format = "table {{.Type}}\t{{.Total}}\t{{.Active}}\t{{.Size}}\t{{.Reclaimable}}";
  return print_list(ctx, rows, spec);
}

const Registrar df_reg([] {
  register_command("system", make_command(
                                 "df", "Show berth disk usage", "[options]", 0, 0,
                                 [](po::options_description& d) {
                                   d.add_options()("format", po::value<std::string>(),
                                                   "Pretty-print with a Go template");
                                 },
                                 run_df));
});

}  // namespace
}  // namespace berth::cli
