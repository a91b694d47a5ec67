/*
 * api.c - public entry points of the gated delta rule: argument checks that
 * name the offending argument, the sequence/chunk index tables, and tapes.
 * The numerical work is in chunk_fwd.c, chunk_bwd.c and recurrent.c.
 */
#include <math.h>
#include <string.h>

#include "gated_delta.h"

void gdn_gated_delta_params_init(gdn_gated_delta_params *params)
{
    if (!params)
        return;
    memset(params, 0, sizeof(*params));
}

static void tape_free(struct gdn_gated_delta_tape *tp)
{
    cl_mem *mems[] = {&tp->idx.seq_off, &tp->idx.chunk_off, &tp->idx.chunks, &tp->qn,
                      &tp->kn,          &tp->rstd_q,        &tp->rstd_k,     &tp->G,
                      &tp->b,           &tp->gate,          &tp->Ai};
    size_t  i;
    /* Index tables are small and exact-size: free them. The saved buffers go
     * back to the context's scratch pool for the next call. */
    for (i = 0; i < 3; i++)
        gdn__buffer_release(*mems[i]);
    for (; i < GDN_ARRAY_SIZE(mems); i++)
        gdn__scratch_release(tp->ctx, *mems[i]);
    gdn__free(tp->idx.offsets);
    gdn__context_unref(tp->ctx);
    gdn__free(tp);
}

void gdn_gated_delta_tape_destroy(gdn_gated_delta_tape *tape)
{
    if (tape)
        tape_free(tape);
}

/* Head dims the kernels support. */
static bool head_dim_ok(int64_t d)
{
    return d >= 16 && d <= 256 && d % 16 == 0;
}

/* The sequence offsets on the device. One-token sequences (decode steps)
 * share the context's iota buffer, so a step allocates nothing. */
static gdn_status upload_seq_off(gdn_context *ctx, struct gdn_gated_delta_tape *tp)
{
    int32_t n;
    cl_mem  iota;

    for (n = 0; n <= tp->s.N && tp->idx.offsets[n] == n; n++)
        ;
    if (n > tp->s.N) {
        gdn_status st = gdn__iota(ctx, tp->s.N + 1, &iota);
        if (st)
            return st;
        clRetainMemObject(iota);
        tp->idx.seq_off = iota;
        return GDN_STATUS_OK;
    }
    return gdn__int_table(ctx, tp->idx.offsets, (size_t)tp->s.N + 1, &tp->idx.seq_off);
}

/* Sequence offsets -> per-sequence chunk offsets and the chunk table (the
 * latter two only for the chunked paths). */
static gdn_status build_index(gdn_context *ctx, struct gdn_gated_delta_tape *tp,
                              bool chunk_tables)
{
    struct gdn_gd_shape *s = &tp->s;
    int32_t             *chunk_off, *chunks;
    int32_t              n, c, total = 0;
    gdn_status           st;

    chunk_off = gdn__calloc((size_t)s->N + 1, sizeof(int32_t));
    if (!chunk_off)
        return gdn__fail(ctx, GDN_STATUS_OUT_OF_HOST_MEMORY, "gated_delta: out of memory");
    for (n = 0; n < s->N; n++) {
        int32_t len  = tp->idx.offsets[n + 1] - tp->idx.offsets[n];
        chunk_off[n] = total;
        total += (len + GDN_GD_CHUNK - 1) / GDN_GD_CHUNK;
        if (len > s->max_len)
            s->max_len = len;
    }
    chunk_off[s->N] = total;
    s->NT           = total;
    chunks          = gdn__calloc((size_t)(total ? total : 1) * 4, sizeof(int32_t));
    if (!chunks) {
        gdn__free(chunk_off);
        return gdn__fail(ctx, GDN_STATUS_OUT_OF_HOST_MEMORY, "gated_delta: out of memory");
    }
    for (n = 0; n < s->N; n++) {
        int32_t bos = tp->idx.offsets[n], eos = tp->idx.offsets[n + 1];
        for (c = 0; bos + c * GDN_GD_CHUNK < eos; c++) {
            int32_t *e = chunks + 4 * (size_t)(chunk_off[n] + c);
            int32_t  start = bos + c * GDN_GD_CHUNK;
            e[0]           = n;
            e[1]           = start;
            e[2]           = eos - start < GDN_GD_CHUNK ? eos - start : GDN_GD_CHUNK;
            e[3]           = c;
        }
    }
    st = upload_seq_off(ctx, tp);
    if (!st && chunk_tables)
        st = gdn__int_table(ctx, chunk_off, (size_t)s->N + 1, &tp->idx.chunk_off);
    if (!st && chunk_tables)
        st = gdn__int_table(ctx, chunks, (size_t)(total ? total : 1) * 4, &tp->idx.chunks);
    gdn__free(chunk_off);
    gdn__free(chunks);
    return st;
}

