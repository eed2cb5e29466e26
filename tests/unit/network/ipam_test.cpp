#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <set>

#include "berth/network/network.hpp"
#include "berth/util/fs.hpp"

namespace berth::network {
namespace {

namespace fs = std::filesystem;

class IpamTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/berth-ipam-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { (void)util::remove_tree(dir_); }

  Network net(const std::string& subnet, const std::string& gw) {
    Network n;
    n.name = "t";
    n.subnets.push_back({subnet, gw, {}});
    return n;
  }
  Lease want(const std::string& id, const std::string& ip = "") {
    Lease l;
    l.container_id = id;
    l.ip = ip;
    return l;
  }
  fs::path dir_;
};

TEST_F(IpamTest, SkipsNetworkAndGatewayAndReusesReleased) {
  Ipam ipam(dir_ / "t.json", net("10.213.0.0/24", "10.213.0.1"));
  auto a = ipam.allocate(want("a"));
  ASSERT_TRUE(a) << a.error().message();
  EXPECT_EQ(a->ip, "10.213.0.2");
  EXPECT_EQ(a->prefix, 24);
  EXPECT_EQ(a->gateway, "10.213.0.1");
  auto b = ipam.allocate(want("b"));
  ASSERT_TRUE(b);
  EXPECT_EQ(b->ip, "10.213.0.3");
  // The same container gets its lease back.
  EXPECT_EQ(ipam.allocate(want("a"))->ip, "10.213.0.2");
  ASSERT_TRUE(ipam.release("a"));
  ASSERT_TRUE(ipam.release("a"));  // idempotent
  EXPECT_EQ(ipam.allocate(want("c"))->ip, "10.213.0.2");
}

TEST_F(IpamTest, StaticIp) {
  Ipam ipam(dir_ / "t.json", net("10.213.0.0/24", "10.213.0.1"));
  auto a = ipam.allocate(want("a", "10.213.0.50"));
  ASSERT_TRUE(a) << a.error().message();
  EXPECT_EQ(a->ip, "10.213.0.50");
  auto dup = ipam.allocate(want("b", "10.213.0.50"));
  ASSERT_FALSE(dup);
  EXPECT_EQ(dup.error().code(), Errc::Conflict);
  EXPECT_NE(dup.error().message().find("already allocated"), std::string::npos);
  EXPECT_EQ(ipam.allocate(want("c", "10.213.0.1")).error().code(), Errc::Conflict);  // gateway
  EXPECT_EQ(ipam.allocate(want("d", "10.214.0.5")).error().code(), Errc::InvalidArgument);
  EXPECT_EQ(ipam.allocate(want("e", "10.213.0.255")).error().code(), Errc::InvalidArgument);
  EXPECT_EQ(ipam.allocate(want("f", "bogus")).error().code(), Errc::InvalidArgument);
}

TEST_F(IpamTest, ExhaustionIsAClearError) {
  Ipam ipam(dir_ / "t.json", net("10.213.0.0/29", "10.213.0.1"));  // .2 - .6 usable
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(ipam.allocate(want("c" + std::to_string(i))));
  }
  auto r = ipam.allocate(want("x"));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), Errc::Conflict);
  EXPECT_NE(r.error().message().find("no free IP address left in subnet 10.213.0.0/29"),
            std::string::npos);
}

TEST_F(IpamTest, LeaseRange) {
  Network n = net("10.213.0.0/24", "10.213.0.1");
  n.subnets[0].lease_range = {"10.213.0.100", "10.213.0.101"};
  Ipam ipam(dir_ / "t.json", n);
  EXPECT_EQ(ipam.allocate(want("a"))->ip, "10.213.0.100");
  EXPECT_EQ(ipam.allocate(want("b"))->ip, "10.213.0.101");
  EXPECT_FALSE(ipam.allocate(want("c")));
}

TEST_F(IpamTest, NoDuplicateUnderEightConcurrentProcesses) {
  constexpr int kProcs = 8;
  constexpr int kEach = 20;
  Network n = net("10.213.0.0/16", "10.213.0.1");
  std::vector<pid_t> pids;
  for (int p = 0; p < kProcs; ++p) {
    pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      Ipam ipam(dir_ / "t.json", n);
      for (int i = 0; i < kEach; ++i) {
        if (!ipam.allocate(want("p" + std::to_string(p) + "-" + std::to_string(i)))) {
          ::_exit(1);
        }
      }
      ::_exit(0);
    }
    pids.push_back(pid);
  }
  for (pid_t pid : pids) {
    int st = 0;
    ASSERT_EQ(::waitpid(pid, &st, 0), pid);
    EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0);
  }
  Ipam ipam(dir_ / "t.json", n);
  auto leases = ipam.leases();
  ASSERT_TRUE(leases);
  ASSERT_EQ(leases->size(), size_t{kProcs * kEach});
  std::set<std::string> ips;
  std::set<std::string> ids;
  for (const auto& l : *leases) {
    ips.insert(l.ip);
    ids.insert(l.container_id);
  }
  EXPECT_EQ(ips.size(), size_t{kProcs * kEach});
  EXPECT_EQ(ids.size(), size_t{kProcs * kEach});
}

}  // namespace
}  // namespace berth::network
