// A container's storage flags: -v, --mount, --tmpfs, --volumes-from, --read-only-tmpfs, and
// the anonymous volumes of the image's VOLUME list.
#include <fcntl.h>
#include <ftw.h>
#include <linux/openat2.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <functional>
#include <set>

#include "berth/container/mount_options.hpp"
#include "berth/engine/engine.hpp"
#include "berth/events/events.hpp"
#include "berth/image/image_service.hpp"
#include "berth/sdk/unique_fd.hpp"
#include "berth/util/fs.hpp"
#include "berth/util/log.hpp"
#include "berth/volume/volume.hpp"
#include "features.hpp"
#include "internal.hpp"

namespace berth::container {

using nlohmann::json;

void to_json(json& j, const MountPoint& m) {
  j = json{{"type", m.type},       {"name", m.name},
           {"source", m.source},   {"destination", m.destination},
           {"driver", m.driver},   {"mode", m.mode},
           {"rw", m.rw},           {"propagation", m.propagation},
           {"options", m.options}, {"anonymous", m.anonymous},
           {"copy_up", m.copy_up}, {"chown", m.chown}};
  if (!m.subpath.empty()) {
    j["subpath"] = m.subpath;
  }
}

void from_json(const json& j, MountPoint& m) {
  m.type = j.value("type", "");
  m.name = j.value("name", "");
  m.source = j.value("source", "");
  m.destination = j.value("destination", "");
  m.driver = j.value("driver", "");
  m.mode = j.value("mode", "");
  m.rw = j.value("rw", true);
  m.propagation = j.value("propagation", "");
  m.options = j.value("options", std::vector<std::string>{});
  m.anonymous = j.value("anonymous", false);
  m.copy_up = j.value("copy_up", true);
  m.chown = j.value("chown", false);
  m.subpath = j.value("subpath", "");
}

void to_json(json& j, const MountOptions& o) {
  j = json{{"volumes", o.volumes},
           {"mounts", o.mounts},
           {"tmpfs", o.tmpfs},
           {"volumes_from", o.volumes_from},
           {"read_only_tmpfs", o.read_only_tmpfs},
           {"recursive_read_only_binds", o.recursive_read_only_binds},
           {"named_volumes", o.named_volumes},
           {"anonymous_volumes", o.anonymous_volumes},
           {"image_mounts", o.image_mounts},
           {"mount_points", o.mount_points}};
}

void from_json(const json& j, MountOptions& o) {
  MountOptions d;
  o.volumes = j.value("volumes", d.volumes);
  o.mounts = j.value("mounts", d.mounts);
  o.tmpfs = j.value("tmpfs", d.tmpfs);
  o.volumes_from = j.value("volumes_from", d.volumes_from);
  o.read_only_tmpfs = j.value("read_only_tmpfs", true);
  o.recursive_read_only_binds = j.value("recursive_read_only_binds", false);
  o.named_volumes = j.value("named_volumes", d.named_volumes);
  o.anonymous_volumes = j.value("anonymous_volumes", d.anonymous_volumes);
  o.image_mounts = j.value("image_mounts", d.image_mounts);
  o.mount_points = j.value("mount_points", d.mount_points);
}

namespace {

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  size_t start = 0;
  for (;;) {
    auto p = s.find(sep, start);
    out.push_back(s.substr(start, p == std::string::npos ? std::string::npos : p - start));
    if (p == std::string::npos) {
      return out;
    }
    start = p + 1;
  }
}

bool is_propagation(const std::string& o) {
  static const std::set<std::string> k = {"shared",  "rshared",  "slave",      "rslave",
                                          "private", "rprivate", "unbindable", "runbindable"};
  return k.count(o) != 0;
}

bool is_flag(const std::string& o) {
  static const std::set<std::string> k = {"nosuid", "suid", "nodev", "dev", "noexec", "exec"};
  return k.count(o) != 0;
}

std::string clean_dest(std::string d) {
  while (d.size() > 1 && d.back() == '/') {
    d.pop_back();
  }
  return d;
}

Result<void> check_dest(const std::string& what, const std::string& d) {
  if (d.empty() || d.front() != '/') {
    return fail(Errc::InvalidArgument,
                what + ": invalid container path \"" + d + "\", must be an absolute path");
  }
  return {};
}

// The options part of -v (and of --tmpfs for tmpfs): ro,rw,z,Z,U,propagation,flags,[r]bind,
// copy,nocopy.
Result<void> apply_volume_options(const std::string& what, const std::string& opts,
                                  MountRequest& r) {
  bool seen_rw = false;
  bool seen_prop = false;
  for (const auto& o : split(opts, ',')) {
    if (o.empty()) {
      continue;
    }
    if (o == "ro" || o == "rw") {
      if (seen_rw) {
        return fail(Errc::InvalidArgument, what + ": cannot set ro or rw options more than once");
      }
      seen_rw = true;
      r.read_only = o == "ro";
    } else if (o == "z" || o == "Z") {
      r.relabel = o;
    } else if (o == "U") {
      r.chown = true;
    } else if (is_propagation(o)) {
      if (seen_prop) {
        return fail(Errc::InvalidArgument, what + ": cannot set more than one propagation option");
      }
      seen_prop = true;
      r.propagation = o;
    } else if (is_flag(o)) {
      r.flags.push_back(o);
    } else if (o == "bind" || o == "rbind") {
      r.recursive = o == "rbind";
    } else if (o == "copy" || o == "nocopy") {
      r.copy = o == "copy";
    } else if (r.type == "tmpfs" && (o == "tmpcopyup" || o == "notmpcopyup")) {
      if (r.tmpcopyup) {
        return fail(Errc::InvalidArgument,
                    what + ": the 'tmpcopyup' or 'notmpcopyup' option can only be set once");
      }
      r.tmpcopyup = o == "tmpcopyup";
    } else if (r.type == "tmpfs" && (o.rfind("size=", 0) == 0 || o.rfind("mode=", 0) == 0 ||
                                     o.rfind("nr_inodes=", 0) == 0 || o.rfind("uid=", 0) == 0 ||
                                     o.rfind("gid=", 0) == 0 || o == "noatime" ||
                                     o == "strictatime" || o == "relatime")) {
      r.tmpfs_options.push_back(o);
    } else if (o == "O" || o.rfind("idmap", 0) == 0) {
      return fail(Errc::NotSupported, what + ": option \"" + o + "\" is not supported by berth");
    } else {
      return fail(Errc::InvalidArgument, what + ": invalid option \"" + o + "\"");
    }
  }
  return {};
}

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

}  // namespace

