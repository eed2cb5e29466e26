#include <spdlog/spdlog.h>

#include <algorithm>

#include "berth/config/config.hpp"
#include "search_dirs.hpp"
#include "toml_reader.hpp"

namespace berth::config {

namespace {

using detail::join_path;
using detail::TableReader;

// A string restricted to a few values; the error lists them.
Result<void> get_enum(TableReader& r, const toml::table& t, std::string_view key,
                      std::string_view path, std::string& out,
                      std::initializer_list<std::string_view> allowed) {
  std::string v;
  BERTH_TRY(bool found, r.get(t, key, path, v));
  if (!found) {
    return {};
  }
  if (std::find(allowed.begin(), allowed.end(), v) == allowed.end()) {
    std::string list;
    for (auto a : allowed) {
      list += list.empty() ? "" : ", ";
      list += a;
    }
    return fail(r.value_error(*t.get(key), path,
                              "unsupported value \"" + v + "\" (expected one of: " + list + ")"));
  }
  out = v;
  return {};
}

Result<void> read_containers(TableReader& r, const toml::table& t, ContainersSection& c) {
  r.note_unknown(t, "containers",
                 {"annotations",
                  "base_hosts_file",
                  "cgroupns",
                  "cgroups",
                  "default_capabilities",
                  "default_sysctls",
                  "default_ulimits",
                  "devices",
                  "dns_options",
                  "dns_searches",
                  "dns_servers",
                  "env",
                  "env_host",
                  "http_proxy",
                  "init",
                  "init_path",
                  "ipcns",
                  "label",
                  "log_driver",
                  "log_size_max",
                  "log_tag",
                  "netns",
                  "no_hosts",
                  "pidns",
                  "pids_limit",
                  "read_only",
                  "seccomp_profile",
                  "shm_size",
                  "tz",
                  "umask",
                  "userns",
                  "utsns",
                  "volumes"},
                 {"apparmor_profile", "container_name_as_hostname", "host_containers_internal_ip",
                  "interface_name", "keyring", "label_users", "oom_score_adj", "privileged",
                  "userns_size", "prepare_volume_on_create"});
  auto g = [&](std::string_view key, auto& field) {
    return r.get(t, key, join_path("containers", key), field);
  };
  BERTH_TRYV(g("annotations", c.annotations));
  BERTH_TRYV(g("base_hosts_file", c.base_hosts_file));
  BERTH_TRYV(get_enum(r, t, "cgroupns", "containers.cgroupns", c.cgroupns, {"host", "private"}));
  BERTH_TRYV(get_enum(r, t, "cgroups", "containers.cgroups", c.cgroups,
                      {"enabled", "disabled", "no-conmon", "split"}));
  BERTH_TRYV(g("default_capabilities", c.default_capabilities));
  BERTH_TRYV(g("default_sysctls", c.default_sysctls));
  BERTH_TRYV(g("default_ulimits", c.default_ulimits));
  BERTH_TRYV(g("devices", c.devices));
  BERTH_TRYV(g("dns_options", c.dns_options));
  BERTH_TRYV(g("dns_searches", c.dns_searches));
  BERTH_TRYV(g("dns_servers", c.dns_servers));
  BERTH_TRYV(g("env", c.env));
  BERTH_TRYV(g("env_host", c.env_host));
  BERTH_TRYV(g("http_proxy", c.http_proxy));
  BERTH_TRYV(g("init", c.init));
  BERTH_TRYV(g("init_path", c.init_path));
  BERTH_TRYV(g("ipcns", c.ipcns));
  BERTH_TRYV(g("label", c.label));
  BERTH_TRYV(get_enum(r, t, "log_driver", "containers.log_driver", c.log_driver,
                      {"k8s-file", "journald", "none", "passthrough", "passthrough-tty"}));
  BERTH_TRYV(g("log_size_max", c.log_size_max));
  BERTH_TRYV(g("log_tag", c.log_tag));
  BERTH_TRYV(g("netns", c.netns));
  BERTH_TRYV(g("no_hosts", c.no_hosts));
  BERTH_TRYV(g("pidns", c.pidns));
  BERTH_TRYV(g("pids_limit", c.pids_limit));
  BERTH_TRYV(g("read_only", c.read_only));
  BERTH_TRYV(g("seccomp_profile", c.seccomp_profile));
  BERTH_TRYV(g("shm_size", c.shm_size));
  BERTH_TRYV(g("tz", c.tz));
  BERTH_TRYV(g("umask", c.umask));
  BERTH_TRYV(g("userns", c.userns));
  BERTH_TRYV(g("utsns", c.utsns));
  BERTH_TRYV(g("volumes", c.volumes));
  return {};
}

Result<void> read_network(TableReader& r, const toml::table& t, NetworkSection& n) {
  r.note_unknown(
      t, "network",
      {"network_backend", "default_network", "default_subnet", "default_subnet_pools",
       "network_config_dir", "dns_bind_port", "default_rootless_network_cmd", "pasta_options"},
      {"cni_plugin_dirs", "netavark_plugin_dirs", "firewall_driver", "network_cmd_options",
       "network_cmd_path"});
  auto g = [&](std::string_view key, auto& field) {
    return r.get(t, key, join_path("network", key), field);
  };
  BERTH_TRYV(get_enum(r, t, "network_backend", "network.network_backend", n.network_backend,
                      {"", "netavark", "cni", "bridge"}));
  BERTH_TRYV(g("default_network", n.default_network));
  BERTH_TRYV(g("default_subnet", n.default_subnet));
  BERTH_TRYV(g("network_config_dir", n.network_config_dir));
  BERTH_TRYV(g("dns_bind_port", n.dns_bind_port));
  BERTH_TRYV(get_enum(r, t, "default_rootless_network_cmd", "network.default_rootless_network_cmd",
                      n.default_rootless_network_cmd, {"slirp4netns", "pasta"}));
  BERTH_TRYV(g("pasta_options", n.pasta_options));
  const toml::node* pools = t.get("default_subnet_pools");
  if (pools != nullptr) {
    const auto* arr = pools->as_array();
    if (arr == nullptr) {
      return fail(r.type_error(*pools, "network.default_subnet_pools",
                               "an array of {base = \"10.89.0.0/16\", size = 24} tables"));
    }
    std::vector<SubnetPool> out;
    for (size_t i = 0; i < arr->size(); ++i) {
      std::string path = "network.default_subnet_pools[" + std::to_string(i) + "]";
      const toml::node& el = *arr->get(i);
      const auto* tab = el.as_table();
      if (tab == nullptr) {
        return fail(r.type_error(el, path, "a table {base = \"10.89.0.0/16\", size = 24}"));
      }
      SubnetPool pool;
      pool.base.clear();
      BERTH_TRY(bool has_base, r.get(*tab, "base", path + ".base", pool.base));
      int64_t size = 0;
      BERTH_TRY(bool has_size, r.get(*tab, "size", path + ".size", size, 1, 128));
      if (!has_base || !has_size) {
        return fail(r.value_error(el, path, "a subnet pool needs both base and size"));
      }
      pool.size = static_cast<int>(size);
      out.push_back(std::move(pool));
    }
    n.default_subnet_pools = std::move(out);
    r.record("network.default_subnet_pools");
  }
  return {};
}

Result<void> read_engine(TableReader& r, const toml::table& t, EngineSection& e) {
  r.note_unknown(
      t, "engine",
      {"active_service", "service_destinations", "cgroup_manager", "env", "events_logger",
       "events_logfile_path", "events_logfile_max_size", "helper_binaries_dir",
       "image_default_transport", "image_parallel_copies", "infra_image", "pull_policy", "remote",
       "runtime", "runtimes", "static_dir", "tmp_dir", "volume_path", "stop_timeout"},
      {"conmon_path",
       "conmon_env_vars",
       "num_locks",
       "lock_type",
       "detach_keys",
       "enable_port_reservation",
       "events_container_create_inspect_data",
       "hooks_dir",
       "image_build_format",
       "image_copy_tmp_dir",
       "image_volume_mode",
       "infra_command",
       "kube_generate_type",
       "machine_enabled",
       "multi_image_archive",
       "namespace",
       "network_cmd_path",
       "no_pivot_root",
       "runtime_supports_json",
       "runtime_supports_kvm",
       "runtime_supports_nocgroups",
       "service_timeout",
       "chown_copied_files",
       "compat_api_enforce_docker_hub",
       "compression_format",
       "compression_level",
       "add_compression",
       "database_backend",
       "healthcheck_events",
       "retry",
       "retry_delay",
       "ssh_config",
       "exit_command_delay",
       "podmansh_timeout",
       "volume_plugin_timeout",
       "volume_plugins"});
  auto g = [&](std::string_view key, auto& field) {
    return r.get(t, key, join_path("engine", key), field);
  };
  BERTH_TRYV(g("active_service", e.active_service));
  BERTH_TRYV(get_enum(r, t, "cgroup_manager", "engine.cgroup_manager", e.cgroup_manager,
                      {"systemd", "cgroupfs"}));
  BERTH_TRYV(g("env", e.env));
  BERTH_TRYV(get_enum(r, t, "events_logger", "engine.events_logger", e.events_logger,
                      {"journald", "file", "none"}));
  BERTH_TRYV(g("events_logfile_path", e.events_logfile_path));
  // A size string ("1m") or a number of bytes, as containers.conf(5) allows both.
  if (auto node = t["events_logfile_max_size"]; node) {
    if (auto n = node.value<int64_t>(); n && !node.is_string()) {
      e.events_logfile_max_size = std::to_string(*n > 0 ? *n : 0);
      r.record("engine.events_logfile_max_size");
    } else {
      BERTH_TRYV(g("events_logfile_max_size", e.events_logfile_max_size));
    }
  }
  BERTH_TRYV(g("helper_binaries_dir", e.helper_binaries_dir));
  BERTH_TRYV(g("image_default_transport", e.image_default_transport));
  BERTH_TRYV(g("image_parallel_copies", e.image_parallel_copies));
  BERTH_TRYV(g("infra_image", e.infra_image));
  BERTH_TRYV(get_enum(r, t, "pull_policy", "engine.pull_policy", e.pull_policy,
                      {"always", "missing", "never", "newer"}));
  BERTH_TRYV(g("remote", e.remote));
  BERTH_TRYV(g("runtime", e.runtime));
  BERTH_TRYV(g("static_dir", e.static_dir));
  BERTH_TRYV(g("tmp_dir", e.tmp_dir));
  BERTH_TRYV(g("volume_path", e.volume_path));
  BERTH_TRYV(g("stop_timeout", e.stop_timeout));

  BERTH_TRY(const toml::table* runtimes, r.table(t, "runtimes", "engine.runtimes"));
  if (runtimes != nullptr) {
    for (auto&& [name, v] : *runtimes) {
      std::vector<std::string> list;
      BERTH_TRYV(r.get(*runtimes, name.str(), join_path("engine.runtimes", name.str()), list));
      e.runtimes[std::string(name.str())] = std::move(list);
    }
  }
  BERTH_TRY(const toml::table* dests,
            r.table(t, "service_destinations", "engine.service_destinations"));
  if (dests != nullptr) {
    for (auto&& [name, v] : *dests) {
      std::string path = join_path("engine.service_destinations", name.str());
      const auto* d = v.as_table();
      if (d == nullptr) {
        return fail(r.type_error(v, path, "a table with uri and identity"));
      }
      r.note_unknown(*d, path, {"uri", "identity", "is_machine"});
      ServiceDestination sd;
      BERTH_TRYV(r.get(*d, "uri", join_path(path, "uri"), sd.uri));
      BERTH_TRYV(r.get(*d, "identity", join_path(path, "identity"), sd.identity));
      BERTH_TRYV(r.get(*d, "is_machine", join_path(path, "is_machine"), sd.is_machine));
      e.service_destinations[std::string(name.str())] = std::move(sd);
    }
  }
  return {};
}

Result<void> read_secrets(TableReader& r, const toml::table& t, SecretsSection& s) {
  r.note_unknown(t, "secrets", {"driver", "opts"});
  BERTH_TRYV(r.get(t, "driver", "secrets.driver", s.driver));
  BERTH_TRYV(r.get(t, "opts", "secrets.opts", s.opts));
  return {};
}

Result<void> apply_file(const std::filesystem::path& file, ContainersConfig& out, bool must_exist,
                        std::string_view why) {
  BERTH_TRY(auto content, detail::read_if_exists(file));
  if (!content) {
    if (must_exist) {
      return fail(Errc::NotFound, std::string(why) + " " + file.string() +
                                      ": no such file (fix the path or unset it)");
    }
    return {};
  }
  return parse_containers_conf(*content, file.string(), out);
}

Result<void> apply_dropins(const std::filesystem::path& dir, ContainersConfig& out) {
  BERTH_TRY(auto files, detail::list_dropins(dir));
  for (const auto& f : files) {
    BERTH_TRYV(apply_file(f, out, false, ""));
  }
  return {};
}

void set_derived_defaults(ContainersConfig& c, const ConfigPaths& paths,
                          const StorageConfig& storage) {
  auto set = [&](std::string& field, std::string value, const char* key) {
    if (field.empty()) {
      field = std::move(value);
      c.sources[key] = "default";
    }
  };
  EngineSection& e = c.engine;
  set(e.cgroup_manager, paths.systemd_booted ? "systemd" : "cgroupfs", "engine.cgroup_manager");
  set(e.events_logger, paths.systemd_booted ? "journald" : "file", "engine.events_logger");
  std::filesystem::path graphroot = storage.graphroot;
  std::filesystem::path runroot = storage.runroot;
  set(e.static_dir, (graphroot / "engine").string(), "engine.static_dir");
  set(e.volume_path, (graphroot / "volumes").string(), "engine.volume_path");
  set(e.tmp_dir, (runroot / "tmp").string(), "engine.tmp_dir");
  set(e.events_logfile_path, (std::filesystem::path(e.tmp_dir) / "events" / "events.log").string(),
      "engine.events_logfile_path");
  set(c.network.network_config_dir, (graphroot / "networks").string(),
      "network.network_config_dir");
}

std::map<std::string, std::vector<std::string>> default_runtimes() {
  auto paths_of = [](const std::string& name) {
    std::vector<std::string> out;
    for (const char* dir : {"/usr/bin/", "/usr/sbin/", "/usr/local/bin/", "/usr/local/sbin/",
                            "/sbin/", "/bin/", "/run/current-system/sw/bin/"}) {
      out.push_back(dir + name);
    }
    return out;
  };
  auto runc = paths_of("runc");
  runc.insert(runc.begin(), "/usr/lib/cri-o-runc/sbin/runc");
  return {{"crun", paths_of("crun")},
          {"runc", runc},
          {"youki", paths_of("youki")},
          {"krun", paths_of("krun")},
          {"runsc", paths_of("runsc")}};
}

}  // namespace

std::string ContainersConfig::source_of(const std::string& key) const {
  auto it = sources.find(key);
  return it == sources.end() ? std::string("default") : it->second;
}

std::vector<std::string> ContainersConfig::runtime_paths(const std::string& name) const {
  auto it = engine.runtimes.find(name);
  return it == engine.runtimes.end() ? std::vector<std::string>{} : it->second;
}

Result<void> parse_containers_conf(const std::string& content, const std::string& file,
                                   ContainersConfig& out) {
  BERTH_TRY(toml::table doc, detail::parse_toml(content, file));
  TableReader r(file, &out.sources);
  r.note_unknown(doc, "", {"containers", "network", "engine", "secrets"},
                 {"machine", "farms", "podmansh", "configmaps"});
  BERTH_TRY(const toml::table* containers, r.table(doc, "containers", "containers"));
  if (containers != nullptr) {
    BERTH_TRYV(read_containers(r, *containers, out.containers));
  }
  BERTH_TRY(const toml::table* network, r.table(doc, "network", "network"));
  if (network != nullptr) {
    BERTH_TRYV(read_network(r, *network, out.network));
  }
  BERTH_TRY(const toml::table* engine, r.table(doc, "engine", "engine"));
  if (engine != nullptr) {
    BERTH_TRYV(read_engine(r, *engine, out.engine));
  }
  BERTH_TRY(const toml::table* secrets, r.table(doc, "secrets", "secrets"));
  if (secrets != nullptr) {
    BERTH_TRYV(read_secrets(r, *secrets, out.secrets));
  }
  out.files.push_back(file);
  return {};
}

Result<ContainersConfig> load_containers_config(const ConfigPaths& paths,
                                                const GlobalOverrides& overrides,
                                                const StorageConfig& storage) {
  ContainersConfig c;
  c.engine.runtimes = default_runtimes();
  auto env_conf = paths.getenv("CONTAINERS_CONF");
  if (env_conf && !env_conf->empty()) {
    BERTH_TRYV(apply_file(*env_conf, c, true, "CONTAINERS_CONF"));
  } else {
    // Lowest priority first (containers-config(5)): each dir's file, then its drop-ins.
    std::string uid = std::to_string(paths.uid);
    for (const auto& dir : detail::dirs_low_to_high(paths)) {
      BERTH_TRYV(apply_file(dir.path / "containers.conf", c, false, ""));
      BERTH_TRYV(apply_dropins(dir.path / "containers.conf.d", c));
      if (dir.user) {
        continue;
      }
      if (paths.rootless()) {
        BERTH_TRYV(apply_dropins(dir.path / "containers.rootless.conf.d", c));
        BERTH_TRYV(apply_dropins(dir.path / "containers.rootless.conf.d" / uid, c));
      } else {
        BERTH_TRYV(apply_dropins(dir.path / "containers.rootful.conf.d", c));
      }
    }
  }
  if (auto o = paths.getenv("CONTAINERS_CONF_OVERRIDE"); o && !o->empty()) {
    BERTH_TRYV(apply_file(*o, c, true, "CONTAINERS_CONF_OVERRIDE"));
  }
  if (overrides.config_path) {
    BERTH_TRYV(apply_file(*overrides.config_path, c, true, "--config"));
  }
  set_derived_defaults(c, paths, storage);
  return c;
}

}  // namespace berth::config
