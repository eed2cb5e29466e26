// Go text/template semantics: each expectation is what Go's text/template prints for the same
// template over the equivalent Go map[string]interface{} data.
#include "berth/format/template.hpp"

#include <gtest/gtest.h>

#include <string>

namespace berth::format {
namespace {

using nlohmann::json;

const json& container() {
  static const json kData = json::parse(R"({
    "Id": "3f2c9a1b7d4e",
    "Name": "web",
    "Names": ["web", "alias"],
    "Image": "docker.io/library/nginx:latest",
    "State": {"Status": "running", "Running": true, "Pid": 1234, "ExitCode": 0},
    "Config": {"Env": ["A=1", "B=2"], "Labels": {"com.example": "yes", "app": "web"}},
    "Labels": {"com.example": "yes", "app": "web"},
    "Mounts": [{"Source": "/a", "Destination": "/x"}, {"Source": "/b", "Destination": "/y"}],
    "Size": 1.5,
    "Big": 1000000.0,
    "Count": 3,
    "Nothing": null,
    "Empty": "",
    "EmptyList": []
  })");
  return kData;
}

std::string run(const std::string& tmpl, const json& data = container()) {
  auto t = Template::parse(tmpl);
  if (!t) {
    return "PARSE ERROR: " + t.error().message();
  }
  auto r = t->execute(data);
  if (!r) {
    return "EXEC ERROR: " + r.error().message();
  }
  return *r;
}

Error parse_error(const std::string& tmpl) {
  auto t = Template::parse(tmpl);
  EXPECT_FALSE(t) << tmpl;
  return t ? Error() : t.error();
}

Error exec_error(const std::string& tmpl, const json& data = container()) {
  auto t = Template::parse(tmpl);
  EXPECT_TRUE(t) << (t ? "" : t.error().message());
  if (!t) {
    return Error();
  }
  auto r = t->execute(data);
  EXPECT_FALSE(r) << tmpl << " printed " << (r ? *r : "");
  return r ? Error() : r.error();
}

TEST(Template, TextOnly) {
  EXPECT_EQ(run("hello world"), "hello world");
}

TEST(Template, FieldsAndNestedFields) {
  EXPECT_EQ(run("{{.Name}}"), "web");
  EXPECT_EQ(run("{{.State.Status}}"), "running");
  EXPECT_EQ(run("{{.Id}} {{.Image}}"), "3f2c9a1b7d4e docker.io/library/nginx:latest");
  EXPECT_EQ(run("{{ .State.Pid }}"), "1234");
}

TEST(Template, DotPrintsGoValue) {
  EXPECT_EQ(run("{{.}}", json("x")), "x");
  EXPECT_EQ(run("{{.Names}}"), "[web alias]");
  EXPECT_EQ(run("{{.Labels}}"), "map[app:web com.example:yes]");
  EXPECT_EQ(run("{{.State}}"), "map[ExitCode:0 Pid:1234 Running:true Status:running]");
  EXPECT_EQ(run("{{.Mounts}}"), "[map[Destination:/x Source:/a] map[Destination:/y Source:/b]]");
  EXPECT_EQ(run("{{.}}", json::parse(R"([1, null, "a", true])")), "[1 <nil> a true]");
}

TEST(Template, NumbersPrintAsGo) {
  EXPECT_EQ(run("{{.Count}}"), "3");
  EXPECT_EQ(run("{{.Size}}"), "1.5");
  EXPECT_EQ(run("{{.Big}}"), "1e+06");
  EXPECT_EQ(run("{{.}}", json(123456.0)), "123456");
  EXPECT_EQ(run("{{.}}", json(0.0001)), "0.0001");
  EXPECT_EQ(run("{{.}}", json(0.00001)), "1e-05");
  EXPECT_EQ(run("{{.}}", json(-2.25)), "-2.25");
  EXPECT_EQ(run("{{.}}", json(18446744073709551615ULL)), "18446744073709551615");
}

TEST(Template, MissingKeyPrintsNoValue) {
  EXPECT_EQ(run("{{.Missing}}"), "<no value>");
  EXPECT_EQ(run("{{.Missing.Deeper}}"), "<no value>");
  EXPECT_EQ(run("{{.Nothing}}"), "<no value>");
  EXPECT_EQ(run("{{.State.Nope}}"), "<no value>");
}

TEST(Template, CaseInsensitiveKeyLookup) {
  json info = json::parse(R"({"store": {"graphDriverName": "overlay", "graphRoot": "/var/lib"},
                              "host": {"arch": "amd64"}})");
  EXPECT_EQ(run("{{.Store.GraphDriverName}}", info), "overlay");
  EXPECT_EQ(run("{{.Host.Arch}} {{.store.graphRoot}}", info), "amd64 /var/lib");
  // An exact key wins over a case-insensitive one.
  json both = json::parse(R"({"name": "lower", "Name": "exact"})");
  EXPECT_EQ(run("{{.Name}} {{.name}}", both), "exact lower");
}

