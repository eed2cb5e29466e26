// Volume records, creation, removal, listing and filters.
#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cstring>
#include <regex>

#include "berth/sdk/layer_archive.hpp"
#include "berth/util/digest.hpp"
#include "berth/util/fs.hpp"
#include "berth/util/log.hpp"
#include "berth/volume/volume.hpp"
#include "internal.hpp"

namespace berth::volume {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr const char* kRecord = "volume.json";
constexpr const char* kLockFile = ".berth-volumes.lock";

json to_record(const Volume& v) {
  json j = {{"name", v.name},
            {"driver", v.driver},
            {"created_nano", v.created_nano},
            {"labels", v.labels},
            {"options", v.options},
            {"anonymous", v.anonymous},
            {"needs_copy_up", v.needs_copy_up},
            {"needs_chown", v.needs_chown},
            {"lock_number", v.lock_number}};
  if (v.uid) {
    j["uid"] = *v.uid;
  }
  if (v.gid) {
    j["gid"] = *v.gid;
  }
  return j;
}

Result<Volume> from_record(const std::string& text, const fs::path& file) {
  try {
    auto j = json::parse(text);
    Volume v;
    v.name = j.at("name").get<std::string>();
    v.driver = j.value("driver", "local");
    v.created_nano = j.value("created_nano", int64_t{0});
    v.labels = j.value("labels", std::map<std::string, std::string>{});
    v.options = j.value("options", std::map<std::string, std::string>{});
    v.anonymous = j.value("anonymous", false);
    v.needs_copy_up = j.value("needs_copy_up", true);
    v.needs_chown = j.value("needs_chown", true);
    v.lock_number = j.value("lock_number", 0u);
    if (j.contains("uid")) {
      v.uid = j["uid"].get<uint32_t>();
    }
    if (j.contains("gid")) {
      v.gid = j["gid"].get<uint32_t>();
    }
    return v;
  } catch (const std::exception& e) {
    return fail(Errc::Corrupt, "volume record " + file.string() + " is corrupt: " + e.what() +
                                   " (remove the volume's directory to drop it)");
  }
}

Result<uint32_t> parse_id(const std::string& key, const std::string& value) {
  uint32_t out = 0;
  auto [p, ec] = std::from_chars(value.data(), value.data() + value.size(), out);
  if (ec != std::errc() || p != value.data() + value.size() || value.empty()) {
    return fail(Errc::InvalidArgument,
                "cannot convert " + key + " \"" + value + "\" to an integer: invalid argument");
  }
  return out;
}

// Podman's ParseVolumeOptions plus the local driver's validation.
Result<void> parse_options(const std::map<std::string, std::string>& in, Volume& v) {
  for (const auto& [raw_key, value] : in) {
    std::string key = raw_key;
    std::transform(key.begin(), key.end(), key.begin(),
                   [](unsigned char c) { return std::tolower(c); });
    if (key == "uid") {
      BERTH_TRY(v.uid, parse_id("UID", value));
      v.needs_chown = false;
    } else if (key == "gid") {
      BERTH_TRY(v.gid, parse_id("GID", value));
      v.needs_chown = false;
    } else if (key == "o") {
      std::vector<std::string> keep;
      size_t start = 0;
      while (start <= value.size()) {
        auto comma = value.find(',', start);
        std::string o =
            value.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
        start = comma == std::string::npos ? value.size() + 1 : comma + 1;
        if (o.empty()) {
          continue;
        }
        auto eq = o.find('=');
        std::string k = o.substr(0, eq);
        std::string val = eq == std::string::npos ? "" : o.substr(eq + 1);
        if (k == "uid") {
          BERTH_TRY(v.uid, parse_id("UID", val));
          v.needs_chown = false;
        } else if (k == "gid") {
          BERTH_TRY(v.gid, parse_id("GID", val));
          v.needs_chown = false;
        } else if (k == "inodes" || k == "noquota") {
          return fail(Errc::NotSupported, "volume option o=" + k +
                                              " needs quota support, which berth's local "
                                              "driver does not have");
        } else {
          keep.push_back(o);
        }
      }
      if (!keep.empty()) {
        std::string joined;
        for (const auto& k : keep) {
          joined += (joined.empty() ? "" : ",") + k;
        }
        v.options["o"] = joined;
      }
    } else if (key == "type" || key == "device" || key == "copy" || key == "nocopy") {
      v.options[key] = value;
    } else if (key == "size" || key == "inodes" || key == "noquota") {
      return fail(Errc::NotSupported,
                  "volume option " + key +
                      " needs quota support, which berth's local driver does not have (for a "
                      "tmpfs volume give the size as a mount option: -o type=tmpfs -o "
                      "device=tmpfs -o o=size=64m)");
    } else {
      return fail(Errc::InvalidArgument, "unrecognized volume option \"" + raw_key +
                                             "\" is not supported with local driver (valid: "
                                             "type, device, o, uid, gid, copy, nocopy)");
    }
  }
  if (v.options.count("nocopy") != 0) {
    v.needs_copy_up = false;
  }
  if (v.options.count("device") != 0 && v.options.count("type") == 0 &&
      v.options["o"].find("bind") == std::string::npos) {
    return fail(Errc::InvalidArgument,
                "volume option device= needs type= (e.g. -o type=tmpfs, -o type=nfs) or o=bind");
  }
  return {};
}

// Podman's volume ls filters, parsed once.
struct VolumeFilters {
  std::map<std::string, std::vector<std::string>> by_key;
  int64_t until = 0;
  bool needs_users = false;
};

Result<VolumeFilters> parse_filters(const std::vector<std::string>& filters,
                                    const std::vector<std::string>& allowed) {
  VolumeFilters f;
  for (const auto& spec : filters) {
    auto eq = spec.find('=');
    if (eq == std::string::npos || eq == 0) {
      return fail(Errc::InvalidArgument, "invalid filter \"" + spec + "\": must be KEY=VALUE");
    }
    std::string key = spec.substr(0, eq);
    std::string value = spec.substr(eq + 1);
    if (std::find(allowed.begin(), allowed.end(), key) == allowed.end()) {
      return fail(Errc::InvalidArgument, "\"" + key + "\" is an invalid volume filter");
    }
    if (key == "until") {
      BERTH_TRY(f.until, events::parse_time(value, true, events::now_nano()));
    } else if (key == "dangling") {
      if (value != "true" && value != "false" && value != "1" && value != "0") {
        return fail(Errc::InvalidArgument,
                    "dangling filter value \"" + value + "\" must be true or false");
      }
      f.needs_users = true;
    } else if (key == "name") {
      try {
        std::regex re(value);
      } catch (const std::regex_error& e) {
        return fail(Errc::InvalidArgument,
                    "invalid name filter \"" + value + "\": " + std::string(e.what()));
      }
    }
    f.by_key[key].push_back(value);
  }
  return f;
}

bool kv_match(const std::map<std::string, std::string>& m, const std::string& spec) {
  auto eq = spec.find('=');
  auto it = m.find(spec.substr(0, eq));
  return it != m.end() && (eq == std::string::npos || it->second == spec.substr(eq + 1));
}

Result<bool> matches(const VolumeFilters& f, const Volume& v, const UsedBy& used_by) {
  for (const auto& [key, values] : f.by_key) {
    if (key == "label!") {
      // Every label! must not match (Podman's LabelFilterNegate: all must hold).
      for (const auto& val : values) {
        if (kv_match(v.labels, val)) {
          return false;
        }
      }
      continue;
    }
    if (key == "until") {
      if (v.created_nano >= f.until) {
        return false;
      }
      continue;
    }
    bool any = false;
    for (const auto& val : values) {
      if (key == "name") {
        any = std::regex_search(v.name, std::regex(val));
      } else if (key == "driver") {
        any = v.driver == val;
      } else if (key == "scope") {
        any = v.scope == val;
      } else if (key == "label") {
        any = kv_match(v.labels, val);
      } else if (key == "opt") {
        any = kv_match(v.options, val);
      } else if (key == "dangling") {
        if (!used_by) {
          return fail(Errc::NotSupported, "the dangling filter needs the container store");
        }
        BERTH_TRY(auto users, used_by(v.name));
        bool want = val == "true" || val == "1";
        any = users.empty() == want;
      }
      if (any) {
        break;
      }
    }
    if (!any) {
      return false;
    }
  }
  return true;
}

}  // namespace

