"""`berth container clone CONTAINER [NAME] [IMAGE]` (Podman 4): a new container from the create
options stored with another one, with --name, --destroy and --run."""
import time
import unittest

from mounts_fixture import DATA_IMAGE, IMAGE, SEED, MountsTestCase


class Clone(MountsTestCase):
    def inspect(self, name):
        return self.json("inspect", name)[0]

    def test_clone_keeps_the_create_options(self):
        self.addCleanup(self.berth, "volume", "rm", "-f", "clone-vol")
        for n in ("orig", "orig-clone", "orig-clone1", "renamed", "other-image"):
            self.addCleanup(self.rm, n)
        self.ok("create", "--name", "orig", "--network", "none", "-e", "FOO=bar", "-l",
                "app=web", "-v", "clone-vol:/data", IMAGE, "sh", "-c",
                "echo $FOO; cat /data/mark 2>/dev/null; hostname")
        orig = self.inspect("orig")

        cid = self.ok("container", "clone", "orig").out.strip()
        self.assertRegex(cid, r"^[0-9a-f]{64}$")
        clone = self.inspect("orig-clone")
        self.assertEqual(clone["Id"], cid)
        self.assertNotEqual(clone["Id"], orig["Id"])
        self.assertIn("FOO=bar", clone["Config"]["Env"])
        self.assertEqual(clone["Config"]["Labels"].get("app"), "web")
        self.assertEqual(clone["Config"]["Cmd"], orig["Config"]["Cmd"])
        vols = [m["Name"] for m in clone["Mounts"] if m["Destination"] == "/data"]
        self.assertEqual(vols, ["clone-vol"])
        # Its own hostname (its id), not the original's.
        self.assertEqual(clone["Config"]["Hostname"], cid[:12])
        # The named volume is shared: the original's data is the clone's.
        with open(f"{self.volume_path('clone-vol')}/mark", "w") as f:
            f.write("shared\n")
        out = self.ok("start", "--attach", "orig-clone").out
        self.assertEqual(out, f"bar\nshared\n{cid[:12]}\n")

        # Podman's default names, then a given one and another image.
        self.ok("container", "clone", "orig")
        self.assertEqual(self.berth("container", "exists", "orig-clone1").rc, 0)
        self.ok("container", "clone", "--name", "renamed", "orig")
        self.assertEqual(self.berth("container", "exists", "renamed").rc, 0)
        self.ok("container", "clone", "orig", "other-image", DATA_IMAGE)
        self.assertEqual(self.inspect("other-image")["ImageName"], DATA_IMAGE)
        self.assertEqual(self.inspect("orig")["ImageName"], IMAGE)

        r = self.berth("container", "clone", "no-such-container")
        self.assertEqual(r.rc, 125, r)
        self.assertIn("no-such-container", r.err)
        r = self.berth("container", "clone", "orig", "renamed")
        self.assertEqual(r.rc, 125, r)  # the name is taken

    def test_clone_destroy_and_run(self):
        self.addCleanup(self.rm, "src-ctr", "dst-ctr")
        self.ok("run", "-d", "--name", "src-ctr", "--network", "none", DATA_IMAGE, "sh", "-c",
                "cat /data/seed.txt; sleep 1000")
        # A running original is only destroyed with --force.
        r = self.berth("container", "clone", "--destroy", "src-ctr", "dst-ctr")
        self.assertEqual(r.rc, 125, r)
        self.assertIn("stop it first or add --force", r.err)
        self.assertEqual(self.berth("container", "exists", "src-ctr").rc, 0)
        self.assertEqual(self.berth("container", "exists", "dst-ctr").rc, 1)
        cid = self.ok("container", "clone", "--destroy", "--force", "--run", "src-ctr",
                      "dst-ctr").out.strip()
        self.assertEqual(self.berth("container", "exists", "src-ctr").rc, 1)
        self.assertEqual(self.ok("wait", "--condition", "running", "dst-ctr").rc, 0)
        self.assertEqual(self.inspect("dst-ctr")["Id"], cid)
        for _ in range(200):
            if self.ok("logs", "dst-ctr").out:
                break
            time.sleep(0.05)
        self.assertEqual(self.ok("logs", "dst-ctr").out, SEED.decode())


if __name__ == "__main__":
    unittest.main()
