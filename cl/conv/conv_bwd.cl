/*
 * conv/conv_bwd.cl - backward of conv/conv_fwd.cl (same shapes, chunk
 * table and decomposition). With pre_t = sum_w weight[w] x_{t-W+1+w} + bias
 * (recomputed here) and dp_t = dy_t * act'(pre_t) (act' = 1 without SiLU,
 * silu'(p) = s (1 + p (1 - s)), s = sigmoid(p)), per channel and sequence
 * of length L starting at bos:
 *
 *   dx_t       = sum_w weight[w] dp_{t+W-1-w}   (dp = 0 past the sequence)
 *                + dfinal[k]  where k = (t - bos) - (L - (W-1)) in [0, W-1)
 *   dinit[p]   = the same expression at the virtual position
 *                t = bos - (W-1) + p, p < W-1 (the initial-state entries
 *                are the inputs at those positions)
 *   dweight[w] = sum_t dp_t x_{t-W+1+w}         (x from the initial state
 *                                                 before bos)
 *   dbias      = sum_t dp_t
 *
 * Work-item (channel c, chunk [t0, t1)) walks s = t0 .. t1 + W - 2 once:
 * it keeps the last W-1 inputs (for pre_s) and the last W-1 values of dp
 * (for dx) in registers; at step s it knows dp_s and emits dx at position
 * t = s - (W-1) when t >= t0 (a real token of this chunk) or, in the
 * sequence's first chunk, the initial-state gradient when t < bos. Steps
 * s >= eos contribute dp = 0 and read nothing. The weight and bias
 * gradients of the chunk's own tokens are summed in registers and written
 * as partials dwpart [NT, C, W], dbpart [NT, C]; the host sums them over
 * chunks with norm/colsum.cl (fixed order, no atomics).
 *
 * Work decomposition as the forward: CB channels x CG chunks per
 * work-group, work-items past C or past the nt chunks return at once.
 *
 * dx must not alias dy or x (other chunks read them as halo).
 *
 * Tuning macros (host plan: lib/ops/conv/conv.c, space conv/conv_bwd):
 *   W   kernel size, 2..8 (default 4)
 * Runtime flags: has_bias, silu, has_init, has_dfinal, store_dx,
 * store_dinit, store_dw (dweight and dbias partials).
 */
#include "gdn_common.clh"

#ifndef W
#define W 4
#endif
#if W < 2 || W > 8
#error "W must be in 2..8"
#endif

__kernel void conv_bwd(__global const float *x, __global const float *weight,
                       __global const float *bias, __global const float *init,
                       __global const float *dy, __global const float *dfinal,
                       __global const int4 *chunks, __global const int *seq_off,
                       __global float *dx, __global float *dinit, __global float *dwpart,
                       __global float *dbpart, int C, int nt, int has_bias, int silu,
                       int has_init, int has_dfinal, int store_dx, int store_dinit, int store_dw)
{
    const int   c  = (int)get_global_id(0);
    const ulong ci = get_global_id(1);
    if (c >= C || ci >= (ulong)nt)
        return;
    const int4 ch   = chunks[ci];
    const int  n = ch.x, t0 = ch.y, t1 = ch.z, bos = ch.w;
    const int  eos  = seq_off[n + 1];
    const int  tail = (eos - bos) - (W - 1); /* dfinal[k] is the input at bos + tail + k */

    float wt[W], xw[W - 1], dpw[W - 1], dfs[W - 1];
    float dwacc[W], dbacc = 0.0f;
    for (int w = 0; w < W; w++) {
        wt[w]    = weight[(ulong)c * W + w];
        dwacc[w] = 0.0f;
    }
    const float b     = has_bias ? bias[c] : 0.0f;
    const ulong sbase = ((ulong)n * (ulong)C + (ulong)c) * (W - 1);
    for (int w = 0; w < W - 1; w++) {
        const int p = t0 - (W - 1) + w;
        xw[w]       = p >= bos   ? x[(ulong)p * (ulong)C + (ulong)c]
                      : has_init ? init[sbase + (ulong)(W - 1 + p - bos)]
                                 : 0.0f;
        dpw[w]      = 0.0f; /* dp before t0 is never needed */
        dfs[w]      = has_dfinal ? dfinal[sbase + w] : 0.0f;
    }

    for (int s = t0; s < t1 + W - 1; s++) {
        float xs = 0.0f, dp = 0.0f;
        if (s < eos) {
            const ulong off = (ulong)s * (ulong)C + (ulong)c;
            float       pre = b;
            xs              = x[off];
            for (int w = 0; w < W - 1; w++)
                pre = fma(wt[w], xw[w], pre);
            pre = fma(wt[W - 1], xs, pre);
            dp  = dy[off];
            if (silu) {
                const float sg = 1.0f / (1.0f + exp(-pre));
                dp *= sg * (1.0f + pre * (1.0f - sg));
            }
            if (s < t1) {
                for (int w = 0; w < W - 1; w++)
                    dwacc[w] = fma(dp, xw[w], dwacc[w]);
                dwacc[W - 1] = fma(dp, xs, dwacc[W - 1]);
                dbacc += dp;
            }
        }
        /* Emit position t = s - (W-1): sum_w wt[w] dp_{s-w}. */
        {
            const int t = s - (W - 1);
            if (t >= t0 || t0 == bos) {
                float v = wt[0] * dp;
                for (int w = 1; w < W; w++)
                    v = fma(wt[w], dpw[W - 1 - w], v);
                {
                    const int k = t - bos - tail;
                    for (int q = 0; q < W - 1; q++) /* unrolled select, no dynamic index */
                        v += (q == k) ? dfs[q] : 0.0f;
                }
                if (t >= bos) {
                    if (store_dx)
                        dx[(ulong)t * (ulong)C + (ulong)c] = v;
                } else if (store_dinit) {
                    dinit[sbase + (ulong)(t - bos + (W - 1))] = v;
                }
            }
        }
        for (int w = 0; w < W - 2; w++) {
            xw[w]  = xw[w + 1];
            dpw[w] = dpw[w + 1];
        }
        xw[W - 2]  = xs;
        dpw[W - 2] = dp;
    }

    if (store_dw) {
        for (int w = 0; w < W; w++)
            dwpart[(ci * (ulong)C + (ulong)c) * W + w] = dwacc[w];
        dbpart[ci * (ulong)C + (ulong)c] = dbacc;
    }
}
