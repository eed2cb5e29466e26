#include "berth/copy/auth.hpp"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

namespace berth::copy {
namespace {

namespace fs = std::filesystem;

class AuthTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/berth-auth-XXXXXX";
    dir_ = ::mkdtemp(tmpl);
    ::setenv("HOME", (dir_ + "/home").c_str(), 1);
    ::setenv("XDG_RUNTIME_DIR", (dir_ + "/run").c_str(), 1);
    ::unsetenv("REGISTRY_AUTH_FILE");
  }
  void TearDown() override { fs::remove_all(dir_); }
  void write(const std::string& path, const std::string& text) {
    fs::create_directories(fs::path(path).parent_path());
    std::ofstream(path) << text;
  }
  std::string dir_;
};

TEST_F(AuthTest, Base64RoundTrip) {
  for (std::string s : {"", "a", "ab", "abc", "user:pass", "üser:p@ss:word"}) {
    auto d = base64_decode(base64_encode(s));
    ASSERT_TRUE(d) << s;
    EXPECT_EQ(*d, s);
  }
  EXPECT_EQ(base64_encode("user:pass"), "dXNlcjpwYXNz");
  EXPECT_FALSE(base64_decode("abc"));
}

TEST_F(AuthTest, PathsFollowPodman) {
  auto p = auth_paths("");
  EXPECT_EQ(p.write_file, dir_ + "/run/containers/auth.json");
  ASSERT_GE(p.read_files.size(), 3u);
  EXPECT_EQ(p.read_files[2], dir_ + "/home/.docker/config.json");
  ::setenv("REGISTRY_AUTH_FILE", "/x/auth.json", 1);
  EXPECT_EQ(auth_paths("").write_file, "/x/auth.json");
  EXPECT_EQ(auth_paths("/y.json").write_file, "/y.json");  // --authfile wins
}

TEST_F(AuthTest, StoreFindRemove) {
  auto p = auth_paths("");
  EXPECT_FALSE(*find_credentials(p, "127.0.0.1:5000/bb:latest"));
  ASSERT_TRUE(store_credentials(p, "127.0.0.1:5000", {"alice", "secret", ""}));
  EXPECT_EQ(fs::status(p.write_file).permissions() & fs::perms::all,
            fs::perms::owner_read | fs::perms::owner_write);
  auto c = find_credentials(p, "docker://127.0.0.1:5000/ns/bb:latest");
  ASSERT_TRUE(c && *c);
  EXPECT_EQ((*c)->username, "alice");
  EXPECT_EQ((*c)->password, "secret");
  // A namespace entry is more specific than the host entry.
  ASSERT_TRUE(store_credentials(p, "127.0.0.1:5000/ns", {"bob", "pw", ""}));
  EXPECT_EQ((*find_credentials(p, "127.0.0.1:5000/ns/bb@sha256:00"))->username, "bob");
  EXPECT_EQ((*find_credentials(p, "127.0.0.1:5000/other"))->username, "alice");
  EXPECT_FALSE(*find_credentials(p, "127.0.0.1:5001/bb"));
  ASSERT_TRUE(remove_credentials(p, "127.0.0.1:5000/ns"));
  EXPECT_EQ((*find_credentials(p, "127.0.0.1:5000/ns/bb"))->username, "alice");
  auto again = remove_credentials(p, "127.0.0.1:5000/ns");
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code(), Errc::NotFound);
  ASSERT_TRUE(remove_all_credentials(p));
  EXPECT_FALSE(*find_credentials(p, "127.0.0.1:5000/bb"));
}

TEST_F(AuthTest, ReadsDockerConfig) {
  write(dir_ + "/home/.docker/config.json",
        R"({"auths":{"https://index.docker.io/v1/":{"auth":"dXNlcjpwYXNz"},)"
        R"("http://reg.example:5000":{"auth":"YTpi"}}})");
  auto p = auth_paths("");
  auto c = find_credentials(p, "docker.io/library/busybox:latest");
  ASSERT_TRUE(c && *c);
  EXPECT_EQ((*c)->username, "user");
  EXPECT_EQ((*c)->password, "pass");
  EXPECT_EQ((*find_credentials(p, "reg.example:5000/x"))->username, "a");
  // auth.json comes first.
  ASSERT_TRUE(store_credentials(p, "docker.io", {"podman", "pw", ""}));
  EXPECT_EQ((*find_credentials(p, "docker.io/library/busybox"))->username, "podman");
}

TEST_F(AuthTest, MalformedFileIsAnErrorNamingIt) {
  write(dir_ + "/run/containers/auth.json", "{not json");
  auto c = find_credentials(auth_paths(""), "127.0.0.1:5000/bb");
  ASSERT_FALSE(c);
  EXPECT_NE(c.error().message().find(dir_ + "/run/containers/auth.json"), std::string::npos);
}

TEST_F(AuthTest, ParseCreds) {
  auto c = parse_creds("u:p:q");
  ASSERT_TRUE(c);
  EXPECT_EQ(c->username, "u");
  EXPECT_EQ(c->password, "p:q");
  EXPECT_FALSE(parse_creds(":p"));
  EXPECT_FALSE(parse_creds(""));
}

TEST_F(AuthTest, NormalizeKey) {
  EXPECT_EQ(normalize_auth_key("https://index.docker.io/v1/"), "docker.io");
  EXPECT_EQ(normalize_auth_key("http://127.0.0.1:5000/"), "127.0.0.1:5000");
  EXPECT_EQ(normalize_auth_key("quay.io/ns"), "quay.io/ns");
}

}  // namespace
}  // namespace berth::copy
