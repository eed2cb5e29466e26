"""A busybox image for container tests, made as the README does: a rootfs tarball with Debian's
static busybox and its applet links, imported with `berth import`."""
import os
import subprocess
import tarfile
import tempfile
import io
import time

from berth_test import BerthTestCase

IMAGE = "localhost/bb:latest"
BUSYBOX = "/bin/busybox"


def make_rootfs_tar(path):
    applets = subprocess.run([BUSYBOX, "--list"], capture_output=True, text=True,
                             check=True).stdout.split()
    with tarfile.open(path, "w") as tar:
        def add_dir(name):
            ti = tarfile.TarInfo(name)
            ti.type = tarfile.DIRTYPE
            ti.mode = 0o755
            tar.addfile(ti)

        def add_file(name, data, mode=0o644):
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            ti.mode = mode
            tar.addfile(ti, io.BytesIO(data))

        for d in ["bin", "etc", "tmp", "proc", "sys", "dev", "root", "var"]:
            add_dir(d)
        tar.add(BUSYBOX, arcname="bin/busybox")
        for a in applets:
            if a == "busybox":
                continue
            ti = tarfile.TarInfo("bin/" + a)
            ti.type = tarfile.SYMTYPE
            ti.linkname = "busybox"
            tar.addfile(ti)
        add_file("etc/passwd", b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534::/:/bin/false\n")
        add_file("etc/group", b"root:x:0:\nnogroup:x:65534:\n")
        add_file("bin/noexec", b"#!/bin/sh\necho never\n", 0o644)


class ContainerTestCase(BerthTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        tar = os.path.join(cls.tmp, "rootfs.tar")
        make_rootfs_tar(tar)
        cmd = [os.environ.get("BERTH_BIN", "berth"), "--root", cls.root, "--runroot",
               cls.runroot, "--storage-driver", cls.storage_driver, "import", "--change",
               'CMD ["/bin/sh"]', tar, IMAGE]
        r = subprocess.run(cmd, capture_output=True, text=True, env=cls.env)
        if r.returncode != 0:
            raise RuntimeError(f"import failed: {r.stderr}")

    def run_ctr(self, *args, **kw):
        return self.berth("run", "--rm", IMAGE, *args, **kw)

    def wait_log(self, name, text, timeout=30):
        """Waits until the container's log holds `text` (a script's "ready" after its set-up:
        a trap installed before the signal comes)."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            if text in self.berth("logs", name).out:
                return
            time.sleep(0.05)
        self.fail(f"{name}'s log never showed {text!r}")

    def wait_running(self, name, attempts=600):
        """Waits until the container exists and runs (another process is creating it)."""
        for _ in range(attempts):
            if self.berth("container", "exists", name).rc == 0:
                break
            time.sleep(0.05)
        r = self.berth("wait", "--condition", "running", name)
        self.assertEqual(r.rc, 0, r)