Result<MountRequest> parse_volume_flag(const std::string& spec) {
  const std::string what = "-v " + spec;
  if (spec.empty()) {
    return fail(Errc::InvalidArgument, "volume specification cannot be empty");
  }
  auto parts = split(spec, ':');
  if (parts.size() > 3) {
    return fail(Errc::InvalidArgument,
                what + ": incorrect volume format, should be [host-dir:]ctr-dir[:option]");
  }
  MountRequest r;
  if (parts.size() == 1) {
    r.type = "volume";
    r.destination = parts[0];
  } else {
    r.source = parts[0];
    r.destination = parts[1];
    if (r.source.empty()) {
      return fail(Errc::InvalidArgument, what + ": host directory cannot be empty");
    }
    r.type = r.source.front() == '/' || r.source.front() == '.' ? "bind" : "volume";
    if (r.type == "volume") {
      if (auto v = volume::validate_name(r.source); !v) {
        return fail(Errc::InvalidArgument, what + ": " + v.error().message());
      }
    }
  }
  if (parts.size() == 3) {
    BERTH_TRYV(apply_volume_options(what, parts[2], r));
  }
  BERTH_TRYV(check_dest(what, r.destination));
  r.destination = clean_dest(r.destination);
  return r;
}

Result<MountRequest> parse_tmpfs_flag(const std::string& spec) {
  const std::string what = "--tmpfs " + spec;
  MountRequest r;
  r.type = "tmpfs";
  auto colon = spec.find(':');
  r.destination = spec.substr(0, colon);
  BERTH_TRYV(check_dest(what, r.destination));
  r.destination = clean_dest(r.destination);
  if (colon != std::string::npos) {
    BERTH_TRYV(apply_volume_options(what, spec.substr(colon + 1), r));
  }
  return r;
}