/* Reject non-F32 or foreign tensors early with the argument's name. */
#define CHECK(expr)                                                                                \
    do {                                                                                           \
        if ((st = (expr)) != GDN_STATUS_OK)                                                        \
            goto fail;                                                                             \
    } while (0)

gdn_status gdn__gd_tape_init(gdn_context *ctx, const gdn_gated_delta_params *params,
                             const gdn_gated_delta_args *args, const gdn_tensor *o,
                             const gdn_tensor *ht, bool alloc_saved,
                             struct gdn_gated_delta_tape **out)
{
    struct gdn_gated_delta_tape *tp;
    struct gdn_gd_shape         *s;
    gdn_gated_delta_params       defaults;
    int64_t                      B, Tb;
    int32_t                      nd, i;
    size_t                       bytes;
    gdn_status                   st = GDN_STATUS_OK;

    *out = NULL;
    if (!params) {
        gdn_gated_delta_params_init(&defaults);
        params = &defaults;
    }
    if (!args)
        return gdn__fail(ctx, GDN_STATUS_INVALID_ARGUMENT, "gated_delta: args is NULL");
    for (i = 0; i < (int32_t)GDN_ARRAY_SIZE(params->reserved); i++)
        if (params->reserved[i])
            return gdn__fail(ctx, GDN_STATUS_INVALID_ARGUMENT,
                             "gated_delta: params.reserved must be zero (use "
                             "gdn_gated_delta_params_init)");
    for (i = 0; i < (int32_t)GDN_ARRAY_SIZE(args->reserved); i++)
        if (args->reserved[i])
            return gdn__fail(ctx, GDN_STATUS_INVALID_ARGUMENT,
                             "gated_delta: args.reserved must be zero");
    if (params->flags & ~(uint32_t)0xf)
        return gdn__fail(ctx, GDN_STATUS_INVALID_ARGUMENT, "gated_delta: unknown flags 0x%x",
                         (unsigned)params->flags);
    if ((params->flags & GDN_GATED_DELTA_NEG_EIGVAL) &&
        !(params->flags & GDN_GATED_DELTA_BETA_SIGMOID))
        return gdn__fail(ctx, GDN_STATUS_INVALID_ARGUMENT,
                         "gated_delta: NEG_EIGVAL needs BETA_SIGMOID");
    if (!(params->scale >= 0.0f) || !isfinite(params->scale) || !(params->l2norm_eps >= 0.0f) ||
        !isfinite(params->l2norm_eps))
        return gdn__fail(ctx, GDN_STATUS_INVALID_ARGUMENT,
                         "gated_delta: scale and l2norm_eps must be finite and >= 0");
    if (!args->q || !args->k || !args->v || !args->g || !args->beta)
        return gdn__fail(ctx, GDN_STATUS_INVALID_ARGUMENT,
                         "gated_delta: q, k, v, g and beta are required (args.%s is NULL)",
                         !args->q ? "q" : !args->k ? "k" : !args->v ? "v" : !args->g ? "g"
                                                                                    : "beta");
    if (args->q->ctx != ctx)
        return gdn__fail(ctx, GDN_STATUS_INVALID_ARGUMENT, "q belongs to another context");
    nd = args->q->ndim;
    if (nd != 3 && nd != 4)
        return gdn__fail(ctx, GDN_STATUS_SHAPE_MISMATCH,
                         "q: expected [T, H, K] or [B, T, H, K], got %d dimensions", (int)nd);
    if (nd == 4 && args->seq_offsets)
        return gdn__fail(ctx, GDN_STATUS_INVALID_ARGUMENT,
                         "gated_delta: seq_offsets goes with 3-D (packed) tensors");
    if (!args->seq_offsets && args->n_seqs != 0)
        return gdn__fail(ctx, GDN_STATUS_INVALID_ARGUMENT,
                         "gated_delta: n_seqs is set but seq_offsets is NULL");

