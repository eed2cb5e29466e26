#include "berth/container/log_format.hpp"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <time.h>

#include <regex>

namespace berth::container {
namespace {

class LogFormat : public ::testing::Test {
 protected:
  void SetUp() override {
    ::setenv("TZ", "UTC", 1);
    ::tzset();
  }
};

TEST_F(LogFormat, TimeHasNineDigitsAndOffset) {
  EXPECT_EQ(format_log_time(int64_t{1700000000} * 1000000000 + 5),
            "2023-11-14T22:13:20.000000005+00:00");
}

TEST_F(LogFormat, RecordsSplitLinesAndMarkPartials) {
  std::string out;
  int64_t t = int64_t{1700000000} * 1000000000;
  append_log_records(out, t, LogStream::Stdout, "one\ntwo\nthr");
  append_log_records(out, t, LogStream::Stderr, "err\n");
  EXPECT_EQ(out,
            "2023-11-14T22:13:20.000000000+00:00 stdout F one\n"
            "2023-11-14T22:13:20.000000000+00:00 stdout F two\n"
            "2023-11-14T22:13:20.000000000+00:00 stdout P thr\n"
            "2023-11-14T22:13:20.000000000+00:00 stderr F err\n");
}

TEST_F(LogFormat, EmptyLineIsAnFRecord) {
  std::string out;
  append_log_records(out, 0, LogStream::Stdout, "\n");
  EXPECT_NE(out.find(" stdout F \n"), std::string::npos);
}

TEST_F(LogFormat, ParseJoinsPartialsPerStream) {
  std::string log;
  append_log_records(log, 1000, LogStream::Stdout, "hel");
  append_log_records(log, 2000, LogStream::Stderr, "warn\n");
  append_log_records(log, 3000, LogStream::Stdout, "lo\nnext");
  auto lines = parse_log(log);
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(lines[0].text, "hello");
  EXPECT_EQ(lines[0].stream, LogStream::Stdout);
  EXPECT_EQ(lines[0].time, 1000);
  EXPECT_TRUE(lines[0].complete);
  EXPECT_EQ(lines[1].text, "warn");
  EXPECT_EQ(lines[1].stream, LogStream::Stderr);
  EXPECT_EQ(lines[2].text, "next");
  EXPECT_FALSE(lines[2].complete);
}

TEST_F(LogFormat, ParsesCriLinesFromOtherWriters) {
  auto r = parse_log_record("2024-01-02T03:04:05.5Z stdout F hi there");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->content, "hi there");
  EXPECT_FALSE(r->partial);
  EXPECT_EQ(r->time, int64_t{1704164645} * 1000000000 + 500000000);
  EXPECT_FALSE(parse_log_record("garbage"));
  EXPECT_FALSE(parse_log_record("2024-01-02T03:04:05Z stdin F x"));
}

TEST_F(LogFormat, Rfc3339Offsets) {
  EXPECT_EQ(parse_rfc3339("2024-01-02T03:04:05+01:00"), int64_t{1704161045} * 1000000000);
  EXPECT_EQ(parse_rfc3339("1970-01-01T00:00:00Z"), 0);
  EXPECT_FALSE(parse_rfc3339("2024-01-02"));
  EXPECT_FALSE(parse_rfc3339("2024-01-02T03:04:05"));
}

TEST_F(LogFormat, Rotation) {
  EXPECT_FALSE(needs_rotation(0, 100, 10));  // an empty file takes any record
  EXPECT_FALSE(needs_rotation(5, 5, 10));
  EXPECT_TRUE(needs_rotation(6, 5, 10));
  EXPECT_FALSE(needs_rotation(1000000, 5, -1));
  EXPECT_EQ(rotated_path("/x/ctr.log"), "/x/ctr.log.1");
}

TEST_F(LogFormat, Sizes) {
  EXPECT_EQ(parse_size("100"), 100);
  EXPECT_EQ(parse_size("10k"), 10240);
  EXPECT_EQ(parse_size("2mb"), 2 * 1024 * 1024);
  EXPECT_EQ(parse_size("1G"), int64_t{1} << 30);
  EXPECT_FALSE(parse_size("big"));
  EXPECT_FALSE(parse_size("10q"));
}

}  // namespace
}  // namespace berth::container
