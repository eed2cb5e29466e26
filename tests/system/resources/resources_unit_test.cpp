// Unit tests of the resource rules: the cgroupfs writes on v1 and v2 (against a fake hierarchy in
// a temporary directory, so v2 is covered on this v1 host), sizes, the OCI resources of the
// flags, and the spec parts (devices, masked paths, /dev/shm, additional groups).
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "berth/container/resource_ops.hpp"
#include "berth/spec/spec_builder.hpp"
#include "cgroups.hpp"

namespace {

namespace fs = std::filesystem;
using berth::runtime::Cgroups;
using nlohmann::json;

class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/berth-res-XXXXXX";
    path_ = ::mkdtemp(tmpl);
  }
  ~TempDir() { fs::remove_all(path_); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

void touch(const std::string& path, const std::string& content = "") {
  fs::create_directories(fs::path(path).parent_path());
  std::ofstream(path) << content;
}

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::string s((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return s;
}

TEST(CgroupsV2, AppliesMemoryCpuPidsAndIo) {
  TempDir t;
  const std::string d = t.path() + "/berth/c1";
  for (const char* f : {"memory.max", "memory.swap.max", "memory.low", "cpu.weight", "cpu.max",
                        "pids.max", "io.weight", "cpuset.cpus"}) {
    touch(d + "/" + f);
  }
  Cgroups cg = Cgroups::from_dirs(true, {d}, t.path());
  json r = {{"memory", {{"limit", 64 << 20}, {"swap", 128 << 20}, {"reservation", 32 << 20}}},
            {"cpu", {{"shares", 1024}, {"quota", 50000}, {"period", 100000}, {"cpus", "0"}}},
            {"pids", {{"limit", -1}}},
            {"blockIO", {{"weight", 500}}}};
  ASSERT_TRUE(cg.apply(r)) << cg.apply(r).error().message();
  EXPECT_EQ(slurp(d + "/memory.max"), std::to_string(64 << 20));
  // v2 limits the swap alone: memory+swap minus memory.
  EXPECT_EQ(slurp(d + "/memory.swap.max"), std::to_string(64 << 20));
  EXPECT_EQ(slurp(d + "/memory.low"), std::to_string(32 << 20));
  EXPECT_EQ(slurp(d + "/cpu.max"), "50000 100000");
  EXPECT_EQ(slurp(d + "/cpu.weight"), "39");  // runc's conversion of 1024 shares
  EXPECT_EQ(slurp(d + "/pids.max"), "max");
  EXPECT_EQ(slurp(d + "/io.weight"), "default 4950");
  EXPECT_EQ(slurp(d + "/cpuset.cpus"), "0");
}

TEST(CgroupsV2, UnlimitedSwapAndRefusedSwapBelowMemory) {
  TempDir t;
  const std::string d = t.path() + "/berth/c2";
  touch(d + "/memory.max");
  touch(d + "/memory.swap.max");
  Cgroups cg = Cgroups::from_dirs(true, {d}, t.path());
  ASSERT_TRUE(cg.apply({{"memory", {{"limit", 64 << 20}, {"swap", -1}}}}));
  EXPECT_EQ(slurp(d + "/memory.swap.max"), "max");
  auto bad = cg.apply({{"memory", {{"limit", 64 << 20}, {"swap", 32 << 20}}}});
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message().find("below the memory limit"), std::string::npos);
}

TEST(CgroupsV2, ReadsStats) {
  TempDir t;
  const std::string d = t.path() + "/berth/c3";
  touch(d + "/cpu.stat", "usage_usec 2500\nuser_usec 2000\nsystem_usec 500\n");
  touch(d + "/memory.current", "1048576\n");
  touch(d + "/memory.max", "max\n");
  touch(d + "/memory.stat", "anon 4096\nfile 8192\ninactive_file 4096\n");
  touch(d + "/pids.current", "3\n");
  touch(d + "/io.stat", "8:0 rbytes=100 wbytes=200 rios=1 wios=2\n8:16 rbytes=1 wbytes=2\n");
  auto s = Cgroups::from_dirs(true, {d}, t.path()).stats();
  ASSERT_TRUE(s);
  EXPECT_EQ(s->cpu_nanos, 2500000u);
  EXPECT_EQ(s->mem_usage, 1048576u);
  EXPECT_EQ(s->mem_limit, 0u);
  EXPECT_EQ(s->mem_inactive, 4096u);
  EXPECT_EQ(s->pids, 3u);
  EXPECT_EQ(s->io_read, 101u);
  EXPECT_EQ(s->io_write, 202u);
}

TEST(CgroupsV1, WritesEachControllerInItsHierarchy) {
  TempDir t;
  const std::string root = t.path();
  auto dir = [&](const char* h) { return root + "/" + h + "/berth/c4"; };
  touch(dir("memory") + "/memory.limit_in_bytes", "9223372036854771712");
  touch(dir("memory") + "/memory.memsw.limit_in_bytes");
  touch(dir("memory") + "/memory.soft_limit_in_bytes");
  touch(dir("memory") + "/memory.oom_control");
  touch(dir("cpu") + "/cpu.shares");
  touch(dir("cpu") + "/cpu.cfs_period_us");
  touch(dir("cpu") + "/cpu.cfs_quota_us");
  touch(dir("pids") + "/pids.max");
  touch(dir("blkio") + "/blkio.bfq.weight");
  touch(dir("cpuset") + "/cpuset.cpus");
  Cgroups cg = Cgroups::from_dirs(
      false, {dir("memory"), dir("cpu"), dir("pids"), dir("blkio"), dir("cpuset")}, root);
  json r = {{"memory", {{"limit", 64 << 20}, {"swap", 64 << 20}, {"disableOOMKiller", true}}},
            {"cpu", {{"shares", 512}, {"quota", 150000}, {"period", 100000}, {"cpus", "0-1"}}},
            {"pids", {{"limit", 20}}},
            {"blockIO", {{"weight", 300}}}};
  auto applied = cg.apply(r);
  ASSERT_TRUE(applied) << applied.error().message();
  EXPECT_EQ(slurp(dir("memory") + "/memory.memsw.limit_in_bytes"), std::to_string(64 << 20));
  EXPECT_EQ(slurp(dir("memory") + "/memory.oom_control"), "1");
  EXPECT_EQ(slurp(dir("cpu") + "/cpu.shares"), "512");
  EXPECT_EQ(slurp(dir("cpu") + "/cpu.cfs_quota_us"), "150000");
  EXPECT_EQ(slurp(dir("cpu") + "/cpu.cfs_period_us"), "100000");
  EXPECT_EQ(slurp(dir("pids") + "/pids.max"), "20");
  // No blkio.weight (no CFQ): the BFQ file takes the weight.
  EXPECT_EQ(slurp(dir("blkio") + "/blkio.bfq.weight"), "300");
  EXPECT_EQ(slurp(dir("cpuset") + "/cpuset.cpus"), "0-1");
}

TEST(CgroupsV1, MissingControllerIsNamed) {
  TempDir t;
  const std::string d = t.path() + "/memory/berth/c5";
  touch(d + "/memory.limit_in_bytes");
  Cgroups cg = Cgroups::from_dirs(false, {d}, t.path());
  auto r = cg.apply({{"pids", {{"limit", 5}}}});
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message().find("pids cgroup controller is not mounted"), std::string::npos);
}

