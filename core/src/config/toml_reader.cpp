#include "toml_reader.hpp"

#include <spdlog/spdlog.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <system_error>

#include "berth/util/fs.hpp"

namespace berth::config::detail {

namespace {

std::string_view type_name(toml::node_type t) {
  switch (t) {
    case toml::node_type::none:
      return "nothing";
    case toml::node_type::table:
      return "a table";
    case toml::node_type::array:
      return "an array";
    case toml::node_type::string:
      return "a string";
    case toml::node_type::integer:
      return "an integer";
    case toml::node_type::floating_point:
      return "a float";
    case toml::node_type::boolean:
      return "a boolean";
    case toml::node_type::date:
      return "a date";
    case toml::node_type::time:
      return "a time";
    case toml::node_type::date_time:
      return "a date-time";
  }
  return "an unknown value";
}

}  // namespace

std::string join_path(std::string_view prefix, std::string_view key) {
  if (prefix.empty()) {
    return std::string(key);
  }
  std::string out(prefix);
  out += '.';
  out += key;
  return out;
}

Result<toml::table> parse_toml(const std::string& content, const std::string& file) {
#if TOML_EXCEPTIONS
  try {
    return toml::parse(content, file);
  } catch (const toml::parse_error& e) {
    const auto& b = e.source().begin;
    return fail(Errc::InvalidArgument, file + ":" + std::to_string(b.line) + ":" +
                                           std::to_string(b.column) + ": " +
                                           std::string(e.description()));
  }
#else
  toml::parse_result r = toml::parse(content, file);
  if (!r) {
    const auto& b = r.error().source().begin;
    return fail(Errc::InvalidArgument, file + ":" + std::to_string(b.line) + ":" +
                                           std::to_string(b.column) + ": " +
                                           std::string(r.error().description()));
  }
  return std::move(r).table();
#endif
}

Result<std::optional<std::string>> read_if_exists(const std::filesystem::path& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    if (errno == ENOENT || errno == ENOTDIR) {
      return std::optional<std::string>();
    }
    return fail_errno("stat config file", path.string());
  }
  if (S_ISDIR(st.st_mode)) {
    return fail(Errc::InvalidArgument,
                "config file " + path.string() + " is a directory (expected a TOML file)");
  }
  BERTH_TRY(std::string content, util::read_file(path));
  return std::optional<std::string>(std::move(content));
}

Result<std::vector<std::filesystem::path>> list_dropins(const std::filesystem::path& dir) {
  std::vector<std::filesystem::path> out;
  std::error_code ec;
  std::filesystem::directory_iterator it(dir, ec);
  if (ec) {
    if (ec == std::errc::no_such_file_or_directory || ec == std::errc::not_a_directory) {
      return out;
    }
    return fail(Error(errc_from_errno(ec.value()),
                      "list drop-in dir " + dir.string() + ": " + ec.message(), ec.value()));
  }
  for (const auto& entry : it) {
    if (entry.path().extension() != ".conf") {
      continue;
    }
    std::error_code sec;
    if (!entry.is_regular_file(sec)) {  // follows symlinks, as Podman's os.Stat does
      continue;
    }
    out.push_back(entry.path());
  }
  std::sort(out.begin(), out.end(),
            [](const auto& a, const auto& b) { return a.filename() < b.filename(); });
  return out;
}

std::string TableReader::position(const toml::source_region& where) const {
  std::string out = file_;
  if (where.begin.line != 0) {
    out += ':' + std::to_string(where.begin.line) + ':' + std::to_string(where.begin.column);
  }
  return out;
}

Error TableReader::type_error(const toml::node& n, std::string_view path,
                              std::string_view expected) const {
  return Error(Errc::InvalidArgument, position(n.source()) + ": key " + std::string(path) +
                                          ": expected " + std::string(expected) + ", got " +
                                          std::string(type_name(n.type())));
}

Error TableReader::value_error(const toml::node& n, std::string_view path,
                               std::string_view message) const {
  return value_error(n.source(), path, message);
}

Error TableReader::value_error(const toml::source_region& where, std::string_view path,
                               std::string_view message) const {
  return Error(Errc::InvalidArgument,
               position(where) + ": key " + std::string(path) + ": " + std::string(message));
}

void TableReader::record(std::string_view path) {
  if (sources_ != nullptr) {
    (*sources_)[std::string(path)] = file_;
  }
}

Result<bool> TableReader::get(const toml::table& t, std::string_view key, std::string_view path,
                              std::string& out) {
  const toml::node* n = t.get(key);
  if (n == nullptr) {
    return false;
  }
  const auto* s = n->as_string();
  if (s == nullptr) {
    return fail(type_error(*n, path, "a string"));
  }
  out = s->get();
  record(path);
  return true;
}

Result<bool> TableReader::get(const toml::table& t, std::string_view key, std::string_view path,
                              bool& out) {
  const toml::node* n = t.get(key);
  if (n == nullptr) {
    return false;
  }
  if (const auto* b = n->as_boolean()) {
    out = b->get();
  } else if (const auto* s = n->as_string()) {
    if (s->get() == "true") {
      out = true;
    } else if (s->get() == "false") {
      out = false;
    } else {
      return fail(value_error(*n, path, "expected true or false, got \"" + s->get() + "\""));
    }
  } else {
    return fail(type_error(*n, path, "a boolean"));
  }
  record(path);
  return true;
}

