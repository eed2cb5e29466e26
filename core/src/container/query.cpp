// ps, inspect, logs: reading containers (top: top.cpp).
#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <ctime>
#include <map>
#include <optional>
#include <sstream>
#include <thread>

#include "berth/container/log_format.hpp"
#include "berth/container/resource_ops.hpp"
#include "berth/container/service.hpp"
#include "berth/image/image_service.hpp"
#include "berth/util/fs.hpp"
#include "features.hpp"
#include "internal.hpp"

namespace berth::container {

using nlohmann::json;
using namespace detail;

namespace {

// The sizes of the images containers run (0 for one that is gone): with a container's own layer,
// the size of its root filesystem (SizeRootFs). The layer store is opened once, on the first
// lookup, however many containers `ps --size` lists.
class ImageSizes {
 public:
  explicit ImageSizes(engine::Engine& eng) : eng_(eng) {}
  int64_t operator()(const std::string& image_id) {
    if (auto it = sizes_.find(image_id); it != sizes_.end()) {
      return it->second;
    }
    if (!opened_) {
      opened_ = true;
      if (auto l = open_layers(eng_); l) {
        layers_ = std::move(*l);
      }
    }
    int64_t size = 0;
    if (layers_) {
      if (auto img = image::lookup_image(*layers_, image_id); img) {
        size = img->size;
      }
    }
    return sizes_[image_id] = size;
  }

