"""50 containers started and removed in parallel by concurrent berth processes leave no mount,
process, cgroup or lock behind."""
import concurrent.futures
import glob
import os
import subprocess
import unittest

from container_fixture import ContainerTestCase, IMAGE


class ConcurrencyTest(ContainerTestCase):
    def test_fifty_in_parallel(self):
        ids = []

        def one(i):
            name = f"par{i}"
            r = self.berth("run", "-d", "--name", name, IMAGE, "sleep", "1000")
            if r.rc != 0:
                return f"run {name}: {r}"
            ids.append(r.out.strip())
            r = self.berth("exec", name, "true")
            if r.rc != 0:
                return f"exec {name}: {r}"
            r = self.berth("rm", "-f", name)
            if r.rc != 0:
                return f"rm {name}: {r}"
            return None

        def short(i):
            r = self.berth("run", "--rm", IMAGE, "sh", "-c", f"echo {i}")
            return None if r.rc == 0 and r.out == f"{i}\n" else f"run --rm {i}: {r}"

        with concurrent.futures.ThreadPoolExecutor(max_workers=8) as ex:
            errors = [e for e in ex.map(one, range(40)) if e]
            errors += [e for e in ex.map(short, range(10)) if e]
        self.assertEqual(errors, [])
        self.assertEqual(self.ok("ps", "-aq").out, "")
        with open("/proc/mounts") as f:
            self.assertNotIn(self.tmp, f.read())
        procs = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
        self.assertNotIn(self.runroot, procs)
        self.assertEqual(len(ids), 40)
        cgroups = glob.glob("/sys/fs/cgroup/*/berth/*") + glob.glob("/sys/fs/cgroup/*/*/berth/*")
        self.assertFalse([d for d in cgroups if os.path.basename(d) in ids])
        self.assertTrue(glob.glob("/sys/fs/cgroup/*/berth"), "containers use the berth cgroup")
        self.assertEqual(len(os.listdir(os.path.join(self.root, "containers"))), 0)
        locks = [f for f in os.listdir(os.path.join(self.runroot, "locks"))
                 if f.startswith("container-")]
        self.assertEqual(locks, [])
        self.assertEqual(os.listdir(os.path.join(self.runroot, "containers")), [])


if __name__ == "__main__":
    unittest.main()
