#include "berth/spec/spec_builder.hpp"

#include <gtest/gtest.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

namespace fs = std::filesystem;
using berth::spec::build_spec;
using berth::spec::ImageConfig;
using berth::spec::SpecOptions;
using nlohmann::json;

namespace {

// --privileged and --cap-add ALL grant what this process's bounding set holds (as Podman).
size_t grantable_count() {
  size_t n = 0;
  for (size_t i = 0; i < berth::spec::all_capabilities().size(); ++i) {
    n += ::prctl(PR_CAPBSET_READ, static_cast<unsigned long>(i), 0, 0, 0) == 1 ? 1 : 0;
  }
  return n;
}

class TempDir {
 public:
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "berth-spec-XXXXXX").string();
    path_ = ::mkdtemp(tmpl.data());
  }
  ~TempDir() { fs::remove_all(path_); }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

void write(const fs::path& p, const std::string& content) {
  fs::create_directories(p.parent_path());
  std::ofstream(p) << content;
}

class SpecTest : public ::testing::Test {
 protected:
  void SetUp() override {
    rootfs_ = dir_.path() / "rootfs";
    write(rootfs_ / "etc/passwd",
          "root:x:0:0:root:/root:/bin/sh\nalice:x:1000:1000:Alice:/home/alice:/bin/sh\n"
          "bob:x:1001:1001::/home/bob:/bin/sh\n");
    write(rootfs_ / "etc/group",
          "root:x:0:\nalice:x:1000:\nbob:x:1001:\nwheel:x:10:alice,bob\naudio:x:29:alice\n");
    opts_.id = "0123456789abcdef0123";
    opts_.rootfs = rootfs_.string();
    image_.cmd = {"/bin/sh"};
  }
  json build() {
    auto spec = build_spec(image_, opts_);
    EXPECT_TRUE(spec.has_value()) << (spec ? "" : spec.error().message());
    return spec ? *spec : json{};
  }
  TempDir dir_;
  fs::path rootfs_;
  SpecOptions opts_;
  ImageConfig image_;
};

std::vector<std::string> strings(const json& j) {
  return j.get<std::vector<std::string>>();
}

const json* find_mount(const json& spec, const std::string& dst) {
  for (const auto& m : spec["mounts"]) {
    if (m["destination"] == dst) {
      return &m;
    }
  }
  return nullptr;
}

}  // namespace

TEST_F(SpecTest, DefaultsMatchPodman) {
  json spec = build();
  EXPECT_EQ(spec["ociVersion"], "1.0.2");
  EXPECT_EQ(spec["hostname"], "0123456789ab");
  auto caps = strings(spec["process"]["capabilities"]["bounding"]);
  std::vector<std::string> expected = {"CAP_CHOWN",   "CAP_DAC_OVERRIDE", "CAP_FOWNER",
                                       "CAP_FSETID",  "CAP_KILL",         "CAP_NET_BIND_SERVICE",
                                       "CAP_SETFCAP", "CAP_SETGID",       "CAP_SETPCAP",
                                       "CAP_SETUID",  "CAP_SYS_CHROOT"};
  EXPECT_EQ(caps, expected);
  EXPECT_EQ(strings(spec["process"]["capabilities"]["effective"]), expected);
  auto masked = strings(spec["linux"]["maskedPaths"]);
  for (const char* p : {"/proc/kcore", "/proc/keys", "/proc/acpi", "/sys/firmware",
                        "/proc/sched_debug", "/proc/timer_list"}) {
    EXPECT_NE(std::find(masked.begin(), masked.end(), p), masked.end()) << p;
  }
  auto ro = strings(spec["linux"]["readonlyPaths"]);
  EXPECT_NE(std::find(ro.begin(), ro.end(), "/proc/sys"), ro.end());
  EXPECT_NE(std::find(ro.begin(), ro.end(), "/proc/sysrq-trigger"), ro.end());
  ASSERT_NE(find_mount(spec, "/dev"), nullptr);
  auto dev_opts = strings((*find_mount(spec, "/dev"))["options"]);
  EXPECT_NE(std::find(dev_opts.begin(), dev_opts.end(), "size=65536k"), dev_opts.end());
  auto pts_opts = strings((*find_mount(spec, "/dev/pts"))["options"]);
  EXPECT_NE(std::find(pts_opts.begin(), pts_opts.end(), "newinstance"), pts_opts.end());
  EXPECT_NE(std::find(pts_opts.begin(), pts_opts.end(), "gid=5"), pts_opts.end());
  auto sys_opts = strings((*find_mount(spec, "/sys"))["options"]);
  EXPECT_NE(std::find(sys_opts.begin(), sys_opts.end(), "ro"), sys_opts.end());
  EXPECT_NE(find_mount(spec, "/dev/shm"), nullptr);
  EXPECT_NE(find_mount(spec, "/dev/mqueue"), nullptr);
  EXPECT_NE(find_mount(spec, "/sys/fs/cgroup"), nullptr);
  EXPECT_EQ(spec["linux"]["cgroupsPath"], "/berth/0123456789abcdef0123");
  std::vector<std::string> ns;
  for (const auto& n : spec["linux"]["namespaces"]) {
    ns.push_back(n["type"]);
  }
  for (const char* t : {"pid", "network", "ipc", "uts", "mount", "cgroup"}) {
    EXPECT_NE(std::find(ns.begin(), ns.end(), t), ns.end()) << t;
  }
  EXPECT_EQ(spec["process"]["args"], json::array({"/bin/sh"}));
  EXPECT_EQ(spec["process"]["cwd"], "/");
}

