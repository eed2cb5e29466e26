"""containers.conf [containers] defaults applied to new containers as Podman applies them: the
default capability set (default_capabilities), and pids_limit, shm_size, init, read_only,
no_hosts, annotations, log_size_max. Capabilities are read from /proc/self/status inside busybox
containers (CapEff, CapBnd)."""
import json
import os
import socket
import unittest

from berth_test import ALL_CAPS, PODMAN_CAPS, cap_names
from container_fixture import ContainerTestCase, IMAGE

CGROUP = "/sys/fs/cgroup"


def mask(caps):
    m = 0
    for c in caps:
        m |= 1 << ALL_CAPS.index(c.upper().removeprefix("CAP_"))
    return m


def status_caps(text):
    """{"CapEff": int, "CapBnd": int, ...} from /proc/<pid>/status."""
    out = {}
    for line in text.splitlines():
        if line.startswith("Cap"):
            k, v = line.split(":", 1)
            out[k] = int(v.strip(), 16)
    return out




class ConfDefaultsTestCase(ContainerTestCase):
    def conf(self, body):
        """A containers.conf with the class's [network] table and `body` (a [containers] table):
        the env to pass to berth()."""
        with open(self.env["CONTAINERS_CONF"]) as f:
            base = f.read()
        path = os.path.join(self.tmp, self.id().rsplit(".", 1)[-1] + ".conf")
        with open(path, "w") as f:
            f.write("[containers]\n" + body + "\n" + base)
        self.conf_path = path
        return {"CONTAINERS_CONF": path}

    def caps(self, *args, env=None):
        r = self.ok("run", "--rm", *args, IMAGE, "cat", "/proc/self/status", env=env)
        return status_caps(r.out)

    def assertCaps(self, got, want):
        self.assertEqual(cap_names(got), sorted(want))


class DefaultCapabilitiesTest(ConfDefaultsTestCase):
    def test_stock_list_is_podmans(self):
        c = self.caps()
        self.assertCaps(c["CapBnd"], PODMAN_CAPS)
        self.assertCaps(c["CapEff"], PODMAN_CAPS)

    def test_configured_list_with_any_spelling_and_flags_on_top(self):
        env = self.conf('default_capabilities = ["chown", "CAP_KILL", "Net_Raw", "setuid"]')
        c = self.caps(env=env)
        want = ["CHOWN", "KILL", "NET_RAW", "SETUID"]
        self.assertCaps(c["CapBnd"], want)
        self.assertCaps(c["CapEff"], want)
        c = self.caps("--cap-add", "net_admin", "--cap-drop", "KILL", env=env)
        self.assertCaps(c["CapBnd"], ["CHOWN", "NET_RAW", "SETUID", "NET_ADMIN"])
        c = self.caps("--cap-drop", "all", "--cap-add", "SYS_TIME", env=env)
        self.assertCaps(c["CapBnd"], ["SYS_TIME"])
        c = self.caps("--privileged", env=env)
        self.assertGreater(len(cap_names(c["CapBnd"])), 30)

    def test_configured_list_survives_stop_start_and_shows_in_inspect(self):
        env = self.conf('default_capabilities = ["CHOWN", "SETGID", "SETUID"]')
        want = ["CHOWN", "SETGID", "SETUID"]
        self.ok("run", "-d", "--name", "capd", IMAGE, "sleep", "300", env=env)
        self.addCleanup(self.berth, "rm", "-f", "-t", "0", "capd")
        for _ in range(2):
            c = status_caps(self.ok("exec", "capd", "cat", "/proc/1/status").out)
            self.assertCaps(c["CapBnd"], want)
            self.assertCaps(c["CapEff"], want)
            i = self.json("inspect", "capd")[0]
            self.assertEqual(sorted(i["EffectiveCaps"]), ["CAP_" + n for n in want])
            self.assertEqual(sorted(i["BoundingCaps"]), ["CAP_" + n for n in want])
            # Started again under the stock configuration: the container keeps its own set.
            self.ok("stop", "-t", "0", "capd")
            self.ok("start", "capd")

    def test_unknown_name_is_an_error_naming_key_and_file(self):
        env = self.conf('default_capabilities = ["CHOWN", "NET_BOGUS"]')
        r = self.berth("create", "--name", "badcap", IMAGE, "true", env=env)
        self.addCleanup(self.berth, "rm", "-f", "badcap")
        self.assertEqual(r.rc, 125, r)
        self.assertIn("default_capabilities", r.err)
        self.assertIn(self.conf_path, r.err)
        self.assertIn("NET_BOGUS", r.err)
        self.assertEqual(self.berth("container", "exists", "badcap").rc, 1)


