// update, stats, pause, unpause: resources of existing containers.
#include "berth/container/resource_ops.hpp"

#include <unistd.h>

#include <cmath>
#include <fstream>
#include <sstream>

#include "../runtime/cgroups.hpp"  // berth_runtime's cgroupfs reader (same library set)
#include "berth/container/service.hpp"
#include "berth/engine/engine.hpp"
#include "berth/util/fs.hpp"
#include "internal.hpp"

namespace berth::container {

using nlohmann::json;
using namespace detail;

Result<int64_t> parse_ram_bytes(std::string_view text) {
  auto bad = [&]() {
    return fail(Errc::InvalidArgument, "invalid size \"" + std::string(text) +
                                           "\": want a number with an optional unit b, k, m, "
                                           "g, t (e.g. 512m)");
  };
  if (text.empty()) {
    return bad();
  }
  size_t i = 0;
  while (i < text.size() && (std::isdigit(static_cast<unsigned char>(text[i])) || text[i] == '.')) {
    ++i;
  }
  if (i == 0) {
    return bad();
  }
  double n = 0;
  try {
    size_t used = 0;
    n = std::stod(std::string(text.substr(0, i)), &used);
    if (used != i) {
      return bad();
    }
  } catch (const std::exception&) {
    return bad();
  }
  std::string unit;
  for (char c : text.substr(i)) {
    unit += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  if (unit == "b") {
    unit.clear();
  } else if ((unit.size() == 3 && unit.ends_with("ib")) || (unit.size() == 2 && unit[1] == 'b')) {
    unit.resize(1);  // "kib", "kb" -> "k"
  }
  double mult = 1;
  if (unit.empty() || unit == "b") {
    mult = 1;
  } else if (unit == "k") {
    mult = 1024.0;
  } else if (unit == "m") {
    mult = 1024.0 * 1024;
  } else if (unit == "g") {
    mult = 1024.0 * 1024 * 1024;
  } else if (unit == "t") {
    mult = 1024.0 * 1024 * 1024 * 1024;
  } else if (unit == "p") {
    mult = 1024.0 * 1024 * 1024 * 1024 * 1024;
  } else {
    return bad();
  }
  return static_cast<int64_t>(n * mult);
}

Result<json> resources_to_oci(const ResourceOptions& o) {
  json r = json::object();
  // Podman's minimum: smaller limits kill the container before it has started.
  constexpr int64_t kMinMemory = 6 * 1024 * 1024;
  if (o.memory && *o.memory != 0) {
    if (*o.memory < kMinMemory && *o.memory != -1) {
      return fail(Errc::InvalidArgument, "--memory: the minimum memory limit is 6MB");
    }
    r["memory"]["limit"] = *o.memory;
    if (o.memory_swap) {
      if (*o.memory_swap != -1 && *o.memory != -1 && *o.memory_swap < *o.memory) {
        return fail(Errc::InvalidArgument,
                    "--memory-swap must be at least --memory (it counts memory plus swap), or "
                    "-1 for unlimited swap");
      }
      r["memory"]["swap"] = *o.memory_swap;
    } else if (*o.memory > 0) {
      r["memory"]["swap"] = 2 * *o.memory;  // as much swap as memory, as Podman
    }
  } else if (o.memory_swap && *o.memory_swap != 0) {
    return fail(Errc::InvalidArgument,
                "--memory-swap needs --memory (the swap limit counts memory plus swap)");
  }
  if (o.memory_reservation) {
    if (*o.memory_reservation < 0) {
      return fail(Errc::InvalidArgument, "--memory-reservation must not be negative");
    }
    if (o.memory && *o.memory > 0 && *o.memory_reservation > *o.memory) {
      return fail(Errc::InvalidArgument,
                  "--memory-reservation must be below --memory (it is a soft limit)");
    }
    r["memory"]["reservation"] = *o.memory_reservation;
  }
  if (o.oom_kill_disable) {
    r["memory"]["disableOOMKiller"] = true;
  }
  if (o.cpus) {
    const long ncpu = ::sysconf(_SC_NPROCESSORS_ONLN);
    if (*o.cpus < 0.01 || (ncpu > 0 && *o.cpus > static_cast<double>(ncpu))) {
      char msg[160];
      std::snprintf(msg, sizeof(msg),
                    "--cpus: range of CPUs is from 0.01 to %ld.00, as there are only %ld CPUs "
                    "available",
                    ncpu, ncpu);
      return fail(Errc::InvalidArgument, msg);
    }
    r["cpu"]["period"] = 100000;
    r["cpu"]["quota"] = static_cast<int64_t>(std::llround(*o.cpus * 100000));
  }
  if (o.cpu_shares) {
    if (*o.cpu_shares != 0 && (*o.cpu_shares < 2 || *o.cpu_shares > 262144)) {
      return fail(Errc::InvalidArgument, "--cpu-shares must be within [2, 262144]");
    }
    if (*o.cpu_shares != 0) {
      r["cpu"]["shares"] = *o.cpu_shares;
    }
  }
  auto valid_set = [](const std::string& s) {
    return s.find_first_not_of("0123456789,-") == std::string::npos;
  };
  if (!o.cpuset_cpus.empty()) {
    if (!valid_set(o.cpuset_cpus)) {
      return fail(Errc::InvalidArgument,
                  "--cpuset-cpus " + o.cpuset_cpus + ": want a list such as 0-2,4");
    }
    r["cpu"]["cpus"] = o.cpuset_cpus;
  }
  if (!o.cpuset_mems.empty()) {
    if (!valid_set(o.cpuset_mems)) {
      return fail(Errc::InvalidArgument,
                  "--cpuset-mems " + o.cpuset_mems + ": want a list such as 0-1");
    }
    r["cpu"]["mems"] = o.cpuset_mems;
  }
  if (o.pids_limit) {
    r["pids"]["limit"] = *o.pids_limit;
  }
  if (o.blkio_weight && *o.blkio_weight != 0) {
    if (*o.blkio_weight < 10 || *o.blkio_weight > 1000) {
      return fail(Errc::InvalidArgument, "--blkio-weight must be within [10, 1000]");
    }
    r["blockIO"]["weight"] = *o.blkio_weight;
  }
  return r;
}

namespace {

Result<json> read_spec(const ContainerRecord& rec) {
  const std::string path = rec.bundle + "/config.json";
  BERTH_TRY(std::string text, util::read_file(path));
  try {
    return json::parse(text);
  } catch (const json::exception& e) {
    return fail(Errc::Corrupt, path + ": " + e.what());
  }
}

Result<runtime::Cgroups> cgroups_of(const ContainerRecord& rec) {
  BERTH_TRY(json spec, read_spec(rec));
  std::string path = "/berth/" + rec.id;
  if (spec.contains("linux") && spec["linux"].is_object()) {
    path = spec["linux"].value("cgroupsPath", path);
  }
  return runtime::Cgroups::open(path);
}

uint64_t host_memory() {
  std::ifstream in("/proc/meminfo");
  std::string key;
  uint64_t kb = 0;
  std::string unit;
  while (in >> key >> kb >> unit) {
    if (key == "MemTotal:") {
      return kb * 1024;
    }
  }
  return 0;
}

// Bytes received and sent on every interface but lo of the process's network namespace.
std::pair<uint64_t, uint64_t> net_io(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/net/dev");
  std::string line;
  uint64_t rx = 0, tx = 0;
  while (std::getline(in, line)) {
    auto colon = line.find(':');
    if (colon == std::string::npos) {
      continue;  // the two header lines
    }
    std::string name = line.substr(0, colon);
    name.erase(0, name.find_first_not_of(' '));
    if (name == "lo") {
      continue;
    }
    std::istringstream f(line.substr(colon + 1));
    std::vector<uint64_t> v(16, 0);
    for (auto& x : v) {
      f >> x;
    }
    rx += v[0];
    tx += v[8];
  }
  return {rx, tx};
}

// go-units HumanSize (4 significant digits, decimal units), as `podman stats` prints sizes.
std::string human_size4(double bytes) {
  static const char* kUnits[] = {"B", "kB", "MB", "GB", "TB", "PB", "EB"};
  size_t i = 0;
  while (bytes >= 1000 && i + 1 < std::size(kUnits)) {
    bytes /= 1000;
    ++i;
  }
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.4g%s", bytes, kUnits[i]);
  return buf;
}

// Go's time.Duration String(): "1h2m3.5s", "76.228ms", "800µs", "0s".
std::string go_duration(uint64_t ns) {
  char buf[64];
  if (ns == 0) {
    return "0s";
  }
  auto trim = [](std::string s) {
    if (s.find('.') != std::string::npos) {
      while (s.back() == '0') {
        s.pop_back();
      }
      if (s.back() == '.') {
        s.pop_back();
      }
    }
    return s;
  };
  if (ns < 1000) {
    return std::to_string(ns) + "ns";
  }
  if (ns < 1000000) {
    std::snprintf(buf, sizeof(buf), "%.3f", static_cast<double>(ns) / 1e3);
    return trim(buf) + "µs";
  }
  if (ns < 1000000000) {
    std::snprintf(buf, sizeof(buf), "%.6f", static_cast<double>(ns) / 1e6);
    return trim(buf) + "ms";
  }
  uint64_t secs = ns / 1000000000;
  uint64_t frac = ns % 1000000000;
  std::string out;
  if (secs >= 3600) {
    out += std::to_string(secs / 3600) + "h";
  }
  if (secs >= 60) {
    out += std::to_string(secs % 3600 / 60) + "m";
  }
  std::snprintf(buf, sizeof(buf), "%llu.%09llu", static_cast<unsigned long long>(secs % 60),
                static_cast<unsigned long long>(frac));
  return out + trim(buf) + "s";
}

std::string percent(double v) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.2f%%", v);
  return buf;
}

Result<void> write_spec_resources(const ContainerRecord& rec, const json& resources) {
  BERTH_TRY(json spec, read_spec(rec));
  json& target = spec["linux"]["resources"];
  for (const char* key : {"memory", "cpu", "pids", "blockIO"}) {
    if (resources.contains(key)) {
      target[key] = resources[key];
    } else if (target.is_object()) {
      target.erase(key);
    }
  }
  return util::write_file_atomic(rec.bundle + "/config.json", spec.dump(2));
}

}  // namespace

Result<void> update_resources(engine::Engine& eng, const std::string& name_or_id,
                              const UpdateOptions& u) {
  BERTH_TRY(auto db, open_db(eng, false));
  BERTH_TRY(auto rec0, db->lookup(name_or_id));
  BERTH_TRY(auto lock, ContainerLock::acquire(eng.runroot(), rec0.id));
  BERTH_TRY(auto rec, db->lookup(rec0.id));
  if (u.restart_policy) {
    BERTH_TRY(auto policy, parse_restart_policy(*u.restart_policy));
    if (rec.options.remove && policy.name != "no") {
      return fail(Errc::Conflict, "update container " + rec.name +
                                      ": its restart policy cannot be changed because it is "
                                      "removed when it exits (--rm)");
    }
    rec.options.restart_policy = *u.restart_policy;
  }
  const bool limits = u.memory || u.memory_swap || u.memory_reservation || u.cpus || u.cpu_shares ||
                      u.cpuset_cpus || u.cpuset_mems || u.pids_limit || u.blkio_weight;
  if (!limits) {
    BERTH_TRYV(db->update(rec));
    emit_event(eng, rec, "update");
    return {};
  }
  ResourceOptions r = rec.options.resources;
  if (u.memory) {
    r.memory = *u.memory;
    if (!u.memory_swap && r.memory_swap && *r.memory_swap != -1 && *r.memory_swap < *u.memory) {
      r.memory_swap.reset();  // the old total would be below the new memory: back to 2x
    }
  }
  if (u.memory_swap) {
    r.memory_swap = *u.memory_swap;
  }
  if (u.memory_reservation) {
    r.memory_reservation = *u.memory_reservation;
  }
  if (u.cpus) {
    r.cpus = *u.cpus;
  }
  if (u.cpu_shares) {
    r.cpu_shares = *u.cpu_shares;
  }
  if (u.cpuset_cpus) {
    r.cpuset_cpus = *u.cpuset_cpus;
  }
  if (u.cpuset_mems) {
    r.cpuset_mems = *u.cpuset_mems;
  }
  if (u.pids_limit) {
    r.pids_limit = *u.pids_limit;
  }
  if (u.blkio_weight) {
    r.blkio_weight = *u.blkio_weight;
  }
  auto oci = resources_to_oci(r);
  if (!oci) {
    return fail(std::move(oci).error().wrap("update container " + rec.name));
  }
  // Values taken away go back to the unlimited ones in the cgroup.
  json apply = *oci;
  if (u.pids_limit && !apply.contains("pids")) {
    apply["pids"]["limit"] = -1;
  }
  ContainerState st = read_state(eng.runroot(), rec);
  if (st.status == Status::Running || st.status == Status::Paused) {
    BERTH_TRY(auto rt, make_runtime(eng, st.runtime.empty() ? "native" : st.runtime));
    auto applied = rt->update(rec.id, apply.dump());
    if (!applied) {
      return fail(std::move(applied).error().wrap("update container " + rec.name));
    }
  }
  BERTH_TRYV(write_spec_resources(rec, *oci));
  rec.options.resources = r;
  BERTH_TRYV(db->update(rec));
  emit_event(eng, rec, "update");
  return {};
}

Result<std::vector<StatsSample>> stats(engine::Engine& eng, const std::vector<std::string>& names) {
  BERTH_TRY(auto db, open_db(eng, true));
  std::vector<ContainerRecord> recs;
  if (names.empty()) {
    BERTH_TRY(recs, db->all());
  } else {
    for (const auto& n : names) {
      BERTH_TRY(auto r, db->lookup(n));
      recs.push_back(std::move(r));
    }
  }
  const uint64_t host_mem = host_memory();
  std::vector<StatsSample> out;
  for (const auto& rec : recs) {
    ContainerState st = read_state(eng.runroot(), rec);
    if (st.status != Status::Running && st.status != Status::Paused) {
      if (!names.empty()) {
        return fail(Errc::Conflict, "container " + rec.name + " is " + status_name(st.status) +
                                        ": stats need a running container");
      }
      continue;
    }
    StatsSample s;
    s.id = rec.id;
    s.name = rec.name;
    s.started_at = st.started_at;
    BERTH_TRY(auto cg, cgroups_of(rec));
    BERTH_TRY(auto c, cg.stats());
    s.read_at = now_nanos();
    s.cpu_nanos = c.cpu_nanos;
    s.mem_usage = c.mem_usage > c.mem_inactive ? c.mem_usage - c.mem_inactive : c.mem_usage;
    s.mem_limit =
        c.mem_limit == 0 || (host_mem != 0 && c.mem_limit > host_mem) ? host_mem : c.mem_limit;
    s.pids = c.pids;
    s.block_read = c.io_read;
    s.block_write = c.io_write;
    std::tie(s.net_rx, s.net_tx) = net_io(st.pid);
    out.push_back(std::move(s));
  }
  return out;
}

json stats_row(const StatsSample& s, const StatsSample* prev, bool no_trunc) {
  auto ratio = [](uint64_t cpu, int64_t wall) {
    return wall > 0 ? 100.0 * static_cast<double>(cpu) / static_cast<double>(wall) : 0.0;
  };
  const double avg = ratio(s.cpu_nanos, s.read_at - s.started_at);
  double cpu = avg;
  if (prev && prev->id == s.id && s.read_at > prev->read_at && s.cpu_nanos >= prev->cpu_nanos) {
    cpu = ratio(s.cpu_nanos - prev->cpu_nanos, s.read_at - prev->read_at);
  }
  const double mem_pct =
      s.mem_limit > 0 ? 100.0 * static_cast<double>(s.mem_usage) / static_cast<double>(s.mem_limit)
                      : 0.0;
  const std::string id = no_trunc ? s.id : s.id.substr(0, 12);
  const std::string mem = human_size4(static_cast<double>(s.mem_usage)) + " / " +
                          human_size4(static_cast<double>(s.mem_limit));
  const std::string net = human_size4(static_cast<double>(s.net_rx)) + " / " +
                          human_size4(static_cast<double>(s.net_tx));
  const std::string blk = human_size4(static_cast<double>(s.block_read)) + " / " +
                          human_size4(static_cast<double>(s.block_write));
  const std::string up = go_duration(static_cast<uint64_t>(
      std::max<int64_t>(0, (s.read_at - s.started_at) / 1000000000 * 1000000000)));
  return json{// `--format json`, as Podman
              {"id", id},
              {"name", s.name},
              {"cpu_time", go_duration(s.cpu_nanos)},
              {"cpu_percent", percent(cpu)},
              {"avg_cpu", percent(avg)},
              {"mem_usage", mem},
              {"mem_percent", percent(mem_pct)},
              {"net_io", net},
              {"block_io", blk},
              {"pids", std::to_string(s.pids)},
              // Go-template fields
              {"ID", id},
              {"Name", s.name},
              {"CPU", go_duration(s.cpu_nanos)},
              {"CPUNano", s.cpu_nanos},
              {"CPUPerc", percent(cpu)},
              {"AVGCPU", percent(avg)},
              {"MemUsage", mem},
              {"MemUsageBytes", human_size4(static_cast<double>(s.mem_usage))},
              {"MemPerc", percent(mem_pct)},
              {"MemLimit", s.mem_limit},
              {"NetIO", net},
              {"BlockIO", blk},
              {"PIDS", std::to_string(s.pids)},
              {"PIDs", std::to_string(s.pids)},
              {"UpTime", up}};
}

Result<void> pause(engine::Engine& eng, const std::string& name_or_id) {
  BERTH_TRY(auto db, open_db(eng, true));
  BERTH_TRY(auto rec0, db->lookup(name_or_id));
  BERTH_TRY(auto lock, ContainerLock::acquire(eng.runroot(), rec0.id));
  BERTH_TRY(auto rec, db->lookup(rec0.id));
  ContainerState st = read_state(eng.runroot(), rec);
  if (st.status != Status::Running) {
    return fail(Errc::Conflict, "\"" + rec.name + "\" is " + status_name(st.status) +
                                    ", can't pause: container state improper");
  }
  BERTH_TRY(auto rt, make_runtime(eng, st.runtime.empty() ? "native" : st.runtime));
  auto r = rt->pause(rec.id);
  if (!r) {
    return fail(std::move(r).error().wrap("pause container " + rec.name));
  }
  st.status = Status::Paused;
  BERTH_TRYV(write_state(eng.runroot(), rec.id, st));
  emit_event(eng, rec, "pause");
  return {};
}

Result<void> unpause(engine::Engine& eng, const std::string& name_or_id) {
  BERTH_TRY(auto db, open_db(eng, true));
  BERTH_TRY(auto rec0, db->lookup(name_or_id));
  BERTH_TRY(auto lock, ContainerLock::acquire(eng.runroot(), rec0.id));
  BERTH_TRY(auto rec, db->lookup(rec0.id));
  ContainerState st = read_state(eng.runroot(), rec);
  if (st.status != Status::Paused) {
    return fail(Errc::Conflict, "\"" + rec.name + "\" is " + status_name(st.status) +
                                    ", can't unpause: container state improper");
  }
  BERTH_TRY(auto rt, make_runtime(eng, st.runtime.empty() ? "native" : st.runtime));
  auto r = rt->resume(rec.id);
  if (!r) {
    return fail(std::move(r).error().wrap("unpause container " + rec.name));
  }
  st.status = Status::Running;
  BERTH_TRYV(write_state(eng.runroot(), rec.id, st));
  emit_event(eng, rec, "unpause");
  return {};
}

}  // namespace berth::container
