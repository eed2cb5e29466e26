"""Containers on networks as a user runs them: published ports reached on 127.0.0.1 (bridge and
slirp4netns), name and alias resolution on a user-defined network, --internal, connect and
disconnect of a running container, -P, /etc/hosts and /etc/resolv.conf, and no interface, rule,
lease or namespace left after `rm -f` of containers made in parallel.

Only loopback and the namespaces the tests make are used: the published ports are reached on
127.0.0.1, the networks are private subnets on bridges named after the test, and nothing is sent
past a container's gateway."""
import concurrent.futures
import json
import os
import socket
import subprocess
import sys
import time
import unittest
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "containers"))

from berth_test import PLUGIN_DIR  # noqa: E402
from container_fixture import ContainerTestCase, IMAGE  # noqa: E402

# The default network of this class's store: its own subnet, so containers of other stores
# on the shared default bridge never get the same address.
DEFAULT_SUBNET = "10.231.0.0/24"


def short_hash(s):
    """The bridge driver's FNV-1a name hash (veth and nftables chain names)."""
    h = 1469598103934665603
    for c in s.encode():
        h ^= c
        h = (h * 1099511628211) & 0xFFFFFFFFFFFFFFFF
    return f"{h:016x}"[:12]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def links():
    out = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True).stdout
    return {line.split(":")[1].strip().split("@")[0] for line in out.splitlines()}


def nft_ruleset():
    return subprocess.run(["nft", "list", "ruleset"], capture_output=True, text=True).stdout


def holders_of(path):
    """Pids of the processes with `path` open."""
    pids = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink(f"/proc/{pid}/fd/{fd}") == path:
                    pids.append(int(pid))
                    break
            except OSError:
                continue
    return pids


def fetch(url, attempts=100):
    """The body at url, retried while the server in the container starts."""
    last = None
    for _ in range(attempts):
        try:
            with urllib.request.urlopen(url, timeout=5) as r:
                return r.read().decode()
        except OSError as e:
            last = e
            time.sleep(0.1)
    raise AssertionError(f"GET {url}: {last}")


HTTPD = "mkdir -p /www && echo hello-from-{0} > /www/index.html && exec httpd -f -p 80 -h /www"


class NetworkTestBase(ContainerTestCase):
    """A store whose default network has a subnet of its own, and helpers (no tests: the
    network test modules derive their classes from it)."""
    default_subnet = DEFAULT_SUBNET
    extra_conf = ""  # more [network] lines for containers.conf

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        conf = os.path.join(cls.tmp, "containers.conf")
        with open(conf, "w") as f:
            f.write(f'[network]\ndefault_subnet = "{cls.default_subnet}"\n{cls.extra_conf}')
        cls.env["CONTAINERS_CONF"] = conf
        if PLUGIN_DIR:
            cls.env["BERTH_PLUGIN_PATH"] = PLUGIN_DIR
        cls.tag = short_hash(cls.tmp)[:5]

    def net(self, name, subnet, *extra):
        """A user-defined network on a bridge named after this test run."""
        iface = f"bt{self.tag}{name[:3]}"
        self.ok("network", "create", "--subnet", subnet, "--interface-name", iface, *extra, name)
        self.addCleanup(self.berth, "network", "rm", "-f", name)
        return iface

    def run_d(self, name, *args):
        r = self.ok("run", "-d", "--name", name, *args)
        self.addCleanup(self.berth, "rm", "-f", "-t", "0", name)
        return r.out.strip()

    def inspect(self, name):
        return self.json("inspect", name)[0]

    def assert_no_trace(self, cid, networks):
        """Nothing of container cid is left: veths, nftables chains, leases, namespace."""
        names = links()
        for n in networks:
            self.assertNotIn("vb" + short_hash(f"{cid}/{n}"), names)
        self.assertNotIn("ct-" + short_hash(cid), nft_ruleset())
        lease_dir = os.path.join(self.runroot, "networks")
        if os.path.isdir(lease_dir):
            for f in os.listdir(lease_dir):
                if f.endswith(".json"):
                    with open(os.path.join(lease_dir, f)) as fh:
                        self.assertNotIn(cid, fh.read(), f)
        self.assertFalse(os.path.exists(os.path.join(self.runroot, "netns", "berth-" + cid)))



