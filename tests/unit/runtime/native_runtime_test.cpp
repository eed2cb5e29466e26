// End-to-end tests of the native runtime: real containers from a busybox rootfs. Run as root.
#include "berth/runtime/native_runtime.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sched.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "berth/spec/spec_builder.hpp"
#include "seccomp.hpp"
#include "terminal.hpp"

namespace fs = std::filesystem;
using berth::Errc;
using berth::runtime::NativeRuntime;
using berth::sdk::ContainerStatus;
using berth::sdk::CreateRequest;
using nlohmann::json;

namespace {

class TempDir {
 public:
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "berth-rt-XXXXXX").string();
    path_ = ::mkdtemp(tmpl.data());
  }
  ~TempDir() { fs::remove_all(path_); }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

std::string read_all(int fd) {
  std::string out;
  char buf[4096];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n <= 0) {
      return out;
    }
    out.append(buf, static_cast<size_t>(n));
  }
}

std::string slurp(const fs::path& p) {
  std::ifstream in(p);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

struct RunResult {
  int exit_code = -1;
  std::string out;
};

class RuntimeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) {
      GTEST_SKIP() << "needs root";
    }
    bundle_ = dir_.path() / "bundle";
    rootfs_ = bundle_ / "rootfs";
    fs::create_directories(rootfs_ / "bin");
    fs::create_directories(rootfs_ / "etc");
    fs::copy_file("/bin/busybox", rootfs_ / "bin/busybox");
    for (const char* applet : {"sh", "cat", "echo", "hostname", "ls", "sleep", "wc", "grep", "head",
                               "readlink", "true", "false", "id", "mount"}) {
      fs::create_symlink("busybox", rootfs_ / "bin" / applet);
    }
    fs::copy_file(BERTH_SYSCALL_PROBE, rootfs_ / "bin/syscall_probe");
    std::ofstream(rootfs_ / "etc/passwd") << "root:x:0:0:root:/root:/bin/sh\n";
    id_ = "t" + std::to_string(::getpid()) + "-" +
          ::testing::UnitTest::GetInstance()->current_test_info()->name();
    runtime_ = std::make_unique<NativeRuntime>((dir_.path() / "run").string());
  }
  void TearDown() override {
    if (runtime_) {
      (void)runtime_->remove(id_, true);
    }
  }

  // Writes config.json built by the spec builder with `args`; `edit` may change it.
  void write_spec(std::vector<std::string> args, const std::function<void(json&)>& edit = nullptr) {
    berth::spec::SpecOptions o;
    o.id = id_;
    o.rootfs = rootfs_.string();
    o.args = std::move(args);
    o.hostname = "berth-test";
    auto spec = berth::spec::build_spec({}, o);
    ASSERT_TRUE(spec) << spec.error().message();
    if (edit) {
      edit(*spec);
    }
    std::ofstream(bundle_ / "config.json") << spec->dump(2);
  }

  // create(wait_for_start=false) with stdout/stderr on a pipe; waits for the exit.
  RunResult run(std::vector<std::string> args, const std::function<void(json&)>& edit = nullptr) {
    write_spec(std::move(args), edit);
    int p[2];
    EXPECT_EQ(::pipe2(p, O_CLOEXEC), 0);
    CreateRequest req;
    req.id = id_;
    req.bundle = bundle_.string();
    req.stdout_fd = p[1];
    req.stderr_fd = p[1];
    req.wait_for_start = false;
    auto pid = runtime_->create(req);
    ::close(p[1]);
    RunResult r;
    if (!pid) {
      ::close(p[0]);
      ADD_FAILURE() << pid.error().message();
      return r;
    }
    r.out = read_all(p[0]);
    ::close(p[0]);
    int status = 0;
    EXPECT_EQ(::waitpid(*pid, &status, 0), *pid);
    r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    EXPECT_TRUE(runtime_->remove(id_, false));
    return r;
  }

  // A container running `sleep 1000`, started; returns its pid.
  pid_t start_sleeper() {
    write_spec({"sleep", "1000"});
    CreateRequest req;
    req.id = id_;
    req.bundle = bundle_.string();
    auto pid = runtime_->create(req);
    EXPECT_TRUE(pid) << (pid ? "" : pid.error().message());
    EXPECT_TRUE(runtime_->start(id_));
    return pid.value_or(0);
  }

  TempDir dir_;
  fs::path bundle_;
  fs::path rootfs_;
  std::string id_;
  std::unique_ptr<NativeRuntime> runtime_;
};

}  // namespace

