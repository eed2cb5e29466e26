#include "layer_pipeline.hpp"

#include <fcntl.h>
#include <isa-l/igzip_lib.h>
#include <linux/openat2.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <zstd.h>

#include <cstring>
#include <thread>
#include <vector>

#include "berth/util/digest.hpp"
#include "berth/util/fs.hpp"
#include "tar_split.hpp"

namespace berth::image {

namespace {

constexpr size_t kBuf = 1 << 20;

// Reads the blob range sequentially.
class RangeReader {
 public:
  explicit RangeReader(const BlobRange& r, std::function<void(uint64_t)> on_read = {})
      : r_(r), pos_(r.offset), on_read_(std::move(on_read)) {}
  // 0 at the end.
  Result<size_t> read(char* buf, size_t n) {
    if (r_.length >= 0) {
      uint64_t left = static_cast<uint64_t>(r_.length) - (pos_ - r_.offset);
      n = static_cast<size_t>(std::min<uint64_t>(n, left));
      if (n == 0) {
        return size_t{0};
      }
    }
    for (;;) {
      ssize_t got =
          r_.length >= 0 ? ::pread(r_.fd, buf, n, static_cast<off_t>(pos_)) : ::read(r_.fd, buf, n);
      if (got < 0 && errno == EINTR) {
        continue;
      }
      if (got < 0) {
        return fail_errno("read layer blob", "");
      }
      if (got == 0 && r_.length >= 0) {
        return fail(Errc::Corrupt, "layer blob is truncated");
      }
      pos_ += static_cast<uint64_t>(got);
      if (on_read_) {
        on_read_(pos_ - r_.offset);
      }
      return static_cast<size_t>(got);
    }
  }

 private:
  BlobRange r_;
  uint64_t pos_;
  std::function<void(uint64_t)> on_read_;
};

// Feeds the extractor; once it stops reading (done or failed) data is only hashed.
class Sink {
 public:
  Sink(int fd, TarSplitter* ts, bool socket = true)
      : fd_(fd), ts_(ts), socket_(socket), closed_(fd < 0) {}
  Result<void> put(const char* p, size_t n) {
    diff_.update(p, n);
    if (ts_) {
      ts_->feed(p, n);
    }
    size_ += n;
    if (!socket_ && !closed_) {
      return util::write_all(fd_, std::string_view(p, n), "decompressed stream");
    }
    while (n > 0 && !closed_) {
      ssize_t w = ::send(fd_, p, n, MSG_NOSIGNAL);
      if (w < 0 && errno == EINTR) {
        continue;
      }
      if (w < 0 && (errno == EPIPE || errno == ECONNRESET)) {
        closed_ = true;
        break;
      }
      if (w < 0) {
        return fail_errno("write layer stream to the storage driver", "");
      }
      p += w;
      n -= static_cast<size_t>(w);
    }
    return {};
  }
  util::Sha256 diff_;
  uint64_t size_ = 0;

