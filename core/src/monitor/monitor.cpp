// berth-monitor: conmon's role for one container, the long-lived half. The CLI's child
// (monitor_setup.cpp) double-forked away, made itself the sub-reaper, bound the attach socket
// and the control fifo, created the container through the runtime and exec'd this program with
// the descriptors it holds:
//
//   berth-monitor CONFIG PID REPORT_FD DIR_FD ATTACH_FD CTL_FD OUT_FD ERR_FD IN_FD   (-1: none)
//
// This program writes the report ({"pid", "monitor_pid"}), then holds the container's stdio: logs
// (k8s-file, with rotation), the attach socket (SOCK_SEQPACKET, conmon's framing: first byte
// 2=stdout 3=stderr from the monitor, raw stdin from clients), the control fifo ("1 ROWS COLS"
// resizes the pty, "2" closes stdin, "3" says the container was started). While the container
// runs it runs the periodic commands of CONFIG (health checks: fork+exec, one at a time). When the
// container exits it records an OOM kill (the memory cgroup's oom_kill counter), writes the exit
// code atomically, tells attached clients (a packet of type 4 carrying the code as text), runs
// `berth container cleanup`, and exits.
//
// Single-threaded, one epoll loop, linked statically against libc only (no JSON library, no
// logging library, no runtime): it stays resident for the container's life, so it is kept small
// (about 1 MiB RSS, most of it the binary's pages shared by every monitor).
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "berth/container/log_format.hpp"

namespace {

namespace bc = berth::container;

constexpr uint8_t kStdout = 2;
constexpr uint8_t kStderr = 3;
constexpr uint8_t kExit = 4;

int64_t now_ns(clockid_t clock = CLOCK_REALTIME) {
  timespec ts{};
  clock_gettime(clock, &ts);
  return int64_t{ts.tv_sec} * 1000000000 + ts.tv_nsec;
}

int64_t mono_ms() {
  return now_ns(CLOCK_MONOTONIC) / 1000000;
}

bool write_all(int fd, const char* p, size_t n) {
  while (n > 0) {
    ssize_t w = ::write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) {
        continue;
      }
      return false;
    }
    p += w;
    n -= static_cast<size_t>(w);
  }
  return true;
}

bool read_file(const std::string& path, std::string& out) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return false;
  }
  out.clear();
  char buf[4096];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n <= 0) {
      break;
    }
    out.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return true;
}

// Writes `content` to dir/name through a temporary file and a rename.
void write_atomic(int dir_fd, const char* name, const std::string& content) {
  std::string tmp = std::string(".") + name + ".tmp";
  int fd = ::openat(dir_fd, tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) {
    return;
  }
  bool ok = write_all(fd, content.data(), content.size());
  ::close(fd);
  if (ok) {
    ::renameat(dir_fd, tmp.c_str(), dir_fd, name);
  } else {
    ::unlinkat(dir_fd, tmp.c_str(), 0);
  }
}

// ---- the configuration: a JSON object written by the CLI (a minimal reader: objects, arrays,
// strings with escapes, numbers, booleans, null).

struct Value {
  enum Kind { Null, Bool, Number, String, Array, Object } kind = Null;
  bool b = false;
  int64_t num = 0;
  std::string str;
  std::vector<Value> items;
  std::vector<std::pair<std::string, Value>> fields;

  const Value* get(std::string_view key) const {
    for (const auto& [k, v] : fields) {
      if (k == key) {
        return &v;
      }
    }
    return nullptr;
  }
  std::string string_or(std::string_view key, std::string def) const {
    const Value* v = get(key);
    return v && v->kind == String ? v->str : def;
  }
  int64_t number_or(std::string_view key, int64_t def) const {
    const Value* v = get(key);
    return v && v->kind == Number ? v->num : def;
  }
  bool bool_or(std::string_view key, bool def) const {
    const Value* v = get(key);
    return v && v->kind == Bool ? v->b : def;
  }
  std::vector<std::string> strings(std::string_view key) const {
    std::vector<std::string> out;
    if (const Value* v = get(key); v && v->kind == Array) {
      for (const auto& i : v->items) {
        out.push_back(i.str);
      }
    }
    return out;
  }
};

