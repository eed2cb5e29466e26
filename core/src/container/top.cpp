// top: the processes of a running container, listed as Podman lists them (format descriptors, in
// the container's view, read from /proc) and as Docker does (the host's ps(1) with the user's
// options, its rows kept for the container's processes).
#include <fcntl.h>
#include <linux/openat2.h>
#include <poll.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <map>
#include <optional>
#include <regex>
#include <set>
#include <sstream>

#include "berth/container/service.hpp"
#include "berth/sdk/unique_fd.hpp"
#include "berth/util/fs.hpp"
#include "berth/util/spawn.hpp"
#include "internal.hpp"

extern char** environ;

namespace berth::container {

using namespace detail;
namespace fs = std::filesystem;

namespace {

using Rows = std::vector<std::vector<std::string>>;

std::vector<std::string> split_ws(std::string_view s) {
  std::vector<std::string> out;
  size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && std::isspace(static_cast<unsigned char>(s[i]))) {
      ++i;
    }
    size_t start = i;
    while (i < s.size() && !std::isspace(static_cast<unsigned char>(s[i]))) {
      ++i;
    }
    if (i > start) {
      out.emplace_back(s.substr(start, i - start));
    }
  }
  return out;
}

std::string join(const std::vector<std::string>& v, const std::string& sep) {
  std::string s;
  for (const auto& x : v) {
    if (!s.empty()) {
      s += sep;
    }
    s += x;
  }
  return s;
}

// The running container and its init's host pid.
struct Running {
  ContainerRecord rec;
  pid_t init = 0;
};

Result<Running> running(engine::Engine& eng, const std::string& name_or_id) {
  BERTH_TRY(auto db, open_db(eng, true));
  BERTH_TRY(auto rec, db->lookup(name_or_id));
  ContainerState st = read_state(eng.runroot(), rec);
  if (st.status != Status::Running) {
    return fail(Errc::Conflict, "top can only be used on running containers: container " +
                                    rec.name + " is " + status_name(st.status));
  }
  return Running{std::move(rec), st.pid};
}

std::vector<pid_t> proc_pids() {
  std::vector<pid_t> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator("/proc", ec)) {
    const std::string name = e.path().filename();
    if (!name.empty() && name.find_first_not_of("0123456789") == std::string::npos) {
      out.push_back(static_cast<pid_t>(std::stol(name)));
    }
  }
  return out;
}

// Every process in the cgroup directory and the ones below it (a container may make its own).
Result<std::vector<pid_t>> cgroup_procs(const fs::path& dir) {
  std::vector<pid_t> out;
  auto read_one = [&](const fs::path& d) -> Result<void> {
    auto text = util::read_file(d / "cgroup.procs");
    if (!text) {
      return fail(std::move(text).error());
    }
    std::istringstream is(*text);
    pid_t p = 0;
    while (is >> p) {
      out.push_back(p);
    }
    return {};
  };
  BERTH_TRYV(read_one(dir));
  std::error_code ec;
  for (fs::recursive_directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    std::error_code ec2;
    if (it->is_directory(ec2)) {
      // A cgroup removed meanwhile holds no process any more.
      if (auto r = read_one(it->path()); !r && r.error().sys_errno() != ENOENT) {
        return fail(std::move(r).error());
      }
    }
  }
  if (ec) {
    return fail_errno("list cgroup", dir.string(), ec.value());
  }
  return out;
}

// The cgroup directory that holds this container alone (its path names the container's id), from
// the init's /proc/PID/cgroup; nullopt when the container has none of its own (cgroups disabled).
std::optional<fs::path> own_cgroup(pid_t init, const std::string& id) {
  auto text = util::read_file("/proc/" + std::to_string(init) + "/cgroup");
  if (!text) {
    return std::nullopt;
  }
  std::optional<fs::path> found;
  std::istringstream is(*text);
  std::string line;
  std::error_code ec;
  while (std::getline(is, line)) {
    size_t c1 = line.find(':');
    size_t c2 = c1 == std::string::npos ? c1 : line.find(':', c1 + 1);
    if (c2 == std::string::npos) {
      continue;
    }
    std::string controllers = line.substr(c1 + 1, c2 - c1 - 1);
    const fs::path path = fs::path(line.substr(c2 + 1)).relative_path();
    if (path.string().find(id) == std::string::npos) {
      continue;
    }
    fs::path mount = "/sys/fs/cgroup";
    if (controllers.empty()) {
      if (!fs::exists("/sys/fs/cgroup/cgroup.controllers", ec)) {
        mount /= "unified";  // v1 with the v2 hierarchy beside it
      }
    } else {
      mount /= controllers.starts_with("name=") ? controllers.substr(5) : controllers;
    }
    const fs::path dir = mount / path;
    if (!fs::is_directory(dir, ec)) {
      continue;
    }
    // On v1 every hierarchy holds every process; pids is the one made for counting them.
    if (!found || controllers == "pids") {
      found = dir;
    }
  }
  return found;
}