class ContainerNetworkTest(NetworkTestBase):
    def test_published_port_bridge(self):
        port = free_port()
        cid = self.run_d("web", "-p", f"127.0.0.1:{port}:80", IMAGE, "sh", "-c",
                         HTTPD.format("bridge"))
        self.assertEqual(fetch(f"http://127.0.0.1:{port}/"), "hello-from-bridge\n")
        self.assertEqual(self.ok("port", "web").out, f"80/tcp -> 127.0.0.1:{port}\n")
        self.assertEqual(self.ok("port", "web", "80").out, f"127.0.0.1:{port}\n")
        self.assertEqual(self.ok("container", "port", "web", "80/tcp").out, f"127.0.0.1:{port}\n")
        info = self.inspect("web")
        ns = info["NetworkSettings"]
        self.assertEqual(ns["Ports"], {"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": str(port)}]})
        self.assertEqual(info["HostConfig"]["PortBindings"], ns["Ports"])
        self.assertEqual(info["HostConfig"]["NetworkMode"], "bridge")
        self.assertEqual(list(ns["Networks"]), ["berth"])
        self.assertTrue(ns["IPAddress"].startswith("10.231.0."), ns)
        self.assertEqual(ns["Gateway"], "10.231.0.1")
        self.assertEqual(ns["IPPrefixLen"], 24)
        self.assertEqual(ns["Networks"]["berth"]["IPAddress"], ns["IPAddress"])
        self.assertEqual(ns["SandboxKey"], os.path.join(self.runroot, "netns", "berth-" + cid))
        row = [r for r in self.json("ps", "--format", "json") if r["Id"] == cid][0]
        self.assertEqual(row["Networks"], ["berth"])
        self.assertEqual(row["Ports"], [{"host_ip": "127.0.0.1", "container_port": 80,
                                         "host_port": port, "range": 1, "protocol": "tcp"}])
        # The veth is there while it runs, and nothing is left once it is gone.
        self.assertIn("vb" + short_hash(f"{cid}/berth"), links())
        self.ok("rm", "-f", "-t", "0", "web")
        self.assert_no_trace(cid, ["berth"])
        with self.assertRaises(AssertionError):
            fetch(f"http://127.0.0.1:{port}/", attempts=1)

    def test_default_bridge_outlives_its_last_container_empty(self):
        # The default network's bridge stays when its last container goes (as docker0 and
        # cni-podman0); its addresses, routes and rules go, and the next container plumbs it
        # again. Other test classes share berth0: the checks hold when it has no port left.
        gw = DEFAULT_SUBNET.rsplit(".", 1)[0] + ".1"
        self.ok("run", "--rm", IMAGE, "true")
        brif = "/sys/class/net/berth0/brif"
        if os.path.isdir(brif) and os.listdir(brif):
            self.skipTest("another test's container is on berth0 now")
        self.assertIn("berth0", links())
        addrs = subprocess.run(["ip", "-o", "-4", "addr", "show", "dev", "berth0"],
                               capture_output=True, text=True).stdout
        self.assertNotIn(f"inet {gw}/", addrs)
        self.assertNotIn("nw-" + short_hash("berth/" + DEFAULT_SUBNET), nft_ruleset())
        out = self.ok("run", "--rm", "--cap-add", "NET_RAW", IMAGE, "sh", "-c",
                      f"ip route; ping -c 1 -W 2 {gw}").out
        self.assertIn(f"default via {gw}", out)
        self.assertIn("1 packets received", out)  # the host's address is back

    def test_rules_stay_put_and_go_with_the_shared_bridge(self):
        # A second store with a network on the same bridge, with a subnet of its own; each
        # store's DNS responder listens on its own gateway.
        iface = self.net("shr", "10.231.91.0/24")
        other = ["--root", os.path.join(self.tmp, "root2"), "--runroot",
                 os.path.join(self.tmp, "run2"), "--storage-driver", self.storage_driver]
        tar = os.path.join(self.tmp, "rootfs.tar")
        self.ok(*other, "import", tar, IMAGE, store=False)
        self.ok(*other, "network", "create", "--subnet", "10.231.92.0/24", "--interface-name",
                iface, "shr", store=False)
        self.addCleanup(self.berth, *other, "rm", "-f", "-t", "0", "-a", store=False)
        mine = "nw-" + short_hash("shr/10.231.91.0/24")
        theirs = "nw-" + short_hash("shr/10.231.92.0/24")

        def handles():
            r = subprocess.run(["nft", "-a", "list", "chain", "inet", "berth", "postrouting"],
                               capture_output=True, text=True)
            return sorted(line.split("# handle ")[-1] for line in r.stdout.splitlines()
                          if f"jump {mine}-post" in line)

        self.run_d("s1", "--network", "shr", IMAGE, "sleep", "1000")
        first = handles()
        self.assertEqual(len(first), 1, nft_ruleset())
        # A second container on the network leaves its rules as they are (no rewrite).
        self.run_d("s2", "--network", "shr", IMAGE, "sleep", "1000")
        self.assertEqual(handles(), first)
        # Rules flushed behind berth's back are put back by the next start.
        subprocess.run(["nft", "flush", "chain", "inet", "berth", f"{mine}-post"], check=True)
        self.run_d("s3", "--network", "shr", IMAGE, "sleep", "1000")
        self.assertIn("masquerade", subprocess.run(
            ["nft", "list", "chain", "inet", "berth", f"{mine}-post"], capture_output=True,
            text=True).stdout)
        self.ok(*other, "run", "-d", "--name", "o1", "--network", "shr", IMAGE, "sleep", "1000",
                store=False)
        self.assertIn(theirs, nft_ruleset())
        # This store's containers go first: the other's keeps the bridge and both networks' rules.
        self.ok("rm", "-f", "-t", "0", "s1", "s2", "s3")
        self.assertIn(iface, links())
        # The last container on the bridge takes the bridge and every network's rules on it.
        self.ok(*other, "rm", "-f", "-t", "0", "o1", store=False)
        self.assertNotIn(iface, links())
        rules = nft_ruleset()
        self.assertNotIn(mine, rules)
        self.assertNotIn(theirs, rules)
        # This store's responder lost its address with the bridge: it ends by itself (the other
        # store stopped its own), so the next use of the network can bind the gateway again.
        for _ in range(100):
            ss = subprocess.run(["ss", "-Huln"], capture_output=True, text=True).stdout
            if "10.231.91.1:53 " not in ss:
                break
            time.sleep(0.1)
        self.assertNotIn("10.231.91.1:53 ", ss)
        self.run_d("s4", "--network", "shr", IMAGE, "sleep", "1000")
        self.ok("rm", "-f", "-t", "0", "s4")

    def test_published_port_slirp4netns(self):
        port = free_port()
        cid = self.run_d("sweb", "--network", "slirp4netns", "-p", f"{port}:80", IMAGE, "sh",
                         "-c", HTTPD.format("slirp"))
        self.assertEqual(fetch(f"http://127.0.0.1:{port}/"), "hello-from-slirp\n")
        self.assertEqual(self.inspect("sweb")["HostConfig"]["NetworkMode"], "slirp4netns")
        self.assertEqual(self.ok("port", "sweb").out, f"80/tcp -> 0.0.0.0:{port}\n")
        r = self.ok("exec", "sweb", "cat", "/etc/resolv.conf")
        self.assertIn("nameserver 10.0.2.3", r.out)
        # The TCP port goes through berth's relay, which holds the namespace open.
        ns = os.path.join(self.runroot, "netns", "berth-" + cid)
        comms = [open(f"/proc/{p}/comm").read().strip() for p in holders_of(ns)]
        self.assertIn("berth-portfwd", comms)
        self.ok("rm", "-f", "-t", "0", "sweb")
        self.assertFalse(os.path.exists(os.path.join(self.runroot, "networks", "slirp",
                                                     cid + ".json")))
        # No slirp4netns (nor anything else) left for it; the monitor's own cleanup process may
        # still be finishing for a moment after `rm -f` returns.
        for _ in range(100):
            procs = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
            if cid[:12] not in procs:
                break
            time.sleep(0.1)
        self.assertNotIn(cid[:12], procs)
        # Nor berth's TCP port relay (a fork of berth: its command line names no container).
        self.assertEqual(holders_of(ns), [])
        self.assert_no_trace(cid, [])

    def test_names_and_aliases_resolve(self):
        self.net("front", "10.231.10.0/24")
        self.run_d("alpha", "--network", "front", "--network-alias", "db", IMAGE, "sleep",
                   "1000")
        ip = self.inspect("alpha")["NetworkSettings"]["Networks"]["front"]["IPAddress"]
        self.assertTrue(ip.startswith("10.231.10."), ip)
        r = self.berth("run", "--rm", "--network", "front", IMAGE, "nslookup", "alpha")
        self.assertIn(ip, r.out, r)
        r = self.berth("run", "--rm", "--network", "front", IMAGE, "nslookup", "db")
        self.assertIn(ip, r.out, r)
        r = self.berth("run", "--rm", "--cap-add", "NET_RAW", "--network", "front", IMAGE,
                       "ping", "-c1", "-W2", "db")
        self.assertEqual(r.rc, 0, r)

    def test_internal_network_has_no_route_out(self):
        self.net("inner", "10.231.11.0/24", "--internal")
        r = self.ok("run", "--rm", "--network", "inner", IMAGE, "ip", "route")
        self.assertNotIn("default", r.out)
        self.assertIn("10.231.11.0/24", r.out)
        # No route to an address beyond the subnet (TEST-NET-3: nothing real is reached).
        # busybox ping needs a raw socket: NET_RAW is not in the default set (as Podman).
        r = self.berth("run", "--rm", "--cap-add", "NET_RAW", "--network", "inner", IMAGE, "ping",
                       "-c1", "-W1",
                       "203.0.113.1")
        self.assertNotEqual(r.rc, 0, r)
        self.assertIn("unreachable", r.out + r.err)

    def test_connect_and_disconnect_running_container(self):
        self.net("left", "10.231.12.0/24")
        self.net("right", "10.231.13.0/24")
        cid = self.run_d("hopper", "--network", "left", IMAGE, "sleep", "1000")
        self.ok("network", "connect", "--alias", "hop", "right", "hopper")
        nets = self.inspect("hopper")["NetworkSettings"]["Networks"]
        self.assertEqual(sorted(nets), ["left", "right"])
        ip2 = nets["right"]["IPAddress"]
        self.assertTrue(ip2.startswith("10.231.13."), nets)
        r = self.ok("exec", "hopper", "ip", "-o", "-4", "addr", "show", "eth1")
        self.assertIn(ip2 + "/24", r.out)
        r = self.berth("run", "--rm", "--network", "right", IMAGE, "nslookup", "hop")
        self.assertIn(ip2, r.out, r)
        r = self.berth("network", "connect", "right", "hopper")
        self.assertEqual(r.rc, 125, r)
        self.assertIn("already connected", r.err)
        self.ok("network", "disconnect", "left", "hopper")
        self.assertEqual(list(self.inspect("hopper")["NetworkSettings"]["Networks"]), ["right"])
        r = self.berth("exec", "hopper", "ip", "link", "show", "eth0")
        self.assertNotEqual(r.rc, 0, r)
        self.assertNotIn("vb" + short_hash(f"{cid}/left"), links())
        # The record follows: a restart comes back on "right" only.
        self.ok("restart", "-t", "0", "hopper")
        self.assertEqual(list(self.inspect("hopper")["NetworkSettings"]["Networks"]), ["right"])
        self.ok("rm", "-f", "-t", "0", "hopper")
        self.assert_no_trace(cid, ["left", "right"])

    def test_disconnect_of_the_last_network(self):
        # As Docker and Podman: the container runs on with loopback only (its ports, lease,
        # veth and DNS name gone), a stop/start keeps it so (not back on the default network)
        # and a connect puts it back on a network.
        self.net("solo", "10.231.16.0/24")
        self.run_d("solopeer", "--network", "solo", IMAGE, "sh", "-c", HTTPD.format("solopeer"))
        port = free_port()
        cid = self.run_d("loner", "--network", "solo", "-p", f"127.0.0.1:{port}:80", IMAGE,
                         "sh", "-c", HTTPD.format("loner"))
        self.assertIn("hello-from-loner", fetch(f"http://127.0.0.1:{port}/"))
        veth = "vb" + short_hash(f"{cid}/solo")
        self.assertIn(veth, links())

        def lease_holders():
            with open(os.path.join(self.runroot, "networks", "solo.json")) as f:
                return [l["container_id"] for l in json.load(f)["leases"]]

        def loopback_only():
            r = self.ok("exec", "loner", "ip", "-o", "link", "show")
            self.assertEqual([l.split(":")[1].strip() for l in r.out.splitlines()], ["lo"], r)
            self.assertIn("<LOOPBACK,UP", r.out)
            r = self.ok("exec", "loner", "ip", "-o", "addr", "show")
            self.assertNotIn("10.231.", r.out)
            self.assertEqual(self.inspect("loner")["NetworkSettings"]["Networks"], {})
            rows = {c["Names"][0]: c for c in self.json("ps", "--format", "json")}
            self.assertEqual(rows["loner"]["Networks"], [])
            self.assertNotIn(cid, lease_holders())
            self.assertNotIn(veth, links())
            self.assertNotIn("ct-" + short_hash(cid), nft_ruleset())
            # Its /etc files no longer name the network's responder or addresses.
            r = self.ok("exec", "loner", "cat", "/etc/hosts", "/etc/resolv.conf")
            self.assertNotIn("10.231.16.", r.out)
            self.assertIn("loner", r.out)  # its own name, on loopback
            self.assertEqual(self.ok("port", "loner").out.strip(), "")

        self.ok("network", "disconnect", "solo", "loner")
        loopback_only()
        # The container runs on, served on loopback; nothing reaches it from outside.
        r = self.ok("exec", "loner", "wget", "-qO-", "http://127.0.0.1/")
        self.assertIn("hello-from-loner", r.out)
        with self.assertRaises(AssertionError):
            fetch(f"http://127.0.0.1:{port}/", attempts=3)
        r = self.berth("exec", "solopeer", "nslookup", "loner")
        self.assertNotEqual(r.rc, 0, r)
        r = self.berth("network", "disconnect", "solo", "loner")
        self.assertEqual(r.rc, 125, r)
        self.assertIn("not connected", r.err)

        # stop/start and restart: still loopback only, no lease on the default network.
        self.ok("stop", "-t", "0", "loner")
        self.assertEqual(self.inspect("loner")["NetworkSettings"]["Networks"], {})
        self.ok("start", "loner")
        loopback_only()
        self.ok("restart", "-t", "0", "loner")
        loopback_only()
        for f in os.listdir(os.path.join(self.runroot, "networks")):
            if f.endswith(".json"):
                with open(os.path.join(self.runroot, "networks", f)) as fh:
                    self.assertNotIn(cid, fh.read(), f)

        # Back on the network while it runs: a new veth, an address, its DNS name, and its
        # published port forwarded again (to its new address).
        self.ok("network", "connect", "solo", "loner")
        self.assertIn("hello-from-loner", fetch(f"http://127.0.0.1:{port}/"))
        self.assertEqual(self.ok("port", "loner").out.strip(), f"80/tcp -> 127.0.0.1:{port}")
        nets = self.inspect("loner")["NetworkSettings"]["Networks"]
        self.assertEqual(list(nets), ["solo"])
        ip = nets["solo"]["IPAddress"]
        self.assertTrue(ip.startswith("10.231.16."), nets)
        self.assertIn(veth, links())
        r = self.ok("exec", "loner", "ip", "-o", "-4", "addr", "show", "eth0")
        self.assertIn(ip + "/24", r.out)
        r = self.ok("exec", "loner", "wget", "-qO-", "http://solopeer/")
        self.assertIn("hello-from-solopeer", r.out)
        r = self.ok("exec", "solopeer", "nslookup", "loner")
        self.assertIn(ip, r.out)
        self.assertIn(cid, lease_holders())

        # Left with no network again, then removed: nothing of it is left.
        self.ok("network", "disconnect", "solo", "loner")
        self.ok("rm", "-f", "-t", "0", "loner")
        self.assert_no_trace(cid, ["solo"])

    def test_published_ports_move_to_the_next_network(self):
        # Disconnected from the network its ports are forwarded to while it is on another, a
        # running container keeps its host ports, forwarded to its address there (as Docker).
        self.net("mva", "10.231.17.0/24")
        self.net("mvb", "10.231.18.0/24")
        port = free_port()
        cid = self.run_d("mover", "--network", "mva", "-p", f"127.0.0.1:{port}:80", IMAGE,
                         "sh", "-c", HTTPD.format("mover"))
        self.assertIn("hello-from-mover", fetch(f"http://127.0.0.1:{port}/"))
        self.ok("network", "connect", "mvb", "mover")
        self.ok("network", "disconnect", "mva", "mover")
        self.assertIn("hello-from-mover", fetch(f"http://127.0.0.1:{port}/"))
        self.assertEqual(self.ok("port", "mover").out.strip(), f"80/tcp -> 127.0.0.1:{port}")
        with open(os.path.join(self.runroot, "networks", "mvb.json")) as f:
            lease = [l for l in json.load(f)["leases"] if l["container_id"] == cid][0]
        self.assertEqual([p["host_port"] for p in lease["ports"]], [port])
        self.ok("rm", "-f", "-t", "0", "mover")
        self.assert_no_trace(cid, ["mva", "mvb"])
        with self.assertRaises(AssertionError):
            fetch(f"http://127.0.0.1:{port}/", attempts=3)

    def test_disconnect_of_the_last_network_before_start(self):
        # A created container left with no network starts with loopback only; connected again
        # before its start, it starts on that network (docker-compose 1.x does this at `up`).
        cid = self.ok("create", "--name", "unborn", IMAGE, "sleep", "1000").out.strip()
        self.addCleanup(self.berth, "rm", "-f", "-t", "0", "unborn")
        default = [n["name"] for n in self.json("network", "ls", "--format", "json")
                   if n["subnets"][0]["subnet"] == DEFAULT_SUBNET][0]
        self.ok("network", "disconnect", default, "unborn")
        self.assertEqual(self.inspect("unborn")["NetworkSettings"]["Networks"], {})
        self.ok("start", "unborn")
        r = self.ok("exec", "unborn", "ip", "-o", "link", "show")
        self.assertEqual([l.split(":")[1].strip() for l in r.out.splitlines()], ["lo"], r)
        self.ok("stop", "-t", "0", "unborn")
        self.ok("network", "connect", default, "unborn")
        self.ok("start", "unborn")
        r = self.ok("exec", "unborn", "ip", "-o", "-4", "addr", "show", "eth0")
        self.assertIn("10.231.0.", r.out)
        self.ok("rm", "-f", "-t", "0", "unborn")
        self.assert_no_trace(cid, [default])

    def test_publish_all_exposed(self):
        self.run_d("pall", "-P", "--expose", "80", IMAGE, "sh", "-c", HTTPD.format("all"))
        out = self.ok("port", "pall").out
        self.assertRegex(out, r"^80/tcp -> 0\.0\.0\.0:\d+\n$")
        port = int(out.strip().rsplit(":", 1)[1])
        self.assertEqual(fetch(f"http://127.0.0.1:{port}/"), "hello-from-all\n")
        ports = self.inspect("pall")["NetworkSettings"]["Ports"]
        self.assertEqual(ports, {"80/tcp": [{"HostIp": "", "HostPort": str(port)}]})
        row = [r for r in self.json("ps", "--format", "json") if r["Names"] == ["pall"]][0]
        self.assertEqual(row["Ports"], [{"host_ip": "", "container_port": 80, "host_port": port,
                                         "range": 1, "protocol": "tcp"}])

    def test_etc_files(self):
        r = self.ok("run", "--rm", "--name", "etcy", "--hostname", "h1", "--add-host",
                    "db.local:10.1.2.3", "--dns", "10.9.9.9", "--dns-search", "example.com",
                    "--dns-option", "ndots:2", IMAGE, "sh", "-c",
                    "cat /etc/hosts; echo ===; cat /etc/resolv.conf; echo ===; "
                    "ip -o -4 addr show eth0")
        hosts, resolv, addr = r.out.split("===\n")
        ip = addr.split()[3].split("/")[0]
        self.assertTrue(ip.startswith("10.231.0."), addr)
        self.assertIn("10.1.2.3\tdb.local\n", hosts)
        self.assertIn(f"{ip}\th1 etcy\n", hosts)
        self.assertIn("10.231.0.1\thost.containers.internal host.docker.internal\n", hosts)
        self.assertIn("localhost", hosts)
        self.assertEqual(resolv,
                         "search example.com\nnameserver 10.9.9.9\noptions ndots:2\n")
        # --no-hosts: the image's own /etc/hosts (this image has none).
        r = self.berth("run", "--rm", "--no-hosts", IMAGE, "cat", "/etc/hosts")
        self.assertNotEqual(r.rc, 0, r)
        # none: loopback only, the hostname on 127.0.1.1.
        r = self.ok("run", "--rm", "--network", "none", "--hostname", "solo", IMAGE, "sh", "-c",
                    "cat /etc/hosts; ip -o link")
        self.assertIn("127.0.1.1\tsolo", r.out)
        self.assertNotIn("eth0", r.out)

    def test_container_and_host_modes(self):
        self.run_d("owner", IMAGE, "sleep", "1000")
        ip = self.inspect("owner")["NetworkSettings"]["IPAddress"]
        r = self.ok("run", "--rm", "--network", "container:owner", IMAGE, "ip", "-o", "-4",
                    "addr", "show", "eth0")
        self.assertIn(ip + "/24", r.out)
        r = self.ok("run", "--rm", "--network", "host", IMAGE, "ip", "-o", "link")
        self.assertIn(" lo:", r.out)
        self.assertGreater(len(r.out.splitlines()), 1)
        r = self.berth("run", "--rm", "--network", "nosuchnet", IMAGE, "true")
        self.assertEqual(r.rc, 125, r)
        self.assertIn("nosuchnet", r.err)

    def test_network_rm_refuses_used_network(self):
        self.net("busy", "10.231.14.0/24")
        self.ok("create", "--name", "idle", "--network", "busy", IMAGE, "true")
        r = self.berth("network", "rm", "busy")
        self.assertEqual(r.rc, 125, r)
        self.assertIn("idle", r.err)
        self.ok("network", "rm", "-f", "busy")
        self.assertNotEqual(self.berth("container", "exists", "idle").rc, 0)

    def test_port_conflict_is_clear(self):
        port = free_port()
        self.run_d("first", "-p", f"127.0.0.1:{port}:80", IMAGE, "sleep", "1000")
        r = self.berth("run", "--rm", "-p", f"127.0.0.1:{port}:80", IMAGE, "true")
        self.assertEqual(r.rc, 125, r)
        self.assertIn(str(port), r.err)
        self.assertIn("first", r.err)

    def test_rm_f_of_parallel_containers_leaves_nothing(self):
        self.net("crowd", "10.231.15.0/24")

        def one(i):
            r = self.berth("run", "-d", "--name", f"crowd{i}", "--network", "crowd", "-p",
                           f"127.0.0.1::{8000 + i}", IMAGE, "sleep", "1000")
            return r.out.strip() if r.rc == 0 else f"error: {r}"

        with concurrent.futures.ThreadPoolExecutor(max_workers=6) as ex:
            ids = list(ex.map(one, range(20)))
        errors = [i for i in ids if i.startswith("error")]
        self.assertEqual(errors, [])
        leases = json.load(open(os.path.join(self.runroot, "networks", "crowd.json")))["leases"]
        ips = [l["ip"] for l in leases]
        self.assertEqual(len(ips), 20)
        self.assertEqual(len(set(ips)), 20, "no address handed out twice")
        self.ok("rm", "-f", "-t", "0", *[f"crowd{i}" for i in range(20)])
        for cid in ids:
            self.assert_no_trace(cid, ["crowd"])
        self.assertEqual(os.listdir(os.path.join(self.runroot, "netns")), [])

    def test_start_killed_mid_setup_leaves_nothing_after_rm(self):
        # `start` killed with SIGKILL at points through its network setup (netns, IPAM lease,
        # veth, rules): the next command (`rm -f`) leaves no trace of any of them.
        self.net("kms", "10.231.95.0/24")
        cids = []
        for i, delay in enumerate((0.002, 0.005, 0.01, 0.02, 0.04, 0.08)):
            cid = self.ok("create", "--name", f"kms{i}", "--network", "kms", "-p",
                          f"127.0.0.1::{9000 + i}", IMAGE, "sleep", "1000").out.strip()
            cids.append(cid)
            p = subprocess.Popen(self.cmd() + ["start", cid], env=self.env,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(delay)
            p.kill()
            p.wait()
        self.ok("rm", "-f", "-t", "0", *cids)
        for cid in cids:
            self.assert_no_trace(cid, ["kms"])
        self.assertEqual(os.listdir(os.path.join(self.runroot, "netns")), [])


if __name__ == "__main__":
    unittest.main()
