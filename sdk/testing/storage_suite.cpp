// The berth.storage.v1 conformance suite. Every test gets a fresh driver whose home and run_root
// are new temporary directories, and checks what the core (and so a user) relies on.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "berth/sdk/storage.hpp"
#include "berth/sdk/testing/conformance.hpp"
#include "berth/sdk/testing/tar_builder.hpp"

namespace berth::sdk::testing {
namespace {

namespace fs = std::filesystem;

template <class T>
std::string describe(const Result<T>& r) {
  if (r) {
    return "ok";
  }
  return std::string(errc_name(r.error().code())) + ": " + r.error().message();
}

#define CONF_CAT_INNER(a, b) a##b
#define CONF_CAT(a, b) CONF_CAT_INNER(a, b)
// Fails the test (returning from the current void function) when `expr` is an error.
#define CONF_OK(expr)                                                         \
  do {                                                                        \
    auto&& conf_r_ = (expr);                                                  \
    ASSERT_TRUE(conf_r_.has_value()) << #expr << " -> " << describe(conf_r_); \
  } while (0)
#define CONF_ASSIGN_IMPL(tmp, lhs, expr)                            \
  auto tmp = (expr);                                                \
  ASSERT_TRUE(tmp.has_value()) << #expr << " -> " << describe(tmp); \
  lhs = std::move(*tmp)
// `CONF_ASSIGN(auto path, driver.mount(...));` fails the test on an error.
#define CONF_ASSIGN(lhs, expr) CONF_ASSIGN_IMPL(CONF_CAT(conf_a_, __LINE__), lhs, expr)

// One node of a directory tree, as a user of the mounted rootfs would see it.
struct Node {
  char type = '?';  // d, f, l (symlink), c, b, p, s
  mode_t perm = 0;
  std::string data;  // file content or symlink target
  ino_t ino = 0;
  dev_t dev = 0;
  bool operator==(const Node& o) const {
    return type == o.type && perm == o.perm && data == o.data;
  }
};
using Tree = std::map<std::string, Node>;

std::ostream& operator<<(std::ostream& os, const Tree& t) {
  os << "{";
  for (const auto& [p, n] : t) {
    os << "\n  " << p << " " << n.type << " " << std::oct << n.perm << std::dec;
    if (n.type == 'l') {
      os << " -> " << n.data;
    } else if (n.type == 'f') {
      os << " (" << n.data.size() << " bytes)";
    }
  }
  return os << "\n}";
}

std::string read_text(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void write_text(const fs::path& p, const std::string& s) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out << s;
}

// Snapshot of the tree under `root`, keyed by "/relative/path". Symlinks are not followed.
Tree snapshot(const fs::path& root) {
  Tree t;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(root, ec); !ec && it != fs::end(it);
       it.increment(ec)) {
    const fs::path p = it->path();
    struct stat st {};
    if (::lstat(p.c_str(), &st) != 0) {
      continue;
    }
    Node n;
    n.perm = st.st_mode & 07777;
    n.ino = st.st_ino;
    n.dev = st.st_dev;
    switch (st.st_mode & S_IFMT) {
      case S_IFDIR:
        n.type = 'd';
        break;
      case S_IFREG:
        n.type = 'f';
        n.data = read_text(p);
        break;
      case S_IFLNK:
        n.type = 'l';
        n.data = fs::read_symlink(p, ec).string();
        break;
      case S_IFCHR:
        n.type = 'c';
        break;
      case S_IFBLK:
        n.type = 'b';
        break;
      case S_IFIFO:
        n.type = 'p';
        break;
      default:
        n.type = 's';
        break;
    }
    t["/" + p.lexically_relative(root).string()] = std::move(n);
  }
  return t;
}

bool has(const Tree& t, const std::string& p) {
  return t.count(p) != 0;
}

class StorageTest : public ::testing::Test {
 public:
  using Body = void (*)(StorageTest&);
  StorageTest(StorageDriverFactory factory, std::string options, Body body)
      : factory_(std::move(factory)), options_(std::move(options)), body_(body) {}