Result<void> validate_name(std::string_view name) {
  static const std::regex kName("[a-zA-Z0-9][a-zA-Z0-9_.-]*");
  if (name.empty() || !std::regex_match(name.begin(), name.end(), kName)) {
    return fail(Errc::InvalidArgument, "volume name \"" + std::string(name) +
                                           "\" is invalid: names must match "
                                           "[a-zA-Z0-9][a-zA-Z0-9_.-]*");
  }
  return {};
}

json to_inspect_json(const Volume& v) {
  json j = {{"Name", v.name},
            {"Driver", v.driver},
            {"Mountpoint", v.mountpoint},
            {"CreatedAt", events::format_rfc3339nano(v.created_nano)},
            {"Labels", v.labels.empty() ? json::object() : json(v.labels)},
            {"Scope", v.scope},
            {"Options", v.options.empty() ? json::object() : json(v.options)}};
  if (v.uid) {
    j["UID"] = *v.uid;
  }
  if (v.gid) {
    j["GID"] = *v.gid;
  }
  j["MountCount"] = v.mount_count;
  j["NeedsCopyUp"] = v.needs_copy_up;
  j["NeedsChown"] = v.needs_chown;
  j["LockNumber"] = v.lock_number;
  // Podman prints Anonymous only when set (omitempty).
  if (v.anonymous) {
    j["Anonymous"] = true;
  }
  return j;
}