    tp = gdn__calloc(1, sizeof(*tp));
    if (!tp)
        return gdn__fail(ctx, GDN_STATUS_OUT_OF_HOST_MEMORY, "gated_delta: out of memory");
    tp->ctx = ctx;
    gdn__context_ref(ctx);
    s = &tp->s;
    B = nd == 4 ? args->q->shape[0] : 1;
    Tb = args->q->shape[nd - 3];
    s->T = B * Tb;
    s->H = (int32_t)args->q->shape[nd - 2];
    s->K = (int32_t)args->q->shape[nd - 1];
    if (args->v->ndim != nd) {
        st = gdn__fail(ctx, GDN_STATUS_SHAPE_MISMATCH, "v: expected %d dimensions like q, got %d",
                       (int)nd, (int)args->v->ndim);
        goto fail;
    }
    s->HV = (int32_t)args->v->shape[nd - 2];
    s->V  = (int32_t)args->v->shape[nd - 1];
    if (args->q->shape[nd - 2] > 4096 || args->v->shape[nd - 2] > 4096 || s->H < 1 ||
        s->HV < 1 || s->HV % s->H != 0) {
        st = gdn__fail(ctx, GDN_STATUS_SHAPE_MISMATCH,
                       "gated_delta: value heads (%lld) must be a multiple of q/k heads (%lld), "
                       "both in [1, 4096]",
                       (long long)args->v->shape[nd - 2], (long long)args->q->shape[nd - 2]);
        goto fail;
    }
    if (!head_dim_ok(args->q->shape[nd - 1]) || !head_dim_ok(args->v->shape[nd - 1])) {
        st = gdn__fail(ctx, GDN_STATUS_UNSUPPORTED,
                       "gated_delta: head dims K = %lld, V = %lld are not supported (each must be "
                       "a multiple of 16 from 16 to 256)",
                       (long long)args->q->shape[nd - 1], (long long)args->v->shape[nd - 1]);
        goto fail;
    }
    if (s->T > INT32_MAX / 2 || s->T * (int64_t)s->HV * (s->K > s->V ? s->K : s->V) > INT32_MAX) {
        st = gdn__fail(ctx, GDN_STATUS_UNSUPPORTED,
                       "gated_delta: T * HV * max(K, V) = %lld exceeds 2^31 - 1 elements",
                       (long long)(s->T * (int64_t)s->HV * (s->K > s->V ? s->K : s->V)));
        goto fail;
    }
    s->scale = params->scale > 0.0f ? params->scale : 1.0f / sqrtf((float)s->K);
    s->eps   = params->l2norm_eps > 0.0f ? params->l2norm_eps : 1e-6f;
    s->flags = params->flags;

