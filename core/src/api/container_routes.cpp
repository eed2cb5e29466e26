// Container endpoints over berth::container: list, create, inspect, start, stop, restart, kill,
// wait, rename, top, logs (multiplexed stream), attach and exec (hijacked connections served by
// the berth CLI in a child process, so signals and the runtime stay out of the service's
// threads), prune, remove.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <functional>
#include <mutex>
#include <set>
#include <thread>

#include "berth/container/mount_options.hpp"
#include "berth/container/net_options.hpp"
#include "berth/container/resource_ops.hpp"
#include "berth/container/service.hpp"
#include "berth/engine/engine.hpp"
#include "berth/events/events.hpp"
#include "berth/network/network.hpp"
#include "berth/sdk/unique_fd.hpp"
#include "berth/util/digest.hpp"
#include "berth/util/fs.hpp"
#include "berth/util/log.hpp"
#include "routes.hpp"

extern char** environ;

namespace berth::api {
namespace {

using nlohmann::json;

// Docker's state words from Podman's.
std::string docker_state(const std::string& s) {
  if (s == "configured") {
    return "created";
  }
  if (s == "stopping") {
    return "running";
  }
  if (s == "stopped") {
    return "exited";
  }
  return s;
}

std::optional<int> parse_signal(std::string s) {
  if (s.empty()) {
    return std::nullopt;
  }
  if (std::all_of(s.begin(), s.end(), [](unsigned char c) { return std::isdigit(c); })) {
    return std::atoi(s.c_str());
  }
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::toupper(c); });
  if (s.rfind("SIG", 0) == 0) {
    s = s.substr(3);
  }
  static const std::map<std::string, int> kSignals = {
      {"HUP", SIGHUP},   {"INT", SIGINT},     {"QUIT", SIGQUIT}, {"KILL", SIGKILL},
      {"USR1", SIGUSR1}, {"USR2", SIGUSR2},   {"TERM", SIGTERM}, {"STOP", SIGSTOP},
      {"CONT", SIGCONT}, {"WINCH", SIGWINCH}, {"ALRM", SIGALRM}, {"PIPE", SIGPIPE}};
  auto it = kSignals.find(s);
  if (it == kSignals.end()) {
    return std::nullopt;
  }
  return it->second;
}

std::string signal_name(int sig) {
  static const std::map<int, std::string> kNames = {
      {SIGHUP, "SIGHUP"},   {SIGINT, "SIGINT"},     {SIGQUIT, "SIGQUIT"}, {SIGKILL, "SIGKILL"},
      {SIGUSR1, "SIGUSR1"}, {SIGUSR2, "SIGUSR2"},   {SIGTERM, "SIGTERM"}, {SIGSTOP, "SIGSTOP"},
      {SIGCONT, "SIGCONT"}, {SIGWINCH, "SIGWINCH"}, {SIGALRM, "SIGALRM"}, {SIGPIPE, "SIGPIPE"}};
  auto it = kNames.find(sig);
  return it == kNames.end() ? std::to_string(sig) : it->second;
}

std::vector<std::string> string_list(const json& v) {
  std::vector<std::string> out;
  if (v.is_string()) {
    out.push_back(v.get<std::string>());
  } else if (v.is_array()) {
    for (const auto& e : v) {
      if (e.is_string()) {
        out.push_back(e.get<std::string>());
      }
    }
  }
  return out;
}

// A JSON number as int64 (0 when absent or not a number).
int64_t num(const json& o, const char* key) {
  if (!o.contains(key) || !o[key].is_number()) {
    return 0;
  }
  return o[key].is_number_float() ? static_cast<int64_t>(o[key].get<double>())
                                  : o[key].get<int64_t>();
}

// NetworkMode, NetworkingConfig.EndpointsConfig, PortBindings, PublishAllPorts, ExposedPorts,
// Dns*, ExtraHosts, MacAddress -> CreateOptions::network and NetOptions.
Result<void> map_network(const json& b, const json& hc, container::CreateOptions& o) {
  auto& n = o.net;
  std::string mode = jstr(hc, "NetworkMode");
  json eps = json::object();
  if (b.contains("NetworkingConfig") && b["NetworkingConfig"].is_object() &&
      b["NetworkingConfig"].contains("EndpointsConfig") &&
      b["NetworkingConfig"]["EndpointsConfig"].is_object()) {
    eps = b["NetworkingConfig"]["EndpointsConfig"];
  }
  // One network entry "NAME[:alias=a,ip=...,ip6=...,mac=...]" from an endpoint config.
  auto entry = [](const std::string& name, const json& ep) {
    std::string opts;
    auto add = [&](const std::string& kv) { opts += (opts.empty() ? "" : ",") + kv; };
    if (ep.is_object()) {
      for (const auto& a : string_list(ep.value("Aliases", json::array()))) {
        add("alias=" + a);
      }
      if (ep.contains("IPAMConfig") && ep["IPAMConfig"].is_object()) {
        std::string ip = jstr(ep["IPAMConfig"], "IPv4Address");
        if (!ip.empty()) {
          add("ip=" + ip);
        }
        std::string ip6 = jstr(ep["IPAMConfig"], "IPv6Address");
        if (!ip6.empty()) {
          add("ip6=" + ip6);
        }
      }
      std::string mac = jstr(ep, "MacAddress");
      if (!mac.empty()) {
        add("mac=" + mac);
      }
    }
    return opts.empty() ? name : name + ":" + opts;
  };
  if (mode == "host" || mode == "none" || mode.rfind("container:", 0) == 0 ||
      mode == "slirp4netns" || mode == "pasta" || mode.rfind("ns:", 0) == 0) {
    o.network = mode;
  } else {
    // Bridge mode: the named network first, then the other endpoints. "default" and "bridge"
    // are the default network.
    std::vector<std::string> nets;
    std::string first = mode.empty() || mode == "default" ? "bridge" : mode;
    bool any_custom = first != "bridge";
    nets.push_back(entry(first, eps.contains(first)  ? eps[first]
                                : eps.contains(mode) ? eps[mode]
                                                     : json::object()));
    for (auto& [name, ep] : eps.items()) {
      if (name == first || name == mode || (name == "bridge" && first == "bridge")) {
        continue;
      }
      nets.push_back(entry(name, ep));
      any_custom = true;
    }
    if (any_custom || nets.front() != "bridge") {
      o.network = "bridge";
      n.networks = nets;
    }
  }
  if (hc.contains("PortBindings") && hc["PortBindings"].is_object()) {
    for (auto& [port, binds] : hc["PortBindings"].items()) {
      std::string ctr = port.find('/') == std::string::npos ? port + "/tcp" : port;
      if (!binds.is_array() || binds.empty()) {
        n.publish.push_back(ctr);
        continue;
      }
      for (const auto& bd : binds) {
        std::string ip = bd.is_object() ? jstr(bd, "HostIp") : "";
        std::string hp = bd.is_object() ? jstr(bd, "HostPort") : "";
        if (ip.empty() && hp.empty()) {
          n.publish.push_back(ctr);
        } else if (ip.empty()) {
          n.publish.push_back(hp + ":" + ctr);
        } else {
          n.publish.push_back(ip + ":" + hp + ":" + ctr);
        }
      }
    }
  }
  n.publish_all = jbool(hc, "PublishAllPorts", false);
  if (b.contains("ExposedPorts") && b["ExposedPorts"].is_object()) {
    for (auto& [port, v] : b["ExposedPorts"].items()) {
      n.expose.push_back(port);
    }
  }
  n.dns = string_list(hc.value("Dns", json::array()));
  n.dns_search = string_list(hc.value("DnsSearch", json::array()));
  n.dns_options = string_list(hc.value("DnsOptions", json::array()));
  n.add_hosts = string_list(hc.value("ExtraHosts", json::array()));
  n.mac = jstr(b, "MacAddress");
  return {};
}

// What a create body asks for besides CreateOptions.
struct CreateExtras {
  std::vector<std::string> make_mountpoints;  // bind sources with CreateMountpoint (API 1.42)
};

// Docker's ConsoleSize member of `o`: [height, width]. Absent, null or a zero in it: none.
Result<std::optional<winsize>> console_size(const json& o, const char* where) {
  if (!o.is_object() || !o.contains("ConsoleSize") || o["ConsoleSize"].is_null()) {
    return std::optional<winsize>();
  }
  const json& v = o["ConsoleSize"];
  auto dim = [&](size_t i) -> std::optional<unsigned short> {
    if (!v.is_array() || v.size() != 2 || !v[i].is_number_integer() || v[i].get<int64_t>() < 0 ||
        v[i].get<int64_t>() > 65535) {
      return std::nullopt;
    }
    return static_cast<unsigned short>(v[i].get<int64_t>());
  };
  auto h = dim(0);
  auto w = dim(1);
  if (!h || !w) {
    return fail(Errc::InvalidArgument, std::string(where) + ".ConsoleSize must be [height, width]" +
                                           ", two numbers from 0 to 65535; got " + v.dump());
  }
  if (*h == 0 || *w == 0) {
    return std::optional<winsize>();
  }
  return std::optional<winsize>(winsize{*h, *w, 0, 0});
}

