/*
 * gemm_skinny.c - host side of the skinny GEMM (cl/linear/skinny.cl): the
 * path choice (GDN_SKINNY), the plan (tuning space "linear/skinny" with
 * generic defaults), the alignment choice and the launch. Interface and
 * defaults in gemm_skinny.h; called by gdn__gemm_strided_batched (gemm.c).
 */
#define _POSIX_C_SOURCE 200809L
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__STDC_VERSION__) && __STDC_VERSION__ >= 201112L && !defined(__STDC_NO_ATOMICS__)
#    include <stdatomic.h>
#    define SKINNY_ATOMIC 1
#endif

#include "gemm_skinny.h"
#include "tune/tune.h"

#define SKINNY_CL "linear/skinny.cl"

/* Local memory a default plan may use per group: half of the device's, at
 * most 16 KiB (several groups per compute unit; 32 KiB devices work). */
#define SKINNY_LOCAL_BUDGET 16384u
/* Default groups wanted per compute unit before NPI / NC are shrunk. */
#define SKINNY_GROUPS_PER_CU 4
/* Work-group size the defaults aim for, and the smallest they shrink to
 * for more groups (a full AMD wavefront; two NVIDIA warps). */
#define SKINNY_WG     256
#define SKINNY_WG_MIN 64
/* KS cap: lanes splitting K. GPUs: 64 lanes x 16 B = 1 KiB contiguous per
 * W row and step; more would leave lanes without work for K ~ 1536. Other
 * devices (CPUs: PoCL runs a group as loops over its work-items, split at
 * each barrier): 16, as the reduction tree's barriers cost more there than
 * the longer per-lane sums (PoCL, 2 cores, M = 1 / 16 / 64 at
 * 1536 x 1536: KS = 16 took 0.6-0.65x the time of KS = 64). */
#define SKINNY_KS_MAX_GPU 64
#define SKINNY_KS_MAX_CPU 16
/* The largest accumulator tile the defaults use (MT x NPI = 32 floats). */
#define SKINNY_MT_MAX 8

/* ------------------------------------------------------------ counters */

#ifdef SKINNY_ATOMIC
static atomic_ullong skinny_launches;
uint64_t             gdn__gemm_skinny_launches(void)
{
    return (uint64_t)atomic_load(&skinny_launches);
}
static void count_launch(void)
{
    atomic_fetch_add(&skinny_launches, 1);
}
#else
static volatile uint64_t skinny_launches; /* approximate under threads */
uint64_t                 gdn__gemm_skinny_launches(void)
{
    return skinny_launches;
}
static void count_launch(void)
{
    skinny_launches++;
}
#endif

/* ------------------------------------------------------------ path choice */

size_t gdn__gemm_skinny_default_max_m(const gdn_context *ctx)
{
    return (ctx->dev.info.flags & GDN_DEVICE_FLAG_GPU) ? GDN_SKINNY_DEFAULT_MAX_M_GPU
                                                       : GDN_SKINNY_DEFAULT_MAX_M_OTHER;
}

size_t gdn__gemm_skinny_max_m(const gdn_context *ctx)
{
    const char *e = getenv("GDN_SKINNY");
    char       *end;
    long long   v;

    if (!e || !*e)
        return gdn__gemm_skinny_default_max_m(ctx);
    v = strtoll(e, &end, 10);
    if (end == e || *end || v < 0)
        return gdn__gemm_skinny_default_max_m(ctx); /* not a number: the default */
    return (size_t)v;
}

bool gdn__gemm_skinny_wanted(const gdn_context *ctx, bool trans_a, bool trans_b, size_t M,
                             size_t N, size_t K, size_t batch)
{
    const size_t lim = (size_t)INT32_MAX - 256; /* n0 + j, k + 4 stay below 2^31 */
    if (trans_a || !trans_b || M == 0 || N == 0 || K == 0 || batch == 0)
        return false;
    if (M > lim || N > lim || K > lim || M > gdn__gemm_skinny_max_m(ctx))
        return false;
    return true;
}

/* ------------------------------------------------------------ plan */

enum { P_MT, P_NPI, P_KS, P_NC, P_QT, P_COUNT };

