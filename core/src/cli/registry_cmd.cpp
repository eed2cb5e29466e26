// Registry commands: pull, push, login, logout, search (over berth::copy).
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include <iostream>
#include <memory>

#include "berth/copy/auth.hpp"
#include "berth/copy/copy.hpp"
#include "berth/engine/engine.hpp"
#include "berth/util/fs.hpp"
#include "command.hpp"
#include "output.hpp"
#include "progress_bars.hpp"

namespace berth::cli {
namespace {

using nlohmann::json;

bool is_tty(int fd) {
  return ::isatty(fd) == 1;
}

Result<copy::RegistryAccess> access_from(Context& ctx) {
  copy::RegistryAccess a;
  if (ctx.has("tls-verify")) {
    a.tls_verify = ctx.get<bool>("tls-verify");
  }
  a.cert_dir = ctx.str("cert-dir");
  a.authfile = ctx.str("authfile");
  if (ctx.has("creds")) {
    BERTH_TRY(auto c, copy::parse_creds(ctx.str("creds")));
    a.credentials = c;
  }
  return a;
}

void access_options(po::options_description& d, bool creds = true) {
  d.add_options()("authfile", po::value<std::string>(), "Path of the authentication file")(
      "cert-dir", po::value<std::string>(),
      "Use certificates at the specified path to access the registry")(
      "tls-verify", po::value<bool>()->implicit_value(true),
      "Require HTTPS and verify certificates when contacting registries");
  if (creds) {
    d.add_options()("creds", po::value<std::string>(),
                    "Use USERNAME[:PASSWORD] for accessing the registry");
  }
}

// Asks on the terminal which candidate to pull (short-name-mode enforcing).
Result<size_t> prompt_choice(const std::vector<std::string>& candidates) {
  std::cerr << "? Please select an image:\n";
  for (size_t i = 0; i < candidates.size(); ++i) {
    std::cerr << "  " << (i + 1) << ") " << candidates[i] << "\n";
  }
  std::cerr << "Enter a number: " << std::flush;
  std::string line;
  if (!std::getline(std::cin, line)) {
    return fail(Errc::Cancelled, "no image selected");
  }
  try {
    size_t n = std::stoul(line);
    if (n >= 1 && n <= candidates.size()) {
      return n - 1;
    }
  } catch (const std::exception&) {
  }
  return fail(Errc::InvalidArgument, "invalid selection \"" + line + "\"");
}

Result<int> run_pull(Context& ctx) {
  copy::PullOptions o;
  BERTH_TRY(o.access, access_from(ctx));
  o.all_tags = ctx.flag("all-tags");
  o.os = ctx.str("os");
  o.arch = ctx.str("arch");
  o.variant = ctx.str("variant");
  if (ctx.has("platform")) {
    std::string p = ctx.str("platform");
    auto s1 = p.find('/');
    if (s1 == std::string::npos) {
      return fail(Errc::InvalidArgument, "invalid platform \"" + p + "\": use OS/ARCH[/VARIANT]");
    }
    o.os = p.substr(0, s1);
    std::string rest = p.substr(s1 + 1);
    auto s2 = rest.find('/');
    o.arch = rest.substr(0, s2);
    if (s2 != std::string::npos) {
      o.variant = rest.substr(s2 + 1);
    }
  }
  o.can_prompt = is_tty(STDIN_FILENO) && is_tty(STDOUT_FILENO);
  o.prompt = prompt_choice;
  bool quiet = ctx.flag("quiet");
  std::unique_ptr<ProgressBars> bars;
  if (!quiet && is_tty(STDERR_FILENO)) {
    winsize ws{};
    int width = ::ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0 ? ws.ws_col : 80;
    bars = std::make_unique<ProgressBars>(ctx.err, width);
    o.progress = [&](const std::string& line) { bars->line(line); };
    o.blob_progress = [&](const std::string& digest, int64_t done, int64_t total) {
      bars->bytes(digest, done, total);
    };
  } else if (!quiet) {
    o.progress = [&](const std::string& line) { ctx.err << line << "\n" << std::flush; };
  }
  BERTH_TRY(auto* engine, ctx.engine());
  int rc = 0;
  for (const auto& name : ctx.args) {
    auto r = copy::pull(*engine, name, o);
    if (!r) {
      return fail(std::move(r).error());
    }
    for (const auto& img : *r) {
      ctx.out << img.id << "\n";
    }
  }
  return rc;
}

Result<int> run_push(Context& ctx) {
  copy::PushOptions o;
  BERTH_TRY(o.access, access_from(ctx));
  if (ctx.has("format")) {
    std::string f = ctx.str("format");
    if (f == "oci") {
      o.format = copy::ManifestFormat::Oci;
    } else if (f == "v2s2" || f == "docker") {
      o.format = copy::ManifestFormat::V2s2;
    } else {
      return fail(Errc::InvalidArgument, "unknown format \"" + f + "\"; supported: oci, v2s2");
    }
  }
  if (ctx.has("compression-format")) {
    std::string c = ctx.str("compression-format");
    if (c == "gzip") {
      o.compression = copy::CompressionFormat::Gzip;
    } else if (c == "zstd") {
      o.compression = copy::CompressionFormat::Zstd;
    } else {
      return fail(Errc::InvalidArgument,
                  "unknown compression format \"" + c + "\"; supported: gzip, zstd");
    }
  }
  if (ctx.has("compression-level")) {
    o.compression_level = ctx.get<int>("compression-level");
  }
  o.remove_signatures = ctx.flag("remove-signatures");
  if (!ctx.flag("quiet")) {
    o.progress = [&](const std::string& line) { ctx.err << line << "\n" << std::flush; };
  }
  BERTH_TRY(auto* engine, ctx.engine());
  std::string dest = ctx.args.size() > 1 ? ctx.args[1] : "";
  BERTH_TRY(auto r, copy::push(*engine, ctx.args[0], dest, o));
  if (ctx.has("digestfile")) {
    BERTH_TRYV(util::write_file_atomic(ctx.str("digestfile"), r.digest, 0644));
  }
  return 0;
}

Result<std::string> read_password_stdin() {
  std::string all;
  std::string line;
  while (std::getline(std::cin, line)) {
    all += line + "\n";
  }
  while (!all.empty() && (all.back() == '\n' || all.back() == '\r')) {
    all.pop_back();
  }
  return all;
}

Result<std::string> prompt_line(const std::string& label, bool secret) {
  std::cerr << label << std::flush;
  termios old{};
  bool restore = false;
  if (secret && ::tcgetattr(STDIN_FILENO, &old) == 0) {
    termios t = old;
    t.c_lflag &= ~static_cast<tcflag_t>(ECHO);
    restore = ::tcsetattr(STDIN_FILENO, TCSANOW, &t) == 0;
  }
  std::string line;
  bool ok = static_cast<bool>(std::getline(std::cin, line));
  if (restore) {
    (void)::tcsetattr(STDIN_FILENO, TCSANOW, &old);
    std::cerr << "\n";
  }
  if (!ok) {
    return fail(Errc::InvalidArgument, "no input for " + label);
  }
  return line;
}

Result<int> run_login(Context& ctx) {
  std::string registry = ctx.args[0];
  if (ctx.flag("get-login")) {
    BERTH_TRY(auto user, copy::login_user(registry, ctx.str("authfile")));
    ctx.out << user << "\n";
    return 0;
  }
  copy::LoginOptions o;
  BERTH_TRY(o.access, access_from(ctx));
  sdk::Credentials c;
  c.username = ctx.str("username");
  if (ctx.flag("password-stdin")) {
    if (ctx.has("password")) {
      return fail(Errc::InvalidArgument, "--password and --password-stdin are mutually exclusive");
    }
    if (c.username.empty()) {
      return fail(Errc::InvalidArgument, "--password-stdin needs a user name: give --username");
    }
    BERTH_TRY(c.password, read_password_stdin());
  } else {
    c.password = ctx.str("password");
  }
  bool tty = is_tty(STDIN_FILENO);
  if (c.username.empty()) {
    if (!tty) {
      return fail(Errc::InvalidArgument,
                  "no user name given and stdin is not a terminal: use --username");
    }
    BERTH_TRY(c.username, prompt_line("Username: ", false));
  }
  if (c.password.empty() && !ctx.flag("password-stdin")) {
    if (!tty) {
      return fail(Errc::InvalidArgument,
                  "no password given and stdin is not a terminal: use --password-stdin");
    }
    BERTH_TRY(c.password, prompt_line("Password: ", true));
  }
  o.access.credentials = c;
  BERTH_TRY(auto* engine, ctx.engine());
  BERTH_TRYV(copy::login(*engine, registry, o));
  ctx.out << "Login Succeeded!\n";
  return 0;
}

Result<int> run_logout(Context& ctx) {
  bool all = ctx.flag("all");
  if (!all && ctx.args.empty()) {
    return fail(Errc::InvalidArgument, "a registry is needed (or --all)");
  }
  std::string registry = ctx.args.empty() ? "" : ctx.args[0];
  BERTH_TRYV(copy::logout(registry, all, ctx.str("authfile")));
  if (all) {
    ctx.out << "Removed login credentials for all registries\n";
  } else {
    ctx.out << "Removed login credentials for " << copy::normalize_auth_key(registry) << "\n";
  }
  return 0;
}

Result<int> run_search(Context& ctx) {
  copy::SearchOptions o;
  BERTH_TRY(o.access, access_from(ctx));
  o.limit = ctx.get<int>("limit", 25);
  BERTH_TRY(auto* engine, ctx.engine());
  format::ListSpec spec;
  if (ctx.flag("list-tags")) {
    BERTH_TRY(auto tags, copy::search_tags(*engine, ctx.args[0], o));
    json rows = json::array();
    for (const auto& h : tags) {
      rows.push_back({{"Index", h.index}, {"Name", h.name}, {"Tag", h.tag}});
    }
    spec.default_format = "table {{.Name}}\t{{.Tag}}";
    spec.quiet_field = "Tag";
    return print_list(ctx, rows, spec);
  }
  BERTH_TRY(auto hits, copy::search(*engine, ctx.args[0], o));
  json rows = json::array();
  for (const auto& h : hits) {
    rows.push_back({{"Index", h.index},
                    {"Name", h.name},
                    {"Description", ""},
                    {"Stars", 0},
                    {"Official", ""},
                    {"Automated", ""},
                    {"Tag", ""}});
  }
  spec.default_format =
      "table {{.Index}}\t{{.Name}}\t{{.Description}}\t{{.Stars}}\t{{.Official}}\t{{.Automated}}";
  spec.quiet_field = "Name";
  return print_list(ctx, rows, spec);
}

copy::ManifestAddOptions manifest_add_options(Context& ctx, Result<copy::RegistryAccess> a) {
  copy::ManifestAddOptions o;
  if (a) {
    o.access = *a;
  }
  o.os = ctx.str("os");
  o.arch = ctx.str("arch");
  o.variant = ctx.str("variant");
  o.all = ctx.flag("all");
  return o;
}

Result<int> run_manifest_create(Context& ctx) {
  BERTH_TRY(auto access, access_from(ctx));
  auto o = manifest_add_options(ctx, access);
  BERTH_TRY(auto* engine, ctx.engine());
  std::vector<std::string> images(ctx.args.begin() + 1, ctx.args.end());
  BERTH_TRY(auto id, copy::manifest_create(*engine, ctx.args[0], images, o));
  ctx.out << id.substr(7) << "\n";
  return 0;
}

Result<int> run_manifest_add(Context& ctx) {
  BERTH_TRY(auto access, access_from(ctx));
  auto o = manifest_add_options(ctx, access);
  BERTH_TRY(auto* engine, ctx.engine());
  BERTH_TRY(auto digest, copy::manifest_add(*engine, ctx.args[0], ctx.args[1], o));
  ctx.out << digest << "\n";
  return 0;
}

Result<int> run_manifest_inspect(Context& ctx) {
  BERTH_TRY(auto* engine, ctx.engine());
  const std::string& name = ctx.args[0];
  auto j = copy::manifest_inspect(*engine, name);
  if (!j && j.error().code() == Errc::NotFound) {
    // As Podman (and `docker manifest inspect`): a name that is no local list is looked up in
    // its registry, and what the registry serves there (a list or an image's manifest) shown.
    copy::PullOptions o;
    BERTH_TRY(o.access, access_from(ctx));
    auto img =
        copy::inspect_remote(*engine, name.starts_with("docker://") ? name.substr(9) : name, o);
    if (!img) {
      return fail(Errc::NotFound,
                  j.error().message() + "; in the registry: " + img.error().message());
    }
    auto raw = json::parse(img->raw, nullptr, /*allow_exceptions=*/false);
    if (raw.is_discarded()) {
      return fail(Errc::Corrupt, "manifest of " + name + " (" + img->digest + ") is not JSON");
    }
    j = std::move(raw);
  }
  if (!j) {
    return fail(std::move(j).error());
  }
  ctx.out << j->dump(4) << "\n";
  return 0;
}

Result<int> run_manifest_push(Context& ctx) {
  copy::PushOptions o;
  BERTH_TRY(o.access, access_from(ctx));
  if (ctx.has("format")) {
    std::string f = ctx.str("format");
    if (f != "oci" && f != "v2s2") {
      return fail(Errc::InvalidArgument, "unknown format \"" + f + "\"; supported: oci, v2s2");
    }
    o.format = f == "oci" ? copy::ManifestFormat::Oci : copy::ManifestFormat::V2s2;
  }
  if (!ctx.flag("quiet")) {
    o.progress = [&](const std::string& line) { ctx.err << line << "\n" << std::flush; };
  }
  BERTH_TRY(auto* engine, ctx.engine());
  std::string dest = ctx.args.size() > 1 ? ctx.args[1] : ctx.args[0];
  BERTH_TRY(auto r, copy::manifest_push(*engine, ctx.args[0], dest, o));
  if (ctx.has("digestfile")) {
    BERTH_TRYV(util::write_file_atomic(ctx.str("digestfile"), r.digest, 0644));
  }
  if (ctx.flag("rm")) {
    BERTH_TRYV(copy::manifest_rm(*engine, ctx.args[0]));
  }
  return 0;
}

Result<int> run_manifest_rm(Context& ctx) {
  BERTH_TRY(auto* engine, ctx.engine());
  for (const auto& l : ctx.args) {
    BERTH_TRYV(copy::manifest_rm(*engine, l));
    ctx.out << "Untagged: " << l << "\n";
  }
  return 0;
}

Result<int> run_manifest_remove(Context& ctx) {
  BERTH_TRY(auto* engine, ctx.engine());
  BERTH_TRYV(copy::manifest_remove_entry(*engine, ctx.args[0], ctx.args[1]));
  return 0;
}

Result<int> run_manifest_exists(Context& ctx) {
  BERTH_TRY(auto* engine, ctx.engine());
  return copy::manifest_exists(*engine, ctx.args[0]) ? 0 : 1;
}

Command make(std::string name, std::string summary, std::string usage, size_t min_args,
             size_t max_args, std::function<void(po::options_description&)> opts,
             std::function<Result<int>(Context&)> run) {
  Command c;
  c.name = std::move(name);
  c.summary = std::move(summary);
  c.usage = std::move(usage);
  c.min_args = min_args;
  c.max_args = max_args;
  c.options = std::move(opts);
  c.run = std::move(run);
  return c;
}

const Registrar reg([] {
  register_command(
      "image",
      make(
          "pull", "Pull an image from a registry", "[options] IMAGE [IMAGE...]", 1, SIZE_MAX,
          [](po::options_description& d) {
            access_options(d);
            d.add_options()("disable-content-trust", po::value<bool>()->implicit_value(true),
                            "This is a Docker specific option and is a NOOP")(
                "quiet,q", po::bool_switch(), "Suppress output information when pulling images")(
                "all-tags,a", po::bool_switch(),
                "All tagged images in the repository will be pulled")(
                "platform", po::value<std::string>(),
                "Specify the platform for selecting the image (OS/ARCH[/VARIANT])")(
                "arch", po::value<std::string>(),
                "Use ARCH instead of the architecture of the machine")(
                "os", po::value<std::string>(),
                "Use OS instead of the running OS for choosing images")(
                "variant", po::value<std::string>(),
                "Use VARIANT instead of the running architecture variant");
          },
          run_pull));
  register_shortcut("pull", "image pull");

  register_command(
      "image",
      make(
          "push", "Push an image to a specified destination", "[options] IMAGE [DESTINATION]", 1, 2,
          [](po::options_description& d) {
            access_options(d);
            d.add_options()("disable-content-trust", po::value<bool>()->implicit_value(true),
                            "This is a Docker specific option and is a NOOP")(
                "quiet,q", po::bool_switch(), "Suppress output information when pushing images")(
                "format,f", po::value<std::string>(),
                "Manifest type (oci, v2s2) to use in the destination")(
                "compression-format", po::value<std::string>(),
                "Compression format to use (gzip, zstd)")("compression-level", po::value<int>(),
                                                          "Compression level to use")(
                "remove-signatures", po::bool_switch(),
                "Discard any pre-existing signatures in the image")(
                "digestfile", po::value<std::string>(),
                "Write the digest of the pushed image to the specified file");
          },
          run_push));
  register_shortcut("push", "image push");

  register_command(
      "", make(
              "login", "Log in to a container registry", "[options] REGISTRY", 1, 1,
              [](po::options_description& d) {
                access_options(d, false);
                d.add_options()("username,u", po::value<std::string>(), "Username for registry")(
                    "password,p", po::value<std::string>(), "Password for registry")(
                    "password-stdin", po::bool_switch(), "Take the password from stdin")(
                    "get-login", po::bool_switch(),
                    "Return the current login user for the registry");
              },
              run_login));
  register_command(
      "", make(
              "logout", "Log out of a container registry", "[options] [REGISTRY]", 0, 1,
              [](po::options_description& d) {
                d.add_options()("authfile", po::value<std::string>(),
                                "Path of the authentication file")(
                    "all,a", po::bool_switch(), "Remove the cached credentials for all registries");
              },
              run_logout));
  register_command("", make(
                           "search", "Search a registry for an image", "[options] TERM", 1, 1,
                           [](po::options_description& d) {
                             access_options(d);
                             add_format_options(d, false, true);
                             d.add_options()("limit", po::value<int>()->default_value(25),
                                             "Limit the number of results")(
                                 "no-trunc", po::bool_switch(), "Do not truncate the output")(
                                 "list-tags", po::bool_switch(),
                                 "List the tags of the repository TERM names");
                           },
                           run_search));

  Command group;
  group.name = "manifest";
  group.summary = "Manipulate manifest lists and image indexes";
  register_command("", std::move(group));
  auto platform_opts = [](po::options_description& d) {
    access_options(d);
    d.add_options()("all", po::bool_switch(),
                    "Add all of the list's images if the image is a list")(
        "arch", po::value<std::string>(), "Override the architecture of the added image")(
        "os", po::value<std::string>(), "Override the OS of the added image")(
        "variant", po::value<std::string>(), "Override the variant of the added image");
  };
  register_command(
      "manifest", make("create", "Create manifest list or image index", "[options] LIST [IMAGE...]",
                       1, SIZE_MAX, platform_opts, run_manifest_create));
  register_command("manifest", make("add", "Add images to a manifest list or image index",
                                    "[options] LIST IMAGE", 2, 2, platform_opts, run_manifest_add));
  register_command(
      "manifest", make(
                      "inspect",
                      "Display the contents of a manifest list or image "
                      "index",
                      "[options] LIST|IMAGE", 1, 1,
                      [](po::options_description& d) { access_options(d); }, run_manifest_inspect));
  register_command("manifest",
                   make(
                       "push", "Push a manifest list or image index to a registry",
                       "[options] LIST [DESTINATION]", 1, 2,
                       [](po::options_description& d) {
                         access_options(d);
                         d.add_options()("all", po::bool_switch(),
                                         "Push images contained in the list (always on)")(
                             "format,f", po::value<std::string>(),
                             "Manifest type (oci or v2s2) of the images pushed")(
                             "digestfile", po::value<std::string>(),
                             "Write the digest of the pushed list to the specified file")(
                             "rm", po::bool_switch(), "Remove the list after a successful push")(
                             "quiet,q", po::bool_switch(), "Do not print progress");
                       },
                       run_manifest_push));
  register_command("manifest", make("rm", "Remove manifest list or image index from local storage",
                                    "LIST [LIST...]", 1, SIZE_MAX, nullptr, run_manifest_rm));
  register_command("manifest", make("remove",
                                    "Remove an entry from a manifest list or image "
                                    "index",
                                    "LIST DIGEST", 2, 2, nullptr, run_manifest_remove));
  register_command("manifest", make("exists", "Check if a manifest list exists in local storage",
                                    "LIST", 1, 1, nullptr, run_manifest_exists));
});

}  // namespace
}  // namespace berth::cli
