// A container's storage flags: -v, --mount, --tmpfs, --volumes-from.
#include "berth/container/mount_options.hpp"
#include "berth/engine/engine.hpp"
#include "features.hpp"

namespace berth::container {

using nlohmann::json;

void to_json(json& j, const MountOptions& o) {
  j = json{{"volumes", o.volumes},
           {"mounts", o.mounts},
           {"tmpfs", o.tmpfs},
           {"volumes_from", o.volumes_from},
           {"named_volumes", o.named_volumes},
           {"anonymous_volumes", o.anonymous_volumes}};
}

void from_json(const json& j, MountOptions& o) {
  MountOptions d;
  o.volumes = j.value("volumes", d.volumes);
  o.mounts = j.value("mounts", d.mounts);
  o.tmpfs = j.value("tmpfs", d.tmpfs);
  o.volumes_from = j.value("volumes_from", d.volumes_from);
  o.named_volumes = j.value("named_volumes", d.named_volumes);
  o.anonymous_volumes = j.value("anonymous_volumes", d.anonymous_volumes);
}

namespace detail {

Result<void> mounts_prepare(engine::Engine& /*eng*/, const ContainerRecord& /*rec*/,
                            CreateOptions& opts, spec::SpecOptions& /*so*/,
                            std::vector<std::string>& /*warnings*/) {
  const auto& m = opts.storage;
  if (!m.volumes.empty() || !m.mounts.empty() || !m.tmpfs.empty() || !m.volumes_from.empty()) {
    return fail(Errc::NotSupported, "volumes and mounts are not supported yet");
  }
  return {};
}

Result<void> mounts_on_remove(engine::Engine& /*eng*/, const ContainerRecord& /*rec*/,
                              bool /*remove_volumes*/) {
  return {};
}

void mounts_inspect(engine::Engine& /*eng*/, const ContainerRecord& /*rec*/,
                    const ContainerState& /*st*/, json& /*out*/) {}

void mounts_ps_row(engine::Engine& /*eng*/, const ContainerRecord& /*rec*/,
                   const ContainerState& /*st*/, json& /*row*/) {}

}  // namespace detail
}  // namespace berth::container
