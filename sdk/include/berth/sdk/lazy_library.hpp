#pragma once

// Libraries loaded on first use. Every berth process is short-lived, and on a VM each page a
// library's relocations touch is a page fault: libarchive (with libxml2, ICU, nettle, lzma, ...)
// and libcrypto were ~45% of `berth --version`'s start-up, while `ps`, `run` or `stop` never call
// them. A stub with the library function's own name (and its header's declaration) loads the
// library with dlopen on its first call and forwards; callers are unchanged.
//
//   constexpr berth::sdk::LazyLibrary kArchive{"libarchive.so.13", "libarchive13"};
//   BERTH_LAZY_2(kArchive, archive_read_support_format_tar)   // arity checked at compile time

#include <cstddef>
#include <tuple>

namespace berth::sdk {

struct LazyLibrary {
  const char* soname;   // what dlopen loads, e.g. "libarchive.so.13"
  const char* package;  // what the error tells an administrator to install
};

// The address of `name` in `lib`, loading it on first use. A library or symbol that cannot be
// loaded is a broken installation: the error names both and the process exits with 125.
void* lazy_symbol(const LazyLibrary& lib, const char* name) noexcept;

namespace lazy_detail {
template <typename F>
struct Signature;
template <typename R, typename... A>
struct Signature<R(A...)> {
  using Ret = R;
  static constexpr std::size_t kArity = sizeof...(A);
  template <std::size_t I>
  using Arg = std::tuple_element_t<I, std::tuple<A...>>;
};
}  // namespace lazy_detail

}  // namespace berth::sdk

#define BERTH_LAZY_SIG_(name) ::berth::sdk::lazy_detail::Signature<decltype(name)>
#define BERTH_LAZY_ARG_(name, i) BERTH_LAZY_SIG_(name)::template Arg<i>
#define BERTH_LAZY_HEAD_(lib, name, n)                                        \
  static_assert(BERTH_LAZY_SIG_(name)::kArity == (n), #name ": wrong arity"); \
  static auto* const fn_ = reinterpret_cast<decltype(&name)>(::berth::sdk::lazy_symbol(lib, #name))

#define BERTH_LAZY_0(lib, name)                  \
  extern "C" BERTH_LAZY_SIG_(name)::Ret name() { \
    BERTH_LAZY_HEAD_(lib, name, 0);              \
    return fn_();                                \
  }
#define BERTH_LAZY_1(lib, name)                                             \
  extern "C" BERTH_LAZY_SIG_(name)::Ret name(BERTH_LAZY_ARG_(name, 0) a0) { \
    BERTH_LAZY_HEAD_(lib, name, 1);                                         \
    return fn_(a0);                                                         \
  }
#define BERTH_LAZY_2(lib, name)                                             \
  extern "C" BERTH_LAZY_SIG_(name)::Ret name(BERTH_LAZY_ARG_(name, 0) a0,   \
                                             BERTH_LAZY_ARG_(name, 1) a1) { \
    BERTH_LAZY_HEAD_(lib, name, 2);                                         \
    return fn_(a0, a1);                                                     \
  }
#define BERTH_LAZY_3(lib, name)                                                                \
  extern "C" BERTH_LAZY_SIG_(name)::Ret name(                                                  \
      BERTH_LAZY_ARG_(name, 0) a0, BERTH_LAZY_ARG_(name, 1) a1, BERTH_LAZY_ARG_(name, 2) a2) { \
    BERTH_LAZY_HEAD_(lib, name, 3);                                                            \
    return fn_(a0, a1, a2);                                                                    \
  }
#define BERTH_LAZY_4(lib, name)                                                              \
  extern "C" BERTH_LAZY_SIG_(name)::Ret name(                                                \
      BERTH_LAZY_ARG_(name, 0) a0, BERTH_LAZY_ARG_(name, 1) a1, BERTH_LAZY_ARG_(name, 2) a2, \
      BERTH_LAZY_ARG_(name, 3) a3) {                                                         \
    BERTH_LAZY_HEAD_(lib, name, 4);                                                          \
    return fn_(a0, a1, a2, a3);                                                              \
  }
#define BERTH_LAZY_5(lib, name)                                                              \
  extern "C" BERTH_LAZY_SIG_(name)::Ret name(                                                \
      BERTH_LAZY_ARG_(name, 0) a0, BERTH_LAZY_ARG_(name, 1) a1, BERTH_LAZY_ARG_(name, 2) a2, \
      BERTH_LAZY_ARG_(name, 3) a3, BERTH_LAZY_ARG_(name, 4) a4) {                            \
    BERTH_LAZY_HEAD_(lib, name, 5);                                                          \
    return fn_(a0, a1, a2, a3, a4);                                                          \
  }
