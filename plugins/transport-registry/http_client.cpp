#include "http_client.hpp"

#include <openssl/crypto.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <mutex>

namespace berth::registry {
namespace {

constexpr int kMaxRedirects = 10;
constexpr long kBufferSize = 512 * 1024;

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) {
    s.remove_prefix(1);
  }
  while (!s.empty() &&
         (s.back() == ' ' || s.back() == '\t' || s.back() == '\r' || s.back() == '\n')) {
    s.remove_suffix(1);
  }
  return s;
}

// Writing to a pipe whose reader went away raises SIGPIPE, which would kill the whole process.
// Block it in this thread while the transfer runs and swallow the one our write raised, so the
// write fails with EPIPE instead. (The process-wide disposition is not ours to change.)
class SigpipeBlock {
 public:
  SigpipeBlock() {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &set, &old_);
    sigset_t pending;
    sigemptyset(&pending);
    if (sigpending(&pending) == 0) {
      was_pending_ = sigismember(&pending, SIGPIPE) == 1;
    }
  }
  ~SigpipeBlock() {
    if (!was_pending_) {
      sigset_t pending;
      sigemptyset(&pending);
      if (sigpending(&pending) == 0 && sigismember(&pending, SIGPIPE) == 1) {
        sigset_t set;
        sigemptyset(&set);
        sigaddset(&set, SIGPIPE);
        timespec zero{};
        // Consumes the pending SIGPIPE; EAGAIN here only means it was already gone.
        (void)sigtimedwait(&set, nullptr, &zero);
      }
    }
    pthread_sigmask(SIG_SETMASK, &old_, nullptr);
  }
  SigpipeBlock(const SigpipeBlock&) = delete;
  SigpipeBlock& operator=(const SigpipeBlock&) = delete;

 private:
  sigset_t old_{};
  bool was_pending_ = false;
};

struct Transfer {
  CURL* handle;
  const HttpRequest* req;
  HttpResponse* resp;
  size_t body_pos = 0;  // into req->body
  int64_t skipped = 0;  // of req->out_skip
};

size_t on_header(char* data, size_t size, size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  std::string_view line(data, size * n);
  if (line.starts_with("HTTP/")) {
    t->resp->headers.clear();  // an interim (100) or new response starts
    return size * n;
  }
  size_t colon = line.find(':');
  if (colon != std::string_view::npos) {
    t->resp->headers.emplace_back(lower(trim(line.substr(0, colon))),
                                  std::string(trim(line.substr(colon + 1))));
  }
  return size * n;
}

bool write_fd(int fd, const char* p, size_t len, HttpResponse* resp) {
  while (len > 0) {
    ssize_t w = ::write(fd, p, len);
    if (w < 0) {
      if (errno == EINTR) {
        continue;
      }
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        pollfd pfd{fd, POLLOUT, 0};
        if (::poll(&pfd, 1, -1) < 0 && errno != EINTR) {
          resp->write_errno = errno;
          return false;
        }
        continue;
      }
      if (errno == EPIPE) {
        resp->reader_gone = true;
      } else {
        resp->write_errno = errno;
      }
      return false;
    }
    p += w;
    len -= static_cast<size_t>(w);
    resp->written += w;
  }
  return true;
}

size_t on_body(char* data, size_t size, size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  size_t len = size * n;
  long status = 0;
  curl_easy_getinfo(t->handle, CURLINFO_RESPONSE_CODE, &status);
  const HttpRequest& req = *t->req;
  if (req.out_fd >= 0 && status >= 200 && status < 300) {
    const char* p = data;
    size_t left = len;
    if (status == 200 && t->skipped < req.out_skip) {
      auto drop = static_cast<size_t>(
          std::min<int64_t>(req.out_skip - t->skipped, static_cast<int64_t>(left)));
      t->skipped += static_cast<int64_t>(drop);
      p += drop;
      left -= drop;
    }
    if (req.out_limit >= 0 && t->resp->written + static_cast<int64_t>(left) > req.out_limit) {
      t->resp->body_too_large = true;
      t->resp->limit = req.out_limit;
      return 0;
    }
    if (left > 0 && !write_fd(req.out_fd, p, left, t->resp)) {
      return 0;
    }
    return len;
  }
  if (t->resp->body.size() + len > req.max_body) {
    t->resp->body_too_large = true;
    t->resp->limit = static_cast<int64_t>(req.max_body);
    return 0;
  }
  t->resp->body.append(data, len);
  return len;
}

