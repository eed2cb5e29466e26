"""Shared fixture for berth's end-to-end tests: each test class gets its own store (--root,
--runroot under a temporary directory) and runs the built binary as a user would."""
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import unittest


# Capabilities in kernel order (include/uapi/linux/capability.h), and Podman's default set.
ALL_CAPS = ["CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "KILL", "SETGID",
            "SETUID", "SETPCAP", "LINUX_IMMUTABLE", "NET_BIND_SERVICE", "NET_BROADCAST",
            "NET_ADMIN", "NET_RAW", "IPC_LOCK", "IPC_OWNER", "SYS_MODULE", "SYS_RAWIO",
            "SYS_CHROOT", "SYS_PTRACE", "SYS_PACCT", "SYS_ADMIN", "SYS_BOOT", "SYS_NICE",
            "SYS_RESOURCE", "SYS_TIME", "SYS_TTY_CONFIG", "MKNOD", "LEASE", "AUDIT_WRITE",
            "AUDIT_CONTROL", "SETFCAP", "MAC_OVERRIDE", "MAC_ADMIN", "SYSLOG", "WAKE_ALARM",
            "BLOCK_SUSPEND", "AUDIT_READ", "PERFMON", "BPF", "CHECKPOINT_RESTORE"]
PODMAN_CAPS = ["CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "NET_BIND_SERVICE", "SETFCAP",
               "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT"]


def cap_names(m):
    """The names of the capabilities in the mask `m`, sorted."""
    return sorted(c for i, c in enumerate(ALL_CAPS) if m & (1 << i))

BERTH = os.environ.get("BERTH_BIN", "berth")
BUILD_DIR = os.environ.get("BERTH_BUILD_DIR", "")
PLUGIN_DIR = os.path.join(BUILD_DIR, "lib", "berth", "plugins") if BUILD_DIR else ""



def unmount_under(path):
    """Unmounts everything mounted below `path` (deepest first): the overlay driver's private
    bind mount of its home, container roots, volumes. `umount -R path` does nothing when `path`
    itself is not a mount point, which left one mount per test class behind."""
    prefix = path.rstrip("/") + "/"
    with open("/proc/self/mountinfo") as f:
        points = [line.split()[4] for line in f]
    for mp in sorted({p for p in points if p.startswith(prefix) or p == path}, key=len,
                     reverse=True):
        subprocess.run(["umount", "-l", mp], capture_output=True)

class Result:
    def __init__(self, proc):
        self.rc = proc.returncode
        self.out = proc.stdout
        self.err = proc.stderr

    def __repr__(self):
        return f"rc={self.rc}\nstdout:\n{self.out}\nstderr:\n{self.err}"


class BerthTestCase(unittest.TestCase):
    storage_driver = "vfs"

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="berth-systest-")
        cls.root = os.path.join(cls.tmp, "root")
        cls.runroot = os.path.join(cls.tmp, "runroot")
        # No host config leaks into the test: an empty containers.conf and storage.conf.
        cls.env = dict(os.environ)
        empty = os.path.join(cls.tmp, "empty.conf")
        open(empty, "w").close()
        # Test classes run at once (ctest -j), each with its own store and so its own IPAM for
        # the default network, whose bridge (berth0) is host-wide: a subnet of its own per class
        # keeps two stores from handing out the same address on that bridge.
        h = int(hashlib.sha256(cls.tmp.encode()).hexdigest(), 16)
        conf = os.path.join(cls.tmp, "containers.conf")
        with open(conf, "w") as f:
            f.write('[network]\ndefault_subnet = "10.%d.%d.0/24"\n' % (160 + h % 64, (h >> 8) % 256))
        cls.env["CONTAINERS_CONF"] = conf
        cls.env["CONTAINERS_STORAGE_CONF"] = empty
        cls.env["CONTAINERS_REGISTRIES_CONF"] = empty

    @classmethod
    def tearDownClass(cls):
        subprocess.run([BERTH, "--root", cls.root, "--runroot", cls.runroot, "--storage-driver",
                        cls.storage_driver, "rm", "-af"], capture_output=True, env=cls.env)
        unmount_under(cls.tmp)
        shutil.rmtree(cls.tmp, ignore_errors=True)

    @classmethod
    def cmd(cls):
        """The berth command line with this class's store."""
        c = [BERTH, "--root", cls.root, "--runroot", cls.runroot]
        if cls.storage_driver:
            c += ["--storage-driver", cls.storage_driver]
        return c

    def berth(self, *args, input=None, env=None, check=False, timeout=120, store=True):
        cmd = (self.cmd() if store else [BERTH]) + list(args)
        e = dict(self.env)
        if env:
            e.update(env)
        proc = subprocess.run(cmd, input=input, capture_output=True, text=True, env=e,
                              timeout=timeout)
        r = Result(proc)
        if check and r.rc != 0:
            self.fail(f"{' '.join(cmd)} failed:\n{r}")
        return r

    def ok(self, *args, **kw):
        return self.berth(*args, check=True, **kw)

    def json(self, *args, **kw):
        return json.loads(self.ok(*args, **kw).out)


REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
# The fixed benchmark images (../shared/images beside the checkout, as CI lays it out).
SHARED_IMAGES = next((p for p in (os.environ.get("BERTH_SHARED_IMAGES", ""),
                                  os.path.join(REPO, "..", "shared", "images"),
                                  "/work/shared/images")
                      if p and os.path.isdir(os.path.join(p, "bb"))),
                     os.path.join(REPO, "..", "shared", "images"))


def busybox_rootfs_tar(dest_dir):
    """A rootfs tarball with Debian's static busybox (scripts/make-busybox-rootfs.sh)."""
    out = os.path.join(dest_dir, "busybox-rootfs.tar")
    if not os.path.exists(out):
        subprocess.run([os.path.join(REPO, "scripts", "make-busybox-rootfs.sh"), out], check=True)
    return out
