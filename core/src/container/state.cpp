// Volatile state, locks, names and the status rules.
#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <chrono>
#include <ctime>
#include <random>

#include "berth/container/container.hpp"
#include "berth/container/log_format.hpp"
#include "berth/util/fs.hpp"
#include "berth/util/human.hpp"

namespace berth::container {

using nlohmann::json;

std::string status_name(Status s) {
  switch (s) {
    case Status::Configured:
    case Status::Created:
      return "created";
    case Status::Running:
      return "running";
    case Status::Paused:
      return "paused";
    case Status::Stopping:
      return "stopping";
    case Status::Exited:
      return "exited";
  }
  return "unknown";
}

Result<ContainerLock> ContainerLock::acquire(const std::string& run_root, const std::string& id) {
  const std::string dir = run_root + "/locks";
  BERTH_TRYV(util::make_dirs(dir, 0700));
  const std::string path = dir + "/container-" + id + ".lock";
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) {
    return fail_errno("open lock file", path);
  }
  while (::flock(fd, LOCK_EX) != 0) {
    if (errno != EINTR) {
      int err = errno;
      ::close(fd);
      return fail_errno("lock", path, err);
    }
  }
  return ContainerLock(fd);
}

ContainerLock::~ContainerLock() {
  if (fd_ >= 0) {
    ::close(fd_);
  }
}

std::string random_name() {
  // A subset of the lists Docker and Podman use (moby/pkg/namesgenerator).
  static constexpr std::array kLeft = {
      "admiring",   "adoring",    "affectionate", "amazing",    "angry",     "awesome",
      "blissful",   "bold",       "brave",        "charming",   "clever",    "compassionate",
      "competent",  "cool",       "dazzling",     "determined", "eager",     "ecstatic",
      "elastic",    "elated",     "elegant",      "epic",       "festive",   "focused",
      "friendly",   "funny",      "gallant",      "gifted",     "happy",     "hopeful",
      "infallible", "inspiring",  "jolly",        "keen",       "kind",      "laughing",
      "loving",     "lucid",      "magical",      "modest",     "musing",    "nice",
      "nifty",      "optimistic", "peaceful",     "pensive",    "practical", "quirky",
      "relaxed",    "romantic",   "serene",       "sharp",      "stoic",     "sweet",
      "tender",     "trusting",   "upbeat",       "vibrant",    "wizardly",  "youthful",
      "zealous",    "zen"};
  static constexpr std::array kRight = {
      "albattani", "archimedes", "babbage",  "bardeen",   "bell",     "bohr",     "brahmagupta",
      "cannon",    "carson",     "curie",    "darwin",    "dijkstra", "einstein", "euclid",
      "euler",     "fermat",     "feynman",  "galileo",   "gauss",    "goldberg", "goodall",
      "hamilton",  "hawking",    "hopper",   "hypatia",   "jang",     "johnson",  "kalam",
      "keller",    "knuth",      "lamport",  "leakey",    "lovelace", "mahavira", "mayer",
      "mccarthy",  "meitner",    "morse",    "newton",    "nobel",    "noether",  "pare",
      "pascal",    "pasteur",    "poincare", "ramanujan", "ritchie",  "rosalind", "sammet",
      "shannon",   "sinoussi",   "tesla",    "thompson",  "torvalds", "turing",   "volhard",
      "wiles",     "wozniak",    "wright",   "yalow",     "yonath"};
  static std::mt19937_64 rng{std::random_device{}()};
  std::string name = std::string(kLeft[rng() % kLeft.size()]) + "_" + kRight[rng() % kRight.size()];
  return name;
}

std::string run_dir(const std::string& run_root, const std::string& id) {
  return run_root + "/containers/" + id;
}

std::string exit_file(const std::string& run_root, const std::string& id) {
  return run_dir(run_root, id) + "/exit";
}

namespace {

// The start time of a process (field 22 of /proc/<pid>/stat), 0 when gone or a zombie.
uint64_t start_time_of(pid_t pid) {
  auto text = util::read_file("/proc/" + std::to_string(pid) + "/stat");
  if (!text) {
    return 0;
  }
  size_t rp = text->rfind(')');
  if (rp == std::string::npos || rp + 2 >= text->size()) {
    return 0;
  }
  if ((*text)[rp + 2] == 'Z' || (*text)[rp + 2] == 'X') {
    return 0;
  }
  // Fields after ')': state is field 3; starttime is field 22.
  size_t pos = rp + 2;
  for (int field = 3; field < 22; ++field) {
    pos = text->find(' ', pos);
    if (pos == std::string::npos) {
      return 0;
    }
    ++pos;
  }
  return std::strtoull(text->c_str() + pos, nullptr, 10);
}

}  // namespace

