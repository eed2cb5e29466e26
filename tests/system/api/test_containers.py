"""Containers through the API with the docker CLI and docker-py: run --rm, run -d, logs -f, exec,
inspect, stop, rm, the exit code of a missing command (`docker cp` is in test_container_ops)."""
import json
import os
import subprocess
import unittest

import docker

from api_fixture import DOCKER, IMAGE, ApiTestCase


class ContainersTest(ApiTestCase):
    def test_run_rm_prints_output_and_passes_exit_code(self):
        p = self.docker("run", "--rm", "--name", "once", IMAGE, "sh", "-c",
                        "echo out; echo err >&2; exit 3", check=False)
        self.assertEqual(p.returncode, 3, p.stderr)
        self.assertEqual(p.stdout, "out\n")
        self.assertIn("err\n", p.stderr)
        out = self.docker("ps", "-a", "--format", "{{.Names}}").stdout.split()
        self.assertNotIn("once", out)

    def test_detached_logs_exec_inspect_stop_rm(self):
        cid = self.docker("run", "-d", "--name", "web", IMAGE, "sh", "-c",
                          "echo started; while true; do sleep 1; done").stdout.strip()
        self.assertEqual(len(cid), 64)
        try:
            out = self.docker("ps", "--format", "{{.Names}} {{.State}}").stdout
            self.assertIn("web running", out)
            state = json.loads(self.docker("inspect", "--format", "{{json .State}}",
                                           "web").stdout)
            self.assertTrue(state["Running"])
            # Docker 26 (API 1.45) shows the mode "default" aliases.
            mode = self.docker("inspect", "--format", "{{.HostConfig.NetworkMode}}", "web")
            self.assertEqual(mode.stdout.strip(), "bridge")
            self.assertEqual(self.docker("logs", "web").stdout, "started\n")
            p = self.docker("exec", "web", "sh", "-c", "echo in-exec; exit 4", check=False)
            self.assertEqual(p.stdout, "in-exec\n")
            self.assertEqual(p.returncode, 4)
            self.docker("stop", "-t", "1", "web")
            # logs -f of a stopped container ends by itself.
            out = self.docker("logs", "-f", "web", timeout=30).stdout
            self.assertEqual(out, "started\n")
            state = json.loads(self.docker("inspect", "--format", "{{json .State}}",
                                           "web").stdout)
            self.assertFalse(state["Running"])
        finally:
            self.docker("rm", "-f", "web", check=False)
        p = self.docker("inspect", "web", check=False)
        self.assertNotEqual(p.returncode, 0)

    def test_docker_py_containers(self):
        client = docker.DockerClient(base_url=self.url, version="1.41", timeout=60)
        try:
            out = client.containers.run(IMAGE, ["echo", "hello"], remove=True)
            self.assertEqual(out, b"hello\n")
            c = client.containers.run(IMAGE, ["sleep", "300"], detach=True, name="py")
            c.reload()
            self.assertEqual(c.status, "running")
            code, out = c.exec_run(["sh", "-c", "echo hi; exit 2"])
            self.assertEqual((code, out), (2, b"hi\n"))
            c.kill()
            self.assertEqual(c.wait(timeout=30)["StatusCode"], 137)
            c.remove()
            with self.assertRaises(docker.errors.NotFound):
                client.containers.get("py")
        finally:
            client.close()

    def test_missing_command_is_127_without_a_pull(self):
        # Before, create answered 404 for the missing executable and the docker CLI took it for
        # a missing image: "Unable to find image", a pull, and exit code 125.
        p = self.docker("run", "--name", "nocmd", IMAGE, "/no/such/program", check=False)
        self.addCleanup(self.docker, "rm", "-f", "nocmd", check=False)
        self.assertEqual(p.returncode, 127, p.stderr)
        self.assertNotIn("Unable to find image", p.stderr)
        self.assertIn("/no/such/program", p.stderr)
        p = self.docker("run", "--rm", "--network", "no-such-net", IMAGE, "true", check=False)
        self.assertEqual(p.returncode, 125, p.stderr)
        self.assertNotIn("Unable to find image", p.stderr)
        self.assertIn("no-such-net", p.stderr)

    def test_stdin_through_hijacked_connection(self):
        p = self.docker("run", "-i", "--rm", IMAGE, "cat", input="piped-in\n", timeout=60)
        self.assertEqual(p.stdout, "piped-in\n")
        self.docker("run", "-d", "--name", "stdin-exec", IMAGE, "sleep", "300")
        try:
            p = self.docker("exec", "-i", "stdin-exec", "cat", input="to-exec\n", timeout=60)
            self.assertEqual(p.stdout, "to-exec\n")
        finally:
            self.docker("rm", "-f", "stdin-exec", check=False)

    def test_missing_container_is_404(self):
        status, _, data = self.request("POST", "/v1.41/containers/nope/start")
        self.assertEqual(status, 404)
        self.assertIn("No such container", json.loads(data)["message"])

    def test_start_of_running_is_304(self):
        self.docker("run", "-d", "--name", "twice", IMAGE, "sleep", "300")
        try:
            status, _, _ = self.request("POST", "/v1.41/containers/twice/start")
            self.assertEqual(status, 304)
            self.docker("kill", "twice")
            self.docker("wait", "twice")
            status, _, _ = self.request("POST", "/v1.41/containers/twice/stop")
            self.assertEqual(status, 304)
        finally:
            self.docker("rm", "-f", "twice", check=False)


if __name__ == "__main__":
    unittest.main()
