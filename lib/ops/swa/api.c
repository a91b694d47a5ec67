/*
 * api.c - public entry points of sliding-window attention: argument checks
 * that name the offending argument, sequence tables, tapes, and the order
 * of the stages of forward, backward, prefill and step. The numerical work
 * is in attn.c, rope.c and decode.c.
 */
#include <math.h>
#include <string.h>

#include "swa.h"

/* Positions (offset + index in the sequence) stay below 2^24 so they are
 * exact in fp32 (gdn_swa_rope.clh). */
#define SWA_MAX_POS (1 << 24)

void gdn_swa_params_init(gdn_swa_params *params)
{
    if (!params)
        return;
    memset(params, 0, sizeof(*params));
    params->window    = GDN_SWA_DEFAULT_WINDOW;
    params->rope_base = 10000.0f;
}

static void index_free(struct gdn_swa_index *idx)
{
    gdn__buffer_release(idx->seq_off);
    gdn__buffer_release(idx->pos_mem);
    gdn__free(idx->offsets);
    gdn__free(idx->pos_off);
    memset(idx, 0, sizeof(*idx));
}

static void tape_free(struct gdn_swa_tape *tp)
{
    if (!tp)
        return;
    index_free(&tp->idx);
    gdn__buffer_release(tp->qr);
    gdn__buffer_release(tp->kr);
    gdn__buffer_release(tp->lse);
    gdn__context_unref(tp->ctx);
    gdn__free(tp);
}

void gdn_swa_tape_destroy(gdn_swa_tape *tape)
{
    tape_free(tape);
}

static bool head_dim_ok(int64_t d)
{
    return d >= 16 && d <= 256 && d % 16 == 0;
}

/* Sequences from seq_offsets (3-D) or the batch (4-D), position offsets;
 * host copies and device uploads into idx, N and max_len into s. */
static gdn_status build_index(gdn_context *ctx, const char *fn, const int32_t *seq_offsets,
                              int32_t n_seqs, const int32_t *pos_offsets, int64_t B, int64_t Tb,
                              int64_t T, struct gdn_swa_shape *s, struct gdn_swa_index *idx)
{
    int32_t    i;
    gdn_status st0;

    if (!seq_offsets && n_seqs != 0)
        return gdn__fail(ctx, GDN_STATUS_INVALID_ARGUMENT,
                         "%s: n_seqs is set but seq_offsets is NULL", fn);
    (void)T; /* = B * Tb, checked by gdn__seq_offsets */
    if ((st0 = gdn__seq_offsets(ctx, fn, seq_offsets, n_seqs, B, Tb, &idx->offsets, &s->N)))
        return st0;
    s->max_len = 0;
    for (i = 0; i < s->N; i++)
        if (idx->offsets[i + 1] - idx->offsets[i] > s->max_len)
            s->max_len = idx->offsets[i + 1] - idx->offsets[i];
    if (pos_offsets) {
        idx->pos_off = gdn__malloc((size_t)s->N * sizeof(int32_t));
        if (!idx->pos_off)
            return gdn__fail(ctx, GDN_STATUS_OUT_OF_HOST_MEMORY, "%s: out of memory", fn);
        memcpy(idx->pos_off, pos_offsets, (size_t)s->N * sizeof(int32_t));
        for (i = 0; i < s->N; i++) {
            int64_t len = idx->offsets[i + 1] - idx->offsets[i];
            if (idx->pos_off[i] < 0 || idx->pos_off[i] + len > SWA_MAX_POS)
                return gdn__fail(ctx, GDN_STATUS_INVALID_ARGUMENT,
                                 "%s: pos_offsets[%d] = %d: positions must stay in [0, 2^24]",
                                 fn, (int)i, (int)idx->pos_off[i]);
        }
    } else if (s->max_len > SWA_MAX_POS && (s->flags & GDN_SWA_ROPE)) {
        return gdn__fail(ctx, GDN_STATUS_UNSUPPORTED,
                         "%s: sequences longer than 2^24 tokens are not supported with RoPE", fn);
    }
    s->W = s->window < (s->max_len > 0 ? s->max_len : 1) ? s->window
                                                           : (s->max_len > 0 ? s->max_len : 1);
    gdn_status st = gdn__int_table(ctx, idx->offsets, (size_t)s->N + 1, &idx->seq_off);
    if (!st && idx->pos_off)
        st = gdn__int_table(ctx, idx->pos_off, (size_t)s->N, &idx->pos_mem);
    return st;
}

