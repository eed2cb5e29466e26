#include "archive.hpp"
#include "tar_split.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <vector>

#include "berth/image/manifest.hpp"
#include "berth/util/fs.hpp"
#include "layer_pipeline.hpp"

namespace berth::image {

namespace {

Result<void> pread_all(int fd, char* buf, size_t n, uint64_t off, const std::string& what) {
  while (n > 0) {
    ssize_t got = ::pread(fd, buf, n, static_cast<off_t>(off));
    if (got < 0 && errno == EINTR) {
      continue;
    }
    if (got < 0) {
      return fail_errno("read", what);
    }
    if (got == 0) {
      return fail(Errc::Corrupt, what + ": archive is truncated");
    }
    buf += got;
    n -= static_cast<size_t>(got);
    off += static_cast<uint64_t>(got);
  }
  return {};
}

}  // namespace

std::string clean_archive_path(std::string_view p) {
  std::string s(p);
  for (;;) {
    if (s.starts_with("./")) {
      s.erase(0, 2);
    } else if (s.starts_with("/")) {
      s.erase(0, 1);
    } else {
      break;
    }
  }
  while (s.ends_with("/")) {
    s.pop_back();
  }
  return s;
}

Result<TarIndex> TarIndex::build(int fd, const std::string& what) {
  TarIndex idx;
  idx.fd_ = fd;
  idx.what_ = what;
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    return fail_errno("stat", what);
  }
  uint64_t end = static_cast<uint64_t>(st.st_size);
  uint64_t off = 0;
  std::string long_name;
  std::string pax_path;
  std::string long_link;
  char h[512];
  int entries = 0;
  while (off + 512 <= end) {
    BERTH_TRYV(pread_all(fd, h, 512, off, what));
    off += 512;
    bool zero = true;
    for (char c : h) {
      if (c) {
        zero = false;
        break;
      }
    }
    if (zero) {
      break;
    }
    unsigned sum = 0;
    for (int i = 0; i < 512; ++i) {
      sum += (i >= 148 && i < 156) ? ' ' : static_cast<unsigned char>(h[i]);
    }
    if (sum != parse_numeric(h + 148, 8)) {
      return fail(Errc::InvalidArgument, what +
                                             ": not a tar archive (bad header checksum at offset " +
                                             std::to_string(off - 512) + ")");
    }
    uint64_t size = parse_numeric(h + 124, 12);
    char type = h[156];
    uint64_t data = off;
    off += (size + 511) / 512 * 512;
    if (off > end) {
      return fail(Errc::Corrupt, what + ": archive is truncated");
    }
    if (type == 'L' || type == 'K' || type == 'x') {
      if (size > (1 << 20)) {
        return fail(Errc::InvalidArgument, what + ": oversized tar extension header");
      }
      std::string body(size, '\0');
      BERTH_TRYV(pread_all(fd, body.data(), size, data, what));
      if (type == 'L') {
        long_name = body.c_str();
      } else if (type == 'K') {
        long_link = body.c_str();
      } else {
        size_t i = 0;
        while (i < body.size()) {
          size_t sp = body.find(' ', i);
          if (sp == std::string::npos) {
            break;
          }
          size_t len = std::strtoull(body.substr(i, sp - i).c_str(), nullptr, 10);
          if (len == 0 || i + len > body.size()) {
            break;
          }
          std::string rec = body.substr(sp + 1, i + len - sp - 2);
          if (rec.starts_with("path=")) {
            pax_path = rec.substr(5);
          } else if (rec.starts_with("linkpath=")) {
            long_link = rec.substr(9);
          }
          i += len;
        }
      }
      continue;
    }
    if (type == 'g') {
      continue;
    }
    std::string name;
    if (!long_name.empty()) {
      name = long_name;
    } else if (!pax_path.empty()) {
      name = pax_path;
    } else {
      name = std::string(h, strnlen(h, 100));
      if (std::memcmp(h + 257, "ustar", 5) == 0 && h[345]) {
        name = std::string(h + 345, strnlen(h + 345, 155)) + "/" + name;
      }
    }
    TarEntry e;
    e.offset = data;
    e.size = size;
    e.type = type;
    e.link = !long_link.empty() ? long_link : std::string(h + 157, strnlen(h + 157, 100));
    long_name.clear();
    pax_path.clear();
    long_link.clear();
    idx.entries_[clean_archive_path(name)] = std::move(e);
    if (++entries > 1000000) {
      return fail(Errc::InvalidArgument, what + ": too many entries");
    }
  }
  return idx;
}

const TarEntry* TarIndex::find(std::string_view path) const {
  std::string p = clean_archive_path(path);
  for (int hops = 0; hops < 16; ++hops) {
    auto it = entries_.find(p);
    if (it == entries_.end()) {
      return nullptr;
    }
    const TarEntry& e = it->second;
    if (e.type == '1') {
      p = clean_archive_path(e.link);
    } else if (e.type == '2') {
      // docker save writes symlinks between layer directories: resolve relative to the entry.
      std::string base = p.substr(0, p.rfind('/') == std::string::npos ? 0 : p.rfind('/'));
      std::string t = e.link.starts_with("/") ? e.link : (base.empty() ? "" : base + "/") + e.link;
      std::vector<std::string> parts;
      size_t s = 0;
      while (s <= t.size()) {
        size_t n = t.find('/', s);
        std::string c = t.substr(s, n == std::string::npos ? n : n - s);
        if (c == "..") {
          if (!parts.empty()) {
            parts.pop_back();
          }
        } else if (!c.empty() && c != ".") {
          parts.push_back(c);
        }
        if (n == std::string::npos) {
          break;
        }
        s = n + 1;
      }
      p.clear();
      for (auto& c : parts) {
        p += (p.empty() ? "" : "/") + c;
      }
    } else {
      return &e;
    }
  }
  return nullptr;
}