class Reader {
 public:
  explicit Reader(std::string_view s) : s_(s) {}
  bool parse(Value& out) {
    if (!value(out, 0)) {
      return false;
    }
    ws();
    return pos_ == s_.size();
  }

 private:
  void ws() {
    while (pos_ < s_.size() &&
           (s_[pos_] == ' ' || s_[pos_] == '\n' || s_[pos_] == '\t' || s_[pos_] == '\r')) {
      ++pos_;
    }
  }
  bool lit(std::string_view w) {
    if (s_.substr(pos_, w.size()) != w) {
      return false;
    }
    pos_ += w.size();
    return true;
  }
  static void utf8(std::string& out, uint32_t cp) {
    if (cp < 0x80) {
      out += static_cast<char>(cp);
    } else if (cp < 0x800) {
      out += static_cast<char>(0xC0 | (cp >> 6));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
      out += static_cast<char>(0xE0 | (cp >> 12));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
      out += static_cast<char>(0xF0 | (cp >> 18));
      out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    }
  }
  bool hex4(uint32_t& cp) {
    if (pos_ + 4 > s_.size()) {
      return false;
    }
    cp = 0;
    for (int i = 0; i < 4; ++i) {
      char c = s_[pos_++];
      cp <<= 4;
      if (c >= '0' && c <= '9') {
        cp |= static_cast<uint32_t>(c - '0');
      } else if (c >= 'a' && c <= 'f') {
        cp |= static_cast<uint32_t>(c - 'a' + 10);
      } else if (c >= 'A' && c <= 'F') {
        cp |= static_cast<uint32_t>(c - 'A' + 10);
      } else {
        return false;
      }
    }
    return true;
  }
  bool string(std::string& out) {
    if (pos_ >= s_.size() || s_[pos_] != '"') {
      return false;
    }
    ++pos_;
    while (pos_ < s_.size()) {
      char c = s_[pos_++];
      if (c == '"') {
        return true;
      }
      if (c != '\\') {
        out += c;
        continue;
      }
      if (pos_ >= s_.size()) {
        return false;
      }
      char e = s_[pos_++];
      switch (e) {
        case 'n':
          out += '\n';
          break;
        case 't':
          out += '\t';
          break;
        case 'r':
          out += '\r';
          break;
        case 'b':
          out += '\b';
          break;
        case 'f':
          out += '\f';
          break;
        case 'u': {
          uint32_t cp = 0;
          if (!hex4(cp)) {
            return false;
          }
          if (cp >= 0xD800 && cp < 0xDC00 && lit("\\u")) {
            uint32_t lo = 0;
            if (!hex4(lo)) {
              return false;
            }
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
          }
          utf8(out, cp);
          break;
        }
        default:
          out += e;
      }
    }
    return false;
  }
  bool value(Value& v, int depth) {
    if (depth > 32) {
      return false;
    }
    ws();
    if (pos_ >= s_.size()) {
      return false;
    }
    char c = s_[pos_];
    if (c == '{') {
      ++pos_;
      v.kind = Value::Object;
      ws();
      if (lit("}")) {
        return true;
      }
      for (;;) {
        ws();
        std::string key;
        if (!string(key)) {
          return false;
        }
        ws();
        if (!lit(":")) {
          return false;
        }
        Value item;
        if (!value(item, depth + 1)) {
          return false;
        }
        v.fields.emplace_back(std::move(key), std::move(item));
        ws();
        if (lit(",")) {
          continue;
        }
        return lit("}");
      }
    }
    if (c == '[') {
      ++pos_;
      v.kind = Value::Array;
      ws();
      if (lit("]")) {
        return true;
      }
      for (;;) {
        Value item;
        if (!value(item, depth + 1)) {
          return false;
        }
        v.items.push_back(std::move(item));
        ws();
        if (lit(",")) {
          continue;
        }
        return lit("]");
      }
    }
    if (c == '"') {
      v.kind = Value::String;
      return string(v.str);
    }
    if (lit("true")) {
      v.kind = Value::Bool;
      v.b = true;
      return true;
    }
    if (lit("false")) {
      v.kind = Value::Bool;
      return true;
    }
    if (lit("null")) {
      return true;
    }
    v.kind = Value::Number;
    char* end = nullptr;
    std::string num(s_.substr(pos_, 32));
    double d = std::strtod(num.c_str(), &end);
    if (end == num.c_str()) {
      return false;
    }
    pos_ += static_cast<size_t>(end - num.c_str());
    v.num = static_cast<int64_t>(d);
    return true;
  }

