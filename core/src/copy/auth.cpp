// auth.json: where credentials live and how entries match a reference.
#include "berth/copy/auth.hpp"

#include <openssl/evp.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "berth/util/fs.hpp"

namespace berth::copy {

using nlohmann::json;

namespace {

std::string env(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

std::string home_dir() {
  std::string h = env("HOME");
  return h.empty() ? "/root" : h;
}

Result<json> read_json_file(const std::string& path, bool& exists) {
  exists = false;
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) {
    return json::object();
  }
  exists = true;
  BERTH_TRY(std::string text, util::read_file(path));
  if (text.find_first_not_of(" \t\r\n") == std::string::npos) {
    return json::object();
  }
  json j = json::parse(text, nullptr, false);
  if (!j.is_object()) {
    return fail(Errc::InvalidArgument,
                "credentials file " + path + " is not a JSON object; fix or remove it");
  }
  return j;
}

// The "host/ns/repo" part of a reference, without transport prefix, tag or digest.
std::string repo_path(const std::string& ref) {
  std::string s = ref;
  if (s.starts_with("docker://")) {
    s = s.substr(9);
  }
  if (auto at = s.find('@'); at != std::string::npos) {
    s = s.substr(0, at);
  }
  auto slash = s.rfind('/');
  auto colon = s.rfind(':');
  if (colon != std::string::npos && slash != std::string::npos && colon > slash) {
    s = s.substr(0, colon);
  }
  while (!s.empty() && s.back() == '/') {
    s.pop_back();
  }
  return normalize_auth_key(s);
}

Result<std::optional<sdk::Credentials>> entry_credentials(const json& e, const std::string& file,
                                                          const std::string& key) {
  if (!e.is_object()) {
    return std::optional<sdk::Credentials>{};
  }
  sdk::Credentials c;
  if (e.contains("identitytoken") && e["identitytoken"].is_string()) {
    c.identity_token = e["identitytoken"].get<std::string>();
  }
  if (e.contains("auth") && e["auth"].is_string() && !e["auth"].get<std::string>().empty()) {
    auto decoded = base64_decode(e["auth"].get<std::string>());
    if (!decoded) {
      return fail(Errc::InvalidArgument, file + ": entry " + key + ": \"auth\" is not base64");
    }
    auto colon = decoded->find(':');
    if (colon == std::string::npos) {
      return fail(Errc::InvalidArgument,
                  file + ": entry " + key + ": \"auth\" does not decode to user:password");
    }
    c.username = decoded->substr(0, colon);
    c.password = decoded->substr(colon + 1);
  }
  if (c.username.empty() && c.identity_token.empty()) {
    return std::optional<sdk::Credentials>{};
  }
  return std::optional<sdk::Credentials>{c};
}

Result<void> write_auth(const std::string& path, const json& j) {
  auto parent = std::filesystem::path(path).parent_path();
  if (!parent.empty()) {
    BERTH_TRYV(util::make_dirs(parent, 0700));
  }
  return util::write_file_atomic(path, j.dump(1, '\t') + "\n", 0600);
}

}  // namespace

std::string normalize_auth_key(const std::string& key) {
  std::string s = key;
  for (const char* p : {"https://", "http://"}) {
    if (s.starts_with(p)) {
      s = s.substr(std::string(p).size());
    }
  }
  for (const char* suffix : {"/v1/", "/v2/", "/v1", "/v2"}) {
    if (s.ends_with(suffix)) {
      s.resize(s.size() - std::string(suffix).size());
    }
  }
  while (!s.empty() && s.back() == '/') {
    s.pop_back();
  }
  for (const char* alias : {"index.docker.io", "registry-1.docker.io"}) {
    std::string a(alias);
    if (s == a || s.starts_with(a + "/")) {
      s = "docker.io" + s.substr(a.size());
    }
  }
  return s;
}

AuthPaths auth_paths(const std::string& authfile) {
  AuthPaths p;
  if (!authfile.empty()) {
    p.write_file = authfile;
    p.read_files = {authfile};
    return p;
  }
  if (std::string f = env("REGISTRY_AUTH_FILE"); !f.empty()) {
    p.write_file = f;
    p.read_files = {f};
    return p;
  }
  std::string xdg = env("XDG_RUNTIME_DIR");
  if (!xdg.empty()) {
    p.write_file = xdg + "/containers/auth.json";
  } else {
    p.write_file = "/run/containers/" + std::to_string(::getuid()) + "/auth.json";
  }
  std::string home = home_dir();
  p.read_files = {p.write_file, home + "/.config/containers/auth.json",
                  home + "/.docker/config.json", home + "/.dockercfg"};
  return p;
}

Result<std::optional<sdk::Credentials>> find_credentials(const AuthPaths& paths,
                                                         const std::string& image_ref) {
  std::string want = repo_path(image_ref);
  // Candidate keys, most specific first: host/ns/repo, host/ns, host.
  std::vector<std::string> keys;
  for (std::string k = want;;) {
    keys.push_back(k);
    auto slash = k.rfind('/');
    if (slash == std::string::npos) {
      break;
    }
    k.resize(slash);
  }
  for (const auto& file : paths.read_files) {
    bool exists = false;
    BERTH_TRY(json j, read_json_file(file, exists));
    if (!exists) {
      continue;
    }
    // auth.json and ~/.docker/config.json keep entries under "auths"; ~/.dockercfg at the top.
    const json* auths = &j;
    if (j.contains("auths") && j["auths"].is_object()) {
      auths = &j["auths"];
    } else if (!file.ends_with(".dockercfg")) {
      continue;
    }
    std::map<std::string, const json*> normalized;
    for (auto it = auths->begin(); it != auths->end(); ++it) {
      normalized.emplace(normalize_auth_key(it.key()), &it.value());
    }
    for (const auto& k : keys) {
      if (auto it = normalized.find(k); it != normalized.end()) {
        BERTH_TRY(auto c, entry_credentials(*it->second, file, k));
        if (c) {
          return c;
        }
      }
    }
  }
  return std::optional<sdk::Credentials>{};
}

Result<void> store_credentials(const AuthPaths& paths, const std::string& key,
                               const sdk::Credentials& creds) {
  bool exists = false;
  BERTH_TRY(json j, read_json_file(paths.write_file, exists));
  if (!j.contains("auths") || !j["auths"].is_object()) {
    j["auths"] = json::object();
  }
  j["auths"][normalize_auth_key(key)] = {
      {"auth", base64_encode(creds.username + ":" + creds.password)}};
  return write_auth(paths.write_file, j);
}

Result<void> remove_credentials(const AuthPaths& paths, const std::string& key) {
  bool exists = false;
  BERTH_TRY(json j, read_json_file(paths.write_file, exists));
  std::string k = normalize_auth_key(key);
  bool removed = false;
  if (j.contains("auths") && j["auths"].is_object()) {
    for (auto it = j["auths"].begin(); it != j["auths"].end();) {
      if (normalize_auth_key(it.key()) == k) {
        it = j["auths"].erase(it);
        removed = true;
      } else {
        ++it;
      }
    }
  }
  if (!removed) {
    return fail(Errc::NotFound, "not logged into " + k);
  }
  return write_auth(paths.write_file, j);
}

Result<void> remove_all_credentials(const AuthPaths& paths) {
  bool exists = false;
  BERTH_TRY(json j, read_json_file(paths.write_file, exists));
  if (!exists) {
    return {};
  }
  j["auths"] = json::object();
  return write_auth(paths.write_file, j);
}

Result<sdk::Credentials> parse_creds(const std::string& s) {
  auto colon = s.find(':');
  if (s.empty() || colon == 0) {
    return fail(Errc::InvalidArgument,
                "credentials \"" + s + "\" must be USERNAME[:PASSWORD] with a user name");
  }
  sdk::Credentials c;
  c.username = s.substr(0, colon);
  if (colon != std::string::npos) {
    c.password = s.substr(colon + 1);
  }
  return c;
}

std::string base64_encode(const std::string& s) {
  std::string out(4 * ((s.size() + 2) / 3) + 1, '\0');
  int n =
      EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                      reinterpret_cast<const unsigned char*>(s.data()), static_cast<int>(s.size()));
  out.resize(static_cast<size_t>(n));
  return out;
}

Result<std::string> base64_decode(const std::string& in) {
  std::string s;
  for (char c : in) {
    if (c != '\n' && c != '\r' && c != ' ') {
      s.push_back(c);
    }
  }
  if (s.size() % 4 != 0) {
    return fail(Errc::InvalidArgument, "not base64");
  }
  std::string out(s.size() / 4 * 3 + 1, '\0');
  int n =
      EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                      reinterpret_cast<const unsigned char*>(s.data()), static_cast<int>(s.size()));
  if (n < 0) {
    return fail(Errc::InvalidArgument, "not base64");
  }
  size_t len = static_cast<size_t>(n);
  for (size_t i = s.size(); i > 0 && s[i - 1] == '='; --i) {
    --len;  // EVP_DecodeBlock counts the padding as zero bytes
  }
  out.resize(len);
  return out;
}

}  // namespace berth::copy
