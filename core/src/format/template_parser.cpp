// Parser of Go text/template: tokens -> syntax tree (actions, pipelines, if/range/with).
#include <fmt/format.h>

#include <charconv>

#include "template_ast.hpp"

namespace berth::format::detail {

namespace {

enum class Stop { Eof, End, Else, ElseIf, ElseWith };

std::string describe(const Token& t) {
  switch (t.kind) {
    case Tok::Eof:
      return "EOF";
    case Tok::RightDelim:
      return "\"}}\"";
    case Tok::Space:
      return "space";
    case Tok::String:
      return fmt::format("quoted string \"{}\"", t.text);
    case Tok::Field:
      return fmt::format("field .{}", t.text);
    default:
      return fmt::format("\"{}\"", t.text);
  }
}

bool is_keyword(const std::string& w) {
  return w == "if" || w == "else" || w == "end" || w == "range" || w == "with" || w == "break" ||
         w == "continue" || w == "define" || w == "template" || w == "block";
}

Result<nlohmann::json> parse_number(const Token& t) {
  std::string s;
  for (char c : t.text) {
    if (c != '_') {
      s += c;
    }
  }
  auto bad = [&] {
    return fail(Errc::InvalidArgument,
                fmt::format("template: {}: bad number syntax: \"{}\"", pos_str(t.pos), t.text));
  };
  bool neg = false;
  std::string_view v = s;
  if (!v.empty() && (v[0] == '+' || v[0] == '-')) {
    neg = v[0] == '-';
    v.remove_prefix(1);
  }
  int base = 10;
  auto has_prefix = [&](char lo) {
    return v.size() > 2 && v[0] == '0' && (v[1] == lo || v[1] == lo - 32);
  };
  if (has_prefix('x')) {
    base = 16;
    v.remove_prefix(2);
  } else if (has_prefix('o')) {
    base = 8;
    v.remove_prefix(2);
  } else if (has_prefix('b')) {
    base = 2;
    v.remove_prefix(2);
  } else if (v.size() > 1 && v[0] == '0' &&
             v.find_first_not_of("01234567") == std::string_view::npos) {
    base = 8;
    v.remove_prefix(1);
  }
  uint64_t u = 0;
  auto [ptr, ec] = std::from_chars(v.data(), v.data() + v.size(), u, base);
  if (ec == std::errc() && ptr == v.data() + v.size() && !v.empty()) {
    if (neg) {
      if (u > static_cast<uint64_t>(INT64_MAX) + 1) {
        return bad();
      }
      return nlohmann::json(static_cast<int64_t>(0 - u));
    }
    if (u <= static_cast<uint64_t>(INT64_MAX)) {
      return nlohmann::json(static_cast<int64_t>(u));
    }
    return nlohmann::json(u);
  }
  if (base == 10) {
    double d = 0;
    auto [p2, ec2] = std::from_chars(v.data(), v.data() + v.size(), d);
    if (ec2 == std::errc() && p2 == v.data() + v.size()) {
      return nlohmann::json(neg ? -d : d);
    }
  }
  return bad();
}

class Parser {
 public:
  explicit Parser(std::vector<Token> toks) : toks_(std::move(toks)) {}

  Result<std::shared_ptr<Tree>> run() {
    auto tree = std::make_shared<Tree>();
    BERTH_TRY(Stop s, parse_list(tree->root));
    if (s != Stop::Eof) {
      return err(last_pos_, fmt::format("unexpected {{{{{}}}}}", s == Stop::End ? "end" : "else"));
    }
    return tree;
  }

 private:
  std::unexpected<Error> err(Pos p, const std::string& msg) {
    return fail(Errc::InvalidArgument, fmt::format("template: {}: {}", pos_str(p), msg));
  }

  const Token& peek() const { return toks_[i_]; }
  const Token& next() {
    const Token& t = toks_[i_];
    if (i_ + 1 < toks_.size()) {
      ++i_;
    }
    return t;
  }
  void skip_space() {
    while (peek().kind == Tok::Space) {
      next();
    }
  }
  const Token& next_non_space() {
    skip_space();
    return next();
  }

