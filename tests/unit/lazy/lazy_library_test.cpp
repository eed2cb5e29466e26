#include "berth/sdk/lazy_library.hpp"

#include <archive.h>
#include <gtest/gtest.h>

#include <cstring>
#include <string>

namespace {

constexpr berth::sdk::LazyLibrary kZlib{"libz.so.1", "zlib1g"};

TEST(LazyLibrary, ResolvesASymbolOfALibraryNotYetLoaded) {
  auto* version =
      reinterpret_cast<const char* (*)()>(berth::sdk::lazy_symbol(kZlib, "zlibVersion"));
  ASSERT_NE(version, nullptr);
  EXPECT_EQ(std::string(version()).substr(0, 2), "1.");
  // The same library twice: the cached handle, the same address.
  EXPECT_EQ(berth::sdk::lazy_symbol(kZlib, "zlibVersion"), reinterpret_cast<void*>(version));
}

TEST(LazyLibraryDeathTest, AMissingLibraryNamesItAndThePackage) {
  constexpr berth::sdk::LazyLibrary kNone{"libberth-no-such-library.so.7", "berth-nothing"};
  EXPECT_EXIT((void)berth::sdk::lazy_symbol(kNone, "f"), testing::ExitedWithCode(125),
              "Error: load libberth-no-such-library.so.7: .*install the package berth-nothing");
}

TEST(LazyLibraryDeathTest, AMissingSymbolNamesIt) {
  EXPECT_EXIT((void)berth::sdk::lazy_symbol(kZlib, "berth_no_such_function"),
              testing::ExitedWithCode(125),
              "Error: find berth_no_such_function in libz.so.1: .*zlib1g");
}

// The libarchive stubs forward, arguments and results included (the variadic one too).
TEST(LazyArchive, StubsForwardToLibarchive) {
  struct archive* a = archive_write_new();
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(archive_write_set_format_pax_restricted(a), ARCHIVE_OK);
  archive_set_error(a, 42, "layer %s: %d bad entries", "sha256:ab", 3);
  EXPECT_EQ(archive_errno(a), 42);
  EXPECT_STREQ(archive_error_string(a), "layer sha256:ab: 3 bad entries");
  archive_clear_error(a);
  EXPECT_EQ(archive_error_string(a), nullptr);
  EXPECT_EQ(archive_write_free(a), ARCHIVE_OK);
}

}  // namespace
