#pragma once
// The layer pipeline: a compressed blob read once -> sha256 of the blob -> inflate (ISA-L igzip,
// zstd, or none) -> sha256 of the tar (diff ID) and tar-split record -> the driver's apply_diff
// through a socket pair, extraction on its own thread.
#include <cstdint>
#include <functional>
#include <string>

#include "berth/image/manifest.hpp"
#include "berth/sdk/result.hpp"
#include "berth/sdk/storage.hpp"
#include "berth/store/store.hpp"

namespace berth::image {

struct BlobRange {
  int fd = -1;
  uint64_t offset = 0;
  int64_t length = -1;  // -1: to the end (read(2) from the current position when not seekable)
};

struct LayerInput {
  BlobRange blob;
  std::string expected_digest;   // of the blob as stored; "" to skip the check
  std::string expected_diff_id;  // from the config; always checked
  std::string what;              // "image docker.io/library/busybox:latest layer 2/3" for errors
  // Called after each read of the blob with the bytes read so far (progress bars); may be empty.
  std::function<void(uint64_t)> on_read;
};

// Applies the layer into driver layer `layer_id` (already created) and writes its tar-split
// record to `tar_split_path`. Error naming the digest on any mismatch.
Result<store::LayerFill> apply_layer(const LayerInput& in, sdk::StorageDriver& driver,
                                     const std::string& layer_id,
                                     const std::string& tar_split_path);

// Writes the layer's uncompressed tar, bit-identical to the one applied, from its tar-split
// record and the layer's files; verifies it against the layer's diff ID.
Result<void> write_layer_tar(store::Store& store, const store::LayerRecord& layer, int out_fd);

// One pass over a blob: digests and sizes, the uncompressed bytes written to `out_fd` (-1: none).
Result<store::LayerFill> digest_stream(const BlobRange& blob, int out_fd);
Result<void> decompress_to(int in_fd, int out_fd, const std::string& what);

Compression sniff_compression(const unsigned char* p, size_t n);

}  // namespace berth::image
