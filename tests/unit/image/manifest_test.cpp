#include "berth/image/manifest.hpp"

#include <gtest/gtest.h>

#include "berth/util/digest.hpp"

namespace berth::image {
namespace {

using nlohmann::json;

std::string d(char c) {
  return "sha256:" + std::string(64, c);
}

json oci_manifest() {
  return {{"schemaVersion", 2},
          {"mediaType", media::kOciManifest},
          {"config", {{"mediaType", media::kOciConfig}, {"digest", d('a')}, {"size", 10}}},
          {"layers", {{{"mediaType", media::kOciLayerGzip}, {"digest", d('b')}, {"size", 5}}}}};
}

TEST(Manifest, ParsesOciAndDocker) {
  auto m = parse_manifest(oci_manifest().dump());
  ASSERT_TRUE(m) << m.error().message();
  EXPECT_EQ(m->kind, ManifestKind::OciManifest);
  ASSERT_EQ(m->layers.size(), 1u);
  EXPECT_EQ(layer_compression(m->layers[0].media_type), Compression::Gzip);
  std::string docker = serialize_manifest(*m, ManifestKind::DockerManifest);
  auto dm = parse_manifest(docker);
  ASSERT_TRUE(dm) << dm.error().message();
  EXPECT_EQ(dm->kind, ManifestKind::DockerManifest);
  EXPECT_EQ(dm->config.media_type, media::kDockerConfig);
  EXPECT_EQ(dm->layers[0].media_type, media::kDockerLayerGzip);
  auto back = parse_manifest(serialize_manifest(*dm, ManifestKind::OciManifest));
  ASSERT_TRUE(back);
  EXPECT_EQ(back->layers[0].media_type, media::kOciLayerGzip);
  EXPECT_EQ(back->layers[0].digest, d('b'));
}

TEST(Manifest, RefusesBadDocuments) {
  auto big = oci_manifest();
  big["annotations"]["pad"] = std::string(kMaxManifestSize, 'x');
  auto r = parse_manifest(big.dump());
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message().find("more than"), std::string::npos);

  auto bad_digest = oci_manifest();
  bad_digest["layers"][0]["digest"] = "sha256:xyz";
  EXPECT_FALSE(parse_manifest(bad_digest.dump()));

  auto bad_type = oci_manifest();
  bad_type["layers"][0]["mediaType"] = "application/x-whatever";
  auto bt = parse_manifest(bad_type.dump());
  ASSERT_FALSE(bt);
  EXPECT_EQ(bt.error().code(), Errc::NotSupported);

  auto neg = oci_manifest();
  neg["layers"][0]["size"] = -1;
  EXPECT_FALSE(parse_manifest(neg.dump()));

  auto unknown = oci_manifest();
  unknown["mediaType"] = "application/vnd.foo";
  EXPECT_FALSE(parse_manifest(unknown.dump()));
  EXPECT_FALSE(parse_manifest("[1,2]"));
}

TEST(Manifest, ParsesIndex) {
  json idx = {{"schemaVersion", 2},
              {"mediaType", media::kOciIndex},
              {"manifests",
               {{{"mediaType", media::kOciManifest},
                 {"digest", d('c')},
                 {"size", 100},
                 {"platform", {{"os", "linux"}, {"architecture", "arm64"}}}}}}};
  auto i = parse_index(idx.dump());
  ASSERT_TRUE(i) << i.error().message();
  ASSERT_EQ(i->manifests.size(), 1u);
  EXPECT_EQ(i->manifests[0].platform.architecture, "arm64");
  EXPECT_FALSE(parse_manifest(idx.dump()));
}

TEST(Config, RequiresDiffIds) {
  json c = {{"architecture", "amd64"}, {"os", "linux"}, {"rootfs", {{"type", "layers"}}}};
  auto r = parse_config(c.dump());
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message().find("diff_ids"), std::string::npos);
  c["rootfs"]["diff_ids"] = {d('e')};
  c["created"] = "2024-01-02T03:04:05.123+01:00";
  auto ok = parse_config(c.dump());
  ASSERT_TRUE(ok) << ok.error().message();
  EXPECT_EQ(ok->created_unix, 1704161045);
  c["rootfs"]["diff_ids"] = {"nope"};
  EXPECT_FALSE(parse_config(c.dump()));
}

TEST(Config, ChainIds) {
  std::vector<std::string> diffs = {d('1'), d('2'), d('3')};
  auto ids = chain_ids(diffs);
  ASSERT_EQ(ids.size(), 3u);
  EXPECT_EQ(ids[0], std::string(64, '1'));
  std::string c1 = util::sha256_digest(d('1') + " " + d('2'));
  EXPECT_EQ(ids[1], c1.substr(7));
  EXPECT_EQ(ids[2], util::sha256_digest(c1 + " " + d('3')).substr(7));
}

}  // namespace
}  // namespace berth::image
