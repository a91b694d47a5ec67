/*
 * cross_entropy.c - softmax cross-entropy loss over a vocabulary, forward
 * and backward (cl/loss/cross_entropy.cl has the math).
 *
 * Forward: cross_entropy_fwd (one group per row: lse, row loss), then
 * cross_entropy_reduce (one group: loss, count). Backward:
 * [cross_entropy_fwd into scratch when lse is not given],
 * cross_entropy_bwd_scale (one group: dloss / count), cross_entropy_bwd
 * (elementwise, WG * PER columns of one row per group).
 */
#include <string.h>

#include "linear.h"

#define CE_CL "loss/cross_entropy.cl"

static size_t div_up(size_t a, size_t b)
{
    return (a + b - 1) / b;
}

/* ------------------------------------------------------ plans and spaces
 *
 * All CE kernels share one program source: -DWG -DPER (PER is used by
 * cross_entropy_bwd only; the others are built with PER = 4).
 *   linear/ce_fwd        cross_entropy_fwd, one group per row: WG (2 WG
 *                        floats of local memory); bucket "N2^k" of V
 *   linear/ce_reduce     cross_entropy_reduce, one group: WG (WG floats and
 *                        WG ints); bucket of M
 *   linear/ce_bwd_scale  cross_entropy_bwd_scale, one group: WG (WG ints);
 *                        bucket of M
 *   linear/ce_bwd        cross_entropy_bwd, WG * PER columns of one row per
 *                        group: WG, PER; bucket of V
 * defaults(): WG 256 halved to the device's limits (the reductions' local
 * memory included; ce_bwd_scale keeps the reduce plan it always shared),
 * PER 4: the old plans. The reductions' order depends on WG only, so a plan
 * gives the same bits every run. */
#define CE_PER_DEFAULT 4

static int64_t log2_wg(int32_t wg)
{
    int64_t l = 0;
    while ((1 << l) < wg)
        l++;
    return l;
}

/* A one-pass strided loop over `len` items by WG work-items, then a tree. */
static bool ce_loop_ok(int64_t len, int32_t wg, const struct gdn_device *dev)
{
    return (len + wg - 1) / wg + log2_wg(wg) + 1 <= gdn__lin_loop_cap(dev);
}

static bool ce_fwd_valid(const int32_t *v, const void *problem, const struct gdn_device *dev)
{
    const struct gdn_lin_tune_problem *pr = problem;
    return gdn__lin_wg_fits(v[0], dev, 2 * sizeof(float)) && ce_loop_ok(pr->cols, v[0], dev);
}

static void ce_fwd_defaults(int32_t *v, const void *problem, const struct gdn_device *dev)
{
    (void)problem;
    v[0] = gdn__lin_wg_default(dev, 2 * sizeof(float));
}

static bool ce_reduce_valid(const int32_t *v, const void *problem, const struct gdn_device *dev)
{
    const struct gdn_lin_tune_problem *pr = problem;
    return gdn__lin_wg_fits(v[0], dev, sizeof(float) + sizeof(int32_t)) &&
           ce_loop_ok(pr->n, v[0], dev);
}

static bool ce_scale_valid(const int32_t *v, const void *problem, const struct gdn_device *dev)
{
    const struct gdn_lin_tune_problem *pr = problem;
    return gdn__lin_wg_fits(v[0], dev, sizeof(int32_t)) && ce_loop_ok(pr->n, v[0], dev);
}

static void ce_reduce_defaults(int32_t *v, const void *problem, const struct gdn_device *dev)
{
    (void)problem;
    v[0] = gdn__lin_wg_default(dev, sizeof(float) + sizeof(int32_t));
}

static size_t ce_bwd_nb(int64_t V, int32_t wg, int32_t per)
{
    return div_up((size_t)V, (size_t)wg * (size_t)per);
}

