/*
 * conv.c - causal depthwise short convolution (fla ShortConvolution /
 * causal_conv1d, ALGORITHM.md §3.1, §3.4, §4.4): argument checks, the
 * sequence/chunk tables, the plans of cl/conv/conv_fwd.cl, conv_bwd.cl and
 * conv_step.cl, and the launches. The weight and bias gradients are summed
 * over chunks by the norm op's deterministic column sum (norm/colsum.cl).
 *
 * Module owner: layer ops (issue 5).
 */
#include <stdio.h>
#include <string.h>

#include "conv.h"

#define CONV_FWD_CL  "conv/conv_fwd.cl"
#define CONV_BWD_CL  "conv/conv_bwd.cl"
#define CONV_STEP_CL "conv/conv_step.cl"

void gdn_conv_params_init(gdn_conv_params *params)
{
    if (!params)
        return;
    memset(params, 0, sizeof(*params));
}

void gdn__conv_shape_free(struct gdn_conv_shape *s)
{
    gdn__free(s->offsets);
    s->offsets = NULL;
}

/* Checks shared by forward and backward (step has its own); fills *s,
 * including the host copy of the sequence offsets (owned by s). */
static gdn_status conv_check(gdn_context *ctx, const char *fn, const gdn_conv_params *params,
                             const gdn_conv_args *args, struct gdn_conv_shape *s)
{
    const gdn_tensor *x;
    int64_t           B = 1, Tb, shp[3];
    size_t            i;
    gdn_status        st;

    memset(s, 0, sizeof(*s));
    for (i = 0; i < GDN_ARRAY_SIZE(params->reserved); i++)
        if (params->reserved[i])
            return gdn__fail(ctx, GDN_STATUS_INVALID_ARGUMENT,
                             "%s: params.reserved must be zero (use gdn_conv_params_init)", fn);
    if (params->flags & ~(uint32_t)GDN_CONV_SILU)
        return gdn__fail(ctx, GDN_STATUS_INVALID_ARGUMENT, "%s: unknown params.flags 0x%x", fn,
                         (unsigned)params->flags);
    if (!args)
        return gdn__fail(ctx, GDN_STATUS_INVALID_ARGUMENT, "%s: args is NULL", fn);
    for (i = 0; i < GDN_ARRAY_SIZE(args->reserved); i++)
        if (args->reserved[i])
            return gdn__fail(ctx, GDN_STATUS_INVALID_ARGUMENT, "%s: args.reserved must be zero",
                             fn);
    x = args->x;
    if (!x)
        return gdn__fail(ctx, GDN_STATUS_INVALID_ARGUMENT, "%s: args.x is NULL", fn);
    if (x->ctx != ctx)
        return gdn__fail(ctx, GDN_STATUS_INVALID_ARGUMENT, "%s: x belongs to another context", fn);
    if (x->dtype != GDN_DTYPE_F32 || (x->ndim != 2 && x->ndim != 3))
        return gdn__fail(ctx, GDN_STATUS_SHAPE_MISMATCH,
                         "%s: x must be F32 [T, C] (packed) or [B, T, C] (batched), got %d dims",
                         fn, (int)x->ndim);
    if (x->ndim == 3 && args->seq_offsets)
        return gdn__fail(ctx, GDN_STATUS_INVALID_ARGUMENT,
                         "%s: seq_offsets goes with 2-D (packed) x", fn);
    if (!args->seq_offsets && args->n_seqs != 0)
        return gdn__fail(ctx, GDN_STATUS_INVALID_ARGUMENT,
                         "%s: n_seqs is set but seq_offsets is NULL", fn);
    if (x->ndim == 3)
        B = x->shape[0];
    Tb = x->shape[x->ndim - 2];
    if (B * Tb > INT32_MAX / 2 || x->shape[x->ndim - 1] > INT32_MAX || B > (1 << 24))
        return gdn__fail(ctx, GDN_STATUS_UNSUPPORTED,
                         "%s: T = %lld tokens, C = %lld channels or B = %lld exceeds the limits "
                         "(2^30, 2^31 - 1, 2^24)",
                         fn, (long long)(B * Tb), (long long)x->shape[x->ndim - 1], (long long)B);
    s->T     = (int32_t)(B * Tb);
    s->C     = (int32_t)x->shape[x->ndim - 1];
    s->flags = params->flags;

    /* weight [C, W] */
    if (!args->weight)
        return gdn__fail(ctx, GDN_STATUS_INVALID_ARGUMENT, "%s: args.weight is NULL", fn);
    if (args->weight->ndim != 2 || args->weight->shape[0] != s->C)
        return gdn__fail(ctx, GDN_STATUS_SHAPE_MISMATCH,
                         "%s: weight must be [C, W] with C = %d (x's last dim)", fn, (int)s->C);
    if (args->weight->shape[1] < 2 || args->weight->shape[1] > 8)
        return gdn__fail(ctx, GDN_STATUS_UNSUPPORTED,
                         "%s: weight: kernel size W = %lld is not supported (2..8)", fn,
                         (long long)args->weight->shape[1]);
    s->W   = (int32_t)args->weight->shape[1];
    shp[0] = s->C, shp[1] = s->W;
    if ((st = gdn__check_tensor(ctx, args->weight, "weight", GDN_DTYPE_F32, 2, shp)))
        return st;
    if (args->bias && (st = gdn__check_tensor(ctx, args->bias, "bias", GDN_DTYPE_F32, 1, shp)))
        return st;

    /* sequences */
    if ((st = gdn__seq_offsets(ctx, fn, args->seq_offsets, args->n_seqs, B, Tb, &s->offsets,
                               &s->N)))
        return st;
    shp[0] = s->N, shp[1] = s->C, shp[2] = s->W - 1;
    if (args->initial_state &&
        (st = gdn__check_tensor(ctx, args->initial_state, "initial_state", GDN_DTYPE_F32, 3, shp)))
        goto fail;
    return GDN_STATUS_OK;
fail:
    gdn__conv_shape_free(s);
    return st;
}

