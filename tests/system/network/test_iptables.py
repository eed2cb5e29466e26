"""The iptables firewall backend, chosen through containers.conf (`[network] firewall_driver =
"iptables"`, as Podman 5): a published port reached on 127.0.0.1 and through hairpin from a
container of the same network, the rules in iptables' tables (not in nftables' `inet berth`), and
no rule, chain or interface left once the containers are gone.

Only loopback and the namespaces the test makes are used."""
import os
import shlex
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "containers"))

import test_container_net as tcn  # noqa: E402
from container_fixture import IMAGE  # noqa: E402
from test_container_net import HTTPD, fetch, free_port, links, short_hash  # noqa: E402


def iptables_rules():
    """Everything in iptables' and ip6tables' nat and filter tables."""
    out = ""
    for tool in ("iptables-save", "ip6tables-save"):
        for table in ("nat", "filter"):
            r = subprocess.run([tool, "-t", table], capture_output=True, text=True)
            out += r.stdout
    return out


def nft_berth_table():
    r = subprocess.run(["nft", "list", "table", "inet", "berth"], capture_output=True, text=True)
    return r.stdout if r.returncode == 0 else ""


class IptablesBackendTest(tcn.NetworkTestBase):
    default_subnet = "10.231.72.0/24"
    extra_conf = 'firewall_driver = "iptables"\n'

    def test_published_port_and_hairpin_through_iptables(self):
        iface = self.net("ipt", "10.231.73.0/24")
        nkey = "nw-" + short_hash("ipt/10.231.73.0/24")
        port = free_port()
        # On every host address: 127.0.0.1 for the host, the gateway for hairpin.
        cid = self.run_d("iweb", "--network", "ipt", "-p", f"{port}:80", IMAGE, "sh",
                         "-c", HTTPD.format("iptables"))
        self.assertEqual(fetch(f"http://127.0.0.1:{port}/"), "hello-from-iptables\n")
        ckey = "ct-" + short_hash(cid)
        rules = iptables_rules()
        self.assertIn(f":{ckey}-dnat", rules)
        self.assertIn(f"--dport {port} -j DNAT --to-destination", rules)
        # The network's jumps are tagged with the key, the bridge and a hash of the rules.
        self.assertRegex(rules, f'-A POSTROUTING -m comment --comment "{nkey}@{iface}/[0-9a-f]{{8}}" '
                                f'-j {nkey}-post')
        self.assertRegex(rules, f'-A FORWARD -m comment --comment "{nkey}@{iface}/[0-9a-f]{{8}}" '
                                f'-j {nkey}-fwd')
        self.assertIn("-j BERTH-PORTS", rules)
        # Nothing of it in nftables' own table.
        self.assertNotIn(ckey, nft_berth_table())
        self.assertNotIn(nkey, nft_berth_table())
        # Hairpin: another container of the network reaches the port through the gateway.
        self.run_d("icli", "--network", "ipt", IMAGE, "sleep", "1000")
        r = self.ok("exec", "icli", "timeout", "5", "wget", "-q", "-O", "-",
                    f"http://10.231.73.1:{port}/")
        self.assertEqual(r.out, "hello-from-iptables\n")
        # Re-applying (network reload) does not duplicate the jumps.
        self.ok("network", "reload", "--all")
        rules = iptables_rules()
        self.assertEqual(rules.count(f"-j {nkey}-post"), 1, rules)
        self.assertEqual(rules.count(f"--comment {ckey} -j {ckey}-dnat"), 1, rules)
        self.assertEqual(fetch(f"http://127.0.0.1:{port}/"), "hello-from-iptables\n")

        self.ok("rm", "-f", "-t", "0", "iweb", "icli")
        rules = iptables_rules()
        self.assertNotIn(ckey, rules)
        self.assertNotIn(nkey, rules)
        self.assertNotIn(iface, links())
        with self.assertRaises(AssertionError):
            fetch(f"http://127.0.0.1:{port}/", attempts=1)

    def test_internal_network_through_iptables(self):
        self.net("iint", "10.231.74.0/24", "--internal")
        nkey = "nw-" + short_hash("iint/10.231.74.0/24")
        self.run_d("iin", "--network", "iint", IMAGE, "sleep", "1000")
        rules = iptables_rules()
        self.assertIn(f"-A {nkey}-fwd -s 10.231.74.0/24 ! -d 10.231.74.0/24 -j DROP", rules)
        self.assertNotIn(f"-A {nkey}-post -s 10.231.74.0/24 ! -d 10.231.74.0/24 -j MASQUERADE",
                         rules)
        r = self.ok("exec", "iin", "ip", "route")
        self.assertNotIn("default", r.out)
        self.ok("rm", "-f", "-t", "0", "iin")
        for _ in range(50):
            if nkey not in iptables_rules():
                break
            time.sleep(0.1)
        self.assertNotIn(nkey, iptables_rules())

    def test_ports_follow_network_disconnect_and_connect(self):
        # The ports move to the network now first, go with the last one, and come back with a
        # connect: one DNAT chain jump at each step, none left after rm.
        self.net("ipa", "10.231.74.0/24")
        self.net("ipb", "10.231.75.0/24")
        port = free_port()
        cid = self.run_d("imove", "--network", "ipa", "-p", f"127.0.0.1:{port}:80", IMAGE, "sh",
                         "-c", HTTPD.format("imove"))
        ckey = "ct-" + short_hash(cid)
        jump = f"--comment {ckey} -j {ckey}-dnat"
        self.assertEqual(fetch(f"http://127.0.0.1:{port}/"), "hello-from-imove\n")
        self.ok("network", "connect", "ipb", "imove")
        self.ok("network", "disconnect", "ipa", "imove")
        self.assertEqual(fetch(f"http://127.0.0.1:{port}/"), "hello-from-imove\n")
        self.assertEqual(iptables_rules().count(jump), 1)
        self.ok("network", "disconnect", "ipb", "imove")
        self.assertNotIn(ckey, iptables_rules())
        with self.assertRaises(AssertionError):
            fetch(f"http://127.0.0.1:{port}/", attempts=1)
        self.ok("network", "connect", "ipa", "imove")
        self.assertEqual(fetch(f"http://127.0.0.1:{port}/"), "hello-from-imove\n")
        self.assertEqual(iptables_rules().count(jump), 1)
        self.ok("rm", "-f", "-t", "0", "imove")
        self.assertNotIn(ckey, iptables_rules())


