#pragma once
#include "oci_config.hpp"

namespace berth::runtime {

// Drops everything outside the bounding set (needs CAP_SETPCAP, so call it before the uid switch).
Result<void> drop_bounding_set(const CapabilitySpec& caps);
// Sets effective/permitted/inheritable, then the ambient set.
Result<void> apply_capabilities(const CapabilitySpec& caps);

}  // namespace berth::runtime