static gdn_status check_params(gdn_context *ctx, const char *fn, const gdn_swa_params *params,
                               struct gdn_swa_shape *s)
{
    size_t i;
    for (i = 0; i < GDN_ARRAY_SIZE(params->reserved); i++)
        if (params->reserved[i])
            return gdn__fail(ctx, GDN_STATUS_INVALID_ARGUMENT,
                             "%s: params.reserved must be zero (use gdn_swa_params_init)", fn);
    if (params->flags & ~(uint32_t)GDN_SWA_ROPE)
        return gdn__fail(ctx, GDN_STATUS_INVALID_ARGUMENT, "%s: unknown flags 0x%x", fn,
                         (unsigned)params->flags);
    if (params->window < 0)
        return gdn__fail(ctx, GDN_STATUS_INVALID_ARGUMENT,
                         "%s: params.window = %d must be >= 1 (or 0 for the default)", fn,
                         (int)params->window);
    if (!(params->scale >= 0.0f) || !isfinite(params->scale))
        return gdn__fail(ctx, GDN_STATUS_INVALID_ARGUMENT,
                         "%s: params.scale must be finite and >= 0 (0: D^-1/2)", fn);
    if (!(params->rope_base >= 0.0f) || !isfinite(params->rope_base) ||
        (params->rope_base > 0.0f && params->rope_base <= 1.0f))
        return gdn__fail(ctx, GDN_STATUS_INVALID_ARGUMENT,
                         "%s: params.rope_base must be finite and > 1 (0: 10000)", fn);
    s->window = params->window > 0 ? params->window : GDN_SWA_DEFAULT_WINDOW;
    s->base   = params->rope_base > 0.0f ? params->rope_base : 10000.0f;
    s->flags  = params->flags;
    return GDN_STATUS_OK;
}

/* Validate params, args and the optional outputs o, lse (NULL allowed);
 * fill a new tape's shape, index and borrowed inputs. */
static gdn_status tape_init(gdn_context *ctx, const char *fn, const gdn_swa_params *params,
                            const gdn_swa_args *args, const gdn_tensor *o, const gdn_tensor *lse,
                            struct gdn_swa_tape **out)
{
    struct gdn_swa_tape *tp;
    struct gdn_swa_shape *s;
    gdn_swa_params       defaults;
    int64_t              B, Tb, want[4];
    int32_t              nd, np = 0;
    size_t               i;
    gdn_status           st;

    *out = NULL;
    if (!params) {
        gdn_swa_params_init(&defaults);
        params = &defaults;
    }
    if (!args)
        return gdn__fail(ctx, GDN_STATUS_INVALID_ARGUMENT, "%s: args is NULL", fn);
    for (i = 0; i < GDN_ARRAY_SIZE(args->reserved); i++)
        if (args->reserved[i])
            return gdn__fail(ctx, GDN_STATUS_INVALID_ARGUMENT, "%s: args.reserved must be zero",
                             fn);
    if (!args->q || !args->k || !args->v)
        return gdn__fail(ctx, GDN_STATUS_INVALID_ARGUMENT,
                         "%s: q, k and v are required (args.%s is NULL)", fn,
                         !args->q ? "q" : !args->k ? "k" : "v");
    if (args->q->ctx != ctx)
        return gdn__fail(ctx, GDN_STATUS_INVALID_ARGUMENT, "%s: q belongs to another context",
                         fn);
    nd = args->q->ndim;
    if (nd != 3 && nd != 4)
        return gdn__fail(ctx, GDN_STATUS_SHAPE_MISMATCH,
                         "%s: q: expected [T, Hq, D] or [B, T, Hq, D], got %d dimensions", fn,
                         (int)nd);
    if (nd == 4 && args->seq_offsets)
        return gdn__fail(ctx, GDN_STATUS_INVALID_ARGUMENT,
                         "%s: seq_offsets goes with 3-D (packed) tensors", fn);
    if (args->k->ndim != nd)
        return gdn__fail(ctx, GDN_STATUS_SHAPE_MISMATCH,
                         "%s: k: expected %d dimensions like q, got %d", fn, (int)nd,
                         (int)args->k->ndim);

