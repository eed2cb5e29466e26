// Go text/tabwriter semantics; expectations are the outputs documented in Go's package examples
// and in containers/common's tests.
#include "berth/format/tabwriter.hpp"

#include <gtest/gtest.h>

namespace berth::format {
namespace {

TEST(TabWriter, GoTrailingTabExample) {
  // Go's Example_trailingTab: AlignRight|Debug, padding 3, padchar '-'.
  TabWriter::Options o{0, 0, 3, '-', true, true};
  std::string out = TabWriter::format(
      "a\tb\taligned\t\naa\tbb\taligned\t\naaa\tbbb\tunaligned\naaaa\tbbbb\taligned\t\n", o);
  EXPECT_EQ(out,
            "------a|------b|---aligned|\n"
            "-----aa|-----bb|---aligned|\n"
            "----aaa|----bbb|unaligned\n"
            "---aaaa|---bbbb|---aligned|\n");
}

TEST(TabWriter, GoElasticExampleWithTabPadding) {
  // Go's Example_elastic: minwidth 0, tabwidth 8, padding 0, padchar '\t'.
  TabWriter::Options o{0, 8, 0, '\t', false, false};
  std::string out = TabWriter::format("a\tb\tc\td\t.\n123\t12345\t1234567\t123456789\t.\n", o);
  EXPECT_EQ(out, "a\tb\tc\td\t\t.\n123\t12345\t1234567\t123456789\t.\n");
}

TEST(TabWriter, PodmanDefaults) {
  // containers/common pkg/report formatter_test: minwidth 12, tabwidth 2, padding 2.
  std::string out = TabWriter::format(
      "Identity\tValue\nc061a0839e\tone\nf10fc2e11057\ttwo\n1eb6fab5aa8f4b5cbfd3e66aa35e9b2a\tthree"
      "\n",
      TabWriter::podman_defaults());
  EXPECT_EQ(out,
            "Identity                          Value\n"
            "c061a0839e                        one\n"
            "f10fc2e11057                      two\n"
            "1eb6fab5aa8f4b5cbfd3e66aa35e9b2a  three\n");
}

TEST(TabWriter, MinWidthAndLastCellUnaligned) {
  std::string out = TabWriter::format("ID\tNAME\nab\tx\n", TabWriter::podman_defaults());
  EXPECT_EQ(out, "ID          NAME\nab          x\n");
}

TEST(TabWriter, ColumnBlocksAreBrokenByLinesWithoutTheColumn) {
  // The second line has no tab: it ends the column block, so lines 1 and 3 are sized apart.
  TabWriter::Options o{0, 8, 1, ' ', false, false};
  std::string out = TabWriter::format("aaaa\tb\nplain line\nc\td\n", o);
  EXPECT_EQ(out, "aaaa b\nplain line\nc d\n");
}

TEST(TabWriter, CountsCodePointsNotBytes) {
  TabWriter::Options o{0, 8, 1, ' ', false, false};
  EXPECT_EQ(TabWriter::format("é\tx\nab\ty\n", o), "é  x\nab y\n");
}

TEST(TabWriter, NoTrailingNewlineIsKept) {
  TabWriter::Options o{0, 8, 1, ' ', false, false};
  EXPECT_EQ(TabWriter::format("a\tb", o), "a b");
  EXPECT_EQ(TabWriter::format("", o), "");
}

TEST(TabWriter, IncrementalWritesAndFlush) {
  TabWriter w(TabWriter::podman_defaults());
  w.write("A\t");
  w.write("B\n");
  w.write("ccc\tddd\n");
  EXPECT_EQ(w.flush(), "A           B\nccc         ddd\n");
  EXPECT_EQ(w.flush(), "");
}

}  // namespace
}  // namespace berth::format