Result<MountRequest> parse_mount_flag(const std::string& spec) {
  const std::string what = "--mount " + spec;
  MountRequest r;
  bool have_type = false;
  bool rw_given = false;
  for (const auto& kv : split(spec, ',')) {
    if (kv.empty()) {
      continue;
    }
    auto eq = kv.find('=');
    std::string key = lower(kv.substr(0, eq));
    std::string val = eq == std::string::npos ? "" : kv.substr(eq + 1);
    bool has_val = eq != std::string::npos;
    auto boolean = [&](bool& out) -> Result<void> {
      if (!has_val || val == "true" || val == "1") {
        out = true;
      } else if (val == "false" || val == "0") {
        out = false;
      } else {
        return fail(Errc::InvalidArgument, what + ": invalid value for " + key + ": " + val);
      }
      return {};
    };
    if (key == "type") {
      if (val != "bind" && val != "volume" && val != "tmpfs" && val != "image") {
        return fail(Errc::InvalidArgument, what + ": invalid mount type \"" + val +
                                               "\" (berth supports bind, volume, tmpfs and image)");
      }
      r.type = val;
      have_type = true;
    } else if (key == "src" || key == "source") {
      r.source = val;
    } else if (key == "dst" || key == "destination" || key == "target") {
      r.destination = val;
    } else if (key == "ro" || key == "readonly") {
      BERTH_TRYV(boolean(r.read_only));
      rw_given = true;
    } else if (key == "rw") {
      bool rw = true;
      BERTH_TRYV(boolean(rw));
      r.read_only = !rw;
      rw_given = true;
    } else if (key == "bind-propagation") {
      if (!is_propagation(val)) {
        return fail(Errc::InvalidArgument, what + ": invalid bind-propagation \"" + val + "\"");
      }
      r.propagation = val;
    } else if (key == "bind-nonrecursive") {
      bool nr = false;
      BERTH_TRYV(boolean(nr));
      r.recursive = !nr;
    } else if (key == "bind-recursive") {
      // Docker's: enabled (the default), disabled (bind-nonrecursive), writable (read-only
      // without the submounts), readonly (read-only with the submounts, or an error).
      if (val == "disabled") {
        r.recursive = false;
      } else if (val == "enabled" || val == "writable" || val == "readonly") {
        r.recursive = true;
        r.read_only_recursion = val;
      } else {
        return fail(Errc::InvalidArgument,
                    what + ": invalid value for bind-recursive: " + val +
                        " (must be \"enabled\", \"disabled\", \"writable\", or \"readonly\")");
      }
    } else if (key == "relabel") {
      if (val != "shared" && val != "private") {
        return fail(Errc::InvalidArgument, what + ": relabel must be shared or private");
      }
      r.relabel = val == "shared" ? "z" : "Z";
    } else if (key == "z" || key == "Z") {
      r.relabel = key;
    } else if (key == "u" || key == "chown") {
      BERTH_TRYV(boolean(r.chown));
    } else if (key == "tmpfs-size") {
      r.tmpfs_options.push_back("size=" + val);
    } else if (key == "tmpfs-mode") {
      r.tmpfs_options.push_back("mode=" + val);
    } else if (key == "tmpcopyup" || key == "notmpcopyup") {
      if (r.tmpcopyup) {
        return fail(Errc::InvalidArgument,
                    what + ": the 'tmpcopyup' or 'notmpcopyup' option can only be set once");
      }
      bool on = true;
      BERTH_TRYV(boolean(on));
      r.tmpcopyup = key == "tmpcopyup" ? on : !on;
    } else if (key == "volume-opt") {
      r.volume_options.push_back(val);
    } else if (key == "volume-nocopy" || key == "nocopy") {
      bool nocopy = true;
      BERTH_TRYV(boolean(nocopy));
      r.copy = !nocopy;
    } else if (key == "subpath" || key == "volume-subpath") {
      r.subpath = val;
    } else if (key == "consistency" || key == "volume-label") {
      // Docker compatibility: ignored.
    } else if (is_flag(key)) {
      r.flags.push_back(key);
    } else {
      return fail(Errc::InvalidArgument, what + ": unknown mount option \"" + key + "\"");
    }
  }
  if (!have_type) {
    return fail(Errc::InvalidArgument,
                what + ": type must be given (type=bind|volume|tmpfs|image)");
  }
  if (!r.subpath.empty()) {
    if (r.type != "volume") {
      return fail(Errc::InvalidArgument, what + ": subpath is only allowed with type=volume");
    }
    const auto clean = std::filesystem::path(r.subpath).lexically_normal().string();
    if (r.subpath.front() == '/' || clean == ".." || clean.rfind("../", 0) == 0) {
      return fail(Errc::InvalidArgument,
                  what + ": subpath must be a relative path within the volume; got " + r.subpath);
    }
  }
  if (!r.read_only_recursion.empty() && r.type != "bind") {
    return fail(Errc::InvalidArgument, what + ": bind-recursive is only allowed with type=bind");
  }
  if (r.read_only_recursion == "readonly" && !r.read_only) {
    return fail(Errc::InvalidArgument,
                what + ": bind-recursive=readonly needs a read-only mount (add readonly)");
  }
  if (r.tmpcopyup && r.type != "tmpfs") {
    return fail(Errc::InvalidArgument,
                what + ": the 'tmpcopyup' and 'notmpcopyup' options are only allowed with tmpfs");
  }
  if (r.type == "tmpfs" && !r.source.empty()) {
    return fail(Errc::InvalidArgument, what + ": a tmpfs mount takes no source");
  }
  if ((r.type == "bind" || r.type == "image") && r.source.empty()) {
    return fail(Errc::InvalidArgument, what + ": a " + r.type + " mount needs src=");
  }
  if (r.type == "volume" && !r.source.empty()) {
    if (auto v = volume::validate_name(r.source); !v) {
      return fail(Errc::InvalidArgument, what + ": " + v.error().message());
    }
  }
  if (r.type == "image" && !rw_given) {
    r.read_only = true;  // Podman mounts an image read-only unless rw=true is given
  }
  if (r.destination.empty()) {
    return fail(Errc::InvalidArgument, what + ": the mount needs a target (dst=)");
  }
  BERTH_TRYV(check_dest(what, r.destination));
  r.destination = clean_dest(r.destination);
  return r;
}

namespace detail {
namespace {

volume::RemoveOptions force_remove() {
  volume::RemoveOptions o;
  o.force = true;
  return o;
}

// What mounts_prepare made, undone when a later step fails.
struct PrepareUndo {
  volume::VolumeStore* vs = nullptr;
  store::Store* images = nullptr;
  std::vector<std::string> created;
  std::vector<std::string> images_mounted;
  bool done = false;
  ~PrepareUndo() {
    if (done) {
      return;
    }
    for (const auto& v : created) {
      (void)vs->remove(v, force_remove());
    }
    for (const auto& i : images_mounted) {
      (void)image::unmount_image(*images, i);
    }
  }
};

Result<void> chown_tree(const std::string& path, uid_t uid, gid_t gid) {
  static thread_local uid_t t_uid;
  static thread_local gid_t t_gid;
  static thread_local int t_errno;
  static thread_local std::string* t_failed;
  std::string failed;
  t_uid = uid;
  t_gid = gid;
  t_errno = 0;
  t_failed = &failed;
  auto cb = [](const char* p, const struct stat*, int, struct FTW*) -> int {
    if (::lchown(p, t_uid, t_gid) != 0) {
      t_errno = errno;
      *t_failed = p;
      return 1;
    }
    return 0;
  };
  int rc = ::nftw(path.c_str(), cb, 32, FTW_PHYS | FTW_MOUNT);
  if (rc != 0) {
    if (t_errno != 0) {
      return fail(Error::from_errno("chown (U option)", failed, t_errno));
    }
    return fail_errno("walk (U option)", path);
  }
  return {};
}

// mount_setattr(2) (Linux 5.12): a probe with a bad descriptor fails with EBADF where the call
// exists, ENOSYS where it does not.
bool kernel_has_mount_setattr() {
  static const bool has = [] {
    return ::syscall(SYS_mount_setattr, -1, "", 0, nullptr, 0) == 0 || errno != ENOSYS;
  }();
  return has;
}

// Where a volume's subpath is bind-mounted for the runtime (the spec's source): a directory of
// the container's run dir, root's alone. mounts_before_init binds the subpath there from the
// descriptor its check opened, so the runtime mounts what was checked — not a path that a
// container sharing the volume could turn into a symlink out of it between check and mount.
std::string subpath_stage(const std::string& runroot, const std::string& id, size_t index) {
  return run_dir(runroot, id) + "/subpaths/" + std::to_string(index);
}

struct Preparer {
  engine::Engine& eng;
  const ContainerRecord& rec;
  CreateOptions& opts;
  spec::SpecOptions& so;
  std::vector<std::string>& warnings;
  volume::VolumeStore* vs = nullptr;
  store::Store* images = nullptr;
  PrepareUndo* undo = nullptr;
  json image_config = json::object();
  std::optional<spec::ResolvedUser> user;
  std::set<std::string> dests;

