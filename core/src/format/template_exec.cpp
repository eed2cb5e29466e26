// Executor of Go text/template over nlohmann::json, following Go's text/template semantics.
#include <fmt/format.h>

#include <cctype>

#include "berth/format/template.hpp"
#include "go_print.hpp"
#include "template_ast.hpp"
#include "template_funcs.hpp"

namespace berth::format {

using nlohmann::json;

namespace detail {
namespace {

enum class Flow { Normal, Break, Continue };

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) {
    return false;
  }
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(a[i])) !=
        std::tolower(static_cast<unsigned char>(b[i]))) {
      return false;
    }
  }
  return true;
}

std::string command_text(const Command& c) {
  std::string s;
  for (const auto& a : c.args) {
    if (!s.empty()) {
      s += ' ';
    }
    s += a.text;
  }
  return s;
}

class Exec {
 public:
  Exec(std::string& out, const json& root) : out_(out) { vars_.emplace_back("$", Val::ref(root)); }

  Result<Flow> walk(const Val& dot, const NodeList& list) {
    for (const Node& n : list) {
      BERTH_TRY(Flow f, walk_node(dot, n));
      if (f != Flow::Normal) {
        return f;
      }
    }
    return Flow::Normal;
  }

 private:
  std::unexpected<Error> err(Pos p, std::string_view at, std::string_view msg) {
    return fail(Errc::InvalidArgument,
                fmt::format("template: {}: executing at <{}>: {}", pos_str(p), at, msg));
  }

  Result<Flow> walk_node(const Val& dot, const Node& n) {
    switch (n.kind) {
      case Node::Kind::Text:
        out_ += n.text;
        return Flow::Normal;
      case Node::Kind::Action: {
        BERTH_TRY(Val v, eval_pipeline(dot, *n.pipe));
        if (n.pipe->decl.empty()) {
          print(v);
        }
        return Flow::Normal;
      }
      case Node::Kind::If:
      case Node::Kind::With: {
        size_t mark = vars_.size();
        BERTH_TRY(Val v, eval_pipeline(dot, *n.pipe));
        Result<Flow> r = Flow::Normal;
        if (truth(v)) {
          r = walk(n.kind == Node::Kind::With ? v : dot, *n.list);
        } else if (n.else_list) {
          r = walk(dot, *n.else_list);
        }
        vars_.resize(mark);
        return r;
      }
      case Node::Kind::Range:
        return walk_range(dot, n);
      case Node::Kind::Break:
        return Flow::Break;
      case Node::Kind::Continue:
        return Flow::Continue;
    }
    return Flow::Normal;
  }

  Result<Flow> walk_range(const Val& dot, const Node& n) {
    size_t mark = vars_.size();
    BERTH_TRY(Val v, eval_pipeline_raw(dot, *n.pipe));
    const auto& decl = n.pipe->decl;
    auto one = [&](Val key, Val elem) -> Result<Flow> {
      if (decl.size() == 1) {
        set_or_push(decl[0], elem, n.pipe->is_assign);
      } else if (decl.size() == 2) {
        set_or_push(decl[0], key, n.pipe->is_assign);
        set_or_push(decl[1], elem, n.pipe->is_assign);
      }
      auto r = walk(elem, *n.list);
      vars_.resize(mark);
      return r;
    };
    bool any = false;
    if (v.valid() && !v.j().is_null()) {
      const json& j = v.j();
      if (j.is_array()) {
        for (size_t i = 0; i < j.size(); ++i) {
          any = true;
          BERTH_TRY(Flow f, one(Val::make(static_cast<int64_t>(i)), v.child(j[i])));
          if (f == Flow::Break) {
            break;
          }
        }
      } else if (j.is_object()) {
        for (auto it = j.begin(); it != j.end(); ++it) {
          any = true;
          BERTH_TRY(Flow f, one(Val::make(it.key()), v.child(it.value())));
          if (f == Flow::Break) {
            break;
          }
        }
      } else if (j.is_number_integer()) {
        if (decl.size() > 1) {
          return err(n.pos, "range", "can't use two variables ranging over an integer");
        }
        int64_t count = j.get<int64_t>();
        for (int64_t i = 0; i < count; ++i) {
          any = true;
          BERTH_TRY(Flow f, one(Val(), Val::make(i)));
          if (f == Flow::Break) {
            break;
          }
        }
      } else {
        return err(n.pos, "range", fmt::format("range can't iterate over {}", go_sprint_value(j)));
      }
    }
    if (!any && n.else_list) {
      auto r = walk(dot, *n.else_list);
      vars_.resize(mark);
      if (!r) {
        return r;
      }
    }
    vars_.resize(mark);
    return Flow::Normal;
  }

