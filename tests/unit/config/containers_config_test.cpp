#include <gtest/gtest.h>

#include "config_fixture.hpp"

namespace berth::config::testing {
namespace {

class ContainersConfigTest : public ConfigFixture {
 protected:
  Result<ContainersConfig> load(uid_t uid = 0, const GlobalOverrides& o = {}) {
    StorageConfig s;
    s.graphroot = "/g";
    s.runroot = "/r";
    return load_containers_config(paths(uid), o, s);
  }
};

TEST_F(ContainersConfigTest, PodmanDefaultsWithoutFiles) {
  auto c = load();
  ASSERT_TRUE(c) << c.error().message();
  EXPECT_EQ(c->containers.pids_limit, 2048);
  EXPECT_EQ(c->containers.log_size_max, -1);
  EXPECT_EQ(c->containers.netns, "private");
  EXPECT_EQ(c->containers.userns, "host");
  EXPECT_EQ(c->containers.shm_size, "65536k");
  EXPECT_EQ(c->containers.umask, "0022");
  EXPECT_EQ(c->containers.default_capabilities.size(), 11u);
  EXPECT_EQ(c->containers.default_sysctls,
            std::vector<std::string>{"net.ipv4.ping_group_range=0 0"});
  EXPECT_EQ(c->network.default_network, "podman");
  EXPECT_EQ(c->network.default_subnet, "10.88.0.0/16");
  ASSERT_EQ(c->network.default_subnet_pools.size(), 5u);
  EXPECT_EQ(c->network.default_subnet_pools[0].base, "10.89.0.0/16");
  EXPECT_EQ(c->engine.runtime, "crun");
  EXPECT_EQ(c->engine.stop_timeout, 10u);
  EXPECT_EQ(c->engine.pull_policy, "missing");
  EXPECT_EQ(c->engine.image_default_transport, "docker://");
  EXPECT_FALSE(c->runtime_paths("crun").empty());
  EXPECT_FALSE(c->runtime_paths("runc").empty());
  // systemd_booted is false in paths(): Podman's non-systemd defaults.
  EXPECT_EQ(c->engine.cgroup_manager, "cgroupfs");
  EXPECT_EQ(c->engine.events_logger, "file");
  EXPECT_EQ(c->engine.static_dir, "/g/engine");
  EXPECT_EQ(c->engine.volume_path, "/g/volumes");
  EXPECT_EQ(c->engine.tmp_dir, "/r/tmp");
  EXPECT_EQ(c->engine.events_logfile_path, "/r/tmp/events/events.log");
  EXPECT_EQ(c->network.network_config_dir, "/g/networks");
  EXPECT_TRUE(c->files.empty());
  EXPECT_EQ(c->source_of("containers.pids_limit"), "default");
}

TEST_F(ContainersConfigTest, SystemdHostDefaults) {
  auto p = paths();
  p.systemd_booted = true;
  auto c = load_containers_config(p, {}, StorageConfig{});
  ASSERT_TRUE(c) << c.error().message();
  EXPECT_EQ(c->engine.cgroup_manager, "systemd");
  EXPECT_EQ(c->engine.events_logger, "journald");
}

TEST_F(ContainersConfigTest, FilesMergeLowestPriorityFirst) {
  write(share_ / "containers.conf",
        "[containers]\npids_limit = 1\nlog_size_max = 5\ntz = \"UTC\"\n");
  write(etc_ / "containers.conf", "[containers]\npids_limit = 2\nlog_size_max = 6\n");
  write(berth_ / "containers.conf", "[containers]\npids_limit = 3\n");
  auto c = load();
  ASSERT_TRUE(c) << c.error().message();
  EXPECT_EQ(c->containers.pids_limit, 3);
  EXPECT_EQ(c->containers.log_size_max, 6);
  EXPECT_EQ(c->containers.tz, "UTC");
  EXPECT_EQ(c->source_of("containers.pids_limit"), (berth_ / "containers.conf").string());
  EXPECT_EQ(c->source_of("containers.log_size_max"), (etc_ / "containers.conf").string());
  EXPECT_EQ(c->source_of("containers.tz"), (share_ / "containers.conf").string());
  EXPECT_EQ(c->files, (std::vector<std::string>{(share_ / "containers.conf").string(),
                                                (etc_ / "containers.conf").string(),
                                                (berth_ / "containers.conf").string()}));
}

TEST_F(ContainersConfigTest, DropInsApplyInLexicalOrderAfterTheirDirsFile) {
  write(etc_ / "containers.conf", "[engine]\nstop_timeout = 1\nruntime = \"runc\"\n");
  write(etc_ / "containers.conf.d/20-b.conf", "[engine]\nstop_timeout = 20\n");
  write(etc_ / "containers.conf.d/10-a.conf", "[engine]\nstop_timeout = 10\ninfra_image = \"i\"\n");
  write(etc_ / "containers.conf.d/30-c.conf.disabled", "[engine]\nstop_timeout = 30\n");
  write(etc_ / "containers.rootful.conf.d/40-root.conf", "[engine]\npull_policy = \"never\"\n");
  write(etc_ / "containers.rootless.conf.d/40-user.conf", "[engine]\npull_policy = \"always\"\n");
  write(berth_ / "containers.conf", "[engine]\nruntime = \"youki\"\n");
  auto c = load();
  ASSERT_TRUE(c) << c.error().message();
  EXPECT_EQ(c->engine.stop_timeout, 20u);
  EXPECT_EQ(c->engine.infra_image, "i");
  EXPECT_EQ(c->engine.runtime, "youki");  // /etc/berth outranks /etc/containers' drop-ins
  EXPECT_EQ(c->engine.pull_policy, "never");

  auto u = load(1000);
  ASSERT_TRUE(u) << u.error().message();
  EXPECT_EQ(u->engine.pull_policy, "always");
}

TEST_F(ContainersConfigTest, UserFilesOnlyForRootless) {
  write(etc_ / "containers.conf", "[containers]\ntz = \"UTC\"\n");
  write(user_ / "containers/containers.conf", "[containers]\ntz = \"Europe/Paris\"\n");
  write(user_ / "berth/containers.conf.d/x.conf", "[containers]\numask = \"0077\"\n");
  auto root = load(0);
  ASSERT_TRUE(root) << root.error().message();
  EXPECT_EQ(root->containers.tz, "UTC");
  EXPECT_EQ(root->containers.umask, "0022");
  auto user = load(1000);
  ASSERT_TRUE(user) << user.error().message();
  EXPECT_EQ(user->containers.tz, "Europe/Paris");
  EXPECT_EQ(user->containers.umask, "0077");
}

TEST_F(ContainersConfigTest, ContainersConfEnvReplacesOverrideAndConfigComeLast) {
  write(berth_ / "containers.conf", "[containers]\ntz = \"UTC\"\npids_limit = 7\n");
  write(root_ / "only.conf", "[containers]\npids_limit = 100\nlog_tag = \"a\"\n");
  write(root_ / "override.conf", "[containers]\nlog_tag = \"b\"\numask = \"0027\"\n");
  write(root_ / "flag.conf", "[containers]\numask = \"0007\"\n");
  env_["CONTAINERS_CONF"] = (root_ / "only.conf").string();
  env_["CONTAINERS_CONF_OVERRIDE"] = (root_ / "override.conf").string();
  GlobalOverrides o;
  o.config_path = (root_ / "flag.conf").string();
  auto c = load(0, o);
  ASSERT_TRUE(c) << c.error().message();
  EXPECT_EQ(c->containers.tz, "");  // /etc/berth was not read
  EXPECT_EQ(c->containers.pids_limit, 100);
  EXPECT_EQ(c->containers.log_tag, "b");
  EXPECT_EQ(c->containers.umask, "0007");
  EXPECT_EQ(c->files.size(), 3u);
}

TEST_F(ContainersConfigTest, OverrideWithoutContainersConfKeepsSearch) {
  write(berth_ / "containers.conf", "[containers]\ntz = \"UTC\"\n");
  write(root_ / "override.conf", "[containers]\nlog_tag = \"b\"\n");
  env_["CONTAINERS_CONF_OVERRIDE"] = (root_ / "override.conf").string();
  auto c = load();
  ASSERT_TRUE(c) << c.error().message();
  EXPECT_EQ(c->containers.tz, "UTC");
  EXPECT_EQ(c->containers.log_tag, "b");
}

TEST_F(ContainersConfigTest, MissingNamedFilesAreErrors) {
  env_["CONTAINERS_CONF"] = (root_ / "nope.conf").string();
  auto c = load();
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error().code(), Errc::NotFound);
  EXPECT_NE(c.error().message().find("CONTAINERS_CONF " + (root_ / "nope.conf").string()),
            std::string::npos)
      << c.error().message();
  env_.clear();
  GlobalOverrides o;
  o.config_path = (root_ / "nope.conf").string();
  c = load(0, o);
  ASSERT_FALSE(c);
  EXPECT_NE(c.error().message().find("--config"), std::string::npos);
}

TEST_F(ContainersConfigTest, TablesMergeByKey) {
  write(etc_ / "containers.conf", R"([engine]
active_service = "prod"
[engine.runtimes]
crun = ["/opt/crun/bin/crun"]
kata = ["/usr/bin/kata-runtime"]
[engine.service_destinations.prod]
uri = "ssh://core@10.0.0.1/run/podman/podman.sock"
identity = "/root/.ssh/id_ed25519"
[secrets]
driver = "pass"
opts = {root = "/srv/secrets"}
)");
  write(berth_ / "containers.conf", R"([engine.service_destinations.test]
uri = "unix:///run/test.sock"
)");
  auto c = load();
  ASSERT_TRUE(c) << c.error().message();
  EXPECT_EQ(c->runtime_paths("crun"), std::vector<std::string>{"/opt/crun/bin/crun"});
  EXPECT_EQ(c->runtime_paths("kata"), std::vector<std::string>{"/usr/bin/kata-runtime"});
  EXPECT_FALSE(c->runtime_paths("runc").empty());  // defaults kept
  EXPECT_EQ(c->engine.active_service, "prod");
  ASSERT_EQ(c->engine.service_destinations.size(), 2u);
  EXPECT_EQ(c->engine.service_destinations.at("prod").identity, "/root/.ssh/id_ed25519");
  EXPECT_EQ(c->engine.service_destinations.at("test").uri, "unix:///run/test.sock");
  EXPECT_EQ(c->secrets.driver, "pass");
  EXPECT_EQ(c->secrets.opts.at("root"), "/srv/secrets");
}

TEST_F(ContainersConfigTest, ArraysReplaceUnlessAppendIsSet) {
  write(etc_ / "containers.conf",
        "[containers]\nenv = [\"A=1\"]\ndefault_ulimits = [\"nofile=1024:2048\"]\n");
  write(berth_ / "containers.conf",
        "[containers]\nenv = [\"B=2\", {append = true}]\ndefault_ulimits = [\"nproc=64:64\"]\n");
  auto c = load();
  ASSERT_TRUE(c) << c.error().message();
  EXPECT_EQ(c->containers.env, (std::vector<std::string>{"A=1", "B=2"}));
  EXPECT_EQ(c->containers.default_ulimits, std::vector<std::string>{"nproc=64:64"});
}

TEST_F(ContainersConfigTest, EveryDocumentedKeyIsRead) {
  write(berth_ / "containers.conf", R"([containers]
annotations = ["a=b"]
base_hosts_file = "/etc/myhosts"
cgroupns = "host"
devices = ["/dev/fuse"]
dns_servers = ["1.1.1.1"]
dns_searches = ["example.com"]
dns_options = ["ndots:2"]
init_path = "/usr/bin/catatonit"
ipcns = "private"
label = false
log_driver = "journald"
no_hosts = true
seccomp_profile = "/etc/seccomp.json"
shm_size = "1g"
userns = "auto"
utsns = "host"
pidns = "host"
netns = "host"
[network]
network_backend = "netavark"
default_network = "berth"
default_subnet = "10.1.0.0/16"
default_subnet_pools = [{base = "10.2.0.0/16", size = 26}]
network_config_dir = "/etc/berth/networks"
dns_bind_port = 5353
cni_plugin_dirs = ["/usr/lib/cni"]
[engine]
events_logger = "none"
events_logfile_path = "/var/log/berth-events.log"
events_logfile_max_size = "2m"
helper_binaries_dir = ["/usr/libexec/berth"]
image_parallel_copies = 3
remote = true
static_dir = "/s"
tmp_dir = "/t"
volume_path = "/v"
env = ["HTTP_PROXY=http://p:3128"]
conmon_path = ["/usr/bin/conmon"]
num_locks = 2048
cgroup_manager = "systemd"
[machine]
cpus = 2
)");
  auto c = load();
  ASSERT_TRUE(c) << c.error().message();
  const auto& k = c->containers;
  EXPECT_EQ(k.annotations, std::vector<std::string>{"a=b"});
  EXPECT_EQ(k.base_hosts_file, "/etc/myhosts");
  EXPECT_EQ(k.cgroupns, "host");
  EXPECT_EQ(k.devices, std::vector<std::string>{"/dev/fuse"});
  EXPECT_EQ(k.dns_servers, std::vector<std::string>{"1.1.1.1"});
  EXPECT_EQ(k.dns_searches, std::vector<std::string>{"example.com"});
  EXPECT_EQ(k.dns_options, std::vector<std::string>{"ndots:2"});
  EXPECT_EQ(k.init_path, "/usr/bin/catatonit");
  EXPECT_EQ(k.ipcns, "private");
  EXPECT_FALSE(k.label);
  EXPECT_EQ(k.log_driver, "journald");
  EXPECT_TRUE(k.no_hosts);
  EXPECT_EQ(k.seccomp_profile, "/etc/seccomp.json");
  EXPECT_EQ(k.shm_size, "1g");
  EXPECT_EQ(k.userns, "auto");
  EXPECT_EQ(k.utsns, "host");
  EXPECT_EQ(k.pidns, "host");
  EXPECT_EQ(k.netns, "host");
  const auto& n = c->network;
  EXPECT_EQ(n.network_backend, "netavark");
  EXPECT_EQ(n.default_network, "berth");
  EXPECT_EQ(n.default_subnet, "10.1.0.0/16");
  ASSERT_EQ(n.default_subnet_pools.size(), 1u);
  EXPECT_EQ(n.default_subnet_pools[0].base, "10.2.0.0/16");
  EXPECT_EQ(n.default_subnet_pools[0].size, 26);
  EXPECT_EQ(n.network_config_dir, "/etc/berth/networks");
  EXPECT_EQ(n.dns_bind_port, 5353);
  const auto& e = c->engine;
  EXPECT_EQ(e.events_logger, "none");
  EXPECT_EQ(e.events_logfile_path, "/var/log/berth-events.log");
  EXPECT_EQ(e.events_logfile_max_size, "2m");
  EXPECT_EQ(e.helper_binaries_dir, std::vector<std::string>{"/usr/libexec/berth"});
  EXPECT_EQ(e.image_parallel_copies, 3u);
  EXPECT_TRUE(e.remote);
  EXPECT_EQ(e.static_dir, "/s");
  EXPECT_EQ(e.tmp_dir, "/t");
  EXPECT_EQ(e.volume_path, "/v");
  EXPECT_EQ(e.env, std::vector<std::string>{"HTTP_PROXY=http://p:3128"});
  EXPECT_EQ(e.cgroup_manager, "systemd");
  EXPECT_EQ(c->source_of("engine.cgroup_manager"), (berth_ / "containers.conf").string());
}

TEST_F(ContainersConfigTest, EventsLogfileMaxSizeTakesANumberOrASizeString) {
  write(etc_ / "containers.conf", "[engine]\nevents_logfile_max_size = 4096\n");
  auto c = load();
  ASSERT_TRUE(c) << c.error().message();
  EXPECT_EQ(c->engine.events_logfile_max_size, "4096");
  write(etc_ / "containers.conf", "[engine]\nevents_logfile_max_size = -1\n");
  c = load();
  ASSERT_TRUE(c) << c.error().message();
  EXPECT_EQ(c->engine.events_logfile_max_size, "0");
  write(etc_ / "containers.conf", "[engine]\nevents_logfile_max_size = [1]\n");
  EXPECT_FALSE(load());
}

TEST_F(ContainersConfigTest, TypeErrorNamesFileLineColumnAndKey) {
  write(etc_ / "containers.conf", "[containers]\n# limits\npids_limit = \"many\"\n");
  auto c = load();
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error().message(), (etc_ / "containers.conf").string() +
                                     ":3:14: key containers.pids_limit: expected an integer, got "
                                     "a string");
}

