#include <gtest/gtest.h>

#include "berth/image/image_service.hpp"
#include "berth/image/manifest.hpp"
#include "fixture.hpp"
#include "test_archives.hpp"

namespace berth::image {
namespace {

using testing::make_layer;

class Service : public testing::TempStore {
 protected:
  void SetUp() override {
    TempStore::SetUp();
    base_ = make_layer({{"a", "1"}});
  }
  std::string load_image(const std::string& marker, const std::vector<std::string>& tags,
                         nlohmann::json labels = nullptr) {
    auto own = make_layer({{"m", marker}});
    std::string cfg = testing::make_config({base_, own}, marker, labels);
    auto p = root_ / (marker + ".tar");
    testing::write_file(p, testing::make_docker_archive({base_, own}, cfg, tags));
    auto r = load(*store_, LoadOptions{p.string(), -1});
    EXPECT_TRUE(r) << r.error().message();
    return r ? r->ids[0] : "";
  }
  testing::TestLayer base_;
};

TEST_F(Service, ShortNamesResolveAsPodmanDoes) {
  std::string hub = load_image("hub", {"busybox:latest"});
  std::string quay = load_image("quay", {"quay.io/tools/kit:2"});
  std::string id_only = load_image("local", {});
  ASSERT_TRUE(tag_image(*store_, id_only, "mine"));
  EXPECT_EQ(lookup_image(*store_, "busybox")->id, hub);
  EXPECT_EQ(lookup_image(*store_, "busybox:latest")->id, hub);
  EXPECT_EQ(lookup_image(*store_, "docker.io/busybox")->id, hub);
  EXPECT_EQ(lookup_image(*store_, "library/busybox")->id, hub);
  EXPECT_EQ(lookup_image(*store_, "kit:2")->id, quay);
  EXPECT_EQ(lookup_image(*store_, "tools/kit:2")->id, quay);
  EXPECT_EQ(lookup_image(*store_, "mine")->id, id_only);
  EXPECT_EQ(lookup_image(*store_, "localhost/mine:latest")->id, id_only);
  EXPECT_EQ(lookup_image(*store_, hub.substr(0, 5))->id, hub);
  EXPECT_EQ(lookup_image(*store_, "sha256:" + hub)->id, hub);
  auto missing = lookup_image(*store_, "kit");  // tag latest does not exist
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code(), Errc::NotFound);
  EXPECT_EQ(missing.error().message(), "kit: image not known");
  auto digest = inspect_image(*store_, "busybox");
  ASSERT_TRUE(digest);
  std::string by_digest = "busybox@" + (*digest)["Digest"].get<std::string>();
  EXPECT_EQ(lookup_image(*store_, by_digest)->id, hub);
  EXPECT_TRUE(image_exists(*store_, "busybox").value());
  EXPECT_FALSE(image_exists(*store_, "nothere").value());
}

TEST_F(Service, ListShowsPodmanFieldsAndFilters) {
  std::string a = load_image("a", {"a.io/x:1"}, {{"tier", "web"}});
  std::string b = load_image("b", {});
  auto all = list_images(*store_, {});
  ASSERT_TRUE(all) << all.error().message();
  ASSERT_EQ(all->size(), 2u);
  for (auto& j : *all) {
    for (const char* k :
         {"Id", "ParentId", "RepoTags", "RepoDigests", "Size", "SharedSize", "VirtualSize",
          "Labels", "Containers", "Names", "Digest", "History", "Created", "CreatedAt"}) {
      EXPECT_TRUE(j.contains(k)) << k;
    }
  }
  auto web = list_images(*store_, {{"label=tier=web"}, "created", {}});
  ASSERT_TRUE(web);
  ASSERT_EQ(web->size(), 1u);
  EXPECT_EQ((*web)[0]["Id"], a);
  EXPECT_EQ((*web)[0]["RepoTags"], nlohmann::json({"a.io/x:1"}));
  EXPECT_GT((*web)[0]["SharedSize"].get<int64_t>(), 0);  // the base layer is shared
  auto dangling = list_images(*store_, {{"dangling=true"}, "created", {}});
  ASSERT_EQ(dangling->size(), 1u);
  EXPECT_EQ((*dangling)[0]["Id"], b);
  auto ref = list_images(*store_, {{"reference=a.io/*"}, "created", {}});
  ASSERT_EQ(ref->size(), 1u);
  EXPECT_FALSE(list_images(*store_, {{"bogus=1"}, "created", {}}));
}

TEST_F(Service, InspectHasPodmanShape) {
  std::string id = load_image("insp", {"insp:1"});
  auto j = inspect_image(*store_, "insp:1");
  ASSERT_TRUE(j) << j.error().message();
  EXPECT_EQ((*j)["Id"], id);
  EXPECT_EQ((*j)["RepoTags"], nlohmann::json({"docker.io/library/insp:1"}));
  EXPECT_EQ((*j)["Architecture"], "amd64");
  EXPECT_EQ((*j)["Os"], "linux");
  EXPECT_EQ((*j)["GraphDriver"]["Name"], "vfs");
  EXPECT_EQ((*j)["RootFS"]["Layers"].size(), 2u);
  EXPECT_EQ((*j)["ManifestType"], media::kDockerManifest);
  EXPECT_EQ((*j)["Created"], "2024-01-02T03:04:05Z");
  EXPECT_EQ((*j)["Labels"]["marker"], "insp");
  EXPECT_EQ((*j)["NamesHistory"], nlohmann::json({"docker.io/library/insp:1"}));
  auto h = image_history(*store_, "insp:1");
  ASSERT_TRUE(h);
  ASSERT_EQ(h->size(), 2u);
  EXPECT_EQ((*h)[0]["id"], id);
}

TEST_F(Service, TagUntagAndRemove) {
  std::string id = load_image("t", {"t:1"});
  ASSERT_TRUE(tag_image(*store_, "t:1", "other:2"));
  ASSERT_TRUE(tag_image(*store_, id, "quay.io/x/y"));
  EXPECT_EQ(lookup_image(*store_, "localhost/other:2")->id, id);
  EXPECT_FALSE(tag_image(*store_, id, "Bad:Name"));
  // rmi by ID of a multiply tagged image needs force
  auto refused = remove_images(*store_, {id}, {});
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code(), Errc::Conflict);
  // rmi by name only untags
  auto un = remove_images(*store_, {"other:2"}, {});
  ASSERT_TRUE(un) << un.error().message();
  EXPECT_EQ(un->untagged, std::vector<std::string>{"localhost/other:2"});
  EXPECT_TRUE(un->deleted.empty());
  ASSERT_TRUE(untag_image(*store_, id, {"quay.io/x/y"}));
  EXPECT_FALSE(untag_image(*store_, id, {"nope"}));
  // in use by a container: refused even with force
  RemoveOptions ro;
  ro.force = true;
  ro.in_use = [&](const std::string& i) { return i == id; };
  EXPECT_FALSE(remove_images(*store_, {"t:1"}, ro));
  ro.in_use = nullptr;
  auto rm = remove_images(*store_, {"t:1"}, ro);
  ASSERT_TRUE(rm) << rm.error().message();
  EXPECT_EQ(rm->deleted, std::vector<std::string>{id});
  EXPECT_TRUE(store_->layers()->empty());
}

