"""Registries through the API with real clients: `docker push`/`docker pull` against Debian's
docker-registry on 127.0.0.1, docker-py's images.pull/push/get_registry_data (GET
/distribution/{name}/json), and `docker login` (POST /auth) with the credentials the docker CLI
then sends in X-Registry-Auth, against a registry with htpasswd auth."""
import json
import os
import subprocess
import unittest

import docker

from api_fixture import IMAGE, ApiTestCase
from registry.registry_fixture import Registry


class ApiRegistryTest(ApiTestCase):
    @classmethod
    def before_service(cls):
        cls.reg = Registry()
        cls.auth = Registry(htpasswd=("api-user", "api-secret"))
        conf = os.path.join(cls.tmp, "registries.conf")
        with open(conf, "w") as f:
            for r in (cls.reg, cls.auth):
                f.write('[[registry]]\nlocation = "%s"\ninsecure = true\n' % r.host)
        cls.env["CONTAINERS_REGISTRIES_CONF"] = conf

    @classmethod
    def tearDownClass(cls):
        super().tearDownClass()
        cls.reg.stop()
        cls.auth.stop()

    def skopeo_digest(self, ref, *creds):
        p = subprocess.run(["skopeo", "inspect", "--tls-verify=false", "--format",
                            "{{.Digest}}"] + list(creds) + ["docker://" + ref],
                           capture_output=True, text=True)
        self.assertEqual(p.returncode, 0, p.stderr)
        return p.stdout.strip()

    def test_docker_push_then_pull(self):
        ref = self.reg.host + "/api/bb:1"
        self.docker("tag", IMAGE, ref)
        out = self.docker("push", ref).stdout
        digest = self.skopeo_digest(ref)
        self.assertIn(digest, out)
        self.docker("rmi", ref)
        out = self.docker("pull", ref).stdout
        self.assertIn("Digest: " + digest, out)
        self.assertIn(ref, self.docker("images", "--format",
                                       "{{.Repository}}:{{.Tag}}").stdout.split())
        self.docker("rmi", ref)
        p = self.docker("pull", self.reg.host + "/api/none:1", check=False)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("api/none", p.stderr)

    def test_docker_py_pull_push_and_registry_data(self):
        client = docker.DockerClient(base_url=self.url, version="1.41", timeout=60)
        self.addCleanup(client.close)
        ref = self.reg.host + "/api/py"
        client.images.get(IMAGE).tag(ref, "2")
        lines = list(client.images.push(ref, "2", stream=True, decode=True))
        self.assertFalse([l for l in lines if "error" in l], lines)
        client.images.remove(ref + ":2")
        img = client.images.pull(ref, tag="2")
        self.assertIn(ref + ":2", img.tags)
        data = client.images.get_registry_data(ref + ":2")
        self.assertEqual(data.id, self.skopeo_digest(ref + ":2"))
        self.assertTrue(data.has_platform("linux/amd64"), data.attrs)
        with self.assertRaises(docker.errors.APIError):
            client.images.get_registry_data(self.reg.host + "/api/none:1")
        client.images.remove(ref + ":2")

    def test_docker_login_and_authenticated_push_pull(self):
        host = self.auth.host
        bad = self.docker("login", "-u", "api-user", "--password-stdin", host,
                          input="wrong\n", check=False)
        self.assertNotEqual(bad.returncode, 0)
        ref = host + "/api/secret:1"
        self.docker("tag", IMAGE, ref)
        self.assertNotEqual(self.docker("push", ref, check=False).returncode, 0)
        out = self.docker("login", "-u", "api-user", "--password-stdin", host,
                          input="api-secret\n").stdout
        self.assertIn("Login Succeeded", out)
        self.docker("push", ref)  # the CLI sends the stored login as X-Registry-Auth
        self.skopeo_digest(ref, "--creds", "api-user:api-secret")
        self.docker("rmi", ref)
        self.docker("pull", ref)
        self.docker("rmi", ref)
        self.docker("logout", host)
        p = self.docker("pull", ref, check=False)
        self.assertNotEqual(p.returncode, 0)


if __name__ == "__main__":
    unittest.main()
