/*
 * test_gemm_skinny.c - device tests of the skinny GEMM path of gdn__gemm
 * (lib/ops/linear/gemm_skinny.c, cl/linear/skinny.cl), part of the
 * `linear` suite (test_linear.c adds these test cases):
 *
 *   C[M, N] = alpha A[M, K] B[N, K]^T + beta C      (NT, row-major)
 *
 * on raw buffers with offsets, leading dimensions above the minimum, batch
 * strides and misaligned offsets (scalar loads), for M in {1, 2, 3, 7, 16,
 * 33, 64} against N, K in {1, 5, 64, 1536, 4097, 8192}-like mixes. Each case
 * checks:
 *   - the path: gdn__gemm_path says "skinny" and the skinny launch counter
 *     grows by one;
 *   - every output against a float64 reference: all finite, rel_rms <= 1e-5
 *     and each element within 1e-5 of its scale |alpha| sum_k |a_ik b_jk| +
 *     |beta c_ij| (fp32 accumulation over K up to 8192);
 *   - beta == 0 over NaN-poisoned C (NaN must not propagate), beta != 0 over
 *     random C; the padding of C (beyond N in each row, before the offset,
 *     after the last row) keeps its NaN bits: nothing outside C is written;
 *   - determinism: a second run gives the same bits;
 *   - the CLBlast path (GDN_SKINNY=0) on the same inputs agrees within 1e-5
 *     of the scale, and took no skinny launch.
 * The skinny runs set GDN_SKINNY=64 (the default threshold is 8 on CPUs).
 * A second loop runs a subset of the cases under explicit plans through
 * the tuning override (GPU-style KS = 64, one lane per column, a 16 x 8
 * register tile, KS = 256, a tiny group), as PoCL and rusticl otherwise
 * only see the CPU defaults. Plus the GDN_SKINNY threshold, K == 0 /
 * M == 0 / N == 0 through the skinny-eligible shapes, M = 200 (many row
 * tiles), and the linear layer API at decode shapes (M = 1, grouped)
 * going through the skinny kernel by default.
 */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gdn_test.h"
#include "linear_ref.h"
#include "ops/linear/gemm.h"
#include "ops/linear/gemm_skinny.h"
#include "tune/tune.h"

#define TOL_SKINNY 1e-5

struct sk_case {
    int32_t M, N, K;
    int32_t batch;
    int32_t off_a, off_b, off_c; /* element offsets */
    int32_t pad_a, pad_b, pad_c; /* leading dimension - minimum */
    float   alpha, beta;
};

