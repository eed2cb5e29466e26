/* The plugin descriptor: a plain C struct, free of pointers and relocations, placed in its own ELF
 * section so that the loader can read and check it from the file before the shared object is
 * mapped and before any of the plugin's code (static constructors included) runs. */
#ifndef BERTH_SDK_DESCRIPTOR_H
#define BERTH_SDK_DESCRIPTOR_H

#include <stdint.h>

#define BERTH_SDK_ABI_MAJOR 1
#define BERTH_SDK_ABI_MINOR 0

#define BERTH_DESCRIPTOR_SYMBOL "berth_plugin_descriptor_v1"
#define BERTH_DESCRIPTOR_SECTION ".berth_plugin"
#define BERTH_FACTORY_SYMBOL "berth_plugin_factory_v1"
#define BERTH_DESCRIPTOR_MAGIC 0x48545242u /* "BRTH" */

#define BERTH_STR_INNER(x) #x
#define BERTH_STR(x) BERTH_STR_INNER(x)

/* The C++ ABI a plugin was built for; plugin and core must agree exactly. */
#if defined(__GXX_ABI_VERSION) && defined(_GLIBCXX_USE_CXX11_ABI)
#define BERTH_BUILD_KEY \
  "itanium-" BERTH_STR(__GXX_ABI_VERSION) ";libstdc++-cxx11abi" BERTH_STR(_GLIBCXX_USE_CXX11_ABI)
#else
#define BERTH_BUILD_KEY "unknown"
#endif

#ifdef __cplusplus
extern "C" {
#endif

typedef struct berth_plugin_descriptor {
  uint32_t magic;       /* BERTH_DESCRIPTOR_MAGIC */
  uint32_t struct_size; /* sizeof(berth_plugin_descriptor) of the SDK that built the plugin */
  uint32_t abi_major;   /* BERTH_SDK_ABI_MAJOR: must equal the core's */
  uint32_t abi_minor;   /* BERTH_SDK_ABI_MINOR: must be <= the core's */
  char kind[32];        /* "berth.storage.v1", ... */
  char name[32];        /* "vfs" */
  char aliases[96];     /* comma-separated, may be empty */
  char version[32];     /* the plugin's own version */
  char licence[32];     /* SPDX identifier */
  char build_key[64];   /* BERTH_BUILD_KEY */
  char description[128];
} berth_plugin_descriptor;

#ifdef __cplusplus
}
#endif

#endif
