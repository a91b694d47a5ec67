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

/* ------------------------------------------------------ plans and spaces
 *
 * Row kernels (embedding_fwd, embedding_bwd_accum): WG columns of one row per
 * group, groups = rows * ceil(D / WG). Spaces linear/embedding_fwd and
 * linear/embedding_accum: WG; bucket "N2^k" of D.
 *
 * Token loops (embedding_bwd_count, _fill, _rank): a grid-stride loop over
 * the T tokens, WG work-items per group, min(ceil(T / WG), MAXG) groups.
 * Spaces linear/embedding_count, _fill, _rank: WG, MAXG; bucket "N2^k" of T.
 * On llvmpipe a work-item's trips stay under the loop cap; for _rank each
 * token also compares against its id's bucket (at most T tokens), so a plan
 * there needs one token per work-item or (tokens per work-item) * T under
 * the cap.
 *
 * The scan (embedding_bwd_scan): ONE group of WG work-items, WG ints of
 * local memory, each work-item owning ceil(V / WG) ids and work-item 0
 * adding WG chunk sums. Space linear/embedding_scan: WG; bucket "N2^k" of V.
 *
 * defaults(): 256 work-items (halved to the device's limits) and MAXG 1024,
 * the values the plans always used. */

/* Row kernels: T (or V) rows of D columns. */
static bool rows_valid(const int32_t *v, const void *problem, const struct gdn_device *dev)
{
    const struct gdn_lin_tune_problem *pr = problem;
    const size_t                       nb = div_up((size_t)pr->cols, (size_t)v[0]);
    return gdn__lin_wg_fits(v[0], dev, 0) &&
           (pr->n == 0 || nb <= (size_t)INT32_MAX / (size_t)pr->n);
}

static void rows_defaults(int32_t *v, const void *problem, const struct gdn_device *dev)
{
    (void)problem;
    v[0] = gdn__lin_wg_default(dev, 0);
}

static size_t tokens_groups(size_t T, size_t wg, size_t maxg)
{
    size_t g = div_up(T, wg);
    return g < maxg ? (g ? g : 1) : maxg;
}

/* Trips of one work-item's grid-stride loop over T tokens. */
static int64_t tokens_trips(const struct gdn_lin_tune_problem *pr, const int32_t *v)
{
    const size_t global = tokens_groups((size_t)pr->n, (size_t)v[0], (size_t)v[1]) * (size_t)v[0];
    return (int64_t)div_up((size_t)pr->n, global);
}

static bool tokens_valid(const int32_t *v, const void *problem, const struct gdn_device *dev)
{
    return gdn__lin_wg_fits(v[0], dev, 0) &&
           tokens_trips(problem, v) + 1 <= gdn__lin_loop_cap(dev);
}

static bool rank_valid(const int32_t *v, const void *problem, const struct gdn_device *dev)
{
    const struct gdn_lin_tune_problem *pr    = problem;
    const int64_t                      trips = tokens_trips(pr, v);
    return tokens_valid(v, problem, dev) &&
           (trips <= 1 || trips * (pr->n + 1) <= gdn__lin_loop_cap(dev));
}

static void tokens_defaults(int32_t *v, const void *problem, const struct gdn_device *dev)
{
    (void)problem;
    v[0] = gdn__lin_wg_default(dev, 0);
    v[1] = 1024;
}

static bool scan_valid(const int32_t *v, const void *problem, const struct gdn_device *dev)
{
    const struct gdn_lin_tune_problem *pr    = problem;
    const int64_t                      chunk = (pr->cols + v[0] - 1) / v[0];
    return gdn__lin_wg_fits(v[0], dev, sizeof(int32_t)) &&
           2 * chunk + v[0] + 1 <= gdn__lin_loop_cap(dev);
}

static void scan_defaults(int32_t *v, const void *problem, const struct gdn_device *dev)
{
    (void)problem;
    v[0] = gdn__lin_wg_default(dev, sizeof(int32_t));
}

static const struct gdn_tune_param wg_params[]     = {GDN_LIN_WG_PARAM};
static const struct gdn_tune_param tokens_params[] = {
    GDN_LIN_WG_PARAM, {"MAXG", 1024, 8, {1, 4, 16, 64, 256, 1024, 4096, 16384}}};

#define EMB_SPACE(VAR, STAGE, PARAMS, VALID, DEFAULTS)                                            \
    const struct gdn_tune_space VAR = {STAGE, (int32_t)GDN_ARRAY_SIZE(PARAMS), PARAMS, VALID,     \
                                       DEFAULTS}