std::optional<std::string> stat_ppid(pid_t pid) {
  auto stat = util::read_file("/proc/" + std::to_string(pid) + "/stat");
  if (!stat) {
    return std::nullopt;
  }
  size_t rp = stat->rfind(')');
  if (rp == std::string::npos) {
    return std::nullopt;
  }
  auto f = split_ws(std::string_view(*stat).substr(rp + 1));
  return f.size() > 1 ? std::optional<std::string>(f[1]) : std::nullopt;
}

// The host pids of the container's processes: its cgroup's, as Docker asks containerd; else the
// processes of its pid namespace when it has one of its own; else the init and its descendants.
Result<std::vector<pid_t>> container_pids(const Running& c) {
  std::vector<pid_t> pids;
  if (auto cg = own_cgroup(c.init, c.rec.id)) {
    BERTH_TRY(pids, cgroup_procs(*cg));
  } else {
    std::error_code ec;
    auto ns = fs::read_symlink("/proc/" + std::to_string(c.init) + "/ns/pid", ec);
    if (ec) {
      return fail(Errc::Conflict, "container " + c.rec.name + ": its process " +
                                      std::to_string(c.init) + " is gone");
    }
    auto own = fs::read_symlink("/proc/self/ns/pid", ec);
    if (!ec && own != ns) {
      for (pid_t p : proc_pids()) {
        std::error_code ec2;
        if (fs::read_symlink("/proc/" + std::to_string(p) + "/ns/pid", ec2) == ns && !ec2) {
          pids.push_back(p);
        }
      }
    } else {
      std::multimap<pid_t, pid_t> children;
      for (pid_t p : proc_pids()) {
        if (auto pp = stat_ppid(p)) {
          children.emplace(static_cast<pid_t>(std::atol(pp->c_str())), p);
        }
      }
      std::vector<pid_t> todo{c.init};
      while (!todo.empty()) {
        pid_t p = todo.back();
        todo.pop_back();
        pids.push_back(p);
        auto [b, e] = children.equal_range(p);
        for (auto it = b; it != e; ++it) {
          todo.push_back(it->second);
        }
      }
    }
  }
  std::sort(pids.begin(), pids.end());
  pids.erase(std::unique(pids.begin(), pids.end()), pids.end());
  if (pids.empty()) {
    return fail(Errc::Conflict, "container " + c.rec.name + ": no process of it is left");
  }
  return pids;
}

// ---- Docker: the host's ps(1) ----

struct PsRun {
  int status = 0;  // as waitpid reports it
  std::string out;
  std::string err;
};

