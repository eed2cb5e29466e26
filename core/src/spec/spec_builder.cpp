// config.json from image config + run flags, with Podman's defaults.
#include "berth/spec/spec_builder.hpp"

#include <fnmatch.h>
#include <sys/prctl.h>
#include <sys/resource.h>

#include <algorithm>
#include <charconv>

namespace berth::spec {
namespace {

using nlohmann::json;

struct RlimitName {
  const char* flag;
  const char* oci;
  int resource;
};

constexpr RlimitName kRlimits[] = {
    {"as", "RLIMIT_AS", RLIMIT_AS},
    {"core", "RLIMIT_CORE", RLIMIT_CORE},
    {"cpu", "RLIMIT_CPU", RLIMIT_CPU},
    {"data", "RLIMIT_DATA", RLIMIT_DATA},
    {"fsize", "RLIMIT_FSIZE", RLIMIT_FSIZE},
    {"locks", "RLIMIT_LOCKS", RLIMIT_LOCKS},
    {"memlock", "RLIMIT_MEMLOCK", RLIMIT_MEMLOCK},
    {"msgqueue", "RLIMIT_MSGQUEUE", RLIMIT_MSGQUEUE},
    {"nice", "RLIMIT_NICE", RLIMIT_NICE},
    {"nofile", "RLIMIT_NOFILE", RLIMIT_NOFILE},
    {"nproc", "RLIMIT_NPROC", RLIMIT_NPROC},
    {"rss", "RLIMIT_RSS", RLIMIT_RSS},
    {"rtprio", "RLIMIT_RTPRIO", RLIMIT_RTPRIO},
    {"rttime", "RLIMIT_RTTIME", RLIMIT_RTTIME},
    {"sigpending", "RLIMIT_SIGPENDING", RLIMIT_SIGPENDING},
    {"stack", "RLIMIT_STACK", RLIMIT_STACK},
};

// Podman's defaults for rootful containers (pkg/specgen/generate: nofile 1048576, nproc
// 4194304), clamped to what this process may grant.
constexpr uint64_t kDefaultNofile = 1048576;
constexpr uint64_t kDefaultNproc = 4194304;

std::optional<uint64_t> parse_limit_value(const std::string& s) {
  if (s == "-1" || s == "unlimited") {
    return RLIM_INFINITY;
  }
  uint64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc() || p != s.data() + s.size()) {
    return std::nullopt;
  }
  return v;
}

uint64_t hard_limit(int resource) {
  rlimit rl{};
  if (::getrlimit(resource, &rl) != 0) {
    return RLIM_INFINITY;
  }
  return rl.rlim_max;
}

Rlimit clamped(const RlimitName& name, uint64_t soft, uint64_t hard) {
  const uint64_t max = hard_limit(name.resource);
  return {name.oci, std::min(soft, max), std::min(hard, max)};
}

std::string env_key(const std::string& kv) {
  return kv.substr(0, kv.find('='));
}

bool has_env(const std::vector<std::string>& env, const std::string& key) {
  return std::any_of(env.begin(), env.end(),
                     [&](const std::string& kv) { return env_key(kv) == key; });
}

std::string cap_name(std::string c) {
  std::transform(c.begin(), c.end(), c.begin(), [](unsigned char ch) { return std::toupper(ch); });
  if (c != "ALL" && c.rfind("CAP_", 0) != 0) {
    c = "CAP_" + c;
  }
  return c;
}

// Every capability this process may hand on: the kernel's list cut to our bounding set, as
// Podman does for --privileged and --cap-add ALL (a host or an outer container without, say,
// CAP_SYS_RESOURCE cannot grant it, and asking for it fails the start with EPERM).
std::vector<std::string> grantable_capabilities() {
  const auto& all = all_capabilities();
  std::vector<std::string> out;
  for (size_t i = 0; i < all.size(); ++i) {
    if (::prctl(PR_CAPBSET_READ, static_cast<unsigned long>(i), 0, 0, 0) == 1) {
      out.push_back(all[i]);
    }
  }
  return out;
}

Result<std::vector<std::string>> capability_set(const SpecOptions& o) {
  const auto& all = all_capabilities();
  auto known = [&](const std::string& c) {
    return std::find(all.begin(), all.end(), c) != all.end();
  };
  // A bad configured list is an error even where it does not apply (--privileged, --cap-drop
  // ALL): the admin hears of it at the first create.
  std::vector<std::string> defaults;
  if (o.default_caps) {
    BERTH_TRY(defaults, canonical_capabilities(*o.default_caps, o.default_caps_origin.empty()
                                                                    ? "the default capabilities"
                                                                    : o.default_caps_origin));
  }
  if (o.privileged) {
    return grantable_capabilities();
  }
  std::vector<std::string> drops;
  std::vector<std::string> adds;
  for (const auto& c : o.cap_drop) {
    drops.push_back(cap_name(c));
  }
  for (const auto& c : o.cap_add) {
    adds.push_back(cap_name(c));
  }
  for (const auto& c : drops) {
    if (c != "ALL" && !known(c)) {
      return fail(Errc::InvalidArgument, "--cap-drop: unknown capability '" + c + "'");
    }
  }
  for (const auto& c : adds) {
    if (c != "ALL" && !known(c)) {
      return fail(Errc::InvalidArgument, "--cap-add: unknown capability '" + c + "'");
    }
  }
  std::vector<std::string> caps;
  if (std::find(adds.begin(), adds.end(), "ALL") != adds.end()) {
    caps = grantable_capabilities();
  } else if (std::find(drops.begin(), drops.end(), "ALL") == drops.end()) {
    caps = o.default_caps ? defaults : default_capabilities();
  }
  for (const auto& c : adds) {
    if (c != "ALL" && std::find(caps.begin(), caps.end(), c) == caps.end()) {
      caps.push_back(c);
    }
  }
  // Drops win over defaults, explicit adds win over "--cap-drop ALL" (Podman's order).
  std::erase_if(caps, [&](const std::string& c) {
    bool dropped = std::find(drops.begin(), drops.end(), c) != drops.end();
    bool added = std::find(adds.begin(), adds.end(), c) != adds.end();
    return dropped && !added;
  });
  return caps;
}

json mount(const char* dst, const char* type, const char* src, std::vector<std::string> options) {
  return json{{"destination", dst}, {"type", type}, {"source", src}, {"options", options}};
}

json default_mounts(const SpecOptions& o) {
  const char* sys_ro = o.privileged ? "rw" : "ro";
  json mounts = json::array();
  mounts.push_back(mount("/proc", "proc", "proc", {"nosuid", "noexec", "nodev"}));
  mounts.push_back(
      mount("/dev", "tmpfs", "tmpfs", {"nosuid", "strictatime", "mode=755", "size=65536k"}));
  // gid 5 (tty) only where it exists: a user namespace may map fewer ids (devpts refuses it).
  bool tty_gid = o.userns.kind != NamespaceMode::Kind::Private;
  for (const auto& m : o.gid_mappings) {
    const auto c = m.value("containerID", int64_t{0});
    tty_gid |= c <= 5 && 5 < c + m.value("size", int64_t{0});
  }
  std::vector<std::string> pts{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"};
  if (tty_gid) {
    pts.push_back("gid=5");
  }
  mounts.push_back(mount("/dev/pts", "devpts", "devpts", pts));
  mounts.push_back(mount("/dev/mqueue", "mqueue", "mqueue", {"nosuid", "noexec", "nodev"}));
  if (o.userns.kind != NamespaceMode::Kind::Host &&
      o.network.kind != NamespaceMode::Kind::Private) {
    // As Podman: a user namespace may not mount a sysfs for a network namespace it does not own
    // (the host's, or one the engine made): the host's /sys, bound.
    mounts.push_back(
        mount("/sys", "bind", "/sys", {"rprivate", "nosuid", "noexec", "nodev", sys_ro, "rbind"}));
  } else {
    mounts.push_back(mount("/sys", "sysfs", "sysfs", {"nosuid", "noexec", "nodev", sys_ro}));
  }
  mounts.push_back(mount("/sys/fs/cgroup", "cgroup", "cgroup",
                         {"nosuid", "noexec", "nodev", "relatime", sys_ro}));
  const std::string shm_size = o.shm_size && *o.shm_size > 0 ? "size=" + std::to_string(*o.shm_size)
                                                             : std::string("size=65536k");
  mounts.push_back(
      mount("/dev/shm", "tmpfs", "shm", {"nosuid", "noexec", "nodev", "mode=1777", shm_size}));
  return mounts;
}

json namespaces(const SpecOptions& o) {
  json out = json::array();
  auto add = [&](const char* type, const NamespaceMode& m) {
    if (m.kind == NamespaceMode::Kind::Host) {
      return;
    }
    json ns{{"type", type}};
    if (m.kind == NamespaceMode::Kind::Path) {
      ns["path"] = m.path;
    }
    out.push_back(std::move(ns));
  };
  add("user", o.userns);
  add("pid", o.pid);
  add("network", o.network);
  add("ipc", o.ipc);
  add("uts", o.uts);
  out.push_back({{"type", "mount"}});
  add("cgroup", o.cgroup);
  return out;
}

Result<std::vector<std::string>> command(const ImageConfig& image, const SpecOptions& o) {
  std::vector<std::string> args;
  if (o.entrypoint) {
    args = *o.entrypoint;
    if (o.args) {
      args.insert(args.end(), o.args->begin(), o.args->end());
    }
  } else {
    args = image.entrypoint;
    const auto& cmd = o.args ? *o.args : image.cmd;
    args.insert(args.end(), cmd.begin(), cmd.end());
  }
  if (args.empty()) {
    return fail(Errc::InvalidArgument,
                "no command specified: the image has no Entrypoint or Cmd (give a command after "
                "the image name)");
  }
  return args;
}

Result<json> rlimits(const SpecOptions& o) {
  std::vector<Rlimit> limits = {clamped(kRlimits[9], kDefaultNofile, kDefaultNofile),
                                clamped(kRlimits[10], kDefaultNproc, kDefaultNproc)};
  for (const auto& u : o.ulimits) {
    BERTH_TRY(Rlimit r, parse_ulimit(u));
    auto it = std::find_if(limits.begin(), limits.end(),
                           [&](const Rlimit& l) { return l.type == r.type; });
    if (it != limits.end()) {
      *it = r;
    } else {
      limits.push_back(r);
    }
  }
  json out = json::array();
  for (const auto& l : limits) {
    out.push_back({{"type", l.type}, {"soft", l.soft}, {"hard", l.hard}});
  }
  return out;
}

Result<json> process(const ImageConfig& image, const SpecOptions& o,
                     const std::vector<std::string>& caps) {
  BERTH_TRY(auto args, command(image, o));
  const std::string user_spec = o.user.empty() ? image.user : o.user;
  BERTH_TRY(ResolvedUser user, resolve_user(o.rootfs, user_spec));
  if (!o.init_path.empty()) {
    args.insert(args.begin(), {kInitPath, "--"});
  }
  std::vector<std::string> base = {kDefaultPath, "container=berth"};
  if (o.tty) {
    base.push_back("TERM=xterm");
  }
  std::vector<std::string> env = merge_env(merge_env(base, image.env), o.env);
  if (!has_env(env, "HOME")) {
    env.push_back("HOME=" + user.home);
  }
  if (!has_env(env, "HOSTNAME") && !o.hostname.empty()) {
    env.push_back("HOSTNAME=" + o.hostname);
  }
  std::string cwd = !o.workdir.empty() ? o.workdir : image.working_dir;
  if (cwd.empty()) {
    cwd.assign(1, '/');  // not = "/": GCC 12 -Wrestrict false positive
  }
  if (cwd.front() != '/') {
    return fail(Errc::InvalidArgument, "working directory '" + cwd + "' must be absolute");
  }
  // Like Podman >= 4: a non-root user gets only the explicitly added capabilities in its
  // effective and permitted sets; the bounding set stays.
  std::vector<std::string> effective = caps;
  if (user.uid != 0 && !o.privileged) {
    effective.clear();
    for (const auto& c : o.cap_add) {
      std::string name = cap_name(c);
      if (std::find(caps.begin(), caps.end(), name) != caps.end()) {
        effective.push_back(name);
      }
    }
  }
  json p{{"terminal", o.tty},
         {"user", {{"uid", user.uid}, {"gid", user.gid}}},
         {"args", args},
         {"env", env},
         {"cwd", cwd},
         {"capabilities",
          {{"bounding", caps},
           {"effective", effective},
           {"permitted", effective},
           {"inheritable", json::array()},
           {"ambient", json::array()}}},
         {"noNewPrivileges", o.no_new_privileges}};
  if (o.tty && o.console_size) {
    p["consoleSize"] = {{"height", o.console_size->first}, {"width", o.console_size->second}};
  }
  for (const auto& g : o.group_add) {
    // A group name is looked up in the image's /etc/group; "0:" keeps the uid out of it.
    auto added = resolve_user(o.rootfs, "0:" + g);
    if (!added) {
      return fail(std::move(added).error().wrap("--group-add " + g));
    }
    if (std::find(user.additional_gids.begin(), user.additional_gids.end(), added->gid) ==
        user.additional_gids.end()) {
      user.additional_gids.push_back(added->gid);
    }
  }
  if (!user.additional_gids.empty()) {
    p["user"]["additionalGids"] = user.additional_gids;
  }
  BERTH_TRY(p["rlimits"], rlimits(o));
  if (o.oom_score_adj) {
    if (*o.oom_score_adj < -1000 || *o.oom_score_adj > 1000) {
      return fail(Errc::InvalidArgument, "--oom-score-adj must be within [-1000, 1000]");
    }
    p["oomScoreAdj"] = *o.oom_score_adj;
  }
  return p;
}

// The default masked or read-only paths without the --security-opt unmask= ones, plus the
// mask= ones for the masked list.
std::vector<std::string> masked_paths(const SpecOptions& o, const std::vector<std::string>& base,
                                      bool add_masks) {
  std::vector<std::string> out;
  auto unmasked = [&](const std::string& p) {
    return std::any_of(o.unmask_paths.begin(), o.unmask_paths.end(), [&](const std::string& u) {
      return u == "ALL" || u == p || ::fnmatch(u.c_str(), p.c_str(), FNM_PATHNAME) == 0;
    });
  };
  for (const auto& p : base) {
    if (!unmasked(p)) {
      out.push_back(p);
    }
  }
  if (add_masks) {
    for (const auto& p : o.mask_paths) {
      if (std::find(out.begin(), out.end(), p) == out.end()) {
        out.push_back(p);
      }
    }
  }
  return out;
}

Result<json> linux_section(const SpecOptions& o, const std::vector<std::string>& caps) {
  json l{{"namespaces", namespaces(o)}, {"cgroupsPath", o.cgroup_parent + "/" + o.id}};
  json resources = o.resources.is_object() ? o.resources : json::object();
  if (!o.privileged && !resources.contains("devices")) {
    resources["devices"] = json::array({{{"allow", false}, {"access", "rwm"}}});
  }
  l["resources"] = resources;
  // A joined namespace (a path) has its maps already; they are written all the same, as the
  // namespace has them: runc 1.1 refuses a user namespace without them ("no uid mappings
  // found"), and a runtime that joins never writes them.
  if (o.userns.kind == NamespaceMode::Kind::Private ||
      (o.userns.kind == NamespaceMode::Kind::Path && !o.uid_mappings.empty())) {
    l["uidMappings"] = o.uid_mappings;
    l["gidMappings"] = o.gid_mappings;
  }
  if (!o.sysctls.empty()) {
    l["sysctl"] = o.sysctls;
  }
  if (!o.devices.empty()) {
    l["devices"] = o.devices;
  }
  if (!o.privileged) {
    l["maskedPaths"] = masked_paths(o, default_masked_paths(), true);
    l["readonlyPaths"] = masked_paths(o, default_readonly_paths(), false);
    if (!o.seccomp_unconfined) {
      BERTH_TRY(l["seccomp"],
                seccomp_for_spec(o.seccomp_profile ? *o.seccomp_profile : default_seccomp_profile(),
                                 caps));
    }
  }
  return l;
}

// The extra mounts (volumes, binds, tmpfs): a mount over a default one (/dev/shm, /tmp...)
// replaces it, as Podman lets a user's mount win.
Result<void> add_extra_mounts(const SpecOptions& o, json& mounts) {
  for (const auto& b : o.mounts) {
    if (b.destination.empty() || b.destination.front() != '/') {
      return fail(Errc::InvalidArgument,
                  "mount destination '" + b.destination + "' must be an absolute path");
    }
    std::vector<std::string> opts = b.options;
    const bool bind = b.type.empty() || b.type == "bind";
    if (bind && std::find(opts.begin(), opts.end(), "bind") == opts.end() &&
        std::find(opts.begin(), opts.end(), "rbind") == opts.end()) {
      opts.insert(opts.begin(), "rbind");
    }
    std::string dst = b.destination;
    while (dst.size() > 1 && dst.back() == '/') {
      dst.pop_back();
    }
    for (auto it = mounts.begin(); it != mounts.end();) {
      if (it->value("destination", "") == dst) {
        it = mounts.erase(it);
      } else {
        ++it;
      }
    }
    mounts.push_back(json{{"destination", dst},
                          {"type", bind ? std::string("bind") : b.type},
                          {"source", bind ? b.source : (b.source.empty() ? b.type : b.source)},
                          {"options", opts}});
  }
  return {};
}

}  // namespace

Result<ImageConfig> parse_image_config(const nlohmann::json& config) {
  ImageConfig out;
  if (config.is_null()) {
    return out;
  }
  try {
    auto strings = [&](const char* key) {
      std::vector<std::string> v;
      if (config.contains(key) && config[key].is_array()) {
        v = config[key].get<std::vector<std::string>>();
      }
      return v;
    };
    out.env = strings("Env");
    out.entrypoint = strings("Entrypoint");
    out.cmd = strings("Cmd");
    out.working_dir = config.value("WorkingDir", "");
    out.user = config.value("User", "");
    out.stop_signal = config.value("StopSignal", "");
    if (config.contains("Labels") && config["Labels"].is_object()) {
      out.labels = config["Labels"].get<std::map<std::string, std::string>>();
    }
  } catch (const json::exception& e) {
    return fail(Errc::Corrupt, std::string("image config: ") + e.what());
  }
  return out;
}

Result<Rlimit> parse_ulimit(const std::string& ulimit) {
  auto eq = ulimit.find('=');
  if (eq == std::string::npos) {
    return fail(Errc::InvalidArgument,
                "ulimit '" + ulimit + "': expected TYPE=SOFT[:HARD], e.g. nofile=1024:1024");
  }
  const std::string type = ulimit.substr(0, eq);
  const std::string values = ulimit.substr(eq + 1);
  const RlimitName* name = nullptr;
  for (const auto& n : kRlimits) {
    if (type == n.flag || type == n.oci) {
      name = &n;
    }
  }
  if (!name) {
    return fail(Errc::InvalidArgument, "ulimit '" + ulimit + "': unknown type '" + type + "'");
  }
  auto colon = values.find(':');
  auto soft = parse_limit_value(values.substr(0, colon));
  auto hard = colon == std::string::npos ? soft : parse_limit_value(values.substr(colon + 1));
  if (!soft || !hard) {
    return fail(Errc::InvalidArgument, "ulimit '" + ulimit + "': values must be numbers or -1");
  }
  if (*soft > *hard) {
    return fail(Errc::InvalidArgument,
                "ulimit '" + ulimit + "': the soft limit is above the hard limit");
  }
  return clamped(*name, *soft, *hard);
}

std::vector<std::string> merge_env(const std::vector<std::string>& base,
                                   const std::vector<std::string>& overrides) {
  std::vector<std::string> out = base;
  for (const auto& kv : overrides) {
    const std::string key = env_key(kv);
    auto it = std::find_if(out.begin(), out.end(),
                           [&](const std::string& e) { return env_key(e) == key; });
    if (it != out.end()) {
      *it = kv;
    } else {
      out.push_back(kv);
    }
  }
  return out;
}

bool is_stock_default_capabilities(const std::vector<std::string>& names) {
  std::vector<std::string> have;
  for (const auto& n : names) {
    have.push_back(cap_name(n));
  }
  std::vector<std::string> stock = default_capabilities();
  std::sort(have.begin(), have.end());
  have.erase(std::unique(have.begin(), have.end()), have.end());
  std::sort(stock.begin(), stock.end());
  return have == stock;
}

Result<std::vector<std::string>> canonical_capabilities(const std::vector<std::string>& names,
                                                        const std::string& origin) {
  const auto& all = all_capabilities();
  std::vector<std::string> out;
  for (const auto& n : names) {
    std::string c = cap_name(n);
    if (std::find(all.begin(), all.end(), c) == all.end()) {
      return fail(Errc::InvalidArgument,
                  origin + ": unknown capability '" + n +
                      "' (names as in capabilities(7), with or without CAP_, e.g. NET_RAW; "
                      "fix or remove it)");
    }
    if (std::find(out.begin(), out.end(), c) == out.end()) {
      out.push_back(std::move(c));
    }
  }
  return out;
}

Result<nlohmann::json> build_spec(const ImageConfig& image, const SpecOptions& o) {
  if (o.rootfs.empty() || o.rootfs.front() != '/') {
    return fail(Errc::InvalidArgument, "spec: the rootfs path must be absolute");
  }
  BERTH_TRY(auto caps, capability_set(o));
  json spec{{"ociVersion", "1.0.2"}, {"root", {{"path", o.rootfs}, {"readonly", o.read_only}}}};
  BERTH_TRY(spec["process"], process(image, o, caps));
  spec["hostname"] = !o.hostname.empty() ? o.hostname : o.id.substr(0, 12);
  if (!o.domainname.empty()) {
    spec["domainname"] = o.domainname;
  }
  json mounts = default_mounts(o);
  BERTH_TRYV(add_extra_mounts(o, mounts));
  if (!o.init_path.empty()) {
    mounts.push_back(json{{"destination", kInitPath},
                          {"type", "bind"},
                          {"source", o.init_path},
                          {"options", {"bind", "ro", "nosuid", "nodev"}}});
  }
  spec["mounts"] = std::move(mounts);
  json annotations = json::object();
  for (const auto& [k, v] : image.labels) {
    annotations[k] = v;
  }
  for (const auto& [k, v] : o.labels) {
    annotations[k] = v;
  }
  for (const auto& [k, v] : o.annotations) {
    annotations[k] = v;
  }
  if (!image.stop_signal.empty()) {
    annotations["org.opencontainers.image.stopSignal"] = image.stop_signal;
  }
  spec["annotations"] = std::move(annotations);
  BERTH_TRY(spec["linux"], linux_section(o, caps));
  // Podman's rule: a mount with shared propagation makes the root shared (so that mounts made in
  // the container reach the host), else one with slave propagation makes it rslave.
  std::string root_propagation;
  for (const auto& m : spec["mounts"]) {
    for (const auto& opt : m.value("options", json::array())) {
      const std::string s = opt.is_string() ? opt.get<std::string>() : "";
      if (s == "shared" || s == "rshared") {
        root_propagation = "shared";
      } else if ((s == "slave" || s == "rslave") && root_propagation.empty()) {
        root_propagation = "rslave";
      }
    }
  }
  if (!root_propagation.empty()) {
    spec["linux"]["rootfsPropagation"] = root_propagation;
  }
  return spec;
}

}  // namespace berth::spec
