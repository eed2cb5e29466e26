#pragma once
// Registry image references: host[:port]/repository[:tag][@digest], fully qualified.
#include <string>
#include <string_view>

#include "berth/sdk/result.hpp"

namespace berth::registry {

struct Reference {
  std::string registry;    // as written: "127.0.0.1:5000", "docker.io"
  std::string repository;  // "library/debian"
  std::string tag;         // empty when only a digest was given
  std::string digest;      // "sha256:..." or empty

  // The host[:port] the API is served from (docker.io is served by registry-1.docker.io).
  std::string endpoint() const;
  // What manifest() fetches when no digest is asked for: the digest if any, else the tag.
  std::string manifest_ref() const { return digest.empty() ? tag : digest; }
  std::string to_string() const;
};

// Parses a fully qualified reference; a missing tag and digest means "latest". A leading "//"
// (from "docker://...") is accepted.
Result<Reference> parse_reference(std::string_view text);
// host[:port] without a path: what `berth login` and `berth search` are given.
Result<std::string> parse_registry(std::string_view text);

bool valid_digest(std::string_view digest);
bool valid_tag(std::string_view tag);
bool valid_repository(std::string_view name);

}  // namespace berth::registry