  StorageDriver& d() { return *driver_; }
  const fs::path& home() const { return home_->path(); }
  const fs::path& run_root() const { return run_->path(); }

  // Creates `id` on `parent` and applies the tar built by `tar` (if any).
  Result<uint64_t> layer(const std::string& id, const std::string& parent, TarBuilder* tar,
                         bool read_write = false) {
    CreateOptions opts;
    opts.read_write = read_write;
    BERTH_TRYV(d().create(id, parent, opts));
    if (tar == nullptr) {
      return 0;
    }
    return apply(id, *tar);
  }
  Result<uint64_t> apply(const std::string& id, TarBuilder& tar) {
    BERTH_TRY(UniqueFd fd, tar.finish());
    return d().apply_diff(id, fd.get(), ApplyOptions{});
  }
  // The tree a container would see on top of `id` (mount, snapshot, unmount).
  Result<Tree> view(const std::string& id) {
    BERTH_TRY(std::string path, d().mount(id, MountOptions{}));
    Tree t = snapshot(path);
    BERTH_TRYV(d().unmount(id));
    return t;
  }

 protected:
  void SetUp() override {
    home_ = std::make_unique<TempDir>("berth-conformance-home-");
    run_ = std::make_unique<TempDir>("berth-conformance-run-");
    PluginContext ctx;
    ctx.home = home_->path().string();
    ctx.run_root = run_->path().string();
    ctx.options_json = options_;
    ctx.rootless = ::geteuid() != 0;
    auto driver = factory_(ctx);
    ASSERT_TRUE(driver.has_value()) << "create driver: " << describe(driver);
    ASSERT_NE(*driver, nullptr) << "the factory returned a null driver";
    driver_ = std::move(*driver);
  }
  void TearDown() override {
    if (driver_) {
      auto r = driver_->cleanup();
      EXPECT_TRUE(r.has_value()) << "cleanup: " << describe(r);
      driver_.reset();
    }
    run_.reset();
    home_.reset();
  }
  void TestBody() override { body_(*this); }

