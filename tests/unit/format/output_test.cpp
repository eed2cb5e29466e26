// The output layer, against what `podman ps/images/inspect --format` print.
#include "berth/format/output.hpp"

#include <gtest/gtest.h>

namespace berth::format {
namespace {

using nlohmann::json;

json rows() {
  return json::parse(R"J([
    {"ID": "3f2c9a1b7d4e", "Image": "docker.io/library/nginx:latest", "Names": ["web"],
     "CreatedAt": "2 hours ago", "Status": "Up 2 hours", "Labels": {"app": "web"}},
    {"ID": "77aa01bb02cc", "Image": "docker.io/library/alpine:3.19", "Names": ["db", "x"],
     "CreatedAt": "3 days ago", "Status": "Exited (0)", "Labels": {}}
  ])J");
}

ListSpec ps_spec() {
  ListSpec s;
  s.default_format = "table {{.ID}}\t{{.Image}}\t{{.Status}}\t{{.Names}}";
  s.headers = {{"ID", "CONTAINER ID"}};
  s.quiet_field = "ID";
  return s;
}

std::string list(const std::string& format, bool quiet = false, bool noheading = false,
                 const json& data = rows()) {
  OutputOptions o;
  o.format = format;
  o.quiet = quiet;
  o.noheading = noheading;
  auto r = render_list(data, ps_spec(), o);
  return r ? *r : "ERROR: " + r.error().message();
}

TEST(RenderList, DefaultTable) {
  EXPECT_EQ(list(""),
            "CONTAINER ID  IMAGE                           STATUS      NAMES\n"
            "3f2c9a1b7d4e  docker.io/library/nginx:latest  Up 2 hours  [web]\n"
            "77aa01bb02cc  docker.io/library/alpine:3.19   Exited (0)  [db x]\n");
}

TEST(RenderList, BareTableWordMeansDefault) {
  EXPECT_EQ(list("table"), list(""));
}

TEST(RenderList, UserTableWithEscapedTab) {
  EXPECT_EQ(list(R"(table {{.ID}}\t{{.Names}})"),
            "CONTAINER ID  NAMES\n"
            "3f2c9a1b7d4e  [web]\n"
            "77aa01bb02cc  [db x]\n");
}

TEST(RenderList, TableBlanksBetweenActionsBecomeColumns) {
  EXPECT_EQ(list("table {{.ID}} {{.CreatedAt}}"),
            "CONTAINER ID  CREATED AT\n"
            "3f2c9a1b7d4e  2 hours ago\n"
            "77aa01bb02cc  3 days ago\n");
}

TEST(RenderList, TableHeadersThroughFunctions) {
  EXPECT_EQ(list(R"(table {{.ID}}\t{{join .Names ","}}\t{{upper .Status}})"),
            "CONTAINER ID  NAMES       STATUS\n"
            "3f2c9a1b7d4e  web         UP 2 HOURS\n"
            "77aa01bb02cc  db,x        EXITED (0)\n");
}

TEST(RenderList, HeaderFallsBackWhenTemplateCannotRunOnHeaders) {
  // index on the header string "LABELS" fails; the header then lists the fields' headers.
  EXPECT_EQ(list(R"(table {{.ID}}\t{{index .Labels "app"}}\t{{$.Status}})"),
            "CONTAINER ID  LABELS      STATUS\n"
            "3f2c9a1b7d4e  web         Up 2 hours\n"
            "77aa01bb02cc  <no value>  Exited (0)\n");
}

TEST(RenderList, NoHeading) {
  EXPECT_EQ(list(R"(table {{.ID}}\t{{.Status}})", false, true),
            "3f2c9a1b7d4e  Up 2 hours\n77aa01bb02cc  Exited (0)\n");
}

TEST(RenderList, EmptyTablePrintsHeaderOnly) {
  EXPECT_EQ(list("", false, false, json::array()), "CONTAINER ID  IMAGE       STATUS      NAMES\n");
  EXPECT_EQ(list("{{.ID}}", false, false, json::array()), "");
}

TEST(RenderList, PlainTemplateOneLinePerRowNoHeader) {
  EXPECT_EQ(list("{{.ID}} {{.Image}}"),
            "3f2c9a1b7d4e docker.io/library/nginx:latest\n"
            "77aa01bb02cc docker.io/library/alpine:3.19\n");
  // Podman/Docker turn the two characters \t into a tab; no alignment outside tables.
  EXPECT_EQ(list(R"({{.ID}}\t{{.Status}})"),
            "3f2c9a1b7d4e\tUp 2 hours\n77aa01bb02cc\tExited (0)\n");
  // A template that already ends with a newline gets no second one.
  EXPECT_EQ(list("{{.ID}}\n"), "3f2c9a1b7d4e\n77aa01bb02cc\n");
  EXPECT_EQ(list(R"({{.ID}}\n)"), "3f2c9a1b7d4e\n77aa01bb02cc\n");
}

TEST(RenderList, UserRangeOverAllRows) {
  EXPECT_EQ(list("{{range .}}{{.ID}},{{end}}"), "3f2c9a1b7d4e,77aa01bb02cc,\n");
}

TEST(RenderList, PrintfNewlineFallsBackToRawTemplate) {
  // `\n` inside a string literal cannot be a real newline; Podman re-parses the raw text.
  EXPECT_EQ(list(R"({{printf "%s\n" .ID}})"), "3f2c9a1b7d4e\n77aa01bb02cc\n");
}

TEST(RenderList, Quiet) {
  EXPECT_EQ(list("", true), "3f2c9a1b7d4e\n77aa01bb02cc\n");
  EXPECT_EQ(list("json", true), "3f2c9a1b7d4e\n77aa01bb02cc\n");
  // A Go template overrides --quiet, as podman ps does.
  EXPECT_EQ(list("{{.Status}}", true), "Up 2 hours\nExited (0)\n");
}

TEST(RenderList, Json) {
  json data = json::parse(R"([{"ID": "a", "N": [1]}])");
  std::string want = "[\n  {\n    \"ID\": \"a\",\n    \"N\": [\n      1\n    ]\n  }\n]\n";
  EXPECT_EQ(list("json", false, false, data), want);
  EXPECT_EQ(list("{{json .}}", false, false, data), want);
  EXPECT_EQ(list(" {{ json }} ", false, false, data), want);
  EXPECT_EQ(list("json", false, false, json::array()), "[]\n");
}

TEST(RenderList, JsonIsGoEncodingJson) {
  // Go's json.MarshalIndent: floats without ".0", short exponents, HTML characters escaped.
  json data = json::parse(R"([{"F": 3.0, "G": 1e-7, "H": 0.5, "S": "a<b>&c", "E": {}, "L": []}])");
  EXPECT_EQ(list("json", false, false, data),
            "[\n  {\n    \"E\": {},\n    \"F\": 3,\n    \"G\": 1e-7,\n    \"H\": 0.5,\n"
            "    \"L\": [],\n    \"S\": \"a\\u003cb\\u003e\\u0026c\"\n  }\n]\n");
}

TEST(RenderList, Errors) {
  EXPECT_EQ(render_list(json::object(), ps_spec(), {}).error().code(), Errc::InvalidArgument);
  auto r = render_list(rows(), ps_spec(), {"{{.ID", false, false});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), Errc::InvalidArgument);
  EXPECT_NE(r.error().message().find("unclosed action"), std::string::npos) << r.error().message();
  r = render_list(rows(), ps_spec(), {"{{.ID.X}}", false, false});
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message().find("can't evaluate field X in type string"), std::string::npos)
      << r.error().message();
}