  std::string_view s_;
  size_t pos_ = 0;
};

struct Periodic {
  int64_t interval_ms = 0;
  int64_t first_after_ms = 0;
  // Until start_period_ms after the start, and until a run exits 0, runs are start_interval_ms
  // apart (a health check's StartInterval); 0: interval_ms throughout.
  int64_t start_interval_ms = 0;
  int64_t start_period_ms = 0;
  std::vector<std::string> argv;
  int64_t due = -1;          // monotonic ms; -1 until the container is started
  int64_t started = -1;      // monotonic ms of the container's start
  bool passed_once = false;  // a run exited 0
};

struct Config {
  std::string id;
  std::string log_driver = "k8s-file";
  std::string log_path;
  int64_t log_max_size = -1;
  bool tty = false;
  bool stdin_once = false;
  std::vector<std::string> cleanup;
  std::vector<Periodic> periodic;
};

bool load_config(const char* path, Config& c, std::string& err) {
  std::string text;
  if (!read_file(path, text)) {
    err = std::string("read ") + path + ": " + std::strerror(errno);
    return false;
  }
  Value j;
  if (!Reader(text).parse(j) || j.kind != Value::Object) {
    err = std::string(path) + ": not a JSON object";
    return false;
  }
  c.id = j.string_or("id", "");
  c.log_driver = j.string_or("log_driver", c.log_driver);
  c.log_path = j.string_or("log_path", "");
  c.log_max_size = j.number_or("log_max_size", -1);
  c.tty = j.bool_or("tty", false);
  c.stdin_once = j.bool_or("stdin_once", false);
  c.cleanup = j.strings("cleanup");
  if (const Value* p = j.get("periodic"); p && p->kind == Value::Array) {
    for (const auto& item : p->items) {
      Periodic pc;
      pc.interval_ms = item.number_or("interval_ms", 0);
      pc.first_after_ms = item.number_or("first_after_ms", 0);
      pc.start_interval_ms = item.number_or("start_interval_ms", 0);
      pc.start_period_ms = item.number_or("start_period_ms", 0);
      pc.argv = item.strings("argv");
      if (!pc.argv.empty() && pc.interval_ms > 0) {
        c.periodic.push_back(std::move(pc));
      }
    }
  }
  return true;
}

// The memory cgroup's oom_kill counter file of `pid`: v1 memory.oom_control, else v2
// memory.events (the "oom_kill N" line in both).
std::string oom_counter_file(pid_t pid) {
  std::string text;
  if (!read_file("/proc/" + std::to_string(pid) + "/cgroup", text)) {
    return "";
  }
  std::string v2;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    std::string line = text.substr(pos, nl == std::string::npos ? std::string::npos : nl - pos);
    pos = nl == std::string::npos ? text.size() : nl + 1;
    size_t c1 = line.find(':');
    size_t c2 = c1 == std::string::npos ? c1 : line.find(':', c1 + 1);
    if (c2 == std::string::npos) {
      continue;
    }
    std::string ctrls = "," + line.substr(c1 + 1, c2 - c1 - 1) + ",";
    std::string path = line.substr(c2 + 1);
    if (ctrls.find(",memory,") != std::string::npos) {
      return "/sys/fs/cgroup/memory" + path + "/memory.oom_control";
    }
    if (ctrls == ",,") {
      v2 = path;
    }
  }
  if (!v2.empty()) {
    for (const char* base : {"/sys/fs/cgroup", "/sys/fs/cgroup/unified"}) {
      std::string f = base + v2 + "/memory.events";
      if (::access(f.c_str(), R_OK) == 0) {
        return f;
      }
    }
  }
  return "";
}

