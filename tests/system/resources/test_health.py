"""Health checks: --health-* flags, `healthcheck run`, the status in inspect, and
--health-on-failure (Podman's behaviour)."""
import time
import unittest

from container_fixture import ContainerTestCase, IMAGE


class HealthTest(ContainerTestCase):
    def run_detached(self, name, *args):
        self.ok("run", "-d", "--name", name, *args)
        self.addCleanup(self.berth, "rm", "-f", "-t", "0", name)

    def health(self, name):
        return self.json("inspect", name)[0]["State"].get("Health")

    def test_starting_healthy_unhealthy(self):
        self.run_detached("hc", "--health-cmd", "test -e /tmp/ok", "--health-retries", "2",
                          "--health-interval", "disable", IMAGE, "sleep", "300")
        ins = self.json("inspect", "hc")[0]
        self.assertEqual(ins["Config"]["Healthcheck"]["Test"], ["CMD-SHELL", "test -e /tmp/ok"])
        self.assertEqual(ins["Config"]["Healthcheck"]["Retries"], 2)
        self.assertEqual(ins["State"]["Health"]["Status"], "starting")
        # A failed check prints "unhealthy" and exits 1, but one failure is not yet enough.
        r = self.berth("healthcheck", "run", "hc")
        self.assertEqual((r.rc, r.out), (1, "unhealthy\n"), r)
        h = self.health("hc")
        self.assertEqual((h["Status"], h["FailingStreak"]), ("starting", 1), h)
        self.ok("exec", "hc", "touch", "/tmp/ok")
        r = self.berth("healthcheck", "run", "hc")
        self.assertEqual((r.rc, r.out), (0, ""), r)
        h = self.health("hc")
        self.assertEqual((h["Status"], h["FailingStreak"]), ("healthy", 0), h)
        self.ok("exec", "hc", "rm", "/tmp/ok")
        self.assertEqual(self.berth("healthcheck", "run", "hc").rc, 1)
        self.assertEqual(self.health("hc")["Status"], "healthy")
        self.assertEqual(self.berth("healthcheck", "run", "hc").rc, 1)
        h = self.health("hc")
        self.assertEqual((h["Status"], h["FailingStreak"]), ("unhealthy", 2), h)
        self.assertEqual([e["ExitCode"] for e in h["Log"]], [1, 0, 1, 1])
        for _ in range(3):
            self.berth("healthcheck", "run", "hc")
        self.assertEqual(len(self.health("hc")["Log"]), 5)

    def test_output_is_logged_and_timeout_fails(self):
        self.run_detached("hcout", "--health-cmd", "echo checking; exit 0",
                          "--health-interval", "disable", IMAGE, "sleep", "300")
        self.assertEqual(self.berth("healthcheck", "run", "hcout").rc, 0)
        self.assertEqual(self.health("hcout")["Log"][-1]["Output"], "checking\n")
        self.run_detached("hcslow", "--health-cmd", "sleep 10", "--health-timeout", "1s",
                          "--health-interval", "disable", IMAGE, "sleep", "300")
        t0 = time.time()
        r = self.berth("healthcheck", "run", "hcslow")
        self.assertEqual(r.rc, 1, r)
        self.assertLess(time.time() - t0, 9)
        self.assertIn("timeout", self.health("hcslow")["Log"][-1]["Output"])

    def test_start_period_failures_do_not_count(self):
        self.run_detached("hcsp", "--health-cmd", "false", "--health-retries", "1",
                          "--health-start-period", "10m", "--health-interval", "disable", IMAGE,
                          "sleep", "300")
        self.assertEqual(self.berth("healthcheck", "run", "hcsp").rc, 1)
        h = self.health("hcsp")
        self.assertEqual((h["Status"], h["FailingStreak"]), ("starting", 0), h)

    def test_on_failure_kill(self):
        self.run_detached("hckill", "--health-cmd", "false", "--health-retries", "1",
                          "--health-on-failure", "kill", "--health-interval", "disable", IMAGE,
                          "sleep", "300")
        self.assertEqual(self.berth("healthcheck", "run", "hckill").rc, 1)
        r = self.ok("wait", "hckill")
        self.assertEqual(r.out.strip(), "137")

    def test_no_healthcheck_and_errors(self):
        self.run_detached("nohc", IMAGE, "sleep", "300")
        self.assertIsNone(self.health("nohc"))
        r = self.berth("healthcheck", "run", "nohc")
        self.assertEqual(r.rc, 125, r)
        self.assertIn("no defined healthcheck", r.err)
        r = self.berth("create", "--health-cmd", "none", IMAGE, "true")
        self.assertEqual(r.rc, 0, r)
        cid = r.out.strip().splitlines()[-1]
        self.addCleanup(self.berth, "rm", "-f", cid)
        self.assertNotIn("Healthcheck", self.json("inspect", cid)[0]["Config"])
        r = self.berth("healthcheck", "run", "no-such-ctr")
        self.assertEqual(r.rc, 125, r)


if __name__ == "__main__":
    unittest.main()
