/*
 * swa_public.h - public API of sliding-window attention, written exactly as
 * it is to appear in include/gdn.h (the lead moves it there; until then the
 * library and the tests include this file after gdn.h).
 */
#ifndef GDN_SWA_PUBLIC_H
#define GDN_SWA_PUBLIC_H

#include "gdn.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------ */
/* Sliding-window attention (SWA), op level                                 */
/* ------------------------------------------------------------------------ */
/*
 * Causal softmax attention in which token t of a sequence attends to the
 * tokens (t - W, t] of the same sequence (itself and the W - 1 before it;
 * flash-attn window_size = (W - 1, 0)). W >= the sequence length is plain
 * causal attention. Per sequence, query head h (reading key/value head
 * h / (Hq / Hkv), grouped-query attention) and query token i:
 *
 *     s_ij = scale * q_i . k_j           for i - W < j <= i
 *     o_i  = sum_j softmax_j(s_ij) v_j   lse_i = log sum_j exp(s_ij)
 *
 * With GDN_SWA_ROPE, q and k are first rotated (rotary position embedding,
 * rotate-half convention of fla / Llama / NVlabs): for d < D/2, the pair
 * (x_d, x_{d+D/2}) of a token at position p is rotated by the angle
 * p * base^(-2d/D):
 *     y_d       = x_d cos - x_{d+D/2} sin
 *     y_{d+D/2} = x_{d+D/2} cos + x_d sin
 * Positions count from each sequence's first token (0) plus an optional
 * per-sequence offset (pos_offsets; prefill continuation). The angle is
 * reduced in extended precision, so positions up to 2^24 keep fp32 accuracy.
 *
 * Tensors (all F32; packed layout, or batched with a leading B):
 *   q, o      [T, Hq, D]    or [B, T_b, Hq, D]
 *   k, v      [T, Hkv, D]   or [B, T_b, Hkv, D]
 *   lse       [T, Hq]       or [B, T_b, Hq]    natural-log log-sum-exp
 * Sequences: with 4-D tensors, N = B sequences of T_b tokens. With 3-D
 * tensors, seq_offsets (N + 1 entries, host memory, copied) packs N
 * variable-length sequences along T; NULL means one sequence of T tokens.
 * Head dim D: a multiple of 16 from 16 to 256 (64 and 128 are the fastest);
 * v has the same head dim as q and k. Hq must be a multiple of Hkv.
 *
 * Cost: O(T * min(W, T) * D) per head in time, O(T * Hq) extra memory (the
 * T x T matrix is never formed; key tiles wholly outside the window are
 * skipped).
 */

/** Options of sliding-window attention (flags). */
#define GDN_SWA_ROPE (1u << 0) /**< rotate q and k by their positions in the op */

/** Default window (the H1/H2 hybrids' SWA layers). */
#define GDN_SWA_DEFAULT_WINDOW 2048

/** Settings of one SWA call. Fill with gdn_swa_params_init. */
typedef struct gdn_swa_params {
    int32_t  window;       /**< W >= 1; 0 (default): GDN_SWA_DEFAULT_WINDOW;
                                INT32_MAX (or any W >= T): full causal     */
    float    scale;        /**< softmax scale; 0 (default): D^-1/2         */
    float    rope_base;    /**< RoPE base; 0 (default): 10000              */
    uint32_t flags;        /**< GDN_SWA_*; default 0                        */
    uint32_t reserved[12]; /**< must be zero                               */
} gdn_swa_params;

/** Fill *params with defaults (window 2048, scale D^-1/2, base 10000, no
 *  flags). */
GDN_API void gdn_swa_params_init(gdn_swa_params *params);

/** The inputs of one call. Tensors are borrowed for the duration of the call
 *  (and, when a tape is recorded, until the tape is destroyed). */
typedef struct gdn_swa_args {
    const gdn_tensor *q;           /**< [T, Hq, D]                             */
    const gdn_tensor *k;           /**< [T, Hkv, D]                            */
    const gdn_tensor *v;           /**< [T, Hkv, D]                            */
    const int32_t    *seq_offsets; /**< N + 1 host ints (3-D tensors) or NULL  */
    int32_t           n_seqs;      /**< N when seq_offsets is set, else 0      */
    const int32_t    *pos_offsets; /**< N host ints (copied): RoPE position of
                                        each sequence's first token; NULL: 0.
                                        Each in [0, 2^24 - length].          */
    uint32_t          reserved[8]; /**< must be zero                           */
} gdn_swa_args;

/** What forward saves for backward. Owned by the caller; destroy it with
 *  gdn_swa_tape_destroy (before the context). It holds the log-sum-exp
 *  [T, Hq] (4 B per token and query head) and, with GDN_SWA_ROPE, the
 *  rotated q and k (4 D B per token and head). It borrows q, k, v and the
 *  output o of the forward call: keep them alive and unchanged until
 *  backward has been enqueued. */
typedef struct gdn_swa_tape gdn_swa_tape;

GDN_API void gdn_swa_tape_destroy(gdn_swa_tape *tape);

/** Forward (flash-attention style, online softmax in fp32). o (required) is
 *  written; lse (optional, [T, Hq] or [B, T_b, Hq]) receives the natural-log
 *  log-sum-exp of the scaled scores of each row. When tape is not NULL,
 *  *tape receives a new tape for backward.
 *  @return OK; INVALID_ARGUMENT (NULL, bad offsets, non-zero reserved, bad
 *  window, scale or base, o aliasing an input); SHAPE_MISMATCH; UNSUPPORTED
 *  (head dim, sizes); OUT_OF_DEVICE_MEMORY; BUILD_FAILED; OPENCL. Enqueued;
 *  returns before the device is done. */