Result<VolumeStorePtr> VolumeStore::open(const fs::path& volume_path, const fs::path& runroot,
                                         const events::EventLog* events) {
  if (volume_path.empty() || runroot.empty()) {
    return fail(Errc::InvalidArgument, "volume store needs a volume path and a run root");
  }
  BERTH_TRYV(util::make_dirs(volume_path, 0700));
  auto vs = VolumeStorePtr(new VolumeStore(volume_path, runroot, events));
  vs->cleanup_stale();
  return vs;
}

Result<VolumeStorePtr> VolumeStore::open(const config::Config& cfg,
                                         const events::EventLog* events) {
  fs::path vp = cfg.containers.engine.volume_path;
  if (vp.empty()) {
    vp = fs::path(cfg.storage.graphroot) / "volumes";
  }
  return open(vp, cfg.storage.runroot, events);
}

fs::path VolumeStore::count_file(std::string_view name) const {
  return runroot_ / "volumes" / (std::string(name) + ".mounts");
}

void VolumeStore::emit(std::string_view status, const Volume& v) const {
  if (events_ == nullptr) {
    return;
  }
  events::Event e;
  e.type = std::string(events::type::kVolume);
  e.status = std::string(status);
  e.name = v.name;
  if (auto r = events_->emit(e); !r) {
    spdlog::warn("{}", r.error().message());
  }
}

// Staging directories whose creator died, and volumes half removed. Creators hold the store lock
// shared while staging, so with the lock held exclusively every .tmp- entry is stale.
void VolumeStore::cleanup_stale() const {
  auto lock = internal::FileLock::try_open(volume_path_ / kLockFile, LOCK_EX);
  if (!lock) {
    return;
  }
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(volume_path_, ec)) {
    auto n = entry.path().filename().string();
    if (n.rfind(".tmp-", 0) == 0 || n.rfind(".removing-", 0) == 0) {
      if (auto r = util::remove_tree(entry.path()); !r) {
        spdlog::warn("clean up {}: {}", entry.path().string(), r.error().message());
      }
    }
  }
}

Result<void> VolumeStore::save(const Volume& v) const {
  return util::write_file_atomic(dir_of(v.name) / kRecord, to_record(v).dump(), 0600);
}

Result<uint64_t> VolumeStore::read_count(std::string_view name) const {
  int fd = ::open(count_file(name).c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return errno == ENOENT ? Result<uint64_t>(0) : fail_errno("open", count_file(name).string());
  }
  UniqueFd owner(fd);
  return internal::read_count_fd(fd, count_file(name));
}

