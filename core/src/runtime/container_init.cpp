#include "container_init.hpp"

#include <fcntl.h>
#include <linux/close_range.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>

#include "mounts.hpp"
#include "process.hpp"
#include "sync.hpp"
#include "terminal.hpp"

namespace berth::runtime {
namespace {

// Joins the namespaces given by path. In two stages the first joins all but the user namespace
// as the host's root (a path namespace is the host's, owned by its user namespace), then that.
Result<void> join_namespaces(const ContainerSpec& spec, bool two_stage, bool user) {
  for (const auto& ns : spec.namespaces) {
    if (ns.path.empty() || (ns.flag == CLONE_NEWUSER) != user) {
      continue;
    }
    if (ns.flag == CLONE_NEWNS ||
        (!two_stage && (ns.flag == CLONE_NEWPID || ns.flag == CLONE_NEWUSER))) {
      return fail(Errc::NotSupported, "joining an existing " + ns.type + " namespace (" + ns.path +
                                          ") is not supported by the native runtime");
    }
    int fd = ::open(ns.path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      return fail_errno("open " + ns.type + " namespace", ns.path);
    }
    int rc = ::setns(fd, ns.flag);
    ::close(fd);
    if (rc != 0) {
      return fail_errno("join " + ns.type + " namespace", ns.path);
    }
  }
  return {};
}

Result<void> become_root() {
  // Our host ids are unmapped in the new namespace: become its root (mapped by the runtime).
  if (::setresgid(0, 0, 0) != 0 || ::setresuid(0, 0, 0) != 0) {
    return fail_errno("become root in the user namespace", "(are uid and gid 0 mapped?)");
  }
  return {};
}

// Set in the first stage, inherited by the init: the net.* sysctls are written already, and
// the bind mount sources cloned as the host's root (by mount index, -1 for none).
bool g_net_sysctls_written = false;
std::vector<int> g_mount_source_fds;

// The first stage: returns in the init (the second stage), never in the first.
Result<void> first_stage(const InitContext& ctx) {
  const ContainerSpec& spec = *ctx.spec;
  BERTH_TRYV(join_namespaces(spec, true, false));
  const NamespaceSpec* user = spec.find_namespace(CLONE_NEWUSER);
  const NamespaceSpec* net = spec.find_namespace(CLONE_NEWNET);
  if (user && net && !net->path.empty()) {
    // The host made this network namespace: only the host's root may set its sysctls.
    BERTH_TRYV(write_net_sysctls(spec));
    g_net_sysctls_written = true;
  }
  if (user) {
    for (const auto& m : spec.mounts) {
      // A source that cannot be cloned here is reported by its mount, by path, as before.
      const unsigned flags =
          OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | ((m.flags & MS_REC) ? AT_RECURSIVE : 0);
      g_mount_source_fds.push_back(
          m.bind ? static_cast<int>(::syscall(SYS_open_tree, AT_FDCWD, m.source.c_str(), flags))
                 : -1);
    }
  }
  if (user && user->path.empty()) {
    if (::unshare(CLONE_NEWUSER) != 0) {
      return fail_errno("unshare", "user namespace");
    }
    if (!sync_send(ctx.sync_fd, SyncType::Userns)) {
      return fail_errno("report the user namespace to the runtime", "sync socket");
    }
  }
  BERTH_TRY(auto go, sync_recv(ctx.sync_fd));
  if (go.type != SyncType::Go) {
    return fail(Errc::Internal, "unexpected sync message from the runtime");
  }
  if (user) {
    BERTH_TRYV(join_namespaces(spec, true, true));
    BERTH_TRYV(become_root());
  }
  int flags = 0;
  for (const auto& ns : spec.namespaces) {
    if (ns.path.empty() && ns.flag != CLONE_NEWUSER && ns.flag != CLONE_NEWCGROUP) {
      flags |= ns.flag;
    }
  }
  if (flags != 0 && ::unshare(flags) != 0) {
    return fail_errno("unshare", "the container's namespaces");
  }
  // The init shares the sync socket with us and must not speak on it before our Pid message (a
  // Ready or Error first would be "unexpected" to the runtime): it waits for this pipe's EOF,
  // which our exit after the message gives it.
  int order[2];
  if (::pipe2(order, O_CLOEXEC) != 0) {
    return fail_errno("pipe2", "order of the container's init");
  }
  pid_t pid = static_cast<pid_t>(
      ::syscall(SYS_clone, CLONE_PARENT | SIGCHLD, nullptr, nullptr, nullptr, nullptr));
  if (pid < 0) {
    return fail_errno("clone", "the container's init");
  }
  if (pid == 0) {
    ::close(order[1]);
    char c;
    while (::read(order[0], &c, 1) < 0 && errno == EINTR) {
    }
    ::close(order[0]);
    if (::prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) {  // see container_init(); a clone has none
      return fail_errno("prctl PR_SET_PDEATHSIG", "the container's init");
    }
    return {};
  }
  sync_send(ctx.sync_fd, SyncType::Pid, pid);
  ::_exit(0);
}

Result<void> set_names(const ContainerSpec& spec) {
  const NamespaceSpec* uts = spec.find_namespace(CLONE_NEWUTS);
  if (!uts || !uts->path.empty()) {
    return {};  // never rename the host
  }
  if (!spec.hostname.empty() && ::sethostname(spec.hostname.data(), spec.hostname.size()) != 0) {
    return fail_errno("sethostname", spec.hostname);
  }
  if (!spec.domainname.empty() &&
      ::setdomainname(spec.domainname.data(), spec.domainname.size()) != 0) {
    return fail_errno("setdomainname", spec.domainname);
  }
  return {};
}

// Blocks until `start` opens the fifo for reading.
Result<void> wait_for_start(int fifo_fd) {
  const std::string path = "/proc/self/fd/" + std::to_string(fifo_fd);
  int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) {
    return fail_errno("open exec fifo", path);
  }
  char zero = '0';
  ssize_t w = ::write(fd, &zero, 1);
  ::close(fd);
  ::close(fifo_fd);
  if (w != 1) {
    return fail_errno("write exec fifo", path);
  }
  return {};
}

Result<std::string> setup(const InitContext& ctx) {
  const ContainerSpec& spec = *ctx.spec;
  if (ctx.two_stage) {
    BERTH_TRYV(first_stage(ctx));  // the runtime's Go came before the second stage
  } else {
    BERTH_TRYV(join_namespaces(spec, false, false));
  }
  // Meanwhile the runtime moves us into our cgroups (in cgroup v1 the first attach waits for an
  // RCU grace period: 0.5-4 ms here): what does not depend on them goes first.
  auto enter_cgroups = [&]() -> Result<void> {
    if (!ctx.two_stage) {
      BERTH_TRY(auto go, sync_recv(ctx.sync_fd));
      if (go.type != SyncType::Go) {
        return fail(Errc::Internal, "unexpected sync message from the runtime");
      }
    }
    const NamespaceSpec* cgns = spec.find_namespace(CLONE_NEWCGROUP);
    // Unshared only now, in our cgroups: they become the namespace's root.
    if (cgns && cgns->path.empty() && ::unshare(CLONE_NEWCGROUP) != 0) {
      return fail_errno("unshare", "cgroup namespace");
    }
    return {};
  };
  if (::setsid() < 0) {
    return fail_errno("setsid", "");
  }
  BERTH_TRYV(apply_rlimits(spec.process.rlimits));
  BERTH_TRYV(set_names(spec));
  BERTH_TRYV(prepare_rootfs(spec, g_mount_source_fds, enter_cgroups));
  BERTH_TRYV(pivot_to_rootfs(spec.rootfs));
  if (spec.process.terminal) {
    BERTH_TRYV(setup_terminal(ctx.console_fd, "/dev/console", spec.process.console_height,
                              spec.process.console_width));
    ::close(ctx.console_fd);
  } else {
    BERTH_TRYV(setup_stdio(ctx.stdio[0], ctx.stdio[1], ctx.stdio[2]));
  }
  BERTH_TRYV(finish_rootfs(spec, g_net_sysctls_written));
  BERTH_TRYV(make_dirs_in_root(spec.process.cwd));
  if (::chdir(spec.process.cwd.c_str()) != 0) {
    return fail_errno("chdir to the working directory", spec.process.cwd);
  }
  return find_executable(spec.process);
}

[[noreturn]] void die(int sync_fd, const Error& e, int code) {
  // Reported to whoever still listens; stderr is the container's by now, which is where a
  // user of `start` would look.
  if (!sync_send_error(sync_fd, e) || code != 1) {
    std::string msg = "berth: " + e.message() + "\n";
    (void)!::write(2, msg.data(), msg.size());
  }
  ::_exit(code);
}

}  // namespace