TEST_F(RuntimeTest, InitIsPidOneWithItsOwnHostname) {
  auto r = run({"sh", "-c", "echo $$; hostname"});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.out, "1\nberth-test\n");
}

TEST_F(RuntimeTest, ExitCodePassesThrough) {
  EXPECT_EQ(run({"sh", "-c", "exit 42"}).exit_code, 42);
  EXPECT_EQ(run({"true"}).exit_code, 0);
}

TEST_F(RuntimeTest, SeesOnlyItsOwnMounts) {
  auto r = run({"cat", "/proc/self/mounts"});
  ASSERT_EQ(r.exit_code, 0) << r.out;
  std::istringstream in(r.out);
  std::string src, target, rest;
  int lines = 0;
  while (in >> src >> target && std::getline(in, rest)) {
    ++lines;
    bool allowed = target == "/" || target.rfind("/proc", 0) == 0 || target.rfind("/dev", 0) == 0 ||
                   target.rfind("/sys", 0) == 0;
    EXPECT_TRUE(allowed) << "host mount visible: " << target;
  }
  EXPECT_GT(lines, 5);
}

TEST_F(RuntimeTest, DevHoldsOnlyDefaultDevices) {
  auto r = run({"ls", "/dev"});
  ASSERT_EQ(r.exit_code, 0) << r.out;
  std::set<std::string> got;
  std::istringstream in(r.out);
  std::string name;
  while (in >> name) {
    got.insert(name);
  }
  std::set<std::string> want = {"fd",  "full",   "mqueue", "null",   "ptmx", "pts",     "random",
                                "shm", "stderr", "stdin",  "stdout", "tty",  "urandom", "zero"};
  EXPECT_EQ(got, want);
  EXPECT_EQ(run({"sh", "-c", "echo hi > /dev/null && head -c 4 /dev/zero | wc -c"}).out, "4\n");
}

TEST_F(RuntimeTest, MaskedAndReadonlyProcPaths) {
  // /proc/kcore and /proc/sched_debug do not exist on every kernel; these two do here.
  ASSERT_TRUE(fs::exists("/proc/keys") && fs::exists("/proc/timer_list"));
  ASSERT_GT(slurp("/proc/timer_list").size(), 0u);
  auto r = run({"sh", "-c",
                "wc -c < /proc/keys; wc -c < /proc/timer_list; ls /proc/acpi | wc -l; "
                "(echo x > /proc/sys/kernel/domainname) 2>/dev/null && echo writable || "
                "echo readonly"});
  EXPECT_EQ(r.out, "0\n0\n0\nreadonly\n");
}

TEST_F(RuntimeTest, CapabilitiesArePodmansDefaults) {
  uint64_t want = 0;
  for (int bit : {0, 1, 3, 4, 5, 6, 7, 8, 10, 18, 31}) {  // CHOWN ... SYS_CHROOT, SETFCAP
    want |= uint64_t{1} << bit;
  }
  char hex[32];
  std::snprintf(hex, sizeof(hex), "%016llx", static_cast<unsigned long long>(want));
  auto r = run({"sh", "-c", "grep -E '^Cap(Eff|Bnd|Prm):' /proc/self/status"});
  EXPECT_EQ(r.out,
            std::string("CapPrm:\t") + hex + "\nCapEff:\t" + hex + "\nCapBnd:\t" + hex + "\n");
}

