"""`image inspect docker://...`: a remote image as skopeo shows it, nothing stored."""
import json
import subprocess
import unittest

from test_registry import RegistryCase


class RemoteInspectTest(RegistryCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.reg = cls.start()
        cls.digest = cls.reg.skopeo_push("bb", "lib/bb:latest")
        cls.reg.skopeo_push("bb", "lib/bb:v2")

    def setUp(self):
        self.write_conf(self.insecure(self.reg.host))

    def skopeo(self, *args):
        p = subprocess.run(["skopeo", "inspect", "--tls-verify=false"] + list(args),
                           capture_output=True, text=True, check=True)
        return p.stdout

    def test_inspect_matches_skopeo_and_stores_nothing(self):
        ref = "docker://%s/lib/bb:latest" % self.reg.host
        ours = self.json("image", "inspect", ref)[0]
        theirs = json.loads(self.skopeo(ref))
        for k in ("Name", "Digest", "Layers", "Architecture", "Os", "Created", "Env"):
            self.assertEqual(ours[k], theirs[k], k)
        self.assertEqual(sorted(ours["RepoTags"]), ["latest", "v2"])
        self.assertEqual(ours["Digest"], self.digest)
        self.assertEqual(self.ok("images", "-q").out.strip(), "")

    def test_raw_is_the_served_manifest(self):
        ref = "docker://%s/lib/bb:latest" % self.reg.host
        raw = self.ok("image", "inspect", "--raw", ref).out
        self.assertEqual(raw.rstrip("\n"), self.skopeo("--raw", ref).rstrip("\n"))
        self.assertEqual(json.loads(raw)["schemaVersion"], 2)

    def test_format(self):
        ref = "docker://%s/lib/bb:latest" % self.reg.host
        out = self.ok("image", "inspect", "--format", "{{.Digest}}", ref).out.strip()
        self.assertEqual(out, self.digest)

    def test_unknown_remote_image_fails_clearly(self):
        r = self.berth("image", "inspect", "docker://%s/lib/nope:latest" % self.reg.host)
        self.assertEqual(r.rc, 125, r)
        self.assertIn("lib/nope", r.err)

    def test_raw_needs_a_remote_image(self):
        r = self.berth("image", "inspect", "--raw", "busybox")
        self.assertEqual(r.rc, 125, r)
        self.assertIn("docker://", r.err)


if __name__ == "__main__":
    unittest.main()
