/*
 * linear_public.h - public API of the dense layer ops (linear, SwiGLU MLP,
 * token embedding, output head, cross-entropy), written exactly as it is to
 * appear in include/gdn.h (the lead moves the section between the markers
 * into gdn.h; until then library sources and tests include this file).
 */
#ifndef GDN_LINEAR_PUBLIC_H
#define GDN_LINEAR_PUBLIC_H

#include "gdn.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- begin section for gdn.h ------------------------------------------- */

/* ------------------------------------------------------------------------ */
/* Dense layers: linear, SwiGLU MLP, token embedding, output head, loss      */
/* ------------------------------------------------------------------------ */
/*
 * All tensors F32 except token ids and targets (I32). Weights use the
 * PyTorch / fla layout: a linear weight is [out, in] (row-major, `in`
 * fastest) and y = x W^T (+ b). Every leading dimension of an activation is
 * a row (token) dimension: x may be [in], [T, in], [B, T, in] or
 * [B, T, H, in], with M = numel(x) / in rows; outputs keep x's leading
 * dimensions. M = 0 (an empty tensor) is allowed and enqueues nothing.
 *
 * Matrix products run through CLBlast SGEMM (fp32 multiply and accumulate,
 * no tf32), behind one internal interface that a faster GEMM can replace.
 * The first product of each shape class in a context compiles CLBlast's
 * kernels (seconds on CPU OpenCL, once). Outputs must not alias inputs unless
 * a function says so.
 *
 * Weight tying (output head = embedding table E [vocab, D]): the head is
 * gdn_linear_forward with w = E; in backward, let the head's
 * gdn_linear_backward write dw = dE, then call gdn_embedding_backward with
 * GDN_LINEAR_ACCUMULATE_DW so the embedding gradient adds to it (or the other
 * way round: both orders give the same sums).
 */

/** Options of the dense ops (flags of gdn_linear_params). */
#define GDN_LINEAR_ACCUMULATE_Y  (1u << 0) /**< forward: y += result (a fused residual add) */
#define GDN_LINEAR_ACCUMULATE_DX (1u << 1) /**< backward: dx += dy W (x feeds several layers) */
#define GDN_LINEAR_ACCUMULATE_DW (1u << 2) /**< backward: dw += dy^T x, db += column sums of dy
                                                (gradient accumulation over micro-batches);
                                                also the embedding table gradient        */

/** Settings of one linear, SwiGLU or embedding call. Fill with
 *  gdn_linear_params_init. Without an ACCUMULATE flag the output is
 *  overwritten (it may hold anything before, NaN included). */
typedef struct gdn_linear_params {
    uint32_t flags;        /**< GDN_LINEAR_ACCUMULATE_*; default 0             */
    uint32_t reserved[15]; /**< must be zero                                  */
} gdn_linear_params;

/** Fill *params with defaults (no flags). */
GDN_API void gdn_linear_params_init(gdn_linear_params *params);

/** Inputs of a linear layer, borrowed for the duration of the call.
 *  Plain: w [out, in], x [..., in], b [out] or NULL; y = x W^T + b is
 *  [..., out]. Grouped (one weight per head, a block-diagonal layer run as a
 *  strided-batched GEMM): w [G, out, in], x [..., G, in], b [G, out] or NULL;
 *  y[..., g, :] = x[..., g, :] W_g^T + b_g is [..., G, out]. */
typedef struct gdn_linear_args {
    const gdn_tensor *x;           /**< [..., in] or [..., G, in]           */
    const gdn_tensor *w;           /**< [out, in] or [G, out, in]           */
    const gdn_tensor *b;           /**< [out] or [G, out], or NULL (no bias) */
    uint32_t          reserved[8]; /**< must be zero                         */
} gdn_linear_args;

/** y = x W^T + b (or y += ... with GDN_LINEAR_ACCUMULATE_Y). params may be
 *  NULL (defaults). y has x's leading dimensions and last dimension `out`
 *  ([..., G, out] when grouped).
 *  @return OK; INVALID_ARGUMENT (NULL, non-zero reserved, unknown flags,
 *  tensors of another context); SHAPE_MISMATCH (shapes or dtypes disagree,
 *  naming the tensor); OUT_OF_DEVICE_MEMORY; BUILD_FAILED; OPENCL; INTERNAL.
 *  Enqueued; returns before the device is done. */
GDN_API gdn_status gdn_linear_forward(gdn_context *ctx, const gdn_linear_params *params,
                                      const gdn_linear_args *args, gdn_tensor *y);

