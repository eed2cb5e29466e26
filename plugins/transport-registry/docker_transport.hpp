#pragma once
// The `docker` transport: images in a registry that speaks the OCI distribution API.
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "berth/sdk/plugin.hpp"
#include "berth/sdk/transport.hpp"
#include "registry_client.hpp"

namespace berth::registry {

inline constexpr size_t kMaxManifestBytes = 4 << 20;
inline constexpr int64_t kDefaultChunkSize = 8 << 20;

struct DockerTransportOptions {
  // Blobs up to this size are uploaded in one PUT; larger ones in PATCH chunks of this size.
  int64_t chunk_size = kDefaultChunkSize;
  // Entries asked for per page of tags/list and _catalog (the registry may send fewer).
  int page_size = 1000;
  // Where the scheme found for insecure registries is remembered (the run root: gone at reboot);
  // empty: not remembered.
  std::string scheme_dir;
};

// Reads {"chunk_size": N (bytes), "page_size": N}; unknown keys are errors so typos are seen.
Result<DockerTransportOptions> parse_options(const std::string& json);

// "sha256:<hex>" of the bytes.
std::string sha256_digest(std::string_view bytes);

class DockerTransport : public sdk::Transport {
 public:
  explicit DockerTransport(DockerTransportOptions opts) : opts_(opts) {}
  std::string name() const override { return "docker"; }
  Result<std::unique_ptr<sdk::ImageSource>> open_source(const std::string& reference,
                                                        const sdk::TransportOptions& opts) override;
  Result<std::unique_ptr<sdk::ImageDestination>> open_destination(
      const std::string& reference, const sdk::TransportOptions& opts) override;
  Result<void> check_login(const std::string& registry, const sdk::TransportOptions& opts) override;
  Result<std::vector<std::string>> search(const std::string& registry, const std::string& term,
                                          int limit, const sdk::TransportOptions& opts) override;

 private:
  // One client per registry and set of options, so tokens are cached for the plugin instance.
  Result<std::shared_ptr<RegistryClient>> client(const std::string& registry,
                                                 const std::string& endpoint,
                                                 const sdk::TransportOptions& opts);

  DockerTransportOptions opts_;
  std::mutex mu_;
  std::map<std::string, std::shared_ptr<RegistryClient>> clients_;
};

Result<sdk::TransportPtr> create_docker_transport(const sdk::PluginContext& ctx);

}  // namespace berth::registry