 private:
  StorageDriverFactory factory_;
  std::string options_;
  Body body_;
  std::unique_ptr<TempDir> home_;
  std::unique_ptr<TempDir> run_;
  StorageDriverPtr driver_;
};

// ---------------------------------------------------------------------------------------------
// probe, create, exists, remove

void probe_reports_a_reason(StorageTest& t) {
  EXPECT_FALSE(t.d().name().empty());
  ProbeResult p = t.d().probe();
  EXPECT_FALSE(p.reason.empty()) << "probe() must say why the driver is (not) supported";
  EXPECT_TRUE(p.supported) << "the suite runs only where the driver is supported: " << p.reason;
}

void create_base_layer(StorageTest& t) {
  CONF_OK(t.d().create("base", "", CreateOptions{}));
  EXPECT_TRUE(t.d().exists("base"));
  CONF_ASSIGN(Tree tree, t.view("base"));
  EXPECT_TRUE(tree.empty()) << "a new base layer must be empty, got " << tree;
}

void create_child_with_parent(StorageTest& t) {
  TarBuilder tar;
  tar.file("from-base", "base\n");
  CONF_OK(t.layer("base", "", &tar));
  CONF_OK(t.d().create("child", "base", CreateOptions{}));
  EXPECT_TRUE(t.d().exists("child"));
  CONF_ASSIGN(Tree tree, t.view("child"));
  ASSERT_TRUE(has(tree, "/from-base")) << tree;
  EXPECT_EQ(tree["/from-base"].data, "base\n");
}

void create_with_unknown_parent_fails(StorageTest& t) {
  auto r = t.d().create("orphan", "no-such-parent", CreateOptions{});
  EXPECT_FALSE(r.has_value()) << "create on an unknown parent must fail";
  EXPECT_FALSE(t.d().exists("orphan")) << "a failed create must leave no layer behind";
}

void create_twice_is_already_exists(StorageTest& t) {
  TarBuilder tar;
  tar.file("keep", "content\n");
  CONF_OK(t.layer("l", "", &tar));
  auto r = t.d().create("l", "", CreateOptions{});
  ASSERT_FALSE(r.has_value()) << "second create of the same id must fail";
  EXPECT_EQ(r.error().code(), Errc::AlreadyExists) << describe(r);
  CONF_ASSIGN(Tree tree, t.view("l"));
  EXPECT_TRUE(has(tree, "/keep")) << "a refused create must not touch the existing layer " << tree;
}

void exists_is_false_for_unknown_ids(StorageTest& t) {
  EXPECT_FALSE(t.d().exists("never-created"));
  CONF_OK(t.d().create("x", "", CreateOptions{}));
  EXPECT_FALSE(t.d().exists("x2"));
  EXPECT_TRUE(t.d().exists("x"));
}

void remove_is_idempotent(StorageTest& t) {
  TarBuilder tar;
  tar.file("old", "old\n");
  CONF_OK(t.layer("l", "", &tar));
  CONF_OK(t.d().remove("l"));
  EXPECT_FALSE(t.d().exists("l"));
  CONF_OK(t.d().remove("l"));
  CONF_OK(t.d().remove("never-created"));
  // The id is free again, and nothing of the old layer shows through.
  CONF_OK(t.d().create("l", "", CreateOptions{}));
  CONF_ASSIGN(Tree tree, t.view("l"));
  EXPECT_TRUE(tree.empty()) << tree;
}

// The interface leaves it to the driver whether a parent can go while a child exists (the core
// never asks). Either the driver refuses (Conflict or Busy) and keeps both, or it removes the
// parent and the child must still show everything it inherited.
void remove_parent_with_child(StorageTest& t) {
  TarBuilder tar;
  tar.file("inherited", "from parent\n");
  CONF_OK(t.layer("parent", "", &tar));
  TarBuilder tar2;
  tar2.file("own", "child\n");
  CONF_OK(t.layer("child", "parent", &tar2));
  auto r = t.d().remove("parent");
  if (!r) {
    EXPECT_TRUE(r.error().code() == Errc::Conflict || r.error().code() == Errc::Busy)
        << "refusing to remove a parent must be Conflict or Busy: " << describe(r);
    EXPECT_TRUE(t.d().exists("parent"));
  } else {
    EXPECT_FALSE(t.d().exists("parent"));
  }
  EXPECT_TRUE(t.d().exists("child"));
  CONF_ASSIGN(Tree tree, t.view("child"));
  ASSERT_TRUE(has(tree, "/inherited")) << tree;
  EXPECT_EQ(tree["/inherited"].data, "from parent\n");
  EXPECT_TRUE(has(tree, "/own")) << tree;
  CONF_OK(t.d().remove("child"));
  CONF_OK(t.d().remove("parent"));
  EXPECT_FALSE(t.d().exists("parent"));
}

// ---------------------------------------------------------------------------------------------
// mount, unmount

void mount_shows_layer_and_all_parents(StorageTest& t) {
  TarBuilder a, b, c;
  a.file("one", "1");
  b.file("two", "2");
  c.file("three", "3");
  CONF_OK(t.layer("l1", "", &a));
  CONF_OK(t.layer("l2", "l1", &b));
  CONF_OK(t.layer("l3", "l2", &c));
  CONF_ASSIGN(std::string path, t.d().mount("l3", MountOptions{}));
  EXPECT_TRUE(fs::is_directory(path)) << path;
  Tree tree = snapshot(path);
  EXPECT_TRUE(has(tree, "/one") && has(tree, "/two") && has(tree, "/three")) << tree;
  CONF_OK(t.d().unmount("l3"));
  CONF_ASSIGN(Tree mid, t.view("l2"));
  EXPECT_TRUE(has(mid, "/one") && has(mid, "/two")) << mid;
  EXPECT_FALSE(has(mid, "/three")) << "a parent must not see its child's files " << mid;
}

void mounts_are_counted(StorageTest& t) {
  TarBuilder tar;
  tar.file("f", "data");
  CONF_OK(t.layer("l", "", &tar));
  CONF_ASSIGN(std::string p1, t.d().mount("l", MountOptions{}));
  CONF_ASSIGN(std::string p2, t.d().mount("l", MountOptions{}));
  EXPECT_EQ(p1, p2) << "two mounts of one layer must return the same root";
  CONF_OK(t.d().unmount("l"));
  EXPECT_EQ(read_text(fs::path(p1) / "f"), "data") << "one unmount of two must keep it mounted";
  CONF_OK(t.d().unmount("l"));
  // Released: a new mount works and shows the content again.
  CONF_ASSIGN(Tree tree, t.view("l"));
  EXPECT_TRUE(has(tree, "/f")) << tree;
}

// Unmounting a layer that is not mounted: the interface does not say, so either answer is
// accepted as long as it is not an internal error and the count does not go below zero (a
// later mount must really mount).
void unmount_not_mounted(StorageTest& t) {
  TarBuilder tar;
  tar.file("f", "data");
  CONF_OK(t.layer("l", "", &tar));
  auto r = t.d().unmount("l");
  if (!r) {
    EXPECT_NE(r.error().code(), Errc::Internal) << describe(r);
  }
  CONF_ASSIGN(std::string path, t.d().mount("l", MountOptions{}));
  EXPECT_EQ(read_text(fs::path(path) / "f"), "data");
  CONF_OK(t.d().unmount("l"));
  auto again = t.d().unmount("l");
  if (!again) {
    EXPECT_NE(again.error().code(), Errc::Internal) << describe(again);
  }
  CONF_ASSIGN(Tree tree, t.view("l"));
  EXPECT_TRUE(has(tree, "/f")) << tree;
}

void mount_unknown_is_not_found(StorageTest& t) {
  auto r = t.d().mount("no-such-layer", MountOptions{});
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code(), Errc::NotFound) << describe(r);
}

