#include "berth/runtime/native_runtime.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <thread>

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

Result<void> validate_id(const std::string& id) {
  if (id.empty() || id.size() > 1024 || id.find('/') != std::string::npos || id == "." ||
      id == ".." || id.find('\0') != std::string::npos) {
    return fail(Errc::InvalidArgument, "invalid container id '" + id + "'");
  }
  return {};
}

Result<json> load_json(const std::string& path) {
  BERTH_TRY(std::string text, util::read_file(path));
  try {
    return json::parse(text);
  } catch (const json::exception& e) {
    return fail(Errc::InvalidArgument, path + ": " + e.what());
  }
}

Result<void> write_proc_file(pid_t pid, const char* file, const std::string& content) {
  const std::string path = "/proc/" + std::to_string(pid) + "/" + file;
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CLOEXEC));
  if (!fd || ::write(fd.get(), content.data(), content.size()) < 0) {
    return fail_errno("write", path);
  }
  return {};
}

Result<void> write_id_map(pid_t pid, const char* file, const std::vector<IdMapping>& maps) {
  std::string content;
  for (const auto& m : maps) {
    content += std::to_string(m.container_id) + " " + std::to_string(m.host_id) + " " +
               std::to_string(m.size) + "\n";
  }
  return write_proc_file(pid, file, content);
}

// Undoes a half-made create: kills the child, removes cgroups and the state directory.
class CreateGuard {
 public:
  explicit CreateGuard(std::string dir) : dir_(std::move(dir)) {}
  ~CreateGuard() {
    if (stage1_ > 0) {
      ::kill(stage1_, SIGKILL);
      reap_stage1();
    }
    if (done_) {
      return;
    }
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
    if (cgroups_) {
      (void)cgroups_->destroy();
    }
    (void)util::remove_tree(dir_);
  }
  CreateGuard(const CreateGuard&) = delete;
  CreateGuard& operator=(const CreateGuard&) = delete;
  void set_pid(pid_t pid) { pid_ = pid; }
  // The first stage of a two-stage create, reaped (and killed, on failure) by the guard.
  void set_stage1(pid_t pid) { stage1_ = pid; }
  void reap_stage1() {
    if (stage1_ > 0) {
      while (::waitpid(stage1_, nullptr, 0) < 0 && errno == EINTR) {
      }
      stage1_ = 0;
    }
  }
  void set_cgroups(const Cgroups& cg) { cgroups_ = cg; }
  void dismiss() { done_ = true; }

 private:
  std::string dir_;
  pid_t pid_ = 0;
  pid_t stage1_ = 0;
  std::optional<Cgroups> cgroups_;
  bool done_ = false;
};

int clone_flags(const ContainerSpec& spec) {
  int flags = 0;
  for (const auto& ns : spec.namespaces) {
    // The cgroup namespace is unshared by the child once it sits in its cgroups.
    if (ns.path.empty() && ns.flag != CLONE_NEWCGROUP) {
      flags |= ns.flag;
    }
  }
  return flags;
}

// After "ready", waits until the init's end of the sync socket closes (execve succeeded) or an
// error arrives.
Result<void> wait_for_exec(int sync_fd) {
  SyncMessage m;
  for (;;) {
    ssize_t r = ::recv(sync_fd, &m, sizeof(m), 0);
    if (r < 0 && errno == EINTR) {
      continue;
    }
    if (r == 0) {
      return {};
    }
    if (r < 0) {
      return fail_errno("read from the container's process", "sync socket");
    }
    if (m.type == SyncType::Error) {
      return fail(sync_to_error(m));
    }
  }
}

Result<std::string> runtime_json_path(const std::string& bundle) {
  std::error_code ec;
  auto abs = std::filesystem::absolute(bundle, ec);
  if (ec) {
    return fail(Errc::InvalidArgument, "bundle path " + bundle + ": " + ec.message());
  }
  return abs.lexically_normal().string();
}

}  // namespace

NativeRuntime::NativeRuntime(std::string run_root) : root_(std::move(run_root) + "/native") {}

std::string NativeRuntime::state_dir(const std::string& id) const {
  return root_ + "/" + id;
}

sdk::RuntimeFeatures NativeRuntime::features() {
  sdk::RuntimeFeatures f;
  auto cg = Cgroups::open("/berth");
  f.cgroup_v2 = cg && cg->v2();
  f.cgroup_v1 = cg && !cg->v2();
  f.seccomp = true;
  f.user_namespaces = true;
  f.version = BERTH_VERSION;
  return f;
}