    tp = gdn__calloc(1, sizeof(*tp));
    if (!tp)
        return gdn__fail(ctx, GDN_STATUS_OUT_OF_HOST_MEMORY, "%s: out of memory", fn);
    tp->ctx = ctx;
    gdn__context_ref(ctx);
    s = &tp->s;
    if ((st = check_params(ctx, fn, params, s)))
        goto fail;
    B      = nd == 4 ? args->q->shape[0] : 1;
    Tb     = args->q->shape[nd - 3];
    s->T   = B * Tb;
    if (args->q->shape[nd - 2] < 1 || args->q->shape[nd - 2] > 4096 ||
        args->k->shape[nd - 2] < 1 || args->q->shape[nd - 2] % args->k->shape[nd - 2] != 0) {
        st = gdn__fail(ctx, GDN_STATUS_SHAPE_MISMATCH,
                       "%s: query heads (%lld) must be a multiple of key/value heads (%lld), "
                       "both in [1, 4096]",
                       fn, (long long)args->q->shape[nd - 2], (long long)args->k->shape[nd - 2]);
        goto fail;
    }
    s->Hq  = (int32_t)args->q->shape[nd - 2];
    s->Hkv = (int32_t)args->k->shape[nd - 2];
    if (!head_dim_ok(args->q->shape[nd - 1])) {
        st = gdn__fail(ctx, GDN_STATUS_UNSUPPORTED,
                       "%s: head dim D = %lld is not supported (a multiple of 16 from 16 to 256)",
                       fn, (long long)args->q->shape[nd - 1]);
        goto fail;
    }
    s->D = (int32_t)args->q->shape[nd - 1];
    if (s->T >= (1 << 30) || s->T * (int64_t)s->Hq > INT32_MAX) {
        st = gdn__fail(ctx, GDN_STATUS_UNSUPPORTED,
                       "%s: T = %lld tokens x %d query heads exceeds 2^31 - 1 rows", fn,
                       (long long)s->T, (int)s->Hq);
        goto fail;
    }
    s->scale = params->scale > 0.0f ? params->scale : 1.0f / sqrtf((float)s->D);

    if (nd == 4)
        want[np++] = B;
    want[np++] = Tb;
#define WANT(t, name, h, d)                                                                        \
    do {                                                                                           \
        want[np] = (h), want[np + 1] = (d);                                                        \
        if ((st = gdn__check_tensor(ctx, (t), name, GDN_DTYPE_F32, np + ((d) > 0 ? 2 : 1),        \
                                    want)))                                                        \
            goto fail;                                                                             \
    } while (0)
    WANT(args->q, "q", s->Hq, s->D);
    WANT(args->k, "k", s->Hkv, s->D);
    WANT(args->v, "v", s->Hkv, s->D);
    if (o)
        WANT(o, "o", s->Hq, s->D);
    if (lse)
        WANT(lse, "lse", s->Hq, 0);
#undef WANT
    if (o && (o == args->q || o == args->k || o == args->v)) {
        st = gdn__fail(ctx, GDN_STATUS_INVALID_ARGUMENT, "%s: o aliases an input", fn);
        goto fail;
    }
    if (lse && (lse == args->q || lse == args->k || lse == args->v || lse == o)) {
        st = gdn__fail(ctx, GDN_STATUS_INVALID_ARGUMENT, "%s: lse aliases another tensor", fn);
        goto fail;
    }
    if ((st = build_index(ctx, fn, args->seq_offsets, args->n_seqs, args->pos_offsets, B, Tb,
                          s->T, s, &tp->idx)))
        goto fail;
    tp->q = args->q, tp->k = args->k, tp->v = args->v;
    *out = tp;
    return GDN_STATUS_OK;
fail:
    tape_free(tp);
    return st;
}

/* Rotated copies of q and k into the tape (ROPE only). With q_too = false
 * only k is rotated. */