  Result<void> expect_right_delim(const std::string& context) {
    const Token& t = next_non_space();
    if (t.kind != Tok::RightDelim) {
      return err(t.pos, fmt::format("unexpected {} in {}", describe(t), context));
    }
    return {};
  }

  // Parses nodes until {{end}}, {{else}} or EOF.
  Result<Stop> parse_list(NodeList& out) {
    while (true) {
      const Token& t = next();
      if (t.kind == Tok::Eof) {
        return Stop::Eof;
      }
      if (t.kind == Tok::Text) {
        Node n;
        n.kind = Node::Kind::Text;
        n.pos = t.pos;
        n.text = t.text;
        out.push_back(std::move(n));
        continue;
      }
      // LeftDelim
      Pos action_pos = t.pos;
      last_pos_ = action_pos;
      skip_space();
      const Token& k = peek();
      if (k.kind == Tok::Identifier && is_keyword(k.text)) {
        std::string kw = k.text;
        next();
        if (kw == "end") {
          BERTH_TRYV(expect_right_delim("end"));
          return Stop::End;
        }
        if (kw == "else") {
          skip_space();
          const Token& after = peek();
          if (after.kind == Tok::Identifier && after.text == "if") {
            next();
            return Stop::ElseIf;
          }
          if (after.kind == Tok::Identifier && after.text == "with") {
            next();
            return Stop::ElseWith;
          }
          BERTH_TRYV(expect_right_delim("else"));
          return Stop::Else;
        }
        if (kw == "if" || kw == "range" || kw == "with") {
          BERTH_TRY(Node n, parse_control(kw, action_pos));
          out.push_back(std::move(n));
          continue;
        }
        if (kw == "break" || kw == "continue") {
          if (range_depth_ == 0) {
            return err(action_pos, fmt::format("{{{{{}}}}} outside {{{{range}}}}", kw));
          }
          BERTH_TRYV(expect_right_delim(kw));
          Node n;
          n.kind = kw == "break" ? Node::Kind::Break : Node::Kind::Continue;
          n.pos = action_pos;
          out.push_back(std::move(n));
          continue;
        }
        return err(action_pos, fmt::format("{{{{{}}}}} is not supported: --format templates cannot "
                                           "define or call named templates",
                                           kw));
      }
      BERTH_TRY(auto pipe, parse_pipeline("command", Tok::RightDelim, false));
      Node n;
      n.kind = Node::Kind::Action;
      n.pos = action_pos;
      n.pipe = std::move(pipe);
      out.push_back(std::move(n));
    }
  }

  Result<Node> parse_control(const std::string& kw, Pos pos) {
    Node n;
    n.kind = kw == "if" ? Node::Kind::If : kw == "range" ? Node::Kind::Range : Node::Kind::With;
    n.pos = pos;
    BERTH_TRY(n.pipe, parse_pipeline(kw, Tok::RightDelim, kw == "range"));
    n.list = std::make_shared<NodeList>();
    if (kw == "range") {
      ++range_depth_;
    }
    auto body = parse_list(*n.list);
    if (kw == "range") {
      --range_depth_;
    }
    if (!body) {
      return std::unexpected(body.error());
    }
    Stop s = *body;
    if (s == Stop::Eof) {
      return err(pos, fmt::format("unexpected EOF: {{{{{}}}}} has no matching {{{{end}}}}", kw));
    }
    if (s == Stop::ElseIf && kw != "if") {
      return err(last_pos_, fmt::format("unexpected {{{{else if}}}} in {{{{{}}}}}", kw));
    }
    if (s == Stop::ElseWith && kw != "with") {
      return err(last_pos_, fmt::format("unexpected {{{{else with}}}} in {{{{{}}}}}", kw));
    }
    if (s == Stop::ElseIf || s == Stop::ElseWith) {
      // "{{else if x}}...{{end}}" is "{{else}}{{if x}}...{{end}}{{end}}" sharing one end.
      n.else_list = std::make_shared<NodeList>();
      BERTH_TRY(Node nested, parse_control(kw, last_pos_));
      n.else_list->push_back(std::move(nested));
    } else if (s == Stop::Else) {
      n.else_list = std::make_shared<NodeList>();
      BERTH_TRY(Stop s2, parse_list(*n.else_list));
      if (s2 != Stop::End) {
        return err(pos,
                   s2 == Stop::Eof
                       ? fmt::format("unexpected EOF: {{{{{}}}}} has no matching {{{{end}}}}", kw)
                       : fmt::format("expected {{{{end}}}}; found {{{{else}}}} in {{{{{}}}}}", kw));
      }
    }
    return n;
  }

