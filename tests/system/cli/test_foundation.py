"""Issue 2: the CLI frame, version, info, plugin ls/inspect, refusals and config errors."""
import glob
import json
import os
import platform
import re
import shutil
import tempfile
import unittest

from berth_test import BerthTestCase, BUILD_DIR, PLUGIN_DIR


class VersionInfo(BerthTestCase):
    def test_version_text_and_templates(self):
        r = self.ok("version", store=False)
        self.assertIn("Version:", r.out)
        v = self.ok("version", "--format", "{{.Client.Version}}", store=False).out.strip()
        self.assertRegex(v, r"^\d+\.\d+\.\d+$")
        j = self.json("version", "--format", "json", store=False)
        self.assertEqual(j["Client"]["Version"], v)
        self.assertEqual(self.ok("--version", store=False).out, r.out)

    def test_info_template_as_podman(self):
        # The same templates that work with `podman info`.
        self.assertEqual(self.ok("info", "--format", "{{.Store.GraphDriverName}}").out, "vfs\n")
        self.assertEqual(self.ok("info", "--format", "{{.Host.Kernel}}").out.strip(),
                         platform.release())
        self.assertEqual(self.ok("info", "--format", "{{.Store.GraphRoot}}").out.strip(),
                         self.root)
        self.assertEqual(self.ok("info", "--format", "{{.Store.RunRoot}}").out.strip(),
                         self.runroot)
        self.assertIn(self.ok("info", "--format", "{{.Host.CgroupVersion}}").out.strip(),
                      ("v1", "v2"))
        self.assertEqual(self.ok("info", "--format", "{{.Host.Security.Rootless}}").out.strip(),
                         "false" if os.geteuid() == 0 else "true")
        self.assertEqual(self.ok("system", "info", "--format", "{{.Host.OS}}").out.strip(), "linux")

    def test_info_json_and_yaml(self):
        j = self.json("info", "--format", "json")
        for key in ("host", "store", "registries", "plugins", "version"):
            self.assertIn(key, j)
        self.assertEqual(j["store"]["graphDriverName"], "vfs")
        self.assertIn("flag", j["store"]["graphDriverReason"])
        self.assertIn("vfs", j["plugins"]["storage"])
        text = self.ok("info").out
        self.assertRegex(text, r"(?m)^store:$")
        self.assertRegex(text, r"(?m)^  graphDriverName: vfs$")

    def test_info_chooses_a_driver_by_default(self):
        r = self.berth("--root", self.root + "-default", "info", "--format",
                       "{{.Store.GraphDriverName}}|{{.Store.GraphDriverReason}}", store=False)
        self.assertEqual(r.rc, 0, r)
        name, reason = r.out.strip().split("|", 1)
        storage = self.json("info", "--format", "{{json .Plugins.Storage}}")
        if name:
            self.assertIn(name, storage)
            self.assertNotEqual(name, "vfs", "vfs is used only when named")
        self.assertTrue(reason)