Result<Volume> VolumeStore::create(const CreateOptions& opts) {
  if (!opts.driver.empty() && opts.driver != "local") {
    return fail(Errc::NotSupported, "volume driver \"" + opts.driver +
                                        "\" is not supported: berth has the local driver only");
  }
  Volume v;
  v.name = opts.name.empty() ? util::random_id() : opts.name;
  BERTH_TRYV(validate_name(v.name));
  v.labels = opts.labels;
  v.anonymous = opts.anonymous;
  BERTH_TRYV(parse_options(opts.options, v));
  v.mountpoint = (dir_of(v.name) / "_data").string();
  if (fs::exists(dir_of(v.name) / kRecord)) {
    if (opts.ignore_existing) {
      return get(v.name);
    }
    return fail(Errc::AlreadyExists,
                "volume with name " + v.name + " already exists: volume already exists");
  }
  v.created_nano = events::now_nano();
  v.lock_number = static_cast<uint32_t>(std::hash<std::string>{}(v.name) & 0x7ff);

  BERTH_TRY(auto lock, internal::FileLock::open(volume_path_ / kLockFile, LOCK_SH));
  fs::path staging = volume_path_ / (".tmp-" + util::random_id().substr(0, 16));
  auto cleanup = [&] { (void)util::remove_tree(staging); };
  auto r = [&]() -> Result<void> {
    if (::mkdir(staging.c_str(), 0700) != 0) {
      return fail_errno("create directory", staging.string());
    }
    fs::path data = staging / "_data";
    if (::mkdir(data.c_str(), 0755) != 0) {
      return fail_errno("create directory", data.string());
    }
    if (v.uid || v.gid) {
      if (::chown(data.c_str(), v.uid ? *v.uid : static_cast<uid_t>(-1),
                  v.gid ? *v.gid : static_cast<gid_t>(-1)) != 0) {
        return fail_errno("chown", data.string());
      }
    }
    BERTH_TRYV(util::write_file_atomic(staging / kRecord, to_record(v).dump(), 0600));
    if (::rename(staging.c_str(), dir_of(v.name).c_str()) != 0) {
      if (errno == EEXIST || errno == ENOTEMPTY) {
        return fail(Errc::AlreadyExists,
                    "volume with name " + v.name + " already exists: volume already exists");
      }
      return fail_errno("rename " + staging.string() + " to", dir_of(v.name).string());
    }
    return {};
  }();
  if (!r) {
    cleanup();
    if (r.error().code() == Errc::AlreadyExists && opts.ignore_existing) {
      return get(v.name);
    }
    return fail(r.error());
  }
  emit("create", v);
  return v;
}

Result<Volume> VolumeStore::get_or_create(const std::string& name) {
  CreateOptions o;
  o.name = name;
  o.ignore_existing = true;
  return create(o);
}

Result<Volume> VolumeStore::get(std::string_view name) const {
  if (name.empty() || name.front() == '.' || name.find('/') != std::string_view::npos) {
    return fail(Errc::NotFound,
                "no volume with name \"" + std::string(name) + "\" found: no such volume");
  }
  fs::path file = dir_of(name) / kRecord;
  int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT || errno == ENOTDIR) {
      return fail(Errc::NotFound,
                  "no volume with name \"" + std::string(name) + "\" found: no such volume");
    }
    return fail_errno("open", file.string());
  }
  ::close(fd);
  BERTH_TRY(auto text, util::read_file(file));
  BERTH_TRY(auto v, from_record(text, file));
  v.mountpoint = (dir_of(v.name) / "_data").string();
  BERTH_TRY(v.mount_count, read_count(v.name));
  return v;
}

Result<bool> VolumeStore::exists(std::string_view name) const {
  auto v = get(name);
  if (!v) {
    if (v.error().code() == Errc::NotFound) {
      return false;
    }
    return fail(v.error());
  }
  return true;
}

Result<std::vector<Volume>> VolumeStore::list(const std::vector<std::string>& filters,
                                              const UsedBy& used_by) const {
  BERTH_TRY(auto f, parse_filters(filters, {"name", "driver", "scope", "label", "label!", "opt",
                                            "until", "dangling"}));
  std::vector<Volume> out;
  DIR* d = ::opendir(volume_path_.c_str());
  if (d == nullptr) {
    return fail_errno("open directory", volume_path_.string());
  }
  std::vector<std::string> names;
  errno = 0;
  while (auto* ent = ::readdir(d)) {
    if (ent->d_name[0] != '.') {
      names.emplace_back(ent->d_name);
    }
  }
  ::closedir(d);
  std::sort(names.begin(), names.end());
  for (const auto& n : names) {
    auto v = get(n);
    if (!v) {
      if (v.error().code() == Errc::NotFound) {
        continue;  // removed meanwhile, or not a volume
      }
      spdlog::warn("{}", v.error().message());
      continue;
    }
    BERTH_TRY(bool ok, matches(f, *v, used_by));
    if (ok) {
      out.push_back(std::move(*v));
    }
  }
  return out;
}

