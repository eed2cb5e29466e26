#include "registry_client.hpp"

#include <openssl/evp.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

namespace berth::registry {
namespace {

constexpr int kDefaultTimeoutSeconds = 30;
constexpr auto kMaxBackoff = std::chrono::seconds(10);
constexpr auto kBaseBackoff = std::chrono::milliseconds(500);
constexpr const char* kSystemCaBundle = "/etc/ssl/certs/ca-certificates.crt";

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

std::string base64(std::string_view in) {
  std::string out(4 * ((in.size() + 2) / 3) + 1, '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(in.data()),
                          static_cast<int>(in.size()));
  out.resize(static_cast<size_t>(n));
  return out;
}

Result<std::string> slurp(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  if (!in) {
    return fail_errno("read", p.string());
  }
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Reads a certs.d directory: *.crt CAs (added to the system bundle), *.cert + *.key client pairs.
Result<TlsConfig> tls_config(const sdk::TransportOptions& opts) {
  TlsConfig tls;
  tls.verify = opts.tls_verify;
  if (opts.cert_dir.empty()) {
    return tls;
  }
  std::error_code ec;
  std::filesystem::directory_iterator it(opts.cert_dir, ec);
  if (ec) {
    if (ec == std::errc::no_such_file_or_directory) {
      return tls;  // no certs.d entry for this registry: the system CAs apply
    }
    return fail(Error::from_errno("read certificate directory", opts.cert_dir, ec.value()));
  }
  std::vector<std::filesystem::path> files;
  for (const auto& entry : it) {
    files.push_back(entry.path());
  }
  std::sort(files.begin(), files.end());
  std::string cas;
  for (const auto& f : files) {
    if (f.extension() == ".crt") {
      BERTH_TRY(std::string pem, slurp(f));
      cas += pem;
      if (!cas.empty() && cas.back() != '\n') {
        cas += '\n';
      }
    } else if (f.extension() == ".cert" && tls.client_cert.empty()) {
      auto key = f;
      key.replace_extension(".key");
      if (!std::filesystem::exists(key, ec)) {
        return fail(Errc::InvalidArgument, "client certificate " + f.string() +
                                               " has no matching key " + key.string() +
                                               " (certs.d pairs NAME.cert with NAME.key)");
      }
      tls.client_cert = f.string();
      tls.client_key = key.string();
    }
  }
  if (!cas.empty()) {
    // The directory's CAs are added to the system's, as containers/image does.
    auto system = slurp(kSystemCaBundle);
    tls.ca_pem = (system ? *system + "\n" : std::string()) + cas;
  }
  return tls;
}

std::string reason_phrase(long status) {
  switch (status) {
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 409:
      return "Conflict";
    case 416:
      return "Range Not Satisfiable";
    case 429:
      return "Too Many Requests";
    case 500:
      return "Internal Server Error";
    case 502:
      return "Bad Gateway";
    case 503:
      return "Service Unavailable";
    case 504:
      return "Gateway Timeout";
    default:
      return "";
  }
}

}  // namespace

std::vector<Challenge> parse_challenges(std::string_view h) {
  std::vector<Challenge> out;
  size_t i = 0;
  auto skip_ws = [&] {
    while (i < h.size() && (h[i] == ' ' || h[i] == '\t' || h[i] == ',')) {
      ++i;
    }
  };
  auto token = [&] {
    size_t start = i;
    while (i < h.size() && h[i] != ' ' && h[i] != '\t' && h[i] != ',' && h[i] != '=') {
      ++i;
    }
    return std::string(h.substr(start, i - start));
  };
  while (true) {
    skip_ws();
    if (i >= h.size()) {
      break;
    }
    std::string word = token();
    if (i < h.size() && h[i] == '=') {
      // A parameter of the current challenge.
      ++i;
      std::string value;
      if (i < h.size() && h[i] == '"') {
        ++i;
        while (i < h.size() && h[i] != '"') {
          if (h[i] == '\\' && i + 1 < h.size()) {
            ++i;
          }
          value += h[i++];
        }
        ++i;  // closing quote
      } else {
        value = token();
      }
      if (!out.empty()) {
        out.back().params[lower(word)] = value;
      }
    } else if (!word.empty()) {
      out.push_back(Challenge{lower(word), {}});
    }
  }
  return out;
}

std::string parse_next_link(std::string_view header) {
  // <url>; rel="next", <url2>; rel="prev"
  size_t pos = 0;
  while (true) {
    size_t open = header.find('<', pos);
    if (open == std::string_view::npos) {
      return "";
    }
    size_t close = header.find('>', open);
    if (close == std::string_view::npos) {
      return "";
    }
    size_t end = header.find('<', close);
    std::string params =
        lower(header.substr(close + 1, end == header.npos ? header.npos : end - close - 1));
    if (params.find("rel=\"next\"") != std::string::npos ||
        params.find("rel=next") != std::string::npos) {
      return std::string(header.substr(open + 1, close - open - 1));
    }
    pos = close;
  }
}

std::string registry_error_message(std::string_view body) {
  auto j = nlohmann::json::parse(body, nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains("errors") || !j["errors"].is_array()) {
    return "";
  }
  std::string out;
  for (const auto& e : j["errors"]) {
    if (!e.is_object()) {
      continue;
    }
    if (!out.empty()) {
      out += "; ";
    }
    if (e.contains("code") && e["code"].is_string()) {
      out += e["code"].get<std::string>();
    }
    if (e.contains("message") && e["message"].is_string()) {
      out += ": " + e["message"].get<std::string>();
    }
  }
  return out;
}

Errc errc_for_status(long status) {
  switch (status) {
    case 400:
      return Errc::InvalidArgument;
    case 401:
    case 403:
      return Errc::PermissionDenied;
    case 404:
      return Errc::NotFound;
    case 405:
      return Errc::NotSupported;
    case 409:
      return Errc::Conflict;
    case 416:
      return Errc::InvalidArgument;
    case 429:
      return Errc::Unavailable;
    default:
      return status >= 500 ? Errc::Unavailable : Errc::Internal;
  }
}

Result<std::unique_ptr<RegistryClient>> RegistryClient::create(const std::string& registry,
                                                               const std::string& endpoint,
                                                               const sdk::TransportOptions& opts) {
  BERTH_TRYV(init_curl());
  auto tls = tls_config(opts);
  if (!tls) {
    return fail(std::move(tls).error().wrap("registry " + registry));
  }
  std::unique_ptr<RegistryClient> c(new RegistryClient());
  c->registry_ = registry;
  c->endpoint_ = endpoint;
  c->opts_ = opts;
  c->retries_ = std::max(0, opts.retries);
  int timeout = opts.timeout_seconds > 0 ? opts.timeout_seconds : kDefaultTimeoutSeconds;
  c->has_client_cert_ = !tls->client_cert.empty();
  c->http_ = std::make_unique<HttpClient>(std::move(*tls), opts.user_agent, timeout);
  return c;
}

Result<std::string> RegistryClient::base_url(const std::string& what) {
  {
    std::lock_guard lock(mu_);
    if (!base_url_.empty()) {
      return base_url_;
    }
    if (opts_.tls_verify) {
      // HTTPS is the only scheme tried: nothing to find out before the first request.
      base_url_ = "https://" + endpoint_;
      return base_url_;
    }
    // Read under the lock, so a request cannot bring back a scheme that another one of this
    // client has just refuted (confirm_base()).
    if (!remembered_refuted_ && remembered_scheme() == "http") {
      base_url_ = "http://" + endpoint_;
      unconfirmed_ = true;  // confirm_base() probes again if it does not answer
      return base_url_;
    }
  }
  BERTH_TRYV(ping(what));
  std::lock_guard lock(mu_);
  return base_url_;
}

std::string RegistryClient::remembered_scheme() const {
  const std::string file = scheme_file();
  if (file.empty()) {
    return "";
  }
  std::ifstream in(file);
  std::string scheme;
  return in >> scheme && scheme == "http" ? scheme : "";
}

namespace {
// What HTTPS to a plain-HTTP server looks like: the insecure fallback tries HTTP after these.
bool tls_mismatch(const HttpResponse& resp) {
  switch (resp.curl_code) {
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_WEIRD_SERVER_REPLY:
      return true;
    default:
      return false;
  }
}
}  // namespace

std::string RegistryClient::scheme_file() const {
  if (scheme_dir_.empty() || opts_.tls_verify) {
    return "";
  }
  std::string name = endpoint_;
  std::replace_if(
      name.begin(), name.end(), [](char c) { return c == '/' || c == ':'; }, '_');
  return scheme_dir_ + "/" + name + ".scheme";
}

Result<void> RegistryClient::ping(const std::string& what) {
  std::vector<std::string> bases{"https://" + endpoint_};
  if (!opts_.tls_verify) {
    // An insecure registry: TLS without verification, else plain HTTP.
    bases.push_back("http://" + endpoint_);
  }
  const std::string remembered = scheme_file();
  if (remembered_scheme() == "http") {
    // Plain HTTP first, then the usual order should it not answer.
    bases.insert(bases.begin(), "http://" + endpoint_);
  }
  const bool remembered_first = bases.size() == 3;
  std::optional<Error> https_error;
  for (size_t i = 0; i < bases.size(); ++i) {
    HttpRequest req;
    req.url = bases[i] + "/v2/";
    for (int attempt = 0;; ++attempt) {
      HttpResponse resp = http_->perform(req);
      if (i == 0 && remembered_first &&
          (!resp.transferred() || (resp.status != 200 && resp.status != 401))) {
        // No registry on plain HTTP there any more (an HTTPS server answers 400): probe as if
        // nothing were remembered.
        break;
      }
      if (i + 1 < bases.size() && !resp.transferred() && tls_mismatch(resp)) {
        https_error = transfer_error(resp, what);
        break;  // try plain HTTP
      }
      if (retryable(resp, false) && attempt < retries_) {
        backoff(attempt, resp);
        continue;
      }
      if (!resp.transferred()) {
        Error e = transfer_error(resp, what);
        if (https_error) {
          return fail(std::move(e).hint("over HTTPS: " + https_error->message()));
        }
        return fail(std::move(e));
      }
      // Any HTTP answer means the registry is there; a 401 says how to authenticate.
      if (!remembered.empty() && !(i == 0 && remembered_first)) {
        // Best effort: a file that cannot be written only costs the next process the probe.
        // Nothing to write when the remembered scheme answered.
        std::error_code ec;
        std::filesystem::create_directories(scheme_dir_, ec);
        if (bases[i].starts_with("http://")) {
          std::ofstream(remembered) << "http\n";
        } else {
          std::filesystem::remove(remembered, ec);
        }
      }
      std::lock_guard lock(mu_);
      base_url_ = bases[i];
      if (resp.status == 401) {
        auto cs = parse_challenges(resp.header("www-authenticate").value_or(""));
        if (!cs.empty()) {
          challenge_ = cs.front();
        }
      }
      return {};
    }
  }
  // Not reached: the last base always returns.
  return fail(Errc::Internal, what + ": no address to ping");
}

Result<std::string> RegistryClient::authorization(const std::string& scope, bool refresh) {
  std::optional<Challenge> ch;
  {
    std::lock_guard lock(mu_);
    ch = challenge_;
    if (ch && ch->scheme == "bearer" && !refresh) {
      auto it = tokens_.find(scope);
      if (it != tokens_.end() && it->second.expires > std::chrono::steady_clock::now()) {
        return "Bearer " + it->second.value;
      }
    }
  }
  if (!ch) {
    return std::string();
  }
  const auto& creds = opts_.credentials;
  if (ch->scheme == "basic") {
    if (!creds || creds->username.empty()) {
      return std::string();
    }
    return "Basic " + base64(creds->username + ":" + creds->password);
  }
  if (ch->scheme != "bearer") {
    return fail(Errc::NotSupported, "registry " + registry_ + " asks for \"" + ch->scheme +
                                        "\" authentication; berth supports Bearer and Basic");
  }
  BERTH_TRY(std::string token, fetch_token(*ch, scope));
  return "Bearer " + token;
}

Result<std::string> RegistryClient::fetch_token(const Challenge& c, const std::string& scope) {
  auto realm_it = c.params.find("realm");
  if (realm_it == c.params.end() || realm_it->second.empty()) {
    return fail(Errc::InvalidArgument,
                "registry " + registry_ + ": the Bearer challenge has no realm (token server)");
  }
  const std::string& realm = realm_it->second;
  std::string service;
  if (auto it = c.params.find("service"); it != c.params.end()) {
    service = it->second;
  }
  const auto& creds = opts_.credentials;
  std::vector<std::string> scopes;
  {
    std::istringstream ss(scope);
    for (std::string s; ss >> s;) {
      scopes.push_back(s);
    }
  }
  HttpRequest req;
  std::string form;
  if (creds && !creds->identity_token.empty()) {
    // An OAuth2 refresh token (from `docker login` with an identity provider).
    form = "grant_type=refresh_token&client_id=berth&refresh_token=" +
           url_escape(creds->identity_token) + "&service=" + url_escape(service);
    for (const auto& s : scopes) {
      form += "&scope=" + url_escape(s);
    }
    req.method = "POST";
    req.url = realm;
    req.body = form;
    req.headers.push_back("Content-Type: application/x-www-form-urlencoded");
  } else {
    std::string query = "service=" + url_escape(service);
    for (const auto& s : scopes) {
      query += "&scope=" + url_escape(s);
    }
    if (creds && !creds->username.empty()) {
      query += "&account=" + url_escape(creds->username);
      req.authorization = "Basic " + base64(creds->username + ":" + creds->password);
    }
    req.url = realm + (realm.find('?') == std::string::npos ? "?" : "&") + query;
  }
  // The token server may be another host; the credentials are meant for it.
  std::string what =
      "registry " + registry_ + ": token from " + realm + (scope.empty() ? "" : " for " + scope);
  HttpResponse resp;
  for (int attempt = 0;; ++attempt) {
    resp = http_->perform(req);
    if (retryable(resp, false) && attempt < retries_) {
      backoff(attempt, resp);
      continue;
    }
    break;
  }
  if (!resp.transferred()) {
    return fail(transfer_error(resp, what));
  }
  if (resp.status == 401 || resp.status == 403) {
    Error e = status_error_plain(resp, what);
    if (creds && !creds->username.empty()) {
      return fail(std::move(e).hint("the token server refused the credentials of user " +
                                    creds->username + "; check them with berth login " +
                                    registry_));
    }
    return fail(
        std::move(e).hint("anonymous access is refused; log in with berth login " + registry_));
  }
  if (resp.status != 200) {
    return fail(status_error(resp, what));
  }
  auto j = nlohmann::json::parse(resp.body, nullptr, false);
  std::string token;
  if (j.is_object()) {
    for (const char* key : {"token", "access_token"}) {
      if (j.contains(key) && j[key].is_string() && !j[key].get<std::string>().empty()) {
        token = j[key].get<std::string>();
        break;
      }
    }
  }
  if (token.empty()) {
    return fail(Errc::InvalidArgument, what + ": the answer holds no token");
  }
  int expires_in = 60;
  if (j.contains("expires_in") && j["expires_in"].is_number_integer()) {
    expires_in = std::max(j["expires_in"].get<int>(), 10);
  }
  std::lock_guard lock(mu_);
  // Refresh a little early so a token does not expire mid-request.
  tokens_[scope] =
      Token{token, std::chrono::steady_clock::now() + std::chrono::seconds(expires_in - 5)};
  return token;
}

Result<HttpResponse> RegistryClient::send_once(HttpRequest& req, const std::string& scope,
                                               const std::string& what) {
  (void)what;
  BERTH_TRY(std::string auth, authorization(scope, false));
  req.authorization = auth;
  HttpResponse resp = http_->perform(req);
  if (!resp.transferred() || resp.status != 401 || req.body_fd >= 0) {
    return resp;
  }
  // The registry wants (other) credentials: learn its challenge and try once more.
  auto cs = parse_challenges(resp.header("www-authenticate").value_or(""));
  if (cs.empty()) {
    return resp;
  }
  bool bearer = false;
  {
    std::lock_guard lock(mu_);
    challenge_ = cs.front();
    bearer = challenge_->scheme == "bearer";
  }
  BERTH_TRY(std::string fresh, authorization(scope, true));
  if (fresh.empty() || (!bearer && fresh == auth)) {
    return resp;
  }
  req.authorization = fresh;
  return http_->perform(req);
}

Result<HttpResponse> RegistryClient::send(HttpRequest req, const std::string& scope,
                                          const std::string& what) {
  bool replayable = req.body_fd < 0;
  for (int attempt = 0;; ++attempt) {
    BERTH_TRY(HttpResponse resp, send_once(req, scope, what));
    BERTH_TRYV(confirm_base(req, resp, replayable, scope, what));
    if (replayable && retryable(resp, false) && attempt < retries_) {
      backoff(attempt, resp);
      continue;
    }
    if (!resp.transferred()) {
      return fail(transfer_error(resp, what));
    }
    return resp;
  }
}

Result<void> RegistryClient::confirm_base(HttpRequest& req, HttpResponse& resp, bool replayable,
                                          const std::string& scope, const std::string& what) {
  const bool failed = !resp.transferred() || resp.status == 400;
  std::string used;  // the base `req` went to
  for (std::string b : {"http://" + endpoint_, "https://" + endpoint_}) {
    if (req.url.starts_with(b + "/")) {
      used = b;
    }
  }
  bool reprobe = false;
  bool rebase = false;
  {
    std::lock_guard lock(mu_);
    if (unconfirmed_ && used == base_url_) {
      unconfirmed_ = false;
      // The remembered plain HTTP did not answer, or an HTTPS server answered it (400):
      // forget it and probe the registry from scratch, then send again.
      reprobe = failed;
      if (reprobe) {
        base_url_.clear();
        remembered_refuted_ = true;
        std::error_code ec;
        std::filesystem::remove(scheme_file(), ec);
      }
    } else {
      // Another request of this client found the remembered scheme wrong meanwhile.
      rebase = failed && !used.empty() && used != base_url_;
    }
  }
  if (!replayable || !(reprobe || rebase)) {
    return {};
  }
  BERTH_TRY(std::string base, base_url(what));
  if (base == used) {
    return {};
  }
  req.url = base + req.url.substr(used.size());
  BERTH_TRY(resp, send_once(req, scope, what));
  return {};
}

bool RegistryClient::retryable(const HttpResponse& resp, bool made_progress) const {
  if (resp.transferred()) {
    long s = resp.status;
    return s == 429 || s == 500 || s == 502 || s == 503 || s == 504;
  }
  if (resp.reader_gone || resp.write_errno != 0 || resp.read_errno != 0 || resp.body_too_large) {
    return false;
  }
  switch (resp.curl_code) {
    case CURLE_COULDNT_CONNECT:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_PARTIAL_FILE:
    case CURLE_GOT_NOTHING:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
      return true;
    case CURLE_OPERATION_TIMEDOUT:
      // A stall after data flowed is a broken transfer worth resuming; a registry that never
      // answers is reported within the configured timeout instead of a multiple of it.
      return made_progress;
    default:
      return false;
  }
}

void RegistryClient::backoff(int attempt, const HttpResponse& resp) const {
  auto delay =
      std::min<std::chrono::milliseconds>(kBaseBackoff * (1 << std::min(attempt, 10)), kMaxBackoff);
  if (auto ra = resp.header("retry-after"); ra && (resp.status == 429 || resp.status == 503)) {
    char* end = nullptr;
    long secs = std::strtol(ra->c_str(), &end, 10);
    if (end != ra->c_str() && secs > 0) {
      delay = std::max<std::chrono::milliseconds>(delay,
                                                  std::chrono::seconds(std::min<long>(secs, 30)));
    }
  }
  std::this_thread::sleep_for(delay);
}

Error RegistryClient::status_error(const HttpResponse& resp, const std::string& what) const {
  Error e = status_error_plain(resp, what);
  if (resp.status == 401) {
    const auto& creds = opts_.credentials;
    return std::move(e).hint(creds && !creds->username.empty()
                                 ? "the registry refused the credentials of " + creds->username
                                 : "log in with berth login " + registry_);
  }
  return e;
}

Error RegistryClient::status_error_plain(const HttpResponse& resp, const std::string& what) const {
  std::string msg = what + ": HTTP " + std::to_string(resp.status);
  if (auto reason = reason_phrase(resp.status); !reason.empty()) {
    msg += " " + reason;
  }
  std::string detail = registry_error_message(resp.body);
  if (detail.empty() && !resp.body.empty() && resp.body.size() < 512 &&
      std::all_of(resp.body.begin(), resp.body.end(),
                  [](unsigned char c) { return std::isprint(c) || std::isspace(c); })) {
    detail = resp.body;
    while (!detail.empty() && std::isspace(static_cast<unsigned char>(detail.back()))) {
      detail.pop_back();
    }
  }
  if (!detail.empty()) {
    msg += ": " + detail;
  }
  return Error(errc_for_status(resp.status), msg);
}

Error RegistryClient::transfer_error(const HttpResponse& resp, const std::string& what) const {
  std::string prefix = what + ": " + resp.url + ": ";
  if (resp.reader_gone) {
    return Error(
        Errc::Cancelled,
        prefix + "the reader closed the pipe after " + std::to_string(resp.written) + " bytes",
        EPIPE);
  }
  if (resp.write_errno != 0) {
    return Error::from_errno(prefix + "write the body to", "the output", resp.write_errno);
  }
  if (resp.read_errno != 0) {
    return Error::from_errno(prefix + "read the body to upload from", "the input", resp.read_errno);
  }
  if (resp.body_too_large) {
    return Error(Errc::Corrupt, prefix + "the registry sent more than the " +
                                    std::to_string(resp.limit) + " bytes expected or allowed");
  }
  std::string msg = prefix + resp.curl_error;
  switch (resp.curl_code) {
    case CURLE_OPERATION_TIMEDOUT:
      return Error(Errc::Timeout,
                   msg + " (no data from the registry for " +
                       std::to_string(http_->timeout_seconds()) +
                       " s; check that it is up, or raise the timeout)",
                   ETIMEDOUT);
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_SSL_CERTPROBLEM:
      return Error(Errc::PermissionDenied,
                   msg + " (TLS failed: put the registry's CA in " +
                       (opts_.cert_dir.empty() ? "/etc/containers/certs.d/" + registry_ + "/"
                                               : opts_.cert_dir + "/") +
                       "ca.crt, or mark the registry insecure if it serves plain HTTP)");
    case CURLE_COULDNT_RESOLVE_HOST:
      return Error(Errc::NotFound, msg + " (check the registry's name)");
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
      if (resp.url.starts_with("https://") && resp.status == 0 && !has_client_cert_) {
        // TLS 1.3 servers refuse a missing client certificate after the handshake, by closing.
        return Error(
            Errc::Unavailable,
            msg + " (the registry closed the connection before answering; if it " +
                "requires a client certificate, put NAME.cert and NAME.key in " +
                (opts_.cert_dir.empty() ? "/etc/containers/certs.d/" + registry_ : opts_.cert_dir) +
                ")");
      }
      return Error(Errc::Unavailable, msg);
    default:
      return Error(Errc::Unavailable, msg);
  }
}

Result<void> RegistryClient::check_login() {
  std::string what = "registry " + registry_ + ": login";
  BERTH_TRY(std::string base, base_url(what));
  HttpRequest req;
  req.url = base + "/v2/";
  BERTH_TRY(HttpResponse resp, send(req, "", what));
  if (resp.status == 200) {
    return {};
  }
  return fail(status_error(resp, what));
}

}  // namespace berth::registry