class Plugins(BerthTestCase):
    def test_ls_lists_vfs_and_example(self):
        r = self.ok("plugin", "ls")
        self.assertRegex(r.out, r"(?m)^KIND\s+NAME\s+VERSION\s+ABI\s+FILE$")
        self.assertRegex(r.out, r"(?m)^berth\.storage\.v1\s+vfs\s")
        self.assertRegex(r.out, r"(?m)^berth\.storage\.v1\s+example\s")
        names = self.ok("plugin", "list", "-q").out.split()
        self.assertIn("vfs", names)
        self.assertIn("example", names)
        rows = self.json("plugin", "ls", "--format", "json")
        self.assertTrue(any(p["Name"] == "vfs" and p["ABI"] == "1.0" for p in rows))

    def test_inspect_probes_on_this_host(self):
        j = self.json("plugin", "inspect", "vfs")
        self.assertEqual(len(j), 1)
        self.assertEqual(j[0]["Kind"], "berth.storage.v1")
        self.assertTrue(j[0]["Probe"]["Supported"])
        self.assertTrue(j[0]["File"].endswith("berth-storage-vfs.so"))
        self.assertEqual(self.ok("plugin", "inspect", "--format", "{{.Name}} {{.Version}}",
                                 "example").out.strip(), "example 1.0.0")
        r = self.berth("plugin", "inspect", "nosuch")
        self.assertEqual(r.rc, 125)
        self.assertIn("no plugin named nosuch", r.err)

    def test_refusals_name_the_file_and_engine_goes_on(self):
        d = tempfile.mkdtemp(prefix="berth-plugins-", dir=self.tmp)
        vfs = os.path.join(PLUGIN_DIR, "berth-storage-vfs.so")
        # A truncated plugin.
        with open(vfs, "rb") as f:
            data = f.read()
        with open(os.path.join(d, "berth-storage-trunc.so"), "wb") as f:
            f.write(data[: len(data) // 3])
        # A shared object without a descriptor.
        libz = (glob.glob("/usr/lib/*/libz.so.1") + glob.glob("/lib/*/libz.so.1"))[0]
        shutil.copy(libz, os.path.join(d, "berth-storage-nodesc.so"))
        # Two plugins with the same kind and name: this one wins (first in the search path).
        shutil.copy(vfs, os.path.join(d, "berth-storage-vfs.so"))
        # A plugin built for another SDK ABI major (built by tests/conformance/loader).
        abi99 = os.path.join(BUILD_DIR, "tests", "conformance", "loader", "bad-plugins",
                             "bad_abi_major.so")
        shutil.copy(abi99, os.path.join(d, "berth-storage-abi99.so"))
        r = self.berth("plugin", "ls", env={"BERTH_PLUGIN_PATH": d})
        self.assertEqual(r.rc, 0, r)
        self.assertRegex(r.err, r"berth-storage-trunc\.so.*(truncated|past the end)")
        self.assertRegex(r.err, r"berth-storage-nodesc\.so.*no berth plugin descriptor")
        self.assertRegex(r.err, re.escape(vfs) + r".*duplicate .*plugin 'vfs'")
        self.assertRegex(r.err, r"berth-storage-abi99\.so: built for berth SDK ABI 99\.")
        # The engine goes on: vfs (the copy in d) still lists and works.
        self.assertRegex(r.out, r"(?m)^berth\.storage\.v1\s+vfs\s.*" + re.escape(d))
        i = self.berth("info", "--format", "{{.Store.GraphDriverName}}",
                       env={"BERTH_PLUGIN_PATH": d})
        self.assertEqual(i.out, "vfs\n", i)
        j = self.json("info", "--format", "{{json .Plugins.Refused}}", env={"BERTH_PLUGIN_PATH": d})
        self.assertGreaterEqual(len(j), 3)


class Frame(BerthTestCase):
    def test_unknown_command_and_flag(self):
        r = self.berth("nosuchcommand")
        self.assertEqual(r.rc, 125)
        self.assertIn("Error: unrecognized command", r.err)
        r = self.berth("version", "--bogus", store=False)
        self.assertEqual(r.rc, 125)
        self.assertIn("Error: unknown flag: --bogus", r.err)
        r = self.berth("--bogus", "version", store=False)
        self.assertEqual(r.rc, 125)
        r = self.berth("--log-level", "loud", "version", store=False)
        self.assertEqual(r.rc, 125)
        self.assertIn("log level", r.err)
        r = self.berth("plugin", "inspect")
        self.assertEqual(r.rc, 125)
        self.assertIn("requires at least 1 arg", r.err)
        r = self.berth("plugin")
        self.assertEqual(r.rc, 125)
        self.assertIn("missing command", r.err)

    def test_help_on_every_command(self):
        top = self.ok("--help", store=False).out
        self.assertIn("Available Commands:", top)

        def commands(help_text):
            m = help_text.split("Available Commands:\n", 1)
            if len(m) < 2:
                return []
            out = []
            for line in m[1].splitlines():
                if not line.startswith("  "):
                    break
                out.append(line.split()[0])
            return out

        seen = 0
        stack = [[c] for c in commands(top)]
        while stack:
            path = stack.pop()
            r = self.berth(*path, "--help", store=False)
            self.assertEqual(r.rc, 0, f"{path}: {r}")
            self.assertIn("Usage:\n  berth " + " ".join(path), r.out)
            seen += 1
            stack.extend(path + [c] for c in commands(r.out))
        self.assertGreater(seen, 3)

    def test_broken_config_names_file_and_line(self):
        bad = os.path.join(self.tmp, "bad-storage.conf")
        with open(bad, "w") as f:
            f.write('[storage]\ndriver = "vfs"\ngraphroot = 5\n')
        r = self.berth("info", env={"CONTAINERS_STORAGE_CONF": bad})
        self.assertEqual(r.rc, 125)
        self.assertIn(bad + ":3:", r.err)
        self.assertIn("graphroot", r.err)
        with open(bad, "w") as f:
            f.write('[storage\ndriver = "vfs"\n')
        r = self.berth("info", env={"CONTAINERS_STORAGE_CONF": bad})
        self.assertEqual(r.rc, 125)
        self.assertIn(bad + ":1:", r.err)

    def test_storage_conf_selects_driver(self):
        conf = os.path.join(self.tmp, "storage.conf")
        with open(conf, "w") as f:
            f.write('[storage]\ndriver = "example"\ngraphroot = "%s"\nrunroot = "%s"\n'
                    % (self.root + "-conf", self.runroot + "-conf"))
        r = self.berth("info", "--format",
                       "{{.Store.GraphDriverName}} {{.Store.GraphRoot}} {{.Store.GraphDriverReason}}",
                       env={"CONTAINERS_STORAGE_CONF": conf}, store=False)
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(r.out.split()[:2], ["example", self.root + "-conf"])
        self.assertIn(conf, r.out)


if __name__ == "__main__":
    unittest.main()
