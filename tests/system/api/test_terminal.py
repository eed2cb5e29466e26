"""Terminals through the service: `docker run -it` and `docker exec -it` on a pseudo-terminal
that the test owns (the window size the user has shows inside, and a window change reaches the
running shell), docker-py's exec_resize on a hijacked exec socket, and ConsoleSize (API 1.42): a
process that reads its terminal's size at once sees the client's, never 0 0 before a resize."""
import fcntl
import json
import os
import select
import signal
import struct
import subprocess
import termios
import time
import unittest

import docker

from api_fixture import DOCKER, IMAGE, ApiTestCase
from berth_test import BERTH


def set_size(fd, rows, cols):
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


def read_until(read, needle, timeout=20):
    """Reads with `read(timeout)` (bytes; b"" at the end; None when nothing came in time) until
    `needle` shows; returns all read."""
    data = b""
    deadline = time.time() + timeout
    while needle not in data:
        left = deadline - time.time()
        if left <= 0:
            raise AssertionError(f"{needle!r} did not show in {timeout}s; got {data!r}")
        chunk = read(left)
        if chunk == b"":
            raise AssertionError(f"the stream ended before {needle!r}; got {data!r}")
        data += chunk or b""
    return data


class ExecTerminalTest(ApiTestCase):
    def setUp(self):
        self.client = docker.DockerClient(base_url=self.url, version="1.41", timeout=60)
        self.ctr = self.client.containers.run(IMAGE, ["sleep", "300"], detach=True)

    def tearDown(self):
        try:
            self.client.api.remove_container(self.ctr.id, force=True)
        except docker.errors.NotFound:
            pass
        self.client.close()

    def docker_on_pty(self, rows, cols, *args):
        """The docker CLI on a new pseudo-terminal of the given size (its controlling terminal,
        so window changes signal it), ended at the test's end; returns the process, the master
        and a reader."""
        master, slave = os.openpty()
        set_size(slave, rows, cols)

        def controlling_tty():
            fcntl.ioctl(0, termios.TIOCSCTTY, 0)

        proc = subprocess.Popen([DOCKER] + list(args), stdin=slave, stdout=slave, stderr=slave,
                                env=self.docker_env, start_new_session=True,
                                preexec_fn=controlling_tty)
        os.close(slave)

        def end():
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                proc.wait()
            os.close(master)

        self.addCleanup(end)

        def read(timeout):
            r, _, _ = select.select([master], [], [], timeout)
            if not r:
                return None
            try:
                return os.read(master, 65536)
            except OSError:
                return b""

        return proc, master, read

    def test_docker_cli_run_it_on_a_terminal(self):
        proc, master, read = self.docker_on_pty(29, 97, "run", "-it", "--rm", IMAGE, "sh")
        read_until(read, b"# ")
        os.write(master, b"stty size; echo $((6*7))\r")
        out = read_until(read, b"42")
        self.assertIn(b"29 97", out)
        os.write(master, b"exit 3\r")
        self.assertEqual(proc.wait(timeout=30), 3)

    def test_docker_cli_exec_it_takes_the_window_size_and_its_changes(self):
        proc, master, read = self.docker_on_pty(37, 121, "exec", "-it", self.ctr.id, "sh")
        read_until(read, b"# ")
        os.write(master, b"stty size\r")
        read_until(read, b"37 121")
        # The user's window changes: the kernel signals the docker CLI (SIGWINCH), which
        # resizes the exec through the service; the shell inside sees the new size.
        set_size(master, 24, 80)
        deadline = time.time() + 20
        seen = b""
        while b"24 80" not in seen and time.time() < deadline:
            os.write(master, b"stty size\r")
            seen += read_until(read, b"# ", timeout=10)
        self.assertIn(b"24 80", seen)
        os.write(master, b"exit 7\r")
        self.assertEqual(proc.wait(timeout=30), 7)

    def run_to_end(self, rows, cols, *args):
        """The docker CLI on a pty of rows x cols until it exits; its exit code and output."""
        proc, _, read = self.docker_on_pty(rows, cols, *args)
        out = b""
        deadline = time.time() + 60
        while time.time() < deadline:
            chunk = read(1)
            if chunk == b"":
                break
            out += chunk or b""
            if chunk is None and proc.poll() is not None:
                break
        return proc.wait(timeout=30), out.decode(errors="replace")

    def test_docker_cli_run_t_starts_with_the_terminal_size(self):
        # The process reads the size as its first act: with ConsoleSize the terminal has it
        # before the start; before, the resize after the start raced with it (0 0).
        for i in range(6):
            code, out = self.run_to_end(37, 111, "run", "-t", "--rm", IMAGE, "stty", "size")
            self.assertEqual(code, 0, out)
            self.assertEqual(out.strip(), "37 111", f"try {i}")

    def test_docker_cli_exec_t_starts_with_the_terminal_size(self):
        for i in range(8):
            code, out = self.run_to_end(37, 111, "exec", "-t", self.ctr.id, "stty", "size")
            self.assertEqual(code, 0, out)
            self.assertEqual(out.strip(), "37 111", f"try {i}")

    def berth_on_pty(self, rows, cols, *args):
        """berth with stdio on a new pseudo-terminal of the given size; -> (exit code, output)."""
        master, slave = os.openpty()
        set_size(slave, rows, cols)
        p = subprocess.run([BERTH] + self.store_args + list(args), stdin=slave, stdout=slave,
                           stderr=slave, env=self.env, timeout=60)
        os.close(slave)
        out = b""
        while select.select([master], [], [], 0.2)[0]:
            try:
                chunk = os.read(master, 65536)
            except OSError:
                break
            if not chunk:
                break
            out += chunk
        os.close(master)
        return p.returncode, out.decode()

    def test_berth_exec_t_starts_with_the_terminal_size(self):
        # The CLI the service runs for an exec: the size of its own terminal, or --console-size
        # (how the service passes ConsoleSize), is the pty's before the process runs.
        for i in range(5):
            code, out = self.berth_on_pty(37, 111, "exec", "-t", self.ctr.id, "stty", "size")
            self.assertEqual(code, 0, out)
            self.assertEqual(out.strip(), "37 111", f"try {i}")
        base = [BERTH] + self.store_args + ["exec", "-t"]
        p = subprocess.run(base + ["--console-size", "12x34", self.ctr.id, "stty", "size"],
                           capture_output=True, text=True, env=self.env, timeout=60)
        self.assertEqual((p.returncode, p.stdout.strip()), (0, "12 34"), p.stderr)
        p = subprocess.run(base + ["--console-size", "12", self.ctr.id, "true"],
                           capture_output=True, text=True, env=self.env, timeout=60)
        self.assertEqual(p.returncode, 125)
        self.assertIn("--console-size", p.stderr)

    def test_berth_run_t_starts_with_the_terminal_size(self):
        # The CLI's terminal size goes into the spec at create: no resize after the start to race.
        for i in range(5):
            code, out = self.berth_on_pty(37, 111, "run", "-t", "--rm", IMAGE, "stty", "size")
            self.assertEqual(code, 0, out)
            self.assertEqual(out.strip(), "37 111", f"try {i}")

    def test_docker_py_exec_resize(self):
        api = self.client.api
        ex = api.exec_create(self.ctr.id, ["sh"], stdin=True, tty=True)
        sock = api.exec_start(ex["Id"], tty=True, socket=True)
        raw = sock._sock
        try:
            api.exec_resize(ex["Id"], height=33, width=111)

            def read(timeout):
                raw.settimeout(timeout)
                try:
                    return raw.recv(65536)
                except TimeoutError:
                    return None

            raw.sendall(b"stty size\n")
            read_until(read, b"33 111")
            api.exec_resize(ex["Id"], height=50, width=132)
            raw.sendall(b"stty size\n")
            read_until(read, b"50 132")
            raw.sendall(b"exit\n")
            deadline = time.time() + 20
            while api.exec_inspect(ex["Id"])["Running"] and time.time() < deadline:
                time.sleep(0.05)
            info = api.exec_inspect(ex["Id"])
            self.assertFalse(info["Running"])
            self.assertEqual(info["ExitCode"], 0)
            # The session has ended: a resize still answers (nothing to size).
            api.exec_resize(ex["Id"], height=10, width=10)
        finally:
            raw.close()
        with self.assertRaises(docker.errors.APIError) as e:
            api.exec_resize(ex["Id"], height=0, width=10)
        self.assertEqual(e.exception.status_code, 400)
        with self.assertRaises(docker.errors.NotFound):
            api.exec_resize("no-such-exec", height=10, width=10)


