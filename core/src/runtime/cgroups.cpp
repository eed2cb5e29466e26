#include "cgroups.hpp"

#include <fcntl.h>
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
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

// v2: a controller's files appear in a cgroup only when every ancestor enables it in
// cgroup.subtree_control. Enables the ones the root offers on the way down to `dir`'s parent;
// one that an ancestor refuses (e.g. a threaded subtree) is left off, and its limits then fail
// with the file's name.
Result<void> enable_v2_controllers(const std::string& root, const std::string& dir) {
  static constexpr const char* kWanted[] = {"cpu", "cpuset", "io", "memory", "pids"};
  std::istringstream offered(read_value(root + "/cgroup.controllers"));
  std::vector<std::string> avail;
  for (std::string c; offered >> c;) {
    if (std::find(std::begin(kWanted), std::end(kWanted), c) != std::end(kWanted)) {
      avail.push_back(c);
    }
  }
  const std::string parent = std::filesystem::path(dir).parent_path().string();
  std::string cur = root;
  std::string rest = parent.size() > root.size() ? parent.substr(root.size()) : "";
  std::vector<std::string> levels = {cur};
  std::istringstream parts(rest);
  for (std::string part; std::getline(parts, part, '/');) {
    if (!part.empty()) {
      cur += "/" + part;
      levels.push_back(cur);
    }
  }
  for (const auto& level : levels) {
    BERTH_TRYV(util::make_dirs(level));
    const std::string enabled = " " + read_value(level + "/cgroup.subtree_control") + " ";
    for (const auto& c : avail) {
      if (enabled.find(" " + c + " ") == std::string::npos) {
        (void)write_value(level + "/cgroup.subtree_control", "+" + c);
      }
    }
  }
  return {};
}

uint64_t read_u64(const std::string& file) {
  return std::strtoull(read_value(file).c_str(), nullptr, 10);
}

// "key value" lines (memory.stat, cpu.stat).
uint64_t stat_field(const std::string& file, const std::string& key) {
  std::ifstream in(file);
  std::string k;
  uint64_t v = 0;
  while (in >> k >> v) {
    if (k == key) {
      return v;
    }
  }
  return 0;
}

}  // namespace

Result<CgroupStats> Cgroups::stats() const {
  CgroupStats s;
  if (v2_) {
    const std::string d = dirs_.front();
    s.cpu_nanos = stat_field(d + "/cpu.stat", "usage_usec") * 1000;
    s.mem_usage = read_u64(d + "/memory.current");
    const std::string max = read_value(d + "/memory.max");
    s.mem_limit = max == "max" ? 0 : std::strtoull(max.c_str(), nullptr, 10);
    s.mem_inactive = stat_field(d + "/memory.stat", "inactive_file");
    s.pids = read_u64(d + "/pids.current");
    // io.stat: "8:0 rbytes=1 wbytes=2 rios=3 ..." per device.
    std::ifstream in(d + "/io.stat");
    for (std::string line; std::getline(in, line);) {
      std::istringstream f(line);
      std::string tok;
      f >> tok;  // MAJ:MIN
      while (f >> tok) {
        auto eq = tok.find('=');
        uint64_t v = eq == std::string::npos ? 0 : std::strtoull(tok.c_str() + eq + 1, nullptr, 10);
        if (tok.rfind("rbytes=", 0) == 0) {
          s.io_read += v;
        } else if (tok.rfind("wbytes=", 0) == 0) {
          s.io_write += v;
        }
      }
    }
    return s;
  }
  if (auto d = dir_for("cpuacct"); !d.empty()) {
    s.cpu_nanos = read_u64(d + "/cpuacct.usage");
  }
  if (auto d = dir_for("memory"); !d.empty()) {
    s.mem_usage = read_u64(d + "/memory.usage_in_bytes");
    s.mem_limit = read_u64(d + "/memory.limit_in_bytes");
    // The unlimited value is a page-rounded LONG_MAX.
    if (s.mem_limit >= (uint64_t{1} << 62)) {
      s.mem_limit = 0;
    }
    s.mem_inactive = stat_field(d + "/memory.stat", "total_inactive_file");
  }
  if (auto d = dir_for("pids"); !d.empty()) {
    s.pids = read_u64(d + "/pids.current");
  }
  if (auto d = dir_for("blkio"); !d.empty()) {
    // "8:0 Read 4096" lines, then "Total N". The throttle file counts on every scheduler.
    std::ifstream in(d + "/blkio.throttle.io_service_bytes_recursive");
    std::string dev, op;
    uint64_t v = 0;
    for (std::string line; std::getline(in, line);) {
      std::istringstream f(line);
      if (!(f >> dev >> op >> v)) {
        continue;
      }
      if (op == "Read") {
        s.io_read += v;
      } else if (op == "Write") {
        s.io_write += v;
      }
    }
  }
  return s;
}

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

