"""A real registry on 127.0.0.1 for berth's end-to-end tests: Debian's docker-registry started with
tests/fixtures/registry/run-registry.sh (plain HTTP, TLS with a test CA, htpasswd or token auth)."""
import os
import shutil
import socket
import subprocess
import tempfile
import time

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "fixtures",
                        "registry")
from berth_test import SHARED_IMAGES as IMAGES  # noqa: E402


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_open(port):
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


class Registry:
    """docker-registry in the background; stop() kills it by pid."""

    def __init__(self, tls=False, htpasswd=None, token_realm=None):
        self.dir = tempfile.mkdtemp(prefix="berth-registry-")
        self.ca = os.path.join(self.dir, "ca")
        self.proc = None
        args = []
        if tls or token_realm:
            subprocess.run([os.path.join(FIXTURES, "make-ca.sh"), self.ca], check=True)
        if tls:
            args += ["--tls", os.path.join(self.ca, "server.crt"),
                     os.path.join(self.ca, "server.key")]
        if htpasswd:
            f = os.path.join(self.dir, "htpasswd")
            subprocess.run(["htpasswd", "-Bbc", f, htpasswd[0], htpasswd[1]], check=True,
                           capture_output=True)
            args += ["--htpasswd", f]
        if token_realm:
            args += ["--token", token_realm, "berth-test-issuer", "berth-test-registry",
                     os.path.join(self.ca, "ca.crt")]
        self.log = os.path.join(self.dir, "registry.log")
        for _ in range(3):
            self.port = free_port()
            with open(self.log, "w") as out:
                self.proc = subprocess.Popen(
                    [os.path.join(FIXTURES, "run-registry.sh"), self.dir, str(self.port)] + args,
                    stdout=out, stderr=subprocess.STDOUT)
            for _ in range(100):
                if port_open(self.port) or self.proc.poll() is not None:
                    break
                time.sleep(0.05)
            if port_open(self.port):
                break
            self.proc.kill()
            self.proc.wait()
        else:
            raise RuntimeError("docker-registry did not start: " + open(self.log).read())
        self.host = "127.0.0.1:%d" % self.port

    def stop(self):
        if self.proc:
            self.proc.kill()
            self.proc.wait()
            self.proc = None
        shutil.rmtree(self.dir, ignore_errors=True)

    def requests(self, needle):
        """How many access-log lines contain `needle` ('"GET /v2/bb/blobs/')."""
        with open(self.log) as f:
            return sum(1 for line in f if needle in line)

    def blob_path(self, digest):
        hexd = digest.split(":", 1)[1]
        return os.path.join(self.dir, "storage/docker/registry/v2/blobs/sha256", hexd[:2], hexd,
                            "data")

    def skopeo_push(self, image, name, extra=()):
        """Copies a fixed OCI layout from /work/shared/images into the registry; -> digest."""
        digestfile = os.path.join(self.dir, "skopeo.digest")
        subprocess.run(["skopeo", "copy", "-q", "--dest-tls-verify=false", "--digestfile",
                        digestfile] + list(extra) +
                       ["oci:%s/%s:latest" % (IMAGES, image),
                        "docker://%s/%s" % (self.host, name)], check=True, capture_output=True)
        with open(digestfile) as f:
            return f.read().strip()


class FakeRegistry:
    """tests/fixtures/registry/fake_registry.py in one of its modes."""

    def __init__(self, mode):
        self.dir = tempfile.mkdtemp(prefix="berth-fake-registry-")
        self.log = os.path.join(self.dir, "requests.log")
        for _ in range(3):
            self.port = free_port()
            self.proc = subprocess.Popen(["/usr/bin/python3", os.path.join(FIXTURES,
                                                                           "fake_registry.py"),
                                          mode, str(self.port), self.log],
                                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            for _ in range(100):
                if port_open(self.port) or self.proc.poll() is not None:
                    break
                time.sleep(0.05)
            if port_open(self.port):
                break
            self.proc.kill()
            self.proc.wait()
        else:
            raise RuntimeError("fake registry did not start")
        self.host = "127.0.0.1:%d" % self.port

    def stop(self):
        self.proc.kill()
        self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)
