// run/create: resource, device, security and health flags.
#include "create_flags.hpp"

namespace berth::cli {

void resource_create_flags(po::options_description& d) {
  d.add_options()("security-opt", po::value<std::vector<std::string>>()->composing(),
                  "Security options");
}

Result<void> parse_resource_flags(Context& ctx, container::CreateOptions& o) {
  for (const auto& s : ctx.strs("security-opt")) {
    if (s == "no-new-privileges" || s == "no-new-privileges=true" ||
        s == "no-new-privileges:true") {
      o.no_new_privileges = true;
    } else {
      return fail(Errc::NotSupported,
                  "--security-opt " + s + ": not supported (supported: no-new-privileges)");
    }
  }
  return {};
}

}  // namespace berth::cli
