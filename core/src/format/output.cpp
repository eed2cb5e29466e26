// The output layer: Podman's pkg/report behaviour over JSON rows.
#include "berth/format/output.hpp"

#include <fmt/format.h>

#include <cctype>

#include "berth/format/tabwriter.hpp"
#include "berth/format/template.hpp"

namespace berth::format {

using nlohmann::json;

namespace {

constexpr std::string_view kTablePrefix = "table ";
constexpr int kInspectIndent = 4;

std::string upper(std::string s) {
  for (auto& c : s) {
    c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  }
  return s;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) {
    s.remove_prefix(1);
  }
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) {
    s.remove_suffix(1);
  }
  return s;
}

// Turns the two-character sequences `\t` and `\n` into tab and newline; in a table, blanks
// outside actions become tabs too (Podman replaces every blank; doing it only between actions
// keeps string literals such as {{printf "%s %s"}} intact).
std::string unescape(std::string_view f, bool table) {
  std::string out;
  out.reserve(f.size() + 1);
  int depth = 0;
  for (size_t i = 0; i < f.size(); ++i) {
    if (f.substr(i).starts_with("{{")) {
      ++depth;
      out += "{{";
      ++i;
      continue;
    }
    if (depth > 0 && f.substr(i).starts_with("}}")) {
      --depth;
      out += "}}";
      ++i;
      continue;
    }
    if (f[i] == '\\' && i + 1 < f.size() && (f[i + 1] == 't' || f[i + 1] == 'n')) {
      out += f[i + 1] == 't' ? '\t' : '\n';
      ++i;
      continue;
    }
    if (table && depth == 0 && f[i] == ' ') {
      out += '\t';
      continue;
    }
    out += f[i];
  }
  return out;
}

// Podman parses the normalized text and, when that fails (e.g. `{{printf "\n"}}` turned into a
// real newline inside a string), the text as given.
Result<Template> compile(std::string_view format) {
  std::string norm = normalize_format(format);
  auto t = Template::parse(norm);
  if (t) {
    return t;
  }
  std::string raw(format.starts_with(kTablePrefix) ? format.substr(kTablePrefix.size()) : format);
  auto t2 = Template::parse(raw);
  if (t2) {
    return t2;
  }
  return std::unexpected(std::move(t).error().wrap("--format"));
}

// `{{range .}} ... {{end}}` given by the user: the template runs once over the whole array.
bool has_explicit_range(std::string_view f) {
  size_t at = f.find("{{");
  while (at != std::string_view::npos) {
    size_t i = at + 2;
    if (i < f.size() && f[i] == '-') {
      ++i;
    }
    while (i < f.size() && std::isspace(static_cast<unsigned char>(f[i]))) {
      ++i;
    }
    if (f.substr(i).starts_with("range")) {
      i += 5;
      while (i < f.size() && std::isspace(static_cast<unsigned char>(f[i]))) {
        ++i;
      }
      if (f.substr(i).starts_with(".")) {
        ++i;
        while (i < f.size() && std::isspace(static_cast<unsigned char>(f[i]))) {
          ++i;
        }
        if (f.substr(i).starts_with("}}") || f.substr(i).starts_with("-}}")) {
          return true;
        }
      }
    }
    at = f.find("{{", at + 2);
  }
  return false;
}

json header_object(const Template& t, const std::map<std::string, std::string>& overrides) {
  json hdr = json::object();
  for (const auto& chain : t.top_level_fields()) {
    std::string dotted;
    for (const auto& f : chain) {
      dotted += dotted.empty() ? f : "." + f;
    }
    const std::string& leaf = chain.back();
    std::string name;
    if (auto it = overrides.find(dotted); it != overrides.end()) {
      name = upper(it->second);
    } else if (auto it2 = overrides.find(leaf); it2 != overrides.end()) {
      name = upper(it2->second);
    } else {
      name = header_for_field(leaf);
    }
    json* node = &hdr;
    bool conflict = false;
    for (size_t i = 0; i + 1 < chain.size(); ++i) {
      json& next = (*node)[chain[i]];
      if (next.is_null()) {
        next = json::object();
      } else if (!next.is_object()) {
        conflict = true;
        break;
      }
      node = &next;
    }
    if (!conflict && !node->contains(leaf)) {
      (*node)[leaf] = name;
    }
  }
  return hdr;
}

std::string fallback_header(const Template& t, const std::map<std::string, std::string>& o) {
  std::string line;
  for (const auto& chain : t.top_level_fields()) {
    if (!line.empty()) {
      line += '\t';
    }
    auto it = o.find(chain.back());
    line += it != o.end() ? upper(it->second) : header_for_field(chain.back());
  }
  return line + "\n";
}

// podman ps/images print json.MarshalIndent (HTML-escaped); podman inspect an Encoder with
// SetEscapeHTML(false) so healthcheck commands with <, > and && stay readable.
std::string json_dump(const json& v, int indent, bool escape_html) {
  return go_json(v, indent, escape_html) + "\n";
}