Result<bool> TableReader::get(const toml::table& t, std::string_view key, std::string_view path,
                              int64_t& out, int64_t min, int64_t max) {
  const toml::node* n = t.get(key);
  if (n == nullptr) {
    return false;
  }
  const auto* i = n->as_integer();
  if (i == nullptr) {
    return fail(type_error(*n, path, "an integer"));
  }
  if (i->get() < min || i->get() > max) {
    return fail(value_error(*n, path,
                            "value " + std::to_string(i->get()) + " is out of range [" +
                                std::to_string(min) + ", " + std::to_string(max) + "]"));
  }
  out = i->get();
  record(path);
  return true;
}

Result<bool> TableReader::get(const toml::table& t, std::string_view key, std::string_view path,
                              uint32_t& out) {
  int64_t v = 0;
  BERTH_TRY(bool found, get(t, key, path, v, 0, UINT32_MAX));
  if (found) {
    out = static_cast<uint32_t>(v);
  }
  return found;
}

Result<bool> TableReader::get(const toml::table& t, std::string_view key, std::string_view path,
                              uint16_t& out) {
  int64_t v = 0;
  BERTH_TRY(bool found, get(t, key, path, v, 0, UINT16_MAX));
  if (found) {
    out = static_cast<uint16_t>(v);
  }
  return found;
}

Result<bool> TableReader::get(const toml::table& t, std::string_view key, std::string_view path,
                              std::vector<std::string>& out) {
  const toml::node* n = t.get(key);
  if (n == nullptr) {
    return false;
  }
  const auto* arr = n->as_array();
  if (arr == nullptr) {
    return fail(type_error(*n, path, "an array of strings"));
  }
  std::vector<std::string> values;
  bool append = false;
  for (size_t i = 0; i < arr->size(); ++i) {
    const toml::node& el = *arr->get(i);
    if (const auto* s = el.as_string()) {
      values.push_back(s->get());
      continue;
    }
    // containers.conf(5): a trailing {append=true} appends to the inherited array.
    if (const auto* tab = el.as_table(); tab != nullptr && i + 1 == arr->size()) {
      const toml::node* a = tab->get("append");
      if (a != nullptr && a->as_boolean() != nullptr && tab->size() == 1) {
        append = a->as_boolean()->get();
        continue;
      }
      return fail(value_error(el, path,
                              "the only table allowed in a string array is "
                              "{append = true} as its last element"));
    }
    return fail(type_error(el, std::string(path) + "[" + std::to_string(i) + "]", "a string"));
  }
  if (append) {
    out.insert(out.end(), values.begin(), values.end());
  } else {
    out = std::move(values);
  }
  record(path);
  return true;
}

Result<bool> TableReader::get(const toml::table& t, std::string_view key, std::string_view path,
                              std::map<std::string, std::string>& out) {
  BERTH_TRY(const toml::table* tab, table(t, key, path));
  if (tab == nullptr) {
    return false;
  }
  for (auto&& [k, v] : *tab) {
    std::string sub = join_path(path, k.str());
    const auto* s = v.as_string();
    if (s == nullptr) {
      return fail(type_error(v, sub, "a string"));
    }
    out[std::string(k.str())] = s->get();
    record(sub);
  }
  return true;
}

Result<const toml::table*> TableReader::table(const toml::table& t, std::string_view key,
                                              std::string_view path) {
  const toml::node* n = t.get(key);
  if (n == nullptr) {
    return nullptr;
  }
  const auto* tab = n->as_table();
  if (tab == nullptr) {
    return fail(type_error(*n, path, "a table"));
  }
  return tab;
}

Result<const toml::array*> TableReader::table_array(const toml::table& t, std::string_view key,
                                                    std::string_view path) {
  const toml::node* n = t.get(key);
  if (n == nullptr) {
    return nullptr;
  }
  const auto* arr = n->as_array();
  if (arr == nullptr) {
    return fail(type_error(*n, path, "an array of tables"));
  }
  for (size_t i = 0; i < arr->size(); ++i) {
    if (!arr->get(i)->is_table()) {
      return fail(
          type_error(*arr->get(i), std::string(path) + "[" + std::to_string(i) + "]", "a table"));
    }
  }
  return arr;
}

void TableReader::note_unknown(const toml::table& t, std::string_view path,
                               std::initializer_list<std::string_view> known,
                               std::initializer_list<std::string_view> ignored) const {
  for (auto&& [k, v] : t) {
    std::string_view name = k.str();
    if (std::find(known.begin(), known.end(), name) != known.end()) {
      continue;
    }
    if (std::find(ignored.begin(), ignored.end(), name) != ignored.end()) {
      spdlog::debug("{}: key {} is not used by berth, ignored", position(k.source()),
                    join_path(path, name));
      continue;
    }
    spdlog::debug("{}: unknown key {}, ignored", position(k.source()), join_path(path, name));
  }
}

}  // namespace berth::config::detail
