#pragma once
// Internal helpers of Go-style printing shared by the executor and the functions.
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

namespace berth::format::detail {

std::string go_float(double d);
std::string go_type_name(const nlohmann::json& v);
size_t rune_count(std::string_view s);
std::string go_quote(std::string_view s);

}  // namespace berth::format::detail
