"""GET /containers/{id}/top as dockerd answers it: the host's `ps -ef` columns by default, the
client's ps_args otherwise, only the container's processes, through the docker CLI and raw HTTP."""
import json
import os
import time
import unittest
import urllib.parse

from api_fixture import IMAGE, ApiTestCase


class ApiTopTest(ApiTestCase):
    def setUp(self):
        self.docker("run", "-d", "--name", "top-two", "--network", "none", IMAGE,
                    "sh", "-c", "sleep 300 & sleep 301; exit 0")
        self.addCleanup(self.docker, "rm", "-f", "top-two", check=False)
        for _ in range(100):  # until both children have exec'd sleep
            status, body = self.top()
            if status == 200 and sum(r[-1].startswith("sleep") for r in body["Processes"]) == 2:
                break
            time.sleep(0.05)

    def top(self, ps_args=None):
        path = "/v1.41/containers/top-two/top"
        if ps_args is not None:
            path += "?ps_args=" + urllib.parse.quote(ps_args)
        status, _, data = self.request("GET", path)
        return status, json.loads(data)

    def test_default_is_ps_ef_with_only_the_containers_processes(self):
        status, body = self.top()
        self.assertEqual(status, 200, body)
        self.assertEqual(body["Titles"], ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME",
                                          "CMD"])
        cmds = [row[-1] for row in body["Processes"]]
        self.assertIn("sleep 300", cmds)
        self.assertIn("sleep 301", cmds)
        self.assertIn("sh -c sleep 300 & sleep 301; exit 0", cmds)
        pids = [int(row[1]) for row in body["Processes"]]
        self.assertNotIn(os.getpid(), pids)
        self.assertEqual(len(body["Processes"]), 3, body)  # sh and the two sleeps

    def test_ps_args(self):
        status, body = self.top("aux")
        self.assertEqual(status, 200, body)
        self.assertEqual(body["Titles"][0], "USER")
        self.assertEqual(body["Titles"][-1], "COMMAND")
        self.assertEqual(len(body["Processes"]), 3, body)
        status, body = self.top("-o pid,args")
        self.assertEqual(status, 200, body)
        self.assertEqual(body["Titles"], ["PID", "COMMAND"])
        status, body = self.top("-o comm=PID")
        self.assertEqual(status, 400, body)
        self.assertIn("PID", body["message"])

    def test_docker_cli_top(self):
        out = self.docker("top", "top-two").stdout.splitlines()
        self.assertEqual(out[0].split(), ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME",
                                          "CMD"])
        self.assertEqual(len(out), 4, out)
        out = self.docker("top", "top-two", "-o", "pid,comm").stdout.splitlines()
        self.assertEqual(out[0].split(), ["PID", "COMMAND"])
        self.assertEqual(sorted(line.split()[1] for line in out[1:]), ["sh", "sleep", "sleep"])

    def test_stopped_container_is_a_conflict(self):
        self.docker("stop", "-t", "0", "top-two")
        status, body = self.top()
        self.assertEqual(status, 409, body)


if __name__ == "__main__":
    unittest.main()