bool needs_two_stage(const ContainerSpec& spec) {
  const NamespaceSpec* pid = spec.find_namespace(CLONE_NEWPID);
  return spec.has_namespace(CLONE_NEWUSER) || (pid && !pid->path.empty());
}

void reset_process_state() {
  sigset_t all;
  sigfillset(&all);
  ::sigprocmask(SIG_UNBLOCK, &all, nullptr);
  for (int s = 1; s < NSIG; ++s) {
    if (s != SIGKILL && s != SIGSTOP) {
      ::signal(s, SIG_DFL);
    }
  }
  ::syscall(SYS_close_range, 3, ~0U, CLOSE_RANGE_CLOEXEC);
}

void container_init(const InitContext& ctx) {
  reset_process_state();
  // Until the exec: should the runtime's process (the monitor) die before it knows our pid, or
  // before the start, nobody would end us and we would wait for a start forever.
  if (::prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) {
    die(ctx.sync_fd, Error::from_errno("prctl PR_SET_PDEATHSIG", "the container's init", errno), 1);
  }
  auto exe = setup(ctx);
  if (!exe) {
    die(ctx.sync_fd, exe.error(), 1);
  }
  if (!sync_send(ctx.sync_fd, SyncType::Ready)) {
    ::_exit(1);
  }
  if (ctx.fifo_fd >= 0) {
    if (auto r = wait_for_start(ctx.fifo_fd); !r) {
      die(ctx.sync_fd, r.error(), 1);
    }
  }
  if (::prctl(PR_SET_PDEATHSIG, 0) != 0) {  // the container outlives its monitor, as with conmon
    die(ctx.sync_fd, Error::from_errno("prctl PR_SET_PDEATHSIG 0", "the container's init", errno),
        1);
  }
  Error e = finalize_and_exec(ctx.spec->process, *exe, ctx.seccomp);
  die(ctx.sync_fd, e, exec_error_exit_code(e));
}

}  // namespace berth::runtime
