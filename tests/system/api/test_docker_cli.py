"""The docker CLI with DOCKER_HOST=unix://<berth socket>: version, info, images, image inspect,
tag, rmi, save | load, system prune."""
import json
import unittest

from api_fixture import IMAGE, ApiTestCase


class DockerCliTest(ApiTestCase):
    def test_version(self):
        out = self.docker("version", "--format", "{{json .Server}}").stdout
        v = json.loads(out)
        self.assertEqual(v["ApiVersion"], "1.45")
        self.assertEqual(v["Os"], "linux")

    def test_info(self):
        out = self.docker("info", "--format", "{{.Driver}} {{.DockerRootDir}}").stdout.strip()
        self.assertEqual(out, f"vfs {self.root}")

    def test_images_and_inspect(self):
        out = self.docker("images", "--format", "{{.Repository}}:{{.Tag}}").stdout.split()
        self.assertIn(IMAGE, out)
        ident = self.docker("image", "inspect", "--format", "{{.Id}}", IMAGE).stdout.strip()
        self.assertTrue(ident.startswith("sha256:"))
        self.assertIn(self.image_id[:12], ident)
        p = self.docker("image", "inspect", "localhost/nothing-here", check=False)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("No such image", p.stderr)

    def test_tag_rmi_save_load(self):
        self.docker("tag", IMAGE, "localhost/cli-copy:1")
        out = self.docker("images", "--format", "{{.Repository}}:{{.Tag}}").stdout.split()
        self.assertIn("localhost/cli-copy:1", out)
        archive = self.docker("save", "localhost/cli-copy:1", text=False).stdout
        self.assertGreater(len(archive), 100000)
        out = self.docker("rmi", "localhost/cli-copy:1").stdout
        self.assertIn("Untagged: localhost/cli-copy:1", out)
        out = self.docker("images", "--format", "{{.Repository}}:{{.Tag}}").stdout.split()
        self.assertNotIn("localhost/cli-copy:1", out)
        out = self.docker("load", input=archive, text=False).stdout.decode()
        self.assertIn("Loaded image: localhost/cli-copy:1", out)
        out = self.docker("images", "--format", "{{.Repository}}:{{.Tag}}").stdout.split()
        self.assertIn("localhost/cli-copy:1", out)
        self.docker("rmi", "localhost/cli-copy:1")

    def test_system_prune(self):
        # It prunes containers, networks, images and the build cache (POST /build/prune, which
        # answered 404 "page not found" and failed the command).
        self.docker("run", "--name", "prune-me", "--network", "none", IMAGE, "true")
        self.addCleanup(self.docker, "rm", "-f", "prune-me", check=False)
        p = self.docker("system", "prune", "-f")
        self.assertIn("Total reclaimed space", p.stdout)
        names = self.docker("ps", "-a", "--format", "{{.Names}}").stdout.split()
        self.assertNotIn("prune-me", names)
        images = self.docker("images", "--format", "{{.Repository}}:{{.Tag}}").stdout.split()
        self.assertIn(IMAGE, images)  # tagged: only `-a` takes it
        p = self.docker("builder", "prune", "-f")
        self.assertIn("Total", p.stdout)


if __name__ == "__main__":
    unittest.main()