 private:
  int fd_;
  TarSplitter* ts_;
  bool socket_;
  bool closed_;
};

Result<void> inflate_gzip(RangeReader& in, util::Sha256& blob_hash, uint64_t& blob_size,
                          const std::vector<char>& first, Sink& out) {
  inflate_state st;
  isal_inflate_init(&st);
  st.crc_flag = ISAL_GZIP;
  std::vector<char> ibuf(std::max(kBuf, first.size()));
  std::vector<char> obuf(kBuf);
  std::memcpy(ibuf.data(), first.data(), first.size());
  st.next_in = reinterpret_cast<uint8_t*>(ibuf.data());
  st.avail_in = static_cast<uint32_t>(first.size());
  bool eof = false;
  bool member_done = false;
  for (;;) {
    if (st.avail_in == 0 && !eof) {
      BERTH_TRY(size_t n, in.read(ibuf.data(), ibuf.size()));
      if (n == 0) {
        eof = true;
      } else {
        blob_hash.update(ibuf.data(), n);
        blob_size += n;
        st.next_in = reinterpret_cast<uint8_t*>(ibuf.data());
        st.avail_in = static_cast<uint32_t>(n);
      }
    }
    if (st.avail_in == 0 && eof) {
      if (!member_done) {
        return fail(Errc::Corrupt, "gzip stream ends early");
      }
      return {};
    }
    if (member_done) {
      // Another gzip member follows (concatenated gzip); zero padding after the end is ignored.
      bool zeros = true;
      for (uint32_t i = 0; i < st.avail_in; ++i) {
        if (st.next_in[i] != 0) {
          zeros = false;
          break;
        }
      }
      if (zeros) {
        st.avail_in = 0;
        continue;
      }
      uint8_t* next = st.next_in;
      uint32_t avail = st.avail_in;
      isal_inflate_reset(&st);
      st.crc_flag = ISAL_GZIP;
      st.next_in = next;
      st.avail_in = avail;
      member_done = false;
    }
    st.next_out = reinterpret_cast<uint8_t*>(obuf.data());
    st.avail_out = static_cast<uint32_t>(obuf.size());
    int rc = isal_inflate(&st);
    if (rc < 0) {
      return fail(Errc::Corrupt, "gzip stream is damaged (igzip error " + std::to_string(rc) + ")");
    }
    size_t produced = obuf.size() - st.avail_out;
    if (produced) {
      BERTH_TRYV(out.put(obuf.data(), produced));
    }
    if (st.block_state == ISAL_BLOCK_FINISH) {
      member_done = true;
    }
  }
}

Result<void> inflate_zstd(RangeReader& in, util::Sha256& blob_hash, uint64_t& blob_size,
                          const std::vector<char>& first, Sink& out) {
  std::unique_ptr<ZSTD_DCtx, decltype(&ZSTD_freeDCtx)> dctx(ZSTD_createDCtx(), ZSTD_freeDCtx);
  std::vector<char> ibuf(kBuf);
  std::vector<char> obuf(ZSTD_DStreamOutSize() * 4);
  std::memcpy(ibuf.data(), first.data(), first.size());
  size_t have = first.size();
  size_t last = 1;
  for (;;) {
    if (have == 0) {
      BERTH_TRY(size_t n, in.read(ibuf.data(), ibuf.size()));
      if (n == 0) {
        if (last != 0) {
          return fail(Errc::Corrupt, "zstd stream ends early");
        }
        return {};
      }
      blob_hash.update(ibuf.data(), n);
      blob_size += n;
      have = n;
    }
    ZSTD_inBuffer ib{ibuf.data(), have, 0};
    while (ib.pos < ib.size) {
      ZSTD_outBuffer ob{obuf.data(), obuf.size(), 0};
      last = ZSTD_decompressStream(dctx.get(), &ob, &ib);
      if (ZSTD_isError(last)) {
        return fail(Errc::Corrupt,
                    std::string("zstd stream is damaged: ") + ZSTD_getErrorName(last));
      }
      if (ob.pos) {
        BERTH_TRYV(out.put(obuf.data(), ob.pos));
      }
    }
    have = 0;
  }
}

Result<void> copy_plain(RangeReader& in, util::Sha256& blob_hash, uint64_t& blob_size,
                        const std::vector<char>& first, Sink& out) {
  BERTH_TRYV(out.put(first.data(), first.size()));
  std::vector<char> buf(kBuf);
  for (;;) {
    BERTH_TRY(size_t n, in.read(buf.data(), buf.size()));
    if (n == 0) {
      return {};
    }
    blob_hash.update(buf.data(), n);
    blob_size += n;
    BERTH_TRYV(out.put(buf.data(), n));
  }
}

int open_in_root(const std::string& root, std::string_view rel) {
  int dir = ::open(root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir < 0) {
    return -1;
  }
  open_how how{};
  how.flags = O_RDONLY | O_CLOEXEC | O_NOFOLLOW;
  how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
  std::string p(rel);
  int fd = static_cast<int>(::syscall(SYS_openat2, dir, p.c_str(), &how, sizeof how));
  int err = errno;
  ::close(dir);
  errno = err;
  return fd;
}

Result<void> pump(RangeReader& reader, util::Sha256& blob_hash, uint64_t& blob_size,
                  std::vector<char>& first, Sink& sink) {
  size_t got = 0;
  while (got < first.size()) {
    BERTH_TRY(size_t n, reader.read(first.data() + got, first.size() - got));
    if (n == 0) {
      break;
    }
    got += n;
  }
  first.resize(got);
  blob_hash.update(first.data(), got);
  blob_size += got;
  switch (sniff_compression(reinterpret_cast<const unsigned char*>(first.data()), got)) {
    case Compression::Gzip:
      return inflate_gzip(reader, blob_hash, blob_size, first, sink);
    case Compression::Zstd:
      return inflate_zstd(reader, blob_hash, blob_size, first, sink);
    case Compression::None:
      break;
  }
  return copy_plain(reader, blob_hash, blob_size, first, sink);
}

}  // namespace

Result<store::LayerFill> digest_stream(const BlobRange& blob, int out_fd) {
  RangeReader reader(blob);
  util::Sha256 blob_hash;
  uint64_t blob_size = 0;
  std::vector<char> first(512);
  Sink sink(out_fd, nullptr, false);
  BERTH_TRYV(pump(reader, blob_hash, blob_size, first, sink));
  store::LayerFill f;
  f.compressed_digest = blob_hash.digest();
  f.compressed_size = static_cast<int64_t>(blob_size);
  f.diff_id = sink.diff_.digest();
  f.uncompressed_size = static_cast<int64_t>(sink.size_);
  return f;
}

Result<void> decompress_to(int in_fd, int out_fd, const std::string& what) {
  struct stat st {};
  if (::fstat(in_fd, &st) != 0) {
    return fail_errno("stat", what);
  }
  auto r = digest_stream(BlobRange{in_fd, 0, st.st_size}, out_fd);
  if (!r) {
    return fail(std::move(r).error().wrap(what));
  }
  return {};
}

Compression sniff_compression(const unsigned char* p, size_t n) {
  if (n >= 2 && p[0] == 0x1f && p[1] == 0x8b) {
    return Compression::Gzip;
  }
  if (n >= 4 && p[0] == 0x28 && p[1] == 0xb5 && p[2] == 0x2f && p[3] == 0xfd) {
    return Compression::Zstd;
  }
  return Compression::None;
}

Result<store::LayerFill> apply_layer(const LayerInput& in, sdk::StorageDriver& driver,
                                     const std::string& layer_id,
                                     const std::string& tar_split_path) {
  auto ctx = [&](Error e) { return std::move(e).wrap(in.what); };
  RangeReader reader(in.blob, in.on_read);
  util::Sha256 blob_hash;
  uint64_t blob_size = 0;
  std::vector<char> first(512);
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
    return fail(ctx(Error::from_errno("socketpair", "for layer " + layer_id, errno)));
  }
  UniqueFd wr(sv[0]);
  int rd = sv[1];
  int sndbuf = 1 << 20;
  (void)::setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
  Result<uint64_t> applied = 0;
  std::thread extractor([&] {
    applied = driver.apply_diff(layer_id, rd, sdk::ApplyOptions{});
    ::close(rd);  // the writer sees EPIPE and goes on hashing
  });
  TarSplitter ts;
  Sink sink(wr.get(), &ts);
  Result<void> pumped = pump(reader, blob_hash, blob_size, first, sink);
  ::shutdown(wr.get(), SHUT_WR);
  extractor.join();
  if (!pumped) {
    return fail(ctx(std::move(pumped).error()));
  }
  std::string blob_digest = blob_hash.digest();
  if (!in.expected_digest.empty() && blob_digest != in.expected_digest) {
    return fail(Errc::Corrupt, in.what + ": blob digest mismatch: expected " + in.expected_digest +
                                   ", got " + blob_digest + " (the archive is damaged or altered)");
  }
  std::string diff_id = sink.diff_.digest();
  if (diff_id != in.expected_diff_id) {
    return fail(Errc::Corrupt, in.what + ": diff ID mismatch: the config says " +
                                   in.expected_diff_id + ", the layer's content is " + diff_id +
                                   " (the archive is damaged or altered)");
  }
  if (!applied) {
    return fail(ctx(std::move(applied).error()));
  }
  if (auto r = write_tar_split_file(tar_split_path, ts.finish()); !r) {
    return fail(ctx(std::move(r).error()));
  }
  store::LayerFill fill;
  fill.diff_id = diff_id;
  fill.compressed_digest = blob_digest;
  fill.compressed_size = static_cast<int64_t>(blob_size);
  fill.uncompressed_size = static_cast<int64_t>(sink.size_);
  return fill;
}

