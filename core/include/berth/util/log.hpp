#pragma once
#include <spdlog/spdlog.h>

#include <string_view>

#include "berth/sdk/result.hpp"

namespace berth::util {

// Sets up spdlog on stderr at `level` (trace, debug, info, warn, error, fatal/critical, off).
Result<void> init_logging(std::string_view level);

}  // namespace berth::util
