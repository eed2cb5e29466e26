"""Resource limits, devices, security options, namespaces, stats, update and pause as a user sees
them (Podman is the reference). This host is cgroup v1: the limits are checked in the cgroup
files and enforced for real."""
import json
import os
import time
import unittest

from container_fixture import ContainerTestCase, IMAGE

CGROUP = "/sys/fs/cgroup"


def cg(controller, cid, name):
    with open(os.path.join(CGROUP, controller, "berth", cid, name)) as f:
        return f.read().strip()


class ResourceTestCase(ContainerTestCase):
    def run_detached(self, name, *args):
        r = self.ok("run", "-d", "--name", name, *args)
        cid = r.out.strip().splitlines()[-1]
        self.addCleanup(self.berth, "rm", "-f", "-t", "0", name)
        return cid

    def inspect(self, name):
        return self.json("inspect", name)[0]


class LimitsTest(ResourceTestCase):
    def test_memory_cpu_pids_in_cgroup_files_and_inspect(self):
        # blkio.weight exists only with the CFQ/BFQ scheduler; without it berth refuses the
        # flag with a clear error (checked here too) rather than ignoring it.
        blkio = os.path.exists(os.path.join(CGROUP, "blkio", "blkio.weight"))
        if not blkio:
            r = self.berth("run", "-d", "--name", "noblkio", "--blkio-weight", "300", IMAGE,
                           "true")
            self.addCleanup(self.berth, "rm", "-f", "noblkio")
            self.assertNotEqual(r.rc, 0, r)
            self.assertIn("no blkio.weight", r.err)
        cid = self.run_detached("lim", "--memory", "64m", "--memory-reservation", "32m",
                                "--cpus", "0.5", "--cpu-shares", "512", "--cpuset-cpus", "0",
                                "--pids-limit", "100",
                                *(["--blkio-weight", "300"] if blkio else []), IMAGE,
                                "sleep", "300")
        self.assertEqual(cg("memory", cid, "memory.limit_in_bytes"), str(64 << 20))
        self.assertEqual(cg("memory", cid, "memory.soft_limit_in_bytes"), str(32 << 20))
        if os.path.exists(os.path.join(CGROUP, "memory", "berth", cid,
                                       "memory.memsw.limit_in_bytes")):
            # Podman's rule: --memory alone allows as much swap as memory.
            self.assertEqual(cg("memory", cid, "memory.memsw.limit_in_bytes"), str(128 << 20))
        self.assertEqual(cg("cpu", cid, "cpu.cfs_quota_us"), "50000")
        self.assertEqual(cg("cpu", cid, "cpu.cfs_period_us"), "100000")
        self.assertEqual(cg("cpu", cid, "cpu.shares"), "512")
        self.assertEqual(cg("cpuset", cid, "cpuset.cpus"), "0")
        self.assertEqual(cg("pids", cid, "pids.max"), "100")
        hc = self.inspect("lim")["HostConfig"]
        self.assertEqual(hc["Memory"], 64 << 20)
        self.assertEqual(hc["MemorySwap"], 128 << 20)
        self.assertEqual(hc["MemoryReservation"], 32 << 20)
        self.assertEqual(hc["NanoCpus"], 500000000)
        self.assertEqual(hc["CpuShares"], 512)
        self.assertEqual(hc["CpusetCpus"], "0")
        self.assertEqual(hc["PidsLimit"], 100)
        self.assertEqual(hc["BlkioWeight"], 300 if blkio else 0)

    def test_memory_limit_oom_kills(self):
        # tail buffers a line that never ends: it grows until the limit kills it.
        r = self.berth("run", "--name", "oom", "--memory", "16m", "--memory-swap", "16m", IMAGE,
                       "tail", "/dev/zero", timeout=120)
        self.addCleanup(self.berth, "rm", "-f", "oom")
        self.assertEqual(r.rc, 137, r)
        state = self.inspect("oom")["State"]
        self.assertEqual(state["ExitCode"], 137)
        self.assertTrue(state["OOMKilled"], state)

    def test_oom_kill_disable_sets_oom_control(self):
        cid = self.run_detached("nooom", "--memory", "32m", "--oom-kill-disable", IMAGE,
                                "sleep", "300")
        self.assertIn("oom_kill_disable 1", cg("memory", cid, "memory.oom_control"))
        self.assertTrue(self.inspect("nooom")["HostConfig"]["OomKillDisable"])

    def test_pids_limit_stops_a_fork_bomb(self):
        # The inner shell forks until it cannot (and then gives up); the outer one reports.
        cid = self.run_detached("bomb", "--pids-limit", "20", IMAGE, "sh", "-c",
                                "sh -c 'i=0; while [ $i -lt 200 ]; do sleep 300 & "
                                "i=$((i+1)); done'; echo done; exec sleep 300")
        deadline = time.time() + 60
        while time.time() < deadline:
            logs = self.ok("logs", "bomb")
            if "done" in logs.out:
                break
            time.sleep(0.2)
        self.assertIn("done", logs.out, logs)
        self.assertIn("can't fork", logs.err + logs.out)
        self.assertEqual(cg("pids", cid, "pids.max"), "20")
        self.assertLessEqual(int(cg("pids", cid, "pids.current")), 20)

    def test_bad_values_are_refused(self):
        for args, words in [(["--memory", "lots"], "--memory"),
                            (["--memory", "1m"], "6MB"),
                            (["--memory-swap", "64m"], "--memory"),
                            (["--cpus", "1000"], "range of CPUs"),
                            (["--blkio-weight", "5"], "--blkio-weight"),
                            (["--health-on-failure", "explode", "--health-cmd", "true"],
                             "--health-on-failure")]:
            r = self.berth("run", "--rm", *args, IMAGE, "true")
            self.assertEqual(r.rc, 125, (args, r))
            self.assertIn(words, r.err, (args, r))


