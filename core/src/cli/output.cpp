#include "output.hpp"

namespace berth::cli {

Result<int> print_list(Context& ctx, const nlohmann::json& rows, const format::ListSpec& spec) {
  format::OutputOptions o;
  o.format = ctx.str("format");
  o.quiet = ctx.vm.count("quiet") != 0 && ctx.vm["quiet"].as<bool>();
  o.noheading = ctx.vm.count("noheading") != 0 && ctx.vm["noheading"].as<bool>();
  BERTH_TRY(auto text, format::render_list(rows, spec, o));
  ctx.print(text);
  return 0;
}

Result<int> print_object(Context& ctx, const nlohmann::json& obj) {
  BERTH_TRY(auto text, format::render_object(obj, ctx.str("format")));
  ctx.print(text);
  if (!text.empty() && text.back() != '\n') {
    ctx.print("\n");
  }
  return 0;
}

Result<int> print_objects(Context& ctx, const nlohmann::json& arr) {
  BERTH_TRY(auto text, format::render_objects(arr, ctx.str("format")));
  ctx.print(text);
  if (!text.empty() && text.back() != '\n') {
    ctx.print("\n");
  }
  return 0;
}

}  // namespace berth::cli