TEST_F(RuntimeTest, SeccompBlocksWhatTheProfileBlocks) {
  auto r = run({"/bin/syscall_probe", "personality"});
  EXPECT_EQ(r.out, "personality rc=-1 errno=38\n");  // profile default: ENOSYS
  r = run({"/bin/syscall_probe", "ptrace"});
  EXPECT_EQ(r.out, "ptrace rc=-1 errno=1\n");  // no CAP_SYS_PTRACE: EPERM
  r = run({"/bin/syscall_probe", "getpid"});
  EXPECT_EQ(r.out, "getpid rc=0 errno=0\n");
  // Without the profile the same call works: the refusal above came from seccomp.
  r = run({"/bin/syscall_probe", "personality"}, [](json& s) { s["linux"].erase("seccomp"); });
  EXPECT_EQ(r.out, "personality rc=0 errno=0\n");
}

TEST_F(RuntimeTest, RlimitAboveHardLimitIsClamped) {
  rlimit rl{};
  ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &rl), 0);
  auto r = run({"sh", "-c", "ulimit -Hn; ulimit -Sn"}, [](json& s) {
    s["process"]["rlimits"] =
        json::array({{{"type", "RLIMIT_NOFILE"}, {"soft", 1000000000}, {"hard", 1000000000}}});
  });
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.out, std::to_string(rl.rlim_max) + "\n" + std::to_string(rl.rlim_max) + "\n");
  r = run({"sh", "-c", "ulimit -n"}, [](json& s) {
    s["process"]["rlimits"] =
        json::array({{{"type", "RLIMIT_NOFILE"}, {"soft", 1024}, {"hard", 1024}}});
  });
  EXPECT_EQ(r.out, "1024\n");
}

TEST_F(RuntimeTest, MissingExecutableGivesAClearError) {
  write_spec({"/no/such/program"});
  CreateRequest req;
  req.id = id_;
  req.bundle = bundle_.string();
  auto pid = runtime_->create(req);
  ASSERT_FALSE(pid);
  EXPECT_EQ(pid.error().code(), Errc::NotFound);
  EXPECT_NE(pid.error().message().find("/no/such/program"), std::string::npos);
  EXPECT_EQ(berth::runtime::exit_code_for(pid.error()), 127);
  EXPECT_FALSE(fs::exists(runtime_->state_dir(id_)));

  write_spec({"notinpath"});
  pid = runtime_->create(req);
  ASSERT_FALSE(pid);
  EXPECT_NE(pid.error().message().find("not found in $PATH"), std::string::npos);

  std::ofstream(rootfs_ / "bin/script") << "#!/bin/sh\necho x\n";
  write_spec({"/bin/script"});
  pid = runtime_->create(req);
  ASSERT_FALSE(pid);
  EXPECT_EQ(pid.error().code(), Errc::PermissionDenied);
  EXPECT_EQ(berth::runtime::exit_code_for(pid.error()), 126);
}

// The init mounts its rootfs while the runtime moves it into its cgroups: a mount that fails
// before the runtime is done is still reported as the init's own error, naming the source.
TEST_F(RuntimeTest, AnEarlyMountFailureIsTheInitsOwnError) {
  write_spec({"true"}, [](json& s) {
    s["mounts"].insert(s["mounts"].begin() + 1, json{{"destination", "/data"},
                                                     {"type", "bind"},
                                                     {"source", "/no/such/berth/source"},
                                                     {"options", {"rbind"}}});
  });
  CreateRequest req;
  req.id = id_;
  req.bundle = bundle_.string();
  for (int i = 0; i < 5; ++i) {  // both orders of the race
    auto pid = runtime_->create(req);
    ASSERT_FALSE(pid);
    EXPECT_NE(pid.error().message().find("/no/such/berth/source"), std::string::npos)
        << pid.error().message();
    EXPECT_FALSE(fs::exists(runtime_->state_dir(id_)));
  }
}