class ConsoleSizeTest(ApiTestCase):
    """ConsoleSize over raw HTTP at API 1.43, and ignored at 1.41 as Docker does."""

    def post(self, path, body=None):
        status, data = self.request_json("POST", path, json.dumps(body) if body is not None
                                         else None)
        return status, data

    def create_tty(self, version, cmd, size):
        status, data = self.post(f"/v{version}/containers/create",
                                 {"Image": IMAGE, "Cmd": cmd, "Tty": True,
                                  "HostConfig": {"ConsoleSize": size}})
        self.assertEqual(status, 201, data)
        self.addCleanup(self.request, "DELETE", f"/containers/{data['Id']}?force=1")
        return data["Id"]

    def run_logs(self, version, size):
        cid = self.create_tty(version, ["stty", "size"], size)
        status, _, body = self.request("POST", f"/v{version}/containers/{cid}/start")
        self.assertEqual(status, 204, body)
        status, _, body = self.request("POST", f"/v{version}/containers/{cid}/wait", timeout=60)
        self.assertEqual(json.loads(body)["StatusCode"], 0, body)
        status, _, body = self.request(
            "GET", f"/v{version}/containers/{cid}/logs?stdout=1&stderr=1")
        self.assertEqual(status, 200)
        return body.decode().strip()

    def test_create_console_size_is_the_terminal_size_at_start(self):
        for i in range(4):
            self.assertEqual(self.run_logs("1.43", [41, 133]), "41 133", f"try {i}")

    def test_create_console_size_holds_at_every_start(self):
        # Kept with the container, as Docker does: a second start (no client to resize) has it.
        cid = self.create_tty("1.43", ["stty", "size"], [41, 133])
        for i in range(2):
            status, _, body = self.request("POST", f"/v1.43/containers/{cid}/start")
            self.assertEqual(status, 204, body)
            status, _, body = self.request("POST", f"/v1.43/containers/{cid}/wait", timeout=60)
            self.assertEqual(json.loads(body)["StatusCode"], 0, body)
        status, _, body = self.request("GET", f"/v1.43/containers/{cid}/logs?stdout=1")
        self.assertEqual(body.decode().split(), ["41", "133", "41", "133"], body)
        # The docker CLI resizes after every start, also when the process has already ended:
        # no error for it to print under the output.
        status, _, body = self.request("POST", f"/v1.43/containers/{cid}/resize?h=10&w=20")
        self.assertEqual(status, 200, body)

    def test_create_console_size_is_ignored_before_1_42(self):
        # busybox's stty says "standard input" for a terminal of no size.
        self.assertNotIn("41 133", self.run_logs("1.41", [41, 133]))

    def test_create_console_size_must_be_two_numbers(self):
        status, data = self.post("/v1.43/containers/create",
                                 {"Image": IMAGE, "Tty": True,
                                  "HostConfig": {"ConsoleSize": [10]}})
        self.assertEqual(status, 400, data)
        self.assertIn("ConsoleSize", data["message"])

    def exec_output(self, version, cid, create_size, start_size):
        body = {"Cmd": ["stty", "size"], "Tty": True, "AttachStdout": True}
        if create_size is not None:
            body["ConsoleSize"] = create_size
        status, data = self.post(f"/v{version}/containers/{cid}/exec", body)
        self.assertEqual(status, 201, data)
        start = {"Detach": False, "Tty": True}
        if start_size is not None:
            start["ConsoleSize"] = start_size
        status, _, out = self.request("POST", f"/v{version}/exec/{data['Id']}/start",
                                      body=json.dumps(start),
                                      headers={"Content-Type": "application/json"}, timeout=60)
        self.assertEqual(status, 200, out)
        return out.decode(errors="replace").strip()

    def test_exec_console_size_of_create_and_of_start(self):
        status, data = self.post("/v1.43/containers/create",
                                 {"Image": IMAGE, "Cmd": ["sleep", "300"]})
        self.assertEqual(status, 201, data)
        cid = data["Id"]
        self.addCleanup(self.request, "DELETE", f"/containers/{cid}?force=1")
        status, _, body = self.request("POST", f"/containers/{cid}/start")
        self.assertEqual(status, 204, body)
        for i in range(4):
            self.assertEqual(self.exec_output("1.43", cid, [19, 77], None), "19 77", f"try {i}")
        # The start's size wins over the create's, as Docker's.
        self.assertEqual(self.exec_output("1.43", cid, [19, 77], [23, 91]), "23 91")
        # Before 1.42 there is no ConsoleSize: the terminal starts unsized.
        out = self.exec_output("1.41", cid, [19, 77], [23, 91])
        self.assertNotIn("19 77", out)
        self.assertNotIn("23 91", out)


if __name__ == "__main__":
    unittest.main()
