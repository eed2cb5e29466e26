"""Issue 6 (volumes and events) through the CLI: volume create/ls/inspect/rm/prune/exists,
export/import, option (tmpfs) volumes mounted and released, and `berth events`."""
import io
import json
import os
import re
import select
import subprocess
import tarfile
import unittest

from berth_test import BerthTestCase


def tiny_tar(path, files):
    with tarfile.open(path, "w") as t:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            t.addfile(info, io.BytesIO(data))
    return path


class Volumes(BerthTestCase):
    def setUp(self):
        self.berth("volume", "rm", "-af")

    def test_create_ls_inspect_rm(self):
        self.assertEqual(self.ok("volume", "create", "--label", "app=web", "v1").out, "v1\n")
        anon = self.ok("volume", "create").out.strip()
        self.assertRegex(anon, r"^[0-9a-f]{64}$")
        r = self.berth("volume", "create", "v1")
        self.assertEqual(r.rc, 125, r)
        self.assertIn("volume with name v1 already exists", r.err)
        self.assertEqual(self.ok("volume", "create", "--ignore", "v1").out, "v1\n")

        out = self.ok("volume", "ls").out.splitlines()
        self.assertRegex(out[0], r"^DRIVER\s+VOLUME NAME$")
        self.assertIn("local       v1", out)
        self.assertEqual(self.ok("volume", "ls", "-q", "--filter", "label=app=web").out, "v1\n")
        self.assertEqual(self.ok("volume", "ls", "--format", "{{.Name}} {{.Driver}}",
                                 "-f", "name=v1").out, "v1 local\n")
        self.assertEqual(self.ok("volume", "ls", "--noheading", "-f", "name=v1").out.split(),
                         ["local", "v1"])
        rows = self.json("volume", "ls", "--format", "json")
        self.assertEqual(sorted(r["Name"] for r in rows), sorted(["v1", anon]))

        j = self.json("volume", "inspect", "v1")
        self.assertEqual(len(j), 1)
        v = j[0]
        for key in ["Name", "Driver", "Mountpoint", "CreatedAt", "Labels", "Scope", "Options",
                    "MountCount", "NeedsCopyUp", "NeedsChown", "LockNumber"]:
            self.assertIn(key, v)
        self.assertEqual(v["Labels"], {"app": "web"})
        self.assertEqual(v["Scope"], "local")
        self.assertTrue(v["Mountpoint"].endswith("/volumes/v1/_data"), v["Mountpoint"])
        self.assertTrue(os.path.isdir(v["Mountpoint"]))
        self.assertEqual(self.ok("volume", "inspect", "--format", "{{.Driver}}:{{.Name}}",
                                 "v1").out, "local:v1\n")
        self.assertEqual(len(self.json("volume", "inspect", "--all")), 2)
        r = self.berth("volume", "inspect", "nope")
        self.assertEqual(r.rc, 125)
        self.assertIn("no such volume nope", r.err)

        self.assertEqual(self.berth("volume", "exists", "v1").rc, 0)
        self.assertEqual(self.berth("volume", "exists", "nope").rc, 1)
        self.assertEqual(self.ok("volume", "rm", "v1").out, "v1\n")
        self.assertEqual(self.berth("volume", "exists", "v1").rc, 1)
        r = self.berth("volume", "rm", "v1")
        self.assertEqual(r.rc, 1, r)
        self.assertIn('no volume with name "v1" found', r.err)
        self.ok("volume", "rm", "-a")
        self.assertEqual(self.ok("volume", "ls", "-q").out, "")

    def test_options_are_validated(self):
        r = self.berth("volume", "create", "-o", "colour=red", "bad")
        self.assertEqual(r.rc, 125)
        self.assertIn('unrecognized volume option "colour"', r.err)
        r = self.berth("volume", "create", "-d", "someplugin", "bad")
        self.assertEqual(r.rc, 125)
        self.assertIn("not supported", r.err)
        r = self.berth("volume", "create", "bad/name")
        self.assertEqual(r.rc, 125)
        self.assertEqual(self.berth("volume", "exists", "bad").rc, 1)
        self.ok("volume", "create", "-o", "o=uid=1000,gid=1001", "owned")
        v = self.json("volume", "inspect", "owned")[0]
        self.assertEqual((v["UID"], v["GID"], v["NeedsChown"]), (1000, 1001, False))
        st = os.stat(v["Mountpoint"])
        self.assertEqual((st.st_uid, st.st_gid), (1000, 1001))

    def test_prune(self):
        self.ok("volume", "create", "--label", "keep=1", "keep")
        self.ok("volume", "create", "drop1")
        self.ok("volume", "create", "drop2")
        # Without -f it asks; "n" keeps everything.
        r = self.berth("volume", "prune", input="n\n")
        self.assertEqual(r.rc, 0)
        self.assertIn("Are you sure you want to continue? [y/N]", r.err)
        self.assertEqual(len(self.ok("volume", "ls", "-q").out.split()), 3)
        out = self.ok("volume", "prune", "-f", "--filter", "label!=keep").out.split()
        self.assertEqual(sorted(out), ["drop1", "drop2"])
        self.assertEqual(self.ok("volume", "ls", "-q").out, "keep\n")

    def test_export_import_round_trip(self):
        self.ok("volume", "create", "src")
        mp = self.json("volume", "inspect", "src")[0]["Mountpoint"]
        os.makedirs(os.path.join(mp, "sub"))
        with open(os.path.join(mp, "sub", "hello.txt"), "w") as f:
            f.write("hello volume\n")
        out = os.path.join(self.tmp, "src.tar")
        self.ok("volume", "export", "-o", out, "src")
        with tarfile.open(out) as t:
            self.assertIn("sub/hello.txt", [n.lstrip("./") for n in t.getnames()])
        self.ok("volume", "create", "dst")
        self.ok("volume", "import", "dst", out)
        dmp = self.json("volume", "inspect", "dst")[0]["Mountpoint"]
        with open(os.path.join(dmp, "sub", "hello.txt")) as f:
            self.assertEqual(f.read(), "hello volume\n")
        # From stdin too, and to stdout.
        tiny = tiny_tar(os.path.join(self.tmp, "tiny.tar"), {"a.txt": b"A"})
        with open(tiny, "rb") as f:
            data = f.read()
        p = subprocess.run(self.cmd() + ["volume", "import", "dst", "-"], input=data,
                           capture_output=True, env=self.env)
        self.assertEqual(p.returncode, 0, p.stderr)
        with open(os.path.join(dmp, "a.txt")) as f:
            self.assertEqual(f.read(), "A")
        p = subprocess.run(self.cmd() + ["volume", "export", "dst"], capture_output=True,
                           env=self.env)
        self.assertEqual(p.returncode, 0, p.stderr)
        with tarfile.open(fileobj=io.BytesIO(p.stdout)) as t:
            names = [n.lstrip("./") for n in t.getnames()]
        self.assertIn("a.txt", names)
        self.assertIn("sub/hello.txt", names)
        r = self.berth("volume", "import", "nope", tiny)
        self.assertEqual(r.rc, 125)

    def test_tmpfs_volume_mounted_and_released(self):
        self.ok("volume", "create", "-o", "type=tmpfs", "-o", "device=tmpfs", "-o",
                "o=size=2m", "tv")
        v = self.json("volume", "inspect", "tv")[0]
        self.assertEqual(v["Options"], {"type": "tmpfs", "device": "tmpfs", "o": "size=2m"})
        self.assertEqual(self.ok("volume", "ls", "-q", "-f", "opt=type=tmpfs").out, "tv\n")
        mp = v["Mountpoint"]
        self.assertFalse(os.path.ismount(mp))
        self.assertEqual(self.ok("volume", "mount", "tv").out, mp + "\n")
        self.assertTrue(os.path.ismount(mp))
        self.ok("volume", "mount", "tv")
        self.assertEqual(self.json("volume", "inspect", "tv")[0]["MountCount"], 2)
        with open(os.path.join(mp, "scratch"), "w") as f:
            f.write("x")
        r = self.berth("volume", "rm", "tv")
        self.assertEqual(r.rc, 2, r)  # in use
        self.ok("volume", "unmount", "tv")
        self.assertTrue(os.path.ismount(mp))
        self.ok("volume", "unmount", "tv")
        self.assertFalse(os.path.ismount(mp))
        self.assertFalse(os.path.exists(os.path.join(mp, "scratch")))
        self.assertEqual(self.json("volume", "inspect", "tv")[0]["MountCount"], 0)
        self.ok("volume", "mount", "tv")
        self.ok("volume", "rm", "-f", "tv")
        self.assertFalse(os.path.exists(mp))


