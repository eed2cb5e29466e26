#include "berth/store/store.hpp"

#include <gtest/gtest.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <thread>

#include "fakes/fake_storage_driver.hpp"

namespace berth::store {
namespace {

class StoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/berth-store-test-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    root_ = tmpl;
    driver_ = std::make_unique<testing::FakeStorageDriver>(root_ / "driver");
    opts_.graph_root = (root_ / "graph").string();
    opts_.run_root = (root_ / "run").string();
    auto s = Store::open(opts_, *driver_);
    ASSERT_TRUE(s) << s.error().message();
    store_ = std::move(*s);
  }
  void TearDown() override {
    store_.reset();
    std::filesystem::remove_all(root_);
  }
  // A fill that writes one file into the layer.
  std::function<Result<LayerFill>(const std::string&)> writes(const std::string& file,
                                                              std::atomic<int>* calls = nullptr) {
    return [this, file, calls](const std::string& id) -> Result<LayerFill> {
      if (calls) {
        ++*calls;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      std::ofstream(driver_->dir_of(id) / file) << "x";
      return LayerFill{"sha256:" + std::string(64, 'd'), "", 1, 1};
    };
  }
  LayerRecord want(const std::string& id, const std::string& parent = "") {
    LayerRecord l;
    l.id = id;
    l.parent = parent;
    return l;
  }
  ImageRecord image(const std::string& id, const std::string& top, std::vector<std::string> names) {
    ImageRecord r;
    r.id = id;
    r.top_layer = top;
    r.config = "{}";
    r.manifest = "{}";
    r.names = std::move(names);
    return r;
  }
  std::filesystem::path root_;
  std::unique_ptr<testing::FakeStorageDriver> driver_;
  StoreOptions opts_;
  StorePtr store_;
};

TEST_F(StoreTest, SchemaIsVersionedAndNewerIsRefused) {
  store_.reset();
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open((root_ / "graph/berth.db").c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, "PRAGMA user_version=99", nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(db);
  auto s = Store::open(opts_, *driver_);
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().code(), Errc::NotSupported);
  EXPECT_NE(s.error().message().find("upgrade berth"), std::string::npos);
}

TEST_F(StoreTest, ConcurrentWritersOfOneLayerShareIt) {
  std::atomic<int> calls{0};
  std::vector<std::thread> ts;
  std::atomic<int> ok{0};
  for (int i = 0; i < 4; ++i) {
    ts.emplace_back([&] {
      auto r = store_->create_layer(want("aaa"), writes("f", &calls));
      if (r && !r->incomplete) {
        ++ok;
      }
    });
  }
  for (auto& t : ts) {
    t.join();
  }
  EXPECT_EQ(ok.load(), 4);
  EXPECT_EQ(calls.load(), 1);
  EXPECT_TRUE(std::filesystem::exists(driver_->dir_of("aaa") / "f"));
}

TEST_F(StoreTest, FailedFillLeavesNothing) {
  auto r = store_->create_layer(want("bad"), [](const std::string&) -> Result<LayerFill> {
    return fail(Errc::Corrupt, "digest mismatch");
  });
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message(), "digest mismatch");
  EXPECT_FALSE(store_->layer("bad").value().has_value());
  EXPECT_FALSE(driver_->exists("bad"));
}

TEST_F(StoreTest, LayersAreCountedAndRemovedWithUnusedParents) {
  ASSERT_TRUE(store_->create_layer(want("p"), writes("p")));
  ASSERT_TRUE(store_->create_layer(want("c", "p"), writes("c")));
  // The child copied the parent (vfs-like).
  EXPECT_TRUE(std::filesystem::exists(driver_->dir_of("c") / "p"));
  auto no_parent = store_->create_layer(want("x", "missing"), writes("x"));
  ASSERT_FALSE(no_parent);
  EXPECT_EQ(no_parent.error().code(), Errc::Conflict);
  ASSERT_TRUE(store_->put_image(image("i1", "c", {"localhost/a:1"})));
  auto busy = store_->remove_layer("p");
  ASSERT_FALSE(busy);
  EXPECT_EQ(busy.error().code(), Errc::Conflict);
  EXPECT_EQ(store_->layer_users("p").value(), 1);
  auto removed = store_->remove_image("i1");
  ASSERT_TRUE(removed) << removed.error().message();
  EXPECT_EQ(*removed, (std::vector<std::string>{"c", "p"}));
  EXPECT_TRUE(store_->layers()->empty());
  EXPECT_FALSE(driver_->exists("p"));
}

