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
  bool tls_verify = true;
  std::string cert_dir;
  std::optional<Credentials> credentials;
  std::string user_agent = "berth";
};

class BERTH_EXPORT ImageSource {
 public:
  virtual ~ImageSource() = default;
  // The manifest for the reference, or for `digest` when given (an index entry).
  virtual Result<Manifest> manifest(const std::string& digest) = 0;
  // A stream of the blob's bytes starting at `offset` (resumable downloads).
  virtual Result<UniqueFd> blob(const BlobInfo& blob, int64_t offset) = 0;
  virtual Result<std::vector<std::string>> signatures(const std::string& manifest_digest) = 0;
};

class BERTH_EXPORT ImageDestination {
 public:
  virtual ~ImageDestination() = default;
  virtual Result<bool> has_blob(const BlobInfo& blob) = 0;
  virtual Result<void> put_blob(const BlobInfo& blob, int fd) = 0;
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
};
using TransportPtr = std::unique_ptr<Transport>;
using TransportFactory = Result<TransportPtr>(const PluginContext&);

}  // namespace berth::sdk
