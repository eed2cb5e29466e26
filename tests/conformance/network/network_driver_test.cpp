#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <sstream>
#include <thread>

#include "berth/engine/engine.hpp"
#include "berth/network/network.hpp"
#include "berth/sdk/unique_fd.hpp"
#include "berth/util/fs.hpp"

namespace berth::network {
namespace {

namespace fs = std::filesystem;

struct Cmd {
  int rc = -1;
  std::string out;
};

Cmd sh(const std::string& cmd) {
  Cmd r;
  FILE* p = ::popen((cmd + " 2>&1").c_str(), "r");
  if (p == nullptr) {
    return r;
  }
  std::array<char, 4096> buf{};
  size_t n = 0;
  while ((n = std::fread(buf.data(), 1, buf.size(), p)) > 0) {
    r.out.append(buf.data(), n);
  }
  int st = ::pclose(p);
  r.rc = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return r;
}

uint16_t free_port() {
  UniqueFd s(::socket(AF_INET, SOCK_STREAM, 0));
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(s.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa);
  socklen_t len = sizeof sa;
  ::getsockname(s.get(), reinterpret_cast<sockaddr*>(&sa), &len);
  return ntohs(sa.sin_port);
}

// Connects to `sa` (retrying while the listener starts) and reads what it sends.
std::string fetch_from(const sockaddr* sa, socklen_t len) {
  for (int attempt = 0; attempt < 100; ++attempt) {
    UniqueFd s(::socket(sa->sa_family, SOCK_STREAM, 0));
    timeval tv{2, 0};
    ::setsockopt(s.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    if (::connect(s.get(), sa, len) == 0) {
      char buf[64] = {};
      ssize_t n = ::read(s.get(), buf, sizeof buf - 1);
      if (n > 0) {
        return std::string(buf, static_cast<size_t>(n));
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return "";
}

// 127.0.0.1:port.
std::string fetch(uint16_t port) {
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(port);
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return fetch_from(reinterpret_cast<sockaddr*>(&sa), sizeof sa);
}

// [addr]:port over IPv6.
std::string fetch6(const std::string& addr, uint16_t port) {
  sockaddr_in6 sa{};
  sa.sin6_family = AF_INET6;
  sa.sin6_port = htons(port);
  inet_pton(AF_INET6, addr.c_str(), &sa.sin6_addr);
  return fetch_from(reinterpret_cast<sockaddr*>(&sa), sizeof sa);
}

// A one-shot TCP server on port 80 inside a namespace that sends "hello from <tag>".
pid_t serve_in(const std::string& netns, const std::string& tag) {
  pid_t pid = ::fork();
  if (pid == 0) {
    std::string code =
        "import socket\n"
        "s=socket.socket(socket.AF_INET6); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, "
        "1)\n"
        "s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)\n"
        "s.bind(('::', 80)); s.listen(8)\n"
        "while True:\n"
        "  c,_=s.accept(); c.sendall(b'hello from " +
        tag + "'); c.close()\n";
    ::execlp("nsenter", "nsenter", ("--net=" + netns).c_str(), "python3", "-c", code.c_str(),
             nullptr);
    ::_exit(127);
  }
  return pid;
}

void stop(pid_t pid) {
  ::kill(pid, SIGKILL);
  ::waitpid(pid, nullptr, 0);
}

class NetworkDriverTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) {
      GTEST_SKIP() << "needs root";
    }
    char tmpl[] = "/tmp/berth-nettest-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    make_engine("");
    // Unique per test process: bridges and namespaces never collide with a parallel run.
    tag_ = std::to_string(::getpid() % 100000);
    char hex[8];
    std::snprintf(hex, sizeof hex, "%x", static_cast<unsigned>(::getpid() % 65536));
    ula_ = std::string("fd42:b37:") + hex + ":1::/64";
  }
  // The engine over this test's store; `firewall` sets containers.conf's firewall_driver.
  void make_engine(const std::string& firewall) {
    config::Config cfg;
    cfg.storage.graphroot = (dir_ / "root").string();
    cfg.storage.runroot = (dir_ / "run").string();
    if (!firewall.empty()) {
      std::string conf = (dir_ / "containers.conf").string();
      ASSERT_TRUE(
          util::write_file_atomic(conf, "[network]\nfirewall_driver = \"" + firewall + "\"\n"));
      cfg.containers.files.push_back(conf);
    }
    engine_ = engine::Engine::with(cfg, {BERTH_TEST_PLUGIN_DIR});
  }
  void TearDown() override {
    for (auto& req : connected_) {
      (void)disconnect_container(*engine_, req);
    }
    for (const auto& ns : netns_) {
      (void)remove_netns(ns);
    }
    if (!dir_.empty()) {
      sh("umount " + (dir_ / "netns").string());
      (void)util::remove_tree(dir_);
    }
  }

  Network make_network(const std::string& name, const std::string& subnet, bool internal = false,
                       const std::string& driver = "bridge") {
    auto store = NetworkStore::for_engine(*engine_);
    CreateOptions o;
    o.name = name;
    o.driver = driver;
    if (!subnet.empty()) {
      o.subnets = {subnet};
    }
    o.internal = internal;
    if (driver == "bridge") {
      o.interface_name = "bt" + tag_ + name.substr(0, 2);
    }
    auto n = store.create(o);
    EXPECT_TRUE(n) << n.error().message();
    return *n;
  }

  std::string make_netns(const std::string& name) {
    std::string path = (dir_ / "netns" / name).string();
    auto h = create_netns(path);
    EXPECT_TRUE(h) << h.error().message();
    netns_.push_back(path);
    return path;
  }

  ContainerNetRequest request(const std::string& id, const std::string& netns,
                              const std::string& network) {
    ContainerNetRequest r;
    r.container_id = id + tag_ + std::string(40, '0');
    r.container_name = id;
    r.netns_path = netns;
    r.networks.push_back({network, {}, "", "", "", ""});
    return r;
  }

  Result<sdk::SetupStatus> connect(const ContainerNetRequest& r) {
    auto st = connect_container(*engine_, r);
    if (st) {
      connected_.push_back(r);
    }
    return st;
  }

  Network make_dual_network(const std::string& name, const std::string& v4, const std::string& v6) {
    auto store = NetworkStore::for_engine(*engine_);
    CreateOptions o;
    o.name = name;
    o.subnets = {v4, v6};
    o.interface_name = "bt" + tag_ + name.substr(0, 2);
    auto n = store.create(o);
    EXPECT_TRUE(n) << n.error().message();
    return *n;
  }

  fs::path dir_;
  std::string tag_;
  std::string ula_;  // an IPv6 unique local /64 of this test process
  std::unique_ptr<engine::Engine> engine_;
  std::vector<std::string> netns_;
  std::vector<ContainerNetRequest> connected_;
};

TEST_F(NetworkDriverTest, BridgeTwoNamespacesPingAndPublishedPort) {
  auto net = make_network("ta", "10.213.0.0/24");
  auto nsa = make_netns("a");
  auto nsb = make_netns("b");
  uint16_t port = free_port();
  auto ra = request("a", nsa, "ta");
  ra.ports = *parse_publish("127.0.0.1:" + std::to_string(port) + ":80");
  auto sa = connect(ra);
  ASSERT_TRUE(sa) << sa.error().message();
  ASSERT_EQ(sa->interfaces.size(), 1u);
  EXPECT_EQ(sa->interfaces[0].name, "eth0");
  EXPECT_EQ(sa->interfaces[0].addresses, std::vector<std::string>{"10.213.0.2/24"});
  EXPECT_EQ(sa->interfaces[0].gateway, "10.213.0.1");
  auto sb = connect(request("b", nsb, "ta"));
  ASSERT_TRUE(sb) << sb.error().message();
  EXPECT_EQ(sb->interfaces[0].addresses, std::vector<std::string>{"10.213.0.3/24"});

  auto ping = sh("nsenter --net=" + nsb + " busybox ping -c 1 -W 5 10.213.0.2");
  EXPECT_EQ(ping.rc, 0) << ping.out;
  auto route = sh("nsenter --net=" + nsa + " ip route");
  EXPECT_NE(route.out.find("default via 10.213.0.1 dev eth0"), std::string::npos) << route.out;

  pid_t server = serve_in(nsa, "a");
  EXPECT_EQ(fetch(port), "hello from a");
  stop(server);

  // The same host port again is refused before anything is made.
  auto rc = request("c", make_netns("c"), "ta");
  rc.ports = ra.ports;
  auto dup = connect_container(*engine_, rc);
  ASSERT_FALSE(dup);
  EXPECT_EQ(dup.error().code(), Errc::Conflict);
  EXPECT_NE(dup.error().message().find("already published by container a"), std::string::npos)
      << dup.error().message();
  auto leases = Ipam(NetworkStore::for_engine(*engine_).lease_file("ta"), net).leases();
  EXPECT_EQ(leases->size(), 2u);

  // Teardown leaves no veth, no bridge and no rule.
  for (auto& r : connected_) {
    ASSERT_TRUE(disconnect_container(*engine_, r));
    ASSERT_TRUE(disconnect_container(*engine_, r));  // idempotent
  }
  connected_.clear();
  auto links = sh("ip -o link");
  EXPECT_EQ(links.out.find(net.network_interface), std::string::npos) << links.out;
  auto rules = sh("nft list ruleset");
  EXPECT_EQ(rules.out.find("10.213.0."), std::string::npos) << rules.out;
  EXPECT_EQ(rules.out.find("dport " + std::to_string(port)), std::string::npos) << rules.out;
  EXPECT_EQ(Ipam(NetworkStore::for_engine(*engine_).lease_file("ta"), net).leases()->size(), 0u);
}

TEST_F(NetworkDriverTest, BridgeIpv6DualStackPingAndPublishedPort) {
  auto net = make_dual_network("t6", "10.213.6.0/24", ula_);
  ASSERT_TRUE(net.ipv6_enabled);
  auto v6 = *Ipv6Net::parse(ula_);
  std::string gw6 = format_ipv6(v6.addr + 1);
  std::string a6 = format_ipv6(v6.addr + 2);
  auto nsa = make_netns("a6");
  auto nsb = make_netns("b6");
  uint16_t port = free_port();
  auto ra = request("a6", nsa, "t6");
  ra.ports = *parse_publish(std::to_string(port) + ":80");
  auto sa = connect(ra);
  ASSERT_TRUE(sa) << sa.error().message();
  EXPECT_EQ(sa->interfaces[0].addresses, (std::vector<std::string>{"10.213.6.2/24", a6 + "/64"}));
  EXPECT_EQ(sa->interfaces[0].gateway, "10.213.6.1");
  ASSERT_TRUE(connect(request("b6", nsb, "t6")));

  auto ping = sh("nsenter --net=" + nsb + " busybox ping6 -c 1 -W 5 " + a6);
  EXPECT_EQ(ping.rc, 0) << ping.out;
  auto route = sh("nsenter --net=" + nsa + " ip -6 route");
  EXPECT_NE(route.out.find("default via " + gw6 + " dev eth0"), std::string::npos) << route.out;
  // The DNS responder answers AAAA with the IPv6 address, A with the IPv4 one.
  auto aaaa = sh("nsenter --net=" + nsb + " busybox nslookup -type=aaaa a6 10.213.6.1");
  EXPECT_NE(aaaa.out.find(a6), std::string::npos) << aaaa.out;
  auto a = sh("nsenter --net=" + nsb + " busybox nslookup -type=a a6 10.213.6.1");
  EXPECT_NE(a.out.find("10.213.6.2"), std::string::npos) << a.out;

  // The published port over IPv4 (loopback) and IPv6 (the gateway address).
  pid_t server = serve_in(nsa, "a6");
  EXPECT_EQ(fetch(port), "hello from a6");
  EXPECT_EQ(fetch6(gw6, port), "hello from a6");
  stop(server);
  auto rules = sh("nft list table inet berth");
  EXPECT_NE(rules.out.find("dnat ip6 to [" + a6 + "]:80"), std::string::npos) << rules.out;
  EXPECT_NE(rules.out.find("ip6 saddr " + ula_ + " ip6 daddr != " + ula_ + " masquerade"),
            std::string::npos)
      << rules.out;

  for (auto& r : connected_) {
    ASSERT_TRUE(disconnect_container(*engine_, r));
  }
  connected_.clear();
  EXPECT_EQ(sh("ip -o link").out.find(net.network_interface), std::string::npos);
  auto after = sh("nft list ruleset");
  EXPECT_EQ(after.out.find(ula_), std::string::npos) << after.out;
  EXPECT_EQ(after.out.find("dport " + std::to_string(port)), std::string::npos) << after.out;
}

TEST_F(NetworkDriverTest, IptablesBackendPublishedPortAndCleanup) {
  if (sh("command -v iptables-restore && command -v ip6tables-restore").rc != 0) {
    GTEST_SKIP() << "iptables is not installed";
  }
  make_engine("iptables");
  auto net = make_dual_network("tx", "10.213.7.0/24", ula_);
  auto ns = make_netns("x");
  uint16_t port = free_port();
  auto r = request("x", ns, "tx");
  r.ports = *parse_publish(std::to_string(port) + ":80");
  ASSERT_TRUE(connect(r));
  pid_t server = serve_in(ns, "x");
  EXPECT_EQ(fetch(port), "hello from x");
  auto v6 = *Ipv6Net::parse(ula_);
  EXPECT_EQ(fetch6(format_ipv6(v6.addr + 1), port), "hello from x");
  stop(server);
  auto v4rules = sh("iptables-save -t nat; iptables-save -t filter");
  EXPECT_NE(v4rules.out.find("--dport " + std::to_string(port) +
                             " -j DNAT --to-destination 10.213.7.2:80"),
            std::string::npos)
      << v4rules.out;
  EXPECT_NE(v4rules.out.find("-s 10.213.7.0/24 ! -d 10.213.7.0/24 -j MASQUERADE"),
            std::string::npos)
      << v4rules.out;
  auto v6rules = sh("ip6tables-save -t nat");
  EXPECT_NE(v6rules.out.find("-j DNAT --to-destination [" + format_ipv6(v6.addr + 2) + "]:80"),
            std::string::npos)
      << v6rules.out;
  // Nothing of it in nftables' own table.
  EXPECT_EQ(sh("nft list table inet berth").out.find("dport " + std::to_string(port)),
            std::string::npos);
  // Reload re-applies without duplicating.
  ASSERT_TRUE(reload_networks(*engine_));
  auto again = sh("iptables-save -t nat");
  size_t first = again.out.find("-j DNAT --to-destination 10.213.7.2:80");
  ASSERT_NE(first, std::string::npos);
  EXPECT_EQ(again.out.find("-j DNAT --to-destination 10.213.7.2:80", first + 1), std::string::npos)
      << again.out;

  ASSERT_TRUE(disconnect_container(*engine_, connected_.back()));
  connected_.clear();
  auto after = sh("iptables-save; ip6tables-save");
  EXPECT_EQ(after.out.find("10.213.7."), std::string::npos) << after.out;
  EXPECT_EQ(after.out.find(ula_), std::string::npos) << after.out;
  EXPECT_EQ(after.out.find("dport " + std::to_string(port)), std::string::npos) << after.out;
  EXPECT_EQ(sh("ip -o link").out.find(net.network_interface), std::string::npos);
}

TEST_F(NetworkDriverTest, ReloadRestoresFlushedRules) {
  make_network("tr", "10.213.4.0/24");
  auto ns = make_netns("r");
  uint16_t port = free_port();
  auto r = request("r", ns, "tr");
  r.ports = *parse_publish("127.0.0.1:" + std::to_string(port) + ":80");
  ASSERT_TRUE(connect(r));
  // Flush this container's port chain only (other berth users may share the table).
  std::string flushed;
  auto chains = sh("nft list table inet berth | grep -o 'chain ct-[0-9a-f]*-dnat'");
  std::istringstream ls(chains.out);
  for (std::string word, name; ls >> word >> name;) {
    if (sh("nft list chain inet berth " + name).out.find("dport " + std::to_string(port)) !=
        std::string::npos) {
      ASSERT_EQ(sh("nft flush chain inet berth " + name).rc, 0);
      flushed = name;
    }
  }
  ASSERT_FALSE(flushed.empty()) << chains.out;
  EXPECT_EQ(sh("nft list chain inet berth " + flushed).out.find("dport"), std::string::npos);
  auto ids = reload_networks(*engine_);
  ASSERT_TRUE(ids) << ids.error().message();
  EXPECT_EQ(*ids, std::vector<std::string>{r.container_id});
  pid_t server = serve_in(ns, "r");
  EXPECT_EQ(fetch(port), "hello from r");
  stop(server);
}

TEST_F(NetworkDriverTest, PortInUseOnHostIsAClearError) {
  make_network("tp", "10.213.1.0/24");
  UniqueFd s(::socket(AF_INET, SOCK_STREAM, 0));
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(s.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa), 0);
  socklen_t len = sizeof sa;
  ::getsockname(s.get(), reinterpret_cast<sockaddr*>(&sa), &len);
  ::listen(s.get(), 1);
  auto r = request("p", make_netns("p"), "tp");
  r.ports = *parse_publish("127.0.0.1:" + std::to_string(ntohs(sa.sin_port)) + ":80");
  auto st = connect_container(*engine_, r);
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().code(), Errc::Conflict);
  EXPECT_NE(st.error().message().find("in use on the host"), std::string::npos)
      << st.error().message();
  EXPECT_EQ(sh("ip -o link").out.find("bt" + tag_ + "tp"), std::string::npos);
}

TEST_F(NetworkDriverTest, InternalNetworkHasNoDefaultRoute) {
  auto net = make_network("ti", "10.213.2.0/24", true);
  auto ns = make_netns("i");
  auto st = connect(request("i", ns, "ti"));
  ASSERT_TRUE(st) << st.error().message();
  auto route = sh("nsenter --net=" + ns + " ip route");
  EXPECT_EQ(route.out.find("default"), std::string::npos) << route.out;
  EXPECT_NE(route.out.find("10.213.2.0/24 dev eth0"), std::string::npos) << route.out;
  auto rules = sh("nft list ruleset");
  EXPECT_EQ(rules.out.find("ip saddr 10.213.2.0/24 ip daddr != 10.213.2.0/24 masquerade"),
            std::string::npos)
      << rules.out;
  ASSERT_TRUE(disconnect_container(*engine_, connected_.back()));
  connected_.clear();
  EXPECT_EQ(sh("ip -o link").out.find(net.network_interface), std::string::npos);
}

TEST_F(NetworkDriverTest, SlirpPublishedPort) {
  if (sh("command -v slirp4netns").rc != 0) {
    GTEST_SKIP() << "slirp4netns is not installed";
  }
  make_network("ts", "", false, "slirp");
  auto ns = make_netns("s");
  uint16_t port = free_port();
  auto r = request("s", ns, "ts");
  r.ports = *parse_publish("127.0.0.1:" + std::to_string(port) + ":80");
  auto st = connect(r);
  ASSERT_TRUE(st) << st.error().message();
  EXPECT_EQ(st->interfaces[0].addresses, std::vector<std::string>{"10.0.2.100/24"});
  EXPECT_EQ(st->dns_servers, std::vector<std::string>{"10.0.2.3"});
  pid_t server = serve_in(ns, "s");
  EXPECT_EQ(fetch(port), "hello from s");
  stop(server);
  ASSERT_TRUE(disconnect_container(*engine_, r));
  ASSERT_TRUE(disconnect_container(*engine_, r));
  connected_.clear();
  auto procs = sh("pgrep -a -x slirp4netns");
  EXPECT_EQ(procs.out.find(ns), std::string::npos) << procs.out;
}

TEST_F(NetworkDriverTest, DnsResponderAnswersContainerNamesAndAliases) {
  auto store = NetworkStore::for_engine(*engine_);
  CreateOptions o;
  o.name = "td";
  o.subnets = {"10.213.3.0/24"};
  o.interface_name = "bt" + tag_ + "td";
  auto net = store.create(o);
  ASSERT_TRUE(net) << net.error().message();
  ASSERT_TRUE(net->dns_enabled);
  auto nsa = make_netns("da");
  auto nsb = make_netns("db");
  auto ra = request("web", nsa, "td");
  ra.networks[0].aliases = {"frontend"};
  auto sa = connect(ra);
  ASSERT_TRUE(sa) << sa.error().message();
  EXPECT_EQ(sa->dns_servers, std::vector<std::string>{"10.213.3.1"});
  auto sb = connect(request("cache", nsb, "td"));
  ASSERT_TRUE(sb) << sb.error().message();

  for (const char* name : {"web", "frontend", "WEB.dns.berth"}) {
    auto r = sh("nsenter --net=" + nsb + " busybox nslookup " + name + " 10.213.3.1");
    EXPECT_NE(r.out.find("10.213.3.2"), std::string::npos) << name << ": " << r.out;
  }
  auto r = sh("nsenter --net=" + nsa + " busybox nslookup cache 10.213.3.1");
  EXPECT_NE(r.out.find("10.213.3.3"), std::string::npos) << r.out;

  // resolv.conf of a container on this network names the responder only.
  ResolvInput ri;
  ri.host_resolv_conf = "nameserver 192.0.2.53\n";
  ri.responders = sa->dns_servers;
  EXPECT_EQ(*resolv_conf(ri), "nameserver 10.213.3.1\n");

  for (auto& c : connected_) {
    ASSERT_TRUE(disconnect_container(*engine_, c));
  }
  connected_.clear();
  auto procs = sh("pgrep -a -x berth-dns");
  auto pidfile = util::read_file(fs::path(engine_->runroot()) / "networks" / "dns-td.pid");
  EXPECT_FALSE(pidfile) << "responder pid file left behind";
  auto listen = sh("ss -uln");
  EXPECT_EQ(listen.out.find("10.213.3.1:53"), std::string::npos) << listen.out;
}

TEST_F(NetworkDriverTest, CreateNetnsMakesAnEmptyNamespace) {
  auto ns = make_netns("e");
  auto links = sh("nsenter --net=" + ns + " ip -o link");
  EXPECT_EQ(links.rc, 0) << links.out;
  EXPECT_NE(links.out.find("lo:"), std::string::npos);
  EXPECT_EQ(links.out.find("eth0"), std::string::npos);
  EXPECT_EQ(create_netns(ns).error().code(), Errc::AlreadyExists);
  ASSERT_TRUE(remove_netns(ns));
  ASSERT_TRUE(remove_netns(ns));
  EXPECT_FALSE(fs::exists(ns));
}

}  // namespace
}  // namespace berth::network