// Binds, Mounts, Tmpfs, VolumesFrom, Config.Volumes -> MountOptions (as -v/--mount/--tmpfs).
// From API 1.42 a mount's options must match its type, and a bind's CreateMountpoint makes its
// source directory when missing.
Result<void> map_storage(const json& b, const json& hc, container::CreateOptions& o,
                         const Request& req, CreateExtras& extras) {
  auto& m = o.storage;
  // API 1.44: read-only binds (Binds and Mounts) are recursively read-only where the kernel can.
  m.recursive_read_only_binds = req.api_at_least("1.44");
  std::set<std::string> targets;
  for (const auto& v : string_list(hc.value("Binds", json::array()))) {
    BERTH_TRY(auto req, container::parse_volume_flag(v));
    targets.insert(req.destination);
    m.volumes.push_back(v);
  }
  if (hc.contains("Mounts") && hc["Mounts"].is_array()) {
    for (const auto& mt : hc["Mounts"]) {
      if (!mt.is_object()) {
        return fail(Errc::InvalidArgument, "HostConfig.Mounts holds a non-object");
      }
      std::string type = jstr(mt, "Type").empty() ? "volume" : jstr(mt, "Type");
      std::string spec = "type=" + type;
      std::string src = jstr(mt, "Source");
      std::string dst = jstr(mt, "Target");
      if (type == "npipe" || type == "cluster") {
        return fail(Errc::NotSupported, "mount type " + type + " is not supported on Linux");
      }
      if (req.api_at_least("1.42")) {
        for (const auto& [field, own] : {std::pair<const char*, const char*>{"BindOptions", "bind"},
                                         {"VolumeOptions", "volume"},
                                         {"TmpfsOptions", "tmpfs"}}) {
          if (type != own && mt.contains(field) && !mt[field].is_null()) {
            return fail(Errc::InvalidArgument, "invalid mount config for type \"" + type +
                                                   "\": field " + field + " must not be specified");
          }
        }
        if (type == "bind" && mt.contains("BindOptions") && mt["BindOptions"].is_object() &&
            jbool(mt["BindOptions"], "CreateMountpoint", false) && !src.empty() &&
            src.front() == '/') {
          extras.make_mountpoints.push_back(src);
        }
      }
      if (!src.empty()) {
        spec += ",src=" + src;
      }
      spec += ",dst=" + dst;
      if (jbool(mt, "ReadOnly", false)) {
        spec += ",ro=true";
      }
      if (mt.contains("BindOptions") && mt["BindOptions"].is_object()) {
        std::string prop = jstr(mt["BindOptions"], "Propagation");
        if (!prop.empty()) {
          spec += ",bind-propagation=" + prop;
        }
        if (jbool(mt["BindOptions"], "NonRecursive", false)) {
          spec += ",bind-nonrecursive=true";
        }
        // API 1.44: a read-only bind's submounts are read-only too unless ReadOnlyNonRecursive;
        // ReadOnlyForceRecursive makes it an error when they cannot be.
        const bool ro_nonrec = jbool(mt["BindOptions"], "ReadOnlyNonRecursive", false);
        const bool ro_force = jbool(mt["BindOptions"], "ReadOnlyForceRecursive", false);
        if (!req.api_at_least("1.44")) {
          if (ro_force) {
            return fail(Errc::InvalidArgument,
                        "BindOptions.ReadOnlyForceRecursive needs API v1.44 or newer");
          }
        } else if (ro_nonrec || ro_force) {
          const char* field = ro_nonrec ? "ReadOnlyNonRecursive" : "ReadOnlyForceRecursive";
          if (ro_nonrec && ro_force) {
            return fail(Errc::InvalidArgument,
                        "invalid mount config: cannot set both ReadOnlyNonRecursive and "
                        "ReadOnlyForceRecursive");
          }
          if (!jbool(mt, "ReadOnly", false)) {
            return fail(Errc::InvalidArgument, std::string("invalid mount config: must also set "
                                                           "ReadOnly when setting ") +
                                                   field);
          }
          if (!jbool(mt["BindOptions"], "NonRecursive", false)) {
            spec += ro_nonrec ? ",bind-recursive=writable" : ",bind-recursive=readonly";
          }
        }
      }
      if (mt.contains("VolumeOptions") && mt["VolumeOptions"].is_object()) {
        const auto& vo = mt["VolumeOptions"];
        if (jbool(vo, "NoCopy", false)) {
          spec += ",volume-nocopy=true";
        }
        // API 1.45: a subdirectory of the volume.
        if (const std::string sub = jstr(vo, "Subpath"); !sub.empty()) {
          if (!req.api_at_least("1.45")) {
            return fail(Errc::InvalidArgument, "VolumeOptions.Subpath needs API v1.45 or newer");
          }
          if (sub.find(',') != std::string::npos) {
            return fail(Errc::InvalidArgument,
                        "VolumeOptions.Subpath " + sub + ": a comma is not allowed in it");
          }
          spec += ",volume-subpath=" + sub;
        }
        if (vo.contains("DriverConfig") && vo["DriverConfig"].is_object() &&
            vo["DriverConfig"].contains("Options") && vo["DriverConfig"]["Options"].is_object()) {
          for (auto& [k, v] : vo["DriverConfig"]["Options"].items()) {
            if (v.is_string()) {
              spec += ",volume-opt=" + k + "=" + v.get<std::string>();
            }
          }
        }
      }
      if (mt.contains("TmpfsOptions") && mt["TmpfsOptions"].is_object()) {
        const auto& to = mt["TmpfsOptions"];
        if (num(to, "SizeBytes") > 0) {
          spec += ",tmpfs-size=" + std::to_string(num(to, "SizeBytes"));
        }
        if (num(to, "Mode") > 0) {
          char mode[16];
          std::snprintf(mode, sizeof(mode), "%o", static_cast<unsigned>(num(to, "Mode")));
          spec += std::string(",tmpfs-mode=") + mode;
        }
      }
      BERTH_TRY(auto req, container::parse_mount_flag(spec));
      targets.insert(req.destination);
      m.mounts.push_back(spec);
    }
  }
  if (hc.contains("Tmpfs") && hc["Tmpfs"].is_object()) {
    for (auto& [dst, opts] : hc["Tmpfs"].items()) {
      std::string spec = dst;
      if (opts.is_string() && !opts.get<std::string>().empty()) {
        spec += ":" + opts.get<std::string>();
      }
      BERTH_TRY(auto req, container::parse_tmpfs_flag(spec));
      targets.insert(req.destination);
      m.tmpfs.push_back(spec);
    }
  }
  m.volumes_from = string_list(hc.value("VolumesFrom", json::array()));
  // Config.Volumes: an anonymous volume for each path nothing else is mounted on.
  if (b.contains("Volumes") && b["Volumes"].is_object()) {
    for (auto& [dst, v] : b["Volumes"].items()) {
      if (targets.count(dst) == 0) {
        BERTH_TRYV(container::parse_volume_flag(dst));
        m.volumes.push_back(dst);
      }
    }
  }
  return {};
}

// Memory, cpus, pids, devices, security, namespaces, Healthcheck -> ResourceOptions.
Result<void> map_resources(const json& b, const json& hc, container::CreateOptions& o) {
  auto& r = o.resources;
  if (num(hc, "Memory") > 0) {
    r.memory = num(hc, "Memory");
  }
  if (num(hc, "MemorySwap") != 0) {
    r.memory_swap = num(hc, "MemorySwap");
  }
  if (num(hc, "MemoryReservation") > 0) {
    r.memory_reservation = num(hc, "MemoryReservation");
  }
  if (num(hc, "NanoCpus") > 0) {
    r.cpus = static_cast<double>(num(hc, "NanoCpus")) / 1e9;
  } else if (num(hc, "CpuQuota") > 0) {
    int64_t period = num(hc, "CpuPeriod") > 0 ? num(hc, "CpuPeriod") : 100000;
    r.cpus = static_cast<double>(num(hc, "CpuQuota")) / static_cast<double>(period);
  }
  if (num(hc, "CpuShares") > 0) {
    r.cpu_shares = static_cast<uint64_t>(num(hc, "CpuShares"));
  }
  r.cpuset_cpus = jstr(hc, "CpusetCpus");
  r.cpuset_mems = jstr(hc, "CpusetMems");
  if (hc.contains("PidsLimit") && hc["PidsLimit"].is_number() && num(hc, "PidsLimit") != 0) {
    r.pids_limit = num(hc, "PidsLimit");
  }
  if (num(hc, "BlkioWeight") > 0) {
    r.blkio_weight = static_cast<uint16_t>(num(hc, "BlkioWeight"));
  }
  if (num(hc, "ShmSize") > 0) {
    r.shm_size = num(hc, "ShmSize");
  }
  r.oom_kill_disable = hc.contains("OomKillDisable") && hc["OomKillDisable"].is_boolean() &&
                       hc["OomKillDisable"].get<bool>();
  if (hc.contains("Devices") && hc["Devices"].is_array()) {
    for (const auto& d : hc["Devices"]) {
      std::string host = jstr(d, "PathOnHost");
      if (host.empty()) {
        return fail(Errc::InvalidArgument, "HostConfig.Devices: PathOnHost is required");
      }
      std::string ctr = jstr(d, "PathInContainer");
      std::string perms = jstr(d, "CgroupPermissions");
      std::string spec = host;
      if (!ctr.empty() || !perms.empty()) {
        spec += ":" + (ctr.empty() ? host : ctr);
      }
      if (!perms.empty()) {
        spec += ":" + perms;
      }
      r.devices.push_back(spec);
    }
  }
  r.device_cgroup_rules = string_list(hc.value("DeviceCgroupRules", json::array()));
  r.group_add = string_list(hc.value("GroupAdd", json::array()));
  for (const auto& s : string_list(hc.value("SecurityOpt", json::array()))) {
    if (s == "no-new-privileges" || s == "no-new-privileges:true" ||
        s == "no-new-privileges=true") {
      o.no_new_privileges = true;
    }
    r.security_opt.push_back(s);
  }
  // Docker's namespace modes: "", "private", "host", "container:X"; IPC also "shareable" and
  // "none" (berth's private IPC namespace is shareable already).
  auto ns_mode = [&](const char* key) -> Result<std::string> {
    std::string v = hc.value(key, std::string());
    if (v.empty() || v == "private" || v == "shareable" || v == "host" ||
        v.rfind("container:", 0) == 0) {
      return v == "shareable" ? std::string("private") : v;
    }
    return fail(Errc::InvalidArgument, std::string("HostConfig.") + key + ": invalid mode " + v +
                                           " (host, private, container:NAME)");
  };
  BERTH_TRY(r.pid, ns_mode("PidMode"));
  BERTH_TRY(r.ipc, ns_mode("IpcMode"));
  BERTH_TRY(r.uts, ns_mode("UTSMode"));
  BERTH_TRY(r.cgroupns, ns_mode("CgroupnsMode"));
  std::string userns = jstr(hc, "UsernsMode");
  if (!userns.empty()) {
    r.userns = userns;
  }
  if (b.contains("Healthcheck") && b["Healthcheck"].is_object()) {
    const auto& h = b["Healthcheck"];
    auto test = string_list(h.value("Test", json::array()));
    if (!test.empty() && test[0] == "NONE") {
      r.no_healthcheck = true;
    } else if (!test.empty()) {
      r.health_cmd = test;
    }
    r.health_interval = num(h, "Interval");
    r.health_timeout = num(h, "Timeout");
    r.health_start_period = num(h, "StartPeriod");
    r.health_retries = static_cast<int>(num(h, "Retries"));
  }
  return {};
}

