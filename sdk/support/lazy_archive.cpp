// libarchive, loaded on first use (see lazy_library.hpp): only image load/save/import/export,
// cp, commit and layer application need it, and its dependencies (libxml2, ICU, nettle, lzma,
// lz4, bz2, acl) were a third of every berth process's start-up.
//
// Every libarchive function berth, its drivers and its tests call is listed here; one that is
// not is a link error (libarchive is not linked), never a silent fallback.

#include <archive.h>
#include <archive_entry.h>

#include <cstdarg>
#include <cstdio>

#include "berth/sdk/lazy_library.hpp"

namespace {
constexpr berth::sdk::LazyLibrary kArchive{"libarchive.so.13", "libarchive13"};
}  // namespace

BERTH_LAZY_1(kArchive, archive_clear_error)
BERTH_LAZY_1(kArchive, archive_entry_atime)
BERTH_LAZY_1(kArchive, archive_entry_atime_is_set)
BERTH_LAZY_1(kArchive, archive_entry_atime_nsec)
BERTH_LAZY_2(kArchive, archive_entry_copy_sourcepath)
BERTH_LAZY_2(kArchive, archive_entry_copy_stat)
BERTH_LAZY_1(kArchive, archive_entry_filetype)
BERTH_LAZY_1(kArchive, archive_entry_free)
BERTH_LAZY_1(kArchive, archive_entry_gid)
BERTH_LAZY_1(kArchive, archive_entry_hardlink)
BERTH_LAZY_1(kArchive, archive_entry_mtime)
BERTH_LAZY_1(kArchive, archive_entry_mtime_nsec)
BERTH_LAZY_0(kArchive, archive_entry_new)
BERTH_LAZY_1(kArchive, archive_entry_pathname)
BERTH_LAZY_1(kArchive, archive_entry_perm)
BERTH_LAZY_1(kArchive, archive_entry_rdevmajor)
BERTH_LAZY_1(kArchive, archive_entry_rdevminor)
BERTH_LAZY_2(kArchive, archive_entry_set_filetype)
BERTH_LAZY_2(kArchive, archive_entry_set_gid)
BERTH_LAZY_2(kArchive, archive_entry_set_gname)
BERTH_LAZY_2(kArchive, archive_entry_set_hardlink)
BERTH_LAZY_3(kArchive, archive_entry_set_mtime)
BERTH_LAZY_2(kArchive, archive_entry_set_pathname)
BERTH_LAZY_2(kArchive, archive_entry_set_perm)
BERTH_LAZY_2(kArchive, archive_entry_set_rdevmajor)
BERTH_LAZY_2(kArchive, archive_entry_set_rdevminor)
BERTH_LAZY_2(kArchive, archive_entry_set_size)
BERTH_LAZY_2(kArchive, archive_entry_set_symlink)
BERTH_LAZY_2(kArchive, archive_entry_set_uid)
BERTH_LAZY_2(kArchive, archive_entry_set_uname)
BERTH_LAZY_1(kArchive, archive_entry_size)
BERTH_LAZY_1(kArchive, archive_entry_symlink)
BERTH_LAZY_1(kArchive, archive_entry_uid)
BERTH_LAZY_1(kArchive, archive_entry_unset_atime)
BERTH_LAZY_1(kArchive, archive_entry_unset_birthtime)
BERTH_LAZY_1(kArchive, archive_entry_unset_ctime)
BERTH_LAZY_4(kArchive, archive_entry_xattr_add_entry)
BERTH_LAZY_1(kArchive, archive_entry_xattr_clear)
BERTH_LAZY_4(kArchive, archive_entry_xattr_next)
BERTH_LAZY_1(kArchive, archive_entry_xattr_reset)
BERTH_LAZY_1(kArchive, archive_errno)
BERTH_LAZY_1(kArchive, archive_error_string)
BERTH_LAZY_3(kArchive, archive_read_data)
BERTH_LAZY_4(kArchive, archive_read_data_block)
BERTH_LAZY_1(kArchive, archive_read_disk_descend)
BERTH_LAZY_4(kArchive, archive_read_disk_entry_from_file)
BERTH_LAZY_0(kArchive, archive_read_disk_new)
BERTH_LAZY_2(kArchive, archive_read_disk_open)
BERTH_LAZY_1(kArchive, archive_read_disk_set_symlink_hybrid)
BERTH_LAZY_1(kArchive, archive_read_disk_set_symlink_physical)
BERTH_LAZY_1(kArchive, archive_read_free)
BERTH_LAZY_0(kArchive, archive_read_new)
BERTH_LAZY_2(kArchive, archive_read_next_header)
BERTH_LAZY_2(kArchive, archive_read_next_header2)
BERTH_LAZY_5(kArchive, archive_read_open)
BERTH_LAZY_3(kArchive, archive_read_open_memory)
BERTH_LAZY_1(kArchive, archive_read_support_filter_all)
BERTH_LAZY_1(kArchive, archive_read_support_format_gnutar)
BERTH_LAZY_1(kArchive, archive_read_support_format_tar)
BERTH_LAZY_1(kArchive, archive_write_add_filter_gzip)
BERTH_LAZY_1(kArchive, archive_write_add_filter_none)
BERTH_LAZY_1(kArchive, archive_write_add_filter_zstd)
BERTH_LAZY_1(kArchive, archive_write_close)
BERTH_LAZY_3(kArchive, archive_write_data)
BERTH_LAZY_1(kArchive, archive_write_free)
BERTH_LAZY_2(kArchive, archive_write_header)
BERTH_LAZY_0(kArchive, archive_write_new)
BERTH_LAZY_2(kArchive, archive_write_open_fd)
BERTH_LAZY_2(kArchive, archive_write_open_filename)
BERTH_LAZY_4(kArchive, archive_write_open_memory)
BERTH_LAZY_2(kArchive, archive_write_set_bytes_in_last_block)
BERTH_LAZY_1(kArchive, archive_write_set_format_pax_restricted)
BERTH_LAZY_1(kArchive, archive_write_set_format_raw)

// Variadic: formatted here, passed on as one string.
extern "C" void archive_set_error(struct archive* a, int err, const char* fmt, ...) {
  static auto* const fn = reinterpret_cast<decltype(&archive_set_error)>(
      berth::sdk::lazy_symbol(kArchive, "archive_set_error"));
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  std::vsnprintf(msg, sizeof(msg), fmt, ap);
  va_end(ap);
  fn(a, err, "%s", msg);
}
