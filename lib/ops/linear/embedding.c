/*
 * embedding.c - token embedding (cl/loss/embedding.cl): y = table[ids]
 * forward; backward a deterministic scatter-add (counting sort of token
 * positions by id on the device, then one ordered sum per table row).
 *
 * Backward stages (one int scratch buffer: counts [V], start [V + 1],
 * tmp [T], order [T]):
 *   fill counts = 0; embedding_bwd_count; embedding_bwd_scan (one group);
 *   embedding_bwd_fill; embedding_bwd_rank; embedding_bwd_accum.
 */
#include <string.h>

#include "linear.h"

#define EMB_CL "loss/embedding.cl"

static size_t div_up(size_t a, size_t b)
{
    return (a + b - 1) / b;
}

/* Plans. Row kernels (fwd, accum): WG columns of one row per group. */
static void rows_plan_default(struct gdn_lin_plan *p)
{
    p->wg          = 256;
    p->groups      = 0;
    p->lmem_per_wi = 0;
}

/* Token loops (count, fill, rank): a grid-stride loop, one token per
 * work-item up to 1024 groups. */
static void tokens_plan_default(struct gdn_lin_plan *p)
{
    p->wg          = 256;
    p->groups      = 0;
    p->lmem_per_wi = 0;
}

static void tokens_plan_groups(size_t T, struct gdn_lin_plan *p)
{
    size_t g  = div_up(T, (size_t)p->wg);
    p->groups = g < 1024 ? (g ? g : 1) : 1024;
}

/* The scan: one group of 256 work-items (each owns ceil(V / 256) ids). */
static void scan_plan_default(struct gdn_lin_plan *p)
{
    p->wg          = 256;
    p->groups      = 1;
    p->lmem_per_wi = sizeof(int32_t); /* sums[WG] */
}

static gdn_status check_params(gdn_context *ctx, const char *fn, const gdn_linear_params *params,
                               uint32_t allowed)
{
    if (!params)
        return GDN_STATUS_OK;
    if (!gdn__lin_zero(params->reserved, GDN_ARRAY_SIZE(params->reserved)))
        return gdn__fail(ctx, GDN_STATUS_INVALID_ARGUMENT,
                         "%s: params.reserved must be zero (use gdn_linear_params_init)", fn);
    if (params->flags & ~allowed)
        return gdn__fail(ctx, GDN_STATUS_INVALID_ARGUMENT, "%s: unknown or unused flags 0x%x",
                         fn, (unsigned)(params->flags & ~allowed));
    return GDN_STATUS_OK;
}

/* ids: I32 with 1 to 3 dimensions; y/dy: ids' shape + [D]. */
static gdn_status check_ids(gdn_context *ctx, const gdn_tensor *ids, const gdn_tensor *act,
                            const char *act_name, int64_t D)
{
    int64_t shape[GDN_MAX_DIMS];
    int32_t i;
    if (!ids)
        return gdn__fail(ctx, GDN_STATUS_INVALID_ARGUMENT, "ids is NULL");
    if (ids->ctx != ctx)
        return gdn__fail(ctx, GDN_STATUS_INVALID_ARGUMENT, "ids belongs to another context");
    if (ids->dtype != GDN_DTYPE_I32 || ids->ndim > GDN_MAX_DIMS - 1)
        return gdn__fail(ctx, GDN_STATUS_SHAPE_MISMATCH,
                         "ids must be I32 with 1 to 3 dimensions (dtype %d, %d dimensions)",
                         (int)ids->dtype, (int)ids->ndim);
    if (ids->numel > INT32_MAX)
        return gdn__fail(ctx, GDN_STATUS_UNSUPPORTED, "%lld tokens exceed 2^31 - 1",
                         (long long)ids->numel);
    for (i = 0; i < ids->ndim; i++)
        shape[i] = ids->shape[i];
    shape[ids->ndim] = D;
    return gdn__check_tensor(ctx, act, act_name, GDN_DTYPE_F32, ids->ndim + 1, shape);
}

