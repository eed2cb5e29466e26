"""A `system service` whose berth binary is replaced while it runs (a package upgrade) keeps
making containers: it runs what is at its path now, instead of failing with "cannot run the
monitor ... (is berth installed whole?)" because /proc/self/exe reads "PATH (deleted)"."""
import os
import shutil
import unittest

from api_fixture import IMAGE, ApiTestCase
from berth_test import BERTH, PLUGIN_DIR


class UpgradeTest(ApiTestCase):
    @classmethod
    def service_binary(cls):
        # An installation of its own: bin/berth, bin/berth-monitor, lib/berth/plugins.
        prefix = os.path.join(cls.tmp, "prefix")
        os.makedirs(os.path.join(prefix, "bin"))
        os.makedirs(os.path.join(prefix, "lib", "berth"))
        cls.installed = os.path.join(prefix, "bin", "berth")
        shutil.copy2(BERTH, cls.installed)
        shutil.copy2(os.path.join(os.path.dirname(BERTH), "berth-monitor"),
                     os.path.join(prefix, "bin", "berth-monitor"))
        os.symlink(PLUGIN_DIR, os.path.join(prefix, "lib", "berth", "plugins"))
        return cls.installed

    def test_containers_after_the_binary_is_replaced(self):
        out = self.docker("run", "--rm", "--network", "none", IMAGE, "echo", "before").stdout
        self.assertEqual(out, "before\n")
        # As dpkg does: the new file is written beside and renamed over the old one.
        new = self.installed + ".dpkg-new"
        shutil.copy2(BERTH, new)
        os.rename(new, self.installed)
        with open("/proc/%d/maps" % self.service.pid) as f:
            self.assertIn(self.installed + " (deleted)", f.read())
        out = self.docker("run", "--rm", "--network", "none", IMAGE, "echo", "after").stdout
        self.assertEqual(out, "after\n")
        self.docker("run", "-d", "--name", "upg", "--network", "none", IMAGE, "sleep", "60")
        self.addCleanup(self.docker, "rm", "-f", "upg", check=False)
        self.assertEqual(self.docker("exec", "upg", "echo", "in").stdout, "in\n")


if __name__ == "__main__":
    unittest.main()