  Result<spec::ResolvedUser> container_user() {
    if (!user) {
      std::string u = opts.user.empty() ? image_config.value("User", "") : opts.user;
      BERTH_TRY(user, spec::resolve_user(so.rootfs, u));
    }
    return *user;
  }

  Result<std::vector<std::string>> bind_options(const MountRequest& r, MountPoint& mp,
                                                const std::string& what) {
    std::vector<std::string> o = {r.recursive ? "rbind" : "bind"};
    mp.propagation = r.propagation.empty() ? "rprivate" : r.propagation;
    BERTH_TRY(bool rro, recursively_read_only(r, mp.propagation, what));
    o.push_back(rro ? "rro" : r.read_only ? "ro" : "rw");
    o.insert(o.end(), r.flags.begin(), r.flags.end());
    o.push_back(mp.propagation);
    return o;
  }

  // Whether a read-only bind is made read-only with its submounts ("rro", which runc, crun and
  // the native runtime apply with mount_setattr(2)). Only a private mount can be: a submount
  // propagated in later would be writable.
  Result<bool> recursively_read_only(const MountRequest& r, const std::string& propagation,
                                     const std::string& what) {
    if (r.type != "bind" || !r.read_only || !r.recursive) {
      return false;  // a volume or an image has no submounts of the host's
    }
    const std::string mode = !r.read_only_recursion.empty()           ? r.read_only_recursion
                             : opts.storage.recursive_read_only_binds ? "enabled"
                                                                      : "writable";
    if (mode == "writable") {
      return false;
    }
    const bool private_mount = propagation == "rprivate" || propagation == "private";
    const bool kernel = kernel_has_mount_setattr();
    if (mode == "readonly") {
      if (!private_mount) {
        return fail(Errc::InvalidArgument,
                    what +
                        ": a recursively read-only bind (ReadOnlyForceRecursive, "
                        "bind-recursive=readonly) needs rprivate propagation; it has " +
                        propagation);
      }
      if (!kernel) {
        return fail(Error(Errc::NotSupported,
                          what + ": this kernel cannot make a bind mount recursively read-only "
                                 "(mount_setattr(2) needs Linux 5.12 or later)")
                        .hint("mount it read-only without its submounts (ReadOnlyNonRecursive, "
                              "bind-recursive=writable)"));
      }
    }
    return private_mount && kernel;
  }

  Result<void> add(const MountRequest& r, const std::string& what) {
    if (!dests.insert(r.destination).second) {
      return fail(Errc::InvalidArgument,
                  what + ": " + r.destination + ": duplicate mount destination");
    }
    MountPoint mp;
    mp.type = r.type;
    mp.destination = r.destination;
    mp.mode = r.relabel;
    mp.rw = !r.read_only;
    spec::BindMount bm;
    bm.destination = r.destination;
    if (r.type == "tmpfs") {
      bm.type = "tmpfs";
      bm.source = "tmpfs";
      std::vector<std::string> o = {r.read_only ? "ro" : "rw"};
      std::vector<std::string> flags = r.flags;
      for (const char* def : {"noexec", "nosuid", "nodev"}) {
        std::string opposite = std::string(def).substr(2);
        if (std::find(flags.begin(), flags.end(), opposite) == flags.end() &&
            std::find(flags.begin(), flags.end(), def) == flags.end()) {
          flags.push_back(def);
        }
      }
      o.insert(o.end(), flags.begin(), flags.end());
      o.insert(o.end(), r.tmpfs_options.begin(), r.tmpfs_options.end());
      // Podman's default: the image's content at the destination is copied into the tmpfs (by
      // the runtime, which mounts it).
      if (r.tmpcopyup.value_or(true)) {
        o.push_back("tmpcopyup");
      }
      bm.options = o;
      mp.source = "tmpfs";
      mp.options = o;
    } else if (r.type == "bind") {
      std::error_code ec;
      std::string src = std::filesystem::absolute(r.source, ec).lexically_normal().string();
      if (src.size() > 1 && src.back() == '/') {
        src.pop_back();
      }
      struct stat st {};
      if (::stat(src.c_str(), &st) != 0) {
        return fail(Error::from_errno(what + ": statfs", src, errno)
                        .hint("create the host directory first, or use a named volume"));
      }
      if (r.chown) {
        BERTH_TRY(auto u, container_user());
        const auto [uid, gid] = host_ids(opts.resources, u.uid, u.gid);  // --userns: mapped
        BERTH_TRYV(chown_tree(src, uid, gid));
      }
      bm.source = src;
      BERTH_TRY(bm.options, bind_options(r, mp, what));
      mp.source = src;
      mp.options = bm.options;
    } else if (r.type == "volume") {
      std::string name = r.source;
      if (name.empty()) {
        volume::CreateOptions co;
        co.anonymous = true;
        for (const auto& kv : r.volume_options) {
          auto eq = kv.find('=');
          co.options[kv.substr(0, eq)] = eq == std::string::npos ? "" : kv.substr(eq + 1);
        }
        BERTH_TRY(auto v, vs->create(co));
        name = v.name;
        undo->created.push_back(name);
        opts.storage.anonymous_volumes.push_back(name);
        mp.anonymous = true;
      } else {
        BERTH_TRY(bool exists, vs->exists(name));
        if (!exists) {
          volume::CreateOptions co;
          co.name = name;
          for (const auto& kv : r.volume_options) {
            auto eq = kv.find('=');
            co.options[kv.substr(0, eq)] = eq == std::string::npos ? "" : kv.substr(eq + 1);
          }
          co.ignore_existing = true;  // another process may create it at the same time
          BERTH_TRYV(vs->create(co));
        }
      }
      // Mounted (an option volume), chowned and filled from the image when the container
      // starts: mounts_before_init.
      BERTH_TRY(auto vol, vs->get(name));
      std::string host = vol.mountpoint;
      opts.storage.named_volumes.push_back(name);
      mp.copy_up = r.copy.value_or(true);
      mp.chown = r.chown;
      if (!r.subpath.empty()) {
        // A part of the volume: the image's content is not copied into it (it would land in
        // the volume's root), and it is checked to stay inside at each start.
        mp.subpath = std::filesystem::path(r.subpath).lexically_normal().string();
        while (mp.subpath.size() > 1 && mp.subpath.back() == '/') {
          mp.subpath.pop_back();
        }
        mp.copy_up = false;
        host += "/" + mp.subpath;
      }
      bm.source = mp.subpath.empty()
                      ? host
                      : subpath_stage(eng.runroot(), rec.id, opts.storage.mount_points.size());
      BERTH_TRY(bm.options, bind_options(r, mp, what));
      mp.name = name;
      mp.source = host;
      mp.driver = "local";
      mp.options = bm.options;
    } else if (r.type == "image") {
      auto img = image::lookup_image(*images, r.source);
      if (!img) {
        return fail(std::move(img).error().wrap(what));
      }
      BERTH_TRY(std::string path, image::mount_image(*images, img->id));
      undo->images_mounted.push_back(img->id);
      opts.storage.image_mounts.push_back(img->id);
      bm.source = path;
      BERTH_TRY(bm.options, bind_options(r, mp, what));
      mp.name = img->id;
      mp.source = path;
      mp.options = bm.options;
    }
    so.mounts.push_back(bm);
    opts.storage.mount_points.push_back(mp);
    return {};
  }

