#!/usr/bin/env bash
# .ci/main.sh - set up (packages: .ci/setup.sh; build) and run the main job:
# the README's first command.
#
# It builds libgdn, lists every OpenCL device (`gdn info`, the default one
# marked), then trains a small byte-level H1 model (Gated DeltaNet and
# sliding-window attention layers) on the text files under
# /usr/share/common-licenses with `gdn train`: a live progress line, the
# held-out validation bits per byte beside the corpus's unigram entropy, a
# checkpoint (gdn-train.safetensors in $GDN_OUT, default build/), and a
# generated sample. Under 5 minutes on a 2-core machine through PoCL.
# Extra arguments are passed to `gdn train` (e.g. --data FILE --steps N).
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
OUT=${GDN_OUT:-$BUILD}
"$BUILD/tools/gdn" train --out "$OUT/gdn-train.safetensors" "$@"
echo "main job: $((SECONDS - T0)) s"