static bool ce_bwd_valid(const int32_t *v, const void *problem, const struct gdn_device *dev)
{
    const struct gdn_lin_tune_problem *pr = problem;
    const size_t                       nb = ce_bwd_nb(pr->cols, v[0], v[1]);
    return gdn__lin_wg_fits(v[0], dev, 0) &&
           (pr->n == 0 || nb <= (size_t)INT32_MAX / (size_t)pr->n) &&
           v[1] + 1 <= gdn__lin_loop_cap(dev);
}

static void ce_bwd_defaults(int32_t *v, const void *problem, const struct gdn_device *dev)
{
    (void)problem;
    v[0] = gdn__lin_wg_default(dev, 0);
    v[1] = CE_PER_DEFAULT;
}

static const struct gdn_tune_param ce_wg_params[]  = {GDN_LIN_WG_PARAM};
static const struct gdn_tune_param ce_bwd_params[] = {
    GDN_LIN_WG_PARAM, {"PER", CE_PER_DEFAULT, 5, {1, 2, 4, 8, 16}}};

#define CE_SPACE(VAR, STAGE, PARAMS, VALID, DEFAULTS)                                             \
    const struct gdn_tune_space VAR = {STAGE, (int32_t)GDN_ARRAY_SIZE(PARAMS), PARAMS, VALID,     \
                                       DEFAULTS}
CE_SPACE(gdn__ce_fwd_space, "linear/ce_fwd", ce_wg_params, ce_fwd_valid, ce_fwd_defaults);
CE_SPACE(gdn__ce_reduce_space, "linear/ce_reduce", ce_wg_params, ce_reduce_valid,
         ce_reduce_defaults);
CE_SPACE(gdn__ce_bwd_scale_space, "linear/ce_bwd_scale", ce_wg_params, ce_scale_valid,
         ce_reduce_defaults);
CE_SPACE(gdn__ce_bwd_space, "linear/ce_bwd", ce_bwd_params, ce_bwd_valid, ce_bwd_defaults);

/* A plan: the work-group size and local memory; PER for cross_entropy_bwd. */
static void ce_plan(gdn_context *ctx, const struct gdn_tune_space *space, int64_t M, int64_t V,
                    int64_t key, size_t lmem_per_wi, struct gdn_lin_plan *p, int32_t *per)
{
    struct gdn_lin_tune_problem pr = {M, V};
    int32_t                     v[GDN_TUNE_MAX_PARAMS];
    char                        bucket[16];
    gdn__lin_bucket(key, bucket, sizeof(bucket));
    gdn__tune_lookup(ctx, space, bucket, &pr, v, NULL);
    p->wg          = v[0];
    p->groups      = 0;
    p->lmem_per_wi = lmem_per_wi;
    *per           = space->n_params > 1 ? v[1] : CE_PER_DEFAULT;
}

static gdn_status ce_kernel(gdn_context *ctx, const char *entry, struct gdn_lin_plan *lp,
                            int32_t per, cl_kernel *k)
{
    const struct gdn_define extra[] = {{"PER", per}};
    /* reductions need a power-of-two group: min 1 keeps halving legal */
    return gdn__lin_kernel(ctx, CE_CL, entry, extra, GDN_ARRAY_SIZE(extra), lp, 1, k);
}

void gdn_cross_entropy_params_init(gdn_cross_entropy_params *params)
{
    if (!params)
        return;
    memset(params, 0, sizeof(*params));
    params->ignore_index = -100;
}

