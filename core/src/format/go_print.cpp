// Go's fmt printing of JSON values: `%v` and Sprintf's verbs, flags, width and precision.
#include "go_print.hpp"

#include <fmt/format.h>

#include <charconv>
#include <cmath>
#include <cstdio>

#include "berth/format/template.hpp"

namespace berth::format {

using nlohmann::json;

namespace detail {

std::string go_float(double d) {
  if (std::isnan(d)) {
    return "NaN";
  }
  if (std::isinf(d)) {
    return d > 0 ? "+Inf" : "-Inf";
  }
  char buf[64];
  auto sci = std::to_chars(buf, buf + sizeof buf, d, std::chars_format::scientific);
  std::string s(buf, sci.ptr);
  size_t e = s.find('e');
  int exp = std::stoi(s.substr(e + 1));
  // Go's %v is strconv 'g' with the shortest precision: exponent form when exp < -4 || exp >= 21
  // would be JSON; fmt uses 6 as the precision for that decision.
  if (exp < -4 || exp >= 6) {
    return s;
  }
  auto fix = std::to_chars(buf, buf + sizeof buf, d, std::chars_format::fixed);
  return std::string(buf, fix.ptr);
}

std::string go_type_name(const json& v) {
  switch (v.type()) {
    case json::value_t::string:
      return "string";
    case json::value_t::number_integer:
      return "int";
    case json::value_t::number_unsigned:
      return "int";  // JSON has no unsigned type
    case json::value_t::number_float:
      return "float64";
    case json::value_t::boolean:
      return "bool";
    case json::value_t::array:
      return "[]interface {}";
    case json::value_t::object:
      return "map[string]interface {}";
    default:
      return "<nil>";
  }
}

size_t rune_count(std::string_view s) {
  size_t n = 0;
  for (unsigned char c : s) {
    if ((c & 0xC0) != 0x80) {
      ++n;
    }
  }
  return n;
}

std::string go_quote(std::string_view s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    switch (c) {
      case '\a':
        out += "\\a";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\f':
        out += "\\f";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\v':
        out += "\\v";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '"':
        out += "\\\"";
        break;
      default:
        if (c < 0x20 || c == 0x7f) {
          out += fmt::format("\\x{:02x}", c);
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  out += '"';
  return out;
}

}  // namespace detail

std::string go_sprint_value(const json& v) {
  switch (v.type()) {
    case json::value_t::string:
      return v.get_ref<const std::string&>();
    case json::value_t::number_integer:
      return std::to_string(v.get<int64_t>());
    case json::value_t::number_unsigned:
      return std::to_string(v.get<uint64_t>());
    case json::value_t::number_float:
      return detail::go_float(v.get<double>());
    case json::value_t::boolean:
      return v.get<bool>() ? "true" : "false";
    case json::value_t::array: {
      std::string out = "[";
      bool first = true;
      for (const auto& e : v) {
        if (!first) {
          out += ' ';
        }
        first = false;
        out += go_sprint_value(e);
      }
      return out + "]";
    }
    case json::value_t::object: {
      std::string out = "map[";
      bool first = true;
      for (const auto& [k, e] : v.items()) {
        if (!first) {
          out += ' ';
        }
        first = false;
        out += k;
        out += ':';
        out += go_sprint_value(e);
      }
      return out + "]";
    }
    default:
      return "<nil>";
  }
}

namespace {

void json_float(std::string& out, double d) {
  char buf[64];
  double a = std::fabs(d);
  if (a != 0 && (a < 1e-6 || a >= 1e21)) {
    auto r = std::to_chars(buf, buf + sizeof buf, d, std::chars_format::scientific);
    std::string s(buf, r.ptr);
    size_t n = s.size();
    if (n >= 4 && s[n - 4] == 'e' && s[n - 3] == '-' && s[n - 2] == '0') {
      s.erase(n - 2, 1);  // e-07 -> e-7, as Go
    }
    out += s;
    return;
  }
  auto r = std::to_chars(buf, buf + sizeof buf, d, std::chars_format::fixed);
  out.append(buf, r.ptr);
}

void json_string(std::string& out, const std::string& s, bool escape_html) {
  std::string q = json(s).dump(-1, ' ', false, json::error_handler_t::replace);
  if (!escape_html) {
    out += q;
    return;
  }
  for (char c : q) {
    if (c == '<') {
      out += "\\u003c";
    } else if (c == '>') {
      out += "\\u003e";
    } else if (c == '&') {
      out += "\\u0026";
    } else {
      out += c;
    }
  }
}

void go_json_to(std::string& out, const json& v, int indent, int depth, bool html) {
  auto newline = [&](int d) {
    if (indent >= 0) {
      out += '\n';
      out.append(static_cast<size_t>(indent * d), ' ');
    }
  };
  switch (v.type()) {
    case json::value_t::string:
      json_string(out, v.get_ref<const std::string&>(), html);
      return;
    case json::value_t::number_float:
      json_float(out, v.get<double>());
      return;
    case json::value_t::array: {
      if (v.empty()) {
        out += "[]";
        return;
      }
      out += '[';
      bool first = true;
      for (const auto& e : v) {
        if (!first) {
          out += ',';
        }
        first = false;
        newline(depth + 1);
        go_json_to(out, e, indent, depth + 1, html);
      }
      newline(depth);
      out += ']';
      return;
    }
    case json::value_t::object: {
      if (v.empty()) {
        out += "{}";
        return;
      }
      out += '{';
      bool first = true;
      for (auto it = v.begin(); it != v.end(); ++it) {
        if (!first) {
          out += ',';
        }
        first = false;
        newline(depth + 1);
        json_string(out, it.key(), html);
        out += indent >= 0 ? ": " : ":";
        go_json_to(out, it.value(), indent, depth + 1, html);
      }
      newline(depth);
      out += '}';
      return;
    }
    default:
      out += v.dump();
      return;
  }
}

struct Spec {
  bool minus = false;
  bool plus = false;
  bool sharp = false;
  bool space = false;
  bool zero = false;
  int width = -1;
  int prec = -1;
  char verb = 'v';
};

std::string pad(std::string s, const Spec& sp, bool numeric) {
  if (sp.width < 0) {
    return s;
  }
  size_t n = detail::rune_count(s);
  if (n >= static_cast<size_t>(sp.width)) {
    return s;
  }
  size_t fill = sp.width - n;
  if (sp.minus) {
    return s + std::string(fill, ' ');
  }
  if (sp.zero && numeric) {
    size_t at = (!s.empty() && (s[0] == '-' || s[0] == '+' || s[0] == ' ')) ? 1 : 0;
    s.insert(at, std::string(fill, '0'));
    return s;
  }
  return std::string(fill, ' ') + s;
}

std::string bad_verb(char verb, const json* v) {
  if (v == nullptr || v->is_null()) {
    return fmt::format("%!{}(<nil>)", verb);
  }
  return fmt::format("%!{}({}={})", verb, detail::go_type_name(*v), go_sprint_value(*v));
}

std::string fmt_int(const json& v, const Spec& sp) {
  bool neg = false;
  uint64_t mag = 0;
  if (v.is_number_unsigned()) {
    mag = v.get<uint64_t>();
  } else {
    int64_t i = v.get<int64_t>();
    neg = i < 0;
    mag = neg ? 0 - static_cast<uint64_t>(i) : static_cast<uint64_t>(i);
  }
  int base = 10;
  bool upper = false;
  std::string prefix;
  switch (sp.verb) {
    case 'x':
      base = 16;
      prefix = sp.sharp ? "0x" : "";
      break;
    case 'X':
      base = 16;
      upper = true;
      prefix = sp.sharp ? "0X" : "";
      break;
    case 'o':
      base = 8;
      prefix = sp.sharp ? "0" : "";
      break;
    case 'O':
      base = 8;
      prefix = "0o";
      break;
    case 'b':
      base = 2;
      break;
    default:
      break;
  }
  char buf[80];
  auto r = std::to_chars(buf, buf + sizeof buf, mag, base);
  std::string digits(buf, r.ptr);
  if (upper) {
    for (auto& c : digits) {
      c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    }
  }
  if (sp.prec >= 0 && digits.size() < static_cast<size_t>(sp.prec)) {
    digits.insert(0, sp.prec - digits.size(), '0');
  }
  std::string sign = neg ? "-" : sp.plus ? "+" : sp.space ? " " : "";
  return pad(sign + prefix + digits, sp, sp.prec < 0);
}

std::string fmt_float(double d, const Spec& sp) {
  std::string s;
  char verb = sp.verb;
  if (verb == 'v') {
    verb = 'g';
  }
  if ((verb == 'g' || verb == 'G') && sp.prec < 0) {
    s = detail::go_float(d);
    if (verb == 'G') {
      for (auto& c : s) {
        c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
      }
    }
  } else if (std::isinf(d) || std::isnan(d)) {
    s = detail::go_float(d);
  } else {
    int prec = sp.prec < 0 ? 6 : sp.prec;
    char fmt[16];
    std::snprintf(fmt, sizeof fmt, "%%.%d%c", prec, verb == 'F' ? 'f' : verb);
    char buf[512];
    std::snprintf(buf, sizeof buf, fmt, d);
    s = buf;
  }
  if (!s.empty() && s[0] != '-' && s[0] != '+') {
    if (sp.plus) {
      s.insert(0, "+");
    } else if (sp.space) {
      s.insert(0, " ");
    }
  }
  return pad(s, sp, true);
}

std::string truncate_runes(const std::string& s, int prec) {
  if (prec < 0) {
    return s;
  }
  size_t n = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    if ((static_cast<unsigned char>(s[i]) & 0xC0) != 0x80) {
      if (n == static_cast<size_t>(prec)) {
        return s.substr(0, i);
      }
      ++n;
    }
  }
  return s;
}

std::string fmt_one(const json* v, const Spec& sp);

std::string fmt_composite(const json& v, const Spec& sp) {
  // Go applies the verb to each element: %d of [1 2] is "[1 2]", %q gives ["a" "b"].
  Spec inner = sp;
  std::string out;
  if (v.is_array()) {
    out = "[";
    bool first = true;
    for (const auto& e : v) {
      if (!first) {
        out += ' ';
      }
      first = false;
      out += fmt_one(&e, inner);
    }
    return out + "]";
  }
  out = "map[";
  bool first = true;
  for (const auto& [k, e] : v.items()) {
    if (!first) {
      out += ' ';
    }
    first = false;
    json key = k;
    out += fmt_one(&key, inner);
    out += ':';
    out += fmt_one(&e, inner);
  }
  return out + "]";
}

std::string fmt_one(const json* v, const Spec& sp) {
  if (v == nullptr || v->is_null()) {
    if (sp.verb == 'v') {
      return pad("<nil>", sp, false);
    }
    return bad_verb(sp.verb, v);
  }
  if (v->is_array() || v->is_object()) {
    if (sp.verb == 'v' || sp.verb == 's' || sp.verb == 'd' || sp.verb == 'q' || sp.verb == 'x' ||
        sp.verb == 'X' || sp.verb == 't' || sp.verb == 'f') {
      return fmt_composite(*v, sp);
    }
    return bad_verb(sp.verb, v);
  }
  switch (sp.verb) {
    case 'v':
      if (v->is_string()) {
        return pad(truncate_runes(v->get<std::string>(), -1), sp, false);
      }
      if (v->is_boolean()) {
        return pad(go_sprint_value(*v), sp, false);
      }
      if (v->is_number_float()) {
        return fmt_float(v->get<double>(), sp);
      }
      {
        Spec d = sp;
        d.verb = 'd';
        return fmt_int(*v, d);
      }
    case 's':
      if (v->is_string()) {
        return pad(truncate_runes(v->get<std::string>(), sp.prec), sp, false);
      }
      return bad_verb('s', v);
    case 'q':
      if (v->is_string()) {
        return pad(detail::go_quote(truncate_runes(v->get<std::string>(), sp.prec)), sp, false);
      }
      if (v->is_number_integer()) {
        std::string ch;
        int64_t c = v->get<int64_t>();
        if (c >= 0x20 && c < 0x7f && c != '\'' && c != '\\') {
          ch = fmt::format("'{}'", static_cast<char>(c));
        } else {
          ch = fmt::format("'\\x{:02x}'", c);
        }
        return pad(ch, sp, false);
      }
      return bad_verb('q', v);
    case 't':
      if (v->is_boolean()) {
        return pad(go_sprint_value(*v), sp, false);
      }
      return bad_verb('t', v);
    case 'd':
    case 'o':
    case 'O':
    case 'b':
      if (v->is_number_integer()) {
        return fmt_int(*v, sp);
      }
      if (sp.verb == 'b' && v->is_number_float()) {
        return bad_verb('b', v);
      }
      return bad_verb(sp.verb, v);
    case 'x':
    case 'X':
      if (v->is_number_integer()) {
        return fmt_int(*v, sp);
      }
      if (v->is_string()) {
        std::string out;
        for (unsigned char c : v->get<std::string>()) {
          out += sp.verb == 'x' ? fmt::format("{:02x}", c) : fmt::format("{:02X}", c);
        }
        return pad(out, sp, false);
      }
      return bad_verb(sp.verb, v);
    case 'c':
      if (v->is_number_integer()) {
        std::string out;
        int64_t c = v->get<int64_t>();
        if (c < 0x80) {
          out += static_cast<char>(c);
        } else {
          out = go_sprint_value(*v);
        }
        return pad(out, sp, false);
      }
      return bad_verb('c', v);
    case 'e':
    case 'E':
    case 'f':
    case 'F':
    case 'g':
    case 'G':
      if (v->is_number_float()) {
        return fmt_float(v->get<double>(), sp);
      }
      return bad_verb(sp.verb, v);
    default:
      return bad_verb(sp.verb, v);
  }
}

}  // namespace

std::string go_json(const json& v, int indent, bool escape_html) {
  std::string out;
  go_json_to(out, v, indent, 0, escape_html);
  return out;
}

std::string go_sprintf(std::string_view f, const std::vector<const json*>& args) {
  std::string out;
  size_t argi = 0;
  for (size_t i = 0; i < f.size();) {
    char c = f[i];
    if (c != '%') {
      out += c;
      ++i;
      continue;
    }
    ++i;
    Spec sp;
    for (; i < f.size(); ++i) {
      char fl = f[i];
      if (fl == '-') {
        sp.minus = true;
      } else if (fl == '+') {
        sp.plus = true;
      } else if (fl == '#') {
        sp.sharp = true;
      } else if (fl == ' ') {
        sp.space = true;
      } else if (fl == '0') {
        sp.zero = !sp.minus;
      } else {
        break;
      }
    }
    auto read_num = [&](int& dst) {
      if (i < f.size() && f[i] == '*') {
        ++i;
        if (argi < args.size() && args[argi] != nullptr && args[argi]->is_number_integer()) {
          dst = static_cast<int>(args[argi]->get<int64_t>());
          if (dst < 0 && &dst == &sp.width) {
            sp.minus = true;
            dst = -dst;
          }
        } else {
          out += "%!(BADWIDTH)";
        }
        ++argi;
        return;
      }
      int n = -1;
      while (i < f.size() && f[i] >= '0' && f[i] <= '9') {
        n = (n < 0 ? 0 : n * 10) + (f[i] - '0');
        ++i;
      }
      dst = n;
    };
    read_num(sp.width);
    if (i < f.size() && f[i] == '.') {
      ++i;
      read_num(sp.prec);
      if (sp.prec < 0) {
        sp.prec = 0;
      }
    }
    if (i >= f.size()) {
      out += "%!(NOVERB)";
      break;
    }
    sp.verb = f[i++];
    if (sp.verb == '%') {
      out += '%';
      continue;
    }
    if (argi >= args.size()) {
      out += fmt::format("%!{}(MISSING)", sp.verb);
      continue;
    }
    out += fmt_one(args[argi++], sp);
  }
  if (argi < args.size()) {
    out += "%!(EXTRA ";
    for (size_t k = argi; k < args.size(); ++k) {
      if (k > argi) {
        out += ", ";
      }
      const json* a = args[k];
      if (a == nullptr || a->is_null()) {
        out += "<nil>";
      } else {
        out += detail::go_type_name(*a) + "=" + go_sprint_value(*a);
      }
    }
    out += ")";
  }
  return out;
}

}  // namespace berth::format
