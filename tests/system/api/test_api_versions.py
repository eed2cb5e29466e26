"""The Docker Engine API version the service speaks (1.43) and the changes of 1.42 and 1.43 on the
endpoints berth serves, each with the older behaviour for a client that asks for 1.41 (ConsoleSize
is in test_terminal.py)."""
import json
import os
import subprocess
import time
import urllib.parse

from api_fixture import IMAGE, ApiTestCase
from berth_test import BERTH


class ApiVersionTest(ApiTestCase):
    def post(self, path, body=None):
        return self.request_json("POST", path, json.dumps(body) if body is not None else None)

    def get(self, path):
        return self.request_json("GET", path)

    def create(self, version, body, name=None):
        path = f"/v{version}/containers/create" + (f"?name={name}" if name else "")
        status, data = self.post(path, dict({"Image": IMAGE}, **body))
        if status == 201:
            self.addCleanup(self.request, "DELETE", f"/containers/{data['Id']}?force=1")
        return status, data

    def test_version_ping_and_negotiation(self):
        status, headers, body = self.request("GET", "/_ping")
        self.assertEqual(status, 200)
        self.assertEqual(headers["Api-Version"], "1.43")
        self.assertEqual(headers["Builder-Version"], "1")
        self.assertEqual(headers["Swarm"], "inactive")
        status, v = self.get("/version")
        self.assertEqual(v["ApiVersion"], "1.43")
        self.assertEqual(v["MinAPIVersion"], "1.24")
        # The docker CLI (newer) negotiates down to what the service speaks.
        p = self.docker("version", "--format", "{{.Server.APIVersion}} {{.Client.APIVersion}}")
        self.assertEqual(p.stdout.split(), ["1.43", "1.43"])
        status, _ = self.get("/v1.44/info")
        self.assertEqual(status, 400)
        status, _ = self.get("/v1.24/info")
        self.assertEqual(status, 200)

    def test_info_leaves_out_kernel_memory_from_1_42(self):
        _, info = self.get("/v1.43/info")
        self.assertNotIn("KernelMemory", info)
        self.assertNotIn("KernelMemoryTCP", info)
        _, old = self.get("/v1.41/info")
        self.assertIn("KernelMemory", old)

    def test_stop_and_restart_take_a_signal_from_1_42(self):
        # PID 1 ignores a signal it has no handler for: only USR1 ends it before the SIGKILL.
        script = 'trap "exit 42" USR1; while true; do sleep 0.1; done'
        for version, signal, code in (("1.43", "SIGUSR1", 42), ("1.43", "10", 42),
                                      ("1.41", "SIGUSR1", 137)):
            status, data = self.create(version, {"Cmd": ["sh", "-c", script]})
            self.assertEqual(status, 201, data)
            cid = data["Id"]
            status, _, body = self.request("POST", f"/v{version}/containers/{cid}/start")
            self.assertEqual(status, 204, body)
            time.sleep(0.3)  # the trap is set
            status, _, body = self.request(
                "POST", f"/v{version}/containers/{cid}/stop?t=2&signal={signal}", timeout=60)
            self.assertEqual(status, 204, body)
            _, j = self.get(f"/containers/{cid}/json")
            self.assertEqual(j["State"]["ExitCode"], code, (version, signal))
        for action in ("stop", "restart"):
            status, data = self.post(f"/v1.43/containers/{cid}/{action}?signal=NOPE")
            self.assertEqual(status, 400, data)
            self.assertIn("invalid signal", data["message"])

    def test_mount_options_must_match_the_type_from_1_42(self):
        mounts = [{"Type": "volume", "Target": "/data", "BindOptions": {"Propagation": "rslave"}}]
        status, data = self.create("1.43", {"HostConfig": {"Mounts": mounts}})
        self.assertEqual(status, 400, data)
        self.assertIn('invalid mount config for type "volume": field BindOptions', data["message"])
        mounts = [{"Type": "bind", "Source": "/tmp", "Target": "/data",
                   "TmpfsOptions": {"SizeBytes": 1024}}]
        status, data = self.create("1.43", {"HostConfig": {"Mounts": mounts}})
        self.assertEqual(status, 400, data)
        self.assertIn("TmpfsOptions", data["message"])
        status, data = self.create("1.41", {"HostConfig": {"Mounts": mounts}})
        self.assertEqual(status, 201, data)

    def test_bind_create_mountpoint(self):
        src = os.path.join(self.tmp, "made-by-create", "sub")
        mounts = [{"Type": "bind", "Source": src, "Target": "/mnt",
                   "BindOptions": {"CreateMountpoint": True}}]
        status, data = self.create("1.43", {"Cmd": ["sh", "-c", "echo hi > /mnt/f"],
                                            "HostConfig": {"Mounts": mounts}})
        self.assertEqual(status, 201, data)
        self.assertTrue(os.path.isdir(src))
        cid = data["Id"]
        self.request("POST", f"/containers/{cid}/start")
        self.request("POST", f"/containers/{cid}/wait", timeout=60)
        with open(os.path.join(src, "f")) as f:
            self.assertEqual(f.read(), "hi\n")

    def test_annotations_from_1_43(self):
        hc = {"Annotations": {"com.example.note": "kept"}}
        status, data = self.create("1.43", {"HostConfig": hc})
        self.assertEqual(status, 201, data)
        _, j = self.get(f"/v1.43/containers/{data['Id']}/json")
        self.assertEqual(j["HostConfig"]["Annotations"], {"com.example.note": "kept"})
        # They reach the runtime's spec (libpod shows the spec's annotations).
        _, lp = self.get(f"/libpod/containers/{data['Id']}/json")
        self.assertEqual(lp["Config"]["Annotations"]["com.example.note"], "kept")
        status, data = self.create("1.43", {"HostConfig": {"Annotations": {"a": 1}}})
        self.assertEqual(status, 400, data)
        # Before 1.43 they are not part of the API.
        status, data = self.create("1.42", {"HostConfig": hc})
        self.assertEqual(status, 201, data)
        _, lp = self.get(f"/libpod/containers/{data['Id']}/json")
        self.assertNotIn("com.example.note", lp["Config"].get("Annotations") or {})

    def volume_names(self):
        _, data = self.get("/volumes")
        return {v["Name"] for v in data["Volumes"] or []}

    def anonymous_volume(self):
        status, data = self.create("1.43", {"Volumes": {"/anon": {}}})
        self.assertEqual(status, 201, data)
        _, j = self.get(f"/containers/{data['Id']}/json")
        name = [m["Name"] for m in j["Mounts"] if m["Destination"] == "/anon"][0]
        status, _, body = self.request("DELETE", f"/containers/{data['Id']}")
        self.assertEqual(status, 204, body)
        return name

    def test_volume_prune_takes_anonymous_volumes_only_from_1_42(self):
        status, data = self.post("/volumes/create", {"Name": "named-kept"})
        self.assertEqual(status, 201, data)
        self.addCleanup(self.request, "DELETE", "/volumes/named-kept?force=1")
        anon = self.anonymous_volume()
        status, data = self.post("/v1.43/volumes/prune")
        self.assertEqual(status, 200, data)
        self.assertEqual(data["VolumesDeleted"], [anon])
        self.assertIn("named-kept", self.volume_names())
        # The docker CLI at the negotiated version: prune keeps it, prune --all takes it.
        anon = self.anonymous_volume()
        p = self.docker("volume", "prune", "--force")
        self.assertIn(anon, p.stdout)
        self.assertIn("named-kept", self.volume_names())
        p = self.docker("volume", "prune", "--force", "--all")
        self.assertIn("named-kept", p.stdout)
        self.assertNotIn("named-kept", self.volume_names())
        # A client of 1.41 prunes every unused volume.
        status, data = self.post("/volumes/create", {"Name": "named-old"})
        self.assertEqual(status, 201, data)
        status, data = self.post("/v1.41/volumes/prune")
        self.assertEqual(status, 200, data)
        self.assertIn("named-old", data["VolumesDeleted"])
        filters = urllib.parse.quote(json.dumps({"all": ["maybe"]}))
        status, data = self.post(f"/v1.43/volumes/prune?filters={filters}")
        self.assertEqual(status, 400, data)

    def test_system_df_type(self):
        status, df = self.get("/v1.43/system/df?type=image")
        self.assertEqual(status, 200, df)
        self.assertIsInstance(df["Images"], list)
        self.assertIsNone(df["Containers"])
        self.assertIsNone(df["Volumes"])
        self.assertIsNone(df["BuildCache"])
        status, df = self.get("/v1.43/system/df?type=container&type=volume")
        self.assertIsNone(df["Images"])
        self.assertIsInstance(df["Containers"], list)
        self.assertIsInstance(df["Volumes"], list)
        status, data = self.get("/v1.43/system/df?type=bogus")
        self.assertEqual(status, 400, data)
        _, df = self.get("/v1.41/system/df?type=image")
        self.assertIsInstance(df["Containers"], list)

    def test_image_list_shared_size_and_untagged_images(self):
        _, rows = self.get("/v1.43/images/json")
        self.assertTrue(rows)
        self.assertTrue(all(r["SharedSize"] == -1 for r in rows))
        _, rows = self.get("/v1.43/images/json?shared-size=1")
        self.assertTrue(all(r["SharedSize"] >= 0 for r in rows))
        # An image without a name: empty lists from 1.43, "<none>" placeholders before.
        tar = os.path.join(self.tmp, "rootfs.tar")
        r = subprocess.run([BERTH] + self.store_args + ["import", "--change", "CMD [\"/bin/true\"]",
                                                        tar],
                           capture_output=True, text=True, env=self.env)
        self.assertEqual(r.returncode, 0, r.stderr)
        iid = r.stdout.strip().split("\n")[-1]
        self.addCleanup(self.request, "DELETE", f"/images/{iid}?force=1")

        def row(version):
            _, rows = self.get(f"/v{version}/images/json?all=1")
            found = [x for x in rows if x["Id"].endswith(iid.replace("sha256:", ""))]
            self.assertEqual(len(found), 1, rows)
            return found[0]

        new = row("1.43")
        self.assertEqual((new["RepoTags"], new["RepoDigests"]), ([], []))
        old = row("1.42")
        self.assertEqual((old["RepoTags"], old["RepoDigests"]), (["<none>:<none>"],
                                                                 ["<none>@<none>"]))

    def test_import_takes_the_platform_architecture(self):
        tar = os.path.join(self.tmp, "rootfs.tar")
        self.docker("import", "--platform", "linux/arm64", tar, "localhost/imported-arm:1")
        self.addCleanup(self.request, "DELETE", "/images/localhost/imported-arm:1?force=1")
        _, j = self.get("/images/localhost/imported-arm:1/json")
        self.assertEqual((j["Os"], j["Architecture"]), ("linux", "arm64"))
        p = self.docker("import", "--platform", "windows/amd64", tar, "localhost/imported-win:1",
                        check=False)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("linux", p.stderr)


if __name__ == "__main__":
    import unittest
    unittest.main()
