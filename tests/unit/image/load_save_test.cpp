#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <set>
#include <thread>

#include "berth/image/image_service.hpp"
#include "berth/image/manifest.hpp"
#include "fixture.hpp"
#include "test_archives.hpp"

namespace berth::image {
namespace {

using testing::FakeStorageDriver;
using testing::make_layer;
using testing::TempStore;

class LoadSave : public TempStore {
 protected:
  void SetUp() override {
    TempStore::SetUp();
    base_ = make_layer({{"etc", "", '5'},
                        {"etc/hello.txt", "hello\n"},
                        {"bin", "", '5'},
                        {"bin/tool", std::string(100000, 'x')}});
    top_ = make_layer({{"etc", "", '5'}, {"etc/second", "2\n"}, {"etc/.wh.hello.txt", ""}}, false);
  }
  std::string archive_path(const std::string& name, const std::string& data) {
    auto p = root_ / name;
    testing::write_file(p, data);
    return p.string();
  }
  Result<LoadResult> load_data(const std::string& data) {
    return load(*store_, LoadOptions{archive_path("in.tar", data), -1});
  }
  testing::TestLayer base_;
  testing::TestLayer top_;
};

TEST_F(LoadSave, LoadsOciArchiveWithIdEqualToConfigDigest) {
  std::string cfg = testing::make_config({base_, top_}, "oci");
  auto r = load_data(testing::make_oci_archive({base_, top_}, cfg, "docker.io/library/test:1"));
  ASSERT_TRUE(r) << r.error().message();
  ASSERT_EQ(r->ids.size(), 1u);
  EXPECT_EQ(r->ids[0], util::sha256_digest(cfg).substr(7));
  EXPECT_EQ(r->loaded, std::vector<std::string>{"docker.io/library/test:1"});

  auto img = lookup_image(*store_, "test:1");
  ASSERT_TRUE(img) << img.error().message();
  EXPECT_EQ(img->id, r->ids[0]);
  // The top layer holds the merged tree (vfs-like): the whiteout removed hello.txt.
  auto top = driver_->dir_of(img->top_layer);
  EXPECT_TRUE(std::filesystem::exists(top / "etc/second"));
  EXPECT_FALSE(std::filesystem::exists(top / "etc/hello.txt"));
  EXPECT_EQ(std::filesystem::file_size(top / "bin/tool"), 100000u);
  auto layers = store_->layers();
  ASSERT_TRUE(layers);
  ASSERT_EQ(layers->size(), 2u);
  auto chain = chain_ids({base_.diff_id, top_.diff_id});
  EXPECT_EQ(img->top_layer, chain[1]);
  for (auto& l : *layers) {
    EXPECT_FALSE(l.incomplete);
  }
}

TEST_F(LoadSave, UntaggedOciArchiveLoadsAsId) {
  std::string cfg = testing::make_config({base_}, "untagged");
  auto r = load_data(testing::make_oci_archive({base_}, cfg, "latest"));
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(r->loaded, std::vector<std::string>{"sha256:" + r->ids[0]});
  auto img = lookup_image(*store_, r->ids[0].substr(0, 6));
  ASSERT_TRUE(img);
  EXPECT_TRUE(img->names.empty());
}

TEST_F(LoadSave, LoadsDockerArchiveAndNormalisesRepoTags) {
  std::string cfg = testing::make_config({base_, top_}, "docker");
  auto r =
      load_data(testing::make_docker_archive({base_, top_}, cfg, {"busybox:latest", "me/x:2"}));
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(r->loaded,
            (std::vector<std::string>{"docker.io/library/busybox:latest", "docker.io/me/x:2"}));
  auto img = lookup_image(*store_, "busybox");
  ASSERT_TRUE(img) << img.error().message();
  EXPECT_EQ(img->id, util::sha256_digest(cfg).substr(7));
  EXPECT_EQ(img->manifest_type, media::kDockerManifest);
}

TEST_F(LoadSave, SameLayersAreShared) {
  std::string cfg1 = testing::make_config({base_, top_}, "one");
  std::string cfg2 = testing::make_config({base_, top_}, "two");
  ASSERT_TRUE(load_data(testing::make_oci_archive({base_, top_}, cfg1, "a.io/one:1")));
  ASSERT_TRUE(load_data(testing::make_docker_archive({base_, top_}, cfg2, {"two:1"})));
  // Loading the same archive again is a no-op for layers.
  ASSERT_TRUE(load_data(testing::make_oci_archive({base_, top_}, cfg1, "a.io/one:1")));
  auto imgs = store_->images();
  ASSERT_TRUE(imgs);
  EXPECT_EQ(imgs->size(), 2u);
  auto layers = store_->layers();
  ASSERT_TRUE(layers);
  EXPECT_EQ(layers->size(), 2u);
  EXPECT_EQ(driver_->applies.load(), 2);
  // Removing one image keeps the shared layers.
  auto rm = remove_images(*store_, {"a.io/one:1"}, {});
  ASSERT_TRUE(rm) << rm.error().message();
  EXPECT_EQ(store_->layers()->size(), 2u);
  ASSERT_TRUE(remove_images(*store_, {"two:1"}, {}));
  EXPECT_EQ(store_->layers()->size(), 0u);
  EXPECT_FALSE(std::filesystem::exists(driver_->dir_of(chain_ids({base_.diff_id})[0])));
}

TEST_F(LoadSave, TamperedLayerDigestIsRefusedAndLeavesNothing) {
  std::string cfg = testing::make_config({base_, top_}, "bad");
  std::string wrong = "sha256:" + std::string(64, 'f');
  // The base layer's blob is stored under a digest that is not its own.
  auto data = testing::make_oci_archive({base_, top_}, cfg, "bad:1", nullptr, wrong);
  auto r = load_data(data);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), Errc::Corrupt);
  EXPECT_NE(r.error().message().find(wrong), std::string::npos) << r.error().message();
  EXPECT_NE(r.error().message().find("bad:1"), std::string::npos) << r.error().message();
  EXPECT_TRUE(store_->images()->empty());
  EXPECT_TRUE(store_->layers()->empty());
  EXPECT_TRUE(std::filesystem::is_empty(root_ / "driver/layers"));
  EXPECT_FALSE(image_exists(*store_, "bad:1").value());
}