namespace berth::network {
namespace {

// A measurement, not a check: run with --gtest_also_run_disabled_tests. iperf3 through a
// published port on 127.0.0.1, for each driver.
TEST_F(NetworkDriverTest, DISABLED_PublishedPortThroughput) {
  if (sh("command -v iperf3").rc != 0) {
    GTEST_SKIP() << "iperf3 is not installed";
  }
  struct Case {
    const char* name;
    const char* driver;
    const char* subnet;
  };
  for (const Case& c : {Case{"tb", "bridge", "10.213.9.0/24"}, Case{"tl", "slirp", ""}}) {
    make_network(c.name, c.subnet, false, c.driver);
    auto ns = make_netns(std::string(c.name) + "ns");
    uint16_t port = free_port();
    auto r = request(std::string("perf") + c.name, ns, c.name);
    r.ports = *parse_publish("127.0.0.1:" + std::to_string(port) + ":5201");
    auto st = connect(r);
    ASSERT_TRUE(st) << st.error().message();
    pid_t server = ::fork();
    if (server == 0) {
      ::execlp("nsenter", "nsenter", ("--net=" + ns).c_str(), "iperf3", "-s", "-1", "-p", "5201",
               nullptr);
      ::_exit(127);
    }
    // Until the server listens, a connection is refused (bridge) or reset (slirp).
    Cmd out;
    nlohmann::json j;
    for (int i = 0; i < 50; ++i) {
      out = sh("iperf3 -c 127.0.0.1 -p " + std::to_string(port) + " -t 5 -J");
      j = nlohmann::json::parse(out.out, nullptr, false);
      if (out.rc == 0 && !j.is_discarded() && !j.contains("error") && j.contains("end") &&
          j["end"].contains("sum_received")) {
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    stop(server);
    ASSERT_TRUE(j.contains("end") && j["end"].contains("sum_received")) << out.out;
    double gbps = j["end"]["sum_received"].value("bits_per_second", 0.0) / 1e9;
    std::printf("published port throughput, %s: %.2f Gbit/s\n", c.driver, gbps);
  }
}

}  // namespace
}  // namespace berth::network
