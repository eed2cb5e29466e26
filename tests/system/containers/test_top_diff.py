"""berth top as Podman (format descriptors, in the container's view) and Docker (the host's ps with
the user's options) list a container's processes, and berth diff without the engine's own mount
points (/etc/hostname, /etc/hosts, /etc/resolv.conf, ...), as Podman leaves them out."""
import os
import subprocess
import time
import unittest

from container_fixture import ContainerTestCase, IMAGE

DEFAULT_TITLES = ["USER", "PID", "PPID", "%CPU", "ELAPSED", "TTY", "TIME", "COMMAND"]


class TopTest(ContainerTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        # Two processes besides the shell (or one, when sh execs the last command).
        cmd = cls.cmd() + ["run", "-d", "--name", "two", IMAGE, "sh", "-c",
                           "sleep 300 & sleep 301"]
        r = subprocess.run(cmd, capture_output=True, text=True, env=cls.env)
        if r.returncode != 0:
            raise RuntimeError(f"run failed: {r.stderr}")

    def setUp(self):
        # Until both sleeps run (the shell forks them after `run -d` returns).
        deadline = time.time() + 30
        while time.time() < deadline:
            out = self.ok("top", "two").out
            if "sleep 300" in out and "sleep 301" in out:
                return
            time.sleep(0.1)
        self.fail("the container's sleeps never showed:\n" + out)

    def lines(self, *args):
        return self.ok("top", "two", *args).out.splitlines()

    def host_pids(self):
        return {int(p) for p in self.ok("top", "two", "hpid").out.split()[1:]}

    def test_default_columns_unchanged(self):
        lines = self.lines()
        self.assertEqual(lines[0].split(), DEFAULT_TITLES)
        rows = [l.split(None, 7) for l in lines[1:]]
        cmds = {r[7] for r in rows}
        self.assertIn("sleep 300", cmds)
        self.assertIn("sleep 301", cmds)
        # In the container's view: its init is pid 1, the parent of the sleeps; root by name.
        pids = {r[1]: r for r in rows}
        self.assertIn("1", pids)
        for r in rows:
            self.assertEqual(r[0], "root", r)
            self.assertIn(r[2], pids if r[1] != "1" else {"0"}, r)
        self.assertLessEqual(len(rows), 3, lines)

    def test_descriptors(self):
        lines = self.lines("pid", "user", "args")
        self.assertEqual(lines[0].split(), ["PID", "USER", "COMMAND"])
        self.assertIn("1", [l.split()[0] for l in lines[1:]])
        # Codes and comma-joined lists, as Podman takes them.
        self.assertEqual(self.lines("%p,%U", "%c")[0].split(), ["PID", "USER", "COMMAND"])
        every = ["user", "huser", "pid", "hpid", "ppid", "pcpu", "etime", "time", "tty", "args",
                 "comm", "group", "hgroup", "nice", "pgid", "vsz", "rss", "state", "stime"]
        titles = ["USER", "HUSER", "PID", "HPID", "PPID", "%CPU", "ELAPSED", "TIME", "TTY",
                  "COMMAND", "COMMAND", "GROUP", "HGROUP", "NI", "PGID", "VSZ", "RSS", "STATE",
                  "STIME"]
        r = self.ok("top", "two", *every)
        rows = r.out.splitlines()
        self.assertEqual(rows[0].split(), titles)
        # The host's pid of the container's pid 1 is its init's, as inspect reports it.
        init = self.json("inspect", "two")[0]["State"]["Pid"]
        pairs = dict(l.split()[2:4] for l in self.lines("huser", "group", "pid", "hpid")[1:])
        self.assertEqual(pairs["1"], str(init))
        for l in self.lines("comm", "state", "nice", "user", "group", "hgroup")[1:]:
            comm, state, nice, user, group, hgroup = l.split()
            self.assertIn(comm, ("sh", "sleep"))
            self.assertIn(state, ("S", "R"))
            self.assertEqual((nice, user, group, hgroup), ("0", "root", "root", "root"))
        listed = self.ok("top", "--list-descriptors").out.split()
        self.assertTrue(set(every) <= set(listed), listed)

    def test_unknown_descriptor_is_named(self):
        r = self.berth("top", "two", "pid", "bogus")
        self.assertEqual(r.rc, 125, r)
        self.assertIn("unknown descriptor", r.err)
        self.assertIn("bogus", r.err)

    def test_ps_ef_keeps_the_containers_processes_only(self):
        lines = self.lines("-ef")
        self.assertEqual(lines[0].split(), ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME",
                                            "CMD"])
        rows = [l.split(None, 7) for l in lines[1:]]
        pids = {int(r[1]) for r in rows}
        # Host pids, the container's and no other (not this test's own process).
        self.assertEqual(pids, self.host_pids())
        self.assertNotIn(os.getpid(), pids)
        self.assertIn("sleep 300", [r[7] for r in rows])

    def test_ps_aux_keeps_the_command_whole(self):
        lines = self.lines("aux")
        titles = lines[0].split()
        self.assertEqual(titles[:2], ["USER", "PID"])
        self.assertEqual(titles[-1], "COMMAND")
        rows = [l.split(None, len(titles) - 1) for l in lines[1:]]
        self.assertEqual({int(r[1]) for r in rows}, self.host_pids())
        self.assertIn("sleep 301", [r[-1] for r in rows])

    def test_ps_options_with_dashes_and_forest(self):
        self.assertEqual(self.lines("-o", "pid,comm")[0].split(), ["PID", "COMMAND"])
        self.assertEqual({int(l.split()[0]) for l in self.lines("-o", "pid,comm")[1:]},
                         self.host_pids())
        # The pid column may be called PID, as Docker allows.
        self.assertEqual(self.lines("-o", "pid=PID,comm")[0].split(), ["PID", "COMMAND"])
        # A forest listing refuses ps -q: berth filters every process's row itself.
        lines = self.lines("axf")
        self.assertEqual(lines[0].split()[0], "PID")
        self.assertEqual({int(l.split()[0]) for l in lines[1:]}, self.host_pids())
        self.assertTrue(any("\\_ sleep 300" in l for l in lines), lines)

    def test_custom_pid_header_refused(self):
        r = self.berth("top", "two", "-o", "comm=PID")
        self.assertEqual(r.rc, 125, r)
        self.assertIn("cannot use a custom PID column header", r.err)
        self.assertIn("comm=PID", r.err)

    def test_missing_ps_is_named(self):
        r = self.berth("top", "two", "-ef", env={"PATH": "/nonexistent"})
        self.assertEqual(r.rc, 125, r)
        self.assertIn("ps(1) is not installed", r.err)
        self.assertIn("procps", r.err)
        # Descriptors read /proc and need no ps.
        self.assertEqual(self.berth("top", "two", env={"PATH": "/nonexistent"}).rc, 0)

    def test_stopped_container_refused(self):
        self.ok("create", "--name", "idle", IMAGE, "true")
        self.addCleanup(self.berth, "rm", "-f", "idle")
        for args in ([], ["-ef"], ["pid"]):
            r = self.berth("top", "idle", *args)
            self.assertEqual(r.rc, 125, r)
            self.assertIn("top can only be used on running containers", r.err)


