"""run/create --pull missing|always|newer|never through the copy pipeline, against a local
registry (tests/system/registry/registry_fixture.py), with Podman's progress lines on stderr."""
import os
import unittest

from berth_test import BerthTestCase
from registry.registry_fixture import Registry


class RunPullTest(BerthTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.reg = Registry()
        cls.reg.skopeo_push("bb", "bb:latest")
        conf = os.path.join(cls.tmp, "registries.conf")
        with open(conf, "w") as f:
            f.write('[[registry]]\nlocation = "%s"\ninsecure = true\n' % cls.reg.host)
        cls.env["CONTAINERS_REGISTRIES_CONF"] = conf
        cls.env["HOME"] = os.path.join(cls.tmp, "home")
        os.makedirs(cls.env["HOME"], exist_ok=True)

    @classmethod
    def tearDownClass(cls):
        super().tearDownClass()
        cls.reg.stop()

    def test_pull_policies(self):
        ref = self.reg.host + "/bb:latest"
        r = self.berth("run", "--rm", "--pull", "never", ref, "true")
        self.assertEqual(r.rc, 125, r)
        self.assertIn("image not known", r.err)
        # missing: pulled once, with the progress Podman prints.
        r = self.berth("run", "--rm", ref, "true")
        self.assertEqual(r.rc, 0, r)
        self.assertIn("Trying to pull %s..." % ref, r.err)
        self.assertIn("Getting image source signatures", r.err)
        self.assertRegex(r.err, r"Copying blob [0-9a-f]{12} done")
        self.assertIn("Writing manifest to image destination", r.err)
        blobs = self.reg.requests('"GET /v2/bb/blobs/')
        r = self.berth("run", "--rm", ref, "true")
        self.assertEqual((r.rc, r.err), (0, ""), r)
        self.assertEqual(self.reg.requests('"GET /v2/bb/blobs/'), blobs)
        # always: asks the registry again; the layers are reused.
        manifests = self.reg.requests('"GET /v2/bb/manifests/')
        r = self.berth("create", "--pull", "always", "--name", "pa", ref, "true")
        self.assertEqual(r.rc, 0, r)
        self.assertIn("Trying to pull %s..." % ref, r.err)
        self.assertGreater(self.reg.requests('"GET /v2/bb/manifests/'), manifests)
        self.assertEqual(self.reg.requests('"GET /v2/bb/blobs/'), blobs)
        self.ok("rm", "pa")
        # never with the image present: no registry traffic.
        manifests = self.reg.requests('"GET /v2/bb/manifests/')
        r = self.berth("run", "--rm", "--pull", "never", ref, "true")
        self.assertEqual((r.rc, r.err), (0, ""), r)
        self.assertEqual(self.reg.requests('"GET /v2/bb/manifests/'), manifests)

    def test_pull_failure_and_bad_policy(self):
        r = self.berth("run", "--rm", self.reg.host + "/nosuch:latest", "true")
        self.assertEqual(r.rc, 125, r)
        self.assertIn("nosuch", r.err)
        r = self.berth("run", "--rm", "--pull", "sometimes", self.reg.host + "/bb", "true")
        self.assertEqual(r.rc, 125, r)
        self.assertIn("invalid pull policy", r.err)


if __name__ == "__main__":
    unittest.main()