// Docker's create body -> CreateOptions: Config at the top level, HostConfig and
// NetworkingConfig mapped onto the same option structs as the CLI's flags.
Result<container::CreateOptions> create_options(const json& b, const std::string& name,
                                                const Request& req, CreateExtras& extras) {
  container::CreateOptions o;
  if (!b.is_object()) {
    return fail(Errc::InvalidArgument, "the container config must be a JSON object");
  }
  o.image = jstr(b, "Image");
  if (o.image.empty()) {
    return fail(Errc::InvalidArgument, "config.Image is required");
  }
  o.name = name;
  if (b.contains("Cmd")) {
    o.command = string_list(b["Cmd"]);
  }
  if (b.contains("Entrypoint") && !b["Entrypoint"].is_null()) {
    o.entrypoint = string_list(b["Entrypoint"]);
    if (o.entrypoint->size() == 1 && o.entrypoint->front().empty()) {
      o.entrypoint->clear();
    }
  }
  if (b.contains("Env")) {
    o.env = string_list(b["Env"]);
  }
  o.workdir = jstr(b, "WorkingDir");
  o.user = jstr(b, "User");
  o.hostname = jstr(b, "Hostname");
  o.tty = jbool(b, "Tty", false);
  o.interactive = jbool(b, "OpenStdin", false);
  if (b.contains("Labels") && b["Labels"].is_object()) {
    for (auto& [k, v] : b["Labels"].items()) {
      if (v.is_string()) {
        o.labels[k] = v.get<std::string>();
      }
    }
  }
  if (b.contains("StopSignal") && b["StopSignal"].is_string() &&
      !b["StopSignal"].get<std::string>().empty()) {
    auto s = parse_signal(b["StopSignal"].get<std::string>());
    if (!s) {
      return fail(Errc::InvalidArgument, "invalid StopSignal " + b["StopSignal"].dump());
    }
    o.stop_signal = *s;
  }
  if (b.contains("StopTimeout") && b["StopTimeout"].is_number_integer() &&
      b["StopTimeout"].get<int64_t>() >= 0) {
    o.stop_timeout = static_cast<uint32_t>(b["StopTimeout"].get<int64_t>());
  }
  o.create_command = {"docker-api", "create"};
  json hc = b.value("HostConfig", json::object());
  if (!hc.is_object()) {
    hc = json::object();
  }
  o.remove = jbool(hc, "AutoRemove", false);
  o.privileged = jbool(hc, "Privileged", false);
  o.read_only = jbool(hc, "ReadonlyRootfs", false);
  if (hc.contains("Init") && hc["Init"].is_boolean()) {
    o.init = hc["Init"].get<bool>();
  }
  if (hc.contains("CapAdd")) {
    o.cap_add = string_list(hc["CapAdd"]);
  }
  if (hc.contains("CapDrop")) {
    o.cap_drop = string_list(hc["CapDrop"]);
  }
  if (hc.contains("Sysctls") && hc["Sysctls"].is_object()) {
    for (auto& [k, v] : hc["Sysctls"].items()) {
      if (v.is_string()) {
        o.sysctls[k] = v.get<std::string>();
      }
    }
  }
  if (hc.contains("Ulimits") && hc["Ulimits"].is_array()) {
    for (const auto& u : hc["Ulimits"]) {
      o.ulimits.push_back(jstr(u, "Name") + "=" + std::to_string(u.value("Soft", int64_t{0})) +
                          ":" + std::to_string(u.value("Hard", int64_t{0})));
    }
  }
  if (hc.contains("OomScoreAdj") && hc["OomScoreAdj"].is_number_integer() &&
      hc["OomScoreAdj"].get<int>() != 0) {
    o.oom_score_adj = hc["OomScoreAdj"].get<int>();
  }
  if (hc.contains("RestartPolicy") && hc["RestartPolicy"].is_object()) {
    std::string n = jstr(hc["RestartPolicy"], "Name");
    if (!n.empty() && n != "no") {
      int max = hc["RestartPolicy"].value("MaximumRetryCount", 0);
      o.restart_policy = n + (max > 0 ? ":" + std::to_string(max) : "");
    }
  }
  if (hc.contains("LogConfig") && hc["LogConfig"].is_object()) {
    std::string t = jstr(hc["LogConfig"], "Type");
    if (!t.empty() && t != "json-file" && t != "local") {
      o.log_driver = t;
    }
    if (hc["LogConfig"].contains("Config") && hc["LogConfig"]["Config"].is_object()) {
      for (auto& [k, v] : hc["LogConfig"]["Config"].items()) {
        if (v.is_string()) {
          o.log_opts[k] = v.get<std::string>();
        }
      }
    }
  }
  // Before API 1.44 a container is created on one network; more endpoints are refused.
  if (!req.api_at_least("1.44") && b.contains("NetworkingConfig") &&
      b["NetworkingConfig"].is_object() &&
      b["NetworkingConfig"].value("EndpointsConfig", json::object()).is_object() &&
      b["NetworkingConfig"].value("EndpointsConfig", json::object()).size() > 1) {
    std::string names;
    for (auto& [k, v] : b["NetworkingConfig"]["EndpointsConfig"].items()) {
      names += (names.empty() ? "" : ", ") + k;
    }
    return fail(Errc::InvalidArgument,
                "Container cannot be created with multiple network endpoints: " + names + " (API " +
                    req.api_version +
                    "; from 1.44 on a create may name several, or connect the others after)");
  }
  BERTH_TRYV(map_network(b, hc, o));
  BERTH_TRYV(map_storage(b, hc, o, req, extras));
  if (req.api_at_least("1.42")) {
    // In the spec: the runtime sizes the pty before the process runs, at every start.
    BERTH_TRY(auto cs, console_size(hc, "HostConfig"));
    if (cs) {
      o.console_size = {cs->ws_row, cs->ws_col};
    }
  }
  // API 1.43: annotations for the runtime (the spec's annotations, as --annotation).
  if (req.api_at_least("1.43") && hc.contains("Annotations") && hc["Annotations"].is_object()) {
    for (auto& [k, v] : hc["Annotations"].items()) {
      if (!v.is_string()) {
        return fail(Errc::InvalidArgument,
                    "HostConfig.Annotations." + k + " must be a string; got " + v.dump());
      }
      o.annotations[k] = v.get<std::string>();
    }
  }
  BERTH_TRYV(map_resources(b, hc, o));
  // API 1.44: checks in the start period at StartInterval (older clients: not in the API).
  // Without one, Docker's default applies (5 s in the start period, whatever the client's
  // version: dockerd's), also to an image's HEALTHCHECK with a start period.
  o.resources.health_start_interval = container::ResourceOptions::kDockerStartInterval;
  o.docker_default_caps = true;  // Docker's default capabilities unless an admin set a list
  if (req.api_at_least("1.44") && b.contains("Healthcheck") && b["Healthcheck"].is_object()) {
    const int64_t si = num(b["Healthcheck"], "StartInterval");
    if (si < 0) {
      return fail(Errc::InvalidArgument, "StartInterval in Healthcheck cannot be negative");
    }
    if (si != 0 && si < 1'000'000) {
      return fail(Errc::InvalidArgument, "StartInterval in Healthcheck cannot be less than 1ms");
    }
    if (si > 0) {
      o.resources.health_start_interval = si;
    }
  }
  return o;
}

// HostConfig.NetworkMode as Docker shows it: "bridge" for the default network (Docker 26, API
// 1.45, stores "default" as the mode it aliases; before, clients saw "default"), else the mode
// ("host", "none", "container:ID") or the name of the first network.
std::string docker_network_mode(const container::ContainerRecord& rec) {
  const auto& o = rec.options;
  if (o.network.empty() || o.network == "default" || o.network == "private") {
    return "bridge";
  }
  if (o.network != "bridge") {
    return o.network;
  }
  if (o.net.networks.empty()) {
    return "bridge";
  }
  std::string first = o.net.networks.front();
  first = first.substr(0, first.find(':'));
  return first == "bridge" ? "bridge" : first;
}

// A tmpfs size as given to tmpfs-size (bytes, or with a k/m/g suffix); 0 when unreadable.
int64_t tmpfs_bytes(const std::string& text) {
  char* end = nullptr;
  errno = 0;
  long long n = std::strtoll(text.c_str(), &end, 10);
  if (errno != 0 || end == text.c_str() || n < 0) {
    return 0;
  }
  std::string unit(end);
  int64_t mult = unit.empty()                 ? 1
                 : unit == "k" || unit == "K" ? int64_t{1} << 10
                 : unit == "m" || unit == "M" ? int64_t{1} << 20
                 : unit == "g" || unit == "G" ? int64_t{1} << 30
                                              : 0;
  return n * mult;
}

