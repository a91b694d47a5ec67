/*
 * api.c - public entry points of the Mamba2 SSD core: argument checks that
 * name the offending argument, the sequence/chunk index tables, and tapes.
 * The numerical work is in ssd_fwd.c, ssd_bwd.c and step.c.
 */
#include <math.h>
#include <string.h>

#include "mamba2.h"

void gdn_mamba2_params_init(gdn_mamba2_params *params)
{
    if (!params)
        return;
    memset(params, 0, sizeof(*params));
}

void gdn__m2_tape_free(struct gdn_mamba2_tape *tp)
{
    if (!tp)
        return;
    gdn__buffer_release(tp->idx.chunk_off);
    gdn__buffer_release(tp->idx.chunks);
    gdn__buffer_release(tp->dtv);
    gdn__buffer_release(tp->cs);
    gdn__buffer_release(tp->csl);
    gdn__free(tp->idx.offsets);
    gdn__context_unref(tp->ctx);
    gdn__free(tp);
}

void gdn_mamba2_tape_destroy(gdn_mamba2_tape *tape)
{
    gdn__m2_tape_free(tape);
}

static bool dim_ok(int64_t d)
{
    return d >= 16 && d <= 256 && d % 16 == 0;
}

/* Sequence offsets -> per-sequence chunk offsets and the chunk table. */
static gdn_status build_index(gdn_context *ctx, struct gdn_mamba2_tape *tp)
{
    struct gdn_m2_shape *s  = &tp->s;
    const int32_t        CH = s->CH;
    int32_t             *chunk_off, *chunks;
    int64_t              total = 0;
    int32_t              n, c;
    gdn_status           st;

    chunk_off = gdn__calloc((size_t)s->N + 1, sizeof(int32_t));
    if (!chunk_off)
        return gdn__fail(ctx, GDN_STATUS_OUT_OF_HOST_MEMORY, "mamba2: out of host memory");
    for (n = 0; n < s->N; n++) {
        int32_t len  = tp->idx.offsets[n + 1] - tp->idx.offsets[n];
        chunk_off[n] = (int32_t)total;
        total += (len + CH - 1) / CH;
        if (len > s->max_len)
            s->max_len = len;
    }
    chunk_off[s->N] = (int32_t)total;
    s->NT           = (int32_t)total;
    chunks          = gdn__calloc((size_t)(total ? total : 1) * 4, sizeof(int32_t));
    if (!chunks) {
        gdn__free(chunk_off);
        return gdn__fail(ctx, GDN_STATUS_OUT_OF_HOST_MEMORY, "mamba2: out of host memory");
    }
    for (n = 0; n < s->N; n++) {
        int32_t bos = tp->idx.offsets[n], eos = tp->idx.offsets[n + 1];
        for (c = 0; (int64_t)bos + (int64_t)c * CH < eos; c++) {
            int32_t *e     = chunks + 4 * (size_t)(chunk_off[n] + c);
            int32_t  start = bos + c * CH;
            e[0]           = n;
            e[1]           = start;
            e[2]           = eos - start < CH ? eos - start : CH;
            e[3]           = c;
        }
    }
    st = gdn__int_table(ctx, chunk_off, (size_t)s->N + 1, &tp->idx.chunk_off);
    if (!st)
        st = gdn__int_table(ctx, chunks, (size_t)(total ? total : 1) * 4, &tp->idx.chunks);
    gdn__free(chunk_off);
    gdn__free(chunks);
    return st;
}

#define CHECK(expr)                                                                                \
    do {                                                                                           \
        if ((st = (expr)) != GDN_STATUS_OK)                                                        \
            goto fail;                                                                             \
    } while (0)
#define FAIL(status, ...)                                                                          \
    do {                                                                                           \
        st = gdn__fail(ctx, status, __VA_ARGS__);                                                  \
        goto fail;                                                                                 \
    } while (0)