/* Default plan of conv_fwd / conv_bwd: CB = 128 channels per work-group (a
 * warp reads 128 contiguous bytes of a token row), halved to the work-group
 * limit (max_wg); one chunk per group; chunks of 64 tokens, halved down to
 * 8 while there are fewer than 128 Ki work-items (short sequences or few
 * channels: more chunks, more parallelism). The chunk length depends only on
 * the shape and the plan, so the summation order of dweight and dbias (over
 * chunks) does too. */
static void conv_plan_default(const struct gdn_conv_shape *s, size_t max_wg,
                              struct gdn_conv_plan *p)
{
    p->cb = gdn__pow2_ceil_i32(s->C < 128 ? (s->C > 0 ? s->C : 1) : 128);
    while (p->cb > 1 && (size_t)p->cb > max_wg)
        p->cb /= 2;
    p->cg = 1;
    p->tt = 64;
    while (p->tt > 8 && (int64_t)s->C * ((int64_t)s->T / p->tt + s->N) < 131072)
        p->tt /= 2;
}

/* ------------------------------------------------------ tuning spaces
 *
 * conv/conv_fwd, conv/conv_bwd: CB, CG, TT; bucket "W<W>.C<2^k>". Legal:
 * CB at most C and CG at most the chunk count (both rounded up to powers of
 * two: no group of idle work-items), CB * CG within the device's and the
 * kernel's work-group limits, and (backward) the partial weight gradients
 * [chunks, C, W + 1] within the device's largest buffer. The loops of a
 * work-item run TT + W - 1 steps: far below llvmpipe's cap.
 * conv/conv_step: WG within the work-group limits. defaults(): the plans
 * these kernels always ran with (conv_plan_default; 256 for the step). */

static size_t conv_max_wg(const struct gdn_conv_tune_problem *pr, const struct gdn_device *dev)
{
    return pr->kwg && pr->kwg < dev->info.max_work_group_size ? pr->kwg
                                                                : dev->info.max_work_group_size;
}

