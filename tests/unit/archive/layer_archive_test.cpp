// Layer extraction, tar creation, tree copy and usage (sdk/support). Runs as root: ownership,
// device nodes and trusted.* xattrs are part of what is checked.
#include "berth/sdk/layer_archive.hpp"

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "berth/sdk/unique_fd.hpp"

namespace fs = std::filesystem;
using berth::Errc;
using berth::UniqueFd;
using berth::sdk::ExtractOptions;
using berth::sdk::WhiteoutFormat;

namespace {

struct Spec {
  std::string name;
  mode_t type = AE_IFREG;
  mode_t perm = 0644;
  std::string content;
  std::string symlink;
  std::string hardlink;
  int64_t uid = 0;
  int64_t gid = 0;
  time_t mtime = 1700000000;
  unsigned rmajor = 0;
  unsigned rminor = 0;
  std::vector<std::pair<std::string, std::string>> xattrs;
};

Spec dir(std::string name, mode_t perm = 0755) {
  Spec s;
  s.name = std::move(name);
  s.type = AE_IFDIR;
  s.perm = perm;
  return s;
}
Spec file(std::string name, std::string content, mode_t perm = 0644) {
  Spec s;
  s.name = std::move(name);
  s.perm = perm;
  s.content = std::move(content);
  return s;
}
Spec symlink(std::string name, std::string target) {
  Spec s;
  s.name = std::move(name);
  s.type = AE_IFLNK;
  s.perm = 0777;
  s.symlink = std::move(target);
  return s;
}
Spec hardlink(std::string name, std::string target) {
  Spec s;
  s.name = std::move(name);
  s.hardlink = std::move(target);
  return s;
}
Spec node(std::string name, mode_t type, unsigned major, unsigned minor, mode_t perm = 0666) {
  Spec s;
  s.name = std::move(name);
  s.type = type;
  s.perm = perm;
  s.rmajor = major;
  s.rminor = minor;
  return s;
}

// Writes a tar with libarchive's write API, as an image builder would.
void write_tar(const fs::path& out, const std::vector<Spec>& specs,
               int filter = ARCHIVE_FILTER_NONE) {
  archive* a = archive_write_new();
  ASSERT_NE(a, nullptr);
  ASSERT_EQ(archive_write_set_format_pax_restricted(a), ARCHIVE_OK);
  if (filter == ARCHIVE_FILTER_GZIP) {
    ASSERT_EQ(archive_write_add_filter_gzip(a), ARCHIVE_OK);
  } else if (filter == ARCHIVE_FILTER_ZSTD) {
    ASSERT_EQ(archive_write_add_filter_zstd(a), ARCHIVE_OK);
  }
  ASSERT_EQ(archive_write_open_filename(a, out.c_str()), ARCHIVE_OK) << archive_error_string(a);
  for (const auto& s : specs) {
    archive_entry* e = archive_entry_new();
    archive_entry_set_pathname(e, s.name.c_str());
    archive_entry_set_filetype(e, s.hardlink.empty() ? s.type : AE_IFREG);
    archive_entry_set_perm(e, s.perm);
    archive_entry_set_uid(e, s.uid);
    archive_entry_set_gid(e, s.gid);
    archive_entry_set_mtime(e, s.mtime, 0);
    if (!s.symlink.empty()) {
      archive_entry_set_symlink(e, s.symlink.c_str());
    }
    if (!s.hardlink.empty()) {
      archive_entry_set_hardlink(e, s.hardlink.c_str());
    }
    if (s.type == AE_IFCHR || s.type == AE_IFBLK) {
      archive_entry_set_rdevmajor(e, s.rmajor);
      archive_entry_set_rdevminor(e, s.rminor);
    }
    for (const auto& [k, v] : s.xattrs) {
      archive_entry_xattr_add_entry(e, k.c_str(), v.data(), v.size());
    }
    archive_entry_set_size(e, static_cast<la_int64_t>(s.content.size()));
    ASSERT_EQ(archive_write_header(a, e), ARCHIVE_OK) << archive_error_string(a);
    if (!s.content.empty()) {
      ASSERT_EQ(archive_write_data(a, s.content.data(), s.content.size()),
                static_cast<la_ssize_t>(s.content.size()));
    }
    archive_entry_free(e);
  }
  ASSERT_EQ(archive_write_close(a), ARCHIVE_OK);
  archive_write_free(a);
}

std::string read_text(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string xattr_of(const fs::path& p, const std::string& name) {
  char buf[256];
  ssize_t n = ::lgetxattr(p.c_str(), name.c_str(), buf, sizeof(buf));
  return n < 0 ? std::string("<none>") : std::string(buf, static_cast<size_t>(n));
}

// Everything a user could observe about a tree, one line per path (hard links by group).
std::map<std::string, std::string> snapshot(const fs::path& root) {
  std::map<std::string, std::string> out;
  std::map<ino_t, std::string> first_path;
  std::vector<fs::path> paths;
  for (auto it = fs::recursive_directory_iterator(root); it != fs::recursive_directory_iterator();
       ++it) {
    paths.push_back(it->path());
  }
  std::sort(paths.begin(), paths.end());
  for (const auto& p : paths) {
    struct stat st;
    EXPECT_EQ(::lstat(p.c_str(), &st), 0) << p;
    std::string rel = p.lexically_relative(root).string();
    std::ostringstream d;
    d << std::oct << st.st_mode << std::dec << " " << st.st_uid << ":" << st.st_gid;
    if (!S_ISDIR(st.st_mode)) {
      d << " mtime=" << st.st_mtim.tv_sec;
    } else {
      d << " dmtime=" << st.st_mtim.tv_sec;
    }
    if (S_ISREG(st.st_mode)) {
      d << " content=" << read_text(p);
      auto [it, inserted] = first_path.emplace(st.st_ino, rel);
      d << " link=" << it->second;
    } else if (S_ISLNK(st.st_mode)) {
      d << " -> " << fs::read_symlink(p).string();
    } else if (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode)) {
      d << " rdev=" << major(st.st_rdev) << "," << minor(st.st_rdev);
    }
    char names[1024];
    ssize_t n = ::llistxattr(p.c_str(), names, sizeof(names));
    std::set<std::string> xs;
    for (ssize_t i = 0; i < n;) {
      std::string name(names + i);
      i += static_cast<ssize_t>(name.size()) + 1;
      xs.insert(name + "=" + xattr_of(p, name));
    }
    for (const auto& x : xs) {
      d << " " << x;
    }
    out[rel] = d.str();
  }
  return out;
}

// A v2 file capability granting cap_net_raw (permitted + effective).
std::string net_raw_capability() {
  std::string v(20, '\0');
  const uint32_t magic = 0x02000001;  // VFS_CAP_REVISION_2 | VFS_CAP_FLAGS_EFFECTIVE
  const uint32_t permitted = 1u << 13;
  std::memcpy(v.data(), &magic, 4);
  std::memcpy(v.data() + 4, &permitted, 4);
  return v;
}

std::set<std::string> names_under(const fs::path& root) {
  std::set<std::string> out;
  for (auto it = fs::recursive_directory_iterator(root); it != fs::recursive_directory_iterator();
       ++it) {
    out.insert(it->path().lexically_relative(root).string());
  }
  return out;
}

class ArchiveTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(::geteuid(), 0u) << "these tests need root (ownership, device nodes, xattrs)";
    char tmpl[] = "/var/tmp/berth-archive-test-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    base_ = tmpl;
    dest_ = base_ / "layer" / "root";
    fs::create_directories(dest_);
    sentinel_ = base_ / "sentinel";
    fs::create_directories(sentinel_);
    std::ofstream(sentinel_ / "passwd") << "root:x:0:0\n";
    sentinel_before_ = snapshot(sentinel_);
  }
  void TearDown() override {
    // Every test: nothing outside dest may have changed.
    EXPECT_EQ(snapshot(sentinel_), sentinel_before_);
    std::set<std::string> top;
    for (const auto& e : fs::directory_iterator(base_)) {
      top.insert(e.path().filename().string());
    }
    std::set<std::string> allowed = {"layer", "sentinel", "in.tar", "out.tar", "second", "copy"};
    for (const auto& t : top) {
      EXPECT_TRUE(allowed.contains(t)) << "unexpected file outside dest: " << t;
    }
    std::error_code ec;
    fs::remove_all(base_, ec);
  }

  berth::Result<berth::sdk::ExtractStats> extract(const std::vector<Spec>& specs,
                                                  const ExtractOptions& opts = {},
                                                  int filter = ARCHIVE_FILTER_NONE,
                                                  const fs::path& into = {}) {
    write_tar(base_ / "in.tar", specs, filter);
    return extract_file(base_ / "in.tar", into.empty() ? dest_ : into, opts);
  }
  berth::Result<berth::sdk::ExtractStats> extract_file(const fs::path& tar, const fs::path& into,
                                                       const ExtractOptions& opts = {}) {
    UniqueFd fd(::open(tar.c_str(), O_RDONLY | O_CLOEXEC));
    EXPECT_TRUE(fd);
    return berth::sdk::extract_layer(fd.get(), into, opts);
  }
  void expect_refused(const std::vector<Spec>& specs, const std::string& entry,
                      const ExtractOptions& opts = {}) {
    auto r = extract(specs, opts);
    ASSERT_FALSE(r.has_value()) << "archive with " << entry << " was accepted";
    EXPECT_EQ(r.error().code(), Errc::InvalidArgument) << r.error().message();
    EXPECT_NE(r.error().message().find(entry), std::string::npos) << r.error().message();
  }

  fs::path base_, dest_, sentinel_;
  std::map<std::string, std::string> sentinel_before_;
};

