#include "berth/api/router.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>

namespace berth::api {
namespace {

std::vector<std::string> split_path(std::string_view path) {
  std::vector<std::string> out;
  size_t i = 0;
  while (i < path.size()) {
    while (i < path.size() && path[i] == '/') {
      ++i;
    }
    size_t j = path.find('/', i);
    if (j == std::string_view::npos) {
      j = path.size();
    }
    if (j > i) {
      out.emplace_back(path.substr(i, j - i));
    }
    i = j;
  }
  return out;
}

bool is_version_segment(std::string_view s) {
  if (s.size() < 2 || s[0] != 'v' || !std::isdigit(static_cast<unsigned char>(s[1]))) {
    return false;
  }
  return std::all_of(s.begin() + 1, s.end(), [](char c) {
    return std::isdigit(static_cast<unsigned char>(c)) || c == '.';
  });
}

// Matches pattern segments [pi..] against path segments [si..], greedy parameters included.
bool match_segments(const std::vector<std::string>& pat, size_t pi,
                    const std::vector<std::string>& path, size_t si,
                    std::map<std::string, std::string>& params) {
  if (pi == pat.size()) {
    return si == path.size();
  }
  const std::string& p = pat[pi];
  if (p.size() > 2 && p.front() == '{' && p.back() == '}') {
    bool greedy = p[p.size() - 2] == '*';
    std::string name = p.substr(1, p.size() - (greedy ? 3 : 2));
    if (!greedy) {
      if (si >= path.size()) {
        return false;
      }
      params[name] = path[si];
      if (match_segments(pat, pi + 1, path, si + 1, params)) {
        return true;
      }
      params.erase(name);
      return false;
    }
    // Longest first: "/images/a/b/json" gives name "a/b".
    for (size_t end = path.size(); end > si; --end) {
      std::string joined;
      for (size_t k = si; k < end; ++k) {
        joined += (k == si ? "" : "/") + path[k];
      }
      params[name] = joined;
      if (match_segments(pat, pi + 1, path, end, params)) {
        return true;
      }
    }
    params.erase(name);
    return false;
  }
  if (si >= path.size() || path[si] != p) {
    return false;
  }
  return match_segments(pat, pi + 1, path, si + 1, params);
}

}  // namespace

std::optional<std::string> Request::q(std::string_view name) const {
  auto it = query.find(std::string(name));
  if (it == query.end()) {
    return std::nullopt;
  }
  return it->second;
}

std::string Request::q_or(std::string_view name, std::string_view fallback) const {
  auto v = q(name);
  return v ? *v : std::string(fallback);
}

bool Request::q_bool(std::string_view name, bool fallback) const {
  auto v = q(name);
  if (!v) {
    return fallback;
  }
  std::string s = *v;
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  if (s == "1" || s == "true" || s == "yes" || s == "on") {
    return true;
  }
  if (s == "0" || s == "false" || s == "no" || s == "off") {
    return false;
  }
  // Docker treats an empty or unknown value of a present flag as false.
  return false;
}

std::vector<std::string> Request::q_all(std::string_view name) const {
  std::vector<std::string> out;
  auto [a, b] = query.equal_range(std::string(name));
  for (auto it = a; it != b; ++it) {
    out.push_back(it->second);
  }
  return out;
}

std::optional<std::string> Request::header(std::string_view lower_name) const {
  auto it = headers.find(std::string(lower_name));
  if (it == headers.end()) {
    return std::nullopt;
  }
  return it->second;
}

Result<nlohmann::json> Request::json_body() const {
  if (body.find_first_not_of(" \t\r\n") == std::string::npos) {
    return nlohmann::json::object();
  }
  try {
    return nlohmann::json::parse(body);
  } catch (const nlohmann::json::exception& e) {
    return fail(Errc::InvalidArgument,
                "malformed JSON in the request body of " + method + " " + path + ": " + e.what());
  }
}

bool Request::api_at_least(std::string_view version) const {
  return compare_versions(api_version.empty() ? kApiVersion : std::string_view(api_version),
                          version) >= 0;
}

Response json_response(int status, const nlohmann::json& body) {
  Response r;
  r.status = status;
  r.body = body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
  return r;
}

Response error_response(int status, std::string_view message) {
  return json_response(status, nlohmann::json{{"message", std::string(message)}});
}

int status_for(const Error& e) {
  switch (e.code()) {
    case Errc::NotFound:
      return 404;
    case Errc::InvalidArgument:
      return 400;
    case Errc::Conflict:
    case Errc::AlreadyExists:
    case Errc::Busy:
      return 409;
    case Errc::NotSupported:
      return 501;
    case Errc::PermissionDenied:
      return 403;
    case Errc::Unavailable:
      return 503;
    default:
      return 500;
  }
}

Response error_response(const Error& e) {
  return error_response(status_for(e), e.message());
}

void Router::add(std::string method, std::string_view pattern, Handler handler) {
  Route r;
  r.method = std::move(method);
  r.pattern = std::string(pattern);
  r.segments = split_path(pattern);
  r.handler = std::move(handler);
  routes_.push_back(std::move(r));
}

std::string url_decode(std::string_view s, bool plus_is_space) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (c == '%' && i + 2 < s.size()) {
      unsigned v = 0;
      auto [p, ec] = std::from_chars(s.data() + i + 1, s.data() + i + 3, v, 16);
      if (ec == std::errc() && p == s.data() + i + 3) {
        out.push_back(static_cast<char>(v));
        i += 2;
        continue;
      }
    }
    out.push_back(plus_is_space && c == '+' ? ' ' : c);
  }
  return out;
}