/** Gradients of a linear layer; NULL entries are not computed. dx has x's
 *  shape, dw w's shape, db [out] (or [G, out]) whether or not args->b is
 *  set. dx is overwritten, or added to with GDN_LINEAR_ACCUMULATE_DX; dw
 *  and db are overwritten, or added to with GDN_LINEAR_ACCUMULATE_DW. */
typedef struct gdn_linear_grads {
    gdn_tensor *dx;          /**< dy W                                     */
    gdn_tensor *dw;          /**< dy^T x (summed over every row)           */
    gdn_tensor *db;          /**< column sums of dy                        */
    void       *reserved[4]; /**< must be NULL                             */
} gdn_linear_grads;

/** Backward of gdn_linear_forward: dy has y's shape. args->x is needed for
 *  dw, args->w always (it fixes the shapes); args->b is not read. Column sums
 *  and GEMM reductions run in a fixed order: results are deterministic.
 *  @return as gdn_linear_forward. */
GDN_API gdn_status gdn_linear_backward(gdn_context *ctx, const gdn_linear_params *params,
                                       const gdn_linear_args *args, const gdn_tensor *dy,
                                       const gdn_linear_grads *grads);

/* ---- SwiGLU MLP (fla GatedMLP, xformers SwiGLU, bias-free) ------------- */

/** Inputs of the MLP y = W_down (silu(W_gate x) * (W_up x)), borrowed for the
 *  call (and, when a tape is recorded, until the tape is destroyed). D is the
 *  model width, F the hidden width (e.g. 6144 at D = 1536), D_out normally D.
 *  silu(a) = a * sigmoid(a). */
typedef struct gdn_swiglu_args {
    const gdn_tensor *x;           /**< [..., D]                           */
    const gdn_tensor *w_gate;      /**< [F, D]                             */
    const gdn_tensor *w_up;        /**< [F, D]                             */
    const gdn_tensor *w_down;      /**< [D_out, F]                         */
    uint32_t          reserved[8]; /**< must be zero                        */
} gdn_swiglu_args;

/** What the MLP forward saves for backward: the two hidden pre-activations
 *  W_gate x and W_up x (2 F floats per row; 48 KiB per token at F = 6144).
 *  Owned by the caller; destroy it (before the context) with
 *  gdn_swiglu_tape_destroy. It borrows args->x and the three weights: keep
 *  them alive and unchanged until the last backward has been enqueued. A
 *  tape may serve several backward calls. */
typedef struct gdn_swiglu_tape gdn_swiglu_tape;

GDN_API void gdn_swiglu_tape_destroy(gdn_swiglu_tape *tape); /**< NULL: no-op */

/** MLP forward: y [..., D_out] (x's leading dimensions) is written, or added
 *  to with GDN_LINEAR_ACCUMULATE_Y (fused residual add). When tape is not
 *  NULL, *tape receives a new tape for backward (NULL on failure).
 *  Temporary device memory: F floats per row (plus the tape's 2 F when
 *  recorded, else one more F).
 *  @return as gdn_linear_forward. */
GDN_API gdn_status gdn_swiglu_forward(gdn_context *ctx, const gdn_linear_params *params,
                                      const gdn_swiglu_args *args, gdn_tensor *y,
                                      gdn_swiglu_tape **tape);

/** Gradients of the MLP; NULL entries are not computed (the shared work is
 *  done once either way). Each has its input's shape. dx follows
 *  GDN_LINEAR_ACCUMULATE_DX, the weights GDN_LINEAR_ACCUMULATE_DW. */
typedef struct gdn_swiglu_grads {
    gdn_tensor *dx;          /**< [..., D]                                 */
    gdn_tensor *dw_gate;     /**< [F, D]                                   */
    gdn_tensor *dw_up;       /**< [F, D]                                   */
    gdn_tensor *dw_down;     /**< [D_out, F]                               */
    void       *reserved[4]; /**< must be NULL                             */
} gdn_swiglu_grads;

/** MLP backward from tape; dy has y's shape. Temporary device memory: 3 F
 *  floats per row. params: the ACCUMULATE_DX / _DW flags (NULL: none).
 *  @return as gdn_linear_forward; INVALID_ARGUMENT also for a tape of
 *  another context. */
GDN_API gdn_status gdn_swiglu_backward(gdn_context *ctx, const gdn_linear_params *params,
                                       const gdn_swiglu_tape *tape, const gdn_tensor *dy,
                                       const gdn_swiglu_grads *grads);

/* ---- token embedding ------------------------------------------------- */

/** y[..., :] = table[ids[...], :]: table [vocab, D] F32, ids I32 of any shape
 *  [...] (1 to 3 dimensions), y [..., D]. An id outside [0, vocab) gives a
 *  row of NaN (loud rather than silently wrong). params: ACCUMULATE_Y adds
 *  to y (e.g. a learned position embedding); NULL: defaults.
 *  @return as gdn_linear_forward. */
