#include "container_init.hpp"

#include <fcntl.h>
#include <linux/close_range.h>
#include <sched.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "mounts.hpp"
#include "process.hpp"
#include "sync.hpp"
#include "terminal.hpp"

namespace berth::runtime {
namespace {

Result<void> join_namespaces(const ContainerSpec& spec) {
  for (const auto& ns : spec.namespaces) {
    if (ns.path.empty()) {
      continue;
    }
    if (ns.flag == CLONE_NEWPID || ns.flag == CLONE_NEWUSER || ns.flag == CLONE_NEWNS) {
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
  BERTH_TRY(auto go, sync_recv(ctx.sync_fd));
  if (go.type != SyncType::Go) {
    return fail(Errc::Internal, "unexpected sync message from the runtime");
  }
  if (spec.has_namespace(CLONE_NEWUSER)) {
    // Our host ids are unmapped in the new namespace: become its root (mapped by the runtime).
    if (::setresgid(0, 0, 0) != 0 || ::setresuid(0, 0, 0) != 0) {
      return fail_errno("become root in the user namespace", "(is uid/gid 0 mapped?)");
    }
  }
  BERTH_TRYV(join_namespaces(spec));
  const NamespaceSpec* cgns = spec.find_namespace(CLONE_NEWCGROUP);
  // Unshared only now, after the runtime moved us into our cgroups: they become the ns root.
  if (cgns && cgns->path.empty() && ::unshare(CLONE_NEWCGROUP) != 0) {
    return fail_errno("unshare", "cgroup namespace");
  }
  if (::setsid() < 0) {
    return fail_errno("setsid", "");
  }
  BERTH_TRYV(apply_rlimits(spec.process.rlimits));
  BERTH_TRYV(set_names(spec));
  BERTH_TRYV(prepare_rootfs(spec));
  BERTH_TRYV(pivot_to_rootfs(spec.rootfs));
  if (spec.process.terminal) {
    BERTH_TRYV(setup_terminal(ctx.console_fd, "/dev/console"));
    ::close(ctx.console_fd);
  } else {
    BERTH_TRYV(setup_stdio(ctx.stdio[0], ctx.stdio[1], ctx.stdio[2]));
  }
  BERTH_TRYV(finish_rootfs(spec));
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
  Error e = finalize_and_exec(ctx.spec->process, *exe, ctx.seccomp);
  die(ctx.sync_fd, e, exec_error_exit_code(e));
}

}  // namespace berth::runtime
