"""Images for the volume and storage-command tests: the containers' busybox image, plus one with
content under a VOLUME directory (for copy-up and image volumes)."""
import io
import os
import subprocess
import sys
import tarfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "containers"))

from container_fixture import ContainerTestCase, IMAGE, make_rootfs_tar  # noqa: E402

DATA_IMAGE = "localhost/bbdata:latest"
SEED = b"seeded by the image\n"


def make_data_tar(path):
    """The busybox rootfs plus /data/seed.txt (owned by 1234:1234, mode 0600)."""
    base = path + ".base"
    make_rootfs_tar(base)
    with tarfile.open(base) as src, tarfile.open(path, "w") as out:
        for m in src.getmembers():
            out.addfile(m, src.extractfile(m) if m.isfile() else None)
        d = tarfile.TarInfo("data")
        d.type = tarfile.DIRTYPE
        d.mode = 0o750
        d.uid = d.gid = 1234
        out.addfile(d)
        f = tarfile.TarInfo("data/seed.txt")
        f.size = len(SEED)
        f.mode = 0o600
        f.uid = f.gid = 1234
        out.addfile(f, io.BytesIO(SEED))
    os.unlink(base)


class MountsTestCase(ContainerTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        tar = os.path.join(cls.tmp, "data-rootfs.tar")
        make_data_tar(tar)
        r = subprocess.run(cls.cmd() + ["import", "--change", 'CMD ["/bin/sh"]', "--change",
                                        'VOLUME ["/data"]', tar, DATA_IMAGE],
                           capture_output=True, text=True, env=cls.env)
        if r.returncode != 0:
            raise RuntimeError(f"import failed: {r.stderr}")

    @classmethod
    def tearDownClass(cls):
        subprocess.run(cls.cmd() + ["rm", "-af", "-v"], capture_output=True, env=cls.env)
        subprocess.run(cls.cmd() + ["volume", "rm", "-af"], capture_output=True, env=cls.env)
        super().tearDownClass()

    def hostdir(self, name):
        d = os.path.join(self.tmp, name)
        os.makedirs(d, exist_ok=True)
        return d

    def volume_path(self, name):
        return self.json("volume", "inspect", name)[0]["Mountpoint"]

    def rm(self, *names):
        self.berth("rm", "-f", "-v", *names)


__all__ = ["MountsTestCase", "IMAGE", "DATA_IMAGE", "SEED"]
