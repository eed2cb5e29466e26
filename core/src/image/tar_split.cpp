#include "tar_split.hpp"

#include <zstd.h>

#include <cstring>

#include "berth/util/fs.hpp"

namespace berth::image {

uint64_t parse_numeric(const char* f, size_t n) {
  if (static_cast<unsigned char>(f[0]) & 0x80) {  // base-256
    uint64_t v = static_cast<unsigned char>(f[0]) & 0x7f;
    for (size_t i = 1; i < n; ++i) {
      v = (v << 8) | static_cast<unsigned char>(f[i]);
    }
    return v;
  }
  uint64_t v = 0;
  size_t i = 0;
  while (i < n && (f[i] == ' ' || f[i] == '\0')) {
    ++i;
  }
  for (; i < n && f[i] >= '0' && f[i] <= '7'; ++i) {
    v = v * 8 + static_cast<uint64_t>(f[i] - '0');
  }
  return v;
}


namespace {

void put_u32(std::string& out, uint32_t v) {
  for (int k = 3; k >= 0; --k) {
    out.push_back(static_cast<char>((v >> (8 * k)) & 0xff));
  }
}

std::string field(const char* f, size_t n) {
  return std::string(f, strnlen(f, n));
}

std::string clean_path(std::string p) {
  for (;;) {
    if (p.starts_with("./")) {
      p.erase(0, 2);
    } else if (p.starts_with("/")) {
      p.erase(0, 1);
    } else {
      break;
    }
  }
  return p;
}

}  // namespace

void TarSplitter::flush_raw() {
  if (raw_.empty()) {
    return;
  }
  out_.push_back('R');
  put_u32(out_, static_cast<uint32_t>(raw_.size()));
  out_ += raw_;
  raw_.clear();
}

void TarSplitter::feed(const char* p, size_t n) {
  while (n > 0) {
    size_t k = 0;
    switch (st_) {
      case St::Header:
        k = std::min(n, sizeof hdr_ - hdr_fill_);
        std::memcpy(hdr_ + hdr_fill_, p, k);
        raw_.append(p, k);
        hdr_fill_ += k;
        if (hdr_fill_ == sizeof hdr_) {
          hdr_fill_ = 0;
          on_header();
        }
        break;
      case St::FileData:
        k = static_cast<size_t>(std::min<uint64_t>(n, left_));
        left_ -= k;
        if (left_ == 0) {
          st_ = pad_ ? St::Pad : St::Header;
        }
        break;
      case St::MetaData:
        k = static_cast<size_t>(std::min<uint64_t>(n, left_));
        raw_.append(p, k);
        if (meta_type_ == 'L' || meta_type_ == 'x') {
          meta_.append(p, k);
        }
        left_ -= k;
        if (left_ == 0) {
          on_meta();
          st_ = pad_ ? St::Pad : St::Header;
        }
        break;
      case St::Pad:
        k = static_cast<size_t>(std::min<uint64_t>(n, pad_));
        raw_.append(p, k);
        pad_ -= k;
        if (pad_ == 0) {
          st_ = St::Header;
        }
        break;
    }
    p += k;
    n -= k;
  }
}

void TarSplitter::on_header() {
  bool zero = true;
  for (char c : hdr_) {
    if (c != 0) {
      zero = false;
      break;
    }
  }
  if (zero) {
    return;
  }
  char type = hdr_[156];
  uint64_t size = parse_numeric(hdr_ + 124, 12);
  bool meta = type == 'L' || type == 'K' || type == 'x' || type == 'g';
  if (!meta && pax_size_ >= 0) {
    size = static_cast<uint64_t>(pax_size_);
  }
  pad_ = (512 - size % 512) % 512;
  if (meta) {
    meta_type_ = type;
    meta_.clear();
    left_ = size;
    st_ = size ? St::MetaData : St::Header;
    if (!size) {
      on_meta();
    }
    return;
  }
  std::string name;
  if (!long_name_.empty()) {
    name = long_name_;
  } else if (!pax_path_.empty()) {
    name = pax_path_;
  } else {
    name = field(hdr_, 100);
    if (std::memcmp(hdr_ + 257, "ustar", 5) == 0) {
      std::string prefix = field(hdr_ + 345, 155);
      if (!prefix.empty()) {
        name = prefix + "/" + name;
      }
    }
  }
  long_name_.clear();
  pax_path_.clear();
  pax_size_ = -1;
  if (size == 0) {
    st_ = St::Header;
    return;
  }
  left_ = size;
  if (type == '0' || type == '\0' || type == '7') {
    flush_raw();
    name = clean_path(name);
    out_.push_back('F');
    put_u32(out_, static_cast<uint32_t>(name.size()));
    out_ += name;
    for (int k = 7; k >= 0; --k) {
      out_.push_back(static_cast<char>((size >> (8 * k)) & 0xff));
    }
    st_ = St::FileData;
  } else {
    meta_type_ = 0;
    st_ = St::MetaData;
  }
}

void TarSplitter::on_meta() {
  if (meta_type_ == 'L') {
    long_name_ = std::string(meta_.c_str());
  } else if (meta_type_ == 'x') {
    // "<len> key=value\n" records
    size_t i = 0;
    while (i < meta_.size()) {
      size_t sp = meta_.find(' ', i);
      if (sp == std::string::npos) {
        break;
      }
      size_t len = std::strtoull(meta_.substr(i, sp - i).c_str(), nullptr, 10);
      if (len == 0 || i + len > meta_.size()) {
        break;
      }
      std::string rec = meta_.substr(sp + 1, i + len - sp - 2);
      auto eq = rec.find('=');
      if (eq != std::string::npos) {
        std::string key = rec.substr(0, eq);
        if (key == "path") {
          pax_path_ = rec.substr(eq + 1);
        } else if (key == "size") {
          pax_size_ = std::strtoll(rec.substr(eq + 1).c_str(), nullptr, 10);
        }
      }
      i += len;
    }
  }
  meta_.clear();
}

std::string TarSplitter::finish() {
  flush_raw();
  return std::move(out_);
}

Result<void> write_tar_split_file(const std::string& path, const std::string& record) {
  std::string buf(ZSTD_compressBound(record.size()), '\0');
  size_t n = ZSTD_compress(buf.data(), buf.size(), record.data(), record.size(), 3);
  if (ZSTD_isError(n)) {
    return fail(Errc::Internal, "compress tar-split record " + path + ": " + ZSTD_getErrorName(n));
  }
  buf.resize(n);
  return util::write_file_atomic(path, buf, 0600);
}

Result<std::string> read_tar_split_file(const std::string& path) {
  BERTH_TRY(std::string z, util::read_file(path));
  unsigned long long size = ZSTD_getFrameContentSize(z.data(), z.size());
  if (size == ZSTD_CONTENTSIZE_ERROR || size == ZSTD_CONTENTSIZE_UNKNOWN || size > (1ull << 34)) {
    return fail(Errc::Corrupt, "tar-split record " + path + " is damaged");
  }
  std::string out(size, '\0');
  size_t n = ZSTD_decompress(out.data(), out.size(), z.data(), z.size());
  if (ZSTD_isError(n) || n != size) {
    return fail(Errc::Corrupt, "tar-split record " + path + " is damaged");
  }
  return out;
}

}  // namespace berth::image