  Result<void> volumes_from(const std::string& spec) {
    auto colon = spec.find(':');
    std::string name = spec.substr(0, colon);
    std::string mode = colon == std::string::npos ? "" : spec.substr(colon + 1);
    if (!mode.empty() && mode != "ro" && mode != "rw" && mode != "z") {
      return fail(Errc::InvalidArgument,
                  "--volumes-from " + spec + ": invalid option \"" + mode + "\" (ro or rw)");
    }
    BERTH_TRY(auto db, open_db(eng, true));
    auto other = db->lookup(name);
    if (!other) {
      return fail(std::move(other).error().wrap("--volumes-from " + spec));
    }
    for (auto mp : other->options.storage.mount_points) {
      if (mp.type != "bind" && mp.type != "volume") {
        continue;
      }
      if (dests.count(mp.destination) != 0) {
        continue;  // the user's own mount wins
      }
      dests.insert(mp.destination);
      if (mode == "ro" || mode == "rw") {
        mp.rw = mode == "rw";
        std::replace_if(
            mp.options.begin(), mp.options.end(),
            [](const std::string& o) { return o == "ro" || o == "rw"; }, mode);
      }
      std::string source = mp.source;
      if (mp.type == "volume") {
        BERTH_TRY(auto vol, vs->get(mp.name));
        mp.source = vol.mountpoint + (mp.subpath.empty() ? "" : "/" + mp.subpath);
        source = mp.subpath.empty()
                     ? mp.source
                     : subpath_stage(eng.runroot(), rec.id, opts.storage.mount_points.size());
        opts.storage.named_volumes.push_back(mp.name);
      }
      mp.anonymous = false;  // it belongs to the other container
      so.mounts.push_back(spec::BindMount{source, mp.destination, mp.options});
      opts.storage.mount_points.push_back(mp);
    }
    return {};
  }
};

bool wants_anything(const CreateOptions& opts, const json& image_config) {
  const auto& m = opts.storage;
  return !m.volumes.empty() || !m.mounts.empty() || !m.tmpfs.empty() || !m.volumes_from.empty() ||
         (opts.read_only && m.read_only_tmpfs) ||
         (image_config.contains("Volumes") && image_config["Volumes"].is_object() &&
          !image_config["Volumes"].empty());
}

}  // namespace

Result<void> mounts_prepare(engine::Engine& eng, const ContainerRecord& rec, CreateOptions& opts,
                            spec::SpecOptions& so, std::vector<std::string>& warnings) {
  opts.storage.named_volumes.clear();
  opts.storage.anonymous_volumes.clear();
  opts.storage.image_mounts.clear();
  opts.storage.mount_points.clear();
  BERTH_TRY(auto images, open_layers(eng));
  json image_config = json::object();
  {
    BERTH_TRY(auto img, images->image(rec.image_id));
    if (img) {
      try {
        image_config = json::parse(img->config).value("config", json::object());
        if (!image_config.is_object()) {
          image_config = json::object();
        }
      } catch (const json::exception& e) {
        return fail(Errc::Corrupt, "image " + rec.image_id + ": config: " + e.what());
      }
    }
  }
  if (!wants_anything(opts, image_config)) {
    return {};
  }
  auto log = events::EventLog::from_config(eng.config());
  BERTH_TRY(auto vs, volume::VolumeStore::open(eng.config(), &log));
  PrepareUndo undo;
  undo.vs = vs.get();
  undo.images = images.get();
  Preparer p{eng, rec, opts, so, warnings, vs.get(), images.get(), &undo, image_config, {}, {}};

  for (const auto& v : opts.storage.volumes) {
    BERTH_TRY(auto r, parse_volume_flag(v));
    BERTH_TRYV(p.add(r, "-v " + v));
  }
  for (const auto& m : opts.storage.mounts) {
    BERTH_TRY(auto r, parse_mount_flag(m));
    BERTH_TRYV(p.add(r, "--mount " + m));
  }
  for (const auto& t : opts.storage.tmpfs) {
    BERTH_TRY(auto r, parse_tmpfs_flag(t));
    BERTH_TRYV(p.add(r, "--tmpfs " + t));
  }
  for (const auto& f : opts.storage.volumes_from) {
    BERTH_TRYV(p.volumes_from(f));
  }
  // The image's VOLUME list: an anonymous volume each, unless the user mounted something there.
  if (image_config.contains("Volumes") && image_config["Volumes"].is_object()) {
    for (const auto& [dest, _] : image_config["Volumes"].items()) {
      if (dest.empty() || dest.front() != '/' || p.dests.count(clean_dest(dest)) != 0) {
        continue;
      }
      MountRequest r;
      r.type = "volume";
      r.destination = clean_dest(dest);
      BERTH_TRYV(p.add(r, "image volume " + dest));
    }
  }
  // Podman's --read-only-tmpfs (default true): writable tmpfs where programs expect to write.
  if (opts.read_only && opts.storage.read_only_tmpfs) {
    for (const char* dest : {"/tmp", "/var/tmp", "/run"}) {
      if (p.dests.count(dest) != 0) {
        continue;
      }
      MountRequest r;
      r.type = "tmpfs";
      r.destination = dest;
      r.flags = {"nosuid", "nodev", "exec"};
      r.tmpfs_options = {"mode=1777"};
      BERTH_TRYV(p.add(r, "--read-only-tmpfs"));
    }
  }
  undo.done = true;
  return {};
}

namespace {

// <run dir>/volumes-held: the named volumes this container acquired at its start, one a line,
// released at its exit. In the run root, so a reboot drops it with the volumes' mount counts.
std::string held_file(engine::Engine& eng, const ContainerRecord& rec) {
  return run_dir(eng.runroot(), rec.id) + "/volumes-held";
}

void release_held(engine::Engine& eng, const ContainerRecord& rec, volume::VolumeStore& vs) {
  const std::string path = held_file(eng, rec);
  auto text = util::read_file(path);
  if (!text) {
    return;  // nothing held
  }
  for (const auto& name : split(*text, '\n')) {
    if (name.empty()) {
      continue;
    }
    auto r = vs.release(name);
    if (!r && r.error().code() != Errc::NotFound) {
      spdlog::warn("container {}: release volume {}: {}", rec.name, name, r.error().message());
    }
  }
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
    spdlog::warn("container {}: remove {}: {}", rec.name, path, std::strerror(errno));
  }
}

// The uid and gid the container's process runs as, from its spec (resolved at create).
Result<std::pair<uint32_t, uint32_t>> spec_user(const ContainerRecord& rec) {
  const std::string path = rec.bundle + "/config.json";
  BERTH_TRY(auto text, util::read_file(path));
  try {
    auto j = json::parse(text);
    const auto& u = j.at("process").at("user");
    // With --userns, the host ids the container's user is.
    return host_ids(rec.options.resources, u.value("uid", 0u), u.value("gid", 0u));
  } catch (const json::exception& e) {
    return fail(Errc::Corrupt, "container " + rec.name + ": " + path + ": " + e.what());
  }
}

// Releases what a failed mounts_before_init acquired.
struct AcquireUndo {
  volume::VolumeStore& vs;
  std::vector<std::string> acquired;
  bool done = false;
  ~AcquireUndo() {
    if (!done) {
      for (auto it = acquired.rbegin(); it != acquired.rend(); ++it) {
        (void)vs.release(*it);
      }
    }
  }
};

// A volume's subpath, now that the volume is mounted: it must be there and resolve inside the
// volume (a symlink of the volume's content may not lead out of it: RESOLVE_BENEATH).
Result<UniqueFd> check_subpath(const std::string& volume_root, const MountPoint& mp,
                               const std::string& container) {
  const std::string what =
      "container " + container + ": subpath " + mp.subpath + " of volume " + mp.name;
  UniqueFd root(::open(volume_root.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!root) {
    return fail(Error::from_errno(what + ": open the volume", volume_root, errno));
  }
  open_how how{};
  how.flags = O_PATH | O_CLOEXEC;
  how.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS;
  UniqueFd sub(
      static_cast<int>(::syscall(SYS_openat2, root.get(), mp.subpath.c_str(), &how, sizeof(how))));
  if (!sub) {
    if (errno == EXDEV) {
      return fail(Errc::PermissionDenied,
                  what +
                      ": the path leads out of the volume (through a symlink or ..); mount "
                      "the volume's root or another subpath");
    }
    return fail(Error::from_errno(what + ": open", volume_root + "/" + mp.subpath, errno)
                    .hint("create the directory in the volume first"));
  }
  return sub;
}

// Unmounts and removes the container's subpath stages (none: nothing to do).
void unstage_subpaths(engine::Engine& eng, const ContainerRecord& rec) {
  const std::string dir = run_dir(eng.runroot(), rec.id) + "/subpaths";
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec)) {
    return;
  }
  for (const auto& e : std::filesystem::directory_iterator(dir, ec)) {
    const std::string p = e.path().string();
    if (::umount2(p.c_str(), MNT_DETACH) != 0 && errno != EINVAL && errno != ENOENT) {
      spdlog::warn("container {}: unmount {}: {}", rec.name, p, std::strerror(errno));
    }
  }
  std::filesystem::remove_all(dir, ec);
  if (ec) {
    spdlog::warn("container {}: remove {}: {}", rec.name, dir, ec.message());
  }
}