  // Parses "[decl :=] cmd | cmd ..." up to `end` (right delimiter or right paren).
  Result<std::shared_ptr<Pipeline>> parse_pipeline(const std::string& context, Tok end,
                                                   bool allow_two_vars) {
    auto pipe = std::make_shared<Pipeline>();
    skip_space();
    pipe->pos = peek().pos;
    // Declarations: $x := / $x = / $i, $e :=
    if (peek().kind == Tok::Variable) {
      size_t save = i_;
      std::string v1 = next().text;
      skip_space();
      if (peek().kind == Tok::Declare || peek().kind == Tok::Assign) {
        pipe->is_assign = next().kind == Tok::Assign;
        pipe->decl.push_back(v1);
      } else if (peek().kind == Tok::Comma && allow_two_vars) {
        next();
        const Token& v2 = next_non_space();
        if (v2.kind != Tok::Variable) {
          return err(v2.pos,
                     fmt::format("range can only initialize variables, found {}", describe(v2)));
        }
        pipe->decl.push_back(v1);
        pipe->decl.push_back(v2.text);
        const Token& op = next_non_space();
        if (op.kind != Tok::Declare && op.kind != Tok::Assign) {
          return err(op.pos,
                     fmt::format("expected := or = after range variables, found {}", describe(op)));
        }
        pipe->is_assign = op.kind == Tok::Assign;
      } else if (peek().kind == Tok::Comma) {
        return err(peek().pos, fmt::format("too many declarations in {}", context));
      } else {
        i_ = save;
      }
    }
    if (!pipe->decl.empty()) {
      for (const auto& v : pipe->decl) {
        if (pipe->is_assign) {
          if (!declared(v)) {
            return err(pipe->pos, fmt::format("undefined variable \"{}\"", v));
          }
        } else {
          vars_.push_back(v);
        }
      }
    }
    while (true) {
      skip_space();
      const Token& t = peek();
      if (t.kind == end) {
        next();
        if (pipe->cmds.empty()) {
          return err(t.pos, fmt::format("missing value for {}", context));
        }
        return pipe;
      }
      if (t.kind == Tok::Eof) {
        return err(t.pos, "unclosed action");
      }
      BERTH_TRY(Command cmd, parse_command(end));
      pipe->cmds.push_back(std::move(cmd));
      skip_space();
      if (peek().kind == Tok::Pipe) {
        Pos pp = next().pos;
        skip_space();
        if (peek().kind == end) {
          return err(pp, "missing command after |");
        }
      } else if (peek().kind != end) {
        return err(peek().pos, fmt::format("unexpected {} in {}", describe(peek()), context));
      }
    }
  }

  bool declared(const std::string& v) const {
    if (v == "$") {
      return true;
    }
    for (const auto& d : vars_) {
      if (d == v) {
        return true;
      }
    }
    return false;
  }

