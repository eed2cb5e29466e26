// Lexer of Go text/template: text, {{ }} actions with trim markers, comments, literals.
#include <fmt/format.h>

#include <cctype>
#include <cstdint>

#include "template_ast.hpp"

namespace berth::format::detail {

std::string pos_str(Pos p) {
  return fmt::format("{}:{}", p.line, p.col);
}

namespace {

bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}
bool is_alnum(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '_' ||
         static_cast<unsigned char>(c) >= 0x80;
}

void append_utf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

class Lexer {
 public:
  explicit Lexer(std::string_view in) : in_(in) {}

  Result<std::vector<Token>> run() {
    while (i_ < in_.size()) {
      size_t open = in_.find("{{", i_);
      if (open == std::string_view::npos) {
        emit_text(in_.substr(i_), pos_);
        advance_to(in_.size());
        break;
      }
      // A left trim marker is "{{- " followed by a blank.
      bool trim_left =
          in_.substr(open).starts_with("{{-") && open + 3 < in_.size() && is_space(in_[open + 3]);
      std::string_view text = in_.substr(i_, open - i_);
      if (trim_left) {
        while (!text.empty() && is_space(text.back())) {
          text.remove_suffix(1);
        }
      }
      emit_text(text, pos_);
      advance_to(open);
      Pos action_pos = pos_;
      advance_to(open + (trim_left ? 3 : 2));
      // Comment: {{/* ... */}} with optional trim markers.
      size_t j = i_;
      if (trim_left) {
        while (j < in_.size() && is_space(in_[j])) {
          ++j;
        }
      }
      if (in_.substr(j).starts_with("/*")) {
        size_t end = in_.find("*/", j + 2);
        if (end == std::string_view::npos) {
          return err(action_pos, "unclosed comment");
        }
        size_t k = end + 2;
        bool trim_right = false;
        if (in_.substr(k).starts_with(" -}}") || in_.substr(k).starts_with("\t-}}") ||
            in_.substr(k).starts_with("\n-}}") || in_.substr(k).starts_with("\r-}}")) {
          trim_right = true;
          k += 4;
        } else if (in_.substr(k).starts_with("}}")) {
          k += 2;
        } else {
          return err(action_pos, "comment ends before closing delimiter");
        }
        advance_to(k);
        if (trim_right) {
          skip_leading_space();
        }
        continue;
      }
      toks_.push_back({Tok::LeftDelim, "{{", action_pos});
      BERTH_TRYV(lex_action(action_pos));
    }
    toks_.push_back({Tok::Eof, "", pos_});
    return std::move(toks_);
  }

 private:
  std::unexpected<Error> err(Pos p, const std::string& msg) {
    return fail(Errc::InvalidArgument, fmt::format("template: {}: {}", pos_str(p), msg));
  }

  void advance_to(size_t to) {
    for (; i_ < to; ++i_) {
      if (in_[i_] == '\n') {
        ++pos_.line;
        pos_.col = 1;
      } else {
        ++pos_.col;
      }
    }
  }

  void skip_leading_space() {
    size_t k = i_;
    while (k < in_.size() && is_space(in_[k])) {
      ++k;
    }
    advance_to(k);
  }

  void emit_text(std::string_view text, Pos p) {
    if (!text.empty()) {
      toks_.push_back({Tok::Text, std::string(text), p});
    }
  }