class FirewallFallbackTest(tcn.NetworkTestBase):
    """firewall_driver unset: nftables where libnftables loads, else iptables (as Podman 5)."""
    default_subnet = "10.231.78.0/24"

    def test_falls_back_to_iptables_without_libnftables(self):
        iface = self.net("ifb", "10.231.79.0/24", "--disable-dns")
        nkey = "nw-" + short_hash("ifb/10.231.79.0/24")
        lib = os.path.realpath("/usr/lib/x86_64-linux-gnu/libnftables.so.1")
        if not os.path.exists(lib):
            self.skipTest("libnftables is not installed: the fallback is the only way here")
        berth = " ".join(shlex.quote(a) for a in self.cmd())
        out = os.path.join(self.tmp, "fallback")
        os.makedirs(out, exist_ok=True)
        # In a mount namespace of its own, libnftables is an empty file: dlopen fails there only.
        # The whole life of the container stays in that namespace (its mounts are private to it).
        script = f"""set -e
mount --bind /dev/null {shlex.quote(lib)}
{berth} run -d --name ifb1 --network ifb {IMAGE} sleep 1000 >/dev/null
iptables-save -t nat > {out}/nat.txt
umount {shlex.quote(lib)}
nft list table inet berth > {out}/nft.txt 2>/dev/null || true
mount --bind /dev/null {shlex.quote(lib)}
{berth} rm -f -t 0 ifb1 >/dev/null
iptables-save -t nat > {out}/nat-after.txt
"""
        r = subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c", script],
                           capture_output=True, text=True, env=self.env, timeout=120)
        self.addCleanup(self.berth, "rm", "-f", "-t", "0", "ifb1")
        self.assertEqual(r.returncode, 0, r.stderr)
        with open(os.path.join(out, "nat.txt")) as f:
            self.assertRegex(f.read(), f"--comment \"?{nkey}@{iface}/")
        with open(os.path.join(out, "nft.txt")) as f:  # berth's own table (iptables-nft has others)
            self.assertNotIn(nkey, f.read())
        with open(os.path.join(out, "nat-after.txt")) as f:
            self.assertNotIn(nkey, f.read())


class FirewallDriverConfigTest(tcn.NetworkTestBase):
    default_subnet = "10.231.76.0/24"
    extra_conf = 'firewall_driver = "ipchains"\n'

    def test_unknown_firewall_driver_is_a_clear_error(self):
        self.net("fwbad", "10.231.77.0/24")
        r = self.berth("run", "--rm", "--network", "fwbad", IMAGE, "true")
        self.assertEqual(r.rc, 125, r)
        self.assertIn("firewall_driver", r.err)
        self.assertIn("ipchains", r.err)
        self.assertIn("nftables, iptables or none", r.err)


if __name__ == "__main__":
    unittest.main()
