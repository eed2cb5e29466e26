// push: a local image to a registry (the docker transport) or to a local layout (image::save).
#include <fcntl.h>
#include <isa-l/igzip_lib.h>
#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>
#include <zstd.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <mutex>
#include <optional>
#include <thread>

#include "berth/copy/copy.hpp"
#include "berth/engine/engine.hpp"
#include "berth/events/events.hpp"
#include "berth/image/image_service.hpp"
#include "berth/image/manifest.hpp"
#include "berth/image/reference.hpp"
#include "berth/util/digest.hpp"
#include "berth/util/fs.hpp"
#include "copy_internal.hpp"
#include "image/layer_pipeline.hpp"

namespace berth::copy {

namespace {

constexpr size_t kBuf = 1 << 20;

std::string short_hex(const std::string& digest) {
  return image::digest_hex(digest).substr(0, 12);
}

struct Blob {
  UniqueFd fd;
  std::string digest;
  int64_t size = 0;
};

// Compresses everything read from `in` into an unlinked file under `dir`, hashing as it goes.
class Compressor {
 public:
  Compressor(CompressionFormat f, int level) : format_(f), level_(level) {}

  Result<Blob> run(int in, const std::string& dir, const std::string& what) {
    Blob b;
    b.fd = UniqueFd(::open(dir.c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600));
    if (!b.fd) {
      return fail_errno("create a temporary file in", dir);
    }
    out_fd_ = b.fd.get();
    what_ = what;
    if (format_ == CompressionFormat::Zstd) {
      BERTH_TRYV(zstd(in));
    } else {
      BERTH_TRYV(gzip(in));
    }
    b.digest = hash_.digest();
    b.size = size_;
    if (::lseek(b.fd.get(), 0, SEEK_SET) != 0) {
      return fail_errno("seek", what);
    }
    return b;
  }

 private:
  Result<size_t> read_some(int in, char* buf, size_t n) {
    for (;;) {
      ssize_t r = ::read(in, buf, n);
      if (r < 0 && errno == EINTR) {
        continue;
      }
      if (r < 0) {
        return fail_errno("read layer tar of", what_);
      }
      return static_cast<size_t>(r);
    }
  }
  Result<void> emit(const char* p, size_t n) {
    hash_.update(p, n);
    size_ += static_cast<int64_t>(n);
    return util::write_all(out_fd_, std::string_view(p, n), "compressed " + what_);
  }
  Result<void> gzip(int in) {
    isal_zstream s;
    isal_deflate_init(&s);
    s.gzip_flag = IGZIP_GZIP;
    int lvl = level_ < 0 ? 1 : level_;
    std::vector<uint8_t> lbuf;
    if (lvl <= 0) {
      s.level = 0;
    } else if (lvl == 1) {
      s.level = 1;
      lbuf.resize(ISAL_DEF_LVL1_DEFAULT);
    } else if (lvl <= 4) {
      s.level = 2;
      lbuf.resize(ISAL_DEF_LVL2_DEFAULT);
    } else {
      s.level = 3;
      lbuf.resize(ISAL_DEF_LVL3_DEFAULT);
    }
    s.level_buf = lbuf.empty() ? nullptr : lbuf.data();
    s.level_buf_size = static_cast<uint32_t>(lbuf.size());
    std::vector<char> ibuf(kBuf), obuf(kBuf);
    bool eof = false;
    while (s.internal_state.state != ZSTATE_END) {
      if (s.avail_in == 0 && !eof) {
        BERTH_TRY(size_t n, read_some(in, ibuf.data(), ibuf.size()));
        eof = n == 0;
        s.next_in = reinterpret_cast<uint8_t*>(ibuf.data());
        s.avail_in = static_cast<uint32_t>(n);
        s.end_of_stream = eof ? 1 : 0;
      }
      s.next_out = reinterpret_cast<uint8_t*>(obuf.data());
      s.avail_out = static_cast<uint32_t>(obuf.size());
      int rc = isal_deflate(&s);
      if (rc != COMP_OK) {
        return fail(Errc::Internal, "gzip " + what_ + ": igzip error " + std::to_string(rc));
      }
      BERTH_TRYV(emit(obuf.data(), obuf.size() - s.avail_out));
      if (s.avail_in == 0 && !eof) {
        continue;
      }
    }
    return {};
  }
  Result<void> zstd(int in) {
    std::unique_ptr<ZSTD_CCtx, decltype(&ZSTD_freeCCtx)> cctx(ZSTD_createCCtx(), ZSTD_freeCCtx);
    ZSTD_CCtx_setParameter(cctx.get(), ZSTD_c_compressionLevel, level_ < 0 ? 3 : level_);
    std::vector<char> ibuf(kBuf), obuf(ZSTD_CStreamOutSize());
    for (;;) {
      BERTH_TRY(size_t n, read_some(in, ibuf.data(), ibuf.size()));
      ZSTD_EndDirective mode = n == 0 ? ZSTD_e_end : ZSTD_e_continue;
      ZSTD_inBuffer ib{ibuf.data(), n, 0};
      for (;;) {
        ZSTD_outBuffer ob{obuf.data(), obuf.size(), 0};
        size_t left = ZSTD_compressStream2(cctx.get(), &ob, &ib, mode);
        if (ZSTD_isError(left)) {
          return fail(Errc::Internal, "zstd " + what_ + ": " + ZSTD_getErrorName(left));
        }
        BERTH_TRYV(emit(obuf.data(), ob.pos));
        if (mode == ZSTD_e_end ? left == 0 : ib.pos == ib.size) {
          break;
        }
      }
      if (n == 0) {
        return {};
      }
    }
  }

