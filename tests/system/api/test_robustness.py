"""Hostile and broken clients: malformed bodies, unknown endpoints, bad versions, a huge header,
a slow client; none of them stops the service or delays other clients."""
import json
import socket
import threading
import time
import unittest

from api_fixture import ApiTestCase


class RobustnessTest(ApiTestCase):
    def test_unknown_endpoint_is_404_json(self):
        status, headers, data = self.request("GET", "/v1.41/no/such/endpoint")
        self.assertEqual(status, 404)
        self.assertIn("message", json.loads(data))

    def test_malformed_json_is_400(self):
        status, body = self.request_json("POST", "/v1.41/containers/create", body="{not json")
        self.assertEqual(status, 400)
        self.assertIn("malformed JSON", body["message"])

    def test_versions(self):
        for v in ["1.24", "1.41", "1.44", "1.45"]:
            self.assertEqual(self.request("GET", f"/v{v}/_ping")[0], 200)
        status, _, data = self.request("GET", "/v1.12/version")
        self.assertEqual(status, 400)
        self.assertIn("too old", json.loads(data)["message"])
        status, headers, data = self.request("GET", "/_ping")
        self.assertEqual(data, b"OK")
        self.assertEqual(headers["Api-Version"], "1.45")
        self.assertEqual(headers["Ostype"], "linux")
        self.assertEqual(headers["Docker-Experimental"], "false")
        status, headers, data = self.request("HEAD", "/_ping")
        self.assertEqual(status, 200)
        self.assertEqual(data, b"")

    def test_huge_header_rejected_while_others_are_served(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(30)
        s.connect(self.sock)
        s.sendall(b"GET /_ping HTTP/1.1\r\nHost: x\r\nX-Big: ")
        answer = b""
        try:
            for _ in range(1024):
                s.sendall(b"a" * 1024)
            s.sendall(b"\r\n\r\n")
            answer = s.recv(4096)
        except (BrokenPipeError, ConnectionResetError):
            pass  # closed on us: also an acceptable answer
        finally:
            s.close()
        if answer:
            self.assertTrue(answer.startswith(b"HTTP/1.1 431"), answer[:100])
        self.assertEqual(self.request("GET", "/_ping")[0], 200)

    def test_slow_client_does_not_block_others(self):
        slow = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        slow.connect(self.sock)
        stop = threading.Event()

        def dribble():
            for b in b"GET /_ping HTTP/1.1\r\nHost: x\r\n":
                if stop.is_set():
                    return
                try:
                    slow.send(bytes([b]))
                except OSError:
                    return
                time.sleep(1)

        t = threading.Thread(target=dribble)
        t.start()
        try:
            time.sleep(1.5)
            # While the slow client holds its connection, others get answers.
            for _ in range(5):
                status, _, data = self.request("GET", "/v1.41/version", timeout=10)
                self.assertEqual(status, 200)
                self.assertEqual(json.loads(data)["ApiVersion"], "1.45")
        finally:
            stop.set()
            t.join()
            slow.close()

    def test_many_clients_at_once(self):
        results = []

        def one():
            try:
                results.append(self.request("GET", "/v1.41/images/json", timeout=60)[0])
            except OSError as e:
                results.append(str(e))

        threads = [threading.Thread(target=one) for _ in range(20)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(results, [200] * 20)


class IdleTimeoutTest(ApiTestCase):
    service_args = ["--time", "1"]

    def test_service_exits_when_idle(self):
        self.assertEqual(self.request("GET", "/_ping")[0], 200)
        self.service.wait(timeout=20)
        self.assertEqual(self.service.returncode, 0)


if __name__ == "__main__":
    unittest.main()
