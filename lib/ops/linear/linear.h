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

#include <stdio.h>
#include <string.h>

#include "gemm.h"
#include "runtime.h"
#include "tune/tune.h"

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

/* ---- tuning of the small kernels (embedding.c, cross_entropy.c, swiglu.c)
 *
 * Every plan of those files asks gdn__tune_lookup (lib/tune/tune.h) for its
 * values; the spaces' defaults() are the values the plans always used (256
 * work-items halved to the device's limits, the old group caps), so the
 * generic level changes nothing. Buckets are size classes ("N2^k": the
 * stage's size is at most 2^k, k = 12, 16, 20, ...). valid() checks the
 * device's work-group and local-memory limits, the 2^31 - 1 group limit of
 * gdn__lin_launch, and on Mesa llvmpipe (which silently ends a work-item's
 * loops after 65535 iterations in total) keeps each work-item's loops under
 * gdn__lin_loop_cap. A kernel whose own work-group limit is lower still
 * gets its WG halved by gdn__lin_kernel (same results, slower). */

/* Problem of the small kernels' spaces (each stage reads what it uses). */
struct gdn_lin_tune_problem {
    int64_t n;    /* tokens T (embedding), rows M (cross-entropy), elements (SwiGLU) */
    int64_t cols; /* D (embedding), V (cross-entropy, scan: vocab), 0 when unused   */
};

extern const struct gdn_tune_space gdn__emb_fwd_space;       /* linear/embedding_fwd   */
extern const struct gdn_tune_space gdn__emb_count_space;     /* linear/embedding_count */
extern const struct gdn_tune_space gdn__emb_scan_space;      /* linear/embedding_scan  */
extern const struct gdn_tune_space gdn__emb_fill_space;      /* linear/embedding_fill  */
extern const struct gdn_tune_space gdn__emb_rank_space;      /* linear/embedding_rank  */
extern const struct gdn_tune_space gdn__emb_accum_space;     /* linear/embedding_accum */
extern const struct gdn_tune_space gdn__ce_fwd_space;        /* linear/ce_fwd          */
extern const struct gdn_tune_space gdn__ce_reduce_space;     /* linear/ce_reduce       */
extern const struct gdn_tune_space gdn__ce_bwd_scale_space;  /* linear/ce_bwd_scale    */
extern const struct gdn_tune_space gdn__ce_bwd_space;        /* linear/ce_bwd          */
extern const struct gdn_tune_space gdn__swiglu_fwd_space;    /* linear/swiglu_fwd      */
extern const struct gdn_tune_space gdn__swiglu_bwd_space;    /* linear/swiglu_bwd      */

/* Mesa llvmpipe ends a work-item's loops after 65535 iterations in total:
 * plans keep each work-item's loop trips under this (with margin). */
static inline int64_t gdn__lin_loop_cap(const struct gdn_device *dev)
{
    return strstr(dev->info.name, "llvmpipe") ? 32768 : INT64_MAX;
}

/* The size-class bucket "N2^k" of n (k = 12, 16, 20, ...). */
static inline void gdn__lin_bucket(int64_t n, char *buf, size_t cap)
{
    int lg = 12;
    while (lg < 60 && ((int64_t)1 << lg) < n)
        lg += 4;
    snprintf(buf, cap, "N2^%d", lg);
}

/* 256 halved until wg work-items with lmem_per_wi bytes of local memory
 * each fit the device (the old plans' work-group size; at least 1). */
static inline int32_t gdn__lin_wg_default(const struct gdn_device *dev, size_t lmem_per_wi)
{
    int32_t wg = 256;
    while (wg > 1 && ((size_t)wg > dev->info.max_work_group_size ||
                      (uint64_t)wg * lmem_per_wi > dev->info.local_mem_bytes))
        wg /= 2;
    return wg;
}

/* WG legal on the device: work-items and local memory (bytes per item). */
static inline bool gdn__lin_wg_fits(int32_t wg, const struct gdn_device *dev, size_t lmem_per_wi)
{
    return (size_t)wg <= dev->info.max_work_group_size &&
           (uint64_t)wg * lmem_per_wi <= dev->info.local_mem_bytes;
}

/* Legal work-group sizes of these spaces (powers of two: the reductions'
 * trees need one). */
#define GDN_LIN_WG_PARAM {"WG", 256, 11, {1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024}}

#endif /* GDN_OPS_LINEAR_H */
