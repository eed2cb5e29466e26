// The route table and helpers shared by the route groups.
#include <sys/socket.h>
#include <sys/utsname.h>

#include <cerrno>
#include <ctime>

#include "berth/container/log_format.hpp"
#include "routes.hpp"

namespace berth::api {

void add_docker_routes(Router& router, std::shared_ptr<ServiceContext> ctx) {
  add_system_routes(router, ctx);
  add_image_routes(router, ctx);
  add_container_routes(router, ctx);
  add_registry_routes(router, ctx);
  add_network_routes(router, ctx);
  add_volume_routes(router, ctx);
  add_cli_routes(router, ctx);
}

Response not_implemented(const Request& req) {
  return error_response(
      501, req.method + " " + req.path + " is not implemented by berth's API service yet");
}

Response empty_response(int status) {
  Response r;
  r.status = status;
  r.content_type.clear();
  return r;
}

Response object_error(const Error& e, ObjectKind kind, const std::string& name, bool strict) {
  if (e.code() != Errc::NotFound) {
    return error_response(e);
  }
  const char* word = kind == ObjectKind::Container ? "container"
                     : kind == ObjectKind::Network ? "network"
                                                   : "volume";
  const auto names = [&](std::string_view w) { return e.message().find(w) != std::string::npos; };
  if (strict && (!names(word) || (kind != ObjectKind::Container && names("container")))) {
    return error_response(e);
  }
  switch (kind) {
    case ObjectKind::Container:
      return error_response(404, "No such container: " + name);
    case ObjectKind::Network:
      return error_response(404, "network " + name + " not found");
    case ObjectKind::Volume:
      return error_response(404, "get " + name + ": no such volume");
  }
  return error_response(e);
}

Result<std::vector<std::string>> docker_filters(const Request& req) {
  std::vector<std::string> out;
  auto f = req.q("filters");
  if (!f || f->empty()) {
    return out;
  }
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(*f);
  } catch (const nlohmann::json::exception& e) {
    return fail(Errc::InvalidArgument, "invalid filters " + *f + ": " + e.what());
  }
  if (!j.is_object()) {
    return fail(Errc::InvalidArgument, "invalid filters " + *f + ": expected a JSON object");
  }
  for (auto& [key, v] : j.items()) {
    if (v.is_object()) {
      for (auto& [val, on] : v.items()) {
        if (!on.is_boolean() || on.get<bool>()) {
          out.push_back(key + "=" + val);
        }
      }
    } else if (v.is_array()) {
      for (auto& val : v) {
        if (val.is_string()) {
          out.push_back(key + "=" + val.get<std::string>());
        }
      }
    } else if (v.is_string()) {
      out.push_back(key + "=" + v.get<std::string>());
    } else {
      return fail(Errc::InvalidArgument, "invalid filters " + *f + ": bad value for " + key);
    }
  }
  return out;
}

std::string jstr(const nlohmann::json& o, const char* key) {
  if (!o.is_object()) {
    return {};
  }
  auto it = o.find(key);
  return it != o.end() && it->is_string() ? it->get<std::string>() : std::string();
}

bool jbool(const nlohmann::json& o, const char* key, bool fallback) {
  if (!o.is_object()) {
    return fallback;
  }
  auto it = o.find(key);
  return it != o.end() && it->is_boolean() ? it->get<bool>() : fallback;
}

std::string sha256_id(const std::string& id) {
  if (id.empty() || id.rfind("sha256:", 0) == 0) {
    return id;
  }
  return "sha256:" + id;
}

int64_t unix_from_rfc3339(const std::string& s) {
  auto v = container::parse_rfc3339(s);
  return v ? *v / 1000000000 : 0;
}

std::string go_arch() {
  struct utsname u {};
  ::uname(&u);
  std::string m = u.machine;
  if (m == "x86_64") {
    return "amd64";
  }
  if (m == "aarch64") {
    return "arm64";
  }
  if (m == "i686" || m == "i386") {
    return "386";
  }
  return m;
}

std::vector<std::string> berth_argv(const ServiceContext& ctx) {
  const auto& o = ctx.options();
  std::vector<std::string> argv{o.berth_binary};
  if (o.overrides.root) {
    argv.insert(argv.end(), {"--root", *o.overrides.root});
  }
  if (o.overrides.runroot) {
    argv.insert(argv.end(), {"--runroot", *o.overrides.runroot});
  }
  if (o.overrides.storage_driver) {
    argv.insert(argv.end(), {"--storage-driver", *o.overrides.storage_driver});
  }
  for (const auto& s : o.overrides.storage_opts) {
    argv.insert(argv.end(), {"--storage-opt", s});
  }
  if (o.overrides.config_path) {
    argv.insert(argv.end(), {"--config", *o.overrides.config_path});
  }
  return argv;
}

bool send_all(int fd, std::string_view data) {
  bool socket = true;
  while (!data.empty()) {
    ssize_t n = socket ? ::send(fd, data.data(), data.size(), MSG_NOSIGNAL)
                       : ::write(fd, data.data(), data.size());
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n < 0 && errno == ENOTSOCK && socket) {
      socket = false;
      continue;
    }
    if (n <= 0) {
      return false;
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

std::string frame(uint8_t stream, std::string_view data) {
  char h[8] = {static_cast<char>(stream),
               0,
               0,
               0,
               static_cast<char>((data.size() >> 24) & 0xff),
               static_cast<char>((data.size() >> 16) & 0xff),
               static_cast<char>((data.size() >> 8) & 0xff),
               static_cast<char>(data.size() & 0xff)};
  std::string f(h, 8);
  f.append(data);
  return f;
}

bool write_frame(int fd, uint8_t stream, std::string_view data) {
  return data.empty() || send_all(fd, frame(stream, data));
}

}  // namespace berth::api