TEST_F(RuntimeTest, CreateThenStartFromAnotherInstance) {
  write_spec({"sh", "-c", "echo started"});
  int p[2];
  ASSERT_EQ(::pipe2(p, O_CLOEXEC), 0);
  CreateRequest req;
  req.id = id_;
  req.bundle = bundle_.string();
  req.stdout_fd = p[1];
  req.pid_file = (dir_.path() / "pid").string();
  auto pid = runtime_->create(req);
  ::close(p[1]);
  ASSERT_TRUE(pid) << pid.error().message();
  EXPECT_EQ(slurp(dir_.path() / "pid"), std::to_string(*pid));
  auto st = runtime_->state(id_);
  ASSERT_TRUE(st);
  EXPECT_EQ(st->status, ContainerStatus::Created);
  EXPECT_EQ(st->pid, *pid);

  NativeRuntime other((dir_.path() / "run").string());
  ASSERT_TRUE(other.start(id_));
  EXPECT_EQ(read_all(p[0]), "started\n");
  ::close(p[0]);
  int status = 0;
  ASSERT_EQ(::waitpid(*pid, &status, 0), *pid);
  EXPECT_EQ(WEXITSTATUS(status), 0);
  EXPECT_EQ(other.state(id_)->status, ContainerStatus::Stopped);
  EXPECT_FALSE(other.start(id_));
}

TEST_F(RuntimeTest, KillAndRemoveLeaveNothing) {
  pid_t pid = start_sleeper();
  ASSERT_GT(pid, 0);
  auto st = runtime_->state(id_);
  ASSERT_TRUE(st);
  EXPECT_EQ(st->status, ContainerStatus::Running);
  json state = json::parse(slurp(fs::path(runtime_->state_dir(id_)) / "state.json"));
  auto cgroup_dirs = state["cgroup_dirs"].get<std::vector<std::string>>();
  ASSERT_FALSE(cgroup_dirs.empty());
  for (const auto& d : cgroup_dirs) {
    EXPECT_TRUE(fs::exists(d)) << d;
  }
  auto busy = runtime_->remove(id_, false);
  ASSERT_FALSE(busy);
  EXPECT_EQ(busy.error().code(), Errc::Conflict);
  ASSERT_TRUE(runtime_->kill(id_, SIGKILL, false));
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  EXPECT_TRUE(WIFSIGNALED(status));
  EXPECT_EQ(runtime_->state(id_)->status, ContainerStatus::Stopped);
  ASSERT_TRUE(runtime_->remove(id_, false));
  for (const auto& d : cgroup_dirs) {
    EXPECT_FALSE(fs::exists(d)) << d;
  }
  EXPECT_FALSE(fs::exists(runtime_->state_dir(id_)));
  EXPECT_TRUE(runtime_->remove(id_, false));  // idempotent
  EXPECT_EQ(runtime_->state(id_).error().code(), Errc::NotFound);
}

TEST_F(RuntimeTest, ForceRemoveKillsTheContainer) {
  pid_t pid = start_sleeper();
  ASSERT_GT(pid, 0);
  ASSERT_TRUE(runtime_->remove(id_, true));
  // The init is this test's child: remove() may have reaped it already while waiting for it to
  // die, which leaves nothing to wait for. Either way it is gone.
  int status = 0;
  pid_t waited = ::waitpid(pid, &status, 0);
  EXPECT_TRUE(waited == pid || (waited < 0 && errno == ECHILD)) << std::strerror(errno);
  EXPECT_EQ(::kill(pid, 0), -1);
  EXPECT_EQ(errno, ESRCH);
  EXPECT_FALSE(fs::exists(runtime_->state_dir(id_)));
}