std::vector<Spec> normal_tree() {
  std::vector<Spec> t;
  t.push_back(dir("bin"));
  Spec su = file("bin/su", "#!su\n", 04755);
  su.xattrs = {{"user.origin", "test"}};
  t.push_back(su);
  t.push_back(hardlink("bin/su-link", "bin/su"));
  Spec ping = file("bin/ping", "ping", 0755);
  ping.xattrs = {{"security.capability", net_raw_capability()}};
  t.push_back(ping);
  t.push_back(dir("tmp", 01777));
  Spec home = dir("home/u", 0700);
  home.uid = 1000;
  home.gid = 1000;
  home.mtime = 1600000000;
  home.xattrs = {{"trusted.berth-test", "d"}};
  t.push_back(dir("home"));
  t.push_back(home);
  Spec f = file("home/u/notes", std::string(300000, 'x'), 0600);
  f.uid = 1000;
  f.gid = 1001;
  f.mtime = 1500000000;
  t.push_back(f);
  t.push_back(symlink("lib", "usr/lib"));
  t.push_back(symlink("bin/sh", "/usr/bin/dash"));
  t.push_back(dir("usr"));
  t.push_back(dir("usr/lib"));
  t.push_back(file("usr/lib/empty", ""));
  t.push_back(dir("dev"));
  t.push_back(node("dev/null", AE_IFCHR, 1, 3));
  t.push_back(node("dev/loop0", AE_IFBLK, 7, 0, 0660));
  t.push_back(node("dev/fifo", AE_IFIFO, 0, 0, 0640));
  return t;
}