/* Misaligned (odd) offsets or leading dims give the scalar-load variant. */
static const struct sk_case sk_cases[] = {
    {1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 1.0f, 0.0f},
    {1, 1536, 1536, 1, 0, 0, 0, 0, 0, 0, 1.0f, 0.0f},   /* decode: q/k/v projection */
    {1, 4097, 1536, 1, 0, 0, 0, 0, 0, 0, 2.0f, 0.0f},   /* N not a multiple of anything */
    {1, 64, 8192, 1, 0, 0, 0, 0, 0, 0, 1.0f, 1.0f},     /* long K, accumulate */
    {1, 5, 64, 1, 3, 1, 2, 1, 3, 5, 0.5f, -1.0f},       /* misaligned */
    {2, 5, 4097, 1, 1, 3, 2, 1, 3, 0, 0.5f, 0.0f},      /* misaligned, K % 4 = 1 */
    {2, 1536, 64, 1, 0, 0, 0, 4, 4, 4, 1.0f, 0.25f},    /* padded, aligned */
    {3, 4097, 5, 1, 0, 0, 0, 0, 0, 0, 1.0f, 1.5f},      /* K = 5: one full quad + tail */
    {3, 64, 1536, 1, 2, 2, 2, 2, 2, 2, -1.0f, 0.0f},    /* offsets 2: scalar loads */
    {7, 64, 64, 1, 4, 4, 4, 4, 4, 4, 1.0f, -0.5f},      /* aligned offsets and pads */
    {7, 1, 8192, 1, 0, 0, 0, 0, 0, 0, 1.0f, 0.0f},      /* one column, long K */
    {7, 1536, 1, 1, 0, 1, 0, 0, 0, 0, 1.0f, 0.0f},      /* K = 1 */
    {16, 1536, 64, 1, 0, 0, 0, 0, 0, 0, 1.0f, 0.0f},
    {16, 33, 5, 1, 5, 7, 1, 3, 1, 2, 1.0f, 2.0f},
    {16, 5, 4097, 1, 0, 0, 0, 0, 0, 0, 1.0f, 0.0f},
    {33, 5, 1536, 1, 1, 1, 1, 1, 1, 1, 1.0f, 0.0f},     /* misaligned, two row tiles + 1 */
    {33, 64, 4097, 1, 0, 0, 0, 0, 0, 0, 0.75f, 1.0f},
    {64, 1536, 1536, 1, 0, 0, 0, 0, 0, 0, 1.0f, 0.0f},  /* largest default M */
    {64, 64, 1536, 1, 0, 0, 0, 0, 0, 3, 1.0f, 1.0f},
    {64, 4097, 64, 1, 0, 0, 0, 0, 0, 0, 1.0f, 0.0f},
    /* strided batched (grouped linear layers): strides are the packed sizes
     * (plus padding); batch 3 with odd K: scalar loads */
    {1, 64, 1536, 4, 0, 0, 0, 0, 0, 0, 1.0f, 0.0f},
    {3, 40, 130, 3, 1, 2, 3, 1, 2, 3, 1.0f, 0.5f},
    {16, 37, 257, 2, 0, 0, 0, 0, 0, 0, 1.0f, 0.0f},
};

/* Device buffer of n floats from host data. */
static cl_mem buf_from(const float *h, size_t n)
{
    cl_mem m = NULL;
    GDN_TEST_OK(gdn__buffer_create(gdn_test_ctx, n * sizeof(float), &m));
    ck_assert_int_eq(clEnqueueWriteBuffer(gdn_test_ctx->queue, m, CL_TRUE, 0, n * sizeof(float),
                                          h, 0, NULL, NULL),
                     CL_SUCCESS);
    return m;
}

static void buf_read(cl_mem m, float *h, size_t n)
{
    ck_assert_int_eq(clEnqueueReadBuffer(gdn_test_ctx->queue, m, CL_TRUE, 0, n * sizeof(float), h,
                                         0, NULL, NULL),
                     CL_SUCCESS);
}

static float *fal(size_t n)
{
    float *p = calloc(n ? n : 1, sizeof(float));
    ck_assert_ptr_nonnull(p);
    return p;
}

static void set_skinny(const char *v)
{
    if (v)
        setenv("GDN_SKINNY", v, 1);
    else
        unsetenv("GDN_SKINNY");
}

/* Run the case's GEMM on C (already holding c0) through gdn__gemm or, with
 * batch > 1, gdn__gemm_strided_batched. */
static void run_gemm(const struct sk_case *c, cl_mem A, cl_mem B, cl_mem C, size_t lda,
                     size_t ldb, size_t ldc, size_t sa, size_t sb, size_t sc)
{
    if (c->batch == 1)
        GDN_TEST_OK(gdn__gemm(gdn_test_ctx, false, true, (size_t)c->M, (size_t)c->N,
                              (size_t)c->K, c->alpha, A, (size_t)c->off_a, lda, B,
                              (size_t)c->off_b, ldb, c->beta, C, (size_t)c->off_c, ldc));
    else
        GDN_TEST_OK(gdn__gemm_strided_batched(
            gdn_test_ctx, false, true, (size_t)c->M, (size_t)c->N, (size_t)c->K, c->alpha, A,
            (size_t)c->off_a, lda, sa, B, (size_t)c->off_b, ldb, sb, c->beta, C,
            (size_t)c->off_c, ldc, sc, (size_t)c->batch));
    ck_assert_int_eq(clFinish(gdn_test_ctx->queue), CL_SUCCESS);
}

