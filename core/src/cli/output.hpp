#pragma once
// Printing through the one output layer (berth::format) from a command's flags.
#include <nlohmann/json.hpp>

#include "berth/format/output.hpp"
#include "command.hpp"

namespace berth::cli {

// Prints rows with --format/--quiet/--noheading as the command's flags say.
Result<int> print_list(Context& ctx, const nlohmann::json& rows, const format::ListSpec& spec);
// Prints one object (inspect, info, version) with --format; `text` renders the default view.
Result<int> print_object(Context& ctx, const nlohmann::json& obj);
// Prints several objects as `inspect` does (a JSON array by default).
Result<int> print_objects(Context& ctx, const nlohmann::json& arr);

}  // namespace berth::cli
