#include "oci_config.hpp"

#include <sched.h>
#include <sys/mount.h>

#include <algorithm>
#include <map>

namespace berth::runtime {
namespace {

using nlohmann::json;

struct FlagName {
  const char* name;
  bool clear;
  unsigned long flag;
};

constexpr FlagName kFlags[] = {
    {"ro", false, MS_RDONLY},
    {"rw", true, MS_RDONLY},
    {"nosuid", false, MS_NOSUID},
    {"suid", true, MS_NOSUID},
    {"nodev", false, MS_NODEV},
    {"dev", true, MS_NODEV},
    {"noexec", false, MS_NOEXEC},
    {"exec", true, MS_NOEXEC},
    {"sync", false, MS_SYNCHRONOUS},
    {"async", true, MS_SYNCHRONOUS},
    {"dirsync", false, MS_DIRSYNC},
    {"remount", false, MS_REMOUNT},
    {"mand", false, MS_MANDLOCK},
    {"nomand", true, MS_MANDLOCK},
    {"noatime", false, MS_NOATIME},
    {"atime", true, MS_NOATIME},
    {"nodiratime", false, MS_NODIRATIME},
    {"diratime", true, MS_NODIRATIME},
    {"relatime", false, MS_RELATIME},
    {"norelatime", true, MS_RELATIME},
    {"strictatime", false, MS_STRICTATIME},
    {"nostrictatime", true, MS_STRICTATIME},
    {"bind", false, MS_BIND},
    {"rbind", false, MS_BIND | MS_REC},
};

constexpr std::pair<const char*, unsigned long> kPropagation[] = {
    {"private", MS_PRIVATE},       {"rprivate", MS_PRIVATE | MS_REC},
    {"shared", MS_SHARED},         {"rshared", MS_SHARED | MS_REC},
    {"slave", MS_SLAVE},           {"rslave", MS_SLAVE | MS_REC},
    {"unbindable", MS_UNBINDABLE}, {"runbindable", MS_UNBINDABLE | MS_REC},
};

struct NsName {
  const char* type;
  int flag;
};
constexpr NsName kNamespaces[] = {
    {"pid", CLONE_NEWPID},       {"network", CLONE_NEWNET}, {"mount", CLONE_NEWNS},
    {"ipc", CLONE_NEWIPC},       {"uts", CLONE_NEWUTS},     {"user", CLONE_NEWUSER},
    {"cgroup", CLONE_NEWCGROUP},
};

constexpr std::pair<const char*, int> kRlimitNames[] = {
    {"RLIMIT_AS", RLIMIT_AS},
    {"RLIMIT_CORE", RLIMIT_CORE},
    {"RLIMIT_CPU", RLIMIT_CPU},
    {"RLIMIT_DATA", RLIMIT_DATA},
    {"RLIMIT_FSIZE", RLIMIT_FSIZE},
    {"RLIMIT_LOCKS", RLIMIT_LOCKS},
    {"RLIMIT_MEMLOCK", RLIMIT_MEMLOCK},
    {"RLIMIT_MSGQUEUE", RLIMIT_MSGQUEUE},
    {"RLIMIT_NICE", RLIMIT_NICE},
    {"RLIMIT_NOFILE", RLIMIT_NOFILE},
    {"RLIMIT_NPROC", RLIMIT_NPROC},
    {"RLIMIT_RSS", RLIMIT_RSS},
    {"RLIMIT_RTPRIO", RLIMIT_RTPRIO},
    {"RLIMIT_RTTIME", RLIMIT_RTTIME},
    {"RLIMIT_SIGPENDING", RLIMIT_SIGPENDING},
    {"RLIMIT_STACK", RLIMIT_STACK},
};

int last_cap() {
  static int last = [] {
    FILE* f = std::fopen("/proc/sys/kernel/cap_last_cap", "re");
    int v = CAP_LAST_CAP;
    if (f) {
      if (std::fscanf(f, "%d", &v) != 1) {
        v = CAP_LAST_CAP;
      }
      std::fclose(f);
    }
    return v;
  }();
  return last;
}

Result<std::vector<cap_value_t>> cap_list(const json& caps, const char* set) {
  std::vector<cap_value_t> out;
  if (!caps.contains(set) || caps[set].is_null()) {
    return out;
  }
  for (const auto& c : caps[set]) {
    const std::string name = c.get<std::string>();
    cap_value_t v;
    if (cap_from_name(name.c_str(), &v) != 0) {
      return fail(Errc::InvalidArgument,
                  "process.capabilities." + std::string(set) + ": unknown capability " + name);
    }
    // Capabilities this kernel does not know are skipped, as runc does.
    if (v <= last_cap()) {
      out.push_back(v);
    }
  }
  return out;
}

Result<CapabilitySpec> parse_caps(const json& caps) {
  CapabilitySpec out;
  out.present = true;
  BERTH_TRY(out.bounding, cap_list(caps, "bounding"));
  BERTH_TRY(out.effective, cap_list(caps, "effective"));
  BERTH_TRY(out.permitted, cap_list(caps, "permitted"));
  BERTH_TRY(out.inheritable, cap_list(caps, "inheritable"));
  BERTH_TRY(out.ambient, cap_list(caps, "ambient"));
  return out;
}

std::vector<IdMapping> id_mappings(const json& linux, const char* key) {
  std::vector<IdMapping> out;
  for (const auto& m : linux.value(key, json::array())) {
    out.push_back({m.at("containerID").get<uint32_t>(), m.at("hostID").get<uint32_t>(),
                   m.at("size").get<uint32_t>()});
  }
  return out;
}

}  // namespace

bool ContainerSpec::has_namespace(int flag) const {
  return find_namespace(flag) != nullptr;
}

const NamespaceSpec* ContainerSpec::find_namespace(int flag) const {
  for (const auto& ns : namespaces) {
    if (ns.flag == flag) {
      return &ns;
    }
  }
  return nullptr;
}

void parse_mount_options(const std::vector<std::string>& options, MountSpec& out) {
  for (const auto& o : options) {
    bool known = false;
    for (const auto& f : kFlags) {
      if (o == f.name) {
        known = true;
        if (f.clear) {
          out.flags &= ~f.flag;
          out.clear_flags |= f.flag;
        } else {
          out.flags |= f.flag;
        }
      }
    }
    for (const auto& [name, flag] : kPropagation) {
      if (o == name) {
        known = true;
        out.propagation = flag;
      }
    }
    if (o == "tmpcopyup") {
      known = true;
      out.tmpcopyup = true;
    }
    if (o == "rro") {
      known = true;
      out.recursive_readonly = true;
      out.flags |= MS_RDONLY;
    }
    if (!known) {
      if (!out.data.empty()) {
        out.data += ',';
      }
      out.data += o;
    }
  }
  out.bind = (out.flags & MS_BIND) != 0 || out.type == "bind";
  if (out.type == "bind" && (out.flags & MS_BIND) == 0) {
    out.flags |= MS_BIND;
  }
}

Result<ProcessSpec> parse_process_spec(const nlohmann::json& p) {
  try {
    ProcessSpec out;
    out.terminal = p.value("terminal", false);
    if (p.contains("consoleSize") && p["consoleSize"].is_object()) {
      const json& cs = p["consoleSize"];
      out.console_height = static_cast<unsigned short>(std::min(cs.value("height", 0u), 65535u));
      out.console_width = static_cast<unsigned short>(std::min(cs.value("width", 0u), 65535u));
    }
    if (p.contains("user")) {
      const json& u = p["user"];
      out.uid = u.value("uid", 0u);
      out.gid = u.value("gid", 0u);
      if (u.contains("additionalGids") && u["additionalGids"].is_array()) {
        out.additional_gids = u["additionalGids"].get<std::vector<gid_t>>();
      }
    }
    out.args = p.at("args").get<std::vector<std::string>>();
    if (out.args.empty()) {
      return fail(Errc::InvalidArgument, "process.args is empty: nothing to run");
    }
    if (p.contains("env") && p["env"].is_array()) {
      out.env = p["env"].get<std::vector<std::string>>();
    }
    out.cwd = p.value("cwd", "/");
    if (out.cwd.empty() || out.cwd.front() != '/') {
      return fail(Errc::InvalidArgument, "process.cwd '" + out.cwd + "' must be absolute");
    }
    if (p.contains("capabilities") && p["capabilities"].is_object()) {
      BERTH_TRY(out.caps, parse_caps(p["capabilities"]));
    }
    out.no_new_privileges = p.value("noNewPrivileges", false);
    for (const auto& r : p.value("rlimits", json::array())) {
      RlimitSpec rl;
      rl.name = r.at("type").get<std::string>();
      bool found = false;
      for (const auto& [name, res] : kRlimitNames) {
        if (rl.name == name) {
          rl.resource = res;
          found = true;
        }
      }
      if (!found) {
        return fail(Errc::InvalidArgument, "process.rlimits: unknown type " + rl.name);
      }
      rl.soft = r.at("soft").get<uint64_t>();
      rl.hard = r.at("hard").get<uint64_t>();
      out.rlimits.push_back(rl);
    }
    if (p.contains("oomScoreAdj") && p["oomScoreAdj"].is_number_integer()) {
      out.oom_score_adj = p["oomScoreAdj"].get<int>();
    }
    return out;
  } catch (const json::exception& e) {
    return fail(Errc::InvalidArgument, std::string("process: ") + e.what());
  }
}

Result<ContainerSpec> parse_container_spec(const nlohmann::json& config,
                                           const std::string& bundle) {
  try {
    ContainerSpec out;
    std::string root = config.at("root").at("path").get<std::string>();
    out.rootfs = root.front() == '/' ? root : bundle + "/" + root;
    out.root_readonly = config["root"].value("readonly", false);
    BERTH_TRY(out.process, parse_process_spec(config.at("process")));
    out.hostname = config.value("hostname", "");
    out.domainname = config.value("domainname", "");
    for (const auto& m : config.value("mounts", json::array())) {
      MountSpec ms;
      ms.destination = m.at("destination").get<std::string>();
      if (ms.destination.empty() || ms.destination.front() != '/') {
        return fail(Errc::InvalidArgument,
                    "mount destination '" + ms.destination + "' must be absolute");
      }
      ms.type = m.value("type", "");
      ms.source = m.value("source", "");
      parse_mount_options(m.value("options", std::vector<std::string>{}), ms);
      out.mounts.push_back(std::move(ms));
    }
    const json linux = config.value("linux", json::object());
    for (const auto& n : linux.value("namespaces", json::array())) {
      const std::string type = n.at("type").get<std::string>();
      NamespaceSpec ns;
      for (const auto& k : kNamespaces) {
        if (type == k.type) {
          ns.flag = k.flag;
        }
      }
      if (ns.flag == 0) {
        return fail(Errc::InvalidArgument, "linux.namespaces: unknown type " + type);
      }
      ns.type = type;
      ns.path = n.value("path", "");
      out.namespaces.push_back(std::move(ns));
    }
    out.uid_mappings = id_mappings(linux, "uidMappings");
    out.gid_mappings = id_mappings(linux, "gidMappings");
    for (const auto& d : linux.value("devices", json::array())) {
      DeviceSpec ds;
      ds.path = d.at("path").get<std::string>();
      ds.type = d.at("type").get<std::string>().at(0);
      ds.major = d.value("major", 0u);
      ds.minor = d.value("minor", 0u);
      ds.mode = d.value("fileMode", 0666u);
      ds.uid = d.value("uid", 0u);
      ds.gid = d.value("gid", 0u);
      out.devices.push_back(std::move(ds));
    }
    out.masked_paths = linux.value("maskedPaths", std::vector<std::string>{});
    out.readonly_paths = linux.value("readonlyPaths", std::vector<std::string>{});
    const json sysctls =
        linux.value("sysctl", json::object());  // named: items() of a temporary dangles
    for (const auto& [k, v] : sysctls.items()) {
      out.sysctls.emplace_back(k, v.get<std::string>());
    }
    out.cgroups_path = linux.value("cgroupsPath", "");
    if (linux.contains("resources") && linux["resources"].is_object()) {
      out.resources = linux["resources"];
    }
    if (linux.contains("seccomp") && linux["seccomp"].is_object()) {
      out.seccomp = linux["seccomp"];
    }
    const std::string prop = linux.value("rootfsPropagation", "");
    for (const auto& [name, flag] : kPropagation) {
      if (prop == name) {
        out.rootfs_propagation = flag;
      }
    }
    return out;
  } catch (const json::exception& e) {
    return fail(Errc::InvalidArgument, std::string("config.json: ") + e.what());
  }
}

}  // namespace berth::runtime
