"""A bridge network whose subnet the host also routes through another interface (another
engine's bridge on the same subnet, such as Podman's cni-podman0 left with 10.88.0.0/16) is
refused at setup with an error naming that interface, and nothing of the container is left;
broader routes (a VPN's /8) do not count, and once the clash is gone the same container starts.

Only an interface the test makes is used: an empty bridge carrying the test's own subnet, removed
at the end; nothing is sent anywhere."""
import os
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "containers"))

import test_container_net as tcn  # noqa: E402
from container_fixture import IMAGE  # noqa: E402
from test_container_net import links, nft_ruleset  # noqa: E402


def ip(*args):
    subprocess.run(["ip", *args], check=True, capture_output=True)


class RouteClashTest(tcn.NetworkTestBase):
    default_subnet = "10.231.96.0/24"

    def other_bridge(self, cidr):
        """An empty bridge holding cidr (so the host routes it there, linkdown, as Podman's
        cni-podman0 after its last container), removed at cleanup."""
        name = f"bx{self.tag}{len(links()) % 100}"
        ip("link", "add", name, "type", "bridge")
        self.addCleanup(subprocess.run, ["ip", "link", "delete", name], capture_output=True)
        ip("addr", "add", cidr, "dev", name)
        ip("link", "set", name, "up")
        return name

    def test_subnet_routed_elsewhere_is_refused_and_leaves_nothing(self):
        iface = self.net("clash", "10.231.97.0/24")
        other = self.other_bridge("10.231.97.200/24")
        r = self.berth("run", "--name", "clashing", "--network", "clash", IMAGE, "true")
        self.assertNotEqual(r.rc, 0)
        self.assertIn("10.231.97.0/24 is also routed through " + other, r.err)
        self.assertIn("ip link delete " + other, r.err)
        # Nothing half-made: no container, namespace, bridge (with the veth on it) or rules.
        self.assertEqual(self.ok("ps", "-a", "-q").out.strip(), "")
        netns = os.path.join(self.runroot, "netns")
        self.assertEqual(os.listdir(netns) if os.path.isdir(netns) else [], [])
        self.assertNotIn(iface, links())
        self.assertEqual(nft_ruleset().count(iface), 0)

        # The clash gone, the same container starts and reaches its gateway.
        ip("link", "delete", other)
        self.ok("run", "--rm", "--name", "clashing", "--network", "clash", IMAGE, "true")
        out = self.ok("run", "--rm", "--cap-add", "NET_RAW", "--network", "clash", IMAGE,
                      "ping", "-c", "1", "-W", "2", "10.231.97.1").out
        self.assertIn("1 packets received", out)

    def test_a_more_specific_route_inside_the_subnet_clashes(self):
        self.net("part", "10.231.98.0/24")
        other = self.other_bridge("10.231.98.128/25")
        r = self.berth("run", "--rm", "--network", "part", IMAGE, "true")
        self.assertNotEqual(r.rc, 0)
        self.assertIn("routed through " + other, r.err)

    def test_a_broader_route_does_not_clash(self):
        # 10.231.99.0/24 inside a /23 routed elsewhere: the bridge's /24 is more specific and wins.
        self.net("broad", "10.231.99.0/24")
        self.other_bridge("10.231.98.1/23")
        out = self.ok("run", "--rm", "--cap-add", "NET_RAW", "--network", "broad", IMAGE,
                      "ping", "-c", "1", "-W", "2", "10.231.99.1").out
        self.assertIn("1 packets received", out)


if __name__ == "__main__":
    unittest.main()
