#pragma once
// Small file helpers shared by every module. Each returns an Error naming the path.
#include <filesystem>
#include <string>
#include <string_view>

#include "berth/sdk/result.hpp"
#include "berth/sdk/unique_fd.hpp"

namespace berth::util {

Result<std::string> read_file(const std::filesystem::path& path);
// Writes to a temporary file beside `path`, fsyncs it and renames it into place.
Result<void> write_file_atomic(const std::filesystem::path& path, std::string_view content,
                               mode_t mode = 0644);
// mkdir -p; succeeds when the directory exists.
Result<void> make_dirs(const std::filesystem::path& path, mode_t mode = 0755);
// rm -rf; succeeds when nothing is there.
Result<void> remove_tree(const std::filesystem::path& path);
Result<UniqueFd> open_file(const std::filesystem::path& path, int flags, mode_t mode = 0644);
// Writes all of `data` to fd (retrying short writes and EINTR).
Result<void> write_all(int fd, std::string_view data, std::string_view what);

}  // namespace berth::util
