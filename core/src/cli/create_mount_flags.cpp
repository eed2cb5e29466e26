// run/create: volume and mount flags.
#include "create_flags.hpp"

namespace berth::cli {

void mount_create_flags(po::options_description& /*d*/) {}

Result<void> parse_mount_flags(Context& /*ctx*/, container::CreateOptions& /*o*/) {
  return {};
}

}  // namespace berth::cli