 private:
  engine::Engine& eng_;
  bool opened_ = false;
  std::unique_ptr<store::Store> layers_;
  std::map<std::string, int64_t> sizes_;
};

std::string join_command(const std::vector<std::string>& args) {
  std::string s;
  for (const auto& a : args) {
    if (!s.empty()) {
      s += ' ';
    }
    s += a;
  }
  return s;
}

int64_t dir_size(const std::string& path) {
  int64_t total = 0;
  std::error_code ec;
  for (auto it = std::filesystem::recursive_directory_iterator(
           path, std::filesystem::directory_options::skip_permission_denied, ec);
       !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
    if (it->is_regular_file(ec) && !it->is_symlink(ec)) {
      total += static_cast<int64_t>(it->file_size(ec));
    }
  }
  return total;
}

// `sizes`: with ps --size, the image sizes (else null).
json row_of(engine::Engine& eng, const ContainerRecord& rec, const ContainerState& st, int64_t now,
            ImageSizes* sizes) {
  json r{{"AutoRemove", rec.options.remove},
         {"Command", json(rec.path_args)},
         {"CreatedAt", go_time(rec.created)},
         {"CreatedHuman", human_duration(now - rec.created) + " ago"},
         {"Created", rec.created / 1000000000},
         {"Exited", st.status == Status::Exited},
         {"ExitedAt", st.finished_at / 1000000000},
         {"ExitCode", st.exit_code},
         {"Id", rec.id},
         {"ID", rec.id},
         {"Image", rec.image_name},
         {"ImageID", rec.image_id},
         {"IsInfra", false},
         {"Labels", rec.options.labels.empty() ? json(nullptr) : json(rec.options.labels)},
         {"Mounts", json::array()},
         {"Names", json::array({rec.name})},
         {"Namespaces", json::object()},
         {"Networks", json::array()},
         {"Pid", st.status == Status::Running ? st.pid : 0},
         {"Pod", ""},
         {"PodName", ""},
         {"Ports", nullptr},
         {"Restarts", rec.restart_count},
         {"StartedAt", st.started_at / 1000000000},
         {"State", status_name(st.status)},
         {"Status", status_string(st, now)}};
  net_ps_row(eng, rec, st, r);
  mounts_ps_row(eng, rec, st, r);
  if (st.status == Status::Running) {
    // "Up 5 seconds (healthy)" as Podman, for containers with a health check.
    if (auto h = health_status(eng.runroot(), rec); !h.empty()) {
      r["Status"] = r["Status"].get<std::string>() + " (" + h + ")";
    }
  }
  if (sizes != nullptr) {
    std::string path;
    if (auto d = eng.storage(); d) {
      auto lp = (*d)->layer_path(rec.layer_id);
      if (lp) {
        path = *lp;
      }
    }
    int64_t rw = path.empty() ? 0 : dir_size(path);
    r["Size"] = json{{"rwSize", rw}, {"rootFsSize", rw + (*sizes)(rec.image_id)}};
  }
  return r;
}

std::optional<int64_t> parse_time_arg(const std::string& v) {
  if (auto t = parse_rfc3339(v)) {
    return t;
  }
  // A duration: "10m", "1h", "30s" before now.
  if (!v.empty()) {
    char unit = v.back();
    std::string num = v.substr(0, v.size() - 1);
    if (!num.empty() && num.find_first_not_of("0123456789") == std::string::npos) {
      int64_t n = std::stoll(num);
      int64_t mult = unit == 's' ? 1 : unit == 'm' ? 60 : unit == 'h' ? 3600 : 0;
      if (mult > 0) {
        return now_nanos() - n * mult * 1000000000;
      }
    }
    if (v.find_first_not_of("0123456789") == std::string::npos) {
      return std::stoll(v) * 1000000000;  // unix seconds
    }
  }
  return std::nullopt;
}

}  // namespace

std::string detail::go_time(int64_t nanos) {
  time_t secs = static_cast<time_t>(nanos / 1000000000);
  struct tm tm {};
  localtime_r(&secs, &tm);
  char date[64];
  char zone[32];
  std::strftime(date, sizeof(date), "%Y-%m-%d %H:%M:%S", &tm);
  std::strftime(zone, sizeof(zone), "%z %Z", &tm);
  std::string f = std::to_string(nanos % 1000000000 + 1000000000).substr(1);
  while (!f.empty() && f.back() == '0') {
    f.pop_back();
  }
  return std::string(date) + (f.empty() ? "" : "." + f) + " " + zone;
}

Result<bool> filter_matches(
    const json& row, const std::string& filter,
    const std::function<std::optional<int64_t>(const std::string&)>& created_of) {
  size_t eq = filter.find('=');
  if (eq == std::string::npos) {
    return fail(Errc::InvalidArgument, "invalid filter \"" + filter + "\": want KEY=VALUE");
  }
  std::string key = filter.substr(0, eq);
  std::string val = filter.substr(eq + 1);
  if (key == "id") {
    return row.value("Id", "").rfind(val, 0) == 0;
  }
  if (key == "name") {
    std::string name = row["Names"].empty() ? "" : row["Names"][0].get<std::string>();
    // Podman matches names as a regular expression; a substring covers the usual use.
    return name.find(val) != std::string::npos;
  }
  if (key == "label") {
    const json& labels = row["Labels"];
    size_t e2 = val.find('=');
    std::string lk = val.substr(0, e2);
    if (!labels.is_object() || !labels.contains(lk)) {
      return false;
    }
    return e2 == std::string::npos || labels[lk].get<std::string>() == val.substr(e2 + 1);
  }
  if (key == "status") {
    static const std::vector<std::string> known = {"created",  "running", "paused",  "exited",
                                                   "stopping", "unknown", "removing"};
    if (std::find(known.begin(), known.end(), val) == known.end()) {
      return fail(Errc::InvalidArgument, "invalid status filter \"" + val + "\"");
    }
    return row.value("State", "") == val;
  }
  if (key == "ancestor") {
    std::string img = row.value("Image", "");
    return img == val || row.value("ImageID", "").rfind(val, 0) == 0 ||
           img.find("/" + val) != std::string::npos || img.rfind(val + ":", 0) == 0;
  }
  if (key == "exited") {
    return row.value("Exited", false) && std::to_string(row.value("ExitCode", 0)) == val;
  }
  if (key == "before" || key == "since") {
    auto ref = created_of(val);
    if (!ref) {
      return fail(Errc::NotFound, "no container with name or ID \"" + val + "\" found");
    }
    int64_t c = row.value("Created", int64_t{0});
    return key == "before" ? c < *ref / 1000000000 || (c == *ref / 1000000000 && false)
                           : c > *ref / 1000000000 || (c == *ref / 1000000000 && false);
  }
  return fail(Errc::InvalidArgument,
              "invalid filter \"" + key +
                  "\" (supported: id, name, label, status, ancestor, exited, before, since)");
}

Result<json> list(engine::Engine& eng, const ListOptions& opts) {
  BERTH_TRY(auto db, open_db(eng, true));
  BERTH_TRY(auto all, db->all());
  int64_t now = now_nanos();
  auto created_of = [&](const std::string& key) -> std::optional<int64_t> {
    for (const auto& r : all) {
      if (r.name == key || r.id.rfind(key, 0) == 0) {
        return r.created;
      }
    }
    return std::nullopt;
  };
  std::vector<std::pair<const ContainerRecord*, json>> rows;
  bool show_all = opts.all || opts.last >= 0;
  std::optional<ImageSizes> sizes;
  if (opts.size) {
    sizes.emplace(eng);
  }
  for (const auto& rec : all) {
    ContainerState st = read_state(eng.runroot(), rec);
    json row = row_of(eng, rec, st, now, sizes ? &*sizes : nullptr);
    if (!show_all && st.status != Status::Running && st.status != Status::Paused) {
      bool status_filter = std::any_of(opts.filters.begin(), opts.filters.end(), [](auto& f) {
        return f.rfind("status=", 0) == 0 || f.rfind("exited=", 0) == 0;
      });
      if (!status_filter) {
        continue;
      }
    }
    bool keep = true;
    for (const auto& f : opts.filters) {
      if (f.rfind("restart-policy=", 0) == 0) {
        // Of the record, not of the row: `start --all --filter restart-policy=always`.
        auto p = parse_restart_policy(rec.options.restart_policy);
        keep = keep && p && p->name == f.substr(15);
        continue;
      }
      BERTH_TRY(bool m, filter_matches(row, f, created_of));
      keep = keep && m;
    }
    if (keep) {
      rows.emplace_back(&rec, std::move(row));
    }
  }
  if (opts.last >= 0) {
    std::sort(rows.begin(), rows.end(),
              [](auto& a, auto& b) { return a.first->created > b.first->created; });
    if (rows.size() > static_cast<size_t>(opts.last)) {
      rows.resize(static_cast<size_t>(opts.last));
    }
  }
  const std::string& s = opts.sort;
  std::stable_sort(rows.begin(), rows.end(), [&](auto& a, auto& b) {
    if (s == "id") {
      return a.first->id < b.first->id;
    }
    if (s == "names") {
      return a.first->name < b.first->name;
    }
    if (s == "image") {
      return a.first->image_name < b.first->image_name;
    }
    if (s == "status") {
      return a.second["Status"].template get<std::string>() <
             b.second["Status"].template get<std::string>();
    }
    if (s == "command") {
      return join_command(a.first->path_args) < join_command(b.first->path_args);
    }
    if (s == "runningfor") {
      return a.first->created > b.first->created;
    }
    return a.first->created > b.first->created;  // "created": newest first, as Podman
  });
  json out = json::array();
  for (auto& [rec, row] : rows) {
    out.push_back(std::move(row));
  }
  return out;
}

Result<json> inspect(engine::Engine& eng, const std::string& name_or_id, bool size) {
  BERTH_TRY(auto db, open_db(eng, true));
  BERTH_TRY(auto rec, db->lookup(name_or_id));
  ContainerState st = read_state(eng.runroot(), rec);
  json spec = json::object();
  if (auto t = util::read_file(rec.bundle + "/config.json"); t) {
    try {
      spec = json::parse(*t);
    } catch (const json::exception&) {
    }
  }
  const json proc = spec.value("process", json::object());
  std::vector<std::string> eff, bnd;
  if (proc.contains("capabilities")) {
    eff = proc["capabilities"].value("effective", std::vector<std::string>{});
    bnd = proc["capabilities"].value("bounding", std::vector<std::string>{});
  }
  const auto& o = rec.options;
  const RestartPolicy policy = parse_restart_policy(o.restart_policy).value_or(RestartPolicy{});
  const std::string dir = run_dir(eng.runroot(), rec.id);
  std::string rootfs;
  std::string driver_name = eng.storage_choice() ? eng.storage_choice()->name : "";
  if (auto d = eng.storage(); d) {
    driver_name = (*d)->name();
    if (auto lp = (*d)->layer_path(rec.layer_id); lp) {
      rootfs = *lp;
    }
  }
  json mounts = json::array();
  for (const auto& m : spec.value("mounts", json::array())) {
    if (m.value("type", "") == "bind" && m.value("destination", "").rfind("/etc/", 0) != 0) {
      mounts.push_back({{"Type", "bind"},
                        {"Source", m.value("source", "")},
                        {"Destination", m.value("destination", "")},
                        {"Options", m.value("options", json::array())}});
    }
  }
  std::vector<std::string> path_args = rec.path_args;
  json j{
      {"Id", rec.id},
      {"Created", rfc3339_nano(rec.created)},
      {"Path", path_args.empty() ? "" : path_args[0]},
      {"Args", path_args.empty()
                   ? json::array()
                   : json(std::vector<std::string>(path_args.begin() + 1, path_args.end()))},
      {"State",
       {{"OciVersion", spec.value("ociVersion", "1.0.2")},
        {"Status", status_name(st.status)},
        {"Running", st.status == Status::Running},
        {"Paused", st.status == Status::Paused},
        {"Restarting", false},
        {"OOMKilled", st.oom_killed},
        {"Dead", false},
        {"Pid", st.status == Status::Running ? st.pid : 0},
        {"ConmonPid",
         st.status == Status::Running || st.status == Status::Created ? st.monitor_pid : 0},
        {"ExitCode", st.exit_code},
        {"Error", st.error},
        {"StartedAt", rfc3339_nano(st.started_at)},
        {"FinishedAt", rfc3339_nano(st.finished_at)},
        {"CheckpointedAt", "0001-01-01T00:00:00Z"},
        {"RestoredAt", "0001-01-01T00:00:00Z"}}},
      {"Image", rec.image_id},
      {"ImageDigest", ""},
      {"ImageName", rec.image_name},
      {"Rootfs", ""},
      {"Pod", ""},
      {"ResolvConfPath", rec.bundle + "/resolv.conf"},
      {"HostnamePath", rec.bundle + "/hostname"},
      {"HostsPath", rec.bundle + "/hosts"},
      {"StaticDir", eng.graphroot() + "/containers/" + rec.id + "/userdata"},
      {"OCIConfigPath", rec.bundle + "/config.json"},
      {"OCIRuntime", st.runtime.empty() ? resolve_runtime_name(eng, o.runtime) : st.runtime},
      {"ConmonPidFile", dir + "/monitor.pid"},
      {"PidFile", dir + "/pidfile"},
      {"Name", rec.name},
      {"RestartCount", rec.restart_count},
      {"Driver", driver_name},
      {"MountLabel", ""},
      {"ProcessLabel", ""},
      {"AppArmorProfile", ""},
      {"EffectiveCaps", eff},
      {"BoundingCaps", bnd},
      {"ExecIDs", json::array()},
      {"GraphDriver",
       {{"Name", driver_name}, {"Data", {{"UpperDir", rootfs}, {"MergedDir", rootfs}}}}},
      {"Mounts", mounts},
      {"Dependencies", json::array()},
      {"Namespace", ""},
      {"IsInfra", false},
      {"IsService", false},
      {"Config",
       {{"Hostname", o.hostname},
        {"Domainname", ""},
        {"User", o.user},
        {"AttachStdin", o.interactive},
        {"AttachStdout", true},
        {"AttachStderr", true},
        {"Tty", o.tty},
        {"OpenStdin", o.interactive},
        {"StdinOnce", o.interactive},
        {"Env", proc.value("env", json::array())},
        {"Cmd", o.command.empty() ? json(nullptr) : json(o.command)},
        {"Image", rec.image_name},
        {"Volumes", nullptr},
        {"WorkingDir", proc.value("cwd", "/")},
        {"Entrypoint", o.entrypoint ? json(*o.entrypoint) : json(nullptr)},
        {"OnBuild", nullptr},
        {"Labels", o.labels.empty() ? json(nullptr) : json(o.labels)},
        {"Annotations", spec.value("annotations", json::object())},
        {"StopSignal", o.stop_signal},
        {"CreateCommand", o.create_command},
        {"Umask", "0022"},
        {"Timeout", 0},
        {"StopTimeout", o.stop_timeout}}},
      {"HostConfig",
       {{"AutoRemove", o.remove},
        {"Binds", json::array()},
        {"CapAdd", o.cap_add},
        {"CapDrop", o.cap_drop},
        {"LogConfig",
         {{"Type", o.log_driver},
          {"Config", o.log_opts.empty() ? json(nullptr) : json(o.log_opts)},
          {"Path", o.log_driver == "k8s-file" || o.log_driver == "json-file"
                       ? rec.bundle + "/ctr.log"
                       : ""},
          {"Size", o.log_opts.count("max-size") ? o.log_opts.at("max-size") : "0B"}}},
        {"Privileged", o.privileged},
        {"ReadonlyRootfs", o.read_only},
        {"RestartPolicy", {{"Name", policy.name}, {"MaximumRetryCount", policy.max_retries}}},
        {"SecurityOpt", o.no_new_privileges ? json::array({"no-new-privileges"}) : json::array()},
        {"Sysctls", o.sysctls},
        {"Ulimits", o.ulimits},
        {"OomScoreAdj", o.oom_score_adj.value_or(0)},
        {"Init", o.init},
        {"Runtime", "oci"}}},
  };
  net_inspect(eng, rec, st, j);
  mounts_inspect(eng, rec, st, j);
  resources_inspect(eng, rec, st, j);
  if (size) {
    int64_t rw = rootfs.empty() ? 0 : dir_size(rootfs);
    j["SizeRw"] = rw;
    j["SizeRootFs"] = rw + ImageSizes(eng)(rec.image_id);
  }
  return j;
}

struct OpenedLogs {
  struct Source {
    ContainerRecord rec;
    std::string path;     // ctr.log
    UniqueFd rotated;     // ctr.log.1 as it was when opened; read once
    UniqueFd current;     // the file the monitor writes (empty: none yet)
    std::string pending;  // read, not yet ended by a newline
  };
  std::vector<Source> sources;
};

namespace {

// The log file at `path` opened for reading; empty when there is none (a container never
// started, or not rotated yet).
Result<UniqueFd> open_log_file(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) {
      return UniqueFd();
    }
    return fail_errno("open the container log", path);
  }
  return UniqueFd(fd);
}

