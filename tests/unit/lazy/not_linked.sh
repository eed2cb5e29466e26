#!/bin/sh
# Fails when one of the given ELF files needs (DT_NEEDED) a library berth loads on first use.
status=0
for f in "$@"; do
  needed=$(readelf -d "$f" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p') || exit 2
  [ -n "$needed" ] || { echo "no DT_NEEDED entries read from $f" >&2; exit 2; }
  for lib in libarchive.so.13 libcrypto.so.3 libisal.so.2; do
    if echo "$needed" | grep -qx "$lib"; then
      echo "$f links $lib: it must load on first use (berth/sdk/lazy_library.hpp)" >&2
      status=1
    fi
  done
done
exit $status
