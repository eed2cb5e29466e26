#pragma once
// SHA-256 through OpenSSL's EVP (uses the CPU's SHA extensions), incremental or one-shot.
#include <memory>
#include <string>
#include <string_view>

#include "berth/sdk/result.hpp"

namespace berth::util {

class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;
  void update(const void* data, size_t len);
  void update(std::string_view s) { update(s.data(), s.size()); }
  // "sha256:<64 hex>"; the object cannot be updated afterwards.
  std::string digest();
  std::string hex();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// "sha256:<hex>" of the bytes.
std::string sha256_digest(std::string_view data);
// Checks "algo:hex" form of an OCI digest; only sha256 and sha512 are accepted.
Result<void> validate_digest(std::string_view digest);
// 64 random hex characters (a container, layer or volume id).
std::string random_id();

}  // namespace berth::util