  CompressionFormat format_;
  int level_;
  int out_fd_ = -1;
  std::string what_;
  util::Sha256 hash_;
  int64_t size_ = 0;
};

// The layer's exact tar (regenerated from tar-split), compressed into a temporary file.
Result<Blob> compress_layer(store::Store& st, const store::LayerRecord& l, const PushOptions& o,
                            const std::string& what) {
  int p[2];
  if (::pipe2(p, O_CLOEXEC) != 0) {
    return fail_errno("pipe2", what);
  }
  UniqueFd rd(p[0]);
  UniqueFd wr(p[1]);
  Result<void> written;
  std::thread writer([&] {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &set, nullptr);  // a reader that stops gives EPIPE, not death
    written = image::write_layer_tar(st, l, wr.get());
    wr.reset();
  });
  Compressor c(o.compression, o.compression_level);
  auto blob = c.run(rd.get(), st.options().graph_root, what);
  rd.reset();
  writer.join();
  if (!written) {
    return fail(std::move(written).error().wrap(what));
  }
  return blob;
}

Result<std::vector<store::LayerRecord>> layers_of(store::Store& st, const store::ImageRecord& img) {
  std::vector<store::LayerRecord> out;
  for (std::string id = img.top_layer; !id.empty();) {
    BERTH_TRY(auto l, st.layer(id));
    if (!l) {
      return fail(Errc::NotFound, "image " + img.id + ": layer " + id +
                                      " is missing; run "
                                      "`berth system check --repair` and pull the image again");
    }
    id = l->parent;
    out.push_back(std::move(*l));
  }
  std::reverse(out.begin(), out.end());
  return out;
}

Result<PushResult> push_local(store::Store& st, const std::string& image, const std::string& dest) {
  auto colon = dest.find(':');
  std::string kind = dest.substr(0, colon);
  std::string rest = dest.substr(colon + 1);
  image::SaveOptions so;
  std::string tag;
  if (kind == "oci" || kind == "oci-archive" || kind == "docker-archive") {
    // PATH[:tag]; a path itself may not hold ':' here.
    auto c2 = rest.find(':');
    if (c2 != std::string::npos) {
      tag = rest.substr(c2 + 1);
      rest = rest.substr(0, c2);
    }
  }
  if (kind == "oci") {
    so.format = image::SaveFormat::OciDir;
  } else if (kind == "oci-archive") {
    so.format = image::SaveFormat::OciArchive;
  } else if (kind == "docker-archive") {
    so.format = image::SaveFormat::DockerArchive;
  } else if (kind == "dir") {
    so.format = image::SaveFormat::DockerDir;
  } else {
    return fail(Errc::InvalidArgument, "unknown transport \"" + kind + "\" in \"" + dest +
                                           "\" (supported: docker, oci, oci-archive, "
                                           "docker-archive, dir)");
  }
  so.path = rest;
  BERTH_TRY(auto img, image::lookup_image(st, image));
  if (!tag.empty()) {
    // The name written is one the image holds: the given name when it matches, else an error.
    bool held = false;
    for (const auto& n : img.names) {
      auto r = image::parse_reference(n);
      if (n == tag || (r && (r->tag == tag || r->familiar() == tag))) {
        so.images = {n};
        held = true;
        break;
      }
    }
    if (!held) {
      return fail(Errc::NotSupported, dest + ": the image has no name with tag \"" + tag +
                                          "\"; tag it first with `berth tag`");
    }
  } else {
    so.images = {image};
  }
  BERTH_TRYV(image::save(st, so));
  return PushResult{img.digest, dest};
}

}  // namespace