static bool conv_plan_valid(const int32_t *v, const struct gdn_conv_tune_problem *pr,
                            const struct gdn_device *dev, bool bwd)
{
    const struct gdn_conv_shape *s  = pr->s;
    const int64_t                nt = (int64_t)s->T / v[2] + s->N + 1; /* upper bound */
    if (v[0] > gdn__pow2_ceil_i32(s->C > 0 ? s->C : 1) ||
        v[1] > gdn__pow2_ceil_i32(nt > (1 << 30) ? (1 << 30) : (int32_t)nt) ||
        (size_t)v[0] * (size_t)v[1] > conv_max_wg(pr, dev))
        return false;
    if (bwd && dev->info.max_alloc_bytes &&
        (uint64_t)nt * (uint64_t)s->C * (uint64_t)s->W * sizeof(float) > dev->info.max_alloc_bytes)
        return false;
    return true;
}

static bool conv_fwd_valid(const int32_t *v, const void *problem, const struct gdn_device *dev)
{
    return conv_plan_valid(v, problem, dev, false);
}

static bool conv_bwd_valid(const int32_t *v, const void *problem, const struct gdn_device *dev)
{
    return conv_plan_valid(v, problem, dev, true);
}

static void conv_defaults(int32_t *v, const void *problem, const struct gdn_device *dev)
{
    const struct gdn_conv_tune_problem *pr = problem;
    struct gdn_conv_plan                p;
    conv_plan_default(pr->s, conv_max_wg(pr, dev), &p);
    v[0] = p.cb, v[1] = p.cg, v[2] = p.tt;
}

static const struct gdn_tune_param conv_params[] = {
    {"CB", 128, 10, {1, 2, 4, 8, 16, 32, 64, 128, 256, 512}},
    {"CG", 1, 5, {1, 2, 4, 8, 16}},
    {"TT", 64, 7, {4, 8, 16, 32, 64, 128, 256}},
};

const struct gdn_tune_space gdn__conv_fwd_space = {
    "conv/conv_fwd", (int32_t)GDN_ARRAY_SIZE(conv_params), conv_params, conv_fwd_valid,
    conv_defaults};
const struct gdn_tune_space gdn__conv_bwd_space = {
    "conv/conv_bwd", (int32_t)GDN_ARRAY_SIZE(conv_params), conv_params, conv_bwd_valid,
    conv_defaults};

static bool conv_step_valid(const int32_t *v, const void *problem, const struct gdn_device *dev)
{
    return (size_t)v[0] <= conv_max_wg(problem, dev);
}

static void conv_step_defaults(int32_t *v, const void *problem, const struct gdn_device *dev)
{
    const size_t max_wg = conv_max_wg(problem, dev);
    int32_t      wg     = 256;
    while (wg > 1 && (size_t)wg > max_wg)
        wg /= 2;
    v[0] = wg;
}

static const struct gdn_tune_param conv_step_params[] = {
    {"WG", 256, 11, {1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024}},
};

const struct gdn_tune_space gdn__conv_step_space = {
    "conv/conv_step", (int32_t)GDN_ARRAY_SIZE(conv_step_params), conv_step_params,
    conv_step_valid, conv_step_defaults};

static void conv_bucket(const struct gdn_conv_shape *s, char *buf, size_t cap)
{
    snprintf(buf, cap, "W%d.C%d", (int)s->W,
             (int)gdn__pow2_ceil_i32(s->C < 1 ? 1 : s->C > (1 << 16) ? (1 << 16) : s->C));
}

void gdn__conv_index_free(struct gdn_conv_index *ix)
{
    gdn__buffer_release(ix->seq_off);
    gdn__buffer_release(ix->chunks);
    ix->seq_off = ix->chunks = NULL;
}

gdn_status gdn__conv_index_build(gdn_context *ctx, const struct gdn_conv_shape *s, int32_t tt,
                                 struct gdn_conv_index *ix)
{
    int32_t   *tab;
    int64_t    nt = 0;
    int32_t    n, k = 0;
    gdn_status st;

