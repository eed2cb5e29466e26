#!/bin/sh
# abi.out_of_tree_plugin: a third party's view of the SDK. Installs the SDK component of the berth
# build, configures and builds sdk/examples/storage-example against it in a fresh tree, and runs
# that build's conformance test. Any failing step fails the test.
# usage: abi_test.sh <berth build dir> <example source dir> [cmake] [ctest]
set -eu
build=$1
example=$2
cmake=${3:-cmake}
ctest=${4:-ctest}

work=$(mktemp -d "${TMPDIR:-/tmp}/berth-abi-XXXXXX")
trap 'rm -rf "$work"' EXIT INT TERM
prefix=$work/prefix

step() { echo "abi_test: $*"; }

step "install the SDK component of $build into $prefix"
"$cmake" --install "$build" --component sdk --prefix "$prefix"

sdkdir=$(dirname "$(find "$prefix" -name BerthSDKConfig.cmake | head -n 1)")
if [ ! -f "$sdkdir/BerthSDKConfig.cmake" ]; then
  echo "abi_test: the install has no BerthSDKConfig.cmake" >&2
  exit 1
fi
if [ ! -f "$sdkdir/BerthConformance.cmake" ]; then
  echo "abi_test: the install has no BerthConformance.cmake" >&2
  exit 1
fi

step "configure $example out of tree"
"$cmake" -S "$example" -B "$work/build" -G Ninja -DCMAKE_PREFIX_PATH="$prefix" \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo

step "build"
"$cmake" --build "$work/build" -j2

plugin=$(find "$work/build" -name 'berth-storage-example.so' | head -n 1)
if [ -z "$plugin" ] || [ ! -f "$(dirname "$plugin")/berth-storage-example.json" ]; then
  echo "abi_test: the build produced no berth-storage-example.so with its sidecar" >&2
  exit 1
fi

step "run the conformance suite against $plugin"
"$ctest" --test-dir "$work/build" --output-on-failure
# ctest succeeds with zero tests: make sure the suite really ran.
"$ctest" --test-dir "$work/build" -N | grep -q 'conformance.storage.example' || {
  echo "abi_test: the out-of-tree build registered no conformance test" >&2
  exit 1
}
step "ok"
