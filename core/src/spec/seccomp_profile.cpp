// Podman's default seccomp profile, encoded as data.
// Source: github.com/containers/common, pkg/seccomp/seccomp.json (commit 08bbb0dfae71), the
// profile Podman uses by default. Unknown syscalls fail with ENOSYS (defaultErrnoRet 38) so that
// libcs fall back (e.g. clone3 -> clone); explicitly denied ones fail with EPERM.
#include <sys/utsname.h>

#include <algorithm>
#include <initializer_list>

#include "berth/spec/spec_builder.hpp"

namespace berth::spec {
namespace {

using nlohmann::json;

struct Arg {
  unsigned index;
  uint64_t value;
  const char* op;
};

struct Rule {
  std::initializer_list<const char*> names;
  const char* action;
  std::initializer_list<Arg> args;
  std::initializer_list<const char*> include_caps;
  std::initializer_list<const char*> exclude_caps;
  std::initializer_list<const char*> include_arches;
  int errno_ret;  // -1: none
};

constexpr const char* kAllow = "SCMP_ACT_ALLOW";
constexpr const char* kErrno = "SCMP_ACT_ERRNO";

const std::initializer_list<const char*> kAllowed = {"_llseek",
                                                     "_newselect",
                                                     "accept",
                                                     "accept4",
                                                     "access",
                                                     "adjtimex",
                                                     "alarm",
                                                     "bind",
                                                     "brk",
                                                     "capget",
                                                     "capset",
                                                     "chdir",
                                                     "chmod",
                                                     "chown",
                                                     "chown32",
                                                     "clock_adjtime",
                                                     "clock_adjtime64",
                                                     "clock_getres",
                                                     "clock_getres_time64",
                                                     "clock_gettime",
                                                     "clock_gettime64",
                                                     "clock_nanosleep",
                                                     "clock_nanosleep_time64",
                                                     "clone",
                                                     "clone3",
                                                     "close",
                                                     "close_range",
                                                     "connect",
                                                     "copy_file_range",
                                                     "creat",
                                                     "dup",
                                                     "dup2",
                                                     "dup3",
                                                     "epoll_create",
                                                     "epoll_create1",
                                                     "epoll_ctl",
                                                     "epoll_ctl_old",
                                                     "epoll_pwait",
                                                     "epoll_pwait2",
                                                     "epoll_wait",
                                                     "epoll_wait_old",
                                                     "eventfd",
                                                     "eventfd2",
                                                     "execve",
                                                     "execveat",
                                                     "exit",
                                                     "exit_group",
                                                     "faccessat",
                                                     "faccessat2",
                                                     "fadvise64",
                                                     "fadvise64_64",
                                                     "fallocate",
                                                     "fanotify_mark",
                                                     "fchdir",
                                                     "fchmod",
                                                     "fchmodat",
                                                     "fchown",
                                                     "fchown32",
                                                     "fchownat",
                                                     "fcntl",
                                                     "fcntl64",
                                                     "fdatasync",
                                                     "fgetxattr",
                                                     "flistxattr",
                                                     "flock",
                                                     "fork",
                                                     "fremovexattr",
                                                     "fsconfig",
                                                     "fsetxattr",
                                                     "fsmount",
                                                     "fsopen",
                                                     "fspick",
                                                     "fstat",
                                                     "fstat64",
                                                     "fstatat64",
                                                     "fstatfs",
                                                     "fstatfs64",
                                                     "fsync",
                                                     "ftruncate",
                                                     "ftruncate64",
                                                     "futex",
                                                     "futex_time64",
                                                     "futimesat",
                                                     "get_robust_list",
                                                     "get_thread_area",
                                                     "getcpu",
                                                     "getcwd",
                                                     "getdents",
                                                     "getdents64",
                                                     "getegid",
                                                     "getegid32",
                                                     "geteuid",
                                                     "geteuid32",
                                                     "getgid",
                                                     "getgid32",
                                                     "getgroups",
                                                     "getgroups32",
                                                     "getitimer",
                                                     "getpeername",
                                                     "getpgid",
                                                     "getpgrp",
                                                     "getpid",
                                                     "getppid",
                                                     "getpriority",
                                                     "getrandom",
                                                     "getresgid",
                                                     "getresgid32",
                                                     "getresuid",
                                                     "getresuid32",
                                                     "getrlimit",
                                                     "getrusage",
                                                     "getsid",
                                                     "getsockname",
                                                     "getsockopt",
                                                     "gettid",
                                                     "gettimeofday",
                                                     "getuid",
                                                     "getuid32",
                                                     "getxattr",
                                                     "inotify_add_watch",
                                                     "inotify_init",
                                                     "inotify_init1",
                                                     "inotify_rm_watch",
                                                     "io_cancel",
                                                     "io_destroy",
                                                     "io_getevents",
                                                     "io_setup",
                                                     "io_submit",
                                                     "ioctl",
                                                     "ioprio_get",
                                                     "ioprio_set",
                                                     "ipc",
                                                     "keyctl",
                                                     "kill",
                                                     "lchown",
                                                     "lchown32",
                                                     "lgetxattr",
                                                     "link",
                                                     "linkat",
                                                     "listen",
                                                     "listxattr",
                                                     "llistxattr",
                                                     "lremovexattr",
                                                     "lseek",
                                                     "lsetxattr",
                                                     "lstat",
                                                     "lstat64",
                                                     "madvise",
                                                     "memfd_create",
                                                     "mincore",
                                                     "mkdir",
                                                     "mkdirat",
                                                     "mknod",
                                                     "mknodat",
                                                     "mlock",
                                                     "mlock2",
                                                     "mlockall",
                                                     "mmap",
                                                     "mmap2",
                                                     "mount",
                                                     "move_mount",
                                                     "mprotect",
                                                     "mq_getsetattr",
                                                     "mq_notify",
                                                     "mq_open",
                                                     "mq_timedreceive",
                                                     "mq_timedreceive_time64",
                                                     "mq_timedsend",
                                                     "mq_timedsend_time64",
                                                     "mq_unlink",
                                                     "mremap",
                                                     "msgctl",
                                                     "msgget",
                                                     "msgrcv",
                                                     "msgsnd",
                                                     "msync",
                                                     "munlock",
                                                     "munlockall",
                                                     "munmap",
                                                     "name_to_handle_at",
                                                     "nanosleep",
                                                     "newfstatat",
                                                     "open",
                                                     "openat",
                                                     "openat2",
                                                     "open_tree",
                                                     "pause",
                                                     "pidfd_getfd",
                                                     "pidfd_open",
                                                     "pidfd_send_signal",
                                                     "pipe",
                                                     "pipe2",
                                                     "pivot_root",
                                                     "pkey_alloc",
                                                     "pkey_free",
                                                     "pkey_mprotect",
                                                     "poll",
                                                     "ppoll",
                                                     "ppoll_time64",
                                                     "prctl",
                                                     "pread64",
                                                     "preadv",
                                                     "preadv2",
                                                     "prlimit64",
                                                     "pselect6",
                                                     "pselect6_time64",
                                                     "pwrite64",
                                                     "pwritev",
                                                     "pwritev2",
                                                     "read",
                                                     "readahead",
                                                     "readdir",
                                                     "readlink",
                                                     "readlinkat",
                                                     "readv",
                                                     "reboot",
                                                     "recv",
                                                     "recvfrom",
                                                     "recvmmsg",
                                                     "recvmmsg_time64",
                                                     "recvmsg",
                                                     "remap_file_pages",
                                                     "removexattr",
                                                     "rename",
                                                     "renameat",
                                                     "renameat2",
                                                     "restart_syscall",
                                                     "rmdir",
                                                     "rseq",
                                                     "rt_sigaction",
                                                     "rt_sigpending",
                                                     "rt_sigprocmask",
                                                     "rt_sigqueueinfo",
                                                     "rt_sigreturn",
                                                     "rt_sigsuspend",
                                                     "rt_sigtimedwait",
                                                     "rt_sigtimedwait_time64",
                                                     "rt_tgsigqueueinfo",
                                                     "sched_get_priority_max",
                                                     "sched_get_priority_min",
                                                     "sched_getaffinity",
                                                     "sched_getattr",
                                                     "sched_getparam",
                                                     "sched_getscheduler",
                                                     "sched_rr_get_interval",
                                                     "sched_rr_get_interval_time64",
                                                     "sched_setaffinity",
                                                     "sched_setattr",
                                                     "sched_setparam",
                                                     "sched_setscheduler",
                                                     "sched_yield",
                                                     "seccomp",
                                                     "select",
                                                     "semctl",
                                                     "semget",
                                                     "semop",
                                                     "semtimedop",
                                                     "semtimedop_time64",
                                                     "send",
                                                     "sendfile",
                                                     "sendfile64",
                                                     "sendmmsg",
                                                     "sendmsg",
                                                     "sendto",
                                                     "setns",
                                                     "set_robust_list",
                                                     "set_thread_area",
                                                     "set_tid_address",
                                                     "setfsgid",
                                                     "setfsgid32",
                                                     "setfsuid",
                                                     "setfsuid32",
                                                     "setgid",
                                                     "setgid32",
                                                     "setgroups",
                                                     "setgroups32",
                                                     "setitimer",
                                                     "setpgid",
                                                     "setpriority",
                                                     "setregid",
                                                     "setregid32",
                                                     "setresgid",
                                                     "setresgid32",
                                                     "setresuid",
                                                     "setresuid32",
                                                     "setreuid",
                                                     "setreuid32",
                                                     "setrlimit",
                                                     "setsid",
                                                     "setsockopt",
                                                     "setuid",
                                                     "setuid32",
                                                     "setxattr",
                                                     "shmat",
                                                     "shmctl",
                                                     "shmdt",
                                                     "shmget",
                                                     "shutdown",
                                                     "sigaltstack",
                                                     "signalfd",
                                                     "signalfd4",
                                                     "sigreturn",
                                                     "socketcall",
                                                     "socketpair",
                                                     "splice",
                                                     "stat",
                                                     "stat64",
                                                     "statfs",
                                                     "statfs64",
                                                     "statx",
                                                     "symlink",
                                                     "symlinkat",
                                                     "sync",
                                                     "sync_file_range",
                                                     "syncfs",
                                                     "sysinfo",
                                                     "syslog",
                                                     "tee",
                                                     "tgkill",
                                                     "time",
                                                     "timer_create",
                                                     "timer_delete",
                                                     "timer_getoverrun",
                                                     "timer_gettime",
                                                     "timer_gettime64",
                                                     "timer_settime",
                                                     "timer_settime64",
                                                     "timerfd_create",
                                                     "timerfd_gettime",
                                                     "timerfd_gettime64",
                                                     "timerfd_settime",
                                                     "timerfd_settime64",
                                                     "times",
                                                     "tkill",
                                                     "truncate",
                                                     "truncate64",
                                                     "ugetrlimit",
                                                     "umask",
                                                     "umount",
                                                     "umount2",
                                                     "uname",
                                                     "unlink",
                                                     "unlinkat",
                                                     "unshare",
                                                     "utime",
                                                     "utimensat",
                                                     "utimensat_time64",
                                                     "utimes",
                                                     "vfork",
                                                     "wait4",
                                                     "waitid",
                                                     "waitpid",
                                                     "write",
                                                     "writev"};

// Pairs of (allowed with the capability, EPERM without it).
struct CapGated {
  std::initializer_list<const char*> names;
  const char* cap;
};
const std::initializer_list<CapGated> kCapGated = {
    {{"open_by_handle_at"}, "CAP_DAC_READ_SEARCH"},
    {{"bpf", "fanotify_init", "lookup_dcookie", "perf_event_open", "quotactl", "setdomainname",
      "sethostname", "setns"},
     "CAP_SYS_ADMIN"},
    {{"chroot"}, "CAP_SYS_CHROOT"},
    {{"delete_module", "init_module", "finit_module", "query_module"}, "CAP_SYS_MODULE"},
    {{"get_mempolicy", "mbind", "set_mempolicy"}, "CAP_SYS_NICE"},
    {{"acct"}, "CAP_SYS_PACCT"},
    {{"kcmp", "process_madvise", "process_vm_readv", "process_vm_writev", "ptrace"},
     "CAP_SYS_PTRACE"},
    {{"iopl", "ioperm"}, "CAP_SYS_RAWIO"},
    {{"settimeofday", "stime", "clock_settime", "clock_settime64"}, "CAP_SYS_TIME"},
    {{"vhangup"}, "CAP_SYS_TTY_CONFIG"},
};

json names_json(std::initializer_list<const char*> names) {
  json out = json::array();
  for (const char* n : names) {
    out.push_back(n);
  }
  return out;
}

json rule_json(const Rule& r) {
  json j{{"names", names_json(r.names)}, {"action", r.action}, {"args", json::array()}};
  for (const Arg& a : r.args) {
    j["args"].push_back({{"index", a.index}, {"value", a.value}, {"valueTwo", 0}, {"op", a.op}});
  }
  j["includes"] = json::object();
  j["excludes"] = json::object();
  if (r.include_caps.size() > 0) {
    j["includes"]["caps"] = names_json(r.include_caps);
  }
  if (r.include_arches.size() > 0) {
    j["includes"]["arches"] = names_json(r.include_arches);
  }
  if (r.exclude_caps.size() > 0) {
    j["excludes"]["caps"] = names_json(r.exclude_caps);
  }
  if (r.errno_ret >= 0) {
    j["errnoRet"] = r.errno_ret;
  }
  return j;
}

json make_profile() {
  json syscalls = json::array();
  syscalls.push_back(rule_json({{"bdflush",        "io_pgetevents",   "kexec_file_load",
                                 "kexec_load",     "membarrier",      "migrate_pages",
                                 "move_pages",     "nfsservctl",      "nice",
                                 "oldfstat",       "oldlstat",        "oldolduname",
                                 "oldstat",        "olduname",        "pciconfig_iobase",
                                 "pciconfig_read", "pciconfig_write", "sgetmask",
                                 "ssetmask",       "swapcontext",     "swapoff",
                                 "swapon",         "sysfs",           "uselib",
                                 "userfaultfd",    "ustat",           "vm86",
                                 "vm86old",        "vmsplice"},
                                kErrno,
                                {},
                                {},
                                {},
                                {},
                                1}));
  syscalls.push_back(rule_json({kAllowed, kAllow, {}, {}, {}, {}, -1}));
  for (uint64_t persona : {0ULL, 8ULL, 131072ULL, 131080ULL, 4294967295ULL}) {
    syscalls.push_back(
        rule_json({{"personality"}, kAllow, {{0, persona, "SCMP_CMP_EQ"}}, {}, {}, {}, -1}));
  }
  syscalls.push_back(rule_json({{"sync_file_range2"}, kAllow, {}, {}, {}, {"ppc64le"}, -1}));
  syscalls.push_back(rule_json({{"arm_fadvise64_64", "arm_sync_file_range", "sync_file_range2",
                                 "breakpoint", "cacheflush", "set_tls"},
                                kAllow,
                                {},
                                {},
                                {},
                                {"arm", "arm64"},
                                -1}));
  syscalls.push_back(rule_json({{"arch_prctl"}, kAllow, {}, {}, {}, {"amd64", "x32"}, -1}));
  syscalls.push_back(rule_json({{"modify_ldt"}, kAllow, {}, {}, {}, {"amd64", "x32", "x86"}, -1}));
  syscalls.push_back(rule_json({{"s390_pci_mmio_read", "s390_pci_mmio_write", "s390_runtime_instr"},
                                kAllow,
                                {},
                                {},
                                {},
                                {"s390", "s390x"},
                                -1}));
  for (const CapGated& g : kCapGated) {
    syscalls.push_back(rule_json({g.names, kAllow, {}, {g.cap}, {}, {}, -1}));
    syscalls.push_back(rule_json({g.names, kErrno, {}, {}, {g.cap}, {}, 1}));
  }
  // socket(AF_NETLINK, *, NETLINK_AUDIT) is refused without CAP_AUDIT_WRITE.
  syscalls.push_back(rule_json({{"socket"},
                                kErrno,
                                {{0, 16, "SCMP_CMP_EQ"}, {2, 9, "SCMP_CMP_EQ"}},
                                {},
                                {"CAP_AUDIT_WRITE"},
                                {},
                                22}));
  syscalls.push_back(
      rule_json({{"socket"}, kAllow, {{2, 9, "SCMP_CMP_NE"}}, {}, {"CAP_AUDIT_WRITE"}, {}, -1}));
  syscalls.push_back(
      rule_json({{"socket"}, kAllow, {{0, 16, "SCMP_CMP_NE"}}, {}, {"CAP_AUDIT_WRITE"}, {}, -1}));
  syscalls.push_back(rule_json({{"socket"}, kAllow, {}, {"CAP_AUDIT_WRITE"}, {}, {}, -1}));

  json arch_map = json::array({
      {{"architecture", "SCMP_ARCH_X86_64"},
       {"subArchitectures", {"SCMP_ARCH_X86", "SCMP_ARCH_X32"}}},
      {{"architecture", "SCMP_ARCH_AARCH64"}, {"subArchitectures", {"SCMP_ARCH_ARM"}}},
      {{"architecture", "SCMP_ARCH_S390X"}, {"subArchitectures", {"SCMP_ARCH_S390"}}},
  });
  return json{{"defaultAction", kErrno},
              {"defaultErrnoRet", 38},
              {"archMap", arch_map},
              {"syscalls", syscalls}};
}

// The profile's arch names ("amd64") and libseccomp's ("SCMP_ARCH_X86_64") for this host.
struct HostArch {
  std::string go_name;
  std::string scmp_name;
};

HostArch host_arch() {
#if defined(__x86_64__)
  return {"amd64", "SCMP_ARCH_X86_64"};
#elif defined(__aarch64__)
  return {"arm64", "SCMP_ARCH_AARCH64"};
#elif defined(__s390x__)
  return {"s390x", "SCMP_ARCH_S390X"};
#else
  return {"unknown", ""};
#endif
}

bool contains(const json& list, const std::string& value) {
  if (!list.is_array()) {
    return false;
  }
  return std::any_of(list.begin(), list.end(),
                     [&](const json& v) { return v.is_string() && v.get<std::string>() == value; });
}

bool has_all_caps(const json& caps, const std::vector<std::string>& have) {
  for (const auto& c : caps) {
    if (std::find(have.begin(), have.end(), c.get<std::string>()) == have.end()) {
      return false;
    }
  }
  return true;
}

bool rule_applies(const json& rule, const std::vector<std::string>& caps, const HostArch& arch) {
  const json inc = rule.value("includes", json::object());
  const json exc = rule.value("excludes", json::object());
  if (inc.contains("arches") && !contains(inc["arches"], arch.go_name)) {
    return false;
  }
  if (exc.contains("arches") && contains(exc["arches"], arch.go_name)) {
    return false;
  }
  if (inc.contains("caps") && !has_all_caps(inc["caps"], caps)) {
    return false;
  }
  if (exc.contains("caps")) {
    for (const auto& c : exc["caps"]) {
      if (std::find(caps.begin(), caps.end(), c.get<std::string>()) != caps.end()) {
        return false;
      }
    }
  }
  return true;
}

}  // namespace

const nlohmann::json& default_seccomp_profile() {
  static const json profile = make_profile();
  return profile;
}

Result<nlohmann::json> seccomp_for_spec(const nlohmann::json& profile,
                                        const std::vector<std::string>& capabilities) {
  try {
    const HostArch arch = host_arch();
    json out{{"defaultAction", profile.at("defaultAction")}};
    if (profile.contains("defaultErrnoRet")) {
      out["defaultErrnoRet"] = profile["defaultErrnoRet"];
    }
    json arches = json::array();
    for (const auto& m : profile.value("archMap", json::array())) {
      if (m.at("architecture") == arch.scmp_name) {
        arches.push_back(m["architecture"]);
        for (const auto& s : m.value("subArchitectures", json::array())) {
          arches.push_back(s);
        }
      }
    }
    out["architectures"] = arches;
    json syscalls = json::array();
    for (const auto& rule : profile.at("syscalls")) {
      if (!rule_applies(rule, capabilities, arch)) {
        continue;
      }
      json r{{"names", rule.at("names")}, {"action", rule.at("action")}};
      if (rule.contains("args") && rule["args"].is_array() && !rule["args"].empty()) {
        r["args"] = rule["args"];
      }
      if (rule.contains("errnoRet")) {
        r["errnoRet"] = rule["errnoRet"];
      }
      syscalls.push_back(std::move(r));
    }
    out["syscalls"] = std::move(syscalls);
    return out;
  } catch (const json::exception& e) {
    return fail(Errc::InvalidArgument, std::string("seccomp profile: ") + e.what());
  }
}

}  // namespace berth::spec
