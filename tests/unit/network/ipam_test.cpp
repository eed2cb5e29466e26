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

TEST_F(IpamTest, DualStackLeasesOneAddressOfEachVersion) {
  Network n = net("10.213.0.0/24", "10.213.0.1");
  n.subnets.push_back({"fd42:1:2:3::/64", "fd42:1:2:3::1", {}});
  Ipam ipam(dir_ / "t.json", n);
  auto a = ipam.allocate(want("a"));
  ASSERT_TRUE(a) << a.error().message();
  EXPECT_EQ(a->ip, "10.213.0.2");
  EXPECT_EQ(a->ip6, "fd42:1:2:3::2");
  EXPECT_EQ(a->prefix6, 64);
  EXPECT_EQ(a->gateway6, "fd42:1:2:3::1");
  EXPECT_EQ(a->addresses(), (std::vector<std::string>{"10.213.0.2/24", "fd42:1:2:3::2/64"}));
  auto b = ipam.allocate(want("b", "fd42:1:2:3::99"));  // a static IPv6 address in --ip
  ASSERT_TRUE(b) << b.error().message();
  EXPECT_EQ(b->ip6, "fd42:1:2:3::99");
  EXPECT_EQ(b->ip, "10.213.0.3");
  auto dup = ipam.allocate(want("c", "fd42:1:2:3::99"));
  ASSERT_FALSE(dup);
  EXPECT_EQ(dup.error().code(), Errc::Conflict);
  EXPECT_FALSE(ipam.allocate(want("c", "fd42:1:2:4::9")));  // outside the subnet
  // The lease file round-trips both versions.
  auto all = ipam.leases();
  ASSERT_TRUE(all);
  ASSERT_EQ(all->size(), 2u);
  EXPECT_EQ((*all)[0].ip6, "fd42:1:2:3::2");
  ASSERT_TRUE(ipam.release("a"));
  EXPECT_EQ(ipam.allocate(want("d"))->ip6, "fd42:1:2:3::2");
}

TEST_F(IpamTest, Ipv6OnlyNetworkAndRange) {
  Network n;
  n.name = "t6";
  n.subnets.push_back({"fd42:1:2:3::/64", "fd42:1:2:3::1", {"fd42:1:2:3::10", "fd42:1:2:3::11"}});
  Ipam ipam(dir_ / "t6.json", n);
  auto a = ipam.allocate(want("a"));
  ASSERT_TRUE(a) << a.error().message();
  EXPECT_EQ(a->ip, "");
  EXPECT_EQ(a->ip6, "fd42:1:2:3::10");
  EXPECT_EQ(a->addresses(), std::vector<std::string>{"fd42:1:2:3::10/64"});
  EXPECT_EQ(ipam.allocate(want("b"))->ip6, "fd42:1:2:3::11");
  auto full = ipam.allocate(want("c"));
  ASSERT_FALSE(full);
  EXPECT_EQ(full.error().code(), Errc::Conflict);
  auto v4 = ipam.allocate(want("d", "10.0.0.5"));
  ASSERT_FALSE(v4);
  EXPECT_NE(v4.error().message().find("has no IPv4 subnet"), std::string::npos);
}

TEST_F(IpamTest, StoresSharingABridgeNeverHandOutOneAddressTwice) {
  // Two stores (lease files of their own) with networks on the same bridge and overlapping
  // subnets, as the default network `berth` of two --root's on berth0.
  Network a = net("10.213.0.0/24", "10.213.0.1");
  a.network_interface = "berth0";
  Network b = net("10.213.0.0/16", "10.213.0.1");
  b.network_interface = "berth0";
  fs::path host = dir_ / "host";
  Ipam one(dir_ / "store1" / "berth.json", a, host);
  Ipam two(dir_ / "store2" / "berth.json", b, host);
  std::set<std::string> seen;
  for (int i = 0; i < 5; ++i) {
    auto x = one.allocate(want("one" + std::to_string(i)));
    auto y = two.allocate(want("two" + std::to_string(i)));
    ASSERT_TRUE(x) << x.error().message();
    ASSERT_TRUE(y) << y.error().message();
    EXPECT_TRUE(seen.insert(x->ip).second) << x->ip;
    EXPECT_TRUE(seen.insert(y->ip).second) << y->ip;
  }
  // A static address held by the other store is refused.
  auto taken = two.allocate(want("two-static", "10.213.0.2"));
  ASSERT_FALSE(taken);
  EXPECT_EQ(taken.error().code(), Errc::Conflict);
  // Released in one store: free for the other.
  ASSERT_TRUE(one.release("one0"));
  EXPECT_EQ(two.allocate(want("two-static", "10.213.0.2"))->ip, "10.213.0.2");
  // A store gone (its lease file removed with its runroot) holds nothing any more.
  ASSERT_TRUE(util::remove_tree(dir_ / "store2"));
  Ipam again(dir_ / "store1" / "berth.json", a, host);
  auto r = again.allocate(want("late", "10.213.0.3"));
  ASSERT_TRUE(r) << r.error().message();
  // A network on another bridge is not affected by berth0's reservations.
  Network c = net("10.213.0.0/24", "10.213.0.1");
  c.network_interface = "berth9";
  Ipam other(dir_ / "store3" / "n.json", c, host);
  EXPECT_EQ(other.allocate(want("x"))->ip, "10.213.0.2");
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
