#pragma once
// A Go text/template engine over nlohmann::json, as Podman's and Docker's `--format` use it.
// Parse once, execute per row: `Template` is immutable after parse and cheap to copy.
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "berth/sdk/result.hpp"

namespace berth::format {

namespace detail {
struct Tree;
}

class Template {
 public:
  // Parses `text`; errors (Errc::InvalidArgument) name the line:column and the problem, as Go's
  // `template: :1:10: ...`.
  static Result<Template> parse(std::string_view text);

  // Executes against `data` (the dot and `$`); appends to `out`. On error `out` holds the partial
  // output, as Go's writer would.
  Result<void> execute_to(std::string& out, const nlohmann::json& data) const;
  Result<std::string> execute(const nlohmann::json& data) const;

  // Field chains used relative to the top-level dot (outside range/with bodies), e.g. {"ID"},
  // {"State", "Status"}: what a table header needs to know.
  std::vector<std::vector<std::string>> top_level_fields() const;

 private:
  std::shared_ptr<const detail::Tree> tree_;
};

// Go's fmt `%v` of a JSON value (strings raw, `[a b]`, `map[k:v]`, `<nil>`).
std::string go_sprint_value(const nlohmann::json& v);

// JSON as Go's encoding/json writes it: floats in Go's form (3 not 3.0, 1e-7 not 1e-07),
// indent > 0 as json.MarshalIndent(v, "", <indent spaces>), escape_html as Go's default
// (<, >, & as \u003c, \u003e, \u0026). No trailing newline.
std::string go_json(const nlohmann::json& v, int indent = -1, bool escape_html = false);

// Go's fmt.Sprintf over JSON arguments (%v %s %d %q %t %x %X %o %b %e %f %g %c %%, flags, width,
// precision), including Go's `%!d(string=x)` and `%!s(MISSING)` diagnostics.
std::string go_sprintf(std::string_view format, const std::vector<const nlohmann::json*>& args);

}  // namespace berth::format
