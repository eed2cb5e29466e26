#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>

#include "berth/config/config.hpp"
#include "search_dirs.hpp"

namespace berth::config {

std::optional<std::string> ConfigPaths::getenv(const std::string& name) const {
  if (!env) {
    return std::nullopt;
  }
  return env(name);
}

ConfigPaths ConfigPaths::from_host() {
  ConfigPaths p;
  p.system_dirs = {
      {"/etc/berth", true}, {"/etc/containers", false}, {"/usr/share/containers", false}};
  p.uid = ::getuid();
  p.env = [](const std::string& name) -> std::optional<std::string> {
    const char* v = std::getenv(name.c_str());
    if (v == nullptr) {
      return std::nullopt;
    }
    return std::string(v);
  };
  if (const char* home = std::getenv("HOME"); home != nullptr && *home != '\0') {
    p.home_dir = home;
  } else {
    // No $HOME (sudo -i, systemd units): the passwd entry, as Go's os.UserHomeDir falls back to.
    struct passwd pw {};
    struct passwd* result = nullptr;
    std::vector<char> buf(16384);
    if (::getpwuid_r(p.uid, &pw, buf.data(), buf.size(), &result) == 0 && result != nullptr) {
      p.home_dir = pw.pw_dir;
    }
  }
  if (const char* xdg = std::getenv("XDG_CONFIG_HOME"); xdg != nullptr && *xdg != '\0') {
    p.user_config_dir = xdg;
  } else if (!p.home_dir.empty()) {
    p.user_config_dir = p.home_dir / ".config";
  }
  struct stat st {};
  p.systemd_booted = ::lstat("/run/systemd/system", &st) == 0 && S_ISDIR(st.st_mode);
  return p;
}

namespace detail {

std::vector<SearchDir> dirs_low_to_high(const ConfigPaths& paths) {
  std::vector<SearchDir> out;
  for (auto it = paths.system_dirs.rbegin(); it != paths.system_dirs.rend(); ++it) {
    out.push_back({it->path, it->berth_owned, false});
  }
  if (paths.rootless() && !paths.user_config_dir.empty()) {
    out.push_back({paths.user_config_dir / "containers", false, true});
    out.push_back({paths.user_config_dir / "berth", true, true});
  }
  return out;
}

}  // namespace detail
}  // namespace berth::config