class Events(BerthTestCase):
    def test_image_and_volume_events_in_order(self):
        tar = tiny_tar(os.path.join(self.tmp, "img.tar"), {"etc/hello": b"hi\n"})
        image_id = self.ok("import", tar, "localhost/evt:1").out.strip().split(":")[1]
        self.ok("tag", "localhost/evt:1", "localhost/evt:2")
        self.ok("untag", "localhost/evt:1", "localhost/evt:2")
        self.ok("volume", "create", "evvol")
        self.ok("volume", "rm", "evvol")

        r = self.ok("events", "--stream=false")
        lines = r.out.splitlines()
        self.assertTrue(lines, r)
        # Podman's --no-trunc defaults to true: full ids.
        want = [r" image import " + image_id + " localhost/evt:1$",
                r" image tag " + image_id + " localhost/evt:2$",
                r" image untag " + image_id + " localhost/evt:2$",
                r" volume create evvol$",
                r" volume remove evvol$"]
        got = [l for l in lines if " image " in l or " volume " in l]
        self.assertEqual(len(got), len(want), r.out)
        for line, pattern in zip(got, want):
            self.assertRegex(line, r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d+)? [+-]\d{4} \S+" +
                             pattern)

        short = self.ok("events", "--stream=false", "--no-trunc=false", "-f", "event=tag").out
        self.assertRegex(short, r" image tag " + image_id[:12] + " localhost/evt:2\n$")

        fmt = self.ok("events", "--stream=false", "--filter", "type=image", "--format",
                      "{{.Type}} {{.Status}} {{.Name}}").out
        self.assertEqual(fmt, "image import localhost/evt:1\nimage tag localhost/evt:2\n"
                              "image untag localhost/evt:2\n")
        vol = self.ok("events", "--stream=false", "-f", "volume=evvol", "-f", "event=create",
                      "--format", "{{.Status}}").out
        self.assertEqual(vol, "create\n")
        js = [json.loads(l) for l in
              self.ok("events", "--stream=false", "--format", "json", "--filter",
                      "type=volume").out.splitlines()]
        self.assertEqual([(e["Type"], e["Status"], e["Name"]) for e in js],
                         [("volume", "create", "evvol"), ("volume", "remove", "evvol")])
        self.assertRegex(js[0]["Time"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d")
        self.assertIsInstance(js[0]["TimeNano"], int)

        # --since/--until: a window in the future is empty; the last hour holds everything.
        self.assertEqual(self.ok("events", "--stream=false", "--since", "1h", "--filter",
                                 "type=volume", "--format", "{{.Status}}").out,
                         "create\nremove\n")
        self.assertEqual(self.ok("events", "--stream=false", "--since", "-1h").out, "")
        self.assertEqual(self.ok("events", "--stream=false", "--until",
                                 "2000-01-01T00:00:00Z").out, "")
        r = self.berth("events", "--stream=false", "--since", "yesterday")
        self.assertEqual(r.rc, 125)
        self.assertIn("unable to interpret time value", r.err)
        r = self.berth("events", "--stream=false", "--filter", "colour=red")
        self.assertEqual(r.rc, 125)


class EventsFollow(BerthTestCase):
    def test_follow_shows_new_events(self):
        p = subprocess.Popen(self.cmd() + ["events", "--filter", "type=volume", "--format",
                                           "{{.Status}} {{.Name}}"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             env=self.env)
        try:
            # Streaming shows events from when it started: create volumes until one shows up.
            seen = None
            for i in range(50):
                self.ok("volume", "create", "follow%d" % i)
                ready, _, _ = select.select([p.stdout], [], [], 0.2)
                if ready:
                    seen = p.stdout.readline()
                    break
            self.assertIsNotNone(seen, "berth events printed nothing while following")
            self.assertRegex(seen, r"^create follow\d+\n$")
        finally:
            p.terminate()
            p.wait(timeout=10)
            p.stdout.close()
            p.stderr.close()


if __name__ == "__main__":
    unittest.main()