    memset(ix, 0, sizeof(*ix));
    for (n = 0; n < s->N; n++) {
        int32_t len = s->offsets[n + 1] - s->offsets[n];
        nt += len > 0 ? (len + tt - 1) / tt : 1;
    }
    if (nt > INT32_MAX / 4)
        return gdn__fail(ctx, GDN_STATUS_UNSUPPORTED, "conv: %lld chunks are too many",
                         (long long)nt);
    tab = gdn__malloc((size_t)nt * 4 * sizeof(int32_t));
    if (!tab)
        return gdn__fail(ctx, GDN_STATUS_OUT_OF_HOST_MEMORY, "conv: out of memory");
    for (n = 0; n < s->N; n++) {
        int32_t bos = s->offsets[n], eos = s->offsets[n + 1], t0 = bos;
        do {
            int32_t t1     = eos - t0 < tt ? eos : t0 + tt;
            tab[4 * k]     = n;
            tab[4 * k + 1] = t0;
            tab[4 * k + 2] = t1;
            tab[4 * k + 3] = bos;
            k++;
            t0 = t1;
        } while (t0 < eos);
    }
    ix->nt = (int32_t)nt;
    st     = gdn__int_table(ctx, s->offsets, (size_t)s->N + 1, &ix->seq_off);
    if (!st)
        st = gdn__int_table(ctx, tab, (size_t)nt * 4, &ix->chunks);
    gdn__free(tab);
    if (st)
        gdn__conv_index_free(ix);
    return st;
}

/* Build (or fetch) kernel `entry` of `path` for kernel size W and look up
 * its plan (space: conv/conv_fwd, conv/conv_bwd or conv/conv_step) for the
 * shape s; vals receives the space's values, checked against the device's
 * and the kernel's work-group limits. */
static gdn_status conv_kernel(gdn_context *ctx, const char *path, const char *entry,
                              const struct gdn_tune_space *space, const struct gdn_conv_shape *s,
                              int32_t *vals, cl_kernel *out)
{
    const struct gdn_define      defs[] = {{"W", s->W}};
    struct gdn_conv_tune_problem pr;
    char                         opts[64], bucket[32];
    size_t                       kwg = 0, wg;
    cl_int                       err;
    gdn_status                   st;

    gdn__defines_format(defs, GDN_ARRAY_SIZE(defs), opts, sizeof(opts));
    if ((st = gdn__kernel_get(ctx, path, opts, entry, out)))
        return st;
    err = clGetKernelWorkGroupInfo(*out, ctx->dev.id, CL_KERNEL_WORK_GROUP_SIZE, sizeof(kwg), &kwg,
                                   NULL);
    if (err != CL_SUCCESS)
        return gdn__fail_cl(ctx, err, "conv: CL_KERNEL_WORK_GROUP_SIZE");
    pr.s = s, pr.kwg = kwg;
    conv_bucket(s, bucket, sizeof(bucket));
    gdn__tune_lookup(ctx, space, bucket, &pr, vals, NULL);
    wg = space == &gdn__conv_step_space ? (size_t)vals[0] : (size_t)vals[0] * (size_t)vals[1];
    if (wg > conv_max_wg(&pr, &ctx->dev))
        return gdn__fail(ctx, GDN_STATUS_UNSUPPORTED, "conv: %s allows no work-group", entry);
    return GDN_STATUS_OK;
}

static void conv_plan_from(const int32_t *v, struct gdn_conv_plan *p)
{
    p->cb = v[0], p->cg = v[1], p->tt = v[2];
}