/* got against ref (the [M, N] windows of each batch entry) with per-element
 * scales; the rest of the buffer must equal c0 bit for bit. Returns the
 * largest error relative to the scale; *rel_rms receives the RMS measure. */
static double check_out(const struct sk_case *c, const float *got, const float *c0,
                        const double *ref, const double *scale, size_t nc, size_t ldc,
                        size_t sc, const char *what, const char *desc, double *rel_rms)
{
    const size_t M = (size_t)c->M, N = (size_t)c->N;
    double       worst = 0, se = 0, sr = 0;
    size_t       b, i, j, idx;
    char        *inside = calloc(nc, 1);

    ck_assert_ptr_nonnull(inside);
    for (b = 0; b < (size_t)c->batch; b++)
        for (i = 0; i < M; i++)
            for (j = 0; j < N; j++) {
                const size_t p = (size_t)c->off_c + b * sc + i * ldc + j;
                const size_t r = (b * M + i) * N + j;
                double       e;
                inside[p]      = 1;
                ck_assert_msg(isfinite(got[p]), "%s [%s]: C[%zu][%zu, %zu] = %g is not finite",
                              what, desc, b, i, j, (double)got[p]);
                e = fabs((double)got[p] - ref[r]);
                se += e * e;
                sr += ref[r] * ref[r];
                e /= scale[r] > 0 ? scale[r] : 1e-30;
                if (e > worst)
                    worst = e;
                ck_assert_msg(e <= TOL_SKINNY,
                              "%s [%s]: C[%zu][%zu, %zu] = %.9g, reference %.9g (error %.3g of "
                              "the scale %.3g)",
                              what, desc, b, i, j, (double)got[p], ref[r], e, scale[r]);
            }
    for (idx = 0; idx < nc; idx++)
        if (!inside[idx])
            ck_assert_msg(memcmp(&got[idx], &c0[idx], sizeof(float)) == 0,
                          "%s [%s]: element %zu outside C was written (%g)", what, desc, idx,
                          (double)got[idx]);
    free(inside);
    *rel_rms = sr > 0 ? sqrt(se / sr) : sqrt(se);
    ck_assert_msg(*rel_rms <= TOL_SKINNY, "%s [%s]: rel_rms %.3g", what, desc, *rel_rms);
    return worst;
}

/* One case, optionally under an explicit plan (a GDN_TUNE-style override
 * "linear/skinny:KEY=v,..." put on the context), seeded by `seed`. */
