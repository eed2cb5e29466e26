#pragma once
// The container's feature areas, each in its own file, called at fixed points of the lifecycle
// (lifecycle.cpp) and of inspect (query.cpp):
//   net_glue.cpp       networks, published ports, /etc/hosts, /etc/resolv.conf, /etc/hostname
//   mounts_glue.cpp    -v, --mount, --tmpfs, --volumes-from
//   resources_glue.cpp cgroup limits, devices, security options, health checks
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "berth/container/container.hpp"
#include "berth/sdk/id_map.hpp"
#include "berth/spec/spec_builder.hpp"

namespace berth::engine {
class Engine;
}

namespace berth::container::detail {

// create(): the rootfs is mounted at so.rootfs, `so` holds the base options and `opts` the
// user's; each adds its mounts, namespaces, resources to `so`, may record what it made in `opts`
// (stored with the record) and adds warnings. On failure create() undoes the container; a hook
// that made something outside the container's directories undoes it itself.
// Before the others (resources_glue.cpp): --userns and the id maps; the rootfs is mounted
// again idmapped when the container gets a user namespace.
Result<void> userns_prepare(engine::Engine& eng, const ContainerRecord& rec, CreateOptions& opts,
                            spec::SpecOptions& so, std::vector<std::string>& warnings);
// The host ids a container's uid and gid are in its user namespace (resources_glue.cpp): as is
// without one. Volumes and U-chowned binds belong to these.
std::pair<uint32_t, uint32_t> host_ids(const ResourceOptions& r, uint32_t uid, uint32_t gid);
// The id maps of the container's user namespace (resources_glue.cpp), recorded by
// userns_prepare: identity without one. Files crossing the container's boundary (export, cp) are
// mapped with these.
Result<sdk::IdMappings> id_mappings(const ResourceOptions& r);
Result<void> net_prepare(engine::Engine& eng, const ContainerRecord& rec, CreateOptions& opts,
                         spec::SpecOptions& so, std::vector<std::string>& warnings);
Result<void> mounts_prepare(engine::Engine& eng, const ContainerRecord& rec, CreateOptions& opts,
                            spec::SpecOptions& so, std::vector<std::string>& warnings);
Result<void> resources_prepare(engine::Engine& eng, const ContainerRecord& rec, CreateOptions& opts,
                               spec::SpecOptions& so, std::vector<std::string>& warnings);

// init_container(), lock held: before the monitor creates the container in the runtime (each
// start of an exited container runs it again).
Result<void> net_before_init(engine::Engine& eng, const ContainerRecord& rec);
// init_container(), lock held: the runtime created the container (its process `pid`, not started
// yet); plumbs a network namespace the runtime made itself (an OCI runtime with a user namespace).
Result<void> net_after_create(engine::Engine& eng, const ContainerRecord& rec, pid_t pid);
// init_container(), lock held, the rootfs mounted: acquires the named volumes (option volumes
// mounted, counted), fills new ones from the image and chowns them. Held until mounts_after_exit.
Result<void> mounts_before_init(engine::Engine& eng, const ContainerRecord& rec);
// cleanup_locked(), lock held: the container's processes are gone.
Result<void> net_after_exit(engine::Engine& eng, const ContainerRecord& rec);
// cleanup_locked(), lock held: releases what mounts_before_init acquired (idempotent).
Result<void> mounts_after_exit(engine::Engine& eng, const ContainerRecord& rec);
// remove_locked(), lock held: the record and the rootfs are about to go (after net_after_exit).
Result<void> mounts_on_remove(engine::Engine& eng, const ContainerRecord& rec, bool remove_volumes);

// inspect(): each fills its part of Podman's object (NetworkSettings, Mounts, HostConfig...).
void net_inspect(engine::Engine& eng, const ContainerRecord& rec, const ContainerState& st,
                 nlohmann::json& out);
void mounts_inspect(engine::Engine& eng, const ContainerRecord& rec, const ContainerState& st,
                    nlohmann::json& out);
void resources_inspect(engine::Engine& eng, const ContainerRecord& rec, const ContainerState& st,
                       nlohmann::json& out);

// ps: each fills its columns of a `podman ps --format json` row (Ports, Networks, Mounts...).
void net_ps_row(engine::Engine& eng, const ContainerRecord& rec, const ContainerState& st,
                nlohmann::json& row);
void mounts_ps_row(engine::Engine& eng, const ContainerRecord& rec, const ContainerState& st,
                   nlohmann::json& row);

// A command berth-monitor runs while the container runs: first after `first_after_ms`, then
// every `interval_ms` (never two at once), e.g. `berth healthcheck run ID`.
struct PeriodicCommand {
  int64_t interval_ms = 0;
  int64_t first_after_ms = 0;
  // For the first start_period_ms after the start, and until a run exits 0, the runs are
  // start_interval_ms apart (health checks' StartInterval); 0: interval_ms throughout.
  int64_t start_interval_ms = 0;
  int64_t start_period_ms = 0;
  std::vector<std::string> argv;
};
// launch_monitor(): what the monitor of `rec` runs periodically (health checks).
std::vector<PeriodicCommand> resources_periodic(engine::Engine& eng, const ContainerRecord& rec);

}  // namespace berth::container::detail
