// load, save and import.
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <atomic>
#include <ctime>
#include <future>
#include <mutex>
#include <optional>
#include <set>
#include <thread>

#include "archive.hpp"
#include "berth/image/image_service.hpp"
#include "berth/image/manifest.hpp"
#include "berth/image/reference.hpp"
#include "berth/util/digest.hpp"
#include "berth/util/fs.hpp"
#include "berth/util/log.hpp"
#include "image_internal.hpp"
#include "layer_pipeline.hpp"

namespace berth::image {

using nlohmann::json;

namespace {

struct PendingLayer {
  BlobRange blob;
  std::string expected_digest;  // "" when the format has none (docker-archive)
};

struct PendingImage {
  std::string config;
  std::string manifest;
  std::string manifest_type;
  std::vector<PendingLayer> layers;
  std::vector<std::string> names;
  std::string what;
};

Result<std::string> store_image(store::Store& st, const PendingImage& p) {
  auto cfg = parse_config(p.config);
  if (!cfg) {
    return fail(std::move(cfg).error().wrap(p.what));
  }
  std::string id = digest_hex(util::sha256_digest(p.config));
  if (cfg->diff_ids.size() != p.layers.size()) {
    return fail(Errc::InvalidArgument,
                p.what + ": the config lists " + std::to_string(cfg->diff_ids.size()) +
                    " layers, the manifest " + std::to_string(p.layers.size()));
  }
  auto chain = chain_ids(cfg->diff_ids);
  // Drivers whose layers hold only their own changes (overlay) take the layers of one image in
  // parallel; a layer whose driver create copies its parent (vfs) waits for the parent.
  bool parallel = st.driver().whiteout_format() == sdk::WhiteoutFormat::Overlay && chain.size() > 1;
  for (int attempt = 0;; ++attempt) {
    std::vector<std::string> made;
    int64_t size = 0;
    Result<void> failed;
    bool retry = false;
    const size_t n = chain.size();
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
    auto work = [&] {
      for (;;) {
        size_t i = next++;
        if (i >= n) {
          return;
        }
        if (i > 0) {
          created_f[i - 1].wait();
        }
        if (aborted) {
          results[i] = fail(Errc::Cancelled, "cancelled");
          signal(i);
          continue;
        }
        store::LayerRecord want;
        want.id = chain[i];
        want.parent = i ? chain[i - 1] : "";
        want.diff_id = cfg->diff_ids[i];
        auto fill = [&, i](const std::string& lid) -> Result<store::LayerFill> {
          filled[i] = 1;
          signal(i);  // the driver has created the layer: the next one may start
          LayerInput in;
          in.blob = p.layers[i].blob;
          in.expected_digest = p.layers[i].expected_digest;
          in.expected_diff_id = cfg->diff_ids[i];
          in.what = p.what + ": layer " + std::to_string(i + 1) + "/" + std::to_string(n) + " (" +
                    (in.expected_digest.empty() ? in.expected_diff_id : in.expected_digest) + ")";
          return apply_layer(in, st.driver(), lid, st.layer_meta_path(lid, ".tar-split"));
        };
        if (!parallel && i > 0 && !(results[i - 1] && *results[i - 1])) {
          results[i] = fail(Errc::Cancelled, "cancelled");
          signal(i);
          continue;
        }
        results[i] = st.create_layer(want, fill, {}, parallel);
        if (!*results[i]) {
          aborted = true;
        }
        signal(i);
      }
    };
    if (parallel) {
      std::vector<std::thread> pool;
      for (size_t w = 0; w < std::min<size_t>(3, n); ++w) {
        pool.emplace_back(work);
      }
      for (auto& t : pool) {
        t.join();
      }
    } else {
      work();
    }
    for (size_t i = 0; i < n; ++i) {
      auto& rec = *results[i];
      if (rec && filled[i]) {
        made.push_back(rec->id);
      }
      if (rec) {
        size += std::max<int64_t>(rec->uncompressed_size, 0);
        continue;
      }
      if (rec.error().code() == Errc::Cancelled) {
        continue;
      }
      if (rec.error().code() == Errc::Conflict && attempt < 5) {
        retry = true;
      } else if (failed) {
        failed = fail(rec.error());
      }
    }
    if (!failed) {
      retry = false;
    }
    if (failed && !retry) {
      store::ImageRecord img;
      img.id = id;
      img.digest = util::sha256_digest(p.manifest);
      img.created = cfg->created_unix;
      img.size = size;
      img.top_layer = chain.empty() ? "" : chain.back();
      img.config = p.config;
      img.manifest = p.manifest;
      img.manifest_type = p.manifest_type;
      img.names = p.names;
      auto put = st.put_image(img);
      if (put) {
        return id;
      }
      if (put.error().code() == Errc::Conflict && attempt < 5) {
        retry = true;
      } else {
        failed = fail(std::move(put).error());
      }
    }
    // Nothing half-made stays: drop the layers this attempt made that nothing else uses.
    for (auto it = made.rbegin(); it != made.rend(); ++it) {
      (void)st.remove_layer(*it);
    }
    if (!retry) {
      return fail(std::move(failed).error());
    }
  }
}

std::string host_arch() {
  struct utsname u {};
  if (::uname(&u) != 0) {
    return "amd64";
  }
  std::string m = u.machine;
  if (m == "x86_64") {
    return "amd64";
  }
  if (m == "aarch64") {
    return "arm64";
  }
  if (m.starts_with("arm")) {
    return "arm";
  }
  if (m == "i686" || m == "i386") {
    return "386";
  }
  return m;
}

std::vector<std::string> names_from_annotations(const std::map<std::string, std::string>& a) {
  std::vector<std::string> out;
  std::string n;
  if (auto it = a.find("io.containerd.image.name"); it != a.end()) {
    n = it->second;
  } else if (auto it2 = a.find("org.opencontainers.image.ref.name"); it2 != a.end()) {
    n = it2->second;
  }
  // A bare tag ("latest") names no repository: the image loads untagged, as Podman's does.
  if (n.find_first_of("/:") == std::string::npos && n.find('.') == std::string::npos) {
    n.clear();
  }
  if (!n.empty()) {
    if (auto r = parse_normalized(n)) {
      out.push_back(with_default_tag(*r).string());
    }
  }
  return out;
}

Result<BlobRange> blob_range(const TarIndex& idx, const std::string& digest, int64_t size,
                             const std::string& what) {
  std::string path = "blobs/" + digest.substr(0, digest.find(':')) + "/" + digest_hex(digest);
  const TarEntry* e = idx.find(path);
  if (!e) {
    return fail(Errc::NotFound, what + ": blob " + digest + " is missing from the archive");
  }
  if (size >= 0 && static_cast<int64_t>(e->size) != size) {
    return fail(Errc::Corrupt, what + ": blob " + digest + " is " + std::to_string(e->size) +
                                   " bytes, the manifest says " + std::to_string(size));
  }
  return BlobRange{idx.fd(), e->offset, static_cast<int64_t>(e->size)};
}

Result<std::string> read_blob(const TarIndex& idx, const Descriptor& d, const std::string& what,
                              size_t limit) {
  std::string path = "blobs/" + d.digest.substr(0, d.digest.find(':')) + "/" + digest_hex(d.digest);
  auto data = idx.read(path, limit);
  if (!data) {
    return fail(std::move(data).error().wrap(what));
  }
  if (static_cast<int64_t>(data->size()) != d.size) {
    return fail(Errc::Corrupt, what + ": blob " + d.digest + " has the wrong size");
  }
  if (util::sha256_digest(*data) != d.digest) {
    return fail(Errc::Corrupt, what + ": blob " + d.digest + " does not match its digest");
  }
  return data;
}

Result<void> collect_oci(const TarIndex& idx, const Descriptor& desc,
                         const std::vector<std::string>& names, const std::string& what,
                         std::vector<PendingImage>& out, int depth) {
  if (depth > 4) {
    return fail(Errc::InvalidArgument, what + ": indexes nest too deeply");
  }
  BERTH_TRY(std::string bytes, read_blob(idx, desc, what, kMaxManifestSize));
  BERTH_TRY(ManifestKind kind, detect_manifest_kind(bytes, desc.media_type));
  if (kind == ManifestKind::OciIndex || kind == ManifestKind::DockerList) {
    BERTH_TRY(Index sub, parse_index(bytes));
    const Descriptor* pick = nullptr;
    for (auto& m : sub.manifests) {
      if (!m.has_platform || (m.platform.os == "linux" && m.platform.architecture == host_arch())) {
        pick = &m;
        break;
      }
    }
    if (!pick) {
      return fail(Errc::NotFound, what + ": no image for linux/" + host_arch() + " in the index");
    }
    return collect_oci(idx, *pick, names, what, out, depth + 1);
  }
  auto m = parse_manifest(bytes);
  if (!m) {
    return fail(std::move(m).error().wrap(what));
  }
  PendingImage p;
  p.manifest = bytes;
  p.manifest_type = m->media_type;
  p.names = names;
  p.what = what;
  BERTH_TRY(p.config, read_blob(idx, m->config, what + ": config", kMaxConfigSize));
  for (auto& l : m->layers) {
    BERTH_TRY(auto range, blob_range(idx, l.digest, l.size, what));
    p.layers.push_back({range, l.digest});
  }
  out.push_back(std::move(p));
  return {};
}

Result<std::vector<PendingImage>> collect_images(const TarIndex& idx, const std::string& what) {
  std::vector<PendingImage> out;
  if (idx.contains("oci-layout") || idx.contains("index.json")) {
    BERTH_TRY(std::string ix, idx.read("index.json", kMaxManifestSize));
    auto index = parse_index(ix);
    if (!index) {
      return fail(std::move(index).error().wrap(what + ": index.json"));
    }
    for (auto& d : index->manifests) {
      auto names = names_from_annotations(d.annotations);
      std::string w = what + ": image " + (names.empty() ? d.digest : names.front());
      BERTH_TRYV(collect_oci(idx, d, names, w, out, 0));
    }
    return out;
  }
  if (!idx.contains("manifest.json")) {
    return fail(Errc::InvalidArgument, what +
                                           ": neither a docker-archive (manifest.json) nor an "
                                           "oci-archive (index.json)");
  }
  BERTH_TRY(std::string mj, idx.read("manifest.json", kMaxManifestSize));
  auto j = json::parse(mj, nullptr, false);
  if (!j.is_array()) {
    return fail(Errc::InvalidArgument, what + ": manifest.json is not a JSON array");
  }
  for (auto& e : j) {
    if (!e.is_object() || !e.contains("Config") || !e["Config"].is_string() ||
        !e.contains("Layers") || !e["Layers"].is_array()) {
      return fail(Errc::InvalidArgument, what + ": manifest.json entry lacks Config or Layers");
    }
    PendingImage p;
    if (auto tags = e.find("RepoTags"); tags != e.end() && tags->is_array()) {
      for (auto& t : *tags) {
        if (!t.is_string()) {
          continue;
        }
        auto r = parse_normalized(t.get<std::string>());
        if (!r) {
          return fail(std::move(r).error().wrap(what + ": RepoTags"));
        }
        p.names.push_back(with_default_tag(*r).string());
      }
    }
    p.what = what + ": image " + (p.names.empty() ? e["Config"].get<std::string>() : p.names[0]);
    BERTH_TRY(p.config, idx.read(e["Config"].get<std::string>(), kMaxConfigSize));
    BERTH_TRY(auto cfg, parse_config(p.config));
    Manifest m;
    m.config = {media::kDockerConfig,
                util::sha256_digest(p.config),
                static_cast<int64_t>(p.config.size()),
                {},
                {},
                {},
                false};
    size_t i = 0;
    for (auto& l : e["Layers"]) {
      if (!l.is_string()) {
        return fail(Errc::InvalidArgument, what + ": manifest.json Layers holds a non-string");
      }
      const TarEntry* te = idx.find(l.get<std::string>());
      if (!te) {
        return fail(Errc::NotFound,
                    p.what + ": layer " + l.get<std::string>() + " is missing from the archive");
      }
      p.layers.push_back({BlobRange{idx.fd(), te->offset, static_cast<int64_t>(te->size)}, ""});
      // Uncompressed layer tars: their digest is the diff ID (as containers/image reports).
      std::string d = i < cfg.diff_ids.size() ? cfg.diff_ids[i] : std::string();
      m.layers.push_back(
          {media::kDockerLayer, d, static_cast<int64_t>(te->size), {}, {}, {}, false});
      ++i;
    }
    p.manifest = serialize_manifest(m, ManifestKind::DockerManifest);
    p.manifest_type = media::kDockerManifest;
    out.push_back(std::move(p));
  }
  return out;
}

// --- save outputs

class Output {
 public:
  virtual ~Output() = default;
  virtual Result<void> file(const std::string& name, std::string_view content) = 0;
  virtual Result<void> layer(const std::string& name, store::Store& st,
                             const store::LayerRecord& l) = 0;
  virtual Result<void> dir(const std::string& name) = 0;
  virtual Result<void> finish() = 0;
};

class TarOutput : public Output {
 public:
  explicit TarOutput(int fd) : tw_(fd) {}
  Result<void> file(const std::string& name, std::string_view content) override {
    return tw_.add_file(name, content);
  }
  Result<void> layer(const std::string& name, store::Store& st,
                     const store::LayerRecord& l) override {
    BERTH_TRYV(tw_.begin_file(name, static_cast<uint64_t>(l.uncompressed_size)));
    BERTH_TRYV(write_layer_tar(st, l, tw_.fd()));
    tw_.account(static_cast<uint64_t>(l.uncompressed_size));
    return tw_.end_file();
  }
  Result<void> dir(const std::string& name) override { return tw_.add_dir(name); }
  Result<void> finish() override { return tw_.finish(); }

