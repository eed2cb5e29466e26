"""docker-py (Debian's python3-docker) against berth's API service: ping, version, info, images
list/get/inspect, save and load round trip, tag and remove."""
import io
import tarfile
import unittest

import docker

from api_fixture import IMAGE, ApiTestCase


class DockerPyTest(ApiTestCase):
    def setUp(self):
        self.client = docker.DockerClient(base_url=self.url, version="1.41", timeout=60)

    def tearDown(self):
        self.client.close()

    def test_ping(self):
        self.assertTrue(self.client.ping())

    def test_version(self):
        v = self.client.version()
        self.assertEqual(v["ApiVersion"], "1.45")
        self.assertEqual(v["MinAPIVersion"], "1.24")
        self.assertEqual(v["Os"], "linux")
        for key in ["Version", "GitCommit", "GoVersion", "Arch", "KernelVersion", "BuildTime",
                    "Platform", "Components"]:
            self.assertIn(key, v)
        self.assertEqual(v["Components"][0]["Name"], "Engine")

    def test_info(self):
        i = self.client.info()
        self.assertEqual(i["Driver"], "vfs")
        self.assertEqual(i["DockerRootDir"], self.root)
        self.assertGreaterEqual(i["Images"], 1)
        self.assertEqual(i["OSType"], "linux")
        for key in ["ID", "Containers", "ContainersRunning", "ContainersPaused",
                    "ContainersStopped", "DriverStatus", "Plugins", "MemoryLimit", "SwapLimit",
                    "CgroupDriver", "CgroupVersion", "KernelVersion", "OperatingSystem",
                    "Architecture", "NCPU", "MemTotal", "Name", "ServerVersion", "Runtimes",
                    "DefaultRuntime", "SecurityOptions"]:
            self.assertIn(key, i)
        self.assertGreater(i["NCPU"], 0)

    def test_images_list_and_get(self):
        images = self.client.images.list()
        tags = [t for img in images for t in img.tags]
        self.assertIn(IMAGE, tags)
        img = self.client.images.get("bb")
        self.assertTrue(img.id.startswith("sha256:"))
        self.assertIn(IMAGE, img.tags)
        self.assertEqual(img.attrs["Config"]["Cmd"], ["/bin/sh"])
        self.assertEqual(img.attrs["Os"], "linux")
        hist = img.history()
        self.assertGreaterEqual(len(hist), 1)

    def test_missing_image_is_404(self):
        with self.assertRaises(docker.errors.ImageNotFound):
            self.client.images.get("no-such-image:latest")

    def test_save_load_round_trip_tag_and_remove(self):
        img = self.client.images.get(IMAGE)
        self.assertTrue(img.tag("localhost/saved", "v1"))
        data = b"".join(self.client.api.get_image("localhost/saved:v1"))
        with tarfile.open(fileobj=io.BytesIO(data)) as t:
            names = t.getnames()
        self.assertIn("manifest.json", names)
        removed = self.client.api.remove_image("localhost/saved:v1")
        self.assertIn({"Untagged": "localhost/saved:v1"}, removed)
        with self.assertRaises(docker.errors.ImageNotFound):
            self.client.images.get("localhost/saved:v1")
        loaded = self.client.images.load(data)
        self.assertEqual(len(loaded), 1)
        self.assertIn("localhost/saved:v1", loaded[0].tags)
        self.assertEqual(loaded[0].id, img.id)
        self.client.images.remove("localhost/saved:v1")


if __name__ == "__main__":
    unittest.main()