bool same_file(int a, int b) {
  struct stat sa {};
  struct stat sb {};
  return ::fstat(a, &sa) == 0 && ::fstat(b, &sb) == 0 && sa.st_dev == sb.st_dev &&
         sa.st_ino == sb.st_ino;
}

// Reads what the source's files hold beyond what was read before, following a rotation (the
// monitor renames ctr.log to ctr.log.1 and starts a new ctr.log): the old file is read to its
// end before the new one.
Result<void> read_more(OpenedLogs::Source& src) {
  if (src.rotated) {
    BERTH_TRY(auto old, util::read_all(src.rotated.get(), rotated_path(src.path)));
    src.pending += old;
    src.rotated.reset();
  }
  if (src.current) {
    BERTH_TRY(auto more, util::read_all(src.current.get(), src.path));
    src.pending += more;
  }
  BERTH_TRY(auto now, open_log_file(src.path));
  if (!now || (src.current && same_file(now.get(), src.current.get()))) {
    return {};
  }
  if (src.current) {  // rotated: what the monitor wrote to the old file before it moved on
    BERTH_TRY(auto rest, util::read_all(src.current.get(), src.path));
    src.pending += rest;
  }
  src.current = std::move(now);
  BERTH_TRY(auto fresh, util::read_all(src.current.get(), src.path));
  src.pending += fresh;
  return {};
}

