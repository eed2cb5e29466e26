#pragma once
// berth's configuration: containers.conf, storage.conf and registries.conf in the formats of
// Podman's containers-common (containers.conf(5), containers-storage.conf(5),
// containers-registries.conf(5)), read from /etc/berth first, then /etc/containers, then
// /usr/share/containers, then the per-user dirs for rootless.
//
// Every loader takes a ConfigPaths so tests (and `berth info`) can point it anywhere; nothing here
// reads /etc or the environment unless ConfigPaths::from_host() is used.
#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "berth/sdk/result.hpp"

namespace berth::config {

// Looks up an environment variable; nullopt when unset.
using EnvLookup = std::function<std::optional<std::string>(const std::string& name)>;

struct ConfigDir {
  std::filesystem::path path;
  // berth's own directory (/etc/berth): the only system dir whose storage.conf may set graphroot
  // and runroot. Podman's /etc/containers/storage.conf describes containers/storage's store, whose
  // metadata is not berth's: sharing its graphroot would corrupt both.
  bool berth_owned = false;
};

struct ConfigPaths {
  // System config dirs, highest priority first: /etc/berth, /etc/containers, /usr/share/containers.
  std::vector<ConfigDir> system_dirs;
  // ($XDG_CONFIG_HOME or ~/.config): holds containers/ and berth/. Read only when uid != 0.
  std::filesystem::path user_config_dir;
  uid_t uid = 0;
  EnvLookup env;
  // The user's home (rootless defaults: ~/.local/share/berth/storage).
  std::filesystem::path home_dir;
  // Whether the host runs systemd as init (Podman's rule for the cgroup_manager and
  // events_logger defaults).
  bool systemd_booted = false;

  bool rootless() const { return uid != 0; }
  std::optional<std::string> getenv(const std::string& name) const;

  // The real host: /etc/berth, /etc/containers, /usr/share/containers, getuid(), the process
  // environment, $XDG_CONFIG_HOME or $HOME/.config, /run/systemd/system.
  static ConfigPaths from_host();
};

// Global flags of the CLI, applied on top of every file.
struct GlobalOverrides {
  std::optional<std::string> root;            // --root: graphroot
  std::optional<std::string> runroot;         // --runroot
  std::optional<std::string> storage_driver;  // --storage-driver
  std::optional<std::string> imagestore;      // --imagestore
  std::vector<std::string> storage_opts;      // --storage-opt key=value (repeatable)
  // --config. Podman's --config names a docker-style client config directory (auth.json); berth
  // has no use for that, so here it is the path of an extra containers.conf applied after every
  // other file, CONTAINERS_CONF_OVERRIDE included. It must exist.
  std::optional<std::string> config_path;
};

// ---------------------------------------------------------------------------------------------
// storage.conf

struct OverlayOptions {
  std::string mount_program;  // e.g. /usr/bin/fuse-overlayfs; empty = kernel overlayfs
  std::string mountopt;       // extra mount options, comma separated ("nodev,metacopy=on")
  bool skip_mount_home = false;
  std::string force_mask;  // "", "shared", "private" or an octal mode
  bool ignore_chown_errors = false;
  std::string size;  // default quota for containers' layers, e.g. "10G"
};

struct VfsOptions {
  bool ignore_chown_errors = false;
};

struct StorageOptions {
  std::vector<std::string> additional_image_stores;  // additionalimagestores
  std::map<std::string, std::string> pull_options;   // enable_partial_images, ...
  OverlayOptions overlay;                            // [storage.options.overlay]
  VfsOptions vfs;                                    // [storage.options.vfs]
};

struct StorageConfig {
  std::string driver;  // empty: auto (a prior driver's directory, else the priority list)
  std::string graphroot;
  std::string runroot;
  std::optional<std::string> imagestore;
  bool transient_store = false;
  StorageOptions options;
  // Raw --storage-opt / $STORAGE_OPTS values ("overlay.mount_program" ->
  // "/usr/bin/fuse-overlayfs"). Known keys are also applied to `options` above.
  std::map<std::string, std::string> driver_options;
  // Where each value came from, keyed by its TOML path ("storage.driver", "storage.graphroot",
  // "storage.options.overlay.mount_program", ...): a file path, "default", "flag" or
  // "env STORAGE_DRIVER"/"env STORAGE_OPTS". source_of() answers "default" for absent keys.
  std::map<std::string, std::string> sources;
  // The file that was read (first found wins), empty when none.
  std::string file;

