#pragma once
// OCI image manifest/index, Docker v2 schema 2 manifest/manifest list, and the image config:
// parsing with validation, and the media type conversions that save needs.
#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "berth/sdk/result.hpp"

namespace berth::image {

namespace media {
inline constexpr const char* kOciManifest = "application/vnd.oci.image.manifest.v1+json";
inline constexpr const char* kOciIndex = "application/vnd.oci.image.index.v1+json";
inline constexpr const char* kOciConfig = "application/vnd.oci.image.config.v1+json";
inline constexpr const char* kOciLayer = "application/vnd.oci.image.layer.v1.tar";
inline constexpr const char* kOciLayerGzip = "application/vnd.oci.image.layer.v1.tar+gzip";
inline constexpr const char* kOciLayerZstd = "application/vnd.oci.image.layer.v1.tar+zstd";
inline constexpr const char* kOciLayerNdTar =
    "application/vnd.oci.image.layer.nondistributable.v1.tar";
inline constexpr const char* kOciLayerNdGzip =
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip";
inline constexpr const char* kOciLayerNdZstd =
    "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd";
inline constexpr const char* kDockerManifest =
    "application/vnd.docker.distribution.manifest.v2+json";
inline constexpr const char* kDockerManifestList =
    "application/vnd.docker.distribution.manifest.list.v2+json";
inline constexpr const char* kDockerConfig = "application/vnd.docker.container.image.v1+json";
inline constexpr const char* kDockerLayer = "application/vnd.docker.image.rootfs.diff.tar";
inline constexpr const char* kDockerLayerGzip = "application/vnd.docker.image.rootfs.diff.tar.gzip";
inline constexpr const char* kDockerLayerZstd = "application/vnd.docker.image.rootfs.diff.tar.zstd";
inline constexpr const char* kDockerForeignLayer =
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip";
}  // namespace media

inline constexpr size_t kMaxManifestSize = 4 << 20;  // as containers/image: refuse bigger
inline constexpr size_t kMaxConfigSize = 8 << 20;

struct Platform {
  std::string os;
  std::string architecture;
  std::string variant;
};

struct Descriptor {
  std::string media_type;
  std::string digest;
  int64_t size = 0;
  std::map<std::string, std::string> annotations;
  std::vector<std::string> urls;
  Platform platform;  // for index entries
  bool has_platform = false;
};

enum class ManifestKind { OciManifest, OciIndex, DockerManifest, DockerList };

struct Manifest {
  ManifestKind kind = ManifestKind::OciManifest;
  std::string media_type;
  Descriptor config;
  std::vector<Descriptor> layers;
  std::map<std::string, std::string> annotations;
};

struct Index {
  ManifestKind kind = ManifestKind::OciIndex;
  std::string media_type;
  std::vector<Descriptor> manifests;
  std::map<std::string, std::string> annotations;
};

struct HistoryEntry {
  std::string created;
  std::string created_by;
  std::string author;
  std::string comment;
  bool empty_layer = false;
};

struct ImageConfig {
  nlohmann::json raw;  // the whole config, for inspect
  std::string architecture;
  std::string os;
  std::string variant;
  std::string created;  // RFC 3339 as written
  int64_t created_unix = 0;
  std::string author;
  std::vector<std::string> diff_ids;
  std::vector<HistoryEntry> history;
  nlohmann::json config;  // the "config" object (Env, Cmd, Labels, ...), {} when absent
};

enum class Compression { None, Gzip, Zstd };

// What kind of document the bytes are: from mediaType, or from its shape when mediaType is absent.
Result<ManifestKind> detect_manifest_kind(std::string_view bytes, std::string_view hint_type = {});
Result<Manifest> parse_manifest(std::string_view bytes);
Result<Index> parse_index(std::string_view bytes);
Result<ImageConfig> parse_config(std::string_view bytes);

bool is_known_layer_type(std::string_view media_type);
Compression layer_compression(std::string_view media_type);
// The layer media type of the other format family (for save): OCI <-> Docker v2s2.
std::string convert_layer_type(std::string_view media_type, bool to_oci);
std::string layer_type_for(Compression c, bool oci);

nlohmann::json descriptor_json(const Descriptor& d);
// Serialises a manifest in the given kind (OciManifest or DockerManifest), converting media types.
std::string serialize_manifest(const Manifest& m, ManifestKind kind);
// Seconds since the epoch of an RFC 3339 time, 0 when it does not parse.
int64_t parse_rfc3339(std::string_view s);
std::string format_rfc3339(int64_t unix_seconds);
// The chain IDs of a list of diff IDs (hex, without "sha256:").
std::vector<std::string> chain_ids(const std::vector<std::string>& diff_ids);
// The hex part of "sha256:<hex>".
std::string digest_hex(std::string_view digest);

}  // namespace berth::image
