"""Where the service listens: the unix socket's mode, loopback-only tcp, systemd socket
activation (LISTEN_FDS/LISTEN_PID with the socket on fd 3)."""
import http.client
import json
import os
import socket
import stat
import subprocess
import time
import unittest

from api_fixture import ApiTestCase, recv_all
from berth_test import BERTH


class ListenTest(ApiTestCase):
    def test_socket_mode_is_0660(self):
        st = os.stat(self.sock)
        self.assertTrue(stat.S_ISSOCK(st.st_mode))
        self.assertEqual(stat.S_IMODE(st.st_mode), 0o660)
        self.assertEqual(st.st_uid, os.geteuid())

    def test_second_service_on_same_socket_is_refused(self):
        p = subprocess.run([BERTH] + self.store_args + ["system", "service", "-t", "1", self.url],
                           capture_output=True, text=True, env=self.env, timeout=30)
        self.assertEqual(p.returncode, 125)
        self.assertIn("already listens", p.stderr)

    def test_tcp_refuses_non_loopback(self):
        p = subprocess.run([BERTH] + self.store_args +
                           ["system", "service", "-t", "1", "tcp://0.0.0.0:23750"],
                           capture_output=True, text=True, env=self.env, timeout=30)
        self.assertEqual(p.returncode, 125)
        self.assertIn("loopback", p.stderr)

    def test_tcp_loopback(self):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()
        proc = subprocess.Popen([BERTH] + self.store_args +
                                ["system", "service", "-t", "0", f"tcp://127.0.0.1:{port}"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=self.env)
        try:
            for _ in range(200):
                try:
                    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
                    c.request("GET", "/v1.41/version")
                    r = c.getresponse()
                    self.assertEqual(json.loads(r.read())["ApiVersion"], "1.45")
                    break
                except ConnectionRefusedError:
                    time.sleep(0.05)
            else:
                self.fail("no answer on tcp")
        finally:
            proc.terminate()
            _, err = proc.communicate(timeout=10)
        self.assertIn(b"without authentication", err)

    def test_systemd_socket_activation(self):
        path = os.path.join(self.tmp, "activated.sock")
        ls = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        ls.bind(path)
        ls.listen(16)
        fd = ls.fileno()

        # systemd's contract: the socket on fd 3, LISTEN_PID naming the service itself (the shell
        # execs it, so its $$ is the service's pid).
        proc = subprocess.Popen(
            ["/bin/sh", "-c", f'exec 3<&{fd}; LISTEN_PID=$$ LISTEN_FDS=1 exec "$@"', "sh",
             BERTH] + self.store_args + ["system", "service", "-t", "0"],
            pass_fds=(fd,), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=self.env)
        ls.close()
        try:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.settimeout(20)
            s.connect(path)
            s.sendall(b"GET /_ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            data = recv_all(s)
            self.assertTrue(data.startswith(b"HTTP/1.1 200"), data[:80])
            self.assertTrue(data.endswith(b"OK"))
        finally:
            proc.terminate()
            proc.wait(timeout=10)


if __name__ == "__main__":
    unittest.main()
