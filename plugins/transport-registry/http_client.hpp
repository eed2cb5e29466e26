#pragma once
// One HTTP exchange over libcurl, no policy: no auth, no retries, no error formatting. The
// registry client adds those. Easy handles are pooled (connections are reused) and the pool is
// safe to use from several of the caller's threads; libcurl itself starts no thread for IP
// literals (a host name may be resolved on a short-lived resolver thread inside libcurl).
#include <curl/curl.h>

#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "berth/sdk/result.hpp"

namespace berth::registry {

struct TlsConfig {
  bool verify = true;
  std::string ca_pem;       // extra CAs (certs.d *.crt) plus the system bundle; empty: default
  std::string client_cert;  // PEM file paths from certs.d (*.cert / *.key)
  std::string client_key;
};

struct HttpRequest {
  std::string method = "GET";
  std::string url;
  std::vector<std::string> headers;  // "Name: value"
  std::string authorization;         // the Authorization value; never sent to another host
  std::string_view body;             // in-memory body, sent first
  int body_fd = -1;                  // then the rest of the body read from this fd to EOF
  int64_t body_size = -1;            // total body size when body_fd is used (-1: chunked)
  int out_fd = -1;                   // a 2xx body goes to this fd instead of memory
  int64_t out_skip = 0;              // bytes dropped from the start of a 200 body (Range ignored)
  int64_t out_limit = -1;            // more than this many bytes to out_fd is an error
  size_t max_body = 1 << 20;         // in-memory bodies over this are refused
  bool follow_redirects = false;
};

struct HttpResponse {
  long status = 0;
  std::vector<std::pair<std::string, std::string>> headers;  // names lowercased
  std::string body;     // the body, or the error body when out_fd was given
  std::string url;      // the last URL requested (after redirects)
  int64_t written = 0;  // bytes written to out_fd

  // Transfer failures (status may be 0).
  CURLcode curl_code = CURLE_OK;
  std::string curl_error;
  bool body_too_large = false;  // over max_body (in memory) or out_limit (to out_fd)
  int64_t limit = 0;            // the limit that was hit
  bool reader_gone = false;     // EPIPE on out_fd: the reader closed its end
  int write_errno = 0;          // another error writing out_fd
  int read_errno = 0;           // an error reading body_fd

  std::optional<std::string> header(std::string_view name) const;
  std::vector<std::string> header_values(std::string_view name) const;
  bool transferred() const { return curl_code == CURLE_OK; }
};

class HttpClient {
 public:
  HttpClient(TlsConfig tls, std::string user_agent, int timeout_seconds);
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  // Performs the request (and its redirects when asked). Never fails as such: transfer errors
  // are reported in the response.
  HttpResponse perform(const HttpRequest& req);
  int timeout_seconds() const { return timeout_seconds_; }

 private:
  CURL* acquire();
  void release(CURL* h);
  HttpResponse perform_once(CURL* h, const HttpRequest& req, const std::string& url,
                            const std::string& method, bool send_auth);

  TlsConfig tls_;
  std::string user_agent_;
  int timeout_seconds_;
  std::mutex mu_;
  std::vector<CURL*> idle_;
};

// Makes curl_global_init happen once, from the factory (never from a static constructor).
Result<void> init_curl();

std::string url_escape(std::string_view s);
// "scheme://host[:port]" of an absolute URL, lowercased host.
std::string url_origin(std::string_view url);
// Resolves a Location or Link target against the URL it came from.
std::string resolve_url(std::string_view base, std::string_view target);

}  // namespace berth::registry