GDN_API gdn_status gdn_embedding_forward(gdn_context *ctx, const gdn_linear_params *params,
                                         const gdn_tensor *table, const gdn_tensor *ids,
                                         gdn_tensor *y);

/** dtable [vocab, D] = sum over tokens t with ids[t] = v of dy[t, :], for
 *  every row v (rows no token uses get 0), or added to dtable with
 *  GDN_LINEAR_ACCUMULATE_DW (weight tying, gradient accumulation). ids as in
 *  forward (ids outside [0, vocab) are skipped), dy [..., D]. Deterministic:
 *  each row sums its tokens in increasing token order (a counting sort on
 *  the device, no float atomics). Temporary device memory: 2 vocab + 2 T
 *  ints. Cost: one pass over dy and dtable, plus sum over ids of n_id^2
 *  integer compares (n_id = occurrences of the id), so a batch that is one
 *  token repeated T times costs T^2 compares.
 *  @return as gdn_linear_forward. */
GDN_API gdn_status gdn_embedding_backward(gdn_context *ctx, const gdn_linear_params *params,
                                          const gdn_tensor *ids, const gdn_tensor *dy,
                                          gdn_tensor *dtable);

/* ---- cross-entropy loss --------------------------------------------- */

/** Options of the cross-entropy loss. */
#define GDN_CROSS_ENTROPY_SUM (1u << 0) /**< loss = sum over counted tokens (default: mean) */

/** Settings of the loss. Fill with gdn_cross_entropy_params_init. */
typedef struct gdn_cross_entropy_params {
    int32_t  ignore_index; /**< targets equal to it are skipped; default -100  */
    uint32_t flags;        /**< GDN_CROSS_ENTROPY_*; default 0 (mean)          */
    uint32_t reserved[14]; /**< must be zero                                  */
} gdn_cross_entropy_params;

/** Fill *params with defaults (ignore_index -100, mean). */
GDN_API void gdn_cross_entropy_params_init(gdn_cross_entropy_params *params);

/** Outputs of the forward. loss is required; the rest may be NULL. */
typedef struct gdn_cross_entropy_out {
    gdn_tensor *loss;        /**< F32 [1]: mean over counted tokens of
                                  lse(row) - logit[target] (sum with
                                  GDN_CROSS_ENTROPY_SUM); 0 if none counted */
    gdn_tensor *count;       /**< I32 [1]: number of counted tokens        */
    gdn_tensor *lse;         /**< F32 [...] (targets' shape): log-sum-exp of
                                  each row, for backward                    */
    gdn_tensor *row_loss;    /**< F32 [...]: per-token loss, 0 if ignored  */
    void       *reserved[4]; /**< must be NULL                             */
} gdn_cross_entropy_out;

/** Cross-entropy of logits [..., vocab] against targets I32 [...] (the same
 *  leading dimensions; 1 to 3 of them): -log softmax(logits)[target], over
 *  tokens whose target is not params->ignore_index. The log-sum-exp is
 *  max-subtracted in fp32 (logits of any magnitude are safe; -inf logits are
 *  allowed), one work-group per row, reduced in a fixed order (deterministic).
 *  A target outside [0, vocab) that is not ignore_index makes that row's
 *  loss, and so the mean, NaN. vocab up to 2^31 - 1.
 *  @return as gdn_linear_forward. */
GDN_API gdn_status gdn_cross_entropy_forward(gdn_context *ctx,
                                             const gdn_cross_entropy_params *params,
                                             const gdn_tensor *logits, const gdn_tensor *targets,
                                             const gdn_cross_entropy_out *out);

/** dlogits = (softmax(logits) - onehot(target)) * dloss / count (mean) or
 *  * dloss (sum); rows of ignored targets are 0, rows of out-of-range
 *  targets NaN. lse: the forward's lse output, or NULL to recompute it (one
 *  more pass over the logits). dloss: F32 [1] on the device, or NULL for 1.
 *  dlogits has logits' shape and may be the same tensor as logits (in
 *  place: saves vocab floats per row). count is recomputed from targets.
 *  @return as gdn_linear_forward. */
GDN_API gdn_status gdn_cross_entropy_backward(gdn_context *ctx,
                                              const gdn_cross_entropy_params *params,
                                              const gdn_tensor *logits, const gdn_tensor *targets,
                                              const gdn_tensor *lse, const gdn_tensor *dloss,
                                              gdn_tensor *dlogits);

/* ---- end section for gdn.h --------------------------------------------- */

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* GDN_LINEAR_PUBLIC_H */
