#pragma once
// The client side of the API service, for `berth --url/--remote/--connection`: resolves which
// service to talk to and runs requests against it (libpod routes answer with the same JSON the
// library returns, so the CLI's printing code is reused as is).
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "berth/config/config.hpp"
#include "berth/sdk/result.hpp"

namespace berth::api {

// The service URI for the global flags: --url; else --connection NAME from containers.conf
// [engine.service_destinations]; else with --remote the active_service destination,
// $CONTAINER_HOST, or default_uri(). "" when the CLI should run locally.
Result<std::string> resolve_service_uri(const config::Config& cfg, const std::string& url,
                                        const std::string& connection, bool remote);

struct ClientResponse {
  int status = 0;
  std::string body;
};

// The remote flags of a berth command line (--url, --connection/-c, --remote/-r; --config, to
// resolve --connection) and the command line to forward without them and without the store
// flags (the service's store is used). The CLI fills it as it parses (core/src/cli).
struct RemoteArgs {
  std::string url;
  std::string connection;
  bool remote = false;
  std::string config;
  std::vector<std::string> forwarded;
  bool wanted() const { return !url.empty() || !connection.empty() || remote; }
};

// The remote CLI's part in a global flag of the command line ("url" for --url, as named without
// dashes): Remote (url, connection, remote, config: they choose the service), Store (root,
// runroot, storage-driver, storage-opt: the service's store is used, so they are dropped) or
// Forwarded (the rest, such as log-level).
enum class GlobalFlagRole { Remote, Store, Forwarded };
GlobalFlagRole global_flag_role(std::string_view long_name);

// The service URI the remote flags of `ra` ask for: --url as given, else resolve_service_uri()
// over the host's containers.conf (and ra.config). "" when the CLI should run locally.
Result<std::string> remote_uri(const RemoteArgs& ra);

// Runs one berth command on the service at `uri` (POST /libpod/berth/cli, docs/remote.md): the
// client's stdin, terminal size and working directory go with it, its output comes back. Returns
// the command's exit code (125 when the service cannot be reached).
int run_remote_cli(const std::string& uri, const std::vector<std::string>& argv);

class Client {
 public:
  // "unix:///path" or "tcp://host:port" (ssh:// is not supported yet).
  static Result<Client> connect_to(const std::string& uri);
  // One request on a fresh connection. 4xx/5xx are returned, not turned into errors.
  Result<ClientResponse> request(std::string_view method, std::string_view target,
                                 std::string_view body = {}) const;
  // GET, expecting 2xx JSON; an error answer becomes an Error carrying the service's message
  // with the code matching its status.
  Result<nlohmann::json> get_json(std::string_view target) const;

 private:
  std::string uri_;
};

}  // namespace berth::api