static gdn_status check_common(gdn_context *ctx, const char *fn,
                               const gdn_cross_entropy_params *params, const gdn_tensor *logits,
                               const gdn_tensor *targets, int64_t *M, int64_t *V)
{
    int64_t shape[GDN_MAX_DIMS];
    int32_t i;

    if (params) {
        if (!gdn__lin_zero(params->reserved, GDN_ARRAY_SIZE(params->reserved)))
            return gdn__fail(ctx, GDN_STATUS_INVALID_ARGUMENT,
                             "%s: params.reserved must be zero (use "
                             "gdn_cross_entropy_params_init)",
                             fn);
        if (params->flags & ~(uint32_t)GDN_CROSS_ENTROPY_SUM)
            return gdn__fail(ctx, GDN_STATUS_INVALID_ARGUMENT, "%s: unknown flags 0x%x", fn,
                             (unsigned)params->flags);
    }
    if (!logits || !targets)
        return gdn__fail(ctx, GDN_STATUS_INVALID_ARGUMENT, "%s: %s is NULL", fn,
                         logits ? "targets" : "logits");
    if (targets->ctx != ctx || logits->ctx != ctx)
        return gdn__fail(ctx, GDN_STATUS_INVALID_ARGUMENT, "%s: %s belongs to another context",
                         fn, targets->ctx != ctx ? "targets" : "logits");
    if (targets->dtype != GDN_DTYPE_I32 || targets->ndim > GDN_MAX_DIMS - 1)
        return gdn__fail(ctx, GDN_STATUS_SHAPE_MISMATCH,
                         "%s: targets must be I32 with 1 to 3 dimensions", fn);
    if (logits->ndim != targets->ndim + 1 || logits->ndim < 2)
        return gdn__fail(ctx, GDN_STATUS_SHAPE_MISMATCH,
                         "%s: logits must be [..., vocab] over targets' %d dimensions (has %d)",
                         fn, (int)targets->ndim, (int)logits->ndim);
    for (i = 0; i < targets->ndim; i++)
        shape[i] = targets->shape[i];
    shape[targets->ndim] = logits->shape[logits->ndim - 1];
    if (gdn__check_tensor(ctx, logits, "logits", GDN_DTYPE_F32, logits->ndim, shape))
        return GDN_STATUS_SHAPE_MISMATCH;
    *M = targets->numel;
    *V = shape[targets->ndim];
    if (*M > INT32_MAX || *V > INT32_MAX)
        return gdn__fail(ctx, GDN_STATUS_UNSUPPORTED, "%s: %lld rows of %lld logits: too large",
                         fn, (long long)*M, (long long)*V);
    if (*V == 0 && *M > 0)
        return gdn__fail(ctx, GDN_STATUS_SHAPE_MISMATCH, "%s: vocab is 0", fn);
    return GDN_STATUS_OK;
}

/* Enqueue cross_entropy_fwd: lse and row_loss [M]. */
static gdn_status enqueue_rows(gdn_context *ctx, cl_mem logits, cl_mem targets, cl_mem lse,
                               cl_mem row_loss, int32_t M, int32_t V, int32_t ignore_index)
{
    struct gdn_lin_plan p;
    cl_kernel           k;
    int32_t             per;
    gdn_status          st;
    ce_plan(ctx, &gdn__ce_fwd_space, M, V, V, 2 * sizeof(float), &p, &per);
    if ((st = ce_kernel(ctx, "cross_entropy_fwd", &p, per, &k)))
        return st;
    if (p.wg & (p.wg - 1))
        return gdn__fail(ctx, GDN_STATUS_INTERNAL, "cross_entropy: WG must be a power of two");
    p.groups = (size_t)M;
    if ((st = gdn__arg_mem(ctx, k, 0, logits)) || (st = gdn__arg_mem(ctx, k, 1, targets)) ||
        (st = gdn__arg_mem(ctx, k, 2, lse)) || (st = gdn__arg_mem(ctx, k, 3, row_loss)) ||
        (st = gdn__arg_int(ctx, k, 4, V)) || (st = gdn__arg_int(ctx, k, 5, ignore_index)))
        return st;
    return gdn__lin_launch(ctx, k, &p);
}