TEST_F(Service, PruneRemovesDanglingOnlyUnlessAll) {
  std::string keep = load_image("keep", {"keep:1"});
  std::string dang = load_image("dang", {});
  std::string used = load_image("used", {});
  auto in_use = [&](const std::string& i) { return i == used; };
  auto p = prune_images(*store_, false, in_use);
  ASSERT_TRUE(p);
  EXPECT_EQ(*p, std::vector<std::string>{dang});
  auto all = prune_images(*store_, true, in_use);
  ASSERT_TRUE(all);
  EXPECT_EQ(*all, std::vector<std::string>{keep});
  EXPECT_EQ(store_->images()->size(), 1u);
}

TEST_F(Service, MountDfCheckReset) {
  std::string id = load_image("m", {"m:1"});
  auto path = mount_image(*store_, "m:1");
  ASSERT_TRUE(path) << path.error().message();
  EXPECT_TRUE(std::filesystem::exists(std::filesystem::path(*path) / "m"));
  EXPECT_EQ(driver_->mount_count(store_->image(id).value()->top_layer), 1);
  ASSERT_TRUE(unmount_image(*store_, "m:1"));
  load_image("n", {"n:1"});
  auto du = images_disk_usage(*store_, [&](const std::string& i) { return i == id ? 1 : 0; });
  ASSERT_TRUE(du);
  EXPECT_EQ(du->total, 2);
  EXPECT_EQ(du->active, 1);
  EXPECT_GT(du->size, du->reclaimable);
  auto ok = check(*store_, false);
  ASSERT_TRUE(ok);
  EXPECT_TRUE(ok->problems.empty());
  // Lose a layer's content behind the store's back: check finds it, repair removes the image.
  auto img = store_->image(id).value();
  std::filesystem::remove_all(driver_->dir_of(img->top_layer));
  auto bad = check(*store_, false);
  ASSERT_TRUE(bad);
  ASSERT_FALSE(bad->problems.empty());
  auto fixed = check(*store_, true);
  ASSERT_TRUE(fixed) << fixed.error().message();
  EXPECT_FALSE(fixed->repaired.empty());
  EXPECT_FALSE(image_exists(*store_, "m:1").value());
  EXPECT_TRUE(image_exists(*store_, "n:1").value());
  EXPECT_TRUE(check(*store_, false)->problems.empty());
  ASSERT_TRUE(reset(*store_));
  EXPECT_TRUE(store_->images()->empty());
  EXPECT_TRUE(store_->layers()->empty());
}

}  // namespace
}  // namespace berth::image