static void run_case(const struct sk_case *c, uint64_t seed, const char *plan)
{
    const size_t          M = (size_t)c->M, N = (size_t)c->N, K = (size_t)c->K,
                 nb = (size_t)c->batch;
    const size_t lda = K + (size_t)c->pad_a, ldb = K + (size_t)c->pad_b,
                 ldc = N + (size_t)c->pad_c;
    /* batch strides: the padded matrix plus a few floats (odd when pads are) */
    const size_t   sa = M * lda + (size_t)c->pad_a, sb = N * ldb + (size_t)c->pad_b,
                 sc = M * ldc + (size_t)c->pad_c;
    const size_t   na = (size_t)c->off_a + nb * sa + 3, nbb = (size_t)c->off_b + nb * sb + 3,
                 nc = (size_t)c->off_c + nb * sc + 3;
    struct gdn_rng rng;
    float         *ha = fal(na), *hb = fal(nbb), *c0 = fal(nc), *got = fal(nc), *got2 = fal(nc),
          *gotb = fal(nc);
    double  *ref = calloc(nb * M * N, sizeof(double)), *scale = calloc(nb * M * N, sizeof(double));
    double   worst, worst_b, rr, rr_b;
    cl_mem   A, B, C;
    uint64_t n0;
    size_t   b, i, j, k;
    char     desc[160];

    ck_assert_ptr_nonnull(ref);
    ck_assert_ptr_nonnull(scale);
    snprintf(desc, sizeof(desc),
             "M=%d N=%d K=%d batch=%d off=%d,%d,%d ld+=%d,%d,%d alpha=%g beta=%g%s%s", c->M,
             c->N, c->K, c->batch, c->off_a, c->off_b, c->off_c, c->pad_a, c->pad_b, c->pad_c,
             (double)c->alpha, (double)c->beta, plan ? " " : "", plan ? plan + 14 : "");
    if (plan) {
        gdn__free(gdn_test_ctx->tune_override);
        gdn_test_ctx->tune_override = gdn__strdup(plan);
        ck_assert_ptr_nonnull(gdn_test_ctx->tune_override);
    }
    gdn_rng_seed(&rng, seed);
    /* A, B: normal values; padding NaN (must never reach C) */
    for (i = 0; i < na; i++)
        ha[i] = NAN;
    for (i = 0; i < nbb; i++)
        hb[i] = NAN;
    for (i = 0; i < nc; i++)
        c0[i] = NAN;
    for (b = 0; b < nb; b++) {
        for (i = 0; i < M; i++)
            for (k = 0; k < K; k++)
                ha[(size_t)c->off_a + b * sa + i * lda + k] = (float)gdn_rng_normal(&rng);
        for (j = 0; j < N; j++)
            for (k = 0; k < K; k++)
                hb[(size_t)c->off_b + b * sb + j * ldb + k] = (float)gdn_rng_normal(&rng);
        if (c->beta != 0.0f)
            for (i = 0; i < M; i++)
                for (j = 0; j < N; j++)
                    c0[(size_t)c->off_c + b * sc + i * ldc + j] = (float)gdn_rng_normal(&rng);
    }
    /* float64 reference and per-element scales */
    for (b = 0; b < nb; b++)
        for (i = 0; i < M; i++)
            for (j = 0; j < N; j++) {
                const float *ar = ha + (size_t)c->off_a + b * sa + i * lda;
                const float *br = hb + (size_t)c->off_b + b * sb + j * ldb;
                const size_t pc = (size_t)c->off_c + b * sc + i * ldc + j;
                double       s = 0, sa_ = 0;
                for (k = 0; k < K; k++) {
                    s += (double)ar[k] * (double)br[k];
                    sa_ += fabs((double)ar[k] * (double)br[k]);
                }
                ref[(b * M + i) * N + j] = (double)c->alpha * s;
                scale[(b * M + i) * N + j] = fabs((double)c->alpha) * sa_;
                if (c->beta != 0.0f) {
                    ref[(b * M + i) * N + j] += (double)c->beta * (double)c0[pc];
                    scale[(b * M + i) * N + j] += fabs((double)c->beta * (double)c0[pc]);
                }
            }
    A = buf_from(ha, na);
    B = buf_from(hb, nbb);
    C = buf_from(c0, nc);

    /* skinny path (forced for M <= 64 on every device) */
    set_skinny("64");
    ck_assert_str_eq(gdn__gemm_path(gdn_test_ctx, false, true, M, N, K, nb), "skinny");
    if (plan) {
        struct gdn_skinny_problem pr = {(int64_t)M, (int64_t)N, (int64_t)K, (int64_t)nb};
        struct gdn_skinny_plan    p;
        ck_assert(gdn__gemm_skinny_plan(gdn_test_ctx, &pr, &p));
        ck_assert_msg(p.source == GDN_TUNE_SRC_OVERRIDE, "plan '%s' not taken [%s]", plan, desc);
    }
    n0 = gdn__gemm_skinny_launches();
    run_gemm(c, A, B, C, lda, ldb, ldc, sa, sb, sc);
    ck_assert_msg(gdn__gemm_skinny_launches() == n0 + 1, "skinny path not taken [%s]", desc);
    buf_read(C, got, nc);
    worst = check_out(c, got, c0, ref, scale, nc, ldc, sc, "skinny", desc, &rr);

    /* same bits again */
    ck_assert_int_eq(clEnqueueWriteBuffer(gdn_test_ctx->queue, C, CL_TRUE, 0, nc * sizeof(float),
                                          c0, 0, NULL, NULL),
                     CL_SUCCESS);
    run_gemm(c, A, B, C, lda, ldb, ldc, sa, sb, sc);
    buf_read(C, got2, nc);
    ck_assert_msg(memcmp(got, got2, nc * sizeof(float)) == 0, "skinny not deterministic [%s]",
                  desc);

    /* CLBlast on the same inputs */
    set_skinny("0");
    ck_assert_str_eq(gdn__gemm_path(gdn_test_ctx, false, true, M, N, K, nb), "clblast");
    ck_assert_int_eq(clEnqueueWriteBuffer(gdn_test_ctx->queue, C, CL_TRUE, 0, nc * sizeof(float),
                                          c0, 0, NULL, NULL),
                     CL_SUCCESS);
    n0 = gdn__gemm_skinny_launches();
    run_gemm(c, A, B, C, lda, ldb, ldc, sa, sb, sc);
    ck_assert(gdn__gemm_skinny_launches() == n0);
    buf_read(C, gotb, nc);
    worst_b = check_out(c, gotb, c0, ref, scale, nc, ldc, sc, "clblast", desc, &rr_b);
    /* skinny against CLBlast, relative to the same scales */
    for (b = 0; b < nb; b++)
        for (i = 0; i < M; i++)
            for (j = 0; j < N; j++) {
                const size_t p = (size_t)c->off_c + b * sc + i * ldc + j;
                const double s = scale[(b * M + i) * N + j];
                ck_assert_msg(fabs((double)got[p] - (double)gotb[p]) <= TOL_SKINNY * s,
                              "skinny %.9g vs CLBlast %.9g at [%zu][%zu, %zu] [%s]",
                              (double)got[p], (double)gotb[p], b, i, j, desc);
            }
    set_skinny(NULL);
    printf("  skinny  %-64s max err/scale %.2e (CLBlast %.2e) rel_rms %.2e (%.2e)\n", desc, worst,
           worst_b, rr, rr_b);
    gdn__buffer_release(A), gdn__buffer_release(B), gdn__buffer_release(C);
    free(ha), free(hb), free(c0), free(got), free(got2), free(gotb), free(ref), free(scale);
}

