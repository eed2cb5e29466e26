#pragma once
// A client for one registry: scheme discovery (/v2/ ping), WWW-Authenticate challenges, bearer
// tokens cached per scope, basic auth, retries with exponential back-off, and errors that name the
// registry, the object and the registry's own message.
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "berth/sdk/result.hpp"
#include "berth/sdk/transport.hpp"
#include "http_client.hpp"

namespace berth::registry {

struct Challenge {
  std::string scheme;                         // lowercased: "bearer", "basic"
  std::map<std::string, std::string> params;  // lowercased keys: realm, service, scope, error
};

// Parses a WWW-Authenticate value (one or several challenges).
std::vector<Challenge> parse_challenges(std::string_view header);
// The URL of rel="next" in a Link header, or empty.
std::string parse_next_link(std::string_view header);
// "{"errors":[{"code":..,"message":..}]}" as "CODE: message; CODE: message", or empty.
std::string registry_error_message(std::string_view body);
// The error code for an HTTP status.
Errc errc_for_status(long status);

class RegistryClient {
 public:
  // `registry` is host[:port] as the user wrote it; `endpoint` is where the API is served.
  static Result<std::unique_ptr<RegistryClient>> create(const std::string& registry,
                                                        const std::string& endpoint,
                                                        const sdk::TransportOptions& opts);

  const std::string& registry() const { return registry_; }
  // "https://host:port" (or http:// for an insecure registry). Known without a request for a
  // registry verified over TLS and for an insecure one remembered on plain HTTP: the first request
  // then learns the auth challenge from its 401, as containerd does, and the /v2/ round trip is
  // saved. Otherwise the registry is pinged (/v2/) on first use to find its scheme.
  // Errors start with `what` (the operation the caller was doing).
  Result<std::string> base_url(const std::string& what);

  // Sends a request with the credentials for `scope` ("repository:NAME:pull", space-separated
  // when several). Retries 429/5xx and broken connections when the request can be replayed
  // (no fd body), with back-off. Any HTTP status is returned; transfer failures are errors
  // that start with `what`.
  Result<HttpResponse> send(HttpRequest req, const std::string& scope, const std::string& what);
  // One attempt (plus one re-authentication on 401): for callers with their own retry logic.
  Result<HttpResponse> send_once(HttpRequest& req, const std::string& scope,
                                 const std::string& what);

  // An error for a response whose status the caller did not expect.
  Error status_error(const HttpResponse& resp, const std::string& what) const;
  // The same without advice about logging in (for the token server's answers).
  Error status_error_plain(const HttpResponse& resp, const std::string& what) const;
  // An error for a transfer that failed (timeout, connection, TLS).
  Error transfer_error(const HttpResponse& resp, const std::string& what) const;
  bool retryable(const HttpResponse& resp, bool made_progress) const;
  void backoff(int attempt, const HttpResponse& resp) const;
  int retries() const { return retries_; }

  // GET /v2/ with the credentials, through the token flow when the registry asks for it.
  Result<void> check_login();

  // An insecure registry found to speak plain HTTP is remembered in a file under `dir`, and the
  // next process pings it over HTTP first: the HTTPS attempt (OpenSSL's set-up and a failed
  // handshake, ~10 ms) is skipped. A registry that changed is found again by the full probe.
  void remember_scheme_in(const std::string& dir) { scheme_dir_ = dir; }

 private:
  RegistryClient() = default;
  Result<void> ping(const std::string& what);
  // The Authorization value for `scope` (may fetch a token); empty for anonymous.
  Result<std::string> authorization(const std::string& scope, bool refresh);
  Result<std::string> fetch_token(const Challenge& c, const std::string& scope);

  std::string scheme_file() const;
  // After a request to a base that was only remembered: confirms it, or, when it did not answer
  // (or answered 400, as HTTPS servers do to plain HTTP), probes the registry again and sends
  // `req` once more to the base found, replacing `resp`.
  Result<void> confirm_base(HttpRequest& req, HttpResponse& resp, bool replayable,
                            const std::string& scope, const std::string& what);
  // "http" when plain HTTP is remembered for this registry, else empty.
  std::string remembered_scheme() const;

  std::string registry_;
  std::string endpoint_;
  std::string scheme_dir_;
  sdk::TransportOptions opts_;
  int retries_ = 3;
  bool has_client_cert_ = false;
  std::unique_ptr<HttpClient> http_;

  std::mutex mu_;  // guards what follows
  std::string base_url_;
  bool unconfirmed_ = false;            // base_url_ is the remembered scheme, not yet answered
  bool remembered_refuted_ = false;     // the remembered scheme did not answer: probe instead
  std::optional<Challenge> challenge_;  // set after a 401 on ping or any request
  struct Token {
    std::string value;
    std::chrono::steady_clock::time_point expires;
  };
  std::map<std::string, Token> tokens_;  // by scope
};

}  // namespace berth::registry
