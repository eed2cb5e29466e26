#pragma once
// The output layer every list/inspect command prints through, behaving as Podman's
// containers/common pkg/report: `--format json`, `--format 'table {{.ID}}\t{{.Names}}'`, plain Go
// templates, `--quiet` and `--noheading`.
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "berth/sdk/result.hpp"

namespace berth::format {

struct ListSpec {
  // Used when the user gives no format (or the bare word "table"),
  // e.g. "table {{.ID}}\t{{.Image}}\t{{.Names}}".
  std::string default_format;
  // Field -> header override, e.g. "ID" -> "CONTAINER ID" (upper-cased on output, as Podman).
  // A nested field may be named by its dotted path ("State.Status") or its last element.
  std::map<std::string, std::string> headers;
  // Printed per row by --quiet, e.g. "ID".
  std::string quiet_field;
  // Indent of `--format json`: podman ps/images/volume ls use 2 spaces.
  int json_indent = 2;
};

struct OutputOptions {
  std::string format;
  bool quiet = false;
  bool noheading = false;
};

// Renders `rows` (a JSON array of objects). The result ends with a newline when non-empty.
// --quiet wins unless a Go template (not json) is given, as `podman ps`.
Result<std::string> render_list(const nlohmann::json& rows, const ListSpec& spec,
                                const OutputOptions& opts);

// `inspect` of one object: empty or "json" -> JSON with 4-space indent; otherwise the template.
Result<std::string> render_object(const nlohmann::json& obj, const std::string& format);

// `inspect` of several objects: empty or "json" -> a JSON array (4-space indent); otherwise one
// rendered template per object, each ending with a newline.
Result<std::string> render_objects(const nlohmann::json& arr, const std::string& format);

// Podman's report.IsJSON: "json", "{{json .}}", "{{ json . }}" (surrounding blanks allowed).
bool is_json_format(std::string_view format);

// Podman's report.Headers naming: "CreatedAt" -> "CREATED AT", "ImageID" -> "IMAGE ID".
std::string header_for_field(std::string_view field);

// Podman's NormalizeFormat: strips "table ", turns the two-character sequences `\t` and `\n` into
// tab and newline (in a table, blanks between actions become tabs), appends a final newline.
std::string normalize_format(std::string_view format);

}  // namespace berth::format
