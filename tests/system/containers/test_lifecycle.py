"""berth run/create/start/stop/kill/rm/ps/inspect/logs/wait/exec with berth-monitor, as a user
sees them (Podman is the reference)."""
import json
import os
import re
import signal
import subprocess
import time
import unittest

from container_fixture import ContainerTestCase, IMAGE


class RunTest(ContainerTestCase):
    def test_output_and_exit_codes_pass_through(self):
        r = self.run_ctr("echo", "hello")
        self.assertEqual((r.rc, r.out), (0, "hello\n"), r)
        self.assertEqual(self.run_ctr("sh", "-c", "exit 3").rc, 3)
        r = self.run_ctr("/nonexistent")
        self.assertEqual(r.rc, 127, r)
        self.assertTrue(r.err.startswith("Error: "), r)
        self.assertIn("/nonexistent", r.err)
        r = self.run_ctr("/bin/noexec")
        self.assertEqual(r.rc, 126, r)
        self.assertTrue(r.err.startswith("Error: "), r)
        r = self.berth("run", "--rm", "localhost/no-such-image", "true")
        self.assertEqual(r.rc, 125, r)
        self.assertIn("no-such-image", r.err)

    def test_stdout_and_stderr_stay_apart(self):
        r = self.run_ctr("sh", "-c", "echo out; echo err >&2")
        self.assertEqual(r.out, "out\n", r)
        self.assertEqual(r.err, "err\n", r)

    def test_stdin_is_piped(self):
        r = self.berth("run", "-i", "--rm", IMAGE, "cat", input="hi\nthere\n")
        self.assertEqual((r.rc, r.out), (0, "hi\nthere\n"), r)
        # Without -i the container's stdin is empty.
        r = self.berth("run", "--rm", IMAGE, "cat", input="ignored\n")
        self.assertEqual((r.rc, r.out), (0, ""), r)

    def test_isolation(self):
        r = self.run_ctr("sh", "-c", "echo $$")
        self.assertEqual(r.out, "1\n", r)
        r = self.berth("run", "--rm", "--hostname", "boxy", IMAGE, "hostname")
        self.assertEqual(r.out, "boxy\n", r)
        r = self.run_ctr("cat", "/etc/hosts")
        self.assertIn("localhost", r.out)
        # Own mount table: the host's paths are not visible.
        r = self.run_ctr("cat", "/proc/self/mountinfo")
        self.assertNotIn(self.tmp, r.out.replace(self.root, ""), r)
        self.assertNotIn(" /work", r.out)
        # No host devices.
        r = self.run_ctr("ls", "/dev")
        devs = set(r.out.split())
        self.assertTrue({"null", "zero", "urandom", "tty"} <= devs, devs)
        self.assertFalse([d for d in devs if re.match(r"^(sd|nvme|vd|xvd|loop)", d)], devs)
        # Masked /proc paths read empty.
        masked = [p for p in ["/proc/keys", "/proc/timer_list", "/proc/kcore",
                              "/proc/sched_debug", "/sys/firmware"] if os.path.exists(p)]
        self.assertTrue(masked)
        script = "; ".join(f"cat {p} 2>/dev/null | wc -c" if p.startswith("/proc")
                           else f"ls {p} | wc -l" for p in masked)
        r = self.run_ctr("sh", "-c", script)
        self.assertEqual(r.out.split(), ["0"] * len(masked), r)
        # Podman's default capability set.
        r = self.run_ctr("grep", "CapEff", "/proc/self/status")
        self.assertEqual(r.out.split()[1], "00000000800405fb", r)
        r = self.berth("run", "--rm", "--cap-drop", "ALL", IMAGE, "grep", "CapEff",
                       "/proc/self/status")
        self.assertEqual(r.out.split()[1], "0000000000000000", r)

    def test_env_workdir_user_entrypoint(self):
        r = self.berth("run", "--rm", "--env=FOO=bar", "--workdir=/tmp", "--user=65534", IMAGE,
                       "sh", "-c", "echo $FOO $(pwd) $(id -u)")
        self.assertEqual(r.out, "bar /tmp 65534\n", r)
        r = self.berth("run", "--rm", "--entrypoint", "echo", IMAGE, "from", "entrypoint")
        self.assertEqual(r.out, "from entrypoint\n", r)

    def test_rm_leaves_nothing(self):
        before = self.ok("ps", "-aq").out
        self.assertEqual(self.run_ctr("true").rc, 0)
        self.assertEqual(self.ok("ps", "-aq").out, before)
        with open("/proc/mounts") as f:
            self.assertNotIn(self.root, f.read())
        self.assertFalse([f for f in os.listdir(os.path.join(self.runroot, "locks"))
                          if f.startswith("container-")])

    def test_name_conflict_and_replace(self):
        self.ok("create", "--name", "dup", IMAGE, "true")
        r = self.berth("create", "--name", "dup", IMAGE, "true")
        self.assertEqual(r.rc, 125)
        self.assertIn("already in use", r.err)
        self.ok("create", "--replace", "--name", "dup", IMAGE, "true")
        self.assertEqual(len(self.ok("ps", "-aq", "--filter", "name=dup").out.split()), 1)
        self.ok("rm", "dup")

    def test_init(self):
        r = self.berth("run", "--rm", "--init", IMAGE, "sh", "-c", "cat /proc/1/cmdline | tr '\\0' ' '")
        self.assertIn("/run/podman-init", r.out, r)


