#include "overlay_driver.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <system_error>
#include <utility>

#include "berth/sdk/layer_archive.hpp"
#include "berth/sdk/staging_dir.hpp"

namespace berth::storage_overlay {

namespace fs = std::filesystem;
using sdk::Change;

namespace {

constexpr size_t kLinkLength = 26;
constexpr const char* kLinkDir = "l";
constexpr const char* kStagingDir = "staging";
constexpr const char* kDefaultFuse[] = {"/usr/bin/fuse-overlayfs", "/usr/local/bin/fuse-overlayfs",
                                        "/bin/fuse-overlayfs"};

// Layer ids become directory names: refuse anything that could name another path, and the
// driver's own directories.
Result<void> check_id(const std::string& id) {
  if (id.empty() || id.size() > 128 || id.front() == '.' || id.find('/') != std::string::npos ||
      id.find('\0') != std::string::npos || id.find(':') != std::string::npos ||
      id.find(',') != std::string::npos) {
    return fail(Errc::InvalidArgument, "overlay: invalid layer id '" + id +
                                           "' (1-128 characters, no '/', ':' or ',', not "
                                           "starting with '.')");
  }
  return {};
}

Result<void> make_dir(const fs::path& p, mode_t mode = 0755) {
  if (::mkdir(p.c_str(), mode) != 0 && errno != EEXIST) {
    return fail_errno("overlay: create directory", p.string());
  }
  return {};
}

Result<void> remove_tree(const fs::path& p) {
  std::error_code ec;
  fs::remove_all(p, ec);
  if (ec) {
    return fail_errno("overlay: remove", p.string(), ec.value());
  }
  return {};
}

// Reads a small file; NotFound when it does not exist.
Result<std::string> read_small(const fs::path& p) {
  UniqueFd fd(::open(p.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
  if (!fd) {
    return fail_errno("overlay: open", p.string());
  }
  std::string out;
  char buf[4096];
  for (;;) {
    ssize_t n = ::read(fd.get(), buf, sizeof(buf));
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n < 0) {
      return fail_errno("overlay: read", p.string());
    }
    if (n == 0) {
      break;
    }
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

Result<void> write_small(const fs::path& p, const std::string& content) {
  UniqueFd fd(::open(p.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644));
  if (!fd) {
    return fail_errno("overlay: create", p.string());
  }
  size_t done = 0;
  while (done < content.size()) {
    ssize_t n = ::write(fd.get(), content.data() + done, content.size() - done);
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n < 0) {
      return fail_errno("overlay: write", p.string());
    }
    done += static_cast<size_t>(n);
  }
  return {};
}

// A 26-character name from base32 of 16 random bytes, as containers/storage makes them.
Result<std::string> random_link() {
  unsigned char bytes[kLinkLength];
  size_t got = 0;
  while (got < sizeof(bytes)) {
    ssize_t n = ::getrandom(bytes + got, sizeof(bytes) - got, 0);
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n < 0) {
      return fail_errno("overlay: getrandom", "");
    }
    got += static_cast<size_t>(n);
  }
  static constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
  std::string out;
  for (unsigned char b : bytes) {
    out += kAlphabet[b % 32];
  }
  return out;
}

bool is_whiteout(const struct stat& st) {
  return S_ISCHR(st.st_mode) && st.st_rdev == makedev(0, 0);
}

bool is_opaque(const fs::path& p) {
  char v[4] = {};
  for (const char* name : {"trusted.overlay.opaque", "user.overlay.opaque"}) {
    ssize_t n = ::lgetxattr(p.c_str(), name, v, sizeof(v));
    if (n == 1 && v[0] == 'y') {
      return true;
    }
  }
  return false;
}

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::string cur;
  std::istringstream in(s);
  while (std::getline(in, cur, sep)) {
    if (!cur.empty()) {
      out.push_back(cur);
    }
  }
  return out;
}

std::string join(const std::vector<std::string>& v, char sep) {
  std::string out;
  for (const auto& s : v) {
    if (!out.empty()) {
      out += sep;
    }
    out += s;
  }
  return out;
}

// Staging directories come from the SDK (berth/sdk/staging_dir.hpp).
Result<std::unique_ptr<sdk::StagingDir>> make_staging(const fs::path& home,
                                                      const std::string& what) {
  return sdk::make_staging(home / kStagingDir, what, "overlay");
}

// Removes staging directories of killed processes. A probe or layer mount left there is detached
// first, so that the removal never reaches through a mount.
void clean_staging(const fs::path& home) {
  sdk::clean_staging(home / kStagingDir, [](const fs::path& entry) {
    bool mounted = false;
    for (const fs::path& m : {entry / "merged", entry / "layer" / "merged"}) {
      if (is_mount_point(m) && !unmount_overlay(m)) {
        mounted = true;
      }
    }
    return !mounted;
  });
}

Result<bool> parse_bool(const std::string& key, const std::string& v) {
  if (v == "true" || v == "1" || v == "yes") {
    return true;
  }
  if (v.empty() || v == "false" || v == "0" || v == "no") {
    return false;
  }
  return fail(Errc::InvalidArgument,
              "overlay: option " + key + "='" + v + "' is not a boolean (true or false)");
}

std::string backing_fs_name(const fs::path& p) {
  struct statfs sfs {};
  if (::statfs(p.c_str(), &sfs) != 0) {
    return "unknown";
  }
  switch (static_cast<unsigned long>(sfs.f_type)) {
    case 0xEF53:
      return "extfs";
    case 0x58465342:
      return "xfs";
    case 0x9123683E:
      return "btrfs";
    case 0x01021994:
      return "tmpfs";
    case 0x2FC12FC1:
      return "zfs";
    case 0x794C7630:
      return "overlayfs";
    case 0x6969:
      return "nfs";
    case 0xF2F52010:
      return "f2fs";
    default: {
      std::ostringstream s;
      s << "0x" << std::hex << static_cast<unsigned long>(sfs.f_type);
      return s.str();
    }
  }
}

// Whether readdir on `dir` fills d_type (overlay needs it to find whiteouts).
bool supports_d_type(const fs::path& dir) {
  std::unique_ptr<DIR, int (*)(DIR*)> d(::opendir(dir.c_str()), ::closedir);
  if (!d) {
    return false;
  }
  while (dirent* e = ::readdir(d.get())) {
    std::string n = e->d_name;
    if (n != "." && n != "..") {
      return e->d_type != DT_UNKNOWN;
    }
  }
  return false;
}

bool module_metacopy() {
  auto v = read_small("/sys/module/overlay/parameters/metacopy");
  return v && !v->empty() && (*v)[0] == 'Y';
}

std::string find_fuse_overlayfs() {
  for (const char* p : kDefaultFuse) {
    if (::access(p, X_OK) == 0) {
      return p;
    }
  }
  return "";
}

// Whether a mount point lies strictly below `dir` (in this process's mount namespace).
bool has_mounts_below(const fs::path& dir) {
  std::ifstream in("/proc/self/mountinfo");
  const std::string prefix = dir.string() + "/";
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::string id, parent, devno, root, point;
    fields >> id >> parent >> devno >> root >> point;
    if (point.starts_with(prefix)) {
      return true;
    }
  }
  return false;
}

}  // namespace