 private:
  TarWriter tw_;
};

class DirOutput : public Output {
 public:
  explicit DirOutput(std::string root) : root_(std::move(root)) {}
  Result<void> file(const std::string& name, std::string_view content) override {
    return util::write_file_atomic(root_ + "/" + name, content, 0644);
  }
  Result<void> layer(const std::string& name, store::Store& st,
                     const store::LayerRecord& l) override {
    std::string path = root_ + "/" + name;
    BERTH_TRY(UniqueFd fd, util::open_file(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
    BERTH_TRYV(write_layer_tar(st, l, fd.get()));
    if (::fsync(fd.get()) != 0) {
      return fail_errno("fsync", path);
    }
    return {};
  }
  Result<void> dir(const std::string& name) override { return util::make_dirs(root_ + "/" + name); }
  Result<void> finish() override { return {}; }

 private:
  std::string root_;
};

struct SaveItem {
  store::ImageRecord img;
  std::string name;                        // the name to write ("" = untagged)
  std::vector<store::LayerRecord> layers;  // base first
  ImageConfig cfg;
};

Result<void> write_oci(Output& out, store::Store& st, const std::vector<SaveItem>& items) {
  BERTH_TRYV(out.file("oci-layout", R"({"imageLayoutVersion":"1.0.0"})"));
  BERTH_TRYV(out.dir("blobs"));
  BERTH_TRYV(out.dir("blobs/sha256"));
  std::set<std::string> written;
  json index = {
      {"schemaVersion", 2}, {"mediaType", media::kOciIndex}, {"manifests", json::array()}};
  for (auto& it : items) {
    Manifest m;
    m.config = {media::kOciConfig,
                "sha256:" + it.img.id,
                static_cast<int64_t>(it.img.config.size()),
                {},
                {},
                {},
                false};
    for (auto& l : it.layers) {
      m.layers.push_back({media::kOciLayer, l.diff_id, l.uncompressed_size, {}, {}, {}, false});
      if (written.insert(l.diff_id).second) {
        BERTH_TRYV(out.layer("blobs/sha256/" + digest_hex(l.diff_id), st, l));
      }
    }
    if (written.insert("sha256:" + it.img.id).second) {
      BERTH_TRYV(out.file("blobs/sha256/" + it.img.id, it.img.config));
    }
    std::string mbytes = serialize_manifest(m, ManifestKind::OciManifest);
    std::string mdigest = util::sha256_digest(mbytes);
    if (written.insert(mdigest).second) {
      BERTH_TRYV(out.file("blobs/sha256/" + digest_hex(mdigest), mbytes));
    }
    json d = {{"mediaType", media::kOciManifest}, {"digest", mdigest}, {"size", mbytes.size()}};
    if (!it.name.empty()) {
      d["annotations"] = {{"org.opencontainers.image.ref.name", it.name}};
    }
    index["manifests"].push_back(d);
  }
  BERTH_TRYV(out.file("index.json", index.dump()));
  return out.finish();
}

Result<void> write_docker_archive(Output& out, store::Store& st,
                                  const std::vector<SaveItem>& items) {
  std::set<std::string> written;
  json manifest = json::array();
  json repositories = json::object();
  for (auto& it : items) {
    json entry = {
        {"Config", it.img.id + ".json"}, {"RepoTags", json::array()}, {"Layers", json::array()}};
    if (written.insert(it.img.id).second) {
      BERTH_TRYV(out.file(it.img.id + ".json", it.img.config));
    }
    for (auto& l : it.layers) {
      std::string name = digest_hex(l.diff_id) + ".tar";
      if (written.insert(name).second) {
        BERTH_TRYV(out.layer(name, st, l));
      }
      entry["Layers"].push_back(name);
    }
    if (!it.name.empty()) {
      auto r = parse_reference(it.name);
      if (r && !r->tag.empty()) {
        entry["RepoTags"].push_back(r->familiar());
        Reference repo = *r;
        repo.tag.clear();
        repositories[repo.familiar()][r->tag] =
            it.layers.empty() ? "" : digest_hex(it.layers.back().diff_id);
      }
    }
    manifest.push_back(entry);
  }
  BERTH_TRYV(out.file("manifest.json", manifest.dump()));
  if (!repositories.empty()) {
    BERTH_TRYV(out.file("repositories", repositories.dump()));
  }
  return out.finish();
}

Result<void> write_docker_dir(Output& out, store::Store& st, const SaveItem& it) {
  Manifest m;
  m.config = {media::kDockerConfig,
              "sha256:" + it.img.id,
              static_cast<int64_t>(it.img.config.size()),
              {},
              {},
              {},
              false};
  for (auto& l : it.layers) {
    m.layers.push_back({media::kDockerLayer, l.diff_id, l.uncompressed_size, {}, {}, {}, false});
    BERTH_TRYV(out.layer(digest_hex(l.diff_id), st, l));
  }
  BERTH_TRYV(out.file(it.img.id, it.img.config));
  BERTH_TRYV(out.file("manifest.json", serialize_manifest(m, ManifestKind::DockerManifest)));
  BERTH_TRYV(out.file("version", "Directory Transport Version: 1.1\n"));
  return out.finish();
}

// A file written beside `path` and renamed over it once complete.
class TempTarget {
 public:
  static Result<TempTarget> create(const std::string& path) {
    TempTarget t;
    t.path_ = path;
    t.tmp_ = path + ".berth-tmp-" + std::to_string(::getpid());
    BERTH_TRY(t.fd_, util::open_file(t.tmp_, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
    return t;
  }
  TempTarget() = default;
  TempTarget(TempTarget&&) = default;
  ~TempTarget() {
    if (!tmp_.empty()) {
      ::unlink(tmp_.c_str());
    }
  }
  int fd() const { return fd_.get(); }
  Result<void> commit() {
    if (::fsync(fd_.get()) != 0) {
      return fail_errno("fsync", tmp_);
    }
    if (::rename(tmp_.c_str(), path_.c_str()) != 0) {
      return fail_errno("rename " + tmp_ + " to", path_);
    }
    tmp_.clear();
    return {};
  }

 private:
  std::string path_;
  std::string tmp_;
  UniqueFd fd_;
};

std::string host_arch_name() {
  return host_arch();
}

}  // namespace

Result<LoadResult> load(store::Store& st, const LoadOptions& opts) {
  std::string what = opts.path.empty() ? std::string("load from stream") : "load " + opts.path;
  UniqueFd owned;
  int in = opts.fd;
  if (!opts.path.empty()) {
    BERTH_TRY(owned, util::open_file(opts.path, O_RDONLY | O_CLOEXEC));
    in = owned.get();
  }
  if (in < 0) {
    return fail(Errc::InvalidArgument, "load: give an archive path or a file descriptor");
  }
  BERTH_TRY(UniqueFd plain, seekable_plain(in, st.options().graph_root + "/tmp", what));
  BERTH_TRY(TarIndex idx, TarIndex::build(plain.get(), what));
  BERTH_TRY(auto pending, collect_images(idx, what));
  if (pending.empty()) {
    return fail(Errc::InvalidArgument, what + ": the archive holds no image");
  }
  LoadResult res;
  for (auto& p : pending) {
    BERTH_TRY(std::string id, store_image(st, p));
    res.ids.push_back(id);
    if (p.names.empty()) {
      res.loaded.push_back("sha256:" + id);
    } else {
      for (auto& n : p.names) {
        res.loaded.push_back(n);
      }
    }
  }
  return res;
}

Result<SaveFormat> parse_save_format(std::string_view s) {
  if (s == "docker-archive" || s.empty()) {
    return SaveFormat::DockerArchive;
  }
  if (s == "oci-archive") {
    return SaveFormat::OciArchive;
  }
  if (s == "oci-dir") {
    return SaveFormat::OciDir;
  }
  if (s == "docker-dir") {
    return SaveFormat::DockerDir;
  }
  return fail(Errc::InvalidArgument,
              "unknown save format \"" + std::string(s) +
                  "\" (use docker-archive, oci-archive, oci-dir or docker-dir)");
}

Result<void> save(store::Store& st, const SaveOptions& opts) {
  if (opts.images.empty()) {
    return fail(Errc::InvalidArgument, "save: no image given");
  }
  std::vector<SaveItem> items;
  for (auto& name : opts.images) {
    BERTH_TRY(auto found, lookup_detail(st, name));
    SaveItem it;
    it.img = std::move(found.image);
    it.name = found.matched_name;
    BERTH_TRY(it.cfg, parse_config(it.img.config));
    std::string lid = it.img.top_layer;
    while (!lid.empty()) {
      BERTH_TRY(auto l, st.layer(lid));
      if (!l || l->incomplete) {
        return fail(Errc::Corrupt, "save " + name + ": layer " + lid +
                                       " is missing; run `berth system check --repair`");
      }
      lid = l->parent;
      it.layers.push_back(std::move(*l));
    }
    std::reverse(it.layers.begin(), it.layers.end());
    items.push_back(std::move(it));
  }
  bool is_dir = opts.format == SaveFormat::OciDir || opts.format == SaveFormat::DockerDir;
  if (opts.format == SaveFormat::DockerDir && items.size() > 1) {
    return fail(Errc::InvalidArgument, "save: docker-dir holds one image; save each on its own");
  }
  if (is_dir) {
    if (opts.path.empty()) {
      return fail(Errc::InvalidArgument, "save: directory formats need an output path");
    }
    BERTH_TRYV(util::make_dirs(opts.path));
    DirOutput out(opts.path);
    return opts.format == SaveFormat::OciDir ? write_oci(out, st, items)
                                             : write_docker_dir(out, st, items.front());
  }
  std::optional<TempTarget> target;
  int fd = opts.fd;
  if (!opts.path.empty()) {
    BERTH_TRY(auto t, TempTarget::create(opts.path));
    target.emplace(std::move(t));
    fd = target->fd();
  }
  if (fd < 0) {
    return fail(Errc::InvalidArgument, "save: give an output path or a file descriptor");
  }
  TarOutput out(fd);
  BERTH_TRYV(opts.format == SaveFormat::OciArchive ? write_oci(out, st, items)
                                                   : write_docker_archive(out, st, items));
  if (target) {
    BERTH_TRYV(target->commit());
  }
  return {};
}

Result<void> apply_change(json& config, std::string_view change) {
  std::string c(change);
  auto sp = c.find_first_of(" \t=");
  std::string instr = c.substr(0, sp);
  std::string arg = sp == std::string::npos ? "" : c.substr(sp + 1);
  while (!arg.empty() && (arg.front() == ' ' || arg.front() == '\t')) {
    arg.erase(0, 1);
  }
  for (auto& ch : instr) {
    ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
  }
  auto bad = [&](std::string_view why) {
    return fail(Errc::InvalidArgument, "invalid change \"" + c + "\": " + std::string(why));
  };
  auto cmd_list = [&]() -> json {
    auto j = json::parse(arg, nullptr, false);
    if (j.is_array()) {
      return j;
    }
    return json::array({"/bin/sh", "-c", arg});
  };
  auto kv = [&](std::string_view what) -> Result<std::pair<std::string, std::string>> {
    auto eq = arg.find('=');
    if (eq == std::string::npos) {
      auto s = arg.find(' ');
      if (s == std::string::npos) {
        return bad(std::string(what) + " needs KEY=VALUE");
      }
      return std::pair{arg.substr(0, s), arg.substr(s + 1)};
    }
    std::string v = arg.substr(eq + 1);
    if (v.size() >= 2 && v.front() == '"' && v.back() == '"') {
      v = v.substr(1, v.size() - 2);
    }
    return std::pair{arg.substr(0, eq), v};
  };
  if (instr == "CMD") {
    config["Cmd"] = cmd_list();
  } else if (instr == "ENTRYPOINT") {
    config["Entrypoint"] = cmd_list();
  } else if (instr == "ENV") {
    BERTH_TRY(auto p, kv("ENV"));
    json env = config.value("Env", json::array());
    json out = json::array();
    for (auto& e : env) {
      if (e.is_string() && !e.get<std::string>().starts_with(p.first + "=")) {
        out.push_back(e);
      }
    }
    out.push_back(p.first + "=" + p.second);
    config["Env"] = out;
  } else if (instr == "LABEL") {
    BERTH_TRY(auto p, kv("LABEL"));
    config["Labels"][p.first] = p.second;
  } else if (instr == "EXPOSE") {
    std::string port = arg;
    if (port.empty()) {
      return bad("EXPOSE needs a port");
    }
    if (port.find('/') == std::string::npos) {
      port += "/tcp";
    }
    config["ExposedPorts"][port] = json::object();
  } else if (instr == "USER") {
    config["User"] = arg;
  } else if (instr == "VOLUME") {
    auto j = json::parse(arg, nullptr, false);
    if (j.is_array()) {
      for (auto& v : j) {
        if (v.is_string()) {
          config["Volumes"][v.get<std::string>()] = json::object();
        }
      }
    } else if (!arg.empty()) {
      config["Volumes"][arg] = json::object();
    } else {
      return bad("VOLUME needs a path");
    }
  } else if (instr == "WORKDIR") {
    config["WorkingDir"] = arg;
  } else if (instr == "STOPSIGNAL") {
    config["StopSignal"] = arg;
  } else {
    return bad(
        "supported instructions are CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, USER, VOLUME, "
        "WORKDIR, STOPSIGNAL");
  }
  return {};
}

Result<std::string> import_image(store::Store& st, const ImportOptions& opts) {
  std::string what = "import " + (opts.path.empty() ? std::string("stream") : opts.path);
  UniqueFd owned;
  int in = opts.fd;
  if (!opts.path.empty()) {
    BERTH_TRY(owned, util::open_file(opts.path, O_RDONLY | O_CLOEXEC));
    in = owned.get();
  }
  if (in < 0) {
    return fail(Errc::InvalidArgument, "import: give a tarball path or a file descriptor");
  }
  json config = json::object();
  for (auto& c : opts.changes) {
    BERTH_TRYV(apply_change(config, c));
  }
  std::optional<Reference> ref;
  if (!opts.reference.empty()) {
    BERTH_TRY(auto r, parse_local_name(opts.reference));
    ref = r;
  }
  // The layer's ID is its diff ID, known only after one pass: keep a seekable copy.
  UniqueFd spool;
  struct stat sb {};
  if (::fstat(in, &sb) != 0) {
    return fail_errno("stat", what);
  }
  if (!S_ISREG(sb.st_mode)) {
    std::string tmp_dir = st.options().graph_root + "/tmp";
    BERTH_TRYV(util::make_dirs(tmp_dir, 0700));
    int tfd = ::open(tmp_dir.c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    if (tfd < 0) {
      return fail_errno("create temporary file in", tmp_dir);
    }
    spool.reset(tfd);
    std::vector<char> buf(1 << 20);
    for (;;) {
      ssize_t n = ::read(in, buf.data(), buf.size());
      if (n < 0 && errno == EINTR) {
        continue;
      }
      if (n < 0) {
        return fail_errno("read", what);
      }
      if (n == 0) {
        break;
      }
      BERTH_TRYV(util::write_all(tfd, std::string_view(buf.data(), static_cast<size_t>(n)), what));
    }
    in = tfd;
    if (::fstat(in, &sb) != 0) {
      return fail_errno("stat", what);
    }
  }
  BlobRange range{in, 0, sb.st_size};
  BERTH_TRY(auto sums, digest_stream(range, -1));
  std::string now = format_rfc3339(static_cast<int64_t>(std::time(nullptr)));
  json cfg = {{"created", now},
              {"architecture", opts.architecture.empty() ? host_arch_name() : opts.architecture},
              {"os", opts.os},
              {"config", config},
              {"rootfs", {{"type", "layers"}, {"diff_ids", json::array({sums.diff_id})}}},
              {"history", json::array({json{{"created", now},
                                            {"created_by", "/bin/sh -c #(nop) ADD file:" +
                                                               digest_hex(sums.diff_id) + " in / "},
                                            {"comment", opts.message}}})}};
  unsigned char magic[4] = {};
  ssize_t got = ::pread(in, magic, sizeof magic, 0);
  Compression comp = sniff_compression(magic, got > 0 ? static_cast<size_t>(got) : 0);
  PendingImage p;
  p.config = cfg.dump();
  p.what = what;
  p.layers.push_back({range, sums.compressed_digest});
  Manifest m;
  m.config = {media::kOciConfig,
              util::sha256_digest(p.config),
              static_cast<int64_t>(p.config.size()),
              {},
              {},
              {},
              false};
  m.layers.push_back({layer_type_for(comp, true),
                      sums.compressed_digest,
                      sums.compressed_size,
                      {},
                      {},
                      {},
                      false});
  p.manifest = serialize_manifest(m, ManifestKind::OciManifest);
  p.manifest_type = media::kOciManifest;
  if (ref) {
    p.names.push_back(ref->string());
  }
  return store_image(st, p);
}

}  // namespace berth::image