// The log lines read so far: those ended by a newline, or all with `all`.
std::vector<LogLine> take_lines(OpenedLogs::Source& src, bool all) {
  size_t end = all ? src.pending.size() : src.pending.rfind('\n');
  if (end == std::string::npos || end == 0) {
    return {};
  }
  end = all ? end : end + 1;
  auto lines = parse_log(std::string_view(src.pending).substr(0, end));
  src.pending.erase(0, end);
  return lines;
}

}  // namespace

Result<std::shared_ptr<OpenedLogs>> open_logs(engine::Engine& eng,
                                              const std::vector<std::string>& names) {
  BERTH_TRY(auto db, open_db(eng, true));
  auto opened = std::make_shared<OpenedLogs>();
  for (const auto& n : names) {
    BERTH_TRY(auto r, db->lookup(n));
    if (r.options.log_driver != "k8s-file" && r.options.log_driver != "json-file") {
      return fail(Errc::NotSupported, "container " + r.name + " uses the log driver \"" +
                                          r.options.log_driver + "\", which keeps no logs to read");
    }
    OpenedLogs::Source src;
    src.path = r.bundle + "/ctr.log";
    // The current file first: a rotation in between then shows as the same file twice, where
    // the other order could miss the file in between.
    BERTH_TRY(src.current, open_log_file(src.path));
    BERTH_TRY(src.rotated, open_log_file(rotated_path(src.path)));
    if (src.rotated && src.current && same_file(src.rotated.get(), src.current.get())) {
      src.rotated.reset();
    }
    src.rec = std::move(r);
    opened->sources.push_back(std::move(src));
  }
  return opened;
}