  Result<Command> parse_command(Tok end) {
    Command cmd;
    cmd.pos = peek().pos;
    while (true) {
      BERTH_TRY(Arg a, parse_operand());
      cmd.args.push_back(std::move(a));
      const Token& t = peek();
      if (t.kind == Tok::Space) {
        skip_space();
        if (peek().kind == end || peek().kind == Tok::Pipe) {
          break;
        }
        continue;
      }
      if (t.kind == end || t.kind == Tok::Pipe) {
        break;
      }
      return err(t.pos, fmt::format("unexpected {} in operand", describe(t)));
    }
    if (cmd.args.size() > 1 || cmd.args[0].kind == Arg::Kind::Function) {
      if (cmd.args[0].kind != Arg::Kind::Function) {
        const Arg& a = cmd.args[0];
        return err(a.pos, fmt::format("can't give argument to non-function {}", a.text));
      }
    }
    if (cmd.args.size() == 1 && cmd.args[0].kind == Arg::Kind::Nil) {
      return err(cmd.pos, "nil is not a command");
    }
    return cmd;
  }

  Result<Arg> parse_operand() {
    BERTH_TRY(Arg a, parse_term());
    if (peek().kind == Tok::Field) {
      if (a.kind == Arg::Kind::Pipe) {
        a.kind = Arg::Kind::Chain;
      } else if (a.kind != Arg::Kind::Field && a.kind != Arg::Kind::Variable &&
                 a.kind != Arg::Kind::Chain) {
        return err(peek().pos, fmt::format("unexpected . after term {}", a.text));
      }
      while (peek().kind == Tok::Field) {
        const Token& f = next();
        a.fields.push_back(f.text);
        a.text += "." + f.text;
      }
    }
    return a;
  }

  Result<Arg> parse_term() {
    const Token& t = next();
    Arg a;
    a.pos = t.pos;
    a.text = t.text;
    switch (t.kind) {
      case Tok::Identifier:
        if (is_keyword(t.text)) {
          return err(t.pos, fmt::format("unexpected keyword {} in operand", t.text));
        }
        if (!is_known_function(t.text)) {
          return err(t.pos, fmt::format("function \"{}\" not defined", t.text));
        }
        a.kind = Arg::Kind::Function;
        a.name = t.text;
        return a;
      case Tok::Dot:
        a.kind = Arg::Kind::Dot;
        return a;
      case Tok::Nil:
        a.kind = Arg::Kind::Nil;
        return a;
      case Tok::Variable:
        if (!declared(t.text)) {
          return err(t.pos, fmt::format("undefined variable \"{}\"", t.text));
        }
        a.kind = Arg::Kind::Variable;
        a.name = t.text;
        return a;
      case Tok::Field:
        a.kind = Arg::Kind::Field;
        a.fields.push_back(t.text);
        a.text = "." + t.text;
        return a;
      case Tok::Bool:
        a.kind = Arg::Kind::Bool;
        a.literal = t.text == "true";
        return a;
      case Tok::Number: {
        a.kind = Arg::Kind::Number;
        BERTH_TRY(a.literal, parse_number(t));
        return a;
      }
      case Tok::Char:
        a.kind = Arg::Kind::Number;
        a.literal = static_cast<int64_t>(std::stoll(t.text));
        return a;
      case Tok::String:
        a.kind = Arg::Kind::String;
        a.literal = t.text;
        a.text = nlohmann::json(t.text).dump();
        return a;
      case Tok::LeftParen: {
        a.kind = Arg::Kind::Pipe;
        BERTH_TRY(a.pipe, parse_pipeline("parenthesized pipeline", Tok::RightParen, false));
        a.text = "(...)";
        return a;
      }
      default:
        return err(t.pos, fmt::format("unexpected {} in operand", describe(t)));
    }
  }

  std::vector<Token> toks_;
  size_t i_ = 0;
  int range_depth_ = 0;
  Pos last_pos_;
  std::vector<std::string> vars_;  // declared variable names (Go checks at parse time)
};

}  // namespace

Result<std::shared_ptr<Tree>> parse_tree(std::string_view text) {
  BERTH_TRY(auto toks, lex(text));
  return Parser(std::move(toks)).run();
}

}  // namespace berth::format::detail
