// The runtime-oci plugin's driver against the host's runc, with the same busybox bundle as the
// native runtime's tests. Skipped without root or runc.
#include "oci_runtime.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "berth/spec/spec_builder.hpp"

namespace fs = std::filesystem;
using berth::sdk::ContainerStatus;
using nlohmann::json;

namespace {

std::string read_all(int fd) {
  std::string out;
  char buf[4096];
  ssize_t n;
  while ((n = ::read(fd, buf, sizeof(buf))) > 0) {
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

// Waits for a process that is not our child but was re-parented to us (sub-reaper).
int wait_exit(pid_t pid) {
  int status = 0;
  if (::waitpid(pid, &status, 0) != pid) {
    return -1;
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

class OciRuntimeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0 || ::access("/usr/sbin/runc", X_OK) != 0) {
      GTEST_SKIP() << "needs root and runc";
    }
    ASSERT_EQ(::prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
    char tmpl[] = "/tmp/berth-oci-XXXXXX";
    dir_ = ::mkdtemp(tmpl);
    bundle_ = dir_ / "bundle";
    fs::create_directories(bundle_ / "rootfs/bin");
    fs::copy_file("/bin/busybox", bundle_ / "rootfs/bin/busybox");
    for (const char* a : {"sh", "echo", "sleep", "cat"}) {
      fs::create_symlink("busybox", bundle_ / "rootfs/bin" / a);
    }
    id_ = "oci-" + std::to_string(::getpid()) + "-" +
          ::testing::UnitTest::GetInstance()->current_test_info()->name();
    berth::sdk::PluginContext ctx;
    ctx.run_root = (dir_ / "run").string();
    ctx.options_json = R"({"path": "/usr/sbin/runc"})";
    auto rt = berth::oci::make_oci_runtime(ctx);
    ASSERT_TRUE(rt) << rt.error().message();
    runtime_ = std::move(*rt);
  }
  void TearDown() override {
    if (runtime_) {
      (void)runtime_->remove(id_, true);
    }
    if (!dir_.empty()) {
      fs::remove_all(dir_);
    }
  }
  void write_spec(std::vector<std::string> args) {
    berth::spec::SpecOptions o;
    o.id = id_;
    o.rootfs = (bundle_ / "rootfs").string();
    o.args = std::move(args);
    o.hostname = "oci-test";
    auto spec = berth::spec::build_spec({}, o);
    ASSERT_TRUE(spec) << spec.error().message();
    std::ofstream(bundle_ / "config.json") << spec->dump();
  }
  fs::path dir_;
  fs::path bundle_;
  std::string id_;
  berth::sdk::RuntimePtr runtime_;
};

}  // namespace

TEST_F(OciRuntimeTest, CreateStartStateKillRemove) {
  write_spec({"sh", "-c", "echo $$ $(cat /proc/sys/kernel/hostname); sleep 1000"});
  int p[2];
  ASSERT_EQ(::pipe2(p, O_CLOEXEC), 0);
  berth::sdk::CreateRequest req;
  req.id = id_;
  req.bundle = bundle_.string();
  req.stdout_fd = p[1];
  auto pid = runtime_->create(req);
  ::close(p[1]);
  ASSERT_TRUE(pid) << pid.error().message();
  EXPECT_EQ(runtime_->state(id_)->status, ContainerStatus::Created);
  ASSERT_TRUE(runtime_->start(id_));
  char line[64] = {};
  ASSERT_GT(::read(p[0], line, sizeof(line) - 1), 0);
  EXPECT_EQ(std::string(line), "1 oci-test\n");
  EXPECT_EQ(runtime_->state(id_)->status, ContainerStatus::Running);

  int e[2];
  ASSERT_EQ(::pipe2(e, O_CLOEXEC), 0);
  berth::sdk::ExecRequest ex;
  ex.id = id_;
  ex.stdout_fd = e[1];
  ex.process_json =
      json{{"args", {"sh", "-c", "echo exec-ok"}}, {"env", {"PATH=/bin"}}, {"cwd", "/"}}.dump();
  auto epid = runtime_->exec(ex);
  ::close(e[1]);
  ASSERT_TRUE(epid) << epid.error().message();
  EXPECT_EQ(read_all(e[0]), "exec-ok\n");
  ::close(e[0]);
  wait_exit(*epid);

  ASSERT_TRUE(runtime_->kill(id_, SIGKILL, false));
  EXPECT_EQ(wait_exit(*pid), 128 + SIGKILL);
  ::close(p[0]);
  ASSERT_TRUE(runtime_->remove(id_, false));
  EXPECT_EQ(runtime_->state(id_).error().code(), berth::Errc::NotFound);
  EXPECT_TRUE(runtime_->remove(id_, false));
}

TEST_F(OciRuntimeTest, MissingExecutableIsNotFound) {
  write_spec({"/no/such/program"});
  berth::sdk::CreateRequest req;
  req.id = id_;
  req.bundle = bundle_.string();
  auto pid = runtime_->create(req);
  ASSERT_FALSE(pid);
  EXPECT_EQ(pid.error().code(), berth::Errc::NotFound) << pid.error().message();
  EXPECT_NE(pid.error().message().find("/no/such/program"), std::string::npos);
}
