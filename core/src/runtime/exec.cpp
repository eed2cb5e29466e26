// exec: a further process in a running container. A first child joins the container's cgroups
// and namespaces (user last); since a pid namespace applies only to children, it
// clone()s the process proper with CLONE_PARENT so that the caller is its parent, reports its pid
// and exits.
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "berth/runtime/native_runtime.hpp"
#include "berth/util/fs.hpp"
#include "cgroups.hpp"
#include "container_init.hpp"
#include "oci_config.hpp"
#include "process.hpp"
#include "state.hpp"
#include "sync.hpp"
#include "terminal.hpp"

namespace berth::runtime {
namespace {

using nlohmann::json;

struct NsToJoin {
  const char* name;
  int flag;
};
// As the host's root, which may join any of them (a network namespace made by the host is
// not the container's user namespace's to join); the user namespace last: it drops the host's
// rights.
constexpr NsToJoin kJoinOrder[] = {{"ipc", CLONE_NEWIPC},       {"uts", CLONE_NEWUTS},
                                   {"net", CLONE_NEWNET},       {"pid", CLONE_NEWPID},
                                   {"cgroup", CLONE_NEWCGROUP}, {"mnt", CLONE_NEWNS},
                                   {"user", CLONE_NEWUSER}};

bool same_ns(pid_t pid, const char* name) {
  struct stat a {
  }, b{};
  const std::string theirs = "/proc/" + std::to_string(pid) + "/ns/" + name;
  const std::string mine = std::string("/proc/self/ns/") + name;
  return ::stat(theirs.c_str(), &a) == 0 && ::stat(mine.c_str(), &b) == 0 && a.st_ino == b.st_ino &&
         a.st_dev == b.st_dev;
}

Result<void> join_container(pid_t pid, const Cgroups& cgroups) {
  std::vector<std::pair<UniqueFd, const NsToJoin*>> fds;
  for (const auto& ns : kJoinOrder) {
    if (same_ns(pid, ns.name)) {
      continue;
    }
    const std::string path = "/proc/" + std::to_string(pid) + "/ns/" + ns.name;
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) {
      return fail_errno("open namespace", path);
    }
    fds.emplace_back(std::move(fd), &ns);
  }
  BERTH_TRYV(cgroups.add(0));
  for (const auto& [fd, ns] : fds) {
    if (::setns(fd.get(), ns->flag) != 0) {
      return fail_errno(std::string("join the container's ") + ns->name + " namespace", "");
    }
  }
  return {};
}

struct ExecContext {
  const ProcessSpec* process;
  const SeccompProgram* seccomp;
  int sync_fd;
  int console_fd;
  int stdio[3];
};

[[noreturn]] void exec_process(const ExecContext& ctx) {
  auto setup = [&]() -> Result<std::string> {
    if (ctx.process->terminal) {
      BERTH_TRYV(setup_terminal(ctx.console_fd, nullptr, ctx.process->console_height,
                                ctx.process->console_width));
      ::close(ctx.console_fd);
    } else {
      if (::setsid() < 0) {
        return fail_errno("setsid", "");
      }
      BERTH_TRYV(setup_stdio(ctx.stdio[0], ctx.stdio[1], ctx.stdio[2]));
    }
    BERTH_TRYV(apply_rlimits(ctx.process->rlimits));
    if (::chdir(ctx.process->cwd.c_str()) != 0) {
      return fail_errno("chdir to the working directory", ctx.process->cwd);
    }
    return find_executable(*ctx.process);
  };
  auto exe = setup();
  if (!exe) {
    sync_send_error(ctx.sync_fd, exe.error());
    ::_exit(exec_error_exit_code(exe.error()));
  }
  Error e = finalize_and_exec(*ctx.process, *exe, ctx.seccomp);
  sync_send_error(ctx.sync_fd, e);
  ::_exit(exec_error_exit_code(e));
}

// The intermediate child: joins, forks the real process, reports its pid.
[[noreturn]] void exec_joiner(pid_t target, const Cgroups& cgroups, const ExecContext& ctx) {
  reset_process_state();
  if (auto r = join_container(target, cgroups); !r) {
    sync_send_error(ctx.sync_fd, r.error());
    ::_exit(1);
  }
  pid_t pid = static_cast<pid_t>(
      ::syscall(SYS_clone, CLONE_PARENT | SIGCHLD, nullptr, nullptr, nullptr, nullptr));
  if (pid < 0) {
    sync_send_error(ctx.sync_fd, Error::from_errno("clone", "exec process", errno));
    ::_exit(1);
  }
  if (pid == 0) {
    exec_process(ctx);
  }
  sync_send(ctx.sync_fd, SyncType::Pid, pid);
  ::_exit(0);
}

}  // namespace

