#!/usr/bin/env bash
# .ci/main.sh - set up and run the main job: the README's first command.
#
# Until the model-level issues add the real main job, it builds libgdn, lists
# every OpenCL device with what libgdn uses from it (`gdn info`, the default
# device marked) and runs the smallest device test, the runtime suite (tensor
# round trips and the fill kernel), on the default device.
#
# GDN_BUILD: build folder (default build; on the GPU machine use build-gpu).
# GDN_DEVICE selects the device as everywhere (README.md).
set -euo pipefail
cd "$(dirname "$0")/.."
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
meson test -C "$BUILD" --no-rebuild --print-errorlogs runtime
echo "main job: $((SECONDS - T0)) s"