TEST_F(SpecTest, SeccompDefaultDeniesAndGatesOnCapabilities) {
  json spec = build();
  const json& sc = spec["linux"]["seccomp"];
  EXPECT_EQ(sc["defaultAction"], "SCMP_ACT_ERRNO");
  EXPECT_EQ(sc["architectures"][0], "SCMP_ARCH_X86_64");
  auto allowed = [&](const std::string& name) {
    for (const auto& r : sc["syscalls"]) {
      auto names = strings(r["names"]);
      if (r["action"] == "SCMP_ACT_ALLOW" && !r.contains("args") &&
          std::find(names.begin(), names.end(), name) != names.end()) {
        return true;
      }
    }
    return false;
  };
  EXPECT_TRUE(allowed("read"));
  EXPECT_TRUE(allowed("execve"));
  EXPECT_TRUE(allowed("chroot"));  // CAP_SYS_CHROOT is a default capability
  EXPECT_FALSE(allowed("ptrace"));
  EXPECT_FALSE(allowed("kexec_load"));
  EXPECT_FALSE(allowed("sethostname"));
  opts_.cap_add = {"SYS_PTRACE"};
  json with_ptrace = build();
  bool found = false;
  for (const auto& r : with_ptrace["linux"]["seccomp"]["syscalls"]) {
    auto names = strings(r["names"]);
    found |= r["action"] == "SCMP_ACT_ALLOW" &&
             std::find(names.begin(), names.end(), "ptrace") != names.end();
  }
  EXPECT_TRUE(found);
}

TEST_F(SpecTest, CapAddDropAndAll) {
  opts_.cap_drop = {"ALL"};
  opts_.cap_add = {"net_admin"};
  json spec = build();
  EXPECT_EQ(strings(spec["process"]["capabilities"]["bounding"]),
            std::vector<std::string>{"CAP_NET_ADMIN"});
  opts_.cap_drop = {"CAP_CHOWN", "KILL"};
  opts_.cap_add = {};
  auto caps = strings(build()["process"]["capabilities"]["bounding"]);
  EXPECT_EQ(std::find(caps.begin(), caps.end(), "CAP_CHOWN"), caps.end());
  EXPECT_EQ(std::find(caps.begin(), caps.end(), "CAP_KILL"), caps.end());
  EXPECT_EQ(caps.size(), 9u);
  opts_.cap_drop = {};
  opts_.cap_add = {"ALL"};
  EXPECT_EQ(build()["process"]["capabilities"]["bounding"].size(), grantable_count());
  opts_.cap_add = {"NOT_A_CAP"};
  auto bad = build_spec(image_, opts_);
  ASSERT_FALSE(bad.has_value());
  EXPECT_NE(bad.error().message().find("NOT_A_CAP"), std::string::npos);
}

TEST_F(SpecTest, UserByNameGetsGroupsAndHome) {
  opts_.user = "alice";
  json spec = build();
  EXPECT_EQ(spec["process"]["user"]["uid"], 1000);
  EXPECT_EQ(spec["process"]["user"]["gid"], 1000);
  EXPECT_EQ(spec["process"]["user"]["additionalGids"], json::array({10, 29}));
  auto env = strings(spec["process"]["env"]);
  EXPECT_NE(std::find(env.begin(), env.end(), "HOME=/home/alice"), env.end());
  // Non-root users keep only the bounding set, as Podman does.
  EXPECT_TRUE(spec["process"]["capabilities"]["effective"].empty());
}