Result<void> write_layer_tar(store::Store& store, const store::LayerRecord& layer, int out_fd) {
  auto ctx = [&](Error e) { return std::move(e).wrap("layer " + layer.id); };
  auto rec = read_tar_split_file(store.layer_meta_path(layer.id, ".tar-split"));
  if (!rec) {
    return fail(ctx(std::move(rec).error()));
  }
  auto root_r = store.driver().layer_path(layer.id);
  if (!root_r) {
    return fail(ctx(std::move(root_r).error()));
  }
  const std::string& root = *root_r;
  util::Sha256 h;
  std::vector<char> buf(kBuf);
  auto out = [&](std::string_view d) -> Result<void> {
    h.update(d);
    return util::write_all(out_fd, d, "layer tar");
  };
  auto raw = [&](std::string_view d) { return out(d); };
  auto file = [&](std::string_view path, uint64_t size) -> Result<void> {
    int fd = open_in_root(root, path);
    if (fd < 0) {
      return fail_errno("open layer file", root + "/" + std::string(path));
    }
    UniqueFd ufd(fd);
    uint64_t left = size;
    while (left > 0) {
      ssize_t n = ::read(fd, buf.data(), static_cast<size_t>(std::min<uint64_t>(left, buf.size())));
      if (n < 0 && errno == EINTR) {
        continue;
      }
      if (n < 0) {
        return fail_errno("read layer file", root + "/" + std::string(path));
      }
      if (n == 0) {
        return fail(Errc::Corrupt, "layer file " + root + "/" + std::string(path) +
                                       " is shorter than when it was stored");
      }
      BERTH_TRYV(out(std::string_view(buf.data(), static_cast<size_t>(n))));
      left -= static_cast<uint64_t>(n);
    }
    return {};
  };
  if (auto r = walk_tar_split(*rec, raw, file); !r) {
    return fail(ctx(std::move(r).error()));
  }
  std::string got = h.digest();
  if (got != layer.diff_id) {
    return fail(Errc::Corrupt, "layer " + layer.id +
                                   ": its files changed since it was stored "
                                   "(diff ID " +
                                   got + ", expected " + layer.diff_id +
                                   "); run `berth system check --repair`");
  }
  return {};
}

}  // namespace berth::image
