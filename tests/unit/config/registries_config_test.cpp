#include <gtest/gtest.h>

#include "config_fixture.hpp"

namespace berth::config::testing {
namespace {

using RegistriesConfigTest = ConfigFixture;

RegistriesConfig parse(const std::string& text) {
  auto c = parse_registries_conf(text, "/test/registries.conf");
  EXPECT_TRUE(c) << (c ? "" : c.error().message());
  return c ? *c : RegistriesConfig{};
}

std::string prefix_of(const RegistriesConfig& c, const std::string& ref) {
  const Registry* r = c.find_registry(ref);
  return r == nullptr ? "<none>" : r->prefix;
}

TEST_F(RegistriesConfigTest, DefaultsWithoutFiles) {
  auto c = load_registries_config(paths());
  ASSERT_TRUE(c) << c.error().message();
  EXPECT_TRUE(c->unqualified_search_registries.empty());
  EXPECT_EQ(c->short_name_mode, ShortNameMode::Enforcing);
  EXPECT_EQ(c->credential_helpers, std::vector<std::string>{"containers-auth.json"});
  EXPECT_TRUE(c->registries.empty());
  EXPECT_EQ(c->find_registry("docker.io/library/busybox:latest"), nullptr);
}

TEST_F(RegistriesConfigTest, ParsesV2) {
  auto c = parse(R"(
unqualified-search-registries = ["registry.fedoraproject.org", "docker.io/"]
short-name-mode = "permissive"
credential-helpers = ["containers-auth.json", "secretservice"]

[[registry]]
prefix = "example.com/foo"
location = "internal.example.com/bar"
insecure = true
mirror-by-digest-only = true

[[registry.mirror]]
location = "mirror-1.example.com/"
insecure = true

[[registry.mirror]]
location = "mirror-2.example.com"

[[registry]]
location = "blocked.io"
blocked = true
)");
  EXPECT_EQ(c.unqualified_search_registries,
            (std::vector<std::string>{"registry.fedoraproject.org", "docker.io"}));
  EXPECT_EQ(c.short_name_mode, ShortNameMode::Permissive);
  EXPECT_EQ(c.credential_helpers.size(), 2u);
  ASSERT_EQ(c.registries.size(), 2u);
  const Registry* r = c.find_registry("example.com/foo/img:1");
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(r->location, "internal.example.com/bar");
  EXPECT_TRUE(r->insecure);
  EXPECT_TRUE(r->mirror_by_digest_only);
  ASSERT_EQ(r->mirrors.size(), 2u);
  EXPECT_EQ(r->mirrors[0].location, "mirror-1.example.com");
  EXPECT_TRUE(r->mirrors[0].insecure);
  EXPECT_FALSE(r->mirrors[1].insecure);
  const Registry* b = c.find_registry("blocked.io/x");
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(b->prefix, "blocked.io");  // prefix defaults to location
  EXPECT_TRUE(b->blocked);
}

TEST_F(RegistriesConfigTest, LongestPrefixWinsOnComponentBoundaries) {
  auto c = parse(R"(
[[registry]]
location = "example.com"
[[registry]]
prefix = "example.com/foo"
location = "a.example.com"
[[registry]]
prefix = "example.com/foo/bar"
location = "b.example.com"
)");
  EXPECT_EQ(prefix_of(c, "example.com/foo/bar/baz:tag"), "example.com/foo/bar");
  EXPECT_EQ(prefix_of(c, "example.com/foo/bar"), "example.com/foo/bar");
  EXPECT_EQ(prefix_of(c, "example.com/foo/bar@sha256:abcd"), "example.com/foo/bar");
  EXPECT_EQ(prefix_of(c, "example.com/foo/barbaz"), "example.com/foo");
  EXPECT_EQ(prefix_of(c, "example.com/foo:1"), "example.com/foo");
  EXPECT_EQ(prefix_of(c, "example.com/foobar"), "example.com");
  EXPECT_EQ(prefix_of(c, "example.com"), "example.com");
  EXPECT_EQ(prefix_of(c, "example.community/x"), "<none>");
  EXPECT_EQ(prefix_of(c, "other.com/example.com/foo"), "<none>");
}

TEST_F(RegistriesConfigTest, WildcardPrefixes) {
  auto c = parse(R"(
[[registry]]
prefix = "*.example.com"
[[registry]]
prefix = "*.corp.example.com"
location = "proxy.example.net"
[[registry]]
prefix = "registry.example.com/team/project"
location = "registry.example.com/team/project"
)");
  EXPECT_EQ(prefix_of(c, "a.example.com/img"), "*.example.com");
  EXPECT_EQ(prefix_of(c, "a.b.example.com:5000/img:tag"), "*.example.com");
  EXPECT_EQ(prefix_of(c, "x.corp.example.com/img"), "*.corp.example.com");
  EXPECT_EQ(prefix_of(c, "registry.example.com/team/project/img"),
            "registry.example.com/team/project");
  EXPECT_EQ(prefix_of(c, "registry.example.com/other"), "*.example.com");
  EXPECT_EQ(prefix_of(c, "example.com/img"), "<none>");
  EXPECT_EQ(prefix_of(c, "aexample.com/img"), "<none>");
  EXPECT_EQ(prefix_of(c, "a.example.community/img"), "<none>");
  EXPECT_EQ(prefix_of(c, "docker.io/a.example.com/img"), "<none>");

  // An empty location keeps the reference's own host.
  auto src = c.pull_sources("a.example.com/img:1");
  ASSERT_TRUE(src) << src.error().message();
  ASSERT_EQ(src->size(), 1u);
  EXPECT_EQ((*src)[0].reference, "a.example.com/img:1");
  EXPECT_EQ((*src)[0].location, "a.example.com");
  src = c.pull_sources("x.corp.example.com/ns/img:1");
  ASSERT_TRUE(src) << src.error().message();
  EXPECT_EQ((*src)[0].reference, "proxy.example.net/ns/img:1");
}

TEST_F(RegistriesConfigTest, InvalidWildcardsAreRefused) {
  for (const char* prefix : {"example.*.com", "*.example.com/ns", "*.example.com:5000"}) {
    auto c = parse_registries_conf(
        std::string("[[registry]]\nprefix = \"") + prefix + "\"\nlocation = \"x.io\"\n", "/r.conf");
    EXPECT_FALSE(c) << prefix;
  }
  auto c = parse_registries_conf("[[registry]]\nprefix = \"example.com\"\n", "/r.conf");
  ASSERT_FALSE(c);
  EXPECT_NE(c.error().message().find("location is unset"), std::string::npos);
}

TEST_F(RegistriesConfigTest, PullSourcesHonourMirrorSettings) {
  auto c = parse(R"(
[[registry]]
prefix = "docker.io"
location = "docker.io"
[[registry.mirror]]
location = "all.mirror.io/hub"
[[registry.mirror]]
location = "digest.mirror.io"
pull-from-mirror = "digest-only"
[[registry.mirror]]
location = "tag.mirror.io"
pull-from-mirror = "tag-only"
insecure = true

[[registry]]
prefix = "quay.io"
location = "quay.io"
mirror-by-digest-only = true
[[registry.mirror]]
location = "quay-mirror.io"

[[registry]]
location = "evil.io"
blocked = true
)");
  auto tag = c.pull_sources("docker.io/library/busybox:latest");
  ASSERT_TRUE(tag) << tag.error().message();
  ASSERT_EQ(tag->size(), 3u);
  EXPECT_EQ((*tag)[0].reference, "all.mirror.io/hub/library/busybox:latest");
  EXPECT_EQ((*tag)[1].reference, "tag.mirror.io/library/busybox:latest");
  EXPECT_TRUE((*tag)[1].insecure);
  EXPECT_EQ((*tag)[2].reference, "docker.io/library/busybox:latest");
  EXPECT_EQ((*tag)[2].location, "docker.io");

  std::string dig = "docker.io/library/busybox@sha256:" + std::string(64, 'a');
  auto d = c.pull_sources(dig);
  ASSERT_TRUE(d) << d.error().message();
  ASSERT_EQ(d->size(), 3u);
  EXPECT_EQ((*d)[0].location, "all.mirror.io/hub");
  EXPECT_EQ((*d)[1].location, "digest.mirror.io");
  EXPECT_EQ((*d)[2].location, "docker.io");

  auto q = c.pull_sources("quay.io/x/y:1");
  ASSERT_TRUE(q);
  ASSERT_EQ(q->size(), 1u);
  EXPECT_EQ((*q)[0].location, "quay.io");
  q = c.pull_sources("quay.io/x/y@sha256:" + std::string(64, 'b'));
  ASSERT_TRUE(q);
  ASSERT_EQ(q->size(), 2u);
  EXPECT_EQ((*q)[0].location, "quay-mirror.io");

  auto blocked = c.pull_sources("evil.io/x:1");
  ASSERT_FALSE(blocked);
  EXPECT_EQ(blocked.error().code(), Errc::PermissionDenied);
  EXPECT_NE(blocked.error().message().find("evil.io is blocked"), std::string::npos);

  auto none = c.pull_sources("ghcr.io/a/b:1");
  ASSERT_TRUE(none);
  ASSERT_EQ(none->size(), 1u);
  EXPECT_EQ((*none)[0].reference, "ghcr.io/a/b:1");
}

TEST_F(RegistriesConfigTest, MirrorSettingErrors) {
  auto c = parse_registries_conf(
      "[[registry]]\nlocation = \"a.io\"\nmirror-by-digest-only = true\n[[registry.mirror]]\n"
      "location = \"m.io\"\npull-from-mirror = \"tag-only\"\n",
      "/r.conf");
  ASSERT_FALSE(c);
  EXPECT_NE(c.error().message().find("/r.conf:6:20: key registry[0].mirror[0].pull-from-mirror"),
            std::string::npos)
      << c.error().message();
  c = parse_registries_conf(
      "[[registry]]\nlocation = \"a.io\"\n[[registry.mirror]]\nlocation = \"m.io\"\n"
      "pull-from-mirror = \"sometimes\"\n",
      "/r.conf");
  ASSERT_FALSE(c);
  EXPECT_NE(c.error().message().find("unsupported value \"sometimes\""), std::string::npos);
  c = parse_registries_conf("[[registry]]\nlocation = \"a.io\"\npull-from-mirror = \"all\"\n",
                            "/r.conf");
  ASSERT_FALSE(c);
  EXPECT_NE(c.error().message().find("must not be set for a non-mirror registry"),
            std::string::npos);
  c = parse_registries_conf(
      "[[registry]]\nlocation = \"a.io\"\n[[registry.mirror]]\ninsecure = "
      "true\n",
      "/r.conf");
  ASSERT_FALSE(c);
  EXPECT_NE(c.error().message().find("mirror: location is unset"), std::string::npos);
}

TEST_F(RegistriesConfigTest, UriSchemesAreRefused) {
  auto c = parse_registries_conf("[[registry]]\nlocation = \"https://a.io\"\n", "/r.conf");
  ASSERT_FALSE(c);
  EXPECT_NE(c.error().message().find("/r.conf:2:12: key registry[0].location: invalid location "
                                     "\"https://a.io\": URI schemes are not supported"),
            std::string::npos)
      << c.error().message();
}

TEST_F(RegistriesConfigTest, ConflictingInsecureForOneLocation) {
  auto c = parse_registries_conf(R"(
[[registry]]
prefix = "a.io/x"
location = "a.io"
insecure = true
[[registry]]
prefix = "a.io/y"
location = "a.io"
)",
                                 "/r.conf");
  ASSERT_FALSE(c);
  EXPECT_NE(c.error().message().find("conflicting 'insecure'"), std::string::npos);
}

TEST_F(RegistriesConfigTest, DuplicatePrefixFirstWins) {
  auto c = parse(R"(
[[registry]]
prefix = "a.io"
location = "one.io"
[[registry]]
prefix = "a.io"
location = "two.io"
)");
  ASSERT_EQ(c.registries.size(), 1u);
  EXPECT_EQ(c.registries[0].location, "one.io");
}

TEST_F(RegistriesConfigTest, V1IsConvertedToV2) {
  write(etc_ / "registries.conf", R"(
[registries.search]
registries = ["registry.access.redhat.com", "docker.io"]

[registries.insecure]
registries = ["localhost:5000", "docker.io"]

[registries.block]
registries = ["evil.io/"]
)");
  auto c = load_registries_config(paths());
  ASSERT_TRUE(c) << c.error().message();
  EXPECT_EQ(c->unqualified_search_registries,
            (std::vector<std::string>{"registry.access.redhat.com", "docker.io"}));
  ASSERT_EQ(c->registries.size(), 3u);
  const Registry* evil = c->find_registry("evil.io/x");
  ASSERT_NE(evil, nullptr);
  EXPECT_TRUE(evil->blocked);
  EXPECT_FALSE(evil->insecure);
  EXPECT_EQ(evil->location, "evil.io");
  const Registry* local = c->find_registry("localhost:5000/img");
  ASSERT_NE(local, nullptr);
  EXPECT_TRUE(local->insecure);
  EXPECT_EQ(local->location, "localhost:5000");
  const Registry* hub = c->find_registry("docker.io/library/alpine");
  ASSERT_NE(hub, nullptr);
  EXPECT_TRUE(hub->insecure);
  EXPECT_EQ(c->find_registry("registry.access.redhat.com/ubi9"), nullptr);
}

TEST_F(RegistriesConfigTest, MixingV1AndV2IsRefused) {
  auto c = parse_registries_conf(
      "unqualified-search-registries = [\"docker.io\"]\n[registries.search]\nregistries = []\n",
      "/r.conf");
  ASSERT_FALSE(c);
  EXPECT_NE(c.error().message().find("mixing the v1 format"), std::string::npos);
}

TEST_F(RegistriesConfigTest, DropInsMergeInLexicalOrder) {
  write(etc_ / "registries.conf", R"(
unqualified-search-registries = ["docker.io"]
[[registry]]
location = "a.io"
insecure = true
[[registry]]
location = "b.io"
[aliases]
"fedora" = "registry.fedoraproject.org/fedora"
)");
  write(etc_ / "registries.conf.d/000-shortnames.conf", R"([aliases]
"fedora" = "example.org/fedora"
"ubi9" = "registry.access.redhat.com/ubi9"
"busybox" = "docker.io/library/busybox"
)");
  write(etc_ / "registries.conf.d/50-site.conf", R"(
unqualified-search-registries = ["quay.io", "docker.io"]
short-name-mode = "disabled"
[[registry]]
location = "a.io"
[[registry.mirror]]
location = "mirror.a.io"
[aliases]
"busybox" = "quay.io/prometheus/busybox"
)");
  write(etc_ / "registries.conf.d/README", "not toml at all [");
  auto c = load_registries_config(paths());
  ASSERT_TRUE(c) << c.error().message();
  EXPECT_EQ(c->unqualified_search_registries, (std::vector<std::string>{"quay.io", "docker.io"}));
  EXPECT_EQ(c->short_name_mode, ShortNameMode::Disabled);
  ASSERT_EQ(c->registries.size(), 2u);
  const Registry* a = c->find_registry("a.io/x");
  ASSERT_NE(a, nullptr);
  EXPECT_FALSE(a->insecure);  // the drop-in's [[registry]] replaced the whole entry
  ASSERT_EQ(a->mirrors.size(), 1u);
  EXPECT_NE(c->find_registry("b.io/x"), nullptr);
  EXPECT_EQ(c->resolve_alias("fedora")->value, "example.org/fedora");
  EXPECT_EQ(c->resolve_alias("ubi9")->value, "registry.access.redhat.com/ubi9");
  EXPECT_EQ(c->resolve_alias("busybox")->value, "quay.io/prometheus/busybox");
  EXPECT_EQ(c->resolve_alias("busybox")->file, (etc_ / "registries.conf.d/50-site.conf").string());
  EXPECT_FALSE(c->resolve_alias("alpine"));
  EXPECT_EQ(c->files.size(), 3u);
}

TEST_F(RegistriesConfigTest, BerthDirOutranksContainersDir) {
  write(etc_ / "registries.conf", "unqualified-search-registries = [\"docker.io\"]\n");
  write(berth_ / "registries.conf", "unqualified-search-registries = [\"quay.io\"]\n");
  write(etc_ / "registries.conf.d/10.conf", "short-name-mode = \"permissive\"\n");
  write(berth_ / "registries.conf.d/10.conf", "short-name-mode = \"disabled\"\n");
  auto c = load_registries_config(paths());
  ASSERT_TRUE(c) << c.error().message();
  EXPECT_EQ(c->unqualified_search_registries, std::vector<std::string>{"quay.io"});
  EXPECT_EQ(c->short_name_mode, ShortNameMode::Disabled);
}

TEST_F(RegistriesConfigTest, DropInMustBeV2) {
  write(etc_ / "registries.conf.d/01.conf", "[registries.search]\nregistries = [\"a.io\"]\n");
  auto c = load_registries_config(paths());
  ASSERT_FALSE(c);
  EXPECT_NE(c.error().message().find((etc_ / "registries.conf.d/01.conf").string() + ":1:1"),
            std::string::npos)
      << c.error().message();
  EXPECT_NE(c.error().message().find("version 2 format"), std::string::npos);
}

TEST_F(RegistriesConfigTest, EnvReplacesMainFileButDropInsStillApply) {
  write(berth_ / "registries.conf", "unqualified-search-registries = [\"quay.io\"]\n");
  write(root_ / "mine.conf", "unqualified-search-registries = [\"ghcr.io\"]\n");
  write(etc_ / "registries.conf.d/10.conf", "[aliases]\n\"x\" = \"ghcr.io/a/x\"\n");
  env_["CONTAINERS_REGISTRIES_CONF"] = (root_ / "mine.conf").string();
  auto c = load_registries_config(paths());
  ASSERT_TRUE(c) << c.error().message();
  EXPECT_EQ(c->unqualified_search_registries, std::vector<std::string>{"ghcr.io"});
  EXPECT_EQ(c->resolve_alias("x")->value, "ghcr.io/a/x");

  env_["CONTAINERS_REGISTRIES_CONF"] = (root_ / "missing.conf").string();
  c = load_registries_config(paths());
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error().code(), Errc::NotFound);
}

