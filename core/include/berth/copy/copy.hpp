#pragma once
// The copy pipeline: images between registries (the `docker` transport plugin) or local
// layouts and the local store. Policy lives here: short-name resolution, mirrors and blocked
// registries (registries.conf), TLS and certs.d, credentials (auth.json), digest checks.
//
// Pull streams each missing layer transport.fetch_blob -> pipe -> image::apply_layer (blob
// digest, inflate, diff ID, apply) with no temporary file, layers in parallel on a bounded pool of
// worker threads (containers.conf image_parallel_copies, default 6) when the storage driver's
// layers hold only their own changes (overlay); one after another otherwise (vfs). Layers already
// in the store (same chain ID) and images already present (same config digest) are reused without
// fetching. A failed pull removes the layers it made; a killed one leaves layers marked incomplete
// that the next store open removes.
#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "berth/config/config.hpp"
#include "berth/sdk/result.hpp"
#include "berth/sdk/transport.hpp"

namespace berth::engine {
class Engine;
}

namespace berth::copy {

// One line of progress ("Copying blob 3f4ca61aafcd done"); Podman writes these to stderr.
using ProgressFn = std::function<void(const std::string& line)>;
// Bytes of a blob received so far (`total` -1 when unknown), called from the fetching threads as
// data arrives; for progress bars on a terminal.
using BlobProgressFn = std::function<void(const std::string& digest, int64_t done, int64_t total)>;

// How to reach registries; every field is optional and defaults as Podman does.
struct RegistryAccess {
  std::optional<bool> tls_verify;  // --tls-verify; unset: false only for insecure registries
  std::string cert_dir;            // --cert-dir; unset: certs.d lookup per host
  std::string authfile;            // --authfile
  std::optional<sdk::Credentials> credentials;  // --creds; unset: from auth.json
};

struct PullOptions {
  RegistryAccess access;
  std::string os;       // --os; "" = this host's (linux)
  std::string arch;     // --arch; "" = this host's
  std::string variant;  // --variant
  bool all_tags = false;
  // Workers fetching layers at once; 0 = containers.conf image_parallel_copies, else 6.
  int parallel = 0;
  // Short names with short-name-mode enforcing and several candidates: ask on the terminal only
  // when this is true (stdin and stdout are a TTY); an error listing the candidates otherwise.
  bool can_prompt = false;
  // Asks the user to choose among candidates; returns the chosen index.
  std::function<Result<size_t>(const std::vector<std::string>& candidates)> prompt;
  ProgressFn progress;
  BlobProgressFn blob_progress;
};

struct PulledImage {
  std::string id;             // config digest hex
  std::string name;           // "127.0.0.1:5000/bb:latest"
  std::string digest;         // the manifest digest recorded ("sha256:...")
  int64_t fetched_blobs = 0;  // layer blobs downloaded (0 for a warm pull)
};

// Pulls `name` (a fully qualified or short name, with tag or digest; an optional "docker://"
// prefix) into the engine's store. With all_tags, every tag of the repository.
Result<std::vector<PulledImage>> pull(engine::Engine& engine, const std::string& name,
                                      const PullOptions& opts);

// A remote image as `skopeo inspect` shows it. The manifest list (when the reference names one)
// is resolved to this host's platform (or opts.os/arch/variant) for everything but `raw`.
struct RemoteImage {
  std::string name;               // "127.0.0.1:5000/bb" (no tag)
  std::string digest;             // of the top manifest (the list's, when a list)
  std::string raw;                // the top manifest's bytes, exactly as served
  std::string media_type;         // of the top manifest
  std::string manifest;           // the platform manifest's bytes
  std::string config;             // its config blob
  std::vector<std::string> tags;  // the repository's tags ([] when the registry refuses)
};
// `name`: "docker://HOST/REPO[:TAG|@DIGEST]" or a name resolved as `pull` does (first candidate
// that answers). Nothing is stored.
Result<RemoteImage> inspect_remote(engine::Engine& engine, const std::string& name,
                                   const PullOptions& opts);
// skopeo inspect's JSON object (Name, Digest, RepoTags, Created, DockerVersion, Labels,
// Architecture, Os, Layers, LayersData, Env) of a remote image.
Result<nlohmann::json> remote_inspect_json(const RemoteImage& img);

// ---- short names

// The fully qualified references to try for `name`, in order (registries.conf: an alias, else
// each unqualified-search registry). A fully qualified name is returned as is. With
// short-name-mode enforcing and several candidates, `prompt` chooses when `can_prompt`; without a
// TTY it is an error listing the candidates. No tag or digest given: ":latest" is added.
Result<std::vector<std::string>> resolve_name(
    const config::RegistriesConfig& reg, const std::string& name, bool can_prompt,
    const std::function<Result<size_t>(const std::vector<std::string>&)>& prompt);

// Transport options for a reference: TLS (flag, registries.conf insecure), certs.d directory
// (--cert-dir, /etc/containers/certs.d/<host>, /etc/docker/certs.d/<host>,
// ~/.config/containers/certs.d/<host>), credentials (--creds, auth.json).
Result<sdk::TransportOptions> transport_options(const config::RegistriesConfig& reg,
                                                const std::string& reference,
                                                const RegistryAccess& access, bool insecure);

// ---- push

enum class ManifestFormat { Oci, V2s2 };
enum class CompressionFormat { Gzip, Zstd };

struct PushOptions {
  RegistryAccess access;
  std::optional<ManifestFormat> format;  // --format; unset: OCI (v2s2 kept for v2s2 images)
  CompressionFormat compression = CompressionFormat::Gzip;
  int compression_level = -1;  // -1: gzip 6 / zstd 3
  bool remove_signatures = false;
  ProgressFn progress;
};

struct PushResult {
  std::string digest;  // of the manifest written
  std::string destination;
};

// Pushes a local image to `destination`: "[docker://]host/repo[:tag]" (default: the image's own
// name), or a local layout "oci:DIR[:tag]", "oci-archive:FILE[:tag]", "docker-archive:FILE[:tag]",
// "dir:DIR". Registry pushes skip blobs the destination has (has_blob, then a cross-repository
// mount from the image's source repository); layers are regenerated exactly from the store
// (tar-split) and compressed once.
Result<PushResult> push(engine::Engine& engine, const std::string& image,
                        const std::string& destination, const PushOptions& opts);

// ---- login / logout / search

struct LoginOptions {
  RegistryAccess access;  // credentials must be set
  bool store = true;      // false: only check them (the Docker API's /auth: clients keep them)
};
// Checks the credentials against `registry` (transport.check_login) and stores them.
Result<void> login(engine::Engine& engine, const std::string& registry, const LoginOptions& opts);
// The user name stored for `registry`; NotFound when not logged in.
Result<std::string> login_user(const std::string& registry, const std::string& authfile);
// Removes the credentials of `registry` (or of all with all=true).
Result<void> logout(const std::string& registry, bool all, const std::string& authfile);

struct SearchOptions {
  RegistryAccess access;
  int limit = 25;
};
struct SearchHit {
  std::string index;  // "127.0.0.1:5000"
  std::string name;   // "127.0.0.1:5000/bb"
  std::string tag;    // search_tags() only
};
// `term` with a registry prefix ("127.0.0.1:5000/bb") searches that registry's catalog; without
// one, each unqualified-search registry.
Result<std::vector<SearchHit>> search(engine::Engine& engine, const std::string& term,
                                      const SearchOptions& opts);
// `search --list-tags`: the tags of the repository `term` names (up to opts.limit), from its
// registry, or for a short name from the first unqualified-search registry that answers.
Result<std::vector<SearchHit>> search_tags(engine::Engine& engine, const std::string& term,
                                           const SearchOptions& opts);

// ---- manifest lists (`berth manifest ...`)
//
// A list is kept in the store directory as <graphroot>/manifest-lists/<sha256 of its name>.json:
// {"name": "localhost/list:latest", "index": <OCI image index>, "entries": {"<digest>":
// {"image": "<local image id>"} | {"source": "<registry reference the manifest came from>",
// "manifest": "<its bytes>", "media_type": "..."}}}. Lists are not images: `images` and image
// checks do not see them; the file is written atomically under the name.
struct ManifestAddOptions {
  RegistryAccess access;
  std::string os, arch, variant;  // override the entry's platform
  bool all = false;               // a remote index: add all its manifests
};
// Creates an empty list (or with `images` added); Conflict when the name is taken.
Result<std::string> manifest_create(engine::Engine& engine, const std::string& list,
                                    const std::vector<std::string>& images,
                                    const ManifestAddOptions& opts);
// Adds a local image (by name or id) or a registry image ("docker://..." or not present
// locally). Returns the digest added.
Result<std::string> manifest_add(engine::Engine& engine, const std::string& list,
                                 const std::string& image, const ManifestAddOptions& opts);
// Removes the entry with `digest` from the list.
Result<void> manifest_remove_entry(engine::Engine& engine, const std::string& list,
                                   const std::string& digest);
// The list's OCI index.
Result<nlohmann::json> manifest_inspect(engine::Engine& engine, const std::string& list);
// Pushes each entry (local images by digest into the destination repository; registry entries
// are mounted from their source repository on the same registry), then the index by tag.
Result<PushResult> manifest_push(engine::Engine& engine, const std::string& list,
                                 const std::string& destination, const PushOptions& opts);
Result<void> manifest_rm(engine::Engine& engine, const std::string& list);
bool manifest_exists(engine::Engine& engine, const std::string& list);

// The host of a registry or image reference ("docker://127.0.0.1:5000/x:y" -> "127.0.0.1:5000").
std::string registry_host(const std::string& reference);
// "os/arch[/variant]" of this host, Go style ("linux/amd64").
std::string host_architecture();

}  // namespace berth::copy