TEST_F(RuntimeTest, ExecJoinsThePidNamespace) {
  pid_t pid = start_sleeper();
  ASSERT_GT(pid, 0);
  int p[2];
  ASSERT_EQ(::pipe2(p, O_CLOEXEC), 0);
  berth::sdk::ExecRequest req;
  req.id = id_;
  req.stdout_fd = p[1];
  req.process_json = json{
      {"args", {"sh", "-c", "cat /proc/1/cmdline; echo; hostname; echo $$"}},
      {"env", {"PATH=/bin"}},
      {"cwd", "/"}}.dump();
  auto epid = runtime_->exec(req);
  ::close(p[1]);
  ASSERT_TRUE(epid) << epid.error().message();
  std::string out = read_all(p[0]);
  ::close(p[0]);
  int status = 0;
  ASSERT_EQ(::waitpid(*epid, &status, 0), *epid);
  EXPECT_EQ(WEXITSTATUS(status), 0);
  std::string cmdline(
      "sleep\0"
      "1000\0",
      11);
  std::istringstream in(out);
  std::string first, host, own;
  std::getline(in, first);
  std::getline(in, host);
  std::getline(in, own);
  EXPECT_EQ(first, cmdline);
  EXPECT_EQ(host, "berth-test");
  EXPECT_NE(own, "1");
  EXPECT_FALSE(own.empty());

  // Without capabilities in process.json the exec'd process gets the container's set.
  int c[2];
  ASSERT_EQ(::pipe2(c, O_CLOEXEC), 0);
  req.stdout_fd = c[1];
  req.process_json = json{
      {"args", {"grep", "CapEff", "/proc/self/status"}},
      {"env", {"PATH=/bin"}},
      {"cwd", "/"}}.dump();
  auto cpid = runtime_->exec(req);
  ::close(c[1]);
  ASSERT_TRUE(cpid) << cpid.error().message();
  EXPECT_EQ(read_all(c[0]), "CapEff:\t00000000800405fb\n");
  ::close(c[0]);
  ::waitpid(*cpid, nullptr, 0);

  req.process_json = json{{"args", {"nope"}}, {"env", {"PATH=/bin"}}, {"cwd", "/"}}.dump();
  auto missing = runtime_->exec(req);
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code(), Errc::NotFound);
}

TEST_F(RuntimeTest, PauseResumeAndUpdate) {
  pid_t pid = start_sleeper();
  ASSERT_GT(pid, 0);
  ASSERT_TRUE(runtime_->pause(id_));
  EXPECT_EQ(runtime_->state(id_)->status, ContainerStatus::Paused);
  ASSERT_TRUE(runtime_->resume(id_));
  EXPECT_EQ(runtime_->state(id_)->status, ContainerStatus::Running);
  auto up = runtime_->update(id_, R"({"memory":{"limit":67108864},"pids":{"limit":64}})");
  ASSERT_TRUE(up) << up.error().message();
  json state = json::parse(slurp(fs::path(runtime_->state_dir(id_)) / "state.json"));
  for (const auto& d : state["cgroup_dirs"]) {
    std::string dir = d.get<std::string>();
    if (dir.find("/memory/") != std::string::npos) {
      EXPECT_EQ(slurp(dir + "/memory.limit_in_bytes"), "67108864\n");
    }
    if (dir.find("/pids/") != std::string::npos) {
      EXPECT_EQ(slurp(dir + "/pids.max"), "64\n");
    }
  }
  ASSERT_TRUE(runtime_->remove(id_, true));
  ::waitpid(pid, nullptr, 0);
}

