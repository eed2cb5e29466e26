#include "command.hpp"

#include <poll.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <map>
#include <sstream>

#include "berth/api/client.hpp"
#include "berth/util/log.hpp"

namespace berth::cli {

namespace {

struct Tree {
  Command root;
  std::map<std::string, std::string> shortcuts;  // top-level name -> "group sub"
};

Tree& tree() {
  static Tree t = [] {
    Tree x;
    x.root.name = "berth";
    x.root.summary = "Manage pods, containers and images";
    x.root.usage = "[options] COMMAND";
    return x;
  }();
  return t;
}

Command* find_child(Command& parent, std::string_view name) {
  for (auto& c : parent.children) {
    if (c->name == name ||
        std::find(c->aliases.begin(), c->aliases.end(), name) != c->aliases.end()) {
      return c.get();
    }
  }
  return nullptr;
}

Command& group(std::string_view path) {
  Command* node = &tree().root;
  std::istringstream ss{std::string(path)};
  std::string part;
  while (ss >> part) {
    Command* child = find_child(*node, part);
    if (child == nullptr) {
      auto c = std::make_unique<Command>();
      c->name = part;
      c->usage = "COMMAND";
      c->path = node->path.empty() ? part : node->path + " " + part;
      child = c.get();
      node->children.push_back(std::move(c));
    }
    node = child;
  }
  return *node;
}

// `with_c`/`with_r`: the -c/-r short forms, left out after a command that has its own (`commit
// -c`, `rm -r`...): the command's flag wins, as in Podman.
void global_options(po::options_description& d, GlobalOptions& g, bool with_c = true,
                    bool with_r = true) {
  d.add_options()("root", po::value(&g.root), "Path to the root directory in which data is stored")(
      "runroot", po::value(&g.runroot), "Path to the directory in which volatile state is stored")(
      "storage-driver", po::value(&g.storage_driver),
      "Select which storage driver is used to manage storage of images and containers")(
      "storage-opt", po::value(&g.storage_opts)->composing(),
      "Used to pass an option to the storage driver (key=value)")(
      "log-level", po::value(&g.log_level)->default_value("warn"),
      "Log messages above specified level (trace, debug, info, warn, error, fatal, panic)")(
      "config", po::value(&g.config), "Path of an extra containers.conf applied last")(
      "url", po::value(&g.url), "URL to access the berth service (unix:///path)")(
      with_c ? "connection,c" : "connection", po::value(&g.connection),
      "Connection to use for remote berth service")(with_r ? "remote,r" : "remote",
                                                    po::bool_switch(&g.remote),
                                                    "Access the remote berth service");
}

std::string option_label(const po::option_description& o) {
  std::string label;
  const std::string key = o.key("");
  std::string shorts;
  std::string longs = o.long_name();
  auto disp = o.canonical_display_name(po::command_line_style::allow_dash_for_short);
  if (disp.size() == 2 && disp[0] == '-' && disp[1] != '-') {
    shorts = disp;
  }
  label = shorts.empty() ? "      " : "  " + shorts + ", ";
  label += "--" + longs;
  if (o.semantic()->max_tokens() > 0) {
    label += " " + o.semantic()->name();
  }
  return label;
}

void print_options(std::ostream& os, const po::options_description& d) {
  std::vector<std::pair<std::string, std::string>> rows;
  size_t width = 0;
  for (const auto& o : d.options()) {
    rows.emplace_back(option_label(*o), o->description());
    width = std::max(width, rows.back().first.size());
  }
  std::sort(rows.begin(), rows.end(), [](const auto& a, const auto& b) {
    return a.first.substr(a.first.find("--")) < b.first.substr(b.first.find("--"));
  });
  for (const auto& [label, desc] : rows) {
    os << "  " << label << std::string(width - label.size() + 3, ' ') << desc << "\n";
  }
}

void print_help(std::ostream& os, const Command& c) {
  const std::string full = c.path.empty() ? "berth" : "berth " + c.path;
  os << (c.summary.empty() ? full : c.summary) << "\n\n";
  if (!c.description.empty()) {
    os << "Description:\n  " << c.description << "\n\n";
  }
  os << "Usage:\n  " << full << " " << (c.run ? c.usage : "[command]") << "\n";
  if (!c.aliases.empty()) {
    os << "\nAliases:\n  " << c.name;
    for (const auto& a : c.aliases) {
      os << ", " << a;
    }
    os << "\n";
  }
  if (!c.children.empty()) {
    os << "\nAvailable Commands:\n";
    std::vector<const Command*> kids;
    for (const auto& k : c.children) {
      kids.push_back(k.get());
    }
    std::sort(kids.begin(), kids.end(), [](auto* a, auto* b) { return a->name < b->name; });
    for (const auto* k : kids) {
      os << "  " << k->name << std::string(k->name.size() < 14 ? 14 - k->name.size() : 1, ' ')
         << k->summary << "\n";
    }
  }
  if (!c.examples.empty()) {
    os << "\nExamples:\n  " << c.examples << "\n";
  }
  if (c.run) {
    po::options_description d;
    if (c.options) {
      c.options(d);
    }
    if (!d.options().empty()) {
      os << "\nOptions:\n";
      print_options(os, d);
    }
  }
  GlobalOptions g;
  po::options_description gd;
  global_options(gd, g);
  os << "\nGlobal Options:\n";
  print_options(os, gd);
}

std::string see_help(const Command& c) {
  return "See 'berth " + (c.path.empty() ? std::string() : c.path + " ") + "--help'";
}

int engine_error(std::ostream& err, const std::string& msg) {
  err << "Error: " << msg << "\n";
  return kExitEngineError;
}

bool is_switch(const po::options_description& d, const std::string& name) {
  const auto* o = d.find_nothrow(name, false);
  return o != nullptr && o->semantic()->max_tokens() == 0;
}

// A bool option whose value may be left out (`-a`, `--archive`, `--archive=false`): Boost would
// take the next argument as its value.
const po::option_description* optional_bool(const po::options_description& d,
                                            const std::string& name, bool short_name) {
  const auto* o =
      short_name ? d.find_nothrow(name, false, false, false) : d.find_nothrow(name, false);
  if (o == nullptr || o->semantic()->min_tokens() != 0 || o->semantic()->max_tokens() != 1 ||
      dynamic_cast<const po::typed_value<bool>*>(o->semantic().get()) == nullptr) {
    return nullptr;
  }
  return o;
}

// Rewrites `--flag=true|false` of switches into what Boost.Program_options understands, and a
// bare optional bool (`-a`, `--archive`) into `--archive=true`, `-a=false` into `--archive=false`.
Result<std::vector<std::string>> normalize_switches(const po::options_description& d,
                                                    std::vector<std::string> args) {
  std::vector<std::string> out;
  for (size_t i = 0; i < args.size(); ++i) {
    const auto& a = args[i];
    if (a == "--") {
      out.insert(out.end(), args.begin() + static_cast<long>(i), args.end());
      break;
    }
    auto eq = a.find('=');
    const bool long_name = a.rfind("--", 0) == 0;
    const bool short_name = !long_name && a.size() >= 2 && a[0] == '-' &&
                            (a.size() == 2 || (a.size() > 3 && a[2] == '='));
    if ((long_name && eq == std::string::npos) || short_name) {
      const auto* o = optional_bool(d, long_name ? a.substr(2) : a.substr(0, 2), short_name);
      if (o != nullptr) {
        out.push_back("--" + o->long_name() + (short_name && a.size() > 2 ? a.substr(2) : "=true"));
        continue;
      }
    }
    if (a.rfind("--", 0) == 0 && eq != std::string::npos && is_switch(d, a.substr(2, eq - 2))) {
      auto v = a.substr(eq + 1);
      if (v == "true" || v == "1") {
        out.push_back(a.substr(0, eq));
      } else if (v != "false" && v != "0") {
        return fail(Errc::InvalidArgument,
                    "invalid argument \"" + v + "\" for \"" + a.substr(0, eq) +
                        "\" flag: strconv.ParseBool: parsing \"" + v + "\": invalid syntax");
      }
      continue;
    }
    out.push_back(a);
  }
  return out;
}

// For commands whose options end at the first positional: the index of that positional.
size_t first_positional(const po::options_description& d, const std::vector<std::string>& args) {
  for (size_t i = 0; i < args.size(); ++i) {
    const auto& a = args[i];
    if (a == "--") {
      return i;
    }
    if (a.size() < 2 || a[0] != '-') {
      return i;
    }
    if (a.rfind("--", 0) == 0) {
      if (a.find('=') != std::string::npos) {
        continue;
      }
      const auto* o = d.find_nothrow(a.substr(2), false);
      if (o != nullptr && o->semantic()->max_tokens() > 0 && o->semantic()->min_tokens() > 0) {
        ++i;  // its value
      }
      continue;
    }
    // Short options, possibly grouped: "-it", "-p8080:80", "-e" "X=1".
    for (size_t k = 1; k < a.size(); ++k) {
      const auto* o = d.find_nothrow(std::string("-") + a[k], false, false, false);
      if (o == nullptr) {
        break;
      }
      if (o->semantic()->max_tokens() > 0) {
        if (k + 1 == a.size()) {
          ++i;  // value is the next argument
        }
        break;  // the rest of the token is the value
      }
    }
  }
  return args.size();
}

// With remote flags (`berth --url unix:///... ps`, `berth ps --url unix:///...`), the command line
// to run on the service: the remote flags (into `ra`) and the store flags (the service's store is
// used) are taken out of the leading flags [0, lead_end), described by `lead`, and of the command's
// options [cmd_end, opts_end), described by `opts`; the command's words and its positional
// passthrough (`run IMAGE CMD...`, from opts_end) stay as they are.
std::vector<std::string> remote_command_line(const std::vector<std::string>& args, size_t lead_end,
                                             size_t cmd_end, size_t opts_end,
                                             const po::options_description& lead,
                                             const po::options_description& opts,
                                             api::RemoteArgs& ra) {
  std::vector<std::string> out;
  auto strip = [&](size_t from, size_t to, const po::options_description& d) {
    for (size_t k = from; k < to; ++k) {
      const std::string& a = args[k];
      if (a == "--") {
        out.insert(out.end(), args.begin() + static_cast<long>(k),
                   args.begin() + static_cast<long>(to));
        return;
      }
      if (a.size() < 2 || a[0] != '-') {
        out.push_back(a);
        continue;
      }
      const bool is_long = a.rfind("--", 0) == 0;
      const auto eq = a.find('=');
      const po::option_description* o =
          is_long ? d.find_nothrow(a.substr(2, eq == std::string::npos ? eq : eq - 2), false)
                  : d.find_nothrow(a.substr(0, 2), false, false, false);
      const bool takes_value = o != nullptr && o->semantic()->max_tokens() > 0;
      // Where its value is: in the token (--x=v, -xv), the next token, or none.
      const bool value_in_token =
          (is_long && eq != std::string::npos) || (!is_long && a.size() > 2);
      const bool value_next = takes_value && o->semantic()->min_tokens() > 0 && !value_in_token;
      const auto role =
          o == nullptr ? api::GlobalFlagRole::Forwarded : api::global_flag_role(o->long_name());
      if (role == api::GlobalFlagRole::Forwarded || (!is_long && a.size() > 2 && !takes_value)) {
        // Not a global flag to take out (or a group of short switches): kept with its value.
        out.push_back(a);
        if (value_next && k + 1 < to) {
          out.push_back(args[++k]);
        }
        continue;
      }
      std::string value;
      if (value_next && k + 1 < to) {
        value = args[++k];
      } else if (value_in_token) {
        value = is_long ? a.substr(eq + 1) : a.substr(2);
      }
      const std::string name = o->long_name();
      if (name == "url") {
        ra.url = value;
      } else if (name == "connection") {
        ra.connection = value;
      } else if (name == "remote") {
        ra.remote = !value_in_token || value == "true" || value == "1";
      } else if (name == "config") {
        ra.config = value;
      }
    }
  };
  strip(0, lead_end, lead);
  out.insert(out.end(), args.begin() + static_cast<long>(lead_end),
             args.begin() + static_cast<long>(cmd_end));
  strip(cmd_end, opts_end, opts);
  out.insert(out.end(), args.begin() + static_cast<long>(opts_end), args.end());
  return out;
}

std::string unknown_option_message(const po::error& e) {
  std::string m = e.what();
  // Boost says "unrecognised option '--foo'"; Podman says "unknown flag: --foo".
  auto q1 = m.find('\'');
  auto q2 = m.rfind('\'');
  if (m.find("unrecognised option") != std::string::npos && q1 != q2) {
    return "unknown flag: " + m.substr(q1 + 1, q2 - q1 - 1);
  }
  return m;
}

}  // namespace

void register_command(std::string_view group_path, Command cmd) {
  Command& parent = group(group_path);
  if (Command* existing = find_child(parent, cmd.name); existing != nullptr) {
    // A group announced by its children first: keep the children, take the rest.
    auto kids = std::move(existing->children);
    auto path = existing->path;
    *existing = std::move(cmd);
    for (auto& k : kids) {
      existing->children.push_back(std::move(k));
    }
    existing->path = path;
    return;
  }
  cmd.path = parent.path.empty() ? cmd.name : parent.path + " " + cmd.name;
  parent.children.push_back(std::make_unique<Command>(std::move(cmd)));
}

void register_shortcut(std::string_view name, std::string_view target) {
  tree().shortcuts[std::string(name)] = std::string(target);
}

Command make_command(std::string name, std::string summary, std::string usage, size_t min_args,
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

void add_format_options(po::options_description& d, bool quiet, bool noheading) {
  d.add_options()("format", po::value<std::string>(),
                  "Change the output format to JSON or a Go template");
  if (quiet) {
    d.add_options()("quiet,q", po::bool_switch(), "Print only IDs");
  }
  if (noheading) {
    d.add_options()("noheading,n", po::bool_switch(), "Do not print column headings");
  }
}

namespace {
void on_sigpipe(int /*sig*/) {}

// Standard output is a pipe or socket whose reader has gone.
bool stdout_reader_gone() {
  pollfd p{STDOUT_FILENO, 0, 0};
  return ::poll(&p, 1, 0) == 1 && (p.revents & POLLERR) != 0;
}
}  // namespace

int run_cli(int argc, char** argv) {
  // A reader that goes away (`berth export CTR | tar t | head`) makes writes fail with EPIPE
  // instead of killing berth mid-command: what it holds (a rootfs mount, a lock) is released as
  // usual. A handler, not SIG_IGN: the programs berth runs get the default action back at exec.
  struct sigaction sa {};
  sa.sa_handler = on_sigpipe;
  ::sigemptyset(&sa.sa_mask);
  ::sigaction(SIGPIPE, &sa, nullptr);
  std::vector<std::string> args(argv + 1, argv + argc);
  Context ctx;
  po::options_description gdesc;
  global_options(gdesc, ctx.globals);

  // Global options before the command.
  size_t i = 0;
  size_t lead_end = 0;
  std::vector<std::string> leading;
  while (i < args.size() && !args[i].empty() && args[i][0] == '-') {
    const auto& a = args[i];
    if (a == "--help" || a == "-h") {
      print_help(ctx.out, tree().root);
      return 0;
    }
    if (a == "--version" || a == "-v") {
      args.erase(args.begin() + static_cast<long>(i));
      args.insert(args.begin() + static_cast<long>(i), "version");
      break;
    }
    leading.push_back(a);
    std::string name = a.rfind("--", 0) == 0 ? a.substr(2, a.find('=') - 2) : a.substr(0, 2);
    const auto* o = gdesc.find_nothrow(name, false);
    if (o == nullptr) {
      return engine_error(ctx.err, "unknown flag: " + a + "\n" + see_help(tree().root));
    }
    ++i;
    if (o->semantic()->max_tokens() > 0 && a.find('=') == std::string::npos &&
        !(a.rfind("--", 0) != 0 && a.size() > 2) && i < args.size()) {
      leading.push_back(args[i++]);
    }
  }

  lead_end = i;

  // The command path.
  Command* node = &tree().root;
  if (i < args.size()) {
    if (auto it = tree().shortcuts.find(args[i]); it != tree().shortcuts.end()) {
      std::istringstream ss(it->second);
      std::string part;
      while (ss >> part) {
        node = find_child(*node, part);
        if (node == nullptr) {
          return engine_error(ctx.err, "internal: shortcut " + args[i] + " has no target");
        }
      }
      ++i;
    }
  }
  while (i < args.size() && !node->children.empty() && !node->run) {
    Command* child = find_child(*node, args[i]);
    if (child == nullptr) {
      if (args[i] == "--help" || args[i] == "-h" || args[i] == "help") {
        print_help(ctx.out, *node);
        return 0;
      }
      return engine_error(
          ctx.err, "unrecognized command `berth " + (node->path.empty() ? "" : node->path + " ") +
                       args[i] + "`\nTry 'berth " + (node->path.empty() ? "" : node->path + " ") +
                       "--help' for more information");
    }
    node = child;
    ++i;
  }
  if (node == &tree().root) {
    print_help(ctx.out, *node);
    return args.empty() ? 0 : kExitEngineError;
  }
  if (!node->run) {
    if (i < args.size() && (args[i] == "--help" || args[i] == "-h")) {
      print_help(ctx.out, *node);
      return 0;
    }
    ctx.err << "Error: missing command 'berth " << node->path << " COMMAND'\n"
            << "Try 'berth " << node->path << " --help' for more information\n";
    return kExitEngineError;
  }

  // The command's own options (global ones are accepted here too).
  po::options_description cdesc;
  if (node->options) {
    node->options(cdesc);
  }
  cdesc.add_options()("help,h", po::bool_switch(), "Help for this command");
  bool cmd_c = false;
  bool cmd_r = false;
  for (const auto& o : cdesc.options()) {
    const std::string shown =
        o->canonical_display_name(po::command_line_style::allow_dash_for_short);
    cmd_c = cmd_c || shown == "-c";
    cmd_r = cmd_r || shown == "-r";
  }
  po::options_description gafter;
  global_options(gafter, ctx.globals, !cmd_c, !cmd_r);
  po::options_description all;
  all.add(cdesc).add(gafter);

  std::vector<std::string> rest(args.begin() + static_cast<long>(i), args.end());
  std::vector<std::string> trailing;
  const size_t cmd_end = i;
  size_t opts_end = args.size();
  if (!node->interspersed) {
    size_t p = first_positional(all, rest);
    opts_end = std::min(args.size(), cmd_end + p);
    if (p < rest.size()) {
      size_t start = rest[p] == "--" ? p + 1 : p;
      trailing.assign(rest.begin() + static_cast<long>(start), rest.end());
      rest.resize(p);
    }
  }
  auto normalized = normalize_switches(all, rest);
  if (!normalized) {
    return engine_error(ctx.err, normalized.error().message());
  }
  auto lead_normalized = normalize_switches(gdesc, leading);
  if (!lead_normalized) {
    return engine_error(ctx.err, lead_normalized.error().message());
  }
  std::vector<std::string> parse_args = std::move(*lead_normalized);
  parse_args.insert(parse_args.end(), normalized->begin(), normalized->end());
  try {
    auto style = po::command_line_style::unix_style ^ po::command_line_style::allow_guessing;
    po::options_description hidden;
    hidden.add_options()("__args", po::value<std::vector<std::string>>());
    all.add(hidden);
    po::positional_options_description pd;
    pd.add("__args", -1);
    auto parsed =
        po::command_line_parser(parse_args).options(all).positional(pd).style(style).run();
    po::store(parsed, ctx.vm);
    po::notify(ctx.vm);
    if (ctx.vm.count("__args") != 0) {
      ctx.args = ctx.vm["__args"].as<std::vector<std::string>>();
    }
  } catch (const po::error& e) {
    return engine_error(ctx.err, unknown_option_message(e) + "\n" + see_help(*node));
  }
  ctx.args.insert(ctx.args.end(), trailing.begin(), trailing.end());
  if (ctx.vm.count("help") != 0 && ctx.vm["help"].as<bool>()) {
    print_help(ctx.out, *node);
    return 0;
  }
  if (ctx.args.size() < node->min_args || ctx.args.size() > node->max_args) {
    std::string want;
    if (node->min_args == node->max_args) {
      want = "accepts " + std::to_string(node->min_args) + " arg(s)";
    } else if (ctx.args.size() < node->min_args) {
      want = "requires at least " + std::to_string(node->min_args) + " arg(s)";
    } else {
      want = "accepts at most " + std::to_string(node->max_args) + " arg(s)";
    }
    return engine_error(ctx.err, "`berth " + node->path + "` " + want + ", received " +
                                     std::to_string(ctx.args.size()) + "\n" + see_help(*node));
  }
  if (!ctx.globals.url.empty() || !ctx.globals.connection.empty() || ctx.globals.remote) {
    // Remote flags, before the command or among its options: the service runs it.
    api::RemoteArgs ra;
    ra.forwarded = remote_command_line(args, lead_end, cmd_end, opts_end, gdesc, all, ra);
    auto uri = api::remote_uri(ra);
    if (!uri) {
      return engine_error(ctx.err, uri.error().message());
    }
    if (!uri->empty()) {
      return api::run_remote_cli(*uri, ra.forwarded);
    }
  }
  if (auto r = util::init_logging(ctx.globals.log_level); !r) {
    return engine_error(ctx.err, r.error().message());
  }
  ctx.command = node;
  auto rc = node->run(ctx);
  ctx.out.flush();
  if (!rc && stdout_reader_gone()) {
    return 128 + SIGPIPE;  // quiet, as a shell shows a SIGPIPE death (tar's errors lose EPIPE)
  }
  if (!rc) {
    ctx.err << "Error: " << rc.error().message() << "\n";
    return kExitEngineError;
  }
  return *rc;
}

}  // namespace berth::cli
