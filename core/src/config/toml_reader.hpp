#pragma once
// Typed access to a parsed TOML document with errors that name the file, line, column and key:
// "/etc/containers/storage.conf:3:10: key storage.driver: expected a string, got an integer".
#include <toml++/toml.h>

#include <cstdint>
#include <filesystem>
#include <initializer_list>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "berth/sdk/result.hpp"

namespace berth::config::detail {

// Parses `content`; a syntax error becomes "FILE:LINE:COL: <toml++ description>".
Result<toml::table> parse_toml(const std::string& content, const std::string& file);
// The file's content, nullopt when it does not exist (the search goes on).
Result<std::optional<std::string>> read_if_exists(const std::filesystem::path& path);
// The regular files named *.conf in `dir`, sorted by name; empty when `dir` does not exist.
Result<std::vector<std::filesystem::path>> list_dropins(const std::filesystem::path& dir);

class TableReader {
 public:
  // `sources`, when given, records "key.path" -> file for every value read.
  TableReader(std::string file, std::map<std::string, std::string>* sources)
      : file_(std::move(file)), sources_(sources) {}

  const std::string& file() const { return file_; }

  // Each getter returns false when the key is absent (out is untouched), true when it was read.
  Result<bool> get(const toml::table& t, std::string_view key, std::string_view path,
                   std::string& out);
  // Booleans also accept the strings "true"/"false" (storage.conf writes them as strings).
  Result<bool> get(const toml::table& t, std::string_view key, std::string_view path, bool& out);
  Result<bool> get(const toml::table& t, std::string_view key, std::string_view path, int64_t& out,
                   int64_t min = INT64_MIN, int64_t max = INT64_MAX);
  Result<bool> get(const toml::table& t, std::string_view key, std::string_view path,
                   uint32_t& out);
  Result<bool> get(const toml::table& t, std::string_view key, std::string_view path,
                   uint16_t& out);
  // Replaces `out`, or appends when the array ends with the inline table {append = true}
  // (containers.conf(5) "APPENDING TO STRING ARRAYS").
  Result<bool> get(const toml::table& t, std::string_view key, std::string_view path,
                   std::vector<std::string>& out);
  // A table of strings; keys are merged into `out` (later files override single keys).
  Result<bool> get(const toml::table& t, std::string_view key, std::string_view path,
                   std::map<std::string, std::string>& out);
  // A sub-table; nullptr when absent, an error when the key holds something else.
  Result<const toml::table*> table(const toml::table& t, std::string_view key,
                                   std::string_view path);
  // An array of tables ([[registry]]); nullptr when absent.
  Result<const toml::array*> table_array(const toml::table& t, std::string_view key,
                                         std::string_view path);

  // Logs (debug) every key of `t` that is neither known nor deliberately ignored.
  void note_unknown(const toml::table& t, std::string_view path,
                    std::initializer_list<std::string_view> known,
                    std::initializer_list<std::string_view> ignored = {}) const;

  Error type_error(const toml::node& n, std::string_view path, std::string_view expected) const;
  Error value_error(const toml::node& n, std::string_view path, std::string_view message) const;
  Error value_error(const toml::source_region& where, std::string_view path,
                    std::string_view message) const;
  void record(std::string_view path);

 private:
  std::string position(const toml::source_region& where) const;

  std::string file_;
  std::map<std::string, std::string>* sources_;
};

std::string join_path(std::string_view prefix, std::string_view key);

}  // namespace berth::config::detail
