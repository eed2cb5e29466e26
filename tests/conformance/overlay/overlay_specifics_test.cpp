// Overlay specifics beyond the storage suite: chains longer than one page of mount options, the
// kernel's limit of 500 lower layers, no mount left behind, counts shared between instances
// (processes), the native diff of a container's writes, the probe's and status's report.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>

#include "berth/sdk/layer_archive.hpp"
#include "berth/sdk/plugin_file.hpp"
#include "berth/sdk/storage.hpp"
#include "berth/sdk/testing/conformance.hpp"
#include "berth/sdk/testing/tar_builder.hpp"

namespace {

namespace fs = std::filesystem;
using berth::Errc;
using berth::sdk::CreateOptions;
using berth::sdk::LoadedPlugin;
using berth::sdk::MountOptions;
using berth::sdk::StorageDriver;
using berth::sdk::StorageDriverPtr;
using berth::sdk::testing::TarBuilder;
using berth::sdk::testing::TempDir;

std::string mountinfo() {
  std::ifstream in("/proc/self/mountinfo");
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Mount lines whose mount point lies under `dir`.
std::vector<std::string> mounts_under(const fs::path& dir) {
  std::vector<std::string> out;
  std::istringstream in(mountinfo());
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::string id, parent, devno, root, point;
    fields >> id >> parent >> devno >> root >> point;
    if (point == dir.string() || point.starts_with(dir.string() + "/")) {
      out.push_back(line);
    }
  }
  return out;
}

std::string read_text(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

CreateOptions rw() {
  CreateOptions o;
  o.read_write = true;
  return o;
}

class OverlaySpecifics : public ::testing::Test {
 protected:
  StorageDriverPtr driver(const std::string& options = "") {
    auto plugin = LoadedPlugin::open(OVERLAY_PLUGIN);
    EXPECT_TRUE(plugin.has_value()) << plugin.error().message();
    berth::sdk::PluginContext ctx;
    ctx.home = home_.path().string();
    ctx.run_root = run_.path().string();
    ctx.options_json = options;
    auto d = (*plugin)->create<StorageDriver>(ctx);
    EXPECT_TRUE(d.has_value()) << d.error().message();
    if (!d) {
      return nullptr;
    }
    return std::move(*d);
  }
  // A chain l0 <- l1 <- ... <- l<n-1>, each layer adding one file f<i>.
  void chain(StorageDriver& d, int n) {
    for (int i = 0; i < n; ++i) {
      const std::string id = "l" + std::to_string(i);
      ASSERT_TRUE(d.create(id, i == 0 ? "" : "l" + std::to_string(i - 1), {}).has_value()) << id;
      TarBuilder tar;
      tar.file("f" + std::to_string(i), std::to_string(i));
      auto fd = tar.finish();
      ASSERT_TRUE(fd.has_value());
      auto r = d.apply_diff(id, fd->get(), {});
      ASSERT_TRUE(r.has_value()) << r.error().message();
    }
  }
  void TearDown() override { EXPECT_TRUE(mounts_under(home_.path()).empty()) << mountinfo(); }

  TempDir home_{"berth-overlay-home-"};
  TempDir run_{"berth-overlay-run-"};
};

void check_long_chain(StorageDriver& d, int n, const fs::path& home) {
  const std::string top = "l" + std::to_string(n - 1);
  auto path = d.mount(top, MountOptions{});
  ASSERT_TRUE(path.has_value()) << path.error().message();
  for (int i : {0, n / 2, n - 1}) {
    EXPECT_EQ(read_text(fs::path(*path) / ("f" + std::to_string(i))), std::to_string(i));
  }
  EXPECT_FALSE(mounts_under(home).empty()) << "a layer with parents must be an overlay mount";
  ASSERT_TRUE(d.unmount(top).has_value());
  EXPECT_TRUE(mounts_under(home / top).empty()) << mountinfo();
}

// 200 layers of "l/<26 chars>:" are 5800 bytes, more than the 4096-byte page of mount options:
// the kernel's fsconfig lowerdir+ takes one layer at a time.
TEST_F(OverlaySpecifics, ChainOf200LayersMounts) {
  auto d = driver();
  ASSERT_TRUE(d);
  chain(*d, 200);
  check_long_chain(*d, 200, home_.path());
  EXPECT_TRUE(d->cleanup().has_value());
}

// fuse-overlayfs takes its options on the command line: no page limit either.
TEST_F(OverlaySpecifics, ChainOf200LayersMountsWithFuse) {
  auto d = driver(R"({"mount_program":"/usr/bin/fuse-overlayfs"})");
  ASSERT_TRUE(d);
  chain(*d, 200);
  check_long_chain(*d, 200, home_.path());
  EXPECT_TRUE(d->cleanup().has_value());
}

// Without lowerdir+ (older kernels), 26-character links relative to the home keep a chain of
// 120 layers (about 3500 bytes) within the page, where absolute paths would not fit.
TEST_F(OverlaySpecifics, ChainOf120LayersFitsThePageWithShortLinks) {
  auto d = driver(R"({"mount_api":"data"})");
  ASSERT_TRUE(d);
  ASSERT_GT((home_.path().string().size() + 30) * 120, 4096u) << "absolute paths must not fit";
  chain(*d, 120);
  check_long_chain(*d, 120, home_.path());
  // Beyond the page, the error says so and names the size.
  for (int i = 120; i < 160; ++i) {
    ASSERT_TRUE(d->create("l" + std::to_string(i), "l" + std::to_string(i - 1), {}).has_value());
  }
  auto r = d->mount("l159", MountOptions{});
  ASSERT_FALSE(r.has_value());
  EXPECT_NE(r.error().message().find("page"), std::string::npos) << r.error().message();
  EXPECT_TRUE(d->cleanup().has_value());
}

TEST_F(OverlaySpecifics, MoreThan500LowersIsAClearError) {
  auto d = driver();
  ASSERT_TRUE(d);
  for (int i = 0; i < 502; ++i) {
    ASSERT_TRUE(d->create("l" + std::to_string(i), i == 0 ? "" : "l" + std::to_string(i - 1), {})
                    .has_value());
  }
  // l500 read-only: its own diff and 500 parents = 501 lowers.
  auto r = d->mount("l500", MountOptions{});
  ASSERT_FALSE(r.has_value()) << "mounted 501 lower layers";
  EXPECT_EQ(r.error().code(), Errc::InvalidArgument);
  EXPECT_NE(r.error().message().find("501 lower layers"), std::string::npos) << r.error().message();
  EXPECT_NE(r.error().message().find("limit is 500"), std::string::npos) << r.error().message();
  // l499: exactly 500 lowers still mounts.
  auto ok = d->mount("l499", MountOptions{});
  ASSERT_TRUE(ok.has_value()) << ok.error().message();
  EXPECT_TRUE(fs::exists(fs::path(*ok) / "."));
  ASSERT_TRUE(d->unmount("l499").has_value());
  EXPECT_TRUE(d->cleanup().has_value());
}

TEST_F(OverlaySpecifics, CleanupReleasesEveryMountThisProcessHolds) {
  const auto before = mounts_under(home_.path());
  {
    auto d = driver();
    ASSERT_TRUE(d);
    chain(*d, 3);
    ASSERT_TRUE(d->create("ctr", "l2", rw()).has_value());
    ASSERT_TRUE(d->mount("ctr", {}).has_value());
    ASSERT_TRUE(d->mount("ctr", {}).has_value());
    ASSERT_TRUE(d->mount("l2", {}).has_value());
    EXPECT_GE(mounts_under(home_.path()).size(), 2u) << mountinfo();
    ASSERT_TRUE(d->cleanup().has_value());
    EXPECT_TRUE(d->remove("ctr").has_value()) << "cleanup must have released ctr's mounts";
  }
  EXPECT_TRUE(mounts_under(home_.path()).empty()) << mountinfo();
}

TEST_F(OverlaySpecifics, MountedLayerIsBusyForAnotherInstance) {
  auto a = driver();
  auto b = driver();
  ASSERT_TRUE(a && b);
  chain(*a, 2);
  ASSERT_TRUE(a->mount("l1", {}).has_value());
  auto r = b->remove("l1");
  ASSERT_FALSE(r.has_value()) << "removed a layer another process has mounted";
  EXPECT_EQ(r.error().code(), Errc::Busy);
  // b's mount shares a's: b's unmount leaves a's in place, the last unmount removes it.
  auto pb = b->mount("l1", {});
  ASSERT_TRUE(pb.has_value());
  ASSERT_TRUE(b->unmount("l1").has_value());
  EXPECT_EQ(read_text(fs::path(*pb) / "f0"), "0");
  ASSERT_TRUE(a->unmount("l1").has_value());
  EXPECT_TRUE(mounts_under(home_.path() / "l1").empty());
  auto parent = b->remove("l0");
  ASSERT_FALSE(parent.has_value()) << "removed the parent of l1";
  EXPECT_EQ(parent.error().code(), Errc::Conflict);
  EXPECT_TRUE(b->remove("l1").has_value());
  EXPECT_TRUE(b->remove("l0").has_value());
  EXPECT_FALSE(a->exists("l0"));
  EXPECT_TRUE(a->cleanup().has_value());
  EXPECT_TRUE(b->cleanup().has_value());
}

TEST_F(OverlaySpecifics, CountsAgreeAcrossProcesses) {
  auto d = driver();
  ASSERT_TRUE(d);
  chain(*d, 2);
  constexpr int kChildren = 4;
  constexpr int kRounds = 20;
  pid_t pids[kChildren];
  for (int i = 0; i < kChildren; ++i) {
    pids[i] = ::fork();
    ASSERT_GE(pids[i], 0);
    if (pids[i] == 0) {
      bool ok = true;
      for (int r = 0; r < kRounds; ++r) {
        ok = ok && d->mount("l1", {}).has_value();
      }
      for (int r = 0; r < kRounds - 1; ++r) {
        ok = ok && d->unmount("l1").has_value();
      }
      ::_exit(ok ? 0 : 1);
    }
  }
  for (pid_t pid : pids) {
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  }
  EXPECT_EQ(mounts_under(home_.path() / "l1").size(), 1u) << mountinfo();
  for (int i = 0; i < kChildren - 1; ++i) {
    ASSERT_TRUE(d->unmount("l1").has_value());
  }
  auto busy = d->remove("l1");
  ASSERT_FALSE(busy.has_value()) << "a lost update in the mount count";
  EXPECT_EQ(busy.error().code(), Errc::Busy);
  ASSERT_TRUE(d->unmount("l1").has_value());
  EXPECT_TRUE(mounts_under(home_.path() / "l1").empty()) << mountinfo();
  EXPECT_TRUE(d->remove("l1").has_value());
  EXPECT_TRUE(d->cleanup().has_value());
}

// A container's writes through the mount (a deletion, a directory replaced, a new file) come out
// of diff() and changes() as a layer would carry them: the upper dir is exactly the change.
void container_writes_diff(StorageDriver& d) {
  TarBuilder base;
  base.dir("etc").file("etc/keep", "keep").file("etc/gone", "gone").dir("data");
  base.file("data/old", "old");
  ASSERT_TRUE(d.create("image", "", {}).has_value());
  auto fd = base.finish();
  ASSERT_TRUE(fd.has_value());
  ASSERT_TRUE(d.apply_diff("image", fd->get(), {}).has_value());
  ASSERT_TRUE(d.create("ctr", "image", rw()).has_value());
  auto root = d.mount("ctr", {});
  ASSERT_TRUE(root.has_value()) << root.error().message();
  const fs::path r(*root);
  fs::remove(r / "etc/gone");
  fs::remove_all(r / "data");
  fs::create_directories(r / "data");
  std::ofstream(r / "data/new") << "new";
  std::ofstream(r / "added") << "added";
  ASSERT_TRUE(d.unmount("ctr").has_value());

  auto ch = d.changes("ctr", "image");
  ASSERT_TRUE(ch.has_value()) << ch.error().message();
  std::map<std::string, berth::sdk::Change::Kind> got;
  for (const auto& c : *ch) {
    got[c.path] = c.kind;
  }
  EXPECT_EQ(got.count("/etc/gone"), 1u);
  EXPECT_EQ(got["/etc/gone"], berth::sdk::Change::Kind::Deleted);
  EXPECT_EQ(got["/added"], berth::sdk::Change::Kind::Added);
  EXPECT_EQ(got["/data/new"], berth::sdk::Change::Kind::Added);
  EXPECT_EQ(got.count("/etc/keep"), 0u);

  auto tar = d.diff("ctr", "image");
  ASSERT_TRUE(tar.has_value()) << tar.error().message();
  ASSERT_TRUE(d.create("copy", "image", {}).has_value());
  auto applied = d.apply_diff("copy", tar->get(), {});
  ASSERT_TRUE(applied.has_value()) << applied.error().message();
  auto p = d.mount("copy", {});
  ASSERT_TRUE(p.has_value()) << p.error().message();
  const fs::path c(*p);
  EXPECT_FALSE(fs::exists(c / "etc/gone"));
  EXPECT_TRUE(fs::exists(c / "etc/keep"));
  EXPECT_FALSE(fs::exists(c / "data/old")) << "the replaced directory must be opaque";
  EXPECT_EQ(read_text(c / "data/new"), "new");
  EXPECT_EQ(read_text(c / "added"), "added");
  ASSERT_TRUE(d.unmount("copy").has_value());
}

TEST_F(OverlaySpecifics, ContainerWritesComeOutOfDiff) {
  auto d = driver();
  ASSERT_TRUE(d);
  container_writes_diff(*d);
  EXPECT_TRUE(d->cleanup().has_value());
}

TEST_F(OverlaySpecifics, ContainerWritesComeOutOfDiffWithFuse) {
  auto d = driver(R"({"mount_program":"/usr/bin/fuse-overlayfs"})");
  ASSERT_TRUE(d);
  container_writes_diff(*d);
  EXPECT_TRUE(d->cleanup().has_value());
}

// The pid of the process whose command line mentions `needle` (the FUSE daemon of a mount).
pid_t find_process(const std::string& needle) {
  for (const auto& e : fs::directory_iterator("/proc")) {
    const std::string name = e.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) {
      continue;
    }
    std::string cmd = read_text(e.path() / "cmdline");
    std::replace(cmd.begin(), cmd.end(), '\0', ' ');
    if (cmd.find("fuse-overlayfs") != std::string::npos && cmd.find(needle) != std::string::npos) {
      return static_cast<pid_t>(std::stol(name));
    }
  }
  return -1;
}

// fuse-overlayfs killed (OOM, a stray kill): the next mount replaces the dead mount rather than
// handing out a root that answers ENOTCONN, and unmounting still works.
TEST_F(OverlaySpecifics, KilledFuseDaemonIsReplacedAtNextMount) {
  auto d = driver(R"({"mount_program":"/usr/bin/fuse-overlayfs"})");
  ASSERT_TRUE(d);
  chain(*d, 2);
  auto p = d->mount("l1", {});
  ASSERT_TRUE(p.has_value()) << p.error().message();
  const pid_t daemon = find_process(*p);
  ASSERT_GT(daemon, 0) << "no fuse-overlayfs process for " << *p;
  ASSERT_EQ(::kill(daemon, SIGKILL), 0);
  for (int i = 0; i < 500 && ::kill(daemon, 0) == 0; ++i) {
    ::usleep(10000);
  }
  struct stat st {};
  ASSERT_NE(::stat((fs::path(*p) / "f0").c_str(), &st), 0) << "the daemon did not die";
  auto again = d->mount("l1", {});
  ASSERT_TRUE(again.has_value()) << again.error().message();
  int rc = ::stat((fs::path(*again) / "f0").c_str(), &st);
  EXPECT_EQ(rc, 0) << strerror(errno) << "\n" << mountinfo();
  EXPECT_EQ(read_text(fs::path(*again) / "f0"), "0");
  ASSERT_TRUE(d->unmount("l1").has_value());
  ASSERT_TRUE(d->unmount("l1").has_value());
  EXPECT_TRUE(mounts_under(home_.path() / "l1").empty()) << mountinfo();
  EXPECT_TRUE(d->cleanup().has_value());
}

TEST_F(OverlaySpecifics, ProbeAndStatusSayWhatIsUsed) {
  auto d = driver();
  ASSERT_TRUE(d);
  auto p = d->probe();
  EXPECT_TRUE(p.supported) << p.reason;
  EXPECT_TRUE(p.reason.starts_with("kernel overlayfs, native diff")) << p.reason;
  std::map<std::string, std::string> st;
  for (const auto& [k, v] : d->status()) {
    st[k] = v;
  }
  for (const char* k :
       {"Backing Filesystem", "Native Overlay Diff", "Supports d_type", "Using metacopy"}) {
    EXPECT_EQ(st.count(k), 1u) << k;
  }
  EXPECT_EQ(st["Native Overlay Diff"], "true");
  EXPECT_EQ(st["Supports d_type"], "true");
  EXPECT_TRUE(d->cleanup().has_value());

  auto f = driver(R"({"mount_program":"/usr/bin/fuse-overlayfs"})");
  ASSERT_TRUE(f);
  EXPECT_NE(f->probe().reason.find("fuse-overlayfs /usr/bin/fuse-overlayfs"), std::string::npos)
      << f->probe().reason;
  EXPECT_TRUE(f->cleanup().has_value());
}

// Processes creating the same id at once: exactly one wins, the others get AlreadyExists, and no
// half-made layer or staging directory stays behind.
TEST_F(OverlaySpecifics, ConcurrentCreatesOfOneIdAcrossProcesses) {
  auto d = driver();
  ASSERT_TRUE(d);
  chain(*d, 1);
  constexpr int kChildren = 6;
  pid_t pids[kChildren];
  for (int i = 0; i < kChildren; ++i) {
    pids[i] = ::fork();
    ASSERT_GE(pids[i], 0);
    if (pids[i] == 0) {
      auto r = d->create("same", "l0", rw());
      ::_exit(r ? 0 : (r.error().code() == Errc::AlreadyExists ? 1 : 2));
    }
  }
  int won = 0;
  for (pid_t pid : pids) {
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
    ASSERT_TRUE(WIFEXITED(status));
    ASSERT_NE(WEXITSTATUS(status), 2) << "a losing create must say AlreadyExists";
    won += WEXITSTATUS(status) == 0 ? 1 : 0;
  }
  EXPECT_EQ(won, 1);
  // Only the staging area's own lock file stays (sdk/staging_dir.hpp).
  for (const auto& e : fs::directory_iterator(home_.path() / "staging")) {
    EXPECT_EQ(e.path().filename(), ".lock") << "left behind: " << e.path();
  }
  auto p = d->mount("same", {});
  ASSERT_TRUE(p.has_value()) << p.error().message();
  EXPECT_EQ(read_text(fs::path(*p) / "f0"), "0");
  ASSERT_TRUE(d->unmount("same").has_value());
  EXPECT_TRUE(d->cleanup().has_value());
}

// A killed process's staging directory is removed at the next start, a mount inside it detached
// first (never deleted through); a live process's staging directory is left alone.
TEST_F(OverlaySpecifics, StartRemovesLeftoversOfKilledProcessesOnly) {
  driver()->cleanup();  // lays out home
  const fs::path staging = home_.path() / "staging";
  TempDir precious("berth-overlay-precious-");
  std::ofstream(precious.path() / "keep") << "keep";
  fs::create_directories(staging / "probe-dead01" / "merged");
  ASSERT_EQ(::mount(precious.path().c_str(), (staging / "probe-dead01" / "merged").c_str(), nullptr,
                    MS_BIND, nullptr),
            0);
  fs::create_directories(staging / "live-def456");
  berth::UniqueFd held(::open((staging / "live-def456").c_str(), O_RDONLY | O_DIRECTORY));
  ASSERT_TRUE(held);
  ASSERT_EQ(::flock(held.get(), LOCK_EX), 0);

  auto d = driver();
  ASSERT_TRUE(d);
  EXPECT_FALSE(fs::exists(staging / "probe-dead01")) << "leftover of a killed process survived";
  EXPECT_TRUE(fs::exists(staging / "live-def456")) << "removed a live process's work";
  EXPECT_EQ(read_text(precious.path() / "keep"), "keep") << "deleted through a mount";
  EXPECT_TRUE(d->cleanup().has_value());
}

TEST_F(OverlaySpecifics, BadOptionsAreRefusedByName) {
  auto plugin = LoadedPlugin::open(OVERLAY_PLUGIN);
  ASSERT_TRUE(plugin.has_value());
  for (const auto& [json, word] :
       std::map<std::string, std::string>{{R"({"mount_progam":"/x"})", "mount_progam"},
                                          {R"({"size":"10G"})", "size"},
                                          {R"({"skip_mount_home":"maybe"})", "skip_mount_home"},
                                          {"not json", "JSON"}}) {
    berth::sdk::PluginContext ctx;
    ctx.home = home_.path().string();
    ctx.run_root = run_.path().string();
    ctx.options_json = json;
    auto d = (*plugin)->create<StorageDriver>(ctx);
    ASSERT_FALSE(d.has_value()) << json;
    EXPECT_NE(d.error().message().find(word), std::string::npos) << d.error().message();
  }
}

}  // namespace