static gdn_status check_table(gdn_context *ctx, const gdn_tensor *t, const char *name)
{
    if (!t)
        return gdn__fail(ctx, GDN_STATUS_INVALID_ARGUMENT, "%s is NULL", name);
    if (t->ctx != ctx)
        return gdn__fail(ctx, GDN_STATUS_INVALID_ARGUMENT, "%s belongs to another context", name);
    if (t->dtype != GDN_DTYPE_F32 || t->ndim != 2)
        return gdn__fail(ctx, GDN_STATUS_SHAPE_MISMATCH, "%s must be F32 [vocab, D]", name);
    if (t->shape[0] > INT32_MAX - 1 || t->shape[1] > INT32_MAX)
        return gdn__fail(ctx, GDN_STATUS_UNSUPPORTED, "%s: [%lld, %lld] is too large", name,
                         (long long)t->shape[0], (long long)t->shape[1]);
    return GDN_STATUS_OK;
}

gdn_status gdn_embedding_forward(gdn_context *ctx, const gdn_linear_params *params,
                                 const gdn_tensor *table, const gdn_tensor *ids, gdn_tensor *y)
{
    static const char  *fn = "gdn_embedding_forward";
    struct gdn_lin_plan p;
    cl_kernel           k;
    gdn_status          st;
    size_t              T, D, nb;

    if (!ctx)
        return GDN_STATUS_INVALID_ARGUMENT;
    if ((st = check_params(ctx, fn, params, GDN_LINEAR_ACCUMULATE_Y)) ||
        (st = check_table(ctx, table, "table")) ||
        (st = check_ids(ctx, ids, y, "y", table->shape[1])))
        return st;
    T = (size_t)ids->numel;
    D = (size_t)table->shape[1];
    if (T == 0 || D == 0)
        return GDN_STATUS_OK;
    rows_plan_default(&p);
    if ((st = gdn__lin_kernel(ctx, EMB_CL, "embedding_fwd", NULL, 0, &p, 1, &k)))
        return st;
    nb       = div_up(D, (size_t)p.wg);
    p.groups = T * nb;
    if ((st = gdn__arg_mem(ctx, k, 0, table->mem)) || (st = gdn__arg_mem(ctx, k, 1, ids->mem)) ||
        (st = gdn__arg_mem(ctx, k, 2, y->mem)) ||
        (st = gdn__arg_int(ctx, k, 3, (int32_t)table->shape[0])) ||
        (st = gdn__arg_int(ctx, k, 4, (int32_t)D)) || (st = gdn__arg_int(ctx, k, 5, (int32_t)nb)) ||
        (st = gdn__arg_int(ctx, k, 6,
                           params && (params->flags & GDN_LINEAR_ACCUMULATE_Y) ? 1 : 0)))
        return st;
    return gdn__lin_launch(ctx, k, &p);
}

/* Sub-buffer views would need aligned offsets; four separate buffers are
 * simpler. */
struct emb_scratch {
    cl_mem counts, start, tmp, order;
};

static void scratch_free(struct emb_scratch *s)
{
    gdn__buffer_release(s->counts);
    gdn__buffer_release(s->start);
    gdn__buffer_release(s->tmp);
    gdn__buffer_release(s->order);
}

