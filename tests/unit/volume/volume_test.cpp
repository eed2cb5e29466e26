#include "berth/volume/volume.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/magic.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>

namespace berth::volume {
namespace {

namespace fs = std::filesystem;

class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/berth-volume-test-XXXXXX";
    path_ = ::mkdtemp(tmpl);
  }
  ~TempDir() {
    // A failed test may leave a tmpfs mounted.
    ::umount2((path_ / "volumes" / "t" / "_data").c_str(), MNT_DETACH);
    fs::remove_all(path_);
  }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

void write(const fs::path& p, const std::string& s) {
  fs::create_directories(p.parent_path());
  std::ofstream(p) << s;
}

std::string slurp(const fs::path& p) {
  std::ifstream in(p);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

class VolumeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    events::LogOptions lo;
    lo.path = tmp_.path() / "run" / "events" / "events.log";
    log_ = std::make_unique<events::EventLog>(lo);
    auto s = VolumeStore::open(vol_path(), tmp_.path() / "run", log_.get());
    ASSERT_TRUE(s) << s.error().message();
    store_ = std::move(*s);
  }
  fs::path vol_path() const { return tmp_.path() / "volumes"; }
  Volume create(const std::string& name, std::map<std::string, std::string> labels = {},
                std::map<std::string, std::string> options = {}) {
    CreateOptions o;
    o.name = name;
    o.labels = std::move(labels);
    o.options = std::move(options);
    auto v = store_->create(o);
    EXPECT_TRUE(v) << v.error().message();
    return v ? *v : Volume{};
  }
  std::vector<std::string> names(const std::vector<std::string>& filters,
                                 const UsedBy& used_by = {}) {
    auto l = store_->list(filters, used_by);
    EXPECT_TRUE(l) << l.error().message();
    std::vector<std::string> out;
    for (const auto& v : l.value_or(std::vector<Volume>{})) {
      out.push_back(v.name);
    }
    return out;
  }

  TempDir tmp_;
  std::unique_ptr<events::EventLog> log_;
  VolumeStorePtr store_;
};

TEST_F(VolumeTest, CreateGetAndInspectShape) {
  auto v = create("data", {{"app", "web"}});
  EXPECT_EQ(v.mountpoint, (vol_path() / "data" / "_data").string());
  EXPECT_TRUE(fs::is_directory(v.mountpoint));
  auto g = store_->get("data");
  ASSERT_TRUE(g);
  auto j = to_inspect_json(*g);
  EXPECT_EQ(j["Name"], "data");
  EXPECT_EQ(j["Driver"], "local");
  EXPECT_EQ(j["Scope"], "local");
  EXPECT_EQ(j["Labels"]["app"], "web");
  EXPECT_TRUE(j["Options"].is_object());
  EXPECT_EQ(j["MountCount"], 0);
  EXPECT_EQ(j["NeedsCopyUp"], true);
  EXPECT_EQ(j["NeedsChown"], true);
  EXPECT_TRUE(j.contains("LockNumber"));
  EXPECT_TRUE(std::regex_match(j["CreatedAt"].get<std::string>(),
                               std::regex(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d.*)")));
  EXPECT_TRUE(*store_->exists("data"));
  EXPECT_FALSE(*store_->exists("nope"));
}

TEST_F(VolumeTest, GeneratedNameIs64Hex) {
  auto v = create("");
  EXPECT_TRUE(std::regex_match(v.name, std::regex("[0-9a-f]{64}")));
}

TEST_F(VolumeTest, RefusesBadNamesDuplicatesDriversAndOptions) {
  CreateOptions o;
  o.name = "-bad";
  EXPECT_EQ(store_->create(o).error().code(), Errc::InvalidArgument);
  o.name = "../escape";
  EXPECT_EQ(store_->create(o).error().code(), Errc::InvalidArgument);
  create("dup");
  o.name = "dup";
  auto again = store_->create(o);
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code(), Errc::AlreadyExists);
  EXPECT_NE(again.error().message().find("volume with name dup already exists"), std::string::npos);
  o.ignore_existing = true;
  EXPECT_TRUE(store_->create(o));
  o.name = "x";
  o.ignore_existing = false;
  o.driver = "nfs-plugin";
  EXPECT_EQ(store_->create(o).error().code(), Errc::NotSupported);
  o.driver = "local";
  o.options = {{"colour", "red"}};
  auto bad = store_->create(o);
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message().find("unrecognized volume option \"colour\""), std::string::npos);
  EXPECT_FALSE(*store_->exists("x"));
}