// Runs `fn(i)` on `n` threads; returns the failure messages they collected.
template <class Fn>
std::vector<std::string> on_threads(int n, Fn fn) {
  std::mutex mu;
  std::vector<std::string> failures;
  std::vector<std::thread> threads;
  for (int i = 0; i < n; ++i) {
    threads.emplace_back([&, i] {
      std::string f = fn(i);
      if (!f.empty()) {
        std::lock_guard lock(mu);
        failures.push_back(std::move(f));
      }
    });
  }
  for (auto& th : threads) {
    th.join();
  }
  return failures;
}

std::string mount_check_unmount(StorageDriver& d, const std::string& id,
                                const std::vector<std::string>& files, int rounds) {
  for (int r = 0; r < rounds; ++r) {
    auto path = d.mount(id, MountOptions{});
    if (!path) {
      return "mount " + id + ": " + describe(path);
    }
    for (const auto& f : files) {
      struct stat st {};
      if (::lstat((fs::path(*path) / f).c_str(), &st) != 0) {
        return "mount " + id + ": " + f + " is missing in " + *path;
      }
    }
    auto u = d.unmount(id);
    if (!u) {
      return "unmount " + id + ": " + describe(u);
    }
  }
  return "";
}

void concurrent_mounts_of_one_layer(StorageTest& t) {
  TarBuilder base, tar;
  base.file("base-file", "b");
  tar.file("f", "data");
  CONF_OK(t.layer("base", "", &base));
  CONF_OK(t.layer("l", "base", &tar));
  // One holder keeps it mounted while the threads come and go, as a running container would.
  CONF_ASSIGN(std::string held, t.d().mount("l", MountOptions{}));
  auto failures = on_threads(6, [&](int) {
    return mount_check_unmount(t.d(), "l", {"f", "base-file"}, 15);
  });
  EXPECT_TRUE(failures.empty()) << failures.front();
  EXPECT_EQ(read_text(fs::path(held) / "f"), "data") << "the held mount must survive";
  CONF_OK(t.d().unmount("l"));
  CONF_ASSIGN(Tree tree, t.view("l"));
  EXPECT_TRUE(has(tree, "/f")) << tree;
}

