#include <gtest/gtest.h>

#include <algorithm>

#include "berth/network/network.hpp"

namespace berth::network {
namespace {

TEST(Publish, HostAndContainerPort) {
  auto r = parse_publish("8080:80");
  ASSERT_TRUE(r) << r.error().message();
  ASSERT_EQ(r->size(), 1u);
  EXPECT_EQ((*r)[0].host_port, 8080);
  EXPECT_EQ((*r)[0].container_port, 80);
  EXPECT_EQ((*r)[0].range, 1);
  EXPECT_EQ((*r)[0].protocol, "tcp");
  EXPECT_EQ((*r)[0].host_ip, "");
}

TEST(Publish, IpRangesAndProtocols) {
  auto r = parse_publish("127.0.0.1:8000-8009:80-89/udp");
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ((*r)[0].host_ip, "127.0.0.1");
  EXPECT_EQ((*r)[0].host_port, 8000);
  EXPECT_EQ((*r)[0].container_port, 80);
  EXPECT_EQ((*r)[0].range, 10);
  EXPECT_EQ((*r)[0].protocol, "udp");
  auto both = parse_publish("53:53/tcp,udp");
  ASSERT_TRUE(both);
  ASSERT_EQ(both->size(), 2u);
  EXPECT_EQ((*both)[1].protocol, "udp");
}

TEST(Publish, EmptyHostPortPicksAFreeOne) {
  auto r = parse_publish("80");
  ASSERT_TRUE(r);
  EXPECT_NE((*r)[0].host_port, 0);
  EXPECT_EQ((*r)[0].container_port, 80);
  auto r2 = parse_publish("127.0.0.1::80");
  ASSERT_TRUE(r2);
  EXPECT_EQ((*r2)[0].host_ip, "127.0.0.1");
  EXPECT_NE((*r2)[0].host_port, 0);
}

TEST(Publish, BadSpecs) {
  for (const char* bad : {"", "0:80", "70000:80", "80/icmp", "8000-8001:80", "a:b", "1.2.3:80:80",
                          "1:2:3:4", "90-80:90-80"}) {
    auto r = parse_publish(bad);
    EXPECT_FALSE(r) << bad;
    if (!r) {
      EXPECT_EQ(r.error().code(), Errc::InvalidArgument) << bad;
    }
  }
}

TEST(Publish, PublishAll) {
  auto r = publish_all_ports({"80/tcp", "53/udp"});
  ASSERT_TRUE(r);
  ASSERT_EQ(r->size(), 2u);
  EXPECT_EQ((*r)[0].container_port, 80);
  EXPECT_EQ((*r)[1].protocol, "udp");
  EXPECT_EQ((*r)[1].host_port, 0);  // picked by pick_host_ports() when the container connects
}

// A port another container publishes has no socket that bind() would collide with: the picker
// asks `taken` and tries again. Found by a flaky test: a random port went to two containers.
TEST(Publish, PickedHostPortsAvoidTakenOnesAndEachOther) {
  auto r = parse_publish("127.0.0.1::80", false);
  ASSERT_TRUE(r);
  EXPECT_EQ((*r)[0].host_port, 0);
  auto more = parse_publish("127.0.0.1::81", false);
  ASSERT_TRUE(more);
  std::vector<sdk::PortMapping> ports = {(*r)[0], (*more)[0]};
  std::vector<uint16_t> refused;
  auto picked = pick_host_ports(ports, [&](const sdk::PortMapping& m) {
    if (refused.size() < 5) {
      refused.push_back(m.host_port);
      return true;
    }
    return false;
  });
  ASSERT_TRUE(picked) << picked.error().message();
  EXPECT_EQ(refused.size(), 5u);
  for (const auto& m : ports) {
    EXPECT_NE(m.host_port, 0);
    EXPECT_EQ(std::count(refused.begin(), refused.end(), m.host_port), 0) << m.host_port;
  }
  EXPECT_NE(ports[0].host_port, ports[1].host_port);
  EXPECT_FALSE(overlaps(ports[0], ports[1]));

  // A fixed port is kept; everything taken is a clear error.
  std::vector<sdk::PortMapping> fixed = {(*r)[0]};
  fixed[0].host_port = 8080;
  ASSERT_TRUE(pick_host_ports(fixed, [](const sdk::PortMapping&) { return true; }));
  EXPECT_EQ(fixed[0].host_port, 8080);
  std::vector<sdk::PortMapping> none = {(*r)[0]};
  auto full = pick_host_ports(none, [](const sdk::PortMapping&) { return true; });
  ASSERT_FALSE(full);
  EXPECT_EQ(full.error().code(), Errc::Unavailable);
}

}  // namespace
}  // namespace berth::network