TEST(Template, Literals) {
  EXPECT_EQ(run(R"({{"quoted\tstr\"ing"}})"), "quoted\tstr\"ing");
  EXPECT_EQ(run("{{`raw\\t`}}"), "raw\\t");
  EXPECT_EQ(run("{{42}} {{-7}} {{0x1F}} {{1.5}} {{1e3}} {{'a'}}"), "42 -7 31 1.5 1000 97");
  EXPECT_EQ(run("{{true}} {{false}}"), "true false");
  EXPECT_EQ(run(R"({{'\n'}} {{'é'}} {{'\x41'}})"), "10 233 65");
  EXPECT_EQ(run(R"({{"\u00e9\x41"}})"),
            "\xc3\xa9"
            "A");
}

TEST(Template, Variables) {
  EXPECT_EQ(run("{{$x := .Name}}{{$x}}-{{$x}}"), "web-web");
  EXPECT_EQ(run("{{$x := 1}}{{$x = 2}}{{$x}}"), "2");
  EXPECT_EQ(run("{{range .Mounts}}{{$.Name}}:{{.Source}} {{end}}"), "web:/a web:/b ");
  EXPECT_EQ(run("{{$n := .Name}}{{with .State}}{{$n}} is {{.Status}}{{end}}"), "web is running");
  // A variable declared in a range body is scoped to one iteration; assignment persists.
  EXPECT_EQ(run("{{$last := \"\"}}{{range .Names}}{{$last = .}}{{end}}{{$last}}"), "alias");
}

TEST(Template, Pipelines) {
  EXPECT_EQ(run(R"({{.Name | printf "%s!"}})"), "web!");
  EXPECT_EQ(run(R"({{.Name | upper | printf "<%s>"}})"), "<WEB>");
  EXPECT_EQ(run(R"({{printf "%s-%d" .Name .Count | len}})"), "5");
  EXPECT_EQ(run("{{(index .Mounts 1).Source}}"), "/b");
  EXPECT_EQ(run("{{(.State).Status}}"), "running");
}

TEST(Template, RangeArraysAndObjects) {
  EXPECT_EQ(run("{{range .Mounts}}{{.Source}}{{end}}"), "/a/b");
  EXPECT_EQ(run("{{range $i, $e := .Names}}{{$i}}={{$e}} {{end}}"), "0=web 1=alias ");
  EXPECT_EQ(run("{{range $e := .Names}}[{{$e}}]{{end}}"), "[web][alias]");
  EXPECT_EQ(run("{{range $k, $v := .Labels}}{{$k}}={{$v}};{{end}}"), "app=web;com.example=yes;");
  EXPECT_EQ(run("{{range .Labels}}{{.}} {{end}}"), "web yes ");
  EXPECT_EQ(run("{{range .EmptyList}}x{{else}}none{{end}}"), "none");
  EXPECT_EQ(run("{{range .Missing}}x{{else}}none{{end}}"), "none");
  EXPECT_EQ(run("{{range .Nothing}}x{{end}}"), "");
  EXPECT_EQ(run("{{range 3}}{{.}}{{end}}"), "012");
}

TEST(Template, RangeBreakContinue) {
  json d = json::parse("[1, 2, 3, 4]");
  EXPECT_EQ(run("{{range .}}{{if eq . 3}}{{break}}{{end}}{{.}}{{end}}", d), "12");
  EXPECT_EQ(run("{{range .}}{{if eq . 2}}{{continue}}{{end}}{{.}}{{end}}", d), "134");
}