static const struct gdn_tune_param skinny_params[P_COUNT] = {
    {"MT", 1, 5, {1, 2, 4, 8, 16}},
    {"NPI", 4, 4, {1, 2, 4, 8}},
    {"KS", 64, 9, {1, 2, 4, 8, 16, 32, 64, 128, 256}},
    {"NC", 4, 9, {1, 2, 4, 8, 16, 32, 64, 128, 256}},
    {"QT", 1, 8, {1, 2, 3, 4, 5, 6, 7, 8}},
};

static size_t div_up(size_t a, size_t b)
{
    return (a + b - 1) / b;
}

static uint64_t local_budget(const struct gdn_device *dev)
{
    uint64_t b = dev->info.local_mem_bytes / 2;
    return b < SKINNY_LOCAL_BUDGET ? b : SKINNY_LOCAL_BUDGET;
}

/* Derived sizes of (mt, npi, ks, nc, qt): rc, wg, local bytes, grid. */
static void derive(const int32_t *v, const struct gdn_skinny_problem *pr,
                   const struct gdn_device *dev, struct gdn_skinny_plan *p)
{
    const uint64_t lm_x   = (uint64_t)v[P_MT] * 4u * (uint64_t)v[P_KS] * (uint64_t)v[P_QT];
    const uint64_t budget = local_budget(dev) / 4; /* floats */
    uint64_t       lm;

    p->mt  = v[P_MT];
    p->npi = v[P_NPI];
    p->ks  = v[P_KS];
    p->nc  = v[P_NC];
    p->qt  = v[P_QT];
    p->wg  = p->ks * p->nc;
    p->vec = 0;
    /* reduction rounds: all NPI columns at once when that fits beside the A
     * tile (or the budget), else fewer per round */
    p->rc = p->npi;
    while (p->rc > 1 &&
           (uint64_t)p->wg * (uint64_t)p->mt * (uint64_t)p->rc > (lm_x > budget ? lm_x : budget))
        p->rc /= 2;
    lm = (uint64_t)p->wg * (uint64_t)p->mt * (uint64_t)(p->ks > 1 ? p->rc : 0);
    if (lm < lm_x)
        lm = lm_x;
    p->local_bytes = (size_t)(4 * ((lm + 3) / 4) * 4);
    p->n_blocks    = div_up((size_t)pr->N, (size_t)p->nc * (size_t)p->npi);
    p->m_tiles     = div_up((size_t)pr->M, (size_t)p->mt);
    p->groups      = (size_t)pr->batch * p->n_blocks * p->m_tiles;
}

static bool skinny_valid(const int32_t *v, const void *problem, const struct gdn_device *dev)
{
    const struct gdn_skinny_problem *pr = problem;
    struct gdn_skinny_plan           p;
    derive(v, pr, dev, &p);
    return (uint64_t)p.wg <= dev->info.max_work_group_size &&
           (uint64_t)p.local_bytes <= dev->info.local_mem_bytes &&
           p.groups <= (size_t)INT32_MAX && p.groups * (size_t)p.wg / (size_t)p.wg == p.groups;
}

static int32_t pow2_ceil(int64_t x)
{
    int32_t p = 1;
    while (p < x && p < (1 << 30))
        p *= 2;
    return p;
}

