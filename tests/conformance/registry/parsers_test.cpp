// The docker transport's parsers: references, WWW-Authenticate challenges, Link headers, the
// registry's error JSON, URL resolution, plugin options. No network.
#include <gtest/gtest.h>

#include "docker_transport.hpp"
#include "http_client.hpp"
#include "reference.hpp"
#include "registry_client.hpp"

namespace {

using berth::Errc;
using namespace berth::registry;

const std::string kDigest =
    "sha256:bc9dd603075f89cde811855d9527ece63c5a44f442480a7bb8325bd1bd062961";

TEST(Reference, HostPortRepoTag) {
  auto r = parse_reference("127.0.0.1:5000/library/bb:1.36");
  ASSERT_TRUE(r.has_value()) << r.error().message();
  EXPECT_EQ(r->registry, "127.0.0.1:5000");
  EXPECT_EQ(r->repository, "library/bb");
  EXPECT_EQ(r->tag, "1.36");
  EXPECT_EQ(r->digest, "");
  EXPECT_EQ(r->manifest_ref(), "1.36");
  EXPECT_EQ(r->to_string(), "127.0.0.1:5000/library/bb:1.36");
}

TEST(Reference, DefaultsToLatestAndAcceptsDockerSlashes) {
  auto r = parse_reference("//registry.example.com/team/app");
  ASSERT_TRUE(r.has_value()) << r.error().message();
  EXPECT_EQ(r->registry, "registry.example.com");
  EXPECT_EQ(r->repository, "team/app");
  EXPECT_EQ(r->tag, "latest");
}

TEST(Reference, DigestWithAndWithoutTag) {
  auto r = parse_reference("localhost:5000/app@" + kDigest);
  ASSERT_TRUE(r.has_value()) << r.error().message();
  EXPECT_EQ(r->tag, "");
  EXPECT_EQ(r->digest, kDigest);
  EXPECT_EQ(r->manifest_ref(), kDigest);
  auto both = parse_reference("localhost/app:v1@" + kDigest);
  ASSERT_TRUE(both.has_value()) << both.error().message();
  EXPECT_EQ(both->tag, "v1");
  EXPECT_EQ(both->manifest_ref(), kDigest);
}

TEST(Reference, DockerHubGetsLibraryAndItsEndpoint) {
  auto r = parse_reference("docker.io/debian:bookworm");
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->repository, "library/debian");
  EXPECT_EQ(r->endpoint(), "registry-1.docker.io");
}

TEST(Reference, InvalidOnesAreRefusedWithTheReason) {
  for (const char* bad :
       {"debian", "debian:12", "library/debian", "host.io/UPPER", "host.io/a:bad tag",
        "host.io/a@sha256:abc", "host.io/a//b", "host.io/-a", "host.io:port/a", "host.io/a:"}) {
    auto r = parse_reference(bad);
    ASSERT_FALSE(r.has_value()) << bad;
    EXPECT_EQ(r.error().code(), Errc::InvalidArgument);
    EXPECT_NE(r.error().message().find(bad), std::string::npos) << r.error().message();
  }
}

TEST(Reference, RegistryForLoginAndSearch) {
  EXPECT_EQ(parse_registry("127.0.0.1:5000").value_or(""), "127.0.0.1:5000");
  EXPECT_EQ(parse_registry("https://quay.io/v2/").value_or(""), "quay.io");
  EXPECT_FALSE(parse_registry("quay.io/foo").has_value());
}

TEST(Challenge, BearerWithQuotedParameters) {
  auto cs = parse_challenges(
      R"(Bearer realm="https://auth.example.com/token",service="registry.example.com",)"
      R"(scope="repository:a/b:pull,push")");
  ASSERT_EQ(cs.size(), 1u);
  EXPECT_EQ(cs[0].scheme, "bearer");
  EXPECT_EQ(cs[0].params["realm"], "https://auth.example.com/token");
  EXPECT_EQ(cs[0].params["service"], "registry.example.com");
  EXPECT_EQ(cs[0].params["scope"], "repository:a/b:pull,push");
}

TEST(Challenge, BasicAndSeveral) {
  auto cs = parse_challenges(R"(Basic realm="Registry Realm", Bearer realm="x", error=invalid)");
  ASSERT_EQ(cs.size(), 2u);
  EXPECT_EQ(cs[0].scheme, "basic");
  EXPECT_EQ(cs[0].params["realm"], "Registry Realm");
  EXPECT_EQ(cs[1].scheme, "bearer");
  EXPECT_EQ(cs[1].params["error"], "invalid");
  EXPECT_TRUE(parse_challenges("").empty());
}

TEST(Link, NextPage) {
  EXPECT_EQ(parse_next_link(R"(</v2/_catalog?last=b&n=2>; rel="next")"), "/v2/_catalog?last=b&n=2");
  EXPECT_EQ(parse_next_link(R"(<a>; rel="prev", <b>; rel="next")"), "b");
  EXPECT_EQ(parse_next_link(""), "");
}

TEST(Url, ResolveAndOrigin) {
  EXPECT_EQ(resolve_url("http://h:1/v2/x/blobs/uploads/", "/v2/x/blobs/uploads/u?_state=s"),
            "http://h:1/v2/x/blobs/uploads/u?_state=s");
  EXPECT_EQ(resolve_url("http://h:1/v2/x", "https://other/y"), "https://other/y");
  EXPECT_EQ(resolve_url("http://h:1/v2/x/tags/list?n=1", "list?last=a"),
            "http://h:1/v2/x/tags/list?last=a");
  EXPECT_EQ(url_origin("https://Example.com:443/a?b"), "https://example.com:443");
  EXPECT_NE(url_origin("http://127.0.0.1:5000/a"), url_origin("http://localhost:5000/a"));
  EXPECT_EQ(url_escape("repository:a/b:pull,push"), "repository%3Aa%2Fb%3Apull%2Cpush");
}

TEST(RegistryErrors, MessagesFromTheErrorJson) {
  EXPECT_EQ(registry_error_message(
                R"({"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown",)"
                R"("detail":{"Tag":"x"}}]})"),
            "MANIFEST_UNKNOWN: manifest unknown");
  EXPECT_EQ(registry_error_message(R"({"errors":[{"code":"A","message":"a"},{"code":"B"}]})"),
            "A: a; B");
  EXPECT_EQ(registry_error_message("<html>"), "");
  EXPECT_EQ(errc_for_status(404), Errc::NotFound);
  EXPECT_EQ(errc_for_status(401), Errc::PermissionDenied);
  EXPECT_EQ(errc_for_status(503), Errc::Unavailable);
}

TEST(Options, ChunkAndPageSize) {
  auto o = parse_options(R"({"chunk_size": 65536, "page_size": 2})");
  ASSERT_TRUE(o.has_value()) << o.error().message();
  EXPECT_EQ(o->chunk_size, 65536);
  EXPECT_EQ(o->page_size, 2);
  EXPECT_EQ(parse_options("").value().chunk_size, kDefaultChunkSize);
  auto typo = parse_options(R"({"chunksize": 1})");
  ASSERT_FALSE(typo.has_value());
  EXPECT_NE(typo.error().message().find("chunksize"), std::string::npos);
  EXPECT_FALSE(parse_options(R"({"chunk_size": 1})").has_value());
}

TEST(Digest, Sha256) {
  EXPECT_EQ(sha256_digest(""),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

}  // namespace
