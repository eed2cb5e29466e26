"""GET /events over the event log: the fixture's `berth import` shows up in Docker's shape; a
malformed filter is a 400."""
import json
import time
import unittest

from api_fixture import ApiTestCase


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

    def test_bad_filters_is_400(self):
        status, _, data = self.request("GET", "/v1.41/events?filters=%7Bbad")
        self.assertEqual(status, 400)
        self.assertIn("invalid filters", json.loads(data)["message"])


if __name__ == "__main__":
    unittest.main()
