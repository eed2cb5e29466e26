#!/usr/bin/env bash
# Sets up (dependencies, build) and runs every test: GoogleTest units, conformance suites, the
# out-of-tree plugin ABI test and the end-to-end tests of the berth binary. Run as root.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build=${BERTH_BUILD_DIR:-$here/build}
"$here/scripts/setup.sh"
cd "$build"
ctest --output-on-failure -j"$(nproc)" "$@"
