#include "berth/image/manifest.hpp"

#include <ctime>

#include "berth/util/digest.hpp"

namespace berth::image {

using nlohmann::json;

namespace {

Result<json> parse_json(std::string_view bytes, std::string_view what, size_t limit) {
  if (bytes.size() > limit) {
    return fail(Errc::InvalidArgument, std::string(what) + " is " + std::to_string(bytes.size()) +
                                           " bytes, more than the " + std::to_string(limit) +
                                           " allowed");
  }
  auto j = json::parse(bytes, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    return fail(Errc::InvalidArgument, std::string(what) + " is not a JSON object");
  }
  return j;
}

std::string str(const json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

std::map<std::string, std::string> str_map(const json& j, const char* key) {
  std::map<std::string, std::string> out;
  auto it = j.find(key);
  if (it != j.end() && it->is_object()) {
    for (auto& [k, v] : it->items()) {
      if (v.is_string()) {
        out[k] = v.get<std::string>();
      }
    }
  }
  return out;
}

Result<Descriptor> parse_descriptor(const json& j, std::string_view what) {
  if (!j.is_object()) {
    return fail(Errc::InvalidArgument, std::string(what) + ": descriptor is not an object");
  }
  Descriptor d;
  d.media_type = str(j, "mediaType");
  d.digest = str(j, "digest");
  if (auto v = util::validate_digest(d.digest); !v) {
    return fail(Errc::InvalidArgument, std::string(what) + ": invalid digest \"" + d.digest + "\"");
  }
  auto size = j.find("size");
  if (size == j.end() || !size->is_number_integer() || size->get<int64_t>() < 0) {
    return fail(Errc::InvalidArgument,
                std::string(what) + " " + d.digest + ": missing or bad size");
  }
  d.size = size->get<int64_t>();
  d.annotations = str_map(j, "annotations");
  if (auto u = j.find("urls"); u != j.end() && u->is_array()) {
    for (auto& x : *u) {
      if (x.is_string()) {
        d.urls.push_back(x.get<std::string>());
      }
    }
  }
  if (auto p = j.find("platform"); p != j.end() && p->is_object()) {
    d.has_platform = true;
    d.platform.os = str(*p, "os");
    d.platform.architecture = str(*p, "architecture");
    d.platform.variant = str(*p, "variant");
  }
  return d;
}

}  // namespace

std::string digest_hex(std::string_view digest) {
  auto colon = digest.find(':');
  return std::string(colon == std::string_view::npos ? digest : digest.substr(colon + 1));
}

Result<ManifestKind> detect_manifest_kind(std::string_view bytes, std::string_view hint_type) {
  BERTH_TRY(json j, parse_json(bytes, "manifest", kMaxManifestSize));
  std::string mt = str(j, "mediaType");
  if (mt.empty()) {
    mt = std::string(hint_type);
  }
  if (mt == media::kOciManifest) {
    return ManifestKind::OciManifest;
  }
  if (mt == media::kOciIndex) {
    return ManifestKind::OciIndex;
  }
  if (mt == media::kDockerManifest) {
    return ManifestKind::DockerManifest;
  }
  if (mt == media::kDockerManifestList) {
    return ManifestKind::DockerList;
  }
  if (!mt.empty()) {
    return fail(Errc::NotSupported, "unsupported manifest media type \"" + mt + "\"");
  }
  if (j.contains("manifests")) {
    return ManifestKind::OciIndex;
  }
  if (j.contains("config") && j.contains("layers")) {
    return ManifestKind::OciManifest;
  }
  return fail(Errc::InvalidArgument, "manifest: neither an image manifest nor an index");
}

bool is_known_layer_type(std::string_view t) {
  for (const char* k :
       {media::kOciLayer, media::kOciLayerGzip, media::kOciLayerZstd, media::kOciLayerNdTar,
        media::kOciLayerNdGzip, media::kOciLayerNdZstd, media::kDockerLayer,
        media::kDockerLayerGzip, media::kDockerLayerZstd, media::kDockerForeignLayer}) {
    if (t == k) {
      return true;
    }
  }
  return false;
}

Compression layer_compression(std::string_view t) {
  if (t.ends_with("gzip")) {
    return Compression::Gzip;
  }
  if (t.ends_with("zstd")) {
    return Compression::Zstd;
  }
  return Compression::None;
}

std::string layer_type_for(Compression c, bool oci) {
  switch (c) {
    case Compression::Gzip:
      return oci ? media::kOciLayerGzip : media::kDockerLayerGzip;
    case Compression::Zstd:
      return oci ? media::kOciLayerZstd : media::kDockerLayerZstd;
    case Compression::None:
      break;
  }
  return oci ? media::kOciLayer : media::kDockerLayer;
}

std::string convert_layer_type(std::string_view t, bool to_oci) {
  return layer_type_for(layer_compression(t), to_oci);
}

Result<Manifest> parse_manifest(std::string_view bytes) {
  BERTH_TRY(ManifestKind kind, detect_manifest_kind(bytes));
  if (kind != ManifestKind::OciManifest && kind != ManifestKind::DockerManifest) {
    return fail(Errc::InvalidArgument, "manifest: expected an image manifest, found an index");
  }
  BERTH_TRY(json j, parse_json(bytes, "manifest", kMaxManifestSize));
  auto sv = j.find("schemaVersion");
  if (sv == j.end() || !sv->is_number_integer() || sv->get<int>() != 2) {
    return fail(Errc::InvalidArgument, "manifest: schemaVersion must be 2");
  }
  Manifest m;
  m.kind = kind;
  m.media_type = kind == ManifestKind::OciManifest ? media::kOciManifest : media::kDockerManifest;
  if (!j.contains("config")) {
    return fail(Errc::InvalidArgument, "manifest: no config descriptor");
  }
  BERTH_TRY(m.config, parse_descriptor(j["config"], "manifest config"));
  if (m.config.size > static_cast<int64_t>(kMaxConfigSize)) {
    return fail(Errc::InvalidArgument,
                "manifest: config of " + std::to_string(m.config.size) + " bytes is too large");
  }
  auto layers = j.find("layers");
  if (layers == j.end() || !layers->is_array()) {
    return fail(Errc::InvalidArgument, "manifest: no layers array");
  }
  for (auto& l : *layers) {
    BERTH_TRY(Descriptor d, parse_descriptor(l, "manifest layer"));
    if (!is_known_layer_type(d.media_type)) {
      return fail(Errc::NotSupported, "manifest layer " + d.digest + ": unsupported media type \"" +
                                          d.media_type + "\"");
    }
    m.layers.push_back(std::move(d));
  }
  m.annotations = str_map(j, "annotations");
  return m;
}

Result<Index> parse_index(std::string_view bytes) {
  BERTH_TRY(ManifestKind kind, detect_manifest_kind(bytes));
  if (kind != ManifestKind::OciIndex && kind != ManifestKind::DockerList) {
    return fail(Errc::InvalidArgument, "index: expected an index, found an image manifest");
  }
  BERTH_TRY(json j, parse_json(bytes, "index", kMaxManifestSize));
  Index idx;
  idx.kind = kind;
  idx.media_type = kind == ManifestKind::OciIndex ? media::kOciIndex : media::kDockerManifestList;
  auto ms = j.find("manifests");
  if (ms == j.end() || !ms->is_array()) {
    return fail(Errc::InvalidArgument, "index: no manifests array");
  }
  for (auto& e : *ms) {
    BERTH_TRY(Descriptor d, parse_descriptor(e, "index entry"));
    idx.manifests.push_back(std::move(d));
  }
  idx.annotations = str_map(j, "annotations");
  return idx;
}

int64_t parse_rfc3339(std::string_view s) {
  std::tm tm{};
  std::string t(s.substr(0, 19));
  if (::strptime(t.c_str(), "%Y-%m-%dT%H:%M:%S", &tm) == nullptr) {
    return 0;
  }
  int64_t secs = static_cast<int64_t>(::timegm(&tm));
  // Timezone offset after the optional fraction.
  std::string_view rest = s.substr(std::min<size_t>(19, s.size()));
  if (!rest.empty() && rest.front() == '.') {
    size_t i = 1;
    while (i < rest.size() && std::isdigit(static_cast<unsigned char>(rest[i]))) {
      ++i;
    }
    rest = rest.substr(i);
  }
  if (rest.size() >= 6 && (rest[0] == '+' || rest[0] == '-')) {
    int h = std::atoi(std::string(rest.substr(1, 2)).c_str());
    int m = std::atoi(std::string(rest.substr(4, 2)).c_str());
    int64_t off = h * 3600 + m * 60;
    secs += rest[0] == '+' ? -off : off;
  }
  return secs;
}

std::string format_rfc3339(int64_t unix_seconds) {
  std::time_t t = static_cast<std::time_t>(unix_seconds);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[64];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

Result<ImageConfig> parse_config(std::string_view bytes) {
  BERTH_TRY(json j, parse_json(bytes, "image config", kMaxConfigSize));
  ImageConfig c;
  c.architecture = str(j, "architecture");
  c.os = str(j, "os");
  c.variant = str(j, "variant");
  c.created = str(j, "created");
  c.created_unix = parse_rfc3339(c.created);
  c.author = str(j, "author");
  auto rootfs = j.find("rootfs");
  if (rootfs == j.end() || !rootfs->is_object()) {
    return fail(Errc::InvalidArgument, "image config: no rootfs");
  }
  if (str(*rootfs, "type") != "layers") {
    return fail(Errc::InvalidArgument, "image config: rootfs.type must be \"layers\"");
  }
  auto ids = rootfs->find("diff_ids");
  if (ids == rootfs->end() || !ids->is_array()) {
    return fail(Errc::InvalidArgument, "image config: rootfs.diff_ids is missing");
  }
  for (auto& d : *ids) {
    if (!d.is_string() || !util::validate_digest(d.get<std::string>())) {
      return fail(Errc::InvalidArgument, "image config: rootfs.diff_ids holds an invalid digest");
    }
    c.diff_ids.push_back(d.get<std::string>());
  }
  if (auto h = j.find("history"); h != j.end() && h->is_array()) {
    for (auto& e : *h) {
      if (!e.is_object()) {
        continue;
      }
      HistoryEntry he;
      he.created = str(e, "created");
      he.created_by = str(e, "created_by");
      he.author = str(e, "author");
      he.comment = str(e, "comment");
      auto el = e.find("empty_layer");
      he.empty_layer = el != e.end() && el->is_boolean() && el->get<bool>();
      c.history.push_back(std::move(he));
    }
  }
  auto cfg = j.find("config");
  c.config = cfg != j.end() && cfg->is_object() ? *cfg : json::object();
  c.raw = std::move(j);
  return c;
}

json descriptor_json(const Descriptor& d) {
  json j = {{"mediaType", d.media_type}, {"digest", d.digest}, {"size", d.size}};
  if (!d.urls.empty()) {
    j["urls"] = d.urls;
  }
  if (!d.annotations.empty()) {
    j["annotations"] = d.annotations;
  }
  if (d.has_platform) {
    json p = {{"architecture", d.platform.architecture}, {"os", d.platform.os}};
    if (!d.platform.variant.empty()) {
      p["variant"] = d.platform.variant;
    }
    j["platform"] = p;
  }
  return j;
}

std::string serialize_manifest(const Manifest& m, ManifestKind kind) {
  bool oci = kind == ManifestKind::OciManifest;
  json j;
  j["schemaVersion"] = 2;
  j["mediaType"] = oci ? media::kOciManifest : media::kDockerManifest;
  Descriptor cfg = m.config;
  cfg.media_type = oci ? media::kOciConfig : media::kDockerConfig;
  j["config"] = descriptor_json(cfg);
  j["layers"] = json::array();
  for (auto l : m.layers) {
    l.media_type = convert_layer_type(l.media_type, oci);
    if (!oci) {
      l.annotations.clear();
    }
    j["layers"].push_back(descriptor_json(l));
  }
  if (oci && !m.annotations.empty()) {
    j["annotations"] = m.annotations;
  }
  return j.dump();
}

std::vector<std::string> chain_ids(const std::vector<std::string>& diff_ids) {
  std::vector<std::string> out;
  std::string prev;
  for (auto& d : diff_ids) {
    if (prev.empty()) {
      prev = d;
    } else {
      prev = util::sha256_digest(prev + " " + d);
    }
    out.push_back(digest_hex(prev));
  }
  return out;
}

}  // namespace berth::image