TEST_F(RegistriesConfigTest, RootlessUserFileUsesOnlyUserDropIns) {
  write(etc_ / "registries.conf", "unqualified-search-registries = [\"docker.io\"]\n");
  write(etc_ / "registries.conf.d/10.conf", "[aliases]\n\"sys\" = \"docker.io/library/sys\"\n");
  write(user_ / "containers/registries.conf", "unqualified-search-registries = [\"quay.io\"]\n");
  write(user_ / "containers/registries.conf.d/10.conf",
        "[aliases]\n\"mine\" = \"quay.io/me/mine\"\n");
  auto c = load_registries_config(paths(1000));
  ASSERT_TRUE(c) << c.error().message();
  EXPECT_EQ(c->unqualified_search_registries, std::vector<std::string>{"quay.io"});
  EXPECT_TRUE(c->resolve_alias("mine"));
  EXPECT_FALSE(c->resolve_alias("sys"));
  // root never reads the per-user files
  auto r = load_registries_config(paths(0));
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(r->unqualified_search_registries, std::vector<std::string>{"docker.io"});
  EXPECT_TRUE(r->resolve_alias("sys"));
}

TEST_F(RegistriesConfigTest, InvalidAliases) {
  auto c = parse_registries_conf("[aliases]\n\"docker.io/busybox\" = \"docker.io/library/b\"\n",
                                 "/r.conf");
  ASSERT_FALSE(c);
  EXPECT_NE(c.error().message().find("/r.conf:2:1:"), std::string::npos) << c.error().message();
  EXPECT_NE(c.error().message().find("must have no registry"), std::string::npos);
  c = parse_registries_conf("[aliases]\nbusybox = \"busybox\"\n", "/r.conf");
  ASSERT_FALSE(c);
  EXPECT_NE(c.error().message().find("/r.conf:2:11:"), std::string::npos) << c.error().message();
  c = parse_registries_conf("[aliases]\nbusybox = \"docker.io/library/busybox:latest\"\n",
                            "/r.conf");
  ASSERT_FALSE(c);
  c = parse_registries_conf("[aliases]\nbusybox = 1\n", "/r.conf");
  ASSERT_FALSE(c);
  EXPECT_NE(c.error().message().find("expected a string, got an integer"), std::string::npos);
}

TEST_F(RegistriesConfigTest, TypeAndParseErrors) {
  auto c = parse_registries_conf("short-name-mode = \"strict\"\n", "/r.conf");
  ASSERT_FALSE(c);
  EXPECT_NE(c.error().message().find("/r.conf:1:19: key short-name-mode: unsupported value"),
            std::string::npos)
      << c.error().message();
  c = parse_registries_conf("\n[[registry]]\nlocation = \"a.io\"\ninsecure = \"maybe\"\n",
                            "/r.conf");
  ASSERT_FALSE(c);
  EXPECT_NE(c.error().message().find("/r.conf:4:12: key registry[0].insecure"), std::string::npos)
      << c.error().message();
  c = parse_registries_conf("unqualified-search-registries = \"docker.io\"\n", "/r.conf");
  ASSERT_FALSE(c);
  EXPECT_NE(c.error().message().find("expected an array of strings, got a string"),
            std::string::npos);
  c = parse_registries_conf("[[registry]\n", "/r.conf");
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error().message().rfind("/r.conf:1:", 0), 0u) << c.error().message();
}

}  // namespace
}  // namespace berth::config::testing