Result<OverlayOptions> parse_options(const std::string& text) {
  OverlayOptions o;
  if (text.empty()) {
    return o;
  }
  auto j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) {
    return fail(Errc::InvalidArgument,
                "overlay: driver options must be a JSON object of strings, got: " + text);
  }
  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::string& key = it.key();
    std::string v;
    if (it->is_string()) {
      v = it->get<std::string>();
    } else if (it->is_boolean()) {
      v = it->get<bool>() ? "true" : "false";
    } else {
      return fail(Errc::InvalidArgument,
                  "overlay: option " + key + " must be a string, got " + it->dump());
    }
    if (key == "mount_program") {
      o.mount_program = v;
    } else if (key == "mountopt") {
      o.mountopt = split(v, ',');
    } else if (key == "skip_mount_home") {
      BERTH_TRY(o.skip_mount_home, parse_bool(key, v));
    } else if (key == "ignore_chown_errors") {
      BERTH_TRY(o.ignore_chown_errors, parse_bool(key, v));
    } else if (key == "force_mask") {
      o.force_mask = v;
    } else if (key == "size") {
      o.size = v;
    } else if (key == "mount_api") {
      if (!v.empty() && v != "lowerdir+" && v != "data") {
        return fail(Errc::InvalidArgument,
                    "overlay: option mount_api='" + v + "': use \"lowerdir+\" or \"data\"");
      }
      o.mount_api = v;
    } else {
      return fail(Errc::InvalidArgument,
                  "overlay: unknown option '" + key +
                      "' (known: mount_program, mountopt, skip_mount_home, ignore_chown_errors, "
                      "size, force_mask, mount_api)");
    }
  }
  if (!o.force_mask.empty()) {
    return fail(Errc::NotSupported,
                "overlay: option force_mask is not supported by berth's overlay driver yet; "
                "remove it from storage.conf");
  }
  if (!o.size.empty()) {
    return fail(Errc::NotSupported,
                "overlay: option size needs project quotas (xfs), which berth's overlay driver "
                "does not implement yet; remove it from storage.conf");
  }
  if (!o.mount_program.empty() && o.mount_program.front() != '/') {
    return fail(Errc::InvalidArgument,
                "overlay: mount_program '" + o.mount_program + "' must be an absolute path");
  }
  return o;
}

