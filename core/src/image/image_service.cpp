// Lookup, listing, inspection, names, removal, mount, df, check and reset of images.
#include "berth/image/image_service.hpp"

#include <fnmatch.h>

#include <algorithm>
#include <map>
#include <set>

#include "berth/image/manifest.hpp"
#include "berth/image/reference.hpp"
#include "berth/util/digest.hpp"
#include "image_internal.hpp"

namespace berth::image {

using nlohmann::json;

namespace {

Error not_known(std::string_view name) {
  return Error(Errc::NotFound, std::string(name) + ": image not known");
}

Result<store::ImageRecord> by_id(store::Store& st, const std::string& id) {
  BERTH_TRY(auto img, st.image(id));
  if (!img) {
    return fail(Errc::NotFound, id + ": image not known");
  }
  return *img;
}

// Layers of an image, base first.
Result<std::vector<store::LayerRecord>> chain_of(store::Store& st, const store::ImageRecord& img) {
  std::vector<store::LayerRecord> out;
  std::string id = img.top_layer;
  while (!id.empty()) {
    BERTH_TRY(auto l, st.layer(id));
    if (!l) {
      break;
    }
    id = l->parent;
    out.push_back(std::move(*l));
  }
  std::reverse(out.begin(), out.end());
  return out;
}

std::string repo_of(const std::string& name) {
  auto r = parse_reference(name);
  return r ? r->name() : name;
}

std::vector<std::string> repo_digests(const store::ImageRecord& img) {
  std::set<std::string> out(img.digests.begin(), img.digests.end());
  if (!img.digest.empty()) {
    for (auto& n : img.names) {
      out.insert(repo_of(n) + "@" + img.digest);
    }
  }
  return {out.begin(), out.end()};
}

json labels_of(const ImageConfig& c) {
  auto it = c.config.find("Labels");
  if (it == c.config.end() || !it->is_object() || it->empty()) {
    return nullptr;
  }
  return *it;
}

}  // namespace

Result<LookupResult> lookup_detail(store::Store& st, std::string_view input) {
  std::string s(input);
  if (s.empty()) {
    return fail(Errc::InvalidArgument, "no image name given");
  }
  std::string hex = s.starts_with("sha256:") ? s.substr(7) : s;
  if (is_hex_id_prefix(hex)) {
    BERTH_TRY(auto ids, st.images_by_id_prefix(hex));
    if (ids.size() > 1) {
      return fail(Errc::InvalidArgument, s + ": more than one image matches this ID prefix; "
                                             "give more characters");
    }
    if (ids.size() == 1) {
      BERTH_TRY(auto img, by_id(st, ids.front()));
      return LookupResult{std::move(img), ""};
    }
  }
  BERTH_TRY(auto exact, st.image_by_name(s));
  if (exact) {
    BERTH_TRY(auto img, by_id(st, *exact));
    return LookupResult{std::move(img), s};
  }
  auto parsed = parse_reference(s);
  if (!parsed) {
    return fail(std::move(parsed).error());
  }
  Reference ref = *parsed;
  BERTH_TRY(auto names, st.image_names());
  if (!ref.digest.empty()) {
    // name@digest: an image of that repository whose manifest digest matches.
    for (auto& [n, id] : names) {
      auto nr = parse_reference(n);
      if (!nr) {
        continue;
      }
      bool repo_ok =
          nr->name() == ref.name() ||
          (ref.domain.empty() && (nr->path == ref.path || nr->path == "library/" + ref.path));
      if (!repo_ok) {
        continue;
      }
      BERTH_TRY(auto img, by_id(st, id));
      auto ds = repo_digests(img);
      if (img.digest == ref.digest ||
          std::find(ds.begin(), ds.end(), nr->name() + "@" + ref.digest) != ds.end()) {
        return LookupResult{std::move(img), ""};
      }
    }
    return fail(not_known(s));
  }
  ref = with_default_tag(ref);
  std::vector<std::string> candidates;
  if (!ref.domain.empty()) {
    candidates.push_back(ref.string());
    if (ref.domain == "docker.io" && ref.path.find('/') == std::string::npos) {
      candidates.push_back("docker.io/library/" + ref.path + ":" + ref.tag);
    }
  } else {
    candidates.push_back("localhost/" + ref.path + ":" + ref.tag);
    if (ref.path.find('/') == std::string::npos) {
      candidates.push_back("docker.io/library/" + ref.path + ":" + ref.tag);
    }
    candidates.push_back("docker.io/" + ref.path + ":" + ref.tag);
  }
  std::map<std::string, std::string> by_name(names.begin(), names.end());
  for (auto& c : candidates) {
    if (auto it = by_name.find(c); it != by_name.end()) {
      BERTH_TRY(auto img, by_id(st, it->second));
      return LookupResult{std::move(img), c};
    }
  }
  if (ref.domain.empty()) {
    // Any registry's <reg>/<path>:<tag>, as Podman matches short names against local images.
    for (auto& [n, id] : names) {
      auto nr = parse_reference(n);
      if (nr && nr->tag == ref.tag &&
          (nr->path == ref.path || nr->path.ends_with("/" + ref.path))) {
        BERTH_TRY(auto img, by_id(st, id));
        return LookupResult{std::move(img), n};
      }
    }
  }
  return fail(not_known(s));
}

Result<store::ImageRecord> lookup_image(store::Store& st, std::string_view name_or_id) {
  BERTH_TRY(auto r, lookup_detail(st, name_or_id));
  return std::move(r.image);
}

Result<bool> image_exists(store::Store& st, std::string_view name) {
  auto r = lookup_detail(st, name);
  if (r) {
    return true;
  }
  if (r.error().code() == Errc::NotFound) {
    return false;
  }
  return fail(std::move(r).error());
}

Result<json> list_images(store::Store& st, const ListOptions& opts) {
  BERTH_TRY(auto imgs, st.images());
  BERTH_TRY(auto layers, st.layers());
  std::map<std::string, store::LayerRecord> lmap;
  for (auto& l : layers) {
    lmap[l.id] = l;
  }
  // How many images use each layer, for SharedSize.
  std::map<std::string, int> layer_images;
  std::map<std::string, std::vector<std::string>> chains;
  for (auto& img : imgs) {
    for (std::string id = img.top_layer; !id.empty() && lmap.contains(id); id = lmap[id].parent) {
      ++layer_images[id];
      chains[img.id].push_back(id);
    }
  }
  std::map<std::string, int64_t> created_of;
  std::map<std::string, ImageConfig> cfgs;
  for (auto& img : imgs) {
    auto c = parse_config(img.config);
    cfgs[img.id] = c ? std::move(*c) : ImageConfig{};
    created_of[img.id] = cfgs[img.id].created_unix ? cfgs[img.id].created_unix : img.created;
  }
  // Filters.
  struct Filter {
    std::string key, value;
  };
  std::vector<Filter> filters;
  for (auto& f : opts.filters) {
    auto eq = f.find('=');
    if (eq == std::string::npos) {
      return fail(Errc::InvalidArgument, "invalid filter \"" + f + "\": use key=value");
    }
    Filter fl{f.substr(0, eq), f.substr(eq + 1)};
    if (fl.key != "reference" && fl.key != "before" && fl.key != "since" && fl.key != "label" &&
        fl.key != "dangling") {
      return fail(Errc::InvalidArgument, "invalid filter \"" + fl.key +
                                             "\" (supported: reference, before, since, label, "
                                             "dangling)");
    }
    if (fl.key == "before" || fl.key == "since") {
      BERTH_TRY(auto ref, lookup_image(st, fl.value));
      fl.value = ref.id;
    }
    filters.push_back(fl);
  }
  auto keep = [&](const store::ImageRecord& img) {
    for (auto& f : filters) {
      if (f.key == "dangling") {
        bool want = f.value == "true" || f.value == "1";
        if (img.names.empty() != want) {
          return false;
        }
      } else if (f.key == "before") {
        if (created_of[img.id] >= created_of[f.value]) {
          return false;
        }
      } else if (f.key == "since") {
        if (created_of[img.id] <= created_of[f.value]) {
          return false;
        }
      } else if (f.key == "label") {
        auto lbl = labels_of(cfgs[img.id]);
        auto eq = f.value.find('=');
        std::string k = f.value.substr(0, eq);
        if (!lbl.is_object() || !lbl.contains(k)) {
          return false;
        }
        if (eq != std::string::npos && lbl[k] != f.value.substr(eq + 1)) {
          return false;
        }
      } else if (f.key == "reference") {
        bool any = false;
        for (auto& n : img.names) {
          auto r = parse_reference(n);
          std::vector<std::string> forms = {n};
          if (r) {
            forms.push_back(r->familiar());
            forms.push_back(r->name());
            Reference untagged = *r;
            untagged.tag.clear();
            forms.push_back(untagged.familiar());
          }
          for (auto& form : forms) {
            if (::fnmatch(f.value.c_str(), form.c_str(), 0) == 0) {
              any = true;
            }
          }
        }
        if (!any) {
          return false;
        }
      }
    }
    return true;
  };
  json out = json::array();
  std::vector<const store::ImageRecord*> sel;
  for (auto& img : imgs) {
    if (keep(img)) {
      sel.push_back(&img);
    }
  }
  auto first_name = [](const store::ImageRecord* i) {
    return i->names.empty() ? std::string("\xff") : i->names.front();
  };
  std::stable_sort(sel.begin(), sel.end(), [&](auto* a, auto* b) {
    if (opts.sort == "id") {
      return a->id < b->id;
    }
    if (opts.sort == "repository" || opts.sort == "tag") {
      return first_name(a) < first_name(b);
    }
    if (opts.sort == "size") {
      return a->size < b->size;
    }
    return created_of[a->id] > created_of[b->id];
  });
  for (auto* img : sel) {
    int64_t size = 0;
    int64_t shared = 0;
    for (auto& lid : chains[img->id]) {
      int64_t ls = std::max<int64_t>(lmap[lid].uncompressed_size, 0);
      size += ls;
      if (layer_images[lid] > 1) {
        shared += ls;
      }
    }
    json names = img->names;
    json hist = img->names_history;
    int64_t created = created_of[img->id];
    json j = {{"Id", img->id},
              {"ParentId", ""},
              {"RepoTags", img->names.empty() ? json(nullptr) : names},
              {"RepoDigests", repo_digests(*img)},
              {"Size", size},
              {"SharedSize", shared},
              {"VirtualSize", size},
              {"Labels", labels_of(cfgs[img->id])},
              {"Containers", opts.containers ? opts.containers(img->id) : 0},
              {"Names", img->names.empty() ? json(nullptr) : names},
              {"Digest", img->digest},
              {"History", img->names_history.empty() ? json(nullptr) : hist},
              {"Created", created},
              {"CreatedAt", format_rfc3339(created)},
              {"Dangling", img->names.empty()}};
    out.push_back(std::move(j));
  }
  return out;
}

Result<json> inspect_image(store::Store& st, std::string_view name) {
  BERTH_TRY(auto img, lookup_image(st, name));
  BERTH_TRY(auto cfg, parse_config(img.config));
  BERTH_TRY(auto layers, chain_of(st, img));
  int64_t size = 0;
  for (auto& l : layers) {
    size += std::max<int64_t>(l.uncompressed_size, 0);
  }
  json history = json::array();
  for (auto& h : cfg.history) {
    json e = json::object();
    if (!h.created.empty()) {
      e["created"] = h.created;
    }
    if (!h.created_by.empty()) {
      e["created_by"] = h.created_by;
    }
    if (!h.author.empty()) {
      e["author"] = h.author;
    }
    if (!h.comment.empty()) {
      e["comment"] = h.comment;
    }
    if (h.empty_layer) {
      e["empty_layer"] = true;
    }
    history.push_back(e);
  }
  std::string comment = cfg.raw.value("comment", std::string());
  if (comment.empty() && !cfg.history.empty()) {
    comment = cfg.history.back().comment;
  }
  json graph_data = json::object();
  if (!img.top_layer.empty()) {
    auto p = st.driver().layer_path(img.top_layer);
    if (p) {
      graph_data["UpperDir"] = *p;
    }
    std::string lower;
    for (size_t i = layers.size(); i-- > 1;) {
      auto lp = st.driver().layer_path(layers[i - 1].id);
      if (lp) {
        lower += (lower.empty() ? "" : ":") + *lp;
      }
    }
    if (!lower.empty()) {
      graph_data["LowerDir"] = lower;
    }
  }
  json annotations = json::object();
  if (auto m = parse_manifest(img.manifest)) {
    for (auto& [k, v] : m->annotations) {
      annotations[k] = v;
    }
  }
  std::string created = cfg.created.empty() ? format_rfc3339(img.created) : cfg.created;
  json j = {{"Id", img.id},
            {"Digest", img.digest},
            {"RepoTags", img.names},
            {"RepoDigests", repo_digests(img)},
            {"Parent", ""},
            {"Comment", comment},
            {"Created", created},
            {"Config", cfg.config},
            {"Version", cfg.raw.value("docker_version", std::string())},
            {"Author", cfg.author},
            {"Architecture", cfg.architecture},
            {"Os", cfg.os},
            {"Size", size},
            {"VirtualSize", size},
            {"GraphDriver", {{"Name", st.driver().name()}, {"Data", graph_data}}},
            {"RootFS", {{"Type", "layers"}, {"Layers", cfg.diff_ids}}},
            {"Labels", labels_of(cfg)},
            {"Annotations", annotations},
            {"ManifestType", img.manifest_type},
            {"User", cfg.config.value("User", std::string())},
            {"History", history},
            {"NamesHistory", img.names_history}};
  if (!cfg.variant.empty()) {
    j["Variant"] = cfg.variant;
  }
  return j;
}

Result<json> image_history(store::Store& st, std::string_view name) {
  BERTH_TRY(auto img, lookup_image(st, name));
  BERTH_TRY(auto cfg, parse_config(img.config));
  BERTH_TRY(auto layers, chain_of(st, img));
  json out = json::array();
  size_t li = 0;
  std::vector<json> rows;
  for (auto& h : cfg.history) {
    int64_t size = 0;
    if (!h.empty_layer && li < layers.size()) {
      size = std::max<int64_t>(layers[li].uncompressed_size, 0);
      ++li;
    }
    rows.push_back({{"id", "<missing>"},
                    {"created", h.created},
                    {"CreatedBy", h.created_by},
                    {"size", size},
                    {"comment", h.comment},
                    {"tags", nullptr}});
  }
  if (rows.empty()) {
    rows.push_back({{"id", img.id},
                    {"created", cfg.created},
                    {"CreatedBy", ""},
                    {"size", 0},
                    {"comment", ""},
                    {"tags", nullptr}});
  }
  rows.back()["id"] = img.id;
  if (!img.names.empty()) {
    rows.back()["tags"] = img.names;
  }
  for (auto it = rows.rbegin(); it != rows.rend(); ++it) {
    out.push_back(*it);
  }
  return out;
}

Result<void> tag_image(store::Store& st, std::string_view image, std::string_view new_name) {
  BERTH_TRY(auto img, lookup_image(st, image));
  BERTH_TRY(auto ref, parse_local_name(new_name));
  if (!ref.digest.empty()) {
    return fail(Errc::InvalidArgument,
                "tag " + std::string(new_name) + ": a tag cannot contain a digest");
  }
  return st.add_name(img.id, ref.string());
}

Result<void> untag_image(store::Store& st, std::string_view image,
                         const std::vector<std::string>& names) {
  BERTH_TRY(auto img, lookup_image(st, image));
  if (names.empty()) {
    for (auto& n : img.names) {
      BERTH_TRYV(st.remove_name(img.id, n));
    }
    return {};
  }
  for (auto& n : names) {
    BERTH_TRY(auto ref, parse_local_name(n));
    std::string full = ref.string();
    bool held = std::find(img.names.begin(), img.names.end(), full) != img.names.end();
    if (!held) {
      // A short name Podman-style: docker.io/library/<n> too.
      auto norm = parse_normalized(n);
      if (norm) {
        std::string alt = with_default_tag(*norm).string();
        if (std::find(img.names.begin(), img.names.end(), alt) != img.names.end()) {
          full = alt;
          held = true;
        }
      }
    }
    if (!held) {
      return fail(Errc::NotFound,
                  std::string(n) + ": tag not known on image " + img.id.substr(0, 12));
    }
    BERTH_TRYV(st.remove_name(img.id, full));
  }
  return {};
}

Result<RemoveReport> remove_images(store::Store& st, const std::vector<std::string>& images,
                                   const RemoveOptions& opts) {
  RemoveReport rep;
  for (auto& name : images) {
    BERTH_TRY(auto found, lookup_detail(st, name));
    auto& img = found.image;
    if (!found.matched_name.empty() && img.names.size() > 1) {
      BERTH_TRYV(st.remove_name(img.id, found.matched_name));
      rep.untagged.push_back(found.matched_name);
      continue;
    }
    if (img.names.size() > 1 && !opts.force) {
      return fail(Errc::Conflict, "unable to delete image " + img.id.substr(0, 12) +
                                      " (must force) - image is referenced in multiple "
                                      "repositories");
    }
    if (opts.in_use && opts.in_use(img.id)) {
      return fail(Errc::Conflict, "image " + img.id.substr(0, 12) +
                                      " is in use by a container: remove the "
                                      "container first (berth rm), then the image");
    }
    for (auto& n : img.names) {
      rep.untagged.push_back(n);
    }
    BERTH_TRYV(st.remove_image(img.id));
    rep.deleted.push_back(img.id);
  }
  return rep;
}

Result<std::vector<std::string>> prune_images(store::Store& st, bool all,
                                              const InUsePredicate& in_use) {
  BERTH_TRY(auto imgs, st.images());
  std::vector<std::string> removed;
  for (auto& img : imgs) {
    if (!all && !img.names.empty()) {
      continue;
    }
    if (in_use && in_use(img.id)) {
      continue;
    }
    auto r = st.remove_image(img.id);
    if (!r && r.error().code() != Errc::NotFound) {
      return fail(std::move(r).error());
    }
    if (r) {
      removed.push_back(img.id);
    }
  }
  return removed;
}

Result<std::string> mount_image(store::Store& st, std::string_view name) {
  BERTH_TRY(auto img, lookup_image(st, name));
  if (img.top_layer.empty()) {
    return fail(Errc::NotSupported, std::string(name) + ": the image has no layers to mount");
  }
  sdk::MountOptions mo;
  mo.read_only = true;
  return st.driver().mount(img.top_layer, mo);
}

Result<void> unmount_image(store::Store& st, std::string_view name) {
  BERTH_TRY(auto img, lookup_image(st, name));
  if (img.top_layer.empty()) {
    return {};
  }
  return st.driver().unmount(img.top_layer);
}

Result<ImagesDiskUsage> images_disk_usage(store::Store& st, const ContainerCounter& containers) {
  BERTH_TRY(auto imgs, st.images());
  BERTH_TRY(auto layers, st.layers());
  std::map<std::string, store::LayerRecord> lmap;
  for (auto& l : layers) {
    lmap[l.id] = l;
  }
  std::map<std::string, int> uses;
  std::map<std::string, std::vector<std::string>> chains;
  for (auto& img : imgs) {
    for (std::string id = img.top_layer; !id.empty() && lmap.contains(id); id = lmap[id].parent) {
      ++uses[id];
      chains[img.id].push_back(id);
    }
  }
  ImagesDiskUsage du;
  du.images = json::array();
  std::set<std::string> counted;
  std::set<std::string> active_layers;
  for (auto& img : imgs) {
    int n = containers ? containers(img.id) : 0;
    if (n > 0) {
      for (auto& l : chains[img.id]) {
        active_layers.insert(l);
      }
    }
  }
  for (auto& img : imgs) {
    int n = containers ? containers(img.id) : 0;
    int64_t size = 0;
    int64_t shared = 0;
    for (auto& l : chains[img.id]) {
      int64_t ls = std::max<int64_t>(lmap[l].uncompressed_size, 0);
      size += ls;
      if (uses[l] > 1) {
        shared += ls;
      }
      if (counted.insert(l).second) {
        du.size += ls;
        if (!active_layers.contains(l)) {
          du.reclaimable += ls;
        }
      }
    }
    ++du.total;
    if (n > 0) {
      ++du.active;
    }
    std::string repo = "<none>";
    std::string tag = "<none>";
    if (!img.names.empty()) {
      if (auto r = parse_reference(img.names.front())) {
        repo = r->name();
        tag = r->tag.empty() ? "<none>" : r->tag;
      }
    }
    auto cfg = parse_config(img.config);
    du.images.push_back({{"Repository", repo},
                         {"Tag", tag},
                         {"ImageID", img.id},
                         {"Created", cfg ? cfg->created_unix : img.created},
                         {"Size", size},
                         {"SharedSize", shared},
                         {"UniqueSize", size - shared},
                         {"Containers", n}});
  }
  return du;
}

Result<store::CheckReport> check(store::Store& st, bool repair) {
  BERTH_TRY(auto rep, st.check(repair));
  BERTH_TRY(auto imgs, st.images());
  for (auto& img : imgs) {
    std::string why;
    if (digest_hex(util::sha256_digest(img.config)) != img.id) {
      why = "its config does not match its ID";
    } else if (!img.digest.empty() && util::sha256_digest(img.manifest) != img.digest) {
      why = "its manifest does not match its digest " + img.digest;
    } else if (auto cfg = parse_config(img.config); !cfg) {
      why = "its config does not parse: " + cfg.error().message();
    }
    if (why.empty()) {
      continue;
    }
    rep.problems.push_back("image " + img.id + ": " + why);
    if (repair) {
      BERTH_TRYV(st.remove_image(img.id));
      rep.repaired.push_back("removed image " + img.id);
    }
  }
  BERTH_TRY(auto layers, st.layers());
  for (auto& l : layers) {
    if (l.incomplete) {
      continue;
    }
    std::error_code ec;
    if (!std::filesystem::exists(st.layer_meta_path(l.id, ".tar-split"), ec)) {
      rep.problems.push_back("layer " + l.id +
                             ": no tar-split record (the layer cannot be saved or pushed)");
    }
  }
  return rep;
}

Result<void> reset(store::Store& st) {
  return st.reset();
}

}  // namespace berth::image
