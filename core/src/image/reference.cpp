#include "berth/image/reference.hpp"

#include <cctype>

#include "berth/util/digest.hpp"

namespace berth::image {

namespace {

constexpr size_t kNameTotalLengthMax = 255;

bool is_lower_alnum(char c) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

// path-component: [a-z0-9]+(?:(?:[._]|__|[-]*)[a-z0-9]+)*
bool valid_component(std::string_view c) {
  if (c.empty() || !is_lower_alnum(c.front()) || !is_lower_alnum(c.back())) {
    return false;
  }
  size_t i = 0;
  while (i < c.size()) {
    if (is_lower_alnum(c[i])) {
      ++i;
      continue;
    }
    // a separator run
    size_t j = i;
    while (j < c.size() && !is_lower_alnum(c[j])) {
      ++j;
    }
    std::string_view sep = c.substr(i, j - i);
    bool ok = sep == "." || sep == "_" || sep == "__" ||
              sep.find_first_not_of('-') == std::string_view::npos;
    if (!ok) {
      return false;
    }
    i = j;
  }
  return true;
}

// domain-component: [a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9], joined by '.', optional :port
// (IPv6 in brackets is accepted as is).
bool valid_domain(std::string_view d) {
  if (d.empty()) {
    return false;
  }
  if (d.front() == '[') {
    auto close = d.find(']');
    if (close == std::string_view::npos) {
      return false;
    }
    std::string_view rest = d.substr(close + 1);
    if (rest.empty()) {
      return true;
    }
    d = rest;  // ":port"
    return d.size() > 1 && d[0] == ':' &&
           d.substr(1).find_first_not_of("0123456789") == std::string_view::npos;
  }
  auto colon = d.find(':');
  std::string_view host = d.substr(0, colon);
  if (colon != std::string_view::npos) {
    std::string_view port = d.substr(colon + 1);
    if (port.empty() || port.find_first_not_of("0123456789") != std::string_view::npos) {
      return false;
    }
  }
  size_t start = 0;
  while (start <= host.size()) {
    auto dot = host.find('.', start);
    std::string_view comp = host.substr(start, dot == std::string_view::npos ? dot : dot - start);
    if (comp.empty() || !std::isalnum(static_cast<unsigned char>(comp.front())) ||
        !std::isalnum(static_cast<unsigned char>(comp.back()))) {
      return false;
    }
    for (char c : comp) {
      if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-') {
        return false;
      }
    }
    if (dot == std::string_view::npos) {
      break;
    }
    start = dot + 1;
  }
  return true;
}

// tag: [\w][\w.-]{0,127}
bool valid_tag(std::string_view t) {
  if (t.empty() || t.size() > 128) {
    return false;
  }
  auto word = [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; };
  if (!word(t.front())) {
    return false;
  }
  for (char c : t) {
    if (!word(c) && c != '.' && c != '-') {
      return false;
    }
  }
  return true;
}

Result<void> invalid(std::string_view s, std::string_view why) {
  return fail(Errc::InvalidArgument,
              "invalid reference format \"" + std::string(s) + "\": " + std::string(why));
}

}  // namespace

bool looks_like_domain(std::string_view s) {
  return s.find_first_of(".:") != std::string_view::npos || s == "localhost";
}

bool is_hex_id_prefix(std::string_view s) {
  return s.size() >= 3 && s.size() <= 64 &&
         s.find_first_not_of("0123456789abcdef") == std::string_view::npos;
}

std::string Reference::string() const {
  std::string s = name();
  if (!tag.empty()) {
    s += ":" + tag;
  }
  if (!digest.empty()) {
    s += "@" + digest;
  }
  return s;
}

std::string Reference::familiar() const {
  Reference r = *this;
  if (r.domain == "docker.io") {
    r.domain.clear();
    if (r.path.starts_with("library/") && r.path.find('/', 8) == std::string::npos) {
      r.path = r.path.substr(8);
    }
  }
  return r.string();
}

Result<Reference> parse_reference(std::string_view s) {
  if (s.empty()) {
    BERTH_TRYV(invalid(s, "repository name must have at least one component"));
  }
  Reference r;
  std::string_view rest = s;
  if (auto at = rest.find('@'); at != std::string_view::npos) {
    r.digest = std::string(rest.substr(at + 1));
    rest = rest.substr(0, at);
    if (auto v = util::validate_digest(r.digest); !v) {
      BERTH_TRYV(invalid(s, "invalid digest " + r.digest));
    }
  }
  // A tag is after the last ':' that follows the last '/'.
  auto slash = rest.rfind('/');
  auto colon = rest.rfind(':');
  if (colon != std::string_view::npos && (slash == std::string_view::npos || colon > slash)) {
    r.tag = std::string(rest.substr(colon + 1));
    rest = rest.substr(0, colon);
    if (!valid_tag(r.tag)) {
      BERTH_TRYV(invalid(s, "invalid tag \"" + r.tag + "\""));
    }
  }
  if (rest.empty()) {
    BERTH_TRYV(invalid(s, "repository name must have at least one component"));
  }
  auto first_slash = rest.find('/');
  if (first_slash != std::string_view::npos) {
    std::string_view first = rest.substr(0, first_slash);
    bool domain_like = looks_like_domain(first) ||
                       first.find_first_of("ABCDEFGHIJKLMNOPQRSTUVWXYZ") != std::string_view::npos;
    if (domain_like) {
      if (!valid_domain(first)) {
        BERTH_TRYV(invalid(s, "invalid domain \"" + std::string(first) + "\""));
      }
      r.domain = std::string(first);
      rest = rest.substr(first_slash + 1);
    }
  }
  size_t start = 0;
  while (true) {
    auto next = rest.find('/', start);
    std::string_view comp =
        rest.substr(start, next == std::string_view::npos ? next : next - start);
    if (!valid_component(comp)) {
      bool upper = comp.find_first_of("ABCDEFGHIJKLMNOPQRSTUVWXYZ") != std::string_view::npos;
      BERTH_TRYV(invalid(s, upper ? "repository name must be lowercase"
                                  : "invalid path component \"" + std::string(comp) + "\""));
    }
    if (next == std::string_view::npos) {
      break;
    }
    start = next + 1;
  }
  r.path = std::string(rest);
  if (r.name().size() > kNameTotalLengthMax) {
    BERTH_TRYV(invalid(s, "repository name must not be more than 255 characters"));
  }
  return r;
}

Result<Reference> parse_normalized(std::string_view s) {
  if (is_hex_id_prefix(s) && s.size() == 64) {
    BERTH_TRYV(invalid(s, "cannot specify 64-byte hexadecimal strings"));
  }
  BERTH_TRY(Reference r, parse_reference(s));
  if (r.domain.empty()) {
    r.domain = "docker.io";
    if (r.path.find('/') == std::string::npos) {
      r.path = "library/" + r.path;
    }
  } else if (r.domain == "index.docker.io") {
    r.domain = "docker.io";
  }
  return r;
}

Result<Reference> parse_local_name(std::string_view s) {
  BERTH_TRY(Reference r, parse_reference(s));
  if (r.domain.empty()) {
    r.domain = "localhost";
  }
  return with_default_tag(std::move(r));
}

Reference with_default_tag(Reference r) {
  if (r.tag.empty() && r.digest.empty()) {
    r.tag = "latest";
  }
  return r;
}

}  // namespace berth::image
