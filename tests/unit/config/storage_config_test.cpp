#include <gtest/gtest.h>

#include "config_fixture.hpp"

namespace berth::config::testing {
namespace {

using StorageConfigTest = ConfigFixture;

TEST_F(StorageConfigTest, DefaultsForRootWithoutFiles) {
  auto c = load_storage_config(paths());
  ASSERT_TRUE(c) << c.error().message();
  EXPECT_EQ(c->driver, "");
  EXPECT_EQ(c->graphroot, "/var/lib/berth/storage");
  EXPECT_EQ(c->runroot, "/run/berth/storage");
  EXPECT_EQ(c->source_of("storage.graphroot"), "default");
  EXPECT_EQ(c->source_of("storage.runroot"), "default");
  EXPECT_EQ(c->file, "");
  EXPECT_FALSE(c->imagestore);
}

TEST_F(StorageConfigTest, BerthFileIsFoundFirst) {
  write(berth_ / "storage.conf",
        "[storage]\ndriver = \"vfs\"\ngraphroot = \"/srv/berth\"\nrunroot = \"/run/b\"\n");
  write(etc_ / "storage.conf", "[storage]\ndriver = \"overlay\"\n");
  auto c = load_storage_config(paths());
  ASSERT_TRUE(c) << c.error().message();
  EXPECT_EQ(c->driver, "vfs");
  EXPECT_EQ(c->graphroot, "/srv/berth");
  EXPECT_EQ(c->runroot, "/run/b");
  EXPECT_EQ(c->file, (berth_ / "storage.conf").string());
  EXPECT_EQ(c->source_of("storage.driver"), (berth_ / "storage.conf").string());
  EXPECT_EQ(c->source_of("storage.graphroot"), (berth_ / "storage.conf").string());
}

TEST_F(StorageConfigTest, GraphrootNeverTakenFromContainersStorageConf) {
  write(etc_ / "storage.conf", R"([storage]
driver = "overlay"
graphroot = "/var/lib/containers/storage"
runroot = "/run/containers/storage"
imagestore = "/var/lib/containers/images"

[storage.options.overlay]
mount_program = "/usr/bin/fuse-overlayfs"
mountopt = "nodev,metacopy=on"
)");
  write(share_ / "storage.conf", "[storage]\ndriver = \"btrfs\"\n");
  auto c = load_storage_config(paths());
  ASSERT_TRUE(c) << c.error().message();
  // The driver options are an admin's choice for the host and apply...
  EXPECT_EQ(c->driver, "overlay");
  EXPECT_EQ(c->options.overlay.mount_program, "/usr/bin/fuse-overlayfs");
  EXPECT_EQ(c->options.overlay.mountopt, "nodev,metacopy=on");
  EXPECT_EQ(c->source_of("storage.options.overlay.mount_program"),
            (etc_ / "storage.conf").string());
  // ...but Podman's store is not berth's.
  EXPECT_EQ(c->graphroot, "/var/lib/berth/storage");
  EXPECT_EQ(c->runroot, "/run/berth/storage");
  EXPECT_FALSE(c->imagestore);
  EXPECT_EQ(c->source_of("storage.graphroot"), "default");
}

TEST_F(StorageConfigTest, GraphrootNeverTakenFromUsrShare) {
  write(share_ / "storage.conf",
        "[storage]\ndriver = \"overlay\"\ngraphroot = \"/var/lib/containers/storage\"\n");
  auto c = load_storage_config(paths());
  ASSERT_TRUE(c) << c.error().message();
  EXPECT_EQ(c->driver, "overlay");
  EXPECT_EQ(c->file, (share_ / "storage.conf").string());
  EXPECT_EQ(c->graphroot, "/var/lib/berth/storage");
}

TEST_F(StorageConfigTest, EnvFileReplacesSearchAndMaySetGraphroot) {
  write(berth_ / "storage.conf", "[storage]\ndriver = \"vfs\"\n");
  write(root_ / "mine.conf", "[storage]\ngraphroot = \"/data/g\"\nrunroot = \"/data/r\"\n");
  env_["CONTAINERS_STORAGE_CONF"] = (root_ / "mine.conf").string();
  auto c = load_storage_config(paths());
  ASSERT_TRUE(c) << c.error().message();
  EXPECT_EQ(c->driver, "");
  EXPECT_EQ(c->graphroot, "/data/g");
  EXPECT_EQ(c->runroot, "/data/r");
  EXPECT_EQ(c->source_of("storage.graphroot"), (root_ / "mine.conf").string());
}

TEST_F(StorageConfigTest, FlagsOverrideFiles) {
  write(berth_ / "storage.conf",
        "[storage]\ndriver = \"vfs\"\ngraphroot = \"/srv/g\"\n[storage.options.overlay]\n"
        "mountopt = \"nodev\"\n");
  GlobalOverrides o;
  o.root = "/tmp/x/root";
  o.runroot = "/tmp/x/run";
  o.storage_driver = "overlay";
  o.storage_opts = {"overlay.mount_program=/usr/bin/fuse-overlayfs",
                    "overlay.ignore_chown_errors=true", "size=10G"};
  auto c = load_storage_config(paths(), o);
  ASSERT_TRUE(c) << c.error().message();
  EXPECT_EQ(c->graphroot, "/tmp/x/root");
  EXPECT_EQ(c->runroot, "/tmp/x/run");
  EXPECT_EQ(c->driver, "overlay");
  EXPECT_EQ(c->source_of("storage.graphroot"), "flag");
  EXPECT_EQ(c->source_of("storage.driver"), "flag");
  EXPECT_EQ(c->options.overlay.mount_program, "/usr/bin/fuse-overlayfs");
  EXPECT_TRUE(c->options.overlay.ignore_chown_errors);
  EXPECT_EQ(c->source_of("storage.options.overlay.mount_program"), "flag");
  EXPECT_EQ(c->options.overlay.mountopt, "nodev");  // from the file, untouched
  EXPECT_EQ(c->driver_options.at("overlay.mount_program"), "/usr/bin/fuse-overlayfs");
  EXPECT_EQ(c->driver_options.at("size"), "10G");

  auto opts = c->options_for_driver("overlay");
  EXPECT_EQ(opts.at("mount_program"), "/usr/bin/fuse-overlayfs");
  EXPECT_EQ(opts.at("mountopt"), "nodev");
  EXPECT_EQ(opts.at("ignore_chown_errors"), "true");
  EXPECT_EQ(opts.at("size"), "10G");
  EXPECT_EQ(c->options_for_driver("vfs").count("mount_program"), 0u);
}

TEST_F(StorageConfigTest, EmptyStorageOptDropsFileOptions) {
  write(etc_ / "storage.conf",
        "[storage.options.overlay]\nmount_program = \"/usr/bin/fuse-overlayfs\"\n");
  GlobalOverrides o;
  o.storage_opts = {""};
  auto c = load_storage_config(paths(), o);
  ASSERT_TRUE(c) << c.error().message();
  EXPECT_EQ(c->options.overlay.mount_program, "");
  EXPECT_EQ(c->source_of("storage.options.overlay.mount_program"), "default");
}

TEST_F(StorageConfigTest, MalformedStorageOptIsAnError) {
  GlobalOverrides o;
  o.storage_opts = {"overlay.mount_program"};
  auto c = load_storage_config(paths(), o);
  ASSERT_FALSE(c);
  EXPECT_NE(c.error().message().find("expected key=value"), std::string::npos)
      << c.error().message();
  o.storage_opts = {"overlay.skip_mount_home=maybe"};
  c = load_storage_config(paths(), o);
  ASSERT_FALSE(c);
  EXPECT_NE(c.error().message().find("expected true or false"), std::string::npos);
}

TEST_F(StorageConfigTest, EnvironmentDriverAndOpts) {
  env_["STORAGE_DRIVER"] = "vfs";
  env_["STORAGE_OPTS"] = "vfs.ignore_chown_errors=true,overlay.mountopt=nodev";
  auto c = load_storage_config(paths());
  ASSERT_TRUE(c) << c.error().message();
  EXPECT_EQ(c->driver, "vfs");
  EXPECT_EQ(c->source_of("storage.driver"), "env STORAGE_DRIVER");
  EXPECT_TRUE(c->options.vfs.ignore_chown_errors);
  EXPECT_EQ(c->options.overlay.mountopt, "nodev");
}

TEST_F(StorageConfigTest, RootlessDefaultsFollowXdg) {
  env_["XDG_DATA_HOME"] = "/home/u/data";
  env_["XDG_RUNTIME_DIR"] = "/run/user/1000";
  auto c = load_storage_config(paths(1000));
  ASSERT_TRUE(c) << c.error().message();
  EXPECT_EQ(c->graphroot, "/home/u/data/berth/storage");
  EXPECT_EQ(c->runroot, "/run/user/1000/berth/storage");
}

TEST_F(StorageConfigTest, RootlessDefaultsWithoutXdg) {
  auto c = load_storage_config(paths(1000));
  ASSERT_TRUE(c) << c.error().message();
  EXPECT_EQ(c->graphroot, (home_ / ".local/share/berth/storage").string());
  EXPECT_EQ(c->runroot, "/tmp/berth-run-1000/storage");
}

TEST_F(StorageConfigTest, RootlessUserBerthFileWinsAndSetsGraphroot) {
  write(user_ / "berth/storage.conf", "[storage]\ngraphroot = \"/home/u/g\"\n");
  write(user_ / "containers/storage.conf", "[storage]\ndriver = \"vfs\"\n");
  write(berth_ / "storage.conf", "[storage]\ndriver = \"overlay\"\n");
  auto c = load_storage_config(paths(1000));
  ASSERT_TRUE(c) << c.error().message();
  EXPECT_EQ(c->graphroot, "/home/u/g");
  EXPECT_EQ(c->driver, "");  // first found wins: no merge with the other files
}

TEST_F(StorageConfigTest, RootlessUserContainersFileCannotSetGraphroot) {
  write(user_ / "containers/storage.conf",
        "[storage]\ndriver = \"vfs\"\ngraphroot = \"/home/u/.local/share/containers/storage\"\n");
  auto c = load_storage_config(paths(1000));
  ASSERT_TRUE(c) << c.error().message();
  EXPECT_EQ(c->driver, "vfs");
  EXPECT_EQ(c->graphroot, (home_ / ".local/share/berth/storage").string());
}

TEST_F(StorageConfigTest, RootlessIgnoresSystemRootsButUsesRootlessStoragePath) {
  write(berth_ / "storage.conf",
        "[storage]\ngraphroot = \"/srv/root-store\"\nrootless_storage_path = "
        "\"/srv/users/$UID/store\"\n");
  auto c = load_storage_config(paths(1000));
  ASSERT_TRUE(c) << c.error().message();
  EXPECT_EQ(c->graphroot, "/srv/users/1000/store");
  EXPECT_EQ(c->source_of("storage.graphroot"), (berth_ / "storage.conf").string());
  // root reads the same file's graphroot
  auto r = load_storage_config(paths(0));
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(r->graphroot, "/srv/root-store");
}

TEST_F(StorageConfigTest, TypeErrorNamesFileLineColumnAndKey) {
  write(berth_ / "storage.conf", "[storage]\n\ndriver = 3\n");
  auto c = load_storage_config(paths());
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error().code(), Errc::InvalidArgument);
  EXPECT_EQ(c.error().message(), (berth_ / "storage.conf").string() +
                                     ":3:10: key storage.driver: expected a string, got an "
                                     "integer");
}

TEST_F(StorageConfigTest, TypeErrorInNestedTable) {
  write(etc_ / "storage.conf",
        "[storage.options.overlay]\nmount_program = [\"/usr/bin/fuse-overlayfs\"]\n");
  auto c = load_storage_config(paths());
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error().message(), (etc_ / "storage.conf").string() +
                                     ":2:17: key storage.options.overlay.mount_program: expected "
                                     "a string, got an array");
}

