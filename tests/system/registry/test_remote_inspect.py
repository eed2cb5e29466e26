"""`image inspect docker://...`: a remote image as skopeo shows it, nothing stored; `manifest
inspect` of a name that is no local list and `search --list-tags` ask the registry too."""
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

    def test_manifest_inspect_of_a_remote_image(self):
        # As Podman and `docker manifest inspect`: no local list of that name, so the registry's.
        ref = "%s/lib/bb:latest" % self.reg.host
        ours = json.loads(self.ok("manifest", "inspect", ref).out)
        self.assertEqual(ours, json.loads(self.skopeo("--raw", "docker://" + ref)))
        self.assertEqual(self.ok("images", "-q").out.strip(), "")
        r = self.berth("manifest", "inspect", "%s/lib/nope:latest" % self.reg.host)
        self.assertEqual(r.rc, 125, r)
        self.assertIn("no such manifest list", r.err)
        self.assertIn("lib/nope", r.err)

    def test_search_list_tags(self):
        r = self.ok("search", "--list-tags", "%s/lib/bb" % self.reg.host)
        lines = r.out.splitlines()
        self.assertEqual(lines[0].split(), ["NAME", "TAG"])
        self.assertEqual(sorted(l.split()[1] for l in lines[1:]), ["latest", "v2"])
        self.assertTrue(all(l.split()[0] == "%s/lib/bb" % self.reg.host for l in lines[1:]))
        one = self.ok("search", "--list-tags", "--limit", "1", "--format", "{{.Tag}}",
                      "%s/lib/bb" % self.reg.host).out.split()
        self.assertEqual(len(one), 1)
        r = self.berth("search", "--list-tags", "%s/lib/bb:latest" % self.reg.host)
        self.assertEqual(r.rc, 125, r)
        self.assertIn("without a tag", r.err)

    def test_docker_content_trust_flag_is_accepted(self):
        # `docker pull/push/run --disable-content-trust` in scripts: a no-op, as with Podman.
        ref = "%s/lib/bb:latest" % self.reg.host
        self.ok("pull", "-q", "--disable-content-trust", ref)
        self.ok("pull", "-q", "--disable-content-trust=false", ref)
        self.ok("push", "-q", "--disable-content-trust", ref, "dir:" + self.tmp + "/dct")
        self.ok("create", "--disable-content-trust", "--name", "dct", ref, "true")
        self.ok("rm", "dct")
        self.ok("rmi", ref)

    def test_pull_and_push_are_events(self):
        ref = "%s/lib/bb:v2" % self.reg.host
        self.ok("pull", "-q", ref)
        self.ok("pull", "-q", ref)  # up to date: an event too, as in Podman
        self.ok("push", "-q", ref, "dir:" + self.tmp + "/ev-push")
        lines = self.ok("events", "--stream=false", "--filter", "type=image").out.splitlines()
        self.assertEqual(sum(l.endswith(" image pull %s %s" % (l.split()[-2], ref))
                             for l in lines), 2, lines)
        self.assertTrue(any(" image push " in l and l.endswith("dir:" + self.tmp + "/ev-push")
                            for l in lines), lines)
        self.ok("rmi", ref)


if __name__ == "__main__":
    unittest.main()
