"""Issue 6 part 1 through the CLI: run/create -v, --mount, --tmpfs, --volumes-from, image
VOLUMEs, --read-only-tmpfs, and `volume rm` of a volume a container uses."""
import os
import subprocess
import time
import unittest

from mounts_fixture import DATA_IMAGE, IMAGE, SEED, MountsTestCase


class ContainerMounts(MountsTestCase):
    def test_bind_rw_and_ro(self):
        src = self.hostdir("bind-rw")
        r = self.ok("run", "--rm", "-v", f"{src}:/mnt", IMAGE, "sh", "-c",
                    "echo written > /mnt/f && cat /mnt/f")
        self.assertEqual(r.out, "written\n")
        with open(os.path.join(src, "f")) as f:
            self.assertEqual(f.read(), "written\n")

        r = self.berth("run", "--rm", "-v", f"{src}:/mnt:ro,z", IMAGE, "sh", "-c",
                       "cat /mnt/f; echo again > /mnt/f")
        self.assertNotEqual(r.rc, 0, r)
        self.assertIn("written", r.out)
        self.assertIn("Read-only file system", r.err)
        with open(os.path.join(src, "f")) as f:
            self.assertEqual(f.read(), "written\n")

        r = self.ok("run", "--rm", "--mount", f"type=bind,source={src},target=/m,readonly",
                    IMAGE, "sh", "-c", "grep ' /m ' /proc/mounts")
        self.assertIn(" ro,", r.out)

    def test_bind_source_must_exist_and_options_are_checked(self):
        r = self.berth("run", "--rm", "-v", f"{self.tmp}/no-such-dir:/mnt", IMAGE, "true")
        self.assertEqual(r.rc, 125, r)
        self.assertIn("no-such-dir", r.err)
        r = self.berth("run", "--rm", "-v", "/tmp:/mnt:bogus", IMAGE, "true")
        self.assertEqual(r.rc, 125, r)
        self.assertIn('invalid option "bogus"', r.err)
        r = self.berth("run", "--rm", "-v", "/tmp:/a", "-v", "/tmp:/a", IMAGE, "true")
        self.assertEqual(r.rc, 125, r)
        self.assertIn("duplicate mount destination", r.err)
        r = self.berth("run", "--rm", "--mount", "type=nfs,dst=/x", IMAGE, "true")
        self.assertEqual(r.rc, 125, r)

    def test_nosuid_nodev_noexec(self):
        src = self.hostdir("bind-flags")
        r = self.ok("run", "--rm", "-v", f"{src}:/mnt:noexec,nosuid,nodev", IMAGE, "sh", "-c",
                    "grep ' /mnt ' /proc/mounts")
        for flag in ("noexec", "nosuid", "nodev"):
            self.assertIn(flag, r.out)

    def test_rshared_bind_sees_host_mounts(self):
        src = self.hostdir("prop-src")
        # The source must be a shared mount on the host for anything to propagate.
        subprocess.run(["mount", "--bind", src, src], check=True)
        self.addCleanup(subprocess.run, ["umount", "-R", src], capture_output=True)
        subprocess.run(["mount", "--make-shared", src], check=True)
        self.ok("run", "-d", "--name", "prop-shared", "-v", f"{src}:/mnt:rshared", IMAGE,
                "sleep", "1000")
        self.addCleanup(self.rm, "prop-shared")
        self.ok("run", "-d", "--name", "prop-private", "-v", f"{src}:/mnt", IMAGE,
                "sleep", "1000")
        self.addCleanup(self.rm, "prop-private")
        sub = os.path.join(src, "sub")
        os.makedirs(sub, exist_ok=True)
        subprocess.run(["mount", "-t", "tmpfs", "tmpfs", sub], check=True)
        self.addCleanup(subprocess.run, ["umount", sub], capture_output=True)
        with open(os.path.join(sub, "late"), "w") as f:
            f.write("mounted after start\n")
        r = self.ok("exec", "prop-shared", "cat", "/mnt/sub/late")
        self.assertEqual(r.out, "mounted after start\n")
        r = self.berth("exec", "prop-private", "cat", "/mnt/sub/late")
        self.assertNotEqual(r.rc, 0, r)
        j = self.json("inspect", "prop-shared")[0]
        m = [m for m in j["Mounts"] if m["Destination"] == "/mnt"][0]
        self.assertEqual(m["Propagation"], "rshared")
        j = self.json("inspect", "prop-private")[0]
        m = [m for m in j["Mounts"] if m["Destination"] == "/mnt"][0]
        self.assertEqual(m["Propagation"], "rprivate")

    def test_named_volume_reused_with_copy_up(self):
        self.berth("volume", "rm", "-f", "shared-data")
        # Created on first use, filled from the image's /data.
        r = self.ok("run", "--rm", "-v", "shared-data:/data", DATA_IMAGE, "sh", "-c",
                    "cat /data/seed.txt; stat -c '%u:%g %a' /data; echo from-one > /data/one")
        self.assertEqual(r.out, SEED.decode() + "1234:1234 750\n")
        path = self.volume_path("shared-data")
        with open(os.path.join(path, "seed.txt"), "rb") as f:
            self.assertEqual(f.read(), SEED)
        st = os.stat(os.path.join(path, "seed.txt"))
        self.assertEqual((st.st_uid, st.st_gid), (1234, 1234))
        # A second container, elsewhere, sees the first one's write; no second copy-up.
        r = self.ok("run", "--rm", "--mount", "type=volume,src=shared-data,dst=/elsewhere",
                    IMAGE, "cat", "/elsewhere/one")
        self.assertEqual(r.out, "from-one\n")
        self.assertEqual(self.json("volume", "inspect", "shared-data")[0]["NeedsCopyUp"], False)
        self.ok("volume", "rm", "shared-data")

    def test_anonymous_volume_removed_with_rm_v(self):
        self.ok("create", "--name", "anon1", "-v", "/scratch", IMAGE, "true")
        mounts = self.json("inspect", "anon1")[0]["Mounts"]
        vols = [m for m in mounts if m["Destination"] == "/scratch"]
        self.assertEqual(len(vols), 1, mounts)
        self.assertEqual(vols[0]["Type"], "volume")
        name = vols[0]["Name"]
        self.assertRegex(name, r"^[0-9a-f]{64}$")
        self.assertEqual(self.json("volume", "inspect", name)[0]["Anonymous"], True)
        self.ok("rm", "-v", "anon1")
        self.assertEqual(self.berth("volume", "exists", name).rc, 1)

        # Without -v the anonymous volume stays, as Podman leaves it.
        self.ok("create", "--name", "anon2", "-v", "/scratch", IMAGE, "true")
        name = [m for m in self.json("inspect", "anon2")[0]["Mounts"]
                if m["Destination"] == "/scratch"][0]["Name"]
        self.ok("rm", "anon2")
        self.assertEqual(self.berth("volume", "exists", name).rc, 0)
        self.ok("volume", "rm", name)

        # `run --rm` takes its anonymous volumes with it; named ones stay.
        before = set(self.ok("volume", "ls", "-q").out.split())
        self.ok("run", "--rm", "-v", "/scratch", "-v", "kept-named:/k", IMAGE, "true")
        after = set(self.ok("volume", "ls", "-q").out.split())
        self.assertEqual(after - before, {"kept-named"})
        self.ok("volume", "rm", "kept-named")

    def test_image_volume_gets_anonymous_volume(self):
        r = self.ok("run", "--name", "imgvol", DATA_IMAGE, "cat", "/data/seed.txt")
        self.assertEqual(r.out, SEED.decode())
        mounts = self.json("inspect", "imgvol")[0]["Mounts"]
        vols = [m for m in mounts if m["Destination"] == "/data"]
        self.assertEqual(len(vols), 1, mounts)
        name = vols[0]["Name"]
        self.ok("rm", "-v", "imgvol")
        self.assertEqual(self.berth("volume", "exists", name).rc, 1)
        # A user mount at the same place replaces the image's volume.
        src = self.hostdir("over-image-volume")
        r = self.ok("run", "--rm", "-v", f"{src}:/data", DATA_IMAGE, "ls", "/data")
        self.assertEqual(r.out, "")

    def test_tmpfs(self):
        r = self.ok("run", "--rm", "--tmpfs", "/scratch:size=1m,mode=0700", IMAGE, "sh", "-c",
                    "grep ' /scratch ' /proc/mounts; stat -c %a /scratch; "
                    "echo ok > /scratch/f && cat /scratch/f")
        lines = r.out.splitlines()
        self.assertTrue(lines[0].startswith("tmpfs /scratch tmpfs rw,"), r.out)
        self.assertIn("size=1024k", lines[0])
        self.assertIn("noexec", lines[0])
        self.assertEqual(lines[1:], ["700", "ok"])
        r = self.ok("run", "--rm", "--mount", "type=tmpfs,dst=/t2,tmpfs-size=2m", IMAGE,
                    "grep", " /t2 ", "/proc/mounts")
        self.assertIn("size=2048k", r.out)
        self.ok("create", "--name", "tmpfs-inspect", "--tmpfs", "/run/x:size=1m", IMAGE)
        self.addCleanup(self.rm, "tmpfs-inspect")
        hc = self.json("inspect", "tmpfs-inspect")[0]["HostConfig"]
        self.assertIn("/run/x", hc["Tmpfs"])
        self.assertIn("size=1m", hc["Tmpfs"]["/run/x"])

    def test_volumes_from(self):
        src = self.hostdir("vf-bind")
        self.ok("create", "--name", "vf-src", "-v", "vf-vol:/shared", "-v", f"{src}:/b", IMAGE)
        self.addCleanup(self.rm, "vf-src")
        self.addCleanup(self.berth, "volume", "rm", "-f", "vf-vol")
        self.ok("run", "--rm", "--volumes-from", "vf-src", IMAGE, "sh", "-c",
                "echo via-from > /shared/z && echo b > /b/z")
        with open(os.path.join(self.volume_path("vf-vol"), "z")) as f:
            self.assertEqual(f.read(), "via-from\n")
        with open(os.path.join(src, "z")) as f:
            self.assertEqual(f.read(), "b\n")
        r = self.berth("run", "--rm", "--volumes-from", "vf-src:ro", IMAGE, "sh", "-c",
                       "cat /shared/z; echo no > /shared/z")
        self.assertNotEqual(r.rc, 0, r)
        self.assertIn("via-from", r.out)
        self.assertIn("Read-only file system", r.err)
        r = self.berth("run", "--rm", "--volumes-from", "no-such-ctr", IMAGE, "true")
        self.assertEqual(r.rc, 125, r)

    def test_volume_rm_refuses_a_used_volume(self):
        self.ok("create", "--name", "vol-user", "-v", "busy:/b", IMAGE)
        cid = self.json("inspect", "vol-user")[0]["Id"]
        r = self.berth("volume", "rm", "busy")
        self.assertEqual(r.rc, 2, r)
        self.assertIn("volume busy is being used by the following container(s): " + cid, r.err)
        self.assertEqual(self.berth("volume", "exists", "busy").rc, 0)
        # ls filters see the user too.
        self.assertNotIn("busy", self.ok("volume", "ls", "-q", "-f", "dangling=true").out.split())
        r = self.ok("volume", "rm", "-f", "busy")
        self.assertEqual(r.out, "busy\n")
        self.assertEqual(self.berth("container", "exists", "vol-user").rc, 1)
        self.assertEqual(self.berth("volume", "exists", "busy").rc, 1)

    def test_inspect_and_ps_show_mounts(self):
        src = self.hostdir("inspect-bind")
        self.ok("create", "--name", "insp", "-v", f"{src}:/b:ro,Z", "-v", "insp-vol:/v",
                IMAGE)
        self.addCleanup(self.berth, "volume", "rm", "-f", "insp-vol")
        self.addCleanup(self.rm, "insp")
        j = self.json("inspect", "insp")[0]
        by_dest = {m["Destination"]: m for m in j["Mounts"]}
        b = by_dest["/b"]
        self.assertEqual((b["Type"], b["Source"], b["RW"], b["Mode"], b["Propagation"]),
                         ("bind", src, False, "Z", "rprivate"))
        v = by_dest["/v"]
        self.assertEqual((v["Type"], v["Name"], v["Driver"], v["RW"]),
                         ("volume", "insp-vol", "local", True))
        self.assertEqual(v["Source"], self.volume_path("insp-vol"))
        binds = j["HostConfig"]["Binds"]
        self.assertIn(f"{src}:/b:ro,Z,rbind,rprivate", binds)
        self.assertIn("insp-vol:/v:rw,rbind,rprivate", binds)
        rows = self.json("ps", "-a", "--format", "json", "--filter", "name=insp")
        self.assertEqual(sorted(rows[0]["Mounts"]), ["/b", "/v"])

    def test_read_only_tmpfs(self):
        r = self.ok("run", "--rm", "--read-only", IMAGE, "sh", "-c",
                    "touch /tmp/a /var/tmp/b /run/c && echo writable")
        self.assertIn("writable", r.out)
        r = self.berth("run", "--rm", "--read-only", IMAGE, "touch", "/etc/x")
        self.assertNotEqual(r.rc, 0, r)
        self.assertIn("Read-only file system", r.err)
        r = self.berth("run", "--rm", "--read-only", "--read-only-tmpfs=false", IMAGE,
                       "touch", "/tmp/a")
        self.assertNotEqual(r.rc, 0, r)
        self.assertIn("Read-only file system", r.err)

    def test_image_mount(self):
        r = self.ok("run", "--rm", "--mount", f"type=image,source={DATA_IMAGE},target=/img",
                    IMAGE, "cat", "/img/data/seed.txt")
        self.assertEqual(r.out, SEED.decode())
        # Read-only unless rw=true.
        r = self.berth("run", "--rm", "--mount", f"type=image,src={DATA_IMAGE},dst=/img",
                       IMAGE, "touch", "/img/x")
        self.assertNotEqual(r.rc, 0, r)

    def test_chown_option_U(self):
        src = self.hostdir("chown-src")
        with open(os.path.join(src, "f"), "w") as f:
            f.write("x")
        self.ok("run", "--rm", "--user", "65534:65534", "-v", f"{src}:/u:U", IMAGE, "true")
        st = os.stat(os.path.join(src, "f"))
        self.assertEqual((st.st_uid, st.st_gid), (65534, 65534))


if __name__ == "__main__":
    unittest.main()