TEST_F(StorageConfigTest, ParseErrorNamesFileLineColumn) {
  write(etc_ / "storage.conf", "[storage]\ndriver = \"overlay\n");
  auto c = load_storage_config(paths());
  ASSERT_FALSE(c);
  std::string prefix = (etc_ / "storage.conf").string() + ":2:";
  EXPECT_EQ(c.error().message().rfind(prefix, 0), 0u) << c.error().message();
}

TEST_F(StorageConfigTest, StringBooleansAndLegacyOptionsLocation) {
  write(berth_ / "storage.conf", R"([storage]
driver = "overlay"
[storage.options]
mount_program = "/usr/bin/fuse-overlayfs"
additionalimagestores = ["/ro/store"]
pull_options = {enable_partial_images = "false", use_hard_links = "false"}
[storage.options.overlay]
ignore_chown_errors = "true"
skip_mount_home = "false"
force_mask = "shared"
[storage.options.vfs]
ignore_chown_errors = true
[storage.options.thinpool]
autoextend_percent = "20"
)");
  auto c = load_storage_config(paths());
  ASSERT_TRUE(c) << c.error().message();
  EXPECT_EQ(c->options.overlay.mount_program, "/usr/bin/fuse-overlayfs");
  EXPECT_EQ(c->source_of("storage.options.overlay.mount_program"),
            (berth_ / "storage.conf").string());
  EXPECT_TRUE(c->options.overlay.ignore_chown_errors);
  EXPECT_FALSE(c->options.overlay.skip_mount_home);
  EXPECT_EQ(c->options.overlay.force_mask, "shared");
  EXPECT_TRUE(c->options.vfs.ignore_chown_errors);
  EXPECT_EQ(c->options.additional_image_stores, std::vector<std::string>{"/ro/store"});
  EXPECT_EQ(c->options.pull_options.at("enable_partial_images"), "false");
  EXPECT_EQ(c->options.pull_options.size(), 2u);
}

TEST_F(StorageConfigTest, BadStringBoolean) {
  write(berth_ / "storage.conf", "[storage.options.overlay]\nignore_chown_errors = \"yes\"\n");
  auto c = load_storage_config(paths());
  ASSERT_FALSE(c);
  EXPECT_NE(c.error().message().find(":2:23: key storage.options.overlay.ignore_chown_errors: "
                                     "expected true or false"),
            std::string::npos)
      << c.error().message();
}

TEST_F(StorageConfigTest, RelativeGraphrootIsRefused) {
  GlobalOverrides o;
  o.root = "relative/dir";
  auto c = load_storage_config(paths(), o);
  ASSERT_FALSE(c);
  EXPECT_NE(c.error().message().find("must be an absolute path"), std::string::npos);
  EXPECT_NE(c.error().message().find("from flag"), std::string::npos);
}

TEST_F(StorageConfigTest, DirectoryInPlaceOfFileIsAnError) {
  std::filesystem::create_directories(berth_ / "storage.conf");
  auto c = load_storage_config(paths());
  ASSERT_FALSE(c);
  EXPECT_NE(c.error().message().find("is a directory"), std::string::npos);
}

}  // namespace
}  // namespace berth::config::testing