    /* Tensor shapes: [B,] T, then the per-token dims. */
    {
        int64_t want[4];
        int32_t np = 0;
        if (nd == 4)
            want[np++] = B;
        want[np++] = Tb;
#define WANT(t, name, d1, d2)                                                                      \
    do {                                                                                           \
        want[np] = (d1), want[np + 1] = (d2);                                                      \
        CHECK(gdn__check_tensor(ctx, (t), name, GDN_DTYPE_F32, np + ((d2) > 0 ? 2 : 1), want));    \
    } while (0)
        WANT(args->q, "q", s->H, s->K);
        WANT(args->k, "k", s->H, s->K);
        WANT(args->v, "v", s->HV, s->V);
        if (o)
            WANT(o, "o", s->HV, s->V);
        WANT(args->g, "g", s->HV, 0);
        WANT(args->beta, "beta", s->HV, 0);
#undef WANT
    }
    if (s->flags & GDN_GATED_DELTA_GATE_IN_OP) {
        int64_t hv = s->HV;
        if (!args->A_log || !args->dt_bias) {
            st = gdn__fail(ctx, GDN_STATUS_INVALID_ARGUMENT,
                           "gated_delta: GATE_IN_OP needs A_log and dt_bias");
            goto fail;
        }
        CHECK(gdn__check_tensor(ctx, args->A_log, "A_log", GDN_DTYPE_F32, 1, &hv));
        CHECK(gdn__check_tensor(ctx, args->dt_bias, "dt_bias", GDN_DTYPE_F32, 1, &hv));
    } else if (args->A_log || args->dt_bias) {
        st = gdn__fail(ctx, GDN_STATUS_INVALID_ARGUMENT,
                       "gated_delta: A_log and dt_bias are only used with GATE_IN_OP");
        goto fail;
    }

    /* Sequences. */
    CHECK(gdn__seq_offsets(ctx, "gated_delta", args->seq_offsets, args->n_seqs, B, Tb,
                           &tp->idx.offsets, &s->N));
    {
        int64_t st_shape[4] = {s->N, s->HV, s->K, s->V};
        if (args->h0)
            CHECK(gdn__check_tensor(ctx, args->h0, "h0", GDN_DTYPE_F32, 4, st_shape));
        if (ht)
            CHECK(gdn__check_tensor(ctx, ht, "ht", GDN_DTYPE_F32, 4, st_shape));
    }
    if (o && (o == args->q || o == args->k || o == args->v || o == args->g || o == args->beta)) {
        st = gdn__fail(ctx, GDN_STATUS_INVALID_ARGUMENT, "gated_delta: o aliases an input");
        goto fail;
    }
    if (ht && ht == args->h0 && alloc_saved) {
        st = gdn__fail(ctx, GDN_STATUS_INVALID_ARGUMENT,
                       "gated_delta: ht must not alias h0 in the chunked forward");
        goto fail;
    }

    tp->q = args->q, tp->k = args->k, tp->v = args->v, tp->g = args->g, tp->beta = args->beta;
    tp->A_log = args->A_log, tp->dt_bias = args->dt_bias, tp->h0 = args->h0;
    CHECK(build_index(ctx, tp, alloc_saved));

    if (alloc_saved) {
        size_t thv = (size_t)s->T * (size_t)s->HV, th = (size_t)s->T * (size_t)s->H;
        CHECK(gdn__scratch_acquire(ctx, thv * sizeof(float), &tp->G));
        CHECK(gdn__scratch_acquire(ctx, thv * sizeof(float), &tp->b));
        if (s->flags & GDN_GATED_DELTA_GATE_IN_OP)
            CHECK(gdn__scratch_acquire(ctx, thv * sizeof(float), &tp->gate));
        if (!gdn__mul_size(thv, GDN_GD_CHUNK * sizeof(float), &bytes)) {
            st = gdn__fail(ctx, GDN_STATUS_OUT_OF_DEVICE_MEMORY, "gated_delta: size overflow");
            goto fail;
        }
        CHECK(gdn__scratch_acquire(ctx, bytes, &tp->Ai));
        if (s->flags & GDN_GATED_DELTA_QK_L2NORM) {
            CHECK(gdn__scratch_acquire(ctx, th * (size_t)s->K * sizeof(float), &tp->qn));
            CHECK(gdn__scratch_acquire(ctx, th * (size_t)s->K * sizeof(float), &tp->kn));
            CHECK(gdn__scratch_acquire(ctx, th * sizeof(float), &tp->rstd_q));
            CHECK(gdn__scratch_acquire(ctx, th * sizeof(float), &tp->rstd_k));
        }
    }
    *out = tp;
    return GDN_STATUS_OK;
fail:
    tape_free(tp);
    return st;
}