TEST(RamBytes, ParsesPodmanSizes) {
  EXPECT_EQ(*berth::container::parse_ram_bytes("512m"), 512LL << 20);
  EXPECT_EQ(*berth::container::parse_ram_bytes("1.5g"), 3LL << 29);
  EXPECT_EQ(*berth::container::parse_ram_bytes("64KiB"), 64LL << 10);
  EXPECT_EQ(*berth::container::parse_ram_bytes("64kb"), 64LL << 10);
  EXPECT_EQ(*berth::container::parse_ram_bytes("1000"), 1000);
  EXPECT_EQ(*berth::container::parse_ram_bytes("1000b"), 1000);
  EXPECT_FALSE(berth::container::parse_ram_bytes("lots"));
  EXPECT_FALSE(berth::container::parse_ram_bytes("12x"));
  EXPECT_FALSE(berth::container::parse_ram_bytes("-5m"));
}

TEST(ResourcesToOci, FollowsPodmansRules) {
  berth::container::ResourceOptions o;
  o.memory = 64LL << 20;
  o.cpus = 0.5;
  o.cpu_shares = 512;
  o.pids_limit = 100;
  o.oom_kill_disable = true;
  auto r = berth::container::resources_to_oci(o);
  ASSERT_TRUE(r);
  EXPECT_EQ((*r)["memory"]["limit"], 64LL << 20);
  EXPECT_EQ((*r)["memory"]["swap"], 128LL << 20);  // as much swap as memory
  EXPECT_EQ((*r)["memory"]["disableOOMKiller"], true);
  EXPECT_EQ((*r)["cpu"]["quota"], 50000);
  EXPECT_EQ((*r)["cpu"]["period"], 100000);
  EXPECT_EQ((*r)["cpu"]["shares"], 512);
  EXPECT_EQ((*r)["pids"]["limit"], 100);

  berth::container::ResourceOptions swap_only;
  swap_only.memory_swap = 64LL << 20;
  EXPECT_FALSE(berth::container::resources_to_oci(swap_only));
  berth::container::ResourceOptions tiny;
  tiny.memory = 1 << 20;
  EXPECT_FALSE(berth::container::resources_to_oci(tiny));
  berth::container::ResourceOptions below;
  below.memory = 64LL << 20;
  below.memory_swap = 32LL << 20;
  EXPECT_FALSE(berth::container::resources_to_oci(below));
  berth::container::ResourceOptions many;
  many.cpus = 100000;
  auto e = berth::container::resources_to_oci(many);
  ASSERT_FALSE(e);
  EXPECT_NE(e.error().message().find("range of CPUs"), std::string::npos);
}

