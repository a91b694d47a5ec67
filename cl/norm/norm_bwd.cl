/*
 * norm/norm_bwd.cl - backward of norm/norm_fwd.cl (same NORM_TYPE meanings,
 * same rows of G elements, weight w[i * G + j] with i = row % gpd).
 *
 * Math, per row, with a = x (types 0..2) or a = x * silu(g) (type 3),
 * n = 1 (L2) or G (RMS types), r = 1 / sqrt(sum a^2 / n + eps), ahat = a r:
 *   dahat = dy * w            (type 2: dy * w * silu(g); L2 or has_w = 0: w = 1)
 *   c     = sum(dahat * ahat) / n
 *   da    = r * (dahat - ahat * c)
 *   dx    = da                 (types 0..2);  da * silu(g)        (type 3)
 *   dg    = dy * ahat * w * silu'(g) (type 2); da * x * silu'(g) (type 3)
 *   dw   += dy * ahat          (type 1, 3);   dy * ahat * silu(g) (type 2)
 * with silu'(g) = s (1 + g (1 - s)), s = sigmoid(g). The norm r is
 * recomputed here from x (one more accumulator in the same pass), so the
 * forward saves nothing.
 *
 * Shapes (F32, dense): x, g, dy, dx, dg [rows * G]; w [D] with D = G * gpd;
 * dwpart [ngroups * FOLD, G] partial weight gradients (store_dw), where
 * FOLD = fold (rows of partials per work-group, see below). dx may be dy.
 *
 * Work decomposition: as the forward (RPG rows of TPR lanes per group, EPT
 * elements per lane in registers, tree reductions of two sums through local
 * memory), but a group loops over row blocks b = group + it * ngroups,
 * it < iters, so that its lanes accumulate the weight gradient of their
 * columns in registers over many rows. At the end, the RPG sub-rows are
 * folded in a fixed order into `fold` partial rows: sub-row s adds into
 * partial s % fold (fold = gpd when gpd divides rpg, so all sub-rows of a
 * partial share one weight segment; else fold = rpg, no folding), and the
 * partial row p = group * fold + s goes to dwpart. The host picks ngroups
 * so that ngroups * rpg is a multiple of gpd; then row % gpd == p % gpd for
 * every row folded into p, i.e. dwpart seen as [ngroups * fold / gpd, D]
 * needs only a column sum (norm/colsum.cl) to give dw: deterministic, no
 * atomics.
 *
 * Local memory: RPG * TPR float2 (the `red` argument).
 *
 * Tuning macros (host plan: lib/ops/norm/norm.c, space norm/norm_bwd):
 *   NORM_TYPE  0..3;  EPT  a power of two from 4 to 256 with EPT * TPR >= G
 * Runtime plan values: log_tpr, rpg, ngroups (groups launched: about GPC
 * per compute unit when dweight is wanted), iters (ceil(row blocks /
 * ngroups)), fold. On llvmpipe the space keeps iters * (2 EPT + ...) under
 * its cap of 65535 loop iterations per work-item.
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

__kernel void norm_bwd(__global const float *x, __global const float *w, __global const float *g,
                       __global const float *dy, __global float *dx, __global float *dg,
                       __global float *dwpart, __local float2 *red, int rows, int G, int gpd,
                       int log_tpr, int rpg, int ngroups, int iters, int fold, float eps,
                       int has_w, int store_dx, int store_dg, int store_dw)
{
    const int tpr  = 1 << log_tpr;
    const int lid  = (int)get_local_id(0);
    const int sub  = lid >> log_tpr;
    const int lane = lid & (tpr - 1);
    const int grp  = (int)get_group_id(0);
#if NORM_TYPE == 0
    const float inv_n = 1.0f;
#else
    const float inv_n = 1.0f / (float)G;
#endif

    float dwacc[EPT];
    for (int e = 0; e < EPT; e++)
        dwacc[e] = 0.0f;

    for (int it = 0; it < iters; it++) {
        const long  row  = ((long)grp + (long)it * ngroups) * rpg + sub;
        const bool  live = row < rows;
        const ulong base = live ? (ulong)row * (ulong)G : 0;
        const int   wb   = live ? (int)(row % gpd) * G : 0;
        float       a[EPT], dah[EPT];
#if NORM_TYPE == 2 || NORM_TYPE == 3
        float gv[EPT], gs[EPT];
#endif
        float s_aa = 0.0f, s_da = 0.0f;

        for (int e = 0; e < EPT; e++) {
            const int  j  = lane + e * tpr;
            const bool in = live && j < G;
            float      wj = 1.0f;
#if NORM_TYPE != 0
            if (has_w && in)
                wj = w[wb + j];
#endif
            a[e]   = in ? x[base + j] : 0.0f;
            dah[e] = in ? dy[base + j] * wj : 0.0f;
#if NORM_TYPE == 2 || NORM_TYPE == 3
            gv[e] = in ? g[base + j] : 0.0f;
            gs[e] = gv[e] / (1.0f + exp(-gv[e]));
#endif
#if NORM_TYPE == 2
            dah[e] *= gs[e];
#elif NORM_TYPE == 3
            a[e] *= gs[e];
#endif
            s_aa = fma(a[e], a[e], s_aa);
            s_da = fma(dah[e], a[e], s_da);
        }

        red[lid] = (float2)(s_aa, s_da);
        barrier(CLK_LOCAL_MEM_FENCE);
        for (int s = tpr >> 1; s > 0; s >>= 1) {
            if (lane < s)
                red[lid] += red[lid + s];
            barrier(CLK_LOCAL_MEM_FENCE);
        }
        {
            const float2 tot = red[sub << log_tpr];
            const float  r   = 1.0f / sqrt(tot.x * inv_n + eps);
            const float  c   = tot.y * r * inv_n; /* sum(dahat * ahat) / n */
            /* Every lane has read red before the next row overwrites it. */
            barrier(CLK_LOCAL_MEM_FENCE);
            if (live) {
                for (int e = 0; e < EPT; e++) {
                    const int j = lane + e * tpr;
                    if (j >= G)
                        continue;
                    /* Read everything of element j before writing dx[j]:
                     * dx may be dy. */
                    const float dyj = dy[base + j];
#if NORM_TYPE == 3
                    const float xj = x[base + j];
#endif
                    const float ah = a[e] * r;
                    const float da = r * (dah[e] - ah * c);
#if NORM_TYPE == 2 || NORM_TYPE == 3
                    const float sg    = 1.0f / (1.0f + exp(-gv[e]));
                    const float dsilu = sg * (1.0f + gv[e] * (1.0f - sg));
#endif
#if NORM_TYPE == 3
                    if (store_dx)
                        dx[base + j] = da * gs[e];
                    if (store_dg)
                        dg[base + j] = da * xj * dsilu;
#else
                    if (store_dx)
                        dx[base + j] = da;
#endif
#if NORM_TYPE == 2
                    if (store_dg) {
                        const float wj = has_w ? w[wb + j] : 1.0f;
                        dg[base + j]   = dyj * ah * wj * dsilu;
                    }
#endif
#if NORM_TYPE == 2
                    if (store_dw)
                        dwacc[e] = fma(dyj * gs[e], ah, dwacc[e]);
#elif NORM_TYPE != 0
                    if (store_dw)
                        dwacc[e] = fma(dyj, ah, dwacc[e]);
#endif
                }
            }
        }
    }

    /* Fold the sub-rows' weight gradients into `fold` partial rows, in a
     * fixed order (uniform: store_dw is a kernel argument). */
    if (store_dw) {
        __local float *redf = (__local float *)red;
        for (int e = 0; e < EPT; e++) {
            redf[lid] = dwacc[e];
            barrier(CLK_LOCAL_MEM_FENCE);
            if (sub < fold) {
                const int j = lane + e * tpr;
                float     s = 0.0f;
                for (int q = sub; q < rpg; q += fold)
                    s += redf[(q << log_tpr) + lane];
                if (j < G)
                    dwpart[((ulong)grp * fold + sub) * (ulong)G + j] = s;
            }
            barrier(CLK_LOCAL_MEM_FENCE);
        }
    }
}
