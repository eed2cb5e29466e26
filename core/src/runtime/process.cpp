#include "process.hpp"

#include <fcntl.h>
#include <grp.h>
#include <spdlog/spdlog.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "capabilities.hpp"

namespace berth::runtime {

Result<void> setup_stdio(int in, int out, int err) {
  int fds[3] = {in, out, err};
  int high[3];
  for (int i = 0; i < 3; ++i) {
    if (fds[i] < 0) {
      high[i] = ::open("/dev/null", O_RDWR | O_CLOEXEC);
      if (high[i] < 0) {
        return fail_errno("open", "/dev/null");
      }
    } else {
      // Move out of the 0..2 range first so that dup2 order cannot clobber a source.
      high[i] = ::fcntl(fds[i], F_DUPFD_CLOEXEC, 10);
      if (high[i] < 0) {
        return fail_errno("dup stdio fd", std::to_string(fds[i]));
      }
    }
  }
  for (int i = 0; i < 3; ++i) {
    if (::dup2(high[i], i) < 0) {
      return fail_errno("dup2 stdio fd", std::to_string(i));
    }
    ::close(high[i]);
  }
  return {};
}

Result<void> apply_rlimits(const std::vector<RlimitSpec>& rlimits) {
  for (const auto& r : rlimits) {
    rlimit cur{};
    if (::getrlimit(r.resource, &cur) != 0) {
      return fail_errno("getrlimit", r.name);
    }
    rlimit want{r.soft, r.hard};
    if (::setrlimit(r.resource, &want) == 0) {
      continue;
    }
    if (errno != EPERM) {
      return fail_errno("setrlimit", r.name);
    }
    // Raising a hard limit needs CAP_SYS_RESOURCE: clamp to what this process has.
    want.rlim_max = std::min(want.rlim_max, cur.rlim_max);
    want.rlim_cur = std::min(want.rlim_cur, want.rlim_max);
    spdlog::warn("{} {}:{} is above the hard limit {}; clamped", r.name, r.soft, r.hard,
                 cur.rlim_max);
    if (::setrlimit(r.resource, &want) != 0) {
      return fail_errno("setrlimit", r.name);
    }
  }
  return {};
}

namespace {

std::string env_value(const std::vector<std::string>& env, const std::string& key) {
  for (const auto& kv : env) {
    if (kv.size() > key.size() && kv.compare(0, key.size(), key) == 0 && kv[key.size()] == '=') {
      return kv.substr(key.size() + 1);
    }
  }
  return {};
}

// 0 when `path` is an executable regular file, else the errno execve would give.
int check_executable(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    return errno;
  }
  if (!S_ISREG(st.st_mode) || (st.st_mode & 0111) == 0) {
    return EACCES;
  }
  return 0;
}

}  // namespace

Result<std::string> find_executable(const ProcessSpec& process) {
  const std::string& name = process.args.front();
  if (name.find('/') != std::string::npos) {
    int err = check_executable(name);
    if (err == 0) {
      return name;
    }
    if (err == ENOENT || err == ENOTDIR) {
      return fail(Error(Errc::NotFound, name + ": no such file or directory", err));
    }
    return fail(
        Error(Errc::PermissionDenied, name + ": permission denied (not an executable file)", err));
  }
  std::string path = env_value(process.env, "PATH");
  if (path.empty()) {
    path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
  }
  bool denied = false;
  size_t start = 0;
  while (start <= path.size()) {
    size_t end = path.find(':', start);
    std::string dir =
        path.substr(start, end == std::string::npos ? std::string::npos : end - start);
    std::string candidate = (dir.empty() ? "." : dir) + "/" + name;
    int err = check_executable(candidate);
    if (err == 0) {
      return candidate;
    }
    denied |= err == EACCES;
    if (end == std::string::npos) {
      break;
    }
    start = end + 1;
  }
  if (denied) {
    return fail(Error(Errc::PermissionDenied, name + ": permission denied", EACCES));
  }
  return fail(Error(Errc::NotFound, "executable file '" + name + "' not found in $PATH", ENOENT));
}

Error finalize_and_exec(const ProcessSpec& p, const std::string& executable,
                        const SeccompProgram* seccomp) {
  auto run = [&]() -> Result<void> {
    // Without no_new_privs, loading a filter needs CAP_SYS_ADMIN: load it while we have it.
    if (seccomp && !p.no_new_privileges) {
      BERTH_TRYV(load_seccomp(*seccomp));
    }
    BERTH_TRYV(drop_bounding_set(p.caps));
    if (::prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) != 0) {
      return fail_errno("prctl", "PR_SET_KEEPCAPS");
    }
    if (::setgroups(p.additional_gids.size(), p.additional_gids.data()) != 0) {
      return fail_errno("setgroups", "");
    }
    if (::setresgid(p.gid, p.gid, p.gid) != 0) {
      return fail_errno("setgid", std::to_string(p.gid));
    }
    if (::setresuid(p.uid, p.uid, p.uid) != 0) {
      return fail_errno("setuid", std::to_string(p.uid));
    }
    if (::prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0) != 0) {
      return fail_errno("prctl", "PR_SET_KEEPCAPS");
    }
    BERTH_TRYV(apply_capabilities(p.caps));
    if (p.no_new_privileges && ::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
      return fail_errno("prctl", "PR_SET_NO_NEW_PRIVS");
    }
    if (seccomp && p.no_new_privileges) {
      BERTH_TRYV(load_seccomp(*seccomp));
    }
    std::vector<char*> argv;
    for (const auto& a : p.args) {
      argv.push_back(const_cast<char*>(a.c_str()));
    }
    argv.push_back(nullptr);
    std::vector<char*> envp;
    for (const auto& e : p.env) {
      envp.push_back(const_cast<char*>(e.c_str()));
    }
    envp.push_back(nullptr);
    ::execve(executable.c_str(), argv.data(), envp.data());
    const int err = errno;
    Errc code = err == ENOENT ? Errc::NotFound : Errc::PermissionDenied;
    return fail(Error(code, "exec " + executable + ": " + std::strerror(err), err));
  };
  auto r = run();
  return r ? Error(Errc::Internal, "execve returned") : r.error();
}

int exec_error_exit_code(const Error& e) {
  if (e.code() == Errc::NotFound) {
    return 127;
  }
  if (e.code() == Errc::PermissionDenied) {
    return 126;
  }
  return 125;
}

}  // namespace berth::runtime
