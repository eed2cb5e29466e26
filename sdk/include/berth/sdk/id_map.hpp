#pragma once
// The id maps of a container's user namespace, applied to file owners crossing its boundary:
// tars leaving the container (export, cp out) carry the container's ids, as the kernel shows them
// inside; tars entering it (cp in) are written with the host ids the container's ids stand for.
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "berth/sdk/result.hpp"

namespace berth::sdk {

// One line of /proc/PID/uid_map: container ids [container, container + size) are host ids
// [host, host + size).
struct IdRange {
  uint32_t container = 0;
  uint32_t host = 0;
  uint32_t size = 0;
};

// The uid or gid map of one user namespace. Without ranges it is the host's own: no mapping.
class IdMap {
 public:
  IdMap() = default;
  explicit IdMap(std::vector<IdRange> ranges) : ranges_(std::move(ranges)) {}

  bool identity() const { return ranges_.empty(); }
  const std::vector<IdRange>& ranges() const { return ranges_; }

  // nullopt when the map does not hold the id.
  std::optional<uint32_t> to_host(uint32_t container_id) const {
    if (identity()) {
      return container_id;
    }
    for (const auto& r : ranges_) {
      if (container_id >= r.container && uint64_t{container_id} < uint64_t{r.container} + r.size) {
        return r.host + (container_id - r.container);
      }
    }
    return std::nullopt;
  }
  std::optional<uint32_t> to_container(uint32_t host_id) const {
    if (identity()) {
      return host_id;
    }
    for (const auto& r : ranges_) {
      if (host_id >= r.host && uint64_t{host_id} < uint64_t{r.host} + r.size) {
        return r.container + (host_id - r.host);
      }
    }
    return std::nullopt;
  }

  // "0:100000:65536,..." for messages.
  std::string describe() const {
    std::string s;
    for (const auto& r : ranges_) {
      s += (s.empty() ? "" : ",") + std::to_string(r.container) + ":" + std::to_string(r.host) +
           ":" + std::to_string(r.size);
    }
    return s.empty() ? "the host's ids" : s;
  }

 private:
  std::vector<IdRange> ranges_;
};

struct Owner {
  uint32_t uid = 0;
  uint32_t gid = 0;
  bool operator==(const Owner&) const = default;
};

// Both maps of a container. Default: no user namespace, every id is itself.
struct IdMappings {
  // What the kernel shows inside a user namespace for an id its map lacks (overflowuid).
  static constexpr uint32_t kOverflowId = 65534;

  IdMap uids;
  IdMap gids;

  bool identity() const { return uids.identity() && gids.identity(); }

  // A host owner as the container sees it; ids outside the maps become kOverflowId.
  Owner to_container(Owner host) const {
    return {uids.to_container(host.uid).value_or(kOverflowId),
            gids.to_container(host.gid).value_or(kOverflowId)};
  }

  // The host owner a container owner stands for. An id outside the maps cannot be written so
  // that the container sees it: InvalidArgument naming `what` (the file) and the maps.
  Result<Owner> to_host(Owner container, const std::string& what) const {
    auto uid = uids.to_host(container.uid);
    auto gid = gids.to_host(container.gid);
    if (uid && gid) {
      return Owner{*uid, *gid};
    }
    const bool bad_uid = !uid;
    return fail(Errc::InvalidArgument,
                what + " is owned by " + (bad_uid ? "uid " : "gid ") +
                    std::to_string(bad_uid ? container.uid : container.gid) +
                    ", which the container's user namespace does not map (its " +
                    (bad_uid ? "uid" : "gid") + " map, CONTAINER:HOST:SIZE, is " +
                    (bad_uid ? uids : gids).describe() +
                    "): chown it to an id the map holds first");
  }
};

}  // namespace berth::sdk
