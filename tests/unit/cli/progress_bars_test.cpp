#include "progress_bars.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <sstream>

namespace berth::cli {
namespace {

TEST(ProgressBars, RenderShowsFillAndSizes) {
  std::string half = ProgressBars::render("0123456789ab", 1024 * 1024, 2 * 1024 * 1024, 80);
  EXPECT_EQ(half.rfind("Copying blob 0123456789ab [", 0), 0u) << half;
  EXPECT_NE(half.find("] 1.0MiB / 2.0MiB"), std::string::npos) << half;
  EXPECT_EQ(half.size(), 79u) << half;
  size_t eq = std::count(half.begin(), half.end(), '=');
  size_t dash = std::count(half.begin(), half.end(), '-');
  EXPECT_NEAR(static_cast<double>(eq), static_cast<double>(dash) + 1.0, 1.0) << half;

  std::string unknown = ProgressBars::render("0123456789ab", 512, -1, 80);
  EXPECT_NE(unknown.find("512b / ?"), std::string::npos) << unknown;
  // A narrow terminal still gets a readable bar.
  std::string narrow = ProgressBars::render("0123456789ab", 0, 10, 20);
  EXPECT_NE(narrow.find("[>---------]"), std::string::npos) << narrow;
}

TEST(ProgressBars, FinishedBlobReplacesItsBarAndLinesGoAbove) {
  std::ostringstream out;
  {
    ProgressBars bars(out, 80);
    bars.line("Getting image source signatures");
    bars.bytes("sha256:0123456789abcdef", 10, 100);
    bars.line("Copying blob 0123456789ab done");
    bars.line("Copying config fedcba987654 done");
  }
  std::string s = out.str();
  EXPECT_NE(s.find("Getting image source signatures\n"), std::string::npos);
  EXPECT_NE(s.find("[="), std::string::npos) << s;  // the bar was drawn
  // The last drawing of the blob line is its final text.
  auto last_blob = s.rfind("Copying blob 0123456789ab");
  EXPECT_EQ(s.compare(last_blob, 30, "Copying blob 0123456789ab done"), 0) << s;
  EXPECT_NE(s.find("Copying config fedcba987654 done"), std::string::npos);
}

}  // namespace
}  // namespace berth::cli