gdn_status gdn_cross_entropy_forward(gdn_context *ctx, const gdn_cross_entropy_params *params,
                                     const gdn_tensor *logits, const gdn_tensor *targets,
                                     const gdn_cross_entropy_out *out)
{
    static const char       *fn = "gdn_cross_entropy_forward";
    gdn_cross_entropy_params defaults;
    struct gdn_lin_plan      p;
    int32_t                  per;
    int64_t                  M = 0, V = 0;
    const int64_t            one = 1;
    cl_mem                   lse = NULL, row = NULL, cnt = NULL;
    cl_kernel                kr;
    gdn_status               st;

    if (!ctx)
        return GDN_STATUS_INVALID_ARGUMENT;
    if (!params) {
        gdn_cross_entropy_params_init(&defaults);
        params = &defaults;
    }
    if (!out)
        return gdn__fail(ctx, GDN_STATUS_INVALID_ARGUMENT, "%s: out is NULL", fn);
    if (!gdn__lin_null(out->reserved, GDN_ARRAY_SIZE(out->reserved)))
        return gdn__fail(ctx, GDN_STATUS_INVALID_ARGUMENT, "%s: out.reserved must be NULL", fn);
    if ((st = check_common(ctx, fn, params, logits, targets, &M, &V)) ||
        (st = gdn__check_tensor(ctx, out->loss, "loss", GDN_DTYPE_F32, 1, &one)) ||
        (out->count && (st = gdn__check_tensor(ctx, out->count, "count", GDN_DTYPE_I32, 1, &one))) ||
        (out->lse && (st = gdn__check_tensor(ctx, out->lse, "lse", GDN_DTYPE_F32, targets->ndim,
                                             targets->shape))) ||
        (out->row_loss && (st = gdn__check_tensor(ctx, out->row_loss, "row_loss", GDN_DTYPE_F32,
                                                  targets->ndim, targets->shape))))
        return st;

    if (!out->lse && (st = gdn__buffer_create(ctx, (size_t)M * sizeof(float), &lse)))
        goto done;
    if (!out->row_loss && (st = gdn__buffer_create(ctx, (size_t)M * sizeof(float), &row)))
        goto done;
    if (!out->count && (st = gdn__buffer_create(ctx, sizeof(int32_t), &cnt)))
        goto done;
    if (M > 0 && (st = enqueue_rows(ctx, logits->mem, targets->mem,
                                    out->lse ? out->lse->mem : lse,
                                    out->row_loss ? out->row_loss->mem : row, (int32_t)M,
                                    (int32_t)V, params->ignore_index)))
        goto done;
    ce_plan(ctx, &gdn__ce_reduce_space, M, V, M, sizeof(float) + sizeof(int32_t), &p, &per);
    p.groups = 1;
    if ((st = ce_kernel(ctx, "cross_entropy_reduce", &p, per, &kr)))
        goto done;
    if ((st = gdn__arg_mem(ctx, kr, 0, out->row_loss ? out->row_loss->mem : row)) ||
        (st = gdn__arg_mem(ctx, kr, 1, targets->mem)) ||
        (st = gdn__arg_int(ctx, kr, 2, (int32_t)M)) ||
        (st = gdn__arg_int(ctx, kr, 3, params->ignore_index)) ||
        (st = gdn__arg_int(ctx, kr, 4, (params->flags & GDN_CROSS_ENTROPY_SUM) ? 1 : 0)) ||
        (st = gdn__arg_mem(ctx, kr, 5, out->loss->mem)) ||
        (st = gdn__arg_mem(ctx, kr, 6, out->count ? out->count->mem : cnt)))
        goto done;
    st = gdn__lin_launch(ctx, kr, &p);
done:
    gdn__buffer_release(lse);
    gdn__buffer_release(row);
    gdn__buffer_release(cnt);
    return st;
}

