#include "berth/util/digest.hpp"

#include <openssl/evp.h>
#include <sys/random.h>

#include <cassert>
#include <cerrno>
#include <cstdio>

namespace berth::util {

namespace {
std::string to_hex(const unsigned char* p, size_t n) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string s(n * 2, '0');
  for (size_t i = 0; i < n; ++i) {
    s[2 * i] = kHex[p[i] >> 4];
    s[2 * i + 1] = kHex[p[i] & 15];
  }
  return s;
}
}  // namespace

struct Sha256::Impl {
  EVP_MD_CTX* ctx = nullptr;
  bool done = false;
};

Sha256::Sha256() : impl_(std::make_unique<Impl>()) {
  impl_->ctx = EVP_MD_CTX_new();
  assert(impl_->ctx != nullptr);
  int ok = EVP_DigestInit_ex(impl_->ctx, EVP_sha256(), nullptr);
  assert(ok == 1);
  (void)ok;
}

Sha256::~Sha256() {
  EVP_MD_CTX_free(impl_->ctx);
}

void Sha256::update(const void* data, size_t len) {
  assert(!impl_->done);
  EVP_DigestUpdate(impl_->ctx, data, len);
}

std::string Sha256::hex() {
  assert(!impl_->done);
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  EVP_DigestFinal_ex(impl_->ctx, md, &n);
  impl_->done = true;
  return to_hex(md, n);
}

std::string Sha256::digest() {
  return "sha256:" + hex();
}

std::string sha256_digest(std::string_view data) {
  Sha256 h;
  h.update(data);
  return h.digest();
}

Result<void> validate_digest(std::string_view digest) {
  auto colon = digest.find(':');
  if (colon == std::string_view::npos) {
    return fail(Errc::InvalidArgument, "invalid digest '" + std::string(digest) +
                                           "': expected algorithm:hex, e.g. sha256:...");
  }
  auto algo = digest.substr(0, colon);
  auto hex = digest.substr(colon + 1);
  size_t want = algo == "sha256" ? 64 : algo == "sha512" ? 128 : 0;
  if (want == 0) {
    return fail(Errc::NotSupported, "unsupported digest algorithm '" + std::string(algo) + "'");
  }
  if (hex.size() != want || hex.find_first_not_of("0123456789abcdef") != std::string_view::npos) {
    return fail(Errc::InvalidArgument, "invalid digest '" + std::string(digest) + "'");
  }
  return {};
}

std::string random_id() {
  unsigned char b[32];
  // The kernel's generator, as Podman's crypto/rand: no library to load for an id.
  size_t got = 0;
  while (got < sizeof(b)) {
    ssize_t n = ::getrandom(b + got, sizeof(b) - got, 0);
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n <= 0) {
      std::abort();  // getrandom failing is a broken host, not an input error
    }
    got += static_cast<size_t>(n);
  }
  return to_hex(b, sizeof(b));
}

}  // namespace berth::util