size_t on_read(char* buf, size_t size, size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  size_t cap = size * n;
  const HttpRequest& req = *t->req;
  if (t->body_pos < req.body.size()) {
    size_t take = std::min(cap, req.body.size() - t->body_pos);
    std::copy_n(req.body.data() + t->body_pos, take, buf);
    t->body_pos += take;
    return take;
  }
  if (req.body_fd < 0) {
    return 0;
  }
  while (true) {
    ssize_t r = ::read(req.body_fd, buf, cap);
    if (r >= 0) {
      return static_cast<size_t>(r);
    }
    if (errno == EINTR) {
      continue;
    }
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      pollfd pfd{req.body_fd, POLLIN, 0};
      if (::poll(&pfd, 1, -1) < 0 && errno != EINTR) {
        t->resp->read_errno = errno;
        return CURL_READFUNC_ABORT;
      }
      continue;
    }
    t->resp->read_errno = errno;
    return CURL_READFUNC_ABORT;
  }
}

}  // namespace

Result<void> init_curl() {
  static std::once_flag once;
  static CURLcode rc = CURLE_OK;
  std::call_once(once, [] {
    // Before libcurl initialises OpenSSL: skip the legacy name table of every cipher (OpenSSL 3
    // fetches TLS ciphers from its providers) and the teardown at exit of a process about to end.
    // The digest table stays: certificate checks look digests up in it.
    OPENSSL_init_crypto(OPENSSL_INIT_NO_ADD_ALL_CIPHERS | OPENSSL_INIT_NO_ATEXIT, nullptr);
    rc = curl_global_init(CURL_GLOBAL_DEFAULT);
  });
  if (rc != CURLE_OK) {
    return fail(Errc::Internal, std::string("initialise libcurl: ") + curl_easy_strerror(rc));
  }
  return {};
}

std::optional<std::string> HttpResponse::header(std::string_view name) const {
  std::string key = lower(name);
  for (const auto& [k, v] : headers) {
    if (k == key) {
      return v;
    }
  }
  return std::nullopt;
}

std::vector<std::string> HttpResponse::header_values(std::string_view name) const {
  std::string key = lower(name);
  std::vector<std::string> out;
  for (const auto& [k, v] : headers) {
    if (k == key) {
      out.push_back(v);
    }
  }
  return out;
}

