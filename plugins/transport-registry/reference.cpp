#include "reference.hpp"

#include <algorithm>

namespace berth::registry {
namespace {

bool is_lower_alnum(char c) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}
bool is_hex(char c) {
  return (c >= 'a' && c <= 'f') || (c >= '0' && c <= '9');
}

// One path component: [a-z0-9]+ separated by ".", "_", "__" or any run of "-".
bool valid_component(std::string_view c) {
  if (c.empty() || !is_lower_alnum(c.front()) || !is_lower_alnum(c.back())) {
    return false;
  }
  for (size_t i = 0; i < c.size(); ++i) {
    char ch = c[i];
    if (is_lower_alnum(ch)) {
      continue;
    }
    if (ch == '.' || ch == '_') {
      // "." and "_" are single separators, "__" is the only double one.
      bool double_underscore = ch == '_' && i + 1 < c.size() && c[i + 1] == '_';
      if (double_underscore) {
        ++i;
      }
      if (i + 1 >= c.size() || !is_lower_alnum(c[i + 1])) {
        return false;
      }
      continue;
    }
    if (ch == '-') {
      continue;
    }
    return false;
  }
  return true;
}

bool valid_host(std::string_view host) {
  if (host.empty() || host.size() > 255) {
    return false;
  }
  size_t colon = host.rfind(':');
  std::string_view name = host;
  if (host.front() == '[') {  // [ipv6]:port
    size_t close = host.find(']');
    if (close == std::string_view::npos) {
      return false;
    }
    name = host.substr(0, close + 1);
    colon = host.size() > close + 1 && host[close + 1] == ':' ? close + 1 : std::string_view::npos;
    if (colon == std::string_view::npos && host.size() != close + 1) {
      return false;
    }
  } else if (colon != std::string_view::npos) {
    name = host.substr(0, colon);
  }
  if (colon != std::string_view::npos) {
    std::string_view port = host.substr(colon + 1);
    if (port.empty() || port.size() > 5 ||
        !std::all_of(port.begin(), port.end(), [](char c) { return c >= '0' && c <= '9'; })) {
      return false;
    }
  }
  if (name.front() == '[') {
    return true;
  }
  return !name.empty() && std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '-';
  });
}

// A first path component is a registry host when it looks like one (as docker decides).
bool looks_like_host(std::string_view s) {
  return s.find('.') != std::string_view::npos || s.find(':') != std::string_view::npos ||
         s == "localhost";
}

}  // namespace

bool valid_digest(std::string_view digest) {
  size_t colon = digest.find(':');
  if (colon == std::string_view::npos || colon == 0) {
    return false;
  }
  std::string_view algo = digest.substr(0, colon);
  std::string_view hex = digest.substr(colon + 1);
  if (!std::all_of(algo.begin(), algo.end(), [](char c) {
        return is_lower_alnum(c) || c == '+' || c == '.' || c == '_' || c == '-';
      })) {
    return false;
  }
  if (algo == "sha256" && hex.size() != 64) {
    return false;
  }
  if (algo == "sha512" && hex.size() != 128) {
    return false;
  }
  return hex.size() >= 32 && std::all_of(hex.begin(), hex.end(), is_hex);
}

bool valid_tag(std::string_view tag) {
  if (tag.empty() || tag.size() > 128) {
    return false;
  }
  auto word = [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
  };
  return word(tag.front()) && std::all_of(tag.begin(), tag.end(),
                                          [&](char c) { return word(c) || c == '.' || c == '-'; });
}

bool valid_repository(std::string_view name) {
  if (name.empty() || name.size() > 255) {
    return false;
  }
  size_t start = 0;
  while (true) {
    size_t slash = name.find('/', start);
    std::string_view comp =
        name.substr(start, slash == std::string_view::npos ? name.npos : slash - start);
    if (!valid_component(comp)) {
      return false;
    }
    if (slash == std::string_view::npos) {
      return true;
    }
    start = slash + 1;
  }
}

std::string Reference::endpoint() const {
  return registry == "docker.io" ? "registry-1.docker.io" : registry;
}

std::string Reference::to_string() const {
  std::string s = registry + "/" + repository;
  if (!tag.empty()) {
    s += ":" + tag;
  }
  if (!digest.empty()) {
    s += "@" + digest;
  }
  return s;
}

Result<Reference> parse_reference(std::string_view text) {
  std::string original(text);
  auto bad = [&](const std::string& why) {
    return fail(Errc::InvalidArgument, "invalid image reference \"" + original + "\": " + why +
                                           " (expected host[:port]/repository[:tag][@digest])");
  };
  if (text.starts_with("//")) {
    text.remove_prefix(2);
  }
  Reference ref;
  size_t slash = text.find('/');
  if (slash == std::string_view::npos || !looks_like_host(text.substr(0, slash))) {
    return bad("the registry host is missing (short names are resolved before the transport)");
  }
  ref.registry = std::string(text.substr(0, slash));
  if (!valid_host(ref.registry)) {
    return bad("\"" + ref.registry + "\" is not a valid registry host[:port]");
  }
  std::string_view rest = text.substr(slash + 1);
  if (size_t at = rest.find('@'); at != std::string_view::npos) {
    ref.digest = std::string(rest.substr(at + 1));
    rest = rest.substr(0, at);
    if (!valid_digest(ref.digest)) {
      return bad("\"" + ref.digest + "\" is not a valid digest (algorithm:hex)");
    }
  }
  size_t last_slash = rest.rfind('/');
  size_t colon = rest.rfind(':');
  if (colon != std::string_view::npos &&
      (last_slash == std::string_view::npos || colon > last_slash)) {
    ref.tag = std::string(rest.substr(colon + 1));
    rest = rest.substr(0, colon);
    if (!valid_tag(ref.tag)) {
      return bad("\"" + ref.tag + "\" is not a valid tag");
    }
  }
  ref.repository = std::string(rest);
  if (!valid_repository(ref.repository)) {
    return bad("\"" + ref.repository +
               "\" is not a valid repository name (lowercase letters, digits and . _ - "
               "separators, / between components)");
  }
  if (ref.registry == "docker.io" && ref.repository.find('/') == std::string::npos) {
    ref.repository = "library/" + ref.repository;
  }
  if (ref.tag.empty() && ref.digest.empty()) {
    ref.tag = "latest";
  }
  return ref;
}

Result<std::string> parse_registry(std::string_view text) {
  std::string s(text);
  if (s.starts_with("docker://")) {
    s.erase(0, 9);
  } else if (s.starts_with("https://")) {
    s.erase(0, 8);
  } else if (s.starts_with("http://")) {
    s.erase(0, 7);
  }
  while (!s.empty() && s.back() == '/') {
    s.pop_back();
  }
  if (s.ends_with("/v2")) {
    s.resize(s.size() - 3);
  }
  if (!valid_host(s)) {
    return fail(Errc::InvalidArgument,
                "invalid registry \"" + std::string(text) + "\" (expected host[:port])");
  }
  return s;
}

}  // namespace berth::registry
