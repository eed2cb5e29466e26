// create, start, stop, kill, rm, cleanup, wait, run: the container lifecycle.
#include <fcntl.h>
#include <linux/close_range.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include "berth/container/log_format.hpp"
#include "berth/container/service.hpp"
#include "berth/image/image_service.hpp"
#include "berth/runtime/native_runtime.hpp"
#include "berth/spec/spec_builder.hpp"
#include "berth/util/digest.hpp"
#include "berth/util/fs.hpp"
#include "features.hpp"
#include "internal.hpp"

namespace berth::container {

using nlohmann::json;

int exit_code_for(const Error& e) {
  if (e.sys_errno() == ECHILD && e.code() == Errc::NotFound) {
    return 127;
  }
  if (e.sys_errno() == ECHILD && e.code() == Errc::PermissionDenied) {
    return 126;
  }
  return 125;
}

namespace detail {

Error exec_error(int code, std::string message) {
  if (code == 127) {
    return Error(Errc::NotFound, std::move(message), ECHILD);
  }
  if (code == 126) {
    return Error(Errc::PermissionDenied, std::move(message), ECHILD);
  }
  return Error(Errc::Internal, std::move(message));
}

std::string self_exe() {
  std::error_code ec;
  auto p = std::filesystem::read_symlink("/proc/self/exe", ec);
  return ec ? std::string("berth") : p.string();
}

Result<std::unique_ptr<ContainerDb>> open_db(engine::Engine& eng, bool /*read_only*/) {
  // Always read-write: a read-only SQLite connection to a WAL database fails when its -shm file
  // is missing, and the readers here are short.
  return ContainerDb::open(eng.graphroot(), false);
}

Result<std::unique_ptr<store::Store>> open_layers(engine::Engine& eng) {
  BERTH_TRY(auto* driver, eng.storage());
  store::StoreOptions o;
  o.graph_root = eng.graphroot();
  o.run_root = eng.runroot();
  return store::Store::open(o, *driver);
}

std::string resolve_runtime_name(engine::Engine& eng, const std::string& requested) {
  if (!requested.empty()) {
    return requested;
  }
  const auto& c = eng.config().containers;
  if (c.source_of("engine.runtime") != "default" && !c.engine.runtime.empty()) {
    return c.engine.runtime;
  }
  return "native";
}

std::string runtime_binary(engine::Engine& eng, const std::string& name) {
  if (name == "native") {
    return "";
  }
  if (!name.empty() && name[0] == '/') {
    return name;
  }
  std::vector<std::string> candidates = eng.config().containers.runtime_paths(name);
  for (const char* dir :
       {"/usr/local/sbin/", "/usr/local/bin/", "/usr/sbin/", "/usr/bin/", "/sbin/", "/bin/"}) {
    candidates.push_back(std::string(dir) + (name == "oci" ? "runc" : name));
  }
  for (const auto& c : candidates) {
    if (::access(c.c_str(), X_OK) == 0) {
      return c;
    }
  }
  return "";
}

Result<sdk::RuntimePtr> make_runtime(engine::Engine& eng, const std::string& name) {
  sdk::PluginContext ctx;
  ctx.run_root = eng.runroot();
  if (name == "native") {
    return runtime::make_native_runtime(ctx);
  }
  std::string bin = runtime_binary(eng, name);
  if (bin.empty()) {
    return fail(Errc::NotFound, "OCI runtime \"" + name +
                                    "\" not found: install it, name its path with --runtime, or "
                                    "use --runtime native");
  }
  ctx.options_json = json{{"path", bin}}.dump();
  return eng.plugins().create<sdk::Runtime>("oci", ctx);
}

namespace {

std::string monitor_binary() {
  std::string exe = self_exe();
  std::string dir = exe.substr(0, exe.rfind('/'));
  std::string beside = dir + "/berth-monitor";
  if (::access(beside.c_str(), X_OK) == 0) {
    return beside;
  }
  return std::string(BERTH_INSTALL_LIBEXECDIR) + "/berth-monitor";
}

}  // namespace

Result<MonitorReport> launch_monitor(engine::Engine& eng, const ContainerRecord& rec,
                                     const std::string& runtime_name) {
  const std::string dir = run_dir(eng.runroot(), rec.id);
  BERTH_TRYV(util::make_dirs(dir, 0700));
  ::unlink((dir + "/exit").c_str());
  ::unlink((dir + "/oom").c_str());
  const auto& o = rec.options;
  std::vector<std::string> cleanup = {self_exe(), "--root", eng.graphroot(), "--runroot",
                                      eng.runroot()};
  if (eng.storage_choice()) {
    cleanup.push_back("--storage-driver");
    cleanup.push_back(eng.storage_choice()->name);
  }
  cleanup.insert(cleanup.end(), {"container", "cleanup"});
  if (o.remove) {
    cleanup.push_back("--rm");
  }
  cleanup.push_back(rec.id);
  int64_t max_size = -1;
  if (auto it = o.log_opts.find("max-size"); it != o.log_opts.end()) {
    max_size = parse_size(it->second).value_or(-1);
  }
  json cfg{{"id", rec.id},
           {"runtime", runtime_name == "native" ? "native" : "oci"},
           {"runtime_path", runtime_binary(eng, runtime_name)},
           {"run_root", eng.runroot()},
           {"bundle", rec.bundle},
           {"dir", dir},
           {"log_driver", o.log_driver},
           {"log_path", rec.bundle + "/ctr.log"},
           {"log_max_size", max_size},
           {"tty", o.tty},
           {"stdin", o.interactive},
           {"stdin_once", o.interactive},
           {"cleanup", cleanup}};
  const std::string cfg_path = dir + "/monitor.json";
  BERTH_TRYV(util::write_file_atomic(cfg_path, cfg.dump()));
  const std::string bin = monitor_binary();
  int p[2];
  if (::pipe2(p, O_CLOEXEC) != 0) {
    return fail_errno("pipe", "monitor report");
  }
  UniqueFd rd(p[0]);
  UniqueFd wr(p[1]);
  const bool passthrough = o.log_driver == "passthrough";
  pid_t child = ::fork();
  if (child < 0) {
    return fail_errno("fork", "berth-monitor");
  }
  if (child == 0) {
    int fd = wr.get();
    if (!passthrough) {
      int null = ::open("/dev/null", O_RDWR);
      ::dup2(null, 0);
      ::dup2(null, 1);
      ::dup2(null, 2);
    }
    int moved = ::fcntl(fd, F_DUPFD, 3);  // without CLOEXEC
    ::close_range(3, static_cast<unsigned>(moved) - 1, 0);
    ::close_range(static_cast<unsigned>(moved) + 1, ~0U, 0);
    std::string fdstr = std::to_string(moved);
    ::execl(bin.c_str(), bin.c_str(), cfg_path.c_str(), fdstr.c_str(), nullptr);
    _exit(127);
  }
  wr.reset();
  int st = 0;
  while (::waitpid(child, &st, 0) < 0 && errno == EINTR) {
  }
  std::string text;
  char buf[4096];
  for (;;) {
    ssize_t n = ::read(rd.get(), buf, sizeof(buf));
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n <= 0) {
      break;
    }
    text.append(buf, static_cast<size_t>(n));
    // One line is the whole report; the created container still holds the pipe (its fds close
    // when it execs), so do not wait for EOF.
    if (text.find('\n') != std::string::npos) {
      break;
    }
  }
  if (WIFEXITED(st) && WEXITSTATUS(st) == 127 && text.empty()) {
    return fail(Errc::NotFound, "cannot run the monitor " + bin + " (is berth installed whole?)");
  }
  if (text.empty()) {
    return fail(Errc::Internal, "berth-monitor for container " + rec.id +
                                    " exited without a report (see the system log)");
  }
  try {
    json r = json::parse(text.substr(0, text.find('\n')));
    if (r.contains("error")) {
      return fail(exec_error(r.value("code", 125), r.value("error", "unknown error")));
    }
    return MonitorReport{r.value("pid", 0), r.value("monitor_pid", 0)};
  } catch (const json::exception& e) {
    return fail(Errc::Internal, "berth-monitor report: " + std::string(e.what()));
  }
}

Result<std::string> mount_rootfs(engine::Engine& eng, const ContainerRecord& rec) {
  BERTH_TRY(auto* driver, eng.storage());
  sdk::MountOptions mo;
  return driver->mount(rec.layer_id, mo);
}

Result<void> init_container(engine::Engine& eng, ContainerRecord& rec) {
  ContainerState prev = read_state(eng.runroot(), rec);
  if (!prev.mounted) {
    BERTH_TRY(std::string rootfs, mount_rootfs(eng, rec));
    (void)rootfs;
    prev.mounted = true;
    BERTH_TRYV(write_state(eng.runroot(), rec.id, prev));
  }
  const std::string rt = resolve_runtime_name(eng, rec.options.runtime);
  // Leftovers of a previous run (the monitor's cleanup releases them; a killed monitor does not).
  if (auto old = make_runtime(eng, rt); old) {
    (void)(*old)->remove(rec.id, true);
  }
  BERTH_TRYV(net_before_init(eng, rec));
  BERTH_TRY(auto rep, launch_monitor(eng, rec, rt));
  ContainerState st;
  st.status = Status::Created;
  st.pid = rep.pid;
  st.monitor_pid = rep.monitor_pid;
  st.runtime = rt;
  st.mounted = true;
  return write_state(eng.runroot(), rec.id, st);
}

bool wait_exited(const std::string& run_root, const ContainerRecord& rec, int timeout_ms) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  for (;;) {
    if (read_state(run_root, rec).status == Status::Exited) {
      return true;
    }
    if (timeout_ms >= 0 && std::chrono::steady_clock::now() >= deadline) {
      return false;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

}  // namespace detail

using namespace detail;

namespace {

std::string container_dir(engine::Engine& eng, const std::string& id) {
  return eng.graphroot() + "/containers/" + id;
}

std::string find_init(engine::Engine& eng, const std::string& requested) {
  std::vector<std::string> c;
  if (!requested.empty()) {
    c.push_back(requested);
  }
  c.push_back(eng.config().containers.containers.init_path);
  c.insert(c.end(), {"/usr/bin/catatonit", "/usr/libexec/podman/catatonit", "/usr/bin/tini",
                     "/usr/bin/tini-static"});
  for (const auto& p : c) {
    if (::access(p.c_str(), X_OK) == 0) {
      return p;
    }
  }
  return "";
}

// Undoes a half-made create.
struct CreateUndo {
  engine::Engine& eng;
  std::string id;
  std::string layer;
  store::Store* layers = nullptr;
  ContainerDb* db = nullptr;
  bool recorded = false;
  bool done = false;
  ~CreateUndo() {
    if (done) {
      return;
    }
    if (auto rt = make_runtime(eng, "native"); rt) {
      (void)(*rt)->remove(id, true);
    }
    if (layers && !layer.empty()) {
      (void)layers->driver().unmount(layer);
      (void)layers->remove_layer(layer);
    }
    if (recorded && db) {
      (void)db->remove(id);
    }
    (void)util::remove_tree(eng.graphroot() + "/containers/" + id);
    (void)util::remove_tree(run_dir(eng.runroot(), id));
    ::unlink((eng.runroot() + "/locks/container-" + id + ".lock").c_str());
  }
};

}  // namespace

Result<CreateResult> create(engine::Engine& eng, CreateOptions opts, bool replace) {
  CreateResult res;
  BERTH_TRY(auto db, open_db(eng, false));
  if (!opts.name.empty()) {
    BERTH_TRY(bool taken, db->name_taken(opts.name));
    if (taken) {
      if (!replace) {
        return fail(Errc::AlreadyExists,
                    "creating container storage: the container name \"" + opts.name +
                        "\" is already in use; remove that container to reuse the name, or use "
                        "--replace");
      }
      RemoveOptions ro;
      ro.force = true;
      BERTH_TRYV(remove(eng, opts.name, ro));
    }
  } else {
    for (int i = 0; i < 100; ++i) {
      opts.name = random_name();
      BERTH_TRY(bool taken, db->name_taken(opts.name));
      if (!taken) {
        break;
      }
    }
  }
  if (opts.log_driver.empty()) {
    opts.log_driver = eng.config().containers.containers.log_driver;
  }
  if (opts.log_driver == "journald") {
    res.warnings.push_back("log driver journald is not supported; using k8s-file");
    opts.log_driver = "k8s-file";
  }
  if (opts.log_driver != "k8s-file" && opts.log_driver != "json-file" &&
      opts.log_driver != "none" && opts.log_driver != "passthrough") {
    return fail(Errc::InvalidArgument, "unknown log driver \"" + opts.log_driver +
                                           "\" (supported: k8s-file, json-file, none, "
                                           "passthrough)");
  }
  BERTH_TRY(auto layers, open_layers(eng));
  auto img = image::lookup_image(*layers, opts.image);
  if (!img) {
    if (img.error().code() == Errc::NotFound) {
      return fail(Errc::NotFound, opts.image +
                                      ": image not known (pulling is not supported yet: load "
                                      "it with `berth load` or `berth import`)");
    }
    return fail(std::move(img).error());
  }
  spec::ImageConfig icfg;
  try {
    json cfgj = json::parse(img->config);
    BERTH_TRY(icfg, spec::parse_image_config(cfgj.value("config", json::object())));
  } catch (const json::exception& e) {
    return fail(Errc::Corrupt, "image " + img->id + ": config: " + e.what());
  }

  ContainerRecord rec;
  rec.id = util::random_id();
  rec.name = opts.name;
  rec.image_id = img->id;
  rec.image_name = img->names.empty() ? img->id : img->names.front();
  rec.created = now_nanos();
  rec.bundle = container_dir(eng, rec.id) + "/userdata";
  if (opts.stop_signal == 0) {
    opts.stop_signal = SIGTERM;
  }
  if (opts.create_command.empty()) {
    opts.create_command = {"berth", "create", opts.image};
  }

  BERTH_TRY(auto lock, ContainerLock::acquire(eng.runroot(), rec.id));
  CreateUndo undo{eng, rec.id, "", layers.get(), db.get()};
  store::LayerRecord want;
  want.id = util::random_id();
  want.parent = img->top_layer;
  sdk::CreateOptions co;
  co.read_write = true;
  BERTH_TRY(
      auto layer,
      layers->create_layer(
          want, [](const std::string&) -> Result<store::LayerFill> { return store::LayerFill{}; },
          co));
  rec.layer_id = layer.id;
  undo.layer = layer.id;
  BERTH_TRY(std::string rootfs, mount_rootfs(eng, rec));
  {
    ContainerState mounted;
    mounted.mounted = true;
    BERTH_TRYV(write_state(eng.runroot(), rec.id, mounted));
  }

  BERTH_TRYV(util::make_dirs(rec.bundle, 0700));
  spec::SpecOptions so;
  so.id = rec.id;
  so.rootfs = rootfs;
  if (!opts.command.empty()) {
    so.args = opts.command;
  }
  so.entrypoint = opts.entrypoint;
  so.env = eng.config().containers.containers.env;
  so.env.push_back("container=berth");
  if (!opts.tty) {
    std::erase(so.env, std::string("TERM=xterm"));
  }
  so.env.insert(so.env.end(), opts.env.begin(), opts.env.end());
  so.workdir = opts.workdir;
  so.user = opts.user;
  if (opts.hostname.empty()) {
    opts.hostname = rec.id.substr(0, 12);
  }
  so.hostname = opts.hostname;
  so.tty = opts.tty;
  so.read_only = opts.read_only;
  so.privileged = opts.privileged;
  so.no_new_privileges = opts.no_new_privileges;
  so.cap_add = opts.cap_add;
  so.cap_drop = opts.cap_drop;
  so.ulimits = eng.config().containers.containers.default_ulimits;
  so.ulimits.insert(so.ulimits.end(), opts.ulimits.begin(), opts.ulimits.end());
  so.oom_score_adj = opts.oom_score_adj;
  so.sysctls = opts.sysctls;
  so.labels = opts.labels;
  so.annotations = opts.annotations;
  if (opts.init) {
    opts.init_path = find_init(eng, opts.init_path);
    if (opts.init_path.empty()) {
      return fail(Errc::NotFound,
                  "--init: no init binary found (install catatonit or tini, or "
                  "give --init-path)");
    }
    so.init_path = opts.init_path;
  }
  BERTH_TRYV(net_prepare(eng, rec, opts, so, res.warnings));
  BERTH_TRYV(mounts_prepare(eng, rec, opts, so, res.warnings));
  BERTH_TRYV(resources_prepare(eng, rec, opts, so, res.warnings));
  auto spec_json = spec::build_spec(icfg, so);
  if (!spec_json) {
    return fail(std::move(spec_json).error().wrap("container " + rec.name));
  }
  if (icfg.stop_signal.size() && opts.stop_signal == SIGTERM) {
    // The image's STOPSIGNAL applies unless --stop-signal was given (SIGTERM is the default).
  }
  try {
    for (const auto& a : (*spec_json)["process"]["args"]) {
      rec.path_args.push_back(a.get<std::string>());
    }
  } catch (const json::exception&) {
  }
  BERTH_TRYV(util::write_file_atomic(rec.bundle + "/config.json", spec_json->dump(2)));
  rec.options = opts;
  BERTH_TRYV(db->insert(rec));
  undo.recorded = true;
  BERTH_TRYV(init_container(eng, rec));
  undo.done = true;
  res.id = rec.id;
  return res;
}

namespace {

Result<void> start_locked(engine::Engine& eng, ContainerDb& db, ContainerRecord& rec) {
  ContainerState st = read_state(eng.runroot(), rec);
  if (st.status == Status::Running || st.status == Status::Paused) {
    return {};
  }
  if (st.status == Status::Exited || st.status == Status::Configured) {
    BERTH_TRYV(init_container(eng, rec));
    st = read_state(eng.runroot(), rec);
  }
  BERTH_TRY(auto rt, make_runtime(eng, st.runtime.empty() ? "native" : st.runtime));
  auto r = rt->start(rec.id);
  if (!r) {
    return fail(std::move(r).error().wrap("start container " + rec.name));
  }
  st.status = Status::Running;
  st.started_at = now_nanos();
  BERTH_TRYV(write_state(eng.runroot(), rec.id, st));
  rec.started_at = st.started_at;
  rec.ever_started = true;
  return db.update(rec);
}

}  // namespace

Result<void> start(engine::Engine& eng, const std::string& name_or_id) {
  BERTH_TRY(auto db, open_db(eng, false));
  BERTH_TRY(auto rec0, db->lookup(name_or_id));
  BERTH_TRY(auto lock, ContainerLock::acquire(eng.runroot(), rec0.id));
  BERTH_TRY(auto rec, db->lookup(rec0.id));
  return start_locked(eng, *db, rec);
}

Result<int> run(engine::Engine& eng, RunOptions opts) {
  BERTH_TRY(auto created, create(eng, opts.create, opts.replace));
  if (!opts.cidfile.empty()) {
    BERTH_TRYV(util::write_file_atomic(opts.cidfile, created.id));
  }
  if (opts.on_created) {
    opts.on_created(created.id);
  }
  if (opts.detach) {
    BERTH_TRYV(start(eng, created.id));
    return 0;
  }
  if (opts.create.log_driver == "passthrough") {
    BERTH_TRYV(start(eng, created.id));
    return wait(eng, created.id, {"exited"});
  }
  AttachOptions ao;
  ao.stdin = opts.create.interactive;
  ao.tty = opts.create.tty;
  ao.sig_proxy = opts.sig_proxy;
  ao.detach_keys = opts.create.detach_keys;
  ao.on_attached = [&]() { return start(eng, created.id); };
  BERTH_TRY(auto ar, attach(eng, created.id, ao));
  return ar.detached ? 0 : ar.exit_code;
}

Result<void> kill(engine::Engine& eng, const std::string& name_or_id, int signal) {
  BERTH_TRY(auto db, open_db(eng, true));
  BERTH_TRY(auto rec, db->lookup(name_or_id));
  ContainerState st = read_state(eng.runroot(), rec);
  if (st.status != Status::Running && st.status != Status::Paused && st.status != Status::Created) {
    return fail(Errc::Conflict, "can only kill running containers. " + rec.id.substr(0, 12) +
                                    " is in state " + status_name(st.status) +
                                    ": container state improper");
  }
  if (::kill(st.pid, signal) != 0) {
    return fail_errno("kill container " + rec.name + " (pid", std::to_string(st.pid) + ")");
  }
  return {};
}

Result<void> stop(engine::Engine& eng, const std::string& name_or_id,
                  std::optional<uint32_t> timeout) {
  BERTH_TRY(auto db, open_db(eng, true));
  BERTH_TRY(auto rec, db->lookup(name_or_id));
  ContainerState st = read_state(eng.runroot(), rec);
  if (st.status != Status::Running && st.status != Status::Paused && st.status != Status::Created) {
    return {};
  }
  uint32_t t = timeout.value_or(rec.options.stop_timeout);
  if (st.status == Status::Paused) {
    if (auto rt = make_runtime(eng, st.runtime.empty() ? "native" : st.runtime); rt) {
      (void)(*rt)->resume(rec.id);
    }
  }
  if (t > 0 && st.status != Status::Created) {
    if (::kill(st.pid, rec.options.stop_signal) != 0 && errno != ESRCH) {
      return fail_errno("kill container " + rec.name + " (pid", std::to_string(st.pid) + ")");
    }
    if (wait_exited(eng.runroot(), rec, static_cast<int>(t) * 1000)) {
      return {};
    }
  }
  if (::kill(st.pid, SIGKILL) != 0 && errno != ESRCH) {
    return fail_errno("kill container " + rec.name + " (pid", std::to_string(st.pid) + ")");
  }
  if (!wait_exited(eng.runroot(), rec, 30000)) {
    return fail(Errc::Timeout, "container " + rec.name + " did not exit 30 s after SIGKILL");
  }
  return {};
}

Result<void> restart(engine::Engine& eng, const std::string& name_or_id,
                     std::optional<uint32_t> timeout) {
  BERTH_TRYV(stop(eng, name_or_id, timeout));
  BERTH_TRY(auto db, open_db(eng, false));
  BERTH_TRY(auto rec, db->lookup(name_or_id));
  // The monitor's cleanup runs right after the exit: let it finish before starting again.
  { BERTH_TRY(auto lock, ContainerLock::acquire(eng.runroot(), rec.id)); }
  BERTH_TRY(auto lock, ContainerLock::acquire(eng.runroot(), rec.id));
  BERTH_TRY(auto fresh, db->lookup(rec.id));
  fresh.restart_count++;
  return start_locked(eng, *db, fresh);
}

namespace {

// Releases the runtime state and the rootfs mount; records the end. Lock held.
Result<void> cleanup_locked(engine::Engine& eng, ContainerDb& db, ContainerRecord& rec,
                            const ContainerState& st) {
  if (auto rt = make_runtime(eng, st.runtime.empty() ? "native" : st.runtime); rt) {
    (void)(*rt)->remove(rec.id, true);
  }
  BERTH_TRYV(net_after_exit(eng, rec));
  if (st.mounted) {
    BERTH_TRY(auto* driver, eng.storage());
    auto um = driver->unmount(rec.layer_id);
    if (!um && um.error().code() != Errc::NotFound) {
      return fail(std::move(um).error().wrap("unmount the rootfs of container " + rec.name));
    }
    ContainerState after = st;
    after.mounted = false;
    BERTH_TRYV(write_state(eng.runroot(), rec.id, after));
  }
  if (st.status == Status::Exited &&
      (rec.finished_at != st.finished_at || rec.exit_code != st.exit_code)) {
    rec.finished_at = st.finished_at;
    rec.exit_code = st.exit_code;
    rec.ever_started = true;
    BERTH_TRYV(db.update(rec));
  }
  return {};
}

Result<void> remove_locked(engine::Engine& eng, ContainerDb& db, ContainerRecord& rec,
                           const RemoveOptions& o) {
  ContainerState st = read_state(eng.runroot(), rec);
  if (st.status == Status::Running || st.status == Status::Paused ||
      (st.status == Status::Created && st.pid > 0)) {
    if (!o.force && st.status != Status::Created) {
      return fail(Errc::Conflict, "cannot remove container " + rec.id + " as it is " +
                                      status_name(st.status) +
                                      " - running or paused containers cannot be removed "
                                      "without force: container state improper");
    }
    if (st.status == Status::Paused) {
      if (auto rt = make_runtime(eng, st.runtime); rt) {
        (void)(*rt)->resume(rec.id);
      }
    }
    if (o.timeout && *o.timeout > 0 && st.status != Status::Created) {
      ::kill(st.pid, rec.options.stop_signal);
      if (!wait_exited(eng.runroot(), rec, static_cast<int>(*o.timeout) * 1000)) {
        ::kill(st.pid, SIGKILL);
      }
    } else {
      ::kill(st.pid, SIGKILL);
    }
    if (!wait_exited(eng.runroot(), rec, 30000)) {
      return fail(Errc::Timeout, "container " + rec.name + " did not exit 30 s after SIGKILL");
    }
    st = read_state(eng.runroot(), rec);
  }
  // Let the monitor finish: it exits right after the cleanup it runs (which waits for our lock,
  // then finds nothing to do).
  BERTH_TRYV(cleanup_locked(eng, db, rec, st));
  BERTH_TRYV(mounts_on_remove(eng, rec, o.volumes));
  BERTH_TRY(auto layers, open_layers(eng));
  auto rl = layers->remove_layer(rec.layer_id);
  if (!rl && rl.error().code() != Errc::NotFound) {
    return fail(std::move(rl).error().wrap("remove the layer of container " + rec.name));
  }
  BERTH_TRYV(util::remove_tree(eng.graphroot() + "/containers/" + rec.id));
  BERTH_TRYV(util::remove_tree(run_dir(eng.runroot(), rec.id)));
  BERTH_TRYV(db.remove(rec.id));
  ::unlink((eng.runroot() + "/locks/container-" + rec.id + ".lock").c_str());
  return {};
}

}  // namespace

Result<void> remove(engine::Engine& eng, const std::string& name_or_id, const RemoveOptions& o) {
  BERTH_TRY(auto db, open_db(eng, false));
  BERTH_TRY(auto rec0, db->lookup(name_or_id));
  BERTH_TRY(auto lock, ContainerLock::acquire(eng.runroot(), rec0.id));
  auto rec = db->by_id(rec0.id);
  if (!rec) {
    return fail(std::move(rec).error());
  }
  if (!*rec) {
    return fail(Errc::NotFound, "no container with name or ID \"" + name_or_id + "\" found");
  }
  return remove_locked(eng, *db, **rec, o);
}

Result<void> cleanup(engine::Engine& eng, const std::string& name_or_id, bool rm) {
  BERTH_TRY(auto db, open_db(eng, false));
  auto rec0 = db->lookup(name_or_id);
  if (!rec0) {
    return rec0.error().code() == Errc::NotFound ? Result<void>() : fail(rec0.error());
  }
  BERTH_TRY(auto lock, ContainerLock::acquire(eng.runroot(), rec0->id));
  BERTH_TRY(auto rec, db->by_id(rec0->id));
  if (!rec) {
    return {};
  }
  ContainerState st = read_state(eng.runroot(), *rec);
  if (st.status != Status::Exited) {
    return {};
  }
  if (rm) {
    return remove_locked(eng, *db, *rec, RemoveOptions{});
  }
  return cleanup_locked(eng, *db, *rec, st);
}

Result<int> wait(engine::Engine& eng, const std::string& name_or_id,
                 const std::vector<std::string>& conditions) {
  BERTH_TRY(auto db, open_db(eng, true));
  BERTH_TRY(auto rec, db->lookup(name_or_id));
  std::vector<std::string> conds =
      conditions.empty() ? std::vector<std::string>{"stopped"} : conditions;
  for (;;) {
    ContainerState st = read_state(eng.runroot(), rec);
    for (const auto& c : conds) {
      if ((c == "stopped" || c == "exited") && st.status == Status::Exited) {
        return st.exit_code;
      }
      if (c == "running" && st.status == Status::Running) {
        return -1;
      }
      if ((c == "created" || c == "configured") &&
          (st.status == Status::Created || st.status == Status::Configured)) {
        return -1;
      }
      if (c == "paused" && st.status == Status::Paused) {
        return -1;
      }
      if (c != "stopped" && c != "exited" && c != "running" && c != "created" &&
          c != "configured" && c != "paused" && c != "healthy" && c != "unhealthy" &&
          c != "stopping") {
        return fail(Errc::InvalidArgument, "unknown wait condition \"" + c + "\"");
      }
    }
    if (st.status == Status::Exited || st.status == Status::Configured) {
      // Removed under us (--rm) means the container is gone: report its last state.
      BERTH_TRY(auto again, db->by_id(rec.id));
      if (!again) {
        return st.exit_code;
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

Result<bool> exists(engine::Engine& eng, const std::string& name_or_id) {
  BERTH_TRY(auto db, open_db(eng, true));
  auto r = db->lookup(name_or_id);
  if (!r) {
    if (r.error().code() == Errc::NotFound) {
      return false;
    }
    return fail(std::move(r).error());
  }
  return true;
}

Result<std::vector<std::string>> prune(engine::Engine& eng) {
  BERTH_TRY(auto db, open_db(eng, false));
  BERTH_TRY(auto all, db->all());
  std::vector<std::string> removed;
  for (auto& rec : all) {
    auto st = read_state(eng.runroot(), rec);
    if (st.status != Status::Exited && st.status != Status::Configured &&
        st.status != Status::Created) {
      continue;
    }
    if (st.status == Status::Created && st.pid > 0) {
      continue;  // created and waiting: Podman prunes only stopped containers
    }
    BERTH_TRYV(remove(eng, rec.id, RemoveOptions{}));
    removed.push_back(rec.id);
  }
  return removed;
}

Result<void> rename(engine::Engine& eng, const std::string& name_or_id,
                    const std::string& new_name) {
  BERTH_TRY(auto db, open_db(eng, false));
  BERTH_TRY(auto rec, db->lookup(name_or_id));
  BERTH_TRY(auto lock, ContainerLock::acquire(eng.runroot(), rec.id));
  BERTH_TRY(bool taken, db->name_taken(new_name));
  if (taken) {
    return fail(Errc::AlreadyExists, "the container name \"" + new_name + "\" is already in use");
  }
  rec.name = new_name;
  rec.options.name = new_name;
  return db->update(rec);
}

Result<std::vector<ContainerRecord>> records(engine::Engine& eng) {
  BERTH_TRY(auto db, open_db(eng, true));
  return db->all();
}

}  // namespace berth::container
