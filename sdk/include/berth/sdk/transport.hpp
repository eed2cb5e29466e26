#pragma once
// berth.transport.v1: a wire protocol or on-disk format that images are copied from and to.
// The core's copy pipeline owns digest checks, decompression, layer application and policy.
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "berth/sdk/plugin.hpp"
#include "berth/sdk/result.hpp"
#include "berth/sdk/unique_fd.hpp"

namespace berth::sdk {

struct BlobInfo {
  std::string digest;  // "sha256:..."
  int64_t size = -1;   // -1 when unknown
  std::string media_type;
};

struct Manifest {
  std::string bytes;
  std::string media_type;
  std::string digest;
};

struct Credentials {
  std::string username;
  std::string password;
  std::string identity_token;
};

struct TransportOptions {
  bool tls_verify = true;        // false, or a registry configured insecure: plain HTTP allowed
  std::string cert_dir;          // certs.d-style directory: *.crt CAs, *.cert + *.key client
  std::optional<Credentials> credentials;
  std::string user_agent = "berth";
  int timeout_seconds = 0;       // 0: the transport's default; stalls are errors, not hangs
  int retries = 3;               // on 429, 5xx and broken connections, with back-off
};

class BERTH_EXPORT ImageSource {
 public:
  virtual ~ImageSource() = default;
  // The manifest for the reference, or for `digest` when given (an index entry).
  virtual Result<Manifest> manifest(const std::string& digest) = 0;
  // Writes the blob's bytes from `offset` on to `out_fd` (a pipe the core's copy pipeline reads,
  // or a file); returns the number of bytes written. The transport resumes broken downloads
  // itself (Range) and starts no threads: the core calls this from its own worker.
  virtual Result<int64_t> fetch_blob(const BlobInfo& blob, int64_t offset, int out_fd) = 0;
  virtual Result<std::vector<std::string>> signatures(const std::string& manifest_digest) = 0;
  // The repository's tags (for --all-tags).
  virtual Result<std::vector<std::string>> tags() {
    return fail(Errc::NotSupported, "listing tags is not supported by this transport");
  }
};

class BERTH_EXPORT ImageDestination {
 public:
  virtual ~ImageDestination() = default;
  virtual Result<bool> has_blob(const BlobInfo& blob) = 0;
  // Reads the blob from `fd` until EOF; blob.digest and blob.size are known beforehand.
  virtual Result<void> put_blob(const BlobInfo& blob, int fd) = 0;
  // Asks the destination to reuse a blob it holds in `from_repository` (cross-repository mount);
  // false when it could not, and the blob must be uploaded.
  virtual Result<bool> mount_blob(const BlobInfo& /*blob*/, const std::string& /*from_repository*/) {
    return false;
  }
  virtual Result<void> put_manifest(const Manifest& manifest, const std::string& tag) = 0;
  virtual Result<void> put_signatures(const std::string& manifest_digest,
                                      const std::vector<std::string>& signatures) = 0;
  virtual Result<void> commit() = 0;
};

class BERTH_EXPORT Transport {
 public:
  static constexpr const char* kKind = BERTH_KIND_transport;
  virtual ~Transport() = default;
  virtual std::string name() const = 0;  // "docker"
  virtual Result<std::unique_ptr<ImageSource>> open_source(const std::string& reference,
                                                           const TransportOptions& opts) = 0;
  virtual Result<std::unique_ptr<ImageDestination>> open_destination(
      const std::string& reference, const TransportOptions& opts) = 0;
  // Checks that the registry answers and the credentials work (`berth login`).
  virtual Result<void> check_login(const std::string& registry, const TransportOptions& opts) {
    (void)registry;
    (void)opts;
    return fail(Errc::NotSupported, name() + ": login is not supported");
  }
  // Repository names matching `term` (`berth search`), from the registry's catalog.
  virtual Result<std::vector<std::string>> search(const std::string& registry,
                                                  const std::string& term, int limit,
                                                  const TransportOptions& opts) {
    (void)registry;
    (void)term;
    (void)limit;
    (void)opts;
    return fail(Errc::NotSupported, name() + ": search is not supported");
  }
};
using TransportPtr = std::unique_ptr<Transport>;
using TransportFactory = Result<TransportPtr>(const PluginContext&);

}  // namespace berth::sdk
