#include "docker_transport.hpp"

#include <openssl/evp.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <nlohmann/json.hpp>
#include <vector>

#include "reference.hpp"

namespace berth::registry {
namespace {

constexpr const char* kManifestAccept =
    "Accept: application/vnd.oci.image.manifest.v1+json, "
    "application/vnd.oci.image.index.v1+json, "
    "application/vnd.docker.distribution.manifest.v2+json, "
    "application/vnd.docker.distribution.manifest.list.v2+json";

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

std::string with_query(const std::string& url, const std::string& query) {
  return url + (url.find('?') == std::string::npos ? "?" : "&") + query;
}

bool is_schema1(std::string_view media_type) {
  return media_type.starts_with("application/vnd.docker.distribution.manifest.v1");
}

// Reads up to `cap` bytes, fewer only at EOF.
Result<size_t> read_full(int fd, char* buf, size_t cap) {
  size_t got = 0;
  while (got < cap) {
    ssize_t r = ::read(fd, buf + got, cap - got);
    if (r < 0) {
      if (errno == EINTR) {
        continue;
      }
      return fail_errno("read the blob to upload from fd", std::to_string(fd));
    }
    if (r == 0) {
      break;
    }
    got += static_cast<size_t>(r);
  }
  return got;
}

class RegistrySource : public sdk::ImageSource {
 public:
  RegistrySource(Reference ref, std::shared_ptr<RegistryClient> client, int page_size)
      : ref_(std::move(ref)),
        client_(std::move(client)),
        scope_("repository:" + ref_.repository + ":pull"),
        page_size_(page_size) {}

  Result<sdk::Manifest> manifest(const std::string& digest) override {
    if (!digest.empty() && !valid_digest(digest)) {
      return fail(Errc::InvalidArgument, what("manifest " + digest) + ": not a valid digest");
    }
    std::string wanted = digest.empty() ? ref_.manifest_ref() : digest;
    std::string expect_digest = digest.empty() ? ref_.digest : digest;
    std::string ctx = what("manifest " + wanted);
    BERTH_TRY(std::string base, client_->base_url(ctx));
    HttpRequest req;
    req.url = base + "/v2/" + ref_.repository + "/manifests/" + wanted;
    req.headers.push_back(kManifestAccept);
    req.max_body = kMaxManifestBytes;
    auto resp = client_->send(req, scope_, ctx);
    if (!resp) {
      if (resp.error().code() == Errc::Corrupt) {
        return fail(Errc::InvalidArgument, ctx + ": refused, a manifest is at most " +
                                               std::to_string(kMaxManifestBytes >> 20) + " MiB");
      }
      return fail(std::move(resp).error());
    }
    if (resp->status != 200) {
      return fail(client_->status_error(*resp, ctx));
    }
    sdk::Manifest m;
    m.bytes = std::move(resp->body);
    std::string type = resp->header("content-type").value_or("");
    type = lower(type.substr(0, type.find(';')));
    while (!type.empty() && type.back() == ' ') {
      type.pop_back();
    }
    auto j = nlohmann::json::parse(m.bytes, nullptr, false);
    if (type.empty() || type == "application/json" || type == "text/plain" ||
        type == "application/octet-stream") {
      // Some registries do not say; the manifest itself may.
      type.clear();
      if (j.is_object() && j.contains("mediaType") && j["mediaType"].is_string()) {
        type = j["mediaType"].get<std::string>();
      } else if (j.is_object() && j.contains("schemaVersion") && j["schemaVersion"] == 1) {
        type = "application/vnd.docker.distribution.manifest.v1+json";
      }
    }
    if (is_schema1(type)) {
      return fail(Errc::NotSupported,
                  ctx + ": the registry only has a Docker schema 1 manifest (" + type +
                      "), which berth does not pull; push the image again with a current tool");
    }
    m.media_type = type;
    m.digest = sha256_digest(m.bytes);
    if (!expect_digest.empty() && expect_digest != m.digest) {
      if (!expect_digest.starts_with("sha256:")) {
        return fail(Errc::NotSupported,
                    ctx + ": only sha256 digests can be checked, not " + expect_digest);
      }
      return fail(Errc::Corrupt, ctx + ": the registry sent a manifest whose digest is " +
                                     m.digest + ", not the one asked for");
    }
    return m;
  }