gdn_status gdn_conv_forward(gdn_context *ctx, const gdn_conv_params *params,
                            const gdn_conv_args *args, gdn_tensor *y, gdn_tensor *final_state)
{
    static const char    *fn = "gdn_conv_forward";
    gdn_conv_params       defaults;
    struct gdn_conv_shape s;
    struct gdn_conv_plan  p;
    struct gdn_conv_index ix = {0};
    int32_t               v[GDN_TUNE_MAX_PARAMS];
    cl_kernel             k;
    cl_mem                init_mem = NULL, init_copy = NULL;
    cl_uint               a = 0;
    size_t                global[2], local[2];
    int64_t               shp[3];
    gdn_status            st;

    if (!ctx)
        return GDN_STATUS_INVALID_ARGUMENT;
    if (!params) {
        gdn_conv_params_init(&defaults);
        params = &defaults;
    }
    if ((st = conv_check(ctx, fn, params, args, &s)))
        return st;
    if ((st = gdn__check_tensor(ctx, y, "y", GDN_DTYPE_F32, args->x->ndim, args->x->shape)))
        goto done;
    shp[0] = s.N, shp[1] = s.C, shp[2] = s.W - 1;
    if (final_state &&
        (st = gdn__check_tensor(ctx, final_state, "final_state", GDN_DTYPE_F32, 3, shp)))
        goto done;
    if (y == args->x || y == args->weight || y == args->bias || y == args->initial_state ||
        (final_state && (final_state == args->x || final_state == args->weight ||
                         final_state == args->bias || final_state == y))) {
        st = gdn__fail(ctx, GDN_STATUS_INVALID_ARGUMENT,
                       "%s: y or final_state aliases another argument (only final_state == "
                       "initial_state is allowed)", fn);
        goto done;
    }
    if (s.C == 0)
        goto done;
    if (args->initial_state) {
        init_mem = args->initial_state->mem;
        /* In-place state update: work from a copy, since the first chunk of
         * a sequence reads the state that its last chunk overwrites. */
        if (final_state == args->initial_state) {
            cl_int err;
            if ((st = gdn__buffer_create(ctx, final_state->nbytes, &init_copy)))
                goto done;
            err = clEnqueueCopyBuffer(ctx->queue, init_mem, init_copy, 0, 0, final_state->nbytes,
                                      0, NULL, NULL);
            if (err != CL_SUCCESS) {
                st = gdn__fail_cl(ctx, err, "gdn_conv_forward: copying initial_state");
                goto done;
            }
            init_mem = init_copy;
        }
    }
    if ((st = conv_kernel(ctx, CONV_FWD_CL, "conv_fwd", &gdn__conv_fwd_space, &s, v, &k)))
        goto done;
    conv_plan_from(v, &p);
    if ((st = gdn__conv_index_build(ctx, &s, p.tt, &ix)))
        goto done;
    if ((st = gdn__arg_mem(ctx, k, a++, args->x->mem)) ||
        (st = gdn__arg_mem(ctx, k, a++, args->weight->mem)) ||
        (st = gdn__arg_mem(ctx, k, a++, args->bias ? args->bias->mem : args->weight->mem)) ||
        (st = gdn__arg_mem(ctx, k, a++, init_mem ? init_mem : args->weight->mem)) ||
        (st = gdn__arg_mem(ctx, k, a++, ix.chunks)) || (st = gdn__arg_mem(ctx, k, a++, ix.seq_off)) ||
        (st = gdn__arg_mem(ctx, k, a++, y->mem)) ||
        (st = gdn__arg_mem(ctx, k, a++, final_state ? final_state->mem : y->mem)) ||
        (st = gdn__arg_int(ctx, k, a++, s.C)) || (st = gdn__arg_int(ctx, k, a++, ix.nt)) ||
        (st = gdn__arg_int(ctx, k, a++, args->bias ? 1 : 0)) ||
        (st = gdn__arg_int(ctx, k, a++, (s.flags & GDN_CONV_SILU) ? 1 : 0)) ||
        (st = gdn__arg_int(ctx, k, a++, init_mem ? 1 : 0)) ||
        (st = gdn__arg_int(ctx, k, a++, final_state ? 1 : 0)))
        goto done;
    local[0] = (size_t)p.cb, local[1] = (size_t)p.cg;
    global[0] = (size_t)s.C, global[1] = (size_t)ix.nt;
    st        = gdn__launch(ctx, k, 2, global, local, NULL);
done:
    /* Released buffers live on until the enqueued kernels are done. */
    gdn__buffer_release(init_copy);
    gdn__conv_index_free(&ix);
    gdn__conv_shape_free(&s);
    return st;
}

