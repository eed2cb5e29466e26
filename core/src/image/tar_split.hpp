#pragma once
// A record of a tar stream that lets it be rebuilt bit for bit from the extracted files, as
// containers/storage's tar-split does: header and padding bytes are kept, file contents are
// replaced by (path, size) references.
#include <cstdint>
#include <string>
#include <string_view>

#include "berth/sdk/result.hpp"

namespace berth::image {

// A numeric tar header field: octal text or GNU base-256.
uint64_t parse_numeric(const char* field, size_t size);

class TarSplitter {
 public:
  void feed(const char* p, size_t n);
  // The serialised record.
  std::string finish();

 private:
  void flush_raw();
  void on_header();
  void on_meta();
  enum class St { Header, FileData, MetaData, Pad };
  St st_ = St::Header;
  char hdr_[512];
  size_t hdr_fill_ = 0;
  uint64_t left_ = 0;
  uint64_t pad_ = 0;
  char meta_type_ = 0;
  std::string meta_;
  std::string long_name_;
  std::string pax_path_;
  int64_t pax_size_ = -1;
  std::string out_;
  std::string raw_;
};

// Calls raw(bytes) and file(path, size) in stream order.
template <class Raw, class File>
Result<void> walk_tar_split(std::string_view rec, Raw&& raw, File&& file);

Result<void> write_tar_split_file(const std::string& path, const std::string& record);
Result<std::string> read_tar_split_file(const std::string& path);

template <class Raw, class File>
Result<void> walk_tar_split(std::string_view rec, Raw&& raw, File&& file) {
  size_t i = 0;
  auto u32 = [&](uint32_t& v) {
    if (i + 4 > rec.size()) {
      return false;
    }
    v = 0;
    for (int k = 0; k < 4; ++k) {
      v = (v << 8) | static_cast<unsigned char>(rec[i + k]);
    }
    i += 4;
    return true;
  };
  while (i < rec.size()) {
    char t = rec[i++];
    uint32_t len = 0;
    if (!u32(len) || i + len > rec.size()) {
      return fail(Errc::Corrupt, "tar-split record is truncated");
    }
    std::string_view body = rec.substr(i, len);
    i += len;
    if (t == 'R') {
      BERTH_TRYV(raw(body));
    } else if (t == 'F') {
      if (i + 8 > rec.size()) {
        return fail(Errc::Corrupt, "tar-split record is truncated");
      }
      uint64_t size = 0;
      for (int k = 0; k < 8; ++k) {
        size = (size << 8) | static_cast<unsigned char>(rec[i + k]);
      }
      i += 8;
      BERTH_TRYV(file(body, size));
    } else {
      return fail(Errc::Corrupt, "tar-split record has an unknown entry type");
    }
  }
  return {};
}

}  // namespace berth::image
