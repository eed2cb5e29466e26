// A container's resource limits, devices, security options and health check.
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <filesystem>

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
           {"pid", o.pid},
           {"ipc", o.ipc},
           {"uts", o.uts},
           {"cgroupns", o.cgroupns},
           {"health_cmd", o.health_cmd},
           {"health_interval", o.health_interval},
           {"health_timeout", o.health_timeout},
           {"health_start_period", o.health_start_period},
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
  o.pid = j.value("pid", d.pid);
  o.ipc = j.value("ipc", d.ipc);
  o.uts = j.value("uts", d.uts);
  o.cgroupns = j.value("cgroupns", d.cgroupns);
  o.health_cmd = j.value("health_cmd", d.health_cmd);
  o.health_interval = j.value("health_interval", d.health_interval);
  o.health_timeout = j.value("health_timeout", d.health_timeout);
  o.health_start_period = j.value("health_start_period", d.health_start_period);
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

}  // namespace

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
  for (const auto& rule : r.device_cgroup_rules) {
    BERTH_TRY(json j, parse_cgroup_rule(rule));
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
  if (!r.userns.empty() && r.userns != "host") {
    std::string what = r.userns.substr(0, r.userns.find(':'));
    return fail(
        Errc::NotSupported,
        "--userns=" + r.userns +
            ": berth does not run rootful containers in a user "
            "namespace yet (" +
            what +
            " needs uid/gid ranges from /etc/subuid and "
            "/etc/subgid and a rootfs shifted to them, which the storage drivers do not do); "
            "use --userns=host");
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
