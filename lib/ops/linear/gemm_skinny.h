/*
 * gemm_skinny.h - the skinny GEMM behind gdn__gemm (gemm.h): our own kernel
 * (cl/linear/skinny.cl) for C[M, N] = alpha A[M, K] B[N, K]^T + beta C with
 * few rows M, i.e. y = x W^T for the tokens of a decode step, where the
 * product is bound by reading W once and CLBlast's large tiles waste most of
 * the bandwidth. gemm.c calls it; tests and benchmarks may inspect its plan.
 *
 * When (GDN_SKINNY unset): M <= 16 on GPUs, M <= 8 on other devices (H200:
 * 4-5x faster than CLBlast at M = 1, 1.3-2.4x at M = 16 except the 32000-row
 * head, 2.4-3.2x slower at M = 64; bench_linear --skinny).
 *   GPUs (reasoning; to be confirmed on the H200 with bench_linear
 *   --skinny): y = x W^T reads 4 N K bytes of W for 2 M N K FLOP, so up to
 *   M ~ 32 (H200: 60 TFLOP/s fp32 over 3.85 TB/s = 16 FLOP/B = M 32) the
 *   product is bound by reading W, where this kernel streams W once and
 *   CLBlast's 64-128-row tiles mostly compute padding (measured: ~130 us
 *   per decode GEMM on the H200, 20-50x the W read time). At M = 64 it is
 *   compute-bound at 2x the ridge; the kernel's 8 x 4 register tile still
 *   does 32 FMA per float4 of W and 4 per local-memory float (balanced
 *   with the 128 B/clk shared-memory bandwidth of an SM), so it should
 *   stay ahead of CLBlast's small-M path there; larger M goes to CLBlast.
 *   CPUs (measured, PoCL on 2 cores, 1536 x 1536, interleaved runs on a
 *   shared machine, ms): M = 1: 1.0-1.7 vs CLBlast 7.4; M = 2: 2.1-2.7 vs
 *   7.2; M = 4: 2.7-4.0 vs 7.3; M = 8: 6.5-7.3 vs 7.4; M = 16: 10-13 vs
 *   4.4-7.3. The kernel is FMA-bound there and CLBlast's larger tiles win
 *   from M = 16.
 *
 * Plan (one work-group: KS lanes splitting K x NC column slots of NPI output
 * columns each, MT rows of A, K tiles of 4 KS QT floats; details in
 * skinny.cl). The tile sizes are the tunable stage "linear/skinny" of
 * lib/tune (GDN_TUNE="linear/skinny:KS=32,NPI=2", user DB rows keyed by the
 * bucket "M<MT class>", e.g. "M1", "M8"); the generic defaults come from
 * skinny_defaults() in gemm_skinny.c:
 *   MT   = M rounded up to a power of two, at most 8 (M = 3 -> 4)
 *   KS   = 64 on GPUs (64 lanes x 16 B: 1 KiB contiguous per W row and
 *          step), 16 elsewhere (PoCL: fewer barrier-separated reduction
 *          steps; 0.6x the time of 64), halved while a lane would get
 *          fewer than 4 quads of K (K < 1024 on GPUs), so on one device
 *          the summation order depends on K only
 *   NPI  = 4, NC = 256 / KS (work-groups of 256), then NPI and NC halved
 *          (NC down to work-groups of 64) while there are fewer than
 *          4 work-groups per compute unit (M = 1, N = 1536 on a large GPU:
 *          NPI = 1, 384 groups of 4 W rows)
 *   QT   = quads per lane per K tile: all of K in one tile when it fits
 *          16 KiB of local memory (at most 8), else the largest that
 *          divides K into whole tiles, else the most that fits
 * Local memory: at most 16 KiB per group by default (32 KiB devices work).
 */
#ifndef GDN_OPS_LINEAR_GEMM_SKINNY_H
#define GDN_OPS_LINEAR_GEMM_SKINNY_H

#include "runtime.h"

/* Largest M the skinny path takes by default (GDN_SKINNY unset). */
#define GDN_SKINNY_DEFAULT_MAX_M_GPU   16
#define GDN_SKINNY_DEFAULT_MAX_M_OTHER 8

/* The problem of one (possibly batched) skinny GEMM. */
struct gdn_skinny_problem {
    int64_t M, N, K, batch;
};

/* A complete plan: tunables, derived sizes and the grid. */
struct gdn_skinny_plan {
    int32_t mt, npi, ks, nc, qt; /* tunables (the kernel's -D macros)          */
    int32_t rc;                  /* columns per reduction round (divides npi) */
    int32_t vec;                 /* float4 loads of W                          */
    int32_t wg;                  /* ks * nc                                    */
    size_t  local_bytes;         /* local memory of one group                  */
    size_t  n_blocks, m_tiles, groups;
    int32_t source;              /* enum gdn_tune_source of the tunables      */
};

/* The default largest M on ctx's device (GPU or not, see above). */
size_t gdn__gemm_skinny_default_max_m(const gdn_context *ctx);
/* The largest M for which gdn__gemm takes the skinny path: GDN_SKINNY when
 * set to a non-negative integer (0: never), else the default. Read at every
 * call (cheap next to a launch), so tests and benchmarks may change it with
 * setenv between calls. */
size_t gdn__gemm_skinny_max_m(const gdn_context *ctx);

/* Does gdn__gemm give this call to the skinny kernel? NT (trans_a false,
 * trans_b true), 1 <= M <= gdn__gemm_skinny_max_m(ctx), N, K >= 1 and
 * M, N, K below 2^31 - 256 (the kernel's ints). The plan must also fit the
 * device (gdn__gemm_skinny_plan). */
bool gdn__gemm_skinny_wanted(const gdn_context *ctx, bool trans_a, bool trans_b, size_t M,
                             size_t N, size_t K, size_t batch);

/* The plan for a problem on ctx's device (tuning lookup + derived sizes),
 * without the alignment choice (vec = 0; set by the launch). False when no
 * plan fits the device (then gdn__gemm uses CLBlast). */
bool gdn__gemm_skinny_plan(gdn_context *ctx, const struct gdn_skinny_problem *pr,
                           struct gdn_skinny_plan *p);

/* Enqueue the skinny GEMM (arguments as gdn__gemm_strided_batched, NT).
 * *ran = false, with nothing enqueued or recorded, when no plan fits the
 * device (work-group or local-memory limits, including the kernel's own
 * work-group limit): the caller then uses CLBlast. Errors (build, launch)
 * are recorded on ctx and returned. */
gdn_status gdn__gemm_skinny(gdn_context *ctx, size_t M, size_t N, size_t K, float alpha,
                            cl_mem A, size_t off_a, size_t lda, size_t stride_a, cl_mem B,
                            size_t off_b, size_t ldb, size_t stride_b, float beta, cl_mem C,
                            size_t off_c, size_t ldc, size_t stride_c, size_t batch, bool *ran);

/* Skinny kernels enqueued by this process so far (tests: was the path
 * taken?). */
uint64_t gdn__gemm_skinny_launches(void);

struct gdn_tune_space;
/* The tuning space "linear/skinny" (parameters MT, NPI, KS, NC, QT). */
extern const struct gdn_tune_space gdn__skinny_space;

#endif /* GDN_OPS_LINEAR_GEMM_SKINNY_H */