namespace {

Result<PushResult> push_image(engine::Engine& engine, const std::string& image_name,
                              const std::string& destination_in, const PushOptions& opts) {
  BERTH_TRY(store::Store * st, engine.store());
  std::string destination = destination_in.empty() ? image_name : destination_in;
  if (!destination.starts_with("docker://")) {
    auto colon = destination.find(':');
    auto slash = destination.find('/');
    std::string head = destination.substr(0, colon);
    if (colon != std::string::npos && (slash == std::string::npos || colon < slash) &&
        (head == "oci" || head == "oci-archive" || head == "docker-archive" || head == "dir")) {
      return push_local(*st, image_name, destination);
    }
  } else {
    destination = destination.substr(9);
  }
  BERTH_TRY(auto img, image::lookup_image(*st, image_name));
  if (destination_in.empty() && !img.names.empty()) {
    bool found = false;
    for (const auto& n : img.names) {
      if (n == image_name || n.ends_with("/" + image_name)) {
        destination = n;
        found = true;
      }
    }
    if (!found) {
      destination = img.names.front();
    }
  }
  BERTH_TRY(image::Reference dref, image::parse_normalized(destination));
  if (!dref.digest.empty()) {
    return fail(Errc::InvalidArgument,
                "push " + destination + ": cannot push to a digest; give a tag");
  }
  dref = image::with_default_tag(dref);
  std::string dest = dref.string();
  BERTH_TRY(auto m, push_registry(engine, *st, img, dref, dref.tag, opts));
  return PushResult{m.digest, dest};
}

}  // namespace

Result<PushResult> push(engine::Engine& engine, const std::string& image_name,
                        const std::string& destination_in, const PushOptions& opts) {
  BERTH_TRY(auto res, push_image(engine, image_name, destination_in, opts));
  // Podman's image "push" event: the image's id and where it went.
  events::Event e;
  e.type = std::string(events::type::kImage);
  e.status = "push";
  if (auto st = engine.store(); st) {
    if (auto img = image::lookup_image(**st, image_name); img) {
      e.id = img->id;
    }
  }
  e.name = destination_in.empty() ? image_name : destination_in;
  events::emit_or_warn(engine.config(), e);
  return res;
}

