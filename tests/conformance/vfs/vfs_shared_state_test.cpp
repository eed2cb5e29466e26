// Two vfs driver instances over one store stand for two berth processes: they must agree on
// mount counts (a layer mounted by one cannot be removed by the other) and see each other's layers.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "berth/sdk/plugin_file.hpp"
#include "berth/sdk/storage.hpp"
#include "berth/sdk/testing/conformance.hpp"
#include "berth/sdk/unique_fd.hpp"

namespace {

using berth::Errc;
using berth::sdk::LoadedPlugin;
using berth::sdk::StorageDriver;
using berth::sdk::StorageDriverPtr;
using berth::sdk::testing::TempDir;

class VfsSharedState : public ::testing::Test {
 protected:
  StorageDriverPtr driver() {
    auto plugin = LoadedPlugin::open(VFS_PLUGIN);
    EXPECT_TRUE(plugin.has_value()) << plugin.error().message();
    berth::sdk::PluginContext ctx;
    ctx.home = home_.path().string();
    ctx.run_root = run_.path().string();
    auto d = (*plugin)->create<StorageDriver>(ctx);
    EXPECT_TRUE(d.has_value()) << d.error().message();
    return std::move(*d);
  }
  TempDir home_{"berth-vfs-home-"};
  TempDir run_{"berth-vfs-run-"};
};

TEST_F(VfsSharedState, MountedLayerIsBusyForAnotherInstance) {
  auto a = driver();
  auto b = driver();
  ASSERT_TRUE(a->create("l", "", {}).has_value());
  EXPECT_TRUE(b->exists("l"));
  ASSERT_TRUE(a->mount("l", {}).has_value());
  auto r = b->remove("l");
  ASSERT_FALSE(r.has_value()) << "removed a layer another process has mounted";
  EXPECT_EQ(r.error().code(), Errc::Busy);
  EXPECT_NE(r.error().message().find("mounted 1 time"), std::string::npos) << r.error().message();
  ASSERT_TRUE(b->mount("l", {}).has_value());
  ASSERT_TRUE(a->unmount("l").has_value());
  EXPECT_FALSE(a->remove("l").has_value()) << "b still holds a mount";
  ASSERT_TRUE(b->unmount("l").has_value());
  ASSERT_TRUE(a->remove("l").has_value());
  EXPECT_FALSE(b->exists("l"));
}

TEST_F(VfsSharedState, CountsAgreeAcrossProcesses) {
  auto d = driver();
  ASSERT_TRUE(d->create("l", "", {}).has_value());
  constexpr int kChildren = 4;
  constexpr int kRounds = 50;
  pid_t pids[kChildren];
  for (int i = 0; i < kChildren; ++i) {
    pids[i] = ::fork();
    ASSERT_GE(pids[i], 0);
    if (pids[i] == 0) {
      // Each child process mounts kRounds times and unmounts all but one.
      bool ok = true;
      for (int r = 0; r < kRounds; ++r) {
        ok = ok && d->mount("l", {}).has_value();
      }
      for (int r = 0; r < kRounds - 1; ++r) {
        ok = ok && d->unmount("l").has_value();
      }
      ::_exit(ok ? 0 : 1);
    }
  }
  for (pid_t pid : pids) {
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  }
  // kChildren mounts remain: kChildren - 1 unmounts leave the layer busy, one more frees it.
  for (int i = 0; i < kChildren - 1; ++i) {
    ASSERT_TRUE(d->unmount("l").has_value());
  }
  auto busy = d->remove("l");
  ASSERT_FALSE(busy.has_value()) << "a lost update in the mount count";
  EXPECT_EQ(busy.error().code(), Errc::Busy);
  ASSERT_TRUE(d->unmount("l").has_value());
  EXPECT_TRUE(d->remove("l").has_value());
}

TEST_F(VfsSharedState, StartRemovesLeftoversOfKilledProcessesOnly) {
  namespace fs = std::filesystem;
  driver();  // lays out home
  const fs::path staging = home_.path() / "staging";
  // A layer half-copied by a process that was killed: nobody holds its lock.
  fs::create_directories(staging / "dead-abc123" / "usr/bin");
  std::ofstream(staging / "dead-abc123" / "usr/bin/sh") << "partial";
  // Work in progress of a live process: its lock is held.
  fs::create_directories(staging / "live-def456");
  berth::UniqueFd held(::open((staging / "live-def456").c_str(), O_RDONLY | O_DIRECTORY));
  ASSERT_TRUE(held);
  ASSERT_EQ(::flock(held.get(), LOCK_EX), 0);

  auto d = driver();
  EXPECT_FALSE(fs::exists(staging / "dead-abc123")) << "leftover of a killed process survived";
  EXPECT_TRUE(fs::exists(staging / "live-def456")) << "removed a live process's work";
}

}  // namespace
