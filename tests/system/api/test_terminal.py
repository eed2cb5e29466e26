"""Terminals through the service: `docker run -it` and `docker exec -it` on a pseudo-terminal
that the test owns (the window size the user has shows inside, and a window change reaches the
running shell) and docker-py's exec_resize on a hijacked exec socket."""
import fcntl
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


if __name__ == "__main__":
    unittest.main()