  void print(const Val& v) {
    // Go unwraps interface values before printing: a nil or missing value prints "<no value>".
    if (!v.valid() || v.j().is_null()) {
      out_ += "<no value>";
      return;
    }
    const json& j = v.j();
    if (j.is_string()) {
      out_ += j.get_ref<const std::string&>();
    } else {
      out_ += go_sprint_value(j);
    }
  }

  void set_or_push(const std::string& name, Val v, bool assign) {
    if (assign) {
      for (auto it = vars_.rbegin(); it != vars_.rend(); ++it) {
        if (it->first == name) {
          it->second = std::move(v);
          return;
        }
      }
    }
    vars_.emplace_back(name, std::move(v));
  }

  // The pipeline's value, without declaring its variables (range assigns them per element).
  Result<Val> eval_pipeline_raw(const Val& dot, const Pipeline& p) {
    Val value;
    bool has_final = false;
    for (const Command& c : p.cmds) {
      BERTH_TRY(value, eval_command(dot, c, value, has_final));
      has_final = true;
    }
    return value;
  }

  Result<Val> eval_pipeline(const Val& dot, const Pipeline& p) {
    BERTH_TRY(Val value, eval_pipeline_raw(dot, p));
    for (const auto& name : p.decl) {
      set_or_push(name, value, p.is_assign);
    }
    return value;
  }

  Result<Val> lookup_var(Pos pos, const std::string& name) {
    for (auto it = vars_.rbegin(); it != vars_.rend(); ++it) {
      if (it->first == name) {
        return it->second;
      }
    }
    return err(pos, name, fmt::format("undefined variable: {}", name));
  }

  Result<Val> eval_fields(Pos pos, const std::string& text, Val v,
                          const std::vector<std::string>& fields) {
    for (const auto& f : fields) {
      if (!v.valid()) {
        return Val();  // a missing value's fields are missing too
      }
      const json& j = v.j();
      if (j.is_null()) {
        return err(pos, text, fmt::format("nil pointer evaluating interface {{}}.{}", f));
      }
      if (!j.is_object()) {
        return err(pos, text,
                   fmt::format("can't evaluate field {} in type {}", f, go_type_name(j)));
      }
      auto it = j.find(f);
      if (it == j.end()) {
        // Podman's JSON keys are camelCase ("graphDriverName") where Go fields are not.
        for (auto k = j.begin(); k != j.end(); ++k) {
          if (iequals(k.key(), f)) {
            it = k;
            break;
          }
        }
      }
      if (it == j.end()) {
        v = Val();
      } else {
        v = v.child(*it);
      }
    }
    return v;
  }

  Result<Val> eval_arg(const Val& dot, const Arg& a) {
    switch (a.kind) {
      case Arg::Kind::Field:
        return eval_fields(a.pos, a.text, dot, a.fields);
      case Arg::Kind::Variable: {
        BERTH_TRY(Val v, lookup_var(a.pos, a.name));
        return eval_fields(a.pos, a.text, v, a.fields);
      }
      case Arg::Kind::Dot:
        return dot;
      case Arg::Kind::Nil:
        return Val::make(nullptr);
      case Arg::Kind::Bool:
      case Arg::Kind::Number:
      case Arg::Kind::String:
        return Val::ref(a.literal);
      case Arg::Kind::Pipe: {
        size_t mark = vars_.size();
        auto r = eval_pipeline(dot, *a.pipe);
        vars_.resize(mark);
        return r;
      }
      case Arg::Kind::Chain: {
        size_t mark = vars_.size();
        auto r = eval_pipeline(dot, *a.pipe);
        vars_.resize(mark);
        if (!r) {
          return r;
        }
        return eval_fields(a.pos, a.text, *r, a.fields);
      }
      case Arg::Kind::Function: {
        // A function name as an argument is a call without arguments.
        Command c;
        c.pos = a.pos;
        c.args.push_back(a);
        return eval_command(dot, c, Val(), false);
      }
    }
    return Val();
  }