int64_t oom_kills(const std::string& file) {
  std::string text;
  if (file.empty() || !read_file(file, text)) {
    return -1;
  }
  size_t p = text.find("oom_kill ");
  if (p == std::string::npos) {
    return -1;
  }
  return std::strtoll(text.c_str() + p + 9, nullptr, 10);
}

int arg_fd(const char* s) {
  return std::atoi(s);
}

class Monitor {
 public:
  Monitor(Config c, pid_t pid) : cfg_(std::move(c)), pid_(pid) {}
  int run(int report_fd, int dir_fd, int attach_fd, int ctl_fd, int out_fd, int err_fd, int in_fd);

 private:
  void add(int fd, uint32_t events);
  void on_output(int fd, uint8_t type);
  void write_log(uint8_t type, const char* data, size_t n);
  void write_log_record(std::string_view rec);
  void broadcast(uint8_t type, const char* data, size_t n);
  void on_client(int fd);
  void on_ctl();
  bool cleanup_handed_over();
  void close_stdin();
  void reap();
  void run_periodic();
  int next_timeout_ms() const;
  void finish();
  // Accepts every connection queued on the attach socket (watched for input when `watch`).
  void accept_clients(bool watch);
  void close_fd(int& fd) {
    if (fd >= 0) {
      ::close(fd);
      fd = -1;
    }
  }

  Config cfg_;
  pid_t pid_ = 0;
  int dir_ = -1;
  int epoll_ = -1;
  int attach_ = -1;
  int ctl_ = -1;
  int sigfd_ = -1;
  int stdin_w_ = -1;   // our end of the container's stdin (pipe) or the pty master (dup)
  int stdout_r_ = -1;  // or the pty master
  int stderr_r_ = -1;
  int log_fd_ = -1;
  int64_t log_size_ = 0;
  std::vector<int> clients_;
  bool exited_ = false;
  int exit_code_ = 0;
  std::string oom_file_;
  int64_t oom_base_ = 0;
  pid_t periodic_pid_ = 0;
  size_t periodic_idx_ = 0;
  Periodic* periodic_running_ = nullptr;  // the entry whose run periodic_pid_ is
};

void Monitor::add(int fd, uint32_t events) {
  epoll_event ev{};
  ev.events = events;
  ev.data.fd = fd;
  ::epoll_ctl(epoll_, EPOLL_CTL_ADD, fd, &ev);
}

void Monitor::write_log(uint8_t type, const char* data, size_t n) {
  if (log_fd_ < 0) {
    return;
  }
  std::string all;
  bc::append_log_records(all, now_ns(),
                         type == kStderr ? bc::LogStream::Stderr : bc::LogStream::Stdout,
                         std::string_view(data, n));
  // Record by record, so that rotation splits a large chunk at line boundaries.
  size_t pos = 0;
  while (pos < all.size()) {
    size_t nl = all.find('\n', pos);
    size_t end = nl == std::string::npos ? all.size() : nl + 1;
    write_log_record(std::string_view(all).substr(pos, end - pos));
    pos = end;
  }
}

