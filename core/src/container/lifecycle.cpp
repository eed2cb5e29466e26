// create, start, stop, kill, rm, cleanup, wait, run: the container lifecycle.
#include <dirent.h>
#include <fcntl.h>
#include <linux/close_range.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <thread>

#include "../monitor/monitor_setup.hpp"
#include "berth/container/log_format.hpp"
#include "berth/container/service.hpp"
#include "berth/copy/copy.hpp"
#include "berth/events/events.hpp"
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
  if (ec) {
    return "berth";
  }
  // A binary replaced while this process runs (an upgrade under a running `system service`)
  // reads "PATH (deleted)": what is at PATH now is the berth to run.
  std::string s = p.string();
  constexpr std::string_view kDeleted = " (deleted)";
  if (s.ends_with(kDeleted)) {
    s.resize(s.size() - kDeleted.size());
  }
  return s;
}

Result<std::unique_ptr<ContainerDb>> open_db(engine::Engine& eng, bool read_only) {
  return ContainerDb::open(eng.graphroot(), read_only);
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

std::string monitor_binary() {
  std::string exe = self_exe();
  std::string dir = exe.substr(0, exe.rfind('/'));
  std::string beside = dir + "/berth-monitor";
  if (::access(beside.c_str(), X_OK) == 0) {
    return beside;
  }
  return std::string(BERTH_INSTALL_LIBEXECDIR) + "/berth-monitor";
}

namespace {

// More than one thread (the API server): the monitor's setup runs in a fresh `berth` process,
// since a fork of a threaded process may only exec.
bool threaded() {
  DIR* d = ::opendir("/proc/self/task");
  if (d == nullptr) {
    return true;
  }
  int n = 0;
  while (dirent* e = ::readdir(d)) {
    if (e->d_name[0] != '.') {
      ++n;
    }
  }
  ::closedir(d);
  return n > 1;
}

}  // namespace

void emit_event(engine::Engine& eng, const ContainerRecord& rec, const std::string& status,
                std::optional<int> exit_code, const std::map<std::string, std::string>& extra) {
  events::Event e;
  e.type = std::string(events::type::kContainer);
  e.status = status;
  e.id = rec.id;
  e.name = rec.name;
  e.image = rec.image_name;
  e.exit_code = exit_code;
  e.attributes = rec.options.labels;
  for (const auto& [k, v] : extra) {
    e.attributes[k] = v;
  }
  // One log per engine and thread: from_config() re-reads containers.conf settings.
  thread_local engine::Engine* owner = nullptr;
  thread_local std::optional<events::EventLog> log;
  if (owner != &eng || !log) {
    log.emplace(events::EventLog::from_config(eng.config()));
    owner = &eng;
  }
  (void)log->emit(e);
}

Result<MonitorReport> launch_monitor(engine::Engine& eng, const ContainerRecord& rec,
                                     const std::string& runtime_name) {
  const std::string dir = run_dir(eng.runroot(), rec.id);
  BERTH_TRYV(util::make_dirs(dir, 0700));
  ::unlink((dir + "/exit").c_str());
  ::unlink((dir + "/oom").c_str());
  ::unlink((dir + "/cleanup-owner").c_str());
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
  json periodic = json::array();
  for (const auto& p : resources_periodic(eng, rec)) {
    periodic.push_back({{"interval_ms", p.interval_ms},
                        {"first_after_ms", p.first_after_ms},
                        {"start_interval_ms", p.start_interval_ms},
                        {"start_period_ms", p.start_period_ms},
                        {"argv", p.argv}});
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
           {"cleanup", cleanup},
           {"periodic", periodic}};
  const std::string cfg_path = dir + "/monitor.json";
  BERTH_TRYV(util::write_file_atomic(cfg_path, cfg.dump()));
  const std::string bin = monitor_binary();
  const bool in_process = !threaded();
  sdk::RuntimePtr rt;
  if (in_process) {
    // Made here, where the plugins are loaded already; used by the forked child.
    BERTH_TRY(rt, make_runtime(eng, runtime_name));
  }
  int p[2];
  if (::pipe2(p, O_CLOEXEC) != 0) {
    return fail_errno("pipe", "monitor report");
  }
  UniqueFd rd(p[0]);
  UniqueFd wr(p[1]);
  const bool passthrough = o.log_driver == "passthrough";
  const std::string self = self_exe();
  pid_t child = ::fork();
  if (child < 0) {
    return fail_errno("fork", "berth-monitor");
  }
  if (child == 0) {
    rd.reset();
    if (!passthrough) {
      int null = ::open("/dev/null", O_RDWR);
      ::dup2(null, 0);
      ::dup2(null, 1);
      ::dup2(null, 2);
    }
    if (in_process) {
      monitor::setup_and_exec(cfg_path, rt.get(), wr.get(), bin);
    }
    int fd = ::fcntl(wr.get(), F_DUPFD, 3);  // without CLOEXEC
    std::string fdstr = std::to_string(fd);
    ::execl(self.c_str(), self.c_str(), "container", "monitor-setup", cfg_path.c_str(),
            fdstr.c_str(), bin.c_str(), nullptr);
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
    // One line is the whole report; the created container may still hold the pipe.
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
  BERTH_TRYV(mounts_before_init(eng, rec));
  BERTH_TRYV(net_before_init(eng, rec));
  BERTH_TRY(auto rep, launch_monitor(eng, rec, rt));
  if (auto r = net_after_create(eng, rec, rep.pid); !r) {
    // Not started: removed from the runtime; its monitor then sees it exit and cleans up.
    if (auto created = make_runtime(eng, rt); created) {
      (void)(*created)->remove(rec.id, true);
    }
    return r;
  }
  ContainerState st;
  st.status = Status::Created;
  st.pid = rep.pid;
  st.monitor_pid = rep.monitor_pid;
  st.runtime = rt;
  st.mounted = true;
  BERTH_TRYV(write_state(eng.runroot(), rec.id, st));
  emit_event(eng, rec, "init");
  return {};
}

Result<RestartPolicy> parse_restart_policy(const std::string& text) {
  RestartPolicy p;
  if (text.empty() || text == "no") {
    return p;
  }
  std::string name = text.substr(0, text.find(':'));
  std::string count = text.find(':') == std::string::npos ? "" : text.substr(text.find(':') + 1);
  if (name != "on-failure" && name != "always" && name != "unless-stopped") {
    return fail(Errc::InvalidArgument,
                "invalid restart policy \"" + text +
                    "\" (supported: no, on-failure[:max-retries], always, unless-stopped)");
  }
  if (!count.empty()) {
    if (name != "on-failure" || count.find_first_not_of("0123456789") != std::string::npos ||
        count.size() > 6) {
      return fail(Errc::InvalidArgument, "invalid restart policy \"" + text +
                                             "\": only on-failure takes a retry count (a "
                                             "number), as on-failure:3");
    }
    p.max_retries = std::stoi(count);
  }
  p.name = name;
  return p;
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
  // Set once the feature hooks run: what they made (netns, volumes) is undone too.
  const ContainerRecord* rec = nullptr;
  const CreateOptions* opts = nullptr;
  ~CreateUndo() {
    if (done) {
      return;
    }
    if (auto rt = make_runtime(eng, "native"); rt) {
      (void)(*rt)->remove(id, true);
    }
    if (rec && opts) {
      ContainerRecord r = *rec;
      r.options = *opts;
      (void)net_after_exit(eng, r);
      (void)mounts_on_remove(eng, r, true);
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

namespace {

// The image for a container under the --pull policy: missing (pull when not local), always,
// newer (pull; a failed pull falls back to the local image), never.
Result<store::ImageRecord> image_for(engine::Engine& eng, store::Store& layers,
                                     const CreateOptions& opts, const PullProgress& progress) {
  const std::string& policy = opts.pull.empty() ? std::string("missing") : opts.pull;
  if (policy != "missing" && policy != "always" && policy != "newer" && policy != "never") {
    return fail(Errc::InvalidArgument, "invalid pull policy \"" + policy +
                                           "\" (supported: missing, always, newer, never)");
  }
  auto local = image::lookup_image(layers, opts.image);
  if (!local && local.error().code() != Errc::NotFound) {
    return fail(std::move(local).error());
  }
  if (policy == "never" || (policy == "missing" && local)) {
    if (!local) {
      return fail(Errc::NotFound, opts.image +
                                      ": image not known (--pull never: pull it with `berth "
                                      "pull`, or load it with `berth load`)");
    }
    return local;
  }
  copy::PullOptions po;
  po.progress = progress;
  auto pulled = copy::pull(eng, opts.image, po);
  if (!pulled) {
    if (policy == "newer" && local) {
      return local;
    }
    return fail(std::move(pulled).error().wrap("pull " + opts.image));
  }
  if (pulled->empty()) {
    return fail(Errc::NotFound, opts.image + ": the pull brought no image");
  }
  // The store changed under this handle: look the image up by the id pulled.
  return image::lookup_image(layers, pulled->front().id);
}

// Whether the kernel has a pids cgroup controller for containers (v1: its own hierarchy; v2: in
// the root's controllers). Podman sets no pids limit without one.
bool pids_controller_available() {
  std::error_code ec;
  if (std::filesystem::exists("/sys/fs/cgroup/pids", ec)) {
    return true;
  }
  auto controllers = util::read_file("/sys/fs/cgroup/cgroup.controllers");
  if (!controllers) {
    return false;
  }
  const std::string& c = *controllers;
  for (size_t pos = c.find("pids"); pos != std::string::npos; pos = c.find("pids", pos + 1)) {
    const bool start = pos == 0 || std::isspace(static_cast<unsigned char>(c[pos - 1]));
    const bool end = pos + 4 == c.size() || std::isspace(static_cast<unsigned char>(c[pos + 4]));
    if (start && end) {
      return true;
    }
  }
  return false;
}

// The containers.conf [containers] defaults a flag left unset, as Podman applies them to every
// new container; written into the options so the record (inspect, clone) shows them.
Result<void> apply_conf_defaults(engine::Engine& eng, CreateOptions& opts) {
  const auto& conf = eng.config().containers;
  const auto& cc = conf.containers;
  auto origin = [&](const char* key) {
    return std::string("containers.conf ") + key + " (" +
           conf.source_of(std::string("containers.") + key) + ")";
  };
  // Checked before a pull or a layer is made (build_spec checks it again).
  BERTH_TRYV(spec::canonical_capabilities(cc.default_capabilities, origin("default_capabilities")));
  opts.init = opts.init || cc.init;
  opts.read_only = opts.read_only || cc.read_only;
  opts.net.no_hosts = opts.net.no_hosts || cc.no_hosts;
  for (const auto& kv : cc.annotations) {
    const auto eq = kv.find('=');
    if (eq == std::string::npos || eq == 0) {
      return fail(Errc::InvalidArgument,
                  origin("annotations") + ": \"" + kv + "\" is not KEY=VALUE (fix the entry)");
    }
    opts.annotations.emplace(kv.substr(0, eq), kv.substr(eq + 1));  // the user's value wins
  }
  if (cc.log_size_max > 0 && !opts.log_opts.contains("max-size")) {
    opts.log_opts["max-size"] = std::to_string(cc.log_size_max);
  }
  if (!opts.resources.pids_limit && cc.pids_limit > 0 && ::geteuid() == 0 &&
      cc.cgroups != "disabled" && pids_controller_available()) {
    opts.resources.pids_limit = cc.pids_limit;
  }
  if (!opts.resources.shm_size && conf.source_of("containers.shm_size") != "default") {
    auto size = parse_size(cc.shm_size);
    if (!size || *size <= 0) {
      return fail(Errc::InvalidArgument, origin("shm_size") + ": \"" + cc.shm_size +
                                             "\" is not a size (e.g. 64m, 65536k)");
    }
    opts.resources.shm_size = *size;
  }
  for (const auto& d : cc.devices) {
    if (std::find(opts.resources.devices.begin(), opts.resources.devices.end(), d) ==
        opts.resources.devices.end()) {
      opts.resources.devices.push_back(d);
    }
  }
  // pidns/ipcns/utsns/cgroupns: "host" shares the host's; "private" (and ipcns "shareable") is
  // what a container gets anyway.
  auto ns_default = [](std::string& flag, const std::string& conf_value) {
    if (flag.empty() && conf_value == "host") {
      flag = "host";
    }
  };
  ns_default(opts.resources.pid, cc.pidns);
  ns_default(opts.resources.ipc, cc.ipcns);
  ns_default(opts.resources.uts, cc.utsns);
  ns_default(opts.resources.cgroupns, cc.cgroupns);
  if (opts.network.empty() && (cc.netns == "host" || cc.netns == "none")) {
    opts.network = cc.netns;
  }
  // volumes: added unless the user mounts something at the same destination.
  std::vector<std::string> taken;
  auto dest_of_volume = [](const std::string& v) {
    const auto c1 = v.find(':');
    // An anonymous volume is the destination alone.
    std::string d = c1 == std::string::npos ? v : v.substr(c1 + 1, v.find(':', c1 + 1) - c1 - 1);
    while (d.size() > 1 && d.back() == '/') {
      d.pop_back();
    }
    return d;
  };
  for (const auto& v : opts.storage.volumes) {
    taken.push_back(dest_of_volume(v));
  }
  for (const auto& t : opts.storage.tmpfs) {
    taken.push_back(t.substr(0, t.find(':')));
  }
  for (const auto& m : opts.storage.mounts) {
    for (const char* key : {"dst=", "destination=", "target="}) {
      for (size_t pos = m.find(key); pos != std::string::npos; pos = m.find(key, pos + 1)) {
        if (pos == 0 || m[pos - 1] == ',') {
          const size_t from = pos + std::strlen(key);
          taken.push_back(m.substr(from, m.find(',', from) - from));
        }
      }
    }
  }
  for (const auto& v : cc.volumes) {
    const std::string dest = dest_of_volume(v);
    if (dest.empty() || dest.front() != '/') {
      return fail(Errc::InvalidArgument, origin("volumes") + ": \"" + v +
                                             "\": the destination must be an absolute path "
                                             "(SOURCE:/DEST[:OPTIONS])");
    }
    if (std::find(taken.begin(), taken.end(), dest) == taken.end()) {
      opts.storage.volumes.push_back(v);
      taken.push_back(dest);
    }
  }
  return {};
}

// The containers.conf defaults that live only in the spec: the host's proxy variables
// (http_proxy), the host's environment (env_host), the seccomp profile and the time zone.
Result<void> apply_conf_spec_defaults(engine::Engine& eng, spec::SpecOptions& so) {
  const auto& conf = eng.config().containers;
  const auto& cc = conf.containers;
  auto origin = [&](const char* key) {
    return std::string("containers.conf ") + key + " (" +
           conf.source_of(std::string("containers.") + key) + ")";
  };
  if (cc.env_host) {
    for (char** e = environ; *e != nullptr; ++e) {
      so.env.emplace_back(*e);
    }
  } else if (cc.http_proxy) {
    for (const char* name : {"http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "ftp_proxy",
                             "FTP_PROXY", "no_proxy", "NO_PROXY"}) {
      if (const char* v = ::getenv(name); v != nullptr) {
        so.env.push_back(std::string(name) + "=" + v);
      }
    }
  }
  // The stock path is the profile built in (the same one); another one is read as
  // --security-opt seccomp= would, and the flag still wins.
  if (conf.source_of("containers.seccomp_profile") != "default" &&
      cc.seccomp_profile != "/usr/share/containers/seccomp.json") {
    if (cc.seccomp_profile == "unconfined") {
      so.seccomp_unconfined = true;
    } else if (!cc.seccomp_profile.empty()) {
      auto text = util::read_file(cc.seccomp_profile);
      if (!text) {
        return fail(std::move(text).error().wrap(origin("seccomp_profile")));
      }
      try {
        so.seccomp_profile = json::parse(*text);
      } catch (const json::exception& e) {
        return fail(Errc::InvalidArgument, origin("seccomp_profile") + ": " + cc.seccomp_profile +
                                               ": not a JSON seccomp profile: " + e.what());
      }
    }
  }
  if (!cc.tz.empty()) {
    std::string zone =
        cc.tz == "local" ? std::string("/etc/localtime") : "/usr/share/zoneinfo/" + cc.tz;
    struct stat st {};
    if (cc.tz.find("..") != std::string::npos || cc.tz.front() == '/' ||
        ::stat(zone.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) {
      return fail(Errc::InvalidArgument,
                  origin("tz") + ": no time zone \"" + cc.tz + "\" (" + zone +
                      " is not a zoneinfo file; give a name such as Europe/Berlin, or local)");
    }
    so.mounts.push_back(spec::BindMount{zone, "/etc/localtime", {"rbind", "ro"}});
  }
  return {};
}

}  // namespace

Result<CreateResult> create(engine::Engine& eng, CreateOptions opts, bool replace,
                            const PullProgress& progress) {
  CreateResult res;
  BERTH_TRY(auto policy, parse_restart_policy(opts.restart_policy));
  if (opts.remove && policy.name != "no") {
    return fail(Errc::InvalidArgument,
                "the --rm option conflicts with --restart, when the restart policy is not \"\" "
                "or \"no\"");
  }
  BERTH_TRY(auto db, open_db(eng, false));
  const bool generated_name = opts.name.empty();
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
  BERTH_TRYV(apply_conf_defaults(eng, opts));
  BERTH_TRY(auto layers, open_layers(eng));
  auto img = image_for(eng, *layers, opts, progress);
  if (!img) {
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
  BERTH_TRY(auto layer, layers->create_layer(
                            want,
                            [](const std::string&) -> Result<store::LayerFill> {
                              store::LayerFill empty;
                              empty.sync = false;  // a new container layer is empty
                              return empty;
                            },
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
  BERTH_TRYV(apply_conf_spec_defaults(eng, so));
  so.env.insert(so.env.end(), opts.env.begin(), opts.env.end());
  so.workdir = opts.workdir;
  so.user = opts.user;
  if (opts.hostname.empty()) {
    opts.hostname = rec.id.substr(0, 12);
  }
  so.hostname = opts.hostname;
  so.tty = opts.tty;
  so.console_size = opts.console_size;
  so.read_only = opts.read_only;
  so.privileged = opts.privileged;
  so.no_new_privileges = opts.no_new_privileges;
  so.cap_add = opts.cap_add;
  so.cap_drop = opts.cap_drop;
  {
    const auto& conf = eng.config().containers;
    so.default_caps = conf.containers.default_capabilities;
    so.default_caps_origin = "containers.conf default_capabilities (" +
                             conf.source_of("containers.default_capabilities") + ")";
    if (opts.docker_default_caps && spec::is_stock_default_capabilities(*so.default_caps)) {
      so.default_caps = spec::docker_default_capabilities();
    }
  }
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
  undo.rec = &rec;
  undo.opts = &opts;
  BERTH_TRYV(userns_prepare(eng, rec, opts, so, res.warnings));
  BERTH_TRYV(net_prepare(eng, rec, opts, so, res.warnings));
  BERTH_TRYV(mounts_prepare(eng, rec, opts, so, res.warnings));
  BERTH_TRYV(resources_prepare(eng, rec, opts, so, res.warnings));
  // containers.conf default_sysctls (Podman's: net.ipv4.ping_group_range=0 0, so ping works
  // without NET_RAW) unless the user set the key; net.* not with the host's network.
  for (const auto& kv : eng.config().containers.containers.default_sysctls) {
    const auto eq = kv.find('=');
    if (eq == std::string::npos) {
      continue;
    }
    const std::string key = kv.substr(0, eq);
    if (key.rfind("net.", 0) == 0 && so.network.kind == spec::NamespaceMode::Kind::Host) {
      continue;
    }
    // An OCI runtime sets sysctls from inside the container's user namespace, which does not
    // own a network namespace berth made (the native runtime writes them before it enters); it
    // owns the one the runtime makes for a bridge network (net_prepare).
    if (key.rfind("net.", 0) == 0 && so.userns.kind != spec::NamespaceMode::Kind::Host &&
        so.network.kind == spec::NamespaceMode::Kind::Path &&
        resolve_runtime_name(eng, opts.runtime) != "native") {
      continue;
    }
    so.sysctls.emplace(key, kv.substr(eq + 1));
  }
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
  // Derived from the container's record, as Podman's: no fsync.
  BERTH_TRYV(util::write_file_atomic(rec.bundle + "/config.json", spec_json->dump(2), 0644,
                                     util::Durability::Replace));
  rec.options = opts;
  auto inserted = db->insert(rec);
  // A generated name another process took meanwhile (the check above is not a reservation):
  // pick another; a name the user gave stays an error.
  for (int i = 0;
       !inserted && generated_name && inserted.error().code() == Errc::AlreadyExists && i < 100;
       ++i) {
    opts.name = random_name();
    rec.name = opts.name;
    rec.options.name = opts.name;
    inserted = db->insert(rec);
  }
  BERTH_TRYV(inserted);
  undo.recorded = true;
  emit_event(eng, rec, "create");
  BERTH_TRYV(init_container(eng, rec));
  undo.done = true;
  res.id = rec.id;
  return res;
}

namespace {

// <run dir>/stopped: the user stopped the container; its restart policy does not bring it back
// until it is started again.
std::string stopped_marker(engine::Engine& eng, const ContainerRecord& rec) {
  return run_dir(eng.runroot(), rec.id) + "/stopped";
}

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
  // A start clears a stop by the user: the restart policy applies again.
  ::unlink(stopped_marker(eng, rec).c_str());
  auto r = rt->start(rec.id);
  if (!r) {
    return fail(std::move(r).error().wrap("start container " + rec.name));
  }
  st.status = Status::Running;
  st.started_at = now_nanos();
  BERTH_TRYV(write_state(eng.runroot(), rec.id, st));
  // Tell the monitor: its periodic commands (health checks) count from the start.
  UniqueFd ctl(
      ::open((run_dir(eng.runroot(), rec.id) + "/ctl").c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC));
  if (ctl) {
    (void)util::write_all(ctl.get(), std::string_view("3\n"), "ctl");
  }
  rec.started_at = st.started_at;
  rec.ever_started = true;
  BERTH_TRYV(db.update(rec));
  emit_event(eng, rec, "start");
  return {};
}

}  // namespace

Result<void> start(engine::Engine& eng, const std::string& name_or_id) {
  BERTH_TRY(auto db, open_db(eng, false));
  BERTH_TRY(auto rec0, db->lookup(name_or_id));
  BERTH_TRY(auto lock, ContainerLock::acquire(eng.runroot(), rec0.id));
  BERTH_TRY(auto rec, db->lookup(rec0.id));
  return start_locked(eng, *db, rec);
}

Result<void> init(engine::Engine& eng, const std::string& name_or_id) {
  BERTH_TRY(auto db, open_db(eng, false));
  BERTH_TRY(auto rec0, db->lookup(name_or_id));
  BERTH_TRY(auto lock, ContainerLock::acquire(eng.runroot(), rec0.id));
  BERTH_TRY(auto rec, db->lookup(rec0.id));
  ContainerState st = read_state(eng.runroot(), rec);
  if (st.status == Status::Created && st.pid > 0) {
    return {};
  }
  if (st.status != Status::Exited && st.status != Status::Configured) {
    return fail(Errc::Conflict, "container " + rec.id.substr(0, 12) + " is " +
                                    status_name(st.status) + ": container state improper");
  }
  return init_container(eng, rec);
}

Result<int> run(engine::Engine& eng, RunOptions opts) {
  BERTH_TRY(auto created, create(eng, opts.create, opts.replace, opts.pull_progress));
  if (!opts.cidfile.empty()) {
    BERTH_TRYV(util::write_file_atomic(opts.cidfile, created.id));
  }
  if (opts.on_created) {
    opts.on_created(created);
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
  ao.on_attached = [&]() -> Result<void> {
    if (opts.create.remove && opts.remove_here) {
      BERTH_TRYV(util::write_file_atomic(run_dir(eng.runroot(), created.id) + "/cleanup-owner",
                                         std::to_string(::getpid()), 0600));
    }
    return start(eng, created.id);
  };
  BERTH_TRY(auto ar, attach(eng, created.id, ao));
  if (!ar.detached && opts.create.remove) {
    // --rm: removed before run returns, as Podman; done here rather than waiting for the
    // monitor's cleanup process (a second berth start-up). Whichever comes first removes it.
    RemoveOptions ro;
    ro.volumes = true;  // --rm takes the anonymous volumes along, as Podman
    auto r = remove(eng, created.id, ro);
    if (!r && r.error().code() != Errc::NotFound) {
      return fail(std::move(r).error());
    }
  }
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
  emit_event(eng, rec, "kill");
  return {};
}

Result<void> stop(engine::Engine& eng, const std::string& name_or_id,
                  std::optional<uint32_t> timeout, std::optional<int> signal) {
  BERTH_TRY(auto db, open_db(eng, true));
  BERTH_TRY(auto rec, db->lookup(name_or_id));
  // Under the lock, so that a policy restart in progress finishes first (and is then stopped)
  // or sees the mark. The monitor writes the exit file without the lock: waiting here is safe.
  BERTH_TRY(auto lock, ContainerLock::acquire(eng.runroot(), rec.id));
  // Marked first: the exit this causes (or a restart waiting in its back-off) is not restarted.
  (void)util::make_dirs(run_dir(eng.runroot(), rec.id), 0700);
  (void)util::write_file_atomic(stopped_marker(eng, rec), "");
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
    if (::kill(st.pid, signal.value_or(rec.options.stop_signal)) != 0 && errno != ESRCH) {
      return fail_errno("kill container " + rec.name + " (pid", std::to_string(st.pid) + ")");
    }
    if (wait_exited(eng.runroot(), rec, static_cast<int>(t) * 1000)) {
      emit_event(eng, rec, "stop");
      return {};
    }
  }
  if (::kill(st.pid, SIGKILL) != 0 && errno != ESRCH) {
    return fail_errno("kill container " + rec.name + " (pid", std::to_string(st.pid) + ")");
  }
  if (!wait_exited(eng.runroot(), rec, 30000)) {
    return fail(Errc::Timeout, "container " + rec.name + " did not exit 30 s after SIGKILL");
  }
  emit_event(eng, rec, "stop");
  return {};
}

Result<void> restart(engine::Engine& eng, const std::string& name_or_id,
                     std::optional<uint32_t> timeout, std::optional<int> signal) {
  BERTH_TRYV(stop(eng, name_or_id, timeout, signal));
  BERTH_TRY(auto db, open_db(eng, false));
  BERTH_TRY(auto rec, db->lookup(name_or_id));
  // The monitor's cleanup runs right after the exit: let it finish before starting again.
  { BERTH_TRY(auto lock, ContainerLock::acquire(eng.runroot(), rec.id)); }
  BERTH_TRY(auto lock, ContainerLock::acquire(eng.runroot(), rec.id));
  BERTH_TRY(auto fresh, db->lookup(rec.id));
  fresh.restart_count++;
  BERTH_TRYV(start_locked(eng, *db, fresh));
  emit_event(eng, fresh, "restart");
  return {};
}

namespace {

// Releases the runtime state and the rootfs mount; records the end. Lock held.
Result<void> cleanup_locked(engine::Engine& eng, ContainerDb& db, ContainerRecord& rec,
                            const ContainerState& st) {
  if (auto rt = make_runtime(eng, st.runtime.empty() ? "native" : st.runtime); rt) {
    (void)(*rt)->remove(rec.id, true);
  }
  BERTH_TRYV(net_after_exit(eng, rec));
  BERTH_TRYV(mounts_after_exit(eng, rec));
  const bool new_exit = st.status == Status::Exited &&
                        (rec.finished_at != st.finished_at || rec.exit_code != st.exit_code);
  if (new_exit) {
    emit_event(eng, rec, "died", st.exit_code);
  }
  if (st.mounted) {
    BERTH_TRY(auto* driver, eng.storage());
    auto um = driver->unmount(rec.layer_id);
    if (!um && um.error().code() != Errc::NotFound) {
      return fail(std::move(um).error().wrap("unmount the rootfs of container " + rec.name));
    }
    ContainerState after = st;
    after.mounted = false;
    BERTH_TRYV(write_state(eng.runroot(), rec.id, after));
    emit_event(eng, rec, "cleanup");
  }
  if (new_exit) {
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
  emit_event(eng, rec, "remove");
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

namespace {

// Back-off before a policy restart: 100 ms, doubling with each quick consecutive restart, capped
// at 10 s; a run of 10 s or more starts the series over.
int64_t restart_delay_ms(engine::Engine& eng, const ContainerRecord& rec,
                         const ContainerState& st) {
  constexpr int64_t kBase = 100;
  constexpr int64_t kCap = 10000;
  constexpr int64_t kLongRun = int64_t{10} * 1000000000;
  const std::string path = run_dir(eng.runroot(), rec.id) + "/restart-streak";
  int streak = 0;
  if (auto t = util::read_file(path); t) {
    streak = std::atoi(t->c_str());
  }
  if (st.finished_at - st.started_at >= kLongRun) {
    streak = 0;
  }
  (void)util::write_file_atomic(path, std::to_string(streak + 1));
  int64_t d = kBase << std::min(streak, 10);
  return std::min(d, kCap);
}

bool wants_restart(const RestartPolicy& p, const ContainerRecord& rec, const ContainerState& st) {
  if (p.name == "always" || p.name == "unless-stopped") {
    return true;
  }
  if (p.name == "on-failure") {
    return st.exit_code != 0 && (p.max_retries == 0 || rec.restart_count < p.max_retries);
  }
  return false;
}

}  // namespace

Result<void> cleanup(engine::Engine& eng, const std::string& name_or_id, bool rm) {
  int64_t delay_ms = 0;
  std::string id;
  {
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
      RemoveOptions ro;
      ro.volumes = true;  // --rm takes the anonymous volumes along, as Podman
      return remove_locked(eng, *db, *rec, ro);
    }
    BERTH_TRYV(cleanup_locked(eng, *db, *rec, st));
    auto policy = parse_restart_policy(rec->options.restart_policy);
    if (!policy || !wants_restart(*policy, *rec, st) ||
        ::access(stopped_marker(eng, *rec).c_str(), F_OK) == 0 || st.exit_code < 0) {
      return {};
    }
    delay_ms = restart_delay_ms(eng, *rec, st);
    id = rec->id;
  }
  // The back-off runs without the lock: `stop`, `rm` and `start` may act meanwhile.
  std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms));
  BERTH_TRY(auto db, open_db(eng, false));
  BERTH_TRY(auto lock, ContainerLock::acquire(eng.runroot(), id));
  BERTH_TRY(auto rec, db->by_id(id));
  if (!rec) {
    return {};
  }
  ContainerState st = read_state(eng.runroot(), *rec);
  if (st.status != Status::Exited || ::access(stopped_marker(eng, *rec).c_str(), F_OK) == 0) {
    return {};
  }
  rec->restart_count++;
  BERTH_TRYV(start_locked(eng, *db, *rec));
  emit_event(eng, *rec, "restart");
  return {};
}

Result<std::vector<std::string>> remove_with_dependents(engine::Engine& eng,
                                                        const std::string& name_or_id,
                                                        const RemoveOptions& o) {
  std::vector<ContainerRecord> all;
  ContainerRecord target;
  {
    BERTH_TRY(auto db, open_db(eng, true));
    BERTH_TRY(target, db->lookup(name_or_id));
    BERTH_TRY(all, db->all());
  }
  // Depth first: a container's dependents go before it (--network container:X,
  // --volumes-from X[:ro|rw], naming X by name or id).
  auto depends_on = [](const ContainerRecord& c, const ContainerRecord& on) {
    auto names = [&](const std::string& ref) {
      return ref == on.name || ref == on.id || (ref.size() >= 3 && on.id.rfind(ref, 0) == 0);
    };
    if (c.options.network.rfind("container:", 0) == 0 && names(c.options.network.substr(10))) {
      return true;
    }
    for (const auto& vf : c.options.storage.volumes_from) {
      if (names(vf.substr(0, vf.find(':')))) {
        return true;
      }
    }
    return false;
  };
  std::vector<std::string> order;
  std::function<void(const ContainerRecord&)> visit = [&](const ContainerRecord& r) {
    if (std::find(order.begin(), order.end(), r.id) != order.end()) {
      return;
    }
    for (const auto& c : all) {
      if (c.id != r.id && depends_on(c, r)) {
        visit(c);
      }
    }
    order.push_back(r.id);
  };
  visit(target);
  std::vector<std::string> removed;
  for (const auto& id : order) {
    auto r = remove(eng, id, o);
    if (!r && r.error().code() != Errc::NotFound) {
      return fail(std::move(r).error().wrap("remove the dependents of " + target.name));
    }
    removed.push_back(id);
  }
  return removed;
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
  BERTH_TRYV(db->update(rec));
  emit_event(eng, rec, "rename");
  return {};
}

Result<std::vector<ContainerRecord>> records(engine::Engine& eng) {
  BERTH_TRY(auto db, open_db(eng, true));
  return db->all();
}

}  // namespace berth::container