class TopUsernsTest(ContainerTestCase):
    storage_driver = "overlay"

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        # A container's root (a mapped host uid) must reach the store below mkdtemp's 0700.
        os.chmod(cls.tmp, 0o711)

    def test_ids_in_the_containers_view_and_the_hosts(self):
        self.ok("run", "-d", "--name", "mapped", "--uidmap", "0:200000:65536", "--gidmap",
                "0:200000:65536", IMAGE, "sleep", "300")
        self.addCleanup(self.berth, "rm", "-f", "-t", "0", "mapped")
        lines = self.ok("top", "mapped", "user", "uid", "group", "huser", "huid", "hgroup").out
        self.assertEqual([l.split() for l in lines.splitlines()],
                         [["USER", "UID", "GROUP", "HUSER", "HUID", "HGROUP"],
                          ["root", "0", "root", "200000", "200000", "200000"]])
        # ps sees the host's ids.
        rows = self.ok("top", "mapped", "-o", "uid,pid,comm").out.splitlines()
        self.assertEqual(rows[1].split()[0], "200000")


class DiffTest(ContainerTestCase):
    def test_fresh_container_has_no_changes(self):
        self.ok("run", "-d", "--name", "fresh", IMAGE, "sleep", "300")
        self.addCleanup(self.berth, "rm", "-f", "fresh")
        self.assertEqual(self.ok("diff", "fresh").out, "")
        self.assertEqual(self.ok("container", "diff", "fresh").out, "")
        self.ok("run", "--name", "ran", IMAGE, "true")
        self.addCleanup(self.berth, "rm", "-f", "ran")
        self.assertEqual(self.ok("diff", "ran").out, "")

    def test_only_the_users_changes(self):
        self.ok("run", "-d", "--name", "touched", IMAGE, "sleep", "300")
        self.addCleanup(self.berth, "rm", "-f", "touched")
        self.ok("exec", "touched", "touch", "/x")
        self.assertEqual(self.ok("diff", "touched").out.splitlines(), ["A /x"])
        # A file of the user's in /etc changes /etc; the engine's files there stay out.
        self.ok("exec", "touched", "touch", "/etc/mine")
        self.assertEqual(self.ok("diff", "touched").out.splitlines(),
                         ["C /etc", "A /etc/mine", "A /x"])


class DiffOverlayTest(DiffTest):
    storage_driver = "overlay"


if __name__ == "__main__":
    unittest.main()