void Monitor::write_log_record(std::string_view rec) {
  if (bc::needs_rotation(log_size_, static_cast<int64_t>(rec.size()), cfg_.log_max_size)) {
    const std::string old = bc::rotated_path(cfg_.log_path);
    if (::rename(cfg_.log_path.c_str(), old.c_str()) == 0) {
      int fresh =
          ::open(cfg_.log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0600);
      if (fresh >= 0) {
        ::close(log_fd_);
        log_fd_ = fresh;
        log_size_ = 0;
      }
    }
  }
  if (write_all(log_fd_, rec.data(), rec.size())) {
    log_size_ += static_cast<int64_t>(rec.size());
  }
}

void Monitor::broadcast(uint8_t type, const char* data, size_t n) {
  char buf[8193];
  buf[0] = static_cast<char>(type);
  std::memcpy(buf + 1, data, n);
  for (size_t i = 0; i < clients_.size();) {
    ssize_t w = ::send(clients_[i], buf, n + 1, MSG_NOSIGNAL);
    if (w < 0 && errno == EPIPE) {
      ::close(clients_[i]);
      clients_.erase(clients_.begin() + static_cast<std::ptrdiff_t>(i));
    } else {
      ++i;
    }
  }
}

void Monitor::on_output(int fd, uint8_t type) {
  char buf[8192];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n > 0) {
      write_log(type, buf, static_cast<size_t>(n));
      broadcast(type, buf, static_cast<size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n == 0 || (n < 0 && errno != EAGAIN)) {
      // EOF (or EIO on a pty whose slave closed): stop watching.
      ::epoll_ctl(epoll_, EPOLL_CTL_DEL, fd, nullptr);
      if (fd == stdout_r_ && !cfg_.tty) {
        close_fd(stdout_r_);
      } else if (fd == stderr_r_) {
        close_fd(stderr_r_);
      }
    }
    return;
  }
}

void Monitor::close_stdin() {
  if (stdin_w_ < 0) {
    return;
  }
  if (cfg_.tty) {
    // A pty has no half-close: send EOF (^D) as a terminal would.
    const char eot = 4;
    (void)!::write(stdin_w_, &eot, 1);
    return;
  }
  close_fd(stdin_w_);
}

void Monitor::on_client(int fd) {
  char buf[8192];
  ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
  if (n > 0) {
    if (stdin_w_ >= 0) {
      (void)write_all(stdin_w_, buf, static_cast<size_t>(n));
    }
    return;
  }
  if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
    return;
  }
  // The client shut down its side: stdin ends here for a stdin-once container.
  epoll_event ev{};
  ev.events = 0;
  ev.data.fd = fd;
  ::epoll_ctl(epoll_, EPOLL_CTL_MOD, fd, &ev);
  if (n < 0) {
    ::epoll_ctl(epoll_, EPOLL_CTL_DEL, fd, nullptr);
    std::erase(clients_, fd);
    ::close(fd);
    return;
  }
  if (cfg_.stdin_once) {
    close_stdin();
  }
}

void Monitor::on_ctl() {
  char buf[256];
  ssize_t n = ::read(ctl_, buf, sizeof(buf) - 1);
  if (n <= 0) {
    return;
  }
  buf[n] = 0;
  char* save = nullptr;
  for (char* line = strtok_r(buf, "\n", &save); line; line = strtok_r(nullptr, "\n", &save)) {
    int kind = 0, rows = 0, cols = 0;
    if (std::sscanf(line, "%d %d %d", &kind, &rows, &cols) >= 1) {
      if (kind == 1 && cfg_.tty && stdout_r_ >= 0) {
        winsize ws{};
        ws.ws_row = static_cast<unsigned short>(rows);
        ws.ws_col = static_cast<unsigned short>(cols);
        ::ioctl(stdout_r_, TIOCSWINSZ, &ws);
      } else if (kind == 2) {
        close_stdin();
      } else if (kind == 3) {
        // Started: the periodic commands' clocks begin.
        int64_t now = mono_ms();
        for (auto& p : cfg_.periodic) {
          if (p.due < 0) {
            p.due = now + p.first_after_ms;
            p.started = now;
          }
        }
      }
    }
  }
}