  Result<Val> eval_command(const Val& dot, const Command& c, const Val& final, bool has_final) {
    const Arg& first = c.args[0];
    if (first.kind != Arg::Kind::Function) {
      if (has_final) {
        return err(c.pos, command_text(c),
                   fmt::format("can't give argument to non-function {}", first.text));
      }
      return eval_arg(dot, first);
    }
    const std::string& name = first.name;
    if (name == "and" || name == "or") {
      size_t n = c.args.size() - 1 + (has_final ? 1 : 0);
      if (n < 1) {
        return err(c.pos, command_text(c),
                   fmt::format("wrong number of args for {}: want at least 1 got 0", name));
      }
      Val v;
      for (size_t i = 1; i <= n; ++i) {
        if (i < c.args.size()) {
          BERTH_TRY(v, eval_arg(dot, c.args[i]));
        } else {
          v = final;
        }
        bool t = truth(v);
        if ((name == "and" && !t) || (name == "or" && t)) {
          return v;
        }
      }
      return v;
    }
    std::vector<Val> args;
    args.reserve(c.args.size());
    for (size_t i = 1; i < c.args.size(); ++i) {
      BERTH_TRY(Val v, eval_arg(dot, c.args[i]));
      args.push_back(std::move(v));
    }
    if (has_final) {
      args.push_back(final);
    }
    auto r = call_function(name, args);
    if (!r) {
      return err(c.pos, command_text(c), r.error().message());
    }
    return r;
  }

  std::string& out_;
  std::vector<std::pair<std::string, Val>> vars_;
};

void collect_pipe_fields(const Pipeline& p, std::vector<std::vector<std::string>>& out);

void collect_arg_fields(const Arg& a, std::vector<std::vector<std::string>>& out) {
  if (a.kind == Arg::Kind::Field ||
      (a.kind == Arg::Kind::Variable && a.name == "$" && !a.fields.empty())) {
    out.push_back(a.fields);
  } else if ((a.kind == Arg::Kind::Pipe || a.kind == Arg::Kind::Chain) && a.pipe) {
    collect_pipe_fields(*a.pipe, out);
  }
}

void collect_pipe_fields(const Pipeline& p, std::vector<std::vector<std::string>>& out) {
  for (const auto& c : p.cmds) {
    for (const auto& a : c.args) {
      collect_arg_fields(a, out);
    }
  }
}

void collect_list_fields(const NodeList& list, std::vector<std::vector<std::string>>& out) {
  for (const Node& n : list) {
    if (n.pipe) {
      collect_pipe_fields(*n.pipe, out);
    }
    // Inside range and with the dot is something else; if keeps the dot.
    if (n.kind == Node::Kind::If) {
      collect_list_fields(*n.list, out);
    }
    if ((n.kind == Node::Kind::If || n.kind == Node::Kind::With || n.kind == Node::Kind::Range) &&
        n.else_list) {
      collect_list_fields(*n.else_list, out);
    }
  }
}

}  // namespace
}  // namespace detail

Result<Template> Template::parse(std::string_view text) {
  BERTH_TRY(auto tree, detail::parse_tree(text));
  Template t;
  t.tree_ = std::move(tree);
  return t;
}

Result<void> Template::execute_to(std::string& out, const json& data) const {
  if (!tree_) {
    return fail(Errc::InvalidArgument, "template: executing an unparsed template");
  }
  detail::Exec ex(out, data);
  BERTH_TRYV(ex.walk(detail::Val::ref(data), tree_->root));
  return {};
}

Result<std::string> Template::execute(const json& data) const {
  std::string out;
  BERTH_TRYV(execute_to(out, data));
  return out;
}

std::vector<std::vector<std::string>> Template::top_level_fields() const {
  std::vector<std::vector<std::string>> out;
  if (tree_) {
    detail::collect_list_fields(tree_->root, out);
  }
  return out;
}

}  // namespace berth::format
