// pull: manifest -> platform -> config -> layers streamed from the transport into the store.
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <future>
#include <mutex>
#include <optional>
#include <thread>

#include "berth/copy/copy.hpp"
#include "berth/engine/engine.hpp"
#include "berth/events/events.hpp"
#include "berth/image/manifest.hpp"
#include "berth/image/reference.hpp"
#include "berth/util/digest.hpp"
#include "berth/util/log.hpp"
#include "copy_internal.hpp"
#include "image/layer_pipeline.hpp"

namespace berth::copy {

namespace {

constexpr int kDefaultParallel = 6;

std::string short_hex(const std::string& digest) {
  return image::digest_hex(digest).substr(0, 12);
}

class Progress {
 public:
  explicit Progress(const ProgressFn& fn) : fn_(fn) {}
  void operator()(const std::string& line) {
    if (fn_) {
      std::lock_guard lock(mu_);
      fn_(line);
    }
  }

 private:
  const ProgressFn& fn_;
  std::mutex mu_;
};

// Reads a small blob (the config) fully into memory through a memfd, checking size and digest.
Result<std::string> fetch_small_blob(sdk::ImageSource& src, const image::Descriptor& d, size_t max,
                                     const std::string& what) {
  if (d.size < 0 || static_cast<size_t>(d.size) > max) {
    return fail(Errc::InvalidArgument, what + ": size " + std::to_string(d.size) +
                                           " is refused (at most " + std::to_string(max) + ")");
  }
  UniqueFd fd(::memfd_create("berth-blob", MFD_CLOEXEC));
  if (!fd) {
    return fail_errno("memfd_create", what);
  }
  BERTH_TRY(int64_t n, src.fetch_blob({d.digest, d.size, d.media_type}, 0, fd.get()));
  std::string out(static_cast<size_t>(n), '\0');
  size_t got = 0;
  while (got < out.size()) {
    ssize_t r = ::pread(fd.get(), out.data() + got, out.size() - got, static_cast<off_t>(got));
    if (r < 0 && errno == EINTR) {
      continue;
    }
    if (r <= 0) {
      return fail_errno("read back", what);
    }
    got += static_cast<size_t>(r);
  }
  std::string dig = util::sha256_digest(out);
  if (dig != d.digest) {
    return fail(Errc::Corrupt, what + ": the blob received has digest " + dig + ", not " +
                                   d.digest +
                                   "; the registry's copy is damaged or was tampered "
                                   "with");
  }
  return out;
}

bool platform_matches(const image::Descriptor& d, const std::string& os, const std::string& arch,
                      const std::string& variant) {
  if (!d.has_platform) {
    return false;
  }
  if (d.platform.os != os || d.platform.architecture != arch) {
    return false;
  }
  if (!variant.empty() && d.platform.variant != variant) {
    return false;
  }
  return true;
}

struct Target {
  std::string name;        // recorded name ("host/repo:tag", or "host/repo@digest")
  std::string repository;  // "host/repo" (as the user named it, not the mirror)
};

// Brings the image described by `manifest` into the store.
Result<PulledImage> pull_image(engine::Engine& engine, store::Store& st, sdk::ImageSource& src,
                               sdk::Manifest top, const Target& target, const PullOptions& opts,
                               Progress& progress) {
  std::string what = "pull " + target.name;
  BERTH_TRY(auto kind, image::detect_manifest_kind(top.bytes, top.media_type));
  std::vector<std::string> repo_digests;
  sdk::Manifest chosen = top;
  if (kind == image::ManifestKind::OciIndex || kind == image::ManifestKind::DockerList) {
    BERTH_TRY(auto idx, image::parse_index(top.bytes));
    std::string os = opts.os.empty() ? "linux" : opts.os;
    std::string arch = opts.arch.empty() ? host_arch_name() : opts.arch;
    const image::Descriptor* pick = nullptr;
    for (const auto& d : idx.manifests) {
      if (platform_matches(d, os, arch, opts.variant)) {
        pick = &d;
        break;
      }
    }
    if (pick == nullptr) {
      std::string have;
      for (const auto& d : idx.manifests) {
        if (d.has_platform) {
          have += (have.empty() ? "" : ", ") + d.platform.os + "/" + d.platform.architecture +
                  (d.platform.variant.empty() ? "" : "/" + d.platform.variant);
        }
      }
      return fail(Errc::NotFound, what + ": no image found in the manifest list for platform " +
                                      os + "/" + arch +
                                      (opts.variant.empty() ? "" : "/" + opts.variant) +
                                      " (the list has: " + have + "); choose one with --platform");
    }
    auto m = src.manifest(pick->digest);
    if (!m) {
      return fail(std::move(m).error().wrap(what));
    }
    chosen = std::move(*m);
    repo_digests.push_back(target.repository + "@" + top.digest);
  }
  repo_digests.push_back(target.repository + "@" + chosen.digest);
  auto man = image::parse_manifest(chosen.bytes);
  if (!man) {
    return fail(std::move(man).error().wrap(what + ": manifest " + chosen.digest));
  }
  BERTH_TRYV(util::validate_digest(man->config.digest));
  std::string id = image::digest_hex(man->config.digest);

  store::ImageRecord rec;
  rec.id = id;
  rec.digest = chosen.digest;
  rec.manifest = chosen.bytes;
  rec.manifest_type = chosen.media_type.empty() ? man->media_type : chosen.media_type;
  rec.names = {target.name};
  rec.digests = repo_digests;

  // Warm pull: the image is here with all its layers; only names and digests are added.
  BERTH_TRY(auto existing, st.image(id));
  if (existing) {
    store::ImageRecord upd = *existing;
    upd.names = rec.names;
    upd.digests = rec.digests;
    auto put = st.put_image(upd);
    if (put) {
      progress("Getting image source signatures");
      for (const auto& l : man->layers) {
        progress("Copying blob " + short_hex(l.digest) + " skipped: already exists");
      }
      progress("Copying config " + short_hex(man->config.digest) + " done");
      progress("Writing manifest to image destination");
      return PulledImage{id, target.name, chosen.digest, 0};
    }
    if (put.error().code() != Errc::Conflict) {
      return fail(std::move(put).error().wrap(what));
    }
    // A layer went away: pull it again below.
  }

  progress("Getting image source signatures");
  auto cfg_bytes = fetch_small_blob(src, man->config, image::kMaxConfigSize,
                                    what + ": config " + man->config.digest);
  if (!cfg_bytes) {
    return fail(std::move(cfg_bytes).error());
  }
  auto cfg = image::parse_config(*cfg_bytes);
  if (!cfg) {
    return fail(std::move(cfg).error().wrap(what + ": config " + man->config.digest));
  }
  const size_t n = man->layers.size();
  if (cfg->diff_ids.size() != n) {
    return fail(Errc::InvalidArgument, what + ": the config lists " +
                                           std::to_string(cfg->diff_ids.size()) +
                                           " layers, the manifest " + std::to_string(n));
  }
  for (const auto& l : man->layers) {
    if (!image::is_known_layer_type(l.media_type)) {
      return fail(Errc::NotSupported, what + ": layer " + l.digest + " has media type " +
                                          l.media_type + ", which berth cannot apply");
    }
    BERTH_TRYV(util::validate_digest(l.digest));
  }
  rec.config = *cfg_bytes;
  rec.created = cfg->created_unix;
  auto chain = image::chain_ids(cfg->diff_ids);
  rec.top_layer = chain.empty() ? "" : chain.back();

  bool parallel = st.driver().whiteout_format() == sdk::WhiteoutFormat::Overlay && chain.size() > 1;
  int workers = opts.parallel > 0 ? opts.parallel
                : engine.config().containers.engine.image_parallel_copies > 0
                    ? static_cast<int>(engine.config().containers.engine.image_parallel_copies)
                    : kDefaultParallel;
  std::vector<std::promise<void>> created(n);
  std::vector<std::shared_future<void>> created_f;
  std::vector<std::once_flag> once(n);
  for (auto& pr : created) {
    created_f.push_back(pr.get_future().share());
  }
  auto signal = [&](size_t i) { std::call_once(once[i], [&] { created[i].set_value(); }); };
  std::vector<std::optional<Result<store::LayerRecord>>> results(n);
  std::vector<char> filled(n, 0);
  std::atomic<size_t> next{0};
  std::atomic<bool> aborted{false};
  std::atomic<int64_t> fetched{0};
  auto work = [&] {
    for (;;) {
      size_t i = next++;
      if (i >= n) {
        return;
      }
      if (i > 0) {
        created_f[i - 1].wait();
      }
      if (aborted || (!parallel && i > 0 && !(results[i - 1] && *results[i - 1]))) {
        results[i] = fail(Errc::Cancelled, "cancelled");
        signal(i);
        continue;
      }
      const image::Descriptor& desc = man->layers[i];
      store::LayerRecord want;
      want.id = chain[i];
      want.parent = i ? chain[i - 1] : "";
      want.diff_id = cfg->diff_ids[i];
      std::string lwhat = what + ": layer " + std::to_string(i + 1) + "/" + std::to_string(n) +
                          " (" + desc.digest + ")";
      auto fill = [&, i](const std::string& lid) -> Result<store::LayerFill> {
        filled[i] = 1;
        signal(i);  // the driver has created the layer: the next one may start
        int p[2];
        if (::pipe2(p, O_CLOEXEC) != 0) {
          return fail(Error::from_errno("pipe2", lwhat, errno));
        }
        UniqueFd rd(p[0]);
        UniqueFd wr(p[1]);
        (void)::fcntl(p[0], F_SETPIPE_SZ, 1 << 20);
        Result<int64_t> got = int64_t{0};
        fetched++;
        std::thread fetcher([&] {
          got = src.fetch_blob({desc.digest, desc.size, desc.media_type}, 0, wr.get());
          wr.reset();  // EOF for the pipeline
        });
        image::LayerInput in;
        in.blob = image::BlobRange{rd.get(), 0, -1};
        if (opts.blob_progress) {
          in.on_read = [&opts, &desc](uint64_t done) {
            opts.blob_progress(desc.digest, static_cast<int64_t>(done), desc.size);
          };
        }
        in.expected_digest = desc.digest;
        in.expected_diff_id = cfg->diff_ids[i];
        in.what = lwhat;
        auto applied =
            image::apply_layer(in, st.driver(), lid, st.layer_meta_path(lid, ".tar-split"));
        rd.reset();  // a fetch still writing sees EPIPE and stops
        fetcher.join();
        if (!got) {
          return fail(std::move(got).error().wrap(lwhat));
        }
        if (applied && desc.size >= 0 && applied->compressed_size != desc.size) {
          return fail(Errc::Corrupt, lwhat + ": received " +
                                         std::to_string(applied->compressed_size) +
                                         " bytes, the manifest says " + std::to_string(desc.size));
        }
        return applied;
      };
      results[i] = st.create_layer(want, fill, {}, parallel);
      if (!*results[i]) {
        aborted = true;
      } else {
        progress("Copying blob " + short_hex(desc.digest) +
                 (filled[i] ? " done" : " skipped: already exists"));
      }
      signal(i);
    }
  };
  if (parallel) {
    std::vector<std::thread> pool;
    for (size_t w = 0; w < std::min<size_t>(static_cast<size_t>(workers), n); ++w) {
      pool.emplace_back(work);
    }
    for (auto& t : pool) {
      t.join();
    }
  } else {
    work();
  }
  std::vector<std::string> made;
  std::optional<Error> failed;
  int64_t size = 0;
  for (size_t i = 0; i < n; ++i) {
    auto& r = *results[i];
    if (r && filled[i]) {
      made.push_back(r->id);
    }
    if (r) {
      size += std::max<int64_t>(r->uncompressed_size, 0);
    } else if (r.error().code() != Errc::Cancelled && !failed) {
      failed = r.error();
    }
  }
  if (!failed) {
    progress("Copying config " + short_hex(man->config.digest) + " done");
    progress("Writing manifest to image destination");
    rec.size = size;
    auto put = st.put_image(rec);
    if (put) {
      return PulledImage{id, target.name, chosen.digest, fetched.load()};
    }
    failed = std::move(put).error().wrap(what);
  }
  // Nothing half-pulled stays: drop the layers this pull made that nothing else uses.
  for (auto it = made.rbegin(); it != made.rend(); ++it) {
    (void)st.remove_layer(*it);
  }
  return fail(std::move(*failed));
}

// Pulls one fully qualified reference from its pull sources (mirrors first).
Result<PulledImage> pull_reference(engine::Engine& engine, store::Store& st, sdk::Transport& t,
                                   const std::string& ref, const PullOptions& opts,
                                   Progress& progress) {
  const auto& reg = engine.config().registries;
  BERTH_TRY(image::Reference parsed, image::parse_reference(ref));
  Target target;
  target.repository = parsed.name();
  target.name =
      parsed.tag.empty() ? parsed.name() + "@" + parsed.digest : parsed.name() + ":" + parsed.tag;
  BERTH_TRY(auto sources, reg.pull_sources(ref));
  std::vector<std::string> errors;
  for (const auto& s : sources) {
    auto topts = transport_options(reg, s.reference, opts.access, s.insecure);
    if (!topts) {
      return fail(std::move(topts).error());
    }
    auto src = t.open_source(s.reference, *topts);
    if (!src) {
      errors.push_back(src.error().message());
      continue;
    }
    auto m = (*src)->manifest("");
    if (!m) {
      spdlog::debug("pull {} from {}: {}", ref, s.reference, m.error().message());
      errors.push_back(m.error().message());
      if (&s != &sources.back()) {
        continue;
      }
      return fail(m.error().code(),
                  "initializing source docker://" + ref + ": " + m.error().message());
    }
    return pull_image(engine, st, **src, std::move(*m), target, opts, progress);
  }
  std::string all;
  for (const auto& e : errors) {
    all += (all.empty() ? "" : "; ") + e;
  }
  return fail(Errc::Unavailable, "initializing source docker://" + ref + ": " + all);
}

}  // namespace

namespace {

// Podman's image "pull" event, for each image pulled (also when it was there already).
void pull_event(engine::Engine& engine, const PulledImage& img) {
  events::Event e;
  e.type = std::string(events::type::kImage);
  e.status = "pull";
  e.id = img.id;
  e.name = img.name;
  events::emit_or_warn(engine.config(), e);
}

}  // namespace

Result<std::vector<PulledImage>> pull(engine::Engine& engine, const std::string& name,
                                      const PullOptions& opts) {
  const auto& reg = engine.config().registries;
  BERTH_TRY(auto candidates, resolve_name(reg, name, opts.can_prompt, opts.prompt));
  BERTH_TRY(store::Store * st, engine.store());
  BERTH_TRY(sdk::Transport * t, docker_transport(engine));
  Progress progress(opts.progress);
  std::vector<PulledImage> out;
  std::vector<std::string> errors;
  for (const auto& cand : candidates) {
    progress("Trying to pull " + cand + "...");
    if (opts.all_tags) {
      BERTH_TRY(image::Reference r, image::parse_reference(cand));
      if (!r.digest.empty() ||
          (!r.tag.empty() && name.find(':', name.rfind('/') + 1) != std::string::npos)) {
        return fail(Errc::InvalidArgument,
                    "--all-tags: \"" + name + "\" must be a repository without tag or digest");
      }
      std::string repo = r.name();
      auto tags = repository_tags(reg, *t, repo, opts.access);
      if (!tags) {
        errors.push_back(tags.error().message());
        continue;
      }
      for (const auto& tag : *tags) {
        BERTH_TRY(auto img, pull_reference(engine, *st, *t, repo + ":" + tag, opts, progress));
        pull_event(engine, img);
        out.push_back(std::move(img));
      }
      return out;
    }
    auto img = pull_reference(engine, *st, *t, cand, opts, progress);
    if (img) {
      pull_event(engine, *img);
      out.push_back(std::move(*img));
      return out;
    }
    // Only "not there / not reachable" moves on to the next candidate; a damaged image is final.
    Errc c = img.error().code();
    if (candidates.size() == 1 || c == Errc::Corrupt || c == Errc::PermissionDenied) {
      return fail(std::move(img).error());
    }
    errors.push_back(img.error().message());
  }
  std::string all;
  for (const auto& e : errors) {
    all += "\n  " + e;
  }
  return fail(Errc::NotFound, "unable to pull " + name + ": no candidate worked:" + all);
}

namespace {

// The platform manifest of `top` (itself when it is not a list).
Result<sdk::Manifest> platform_manifest(sdk::ImageSource& src, const sdk::Manifest& top,
                                        const PullOptions& opts, const std::string& what) {
  BERTH_TRY(auto kind, image::detect_manifest_kind(top.bytes, top.media_type));
  if (kind != image::ManifestKind::OciIndex && kind != image::ManifestKind::DockerList) {
    return top;
  }
  BERTH_TRY(auto idx, image::parse_index(top.bytes));
  std::string os = opts.os.empty() ? "linux" : opts.os;
  std::string arch = opts.arch.empty() ? host_arch_name() : opts.arch;
  for (const auto& d : idx.manifests) {
    if (platform_matches(d, os, arch, opts.variant)) {
      auto m = src.manifest(d.digest);
      if (!m) {
        return fail(std::move(m).error().wrap(what));
      }
      return std::move(*m);
    }
  }
  return fail(Errc::NotFound, what + ": no image in the manifest list for platform " + os + "/" +
                                  arch + "; choose one with --os/--arch/--variant");
}

}  // namespace

Result<RemoteImage> inspect_remote(engine::Engine& engine, const std::string& name,
                                   const PullOptions& opts) {
  const auto& reg = engine.config().registries;
  BERTH_TRY(auto candidates, resolve_name(reg, name, opts.can_prompt, opts.prompt));
  BERTH_TRY(sdk::Transport * t, docker_transport(engine));
  std::vector<std::string> errors;
  for (const auto& cand : candidates) {
    const std::string what = "inspect docker://" + cand;
    BERTH_TRY(image::Reference parsed, image::parse_reference(cand));
    BERTH_TRY(auto sources, reg.pull_sources(cand));
    for (const auto& s : sources) {
      BERTH_TRY(auto topts, transport_options(reg, s.reference, opts.access, s.insecure));
      auto src = t->open_source(s.reference, topts);
      if (!src) {
        errors.push_back(src.error().message());
        continue;
      }
      auto top = (*src)->manifest("");
      if (!top) {
        errors.push_back(top.error().message());
        continue;
      }
      RemoteImage out;
      out.name = parsed.name();
      out.digest = top->digest;
      out.raw = top->bytes;
      out.media_type = top->media_type;
      BERTH_TRY(auto chosen, platform_manifest(**src, *top, opts, what));
      out.manifest = chosen.bytes;
      auto man = image::parse_manifest(chosen.bytes);
      if (!man) {
        return fail(std::move(man).error().wrap(what + ": manifest " + chosen.digest));
      }
      BERTH_TRY(out.config, fetch_small_blob(**src, man->config, 8 << 20, what + ": config"));
      if (auto tags = (*src)->tags(); tags) {
        out.tags = std::move(*tags);
      }
      return out;
    }
  }
  std::string all;
  for (const auto& e : errors) {
    all += "\n  " + e;
  }
  return fail(Errc::NotFound, "unable to inspect " + name + ":" + all);
}

Result<nlohmann::json> remote_inspect_json(const RemoteImage& img) {
  using nlohmann::json;
  auto man = image::parse_manifest(img.manifest);
  if (!man) {
    return fail(std::move(man).error().wrap("manifest of " + img.name));
  }
  json cfg;
  try {
    cfg = json::parse(img.config);
  } catch (const json::exception& e) {
    return fail(Errc::Corrupt, "config of " + img.name + ": " + e.what());
  }
  json c = cfg.value("config", json::object());
  if (!c.is_object()) {
    c = json::object();
  }
  json layers = json::array();
  json data = json::array();
  for (const auto& l : man->layers) {
    layers.push_back(l.digest);
    data.push_back({{"MIMEType", l.media_type},
                    {"Digest", l.digest},
                    {"Size", l.size},
                    {"Annotations", l.annotations.empty() ? json(nullptr) : json(l.annotations)}});
  }
  return json{{"Name", img.name},
              {"Digest", img.digest},
              {"RepoTags", img.tags},
              {"Created", cfg.value("created", "")},
              {"DockerVersion", cfg.value("docker_version", "")},
              {"Labels", c.contains("Labels") ? c["Labels"] : json(nullptr)},
              {"Architecture", cfg.value("architecture", "")},
              {"Os", cfg.value("os", "")},
              {"Layers", layers},
              {"LayersData", data},
              {"Env", c.contains("Env") ? c["Env"] : json(nullptr)}};
}

}  // namespace berth::copy
