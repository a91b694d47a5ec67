/*
 * elementwise.c - SiLU, sigmoid and softplus (threshold 20, as PyTorch) with
 * their backward, and the residual add: host side of cl/norm/elementwise.cl
 * (argument checks, plan, launch).
 */
#include <stdio.h>

#include "norm.h"

#define ELEMENTWISE_CL "norm/elementwise.cl"

/* Plan of the element-wise kernels: no -D options; a grid-stride loop over
 * quads of 4 floats in work-groups of `local`. */
struct elementwise_plan {
    size_t local;  /* work-group size                                        */
    size_t global; /* work-items: min(quads, gpc groups per compute unit)    */
};

/* ------------------------------------------------------ tuning spaces
 *
 * norm/act_fwd, norm/act_bwd, norm/add: WG (work-group size) and GPC (the
 * grid-stride loop's groups per compute unit: global = min(quads,
 * GPC * compute units * WG)). Bucket "N2^<k>": numel <= 2^k, k = 12, 16,
 * 20, ... Legal: WG within the device's and the kernel's work-group limits,
 * and on llvmpipe the grid-stride loop under its loop cap. defaults(): 256
 * work-items (halved to the limits) and 64 groups per compute unit, the
 * values these kernels always ran with. */

static const struct gdn_tune_param elementwise_params[] = {
    {"WG", 256, 11, {1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024}},
    {"GPC", 64, 9, {1, 2, 4, 8, 16, 32, 64, 128, 256}},
};

static size_t elementwise_max_wg(const struct gdn_elementwise_tune_problem *pr,
                                 const struct gdn_device *dev)
{
    return pr->kwg && pr->kwg < dev->info.max_work_group_size ? pr->kwg
                                                                : dev->info.max_work_group_size;
}

static size_t elementwise_global(size_t n, size_t wg, size_t gpc, const struct gdn_device *dev)
{
    const size_t quads = (n + 3) / 4;
    const size_t cap   = gpc * (dev->info.compute_units ? dev->info.compute_units : 1) * wg;
    const size_t g     = quads < cap ? quads : cap;
    return g ? g : 1;
}

static bool elementwise_valid(const int32_t *v, const void *problem, const struct gdn_device *dev)
{
    const struct gdn_elementwise_tune_problem *pr = problem;
    const size_t                               wg = (size_t)v[0];
    size_t                                     global;
    if (wg > elementwise_max_wg(pr, dev))
        return false;
    /* the launch rounds global up to a multiple of wg */
    global = (elementwise_global(pr->n, wg, (size_t)v[1], dev) + wg - 1) / wg * wg;
    return (int64_t)((pr->n / 4 + global - 1) / global) + 3 <= gdn__layer_loop_cap(dev);
}

static void elementwise_defaults(int32_t *v, const void *problem, const struct gdn_device *dev)
{
    const size_t max_wg = elementwise_max_wg(problem, dev);
    int32_t      wg     = 256;
    while (wg > 1 && (size_t)wg > max_wg)
        wg /= 2;
    v[0] = wg, v[1] = 64;
}

#define ELEMENTWISE_SPACE(VAR, STAGE)                                                             \
    const struct gdn_tune_space VAR = {STAGE, (int32_t)GDN_ARRAY_SIZE(elementwise_params),        \
                                       elementwise_params, elementwise_valid, elementwise_defaults}
ELEMENTWISE_SPACE(gdn__norm_act_fwd_space, "norm/act_fwd");
ELEMENTWISE_SPACE(gdn__norm_act_bwd_space, "norm/act_bwd");
ELEMENTWISE_SPACE(gdn__norm_add_space, "norm/add");

/* The plan of kernel k over n elements from space's lookup. */
static gdn_status elementwise_plan(gdn_context *ctx, const struct gdn_tune_space *space,
                                   cl_kernel k, size_t n, struct elementwise_plan *p)
{
    struct gdn_elementwise_tune_problem pr;
    int32_t                             v[GDN_TUNE_MAX_PARAMS];
    char                                bucket[16];
    int                                 lg = 12;
    size_t                              kwg = 0;
    cl_int err = clGetKernelWorkGroupInfo(k, ctx->dev.id, CL_KERNEL_WORK_GROUP_SIZE, sizeof(kwg),
                                          &kwg, NULL);
    if (err != CL_SUCCESS)
        return gdn__fail_cl(ctx, err, "elementwise: CL_KERNEL_WORK_GROUP_SIZE");
    pr.n = n, pr.kwg = kwg;
    while (lg < 60 && ((uint64_t)1 << lg) < (uint64_t)n)
        lg += 4;
    snprintf(bucket, sizeof(bucket), "N2^%d", lg);
    gdn__tune_lookup(ctx, space, bucket, &pr, v, NULL);
    p->local  = (size_t)v[0];
    p->global = elementwise_global(n, p->local, (size_t)v[1], &ctx->dev);
    return GDN_STATUS_OK;
}

/* Same context, F32, same shape as `like`. */
static gdn_status check_like(gdn_context *ctx, const gdn_tensor *t, const char *name,
                             const gdn_tensor *like)
{
    return gdn__check_tensor(ctx, t, name, GDN_DTYPE_F32, like->ndim, like->shape);
}

static gdn_status set_n(gdn_context *ctx, cl_kernel k, cl_uint a, size_t n)
{
    gdn_status st = gdn__arg_int(ctx, k, a, (int32_t)(n >> 31));
    return st ? st : gdn__arg_int(ctx, k, a + 1, (int32_t)(n & 0x7fffffff));
}

