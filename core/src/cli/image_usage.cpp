#include "image_usage.hpp"

#include "berth/container/service.hpp"
#include "berth/engine/engine.hpp"

namespace berth::cli {

namespace {
// Image id -> number of containers made from it; empty when the records cannot be read (then
// removal errs on the side of refusing).
std::shared_ptr<std::map<std::string, int>> usage(Context& ctx, bool& ok) {
  auto counts = std::make_shared<std::map<std::string, int>>();
  ok = false;
  auto engine = ctx.engine();
  if (!engine) {
    return counts;
  }
  auto recs = container::records(**engine);
  if (!recs) {
    return counts;
  }
  for (const auto& r : *recs) {
    ++(*counts)[r.image_id];
  }
  ok = true;
  return counts;
}
}  // namespace

image::InUsePredicate image_in_use(Context& ctx) {
  bool ok = false;
  auto counts = usage(ctx, ok);
  return [counts, ok](const std::string& id) { return !ok || counts->count(id) != 0; };
}

image::ContainerCounter image_container_count(Context& ctx) {
  bool ok = false;
  auto counts = usage(ctx, ok);
  return [counts](const std::string& id) {
    auto it = counts->find(id);
    return it == counts->end() ? 0 : it->second;
  };
}

}  // namespace berth::cli
