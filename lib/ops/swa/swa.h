/*
 * swa.h - internal interface of sliding-window attention (SWA).
 *
 * Module layout (host side of cl/swa/):
 *   api.c     public entry points: argument checks, index tables, tapes,
 *             forward / backward / prefill / step orchestration
 *   attn.c    flash-attention stages (fwd.cl, bwd_prep.cl, bwd_dq.cl,
 *             bwd_dkdv.cl) and their plans
 *   rope.c    rotary embedding (rope.cl) and its plan; the frequency table
 *   decode.c  ring-buffer KV cache: fill, attend, combine (decode.cl)
 * Math: ALGORITHM.md §4.3 and the SWA section of gdn.h.
 *
 * Conventions shared by every stage:
 *   - All float data is F32, token-major [T, heads, D]; offsets into big
 *     buffers are 64-bit in the kernels.
 *   - Sequences never share a tile: the tile tables list (seq, first token,
 *     length, first row inside the sequence) per tile of a sequence.
 *   - Scores live in the exp2 domain (scale / ln 2 folded in); masks are
 *     applied with select() before exp2.
 *   - The window the attention kernels see is min(W, longest sequence), so
 *     index arithmetic such as j + W never overflows.
 */
#ifndef GDN_OPS_SWA_H
#define GDN_OPS_SWA_H

#include "runtime.h"

/* Problem shape of one call. */
struct gdn_swa_shape {
    int64_t  T;       /* total tokens over all sequences */
    int32_t  N;       /* sequences */
    int32_t  Hq, Hkv; /* query heads, key/value heads (Hq % Hkv == 0) */
    int32_t  D;       /* head dim (multiple of 16, <= 256) */
    int32_t  window;  /* W as asked (>= 1, after the default) */
    int32_t  W;       /* min(window, max(max_len, 1)): what the kernels use */
    int32_t  max_len; /* longest sequence */
    float    scale;   /* softmax scale */
    float    base;    /* RoPE base */
    uint32_t flags;   /* GDN_SWA_* */
};

/* Sequence tables of one call. */
struct gdn_swa_index {
    int32_t *offsets; /* host, N + 1 token offsets */
    int32_t *pos_off; /* host, N position offsets, or NULL (all 0) */
    cl_mem   seq_off; /* device copy of offsets */
    cl_mem   pos_mem; /* device copy of pos_off, or NULL */
};

/* What forward keeps for backward (also the state of a forward call). */
struct gdn_swa_tape {
    gdn_context         *ctx;
    struct gdn_swa_shape s;
    struct gdn_swa_index idx;
    const gdn_tensor    *q, *k, *v, *o; /* borrowed */
    cl_mem               qr, kr;        /* owned: rotated q, k (ROPE only) */
    cl_mem               lse;           /* owned: [T, Hq] */
};

/* The q and k the attention kernels read. */
static inline cl_mem gdn__swa_qmem(const struct gdn_swa_tape *tp)
{
    return tp->qr ? tp->qr : tp->q->mem;
}
static inline cl_mem gdn__swa_kmem(const struct gdn_swa_tape *tp)
{
    return tp->kr ? tp->kr : tp->k->mem;
}

/* ---- rope.c ---- */
/* y1 = R x1 (H1 heads) and y2 = R x2 (H2 heads, 0: none) over the T tokens
 * of the sequences in idx (sign +1), or R^T (sign -1). In place allowed. */
gdn_status gdn__swa_rope_enqueue(gdn_context *ctx, const struct gdn_swa_index *idx, int32_t N,
                                 int64_t T, int32_t D, float base, float sign, cl_mem x1,
                                 cl_mem y1, int32_t H1, cl_mem x2, cl_mem y2, int32_t H2);
/* The (hi, lo) float pairs of base^(-2i/D), i < D/2, as a new buffer. */
gdn_status gdn__swa_freq_table(gdn_context *ctx, int32_t D, float base, cl_mem *out);

/* ---- attn.c ---- */
/* o [T, Hq, D] and lse [T, Hq] from q, k (rotated already), v. */
gdn_status gdn__swa_attn_forward(gdn_context *ctx, const struct gdn_swa_shape *s,
                                 const struct gdn_swa_index *idx, cl_mem q, cl_mem k, cl_mem v,
                                 cl_mem o, cl_mem lse);
/* dq (may be NULL), dk, dv (required) w.r.t. the rotated q, k. */
gdn_status gdn__swa_attn_backward(gdn_context *ctx, const struct gdn_swa_shape *s,
                                  const struct gdn_swa_index *idx, cl_mem q, cl_mem k, cl_mem v,
                                  cl_mem o, cl_mem lse, cl_mem dout, cl_mem dq, cl_mem dk,
                                  cl_mem dv);

/* ---- tuning (attn.c, decode.c) ---- */
struct gdn_tune_space;
/* Tuning spaces of the stages (lib/tune): attention tiles BQ, BKV, DS, DVC
 * and the llvmpipe window KWIN; work-group WG of bwd_prep and rope; WGD and
 * GB of the decode step. Rows are keyed by head dim ("D128"; decode:
 * "D128.G4", G = Hq / Hkv). */
extern const struct gdn_tune_space gdn__swa_fwd_space, gdn__swa_dq_space, gdn__swa_dkdv_space,
    gdn__swa_prep_space, gdn__swa_rope_space, gdn__swa_decode_space;
void gdn__swa_bucket(int32_t D, char *buf, size_t cap);
/* The tuned values of a stage for the problem s (bucket from s->D). */
void gdn__swa_stage_lookup(gdn_context *ctx, const struct gdn_tune_space *space,
                           const struct gdn_swa_shape *s, int32_t *vals);
/* Tune the SWA stages for head dim D (see tune.c); writes the user DB. */
gdn_status gdn__swa_tune(gdn_context *ctx, int32_t D, double budget_s, char *report,
                         size_t report_cap);

/* ---- decode.c ---- */
/* Cache <- last min(L_n, W) tokens of every sequence; len, pos reset. k is
 * the rotated key. */
gdn_status gdn__swa_cache_fill(gdn_context *ctx, const struct gdn_swa_shape *s,
                               const struct gdn_swa_index *idx, cl_mem k, cl_mem v,
                               const gdn_swa_cache *cache, int32_t W);
/* One decode step for N sequences (see decode.cl). */
gdn_status gdn__swa_decode_step(gdn_context *ctx, const struct gdn_swa_shape *s, cl_mem q,
                                cl_mem k, cl_mem v, const gdn_swa_cache *cache, int32_t W,
                                cl_mem o);

#endif /* GDN_OPS_SWA_H */