Result<void> write_logs(engine::Engine& eng, OpenedLogs& logs, const LogsOptions& opts) {
  const bool prefix = opts.names || logs.sources.size() > 1;
  auto emit = [&](const ContainerRecord& rec, const std::vector<LogLine>& lines, size_t from) {
    for (size_t k = from; k < lines.size(); ++k) {
      const LogLine& l = lines[k];
      if ((opts.since && l.time < *opts.since) || (opts.until && l.time > *opts.until)) {
        continue;
      }
      std::string out;
      if (prefix) {
        out += (opts.names ? rec.name : rec.id.substr(0, 12)) + " ";
      }
      if (opts.timestamps) {
        out += format_log_time(l.time) + " ";
      }
      out += l.text;
      if (l.complete) {
        out += '\n';
      }
      (void)util::write_all(l.stream == LogStream::Stderr ? opts.err_fd : opts.out_fd, out, "logs");
    }
  };
  for (auto& src : logs.sources) {
    BERTH_TRYV(read_more(src));
    auto lines = take_lines(src, !opts.follow);
    size_t from = 0;
    if (opts.tail >= 0 && lines.size() > static_cast<size_t>(opts.tail)) {
      from = lines.size() - static_cast<size_t>(opts.tail);
    }
    emit(src.rec, lines, from);
  }
  if (!opts.follow) {
    return {};
  }
  for (;;) {
    bool any_running = false;
    for (auto& src : logs.sources) {
      // The state before the file: once it says exited, the file read after holds the end.
      ContainerState st = read_state(eng.runroot(), src.rec);
      bool running = st.status == Status::Running || st.status == Status::Created ||
                     st.status == Status::Paused;
      any_running = any_running || running;
      BERTH_TRYV(read_more(src));
      emit(src.rec, take_lines(src, !running), 0);
    }
    if (!any_running) {
      return {};
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}

Result<void> logs(engine::Engine& eng, const std::vector<std::string>& names,
                  const LogsOptions& opts) {
  BERTH_TRY(auto opened, open_logs(eng, names));
  return write_logs(eng, *opened, opts);
}

std::optional<int64_t> parse_log_time_arg(const std::string& v) {
  return parse_time_arg(v);
}

}  // namespace berth::container