Result<pid_t> NativeRuntime::create(const sdk::CreateRequest& req) {
  BERTH_TRYV(validate_id(req.id));
  BERTH_TRY(const std::string bundle, runtime_json_path(req.bundle));
  BERTH_TRY(json config, load_json(bundle + "/config.json"));
  BERTH_TRY(ContainerSpec spec, parse_container_spec(config, bundle));
  if (spec.cgroups_path.empty()) {
    spec.cgroups_path = "/berth/" + req.id;
  }
  if (spec.process.terminal && req.console_socket.empty()) {
    return fail(Errc::InvalidArgument, "process.terminal is set but no console socket was given");
  }
  BERTH_TRYV(util::make_dirs(root_, 0700));
  const std::string dir = state_dir(req.id);
  if (::mkdir(dir.c_str(), 0700) != 0) {
    if (errno == EEXIST) {
      return fail(Errc::AlreadyExists, "container " + req.id + " already exists in the runtime");
    }
    return fail_errno("create state directory", dir);
  }
  CreateGuard guard(dir);

  UniqueFd fifo;
  if (req.wait_for_start) {
    const std::string fifo_path = dir + "/exec.fifo";
    if (::mkfifo(fifo_path.c_str(), 0600) != 0) {
      return fail_errno("mkfifo", fifo_path);
    }
    // The init reopens it through its fd as the user namespace's root, an unmapped host uid
    // as far as this file goes: let others write (only root reaches the 0700 directory).
    if (spec.has_namespace(CLONE_NEWUSER) && ::chmod(fifo_path.c_str(), 0622) != 0) {
      return fail_errno("chmod", fifo_path);
    }
    fifo.reset(::open(fifo_path.c_str(), O_PATH | O_CLOEXEC));
    if (!fifo) {
      return fail_errno("open", fifo_path);
    }
  }
  std::optional<SeccompProgram> seccomp;
  if (spec.seccomp) {
    BERTH_TRY(seccomp, compile_seccomp_cached(*spec.seccomp, root_ + "/.seccomp-cache"));
  }
  BERTH_TRY(Cgroups cgroups, Cgroups::open(spec.cgroups_path));
  BERTH_TRYV(cgroups.create());
  guard.set_cgroups(cgroups);

  int sp[2];
  if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp) != 0) {
    return fail_errno("socketpair", "sync");
  }
  UniqueFd parent_end(sp[0]);
  UniqueFd child_end(sp[1]);
  UniqueFd console;
  if (spec.process.terminal) {
    BERTH_TRY(console, connect_console_socket(req.console_socket));
  }

  InitContext ctx;
  ctx.spec = &spec;
  ctx.sync_fd = child_end.get();
  ctx.fifo_fd = fifo.get();
  ctx.console_fd = console.get();
  ctx.stdio[0] = req.stdin_fd;
  ctx.stdio[1] = req.stdout_fd;
  ctx.stdio[2] = req.stderr_fd;
  ctx.seccomp = seccomp ? &*seccomp : nullptr;
  ctx.two_stage = needs_two_stage(spec);
  const NamespaceSpec* userns = spec.find_namespace(CLONE_NEWUSER);
  if (userns && userns->path.empty() && spec.uid_mappings.empty()) {
    return fail(Errc::InvalidArgument,
                "config.json: a new user namespace without linux.uidMappings/gidMappings");
  }

  // fork-like clone: the caller is single-threaded, so the child may run ordinary code.
  pid_t pid =
      static_cast<pid_t>(::syscall(SYS_clone, (ctx.two_stage ? 0 : clone_flags(spec)) | SIGCHLD,
                                   nullptr, nullptr, nullptr, nullptr));
  if (pid < 0) {
    return fail_errno("clone", "container " + req.id);
  }
  if (pid == 0) {
    parent_end.reset();
    container_init(ctx);
  }
  if (ctx.two_stage) {
    guard.set_stage1(pid);
  } else {
    guard.set_pid(pid);
  }
  child_end.reset();
  console.reset();

  auto expect = [&](SyncType want) -> Result<SyncMessage> {
    BERTH_TRY(SyncMessage m, sync_recv(parent_end.get()));
    if (m.type == SyncType::Error) {
      return fail(sync_to_error(m).wrap("create container " + req.id));
    }
    if (m.type != want) {
      return fail(Errc::Internal,
                  "create container " + req.id + ": unexpected message from the container's init");
    }
    return m;
  };
  if (userns && userns->path.empty()) {
    if (ctx.two_stage) {
      BERTH_TRYV(expect(SyncType::Userns));
    }
    BERTH_TRYV(write_id_map(pid, "uid_map", spec.uid_mappings));
    BERTH_TRYV(write_id_map(pid, "gid_map", spec.gid_mappings));
  }
  // In two stages the init inherits these from the first stage. In one, the init mounts its
  // rootfs meanwhile and waits for Go only before its cgroup namespace: when it failed before
  // that, its own error is the one to report, not ours at reaching a process that has exited.
  auto init_error_or = [&](Error e) -> Error {
    pollfd p{parent_end.get(), POLLIN, 0};
    if (::poll(&p, 1, 200) > 0) {
      if (auto m = sync_recv(parent_end.get()); m && m->type == SyncType::Error) {
        return sync_to_error(*m).wrap("create container " + req.id);
      }
    }
    return e;
  };
  if (auto r = cgroups.add(pid); !r) {
    return fail(init_error_or(std::move(r).error()));
  }
  if (auto r = cgroups.apply(spec.resources); !r) {
    return fail(init_error_or(std::move(r).error()));
  }
  if (spec.process.oom_score_adj) {
    auto r = write_proc_file(pid, "oom_score_adj", std::to_string(*spec.process.oom_score_adj));
    if (!r) {
      return fail(init_error_or(std::move(r).error()));
    }
  }
  if (!sync_send(parent_end.get(), SyncType::Go)) {
    Error e = fail_errno("signal the container's init", req.id).error();
    return fail(init_error_or(std::move(e)));
  }
  if (ctx.two_stage) {
    BERTH_TRY(SyncMessage child, expect(SyncType::Pid));
    pid = child.code;
    guard.set_pid(pid);
    guard.reap_stage1();
  }
  BERTH_TRY(SyncMessage msg, sync_recv(parent_end.get()));
  if (msg.type == SyncType::Error) {
    return fail(sync_to_error(msg).wrap("create container " + req.id));
  }
  ContainerState st;
  st.id = req.id;
  st.pid = pid;
  st.start_time = process_start_time(pid);
  st.bundle = bundle;
  st.created = rfc3339_now();
  st.cgroup_v2 = cgroups.v2();
  st.cgroup_dirs = cgroups.dirs();
  BERTH_TRYV(write_state(dir, st));
  if (!req.pid_file.empty()) {
    BERTH_TRYV(util::write_file_atomic(req.pid_file, std::to_string(pid)));
  }
  if (!req.wait_for_start) {
    auto r = wait_for_exec(parent_end.get());
    if (!r) {
      return fail(std::move(r).error().wrap("start container " + req.id));
    }
  }
  guard.dismiss();
  return pid;
}