static gdn_status check_first(gdn_context *ctx, const char *fn, const gdn_tensor *t,
                              const char *name)
{
    if (!t)
        return gdn__fail(ctx, GDN_STATUS_INVALID_ARGUMENT, "%s: %s is NULL", fn, name);
    if (t->ctx != ctx)
        return gdn__fail(ctx, GDN_STATUS_INVALID_ARGUMENT, "%s: %s belongs to another context",
                         fn, name);
    if (t->dtype != GDN_DTYPE_F32)
        return gdn__fail(ctx, GDN_STATUS_SHAPE_MISMATCH, "%s: %s must be F32", fn, name);
    if ((uint64_t)t->numel > ((uint64_t)INT32_MAX << 31))
        return gdn__fail(ctx, GDN_STATUS_UNSUPPORTED, "%s: %s is too large", fn, name);
    return GDN_STATUS_OK;
}

static gdn_status check_act(gdn_context *ctx, const char *fn, gdn_activation act)
{
    if ((int)act < GDN_ACTIVATION_SILU || (int)act > GDN_ACTIVATION_SOFTPLUS)
        return gdn__fail(ctx, GDN_STATUS_INVALID_ARGUMENT, "%s: act = %d is not a gdn_activation",
                         fn, (int)act);
    return GDN_STATUS_OK;
}

gdn_status gdn_activation_forward(gdn_context *ctx, gdn_activation act, const gdn_tensor *x,
                                  gdn_tensor *y)
{
    static const char      *fn = "gdn_activation_forward";
    struct elementwise_plan p;
    cl_kernel               k;
    size_t                  n;
    gdn_status              st;

    if (!ctx)
        return GDN_STATUS_INVALID_ARGUMENT;
    if ((st = check_act(ctx, fn, act)) || (st = check_first(ctx, fn, x, "x")) ||
        (st = check_like(ctx, y, "y", x)))
        return st;
    n = (size_t)x->numel;
    if (n == 0)
        return GDN_STATUS_OK;
    if ((st = gdn__kernel_get(ctx, ELEMENTWISE_CL, "", "elementwise_act_fwd", &k)) ||
        (st = elementwise_plan(ctx, &gdn__norm_act_fwd_space, k, n, &p)))
        return st;
    if ((st = gdn__arg_mem(ctx, k, 0, x->mem)) || (st = gdn__arg_mem(ctx, k, 1, y->mem)) ||
        (st = set_n(ctx, k, 2, n)) || (st = gdn__arg_int(ctx, k, 4, (int32_t)act)))
        return st;
    return gdn__launch(ctx, k, 1, &p.global, &p.local, NULL);
}

gdn_status gdn_activation_backward(gdn_context *ctx, gdn_activation act, const gdn_tensor *x,
                                   const gdn_tensor *dy, gdn_tensor *dx)
{
    static const char      *fn = "gdn_activation_backward";
    struct elementwise_plan p;
    cl_kernel               k;
    size_t                  n;
    gdn_status              st;

    if (!ctx)
        return GDN_STATUS_INVALID_ARGUMENT;
    if ((st = check_act(ctx, fn, act)) || (st = check_first(ctx, fn, x, "x")) ||
        (st = check_like(ctx, dy, "dy", x)) || (st = check_like(ctx, dx, "dx", x)))
        return st;
    if (dx == x)
        return gdn__fail(ctx, GDN_STATUS_INVALID_ARGUMENT,
                         "%s: dx must not be x (dx may be dy)", fn);
    n = (size_t)x->numel;
    if (n == 0)
        return GDN_STATUS_OK;
    if ((st = gdn__kernel_get(ctx, ELEMENTWISE_CL, "", "elementwise_act_bwd", &k)) ||
        (st = elementwise_plan(ctx, &gdn__norm_act_bwd_space, k, n, &p)))
        return st;
    if ((st = gdn__arg_mem(ctx, k, 0, x->mem)) || (st = gdn__arg_mem(ctx, k, 1, dy->mem)) ||
        (st = gdn__arg_mem(ctx, k, 2, dx->mem)) || (st = set_n(ctx, k, 3, n)) ||
        (st = gdn__arg_int(ctx, k, 5, (int32_t)act)))
        return st;
    return gdn__launch(ctx, k, 1, &p.global, &p.local, NULL);
}

gdn_status gdn_residual_add(gdn_context *ctx, const gdn_tensor *a, const gdn_tensor *b,
                            gdn_tensor *y)
{
    static const char      *fn = "gdn_residual_add";
    struct elementwise_plan p;
    cl_kernel               k;
    size_t                  n;
    gdn_status              st;

    if (!ctx)
        return GDN_STATUS_INVALID_ARGUMENT;
    if ((st = check_first(ctx, fn, a, "a")) || (st = check_like(ctx, b, "b", a)) ||
        (st = check_like(ctx, y, "y", a)))
        return st;
    n = (size_t)a->numel;
    if (n == 0)
        return GDN_STATUS_OK;
    if ((st = gdn__kernel_get(ctx, ELEMENTWISE_CL, "", "elementwise_add", &k)) ||
        (st = elementwise_plan(ctx, &gdn__norm_add_space, k, n, &p)))
        return st;
    if ((st = gdn__arg_mem(ctx, k, 0, a->mem)) || (st = gdn__arg_mem(ctx, k, 1, b->mem)) ||
        (st = gdn__arg_mem(ctx, k, 2, y->mem)) || (st = set_n(ctx, k, 3, n)))
        return st;
    return gdn__launch(ctx, k, 1, &p.global, &p.local, NULL);
}
