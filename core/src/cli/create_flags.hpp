#pragma once
// The flags of `run`/`create` by feature area, each in its own file; container_cmds.cpp adds
// them to the command and calls the parsers after its own.
//   create_net_flags.cpp       --network, -p, -P, --expose, --dns*, --add-host, --ip, ...
//   create_mount_flags.cpp     -v, --mount, --tmpfs, --volumes-from
//   create_resource_flags.cpp  --memory, --cpus, --device, --security-opt, --health-*, ...
#include "berth/container/container.hpp"
#include "berth/container/resource_ops.hpp"
#include "command.hpp"

namespace berth::cli {

void net_create_flags(po::options_description& d);
Result<void> parse_net_flags(Context& ctx, container::CreateOptions& o);

void mount_create_flags(po::options_description& d);
Result<void> parse_mount_flags(Context& ctx, container::CreateOptions& o);

void resource_create_flags(po::options_description& d);
Result<void> parse_resource_flags(Context& ctx, container::CreateOptions& o);
// The limits `create` and `update` share (--memory, --memory-swap, --memory-reservation, --cpus,
// --cpu-shares, --cpuset-cpus, --cpuset-mems, --pids-limit, --blkio-weight): set when given.
Result<void> parse_limit_flags(Context& ctx, container::UpdateOptions& u);

}  // namespace berth::cli