// HostConfig.Mounts as Docker echoes the create's: the stored --mount specs (HostConfig.Mounts
// of an API create, --mount of the CLI) back in Docker's Mount shape, empty fields left out.
// BindOptions.CreateMountpoint acts at create only and is not kept.
json docker_host_mounts(const std::vector<std::string>& specs) {
  json out = json::array();
  for (const auto& spec : specs) {
    auto r = container::parse_mount_flag(spec);
    if (!r) {
      continue;  // refused at create: cannot be stored
    }
    json m = {{"Type", r->type}};
    if (!r->source.empty()) {
      m["Source"] = r->source;
    }
    m["Target"] = r->destination;
    if (r->read_only) {
      m["ReadOnly"] = true;
    }
    json bind = json::object();
    if (!r->propagation.empty()) {
      bind["Propagation"] = r->propagation;
    }
    if (!r->recursive) {
      bind["NonRecursive"] = true;
    }
    if (r->read_only_recursion == "writable") {
      bind["ReadOnlyNonRecursive"] = true;
    } else if (r->read_only_recursion == "readonly") {
      bind["ReadOnlyForceRecursive"] = true;
    }
    if (!bind.empty()) {
      m["BindOptions"] = std::move(bind);
    }
    json vol = json::object();
    if (r->copy == false) {
      vol["NoCopy"] = true;
    }
    if (!r->subpath.empty()) {
      vol["Subpath"] = r->subpath;
    }
    json driver_opts = json::object();
    for (const auto& kv : r->volume_options) {
      auto eq = kv.find('=');
      driver_opts[kv.substr(0, eq)] = eq == std::string::npos ? "" : kv.substr(eq + 1);
    }
    if (!driver_opts.empty()) {
      vol["DriverConfig"] = {{"Options", std::move(driver_opts)}};
    }
    if (!vol.empty()) {
      m["VolumeOptions"] = std::move(vol);
    }
    json tmpfs = json::object();
    for (const auto& o : r->tmpfs_options) {
      if (o.starts_with("size=")) {
        if (int64_t n = tmpfs_bytes(o.substr(5)); n > 0) {
          tmpfs["SizeBytes"] = n;
        }
      } else if (o.starts_with("mode=")) {
        char* end = nullptr;
        unsigned long mode = std::strtoul(o.c_str() + 5, &end, 8);
        if (end != o.c_str() + 5 && *end == '\0') {
          tmpfs["Mode"] = mode;
        }
      }
    }
    if (!tmpfs.empty()) {
      m["TmpfsOptions"] = std::move(tmpfs);
    }
    out.push_back(std::move(m));
  }
  return out;
}

// Docker's /containers/{id}/json from `podman inspect`-shaped data.
json docker_inspect(const json& p, const std::string& network_mode) {
  json state = p.value("State", json::object());
  json ds = {{"Status", docker_state(state.value("Status", ""))},
             {"Running", jbool(state, "Running", false)},
             {"Paused", jbool(state, "Paused", false)},
             {"Restarting", false},
             {"OOMKilled", jbool(state, "OOMKilled", false)},
             {"Dead", false},
             {"Pid", state.value("Pid", 0)},
             {"ExitCode", state.value("ExitCode", 0)},
             {"Error", state.value("Error", "")},
             {"StartedAt", state.value("StartedAt", "")},
             {"FinishedAt", state.value("FinishedAt", "")}};
  if (state.contains("Health") && state["Health"].is_object()) {
    ds["Health"] = state["Health"];
  }
  json cfg = p.value("Config", json::object());
  json hc = p.value("HostConfig", json::object());
  // Docker's types where Podman's differ: StopSignal is a name, Ulimits are objects.
  if (cfg.contains("StopSignal") && cfg["StopSignal"].is_number_integer()) {
    cfg["StopSignal"] = signal_name(cfg["StopSignal"].get<int>());
  }
  for (const char* k : {"Annotations", "CreateCommand", "Umask", "Timeout"}) {
    cfg.erase(k);
  }
  if (hc.contains("Ulimits") && hc["Ulimits"].is_array()) {
    json ul = json::array();
    for (const auto& u : hc["Ulimits"]) {
      if (!u.is_string()) {
        continue;
      }
      std::string s = u.get<std::string>();
      auto eq = s.find('=');
      auto colon = s.find(':', eq == std::string::npos ? 0 : eq);
      std::string soft =
          s.substr(eq + 1, colon == std::string::npos ? std::string::npos : colon - eq - 1);
      std::string hard = colon == std::string::npos ? soft : s.substr(colon + 1);
      ul.push_back({{"Name", s.substr(0, eq)},
                    {"Soft", std::atoll(soft.c_str())},
                    {"Hard", std::atoll(hard.c_str())}});
    }
    hc["Ulimits"] = ul;
  }
  if (hc.contains("LogConfig") && hc["LogConfig"].is_object()) {
    // k8s-file is berth's (and Podman's) json-file: clients (docker-py) read logs only then.
    if (hc["LogConfig"].value("Type", "") == "k8s-file") {
      hc["LogConfig"]["Type"] = "json-file";
    }
    hc["LogConfig"].erase("Path");
    hc["LogConfig"].erase("Size");
  }
  if (!network_mode.empty()) {
    hc["NetworkMode"] = network_mode;
  }
  json mounts = json::array();
  for (const auto& m : p.value("Mounts", json::array())) {
    if (!m.is_object()) {
      continue;
    }
    json d = {{"Type", m.value("Type", "")},
              {"Source", m.value("Source", "")},
              {"Destination", m.value("Destination", "")},
              {"Mode", m.value("Mode", "")},
              {"RW", jbool(m, "RW", true)},
              {"Propagation", m.value("Propagation", "")}};
    if (m.contains("Name")) {
      d["Name"] = m["Name"];
      d["Driver"] = m.value("Driver", "local");
    }
    mounts.push_back(d);
  }
  json out = {{"Id", p.value("Id", "")},
              {"Created", p.value("Created", "")},
              {"Path", p.value("Path", "")},
              {"Args", p.value("Args", json::array())},
              {"State", ds},
              {"Image", sha256_id(p.value("Image", ""))},
              {"ResolvConfPath", p.value("ResolvConfPath", "")},
              {"HostnamePath", p.value("HostnamePath", "")},
              {"HostsPath", p.value("HostsPath", "")},
              {"LogPath", ""},
              {"Name", "/" + p.value("Name", "")},
              {"RestartCount", p.value("RestartCount", 0)},
              {"Driver", p.value("Driver", "")},
              {"Platform", "linux"},
              {"MountLabel", ""},
              {"ProcessLabel", ""},
              {"AppArmorProfile", ""},
              {"ExecIDs", nullptr},
              {"HostConfig", hc},
              {"GraphDriver", p.value("GraphDriver", json::object())},
              {"Mounts", mounts},
              {"Config", cfg},
              {"NetworkSettings", p.value("NetworkSettings", json::object())}};
  if (out["Config"].is_object() && !out["Config"].contains("Image")) {
    out["Config"]["Image"] = p.value("ImageName", "");
  }
  if (out["NetworkSettings"].is_object() && !out["NetworkSettings"].contains("Networks")) {
    out["NetworkSettings"]["Networks"] = json::object();
  }
  for (const char* k : {"SizeRw", "SizeRootFs"}) {  // ?size=1 (`docker inspect -s`)
    if (p.contains(k)) {
      out[k] = p[k];
    }
  }
  return out;
}

// API 1.44: NetworkSettings.Networks.*.DNSNames, the names the container answers to on each
// network through the network's DNS responder: its name, its aliases, its short id and its
// hostname (as the responder's leases hold them); null on a network without DNS (the default
// network).
void add_dns_names(engine::Engine& eng, json& out) {
  if (!out["NetworkSettings"].is_object() || !out["NetworkSettings"]["Networks"].is_object()) {
    return;
  }
  const std::string short_id = out.value("Id", "").substr(0, 12);
  std::string name = out.value("Name", "");
  if (!name.empty() && name.front() == '/') {
    name.erase(0, 1);
  }
  std::string hostname;
  if (out["Config"].is_object() && out["Config"]["Hostname"].is_string()) {
    hostname = out["Config"]["Hostname"].get<std::string>();
  }
  auto store = network::NetworkStore::for_engine(eng);
  for (auto& [net, ep] : out["NetworkSettings"]["Networks"].items()) {
    if (!ep.is_object()) {
      continue;
    }
    auto n = store.get(net);
    if (!n || !n->dns_enabled) {
      ep["DNSNames"] = nullptr;
      continue;
    }
    std::vector<std::string> names = {name};
    for (const auto& a : string_list(ep.value("Aliases", json::array()))) {
      names.push_back(a);
    }
    names.push_back(short_id);
    names.push_back(hostname);
    std::vector<std::string> unique;
    for (auto& x : names) {
      if (!x.empty() && std::find(unique.begin(), unique.end(), x) == unique.end()) {
        unique.push_back(x);
      }
    }
    ep["DNSNames"] = unique;
  }
}

// API 1.45: NetworkSettings.Networks.*.Aliases are the aliases the create or connect gave, no
// longer with the container's short id (DNSNames has it).
void drop_short_id_aliases(json& out) {
  if (!out["NetworkSettings"].is_object() || !out["NetworkSettings"]["Networks"].is_object()) {
    return;
  }
  const std::string short_id = out.value("Id", "").substr(0, 12);
  for (auto& [net, ep] : out["NetworkSettings"]["Networks"].items()) {
    if (!ep.is_object() || !ep["Aliases"].is_array()) {
      continue;
    }
    json kept = json::array();
    for (const auto& a : ep["Aliases"]) {
      if (a != short_id) {
        kept.push_back(a);
      }
    }
    ep["Aliases"] = kept.empty() ? json(nullptr) : kept;
  }
}

