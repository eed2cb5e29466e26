// User resolution against the container's /etc/passwd and /etc/group, read inside the rootfs.
#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <charconv>
#include <sstream>

#include "berth/sdk/unique_fd.hpp"
#include "berth/spec/spec_builder.hpp"

namespace berth::spec {
namespace {

// Opens <rootfs>/<rel> with symlinks resolved as if rootfs were "/" (openat2 RESOLVE_IN_ROOT), so
// an image's /etc/passwd -> /host/path link can never reach the host's files.
Result<std::optional<std::string>> read_in_root(const std::string& rootfs, const char* rel) {
  UniqueFd root(::open(rootfs.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!root) {
    return fail_errno("open rootfs", rootfs);
  }
  open_how how{};
  how.flags = O_RDONLY | O_CLOEXEC;
  how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
  int fd = static_cast<int>(::syscall(SYS_openat2, root.get(), rel, &how, sizeof(how)));
  if (fd < 0) {
    if (errno == ENOENT) {
      return std::optional<std::string>{};
    }
    return fail_errno("open", rootfs + "/" + rel);
  }
  UniqueFd file(fd);
  std::string content;
  char buf[8192];
  for (;;) {
    ssize_t n = ::read(file.get(), buf, sizeof(buf));
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      return fail_errno("read", rootfs + "/" + rel);
    }
    if (n == 0) {
      break;
    }
    content.append(buf, static_cast<size_t>(n));
  }
  return std::optional<std::string>(std::move(content));
}

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  size_t start = 0;
  for (;;) {
    size_t pos = s.find(sep, start);
    out.push_back(s.substr(start, pos - start));
    if (pos == std::string::npos) {
      return out;
    }
    start = pos + 1;
  }
}

std::optional<uint32_t> parse_id(const std::string& s) {
  uint32_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc() || p != s.data() + s.size()) {
    return std::nullopt;
  }
  return v;
}

struct PasswdEntry {
  std::string name;
  uid_t uid;
  gid_t gid;
  std::string home;
};

struct GroupEntry {
  std::string name;
  gid_t gid;
  std::vector<std::string> members;
};

std::vector<PasswdEntry> parse_passwd(const std::string& content) {
  std::vector<PasswdEntry> out;
  std::istringstream in(content);
  std::string line;
  while (std::getline(in, line)) {
    auto f = split(line, ':');
    if (f.size() < 7 || f[0].empty() || f[0][0] == '#') {
      continue;
    }
    auto uid = parse_id(f[2]);
    auto gid = parse_id(f[3]);
    if (uid && gid) {
      out.push_back({f[0], *uid, *gid, f[5]});
    }
  }
  return out;
}

std::vector<GroupEntry> parse_group(const std::string& content) {
  std::vector<GroupEntry> out;
  std::istringstream in(content);
  std::string line;
  while (std::getline(in, line)) {
    auto f = split(line, ':');
    if (f.size() < 4 || f[0].empty() || f[0][0] == '#') {
      continue;
    }
    auto gid = parse_id(f[2]);
    if (!gid) {
      continue;
    }
    std::vector<std::string> members;
    if (!f[3].empty()) {
      members = split(f[3], ',');
    }
    out.push_back({f[0], *gid, std::move(members)});
  }
  return out;
}

}  // namespace

Result<ResolvedUser> resolve_user(const std::string& rootfs, const std::string& user) {
  ResolvedUser out;
  if (user.empty()) {
    out.name = "root";
    out.home = "/root";
  }
  std::string user_part = user.empty() ? "0" : user;
  std::string group_part;
  if (auto colon = user_part.find(':'); colon != std::string::npos) {
    group_part = user_part.substr(colon + 1);
    user_part = user_part.substr(0, colon);
  }
  BERTH_TRY(auto passwd, read_in_root(rootfs, "etc/passwd"));
  std::vector<PasswdEntry> users = passwd ? parse_passwd(*passwd) : std::vector<PasswdEntry>{};
  const auto numeric_uid = parse_id(user_part);
  const PasswdEntry* entry = nullptr;
  for (const auto& e : users) {
    if (numeric_uid ? e.uid == *numeric_uid : e.name == user_part) {
      entry = &e;
      break;
    }
  }
  if (entry) {
    out.uid = entry->uid;
    out.gid = entry->gid;
    out.home = entry->home.empty() ? "/" : entry->home;
    out.name = entry->name;
  } else if (numeric_uid) {
    out.uid = *numeric_uid;
    out.gid = 0;
    out.home = "/";
    out.name.clear();
  } else {
    return fail(Errc::NotFound, "user '" + user_part + "' not found in the image's /etc/passwd" +
                                    (passwd ? "" : " (the image has no /etc/passwd)") +
                                    " (use a numeric uid, e.g. --user 1000:1000)");
  }

  BERTH_TRY(auto group, read_in_root(rootfs, "etc/group"));
  std::vector<GroupEntry> groups = group ? parse_group(*group) : std::vector<GroupEntry>{};
  if (!group_part.empty()) {
    if (auto gid = parse_id(group_part)) {
      out.gid = *gid;
    } else {
      auto it = std::find_if(groups.begin(), groups.end(),
                             [&](const GroupEntry& g) { return g.name == group_part; });
      if (it == groups.end()) {
        return fail(
            Errc::NotFound,
            "group '" + group_part + "' not found in the image's /etc/group (use a numeric gid)");
      }
      out.gid = it->gid;
    }
  }
  if (!out.name.empty()) {
    for (const auto& g : groups) {
      bool member = std::find(g.members.begin(), g.members.end(), out.name) != g.members.end();
      bool known = std::find(out.additional_gids.begin(), out.additional_gids.end(), g.gid) !=
                   out.additional_gids.end();
      if (member && g.gid != out.gid && !known) {
        out.additional_gids.push_back(g.gid);
      }
    }
  }
  return out;
}

}  // namespace berth::spec
