"""User namespaces as root, as Podman has them: --userns=auto (ranges of the user "containers" in
/etc/subuid and /etc/subgid), --uidmap/--gidmap, container:NAME, ns:PATH, the rootless-only modes
refused; the rootfs shown through idmapped overlay layers (the shared layers never chowned)."""
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import time
import unittest

from container_fixture import ContainerTestCase, IMAGE

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "network"))
from test_container_net import fetch, free_port, links, short_hash  # noqa: E402

SUBID_LINE = "containers:2147483647:2147483648"


def ensure_containers_user():
    """What scripts/setup.sh does: the user whose subordinate ranges --userns=auto hands out."""
    if subprocess.run(["id", "containers"], capture_output=True).returncode != 0:
        subprocess.run(["useradd", "--system", "--no-create-home", "containers"], check=True,
                       capture_output=True)
    for path in ("/etc/subuid", "/etc/subgid"):
        text = ""
        if os.path.exists(path):
            with open(path) as f:
                text = f.read()
        if not any(line.startswith("containers:") for line in text.splitlines()):
            with open(path, "a") as f:
                f.write(("" if text.endswith("\n") or not text else "\n") + SUBID_LINE + "\n")


def subid_range(path):
    with open(path) as f:
        for line in f:
            name, start, count = line.strip().split(":")
            if name == "containers":
                return int(start), int(count)
    raise AssertionError("no containers range in " + path)


def parse_map(text):
    return [tuple(int(x) for x in line.split()) for line in text.strip().splitlines()]


def triplets(strings):
    return [tuple(int(x) for x in s.split(":")) for s in strings]


def mount_points():
    with open("/proc/self/mountinfo") as f:
        return [line.split()[4] for line in f]


class UsernsTestCase(ContainerTestCase):
    storage_driver = "overlay"

    @classmethod
    def setUpClass(cls):
        ensure_containers_user()
        super().setUpClass()
        # mkdtemp's 0700 would keep a container's root (a mapped host uid) out of the store
        # below it; berth refuses that with advice instead of changing what is not its own.
        os.chmod(cls.tmp, 0o711)

    def run_detached(self, name, *args):
        r = self.ok("run", "-d", "--name", name, *args)
        self.addCleanup(self.berth, "rm", "-f", "-t", "0", name)
        return r.out.strip().splitlines()[-1]

    def host_config(self, name):
        return self.json("inspect", name)[0]["HostConfig"]


