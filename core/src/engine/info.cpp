#include "berth/engine/info.hpp"

#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <sys/sysinfo.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <fstream>
#include <linux/magic.h>
#include <set>
#include <sstream>

#include "berth/util/fs.hpp"

namespace berth::engine {

namespace fs = std::filesystem;

namespace {

std::string machine_arch() {
  struct utsname u {};
  ::uname(&u);
  std::string arch = u.machine;
  if (arch == "x86_64") {
    return "amd64";
  }
  if (arch == "aarch64") {
    return "arm64";
  }
  return arch;
}

std::map<std::string, std::string> os_release() {
  std::map<std::string, std::string> out;
  std::ifstream f("/etc/os-release");
  std::string line;
  while (std::getline(f, line)) {
    auto eq = line.find('=');
    if (eq == std::string::npos) {
      continue;
    }
    auto v = line.substr(eq + 1);
    if (v.size() >= 2 && (v.front() == '"' || v.front() == '\'')) {
      v = v.substr(1, v.size() - 2);
    }
    out[line.substr(0, eq)] = v;
  }
  return out;
}

bool seccomp_available() {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind("Seccomp:", 0) == 0) {
      return true;
    }
  }
  return false;
}

nlohmann::json id_mappings(bool rootless) {
  if (!rootless) {
    return nullptr;
  }
  auto read_map = [](const char* file) {
    nlohmann::json arr = nlohmann::json::array();
    std::ifstream f(file);
    uint64_t inside = 0, outside = 0, size = 0;
    while (f >> inside >> outside >> size) {
      arr.push_back({{"container_id", inside}, {"host_id", outside}, {"size", size}});
    }
    return arr;
  };
  return {{"uidmap", read_map("/proc/self/uid_map")}, {"gidmap", read_map("/proc/self/gid_map")}};
}

}  // namespace

CgroupInfo detect_cgroups(const config::Config& cfg) {
  CgroupInfo info;
  struct statfs st {};
  if (::statfs("/sys/fs/cgroup", &st) == 0 && st.f_type == CGROUP2_SUPER_MAGIC) {
    info.version = 2;
    auto ctrl = util::read_file("/sys/fs/cgroup/cgroup.controllers");
    if (ctrl) {
      std::istringstream ss(*ctrl);
      std::string c;
      while (ss >> c) {
        info.controllers.push_back(c);
      }
    }
  } else {
    info.version = 1;
    std::set<std::string> ctrls;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator("/sys/fs/cgroup", ec)) {
      auto name = e.path().filename().string();
      if (name == "unified") {
        info.hybrid = true;
        continue;
      }
      if (e.is_symlink(ec) || name == "systemd") {
        continue;
      }
      std::istringstream ss(name);
      std::string part;
      while (std::getline(ss, part, ',')) {
        ctrls.insert(part);
      }
    }
    info.controllers.assign(ctrls.begin(), ctrls.end());
  }
  info.manager = cfg.containers.engine.cgroup_manager.empty() ? "cgroupfs"
                                                              : cfg.containers.engine.cgroup_manager;
  return info;
}

nlohmann::json version_info() {
  return {{"APIVersion", "1.41"},
          {"Version", BERTH_VERSION},
          {"CompilerVersion", "GCC " __VERSION__},
          {"OsArch", "linux/" + machine_arch()},
          {"Os", "linux"}};
}