TEST_F(SpecTest, UserForms) {
  auto r = berth::spec::resolve_user(rootfs_.string(), "bob:wheel");
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(r->uid, 1001u);
  EXPECT_EQ(r->gid, 10u);
  r = berth::spec::resolve_user(rootfs_.string(), "1000");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->gid, 1000u);
  EXPECT_EQ(r->home, "/home/alice");
  r = berth::spec::resolve_user(rootfs_.string(), "4242:4343");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->uid, 4242u);
  EXPECT_EQ(r->gid, 4343u);
  r = berth::spec::resolve_user(rootfs_.string(), "nobody");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), berth::Errc::NotFound);
  EXPECT_NE(r.error().message().find("nobody"), std::string::npos);
  r = berth::spec::resolve_user(rootfs_.string(), "alice:nogroup");
  ASSERT_FALSE(r);
}

TEST_F(SpecTest, NumericUserWorksWithoutPasswd) {
  fs::remove(rootfs_ / "etc/passwd");
  fs::remove(rootfs_ / "etc/group");
  auto r = berth::spec::resolve_user(rootfs_.string(), "123:456");
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(r->uid, 123u);
  EXPECT_EQ(r->gid, 456u);
  EXPECT_FALSE(berth::spec::resolve_user(rootfs_.string(), "alice"));
}

TEST_F(SpecTest, PasswdSymlinkCannotEscapeRootfs) {
  // A host file with a user the image does not have; the image links /etc/passwd to it.
  write(dir_.path() / "host/passwd", "evil:x:4444:4444::/evil:/bin/sh\n");
  fs::remove(rootfs_ / "etc/passwd");
  fs::create_symlink((dir_.path() / "host/passwd").string(), rootfs_ / "etc/passwd");
  auto r = berth::spec::resolve_user(rootfs_.string(), "evil");
  EXPECT_FALSE(r.has_value());
  fs::remove(rootfs_ / "etc/passwd");
  fs::create_symlink("../../../../../../../../" + (dir_.path() / "host/passwd").string(),
                     rootfs_ / "etc/passwd");
  EXPECT_FALSE(berth::spec::resolve_user(rootfs_.string(), "evil").has_value());
  // A link that stays inside the rootfs is followed.
  write(rootfs_ / "usr/share/passwd", "carol:x:77:77::/c:/bin/sh\n");
  fs::remove(rootfs_ / "etc/passwd");
  fs::create_symlink("/usr/share/passwd", rootfs_ / "etc/passwd");
  auto carol = berth::spec::resolve_user(rootfs_.string(), "carol");
  ASSERT_TRUE(carol) << carol.error().message();
  EXPECT_EQ(carol->uid, 77u);
}

TEST_F(SpecTest, EnvMergingLaterWins) {
  image_.env = {"PATH=/image/bin", "A=image", "B=image"};
  opts_.env = {"A=flag", "C=flag", "A=flag2"};
  auto env = strings(build()["process"]["env"]);
  EXPECT_EQ(env[0], "PATH=/image/bin");
  EXPECT_NE(std::find(env.begin(), env.end(), "A=flag2"), env.end());
  EXPECT_NE(std::find(env.begin(), env.end(), "B=image"), env.end());
  EXPECT_NE(std::find(env.begin(), env.end(), "C=flag"), env.end());
  EXPECT_EQ(std::count_if(env.begin(), env.end(),
                          [](const std::string& e) { return e.rfind("A=", 0) == 0; }),
            1);
  image_.env = {};
  auto defaults = strings(build()["process"]["env"]);
  EXPECT_EQ(defaults[0], berth::spec::kDefaultPath);
}

TEST_F(SpecTest, CommandOverrides) {
  image_.entrypoint = {"/entry"};
  image_.cmd = {"default"};
  EXPECT_EQ(build()["process"]["args"], json::array({"/entry", "default"}));
  opts_.args = std::vector<std::string>{"x"};
  EXPECT_EQ(build()["process"]["args"], json::array({"/entry", "x"}));
  opts_.entrypoint = std::vector<std::string>{"/other"};
  opts_.args.reset();
  EXPECT_EQ(build()["process"]["args"], json::array({"/other"}));
  opts_.init_path = "/usr/libexec/berth/catatonit";
  json spec = build();
  EXPECT_EQ(spec["process"]["args"], json::array({"/run/podman-init", "--", "/other"}));
  EXPECT_NE(find_mount(spec, "/run/podman-init"), nullptr);
  image_ = {};
  opts_.entrypoint.reset();
  EXPECT_FALSE(build_spec(image_, opts_).has_value());
}

