"""A volume's subpath (`--mount type=volume,...,volume-subpath=DIR`, Docker API 1.45's
VolumeOptions.Subpath) is checked at each start and handed to the runtime as a bind of the
checked directory on a stage in the container's run dir, never as a path inside the volume
(which a container sharing the volume could turn into a symlink out of it between the check and
the runtime's mount). The stage goes with the container's exit; --volumes-from keeps the
subpath."""
import json
import os
import shutil
import time
import unittest

from mounts_fixture import IMAGE, MountsTestCase


def mounts_under(prefix):
    with open("/proc/self/mountinfo") as f:
        return [line.split()[4] for line in f if line.split()[4].startswith(prefix)]


class Subpath(MountsTestCase):
    def volume_with_data(self, name):
        self.berth("volume", "rm", "-f", name)
        self.ok("volume", "create", name)
        self.addCleanup(self.berth, "volume", "rm", "-f", name)
        root = self.volume_path(name)
        os.makedirs(os.path.join(root, "data"))
        with open(os.path.join(root, "data", "f"), "w") as f:
            f.write("in-subpath\n")
        with open(os.path.join(root, "top"), "w") as f:
            f.write("at-the-root\n")
        return root

    def spec_source(self, name, destination):
        """The container's id and the source its OCI spec gives the runtime for destination."""
        cid = self.ok("inspect", "--format", "{{.Id}}", name).out.strip()
        with open(os.path.join(self.root, "containers", cid, "userdata", "config.json")) as f:
            spec = json.load(f)
        sources = [m["source"] for m in spec["mounts"] if m["destination"] == destination]
        self.assertEqual(len(sources), 1, spec["mounts"])
        return cid, sources[0]

    def wait_gone(self, prefix, timeout=20):
        deadline = time.time() + timeout
        while mounts_under(prefix) and time.time() < deadline:
            time.sleep(0.05)
        return mounts_under(prefix)

    def test_subpath_is_staged_from_the_checked_directory(self):
        root = self.volume_with_data("sp1")
        self.addCleanup(self.rm, "sub1")
        self.ok("run", "-d", "--name", "sub1", "--network", "none", "--mount",
                "type=volume,source=sp1,target=/mnt,volume-subpath=data", IMAGE, "sleep", "1000")
        self.assertEqual(self.ok("exec", "sub1", "cat", "/mnt/f").out, "in-subpath\n")
        self.assertNotEqual(self.berth("exec", "sub1", "cat", "/mnt/top").rc, 0)
        self.ok("exec", "sub1", "sh", "-c", "echo written > /mnt/new")
        with open(os.path.join(root, "data", "new")) as f:
            self.assertEqual(f.read(), "written\n")

        # The runtime's source is the stage in the run dir, a mount while the container runs.
        cid, source = self.spec_source("sub1", "/mnt")
        self.assertTrue(source.startswith(self.runroot), source)
        self.assertIn("subpaths", source)
        self.assertIn(source, mounts_under(self.runroot))
        # inspect still shows where the data is.
        mounts = self.json("inspect", "sub1")[0]["Mounts"]
        self.assertEqual([m["Source"] for m in mounts if m["Destination"] == "/mnt"],
                         [os.path.join(root, "data")])

        # Gone with the exit, back with the next start.
        self.ok("stop", "-t", "0", "sub1")
        self.assertEqual(self.wait_gone(source), [])
        self.ok("start", "sub1")
        self.assertEqual(self.ok("exec", "sub1", "cat", "/mnt/f").out, "in-subpath\n")
        self.ok("rm", "-f", "sub1")
        self.assertEqual(self.wait_gone(source), [])

    def test_subpath_turned_into_a_symlink_is_refused_at_the_next_start(self):
        root = self.volume_with_data("sp2")
        self.addCleanup(self.rm, "sub2")
        # Checked at each start (a created container's mounts are made already: stop it).
        out = self.ok("run", "--name", "sub2", "--network", "none", "--mount",
                      "type=volume,source=sp2,target=/mnt,volume-subpath=data", IMAGE, "sh",
                      "-c", "cat /mnt/f /mnt/passwd || true").out
        self.assertEqual(out, "in-subpath\n")
        shutil.rmtree(os.path.join(root, "data"))
        os.symlink("/etc", os.path.join(root, "data"))
        r = self.berth("start", "-a", "sub2")
        self.assertNotEqual(r.rc, 0, r)
        self.assertIn("leads out of the volume", r.err)
        self.assertNotIn("root:", r.out)
        self.assertEqual([m for m in mounts_under(self.runroot) if "subpaths" in m], [])

    def test_volumes_from_keeps_the_subpath(self):
        self.volume_with_data("sp3")
        self.addCleanup(self.rm, "sub3", "from3")
        self.ok("create", "--name", "sub3", "--network", "none", "--mount",
                "type=volume,source=sp3,target=/mnt,volume-subpath=data", IMAGE, "true")
        out = self.ok("run", "--name", "from3", "--network", "none", "--volumes-from", "sub3",
                      IMAGE, "ls", "/mnt").out.split()
        self.assertIn("f", out)
        self.assertNotIn("top", out)


if __name__ == "__main__":
    unittest.main()
