#!/usr/bin/env bash
# .ci/test.sh - set up and run every test: the README's test command, and
# what .ci/run runs in CI. Installs the packages first (.ci/setup.sh).
#
#   1. build with -Dwerror=true                           ($GDN_CI_BUILD, build-ci)
#      and a release build with -Dwerror=true             (build-ci-release)
#   2. every suite on PoCL                                (OCL_ICD_VENDORS=pocl.icd)
#      and `gdn bench --quick` as a smoke test
#   3. the device suites again on Mesa rusticl / llvmpipe (RUSTICL_ENABLE=llvmpipe)
#   4. an AddressSanitizer + UBSan build ($GDN_CI_ASAN_BUILD, build-ci-asan):
#      the status, runtime, cache, model, safetensors, sample and optim suites
#      on PoCL, leaks fail the tests
#      (.ci/lsan.supp silences only the OpenCL loader, PoCL and LLVM)
#
# Knobs (environment): GDN_CI_RUSTICL_TESTS (meson test selection for step 3,
# default "--suite gpu"), GDN_CI_SKIP_RUSTICL=1, GDN_CI_SKIP_ASAN=1,
# GDN_CI_VENDORS (folder of the .icd files, default /etc/OpenCL/vendors).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
. .ci/setup.sh
BUILD=${GDN_CI_BUILD:-build-ci}
ASAN_BUILD=${GDN_CI_ASAN_BUILD:-build-ci-asan}
REL_BUILD=${GDN_CI_REL_BUILD:-build-ci-release}
VENDORS=${GDN_CI_VENDORS:-/etc/OpenCL/vendors}
RUSTICL_TESTS=${GDN_CI_RUSTICL_TESTS:---suite gpu}

# Only the variables set below reach the tests.
unset GDN_DEVICE GDN_CL_DIR GDN_CACHE GDN_LOG OCL_ICD_VENDORS RUSTICL_ENABLE
export GDN_CACHE_DIR=$ROOT/$BUILD/gdn-cache
export MESON_TESTTHREADS=${MESON_TESTTHREADS:-$(nproc)}

T0=$SECONDS
TIMINGS=()
FAILED=()
report() {
    echo
    echo "==== timings"
    local t
    for t in "${TIMINGS[@]}"; do echo "$t"; done
    echo "$(printf '%5d s' $((SECONDS - T0)))  total"
    if [ ${#FAILED[@]} -gt 0 ]; then
        echo "FAILED: ${FAILED[*]}"
    fi
}
trap report EXIT
# Run a step; a failed step is recorded and the next ones still run (the
# step functions chain their commands with || return).
step() {
    local name=$1 t=$SECONDS status=ok
    shift
    echo
    echo "==== $name"
    "$@" || status=FAILED
    [ $status = ok ] || FAILED+=("[$name]")
    TIMINGS+=("$(printf '%5d s  %-6s' $((SECONDS - t)) $status) $name")
    [ $status = ok ]
}

setup() { # folder, meson options...
    local dir=$1
    shift
    if [ -d "$dir/meson-private" ]; then
        meson setup --reconfigure "$dir" "$@"
    else
        meson setup "$dir" "$@"
    fi
}

pocl() { env OCL_ICD_VENDORS="$VENDORS/pocl.icd" "$@"; }
rusticl() { env OCL_ICD_VENDORS="$VENDORS/rusticl.icd" RUSTICL_ENABLE=llvmpipe "$@"; }
keep_log() { cp "$1/meson-logs/testlog.txt" "$1/meson-logs/testlog-$2.txt"; }

build() {
    setup "$BUILD" -Dwerror=true || return
    meson compile -C "$BUILD"
}

test_pocl() {
    pocl "$BUILD/tools/gdn" info || return # fails when PoCL shows no device
    local st=0
    pocl meson test -C "$BUILD" --no-rebuild --print-errorlogs || st=$?
    keep_log "$BUILD" pocl
    return $st
}

test_rusticl() {
    rusticl "$BUILD/tools/gdn" info || return
    local st=0
    # shellcheck disable=SC2086 # RUSTICL_TESTS is a list of arguments
    rusticl meson test -C "$BUILD" --no-rebuild --print-errorlogs $RUSTICL_TESTS || st=$?
    keep_log "$BUILD" rusticl
    return $st
}

bench_smoke() { # every bench program in --quick mode: a smoke test, not a timing
    pocl "$BUILD/tools/gdn" bench --quick
}

release_build() { # -O3 finds maybe-uninitialized warnings that -O2 does not
    setup "$REL_BUILD" -Dwerror=true -Dbuildtype=release || return
    meson compile -C "$REL_BUILD"
}

asan() {
    setup "$ASAN_BUILD" -Dwerror=true -Db_sanitize=address,undefined -Dbench=false || return
    meson compile -C "$ASAN_BUILD" test_status test_runtime test_cache test_model test_safetensors \
        test_sample test_optim || return
    local st=0
    pocl env ASAN_OPTIONS=detect_leaks=1 \
        LSAN_OPTIONS="suppressions=$ROOT/.ci/lsan.supp:print_suppressions=0" \
        UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
        GDN_CACHE_DIR="$ROOT/$ASAN_BUILD/gdn-cache" \
        meson test -C "$ASAN_BUILD" --no-rebuild --print-errorlogs status runtime cache model \
        safetensors sample optim || st=$?
    keep_log "$ASAN_BUILD" asan
    return $st
}

step "build (-Dwerror=true)" build || exit 1
step "release build (-Dwerror=true -O3) compiles" release_build || true
step "tests on PoCL" test_pocl || true
step "gdn bench --quick on PoCL (smoke test)" bench_smoke || true
if [ "${GDN_CI_SKIP_RUSTICL:-0}" != 1 ]; then
    step "device tests on rusticl ($RUSTICL_TESTS)" test_rusticl || true
fi
if [ "${GDN_CI_SKIP_ASAN:-0}" != 1 ]; then
    step "ASan+UBSan build: status, runtime, cache, model, checkpoint, sampler, optimizer suites on PoCL" asan || true
fi

echo
echo "==== disk program cache, from the test logs"
grep -h -E "^(first|second) process: |^default mode on " "$BUILD"/meson-logs/testlog-*.txt || true
[ ${#FAILED[@]} -eq 0 ]