class SpecTest : public ::testing::Test {
 protected:
  void SetUp() override {
    touch(root_.path() + "/etc/passwd", "root:x:0:0:root:/root:/bin/sh\n");
    touch(root_.path() + "/etc/group", "root:x:0:\naudio:x:29:\n");
    so_.id = "0123456789abcdef";
    so_.rootfs = root_.path();
    so_.args = std::vector<std::string>{"/bin/sh"};
  }
  TempDir root_;
  berth::spec::SpecOptions so_;
};

TEST_F(SpecTest, DevicesShmAndGroups) {
  so_.devices.push_back(json{{"path", "/dev/mynull"}, {"type", "c"}, {"major", 1}, {"minor", 3}});
  so_.shm_size = 128LL << 20;
  so_.group_add = {"audio", "1234"};
  auto spec = berth::spec::build_spec({}, so_);
  ASSERT_TRUE(spec) << spec.error().message();
  EXPECT_EQ((*spec)["linux"]["devices"][0]["path"], "/dev/mynull");
  bool shm = false;
  for (const auto& m : (*spec)["mounts"]) {
    if (m["destination"] == "/dev/shm") {
      shm = true;
      auto opts = m["options"].get<std::vector<std::string>>();
      EXPECT_NE(std::find(opts.begin(), opts.end(), "size=" + std::to_string(128LL << 20)),
                opts.end());
    }
  }
  EXPECT_TRUE(shm);
  auto gids = (*spec)["process"]["user"]["additionalGids"].get<std::vector<unsigned>>();
  EXPECT_EQ(gids, (std::vector<unsigned>{29, 1234}));

  so_.group_add = {"nosuchgroup"};
  auto bad = berth::spec::build_spec({}, so_);
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message().find("--group-add nosuchgroup"), std::string::npos);
}

std::vector<std::string> caps_of(const json& spec, const char* set) {
  return spec["process"]["capabilities"][set].get<std::vector<std::string>>();
}

// containers.conf default_capabilities is the set the container starts from, in any case and
// with or without CAP_; --cap-add/--cap-drop apply on top.
TEST_F(SpecTest, DefaultCapabilitiesFromConfig) {
  so_.default_caps = std::vector<std::string>{"chown", "CAP_KILL", "Net_Raw"};
  auto spec = berth::spec::build_spec({}, so_);
  ASSERT_TRUE(spec) << spec.error().message();
  const std::vector<std::string> want{"CAP_CHOWN", "CAP_KILL", "CAP_NET_RAW"};
  EXPECT_EQ(caps_of(*spec, "bounding"), want);
  EXPECT_EQ(caps_of(*spec, "effective"), want);

  so_.cap_add = {"NET_ADMIN"};
  so_.cap_drop = {"kill"};
  spec = berth::spec::build_spec({}, so_);
  ASSERT_TRUE(spec) << spec.error().message();
  EXPECT_EQ(caps_of(*spec, "bounding"),
            (std::vector<std::string>{"CAP_CHOWN", "CAP_NET_RAW", "CAP_NET_ADMIN"}));

  // An empty list is no capabilities at all, not the compiled-in set.
  so_.cap_add.clear();
  so_.cap_drop.clear();
  so_.default_caps = std::vector<std::string>{};
  spec = berth::spec::build_spec({}, so_);
  ASSERT_TRUE(spec) << spec.error().message();
  EXPECT_TRUE(caps_of(*spec, "bounding").empty());

  // --privileged ignores the list.
  so_.privileged = true;
  spec = berth::spec::build_spec({}, so_);
  ASSERT_TRUE(spec) << spec.error().message();
  EXPECT_GT(caps_of(*spec, "bounding").size(), 11u);
}

