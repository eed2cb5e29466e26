#pragma once
// Image references as Docker's reference package parses them: [domain/]path[:tag][@digest].
#include <optional>
#include <string>
#include <string_view>

#include "berth/sdk/result.hpp"

namespace berth::image {

struct Reference {
  std::string domain;  // "docker.io", "localhost", "quay.io:443"; "" when not normalised
  std::string path;    // "library/busybox"
  std::string tag;     // "" when none
  std::string digest;  // "sha256:..." or ""

  // "docker.io/library/busybox"
  std::string name() const { return domain.empty() ? path : domain + "/" + path; }
  // "docker.io/library/busybox:latest", "...@sha256:..", or both.
  std::string string() const;
  // Docker's familiar form: "busybox:latest" for docker.io/library/busybox:latest.
  std::string familiar() const;
};

// Parses without normalising (domain stays "" when the reference has none).
Result<Reference> parse_reference(std::string_view s);
// Docker's ParseNormalizedNamed: "busybox" -> docker.io/library/busybox. No default tag added.
Result<Reference> parse_normalized(std::string_view s);
// Podman's local naming: a name without a domain goes under "localhost/" ("foo" ->
// localhost/foo); adds ":latest" when neither tag nor digest is given.
Result<Reference> parse_local_name(std::string_view s);
// Adds ":latest" when there is neither tag nor digest.
Reference with_default_tag(Reference r);
// Whether `s` names the domain of a reference (contains '.' or ':' or is "localhost").
bool looks_like_domain(std::string_view s);
bool is_hex_id_prefix(std::string_view s);

}  // namespace berth::image