Result<sdk::Manifest> push_registry(engine::Engine& engine, store::Store& st_ref,
                                    const store::ImageRecord& img, const image::Reference& dref,
                                    const std::string& tag, const PushOptions& opts) {
  store::Store* st = &st_ref;
  std::string dest = dref.name() + (tag.empty() ? "" : ":" + tag);
  std::string what = "push " + dest;
  const auto& reg = engine.config().registries;
  const config::Registry* r = reg.find_registry(dest);
  if (r && r->blocked) {
    return fail(Errc::PermissionDenied, what + ": registry is blocked in registries.conf");
  }
  BERTH_TRY(auto topts, transport_options(reg, dest, opts.access, r && r->insecure));
  BERTH_TRY(sdk::Transport * t, docker_transport(engine));
  auto dst_r = t->open_destination(dest, topts);
  if (!dst_r) {
    return fail(std::move(dst_r).error().wrap(what));
  }
  auto& dst = **dst_r;
  BERTH_TRY(auto layers, layers_of(*st, img));
  auto orig = image::parse_manifest(img.manifest);
  bool orig_ok = orig && orig->layers.size() == layers.size();
  bool orig_oci = orig_ok && orig->kind == image::ManifestKind::OciManifest;
  bool to_oci = opts.format ? *opts.format == ManifestFormat::Oci
                            : !(orig_ok && orig->kind == image::ManifestKind::DockerManifest);
  // Repositories on the destination's registry that hold this image: blobs are mounted from them.
  std::vector<std::string> mount_from;
  for (const auto& d : img.digests) {
    auto rr = image::parse_reference(d);
    if (rr && rr->domain == dref.domain && rr->path != dref.path) {
      mount_from.push_back(rr->path);
    }
  }
  std::mutex progress_mu;  // layers report from several threads
  auto progress = [&](const std::string& s) {
    if (opts.progress) {
      std::lock_guard lock(progress_mu);
      opts.progress(s);
    }
  };
  progress("Getting image source signatures");
  image::Manifest m;
  m.kind = to_oci ? image::ManifestKind::OciManifest : image::ManifestKind::DockerManifest;
  const image::Compression want_compression = opts.compression == CompressionFormat::Zstd
                                                  ? image::Compression::Zstd
                                                  : image::Compression::Gzip;
  // One layer: the blob the image came with when the destination has it or can mount it, else
  // the layer compressed anew and uploaded unless the destination has that. `reused` says which.
  std::vector<char> reused(layers.size(), 0);
  // The destination is called by one thread at a time: the transport interface does not promise
  // more (a destination may keep per-upload state). Compression, the CPU-bound part, runs in
  // parallel; uploads follow one another.
  std::mutex dst_mu;
  auto push_layer = [&](size_t i) -> Result<image::Descriptor> {
    const auto& l = layers[i];
    std::string lwhat = what + ": layer " + std::to_string(i + 1) + "/" +
                        std::to_string(layers.size()) + " (" + l.diff_id + ")";
    if (orig_ok && !l.compressed_digest.empty() && orig->layers[i].digest == l.compressed_digest &&
        image::layer_compression(orig->layers[i].media_type) == want_compression) {
      sdk::BlobInfo bi{l.compressed_digest, l.compressed_size, orig->layers[i].media_type};
      std::unique_lock lock(dst_mu);
      auto has = dst.has_blob(bi);
      if (!has) {
        return fail(std::move(has).error().wrap(lwhat));
      }
      bool held = *has;
      for (size_t k = 0; !held && k < mount_from.size(); ++k) {
        auto mounted = dst.mount_blob(bi, mount_from[k]);
        held = mounted && *mounted;
      }
      lock.unlock();
      if (held) {
        reused[i] = 1;
        image::Descriptor d = orig->layers[i];
        d.media_type = image::convert_layer_type(d.media_type, to_oci);
        progress("Copying blob " + short_hex(l.compressed_digest) + " skipped: already exists");
        return d;
      }
    }
    BERTH_TRY(Blob b, compress_layer(*st, l, opts, lwhat));
    sdk::BlobInfo bi{b.digest, b.size, image::layer_type_for(want_compression, to_oci)};
    std::lock_guard lock(dst_mu);
    auto has = dst.has_blob(bi);
    if (!has) {
      return fail(std::move(has).error().wrap(lwhat));
    }
    if (!*has) {
      auto put = dst.put_blob(bi, b.fd.get());
      if (!put) {
        return fail(std::move(put).error().wrap(lwhat));
      }
    }
    progress("Copying blob " + short_hex(b.digest) + " done");
    return image::Descriptor{bi.media_type, b.digest, b.size, {}, {}, {}, false};
  };
  // Layers at once on a pool as a pull does (image_parallel_copies, default 6). After the first
  // failure the workers take no new layer; the first error in layer order is the one reported.
  const int64_t configured = engine.config().containers.engine.image_parallel_copies;
  const size_t workers =
      std::min(layers.size(), configured > 0 ? static_cast<size_t>(configured) : size_t{6});
  std::vector<std::optional<Result<image::Descriptor>>> done(layers.size());
  std::atomic<size_t> next{0};
  std::atomic<bool> failed{false};
  auto work = [&] {
    for (size_t i; !failed && (i = next++) < layers.size();) {
      done[i] = push_layer(i);
      if (!*done[i]) {
        failed = true;
      }
    }
  };
  if (workers > 1) {
    std::vector<std::jthread> pool;
    for (size_t w = 0; w < workers; ++w) {
      pool.emplace_back(work);
    }
  } else {
    work();
  }
  bool all_original =
      orig_ok && (to_oci == orig_oci) && opts.compression == CompressionFormat::Gzip;
  for (size_t i = 0; i < layers.size(); ++i) {
    if (!done[i]) {
      continue;  // not started after an earlier failure; that failure is reported below
    }
    if (!*done[i]) {
      return fail(std::move(*done[i]).error());
    }
  }
  for (size_t i = 0; i < layers.size(); ++i) {
    all_original = all_original && reused[i];
    m.layers.push_back(**done[i]);
  }
  // Config.
  std::string cfg_digest = "sha256:" + img.id;
  sdk::BlobInfo cbi{cfg_digest, static_cast<int64_t>(img.config.size()),
                    to_oci ? image::media::kOciConfig : image::media::kDockerConfig};
  auto has_cfg = dst.has_blob(cbi);
  if (!has_cfg) {
    return fail(std::move(has_cfg).error().wrap(what + ": config"));
  }
  if (!*has_cfg) {
    UniqueFd fd(::memfd_create("berth-config", MFD_CLOEXEC));
    if (!fd) {
      return fail_errno("memfd_create", what + ": config");
    }
    BERTH_TRYV(util::write_all(fd.get(), img.config, "config"));
    if (::lseek(fd.get(), 0, SEEK_SET) != 0) {
      return fail_errno("seek", what + ": config");
    }
    auto put = dst.put_blob(cbi, fd.get());
    if (!put) {
      return fail(std::move(put).error().wrap(what + ": config"));
    }
  }
  progress("Copying config " + img.id.substr(0, 12) + " done");
  progress("Writing manifest to image destination");
  sdk::Manifest out;
  if (all_original) {
    out.bytes = img.manifest;  // same bytes, same digest as the image came with
    out.media_type = orig->media_type.empty()
                         ? (orig_oci ? image::media::kOciManifest : image::media::kDockerManifest)
                         : orig->media_type;
  } else {
    m.config = {cbi.media_type, cfg_digest, cbi.size, {}, {}, {}, false};
    if (orig_ok) {
      m.annotations = orig->annotations;
    }
    out.bytes = image::serialize_manifest(m, m.kind);
    out.media_type = to_oci ? image::media::kOciManifest : image::media::kDockerManifest;
  }
  out.digest = util::sha256_digest(out.bytes);
  auto putm = dst.put_manifest(out, tag);
  if (!putm) {
    return fail(std::move(putm).error().wrap(what));
  }
  BERTH_TRYV(dst.commit());
  // Record where the image now lives, as Podman does after a push.
  (void)st->put_image([&] {
    store::ImageRecord u = img;
    u.digests.push_back(dref.name() + "@" + out.digest);
    return u;
  }());
  return out;
}

}  // namespace berth::copy
