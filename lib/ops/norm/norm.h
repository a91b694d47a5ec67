/*
 * norm.h - internal interface of the norm and element-wise layer ops
 * (lib/ops/norm/): the public functions are declared in gdn.h; this header
 * adds what other ops reuse.
 *
 * Module owner: layer ops (issue 5).
 */
#ifndef GDN_OPS_NORM_H
#define GDN_OPS_NORM_H

#include <string.h>

#include "runtime.h"
#include "tune/tune.h"

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

/* ---- tuning (lib/tune/tune.h): the spaces of the norm and element-wise
 * kernels and of the column sum. Every plan of these kernels comes from
 * gdn__tune_lookup; the spaces' defaults() give the generic plans (the
 * values these ops used before they were tunable), so a lookup that finds
 * nothing changes nothing.
 *
 *   stage              bucket        params
 *   norm/norm_fwd      G<2^k>        EPT, TPR (lanes per row), RPG (rows per group)
 *   norm/norm_bwd      G<2^k>        EPT, TPR, RPG, GPC (groups per compute unit
 *                                    when dweight is wanted)
 *   norm/colsum        M<2^k>.P<2^k> CT (columns per group), PS (row strips)
 *   norm/act_fwd,      N2^<k>        WG (work-group size), GPC (groups per
 *   norm/act_bwd,                    compute unit of the grid-stride loop)
 *   norm/add
 * (2^k: the size rounded up to a power of two; N2^k: numel <= 2^k, k a
 * multiple of 4 from 12.) */

/* Problem of the norm spaces (valid / defaults). */
struct gdn_norm_tune_problem {
    int32_t G;    /* normalised size             */
    int32_t gpd;  /* groups per last dim          */
    int32_t rows; /* rows of G elements           */
    bool    dw;   /* backward: dweight wanted     */
};
/* Problem of the column sum space. */
struct gdn_colsum_tune_problem {
    int32_t P, M;
    size_t  kwg; /* CL_KERNEL_WORK_GROUP_SIZE of norm_colsum */
};
/* Problem of the element-wise spaces. */
struct gdn_elementwise_tune_problem {
    size_t n;   /* elements                                  */
    size_t kwg; /* CL_KERNEL_WORK_GROUP_SIZE of the kernel   */
};

extern const struct gdn_tune_space gdn__norm_fwd_space;
extern const struct gdn_tune_space gdn__norm_bwd_space;
extern const struct gdn_tune_space gdn__norm_colsum_space;
extern const struct gdn_tune_space gdn__norm_act_fwd_space;
extern const struct gdn_tune_space gdn__norm_act_bwd_space;
extern const struct gdn_tune_space gdn__norm_add_space;

/* Mesa llvmpipe silently ends a work-item's loops after 65535 iterations in
 * total; the layer ops' spaces reject plans whose loops would come within
 * half of that there (other devices: no limit). */
static inline int64_t gdn__layer_loop_cap(const struct gdn_device *dev)
{
    return strstr(dev->info.name, "llvmpipe") ? 32768 : INT64_MAX;
}

#endif /* GDN_OPS_NORM_H */