TEST_F(SpecTest, UnknownDefaultCapabilityNamesTheKeyAndFile) {
  so_.default_caps = std::vector<std::string>{"CHOWN", "NET_BOGUS"};
  so_.default_caps_origin = "containers.conf default_capabilities (/etc/containers/x.conf)";
  auto spec = berth::spec::build_spec({}, so_);
  ASSERT_FALSE(spec);
  const std::string msg = spec.error().message();
  EXPECT_NE(msg.find("containers.conf default_capabilities (/etc/containers/x.conf)"),
            std::string::npos)
      << msg;
  EXPECT_NE(msg.find("NET_BOGUS"), std::string::npos) << msg;
  // Also where the list does not apply.
  so_.cap_drop = {"ALL"};
  EXPECT_FALSE(berth::spec::build_spec({}, so_));
  so_.cap_drop.clear();
  so_.privileged = true;
  EXPECT_FALSE(berth::spec::build_spec({}, so_));
  so_.privileged = false;
  // "ALL" is a --cap-add word, not a capability.
  so_.default_caps = std::vector<std::string>{"ALL"};
  EXPECT_FALSE(berth::spec::build_spec({}, so_));
}

TEST(DefaultCapabilities, StockListAndDockerSet) {
  using berth::spec::is_stock_default_capabilities;
  EXPECT_TRUE(is_stock_default_capabilities(berth::spec::default_capabilities()));
  // Debian's /usr/share/containers/containers.conf spelling, in another order.
  EXPECT_TRUE(is_stock_default_capabilities({"SYS_CHROOT", "CHOWN", "DAC_OVERRIDE", "FOWNER",
                                             "FSETID", "KILL", "NET_BIND_SERVICE", "SETFCAP",
                                             "SETGID", "SETPCAP", "setuid"}));
  EXPECT_FALSE(is_stock_default_capabilities({"CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL",
                                              "NET_BIND_SERVICE", "SETFCAP", "SETGID", "SETPCAP",
                                              "SETUID"}));
  EXPECT_FALSE(is_stock_default_capabilities(berth::spec::docker_default_capabilities()));
  auto docker = berth::spec::docker_default_capabilities();
  EXPECT_EQ(docker.size(), 14u);
  for (const char* c : {"CAP_AUDIT_WRITE", "CAP_MKNOD", "CAP_NET_RAW"}) {
    EXPECT_NE(std::find(docker.begin(), docker.end(), c), docker.end()) << c;
  }
}

TEST_F(SpecTest, MaskAndUnmask) {
  so_.unmask_paths = {"/proc/kcore", "/sys/firmware"};
  so_.mask_paths = {"/root"};
  auto spec = berth::spec::build_spec({}, so_);
  ASSERT_TRUE(spec);
  auto masked = (*spec)["linux"]["maskedPaths"].get<std::vector<std::string>>();
  EXPECT_EQ(std::find(masked.begin(), masked.end(), "/proc/kcore"), masked.end());
  EXPECT_NE(std::find(masked.begin(), masked.end(), "/proc/keys"), masked.end());
  EXPECT_NE(std::find(masked.begin(), masked.end(), "/root"), masked.end());

  so_.unmask_paths = {"/proc/*"};
  spec = berth::spec::build_spec({}, so_);
  ASSERT_TRUE(spec);
  for (const auto& p : (*spec)["linux"]["maskedPaths"]) {
    EXPECT_NE(p.get<std::string>().rfind("/proc/", 0), 0u) << p;
  }
  for (const auto& p : (*spec)["linux"]["readonlyPaths"]) {
    EXPECT_NE(p.get<std::string>().rfind("/proc/", 0), 0u) << p;
  }

  so_.unmask_paths = {"ALL"};
  so_.mask_paths.clear();
  spec = berth::spec::build_spec({}, so_);
  ASSERT_TRUE(spec);
  EXPECT_TRUE((*spec)["linux"]["maskedPaths"].empty());
  EXPECT_TRUE((*spec)["linux"]["readonlyPaths"].empty());
}