gdn_status gdn_embedding_backward(gdn_context *ctx, const gdn_linear_params *params,
                                  const gdn_tensor *ids, const gdn_tensor *dy, gdn_tensor *dtable)
{
    static const char  *fn  = "gdn_embedding_backward";
    struct emb_scratch  s   = {NULL, NULL, NULL, NULL};
    struct gdn_lin_plan pc, ps, pf, pr, pa;
    cl_kernel           kc, ks, kf, kr, ka;
    bool                acc;
    int32_t             T, V, D;
    size_t              nb;
    gdn_status          st;

    if (!ctx)
        return GDN_STATUS_INVALID_ARGUMENT;
    if ((st = check_params(ctx, fn, params, GDN_LINEAR_ACCUMULATE_DW)) ||
        (st = check_table(ctx, dtable, "dtable")) ||
        (st = check_ids(ctx, ids, dy, "dy", dtable->shape[1])))
        return st;
    acc = params && (params->flags & GDN_LINEAR_ACCUMULATE_DW);
    T   = (int32_t)ids->numel;
    V   = (int32_t)dtable->shape[0];
    D   = (int32_t)dtable->shape[1];
    if (V == 0 || D == 0)
        return GDN_STATUS_OK;
    if (T == 0)
        return acc ? GDN_STATUS_OK : gdn__fill_f32(ctx, dtable->mem, (size_t)V * (size_t)D, 0.0f);

    tokens_plan_default(&pc);
    tokens_plan_default(&pf);
    tokens_plan_default(&pr);
    scan_plan_default(&ps);
    rows_plan_default(&pa);
    if ((st = gdn__lin_kernel(ctx, EMB_CL, "embedding_bwd_count", NULL, 0, &pc, 1, &kc)) ||
        (st = gdn__lin_kernel(ctx, EMB_CL, "embedding_bwd_scan", NULL, 0, &ps, 1, &ks)) ||
        (st = gdn__lin_kernel(ctx, EMB_CL, "embedding_bwd_fill", NULL, 0, &pf, 1, &kf)) ||
        (st = gdn__lin_kernel(ctx, EMB_CL, "embedding_bwd_rank", NULL, 0, &pr, 1, &kr)) ||
        (st = gdn__lin_kernel(ctx, EMB_CL, "embedding_bwd_accum", NULL, 0, &pa, 1, &ka)))
        return st;
    tokens_plan_groups((size_t)T, &pc);
    tokens_plan_groups((size_t)T, &pf);
    tokens_plan_groups((size_t)T, &pr);
    nb        = div_up((size_t)D, (size_t)pa.wg);
    pa.groups = (size_t)V * nb;

    if ((st = gdn__buffer_create(ctx, (size_t)V * sizeof(int32_t), &s.counts)) ||
        (st = gdn__buffer_create(ctx, ((size_t)V + 1) * sizeof(int32_t), &s.start)) ||
        (st = gdn__buffer_create(ctx, (size_t)T * sizeof(int32_t), &s.tmp)) ||
        (st = gdn__buffer_create(ctx, (size_t)T * sizeof(int32_t), &s.order)))
        goto done;
    /* 0.0f has all bits zero: the fill zeroes the int counts. */
    if ((st = gdn__fill_f32(ctx, s.counts, (size_t)V, 0.0f)))
        goto done;
    if ((st = gdn__arg_mem(ctx, kc, 0, ids->mem)) || (st = gdn__arg_int(ctx, kc, 1, T)) ||
        (st = gdn__arg_int(ctx, kc, 2, V)) || (st = gdn__arg_mem(ctx, kc, 3, s.counts)) ||
        (st = gdn__lin_launch(ctx, kc, &pc)))
        goto done;
    if ((st = gdn__arg_mem(ctx, ks, 0, s.counts)) || (st = gdn__arg_mem(ctx, ks, 1, s.start)) ||
        (st = gdn__arg_int(ctx, ks, 2, V)) || (st = gdn__lin_launch(ctx, ks, &ps)))
        goto done;
    if ((st = gdn__arg_mem(ctx, kf, 0, ids->mem)) || (st = gdn__arg_int(ctx, kf, 1, T)) ||
        (st = gdn__arg_int(ctx, kf, 2, V)) || (st = gdn__arg_mem(ctx, kf, 3, s.start)) ||
        (st = gdn__arg_mem(ctx, kf, 4, s.counts)) || (st = gdn__arg_mem(ctx, kf, 5, s.tmp)) ||
        (st = gdn__lin_launch(ctx, kf, &pf)))
        goto done;
    if ((st = gdn__arg_mem(ctx, kr, 0, ids->mem)) || (st = gdn__arg_int(ctx, kr, 1, T)) ||
        (st = gdn__arg_int(ctx, kr, 2, V)) || (st = gdn__arg_mem(ctx, kr, 3, s.start)) ||
        (st = gdn__arg_mem(ctx, kr, 4, s.tmp)) || (st = gdn__arg_mem(ctx, kr, 5, s.order)) ||
        (st = gdn__lin_launch(ctx, kr, &pr)))
        goto done;
    if ((st = gdn__arg_mem(ctx, ka, 0, dy->mem)) || (st = gdn__arg_mem(ctx, ka, 1, s.start)) ||
        (st = gdn__arg_mem(ctx, ka, 2, s.order)) || (st = gdn__arg_mem(ctx, ka, 3, dtable->mem)) ||
        (st = gdn__arg_int(ctx, ka, 4, D)) || (st = gdn__arg_int(ctx, ka, 5, (int32_t)nb)) ||
        (st = gdn__arg_int(ctx, ka, 6, acc ? 1 : 0)))
        goto done;
    st = gdn__lin_launch(ctx, ka, &pa);
done:
    scratch_free(&s);
    return st;
}
