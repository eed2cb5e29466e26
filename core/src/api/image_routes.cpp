// Image endpoints: list, inspect, history, tag, remove, save (streamed), load, import, prune.
#include <fcntl.h>
#include <unistd.h>

#include "berth/container/service.hpp"
#include "berth/engine/engine.hpp"
#include "berth/events/events.hpp"
#include "berth/image/image_service.hpp"
#include "berth/sdk/unique_fd.hpp"
#include "berth/util/log.hpp"
#include "routes.hpp"

namespace berth::api {
namespace {

using nlohmann::json;

// The store a request works on (read-only for readers), with its engine as `eng`.
#define API_STORE(var, eng, ro)             \
  API_ENGINE(eng);                          \
  auto var##_r = eng.store(ro);             \
  if (!var##_r) {                           \
    return error_response(var##_r.error()); \
  }                                         \
  store::Store& var = **var##_r

// Image ids used by containers, with counts.
std::map<std::string, int> image_users(engine::Engine& eng) {
  std::map<std::string, int> users;
  if (auto recs = container::records(eng)) {
    for (const auto& r : *recs) {
      users[r.image_id]++;
    }
  }
  return users;
}

// A row of GET /images/json as the client's API version has it: SharedSize is -1 unless asked
// for (shared-size=1, API 1.42); an image without tags nor digests shows "<none>:<none>" and
// "<none>@<none>" before API 1.43 and empty lists since; VirtualSize (the same as Size) is gone
// from API 1.44.
json docker_image_row(const json& p, const Request& req) {
  json tags = p.contains("RepoTags") && p["RepoTags"].is_array() ? p["RepoTags"] : json::array();
  json digests =
      p.contains("RepoDigests") && p["RepoDigests"].is_array() ? p["RepoDigests"] : json::array();
  if (!req.api_at_least("1.43") && tags.empty() && digests.empty()) {
    tags.push_back("<none>:<none>");
    digests.push_back("<none>@<none>");
  }
  const bool shared = req.api_at_least("1.42") && req.q_bool("shared-size");
  json labels = p.contains("Labels") && p["Labels"].is_object() && !p["Labels"].empty()
                    ? p["Labels"]
                    : json(nullptr);
  json row = {{"Id", sha256_id(p.value("Id", ""))},
              {"ParentId", p.value("ParentId", "")},
              {"RepoTags", tags},
              {"RepoDigests", digests},
              {"Created", p.value("Created", int64_t{0})},
              {"Size", p.value("Size", int64_t{0})},
              {"SharedSize", shared ? p.value("SharedSize", int64_t{0}) : int64_t{-1}},
              {"Labels", labels},
              {"Containers", p.value("Containers", 0)}};
  if (!req.api_at_least("1.44")) {
    row["VirtualSize"] = p.value("VirtualSize", p.value("Size", int64_t{0}));
  }
  return row;
}

// GET /images/{name}/json as the client's API version has it: from API 1.44 no VirtualSize, from
// 1.45 no Container and ContainerConfig (Config has the configuration).
json docker_image_inspect(const json& p, const Request& req) {
  json cfg = p.contains("Config") ? p["Config"] : json::object();
  json out = {{"Id", sha256_id(p.value("Id", ""))},
              {"RepoTags", p.value("RepoTags", json::array())},
              {"RepoDigests", p.value("RepoDigests", json::array())},
              {"Parent", p.value("Parent", "")},
              {"Comment", p.value("Comment", "")},
              {"Container", ""},
              {"ContainerConfig", cfg},
              {"DockerVersion", p.value("Version", "")},
              {"Author", p.value("Author", "")},
              {"Config", cfg},
              {"Architecture", p.value("Architecture", "")},
              {"Os", p.value("Os", "")},
              {"Size", p.value("Size", int64_t{0})},
              {"GraphDriver", p.value("GraphDriver", json::object())},
              {"RootFS", p.value("RootFS", json::object())},
              {"Metadata", {{"LastTagTime", "0001-01-01T00:00:00Z"}}}};
  // Created is never missing: without one in the image config it is the time the store
  // recorded the image (as Podman shows it), so API 1.44's omission of a missing one never applies.
  out["Created"] = p.value("Created", "");
  if (!req.api_at_least("1.44")) {
    out["VirtualSize"] = p.value("VirtualSize", p.value("Size", int64_t{0}));
  }
  if (req.api_at_least("1.45")) {
    out.erase("Container");
    out.erase("ContainerConfig");
  }
  return out;
}

// The `until` filter of GET /images/json (API 1.44, unversioned: every version has it): images
// created before a time (a timestamp or a Go duration back from now). Taken out of `filters`, as
// the image module does not know it; with several, the earliest counts.
Result<std::optional<int64_t>> take_until(std::vector<std::string>& filters) {
  std::optional<int64_t> until;
  const int64_t now = events::now_nano();
  for (auto it = filters.begin(); it != filters.end();) {
    if (it->rfind("until=", 0) != 0) {
      ++it;
      continue;
    }
    auto t = events::parse_time(it->substr(6), true, now);
    if (!t) {
      return fail(Errc::InvalidArgument, "invalid filter 'until=" + it->substr(6) +
                                             "': " + t.error().message() +
                                             " (give a timestamp or a duration such as 10m)");
    }
    const int64_t secs = *t / 1'000'000'000;
    until = until ? std::min(*until, secs) : secs;
    it = filters.erase(it);
  }
  return until;
}

// Docker's prune/rmi filters: "dangling=false" means every unused image.
bool prune_all(const std::vector<std::string>& filters) {
  for (const auto& f : filters) {
    if (f == "dangling=false" || f == "dangling=0") {
      return true;
    }
  }
  return false;
}

// Podman's image events (Docker's actions come from them in GET /events), as the CLI logs them.
void image_event(engine::Engine& eng, const char* status, const std::string& id,
                 const std::string& name) {
  events::Event e;
  e.type = std::string(events::type::kImage);
  e.status = status;
  e.id = id;
  e.name = name;
  events::emit_or_warn(eng.config(), e);
}

}  // namespace

void add_image_routes(Router& r, const std::shared_ptr<ServiceContext>& ctx) {
  auto list = [ctx](Request& req, bool libpod) -> Response {
    auto filters = docker_filters(req);
    if (!filters) {
      return error_response(filters.error());
    }
    API_STORE(st, eng, true);
    auto users = image_users(eng);
    auto until = take_until(*filters);
    if (!until) {
      return error_response(until.error());
    }
    image::ListOptions lo;
    lo.filters = *filters;
    lo.containers = [&](const std::string& id) { return users.count(id) ? users[id] : 0; };
    auto rows = image::list_images(st, lo);
    if (!rows) {
      return error_response(rows.error());
    }
    if (*until) {
      json kept = json::array();
      for (const auto& p : *rows) {
        if (p.value("Created", int64_t{0}) < **until) {
          kept.push_back(p);
        }
      }
      *rows = std::move(kept);
    }
    if (libpod) {
      return json_response(200, *rows);
    }
    json out = json::array();
    for (const auto& p : *rows) {
      out.push_back(docker_image_row(p, req));
    }
    return json_response(200, out);
  };
  r.add("GET", "/images/json", [list](Request& req) { return list(req, false); });
  r.add("GET", "/libpod/images/json", [list](Request& req) { return list(req, true); });

  // Saving streams the archive; registered before "{name*}/json" patterns so "get" wins.
  auto save = [ctx](std::vector<std::string> names) -> Response {
    if (names.empty()) {
      return error_response(400, "no image named: give names=IMAGE");
    }
    {
      API_STORE(st, eng, true);
      for (const auto& n : names) {
        if (auto img = image::lookup_image(st, n); !img) {
          return error_response(img.error());
        }
      }
    }
    Response resp;
    resp.content_type = "application/x-tar";
    resp.stream = [ctx, names](RawConnection& conn) {
      auto eng = ctx->open_engine();
      if (!eng) {
        return;
      }
      auto st = (*eng)->store(true);
      if (!st) {
        return;
      }
      image::SaveOptions so;
      so.format = image::SaveFormat::DockerArchive;
      so.fd = conn.fd;
      so.images = names;
      if (auto res = image::save(**st, so); !res) {
        spdlog::warn("API: save {}: {}", names.front(), res.error().message());
        return;
      }
      for (const auto& n : names) {
        auto img = image::lookup_image(**st, n);
        image_event(**eng, "save", img ? img->id : "", n);
      }
    };
    return resp;
  };
  r.add("GET", "/images/get", [save](Request& req) { return save(req.q_all("names")); });
  r.add("GET", "/images/{name*}/get", [save](Request& req) { return save({req.params["name"]}); });

  auto inspect = [ctx](Request& req, bool libpod) -> Response {
    API_STORE(st, eng, true);
    auto j = image::inspect_image(st, req.params["name"]);
    if (!j) {
      if (j.error().code() == Errc::NotFound) {
        return error_response(404, "No such image: " + req.params["name"]);
      }
      return error_response(j.error());
    }
    return json_response(200, libpod ? *j : docker_image_inspect(*j, req));
  };
  r.add("GET", "/images/{name*}/json", [inspect](Request& req) { return inspect(req, false); });
  r.add("GET", "/libpod/images/{name*}/json",
        [inspect](Request& req) { return inspect(req, true); });

  r.add("GET", "/images/{name*}/history", [ctx](Request& req) -> Response {
    API_STORE(st, eng, true);
    auto h = image::image_history(st, req.params["name"]);
    if (!h) {
      if (h.error().code() == Errc::NotFound) {
        return error_response(404, "No such image: " + req.params["name"]);
      }
      return error_response(h.error());
    }
    json out = json::array();
    for (const auto& e : *h) {
      std::string id = e.value("id", "<missing>");
      out.push_back(
          {{"Id", id == "<missing>" ? id : sha256_id(id)},
           {"Created", unix_from_rfc3339(e.value("created", ""))},
           {"CreatedBy", e.value("CreatedBy", "")},
           {"Tags", e.contains("tags") && e["tags"].is_array() ? e["tags"] : json(nullptr)},
           {"Size", e.value("size", int64_t{0})},
           {"Comment", e.value("comment", "")}});
    }
    return json_response(200, out);
  });

  r.add("POST", "/images/{name*}/tag", [ctx](Request& req) -> Response {
    auto repo = req.q_or("repo", "");
    if (repo.empty()) {
      return error_response(400, "repository name must be given: repo=NAME");
    }
    std::string tag = req.q_or("tag", "latest");
    API_STORE(st, eng, false);
    if (auto res = image::tag_image(st, req.params["name"], repo + ":" + tag); !res) {
      if (res.error().code() == Errc::NotFound) {
        return error_response(404, "No such image: " + req.params["name"]);
      }
      return error_response(res.error());
    }
    if (auto img = image::lookup_image(st, req.params["name"]); img) {
      image_event(eng, "tag", img->id, repo + ":" + tag);
    }
    Response resp;
    resp.status = 201;
    resp.content_type.clear();
    return resp;
  });

  r.add("DELETE", "/images/{name*}", [ctx](Request& req) -> Response {
    API_STORE(st, eng, false);
    auto users = image_users(eng);
    image::RemoveOptions ro;
    ro.force = req.q_bool("force");
    ro.in_use = [&](const std::string& id) { return users.count(id) != 0; };
    auto before = image::lookup_image(st, req.params["name"]);
    auto rep = image::remove_images(st, {req.params["name"]}, ro);
    if (!rep) {
      if (rep.error().code() == Errc::NotFound) {
        return error_response(404, "No such image: " + req.params["name"]);
      }
      return error_response(rep.error());
    }
    json out = json::array();
    for (const auto& u : rep->untagged) {
      out.push_back({{"Untagged", u}});
      image_event(eng, "untag", before ? before->id : "", u);
    }
    for (const auto& d : rep->deleted) {
      out.push_back({{"Deleted", sha256_id(d)}});
      image_event(eng, "remove", d, req.params["name"]);
    }
    return json_response(200, out);
  });

  r.add("POST", "/images/load", [ctx](Request& req) -> Response {
    if (req.body_file.empty()) {
      return error_response(400, "no image archive in the request body");
    }
    API_STORE(st, eng, false);
    image::LoadOptions lo;
    lo.path = req.body_file;
    auto res = image::load(st, lo);
    if (!res) {
      return error_response(res.error().code() == Errc::Internal ? 500 : 400,
                            res.error().message());
    }
    for (size_t i = 0; i < res->ids.size(); ++i) {
      image_event(eng, "loadfromarchive", res->ids[i],
                  i < res->loaded.size() ? res->loaded[i] : "");
    }
    std::string body;
    for (const auto& l : res->loaded) {
      const bool id_only = l.rfind("sha256:", 0) == 0;
      body +=
          json{{"stream", (id_only ? "Loaded image ID: " : "Loaded image: ") + l + "\n"}}.dump() +
          "\n";
    }
    Response resp;
    resp.body = std::move(body);
    return resp;
  });

  // images/create: import from the body (fromSrc=-), else a pull (fromImage=).
  r.add("POST", "/images/create", [ctx](Request& req) -> Response {
    auto src = req.q("fromSrc");
    if (!src) {
      return pull_image(ctx, req);
    }
    if (*src != "-") {
      return error_response(501,
                            "importing from a URL is not supported: send the archive in "
                            "the body with fromSrc=-");
    }
    if (req.body_file.empty()) {
      return error_response(400, "no archive in the request body");
    }
    image::ImportOptions io;
    // platform=os[/arch[/variant]]: the imported image's OS and architecture (both since API
    // 1.42, unversioned in Docker); the host's without it.
    if (auto p = req.q("platform"); p && !p->empty()) {
      const std::string os = p->substr(0, p->find('/'));
      if (os != "linux") {
        return error_response(400, "platform " + *p + ": the image's operating system must be " +
                                       "linux (berth runs Linux containers only)");
      }
      if (auto slash = p->find('/'); slash != std::string::npos) {
        io.architecture = p->substr(slash + 1, p->find('/', slash + 1) - slash - 1);
      }
    }
    API_STORE(st, eng, false);
    io.path = req.body_file;
    std::string repo = req.q_or("repo", "");
    if (!repo.empty()) {
      // The docker CLI sends `docker import FILE NAME:TAG` as repo=NAME:TAG and no tag.
      const std::string tag = req.q_or("tag", "");
      const bool tagged =
          repo.find(':', repo.rfind('/') == std::string::npos ? 0 : repo.rfind('/')) !=
          std::string::npos;
      io.reference = tag.empty() ? (tagged ? repo : repo + ":latest") : repo + ":" + tag;
    }
    io.changes = req.q_all("changes");
    io.message = req.q_or("message", "");
    auto id = image::import_image(st, io);
    if (!id) {
      return error_response(id.error());
    }
    image_event(eng, "import", *id, io.reference);
    Response resp;
    resp.body = json{{"status", sha256_id(*id)}}.dump() + "\n";
    return resp;
  });

  r.add("POST", "/images/prune", [ctx](Request& req) -> Response {
    auto filters = docker_filters(req);
    if (!filters) {
      return error_response(filters.error());
    }
    API_STORE(st, eng, false);
    auto users = image_users(eng);
    // Sizes before, to report what was reclaimed.
    std::map<std::string, int64_t> sizes;
    if (auto imgs = st.images()) {
      for (const auto& i : *imgs) {
        sizes[i.id] = i.size;
      }
    }
    auto removed = image::prune_images(st, prune_all(*filters),
                                       [&](const std::string& id) { return users.count(id) != 0; });
    if (!removed) {
      return error_response(removed.error());
    }
    json deleted = json::array();
    int64_t reclaimed = 0;
    for (const auto& id : *removed) {
      deleted.push_back({{"Deleted", sha256_id(id)}});
      reclaimed += sizes.count(id) ? sizes[id] : 0;
    }
    return json_response(200, {{"ImagesDeleted", deleted.empty() ? json(nullptr) : deleted},
                               {"SpaceReclaimed", reclaimed}});
  });

  r.add("POST", "/build", not_implemented);
}

}  // namespace berth::api
