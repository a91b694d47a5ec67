/*
 * colsum.c - host side of cl/norm/colsum.cl: the deterministic second stage
 * of the row reductions of the layer ops (norm dweight, conv dweight and
 * dbias). See the kernel file for the math and the decomposition.
 */
#include <stdio.h>

#include "norm.h"

#define COLSUM_CL    "norm/colsum.cl"
#define COLSUM_ENTRY "norm_colsum"

/* Plan of norm_colsum (runtime values only; the program has no -D options). */
struct colsum_plan {
    int32_t ct;     /* columns per work-group (power of two)                   */
    int32_t ps;     /* row strips per work-group (power of two)                */
    size_t  local;  /* ct * ps                                                 */
    size_t  groups; /* ceil(M / ct)                                            */
};

/* Generic default: 32 columns (one warp reads 128 contiguous bytes of a
 * row) times 8 strips = 256 work-items; fewer strips when P is small; then
 * shrunk (strips first) to the work-group limit and local memory. False
 * when nothing fits. */
static bool colsum_plan_default(int32_t P, int32_t M, size_t max_wg, uint64_t lmem,
                                struct colsum_plan *p)
{
    p->ct = gdn__pow2_ceil_i32(M < 32 ? (M > 0 ? M : 1) : 32);
    p->ps = 256 / p->ct;
    while (p->ps > 1 && p->ps / 2 >= P)
        p->ps /= 2;
    for (;;) {
        p->local = (size_t)p->ct * (size_t)p->ps;
        if (p->local <= max_wg && p->local * sizeof(float) <= lmem)
            return true;
        if (p->ps > 1)
            p->ps /= 2;
        else if (p->ct > 1)
            p->ct /= 2;
        else
            return false;
    }
}

/* ------------------------------------------------------ tuning space
 *
 * norm/colsum: CT and PS, bucket "M<pow2 ceil of M>.P<pow2 ceil of P>"
 * (each capped at 2^20). Legal: CT at most M and PS at most P rounded up
 * to powers of two (no group of idle columns or strips), CT * PS within
 * the device's and the kernel's work-group limits and local memory, and on
 * llvmpipe a strip loop (P / PS rows, then PS partial sums) under its loop
 * cap. defaults(): colsum_plan_default, the values it always ran with. */

static const struct gdn_tune_param colsum_params[] = {
    {"CT", 32, 11, {1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024}},
    {"PS", 8, 11, {1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024}},
};

static size_t colsum_max_wg(const struct gdn_colsum_tune_problem *pr,
                            const struct gdn_device *dev)
{
    return pr->kwg && pr->kwg < dev->info.max_work_group_size ? pr->kwg
                                                                : dev->info.max_work_group_size;
}

static bool colsum_valid(const int32_t *v, const void *problem, const struct gdn_device *dev)
{
    const struct gdn_colsum_tune_problem *pr = problem;
    const size_t                          local = (size_t)v[0] * (size_t)v[1];
    const int64_t                         P     = pr->P > 0 ? pr->P : 1;
    return v[0] <= gdn__pow2_ceil_i32(pr->M > 0 ? pr->M : 1) &&
           v[1] <= gdn__pow2_ceil_i32((int32_t)P) && local <= colsum_max_wg(pr, dev) && local * sizeof(float) <= dev->info.local_mem_bytes &&
           (P + v[1] - 1) / v[1] + v[1] <= gdn__layer_loop_cap(dev);
}

static void colsum_defaults(int32_t *v, const void *problem, const struct gdn_device *dev)
{
    const struct gdn_colsum_tune_problem *pr = problem;
    struct colsum_plan                    p;
    /* nothing fits: the launch reports it */
    (void)colsum_plan_default(pr->P, pr->M, colsum_max_wg(pr, dev), dev->info.local_mem_bytes,
                              &p);
    v[0] = p.ct, v[1] = p.ps;
}

const struct gdn_tune_space gdn__norm_colsum_space = {
    "norm/colsum", (int32_t)GDN_ARRAY_SIZE(colsum_params), colsum_params, colsum_valid,
    colsum_defaults};

static int32_t size_class(int32_t x)
{
    return gdn__pow2_ceil_i32(x < 1 ? 1 : x > (1 << 20) ? (1 << 20) : x);
}

gdn_status gdn__norm_colsum(gdn_context *ctx, cl_mem in, int32_t P, int32_t M, cl_mem out)
{
    struct gdn_colsum_tune_problem pr;
    struct colsum_plan             p;
    cl_kernel                      k;
    size_t                         kwg = 0, global;
    int32_t                        v[GDN_TUNE_MAX_PARAMS];
    char                           bucket[32];
    gdn_status                     st;
    cl_int                         err;

    if (M <= 0)
        return GDN_STATUS_OK;
    if ((st = gdn__kernel_get(ctx, COLSUM_CL, "", COLSUM_ENTRY, &k)))
        return st;
    err = clGetKernelWorkGroupInfo(k, ctx->dev.id, CL_KERNEL_WORK_GROUP_SIZE, sizeof(kwg), &kwg,
                                   NULL);
    if (err != CL_SUCCESS)
        return gdn__fail_cl(ctx, err, "norm colsum: CL_KERNEL_WORK_GROUP_SIZE");
    pr.P = P, pr.M = M, pr.kwg = kwg;
    snprintf(bucket, sizeof(bucket), "M%d.P%d", (int)size_class(M), (int)size_class(P));
    gdn__tune_lookup(ctx, &gdn__norm_colsum_space, bucket, &pr, v, NULL);
    p.ct = v[0], p.ps = v[1];
    p.local = (size_t)p.ct * (size_t)p.ps;
    if (p.local > colsum_max_wg(&pr, &ctx->dev) ||
        p.local * sizeof(float) > ctx->dev.info.local_mem_bytes)
        return gdn__fail(ctx, GDN_STATUS_UNSUPPORTED,
                         "norm colsum: no work-group fits the device (max %zu)",
                         colsum_max_wg(&pr, &ctx->dev));
    p.groups = ((size_t)M + (size_t)p.ct - 1) / (size_t)p.ct;
    if ((st = gdn__arg_mem(ctx, k, 0, in)) || (st = gdn__arg_mem(ctx, k, 1, out)) ||
        (st = gdn__arg_local(ctx, k, 2, p.local * sizeof(float))) ||
        (st = gdn__arg_int(ctx, k, 3, P)) || (st = gdn__arg_int(ctx, k, 4, M)) ||
        (st = gdn__arg_int(ctx, k, 5, p.ct)) || (st = gdn__arg_int(ctx, k, 6, p.ps)))
        return st;
    global = p.groups * p.local;
    return gdn__launch(ctx, k, 1, &global, &p.local, NULL);
}