class AutoTest(UsernsTestCase):
    def test_auto_map_root_inside_and_inspect(self):
        r = self.ok("run", "--rm", "--userns=auto", IMAGE, "sh", "-c",
                    "cat /proc/self/uid_map; echo --; cat /proc/self/gid_map; echo --; id -u; "
                    "id -g; stat -c %u:%g /bin/busybox /etc/passwd /")
        uid_map, gid_map, rest = r.out.split("--\n")
        (cu, hu, nu), = parse_map(uid_map)
        (cg, hg, ng), = parse_map(gid_map)
        start, count = subid_range("/etc/subuid")
        self.assertEqual((cu, nu), (0, 1024), uid_map)  # the image's ids fit the minimum, 1024
        self.assertEqual((cg, ng), (0, 1024), gid_map)
        self.assertTrue(start <= hu and hu + nu <= start + count, uid_map)
        gstart, gcount = subid_range("/etc/subgid")
        self.assertTrue(gstart <= hg and hg + ng <= gstart + gcount, gid_map)
        self.assertEqual(rest.split(), ["0", "0", "0:0", "0:0", "0:0"], r.out)

        self.run_detached("auto1", "--userns=auto:size=4096", IMAGE, "sleep", "300")
        hc = self.host_config("auto1")
        self.assertEqual(hc["UsernsMode"], "auto:size=4096")
        (c, h, n), = triplets(hc["IDMappings"]["UidMap"])
        self.assertEqual((c, n), (0, 4096))
        self.assertEqual(len(hc["IDMappings"]["GidMap"]), 1)
        inside = self.ok("exec", "auto1", "cat", "/proc/self/uid_map").out
        self.assertEqual(parse_map(inside), [(0, h, 4096)])
        self.assertEqual(self.ok("exec", "auto1", "id", "-u").out.strip(), "0")
        # Without --userns nothing changes: the host's namespace.
        self.assertEqual(parse_map(self.ok("run", "--rm", IMAGE, "cat",
                                           "/proc/self/uid_map").out),
                         [(0, 0, 4294967295)])
        self.ok("create", "--name", "hostns", IMAGE, "true")
        self.addCleanup(self.berth, "rm", "-f", "hostns")
        hc = self.host_config("hostns")
        self.assertEqual(hc["UsernsMode"], "")
        self.assertNotIn("IDMappings", hc)

    def test_auto_with_extra_mapping(self):
        r = self.ok("run", "--rm", "--userns=auto:size=2048,uidmapping=5000:2147483000:10", IMAGE,
                    "cat", "/proc/self/uid_map")
        rows = parse_map(r.out)
        self.assertIn((5000, 2147483000, 10), rows)
        self.assertEqual(sum(n for c, h, n in rows if c < 2048), 2048)

    def test_files_created_inside_are_the_mapped_host_ids(self):
        vol = os.path.join(self.tmp, "vol-owned")
        os.makedirs(vol, exist_ok=True)
        os.chmod(vol, 0o777)
        self.run_detached("owner", "--userns=auto", "-v", vol + ":/data", IMAGE, "sh", "-c",
                          "touch /data/f /made-here; mkdir /etc/newdir; exec sleep 300")
        hc = self.host_config("owner")
        (_, hu, _), = triplets(hc["IDMappings"]["UidMap"])
        (_, hg, _), = triplets(hc["IDMappings"]["GidMap"])
        for _ in range(100):
            if os.path.exists(os.path.join(vol, "f")):
                break
            subprocess.run(["sleep", "0.05"])
        st = os.stat(os.path.join(vol, "f"))
        self.assertEqual((st.st_uid, st.st_gid), (hu, hg))
        merged = self.ok("mount", "owner").out.strip()
        self.addCleanup(self.berth, "unmount", "owner")
        for p in ("made-here", "etc/newdir", "bin/busybox", "etc/passwd", ""):
            st = os.lstat(os.path.join(merged, p))
            self.assertEqual((st.st_uid, st.st_gid), (hu, hg), p)
        # The image's layers stay as they were: owned by 0 on disk.
        layers = os.path.join(self.root, "overlay")
        busyboxes = [os.path.join(d, "diff", "bin", "busybox") for d in
                     (os.path.join(layers, x) for x in os.listdir(layers))
                     if os.path.exists(os.path.join(d, "diff", "bin", "busybox"))]
        self.assertTrue(busyboxes)
        for b in busyboxes:
            self.assertEqual(os.stat(b).st_uid, 0, b)

    def test_volumes_and_binds(self):
        # A new named volume belongs to the container's root, mapped; a bind with U is chowned
        # to it; a plain bind stays as it is (here root's 0700 directory above a 0777 one:
        # the runtime clones bind sources as the host's root, so the path need not be
        # searchable by the mapped root).
        priv = os.path.join(self.tmp, "priv")
        os.makedirs(os.path.join(priv, "open"))
        os.chmod(priv, 0o700)
        os.chmod(os.path.join(priv, "open"), 0o777)
        chowned = os.path.join(self.tmp, "chowned")
        os.makedirs(chowned)
        r = self.ok("run", "--name", "vols", "--userns=auto", "-v", "uvol:/vol",
                    "-v", priv + "/open:/open", "-v", chowned + ":/chowned:U", IMAGE, "sh", "-c",
                    "touch /vol/a /open/b /chowned/c && stat -c %u:%g /vol /vol/a /open/b "
                    "/chowned /chowned/c")
        self.addCleanup(self.berth, "rm", "-f", "vols")
        self.addCleanup(self.berth, "volume", "rm", "-f", "uvol")
        self.assertEqual(r.out.split(), ["0:0"] * 5, r)
        (_, hu, _), = triplets(self.host_config("vols")["IDMappings"]["UidMap"])
        (_, hg, _), = triplets(self.host_config("vols")["IDMappings"]["GidMap"])
        mountpoint = self.json("volume", "inspect", "uvol")[0]["Mountpoint"]
        for p in (mountpoint, os.path.join(mountpoint, "a"), os.path.join(priv, "open", "b"),
                  chowned, os.path.join(chowned, "c")):
            st = os.stat(p)
            self.assertEqual((st.st_uid, st.st_gid), (hu, hg), p)
        self.assertEqual(os.stat(priv).st_uid, 0)

    def test_commit_keeps_the_containers_ids(self):
        # The upper dir holds host ids; the committed layer has the container's own.
        self.ok("run", "--name", "tocommit", "--network", "none", "--userns=auto", IMAGE, "sh",
                "-c", "echo hi > /made && mkdir /etc/d && chown 5:6 /etc/d")
        self.addCleanup(self.berth, "rm", "-f", "tocommit")
        self.ok("commit", "tocommit", "localhost/committed-userns")
        self.addCleanup(self.berth, "rmi", "-f", "localhost/committed-userns")
        r = self.ok("run", "--rm", "--network", "none", "localhost/committed-userns", "stat",
                    "-c", "%u:%g", "/made", "/etc/d", "/etc")
        self.assertEqual(r.out.split(), ["0:0", "5:6", "0:0"])

    def test_map_survives_stop_and_start(self):
        self.run_detached("again", "--userns=auto", IMAGE, "sleep", "300")
        first = self.ok("exec", "again", "cat", "/proc/self/uid_map").out
        self.ok("stop", "-t", "0", "again")
        self.ok("start", "again")
        self.assertEqual(self.ok("exec", "again", "cat", "/proc/self/uid_map").out, first)
        self.assertEqual(self.ok("exec", "again", "stat", "-c", "%u", "/bin/busybox").out.strip(),
                         "0")

    def test_two_concurrent_autos_do_not_overlap_and_rm_releases(self):
        procs = [subprocess.Popen(self.cmd() + ["create", "--name", n, "--userns=auto", IMAGE,
                                                "true"], env=self.env, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True) for n in ("c1", "c2")]
        for p in procs:
            out, err = p.communicate(timeout=120)
            self.assertEqual(p.returncode, 0, err)
        self.addCleanup(self.berth, "rm", "-f", "c1", "c2")
        ranges = []
        for n in ("c1", "c2"):
            (_, h, size), = triplets(self.host_config(n)["IDMappings"]["UidMap"])
            ranges.append((h, h + size))
        (a0, a1), (b0, b1) = sorted(ranges)
        self.assertLessEqual(a1, b0, ranges)
        # rm frees the range: the next container gets the lowest free one again.
        low = min(ranges)
        owner = "c1" if triplets(self.host_config("c1")["IDMappings"]["UidMap"])[0][1] == low[0] \
            else "c2"
        self.ok("rm", owner)
        self.ok("create", "--name", "c3", "--userns=auto", IMAGE, "true")
        self.addCleanup(self.berth, "rm", "-f", "c3")
        (_, h3, _), = triplets(self.host_config("c3")["IDMappings"]["UidMap"])
        self.assertEqual(h3, low[0])