static gdn_status check_params(gdn_context *ctx, const gdn_mamba2_params *p)
{
    size_t i;
    for (i = 0; i < GDN_ARRAY_SIZE(p->reserved); i++)
        if (p->reserved[i])
            return gdn__fail(ctx, GDN_STATUS_INVALID_ARGUMENT,
                             "mamba2: params.reserved must be zero (use gdn_mamba2_params_init)");
    if (!(p->dt_min >= 0.0f) || !isfinite(p->dt_min))
        return gdn__fail(ctx, GDN_STATUS_INVALID_ARGUMENT,
                         "mamba2: params.dt_min = %g must be finite and >= 0", (double)p->dt_min);
    if (!(p->dt_max >= 0.0f))
        return gdn__fail(ctx, GDN_STATUS_INVALID_ARGUMENT,
                         "mamba2: params.dt_max = %g must be >= 0 (0 or +inf: no clamp)",
                         (double)p->dt_max);
    if (p->dt_max > 0.0f && !(p->dt_max > p->dt_min))
        return gdn__fail(ctx, GDN_STATUS_INVALID_ARGUMENT,
                         "mamba2: params.dt_max = %g must exceed dt_min = %g", (double)p->dt_max,
                         (double)p->dt_min);
    if (p->chunk_size != 0 && p->chunk_size != 64 && p->chunk_size != 128 &&
        p->chunk_size != 256)
        return gdn__fail(ctx, GDN_STATUS_INVALID_ARGUMENT,
                         "mamba2: params.chunk_size = %d must be 0, 64, 128 or 256",
                         (int)p->chunk_size);
    return GDN_STATUS_OK;
}

gdn_status gdn__m2_tape_init(gdn_context *ctx, const gdn_mamba2_params *params,
                             const gdn_mamba2_args *args, const gdn_tensor *y,
                             const gdn_tensor *ht, bool alloc_saved,
                             struct gdn_mamba2_tape **out)
{
    struct gdn_mamba2_tape *tp;
    struct gdn_m2_shape    *s;
    gdn_mamba2_params       defaults;
    int64_t                 Bsz, Tb;
    int32_t                 nd, i;
    gdn_status              st = GDN_STATUS_OK;

    *out = NULL;
    if (!params) {
        gdn_mamba2_params_init(&defaults);
        params = &defaults;
    }
    if (!args)
        return gdn__fail(ctx, GDN_STATUS_INVALID_ARGUMENT, "mamba2: args is NULL");
    if ((st = check_params(ctx, params)))
        return st;
    for (i = 0; i < (int32_t)GDN_ARRAY_SIZE(args->reserved); i++)
        if (args->reserved[i])
            return gdn__fail(ctx, GDN_STATUS_INVALID_ARGUMENT,
                             "mamba2: args.reserved must be zero");
    if (!args->x || !args->dt || !args->A_log || !args->B || !args->C)
        return gdn__fail(ctx, GDN_STATUS_INVALID_ARGUMENT,
                         "mamba2: x, dt, A_log, B and C are required (args.%s is NULL)",
                         !args->x ? "x" : !args->dt ? "dt" : !args->A_log ? "A_log"
                                                    : !args->B        ? "B"
                                                                      : "C");
    if (args->x->ctx != ctx)
        return gdn__fail(ctx, GDN_STATUS_INVALID_ARGUMENT, "mamba2: x belongs to another context");
    nd = args->x->ndim;
    if (nd != 3 && nd != 4)
        return gdn__fail(ctx, GDN_STATUS_SHAPE_MISMATCH,
                         "mamba2: x: expected [T, H, P] or [B, T, H, P], got %d dimensions",
                         (int)nd);
    if (nd == 4 && args->seq_offsets)
        return gdn__fail(ctx, GDN_STATUS_INVALID_ARGUMENT,
                         "mamba2: seq_offsets goes with 3-D (packed) tensors");
    if (!args->seq_offsets && args->n_seqs != 0)
        return gdn__fail(ctx, GDN_STATUS_INVALID_ARGUMENT,
                         "mamba2: n_seqs is set but seq_offsets is NULL");
    if (args->B->ndim != nd)
        return gdn__fail(ctx, GDN_STATUS_SHAPE_MISMATCH,
                         "mamba2: B: expected %d dimensions like x, got %d", (int)nd,
                         (int)args->B->ndim);

