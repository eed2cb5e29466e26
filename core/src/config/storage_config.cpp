#include <spdlog/spdlog.h>

#include "berth/config/config.hpp"
#include "search_dirs.hpp"
#include "toml_reader.hpp"

namespace berth::config {

namespace {

using detail::TableReader;

constexpr const char* kDefault = "default";
constexpr const char* kFlag = "flag";

// strconv.ParseBool, which containers/storage uses for its string-typed booleans.
std::optional<bool> parse_bool(std::string_view s) {
  if (s == "1" || s == "t" || s == "T" || s == "true" || s == "TRUE" || s == "True") {
    return true;
  }
  if (s == "0" || s == "f" || s == "F" || s == "false" || s == "FALSE" || s == "False") {
    return false;
  }
  return std::nullopt;
}

Result<void> read_overlay(TableReader& r, const toml::table& t, std::string_view path,
                          OverlayOptions& o) {
  BERTH_TRYV(r.get(t, "mount_program", detail::join_path(path, "mount_program"), o.mount_program));
  BERTH_TRYV(r.get(t, "mountopt", detail::join_path(path, "mountopt"), o.mountopt));
  BERTH_TRYV(
      r.get(t, "skip_mount_home", detail::join_path(path, "skip_mount_home"), o.skip_mount_home));
  BERTH_TRYV(r.get(t, "force_mask", detail::join_path(path, "force_mask"), o.force_mask));
  BERTH_TRYV(r.get(t, "ignore_chown_errors", detail::join_path(path, "ignore_chown_errors"),
                   o.ignore_chown_errors));
  BERTH_TRYV(r.get(t, "size", detail::join_path(path, "size"), o.size));
  return {};
}

struct ParsedStorage {
  StorageConfig cfg;
  std::optional<std::string> graphroot;
  std::optional<std::string> runroot;
  std::optional<std::string> imagestore;
  std::optional<std::string> rootless_storage_path;
};

// Reads one storage.conf onto `p`. Roots are kept aside so the caller decides whether this file
// may set them.
Result<void> apply_storage_table(const toml::table& doc, TableReader& r, ParsedStorage& p) {
  r.note_unknown(doc, "", {"storage"});
  BERTH_TRY(const toml::table* st, r.table(doc, "storage", "storage"));
  if (st == nullptr) {
    return {};
  }
  StorageConfig& c = p.cfg;
  r.note_unknown(*st, "storage",
                 {"driver", "graphroot", "runroot", "imagestore", "rootless_storage_path",
                  "transient_store", "options"},
                 {"driver_priority"});
  BERTH_TRYV(r.get(*st, "driver", "storage.driver", c.driver));
  std::string s;
  BERTH_TRY(bool has, r.get(*st, "graphroot", "storage.graphroot", s));
  if (has) {
    p.graphroot = s;
  }
  BERTH_TRY(has, r.get(*st, "runroot", "storage.runroot", s));
  if (has) {
    p.runroot = s;
  }
  BERTH_TRY(has, r.get(*st, "imagestore", "storage.imagestore", s));
  if (has) {
    p.imagestore = s;
  }
  BERTH_TRY(has, r.get(*st, "rootless_storage_path", "storage.rootless_storage_path", s));
  if (has) {
    p.rootless_storage_path = s;
  }
  BERTH_TRYV(r.get(*st, "transient_store", "storage.transient_store", c.transient_store));

  BERTH_TRY(const toml::table* opts, r.table(*st, "options", "storage.options"));
  if (opts == nullptr) {
    return {};
  }
  r.note_unknown(*opts, "storage.options",
                 {"additionalimagestores", "pull_options", "overlay", "vfs", "mount_program",
                  "mountopt", "skip_mount_home", "force_mask", "ignore_chown_errors", "size"},
                 {"remap-uids", "remap-gids", "remap-user", "remap-group", "root-auto-userns-user",
                  "auto-userns-min-size", "auto-userns-max-size", "disable-volatile", "thinpool",
                  "btrfs", "zfs", "aufs", "inodes"});
  BERTH_TRYV(r.get(*opts, "additionalimagestores", "storage.options.additionalimagestores",
                   c.options.additional_image_stores));
  BERTH_TRYV(r.get(*opts, "pull_options", "storage.options.pull_options", c.options.pull_options));
  // The options that older storage.conf files put directly in [storage.options] apply to overlay;
  // [storage.options.overlay] overrides them.
  BERTH_TRYV(read_overlay(r, *opts, "storage.options", c.options.overlay));
  for (const char* key : {"mount_program", "mountopt", "skip_mount_home", "force_mask",
                          "ignore_chown_errors", "size"}) {
    auto it = c.sources.find(std::string("storage.options.") + key);
    if (it != c.sources.end()) {
      c.sources[std::string("storage.options.overlay.") + key] = it->second;
    }
  }
  BERTH_TRY(const toml::table* ov, r.table(*opts, "overlay", "storage.options.overlay"));
  if (ov != nullptr) {
    r.note_unknown(*ov, "storage.options.overlay",
                   {"mount_program", "mountopt", "skip_mount_home", "force_mask",
                    "ignore_chown_errors", "size"},
                   {"inodes", "use_composefs"});
    BERTH_TRYV(read_overlay(r, *ov, "storage.options.overlay", c.options.overlay));
  }
  BERTH_TRY(const toml::table* vfs, r.table(*opts, "vfs", "storage.options.vfs"));
  if (vfs != nullptr) {
    r.note_unknown(*vfs, "storage.options.vfs", {"ignore_chown_errors"});
    BERTH_TRYV(r.get(*vfs, "ignore_chown_errors", "storage.options.vfs.ignore_chown_errors",
                     c.options.vfs.ignore_chown_errors));
  }
  return {};
}

Result<void> parse_into(const std::string& content, const std::string& file, ParsedStorage& p) {
  BERTH_TRY(toml::table doc, detail::parse_toml(content, file));
  TableReader r(file, &p.cfg.sources);
  return apply_storage_table(doc, r, p);
}

// Applies one --storage-opt / $STORAGE_OPTS entry.
Result<void> apply_storage_opt(StorageConfig& c, const std::string& opt, const std::string& src) {
  auto eq = opt.find('=');
  if (eq == std::string::npos || eq == 0) {
    return fail(Errc::InvalidArgument,
                "storage option \"" + opt + "\" (" + src +
                    "): expected key=value, e.g. overlay.mount_program=/usr/bin/fuse-overlayfs");
  }
  std::string key = opt.substr(0, eq);
  std::string value = opt.substr(eq + 1);
  c.driver_options[key] = value;
  // containers/storage accepts "overlay.", "overlay2." and "." as the overlay prefix.
  std::string name;
  OverlayOptions& o = c.options.overlay;
  for (std::string_view prefix : {"overlay.", "overlay2.", "."}) {
    if (key.starts_with(prefix)) {
      name = key.substr(prefix.size());
      break;
    }
  }
  auto set_bool = [&](bool& field, const std::string& source_key) -> Result<void> {
    auto b = parse_bool(value);
    if (!b) {
      return fail(Errc::InvalidArgument,
                  "storage option " + key + "=" + value + " (" + src + "): expected true or false");
    }
    field = *b;
    c.sources[source_key] = src;
    return {};
  };
  const std::string ov = "storage.options.overlay.";
  if (!name.empty()) {
    if (name == "mount_program") {
      o.mount_program = value;
      c.sources[ov + name] = src;
    } else if (name == "mountopt") {
      o.mountopt = value;
      c.sources[ov + name] = src;
    } else if (name == "force_mask") {
      o.force_mask = value;
      c.sources[ov + name] = src;
    } else if (name == "size") {
      o.size = value;
      c.sources[ov + name] = src;
    } else if (name == "skip_mount_home") {
      BERTH_TRYV(set_bool(o.skip_mount_home, ov + name));
    } else if (name == "ignore_chown_errors") {
      BERTH_TRYV(set_bool(o.ignore_chown_errors, ov + name));
    }
  } else if (key == "vfs.ignore_chown_errors") {
    BERTH_TRYV(set_bool(c.options.vfs.ignore_chown_errors, "storage.options.vfs." + key.substr(4)));
  }
  return {};
}

std::string expand_rootless_path(std::string path, const ConfigPaths& paths) {
  auto replace = [&](const std::string& from, const std::string& to) {
    for (size_t pos = path.find(from); pos != std::string::npos;
         pos = path.find(from, pos + to.size())) {
      path.replace(pos, from.size(), to);
    }
  };
  replace("$UID", std::to_string(paths.uid));
  replace("$HOME", paths.home_dir.string());
  replace("$USER", paths.getenv("USER").value_or(std::to_string(paths.uid)));
  return path;
}

Result<void> set_default_roots(StorageConfig& c, const ConfigPaths& paths) {
  if (!paths.rootless()) {
    if (c.graphroot.empty()) {
      c.graphroot = "/var/lib/berth/storage";
      c.sources["storage.graphroot"] = kDefault;
    }
    if (c.runroot.empty()) {
      c.runroot = "/run/berth/storage";
      c.sources["storage.runroot"] = kDefault;
    }
    return {};
  }
  if (c.graphroot.empty()) {
    auto data = paths.getenv("XDG_DATA_HOME");
    std::filesystem::path base;
    if (data && !data->empty()) {
      base = *data;
    } else if (!paths.home_dir.empty()) {
      base = paths.home_dir / ".local" / "share";
    } else {
      return fail(Errc::InvalidArgument,
                  "cannot place the rootless store of uid " + std::to_string(paths.uid) +
                      ": neither $XDG_DATA_HOME nor the home directory is known (set $HOME or "
                      "pass --root)");
    }
    c.graphroot = (base / "berth" / "storage").string();
    c.sources["storage.graphroot"] = kDefault;
  }
  if (c.runroot.empty()) {
    auto run = paths.getenv("XDG_RUNTIME_DIR");
    if (run && !run->empty()) {
      c.runroot = (std::filesystem::path(*run) / "berth" / "storage").string();
    } else {
      c.runroot = "/tmp/berth-run-" + std::to_string(paths.uid) + "/storage";
    }
    c.sources["storage.runroot"] = kDefault;
  }
  return {};
}

}  // namespace

std::string StorageConfig::source_of(const std::string& key) const {
  auto it = sources.find(key);
  return it == sources.end() ? std::string(kDefault) : it->second;
}

std::map<std::string, std::string> StorageConfig::options_for_driver(
    const std::string& driver_name) const {
  std::map<std::string, std::string> out;
  auto b = [](bool v) { return std::string(v ? "true" : "false"); };
  if (driver_name == "overlay" || driver_name == "overlay2") {
    const OverlayOptions& o = options.overlay;
    if (!o.mount_program.empty()) {
      out["mount_program"] = o.mount_program;
    }
    if (!o.mountopt.empty()) {
      out["mountopt"] = o.mountopt;
    }
    if (!o.force_mask.empty()) {
      out["force_mask"] = o.force_mask;
    }
    if (!o.size.empty()) {
      out["size"] = o.size;
    }
    out["skip_mount_home"] = b(o.skip_mount_home);
    out["ignore_chown_errors"] = b(o.ignore_chown_errors);
  } else if (driver_name == "vfs") {
    out["ignore_chown_errors"] = b(options.vfs.ignore_chown_errors);
  }
  std::string prefix = driver_name + ".";
  for (const auto& [k, v] : driver_options) {
    if (k.starts_with(prefix)) {
      out[k.substr(prefix.size())] = v;
    } else if (k.starts_with(".")) {
      out[k.substr(1)] = v;
    } else if (k.find('.') == std::string::npos) {
      out[k] = v;
    } else if (driver_name == "overlay" && k.starts_with("overlay2.")) {
      out[k.substr(9)] = v;
    }
  }
  return out;
}

Result<void> parse_storage_conf(const std::string& content, const std::string& file,
                                StorageConfig& out) {
  ParsedStorage p;
  p.cfg = std::move(out);
  BERTH_TRYV(parse_into(content, file, p));
  out = std::move(p.cfg);
  if (p.graphroot) {
    out.graphroot = *p.graphroot;
  }
  if (p.runroot) {
    out.runroot = *p.runroot;
  }
  if (p.imagestore) {
    out.imagestore = *p.imagestore;
  }
  return {};
}

Result<StorageConfig> load_storage_config(const ConfigPaths& paths,
                                          const GlobalOverrides& overrides) {
  ParsedStorage p;
  bool trusted = false;  // may this file set graphroot/runroot/imagestore?
  bool user_file = false;
  std::string chosen;

  auto env_file = paths.getenv("CONTAINERS_STORAGE_CONF");
  if (env_file && !env_file->empty()) {
    BERTH_TRY(auto content, detail::read_if_exists(*env_file));
    if (content) {
      BERTH_TRYV(parse_into(*content, *env_file, p));
      chosen = *env_file;
      trusted = true;
      user_file = true;  // named by the user: its roots apply to rootless too
    } else {
      spdlog::debug("CONTAINERS_STORAGE_CONF={} does not exist, using defaults", *env_file);
    }
  } else {
    auto dirs = detail::dirs_low_to_high(paths);
    for (auto it = dirs.rbegin(); it != dirs.rend(); ++it) {
      auto file = it->path / "storage.conf";
      BERTH_TRY(auto content, detail::read_if_exists(file));
      if (!content) {
        continue;
      }
      BERTH_TRYV(parse_into(*content, file.string(), p));
      chosen = file.string();
      trusted = it->berth_owned;
      user_file = it->user;
      break;
    }
  }

  StorageConfig& c = p.cfg;
  c.file = chosen;
  auto drop_source = [&](const char* key) { c.sources.erase(key); };
  // Rootless with a system-wide file: containers/storage ignores its roots (they name root's
  // store) and uses rootless_storage_path, if any, for graphroot.
  bool roots_apply = trusted && (!paths.rootless() || user_file);
  if (roots_apply) {
    if (p.graphroot) {
      c.graphroot = *p.graphroot;
    }
    if (p.runroot) {
      c.runroot = *p.runroot;
    }
    if (p.imagestore) {
      c.imagestore = *p.imagestore;
    }
  } else {
    for (const char* key : {"storage.graphroot", "storage.runroot", "storage.imagestore"}) {
      if (c.sources.count(key) != 0) {
        spdlog::debug("{}: {} ignored: {}", chosen, key,
                      trusted ? "a system-wide file does not set a rootless user's store"
                              : "berth keeps its own store and never shares containers/storage's "
                                "(set it in /etc/berth/storage.conf)");
        drop_source(key);
      }
    }
  }
  if (paths.rootless() && trusted && !user_file && p.rootless_storage_path && c.graphroot.empty()) {
    c.graphroot = expand_rootless_path(*p.rootless_storage_path, paths);
    c.sources["storage.graphroot"] = chosen;
  }
  c.sources.erase("storage.rootless_storage_path");
  BERTH_TRYV(set_default_roots(c, paths));
  if (c.driver.empty()) {
    c.sources["storage.driver"] = kDefault;
  }

  // containers/storage's environment overrides, then the flags.
  if (auto d = paths.getenv("STORAGE_DRIVER"); d && !d->empty()) {
    c.driver = *d;
    c.sources["storage.driver"] = "env STORAGE_DRIVER";
  }
  if (auto opts = paths.getenv("STORAGE_OPTS"); opts && !opts->empty()) {
    size_t start = 0;
    while (start <= opts->size()) {
      size_t comma = opts->find(',', start);
      std::string one =
          opts->substr(start, comma == std::string::npos ? std::string::npos : comma - start);
      if (!one.empty()) {
        BERTH_TRYV(apply_storage_opt(c, one, "env STORAGE_OPTS"));
      }
      if (comma == std::string::npos) {
        break;
      }
      start = comma + 1;
    }
  }
  if (overrides.root) {
    c.graphroot = *overrides.root;
    c.sources["storage.graphroot"] = kFlag;
  }
  if (overrides.runroot) {
    c.runroot = *overrides.runroot;
    c.sources["storage.runroot"] = kFlag;
  }
  if (overrides.imagestore) {
    c.imagestore = *overrides.imagestore;
    c.sources["storage.imagestore"] = kFlag;
  }
  if (overrides.storage_driver) {
    c.driver = *overrides.storage_driver;
    c.sources["storage.driver"] = kFlag;
  }
  for (const auto& opt : overrides.storage_opts) {
    if (opt.empty()) {
      // Podman's --storage-opt="" drops the options of the config files.
      c.options.overlay = OverlayOptions{};
      c.options.vfs = VfsOptions{};
      c.driver_options.clear();
      std::erase_if(c.sources, [](const auto& kv) {
        return kv.first.starts_with("storage.options.overlay.") ||
               kv.first.starts_with("storage.options.vfs.");
      });
      continue;
    }
    BERTH_TRYV(apply_storage_opt(c, opt, kFlag));
  }
  if (c.graphroot.empty() || c.graphroot.front() != '/') {
    return fail(Errc::InvalidArgument, "graphroot \"" + c.graphroot + "\" (from " +
                                           c.source_of("storage.graphroot") +
                                           ") must be an absolute path");
  }
  if (c.runroot.empty() || c.runroot.front() != '/') {
    return fail(Errc::InvalidArgument, "runroot \"" + c.runroot + "\" (from " +
                                           c.source_of("storage.runroot") +
                                           ") must be an absolute path");
  }
  return std::move(c);
}

}  // namespace berth::config
