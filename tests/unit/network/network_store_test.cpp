#include <gtest/gtest.h>

#include "berth/network/network.hpp"
#include "berth/util/digest.hpp"
#include "berth/util/fs.hpp"

namespace berth::network {
namespace {

namespace fs = std::filesystem;

TEST(Cidr, ParseAndOverlap) {
  auto n = Ipv4Net::parse("10.89.3.0/24");
  ASSERT_TRUE(n);
  EXPECT_EQ(n->str(), "10.89.3.0/24");
  EXPECT_EQ(format_ipv4(n->broadcast()), "10.89.3.255");
  EXPECT_TRUE(n->overlaps(*Ipv4Net::parse("10.89.0.0/16")));
  EXPECT_FALSE(n->overlaps(*Ipv4Net::parse("10.89.4.0/24")));
  auto bad = Ipv4Net::parse("10.89.3.1/24");
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message().find("network address is 10.89.3.0/24"), std::string::npos);
  EXPECT_FALSE(Ipv4Net::parse("10.89.3.0/33"));
  EXPECT_FALSE(Ipv4Net::parse("10.89.3.0"));
  EXPECT_FALSE(Ipv4Net::parse("300.1.1.0/24"));
}

TEST(PickSubnet, SkipsUsedSubnetsAndRoutes) {
  std::vector<config::SubnetPool> pools = {{"10.89.0.0/22", 24}, {"10.90.0.0/16", 24}};
  auto first = pick_subnet(pools, {});
  ASSERT_TRUE(first);
  EXPECT_EQ(first->str(), "10.89.0.0/24");
  auto next =
      pick_subnet(pools, {*Ipv4Net::parse("10.89.0.0/24"), *Ipv4Net::parse("10.89.1.0/25")});
  EXPECT_EQ(next->str(), "10.89.2.0/24");
  auto other_pool = pick_subnet(pools, {*Ipv4Net::parse("10.89.0.0/16")});
  EXPECT_EQ(other_pool->str(), "10.90.0.0/24");
  auto none = pick_subnet(pools, {*Ipv4Net::parse("10.0.0.0/8")});
  ASSERT_FALSE(none);
  EXPECT_EQ(none.error().code(), Errc::Conflict);
}

TEST(Cidr6, ParseFormatAndOverlap) {
  auto n = Ipv6Net::parse("fd12:3456:789a:1::/64");
  ASSERT_TRUE(n) << n.error().message();
  EXPECT_EQ(n->str(), "fd12:3456:789a:1::/64");
  EXPECT_EQ(format_ipv6(n->addr + 1), "fd12:3456:789a:1::1");
  EXPECT_EQ(format_ipv6(n->last()), "fd12:3456:789a:1:ffff:ffff:ffff:ffff");
  EXPECT_TRUE(n->contains(*parse_ipv6("fd12:3456:789a:1:abcd::5")));
  EXPECT_FALSE(n->contains(*parse_ipv6("fd12:3456:789a:2::5")));
  EXPECT_TRUE(n->overlaps(*Ipv6Net::parse("fd12:3456:789a::/48")));
  EXPECT_FALSE(n->overlaps(*Ipv6Net::parse("fd12:3456:789a:2::/64")));
  auto bad = Ipv6Net::parse("fd12:3456:789a:1::1/64");
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message().find("network address is fd12:3456:789a:1::/64"),
            std::string::npos);
  EXPECT_FALSE(Ipv6Net::parse("fd12::/129"));
  EXPECT_FALSE(Ipv6Net::parse("fd12::"));
  EXPECT_FALSE(Ipv6Net::parse("fd12::g/64"));
  EXPECT_TRUE(is_ipv6("fd00::1"));
  EXPECT_FALSE(is_ipv6("10.0.0.1"));
}

TEST(Cidr6, PicksUnusedUniqueLocalSubnets) {
  std::vector<Ipv6Net> used;
  for (int i = 0; i < 20; ++i) {
    auto n = pick_ula_subnet(used);
    ASSERT_TRUE(n) << n.error().message();
    EXPECT_EQ(n->prefix, 64);
    EXPECT_TRUE(Ipv6Net::parse("fd00::/8")->contains(n->addr)) << n->str();
    for (const auto& u : used) {
      EXPECT_FALSE(n->overlaps(u)) << n->str();
    }
    used.push_back(*n);
  }
  // Every unique local subnet taken: a clear Conflict.
  auto none = pick_ula_subnet({*Ipv6Net::parse("fc00::/7")});
  ASSERT_FALSE(none);
  EXPECT_EQ(none.error().code(), Errc::Conflict);
}

class StoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/berth-netstore-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { (void)util::remove_tree(dir_); }
  NetworkStore store() {
    config::ContainersConfig cfg;
    return NetworkStore(dir_ / "networks", dir_ / "run", NetworkStore::default_network(cfg),
                        {{"10.213.0.0/22", 24}});
  }
  fs::path dir_;
};

TEST_F(StoreTest, DefaultNetworkIsImplicit) {
  auto s = store();
  auto all = s.list();
  ASSERT_TRUE(all);
  ASSERT_EQ(all->size(), 1u);
  EXPECT_EQ((*all)[0].name, "berth");
  EXPECT_EQ((*all)[0].network_interface, "berth0");
  EXPECT_EQ((*all)[0].subnets[0].subnet, "10.88.0.0/16");
  EXPECT_EQ((*all)[0].subnets[0].gateway, "10.88.0.1");
  EXPECT_FALSE(fs::exists(dir_ / "networks" / "berth.json"));
  auto rm = s.remove("berth", true);
  ASSERT_FALSE(rm);
  EXPECT_NE(rm.error().message().find("default network berth cannot be removed"),
            std::string::npos);
}

TEST_F(StoreTest, DefaultNetworkNamedByContainersConf) {
  config::ContainersConfig cfg;
  cfg.network.default_network = "podman";
  EXPECT_EQ(NetworkStore::default_network(cfg).name, "berth");  // default value, no file
  // The id is the name's sha256 either way (the usual one is spelt out in the code).
  EXPECT_EQ(NetworkStore::default_network(cfg).id, berth::util::sha256_digest("berth").substr(7));
  cfg.sources["network.default_network"] = "/etc/containers/containers.conf";
  EXPECT_EQ(NetworkStore::default_network(cfg).name, "podman");
  EXPECT_EQ(NetworkStore::default_network(cfg).id, berth::util::sha256_digest("podman").substr(7));
}

TEST_F(StoreTest, CreateWritesNetavarkShapedJson) {
  auto s = store();
  CreateOptions o;
  o.name = "front";
  o.subnets = {"10.213.8.0/24"};
  o.gateways = {"10.213.8.254"};
  o.ip_ranges = {"10.213.8.128/25"};
  o.options = {{"mtu", "1400"}};
  o.labels = {{"app", "web"}};
  auto n = s.create(o);
  ASSERT_TRUE(n) << n.error().message();
  auto text = util::read_file(dir_ / "networks" / "front.json");
  ASSERT_TRUE(text);
  auto j = nlohmann::json::parse(*text);
  EXPECT_EQ(j["name"], "front");
  EXPECT_EQ(j["id"].get<std::string>().size(), 64u);
  EXPECT_EQ(j["driver"], "bridge");
  EXPECT_EQ(j["network_interface"], "berth1");
  EXPECT_EQ(j["subnets"][0]["subnet"], "10.213.8.0/24");
  EXPECT_EQ(j["subnets"][0]["gateway"], "10.213.8.254");
  EXPECT_EQ(j["subnets"][0]["lease_range"]["start_ip"], "10.213.8.128");
  EXPECT_EQ(j["subnets"][0]["lease_range"]["end_ip"], "10.213.8.254");
  EXPECT_EQ(j["options"]["mtu"], "1400");
  EXPECT_EQ(j["labels"]["app"], "web");
  EXPECT_EQ(j["dns_enabled"], true);
  EXPECT_EQ(j["ipam_options"]["driver"], "host-local");
  EXPECT_EQ(s.get(n->id.substr(0, 6))->name, "front");
}

TEST_F(StoreTest, PicksFreeSubnetsAndRejectsBadInput) {
  auto s = store();
  auto a = s.create({});
  ASSERT_TRUE(a) << a.error().message();
  EXPECT_EQ(a->name, "berth1");
  EXPECT_EQ(a->subnets[0].subnet, "10.213.0.0/24");
  auto b = s.create({});
  ASSERT_TRUE(b);
  EXPECT_EQ(b->subnets[0].subnet, "10.213.1.0/24");

  CreateOptions overlap;
  overlap.name = "x";
  overlap.subnets = {"10.213.0.128/25"};
  auto r = s.create(overlap);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), Errc::Conflict);
  EXPECT_NE(r.error().message().find("overlaps subnet 10.213.0.0/24 of network berth1"),
            std::string::npos);
  EXPECT_FALSE(fs::exists(dir_ / "networks" / "x.json"));

  CreateOptions dup;
  dup.name = "berth1";
  EXPECT_EQ(s.create(dup).error().code(), Errc::AlreadyExists);
  dup.ignore_existing = true;
  EXPECT_EQ(s.create(dup)->id, a->id);

  CreateOptions badgw;
  badgw.name = "y";
  badgw.subnets = {"10.213.9.0/24"};
  badgw.gateways = {"10.213.10.1"};
  EXPECT_EQ(s.create(badgw).error().code(), Errc::InvalidArgument);
  CreateOptions badname;
  badname.name = "bad/name";
  EXPECT_EQ(s.create(badname).error().code(), Errc::InvalidArgument);
  CreateOptions badsubnet;
  badsubnet.name = "z";
  badsubnet.subnets = {"10.213.9.1/24"};
  EXPECT_EQ(s.create(badsubnet).error().code(), Errc::InvalidArgument);
  CreateOptions badmtu;
  badmtu.name = "m";
  badmtu.options = {{"mtu", "9"}};
  EXPECT_EQ(s.create(badmtu).error().code(), Errc::InvalidArgument);
}

