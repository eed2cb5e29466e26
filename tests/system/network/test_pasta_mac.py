"""User-mode networking through pasta with a published port reached on 127.0.0.1, and
--mac-address on a bridge network (the MAC inside is the one asked for, and inspect shows it).

Only loopback and the namespaces the test makes are used."""
import json
import os
import shutil
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "containers"))

import test_container_net as tcn  # noqa: E402
from container_fixture import IMAGE  # noqa: E402
from test_container_net import HTTPD, fetch, free_port  # noqa: E402


class PastaAndMacTest(tcn.NetworkTestBase):
    default_subnet = "10.231.80.0/24"

    @unittest.skipUnless(shutil.which("pasta"), "Debian's passt package (pasta) is not installed")
    def test_published_port_pasta(self):
        port = free_port()
        cid = self.run_d("pweb", "--network", "pasta", "-p", f"{port}:80", IMAGE, "sh", "-c",
                         HTTPD.format("pasta"))
        self.assertEqual(fetch(f"http://127.0.0.1:{port}/"), "hello-from-pasta\n")
        self.assertEqual(self.inspect("pweb")["HostConfig"]["NetworkMode"], "pasta")
        self.assertEqual(self.ok("port", "pweb").out, f"80/tcp -> 0.0.0.0:{port}\n")
        self.ok("rm", "-f", "-t", "0", "pweb")
        # pasta goes with the container (its own cleanup may finish just after `rm -f`).
        for _ in range(100):
            procs = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
            if cid not in procs and f"berth-{cid}" not in procs:
                break
            time.sleep(0.1)
        self.assertNotIn(f"berth-{cid}", procs)
        with self.assertRaises(AssertionError):
            fetch(f"http://127.0.0.1:{port}/", attempts=1)

    def test_mac_address(self):
        mac = "92:d0:c6:0a:29:33"
        self.net("macnet", "10.231.81.0/24")
        self.run_d("macy", "--network", "macnet", "--mac-address", mac, IMAGE, "sleep", "1000")
        r = self.ok("exec", "macy", "cat", "/sys/class/net/eth0/address")
        self.assertEqual(r.out.strip(), mac)
        ns = self.inspect("macy")["NetworkSettings"]
        self.assertEqual(ns["MacAddress"], mac)
        self.assertEqual(ns["Networks"]["macnet"]["MacAddress"], mac)
        # On the default network too, and a bad one is refused before anything is made.
        r = self.ok("run", "--rm", "--mac-address", "02:42:ac:11:00:99", IMAGE, "cat",
                    "/sys/class/net/eth0/address")
        self.assertEqual(r.out.strip(), "02:42:ac:11:00:99")
        r = self.berth("run", "--rm", "--mac-address", "not-a-mac", IMAGE, "true")
        self.assertEqual(r.rc, 125, r)
        self.assertIn("not-a-mac", r.err)


if __name__ == "__main__":
    unittest.main()


class SharedBridgeTwoStoresTest(tcn.NetworkTestBase):
    """Two stores (--root/--runroot of their own) whose default networks are the same subnet on
    the one host-wide bridge berth0: the host-wide reservations keep their addresses apart."""
    default_subnet = "10.231.90.0/24"

    def test_two_stores_never_share_an_address(self):
        other_root = os.path.join(self.tmp, "root2")
        other_run = os.path.join(self.tmp, "runroot2")
        other = [os.environ.get("BERTH_BIN", "berth"), "--root", other_root, "--runroot", other_run, "--storage-driver", "vfs"]
        r = subprocess.run(other + ["import", "--change", 'CMD ["/bin/sh"]',
                                    os.path.join(self.tmp, "rootfs.tar"), IMAGE],
                           capture_output=True, text=True, env=self.env)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.addCleanup(subprocess.run, other + ["rm", "-af", "-t", "0"], capture_output=True,
                        env=self.env)
        ips = []
        for i in range(3):
            self.run_d(f"s1c{i}", IMAGE, "sleep", "1000")
            r = subprocess.run(other + ["run", "-d", "--name", f"s2c{i}", IMAGE, "sleep", "1000"],
                               capture_output=True, text=True, env=self.env)
            self.assertEqual(r.returncode, 0, r.stderr)
            ips.append(self.inspect(f"s1c{i}")["NetworkSettings"]["IPAddress"])
            out = subprocess.run(other + ["inspect", f"s2c{i}"], capture_output=True, text=True,
                                 env=self.env).stdout
            ips.append(json.loads(out)[0]["NetworkSettings"]["IPAddress"])
        self.assertTrue(all(ip.startswith("10.231.90.") for ip in ips), ips)
        self.assertEqual(len(set(ips)), 6, f"an address handed out twice on berth0: {ips}")