    tp = gdn__calloc(1, sizeof(*tp));
    if (!tp)
        return gdn__fail(ctx, GDN_STATUS_OUT_OF_HOST_MEMORY, "mamba2: out of host memory");
    tp->ctx = ctx;
    gdn__context_ref(ctx);
    s   = &tp->s;
    Bsz = nd == 4 ? args->x->shape[0] : 1;
    Tb  = args->x->shape[nd - 3];
    if (args->x->shape[nd - 2] < 1 || args->x->shape[nd - 2] > 4096 ||
        args->B->shape[nd - 2] < 1 || args->B->shape[nd - 2] > 4096 ||
        args->x->shape[nd - 2] % args->B->shape[nd - 2] != 0)
        FAIL(GDN_STATUS_SHAPE_MISMATCH,
             "mamba2: heads H = %lld (x) must be a multiple of groups G = %lld (B), both in "
             "[1, 4096]",
             (long long)args->x->shape[nd - 2], (long long)args->B->shape[nd - 2]);
    s->H  = (int32_t)args->x->shape[nd - 2];
    s->P  = (int32_t)args->x->shape[nd - 1];
    s->G  = (int32_t)args->B->shape[nd - 2];
    s->DS = (int32_t)args->B->shape[nd - 1];
    if (!dim_ok(args->x->shape[nd - 1]) || !dim_ok(args->B->shape[nd - 1]))
        FAIL(GDN_STATUS_UNSUPPORTED,
             "mamba2: head dim P = %lld and state size DS = %lld must be multiples of 16 from "
             "16 to 256",
             (long long)args->x->shape[nd - 1], (long long)args->B->shape[nd - 1]);
    if (Bsz < 1 || Bsz > (1 << 24) || Tb < 0 || Bsz * Tb > (1 << 30))
        FAIL(GDN_STATUS_UNSUPPORTED, "mamba2: batch %lld x tokens %lld outside the supported "
             "range (B in [1, 2^24], B T <= 2^30)", (long long)Bsz, (long long)Tb);
    s->T        = Bsz * Tb;
    s->CH       = params->chunk_size ? params->chunk_size : GDN_M2_CHUNK_DEFAULT;
    s->dt_min   = params->dt_min;
    s->dt_max   = params->dt_max > 0.0f ? params->dt_max : INFINITY;
    s->has_bias = args->dt_bias != NULL;
    s->has_D    = args->D != NULL;

    {
        int64_t want[4];
        int32_t np = 0;
        if (nd == 4)
            want[np++] = Bsz;
        want[np++] = Tb;
#define WANT(t, name, d1, d2)                                                                      \
    do {                                                                                           \
        want[np] = (d1), want[np + 1] = (d2);                                                      \
        CHECK(gdn__check_tensor(ctx, (t), name, GDN_DTYPE_F32, np + ((d2) > 0 ? 2 : 1), want));    \
    } while (0)
        WANT(args->x, "x", s->H, s->P);
        WANT(args->dt, "dt", s->H, 0);
        WANT(args->B, "B", s->G, s->DS);
        WANT(args->C, "C", s->G, s->DS);
        if (y)
            WANT(y, "y", s->H, s->P);
#undef WANT
    }
    {
        int64_t h = s->H;
        CHECK(gdn__check_tensor(ctx, args->A_log, "A_log", GDN_DTYPE_F32, 1, &h));
        if (args->dt_bias)
            CHECK(gdn__check_tensor(ctx, args->dt_bias, "dt_bias", GDN_DTYPE_F32, 1, &h));
        if (args->D)
            CHECK(gdn__check_tensor(ctx, args->D, "D", GDN_DTYPE_F32, 1, &h));
    }

    /* Sequences. */
    CHECK(gdn__seq_offsets(ctx, "mamba2", args->seq_offsets, args->n_seqs, Bsz, Tb,
                           &tp->idx.offsets, &s->N));
    {
        int64_t st_shape[4] = {s->N, s->H, s->P, s->DS};
        if (args->h0)
            CHECK(gdn__check_tensor(ctx, args->h0, "h0", GDN_DTYPE_F32, 4, st_shape));
        if (ht)
            CHECK(gdn__check_tensor(ctx, ht, "ht", GDN_DTYPE_F32, 4, st_shape));
    }
    {
        const gdn_tensor *ins[] = {args->x, args->dt,  args->A_log, args->dt_bias,
                                   args->B, args->C,   args->D,     args->h0};
        size_t            k;
        for (k = 0; k < GDN_ARRAY_SIZE(ins); k++) {
            if (y && ins[k] && ins[k]->mem == y->mem)
                FAIL(GDN_STATUS_INVALID_ARGUMENT, "mamba2: y aliases an input");
            if (ht && ins[k] && ins[k]->mem == ht->mem && (alloc_saved || k != 7))
                FAIL(GDN_STATUS_INVALID_ARGUMENT, "mamba2: ht aliases an input");
        }
        if (y && ht && y->mem == ht->mem)
            FAIL(GDN_STATUS_INVALID_ARGUMENT, "mamba2: y and ht alias");
    }

