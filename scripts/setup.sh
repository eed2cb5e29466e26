#!/usr/bin/env bash
# Installs every build and test dependency from Debian's packages (quick when all is there),
# then configures and builds berth into ./build (ccache when present).
#   scripts/setup.sh            build dependencies + test dependencies, then build
#   BERTH_BUILD_DIR=dir         another build directory
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build=${BERTH_BUILD_DIR:-$here/build}

packages=(
  # build
  build-essential cmake ninja-build pkgconf ccache clang-format
  libboost-dev libboost-program-options-dev libboost-filesystem-dev
  nlohmann-json3-dev libspdlog-dev libfmt-dev libgtest-dev libgmock-dev
  libtomlplusplus-dev libyaml-cpp-dev libarchive-dev libseccomp-dev libcap-dev libzstd-dev
  libsqlite3-dev libisal-dev libssl-dev libcurl4-openssl-dev libmnl-dev
  # run and test
  busybox-static fuse-overlayfs uidmap catatonit skopeo docker-registry runc iproute2
  nftables libnftables-dev iptables slirp4netns passt curl procps
  python3 python3-jwt python3-cryptography python3-docker docker-compose apache2-utils tar gzip zstd
)

missing=()
while read -r pkg status; do
  [ "$status" = "installed" ] || missing+=("$pkg")
done < <(dpkg-query -W -f='${Package} ${db:Status-Status}\n' "${packages[@]}" 2>/dev/null || true)
# dpkg-query prints nothing for packages it has never heard of.
for pkg in "${packages[@]}"; do
  dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null | grep -q '^installed$' ||
    [[ " ${missing[*]} " == *" $pkg "* ]] || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  if [ "$(id -u)" -ne 0 ]; then
    echo "setup: run as root (or install the packages above yourself)" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# --userns=auto as root takes its ranges from the user "containers" in /etc/subuid and
# /etc/subgid, as Podman does (the range Podman's documentation suggests).
if [ "$(id -u)" -eq 0 ]; then
  id containers >/dev/null 2>&1 || useradd --system --no-create-home containers
  for f in /etc/subuid /etc/subgid; do
    grep -qs '^containers:' "$f" || echo "containers:2147483647:2147483648" >>"$f"
  done
fi

# ccache: paths relative to the checkout, so a clone elsewhere (CI) reuses the cache.
export CCACHE_BASEDIR="$here"
export CCACHE_NOHASHDIR=1

# The registry package may start its own service on :5000; the tests start theirs on free ports.
cmake -S "$here" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" -j"$(nproc)"
echo "setup: built $build/bin/berth"
