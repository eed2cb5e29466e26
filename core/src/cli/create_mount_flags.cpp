// run/create: volume and mount flags.
#include "create_flags.hpp"

namespace berth::cli {

void mount_create_flags(po::options_description& d) {
  using strings = std::vector<std::string>;
  d.add_options()("volume,v", po::value<strings>()->composing(),
                  "Bind mount a volume into the container "
                  "([HOST-DIR|NAME:]CONTAINER-DIR[:OPTIONS])")(
      "mount", po::value<strings>()->composing(),
      "Attach a filesystem mount to the container (type=bind|volume|tmpfs|image,src=,dst=,...)")(
      "tmpfs", po::value<strings>()->composing(), "Mount a temporary filesystem (DEST[:OPTIONS])")(
      "volumes-from", po::value<strings>()->composing(),
      "Mount volumes from the specified container(s) (CONTAINER[:ro|rw])")(
      "read-only-tmpfs", po::value<bool>()->implicit_value(true),
      "With --read-only, mount read-write tmpfs on /run, /tmp and /var/tmp "
      "(default true)");
}

Result<void> parse_mount_flags(Context& ctx, container::CreateOptions& o) {
  auto& m = o.storage;
  m.volumes = ctx.strs("volume");
  m.mounts = ctx.strs("mount");
  m.tmpfs = ctx.strs("tmpfs");
  m.volumes_from = ctx.strs("volumes-from");
  if (ctx.vm.count("read-only-tmpfs") != 0) {
    m.read_only_tmpfs = ctx.vm["read-only-tmpfs"].as<bool>();
  }
  // Syntax errors now, before an image is looked up, as Podman reports them.
  for (const auto& v : m.volumes) {
    BERTH_TRYV(container::parse_volume_flag(v));
  }
  for (const auto& v : m.mounts) {
    BERTH_TRYV(container::parse_mount_flag(v));
  }
  for (const auto& v : m.tmpfs) {
    BERTH_TRYV(container::parse_tmpfs_flag(v));
  }
  return {};
}

}  // namespace berth::cli
