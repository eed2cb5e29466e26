#!/usr/bin/env bash
# The README's first command: set up, make a busybox image from local files (no network), and
# run a container from it.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
"$here/scripts/setup.sh"
berth="$here/build/bin/berth"
tar=$(mktemp --suffix=.tar)
trap 'rm -f "$tar"' EXIT
"$here/scripts/make-busybox-rootfs.sh" "$tar"
"$berth" import --change 'CMD ["/bin/sh"]' "$tar" localhost/busybox:latest >/dev/null
"$berth" images localhost/busybox
"$berth" run --rm localhost/busybox sh -c 'echo "hello from berth: $(hostname), pid $$, $(uname -r)"'
