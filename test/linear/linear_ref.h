/*
 * linear_ref.h - float64 plain-C references of the dense layer ops
 * (lib/ops/linear/): linear (plain and grouped), SwiGLU MLP, token
 * embedding, cross-entropy; forward and backward. Row-major, no OpenCL.
 *
 * Shapes (grouped linear: G groups; plain: G = 1):
 *   x [M, G, in], w [G, out, in], b [G, out] or NULL, y [M, G, out]
 * Every "acc" argument: 0 overwrites the output, 1 adds to it.
 */
#ifndef GDN_TEST_LINEAR_REF_H
#define GDN_TEST_LINEAR_REF_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* y (+)= x W^T + b */
void ref_linear_fwd(size_t M, size_t G, size_t in, size_t out, const double *x, const double *w,
                    const double *b, double *y, int acc);
/* dx (+)= dy W; dw (+)= dy^T x; db (+)= column sums of dy. NULL outputs are
 * skipped. */
void ref_linear_bwd(size_t M, size_t G, size_t in, size_t out, const double *x, const double *w,
                    const double *dy, double *dx, int acc_dx, double *dw, double *db, int acc_dw);

/* SwiGLU MLP y (+)= W_down (silu(W_gate x) * (W_up x)); x [M, D],
 * wg, wu [F, D], wd [Dout, F], y [M, Dout]. */
void ref_swiglu_fwd(size_t M, size_t D, size_t F, size_t Dout, const double *x, const double *wg,
                    const double *wu, const double *wd, double *y, int acc);
/* Gradients (NULL outputs skipped). */
void ref_swiglu_bwd(size_t M, size_t D, size_t F, size_t Dout, const double *x, const double *wg,
                    const double *wu, const double *wd, const double *dy, double *dx, int acc_dx,
                    double *dwg, double *dwu, double *dwd, int acc_dw);

/* y[t] (+)= table[ids[t]] (NaN row for ids outside [0, V)). */
void ref_embedding_fwd(size_t T, size_t V, size_t D, const double *table, const int32_t *ids,
                       double *y, int acc);
/* dtable (+)= scatter-add of dy by ids (ids outside [0, V) skipped). */
void ref_embedding_bwd(size_t T, size_t V, size_t D, const int32_t *ids, const double *dy,
                       double *dtable, int acc);

/* Cross-entropy of logits [M, V] against targets [M]: per-row lse and loss
 * (0 for ignored, NaN for out-of-range targets; either may be NULL), and the
 * mean (sum_mode 0) or sum (1) into *loss, the count into *count. */
void ref_cross_entropy_fwd(size_t M, size_t V, const double *logits, const int32_t *targets,
                           int32_t ignore_index, int sum_mode, double *lse, double *row_loss,
                           double *loss, int32_t *count);
/* dlogits = (softmax - onehot) * dloss / count (mean) or * dloss (sum);
 * ignored rows 0. */
void ref_cross_entropy_bwd(size_t M, size_t V, const double *logits, const int32_t *targets,
                           int32_t ignore_index, int sum_mode, double dloss, double *dlogits);

#ifdef __cplusplus
}
#endif

#endif /* GDN_TEST_LINEAR_REF_H */
