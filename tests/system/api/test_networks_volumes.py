"""Networks and volumes through berth's API service: docker-py (networks.create/list/get/remove,
volumes.create/list/get/remove/prune) and the docker CLI (network create/ls/inspect/rm, volume
create/ls/inspect/rm), plus system df and Docker's error codes."""
import ipaddress
import json
import random
import unittest

import docker

from api_fixture import IMAGE, ApiTestCase


class NetworksVolumesTest(ApiTestCase):
    def setUp(self):
        self.client = docker.DockerClient(base_url=self.url, version="1.41", timeout=60)

    def tearDown(self):
        self.client.close()

    # --- networks -------------------------------------------------------------------------

    def test_docker_py_network_lifecycle(self):
        net = self.client.networks.create("pynet", driver="bridge",
                                          ipam=docker.types.IPAMConfig(pool_configs=[
                                              docker.types.IPAMPool(subnet="10.201.3.0/24",
                                                                    gateway="10.201.3.1")]),
                                          labels={"team": "api"})
        try:
            self.assertEqual(len(net.id), 64)
            got = self.client.networks.get("pynet")
            self.assertEqual(got.id, net.id)
            self.assertEqual(got.attrs["Driver"], "bridge")
            self.assertEqual(got.attrs["Scope"], "local")
            self.assertEqual(got.attrs["IPAM"]["Config"][0]["Subnet"], "10.201.3.0/24")
            self.assertEqual(got.attrs["IPAM"]["Config"][0]["Gateway"], "10.201.3.1")
            self.assertEqual(got.attrs["Labels"], {"team": "api"})
            self.assertEqual(got.attrs["Containers"], {})
            names = [n.name for n in self.client.networks.list()]
            self.assertIn("pynet", names)
            # Docker's filters: by name and by label.
            self.assertEqual([n.name for n in self.client.networks.list(names=["pynet"])],
                             ["pynet"])
            self.assertEqual([n.name for n in self.client.networks.list(
                filters={"label": "team=api"})], ["pynet"])
            self.assertEqual(self.client.networks.list(filters={"label": "team=other"}), [])
            # A second network of the same name is a conflict.
            with self.assertRaises(docker.errors.APIError) as cm:
                self.client.networks.create("pynet")
            self.assertEqual(cm.exception.status_code, 409)
        finally:
            net.remove()
        with self.assertRaises(docker.errors.NotFound):
            self.client.networks.get("pynet")

    def test_ipv6_network_and_static_address(self):
        # A unique local /64 of this run's own (never fd00::/64, which hosts may use).
        gid = random.getrandbits(40) | 1
        sub = ipaddress.IPv6Network(((0xFD << 120) | (gid << 80), 64))
        gw6 = str(sub.network_address + 1)
        want = str(sub.network_address + 0x77)
        bridge = "bt6api" + format(gid & 0xffff, "x")
        net = self.client.networks.create(
            "py6", driver="bridge", enable_ipv6=True,
            options={"com.docker.network.bridge.name": bridge},
            ipam=docker.types.IPAMConfig(pool_configs=[
                docker.types.IPAMPool(subnet="10.201.6.0/24", gateway="10.201.6.1"),
                docker.types.IPAMPool(subnet=str(sub), gateway=gw6)]))
        try:
            got = self.client.networks.get("py6").attrs
            self.assertTrue(got["EnableIPv6"], got)
            self.assertIn({"Subnet": str(sub), "Gateway": gw6}, got["IPAM"]["Config"])
            self.assertIn({"Subnet": "10.201.6.0/24", "Gateway": "10.201.6.1"},
                          got["IPAM"]["Config"])
            # NetworkingConfig.EndpointsConfig.py6.IPAMConfig.IPv6Address at create.
            api = self.client.api

            def create(ip6, *cmd):
                return api.create_container(
                    IMAGE, list(cmd), host_config=api.create_host_config(network_mode="py6"),
                    networking_config=api.create_networking_config({
                        "py6": api.create_endpoint_config(ipv6_address=ip6)}))["Id"]

            c = self.client.containers.get(create(want, "sleep", "1000"))
            try:
                c.start()
                attrs = self.client.api.inspect_container(c.id)
                ns = attrs["NetworkSettings"]
                ep = ns["Networks"]["py6"]
                self.assertEqual(ep["GlobalIPv6Address"], want, ep)
                self.assertEqual(ep["GlobalIPv6PrefixLen"], 64)
                self.assertEqual(ep["IPv6Gateway"], gw6)
                self.assertEqual(ep["IPAMConfig"]["IPv6Address"], want, ep)
                self.assertTrue(ep["IPAddress"].startswith("10.201.6."), ep)
                self.assertEqual(ns["GlobalIPv6Address"], want)
                self.assertEqual(ns["GlobalIPv6PrefixLen"], 64)
                self.assertEqual(ns["IPv6Gateway"], gw6)
                # The network lists the container with both addresses.
                member = self.client.networks.get("py6").attrs["Containers"][c.id]
                self.assertEqual(member["IPv6Address"], want + "/64")
                self.assertTrue(member["IPv4Address"].startswith("10.201.6."), member)
                # POST /networks/{id}/connect with EndpointConfig.IPAMConfig.IPv6Address.
                other = ipaddress.IPv6Network(((0xFD << 120) | ((gid ^ 2) << 80), 64))
                want2 = str(other.network_address + 0x99)
                net2 = self.client.networks.create(
                    "py6b", driver="bridge", enable_ipv6=True,
                    options={"com.docker.network.bridge.name": bridge + "b"},
                    ipam=docker.types.IPAMConfig(pool_configs=[
                        docker.types.IPAMPool(subnet=str(other))]))
                try:
                    api.connect_container_to_network(c.id, "py6b", ipv6_address=want2)
                    ep2 = api.inspect_container(c.id)["NetworkSettings"]["Networks"]["py6b"]
                    self.assertEqual(ep2["GlobalIPv6Address"], want2, ep2)
                    self.assertEqual(ep2["IPAMConfig"], {"IPv6Address": want2})
                    self.assertEqual(ep2["IPAddress"], "")
                    api.disconnect_container_from_network(c.id, "py6b")
                finally:
                    net2.remove()
                # An address outside the subnet is refused with Docker's 400.
                with self.assertRaises(docker.errors.APIError) as cm:
                    create("fd01::5", "true")
                self.assertEqual(cm.exception.status_code, 400)
                self.assertIn("is not a host address of subnet", str(cm.exception))
            finally:
                c.remove(force=True)
        finally:
            net.remove()

    def test_network_inspect_missing_is_404(self):
        status, body = self.request_json("GET", "/v1.41/networks/no-such-net")
        self.assertEqual(status, 404)
        self.assertIn("no-such-net", body["message"])

    def test_default_network_is_listed_and_cannot_be_removed(self):
        nets = self.client.networks.list()
        self.assertTrue(any(n.attrs["Driver"] == "bridge" for n in nets))
        # "bridge" is the default network for Docker clients.
        self.assertTrue(self.client.networks.get("bridge").id)
        status, _ = self.request_json("DELETE", "/v1.41/networks/bridge")
        self.assertIn(status, (403, 404, 409))

    def test_network_prune(self):
        self.client.networks.create("prune-me", labels={"x": "1"})
        self.client.networks.create("keep-me")
        try:
            res = self.client.networks.prune(filters={"label": "x=1"})
            self.assertEqual(res["NetworksDeleted"], ["prune-me"])
            self.assertTrue(self.client.networks.get("keep-me").id)
        finally:
            self.client.networks.get("keep-me").remove()

    def test_malformed_network_create_is_400(self):
        status, _, _ = self.request("POST", "/v1.41/networks/create", body=b"{not json",
                                    headers={"Content-Type": "application/json"})
        self.assertEqual(status, 400)
        status, body = self.request_json("POST", "/v1.41/networks/create", body=b"{}")
        self.assertEqual(status, 400)
        self.assertIn("Name", body["message"])

    def test_docker_cli_network_commands(self):
        out = self.docker("network", "create", "--subnet", "10.201.4.0/24", "clinet").stdout
        self.assertEqual(len(out.strip()), 64)
        try:
            ls = self.docker("network", "ls", "--format", "{{.Name}} {{.Driver}}").stdout
            self.assertIn("clinet bridge", ls.splitlines())
            ins = json.loads(self.docker("network", "inspect", "clinet").stdout)
            self.assertEqual(ins[0]["IPAM"]["Config"][0]["Subnet"], "10.201.4.0/24")
        finally:
            self.assertEqual(self.docker("network", "rm", "clinet").stdout.strip(), "clinet")
        p = self.docker("network", "inspect", "clinet", check=False)
        self.assertNotEqual(p.returncode, 0)

    def test_container_on_a_network(self):
        net = self.client.networks.create("ctrnet")
        c = None
        try:
            c = self.client.containers.create(IMAGE, ["sleep", "60"], name="on-ctrnet",
                                              network="ctrnet")
            attrs = self.client.api.inspect_container(c.id)
            self.assertEqual(attrs["HostConfig"]["NetworkMode"], "ctrnet")
            self.assertIn("ctrnet", attrs["NetworkSettings"]["Networks"])
            # Removing a network a container is configured on is refused.
            status, _ = self.request_json("DELETE", "/v1.41/networks/ctrnet")
            self.assertEqual(status, 409)
        finally:
            if c is not None:
                c.remove(force=True)
            net.remove()

    # --- volumes --------------------------------------------------------------------------

    def test_docker_py_volume_lifecycle(self):
        v = self.client.volumes.create("pyvol", labels={"k": "v"})
        try:
            self.assertEqual(v.name, "pyvol")
            got = self.client.volumes.get("pyvol")
            self.assertEqual(got.attrs["Driver"], "local")
            self.assertEqual(got.attrs["Labels"], {"k": "v"})
            self.assertEqual(got.attrs["Scope"], "local")
            self.assertTrue(got.attrs["Mountpoint"].endswith("/pyvol/_data"))
            self.assertTrue(got.attrs["CreatedAt"])
            self.assertIn("pyvol", [x.name for x in self.client.volumes.list()])
            self.assertEqual([x.name for x in self.client.volumes.list(
                filters={"label": "k=v"})], ["pyvol"])
            # Creating an existing name answers with that volume, as Docker.
            again = self.client.volumes.create("pyvol")
            self.assertEqual(again.name, "pyvol")
        finally:
            v.remove()
        with self.assertRaises(docker.errors.NotFound):
            self.client.volumes.get("pyvol")

    def test_volume_prune_and_df(self):
        self.client.volumes.create("prunable")
        df = self.client.df()
        self.assertIn("prunable", [v["Name"] for v in df["Volumes"]])
        entry = [v for v in df["Volumes"] if v["Name"] == "prunable"][0]
        self.assertEqual(entry["UsageData"]["RefCount"], 0)
        res = self.client.volumes.prune()
        self.assertIn("prunable", res["VolumesDeleted"])
        self.assertIn("SpaceReclaimed", res)
        self.assertNotIn("prunable", [x.name for x in self.client.volumes.list()])

    def test_volume_missing_is_404(self):
        status, body = self.request_json("GET", "/v1.41/volumes/nope")
        self.assertEqual(status, 404)
        status, _ = self.request_json("DELETE", "/v1.41/volumes/nope")
        self.assertEqual(status, 404)

    def test_docker_cli_volume_commands(self):
        self.assertEqual(self.docker("volume", "create", "clivol").stdout.strip(), "clivol")
        ls = self.docker("volume", "ls", "--format", "{{.Name}}").stdout.split()
        self.assertIn("clivol", ls)
        ins = json.loads(self.docker("volume", "inspect", "clivol").stdout)
        self.assertEqual(ins[0]["Name"], "clivol")
        self.assertEqual(self.docker("volume", "rm", "clivol").stdout.strip(), "clivol")
        self.assertNotIn("clivol", self.docker("volume", "ls", "-q").stdout.split())


if __name__ == "__main__":
    unittest.main()