Result<void> VolumeStore::remove(std::string_view name, const RemoveOptions& opts) {
  BERTH_TRY(auto v, get(name));
  if (opts.used_by) {
    BERTH_TRY(auto users, opts.used_by(v.name));
    if (!users.empty()) {
      std::string list;
      for (const auto& u : users) {
        list += (list.empty() ? "" : ", ") + u;
      }
      if (!opts.force || !opts.remove_containers) {
        return fail(Errc::Conflict, "volume " + v.name +
                                        " is being used by the following container(s): " + list +
                                        ": volume is being used (remove the containers first, "
                                        "or use --force)");
      }
      // Before taking the volume's lock: removing a container releases its volumes.
      BERTH_TRYV(opts.remove_containers(users, opts.timeout));
    }
  }
  BERTH_TRY(auto lock, internal::FileLock::open(count_file(v.name), LOCK_EX, true));
  BERTH_TRY(uint64_t count, internal::read_count_fd(lock.fd(), count_file(v.name)));
  if (count > 0) {
    if (!opts.force) {
      return fail(Errc::Busy, "volume " + v.name + " is mounted " + std::to_string(count) +
                                  " time(s): volume is being used (use --force)");
    }
    if (v.is_mount()) {
      BERTH_TRYV(internal::unmount_volume(v));
    }
  }
  // Never delete through a mount (a bind volume's data is the host's): a mount left behind by a
  // lost count must go first, or the removal stops.
  if (v.is_mount()) {
    BERTH_TRY(bool mounted, internal::is_mount_point(v.mountpoint));
    if (mounted) {
      BERTH_TRYV(internal::unmount_volume(v));
      BERTH_TRY(bool still, internal::is_mount_point(v.mountpoint));
      if (still) {
        return fail(Errc::Busy, "volume " + v.name + " is still mounted at " + v.mountpoint +
                                    "; unmount it before removing the volume");
      }
    }
  }
  fs::path gone = volume_path_ / (".removing-" + util::random_id().substr(0, 16));
  if (::rename(dir_of(v.name).c_str(), gone.c_str()) != 0) {
    if (errno == ENOENT) {
      return fail(Errc::NotFound, "no volume with name \"" + v.name + "\" found: no such volume");
    }
    return fail_errno("rename " + dir_of(v.name).string() + " to", gone.string());
  }
  if (::unlink(count_file(v.name).c_str()) != 0 && errno != ENOENT) {
    spdlog::warn("remove {}: {}", count_file(v.name).string(), std::strerror(errno));
  }
  if (auto r = util::remove_tree(gone); !r) {
    spdlog::warn("{} (the next volume command removes it)", r.error().message());
  }
  emit("remove", v);
  return {};
}

Result<std::vector<std::string>> VolumeStore::prune(const std::vector<std::string>& filters,
                                                    const UsedBy& used_by) {
  BERTH_TRYV(parse_filters(filters, {"label", "label!", "until"}));
  BERTH_TRY(auto vols, list(filters, used_by));
  std::vector<std::string> removed;
  RemoveOptions ro;
  ro.used_by = used_by;
  for (const auto& v : vols) {
    auto r = remove(v.name, ro);
    if (!r) {
      auto c = r.error().code();
      if (c == Errc::Conflict || c == Errc::Busy || c == Errc::NotFound) {
        continue;  // in use, or removed by someone else meanwhile
      }
      return fail(r.error());
    }
    removed.push_back(v.name);
  }
  return removed;
}

Result<void> VolumeStore::export_tar(std::string_view name, int out_fd) {
  BERTH_TRY(auto path, acquire(name));
  auto r = sdk::write_tree_tar(path, out_fd, sdk::WhiteoutFormat::Delete);
  auto rel = release(name);
  if (!r) {
    return fail(std::move(r).error().wrap("export volume " + std::string(name)));
  }
  return rel;
}

Result<void> VolumeStore::import_tar(std::string_view name, int in_fd) {
  BERTH_TRY(auto path, acquire(name));
  sdk::ExtractOptions eo;
  eo.whiteouts = sdk::WhiteoutFormat::Delete;
  eo.restore_ownership = ::geteuid() == 0;
  auto r = sdk::extract_layer(in_fd, path, eo);
  auto rel = release(name);
  if (!r) {
    return fail(std::move(r).error().wrap("import into volume " + std::string(name)));
  }
  return rel;
}

}  // namespace berth::volume