TEST(Template, IfElse) {
  EXPECT_EQ(run("{{if .State.Running}}up{{else}}down{{end}}"), "up");
  EXPECT_EQ(run("{{if .Missing}}up{{else}}down{{end}}"), "down");
  EXPECT_EQ(run("{{if .Empty}}a{{else if .EmptyList}}b{{else if .Count}}c{{else}}d{{end}}"), "c");
  EXPECT_EQ(run("{{if .Nothing}}a{{else if eq .Name \"web\"}}b{{end}}"), "b");
  EXPECT_EQ(run("{{if and .State.Running (gt .Count 2)}}yes{{end}}"), "yes");
  EXPECT_EQ(run("{{if or .Empty .Name}}{{or .Empty .Name}}{{end}}"), "web");
  EXPECT_EQ(run("{{if not .State.Running}}a{{else}}b{{end}}"), "b");
  EXPECT_EQ(run("{{if $x := .Name}}{{$x}}{{end}}"), "web");
}

TEST(Template, With) {
  EXPECT_EQ(run("{{with .State}}{{.Status}}/{{.Pid}}{{end}}"), "running/1234");
  EXPECT_EQ(run("{{with .Missing}}x{{else}}no{{end}}"), "no");
  EXPECT_EQ(run("{{with .Empty}}x{{else with .Name}}{{.}}{{end}}"), "web");
}

TEST(Template, TrimMarkersAndComments) {
  EXPECT_EQ(run("a  {{- .Name -}}  b"), "awebb");
  EXPECT_EQ(run("{{range .Names -}}\n  {{.}}\n{{- end}}"), "webalias");
  EXPECT_EQ(run("a {{/* a comment */}}b"), "a b");
  EXPECT_EQ(run("a {{- /* trimmed */ -}} b"), "ab");
  EXPECT_EQ(run("{{-3}}"), "-3");  // not a trim marker: no blank after '-'
}

TEST(Template, BuiltinFunctions) {
  EXPECT_EQ(run("{{len .Names}} {{len .Labels}} {{len .Name}}"), "2 2 3");
  EXPECT_EQ(run(R"({{index .Labels "com.example"}})"), "yes");
  EXPECT_EQ(run("{{index .Names 1}}"), "alias");
  EXPECT_EQ(run(R"({{index .Config.Labels "nope"}})"), "<no value>");
  EXPECT_EQ(run("{{index . 1 0}}", json::parse("[[1,2],[3,4]]")), "3");
  EXPECT_EQ(run(R"({{eq .Name "web"}} {{eq .Name "x" "web"}} {{ne .Count 3}})"), "true true false");
  EXPECT_EQ(run("{{lt 1 2}} {{le 2 2}} {{gt 1 2}} {{ge .Count 3}}"), "true true false true");
  EXPECT_EQ(run(R"({{lt "a" "b"}})"), "true");
  EXPECT_EQ(run("{{and 1 0 2}} {{or 0 \"\" 5}} {{and 1 2}} {{or 0 false}}"), "0 5 2 false");
  EXPECT_EQ(run("{{print \"a\" 1 2 \"b\" \"c\" true}}"), "a1 2bctrue");
  EXPECT_EQ(run("{{println .Name 1}}"), "web 1\n");
  EXPECT_EQ(run("{{print .Nothing}}"), "<nil>");
  EXPECT_EQ(run("{{not 0}} {{not .Names}}"), "true false");
}

TEST(Template, PodmanDockerFunctions) {
  EXPECT_EQ(run("{{json .Config}}"),
            R"({"Env":["A=1","B=2"],"Labels":{"app":"web","com.example":"yes"}})");
  EXPECT_EQ(run("{{json .Name}} {{json .Missing}}"), R"("web" null)");
  EXPECT_EQ(run(R"({{json "<&>"}})"), R"("<&>")");                // Docker's SetEscapeHTML(false)
  EXPECT_EQ(run("{{json .Big}} {{json .Size}}"), "1000000 1.5");  // Go's float encoding
  EXPECT_EQ(run(R"({{join .Names ","}})"), "web,alias");
  EXPECT_EQ(run(R"({{join .Config.Env " "}})"), "A=1 B=2");
  EXPECT_EQ(run("{{upper .Name}} {{lower \"ABC\"}} {{title \"hello big-world\"}}"),
            "WEB abc Hello Big-World");
  EXPECT_EQ(run(R"({{split .Image ":"}})"), "[docker.io/library/nginx latest]");
  EXPECT_EQ(run(R"({{index (split .Image "/") 2}})"), "nginx:latest");
  EXPECT_EQ(run("{{truncate .Id 4}} {{truncate .Name 10}}"), "3f2c web");
}

