// Template functions: Go's built-ins and the extras Podman and Docker add (json, join, lower,
// upper, title, split, truncate).
#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <functional>
#include <unordered_map>

#include "berth/format/template.hpp"
#include "go_print.hpp"
#include "template_ast.hpp"
#include "template_funcs.hpp"

namespace berth::format::detail {

using nlohmann::json;

namespace {

using Fn = std::function<Result<Val>(const std::vector<Val>&)>;

struct FuncDef {
  int min_args;
  int max_args;  // -1: variadic
  Fn fn;
};

std::unexpected<Error> bad(std::string msg) {
  return fail(Errc::InvalidArgument, std::move(msg));
}

std::string type_of(const Val& v) {
  return v.valid() ? go_type_name(v.j()) : "<nil>";
}

Result<std::string> want_string(const Val& v) {
  if (!v.valid() || !v.j().is_string()) {
    return bad(fmt::format("wrong type for value; expected string; got {}", type_of(v)));
  }
  return v.j().get<std::string>();
}

Result<int64_t> want_int(const Val& v) {
  if (v.valid() && v.j().is_number_integer()) {
    return v.j().get<int64_t>();
  }
  if (v.valid() && v.j().is_number_float()) {
    double d = v.j().get<double>();
    if (d == static_cast<double>(static_cast<int64_t>(d))) {
      return static_cast<int64_t>(d);
    }
  }
  return bad(fmt::format("wrong type for value; expected int; got {}", type_of(v)));
}

// Basic kinds of Go's comparison functions.
enum class Kind { Invalid, Bool, Number, String, Other };

Kind kind_of(const Val& v) {
  if (!v.valid() || v.j().is_null()) {
    return Kind::Invalid;
  }
  const json& j = v.j();
  if (j.is_boolean()) {
    return Kind::Bool;
  }
  if (j.is_number()) {
    return Kind::Number;
  }
  if (j.is_string()) {
    return Kind::String;
  }
  return Kind::Other;
}

// Numbers compare by value whatever their JSON representation (JSON has no int/float types).
int num_cmp(const json& a, const json& b) {
  if (a.is_number_integer() && b.is_number_integer()) {
    if (a.is_number_unsigned() || b.is_number_unsigned()) {
      bool an = !a.is_number_unsigned() && a.get<int64_t>() < 0;
      bool bn = !b.is_number_unsigned() && b.get<int64_t>() < 0;
      if (an != bn) {
        return an ? -1 : 1;
      }
      if (an) {
        int64_t x = a.get<int64_t>();
        int64_t y = b.get<int64_t>();
        return x < y ? -1 : x > y ? 1 : 0;
      }
      uint64_t x = a.get<uint64_t>();
      uint64_t y = b.get<uint64_t>();
      return x < y ? -1 : x > y ? 1 : 0;
    }
    int64_t x = a.get<int64_t>();
    int64_t y = b.get<int64_t>();
    return x < y ? -1 : x > y ? 1 : 0;
  }
  double x = a.get<double>();
  double y = b.get<double>();
  return x < y ? -1 : x > y ? 1 : 0;
}

Result<bool> eq2(const Val& a, const Val& b) {
  Kind ka = kind_of(a);
  Kind kb = kind_of(b);
  if (ka == Kind::Invalid || kb == Kind::Invalid) {
    return ka == kb;
  }
  if (ka != kb) {
    return bad("incompatible types for comparison");
  }
  switch (ka) {
    case Kind::Bool:
      return a.j().get<bool>() == b.j().get<bool>();
    case Kind::Number:
      return num_cmp(a.j(), b.j()) == 0;
    case Kind::String:
      return a.j().get_ref<const std::string&>() == b.j().get_ref<const std::string&>();
    default:
      return bad(fmt::format("non-comparable type {}: {}", go_sprint_value(a.j()), type_of(a)));
  }
}

Result<int> cmp2(const Val& a, const Val& b) {
  Kind ka = kind_of(a);
  Kind kb = kind_of(b);
  if (ka != Kind::Number && ka != Kind::String) {
    return bad("invalid type for comparison");
  }
  if (kb != Kind::Number && kb != Kind::String) {
    return bad("invalid type for comparison");
  }
  if (ka != kb) {
    return bad("incompatible types for comparison");
  }
  if (ka == Kind::Number) {
    return num_cmp(a.j(), b.j());
  }
  return a.j().get_ref<const std::string&>().compare(b.j().get_ref<const std::string&>());
}

std::string sprint_arg(const Val& v) {
  return v.valid() ? go_sprint_value(v.j()) : "<nil>";
}

Result<Val> f_not(const std::vector<Val>& a) {
  return Val::make(!truth(a[0]));
}

Result<Val> f_len(const std::vector<Val>& a) {
  if (!a[0].valid() || a[0].j().is_null()) {
    return bad("len of nil pointer");
  }
  const json& j = a[0].j();
  if (j.is_string()) {
    return Val::make(static_cast<int64_t>(j.get_ref<const std::string&>().size()));
  }
  if (j.is_array() || j.is_object()) {
    return Val::make(static_cast<int64_t>(j.size()));
  }
  return bad(fmt::format("len of type {}", go_type_name(j)));
}

Result<Val> f_index(const std::vector<Val>& a) {
  if (!a[0].valid() || a[0].j().is_null()) {
    return bad("index of untyped nil");
  }
  Val cur = a[0];
  for (size_t i = 1; i < a.size(); ++i) {
    if (!cur.valid() || cur.j().is_null()) {
      return bad("index of nil pointer");
    }
    const json& j = cur.j();
    const Val& idx = a[i];
    if (j.is_array() || j.is_string()) {
      if (!idx.valid() || !idx.j().is_number_integer()) {
        return bad(fmt::format("cannot index slice/array with type {}", type_of(idx)));
      }
      int64_t n = idx.j().get<int64_t>();
      int64_t size = j.is_array() ? static_cast<int64_t>(j.size())
                                  : static_cast<int64_t>(j.get_ref<const std::string&>().size());
      if (n < 0 || n >= size) {
        return bad(fmt::format("index out of range: {}", n));
      }
      if (j.is_string()) {
        cur = Val::make(
            static_cast<int64_t>(static_cast<unsigned char>(j.get_ref<const std::string&>()[n])));
      } else {
        cur = cur.child(j[static_cast<size_t>(n)]);
      }
      continue;
    }
    if (j.is_object()) {
      if (!idx.valid() || !idx.j().is_string()) {
        return bad(fmt::format("value has type {}; should be string", type_of(idx)));
      }
      auto it = j.find(idx.j().get_ref<const std::string&>());
      if (it == j.end()) {
        return Val();  // the zero value of interface{}: prints <no value>
      }
      cur = cur.child(*it);
      continue;
    }
    return bad(fmt::format("can't index item of type {}", go_type_name(j)));
  }
  return cur;
}

Result<Val> f_eq(const std::vector<Val>& a) {
  if (a.size() < 2) {
    return bad("missing argument for comparison");
  }
  for (size_t i = 1; i < a.size(); ++i) {
    BERTH_TRY(bool t, eq2(a[0], a[i]));
    if (t) {
      return Val::make(true);
    }
  }
  return Val::make(false);
}

Result<Val> f_ne(const std::vector<Val>& a) {
  BERTH_TRY(bool t, eq2(a[0], a[1]));
  return Val::make(!t);
}

Fn cmp_fn(std::function<bool(int)> pred) {
  return [pred](const std::vector<Val>& a) -> Result<Val> {
    BERTH_TRY(int c, cmp2(a[0], a[1]));
    return Val::make(pred(c));
  };
}

Result<Val> f_print(const std::vector<Val>& a) {
  // fmt.Sprint: a space between operands when neither is a string.
  std::string out;
  for (size_t i = 0; i < a.size(); ++i) {
    bool is_str = a[i].valid() && a[i].j().is_string();
    if (i > 0 && !is_str && !(a[i - 1].valid() && a[i - 1].j().is_string())) {
      out += ' ';
    }
    out += sprint_arg(a[i]);
  }
  return Val::make(std::move(out));
}

Result<Val> f_println(const std::vector<Val>& a) {
  std::string out;
  for (size_t i = 0; i < a.size(); ++i) {
    if (i > 0) {
      out += ' ';
    }
    out += sprint_arg(a[i]);
  }
  out += '\n';
  return Val::make(std::move(out));
}

Result<Val> f_printf(const std::vector<Val>& a) {
  BERTH_TRY(std::string f, want_string(a[0]));
  std::vector<const json*> args;
  for (size_t i = 1; i < a.size(); ++i) {
    args.push_back(a[i].ptr());
  }
  return Val::make(go_sprintf(f, args));
}

Result<Val> f_json(const std::vector<Val>& a) {
  if (!a[0].valid()) {
    return Val::make(std::string("null"));
  }
  return Val::make(go_json(a[0].j()));
}

Result<Val> f_join(const std::vector<Val>& a) {
  BERTH_TRY(std::string sep, want_string(a[1]));
  if (a[0].valid() && a[0].j().is_string()) {
    return a[0];  // a single string (e.g. a table header) joins to itself
  }
  if (!a[0].valid() || !a[0].j().is_array()) {
    return bad(fmt::format("wrong type for value; expected []string; got {}", type_of(a[0])));
  }
  std::string out;
  bool first = true;
  for (const auto& e : a[0].j()) {
    if (!first) {
      out += sep;
    }
    first = false;
    out += go_sprint_value(e);
  }
  return Val::make(std::move(out));
}

Result<Val> f_lower(const std::vector<Val>& a) {
  BERTH_TRY(std::string s, want_string(a[0]));
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return Val::make(std::move(s));
}

Result<Val> f_upper(const std::vector<Val>& a) {
  BERTH_TRY(std::string s, want_string(a[0]));
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
  return Val::make(std::move(s));
}

Result<Val> f_title(const std::vector<Val>& a) {
  // strings.Title: upper-case the first letter of each word; ASCII letters, digits, '_' and
  // non-ASCII bytes are word characters.
  BERTH_TRY(std::string s, want_string(a[0]));
  bool prev_sep = true;
  for (auto& ch : s) {
    auto c = static_cast<unsigned char>(ch);
    bool word = std::isalnum(c) != 0 || c == '_' || c >= 0x80;
    if (word && prev_sep) {
      ch = static_cast<char>(std::toupper(c));
    }
    prev_sep = !word;
  }
  return Val::make(std::move(s));
}

Result<Val> f_split(const std::vector<Val>& a) {
  BERTH_TRY(std::string s, want_string(a[0]));
  BERTH_TRY(std::string sep, want_string(a[1]));
  json out = json::array();
  if (sep.empty()) {
    for (size_t i = 0; i < s.size();) {
      size_t n = 1;
      while (i + n < s.size() && (static_cast<unsigned char>(s[i + n]) & 0xC0) == 0x80) {
        ++n;
      }
      out.push_back(s.substr(i, n));
      i += n;
    }
    return Val::make(std::move(out));
  }
  size_t start = 0;
  while (true) {
    size_t at = s.find(sep, start);
    if (at == std::string::npos) {
      out.push_back(s.substr(start));
      break;
    }
    out.push_back(s.substr(start, at - start));
    start = at + sep.size();
  }
  return Val::make(std::move(out));
}

Result<Val> f_truncate(const std::vector<Val>& a) {
  BERTH_TRY(std::string s, want_string(a[0]));
  BERTH_TRY(int64_t n, want_int(a[1]));
  if (n >= 0 && static_cast<size_t>(n) < s.size()) {
    s.resize(static_cast<size_t>(n));
  }
  return Val::make(std::move(s));
}

const std::unordered_map<std::string_view, FuncDef>& table() {
  static const std::unordered_map<std::string_view, FuncDef> kTable = {
      {"not", {1, 1, f_not}},
      {"len", {1, 1, f_len}},
      {"index", {1, -1, f_index}},
      {"eq", {1, -1, f_eq}},
      {"ne", {2, 2, f_ne}},
      {"lt", {2, 2, cmp_fn([](int c) { return c < 0; })}},
      {"le", {2, 2, cmp_fn([](int c) { return c <= 0; })}},
      {"gt", {2, 2, cmp_fn([](int c) { return c > 0; })}},
      {"ge", {2, 2, cmp_fn([](int c) { return c >= 0; })}},
      {"print", {0, -1, f_print}},
      {"println", {0, -1, f_println}},
      {"printf", {1, -1, f_printf}},
      {"json", {1, 1, f_json}},
      {"join", {2, 2, f_join}},
      {"lower", {1, 1, f_lower}},
      {"upper", {1, 1, f_upper}},
      {"title", {1, 1, f_title}},
      {"split", {2, 2, f_split}},
      {"truncate", {2, 2, f_truncate}},
  };
  return kTable;
}

}  // namespace

bool truth(const Val& v) {
  if (!v.valid()) {
    return false;
  }
  const json& j = v.j();
  switch (j.type()) {
    case json::value_t::boolean:
      return j.get<bool>();
    case json::value_t::number_integer:
      return j.get<int64_t>() != 0;
    case json::value_t::number_unsigned:
      return j.get<uint64_t>() != 0;
    case json::value_t::number_float:
      return j.get<double>() != 0;
    case json::value_t::string:
      return !j.get_ref<const std::string&>().empty();
    case json::value_t::array:
    case json::value_t::object:
      return !j.empty();
    default:
      return false;
  }
}

bool is_known_function(std::string_view name) {
  return name == "and" || name == "or" || table().contains(name);
}

Result<Val> call_function(std::string_view name, const std::vector<Val>& args) {
  auto it = table().find(name);
  if (it == table().end()) {
    return bad(fmt::format("function \"{}\" not defined", name));
  }
  const FuncDef& d = it->second;
  int n = static_cast<int>(args.size());
  if (n < d.min_args || (d.max_args >= 0 && n > d.max_args)) {
    if (d.max_args < 0) {
      return bad(
          fmt::format("wrong number of args for {}: want at least {} got {}", name, d.min_args, n));
    }
    return bad(fmt::format("wrong number of args for {}: want {} got {}", name, d.min_args, n));
  }
  auto r = d.fn(args);
  if (!r) {
    return fail(Errc::InvalidArgument,
                fmt::format("error calling {}: {}", name, r.error().message()));
  }
  return r;
}

}  // namespace berth::format::detail