GDN_API gdn_status gdn_swa_forward(gdn_context *ctx, const gdn_swa_params *params,
                                   const gdn_swa_args *args, gdn_tensor *o, gdn_tensor *lse,
                                   gdn_swa_tape **tape);

/** Gradients written by backward. Every non-NULL tensor is overwritten with
 *  the gradient w.r.t. the input of the same shape: dq [T, Hq, D]; dk, dv
 *  [T, Hkv, D] (with GQA, summed over the query heads of each group, in a
 *  fixed order: deterministic). With GDN_SWA_ROPE, dq and dk are w.r.t. the
 *  unrotated q and k. NULL entries are not written (and, for dq, not
 *  computed). */
typedef struct gdn_swa_grads {
    gdn_tensor *dq;
    gdn_tensor *dk;
    gdn_tensor *dv;
    void       *reserved[4]; /**< must be NULL */
} gdn_swa_grads;

/** Backward of the forward recorded in tape, recomputing the attention
 *  weights from the saved log-sum-exp. do_ has o's shape. A tape may be used
 *  for several backward calls. The gradient tensors must not alias the
 *  tape's inputs or each other. @return as gdn_swa_forward. */
GDN_API gdn_status gdn_swa_backward(gdn_context *ctx, const gdn_swa_tape *tape,
                                    const gdn_tensor *do_, const gdn_swa_grads *grads);

/** Rotary position embedding alone (the op applied to q and k by
 *  GDN_SWA_ROPE). x and y are [T, H, D] or [B, T_b, H, D] (D even, from 2 to
 *  1024; H >= 1); y may be x (in place). Sequences and
 *  positions come from seq_offsets / n_seqs / pos_offsets as in
 *  gdn_swa_args (the other fields of args are ignored and may be NULL).
 *  base: 0 means 10000. inverse = 0 rotates by +angle (forward); inverse = 1
 *  rotates by -angle, which is the backward (dx from dy), the rotation being
 *  orthogonal. @return OK; INVALID_ARGUMENT; SHAPE_MISMATCH; UNSUPPORTED;
 *  BUILD_FAILED; OPENCL. Enqueued. */
GDN_API gdn_status gdn_swa_rope(gdn_context *ctx, const gdn_tensor *x, gdn_tensor *y,
                                const int32_t *seq_offsets, int32_t n_seqs,
                                const int32_t *pos_offsets, float base, int32_t inverse);

/*
 * Decode: a key/value cache per sequence that is a ring buffer of W entries
 * (memory O(W), not O(T)). The cache is made of caller-owned tensors:
 *   k, v   [N, Hkv, W, D] F32   rotated keys (GDN_SWA_ROPE) and values; the
 *                               c-th token appended to sequence n (c from 0)
 *                               lives in entry c % W
 *   len    [N] I32              tokens appended so far to each sequence
 *   pos    [N] I32              RoPE position of each sequence's next token
 * W is the window of the calls (params.window must equal the cache's W, or
 * be 0 when W = GDN_SWA_DEFAULT_WINDOW). Entries of a sequence that were
 * never written are never read, so a new cache needs no clearing beyond
 * gdn_swa_prefill (or len = 0, pos = first position, written by the caller).
 */
typedef struct gdn_swa_cache {
    gdn_tensor *k;           /**< [N, Hkv, W, D] F32                         */
    gdn_tensor *v;           /**< [N, Hkv, W, D] F32                         */
    gdn_tensor *len;         /**< [N] I32                                    */
    gdn_tensor *pos;         /**< [N] I32                                    */
    void       *reserved[4]; /**< must be NULL                               */
} gdn_swa_cache;

/** Prefill: run the forward over the prompts in args (packed or batched, as
 *  gdn_swa_forward) and reset the cache of every sequence n to its prompt:
 *  the last min(L_n, W) keys (rotated with GDN_SWA_ROPE) and values, len[n]
 *  = L_n, pos[n] = pos_offsets[n] + L_n. o (optional: NULL skips the
 *  attention and only fills the cache) and lse (optional) as in
 *  gdn_swa_forward. Prompts may be empty (L_n = 0). @return as
 *  gdn_swa_forward. Enqueued. */
GDN_API gdn_status gdn_swa_prefill(gdn_context *ctx, const gdn_swa_params *params,
                                   const gdn_swa_args *args, const gdn_swa_cache *cache,
                                   gdn_tensor *o, gdn_tensor *lse);

/** Decode step: one new token per sequence. args->q is [N, Hq, D], k and v
 *  [N, Hkv, D] (seq_offsets and pos_offsets must be NULL). For each sequence
 *  the token is rotated at position pos[n] (GDN_SWA_ROPE), its key and value
 *  are written into entry len[n] % W (replacing the token that leaves the
 *  window), o [N, Hq, D] receives its attention over the min(len[n] + 1, W)
 *  cached tokens, and len[n], pos[n] are incremented. Equal to the last row
 *  of a forward over the whole sequence. @return as gdn_swa_forward.
 *  Enqueued. */
GDN_API gdn_status gdn_swa_step(gdn_context *ctx, const gdn_swa_params *params,
                                const gdn_swa_args *args, const gdn_swa_cache *cache,
                                gdn_tensor *o);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* GDN_SWA_PUBLIC_H */