class UpdateStatsPauseTest(ResourceTestCase):
    def test_update_a_running_container(self):
        cid = self.run_detached("upd", "--memory", "64m", "--pids-limit", "50", IMAGE,
                                "sleep", "300")
        r = self.ok("update", "--memory", "128m", "--cpus", "1.5", "--pids-limit", "70",
                    "--cpu-shares", "256", "upd")
        self.assertEqual(r.out.strip(), "upd")
        self.assertEqual(cg("memory", cid, "memory.limit_in_bytes"), str(128 << 20))
        self.assertEqual(cg("cpu", cid, "cpu.cfs_quota_us"), "150000")
        self.assertEqual(cg("cpu", cid, "cpu.shares"), "256")
        self.assertEqual(cg("pids", cid, "pids.max"), "70")
        hc = self.inspect("upd")["HostConfig"]
        self.assertEqual((hc["Memory"], hc["NanoCpus"], hc["PidsLimit"], hc["CpuShares"]),
                         (128 << 20, 1500000000, 70, 256))
        # Down again: memory below the old memory+swap works in either order.
        self.ok("update", "--memory", "32m", "upd")
        self.assertEqual(cg("memory", cid, "memory.limit_in_bytes"), str(32 << 20))
        # The container keeps running and the limits hold for its processes.
        self.assertEqual(self.ok("exec", "upd", "echo", "alive").out, "alive\n")
        r = self.berth("update", "--memory", "nope", "upd")
        self.assertEqual(r.rc, 125, r)

    def test_stats_no_stream(self):
        self.run_detached("st", IMAGE, "sleep", "300")
        rows = self.json("stats", "--no-stream", "--format", "json", "st")
        self.assertEqual(len(rows), 1, rows)
        row = rows[0]
        self.assertEqual(set(row), {"id", "name", "cpu_time", "cpu_percent", "avg_cpu",
                                    "mem_usage", "mem_percent", "net_io", "block_io", "pids"})
        self.assertEqual(row["name"], "st")
        self.assertEqual(row["pids"], "1")
        usage, limit = row["mem_usage"].split(" / ")
        self.assertTrue(usage.endswith("B") and limit.endswith("B"), row)
        self.assertTrue(row["cpu_percent"].endswith("%"), row)
        r = self.ok("stats", "--no-stream", "--format", "{{.Name}} {{.PIDS}}", "st")
        self.assertEqual(r.out, "st 1\n")
        r = self.ok("stats", "--no-stream", "st")
        header = r.out.splitlines()[0]
        for col in ["ID", "NAME", "CPU %", "MEM USAGE / LIMIT", "MEM %", "NET IO", "BLOCK IO",
                    "PIDS"]:
            self.assertIn(col, header)
        # A memory limit is the limit shown.
        self.run_detached("st2", "--memory", "100m", IMAGE, "sleep", "300")
        row = self.json("stats", "--no-stream", "--format", "json", "st2")[0]
        self.assertEqual(row["mem_usage"].split(" / ")[1], "104.9MB")
        r = self.berth("stats", "--no-stream", "no-such-ctr")
        self.assertEqual(r.rc, 125, r)

    def test_pause_unpause(self):
        cid = self.run_detached("pz", IMAGE, "sh", "-c", "while true; do sleep 0.1; done")
        self.assertEqual(self.ok("pause", "pz").out.strip(), "pz")
        self.assertEqual(cg("freezer", cid, "freezer.state"), "FROZEN")
        state = self.inspect("pz")["State"]
        self.assertEqual((state["Status"], state["Paused"], state["Running"]),
                         ("paused", True, False))
        ps = self.json("ps", "--format", "json")
        self.assertEqual([p["State"] for p in ps if p["Names"] == ["pz"]], ["paused"])
        r = self.berth("pause", "pz")
        self.assertEqual(r.rc, 125, r)
        self.assertIn("paused", r.err)
        self.assertEqual(self.ok("unpause", "pz").out.strip(), "pz")
        self.assertEqual(cg("freezer", cid, "freezer.state"), "THAWED")
        self.assertEqual(self.inspect("pz")["State"]["Status"], "running")
        r = self.berth("unpause", "pz")
        self.assertEqual(r.rc, 125, r)
        # A paused container can be removed by force.
        self.ok("pause", "pz")
        self.ok("rm", "-f", "pz")


