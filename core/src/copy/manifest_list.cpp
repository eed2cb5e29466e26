// Manifest lists kept as files beside the store (see copy.hpp for the layout).
#include <sys/mman.h>
#include <unistd.h>

#include <filesystem>

#include "berth/copy/copy.hpp"
#include "berth/engine/engine.hpp"
#include "berth/image/image_service.hpp"
#include "berth/image/manifest.hpp"
#include "berth/image/reference.hpp"
#include "berth/util/digest.hpp"
#include "berth/util/fs.hpp"
#include "copy_internal.hpp"

namespace berth::copy {

using nlohmann::json;

namespace {

Result<std::string> list_name(const std::string& list) {
  BERTH_TRY(auto r, image::parse_local_name(list));
  return r.string();
}

std::string list_path(engine::Engine& engine, const std::string& name) {
  return engine.graphroot() + "/manifest-lists/" + image::digest_hex(util::sha256_digest(name)) +
         ".json";
}

Result<json> load_list(engine::Engine& engine, const std::string& list) {
  BERTH_TRY(std::string name, list_name(list));
  std::string path = list_path(engine, name);
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) {
    return fail(Errc::NotFound, list +
                                    ": no such manifest list (create it with `berth manifest "
                                    "create " +
                                    list + "`)");
  }
  BERTH_TRY(std::string text, util::read_file(path));
  json j = json::parse(text, nullptr, false);
  if (!j.is_object() || !j.contains("index")) {
    return fail(Errc::Corrupt, path +
                                   ": manifest list file is damaged; remove it with "
                                   "`berth manifest rm " +
                                   list + "`");
  }
  return j;
}

Result<void> save_list(engine::Engine& engine, const json& j) {
  std::string path = list_path(engine, j["name"].get<std::string>());
  BERTH_TRYV(util::make_dirs(std::filesystem::path(path).parent_path(), 0700));
  return util::write_file_atomic(path, j.dump(), 0600);
}

void put_entry(json& j, const json& desc, const json& entry) {
  auto& ms = j["index"]["manifests"];
  for (auto it = ms.begin(); it != ms.end(); ++it) {
    if ((*it)["digest"] == desc["digest"]) {
      ms.erase(it);
      break;
    }
  }
  ms.push_back(desc);
  j["entries"][desc["digest"].get<std::string>()] = entry;
}

json platform_json(const std::string& os, const std::string& arch, const std::string& variant) {
  json p = {{"os", os}, {"architecture", arch}};
  if (!variant.empty()) {
    p["variant"] = variant;
  }
  return p;
}

void override_platform(json& desc, const ManifestAddOptions& o) {
  if (!o.os.empty()) {
    desc["platform"]["os"] = o.os;
  }
  if (!o.arch.empty()) {
    desc["platform"]["architecture"] = o.arch;
  }
  if (!o.variant.empty()) {
    desc["platform"]["variant"] = o.variant;
  }
}

}  // namespace

bool manifest_exists(engine::Engine& engine, const std::string& list) {
  auto name = list_name(list);
  std::error_code ec;
  return name && std::filesystem::exists(list_path(engine, *name), ec);
}

Result<std::string> manifest_create(engine::Engine& engine, const std::string& list,
                                    const std::vector<std::string>& images,
                                    const ManifestAddOptions& opts) {
  BERTH_TRY(std::string name, list_name(list));
  if (manifest_exists(engine, list)) {
    return fail(Errc::Conflict, list + ": a manifest list of this name exists");
  }
  json j = {{"name", name},
            {"index",
             {{"schemaVersion", 2},
              {"mediaType", image::media::kOciIndex},
              {"manifests", json::array()}}},
            {"entries", json::object()}};
  BERTH_TRYV(save_list(engine, j));
  for (const auto& img : images) {
    auto added = manifest_add(engine, list, img, opts);
    if (!added) {
      (void)manifest_rm(engine, list);
      return fail(std::move(added).error());
    }
  }
  return util::sha256_digest(name);
}

