"""Issue 6 part 5 through the CLI: cp (both ways, tar streams, symlinks kept inside the
container), diff, export, commit, container mount/unmount."""
import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile
import time
import unittest

from mounts_fixture import IMAGE, MountsTestCase

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "resources"))

from test_userns import ensure_containers_user  # noqa: E402


class StorageCommands(MountsTestCase):
    def run_bytes(self, *args, input=None):
        return subprocess.run(self.cmd() + list(args), input=input, capture_output=True,
                              env=self.env, timeout=120)

    def test_cp_both_ways_running(self):
        self.ok("run", "-d", "--name", "cp-run", IMAGE, "sleep", "1000")
        self.addCleanup(self.rm, "cp-run")
        host = self.hostdir("cp-run-host")
        f = os.path.join(host, "hello.txt")
        with open(f, "w") as fh:
            fh.write("hello from the host\n")
        os.chown(f, 4321, 4322)
        os.chmod(f, 0o640)
        # Into an existing directory: keeps its name and mode; owned by the container's user
        # (none given: root), or by the host file's owner with --archive=false.
        self.ok("cp", f, "cp-run:/tmp")
        r = self.ok("exec", "cp-run", "stat", "-c", "%u:%g %a", "/tmp/hello.txt")
        self.assertEqual(r.out, "0:0 640\n")
        self.ok("cp", "--archive=false", f, "cp-run:/tmp")
        r = self.ok("exec", "cp-run", "stat", "-c", "%u:%g %a", "/tmp/hello.txt")
        self.assertEqual(r.out, "4321:4322 640\n")
        self.assertEqual(self.ok("exec", "cp-run", "cat", "/tmp/hello.txt").out,
                         "hello from the host\n")
        # To a new name.
        self.ok("cp", f, "cp-run:/root/renamed")
        self.assertEqual(self.ok("exec", "cp-run", "cat", "/root/renamed").out,
                         "hello from the host\n")
        # A directory, then its content with "/.".
        d = os.path.join(host, "tree")
        os.makedirs(os.path.join(d, "sub"), exist_ok=True)
        with open(os.path.join(d, "sub", "leaf"), "w") as fh:
            fh.write("leaf\n")
        self.ok("cp", d, "cp-run:/tmp")
        self.assertEqual(self.ok("exec", "cp-run", "cat", "/tmp/tree/sub/leaf").out, "leaf\n")
        self.ok("exec", "cp-run", "mkdir", "/tmp/content")
        self.ok("cp", d + "/.", "cp-run:/tmp/content")
        self.assertEqual(self.ok("exec", "cp-run", "cat", "/tmp/content/sub/leaf").out,
                         "leaf\n")

        # Out of the container.
        out = self.hostdir("cp-out")
        self.ok("cp", "cp-run:/etc/passwd", out)
        with open(os.path.join(out, "passwd")) as fh:
            self.assertIn("root:x:0:0", fh.read())
        self.ok("cp", "cp-run:/tmp/tree", os.path.join(out, "tree-copy"))
        with open(os.path.join(out, "tree-copy", "sub", "leaf")) as fh:
            self.assertEqual(fh.read(), "leaf\n")
        st = os.stat(os.path.join(out, "passwd"))
        self.assertEqual((st.st_uid, st.st_gid), (0, 0))
        r = self.berth("cp", "cp-run:/no/such/file", out)
        self.assertEqual(r.rc, 125, r)
        self.assertIn("could not find", r.err)

    def test_cp_tar_streams(self):
        self.ok("run", "-d", "--name", "cp-tar", IMAGE, "sleep", "1000")
        self.addCleanup(self.rm, "cp-tar")
        r = self.run_bytes("cp", "cp-tar:/etc/passwd", "-")
        self.assertEqual(r.returncode, 0, r.stderr)
        with tarfile.open(fileobj=io.BytesIO(r.stdout)) as t:
            self.assertEqual(t.getnames(), ["passwd"])
            self.assertIn(b"root:x:0:0", t.extractfile("passwd").read())
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as t:
            data = b"streamed in\n"
            ti = tarfile.TarInfo("streamed.txt")
            ti.size = len(data)
            ti.uid = 77
            t.addfile(ti, io.BytesIO(data))
        r = self.run_bytes("cp", "-", "cp-tar:/tmp", input=buf.getvalue())
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(self.ok("exec", "cp-tar", "cat", "/tmp/streamed.txt").out,
                         "streamed in\n")
        # The container's user owns it (root here); --archive=false keeps the tar's owner.
        self.assertEqual(self.ok("exec", "cp-tar", "stat", "-c", "%u",
                                 "/tmp/streamed.txt").out, "0\n")
        r = self.run_bytes("cp", "--archive=false", "-", "cp-tar:/tmp", input=buf.getvalue())
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(self.ok("exec", "cp-tar", "stat", "-c", "%u",
                                 "/tmp/streamed.txt").out, "77\n")

    def test_cp_stopped_container(self):
        self.ok("create", "--name", "cp-stopped", IMAGE, "cat", "/dropped")
        self.addCleanup(self.rm, "cp-stopped")
        host = self.hostdir("cp-stopped-host")
        f = os.path.join(host, "dropped")
        with open(f, "w") as fh:
            fh.write("before start\n")
        self.ok("cp", f, "cp-stopped:/dropped")
        self.assertEqual(self.ok("start", "-a", "cp-stopped").out, "before start\n")
        # Exited now: its rootfs is unmounted, cp mounts it again.
        out = self.hostdir("cp-stopped-out")
        self.ok("cp", "cp-stopped:/dropped", os.path.join(out, "back"))
        with open(os.path.join(out, "back")) as fh:
            self.assertEqual(fh.read(), "before start\n")

    def owners(self, ctr, *paths):
        return self.ok("exec", ctr, "stat", "-c", "%u:%g", *paths).out.split()

    def host_tree(self, name, owner=(4321, 4322)):
        """A host directory NAME/tree with tree/sub/leaf and a file NAME/file, all owned by
        `owner`."""
        d = self.hostdir(name)
        os.makedirs(os.path.join(d, "tree", "sub"), exist_ok=True)
        for rel in ("tree/sub/leaf", "file"):
            with open(os.path.join(d, rel), "w") as fh:
                fh.write(rel + "\n")
        for rel in ("tree", "tree/sub", "tree/sub/leaf", "file"):
            os.chown(os.path.join(d, rel), *owner)
        return d

    def test_cp_chowns_to_the_containers_numeric_user(self):
        self.ok("run", "-d", "--name", "cp-uid", "-u", "1234:2345", IMAGE, "sleep", "1000")
        self.addCleanup(self.rm, "cp-uid")
        d = self.host_tree("cp-uid-host")
        self.ok("cp", os.path.join(d, "file"), "cp-uid:/tmp/")
        self.assertEqual(self.owners("cp-uid", "/tmp/file"), ["1234:2345"])
        # A directory: every entry, recursively.
        self.ok("cp", os.path.join(d, "tree"), "cp-uid:/tmp")
        self.assertEqual(self.owners("cp-uid", "/tmp/tree", "/tmp/tree/sub",
                                     "/tmp/tree/sub/leaf"), ["1234:2345"] * 3)
        # --archive=false keeps the host's owners; -a alone is --archive=true.
        self.ok("cp", "--archive=false", os.path.join(d, "tree"), "cp-uid:/tmp/kept")
        self.assertEqual(self.owners("cp-uid", "/tmp/kept", "/tmp/kept/sub/leaf"),
                         ["4321:4322"] * 2)
        self.ok("cp", "-a", os.path.join(d, "file"), "cp-uid:/tmp/file-a")
        self.assertEqual(self.owners("cp-uid", "/tmp/file-a"), ["1234:2345"])
        # A tar on stdin too.
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as t:
            ti = tarfile.TarInfo("streamed")
            ti.uid, ti.gid = 77, 78
            t.addfile(ti, io.BytesIO(b""))
        r = self.run_bytes("cp", "-", "cp-uid:/tmp", input=buf.getvalue())
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(self.owners("cp-uid", "/tmp/streamed"), ["1234:2345"])
        # Copies out belong to the user running cp (Podman, Docker).
        out = self.hostdir("cp-uid-out")
        self.ok("cp", "cp-uid:/tmp/file", out)
        st = os.stat(os.path.join(out, "file"))
        self.assertEqual((st.st_uid, st.st_gid), (os.getuid(), os.getgid()))

    def test_cp_chowns_to_the_images_named_user(self):
        # An image whose USER is a name of its own /etc/passwd (the host has no such user).
        self.ok("run", "--name", "cp-user-base", IMAGE, "sh", "-c",
                "echo 'cpapp:x:3456:4567::/home/cpapp:/bin/sh' >> /etc/passwd && "
                "echo 'cpgrp:x:4567:' >> /etc/group && echo 'cpother:x:5678:' >> /etc/group")
        self.addCleanup(self.rm, "cp-user-base")
        image = "localhost/cp-user:1"
        self.ok("commit", "--change", "USER cpapp", "cp-user-base", image)
        self.addCleanup(self.berth, "rmi", "-f", image)
        d = self.host_tree("cp-user-host")
        # Created, not started: the rootfs is mounted for the copy and /etc/passwd read there.
        self.ok("create", "--name", "cp-user", image, "sleep", "1000")
        self.addCleanup(self.rm, "cp-user")
        self.ok("cp", os.path.join(d, "tree"), "cp-user:/tmp")
        self.ok("start", "cp-user")
        self.assertEqual(self.owners("cp-user", "/tmp/tree", "/tmp/tree/sub/leaf"),
                         ["3456:4567"] * 2)
        # -u NAME:GROUP, the group a name of the image's /etc/group.
        self.ok("run", "-d", "--name", "cp-user-grp", "-u", "cpapp:cpother", image,
                "sleep", "1000")
        self.addCleanup(self.rm, "cp-user-grp")
        self.ok("cp", os.path.join(d, "file"), "cp-user-grp:/tmp")
        self.assertEqual(self.owners("cp-user-grp", "/tmp/file"), ["3456:5678"])
        # Names are read from the container's own /etc/passwd at each copy: once its user is
        # gone from it, the copy fails saying why (and --archive=false still copies).
        self.ok("exec", "-u", "0", "cp-user-grp", "sed", "-i", "/^cpapp:/d", "/etc/passwd")
        r = self.berth("cp", os.path.join(d, "file"), "cp-user-grp:/tmp/again")
        self.assertEqual(r.rc, 125, r)
        self.assertIn("user 'cpapp' not found in the image's /etc/passwd", r.err)
        self.assertIn("--archive=false", r.err)
        self.ok("cp", "--archive=false", os.path.join(d, "file"), "cp-user-grp:/tmp/again")
        self.assertEqual(self.owners("cp-user-grp", "/tmp/again"), ["4321:4322"])

    def test_cp_overwrite(self):
        self.ok("run", "-d", "--name", "cp-ow", IMAGE, "sleep", "1000")
        self.addCleanup(self.rm, "cp-ow")
        self.ok("exec", "cp-ow", "sh", "-c",
                "mkdir -p /tmp/isdir/inner && echo plain > /tmp/isfile")
        host = self.hostdir("cp-ow-host")
        f = os.path.join(host, "isdir")
        with open(f, "w") as fh:
            fh.write("a file now\n")
        d = os.path.join(host, "isfile")
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, "child"), "w") as fh:
            fh.write("child\n")
        # A file over a directory, a directory over a file: refused, nothing changed.
        r = self.berth("cp", f, "cp-ow:/tmp/")
        self.assertEqual(r.rc, 125, r)
        self.assertIn('cannot overwrite directory "cp-ow:/tmp/isdir" with non-directory "%s"'
                      % f, r.err)
        r = self.berth("cp", d, "cp-ow:/tmp")
        self.assertEqual(r.rc, 125, r)
        self.assertIn('cannot overwrite non-directory "cp-ow:/tmp/isfile" with directory "%s"'
                      % d, r.err)
        self.assertEqual(self.ok("exec", "cp-ow", "sh", "-c",
                                 "test -d /tmp/isdir/inner && cat /tmp/isfile").out, "plain\n")
        # A tar on stdin is checked the same way.
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as t:
            t.addfile(tarfile.TarInfo("isdir"), io.BytesIO(b""))
        r = self.run_bytes("cp", "-", "cp-ow:/tmp", input=buf.getvalue())
        self.assertEqual(r.returncode, 125, r.stderr)
        self.assertIn(b'cannot overwrite directory "cp-ow:/tmp/isdir"', r.stderr)
        # --overwrite replaces them.
        self.ok("cp", "--overwrite", f, "cp-ow:/tmp/")
        self.ok("cp", "--overwrite", d, "cp-ow:/tmp")
        self.assertEqual(self.ok("exec", "cp-ow", "cat", "/tmp/isdir", "/tmp/isfile/child").out,
                         "a file now\nchild\n")
        # Out of the container onto the host: the same rule.
        out = self.hostdir("cp-ow-out")
        os.makedirs(os.path.join(out, "hostname", "keep"), exist_ok=True)
        r = self.berth("cp", "cp-ow:/etc/hostname", out)
        self.assertEqual(r.rc, 125, r)
        self.assertIn('cannot overwrite directory "%s/hostname"' % out, r.err)
        self.assertTrue(os.path.isdir(os.path.join(out, "hostname", "keep")))
        self.ok("cp", "--overwrite", "cp-ow:/etc/hostname", out)
        self.assertTrue(os.path.isfile(os.path.join(out, "hostname")))

    def test_cp_chown_through_the_user_namespace(self):
        if self.storage_driver != "overlay":
            self.skipTest("user namespaces use idmapped overlay layers")
        # A mapped container root must reach its store below the test's 0700 temp dir.
        os.chmod(self.tmp, 0o711)
        self.ok("run", "-d", "--name", "cp-ns", "--network", "none", "--uidmap", "0:200000:5000",
                "--gidmap", "0:300000:5000", "-u", "1234:2345", IMAGE, "sleep", "1000")
        self.addCleanup(self.rm, "cp-ns")
        d = self.host_tree("cp-ns-host")
        self.ok("cp", os.path.join(d, "tree"), "cp-ns:/tmp")
        self.assertEqual(self.owners("cp-ns", "/tmp/tree", "/tmp/tree/sub/leaf"),
                         ["1234:2345"] * 2)
        merged = self.ok("mount", "cp-ns").out.strip()
        self.addCleanup(self.berth, "unmount", "cp-ns")
        st = os.lstat(os.path.join(merged, "tmp", "tree", "sub", "leaf"))
        self.assertEqual((st.st_uid, st.st_gid), (201234, 302345))

    def owned_tree(self, ctr, owner="1234:5678"):
        """In CTR: /t/f, /t/d/sub/leaf, /t/d/link -> /etc/passwd and /t/d/hostlink -> a host
        file (its path, returned, with the host file's owner 4444:4445), all owned by OWNER."""
        victim = os.path.join(self.hostdir(ctr + "-victim"), "victim")
        with open(victim, "w") as fh:
            fh.write("host file\n")
        os.chown(victim, 4444, 4445)
        self.ok("exec", "-u", "0", ctr, "sh", "-c",
                "mkdir -p /t/d/sub && echo f > /t/f && echo leaf > /t/d/sub/leaf && "
                f"ln -s /etc/passwd /t/d/link && ln -s {victim} /t/d/hostlink && "
                f"chown -R -h {owner} /t")
        self.assertEqual(set(self.owners(ctr, "/t/f", "/t/d", "/t/d/sub/leaf")), {owner})
        return victim

    def assert_owned_by_invoker(self, root, rels):
        for rel in rels:
            st = os.lstat(os.path.join(root, rel))
            self.assertEqual((st.st_uid, st.st_gid), (os.getuid(), os.getgid()), rel)

    def check_cp_out_owners(self, ctr, tar_owner):
        """Copies of CTR's /t (owned_tree) to the host belong to the user running cp, with and
        without --archive; symlinks are copied as links and their targets left alone. The tar
        on stdout has every entry owned by TAR_OWNER (as Podman: the container's user)."""
        victim = self.owned_tree(ctr)
        out = self.hostdir(ctr + "-out")
        tree = ["d", "d/sub", "d/sub/leaf", "d/link", "d/hostlink"]
        self.ok("cp", ctr + ":/t/f", out)
        self.ok("cp", ctr + ":/t/d", out)
        self.assert_owned_by_invoker(out, ["f"] + tree)
        self.assertEqual(os.readlink(os.path.join(out, "d", "link")), "/etc/passwd")
        self.assertEqual(os.readlink(os.path.join(out, "d", "hostlink")), victim)
        st = os.stat(victim)
        self.assertEqual((st.st_uid, st.st_gid), (4444, 4445))
        with open(os.path.join(out, "d", "sub", "leaf")) as fh:
            self.assertEqual(fh.read(), "leaf\n")
        # --archive is about copies into a container: the same owners without it.
        kept = self.hostdir(ctr + "-out-noarchive")
        self.ok("cp", "--archive=false", ctr + ":/t/d", os.path.join(kept, "renamed"))
        self.assert_owned_by_invoker(kept, ["renamed"] + ["renamed" + t[1:] for t in tree])
        # A host file replaced by the copy is the invoker's too.
        over = os.path.join(kept, "existing")
        with open(over, "w") as fh:
            fh.write("old\n")
        os.chown(over, 4444, 4445)
        self.ok("cp", ctr + ":/t/f", over)
        self.assert_owned_by_invoker(kept, ["existing"])
        with open(over) as fh:
            self.assertEqual(fh.read(), "f\n")
        st = os.stat(victim)
        self.assertEqual((st.st_uid, st.st_gid), (4444, 4445))
        # The tar on stdout: every entry owned by the container's user, whatever --archive.
        for archive in ("--archive=true", "--archive=false"):
            r = self.run_bytes("cp", archive, ctr + ":/t/d", "-")
            self.assertEqual(r.returncode, 0, r.stderr)
            with tarfile.open(fileobj=io.BytesIO(r.stdout)) as t:
                members = t.getmembers()
                self.assertEqual(sorted(m.name for m in members),
                                 ["d", "d/hostlink", "d/link", "d/sub", "d/sub/leaf"])
                for m in members:
                    self.assertEqual((m.uid, m.gid), tar_owner, m.name)

    def test_cp_out_belongs_to_the_invoking_user(self):
        self.ok("run", "-d", "--name", "cp-out", "-u", "2222:3333", IMAGE, "sleep", "1000")
        self.addCleanup(self.rm, "cp-out")
        self.check_cp_out_owners("cp-out", (2222, 3333))

    def test_cp_out_of_a_user_namespace_belongs_to_the_invoking_user(self):
        if self.storage_driver != "overlay":
            self.skipTest("user namespaces use idmapped overlay layers")
        ensure_containers_user()
        os.chmod(self.tmp, 0o711)
        # Sized for the owners below (auto's default size is the image's highest id + 1).
        self.ok("run", "-d", "--name", "cp-out-ns", "--network", "none",
                "--userns=auto:size=65536", "-u", "2222:3333", IMAGE, "sleep", "1000")
        self.addCleanup(self.rm, "cp-out-ns")
        uid_map = self.ok("exec", "cp-out-ns", "cat", "/proc/self/uid_map").out.split()
        self.assertNotEqual(uid_map[:2], ["0", "0"])  # a user namespace indeed
        # The tar carries the container's user as the container sees it, not its host ids
        # (which Podman as root writes).
        self.check_cp_out_owners("cp-out-ns", (2222, 3333))

    def wait_for(self, ctr, path, proc):
        for _ in range(200):
            if self.berth("exec", ctr, "test", "-e", path).rc == 0:
                return True
            if proc.poll() is not None:
                return False
            time.sleep(0.1)
        return False

    def test_cp_stdin_streams_into_the_container(self):
        # The tar on stdin is rewritten (owners) and extracted as it is read, not first stored:
        # its first entry is in the container while the rest has not been sent yet.
        self.ok("run", "-d", "--name", "cp-stream", "-u", "1234:2345", IMAGE, "sleep", "1000")
        self.addCleanup(self.rm, "cp-stream")
        self.ok("exec", "-u", "0", "cp-stream", "mkdir", "-m", "777", "/tmp/in")
        first = bytes(range(256)) * 256
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as t:
            for name, data in (("first", first), ("second", b"second\n")):
                ti = tarfile.TarInfo(name)
                ti.size = len(data)
                ti.uid, ti.gid = 77, 78
                t.addfile(ti, io.BytesIO(data))
        data = buf.getvalue()
        head = 512 + len(first)  # the first entry's header and data
        for flags in (["--overwrite"], ["--overwrite", "--archive=false"]):
            p = subprocess.Popen(self.cmd() + ["cp"] + flags + ["-", "cp-stream:/tmp/in"],
                                 stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                 stderr=subprocess.PIPE, env=self.env)
            try:
                p.stdin.write(data[:head])
                p.stdin.flush()
                appeared = self.wait_for("cp-stream", "/tmp/in/first", p)
                p.stdin.write(data[head:])
                p.stdin.close()
                err = p.stderr.read()
                p.stderr.close()
                p.wait(timeout=120)
            finally:
                # On a failure above: end stdin so that cp finishes (and unmounts) by itself.
                if not p.stdin.closed:
                    p.stdin.close()
                try:
                    p.wait(timeout=120)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
            self.assertEqual(p.returncode, 0, err)
            self.assertTrue(appeared, flags)
            r = self.ok("exec", "cp-stream", "sh", "-c",
                        "stat -c %u:%g /tmp/in/first /tmp/in/second; cat /tmp/in/second; "
                        "md5sum < /tmp/in/first; rm /tmp/in/first /tmp/in/second")
            owner = "77:78" if "--archive=false" in flags else "1234:2345"
            self.assertEqual(r.out.split()[:3], [owner, owner, "second"])
            self.assertEqual(r.out.split()[3], hashlib.md5(first).hexdigest())

    def test_cp_stdin_refused_copies_nothing(self):
        # Without --overwrite a tar that would replace a directory by a file is refused before
        # anything is written, whether stdin is a pipe or a file (read twice then).
        self.ok("run", "-d", "--name", "cp-refuse", "-u", "1234:2345", IMAGE, "sleep", "1000")
        self.addCleanup(self.rm, "cp-refuse")
        self.ok("exec", "-u", "0", "cp-refuse", "mkdir", "-p", "/tmp/isdir/inner")

        def tar(*names):
            buf = io.BytesIO()
            with tarfile.open(fileobj=buf, mode="w") as t:
                for name in names:
                    ti = tarfile.TarInfo(name)
                    ti.size = len(name)
                    t.addfile(ti, io.BytesIO(name.encode()))
            return buf.getvalue()

        refused = tar("fresh", "isdir")
        path = os.path.join(self.hostdir("cp-refuse-host"), "in.tar")
        with open(path, "wb") as fh:
            fh.write(b"skipped" + refused)
        for how in ("pipe", "file"):
            if how == "pipe":
                r = self.run_bytes("cp", "-", "cp-refuse:/tmp", input=refused)
            else:
                with open(path, "rb") as fh:
                    fh.seek(len(b"skipped"))  # read from where stdin stands
                    r = subprocess.run(self.cmd() + ["cp", "-", "cp-refuse:/tmp"], stdin=fh,
                                       capture_output=True, env=self.env, timeout=120)
            self.assertEqual(r.returncode, 125, (how, r.stderr))
            self.assertIn(b'cannot overwrite directory "cp-refuse:/tmp/isdir"', r.stderr)
            self.assertEqual(self.berth("exec", "cp-refuse", "test", "-e", "/tmp/fresh").rc, 1,
                             how)
            self.assertEqual(self.ok("exec", "cp-refuse", "sh", "-c",
                                     "test -d /tmp/isdir/inner && echo kept").out, "kept\n")
        # A file with nothing to refuse is copied, owned by the container's user.
        with open(path, "wb") as fh:
            fh.write(tar("fresh", "other"))
        with open(path, "rb") as fh:
            r = subprocess.run(self.cmd() + ["cp", "-", "cp-refuse:/tmp"], stdin=fh,
                               capture_output=True, env=self.env, timeout=120)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(self.ok("exec", "cp-refuse", "cat", "/tmp/fresh", "/tmp/other").out,
                         "freshother")
        self.assertEqual(self.owners("cp-refuse", "/tmp/fresh", "/tmp/other"),
                         ["1234:2345"] * 2)

    def test_cp_never_leaves_the_container_through_symlinks(self):
        victim = self.hostdir("cp-victim")
        secret = os.path.join(victim, "secret")
        with open(secret, "w") as fh:
            fh.write("host secret\n")
        script = (f"ln -s {victim} /abs && ln -s ../../../../../../../..{victim} /rel && "
                  f"ln -s {secret} /file-link && sleep 1000")
        self.ok("run", "-d", "--name", "cp-evil", IMAGE, "sh", "-c", script)
        self.addCleanup(self.rm, "cp-evil")
        for _ in range(100):
            if self.berth("exec", "cp-evil", "test", "-L", "/file-link").rc == 0:
                break
        src = os.path.join(self.hostdir("cp-evil-src"), "payload")
        with open(src, "w") as fh:
            fh.write("payload\n")
        for target in ("cp-evil:/abs/payload", "cp-evil:/rel/payload", "cp-evil:/abs",
                       "cp-evil:/rel/"):
            self.berth("cp", src, target)
            self.assertEqual(sorted(os.listdir(victim)), ["secret"], target)
        # Writing "to" a symlink to a host file replaces the link inside the container.
        self.berth("cp", src, "cp-evil:/file-link")
        with open(secret) as fh:
            self.assertEqual(fh.read(), "host secret\n")
        # Reading through the links finds the container's paths, not the host's secret.
        out = self.hostdir("cp-evil-out")
        for source in ("cp-evil:/abs/secret", "cp-evil:/rel/secret"):
            r = self.berth("cp", source, out)
            self.assertNotEqual(r.rc, 0, r)
        self.assertEqual(os.listdir(out), [])

    def test_cp_into_volume(self):
        self.ok("run", "-d", "--name", "cp-vol", "-v", "cp-target:/vol", IMAGE, "sleep", "1000")
        self.addCleanup(self.berth, "volume", "rm", "-f", "cp-target")
        self.addCleanup(self.rm, "cp-vol")
        src = os.path.join(self.hostdir("cp-vol-src"), "into-volume")
        with open(src, "w") as fh:
            fh.write("in the volume\n")
        self.ok("cp", src, "cp-vol:/vol/")
        with open(os.path.join(self.volume_path("cp-target"), "into-volume")) as fh:
            self.assertEqual(fh.read(), "in the volume\n")
        self.assertEqual(self.ok("exec", "cp-vol", "cat", "/vol/into-volume").out,
                         "in the volume\n")

    def changed_container(self, name):
        self.ok("run", "--name", name, IMAGE, "sh", "-c",
                "echo new > /root/new; rm /bin/noexec; echo extra >> /etc/passwd")
        self.addCleanup(self.rm, name)

    def test_diff(self):
        self.changed_container("diffed")
        lines = self.ok("diff", "diffed").out.splitlines()
        for want in ("A /root/new", "D /bin/noexec", "C /etc/passwd"):
            self.assertIn(want, lines)
        j = json.loads(self.ok("diff", "--format", "json", "diffed").out)
        self.assertIn("/root/new", j["added"])
        self.assertIn("/bin/noexec", j["deleted"])
        self.assertIn("/etc/passwd", j["changed"])
        self.assertEqual(self.ok("container", "diff", "diffed").out.splitlines(), lines)

    def test_export(self):
        self.changed_container("exported")
        out = os.path.join(self.tmp, "exported.tar")
        self.ok("export", "-o", out, "exported")
        with tarfile.open(out) as t:
            names = {n.lstrip("./") for n in t.getnames()}
            self.assertIn("bin/busybox", names)
            self.assertIn("root/new", names)
            self.assertNotIn("bin/noexec", names)
        r = self.run_bytes("export", "exported")
        self.assertEqual(r.returncode, 0, r.stderr)
        with tarfile.open(fileobj=io.BytesIO(r.stdout)) as t:
            self.assertIn("root/new", {n.lstrip("./") for n in t.getnames()})

    def test_export_into_a_reader_that_leaves_early(self):
        # `export CTR | head`: berth ends quietly (141, as a SIGPIPE death) after releasing the
        # rootfs mount; killed by SIGPIPE it left the layer mounted once more, and `rm` then
        # failed ("mounted 1 time(s)").
        self.ok("run", "-d", "--name", "exp-pipe", IMAGE, "sleep", "1000")
        self.addCleanup(self.rm, "exp-pipe")
        for _ in range(3):
            p = subprocess.Popen(self.cmd() + ["export", "exp-pipe"], stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, env=self.env)
            p.stdout.read(512)
            p.stdout.close()
            err = p.stderr.read()
            self.assertEqual(p.wait(timeout=60), 141, err)
            self.assertEqual(err, b"")
        self.ok("rm", "-f", "-t", "0", "exp-pipe")
        self.assertNotEqual(self.berth("container", "exists", "exp-pipe").rc, 0)

    def test_commit_then_run_sees_the_change(self):
        self.changed_container("committed")
        image = "localhost/committed:v1"
        r = self.ok("commit", "-m", "my message", "-a", "Jane <jane@example.com>",
                    "--change", "ENV FOO=bar", "--change", 'CMD ["cat", "/root/new"]', "committed", image)
        image_id = r.out.strip()
        self.assertRegex(image_id, r"^[0-9a-f]{64}$")
        self.addCleanup(self.berth, "rmi", "-f", image)
        self.assertEqual(self.ok("run", "--rm", image).out, "new\n")
        r = self.berth("run", "--rm", image, "ls", "/bin/noexec")
        self.assertNotEqual(r.rc, 0, r)
        self.assertEqual(self.ok("run", "--rm", image, "sh", "-c", "echo $FOO").out, "bar\n")
        self.assertIn("extra", self.ok("run", "--rm", image, "cat", "/etc/passwd").out)
        info = self.json("image", "inspect", image)[0]
        self.assertEqual(info["Author"], "Jane <jane@example.com>")
        self.assertEqual(info["Comment"], "my message")
        hist = self.json("history", "--format", "json", image)
        self.assertEqual(hist[0]["comment"], "my message")
        # A commit of the new image's container stacks another layer.
        self.ok("run", "--name", "committed2", image, "sh", "-c", "echo second > /root/2")
        self.addCleanup(self.rm, "committed2")
        self.ok("commit", "-f", "docker", "committed2", "localhost/committed:v2")
        self.addCleanup(self.berth, "rmi", "-f", "localhost/committed:v2")
        self.assertEqual(self.ok("run", "--rm", "localhost/committed:v2", "sh", "-c",
                                 "cat /root/new /root/2").out, "new\nsecond\n")

    def test_commit_running_with_pause(self):
        self.ok("run", "-d", "--name", "commit-live", IMAGE, "sh", "-c",
                "echo live > /live; sleep 1000")
        self.addCleanup(self.rm, "commit-live")
        for _ in range(100):
            if self.berth("exec", "commit-live", "test", "-f", "/live").rc == 0:
                break
        self.ok("commit", "--pause", "commit-live", "localhost/live:1")
        self.addCleanup(self.berth, "rmi", "-f", "localhost/live:1")
        self.assertEqual(self.json("inspect", "commit-live")[0]["State"]["Status"], "running")
        self.assertEqual(self.ok("run", "--rm", "localhost/live:1", "cat", "/live").out,
                         "live\n")

    def test_container_mount_unmount(self):
        self.ok("create", "--name", "mnt", IMAGE)
        self.addCleanup(self.rm, "mnt")
        cid = self.json("inspect", "mnt")[0]["Id"]
        path = self.ok("container", "mount", "mnt").out.strip()
        self.assertTrue(os.path.isfile(os.path.join(path, "bin", "busybox")), path)
        listed = self.ok("mount").out
        self.assertIn(cid[:12] + " " + path, listed)
        self.assertEqual(self.ok("unmount", "mnt").out, "mnt\n")
        self.assertNotIn(cid[:12], self.ok("mount").out)
        r = self.berth("umount", "mnt")
        self.assertEqual(r.rc, 125, r)
        self.assertIn("not mounted", r.err)
        # Removal unmounts what `mount` left.
        self.ok("container", "mount", "mnt")
        self.ok("rm", "mnt")


class StorageCommandsOverlay(StorageCommands):
    storage_driver = "overlay"


if __name__ == "__main__":
    unittest.main()