class BoundaryIdsTest(UsernsTestCase):
    """Files crossing the container's boundary carry the ids the container sees: export, cp out
    and commit write container ids (an id outside the maps as the kernel's 65534), cp in writes
    the host ids the container's ids stand for (and refuses ids the namespace cannot hold)."""

    def setUp(self):
        self.run_detached("ids", "--network", "none", "--userns=auto", IMAGE, "sleep", "300")
        self.ok("exec", "ids", "sh", "-c", "echo hi > /made && mkdir /d && chown 5:6 /d")
        hc = self.host_config("ids")
        (_, self.hu, self.size), = triplets(hc["IDMappings"]["UidMap"])
        (_, self.hg, _), = triplets(hc["IDMappings"]["GidMap"])
        self.assertEqual(self.size, 1024)
        # A file the host's root puts into the rootfs: host uid 0, outside the container's maps.
        merged = self.ok("mount", "ids").out.strip()
        self.addCleanup(self.berth, "unmount", "ids")
        with open(os.path.join(merged, "stray"), "w") as f:
            f.write("from the host\n")
        os.chown(os.path.join(merged, "stray"), 0, 0)
        self.merged = merged

    def tar_owners(self, data):
        with tarfile.open(fileobj=io.BytesIO(data)) as t:
            return {m.name.rstrip("/"): (m.uid, m.gid) for m in t.getmembers()}

    def run_bytes(self, *args, input=None):
        p = subprocess.run(self.cmd() + list(args), input=input, capture_output=True,
                           env=self.env, timeout=120)
        self.assertEqual(p.returncode, 0, p.stderr)
        return p.stdout

    def test_inside_view(self):
        # What the other tests expect of the tars is what the container itself sees.
        r = self.ok("exec", "ids", "stat", "-c", "%u:%g", "/made", "/d", "/stray", "/bin/busybox")
        self.assertEqual(r.out.split(), ["0:0", "5:6", "65534:65534", "0:0"])
        st = os.lstat(os.path.join(self.merged, "made"))
        self.assertEqual((st.st_uid, st.st_gid), (self.hu, self.hg))

    def test_export_has_the_containers_ids(self):
        out = os.path.join(self.tmp, "ids-export.tar")
        self.ok("export", "-o", out, "ids")
        with open(out, "rb") as f:
            owners = self.tar_owners(f.read())
        self.assertEqual(owners["made"], (0, 0))
        self.assertEqual(owners["d"], (5, 6))
        self.assertEqual(owners["bin/busybox"], (0, 0))
        self.assertEqual(owners["etc/passwd"], (0, 0))
        self.assertEqual(owners["stray"], (65534, 65534))
        self.assertNotIn((self.hu, self.hg), owners.values())

    def test_commit_then_run_shows_root_owned_files(self):
        self.ok("commit", "ids", "localhost/ids-committed")
        self.addCleanup(self.berth, "rmi", "-f", "localhost/ids-committed")
        r = self.ok("run", "--rm", "--network", "none", "localhost/ids-committed", "stat", "-c",
                    "%u:%g", "/made", "/d", "/stray", "/bin/busybox")
        self.assertEqual(r.out.split(), ["0:0", "5:6", "65534:65534", "0:0"])

    def test_cp_out_has_the_containers_ids(self):
        self.assertEqual(self.tar_owners(self.run_bytes("cp", "ids:/made", "-")),
                         {"made": (0, 0)})
        # Every entry is the container's user's (root here), as Podman's `cp CTR:PATH -`.
        self.assertEqual(self.tar_owners(self.run_bytes("cp", "ids:/stray", "-")),
                         {"stray": (0, 0)})
        self.assertEqual(self.tar_owners(self.run_bytes("cp", "ids:/etc", "-"))["etc/passwd"],
                         (0, 0))
        out = os.path.join(self.tmp, "ids-out")
        os.makedirs(out, exist_ok=True)
        self.ok("cp", "ids:/d", out)
        self.ok("cp", "ids:/made", os.path.join(out, "made-copy"))
        # Copies to the host belong to the user running cp (Podman, Docker).
        st = os.lstat(os.path.join(out, "d"))
        self.assertEqual((st.st_uid, st.st_gid), (os.getuid(), os.getgid()))
        st = os.lstat(os.path.join(out, "made-copy"))
        self.assertEqual((st.st_uid, st.st_gid), (os.getuid(), os.getgid()))

    def test_cp_in_is_owned_as_the_container_sees_it(self):
        src = os.path.join(self.tmp, "ids-in")
        os.makedirs(os.path.join(src, "tree"), exist_ok=True)
        for name, owner in (("rootfile", (0, 0)), ("tree/leaf", (7, 8))):
            with open(os.path.join(src, name), "w") as f:
                f.write(name + "\n")
            os.chown(os.path.join(src, name), *owner)
        os.chown(os.path.join(src, "tree"), 0, 0)
        # --archive=false: the source's owners, not the container user's (cp's default).
        self.ok("cp", "--archive=false", os.path.join(src, "rootfile"), "ids:/tmp")
        self.ok("cp", "--archive=false", os.path.join(src, "tree"), "ids:/tmp")
        r = self.ok("exec", "ids", "stat", "-c", "%u:%g", "/tmp/rootfile", "/tmp/tree",
                    "/tmp/tree/leaf")
        self.assertEqual(r.out.split(), ["0:0", "0:0", "7:8"])
        st = os.lstat(os.path.join(self.merged, "tmp", "rootfile"))
        self.assertEqual((st.st_uid, st.st_gid), (self.hu, self.hg))
        st = os.lstat(os.path.join(self.merged, "tmp", "tree", "leaf"))
        self.assertEqual((st.st_uid, st.st_gid), (self.hu + 7, self.hg + 8))
        # A tar on stdin: its ids are the container's too.
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as t:
            ti = tarfile.TarInfo("streamed")
            data = b"streamed in\n"
            ti.size = len(data)
            ti.uid, ti.gid = 77, 78
            t.addfile(ti, io.BytesIO(data))
        self.run_bytes("cp", "--archive=false", "-", "ids:/tmp", input=buf.getvalue())
        r = self.ok("exec", "ids", "sh", "-c", "stat -c %u:%g /tmp/streamed; cat /tmp/streamed")
        self.assertEqual(r.out, "77:78\nstreamed in\n")

    def test_cp_in_refuses_ids_the_namespace_cannot_hold(self):
        src = os.path.join(self.tmp, "ids-far")
        os.makedirs(src, exist_ok=True)
        far = os.path.join(src, "far")
        with open(far, "w") as f:
            f.write("x\n")
        os.chown(far, 5000, 0)  # the namespace maps uids 0-1023
        r = self.berth("cp", "--archive=false", far, "ids:/tmp")
        self.assertEqual(r.rc, 125, r)
        self.assertIn(far + " is owned by uid 5000, which the container's user namespace "
                      "does not map", r.err)
        self.assertIn("0:%d:1024" % self.hu, r.err)
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as t:
            ti = tarfile.TarInfo("far-streamed")
            ti.gid = 4000
            t.addfile(ti, io.BytesIO(b""))
        p = subprocess.run(self.cmd() + ["cp", "--archive=false", "-", "ids:/tmp"],
                           input=buf.getvalue(),
                           capture_output=True, env=self.env, timeout=120)
        self.assertEqual(p.returncode, 125, p.stderr)
        self.assertIn(b'"far-streamed" of the tar on stdin is owned by gid 4000', p.stderr)
        r = self.ok("exec", "ids", "ls", "/tmp")
        self.assertNotIn("far", r.out)


