"""berth-monitor on its own: the test plays the monitor's setup half (monitor_setup.cpp), handing
it a fake container (a shell child), the report pipe, the attach socket, the control fifo and the
output pipes, as the CLI's child does; then checks periodic commands, logs, the exit file and the
cleanup command."""
import json
import os
import socket
import tempfile
import time
import unittest

BERTH = os.environ.get("BERTH_BIN", "berth")
MONITOR = os.path.join(os.path.dirname(os.path.abspath(BERTH)), "berth-monitor")


class MonitorTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="berth-monitor-test-")
        self.dir = os.path.join(self.tmp, "run")
        os.makedirs(self.dir)

    def tearDown(self):
        import shutil
        shutil.rmtree(self.tmp, ignore_errors=True)

    def start(self, script, periodic=(), cleanup=None, early_client=False, exited_first=False):
        """Starts berth-monitor holding `sh -c script`; returns (monitor pid, report dict).
        With early_client, self.client is connected to the attach socket before the monitor
        runs (as `berth run` connects before it starts the container). With exited_first, the
        container has exited (a zombie) before the monitor runs."""
        cfg = {"id": "c1", "dir": self.dir, "log_driver": "k8s-file",
               "log_path": os.path.join(self.tmp, "ctr.log"), "log_max_size": -1,
               "tty": False, "stdin": False, "stdin_once": False,
               "cleanup": cleanup or [], "periodic": list(periodic)}
        cfg_path = os.path.join(self.dir, "monitor.json")
        with open(cfg_path, "w") as f:
            json.dump(cfg, f)
        rep_r, rep_w = os.pipe()
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        os.mkfifo(os.path.join(self.dir, "ctl"))
        ctl = os.open(os.path.join(self.dir, "ctl"), os.O_RDWR | os.O_NONBLOCK)
        att = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        att.bind(os.path.join(self.dir, "attach"))
        att.listen(4)
        if early_client:
            self.client = self.connect()
        dfd = os.open(self.dir, os.O_PATH | os.O_DIRECTORY)
        pid = os.fork()
        if pid == 0:
            try:
                c = os.fork()
                if c == 0:
                    os.dup2(out_w, 1)
                    os.dup2(err_w, 2)
                    os.execv("/bin/sh", ["sh", "-c", script])
                while exited_first:
                    with open("/proc/%d/stat" % c) as f:
                        if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                            break
                    time.sleep(0.001)
                fds = [rep_w, dfd, att.fileno(), ctl, out_r, err_r]
                for fd in fds:
                    os.set_inheritable(fd, True)
                os.execv(MONITOR, [MONITOR, cfg_path, str(c)] + [str(fd) for fd in fds] +
                         ["-1"])
            finally:
                os._exit(127)
        for fd in (rep_w, out_w, err_w, out_r, err_r, dfd, ctl):
            os.close(fd)
        att.close()
        with os.fdopen(rep_r) as f:
            report = json.loads(f.readline())
        return pid, report

    def connect(self):
        c = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        c.connect(os.path.join(self.dir, "attach"))
        self.addCleanup(c.close)
        return c

    def attached(self, client, timeout=20):
        """What an attached client receives: (stdout bytes, exit code or None)."""
        client.settimeout(timeout)
        out, code = b"", None
        while code is None:
            try:
                m = client.recv(8193)
            except (ConnectionResetError, socket.timeout):
                break
            if not m:
                break
            if m[0] == 2:
                out += m[1:]
            elif m[0] == 4:
                code = int(m[1:])
        return out, code

    def finish(self, pid):
        _, status = os.waitpid(pid, 0)
        self.assertEqual(os.waitstatus_to_exitcode(status), 0)

    def started(self):
        """What `berth start` tells the monitor: the container runs."""
        fd = os.open(os.path.join(self.dir, "ctl"), os.O_WRONLY | os.O_NONBLOCK)
        os.write(fd, b"3\n")
        os.close(fd)
        return time.time_ns()

    def test_periodic_commands_one_at_a_time_after_start(self):
        log = os.path.join(self.tmp, "periodic.log")
        cmd = ["/bin/sh", "-c", "echo start $(date +%%s%%N) >> %s; echo noise; sleep 0.3; "
               "echo end $(date +%%s%%N) >> %s" % (log, log)]
        pid, report = self.start("echo out; echo err >&2; sleep 2",
                                 periodic=[{"interval_ms": 100, "first_after_ms": 200,
                                            "argv": cmd}],
                                 cleanup=["/bin/sh", "-c", "touch %s/cleaned" % self.tmp])
        self.assertEqual(report["monitor_pid"], pid)
        t_start = self.started()
        self.finish(pid)
        with open(log) as f:
            events = [(l.split()[0], int(l.split()[1])) for l in f.read().splitlines()]
        starts = [t for k, t in events if k == "start"]
        self.assertGreaterEqual(len(starts), 2, events)
        self.assertGreaterEqual(starts[0], t_start + 200 * 1000000)
        # Never two at once: each start follows the previous end.
        kinds = [k for k, _ in events]
        for i, k in enumerate(kinds):
            self.assertEqual(k, "start" if i % 2 == 0 else "end", events)
        for (k1, t1), (k2, t2) in zip(events, events[1:]):
            self.assertLessEqual(t1, t2)
        with open(os.path.join(self.dir, "exit")) as f:
            self.assertEqual(f.read(), "0")
        self.assertTrue(os.path.exists(os.path.join(self.tmp, "cleaned")))
        with open(os.path.join(self.tmp, "ctr.log")) as f:
            logtext = f.read()
        self.assertRegex(logtext, r"stdout F out\n")
        self.assertRegex(logtext, r"stderr F err\n")
        self.assertNotIn("noise", logtext)  # the periodic command's stdio is /dev/null
        self.assertFalse(os.path.exists(os.path.join(self.dir, "attach")))

    def test_no_periodic_command_before_start(self):
        log = os.path.join(self.tmp, "periodic.log")
        pid, _ = self.start("sleep 0.8; exit 3", periodic=[
            {"interval_ms": 50, "first_after_ms": 0,
             "argv": ["/bin/sh", "-c", "echo ran >> " + log]}])
        self.finish(pid)
        self.assertFalse(os.path.exists(log))
        with open(os.path.join(self.dir, "exit")) as f:
            self.assertEqual(f.read(), "3")

    def test_signal_exit_code_and_no_oom_mark(self):
        pid, report = self.start("kill -9 $$")
        self.finish(pid)
        with open(os.path.join(self.dir, "exit")) as f:
            self.assertEqual(f.read(), "137")
        self.assertFalse(os.path.exists(os.path.join(self.dir, "oom")))

    def test_client_queued_before_a_container_that_exits_at_once(self):
        # The container is gone before the monitor's loop runs: the client queued on the
        # attach socket still gets the output and the exit code (it got nothing and waited).
        pid, _ = self.start("echo hi; exit 7", early_client=True, exited_first=True)
        self.assertEqual(self.attached(self.client), (b"hi\n", 7))
        self.finish(pid)

    def test_client_and_output_in_one_wakeup(self):
        # Output ready before the connection, both seen by the monitor in one wakeup (it was
        # stopped, as a busy CPU does): the client is accepted first and gets the output.
        import signal
        pid, _ = self.start("sleep 0.3; echo hi; sleep 0.5; exit 3")
        os.kill(pid, signal.SIGSTOP)
        try:
            time.sleep(0.5)  # "hi" is in the pipe
            client = self.connect()
        finally:
            os.kill(pid, signal.SIGCONT)
        self.assertEqual(self.attached(client), (b"hi\n", 3))
        self.finish(pid)

    def test_monitor_is_small(self):
        """The resident monitor is a static program: no shared libraries mapped."""
        pid, report = self.start("sleep 1")
        with open("/proc/%d/maps" % pid) as f:
            maps = f.read()
        self.assertNotIn(".so", maps)
        rss = 0
        with open("/proc/%d/smaps_rollup" % pid) as f:
            for line in f:
                if line.startswith("Rss:"):
                    rss = int(line.split()[1])
        self.assertLess(rss, 2048)  # kB; the budget is 1 MiB, measured by bench.py monitor-mem
        self.finish(pid)


if __name__ == "__main__":
    unittest.main()
