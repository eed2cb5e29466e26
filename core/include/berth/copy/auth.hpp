#pragma once
// Registry credentials in Podman's auth.json (containers-auth.json(5)), also read from Docker's
// ~/.docker/config.json. Where they are read and written:
//   write: --authfile, else $REGISTRY_AUTH_FILE, else ${XDG_RUNTIME_DIR}/containers/auth.json
//          (root without XDG_RUNTIME_DIR: /run/containers/0/auth.json)
//   read:  the write file, then ~/.config/containers/auth.json, ~/.docker/config.json,
//          ~/.dockercfg (only when no --authfile / $REGISTRY_AUTH_FILE is given)
#include <optional>
#include <string>
#include <vector>

#include "berth/sdk/result.hpp"
#include "berth/sdk/transport.hpp"

namespace berth::copy {

struct AuthPaths {
  std::string write_file;               // where login writes
  std::vector<std::string> read_files;  // in order, the write file first
};

// The files for this process's environment; `authfile` is --authfile ("" when not given).
AuthPaths auth_paths(const std::string& authfile);

// The credentials for `image_ref` ("host[:port]/repo..." or a bare "host[:port]"): the entry of
// the longest matching key ("host/ns/repo", "host/ns", "host") in the first file that has one.
// nullopt when none has. An unreadable or malformed file is an error naming it.
Result<std::optional<sdk::Credentials>> find_credentials(const AuthPaths& paths,
                                                         const std::string& image_ref);

// Writes user:pass for `key` (a registry or registry/namespace) into paths.write_file (0600,
// atomically, keeping other entries).
Result<void> store_credentials(const AuthPaths& paths, const std::string& key,
                               const sdk::Credentials& creds);
// Removes `key` from the write file; NotFound when it was not there.
Result<void> remove_credentials(const AuthPaths& paths, const std::string& key);
// Removes every entry from the write file.
Result<void> remove_all_credentials(const AuthPaths& paths);

// "user:pass" -> Credentials (the --creds form); InvalidArgument when malformed.
Result<sdk::Credentials> parse_creds(const std::string& user_colon_pass);

// Normalises a registry key as Podman does: strips "http(s)://" and a trailing "/v1/" or "/v2/";
// "index.docker.io" and "registry-1.docker.io" become "docker.io".
std::string normalize_auth_key(const std::string& key);

std::string base64_encode(const std::string& s);
Result<std::string> base64_decode(const std::string& s);

}  // namespace berth::copy