// Checks each volume subpath of the container and binds it, from the checked descriptor, on
// its stage (subpath_stage), replacing what an earlier start left.
Result<void> stage_subpaths(engine::Engine& eng, const ContainerRecord& rec,
                            volume::VolumeStore& vs) {
  const auto& points = rec.options.storage.mount_points;
  unstage_subpaths(eng, rec);
  for (size_t i = 0; i < points.size(); ++i) {
    const auto& mp = points[i];
    if (mp.type != "volume" || mp.subpath.empty()) {
      continue;
    }
    BERTH_TRY(auto v, vs.get(mp.name));
    BERTH_TRY(UniqueFd sub, check_subpath(v.mountpoint, mp, rec.name));
    const std::string stage = subpath_stage(eng.runroot(), rec.id, i);
    const std::string what =
        "container " + rec.name + ": stage subpath " + mp.subpath + " of volume " + mp.name;
    struct stat st {};
    if (::fstat(sub.get(), &st) != 0) {
      return fail(Error::from_errno(what + ": stat", v.mountpoint + "/" + mp.subpath, errno));
    }
    std::error_code ec;
    std::filesystem::create_directories(std::filesystem::path(stage).parent_path(), ec);
    if (ec) {
      return fail(Errc::Internal, what + ": create " + stage + ": " + ec.message());
    }
    if (S_ISDIR(st.st_mode)) {
      if (::mkdir(stage.c_str(), 0700) != 0) {
        return fail(Error::from_errno(what + ": mkdir", stage, errno));
      }
    } else {
      UniqueFd f(::open(stage.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
      if (!f) {
        return fail(Error::from_errno(what + ": create", stage, errno));
      }
    }
    // The descriptor's magic link is the checked directory itself, whatever its path is now.
    const std::string from = "/proc/self/fd/" + std::to_string(sub.get());
    if (::mount(from.c_str(), stage.c_str(), nullptr, MS_BIND | MS_REC, nullptr) != 0) {
      return fail(Error::from_errno(what + ": bind-mount on", stage, errno));
    }
    if (::mount(nullptr, stage.c_str(), nullptr, MS_PRIVATE | MS_REC, nullptr) != 0) {
      return fail(Error::from_errno(what + ": make private", stage, errno));
    }
  }
  return {};
}

}  // namespace

Result<void> mounts_before_init(engine::Engine& eng, const ContainerRecord& rec) {
  const auto& m = rec.options.storage;
  if (m.named_volumes.empty()) {
    return {};
  }
  const std::string held = held_file(eng, rec);
  auto log = events::EventLog::from_config(eng.config());
  BERTH_TRY(auto vs, volume::VolumeStore::open(eng.config(), &log));
  if (::access(held.c_str(), F_OK) == 0) {
    // Still held: an earlier start's exit was not cleaned up yet. The subpaths are checked
    // and staged anew all the same.
    return stage_subpaths(eng, rec, *vs);
  }
  AcquireUndo undo{*vs, {}};
  for (const auto& name : m.named_volumes) {
    auto r = vs->acquire(name);
    if (!r) {
      return fail(std::move(r).error().wrap("container " + rec.name + ": volume " + name));
    }
    undo.acquired.push_back(name);
  }
  // Podman's first use of a volume, now that it is mounted: a new volume belongs to the
  // container's user, then takes the owner and mode of the image's directory when there is one
  // (copy-up); U chowns it to the container's user every time.
  std::optional<std::pair<uint32_t, uint32_t>> user;
  std::optional<std::string> rootfs;
  sdk::StorageDriver* driver = nullptr;
  struct RootfsRelease {
    sdk::StorageDriver*& d;
    const std::string& layer;
    std::optional<std::string>& path;
    ~RootfsRelease() {
      if (path && d) {
        (void)d->unmount(layer);
      }
    }
  } rootfs_release{driver, rec.layer_id, rootfs};
  for (const auto& mp : m.mount_points) {
    if (mp.type != "volume") {
      continue;
    }
    BERTH_TRY(auto v, vs->get(mp.name));
    const bool want_copy = mp.copy_up && v.needs_copy_up;
    if (!user && (mp.chown || v.needs_chown)) {
      BERTH_TRY(user, spec_user(rec));
    }
    if (user && (user->first != 0 || user->second != 0) && v.needs_chown) {
      BERTH_TRYV(vs->chown_for_container(mp.name, user->first, user->second));
    }
    if (want_copy) {
      if (!rootfs) {
        BERTH_TRY(driver, eng.storage());
        // Counted: the running container's mount is shared and stays after our unmount.
        auto p = driver->mount(rec.layer_id, sdk::MountOptions{});
        if (!p) {
          return fail(std::move(p).error().wrap("mount the rootfs of container " + rec.name));
        }
        rootfs = *p;
      }
      auto cu = vs->copy_up(mp.name, *rootfs, mp.destination);
      if (!cu) {
        return fail(std::move(cu).error().wrap("container " + rec.name));
      }
    }
    if (mp.chown) {
      BERTH_TRYV(chown_tree(v.mountpoint, user->first, user->second));
    }
  }
  if (auto r = stage_subpaths(eng, rec, *vs); !r) {
    unstage_subpaths(eng, rec);
    return r;
  }
  std::string text;
  for (const auto& name : m.named_volumes) {
    text += name + "\n";
  }
  BERTH_TRYV(util::write_file_atomic(held, text));
  undo.done = true;
  return {};
}

Result<void> mounts_after_exit(engine::Engine& eng, const ContainerRecord& rec) {
  unstage_subpaths(eng, rec);
  if (rec.options.storage.named_volumes.empty() ||
      ::access(held_file(eng, rec).c_str(), F_OK) != 0) {
    return {};
  }
  auto log = events::EventLog::from_config(eng.config());
  BERTH_TRY(auto vs, volume::VolumeStore::open(eng.config(), &log));
  release_held(eng, rec, *vs);
  return {};
}

Result<void> mounts_on_remove(engine::Engine& eng, const ContainerRecord& rec,
                              bool remove_volumes) {
  const auto& m = rec.options.storage;
  // `berth container mount` mounts (counted in the run dir) go with the container.
  {
    const std::string counter = run_dir(eng.runroot(), rec.id) + "/user-mounts";
    auto text = util::read_file(counter);
    if (text) {
      int n = std::atoi(text->c_str());
      if (auto d = eng.storage(); d) {
        for (int i = 0; i < n; ++i) {
          (void)(*d)->unmount(rec.layer_id);
        }
      }
      ::unlink(counter.c_str());
    }
  }
  if (m.named_volumes.empty() && m.image_mounts.empty()) {
    return {};
  }
  unstage_subpaths(eng, rec);  // normally done at the exit already
  auto log = events::EventLog::from_config(eng.config());
  BERTH_TRY(auto vs, volume::VolumeStore::open(eng.config(), &log));
  release_held(eng, rec, *vs);  // normally done at the exit already
  // `rm -v`, and `run --rm` (Podman removes a --rm container's anonymous volumes with it).
  if (remove_volumes || rec.options.remove) {
    // Only anonymous volumes no other container uses (one given by --volumes-from stays).
    BERTH_TRY(auto db, open_db(eng, true));
    BERTH_TRY(auto all, db->all());
    for (const auto& v : m.anonymous_volumes) {
      bool used = false;
      for (const auto& other : all) {
        const auto& nv = other.options.storage.named_volumes;
        used |= other.id != rec.id && std::find(nv.begin(), nv.end(), v) != nv.end();
      }
      if (used) {
        continue;
      }
      auto r = vs->remove(v, force_remove());
      if (!r && r.error().code() != Errc::NotFound) {
        return fail(std::move(r).error().wrap("remove anonymous volume " + v + " of container " +
                                              rec.name));
      }
    }
  }
  if (!m.image_mounts.empty()) {
    BERTH_TRY(auto images, open_layers(eng));
    for (const auto& i : m.image_mounts) {
      (void)image::unmount_image(*images, i);
    }
  }
  return {};
}

void mounts_inspect(engine::Engine& /*eng*/, const ContainerRecord& rec,
                    const ContainerState& /*st*/, json& out) {
  const auto& m = rec.options.storage;
  json mounts = json::array();
  json binds = json::array();
  json tmpfs = json::object();
  for (const auto& mp : m.mount_points) {
    json j{{"Type", mp.type},
           {"Source", mp.source},
           {"Destination", mp.destination},
           {"Driver", mp.driver},
           {"Mode", mp.mode},
           {"Options", mp.options},
           {"RW", mp.rw},
           {"Propagation", mp.propagation}};
    if (!mp.name.empty()) {
      j["Name"] = mp.name;
    }
    mounts.push_back(std::move(j));
    if (mp.type == "tmpfs") {
      std::string o;
      for (const auto& x : mp.options) {
        o += (o.empty() ? "" : ",") + x;
      }
      tmpfs[mp.destination] = o;
    } else if (mp.type == "bind" || mp.type == "volume") {
      std::string o = mp.rw ? "rw" : "ro";
      if (!mp.mode.empty()) {
        o += "," + mp.mode;
      }
      for (const auto& x : mp.options) {
        if (x == "ro" || x == "rw" || x == "rro") {
          continue;
        }
        o += "," + x;
      }
      binds.push_back((mp.type == "volume" ? mp.name : mp.source) + ":" + mp.destination + ":" + o);
    }
  }
  // The network's /etc files stay listed after the user's mounts, as before.
  if (out.contains("Mounts") && out["Mounts"].is_array()) {
    // By destination: the spec's source of a subpath is its stage, not the volume's path.
    std::set<std::string> mine;
    for (const auto& mp : m.mount_points) {
      mine.insert(mp.destination);
    }
    for (const auto& e : out["Mounts"]) {
      if (mine.count(e.value("Destination", "")) == 0) {
        mounts.push_back(e);
      }
    }
  }
  out["Mounts"] = std::move(mounts);
  auto& hc = out["HostConfig"];
  hc["Binds"] = std::move(binds);
  hc["Tmpfs"] = std::move(tmpfs);
  hc["VolumesFrom"] = m.volumes_from;
  hc["ReadonlyTmpfs"] = m.read_only_tmpfs;
}

void mounts_ps_row(engine::Engine& /*eng*/, const ContainerRecord& rec,
                   const ContainerState& /*st*/, json& row) {
  json dests = json::array();
  for (const auto& mp : rec.options.storage.mount_points) {
    dests.push_back(mp.destination);
  }
  row["Mounts"] = std::move(dests);
}

}  // namespace detail
}  // namespace berth::container