TEST_F(RuntimeTest, TerminalMasterGoesToTheConsoleSocket) {
  const std::string sock_path = (dir_.path() / "console.sock").string();
  berth::UniqueFd listener(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, sock_path.c_str(), sizeof(addr.sun_path) - 1);
  ASSERT_EQ(::bind(listener.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  ASSERT_EQ(::listen(listener.get(), 1), 0);
  // process.consoleSize is the pty's size before the process runs.
  write_spec(
      {"sh", "-c", "test -t 0 && test -t 1 && echo tty-ok; ls -l /dev/console | wc -l; stty size"},
      [](json& s) {
        s["process"]["terminal"] = true;
        s["process"]["consoleSize"] = {{"height", 29}, {"width", 91}};
      });
  CreateRequest req;
  req.id = id_;
  req.bundle = bundle_.string();
  req.console_socket = sock_path;
  req.wait_for_start = false;
  auto pid = runtime_->create(req);
  ASSERT_TRUE(pid) << pid.error().message();
  berth::UniqueFd conn(::accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC));
  ASSERT_TRUE(conn);
  auto master = berth::runtime::receive_fd(conn.get());
  ASSERT_TRUE(master) << master.error().message();
  int status = 0;
  ASSERT_EQ(::waitpid(*pid, &status, 0), *pid);
  std::string out;
  char buf[512];
  // The slave is gone once the process exits; what it wrote stays readable until EIO.
  for (;;) {
    ssize_t n = ::read(master->get(), buf, sizeof(buf));
    if (n <= 0) {
      break;
    }
    out.append(buf, static_cast<size_t>(n));
  }
  EXPECT_NE(out.find("tty-ok\r\n"), std::string::npos) << out;
  EXPECT_NE(out.find("1\r\n"), std::string::npos) << out;
  EXPECT_NE(out.find("29 91\r\n"), std::string::npos) << out;
}

TEST_F(RuntimeTest, NetworkNoneHasOnlyLoopbackAndHostSharesTheHosts) {
  EXPECT_EQ(run({"ls", "/sys/class/net"}).out, "lo\n");
  size_t host_links = 0;
  for (const auto& e : fs::directory_iterator("/sys/class/net")) {
    (void)e;
    ++host_links;
  }
  auto r = run({"sh", "-c", "ls /sys/class/net | wc -l"}, [](json& s) {
    auto& ns = s["linux"]["namespaces"];
    for (auto it = ns.begin(); it != ns.end(); ++it) {
      if ((*it)["type"] == "network") {
        ns.erase(it);
        break;
      }
    }
  });
  EXPECT_EQ(r.exit_code, 0) << r.out;
  EXPECT_EQ(r.out, std::to_string(host_links) + "\n");
}

TEST_F(RuntimeTest, ReadOnlyRootfsAndBindMounts) {
  std::ofstream(dir_.path() / "hosts") << "127.0.0.1 berth-host\n";
  auto r = run({"sh", "-c",
                "cat /etc/hosts; (echo x > /etc/hosts) 2>/dev/null || echo ro-bind; "
                "(echo x > /newfile) 2>/dev/null || echo ro-root; echo ok > /dev/shm/f && "
                "cat /dev/shm/f"},
               [&](json& s) {
                 s["root"]["readonly"] = true;
                 s["mounts"].push_back({{"destination", "/etc/hosts"},
                                        {"type", "bind"},
                                        {"source", (dir_.path() / "hosts").string()},
                                        {"options", {"rbind", "ro"}}});
               });
  EXPECT_EQ(r.out, "127.0.0.1 berth-host\nro-bind\nro-root\nok\n");
}

TEST_F(RuntimeTest, RunsAsTheSpecUserWithoutCapabilities) {
  std::ofstream(rootfs_ / "etc/group") << "root:x:0:\nwheel:x:10:alice\n";
  std::ofstream(rootfs_ / "etc/passwd", std::ios::app)
      << "alice:x:1000:1000::/home/alice:/bin/sh\n";
  auto r = run({"sh", "-c", "id -u; id -g; id -G; grep CapEff /proc/self/status"}, [](json& s) {
    s["process"]["user"] = {{"uid", 1000}, {"gid", 1000}, {"additionalGids", {10}}};
    s["process"]["capabilities"]["effective"] = json::array();
    s["process"]["capabilities"]["permitted"] = json::array();
  });
  EXPECT_EQ(r.out, "1000\n1000\n1000 10\nCapEff:\t0000000000000000\n");
}

TEST_F(RuntimeTest, UserNamespaceMapsRootToAnUnprivilegedRange) {
  // As Podman does for --userns, the rootfs belongs to the mapped range.
  for (const auto& e : fs::recursive_directory_iterator(rootfs_)) {
    ASSERT_EQ(::lchown(e.path().c_str(), 100000, 100000), 0);
  }
  ASSERT_EQ(::lchown(rootfs_.c_str(), 100000, 100000), 0);
  ASSERT_EQ(::chmod(dir_.path().c_str(), 0711), 0);  // mkdtemp's 0700 stops the mapped root
  auto r =
      run({"sh", "-c", "id -u; cat /proc/self/uid_map; echo hi > /dev/null && echo dev-ok"},
          [](json& s) {
            s["linux"]["namespaces"].push_back({{"type", "user"}});
            s["linux"]["uidMappings"] = {{{"containerID", 0}, {"hostID", 100000}, {"size", 65536}}};
            s["linux"]["gidMappings"] = {{{"containerID", 0}, {"hostID", 100000}, {"size", 65536}}};
          });
  EXPECT_EQ(r.exit_code, 0) << r.out;
  EXPECT_EQ(r.out.substr(0, 2), "0\n") << r.out;
  EXPECT_NE(r.out.find("100000"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("dev-ok"), std::string::npos) << r.out;
}

// A network namespace the host made (as berth's bridge does) joined by a container with a user
// namespace of its own: the runtime joins it as the host's root before making the user
// namespace, and writes its net.* sysctls then (with the gids mapped to the host's).
TEST_F(RuntimeTest, UserNamespaceJoinsAHostNetworkNamespace) {
  int hold[2];
  ASSERT_EQ(::pipe2(hold, O_CLOEXEC), 0);
  pid_t holder = ::fork();
  ASSERT_GE(holder, 0);
  if (holder == 0) {
    char c;
    if (::unshare(CLONE_NEWNET) != 0) {
      ::_exit(1);
    }
    ::close(hold[1]);
    (void)!::read(hold[0], &c, 1);
    ::_exit(0);
  }
  ::close(hold[0]);
  // Until the child has its namespace, its ns/net is ours.
  struct stat own {
  }, theirs{};
  ASSERT_EQ(::stat("/proc/self/ns/net", &own), 0);
  const std::string net = "/proc/" + std::to_string(holder) + "/ns/net";
  for (int i = 0; i < 1000 && ::stat(net.c_str(), &theirs) == 0 && theirs.st_ino == own.st_ino;
       ++i) {
    ::usleep(1000);
  }
  ASSERT_NE(theirs.st_ino, own.st_ino);
  for (const auto& e : fs::recursive_directory_iterator(rootfs_)) {
    ASSERT_EQ(::lchown(e.path().c_str(), 100000, 100000), 0);
  }
  ASSERT_EQ(::lchown(rootfs_.c_str(), 100000, 100000), 0);
  ASSERT_EQ(::chmod(dir_.path().c_str(), 0711), 0);
  auto r =
      run({"sh", "-c",
           "readlink /proc/self/ns/net; cat /proc/sys/net/ipv4/ping_group_range; id -u; "
           "echo $$"},
          [&](json& s) {
            for (auto& ns : s["linux"]["namespaces"]) {
              if (ns["type"] == "network") {
                ns["path"] = net;
              }
            }
            s["linux"]["namespaces"].push_back({{"type", "user"}});
            s["linux"]["uidMappings"] = {{{"containerID", 0}, {"hostID", 100000}, {"size", 65536}}};
            s["linux"]["gidMappings"] = {{{"containerID", 0}, {"hostID", 100000}, {"size", 65536}}};
            s["linux"]["sysctl"] = {{"net.ipv4.ping_group_range", "0 10"}};
          });
  ::close(hold[1]);
  ::waitpid(holder, nullptr, 0);
  EXPECT_EQ(r.exit_code, 0) << r.out;
  // Seen from inside, the range is in the container's gids again; the init is pid 1.
  EXPECT_EQ(r.out, "net:[" + std::to_string(theirs.st_ino) + "]\n0\t10\n0\n1\n");
}

// --pid container:NAME: the second container's init joins the first one's pid namespace.
TEST_F(RuntimeTest, JoinsThePidNamespaceOfAnotherContainer) {
  pid_t first = start_sleeper();
  ASSERT_GT(first, 0);
  const std::string first_id = id_;
  id_ = first_id + "-2";
  auto r = run({"sh", "-c", "cat /proc/1/cmdline; echo; echo $$"}, [&](json& s) {
    for (auto& ns : s["linux"]["namespaces"]) {
      if (ns["type"] == "pid") {
        ns["path"] = "/proc/" + std::to_string(first) + "/ns/pid";
      }
    }
  });
  id_ = first_id;
  EXPECT_EQ(r.exit_code, 0) << r.out;
  std::istringstream in(r.out);
  std::string one, own;
  std::getline(in, one);
  std::getline(in, own);
  EXPECT_EQ(one, std::string("sleep\0"
                             "1000\0",
                             11));
  EXPECT_NE(own, "1");
}

TEST_F(RuntimeTest, SysctlsOomScoreAdjAndDomainname) {
  auto r = run({"sh", "-c",
                "cat /proc/sys/kernel/shmmni /proc/self/oom_score_adj "
                "/proc/sys/kernel/domainname"},
               [](json& s) {
                 s["linux"]["sysctl"] = {{"kernel.shmmni", "1234"}};
                 s["process"]["oomScoreAdj"] = 123;
                 s["domainname"] = "example.org";
               });
  EXPECT_EQ(r.out, "1234\n123\nexample.org\n");
}

TEST_F(RuntimeTest, KillAllSignalsEveryProcessOfTheContainer) {
  write_spec({"sh", "-c", "sleep 1000 & sleep 1000 & wait"});
  CreateRequest req;
  req.id = id_;
  req.bundle = bundle_.string();
  req.wait_for_start = false;
  auto pid = runtime_->create(req);
  ASSERT_TRUE(pid) << pid.error().message();
  json state = json::parse(slurp(fs::path(runtime_->state_dir(id_)) / "state.json"));
  std::string pids_dir;
  for (const auto& d : state["cgroup_dirs"]) {
    if (d.get<std::string>().find("/pids/") != std::string::npos) {
      pids_dir = d.get<std::string>();
    }
  }
  ASSERT_FALSE(pids_dir.empty());
  for (int i = 0; i < 500; ++i) {  // wait until both sleeps run (not a timing assertion)
    std::istringstream procs(slurp(pids_dir + "/cgroup.procs"));
    int n = 0;
    pid_t p;
    while (procs >> p) {
      ++n;
    }
    if (n == 3) {
      break;
    }
    ::usleep(2000);
  }
  ASSERT_TRUE(runtime_->kill(id_, SIGKILL, true));
  int status = 0;
  ASSERT_EQ(::waitpid(*pid, &status, 0), *pid);
  EXPECT_TRUE(WIFSIGNALED(status));
  EXPECT_TRUE(runtime_->remove(id_, false));
}

namespace {

// The compiled-filter cache: a hit gives the same program; an entry whose stored profile differs
// (what a hash collision would look like) is recompiled, never used.
TEST(SeccompCache, HitsOnlyForTheSameProfile) {
  TempDir dir;
  json allow_all = {{"defaultAction", "SCMP_ACT_ALLOW"}};
  json deny_personality = {
      {"defaultAction", "SCMP_ACT_ALLOW"},
      {"syscalls", json::array({{{"names", {"personality"}}, {"action", "SCMP_ACT_ERRNO"}}})}};
  const std::string cache = (dir.path() / "cache").string();
  auto a = berth::runtime::compile_seccomp_cached(deny_personality, cache);
  ASSERT_TRUE(a) << a.error().message();
  auto entries = std::distance(fs::directory_iterator(cache), fs::directory_iterator());
  ASSERT_EQ(entries, 1);
  auto again = berth::runtime::compile_seccomp_cached(deny_personality, cache);
  ASSERT_TRUE(again);
  ASSERT_EQ(again->size(), a->size());
  EXPECT_EQ(std::memcmp(again->data(), a->data(), a->size() * sizeof(sock_filter)), 0);

  // Put another profile's program under this profile's name: not taken.
  auto other = berth::runtime::compile_seccomp(allow_all);
  ASSERT_TRUE(other);
  ASSERT_NE(other->size(), a->size());
  const fs::path entry = fs::directory_iterator(cache)->path();
  std::string forged = allow_all.dump() + '\0';
  forged.append(reinterpret_cast<const char*>(other->data()), other->size() * sizeof(sock_filter));
  std::ofstream(entry, std::ios::binary | std::ios::trunc) << forged;
  auto after = berth::runtime::compile_seccomp_cached(deny_personality, cache);
  ASSERT_TRUE(after);
  EXPECT_EQ(after->size(), a->size());
}

}  // namespace