TEST_F(VolumeTest, UidGidOptionsChownTheData) {
  auto v = create("owned", {}, {{"o", "uid=1234,gid=5678,size=1m"}});
  EXPECT_EQ(v.uid, 1234u);
  EXPECT_EQ(v.gid, 5678u);
  EXPECT_FALSE(v.needs_chown);
  EXPECT_EQ(v.options.at("o"), "size=1m");
  struct stat st {};
  ASSERT_EQ(::stat(v.mountpoint.c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, 1234u);
  EXPECT_EQ(st.st_gid, 5678u);
  auto w = create("owned2", {}, {{"uid", "42"}});
  EXPECT_EQ(w.uid, 42u);
  EXPECT_FALSE(w.gid);
}

TEST_F(VolumeTest, ListFilters) {
  create("alpha", {{"env", "prod"}});
  create("beta", {{"env", "dev"}, {"team", "x"}});
  create("gamma", {}, {{"type", "tmpfs"}, {"device", "tmpfs"}});
  EXPECT_EQ(names({}), (std::vector<std::string>{"alpha", "beta", "gamma"}));
  EXPECT_EQ(names({"name=^a"}), (std::vector<std::string>{"alpha"}));
  EXPECT_EQ(names({"name=alpha", "name=beta"}), (std::vector<std::string>{"alpha", "beta"}));
  EXPECT_EQ(names({"label=env"}), (std::vector<std::string>{"alpha", "beta"}));
  EXPECT_EQ(names({"label=env=dev"}), (std::vector<std::string>{"beta"}));
  EXPECT_EQ(names({"label!=env=dev"}), (std::vector<std::string>{"alpha", "gamma"}));
  EXPECT_EQ(names({"label=env", "name=^g"}), (std::vector<std::string>{}));
  EXPECT_EQ(names({"opt=type=tmpfs"}), (std::vector<std::string>{"gamma"}));
  EXPECT_EQ(names({"driver=local"}).size(), 3u);
  EXPECT_EQ(names({"until=1h"}).size(), 0u);  // all created in the last hour
  UsedBy used = [](const std::string& n) -> Result<std::vector<std::string>> {
    return n == "beta" ? std::vector<std::string>{"c1"} : std::vector<std::string>{};
  };
  EXPECT_EQ(names({"dangling=true"}, used), (std::vector<std::string>{"alpha", "gamma"}));
  EXPECT_EQ(names({"dangling=false"}, used), (std::vector<std::string>{"beta"}));
  EXPECT_FALSE(store_->list({"bogus=1"}));
  EXPECT_FALSE(store_->list({"dangling=maybe"}, used));
}

TEST_F(VolumeTest, RemoveRespectsUsersAndForce) {
  create("v");
  RemoveOptions ro;
  EXPECT_EQ(store_->remove("nope", ro).error().code(), Errc::NotFound);
  ro.used_by = [](const std::string&) -> Result<std::vector<std::string>> {
    return std::vector<std::string>{"c1"};
  };
  auto r = store_->remove("v", ro);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), Errc::Conflict);
  EXPECT_NE(r.error().message().find("c1"), std::string::npos);
  std::vector<std::string> removed_containers;
  ro.force = true;
  ro.remove_containers = [&](const std::vector<std::string>& ids,
                             std::optional<unsigned>) -> Result<void> {
    removed_containers = ids;
    return {};
  };
  ASSERT_TRUE(store_->remove("v", ro));
  EXPECT_EQ(removed_containers, (std::vector<std::string>{"c1"}));
  EXPECT_FALSE(*store_->exists("v"));
  EXPECT_FALSE(fs::exists(vol_path() / "v"));
}

