/*
 * norm/norm_fwd.cl - row norms over the last dimension, or over groups of G
 * consecutive elements of it (ALGORITHM.md §3.1 output norm, §4.4 Mamba2
 * norm). With a "row" meaning one group of G elements, r its index and
 * i = r % (D / G) its group within the last dim (D = last dim):
 *
 *   NORM_TYPE 0  L2              y = x / sqrt(sum x^2 + eps)
 *             1  RMS             y = x * rsqrt(mean x^2 + eps) * w
 *             2  RMS_GATED       y = x * rsqrt(mean x^2 + eps) * w * silu(g)
 *                                (fla FusedRMSNormGated, norm before gate)
 *             3  RMS_GATE_FIRST  u = x * silu(g); y = u * rsqrt(mean u^2 + eps) * w
 *                                (Mamba2 RMSNormGated, norm_before_gate=False)
 *   silu(g) = g * sigmoid(g); w[i * G + j] is the weight of element j of the
 *   row (has_w = 0: w = 1; L2 never uses w).
 *
 * Shapes (F32, dense): x, g, y [rows * G] (= [..., D]); w [D]. y may be x
 * (each element is read and then written by the same work-item).
 *
 * Work decomposition: a work-group of RPG * TPR work-items handles RPG rows
 * (block b = group id: rows b * RPG .. b * RPG + RPG - 1); TPR work-items
 * (a power of two) share one row. Work-item `lane` of a row keeps elements
 * j = lane + e * TPR, e < EPT, in registers (coalesced across the lanes), so
 * x and g are read once and y written once. The row sum of squares is a
 * tree reduction over the TPR lanes in local memory (log2 TPR barriers,
 * uniform: the loop bound is a kernel argument).
 *
 * Local memory: RPG * TPR floats (the `red` argument).
 *
 * Tuning macros (host plan: lib/ops/norm/norm.c, space norm/norm_fwd):
 *   NORM_TYPE  0..3 as above
 *   EPT        elements per work-item: a power of two from 4 to 256 (above 32
 *              only where work-groups must be tiny), with EPT * TPR >= G
 * Runtime plan values (kernel arguments, so they cost no extra builds):
 *   tpr        lanes per row, a power of two (log2 in log_tpr; the space's
 *              TPR); rpg rows per group (RPG); the work-group size is
 *              tpr * rpg.
 */
#include "gdn_common.clh"

#ifndef NORM_TYPE
#define NORM_TYPE 1
#endif
#ifndef EPT
#define EPT 4
#endif

#if NORM_TYPE < 0 || NORM_TYPE > 3
#error "NORM_TYPE must be 0..3"
#endif
#if EPT < 4 || EPT > 256 || (EPT & (EPT - 1)) != 0
#error "EPT must be a power of two from 4 to 256"
#endif

__kernel void norm_fwd(__global const float *x, __global const float *w, __global const float *g,
                       __global float *y, __local float *red, int rows, int G, int gpd,
                       int log_tpr, int rpg, float eps, int has_w)
{
    const int   tpr  = 1 << log_tpr;
    const int   lid  = (int)get_local_id(0);
    const int   sub  = lid >> log_tpr;
    const int   lane = lid & (tpr - 1);
    const long  row  = (long)get_group_id(0) * rpg + sub;
    const bool  live = row < rows;
    const ulong base = live ? (ulong)row * (ulong)G : 0;

    float a[EPT];
#if NORM_TYPE == 2 || NORM_TYPE == 3
    float gs[EPT]; /* silu(g) */
#endif
    float ss = 0.0f;
    for (int e = 0; e < EPT; e++) {
        const int j  = lane + e * tpr;
        const bool in = live && j < G;
        a[e]          = in ? x[base + j] : 0.0f;
#if NORM_TYPE == 2 || NORM_TYPE == 3
        {
            const float gv = in ? g[base + j] : 0.0f;
            gs[e]          = gv / (1.0f + exp(-gv));
        }
#endif
#if NORM_TYPE == 3
        a[e] *= gs[e];
#endif
        ss = fma(a[e], a[e], ss);
    }

    /* Tree reduction of ss over the tpr lanes of each row. */
    red[lid] = ss;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int s = tpr >> 1; s > 0; s >>= 1) {
        if (lane < s)
            red[lid] += red[lid + s];
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    ss = red[sub << log_tpr];

#if NORM_TYPE == 0
    const float rstd = 1.0f / sqrt(ss + eps);
#else
    const float rstd = 1.0f / sqrt(ss / (float)G + eps);
#endif
    if (!live)
        return;
    {
        const int wbase = (int)(row % gpd) * G;
        for (int e = 0; e < EPT; e++) {
            const int j = lane + e * tpr;
            if (j < G) {
                float v = a[e] * rstd;
#if NORM_TYPE != 0
                if (has_w)
                    v *= w[wbase + j];
#endif
#if NORM_TYPE == 2
                v *= gs[e];
#endif
                y[base + j] = v;
            }
        }
    }
}
