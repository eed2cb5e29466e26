#include "berth/image/reference.hpp"

#include <gtest/gtest.h>

namespace berth::image {
namespace {

struct NormCase {
  const char* in;
  const char* out;  // "" = error
};

TEST(Reference, NormalizesLikeDocker) {
  const NormCase cases[] = {
      {"busybox", "docker.io/library/busybox"},
      {"busybox:1.36", "docker.io/library/busybox:1.36"},
      {"library/busybox:latest", "docker.io/library/busybox:latest"},
      {"user/app", "docker.io/user/app"},
      {"quay.io/podman/hello:latest", "quay.io/podman/hello:latest"},
      {"localhost/foo:1", "localhost/foo:1"},
      {"localhost:5000/foo/bar:tag", "localhost:5000/foo/bar:tag"},
      {"127.0.0.1:5000/deb", "127.0.0.1:5000/deb"},
      {"index.docker.io/library/alpine", "docker.io/library/alpine"},
      {"a.b-c/x_y__z.w", "a.b-c/x_y__z.w"},
      {"a_b.io/x", ""},
      {"Busybox", ""},
      {"busybox:", ""},
      {"busybox:-x", ""},
      {"bus--y", "docker.io/library/bus--y"},
      {"bus___y", ""},
      {"-busybox", ""},
      {"busybox/", ""},
      {"", ""},
  };
  for (auto& c : cases) {
    if (std::string(c.in).empty() && std::string(c.out).empty()) {
      auto r = parse_normalized(c.in);
      EXPECT_FALSE(r.has_value());
      continue;
    }
    auto r = parse_normalized(c.in);
    if (std::string(c.out).empty()) {
      EXPECT_FALSE(r.has_value()) << c.in << " -> " << (r ? r->string() : "");
      if (!r) {
        EXPECT_EQ(r.error().code(), Errc::InvalidArgument);
        EXPECT_NE(r.error().message().find("invalid reference format"), std::string::npos);
      }
    } else {
      ASSERT_TRUE(r.has_value()) << c.in << ": " << r.error().message();
      EXPECT_EQ(r->string(), c.out) << c.in;
    }
  }
}

TEST(Reference, DigestsAndTags) {
  std::string d = "sha256:" + std::string(64, 'a');
  auto r = parse_normalized("busybox:1@" + d);
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(r->tag, "1");
  EXPECT_EQ(r->digest, d);
  EXPECT_EQ(r->familiar(), "busybox:1@" + d);
  EXPECT_FALSE(parse_normalized("busybox@sha256:abc"));
  EXPECT_FALSE(parse_normalized(std::string(64, 'a')));
  auto up = parse_normalized("Foo/bar");  // uppercase first component is taken as a domain
  EXPECT_TRUE(up.has_value());
  auto low = parse_normalized("docker.io/Foo/bar");
  ASSERT_FALSE(low);
  EXPECT_NE(low.error().message().find("lowercase"), std::string::npos);
  EXPECT_FALSE(parse_normalized(std::string(300, 'a')));
}

TEST(Reference, LocalNamesGoUnderLocalhost) {
  EXPECT_EQ(parse_local_name("foo")->string(), "localhost/foo:latest");
  EXPECT_EQ(parse_local_name("foo/bar:2")->string(), "localhost/foo/bar:2");
  EXPECT_EQ(parse_local_name("quay.io/x/y")->string(), "quay.io/x/y:latest");
  EXPECT_EQ(parse_local_name("localhost/z")->string(), "localhost/z:latest");
}

TEST(Reference, Familiar) {
  EXPECT_EQ(with_default_tag(*parse_normalized("busybox")).familiar(), "busybox:latest");
  EXPECT_EQ(parse_normalized("user/app:1")->familiar(), "user/app:1");
  EXPECT_EQ(parse_normalized("quay.io/a/b:1")->familiar(), "quay.io/a/b:1");
}

}  // namespace
}  // namespace berth::image
