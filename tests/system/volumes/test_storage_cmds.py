"""Issue 6 part 5 through the CLI: cp (both ways, tar streams, symlinks kept inside the
container), diff, export, commit, container mount/unmount."""
import io
import json
import os
import subprocess
import tarfile
import unittest

from mounts_fixture import IMAGE, MountsTestCase


class StorageCommands(MountsTestCase):
    def run_bytes(self, *args, input=None):
        return subprocess.run(self.cmd() + list(args), input=input, capture_output=True,
                              env=self.env, timeout=120)

    def test_cp_both_ways_running(self):
        self.ok("run", "-d", "--name", "cp-run", IMAGE, "sleep", "1000")
        self.addCleanup(self.rm, "cp-run")
        host = self.hostdir("cp-run-host")
        f = os.path.join(host, "hello.txt")
        with open(f, "w") as fh:
            fh.write("hello from the host\n")
        os.chown(f, 4321, 4322)
        os.chmod(f, 0o640)
        # Into an existing directory: keeps its name, owner and mode.
        self.ok("cp", f, "cp-run:/tmp")
        r = self.ok("exec", "cp-run", "stat", "-c", "%u:%g %a", "/tmp/hello.txt")
        self.assertEqual(r.out, "4321:4322 640\n")
        self.assertEqual(self.ok("exec", "cp-run", "cat", "/tmp/hello.txt").out,
                         "hello from the host\n")
        # To a new name.
        self.ok("cp", f, "cp-run:/root/renamed")
        self.assertEqual(self.ok("exec", "cp-run", "cat", "/root/renamed").out,
                         "hello from the host\n")
        # A directory, then its content with "/.".
        d = os.path.join(host, "tree")
        os.makedirs(os.path.join(d, "sub"), exist_ok=True)
        with open(os.path.join(d, "sub", "leaf"), "w") as fh:
            fh.write("leaf\n")
        self.ok("cp", d, "cp-run:/tmp")
        self.assertEqual(self.ok("exec", "cp-run", "cat", "/tmp/tree/sub/leaf").out, "leaf\n")
        self.ok("exec", "cp-run", "mkdir", "/tmp/content")
        self.ok("cp", d + "/.", "cp-run:/tmp/content")
        self.assertEqual(self.ok("exec", "cp-run", "cat", "/tmp/content/sub/leaf").out,
                         "leaf\n")

        # Out of the container.
        out = self.hostdir("cp-out")
        self.ok("cp", "cp-run:/etc/passwd", out)
        with open(os.path.join(out, "passwd")) as fh:
            self.assertIn("root:x:0:0", fh.read())
        self.ok("cp", "cp-run:/tmp/tree", os.path.join(out, "tree-copy"))
        with open(os.path.join(out, "tree-copy", "sub", "leaf")) as fh:
            self.assertEqual(fh.read(), "leaf\n")
        st = os.stat(os.path.join(out, "passwd"))
        self.assertEqual((st.st_uid, st.st_gid), (0, 0))
        r = self.berth("cp", "cp-run:/no/such/file", out)
        self.assertEqual(r.rc, 125, r)
        self.assertIn("could not find", r.err)

    def test_cp_tar_streams(self):
        self.ok("run", "-d", "--name", "cp-tar", IMAGE, "sleep", "1000")
        self.addCleanup(self.rm, "cp-tar")
        r = self.run_bytes("cp", "cp-tar:/etc/passwd", "-")
        self.assertEqual(r.returncode, 0, r.stderr)
        with tarfile.open(fileobj=io.BytesIO(r.stdout)) as t:
            self.assertEqual(t.getnames(), ["passwd"])
            self.assertIn(b"root:x:0:0", t.extractfile("passwd").read())
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as t:
            data = b"streamed in\n"
            ti = tarfile.TarInfo("streamed.txt")
            ti.size = len(data)
            ti.uid = 77
            t.addfile(ti, io.BytesIO(data))
        r = self.run_bytes("cp", "-", "cp-tar:/tmp", input=buf.getvalue())
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(self.ok("exec", "cp-tar", "cat", "/tmp/streamed.txt").out,
                         "streamed in\n")
        self.assertEqual(self.ok("exec", "cp-tar", "stat", "-c", "%u",
                                 "/tmp/streamed.txt").out, "77\n")

    def test_cp_stopped_container(self):
        self.ok("create", "--name", "cp-stopped", IMAGE, "cat", "/dropped")
        self.addCleanup(self.rm, "cp-stopped")
        host = self.hostdir("cp-stopped-host")
        f = os.path.join(host, "dropped")
        with open(f, "w") as fh:
            fh.write("before start\n")
        self.ok("cp", f, "cp-stopped:/dropped")
        self.assertEqual(self.ok("start", "-a", "cp-stopped").out, "before start\n")
        # Exited now: its rootfs is unmounted, cp mounts it again.
        out = self.hostdir("cp-stopped-out")
        self.ok("cp", "cp-stopped:/dropped", os.path.join(out, "back"))
        with open(os.path.join(out, "back")) as fh:
            self.assertEqual(fh.read(), "before start\n")

    def test_cp_never_leaves_the_container_through_symlinks(self):
        victim = self.hostdir("cp-victim")
        secret = os.path.join(victim, "secret")
        with open(secret, "w") as fh:
            fh.write("host secret\n")
        script = (f"ln -s {victim} /abs && ln -s ../../../../../../../..{victim} /rel && "
                  f"ln -s {secret} /file-link && sleep 1000")
        self.ok("run", "-d", "--name", "cp-evil", IMAGE, "sh", "-c", script)
        self.addCleanup(self.rm, "cp-evil")
        for _ in range(100):
            if self.berth("exec", "cp-evil", "test", "-L", "/file-link").rc == 0:
                break
        src = os.path.join(self.hostdir("cp-evil-src"), "payload")
        with open(src, "w") as fh:
            fh.write("payload\n")
        for target in ("cp-evil:/abs/payload", "cp-evil:/rel/payload", "cp-evil:/abs",
                       "cp-evil:/rel/"):
            self.berth("cp", src, target)
            self.assertEqual(sorted(os.listdir(victim)), ["secret"], target)
        # Writing "to" a symlink to a host file replaces the link inside the container.
        self.berth("cp", src, "cp-evil:/file-link")
        with open(secret) as fh:
            self.assertEqual(fh.read(), "host secret\n")
        # Reading through the links finds the container's paths, not the host's secret.
        out = self.hostdir("cp-evil-out")
        for source in ("cp-evil:/abs/secret", "cp-evil:/rel/secret"):
            r = self.berth("cp", source, out)
            self.assertNotEqual(r.rc, 0, r)
        self.assertEqual(os.listdir(out), [])

    def test_cp_into_volume(self):
        self.ok("run", "-d", "--name", "cp-vol", "-v", "cp-target:/vol", IMAGE, "sleep", "1000")
        self.addCleanup(self.berth, "volume", "rm", "-f", "cp-target")
        self.addCleanup(self.rm, "cp-vol")
        src = os.path.join(self.hostdir("cp-vol-src"), "into-volume")
        with open(src, "w") as fh:
            fh.write("in the volume\n")
        self.ok("cp", src, "cp-vol:/vol/")
        with open(os.path.join(self.volume_path("cp-target"), "into-volume")) as fh:
            self.assertEqual(fh.read(), "in the volume\n")
        self.assertEqual(self.ok("exec", "cp-vol", "cat", "/vol/into-volume").out,
                         "in the volume\n")

    def changed_container(self, name):
        self.ok("run", "--name", name, IMAGE, "sh", "-c",
                "echo new > /root/new; rm /bin/noexec; echo extra >> /etc/passwd")
        self.addCleanup(self.rm, name)

    def test_diff(self):
        self.changed_container("diffed")
        lines = self.ok("diff", "diffed").out.splitlines()
        for want in ("A /root/new", "D /bin/noexec", "C /etc/passwd"):
            self.assertIn(want, lines)
        j = json.loads(self.ok("diff", "--format", "json", "diffed").out)
        self.assertIn("/root/new", j["added"])
        self.assertIn("/bin/noexec", j["deleted"])
        self.assertIn("/etc/passwd", j["changed"])
        self.assertEqual(self.ok("container", "diff", "diffed").out.splitlines(), lines)

    def test_export(self):
        self.changed_container("exported")
        out = os.path.join(self.tmp, "exported.tar")
        self.ok("export", "-o", out, "exported")
        with tarfile.open(out) as t:
            names = {n.lstrip("./") for n in t.getnames()}
            self.assertIn("bin/busybox", names)
            self.assertIn("root/new", names)
            self.assertNotIn("bin/noexec", names)
        r = self.run_bytes("export", "exported")
        self.assertEqual(r.returncode, 0, r.stderr)
        with tarfile.open(fileobj=io.BytesIO(r.stdout)) as t:
            self.assertIn("root/new", {n.lstrip("./") for n in t.getnames()})

    def test_commit_then_run_sees_the_change(self):
        self.changed_container("committed")
        image = "localhost/committed:v1"
        r = self.ok("commit", "-m", "my message", "-a", "Jane <jane@example.com>",
                    "--change", "ENV FOO=bar", "--change", 'CMD ["cat", "/root/new"]', "committed", image)
        image_id = r.out.strip()
        self.assertRegex(image_id, r"^[0-9a-f]{64}$")
        self.addCleanup(self.berth, "rmi", "-f", image)
        self.assertEqual(self.ok("run", "--rm", image).out, "new\n")
        r = self.berth("run", "--rm", image, "ls", "/bin/noexec")
        self.assertNotEqual(r.rc, 0, r)
        self.assertEqual(self.ok("run", "--rm", image, "sh", "-c", "echo $FOO").out, "bar\n")
        self.assertIn("extra", self.ok("run", "--rm", image, "cat", "/etc/passwd").out)
        info = self.json("image", "inspect", image)[0]
        self.assertEqual(info["Author"], "Jane <jane@example.com>")
        self.assertEqual(info["Comment"], "my message")
        hist = self.json("history", "--format", "json", image)
        self.assertEqual(hist[0]["comment"], "my message")
        # A commit of the new image's container stacks another layer.
        self.ok("run", "--name", "committed2", image, "sh", "-c", "echo second > /root/2")
        self.addCleanup(self.rm, "committed2")
        self.ok("commit", "-f", "docker", "committed2", "localhost/committed:v2")
        self.addCleanup(self.berth, "rmi", "-f", "localhost/committed:v2")
        self.assertEqual(self.ok("run", "--rm", "localhost/committed:v2", "sh", "-c",
                                 "cat /root/new /root/2").out, "new\nsecond\n")

    def test_commit_running_with_pause(self):
        self.ok("run", "-d", "--name", "commit-live", IMAGE, "sh", "-c",
                "echo live > /live; sleep 1000")
        self.addCleanup(self.rm, "commit-live")
        for _ in range(100):
            if self.berth("exec", "commit-live", "test", "-f", "/live").rc == 0:
                break
        self.ok("commit", "--pause", "commit-live", "localhost/live:1")
        self.addCleanup(self.berth, "rmi", "-f", "localhost/live:1")
        self.assertEqual(self.json("inspect", "commit-live")[0]["State"]["Status"], "running")
        self.assertEqual(self.ok("run", "--rm", "localhost/live:1", "cat", "/live").out,
                         "live\n")

    def test_container_mount_unmount(self):
        self.ok("create", "--name", "mnt", IMAGE)
        self.addCleanup(self.rm, "mnt")
        cid = self.json("inspect", "mnt")[0]["Id"]
        path = self.ok("container", "mount", "mnt").out.strip()
        self.assertTrue(os.path.isfile(os.path.join(path, "bin", "busybox")), path)
        listed = self.ok("mount").out
        self.assertIn(cid[:12] + " " + path, listed)
        self.assertEqual(self.ok("unmount", "mnt").out, "mnt\n")
        self.assertNotIn(cid[:12], self.ok("mount").out)
        r = self.berth("umount", "mnt")
        self.assertEqual(r.rc, 125, r)
        self.assertIn("not mounted", r.err)
        # Removal unmounts what `mount` left.
        self.ok("container", "mount", "mnt")
        self.ok("rm", "mnt")


class StorageCommandsOverlay(StorageCommands):
    storage_driver = "overlay"


if __name__ == "__main__":
    unittest.main()
