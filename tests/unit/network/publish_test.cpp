#include <gtest/gtest.h>

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
  EXPECT_NE((*r)[1].host_port, 0);
}

}  // namespace
}  // namespace berth::network