TEST(Headers, PodmanCamelCaseRules) {
  EXPECT_EQ(header_for_field("ID"), "ID");
  EXPECT_EQ(header_for_field("CreatedAt"), "CREATED AT");
  EXPECT_EQ(header_for_field("ImageID"), "IMAGE ID");
  EXPECT_EQ(header_for_field("FieldA"), "FIELD A");
  EXPECT_EQ(header_for_field("Fieldb"), "FIELDB");
  EXPECT_EQ(header_for_field("fieldC"), "FIELD C");
  EXPECT_EQ(header_for_field("PDFLoader"), "PDF LOADER");
  EXPECT_EQ(header_for_field("Names"), "NAMES");
}

TEST(Headers, NestedFieldAndOverrideByPath) {
  ListSpec s;
  s.headers = {{"State.Status", "state"}};
  json data = json::parse(R"([{"ID": "a", "State": {"Status": "running"}}])");
  auto r = render_list(data, s, {"table {{.ID}}\t{{.State.Status}}", false, false});
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(*r, "ID          STATE\na           running\n");
}

TEST(NormalizeFormat, PodmanCases) {
  // containers/common pkg/report TestNormalizeFormat.
  EXPECT_EQ(normalize_format("{{.ID}}\t{{.ID}}"), "{{.ID}}\t{{.ID}}\n");
  EXPECT_EQ(normalize_format(R"({{.ID}}\t{{.ID}})"), "{{.ID}}\t{{.ID}}\n");
  EXPECT_EQ(normalize_format("{{.ID}} {{.ID}}"), "{{.ID}} {{.ID}}\n");
  EXPECT_EQ(normalize_format(R"(table {{.ID}}\t{{.ID}})"), "{{.ID}}\t{{.ID}}\n");
  EXPECT_EQ(normalize_format("table {{.ID}} {{.ID}}"), "{{.ID}}\t{{.ID}}\n");
}

TEST(RenderObject, InspectJsonAndTemplates) {
  json obj = json::parse(R"({"Id": "abc", "State": {"Status": "running", "Running": true},
    "Config": {"Labels": {"com.example": "yes"}}, "Mounts": [{"Source": "/a"}, {"Source": "/b"}]})");
  auto r = render_object(obj, "");
  ASSERT_TRUE(r);
  EXPECT_EQ(*r, obj.dump(4) + "\n");
  EXPECT_EQ(r->substr(0, 16), "{\n    \"Config\": ");
  EXPECT_EQ(*render_object(obj, "json"), obj.dump(4) + "\n");
  // Inspect output keeps <, > and & readable (podman inspect disables HTML escaping).
  EXPECT_EQ(*render_object(json{{"Cmd", "a && b > c"}}, ""), "{\n    \"Cmd\": \"a && b > c\"\n}\n");
  EXPECT_EQ(*render_object(obj, "{{.State.Status}}"), "running\n");
  EXPECT_EQ(*render_object(obj, "{{json .Config}}"), "{\"Labels\":{\"com.example\":\"yes\"}}\n");
  EXPECT_EQ(*render_object(obj, "{{range .Mounts}}{{.Source}}{{end}}"), "/a/b\n");
  EXPECT_EQ(*render_object(obj, R"({{index .Config.Labels "com.example"}})"), "yes\n");
  EXPECT_EQ(*render_object(obj, "{{if .State.Running}}up{{else}}down{{end}}"), "up\n");
  EXPECT_FALSE(render_object(obj, "{{end}}"));
}

TEST(RenderObjects, SeveralObjects) {
  json arr = json::parse(R"([{"Name": "a"}, {"Name": "b"}])");
  EXPECT_EQ(*render_objects(arr, ""), arr.dump(4) + "\n");
  EXPECT_EQ(*render_objects(arr, "{{.Name}}"), "a\nb\n");
  EXPECT_EQ(*render_objects(json::array(), ""), "[]\n");
}

}  // namespace
}  // namespace berth::format
