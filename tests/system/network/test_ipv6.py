"""IPv6 on bridge networks: `network create --ipv6` (dual stack with a unique local /64 picked by
berth) and an IPv6-only network from `--subnet`; containers reach each other by IPv6 address and
by name (the DNS responder answers AAAA), `inspect` shows GlobalIPv6Address as Podman and Docker
do, a port published on an IPv6-only network is reached through the bridge's gateway, and
nothing is left once the containers are gone. A static address from `--ip6`, `--network
NAME:ip6=` or `network connect --ip6` is the container's across stop/start and refused when
outside the IPv6 subnet, taken, or on a network without one.

Only namespaces the test makes are used: the networks are unique local subnets on bridges named
after the test; nothing is sent past a container's gateway."""
import ipaddress
import os
import random
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "containers"))

import test_container_net as tcn  # noqa: E402
from container_fixture import IMAGE  # noqa: E402
from test_container_net import HTTPD, free_port, links, nft_ruleset, short_hash  # noqa: E402

NET_RAW = ("--cap-add", "NET_RAW")


def random_ula():
    """A unique local /64 of the test's own (RFC 4193 random global id), never fd00::/64."""
    gid = random.getrandbits(40) | 1
    base = (0xFD << 120) | (gid << 80)
    return ipaddress.IPv6Network((base, 64))