class ContainersConfDefaultsTest(ConfDefaultsTestCase):
    def run_detached(self, name, *args, env=None):
        cid = self.ok("run", "-d", "--name", name, *args, IMAGE, "sleep", "300",
                      env=env).out.strip().splitlines()[-1]
        self.addCleanup(self.berth, "rm", "-f", "-t", "0", name)
        return cid

    def pids_max(self, cid):
        with open(os.path.join(CGROUP, "pids", "berth", cid, "pids.max")) as f:
            return f.read().strip()

    @unittest.skipUnless(os.path.isdir(os.path.join(CGROUP, "pids")), "no pids controller (v1)")
    def test_pids_limit(self):
        # Podman's default, 2048; the key; 0 (unlimited); the flag wins.
        cid = self.run_detached("p-default")
        self.assertEqual(self.pids_max(cid), "2048")
        self.assertEqual(self.json("inspect", "p-default")[0]["HostConfig"]["PidsLimit"], 2048)
        cid = self.run_detached("p-conf", env=self.conf("pids_limit = 123"))
        self.assertEqual(self.pids_max(cid), "123")
        self.assertEqual(self.json("inspect", "p-conf")[0]["HostConfig"]["PidsLimit"], 123)
        cid = self.run_detached("p-flag", "--pids-limit", "77", env=self.conf("pids_limit = 123"))
        self.assertEqual(self.pids_max(cid), "77")
        cid = self.run_detached("p-zero", env=self.conf("pids_limit = 0"))
        self.assertEqual(self.pids_max(cid), "max")

    def test_shm_size(self):
        env = self.conf('shm_size = "32m"')
        out = self.ok("run", "--rm", IMAGE, "df", "-k", "/dev/shm", env=env).out
        self.assertEqual(out.splitlines()[-1].split()[1], "32768", out)
        out = self.ok("run", "--rm", "--shm-size", "16m", IMAGE, "df", "-k", "/dev/shm",
                      env=env).out
        self.assertEqual(out.splitlines()[-1].split()[1], "16384", out)
        r = self.berth("run", "--rm", IMAGE, "true", env=self.conf('shm_size = "lots"'))
        self.assertEqual(r.rc, 125, r)
        self.assertIn("shm_size", r.err)

    def test_init(self):
        out = self.ok("run", "--rm", IMAGE, "cat", "/proc/1/cmdline",
                      env=self.conf("init = true")).out
        self.assertIn("/run/podman-init", out.replace("\0", " "))
        out = self.ok("run", "--rm", IMAGE, "cat", "/proc/1/cmdline").out
        self.assertNotIn("podman-init", out)

    def test_read_only(self):
        r = self.berth("run", "--rm", IMAGE, "touch", "/rofile", env=self.conf("read_only = true"))
        self.assertNotEqual(r.rc, 0, r)
        self.assertIn("Read-only file system", r.out + r.err)
        self.ok("run", "--rm", IMAGE, "touch", "/rofile")

    def test_no_hosts(self):
        out = self.ok("run", "--rm", "--hostname", "hostsy", IMAGE, "cat", "/etc/hosts").out
        self.assertIn("hostsy", out)
        r = self.berth("run", "--rm", "--hostname", "hostsy", IMAGE, "cat", "/etc/hosts",
                       env=self.conf("no_hosts = true"))
        self.assertNotIn("hostsy", r.out)

    def test_annotations(self):
        env = self.conf('annotations = ["org.example.team=infra", "org.example.tier=gold"]')
        self.ok("create", "--name", "ann", "--annotation", "org.example.tier=silver", IMAGE, "true",
                env=env)
        self.addCleanup(self.berth, "rm", "-f", "ann")
        a = self.json("inspect", "ann")[0]["Config"]["Annotations"]
        self.assertEqual(a.get("org.example.team"), "infra")
        self.assertEqual(a.get("org.example.tier"), "silver")  # the flag wins

    def test_log_size_max(self):
        env = self.conf("log_size_max = 4096")
        self.ok("create", "--name", "logmax", IMAGE, "true", env=env)
        self.addCleanup(self.berth, "rm", "-f", "logmax")
        lc = self.json("inspect", "logmax")[0]["HostConfig"]["LogConfig"]
        self.assertEqual(lc["Size"], "4096")
        # Enforced: a container that writes far more keeps a log of at most that size.
        self.ok("run", "--name", "logbig", IMAGE, "sh", "-c",
                "i=0; while [ $i -lt 2000 ]; do echo line-$i-xxxxxxxxxxxxxxxxxxxxxxxx; "
                "i=$((i+1)); done", env=env)
        self.addCleanup(self.berth, "rm", "-f", "logbig")
        path = self.json("inspect", "logbig")[0]["HostConfig"]["LogConfig"]["Path"]
        self.assertLessEqual(os.path.getsize(path), 4096)

    def test_http_proxy_and_env_host(self):
        proxy = {"http_proxy": "http://proxy.example:3128", "NO_PROXY": "localhost",
                 "BERTH_HOSTVAR": "from-host"}
        out = self.ok("run", "--rm", IMAGE, "env", env=proxy).out.splitlines()
        self.assertIn("http_proxy=http://proxy.example:3128", out)
        self.assertIn("NO_PROXY=localhost", out)
        self.assertNotIn("BERTH_HOSTVAR=from-host", out)
        # The user's value wins.
        out = self.ok("run", "--rm", "-e", "http_proxy=mine", IMAGE, "env",
                      env=proxy).out.splitlines()
        self.assertIn("http_proxy=mine", out)
        out = self.ok("run", "--rm", IMAGE, "env",
                      env={**proxy, **self.conf("http_proxy = false")}).out.splitlines()
        self.assertFalse([l for l in out if "proxy" in l.lower()], out)
        out = self.ok("run", "--rm", IMAGE, "env",
                      env={**proxy, **self.conf("env_host = true")}).out.splitlines()
        self.assertIn("BERTH_HOSTVAR=from-host", out)

    def test_devices(self):
        env = self.conf('devices = ["/dev/null:/dev/confnull:rwm"]')
        self.ok("run", "--rm", IMAGE, "sh", "-c", "test -c /dev/confnull && echo x > /dev/confnull",
                env=env)
        r = self.berth("run", "--rm", IMAGE, "test", "-e", "/dev/confnull")
        self.assertEqual(r.rc, 1, r)

    def test_seccomp_profile(self):
        profile = os.path.join(self.tmp, "no-mkdir.json")
        with open(profile, "w") as f:
            json.dump({"defaultAction": "SCMP_ACT_ALLOW",
                       "syscalls": [{"names": ["mkdir", "mkdirat"],
                                     "action": "SCMP_ACT_ERRNO"}]}, f)
        env = self.conf('seccomp_profile = "%s"' % profile)
        r = self.berth("run", "--rm", IMAGE, "mkdir", "/tmp/d", env=env)
        self.assertNotEqual(r.rc, 0, r)
        self.assertIn("Operation not permitted", r.out + r.err)
        self.ok("run", "--rm", "--security-opt", "seccomp=unconfined", IMAGE, "mkdir", "/tmp/d",
                env=env)
        self.ok("run", "--rm", IMAGE, "mkdir", "/tmp/d")
        out = self.ok("run", "--rm", IMAGE, "grep", "^Seccomp:", "/proc/self/status",
                      env=self.conf('seccomp_profile = "unconfined"')).out
        self.assertEqual(out.split(), ["Seccomp:", "0"])
        env = self.conf('seccomp_profile = "/nonexistent/profile.json"')
        r = self.berth("run", "--rm", IMAGE, "true", env=env)
        self.assertEqual(r.rc, 125, r)
        self.assertIn("seccomp_profile", r.err)
        self.assertIn("/nonexistent/profile.json", r.err)

    @unittest.skipUnless(os.path.exists("/usr/share/zoneinfo/Asia/Tokyo"), "no tzdata")
    def test_tz(self):
        out = self.ok("run", "--rm", IMAGE, "date", "+%Z", env=self.conf('tz = "Asia/Tokyo"')).out
        self.assertEqual(out.strip(), "JST")
        self.assertEqual(self.ok("run", "--rm", IMAGE, "date", "+%Z").out.strip(), "UTC")
        r = self.berth("run", "--rm", IMAGE, "true", env=self.conf('tz = "Mars/Olympus"'))
        self.assertEqual(r.rc, 125, r)
        self.assertIn("containers.conf tz", r.err)

    def test_namespaces(self):
        with open("/proc/1/comm") as f:
            host_init = f.read().strip()
        out = self.ok("run", "--rm", IMAGE, "cat", "/proc/1/comm",
                      env=self.conf('pidns = "host"')).out.strip()
        self.assertEqual(out, host_init)
        out = self.ok("run", "--rm", IMAGE, "cat", "/proc/1/comm").out.strip()
        self.assertEqual(out, "cat")
        out = self.ok("run", "--rm", IMAGE, "hostname", env=self.conf('utsns = "host"')).out
        self.assertEqual(out.strip(), socket.gethostname())

    def test_volumes(self):
        src = os.path.join(self.tmp, "confvol")
        os.makedirs(src, exist_ok=True)
        with open(os.path.join(src, "f"), "w") as f:
            f.write("from-conf\n")
        mine = os.path.join(self.tmp, "myvol")
        os.makedirs(mine, exist_ok=True)
        with open(os.path.join(mine, "f"), "w") as f:
            f.write("from-flag\n")
        env = self.conf('volumes = ["%s:/confvol:ro"]' % src)
        out = self.ok("run", "--rm", IMAGE, "cat", "/confvol/f", env=env).out
        self.assertEqual(out, "from-conf\n")
        r = self.berth("run", "--rm", IMAGE, "touch", "/confvol/g", env=env)
        self.assertNotEqual(r.rc, 0, r)
        # The user's mount at the same destination wins.
        out = self.ok("run", "--rm", "-v", mine + ":/confvol/", IMAGE, "cat", "/confvol/f",
                      env=env).out
        self.assertEqual(out, "from-flag\n")
        r = self.berth("run", "--rm", IMAGE, "true", env=self.conf('volumes = ["relative"]'))
        self.assertEqual(r.rc, 125, r)
        self.assertIn("containers.conf volumes", r.err)

    def test_netns(self):
        out = self.ok("run", "--rm", IMAGE, "ls", "/sys/class/net",
                      env=self.conf('netns = "none"')).out.split()
        self.assertEqual(out, ["lo"])
        out = self.ok("run", "--rm", IMAGE, "ls", "/sys/class/net").out.split()
        self.assertIn("eth0", out)


if __name__ == "__main__":
    unittest.main()
