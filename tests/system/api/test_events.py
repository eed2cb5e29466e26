"""GET /events over the event log: the fixture's `berth import` shows up in Docker's shape, a
health check's change of status as Docker's "health_status: <status>", image commands through
the API log their events with Docker's action names; a malformed filter is a 400."""
import json
import subprocess
import time
import unittest
import urllib.parse

from api_fixture import IMAGE, ApiTestCase
from berth_test import BERTH


class EventsTest(ApiTestCase):
    def test_import_event_in_docker_shape(self):
        until = int(time.time()) + 5
        status, _, data = self.request("GET", f"/v1.41/events?since=0&until={until}", timeout=30)
        self.assertEqual(status, 200)
        events = [json.loads(line) for line in data.decode().splitlines() if line.strip()]
        imports = [e for e in events if e["Type"] == "image" and e["Action"] == "import"]
        self.assertEqual(len(imports), 1, events)
        self.assertEqual(imports[0]["Actor"]["Attributes"]["name"], "localhost/bb:latest")
        self.assertGreater(imports[0]["timeNano"], 0)

    def test_health_status_action_names_the_status(self):
        # Docker's health event: Action "health_status: <status>", on a change of status.
        body = {"Image": IMAGE, "Cmd": ["sleep", "300"],
                "Healthcheck": {"Test": ["CMD-SHELL", "test -e /tmp/ok"], "Retries": 1},
                "HostConfig": {"NetworkMode": "none"}}
        status, data = self.request_json("POST", "/v1.41/containers/create?name=ev-health",
                                         json.dumps(body))
        self.assertEqual(status, 201, data)
        cid = data["Id"]
        self.addCleanup(self.request, "DELETE", f"/containers/{cid}?force=1")
        status, _, _ = self.request("POST", f"/containers/{cid}/start")
        self.assertEqual(status, 204)
        run = [BERTH] + self.store_args
        subprocess.run(run + ["healthcheck", "run", cid], capture_output=True, env=self.env)
        subprocess.run(run + ["exec", cid, "touch", "/tmp/ok"], check=True, env=self.env)
        subprocess.run(run + ["healthcheck", "run", cid], check=True, capture_output=True,
                       env=self.env)
        until = int(time.time()) + 2
        flt = urllib.parse.quote(json.dumps({"container": [cid]}))
        status, _, data = self.request(
            "GET", f"/v1.41/events?since=0&until={until}&filters={flt}", timeout=30)
        self.assertEqual(status, 200)
        actions = [json.loads(line)["Action"] for line in data.decode().splitlines()
                   if line.strip()]
        health = [a for a in actions if a.startswith("health_status")]
        self.assertEqual(health, ["health_status: unhealthy", "health_status: healthy"],
                         actions)

    def test_image_events_of_api_commands_with_dockers_actions(self):
        since = int(time.time()) - 1
        self.docker("tag", IMAGE, "localhost/ev-tag:1")
        archive = self.docker("save", "localhost/ev-tag:1", text=False).stdout
        self.docker("rmi", "localhost/ev-tag:1")
        self.docker("load", input=archive, text=False)
        self.docker("rmi", "localhost/ev-tag:1")
        self.docker("run", "--name", "ev-die", "--network", "none", IMAGE, "true")
        self.addCleanup(self.docker, "rm", "-f", "ev-die", check=False)
        until = int(time.time()) + 1
        status, _, data = self.request(
            "GET", f"/v1.41/events?since={since}&until={until}", timeout=30)
        self.assertEqual(status, 200)
        events = [json.loads(line) for line in data.decode().splitlines() if line.strip()]
        images = [(e["Action"], e["Actor"]["Attributes"].get("name")) for e in events
                  if e["Type"] == "image"]
        for want in [("tag", "localhost/ev-tag:1"), ("save", "localhost/ev-tag:1"),
                     ("untag", "localhost/ev-tag:1"), ("load", "localhost/ev-tag:1")]:
            self.assertIn(want, images)
        actions = [e["Action"] for e in events if e["Type"] == "container"]
        self.assertIn("die", actions)  # Podman's "died"
        self.assertNotIn("died", actions)

    def test_bad_filters_is_400(self):
        status, _, data = self.request("GET", "/v1.41/events?filters=%7Bbad")
        self.assertEqual(status, 400)
        self.assertIn("invalid filters", json.loads(data)["message"])


if __name__ == "__main__":
    unittest.main()