json docker_row(const json& p) {
  std::string cmd;
  for (const auto& a : p.value("Command", json::array())) {
    if (a.is_string()) {
      cmd += (cmd.empty() ? "" : " ") + a.get<std::string>();
    }
  }
  json names = json::array();
  for (const auto& n : p.value("Names", json::array())) {
    names.push_back("/" + n.get<std::string>());
  }
  json labels = p.contains("Labels") && p["Labels"].is_object() ? p["Labels"] : json::object();
  // Ports: one entry per port of a range; PublicPort only when bound to the host.
  json ports = json::array();
  if (p.contains("Ports") && p["Ports"].is_array()) {
    for (const auto& pm : p["Ports"]) {
      int range = std::max(1, pm.value("range", 1));
      int cport = pm.value("container_port", 0);
      int hport = pm.value("host_port", 0);
      std::string ip = pm.value("host_ip", "");
      for (int i = 0; i < range; ++i) {
        json e = {{"PrivatePort", cport + i}, {"Type", pm.value("protocol", "tcp")}};
        if (hport > 0) {
          e["IP"] = ip.empty() ? "0.0.0.0" : ip;
          e["PublicPort"] = hport + i;
        }
        ports.push_back(e);
      }
    }
  }
  json networks = json::object();
  for (const auto& n : p.value("Networks", json::array())) {
    if (n.is_string()) {
      networks[n.get<std::string>()] = {{"NetworkID", n}};
    }
  }
  json mounts = json::array();
  for (const auto& m : p.value("Mounts", json::array())) {
    if (m.is_string()) {
      mounts.push_back({{"Destination", m}});
    }
  }
  std::string mode = jstr(p, "NetworkMode");
  json row = {
      {"Id", p.value("Id", "")},
      {"Names", names},
      {"Image", p.value("Image", "")},
      {"ImageID", sha256_id(p.value("ImageID", ""))},
      {"Command", cmd},
      {"Created", p.value("Created", int64_t{0})},
      {"Ports", ports},
      {"Labels", labels},
      {"State", docker_state(p.value("State", ""))},
      {"Status", p.value("Status", "")},
      {"HostConfig",
       {{"NetworkMode", mode.empty() || mode == "default" || mode == "private" ? "bridge" : mode}}},
      {"NetworkSettings", {{"Networks", networks}}},
      {"Mounts", mounts}};
  if (p.contains("Size") && p["Size"].is_object()) {
    // ?size=1: the container's own layer, and with the image's the whole root filesystem.
    row["SizeRw"] = p["Size"].value("rwSize", int64_t{0});
    row["SizeRootFs"] = p["Size"].value("rootFsSize", int64_t{0});
  }
  return row;
}

// A child berth process whose stdio serves a hijacked connection.
struct Child {
  pid_t pid = -1;
  UniqueFd out;  // read ends when piped
  UniqueFd err;
};

// Spawns argv with stdin from in_fd (-1: /dev/null); stdout/stderr to `direct` (the socket, for
// a tty) or to pipes.
Result<Child> spawn_child(const std::vector<std::string>& argv, int in_fd, int direct) {
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  Child c;
  UniqueFd out_w;
  UniqueFd err_w;
  if (in_fd >= 0) {
    posix_spawn_file_actions_adddup2(&fa, in_fd, 0);
  } else {
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  }
  if (direct >= 0) {
    posix_spawn_file_actions_adddup2(&fa, direct, 1);
    posix_spawn_file_actions_adddup2(&fa, direct, 2);
  } else {
    int p[2];
    if (::pipe2(p, O_CLOEXEC) != 0) {
      posix_spawn_file_actions_destroy(&fa);
      return fail_errno("pipe", "exec stdout");
    }
    c.out.reset(p[0]);
    out_w.reset(p[1]);
    if (::pipe2(p, O_CLOEXEC) != 0) {
      posix_spawn_file_actions_destroy(&fa);
      return fail_errno("pipe", "exec stderr");
    }
    c.err.reset(p[0]);
    err_w.reset(p[1]);
    posix_spawn_file_actions_adddup2(&fa, out_w.get(), 1);
    posix_spawn_file_actions_adddup2(&fa, err_w.get(), 2);
  }
  posix_spawn_file_actions_addclosefrom_np(&fa, 3);
  std::vector<char*> args;
  for (const auto& a : argv) {
    args.push_back(const_cast<char*>(a.c_str()));
  }
  args.push_back(nullptr);
  int rc = ::posix_spawn(&c.pid, argv[0].c_str(), &fa, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) {
    errno = rc;
    return fail_errno("spawn", argv[0]);
  }
  return c;
}

// Reads `out` (stream 0) and `err` (stream 1) until both reach EOF, handing each chunk to
// `sink`; stops early when `sink` returns false.
void pump_pair(int out, int err, const std::function<bool(int, std::string_view)>& sink) {
  std::array<int, 2> fds{out, err};
  char buf[32768];
  while (fds[0] >= 0 || fds[1] >= 0) {
    pollfd p[2];
    int n = 0;
    int which[2];
    for (int i = 0; i < 2; ++i) {
      if (fds[i] >= 0) {
        p[n] = {fds[i], POLLIN, 0};
        which[n++] = i;
      }
    }
    if (::poll(p, static_cast<nfds_t>(n), -1) < 0) {
      if (errno == EINTR) {
        continue;
      }
      return;
    }
    for (int k = 0; k < n; ++k) {
      if ((p[k].revents & (POLLIN | POLLHUP | POLLERR)) == 0) {
        continue;
      }
      ssize_t r = ::read(p[k].fd, buf, sizeof(buf));
      if (r < 0 && errno == EINTR) {
        continue;
      }
      if (r <= 0) {
        fds[which[k]] = -1;
        continue;
      }
      if (!sink(which[k], std::string_view(buf, static_cast<size_t>(r)))) {
        return;
      }
    }
  }
}

// Copies the child's output to the connection (framed unless raw) until it exits. A client that
// goes away ends the child; its output is still drained.
int pump_child(Child& c, int sock, bool multiplex) {
  bool client_gone = false;
  pump_pair(c.out.get(), c.err.get(), [&](int stream, std::string_view data) {
    if (client_gone) {
      return true;
    }
    bool ok = multiplex ? write_frame(sock, static_cast<uint8_t>(stream + 1), data)
                        : send_all(sock, data);
    if (!ok) {
      client_gone = true;
      ::kill(c.pid, SIGKILL);
    }
    return true;
  });
  return -1;
}

int wait_child(pid_t pid) {
  int st = 0;
  while (::waitpid(pid, &st, 0) < 0) {
    if (errno != EINTR) {
      return -1;
    }
  }
  if (WIFEXITED(st)) {
    return WEXITSTATUS(st);
  }
  if (WIFSIGNALED(st)) {
    return 128 + WTERMSIG(st);
  }
  return -1;
}

// Runs a berth CLI child (exec) on a hijacked connection; returns its exit code. `spawned` runs
// once the child runs, before its output is relayed.
int serve_child(const std::vector<std::string>& argv, RawConnection& conn, bool with_stdin,
                bool tty, const std::function<void(pid_t)>& spawned = {}) {
  if (!conn.leftover.empty()) {
    spdlog::debug("API: {} bytes sent before the hijack are dropped", conn.leftover.size());
  }
  auto child = spawn_child(argv, with_stdin ? conn.fd : -1, tty ? conn.fd : -1);
  if (!child) {
    std::string msg = "Error: " + child.error().message() + "\n";
    if (tty) {
      send_all(conn.fd, msg);
    } else {
      write_frame(conn.fd, 2, msg);
    }
    return 126;
  }
  if (spawned) {
    spawned(child->pid);
  }
  if (!tty) {
    pump_child(*child, conn.fd, true);
  }
  return wait_child(child->pid);
}

