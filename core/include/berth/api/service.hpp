#pragma once
// `berth system service`: the library behind a Docker-compatible REST API (and libpod-style routes
// for what Docker lacks). One I/O thread accepts and parses with Boost.Beast; engine work runs on a
// small worker pool so a slow request never stalls the accept loop; streams and hijacked
// connections (logs -f, attach, exec, save) run on threads of their own.
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "berth/api/router.hpp"
#include "berth/config/config.hpp"
#include "berth/engine/engine.hpp"
#include "berth/sdk/result.hpp"

namespace berth::api {

struct ServiceOptions {
  // "unix:///path" or "tcp://127.0.0.1:PORT" (loopback only); "" = default_uri(). Ignored when
  // systemd passes a socket (LISTEN_FDS/LISTEN_PID, fd 3).
  std::string uri;
  // Seconds without any connection before the service exits; 0 = never (Podman's --time).
  uint32_t idle_timeout = 5;
  std::string group;                  // group owning the unix socket ("" = the user's)
  config::GlobalOverrides overrides;  // every request opens its engine with these
  unsigned workers = 4;
  size_t header_limit = 64 * 1024;        // larger headers: 431 and close
  size_t body_limit = 16 * 1024 * 1024;   // JSON bodies; uploads are spooled to disk, unlimited
  std::chrono::seconds read_timeout{30};  // to read one request's headers
  std::string berth_binary;               // the berth CLI, for exec (default /proc/self/exe)
  std::string spool_dir;                  // for uploads ("" = <runroot>/api-spool)
};

// unix:///run/berth/berth.sock as root, unix://$XDG_RUNTIME_DIR/berth/berth.sock rootless.
std::string default_uri();

class ServiceContext;

// One engine lent to one request. Engines are cached by the service (config loaded, plugins
// discovered, store open) and each is used by one thread at a time: engine::Engine initialises
// itself lazily and plugin::Registry loads plugins into a map, neither under a lock, so sharing
// one engine between worker threads would race. Returned to the pool by the destructor.
class EngineLease {
 public:
  EngineLease(std::unique_ptr<engine::Engine> eng, const ServiceContext* owner)
      : eng_(std::move(eng)), owner_(owner) {}
  EngineLease(EngineLease&& o) noexcept = default;
  EngineLease& operator=(EngineLease&&) = delete;
  EngineLease(const EngineLease&) = delete;
  ~EngineLease();
  engine::Engine& operator*() const { return *eng_; }
  engine::Engine* operator->() const { return eng_.get(); }
  engine::Engine* get() const { return eng_.get(); }

 private:
  std::unique_ptr<engine::Engine> eng_;
  const ServiceContext* owner_ = nullptr;
};

// Everything a handler needs: the service's options and its cache of engines.
class ServiceContext {
 public:
  explicit ServiceContext(ServiceOptions opts) : opts_(std::move(opts)) {}
  ~ServiceContext();
  const ServiceOptions& options() const { return opts_; }
  // An engine for one request: an idle cached one, else a new one (config loaded, plugins
  // discovered, store opened read-write once). Thread-safe.
  Result<EngineLease> open_engine() const;
  // How many engines were created (for tests and `berth info`-style diagnostics).
  size_t engines_created() const;

 private:
  friend class EngineLease;
  void give_back(std::unique_ptr<engine::Engine> eng) const;

  ServiceOptions opts_;
  mutable std::mutex mu_;
  mutable std::vector<std::unique_ptr<engine::Engine>> idle_;
  mutable size_t created_ = 0;
};

// The Docker Engine API routes (and /libpod/ equivalents) over the library.
void add_docker_routes(Router& router, std::shared_ptr<ServiceContext> ctx);

// Listens and serves until the idle timeout passes or SIGINT/SIGTERM arrives.
Result<void> serve(const ServiceOptions& opts);

}  // namespace berth::api
