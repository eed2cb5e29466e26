#include "berth/sdk/lazy_library.hpp"

#include <dlfcn.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <mutex>
#include <string>

namespace berth::sdk {

namespace {

[[noreturn]] void broken_install(const LazyLibrary& lib, const char* what, const char* detail) {
  // No Result to return through a C function's signature; this is an installation fault.
  std::fprintf(stderr, "Error: %s %s: %s (install the package %s)\n", what, lib.soname, detail,
               lib.package);
  std::fflush(stderr);
  ::_exit(125);
}

}  // namespace

void* lazy_symbol(const LazyLibrary& lib, const char* name) noexcept {
  // One handle per library, however many stubs ask; dlopen itself is reference-counted and
  // thread-safe, the cache only saves its path search.
  static std::mutex mu;
  static struct Entry {
    const char* soname;
    void* handle;
  } cache[8];
  void* handle = nullptr;
  {
    std::lock_guard lock(mu);
    for (auto& e : cache) {
      if (e.soname != nullptr && std::strcmp(e.soname, lib.soname) == 0) {
        handle = e.handle;
        break;
      }
    }
    if (handle == nullptr) {
      handle = ::dlopen(lib.soname, RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE);
      if (handle == nullptr) {
        const char* err = ::dlerror();
        broken_install(lib, "load", err != nullptr ? err : "not found");
      }
      for (auto& e : cache) {
        if (e.soname == nullptr) {
          e = {lib.soname, handle};
          break;
        }
      }
    }
  }
  ::dlerror();
  void* sym = ::dlsym(handle, name);
  if (sym == nullptr) {
    const char* err = ::dlerror();
    std::string what = std::string("find ") + name + " in";
    broken_install(lib, what.c_str(), err != nullptr ? err : "no such symbol");
  }
  return sym;
}

}  // namespace berth::sdk