TEST_F(LoadSave, WrongDiffIdIsRefused) {
  auto other = make_layer({{"x", "y"}});
  std::string cfg = testing::make_config({base_, other}, "wrongdiff");
  auto data = testing::make_oci_archive({base_, top_}, cfg, "wd:1");
  auto r = load_data(data);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message().find("diff ID mismatch"), std::string::npos);
  EXPECT_TRUE(store_->images()->empty());
  EXPECT_TRUE(store_->layers()->empty());
}

TEST_F(LoadSave, LoadsFromAPipe) {
  std::string cfg = testing::make_config({base_}, "pipe");
  std::string data = testing::make_oci_archive({base_}, cfg, "pipe.io/p:1");
  int p[2];
  ASSERT_EQ(::pipe(p), 0);
  std::thread writer([&] {
    size_t off = 0;
    while (off < data.size()) {
      ssize_t n = ::write(p[1], data.data() + off, std::min<size_t>(4096, data.size() - off));
      if (n <= 0) {
        break;
      }
      off += static_cast<size_t>(n);
    }
    ::close(p[1]);
  });
  auto r = load(*store_, LoadOptions{"", p[0]});
  writer.join();
  ::close(p[0]);
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(r->loaded, std::vector<std::string>{"pipe.io/p:1"});
}

TEST_F(LoadSave, SaveLoadRoundTripKeepsIdsAndLayers) {
  std::string cfg = testing::make_config({base_, top_}, "rt");
  auto first = load_data(testing::make_oci_archive({base_, top_}, cfg, "quay.io/rt/img:3"));
  ASSERT_TRUE(first) << first.error().message();
  for (auto fmt : {SaveFormat::OciArchive, SaveFormat::DockerArchive}) {
    auto out = (root_ / "saved.tar").string();
    SaveOptions so;
    so.format = fmt;
    so.path = out;
    so.images = {"quay.io/rt/img:3"};
    auto s = save(*store_, so);
    ASSERT_TRUE(s) << s.error().message();

    FakeStorageDriver d2(root_ / "driver2");
    auto st2 = open_store(d2, "second-");
    ASSERT_TRUE(st2);
    auto r = load(*st2, LoadOptions{out, -1});
    ASSERT_TRUE(r) << r.error().message();
    ASSERT_EQ(r->ids, first->ids);
    EXPECT_EQ(r->loaded, std::vector<std::string>{"quay.io/rt/img:3"});
    auto a = store_->layers().value();
    auto b = st2->layers().value();
    ASSERT_EQ(a.size(), b.size());
    std::set<std::string> sa, sb;
    for (auto& l : a) {
      sa.insert(l.id + l.diff_id);
    }
    for (auto& l : b) {
      sb.insert(l.id + l.diff_id);
    }
    EXPECT_EQ(sa, sb);
    auto img2 = lookup_image(*st2, r->ids[0]);
    ASSERT_TRUE(img2);
    EXPECT_TRUE(std::filesystem::exists(d2.dir_of(img2->top_layer) / "etc/second"));
    ASSERT_TRUE(reset(*st2));
    st2.reset();
    std::filesystem::remove_all(root_ / "second-graph");
  }
}

