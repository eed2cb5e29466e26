#include <gtest/gtest.h>

#include "berth/config/config.hpp"
#include "berth/copy/copy.hpp"

namespace berth::copy {
namespace {

config::RegistriesConfig conf(const std::string& text) {
  auto r = config::parse_registries_conf(text, "test.conf");
  EXPECT_TRUE(r) << (r ? "" : r.error().message());
  return r ? *r : config::RegistriesConfig{};
}

TEST(ResolveName, FullyQualifiedIsKept) {
  auto c = conf("");
  auto r = resolve_name(c, "127.0.0.1:5000/bb", false, nullptr);
  ASSERT_TRUE(r);
  EXPECT_EQ(*r, std::vector<std::string>{"127.0.0.1:5000/bb:latest"});
  r = resolve_name(c, "docker://quay.io/a/b:1", false, nullptr);
  ASSERT_TRUE(r);
  EXPECT_EQ(*r, std::vector<std::string>{"quay.io/a/b:1"});
}

TEST(ResolveName, AliasFirst) {
  auto c = conf(R"(unqualified-search-registries = ["a.example", "b.example"]
[aliases]
"bb" = "127.0.0.1:5000/library/bb"
)");
  auto r = resolve_name(c, "bb:1.36", false, nullptr);
  ASSERT_TRUE(r);
  EXPECT_EQ(*r, std::vector<std::string>{"127.0.0.1:5000/library/bb:1.36"});
}

TEST(ResolveName, EnforcingWithoutTtyListsCandidates) {
  auto c = conf(R"(unqualified-search-registries = ["a.example", "docker.io"]
short-name-mode = "enforcing"
)");
  auto r = resolve_name(c, "busybox", false, nullptr);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message().find("cannot prompt without a TTY"), std::string::npos);
  EXPECT_NE(r.error().message().find("a.example/busybox:latest"), std::string::npos);
  EXPECT_NE(r.error().message().find("docker.io/library/busybox:latest"), std::string::npos);
  // With a terminal, the prompt chooses.
  r = resolve_name(c, "busybox", true,
                   [](const std::vector<std::string>&) -> Result<size_t> { return size_t{1}; });
  ASSERT_TRUE(r);
  EXPECT_EQ(*r, std::vector<std::string>{"docker.io/library/busybox:latest"});
}

TEST(ResolveName, PermissiveTriesInOrder) {
  auto c = conf(R"(unqualified-search-registries = ["a.example", "b.example:5000"]
short-name-mode = "permissive"
)");
  auto r = resolve_name(c, "x/y@sha256:" + std::string(64, 'a'), false, nullptr);
  ASSERT_TRUE(r);
  ASSERT_EQ(r->size(), 2u);
  EXPECT_EQ((*r)[0], "a.example/x/y@sha256:" + std::string(64, 'a'));
  EXPECT_EQ((*r)[1], "b.example:5000/x/y@sha256:" + std::string(64, 'a'));
}

TEST(ResolveName, NoSearchRegistries) {
  auto r = resolve_name(conf(""), "busybox", false, nullptr);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message().find("unqualified-search registries"), std::string::npos);
}

TEST(TransportOptions, InsecureAndFlags) {
  auto c = conf("");
  RegistryAccess a;
  a.credentials = sdk::Credentials{"u", "p", ""};
  auto o = transport_options(c, "127.0.0.1:5000/bb:latest", a, true);
  ASSERT_TRUE(o);
  EXPECT_FALSE(o->tls_verify);
  EXPECT_EQ(o->credentials->username, "u");
  a.tls_verify = true;  // the flag wins over registries.conf
  EXPECT_TRUE(transport_options(c, "127.0.0.1:5000/bb", a, true)->tls_verify);
  a.cert_dir = "/nonexistent-berth-dir";
  EXPECT_FALSE(transport_options(c, "127.0.0.1:5000/bb", a, true));
}

TEST(Names, RegistryHost) {
  EXPECT_EQ(registry_host("docker://127.0.0.1:5000/x:y"), "127.0.0.1:5000");
  EXPECT_EQ(registry_host("quay.io"), "quay.io");
}

}  // namespace
}  // namespace berth::copy