Result<std::string> TarIndex::read(std::string_view path, size_t limit) const {
  const TarEntry* e = find(path);
  if (!e) {
    return fail(Errc::NotFound, what_ + ": no " + std::string(path) + " in the archive");
  }
  if (e->size > limit) {
    return fail(Errc::InvalidArgument, what_ + ": " + std::string(path) + " is too large (" +
                                           std::to_string(e->size) + " bytes)");
  }
  std::string out(e->size, '\0');
  BERTH_TRYV(pread_all(fd_, out.data(), out.size(), e->offset, what_));
  return out;
}

Result<void> TarWriter::header(std::string_view name, uint64_t size, char type, unsigned mode) {
  if (name.size() > 99) {
    return fail(Errc::InvalidArgument, "tar entry name too long: " + std::string(name));
  }
  char h[512] = {};
  std::memcpy(h, name.data(), name.size());
  std::snprintf(h + 100, 8, "%07o", mode);
  std::snprintf(h + 108, 8, "%07o", 0u);
  std::snprintf(h + 116, 8, "%07o", 0u);
  std::snprintf(h + 124, 12, "%011llo", static_cast<unsigned long long>(size));
  std::snprintf(h + 136, 12, "%011o", 0u);
  std::memset(h + 148, ' ', 8);
  h[156] = type;
  std::memcpy(h + 257,
              "ustar\0"
              "00",
              8);
  unsigned sum = 0;
  for (unsigned char c : h) {
    sum += c;
  }
  std::snprintf(h + 148, 8, "%06o", sum);
  return util::write_all(fd_, std::string_view(h, 512), "archive");
}

Result<void> TarWriter::add_dir(std::string_view name) {
  return header(std::string(name) + "/", 0, '5', 0755);
}

Result<void> TarWriter::begin_file(std::string_view name, uint64_t size) {
  pending_ = size;
  written_ = 0;
  return header(name, size, '0', 0644);
}

Result<void> TarWriter::write(std::string_view data) {
  written_ += data.size();
  return util::write_all(fd_, data, "archive");
}

Result<void> TarWriter::end_file() {
  if (written_ != pending_) {
    return fail(Errc::Internal, "tar entry size changed while writing");
  }
  static const char zeros[512] = {};
  size_t pad = (512 - pending_ % 512) % 512;
  return util::write_all(fd_, std::string_view(zeros, pad), "archive");
}

Result<void> TarWriter::add_file(std::string_view name, std::string_view content) {
  BERTH_TRYV(begin_file(name, content.size()));
  BERTH_TRYV(write(content));
  return end_file();
}

Result<void> TarWriter::finish() {
  static const char zeros[1024] = {};
  return util::write_all(fd_, std::string_view(zeros, sizeof zeros), "archive");
}

Result<UniqueFd> seekable_plain(int fd, const std::string& tmp_dir, const std::string& what) {
  unsigned char magic[4] = {};
  ssize_t got = ::pread(fd, magic, sizeof magic, 0);
  bool seekable = got >= 0;
  if (seekable && sniff_compression(magic, static_cast<size_t>(got)) == Compression::None) {
    int dup = ::fcntl(fd, F_DUPFD_CLOEXEC, 0);
    if (dup < 0) {
      return fail_errno("dup", what);
    }
    return UniqueFd(dup);
  }
  BERTH_TRYV(util::make_dirs(tmp_dir, 0700));
  int tfd = ::open(tmp_dir.c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
  if (tfd < 0) {
    return fail_errno("create temporary file in", tmp_dir);
  }
  UniqueFd tmp(tfd);
  // Reuse the layer pipeline's decompressors: a pass-through "layer" with no checks into the file.
  std::vector<char> buf(1 << 20);
  std::string head;
  off_t pos = 0;
  // Copy raw first, then decompress from the copy when needed.
  for (;;) {
    ssize_t n =
        seekable ? ::pread(fd, buf.data(), buf.size(), pos) : ::read(fd, buf.data(), buf.size());
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n < 0) {
      return fail_errno("read", what);
    }
    if (n == 0) {
      break;
    }
    pos += n;
    BERTH_TRYV(util::write_all(tfd, std::string_view(buf.data(), static_cast<size_t>(n)), what));
  }
  got = ::pread(tfd, magic, sizeof magic, 0);
  if (got < 0) {
    return fail_errno("read", what);
  }
  if (sniff_compression(magic, static_cast<size_t>(got)) == Compression::None) {
    return tmp;
  }
  int pfd = ::open(tmp_dir.c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
  if (pfd < 0) {
    return fail_errno("create temporary file in", tmp_dir);
  }
  UniqueFd plain(pfd);
  BERTH_TRYV(decompress_to(tfd, pfd, what));
  return plain;
}

}  // namespace berth::image
