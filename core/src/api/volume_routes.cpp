// Volume endpoints over berth::volume: list (with filters), create, inspect, delete, prune. Which
// containers use a volume comes from the container records (the named volumes each holds).
#include <sys/stat.h>

#include <filesystem>
#include <set>

#include "berth/container/container.hpp"
#include "berth/container/service.hpp"
#include "berth/engine/engine.hpp"
#include "berth/events/events.hpp"
#include "berth/volume/volume.hpp"
#include "routes.hpp"

namespace berth::api {

using nlohmann::json;

volume::UsedBy volume_users(engine::Engine& eng) {
  // Read once per request: list/prune ask for every volume.
  auto recs = std::make_shared<std::optional<std::vector<container::ContainerRecord>>>();
  return [&eng, recs](const std::string& name) -> Result<std::vector<std::string>> {
    if (!*recs) {
      BERTH_TRY(auto all, container::records(eng));
      *recs = std::move(all);
    }
    std::vector<std::string> out;
    for (const auto& r : **recs) {
      const auto& nv = r.options.storage.named_volumes;
      if (std::find(nv.begin(), nv.end(), name) != nv.end()) {
        out.push_back(r.id);
      }
    }
    return out;
  };
}

json docker_volume(const volume::Volume& v, std::optional<int64_t> ref_count,
                   std::optional<int64_t> size) {
  json j = volume::to_inspect_json(v);
  json out = {{"Name", v.name},
              {"Driver", v.driver},
              {"Mountpoint", v.mountpoint},
              {"CreatedAt", j.value("CreatedAt", "")},
              {"Labels", v.labels},
              {"Scope", v.scope},
              {"Options", v.options}};
  if (ref_count || size) {
    out["UsageData"] = {{"RefCount", ref_count.value_or(-1)}, {"Size", size.value_or(-1)}};
  }
  return out;
}

int64_t tree_size(const std::string& path) {
  int64_t total = 0;
  std::error_code ec;
  for (std::filesystem::recursive_directory_iterator
           it(path, std::filesystem::directory_options::skip_permission_denied, ec),
       end;
       !ec && it != end; it.increment(ec)) {
    struct stat st {};
    if (::lstat(it->path().c_str(), &st) == 0 && !S_ISDIR(st.st_mode)) {
      total += static_cast<int64_t>(st.st_blocks) * 512;
    }
  }
  return total;
}

namespace {

struct Volumes {
  std::unique_ptr<events::EventLog> log;
  volume::VolumeStorePtr store;
};

Result<Volumes> open_volumes(engine::Engine& eng) {
  Volumes v;
  v.log = std::make_unique<events::EventLog>(events::EventLog::from_config(eng.config()));
  BERTH_TRY(v.store, volume::VolumeStore::open(eng.config(), v.log.get()));
  return v;
}

// Docker's volume filters: name, driver, label, dangling (Podman's list takes them as is).
// The volume filters of a request; with `prune`, "all" (API 1.42's prune filter) is left out.
Result<std::vector<std::string>> volume_filters(const Request& req, bool prune = false) {
  BERTH_TRY(auto fs, docker_filters(req));
  std::vector<std::string> out;
  for (const auto& f : fs) {
    auto key = f.substr(0, f.find('='));
    if (prune && key == "all") {
      continue;
    }
    if (key != "name" && key != "driver" && key != "label" && key != "dangling" &&
        key != "label!" && key != "until" && key != "scope" && key != "opt") {
      return fail(Errc::InvalidArgument, "invalid filter '" + key + "'");
    }
    out.push_back(f);
  }
  return out;
}

std::map<std::string, std::string> string_map(const json& v) {
  std::map<std::string, std::string> out;
  if (v.is_object()) {
    for (auto& [k, s] : v.items()) {
      if (s.is_string()) {
        out[k] = s.get<std::string>();
      }
    }
  }
  return out;
}

}  // namespace

void add_volume_routes(Router& r, const std::shared_ptr<ServiceContext>& ctx) {
  auto list = [ctx](Request& req, bool libpod) -> Response {
    auto filters = volume_filters(req);
    if (!filters) {
      return error_response(filters.error());
    }
    API_ENGINE(eng);
    auto vs = open_volumes(eng);
    if (!vs) {
      return error_response(vs.error());
    }
    auto vols = vs->store->list(*filters, volume_users(eng));
    if (!vols) {
      return error_response(vols.error());
    }
    json out = json::array();
    for (const auto& v : *vols) {
      out.push_back(libpod ? volume::to_inspect_json(v) : docker_volume(v, {}, {}));
    }
    if (libpod) {
      return json_response(200, out);
    }
    return json_response(200, {{"Volumes", out}, {"Warnings", json::array()}});
  };
  r.add("GET", "/volumes", [list](Request& req) { return list(req, false); });
  r.add("GET", "/libpod/volumes/json", [list](Request& req) { return list(req, true); });

  auto create = [ctx](Request& req, bool libpod) -> Response {
    auto body = req.json_body();
    if (!body) {
      return error_response(body.error());
    }
    if (!body->is_object()) {
      return error_response(400, "the volume config must be a JSON object");
    }
    volume::CreateOptions o;
    o.name = jstr(*body, "Name");
    o.driver = jstr(*body, "Driver");
    if (o.driver.empty()) {
      o.driver = "local";
    }
    o.labels = string_map(body->value("Labels", json::object()));
    o.options = string_map(body->value(libpod ? "Options" : "DriverOpts", json::object()));
    API_ENGINE(eng);
    auto vs = open_volumes(eng);
    if (!vs) {
      return error_response(vs.error());
    }
    // Docker answers an existing name with that volume (compose relies on it).
    if (!o.name.empty()) {
      if (auto existing = vs->store->get(o.name); existing) {
        return json_response(
            201, libpod ? volume::to_inspect_json(*existing) : docker_volume(*existing, {}, {}));
      }
    }
    auto v = vs->store->create(o);
    if (!v) {
      return error_response(v.error());
    }
    return json_response(201, libpod ? volume::to_inspect_json(*v) : docker_volume(*v, {}, {}));
  };
  r.add("POST", "/volumes/create", [create](Request& req) { return create(req, false); });
  r.add("POST", "/libpod/volumes/create", [create](Request& req) { return create(req, true); });

  auto inspect = [ctx](Request& req, bool libpod) -> Response {
    API_ENGINE(eng);
    auto vs = open_volumes(eng);
    if (!vs) {
      return error_response(vs.error());
    }
    const auto& name = req.params["name"];
    auto v = vs->store->get(name);
    if (!v) {
      return object_error(v.error(), ObjectKind::Volume, name);
    }
    return json_response(200, libpod ? volume::to_inspect_json(*v) : docker_volume(*v, {}, {}));
  };
  r.add("GET", "/volumes/{name}", [inspect](Request& req) { return inspect(req, false); });
  r.add("GET", "/libpod/volumes/{name}/json",
        [inspect](Request& req) { return inspect(req, true); });

  auto remove = [ctx](Request& req) -> Response {
    API_ENGINE(eng);
    auto vs = open_volumes(eng);
    if (!vs) {
      return error_response(vs.error());
    }
    const auto& name = req.params["name"];
    volume::RemoveOptions o;
    o.force = req.q_bool("force");
    o.used_by = volume_users(eng);
    o.remove_containers = [&eng](const std::vector<std::string>& ids,
                                 std::optional<unsigned> timeout) -> Result<void> {
      for (const auto& id : ids) {
        container::RemoveOptions ro;
        ro.force = true;
        if (timeout) {
          ro.timeout = *timeout;
        }
        BERTH_TRYV(container::remove(eng, id, ro));
      }
      return {};
    };
    if (!o.force) {
      auto users = o.used_by(name);
      if (users && !users->empty()) {
        return error_response(409,
                              "remove " + name + ": volume is in use - [" + users->front() + "]");
      }
    }
    if (auto res = vs->store->remove(name, o); !res) {
      return object_error(res.error(), ObjectKind::Volume, name);
    }
    Response resp;
    resp.status = 204;
    resp.content_type.clear();
    return resp;
  };
  r.add("DELETE", "/volumes/{name}", remove);
  r.add("DELETE", "/libpod/volumes/{name}", remove);

  // From API 1.42 Docker prunes anonymous volumes only, unless the filter all=true asks for every
  // unused one; libpod and older clients prune every unused volume.
  auto prune = [ctx](Request& req, bool libpod) -> Response {
    bool all = libpod || !req.api_at_least("1.42");
    if (!libpod && req.api_at_least("1.42")) {
      auto fs = docker_filters(req);
      if (!fs) {
        return error_response(fs.error());
      }
      for (const auto& f : *fs) {
        if (f.rfind("all=", 0) == 0) {
          const std::string v = f.substr(4);
          if (v != "1" && v != "true" && v != "0" && v != "false") {
            return error_response(400, "invalid filter 'all=" + v + "': use all=true or all=false");
          }
          all = v == "1" || v == "true";
        }
      }
    }
    auto filters = volume_filters(req, true);
    if (!filters) {
      return error_response(filters.error());
    }
    API_ENGINE(eng);
    auto vs = open_volumes(eng);
    if (!vs) {
      return error_response(vs.error());
    }
    // Sizes first: a pruned volume's data is gone afterwards.
    std::map<std::string, int64_t> sizes;
    std::set<std::string> named;
    auto users = volume_users(eng);
    if (auto vols = vs->store->list({}, {})) {
      for (const auto& v : *vols) {
        if (!v.anonymous) {
          named.insert(v.name);
        }
        if (auto u = users(v.name); u && u->empty()) {
          sizes[v.name] = tree_size(v.mountpoint);
        }
      }
    }
    auto used = volume_users(eng);
    volume::UsedBy keep = [&](const std::string& name) -> Result<std::vector<std::string>> {
      if (!all && named.count(name) != 0) {
        // Kept as if in use: a named volume is pruned only with all=true.
        return std::vector<std::string>{"(named volume)"};
      }
      return used(name);
    };
    auto removed = vs->store->prune(*filters, keep);
    if (!removed) {
      return error_response(removed.error());
    }
    int64_t reclaimed = 0;
    json reports = json::array();
    for (const auto& n : *removed) {
      reclaimed += sizes[n];
      reports.push_back({{"Id", n}, {"Size", sizes[n]}});
    }
    if (libpod) {
      return json_response(200, reports);
    }
    return json_response(200, {{"VolumesDeleted", *removed}, {"SpaceReclaimed", reclaimed}});
  };
  r.add("POST", "/volumes/prune", [prune](Request& req) { return prune(req, false); });
  r.add("POST", "/libpod/volumes/prune", [prune](Request& req) { return prune(req, true); });
}

}  // namespace berth::api