TEST_F(VolumeTest, MountedVolumeNeedsForce) {
  create("m");
  ASSERT_TRUE(store_->acquire("m"));
  EXPECT_EQ(store_->get("m")->mount_count, 1u);
  auto r = store_->remove("m", {});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), Errc::Busy);
  RemoveOptions force;
  force.force = true;
  EXPECT_TRUE(store_->remove("m", force));
}

TEST_F(VolumeTest, PruneRemovesUnusedMatching) {
  create("keep", {{"keep", "1"}});
  create("used");
  create("drop");
  UsedBy used = [](const std::string& n) -> Result<std::vector<std::string>> {
    return n == "used" ? std::vector<std::string>{"c"} : std::vector<std::string>{};
  };
  auto removed = store_->prune({"label!=keep"}, used);
  ASSERT_TRUE(removed) << removed.error().message();
  EXPECT_EQ(*removed, (std::vector<std::string>{"drop"}));
  EXPECT_EQ(names({}), (std::vector<std::string>{"keep", "used"}));
  EXPECT_FALSE(store_->prune({"name=x"}, used));  // not a prune filter
}

TEST_F(VolumeTest, ExportImportRoundTrip) {
  auto a = create("a");
  write(fs::path(a.mountpoint) / "dir" / "f.txt", "hello");
  fs::create_symlink("dir/f.txt", fs::path(a.mountpoint) / "link");
  fs::path tar = tmp_.path() / "a.tar";
  {
    int fd = ::open(tar.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    ASSERT_GE(fd, 0);
    auto r = store_->export_tar("a", fd);
    ::close(fd);
    ASSERT_TRUE(r) << r.error().message();
  }
  auto b = create("b");
  int fd = ::open(tar.c_str(), O_RDONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  auto r = store_->import_tar("b", fd);
  ::close(fd);
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(slurp(fs::path(b.mountpoint) / "dir" / "f.txt"), "hello");
  EXPECT_EQ(fs::read_symlink(fs::path(b.mountpoint) / "link"), "dir/f.txt");
  EXPECT_EQ(store_->get("b")->mount_count, 0u);
  EXPECT_EQ(store_->export_tar("nope", 1).error().code(), Errc::NotFound);
}

TEST_F(VolumeTest, TmpfsVolumeMountedOnFirstUseAndUnmountedOnLast) {
  if (::geteuid() != 0) {
    GTEST_SKIP() << "mounting needs root";
  }
  auto v = create("t", {}, {{"type", "tmpfs"}, {"device", "tmpfs"}, {"o", "size=4m,mode=0750"}});
  EXPECT_TRUE(v.is_mount());
  auto magic = [&] {
    struct statfs s {};
    EXPECT_EQ(::statfs(v.mountpoint.c_str(), &s), 0);
    return static_cast<unsigned long>(s.f_type);
  };
  auto p1 = store_->acquire("t");
  ASSERT_TRUE(p1) << p1.error().message();
  EXPECT_EQ(*p1, v.mountpoint);
  EXPECT_EQ(magic(), TMPFS_MAGIC);
  ASSERT_TRUE(store_->acquire("t"));
  EXPECT_EQ(store_->get("t")->mount_count, 2u);
  write(fs::path(v.mountpoint) / "x", "1");
  ASSERT_TRUE(store_->release("t"));
  EXPECT_EQ(magic(), TMPFS_MAGIC);
  ASSERT_TRUE(store_->release("t"));
  EXPECT_NE(magic(), TMPFS_MAGIC);
  EXPECT_FALSE(fs::exists(fs::path(v.mountpoint) / "x"));  // the tmpfs content went with it
  EXPECT_EQ(store_->get("t")->mount_count, 0u);
  EXPECT_TRUE(store_->release("t"));  // an extra release is harmless
}

TEST_F(VolumeTest, MountLeftByAnotherRunRootIsReplacedNotStacked) {
  if (::geteuid() != 0) {
    GTEST_SKIP() << "mounting needs root";
  }
  auto v = create("t", {}, {{"type", "tmpfs"}, {"device", "tmpfs"}, {"o", "size=1m"}});
  ASSERT_TRUE(store_->acquire("t"));
  write(fs::path(v.mountpoint) / "old", "1");
  // A fresh run root over the same volumes (a reboot that left the mount, or --runroot changed).
  fs::remove(tmp_.path() / "run" / "volumes" / "t.mounts");
  auto p = store_->acquire("t");
  ASSERT_TRUE(p) << p.error().message();
  EXPECT_FALSE(fs::exists(fs::path(*p) / "old"));  // a new tmpfs, with the volume's options
  auto mounts_at = [&] {
    std::ifstream in("/proc/self/mountinfo");
    std::string line;
    int n = 0;
    while (std::getline(in, line)) {
      std::istringstream f(line);
      std::string id, parent, dev, root, mp;
      f >> id >> parent >> dev >> root >> mp;
      n += mp == v.mountpoint;
    }
    return n;
  };
  EXPECT_EQ(mounts_at(), 1);
  ASSERT_TRUE(store_->release("t"));
  EXPECT_EQ(mounts_at(), 0);
  EXPECT_EQ(store_->get("t")->mount_count, 0u);
}

TEST_F(VolumeTest, BindVolumeNeverDeletesHostData) {
  if (::geteuid() != 0) {
    GTEST_SKIP() << "mounting needs root";
  }
  fs::path host = tmp_.path() / "host-data";
  write(host / "precious", "keep me");
  auto v = create("t", {}, {{"type", "none"}, {"o", "bind"}, {"device", host.string()}});
  auto p = store_->acquire("t");
  ASSERT_TRUE(p) << p.error().message();
  EXPECT_EQ(slurp(fs::path(*p) / "precious"), "keep me");
  // Lose the mount count (as a wiped run root would) while the bind is still there.
  fs::remove(tmp_.path() / "run" / "volumes" / "t.mounts");
  auto r = store_->remove("t", {});
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(slurp(host / "precious"), "keep me");
  EXPECT_FALSE(*store_->exists("t"));
}

TEST_F(VolumeTest, CopyUpOnlyIntoAnEmptyNewVolume) {
  fs::path rootfs = tmp_.path() / "rootfs";
  write(rootfs / "srv" / "index.html", "<h1>");
  ::chmod((rootfs / "srv").c_str(), 0711);
  auto v = create("web");
  auto c = store_->copy_up("web", rootfs, "/srv");
  ASSERT_TRUE(c) << c.error().message();
  EXPECT_TRUE(*c);
  EXPECT_EQ(slurp(fs::path(v.mountpoint) / "index.html"), "<h1>");
  struct stat st {};
  ASSERT_EQ(::stat(v.mountpoint.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0711u);
  EXPECT_FALSE(store_->get("web")->needs_copy_up);
  // Second use: nothing copied again even after the volume was emptied.
  fs::remove(fs::path(v.mountpoint) / "index.html");
  EXPECT_FALSE(*store_->copy_up("web", rootfs, "/srv"));
  EXPECT_FALSE(fs::exists(fs::path(v.mountpoint) / "index.html"));
  // A volume with content is never overwritten.
  auto full = create("full");
  write(fs::path(full.mountpoint) / "mine", "x");
  EXPECT_FALSE(*store_->copy_up("full", rootfs, "/srv"));
  EXPECT_FALSE(fs::exists(fs::path(full.mountpoint) / "index.html"));
  // nocopy disables it.
  create("nc", {}, {{"nocopy", ""}});
  EXPECT_FALSE(*store_->copy_up("nc", rootfs, "/srv"));
}

TEST_F(VolumeTest, CopyUpNeverFollowsImageSymlinksOutOfTheRootfs) {
  fs::path rootfs = tmp_.path() / "rootfs";
  fs::create_directories(rootfs);
  write(tmp_.path() / "host-secret" / "key", "secret");
  fs::create_symlink(tmp_.path() / "host-secret", rootfs / "data");
  auto v = create("sym");
  auto c = store_->copy_up("sym", rootfs, "/data");
  ASSERT_TRUE(c) << c.error().message();
  EXPECT_FALSE(*c);
  EXPECT_FALSE(fs::exists(fs::path(v.mountpoint) / "key"));
}

TEST_F(VolumeTest, ChownForContainerOnce) {
  auto v = create("own");
  ASSERT_TRUE(store_->chown_for_container("own", 1000, 1000));
  struct stat st {};
  ASSERT_EQ(::stat(v.mountpoint.c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, 1000u);
  EXPECT_FALSE(store_->get("own")->needs_chown);
  ASSERT_TRUE(store_->chown_for_container("own", 2000, 2000));
  ASSERT_EQ(::stat(v.mountpoint.c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, 1000u);
}

TEST_F(VolumeTest, EmitsVolumeEvents) {
  create("ev");
  ASSERT_TRUE(store_->remove("ev", {}));
  std::vector<std::string> seen;
  ASSERT_TRUE(log_->read({}, [&](const events::Event& e) {
    seen.push_back(e.type + " " + e.status + " " + e.name);
    return true;
  }));
  EXPECT_EQ(seen, (std::vector<std::string>{"volume create ev", "volume remove ev"}));
}

TEST_F(VolumeTest, ConcurrentProcessesStayConsistent) {
  constexpr int kProcs = 8;
  constexpr int kEach = 12;
  std::vector<pid_t> pids;
  for (int p = 0; p < kProcs; ++p) {
    pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      auto s = VolumeStore::open(vol_path(), tmp_.path() / "run", log_.get());
      if (!s) {
        ::_exit(10);
      }
      for (int i = 0; i < kEach; ++i) {
        CreateOptions o;
        o.name = "p" + std::to_string(p) + "-" + std::to_string(i);
        if (!(*s)->create(o)) {
          ::_exit(11);
        }
        if (i % 2 == 1 && !(*s)->remove(o.name, {})) {
          ::_exit(12);
        }
      }
      // Every process races for the same name: exactly one wins.
      CreateOptions shared;
      shared.name = "shared";
      auto r = (*s)->create(shared);
      if (!r && r.error().code() != Errc::AlreadyExists) {
        ::_exit(13);
      }
      ::_exit(r ? 0 : 1);
    }
    pids.push_back(pid);
  }
  int winners = 0;
  for (auto pid : pids) {
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
    ASSERT_TRUE(WIFEXITED(status));
    ASSERT_LE(WEXITSTATUS(status), 1) << "child failed with " << WEXITSTATUS(status);
    winners += WEXITSTATUS(status) == 0 ? 1 : 0;
  }
  EXPECT_EQ(winners, 1);
  auto all = names({});
  EXPECT_EQ(all.size(), static_cast<size_t>(kProcs * kEach / 2 + 1));
  for (const auto& e : fs::directory_iterator(vol_path())) {
    auto n = e.path().filename().string();
    EXPECT_TRUE(n[0] != '.' || n == ".berth-volumes.lock") << "leftover " << n;
  }
  // Every create and remove was logged, each as a whole line.
  size_t creates = 0;
  ASSERT_TRUE(log_->read({}, [&](const events::Event& e) {
    creates += e.status == "create" ? 1 : 0;
    return true;
  }));
  EXPECT_EQ(creates, static_cast<size_t>(kProcs * kEach + 1));
}

}  // namespace
}  // namespace berth::volume
