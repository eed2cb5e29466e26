// _ping, version, info, system/df (Docker's shapes) and their libpod counterparts.
#include <sys/utsname.h>
#include <unistd.h>

#include <set>

#include "berth/container/service.hpp"
#include "berth/engine/engine.hpp"
#include "berth/engine/info.hpp"
#include "berth/events/events.hpp"
#include "berth/image/image_service.hpp"
#include "berth/volume/volume.hpp"
#include "routes.hpp"

#ifndef BERTH_GIT_COMMIT
#define BERTH_GIT_COMMIT "unknown"
#endif
#ifndef BERTH_BUILD_TIME
#define BERTH_BUILD_TIME ""
#endif

namespace berth::api {
namespace {

using nlohmann::json;

std::string kernel_release() {
  struct utsname u {};
  ::uname(&u);
  return u.release;
}

json docker_version() {
  const std::string kernel = kernel_release();
  const std::string go = std::string("gcc ") + __VERSION__;
  json details = {{"ApiVersion", std::string(kApiVersion)},
                  {"Arch", go_arch()},
                  {"BuildTime", BERTH_BUILD_TIME},
                  {"Experimental", "false"},
                  {"GitCommit", BERTH_GIT_COMMIT},
                  {"GoVersion", go},
                  {"KernelVersion", kernel},
                  {"MinAPIVersion", std::string(kMinApiVersion)},
                  {"Os", "linux"}};
  return {{"Platform", {{"Name", "Berth Engine"}}},
          {"Components",
           json::array({{{"Name", "Engine"}, {"Version", BERTH_VERSION}, {"Details", details}}})},
          {"Version", BERTH_VERSION},
          {"ApiVersion", std::string(kApiVersion)},
          {"MinAPIVersion", std::string(kMinApiVersion)},
          {"GitCommit", BERTH_GIT_COMMIT},
          {"GoVersion", go},
          {"Os", "linux"},
          {"Arch", go_arch()},
          {"KernelVersion", kernel},
          {"BuildTime", BERTH_BUILD_TIME}};
}

// Docker's /info from engine::info (Podman-shaped) plus counts. From API 1.42 KernelMemory, which
// berth never supports, is left out, as Docker does where the host does not support it.
json docker_info(engine::Engine& eng, const Request& req) {
  json pi = engine::info(eng);
  const json& host = pi["host"];
  const json& store = pi["store"];
  int total = 0;
  int running = 0;
  int paused = 0;
  int stopped = 0;
  container::ListOptions lo;
  lo.all = true;
  if (auto rows = container::list(eng, lo)) {
    for (const auto& r : *rows) {
      ++total;
      std::string s = r.value("State", "");
      if (s == "running") {
        ++running;
      } else if (s == "paused") {
        ++paused;
      } else {
        ++stopped;
      }
    }
  }
  int images = 0;
  if (auto st = eng.store(true)) {
    if (auto imgs = (*st)->images()) {
      images = static_cast<int>(imgs->size());
    }
  }
  json driver_status = json::array();
  if (store.contains("graphStatus") && store["graphStatus"].is_object()) {
    for (auto& [k, v] : store["graphStatus"].items()) {
      driver_status.push_back({k, v.is_string() ? v.get<std::string>() : v.dump()});
    }
  }
  std::string os_name = "linux";
  if (host.contains("distribution")) {
    const auto& d = host["distribution"];
    os_name =
        d.value("distribution", std::string("linux")) + " " + d.value("version", std::string(""));
  }
  json security = json::array();
  if (host["security"].value("seccompEnabled", false)) {
    security.push_back("name=seccomp,profile=default");
  }
  if (host["security"].value("rootless", false)) {
    security.push_back("name=rootless");
  }
  std::string cgver = host.value("cgroupVersion", "v1") == "v2" ? "2" : "1";
  const auto& cfg = eng.config();
  std::string runtime =
      cfg.containers.engine.runtime.empty() ? std::string("native") : cfg.containers.engine.runtime;
  char name[256] = {};
  ::gethostname(name, sizeof(name) - 1);
  json plugins = {{"Volume", json::array({"local"})},
                  {"Network", json::array({"bridge", "host", "none"})},
                  {"Authorization", nullptr},
                  {"Log", pi["plugins"].value("log", json::array())}};
  json info = {{"ID", std::string(name) + ":" + eng.graphroot()},
               {"Containers", total},
               {"ContainersRunning", running},
               {"ContainersPaused", paused},
               {"ContainersStopped", stopped},
               {"Images", images},
               {"Driver", store.value("graphDriverName", "")},
               {"DriverStatus", driver_status},
               {"Plugins", plugins},
               {"MemoryLimit", true},
               {"SwapLimit", true},
               {"KernelMemory", false},
               {"CpuCfsPeriod", true},
               {"CpuCfsQuota", true},
               {"CPUShares", true},
               {"CPUSet", true},
               {"PidsLimit", true},
               {"IPv4Forwarding", true},
               {"BridgeNfIptables", false},
               {"BridgeNfIp6tables", false},
               {"Debug", false},
               {"NFd", 0},
               {"OomKillDisable", false},
               {"NGoroutines", 0},
               {"SystemTime", container::rfc3339_nano(container::now_nanos())},
               {"LoggingDriver", host.value("logDriver", "k8s-file")},
               {"CgroupDriver", host.value("cgroupManager", "cgroupfs")},
               {"CgroupVersion", cgver},
               {"NEventsListener", 0},
               {"KernelVersion", host.value("kernel", "")},
               {"OperatingSystem", os_name},
               {"OSVersion", host.contains("distribution")
                                 ? host["distribution"].value("version", std::string(""))
                                 : std::string("")},
               {"OSType", "linux"},
               {"Architecture", host.value("arch", go_arch())},
               {"IndexServerAddress", "https://index.docker.io/v1/"},
               {"RegistryConfig",
                {{"IndexConfigs", json::object()},
                 {"InsecureRegistryCIDRs", json::array()},
                 {"Mirrors", json::array()}}},
               {"NCPU", host.value("cpus", 1)},
               {"MemTotal", host.value("memTotal", uint64_t{0})},
               {"GenericResources", nullptr},
               {"DockerRootDir", eng.graphroot()},
               {"HttpProxy", ""},
               {"HttpsProxy", ""},
               {"NoProxy", ""},
               {"Name", std::string(name)},
               {"Labels", json::array()},
               {"ExperimentalBuild", false},
               {"ServerVersion", BERTH_VERSION},
               {"Runtimes", {{runtime, {{"path", runtime}}}}},
               {"DefaultRuntime", runtime},
               {"Swarm",
                {{"LocalNodeState", "inactive"},
                 {"NodeID", ""},
                 {"NodeAddr", ""},
                 {"ControlAvailable", false},
                 {"Error", ""},
                 {"RemoteManagers", nullptr}}},
               {"LiveRestoreEnabled", false},
               {"Isolation", ""},
               {"InitBinary", ""},
               {"ContainerdCommit", {{"ID", ""}, {"Expected", ""}}},
               {"RuncCommit", {{"ID", ""}, {"Expected", ""}}},
               {"InitCommit", {{"ID", ""}, {"Expected", ""}}},
               {"SecurityOptions", security},
               {"Warnings", json::array()}};
  if (req.api_at_least("1.42")) {
    info.erase("KernelMemory");
  }
  if (req.api_at_least("1.44")) {
    // Docker lists CDI spec directories only with experimental features on, else none; berth
    // has no CDI device injection.
    info["CDISpecDirs"] = json::array();
  }
  return info;
}

// Docker (API 1.42, unversioned) also says which builder it recommends and the swarm state:
// berth has no BuildKit (classic builder, "1") and no swarm.
Response ping(Request&) {
  Response r;
  r.content_type = "text/plain; charset=utf-8";
  r.body = "OK";
  r.headers = {{"Cache-Control", "no-cache, no-store, must-revalidate"},
               {"Pragma", "no-cache"},
               {"Builder-Version", "1"},
               {"Swarm", "inactive"}};
  return r;
}

}  // namespace

void add_system_routes(Router& r, const std::shared_ptr<ServiceContext>& ctx) {
  for (const char* p : {"/_ping", "/libpod/_ping"}) {
    r.add("GET", p, ping);
    r.add("HEAD", p, ping);
  }
  r.add("GET", "/version", [](Request&) { return json_response(200, docker_version()); });
  r.add("GET", "/libpod/version", [](Request&) {
    json v = docker_version();
    v["Client"] = engine::version_info();
    v["Server"] = engine::version_info();
    return json_response(200, v);
  });
  r.add("GET", "/info", [ctx](Request& req) {
    auto eng = ctx->open_engine();
    if (!eng) {
      return error_response(eng.error());
    }
    return json_response(200, docker_info(**eng, req));
  });
  r.add("GET", "/libpod/info", [ctx](Request&) {
    auto eng = ctx->open_engine();
    if (!eng) {
      return error_response(eng.error());
    }
    return json_response(200, engine::info(**eng));
  });
  // API 1.42: `type` (repeatable) limits the answer to some object kinds; the others are null.
  r.add("GET", "/system/df", [ctx](Request& req) {
    std::set<std::string> types;
    if (req.api_at_least("1.42")) {
      for (const auto& t : req.q_all("type")) {
        if (t != "container" && t != "image" && t != "volume" && t != "build-cache") {
          return error_response(400,
                                "invalid type: " + t + " (container, image, volume, build-cache)");
        }
        types.insert(t);
      }
    }
    auto want = [&](const char* t) { return types.empty() || types.count(t) != 0; };
    auto eng = ctx->open_engine();
    if (!eng) {
      return error_response(eng.error());
    }
    auto st = (*eng)->store(true);
    if (!st) {
      return error_response(st.error());
    }
    std::map<std::string, int> users;
    json containers = json::array();
    container::ListOptions lo;
    lo.all = true;
    if (auto rows = container::list(**eng, lo)) {
      for (const auto& c : *rows) {
        users[c.value("ImageID", "")]++;
        containers.push_back({{"Id", c.value("Id", "")},
                              {"Names", json::array({"/" + c["Names"][0].get<std::string>()})},
                              {"Image", c.value("Image", "")},
                              {"ImageID", sha256_id(c.value("ImageID", ""))},
                              {"Created", c.value("Created", int64_t{0})},
                              {"State", c.value("State", "")},
                              {"Status", c.value("Status", "")},
                              {"SizeRw", 0},
                              {"SizeRootFs", 0}});
      }
    }
    auto du = image::images_disk_usage(
        **st, [&](const std::string& id) { return users.count(id) ? users[id] : 0; });
    if (!du) {
      return error_response(du.error());
    }
    json images = json::array();
    for (const auto& i : du->images) {
      std::string repo = i.value("Repository", "<none>");
      std::string tag = i.value("Tag", "<none>");
      images.push_back(
          {{"Id", sha256_id(i.value("ImageID", ""))},
           {"ParentId", ""},
           {"RepoTags", repo == "<none>" ? json::array() : json::array({repo + ":" + tag})},
           {"RepoDigests", json::array()},
           {"Created", i.value("Created", int64_t{0})},
           {"Size", i.value("Size", int64_t{0})},
           {"SharedSize", i.value("SharedSize", int64_t{0})},
           {"Labels", nullptr},
           {"Containers", i.value("Containers", 0)}});
      if (!req.api_at_least("1.44")) {
        images.back()["VirtualSize"] = i.value("Size", int64_t{0});  // gone from API 1.44
      }
    }
    json volumes = json::array();
    events::EventLog vlog = events::EventLog::from_config((*eng)->config());
    if (auto vs = volume::VolumeStore::open((*eng)->config(), &vlog); vs && want("volume")) {
      auto used = volume_users(**eng);
      if (auto vols = (*vs)->list({}, {})) {
        for (const auto& v : *vols) {
          auto u = used(v.name);
          volumes.push_back(
              docker_volume(v, u ? static_cast<int64_t>(u->size()) : -1, tree_size(v.mountpoint)));
        }
      }
    }
    json out = {{"LayersSize", du->size},
                {"Images", images},
                {"Containers", containers},
                {"Volumes", volumes},
                {"BuildCache", json::array()}};
    if (!want("image")) {
      out["LayersSize"] = 0;
      out["Images"] = nullptr;
    }
    if (!want("container")) {
      out["Containers"] = nullptr;
    }
    if (!want("volume")) {
      out["Volumes"] = nullptr;
    }
    if (!want("build-cache")) {
      out["BuildCache"] = nullptr;
    }
    return json_response(200, out);
  });
  // `docker system prune` and `docker builder prune`: berth builds no images, so it keeps no
  // build cache (system/df's BuildCache is empty too) and there is nothing to remove.
  r.add("POST", "/build/prune", [](Request&) -> Response {
    return json_response(200, {{"CachesDeleted", json::array()}, {"SpaceReclaimed", 0}});
  });
  // Events from the event log, Docker's shape; streamed until `until` or the client leaves.
  auto events_route = [ctx](Request& req, bool libpod) -> Response {
    auto filters = docker_filters(req);
    if (!filters) {
      return error_response(filters.error());
    }
    auto parsed = events::Filters::parse(*filters);
    if (!parsed) {
      return error_response(400, parsed.error().message());
    }
    events::ReadOptions ro;
    ro.filters = *parsed;
    const int64_t now = events::now_nano();
    for (const char* k : {"since", "until"}) {
      auto v = req.q(k);
      if (!v || v->empty()) {
        continue;
      }
      auto t = events::parse_time(*v, std::string_view(k) == "since", now);
      if (!t) {
        return error_response(400, std::string(k) + ": " + t.error().message());
      }
      (std::string_view(k) == "since" ? ro.since : ro.until) = *t;
    }
    // Docker streams unless `until` is given; libpod follows with stream=true (its default).
    ro.follow = libpod ? req.q_bool("stream", true) : !ro.until.has_value();
    auto eng = ctx->open_engine();
    if (!eng) {
      return error_response(eng.error());
    }
    auto log = std::make_shared<events::EventLog>(events::EventLog::from_config((*eng)->config()));
    Response resp;
    resp.chunked = true;
    resp.stream = [log, ro, libpod](RawConnection& conn) {
      (void)log->read(ro, [&](const events::Event& e) {
        json line;
        if (libpod) {
          line = events::to_json(e);
        } else {
          json attrs(e.attributes);
          if (!e.name.empty()) {
            attrs["name"] = e.name;
          }
          if (!e.image.empty()) {
            attrs["image"] = e.image;
          }
          if (e.exit_code) {
            attrs["exitCode"] = std::to_string(*e.exit_code);
          }
          // Docker's names for Podman's "died", image "remove" and "loadfromarchive" (as
          // Podman's compat API); its health event names the status in its action.
          std::string action = e.status;
          if (e.type == "container" && action == "died") {
            action = "die";
          } else if (e.type == "image" && action == "remove") {
            action = "delete";
          } else if (e.type == "image" && action == "loadfromarchive") {
            action = "load";
          }
          if (auto it = e.attributes.find("health_status");
              e.status == "health_status" && it != e.attributes.end()) {
            action += ": " + it->second;
          }
          line = {{"Type", e.type},
                  {"Action", action},
                  {"Actor", {{"ID", e.id.empty() ? e.name : e.id}, {"Attributes", attrs}}},
                  {"scope", "local"},
                  {"time", e.time_nano / 1000000000},
                  {"timeNano", e.time_nano}};
          if (e.type == "container") {
            line["status"] = action;
            line["id"] = e.id;
            line["from"] = e.image;
          }
        }
        return send_all(conn.fd, line.dump() + "\n");
      });
    };
    return resp;
  };
  r.add("GET", "/events", [events_route](Request& req) { return events_route(req, false); });
  r.add("GET", "/libpod/events", [events_route](Request& req) { return events_route(req, true); });
}

}  // namespace berth::api