class ExplicitMapsTest(UsernsTestCase):
    def test_uidmap_and_gidmap(self):
        r = self.ok("run", "--rm", "--uidmap", "0:200000:5000", "--gidmap", "0:300000:5000",
                    IMAGE, "sh", "-c", "cat /proc/self/uid_map /proc/self/gid_map; id -u")
        lines = r.out.strip().splitlines()
        self.assertEqual(parse_map("\n".join(lines[:2])), [(0, 200000, 5000), (0, 300000, 5000)])
        self.assertEqual(lines[2], "0")

    def test_uidmap_alone_is_used_for_gids(self):
        self.run_detached("onlyuid", "--uidmap", "0:400000:2000", IMAGE, "sleep", "300")
        hc = self.host_config("onlyuid")
        self.assertEqual(hc["IDMappings"], {"UidMap": ["0:400000:2000"],
                                            "GidMap": ["0:400000:2000"]})
        self.assertEqual(parse_map(self.ok("exec", "onlyuid", "cat", "/proc/self/gid_map").out),
                         [(0, 400000, 2000)])

    def test_bad_maps_are_refused(self):
        for args, text in ((["--uidmap", "0:1"], "CONTAINER:HOST:SIZE"),
                           (["--uidmap", "1:100000:10"], "must map container uid and gid 0"),
                           (["--userns=auto", "--uidmap", "0:100000:10"], "cannot be combined"),
                           (["--userns=auto:bogus=1"], "unknown option specified"),
                           (["--userns=weird"], "want host, auto")):
            r = self.berth("run", "--rm", *args, IMAGE, "true")
            self.assertEqual(r.rc, 125, r)
            self.assertIn(text, r.err)