static gdn_status rotate_qk(struct gdn_swa_tape *tp, bool q_too)
{
    const struct gdn_swa_shape *s  = &tp->s;
    gdn_context                *ctx = tp->ctx;
    size_t                      tq = (size_t)s->T * (size_t)s->Hq * (size_t)s->D * sizeof(float);
    size_t                      tk = (size_t)s->T * (size_t)s->Hkv * (size_t)s->D * sizeof(float);
    gdn_status                  st;

    if (!(s->flags & GDN_SWA_ROPE) || s->T == 0)
        return GDN_STATUS_OK;
    if (q_too && (st = gdn__buffer_create(ctx, tq, &tp->qr)))
        return st;
    if ((st = gdn__buffer_create(ctx, tk, &tp->kr)))
        return st;
    return gdn__swa_rope_enqueue(ctx, &tp->idx, s->N, s->T, s->D, s->base, 1.0f, tp->k->mem,
                                 tp->kr, s->Hkv, q_too ? tp->q->mem : NULL, tp->qr,
                                 q_too ? s->Hq : 0);
}

/* Rotation + attention forward into o, the tape's lse (and a copy in lse). */
static gdn_status run_forward(struct gdn_swa_tape *tp, gdn_tensor *o, gdn_tensor *lse)
{
    const struct gdn_swa_shape *s = &tp->s;
    gdn_status                  st;
    size_t lbytes = (size_t)s->T * (size_t)s->Hq * sizeof(float);

    if ((st = rotate_qk(tp, true)))
        return st;
    if ((st = gdn__buffer_create(tp->ctx, lbytes, &tp->lse)))
        return st;
    tp->o = o;
    if (s->T == 0)
        return GDN_STATUS_OK;
    if ((st = gdn__swa_attn_forward(tp->ctx, s, &tp->idx, gdn__swa_qmem(tp), gdn__swa_kmem(tp),
                                    tp->v->mem, o->mem, tp->lse)))
        return st;
    if (lse) {
        cl_int err = clEnqueueCopyBuffer(tp->ctx->queue, tp->lse, lse->mem, 0, 0, lbytes, 0,
                                         NULL, NULL);
        if (err != CL_SUCCESS)
            return gdn__fail_cl(tp->ctx, err, "swa: copying lse");
    }
    return GDN_STATUS_OK;
}

gdn_status gdn_swa_forward(gdn_context *ctx, const gdn_swa_params *params,
                           const gdn_swa_args *args, gdn_tensor *o, gdn_tensor *lse,
                           gdn_swa_tape **tape)
{
    struct gdn_swa_tape *tp;
    gdn_status           st;

    if (tape)
        *tape = NULL;
    if (!ctx)
        return GDN_STATUS_INVALID_ARGUMENT;
    if (!o)
        return gdn__fail(ctx, GDN_STATUS_INVALID_ARGUMENT, "gdn_swa_forward: o is NULL");
    if ((st = tape_init(ctx, "gdn_swa_forward", params, args, o, lse, &tp)))
        return st;
    st = run_forward(tp, o, lse);
    if (st || !tape) {
        tape_free(tp);
        return st;
    }
    *tape = tp;
    return GDN_STATUS_OK;
}