static void skinny_defaults(int32_t *v, const void *problem, const struct gdn_device *dev)
{
    const struct gdn_skinny_problem *pr     = problem;
    const int64_t                    K4     = (pr->K + 3) / 4;
    const uint64_t                   budget = local_budget(dev) / 4; /* floats */
    const size_t                     cu     = dev->info.compute_units ? dev->info.compute_units : 1;
    const size_t                     target = SKINNY_GROUPS_PER_CU * cu;
    size_t                           max_wg = dev->info.max_work_group_size;
    int32_t                          mt, ks, nc, npi, qt, qt_max;

    if (max_wg < 1)
        max_wg = 1;
    mt = pow2_ceil(pr->M < SKINNY_MT_MAX ? pr->M : SKINNY_MT_MAX);
    /* K lanes: at least 4 quads each; the order of the sums depends on KS,
     * so it is chosen from K (and the device's work-group limit) only. */
    ks = (dev->info.flags & GDN_DEVICE_FLAG_GPU) ? SKINNY_KS_MAX_GPU : SKINNY_KS_MAX_CPU;
    while (ks > 1 && ((int64_t)ks * 4 > K4 || (size_t)ks > max_wg))
        ks /= 2;
    /* the A tile holds at least one quad per lane */
    while (ks > 1 && (uint64_t)mt * 4u * (uint64_t)ks > budget)
        ks /= 2;
    nc = SKINNY_WG / ks;
    while (nc > 1 && (size_t)(ks * nc) > max_wg)
        nc /= 2;
    npi = 4;
    /* more groups for a large device when M and N are small */
    for (;;) {
        size_t groups = (size_t)pr->batch * div_up((size_t)pr->N, (size_t)(nc * npi)) *
                        div_up((size_t)pr->M, (size_t)mt);
        if (groups >= target)
            break;
        if (npi > 1)
            npi /= 2;
        else if (nc > 1 && ks * nc > SKINNY_WG_MIN)
            nc /= 2;
        else
            break;
    }
    /* K tile: all of K when it fits, else whole tiles, else the most */
    qt_max = (int32_t)(budget / ((uint64_t)mt * 4u * (uint64_t)ks));
    if (qt_max > 8)
        qt_max = 8;
    if (qt_max < 1)
        qt_max = 1;
    if (div_up((size_t)K4, (size_t)ks) <= (size_t)qt_max) {
        qt = (int32_t)div_up((size_t)K4, (size_t)ks);
    } else {
        qt = qt_max;
        for (int32_t q = qt_max; q >= 1; q--)
            if (pr->K % (4 * (int64_t)ks * q) == 0) {
                qt = q;
                break;
            }
        if (qt < qt_max / 2)
            qt = qt_max; /* tiny whole tiles cost more barriers than one partial tile */
    }
    if (qt < 1)
        qt = 1;
    v[P_MT] = mt, v[P_NPI] = npi, v[P_KS] = ks, v[P_NC] = nc, v[P_QT] = qt;
    /* a device too small for even this (local memory below a few KiB):
     * shrink until valid, or leave it to skinny_valid to refuse */
    while (!skinny_valid(v, pr, dev) && (v[P_NC] > 1 || v[P_QT] > 1 || v[P_KS] > 1)) {
        if (v[P_NC] > 1)
            v[P_NC] /= 2;
        else if (v[P_QT] > 1)
            v[P_QT] = 1;
        else
            v[P_KS] /= 2;
    }
}

const struct gdn_tune_space gdn__skinny_space = {
    "linear/skinny", P_COUNT, skinny_params, skinny_valid, skinny_defaults,
};

bool gdn__gemm_skinny_plan(gdn_context *ctx, const struct gdn_skinny_problem *pr,
                           struct gdn_skinny_plan *p)
{
    int32_t              v[P_COUNT];
    char                 bucket[32];
    enum gdn_tune_source src = GDN_TUNE_SRC_GENERIC;

    snprintf(bucket, sizeof(bucket), "M%d",
             (int)pow2_ceil(pr->M < (1 << 20) ? pr->M : (1 << 20)));
    gdn__tune_lookup(ctx, &gdn__skinny_space, bucket, pr, v, &src);
    derive(v, pr, &ctx->dev, p);
    p->source = (int32_t)src;
    return skinny_valid(v, pr, &ctx->dev);
}

/* ------------------------------------------------------------ launch */

static gdn_status arg_ulong(gdn_context *ctx, cl_kernel k, cl_uint i, size_t v)
{
    cl_ulong x   = (cl_ulong)v;
    cl_int   err = clSetKernelArg(k, i, sizeof(x), &x);
    return err == CL_SUCCESS ? GDN_STATUS_OK : gdn__fail_cl(ctx, err, "gemm_skinny: argument");
}

/* Can k run groups of wg? As gdn__kernel_check_wg, without recording an
 * error (the caller falls back instead). */
static bool kernel_fits(gdn_context *ctx, cl_kernel k, size_t wg)
{
    size_t kwg = 0, reqd[3] = {0, 0, 0};
    if (clGetKernelWorkGroupInfo(k, ctx->dev.id, CL_KERNEL_WORK_GROUP_SIZE, sizeof(kwg), &kwg,
                                 NULL) != CL_SUCCESS)
        return false;
    if (kwg >= wg)
        return true;
    /* rusticl reports its SIMD width for kernels with a required size */
    return clGetKernelWorkGroupInfo(k, ctx->dev.id, CL_KERNEL_COMPILE_WORK_GROUP_SIZE,
                                    sizeof(reqd), reqd, NULL) == CL_SUCCESS &&
           reqd[0] == wg && wg <= ctx->dev.info.max_work_group_size;
}