Result<std::string> render_each(const json& arr, std::string_view format) {
  BERTH_TRY(Template t, compile(format));
  std::string out;
  if (has_explicit_range(format)) {
    auto r = t.execute_to(out, arr);
    if (!r) {
      return std::unexpected(std::move(r).error().wrap("--format"));
    }
    return out;
  }
  for (const auto& row : arr) {
    auto r = t.execute_to(out, row);
    if (!r) {
      return std::unexpected(std::move(r).error().wrap("--format"));
    }
  }
  return out;
}

}  // namespace

bool is_json_format(std::string_view format) {
  std::string_view f = trim(format);
  auto ieq = [](std::string_view a, std::string_view b) {
    if (a.size() != b.size()) {
      return false;
    }
    for (size_t i = 0; i < a.size(); ++i) {
      if (std::tolower(static_cast<unsigned char>(a[i])) != b[i]) {
        return false;
      }
    }
    return true;
  };
  if (ieq(f, "json")) {
    return true;
  }
  if (!f.starts_with("{{") || !f.ends_with("}}")) {
    return false;
  }
  std::string_view in = trim(f.substr(2, f.size() - 4));
  if (in.size() < 4 || !ieq(in.substr(0, 4), "json")) {
    return false;
  }
  in = trim(in.substr(4));
  return in.empty() || in == ".";
}

std::string header_for_field(std::string_view field) {
  // containers/common pkg/report/camelcase.Split: runs of lower, upper, digit and other
  // characters; an upper-case run followed by lower case gives its last letter to the next.
  std::vector<std::string> runs;
  int last = 0;
  for (char ch : field) {
    auto c = static_cast<unsigned char>(ch);
    int cls = std::islower(c) ? 1 : std::isupper(c) ? 2 : std::isdigit(c) ? 3 : 4;
    if (cls == last && !runs.empty()) {
      runs.back() += ch;
    } else {
      runs.emplace_back(1, ch);
    }
    last = cls;
  }
  for (size_t i = 0; i + 1 < runs.size(); ++i) {
    if (std::isupper(static_cast<unsigned char>(runs[i][0])) &&
        std::islower(static_cast<unsigned char>(runs[i + 1][0]))) {
      runs[i + 1].insert(runs[i + 1].begin(), runs[i].back());
      runs[i].pop_back();
    }
  }
  std::string out;
  for (const auto& r : runs) {
    if (r.empty()) {
      continue;
    }
    if (!out.empty()) {
      out += ' ';
    }
    out += r;
  }
  return upper(out);
}

std::string normalize_format(std::string_view format) {
  bool table = format.starts_with(kTablePrefix);
  std::string f = unescape(table ? format.substr(kTablePrefix.size()) : format, table);
  if (!f.ends_with('\n')) {
    f += '\n';
  }
  return f;
}

Result<std::string> render_list(const json& rows, const ListSpec& spec, const OutputOptions& opts) {
  if (!rows.is_array()) {
    return fail(Errc::InvalidArgument, "render list: rows must be a JSON array");
  }
  std::string format = opts.format;
  bool user_template = !format.empty() && !is_json_format(format);
  if (opts.quiet && !user_template && !spec.quiet_field.empty()) {
    format = "{{." + spec.quiet_field + "}}\n";
    return render_each(rows, format);
  }
  if (format.empty() || trim(format) == "table") {
    format = spec.default_format;
    if (!format.starts_with(kTablePrefix) && trim(opts.format) == "table") {
      format.insert(0, kTablePrefix);
    }
  }
  if (is_json_format(format)) {
    return json_dump(rows, spec.json_indent, true);
  }
  if (!format.starts_with(kTablePrefix)) {
    return render_each(rows, format);
  }
  BERTH_TRY(Template t, compile(format));
  std::string text;
  if (!opts.noheading) {
    json hdr = header_object(t, spec.headers);
    std::string line;
    if (t.execute_to(line, hdr)) {
      text += line;
    } else {
      text += fallback_header(t, spec.headers);
    }
  }
  for (const auto& row : rows) {
    auto r = t.execute_to(text, row);
    if (!r) {
      return std::unexpected(std::move(r).error().wrap("--format"));
    }
  }
  return TabWriter::format(text, TabWriter::podman_defaults());
}

Result<std::string> render_object(const json& obj, const std::string& format) {
  if (format.empty() || is_json_format(format)) {
    return json_dump(obj, kInspectIndent, false);
  }
  BERTH_TRY(Template t, compile(format));
  std::string out;
  auto r = t.execute_to(out, obj);
  if (!r) {
    return std::unexpected(std::move(r).error().wrap("--format"));
  }
  return out;
}

Result<std::string> render_objects(const json& arr, const std::string& format) {
  if (!arr.is_array()) {
    return fail(Errc::InvalidArgument, "render objects: expected a JSON array");
  }
  if (format.empty() || is_json_format(format)) {
    return json_dump(arr, kInspectIndent, false);
  }
  return render_each(arr, format);
}

}  // namespace berth::format