    tp->x = args->x, tp->dt = args->dt, tp->A_log = args->A_log, tp->dt_bias = args->dt_bias;
    tp->B = args->B, tp->C = args->C, tp->D = args->D, tp->h0 = args->h0;
    CHECK(build_index(ctx, tp));
    if (alloc_saved) {
        size_t th = (size_t)s->T * (size_t)s->H;
        CHECK(gdn__m2_scratch(ctx, th, &tp->dtv));
        CHECK(gdn__m2_scratch(ctx, th, &tp->cs));
        CHECK(gdn__m2_scratch(ctx, (size_t)s->NT * (size_t)s->H, &tp->csl));
    }
    *out = tp;
    return GDN_STATUS_OK;
fail:
    gdn__m2_tape_free(tp);
    return st;
}

gdn_status gdn_mamba2_forward(gdn_context *ctx, const gdn_mamba2_params *params,
                              const gdn_mamba2_args *args, gdn_tensor *y, gdn_tensor *ht,
                              gdn_mamba2_tape **tape)
{
    struct gdn_mamba2_tape *tp;
    gdn_status              st;

    if (tape)
        *tape = NULL;
    if (!ctx)
        return GDN_STATUS_INVALID_ARGUMENT;
    if (!y)
        return gdn__fail(ctx, GDN_STATUS_INVALID_ARGUMENT, "gdn_mamba2_forward: y is NULL");
    if ((st = gdn__m2_tape_init(ctx, params, args, y, ht, true, &tp)))
        return st;
    st = gdn__m2_forward(tp, y, ht);
    if (st || !tape) {
        gdn__m2_tape_free(tp);
        return st;
    }
    *tape = tp;
    return GDN_STATUS_OK;
}

gdn_status gdn_mamba2_backward(gdn_context *ctx, const gdn_mamba2_tape *tape,
                               const gdn_tensor *dy, const gdn_tensor *dht,
                               const gdn_mamba2_grads *grads)
{
    const struct gdn_m2_shape *s;
    gdn_status                 st;
    int64_t                    shp[4], hh;
    size_t                     i, j;

    if (!ctx)
        return GDN_STATUS_INVALID_ARGUMENT;
    if (!tape || !grads || !dy)
        return gdn__fail(ctx, GDN_STATUS_INVALID_ARGUMENT,
                         "gdn_mamba2_backward: tape, dy and grads are required");
    if (tape->ctx != ctx)
        return gdn__fail(ctx, GDN_STATUS_INVALID_ARGUMENT,
                         "gdn_mamba2_backward: the tape belongs to another context");
    for (i = 0; i < GDN_ARRAY_SIZE(grads->reserved); i++)
        if (grads->reserved[i])
            return gdn__fail(ctx, GDN_STATUS_INVALID_ARGUMENT,
                             "gdn_mamba2_backward: grads.reserved must be NULL");
    s = &tape->s;
    if ((st = gdn__check_tensor(ctx, dy, "dy", GDN_DTYPE_F32, tape->x->ndim, tape->x->shape)))
        return st;
    shp[0] = s->N, shp[1] = s->H, shp[2] = s->P, shp[3] = s->DS;
    if (dht && (st = gdn__check_tensor(ctx, dht, "dht", GDN_DTYPE_F32, 4, shp)))
        return st;
#define GRAD(field, like, name)                                                                    \
    do {                                                                                           \
        if (grads->field && (st = gdn__check_tensor(ctx, grads->field, name, GDN_DTYPE_F32,        \
                                                    (like)->ndim, (like)->shape)))                 \
            return st;                                                                             \
    } while (0)
    GRAD(dx, tape->x, "dx");
    GRAD(ddt, tape->dt, "ddt");
    GRAD(dA_log, tape->A_log, "dA_log");
    GRAD(dB, tape->B, "dB");
    GRAD(dC, tape->C, "dC");
#undef GRAD
    hh = s->H;
    if (grads->ddt_bias) {
        if (!tape->dt_bias)
            return gdn__fail(ctx, GDN_STATUS_INVALID_ARGUMENT,
                             "gdn_mamba2_backward: ddt_bias needs dt_bias in the forward");
        if ((st = gdn__check_tensor(ctx, grads->ddt_bias, "ddt_bias", GDN_DTYPE_F32, 1, &hh)))
            return st;
    }
    if (grads->dD) {
        if (!tape->D)
            return gdn__fail(ctx, GDN_STATUS_INVALID_ARGUMENT,
                             "gdn_mamba2_backward: dD needs D in the forward");
        if ((st = gdn__check_tensor(ctx, grads->dD, "dD", GDN_DTYPE_F32, 1, &hh)))
            return st;
    }
    if (grads->dh0 && (st = gdn__check_tensor(ctx, grads->dh0, "dh0", GDN_DTYPE_F32, 4, shp)))
        return st;
    {
        const gdn_tensor *outs[] = {grads->dx, grads->ddt, grads->dA_log, grads->ddt_bias,
                                    grads->dB, grads->dC,  grads->dD,     grads->dh0};
        const gdn_tensor *ins[]  = {tape->x, tape->dt, tape->A_log, tape->dt_bias, tape->B,
                                    tape->C, tape->D,  tape->h0,    dy,            dht};
        for (i = 0; i < GDN_ARRAY_SIZE(outs); i++) {
            if (!outs[i])
                continue;
            for (j = 0; j < GDN_ARRAY_SIZE(ins); j++)
                if (ins[j] && ins[j]->mem == outs[i]->mem)
                    return gdn__fail(ctx, GDN_STATUS_INVALID_ARGUMENT,
                                     "gdn_mamba2_backward: gradient %zu aliases an input", i);
            for (j = i + 1; j < GDN_ARRAY_SIZE(outs); j++)
                if (outs[j] && outs[j]->mem == outs[i]->mem)
                    return gdn__fail(ctx, GDN_STATUS_INVALID_ARGUMENT,
                                     "gdn_mamba2_backward: gradients %zu and %zu alias", i, j);
        }
    }
    return gdn__m2_backward(tape, dy, dht, grads);
}