  // At i_: inside an action, after the left delimiter.
  Result<void> lex_action(Pos action_pos) {
    int paren_depth = 0;
    while (true) {
      if (i_ >= in_.size()) {
        return err(action_pos, "unclosed action");
      }
      // Right trim marker: blank, '-', "}}".
      if (is_space(in_[i_]) && in_.substr(i_ + 1).starts_with("-}}")) {
        Pos p = pos_;
        advance_to(i_ + 4);
        if (paren_depth > 0) {
          return err(p, "unclosed left paren");
        }
        toks_.push_back({Tok::RightDelim, "}}", p});
        skip_leading_space();
        return {};
      }
      if (in_.substr(i_).starts_with("}}")) {
        Pos p = pos_;
        advance_to(i_ + 2);
        if (paren_depth > 0) {
          return err(p, "unclosed left paren");
        }
        toks_.push_back({Tok::RightDelim, "}}", p});
        return {};
      }
      char c = in_[i_];
      Pos p = pos_;
      if (is_space(c)) {
        size_t k = i_;
        while (k < in_.size() && is_space(in_[k]) && !in_.substr(k + 1).starts_with("-}}")) {
          ++k;
        }
        advance_to(k);
        toks_.push_back({Tok::Space, " ", p});
        continue;
      }
      if (c == ':') {
        if (in_.substr(i_).starts_with(":=")) {
          advance_to(i_ + 2);
          toks_.push_back({Tok::Declare, ":=", p});
          continue;
        }
        return err(p, "expected :=");
      }
      if (c == '=') {
        advance_to(i_ + 1);
        toks_.push_back({Tok::Assign, "=", p});
        continue;
      }
      if (c == '|') {
        advance_to(i_ + 1);
        toks_.push_back({Tok::Pipe, "|", p});
        continue;
      }
      if (c == ',') {
        advance_to(i_ + 1);
        toks_.push_back({Tok::Comma, ",", p});
        continue;
      }
      if (c == '(') {
        advance_to(i_ + 1);
        ++paren_depth;
        toks_.push_back({Tok::LeftParen, "(", p});
        continue;
      }
      if (c == ')') {
        advance_to(i_ + 1);
        if (--paren_depth < 0) {
          return err(p, "unexpected right paren");
        }
        toks_.push_back({Tok::RightParen, ")", p});
        continue;
      }
      if (c == '"') {
        BERTH_TRYV(lex_quote(p));
        continue;
      }
      if (c == '`') {
        size_t end = in_.find('`', i_ + 1);
        if (end == std::string_view::npos) {
          return err(p, "unterminated raw quoted string");
        }
        std::string s(in_.substr(i_ + 1, end - i_ - 1));
        advance_to(end + 1);
        toks_.push_back({Tok::String, std::move(s), p});
        continue;
      }
      if (c == '\'') {
        BERTH_TRYV(lex_char(p));
        continue;
      }
      if (c == '$') {
        size_t k = i_ + 1;
        while (k < in_.size() && is_alnum(in_[k])) {
          ++k;
        }
        toks_.push_back({Tok::Variable, std::string(in_.substr(i_, k - i_)), p});
        advance_to(k);
        continue;
      }
      if (c == '.') {
        if (i_ + 1 < in_.size() && std::isdigit(static_cast<unsigned char>(in_[i_ + 1]))) {
          BERTH_TRYV(lex_number(p));
          continue;
        }
        size_t k = i_ + 1;
        while (k < in_.size() && is_alnum(in_[k])) {
          ++k;
        }
        if (k == i_ + 1) {
          advance_to(k);
          toks_.push_back({Tok::Dot, ".", p});
        } else {
          toks_.push_back({Tok::Field, std::string(in_.substr(i_ + 1, k - i_ - 1)), p});
          advance_to(k);
        }
        continue;
      }
      if (c == '+' || c == '-' || std::isdigit(static_cast<unsigned char>(c))) {
        BERTH_TRYV(lex_number(p));
        continue;
      }
      if (is_alnum(c)) {
        size_t k = i_;
        while (k < in_.size() && is_alnum(in_[k])) {
          ++k;
        }
        std::string word(in_.substr(i_, k - i_));
        advance_to(k);
        Tok kind = Tok::Identifier;
        if (word == "true" || word == "false") {
          kind = Tok::Bool;
        } else if (word == "nil") {
          kind = Tok::Nil;
        }
        toks_.push_back({kind, std::move(word), p});
        continue;
      }
      return err(p, fmt::format("unrecognized character in action: U+{:04X} '{}'",
                                static_cast<unsigned char>(c), c));
    }
  }

  Result<void> lex_number(Pos p) {
    size_t k = i_;
    if (in_[k] == '+' || in_[k] == '-') {
      ++k;
    }
    while (k < in_.size()) {
      char c = in_[k];
      if (is_alnum(c) || c == '.') {
        ++k;
      } else if ((c == '+' || c == '-') && k > i_ &&
                 (in_[k - 1] == 'e' || in_[k - 1] == 'E' || in_[k - 1] == 'p' ||
                  in_[k - 1] == 'P') &&
                 !(in_.substr(i_, 2) == "0x" || in_.substr(i_, 2) == "0X")) {
        ++k;
      } else {
        break;
      }
    }
    std::string lit(in_.substr(i_, k - i_));
    if (lit == "+" || lit == "-") {
      return err(p, fmt::format("bad number syntax: \"{}\"", lit));
    }
    advance_to(k);
    toks_.push_back({Tok::Number, std::move(lit), p});
    return {};
  }