  Result<int64_t> fetch_blob(const sdk::BlobInfo& blob, int64_t offset, int out_fd) override {
    std::string ctx = what("blob " + blob.digest);
    if (!valid_digest(blob.digest)) {
      return fail(Errc::InvalidArgument, ctx + ": not a valid digest");
    }
    if (offset < 0 || (blob.size >= 0 && offset > blob.size)) {
      return fail(Errc::InvalidArgument, ctx + ": offset " + std::to_string(offset) +
                                             " is outside the blob (" + std::to_string(blob.size) +
                                             " bytes)");
    }
    if (blob.size >= 0 && offset == blob.size) {
      return int64_t{0};
    }
    BERTH_TRY(std::string base, client_->base_url(ctx));
    int64_t total = 0;  // bytes written to out_fd by all attempts
    for (int attempt = 0;; ++attempt) {
      int64_t pos = offset + total;
      HttpRequest req;
      req.url = base + "/v2/" + ref_.repository + "/blobs/" + blob.digest;
      req.follow_redirects = true;
      req.out_fd = out_fd;
      req.out_skip = pos;  // when a registry ignores Range and sends the whole blob
      req.out_limit = blob.size >= 0 ? blob.size - pos : -1;
      if (pos > 0) {
        req.headers.push_back("Range: bytes=" + std::to_string(pos) + "-");
      }
      BERTH_TRY(HttpResponse resp, client_->send_once(req, scope_, ctx));
      total += resp.written;
      if (resp.transferred() && (resp.status == 200 || resp.status == 206)) {
        break;
      }
      if (resp.transferred() && resp.status == 416 && blob.size >= 0 &&
          offset + total == blob.size) {
        break;  // a resume found nothing left to send
      }
      if (client_->retryable(resp, resp.written > 0) && attempt < client_->retries()) {
        client_->backoff(attempt, resp);
        continue;
      }
      Error e = resp.transferred() ? client_->status_error(resp, ctx)
                                   : client_->transfer_error(resp, ctx);
      if (total > 0) {
        return fail(std::move(e).hint(std::to_string(total) + " bytes were written from offset " +
                                      std::to_string(offset)));
      }
      return fail(std::move(e));
    }
    if (blob.size >= 0 && offset + total != blob.size) {
      return fail(Errc::Corrupt, ctx + ": the registry sent " + std::to_string(offset + total) +
                                     " bytes, the blob has " + std::to_string(blob.size));
    }
    return total;
  }

  // Sigstore attachments (sha256-<digest>.sig tags) are not read yet: no signatures.
  Result<std::vector<std::string>> signatures(const std::string& /*manifest_digest*/) override {
    return std::vector<std::string>{};
  }

  Result<std::vector<std::string>> tags() override {
    std::string ctx = what("tags");
    BERTH_TRY(std::string base, client_->base_url(ctx));
    std::vector<std::string> out;
    std::string url =
        base + "/v2/" + ref_.repository + "/tags/list?n=" + std::to_string(page_size_);
    while (!url.empty()) {
      HttpRequest req;
      req.url = url;
      req.max_body = 16 << 20;
      BERTH_TRY(HttpResponse resp, client_->send(req, scope_, ctx));
      if (resp.status != 200) {
        return fail(client_->status_error(resp, ctx));
      }
      auto j = nlohmann::json::parse(resp.body, nullptr, false);
      if (!j.is_object()) {
        return fail(Errc::InvalidArgument, ctx + ": the registry's answer is not a JSON object");
      }
      if (j.contains("tags") && j["tags"].is_array()) {
        for (const auto& t : j["tags"]) {
          if (t.is_string()) {
            out.push_back(t.get<std::string>());
          }
        }
      }
      std::string next = parse_next_link(resp.header("link").value_or(""));
      url = next.empty() ? "" : resolve_url(resp.url, next);
    }
    return out;
  }