nlohmann::json info(Engine& engine) {
  const auto& cfg = engine.config();
  struct utsname u {};
  ::uname(&u);
  struct sysinfo si {};
  ::sysinfo(&si);
  auto osr = os_release();
  auto cg = detect_cgroups(cfg);
  char hostname[256] = {};
  ::gethostname(hostname, sizeof(hostname) - 1);

  nlohmann::json host = {
      {"arch", machine_arch()},
      {"cgroupControllers", cg.controllers},
      {"cgroupManager", cg.manager},
      {"cgroupVersion", cg.version == 2 ? "v2" : "v1"},
      {"cpus", ::sysconf(_SC_NPROCESSORS_ONLN)},
      {"distribution",
       {{"distribution", osr["ID"]},
        {"version", osr["VERSION_ID"]},
        {"codename", osr["VERSION_CODENAME"]}}},
      {"eventLogger", cfg.containers.engine.events_logger},
      {"hostname", hostname},
      {"idMappings", id_mappings(engine.rootless())},
      {"kernel", u.release},
      {"logDriver", cfg.containers.containers.log_driver},
      {"memFree", static_cast<uint64_t>(si.freeram) * si.mem_unit},
      {"memTotal", static_cast<uint64_t>(si.totalram) * si.mem_unit},
      {"networkBackend", cfg.containers.network.network_backend.empty()
                             ? "bridge"
                             : cfg.containers.network.network_backend},
      {"os", "linux"},
      {"security",
       {{"rootless", engine.rootless()},
        {"seccompEnabled", seccomp_available()},
        {"seccompProfilePath", cfg.containers.containers.seccomp_profile},
        {"capabilities", [&] {
           std::string caps;
           for (const auto& c : cfg.containers.containers.default_capabilities) {
             caps += (caps.empty() ? "CAP_" : ",CAP_") + c;
           }
           return caps;
         }()},
        {"apparmorEnabled", false},
        {"selinuxEnabled", false}}},
      {"swapFree", static_cast<uint64_t>(si.freeswap) * si.mem_unit},
      {"swapTotal", static_cast<uint64_t>(si.totalswap) * si.mem_unit},
      {"uptime", std::to_string(si.uptime / 3600) + "h " + std::to_string(si.uptime / 60 % 60) +
                     "m " + std::to_string(si.uptime % 60) + "s"},
  };

  // Store: which driver, and why.
  nlohmann::json store = {
      {"configFile", cfg.storage.file},
      {"graphRoot", engine.graphroot()},
      {"graphRootSource", cfg.storage.source_of("storage.graphroot")},
      {"runRoot", engine.runroot()},
      {"runRootSource", cfg.storage.source_of("storage.runroot")},
      {"volumePath", cfg.containers.engine.volume_path},
  };
  nlohmann::json graph_options = nlohmann::json::object();
  auto choice = engine.choose_storage();
  if (choice) {
    store["graphDriverName"] = choice->name;
    store["graphDriverReason"] = choice->reason;
    for (const auto& [k, v] : cfg.storage.options_for_driver(choice->name)) {
      graph_options[choice->name + "." + k] = v;
    }
    nlohmann::json status = nlohmann::json::object();
    auto driver = engine.storage();
    if (driver) {
      for (const auto& [k, v] : (*driver)->status()) {
        status[k] = v;
      }
    } else {
      status["Error"] = driver.error().message();
    }
    store["graphStatus"] = status;
  } else {
    store["graphDriverName"] = "";
    store["graphDriverReason"] = choice.error().message();
    store["graphStatus"] = nlohmann::json::object();
  }
  store["graphOptions"] = graph_options;
  struct statvfs vfs {};
  if (::statvfs(engine.graphroot().c_str(), &vfs) == 0) {
    store["graphRootAllocated"] = static_cast<uint64_t>(vfs.f_blocks) * vfs.f_frsize;
    store["graphRootUsed"] = static_cast<uint64_t>(vfs.f_blocks - vfs.f_bfree) * vfs.f_frsize;
  }

  // Registries, as podman info: "search" plus one entry per [[registry]].
  nlohmann::json regs = nlohmann::json::object();
  regs["search"] = cfg.registries.unqualified_search_registries;
  auto rj = config::to_json(cfg.registries);
  if (rj.contains("registries") && rj["registries"].is_array()) {
    for (const auto& r : rj["registries"]) {
      regs[r.value("prefix", r.value("location", ""))] = r;
    }
  }

  // Plugins: Podman's keys plus berth's driver kinds.
  auto& reg = engine.plugins();
  nlohmann::json plugins = {{"log", {"k8s-file", "json-file", "none", "passthrough"}},
                            {"volume", {"local"}}};
  auto kinds = std::vector<std::pair<std::string, std::string>>{
      {"storage", sdk::StorageDriver::kKind},
      {"network", BERTH_KIND_network},
      {"runtime", BERTH_KIND_runtime},
      {"transport", BERTH_KIND_transport},
      {"verifier", BERTH_KIND_verifier}};
  for (const auto& [label, kind] : kinds) {
    nlohmann::json names = nlohmann::json::array();
    for (const auto* p : reg.of_kind(kind)) {
      names.push_back(p->name);
    }
    plugins[label] = names;
  }
  nlohmann::json refused = nlohmann::json::array();
  for (const auto& r : reg.refusals()) {
    refused.push_back({{"file", r.file.string()}, {"reason", r.reason}});
  }
  plugins["refused"] = refused;
  nlohmann::json search = nlohmann::json::array();
  for (const auto& d : reg.search_path()) {
    search.push_back(d.string());
  }
  plugins["searchPath"] = search;

  return {{"host", host},
          {"store", store},
          {"registries", regs},
          {"plugins", plugins},
          {"version", version_info()}};
}

}  // namespace berth::engine
