#pragma once
// Shared by the copy module's files.
#include <string>

#include "berth/copy/copy.hpp"
#include "berth/image/reference.hpp"
#include "berth/sdk/result.hpp"
#include "berth/sdk/transport.hpp"
#include "berth/store/store.hpp"

namespace berth::engine {
class Engine;
}

namespace berth::copy {

// The `docker` transport plugin, loaded once per process.
Result<sdk::Transport*> docker_transport(engine::Engine& engine);
// "amd64", "arm64", ... (Go's GOARCH) of this host.
std::string host_arch_name();
// Pushes a local image to the registry repository `dest` (tag and digest of `dest` ignored),
// tagging it `tag`, or by digest only when `tag` is empty. Returns the manifest written.
Result<sdk::Manifest> push_registry(engine::Engine& engine, store::Store& st,
                                    const store::ImageRecord& img, const image::Reference& dest,
                                    const std::string& tag, const PushOptions& opts);

// The tags of the repository `repo` ("host/name", no tag), asked of where registries.conf pulls
// it from (its last source: the repository itself, not a mirror).
Result<std::vector<std::string>> repository_tags(const config::RegistriesConfig& reg,
                                                 sdk::Transport& t, const std::string& repo,
                                                 const RegistryAccess& access);

}  // namespace berth::copy