std::string url_escape(std::string_view s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

std::string url_origin(std::string_view url) {
  size_t scheme_end = url.find("://");
  if (scheme_end == std::string_view::npos) {
    return "";
  }
  size_t host_end = url.find_first_of("/?#", scheme_end + 3);
  return lower(url.substr(0, host_end));
}

std::string resolve_url(std::string_view base, std::string_view target) {
  if (target.find("://") != std::string_view::npos) {
    return std::string(target);
  }
  std::string origin = url_origin(base);
  if (target.starts_with("//")) {
    return std::string(base.substr(0, base.find("://") + 1)) + std::string(target);
  }
  if (target.starts_with("/")) {
    return origin + std::string(target);
  }
  // Relative to the base's directory.
  std::string_view path = base.substr(0, base.find_first_of("?#"));
  size_t slash = path.rfind('/');
  return std::string(path.substr(0, slash + 1)) + std::string(target);
}

HttpClient::HttpClient(TlsConfig tls, std::string user_agent, int timeout_seconds)
    : tls_(std::move(tls)), user_agent_(std::move(user_agent)), timeout_seconds_(timeout_seconds) {}

HttpClient::~HttpClient() {
  for (CURL* h : idle_) {
    curl_easy_cleanup(h);
  }
}

CURL* HttpClient::acquire() {
  {
    std::lock_guard lock(mu_);
    if (!idle_.empty()) {
      CURL* h = idle_.back();
      idle_.pop_back();
      return h;
    }
  }
  return curl_easy_init();
}

void HttpClient::release(CURL* h) {
  std::lock_guard lock(mu_);
  idle_.push_back(h);
}

HttpResponse HttpClient::perform(const HttpRequest& req) {
  CURL* h = acquire();
  if (h == nullptr) {
    HttpResponse resp;
    resp.url = req.url;
    resp.curl_code = CURLE_OUT_OF_MEMORY;
    resp.curl_error = "cannot create a libcurl handle";
    return resp;
  }
  std::optional<SigpipeBlock> block;
  if (req.out_fd >= 0) {
    block.emplace();
  }
  std::string url = req.url;
  std::string method = req.method;
  std::string origin = url_origin(req.url);
  HttpResponse resp;
  for (int hop = 0;; ++hop) {
    resp = perform_once(h, req, url, method, url_origin(url) == origin);
    bool redirect =
        resp.transferred() && (resp.status == 301 || resp.status == 302 || resp.status == 303 ||
                               resp.status == 307 || resp.status == 308);
    if (!req.follow_redirects || !redirect || hop >= kMaxRedirects) {
      break;
    }
    char* next = nullptr;
    curl_easy_getinfo(h, CURLINFO_REDIRECT_URL, &next);
    if (next == nullptr) {
      break;
    }
    url = next;
    if (resp.status == 303) {
      method = "GET";
    }
  }
  release(h);
  return resp;
}

HttpResponse HttpClient::perform_once(CURL* h, const HttpRequest& req, const std::string& url,
                                      const std::string& method, bool send_auth) {
  HttpResponse resp;
  resp.url = url;
  Transfer t{h, &req, &resp};
  curl_easy_reset(h);
  char errbuf[CURL_ERROR_SIZE] = {0};
  curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt(h, CURLOPT_URL, url.c_str());
  curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_USERAGENT, user_agent_.c_str());
  curl_easy_setopt(h, CURLOPT_BUFFERSIZE, kBufferSize);
  curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
  curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, static_cast<long>(timeout_seconds_));
  // A registry that stops sending for timeout_seconds is an error, however large the blob.
  curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
  curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, static_cast<long>(timeout_seconds_));
  curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, tls_.verify ? 1L : 0L);
  curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, tls_.verify ? 2L : 0L);
  if (!tls_.ca_pem.empty()) {
    curl_blob blob{const_cast<char*>(tls_.ca_pem.data()), tls_.ca_pem.size(), CURL_BLOB_NOCOPY};
    curl_easy_setopt(h, CURLOPT_CAINFO_BLOB, &blob);
  }
  if (!tls_.client_cert.empty()) {
    curl_easy_setopt(h, CURLOPT_SSLCERT, tls_.client_cert.c_str());
    curl_easy_setopt(h, CURLOPT_SSLKEY, tls_.client_key.c_str());
  }
  curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(h, CURLOPT_HEADERDATA, &t);
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, &t);

  curl_slist* headers = nullptr;
  auto add_header = [&](const std::string& line) {
    curl_slist* next = curl_slist_append(headers, line.c_str());
    if (next != nullptr) {
      headers = next;
    }
  };
  for (const auto& line : req.headers) {
    add_header(line);
  }
  if (send_auth && !req.authorization.empty()) {
    add_header("Authorization: " + req.authorization);
  }
  add_header("Expect:");  // no 100-continue round trip before uploads

  bool has_body = !req.body.empty() || req.body_fd >= 0;
  if (method == "HEAD") {
    curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
  } else if (method == "GET") {
    curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
  } else if (method == "DELETE") {
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, "DELETE");
  } else {
    // PUT, POST, PATCH: all sent as uploads from the read callback (empty when no body).
    int64_t size = 0;
    if (has_body) {
      size = req.body_fd >= 0 ? req.body_size : static_cast<int64_t>(req.body.size());
    }
    curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method.c_str());
    curl_easy_setopt(h, CURLOPT_READFUNCTION, on_read);
    curl_easy_setopt(h, CURLOPT_READDATA, &t);
    curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, static_cast<curl_off_t>(size));
  }
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
  resp.curl_code = curl_easy_perform(h);
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &resp.status);
  if (resp.curl_code != CURLE_OK) {
    resp.curl_error = errbuf[0] != 0 ? errbuf : curl_easy_strerror(resp.curl_code);
  }
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, nullptr);
  curl_slist_free_all(headers);
  return resp;
}

}  // namespace berth::registry