TEST_F(LoadSave, SavesDirectoryFormats) {
  std::string cfg = testing::make_config({base_, top_}, "dirs");
  auto first = load_data(testing::make_oci_archive({base_, top_}, cfg, "dirs:1"));
  ASSERT_TRUE(first) << first.error().message();
  SaveOptions so;
  so.format = SaveFormat::OciDir;
  so.path = (root_ / "ocidir").string();
  so.images = {"dirs:1"};
  ASSERT_TRUE(save(*store_, so));
  EXPECT_TRUE(std::filesystem::exists(root_ / "ocidir/oci-layout"));
  EXPECT_TRUE(std::filesystem::exists(root_ / "ocidir/blobs/sha256" / base_.diff_id.substr(7)));
  EXPECT_EQ(testing::slurp(root_ / "ocidir/blobs/sha256" / base_.diff_id.substr(7)), base_.tar);
  so.format = SaveFormat::DockerDir;
  so.path = (root_ / "dockerdir").string();
  ASSERT_TRUE(save(*store_, so));
  EXPECT_EQ(testing::slurp(root_ / "dockerdir" / top_.diff_id.substr(7)), top_.tar);
  auto m = parse_manifest(testing::slurp(root_ / "dockerdir/manifest.json"));
  ASSERT_TRUE(m) << m.error().message();
  EXPECT_EQ(m->kind, ManifestKind::DockerManifest);
  EXPECT_EQ(testing::slurp(root_ / "dockerdir" / first->ids[0]), cfg);
}

TEST_F(LoadSave, ImportMakesOneLayerImageWithChanges) {
  auto tarball = (root_ / "rootfs.tar.gz").string();
  testing::write_file(tarball, base_.blob);
  ImportOptions io;
  io.path = tarball;
  io.reference = "imported:v1";
  io.changes = {"CMD [\"/bin/tool\", \"-x\"]",
                "ENV A=b",
                "EXPOSE 8080",
                "LABEL k=v",
                "WORKDIR /srv",
                "USER 1000",
                "VOLUME /data",
                "STOPSIGNAL SIGINT",
                "ENTRYPOINT /bin/sh"};
  io.message = "from a tarball";
  auto id = import_image(*store_, io);
  ASSERT_TRUE(id) << id.error().message();
  auto j = inspect_image(*store_, "localhost/imported:v1");
  ASSERT_TRUE(j) << j.error().message();
  EXPECT_EQ((*j)["Id"], *id);
  EXPECT_EQ((*j)["Config"]["Cmd"], nlohmann::json({"/bin/tool", "-x"}));
  EXPECT_EQ((*j)["Config"]["Entrypoint"], nlohmann::json({"/bin/sh", "-c", "/bin/sh"}));
  EXPECT_EQ((*j)["Config"]["Env"], nlohmann::json({"A=b"}));
  EXPECT_TRUE((*j)["Config"]["ExposedPorts"].contains("8080/tcp"));
  EXPECT_EQ((*j)["Labels"]["k"], "v");
  EXPECT_EQ((*j)["Config"]["WorkingDir"], "/srv");
  EXPECT_EQ((*j)["User"], "1000");
  EXPECT_EQ((*j)["Comment"], "from a tarball");
  EXPECT_EQ((*j)["RootFS"]["Layers"], nlohmann::json({base_.diff_id}));
  io.changes = {"RUN rm -rf /"};
  auto bad = import_image(*store_, io);
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code(), Errc::InvalidArgument);
}

