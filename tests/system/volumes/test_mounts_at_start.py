"""Volumes used as Podman uses them: option volumes mounted when a container starts and unmounted
when the last user stops (so a reboot, here a fresh --runroot over the same --root, is harmless),
tmpfs mounts filled from the image (tmpcopyup), and mounts made inside a container reaching the
host through an rshared bind."""
import os
import shutil
import subprocess
import time
import unittest

from berth_test import BERTH
from mounts_fixture import DATA_IMAGE, IMAGE, SEED, MountsTestCase


def host_mounts_under(prefix):
    with open("/proc/self/mountinfo") as f:
        return [line.split()[4] for line in f if line.split()[4].startswith(prefix)]


class MountsAtStart(MountsTestCase):
    def fresh_runroot(self, name):
        """A berth command over the same --root with an empty run root (a rebooted host)."""
        rr = os.path.join(self.tmp, name)
        self.addCleanup(subprocess.run, ["umount", "-R", rr], capture_output=True)

        def run(*args, check=True):
            cmd = [BERTH, "--root", self.root, "--runroot", rr, "--storage-driver",
                   self.storage_driver] + list(args)
            r = subprocess.run(cmd, capture_output=True, text=True, env=self.env, timeout=120)
            if check:
                self.assertEqual(r.returncode, 0, f"{cmd}: {r.stdout}{r.stderr}")
            return r
        return run

    def wait_unmounted(self, path, timeout=20):
        deadline = time.time() + timeout
        while os.path.ismount(path) and time.time() < deadline:
            time.sleep(0.05)
        return not os.path.ismount(path)

    def wait_count(self, volume, want, timeout=20):
        """The volume's MountCount once it is `want` (a stop's cleanup runs in the monitor)."""
        deadline = time.time() + timeout
        while True:
            n = self.json("volume", "inspect", volume)[0]["MountCount"]
            if n == want or time.time() > deadline:
                return n
            time.sleep(0.05)

    def test_option_volume_mounted_while_a_container_runs(self):
        self.berth("volume", "rm", "-f", "tv-start")
        self.ok("volume", "create", "-o", "type=tmpfs", "-o", "device=tmpfs", "-o",
                "o=size=2m", "tv-start")
        self.addCleanup(self.berth, "volume", "rm", "-f", "tv-start")
        mp = self.volume_path("tv-start")
        self.assertFalse(os.path.ismount(mp))
        for name in ("tvs1", "tvs2"):
            self.addCleanup(self.rm, name)
            self.ok("run", "-d", "--name", name, "--network", "none", "-v", "tv-start:/data",
                    IMAGE, "sleep", "1000")
        # One mount, counted once per running user.
        self.assertTrue(os.path.ismount(mp))
        self.assertEqual(self.json("volume", "inspect", "tv-start")[0]["MountCount"], 2)
        r = self.ok("exec", "tvs1", "sh", "-c", "grep ' /data ' /proc/mounts; echo hi > /data/x")
        self.assertTrue(r.out.startswith("tmpfs /data tmpfs "), r.out)
        self.assertEqual(self.ok("exec", "tvs2", "cat", "/data/x").out, "hi\n")

        # The last user's stop unmounts it.
        self.ok("stop", "-t", "0", "tvs1")
        self.assertEqual(self.wait_count("tv-start", 1), 1)
        self.assertTrue(os.path.ismount(mp))
        self.ok("stop", "-t", "0", "tvs2")
        self.assertEqual(self.wait_count("tv-start", 0), 0)
        self.assertFalse(os.path.ismount(mp), "tmpfs volume still mounted after the stops")

        # A start mounts a fresh tmpfs again; removing the container releases it.
        self.ok("start", "tvs1")
        self.assertTrue(os.path.ismount(mp))
        self.assertEqual(self.json("volume", "inspect", "tv-start")[0]["MountCount"], 1)
        r = self.berth("exec", "tvs1", "cat", "/data/x")
        self.assertNotEqual(r.rc, 0, r)
        self.ok("rm", "-f", "tvs1")
        self.assertFalse(os.path.ismount(mp))
        self.assertEqual(self.json("volume", "inspect", "tv-start")[0]["MountCount"], 0)

    def test_option_volumes_survive_a_reboot(self):
        for v in ("tv-reboot", "bind-reboot"):
            self.berth("volume", "rm", "-f", v)
            self.addCleanup(self.berth, "volume", "rm", "-f", v)
        host = self.hostdir("bind-reboot-src")
        with open(os.path.join(host, "on-host"), "w") as f:
            f.write("from the host\n")
        self.ok("volume", "create", "-o", "type=tmpfs", "-o", "device=tmpfs", "-o",
                "o=size=2m", "tv-reboot")
        self.ok("volume", "create", "-o", "type=none", "-o", "o=bind", "-o", f"device={host}",
                "bind-reboot")
        tmp_mp = self.volume_path("tv-reboot")
        bind_mp = self.volume_path("bind-reboot")
        script = ("grep -E ' /(t|b) ' /proc/mounts | cut -d' ' -f2,3; cat /b/on-host; "
                  "echo from-ctr > /b/from-ctr")

        def check(out):
            lines = out.splitlines()
            self.assertEqual(lines[0].split(), ["/t", "tmpfs"], out)
            self.assertEqual(lines[1].split()[0], "/b", out)
            self.assertEqual(lines[2:], ["from the host"], out)

        self.addCleanup(self.rm, "reboot-ctr")
        self.ok("create", "--name", "reboot-ctr", "--network", "none", "-v", "tv-reboot:/t",
                "-v", "bind-reboot:/b", IMAGE, "sh", "-c", script)
        check(self.ok("start", "--attach", "reboot-ctr").out)
        self.assertEqual(self.wait_count("tv-reboot", 0), 0)

        # The host reboots: no mounts, an empty run root; the container is started again.
        for mp in (tmp_mp, bind_mp):
            subprocess.run(["umount", "-l", mp], capture_output=True)
        os.unlink(os.path.join(host, "from-ctr"))
        after = self.fresh_runroot("runroot-after-reboot")
        check(after("start", "--attach", "reboot-ctr").stdout)
        with open(os.path.join(host, "from-ctr")) as f:
            self.assertEqual(f.read(), "from-ctr\n")
        # Released at the exit; the volumes' data on disk untouched.
        self.assertTrue(self.wait_unmounted(tmp_mp))
        self.assertTrue(self.wait_unmounted(bind_mp))
        after("rm", "reboot-ctr")
        self.assertEqual(os.listdir(bind_mp), [])
        self.assertEqual(sorted(os.listdir(host)), ["from-ctr", "on-host"])

    def test_volume_chown_and_copy_up_happen_at_start(self):
        self.berth("volume", "rm", "-f", "chown-vol")
        self.addCleanup(self.berth, "volume", "rm", "-f", "chown-vol")
        self.addCleanup(self.rm, "chown-ctr")
        self.ok("create", "--name", "chown-ctr", "--network", "none", "--user", "65534:65534",
                "-v", "chown-vol:/data:U", DATA_IMAGE, "stat", "-c", "%u:%g %n",
                "/data", "/data/seed.txt")
        # Filled from the image's /data, then chowned to the user (U), when it first starts.
        self.assertEqual(self.ok("start", "--attach", "chown-ctr").out,
                         "65534:65534 /data\n65534:65534 /data/seed.txt\n")
        v = self.json("volume", "inspect", "chown-vol")[0]
        self.assertEqual(v["NeedsCopyUp"], False)
        with open(os.path.join(v["Mountpoint"], "seed.txt"), "rb") as f:
            self.assertEqual(f.read(), SEED)

    def test_tmpfs_copies_the_image_content(self):
        # Podman's default is tmpcopyup: the image's /data (1234:1234, 0750, seed.txt 0600).
        script = ("grep ' /data ' /proc/mounts | cut -d' ' -f3; stat -c '%u:%g %a' /data/seed.txt; "
                  "cat /data/seed.txt")
        for flag in (["--tmpfs", "/data"], ["--tmpfs", "/data:tmpcopyup,size=1m"],
                     ["--mount", "type=tmpfs,dst=/data"]):
            r = self.ok("run", "--rm", "--network", "none", *flag, DATA_IMAGE, "sh", "-c",
                        script)
            self.assertEqual(r.out, "tmpfs\n1234:1234 600\n" + SEED.decode(), flag)
        # notmpcopyup: an empty tmpfs.
        for flag in (["--tmpfs", "/data:notmpcopyup"],
                     ["--mount", "type=tmpfs,dst=/data,notmpcopyup"]):
            r = self.ok("run", "--rm", "--network", "none", *flag, DATA_IMAGE, "ls", "-A",
                        "/data")
            self.assertEqual(r.out, "", flag)
        # Read-only: filled first, then read-only.
        r = self.berth("run", "--rm", "--network", "none", "--tmpfs", "/data:ro", DATA_IMAGE,
                       "sh", "-c", "cat /data/seed.txt; touch /data/new")
        self.assertNotEqual(r.rc, 0, r)
        self.assertEqual(r.out, SEED.decode())
        self.assertIn("Read-only file system", r.err)
        # The image itself is not changed by writes to the tmpfs.
        r = self.ok("run", "--rm", "--network", "none", "--tmpfs", "/data", DATA_IMAGE, "sh",
                    "-c", "echo changed > /data/seed.txt")
        r = self.ok("run", "--rm", "--network", "none", "--tmpfs", "/data", DATA_IMAGE, "cat",
                    "/data/seed.txt")
        self.assertEqual(r.out, SEED.decode())
        # An OCI runtime gets the same option (runc and crun copy themselves).
        for rt in [rt for rt in ("runc", "crun") if shutil.which(rt)]:
            r = self.ok("run", "--rm", "--runtime", rt, "--network", "none", "--tmpfs", "/data",
                        DATA_IMAGE, "sh", "-c", script)
            self.assertEqual(r.out, "tmpfs\n1234:1234 600\n" + SEED.decode(), rt)
        r = self.berth("run", "--rm", "--tmpfs", "/data:tmpcopyup,notmpcopyup", IMAGE, "true")
        self.assertEqual(r.rc, 125, r)
        self.assertIn("can only be set once", r.err)
        r = self.berth("run", "--rm", "--mount", f"type=bind,src={self.tmp},dst=/x,tmpcopyup",
                       IMAGE, "true")
        self.assertEqual(r.rc, 125, r)

    def test_rshared_bind_carries_container_mounts_to_the_host(self):
        src = self.hostdir("prop-back")
        # The source must be a shared mount on the host for anything to propagate.
        subprocess.run(["mount", "--bind", src, src], check=True)
        self.addCleanup(subprocess.run, ["umount", "-R", "-l", src], capture_output=True)
        subprocess.run(["mount", "--make-shared", src], check=True)
        os.makedirs(os.path.join(src, "inner"), exist_ok=True)
        before = sorted(host_mounts_under(self.tmp))
        # CAP_SYS_ADMIN to mount (--privileged also asks for CAP_SYS_RESOURCE, which this host's
        # bounding set may lack).
        self.ok("run", "-d", "--name", "prop-back", "--cap-add", "SYS_ADMIN", "--network", "none", "-v",
                f"{src}:/mnt:rshared", IMAGE, "sleep", "1000")
        self.addCleanup(self.rm, "prop-back")
        inner = os.path.join(src, "inner")
        self.addCleanup(subprocess.run, ["umount", "-l", inner], capture_output=True)
        self.ok("exec", "prop-back", "sh", "-c",
                "mount -t tmpfs -o size=1m tmpfs /mnt/inner && echo made-inside > /mnt/inner/f")
        self.assertTrue(os.path.ismount(inner))
        with open(os.path.join(inner, "f")) as f:
            self.assertEqual(f.read(), "made-inside\n")
        # Only that mount reached the host: none of the container's own (rootfs, /proc, ...).
        self.assertEqual(sorted(host_mounts_under(self.tmp)), sorted(before + [inner]))
        # And an unmount inside goes back out too.
        self.ok("exec", "prop-back", "umount", "/mnt/inner")
        self.assertFalse(os.path.ismount(inner))
        j = self.json("inspect", "prop-back")[0]
        m = [m for m in j["Mounts"] if m["Destination"] == "/mnt"][0]
        self.assertEqual(m["Propagation"], "rshared")
        # The spec asks an OCI runtime for the same (rootfsPropagation shared).
        for rt in [rt for rt in ("runc", "crun") if shutil.which(rt)]:
            name = "prop-back-" + rt
            self.addCleanup(self.rm, name)
            self.ok("run", "-d", "--name", name, "--runtime", rt, "--cap-add", "SYS_ADMIN",
                    "--network", "none", "-v", f"{src}:/mnt:rshared", IMAGE, "sleep", "1000")
            self.ok("exec", name, "mount", "-t", "tmpfs", "tmpfs", "/mnt/inner")
            self.assertTrue(os.path.ismount(inner), rt)
            self.ok("exec", name, "umount", "/mnt/inner")
            self.assertFalse(os.path.ismount(inner), rt)
        # A private bind keeps the container's mounts to itself.
        self.ok("run", "-d", "--name", "prop-priv", "--cap-add", "SYS_ADMIN", "--network", "none", "-v",
                f"{src}:/mnt", IMAGE, "sleep", "1000")
        self.addCleanup(self.rm, "prop-priv")
        self.ok("exec", "prop-priv", "mount", "-t", "tmpfs", "tmpfs", "/mnt/inner")
        self.assertFalse(os.path.ismount(inner))


if __name__ == "__main__":
    unittest.main()