Result<PsRun> run_ps(const std::vector<std::string>& args) {
  int outp[2];
  int errp[2];
  if (::pipe2(outp, O_CLOEXEC) != 0) {
    return fail_errno("pipe", "for ps's output");
  }
  UniqueFd out_r(outp[0]), out_w(outp[1]);
  if (::pipe2(errp, O_CLOEXEC) != 0) {
    return fail_errno("pipe", "for ps's errors");
  }
  UniqueFd err_r(errp[0]), err_w(errp[1]);
  // ps starts with the default signal state, whatever the caller's threads block or ignore.
  util::SpawnSetup spawn;
  BERTH_TRYV(spawn.init("ps"));
  posix_spawn_file_actions_t* fa = spawn.actions();
  int rc = posix_spawn_file_actions_addopen(fa, 0, "/dev/null", O_RDONLY, 0);
  rc = rc != 0 ? rc : posix_spawn_file_actions_adddup2(fa, out_w.get(), 1);
  rc = rc != 0 ? rc : posix_spawn_file_actions_adddup2(fa, err_w.get(), 2);
  rc = rc != 0 ? rc : posix_spawn_file_actions_addclosefrom_np(fa, 3);
  if (rc != 0) {
    return fail_errno("prepare to run", "ps", rc);
  }
  std::vector<std::string> argv{"ps"};
  argv.insert(argv.end(), args.begin(), args.end());
  std::vector<char*> cargv;
  for (auto& a : argv) {
    cargv.push_back(a.data());
  }
  cargv.push_back(nullptr);
  pid_t pid = 0;
  rc = ::posix_spawnp(&pid, "ps", fa, spawn.attr(), cargv.data(), environ);
  if (rc == ENOENT) {
    return fail(Error(Errc::Internal,
                      "ps(1) is not installed on this host (PATH=" +
                          std::string(::getenv("PATH") ? ::getenv("PATH") : "") +
                          "): install procps (apt-get install procps), or list the container's "
                          "processes with format descriptors (berth top CONTAINER pid user args)",
                      ENOENT));
  }
  if (rc != 0) {
    return fail_errno("run", "ps", rc);
  }
  out_w.reset();
  err_w.reset();
  PsRun r;
  pollfd fds[2] = {{out_r.get(), POLLIN, 0}, {err_r.get(), POLLIN, 0}};
  std::string* bufs[2] = {&r.out, &r.err};
  int open_fds = 2;
  Result<void> read_error;
  while (open_fds > 0) {
    int n = ::poll(fds, 2, -1);
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      read_error = fail_errno("poll", "ps's output");
      break;
    }
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || fds[i].revents == 0) {
        continue;
      }
      char buf[65536];
      ssize_t got = ::read(fds[i].fd, buf, sizeof(buf));
      if (got < 0 && errno == EINTR) {
        continue;
      }
      if (got < 0) {
        read_error = fail_errno("read", "ps's output");
      }
      if (got <= 0) {
        fds[i].fd = -1;
        --open_fds;
        continue;
      }
      bufs[i]->append(buf, static_cast<size_t>(got));
    }
    if (!read_error) {
      break;
    }
  }
  out_r.reset();
  err_r.reset();
  while (::waitpid(pid, &r.status, 0) < 0) {
    if (errno != EINTR) {
      return fail_errno("wait for", "ps (pid " + std::to_string(pid) + ")");
    }
  }
  if (!read_error) {
    return fail(std::move(read_error).error());
  }
  return r;
}

std::string ps_failure(const std::vector<std::string>& args, const PsRun& r) {
  std::string why = r.err.substr(0, r.err.find('\n'));
  if (why.empty()) {
    why = WIFEXITED(r.status) ? "exit status " + std::to_string(WEXITSTATUS(r.status))
                              : "killed by signal " + std::to_string(WTERMSIG(r.status));
  }
  return "ps " + join(args, " ") + ": " + why;
}

// Docker's validatePSArgs: a column other than pid named PID would be taken for the pid column.
Result<void> validate_ps_args(const std::vector<std::string>& args) {
  static const std::regex re(R"(\s+(\S*)=\s*(PID\S*))");
  const std::string all = " " + join(args, " ");
  for (std::sregex_iterator it(all.begin(), all.end(), re), end; it != end; ++it) {
    if ((*it)[1].str() != "pid") {
      return fail(Errc::InvalidArgument,
                  "cannot use a custom PID column header: specifying \"" + (*it)[1].str() + "=" +
                      (*it)[2].str() +
                      "\" is not allowed (berth finds the container's processes by ps's own PID "
                      "column; give that header to the pid column only)");
    }
  }
  return {};
}

// One ps line in as many fields as there are titles; the last one (the command) keeps its spaces.
std::vector<std::string> split_row(std::string_view line, size_t n) {
  std::vector<std::string> out;
  size_t i = 0;
  while (out.size() < n) {
    while (i < line.size() && std::isspace(static_cast<unsigned char>(line[i]))) {
      ++i;
    }
    if (i >= line.size()) {
      break;
    }
    size_t start = i;
    if (out.size() + 1 == n) {
      size_t stop = line.size();
      while (stop > start && std::isspace(static_cast<unsigned char>(line[stop - 1]))) {
        --stop;
      }
      out.emplace_back(line.substr(start, stop - start));
      break;
    }
    while (i < line.size() && !std::isspace(static_cast<unsigned char>(line[i]))) {
      ++i;
    }
    out.emplace_back(line.substr(start, i - start));
  }
  out.resize(n);
  return out;
}