void Monitor::reap() {
  signalfd_siginfo si;
  while (::read(sigfd_, &si, sizeof(si)) == sizeof(si)) {
  }
  for (;;) {
    int status = 0;
    pid_t p = ::waitpid(-1, &status, WNOHANG);
    if (p <= 0) {
      return;
    }
    if (p == pid_) {
      exited_ = true;
      exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    } else if (p == periodic_pid_) {
      periodic_pid_ = 0;
      if (periodic_running_ != nullptr && WIFEXITED(status) && WEXITSTATUS(status) == 0) {
        periodic_running_->passed_once = true;
      }
      periodic_running_ = nullptr;
    }
  }
}

// Starts the most overdue periodic command when none runs.
void Monitor::run_periodic() {
  if (periodic_pid_ > 0 || exited_) {
    return;
  }
  int64_t now = mono_ms();
  Periodic* pick = nullptr;
  for (size_t i = 0; i < cfg_.periodic.size(); ++i) {
    Periodic& p = cfg_.periodic[(periodic_idx_ + i) % cfg_.periodic.size()];
    if (p.due >= 0 && p.due <= now && (pick == nullptr || p.due < pick->due)) {
      pick = &p;
    }
  }
  if (pick == nullptr) {
    return;
  }
  ++periodic_idx_;
  // The next run counts from this start; a run that takes longer delays the next.
  const bool starting = pick->start_interval_ms > 0 && !pick->passed_once &&
                        now < pick->started + pick->start_period_ms;
  pick->due = now + (starting ? pick->start_interval_ms : pick->interval_ms);
  std::vector<char*> argv;
  for (auto& a : pick->argv) {
    argv.push_back(a.data());
  }
  argv.push_back(nullptr);
  pid_t c = ::fork();
  if (c == 0) {
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::signal(SIGPIPE, SIG_DFL);
    int null = ::open("/dev/null", O_RDWR);
    ::dup2(null, 0);
    ::dup2(null, 1);
    ::dup2(null, 2);
    ::execv(argv[0], argv.data());
    _exit(127);
  }
  if (c > 0) {
    periodic_pid_ = c;
    periodic_running_ = pick;
  }
}

int Monitor::next_timeout_ms() const {
  if (exited_ || periodic_pid_ > 0) {
    return -1;  // the periodic child's exit wakes the loop
  }
  int64_t next = -1;
  for (const auto& p : cfg_.periodic) {
    if (p.due >= 0 && (next < 0 || p.due < next)) {
      next = p.due;
    }
  }
  if (next < 0) {
    return -1;
  }
  int64_t d = next - mono_ms();
  return d < 0 ? 0 : static_cast<int>(d > 3600000 ? 3600000 : d);
}

// `berth run --rm` in the foreground removes the container itself as soon as it sees the exit
// code, and says so in the file `cleanup-owner` (its pid) before the start. Running our cleanup
// process as well would be a second berth start-up racing it for the same lock, for nothing.
// Wait for that process to end or the container's run directory to go (removed); if the owner
// died without removing it (killed), or takes longer than 30 s, the cleanup runs as usual.
bool Monitor::cleanup_handed_over() {
  int fd = ::openat(dir_, "cleanup-owner", O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return false;
  }
  char buf[32] = {};
  ssize_t n = ::read(fd, buf, sizeof(buf) - 1);
  ::close(fd);
  long owner = n > 0 ? std::strtol(buf, nullptr, 10) : 0;
  if (owner <= 0) {
    return false;
  }
  int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, static_cast<pid_t>(owner), 0));
  auto removed = [this] {
    struct stat st {};
    return ::fstat(dir_, &st) == 0 && st.st_nlink == 0;
  };
  const int64_t deadline = mono_ms() + 30000;
  while (!removed()) {
    if (pidfd < 0 || mono_ms() >= deadline) {
      break;  // the owner is gone (or never was): clean up ourselves
    }
    pollfd p{pidfd, POLLIN, 0};
    if (::poll(&p, 1, 5) > 0) {
      ::close(pidfd);
      pidfd = -1;
      if (removed()) {
        return true;
      }
    }
  }
  if (pidfd >= 0) {
    ::close(pidfd);
  }
  return removed();
}

