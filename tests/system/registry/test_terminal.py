"""pull on a terminal: Podman-style progress bars and the short-name prompt (enforcing mode)."""
import os
import select
import subprocess
import time
import unittest

from test_registry import RegistryCase


def run_in_pty(cmd, env, answers=(), timeout=120):
    """Runs cmd with a pseudo-terminal as stdin/stdout/stderr; `answers` are (prompt, reply)
    pairs typed when the prompt text appears. Returns (rc, output)."""
    master, slave = os.openpty()
    p = subprocess.Popen(cmd, stdin=slave, stdout=slave, stderr=slave, env=env,
                         close_fds=True, start_new_session=True)
    os.close(slave)
    out = b""
    pending = list(answers)
    deadline = time.time() + timeout
    try:
        while time.time() < deadline:
            r, _, _ = select.select([master], [], [], 0.2)
            if r:
                try:
                    chunk = os.read(master, 65536)
                except OSError:  # EIO: the child closed the terminal
                    break
                if not chunk:
                    break
                out += chunk
                if pending and pending[0][0].encode() in out:
                    os.write(master, pending.pop(0)[1].encode())
            elif p.poll() is not None:
                break
        rc = p.wait(timeout=max(1, deadline - time.time()))
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        os.close(master)
    return rc, out.decode(errors="replace")


class TerminalTest(RegistryCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.reg = cls.start()
        cls.mirror = cls.start()
        cls.reg.skopeo_push("bb", "lib/bb:latest")
        cls.mirror.skopeo_push("bb", "lib/bb:latest")

    def setUp(self):
        self.berth("rmi", "-af")

    def test_progress_bars_on_a_terminal(self):
        self.write_conf(self.insecure(self.reg.host))
        rc, out = run_in_pty(self.cmd() + ["pull", self.reg.host + "/lib/bb:latest"], self.env)
        self.assertEqual(rc, 0, out)
        # A bar was drawn (sizes and the bar frame), redrawn in place with ANSI cursor moves...
        self.assertRegex(out, r"Copying blob [0-9a-f]{12} \[[=>-]+\] [0-9.]+(b|KiB|MiB) / [0-9.]+(KiB|MiB)")
        self.assertIn("\x1b[", out)
        # ...and its last state is "done".
        self.assertRegex(out, r"Copying blob [0-9a-f]{12} done")
        self.assertIn("Writing manifest to image destination", out)

    def test_no_bars_without_a_terminal(self):
        self.write_conf(self.insecure(self.reg.host))
        r = self.ok("pull", self.reg.host + "/lib/bb:latest")
        self.assertNotIn("\x1b[", r.err)
        self.assertRegex(r.err, r"Copying blob [0-9a-f]{12} done")

    def test_enforcing_short_name_prompts_on_a_terminal(self):
        self.write_conf('unqualified-search-registries = ["%s", "%s"]\n'
                        'short-name-mode = "enforcing"\n' % (self.reg.host, self.mirror.host) +
                        self.insecure(self.reg.host, self.mirror.host))
        rc, out = run_in_pty(self.cmd() + ["pull", "lib/bb"], self.env,
                             answers=[("Enter a number", "2\n")])
        self.assertEqual(rc, 0, out)
        self.assertIn("1) %s/lib/bb:latest" % self.reg.host, out)
        self.assertIn("2) %s/lib/bb:latest" % self.mirror.host, out)
        self.assertIn("Trying to pull %s/lib/bb:latest..." % self.mirror.host, out)
        names = self.json("image", "inspect", "%s/lib/bb:latest" % self.mirror.host)[0]["RepoTags"]
        self.assertIn("%s/lib/bb:latest" % self.mirror.host, names)

    def test_enforcing_prompt_refuses_a_bad_answer(self):
        self.write_conf('unqualified-search-registries = ["%s", "%s"]\n'
                        'short-name-mode = "enforcing"\n' % (self.reg.host, self.mirror.host) +
                        self.insecure(self.reg.host, self.mirror.host))
        rc, out = run_in_pty(self.cmd() + ["pull", "lib/bb"], self.env,
                             answers=[("Enter a number", "7\n")])
        self.assertEqual(rc, 125, out)
        self.assertIn("invalid selection", out)


if __name__ == "__main__":
    unittest.main()
