#pragma once
// What the image commands need to know about containers: which images are in use and by how
// many containers. Implemented by the container commands' module.
#include "berth/image/image_service.hpp"
#include "command.hpp"

namespace berth::cli {

image::InUsePredicate image_in_use(Context& ctx);
image::ContainerCounter image_container_count(Context& ctx);

}  // namespace berth::cli