START_TEST(test_skinny_case)
{
    run_case(&sk_cases[_i], 900 + (uint64_t)_i, NULL);
}
END_TEST

/* Explicit plans (valid on any device with >= 256 work-items per group and
 * 32 KiB of local memory; a plan that does not fit falls back to the
 * defaults, still checked) on the cases with tails, misalignment, row
 * tiles and batches. */
static const char *const sk_plans[] = {
    "linear/skinny:KS=64,NC=4,NPI=4,QT=2",   /* the GPU defaults for K >= 1024 */
    "linear/skinny:KS=64,NC=4,NPI=1,QT=3",   /* GPU, M = 1 with many groups */
    "linear/skinny:MT=16,NPI=8,KS=32,NC=2,QT=1", /* large register tile */
    "linear/skinny:KS=1,NC=64,QT=8",         /* one lane per column: no tree */
    "linear/skinny:KS=256,NC=1,QT=1,NPI=2,MT=4", /* whole group on K */
    "linear/skinny:MT=2,KS=2,NC=2,NPI=1",    /* a tiny group */
};
static const int sk_plan_cases[] = {2, 5, 7, 13, 15, 16, 21};

START_TEST(test_skinny_plans)
{
    size_t i;
    for (i = 0; i < GDN_ARRAY_SIZE(sk_plan_cases); i++)
        run_case(&sk_cases[sk_plan_cases[i]], 1900 + (uint64_t)(_i * 31) + i, sk_plans[_i]);
}
END_TEST

