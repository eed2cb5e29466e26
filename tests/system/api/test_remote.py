"""The remote CLI: `berth --url unix://PATH ...`, `--connection NAME` (containers.conf
[engine.service_destinations]) and `--remote` run the command on a berth service over its store,
with the client's stdin and the command's exit code."""
import json
import os
import unittest

from api_fixture import IMAGE, ApiTestCase


class RemoteCliTest(ApiTestCase):
    def remote(self, *args, input=None, env=None):
        return self.berth("--url", self.url, *args, input=input, env=env, store=False)

    def test_images_and_ps_run_on_the_service_store(self):
        r = self.remote("images", "--format", "{{.Repository}}:{{.Tag}}")
        self.assertEqual(r.rc, 0, r)
        self.assertIn(IMAGE, r.out.split())
        r = self.remote("ps", "-a", "--format", "json")
        self.assertEqual(r.rc, 0, r)
        self.assertIsInstance(json.loads(r.out), list)

    def test_run_output_and_exit_code(self):
        r = self.remote("run", "--rm", IMAGE, "sh", "-c", "echo out; echo err >&2; exit 3")
        self.assertEqual(r.rc, 3, r)
        self.assertEqual(r.out, "out\n")
        self.assertEqual(r.err, "err\n")

    def test_stdin_reaches_the_command(self):
        r = self.remote("run", "-i", "--rm", IMAGE, "cat", input="hello remote\n")
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(r.out, "hello remote\n")

    def test_detached_container_is_visible_locally(self):
        r = self.remote("run", "-d", "--name", "remote-d", IMAGE, "sleep", "60")
        self.assertEqual(r.rc, 0, r)
        cid = r.out.strip()
        try:
            ps = self.json("ps", "--format", "json")
            self.assertIn(cid, [c["Id"] for c in ps])
        finally:
            self.ok("rm", "-f", "-t", "0", "remote-d")

    def test_errors_keep_podman_exit_codes(self):
        r = self.remote("inspect", "no-such-container")
        self.assertEqual(r.rc, 125, r)
        self.assertIn("no-such-container", r.err)
        r = self.remote("run", "--rm", IMAGE, "/no/such/binary")
        self.assertEqual(r.rc, 127, r)

    def test_connection_from_containers_conf(self):
        conf = os.path.join(self.tmp, "remote.conf")
        with open(conf, "w") as f:
            f.write('[engine]\nactive_service = "test"\n'
                    '[engine.service_destinations.test]\nuri = "%s"\n' % self.url)
        env = {"CONTAINERS_CONF": conf}
        r = self.berth("--connection", "test", "images", "-q", env=env, store=False)
        self.assertEqual(r.rc, 0, r)
        self.assertTrue(r.out.strip())
        r = self.berth("--remote", "images", "-q", env=env, store=False)
        self.assertEqual(r.rc, 0, r)
        r = self.berth("--connection", "nope", "images", env=env, store=False)
        self.assertEqual(r.rc, 125, r)
        self.assertIn("nope", r.err)

    def test_global_flags_after_the_command(self):
        # --url after the command runs it on the service, as before it; the leading store flags
        # name an empty store, which a run on this side would have used.
        other = ["--root", os.path.join(self.tmp, "other-root"),
                 "--runroot", os.path.join(self.tmp, "other-runroot")]
        r = self.berth(*other, "images", "--format", "{{.Repository}}:{{.Tag}}",
                       "--url", self.url, store=False)
        self.assertEqual(r.rc, 0, r)
        self.assertIn(IMAGE, r.out.split())
        r = self.berth(*other, "run", "--url=" + self.url, "--rm", IMAGE, "echo", "on-service",
                       store=False)
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(r.out, "on-service\n")
        # Store flags after the command are left out, as before it (the service's store is
        # used); the command's own arguments stay as they are, flags alike.
        r = self.remote("run", "--root", os.path.join(self.tmp, "other-root"), "--rm", IMAGE,
                        "echo", "--root", "--url", "x")
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(r.out, "--root --url x\n")
        # --log-level after the command reaches the command on the service: a bad level is
        # its error, as it is locally.
        local = self.berth("ps", "--log-level", "bogus")
        self.assertEqual(local.rc, 125, local)
        r = self.remote("ps", "--log-level", "bogus")
        self.assertEqual(r.rc, 125, r)
        self.assertEqual(r.err, local.err)
        r = self.remote("ps", "-a", "--log-level", "error", "--format", "json")
        self.assertEqual(r.rc, 0, r)
        # --connection after the command, from containers.conf.
        conf = os.path.join(self.tmp, "after.conf")
        with open(conf, "w") as f:
            f.write('[engine.service_destinations.after]\nuri = "%s"\n' % self.url)
        r = self.berth(*other, "images", "-q", "--connection", "after",
                       env={"CONTAINERS_CONF": conf}, store=False)
        self.assertEqual(r.rc, 0, r)
        self.assertIn(self.image_id.replace("sha256:", "")[:12], r.out)

    def test_unreachable_service(self):
        r = self.berth("--url", "unix://" + os.path.join(self.tmp, "missing.sock"), "ps",
                       store=False)
        self.assertEqual(r.rc, 125, r)
        self.assertIn("cannot connect", r.err)


if __name__ == "__main__":
    unittest.main()
