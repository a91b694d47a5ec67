/*
 * colsum.c - host side of cl/norm/colsum.cl: the deterministic second stage
 * of the row reductions of the layer ops (norm dweight, conv dweight and
 * dbias). See the kernel file for the math and the decomposition.
 */
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
 * row) times 8 strips = 256 work-items; fewer strips when P is small. */
static void colsum_plan_default(int32_t P, int32_t M, struct colsum_plan *p)
{
    p->ct = gdn__pow2_ceil_i32(M < 32 ? (M > 0 ? M : 1) : 32);
    p->ps = 256 / p->ct;
    while (p->ps > 1 && p->ps / 2 >= P)
        p->ps /= 2;
}

static gdn_status colsum_plan_fit(gdn_context *ctx, int32_t M, size_t max_wg,
                                  struct colsum_plan *p)
{
    for (;;) {
        p->local = (size_t)p->ct * (size_t)p->ps;
        if (p->local <= max_wg && p->local * sizeof(float) <= ctx->dev.info.local_mem_bytes)
            break;
        if (p->ps > 1)
            p->ps /= 2;
        else if (p->ct > 1)
            p->ct /= 2;
        else
            return gdn__fail(ctx, GDN_STATUS_UNSUPPORTED,
                             "norm colsum: no work-group fits the device (max %zu)", max_wg);
    }
    p->groups = ((size_t)M + (size_t)p->ct - 1) / (size_t)p->ct;
    return GDN_STATUS_OK;
}

gdn_status gdn__norm_colsum(gdn_context *ctx, cl_mem in, int32_t P, int32_t M, cl_mem out)
{
    struct colsum_plan p;
    cl_kernel          k;
    size_t             max_wg = ctx->dev.info.max_work_group_size, kwg = 0, global;
    gdn_status         st;
    cl_int             err;

    if (M <= 0)
        return GDN_STATUS_OK;
    if ((st = gdn__kernel_get(ctx, COLSUM_CL, "", COLSUM_ENTRY, &k)))
        return st;
    err = clGetKernelWorkGroupInfo(k, ctx->dev.id, CL_KERNEL_WORK_GROUP_SIZE, sizeof(kwg), &kwg,
                                   NULL);
    if (err != CL_SUCCESS)
        return gdn__fail_cl(ctx, err, "norm colsum: CL_KERNEL_WORK_GROUP_SIZE");
    if (kwg < max_wg)
        max_wg = kwg;
    colsum_plan_default(P, M, &p);
    if ((st = colsum_plan_fit(ctx, M, max_wg, &p)))
        return st;
    if ((st = gdn__arg_mem(ctx, k, 0, in)) || (st = gdn__arg_mem(ctx, k, 1, out)) ||
        (st = gdn__arg_local(ctx, k, 2, p.local * sizeof(float))) ||
        (st = gdn__arg_int(ctx, k, 3, P)) || (st = gdn__arg_int(ctx, k, 4, M)) ||
        (st = gdn__arg_int(ctx, k, 5, p.ct)) || (st = gdn__arg_int(ctx, k, 6, p.ps)))
        return st;
    global = p.groups * p.local;
    return gdn__launch(ctx, k, 1, &global, &p.local, NULL);
}
