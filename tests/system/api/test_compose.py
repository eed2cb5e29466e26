"""docker-compose (Debian's v1) against berth's API service: `up -d` of two busybox services on the
project's network with a published port and name resolution between them, then `ps`, `logs`,
`exec` and `down`; a second `up` and `run --rm` over the network the first `up` made."""
import os
import shutil
import socket
import subprocess
import time
import unittest

from api_fixture import IMAGE, ApiTestCase

COMPOSE = shutil.which("docker-compose")

COMPOSE_FILE = """version: "3"
services:
  web:
    image: {image}
    command: ["sh", "-c", "echo compose-web > /tmp/index.html; echo web-started; exec httpd -f -p 8080 -h /tmp"]
    ports:
      - "127.0.0.1:{port}:8080"
  client:
    image: {image}
    command: ["sleep", "300"]
"""


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


@unittest.skipIf(COMPOSE is None, "docker-compose is not installed (Debian package docker-compose)")
class ComposeTest(ApiTestCase):
    def compose(self, *args, check=True, timeout=180):
        p = subprocess.run([COMPOSE, "-p", "bt", "-f", self.file] + list(args),
                           capture_output=True, text=True, env=self.docker_env, timeout=timeout,
                           cwd=self.dir)
        if check and p.returncode != 0:
            self.fail(f"docker-compose {' '.join(args)} failed ({p.returncode}):\n"
                      f"{p.stdout}\n{p.stderr}")
        return p

    def setUp(self):
        self.dir = os.path.join(self.tmp, "compose")
        os.makedirs(self.dir, exist_ok=True)
        self.file = os.path.join(self.dir, "docker-compose.yml")
        self.port = free_port()
        with open(self.file, "w") as f:
            f.write(COMPOSE_FILE.format(image=IMAGE, port=self.port))

    def tearDown(self):
        self.compose("down", "-t", "0", check=False)

    def fetch(self, port, path):
        deadline = time.time() + 20
        body = b""
        while time.time() < deadline:
            body = b""
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
                    s.sendall(f"GET {path} HTTP/1.0\r\n\r\n".encode())
                    while True:
                        chunk = s.recv(4096)
                        if not chunk:
                            break
                        body += chunk
                if body:
                    return body
            except OSError:
                pass
            time.sleep(0.2)
        return body

    def test_up_ps_logs_exec_down(self):
        self.compose("up", "-d")
        ps = self.compose("ps").stdout
        self.assertIn("bt_web_1", ps)
        self.assertIn("bt_client_1", ps)
        self.assertEqual(ps.count(" Up "), 2, ps)
        self.assertIn(b"compose-web", self.fetch(self.port, "/index.html"))
        # The client reaches the web service by its service name on the project network.
        out = self.compose("exec", "-T", "client", "wget", "-qO-",
                           "http://web:8080/index.html").stdout
        self.assertEqual(out, "compose-web\n")
        deadline = time.time() + 10
        logs = ""
        while time.time() < deadline and "web-started" not in logs:
            logs = self.compose("logs", "--no-color", "web").stdout
            time.sleep(0.2)
        self.assertIn("web-started", logs)
        self.compose("down", "-t", "0")
        names = self.docker("ps", "-a", "--format", "{{.Names}}").stdout.split()
        self.assertNotIn("bt_web_1", names)
        nets = self.docker("network", "ls", "--format", "{{.Name}}").stdout.split()
        self.assertNotIn("bt_default", nets)

    def test_second_up_and_run_reuse_the_project_network(self):
        # compose compares the existing network's Options with its file's driver_opts: the bridge
        # name berth picked made both fail with 'Network "bt_default" needs to be recreated -
        # option "com.docker.network.bridge.name" has changed'.
        self.compose("up", "-d")
        self.compose("up", "-d")
        p = self.compose("run", "--rm", "-T", "client", "sh", "-c", "echo ran-once; exit 3",
                         check=False)
        self.assertEqual(p.returncode, 3, p.stderr)
        self.assertIn("ran-once", p.stdout)
        out = self.compose("top", "client").stdout
        self.assertIn("sleep 300", out)
        self.assertIn("UID", out)  # Docker's ps -ef columns


if __name__ == "__main__":
    unittest.main()