Result<std::string> manifest_add(engine::Engine& engine, const std::string& list,
                                 const std::string& image_in, const ManifestAddOptions& opts) {
  BERTH_TRY(json j, load_list(engine, list));
  BERTH_TRY(store::Store * st, engine.store());
  bool remote = image_in.starts_with("docker://");
  std::string image_ref = remote ? image_in.substr(9) : image_in;
  if (!remote) {
    auto img = image::lookup_image(*st, image_ref);
    if (img) {
      BERTH_TRY(auto cfg, image::parse_config(img->config));
      json desc = {{"mediaType",
                    img->manifest_type.empty() ? image::media::kOciManifest : img->manifest_type},
                   {"digest", img->digest},
                   {"size", img->manifest.size()},
                   {"platform", platform_json(cfg.os.empty() ? "linux" : cfg.os, cfg.architecture,
                                              cfg.variant)}};
      override_platform(desc, opts);
      put_entry(j, desc, {{"image", img->id}});
      BERTH_TRYV(save_list(engine, j));
      return img->digest;
    }
    if (img.error().code() != Errc::NotFound) {
      return fail(std::move(img).error());
    }
  }
  // A registry image: record its manifest (and its platform, from the config).
  BERTH_TRY(auto names, resolve_name(engine.config().registries, image_ref, false, nullptr));
  const std::string& ref = names.front();
  const config::Registry* r = engine.config().registries.find_registry(ref);
  BERTH_TRY(auto topts,
            transport_options(engine.config().registries, ref, opts.access, r && r->insecure));
  BERTH_TRY(sdk::Transport * t, docker_transport(engine));
  BERTH_TRY(auto src, t->open_source(ref, topts));
  BERTH_TRY(auto top, src->manifest(""));
  BERTH_TRY(auto kind, image::detect_manifest_kind(top.bytes, top.media_type));
  BERTH_TRY(image::Reference pr, image::parse_reference(ref));
  std::vector<sdk::Manifest> add;
  std::vector<json> platforms;
  if (kind == image::ManifestKind::OciIndex || kind == image::ManifestKind::DockerList) {
    BERTH_TRY(auto idx, image::parse_index(top.bytes));
    std::string arch = opts.arch.empty() ? host_arch_name() : opts.arch;
    for (const auto& d : idx.manifests) {
      if (!opts.all && !(d.has_platform && d.platform.architecture == arch)) {
        continue;
      }
      BERTH_TRY(auto m, src->manifest(d.digest));
      add.push_back(std::move(m));
      platforms.push_back(
          platform_json(d.platform.os, d.platform.architecture, d.platform.variant));
      if (!opts.all) {
        break;
      }
    }
  } else {
    BERTH_TRY(auto man, image::parse_manifest(top.bytes));
    image::Descriptor cd = man.config;
    // The config is small; its os/architecture give the platform.
    UniqueFd fd(::memfd_create("berth-config", MFD_CLOEXEC));
    if (!fd) {
      return fail_errno("memfd_create", ref);
    }
    if (cd.size > static_cast<int64_t>(image::kMaxConfigSize)) {
      return fail(Errc::InvalidArgument, ref + ": config too large");
    }
    BERTH_TRY(int64_t n, src->fetch_blob({cd.digest, cd.size, cd.media_type}, 0, fd.get()));
    std::string bytes(static_cast<size_t>(n), '\0');
    if (::pread(fd.get(), bytes.data(), bytes.size(), 0) != static_cast<ssize_t>(bytes.size())) {
      return fail_errno("read config of", ref);
    }
    if (util::sha256_digest(bytes) != cd.digest) {
      return fail(Errc::Corrupt, ref + ": config digest mismatch");
    }
    BERTH_TRY(auto cfg, image::parse_config(bytes));
    add.push_back(top);
    platforms.push_back(platform_json(cfg.os, cfg.architecture, cfg.variant));
  }
  if (add.empty()) {
    return fail(Errc::NotFound, ref +
                                    ": no manifest for this architecture in its list; use "
                                    "--all or --arch");
  }
  for (size_t i = 0; i < add.size(); ++i) {
    json desc = {{"mediaType", add[i].media_type},
                 {"digest", add[i].digest},
                 {"size", add[i].bytes.size()},
                 {"platform", platforms[i]}};
    override_platform(desc, opts);
    put_entry(
        j, desc,
        {{"source", pr.name()}, {"manifest", add[i].bytes}, {"media_type", add[i].media_type}});
  }
  BERTH_TRYV(save_list(engine, j));
  return add.front().digest;
}

