"""`berth system reset` removes containers (stopping their monitors) and volumes before the
store; `system df` counts all three."""
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
        self.ok("volume", "create", "v1")
        df = self.ok("system", "df").out
        self.assertRegex(df, r"(?m)^TYPE\s+TOTAL\s+ACTIVE\s+SIZE\s+RECLAIMABLE$")
        self.assertEqual(self.ok("system", "df", "--format", "{{.Type}}={{.Total}}/{{.Active}}")
                         .out.splitlines(), ["Images=1/1", "Containers=2/1", "Local Volumes=1/0"])
        self.ok("system", "reset", "-f")
        self.assertEqual(self.monitors(), [])
        self.assertEqual(self.ok("ps", "-aq").out, "")
        self.assertEqual(self.ok("images", "-q").out, "")
        self.assertEqual(self.ok("volume", "ls", "-q").out, "")


if __name__ == "__main__":
    unittest.main()
