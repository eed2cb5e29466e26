// containers.conf's `[network] firewall_driver` (Podman 5), read from the files the config module
// merged. config::NetworkSection lists the key as known-but-unused, so the network module reads it
// here, where the bridge driver's options are made. The bridge driver checks the value (so a bad
// one stops bridge networking only, not slirp's).
#include <toml++/toml.h>

#include "internal.hpp"

namespace berth::network {

Result<std::string> firewall_driver(const config::ContainersConfig& cfg) {
  std::string value;
  for (const auto& file : cfg.files) {
    toml::table t;
#if TOML_EXCEPTIONS
    try {
      t = toml::parse_file(file);
    } catch (const toml::parse_error& e) {
      return fail(Errc::InvalidArgument,
                  "containers.conf " + file + ": " + std::string(e.description()));
    }
#else
    toml::parse_result r = toml::parse_file(file);
    if (!r) {
      return fail(Errc::InvalidArgument,
                  "containers.conf " + file + ": " + std::string(r.error().description()));
    }
    t = std::move(r).table();
#endif
    if (const toml::node* n = t.at_path("network.firewall_driver").node()) {
      auto s = n->value<std::string>();
      if (!s) {
        return fail(Errc::InvalidArgument,
                    "containers.conf " + file + ": network.firewall_driver must be a string");
      }
      value = *s;
    }
  }
  return value;
}

}  // namespace berth::network
