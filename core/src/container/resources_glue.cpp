// A container's resource limits, devices, security options and health check.
#include <fcntl.h>
#include <linux/openat2.h>
#include <pwd.h>
#include <sched.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <sstream>

#include "berth/container/resource_ops.hpp"
#include "berth/container/resource_options.hpp"
#include "berth/engine/engine.hpp"
#include "berth/image/image_service.hpp"
#include "berth/util/fs.hpp"
#include "features.hpp"
#include "internal.hpp"

namespace berth::container {

using nlohmann::json;

namespace {

template <typename T>
void put(json& j, const char* key, const std::optional<T>& v) {
  if (v) {
    j[key] = *v;
  }
}

template <typename T>
void get(const json& j, const char* key, std::optional<T>& v) {
  if (j.contains(key) && !j[key].is_null()) {
    v = j[key].get<T>();
  }
}

}  // namespace

void to_json(json& j, const ResourceOptions& o) {
  j = json{{"cpuset_cpus", o.cpuset_cpus},
           {"cpuset_mems", o.cpuset_mems},
           {"oom_kill_disable", o.oom_kill_disable},
           {"devices", o.devices},
           {"device_cgroup_rules", o.device_cgroup_rules},
           {"security_opt", o.security_opt},
           {"group_add", o.group_add},
           {"userns", o.userns},
           {"uidmap", o.uidmap},
           {"gidmap", o.gidmap},
           {"subuidname", o.subuidname},
           {"subgidname", o.subgidname},
           {"pid", o.pid},
           {"ipc", o.ipc},
           {"uts", o.uts},
           {"cgroupns", o.cgroupns},
           {"health_cmd", o.health_cmd},
           {"health_interval", o.health_interval},
           {"health_timeout", o.health_timeout},
           {"health_start_period", o.health_start_period},
           {"health_start_interval", o.health_start_interval},
           {"health_retries", o.health_retries},
           {"health_on_failure", o.health_on_failure},
           {"no_healthcheck", o.no_healthcheck}};
  put(j, "memory", o.memory);
  put(j, "memory_swap", o.memory_swap);
  put(j, "memory_reservation", o.memory_reservation);
  put(j, "cpus", o.cpus);
  put(j, "cpu_shares", o.cpu_shares);
  put(j, "pids_limit", o.pids_limit);
  put(j, "blkio_weight", o.blkio_weight);
  put(j, "shm_size", o.shm_size);
}

void from_json(const json& j, ResourceOptions& o) {
  ResourceOptions d;
  o.cpuset_cpus = j.value("cpuset_cpus", d.cpuset_cpus);
  o.cpuset_mems = j.value("cpuset_mems", d.cpuset_mems);
  o.oom_kill_disable = j.value("oom_kill_disable", d.oom_kill_disable);
  o.devices = j.value("devices", d.devices);
  o.device_cgroup_rules = j.value("device_cgroup_rules", d.device_cgroup_rules);
  o.security_opt = j.value("security_opt", d.security_opt);
  o.group_add = j.value("group_add", d.group_add);
  o.userns = j.value("userns", d.userns);
  o.uidmap = j.value("uidmap", d.uidmap);
  o.gidmap = j.value("gidmap", d.gidmap);
  o.subuidname = j.value("subuidname", d.subuidname);
  o.subgidname = j.value("subgidname", d.subgidname);
  o.pid = j.value("pid", d.pid);
  o.ipc = j.value("ipc", d.ipc);
  o.uts = j.value("uts", d.uts);
  o.cgroupns = j.value("cgroupns", d.cgroupns);
  o.health_cmd = j.value("health_cmd", d.health_cmd);
  o.health_interval = j.value("health_interval", d.health_interval);
  o.health_timeout = j.value("health_timeout", d.health_timeout);
  o.health_start_period = j.value("health_start_period", d.health_start_period);
  o.health_start_interval = j.value("health_start_interval", d.health_start_interval);
  o.health_retries = j.value("health_retries", d.health_retries);
  o.health_on_failure = j.value("health_on_failure", d.health_on_failure);
  o.no_healthcheck = j.value("no_healthcheck", d.no_healthcheck);
  get(j, "memory", o.memory);
  get(j, "memory_swap", o.memory_swap);
  get(j, "memory_reservation", o.memory_reservation);
  get(j, "cpus", o.cpus);
  get(j, "cpu_shares", o.cpu_shares);
  get(j, "pids_limit", o.pids_limit);
  get(j, "blkio_weight", o.blkio_weight);
  get(j, "shm_size", o.shm_size);
}

namespace detail {
namespace {

bool is_perms(const std::string& s) {
  return !s.empty() && s.size() <= 3 && s.find_first_not_of("rwm") == std::string::npos;
}

struct DeviceNode {
  std::string host;
  std::string ctr;
  std::string perms;
};

Result<DeviceNode> parse_device(const std::string& spec) {
  std::vector<std::string> f;
  size_t start = 0;
  for (;;) {
    size_t c = spec.find(':', start);
    f.push_back(spec.substr(start, c == std::string::npos ? std::string::npos : c - start));
    if (c == std::string::npos) {
      break;
    }
    start = c + 1;
  }
  DeviceNode d;
  d.host = f[0];
  d.perms = "rwm";
  if (f.size() == 2) {
    if (is_perms(f[1])) {
      d.perms = f[1];
    } else {
      d.ctr = f[1];
    }
  } else if (f.size() == 3) {
    d.ctr = f[1];
    d.perms = f[2];
  } else if (f.size() > 3) {
    return fail(Errc::InvalidArgument,
                "--device " + spec + ": want HOST[:CONTAINER[:PERMISSIONS]]");
  }
  if (d.ctr.empty()) {
    d.ctr = d.host;
  }
  if (d.host.empty() || d.host.front() != '/' || d.ctr.front() != '/') {
    return fail(Errc::InvalidArgument, "--device " + spec + ": paths must be absolute");
  }
  if (!is_perms(d.perms)) {
    return fail(Errc::InvalidArgument,
                "--device " + spec + ": invalid permissions \"" + d.perms + "\" (r, w, m)");
  }
  return d;
}

// One host node: the linux.devices entry and its cgroup rule.
Result<void> add_device_node(const std::string& host, const std::string& ctr,
                             const std::string& perms, spec::SpecOptions& so) {
  struct stat st {};
  if (::stat(host.c_str(), &st) != 0) {
    return fail_errno("--device: stat", host);
  }
  std::string type;
  if (S_ISCHR(st.st_mode)) {
    type = "c";
  } else if (S_ISBLK(st.st_mode)) {
    type = "b";
  } else {
    return fail(Errc::InvalidArgument,
                "--device " + host + ": not a character or block device node");
  }
  const int64_t maj = major(st.st_rdev);
  const int64_t min = minor(st.st_rdev);
  so.devices.push_back(json{{"path", ctr},
                            {"type", type},
                            {"major", maj},
                            {"minor", min},
                            {"fileMode", st.st_mode & 07777},
                            {"uid", st.st_uid},
                            {"gid", st.st_gid}});
  so.resources["devices"].push_back(
      json{{"allow", true}, {"type", type}, {"major", maj}, {"minor", min}, {"access", perms}});
  return {};
}

Result<void> add_device(const std::string& spec, spec::SpecOptions& so) {
  BERTH_TRY(auto d, parse_device(spec));
  std::error_code ec;
  if (std::filesystem::is_directory(d.host, ec)) {
    // A directory of nodes (e.g. /dev/snd): every node below it, at the same relative path.
    for (auto it = std::filesystem::recursive_directory_iterator(d.host, ec);
         !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
      if (it->is_character_file(ec) || it->is_block_file(ec)) {
        const std::string rel = it->path().string().substr(d.host.size());
        BERTH_TRYV(add_device_node(it->path().string(), d.ctr + rel, d.perms, so));
      }
    }
    return {};
  }
  return add_device_node(d.host, d.ctr, d.perms, so);
}

// "c 1:3 rwm", "b *:* m", "a".
Result<json> parse_cgroup_rule(const std::string& rule) {
  auto bad = [&]() {
    return fail(Errc::InvalidArgument, "--device-cgroup-rule \"" + rule +
                                           "\": want TYPE MAJOR:MINOR PERMISSIONS, e.g. "
                                           "\"c 1:3 rwm\" (type a, b or c; * for any number)");
  };
  std::istringstream in(rule);
  std::string type, nums, perms;
  in >> type >> nums >> perms;
  if (type == "a" && nums.empty()) {
    return json{{"allow", true}, {"type", "a"}, {"access", "rwm"}};
  }
  if ((type != "a" && type != "b" && type != "c") || !is_perms(perms)) {
    return bad();
  }
  auto colon = nums.find(':');
  if (colon == std::string::npos) {
    return bad();
  }
  json r{{"allow", true}, {"type", type}, {"access", perms}};
  auto num = [&](const std::string& s, const char* key) -> bool {
    if (s == "*") {
      return true;
    }
    if (s.empty() || s.find_first_not_of("0123456789") != std::string::npos) {
      return false;
    }
    r[key] = std::stoll(s);
    return true;
  };
  if (!num(nums.substr(0, colon), "major") || !num(nums.substr(colon + 1), "minor")) {
    return bad();
  }
  return r;
}

// Splits "a:b:c" (mask=/unmask= lists).
std::vector<std::string> split_paths(const std::string& s) {
  std::vector<std::string> out;
  std::istringstream in(s);
  for (std::string p; std::getline(in, p, ':');) {
    if (!p.empty()) {
      out.push_back(p);
    }
  }
  return out;
}

Result<void> apply_security_opts(CreateOptions& opts, spec::SpecOptions& so,
                                 std::vector<std::string>& warnings) {
  for (const auto& s : opts.resources.security_opt) {
    // Docker writes "key=value", older Docker "key:value".
    auto sep = s.find_first_of("=:");
    const std::string key = s.substr(0, sep);
    const std::string val = sep == std::string::npos ? "" : s.substr(sep + 1);
    if (key == "no-new-privileges") {
      if (val.empty() || val == "true") {
        so.no_new_privileges = true;
        opts.no_new_privileges = true;
      } else if (val != "false") {
        return fail(Errc::InvalidArgument, "--security-opt " + s + ": want true or false");
      }
    } else if (key == "seccomp") {
      if (val == "unconfined") {
        so.seccomp_unconfined = true;
      } else if (val.empty()) {
        return fail(Errc::InvalidArgument,
                    "--security-opt seccomp: give a profile path or "
                    "unconfined");
      } else {
        auto text = util::read_file(val);
        if (!text) {
          return fail(std::move(text).error().wrap("--security-opt seccomp=" + val));
        }
        try {
          so.seccomp_profile = json::parse(*text);
        } catch (const json::exception& e) {
          return fail(Errc::InvalidArgument,
                      "--security-opt seccomp=" + val + ": not a JSON profile: " + e.what());
        }
      }
    } else if (key == "mask") {
      for (const auto& p : split_paths(val)) {
        if (p.front() != '/') {
          return fail(Errc::InvalidArgument, "--security-opt mask: " + p + " is not absolute");
        }
        so.mask_paths.push_back(p);
      }
    } else if (key == "unmask") {
      auto paths = split_paths(val);
      so.unmask_paths.insert(so.unmask_paths.end(), paths.begin(), paths.end());
    } else if (key == "systempaths" && val == "unconfined") {
      so.unmask_paths.push_back("ALL");
    } else if (key == "label") {
      if (val != "disable" && val != "nested") {
        warnings.push_back("--security-opt " + s +
                           ": SELinux is not enabled on this host; the label is ignored");
      }
    } else if (key == "apparmor") {
      if (val != "unconfined") {
        warnings.push_back("--security-opt " + s +
                           ": AppArmor is not used by berth; the profile is ignored");
      }
    } else {
      return fail(Errc::InvalidArgument,
                  "--security-opt " + s +
                      ": unknown option (supported: seccomp=PATH|unconfined, no-new-privileges, "
                      "mask=PATHS, unmask=PATHS|ALL, label=disable, apparmor=unconfined)");
    }
  }
  return {};
}

// --pid/--ipc/--uts/--cgroupns: "", "private", "host", "container:NAME", "ns:PATH". A container
// target is recorded by id.
Result<void> namespace_mode(engine::Engine& eng, const char* flag, const char* ns_file,
                            std::string& mode, spec::NamespaceMode& out) {
  if (mode.empty() || mode == "private" || mode == "shareable") {
    out.kind = spec::NamespaceMode::Kind::Private;
    return {};
  }
  if (mode == "host") {
    out.kind = spec::NamespaceMode::Kind::Host;
    return {};
  }
  if (mode.rfind("ns:", 0) == 0) {
    out.kind = spec::NamespaceMode::Kind::Path;
    out.path = mode.substr(3);
    return {};
  }
  if (mode.rfind("container:", 0) == 0) {
    const std::string target = mode.substr(10);
    BERTH_TRY(auto db, open_db(eng, true));
    auto rec = db->lookup(target);
    if (!rec) {
      return fail(std::move(rec).error().wrap(std::string("--") + flag + " " + mode));
    }
    ContainerState st = read_state(eng.runroot(), *rec);
    if (st.status != Status::Running && st.status != Status::Paused) {
      return fail(Errc::Conflict, std::string("--") + flag + " " + mode + ": container " +
                                      rec->name + " is " + status_name(st.status) +
                                      "; start it first");
    }
    out.kind = spec::NamespaceMode::Kind::Path;
    out.path = "/proc/" + std::to_string(st.pid) + "/ns/" + ns_file;
    mode = "container:" + rec->id;
    return {};
  }
  return fail(Errc::InvalidArgument, std::string("--") + flag + " " + mode +
                                         ": want host, private, container:NAME or ns:PATH");
}

// Copies the image's HEALTHCHECK into the options where the flags left a value unset.
Result<void> resolve_healthcheck(engine::Engine& eng, const ContainerRecord& rec,
                                 ResourceOptions& r) {
  if (r.no_healthcheck) {
    r.health_cmd.clear();
    return {};
  }
  if (r.health_cmd.empty()) {
    BERTH_TRY(auto layers, open_layers(eng));
    auto img = image::lookup_image(*layers, rec.image_id);
    if (!img) {
      return {};
    }
    try {
      json cfg = json::parse(img->config).value("config", json::object());
      if (!cfg.is_object() || !cfg.contains("Healthcheck") || !cfg["Healthcheck"].is_object()) {
        return {};
      }
      const json& hc = cfg["Healthcheck"];
      r.health_cmd = hc.value("Test", std::vector<std::string>{});
      if (r.health_interval == 0) {
        r.health_interval = hc.value("Interval", int64_t{0});
      }
      if (r.health_timeout == 0) {
        r.health_timeout = hc.value("Timeout", int64_t{0});
      }
      if (r.health_start_period == 0) {
        r.health_start_period = hc.value("StartPeriod", int64_t{0});
      }
      if (r.health_start_interval <= 0 && hc.value("StartInterval", int64_t{0}) > 0) {
        r.health_start_interval = hc.value("StartInterval", int64_t{0});
      }
      if (r.health_retries == 0) {
        r.health_retries = hc.value("Retries", 0);
      }
    } catch (const json::exception&) {
      return {};  // an image config that cannot be read has no health check to take
    }
  }
  if (!r.health_cmd.empty() && (r.health_cmd[0] == "NONE" || r.health_cmd[0] == "none")) {
    r.health_cmd.clear();
  }
  if (r.health_cmd.size() == 1 && r.health_cmd[0] != "NONE") {
    // A bare string from an API caller: a shell command.
    if (r.health_cmd[0] == "CMD" || r.health_cmd[0] == "CMD-SHELL") {
      return fail(Errc::InvalidArgument, "--health-cmd: " + r.health_cmd[0] + " without a command");
    }
    r.health_cmd = {"CMD-SHELL", r.health_cmd[0]};
  }
  if (r.health_on_failure.empty()) {
    r.health_on_failure = "none";
  }
  if (r.health_on_failure != "none" && r.health_on_failure != "kill" &&
      r.health_on_failure != "restart" && r.health_on_failure != "stop") {
    return fail(Errc::InvalidArgument, "--health-on-failure " + r.health_on_failure +
                                           ": want none, kill, restart or stop");
  }
  return {};
}

// ---- user namespaces (--userns, --uidmap, --gidmap, --subuidname, --subgidname) ----

struct IdRange {
  uint32_t container = 0;
  uint32_t host = 0;
  uint32_t size = 0;
};

std::string triplet(const IdRange& m) {
  return std::to_string(m.container) + ":" + std::to_string(m.host) + ":" + std::to_string(m.size);
}

Result<uint32_t> parse_u32(const std::string& what, const std::string& s) {
  if (s.empty() || s.size() > 10 || s.find_first_not_of("0123456789") != std::string::npos) {
    return fail(Errc::InvalidArgument, what + ": \"" + s + "\" is not a number");
  }
  const uint64_t v = std::stoull(s);
  if (v > UINT32_MAX) {
    return fail(Errc::InvalidArgument, what + ": " + s + " is out of range");
  }
  return static_cast<uint32_t>(v);
}

// "CONTAINER:HOST:SIZE" (--uidmap, uidmapping=).
Result<IdRange> parse_triplet(const std::string& what, const std::string& s) {
  const auto a = s.find(':');
  const auto b = a == std::string::npos ? a : s.find(':', a + 1);
  if (b == std::string::npos || s.find(':', b + 1) != std::string::npos) {
    return fail(Errc::InvalidArgument,
                what + " " + s + ": want CONTAINER:HOST:SIZE, e.g. 0:100000:65536");
  }
  IdRange m;
  BERTH_TRY(m.container, parse_u32(what + " " + s, s.substr(0, a)));
  BERTH_TRY(m.host, parse_u32(what + " " + s, s.substr(a + 1, b - a - 1)));
  BERTH_TRY(m.size, parse_u32(what + " " + s, s.substr(b + 1)));
  if (m.size == 0 || uint64_t{m.container} + m.size > (uint64_t{1} << 32) ||
      uint64_t{m.host} + m.size > (uint64_t{1} << 32)) {
    return fail(Errc::InvalidArgument, what + " " + s +
                                           ": the size must be at least 1 and the "
                                           "ranges must fit in 32 bits");
  }
  return m;
}

// Ranges of `user` in /etc/subuid or /etc/subgid ("name:start:count", or the numeric uid).
Result<std::vector<std::pair<uint64_t, uint64_t>>> sub_ranges(const std::string& file,
                                                              const std::string& user) {
  std::vector<std::pair<uint64_t, uint64_t>> out;
  auto text = util::read_file(file);
  if (!text) {
    if (text.error().sys_errno() == ENOENT) {
      return out;
    }
    return fail(std::move(text).error());
  }
  std::string uid_text;
  if (struct passwd* pw = ::getpwnam(user.c_str())) {
    uid_text = std::to_string(pw->pw_uid);
  }
  std::istringstream in(*text);
  for (std::string line; std::getline(in, line);) {
    const auto a = line.find(':');
    const auto b = a == std::string::npos ? a : line.find(':', a + 1);
    if (b == std::string::npos || line.empty() || line[0] == '#') {
      continue;
    }
    const std::string name = line.substr(0, a);
    if (name != user && (uid_text.empty() || name != uid_text)) {
      continue;
    }
    auto start = parse_u32(file, line.substr(a + 1, b - a - 1));
    auto count = parse_u32(file, line.substr(b + 1));
    if (start && count && *count > 0) {
      out.emplace_back(*start, std::min<uint64_t>(*count, (uint64_t{1} << 32) - *start));
    }
  }
  return out;
}

// A file of the image, opened as if the rootfs were "/" (an image's symlink never reaches the
// host's files).
std::string read_in_root(const std::string& rootfs, const char* rel) {
  UniqueFd root(::open(rootfs.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!root) {
    return {};
  }
  open_how how{};
  how.flags = O_RDONLY | O_CLOEXEC;
  how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
  UniqueFd fd(static_cast<int>(::syscall(SYS_openat2, root.get(), rel, &how, sizeof(how))));
  if (!fd) {
    return {};
  }
  std::string out;
  char buf[8192];
  ssize_t n = 0;
  while ((n = ::read(fd.get(), buf, sizeof(buf))) > 0 && out.size() < (16u << 20)) {
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

constexpr uint32_t kNobody = 65534;      // not counted, as containers/storage does
constexpr uint32_t kAutoMinSize = 1024;  // storage.conf auto-userns-min-size default
constexpr uint32_t kAutoMaxSize = 65536;

// The smallest namespace that holds every id of the image: the highest uid/gid of its
// /etc/passwd, /etc/group and files, plus one (containers/storage's rule, nobody not counted).
uint32_t image_ids_needed(const std::string& rootfs) {
  uint64_t top = 0;
  auto note = [&](uint64_t id) {
    if (id != kNobody && id != kNobody + 1 && id > top) {
      top = id;
    }
  };
  for (const char* f : {"etc/passwd", "etc/group"}) {
    std::istringstream in(read_in_root(rootfs, f));
    for (std::string line; std::getline(in, line);) {
      // name:x:ID:... ; the id is the third field in both files (passwd's gid is the fourth).
      std::vector<std::string> fields;
      std::istringstream ls(line);
      for (std::string x; std::getline(ls, x, ':');) {
        fields.push_back(x);
      }
      for (size_t i = 2; i < fields.size() && i < (f[4] == 'p' ? 4u : 3u); ++i) {
        if (auto v = parse_u32("", fields[i]); v) {
          note(*v);
        }
      }
    }
  }
  std::error_code ec;
  for (auto it = std::filesystem::recursive_directory_iterator(
           rootfs, std::filesystem::directory_options::skip_permission_denied, ec);
       !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
    struct stat st {};
    if (::lstat(it->path().c_str(), &st) == 0) {
      note(st.st_uid);
      note(st.st_gid);
    }
  }
  return static_cast<uint32_t>(std::min<uint64_t>(top + 1, UINT32_MAX));
}

// The auto ranges and explicit maps of every container of the store, so that --userns=auto
// never hands out a host id another container has. An entry whose container directory is gone
// (removed, or a create undone) is free again.
struct UsernsAllocations {
  UniqueFd lock;
  std::string file;
  json entries = json::array();
};

Result<UsernsAllocations> open_allocations(engine::Engine& eng) {
  UsernsAllocations a;
  const std::string dir = eng.graphroot() + "/userns";
  BERTH_TRYV(util::make_dirs(dir, 0700));
  a.file = dir + "/allocations.json";
  BERTH_TRY(a.lock, util::open_file(dir + "/allocations.lock", O_RDWR | O_CREAT | O_CLOEXEC, 0600));
  while (::flock(a.lock.get(), LOCK_EX) != 0) {
    if (errno != EINTR) {
      return fail_errno("lock", dir + "/allocations.lock");
    }
  }
  auto text = util::read_file(a.file);
  if (text) {
    try {
      a.entries = json::parse(*text);
    } catch (const json::exception& e) {
      return fail(Errc::Corrupt, a.file + ": " + e.what() +
                                     " (remove it when no container "
                                     "uses --userns=auto)");
    }
  } else if (text.error().sys_errno() != ENOENT) {
    return fail(std::move(text).error());
  }
  json live = json::array();
  for (auto& e : a.entries) {
    if (::access(e.value("dir", std::string()).c_str(), F_OK) == 0) {
      live.push_back(std::move(e));
    }
  }
  a.entries = std::move(live);
  return a;
}

// First fit of `size` ids in `avail` (the subordinate ranges) around the host ranges in use.
std::optional<uint32_t> first_fit(const std::vector<std::pair<uint64_t, uint64_t>>& avail,
                                  std::vector<std::pair<uint64_t, uint64_t>> used, uint64_t size) {
  std::sort(used.begin(), used.end());
  for (const auto& [start, count] : avail) {
    uint64_t pos = start;
    const uint64_t end = start + count;
    for (const auto& [ustart, ucount] : used) {
      if (ustart + ucount <= pos) {
        continue;
      }
      if (ustart >= pos + size) {
        break;
      }
      pos = ustart + ucount;
    }
    if (pos + size <= end) {
      return static_cast<uint32_t>(pos);
    }
  }
  return std::nullopt;
}

std::vector<std::pair<uint64_t, uint64_t>> used_ranges(const json& entries, const char* key) {
  std::vector<std::pair<uint64_t, uint64_t>> out;
  for (const auto& e : entries) {
    for (const auto& m : e.value(key, json::array())) {
      auto t = parse_triplet("", m.get<std::string>());
      if (t) {
        out.emplace_back(t->host, t->size);
      }
    }
  }
  return out;
}

// Container ids [0, size) not covered by `extra`, mapped to consecutive host ids from `host`,
// followed by `extra` itself.
std::vector<IdRange> fill_around(uint32_t size, uint32_t host, const std::vector<IdRange>& extra) {
  std::vector<IdRange> sorted = extra;
  std::sort(sorted.begin(), sorted.end(),
            [](const IdRange& a, const IdRange& b) { return a.container < b.container; });
  std::vector<IdRange> out;
  uint64_t c = 0;
  uint64_t h = host;
  auto emit_until = [&](uint64_t stop) {
    stop = std::min<uint64_t>(stop, size);
    if (stop > c) {
      out.push_back(
          {static_cast<uint32_t>(c), static_cast<uint32_t>(h), static_cast<uint32_t>(stop - c)});
      h += stop - c;
      c = stop;
    }
  };
  for (const auto& e : sorted) {
    emit_until(e.container);
    c = std::max<uint64_t>(c, uint64_t{e.container} + e.size);
  }
  emit_until(size);
  out.insert(out.end(), extra.begin(), extra.end());
  return out;
}

uint64_t extra_count(const std::vector<IdRange>& extra, uint32_t size) {
  uint64_t n = 0;
  for (const auto& e : extra) {
    if (e.container < size) {
      n += std::min<uint64_t>(e.size, size - e.container);
    }
  }
  return n;
}

struct IdMaps {
  std::vector<IdRange> uids;
  std::vector<IdRange> gids;
};

const char* kSubidHint =
    " (as root, --userns=auto takes ranges of the user \"containers\" from /etc/subuid and "
    "/etc/subgid: `useradd --system --no-create-home containers` and add "
    "\"containers:2147483647:2147483648\" to both files)";

// --userns=auto[:size=N,uidmapping=C:H:S,gidmapping=C:H:S]
// Appends the container's maps to the allocation file (under its lock, held by `alloc`).
Result<void> add_allocation(UsernsAllocations& alloc, const ContainerRecord& rec,
                            const IdMaps& maps) {
  json e{{"id", rec.id},
         {"dir", std::filesystem::path(rec.bundle).parent_path().string()},
         {"uids", json::array()},
         {"gids", json::array()}};
  for (const auto& m : maps.uids) {
    e["uids"].push_back(triplet(m));
  }
  for (const auto& m : maps.gids) {
    e["gids"].push_back(triplet(m));
  }
  alloc.entries.push_back(std::move(e));
  return util::write_file_atomic(alloc.file, alloc.entries.dump());
}

Result<IdMaps> allocate_auto(engine::Engine& eng, const ContainerRecord& rec,
                             const std::string& mode, const std::string& rootfs) {
  std::optional<uint32_t> size;
  std::vector<IdRange> extra_uids, extra_gids;
  if (mode.size() > 4) {
    if (mode[4] != ':') {
      return fail(Errc::InvalidArgument, "--userns=" + mode + ": unknown mode");
    }
    std::istringstream in(mode.substr(5));
    for (std::string opt; std::getline(in, opt, ',');) {
      const auto eq = opt.find('=');
      const std::string key = opt.substr(0, eq);
      const std::string val = eq == std::string::npos ? "" : opt.substr(eq + 1);
      if (key == "size") {
        BERTH_TRY(size, parse_u32("--userns=auto size", val));
        if (*size == 0) {
          return fail(Errc::InvalidArgument, "--userns=auto: size must be at least 1");
        }
      } else if (key == "uidmapping") {
        BERTH_TRY(auto m, parse_triplet("--userns=auto uidmapping", val));
        extra_uids.push_back(m);
      } else if (key == "gidmapping") {
        BERTH_TRY(auto m, parse_triplet("--userns=auto gidmapping", val));
        extra_gids.push_back(m);
      } else {
        return fail(Errc::InvalidArgument,
                    "--userns=" + mode + ": unknown option specified: \"" + opt +
                        "\" (size=N, uidmapping=CONTAINER:HOST:SIZE, gidmapping=...)");
      }
    }
  }
  if (!size) {
    const uint32_t need = image_ids_needed(rootfs);
    if (need > kAutoMaxSize) {
      return fail(Errc::InvalidArgument,
                  "--userns=auto: the image uses ids up to " + std::to_string(need - 1) +
                      ", more than the automatic maximum of " + std::to_string(kAutoMaxSize) +
                      "; give the size with --userns=auto:size=" + std::to_string(need));
    }
    size = std::max(need, kAutoMinSize);
  }
  BERTH_TRY(auto sub_u, sub_ranges("/etc/subuid", "containers"));
  BERTH_TRY(auto sub_g, sub_ranges("/etc/subgid", "containers"));
  if (sub_u.empty() || sub_g.empty()) {
    return fail(Errc::NotFound, std::string("--userns=auto: no subordinate ids for the user "
                                            "\"containers\" in ") +
                                    (sub_u.empty() ? "/etc/subuid" : "/etc/subgid") + kSubidHint);
  }
  BERTH_TRY(auto alloc, open_allocations(eng));
  const uint64_t nu = *size - extra_count(extra_uids, *size);
  const uint64_t ng = *size - extra_count(extra_gids, *size);
  auto used_u = used_ranges(alloc.entries, "uids");
  auto used_g = used_ranges(alloc.entries, "gids");
  for (const auto& e : extra_uids) {
    used_u.emplace_back(e.host, e.size);
  }
  for (const auto& e : extra_gids) {
    used_g.emplace_back(e.host, e.size);
  }
  auto hu = first_fit(sub_u, used_u, nu);
  auto hg = first_fit(sub_g, used_g, ng);
  if (!hu || !hg) {
    return fail(Errc::Unavailable,
                "--userns=auto: no free range of " + std::to_string(*size) + " ids left in " +
                    (hu ? "/etc/subgid" : "/etc/subuid") +
                    " for the user \"containers\" (remove containers that use --userns=auto, "
                    "ask for less with --userns=auto:size=N, or add ranges)");
  }
  IdMaps maps{fill_around(*size, *hu, extra_uids), fill_around(*size, *hg, extra_gids)};
  BERTH_TRYV(add_allocation(alloc, rec, maps));
  return maps;
}

// Records explicit maps too, so that later auto ranges keep clear of them.
Result<void> record_explicit(engine::Engine& eng, const ContainerRecord& rec, const IdMaps& maps) {
  BERTH_TRY(auto alloc, open_allocations(eng));
  return add_allocation(alloc, rec, maps);
}

Result<std::vector<IdRange>> parse_proc_map(const std::string& what, const std::string& text) {
  std::vector<IdRange> out;
  std::istringstream in(text);
  uint64_t c = 0, h = 0, n = 0;
  while (in >> c >> h >> n) {
    out.push_back({static_cast<uint32_t>(c), static_cast<uint32_t>(h), static_cast<uint32_t>(n)});
  }
  if (out.empty()) {
    return fail(Errc::InvalidArgument, what + ": the user namespace has no id map");
  }
  return out;
}

// The maps of the user namespace at `path`, read by a child that joins it.
Result<IdMaps> maps_of_namespace(const std::string& path) {
  int p[2];
  if (::pipe2(p, O_CLOEXEC) != 0) {
    return fail_errno("pipe", "");
  }
  UniqueFd rd(p[0]);
  UniqueFd wr(p[1]);
  pid_t pid = ::fork();
  if (pid < 0) {
    return fail_errno("fork to read the maps of", path);
  }
  if (pid == 0) {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0 || ::setns(fd, CLONE_NEWUSER) != 0) {
      ::_exit(errno == 0 ? 1 : errno);
    }
    for (const char* f : {"/proc/self/uid_map", "/proc/self/gid_map"}) {
      char buf[4096];
      int m = ::open(f, O_RDONLY | O_CLOEXEC);
      ssize_t n = m < 0 ? -1 : ::read(m, buf, sizeof(buf) - 1);
      if (n < 0) {
        ::_exit(errno == 0 ? 1 : errno);
      }
      buf[n] = '\0';
      if (::write(p[1], buf, static_cast<size_t>(n) + 1) < 0) {
        ::_exit(1);
      }
    }
    ::_exit(0);
  }
  wr.reset();
  std::string text;
  char buf[4096];
  ssize_t n = 0;
  while ((n = ::read(rd.get(), buf, sizeof(buf))) > 0 || (n < 0 && errno == EINTR)) {
    if (n > 0) {
      text.append(buf, static_cast<size_t>(n));
    }
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    const int err = WIFEXITED(status) ? WEXITSTATUS(status) : EINVAL;
    return fail(Error::from_errno("--userns=ns:" + path + ": join the user namespace", path, err)
                    .hint("is it a user namespace file such as /proc/PID/ns/user?"));
  }
  const auto nul = text.find('\0');
  IdMaps maps;
  BERTH_TRY(maps.uids, parse_proc_map(path, text.substr(0, nul)));
  BERTH_TRY(maps.gids, parse_proc_map(path, nul == std::string::npos ? "" : text.substr(nul + 1)));
  return maps;
}

Result<std::vector<IdRange>> parse_map_flags(const char* flag, const std::vector<std::string>& v) {
  std::vector<IdRange> out;
  for (const auto& s : v) {
    BERTH_TRY(auto m, parse_triplet(std::string("--") + flag, s));
    out.push_back(m);
  }
  return out;
}

// --subuidname/--subgidname: the whole first range of the name, from container id 0.
Result<std::vector<IdRange>> subid_map(const char* flag, const std::string& file,
                                       const std::string& name) {
  BERTH_TRY(auto ranges, sub_ranges(file, name));
  if (ranges.empty()) {
    return fail(Errc::NotFound,
                std::string("--") + flag + " " + name + ": no range for " + name + " in " + file);
  }
  return std::vector<IdRange>{
      {0, static_cast<uint32_t>(ranges.front().first),
       static_cast<uint32_t>(std::min<uint64_t>(ranges.front().second, UINT32_MAX))}};
}

bool maps_root(const std::vector<IdRange>& m) {
  return std::any_of(m.begin(), m.end(), [](const IdRange& r) { return r.container == 0; });
}

std::string idmap_option(const IdMaps& maps) {
  auto part = [](const std::vector<IdRange>& v) {
    std::string s;
    for (const auto& m : v) {
      s += (s.empty() ? "" : "#") + std::to_string(m.container) + "-" + std::to_string(m.host) +
           "-" + std::to_string(m.size);
    }
    return s;
  };
  return "idmap=uids=" + part(maps.uids) + ";gids=" + part(maps.gids);
}

// The container's root (an unmapped host uid as far as these directories go) mounts its rootfs
// itself: every directory on the way to the rootfs must be searchable by others
// (0711, as containers/storage makes its directories for user namespaces; nothing is listed or
// read). Within the store berth adds the search bit; above it, it asks the administrator.
Result<void> searchable_path(engine::Engine& eng, const std::string& path) {
  const std::filesystem::path p = std::filesystem::path(path).lexically_normal();
  std::filesystem::path cur;
  for (const auto& part : p) {
    cur /= part;
    struct stat st {};
    if (::stat(cur.c_str(), &st) != 0) {
      if (errno == ENOENT) {
        return {};  // made later (a volume's directory), by whoever makes it
      }
      return fail_errno("stat", cur.string());
    }
    if (!S_ISDIR(st.st_mode) || (st.st_mode & S_IXOTH) != 0) {
      continue;
    }
    const std::string c = cur.string();
    auto inside = [&](const std::string& root) {
      return !root.empty() && (c == root || c.rfind(root + "/", 0) == 0);
    };
    if (!inside(eng.graphroot()) && !inside(eng.runroot())) {
      return fail(
          Errc::PermissionDenied,
          "the directory " + c + " (mode " +
              [&] {
                char b[8];
                std::snprintf(b, sizeof(b), "%04o", st.st_mode & 07777);
                return std::string(b);
              }() +
              ") above the store is not searchable by a container's root in a user "
              "namespace: `chmod o+x " +
              c + "` (or move the store)");
    }
    if (::chmod(c.c_str(), (st.st_mode & 07777) | S_IXOTH) != 0) {
      return fail_errno("chmod o+x (for the container's user namespace)", c);
    }
  }
  return {};
}

std::vector<json> oci_maps(const std::vector<IdRange>& v) {
  std::vector<json> out;
  for (const auto& m : v) {
    out.push_back({{"containerID", m.container}, {"hostID", m.host}, {"size", m.size}});
  }
  return out;
}

}  // namespace

Result<sdk::IdMappings> id_mappings(const ResourceOptions& r) {
  auto parse = [](const char* which, const std::vector<std::string>& v) -> Result<sdk::IdMap> {
    std::vector<sdk::IdRange> out;
    for (const auto& s : v) {
      auto m = parse_triplet(std::string("the container's recorded ") + which, s);
      if (!m) {
        return fail(Errc::Corrupt, m.error().message());
      }
      out.push_back({m->container, m->host, m->size});
    }
    return sdk::IdMap(std::move(out));
  };
  sdk::IdMappings ids;
  BERTH_TRY(ids.uids, parse("uid map", r.uidmap));
  BERTH_TRY(ids.gids, parse("gid map", r.gidmap));
  return ids;
}

std::pair<uint32_t, uint32_t> host_ids(const ResourceOptions& r, uint32_t uid, uint32_t gid) {
  auto ids = id_mappings(r);
  if (!ids) {
    return {uid, gid};  // maps userns_prepare wrote itself: never malformed
  }
  return {ids->uids.to_host(uid).value_or(uid), ids->gids.to_host(gid).value_or(gid)};
}

Result<void> userns_prepare(engine::Engine& eng, const ContainerRecord& rec, CreateOptions& opts,
                            spec::SpecOptions& so, std::vector<std::string>& /*warnings*/) {
  ResourceOptions& r = opts.resources;
  std::string mode = r.userns.empty() ? eng.config().containers.containers.userns : r.userns;
  const bool flags_map =
      !r.uidmap.empty() || !r.gidmap.empty() || !r.subuidname.empty() || !r.subgidname.empty();
  if ((mode.empty() || mode == "host") && !flags_map) {
    return {};
  }
  if (mode == "host" && !r.userns.empty() && flags_map) {
    return fail(Errc::InvalidArgument,
                "--userns=host and --uidmap/--gidmap/--subuidname/--subgidname conflict: the "
                "maps need a user namespace of the container's own");
  }
  const std::string kind = mode.substr(0, mode.find(':'));
  if (kind == "keep-id" || kind == "nomap") {
    return fail(Errc::InvalidArgument, kind + " is only supported in rootless mode");
  }
  if (eng.rootless()) {
    return fail(Errc::NotSupported, "--userns=" + mode +
                                        ": a rootless berth runs every container in its own user "
                                        "namespace already; use --userns=host (the default)");
  }
  if (flags_map && kind != "host" && kind != "private" && kind != "") {
    return fail(Errc::InvalidArgument, "--userns=" + mode +
                                           " cannot be combined with --uidmap, --gidmap, "
                                           "--subuidname or --subgidname");
  }
  IdMaps maps;
  if (flags_map) {
    BERTH_TRY(maps.uids, parse_map_flags("uidmap", r.uidmap));
    BERTH_TRY(maps.gids, parse_map_flags("gidmap", r.gidmap));
    if (!r.subuidname.empty()) {
      BERTH_TRY(maps.uids, subid_map("subuidname", "/etc/subuid", r.subuidname));
    }
    if (!r.subgidname.empty()) {
      BERTH_TRY(maps.gids, subid_map("subgidname", "/etc/subgid", r.subgidname));
    } else if (maps.gids.empty() && !r.subuidname.empty()) {
      BERTH_TRY(maps.gids, subid_map("subuidname", "/etc/subgid", r.subuidname));
    }
    // As Podman: one of the two maps given stands for both.
    if (maps.gids.empty()) {
      maps.gids = maps.uids;
    } else if (maps.uids.empty()) {
      maps.uids = maps.gids;
    }
    BERTH_TRYV(record_explicit(eng, rec, maps));
    so.userns.kind = spec::NamespaceMode::Kind::Private;
    if (r.userns.empty()) {
      r.userns = "private";
    }
  } else if (kind == "auto" || kind == "private") {
    BERTH_TRY(maps, allocate_auto(eng, rec, kind == "private" ? "auto" : mode, so.rootfs));
    so.userns.kind = spec::NamespaceMode::Kind::Private;
    r.userns = mode;
  } else if (kind == "container") {
    const std::string target = mode.substr(10);
    BERTH_TRY(auto db, open_db(eng, true));
    auto other = db->lookup(target);
    if (!other) {
      return fail(std::move(other).error().wrap("--userns " + mode));
    }
    ContainerState st = read_state(eng.runroot(), *other);
    if (st.status != Status::Running && st.status != Status::Paused) {
      return fail(Errc::Conflict, "--userns " + mode + ": container " + other->name + " is " +
                                      status_name(st.status) + "; start it first");
    }
    const ResourceOptions& o = other->options.resources;
    if (o.uidmap.empty()) {
      return fail(Errc::InvalidArgument,
                  "--userns " + mode + ": container " + other->name +
                      " has no user namespace of its own (it runs with --userns=host)");
    }
    BERTH_TRY(maps.uids, parse_map_flags("uidmap", o.uidmap));
    BERTH_TRY(maps.gids, parse_map_flags("gidmap", o.gidmap));
    so.userns.kind = spec::NamespaceMode::Kind::Path;
    so.userns.path = "/proc/" + std::to_string(st.pid) + "/ns/user";
    r.userns = "container:" + other->id;
  } else if (kind == "ns") {
    so.userns.kind = spec::NamespaceMode::Kind::Path;
    so.userns.path = mode.substr(3);
    BERTH_TRY(maps, maps_of_namespace(so.userns.path));
    r.userns = mode;
  } else {
    return fail(Errc::InvalidArgument,
                "--userns=" + mode +
                    ": want host, auto[:size=N,uidmapping=C:H:S,gidmapping=C:H:S], "
                    "container:NAME, ns:PATH (keep-id and nomap are for rootless Podman)");
  }
  if (!maps_root(maps.uids) || !maps_root(maps.gids)) {
    return fail(Errc::InvalidArgument,
                "--userns=" + mode +
                    ": the maps must map container uid and gid 0 (the runtime "
                    "starts the container as its root), e.g. --uidmap "
                    "0:100000:65536");
  }
  // The rootfs was mounted plainly by create(): mount it again with the image's layers
  // idmapped, so its files are the namespace's (no chown of the shared layers).
  const auto& choice = eng.storage_choice();
  if (!choice || choice->name != "overlay") {
    return fail(Errc::NotSupported, "--userns=" + mode +
                                        ": the rootfs of a container in a user namespace is made "
                                        "with idmapped overlay layers, and this store uses the " +
                                        (choice ? choice->name : std::string("unknown")) +
                                        " driver (use --storage-driver overlay on a fresh store)");
  }
  BERTH_TRY(auto* driver, eng.storage());
  BERTH_TRYV(driver->unmount(rec.layer_id));
  sdk::MountOptions mo;
  mo.options.push_back(idmap_option(maps));
  auto path = driver->mount(rec.layer_id, mo);
  if (!path) {
    return fail(std::move(path).error().wrap("--userns=" + mode));
  }
  so.rootfs = *path;
  // The runtime binds the rootfs onto itself as the namespace's root; the other bind sources
  // it clones beforehand, as the host's root.
  BERTH_TRYV(searchable_path(eng, so.rootfs));
  r.uidmap.clear();
  r.gidmap.clear();
  for (const auto& m : maps.uids) {
    r.uidmap.push_back(triplet(m));
  }
  for (const auto& m : maps.gids) {
    r.gidmap.push_back(triplet(m));
  }
  so.uid_mappings = oci_maps(maps.uids);
  so.gid_mappings = oci_maps(maps.gids);
  return {};
}

Result<void> resources_prepare(engine::Engine& eng, const ContainerRecord& rec, CreateOptions& opts,
                               spec::SpecOptions& so, std::vector<std::string>& warnings) {
  ResourceOptions& r = opts.resources;
  BERTH_TRY(json oci, resources_to_oci(r));
  for (auto& [k, v] : oci.items()) {
    so.resources[k] = v;
  }
  if (!opts.privileged) {
    // Deny everything, then allow the nodes asked for (the runtime adds the defaults).
    so.resources["devices"] = json::array({{{"allow", false}, {"access", "rwm"}}});
  }
  for (const auto& d : r.devices) {
    if (!so.resources.contains("devices")) {
      so.resources["devices"] = json::array();
    }
    BERTH_TRYV(add_device(d, so));
  }
  bool can_mknod = opts.privileged;
  for (std::string c : opts.cap_add) {
    std::transform(c.begin(), c.end(), c.begin(),
                   [](unsigned char ch) { return std::toupper(ch); });
    can_mknod |= c == "ALL" || c == "MKNOD" || c == "CAP_MKNOD";
  }
  for (std::string c : opts.cap_drop) {
    std::transform(c.begin(), c.end(), c.begin(),
                   [](unsigned char ch) { return std::toupper(ch); });
    can_mknod &= c != "ALL" && c != "MKNOD" && c != "CAP_MKNOD";
  }
  for (const auto& rule : r.device_cgroup_rules) {
    BERTH_TRY(json j, parse_cgroup_rule(rule));
    if (!can_mknod && j.value("access", "").find('m') != std::string::npos) {
      // The usual surprise (mknod fails with EPERM although the rule allows it): the cgroup
      // rule only lets the device through; making a node needs the capability, which is not
      // in the default set (Podman's neither).
      warnings.push_back("--device-cgroup-rule \"" + rule +
                         "\" allows mknod, but the container lacks CAP_MKNOD: add --cap-add "
                         "MKNOD to create device nodes inside");
    }
    if (!so.resources.contains("devices")) {
      so.resources["devices"] = json::array();
    }
    so.resources["devices"].push_back(std::move(j));
  }
  if (r.oom_kill_disable && !r.memory) {
    warnings.push_back(
        "--oom-kill-disable without --memory: the container may use all of the host's memory "
        "and nothing will kill it");
  }
  BERTH_TRYV(apply_security_opts(opts, so, warnings));
  for (const auto& g : r.group_add) {
    if (g == "keep-groups") {
      return fail(Errc::NotSupported,
                  "--group-add keep-groups applies to rootless containers with crun; a rootful "
                  "container has no supplementary groups to keep");
    }
    so.group_add.push_back(g);
  }
  if (r.shm_size) {
    if (*r.shm_size < 0) {
      return fail(Errc::InvalidArgument, "--shm-size must not be negative");
    }
    so.shm_size = *r.shm_size;
  }
  BERTH_TRYV(namespace_mode(eng, "pid", "pid", r.pid, so.pid));
  BERTH_TRYV(namespace_mode(eng, "ipc", "ipc", r.ipc, so.ipc));
  BERTH_TRYV(namespace_mode(eng, "uts", "uts", r.uts, so.uts));
  BERTH_TRYV(namespace_mode(eng, "cgroupns", "cgroup", r.cgroupns, so.cgroup));
  if (so.ipc.kind == spec::NamespaceMode::Kind::Host) {
    // The host's IPC namespace comes with its POSIX shared memory.
    so.mounts.push_back(spec::BindMount{"/dev/shm", "/dev/shm", {"rbind", "nosuid", "nodev"}});
  }
  return resolve_healthcheck(eng, rec, r);
}

void resources_inspect(engine::Engine& eng, const ContainerRecord& rec,
                       const ContainerState& /*st*/, json& out) {
  const auto& o = rec.options;
  const ResourceOptions& r = o.resources;
  json& hc = out["HostConfig"];
  hc["Memory"] = r.memory.value_or(0);
  hc["MemorySwap"] = r.memory_swap.value_or(r.memory ? 2 * *r.memory : 0);
  hc["MemoryReservation"] = r.memory_reservation.value_or(0);
  hc["NanoCpus"] = r.cpus ? static_cast<int64_t>(*r.cpus * 1e9 + 0.5) : 0;
  hc["CpuPeriod"] = r.cpus ? 100000 : 0;
  hc["CpuQuota"] = r.cpus ? static_cast<int64_t>(*r.cpus * 100000 + 0.5) : 0;
  hc["CpuShares"] = r.cpu_shares.value_or(0);
  hc["CpusetCpus"] = r.cpuset_cpus;
  hc["CpusetMems"] = r.cpuset_mems;
  hc["PidsLimit"] = r.pids_limit.value_or(0);
  hc["BlkioWeight"] = r.blkio_weight.value_or(0);
  hc["OomKillDisable"] = r.oom_kill_disable;
  json devices = json::array();
  for (const auto& d : r.devices) {
    if (auto p = parse_device(d); p) {
      devices.push_back(
          {{"PathOnHost", p->host}, {"PathInContainer", p->ctr}, {"CgroupPermissions", p->perms}});
    }
  }
  hc["Devices"] = devices;
  hc["DeviceCgroupRules"] = r.device_cgroup_rules;
  json secopt = json::array();
  for (const auto& s : r.security_opt) {
    secopt.push_back(s);
  }
  if (o.no_new_privileges && std::find(r.security_opt.begin(), r.security_opt.end(),
                                       "no-new-privileges") == r.security_opt.end()) {
    secopt.push_back("no-new-privileges");
  }
  hc["SecurityOpt"] = secopt;
  hc["ShmSize"] = r.shm_size && *r.shm_size > 0 ? *r.shm_size : int64_t{65536000};
  hc["GroupAdd"] = r.group_add;
  auto mode = [](const std::string& m, const char* def) {
    return m.empty() ? std::string(def) : m;
  };
  hc["IpcMode"] = mode(r.ipc, "shareable");
  hc["PidMode"] = mode(r.pid, "private");
  hc["UTSMode"] = mode(r.uts, "private");
  hc["CgroupnsMode"] = mode(r.cgroupns, "private");
  hc["UsernsMode"] = r.userns == "host" ? "" : r.userns;
  if (!r.uidmap.empty()) {
    hc["IDMappings"] = {{"UidMap", r.uidmap}, {"GidMap", r.gidmap}};
  }
  json cfg = healthcheck_config(r);
  if (!cfg.is_null()) {
    out["Config"]["Healthcheck"] = cfg;
    out["Config"]["HealthcheckOnFailureAction"] = r.health_on_failure;
    out["State"]["Health"] = health_state(eng.runroot(), rec);
  }
}

std::vector<PeriodicCommand> resources_periodic(engine::Engine& eng, const ContainerRecord& rec) {
  const ResourceOptions& r = rec.options.resources;
  if (r.no_healthcheck || r.health_cmd.empty() || r.health_interval < 0) {
    return {};
  }
  PeriodicCommand c;
  const int64_t interval_ns = r.health_interval > 0 ? r.health_interval : 30'000'000'000;
  c.interval_ms = std::max<int64_t>(interval_ns / 1'000'000, 1);
  c.first_after_ms = c.interval_ms;
  const int64_t start_interval = r.health_start_interval == ResourceOptions::kDockerStartInterval
                                     ? int64_t{5'000'000'000}
                                     : r.health_start_interval;
  if (start_interval > 0 && r.health_start_period > 0) {
    // In the start period the checks run at the start interval until one passes.
    c.start_interval_ms = std::max<int64_t>(start_interval / 1'000'000, 1);
    c.start_period_ms = std::max<int64_t>(r.health_start_period / 1'000'000, 1);
    c.first_after_ms = c.start_interval_ms;
  }
  c.argv = {self_exe(), "--root", eng.graphroot(), "--runroot", eng.runroot()};
  if (eng.storage_choice()) {
    c.argv.push_back("--storage-driver");
    c.argv.push_back(eng.storage_choice()->name);
  }
  c.argv.insert(c.argv.end(), {"healthcheck", "run", rec.id});
  return {c};
}

}  // namespace detail
}  // namespace berth::container
