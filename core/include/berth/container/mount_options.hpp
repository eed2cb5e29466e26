#pragma once
// A container's storage flags (run/create -v, --mount, --tmpfs, --volumes-from), stored with its
// record. Owned by core/src/container/mounts_glue.cpp.
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace berth::container {

struct MountOptions {
  std::vector<std::string> volumes;       // -v/--volume specs as given
  std::vector<std::string> mounts;        // --mount specs as given
  std::vector<std::string> tmpfs;         // --tmpfs DEST[:OPTIONS]
  std::vector<std::string> volumes_from;  // --volumes-from CTR[:ro|rw]
  // Filled at create: the named volumes this container holds (anonymous ones included) and which
  // of them are anonymous (removed with `rm -v`).
  std::vector<std::string> named_volumes;
  std::vector<std::string> anonymous_volumes;
};
void to_json(nlohmann::json& j, const MountOptions& o);
void from_json(const nlohmann::json& j, MountOptions& o);

}  // namespace berth::container
