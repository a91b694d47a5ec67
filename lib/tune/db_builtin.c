/*
 * db_builtin.c - built-in tuning values, by device name, architecture and
 * vendor (lookup order in tune.h). This is data: rows come from `gdn tune`
 * result files checked in under lib/tune/results/<device>/ and are copied
 * here in aligned columns. A stage without rows runs its generic defaults, which are
 * correct on any OpenCL 1.2 device.
 */
#include "tune.h"

// clang-format off
const struct gdn_tune_row gdn__tune_builtin[] = {
    /* match   stage                     bucket  values */
    /* PoCL on CPUs: few work-items with large register tiles beat GPU-shaped
     * groups by 2-11x (2-core AVX-512 host, B=1, T=1024, H=2, K=V=128;
     * bench_gated_delta with GDN_TUNE sweeps; kkt_solve 4.1 -> 1.8 ms). */
    /* Row forms (LX=1: whole rows per work-item as float16 vectors), same
     * host, bench_gated_delta B=1, T=4096, H=2, medians of alternated runs:
     * K=V=128 fwd 38.0 -> 14.0 ms (kkt_solve 7.5 -> 0.75, wy_fwd 6.3 ->
     * 0.93, out_fwd 13.7 -> 2.2 ms); K=V=64 fwd 21.1 -> 4.6 ms (kkt 6.1 ->
     * 0.60, wy 4.2 -> 0.49, out 8.0 -> 0.81 ms). */
    {"pocl",   "gated_delta/kkt_solve", "*",    "LX=1 LY=4"},
    {"pocl",   "gated_delta/state_fwd", "*",    "PREFETCH=0 BV=64 BK=32 LX=4 LY=4"},
    /* gdn tune on the same host (B=1, T=1024, H=2; 450 s and 120 s budgets):
     * state_fwd 32.1 -> 2.30 ms at K=V=128 and 6.32 -> 0.56 ms at K=V=64. */
    /* The register-resident scan with the same tiles, same host, B=1,
     * T=4096, bench_gated_delta medians of 10 runs: 10.1 -> 8.9 ms at
     * K=V=128 (H=2; middle of three alternated pairs), 5.1 -> 4.5 ms at
     * K=V=64 (H=4; one pair). */
    {"pocl",   "gated_delta/state_fwd", "K128.V128", "PREFETCH=2 BV=64 BK=64 LX=1 LY=4"},
    {"pocl",   "gated_delta/state_fwd", "K64.V64",   "PREFETCH=2 BV=64 BK=64 LX=1 LY=4"},
    {"pocl",   "gated_delta/out_fwd",   "*",    "BK=16 LX=1 LY=4"},
    /* one V tile of 128 computes q k^T once per chunk (2.7 ms at BV=64) */
    {"pocl",   "gated_delta/out_fwd",   "K128.V128", "BK=16 BV=128 LX=1 LY=16"},
    {"pocl",   "gated_delta/wy_fwd",    "*",    "LX=1 LY=4"},
    {"pocl",   "gated_delta/wy_fwd",    "K128.V128", "BNK=128 BNV=128 LX=1 LY=8"},
    /* Backward stages, gdn tune on the same host (results/pocl-cpu/): 16
     * work-items with large register tiles are 3-4x faster than the generic
     * 16 x 16 groups at K=V=64 and 128; bench_gated_delta fwd+bwd at B=1,
     * T=4096, H=2, K=V=128: 431 -> 161 ms. */
    /* The float4 forms (dv_local VEC=1, state_bwd RS=2, dqkwg VEC=2, wy_bwd
     * VEC=1) with the same 4 x 4 work-items, bench_gated_delta fwd+bwd with
     * GDN_TUNE, one run of 3 per plan on this 2-core host (B=1, T=4096):
     * K=V=128 (H=2): dv_local 8.4 -> 5.5 ms, state_bwd 30.1 -> 19.2,
     * dqkwg 40.4 -> 28.6, wy_bwd 26.1 -> 21.6; K=V=64 (H=4): 9.3 -> 6.7,
     * 18.4 -> 11.5, 27.7 -> 20.0, 31.9 -> 25.6. */
    {"pocl",   "gated_delta/dv_local",  "*",         "TY=4 TX=4"},
    {"pocl",   "gated_delta/dv_local",  "K64.V64",   "VEC=1 BK=32 BV=64 TY=4 TX=4"},
    {"pocl",   "gated_delta/dv_local",  "K128.V128", "VEC=1 BK=32 BV=64 TY=4 TX=4"},
    {"pocl",   "gated_delta/state_bwd", "*",         "TY=4 TX=4"},
    {"pocl",   "gated_delta/state_bwd", "K64.V64",   "RS=2 BV=64 BKS=32 TY=4 TX=4"},
    {"pocl",   "gated_delta/state_bwd", "K128.V128", "RS=2 BV=64 BKS=64 TY=4 TX=4"},
    {"pocl",   "gated_delta/dqkwg",     "*",         "TY=4 TX=4"},
    {"pocl",   "gated_delta/dqkwg",     "K64.V64",   "VEC=2 BK=64 BVT=16 TY=4 TX=4"},
    {"pocl",   "gated_delta/dqkwg",     "K128.V128", "VEC=2 BK=64 BVT=32 TY=4 TX=4"},
    {"pocl",   "gated_delta/wy_bwd",    "*",         "TY=4 TX=4"},
    {"pocl",   "gated_delta/wy_bwd",    "K64.V64",   "VEC=1 BK=64 BV=64 TY=4 TX=4 T_IN_GLOBAL=0"},
    {"pocl",   "gated_delta/wy_bwd",    "K128.V128", "VEC=1 BK=32 BV=32 TY=4 TX=4 T_IN_GLOBAL=0"},
    /* NVIDIA compute capability 9.0 (H200, driver 580.159.04): gdn tune
     * --budget 110 (results/nvidia-h200/), B=2, T=4096, H=16. Only rows that
     * beat the generic default: kkt_solve 0.182 -> 0.143 ms, wy_bwd 1.507 ->
     * 1.315 ms; the other six stages kept their defaults. Whole op at B=4,
     * T=4096, H=16 (bench_gated_delta): fwd 4.74 -> 4.66 ms, fwd+bwd
     * 19.63 -> 19.11 ms. */
    /* Later, the Gram from key slices copied ahead with cp.async (VEC=2, BK
     * 16), B = 4, three alternated runs: 16 x 8 work-items 0.211-0.217 ms
     * against 0.236-0.238 for the row before (BK=32 LX=16 LY=8); 16 x 16,
     * 0.224-0.225; 8 x 8, 0.259-0.260; 16 x 4, 0.242-0.244. Then the Gram on
     * the tensor cores (VEC=3, 3xTF32), two alternated runs: 16 x 8
     * work-items 0.165-0.168 ms against 0.197-0.203 for VEC=2; 16 x 16,
     * 0.197-0.199; with its merges on warp tiles too, 0.144-0.145 (16 x 16,
     * 0.150-0.151; chunk_fwd.c, kkt_plan_default). */
    {"sm_90",  "gated_delta/kkt_solve", "K128.V128", "BK=16 LX=16 LY=8 VEC=3"},
    /* wy_bwd's float4 form (VEC=1), its GPU default: 2.33 -> 2.04 ms (6 plans);
     * with coalesced, prefetched staging 16 x 4 work-items over tiles of 16:
     * 1.735 -> 1.689 ms (5 plans, twice for the two best). With the
     * triangular products' k ranges (GDN_TILE_MMA4_RANGE), B = 4, T = 4096,
     * H = 16, two runs each: 16 x 8 work-items over tiles of 32, 1.231-1.235
     * ms (1.440 before the ranges); the previous row (16 x 4 over tiles of
     * 16), 1.327 (1.406); 16 x 16 over tiles of 64, 1.325; 16 x 8 at
     * UNROLL=4, 1.264.
     * Later, registers capped (MAXREG, .maxnreg in the PTX) so that three
     * groups share a compute unit instead of two, B = 4, two alternated runs:
     * 168 registers (from 223; 36 bytes of spills) 1.106-1.108 ms against
     * 1.162-1.169; 128 (344 bytes of spills) 1.232-1.233. The same caps on
     * dqkwg (255 registers, 1.63 ms) spill 1.6 and 3.8 KB: 2.47 and 7.77 ms;
     * at 168 with UNROLL=0 or 4 (1.72, 1.64 ms uncapped), 2.17 and 2.57; its
     * VEC=1 form with V tiles of 16 or 32, 2.67 and 1.95 ms uncapped, 2.87
     * and 2.68 at 168; its 16 x 16 plan, 2.05 ms, 1.91 at 128 registers.
     * kkt_solve (128 registers, four groups) at 96 or 80: no change.
     * Other wy_bwd plans under caps: UNROLL=4 or 0 at 168, 1.181 and
     * 1.165-1.169 ms; 16 x 4 work-items over tiles of 16, 1.37 ms uncapped,
     * 2.16-2.17 at 128; 8 x 8 over tiles of 32, 1.70 uncapped. */
    {"sm_90",  "gated_delta/wy_bwd",    "K128.V128", "VEC=1 BK=32 BV=32 TY=16 TX=8 T_IN_GLOBAL=0 "
                                                     "UNROLL=8 MAXREG=168"},
    /* bench_gated_delta with GDN_TUNE sweeps of 8 plans at B=4, T=4096, H=16:
     * out_fwd 1.43 -> 1.14 ms (16 x 8 work-items instead of 16 x 16); its
     * float4 form (VEC=1) with V tiles of 128: 1.10 -> 0.84 ms (8 plans);
     * with coalesced staging, 16 x 16 work-items: 0.716 -> 0.683 ms (4 plans,
     * twice). Later (float4 global accesses), fwd at B = 4: 16 x 8
     * work-items (LX = 16, LY = 8: 8 rows each) 0.574-0.577 ms at UNROLL=4,
     * 0.558-0.563 at 8, 0.594 at 2, against 0.612-0.614 for 16 x 16; LX =
     * 8, LY = 16: 0.609 (UNROLL=4), 0.592 (8); BK = 16 or BV = 64 with LX =
     * 8: 0.697, 0.767. The form with cp.async copies a slice ahead (VEC=2),
     * B = 4, three alternated runs against 0.559-0.561 ms for VEC=1 16 x 8
     * BK=32 UNROLL=8: 16 x 16 work-items, BK=16, 0.487-0.489 ms; BK=8,
     * 0.507-0.508; 16 x 8, 0.533 (BK=16), 0.551-0.553 (BK=8); 8 x 16,
     * 0.581-0.582 (BK=16), 0.613-0.614 (BK=8); V tiles of 64: 0.598-0.600
     * (16 x 8), 0.647-0.649 (16 x 16), 0.835-0.836 (8 x 8).
     * (UNROLL has no loop to act on in VEC=2.) Then the products on the
     * tensor cores (VEC=3, chunk_fwd.c's default there): 0.395-0.399 ms,
     * capped at 80 registers (99 -> 80, no spills; three groups of 256 per
     * compute unit instead of two) 0.365-0.366, at 64 (152 bytes of
     * spills) 0.359-0.360. */
    {"sm_90",  "gated_delta/out_fwd",   "K128.V128", "VEC=3 BK=16 BV=128 LX=16 LY=16 MAXREG=80"},
    /* the same sweeps (11 to 14 plans each) of the backward stages, fwd+bwd
     * at B=4, T=4096, H=16: dqkwg 4.54 -> 4.09 ms, wy_bwd 2.54 -> 2.33 ms,
     * dv_local 0.54 -> 0.47 ms (state_bwd: its GPU default, chunk_bwd.c).
     * dqkwg's float4 form, 8 x 16 work-items over K tiles of 64: 4.06 ->
     * 3.18 ms (9 plans); prefetching the next V tile (VEC=2) with V tiles
     * of 16: 3.01 ms (7 plans); the V loop's four products in one loop over
     * v: 2.80 ms (A/B of the kernel sources on one build, twice each).
     * dv_local's float4 form was slower (5 plans) until the transposed
     * stagings read whole sectors: now 0.461 -> 0.324 ms with 16 x 8
     * work-items (6 plans), its GPU default; no row. dqkwg with those
     * stagings and q, k read once: 1.71 ms, this row still the best of 7.
     * Later, V tiles of 8 (outside the tuning space, fewer prefetch
     * registers): 1.835-1.838 ms against 1.632-1.634, still 255 registers.
     * Then the products on the tensor cores (VEC=3, chunk_bwd.c's default
     * where cp.async is): 1.395-1.400 ms against 1.631 for the VEC=2 plan
     * "VEC=2 BK=64 BVT=16 TY=8 TX=16 UNROLL=8" this row held. */
    {"sm_90",  "gated_delta/dqkwg",     "K128.V128", "VEC=3 BK=64 BVT=8 TY=16 TX=16"},
    /* dv_local: its GPU default (chunk_bwd.c) at UNROLL=8 against 0, B = 4,
     * T = 4096, H = 16, fwd+bwd, two runs each: 0.306-0.310 ms against
     * 0.319-0.321 (no gain before 488c06a's float4 global accesses). */
    /* Later, the form with cp.async copies a tile ahead (VEC=2), three
     * alternated runs against 0.305-0.306 ms for the row above: 8 x 16
     * work-items, BK=16, BV=64, 0.236-0.238 ms (also the GPU default where
     * cp.async is); 16 x 16, 0.246-0.247; 16 x 8, 0.255; BK=32 or BV=32 at
     * 16 x 8, 0.251-0.252 and 0.266-0.267. (UNROLL has no loop to act on in
     * VEC=2.) Then the products on the tensor cores (VEC=3), two alternated
     * runs: 8 x 16 work-items, BV=32, 0.229-0.230 ms against 0.238 for the
     * VEC=2 row; 16 x 16, 0.236-0.239; BV=16, 0.253-0.254. */
    {"sm_90",  "gated_delta/dv_local",  "K128.V128", "VEC=3 BK=16 BV=32 TY=8 TX=16"},
    /* UNROLL (the float4 products' loops over k, GDN_TILE_UNROLL), fwd+bwd
     * at B = 4, T = 4096, H = 16, 0 (the compiler's choice), 2, 4 or 8 for
     * every stage at once (wall, two runs each): 8.16-8.25 ms at 0, 8.05-8.08
     * at 4. Best per stage: state_bwd
     * 1.27 -> 1.17 ms (8), dqkwg 1.72 -> 1.65 (8), wy_bwd 1.58 -> 1.53 (8),
     * out_fwd 0.682 -> 0.640 (4; 0.763 at 8), state_fwd 1.71 -> 1.68 for
     * two calls (4 or 8; its split form at B = 1, T = 16384: 2.12 ms at 4,
     * 2.04 at 8); wy_fwd 0.563 -> 0.631 (4) keeps 0 and dv_local moved less
     * than noise. The other values of these rows: their defaults. All of
     * them: fwd+bwd 7.94 ms (wall). */
    {"sm_90",  "gated_delta/state_bwd", "K128.V128", "UNROLL=8"},
    /* state_fwd with float4 slice loads and stores (RSVEC): slices of 64 w
     * columns (BK=64, 2 w and 2 k slices per chunk), B = 4, T = 4096, H =
     * 16: 0.817 ms at UNROLL=8 against 0.881 at BK=32 (0.844 at UNROLL=4,
     * 0.853 at 0; the scalar loads' default, BK=32: 0.846); B = 1, T =
     * 16384 (the split form): 2.060 against 2.058. LY=8 at BK=64: 1.25 ms.
     * Later, the copied form (PREFETCH=5, its default where groups are
     * many: chunk_fwd.c) does not fit BK = 64 in 48 KiB; the row leaves BK
     * to the defaults (32 for it, 64 for the forms above on devices with
     * cp.async). The copied form at B = 4: 0.625 ms at UNROLL=8, 0.642 at
     * 4, 0.644 at 0. */
    {"sm_90",  "gated_delta/state_fwd", "K128.V128", "UNROLL=8"},
    {"*",      "",                      "",     ""}, /* sentinel, never matches */
};
// clang-format on

const size_t gdn__tune_builtin_count = sizeof(gdn__tune_builtin) / sizeof(gdn__tune_builtin[0]);