void Monitor::accept_clients(bool watch) {
  for (;;) {
    pollfd p{attach_, POLLIN, 0};
    if (::poll(&p, 1, 0) <= 0) {
      return;
    }
    int c = ::accept4(attach_, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (c < 0) {
      if (errno == EINTR) {
        continue;
      }
      return;
    }
    clients_.push_back(c);
    if (watch) {
      add(c, EPOLLIN);
    }
  }
}

void Monitor::finish() {
  // A client queued on the attach socket and not accepted yet gets the output and the exit
  // code like the others: `run` connects before it starts the container, and a container that
  // exits at once can be reaped before the loop ever ran (the monitor preempted right after its
  // report, as on one busy CPU), which lost the output and left `run` waiting for an exit code
  // until the cleanup hand-over gave up (30 s).
  accept_clients(false);
  // Whatever the container wrote before it died is in the pipes: drain it.
  if (stdout_r_ >= 0) {
    on_output(stdout_r_, kStdout);
  }
  if (stderr_r_ >= 0) {
    on_output(stderr_r_, kStderr);
  }
  close_fd(log_fd_);
  // The OOM mark first: a reader that sees the exit file sees it too.
  int64_t kills = oom_kills(oom_file_);
  if (kills > oom_base_) {
    write_atomic(dir_, "oom", std::to_string(kills - oom_base_));
  }
  // The socket names go before the exit file: once that is there, `start` may launch the next
  // run's monitor in this directory, and an unlink after that would take its sockets (the
  // clients connected already keep their connections).
  ::unlinkat(dir_, "attach", 0);
  ::unlinkat(dir_, "ctl", 0);
  const std::string code = std::to_string(exit_code_);
  write_atomic(dir_, "exit", code);
  broadcast(kExit, code.data(), code.size());
  close_fd(stdin_w_);
  close_fd(stdout_r_);
  if (periodic_pid_ > 0) {
    // A health check of the container that just went away ends on its own.
    int st = 0;
    while (::waitpid(periodic_pid_, &st, 0) < 0 && errno == EINTR) {
    }
    periodic_pid_ = 0;
  }
  if (!cfg_.cleanup.empty() && !cleanup_handed_over()) {
    std::vector<char*> argv;
    for (auto& a : cfg_.cleanup) {
      argv.push_back(a.data());
    }
    argv.push_back(nullptr);
    pid_t c = ::fork();
    if (c == 0) {
      sigset_t none;
      sigemptyset(&none);
      ::sigprocmask(SIG_SETMASK, &none, nullptr);
      ::execv(argv[0], argv.data());
      _exit(127);
    }
    if (c > 0) {
      int st = 0;
      while (::waitpid(c, &st, 0) < 0 && errno == EINTR) {
      }
    }
  }
  for (int c : clients_) {
    ::close(c);
  }
  clients_.clear();
}

int Monitor::run(int report_fd, int dir_fd, int attach_fd, int ctl_fd, int out_fd, int err_fd,
                 int in_fd) {
  dir_ = dir_fd;
  attach_ = attach_fd;
  ctl_ = ctl_fd;
  stdout_r_ = out_fd;
  stderr_r_ = err_fd;
  stdin_w_ = in_fd;
  for (int fd : {dir_, attach_, ctl_, stdout_r_, stderr_r_, stdin_w_, report_fd}) {
    if (fd >= 0) {
      ::fcntl(fd, F_SETFD, FD_CLOEXEC);
    }
  }
  epoll_ = ::epoll_create1(EPOLL_CLOEXEC);
  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGCHLD);
  ::sigprocmask(SIG_BLOCK, &mask, nullptr);
  sigfd_ = ::signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
  if (epoll_ < 0 || sigfd_ < 0) {
    char msg[160];
    std::snprintf(msg, sizeof(msg),
                  "{\"error\":\"berth-monitor: epoll/signalfd: %s\",\"code\":125}\n",
                  std::strerror(errno));
    (void)write_all(report_fd, msg, std::strlen(msg));
    ::kill(pid_, SIGKILL);
    return 1;
  }
  if (cfg_.log_driver == "k8s-file" || cfg_.log_driver == "json-file") {
    log_fd_ = ::open(cfg_.log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    struct stat sb;
    if (log_fd_ >= 0 && ::fstat(log_fd_, &sb) == 0) {
      log_size_ = sb.st_size;
    }
  }
  oom_file_ = oom_counter_file(pid_);
  oom_base_ = oom_kills(oom_file_);
  if (oom_base_ < 0) {
    oom_base_ = 0;
  }
  char rep[96];
  std::snprintf(rep, sizeof(rep), "{\"pid\":%d,\"monitor_pid\":%d}\n", pid_, ::getpid());
  (void)write_all(report_fd, rep, std::strlen(rep));
  ::close(report_fd);

  for (int fd : {stdout_r_, stderr_r_}) {
    if (fd >= 0) {
      ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
      add(fd, EPOLLIN);
    }
  }
  add(attach_, EPOLLIN);
  add(ctl_, EPOLLIN);
  add(sigfd_, EPOLLIN);
  // The container may have died already (before signalfd saw it).
  reap();
  while (!exited_) {
    run_periodic();
    epoll_event evs[16];
    int n = ::epoll_wait(epoll_, evs, 16, next_timeout_ms());
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      break;
    }
    // New clients before the output: `run` connects before the start, so its connection is
    // queued (and reported in this batch) before the container writes anything; read first,
    // that output went to nobody.
    for (int i = 0; i < n; ++i) {
      if (evs[i].data.fd == attach_) {
        accept_clients(true);
      }
    }
    for (int i = 0; i < n; ++i) {
      int fd = evs[i].data.fd;
      if (fd == sigfd_) {
        reap();
      } else if (fd == stdout_r_) {
        on_output(fd, kStdout);
      } else if (fd == stderr_r_) {
        on_output(fd, kStderr);
      } else if (fd == ctl_) {
        on_ctl();
      } else if (std::find(clients_.begin(), clients_.end(), fd) != clients_.end()) {
        if (evs[i].events & (EPOLLERR | EPOLLHUP)) {
          ::epoll_ctl(epoll_, EPOLL_CTL_DEL, fd, nullptr);
          std::erase(clients_, fd);
          ::close(fd);
        } else {
          on_client(fd);
        }
      }
    }
  }
  finish();
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 10) {
    std::fprintf(stderr,
                 "usage: berth-monitor CONFIG PID REPORT_FD DIR_FD ATTACH_FD CTL_FD OUT_FD ERR_FD "
                 "IN_FD (started by berth)\n");
    return 2;
  }
  ::signal(SIGPIPE, SIG_IGN);
  pid_t pid = static_cast<pid_t>(std::atoi(argv[2]));
  int report_fd = arg_fd(argv[3]);
  Config cfg;
  std::string err;
  if (!load_config(argv[1], cfg, err)) {
    std::string msg = "{\"error\":\"berth-monitor: config unreadable\",\"code\":125}\n";
    (void)write_all(report_fd, msg.data(), msg.size());
    ::kill(pid, SIGKILL);
    return 1;
  }
  Monitor m(std::move(cfg), pid);
  return m.run(report_fd, arg_fd(argv[4]), arg_fd(argv[5]), arg_fd(argv[6]), arg_fd(argv[7]),
               arg_fd(argv[8]), arg_fd(argv[9]));
}