Result<sdk::StorageDriverPtr> OverlayDriver::make(const sdk::PluginContext& ctx) {
  if (ctx.home.empty() || ctx.run_root.empty()) {
    return fail(Errc::InvalidArgument,
                "overlay: the driver needs a home and a run root (graphroot and runroot)");
  }
  BERTH_TRY(OverlayOptions opts, parse_options(ctx.options_json));
  BERTH_TRY(auto counter,
            sdk::MountCounter::open(fs::path(ctx.run_root) / "overlay-mounts", "overlay"));
  std::error_code ec;
  fs::create_directories(ctx.home, ec);
  if (ec) {
    return fail_errno("overlay: create directory", ctx.home, ec.value());
  }
  auto d = std::unique_ptr<OverlayDriver>(
      new OverlayDriver(ctx.home, ctx.run_root, std::move(opts), std::move(counter)));
  BERTH_TRYV(make_dir(d->home_, 0700));
  BERTH_TRYV(make_dir(d->home_ / kLinkDir, 0700));
  BERTH_TRYV(make_dir(d->home_ / kStagingDir, 0700));
  // Before the home's bind mount, which would hide mounts left in staging from being detached.
  clean_staging(d->home_);
  BERTH_TRYV(d->setup_home());
  d->probe_host();
  return d;
}

