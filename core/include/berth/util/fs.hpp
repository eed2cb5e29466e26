#pragma once
// Small file helpers shared by every module. Each returns an Error naming the path.
#include <filesystem>
#include <string>
#include <string_view>

#include "berth/sdk/result.hpp"
#include "berth/sdk/unique_fd.hpp"

namespace berth::util {

Result<std::string> read_file(const std::filesystem::path& path);
// Everything left to read from `fd`, to its end; errors name `what` (the path or the stream).
Result<std::string> read_all(int fd, std::string_view what);
// How far a write must survive: Durable fsyncs the data before the rename (it survives a power
// loss); Replace only renames (readers see the old or the new content, never a torn file, but a
// power loss may lose it). Files under a volatile root (see add_volatile_root) are never synced.
enum class Durability { Durable, Replace };

// Writes to a temporary file beside `path`, fsyncs it (see Durability) and renames it into place.
Result<void> write_file_atomic(const std::filesystem::path& path, std::string_view content,
                               mode_t mode = 0644, Durability durability = Durability::Durable);

// Declares a directory whose content does not outlive a reboot (the run root, a tmpfs as a rule):
// fsync there buys nothing, so write_file_atomic skips it. Thread-safe; roots accumulate.
void add_volatile_root(const std::filesystem::path& root);
bool under_volatile_root(const std::filesystem::path& path);
// mkdir -p; succeeds when the directory exists.
Result<void> make_dirs(const std::filesystem::path& path, mode_t mode = 0755);
// rm -rf; succeeds when nothing is there.
Result<void> remove_tree(const std::filesystem::path& path);
Result<UniqueFd> open_file(const std::filesystem::path& path, int flags, mode_t mode = 0644);
// Writes all of `data` to fd (retrying short writes and EINTR).
Result<void> write_all(int fd, std::string_view data, std::string_view what);

}  // namespace berth::util
