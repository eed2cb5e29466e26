#include <gtest/gtest.h>

#include "berth/network/network.hpp"

namespace berth::network {
namespace {

TEST(HostsFile, ContainerGatewayAddHostsAndPeers) {
  HostsInput in;
  in.hostname = "abc123";
  in.container_name = "web";
  in.container_ips = {"10.88.0.5/16"};
  in.host_ip = "10.88.0.1";
  in.add_hosts = {"db;database:10.1.2.3", "gw:host-gateway"};
  in.peers = {{"10.88.0.6", "cache"}};
  auto r = hosts_file(in);
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_NE(r->find("127.0.0.1\tlocalhost"), std::string::npos);
  EXPECT_NE(r->find("10.1.2.3\tdb database\n"), std::string::npos);
  EXPECT_NE(r->find("10.88.0.1\tgw\n"), std::string::npos);
  EXPECT_NE(r->find("10.88.0.5\tabc123 web\n"), std::string::npos);
  EXPECT_NE(r->find("10.88.0.1\thost.containers.internal host.docker.internal\n"),
            std::string::npos);
  EXPECT_NE(r->find("10.88.0.6\tcache\n"), std::string::npos);
}

TEST(HostsFile, BadAddHost) {
  HostsInput in;
  in.add_hosts = {"nocolon"};
  EXPECT_EQ(hosts_file(in).error().code(), Errc::InvalidArgument);
}

TEST(ResolvConf, DropsLoopbackResolvers) {
  ResolvInput in;
  in.host_resolv_conf =
      "# comment\nnameserver 127.0.0.53\nnameserver 192.0.2.53\nnameserver ::1\n"
      "search example.com\noptions edns0\n";
  auto r = resolv_conf(in);
  ASSERT_TRUE(r);
  EXPECT_EQ(*r, "search example.com\nnameserver 192.0.2.53\noptions edns0\n");
}

TEST(ResolvConf, OnlyLoopbackFallsBackToPublic) {
  ResolvInput in;
  in.host_resolv_conf = "nameserver 127.0.0.1\n";
  EXPECT_EQ(*resolv_conf(in), "nameserver 8.8.8.8\nnameserver 8.8.4.4\n");
}

TEST(ResolvConf, ResponderAndFlagsWin) {
  ResolvInput in;
  in.host_resolv_conf = "nameserver 192.0.2.53\nsearch example.com\n";
  in.dns_servers = {"1.1.1.1"};
  in.dns_search = {"."};
  in.dns_options = {"ndots:2"};
  EXPECT_EQ(*resolv_conf(in), "nameserver 1.1.1.1\noptions ndots:2\n");
  in.responders = {"10.89.0.1"};
  EXPECT_EQ(*resolv_conf(in), "nameserver 10.89.0.1\noptions ndots:2\n");
}

}  // namespace
}  // namespace berth::network