  std::string source_of(const std::string& key) const;
  // The options a driver plugin gets as its JSON config: the typed options of `driver_name`
  // ("overlay", "vfs") as strings, plus every --storage-opt of the form "<driver>.<key>" and the
  // unprefixed ones ("size").
  std::map<std::string, std::string> options_for_driver(const std::string& driver_name) const;
};

// ---------------------------------------------------------------------------------------------
// containers.conf

struct ContainersSection {
  std::vector<std::string> annotations;  // "key=value"
  std::string base_hosts_file;
  std::string cgroupns = "private";
  std::string cgroups = "enabled";
  std::vector<std::string> default_capabilities = {
      "CHOWN",   "DAC_OVERRIDE", "FOWNER",  "FSETID", "KILL",      "NET_BIND_SERVICE",
      "SETFCAP", "SETGID",       "SETPCAP", "SETUID", "SYS_CHROOT"};
  std::vector<std::string> default_sysctls = {"net.ipv4.ping_group_range=0 0"};
  std::vector<std::string> default_ulimits;  // "nofile=1024:2048"
  std::vector<std::string> devices;          // "/dev/fuse:/dev/fuse:rwm"
  std::vector<std::string> dns_options;
  std::vector<std::string> dns_searches;
  std::vector<std::string> dns_servers;
  std::vector<std::string> env = {
      "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"};
  bool env_host = false;
  bool http_proxy = true;
  bool init = false;
  std::string init_path = "/usr/libexec/podman/catatonit";
  std::string ipcns = "shareable";
  bool label = true;
  // Podman picks journald when systemd runs; berth-monitor writes k8s-file, so that is the default.
  std::string log_driver = "k8s-file";
  int64_t log_size_max = -1;
  std::string log_tag;
  std::string netns = "private";
  bool no_hosts = false;
  std::string pidns = "private";
  int64_t pids_limit = 2048;
  bool read_only = false;
  std::string seccomp_profile = "/usr/share/containers/seccomp.json";
  std::string shm_size = "65536k";
  std::string tz;
  std::string umask = "0022";
  std::string userns = "host";
  std::string utsns = "private";
  std::vector<std::string> volumes;  // "/src:/dest[:options]", added to every container
};

struct SubnetPool {
  std::string base;  // "10.89.0.0/16"
  int size = 24;     // prefix length of each subnet taken from the pool
};

struct NetworkSection {
  std::string network_backend;  // empty: berth chooses (bridge driver)
  std::string default_network = "podman";
  std::string default_subnet = "10.88.0.0/16";
  std::vector<SubnetPool> default_subnet_pools = {{"10.89.0.0/16", 24},
                                                  {"10.90.0.0/15", 24},
                                                  {"10.92.0.0/14", 24},
                                                  {"10.96.0.0/11", 24},
                                                  {"10.128.0.0/9", 24}};
  // Default <graphroot>/networks (Podman uses /etc/containers/networks for root; berth does not
  // write into Podman's directory, for the reason it does not share Podman's graphroot).
  std::string network_config_dir;
  uint16_t dns_bind_port = 0;  // 0: 53
  std::string default_rootless_network_cmd = "pasta";
  std::vector<std::string> pasta_options;
};

struct ServiceDestination {
  std::string uri;
  std::string identity;
  bool is_machine = false;
};

struct EngineSection {
  std::string active_service;
  std::map<std::string, ServiceDestination> service_destinations;
  std::string cgroup_manager;  // "systemd" when systemd is init, else "cgroupfs" (as Podman)
  std::vector<std::string> env;
  std::string events_logger;        // "journald" when systemd is init, else "file" (as Podman)
  std::string events_logfile_path;  // default <tmp_dir>/events/events.log
  // As written ("1m", "1048576"; a number is kept in decimal, below 0 as "0"); empty: 1 MiB.
  std::string events_logfile_max_size;
  std::vector<std::string> helper_binaries_dir = {"/usr/local/libexec/podman",
                                                  "/usr/local/lib/podman", "/usr/libexec/podman",
                                                  "/usr/lib/podman"};
  std::string image_default_transport = "docker://";
  uint32_t image_parallel_copies = 0;  // 0: the default (6 in containers/image)
  std::string infra_image;
  std::string pull_policy = "missing";
  bool remote = false;
  std::string runtime = "crun";
  std::map<std::string, std::vector<std::string>> runtimes;  // name -> candidate paths
  // Defaults <graphroot>/engine, <runroot>/tmp and <graphroot>/volumes: berth's own places
  // (Podman's /run/libpod and graphroot/libpod hold Podman's state), and they follow
  // --root/--runroot.
  std::string static_dir;
  std::string tmp_dir;
  std::string volume_path;
  uint32_t stop_timeout = 10;
};

struct SecretsSection {
  std::string driver = "file";
  std::map<std::string, std::string> opts;
};

struct ContainersConfig {
  ContainersSection containers;
  NetworkSection network;
  EngineSection engine;
  SecretsSection secrets;
  // Files merged, in the order applied (later overrides earlier).
  std::vector<std::string> files;
  // "section.key" -> the file that set it last; keys absent here hold their default.
  std::map<std::string, std::string> sources;