Result<pid_t> NativeRuntime::exec(const sdk::ExecRequest& req) {
  const std::string dir = state_dir(req.id);
  BERTH_TRY(ContainerState st, read_state(dir));
  if (!init_alive(st)) {
    return fail(Errc::Conflict, "container " + req.id + " is not running");
  }
  json process_json;
  try {
    process_json = json::parse(req.process_json);
  } catch (const json::exception& e) {
    return fail(Errc::InvalidArgument, std::string("exec process: ") + e.what());
  }
  BERTH_TRY(ProcessSpec process, parse_process_spec(process_json));
  if (process.terminal && req.console_socket.empty()) {
    return fail(Errc::InvalidArgument, "exec: terminal requested but no console socket given");
  }
  std::optional<SeccompProgram> seccomp;
  BERTH_TRY(std::string config_text, util::read_file(st.bundle + "/config.json"));
  try {
    json config = json::parse(config_text);
    // A process.json without capabilities gets the container's, never the runtime's full set.
    if (!process.caps.present && config.contains("process")) {
      json caps_only = {{"args", {"-"}}};
      caps_only["capabilities"] = config["process"].value("capabilities", json::object());
      BERTH_TRY(ProcessSpec container_process, parse_process_spec(caps_only));
      process.caps = container_process.caps;
    }
    if (config.contains("linux") && config["linux"].contains("seccomp")) {
      BERTH_TRY(seccomp,
                compile_seccomp_cached(config["linux"]["seccomp"], root_ + "/.seccomp-cache"));
    }
  } catch (const json::exception& e) {
    return fail(Errc::Corrupt, st.bundle + "/config.json: " + e.what());
  }
  Cgroups cgroups = Cgroups::from_dirs(st.cgroup_v2, st.cgroup_dirs);

  int sp[2];
  if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp) != 0) {
    return fail_errno("socketpair", "exec sync");
  }
  UniqueFd parent_end(sp[0]);
  UniqueFd child_end(sp[1]);
  UniqueFd console;
  if (process.terminal) {
    BERTH_TRY(console, connect_console_socket(req.console_socket));
  }
  ExecContext ctx{&process,
                  seccomp ? &*seccomp : nullptr,
                  child_end.get(),
                  console.get(),
                  {req.stdin_fd, req.stdout_fd, req.stderr_fd}};
  pid_t joiner = ::fork();
  if (joiner < 0) {
    return fail_errno("fork", "exec");
  }
  if (joiner == 0) {
    parent_end.reset();
    exec_joiner(st.pid, cgroups, ctx);
  }
  child_end.reset();
  console.reset();
  int status = 0;
  while (::waitpid(joiner, &status, 0) < 0 && errno == EINTR) {
  }
  BERTH_TRY(SyncMessage msg, sync_recv(parent_end.get()));
  if (msg.type == SyncType::Error) {
    return fail(sync_to_error(msg).wrap("exec in container " + req.id));
  }
  const pid_t pid = msg.code;
  // EOF once the process execs (its end is close-on-exec), or its error.
  for (;;) {
    auto m = sync_recv(parent_end.get());
    if (!m) {
      if (m.error().code() == Errc::Cancelled) {
        break;
      }
      return fail(std::move(m).error());
    }
    if (m->type == SyncType::Error) {
      ::waitpid(pid, nullptr, 0);
      return fail(sync_to_error(*m).wrap("exec in container " + req.id));
    }
  }
  if (!req.pid_file.empty()) {
    BERTH_TRYV(util::write_file_atomic(req.pid_file, std::to_string(pid)));
  }
  return pid;
}

}  // namespace berth::runtime
