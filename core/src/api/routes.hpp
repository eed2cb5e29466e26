#pragma once
// Internal to the API module: the route groups and the helpers they share.
#include <expected>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "berth/api/router.hpp"
#include "berth/api/service.hpp"

namespace berth::engine {
class Engine;
}
namespace berth::volume {
struct Volume;
}

namespace berth::api {

void add_system_routes(Router& r, const std::shared_ptr<ServiceContext>& ctx);
void add_image_routes(Router& r, const std::shared_ptr<ServiceContext>& ctx);
void add_container_routes(Router& r, const std::shared_ptr<ServiceContext>& ctx);
void add_registry_routes(Router& r, const std::shared_ptr<ServiceContext>& ctx);
void add_network_routes(Router& r, const std::shared_ptr<ServiceContext>& ctx);
void add_volume_routes(Router& r, const std::shared_ptr<ServiceContext>& ctx);
// pause, unpause, update, stats, resize, export, changes, archive, commit.
void add_container_ops_routes(Router& r, const std::shared_ptr<ServiceContext>& ctx);
void add_cli_routes(Router& r, const std::shared_ptr<ServiceContext>& ctx);
// POST /images/create?fromImage=: a pull with streamed JSON progress.
Response pull_image(const std::shared_ptr<ServiceContext>& ctx, Request& req);

// Docker's answer for an endpoint whose library function berth does not have yet.
Response not_implemented(const Request& req);

// In a handler whose lambda holds `ctx`: an engine lent for the request as `eng` (an
// engine::Engine&), or the error answer returned.
#define API_ENGINE(eng)                     \
  auto eng##_r = ctx->open_engine();        \
  if (!eng##_r) {                           \
    return error_response(eng##_r.error()); \
  }                                         \
  engine::Engine& eng = **eng##_r

// An answer without a body: 204 No Content, 304 Not Modified.
Response empty_response(int status);

// What a route answers about: Docker words a missing one of each its own way.
enum class ObjectKind { Container, Network, Volume };

// The answer to a library error about object `name`: Docker's 404 for its kind ("No such
// container: ID", "network NAME not found", "get NAME: no such volume") when the error is
// NotFound, else error_response(e). With `strict`, only a NotFound whose message names the kind
// (and no container, unless the kind is one) is the object's: a missing file in a running
// container, or a missing container in a network call, keeps its own message.
Response object_error(const Error& e, ObjectKind kind, const std::string& name,
                      bool strict = false);

// A container's full id, name, state word (Podman's: "running", "paused", ...) and whether it
// has a terminal.
struct ContainerRef {
  std::string id;
  std::string name;
  std::string status;
  bool tty = false;
  int monitor_pid = 0;  // State.ConmonPid: 0 when no monitor waits (never created, or exited)
};
Result<ContainerRef> find_container(engine::Engine& eng, const std::string& name_or_id);
// The same with an engine lent only for the lookup (a stream opens its own), or the answer to
// give (object_error with `strict`).
std::expected<ContainerRef, Response> lookup_container(const ServiceContext& ctx,
                                                       const std::string& name,
                                                       bool strict = false);

// Docker's `filters` query parameter ({"label":{"a=b":true}} or {"label":["a=b"]}) as Podman's
// "key=value" strings. InvalidArgument when malformed.
Result<std::vector<std::string>> docker_filters(const Request& req);

// A string member of a JSON object; "" when absent, null (docker-py sends nulls) or not a string.
std::string jstr(const nlohmann::json& o, const char* key);

// A boolean member; `fallback` when absent, null or not a boolean.
bool jbool(const nlohmann::json& o, const char* key, bool fallback = false);

// "sha256:<hex>" unless already prefixed.
std::string sha256_id(const std::string& id);
// Unix seconds <- RFC 3339 ("" or malformed -> 0).
int64_t unix_from_rfc3339(const std::string& s);
// Docker's GOARCH name of this machine: amd64, arm64, ...
std::string go_arch();

// The berth CLI command line for a sub-process over the service's store (exec, attach).
std::vector<std::string> berth_argv(const ServiceContext& ctx);

// The containers using a volume, from the container records (read once per returned function).
std::function<Result<std::vector<std::string>>(const std::string&)> volume_users(
    engine::Engine& eng);
// Docker's volume object; UsageData when either is given.
nlohmann::json docker_volume(const volume::Volume& v, std::optional<int64_t> ref_count,
                             std::optional<int64_t> size);
// Disk usage (allocated blocks) of a directory tree; unreadable parts count 0.
int64_t tree_size(const std::string& path);

// Docker's multiplexed stream frame: [stream, 0, 0, 0, size (big endian)] + data.
std::string frame(uint8_t stream, std::string_view data);
// Writes a frame (nothing for empty data).
bool write_frame(int fd, uint8_t stream, std::string_view data);
// Writes all of `data` to a socket (a peer that has gone is an error, not SIGPIPE), a pipe or a
// terminal; false when it could not.
bool send_all(int fd, std::string_view data);

}  // namespace berth::api