  // Reads one escape sequence after '\' at in_[k]; returns the index after it.
  Result<size_t> read_escape(size_t k, std::string& out, Pos p, char quote) {
    if (k >= in_.size()) {
      return err(p, "unterminated quoted string");
    }
    char e = in_[k];
    switch (e) {
      case 'a':
        out += '\a';
        return k + 1;
      case 'b':
        out += '\b';
        return k + 1;
      case 'f':
        out += '\f';
        return k + 1;
      case 'n':
        out += '\n';
        return k + 1;
      case 'r':
        out += '\r';
        return k + 1;
      case 't':
        out += '\t';
        return k + 1;
      case 'v':
        out += '\v';
        return k + 1;
      case '\\':
        out += '\\';
        return k + 1;
      default:
        break;
    }
    if (e == quote) {
      out += e;
      return k + 1;
    }
    int digits = 0;
    int base = 16;
    if (e == 'x') {
      digits = 2;
    } else if (e == 'u') {
      digits = 4;
    } else if (e == 'U') {
      digits = 8;
    } else if (e >= '0' && e <= '7') {
      digits = 3;
      base = 8;
      --k;  // the first octal digit is part of the value
    } else {
      return err(p, fmt::format("invalid syntax in quoted string: unknown escape \\{}", e));
    }
    uint32_t v = 0;
    for (int d = 0; d < digits; ++d) {
      size_t at = k + 1 + d;
      if (at >= in_.size()) {
        return err(p, "invalid syntax in quoted string");
      }
      int dv = 0;
      char h = in_[at];
      if (h >= '0' && h <= '9') {
        dv = h - '0';
      } else if (base == 16 && h >= 'a' && h <= 'f') {
        dv = h - 'a' + 10;
      } else if (base == 16 && h >= 'A' && h <= 'F') {
        dv = h - 'A' + 10;
      } else {
        return err(p, "invalid syntax in quoted string");
      }
      if (dv >= base) {
        return err(p, "invalid syntax in quoted string");
      }
      v = v * base + dv;
    }
    if (e == 'x' || base == 8) {
      out += static_cast<char>(v);
    } else {
      append_utf8(out, v);
    }
    return k + 1 + digits;
  }

  Result<void> lex_quote(Pos p) {
    std::string s;
    size_t k = i_ + 1;
    while (true) {
      if (k >= in_.size() || in_[k] == '\n') {
        return err(p, "unterminated quoted string");
      }
      char c = in_[k];
      if (c == '"') {
        break;
      }
      if (c == '\\') {
        BERTH_TRY(k, read_escape(k + 1, s, p, '"'));
        continue;
      }
      s += c;
      ++k;
    }
    advance_to(k + 1);
    toks_.push_back({Tok::String, std::move(s), p});
    return {};
  }

  Result<void> lex_char(Pos p) {
    std::string s;
    size_t k = i_ + 1;
    bool escaped = k < in_.size() && in_[k] == '\\';
    if (escaped) {
      BERTH_TRY(k, read_escape(k + 1, s, p, '\''));
    } else {
      while (k < in_.size() && in_[k] != '\'' && in_[k] != '\n') {
        s += in_[k++];
      }
    }
    if (k >= in_.size() || in_[k] != '\'' || s.empty()) {
      return err(p, "unterminated character constant");
    }
    // Decode one UTF-8 code point; an escaped single byte ('\xff') is its own value.
    uint32_t cp = static_cast<unsigned char>(s[0]);
    size_t n = 1;
    if (!(escaped && s.size() == 1)) {
      if (cp >= 0xF0) {
        cp &= 0x07;
        n = 4;
      } else if (cp >= 0xE0) {
        cp &= 0x0F;
        n = 3;
      } else if (cp >= 0xC0) {
        cp &= 0x1F;
        n = 2;
      }
      if (s.size() != n) {
        return err(p, "malformed character constant");
      }
      for (size_t q = 1; q < n; ++q) {
        cp = (cp << 6) | (static_cast<unsigned char>(s[q]) & 0x3F);
      }
    }
    advance_to(k + 1);
    toks_.push_back({Tok::Char, std::to_string(cp), p});
    return {};
  }

  std::string_view in_;
  size_t i_ = 0;
  Pos pos_;
  std::vector<Token> toks_;
};

}  // namespace

Result<std::vector<Token>> lex(std::string_view input) {
  return Lexer(input).run();
}

}  // namespace berth::format::detail