gdn_status gdn_swa_backward(gdn_context *ctx, const gdn_swa_tape *tape, const gdn_tensor *do_,
                            const gdn_swa_grads *grads)
{
    const struct gdn_swa_shape *s;
    const gdn_tensor           *ins[5];
    gdn_tensor                 *outs[3];
    cl_mem                      dk_tmp = NULL, dv_tmp = NULL;
    gdn_status                  st;
    size_t                      i, j, tk;

    if (!ctx)
        return GDN_STATUS_INVALID_ARGUMENT;
    if (!tape || !grads || !do_)
        return gdn__fail(ctx, GDN_STATUS_INVALID_ARGUMENT,
                         "gdn_swa_backward: tape, do_ and grads are required");
    if (tape->ctx != ctx)
        return gdn__fail(ctx, GDN_STATUS_INVALID_ARGUMENT,
                         "gdn_swa_backward: the tape belongs to another context");
    for (i = 0; i < GDN_ARRAY_SIZE(grads->reserved); i++)
        if (grads->reserved[i])
            return gdn__fail(ctx, GDN_STATUS_INVALID_ARGUMENT,
                             "gdn_swa_backward: grads.reserved must be NULL");
    s = &tape->s;
    if ((st = gdn__check_tensor(ctx, do_, "do", GDN_DTYPE_F32, tape->q->ndim, tape->q->shape)))
        return st;
    if (grads->dq && (st = gdn__check_tensor(ctx, grads->dq, "dq", GDN_DTYPE_F32, tape->q->ndim,
                                             tape->q->shape)))
        return st;
    if (grads->dk && (st = gdn__check_tensor(ctx, grads->dk, "dk", GDN_DTYPE_F32, tape->k->ndim,
                                             tape->k->shape)))
        return st;
    if (grads->dv && (st = gdn__check_tensor(ctx, grads->dv, "dv", GDN_DTYPE_F32, tape->v->ndim,
                                             tape->v->shape)))
        return st;
    ins[0] = tape->q, ins[1] = tape->k, ins[2] = tape->v, ins[3] = tape->o, ins[4] = do_;
    outs[0] = grads->dq, outs[1] = grads->dk, outs[2] = grads->dv;
    for (i = 0; i < 3; i++) {
        if (!outs[i])
            continue;
        for (j = 0; j < 5; j++)
            if ((const gdn_tensor *)outs[i] == ins[j])
                return gdn__fail(ctx, GDN_STATUS_INVALID_ARGUMENT,
                                 "gdn_swa_backward: a gradient aliases an input");
        for (j = i + 1; j < 3; j++)
            if (outs[j] == outs[i])
                return gdn__fail(ctx, GDN_STATUS_INVALID_ARGUMENT,
                                 "gdn_swa_backward: two gradients are the same tensor");
    }
    if (s->T == 0 || (!grads->dq && !grads->dk && !grads->dv))
        return GDN_STATUS_OK;

    tk = (size_t)s->T * (size_t)s->Hkv * (size_t)s->D * sizeof(float);
    if ((grads->dk || grads->dv) && !grads->dk && (st = gdn__buffer_create(ctx, tk, &dk_tmp)))
        goto done;
    if ((grads->dk || grads->dv) && !grads->dv && (st = gdn__buffer_create(ctx, tk, &dv_tmp)))
        goto done;
    st = gdn__swa_attn_backward(ctx, s, &tape->idx, gdn__swa_qmem(tape), gdn__swa_kmem(tape),
                                tape->v->mem, tape->o->mem, tape->lse, do_->mem,
                                grads->dq ? grads->dq->mem : NULL,
                                grads->dk ? grads->dk->mem : dk_tmp,
                                grads->dv ? grads->dv->mem : dv_tmp);
    if (st)
        goto done;
    /* gradients w.r.t. the unrotated q and k: dx = R^T dx_rot, in place */
    if ((s->flags & GDN_SWA_ROPE) && (grads->dq || grads->dk))
        st = gdn__swa_rope_enqueue(ctx, &tape->idx, s->N, s->T, s->D, s->base, -1.0f,
                                   grads->dq ? grads->dq->mem : NULL,
                                   grads->dq ? grads->dq->mem : NULL, grads->dq ? s->Hq : 0,
                                   grads->dk ? grads->dk->mem : NULL,
                                   grads->dk ? grads->dk->mem : NULL, grads->dk ? s->Hkv : 0);
done:
    gdn__buffer_release(dk_tmp);
    gdn__buffer_release(dv_tmp);
    return st;
}

