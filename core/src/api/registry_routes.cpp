// Registry endpoints over berth::copy: pull (POST /images/create?fromImage=, streamed JSON
// progress), push, search and auth. X-Registry-Auth carries base64url JSON credentials.
#include "berth/copy/auth.hpp"
#include "berth/copy/copy.hpp"
#include "berth/engine/engine.hpp"
#include "berth/image/manifest.hpp"
#include "routes.hpp"

namespace berth::api {
namespace {

using nlohmann::json;

// X-Registry-Auth / X-Registry-Config: base64url (padding optional) JSON
// {"username", "password", "serveraddress", "identitytoken"}.
Result<std::optional<sdk::Credentials>> registry_auth(const Request& req) {
  auto h = req.header("x-registry-auth");
  if (!h || h->empty()) {
    return std::optional<sdk::Credentials>();
  }
  std::string b64 = *h;
  for (char& c : b64) {
    if (c == '-') {
      c = '+';
    } else if (c == '_') {
      c = '/';
    }
  }
  while (b64.size() % 4 != 0) {
    b64 += '=';
  }
  auto raw = copy::base64_decode(b64);
  if (!raw) {
    return fail(Errc::InvalidArgument, "X-Registry-Auth is not base64: " + raw.error().message());
  }
  try {
    json j = json::parse(*raw);
    if (!j.is_object()) {
      return std::optional<sdk::Credentials>();
    }
    sdk::Credentials c;
    c.username = j.value("username", std::string());
    c.password = j.value("password", std::string());
    c.identity_token = j.value("identitytoken", std::string());
    if (c.username.empty() && c.password.empty() && c.identity_token.empty()) {
      return std::optional<sdk::Credentials>();
    }
    return std::optional<sdk::Credentials>(c);
  } catch (const json::exception& e) {
    return fail(Errc::InvalidArgument, std::string("X-Registry-Auth is not JSON: ") + e.what());
  }
}

void send_line(int fd, const json& j) {
  send_all(fd, j.dump() + "\r\n");
}

void send_error(int fd, const std::string& message) {
  send_line(fd, {{"errorDetail", {{"message", message}}}, {"error", message}});
}

}  // namespace

Response pull_image(const std::shared_ptr<ServiceContext>& ctx, Request& req) {
  std::string name = req.q_or("fromImage", "");
  if (name.empty()) {
    return error_response(400, "fromImage must be given");
  }
  std::string tag = req.q_or("tag", "");
  if (!tag.empty()) {
    name += (tag.rfind("sha256:", 0) == 0 ? "@" : ":") + tag;
  }
  auto creds = registry_auth(req);
  if (!creds) {
    return error_response(creds.error());
  }
  copy::PullOptions po;
  po.access.credentials = *creds;
  if (auto p = req.q("platform"); p && !p->empty()) {
    // "os/arch[/variant]"
    auto a = p->find('/');
    po.os = p->substr(0, a);
    if (a != std::string::npos) {
      auto b = p->find('/', a + 1);
      po.arch = p->substr(a + 1, b == std::string::npos ? std::string::npos : b - a - 1);
      if (b != std::string::npos) {
        po.variant = p->substr(b + 1);
      }
    }
  }
  Response resp;
  resp.chunked = true;
  resp.stream = [ctx, name, po](RawConnection& conn) mutable {
    int fd = conn.fd;
    po.progress = [fd](const std::string& line) { send_line(fd, {{"status", line}}); };
    auto eng = ctx->open_engine();
    if (!eng) {
      send_error(fd, eng.error().message());
      return;
    }
    send_line(fd, {{"status", "Trying to pull " + name}});
    auto pulled = copy::pull(**eng, name, po);
    if (!pulled) {
      send_error(fd, pulled.error().message());
      return;
    }
    for (const auto& p : *pulled) {
      send_line(fd, {{"status", "Digest: " + p.digest}});
      send_line(fd, {{"status", (p.fetched_blobs > 0 ? "Status: Downloaded newer image for "
                                                     : "Status: Image is up to date for ") +
                                    p.name}});
    }
  };
  return resp;
}

void add_registry_routes(Router& r, const std::shared_ptr<ServiceContext>& ctx) {
  r.add("POST", "/images/{name*}/push", [ctx](Request& req) -> Response {
    std::string image = req.params["name"];
    std::string tag = req.q_or("tag", "");
    auto creds = registry_auth(req);
    if (!creds) {
      return error_response(creds.error());
    }
    std::string dest = tag.empty() ? image : image + ":" + tag;
    Response resp;
    resp.chunked = true;
    resp.stream = [ctx, image, tag, dest, creds = *creds](RawConnection& conn) {
      int fd = conn.fd;
      copy::PushOptions po;
      po.access.credentials = creds;
      po.progress = [fd](const std::string& line) { send_line(fd, {{"status", line}}); };
      auto eng = ctx->open_engine();
      if (!eng) {
        send_error(fd, eng.error().message());
        return;
      }
      auto res = copy::push(**eng, dest, dest, po);
      if (!res) {
        send_error(fd, res.error().message());
        return;
      }
      // As dockerd: the status line the docker CLI prints, then the aux message it reads (a
      // message with aux is not printed).
      const std::string pushed_tag = tag.empty() ? std::string("latest") : tag;
      send_line(fd, {{"status", pushed_tag + ": digest: " + res->digest}});
      send_line(fd, {{"progressDetail", json::object()},
                     {"aux", {{"Tag", pushed_tag}, {"Digest", res->digest}}}});
    };
    return resp;
  });
  r.add("GET", "/images/search", [ctx](Request& req) -> Response {
    std::string term = req.q_or("term", "");
    if (term.empty()) {
      return error_response(400, "term must be given");
    }
    // API 1.44 (unversioned): Docker Hub no longer marks images automated, so is_automated is
    // always false and the is-automated=true filter finds nothing (false filters nothing).
    auto filters = docker_filters(req);
    if (!filters) {
      return error_response(filters.error());
    }
    for (const auto& f : *filters) {
      if (f == "is-automated=true" || f == "is-automated=1") {
        return json_response(200, json::array());
      }
    }
    auto eng = ctx->open_engine();
    if (!eng) {
      return error_response(eng.error());
    }
    copy::SearchOptions so;
    if (auto l = req.q("limit"); l && !l->empty()) {
      so.limit = std::atoi(l->c_str());
    }
    auto hits = copy::search(**eng, term, so);
    if (!hits) {
      return error_response(hits.error());
    }
    json out = json::array();
    for (const auto& h : *hits) {
      out.push_back({{"name", h.name},
                     {"description", ""},
                     {"star_count", 0},
                     {"is_official", false},
                     {"is_automated", false}});
    }
    return json_response(200, out);
  });
  // What the registry serves for an image (docker-py's images.get_registry_data, buildx,
  // compose v2): the top manifest's descriptor and the platforms it offers. Nothing is stored.
  r.add("GET", "/distribution/{name*}/json", [ctx](Request& req) -> Response {
    auto creds = registry_auth(req);
    if (!creds) {
      return error_response(creds.error());
    }
    auto eng = ctx->open_engine();
    if (!eng) {
      return error_response(eng.error());
    }
    copy::PullOptions po;
    po.access.credentials = *creds;
    const std::string& name = req.params["name"];
    auto img = copy::inspect_remote(**eng, name, po);
    if (!img) {
      // Docker answers 401 for an image it cannot see, whatever the reason: clients expect an
      // error, and the message says which.
      return error_response(img.error().code() == Errc::InvalidArgument ? 400 : 401,
                            img.error().message());
    }
    auto platform_json = [](const image::Platform& p) {
      json j = {{"architecture", p.architecture}, {"os", p.os}};
      if (!p.variant.empty()) {
        j["variant"] = p.variant;
      }
      return j;
    };
    json platforms = json::array();
    auto kind = image::detect_manifest_kind(img->raw, img->media_type);
    if (kind &&
        (*kind == image::ManifestKind::OciIndex || *kind == image::ManifestKind::DockerList)) {
      auto idx = image::parse_index(img->raw);
      if (!idx) {
        return error_response(500, idx.error().message());
      }
      for (const auto& d : idx->manifests) {
        if (d.has_platform) {
          platforms.push_back(platform_json(d.platform));
        }
      }
    } else if (auto cfg = image::parse_config(img->config); cfg) {
      platforms.push_back(platform_json({cfg->os, cfg->architecture, cfg->variant}));
    }
    return json_response(200, {{"Descriptor",
                                {{"mediaType", img->media_type},
                                 {"digest", img->digest},
                                 {"size", static_cast<int64_t>(img->raw.size())}}},
                               {"Platforms", platforms}});
  });
  r.add("POST", "/auth", [ctx](Request& req) -> Response {
    auto body = req.json_body();
    if (!body) {
      return error_response(body.error());
    }
    if (!body->is_object()) {
      return error_response(400, "the auth config must be a JSON object");
    }
    std::string server = body->value("serveraddress", std::string());
    if (server.empty()) {
      return error_response(400, "serveraddress must be given");
    }
    copy::LoginOptions lo;
    lo.store = false;  // as dockerd: the client keeps them and sends them with each request
    sdk::Credentials c;
    c.username = body->value("username", std::string());
    c.password = body->value("password", std::string());
    c.identity_token = body->value("identitytoken", std::string());
    lo.access.credentials = c;
    auto eng = ctx->open_engine();
    if (!eng) {
      return error_response(eng.error());
    }
    if (auto res = copy::login(**eng, copy::registry_host(server), lo); !res) {
      int status = res.error().code() == Errc::PermissionDenied ? 401 : status_for(res.error());
      return error_response(status, res.error().message());
    }
    return json_response(200, {{"Status", "Login Succeeded"}, {"IdentityToken", ""}});
  });
}

}  // namespace berth::api