// containers/storage makes the home a private bind mount so that layer mounts do not propagate
// into other mount namespaces (containers started with rslave or shared propagation).
Result<void> OverlayDriver::setup_home() {
  if (opts_.skip_mount_home || ::geteuid() != 0) {
    return {};
  }
  const fs::path lock_path = run_root_ / "overlay-home.lock";
  UniqueFd lock(::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
  if (!lock) {
    return fail_errno("overlay: open", lock_path.string());
  }
  while (::flock(lock.get(), LOCK_EX) != 0) {
    if (errno != EINTR) {
      return fail_errno("overlay: lock", lock_path.string());
    }
  }
  if (!is_mount_point(home_)) {
    // Recursive only when something is mounted below already, which a plain bind would hide.
    const unsigned long rec = has_mounts_below(home_) ? MS_REC : 0;
    if (::mount(home_.c_str(), home_.c_str(), nullptr, MS_BIND | rec, nullptr) != 0) {
      return fail(Error::from_errno("overlay: bind mount the home on itself", home_.string(), errno)
                      .hint("set skip_mount_home=true in storage.conf to do without"));
    }
    made_home_mount_ = true;
  }
  if (::mount(nullptr, home_.c_str(), nullptr, MS_PRIVATE, nullptr) != 0) {
    return fail(Error::from_errno("overlay: make the home mount private", home_.string(), errno)
                    .hint("set skip_mount_home=true in storage.conf to do without"));
  }
  return {};
}

void OverlayDriver::probe_host() {
  facts_.backing_fs = backing_fs_name(home_);
  facts_.d_type = supports_d_type(home_);
  const fs::path cache = run_root_ / "overlay-probe";
  if (!opts_.mount_program.empty()) {
    // An explicit mount program: the kernel is not asked.
    program_ = opts_.mount_program;
    method_ = MountMethod::Program;
    if (::access(program_.c_str(), X_OK) != 0) {
      supported_ = false;
      reason_ = "mount_program " + program_ + " is not executable: " + std::strerror(errno) +
                " (install fuse-overlayfs or fix storage.conf)";
    } else if (::access("/dev/fuse", R_OK | W_OK) != 0) {
      supported_ = false;
      reason_ = "mount_program " + program_ + ": /dev/fuse is not usable: " + std::strerror(errno) +
                " (load the fuse module)";
    } else {
      supported_ = true;
      reason_ = "fuse-overlayfs " + program_ + " (mount_program option)";
    }
    facts_.native_diff = ::geteuid() == 0;
    return;
  }
  bool cached = false;
  if (auto text = read_small(cache)) {
    auto j = nlohmann::json::parse(*text, nullptr, false);
    if (!j.is_discarded() && j.is_object() && j.contains("kernel_ok")) {
      facts_.kernel_ok = j.value("kernel_ok", false);
      facts_.kernel_error = j.value("kernel_error", "");
      facts_.lowerdir_plus = j.value("lowerdir_plus", false);
      facts_.native_diff = j.value("native_diff", false);
      cached = true;
    }
  }
  if (!cached) {
    // A real mount with a whiteout and an opaque directory: what every image needs.
    auto run_probe = [&]() -> Result<void> {
      BERTH_TRY(auto dir, make_staging(home_, "probe"));
      const fs::path p = dir->path();
      const std::string rel = p.lexically_relative(home_).string();
      for (const char* sub :
           {"lower1", "lower2", "upper", "work", "merged", "lower1/d", "lower1/r", "lower2/d"}) {
        BERTH_TRYV(make_dir(p / sub));
      }
      BERTH_TRYV(write_small(p / "lower1/f", "f"));
      BERTH_TRYV(write_small(p / "lower1/d/x", "x"));
      BERTH_TRYV(write_small(p / "lower1/r/y", "y"));
      if (::mknod((p / "lower2/f").c_str(), S_IFCHR, makedev(0, 0)) != 0) {
        return fail_errno("create a whiteout device", (p / "lower2/f").string());
      }
      if (::setxattr((p / "lower2/d").c_str(), "trusted.overlay.opaque", "y", 1, 0) != 0) {
        return fail_errno("set trusted.overlay.opaque on", (p / "lower2/d").string());
      }
      facts_.lowerdir_plus = kernel_has_lowerdir_plus(p / "lower1");
      OverlayMount m;
      m.home = home_;
      m.lowers = {rel + "/lower2", rel + "/lower1"};
      m.upper = rel + "/upper";
      m.work = rel + "/work";
      m.target = p / "merged";
      BERTH_TRYV(mount_overlay(
          m, facts_.lowerdir_plus ? MountMethod::LowerdirPlus : MountMethod::DataPage, ""));
      struct stat st {};
      const bool whiteout_ok = ::lstat((p / "merged/f").c_str(), &st) != 0 && errno == ENOENT;
      const bool opaque_ok = ::lstat((p / "merged/d/x").c_str(), &st) != 0 && errno == ENOENT;
      // With redirect_dir the kernel renames a lower directory by a redirect xattr in the upper
      // dir, which a plain walk of that dir cannot see (containers/storage's native diff test).
      bool native = true;
      if (::rename((p / "merged/r").c_str(), (p / "merged/r2").c_str()) == 0) {
        char buf[256];
        native =
            ::lgetxattr((p / "upper/r2").c_str(), "trusted.overlay.redirect", buf, sizeof(buf)) < 0;
      }
      auto u = unmount_overlay(m.target);
      if (!u) {
        dir->release();  // never delete through a mount; the next start retries
        return u;
      }
      if (!whiteout_ok || !opaque_ok) {
        return fail(Errc::NotSupported,
                    std::string("the mount ignores ") +
                        (!whiteout_ok ? "whiteout devices" : "opaque directories"));
      }
      facts_.native_diff = native;
      return {};
    };
    auto r = run_probe();
    facts_.kernel_ok = r.has_value();
    if (!r) {
      facts_.kernel_error = r.error().message();
    }
    nlohmann::json j = {{"kernel_ok", facts_.kernel_ok},
                        {"kernel_error", facts_.kernel_error},
                        {"lowerdir_plus", facts_.lowerdir_plus},
                        {"native_diff", facts_.native_diff}};
    const fs::path tmp = cache.string() + ".tmp" + std::to_string(::getpid());
    if (write_small(tmp, j.dump())) {
      if (::rename(tmp.c_str(), cache.c_str()) != 0) {
        ::unlink(tmp.c_str());
      }
    }
  }
  if (facts_.kernel_ok) {
    supported_ = true;
    if (opts_.mount_api == "data" || (opts_.mount_api.empty() && !facts_.lowerdir_plus)) {
      method_ = MountMethod::DataPage;
    } else {
      method_ = MountMethod::LowerdirPlus;
      if (!facts_.lowerdir_plus) {
        supported_ = false;
        reason_ =
            "mount_api=lowerdir+ was asked for, but this kernel has no fsconfig lowerdir+ "
            "(Linux 6.8 or later)";
        return;
      }
    }
    reason_ = std::string("kernel overlayfs, ") + (native_diff() ? "native diff" : "naive diff") +
              " (" + method_name(method_) + ")";
    return;
  }
  const std::string fuse = find_fuse_overlayfs();
  if (!fuse.empty() && ::access("/dev/fuse", R_OK | W_OK) == 0) {
    supported_ = true;
    method_ = MountMethod::Program;
    program_ = fuse;
    facts_.native_diff = ::geteuid() == 0;
    reason_ = "fuse-overlayfs " + fuse + ": kernel overlay refused: " + facts_.kernel_error;
    return;
  }
  supported_ = false;
  reason_ = "kernel overlay refused: " + facts_.kernel_error +
            "; no usable fuse-overlayfs either (install fuse-overlayfs, or use the vfs driver)";
}

bool OverlayDriver::using_metacopy() const {
  bool on = method_ != MountMethod::Program && module_metacopy();
  for (const auto& o : opts_.mountopt) {
    if (o == "metacopy=on") {
      on = true;
    } else if (o == "metacopy=off") {
      on = false;
    }
  }
  return on;
}

bool OverlayDriver::native_diff() const {
  if (!facts_.native_diff || using_metacopy()) {
    return false;
  }
  return std::find(opts_.mountopt.begin(), opts_.mountopt.end(), "redirect_dir=on") ==
         opts_.mountopt.end();
}

sdk::ProbeResult OverlayDriver::probe() {
  return {supported_, reason_};
}

std::vector<std::pair<std::string, std::string>> OverlayDriver::status() {
  return {{"Backing Filesystem", facts_.backing_fs},
          {"Native Overlay Diff", native_diff() ? "true" : "false"},
          {"Supports d_type", facts_.d_type ? "true" : "false"},
          {"Using metacopy", using_metacopy() ? "true" : "false"},
          {"Mount Program", program_.empty() ? "none (kernel overlayfs)" : program_},
          {"Mount API", method_name(method_)},
          {"Probe", reason_}};
}

std::string OverlayDriver::dir_name(const std::string& id) {
  if (id == kLinkDir || id == kStagingDir || id.starts_with('+')) {
    return "+" + id;
  }
  return id;
}

std::string OverlayDriver::id_of(const std::string& dir_name) {
  return dir_name.starts_with('+') ? dir_name.substr(1) : dir_name;
}

bool OverlayDriver::exists(const std::string& id) {
  if (!check_id(id)) {
    return false;
  }
  struct stat st {};
  return ::lstat((dir(id) / "diff").c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

Result<void> OverlayDriver::require(const std::string& id) {
  BERTH_TRYV(check_id(id));
  if (!exists(id)) {
    return fail(Errc::NotFound, "overlay: layer " + id + " not found in " + home_.string());
  }
  return {};
}

Result<std::vector<std::string>> OverlayDriver::lowers_of(const std::string& id) {
  auto text = read_small(dir(id) / "lower");
  if (!text) {
    if (text.error().sys_errno() == ENOENT) {
      return std::vector<std::string>{};
    }
    return fail(std::move(text).error());
  }
  std::vector<std::string> lowers = split(*text, ':');
  for (const auto& l : lowers) {
    if (!l.starts_with("l/") || l.size() != 2 + kLinkLength) {
      return fail(Errc::Corrupt, "overlay: layer " + id + ": " + (dir(id) / "lower").string() +
                                     " names '" + l + "', not a link under l/");
    }
  }
  return lowers;
}

Result<std::string> OverlayDriver::parent_of(const std::string& id) {
  BERTH_TRY(auto lowers, lowers_of(id));
  if (lowers.empty()) {
    return std::string();
  }
  BERTH_TRYV(ensure_links({lowers.front()}));
  std::error_code ec;
  const fs::path target = fs::read_symlink(home_ / lowers.front(), ec);
  if (ec) {
    return fail_errno("overlay: read link", (home_ / lowers.front()).string(), ec.value());
  }
  // "../<id>/diff"
  return id_of(target.parent_path().filename().string());
}

Result<void> OverlayDriver::ensure_links(const std::vector<std::string>& lowers) {
  std::map<std::string, std::string> by_link;  // filled on the first missing link
  for (const auto& l : lowers) {
    struct stat st {};
    if (::lstat((home_ / l).c_str(), &st) == 0) {
      continue;
    }
    if (by_link.empty()) {
      std::error_code ec;
      for (const auto& e : fs::directory_iterator(home_, ec)) {
        if (auto link = read_small(e.path() / "link")) {
          by_link[*link] = e.path().filename().string();  // a directory name
        }
      }
    }
    const std::string name = l.substr(2);
    auto it = by_link.find(name);
    if (it == by_link.end()) {
      return fail(Errc::Corrupt, "overlay: " + (home_ / l).string() +
                                     " is missing and no layer has link " + name +
                                     ": a parent layer was removed; remove the layers built on it");
    }
    const std::string target = "../" + it->second + "/diff";
    if (::symlink(target.c_str(), (home_ / l).c_str()) != 0 && errno != EEXIST) {
      return fail_errno("overlay: recreate link", (home_ / l).string());
    }
  }
  return {};
}

Result<void> OverlayDriver::create(const std::string& id, const std::string& parent,
                                   const sdk::CreateOptions& opts) {
  BERTH_TRYV(check_id(id));
  if (!opts.storage_opts.empty()) {
    return fail(Errc::InvalidArgument, "overlay: create layer " + id + ": storage option '" +
                                           opts.storage_opts.begin()->first +
                                           "' is not supported by berth's overlay driver");
  }
  if (exists(id)) {
    return fail(Errc::AlreadyExists, "overlay: layer " + id + " already exists");
  }
  std::string lower;
  if (!parent.empty()) {
    auto r = require(parent);
    if (!r) {
      return fail(
          std::move(r).error().wrap("overlay: create layer " + id + " on parent " + parent));
    }
    BERTH_TRY(std::string plink, read_small(dir(parent) / "link"));
    BERTH_TRY(auto plowers, lowers_of(parent));
    plowers.insert(plowers.begin(), std::string(kLinkDir) + "/" + plink);
    lower = join(plowers, ':');
  }
  BERTH_TRY(auto staging, make_staging(home_, id));
  const fs::path s = staging->path();
  BERTH_TRYV(make_dir(s / "diff", 0755));
  BERTH_TRYV(make_dir(s / "merged", 0700));
  if (opts.read_write) {
    BERTH_TRYV(make_dir(s / "work", 0700));
  }
  BERTH_TRY(std::string link, random_link());
  BERTH_TRYV(write_small(s / "link", link));
  if (!lower.empty()) {
    BERTH_TRYV(write_small(s / "lower", lower));
  }
  // NOREPLACE makes a concurrent create of the same id lose cleanly.
  if (::renameat2(AT_FDCWD, s.c_str(), AT_FDCWD, dir(id).c_str(), RENAME_NOREPLACE) != 0) {
    if (errno == EEXIST || errno == ENOTEMPTY) {
      return fail(Errc::AlreadyExists, "overlay: layer " + id + " already exists");
    }
    return fail_errno("overlay: rename " + s.string() + " to", dir(id).string());
  }
  staging->release();
  // The link follows the rename: a crash in between leaves a link that mount() recreates.
  const fs::path lpath = home_ / kLinkDir / link;
  if (::symlink(("../" + dir_name(id) + "/diff").c_str(), lpath.c_str()) != 0) {
    const int err = errno;
    auto undo = remove(id);
    (void)undo;
    return fail_errno("overlay: create layer " + id + ": link", lpath.string(), err);
  }
  return {};
}

Result<void> OverlayDriver::remove(const std::string& id) {
  BERTH_TRYV(check_id(id));
  if (!exists(id)) {
    return {};
  }
  // Under the mount-count lock, so that no mount slips in between the check and the rename.
  BERTH_TRY(auto lock, counter_.lock(id));
  if (!exists(id)) {
    return {};
  }
  if (lock.value() > 0) {
    return fail(Errc::Busy, "overlay: layer " + id + " is mounted " + std::to_string(lock.value()) +
                                " time(s); unmount it (stop its containers) before removing");
  }
  if (is_mount_point(dir(id) / "merged")) {
    return fail(Errc::Busy, "overlay: layer " + id + " is still mounted on " +
                                (dir(id) / "merged").string() + " outside berth's count; " +
                                "unmount it before removing");
  }
  auto link = read_small(dir(id) / "link");
  if (link) {
    const std::string mine = std::string(kLinkDir) + "/" + *link;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(home_, ec)) {
      auto lower = read_small(e.path() / "lower");
      if (lower && (lower->starts_with(mine + ":") || *lower == mine)) {
        return fail(Errc::Conflict, "overlay: layer " + id + " is the parent of layer " +
                                        id_of(e.path().filename().string()) +
                                        "; remove that first");
      }
    }
  }
  // Rename first so the layer vanishes at once, then delete at leisure.
  BERTH_TRY(auto trash, make_staging(home_, id + "-removing"));
  const fs::path target = trash->path() / "layer";
  if (::rename(dir(id).c_str(), target.c_str()) != 0 && errno != ENOENT) {
    return fail_errno("overlay: move layer " + id + " to", target.string());
  }
  if (link) {
    const fs::path lpath = home_ / kLinkDir / *link;
    if (::unlink(lpath.c_str()) != 0 && errno != ENOENT) {
      return fail_errno("overlay: remove link", lpath.string());
    }
  }
  // A mount waiting for the lock finds the layer gone and reports NotFound.
  BERTH_TRYV(lock.remove());
  lock.unlock();
  BERTH_TRYV(remove_tree(trash->path()));
  trash->release();
  return {};
}

Result<std::string> OverlayDriver::mount(const std::string& id, const sdk::MountOptions& opts) {
  BERTH_TRYV(require(id));
  if (!supported_) {
    return fail(Errc::NotSupported, "overlay: mount layer " + id + ": " + reason_);
  }
  BERTH_TRY(auto lock, counter_.lock(id));
  BERTH_TRYV(require(id));  // again under the lock: a remove may have won the race
  BERTH_TRY(auto lowers, lowers_of(id));
  std::string path = (dir(id) / "diff").string();
  bool mounted_now = false;
  if (!lowers.empty()) {
    const fs::path merged = dir(id) / "merged";
    path = merged.string();
    const MountState state = mount_state(merged);
    if (lock.value() == 0 || state != MountState::Live) {
      if (state != MountState::None) {
        // Stale (a count that was lost) or dead (its FUSE daemon was killed): replace it.
        BERTH_TRYV(unmount_overlay(merged));
      }
      BERTH_TRYV(ensure_links(lowers));
      OverlayMount m;
      m.home = home_;
      m.target = merged;
      struct stat st {};
      const bool rw = !opts.read_only && ::lstat((dir(id) / "work").c_str(), &st) == 0;
      if (rw) {
        m.lowers = lowers;
        m.upper = dir_name(id) + "/diff";
        m.work = dir_name(id) + "/work";
      } else {
        BERTH_TRY(std::string link, read_small(dir(id) / "link"));
        m.lowers.push_back(std::string(kLinkDir) + "/" + link);
        BERTH_TRYV(ensure_links({m.lowers.front()}));
        m.lowers.insert(m.lowers.end(), lowers.begin(), lowers.end());
      }
      m.options = opts_.mountopt;
      std::string idmap;
      for (const auto& o : opts.options) {
        if (o.rfind("idmap=", 0) == 0) {
          idmap = o.substr(6);
        } else {
          m.options.push_back(o);
        }
      }
      BERTH_TRY(UniqueFd userns, idmap_for(id, idmap, rw));
      m.userns_fd = userns.get();
      auto r = mount_overlay(m, method_, program_);
      if (!r) {
        return fail(std::move(r).error().wrap("overlay: mount layer " + id));
      }
      mounted_now = true;
    }
  }
  if (auto counted = lock.set(lock.value() + 1); !counted) {
    if (mounted_now) {
      (void)unmount_overlay(path);  // an uncounted mount would never be released
    }
    return fail(std::move(counted).error());
  }
  {
    std::lock_guard g(held_mu_);
    ++held_[id];
  }
  return path;
}

Result<UniqueFd> OverlayDriver::idmap_for(const std::string& id, const std::string& given,
                                          bool rw) {
  // A container layer keeps its map in <id>/idmap, so that every later mount (a restart,
  // `berth mount`) shows the same owners; a new map replaces the recorded one.
  const fs::path file = dir(id) / "idmap";
  std::string text = given;
  if (text.empty()) {
    auto recorded = read_small(file);
    if (!recorded) {
      if (recorded.error().sys_errno() == ENOENT) {
        return UniqueFd();
      }
      return fail(std::move(recorded).error());
    }
    text = *recorded;
  }
  BERTH_TRY(IdMaps maps, parse_idmap(text));
  if (!given.empty()) {
    BERTH_TRYV(write_small(file, given));
  }
  if (rw) {
    // The upper dir is the container's own: its root is the merged root, owned by the mapped
    // root (overlay writes the upper with the mounter's credentials, so it is not idmapped).
    auto host_of = [](const std::vector<IdMapEntry>& m) -> std::optional<uint32_t> {
      for (const auto& e : m) {
        if (e.from == 0) {
          return e.to;
        }
      }
      return std::nullopt;
    };
    auto uid = host_of(maps.uids);
    auto gid = host_of(maps.gids);
    const fs::path diff = dir(id) / "diff";
    struct stat st {};
    if (::lstat(diff.c_str(), &st) != 0) {
      return fail_errno("overlay: stat", diff.string());
    }
    const uid_t want_uid = uid ? *uid : st.st_uid;
    const gid_t want_gid = gid ? *gid : st.st_gid;
    if ((st.st_uid != want_uid || st.st_gid != want_gid) &&
        ::lchown(diff.c_str(), want_uid, want_gid) != 0) {
      return fail_errno("overlay: chown the container's upper dir", diff.string());
    }
  }
  auto ns = make_userns(maps);
  if (!ns) {
    return fail(std::move(ns).error().wrap("overlay: mount layer " + id + " idmapped"));
  }
  return std::move(*ns);
}

Result<void> OverlayDriver::unmount(const std::string& id) {
  BERTH_TRYV(require(id));
  BERTH_TRY(auto lock, counter_.lock(id));
  BERTH_TRYV(require(id));
  if (lock.value() == 0) {
    return {};
  }
  if (lock.value() == 1) {
    auto r = unmount_overlay(dir(id) / "merged");
    if (!r) {
      return fail(std::move(r).error().wrap("overlay: unmount layer " + id));
    }
  }
  BERTH_TRYV(lock.set(lock.value() - 1));
  std::lock_guard g(held_mu_);
  auto it = held_.find(id);
  if (it != held_.end() && --it->second <= 0) {
    held_.erase(it);
  }
  return {};
}

Result<void> OverlayDriver::cleanup() {
  std::map<std::string, long> held;
  {
    std::lock_guard g(held_mu_);
    held = held_;
  }
  Result<void> first;
  for (const auto& [id, n] : held) {
    for (long i = 0; i < n; ++i) {
      auto r = unmount(id);
      if (!r && first) {
        first = std::move(r);
      }
    }
  }
  // Others may still have layers mounted below: then the home stays mounted, private. Without
  // mounts below, EBUSY is a FUSE daemon still closing its files after its unmount: wait a little.
  for (int i = 0; made_home_mount_ && i < 300; ++i) {
    if (::umount2(home_.c_str(), 0) == 0 || errno != EBUSY || has_mounts_below(home_)) {
      made_home_mount_ = false;
      break;
    }
    timespec ts{0, 10 * 1000 * 1000};
    ::nanosleep(&ts, nullptr);
  }
  return first;
}

Result<std::string> OverlayDriver::layer_path(const std::string& id) {
  BERTH_TRYV(require(id));
  return (dir(id) / "diff").string();
}

Result<uint64_t> OverlayDriver::apply_diff(const std::string& id, int tar_fd,
                                           const sdk::ApplyOptions& opts) {
  BERTH_TRYV(require(id));
  sdk::ExtractOptions x;
  x.whiteouts = sdk::WhiteoutFormat::Overlay;
  x.allow_devices = opts.allow_devices;
  x.restore_ownership = !(opts_.ignore_chown_errors && ::geteuid() != 0);
  x.uid_shift = opts.uid_shift;
  x.gid_shift = opts.gid_shift;
  auto stats = sdk::extract_layer(tar_fd, dir(id) / "diff", x);
  if (!stats) {
    return fail(std::move(stats).error().wrap("overlay: apply diff to layer " + id));
  }
  return stats->bytes;
}

Result<sdk::LayerUsage> OverlayDriver::usage(const std::string& id) {
  BERTH_TRYV(require(id));
  auto u = sdk::tree_usage(dir(id) / "diff");
  if (!u) {
    return fail(std::move(u).error().wrap("overlay: usage of layer " + id));
  }
  return *u;
}

Result<void> OverlayDriver::check_parent(const std::string& id, const std::string& parent) {
  BERTH_TRYV(require(id));
  BERTH_TRY(std::string actual, parent_of(id));
  if (actual != parent) {
    return fail(Errc::NotSupported, "overlay: layer " + id + " is built on '" + actual +
                                        "', not on '" + parent +
                                        "': only a naive diff can compare them");
  }
  if (!native_diff()) {
    return fail(Errc::NotSupported,
                "overlay: this host's overlay is not native-diff safe (redirect_dir, metacopy "
                "or an unprivileged mount program): use the naive diff");
  }
  return {};
}

Result<UniqueFd> OverlayDriver::diff(const std::string& id, const std::string& parent) {
  BERTH_TRYV(check_parent(id, parent));
  // An unnamed file in the store: diffs can be as large as the layer.
  const fs::path staging = home_ / kStagingDir;
  UniqueFd out(::open(staging.c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600));
  if (!out) {
    return fail_errno("overlay: create diff file in", staging.string());
  }
  // A container in a user namespace wrote its upper dir with host ids: the diff is read
  // through an idmapped mount with the inverse map, so the layer holds the container's ids.
  fs::path root = dir(id) / "diff";
  UniqueFd tree;
  if (auto recorded = read_small(dir(id) / "idmap"); recorded) {
    BERTH_TRY(IdMaps maps, parse_idmap(*recorded));
    for (auto* v : {&maps.uids, &maps.gids}) {
      for (auto& e : *v) {
        std::swap(e.from, e.to);
      }
    }
    BERTH_TRY(UniqueFd ns, make_userns(maps));
    tree.reset(static_cast<int>(
        ::syscall(SYS_open_tree, AT_FDCWD, root.c_str(), OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC)));
    if (!tree) {
      return fail_errno("overlay: diff layer " + id + ": open_tree", root.string());
    }
    mount_attr attr{};
    attr.attr_set = MOUNT_ATTR_IDMAP;
    attr.userns_fd = static_cast<uint64_t>(ns.get());
    if (::syscall(SYS_mount_setattr, tree.get(), "", AT_EMPTY_PATH, &attr, sizeof(attr)) != 0) {
      return fail_errno("overlay: diff layer " + id + ": idmap", root.string());
    }
    root = "/proc/self/fd/" + std::to_string(tree.get());
  } else if (recorded.error().sys_errno() != ENOENT) {
    return fail(std::move(recorded).error());
  }
  auto w = sdk::write_tree_tar(root, out.get(), sdk::WhiteoutFormat::Overlay);
  if (!w) {
    return fail(std::move(w).error().wrap("overlay: diff layer " + id));
  }
  if (::lseek(out.get(), 0, SEEK_SET) != 0) {
    return fail_errno("overlay: seek diff of layer", id);
  }
  return out;
}

Result<std::vector<Change>> OverlayDriver::changes(const std::string& id,
                                                   const std::string& parent) {
  BERTH_TRYV(check_parent(id, parent));
  BERTH_TRY(auto lowers, lowers_of(id));
  BERTH_TRYV(ensure_links(lowers));
  // Whether `rel` is visible in the merged view of the lowers (whiteouts and opaque dirs hide).
  auto in_lowers = [&](const fs::path& rel) {
    std::vector<std::string> comps;
    for (const auto& c : rel) {
      comps.push_back(c.string());
    }
    for (const auto& l : lowers) {
      fs::path cur = home_ / l;
      bool opaque_above = false;
      for (size_t i = 0; i < comps.size(); ++i) {
        cur /= comps[i];
        struct stat st {};
        if (::lstat(cur.c_str(), &st) != 0) {
          break;
        }
        if (is_whiteout(st)) {
          return false;
        }
        if (i + 1 == comps.size()) {
          return true;
        }
        if (!S_ISDIR(st.st_mode)) {
          return false;
        }
        opaque_above = opaque_above || is_opaque(cur);
      }
      if (opaque_above) {
        return false;
      }
    }
    return false;
  };
  const fs::path root = dir(id) / "diff";
  std::vector<Change> out;
  std::error_code ec;
  fs::recursive_directory_iterator it(root, fs::directory_options::none, ec), end;
  for (; !ec && it != end; it.increment(ec)) {
    const fs::path rel = it->path().lexically_relative(root);
    struct stat st {};
    if (::lstat(it->path().c_str(), &st) != 0) {
      return fail_errno("overlay: stat", it->path().string());
    }
    const std::string name = rel.filename().string();
    if (is_whiteout(st)) {
      out.push_back(Change{"/" + rel.string(), Change::Kind::Deleted});
    } else if (name.starts_with(".wh.")) {
      // A mount program without CAP_MKNOD writes whiteouts as .wh. files.
      if (name != ".wh..wh..opq") {
        out.push_back(
            Change{"/" + (rel.parent_path() / name.substr(4)).string(), Change::Kind::Deleted});
      }
    } else {
      out.push_back(Change{"/" + rel.string(),
                           in_lowers(rel) ? Change::Kind::Modified : Change::Kind::Added});
    }
  }
  if (ec) {
    return fail_errno("overlay: walk", root.string(), ec.value());
  }
  std::sort(out.begin(), out.end(),
            [](const Change& a, const Change& b) { return a.path < b.path; });
  return out;
}

}  // namespace berth::storage_overlay