TEST_F(StoreTest, Ipv6DualStackAndIpv6Only) {
  auto s = store();
  // --ipv6 alone: an IPv4 subnet from the pools and a unique local /64 (dual stack).
  CreateOptions dual;
  dual.name = "dual";
  dual.ipv6 = true;
  auto d = s.create(dual);
  ASSERT_TRUE(d) << d.error().message();
  EXPECT_TRUE(d->ipv6_enabled);
  ASSERT_EQ(d->subnets.size(), 2u);
  EXPECT_EQ(d->subnets[0].subnet, "10.213.0.0/24");
  auto v6 = Ipv6Net::parse(d->subnets[1].subnet);
  ASSERT_TRUE(v6);
  EXPECT_EQ(v6->prefix, 64);
  EXPECT_EQ(d->subnets[1].gateway, format_ipv6(v6->addr + 1));
  auto j = nlohmann::json::parse(*util::read_file(dir_ / "networks" / "dual.json"));
  EXPECT_EQ(j["ipv6_enabled"], true);
  EXPECT_EQ(j["subnets"][1]["subnet"], d->subnets[1].subnet);

  // An IPv6 subnet implies --ipv6; alone it makes an IPv6-only network.
  CreateOptions only;
  only.name = "only6";
  only.subnets = {"fd42:1:2:3::/64"};
  only.gateways = {"fd42:1:2:3::fe"};
  only.ip_ranges = {"fd42:1:2:3::100-fd42:1:2:3::1ff"};
  auto o = s.create(only);
  ASSERT_TRUE(o) << o.error().message();
  EXPECT_TRUE(o->ipv6_enabled);
  ASSERT_EQ(o->subnets.size(), 1u);
  EXPECT_EQ(o->subnets[0].gateway, "fd42:1:2:3::fe");
  EXPECT_EQ(o->subnets[0].lease_range.start_ip, "fd42:1:2:3::100");

  CreateOptions overlap;
  overlap.name = "ov";
  overlap.subnets = {"fd42:1:2::/48"};
  auto r = s.create(overlap);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), Errc::Conflict);
  EXPECT_NE(r.error().message().find("of network only6"), std::string::npos);
  CreateOptions small;
  small.name = "small";
  small.subnets = {"fd42:9::/127"};
  EXPECT_EQ(s.create(small).error().code(), Errc::InvalidArgument);
  CreateOptions mixed;
  mixed.name = "mixed";
  mixed.subnets = {"fd42:9::/64"};
  mixed.gateways = {"10.0.0.1"};
  EXPECT_EQ(s.create(mixed).error().code(), Errc::InvalidArgument);
}

TEST_F(StoreTest, RemoveRefusesNetworkInUseAndPruneSkipsIt) {
  auto s = store();
  CreateOptions o;
  o.name = "used";
  auto used = s.create(o);
  ASSERT_TRUE(used);
  o.name = "idle";
  o.labels = {{"k", "v"}};
  ASSERT_TRUE(s.create(o));
  Ipam ipam(s.lease_file("used"), *used, dir_ / "host-ipam");
  Lease l;
  l.container_id = "c1";
  l.container_name = "web";
  ASSERT_TRUE(ipam.allocate(l));
  auto r = s.remove("used", false);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), Errc::Busy);
  EXPECT_NE(r.error().message().find("is being used by containers: web"), std::string::npos);
  auto pruned = s.prune();
  ASSERT_TRUE(pruned);
  EXPECT_EQ(*pruned, std::vector<std::string>{"idle"});
  ASSERT_TRUE(ipam.release("c1"));
  ASSERT_TRUE(s.remove("used", false));
  EXPECT_EQ(s.get("used").error().code(), Errc::NotFound);
}

}  // namespace
}  // namespace berth::network