class LifecycleTest(ContainerTestCase):
    def test_detached_stop_falls_back_to_sigkill(self):
        cid = self.ok("run", "-d", "--name", "sleeper", IMAGE, "sleep", "1000").out.strip()
        self.assertRegex(cid, "^[0-9a-f]{64}$")
        ps = self.ok("ps", "--format", "{{.Names}} {{.Status}}").out
        self.assertRegex(ps, r"sleeper Up ")
        info = self.json("container", "inspect", "sleeper")[0]
        self.assertTrue(info["State"]["Running"])
        self.assertGreater(info["State"]["Pid"], 0)
        self.assertGreater(info["State"]["ConmonPid"], 0)
        # sleep as pid 1 ignores SIGTERM: stop waits -t seconds, then SIGKILL.
        t0 = time.monotonic()
        self.ok("stop", "-t", "1", "sleeper")
        self.assertGreaterEqual(time.monotonic() - t0, 0.9)
        info = self.json("container", "inspect", "sleeper")[0]
        self.assertEqual(info["State"]["Status"], "exited")
        self.assertEqual(info["State"]["ExitCode"], 137)
        ps = self.ok("ps", "-a", "--format", "{{.Names}} {{.Status}}").out
        self.assertRegex(ps, r"sleeper Exited \(137\) ")
        self.assertNotIn("sleeper", self.ok("ps").out)
        # start again, then rm -f a running container.
        self.ok("start", "sleeper")
        self.assertEqual(self.json("container", "inspect", "sleeper")[0]["State"]["Status"],
                         "running")
        r = self.berth("rm", "sleeper")
        self.assertNotEqual(r.rc, 0)
        self.assertIn("running", r.err)
        self.ok("rm", "-f", "sleeper")
        self.assertEqual(self.berth("container", "exists", "sleeper").rc, 1)

    def test_stop_with_trap_exits_cleanly(self):
        self.ok("run", "-d", "--name", "trapper", IMAGE, "sh", "-c",
                "trap 'exit 7' TERM; echo ready; while :; do sleep 0.1; done")
        self.wait_log("trapper", "ready")
        self.ok("stop", "-t", "10", "trapper")
        self.assertEqual(self.ok("wait", "trapper").out, "7\n")
        self.ok("rm", "trapper")

    def test_kill_signal_and_wait(self):
        self.ok("run", "-d", "--name", "k1", IMAGE, "sh", "-c",
                "trap 'exit 42' USR1; echo ready; while :; do sleep 0.1; done")
        self.ok("run", "-d", "--name", "k2", IMAGE, "sh", "-c", "exit 5")
        self.wait_log("k1", "ready")
        self.ok("kill", "-s", "USR1", "k1")
        r = self.ok("wait", "k1", "k2")
        self.assertEqual(r.out, "42\n5\n")
        r = self.berth("kill", "k1")
        self.assertEqual(r.rc, 125)
        self.ok("rm", "k1", "k2")

    def test_create_then_start_attach(self):
        self.ok("create", "--name", "c1", IMAGE, "sh", "-c", "echo created-run; exit 2")
        ps = self.ok("ps", "-a", "--format", "{{.Names}} {{.Status}}").out
        self.assertIn("c1 Created", ps)
        r = self.berth("start", "-a", "c1")
        self.assertEqual((r.rc, r.out), (2, "created-run\n"), r)
        self.ok("rm", "c1")

    def test_logs(self):
        self.ok("run", "-d", "--name", "logger", IMAGE, "sh", "-c",
                "echo one; echo two >&2; sleep 0.2; echo three")
        self.assertEqual(self.ok("wait", "logger").out, "0\n")
        r = self.ok("logs", "logger")
        self.assertEqual(r.out, "one\nthree\n")
        self.assertEqual(r.err, "two\n")
        self.assertEqual(self.ok("logs", "--tail", "1", "logger").out, "three\n")
        r = self.ok("logs", "-t", "logger")
        self.assertRegex(r.out, r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}[+-]\d\d:\d\d one\n")
        info = self.json("container", "inspect", "logger")[0]
        path = info["HostConfig"]["LogConfig"]["Path"]
        with open(path) as f:
            lines = f.read().splitlines()
        self.assertEqual(len(lines), 3)
        for line, (stream, text) in zip(sorted(lines, key=lambda l: l.split()[2]),
                                        []):  # order checked below
            pass
        pat = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}[+-]\d\d:\d\d (stdout|stderr) F (.*)$")
        got = sorted((pat.match(l).group(1), pat.match(l).group(2)) for l in lines)
        self.assertEqual(got, [("stderr", "two"), ("stdout", "one"), ("stdout", "three")])
        self.ok("rm", "logger")

    def test_log_rotation(self):
        self.ok("run", "--name", "rot", "--log-opt", "max-size=2k", IMAGE, "sh", "-c",
                "i=0; while [ $i -lt 200 ]; do echo line-$i; i=$((i+1)); done")
        path = self.json("container", "inspect", "rot")[0]["HostConfig"]["LogConfig"]["Path"]
        self.assertTrue(os.path.exists(path + ".1"))
        self.assertLessEqual(os.path.getsize(path), 2048)
        self.assertEqual(self.ok("logs", "--tail", "1", "rot").out, "line-199\n")
        self.ok("rm", "rot")

    def test_exec(self):
        self.ok("run", "-d", "--name", "ex", IMAGE, "sleep", "1000")
        r = self.berth("exec", "ex", "sh", "-c", "echo in-exec; exit 5")
        self.assertEqual((r.rc, r.out), (5, "in-exec\n"), r)
        r = self.berth("exec", "--env=FOO=bar", "ex", "sh", "-c", "echo $FOO")
        self.assertEqual(r.out, "bar\n")
        r = self.berth("exec", "-i", "ex", "cat", input="piped\n")
        self.assertEqual(r.out, "piped\n")
        r = self.berth("exec", "ex", "grep", "CapEff", "/proc/self/status")
        self.assertEqual(r.out.split()[1], "00000000800405fb", r)
        self.assertEqual(self.berth("exec", "ex", "/nonexistent").rc, 127)
        r = self.ok("top", "ex")
        self.assertIn("sleep 1000", r.out)
        self.assertTrue(r.out.startswith("USER"))
        self.ok("rm", "-f", "ex")
        self.assertEqual(self.berth("exec", "ex", "true").rc, 125)

    def test_ps_formats_and_filters(self):
        self.ok("run", "-d", "--name", "web", "--label", "app=web", IMAGE, "sleep", "1000")
        self.ok("create", "--name", "idle", IMAGE, "true")
        rows = self.json("ps", "-a", "--format", "json")
        names = {r["Names"][0]: r for r in rows}
        self.assertEqual(set(names), {"web", "idle"})
        self.assertEqual(names["web"]["State"], "running")
        self.assertEqual(names["idle"]["State"], "created")
        self.assertEqual(self.ok("ps", "--format", "{{.Names}}").out, "web\n")
        self.assertEqual(self.ok("ps", "-a", "--filter", "label=app=web",
                                 "--format", "{{.Names}}").out, "web\n")
        self.assertEqual(self.ok("ps", "-a", "--filter", "status=created",
                                 "--format", "{{.Names}}").out, "idle\n")
        self.assertEqual(self.ok("ps", "-l", "--format", "{{.Names}}").out, "idle\n")
        header = self.ok("ps").out.splitlines()[0]
        self.assertEqual(header.split(), ["CONTAINER", "ID", "IMAGE", "COMMAND", "CREATED",
                                          "STATUS", "PORTS", "NAMES"])
        q = self.ok("ps", "-aq").out.split()
        self.assertEqual(len(q), 2)
        self.assertTrue(all(len(x) == 12 for x in q))
        self.assertEqual(len(self.ok("ps", "-aq", "--no-trunc").out.split()[0]), 64)
        self.ok("rename", "idle", "idle2")
        self.assertEqual(self.berth("container", "exists", "idle2").rc, 0)
        self.ok("rm", "-f", "web", "idle2")

    def test_inspect_shape(self):
        self.ok("create", "--name", "shape", "--env=A=1", IMAGE, "echo", "x")
        info = self.json("container", "inspect", "shape")[0]
        for key in ["Id", "Created", "Path", "Args", "State", "Image", "ImageName", "Rootfs",
                    "Pod", "ResolvConfPath", "HostnamePath", "HostsPath", "StaticDir",
                    "OCIRuntime", "ConmonPidFile", "PidFile", "Name", "RestartCount", "Driver",
                    "MountLabel", "ProcessLabel", "AppArmorProfile", "EffectiveCaps",
                    "BoundingCaps", "ExecIDs", "GraphDriver", "Mounts", "Dependencies",
                    "NetworkSettings", "Namespace", "IsInfra", "Config", "HostConfig"]:
            self.assertIn(key, info)
        for key in ["OciVersion", "Status", "Running", "Paused", "Restarting", "OOMKilled",
                    "Dead", "Pid", "ConmonPid", "ExitCode", "Error", "StartedAt",
                    "FinishedAt"]:
            self.assertIn(key, info["State"])
        self.assertEqual(info["Path"], "echo")
        self.assertEqual(info["Args"], ["x"])
        self.assertEqual(info["Name"], "shape")
        self.assertEqual(info["OCIRuntime"], "native")
        self.assertIn("A=1", info["Config"]["Env"])
        self.assertEqual(self.ok("container", "inspect", "--format", "{{.State.Status}}",
                                 "shape").out, "created\n")
        # `berth inspect` finds containers first, then images.
        self.assertEqual(self.ok("inspect", "--format", "{{.Name}}", "shape").out, "shape\n")
        self.assertEqual(len(self.json("inspect", IMAGE)), 1)
        r = self.berth("inspect", "no-such-thing")
        self.assertEqual(r.rc, 125)
        self.assertIn("no such object", r.err)
        self.ok("rm", "shape")

    def test_cli_killed_container_keeps_running(self):
        cmd = [os.environ.get("BERTH_BIN", "berth"), "--root", self.root, "--runroot",
               self.runroot, "--storage-driver", self.storage_driver, "run", "--name", "orphan",
               IMAGE, "sleep", "1000"]
        err = open(os.path.join(self.tmp, "orphan.err"), "w+")
        self.addCleanup(err.close)
        p = subprocess.Popen(cmd, env=self.env, stdout=subprocess.DEVNULL, stderr=err)
        try:
            self.wait_running("orphan")
        except AssertionError:
            err.seek(0)
            self.fail("run --name orphan: rc=%s stderr: %s" % (p.poll(), err.read()))
        p.send_signal(signal.SIGKILL)
        p.wait()
        ps = self.ok("ps", "--format", "{{.Names}} {{.Status}}").out
        self.assertRegex(ps, r"orphan Up ")
        self.ok("stop", "-t", "0", "orphan")
        self.assertEqual(self.ok("wait", "orphan").out, "137\n")
        self.ok("rm", "orphan")

    def test_killed_monitor_means_exited(self):
        self.ok("run", "-d", "--name", "mon", IMAGE, "sleep", "1000")
        info = self.json("container", "inspect", "mon")[0]
        os.kill(info["State"]["ConmonPid"], signal.SIGKILL)
        os.kill(info["State"]["Pid"], signal.SIGKILL)
        status = ""
        for _ in range(200):
            status = self.json("container", "inspect", "mon")[0]["State"]["Status"]
            if status == "exited":
                break
            time.sleep(0.05)
        self.assertEqual(status, "exited")
        self.ok("rm", "mon")

    def test_created_container_ends_with_its_killed_monitor(self):
        # Before the start the init waits for it; with its monitor gone nobody would ever start
        # or end it: it dies with the monitor (and a started container outlives it, above).
        self.ok("create", "--name", "orphan", IMAGE, "sleep", "1000")
        cid = self.json("container", "inspect", "orphan")[0]["Id"]
        with open(os.path.join(self.runroot, "containers", cid, "state.json")) as f:
            init_pid = json.load(f)["pid"]
        self.assertGreater(init_pid, 0)
        monitor = self.json("container", "inspect", "orphan")[0]["State"]["ConmonPid"]
        os.kill(monitor, signal.SIGKILL)
        for _ in range(100):
            if not os.path.exists("/proc/%d" % init_pid):
                break
            time.sleep(0.05)
        self.assertFalse(os.path.exists("/proc/%d" % init_pid), "the created init outlived it")
        r = self.ok("ps", "-a", "--filter", "name=orphan", "--format", "{{.Status}}")
        self.assertRegex(r.out, r"^Exited \(-1\) .*ago\n$")
        self.assertNotIn("years", r.out)
        self.ok("rm", "orphan")

    def test_prune(self):
        self.ok("run", "--name", "done1", IMAGE, "true")
        self.ok("run", "-d", "--name", "live", IMAGE, "sleep", "1000")
        self.ok("container", "prune", "-f")
        self.assertEqual(self.ok("ps", "-a", "--format", "{{.Names}}").out, "live\n")
        self.ok("rm", "-f", "live")


class RuncTest(ContainerTestCase):
    @unittest.skipUnless(os.path.exists("/usr/sbin/runc"), "runc not installed")
    def test_same_container_through_runc(self):
        r = self.berth("run", "--rm", "--runtime", "runc", IMAGE, "sh", "-c",
                       "echo via-runc; echo $$; exit 4")
        self.assertEqual((r.rc, r.out), (4, "via-runc\n1\n"), r)
        self.ok("run", "-d", "--runtime", "runc", "--name", "rc1", IMAGE, "sleep", "1000")
        self.assertEqual(self.json("container", "inspect", "rc1")[0]["OCIRuntime"], "runc")
        r = self.berth("exec", "rc1", "sh", "-c", "exit 6")
        self.assertEqual(r.rc, 6, r)
        self.ok("stop", "-t", "1", "rc1")
        self.assertEqual(self.ok("wait", "rc1").out, "137\n")
        self.ok("rm", "rc1")
        self.assertEqual(self.ok("ps", "-aq").out, "")


if __name__ == "__main__":
    unittest.main()