Result<Rows> parse_ps(const std::string& output, const std::vector<pid_t>& pids) {
  std::istringstream is(output);
  std::string line;
  std::getline(is, line);
  Rows rows;
  rows.push_back(split_ws(line));
  const std::vector<std::string> titles = rows[0];  // a copy: rows grows
  auto at = std::find(titles.begin(), titles.end(), "PID");
  if (at == titles.end()) {
    return fail(Errc::InvalidArgument,
                "ps printed no PID column (titles: " + join(titles, " ") +
                    "): berth needs it to find the container's processes; keep pid among the "
                    "columns (e.g. -o pid,comm)");
  }
  const size_t pid_col = static_cast<size_t>(at - titles.begin());
  bool last_kept = false;
  while (std::getline(is, line)) {
    if (split_ws(line).empty()) {
      continue;
    }
    auto fields = split_row(line, titles.size());
    const std::string& p = fields[pid_col];
    if (p == "-") {  // a thread of the process above (ps -L, m)
      if (last_kept) {
        rows.push_back(std::move(fields));
      }
      continue;
    }
    if (p.empty() || p.find_first_not_of("0123456789") != std::string::npos) {
      return fail(Errc::Internal, "ps printed an unexpected PID '" + p + "' in: " + line);
    }
    last_kept = std::binary_search(pids.begin(), pids.end(), static_cast<pid_t>(std::stol(p)));
    if (last_kept) {
      rows.push_back(std::move(fields));
    }
  }
  return rows;
}

// ---- Podman: format descriptors, in the container's view ----

struct IdRange {
  uint64_t inside = 0;
  uint64_t outside = 0;
  uint64_t count = 0;
};

std::vector<IdRange> read_id_map(const std::string& path) {
  std::vector<IdRange> out;
  if (auto text = util::read_file(path)) {
    std::istringstream is(*text);
    IdRange r;
    while (is >> r.inside >> r.outside >> r.count) {
      out.push_back(r);
    }
  }
  return out;
}

// A host id as the container's user namespace sees it (the overflow id when unmapped).
std::string to_inside(const std::string& host, const std::vector<IdRange>& map) {
  if (map.empty() || host.empty()) {
    return host;
  }
  uint64_t h = std::strtoull(host.c_str(), nullptr, 10);
  for (const auto& r : map) {
    if (h >= r.outside && h - r.outside < r.count) {
      return std::to_string(r.inside + (h - r.outside));
    }
  }
  return "65534";
}

// id -> name from a passwd or group file's text.
std::map<std::string, std::string> id_names(const std::string& text) {
  std::map<std::string, std::string> out;
  std::istringstream is(text);
  std::string line;
  while (std::getline(is, line)) {
    size_t c1 = line.find(':');
    size_t c2 = c1 == std::string::npos ? c1 : line.find(':', c1 + 1);
    size_t c3 = c2 == std::string::npos ? c2 : line.find(':', c2 + 1);
    if (c3 != std::string::npos) {
      out.emplace(line.substr(c2 + 1, c3 - c2 - 1), line.substr(0, c1));
    }
  }
  return out;
}