class RootlessModesTest(UsernsTestCase):
    def test_keep_id_and_nomap_are_rootless_only(self):
        for mode in ("keep-id", "keep-id:uid=1000", "nomap"):
            r = self.berth("run", "--rm", "--name", "never", "--userns=" + mode, IMAGE, "true")
            self.assertEqual(r.rc, 125, r)
            self.assertIn(mode.split(":")[0] + " is only supported in rootless mode", r.err)
            self.assertNotEqual(self.berth("container", "exists", "never").rc, 0)


class JoinTest(UsernsTestCase):
    def test_container_and_ns_path(self):
        self.run_detached("owner-ns", "--userns=auto", IMAGE, "sleep", "300")
        cid = self.json("inspect", "owner-ns")[0]["Id"]
        ns = self.ok("exec", "owner-ns", "readlink", "/proc/self/ns/user").out.strip()
        uid_map = self.ok("exec", "owner-ns", "cat", "/proc/self/uid_map").out
        r = self.ok("run", "--rm", "--userns=container:owner-ns", IMAGE, "sh", "-c",
                    "readlink /proc/self/ns/user; cat /proc/self/uid_map; "
                    "stat -c %u /bin/busybox; id -u")
        lines = r.out.strip().splitlines()
        self.assertEqual(lines[0], ns)
        self.assertEqual(parse_map(lines[1]), parse_map(uid_map))
        self.assertEqual(lines[2:], ["0", "0"])
        self.run_detached("joiner", "--userns=container:owner-ns", IMAGE, "sleep", "300")
        self.assertEqual(self.host_config("joiner")["UsernsMode"], "container:" + cid)

        pid = self.json("inspect", "owner-ns")[0]["State"]["Pid"]
        r = self.ok("run", "--rm", "--userns=ns:/proc/%d/ns/user" % pid, IMAGE, "readlink",
                    "/proc/self/ns/user")
        self.assertEqual(r.out.strip(), ns)

    def test_container_without_userns_is_refused(self):
        self.run_detached("plain", IMAGE, "sleep", "300")
        r = self.berth("run", "--rm", "--userns=container:plain", IMAGE, "true")
        self.assertEqual(r.rc, 125, r)
        self.assertIn("has no user namespace of its own", r.err)


