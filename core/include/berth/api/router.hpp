#pragma once
// The API service's routing: a table of (method, pattern, handler). Patterns name path parameters
// ("/containers/{id}/json"); a parameter written "{name*}" takes one or more segments, as image
// names hold slashes ("/images/{name*}/json"). A request path is matched without its version
// prefix ("/v1.41", "/v4.0.0"), so every route answers both versioned and unversioned paths, and
// libpod-style routes are registered as "/libpod/...".
#include <cstdint>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "berth/sdk/result.hpp"

namespace berth::api {

// The Docker Engine API versions accepted in paths; the service speaks kApiVersion (what
// /version, _ping and unversioned paths give, so what negotiating clients settle on). Each
// version's changes up to kMaxApiVersion that touch an endpoint berth serves are honoured, with
// the older behaviour for a client that asks for an older version (Request::api_at_least).
// From 1.45 Aliases lose the short id, and docker-compose 1.x then disconnects and reconnects
// each container's network at `up`: a container left with no network keeps loopback only.
inline constexpr std::string_view kApiVersion = "1.45";
inline constexpr std::string_view kMinApiVersion = "1.24";
inline constexpr std::string_view kMaxApiVersion = "1.45";

struct Request {
  std::string method;                         // "GET"
  std::string target;                         // as received: "/v1.41/images/json?all=1"
  std::string path;                           // without version prefix and query: "/images/json"
  std::string api_version;                    // "1.41" from the path, "" when unversioned
  std::map<std::string, std::string> params;  // path parameters
  std::multimap<std::string, std::string> query;  // decoded query parameters
  std::map<std::string, std::string> headers;     // lower-case names
  std::string body;                               // small bodies
  std::string body_file;  // large bodies (image load, archive upload) are spooled here

  // The first value of a query parameter.
  std::optional<std::string> q(std::string_view name) const;
  std::string q_or(std::string_view name, std::string_view fallback) const;
  // Docker's booleans: "1", "true", "True" are true; absent -> fallback.
  bool q_bool(std::string_view name, bool fallback = false) const;
  std::vector<std::string> q_all(std::string_view name) const;
  std::optional<std::string> header(std::string_view lower_name) const;
  // The parsed JSON body; InvalidArgument (400) when malformed. An empty body is `{}`.
  Result<nlohmann::json> json_body() const;
  // Whether the client speaks API `version` or later: an unversioned path speaks kApiVersion.
  bool api_at_least(std::string_view version) const;
};

// A hijacked or streamed connection: the blocking socket and bytes the client sent after the
// request that the service had already read.
struct RawConnection {
  int fd = -1;
  std::string leftover;
};

struct Response {
  int status = 200;
  std::string content_type = "application/json";
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  // When set, the headers are sent with "Connection: close" and no length, then `stream` runs on
  // a thread of its own with the blocking connection and writes the body; the connection closes
  // when it returns.
  std::function<void(RawConnection&)> stream;
  // With `stream`: a hijack (attach, exec start). The answer is "101 UPGRADED" when the client
  // asked for "Upgrade: tcp", else "200 OK", as Docker does; the stream is raw both ways.
  bool hijack = false;
  // With `stream` (not a hijack): the body goes out with "Transfer-Encoding: chunked", as
  // Docker's JSON streams do (stats, events, pull, push): docker-py decodes a stream only when
  // it is chunked, and reads an unchunked one as a single JSON document.
  bool chunked = false;
};

Response json_response(int status, const nlohmann::json& body);
// Docker's error body: {"message": "..."}.
Response error_response(int status, std::string_view message);
// Docker's status for a library error: NotFound 404, InvalidArgument 400, Conflict/AlreadyExists/
// Busy 409, NotSupported 501, PermissionDenied 403, else 500.
int status_for(const Error& e);
Response error_response(const Error& e);

using Handler = std::function<Response(Request&)>;

class Router {
 public:
  void add(std::string method, std::string_view pattern, Handler handler);
  // Splits version and query off req.target, fills req.path/api_version/query/params and calls
  // the handler. 404 with Docker's JSON for an unknown path, 405 for a known path and another
  // method, 400 for an API version outside [kMinApiVersion, kMaxApiVersion].
  Response dispatch(Request& req) const;
  // Only the routing part (for tests and for choosing how to read a body): the route's pattern,
  // or nullopt. Fills req.path, req.params, req.query, req.api_version.
  std::optional<std::string> match(Request& req) const;

 private:
  struct Route {
    std::string method;
    std::string pattern;
    std::vector<std::string> segments;
    Handler handler;
  };
  const Route* find(Request& req, bool& path_known) const;
  std::vector<Route> routes_;
};

// Percent-decoding of a path segment or query component ('+' is a space in queries only).
std::string url_decode(std::string_view s, bool plus_is_space);
std::multimap<std::string, std::string> parse_query(std::string_view query);
// "1.41" < "1.43": compares dotted numbers.
int compare_versions(std::string_view a, std::string_view b);

}  // namespace berth::api