TEST(Template, ParsedOnceExecutedMany) {
  auto t = Template::parse("{{.ID}}:{{.N}}\n");
  ASSERT_TRUE(t);
  std::string out;
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(t->execute_to(out, json{{"ID", "c" + std::to_string(i)}, {"N", i}}));
  }
  EXPECT_EQ(out, "c0:0\nc1:1\nc2:2\n");
}

TEST(Template, TopLevelFields) {
  auto t = Template::parse(
      "{{.ID}}\t{{upper .Names}}{{range .Mounts}}{{.Source}}{{end}}"
      "{{if .State.Running}}{{.Image}}{{end}}");
  ASSERT_TRUE(t);
  std::vector<std::vector<std::string>> want = {
      {"ID"}, {"Names"}, {"Mounts"}, {"State", "Running"}, {"Image"}};
  EXPECT_EQ(t->top_level_fields(), want);
}

TEST(TemplateErrors, ParseErrors) {
  Error e = parse_error("{{.Name");
  EXPECT_EQ(e.code(), Errc::InvalidArgument);
  EXPECT_NE(e.message().find("1:1: unclosed action"), std::string::npos) << e.message();

  e = parse_error("abc {{nosuchfunc .Name}}");
  EXPECT_NE(e.message().find("1:7: function \"nosuchfunc\" not defined"), std::string::npos)
      << e.message();

  e = parse_error("x\n{{end}}");
  EXPECT_NE(e.message().find("2:1: unexpected {{end}}"), std::string::npos) << e.message();

  e = parse_error("{{if .A}}x");
  EXPECT_NE(e.message().find("{{if}} has no matching {{end}}"), std::string::npos) << e.message();

  e = parse_error("{{else}}");
  EXPECT_NE(e.message().find("unexpected {{else}}"), std::string::npos) << e.message();

  e = parse_error(R"({{"abc}})");
  EXPECT_NE(e.message().find("unterminated quoted string"), std::string::npos) << e.message();

  e = parse_error("{{$undefined}}");
  EXPECT_NE(e.message().find("undefined variable \"$undefined\""), std::string::npos)
      << e.message();

  e = parse_error("{{break}}");
  EXPECT_NE(e.message().find("{{break}} outside {{range}}"), std::string::npos) << e.message();

  e = parse_error("{{/* open comment }}");
  EXPECT_NE(e.message().find("unclosed comment"), std::string::npos) << e.message();

  e = parse_error("{{.A #}}");
  EXPECT_NE(e.message().find("unrecognized character in action: U+0023 '#'"), std::string::npos)
      << e.message();

  e = parse_error("{{}}");
  EXPECT_NE(e.message().find("missing value for command"), std::string::npos) << e.message();
}

TEST(TemplateErrors, ExecErrors) {
  Error e = exec_error("{{.Name.Foo}}");
  EXPECT_EQ(e.code(), Errc::InvalidArgument);
  EXPECT_NE(e.message().find("1:3: executing at <.Name.Foo>: can't evaluate field Foo in type "
                             "string"),
            std::string::npos)
      << e.message();

  e = exec_error("{{.Nothing.Foo}}");
  EXPECT_NE(e.message().find("nil pointer evaluating interface {}.Foo"), std::string::npos)
      << e.message();

  e = exec_error("{{index .Names 5}}");
  EXPECT_NE(e.message().find("error calling index: index out of range: 5"), std::string::npos)
      << e.message();

  e = exec_error("{{len .Count}}");
  EXPECT_NE(e.message().find("error calling len: len of type int"), std::string::npos)
      << e.message();

  e = exec_error(R"({{eq .Name 1}})");
  EXPECT_NE(e.message().find("incompatible types for comparison"), std::string::npos)
      << e.message();

  e = exec_error("{{upper .Count}}");
  EXPECT_NE(e.message().find("expected string; got int"), std::string::npos) << e.message();

  e = exec_error("{{range .Name}}{{end}}");
  EXPECT_NE(e.message().find("range can't iterate over web"), std::string::npos) << e.message();

  e = exec_error("{{len 1 2}}");
  EXPECT_NE(e.message().find("wrong number of args for len: want 1 got 2"), std::string::npos)
      << e.message();
}

}  // namespace
}  // namespace berth::format