 private:
  std::string what(const std::string& object) const {
    return "registry " + ref_.registry + ": repository " + ref_.repository + ": " + object;
  }

  Reference ref_;
  std::shared_ptr<RegistryClient> client_;
  std::string scope_;
  int page_size_;
};

class RegistryDestination : public sdk::ImageDestination {
 public:
  RegistryDestination(Reference ref, std::shared_ptr<RegistryClient> client, int64_t chunk)
      : ref_(std::move(ref)),
        client_(std::move(client)),
        scope_("repository:" + ref_.repository + ":pull,push"),
        chunk_size_(chunk) {}

  Result<bool> has_blob(const sdk::BlobInfo& blob) override {
    std::string ctx = what("blob " + blob.digest);
    if (!valid_digest(blob.digest)) {
      return fail(Errc::InvalidArgument, ctx + ": not a valid digest");
    }
    BERTH_TRY(std::string base, client_->base_url(ctx));
    HttpRequest req;
    req.method = "HEAD";
    req.url = base + "/v2/" + ref_.repository + "/blobs/" + blob.digest;
    req.follow_redirects = true;
    BERTH_TRY(HttpResponse resp, client_->send(req, scope_, ctx));
    if (resp.status == 200) {
      return true;
    }
    if (resp.status == 404) {
      return false;
    }
    return fail(client_->status_error(resp, ctx));
  }

  Result<void> put_blob(const sdk::BlobInfo& blob, int fd) override {
    std::string ctx = what("upload blob " + blob.digest);
    if (!valid_digest(blob.digest)) {
      return fail(Errc::InvalidArgument, ctx + ": not a valid digest");
    }
    BERTH_TRY(std::string location, start_upload(ctx));
    // `location` follows the upload from request to request; on failure it is the one to cancel.
    auto r = upload(blob, fd, location, ctx);
    if (!r) {
      cancel_upload(location, ctx);
    }
    return r;
  }

  Result<bool> mount_blob(const sdk::BlobInfo& blob, const std::string& from) override {
    std::string ctx = what("mount blob " + blob.digest + " from " + from);
    if (!valid_digest(blob.digest) || !valid_repository(from)) {
      return fail(Errc::InvalidArgument, ctx + ": not a valid digest or repository");
    }
    BERTH_TRY(std::string base, client_->base_url(ctx));
    HttpRequest req;
    req.method = "POST";
    req.url = base + "/v2/" + ref_.repository + "/blobs/uploads/?mount=" + blob.digest +
              "&from=" + url_escape(from);
    BERTH_TRY(HttpResponse resp, client_->send(req, scope_ + " repository:" + from + ":pull", ctx));
    if (resp.status == 201) {
      return true;
    }
    if (resp.status == 202) {
      // The registry opened an ordinary upload instead: close it, the caller uploads.
      if (auto loc = resp.header("location")) {
        cancel_upload(resolve_url(resp.url, *loc), ctx);
      }
      return false;
    }
    return fail(client_->status_error(resp, ctx));
  }

  Result<void> put_manifest(const sdk::Manifest& m, const std::string& tag) override {
    std::string ref = tag;
    if (ref.empty()) {
      ref = m.digest.empty() ? sha256_digest(m.bytes) : m.digest;
    }
    std::string ctx = what("manifest " + ref);
    if (tag.empty() ? !valid_digest(ref) : !valid_tag(ref)) {
      return fail(Errc::InvalidArgument, ctx + ": not a valid tag or digest");
    }
    if (m.bytes.size() > kMaxManifestBytes) {
      return fail(Errc::InvalidArgument, ctx + ": " + std::to_string(m.bytes.size()) +
                                             " bytes; registries take manifests up to 4 MiB");
    }
    if (m.media_type.empty()) {
      return fail(Errc::InvalidArgument, ctx + ": the manifest's media type is not known");
    }
    BERTH_TRY(std::string base, client_->base_url(ctx));
    HttpRequest req;
    req.method = "PUT";
    req.url = base + "/v2/" + ref_.repository + "/manifests/" + ref;
    req.headers.push_back("Content-Type: " + m.media_type);
    req.body = m.bytes;
    BERTH_TRY(HttpResponse resp, client_->send(req, scope_, ctx));
    if (resp.status == 201 || resp.status == 200) {
      return {};
    }
    return fail(client_->status_error(resp, ctx));
  }