TEST_F(StoreTest, NamesMoveBetweenImagesAndKeepHistory) {
  ASSERT_TRUE(store_->create_layer(want("l"), writes("l")));
  ASSERT_TRUE(store_->put_image(image("i1", "l", {"localhost/n:1"})));
  auto i2 = store_->put_image(image("i2", "l", {"localhost/n:1", "localhost/m:1"}));
  ASSERT_TRUE(i2);
  EXPECT_EQ(store_->image_by_name("localhost/n:1").value(), std::optional<std::string>("i2"));
  EXPECT_TRUE(store_->image("i1").value()->names.empty());
  EXPECT_EQ(i2->names_history.front(), "localhost/m:1");
  ASSERT_TRUE(store_->add_name("i1", "localhost/z:1"));
  EXPECT_FALSE(store_->add_name("nope", "localhost/z:2"));
  EXPECT_EQ(store_->remove_name("i1", "localhost/q:1").error().code(), Errc::NotFound);
  EXPECT_EQ(store_->images_by_id_prefix("i").value().size(), 2u);
  ASSERT_TRUE(store_->set_big_data("i1", "signatures", "sig"));
  EXPECT_EQ(store_->big_data("i1", "signatures").value(), std::optional<std::string>("sig"));
  ASSERT_TRUE(store_->remove_image("i1"));
  EXPECT_FALSE(store_->image_by_name("localhost/z:1").value().has_value());
}

TEST_F(StoreTest, PutImageRefusesAVanishedTopLayer) {
  auto r = store_->put_image(image("i", "gone", {}));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), Errc::Conflict);
}

TEST_F(StoreTest, RemovingAMountedLayerLeavesItWhole) {
  // A container's layer still mounted: the removal fails and the layer stays an ordinary one,
  // not one marked for removal that a later command's clean-up would destroy under it.
  ASSERT_TRUE(store_->create_layer(want("p"), writes("p")));
  ASSERT_TRUE(store_->create_layer(want("c", "p"), writes("c")));
  ASSERT_TRUE(driver_->mount("c", {}));
  auto r = store_->remove_layer("c");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), Errc::Conflict);
  for (const char* id : {"c", "p"}) {
    auto l = store_->layer(id);
    ASSERT_TRUE(l && l->has_value()) << id;
    EXPECT_FALSE((*l)->incomplete) << id;
  }
  ASSERT_TRUE(driver_->unmount("c"));
  auto removed = store_->remove_layer("c");
  ASSERT_TRUE(removed) << removed.error().message();
  EXPECT_EQ(*removed, (std::vector<std::string>{"c", "p"}));
}

TEST_F(StoreTest, AStaleLayerThatCannotGoYetDoesNotFailTheOpen) {
  // A writer that died mid-fill left "s" incomplete; while the driver refuses to remove it,
  // opening the store (every command does) warns and goes on; later the layer goes.
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    (void)store_->create_layer(want("s"),
                               [](const std::string&) -> Result<LayerFill> { ::_exit(0); });
    ::_exit(1);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(driver_->exists("s"));
  ASSERT_TRUE(driver_->mount("s", {}));
  store_.reset();
  auto s = Store::open(opts_, *driver_);
  ASSERT_TRUE(s) << s.error().message();
  EXPECT_TRUE(driver_->exists("s"));
  s->reset();
  ASSERT_TRUE(driver_->unmount("s"));
  s = Store::open(opts_, *driver_);
  ASSERT_TRUE(s) << s.error().message();
  EXPECT_FALSE(driver_->exists("s"));
  store_ = std::move(*s);
}

TEST_F(StoreTest, WriterIdentity) {
  EXPECT_TRUE(Store::writer_alive(Store::self_writer()));
  EXPECT_FALSE(Store::writer_alive(""));
  EXPECT_FALSE(Store::writer_alive("other-boot:1:1"));
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    std::string w = Store::self_writer();
    ::_exit(w != Store::self_writer() || !Store::writer_alive(w) ? 1 : 0);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  EXPECT_EQ(WEXITSTATUS(status), 0);
}

}  // namespace
}  // namespace berth::store