/* GDN_SKINNY: the threshold, off, garbage; shapes the path never takes. */
START_TEST(test_skinny_switch)
{
    const bool   gpu = (gdn_test_ctx->dev.info.flags & GDN_DEVICE_FLAG_GPU) != 0;
    const size_t def = gdn__gemm_skinny_default_max_m(gdn_test_ctx);

    set_skinny(NULL);
    ck_assert_uint_eq(def, gpu ? GDN_SKINNY_DEFAULT_MAX_M_GPU : GDN_SKINNY_DEFAULT_MAX_M_OTHER);
    ck_assert_uint_eq(gdn__gemm_skinny_max_m(gdn_test_ctx), def);
    ck_assert_str_eq(gdn__gemm_path(gdn_test_ctx, false, true, def, 10, 10, 1), "skinny");
    ck_assert_str_eq(gdn__gemm_path(gdn_test_ctx, false, true, def + 1, 10, 10, 1), "clblast");
    ck_assert_str_eq(gdn__gemm_path(gdn_test_ctx, false, false, 1, 10, 10, 1), "clblast");
    ck_assert_str_eq(gdn__gemm_path(gdn_test_ctx, true, true, 1, 10, 10, 1), "clblast");
    ck_assert_str_eq(gdn__gemm_path(gdn_test_ctx, false, true, 1, 10, 0, 1), "scale");
    ck_assert_str_eq(gdn__gemm_path(gdn_test_ctx, false, true, 0, 10, 10, 1), "none");
    ck_assert_str_eq(gdn__gemm_path(gdn_test_ctx, false, true, 1, 10, 10, 0), "none");
    set_skinny("2");
    ck_assert_str_eq(gdn__gemm_path(gdn_test_ctx, false, true, 2, 10, 10, 1), "skinny");
    ck_assert_str_eq(gdn__gemm_path(gdn_test_ctx, false, true, 3, 10, 10, 1), "clblast");
    set_skinny("200");
    ck_assert_str_eq(gdn__gemm_path(gdn_test_ctx, false, true, 200, 10, 10, 1), "skinny");
    set_skinny("0");
    ck_assert_str_eq(gdn__gemm_path(gdn_test_ctx, false, true, 1, 10, 10, 1), "clblast");
    set_skinny("x");
    ck_assert_uint_eq(gdn__gemm_skinny_max_m(gdn_test_ctx), def);
    set_skinny(NULL);
}
END_TEST

/* M = 200 through GDN_SKINNY=200: row tiles well past MT, against CLBlast. */
START_TEST(test_skinny_large_m)
{
    const size_t   M = 200, N = 70, K = 300;
    struct gdn_rng rng;
    float         *ha = fal(M * K), *hb = fal(N * K), *g1 = fal(M * N), *g2 = fal(M * N);
    double         worst = 0;
    cl_mem         A, B, C;
    uint64_t       n0;
    size_t         i, j, k;

    gdn_rng_seed(&rng, 31);
    for (i = 0; i < M * K; i++)
        ha[i] = (float)gdn_rng_normal(&rng);
    for (i = 0; i < N * K; i++)
        hb[i] = (float)gdn_rng_normal(&rng);
    A = buf_from(ha, M * K), B = buf_from(hb, N * K);
    GDN_TEST_OK(gdn__buffer_create(gdn_test_ctx, M * N * sizeof(float), &C));
    set_skinny("200");
    n0 = gdn__gemm_skinny_launches();
    GDN_TEST_OK(gdn__gemm(gdn_test_ctx, false, true, M, N, K, 1.0f, A, 0, K, B, 0, K, 0.0f, C, 0,
                          N));
    buf_read(C, g1, M * N);
    ck_assert(gdn__gemm_skinny_launches() == n0 + 1);
    set_skinny("0");
    GDN_TEST_OK(gdn__gemm(gdn_test_ctx, false, true, M, N, K, 1.0f, A, 0, K, B, 0, K, 0.0f, C, 0,
                          N));
    buf_read(C, g2, M * N);
    set_skinny(NULL);
    for (i = 0; i < M; i++)
        for (j = 0; j < N; j++) {
            double s = 0, ref = 0;
            for (k = 0; k < K; k++) {
                ref += (double)ha[i * K + k] * hb[j * K + k];
                s += fabs((double)ha[i * K + k] * hb[j * K + k]);
            }
            ck_assert(fabs(g1[i * N + j] - ref) <= TOL_SKINNY * s);
            ck_assert(fabs(g1[i * N + j] - g2[i * N + j]) <= TOL_SKINNY * s);
            if (fabs(g1[i * N + j] - ref) / s > worst)
                worst = fabs(g1[i * N + j] - ref) / s;
        }
    printf("  skinny  M=200 (GDN_SKINNY=200) N=70 K=300: max err/scale %.2e\n", worst);
    gdn__buffer_release(A), gdn__buffer_release(B), gdn__buffer_release(C);
    free(ha), free(hb), free(g1), free(g2);
}
END_TEST

