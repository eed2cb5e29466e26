"""A berth API service per test class: its own store (--root/--runroot in a temporary directory),
a busybox image imported from the host's busybox-static, the service on a unix socket in the same
directory, killed by pid at the end."""
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import time

from berth_test import BERTH, BerthTestCase

IMAGE = "localhost/bb:latest"
REPO_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
DOCKER = shutil.which("docker") or "/usr/bin/docker"


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path, timeout=30):
        super().__init__("localhost", timeout=timeout)
        self.path = path

    def connect(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        s.connect(self.path)
        self.sock = s


class ApiTestCase(BerthTestCase):
    service_args = ["--time", "0"]

    @classmethod
    def service_binary(cls):
        """The berth that serves (cls.tmp exists when this is called)."""
        return BERTH

    @classmethod
    def before_service(cls):
        """Runs just before the service starts (cls.env is what it will run with)."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        tar = os.path.join(cls.tmp, "rootfs.tar")
        subprocess.run([os.path.join(REPO_ROOT, "scripts", "make-busybox-rootfs.sh"), tar],
                       check=True, capture_output=True)
        cls.store_args = ["--root", cls.root, "--runroot", cls.runroot, "--storage-driver",
                          cls.storage_driver]
        r = subprocess.run([BERTH] + cls.store_args + ["import", "--change", 'CMD ["/bin/sh"]',
                                                       tar, IMAGE],
                           capture_output=True, text=True, env=cls.env)
        if r.returncode != 0:
            raise RuntimeError(f"import failed: {r.stderr}")
        cls.image_id = r.stdout.strip().split("\n")[-1]
        cls.sock = os.path.join(cls.tmp, "berth.sock")
        cls.url = "unix://" + cls.sock
        cls.service_log = open(os.path.join(cls.tmp, "service.log"), "w")
        cls.before_service()
        cls.service = subprocess.Popen(
            [cls.service_binary()] + cls.store_args + ["system", "service"] + cls.service_args +
            [cls.url],
            stdout=cls.service_log, stderr=subprocess.STDOUT, env=cls.env)
        deadline = time.time() + 30
        while time.time() < deadline:
            if os.path.exists(cls.sock):
                try:
                    if cls.request("GET", "/_ping")[0] == 200:
                        break
                except OSError:
                    pass
            if cls.service.poll() is not None:
                raise RuntimeError("service exited: " + open(cls.service_log.name).read())
            time.sleep(0.05)
        else:
            raise RuntimeError("service did not answer on " + cls.sock)
        # The docker CLI without the host's configuration.
        cls.docker_env = dict(cls.env)
        cls.docker_env["DOCKER_HOST"] = cls.url
        cls.docker_env["DOCKER_CONFIG"] = os.path.join(cls.tmp, "docker-config")
        os.makedirs(cls.docker_env["DOCKER_CONFIG"], exist_ok=True)

    @classmethod
    def tearDownClass(cls):
        if cls.service.poll() is None:
            os.kill(cls.service.pid, signal.SIGTERM)
            try:
                cls.service.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.kill(cls.service.pid, signal.SIGKILL)
                cls.service.wait()
        cls.service_log.close()
        super().tearDownClass()

    @classmethod
    def request(cls, method, path, body=None, headers=None, timeout=30):
        c = UnixHTTPConnection(cls.sock, timeout=timeout)
        try:
            c.request(method, path, body=body, headers=headers or {})
            r = c.getresponse()
            data = r.read()
            return r.status, dict(r.getheaders()), data
        finally:
            c.close()

    def request_json(self, method, path, body=None):
        status, headers, data = self.request(method, path, body=body,
                                             headers={"Content-Type": "application/json"})
        return status, (json.loads(data) if data else None)

    def docker(self, *args, input=None, check=True, timeout=120, text=True):
        p = subprocess.run([DOCKER] + list(args), input=input, capture_output=True, text=text,
                           env=self.docker_env, timeout=timeout)
        if check and p.returncode != 0:
            self.fail(f"docker {' '.join(args)} failed ({p.returncode}):\n{p.stdout}\n{p.stderr}")
        return p


class DockerPyTestCase(ApiTestCase):
    """docker-py's client on the service (API 1.41); the containers listed in self.made are
    removed after each test."""

    def setUp(self):
        import docker  # python3-docker, for the tests that drive the service with it

        self.client = docker.DockerClient(base_url=self.url, version="1.41", timeout=60)
        self.made = []

    def tearDown(self):
        import docker

        for c in self.made:
            try:
                self.client.api.remove_container(c, force=True)
            except docker.errors.NotFound:
                pass
        self.client.close()


def recv_all(sock):
    """What `sock` delivers until the peer closes it; the socket is closed after."""
    data = b""
    while True:
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
    sock.close()
    return data
