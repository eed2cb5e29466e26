// libcrypto and ISA-L, loaded on first use (see berth/sdk/lazy_library.hpp). libcrypto alone was
// 120 of the 505 page faults of `berth --version` (its relocations), and `ps`, `run` or `stop`
// never hash or inflate anything. Every function of theirs core calls is listed here; one that is
// not is a link error, since neither library is linked.

#include <isa-l/igzip_lib.h>
#include <openssl/evp.h>

#include "berth/sdk/lazy_library.hpp"

namespace {
constexpr berth::sdk::LazyLibrary kCrypto{"libcrypto.so.3", "libssl3"};
constexpr berth::sdk::LazyLibrary kIsal{"libisal.so.2", "libisal2"};
}  // namespace

BERTH_LAZY_0(kCrypto, EVP_MD_CTX_new)
BERTH_LAZY_1(kCrypto, EVP_MD_CTX_free)
BERTH_LAZY_0(kCrypto, EVP_sha256)
BERTH_LAZY_3(kCrypto, EVP_DigestInit_ex)
BERTH_LAZY_3(kCrypto, EVP_DigestUpdate)
BERTH_LAZY_3(kCrypto, EVP_DigestFinal_ex)
BERTH_LAZY_3(kCrypto, EVP_EncodeBlock)
BERTH_LAZY_3(kCrypto, EVP_DecodeBlock)

BERTH_LAZY_1(kIsal, isal_inflate_init)
BERTH_LAZY_1(kIsal, isal_inflate_reset)
BERTH_LAZY_1(kIsal, isal_inflate)
BERTH_LAZY_1(kIsal, isal_deflate_init)
BERTH_LAZY_1(kIsal, isal_deflate)