TEST_F(LoadSave, SeveralImagesInOneArchiveAndCompressedArchives) {
  std::string c1 = testing::make_config({base_}, "multi1");
  std::string c2 = testing::make_config({base_, top_}, "multi2");
  ASSERT_TRUE(load_data(testing::make_oci_archive({base_}, c1, "m.io/one:1")));
  ASSERT_TRUE(load_data(testing::make_docker_archive({base_, top_}, c2, {"m.io/two:2"})));
  for (auto fmt : {SaveFormat::DockerArchive, SaveFormat::OciArchive}) {
    SaveOptions so;
    so.format = fmt;
    so.path = (root_ / "both.tar").string();
    so.images = {"m.io/one:1", "m.io/two:2"};
    auto s = save(*store_, so);
    ASSERT_TRUE(s) << s.error().message();
    // `berth save | gzip`: a compressed archive loads too.
    ASSERT_EQ(std::system(("gzip -f " + so.path).c_str()), 0);
    FakeStorageDriver d2(root_ / "driver2");
    auto st2 = open_store(d2, "second-");
    ASSERT_TRUE(st2);
    auto r = load(*st2, LoadOptions{so.path + ".gz", -1});
    ASSERT_TRUE(r) << r.error().message();
    EXPECT_EQ(r->loaded, (std::vector<std::string>{"m.io/one:1", "m.io/two:2"}));
    EXPECT_EQ(st2->layers()->size(), 2u);  // base shared by both
    ASSERT_TRUE(reset(*st2));
    st2.reset();
    std::filesystem::remove_all(root_ / "second-graph");
  }
}

TEST_F(LoadSave, RefusesWhatIsNotAnImageArchive) {
  auto r = load_data(testing::make_tar({{"hello", "world"}}));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), Errc::InvalidArgument);
  EXPECT_NE(r.error().message().find("neither a docker-archive"), std::string::npos);
  auto junk = load_data(std::string(2000, 'j'));
  ASSERT_FALSE(junk);
  EXPECT_NE(junk.error().message().find("not a tar archive"), std::string::npos);
}

// 8 processes load, tag and remove images on one store at once.
TEST_F(LoadSave, ConcurrentProcessesKeepTheStoreConsistent) {
  std::vector<std::string> paths;
  for (int i = 0; i < 4; ++i) {
    auto own = make_layer({{"own", std::to_string(i)}});
    std::string cfg = testing::make_config({base_, own}, "c" + std::to_string(i));
    paths.push_back(archive_path(
        "c" + std::to_string(i) + ".tar",
        testing::make_oci_archive({base_, own}, cfg, "conc/img" + std::to_string(i) + ":1")));
  }
  store_.reset();
  std::vector<pid_t> kids;
  for (int k = 0; k < 8; ++k) {
    pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      FakeStorageDriver d(root_ / "driver");
      auto st = store::Store::open(options(), d);
      if (!st) {
        ::_exit(10);
      }
      int bad = 0;
      for (int round = 0; round < 6; ++round) {
        auto& p = paths[static_cast<size_t>((k + round) % 4)];
        auto r = load(**st, LoadOptions{p, -1});
        if (!r) {
          fprintf(stderr, "load: %s\n", r.error().message().c_str());
          ++bad;
          continue;
        }
        std::string tag = "localhost/t" + std::to_string(k) + ":" + std::to_string(round);
        auto t = tag_image(**st, r->ids[0], tag);
        if (!t && t.error().code() != Errc::NotFound) {
          fprintf(stderr, "tag: %s\n", t.error().message().c_str());
          ++bad;
        }
        if (round % 2 == 1) {
          RemoveOptions ro;
          ro.force = true;
          auto rm = remove_images(**st, {r->ids[0]}, ro);
          if (!rm && rm.error().code() != Errc::NotFound) {
            fprintf(stderr, "rmi: %s\n", rm.error().message().c_str());
            ++bad;
          }
        }
      }
      ::_exit(bad == 0 ? 0 : 1);
    }
    kids.push_back(pid);
  }
  for (pid_t pid : kids) {
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "child status " << status;
  }
  store_ = open_store(*driver_);
  ASSERT_TRUE(store_);
  auto imgs = store_->images().value();
  std::set<std::string> image_ids;
  std::set<std::string> used_layers;
  for (auto& img : imgs) {
    image_ids.insert(img.id);
    ASSERT_TRUE(store_->layer(img.top_layer).value().has_value());
  }
  auto names = store_->image_names().value();
  for (auto& [name, id] : names) {
    EXPECT_TRUE(image_ids.contains(id)) << name << " points at a missing image";
  }
  auto all_layers = store_->layers().value();
  for (auto& l : all_layers) {
    EXPECT_FALSE(l.incomplete) << l.id;
    EXPECT_GT(store_->layer_users(l.id).value(), 0) << "orphan layer " << l.id;
    EXPECT_TRUE(driver_->exists(l.id));
  }
  auto rep = check(*store_, false);
  ASSERT_TRUE(rep);
  EXPECT_TRUE(rep->problems.empty()) << rep->problems.front();
}

