"""Terminals: `run -t` through a pty the test owns, attach with detach keys, exec -t."""
import os
import pty
import select
import subprocess
import time
import unittest

from container_fixture import ContainerTestCase, IMAGE


class PtyProcess:
    """A berth process whose stdio is the slave of a pty made here, as in a terminal."""

    def __init__(self, argv, env):
        self.master, slave = pty.openpty()
        self.proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, env=env,
                                     start_new_session=True)
        os.close(slave)
        self.buf = b""

    def read_until(self, needle, timeout=20):
        deadline = time.monotonic() + timeout
        while needle not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"{needle!r} not seen; got {self.buf!r}")
            r, _, _ = select.select([self.master], [], [], left)
            if r:
                try:
                    data = os.read(self.master, 4096)
                except OSError:
                    data = b""
                if not data:
                    raise AssertionError(f"EOF before {needle!r}; got {self.buf!r}")
                self.buf += data
        return self.buf

    def write(self, data):
        os.write(self.master, data)

    def wait(self, timeout=30):
        try:
            return self.proc.wait(timeout)
        finally:
            os.close(self.master)


class TtyTest(ContainerTestCase):
    def cmd(self, *args):
        return [os.environ.get("BERTH_BIN", "berth"), "--root", self.root, "--runroot",
                self.runroot, "--storage-driver", self.storage_driver, *args]

    def test_run_tty_interactive(self):
        p = PtyProcess(self.cmd("run", "-it", "--rm", IMAGE, "sh"), self.env)
        p.write(b"test -t 0 && echo IS-A-TTY; echo $((6*7))\n")
        p.read_until(b"IS-A-TTY")
        p.read_until(b"42")
        p.write(b"exit 9\n")
        self.assertEqual(p.wait(), 9)

    def test_run_tty_without_stdin(self):
        r = self.berth("run", "-t", "--rm", IMAGE, "sh", "-c", "test -t 1 && echo tty-out")
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(r.out.replace("\r", ""), "tty-out\n")

    def test_attach_and_detach_keys(self):
        self.ok("run", "-dit", "--name", "att", IMAGE, "sh")
        p = PtyProcess(self.cmd("attach", "att"), self.env)
        time.sleep(0.3)
        p.write(b"echo attached-$((1+1))\n")
        p.read_until(b"attached-2")
        p.write(b"\x10\x11")  # ctrl-p ctrl-q
        self.assertEqual(p.wait(), 0)
        ps = self.ok("ps", "--format", "{{.Names}} {{.State}}").out
        self.assertIn("att running", ps)
        # Custom keys.
        p = PtyProcess(self.cmd("attach", "--detach-keys", "ctrl-a", "att"), self.env)
        time.sleep(0.3)
        p.write(b"echo again\n")
        p.read_until(b"again")
        p.write(b"\x01")
        self.assertEqual(p.wait(), 0)
        self.ok("rm", "-f", "att")

    def test_exec_tty(self):
        self.ok("run", "-d", "--name", "ext", IMAGE, "sleep", "1000")
        p = PtyProcess(self.cmd("exec", "-it", "ext", "sh"), self.env)
        p.write(b"test -t 0 && echo EXEC-TTY\n")
        p.read_until(b"EXEC-TTY")
        p.write(b"exit 4\n")
        self.assertEqual(p.wait(), 4)
        self.ok("rm", "-f", "ext")


if __name__ == "__main__":
    unittest.main()
