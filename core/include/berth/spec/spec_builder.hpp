#pragma once
// Builds an OCI runtime spec (config.json, ociVersion 1.0.2) from an image config and the flags of
// `berth run`, with Podman's defaults (capabilities, masked paths, devices, seccomp, mounts).
#include <sys/types.h>

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "berth/sdk/result.hpp"

namespace berth::spec {

// The parts of an OCI image config ("config" object) that shape the container.
struct ImageConfig {
  std::vector<std::string> env;
  std::vector<std::string> entrypoint;
  std::vector<std::string> cmd;
  std::string working_dir;
  std::string user;
  std::string stop_signal;
  std::map<std::string, std::string> labels;
};

// Reads the "config" object of an OCI/Docker image config; missing fields stay empty.
Result<ImageConfig> parse_image_config(const nlohmann::json& config);

struct BindMount {
  std::string source;
  std::string destination;
  std::vector<std::string> options;  // e.g. {"rbind", "ro", "nosuid"}; "rbind" is added if absent
  // "bind", or a file system made for the container ("tmpfs": source "tmpfs", options are its
  // flags and data, no rbind added).
  std::string type = "bind";
};

// How a namespace is set up: a new one (default), the host's (none in the spec), or a path to join.
struct NamespaceMode {
  enum class Kind { Private, Host, Path };
  Kind kind = Kind::Private;
  std::string path;
};

struct SpecOptions {
  std::string id;      // container id, used for the cgroup path
  std::string rootfs;  // absolute path of the mounted rootfs; /etc/passwd and /etc/group read there
  std::optional<std::vector<std::string>> args;        // command override (replaces image Cmd)
  std::optional<std::vector<std::string>> entrypoint;  // entrypoint override (clears image Cmd)
  std::vector<std::string> env;                        // KEY=VALUE, later entries win
  std::string workdir;
  std::string user;  // "uid", "uid:gid", "name", "name:group"
  std::string hostname;
  std::string domainname;
  bool tty = false;
  std::optional<std::pair<uint16_t, uint16_t>> console_size;  // rows, columns (with tty)
  bool read_only = false;
  bool privileged = false;
  bool no_new_privileges = false;
  std::vector<std::string> cap_add;   // "NET_ADMIN" or "CAP_NET_ADMIN" or "ALL"
  std::vector<std::string> cap_drop;  // same forms
  // The set cap_add/cap_drop apply to (containers.conf default_capabilities, or Docker's set for
  // a container made through the Docker API), in any of the forms above but "ALL";
  // nullopt: default_capabilities().
  std::optional<std::vector<std::string>> default_caps;
  // Where default_caps came from, for errors: "containers.conf default_capabilities (<file>)".
  std::string default_caps_origin;
  std::vector<std::string> ulimits;  // Podman's form: "nofile=1024:1024", "nproc=512"
  std::optional<int> oom_score_adj;
  std::map<std::string, std::string> sysctls;
  std::map<std::string, std::string> labels;  // added to the image labels, both become annotations
  std::map<std::string, std::string> annotations;
  std::string init_path;  // host path of an init binary bind-mounted at /run/podman-init
  NamespaceMode network, pid, ipc, uts, cgroup;
  // --userns: none by default; Private with the maps below (OCI linux.uidMappings/gidMappings
  // entries {containerID, hostID, size}), or Path to join.
  NamespaceMode userns{NamespaceMode::Kind::Host, ""};
  std::vector<nlohmann::json> uid_mappings;
  std::vector<nlohmann::json> gid_mappings;
  std::string cgroup_parent = "/berth";                 // cgroupsPath = <cgroup_parent>/<id>
  nlohmann::json resources = nlohmann::json::object();  // OCI linux.resources, passed through
  std::vector<BindMount> mounts;  // extra bind mounts (/etc/hosts, /etc/resolv.conf, volumes...)
  bool seccomp_unconfined = false;
  std::optional<nlohmann::json> seccomp_profile;  // a containers/common-format profile
  // Devices and security options (core/src/container/resources_glue.cpp fills these).
  std::vector<nlohmann::json> devices;  // OCI linux.devices entries: nodes made in /dev
  std::vector<std::string> mask_paths;  // --security-opt mask=: added to maskedPaths
  // --security-opt unmask=: removed from maskedPaths and readonlyPaths ("ALL", or paths with
  // shell globs such as /proc/*).
  std::vector<std::string> unmask_paths;
  std::optional<int64_t> shm_size;     // bytes of the /dev/shm tmpfs (default 64 MiB)
  std::vector<std::string> group_add;  // --group-add: gids or group names of <rootfs>/etc/group
};

struct ResolvedUser {
  uid_t uid = 0;
  gid_t gid = 0;
  std::vector<gid_t> additional_gids;
  std::string home = "/";
  std::string name;  // empty when the uid has no /etc/passwd entry
};

// Resolves a user spec against <rootfs>/etc/passwd and <rootfs>/etc/group. The files are opened
// inside the rootfs (symlinks resolved as if rootfs were /, never escaping it). Numeric ids need no
// files. Additional groups are the groups listing the user by name, as Podman does.
Result<ResolvedUser> resolve_user(const std::string& rootfs, const std::string& user);

struct Rlimit {
  std::string type;  // "RLIMIT_NOFILE"
  uint64_t soft = 0;
  uint64_t hard = 0;
};

// Parses "nofile=1024:1024" / "nproc=512" and clamps both values to this process's hard limit
// (raising a hard limit needs CAP_SYS_RESOURCE, which the runtime may not have).
Result<Rlimit> parse_ulimit(const std::string& ulimit);

// Merges KEY=VALUE lists: later entries replace earlier ones with the same key, order kept.
std::vector<std::string> merge_env(const std::vector<std::string>& base,
                                   const std::vector<std::string>& overrides);

// Podman's defaults, as data.
const std::vector<std::string>& default_capabilities();
// Docker's default set (moby oci/caps/defaults.go): Podman's plus AUDIT_WRITE, MKNOD, NET_RAW.
const std::vector<std::string>& docker_default_capabilities();
// Whether `names` ("chown", "CAP_CHOWN"...) is default_capabilities() as a set: the list
// containers/common ships, so the admin did not choose a set of their own.
bool is_stock_default_capabilities(const std::vector<std::string>& names);
// "net_raw", "CAP_NET_RAW" -> "CAP_NET_RAW"; an unknown name is an error that names `origin`.
Result<std::vector<std::string>> canonical_capabilities(const std::vector<std::string>& names,
                                                        const std::string& origin);
const std::vector<std::string>& all_capabilities();
const std::vector<std::string>& default_masked_paths();
const std::vector<std::string>& default_readonly_paths();
constexpr const char* kDefaultPath =
    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
constexpr const char* kInitPath = "/run/podman-init";

// Podman's default seccomp profile (containers/common pkg/seccomp/seccomp.json) in its own format.
const nlohmann::json& default_seccomp_profile();
// Converts a containers/common-format profile to the OCI linux.seccomp object for the given
// capability set on this architecture (rules with includes/excludes on caps or arches resolved).
Result<nlohmann::json> seccomp_for_spec(const nlohmann::json& profile,
                                        const std::vector<std::string>& capabilities);

// The whole spec. Errors name the flag or file at fault.
Result<nlohmann::json> build_spec(const ImageConfig& image, const SpecOptions& options);

}  // namespace berth::spec