gdn_status gdn_conv_backward(gdn_context *ctx, const gdn_conv_params *params,
                             const gdn_conv_args *args, const gdn_tensor *dy,
                             const gdn_tensor *dfinal_state, const gdn_conv_grads *grads)
{
    static const char    *fn = "gdn_conv_backward";
    gdn_conv_params       defaults;
    struct gdn_conv_shape s;
    struct gdn_conv_plan  p;
    struct gdn_conv_index ix = {0};
    int32_t               v[GDN_TUNE_MAX_PARAMS];
    cl_kernel             k;
    cl_mem                dwpart = NULL, dbpart = NULL;
    cl_uint               a = 0;
    size_t                global[2], local[2], i, j;
    int64_t               shp[3];
    bool                  want_dw;
    gdn_status            st;
    const gdn_tensor     *outs[4];
    static const char    *names[4] = {"dx", "dweight", "dbias", "dinitial_state"};

    if (!ctx)
        return GDN_STATUS_INVALID_ARGUMENT;
    if (!params) {
        gdn_conv_params_init(&defaults);
        params = &defaults;
    }
    if (!grads)
        return gdn__fail(ctx, GDN_STATUS_INVALID_ARGUMENT, "%s: grads is NULL", fn);
    for (i = 0; i < GDN_ARRAY_SIZE(grads->reserved); i++)
        if (grads->reserved[i])
            return gdn__fail(ctx, GDN_STATUS_INVALID_ARGUMENT, "%s: grads.reserved must be NULL",
                             fn);
    if ((st = conv_check(ctx, fn, params, args, &s)))
        return st;
    shp[0] = s.N, shp[1] = s.C, shp[2] = s.W - 1;
    if ((st = gdn__check_tensor(ctx, dy, "dy", GDN_DTYPE_F32, args->x->ndim, args->x->shape)) ||
        (dfinal_state &&
         (st = gdn__check_tensor(ctx, dfinal_state, "dfinal_state", GDN_DTYPE_F32, 3, shp))) ||
        (grads->dx && (st = gdn__check_tensor(ctx, grads->dx, "dx", GDN_DTYPE_F32,
                                              args->x->ndim, args->x->shape))) ||
        (grads->dinitial_state &&
         (st = gdn__check_tensor(ctx, grads->dinitial_state, "dinitial_state", GDN_DTYPE_F32, 3,
                                 shp))))
        goto done;
    shp[0] = s.C, shp[1] = s.W;
    if ((grads->dweight &&
         (st = gdn__check_tensor(ctx, grads->dweight, "dweight", GDN_DTYPE_F32, 2, shp))) ||
        (grads->dbias && (st = gdn__check_tensor(ctx, grads->dbias, "dbias", GDN_DTYPE_F32, 1,
                                                 shp))))
        goto done;
    outs[0] = grads->dx, outs[1] = grads->dweight, outs[2] = grads->dbias;
    outs[3] = grads->dinitial_state;
    for (i = 0; i < 4; i++) {
        const gdn_tensor *o = outs[i];
        if (!o)
            continue;
        if (o == args->x || o == args->weight || o == args->bias || o == args->initial_state ||
            o == dy || o == dfinal_state) {
            st = gdn__fail(ctx, GDN_STATUS_INVALID_ARGUMENT, "%s: grads.%s aliases an input", fn,
                           names[i]);
            goto done;
        }
        for (j = 0; j < i; j++)
            if (outs[j] == o) {
                st = gdn__fail(ctx, GDN_STATUS_INVALID_ARGUMENT,
                               "%s: grads.%s and grads.%s are the same tensor", fn, names[j],
                               names[i]);
                goto done;
            }
    }
    if (s.C == 0 || (!grads->dx && !grads->dweight && !grads->dbias && !grads->dinitial_state))
        goto done;

    want_dw = grads->dweight || grads->dbias;
    if ((st = conv_kernel(ctx, CONV_BWD_CL, "conv_bwd", &gdn__conv_bwd_space, &s, v, &k)))
        goto done;
    conv_plan_from(v, &p);
    if ((st = gdn__conv_index_build(ctx, &s, p.tt, &ix)))
        goto done;
    if (want_dw &&
        ((st = gdn__buffer_create(ctx, (size_t)ix.nt * (size_t)s.C * (size_t)s.W * sizeof(float),
                                  &dwpart)) ||
         (st = gdn__buffer_create(ctx, (size_t)ix.nt * (size_t)s.C * sizeof(float), &dbpart))))
        goto done;
    if ((st = gdn__arg_mem(ctx, k, a++, args->x->mem)) ||
        (st = gdn__arg_mem(ctx, k, a++, args->weight->mem)) ||
        (st = gdn__arg_mem(ctx, k, a++, args->bias ? args->bias->mem : args->weight->mem)) ||
        (st = gdn__arg_mem(ctx, k, a++, args->initial_state ? args->initial_state->mem
                                                            : args->weight->mem)) ||
        (st = gdn__arg_mem(ctx, k, a++, dy->mem)) ||
        (st = gdn__arg_mem(ctx, k, a++, dfinal_state ? dfinal_state->mem : dy->mem)) ||
        (st = gdn__arg_mem(ctx, k, a++, ix.chunks)) || (st = gdn__arg_mem(ctx, k, a++, ix.seq_off)) ||
        (st = gdn__arg_mem(ctx, k, a++, grads->dx ? grads->dx->mem : dy->mem)) ||
        (st = gdn__arg_mem(ctx, k, a++,
                           grads->dinitial_state ? grads->dinitial_state->mem : dy->mem)) ||
        (st = gdn__arg_mem(ctx, k, a++, dwpart ? dwpart : dy->mem)) ||
        (st = gdn__arg_mem(ctx, k, a++, dbpart ? dbpart : dy->mem)) ||
        (st = gdn__arg_int(ctx, k, a++, s.C)) || (st = gdn__arg_int(ctx, k, a++, ix.nt)) ||
        (st = gdn__arg_int(ctx, k, a++, args->bias ? 1 : 0)) ||
        (st = gdn__arg_int(ctx, k, a++, (s.flags & GDN_CONV_SILU) ? 1 : 0)) ||
        (st = gdn__arg_int(ctx, k, a++, args->initial_state ? 1 : 0)) ||
        (st = gdn__arg_int(ctx, k, a++, dfinal_state ? 1 : 0)) ||
        (st = gdn__arg_int(ctx, k, a++, grads->dx ? 1 : 0)) ||
        (st = gdn__arg_int(ctx, k, a++, grads->dinitial_state ? 1 : 0)) ||
        (st = gdn__arg_int(ctx, k, a++, want_dw ? 1 : 0)))
        goto done;
    local[0] = (size_t)p.cb, local[1] = (size_t)p.cg;
    global[0] = (size_t)s.C, global[1] = (size_t)ix.nt;
    if ((st = gdn__launch(ctx, k, 2, global, local, NULL)))
        goto done;
    if (grads->dweight &&
        (st = gdn__norm_colsum(ctx, dwpart, ix.nt, s.C * s.W, grads->dweight->mem)))
        goto done;
    if (grads->dbias)
        st = gdn__norm_colsum(ctx, dbpart, ix.nt, s.C, grads->dbias->mem);
done:
    gdn__buffer_release(dwpart);
    gdn__buffer_release(dbpart);
    gdn__conv_index_free(&ix);
    gdn__conv_shape_free(&s);
    return st;
}

