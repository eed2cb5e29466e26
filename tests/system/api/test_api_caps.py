"""The capabilities of containers made through the Docker API: Docker's default set (Podman's plus
AUDIT_WRITE, MKNOD, NET_RAW) while containers.conf default_capabilities is the stock list, the
admin's list when they configured one; kept across stop/start, shown by `berth inspect`. The
CLI's containers keep Podman's set. Read from /proc/<pid>/status inside busybox containers."""
import json
import unittest

import docker

from api_fixture import IMAGE, ApiTestCase
from berth_test import PODMAN_CAPS, BerthTestCase, cap_names

DOCKER_CAPS = PODMAN_CAPS + ["AUDIT_WRITE", "MKNOD", "NET_RAW"]
ADMIN_CAPS = ["CHOWN", "KILL", "SETGID", "SETUID"]


def status_cap_names(status_text, field):
    for line in status_text.splitlines():
        if line.startswith(field + ":"):
            return cap_names(int(line.split(":", 1)[1].strip(), 16))
    raise AssertionError(f"no {field} in {status_text!r}")


class CapsMixin:
    def assert_status_caps(self, text, want):
        self.assertEqual(status_cap_names(text, "CapBnd"), sorted(want))
        self.assertEqual(status_cap_names(text, "CapEff"), sorted(want))

    def check_docker_cli_and_restart(self, want):
        out = self.docker("run", "--rm", IMAGE, "cat", "/proc/self/status").stdout
        self.assert_status_caps(out, want)
        out = self.docker("run", "--rm", "--cap-add", "NET_ADMIN", "--cap-drop", "CHOWN", IMAGE,
                          "cat", "/proc/self/status").stdout
        self.assert_status_caps(out, sorted(set(want) - {"CHOWN"} | {"NET_ADMIN"}))
        self.docker("run", "-d", "--name", "capd", IMAGE, "sleep", "300")
        self.addCleanup(self.docker, "rm", "-f", "capd", check=False)
        for _ in range(2):
            out = self.docker("exec", "capd", "cat", "/proc/1/status").stdout
            self.assert_status_caps(out, want)
            i = self.json("inspect", "capd")[0]
            self.assertEqual(sorted(i["EffectiveCaps"]), ["CAP_" + c for c in sorted(want)])
            self.assertEqual(sorted(i["BoundingCaps"]), ["CAP_" + c for c in sorted(want)])
            self.docker("stop", "-t", "0", "capd")
            self.docker("start", "capd")

    def check_docker_py(self, want):
        client = docker.DockerClient(base_url=self.url, version="1.41", timeout=60)
        try:
            out = client.containers.run(IMAGE, ["cat", "/proc/self/status"], remove=True)
            self.assert_status_caps(out.decode(), want)
        finally:
            client.close()

    def check_cli(self, want):
        out = self.ok("run", "--rm", IMAGE, "cat", "/proc/self/status").out
        self.assert_status_caps(out, want)


class DockerDefaultCapsTest(ApiTestCase, CapsMixin):
    def test_docker_cli_gets_dockers_set_across_restart(self):
        self.check_docker_cli_and_restart(DOCKER_CAPS)

    def test_docker_py_gets_dockers_set(self):
        self.check_docker_py(DOCKER_CAPS)

    def test_raw_create_gets_dockers_set(self):
        status, body = self.request_json("POST", "/v1.41/containers/create?name=rawcap", json.dumps(
            {"Image": IMAGE, "Cmd": ["sleep", "300"], "HostConfig": {"CapDrop": ["MKNOD"]}}))
        self.assertEqual(status, 201, body)
        self.addCleanup(self.request, "DELETE", "/v1.41/containers/rawcap?force=1")
        i = self.json("inspect", "rawcap")[0]
        self.assertEqual(sorted(i["BoundingCaps"]),
                         ["CAP_" + c for c in sorted(set(DOCKER_CAPS) - {"MKNOD"})])

    def test_berth_cli_keeps_podmans_set(self):
        self.check_cli(PODMAN_CAPS)


class AdminConf(BerthTestCase):
    """Adds an admin's default_capabilities to the class's containers.conf before the service
    starts."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        with open(cls.env["CONTAINERS_CONF"], "a") as f:
            f.write("[containers]\ndefault_capabilities = [%s]\n" %
                    ", ".join('"%s"' % c.lower() for c in ADMIN_CAPS))


class AdminCapsTest(ApiTestCase, AdminConf, CapsMixin):
    def test_docker_cli_gets_the_admins_list(self):
        self.check_docker_cli_and_restart(ADMIN_CAPS)

    def test_docker_py_gets_the_admins_list(self):
        self.check_docker_py(ADMIN_CAPS)

    def test_berth_cli_gets_the_admins_list(self):
        self.check_cli(ADMIN_CAPS)


if __name__ == "__main__":
    unittest.main()