Result<void> NativeRuntime::start(const std::string& id) {
  BERTH_TRYV(validate_id(id));
  const std::string dir = state_dir(id);
  BERTH_TRY(ContainerState st, read_state(dir));
  const std::string fifo_path = dir + "/exec.fifo";
  UniqueFd fifo(::open(fifo_path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC));
  if (!fifo) {
    if (errno == ENOENT) {
      return fail(Errc::Conflict, "container " + id + " is not in the created state");
    }
    return fail_errno("open", fifo_path);
  }
  for (;;) {
    pollfd p{fifo.get(), POLLIN, 0};
    int rc = ::poll(&p, 1, 50);
    if (rc < 0 && errno != EINTR) {
      return fail_errno("poll", fifo_path);
    }
    if (rc > 0 && (p.revents & POLLIN)) {
      char c;
      if (::read(fifo.get(), &c, 1) == 1) {
        break;
      }
    }
    if (!init_alive(st)) {
      return fail(Errc::Conflict, "container " + id + " exited before it was started");
    }
  }
  if (::unlink(fifo_path.c_str()) != 0 && errno != ENOENT) {
    return fail_errno("remove", fifo_path);
  }
  return {};
}

Result<sdk::RuntimeState> NativeRuntime::state(const std::string& id) {
  BERTH_TRYV(validate_id(id));
  const std::string dir = state_dir(id);
  auto st = read_state(dir);
  if (!st) {
    if (st.error().sys_errno() == ENOENT) {
      return fail(Errc::NotFound, "container " + id + " does not exist in the runtime");
    }
    return fail(std::move(st).error());
  }
  sdk::RuntimeState out;
  out.id = st->id;
  out.pid = st->pid;
  out.bundle = st->bundle;
  if (!init_alive(*st)) {
    out.status = sdk::ContainerStatus::Stopped;
  } else if (Cgroups::from_dirs(st->cgroup_v2, st->cgroup_dirs).frozen().value_or(false)) {
    out.status = sdk::ContainerStatus::Paused;
  } else if (::access((dir + "/exec.fifo").c_str(), F_OK) == 0) {
    out.status = sdk::ContainerStatus::Created;
  } else {
    out.status = sdk::ContainerStatus::Running;
  }
  return out;
}