std::multimap<std::string, std::string> parse_query(std::string_view query) {
  std::multimap<std::string, std::string> out;
  size_t i = 0;
  while (i <= query.size()) {
    size_t j = query.find('&', i);
    if (j == std::string_view::npos) {
      j = query.size();
    }
    auto part = query.substr(i, j - i);
    if (!part.empty()) {
      auto eq = part.find('=');
      if (eq == std::string_view::npos) {
        out.emplace(url_decode(part, true), "");
      } else {
        out.emplace(url_decode(part.substr(0, eq), true), url_decode(part.substr(eq + 1), true));
      }
    }
    i = j + 1;
  }
  return out;
}

int compare_versions(std::string_view a, std::string_view b) {
  auto next = [](std::string_view& s) {
    long v = 0;
    size_t i = 0;
    while (i < s.size() && s[i] != '.') {
      if (std::isdigit(static_cast<unsigned char>(s[i]))) {
        v = v * 10 + (s[i] - '0');
      }
      ++i;
    }
    s.remove_prefix(std::min(s.size(), i + 1));
    return v;
  };
  while (!a.empty() || !b.empty()) {
    long x = next(a);
    long y = next(b);
    if (x != y) {
      return x < y ? -1 : 1;
    }
  }
  return 0;
}

const Router::Route* Router::find(Request& req, bool& path_known) const {
  std::string_view target = req.target;
  std::string_view raw_path = target.substr(0, target.find('?'));
  if (auto qpos = target.find('?'); qpos != std::string_view::npos) {
    req.query = parse_query(target.substr(qpos + 1));
  }
  auto raw = split_path(raw_path);
  std::vector<std::string> segs;
  segs.reserve(raw.size());
  for (auto& s : raw) {
    segs.push_back(url_decode(s, false));
  }
  req.api_version.clear();
  if (!segs.empty() && is_version_segment(segs[0])) {
    req.api_version = segs[0].substr(1);
    segs.erase(segs.begin());
  }
  req.path.clear();
  for (auto& s : segs) {
    req.path += "/" + s;
  }
  if (req.path.empty()) {
    req.path = "/";
  }
  path_known = false;
  for (const auto& r : routes_) {
    std::map<std::string, std::string> params;
    if (!match_segments(r.segments, 0, segs, 0, params)) {
      continue;
    }
    path_known = true;
    // HEAD is answered by a GET route when no HEAD route exists (the server drops the body).
    if (r.method == req.method) {
      req.params = std::move(params);
      return &r;
    }
  }
  if (req.method == "HEAD") {
    for (const auto& r : routes_) {
      std::map<std::string, std::string> params;
      if (r.method == "GET" && match_segments(r.segments, 0, segs, 0, params)) {
        req.params = std::move(params);
        return &r;
      }
    }
  }
  return nullptr;
}

std::optional<std::string> Router::match(Request& req) const {
  bool known = false;
  const Route* r = find(req, known);
  if (r == nullptr) {
    return std::nullopt;
  }
  return r->pattern;
}

Response Router::dispatch(Request& req) const {
  bool known = false;
  const Route* r = find(req, known);
  const bool libpod = req.path.rfind("/libpod/", 0) == 0;
  if (!req.api_version.empty() && !libpod) {
    if (compare_versions(req.api_version, kMinApiVersion) < 0) {
      return error_response(400, "client version " + req.api_version +
                                     " is too old. Minimum supported API version is " +
                                     std::string(kMinApiVersion) +
                                     ", please upgrade your client to a newer version");
    }
    if (compare_versions(req.api_version, kMaxApiVersion) > 0) {
      return error_response(400, "client version " + req.api_version +
                                     " is too new. Maximum supported API version is " +
                                     std::string(kMaxApiVersion));
    }
  }
  if (r == nullptr) {
    if (known) {
      return error_response(405, "method " + req.method + " is not allowed on " + req.path);
    }
    return error_response(404, "page not found");
  }
  try {
    return r->handler(req);
  } catch (const std::exception& e) {
    // Library exceptions must not take the service down; they answer 500.
    return error_response(500,
                          "internal error in " + req.method + " " + req.path + ": " + e.what());
  }
}

}  // namespace berth::api