Cgroups Cgroups::from_dirs(bool v2, std::vector<std::string> dirs, std::string root) {
  Cgroups cg;
  cg.v2_ = v2;
  cg.dirs_ = std::move(dirs);
  cg.root_ = std::move(root);
  return cg;
}

std::string Cgroups::dir_for(const std::string& controller) const {
  if (v2_) {
    return dirs_.front();
  }
  for (const auto& d : dirs_) {
    // /sys/fs/cgroup/<hierarchy>/<path>: match the hierarchy's name.
    if (d.size() <= root_.size() + 1 || d.compare(0, root_.size(), root_) != 0) {
      continue;
    }
    auto rest = d.substr(root_.size() + 1);
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
  if (v2_) {
    BERTH_TRYV(enable_v2_controllers(root_, dirs_.front()));
  }
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
  auto exists = [&](const char* controller, const char* file) {
    const std::string dir = dir_for(controller);
    return !dir.empty() && ::access((dir + "/" + file).c_str(), F_OK) == 0;
  };
  try {
    const json mem = r.value("memory", json::object());
    const json cpu = r.value("cpu", json::object());
    const json pids = r.value("pids", json::object());
    const json blkio = r.value("blockIO", json::object());
    auto num = [](const json& o, const char* k) { return std::to_string(o[k].get<int64_t>()); };
    auto max = [](const json& o, const char* k) {
      int64_t v = o[k].get<int64_t>();
      return v < 0 ? std::string("max") : std::to_string(v);
    };
    if (v2_) {
      if (mem.contains("limit")) {
        BERTH_TRYV(set("memory", "memory.max", max(mem, "limit")));
      }
      if (mem.contains("swap") && exists("memory", "memory.swap.max")) {
        // OCI's swap is memory + swap (v1's memsw); v2 limits the swap alone.
        int64_t swap = mem["swap"].get<int64_t>();
        int64_t limit = mem.contains("limit") ? mem["limit"].get<int64_t>() : -1;
        std::string v = "max";
        if (swap >= 0 && limit >= 0) {
          if (swap < limit) {
            return fail(Errc::InvalidArgument, "memory+swap limit " + std::to_string(swap) +
                                                   " is below the memory limit " +
                                                   std::to_string(limit));
          }
          v = std::to_string(swap - limit);
        } else if (swap == 0) {
          v = "0";
        }
        BERTH_TRYV(set("memory", "memory.swap.max", v));
      }
      if (mem.contains("reservation")) {
        BERTH_TRYV(set("memory", "memory.low", max(mem, "reservation")));
      }
      if (cpu.contains("shares")) {
        uint64_t shares = cpu["shares"].get<uint64_t>();
        // runc's conversion of [2, 262144] shares to [1, 10000] weight.
        uint64_t weight =
            shares == 0 ? 100 : 1 + ((std::clamp<uint64_t>(shares, 2, 262144) - 2) * 9999) / 262142;
        BERTH_TRYV(set("cpu", "cpu.weight", std::to_string(weight)));
      }
      if (cpu.contains("quota") || cpu.contains("period")) {
        std::string period = cpu.contains("period") ? num(cpu, "period") : "100000";
        std::string quota = cpu.contains("quota") ? max(cpu, "quota") : "max";
        BERTH_TRYV(set("cpu", "cpu.max", quota + " " + period));
      }
      if (pids.contains("limit")) {
        int64_t v = pids["limit"].get<int64_t>();
        BERTH_TRYV(set("pids", "pids.max", v <= 0 ? "max" : std::to_string(v)));
      }
      if (blkio.contains("weight")) {
        uint64_t w = blkio["weight"].get<uint64_t>();
        if (exists("io", "io.bfq.weight")) {
          BERTH_TRYV(set("io", "io.bfq.weight", std::to_string(w)));
        } else {
          // blkio's [10, 1000] onto io.weight's [1, 10000], as runc.
          uint64_t iw = 1 + (std::clamp<uint64_t>(w, 10, 1000) - 10) * 9999 / 990;
          BERTH_TRYV(set("io", "io.weight", "default " + std::to_string(iw)));
        }
      }
    } else {
      const bool has_memsw = exists("memory", "memory.memsw.limit_in_bytes");
      auto set_swap = [&]() -> Result<void> {
        if (!has_memsw) {
          return {};  // the kernel has no swap accounting (swapaccount=0): nothing to limit
        }
        return set("memory", "memory.memsw.limit_in_bytes", num(mem, "swap"));
      };
      if (mem.contains("limit") && mem.contains("swap")) {
        // The kernel wants memory <= memsw at every step: raise memsw first when it grows.
        const int64_t swap = mem["swap"].get<int64_t>();
        const std::string cur = read_value(dir_for("memory") + "/memory.limit_in_bytes");
        uint64_t cur_limit = std::strtoull(cur.c_str(), nullptr, 10);
        if (swap < 0 || cur_limit < static_cast<uint64_t>(swap)) {
          BERTH_TRYV(set_swap());
          BERTH_TRYV(set("memory", "memory.limit_in_bytes", num(mem, "limit")));
        } else {
          BERTH_TRYV(set("memory", "memory.limit_in_bytes", num(mem, "limit")));
          BERTH_TRYV(set_swap());
        }
      } else if (mem.contains("limit")) {
        BERTH_TRYV(set("memory", "memory.limit_in_bytes", num(mem, "limit")));
      } else if (mem.contains("swap")) {
        BERTH_TRYV(set_swap());
      }
      if (mem.contains("reservation")) {
        BERTH_TRYV(set("memory", "memory.soft_limit_in_bytes", num(mem, "reservation")));
      }
      if (mem.value("disableOOMKiller", false)) {
        BERTH_TRYV(set("memory", "memory.oom_control", "1"));
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
      if (blkio.contains("weight")) {
        const std::string w = num(blkio, "weight");
        if (exists("blkio", "blkio.weight")) {
          BERTH_TRYV(set("blkio", "blkio.weight", w));
        } else if (exists("blkio", "blkio.bfq.weight")) {
          BERTH_TRYV(set("blkio", "blkio.bfq.weight", w));
        } else {
          return fail(Errc::NotSupported,
                      "--blkio-weight: this kernel has no blkio.weight (the CFQ or BFQ I/O "
                      "scheduler is not in use); drop the flag");
        }
      }
      if (r.contains("devices") && !dir_for("devices").empty()) {
        for (const auto& d : r["devices"]) {
          const bool allow = d.value("allow", false);
          BERTH_TRYV(set("devices", allow ? "devices.allow" : "devices.deny", device_rule(d)));
          // After "deny all", the defaults every container needs (as runc).
          if (!allow && d.value("type", "a") == "a") {
            for (const char* rule : kAllowedDevices) {
              BERTH_TRYV(set("devices", "devices.allow", rule));
            }
          }
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
