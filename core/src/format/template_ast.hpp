#pragma once
// Internal: tokens and syntax tree of the Go text/template engine.
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "berth/sdk/result.hpp"

namespace berth::format::detail {

struct Pos {
  int line = 1;
  int col = 1;
};

enum class Tok {
  Text,
  LeftDelim,
  RightDelim,
  Identifier,  // function name or keyword
  Field,       // .Name (text holds "Name")
  Variable,    // $ or $name (text holds "$name")
  Dot,
  String,  // text holds the unquoted value
  Number,  // text holds the literal
  Char,    // text holds the code point as decimal
  Bool,
  Nil,
  Pipe,
  LeftParen,
  RightParen,
  Declare,  // :=
  Assign,   // =
  Comma,
  Space,
  Eof,
};

struct Token {
  Tok kind;
  std::string text;
  Pos pos;
};

// Splits a template into tokens; comments and trim markers are handled here.
Result<std::vector<Token>> lex(std::string_view input);

struct Pipeline;

struct Arg {
  enum class Kind { Field, Variable, Dot, Nil, Bool, Number, String, Function, Pipe, Chain };
  Kind kind = Kind::Dot;
  Pos pos;
  std::string name;                 // variable or function name
  std::vector<std::string> fields;  // Field: the chain; Variable/Chain: trailing fields
  nlohmann::json literal;           // Bool/Number/String
  std::shared_ptr<Pipeline> pipe;   // Pipe and Chain (the parenthesised pipeline)
  std::string text;                 // source text, for error messages
};

struct Command {
  std::vector<Arg> args;
  Pos pos;
};

struct Pipeline {
  Pos pos;
  std::vector<std::string> decl;  // variables declared or assigned
  bool is_assign = false;         // `=` rather than `:=`
  std::vector<Command> cmds;
};

struct Node;
using NodeList = std::vector<Node>;

struct Node {
  enum class Kind { Text, Action, If, Range, With, Break, Continue };
  Kind kind = Kind::Text;
  Pos pos;
  std::string text;  // Text
  std::shared_ptr<Pipeline> pipe;
  std::shared_ptr<NodeList> list;       // body
  std::shared_ptr<NodeList> else_list;  // may be null
};

struct Tree {
  NodeList root;
};

Result<std::shared_ptr<Tree>> parse_tree(std::string_view text);

bool is_known_function(std::string_view name);

std::string pos_str(Pos p);

}  // namespace berth::format::detail