gdn_status gdn_mamba2_step(gdn_context *ctx, const gdn_mamba2_params *params,
                           const gdn_mamba2_args *args, gdn_tensor *state, gdn_tensor *y)
{
    struct gdn_mamba2_tape *tp;
    gdn_mamba2_args         a;
    gdn_mamba2_params       p;
    int32_t                 n, i, *off;
    gdn_status              st;

    if (!ctx)
        return GDN_STATUS_INVALID_ARGUMENT;
    if (!args || !y || !state)
        return gdn__fail(ctx, GDN_STATUS_INVALID_ARGUMENT,
                         "gdn_mamba2_step: args, state and y are required");
    if (args->h0 || args->seq_offsets)
        return gdn__fail(ctx, GDN_STATUS_INVALID_ARGUMENT,
                         "gdn_mamba2_step: args.h0 and seq_offsets must be NULL (the state "
                         "tensor is updated in place)");
    if (!args->x || args->x->ndim != 3)
        return gdn__fail(ctx, GDN_STATUS_SHAPE_MISMATCH,
                         "gdn_mamba2_step: x must be [N, H, P] (one token per sequence)");
    if (params) {
        p            = *params;
        p.chunk_size = 0; /* not used by the step */
        params       = &p;
    }
    /* One token per sequence: N sequences of length 1. */
    a = *args;
    n = (int32_t)args->x->shape[0];
    if (n < 1 || n > (1 << 24))
        return gdn__fail(ctx, GDN_STATUS_INVALID_ARGUMENT,
                         "gdn_mamba2_step: N = %d not in [1, 2^24]", (int)n);
    off = gdn__malloc(((size_t)n + 1) * sizeof(int32_t));
    if (!off)
        return gdn__fail(ctx, GDN_STATUS_OUT_OF_HOST_MEMORY, "gdn_mamba2_step: out of memory");
    for (i = 0; i <= n; i++)
        off[i] = i;
    a.seq_offsets = off;
    a.n_seqs      = n;
    st            = gdn__m2_tape_init(ctx, params, &a, y, state, false, &tp);
    gdn__free(off);
    if (st)
        return st;
    st = gdn__m2_step(tp, state, y);
    gdn__m2_tape_free(tp);
    return st;
}
