// to_json for `berth info` and load_config, which ties the three files together.
#include "berth/config/config.hpp"

namespace berth::config {

nlohmann::json to_json(const StorageConfig& c) {
  nlohmann::json j;
  j["driver"] = c.driver;
  j["graphroot"] = c.graphroot;
  j["runroot"] = c.runroot;
  j["imagestore"] = c.imagestore ? nlohmann::json(*c.imagestore) : nlohmann::json(nullptr);
  j["transient_store"] = c.transient_store;
  const OverlayOptions& o = c.options.overlay;
  j["options"] = {
      {"additionalimagestores", c.options.additional_image_stores},
      {"pull_options", c.options.pull_options},
      {"overlay",
       {{"mount_program", o.mount_program},
        {"mountopt", o.mountopt},
        {"skip_mount_home", o.skip_mount_home},
        {"force_mask", o.force_mask},
        {"ignore_chown_errors", o.ignore_chown_errors},
        {"size", o.size}}},
      {"vfs", {{"ignore_chown_errors", c.options.vfs.ignore_chown_errors}}},
  };
  j["driver_options"] = c.driver_options;
  j["sources"] = c.sources;
  j["file"] = c.file;
  return j;
}

nlohmann::json to_json(const ContainersConfig& c) {
  const ContainersSection& s = c.containers;
  nlohmann::json containers = {
      {"annotations", s.annotations},
      {"base_hosts_file", s.base_hosts_file},
      {"cgroupns", s.cgroupns},
      {"cgroups", s.cgroups},
      {"default_capabilities", s.default_capabilities},
      {"default_sysctls", s.default_sysctls},
      {"default_ulimits", s.default_ulimits},
      {"devices", s.devices},
      {"dns_options", s.dns_options},
      {"dns_searches", s.dns_searches},
      {"dns_servers", s.dns_servers},
      {"env", s.env},
      {"env_host", s.env_host},
      {"http_proxy", s.http_proxy},
      {"init", s.init},
      {"init_path", s.init_path},
      {"ipcns", s.ipcns},
      {"label", s.label},
      {"log_driver", s.log_driver},
      {"log_size_max", s.log_size_max},
      {"log_tag", s.log_tag},
      {"netns", s.netns},
      {"no_hosts", s.no_hosts},
      {"pidns", s.pidns},
      {"pids_limit", s.pids_limit},
      {"read_only", s.read_only},
      {"seccomp_profile", s.seccomp_profile},
      {"shm_size", s.shm_size},
      {"tz", s.tz},
      {"umask", s.umask},
      {"userns", s.userns},
      {"utsns", s.utsns},
  };
  const NetworkSection& n = c.network;
  nlohmann::json pools = nlohmann::json::array();
  for (const auto& p : n.default_subnet_pools) {
    pools.push_back({{"base", p.base}, {"size", p.size}});
  }
  nlohmann::json network = {
      {"network_backend", n.network_backend},
      {"default_network", n.default_network},
      {"default_subnet", n.default_subnet},
      {"default_subnet_pools", pools},
      {"network_config_dir", n.network_config_dir},
      {"dns_bind_port", n.dns_bind_port},
      {"default_rootless_network_cmd", n.default_rootless_network_cmd},
      {"pasta_options", n.pasta_options},
  };
  const EngineSection& e = c.engine;
  nlohmann::json dests = nlohmann::json::object();
  for (const auto& [name, d] : e.service_destinations) {
    dests[name] = {{"uri", d.uri}, {"identity", d.identity}, {"is_machine", d.is_machine}};
  }
  nlohmann::json engine = {
      {"active_service", e.active_service},
      {"service_destinations", dests},
      {"cgroup_manager", e.cgroup_manager},
      {"env", e.env},
      {"events_logger", e.events_logger},
      {"events_logfile_path", e.events_logfile_path},
      {"helper_binaries_dir", e.helper_binaries_dir},
      {"image_default_transport", e.image_default_transport},
      {"image_parallel_copies", e.image_parallel_copies},
      {"infra_image", e.infra_image},
      {"pull_policy", e.pull_policy},
      {"remote", e.remote},
      {"runtime", e.runtime},
      {"runtimes", e.runtimes},
      {"static_dir", e.static_dir},
      {"tmp_dir", e.tmp_dir},
      {"volume_path", e.volume_path},
      {"stop_timeout", e.stop_timeout},
  };
  return {
      {"containers", containers},
      {"network", network},
      {"engine", engine},
      {"secrets", {{"driver", c.secrets.driver}, {"opts", c.secrets.opts}}},
      {"files", c.files},
      {"sources", c.sources},
  };
}

nlohmann::json to_json(const RegistriesConfig& c) {
  nlohmann::json regs = nlohmann::json::array();
  for (const auto& r : c.registries) {
    nlohmann::json mirrors = nlohmann::json::array();
    for (const auto& m : r.mirrors) {
      mirrors.push_back({{"location", m.location},
                         {"insecure", m.insecure},
                         {"pull-from-mirror", std::string(to_string(m.pull_from_mirror))}});
    }
    regs.push_back({{"prefix", r.prefix},
                    {"location", r.location},
                    {"insecure", r.insecure},
                    {"blocked", r.blocked},
                    {"mirror-by-digest-only", r.mirror_by_digest_only},
                    {"mirror", mirrors}});
  }
  nlohmann::json aliases = nlohmann::json::object();
  for (const auto& [name, a] : c.aliases) {
    aliases[name] = a.value;
  }
  return {
      {"unqualified-search-registries", c.unqualified_search_registries},
      {"short-name-mode", std::string(to_string(c.short_name_mode))},
      {"credential-helpers", c.credential_helpers},
      {"registry", regs},
      {"aliases", aliases},
      {"files", c.files},
  };
}

nlohmann::json to_json(const Config& c) {
  return {{"storage", to_json(c.storage)},
          {"containers", to_json(c.containers)},
          {"registries", to_json(c.registries)}};
}

Result<Config> load_config(const ConfigPaths& paths, const GlobalOverrides& overrides) {
  Config c;
  BERTH_TRY(c.storage, load_storage_config(paths, overrides));
  BERTH_TRY(c.containers, load_containers_config(paths, overrides, c.storage));
  BERTH_TRY(c.registries, load_registries_config(paths));
  return c;
}

}  // namespace berth::config