gdn_status gdn_swa_rope(gdn_context *ctx, const gdn_tensor *x, gdn_tensor *y,
                        const int32_t *seq_offsets, int32_t n_seqs, const int32_t *pos_offsets,
                        float base, int32_t inverse)
{
    static const char   *fn = "gdn_swa_rope";
    struct gdn_swa_shape s;
    struct gdn_swa_index idx;
    int64_t              B, Tb, H, D;
    int32_t              nd;
    gdn_status           st;

    if (!ctx)
        return GDN_STATUS_INVALID_ARGUMENT;
    if (!x || !y)
        return gdn__fail(ctx, GDN_STATUS_INVALID_ARGUMENT, "%s: x and y are required", fn);
    if (x->ctx != ctx)
        return gdn__fail(ctx, GDN_STATUS_INVALID_ARGUMENT, "%s: x belongs to another context",
                         fn);
    nd = x->ndim;
    if (nd != 3 && nd != 4)
        return gdn__fail(ctx, GDN_STATUS_SHAPE_MISMATCH,
                         "%s: x: expected [T, H, D] or [B, T, H, D], got %d dimensions", fn,
                         (int)nd);
    if (nd == 4 && seq_offsets)
        return gdn__fail(ctx, GDN_STATUS_INVALID_ARGUMENT,
                         "%s: seq_offsets goes with 3-D (packed) tensors", fn);
    if ((st = gdn__check_tensor(ctx, x, "x", GDN_DTYPE_F32, nd, x->shape)) ||
        (st = gdn__check_tensor(ctx, y, "y", GDN_DTYPE_F32, nd, x->shape)))
        return st;
    if (inverse != 0 && inverse != 1)
        return gdn__fail(ctx, GDN_STATUS_INVALID_ARGUMENT, "%s: inverse must be 0 or 1", fn);
    if (!(base >= 0.0f) || !isfinite(base) || (base > 0.0f && base <= 1.0f))
        return gdn__fail(ctx, GDN_STATUS_INVALID_ARGUMENT,
                         "%s: base must be finite and > 1 (0: 10000)", fn);
    B  = nd == 4 ? x->shape[0] : 1;
    Tb = x->shape[nd - 3];
    H  = x->shape[nd - 2];
    D  = x->shape[nd - 1];
    if (D < 2 || D > 1024 || D % 2 != 0 || H < 1 || H > 65536)
        return gdn__fail(ctx, GDN_STATUS_UNSUPPORTED,
                         "%s: D = %lld must be even in [2, 1024] and H = %lld in [1, 65536]", fn,
                         (long long)D, (long long)H);
    memset(&s, 0, sizeof(s));
    memset(&idx, 0, sizeof(idx));
    s.T      = B * Tb;
    s.window = 1;
    s.flags  = GDN_SWA_ROPE;
    if (s.T >= (1 << 30))
        return gdn__fail(ctx, GDN_STATUS_UNSUPPORTED, "%s: too many tokens", fn);
    st = build_index(ctx, fn, seq_offsets, n_seqs, pos_offsets, B, Tb, s.T, &s, &idx);
    if (!st && s.T > 0)
        st = gdn__swa_rope_enqueue(ctx, &idx, s.N, s.T, (int32_t)D, base > 0.0f ? base : 10000.0f,
                                   inverse ? -1.0f : 1.0f, x->mem, y->mem, (int32_t)H, NULL,
                                   NULL, 0);
    index_free(&idx);
    return st;
}

/* Cache tensors: k, v [N, Hkv, W, D] F32, len, pos [N] I32, W = window. */
static gdn_status check_cache(gdn_context *ctx, const char *fn, const gdn_swa_cache *cache,
                              const struct gdn_swa_shape *s)
{
    int64_t shp[4] = {s->N, s->Hkv, s->window, s->D}, n = s->N;
    size_t  i;
    gdn_status st;

    if (!cache || !cache->k || !cache->v || !cache->len || !cache->pos)
        return gdn__fail(ctx, GDN_STATUS_INVALID_ARGUMENT,
                         "%s: cache and its k, v, len and pos are required", fn);
    for (i = 0; i < GDN_ARRAY_SIZE(cache->reserved); i++)
        if (cache->reserved[i])
            return gdn__fail(ctx, GDN_STATUS_INVALID_ARGUMENT,
                             "%s: cache.reserved must be NULL", fn);
    if (cache->k->ndim == 4 && cache->k->shape[2] != s->window)
        return gdn__fail(ctx, GDN_STATUS_SHAPE_MISMATCH,
                         "%s: cache.k holds %lld entries per sequence but the window is %d", fn,
                         (long long)cache->k->shape[2], (int)s->window);
    if ((st = gdn__check_tensor(ctx, cache->k, "cache.k", GDN_DTYPE_F32, 4, shp)) ||
        (st = gdn__check_tensor(ctx, cache->v, "cache.v", GDN_DTYPE_F32, 4, shp)) ||
        (st = gdn__check_tensor(ctx, cache->len, "cache.len", GDN_DTYPE_I32, 1, &n)) ||
        (st = gdn__check_tensor(ctx, cache->pos, "cache.pos", GDN_DTYPE_I32, 1, &n)))
        return st;
    if (cache->k == cache->v || cache->len == cache->pos)
        return gdn__fail(ctx, GDN_STATUS_INVALID_ARGUMENT,
                         "%s: cache.k/v and cache.len/pos must be different tensors", fn);
    if ((int64_t)s->window * s->D > INT32_MAX)
        return gdn__fail(ctx, GDN_STATUS_UNSUPPORTED, "%s: window * D exceeds 2^31 - 1", fn);
    return GDN_STATUS_OK;
}