TEST_F(ContainersConfigTest, ArrayElementTypeError) {
  write(etc_ / "containers.conf.d/50.conf", "[containers]\ndns_servers = [\"1.1.1.1\", 8]\n");
  auto c = load();
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error().message(), (etc_ / "containers.conf.d/50.conf").string() +
                                     ":2:27: key containers.dns_servers[1]: expected a string, "
                                     "got an integer");
}

TEST_F(ContainersConfigTest, OutOfRangeAndUnsupportedValues) {
  write(etc_ / "containers.conf", "[network]\ndns_bind_port = 70000\n");
  auto c = load();
  ASSERT_FALSE(c);
  EXPECT_NE(c.error().message().find(":2:17: key network.dns_bind_port: value 70000 is out of "
                                     "range [0, 65535]"),
            std::string::npos)
      << c.error().message();
  write(etc_ / "containers.conf", "[engine]\npull_policy = \"sometimes\"\n");
  c = load();
  ASSERT_FALSE(c);
  EXPECT_NE(c.error().message().find(":2:15: key engine.pull_policy: unsupported value "
                                     "\"sometimes\" (expected one of: always, missing, never, "
                                     "newer)"),
            std::string::npos)
      << c.error().message();
}

TEST_F(ContainersConfigTest, SectionOfWrongType) {
  write(etc_ / "containers.conf", "engine = 3\n");
  auto c = load();
  ASSERT_FALSE(c);
  EXPECT_NE(c.error().message().find(":1:10: key engine: expected a table, got an integer"),
            std::string::npos)
      << c.error().message();
}

TEST_F(ContainersConfigTest, ParseErrorNamesFileLineColumn) {
  write(berth_ / "containers.conf", "[containers]\ntz = \"UTC\"\ntz = \"GMT\"\n");
  auto c = load();
  ASSERT_FALSE(c);
  std::string prefix = (berth_ / "containers.conf").string() + ":3:";
  EXPECT_EQ(c.error().message().rfind(prefix, 0), 0u) << c.error().message();
}

TEST_F(ContainersConfigTest, UnknownKeysAreIgnored) {
  write(etc_ / "containers.conf",
        "[containers]\nfuture_option = 1\ntz = \"UTC\"\n[future_section]\nx = 1\n");
  auto c = load();
  ASSERT_TRUE(c) << c.error().message();
  EXPECT_EQ(c->containers.tz, "UTC");
}

}  // namespace
}  // namespace berth::config::testing
