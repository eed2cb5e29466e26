"""`berth system reset` removes containers (stopping their monitors) before the store."""
import subprocess
import unittest

from container_fixture import ContainerTestCase, IMAGE


class ResetTest(ContainerTestCase):
    def monitors(self):
        ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
        return [l for l in ps.splitlines() if "berth-monitor" in l and self.runroot in l]

    def test_reset_removes_running_and_created_containers(self):
        self.ok("run", "-d", "--name", "running", IMAGE, "sleep", "1000")
        self.ok("create", "--name", "created", IMAGE, "true")
        self.assertTrue(self.monitors())
        self.ok("system", "reset", "-f")
        self.assertEqual(self.monitors(), [])
        self.assertEqual(self.ok("ps", "-aq").out, "")
        self.assertEqual(self.ok("images", "-q").out, "")


if __name__ == "__main__":
    unittest.main()