// A file of the container's root (etc/passwd), resolved inside that root; "" when unreadable. A
// container's FIFO or symlink cannot make berth block or read a host file.
std::string read_in_root(int root_fd, const char* rel) {
  open_how how{};
  how.flags = O_RDONLY | O_NONBLOCK | O_CLOEXEC;
  how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
  long fd = ::syscall(SYS_openat2, root_fd, rel, &how, sizeof how);
  if (fd < 0) {
    return "";
  }
  UniqueFd f(static_cast<int>(fd));
  struct stat st {};
  if (::fstat(f.get(), &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > (16 << 20)) {
    return "";
  }
  return util::read_all(f.get(), rel).value_or("");
}

struct Proc {
  pid_t hpid = 0;
  std::string comm;
  std::vector<std::string> stat;  // the fields after "(comm)": [0] state, [1] ppid, ...
  std::string status;
  std::string cmdline;
};

std::optional<Proc> read_proc(pid_t pid) {
  const std::string dir = "/proc/" + std::to_string(pid);
  auto stat = util::read_file(dir + "/stat");
  auto status = util::read_file(dir + "/status");
  if (!stat || !status) {
    return std::nullopt;  // gone meanwhile
  }
  size_t lp = stat->find('(');
  size_t rp = stat->rfind(')');
  if (lp == std::string::npos || rp == std::string::npos || rp < lp) {
    return std::nullopt;
  }
  Proc p;
  p.hpid = pid;
  p.comm = stat->substr(lp + 1, rp - lp - 1);
  p.stat = split_ws(std::string_view(*stat).substr(rp + 1));
  if (p.stat.size() < 22) {
    return std::nullopt;
  }
  p.status = std::move(*status);
  if (auto cl = util::read_file(dir + "/cmdline")) {
    p.cmdline = std::move(*cl);
  }
  return p;
}

// The values of a /proc/PID/status line ("Uid:" -> its four ids).
std::vector<std::string> status_values(const std::string& status, std::string_view key) {
  const std::string k = std::string(key) + ":";
  size_t at = 0;
  if (!status.starts_with(k)) {
    at = status.find("\n" + k);
    if (at == std::string::npos) {
      return {};
    }
    ++at;
  }
  at += k.size();
  size_t eol = status.find('\n', at);
  return split_ws(std::string_view(status).substr(at, eol == std::string::npos ? eol : eol - at));
}

std::string nth(const std::vector<std::string>& v, size_t i, const std::string& fallback = "?") {
  return i < v.size() ? v[i] : fallback;
}

// Go's time.Duration String(): "0s", "730ms", "12.34s", "5m3.2s", "1h0m5s".
std::string go_duration(int64_t nanos) {
  if (nanos <= 0) {
    return "0s";
  }
  auto frac = [](int64_t v, int64_t unit) {
    std::string f = std::to_string(v % unit + unit).substr(1);  // zero-padded
    while (!f.empty() && f.back() == '0') {
      f.pop_back();
    }
    return f.empty() ? "" : "." + f;
  };
  char buf[96];
  if (nanos < 1000) {
    std::snprintf(buf, sizeof(buf), "%lldns", static_cast<long long>(nanos));
    return buf;
  }
  if (nanos < 1000000) {
    return std::to_string(nanos / 1000) + frac(nanos, 1000) + "µs";
  }
  if (nanos < 1000000000) {
    return std::to_string(nanos / 1000000) + frac(nanos, 1000000) + "ms";
  }
  const int64_t secs = nanos / 1000000000;
  std::string s = std::to_string(secs % 60) + frac(nanos, 1000000000) + "s";
  if (secs >= 60) {
    s = std::to_string(secs / 60 % 60) + "m" + s;
  }
  if (secs >= 3600) {
    s = std::to_string(secs / 3600) + "h" + s;
  }
  return s;
}

// What the descriptors read, once per `top`.
struct View {
  size_t level = 1;  // entries of the init's NSpid: the depth of the container's pid namespace
  std::vector<IdRange> uids, gids;
  std::map<std::string, std::string> users, groups;            // in the container
  std::map<std::string, std::string> host_users, host_groups;  // on the host
  int64_t ticks = 100;
  int64_t uptime_ticks = 0;
  int64_t boot_nanos = 0;
};

// A pid of the process's NSpid-like list ("NSpid", "NSpgid") in the container's namespace.
std::string ns_value(const View& v, const Proc& p, std::string_view key, const std::string& host) {
  auto list = status_values(p.status, key);
  if (list.empty()) {
    return host;  // a kernel without NSpid (< 4.1): only the host's numbers are known
  }
  return list.size() >= v.level ? list[v.level - 1] : "0";
}

std::string name_of(const std::map<std::string, std::string>& names, const std::string& id) {
  auto it = names.find(id);
  return it == names.end() ? id : it->second;
}

std::string container_ppid(const View& v, const Proc& p) {
  const std::string& host = p.stat[1];
  if (host == "0") {
    return "0";
  }
  auto parent = util::read_file("/proc/" + host + "/status");
  if (!parent) {
    return "0";
  }
  auto list = status_values(*parent, "NSpid");
  if (list.empty()) {
    return host;
  }
  // A parent outside the container's namespace (the runtime, the monitor) is 0 there.
  return list.size() >= v.level ? list[v.level - 1] : "0";
}

int64_t elapsed_ticks(const View& v, const Proc& p) {
  return std::max<int64_t>(0, v.uptime_ticks - std::atoll(p.stat[19].c_str()));
}

int64_t cpu_ticks(const Proc& p) {
  return std::atoll(p.stat[11].c_str()) + std::atoll(p.stat[12].c_str());
}

std::string tty_name(const std::string& tty_nr) {
  const uint64_t nr = std::strtoull(tty_nr.c_str(), nullptr, 10);
  if (nr == 0) {
    return "?";
  }
  const uint64_t major = (nr >> 8) & 0xfff;
  const uint64_t minor = (nr & 0xff) | ((nr >> 12) & 0xfff00);
  if (major >= 136 && major <= 143) {
    return "pts/" + std::to_string((major - 136) * 256 + minor);
  }
  if (major == 4) {
    return minor < 64 ? "tty" + std::to_string(minor) : "ttyS" + std::to_string(minor - 64);
  }
  if (major == 5 && minor == 1) {
    return "console";
  }
  return "?";
}

std::string groups_of(const std::vector<std::string>& ids,
                      const std::map<std::string, std::string>& names,
                      const std::vector<IdRange>* map) {
  std::vector<std::string> out;
  for (const auto& g : ids) {
    out.push_back(name_of(names, map ? to_inside(g, *map) : g));
  }
  return join(out, ",");
}

using DescriptorFn = std::string (*)(const View&, const Proc&);

struct Descriptor {
  const char* code;  // "%C", or "" when there is none
  const char* normal;
  const char* header;
  DescriptorFn fn;
};

// Podman's (psgo's) descriptors, with their codes and headers.
const Descriptor kDescriptors[] = {
    {"%C", "pcpu", "%CPU",
     [](const View& v, const Proc& p) {
       const int64_t el = elapsed_ticks(v, p);
       char b[32];
       std::snprintf(
           b, sizeof(b), "%.3f",
           el > 0 ? 100.0 * static_cast<double>(cpu_ticks(p)) / static_cast<double>(el) : 0.0);
       return std::string(b);
     }},
    {"%G", "group", "GROUP",
     [](const View& v, const Proc& p) {
       return name_of(v.groups, to_inside(nth(status_values(p.status, "Gid"), 1, ""), v.gids));
     }},
    {"", "groups", "GROUPS",
     [](const View& v, const Proc& p) {
       return groups_of(status_values(p.status, "Groups"), v.groups, &v.gids);
     }},
    {"%P", "ppid", "PPID", [](const View& v, const Proc& p) { return container_ppid(v, p); }},
    {"%U", "user", "USER",
     [](const View& v, const Proc& p) {
       return name_of(v.users, to_inside(nth(status_values(p.status, "Uid"), 1, ""), v.uids));
     }},
    {"", "uid", "UID",
     [](const View& v, const Proc& p) {
       return to_inside(nth(status_values(p.status, "Uid"), 1, ""), v.uids);
     }},
    {"%a", "args", "COMMAND",
     [](const View&, const Proc& p) {
       std::string cmd;
       for (char c : p.cmdline) {
         cmd += c == '\0' ? ' ' : c;
       }
       while (!cmd.empty() && cmd.back() == ' ') {
         cmd.pop_back();
       }
       return cmd.empty() ? "[" + p.comm + "]" : cmd;
     }},
    {"%c", "comm", "COMMAND", [](const View&, const Proc& p) { return p.comm; }},
    {"%g", "rgroup", "RGROUP",
     [](const View& v, const Proc& p) {
       return name_of(v.groups, to_inside(nth(status_values(p.status, "Gid"), 0, ""), v.gids));
     }},
    {"%n", "nice", "NI", [](const View&, const Proc& p) { return p.stat[16]; }},
    {"%p", "pid", "PID",
     [](const View& v, const Proc& p) { return ns_value(v, p, "NSpid", std::to_string(p.hpid)); }},
    {"%r", "pgid", "PGID",
     [](const View& v, const Proc& p) { return ns_value(v, p, "NSpgid", p.stat[2]); }},
    {"%t", "etime", "ELAPSED",
     [](const View& v, const Proc& p) {
       return go_duration(elapsed_ticks(v, p) * (1000000000 / v.ticks));
     }},
    {"%u", "ruser", "RUSER",
     [](const View& v, const Proc& p) {
       return name_of(v.users, to_inside(nth(status_values(p.status, "Uid"), 0, ""), v.uids));
     }},
    {"%x", "time", "TIME",
     [](const View& v, const Proc& p) {
       return go_duration(cpu_ticks(p) * (1000000000 / v.ticks));
     }},
    {"%y", "tty", "TTY", [](const View&, const Proc& p) { return tty_name(p.stat[4]); }},
    {"%z", "vsz", "VSZ",
     [](const View&, const Proc& p) {
       return std::to_string(std::strtoull(p.stat[20].c_str(), nullptr, 10) / 1024);
     }},
    {"", "seccomp", "SECCOMP",
     [](const View&, const Proc& p) {
       const std::string mode = nth(status_values(p.status, "Seccomp"), 0, "");
       return std::string(mode == "0"   ? "disabled"
                          : mode == "1" ? "strict"
                          : mode == "2" ? "filter"
                                        : "?");
     }},
    {"", "hpid", "HPID", [](const View&, const Proc& p) { return std::to_string(p.hpid); }},
    {"", "huser", "HUSER",
     [](const View& v, const Proc& p) {
       return name_of(v.host_users, nth(status_values(p.status, "Uid"), 1, "?"));
     }},
    {"", "huid", "HUID",
     [](const View&, const Proc& p) { return nth(status_values(p.status, "Uid"), 1); }},
    {"", "hgroup", "HGROUP",
     [](const View& v, const Proc& p) {
       return name_of(v.host_groups, nth(status_values(p.status, "Gid"), 1, "?"));
     }},
    {"", "hgroups", "HGROUPS",
     [](const View& v, const Proc& p) {
       return groups_of(status_values(p.status, "Groups"), v.host_groups, nullptr);
     }},
    {"", "rss", "RSS",
     [](const View&, const Proc& p) { return nth(status_values(p.status, "VmRSS"), 0, "0"); }},
    {"", "state", "STATE",
     [](const View&, const Proc& p) { return nth(status_values(p.status, "State"), 0); }},
    {"", "stime", "STIME",
     [](const View& v, const Proc& p) {
       const int64_t start = std::atoll(p.stat[19].c_str());
       return go_time(v.boot_nanos + start * (1000000000 / v.ticks));
     }},
};

const Descriptor* find_descriptor(const std::string& d) {
  for (const auto& k : kDescriptors) {
    if (d == k.normal || (k.code[0] != '\0' && d == k.code)) {
      return &k;
    }
  }
  return nullptr;
}

Result<View> make_view(const Running& c) {
  View v;
  const std::string init = "/proc/" + std::to_string(c.init);
  auto status = util::read_file(init + "/status");
  if (!status) {
    return fail(Errc::Conflict,
                "container " + c.rec.name + ": its process " + std::to_string(c.init) + " is gone");
  }
  v.level = std::max<size_t>(1, status_values(*status, "NSpid").size());
  v.uids = read_id_map(init + "/uid_map");
  v.gids = read_id_map(init + "/gid_map");
  if (int fd = ::open((init + "/root").c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC); fd >= 0) {
    UniqueFd root(fd);
    v.users = id_names(read_in_root(root.get(), "etc/passwd"));
    v.groups = id_names(read_in_root(root.get(), "etc/group"));
  }
  if (auto pw = util::read_file("/etc/passwd")) {
    v.host_users = id_names(*pw);
  }
  if (auto gr = util::read_file("/etc/group")) {
    v.host_groups = id_names(*gr);
  }
  const long ticks = ::sysconf(_SC_CLK_TCK);
  v.ticks = ticks > 0 ? ticks : 100;
  auto uptime = util::read_file("/proc/uptime");
  if (!uptime) {
    return fail(std::move(uptime).error().wrap("top"));
  }
  v.uptime_ticks = std::llround(std::atof(uptime->c_str()) * static_cast<double>(v.ticks));
  if (auto st = util::read_file("/proc/stat")) {
    auto b = st->find("\nbtime ");
    if (b != std::string::npos) {
      v.boot_nanos = std::atoll(st->c_str() + b + 7) * 1000000000;
    }
  }
  return v;
}

}  // namespace