  Result<void> put_signatures(const std::string& manifest_digest,
                              const std::vector<std::string>& sigs) override {
    if (sigs.empty()) {
      return {};
    }
    return fail(Errc::NotSupported,
                what("manifest " + manifest_digest) +
                    ": pushing signatures to a registry is not supported yet (use sigstore "
                    "attachments or lookaside storage)");
  }

  Result<void> commit() override { return {}; }  // a registry has nothing to commit

 private:
  std::string what(const std::string& object) const {
    return "registry " + ref_.registry + ": repository " + ref_.repository + ": " + object;
  }

  Result<std::string> start_upload(const std::string& ctx) {
    BERTH_TRY(std::string base, client_->base_url(ctx));
    HttpRequest req;
    req.method = "POST";
    req.url = base + "/v2/" + ref_.repository + "/blobs/uploads/";
    BERTH_TRY(HttpResponse resp, client_->send(req, scope_, ctx));
    if (resp.status != 202) {
      return fail(client_->status_error(resp, ctx));
    }
    BERTH_TRY(std::string loc, next_location(resp, ctx));
    return loc;
  }

  Result<std::string> next_location(const HttpResponse& resp, const std::string& ctx) {
    auto loc = resp.header("location");
    if (!loc || loc->empty()) {
      return fail(Errc::InvalidArgument, ctx + ": the registry answered " +
                                             std::to_string(resp.status) +
                                             " without a Location for the upload");
    }
    return resolve_url(resp.url, *loc);
  }

  // One PUT with the whole blob (the first `prefix` bytes already read, the rest from fd).
  Result<void> put_monolithic(const sdk::BlobInfo& blob, std::string_view prefix, int fd,
                              const std::string& location, const std::string& ctx) {
    HttpRequest req;
    req.method = "PUT";
    req.url = with_query(location, "digest=" + url_escape(blob.digest));
    req.headers.push_back("Content-Type: application/octet-stream");
    req.body = prefix;
    req.body_fd = fd;
    req.body_size = blob.size;
    BERTH_TRY(HttpResponse resp, client_->send_once(req, scope_, ctx));
    if (!resp.transferred()) {
      return fail(client_->transfer_error(resp, ctx));
    }
    if (resp.status != 201) {
      return fail(client_->status_error(resp, ctx));
    }
    return {};
  }

  Result<void> upload(const sdk::BlobInfo& blob, int fd, std::string& location,
                      const std::string& ctx) {
    if (blob.size >= 0 && blob.size <= chunk_size_) {
      return put_monolithic(blob, {}, fd, location, ctx);
    }
    std::vector<char> buf(static_cast<size_t>(chunk_size_));
    int64_t pos = 0;
    while (true) {
      BERTH_TRY(size_t n, read_full(fd, buf.data(), buf.size()));
      if (n == 0) {
        break;
      }
      HttpRequest req;
      req.method = "PATCH";
      req.url = location;
      req.headers.push_back("Content-Type: application/octet-stream");
      req.headers.push_back("Content-Range: " + std::to_string(pos) + "-" +
                            std::to_string(pos + static_cast<int64_t>(n) - 1));
      req.body = std::string_view(buf.data(), n);
      // A chunk is not retried: the registry may have taken part of it.
      BERTH_TRY(HttpResponse resp, client_->send_once(req, scope_, ctx));
      if (!resp.transferred()) {
        return fail(client_->transfer_error(resp, ctx));
      }
      if (pos == 0 && (resp.status == 405 || resp.status == 501) && blob.size >= 0) {
        // The registry does not take chunks: send it all in one PUT instead.
        return put_monolithic(blob, req.body, fd, location, ctx);
      }
      if (resp.status != 202) {
        return fail(client_->status_error(resp, ctx));
      }
      BERTH_TRY(location, next_location(resp, ctx));
      pos += static_cast<int64_t>(n);
    }
    if (blob.size >= 0 && pos != blob.size) {
      return fail(Errc::InvalidArgument, ctx + ": the input held " + std::to_string(pos) +
                                             " bytes, the blob should have " +
                                             std::to_string(blob.size));
    }
    HttpRequest req;
    req.method = "PUT";
    req.url = with_query(location, "digest=" + url_escape(blob.digest));
    BERTH_TRY(HttpResponse resp, client_->send_once(req, scope_, ctx));
    if (!resp.transferred()) {
      return fail(client_->transfer_error(resp, ctx));
    }
    if (resp.status != 201) {
      return fail(client_->status_error(resp, ctx));
    }
    return {};
  }

