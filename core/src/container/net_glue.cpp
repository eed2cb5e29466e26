// A container's network: the mode chosen at create, its /etc/hostname, /etc/hosts and
// /etc/resolv.conf, and NetworkSettings in inspect.
#include <unistd.h>

#include "berth/container/net_options.hpp"
#include "berth/engine/engine.hpp"
#include "berth/util/fs.hpp"
#include "features.hpp"

namespace berth::container {

using nlohmann::json;

void to_json(json& j, const NetOptions& o) {
  j = json{{"networks", o.networks},
           {"publish", o.publish},
           {"publish_all", o.publish_all},
           {"expose", o.expose},
           {"dns", o.dns},
           {"dns_search", o.dns_search},
           {"dns_options", o.dns_options},
           {"add_hosts", o.add_hosts},
           {"aliases", o.aliases},
           {"ip", o.ip},
           {"mac", o.mac},
           {"no_hosts", o.no_hosts}};
}

void from_json(const json& j, NetOptions& o) {
  NetOptions d;
  o.networks = j.value("networks", d.networks);
  o.publish = j.value("publish", d.publish);
  o.publish_all = j.value("publish_all", d.publish_all);
  o.expose = j.value("expose", d.expose);
  o.dns = j.value("dns", d.dns);
  o.dns_search = j.value("dns_search", d.dns_search);
  o.dns_options = j.value("dns_options", d.dns_options);
  o.add_hosts = j.value("add_hosts", d.add_hosts);
  o.aliases = j.value("aliases", d.aliases);
  o.ip = j.value("ip", d.ip);
  o.mac = j.value("mac", d.mac);
  o.no_hosts = j.value("no_hosts", d.no_hosts);
}

namespace detail {

namespace {

// /etc/resolv.conf of the host without 127.x nameservers (they would not answer in the
// container's network namespace).
std::string container_resolv_conf() {
  auto text = util::read_file("/etc/resolv.conf");
  std::string out;
  if (!text) {
    return out;
  }
  size_t pos = 0;
  while (pos < text->size()) {
    size_t nl = text->find('\n', pos);
    std::string line = text->substr(pos, nl == std::string::npos ? std::string::npos : nl - pos);
    pos = nl == std::string::npos ? text->size() : nl + 1;
    if (line.rfind("nameserver", 0) == 0 && line.find(" 127.") != std::string::npos) {
      continue;
    }
    out += line + "\n";
  }
  return out;
}

}  // namespace

Result<void> net_prepare(engine::Engine& /*eng*/, const ContainerRecord& rec, CreateOptions& opts,
                         spec::SpecOptions& so, std::vector<std::string>& warnings) {
  if (opts.network.empty() || opts.network == "private" || opts.network == "bridge" ||
      opts.network == "slirp4netns" || opts.network == "pasta") {
    if (opts.network != "none" && !opts.network.empty()) {
      warnings.push_back("network mode \"" + opts.network +
                         "\" is not available yet; the container has no network (none)");
    }
    opts.network = "none";
  }
  if (opts.network != "none" && opts.network != "host") {
    return fail(Errc::InvalidArgument,
                "network \"" + opts.network + "\" not found (supported now: none, host)");
  }
  if (opts.network == "host") {
    so.network.kind = spec::NamespaceMode::Kind::Host;
  }
  BERTH_TRYV(util::write_file_atomic(rec.bundle + "/hostname", opts.hostname + "\n"));
  BERTH_TRYV(util::write_file_atomic(rec.bundle + "/hosts",
                                     "127.0.0.1\tlocalhost localhost.localdomain\n::1\tlocalhost "
                                     "localhost.localdomain\n127.0.1.1\t" +
                                         opts.hostname + "\n"));
  BERTH_TRYV(util::write_file_atomic(rec.bundle + "/resolv.conf", container_resolv_conf()));
  for (const char* f : {"hostname", "hosts", "resolv.conf"}) {
    so.mounts.push_back(spec::BindMount{
        rec.bundle + "/" + f, std::string("/etc/") + f, {"rbind", "rprivate", "nosuid", "nodev"}});
  }
  return {};
}

Result<void> net_before_init(engine::Engine& /*eng*/, const ContainerRecord& /*rec*/) {
  return {};
}

Result<void> net_after_exit(engine::Engine& /*eng*/, const ContainerRecord& /*rec*/) {
  return {};
}

void net_inspect(engine::Engine& /*eng*/, const ContainerRecord& rec, const ContainerState& /*st*/,
                 json& out) {
  out["NetworkSettings"] = {{"EndpointID", ""}, {"Gateway", ""},           {"IPAddress", ""},
                            {"IPPrefixLen", 0}, {"MacAddress", ""},        {"Bridge", ""},
                            {"SandboxID", ""},  {"Ports", json::object()}, {"SandboxKey", ""}};
  out["HostConfig"]["NetworkMode"] = rec.options.network;
}

void net_ps_row(engine::Engine& /*eng*/, const ContainerRecord& /*rec*/,
                const ContainerState& /*st*/, json& /*row*/) {}

}  // namespace detail
}  // namespace berth::container