void concurrent_mounts_of_different_layers(StorageTest& t) {
  TarBuilder base;
  base.file("base-file", "b");
  CONF_OK(t.layer("base", "", &base));
  constexpr int kLayers = 4;
  for (int i = 0; i < kLayers; ++i) {
    TarBuilder tar;
    tar.file("own-" + std::to_string(i), std::to_string(i));
    CONF_OK(t.layer("l" + std::to_string(i), "base", &tar));
  }
  auto failures = on_threads(kLayers, [&](int i) {
    return mount_check_unmount(t.d(), "l" + std::to_string(i),
                               {"own-" + std::to_string(i), "base-file"}, 15);
  });
  EXPECT_TRUE(failures.empty()) << failures.front();
  for (int i = 0; i < kLayers; ++i) {
    CONF_ASSIGN(Tree tree, t.view("l" + std::to_string(i)));
    for (int j = 0; j < kLayers; ++j) {
      EXPECT_EQ(has(tree, "/own-" + std::to_string(j)), i == j)
          << "layer l" << i << " shows another layer's file: " << tree;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// apply_diff, usage, layer_path

void apply_diff_files_dirs_links(StorageTest& t) {
  const std::string hosts = "127.0.0.1 localhost\n";
  const std::string tool(3000, 'x');
  TarBuilder tar;
  tar.dir("etc", 0755)
      .file("etc/hosts", hosts, 0644)
      .symlink("etc/hosts.link", "hosts")
      .symlink("etc/abs.link", "/etc/hosts")
      .hardlink("etc/hosts.hard", "etc/hosts")
      .dir("usr", 0755)
      .dir("usr/bin", 0755)
      .file("usr/bin/tool", tool, 0755)
      .dir("a/b/c", 0700)
      .file("a/b/c/empty", "", 0600);
  CONF_OK(t.d().create("l", "", CreateOptions{}));
  CONF_ASSIGN(uint64_t written, t.apply("l", tar));
  EXPECT_GE(written, hosts.size() + tool.size()) << "apply_diff returns the content bytes written";
  CONF_ASSIGN(std::string path, t.d().mount("l", MountOptions{}));
  Tree tree = snapshot(path);
  ASSERT_TRUE(has(tree, "/etc/hosts")) << tree;
  EXPECT_EQ(tree["/etc"].type, 'd');
  EXPECT_EQ(tree["/etc/hosts"].type, 'f');
  EXPECT_EQ(tree["/etc/hosts"].data, hosts);
  EXPECT_EQ(tree["/etc/hosts"].perm, 0644u);
  EXPECT_EQ(tree["/etc/hosts.link"].type, 'l') << tree;
  EXPECT_EQ(tree["/etc/hosts.link"].data, "hosts");
  EXPECT_EQ(tree["/etc/abs.link"].data, "/etc/hosts") << "absolute symlinks are kept verbatim";
  EXPECT_EQ(tree["/etc/hosts.hard"].data, hosts);
  EXPECT_EQ(tree["/etc/hosts.hard"].ino, tree["/etc/hosts"].ino) << "hard link must share inode";
  EXPECT_EQ(tree["/usr/bin/tool"].data, tool);
  EXPECT_EQ(tree["/usr/bin/tool"].perm, 0755u);
  EXPECT_EQ(tree["/a/b/c"].type, 'd');
  EXPECT_EQ(tree["/a/b/c"].perm, 0700u);
  EXPECT_TRUE(has(tree, "/a/b/c/empty")) << tree;
  CONF_OK(t.d().unmount("l"));
}

void apply_diff_whiteouts_in_child(StorageTest& t) {
  TarBuilder base;
  base.dir("a").file("a/keep", "keep").file("a/gone", "gone");
  base.dir("opq").file("opq/old", "old").dir("opq/sub").file("opq/sub/deep", "deep");
  base.file("top", "top");
  CONF_OK(t.layer("base", "", &base));
  TarBuilder child;
  child.whiteout("a/gone").dir("opq").opaque("opq").file("opq/new", "new").whiteout("top");
  CONF_OK(t.layer("child", "base", &child));

  CONF_ASSIGN(Tree c, t.view("child"));
  EXPECT_TRUE(has(c, "/a/keep")) << c;
  EXPECT_FALSE(has(c, "/a/gone")) << ".wh.gone must hide a/gone " << c;
  EXPECT_FALSE(has(c, "/top")) << c;
  EXPECT_TRUE(has(c, "/opq/new")) << c;
  EXPECT_FALSE(has(c, "/opq/old")) << "an opaque dir must hide its parent's content " << c;
  EXPECT_FALSE(has(c, "/opq/sub")) << c;
  for (const auto& [p, n] : c) {
    EXPECT_EQ(p.find(".wh."), std::string::npos) << "whiteout marker visible in the mount: " << p;
  }
  CONF_ASSIGN(Tree b, t.view("base"));
  EXPECT_TRUE(has(b, "/a/gone") && has(b, "/top") && has(b, "/opq/old") && has(b, "/opq/sub/deep"))
      << "the parent's own mount must still show what the child deleted " << b;
  EXPECT_FALSE(has(b, "/opq/new")) << b;
}

void apply_diff_refuses_hostile_entries(StorageTest& t) {
  TempDir outside("berth-conformance-outside-");
  CONF_OK(t.d().create("l", "", CreateOptions{}));
  TarBuilder dotdot;
  dotdot.file(
      "../../../../../../../../../../" + outside.path().relative_path().string() + "/escaped", "x");
  auto r1 = t.apply("l", dotdot);
  EXPECT_FALSE(r1.has_value()) << "a '..' entry must be refused";
  TarBuilder via_link;
  via_link.symlink("evil", outside.path().string()).file("evil/escaped2", "x");
  auto r2 = t.apply("l", via_link);
  EXPECT_FALSE(r2.has_value()) << "writing through a symlink out of the layer must be refused";
  EXPECT_TRUE(fs::is_empty(outside.path()))
      << "apply_diff wrote outside the layer: " << snapshot(outside.path());
}

void usage_counts_bytes_and_inodes(StorageTest& t) {
  TarBuilder tar;
  tar.dir("d").file("d/a", std::string(1000, 'a')).file("b", std::string(2345, 'b'));
  CONF_OK(t.layer("l", "", &tar));
  CONF_ASSIGN(LayerUsage u1, t.d().usage("l"));
  EXPECT_GE(u1.bytes, 3345u);
  EXPECT_GE(u1.inodes, 3u);
  TarBuilder more;
  more.file("c", std::string(5000, 'c')).file("d/e", "e");
  CONF_OK(t.apply("l", more));
  CONF_ASSIGN(LayerUsage u2, t.d().usage("l"));
  EXPECT_GE(u2.bytes, u1.bytes + 5001) << "usage must grow with the content";
  EXPECT_GE(u2.inodes, u1.inodes + 2);
}

void layer_path_exists(StorageTest& t) {
  CONF_OK(t.d().create("base", "", CreateOptions{}));
  CONF_OK(t.d().create("child", "base", CreateOptions{}));
  for (const char* id : {"base", "child"}) {
    CONF_ASSIGN(std::string p, t.d().layer_path(id));
    EXPECT_TRUE(fs::is_directory(p)) << id << ": layer_path " << p << " is not a directory";
  }
  TarBuilder tar;
  tar.file("applied", "x");
  CONF_OK(t.apply("child", tar));
  CONF_ASSIGN(std::string p, t.d().layer_path("child"));
  EXPECT_TRUE(fs::exists(fs::path(p) / "applied")) << "apply_diff writes into layer_path";
}

void read_write_layer_does_not_change_parent(StorageTest& t) {
  TarBuilder image;
  image.dir("etc").file("etc/conf", "original\n").file("remove-me", "r");
  CONF_OK(t.layer("image", "", &image));
  CONF_ASSIGN(Tree before, t.view("image"));
  CONF_OK(t.layer("ctr", "image", nullptr, /*read_write=*/true));
  CONF_OK(t.layer("ctr2", "image", nullptr, /*read_write=*/true));
  CONF_ASSIGN(std::string root, t.d().mount("ctr", MountOptions{}));
  write_text(fs::path(root) / "etc/conf", "changed by the container\n");
  write_text(fs::path(root) / "new-file", "new\n");
  std::error_code ec;
  fs::remove(fs::path(root) / "remove-me", ec);
  EXPECT_FALSE(ec) << ec.message();
  fs::create_directories(fs::path(root) / "var/lib/app", ec);
  EXPECT_FALSE(ec) << ec.message();
  CONF_OK(t.d().unmount("ctr"));

  CONF_ASSIGN(Tree after, t.view("image"));
  EXPECT_EQ(after, before) << "a container's writes leaked into its image layer";
  CONF_ASSIGN(Tree other, t.view("ctr2"));
  EXPECT_EQ(other, before) << "a container's writes leaked into another container";
  CONF_ASSIGN(Tree mine, t.view("ctr"));
  EXPECT_EQ(mine["/etc/conf"].data, "changed by the container\n");
  EXPECT_TRUE(has(mine, "/new-file") && has(mine, "/var/lib/app")) << mine;
  EXPECT_FALSE(has(mine, "/remove-me")) << mine;
}

// ---------------------------------------------------------------------------------------------
// diff, changes (optional)

void diff_round_trips(StorageTest& t) {
  TarBuilder base;
  base.dir("etc").file("etc/keep", "keep").file("etc/mod", "old").file("etc/del", "del");
  base.dir("opq").file("opq/old", "old").file("top", "top");
  CONF_OK(t.layer("base", "", &base));
  TarBuilder child;
  child.dir("etc").file("etc/mod", "new content", 0600, 1100000000).whiteout("etc/del");
  child.file("etc/add", "added").symlink("etc/link", "keep").hardlink("etc/add.hard", "etc/add");
  child.dir("opq").opaque("opq").file("opq/fresh", "fresh").whiteout("top");
  CONF_OK(t.layer("child", "base", &child));

  auto diff = t.d().diff("child", "base");
  if (!diff && diff.error().code() == Errc::NotSupported) {
    GTEST_SKIP() << "diff is not supported: " << describe(diff);
  }
  ASSERT_TRUE(diff.has_value()) << describe(diff);
  CONF_OK(t.d().create("copy", "base", CreateOptions{}));
  CONF_OK(t.d().apply_diff("copy", diff->get(), ApplyOptions{}));
  CONF_ASSIGN(Tree want, t.view("child"));
  CONF_ASSIGN(Tree got, t.view("copy"));
  EXPECT_EQ(got, want) << "diff(child) applied on the same parent must give the child's tree";
}

void changes_lists_added_modified_deleted(StorageTest& t) {
  TarBuilder base;
  base.file("keep", "keep").file("mod", "old").file("del", "del");
  CONF_OK(t.layer("base", "", &base));
  TarBuilder child;
  child.file("mod", "a new, longer content", 0644, 1200000000).whiteout("del").file("add", "a");
  CONF_OK(t.layer("child", "base", &child));
  auto ch = t.d().changes("child", "base");
  if (!ch && ch.error().code() == Errc::NotSupported) {
    GTEST_SKIP() << "changes is not supported: " << describe(ch);
  }
  ASSERT_TRUE(ch.has_value()) << describe(ch);
  std::map<std::string, Change::Kind> got;
  for (const auto& c : *ch) {
    got[c.path] = c.kind;
  }
  ASSERT_TRUE(got.count("/add") && got.count("/mod") && got.count("/del"))
      << "changes must list /add, /mod and /del (paths are absolute)";
  EXPECT_EQ(got["/add"], Change::Kind::Added);
  EXPECT_EQ(got["/mod"], Change::Kind::Modified);
  EXPECT_EQ(got["/del"], Change::Kind::Deleted);
  EXPECT_EQ(got.count("/keep"), 0u) << "an unchanged file is not a change";
}

// ---------------------------------------------------------------------------------------------
// errors

void unknown_ids_fail_everywhere(StorageTest& t) {
  const std::string id = "no-such-layer";
  EXPECT_FALSE(t.d().exists(id));
  auto m = t.d().mount(id, MountOptions{});
  EXPECT_FALSE(m.has_value());
  auto u = t.d().unmount(id);
  EXPECT_FALSE(u.has_value()) << "unmount of an unknown id";
  auto lp = t.d().layer_path(id);
  EXPECT_FALSE(lp.has_value()) << "layer_path of an unknown id";
  TarBuilder tar;
  tar.file("f", "x");
  auto a = t.apply(id, tar);
  EXPECT_FALSE(a.has_value()) << "apply_diff into an unknown id";
  EXPECT_FALSE(t.d().exists(id)) << "apply_diff must not create the layer";
  auto us = t.d().usage(id);
  EXPECT_FALSE(us.has_value()) << "usage of an unknown id";
  auto df = t.d().diff(id, "");
  EXPECT_FALSE(df.has_value()) << "diff of an unknown id";
  auto ch = t.d().changes(id, "");
  EXPECT_FALSE(ch.has_value()) << "changes of an unknown id";
  if (!m) {
    EXPECT_EQ(m.error().code(), Errc::NotFound) << describe(m);
  }
  if (!lp) {
    EXPECT_EQ(lp.error().code(), Errc::NotFound) << describe(lp);
  }
  if (!us) {
    EXPECT_EQ(us.error().code(), Errc::NotFound) << describe(us);
  }
  if (!u) {
    EXPECT_NE(u.error().message().find(id), std::string::npos)
        << "the error must name the layer: " << describe(u);
  }
}

struct Case {
  const char* name;
  StorageTest::Body body;
};

constexpr Case kCases[] = {
    {"probe_reports_a_reason", probe_reports_a_reason},
    {"create_base_layer", create_base_layer},
    {"create_child_with_parent", create_child_with_parent},
    {"create_with_unknown_parent_fails", create_with_unknown_parent_fails},
    {"create_twice_is_already_exists", create_twice_is_already_exists},
    {"exists_is_false_for_unknown_ids", exists_is_false_for_unknown_ids},
    {"remove_is_idempotent", remove_is_idempotent},
    {"remove_parent_with_child", remove_parent_with_child},
    {"mount_shows_layer_and_all_parents", mount_shows_layer_and_all_parents},
    {"mounts_are_counted", mounts_are_counted},
    {"unmount_not_mounted", unmount_not_mounted},
    {"mount_unknown_is_not_found", mount_unknown_is_not_found},
    {"concurrent_mounts_of_one_layer", concurrent_mounts_of_one_layer},
    {"concurrent_mounts_of_different_layers", concurrent_mounts_of_different_layers},
    {"apply_diff_files_dirs_links", apply_diff_files_dirs_links},
    {"apply_diff_whiteouts_in_child", apply_diff_whiteouts_in_child},
    {"apply_diff_refuses_hostile_entries", apply_diff_refuses_hostile_entries},
    {"usage_counts_bytes_and_inodes", usage_counts_bytes_and_inodes},
    {"layer_path_exists", layer_path_exists},
    {"read_write_layer_does_not_change_parent", read_write_layer_does_not_change_parent},
    {"diff_round_trips", diff_round_trips},
    {"changes_lists_added_modified_deleted", changes_lists_added_modified_deleted},
    {"unknown_ids_fail_everywhere", unknown_ids_fail_everywhere},
};

}  // namespace

void register_storage_suite(StorageDriverFactory factory, std::string options_json,
                            const std::string& label) {
  const std::string suite = "storage." + label;
  for (const Case& c : kCases) {
    ::testing::RegisterTest(suite.c_str(), c.name, nullptr, nullptr, __FILE__, __LINE__,
                            [factory, options_json, body = c.body]() -> ::testing::Test* {
                              return new StorageTest(factory, options_json, body);
                            });
  }
}

}  // namespace berth::sdk::testing