std::vector<std::string> top_descriptors() {
  std::vector<std::string> out;
  for (const auto& d : kDescriptors) {
    out.push_back(d.normal);
  }
  std::sort(out.begin(), out.end());
  return out;
}

Result<std::vector<std::vector<std::string>>> top_ps(engine::Engine& eng,
                                                     const std::string& name_or_id,
                                                     const std::vector<std::string>& ps_args) {
  std::vector<std::string> args = ps_args.empty() ? std::vector<std::string>{"-ef"} : ps_args;
  BERTH_TRYV(validate_ps_args(args));
  BERTH_TRY(auto c, running(eng, name_or_id));
  BERTH_TRY(auto pids, container_pids(c));
  std::string q = "-q";
  for (size_t i = 0; i < pids.size(); ++i) {
    q += (i > 0 ? "," : "") + std::to_string(pids[i]);
  }
  auto with_q = args;
  with_q.push_back(q);
  BERTH_TRY(auto r, run_ps(with_q));
  if (!WIFEXITED(r.status) || WEXITSTATUS(r.status) != 0) {
    // Some options (forest listings: f, --forest) refuse -q: all processes, filtered here.
    BERTH_TRY(r, run_ps(args));
    if (!WIFEXITED(r.status) || WEXITSTATUS(r.status) != 0) {
      return fail(Errc::InvalidArgument, "top " + c.rec.name + ": " + ps_failure(args, r));
    }
  }
  auto rows = parse_ps(r.out, pids);
  if (!rows) {
    return fail(std::move(rows).error().wrap("top " + c.rec.name + ": ps " + join(args, " ")));
  }
  return std::move(*rows);
}