gdn_status gdn_conv_step(gdn_context *ctx, const gdn_conv_params *params,
                         const gdn_conv_args *args, gdn_tensor *state, gdn_tensor *y)
{
    static const char *fn = "gdn_conv_step";
    gdn_conv_params    defaults;
    const gdn_tensor  *x;
    cl_kernel          k;
    cl_uint            a = 0;
    int32_t            N, C, W, v[GDN_TUNE_MAX_PARAMS];
    struct gdn_conv_shape sh;
    int64_t            shp[3];
    size_t             i, global, local;
    gdn_status         st;

    if (!ctx)
        return GDN_STATUS_INVALID_ARGUMENT;
    if (!params) {
        gdn_conv_params_init(&defaults);
        params = &defaults;
    }
    for (i = 0; i < GDN_ARRAY_SIZE(params->reserved); i++)
        if (params->reserved[i])
            return gdn__fail(ctx, GDN_STATUS_INVALID_ARGUMENT,
                             "%s: params.reserved must be zero (use gdn_conv_params_init)", fn);
    if (params->flags & ~(uint32_t)GDN_CONV_SILU)
        return gdn__fail(ctx, GDN_STATUS_INVALID_ARGUMENT, "%s: unknown params.flags 0x%x", fn,
                         (unsigned)params->flags);
    if (!args)
        return gdn__fail(ctx, GDN_STATUS_INVALID_ARGUMENT, "%s: args is NULL", fn);
    for (i = 0; i < GDN_ARRAY_SIZE(args->reserved); i++)
        if (args->reserved[i])
            return gdn__fail(ctx, GDN_STATUS_INVALID_ARGUMENT, "%s: args.reserved must be zero",
                             fn);
    if (args->initial_state || args->seq_offsets || args->n_seqs)
        return gdn__fail(ctx, GDN_STATUS_INVALID_ARGUMENT,
                         "%s: args.initial_state and seq_offsets must be NULL (the state tensor "
                         "is updated in place)", fn);
    x = args->x;
    if (!x)
        return gdn__fail(ctx, GDN_STATUS_INVALID_ARGUMENT, "%s: args.x is NULL", fn);
    if (x->ctx != ctx)
        return gdn__fail(ctx, GDN_STATUS_INVALID_ARGUMENT, "%s: x belongs to another context", fn);
    if (x->dtype != GDN_DTYPE_F32 || x->ndim != 2 || x->shape[0] > (1 << 24) ||
        x->shape[1] > INT32_MAX)
        return gdn__fail(ctx, GDN_STATUS_SHAPE_MISMATCH,
                         "%s: x must be F32 [N, C] (one token per sequence, N <= 2^24)", fn);
    N = (int32_t)x->shape[0];
    C = (int32_t)x->shape[1];
    if (!args->weight)
        return gdn__fail(ctx, GDN_STATUS_INVALID_ARGUMENT, "%s: args.weight is NULL", fn);
    if (args->weight->ndim != 2 || args->weight->shape[1] < 2 || args->weight->shape[1] > 8)
        return gdn__fail(ctx, args->weight->ndim != 2 ? GDN_STATUS_SHAPE_MISMATCH
                                                      : GDN_STATUS_UNSUPPORTED,
                         "%s: weight must be [C, W] with W in 2..8", fn);
    W      = (int32_t)args->weight->shape[1];
    shp[0] = C, shp[1] = W;
    if ((st = gdn__check_tensor(ctx, args->weight, "weight", GDN_DTYPE_F32, 2, shp)) ||
        (args->bias && (st = gdn__check_tensor(ctx, args->bias, "bias", GDN_DTYPE_F32, 1, shp))))
        return st;
    shp[0] = N, shp[1] = C, shp[2] = W - 1;
    if ((st = gdn__check_tensor(ctx, state, "state", GDN_DTYPE_F32, 3, shp)) ||
        (st = gdn__check_tensor(ctx, y, "y", GDN_DTYPE_F32, 2, x->shape)))
        return st;
    if (state == x || y == args->weight || y == args->bias)
        return gdn__fail(ctx, GDN_STATUS_INVALID_ARGUMENT,
                         "%s: state or y aliases another argument (only y == x is allowed)", fn);
    if ((int64_t)N * C == 0)
        return GDN_STATUS_OK;
    memset(&sh, 0, sizeof(sh));
    sh.T = N, sh.C = C, sh.W = W, sh.N = N, sh.flags = params->flags;
    if ((st = conv_kernel(ctx, CONV_STEP_CL, "conv_step", &gdn__conv_step_space, &sh, v, &k)))
        return st;
    if ((st = gdn__arg_mem(ctx, k, a++, x->mem)) ||
        (st = gdn__arg_mem(ctx, k, a++, args->weight->mem)) ||
        (st = gdn__arg_mem(ctx, k, a++, args->bias ? args->bias->mem : args->weight->mem)) ||
        (st = gdn__arg_mem(ctx, k, a++, state->mem)) || (st = gdn__arg_mem(ctx, k, a++, y->mem)) ||
        (st = gdn__arg_int(ctx, k, a++, N)) || (st = gdn__arg_int(ctx, k, a++, C)) ||
        (st = gdn__arg_int(ctx, k, a++, args->bias ? 1 : 0)) ||
        (st = gdn__arg_int(ctx, k, a++, (params->flags & GDN_CONV_SILU) ? 1 : 0)))
        return st;
    local  = (size_t)v[0];
    global = (size_t)N * (size_t)C;
    return gdn__launch(ctx, k, 1, &global, &local, NULL);
}