// A driver whose apply_diff reports that it started and then blocks, so the test can kill the
// process in the middle of writing a layer.
class BlockingDriver : public testing::FakeStorageDriver {
 public:
  BlockingDriver(std::filesystem::path home, int notify)
      : FakeStorageDriver(std::move(home)), notify_(notify) {}
  Result<uint64_t> apply_diff(const std::string& id, int fd, const sdk::ApplyOptions& o) override {
    char c = 'x';
    // Write part of the layer for real, then wait to be killed.
    (void)::write(notify_, &c, 1);
    ::pause();
    return FakeStorageDriver::apply_diff(id, fd, o);
  }

 private:
  int notify_;
};

TEST_F(LoadSave, KilledLoadLeavesNothingVisibleAndIsCleaned) {
  std::string cfg = testing::make_config({base_, top_}, "killed");
  auto path = archive_path("k.tar", testing::make_oci_archive({base_, top_}, cfg, "killed:1"));
  store_.reset();
  int p[2];
  ASSERT_EQ(::pipe(p), 0);
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    ::close(p[0]);
    BlockingDriver d(root_ / "driver", p[1]);
    auto st = store::Store::open(options(), d);
    if (st) {
      (void)load(**st, LoadOptions{path, -1});
    }
    ::_exit(3);
  }
  ::close(p[1]);
  char c = 0;
  ASSERT_EQ(::read(p[0], &c, 1), 1);
  ::close(p[0]);
  ASSERT_EQ(::kill(pid, SIGKILL), 0);
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFSIGNALED(status));

  std::string base_id = chain_ids({base_.diff_id})[0];
  {
    // A read-only view does no repair: the half-made layer is there, marked incomplete.
    auto o = options();
    o.read_only = true;
    auto ro = store::Store::open(o, *driver_);
    ASSERT_TRUE(ro) << ro.error().message();
    EXPECT_TRUE((*ro)->images()->empty());
    auto l = (*ro)->layer(base_id).value();
    ASSERT_TRUE(l.has_value());
    EXPECT_TRUE(l->incomplete);
    EXPECT_FALSE(image_exists(**ro, "killed:1").value());
    auto rep = (*ro)->check(false);
    ASSERT_TRUE(rep);
    ASSERT_EQ(rep->problems.size(), 1u);
    EXPECT_NE(rep->problems[0].find("incomplete"), std::string::npos);
  }
  EXPECT_TRUE(driver_->exists(base_id));
  store_ = open_store(*driver_);
  ASSERT_TRUE(store_);
  EXPECT_TRUE(store_->layers()->empty());
  EXPECT_FALSE(driver_->exists(base_id));
  // And the image loads fine afterwards.
  auto r = load(*store_, LoadOptions{path, -1});
  ASSERT_TRUE(r) << r.error().message();
}

// A driver whose remove() of one layer reports that it started, then waits for a byte.
class PausingRemoveDriver : public testing::FakeStorageDriver {
 public:
  PausingRemoveDriver(std::filesystem::path home, std::string pause_on, int notify, int go)
      : FakeStorageDriver(std::move(home)),
        pause_on_(std::move(pause_on)),
        notify_(notify),
        go_(go) {}
  Result<void> remove(const std::string& id) override {
    if (id == pause_on_) {
      char c = 'x';
      (void)::write(notify_, &c, 1);
      (void)::read(go_, &c, 1);
    }
    return FakeStorageDriver::remove(id);
  }

 private:
  std::string pause_on_;
  int notify_;
  int go_;
};