Result<std::vector<std::vector<std::string>>> top(engine::Engine& eng,
                                                  const std::string& name_or_id,
                                                  const std::vector<std::string>& descriptors) {
  // Podman also takes comma-separated descriptors ("pid,user").
  std::vector<std::string> words;
  for (const auto& d : descriptors) {
    std::istringstream is(d);
    std::string w;
    while (std::getline(is, w, ',')) {
      if (!w.empty()) {
        words.push_back(w);
      }
    }
  }
  if (descriptors.empty()) {
    words = {"user", "pid", "ppid", "pcpu", "etime", "tty", "time", "args"};
  }
  std::vector<const Descriptor*> chosen;
  std::vector<std::string> unknown;
  for (const auto& w : words) {
    if (const auto* d = find_descriptor(w)) {
      chosen.push_back(d);
    } else {
      unknown.push_back(w);
    }
  }
  if (!unknown.empty() || chosen.empty()) {
    // Not descriptors: ps(1) options, as Docker takes them.
    auto rows = top_ps(eng, name_or_id, descriptors);
    if (rows || chosen.empty() || rows.error().code() == Errc::Conflict ||
        rows.error().code() == Errc::NotFound) {
      return rows;
    }
    return fail(
        Errc::InvalidArgument,
        "unknown descriptor '" + join(unknown, "', '") + "': give format descriptors (" +
            join(top_descriptors(), ", ") +
            ") or ps(1) options; as ps options these failed too: " + rows.error().message());
  }
  BERTH_TRY(auto c, running(eng, name_or_id));
  BERTH_TRY(auto pids, container_pids(c));
  BERTH_TRY(auto view, make_view(c));
  std::vector<std::pair<long, std::vector<std::string>>> procs;
  for (pid_t pid : pids) {
    auto p = read_proc(pid);
    if (!p) {
      continue;
    }
    std::vector<std::string> row;
    for (const auto* d : chosen) {
      row.push_back(d->fn(view, *p));
    }
    procs.emplace_back(std::atol(ns_value(view, *p, "NSpid", std::to_string(pid)).c_str()),
                       std::move(row));
  }
  std::stable_sort(procs.begin(), procs.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  Rows rows;
  rows.emplace_back();
  for (const auto* d : chosen) {
    rows[0].push_back(d->header);
  }
  for (auto& [_, row] : procs) {
    rows.push_back(std::move(row));
  }
  return rows;
}

}  // namespace berth::container