EMB_SPACE(gdn__emb_fwd_space, "linear/embedding_fwd", wg_params, rows_valid, rows_defaults);
EMB_SPACE(gdn__emb_accum_space, "linear/embedding_accum", wg_params, rows_valid, rows_defaults);
EMB_SPACE(gdn__emb_count_space, "linear/embedding_count", tokens_params, tokens_valid,
          tokens_defaults);
EMB_SPACE(gdn__emb_fill_space, "linear/embedding_fill", tokens_params, tokens_valid,
          tokens_defaults);
EMB_SPACE(gdn__emb_rank_space, "linear/embedding_rank", tokens_params, rank_valid,
          tokens_defaults);
EMB_SPACE(gdn__emb_scan_space, "linear/embedding_scan", wg_params, scan_valid, scan_defaults);

/* Look up space's values for (n, cols), bucketed by `key`. */
static void emb_lookup(gdn_context *ctx, const struct gdn_tune_space *space, int64_t n,
                       int64_t cols, int64_t key, int32_t *v)
{
    struct gdn_lin_tune_problem pr = {n, cols};
    char                        bucket[16];
    gdn__lin_bucket(key, bucket, sizeof(bucket));
    gdn__tune_lookup(ctx, space, bucket, &pr, v, NULL);
}

/* Row kernel plan: WG columns of one row (groups set by the caller). */
static void rows_plan(gdn_context *ctx, const struct gdn_tune_space *space, size_t rows,
                      size_t D, struct gdn_lin_plan *p)
{
    int32_t v[GDN_TUNE_MAX_PARAMS];
    emb_lookup(ctx, space, (int64_t)rows, (int64_t)D, (int64_t)D, v);
    p->wg          = v[0];
    p->groups      = 0;
    p->lmem_per_wi = 0;
}

/* Token loop plan: *maxg receives the group cap (groups set after the
 * build, from the work-group size it kept). */
static void tokens_plan(gdn_context *ctx, const struct gdn_tune_space *space, size_t T,
                        struct gdn_lin_plan *p, size_t *maxg)
{
    int32_t v[GDN_TUNE_MAX_PARAMS];
    emb_lookup(ctx, space, (int64_t)T, 0, (int64_t)T, v);
    p->wg          = v[0];
    p->groups      = 0;
    p->lmem_per_wi = 0;
    *maxg          = (size_t)v[1];
}

static void tokens_plan_groups(size_t T, size_t maxg, struct gdn_lin_plan *p)
{
    p->groups = tokens_groups(T, (size_t)p->wg, maxg);
}

/* The scan: one group of WG work-items (each owns ceil(V / WG) ids). */
static void scan_plan(gdn_context *ctx, size_t V, struct gdn_lin_plan *p)
{
    int32_t v[GDN_TUNE_MAX_PARAMS];
    emb_lookup(ctx, &gdn__emb_scan_space, 0, (int64_t)V, (int64_t)V, v);
    p->wg          = v[0];
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
    rows_plan(ctx, &gdn__emb_fwd_space, T, D, &p);
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
    size_t              nb, gc, gf, gr;
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

    tokens_plan(ctx, &gdn__emb_count_space, (size_t)T, &pc, &gc);
    tokens_plan(ctx, &gdn__emb_fill_space, (size_t)T, &pf, &gf);
    tokens_plan(ctx, &gdn__emb_rank_space, (size_t)T, &pr, &gr);
    scan_plan(ctx, (size_t)V, &ps);
    rows_plan(ctx, &gdn__emb_accum_space, (size_t)V, (size_t)D, &pa);
    if ((st = gdn__lin_kernel(ctx, EMB_CL, "embedding_bwd_count", NULL, 0, &pc, 1, &kc)) ||
        (st = gdn__lin_kernel(ctx, EMB_CL, "embedding_bwd_scan", NULL, 0, &ps, 1, &ks)) ||
        (st = gdn__lin_kernel(ctx, EMB_CL, "embedding_bwd_fill", NULL, 0, &pf, 1, &kf)) ||
        (st = gdn__lin_kernel(ctx, EMB_CL, "embedding_bwd_rank", NULL, 0, &pr, 1, &kr)) ||
        (st = gdn__lin_kernel(ctx, EMB_CL, "embedding_bwd_accum", NULL, 0, &pa, 1, &ka)))
        return st;
    tokens_plan_groups((size_t)T, gc, &pc);
    tokens_plan_groups((size_t)T, gf, &pf);
    tokens_plan_groups((size_t)T, gr, &pr);
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
