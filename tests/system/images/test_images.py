"""Issue 3: local images through the CLI — import, load, save, tag, rmi, inspect, interop with
skopeo, hostile input, crash safety and concurrency."""
import hashlib
import io
import json
import os
import shutil
import signal
import subprocess
import tarfile
import time
import unittest

from berth_test import BerthTestCase, SHARED_IMAGES, busybox_rootfs_tar


def oci_layout_tar(layout, out):
    with tarfile.open(out, "w") as t:
        for name in sorted(os.listdir(layout)):
            t.add(os.path.join(layout, name), arcname=name)
    return out


def layout_ids(layout):
    """(manifest digest, config digest) of an OCI layout's first manifest."""
    with open(os.path.join(layout, "index.json")) as f:
        index = json.load(f)
    mdigest = index["manifests"][0]["digest"]
    with open(os.path.join(layout, "blobs", "sha256", mdigest.split(":")[1])) as f:
        manifest = json.load(f)
    return mdigest, manifest["config"]["digest"], manifest


class Images(BerthTestCase):
    storage_driver = "overlay"

    def setUp(self):
        self.berth("rmi", "-af")

    def test_import_list_inspect_tag_rmi(self):
        tar = busybox_rootfs_tar(self.tmp)
        out = self.ok("import", "--change", 'CMD ["/bin/sh"]', "-m", "made by a test", tar,
                      "localhost/bb:1").out.strip()
        self.assertRegex(out, r"^sha256:[0-9a-f]{64}$")
        image_id = out.split(":")[1]
        r = self.ok("images")
        self.assertRegex(r.out, r"(?m)^REPOSITORY\s+TAG\s+IMAGE ID\s+CREATED\s+SIZE$")
        self.assertRegex(r.out, r"(?m)^localhost/bb\s+1\s+" + image_id[:12] + r"\s")
        j = self.json("image", "inspect", "bb:1")[0]
        self.assertEqual(j["Id"], image_id)
        self.assertEqual(j["Config"]["Cmd"], ["/bin/sh"])
        self.assertEqual(j["RepoTags"], ["localhost/bb:1"])
        self.assertEqual(j["GraphDriver"]["Name"], "overlay")
        self.assertEqual(len(j["RootFS"]["Layers"]), 1)
        # Image ID is the digest of the config blob: save as OCI and check.
        d = os.path.join(self.tmp, "oci-dir")
        shutil.rmtree(d, ignore_errors=True)
        self.ok("save", "--format", "oci-dir", "-o", d, "bb:1")
        _, config_digest, _ = layout_ids(d)
        self.assertEqual(config_digest, "sha256:" + image_id)
        # tag, then rmi removes names before the image.
        self.ok("tag", "bb:1", "other/name:2")
        self.assertEqual(self.ok("images", "--format", "{{.Repository}}:{{.Tag}}",
                                 "--sort", "repository").out.split(),
                         ["localhost/bb:1", "localhost/other/name:2"])
        r = self.ok("rmi", "other/name:2")
        self.assertIn("Untagged: localhost/other/name:2", r.out)
        self.assertTrue(self.berth("image", "exists", "bb:1").rc == 0)
        r = self.ok("rmi", "bb:1")
        self.assertIn("Deleted: " + image_id, r.out)
        self.assertEqual(self.berth("image", "exists", "bb:1").rc, 1)
        r = self.berth("rmi", "bb:1")
        self.assertEqual(r.rc, 1)
        self.assertIn("bb:1", r.err)
        r = self.berth("image", "inspect", "nosuch")
        self.assertEqual(r.rc, 125)
        self.assertIn("nosuch", r.err)

    def test_skopeo_archives_load_with_same_ids(self):
        layout = os.path.join(SHARED_IMAGES, "bb")
        mdigest, config_digest, manifest = layout_ids(layout)
        for fmt in ("docker-archive", "oci-archive"):
            out = os.path.join(self.tmp, f"skopeo-{fmt}.tar")
            if os.path.exists(out):
                os.unlink(out)
            subprocess.run(["skopeo", "copy", "--quiet", f"oci:{layout}:latest",
                            f"{fmt}:{out}:example.com/bb:latest"], check=True,
                           capture_output=True)
            r = self.ok("load", "-i", out)
            self.assertIn("Loaded image", r.out)
            j = self.json("image", "inspect", "example.com/bb:latest")[0]
            self.assertEqual("sha256:" + j["Id"], config_digest, fmt)
            diff_ids = j["RootFS"]["Layers"]
            self.assertEqual(len(diff_ids), len(manifest["layers"]))
            self.ok("rmi", "example.com/bb:latest")

    def test_save_load_round_trip_is_identical(self):
        layout = os.path.join(SHARED_IMAGES, "multi")
        archive = oci_layout_tar(layout, os.path.join(self.tmp, "multi.tar"))
        self.ok("load", "-i", archive)
        ids = self.ok("images", "-q", "--no-trunc").out.split()
        self.assertEqual(len(ids), 1)
        inspect1 = self.json("image", "inspect", ids[0])[0]
        saved = os.path.join(self.tmp, "multi-saved.tar")
        self.ok("save", "--format", "docker-archive", "-o", saved, ids[0])
        self.ok("rmi", "-a", "-f")
        self.ok("load", "-i", saved)
        inspect2 = self.json("image", "inspect", ids[0].replace("sha256:", ""))[0]
        self.assertEqual(inspect1["Id"], inspect2["Id"])
        self.assertEqual(inspect1["RootFS"], inspect2["RootFS"])
        # Whiteouts applied as a correct engine does (shared/images/README.md).
        path = self.ok("image", "mount", ids[0]).out.strip()
        try:
            self.assertEqual(os.listdir(os.path.join(path, "data", "opq")), ["new"])
            self.assertFalse(os.path.exists(os.path.join(path, "data", "x")))
            self.assertFalse(os.path.exists(os.path.join(path, "data", "l2", "big.bin")))
            self.assertEqual(len(os.listdir(os.path.join(path, "data", "l7", "d00"))), 100)
        finally:
            self.ok("image", "unmount", ids[0])
        # A second save is byte-identical to the first (layers rebuilt exactly).
        saved2 = os.path.join(self.tmp, "multi-saved2.tar")
        self.ok("save", "--format", "oci-archive", "-o", saved2, ids[0])
        saved3 = os.path.join(self.tmp, "multi-saved3.tar")
        self.ok("save", "--format", "oci-archive", "-o", saved3, ids[0])
        with open(saved2, "rb") as a, open(saved3, "rb") as b:
            self.assertEqual(hashlib.sha256(a.read()).digest(), hashlib.sha256(b.read()).digest())

    def test_load_from_stdin_and_save_to_stdout(self):
        tar = busybox_rootfs_tar(self.tmp)
        self.ok("import", tar, "localhost/piped:latest")
        p = subprocess.run([*self.cmd(), "save", "localhost/piped"], capture_output=True,
                           env=self.env)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.ok("rmi", "localhost/piped")
        p2 = subprocess.run([*self.cmd(), "load"], input=p.stdout, capture_output=True,
                            env=self.env)
        self.assertEqual(p2.returncode, 0, p2.stderr)
        self.assertIn(b"Loaded image: localhost/piped:latest", p2.stdout)

    def test_hostile_tar_is_refused_and_store_unchanged(self):
        bad = os.path.join(self.tmp, "hostile.tar")
        with tarfile.open(bad, "w") as t:
            info = tarfile.TarInfo("../../escape")
            data = b"owned\n"
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
        r = self.berth("import", bad, "localhost/hostile")
        self.assertNotEqual(r.rc, 0)
        self.assertIn("..", r.err)
        self.assertEqual(self.ok("images", "-q").out, "")
        self.assertEqual(self.berth("system", "check").rc, 0)
        garbage = os.path.join(self.tmp, "garbage.tar")
        with open(garbage, "wb") as f:
            f.write(os.urandom(4096))
        r = self.berth("load", "-i", garbage)
        self.assertEqual(r.rc, 125)
        self.assertTrue(r.err.startswith("Error: "), r.err)

    def test_killed_load_leaves_nothing_visible(self):
        archive = oci_layout_tar(os.path.join(SHARED_IMAGES, "deb"),
                                 os.path.join(self.tmp, "deb.tar"))
        p = subprocess.Popen([*self.cmd(), "load", "-i", archive], env=self.env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.4)
        p.send_signal(signal.SIGKILL)
        p.wait()
        self.assertEqual(self.ok("images", "-q").out, "")
        # The next command that writes cleans up; check finds nothing left.
        self.ok("system", "check", "--repair")
        self.assertEqual(self.berth("system", "check").rc, 0)
        self.ok("load", "-i", archive)
        self.assertEqual(len(self.ok("images", "-q").out.split()), 1)

    def test_concurrent_load_tag_rmi_end_consistent(self):
        tar = busybox_rootfs_tar(self.tmp)
        self.ok("import", tar, "localhost/base:latest")
        archive = os.path.join(self.tmp, "base.tar")
        self.ok("save", "-o", archive, "localhost/base")
        procs = []
        for i in range(8):
            script = (f"set -e; B='{' '.join(self.cmd())}'; "
                      f"for k in 1 2 3; do $B load -q -i {archive}; "
                      f"$B tag localhost/base localhost/t{i}:$k; "
                      f"$B rmi localhost/t{i}:$k >/dev/null; done; $B tag localhost/base localhost/keep{i}")
            procs.append(subprocess.Popen(["sh", "-c", script], env=self.env,
                                          stderr=subprocess.PIPE, text=True))
        for p in procs:
            _, err = p.communicate(timeout=300)
            self.assertEqual(p.returncode, 0, err)
        names = self.ok("images", "--format", "{{.Repository}}").out.split()
        self.assertEqual(sorted(names), sorted(["localhost/base"] + [f"localhost/keep{i}"
                                                                     for i in range(8)]))
        self.assertEqual(len(set(self.ok("images", "-q").out.split())), 1)
        self.assertEqual(self.berth("system", "check").rc, 0)


class ImagesVfs(BerthTestCase):
    storage_driver = "vfs"

    def test_import_and_mount_on_vfs(self):
        tar = busybox_rootfs_tar(self.tmp)
        self.ok("import", tar, "localhost/bbvfs")
        path = self.ok("image", "mount", "localhost/bbvfs").out.strip()
        self.assertTrue(os.path.isfile(os.path.join(path, "bin", "busybox")))
        self.ok("image", "unmount", "localhost/bbvfs")
        self.assertEqual(self.json("info", "--format", "json")["store"]["graphDriverName"], "vfs")


if __name__ == "__main__":
    unittest.main()
