// Go fmt.Sprintf semantics through the template's printf: expectations are Go's output.
#include <gtest/gtest.h>

#include "berth/format/template.hpp"

namespace berth::format {
namespace {

using nlohmann::json;

std::string run(const std::string& tmpl, const json& data = json::object()) {
  auto t = Template::parse(tmpl);
  if (!t) {
    return "PARSE ERROR: " + t.error().message();
  }
  auto r = t->execute(data);
  return r ? *r : "EXEC ERROR: " + r.error().message();
}

TEST(Printf, Strings) {
  json d = {{"Name", "web"}};
  EXPECT_EQ(run(R"({{printf "%-10s|" .Name}})", d), "web       |");
  EXPECT_EQ(run(R"({{printf "%10s|" .Name}})", d), "       web|");
  EXPECT_EQ(run(R"({{printf "%.2s" "abcdef"}})"), "ab");
  EXPECT_EQ(run(R"({{printf "%8.3s|" "abcdef"}})"), "     abc|");
  EXPECT_EQ(run(R"({{printf "%q" "a\"b\n"}})"), R"("a\"b\n")");
  EXPECT_EQ(run(R"({{printf "%x %X" "hi" "hi"}})"), "6869 6869");
  EXPECT_EQ(run(R"({{printf "%v|%s" "x" "y"}})"), "x|y");
  EXPECT_EQ(run(R"({{printf "%-4v|" "é"}})"), "é   |");  // width counts runes
}

TEST(Printf, Integers) {
  EXPECT_EQ(run(R"({{printf "%d" 42}})"), "42");
  EXPECT_EQ(run(R"({{printf "%5d|%-5d|%05d" 42 42 42}})"), "   42|42   |00042");
  EXPECT_EQ(run(R"({{printf "%+d %d" 5 -5}})"), "+5 -5");
  EXPECT_EQ(run(R"({{printf "%x %X %o %b %#x" 255 255 8 5 255}})"), "ff FF 10 101 0xff");
  EXPECT_EQ(run(R"({{printf "%c%c" 72 105}})"), "Hi");
  EXPECT_EQ(run(R"({{printf "%q" 65}})"), "'A'");
  EXPECT_EQ(run(R"({{printf "%v" 7}})"), "7");
}

TEST(Printf, Floats) {
  EXPECT_EQ(run(R"({{printf "%5.2f|" 3.14159}})"), " 3.14|");
  EXPECT_EQ(run(R"({{printf "%f" 1.5}})"), "1.500000");
  EXPECT_EQ(run(R"({{printf "%.1f" 2.25}})"), "2.2");
  EXPECT_EQ(run(R"({{printf "%e" 1234.5678}})"), "1.234568e+03");
  EXPECT_EQ(run(R"({{printf "%g %v" 1000000.0 1000000.0}})"), "1e+06 1e+06");
  EXPECT_EQ(run(R"({{printf "%g" 0.5}})"), "0.5");
  EXPECT_EQ(run(R"({{printf "%08.3f" -3.5}})"), "-003.500");
}

TEST(Printf, BoolsCompositesAndNil) {
  json d = json::parse(R"({"L": ["a", "b"], "N": [1, 2], "M": {"k": "v"}, "Z": null})");
  EXPECT_EQ(run(R"({{printf "%t %v" true false}})"), "true false");
  EXPECT_EQ(run(R"({{printf "%v %s %d" .L .L .N}})", d), "[a b] [a b] [1 2]");
  EXPECT_EQ(run(R"({{printf "%q" .L}})", d), R"(["a" "b"])");
  EXPECT_EQ(run(R"({{printf "%v" .M}})", d), "map[k:v]");
  EXPECT_EQ(run(R"({{printf "%v" .Z}})", d), "<nil>");
  EXPECT_EQ(run(R"({{printf "%v" .Missing}})", d), "<nil>");
}

TEST(Printf, GoDiagnostics) {
  EXPECT_EQ(run(R"({{printf "%d" "x"}})"), "%!d(string=x)");
  EXPECT_EQ(run(R"({{printf "%s" 5}})"), "%!s(int=5)");
  EXPECT_EQ(run(R"({{printf "%f" 3}})"), "%!f(int=3)");
  EXPECT_EQ(run(R"({{printf "%t" 1}})"), "%!t(int=1)");
  EXPECT_EQ(run(R"({{printf "%s %s" "a"}})"), "a %!s(MISSING)");
  EXPECT_EQ(run(R"({{printf "a" 1 "b"}})"), "a%!(EXTRA int=1, string=b)");
  EXPECT_EQ(run(R"({{printf "%z" 1}})"), "%!z(int=1)");
  EXPECT_EQ(run(R"({{printf "100%%"}})"), "100%");
  EXPECT_EQ(run(R"({{printf "%s" nil}})"), "%!s(<nil>)");
}

}  // namespace
}  // namespace berth::format