class PidJoinTest(UsernsTestCase):
    def test_pid_container_sees_the_other_processes(self):
        self.run_detached("pidowner", IMAGE, "sh", "-c", "exec sleep 4321")
        r = self.ok("run", "--rm", "--pid", "container:pidowner", IMAGE, "ps", "-o", "pid,args")
        self.assertIn("sleep 4321", r.out)
        rows = [line.split(None, 1) for line in r.out.strip().splitlines()[1:]]
        self.assertIn(["1", "sleep 4321"], rows)
        # and the same with a user namespace joined alongside
        self.run_detached("pidowner2", "--userns=auto", IMAGE, "sh", "-c", "exec sleep 4322")
        r = self.ok("run", "--rm", "--pid", "container:pidowner2", "--userns",
                    "container:pidowner2", IMAGE, "ps", "-o", "pid,args")
        self.assertIn("sleep 4322", r.out)


@unittest.skipUnless(shutil.which("runc"), "runc is not installed")
class RuncTest(UsernsTestCase):
    def test_runc_gets_the_same_maps(self):
        # The default network: runc makes the namespace in the container's user namespace.
        r = self.ok("run", "--rm", "--runtime", "runc", "--userns=auto:size=2000", IMAGE, "sh",
                    "-c", "cat /proc/self/uid_map; id -u; stat -c %u /bin/busybox")
        lines = r.out.strip().splitlines()
        (c, h, n), = parse_map(lines[0])
        self.assertEqual((c, n), (0, 2000))
        self.assertEqual(lines[1:], ["0", "0"])
        # runc 1.1 joins the user namespace first on exec, and then may not join a network
        # namespace berth made: exec is checked with a namespace of the container's own.
        self.run_detached("viarunc", "--runtime", "runc", "--network", "none", "--userns=auto",
                          IMAGE, "sleep", "300")
        hc = self.host_config("viarunc")
        (_, h, n), = triplets(hc["IDMappings"]["UidMap"])
        spec_path = self.json("inspect", "viarunc")[0]["OCIConfigPath"]
        with open(spec_path) as f:
            spec = json.load(f)
        self.assertEqual(spec["linux"]["uidMappings"], [{"containerID": 0, "hostID": h,
                                                          "size": n}])
        self.assertIn({"type": "user"}, spec["linux"]["namespaces"])
        r = self.ok("exec", "viarunc", "sh", "-c", "cat /proc/self/uid_map; id -u; "
                    "stat -c %u /bin/busybox")
        lines = r.out.strip().splitlines()
        self.assertEqual(parse_map(lines[0]), [(0, h, n)])
        self.assertEqual(lines[1:], ["0", "0"])

    def test_runc_joins_another_containers_user_namespace(self):
        # runc 1.1 wants the maps of a joined namespace in the spec ("User namespaces enabled,
        # but no uid mappings found"): berth writes them as the namespace has them.
        self.run_detached("rowner", "--network", "none", "--userns=auto", IMAGE, "sleep", "300")
        ns = self.ok("exec", "rowner", "readlink", "/proc/self/ns/user").out.strip()
        uid_map = self.ok("exec", "rowner", "cat", "/proc/self/uid_map").out
        pid = self.json("inspect", "rowner")[0]["State"]["Pid"]
        for mode in ("container:rowner", "ns:/proc/%d/ns/user" % pid):
            r = self.ok("run", "--rm", "--runtime", "runc", "--network", "none", "--userns",
                        mode, IMAGE, "sh", "-c", "readlink /proc/self/ns/user; "
                        "cat /proc/self/uid_map; id -u")
            lines = r.out.strip().splitlines()
            self.assertEqual(lines[0], ns, mode)
            self.assertEqual(parse_map(lines[1]), parse_map(uid_map), mode)
            self.assertEqual(lines[2], "0", mode)
        self.run_detached("rjoiner", "--runtime", "runc", "--network", "none",
                          "--userns=container:rowner", IMAGE, "sleep", "300")
        with open(self.json("inspect", "rjoiner")[0]["OCIConfigPath"]) as f:
            spec = json.load(f)
        (c, h, n), = parse_map(uid_map)
        self.assertEqual(spec["linux"]["uidMappings"], [{"containerID": c, "hostID": h,
                                                          "size": n}])
        self.assertEqual(self.ok("exec", "rjoiner", "readlink", "/proc/self/ns/user").out.strip(),
                         ns)

    def test_runc_on_the_default_bridge(self):
        # runc joins the user namespace first, also on exec: the network namespace is made by
        # runc in the container's user namespace, then bound at berth's path and plumbed.
        port = free_port()
        cid = self.run_detached("rbr", "--runtime", "runc", "--userns=auto", "-p",
                                f"127.0.0.1:{port}:80", IMAGE, "sh", "-c",
                                "mkdir -p /www && echo hello-rbr > /www/index.html && "
                                "exec httpd -f -p 80 -h /www")
        info = self.json("inspect", "rbr")[0]
        with open(info["OCIConfigPath"]) as f:
            self.assertIn({"type": "network"}, json.load(f)["linux"]["namespaces"])
        sandbox = info["NetworkSettings"]["SandboxKey"]
        self.assertEqual(sandbox, os.path.join(self.runroot, "netns", "berth-" + cid))
        ip = info["NetworkSettings"]["IPAddress"]
        self.assertTrue(ip, info["NetworkSettings"])

        def check_running():
            # exec enters every namespace of the container, the network one included
            r = self.ok("exec", "rbr", "sh", "-c", "ip -4 -o addr show eth0; "
                        "readlink /proc/self/ns/net; cat /proc/sys/net/ipv4/ping_group_range")
            lines = r.out.strip().splitlines()
            self.assertIn(f"inet {ip}/", lines[0])
            # containers.conf's default net.* sysctls, set by runc in a namespace it owns
            self.assertEqual(lines[2].split(), ["0", "0"])
            # berth's path is the container's own namespace
            self.assertEqual(lines[1], f"net:[{os.stat(sandbox).st_ino}]")
            self.assertIn(sandbox, mount_points())
            self.assertIn("vb" + short_hash(f"{cid}/berth"), links())
            self.assertEqual(fetch(f"http://{ip}/"), "hello-rbr\n")
            self.assertEqual(fetch(f"http://127.0.0.1:{port}/"), "hello-rbr\n")
            r = self.ok("run", "--rm", IMAGE, "wget", "-qO-", f"http://{ip}/")
            self.assertEqual(r.out, "hello-rbr\n")
            for joiner in ([], ["--runtime", "runc"]):
                r = self.ok("run", "--rm", *joiner, "--network", "container:rbr", IMAGE, "wget",
                            "-qO-", "http://127.0.0.1/")
                self.assertEqual(r.out, "hello-rbr\n", joiner)
            return lines[1]

        first = check_running()
        # An OCI runtime in a user namespace of its own could not enter it (on exec).
        r = self.berth("run", "--rm", "--runtime", "runc", "--userns=auto", "--network",
                       "container:rbr", IMAGE, "true")
        self.assertEqual(r.rc, 125, r)
        self.assertIn("--userns container:rbr", r.err)
        # Each start makes the namespace anew (the old one held open, so its number is not
        # handed out again).
        old_ns = os.open(sandbox, os.O_RDONLY)
        self.addCleanup(os.close, old_ns)
        self.ok("stop", "-t", "0", "rbr")
        self.ok("start", "rbr")
        self.assertNotEqual(check_running(), first)
        self.ok("rm", "-f", "-t", "0", "rbr")
        self.assertFalse(os.path.exists(sandbox))
        self.assertNotIn(sandbox, mount_points())
        self.assertNotIn("vb" + short_hash(f"{cid}/berth"), links())
        nft = subprocess.run(["nft", "list", "ruleset"], capture_output=True, text=True).stdout
        self.assertNotIn("ct-" + short_hash(cid), nft)
        with self.assertRaises(AssertionError):
            fetch(f"http://127.0.0.1:{port}/", attempts=1)

    def test_runc_plumbing_failure_leaves_nothing(self):
        # The network is plumbed after runc created the container: a failure there (an address
        # taken) removes the container from runc, and the create is undone.
        holder = self.run_detached("holder", IMAGE, "sleep", "300")
        ip = self.json("inspect", "holder")[0]["NetworkSettings"]["IPAddress"]
        r = self.berth("run", "-d", "--name", "taker", "--runtime", "runc", "--userns=auto",
                       "--ip", ip, IMAGE, "sleep", "300")
        self.addCleanup(self.berth, "rm", "-f", "-t", "0", "taker")
        self.assertEqual(r.rc, 125, r)
        self.assertIn(f"IP address {ip}", r.err)
        self.assertNotEqual(self.berth("container", "exists", "taker").rc, 0)
        runc_root = os.path.join(self.runroot, "oci-runc")
        listed = subprocess.run(["runc", "--root", runc_root, "list", "-q"], capture_output=True,
                                text=True)
        self.assertEqual(listed.stdout.split(), [], listed)
        netns = os.path.join(self.runroot, "netns")
        self.assertEqual(os.listdir(netns), ["berth-" + holder])
        self.assertEqual([p for p in mount_points() if p.startswith(netns + "/")],
                         [os.path.join(netns, "berth-" + holder)])


if __name__ == "__main__":
    unittest.main()