Result<void> NativeRuntime::kill(const std::string& id, int signal, bool all) {
  BERTH_TRYV(validate_id(id));
  BERTH_TRY(ContainerState st, read_state(state_dir(id)));
  if (!init_alive(st)) {
    return fail(Errc::Conflict, "container " + id + " is not running");
  }
  if (all) {
    BERTH_TRY(auto pids, Cgroups::from_dirs(st.cgroup_v2, st.cgroup_dirs).pids());
    for (pid_t p : pids) {
      if (::kill(p, signal) != 0 && errno != ESRCH) {
        return fail_errno("kill", std::to_string(p));
      }
    }
    return {};
  }
  if (::kill(st.pid, signal) != 0) {
    return fail_errno("kill the init of container " + id + ", pid", std::to_string(st.pid));
  }
  return {};
}

Result<void> NativeRuntime::remove(const std::string& id, bool force) {
  BERTH_TRYV(validate_id(id));
  const std::string dir = state_dir(id);
  if (::access(dir.c_str(), F_OK) != 0) {
    return {};
  }
  auto st = read_state(dir);
  if (st) {
    Cgroups cg = Cgroups::from_dirs(st->cgroup_v2, st->cgroup_dirs);
    if (init_alive(*st)) {
      if (!force) {
        return fail(Errc::Conflict,
                    "container " + id + " is running: stop it first or remove it with force");
      }
      (void)cg.freeze(false);  // frozen tasks cannot die
      auto pids = cg.pids();
      for (pid_t p : pids.value_or(std::vector<pid_t>{})) {
        ::kill(p, SIGKILL);
      }
      ::kill(st->pid, SIGKILL);
      for (int i = 0; i < 2000 && init_alive(*st); ++i) {
        ::waitpid(st->pid, nullptr, WNOHANG);
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
      }
    }
    BERTH_TRYV(cg.destroy());
  }
  return util::remove_tree(dir);
}

Result<void> NativeRuntime::pause(const std::string& id) {
  BERTH_TRY(ContainerState st, read_state(state_dir(id)));
  if (!init_alive(st)) {
    return fail(Errc::Conflict, "container " + id + " is not running");
  }
  return Cgroups::from_dirs(st.cgroup_v2, st.cgroup_dirs).freeze(true);
}

Result<void> NativeRuntime::resume(const std::string& id) {
  BERTH_TRY(ContainerState st, read_state(state_dir(id)));
  return Cgroups::from_dirs(st.cgroup_v2, st.cgroup_dirs).freeze(false);
}

Result<void> NativeRuntime::update(const std::string& id, const std::string& resources_json) {
  BERTH_TRY(ContainerState st, read_state(state_dir(id)));
  json r;
  try {
    r = json::parse(resources_json);
  } catch (const json::exception& e) {
    return fail(Errc::InvalidArgument, std::string("resources: ") + e.what());
  }
  return Cgroups::from_dirs(st.cgroup_v2, st.cgroup_dirs).apply(r);
}

Result<sdk::RuntimePtr> make_native_runtime(const sdk::PluginContext& ctx) {
  if (ctx.run_root.empty()) {
    return fail(Errc::InvalidArgument, "native runtime: run_root is empty");
  }
  return sdk::RuntimePtr(std::make_unique<NativeRuntime>(ctx.run_root));
}

int exit_code_for(const Error& e) {
  return exec_error_exit_code(e);
}

}  // namespace berth::runtime
