#include "image_usage.hpp"

namespace berth::cli {

// Until containers exist in the store nothing uses an image; the container module replaces these
// with lookups of its records.
image::InUsePredicate image_in_use(Context&) {
  return [](const std::string&) { return false; };
}
image::ContainerCounter image_container_count(Context&) {
  return [](const std::string&) { return 0; };
}

}  // namespace berth::cli