// `berth attach` in the service itself (a CLI child per attach cost `docker run` a process start):
// a connection to the monitor's attach socket, which takes stdin as messages and sends
// [type, data...] messages: 2 stdout, 3 stderr, 4 the exit code. Signals and detach keys, which
// container::attach() handles for a terminal, have no place on a hijacked connection.
Result<UniqueFd> attach_monitor(engine::Engine& eng, const ContainerRef& c) {
  if (c.status != "running" && c.status != "created") {
    return fail(Errc::Conflict,
                "you can only attach to running containers: container " + c.id + " is " + c.status);
  }
  const std::string dir = container::run_dir(eng.runroot(), c.id);
  UniqueFd dfd(::open(dir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!dfd) {
    return fail_errno("open", dir);
  }
  UniqueFd sock(::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
  if (!sock) {
    return fail_errno("socket", "attach to container " + c.id);
  }
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  // Through the directory's fd: a runroot path can be longer than sun_path.
  const std::string path = "/proc/self/fd/" + std::to_string(dfd.get()) + "/attach";
  std::strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
  if (::connect(sock.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    return fail_errno("connect to the attach socket of container " + c.id + " in", dir);
  }
  events::Event e;
  e.type = std::string(events::type::kContainer);
  e.status = "attach";
  e.id = c.id;
  e.name = c.name;
  if (auto r = events::EventLog::from_config(eng.config()).emit(e); !r) {
    spdlog::debug("API: attach event of {}: {}", c.id, r.error().message());
  }
  return sock;
}

// Relays the monitor's output onto the hijacked connection (framed without a tty) and, with
// stdin, the client's input to the monitor, until the container ends or the client goes.
void relay_attach(int monitor, RawConnection& conn, bool tty, bool with_stdin, bool want_out,
                  bool want_err) {
  if (with_stdin && !conn.leftover.empty()) {
    (void)::send(monitor, conn.leftover.data(), conn.leftover.size(), MSG_NOSIGNAL);
  }
  bool client_open = true;
  char buf[32769];
  for (;;) {
    // Without stdin only a client that has gone (HUP) counts: the docker CLI shuts its side
    // for writing as soon as it has no input to send, and reads on.
    pollfd p[2] = {{monitor, POLLIN, 0}, {conn.fd, static_cast<short>(with_stdin ? POLLIN : 0), 0}};
    if (::poll(p, client_open ? 2 : 1, -1) < 0) {
      if (errno == EINTR) {
        continue;
      }
      return;
    }
    if ((p[0].revents & (POLLIN | POLLHUP | POLLERR)) != 0) {
      ssize_t n = ::recv(monitor, buf, sizeof(buf), 0);
      if (n < 0 && errno == EINTR) {
        continue;
      }
      if (n <= 0) {
        return;  // the monitor has gone: the container ended
      }
      const auto type = static_cast<uint8_t>(buf[0]);
      std::string_view data(buf + 1, static_cast<size_t>(n - 1));
      if (type == 4) {
        return;  // the exit code: the output is complete
      }
      if ((type == 2 ? want_out : type == 3 && want_err) &&
          !(tty ? send_all(conn.fd, data) : write_frame(conn.fd, type == 2 ? 1 : 2, data))) {
        return;  // the client has gone
      }
    }
    if (client_open && p[1].revents != 0) {
      ssize_t n = with_stdin ? ::recv(conn.fd, buf, sizeof(buf), 0) : 0;
      if (n < 0 && errno == EINTR) {
        continue;
      }
      if (n > 0) {
        (void)::send(monitor, buf, static_cast<size_t>(n), MSG_NOSIGNAL);
      } else if (with_stdin) {
        client_open = false;  // the end of stdin; the output may go on
        ::shutdown(monitor, SHUT_WR);
      } else {
        return;  // the client hung up
      }
    }
  }
}

struct ExecSession {
  std::string id;
  std::string container_id;
  std::vector<std::string> cmd;
  bool tty = false;
  bool attach_stdin = false;
  bool attach_stdout = true;
  bool attach_stderr = true;
  bool privileged = false;
  std::string user;
  std::string workdir;
  std::vector<std::string> env;
  std::optional<winsize> console_size;  // ConsoleSize of create or start (API 1.42)
  bool running = false;
  bool started = false;
  std::optional<int> exit_code;
  pid_t pid = 0;
  // The terminal of a tty session (a duplicate of the pty master its `berth exec -t` child
  // relays), set while it runs; `size` is the last size asked for, applied once it is there.
  UniqueFd terminal;
  bool terminal_searched = false;  // found, or the child ended without one
  std::optional<winsize> size;
};

class ExecTable {
 public:
  std::shared_ptr<ExecSession> add(ExecSession s) {
    std::lock_guard<std::mutex> l(mu_);
    auto p = std::make_shared<ExecSession>(std::move(s));
    sessions_[p->id] = p;
    return p;
  }
  std::shared_ptr<ExecSession> get(const std::string& id) {
    std::lock_guard<std::mutex> l(mu_);
    auto it = sessions_.find(id);
    return it == sessions_.end() ? nullptr : it->second;
  }
  std::mutex& mu() { return mu_; }
  // Signalled when a session's terminal search ends.
  std::condition_variable& terminal_cv() { return terminal_cv_; }

 private:
  std::mutex mu_;
  std::condition_variable terminal_cv_;
  std::map<std::string, std::shared_ptr<ExecSession>> sessions_;
};

// Sets the size of a session's terminal; the caller holds the table's lock.
Result<void> apply_size(ExecSession& s) {
  if (!s.terminal || !s.size) {
    return {};
  }
  if (::ioctl(s.terminal.get(), TIOCSWINSZ, &*s.size) != 0) {
    return fail_errno("resize the terminal of exec session", s.id);
  }
  return {};
}

// A tty session's child got its pty master from the runtime just after the exec started: finds
// it (a few milliseconds; bounded by the child's end) so that resizes reach it.
void find_terminal(ExecTable& table, ExecSession& s, pid_t child) {
  UniqueFd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, child, 0)));
  std::optional<UniqueFd> found;
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (pidfd && std::chrono::steady_clock::now() < give_up) {
    auto t = container::exec_terminal(pidfd.get(), child);
    if (t) {
      found = std::move(*t);
      break;
    }
    if (t.error().code() != Errc::NotFound) {
      spdlog::warn("API: exec session {}: {}", s.id, t.error().message());
      break;
    }
    pollfd p{pidfd.get(), POLLIN, 0};
    if (::poll(&p, 1, 2) > 0) {
      break;  // the child ended
    }
  }
  std::lock_guard<std::mutex> l(table.mu());
  if (found) {
    s.terminal = std::move(*found);
    if (auto r = apply_size(s); !r) {
      spdlog::warn("API: {}", r.error().message());
    }
  }
  s.terminal_searched = true;
  table.terminal_cv().notify_all();
}

std::vector<std::string> exec_argv(const ServiceContext& ctx, const ExecSession& s, bool detach) {
  auto argv = berth_argv(ctx);
  argv.insert(argv.end(), {"container", "exec"});
  if (s.attach_stdin) {
    argv.push_back("-i");
  }
  if (s.tty) {
    argv.push_back("-t");
  }
  if (detach) {
    argv.push_back("-d");
  }
  if (s.privileged) {
    argv.push_back("--privileged");
  }
  for (const auto& e : s.env) {
    argv.push_back("--env=" + e);
  }
  if (!s.user.empty()) {
    argv.push_back("--user=" + s.user);
  }
  if (!s.workdir.empty()) {
    argv.push_back("--workdir=" + s.workdir);
  }
  // The size the runtime gives the pty before the process runs: ConsoleSize, else a resize that
  // came before the start.
  auto size = s.console_size ? s.console_size : s.size;
  if (s.tty && size) {
    argv.push_back("--console-size=" + std::to_string(size->ws_row) + "x" +
                   std::to_string(size->ws_col));
  }
  argv.push_back(s.container_id);
  argv.insert(argv.end(), s.cmd.begin(), s.cmd.end());
  return argv;
}

// Sends the container's log (framed as Docker's streams 1 and 2, raw with a tty), as `lo` asks,
// onto the connection; streams the client did not ask for are read and dropped so the producer
// never blocks on them. A client that leaves ends the producer's writes (EPIPE).
void stream_logs(const std::shared_ptr<ServiceContext>& ctx, const std::string& id,
                 std::shared_ptr<container::OpenedLogs> opened, container::LogsOptions lo, bool tty,
                 bool want_out, bool want_err, RawConnection& conn) {
  int po[2];
  int pe[2];
  if (::pipe2(po, O_CLOEXEC) != 0) {
    return;
  }
  if (::pipe2(pe, O_CLOEXEC) != 0) {
    ::close(po[0]);
    ::close(po[1]);
    return;
  }
  Child c;
  c.out.reset(po[0]);
  c.err.reset(pe[0]);
  lo.out_fd = po[1];
  lo.err_fd = pe[1];
  std::thread producer([ctx, id, opened, lo]() {
    auto eng = ctx->open_engine();
    auto res = eng ? container::write_logs(**eng, *opened, lo)
                   : Result<void>(fail(std::move(eng).error()));
    if (!res) {
      spdlog::warn("API: the log of container {}: {}", id, res.error().message());
    }
    ::close(lo.out_fd);
    ::close(lo.err_fd);
  });
  pump_pair(c.out.get(), c.err.get(), [&](int stream, std::string_view d) {
    if (!(stream == 0 ? want_out : want_err)) {
      return true;
    }
    return tty ? send_all(conn.fd, d) : write_frame(conn.fd, static_cast<uint8_t>(stream + 1), d);
  });
  c.out.reset();
  c.err.reset();
  producer.join();
}

}  // namespace

