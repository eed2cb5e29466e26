"""Container endpoints beyond the lifecycle, through the docker CLI and docker-py: HostConfig
mapping at create (binds, tmpfs, resources, ports), pause/unpause, cp (archive GET/HEAD/PUT),
changes, export, stats, update, resize, commit, and a published port reached on 127.0.0.1."""
import calendar
import io
import json
import os
import re
import socket
import tarfile
import time
import unittest

import docker

from api_fixture import IMAGE, DockerPyTestCase


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def rfc3339_nanos(ts):
    """Unix nanoseconds of Docker's UTC timestamps: 2006-01-02T15:04:05.999999999Z."""
    m = re.fullmatch(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?Z", ts)
    if not m:
        raise AssertionError(f"not an RFC 3339 UTC timestamp: {ts!r}")
    secs = calendar.timegm(time.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S"))
    return secs * 10**9 + int((m.group(2) or "").ljust(9, "0"))


class ContainerOpsTest(DockerPyTestCase):
    def run_detached(self, *cmd, **kw):
        c = self.client.containers.run(IMAGE, list(cmd) or ["sleep", "120"], detach=True, **kw)
        self.made.append(c.id)
        return c

    def test_hostconfig_mapping(self):
        src = os.path.join(self.tmp, "bind-src")
        os.makedirs(src, exist_ok=True)
        with open(os.path.join(src, "hello.txt"), "w") as f:
            f.write("from the host\n")
        c = self.client.containers.create(
            IMAGE, ["sh", "-c", "cat /data/hello.txt; grep -c ' /scratch ' /proc/mounts"],
            volumes={src: {"bind": "/data", "mode": "ro"}}, tmpfs={"/scratch": "size=1m"},
            mem_limit="64m", pids_limit=50, cap_drop=["NET_RAW"], network_mode="none")
        self.made.append(c.id)
        attrs = self.client.api.inspect_container(c.id)
        self.assertEqual(attrs["HostConfig"]["NetworkMode"], "none")
        mounts = {m["Destination"]: m for m in attrs["Mounts"]}
        self.assertIn("/data", mounts)
        self.assertEqual(mounts["/data"]["Type"], "bind")
        self.assertFalse(mounts["/data"]["RW"])
        c.start()
        self.assertEqual(c.wait(timeout=60)["StatusCode"], 0)
        logs = c.logs().decode()
        self.assertEqual(logs, "from the host\n1\n")

    def test_unknown_network_mode_is_an_error(self):
        with self.assertRaises(docker.errors.APIError) as cm:
            self.client.containers.create(IMAGE, ["true"], network="no-such-network")
        self.assertIn(cm.exception.status_code, (400, 404))

    def test_pause_unpause(self):
        c = self.run_detached()
        self.docker("pause", c.id)
        self.assertEqual(self.client.api.inspect_container(c.id)["State"]["Status"], "paused")
        self.assertTrue(self.client.api.inspect_container(c.id)["State"]["Paused"])
        p = self.docker("pause", c.id, check=False)
        self.assertNotEqual(p.returncode, 0)
        self.docker("unpause", c.id)
        self.assertEqual(self.client.api.inspect_container(c.id)["State"]["Status"], "running")

    def test_docker_cp_both_ways(self):
        c = self.run_detached()
        src = os.path.join(self.tmp, "cp-in.txt")
        with open(src, "w") as f:
            f.write("copied in\n")
        self.docker("cp", src, c.id + ":/tmp/")
        out = self.docker("exec", c.id, "cat", "/tmp/cp-in.txt").stdout
        self.assertEqual(out, "copied in\n")
        dest = os.path.join(self.tmp, "cp-out")
        os.makedirs(dest, exist_ok=True)
        self.docker("cp", c.id + ":/etc/hostname", dest)
        self.assertTrue(os.path.getsize(os.path.join(dest, "hostname")) > 0)
        p = self.docker("cp", c.id + ":/no/such/file", dest, check=False)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("/no/such/file", p.stderr)

    def test_archive_api(self):
        c = self.run_detached()
        stream, stat = self.client.api.get_archive(c.id, "/etc/passwd")
        data = b"".join(stream)
        self.assertEqual(stat["name"], "passwd")
        self.assertGreater(stat["size"], 0)
        with tarfile.open(fileobj=io.BytesIO(data)) as t:
            self.assertEqual(t.getnames(), ["passwd"])
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as t:
            payload = b"put via api\n"
            info = tarfile.TarInfo("put.txt")
            info.size = len(payload)
            t.addfile(info, io.BytesIO(payload))
        self.assertTrue(self.client.api.put_archive(c.id, "/tmp", buf.getvalue()))
        self.assertEqual(c.exec_run(["cat", "/tmp/put.txt"]).output, b"put via api\n")
        status, _, _ = self.request("HEAD", f"/v1.41/containers/{c.id}/archive?path=/nope")
        self.assertEqual(status, 404)

    def created_as_user(self):
        """A created container whose user is 1234:2345 (the API's busybox image has a 0700 root
        a non-root process cannot run in, so it is looked at through archive GET, not exec)."""
        c = self.client.containers.create(IMAGE, ["true"], user="1234:2345")
        self.made.append(c.id)
        return c

    def entry_of(self, c, path):
        stream, _ = self.client.api.get_archive(c.id, path)
        with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as t:
            m = t.getmembers()[0]
            data = t.extractfile(m).read() if m.isfile() else None
            return f"{m.uid}:{m.gid}", m.isdir(), data

    @staticmethod
    def tar_of(name, data=b"", uid=0, gid=0):
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as t:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.uid, info.gid = uid, gid
            t.addfile(info, io.BytesIO(data))
        return buf.getvalue()

    def put(self, c, query, tar):
        return self.request("PUT", f"/v1.41/containers/{c.id}/archive?path=/tmp" + query,
                            body=tar, headers={"Content-Type": "application/x-tar"})

    def test_archive_put_owners_and_overwrite(self):
        c = self.created_as_user()
        # docker-py's put_archive sends no copyUIDGID: the tar's owners are kept, as Docker does.
        self.assertTrue(self.client.api.put_archive(c.id, "/tmp",
                                                    self.tar_of("kept", uid=77, gid=78)))
        self.assertEqual(self.entry_of(c, "/tmp/kept")[0], "77:78")
        # copyUIDGID=1: owned by the container's user.
        status, _, body = self.put(c, "&copyUIDGID=1", self.tar_of("chowned", uid=77, gid=78))
        self.assertEqual(status, 200, body)
        self.assertEqual(self.entry_of(c, "/tmp/chowned")[0], "1234:2345")
        # noOverwriteDirNonDir=true refuses a file over a directory; without it, it replaces.
        d = io.BytesIO()
        with tarfile.open(fileobj=d, mode="w") as t:
            info = tarfile.TarInfo("adir")
            info.type = tarfile.DIRTYPE
            t.addfile(info)
        self.assertEqual(self.put(c, "", d.getvalue())[0], 200)
        status, _, body = self.put(c, "&noOverwriteDirNonDir=true", self.tar_of("adir", b"f\n"))
        self.assertGreaterEqual(status, 400, body)
        self.assertIn(b"cannot overwrite directory", body)
        self.assertTrue(self.entry_of(c, "/tmp/adir")[1])
        status, _, body = self.put(c, "", self.tar_of("adir", b"f\n"))
        self.assertEqual(status, 200, body)
        self.assertEqual(self.entry_of(c, "/tmp/adir")[2], b"f\n")

    def test_docker_cp_archive_and_dir_over_file(self):
        c = self.created_as_user()
        src = os.path.join(self.tmp, "cp-owned")
        os.makedirs(src, exist_ok=True)
        f = os.path.join(src, "owned.txt")
        with open(f, "w") as fh:
            fh.write("owned\n")
        os.chown(f, 4321, 4322)
        # docker cp keeps the host file's owner; -a (copyUIDGID) gives it to the container's user.
        self.docker("cp", f, c.id + ":/tmp/")
        self.assertEqual(self.entry_of(c, "/tmp/owned.txt")[0], "4321:4322")
        self.docker("cp", "-a", f, c.id + ":/tmp/archived.txt")
        self.assertEqual(self.entry_of(c, "/tmp/archived.txt")[0], "1234:2345")
        # docker cp sends noOverwriteDirNonDir: a directory does not replace a file.
        d = os.path.join(src, "plain")
        os.makedirs(d, exist_ok=True)
        self.assertTrue(self.client.api.put_archive(c.id, "/tmp", self.tar_of("plain", b"x\n")))
        p = self.docker("cp", d, c.id + ":/tmp/", check=False)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("cannot overwrite non-directory", p.stderr)
        self.assertEqual(self.entry_of(c, "/tmp/plain")[2], b"x\n")

    def test_changes_export_commit(self):
        c = self.run_detached("sh", "-c", "echo x > /made-here; sleep 120")
        deadline = time.time() + 20
        changes = []
        while time.time() < deadline:
            changes = self.client.api.diff(c.id) or []
            if any(ch["Path"] == "/made-here" for ch in changes):
                break
            time.sleep(0.2)
        self.assertIn({"Path": "/made-here", "Kind": 1}, changes)
        exported = b"".join(c.export())
        with tarfile.open(fileobj=io.BytesIO(exported)) as t:
            names = [n.lstrip("./") for n in t.getnames()]
        self.assertIn("made-here", names)
        img = c.commit(repository="localhost/committed", tag="v1")
        try:
            self.assertTrue(img.id.startswith("sha256:"))
            out = self.client.containers.run("localhost/committed:v1", ["cat", "/made-here"],
                                             remove=True)
            self.assertEqual(out, b"x\n")
        finally:
            self.client.images.remove("localhost/committed:v1", force=True)

    def test_stats_update_resize(self):
        c = self.run_detached()
        s = c.stats(stream=False)
        self.assertEqual(s["id"], c.id)
        self.assertIn("cpu_stats", s)
        self.assertGreater(s["memory_stats"]["usage"], 0)
        self.assertGreaterEqual(s["pids_stats"]["current"], 1)
        one = c.stats(stream=False)
        self.assertEqual(one["id"], c.id)
        # A one-off reading carries the previous sample (precpu), taken a second earlier.
        self.assertGreater(one["precpu_stats"]["cpu_usage"]["total_usage"], 0)
        c.update(mem_limit="96m", memswap_limit="96m")
        # RestartPolicy through update (answered 501 before).
        c.update(restart_policy={"Name": "on-failure", "MaximumRetryCount": 4})
        c.reload()
        self.assertEqual(c.attrs["HostConfig"]["RestartPolicy"],
                         {"Name": "on-failure", "MaximumRetryCount": 4})
        self.assertEqual(c.attrs["HostConfig"]["Memory"], 96 * 1024 * 1024)
        self.docker("update", "--restart", "always", c.id)
        c.reload()
        self.assertEqual(c.attrs["HostConfig"]["RestartPolicy"]["Name"], "always")
        status, body = self.request_json("POST", f"/v1.41/containers/{c.id}/resize?h=0&w=0")
        self.assertEqual(status, 400)
        status, body = self.request_json("POST", f"/v1.41/containers/{c.id}/resize?h=30&w=100")
        self.assertEqual(status, 200)

    def test_sizes_with_size_1(self):
        # `docker inspect -s` and `docker ps --size`: the container's layer, and with the image's
        # the whole root filesystem (inspect showed neither, ps only the layer).
        c = self.run_detached("sh", "-c", "head -c 100000 /dev/zero > /big; sleep 120")
        for _ in range(100):
            if "/big" in [ch["Path"] for ch in (c.diff() or [])]:
                break
            time.sleep(0.05)
        out = self.docker("inspect", "-s", "-f", "{{.SizeRw}} {{.SizeRootFs}}", c.id).stdout
        rw, rootfs = (int(x) for x in out.split())
        self.assertGreaterEqual(rw, 100000)
        self.assertGreater(rootfs, rw + 1000000)  # busybox's layer is about 2 MB
        status, rows = self.request_json("GET", "/v1.41/containers/json?size=1")
        self.assertEqual(status, 200)
        row = [r for r in rows if r["Id"] == c.id][0]
        self.assertEqual((row["SizeRw"], row["SizeRootFs"]), (rw, rootfs))
        self.assertIn("virtual", self.docker("ps", "--size", "--format", "{{.Size}}",
                                             "--filter", "id=" + c.id).stdout)

    def test_stats_stream_through_docker_py_decoder(self):
        c = self.run_detached("sh", "-c", "while :; do :; done")
        samples = []
        stream = c.stats(stream=True, decode=True)
        try:
            for s in stream:
                samples.append(s)
                if len(samples) == 3:
                    break
        finally:
            stream.close()
        self.assertEqual(len(samples), 3)
        reads = []
        for s in samples:
            self.assertEqual(s["id"], c.id)
            self.assertGreater(s["memory_stats"]["usage"], 0)
            self.assertGreater(s["cpu_stats"]["system_cpu_usage"], 0)
            self.assertGreaterEqual(s["cpu_stats"]["online_cpus"], 1)
            reads.append(rfc3339_nanos(s["read"]))
        self.assertLess(reads[0], reads[1])
        self.assertLess(reads[1], reads[2])
        # Each sample's precpu is the sample before it; the first has none, as Docker's.
        self.assertEqual(samples[0]["precpu_stats"]["cpu_usage"]["total_usage"], 0)
        for prev, cur in zip(samples, samples[1:]):
            self.assertEqual(cur["precpu_stats"]["cpu_usage"]["total_usage"],
                             prev["cpu_stats"]["cpu_usage"]["total_usage"])
            self.assertEqual(cur["precpu_stats"]["system_cpu_usage"],
                             prev["cpu_stats"]["system_cpu_usage"])
            self.assertEqual(cur["preread"], prev["read"])
            # The busy loop: CPU time grows between samples; the usual percentage is sane.
            cpu_delta = (cur["cpu_stats"]["cpu_usage"]["total_usage"] -
                         cur["precpu_stats"]["cpu_usage"]["total_usage"])
            system_delta = (cur["cpu_stats"]["system_cpu_usage"] -
                            cur["precpu_stats"]["system_cpu_usage"])
            self.assertGreater(cpu_delta, 0)
            self.assertGreater(system_delta, 0)
            percent = cpu_delta / system_delta * cur["cpu_stats"]["online_cpus"] * 100
            self.assertGreater(percent, 1)
            self.assertLessEqual(percent, 100 * cur["cpu_stats"]["online_cpus"] + 5)
        # The stream goes on while the container runs; the service is still there afterwards.
        self.assertTrue(self.client.ping())

    def test_published_port_on_loopback(self):
        port = free_port()
        c = self.run_detached("sh", "-c",
                              "echo published-ok > /tmp/index.html; "
                              "exec httpd -f -p 8080 -h /tmp",
                              ports={"8080/tcp": ("127.0.0.1", port)})
        row = [x for x in self.client.api.containers() if x["Id"] == c.id][0]
        self.assertIn({"IP": "127.0.0.1", "PrivatePort": 8080, "PublicPort": port,
                       "Type": "tcp"}, row["Ports"])
        attrs = self.client.api.inspect_container(c.id)
        self.assertEqual(attrs["NetworkSettings"]["Ports"]["8080/tcp"][0]["HostPort"], str(port))
        body = b""
        deadline = time.time() + 20
        while time.time() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
                    s.sendall(b"GET /index.html HTTP/1.0\r\n\r\n")
                    while True:
                        chunk = s.recv(4096)
                        if not chunk:
                            break
                        body += chunk
                if b"published-ok" in body:
                    break
            except OSError:
                pass
            time.sleep(0.2)
        self.assertIn(b"published-ok", body)

    def test_docker_cli_run_publish(self):
        port = free_port()
        cid = self.docker("run", "-d", "-p", f"127.0.0.1:{port}:8080", IMAGE, "sh", "-c",
                          "echo cli-ok > /tmp/i.html; exec httpd -f -p 8080 -h /tmp"
                          ).stdout.strip()
        self.made.append(cid)
        out = self.docker("port", cid).stdout
        self.assertIn(f"127.0.0.1:{port}", out)


if __name__ == "__main__":
    unittest.main()
