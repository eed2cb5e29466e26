"""berth network create/ls/inspect/rm/prune/exists as a user runs them."""
import json
import os
import unittest

from berth_test import BerthTestCase, PLUGIN_DIR


class NetworkCliTest(BerthTestCase):
    def setUp(self):
        self.env = dict(self.env)
        if PLUGIN_DIR:
            self.env["BERTH_PLUGIN_PATH"] = PLUGIN_DIR
        # Each test starts with no network config.
        for name in self.json("network", "ls", "--format", "json"):
            if name["name"] != "berth":
                self.berth("network", "rm", "-f", name["name"])

    def test_default_network_exists_implicitly(self):
        # The built-in default (the fixture gives each class a subnet of its own).
        empty = os.path.join(self.tmp, "empty.conf")
        self.env["CONTAINERS_CONF"] = empty
        self.addCleanup(self.env.__setitem__, "CONTAINERS_CONF",
                        os.path.join(self.tmp, "containers.conf"))
        r = self.ok("network", "ls")
        lines = r.out.splitlines()
        self.assertEqual(lines[0].split(), ["NETWORK", "ID", "NAME", "DRIVER"])
        self.assertIn("berth", lines[1].split())
        self.assertIn("bridge", lines[1].split())
        net = self.json("network", "inspect", "berth")[0]
        self.assertEqual(net["network_interface"], "berth0")
        self.assertEqual(net["subnets"], [{"subnet": "10.88.0.0/16", "gateway": "10.88.0.1"}])
        self.assertEqual(self.berth("network", "exists", "berth").rc, 0)
        r = self.berth("network", "rm", "berth")
        self.assertEqual(r.rc, 125)
        self.assertIn("Error: default network berth cannot be removed", r.err)

    def test_create_inspect_ls_rm(self):
        r = self.ok("network", "create", "--subnet", "10.213.40.0/24", "--gateway", "10.213.40.254",
                    "--ip-range", "10.213.40.128/25", "--label", "team=a", "--opt", "mtu=1400",
                    "--internal", "front")
        self.assertEqual(r.out, "front\n")
        net = self.json("network", "inspect", "front")[0]
        self.assertEqual(net["name"], "front")
        self.assertEqual(len(net["id"]), 64)
        self.assertEqual(net["driver"], "bridge")
        self.assertEqual(net["subnets"][0]["subnet"], "10.213.40.0/24")
        self.assertEqual(net["subnets"][0]["gateway"], "10.213.40.254")
        self.assertEqual(net["subnets"][0]["lease_range"],
                         {"start_ip": "10.213.40.128", "end_ip": "10.213.40.254"})
        self.assertTrue(net["internal"])
        self.assertTrue(net["dns_enabled"])
        self.assertEqual(net["options"], {"mtu": "1400"})
        self.assertEqual(net["labels"], {"team": "a"})
        self.assertEqual(net["ipam_options"], {"driver": "host-local"})
        self.assertTrue(os.path.exists(os.path.join(self.root, "networks", "front.json")))
        self.assertEqual(self.ok("network", "inspect", "--format", "{{.network_interface}}",
                                 "front").out, "berth1\n")
        self.assertEqual(self.ok("network", "ls", "-q", "--filter", "label=team=a").out,
                         "front\n")
        self.assertEqual(self.ok("network", "ls", "--noheading", "--format", "{{.Name}}",
                                 "--filter", "name=^fr").out, "front\n")
        self.assertEqual(self.ok("network", "ls", "-q", "--filter", "driver=slirp").out, "")
        self.assertEqual(self.ok("network", "rm", "front").out, "front\n")
        self.assertEqual(self.berth("network", "exists", "front").rc, 1)

    def test_auto_name_and_subnet(self):
        self.assertEqual(self.ok("network", "create").out, "berth1\n")
        self.assertEqual(self.ok("network", "create").out, "berth2\n")
        a = self.json("network", "inspect", "berth1")[0]["subnets"][0]["subnet"]
        b = self.json("network", "inspect", "berth2")[0]["subnets"][0]["subnet"]
        self.assertNotEqual(a, b)
        self.assertTrue(a.endswith("/24"))

    def test_bad_input_makes_nothing(self):
        self.ok("network", "create", "--subnet", "10.213.41.0/24", "one")
        cases = [
            (["--subnet", "10.213.41.128/25", "two"], "overlaps subnet 10.213.41.0/24 of network one"),
            (["--subnet", "10.213.42.1/24", "two"], "host bits are set"),
            (["--subnet", "nonsense", "two"], "invalid subnet"),
            (["--subnet", "10.213.42.0/24", "--gateway", "10.213.43.1", "two"],
             "is not a host address of subnet"),
            (["-d", "nosuchdriver", "two"], "unsupported driver nosuchdriver"),
            (["--opt", "mtu=abc", "two"], "--opt mtu=abc"),
            (["one"], "already exists"),
            (["bad/name"], "is invalid"),
        ]
        for args, msg in cases:
            r = self.berth("network", "create", *args)
            self.assertEqual(r.rc, 125, f"{args}: {r}")
            self.assertIn(msg, r.err, f"{args}: {r}")
            self.assertTrue(r.err.startswith("Error: "), r.err)
        self.assertEqual(self.berth("network", "exists", "two").rc, 1)
        self.assertEqual(self.ok("network", "create", "--ignore", "one").out, "one\n")

    def test_rm_unknown_and_prune(self):
        r = self.berth("network", "rm", "nope")
        self.assertEqual(r.rc, 125)
        self.assertIn("unable to find network with name or ID nope", r.err)
        self.ok("network", "create", "--label", "x=1", "p1")
        self.ok("network", "create", "p2")
        self.assertEqual(self.ok("network", "prune", "-f", "--filter", "label=x=1").out, "p1\n")
        self.assertEqual(self.ok("network", "prune", "-f").out, "p2\n")
        names = [n["name"] for n in self.json("network", "ls", "--format", "json")]
        self.assertEqual(names, ["berth"])

    def test_connect_unknown_container_or_network_is_clear(self):
        r = self.berth("network", "connect", "berth", "somecontainer")
        self.assertEqual(r.rc, 125)
        self.assertIn('no container with name or ID "somecontainer" found', r.err)
        r = self.berth("network", "disconnect", "berth", "somecontainer")
        self.assertEqual(r.rc, 125)
        self.assertIn("somecontainer", r.err)


if __name__ == "__main__":
    unittest.main()
