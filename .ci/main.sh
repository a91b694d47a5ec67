#!/usr/bin/env bash
# .ci/main.sh - set up (packages: .ci/setup.sh; build) and run the main job:
# the README's first command.
#
# Until the model-level issues add the real main job (training a small H1
# model), it builds libgdn, lists every OpenCL device with what libgdn uses
# from it (`gdn info`, the default device marked), checks the gated delta
# rule's chunked forward against its float64 reference on the default
# device, and times the op there (`gdn bench gated_delta --quick`).
#
# GDN_BUILD: build folder (default build; on the GPU machine use build-gpu).
# GDN_DEVICE selects the device as everywhere (README.md).
set -euo pipefail
cd "$(dirname "$0")/.."
. .ci/setup.sh
BUILD=${GDN_BUILD:-build}
T0=$SECONDS

if [ -d "$BUILD/meson-private" ]; then
    meson setup --reconfigure "$BUILD"
else
    meson setup "$BUILD" -Dbuildtype=release
fi
meson compile -C "$BUILD"
echo "build: $((SECONDS - T0)) s"

"$BUILD/tools/gdn" info
meson test -C "$BUILD" --no-rebuild --print-errorlogs runtime gd_forward
"$BUILD/tools/gdn" bench gated_delta --quick
echo "main job: $((SECONDS - T0)) s"