  std::string source_of(const std::string& key) const;
  // The candidate paths of `name` ("crun"), empty when unknown.
  std::vector<std::string> runtime_paths(const std::string& name) const;
};

// ---------------------------------------------------------------------------------------------
// registries.conf

enum class ShortNameMode { Enforcing, Permissive, Disabled };
enum class PullFromMirror { All, DigestOnly, TagOnly };

struct Mirror {
  std::string location;
  bool insecure = false;
  PullFromMirror pull_from_mirror = PullFromMirror::All;
};

struct Registry {
  std::string prefix;    // "example.com/foo", "*.example.com"; defaults to location
  std::string location;  // empty only with a "*.example.com" prefix: the reference's own host
  bool insecure = false;
  bool blocked = false;
  bool mirror_by_digest_only = false;
  std::vector<Mirror> mirrors;
};

struct Alias {
  std::string value;  // fully qualified: "docker.io/library/fedora"
  std::string file;   // where it was defined
};

// One place to pull from: a mirror or the registry itself, with the reference rewritten.
struct PullSource {
  std::string location;
  bool insecure = false;
  std::string reference;  // "mirror.example.com/library/busybox:latest"
};

struct RegistriesConfig {
  std::vector<std::string> unqualified_search_registries;
  ShortNameMode short_name_mode = ShortNameMode::Enforcing;
  std::vector<std::string> credential_helpers = {"containers-auth.json"};
  std::vector<Registry> registries;  // unique prefixes
  std::map<std::string, Alias> aliases;
  // Files read, in order (main file first, then drop-ins).
  std::vector<std::string> files;

  // The registry whose prefix matches `image_ref` (a fully qualified name, "host/repo[:tag|@dig]")
  // the longest; nullptr when none matches. Prefixes match on a component boundary ("/", ":", "@"
  // or the end); "*.example.com" matches any subdomain of example.com (not example.com itself).
  const Registry* find_registry(const std::string& image_ref) const;
  // Where to pull `image_ref` from, in order: the matching registry's mirrors (filtered by
  // mirror-by-digest-only / pull-from-mirror) then the registry itself; one entry (the reference
  // as is, secure) when no registry matches. Error when the matching registry is blocked.
  Result<std::vector<PullSource>> pull_sources(const std::string& image_ref) const;
  // The alias of a short name ("fedora"), nullopt when none.
  std::optional<Alias> resolve_alias(const std::string& short_name) const;
};

// ---------------------------------------------------------------------------------------------
// Loading

struct Config {
  StorageConfig storage;
  ContainersConfig containers;
  RegistriesConfig registries;
};

// storage.conf: $CONTAINERS_STORAGE_CONF, else the first found (rootless: ~/.config/berth,
// ~/.config/containers, then the system dirs), then $STORAGE_DRIVER/$STORAGE_OPTS and the flags.
Result<StorageConfig> load_storage_config(const ConfigPaths& paths,
                                          const GlobalOverrides& overrides = {});
// containers.conf: every file found merged, lowest priority first, with drop-ins;
// $CONTAINERS_CONF replaces the list, $CONTAINERS_CONF_OVERRIDE and --config come last.
// `storage` supplies the defaults derived from graphroot/runroot.
Result<ContainersConfig> load_containers_config(const ConfigPaths& paths,
                                                const GlobalOverrides& overrides,
                                                const StorageConfig& storage);
// registries.conf: $CONTAINERS_REGISTRIES_CONF or the first found, then registries.conf.d
// drop-ins in lexical order (V2 only), later wins.
Result<RegistriesConfig> load_registries_config(const ConfigPaths& paths);
Result<Config> load_config(const ConfigPaths& paths, const GlobalOverrides& overrides = {});

// Single documents (for tests and `berth info --debug`); `file` names the source in errors.
Result<void> parse_storage_conf(const std::string& content, const std::string& file,
                                StorageConfig& out);
Result<void> parse_containers_conf(const std::string& content, const std::string& file,
                                   ContainersConfig& out);
Result<RegistriesConfig> parse_registries_conf(const std::string& content, const std::string& file);

std::string_view to_string(ShortNameMode mode);
std::string_view to_string(PullFromMirror mode);

nlohmann::json to_json(const StorageConfig& c);
nlohmann::json to_json(const ContainersConfig& c);
nlohmann::json to_json(const RegistriesConfig& c);
nlohmann::json to_json(const Config& c);

}  // namespace berth::config