TEST_F(ArchiveTest, ExtractsNormalTreeWithMetadata) {
  auto r = extract(normal_tree());
  ASSERT_TRUE(r.has_value()) << r.error().message();
  EXPECT_EQ(r->entries, normal_tree().size());
  EXPECT_EQ(r->bytes, 5u + 4u + 300000u);

  struct stat st;
  ASSERT_EQ(::lstat((dest_ / "bin/su").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 04755u);
  EXPECT_EQ(st.st_nlink, 2u);
  EXPECT_EQ(read_text(dest_ / "bin/su-link"), "#!su\n");
  EXPECT_EQ(xattr_of(dest_ / "bin/su", "user.origin"), "test");
  EXPECT_EQ(xattr_of(dest_ / "bin/ping", "security.capability"), net_raw_capability());
  ASSERT_EQ(::lstat((dest_ / "tmp").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 01777u);
  ASSERT_EQ(::lstat((dest_ / "home/u").c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, 1000u);
  EXPECT_EQ(st.st_mtim.tv_sec, 1600000000) << "directory times are set after their contents";
  EXPECT_EQ(xattr_of(dest_ / "home/u", "trusted.berth-test"), "d");
  ASSERT_EQ(::lstat((dest_ / "home/u/notes").c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, 1000u);
  EXPECT_EQ(st.st_gid, 1001u);
  EXPECT_EQ(st.st_size, 300000);
  EXPECT_EQ(st.st_mtim.tv_sec, 1500000000);
  EXPECT_EQ(fs::read_symlink(dest_ / "bin/sh"), "/usr/bin/dash");
  ASSERT_EQ(::lstat((dest_ / "dev/null").c_str(), &st), 0);
  EXPECT_TRUE(S_ISCHR(st.st_mode));
  EXPECT_EQ(st.st_rdev, makedev(1, 3));
  EXPECT_EQ(st.st_mode & 07777, 0666u);
  ASSERT_EQ(::lstat((dest_ / "dev/loop0").c_str(), &st), 0);
  EXPECT_TRUE(S_ISBLK(st.st_mode));
  ASSERT_EQ(::lstat((dest_ / "dev/fifo").c_str(), &st), 0);
  EXPECT_TRUE(S_ISFIFO(st.st_mode));
  EXPECT_EQ(st.st_mode & 07777, 0640u);
}

TEST_F(ArchiveTest, RoundTripThroughWriteTreeTarAndCopyTree) {
  ASSERT_TRUE(extract(normal_tree()).has_value());
  {
    UniqueFd out(
        ::open((base_ / "out.tar").c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
    ASSERT_TRUE(out);
    auto w = berth::sdk::write_tree_tar(dest_, out.get(), WhiteoutFormat::Delete);
    ASSERT_TRUE(w.has_value()) << w.error().message();
  }
  fs::create_directories(base_ / "second");
  auto r = extract_file(base_ / "out.tar", base_ / "second");
  ASSERT_TRUE(r.has_value()) << r.error().message();
  EXPECT_EQ(r->entries, normal_tree().size());
  auto first = snapshot(dest_);
  EXPECT_EQ(snapshot(base_ / "second"), first);

  fs::create_directories(base_ / "copy");
  auto c = berth::sdk::copy_tree(dest_, base_ / "copy");
  ASSERT_TRUE(c.has_value()) << c.error().message();
  EXPECT_EQ(snapshot(base_ / "copy"), first);

  auto u = berth::sdk::tree_usage(dest_);
  ASSERT_TRUE(u.has_value()) << u.error().message();
  EXPECT_EQ(u->bytes, 5u + 4u + 300000u) << "hard links are counted once";
  EXPECT_EQ(u->inodes, 1u + normal_tree().size() - 1u) << "root plus entries, one hard link less";
}

TEST_F(ArchiveTest, WriteTreeTarIsDeterministicAndRelative) {
  ASSERT_TRUE(extract(normal_tree()).has_value());
  std::vector<std::string> names;
  for (int i = 0; i < 2; ++i) {
    UniqueFd out(
        ::open((base_ / "out.tar").c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
    ASSERT_TRUE(berth::sdk::write_tree_tar(dest_, out.get(), WhiteoutFormat::Delete).has_value());
    out.reset();
    std::string bytes = read_text(base_ / "out.tar");
    archive* a = archive_read_new();
    archive_read_support_format_tar(a);
    ASSERT_EQ(archive_read_open_memory(a, bytes.data(), bytes.size()), ARCHIVE_OK);
    archive_entry* e;
    std::vector<std::string> now;
    while (archive_read_next_header(a, &e) == ARCHIVE_OK) {
      now.emplace_back(archive_entry_pathname(e));
    }
    archive_read_free(a);
    if (i == 1) {
      EXPECT_EQ(now, names);
    }
    names = now;
  }
  ASSERT_FALSE(names.empty());
  EXPECT_EQ(names.front(), "bin/") << "directories carry tar's trailing slash";
  for (const auto& n : names) {
    EXPECT_FALSE(n.starts_with("./") || n.starts_with("/")) << n;
  }
  auto pos = [&](const std::string& n) {
    return std::find(names.begin(), names.end(), n) - names.begin();
  };
  ASSERT_LT(pos("home/u/notes"), static_cast<long>(names.size()));
  EXPECT_LT(pos("home/"), pos("home/u/"));
  EXPECT_LT(pos("home/u/"), pos("home/u/notes"));
  EXPECT_LT(pos("bin/su"), pos("bin/su-link"));
}

TEST_F(ArchiveTest, OwnershipShiftAndSkip) {
  Spec f = file("f", "x");
  f.uid = 1000;
  f.gid = 2000;
  ExtractOptions shifted;
  shifted.uid_shift = 100000;
  shifted.gid_shift = 200000;
  ASSERT_TRUE(extract({f}, shifted).has_value());
  struct stat st;
  ASSERT_EQ(::lstat((dest_ / "f").c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, 101000u);
  EXPECT_EQ(st.st_gid, 202000u);

  ExtractOptions keep;
  keep.restore_ownership = false;
  ASSERT_TRUE(extract({file("g", "y")}, keep).has_value());
  f.name = "h";
  ASSERT_TRUE(extract({f}, keep).has_value());
  ASSERT_EQ(::lstat((dest_ / "h").c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, 0u) << "ownership from the archive is not restored";
}

TEST_F(ArchiveTest, ReplacesExistingEntriesAndKeepsRedeclaredDirs) {
  ASSERT_TRUE(extract({dir("d"), file("d/a", "1"), file("x", "old"), dir("y"), file("y/z", "z")})
                  .has_value());
  ASSERT_TRUE(extract({dir("d", 0700), file("x", "new"), file("y", "now a file")}).has_value());
  EXPECT_EQ(read_text(dest_ / "d/a"), "1");
  EXPECT_EQ(fs::status(dest_ / "d").permissions(), fs::perms::owner_all);
  EXPECT_EQ(read_text(dest_ / "x"), "new");
  EXPECT_EQ(read_text(dest_ / "y"), "now a file");
}

TEST_F(ArchiveTest, LastDeclarationOfADirectoryWins) {
  Spec first = dir("d", 0700);
  first.mtime = 1000000000;
  Spec second = dir("d", 0750);
  second.mtime = 1200000000;
  ASSERT_TRUE(extract({first, file("d/f", "x"), second}).has_value());
  struct stat st;
  ASSERT_EQ(::lstat((dest_ / "d").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0750u);
  EXPECT_EQ(st.st_mtim.tv_sec, 1200000000);
}

TEST_F(ArchiveTest, CreatesMissingParentsAndAcceptsDotSlashNames) {
  auto r = extract({file("./a/b/c", "deep"), file("./top", "t")});
  ASSERT_TRUE(r.has_value()) << r.error().message();
  EXPECT_EQ(read_text(dest_ / "a/b/c"), "deep");
  EXPECT_EQ(read_text(dest_ / "top"), "t");
  EXPECT_TRUE(fs::is_directory(dest_ / "a/b"));
}

TEST_F(ArchiveTest, RefusesDotDotEscape) {
  expect_refused({file("../sentinel/passwd", "owned")}, "../sentinel/passwd");
}

TEST_F(ArchiveTest, RefusesNestedDotDotEscape) {
  expect_refused({dir("a"), file("a/../../sentinel/passwd", "owned")}, "a/../../sentinel/passwd");
  expect_refused({file("a/../../../x", "owned")}, "a/../../../x");
}

TEST_F(ArchiveTest, AcceptsDotDotThatStaysInside) {
  auto r = extract({dir("a"), file("a/../b", "inside")});
  ASSERT_TRUE(r.has_value()) << r.error().message();
  EXPECT_EQ(read_text(dest_ / "b"), "inside");
}

TEST_F(ArchiveTest, RefusesAbsolutePath) {
  std::string abs = (sentinel_ / "passwd").string();
  expect_refused({file(abs, "owned")}, abs);
}

TEST_F(ArchiveTest, RefusesWriteThroughPlantedAbsoluteSymlink) {
  expect_refused({symlink("evil", sentinel_.string()), file("evil/passwd", "owned")},
                 "evil/passwd");
  expect_refused({symlink("evil2", sentinel_.string()), dir("evil2/sub")}, "evil2/sub");
}

TEST_F(ArchiveTest, RefusesWriteThroughSymlinkAlreadyInDest) {
  fs::create_directory_symlink("../../sentinel", dest_ / "pre");
  expect_refused({file("pre/passwd", "owned")}, "pre/passwd");
  expect_refused({file("pre/new", "owned")}, "pre/new");
}

TEST_F(ArchiveTest, RefusesRelativeSymlinkClimbingOut) {
  expect_refused({symlink("d", "../.."), file("d/x", "owned")}, "d");
  expect_refused({dir("a"), symlink("a/up", "../../sentinel")}, "a/up");
  // A relative symlink that stays inside is fine, but is never followed.
  auto r = extract({dir("b"), symlink("b/ok", "../b"), file("b/ok/x", "y")});
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code(), Errc::InvalidArgument);
}

TEST_F(ArchiveTest, RefusesSymlinkReplacingCachedParent) {
  // The parent "a" is cached after a/x; replacing it by a symlink must not keep writing into it.
  auto r = extract(
      {dir("a"), file("a/x", "1"), symlink("a", sentinel_.string()), file("a/passwd", "owned")});
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code(), Errc::InvalidArgument);
}

TEST_F(ArchiveTest, DirectoryRemovedAndRecreatedInTheSameArchive) {
  auto r = extract({dir("a"), file("a/x", "1"), file(".wh.a", ""), dir("a"), file("a/y", "2")});
  ASSERT_TRUE(r.has_value()) << r.error().message();
  EXPECT_EQ(names_under(dest_), (std::set<std::string>{"a", "a/y"}));
}

TEST_F(ArchiveTest, RefusesHardLinkEscapes) {
  expect_refused({hardlink("h", "../../sentinel/passwd")}, "h");
  expect_refused({hardlink("h2", (sentinel_ / "passwd").string())}, "h2");
  expect_refused({dir("sub"), file("sub/f", "f"), symlink("s", "sub"), hardlink("h3", "s/f")},
                 "h3");
  struct stat st;
  ASSERT_EQ(::lstat((sentinel_ / "passwd").c_str(), &st), 0);
  EXPECT_EQ(st.st_nlink, 1u);
}

TEST_F(ArchiveTest, RefusesDevicesWhenDisallowed) {
  ExtractOptions opts;
  opts.allow_devices = false;
  expect_refused({node("dev/sda", AE_IFBLK, 8, 0)}, "dev/sda", opts);
  expect_refused({node("dev/mem", AE_IFCHR, 1, 1)}, "dev/mem", opts);
  ASSERT_TRUE(extract({node("fifo", AE_IFIFO, 0, 0)}, opts).has_value()) << "fifos are not devices";
}

std::vector<Spec> lower_layer() {
  return {dir("a"),
          file("a/keep", "k"),
          file("a/gone", "g"),
          dir("d"),
          dir("d/x"),
          file("d/x/y", "y"),
          dir("o"),
          file("o/old1", "1"),
          dir("o/sub"),
          file("o/sub/old3", "3"),
          dir("p"),
          file("p/old", "o"),
          dir("q"),
          dir("q/keepdir"),
          file("q/keepdir/old", "o")};
}

std::vector<Spec> upper_layer() {
  return {file("a/.wh.gone", ""),
          file(".wh.d", ""),
          dir("o"),
          file("o/.wh..wh..opq", ""),  // marker before its siblings
          file("o/new", "n"),
          dir("p"),
          file("p/new", "n"),
          file("p/.wh..wh..opq", ""),  // marker after its siblings
          dir("q"),
          dir("q/keepdir"),
          file("q/keepdir/fresh", "f"),
          file("q/.wh..wh..opq", ""),
          file(".wh..wh.plnk", ""),
          file("a/.wh.never-existed", "")};
}

TEST_F(ArchiveTest, WhiteoutsInDeleteMode) {
  ASSERT_TRUE(extract(lower_layer()).has_value());
  auto r = extract(upper_layer());
  ASSERT_TRUE(r.has_value()) << r.error().message();
  EXPECT_EQ(names_under(dest_), (std::set<std::string>{"a", "a/keep", "o", "o/new", "p", "p/new",
                                                       "q", "q/keepdir", "q/keepdir/fresh"}));
}

TEST_F(ArchiveTest, WhiteoutsInOverlayMode) {
  ExtractOptions opts;
  opts.whiteouts = WhiteoutFormat::Overlay;
  auto r = extract(upper_layer(), opts);
  ASSERT_TRUE(r.has_value()) << r.error().message();
  for (const char* wh : {"a/gone", "d", "a/never-existed"}) {
    struct stat st;
    ASSERT_EQ(::lstat((dest_ / wh).c_str(), &st), 0) << wh;
    EXPECT_TRUE(S_ISCHR(st.st_mode)) << wh;
    EXPECT_EQ(st.st_rdev, makedev(0, 0)) << wh;
  }
  EXPECT_EQ(xattr_of(dest_ / "o", "trusted.overlay.opaque"), "y");
  EXPECT_EQ(xattr_of(dest_ / "p", "trusted.overlay.opaque"), "y");
  EXPECT_EQ(xattr_of(dest_ / "a", "trusted.overlay.opaque"), "<none>");
  EXPECT_EQ(xattr_of(dest_ / "q", "trusted.overlay.opaque"), "y");
  EXPECT_EQ(read_text(dest_ / "o/new"), "n");
  EXPECT_FALSE(fs::exists(dest_ / ".wh..wh.plnk"));
  EXPECT_FALSE(fs::exists(dest_ / "a/.wh.gone"));

  // Written back as a layer tar, the overlay forms become whiteout entries again.
  UniqueFd out(::open((base_ / "out.tar").c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
  ASSERT_TRUE(berth::sdk::write_tree_tar(dest_, out.get(), WhiteoutFormat::Overlay).has_value());
  out.reset();
  fs::create_directories(base_ / "second");
  ASSERT_TRUE(extract_file(base_ / "out.tar", base_ / "second", opts).has_value());
  EXPECT_EQ(snapshot(base_ / "second"), snapshot(dest_));
  std::string bytes = read_text(base_ / "out.tar");
  EXPECT_NE(bytes.find("a/.wh.gone"), std::string::npos);
  EXPECT_NE(bytes.find("o/.wh..wh..opq"), std::string::npos);
  EXPECT_EQ(bytes.find("trusted.overlay.opaque"), std::string::npos);
}

TEST_F(ArchiveTest, OpaqueLayerRootRoundTrips) {
  ExtractOptions opts;
  opts.whiteouts = WhiteoutFormat::Overlay;
  ASSERT_TRUE(extract({file(".wh..wh..opq", ""), file("only", "1")}, opts).has_value());
  EXPECT_EQ(xattr_of(dest_, "trusted.overlay.opaque"), "y");
  UniqueFd out(::open((base_ / "out.tar").c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
  ASSERT_TRUE(berth::sdk::write_tree_tar(dest_, out.get(), WhiteoutFormat::Overlay).has_value());
  out.reset();
  fs::create_directories(base_ / "second");
  ASSERT_TRUE(extract_file(base_ / "out.tar", base_ / "second", opts).has_value());
  EXPECT_EQ(xattr_of(base_ / "second", "trusted.overlay.opaque"), "y");
  EXPECT_EQ(read_text(base_ / "second/only"), "1");
}

TEST_F(ArchiveTest, CopyTreeKeepsOverlayWhiteoutsAndOpaqueDirs) {
  ExtractOptions opts;
  opts.whiteouts = WhiteoutFormat::Overlay;
  ASSERT_TRUE(extract(upper_layer(), opts).has_value());
  fs::create_directories(base_ / "copy");
  auto c = berth::sdk::copy_tree(dest_, base_ / "copy");
  ASSERT_TRUE(c.has_value()) << c.error().message();
  EXPECT_EQ(snapshot(base_ / "copy"), snapshot(dest_));
  EXPECT_EQ(xattr_of(base_ / "copy/o", "trusted.overlay.opaque"), "y");
}

TEST_F(ArchiveTest, OverlayMetadataXattrsFromArchiveAreIgnored) {
  Spec d = dir("d");
  d.xattrs = {{"trusted.overlay.redirect", "/etc"}, {"trusted.overlay.opaque", "y"}};
  ExtractOptions opts;
  opts.whiteouts = WhiteoutFormat::Overlay;
  ASSERT_TRUE(extract({d}, opts).has_value());
  EXPECT_EQ(xattr_of(dest_ / "d", "trusted.overlay.redirect"), "<none>");
  EXPECT_EQ(xattr_of(dest_ / "d", "trusted.overlay.opaque"), "<none>");
}

TEST_F(ArchiveTest, ReadsGzipAndZstd) {
  for (int filter : {ARCHIVE_FILTER_GZIP, ARCHIVE_FILTER_ZSTD}) {
    std::string name = "f" + std::to_string(filter);
    auto r = extract({dir("z"), file("z/" + name, std::string(100000, 'q'))}, {}, filter);
    ASSERT_TRUE(r.has_value()) << r.error().message();
    EXPECT_EQ(r->bytes, 100000u);
    EXPECT_EQ(read_text(dest_ / "z" / name), std::string(100000, 'q'));
  }
}

// One gzip member holding `data`, made with libarchive's raw writer.
std::string gzip_member(const std::string& data) {
  std::string out(data.size() + 65536, '\0');
  size_t used = 0;
  archive* a = archive_write_new();
  archive_write_set_format_raw(a);
  archive_write_add_filter_gzip(a);
  archive_write_set_bytes_in_last_block(a, 1);
  EXPECT_EQ(archive_write_open_memory(a, out.data(), out.size(), &used), ARCHIVE_OK);
  archive_entry* e = archive_entry_new();
  archive_entry_set_filetype(e, AE_IFREG);
  archive_entry_set_pathname(e, "raw");
  EXPECT_EQ(archive_write_header(a, e), ARCHIVE_OK);
  EXPECT_EQ(archive_write_data(a, data.data(), data.size()), static_cast<la_ssize_t>(data.size()));
  archive_entry_free(e);
  EXPECT_EQ(archive_write_close(a), ARCHIVE_OK);
  archive_write_free(a);
  out.resize(used);
  return out;
}

TEST_F(ArchiveTest, ReadsConcatenatedGzipMembers) {
  write_tar(base_ / "in.tar", {file("one", std::string(70000, '1')), file("two", "2")});
  std::string tar = read_text(base_ / "in.tar");
  std::string gz = gzip_member(tar.substr(0, 40000)) + gzip_member(tar.substr(40000));
  std::ofstream(base_ / "in.tar", std::ios::binary | std::ios::trunc) << gz;
  auto r = extract_file(base_ / "in.tar", dest_);
  ASSERT_TRUE(r.has_value()) << r.error().message();
  EXPECT_EQ(read_text(dest_ / "one"), std::string(70000, '1'));
  EXPECT_EQ(read_text(dest_ / "two"), "2");
}

TEST_F(ArchiveTest, CorruptGzipIsAnError) {
  write_tar(base_ / "in.tar", {file("a", std::string(100000, 'a'))}, ARCHIVE_FILTER_GZIP);
  std::string gz = read_text(base_ / "in.tar");
  for (size_t i = 40; i < gz.size() - 8; i += 7) {
    gz[i] = static_cast<char>(gz[i] ^ 0x5a);
  }
  std::ofstream(base_ / "in.tar", std::ios::binary | std::ios::trunc) << gz;
  auto r = extract_file(base_ / "in.tar", dest_);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code(), Errc::Corrupt) << r.error().message();
}

TEST_F(ArchiveTest, GarbageInputIsAnError) {
  std::ofstream(base_ / "in.tar") << std::string(5000, 'G');
  auto r = extract_file(base_ / "in.tar", dest_);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code(), Errc::Corrupt) << r.error().message();
}

TEST_F(ArchiveTest, TruncatedInputIsAnError) {
  for (int filter : {ARCHIVE_FILTER_NONE, ARCHIVE_FILTER_GZIP}) {
    std::string big;
    for (int i = 0; i < 200000; ++i) {
      big += std::to_string(i * 7919);
    }
    write_tar(base_ / "in.tar", {file("a", big), file("b", big)}, filter);
    auto size = fs::file_size(base_ / "in.tar");
    fs::resize_file(base_ / "in.tar", size / 2);
    auto r = extract_file(base_ / "in.tar", dest_);
    ASSERT_FALSE(r.has_value()) << "filter " << filter;
    EXPECT_EQ(r.error().code(), Errc::Corrupt) << r.error().message();
  }
}

TEST_F(ArchiveTest, MissingDestinationIsNotFound) {
  write_tar(base_ / "in.tar", {file("a", "b")});
  auto r = extract_file(base_ / "in.tar", base_ / "layer" / "missing");
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code(), Errc::NotFound);
  EXPECT_NE(r.error().message().find("missing"), std::string::npos);
}

}  // namespace
