/*
 * norm.h - internal interface of the norm and element-wise layer ops
 * (lib/ops/norm/): the public functions are declared in gdn.h; this header
 * adds what other ops reuse.
 *
 * Module owner: layer ops (issue 5).
 */
#ifndef GDN_OPS_NORM_H
#define GDN_OPS_NORM_H

#include "runtime.h"

/* Largest normalised size (group_size) the norm kernels support. */
#define GDN_NORM_MAX_G 8192
/* Largest elements-per-work-item of the norm kernels (their EPT macro). */
#define GDN_NORM_MAX_EPT 256

/* Enqueue out[m] = sum_{p < P} in[p * M + m], m < M, with cl/norm/colsum.cl:
 * a fixed summation order (bit-reproducible), no atomics. P = 0 writes zeros.
 * Used by the norm weight gradient and the conv weight/bias gradients. */
gdn_status gdn__norm_colsum(gdn_context *ctx, cl_mem in, int32_t P, int32_t M, cl_mem out);

/* Integer helpers shared by the layer-op plans. */
static inline int32_t gdn__pow2_ceil_i32(int32_t x)
{
    int32_t p = 1;
    while (p < x && p < (1 << 30))
        p *= 2;
    return p;
}

static inline int32_t gdn__log2_i32(int32_t p)
{
    int32_t l = 0;
    while ((1 << l) < p)
        l++;
    return l;
}

#endif /* GDN_OPS_NORM_H */