// Two processes remove the two images that share a base at the same time. Each may count the
// other's top layer (marked, not deleted yet) as a user of the base and leave it: the base
// stayed behind with no user at all (CI, LoadSave.ConcurrentProcessesKeepTheStoreConsistent).
TEST_F(LoadSave, SiblingsRemovedAtOnceTakeTheirSharedBase) {
  auto own_x = make_layer({{"x", "x"}});
  auto own_y = make_layer({{"y", "y"}});
  auto px = archive_path(
      "x.tar", testing::make_oci_archive({base_, own_x}, testing::make_config({base_, own_x}, "x"),
                                         "sib/x:1"));
  auto py = archive_path(
      "y.tar", testing::make_oci_archive({base_, own_y}, testing::make_config({base_, own_y}, "y"),
                                         "sib/y:1"));
  auto x = load(*store_, LoadOptions{px, -1});
  ASSERT_TRUE(x) << x.error().message();
  auto y = load(*store_, LoadOptions{py, -1});
  ASSERT_TRUE(y) << y.error().message();
  const std::string base_id = chain_ids({base_.diff_id})[0];
  const std::string top_x = chain_ids({base_.diff_id, own_x.diff_id})[1];
  store_.reset();
  int notify[2];
  int go[2];
  ASSERT_EQ(::pipe(notify), 0);
  ASSERT_EQ(::pipe(go), 0);
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    PausingRemoveDriver d(root_ / "driver", top_x, notify[1], go[0]);
    auto st = store::Store::open(options(), d);
    ::_exit(st && (*st)->remove_image(x->ids[0]) ? 0 : 1);
  }
  char c = 0;
  // The child has marked x's top layer and is deleting it; the base is still its parent.
  ASSERT_EQ(::read(notify[0], &c, 1), 1);
  store_ = open_store(*driver_);
  ASSERT_TRUE(store_);
  auto removed = store_->remove_image(y->ids[0]);
  ASSERT_TRUE(removed) << removed.error().message();
  EXPECT_TRUE(store_->layer(base_id).value().has_value());  // x's top layer still stands on it
  ASSERT_EQ(::write(go[1], &c, 1), 1);
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  for (int fd : {notify[0], notify[1], go[0], go[1]}) {
    ::close(fd);
  }
  EXPECT_FALSE(store_->layer(base_id).value().has_value());
  EXPECT_FALSE(driver_->exists(base_id));
  EXPECT_TRUE(store_->layers()->empty());
  auto rep = check(*store_, false);
  ASSERT_TRUE(rep);
  EXPECT_TRUE(rep->problems.empty());
}

}  // namespace
}  // namespace berth::image

namespace berth::image {
namespace {

// Overlay-like drivers take the layers of one image in parallel.
TEST_F(LoadSave, ParallelLayersOnOverlayLikeDriver) {
  FakeStorageDriver ov(root_ / "ovdriver", FakeStorageDriver::Mode::OverlayLike);
  auto st = open_store(ov, "ov-");
  ASSERT_TRUE(st);
  std::vector<testing::TestLayer> layers;
  for (int i = 0; i < 6; ++i) {
    std::vector<testing::TarFile> files;
    for (int f = 0; f < 50; ++f) {
      files.push_back(
          {"l" + std::to_string(i) + "_" + std::to_string(f), std::string(3000, 'a' + i)});
    }
    layers.push_back(make_layer(files, i % 2 == 0));
  }
  std::string cfg = testing::make_config(layers, "par");
  auto r = load(
      *st,
      LoadOptions{archive_path("par.tar", testing::make_oci_archive(layers, cfg, "par:1")), -1});
  ASSERT_TRUE(r) << r.error().message();
  auto chain = chain_ids([&] {
    std::vector<std::string> d;
    for (auto& l : layers) {
      d.push_back(l.diff_id);
    }
    return d;
  }());
  for (size_t i = 0; i < chain.size(); ++i) {
    auto l = st->layer(chain[i]).value();
    ASSERT_TRUE(l.has_value());
    EXPECT_FALSE(l->incomplete);
    EXPECT_EQ(l->parent, i ? chain[i - 1] : "");
    EXPECT_TRUE(std::filesystem::exists(ov.dir_of(chain[i]) / ("l" + std::to_string(i) + "_0")));
  }
  // A damaged middle layer: nothing stays, whichever layers finished first.
  auto layers2 = layers;
  layers2[0] = make_layer({{"fresh", "0"}});  // a new base: a chain of new layer IDs
  auto bad_layers = layers2;
  bad_layers[3] = make_layer({{"zzz", "1"}});
  bad_layers[3].diff_id = layers2[3].diff_id;  // the config promises the original content
  std::string cfg2 = testing::make_config(layers2, "par2");
  auto r2 = load(
      *st,
      LoadOptions{archive_path("par2.tar", testing::make_oci_archive(bad_layers, cfg2, "par2:1")),
                  -1});
  ASSERT_FALSE(r2);
  EXPECT_NE(r2.error().message().find("diff ID mismatch"), std::string::npos)
      << r2.error().message();
  EXPECT_FALSE(image_exists(*st, "par2:1").value());
  EXPECT_EQ(st->layers()->size(), chain.size());  // only the first image's layers
  auto rep = check(*st, false);
  ASSERT_TRUE(rep);
  EXPECT_TRUE(rep->problems.empty());
}

}  // namespace
}  // namespace berth::image
