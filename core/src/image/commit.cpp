// commit: base image + one layer diff -> a new image.
#include "berth/image/commit.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <ctime>
#include <optional>

#include "berth/image/image_service.hpp"
#include "berth/image/manifest.hpp"
#include "berth/image/reference.hpp"
#include "berth/util/digest.hpp"
#include "berth/util/fs.hpp"
#include "layer_pipeline.hpp"

namespace berth::image {

using nlohmann::json;

namespace {

// The diff as a seekable file: the layer id is its digest, known only after a first pass.
Result<UniqueFd> seekable(store::Store& st, int fd, int64_t& size) {
  struct stat sb {};
  if (::fstat(fd, &sb) != 0) {
    return fail_errno("stat", "the container diff");
  }
  if (S_ISREG(sb.st_mode) && ::lseek(fd, 0, SEEK_SET) == 0) {
    size = sb.st_size;
    int dup = ::fcntl(fd, F_DUPFD_CLOEXEC, 0);
    if (dup < 0) {
      return fail_errno("dup", "the container diff");
    }
    return UniqueFd(dup);
  }
  const std::string tmp_dir = st.options().graph_root + "/tmp";
  BERTH_TRYV(util::make_dirs(tmp_dir, 0700));
  UniqueFd spool(::open(tmp_dir.c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600));
  if (!spool) {
    return fail_errno("create temporary file in", tmp_dir);
  }
  std::vector<char> buf(1 << 20);
  size = 0;
  for (;;) {
    ssize_t n = ::read(fd, buf.data(), buf.size());
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n < 0) {
      return fail_errno("read", "the container diff");
    }
    if (n == 0) {
      break;
    }
    BERTH_TRYV(util::write_all(spool.get(), std::string_view(buf.data(), static_cast<size_t>(n)),
                               "the commit spool file"));
    size += n;
  }
  return spool;
}

}  // namespace

Result<std::string> commit_image(store::Store& st, const CommitOptions& opts) {
  BERTH_TRY(auto base_opt, st.image(opts.base_image_id));
  if (!base_opt) {
    return fail(Errc::NotFound, "commit: the container's image " + opts.base_image_id +
                                    " is gone (it was removed with --force)");
  }
  const store::ImageRecord& base = *base_opt;
  std::optional<Reference> ref;
  if (!opts.reference.empty()) {
    BERTH_TRY(auto r, parse_local_name(opts.reference));
    ref = with_default_tag(r);
  }
  BERTH_TRY(auto base_cfg, parse_config(base.config));
  BERTH_TRY(auto base_manifest, parse_manifest(base.manifest));

  int64_t size = 0;
  BERTH_TRY(auto diff, seekable(st, opts.diff_fd, size));
  BlobRange range{diff.get(), 0, size};
  BERTH_TRY(auto sums, digest_stream(range, -1));

  // The config: the base's, the container's settings, then the --change instructions.
  json cfg = base_cfg.raw.is_object() ? base_cfg.raw : json::object();
  json config = cfg.value("config", json::object());
  if (!config.is_object()) {
    config = json::object();
  }
  for (const auto& [k, v] : opts.config_overrides.items()) {
    config[k] = v;
  }
  for (const auto& c : opts.changes) {
    BERTH_TRYV(apply_change(config, c));
  }
  const std::string now = format_rfc3339(static_cast<int64_t>(std::time(nullptr)));
  cfg["config"] = config;
  cfg["created"] = now;
  if (!opts.author.empty()) {
    cfg["author"] = opts.author;
  } else {
    cfg.erase("author");
  }
  std::vector<std::string> diff_ids = base_cfg.diff_ids;
  diff_ids.push_back(sums.diff_id);
  cfg["rootfs"] = {{"type", "layers"}, {"diff_ids", diff_ids}};
  json history = cfg.value("history", json::array());
  if (!history.is_array()) {
    history = json::array();
  }
  json h{{"created", now}};
  if (!opts.created_by.empty()) {
    h["created_by"] = opts.created_by;
  }
  if (!opts.author.empty()) {
    h["author"] = opts.author;
  }
  if (!opts.message.empty()) {
    h["comment"] = opts.message;
  }
  history.push_back(std::move(h));
  cfg["history"] = std::move(history);
  if (opts.docker_format && !opts.message.empty()) {
    cfg["comment"] = opts.message;
  }
  const std::string config_bytes = cfg.dump();

  // The layer: its chain id from the base's diff ids plus this diff.
  const std::string chain = chain_ids(diff_ids).back();
  BERTH_TRY(auto existing, st.layer(chain));
  store::LayerRecord want;
  want.id = chain;
  want.parent = base.top_layer;
  want.diff_id = sums.diff_id;
  auto fill = [&](const std::string& lid) -> Result<store::LayerFill> {
    LayerInput in;
    in.blob = range;
    in.expected_diff_id = sums.diff_id;
    in.what = "commit layer " + sums.diff_id;
    return apply_layer(in, st.driver(), lid, st.layer_meta_path(lid, ".tar-split"));
  };
  BERTH_TRY(auto layer, st.create_layer(want, fill));
  const bool made_layer = !existing;

  Manifest m;
  m.kind = opts.docker_format ? ManifestKind::DockerManifest : ManifestKind::OciManifest;
  m.config = {opts.docker_format ? media::kDockerConfig : media::kOciConfig,
              util::sha256_digest(config_bytes),
              static_cast<int64_t>(config_bytes.size()),
              {},
              {},
              {},
              false};
  for (auto d : base_manifest.layers) {
    d.media_type = convert_layer_type(d.media_type, !opts.docker_format);
    m.layers.push_back(std::move(d));
  }
  m.layers.push_back({opts.docker_format ? media::kDockerLayer : media::kOciLayer,
                      sums.diff_id,
                      size,
                      {},
                      {},
                      {},
                      false});
  const std::string manifest = serialize_manifest(m, m.kind);

  store::ImageRecord img;
  img.id = digest_hex(util::sha256_digest(config_bytes));
  img.digest = util::sha256_digest(manifest);
  img.created = static_cast<int64_t>(std::time(nullptr));
  img.size = base.size + std::max<int64_t>(layer.uncompressed_size, 0);
  img.top_layer = chain;
  img.config = config_bytes;
  img.manifest = manifest;
  img.manifest_type = opts.docker_format ? media::kDockerManifest : media::kOciManifest;
  if (ref) {
    img.names.push_back(ref->string());
  }
  auto put = st.put_image(img);
  if (!put) {
    if (made_layer) {
      (void)st.remove_layer(chain);
    }
    return fail(std::move(put).error().wrap("commit: record the image"));
  }
  return img.id;
}

}  // namespace berth::image