gdn_status gdn_gated_delta_forward(gdn_context *ctx, const gdn_gated_delta_params *params,
                                   const gdn_gated_delta_args *args, gdn_tensor *o, gdn_tensor *ht,
                                   gdn_gated_delta_tape **tape)
{
    struct gdn_gated_delta_tape *tp;
    gdn_status                   st;

    if (tape)
        *tape = NULL;
    if (!ctx)
        return GDN_STATUS_INVALID_ARGUMENT;
    if (!o)
        return gdn__fail(ctx, GDN_STATUS_INVALID_ARGUMENT, "gdn_gated_delta_forward: o is NULL");
    st = gdn__gd_tape_init(ctx, params, args, o, ht, true, &tp);
    if (st)
        return st;
    gdn__gd_tune_on_use(ctx, tp->s.K, tp->s.V); /* GDN_TUNE_MODE lazy / eager */
    st = gdn__gd_chunk_forward(tp, o, ht);
    if (st || !tape) {
        tape_free(tp);
        return st;
    }
    *tape = tp;
    return GDN_STATUS_OK;
}

gdn_status gdn_gated_delta_backward(gdn_context *ctx, const gdn_gated_delta_tape *tape,
                                    const gdn_tensor *do_, const gdn_tensor *dht,
                                    const gdn_gated_delta_grads *grads)
{
    const struct gdn_gd_shape *s;
    gdn_status                 st;
    int64_t                    shp[4];
    size_t                     i;

    if (!ctx)
        return GDN_STATUS_INVALID_ARGUMENT;
    if (!tape || !grads || !do_)
        return gdn__fail(ctx, GDN_STATUS_INVALID_ARGUMENT,
                         "gdn_gated_delta_backward: tape, do_ and grads are required");
    if (tape->ctx != ctx)
        return gdn__fail(ctx, GDN_STATUS_INVALID_ARGUMENT,
                         "gdn_gated_delta_backward: the tape belongs to another context");
    for (i = 0; i < GDN_ARRAY_SIZE(grads->reserved); i++)
        if (grads->reserved[i])
            return gdn__fail(ctx, GDN_STATUS_INVALID_ARGUMENT,
                             "gdn_gated_delta_backward: grads.reserved must be NULL");
    s = &tape->s;
    /* Gradients have their inputs' shapes; do_ has o's (= v's). */
    st = gdn__check_tensor(ctx, do_, "do", GDN_DTYPE_F32, tape->v->ndim, tape->v->shape);
    if (st)
        return st;
    shp[0] = s->N, shp[1] = s->HV, shp[2] = s->K, shp[3] = s->V;
    if (dht && (st = gdn__check_tensor(ctx, dht, "dht", GDN_DTYPE_F32, 4, shp)))
        return st;
#define GRAD(field, like, name)                                                                    \
    do {                                                                                           \
        if (grads->field && (st = gdn__check_tensor(ctx, grads->field, name, GDN_DTYPE_F32,        \
                                                    (like)->ndim, (like)->shape)))                 \
            return st;                                                                             \
    } while (0)
    GRAD(dq, tape->q, "dq");
    GRAD(dk, tape->k, "dk");
    GRAD(dv, tape->v, "dv");
    GRAD(dg, tape->g, "dg");
    GRAD(dbeta, tape->beta, "dbeta");
#undef GRAD
    if (grads->dA_log || grads->ddt_bias) {
        int64_t hv = s->HV;
        if (!(s->flags & GDN_GATED_DELTA_GATE_IN_OP))
            return gdn__fail(ctx, GDN_STATUS_INVALID_ARGUMENT,
                             "gdn_gated_delta_backward: dA_log/ddt_bias need GATE_IN_OP");
        if (grads->dA_log &&
            (st = gdn__check_tensor(ctx, grads->dA_log, "dA_log", GDN_DTYPE_F32, 1, &hv)))
            return st;
        if (grads->ddt_bias &&
            (st = gdn__check_tensor(ctx, grads->ddt_bias, "ddt_bias", GDN_DTYPE_F32, 1, &hv)))
            return st;
    }
    if (grads->dh0 && (st = gdn__check_tensor(ctx, grads->dh0, "dh0", GDN_DTYPE_F32, 4, shp)))
        return st;
    gdn__gd_tune_on_use(ctx, s->K, s->V); /* GDN_TUNE_MODE lazy / eager */
    return gdn__gd_chunk_backward(tape, do_, dht, grads);
}