class DevicesSecurityTest(ResourceTestCase):
    def test_device_is_created_and_usable(self):
        r = self.run_ctr("--device", "/dev/null:/dev/mynull", IMAGE, "sh", "-c",
                         "echo hi > /dev/mynull && ls -l /dev/mynull")
        self.assertEqual(r.rc, 0, r)
        self.assertTrue(r.out.startswith("c"), r)
        self.assertIn("1,   3", r.out)
        r = self.berth("run", "--rm", "--device", "/dev/no-such-device", IMAGE, "true")
        self.assertEqual(r.rc, 125, r)
        self.assertIn("/dev/no-such-device", r.err)

    def run_ctr(self, *args, **kw):
        return self.berth("run", "--rm", *args, **kw)

    def test_privileged_and_cap_add_all_get_the_bounding_set(self):
        # As Podman: all capabilities this process may grant (this host's bounding set lacks
        # CAP_SYS_RESOURCE, so "all 41" would fail the start with EPERM).
        with open("/proc/self/status") as f:
            bnd = [l.split()[1] for l in f if l.startswith("CapBnd:")][0]
        for flags in (["--privileged"], ["--cap-add", "ALL"]):
            r = self.run_ctr(*flags, IMAGE, "grep", "^CapEff:", "/proc/self/status")
            self.assertEqual(r.rc, 0, (flags, r))
            self.assertEqual(int(r.out.split()[1], 16), int(bnd, 16), (flags, r))

    def test_device_cgroup_denies_unlisted_devices(self):
        # With CAP_MKNOD (not in Podman's default set) a node can be made; the device cgroup
        # still refuses to open an unlisted one. /dev/fuse (10:229): no capability check of its
        # own (kmsg, 1:11, would need CAP_SYSLOG under dmesg_restrict and fail anyway).
        script = "mknod /tmp/fuse c 10 229 && echo made && (exec 3<>/tmp/fuse) && echo opened"
        r = self.run_ctr("--cap-add", "MKNOD", IMAGE, "sh", "-c", script)
        self.assertIn("made", r.out, r)
        self.assertNotIn("opened", r.out, r)
        self.assertIn("Operation not permitted", r.err, r)
        # The rule reaches the container's device cgroup.
        r = self.run_ctr("--device-cgroup-rule", "c 1:11 r", IMAGE, "cat",
                         "/sys/fs/cgroup/devices/devices.list")
        self.assertIn("c 1:11 r", r.out, r)
        r = self.berth("run", "--rm", "--device-cgroup-rule", "x 1", IMAGE, "true")
        self.assertEqual(r.rc, 125, r)

    def test_device_cgroup_rule_allows_mknod_and_open(self):
        # The rule lets the node through the device cgroup (v1 here); making it takes CAP_MKNOD.
        script = "mknod /tmp/fuse c 10 229 && echo made && (exec 3<>/tmp/fuse) && echo opened"
        r = self.run_ctr("--cap-add", "MKNOD", "--device-cgroup-rule", "c 10:229 rwm", IMAGE,
                         "sh", "-c", script)
        self.assertEqual(r.rc, 0, r)
        self.assertIn("made\nopened", r.out, r)
        # Without the capability mknod fails with EPERM, as in Podman, and create says why.
        r = self.run_ctr("--device-cgroup-rule", "c 10:229 rwm", IMAGE, "sh", "-c", script)
        self.assertNotIn("made", r.out, r)
        self.assertIn("Operation not permitted", r.err, r)
        self.assertIn("lacks CAP_MKNOD", r.err, r)  # run prints create's warnings too
        self.addCleanup(self.berth, "rm", "-f", "nomknod", "rwonly")
        r = self.ok("create", "--name", "nomknod", "--device-cgroup-rule", "c 10:229 rwm", IMAGE)
        self.assertIn("lacks CAP_MKNOD", r.err, r)
        # A rule without m needs no capability: no warning.
        r = self.ok("create", "--name", "rwonly", "--device-cgroup-rule", "c 10:229 rw", IMAGE)
        self.assertNotIn("CAP_MKNOD", r.err, r)

    def test_seccomp_default_unconfined_and_profile(self):
        def seccomp_mode(*opts):
            r = self.run_ctr(*opts, IMAGE, "grep", "^Seccomp:", "/proc/self/status")
            self.assertEqual(r.rc, 0, r)
            return r.out.split()[1]
        self.assertEqual(seccomp_mode(), "2")
        self.assertEqual(seccomp_mode("--security-opt", "seccomp=unconfined"), "0")
        profile = os.path.join(self.tmp, "nomkdir.json")
        with open(profile, "w") as f:
            json.dump({"defaultAction": "SCMP_ACT_ALLOW",
                       "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO",
                                     "errnoRet": 1}]}, f)
        r = self.run_ctr("--security-opt", "seccomp=" + profile, IMAGE, "mkdir", "/tmp/d")
        self.assertNotEqual(r.rc, 0, r)
        self.assertIn("Operation not permitted", r.err)
        self.assertEqual(self.run_ctr(IMAGE, "mkdir", "/tmp/d").rc, 0)
        r = self.berth("run", "--rm", "--security-opt", "seccomp=/no/such.json", IMAGE, "true")
        self.assertEqual(r.rc, 125, r)
        self.assertIn("/no/such.json", r.err)

    def test_mask_and_unmask(self):
        # /proc/keys is masked by default: /dev/null bound over it (/proc/kcore, also masked,
        # does not exist on every kernel).
        r = self.run_ctr(IMAGE, "ls", "-l", "/proc/keys")
        self.assertTrue(r.out.startswith("c"), r)
        r = self.run_ctr("--security-opt", "unmask=/proc/keys", IMAGE, "ls", "-l",
                         "/proc/keys")
        self.assertTrue(r.out.startswith("-"), r)
        r = self.run_ctr("--security-opt", "mask=/root", IMAGE, "touch", "/root/x")
        self.assertNotEqual(r.rc, 0, r)
        self.assertIn("Read-only file system", r.err)
        # label= and apparmor=unconfined are accepted (no SELinux or AppArmor here).
        r = self.run_ctr("--security-opt", "label=disable", "--security-opt",
                         "apparmor=unconfined", IMAGE, "true")
        self.assertEqual(r.rc, 0, r)
        r = self.berth("run", "--rm", "--security-opt", "bogus=1", IMAGE, "true")
        self.assertEqual(r.rc, 125, r)
        self.assertIn("bogus=1", r.err)

    def test_group_add_and_shm_size(self):
        r = self.run_ctr("--group-add", "nogroup", "--group-add", "4242", IMAGE, "id", "-G")
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(set(r.out.split()), {"0", "65534", "4242"}, r)
        r = self.run_ctr("--shm-size", "100m", IMAGE, "df", "-k", "/dev/shm")
        self.assertEqual(r.rc, 0, r)
        self.assertIn(str(100 * 1024), r.out, r)

    def test_no_new_privileges(self):
        r = self.run_ctr("--security-opt", "no-new-privileges", IMAGE, "grep", "^NoNewPrivs:",
                         "/proc/self/status")
        self.assertEqual(r.out.split()[1], "1", r)
        r = self.run_ctr(IMAGE, "grep", "^NoNewPrivs:", "/proc/self/status")
        self.assertEqual(r.out.split()[1], "0", r)

    def test_userns_needs_idmapped_overlay(self):
        # This class's store is vfs: a rootfs for a user namespace is made with idmapped overlay
        # layers (test_userns.py covers them), so the mode is refused, naming the driver.
        self.assertEqual(self.run_ctr("--userns", "host", IMAGE, "true").rc, 0)
        r = self.berth("run", "--rm", "--userns", "auto", IMAGE, "true")
        self.assertEqual(r.rc, 125, r)
        self.assertIn("vfs driver", r.err)


