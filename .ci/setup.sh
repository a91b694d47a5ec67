#!/usr/bin/env bash
# .ci/setup.sh - install what libgdn needs on Debian 12 (sourced or run by
# .ci/main.sh, .ci/test.sh and .ci/run). Skips apt-get when every package is
# already installed or GDN_CI_SKIP_APT=1; uses sudo when not root.
#
#   build:   meson ninja-build pkg-config gcc g++ (g++: the C++11 header test)
#   OpenCL:  ICD loader and headers, PoCL (CPU), Mesa rusticl (llvmpipe), clinfo
#   libs:    CLBlast (GEMMs), jansson (checkpoint headers), Check (tests)
set -euo pipefail
GDN_PACKAGES=(meson ninja-build pkg-config gcc g++ python3 ocl-icd-opencl-dev
              opencl-c-headers libclblast-dev libjansson-dev check pocl-opencl-icd mesa-opencl-icd clinfo)

gdn_missing=()
for p in "${GDN_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
        gdn_missing+=("$p")
done
if [ "${GDN_CI_SKIP_APT:-0}" = 1 ] || [ ${#gdn_missing[@]} -eq 0 ]; then
    echo "setup: packages present (${#GDN_PACKAGES[@]} checked)"
else
    SUDO=
    [ "$(id -u)" = 0 ] || SUDO=sudo
    echo "setup: installing ${gdn_missing[*]}"
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -q </dev/null
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
        "${GDN_PACKAGES[@]}" </dev/null
fi
# PoCL caches compiled kernels; give it a folder that is surely writable.
export POCL_CACHE_DIR=${POCL_CACHE_DIR:-${TMPDIR:-/tmp}/gdn-ci/pocl-cache}
mkdir -p "$POCL_CACHE_DIR"
