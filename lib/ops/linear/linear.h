/*
 * linear.h - internal interface of the dense layer ops (lib/ops/linear/):
 * linear layers on raw buffers (for other ops and the model layer), the
 * SwiGLU activation kernels, and the small kernels of cl/loss/.
 *
 *   gemm.c           gdn__gemm*: the CLBlast backend (gemm.h)
 *   linear.c         public linear API; bias / column-sum / scale kernels
 *   swiglu.c         public SwiGLU MLP API and its tape
 *   embedding.c      token embedding forward and deterministic backward
 *   cross_entropy.c  cross-entropy forward and backward
 *
 * Kernel files (paths relative to cl/): loss/linear.cl, loss/swiglu.cl,
 * loss/embedding.cl, loss/cross_entropy.cl. Each stage has a plan (work-group
 * size and NDRange) with its defaults in one function, checked against the
 * device; every kernel grid is one-dimensional (NVIDIA limits the second
 * grid dimension to 65535 groups).
 */
#ifndef GDN_OPS_LINEAR_H
#define GDN_OPS_LINEAR_H

#include "gemm.h"
#include "runtime.h"

/* Shape of a (possibly grouped) linear layer on row-major buffers:
 * x [M, G, in], W [G, out, in], b [G, out], y [M, G, out]. */
struct gdn_linear_shape {
    int64_t M, G, in, out;
};

/* y (+)= x W^T (+ b). b may be NULL. */
gdn_status gdn__linear_fwd(gdn_context *ctx, const struct gdn_linear_shape *s, cl_mem x, cl_mem w,
                           cl_mem b, cl_mem y, bool accumulate);
/* dx (+)= dy W. */
gdn_status gdn__linear_bwd_dx(gdn_context *ctx, const struct gdn_linear_shape *s, cl_mem dy,
                              cl_mem w, cl_mem dx, bool accumulate);
/* dw (+)= dy^T x. */
gdn_status gdn__linear_bwd_dw(gdn_context *ctx, const struct gdn_linear_shape *s, cl_mem dy,
                              cl_mem x, cl_mem dw, bool accumulate);
/* db[j] (+)= sum_i dy[i, j] over M rows of G*out columns (deterministic). */
gdn_status gdn__linear_bwd_db(gdn_context *ctx, const struct gdn_linear_shape *s, cl_mem dy,
                              cl_mem db, bool accumulate);

/* C[off + i*ldc + j] = beta * C[...] for i < rows, j < cols (beta == 0
 * writes zeros, also over NaN): the K == 0 case of gdn__gemm. */
gdn_status gdn__lin_scale(gdn_context *ctx, cl_mem C, size_t off, size_t rows, size_t cols,
                          size_t ldc, float beta);

/* SwiGLU activation over n elements: h = silu(a) * b (h may be a). */
gdn_status gdn__swiglu_act_fwd(gdn_context *ctx, cl_mem a, cl_mem b, cl_mem h, size_t n);
/* Its backward from dh: h = silu(a) b (may be NULL: not written),
 * da = dh b silu'(a), db = dh silu(a). da may be dh (in place). */
gdn_status gdn__swiglu_act_bwd(gdn_context *ctx, cl_mem a, cl_mem b, cl_mem dh, cl_mem h,
                               cl_mem da, cl_mem db, size_t n);

/* ---- helpers shared by the files of this op (linear.c) ---- */

/* Plan of a 1-D elementwise / row kernel of this op: work-group size `wg`
 * (power of two) and the group count. */
struct gdn_lin_plan {
    int32_t wg;          /* work-items per group, the kernel's -DWG value   */
    size_t  groups;      /* work-groups (1-D grid)                           */
    size_t  lmem_per_wi; /* local memory the kernel declares per work-item  */
};

/* Build (or fetch) `entry` of loss/<file> with -D WG=<p->wg> plus `extra`
 * defines, after shrinking p->wg (halving, not below min_wg) until it fits
 * the device's work-group and local-memory limits (wg * lmem_per_wi bytes)
 * and the kernel's own work-group limit; UNSUPPORTED when nothing fits. */
gdn_status gdn__lin_kernel(gdn_context *ctx, const char *file, const char *entry,
                           const struct gdn_define *extra, size_t n_extra, struct gdn_lin_plan *p,
                           int32_t min_wg, cl_kernel *out);
/* Enqueue p->groups groups of p->wg work-items. */
gdn_status gdn__lin_launch(gdn_context *ctx, cl_kernel k, const struct gdn_lin_plan *p);

/* Validation helpers: the leading dims of t are rows, the last `tail`
 * dims must equal `want` (tail entries); *rows = product of the rest. */
gdn_status gdn__lin_rows(gdn_context *ctx, const gdn_tensor *t, const char *name, gdn_dtype dtype,
                         int32_t tail, const int64_t *want, int64_t *rows);
/* Check that reserved words are zero. */
bool gdn__lin_zero(const uint32_t *w, size_t n);
bool gdn__lin_null(void *const *p, size_t n);

#endif /* GDN_OPS_LINEAR_H */