gdn_status gdn__gemm_skinny(gdn_context *ctx, size_t M, size_t N, size_t K, float alpha,
                            cl_mem A, size_t off_a, size_t lda, size_t stride_a, cl_mem B,
                            size_t off_b, size_t ldb, size_t stride_b, float beta, cl_mem C,
                            size_t off_c, size_t ldc, size_t stride_c, size_t batch, bool *ran)
{
    struct gdn_skinny_problem pr;
    struct gdn_skinny_plan    p;
    struct gdn_define         defs[7];
    char                      opts[192];
    cl_kernel                 k = NULL;
    size_t                    global, local;
    gdn_status                st;
    int                       attempt;

    *ran = false;
    pr.M = (int64_t)M, pr.N = (int64_t)N, pr.K = (int64_t)K, pr.batch = (int64_t)batch;
    if (!gdn__gemm_skinny_plan(ctx, &pr, &p))
        return GDN_STATUS_OK;
    p.vec = off_b % 4 == 0 && ldb % 4 == 0 && (batch == 1 || stride_b % 4 == 0) &&
            ctx->dev.mem_base_align_bytes >= 16;
    for (attempt = 0;; attempt++) {
        defs[0].name = "MT", defs[0].value = p.mt;
        defs[1].name = "NPI", defs[1].value = p.npi;
        defs[2].name = "KS", defs[2].value = p.ks;
        defs[3].name = "NC", defs[3].value = p.nc;
        defs[4].name = "QT", defs[4].value = p.qt;
        defs[5].name = "RC", defs[5].value = p.rc;
        defs[6].name = "VEC", defs[6].value = p.vec;
        if (!gdn__defines_format(defs, GDN_ARRAY_SIZE(defs), opts, sizeof(opts)))
            return gdn__fail(ctx, GDN_STATUS_INTERNAL, "gemm_skinny: options too long");
        if ((st = gdn__kernel_get(ctx, SKINNY_CL, opts, "gemm_skinny_nt", &k)))
            return st;
        if (kernel_fits(ctx, k, (size_t)p.wg))
            break;
        /* the kernel allows fewer work-items (registers): fewer column
         * slots keep the summation order; past that, give up */
        if (p.nc == 1 || attempt == 8) {
            gdn__log(ctx, GDN_LOG_LEVEL_INFO,
                     "gemm_skinny: no work-group size fits (%s); using CLBlast", opts);
            return GDN_STATUS_OK;
        }
        {
            int32_t v[P_COUNT] = {p.mt, p.npi, p.ks, p.nc / 2, p.qt};
            int32_t vec = p.vec, source = p.source;
            derive(v, &pr, &ctx->dev, &p);
            p.vec = vec, p.source = source;
        }
    }
    if ((st = gdn__arg_int(ctx, k, 0, (int32_t)M)) || (st = gdn__arg_int(ctx, k, 1, (int32_t)N)) ||
        (st = gdn__arg_int(ctx, k, 2, (int32_t)K)) || (st = gdn__arg_float(ctx, k, 3, alpha)) ||
        (st = gdn__arg_float(ctx, k, 4, beta)) || (st = gdn__arg_mem(ctx, k, 5, A)) ||
        (st = arg_ulong(ctx, k, 6, off_a)) || (st = arg_ulong(ctx, k, 7, lda)) ||
        (st = arg_ulong(ctx, k, 8, batch > 1 ? stride_a : 0)) ||
        (st = gdn__arg_mem(ctx, k, 9, B)) || (st = arg_ulong(ctx, k, 10, off_b)) ||
        (st = arg_ulong(ctx, k, 11, ldb)) ||
        (st = arg_ulong(ctx, k, 12, batch > 1 ? stride_b : 0)) ||
        (st = gdn__arg_mem(ctx, k, 13, C)) || (st = arg_ulong(ctx, k, 14, off_c)) ||
        (st = arg_ulong(ctx, k, 15, ldc)) ||
        (st = arg_ulong(ctx, k, 16, batch > 1 ? stride_c : 0)) ||
        (st = gdn__arg_int(ctx, k, 17, (int32_t)p.n_blocks)) ||
        (st = gdn__arg_int(ctx, k, 18, (int32_t)p.m_tiles)))
        return st;
    local  = (size_t)p.wg;
    global = p.groups * local;
    if ((st = gdn__launch(ctx, k, 1, &global, &local, NULL)))
        return st;
    count_launch();
    *ran = true;
    return GDN_STATUS_OK;
}
