// The id maps of a container's user namespace (sdk/include/berth/sdk/id_map.hpp) and the tar of a
// tree written with them (write_tree_tar with TreeTarOptions::ids). Runs as root: the tree's
// owners are host ids set with chown.
#include "berth/sdk/id_map.hpp"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <utility>

#include "berth/sdk/layer_archive.hpp"
#include "berth/sdk/unique_fd.hpp"

namespace fs = std::filesystem;
using berth::Errc;
using berth::UniqueFd;
using berth::sdk::IdMap;
using berth::sdk::IdMappings;
using berth::sdk::Owner;

namespace {

// As --userns=auto:size=1024,uidmapping=5000:300000:10 makes it: two ranges.
IdMappings auto_like() {
  IdMappings m;
  m.uids = IdMap({{0, 100000, 1024}, {5000, 300000, 10}});
  m.gids = IdMap({{0, 200000, 1024}});
  return m;
}

TEST(IdMap, EmptyMapIsTheHostsOwnIds) {
  IdMappings none;
  EXPECT_TRUE(none.identity());
  EXPECT_EQ(none.to_container({0, 0}), (Owner{0, 0}));
  EXPECT_EQ(none.to_container({123456, 65537}), (Owner{123456, 65537}));
  auto h = none.to_host({4000000000u, 7}, "f");
  ASSERT_TRUE(h.has_value());
  EXPECT_EQ(*h, (Owner{4000000000u, 7}));
}

TEST(IdMap, HostToContainerWithOverflowForUnmappedIds) {
  IdMappings m = auto_like();
  EXPECT_FALSE(m.identity());
  EXPECT_EQ(m.to_container({100000, 200000}), (Owner{0, 0}));
  EXPECT_EQ(m.to_container({101023, 201023}), (Owner{1023, 1023}));  // last of the range
  EXPECT_EQ(m.to_container({300009, 200005}), (Owner{5009, 5}));     // second uid range
  // Outside every range: the overflow id, as the kernel shows it inside the namespace.
  EXPECT_EQ(m.to_container({0, 0}), (Owner{65534, 65534}));
  EXPECT_EQ(m.to_container({101024, 199999}), (Owner{65534, 65534}));
  EXPECT_EQ(m.to_container({300010, 200000}), (Owner{65534, 0}));
}

TEST(IdMap, ContainerToHost) {
  IdMappings m = auto_like();
  auto h = m.to_host({0, 0}, "f");
  ASSERT_TRUE(h.has_value());
  EXPECT_EQ(*h, (Owner{100000, 200000}));
  h = m.to_host({5003, 1023}, "f");
  ASSERT_TRUE(h.has_value());
  EXPECT_EQ(*h, (Owner{300003, 201023}));
}

TEST(IdMap, ContainerToHostRefusesIdsOutsideTheMap) {
  IdMappings m = auto_like();
  auto r = m.to_host({1024, 0}, "/src/file");
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code(), Errc::InvalidArgument);
  const std::string msg = r.error().message();
  EXPECT_NE(msg.find("/src/file"), std::string::npos) << msg;
  EXPECT_NE(msg.find("uid 1024"), std::string::npos) << msg;
  EXPECT_NE(msg.find("0:100000:1024,5000:300000:10"), std::string::npos) << msg;

  r = m.to_host({0, 5000}, "/src/other");
  ASSERT_FALSE(r.has_value());
  EXPECT_NE(r.error().message().find("gid 5000"), std::string::npos) << r.error().message();
  EXPECT_NE(r.error().message().find("0:200000:1024"), std::string::npos);
}

TEST(IdMap, RangeAtTheTopOfTheIdSpace) {
  IdMap m({{0, 4294967295u - 9, 10}});
  EXPECT_EQ(m.to_container(4294967295u), 9u);
  EXPECT_EQ(m.to_host(9), 4294967295u);
  EXPECT_FALSE(m.to_host(10).has_value());
  EXPECT_FALSE(m.to_container(4294967295u - 10).has_value());
}

class TreeTarIdsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(::geteuid(), 0u) << "this test chowns files to host ids";
    char tmpl[] = "/var/tmp/berth-idmap-test-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    base_ = tmpl;
    root_ = base_ / "root";
    fs::create_directories(root_ / "etc");
    std::ofstream(root_ / "etc" / "made") << "x";
    std::ofstream(root_ / "stray") << "y";
    fs::create_symlink("etc/made", root_ / "link");
    own("", 100000, 200000);
    own("etc", 100000, 200000);
    own("etc/made", 100005, 200006);
    own("stray", 0, 0);  // a host id the namespace does not map
    own("link", 300001, 200000);
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(base_, ec);
  }
  void own(const std::string& rel, uid_t uid, gid_t gid) {
    ASSERT_EQ(::lchown((root_ / rel).c_str(), uid, gid), 0) << rel;
  }
  // name -> "uid:gid" of the tar write_tree_tar makes of root_.
  std::map<std::string, std::string> owners_in_tar(const berth::sdk::TreeTarOptions& o) {
    const fs::path tar = base_ / "out.tar";
    {
      UniqueFd out(::open(tar.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
      EXPECT_TRUE(out);
      auto w = berth::sdk::write_tree_tar(root_, out.get(), o);
      EXPECT_TRUE(w.has_value()) << w.error().message();
    }
    std::ifstream in(tar, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    const std::string bytes = ss.str();
    std::map<std::string, std::string> out;
    archive* a = archive_read_new();
    archive_read_support_format_tar(a);
    EXPECT_EQ(archive_read_open_memory(a, bytes.data(), bytes.size()), ARCHIVE_OK);
    archive_entry* e;
    while (archive_read_next_header(a, &e) == ARCHIVE_OK) {
      out[archive_entry_pathname(e)] =
          std::to_string(archive_entry_uid(e)) + ":" + std::to_string(archive_entry_gid(e));
    }
    archive_read_free(a);
    return out;
  }
  fs::path base_, root_;
};

TEST_F(TreeTarIdsTest, OwnersAreTheContainersIds) {
  berth::sdk::TreeTarOptions o;
  o.ids = auto_like();
  std::map<std::string, std::string> want = {
      {"etc/", "0:0"}, {"etc/made", "5:6"}, {"link", "5001:0"}, {"stray", "65534:65534"}};
  EXPECT_EQ(owners_in_tar(o), want);
}

TEST_F(TreeTarIdsTest, WithoutMapsOwnersAreTheHosts) {
  berth::sdk::TreeTarOptions o;
  std::map<std::string, std::string> want = {{"etc/", "100000:200000"},
                                             {"etc/made", "100005:200006"},
                                             {"link", "300001:200000"},
                                             {"stray", "0:0"}};
  EXPECT_EQ(owners_in_tar(o), want);
}

}  // namespace