void add_container_routes(Router& r, const std::shared_ptr<ServiceContext>& ctx) {
  auto list = [ctx](Request& req, bool libpod) -> Response {
    auto filters = docker_filters(req);
    if (!filters) {
      return error_response(filters.error());
    }
    API_ENGINE(eng);
    container::ListOptions lo;
    lo.all = req.q_bool("all");
    lo.size = req.q_bool("size");
    if (auto l = req.q("limit"); l && !l->empty()) {
      lo.last = std::atoi(l->c_str());
      if (lo.last > 0) {
        lo.all = true;
      }
    }
    lo.filters = *filters;
    auto rows = container::list(eng, lo);
    if (!rows) {
      return error_response(rows.error());
    }
    if (libpod) {
      return json_response(200, *rows);
    }
    json out = json::array();
    for (const auto& p : *rows) {
      out.push_back(docker_row(p));
    }
    return json_response(200, out);
  };
  r.add("GET", "/containers/json", [list](Request& req) { return list(req, false); });
  r.add("GET", "/libpod/containers/json", [list](Request& req) { return list(req, true); });

  r.add("POST", "/containers/create", [ctx](Request& req) -> Response {
    auto body = req.json_body();
    if (!body) {
      return error_response(body.error());
    }
    CreateExtras extras;
    auto opts = create_options(*body, req.q_or("name", ""), req, extras);
    if (!opts) {
      return error_response(opts.error());
    }
    for (const auto& dir : extras.make_mountpoints) {
      if (auto made = util::make_dirs(dir, 0755); !made) {
        return error_response(
            status_for(made.error()),
            "create the bind mount source (CreateMountpoint): " + made.error().message());
      }
    }
    API_ENGINE(eng);
    std::string image = opts->image;
    auto res = container::create(eng, std::move(*opts));
    if (!res) {
      if (res.error().code() == Errc::NotFound &&
          res.error().message().find("image") != std::string::npos) {
        return error_response(404, "No such image: " + image);
      }
      // A 404 from create makes the docker CLI pull the image and try again: anything else that
      // is missing (a command, a network, a mount source) is the request's fault. The CLI turns
      // "no such file or directory" into exit code 127, as with Docker's start.
      if (res.error().code() == Errc::NotFound) {
        return error_response(400, res.error().message());
      }
      return error_response(res.error());
    }
    return json_response(201, {{"Id", res->id}, {"Warnings", res->warnings}});
  });

  auto inspect = [ctx](Request& req, bool libpod) -> Response {
    API_ENGINE(eng);
    auto j = container::inspect(eng, req.params["id"], req.q_bool("size"));
    if (!j) {
      return object_error(j.error(), ObjectKind::Container, req.params["id"]);
    }
    if (libpod) {
      return json_response(200, *j);
    }
    // Docker's NetworkMode: "default", or the first network of bridge mode by name.
    std::string mode;
    std::map<std::string, std::string> annotations;
    json host_mounts = json::array();
    if (auto db = container::ContainerDb::open(eng.graphroot(), true)) {
      if (auto rec = (*db)->lookup(j->value("Id", req.params["id"]))) {
        mode = docker_network_mode(*rec);
        annotations = rec->options.annotations;
        host_mounts = docker_host_mounts(rec->options.storage.mounts);
      }
    }
    json out = docker_inspect(*j, mode);
    // HostConfig.Mounts as the create gave them (Docker leaves the field out when none).
    if (!host_mounts.empty() && out["HostConfig"].is_object()) {
      out["HostConfig"]["Mounts"] = std::move(host_mounts);
    }
    // API 1.43: the annotations the create asked for (the spec's hold berth's own too).
    if (req.api_at_least("1.43") && !annotations.empty() && out["HostConfig"].is_object()) {
      out["HostConfig"]["Annotations"] = annotations;
    }
    if (req.api_at_least("1.44")) {
      add_dns_names(eng, out);
    }
    if (req.api_at_least("1.45")) {
      drop_short_id_aliases(out);
    }
    return json_response(200, out);
  };
  r.add("GET", "/containers/{id}/json", [inspect](Request& req) { return inspect(req, false); });
  r.add("GET", "/libpod/containers/{id}/json",
        [inspect](Request& req) { return inspect(req, true); });

  // The container's Docker state word, or the error to answer.
  auto state_of = [](engine::Engine& eng, const std::string& id) -> Result<std::string> {
    BERTH_TRY(auto j, container::inspect(eng, id, false));
    return docker_state(j["State"].value("Status", ""));
  };

  r.add("POST", "/containers/{id}/start", [ctx, state_of](Request& req) -> Response {
    API_ENGINE(eng);
    const auto& id = req.params["id"];
    auto s = state_of(eng, id);
    if (!s) {
      return object_error(s.error(), ObjectKind::Container, id);
    }
    if (*s == "running") {
      return empty_response(304);
    }
    if (auto res = container::start(eng, id); !res) {
      return object_error(res.error(), ObjectKind::Container, id);
    }
    return empty_response(204);
  });
  // API 1.42: stop and restart take `signal`, instead of the container's stop signal.
  auto stop_signal = [](const Request& req) -> std::expected<std::optional<int>, Response> {
    auto v = req.q("signal");
    if (!req.api_at_least("1.42") || !v || v->empty()) {
      return std::optional<int>();
    }
    auto sig = parse_signal(*v);
    if (!sig || *sig <= 0 || *sig > 64) {
      return std::unexpected(error_response(400, "invalid signal: " + *v));
    }
    return std::optional<int>(*sig);
  };
  r.add("POST", "/containers/{id}/stop", [ctx, state_of, stop_signal](Request& req) -> Response {
    auto sig = stop_signal(req);
    if (!sig) {
      return sig.error();
    }
    API_ENGINE(eng);
    const auto& id = req.params["id"];
    auto s = state_of(eng, id);
    if (!s) {
      return object_error(s.error(), ObjectKind::Container, id);
    }
    if (*s != "running" && *s != "paused") {
      return empty_response(304);
    }
    std::optional<uint32_t> t;
    if (auto v = req.q("t"); v && !v->empty()) {
      t = static_cast<uint32_t>(std::max(0, std::atoi(v->c_str())));
    }
    if (auto res = container::stop(eng, id, t, *sig); !res) {
      return object_error(res.error(), ObjectKind::Container, id);
    }
    return empty_response(204);
  });
  r.add("POST", "/containers/{id}/restart", [ctx, stop_signal](Request& req) -> Response {
    auto sig = stop_signal(req);
    if (!sig) {
      return sig.error();
    }
    API_ENGINE(eng);
    std::optional<uint32_t> t;
    if (auto v = req.q("t"); v && !v->empty()) {
      t = static_cast<uint32_t>(std::max(0, std::atoi(v->c_str())));
    }
    if (auto res = container::restart(eng, req.params["id"], t, *sig); !res) {
      return object_error(res.error(), ObjectKind::Container, req.params["id"]);
    }
    return empty_response(204);
  });
  r.add("POST", "/containers/{id}/kill", [ctx, state_of](Request& req) -> Response {
    auto sig = parse_signal(req.q_or("signal", "SIGKILL"));
    if (!sig) {
      return error_response(400, "invalid signal: " + req.q_or("signal", ""));
    }
    API_ENGINE(eng);
    const auto& id = req.params["id"];
    auto s = state_of(eng, id);
    if (!s) {
      return object_error(s.error(), ObjectKind::Container, id);
    }
    if (*s != "running" && *s != "paused") {
      return error_response(
          409, "Cannot kill container: " + id + ": container " + id + " is not running");
    }
    if (auto res = container::kill(eng, id, *sig); !res) {
      return object_error(res.error(), ObjectKind::Container, id);
    }
    return empty_response(204);
  });
  r.add("POST", "/containers/{id}/rename", [ctx](Request& req) -> Response {
    auto name = req.q_or("name", "");
    if (name.empty()) {
      return error_response(400, "the new name must be given: name=NEW");
    }
    API_ENGINE(eng);
    if (auto res = container::rename(eng, req.params["id"], name); !res) {
      return object_error(res.error(), ObjectKind::Container, req.params["id"]);
    }
    return empty_response(204);
  });
  r.add("GET", "/containers/{id}/top", [ctx](Request& req) -> Response {
    // As dockerd: ps with ps_args split on spaces, -ef when none is given (top_ps's default).
    std::vector<std::string> ps_args;
    const std::string words = req.q_or("ps_args", "");
    for (size_t i = 0; i < words.size();) {
      size_t sp = words.find(' ', i);
      if (sp == std::string::npos) {
        sp = words.size();
      }
      if (sp > i) {
        ps_args.push_back(words.substr(i, sp - i));
      }
      i = sp + 1;
    }
    API_ENGINE(eng);
    auto rows = container::top_ps(eng, req.params["id"], ps_args);
    if (!rows) {
      return object_error(rows.error(), ObjectKind::Container, req.params["id"]);
    }
    json procs = json::array();
    for (size_t i = 1; i < rows->size(); ++i) {
      procs.push_back((*rows)[i]);
    }
    return json_response(200, {{"Titles", (*rows)[0]}, {"Processes", procs}});
  });
  r.add("DELETE", "/containers/{id}", [ctx](Request& req) -> Response {
    API_ENGINE(eng);
    container::RemoveOptions ro;
    ro.force = req.q_bool("force");
    ro.volumes = req.q_bool("v");
    if (auto res = container::remove(eng, req.params["id"], ro); !res) {
      return object_error(res.error(), ObjectKind::Container, req.params["id"]);
    }
    return empty_response(204);
  });
  r.add("POST", "/containers/prune", [ctx](Request&) -> Response {
    API_ENGINE(eng);
    auto ids = container::prune(eng);
    if (!ids) {
      return error_response(ids.error());
    }
    return json_response(200, {{"ContainersDeleted", ids->empty() ? json(nullptr) : json(*ids)},
                               {"SpaceReclaimed", 0}});
  });

  // wait answers when the container gets there, on a thread of its own: it may take hours.
  r.add("POST", "/containers/{id}/wait", [ctx](Request& req) -> Response {
    auto found = lookup_container(*ctx, req.params["id"]);
    if (!found) {
      return found.error();
    }
    const std::string id = found->id;
    std::string cond = req.q_or("condition", "not-running");
    if (cond != "not-running" && cond != "next-exit" && cond != "removed") {
      return error_response(
          400, "invalid condition: \"" + cond + "\" (not-running, next-exit, removed)");
    }
    Response resp;
    resp.stream = [ctx, id, cond](RawConnection& conn) {
      auto eng = ctx->open_engine();
      json out;
      if (!eng) {
        out = {{"StatusCode", -1}, {"Error", {{"Message", eng.error().message()}}}};
      } else {
        auto code = container::wait(**eng, id, {"stopped"});
        // read_state() reports a container whose pid is gone as exited with code -1 until the
        // monitor has written the exit file; give the monitor a moment to do so.
        for (int i = 0; code && *code < 0 && i < 400; ++i) {
          ::usleep(5 * 1000);
          auto j = container::inspect(**eng, id, false);
          if (!j) {
            break;
          }
          code = (*j)["State"].value("ExitCode", -1);
        }
        if (!code) {
          // A container removed while we waited (--rm) has ended.
          out = {{"StatusCode", code.error().code() == Errc::NotFound ? 0 : -1},
                 {"Error", code.error().code() == Errc::NotFound
                               ? json(nullptr)
                               : json{{"Message", code.error().message()}}}};
        } else {
          out = {{"StatusCode", *code}, {"Error", nullptr}};
        }
        if (cond == "removed" && code) {
          // The monitor's cleanup removes an AutoRemove container shortly after it exits (a few
          // milliseconds: `docker run --rm` waits for this, so poll finely).
          for (int i = 0; i < 6000; ++i) {
            auto e = container::exists(**eng, id);
            if (!e || !*e) {
              break;
            }
            ::usleep(5 * 1000);
          }
        }
      }
      send_all(conn.fd, out.dump() + "\n");
    };
    return resp;
  });

  r.add("GET", "/containers/{id}/logs", [ctx](Request& req) -> Response {
    auto found = lookup_container(*ctx, req.params["id"]);
    if (!found) {
      return found.error();
    }
    const std::string id = found->id;
    const bool tty = found->tty;
    const bool want_out = req.q_bool("stdout");
    const bool want_err = req.q_bool("stderr");
    if (!want_out && !want_err) {
      return error_response(400, "you must choose at least one stream (stdout=1, stderr=1)");
    }
    container::LogsOptions lo;
    lo.follow = req.q_bool("follow");
    lo.timestamps = req.q_bool("timestamps");
    if (auto t = req.q("tail"); t && *t != "all" && !t->empty()) {
      lo.tail = std::atoll(t->c_str());
    }
    if (auto s = req.q("since"); s && !s->empty() && *s != "0") {
      lo.since = container::parse_log_time_arg(*s);
    }
    if (auto u = req.q("until"); u && !u->empty() && *u != "0") {
      lo.until = container::parse_log_time_arg(*u);
    }
    // Opened before the answer goes out: a client may remove the container before it reads.
    std::shared_ptr<container::OpenedLogs> opened;
    {
      API_ENGINE(eng);
      auto o = container::open_logs(eng, {id});
      if (!o) {
        return object_error(o.error(), ObjectKind::Container, id);
      }
      opened = std::move(*o);
    }
    Response resp;
    resp.content_type =
        tty ? "application/vnd.docker.raw-stream" : "application/vnd.docker.multiplexed-stream";
    resp.stream = [ctx, id, opened, lo, tty, want_out, want_err](RawConnection& conn) {
      stream_logs(ctx, id, opened, lo, tty, want_out, want_err, conn);
    };
    return resp;
  });

  r.add("POST", "/containers/{id}/attach", [ctx](Request& req) -> Response {
    API_ENGINE(eng);
    auto found = find_container(eng, req.params["id"]);
    if (!found) {
      return object_error(found.error(), ObjectKind::Container, req.params["id"]);
    }
    const bool stream = req.q_bool("stream", true);
    const bool logs = req.q_bool("logs");
    const bool with_stdin = req.q_bool("stdin");
    // A client that names neither stream gets both (Docker would send nothing at all).
    const bool named = req.q("stdout").has_value() || req.q("stderr").has_value();
    const bool want_out = named ? req.q_bool("stdout") : true;
    const bool want_err = named ? req.q_bool("stderr") : true;
    const bool tty = found->tty;
    std::shared_ptr<UniqueFd> monitor;
    if (stream) {
      // `docker start -a` attaches before it starts: a container that has exited (or has no
      // monitor yet) gets its monitor now, waiting for the start, as the CLI's `start -a` does,
      // so that the attach sees its output from the first byte.
      if (found->status != "running" && found->status != "paused" &&
          (found->status != "created" || found->monitor_pid == 0)) {
        if (auto res = container::init(eng, found->id); !res) {
          return object_error(res.error(), ObjectKind::Container, req.params["id"]);
        }
        auto again = find_container(eng, found->id);
        if (!again) {
          return object_error(again.error(), ObjectKind::Container, req.params["id"]);
        }
        found = std::move(again);
      }
      // Attached before the answer goes out, so a start right after it loses no output.
      auto sock = attach_monitor(eng, *found);
      if (!sock) {
        return error_response(sock.error());
      }
      monitor = std::make_shared<UniqueFd>(std::move(*sock));
    }
    // The log replayed is what was written before the attach: the stream carries the rest.
    container::LogsOptions earlier;
    earlier.until = std::chrono::duration_cast<std::chrono::nanoseconds>(
                        std::chrono::system_clock::now().time_since_epoch())
                        .count();
    std::shared_ptr<container::OpenedLogs> opened;
    if (logs) {
      auto o = container::open_logs(eng, {found->id});
      if (!o) {
        return object_error(o.error(), ObjectKind::Container, req.params["id"]);
      }
      opened = std::move(*o);
    }
    Response resp;
    resp.hijack = true;
    resp.content_type =
        tty ? "application/vnd.docker.raw-stream" : "application/vnd.docker.multiplexed-stream";
    resp.stream = [ctx, id = found->id, monitor, tty, with_stdin, opened, want_out, want_err,
                   earlier](RawConnection& conn) {
      if (opened) {
        // What the container has written so far, then (with stream=1) what it writes next.
        // docker-py reads the hijacked stream from the socket under http.client's buffered
        // reader, so bytes that arrive together with the headers are lost to it; the log is
        // all there at once (a live stream's first bytes come later), hence the pause.
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
        stream_logs(ctx, id, opened, earlier, tty, want_out, want_err, conn);
      }
      if (monitor) {
        relay_attach(monitor->get(), conn, tty, with_stdin, want_out, want_err);
      }
    };
    return resp;
  });

  auto execs = std::make_shared<ExecTable>();
  r.add("POST", "/containers/{id}/exec", [ctx, execs](Request& req) -> Response {
    auto body = req.json_body();
    if (!body) {
      return error_response(body.error());
    }
    if (!body->is_object()) {
      return error_response(400, "the exec config must be a JSON object");
    }
    ExecSession s;
    s.cmd = string_list(body->value("Cmd", json::array()));
    if (s.cmd.empty()) {
      return error_response(400, "No exec command specified");
    }
    API_ENGINE(eng);
    auto j = container::inspect(eng, req.params["id"], false);
    if (!j) {
      return object_error(j.error(), ObjectKind::Container, req.params["id"]);
    }
    if (docker_state((*j)["State"].value("Status", "")) != "running") {
      return error_response(409, "Container " + req.params["id"] + " is not running");
    }
    s.id = util::random_id();
    s.container_id = j->value("Id", req.params["id"]);
    s.tty = jbool(*body, "Tty", false);
    s.attach_stdin = jbool(*body, "AttachStdin", false);
    s.attach_stdout = jbool(*body, "AttachStdout", true);
    s.attach_stderr = jbool(*body, "AttachStderr", true);
    s.privileged = jbool(*body, "Privileged", false);
    s.user = jstr(*body, "User");
    s.workdir = jstr(*body, "WorkingDir");
    s.env = string_list(body->value("Env", json::array()));
    if (req.api_at_least("1.42")) {
      auto cs = console_size(*body, "the exec config");
      if (!cs) {
        return error_response(cs.error());
      }
      s.console_size = *cs;
    }
    auto p = execs->add(std::move(s));
    return json_response(201, {{"Id", p->id}});
  });
  r.add("POST", "/exec/{id}/start", [ctx, execs](Request& req) -> Response {
    auto s = execs->get(req.params["id"]);
    if (!s) {
      return error_response(404, "No such exec instance: " + req.params["id"]);
    }
    auto body = req.json_body();
    if (!body) {
      return error_response(body.error());
    }
    std::optional<winsize> start_size;
    if (req.api_at_least("1.42")) {
      auto cs = console_size(*body, "the exec start config");
      if (!cs) {
        return error_response(cs.error());
      }
      start_size = *cs;
    }
    {
      std::lock_guard<std::mutex> l(execs->mu());
      if (s->started) {
        return error_response(409, "exec session " + s->id + " has already been started");
      }
      s->started = true;
      s->running = true;
      if (start_size) {
        s->console_size = start_size;
      }
    }
    const bool detach = body->is_object() && jbool(*body, "Detach", false);
    if (detach) {
      std::vector<std::string> argv;
      {
        std::lock_guard<std::mutex> l(execs->mu());  // a resize may set s->size meanwhile
        argv = exec_argv(*ctx, *s, true);
      }
      auto child = spawn_child(argv, -1, -1);
      if (!child) {
        return error_response(child.error());
      }
      child->out.reset();
      child->err.reset();
      int code = wait_child(child->pid);
      std::lock_guard<std::mutex> l(execs->mu());
      s->running = false;
      execs->terminal_cv().notify_all();
      if (code != 0) {
        s->exit_code = code;
        return error_response(500, "exec session " + s->id + " failed to start (exit code " +
                                       std::to_string(code) + ")");
      }
      return json_response(200, json::object());
    }
    Response resp;
    resp.hijack = true;
    resp.content_type =
        s->tty ? "application/vnd.docker.raw-stream" : "application/vnd.docker.multiplexed-stream";
    resp.stream = [ctx, execs, s](RawConnection& conn) {
      std::function<void(pid_t)> spawned;
      if (s->tty) {
        spawned = [&](pid_t child) { find_terminal(*execs, *s, child); };
      }
      std::vector<std::string> argv;
      {
        std::lock_guard<std::mutex> l(execs->mu());  // a resize may set s->size meanwhile
        argv = exec_argv(*ctx, *s, false);
      }
      int code = serve_child(argv, conn, s->attach_stdin, s->tty, spawned);
      std::lock_guard<std::mutex> l(execs->mu());
      s->running = false;
      s->exit_code = code;
      s->terminal.reset();
      s->terminal_searched = true;
      execs->terminal_cv().notify_all();
    };
    return resp;
  });
  r.add("GET", "/exec/{id}/json", [execs](Request& req) -> Response {
    auto s = execs->get(req.params["id"]);
    if (!s) {
      return error_response(404, "No such exec instance: " + req.params["id"]);
    }
    std::lock_guard<std::mutex> l(execs->mu());
    json args(std::vector<std::string>(s->cmd.begin() + 1, s->cmd.end()));
    return json_response(200, {{"ID", s->id},
                               {"ContainerID", s->container_id},
                               {"Running", s->running},
                               {"ExitCode", s->exit_code ? json(*s->exit_code) : json(nullptr)},
                               {"OpenStdin", s->attach_stdin},
                               {"OpenStdout", s->attach_stdout},
                               {"OpenStderr", s->attach_stderr},
                               {"CanRemove", !s->running && s->started},
                               {"DetachKeys", ""},
                               {"Pid", s->pid},
                               {"ProcessConfig",
                                {{"tty", s->tty},
                                 {"entrypoint", s->cmd.front()},
                                 {"arguments", args},
                                 {"privileged", s->privileged},
                                 {"user", s->user}}}});
  });

  // TIOCSWINSZ on the session's pty. Like Docker, a resize of a session that is starting waits
  // (briefly) for its terminal, so the size holds once the answer is sent; one before the start
  // is kept and applied when the terminal is there. A session without a tty has nothing to size.
  r.add("POST", "/exec/{id}/resize", [execs](Request& req) -> Response {
    auto s = execs->get(req.params["id"]);
    if (!s) {
      return error_response(404, "No such exec instance: " + req.params["id"]);
    }
    int h = std::atoi(req.q_or("h", "0").c_str());
    int w = std::atoi(req.q_or("w", "0").c_str());
    if (h <= 0 || w <= 0 || h > 65535 || w > 65535) {
      return error_response(400, "resize needs h and w between 1 and 65535");
    }
    std::unique_lock<std::mutex> l(execs->mu());
    if (!s->tty) {
      return json_response(200, json::object());
    }
    s->size = winsize{static_cast<unsigned short>(h), static_cast<unsigned short>(w), 0, 0};
    if (s->running) {
      execs->terminal_cv().wait_for(l, std::chrono::seconds(10),
                                    [&] { return s->terminal_searched || !s->running; });
    }
    if (auto res = apply_size(*s); !res) {
      return error_response(res.error());
    }
    return json_response(200, json::object());
  });
  add_container_ops_routes(r, ctx);
}

}  // namespace berth::api