TEST_F(SpecTest, RlimitsClampedToHardLimit) {
  rlimit rl{};
  ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &rl), 0);
  auto r = berth::spec::parse_ulimit("nofile=1024:1024");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->type, "RLIMIT_NOFILE");
  EXPECT_EQ(r->soft, std::min<uint64_t>(1024, rl.rlim_max));
  auto big = berth::spec::parse_ulimit("nofile=99999999:99999999");
  ASSERT_TRUE(big);
  EXPECT_EQ(big->hard, rl.rlim_max);
  EXPECT_EQ(big->soft, rl.rlim_max);
  EXPECT_FALSE(berth::spec::parse_ulimit("nofile=10:5"));
  EXPECT_FALSE(berth::spec::parse_ulimit("bogus=1"));
  EXPECT_FALSE(berth::spec::parse_ulimit("nofile"));
  // The default (Podman's 1048576) is clamped too.
  json spec = build();
  bool seen = false;
  for (const auto& l : spec["process"]["rlimits"]) {
    if (l["type"] == "RLIMIT_NOFILE") {
      seen = true;
      EXPECT_LE(l["hard"].get<uint64_t>(), rl.rlim_max);
    }
  }
  EXPECT_TRUE(seen);
}

TEST_F(SpecTest, OptionsPassThrough) {
  opts_.hostname = "web";
  opts_.read_only = true;
  opts_.tty = true;
  opts_.no_new_privileges = true;
  opts_.oom_score_adj = 500;
  opts_.sysctls = {{"net.ipv4.ip_forward", "1"}};
  opts_.labels = {{"a", "b"}};
  image_.labels = {{"maintainer", "x"}};
  opts_.network.kind = berth::spec::NamespaceMode::Kind::Host;
  opts_.resources = {{"memory", {{"limit", 1 << 26}}}};
  opts_.mounts = {{"/run/x/hosts", "/etc/hosts", {"ro"}}};
  json spec = build();
  EXPECT_EQ(spec["hostname"], "web");
  EXPECT_TRUE(spec["root"]["readonly"]);
  EXPECT_TRUE(spec["process"]["terminal"]);
  EXPECT_TRUE(spec["process"]["noNewPrivileges"]);
  EXPECT_EQ(spec["process"]["oomScoreAdj"], 500);
  EXPECT_EQ(spec["linux"]["sysctl"]["net.ipv4.ip_forward"], "1");
  EXPECT_EQ(spec["annotations"]["a"], "b");
  EXPECT_EQ(spec["annotations"]["maintainer"], "x");
  EXPECT_EQ(spec["linux"]["resources"]["memory"]["limit"], 1 << 26);
  for (const auto& n : spec["linux"]["namespaces"]) {
    EXPECT_NE(n["type"], "network");
  }
  const json* hosts = find_mount(spec, "/etc/hosts");
  ASSERT_NE(hosts, nullptr);
  EXPECT_EQ((*hosts)["options"], json::array({"rbind", "ro"}));
  auto env = strings(spec["process"]["env"]);
  EXPECT_NE(std::find(env.begin(), env.end(), "TERM=xterm"), env.end());
}

TEST_F(SpecTest, PrivilegedHasAllCapsNoSeccompNoMasks) {
  opts_.privileged = true;
  json spec = build();
  EXPECT_EQ(spec["process"]["capabilities"]["bounding"].size(), grantable_count());
  EXPECT_FALSE(spec["linux"].contains("seccomp"));
  EXPECT_FALSE(spec["linux"].contains("maskedPaths"));
}

TEST(ImageConfigTest, Parses) {
  auto cfg = berth::spec::parse_image_config(json::parse(R"({"Env":["A=1"],"Cmd":["sh"],
    "Entrypoint":null,"WorkingDir":"/w","User":"1:2","Labels":{"k":"v"},"StopSignal":"SIGINT"})"));
  ASSERT_TRUE(cfg);
  EXPECT_EQ(cfg->env, std::vector<std::string>{"A=1"});
  EXPECT_TRUE(cfg->entrypoint.empty());
  EXPECT_EQ(cfg->working_dir, "/w");
  EXPECT_EQ(cfg->labels.at("k"), "v");
  EXPECT_EQ(cfg->stop_signal, "SIGINT");
}