Result<void> manifest_remove_entry(engine::Engine& engine, const std::string& list,
                                   const std::string& digest) {
  BERTH_TRY(json j, load_list(engine, list));
  auto& ms = j["index"]["manifests"];
  for (auto it = ms.begin(); it != ms.end(); ++it) {
    if ((*it)["digest"] == digest) {
      ms.erase(it);
      j["entries"].erase(digest);
      return save_list(engine, j);
    }
  }
  return fail(Errc::NotFound, list + ": no entry with digest " + digest);
}

Result<json> manifest_inspect(engine::Engine& engine, const std::string& list) {
  BERTH_TRY(json j, load_list(engine, list));
  return j["index"];
}

Result<void> manifest_rm(engine::Engine& engine, const std::string& list) {
  BERTH_TRY(std::string name, list_name(list));
  if (!manifest_exists(engine, list)) {
    return fail(Errc::NotFound, list + ": no such manifest list");
  }
  std::string path = list_path(engine, name);
  if (::unlink(path.c_str()) != 0) {
    return fail_errno("remove manifest list", path);
  }
  return {};
}

Result<PushResult> manifest_push(engine::Engine& engine, const std::string& list,
                                 const std::string& destination, const PushOptions& opts) {
  BERTH_TRY(json j, load_list(engine, list));
  std::string dest_in = destination.starts_with("docker://") ? destination.substr(9) : destination;
  BERTH_TRY(image::Reference dref, image::parse_normalized(dest_in));
  dref = image::with_default_tag(dref);
  std::string what = "manifest push " + dref.string();
  BERTH_TRY(store::Store * st, engine.store());
  const auto& reg = engine.config().registries;
  const config::Registry* r = reg.find_registry(dref.string());
  BERTH_TRY(auto topts, transport_options(reg, dref.string(), opts.access, r && r->insecure));
  BERTH_TRY(sdk::Transport * t, docker_transport(engine));
  json index = j["index"];
  index["manifests"] = json::array();
  for (const auto& desc : j["index"]["manifests"]) {
    std::string digest = desc["digest"].get<std::string>();
    const json& e = j["entries"][digest];
    json d = desc;
    if (e.contains("image")) {
      BERTH_TRY(auto img, st->image(e["image"].get<std::string>()));
      if (!img) {
        return fail(Errc::NotFound, what + ": image " + e["image"].get<std::string>() +
                                        " of the list is gone; remove it from the list");
      }
      PushOptions po = opts;
      BERTH_TRY(auto m, push_registry(engine, *st, *img, dref, "", po));
      d["digest"] = m.digest;
      d["size"] = m.bytes.size();
      d["mediaType"] = m.media_type;
    } else {
      // A registry manifest: its blobs are mounted from the source repository.
      BERTH_TRY(image::Reference src, image::parse_reference(e["source"].get<std::string>()));
      if (src.domain != dref.domain) {
        return fail(Errc::NotSupported,
                    what + ": entry " + digest + " lives on " + src.domain +
                        "; copying manifests between registries is not supported, pull it and "
                        "add the local image instead");
      }
      BERTH_TRY(auto dst, t->open_destination(dref.string(), topts));
      sdk::Manifest m{e["manifest"].get<std::string>(), e["media_type"].get<std::string>(), digest};
      BERTH_TRY(auto man, image::parse_manifest(m.bytes));
      std::vector<image::Descriptor> blobs = man.layers;
      blobs.push_back(man.config);
      for (const auto& b : blobs) {
        sdk::BlobInfo bi{b.digest, b.size, b.media_type};
        BERTH_TRY(bool has, dst->has_blob(bi));
        if (!has) {
          BERTH_TRY(bool mounted, dst->mount_blob(bi, src.path));
          if (!mounted) {
            return fail(Errc::NotSupported,
                        what + ": blob " + b.digest + " could not be mounted from " + src.name());
          }
        }
      }
      BERTH_TRYV(dst->put_manifest(m, ""));
    }
    index["manifests"].push_back(d);
  }
  sdk::Manifest out;
  out.bytes = index.dump();
  out.media_type = image::media::kOciIndex;
  out.digest = util::sha256_digest(out.bytes);
  BERTH_TRY(auto dst, t->open_destination(dref.string(), topts));
  auto put = dst->put_manifest(out, dref.tag);
  if (!put) {
    return fail(std::move(put).error().wrap(what));
  }
  BERTH_TRYV(dst->commit());
  return PushResult{out.digest, dref.string()};
}

}  // namespace berth::copy
