#pragma once
#include <string>
#include <string_view>

#include "berth/sdk/result.hpp"
#include "berth/store/store.hpp"

namespace berth::image {

struct LookupResult {
  store::ImageRecord image;
  std::string matched_name;  // the stored name the user's text resolved to; "" for an ID
};
Result<LookupResult> lookup_detail(store::Store& store, std::string_view name_or_id);

}  // namespace berth::image