class NamespacesTest(ResourceTestCase):
    def test_pid_host(self):
        mine = os.readlink("/proc/self/ns/pid")
        r = self.berth("run", "--rm", "--pid", "host", IMAGE, "readlink", "/proc/self/ns/pid")
        self.assertEqual((r.rc, r.out.strip()), (0, mine), r)
        r = self.berth("run", "--rm", IMAGE, "readlink", "/proc/self/ns/pid")
        self.assertNotEqual(r.out.strip(), mine)
        self.assertEqual(self.inspect_mode("--pid", "host", "PidMode"), "host")

    def inspect_mode(self, flag, value, key):
        r = self.ok("create", flag, value, IMAGE, "true")
        cid = r.out.strip().splitlines()[-1]
        self.addCleanup(self.berth, "rm", "-f", cid)
        return self.inspect(cid)["HostConfig"][key]

    def test_uts_and_ipc_host(self):
        host = os.uname().nodename
        r = self.berth("run", "--rm", "--uts", "host", IMAGE, "hostname")
        self.assertEqual(r.out.strip(), host, r)
        mine = os.readlink("/proc/self/ns/ipc")
        r = self.berth("run", "--rm", "--ipc", "host", IMAGE, "readlink", "/proc/self/ns/ipc")
        self.assertEqual(r.out.strip(), mine, r)

    def test_join_another_containers_namespaces(self):
        self.run_detached("nsowner", IMAGE, "sleep", "300")
        pid = self.inspect("nsowner")["State"]["Pid"]
        # Both runtimes: runc proves the spec berth writes, the native one joins the pid
        # namespace before it clones the init (as it does for exec).
        for flag, ns, rt in [("--ipc", "ipc", []), ("--uts", "uts", []), ("--pid", "pid", []),
                             ("--pid", "pid", ["--runtime", "runc"])]:
            want = os.readlink(f"/proc/{pid}/ns/{ns}")
            r = self.berth("run", "--rm", *rt, flag, "container:nsowner", IMAGE, "readlink",
                           f"/proc/self/ns/{ns}")
            self.assertEqual((r.rc, r.out.strip()), (0, want), (flag, r))
        # ps in the joined container sees the first one's processes (its init is pid 1 there).
        r = self.ok("run", "--rm", "--pid", "container:nsowner", IMAGE, "ps", "-o", "pid,args")
        self.assertIn(["1", "sleep 300"], [line.split(None, 1) for line in r.out.splitlines()])
        r = self.berth("run", "--rm", "--pid", "container:no-such", IMAGE, "true")
        self.assertEqual(r.rc, 125, r)


if __name__ == "__main__":
    unittest.main()
