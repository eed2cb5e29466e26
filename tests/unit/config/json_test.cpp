#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cstdlib>
#include <sstream>

#include "config_fixture.hpp"

namespace berth::config::testing {
namespace {

using JsonTest = ConfigFixture;

TEST_F(JsonTest, LoadConfigAndInfoJson) {
  write(etc_ / "storage.conf",
        "[storage]\ndriver = \"overlay\"\ngraphroot = \"/var/lib/containers/storage\"\n");
  write(berth_ / "containers.conf", "[engine]\nruntime = \"runc\"\n");
  write(etc_ / "registries.conf",
        "unqualified-search-registries = [\"docker.io\"]\n[[registry]]\nlocation = \"a.io\"\n"
        "[[registry.mirror]]\nlocation = \"m.io\"\npull-from-mirror = \"digest-only\"\n");
  GlobalOverrides o;
  o.runroot = "/tmp/run";
  auto c = load_config(paths(), o);
  ASSERT_TRUE(c) << c.error().message();
  nlohmann::json j = to_json(*c);
  EXPECT_EQ(j["storage"]["driver"], "overlay");
  EXPECT_EQ(j["storage"]["graphroot"], "/var/lib/berth/storage");
  EXPECT_EQ(j["storage"]["sources"]["storage.graphroot"], "default");
  EXPECT_EQ(j["storage"]["sources"]["storage.runroot"], "flag");
  EXPECT_EQ(j["storage"]["sources"]["storage.driver"], (etc_ / "storage.conf").string());
  EXPECT_TRUE(j["storage"]["imagestore"].is_null());
  EXPECT_EQ(j["containers"]["engine"]["runtime"], "runc");
  EXPECT_EQ(j["containers"]["engine"]["tmp_dir"], "/tmp/run/tmp");
  EXPECT_EQ(j["containers"]["containers"]["pids_limit"], 2048);
  EXPECT_EQ(j["containers"]["network"]["default_subnet_pools"][0]["size"], 24);
  EXPECT_EQ(j["registries"]["short-name-mode"], "enforcing");
  EXPECT_EQ(j["registries"]["registry"][0]["mirror"][0]["pull-from-mirror"], "digest-only");
  EXPECT_EQ(j["registries"]["unqualified-search-registries"][0], "docker.io");
}

TEST_F(JsonTest, LoadConfigReportsTheFirstBrokenFile) {
  write(berth_ / "containers.conf", "[containers]\nenv = \"PATH=/bin\"\n");
  auto c = load_config(paths());
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error().message(), (berth_ / "containers.conf").string() +
                                     ":2:7: key containers.env: expected an array of strings, "
                                     "got a string");
}

}  // namespace
}  // namespace berth::config::testing

namespace berth::config::testing {
namespace {

// Captures what spdlog prints while the object lives.
class LogCapture {
 public:
  LogCapture() : previous_(spdlog::default_logger()) {
    auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(out_);
    auto logger = std::make_shared<spdlog::logger>("capture", sink);
    logger->set_level(spdlog::level::debug);
    logger->set_pattern("%v");
    spdlog::set_default_logger(logger);
  }
  ~LogCapture() { spdlog::set_default_logger(previous_); }
  std::string text() const { return out_.str(); }

 private:
  std::shared_ptr<spdlog::logger> previous_;
  std::ostringstream out_;
};

TEST_F(JsonTest, UnknownKeysAreLoggedAtDebugWithTheirPosition) {
  write(etc_ / "containers.conf", "[engine]\nnum_locks = 2048\nfrobnicate = true\n");
  write(etc_ / "storage.conf",
        "[storage]\ndriver = \"overlay\"\ngraphroot = \"/var/lib/containers/storage\"\n");
  LogCapture log;
  auto c = load_config(paths());
  ASSERT_TRUE(c) << c.error().message();
  std::string conf = (etc_ / "containers.conf").string();
  EXPECT_NE(log.text().find(conf + ":3:1: unknown key engine.frobnicate, ignored"),
            std::string::npos)
      << log.text();
  EXPECT_NE(log.text().find(conf + ":2:1: key engine.num_locks is not used by berth, ignored"),
            std::string::npos)
      << log.text();
  EXPECT_NE(log.text().find("storage.graphroot ignored: berth keeps its own store"),
            std::string::npos)
      << log.text();
}

TEST(ConfigPathsTest, FromHostSearchesBerthThenContainers) {
  ConfigPaths p = ConfigPaths::from_host();
  ASSERT_EQ(p.system_dirs.size(), 3u);
  EXPECT_EQ(p.system_dirs[0].path, "/etc/berth");
  EXPECT_TRUE(p.system_dirs[0].berth_owned);
  EXPECT_EQ(p.system_dirs[1].path, "/etc/containers");
  EXPECT_FALSE(p.system_dirs[1].berth_owned);
  EXPECT_EQ(p.system_dirs[2].path, "/usr/share/containers");
  EXPECT_EQ(p.uid, ::getuid());
  ASSERT_TRUE(p.env);
  EXPECT_EQ(p.getenv("PATH"), std::optional<std::string>(std::getenv("PATH")));
  EXPECT_FALSE(p.getenv("BERTH_SURELY_UNSET_VARIABLE_42"));
}

}  // namespace
}  // namespace berth::config::testing