gdn_status gdn_swa_prefill(gdn_context *ctx, const gdn_swa_params *params,
                           const gdn_swa_args *args, const gdn_swa_cache *cache, gdn_tensor *o,
                           gdn_tensor *lse)
{
    static const char   *fn = "gdn_swa_prefill";
    struct gdn_swa_tape *tp;
    gdn_status           st;

    if (!ctx)
        return GDN_STATUS_INVALID_ARGUMENT;
    if (lse && !o)
        return gdn__fail(ctx, GDN_STATUS_INVALID_ARGUMENT, "%s: lse needs o", fn);
    if ((st = tape_init(ctx, fn, params, args, o, lse, &tp)))
        return st;
    if ((st = check_cache(ctx, fn, cache, &tp->s)))
        goto done;
    if (o)
        st = run_forward(tp, o, lse);
    else
        st = rotate_qk(tp, false);
    if (!st)
        st = gdn__swa_cache_fill(ctx, &tp->s, &tp->idx, gdn__swa_kmem(tp), tp->v->mem, cache,
                                 tp->s.window);
done:
    tape_free(tp);
    return st;
}

gdn_status gdn_swa_step(gdn_context *ctx, const gdn_swa_params *params, const gdn_swa_args *args,
                        const gdn_swa_cache *cache, gdn_tensor *o)
{
    static const char   *fn = "gdn_swa_step";
    struct gdn_swa_tape *tp;
    gdn_swa_args         a;
    gdn_status           st;

    if (!ctx)
        return GDN_STATUS_INVALID_ARGUMENT;
    if (!args || !o)
        return gdn__fail(ctx, GDN_STATUS_INVALID_ARGUMENT, "%s: args and o are required", fn);
    if (args->seq_offsets || args->pos_offsets || args->n_seqs)
        return gdn__fail(ctx, GDN_STATUS_INVALID_ARGUMENT,
                         "%s: seq_offsets, n_seqs and pos_offsets must be unset (positions come "
                         "from cache.pos)", fn);
    if (!args->q || args->q->ndim != 3)
        return gdn__fail(ctx, GDN_STATUS_SHAPE_MISMATCH,
                         "%s: q must be [N, Hq, D] (one token per sequence)", fn);
    /* As a 4-D batch of N sequences of one token: [N, 1, H, D] is the same
     * memory as [N, H, D], so check the 3-D tensors as N sequences. */
    a = *args;
    if ((st = tape_init(ctx, fn, params, &a, o, NULL, &tp)))
        return st;
    /* tape_init saw one sequence of N tokens; the step has N sequences */
    tp->s.N = (int32_t)tp->s.T;
    if (tp->s.N < 1) {
        st = gdn__fail(ctx, GDN_STATUS_INVALID_ARGUMENT, "%s: N must be >= 1", fn);
        goto done;
    }
    if ((st = check_cache(ctx, fn, cache, &tp->s)))
        goto done;
    st = gdn__swa_decode_step(ctx, &tp->s, args->q->mem, args->k->mem, args->v->mem, cache,
                              tp->s.window, o->mem);
done:
    tape_free(tp);
    return st;
}