class Ipv6NetworkTest(tcn.NetworkTestBase):
    default_subnet = "10.231.64.0/24"

    def exec_out(self, name, *cmd):
        return self.berth("exec", name, *cmd)

    def wait_http(self, name, url):
        for _ in range(100):
            # busybox 1.35's `wget -T` crashes (SIGSEGV): `timeout` bounds it instead.
            r = self.exec_out(name, "timeout", "5", "wget", "-q", "-O", "-", url)
            if r.rc == 0:
                return r.out
            time.sleep(0.1)
        self.fail(f"wget {url} from {name}: {r}")

    def test_dual_stack_network(self):
        iface = self.net("dual", "10.231.20.0/24", "--ipv6")
        net = self.json("network", "inspect", "dual")[0]
        self.assertTrue(net["ipv6_enabled"], net)
        subnets = [s["subnet"] for s in net["subnets"]]
        self.assertEqual(subnets[0], "10.231.20.0/24")
        self.assertEqual(len(subnets), 2, net)
        v6net = ipaddress.ip_network(subnets[1])
        self.assertEqual(v6net.prefixlen, 64)
        self.assertTrue(v6net.subnet_of(ipaddress.ip_network("fd00::/8")), v6net)
        self.assertNotEqual(v6net, ipaddress.ip_network("fd00::/64"), "the host's own subnet")
        gw6 = str(v6net.network_address + 1)
        self.assertEqual(net["subnets"][1]["gateway"], gw6)

        cid = self.run_d("six1", "--network", "dual", IMAGE, "sh", "-c", HTTPD.format("six1"))
        self.run_d("six2", "--network", "dual", IMAGE, "sleep", "1000")
        ns = self.inspect("six1")["NetworkSettings"]
        ep = ns["Networks"]["dual"]
        self.assertTrue(ep["IPAddress"].startswith("10.231.20."), ep)
        self.assertEqual(ep["Gateway"], "10.231.20.1")
        ip6 = ep["GlobalIPv6Address"]
        self.assertIn(ipaddress.ip_address(ip6), v6net)
        self.assertEqual(ep["GlobalIPv6PrefixLen"], 64)
        self.assertEqual(ep["IPv6Gateway"], gw6)
        self.assertEqual(ns["GlobalIPv6Address"], ip6)
        self.assertEqual(ns["IPv6Gateway"], gw6)
        # The bridge has both gateways; the container both addresses and an IPv6 default route.
        out = subprocess.run(["ip", "-o", "addr", "show", "dev", iface], capture_output=True,
                             text=True).stdout
        self.assertIn(f"{gw6}/64", out)
        self.assertIn("10.231.20.1/24", out)
        r = self.ok("exec", "six1", "ip", "-o", "-6", "addr", "show", "eth0")
        self.assertIn(f"{ip6}/64", r.out)
        r = self.ok("exec", "six1", "ip", "-6", "route")
        self.assertIn(f"default via {gw6}", r.out)
        # By address and by name, over IPv6.
        r = self.berth("run", "--rm", *NET_RAW, "--network", "dual", IMAGE, "ping6", "-c1",
                       "-W2", ip6)
        self.assertEqual(r.rc, 0, r)
        r = self.berth("run", "--rm", *NET_RAW, "--network", "dual", IMAGE, "ping6", "-c1",
                       "-W2", "six1")
        self.assertEqual(r.rc, 0, r)
        self.assertIn(ip6, r.out, r)
        r = self.ok("exec", "six2", "nslookup", "-type=aaaa", "six1")
        self.assertIn(ip6, r.out, r)
        r = self.ok("exec", "six2", "nslookup", "-type=a", "six1")
        self.assertIn(ep["IPAddress"], r.out, r)
        self.assertEqual(self.wait_http("six2", f"http://[{ip6}]/"), "hello-from-six1\n")
        # /etc/hosts of the container lists both of its addresses.
        hosts = self.ok("exec", "six1", "cat", "/etc/hosts").out
        self.assertIn(f"{ip6}\t", hosts)
        self.ok("rm", "-f", "-t", "0", "six1")
        self.assert_no_trace(cid, ["dual"])

    def test_ipv6_only_network_name_and_published_port(self):
        sub = random_ula()
        iface = self.net("only6", str(sub))
        net = self.json("network", "inspect", "only6")[0]
        self.assertTrue(net["ipv6_enabled"], net)
        self.assertEqual([s["subnet"] for s in net["subnets"]], [str(sub)])
        gw6 = str(sub.network_address + 1)
        port = free_port()
        cid = self.run_d("web6", "--network", "only6", "-p", f"{port}:80", IMAGE, "sh", "-c",
                         HTTPD.format("web6"))
        self.run_d("cli6", "--network", "only6", IMAGE, "sleep", "1000")
        ep = self.inspect("web6")["NetworkSettings"]["Networks"]["only6"]
        self.assertEqual(ep["IPAddress"], "")
        ip6 = ep["GlobalIPv6Address"]
        self.assertIn(ipaddress.ip_address(ip6), sub)
        self.assertEqual(ep["IPv6Gateway"], gw6)
        # The only address of the name is IPv6: wget by name goes over IPv6.
        self.assertEqual(self.wait_http("cli6", "http://web6/"), "hello-from-web6\n")
        resolv = self.ok("exec", "cli6", "cat", "/etc/resolv.conf").out
        self.assertIn(f"nameserver {gw6}", resolv)
        # The published port through the gateway's IPv6 address (the DNAT rule's ip6 form).
        r = subprocess.run(["curl", "-s", "-g", "--max-time", "5", "--retry", "20",
                            "--retry-connrefused", "--retry-delay", "0",
                            f"http://[{gw6}]:{port}/"], capture_output=True, text=True)
        self.assertEqual(r.stdout, "hello-from-web6\n", r)
        self.assertIn("ct-" + short_hash(cid), nft_ruleset())
        self.ok("rm", "-f", "-t", "0", "web6", "cli6")
        self.assert_no_trace(cid, ["only6"])
        self.assertNotIn(iface, links(), "the bridge goes with its last container")

    def test_static_ip6(self):
        sub = random_ula()
        self.net("st6", "10.231.21.0/24", "--subnet", str(sub))
        net = self.json("network", "inspect", "st6")[0]
        self.assertEqual([x["subnet"] for x in net["subnets"]], ["10.231.21.0/24", str(sub)])
        want = str(sub.network_address + 0x42)
        self.run_d("fix6", "--network", "st6", "--ip6", want, IMAGE, "sleep", "1000")

        def check():
            ns = self.inspect("fix6")["NetworkSettings"]
            ep = ns["Networks"]["st6"]
            self.assertEqual(ep["GlobalIPv6Address"], want, ep)
            self.assertEqual(ep["GlobalIPv6PrefixLen"], 64)
            self.assertEqual(ep["IPv6Gateway"], str(sub.network_address + 1))
            self.assertTrue(ep["IPAddress"].startswith("10.231.21."), ep)
            self.assertEqual(ep["IPAMConfig"], {"IPv6Address": want}, ep)
            self.assertEqual(ns["GlobalIPv6Address"], want)
            r = self.ok("exec", "fix6", "ip", "-o", "-6", "addr", "show", "eth0")
            self.assertIn(f"{want}/64", r.out)

        check()
        # The address is the container's: a second one asking for it is refused.
        r = self.berth("run", "--rm", "--network", "st6", "--ip6", want, IMAGE, "true")
        self.assertEqual(r.rc, 125, r)
        self.assertIn(f"IP address {want} on network st6 is already allocated", r.err)
        self.assertIn("--ip6", r.err)
        # The same address again after stop/start (and restart).
        self.ok("stop", "-t", "0", "fix6")
        self.ok("start", "fix6")
        check()
        self.ok("restart", "-t", "0", "fix6")
        check()

    def test_static_ip6_refused(self):
        sub = random_ula()
        self.net("rf6", str(sub))
        self.net("rf4", "10.231.22.0/24")
        other = random_ula()
        cases = [
            (["--network", "rf6", "--ip6", str(other.network_address + 5)],
             f"is not a host address of subnet {sub} of network rf6"),
            (["--network", "rf6", "--ip6", str(sub.network_address)],
             "is not a host address of subnet"),
            (["--network", "rf6", "--ip6", "10.231.22.5"], "is not an IPv6 address"),
            (["--network", "rf6", "--ip6", "fd01::zz"], "--ip6 fd01::zz"),
            (["--network", "rf4", "--ip6", "fd01::5"], "network rf4 has no IPv6 subnet"),
            (["--network", "host", "--ip6", str(sub.network_address + 5)],
             "need a bridge network"),
        ]
        for args, msg in cases:
            for cmd in ("create", "run"):
                r = self.berth(cmd, "--rm", *args, IMAGE, "true")
                self.assertEqual(r.rc, 125, f"{cmd} {args}: {r}")
                self.assertIn(msg, r.err, f"{cmd} {args}: {r}")
                self.assertTrue(r.err.startswith("Error: "), r.err)
        self.assertEqual(self.ok("ps", "-aq").out, "", "nothing is left of refused containers")

    def test_static_ip6_in_network_option_and_connect(self):
        a = random_ula()
        b = random_ula()
        self.net("opt6", str(a))
        self.net("con6", str(b))
        want_a = str(a.network_address + 0x10)
        want_b = str(b.network_address + 0x20)
        # --network NAME:ip6=ADDR, as Podman.
        self.run_d("op6", "--network", f"opt6:ip6={want_a}", IMAGE, "sleep", "1000")
        nets = self.inspect("op6")["NetworkSettings"]["Networks"]
        self.assertEqual(nets["opt6"]["GlobalIPv6Address"], want_a)
        self.assertEqual(nets["opt6"]["IPAMConfig"], {"IPv6Address": want_a})
        # network connect --ip6 to a running container: eth1 gets that address.
        r = self.berth("network", "connect", "--ip6", "fd01::5", "con6", "op6")
        self.assertEqual(r.rc, 125, r)
        self.assertIn("is not a host address of subnet", r.err)
        self.ok("network", "connect", "--ip6", want_b, "con6", "op6")
        nets = self.inspect("op6")["NetworkSettings"]["Networks"]
        self.assertEqual(nets["con6"]["GlobalIPv6Address"], want_b, nets)
        self.assertEqual(nets["con6"]["IPAMConfig"], {"IPv6Address": want_b})
        r = self.ok("exec", "op6", "ip", "-o", "-6", "addr", "show", "eth1")
        self.assertIn(f"{want_b}/64", r.out)
        # Both survive a restart.
        self.ok("restart", "-t", "0", "op6")
        nets = self.inspect("op6")["NetworkSettings"]["Networks"]
        self.assertEqual(nets["opt6"]["GlobalIPv6Address"], want_a)
        self.assertEqual(nets["con6"]["GlobalIPv6Address"], want_b)

    def test_bad_ipv6_input(self):
        r = self.berth("network", "create", "--subnet", "fd01:2::1/64", "bad6")
        self.assertEqual(r.rc, 125, r)
        self.assertIn("host bits", r.err)
        r = self.berth("network", "create", "--subnet", "fd01:2::/127", "bad6")
        self.assertEqual(r.rc, 125, r)
        self.assertIn("too small", r.err)
        r = self.berth("network", "create", "--subnet", "fd01:2::/64", "--gateway", "10.0.0.1",
                       "bad6")
        self.assertEqual(r.rc, 125, r)
        # The host's own IPv6 subnets are refused like its IPv4 ones.
        with open("/proc/net/ipv6_route") as f:
            routes = [l.split() for l in f]
        taken = [r for r in routes if int(r[1], 16) == 64 and not r[0].startswith("fe80")]
        if taken:
            addr = ipaddress.IPv6Address(int(taken[0][0], 16))
            r = self.berth("network", "create", "--subnet", f"{addr}/64", "bad6")
            self.assertEqual(r.rc, 125, r)
            self.assertIn("already used on the host", r.err)
        a = random_ula()
        self.net("ov1", str(a))
        r = self.berth("network", "create", "--subnet", str(a), "ov2")
        self.assertEqual(r.rc, 125, r)
        self.assertIn("overlaps", r.err)
        self.assertNotIn("ov2", self.ok("network", "ls", "--format", "{{.Name}}").out.split())


if __name__ == "__main__":
    unittest.main()
