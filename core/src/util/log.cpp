#include "berth/util/log.hpp"

#include <spdlog/sinks/stdout_color_sinks.h>

namespace berth::util {

Result<void> init_logging(std::string_view level) {
  std::string l(level);
  if (l == "fatal" || l == "panic") {
    l = "critical";
  }
  auto lvl = spdlog::level::from_str(l);
  if (lvl == spdlog::level::off && l != "off") {
    return fail(Errc::InvalidArgument,
                "invalid log level '" + std::string(level) +
                    "': use trace, debug, info, warn, error, fatal or off");
  }
  auto logger = spdlog::stderr_color_st("berth");
  logger->set_pattern("%^%l%$[%H:%M:%S.%e] %v");
  spdlog::set_default_logger(logger);
  spdlog::set_level(lvl);
  return {};
}

}  // namespace berth::util