ContainerState read_state(const std::string& run_root, const ContainerRecord& rec) {
  ContainerState st;
  st.started_at = rec.started_at;
  st.finished_at = rec.finished_at;
  st.exit_code = rec.exit_code;
  st.status = rec.ever_started ? Status::Exited : Status::Configured;
  const std::string dir = run_dir(run_root, rec.id);
  auto text = util::read_file(dir + "/state.json");
  if (!text) {
    return st;
  }
  uint64_t start_time = 0;
  uint64_t monitor_start = 0;
  try {
    json j = json::parse(*text);
    st.pid = j.value("pid", 0);
    st.monitor_pid = j.value("monitor_pid", 0);
    st.started_at = j.value("started_at", st.started_at);
    st.runtime = j.value("runtime", "");
    st.error = j.value("error", "");
    st.mounted = j.value("mounted", false);
    start_time = j.value("start_time", uint64_t{0});
    monitor_start = j.value("monitor_start_time", uint64_t{0});
    std::string s = j.value("status", "created");
    st.status = s == "running"  ? Status::Running
                : s == "paused" ? Status::Paused
                : s == "exited" ? Status::Exited
                                : Status::Created;
    if (st.status == Status::Exited) {
      st.finished_at = j.value("finished_at", st.finished_at);
      st.exit_code = j.value("exit_code", st.exit_code);
    }
  } catch (const json::exception&) {
    return st;
  }
  const std::string exit_path = dir + "/exit";
  auto code = util::read_file(exit_path);
  if (code) {
    st.status = Status::Exited;
    st.exit_code = std::atoi(code->c_str());
    struct stat sb;
    if (::stat(exit_path.c_str(), &sb) == 0) {
      st.finished_at = int64_t{sb.st_mtim.tv_sec} * 1000000000 + sb.st_mtim.tv_nsec;
    }
    auto oom = util::read_file(dir + "/oom");
    st.oom_killed = static_cast<bool>(oom);
    return st;
  }
  if ((st.status == Status::Running || st.status == Status::Created ||
       st.status == Status::Paused) &&
      st.pid > 0) {
    uint64_t now_start = start_time_of(st.pid);
    bool gone = now_start == 0 || (start_time != 0 && now_start != start_time);
    // A zombie or just-exited container whose monitor lives: the monitor is about to write the
    // exit file; until then the container still counts as running.
    uint64_t mon_now = st.monitor_pid > 0 ? start_time_of(st.monitor_pid) : 0;
    bool monitor_alive = mon_now != 0 && (monitor_start == 0 || mon_now == monitor_start);
    if (gone && monitor_alive) {
      gone = false;
    }
    if (gone) {
      // The process is gone and no monitor recorded how: its monitor was killed.
      st.status = Status::Exited;
      st.exit_code = -1;
      st.error = "the container's monitor died before the container exited; exit code unknown";
      if (st.finished_at <= 0 || st.finished_at < st.started_at) {  // never started: 0
        st.finished_at = now_nanos();
      }
    }
  }
  return st;
}

Result<void> write_state(const std::string& run_root, const std::string& id,
                         const ContainerState& st) {
  const std::string dir = run_dir(run_root, id);
  BERTH_TRYV(util::make_dirs(dir, 0700));
  json j{{"status", status_name(st.status)},
         {"pid", st.pid},
         {"monitor_pid", st.monitor_pid},
         {"started_at", st.started_at},
         {"finished_at", st.finished_at},
         {"exit_code", st.exit_code},
         {"runtime", st.runtime},
         {"error", st.error},
         {"mounted", st.mounted},
         {"start_time", st.pid > 0 ? start_time_of(st.pid) : 0},
         {"monitor_start_time", st.monitor_pid > 0 ? start_time_of(st.monitor_pid) : 0}};
  return util::write_file_atomic(dir + "/state.json", j.dump());
}

std::string human_duration(int64_t nanos) {
  return util::human_duration(nanos / 1000000000);
}

std::string status_string(const ContainerState& st, int64_t now) {
  switch (st.status) {
    case Status::Configured:
    case Status::Created:
      return "Created";
    case Status::Running:
      return "Up " + human_duration(now - st.started_at);
    case Status::Paused:
      return "Up " + human_duration(now - st.started_at) + " (Paused)";
    case Status::Stopping:
      return "Stopping";
    case Status::Exited:
      return "Exited (" + std::to_string(st.exit_code) + ") " +
             human_duration(now - st.finished_at) + " ago";
  }
  return "Unknown";
}

int64_t now_nanos() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string rfc3339_nano(int64_t unix_nanos) {
  if (unix_nanos <= 0) {
    return "0001-01-01T00:00:00Z";
  }
  return format_log_time(unix_nanos);
}

}  // namespace berth::container
