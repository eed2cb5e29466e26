"""The Docker Engine API version the service speaks (1.45) and the changes of 1.42 to 1.45 on the
endpoints berth serves, each with the older behaviour for a client that asks for an older version
(ConsoleSize is in test_terminal.py)."""
import json
import os
import subprocess
import time
import unittest
import urllib.parse

import docker

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
        self.assertEqual(headers["Api-Version"], "1.45")
        self.assertEqual(headers["Builder-Version"], "1")
        self.assertEqual(headers["Swarm"], "inactive")
        status, v = self.get("/version")
        self.assertEqual(v["ApiVersion"], "1.45")
        self.assertEqual(v["MinAPIVersion"], "1.24")
        # The docker CLI (newer) negotiates down to what the service speaks.
        p = self.docker("version", "--format", "{{.Server.APIVersion}} {{.Client.APIVersion}}")
        self.assertEqual(p.stdout.split(), ["1.45", "1.45"])
        # docker-py settles on it too ("auto"), and an unversioned path speaks it (image
        # inspect without Container and ContainerConfig).
        client = docker.APIClient(base_url=self.url, version="auto", timeout=60)
        try:
            self.assertEqual(client.api_version, "1.45")
        finally:
            client.close()
        status, img = self.get(f"/images/{IMAGE}/json")
        self.assertEqual(status, 200)
        self.assertNotIn("ContainerConfig", img)
        status, _ = self.get("/v1.45/info")
        self.assertEqual(status, 200)
        status, _ = self.get("/v1.46/info")
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
        script = 'trap "exit 42" USR1; echo ready; while true; do sleep 0.1; done'
        for version, signal, code in (("1.43", "SIGUSR1", 42), ("1.43", "10", 42),
                                      ("1.41", "SIGUSR1", 137)):
            status, data = self.create(version, {"Cmd": ["sh", "-c", script]})
            self.assertEqual(status, 201, data)
            cid = data["Id"]
            status, _, body = self.request("POST", f"/v{version}/containers/{cid}/start")
            self.assertEqual(status, 204, body)
            deadline = time.time() + 30
            while time.time() < deadline:  # until the trap is set
                _, _, log = self.request("GET", f"/containers/{cid}/logs?stdout=1")
                if b"ready" in log:
                    break
                time.sleep(0.05)
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

    # --- 1.44 ------------------------------------------------------------------------------

    def test_virtual_size_gone_from_1_44(self):
        _, rows = self.get("/v1.44/images/json")
        self.assertTrue(rows)
        self.assertTrue(all("VirtualSize" not in r for r in rows), rows)
        _, rows = self.get("/v1.43/images/json")
        self.assertTrue(all(r["VirtualSize"] == r["Size"] for r in rows), rows)
        _, j = self.get(f"/v1.44/images/{IMAGE}/json")
        self.assertNotIn("VirtualSize", j)
        _, j = self.get(f"/v1.43/images/{IMAGE}/json")
        self.assertEqual(j["VirtualSize"], j["Size"])
        _, df = self.get("/v1.44/system/df?type=image")
        self.assertTrue(df["Images"])
        self.assertTrue(all("VirtualSize" not in i for i in df["Images"]))
        _, df = self.get("/v1.43/system/df?type=image")
        self.assertTrue(all("VirtualSize" in i for i in df["Images"]))

    def test_image_list_until_filter(self):
        def ids(version, until):
            q = urllib.parse.quote(json.dumps({"until": [until]}))
            status, rows = self.get(f"/v{version}/images/json?filters={q}")
            self.assertEqual(status, 200, rows)
            return [r["Id"] for r in rows]

        _, j = self.get(f"/images/{IMAGE}/json")
        later = str(int(time.time()) + 3600)
        # Unversioned: every version has it.
        for version in ("1.44", "1.41"):
            self.assertIn(j["Id"], ids(version, later))
            self.assertNotIn(j["Id"], ids(version, "2000-01-01T00:00:00Z"))
        # A duration counts back from now: the image is younger than an hour.
        self.assertNotIn(j["Id"], ids("1.44", "1h"))
        q = urllib.parse.quote(json.dumps({"until": ["not-a-time"]}))
        status, data = self.get(f"/v1.44/images/json?filters={q}")
        self.assertEqual(status, 400, data)

    def test_search_is_automated_filter_finds_nothing(self):
        # No registry answers on port 1: only a search that is not sent can succeed.
        q = urllib.parse.quote(json.dumps({"is-automated": ["true"]}))
        for version in ("1.44", "1.41"):
            status, data = self.get(f"/v{version}/images/search?term=127.0.0.1:1/x&filters={q}")
            self.assertEqual((status, data), (200, []))
        q = urllib.parse.quote(json.dumps({"is-automated": ["false"]}))
        status, data = self.get(f"/v1.44/images/search?term=127.0.0.1:1/x&filters={q}")
        self.assertNotEqual(status, 200, data)

    def test_network_create_checks_ipam_config(self):
        # Unversioned in 1.44: invalid IPAM settings are a 400 for every client.
        for version in ("1.44", "1.41"):
            for cfg in ({"Subnet": "10.300.0.0/24"},
                        {"Subnet": "10.233.0.0/24", "Gateway": "10.234.0.1"},
                        {"Subnet": "10.233.0.0/24", "IPRange": "10.235.0.0/28"}):
                status, data = self.post(f"/v{version}/networks/create",
                                         {"Name": "bad-ipam", "IPAM": {"Config": [cfg]}})
                if status == 201:
                    self.request("DELETE", "/networks/bad-ipam")
                self.assertEqual(status, 400, (version, cfg, data))

    def test_info_cdi_spec_dirs_from_1_44(self):
        _, info = self.get("/v1.44/info")
        self.assertEqual(info["CDISpecDirs"], [])
        _, info = self.get("/v1.43/info")
        self.assertNotIn("CDISpecDirs", info)

    # Subnets of their own: a network with a picked subnet can get the one another test module
    # running at the same time picks in its store (and then its DNS port, its route).
    SUBNETS = {"v144-a": 40, "v144-b": 41, "v144-dns": 42, "v145-al": 43, "v145-up": 44}

    def network(self, name):
        subnet = "10.201.%d.0/24" % self.SUBNETS[name]
        status, data = self.post("/networks/create",
                                 {"Name": name, "IPAM": {"Config": [{"Subnet": subnet}]}})
        self.assertEqual(status, 201, data)
        self.addCleanup(self.request, "DELETE", f"/networks/{name}")

    def test_create_on_several_networks_from_1_44(self):
        self.network("v144-a")
        self.network("v144-b")
        eps = {"v144-a": {}, "v144-b": {"Aliases": ["bee"]}}
        body = {"HostConfig": {"NetworkMode": "v144-a"},
                "NetworkingConfig": {"EndpointsConfig": eps}}
        status, data = self.create("1.43", body)
        self.assertEqual(status, 400, data)
        self.assertIn("multiple network endpoints", data["message"])
        status, data = self.create("1.44", body)
        self.assertEqual(status, 201, data)
        _, j = self.get(f"/containers/{data['Id']}/json")
        self.assertEqual(sorted(j["NetworkSettings"]["Networks"]), ["v144-a", "v144-b"])

    def test_dns_names_from_1_44(self):
        self.network("v144-dns")
        body = {"Hostname": "dnshost", "Cmd": ["sleep", "1000"],
                "HostConfig": {"NetworkMode": "v144-dns"},
                "NetworkingConfig": {"EndpointsConfig": {"v144-dns": {"Aliases": ["web"]}}}}
        status, data = self.create("1.44", body, name="dnsnamed")
        self.assertEqual(status, 201, data)
        cid = data["Id"]
        _, j = self.get(f"/v1.44/containers/{cid}/json")
        ep = j["NetworkSettings"]["Networks"]["v144-dns"]
        self.assertEqual(ep["DNSNames"], ["dnsnamed", "web", cid[:12], "dnshost"])
        # The network's DNS responder answers to each of them.
        status, _, body = self.request("POST", f"/containers/{cid}/start")
        self.assertEqual(status, 204, body)
        _, j = self.get(f"/v1.44/containers/{cid}/json")
        ip = j["NetworkSettings"]["Networks"]["v144-dns"]["IPAddress"]
        for name in ep["DNSNames"]:
            r = subprocess.run([BERTH] + self.store_args + [
                "run", "--rm", "--network", "v144-dns", IMAGE, "nslookup", name],
                capture_output=True, text=True, env=self.env, timeout=60)
            self.assertIn(ip, r.stdout, (name, r.stdout, r.stderr))
        _, j = self.get(f"/v1.43/containers/{cid}/json")
        self.assertNotIn("DNSNames", j["NetworkSettings"]["Networks"]["v144-dns"])
        # The default network has no DNS: no names.
        status, data = self.create("1.44", {})
        _, j = self.get(f"/v1.44/containers/{data['Id']}/json")
        for ep in j["NetworkSettings"]["Networks"].values():
            self.assertIsNone(ep["DNSNames"])

    def test_host_config_mounts_echoed_in_inspect(self):
        # As Docker: HostConfig.Mounts as the create gave them, empty fields left out.
        mounts = [
            {"Type": "bind", "Source": self.tmp, "Target": "/b", "ReadOnly": True,
             "BindOptions": {"Propagation": "rslave", "ReadOnlyNonRecursive": True}},
            {"Type": "volume", "Source": "echoed", "Target": "/v",
             "VolumeOptions": {"NoCopy": True}},
            {"Type": "tmpfs", "Target": "/t",
             "TmpfsOptions": {"SizeBytes": 1048576, "Mode": 0o700}},
        ]
        status, data = self.create("1.44", {"HostConfig": {"Mounts": mounts}})
        self.assertEqual(status, 201, data)
        self.addCleanup(self.request, "DELETE", "/volumes/echoed?force=1")
        _, j = self.get(f"/v1.44/containers/{data['Id']}/json")
        self.assertEqual(j["HostConfig"]["Mounts"], mounts)
        # None given: left out.
        status, data = self.create("1.44", {})
        _, j = self.get(f"/v1.44/containers/{data['Id']}/json")
        self.assertNotIn("Mounts", j["HostConfig"])
        # The docker CLI's --mount goes the same way.
        cid = self.docker("create", "--mount", "type=tmpfs,dst=/x,tmpfs-size=2m",
                          IMAGE).stdout.strip()
        self.addCleanup(self.request, "DELETE", f"/containers/{cid}?force=1")
        out = self.docker("inspect", "-f", "{{json .HostConfig.Mounts}}", cid).stdout
        self.assertEqual(json.loads(out), [{"Type": "tmpfs", "Target": "/x",
                                            "TmpfsOptions": {"SizeBytes": 2097152}}])

    def count_checks(self, cid):
        r = subprocess.run([BERTH] + self.store_args + ["exec", cid, "sh", "-c",
                                                        "cat /tmp/n 2>/dev/null | wc -l"],
                           capture_output=True, text=True, env=self.env)
        self.assertEqual(r.returncode, 0, r.stderr)
        return int(r.stdout.strip())

    def test_health_start_interval_from_1_44(self):
        sec = 1_000_000_000
        hc = {"Test": ["CMD-SHELL", "echo x >> /tmp/n; test -e /tmp/ok"], "Interval": 60 * sec,
              "Timeout": 10 * sec, "StartPeriod": 60 * sec, "StartInterval": sec // 4}
        started = {}
        for version in ("1.44", "1.43"):
            status, data = self.create(version, {"Cmd": ["sleep", "300"], "Healthcheck": hc})
            self.assertEqual(status, 201, data)
            cid = data["Id"]
            status, _, body = self.request("POST", f"/containers/{cid}/start")
            self.assertEqual(status, 204, body)
            started[version] = cid
        _, j = self.get(f"/v1.44/containers/{started['1.44']}/json")
        self.assertEqual(j["Config"]["Healthcheck"]["StartInterval"], sec // 4)
        _, j = self.get(f"/v1.44/containers/{started['1.43']}/json")
        self.assertNotIn("StartInterval", j["Config"]["Healthcheck"])
        time.sleep(2.5)
        # In the start period and unhealthy so far: a check every 250 ms (1.44); the 1.43 client's
        # container has Docker's default start interval, 5 s: no check yet.
        fast = self.count_checks(started["1.44"])
        self.assertGreaterEqual(fast, 4)
        self.assertEqual(self.count_checks(started["1.43"]), 0)
        _, j = self.get(f"/containers/{started['1.44']}/json")
        self.assertEqual(j["State"]["Health"]["Status"], "starting")
        # Once a check passes, the checks go back to the interval.
        subprocess.run([BERTH] + self.store_args + ["exec", started["1.44"], "touch", "/tmp/ok"],
                       check=True, capture_output=True, env=self.env)
        deadline = time.time() + 10
        while time.time() < deadline:
            _, j = self.get(f"/containers/{started['1.44']}/json")
            if j["State"]["Health"]["Status"] == "healthy":
                break
            time.sleep(0.1)
        self.assertEqual(j["State"]["Health"]["Status"], "healthy")
        time.sleep(0.5)  # a run the monitor had started at the switch
        after = self.count_checks(started["1.44"])
        time.sleep(1.5)
        self.assertEqual(self.count_checks(started["1.44"]), after)
        # Without a StartInterval (the 1.43 client cannot give one), Docker's default: a check
        # every 5 s in the start period, not the 60 s interval.
        deadline = time.time() + 10
        while time.time() < deadline and self.count_checks(started["1.43"]) == 0:
            time.sleep(0.2)
        self.assertGreaterEqual(self.count_checks(started["1.43"]), 1)
        for bad in (-1, 1000):
            status, data = self.create("1.44", {"Healthcheck": dict(hc, StartInterval=bad)})
            self.assertEqual(status, 400, data)
            self.assertIn("StartInterval", data["message"])

    # Recursive read-only binds: a bind source with a tmpfs mounted under it.
    def bind_source(self, name):
        src = os.path.join(self.tmp, name)
        os.makedirs(os.path.join(src, "sub"))
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs",
                        os.path.join(src, "sub")], check=True)
        self.addCleanup(subprocess.run, ["umount", "-l", os.path.join(src, "sub")])
        return src

    def write_code(self, version, host_config):
        """The exit code of writing into the submount, in a container made at `version`."""
        status, data = self.create(version, {"Cmd": ["sh", "-c", "echo hi > /mnt/sub/f"],
                                             "HostConfig": host_config})
        self.assertEqual(status, 201, data)
        cid = data["Id"]
        status, _, body = self.request("POST", f"/containers/{cid}/start")
        self.assertEqual(status, 204, body)
        status, _, body = self.request("POST", f"/containers/{cid}/wait", timeout=60)
        self.assertEqual(status, 200, body)
        return json.loads(body)["StatusCode"]

    def test_read_only_binds_recursive_from_1_44(self):
        src = self.bind_source("rro-src")

        def mount(**bind_options):
            m = {"Type": "bind", "Source": src, "Target": "/mnt", "ReadOnly": True}
            if bind_options:
                m["BindOptions"] = bind_options
            return {"Mounts": [m]}

        # 1.44: the submount is read-only too, unless ReadOnlyNonRecursive.
        self.assertNotEqual(self.write_code("1.44", mount()), 0)
        self.assertNotEqual(self.write_code("1.44", mount(ReadOnlyForceRecursive=True)), 0)
        self.assertEqual(self.write_code("1.44", mount(ReadOnlyNonRecursive=True)), 0)
        self.assertNotEqual(self.write_code("1.44", {"Binds": [f"{src}:/mnt:ro"]}), 0)
        # Before 1.44 only the top mount is read-only (ReadOnlyNonRecursive is not in the API).
        self.assertEqual(self.write_code("1.43", mount()), 0)
        self.assertEqual(self.write_code("1.43", {"Binds": [f"{src}:/mnt:ro"]}), 0)
        # The top mount stays read-only everywhere.
        status, data = self.create("1.44", {"Cmd": ["sh", "-c", "echo hi > /mnt/f"],
                                            "HostConfig": mount(ReadOnlyNonRecursive=True)})
        self.request("POST", f"/containers/{data['Id']}/start")
        _, _, body = self.request("POST", f"/containers/{data['Id']}/wait", timeout=60)
        self.assertNotEqual(json.loads(body)["StatusCode"], 0)

    def test_read_only_recursion_options_checked(self):
        src = self.bind_source("rro-checks")
        m = {"Type": "bind", "Source": src, "Target": "/mnt", "ReadOnly": True,
             "BindOptions": {"ReadOnlyForceRecursive": True}}
        status, data = self.create("1.43", {"HostConfig": {"Mounts": [m]}})
        self.assertEqual(status, 400, data)
        self.assertIn("needs API v1.44", data["message"])
        # Forced recursion of a mount that propagates submounts in later cannot hold.
        slave = dict(m, BindOptions={"ReadOnlyForceRecursive": True, "Propagation": "rslave"})
        status, data = self.create("1.44", {"HostConfig": {"Mounts": [slave]}})
        self.assertEqual(status, 400, data)
        self.assertIn("rprivate", data["message"])
        writable = dict(m, ReadOnly=False)
        status, data = self.create("1.44", {"HostConfig": {"Mounts": [writable]}})
        self.assertEqual(status, 400, data)
        self.assertIn("must also set ReadOnly", data["message"])
        both = dict(m, BindOptions={"ReadOnlyForceRecursive": True, "ReadOnlyNonRecursive": True})
        status, data = self.create("1.44", {"HostConfig": {"Mounts": [both]}})
        self.assertEqual(status, 400, data)

    def test_docker_cli_bind_recursive(self):
        src = self.bind_source("rro-cli")
        write = ["sh", "-c", "echo hi > /mnt/sub/f"]
        base = f"type=bind,src={src},dst=/mnt,readonly"
        p = self.docker("run", "--rm", "--mount", base, IMAGE, *write, check=False)
        self.assertNotEqual(p.returncode, 0, p.stderr)
        self.assertIn("Read-only file system", p.stderr)
        p = self.docker("run", "--rm", "--mount", base + ",bind-recursive=writable", IMAGE,
                        *write, check=False)
        self.assertEqual(p.returncode, 0, p.stderr)
        p = self.docker("run", "--rm", "--mount", base + ",bind-recursive=readonly", IMAGE,
                        *write, check=False)
        self.assertNotEqual(p.returncode, 0, p.stderr)
        # Not recursive at all: the tmpfs is not there, the directory under it is read-only.
        os.unlink(os.path.join(src, "sub", "f"))
        p = self.docker("run", "--rm", "--mount", base + ",bind-recursive=disabled", IMAGE,
                        *write, check=False)
        self.assertNotEqual(p.returncode, 0, p.stderr)
        self.assertFalse(os.path.exists(os.path.join(src, "sub", "f")))

    def test_berth_cli_keeps_podman_read_only_binds(self):
        src = self.bind_source("rro-berth")
        write = ["sh", "-c", "echo hi > /mnt/sub/f"]

        def run(*flags):
            return subprocess.run([BERTH] + self.store_args + ["run", "--rm", *flags, IMAGE,
                                                                *write],
                                  capture_output=True, text=True, env=self.env, timeout=60)

        # Podman's -v ...:ro and --mount ...,ro: the top mount only.
        self.assertEqual(run("-v", f"{src}:/mnt:ro").returncode, 0)
        self.assertEqual(run("--mount", f"type=bind,src={src},dst=/mnt,ro").returncode, 0)
        # Docker's bind-recursive chooses.
        r = run("--mount", f"type=bind,src={src},dst=/mnt,ro,bind-recursive=enabled")
        self.assertNotEqual(r.returncode, 0, r)
        r = run("--mount", f"type=bind,src={src},dst=/mnt,ro,bind-recursive=readonly")
        self.assertNotEqual(r.returncode, 0, r)
        r = run("--mount", f"type=bind,src={src},dst=/mnt,bind-recursive=readonly")
        self.assertEqual(r.returncode, 125, r)
        self.assertIn("needs a read-only mount", r.stderr)
        r = run("--mount", f"type=bind,src={src},dst=/mnt,ro,bind-recursive=sometimes")
        self.assertEqual(r.returncode, 125, r)

    # --- 1.45 ------------------------------------------------------------------------------

    def test_image_inspect_leaves_out_container_config_from_1_45(self):
        _, j = self.get(f"/v1.45/images/{IMAGE}/json")
        self.assertNotIn("Container", j)
        self.assertNotIn("ContainerConfig", j)
        self.assertIn("Config", j)
        _, j = self.get(f"/v1.44/images/{IMAGE}/json")
        self.assertEqual(j["ContainerConfig"], j["Config"])

    def test_aliases_without_the_short_id_from_1_45(self):
        self.network("v145-al")
        body = {"HostConfig": {"NetworkMode": "v145-al"},
                "NetworkingConfig": {"EndpointsConfig": {"v145-al": {"Aliases": ["api"]}}}}
        status, data = self.create("1.45", body, name="aliased")
        self.assertEqual(status, 201, data)
        cid = data["Id"]
        _, j = self.get(f"/v1.45/containers/{cid}/json")
        ep = j["NetworkSettings"]["Networks"]["v145-al"]
        self.assertEqual(ep["Aliases"], ["api"])
        self.assertEqual(ep["DNSNames"], ["aliased", "api", cid[:12]])
        _, j = self.get(f"/v1.44/containers/{cid}/json")
        self.assertEqual(j["NetworkSettings"]["Networks"]["v145-al"]["Aliases"], ["api", cid[:12]])

    def test_last_network_disconnected_and_reconnected_as_compose_does_from_1_45(self):
        # docker-compose 1.x at `up` with 1.45: Aliases lack the short id, so it disconnects the
        # created container from its (only) network and connects it again with its aliases.
        self.network("v145-up")
        body = {"Cmd": ["sleep", "1000"], "HostConfig": {"NetworkMode": "v145-up"},
                "NetworkingConfig": {"EndpointsConfig": {"v145-up": {"Aliases": ["web"]}}}}
        status, data = self.create("1.45", body, name="composed")
        self.assertEqual(status, 201, data)
        cid = data["Id"]
        status, data = self.post("/v1.45/networks/v145-up/disconnect", {"Container": cid})
        self.assertEqual(status, 200, data)
        _, j = self.get(f"/v1.45/containers/{cid}/json")
        self.assertEqual(j["NetworkSettings"]["Networks"], {})
        status, data = self.post("/v1.45/networks/v145-up/connect",
                                 {"Container": cid, "EndpointConfig": {"Aliases": ["web"]}})
        self.assertEqual(status, 200, data)
        status, _, body = self.request("POST", f"/v1.45/containers/{cid}/start")
        self.assertEqual(status, 204, body)
        _, j = self.get(f"/v1.45/containers/{cid}/json")
        ep = j["NetworkSettings"]["Networks"]["v145-up"]
        self.assertEqual(ep["Aliases"], ["web"])
        self.assertTrue(ep["IPAddress"], ep)
        # Disconnected while it runs: it runs on with loopback only.
        status, data = self.post("/v1.45/networks/v145-up/disconnect", {"Container": cid})
        self.assertEqual(status, 200, data)
        _, j = self.get(f"/v1.45/containers/{cid}/json")
        self.assertEqual(j["NetworkSettings"]["Networks"], {})
        self.assertTrue(j["State"]["Running"])
        links = self.docker("exec", cid, "ip", "-o", "link", "show").stdout.splitlines()
        self.assertEqual([l.split(":")[1].strip() for l in links], ["lo"])

    def test_volume_subpath_from_1_45(self):
        status, data = self.post("/volumes/create", {"Name": "subvol"})
        self.assertEqual(status, 201, data)
        self.addCleanup(self.request, "DELETE", "/volumes/subvol?force=1")
        root = data["Mountpoint"]
        os.makedirs(os.path.join(root, "data", "inner"))
        with open(os.path.join(root, "data", "inner", "f"), "w") as f:
            f.write("from-subpath\n")
        os.symlink("/etc", os.path.join(root, "out"))
        os.symlink("data/inner", os.path.join(root, "in"))

        def mount(sub):
            return {"Mounts": [{"Type": "volume", "Source": "subvol", "Target": "/mnt",
                                "VolumeOptions": {"Subpath": sub}}]}

        def run(sub):
            # Checked where the volume is at hand: at create, and again at each start.
            status, data = self.create("1.45", {"Cmd": ["cat", "/mnt/inner/f", "/mnt/f"],
                                                "HostConfig": mount(sub)})
            if status != 201:
                return status, data["message"], ""
            cid = data["Id"]
            status, _, body = self.request("POST", f"/containers/{cid}/start")
            if status != 204:
                return status, json.loads(body)["message"], ""
            self.request("POST", f"/containers/{cid}/wait", timeout=60)
            _, _, logs = self.request("GET", f"/containers/{cid}/logs?stdout=1&stderr=1")
            return status, "", logs

        status, _, logs = run("data")
        self.assertEqual(status, 204)
        self.assertIn(b"from-subpath", logs)
        status, _, logs = run("in")  # a symlink inside the volume stays inside
        self.assertEqual(status, 204)
        self.assertIn(b"from-subpath", logs)
        status, message, _ = run("out")
        self.assertNotEqual(status, 204)
        self.assertIn("leads out of the volume", message)
        status, message, _ = run("missing")
        self.assertNotEqual(status, 204)
        self.assertIn("subpath missing", message)
        for bad in ("/data", "../x", "data/../.."):
            status, data = self.create("1.45", {"HostConfig": mount(bad)})
            self.assertEqual(status, 400, (bad, data))
            self.assertIn("relative path within the volume", data["message"])
        status, data = self.create("1.44", {"HostConfig": mount("data")})
        self.assertEqual(status, 400, data)
        self.assertIn("needs API v1.45", data["message"])
        # The docker CLI's volume-subpath, at the 1.45 it negotiates (1.44 refuses it).
        args = ["run", "--rm", "--mount", "type=volume,src=subvol,dst=/mnt,volume-subpath=data",
                IMAGE, "cat", "/mnt/inner/f"]
        env = self.docker_env
        self.docker_env = dict(env, DOCKER_API_VERSION="1.44")
        try:
            p = self.docker(*args, check=False)
        finally:
            self.docker_env = env
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("needs API v1.45", p.stderr)
        p = self.docker(*args)
        self.assertEqual(p.stdout, "from-subpath\n")
        # berth's own (Podman's subpath=).
        r = subprocess.run([BERTH] + self.store_args + [
            "run", "--rm", "--mount", "type=volume,src=subvol,dst=/mnt,subpath=data/inner", IMAGE,
            "cat", "/mnt/f"], capture_output=True, text=True, env=self.env, timeout=60)
        self.assertEqual((r.returncode, r.stdout), (0, "from-subpath\n"), r.stderr)
        r = subprocess.run([BERTH] + self.store_args + [
            "run", "--rm", "--mount", f"type=bind,src={self.tmp},dst=/mnt,subpath=x", IMAGE,
            "true"], capture_output=True, text=True, env=self.env, timeout=60)
        self.assertEqual(r.returncode, 125, r.stderr)
        self.assertIn("only allowed with type=volume", r.stderr)


if __name__ == "__main__":
    unittest.main()