gdn_status gdn_cross_entropy_backward(gdn_context *ctx, const gdn_cross_entropy_params *params,
                                      const gdn_tensor *logits, const gdn_tensor *targets,
                                      const gdn_tensor *lse, const gdn_tensor *dloss,
                                      gdn_tensor *dlogits)
{
    static const char       *fn = "gdn_cross_entropy_backward";
    gdn_cross_entropy_params defaults;
    struct gdn_lin_plan      ps, pb;
    int32_t                  per;
    int64_t                  M = 0, V = 0;
    const int64_t            one = 1;
    cl_mem                   lse_s = NULL, row_s = NULL, scale = NULL;
    cl_kernel                ks, kb;
    size_t                   nb;
    gdn_status               st;

    if (!ctx)
        return GDN_STATUS_INVALID_ARGUMENT;
    if (!params) {
        gdn_cross_entropy_params_init(&defaults);
        params = &defaults;
    }
    if ((st = check_common(ctx, fn, params, logits, targets, &M, &V)) ||
        (st = gdn__check_tensor(ctx, dlogits, "dlogits", GDN_DTYPE_F32, logits->ndim,
                                logits->shape)) ||
        (lse && (st = gdn__check_tensor(ctx, lse, "lse", GDN_DTYPE_F32, targets->ndim,
                                        targets->shape))) ||
        (dloss && (st = gdn__check_tensor(ctx, dloss, "dloss", GDN_DTYPE_F32, 1, &one))))
        return st;
    if (M == 0)
        return GDN_STATUS_OK;

    if ((st = gdn__buffer_create(ctx, sizeof(float), &scale)))
        goto done;
    if (!lse) {
        if ((st = gdn__buffer_create(ctx, (size_t)M * sizeof(float), &lse_s)) ||
            (st = gdn__buffer_create(ctx, (size_t)M * sizeof(float), &row_s)) ||
            (st = enqueue_rows(ctx, logits->mem, targets->mem, lse_s, row_s, (int32_t)M,
                               (int32_t)V, params->ignore_index)))
            goto done;
    }
    ce_plan(ctx, &gdn__ce_bwd_scale_space, M, V, M, sizeof(int32_t), &ps, &per);
    ps.groups = 1;
    if ((st = ce_kernel(ctx, "cross_entropy_bwd_scale", &ps, per, &ks)) ||
        (st = gdn__arg_mem(ctx, ks, 0, targets->mem)) ||
        (st = gdn__arg_int(ctx, ks, 1, (int32_t)M)) ||
        (st = gdn__arg_int(ctx, ks, 2, params->ignore_index)) ||
        (st = gdn__arg_int(ctx, ks, 3, (params->flags & GDN_CROSS_ENTROPY_SUM) ? 1 : 0)) ||
        (st = gdn__arg_mem(ctx, ks, 4, dloss ? dloss->mem : scale)) ||
        (st = gdn__arg_int(ctx, ks, 5, dloss ? 1 : 0)) || (st = gdn__arg_mem(ctx, ks, 6, scale)) ||
        (st = gdn__lin_launch(ctx, ks, &ps)))
        goto done;
    ce_plan(ctx, &gdn__ce_bwd_space, M, V, V, 0, &pb, &per);
    if ((st = ce_kernel(ctx, "cross_entropy_bwd", &pb, per, &kb)))
        goto done;
    nb        = ce_bwd_nb(V, pb.wg, per);
    pb.groups = (size_t)M * nb;
    if ((st = gdn__arg_mem(ctx, kb, 0, logits->mem)) ||
        (st = gdn__arg_mem(ctx, kb, 1, targets->mem)) ||
        (st = gdn__arg_mem(ctx, kb, 2, lse ? lse->mem : lse_s)) ||
        (st = gdn__arg_mem(ctx, kb, 3, scale)) || (st = gdn__arg_mem(ctx, kb, 4, dlogits->mem)) ||
        (st = gdn__arg_int(ctx, kb, 5, (int32_t)V)) ||
        (st = gdn__arg_int(ctx, kb, 6, (int32_t)nb)) ||
        (st = gdn__arg_int(ctx, kb, 7, params->ignore_index)))
        goto done;
    st = gdn__lin_launch(ctx, kb, &pb);
done:
    gdn__buffer_release(lse_s);
    gdn__buffer_release(row_s);
    gdn__buffer_release(scale);
    return st;
}