  // Best effort: an abandoned upload is garbage-collected by the registry anyway.
  void cancel_upload(const std::string& location, const std::string& ctx) {
    if (location.empty()) {
      return;
    }
    HttpRequest req;
    req.method = "DELETE";
    req.url = location;
    (void)client_->send_once(req, scope_, ctx);
  }

  Reference ref_;
  std::shared_ptr<RegistryClient> client_;
  std::string scope_;
  int64_t chunk_size_;
};

}  // namespace

std::string sha256_digest(std::string_view bytes) {
  std::array<unsigned char, EVP_MAX_MD_SIZE> md{};
  unsigned int len = 0;
  if (EVP_Digest(bytes.data(), bytes.size(), md.data(), &len, EVP_sha256(), nullptr) != 1) {
    // Only fails when OpenSSL cannot allocate; there is no meaningful digest to return.
    std::abort();
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out = "sha256:";
  for (unsigned int i = 0; i < len; ++i) {
    out += kHex[md[i] >> 4];
    out += kHex[md[i] & 15];
  }
  return out;
}

Result<DockerTransportOptions> parse_options(const std::string& json) {
  DockerTransportOptions o;
  if (json.empty()) {
    return o;
  }
  auto j = nlohmann::json::parse(json, nullptr, false);
  if (!j.is_object()) {
    return fail(Errc::InvalidArgument, "docker transport options: not a JSON object: " + json);
  }
  for (const auto& [key, value] : j.items()) {
    if (key == "chunk_size") {
      if (!value.is_number_integer() || value.get<int64_t>() < 4096 ||
          value.get<int64_t>() > (int64_t{1} << 30)) {
        return fail(Errc::InvalidArgument,
                    "docker transport options: chunk_size must be a byte count between 4096 "
                    "and 1 GiB");
      }
      o.chunk_size = value.get<int64_t>();
    } else if (key == "page_size") {
      if (!value.is_number_integer() || value.get<int64_t>() < 1 || value.get<int64_t>() > 100000) {
        return fail(Errc::InvalidArgument,
                    "docker transport options: page_size must be between 1 and 100000");
      }
      o.page_size = value.get<int>();
    } else {
      return fail(Errc::InvalidArgument, "docker transport options: unknown option \"" + key +
                                             "\" (known: chunk_size, page_size)");
    }
  }
  return o;
}

Result<std::shared_ptr<RegistryClient>> DockerTransport::client(const std::string& registry,
                                                                const std::string& endpoint,
                                                                const sdk::TransportOptions& o) {
  std::string key = registry + '\n' + (o.tls_verify ? "1" : "0") + '\n' + o.cert_dir + '\n' +
                    o.user_agent + '\n' + std::to_string(o.timeout_seconds) + '\n' +
                    std::to_string(o.retries);
  if (o.credentials) {
    key += '\n' + o.credentials->username + '\n' + o.credentials->password + '\n' +
           o.credentials->identity_token;
  }
  std::lock_guard lock(mu_);
  if (auto it = clients_.find(key); it != clients_.end()) {
    return it->second;
  }
  BERTH_TRY(auto c, RegistryClient::create(registry, endpoint, o));
  if (!opts_.scheme_dir.empty()) {
    c->remember_scheme_in(opts_.scheme_dir);
  }
  std::shared_ptr<RegistryClient> shared(std::move(c));
  clients_.emplace(key, shared);
  return shared;
}

Result<std::unique_ptr<sdk::ImageSource>> DockerTransport::open_source(
    const std::string& reference, const sdk::TransportOptions& opts) {
  BERTH_TRY(Reference ref, parse_reference(reference));
  BERTH_TRY(auto c, client(ref.registry, ref.endpoint(), opts));
  return std::make_unique<RegistrySource>(std::move(ref), std::move(c), opts_.page_size);
}

Result<std::unique_ptr<sdk::ImageDestination>> DockerTransport::open_destination(
    const std::string& reference, const sdk::TransportOptions& opts) {
  BERTH_TRY(Reference ref, parse_reference(reference));
  BERTH_TRY(auto c, client(ref.registry, ref.endpoint(), opts));
  return std::make_unique<RegistryDestination>(std::move(ref), std::move(c), opts_.chunk_size);
}

Result<void> DockerTransport::check_login(const std::string& registry,
                                          const sdk::TransportOptions& opts) {
  BERTH_TRY(std::string host, parse_registry(registry));
  Reference probe{host, "x", "", ""};
  BERTH_TRY(auto c, client(host, probe.endpoint(), opts));
  return c->check_login();
}

Result<std::vector<std::string>> DockerTransport::search(const std::string& registry,
                                                         const std::string& term, int limit,
                                                         const sdk::TransportOptions& opts) {
  BERTH_TRY(std::string host, parse_registry(registry));
  Reference probe{host, "x", "", ""};
  BERTH_TRY(auto c, client(host, probe.endpoint(), opts));
  std::string ctx = "registry " + host + ": search catalog";
  BERTH_TRY(std::string base, c->base_url(ctx));
  std::string needle = lower(term);
  std::vector<std::string> out;
  std::string url = base + "/v2/_catalog?n=" + std::to_string(opts_.page_size);
  while (!url.empty()) {
    HttpRequest req;
    req.url = url;
    req.max_body = 16 << 20;
    BERTH_TRY(HttpResponse resp, c->send(req, "registry:catalog:*", ctx));
    if (resp.status != 200) {
      Error e = c->status_error(resp, ctx);
      if (resp.status == 404 || resp.status == 405) {
        return fail(std::move(e).hint("this registry does not offer its catalog"));
      }
      return fail(std::move(e));
    }
    auto j = nlohmann::json::parse(resp.body, nullptr, false);
    if (!j.is_object()) {
      return fail(Errc::InvalidArgument, ctx + ": the registry's answer is not a JSON object");
    }
    if (j.contains("repositories") && j["repositories"].is_array()) {
      for (const auto& r : j["repositories"]) {
        if (!r.is_string()) {
          continue;
        }
        std::string name = r.get<std::string>();
        if (needle.empty() || lower(name).find(needle) != std::string::npos) {
          out.push_back(name);
          if (limit > 0 && static_cast<int>(out.size()) >= limit) {
            return out;
          }
        }
      }
    }
    std::string next = parse_next_link(resp.header("link").value_or(""));
    url = next.empty() ? "" : resolve_url(resp.url, next);
  }
  return out;
}

Result<sdk::TransportPtr> create_docker_transport(const sdk::PluginContext& ctx) {
  BERTH_TRYV(init_curl());
  BERTH_TRY(DockerTransportOptions o, parse_options(ctx.options_json));
  if (!ctx.run_root.empty()) {
    o.scheme_dir = ctx.run_root + "/registries";
  }
  return std::make_unique<DockerTransport>(o);
}

}  // namespace berth::registry