TEST_F(SpecTest, UserNamespaceMapsAndDevptsGroup) {
  auto spec = berth::spec::build_spec({}, so_);
  ASSERT_TRUE(spec);
  auto has_user = [](const json& s) {
    for (const auto& ns : s["linux"]["namespaces"]) {
      if (ns["type"] == "user") {
        return true;
      }
    }
    return false;
  };
  auto devpts_opts = [](const json& s) {
    for (const auto& m : s["mounts"]) {
      if (m["destination"] == "/dev/pts") {
        return m["options"].get<std::vector<std::string>>();
      }
    }
    return std::vector<std::string>{};
  };
  // By default (--userns=host) no user namespace and no maps.
  EXPECT_FALSE(has_user(*spec));
  EXPECT_FALSE((*spec)["linux"].contains("uidMappings"));

  so_.userns.kind = berth::spec::NamespaceMode::Kind::Private;
  so_.uid_mappings = {json{{"containerID", 0}, {"hostID", 100000}, {"size", 1024}}};
  so_.gid_mappings = {json{{"containerID", 0}, {"hostID", 200000}, {"size", 1024}}};
  spec = berth::spec::build_spec({}, so_);
  ASSERT_TRUE(spec);
  EXPECT_TRUE(has_user(*spec));
  EXPECT_EQ((*spec)["linux"]["uidMappings"][0]["hostID"], 100000);
  EXPECT_EQ((*spec)["linux"]["gidMappings"][0]["hostID"], 200000);
  auto opts = devpts_opts(*spec);
  EXPECT_NE(std::find(opts.begin(), opts.end(), "gid=5"), opts.end());

  // gid 5 unmapped: devpts would refuse it.
  so_.gid_mappings = {json{{"containerID", 0}, {"hostID", 200000}, {"size", 1}}};
  spec = berth::spec::build_spec({}, so_);
  ASSERT_TRUE(spec);
  opts = devpts_opts(*spec);
  EXPECT_EQ(std::find(opts.begin(), opts.end(), "gid=5"), opts.end());

  so_.userns.kind = berth::spec::NamespaceMode::Kind::Path;
  so_.userns.path = "/proc/1234/ns/user";
  spec = berth::spec::build_spec({}, so_);
  ASSERT_TRUE(spec);
  bool joined = false;
  for (const auto& ns : (*spec)["linux"]["namespaces"]) {
    joined |= ns["type"] == "user" && ns.value("path", "") == "/proc/1234/ns/user";
  }
  EXPECT_TRUE(joined);
  // The joined namespace's maps are written as it has them (runc 1.1 wants them).
  EXPECT_EQ((*spec)["linux"]["uidMappings"][0]["hostID"], 100000);
  EXPECT_EQ((*spec)["linux"]["gidMappings"][0]["hostID"], 200000);
}

TEST(StatsRow, PodmanFields) {
  berth::container::StatsSample s;
  s.id = "0123456789abcdef0123";
  s.name = "web";
  s.started_at = 1'000'000'000'000;
  s.read_at = s.started_at + 10'000'000'000;  // 10 s
  s.cpu_nanos = 1'000'000'000;                // 1 s of CPU
  s.mem_usage = 1'500'000;
  s.mem_limit = 100'000'000;
  s.pids = 2;
  auto row = berth::container::stats_row(s, nullptr, false);
  EXPECT_EQ(row["id"], "0123456789ab");
  EXPECT_EQ(row["cpu_percent"], "10.00%");
  EXPECT_EQ(row["avg_cpu"], "10.00%");
  EXPECT_EQ(row["cpu_time"], "1s");
  EXPECT_EQ(row["mem_usage"], "1.5MB / 100MB");
  EXPECT_EQ(row["mem_percent"], "1.50%");
  EXPECT_EQ(row["pids"], "2");
  EXPECT_EQ(row["net_io"], "0B / 0B");
  // Over an interval: 0.5 s of CPU in 1 s.
  berth::container::StatsSample later = s;
  later.read_at += 1'000'000'000;
  later.cpu_nanos += 500'000'000;
  auto row2 = berth::container::stats_row(later, &s, true);
  EXPECT_EQ(row2["cpu_percent"], "50.00%");
  EXPECT_EQ(row2["id"], s.id);
}

}  // namespace
