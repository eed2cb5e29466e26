#include "cgroups.hpp"

#include <fcntl.h>
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <thread>

#include "berth/util/fs.hpp"

namespace berth::runtime {
namespace {

using nlohmann::json;
constexpr const char* kCgroupRoot = "/sys/fs/cgroup";

Result<void> write_value(const std::string& file, const std::string& value) {
  int fd = ::open(file.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) {
    return fail_errno("open cgroup file", file);
  }
  UniqueFd guard(fd);
  if (::write(fd, value.data(), value.size()) < 0) {
    return fail_errno("write '" + value + "' to", file);
  }
  return {};
}

std::string read_value(const std::string& file) {
  std::ifstream in(file);
  std::string s((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) {
    s.pop_back();
  }
  return s;
}

// The v1 hierarchies mounted on this host: mount points of fstype "cgroup".
std::vector<std::string> v1_mounts() {
  std::vector<std::string> out;
  std::ifstream in("/proc/self/mountinfo");
  std::string line;
  while (std::getline(in, line)) {
    auto sep = line.find(" - ");
    if (sep == std::string::npos) {
      continue;
    }
    std::istringstream tail(line.substr(sep + 3));
    std::string fstype;
    tail >> fstype;
    if (fstype != "cgroup") {
      continue;
    }
    std::istringstream head(line.substr(0, sep));
    std::string id, parent, devno, root, mountpoint;
    head >> id >> parent >> devno >> root >> mountpoint;
    if (mountpoint.rfind(kCgroupRoot, 0) == 0) {
      out.push_back(mountpoint);
    }
  }
  return out;
}

bool is_cgroup2(const char* path) {
  struct statfs st {};
  return ::statfs(path, &st) == 0 && st.f_type == CGROUP2_SUPER_MAGIC;
}

// A new v1 cpuset cgroup starts with empty cpus/mems and refuses tasks: copy the parent's.
Result<void> init_cpuset(const std::string& dir) {
  for (const char* f : {"cpuset.cpus", "cpuset.mems"}) {
    const std::string mine = dir + "/" + f;
    if (!read_value(mine).empty()) {
      continue;
    }
    const std::string parent = std::filesystem::path(dir).parent_path().string();
    BERTH_TRYV(init_cpuset(parent));
    BERTH_TRYV(write_value(mine, read_value(parent + "/" + f)));
  }
  return {};
}

std::string device_rule(const json& d) {
  std::string type = d.value("type", "a");
  auto num = [&](const char* key) {
    if (!d.contains(key) || d[key].is_null() || d[key].get<int64_t>() < 0) {
      return std::string("*");
    }
    return std::to_string(d[key].get<int64_t>());
  };
  if (type == "a") {
    return "a";
  }
  return type + " " + num("major") + ":" + num("minor") + " " + d.value("access", "rwm");
}

// runc's default allowed devices: the default nodes, ptys, tun, and mknod of anything.
constexpr const char* kAllowedDevices[] = {"c *:* m",   "b *:* m",   "c 1:3 rwm",   "c 1:5 rwm",
                                           "c 1:7 rwm", "c 1:8 rwm", "c 1:9 rwm",   "c 5:0 rwm",
                                           "c 5:1 rwm", "c 5:2 rwm", "c 136:* rwm", "c 10:200 rwm"};

}  // namespace

Result<Cgroups> Cgroups::open(const std::string& path) {
  if (path.empty() || path.front() != '/' || path.find("..") != std::string::npos) {
    return fail(Errc::InvalidArgument,
                "linux.cgroupsPath '" + path + "' must be an absolute path without '..'");
  }
  Cgroups cg;
  if (is_cgroup2(kCgroupRoot)) {
    cg.v2_ = true;
    cg.dirs_.push_back(std::string(kCgroupRoot) + path);
    return cg;
  }
  for (const auto& mp : v1_mounts()) {
    cg.dirs_.push_back(mp + path);
  }
  if (cg.dirs_.empty()) {
    return fail(Errc::NotSupported, "no cgroup hierarchy is mounted under /sys/fs/cgroup");
  }
  return cg;
}

Cgroups Cgroups::from_dirs(bool v2, std::vector<std::string> dirs) {
  Cgroups cg;
  cg.v2_ = v2;
  cg.dirs_ = std::move(dirs);
  return cg;
}

std::string Cgroups::dir_for(const std::string& controller) const {
  if (v2_) {
    return dirs_.front();
  }
  for (const auto& d : dirs_) {
    // /sys/fs/cgroup/<hierarchy>/<path>: match the hierarchy's name.
    auto rest = d.substr(std::string(kCgroupRoot).size() + 1);
    auto name = rest.substr(0, rest.find('/'));
    std::istringstream parts(name);
    std::string part;
    while (std::getline(parts, part, ',')) {
      if (part == controller) {
        return d;
      }
    }
  }
  return {};
}

Result<void> Cgroups::create() {
  for (const auto& d : dirs_) {
    BERTH_TRYV(util::make_dirs(d));
  }
  if (!v2_) {
    if (auto cpuset = dir_for("cpuset"); !cpuset.empty()) {
      BERTH_TRYV(init_cpuset(cpuset));
    }
  }
  return {};
}

Result<void> Cgroups::add(pid_t pid) const {
  for (const auto& d : dirs_) {
    BERTH_TRYV(write_value(d + "/cgroup.procs", std::to_string(pid)));
  }
  return {};
}

Result<void> Cgroups::apply(const nlohmann::json& r) const {
  auto set = [&](const char* controller, const char* file,
                 const std::string& value) -> Result<void> {
    const std::string dir = dir_for(controller);
    if (dir.empty()) {
      return fail(Errc::NotSupported, std::string("the ") + controller +
                                          " cgroup controller is not mounted on this host");
    }
    return write_value(dir + "/" + file, value);
  };
  try {
    const json mem = r.value("memory", json::object());
    const json cpu = r.value("cpu", json::object());
    const json pids = r.value("pids", json::object());
    auto num = [](const json& o, const char* k) { return std::to_string(o[k].get<int64_t>()); };
    if (v2_) {
      auto max = [](const json& o, const char* k) {
        int64_t v = o[k].get<int64_t>();
        return v < 0 ? std::string("max") : std::to_string(v);
      };
      if (mem.contains("limit")) {
        BERTH_TRYV(set("memory", "memory.max", max(mem, "limit")));
      }
      if (mem.contains("reservation")) {
        BERTH_TRYV(set("memory", "memory.low", num(mem, "reservation")));
      }
      if (cpu.contains("shares")) {
        uint64_t shares = cpu["shares"].get<uint64_t>();
        uint64_t weight = shares == 0 ? 100 : 1 + ((shares - 2) * 9999) / 262142;
        BERTH_TRYV(set("cpu", "cpu.weight", std::to_string(weight)));
      }
      if (cpu.contains("quota")) {
        std::string period = cpu.contains("period") ? num(cpu, "period") : "100000";
        BERTH_TRYV(set("cpu", "cpu.max", max(cpu, "quota") + " " + period));
      }
      if (pids.contains("limit")) {
        int64_t v = pids["limit"].get<int64_t>();
        BERTH_TRYV(set("pids", "pids.max", v <= 0 ? "max" : std::to_string(v)));
      }
    } else {
      if (mem.contains("limit")) {
        BERTH_TRYV(set("memory", "memory.limit_in_bytes", num(mem, "limit")));
      }
      if (mem.contains("swap")) {
        BERTH_TRYV(set("memory", "memory.memsw.limit_in_bytes", num(mem, "swap")));
      }
      if (mem.contains("reservation")) {
        BERTH_TRYV(set("memory", "memory.soft_limit_in_bytes", num(mem, "reservation")));
      }
      if (cpu.contains("shares")) {
        BERTH_TRYV(set("cpu", "cpu.shares", num(cpu, "shares")));
      }
      if (cpu.contains("period")) {
        BERTH_TRYV(set("cpu", "cpu.cfs_period_us", num(cpu, "period")));
      }
      if (cpu.contains("quota")) {
        BERTH_TRYV(set("cpu", "cpu.cfs_quota_us", num(cpu, "quota")));
      }
      if (pids.contains("limit")) {
        int64_t v = pids["limit"].get<int64_t>();
        BERTH_TRYV(set("pids", "pids.max", v <= 0 ? "max" : std::to_string(v)));
      }
      if (r.contains("devices") && !dir_for("devices").empty()) {
        for (const auto& d : r["devices"]) {
          const bool allow = d.value("allow", false);
          BERTH_TRYV(set("devices", allow ? "devices.allow" : "devices.deny", device_rule(d)));
        }
        for (const char* rule : kAllowedDevices) {
          BERTH_TRYV(set("devices", "devices.allow", rule));
        }
      }
    }
    if (cpu.contains("cpus")) {
      BERTH_TRYV(set("cpuset", "cpuset.cpus", cpu["cpus"].get<std::string>()));
    }
    if (cpu.contains("mems")) {
      BERTH_TRYV(set("cpuset", "cpuset.mems", cpu["mems"].get<std::string>()));
    }
  } catch (const json::exception& e) {
    return fail(Errc::InvalidArgument, std::string("linux.resources: ") + e.what());
  }
  return {};
}

Result<void> Cgroups::freeze(bool frozen) const {
  if (v2_) {
    return write_value(dirs_.front() + "/cgroup.freeze", frozen ? "1" : "0");
  }
  const std::string dir = dir_for("freezer");
  if (dir.empty()) {
    return fail(Errc::NotSupported, "the freezer cgroup controller is not mounted on this host");
  }
  BERTH_TRYV(write_value(dir + "/freezer.state", frozen ? "FROZEN" : "THAWED"));
  // The kernel may report FREEZING for a while; wait until the state settles.
  for (int i = 0; i < 1000; ++i) {
    std::string state = read_value(dir + "/freezer.state");
    if (state == (frozen ? "FROZEN" : "THAWED")) {
      return {};
    }
    if (frozen && state == "THAWED") {
      BERTH_TRYV(write_value(dir + "/freezer.state", "FROZEN"));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return fail(Errc::Timeout, "freezing " + dir + " did not complete");
}

Result<bool> Cgroups::frozen() const {
  if (v2_) {
    return read_value(dirs_.front() + "/cgroup.freeze") == "1";
  }
  const std::string dir = dir_for("freezer");
  if (dir.empty()) {
    return false;
  }
  return read_value(dir + "/freezer.state") == "FROZEN";
}

Result<std::vector<pid_t>> Cgroups::pids() const {
  std::string dir = v2_ ? dirs_.front() : dir_for("pids");
  if (dir.empty()) {
    dir = dirs_.front();
  }
  std::ifstream in(dir + "/cgroup.procs");
  if (!in) {
    return fail(Errc::NotFound, "cannot read " + dir + "/cgroup.procs");
  }
  std::vector<pid_t> out;
  pid_t p;
  while (in >> p) {
    out.push_back(p);
  }
  return out;
}

Result<void> Cgroups::destroy() const {
  for (const auto& d : dirs_) {
    for (int attempt = 0;; ++attempt) {
      if (::rmdir(d.c_str()) == 0 || errno == ENOENT) {
        break;
      }
      if (errno != EBUSY || attempt >= 200) {
        return fail(
            Error::from_errno("remove cgroup", d, errno).hint("processes may still run in it"));
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }
  return {};
}

}  // namespace berth::runtime