/* K == 0 (C = beta C, also over NaN with beta 0), M == 0 and N == 0 (C
 * untouched) for shapes the skinny path would take. */
START_TEST(test_skinny_degenerate)
{
    float  h[12], out[12];
    cl_mem A, B, C;
    int    i;

    for (i = 0; i < 12; i++)
        h[i] = (float)(i + 1);
    A = buf_from(h, 12), B = buf_from(h, 12);
    for (i = 0; i < 12; i++)
        h[i] = NAN;
    C = buf_from(h, 12);
    /* K = 0, beta = 0 over NaN: zeros in the 2 x 3 window (ldc 4, offset 1) */
    GDN_TEST_OK(gdn__gemm(gdn_test_ctx, false, true, 2, 3, 0, 1.0f, A, 0, 1, B, 0, 1, 0.0f, C, 1,
                          4));
    buf_read(C, out, 12);
    for (i = 0; i < 12; i++) {
        const int in = i >= 1 && (i - 1) % 4 < 3 && (i - 1) / 4 < 2;
        ck_assert_msg(in ? out[i] == 0.0f : isnan(out[i]), "K = 0: element %d = %g", i,
                      (double)out[i]);
    }
    /* K = 0, beta = 2 */
    for (i = 0; i < 12; i++)
        h[i] = (float)i;
    ck_assert_int_eq(clEnqueueWriteBuffer(gdn_test_ctx->queue, C, CL_TRUE, 0, sizeof(h), h, 0,
                                          NULL, NULL),
                     CL_SUCCESS);
    GDN_TEST_OK(gdn__gemm(gdn_test_ctx, false, true, 1, 12, 0, 1.0f, A, 0, 1, B, 0, 1, 2.0f, C, 0,
                          12));
    buf_read(C, out, 12);
    for (i = 0; i < 12; i++)
        ck_assert(out[i] == 2.0f * (float)i);
    /* M = 0 and N = 0: nothing written */
    GDN_TEST_OK(gdn__gemm(gdn_test_ctx, false, true, 0, 3, 4, 1.0f, A, 0, 4, B, 0, 4, 0.0f, C, 0,
                          3));
    GDN_TEST_OK(gdn__gemm(gdn_test_ctx, false, true, 2, 0, 4, 1.0f, A, 0, 4, B, 0, 4, 0.0f, C, 0,
                          1));
    buf_read(C, out, 12);
    for (i = 0; i < 12; i++)
        ck_assert(out[i] == 2.0f * (float)i);
    gdn__buffer_release(A), gdn__buffer_release(B), gdn__buffer_release(C);
}
END_TEST

/* The linear layer API at decode shapes goes through the skinny kernel:
 * y = x W^T + b for M = 1 (plain) and M = 2 grouped (strided batched). */