gdn_status gdn_gated_delta_recurrent(gdn_context *ctx, const gdn_gated_delta_params *params,
                                     const gdn_gated_delta_args *args, gdn_tensor *o,
                                     gdn_tensor *ht)
{
    struct gdn_gated_delta_tape *tp;
    gdn_status                   st;

    if (!ctx)
        return GDN_STATUS_INVALID_ARGUMENT;
    if (!o)
        return gdn__fail(ctx, GDN_STATUS_INVALID_ARGUMENT, "gdn_gated_delta_recurrent: o is NULL");
    st = gdn__gd_tape_init(ctx, params, args, o, ht, false, &tp);
    if (st)
        return st;
    st = gdn__gd_recurrent_forward(tp, args->h0 ? args->h0->mem : NULL, o->mem,
                                   ht ? ht->mem : NULL);
    tape_free(tp);
    return st;
}

gdn_status gdn_gated_delta_step(gdn_context *ctx, const gdn_gated_delta_params *params,
                                const gdn_gated_delta_args *args, gdn_tensor *state,
                                gdn_tensor *o)
{
    struct gdn_gated_delta_tape *tp;
    gdn_status                   st;

    if (!ctx)
        return GDN_STATUS_INVALID_ARGUMENT;
    if (!args || !o || !state)
        return gdn__fail(ctx, GDN_STATUS_INVALID_ARGUMENT,
                         "gdn_gated_delta_step: args, state and o are required");
    if (args->h0 || args->seq_offsets)
        return gdn__fail(ctx, GDN_STATUS_INVALID_ARGUMENT,
                         "gdn_gated_delta_step: args.h0 and seq_offsets must be NULL (the state "
                         "tensor is updated in place)");
    if (!args->q || args->q->ndim != 3)
        return gdn__fail(ctx, GDN_STATUS_SHAPE_MISMATCH,
                         "gdn_gated_delta_step: q must be [N, H, K] (one token per sequence)");
    {
        /* One token per sequence: treat as N sequences of length 1. */
        gdn_gated_delta_args a = *args;
        int32_t              n = (int32_t)args->q->shape[0], i;
        int32_t             *off;
        if (n < 1 || n > (1 << 24))
            return gdn__fail(ctx, GDN_STATUS_INVALID_ARGUMENT,
                             "gdn_gated_delta_step: N = %d not in [1, 2^24]", (int)n);
        off = gdn__malloc(((size_t)n + 1) * sizeof(int32_t));
        if (!off)
            return gdn__fail(ctx, GDN_STATUS_OUT_OF_HOST_MEMORY, "gdn_gated_delta_step: OOM");
        for (i = 0; i <= n; i++)
            off[i] = i;
        a.seq_offsets = off;
        a.n_seqs      = n;
        st            = gdn__gd_tape_init(ctx, params, &a, o, state, false, &tp);
        gdn__free(off);
        if (st)
            return st;
    }
    st = gdn__gd_recurrent_forward(tp, state->mem, o->mem, state->mem);
    tape_free(tp);
    return st;
}