START_TEST(test_skinny_linear_api)
{
    static const int32_t shapes[2][4] = {{1, 1, 1536, 1536}, {2, 3, 96, 40}}; /* M G in out */
    int                  s;

    for (s = 0; s < 2; s++) {
        const int32_t  M = shapes[s][0], G = shapes[s][1], in = shapes[s][2], out = shapes[s][3];
        struct gdn_rng rng;
        double *x = calloc((size_t)(M * G * in), sizeof(double)),
               *w = calloc((size_t)(G * out * in), sizeof(double)),
               *bb = calloc((size_t)(G * out), sizeof(double)),
               *y = calloc((size_t)(M * G * out), sizeof(double));
        const int64_t xs3[3] = {M, G, in}, ys3[3] = {M, G, out}, ws3[3] = {G, out, in},
                      bs2[2] = {G, out};
        const int64_t xs2[2] = {M, in}, ys2[2] = {M, out}, ws2[2] = {out, in}, bs1[1] = {out};
        gdn_tensor     *tx, *tw, *tb, *ty;
        gdn_linear_args args;
        uint64_t        n0;
        size_t          i;
        char            desc[64];

        gdn_rng_seed(&rng, 50 + (uint64_t)s);
        gdn_rng_fill_normal(&rng, x, (size_t)(M * G * in), 1.0);
        gdn_rng_fill_normal(&rng, w, (size_t)(G * out * in), 1.0 / sqrt((double)in));
        gdn_rng_fill_normal(&rng, bb, (size_t)(G * out), 0.5);
        for (i = 0; i < (size_t)(M * G * in); i++)
            x[i] = (double)(float)x[i];
        for (i = 0; i < (size_t)(G * out * in); i++)
            w[i] = (double)(float)w[i];
        for (i = 0; i < (size_t)(G * out); i++)
            bb[i] = (double)(float)bb[i];
        if (G > 1) {
            tx = gdn_test_tensor(3, xs3, x), ty = gdn_test_tensor(3, ys3, NULL);
            tw = gdn_test_tensor(3, ws3, w), tb = gdn_test_tensor(2, bs2, bb);
        } else {
            tx = gdn_test_tensor(2, xs2, x), ty = gdn_test_tensor(2, ys2, NULL);
            tw = gdn_test_tensor(2, ws2, w), tb = gdn_test_tensor(1, bs1, bb);
        }
        memset(&args, 0, sizeof(args));
        args.x = tx, args.w = tw, args.b = tb;
        set_skinny(NULL);
        n0 = gdn__gemm_skinny_launches();
        GDN_TEST_OK(gdn_linear_forward(gdn_test_ctx, NULL, &args, ty));
        ck_assert(gdn__gemm_skinny_launches() == n0 + 1);
        ref_linear_fwd((size_t)M, (size_t)G, (size_t)in, (size_t)out, x, w, bb, y, 0);
        snprintf(desc, sizeof(desc), "linear M=%d G=%d in=%d out=%d", M, G, in, out);
        printf("  skinny  %-44s rel_rms %.2e\n", desc,
               gdn_test_expect(ty, y, TOL_SKINNY, "y", desc));
        gdn_tensor_destroy(tx), gdn_tensor_destroy(tw), gdn_tensor_destroy(tb);
        gdn_tensor_destroy(ty);
        free(x), free(w), free(bb), free(y);
    }
}
END_TEST

void gemm_skinny_add_tests(Suite *s);
void gemm_skinny_add_tests(Suite *s)
{
    TCase *tc = tcase_create("gemm_skinny");
    gdn_test_add_ctx_fixture(tc, 600);
    tcase_add_loop_test(tc, test_skinny_case, 0, (int)(sizeof(sk_cases) / sizeof(sk_cases[0])));
    tcase_add_loop_test(tc, test_skinny_plans, 0, (int)GDN_ARRAY_SIZE(sk_plans));
    tcase_add_test(tc, test_skinny_switch);
    tcase_add_test(tc, test_skinny_large_m);
    tcase_add_test(tc, test_skinny_degenerate);
    tcase_add_test(tc, test_skinny_linear_api);
    suite_add_tcase(s, tc);
}
