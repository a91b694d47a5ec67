/*
 * conv/conv_step.cl - decode step of the causal depthwise short convolution
 * (ALGORITHM.md §3.4, fla causal_conv1d_update): one new token for each of
 * N sequences, with the conv state updated in place.
 *
 *   y[n, c]     = act(sum_{w < W-1} weight[c, w] state[n, c, w]
 *                     + weight[c, W-1] x[n, c] + bias[c])
 *   state[n, c] = [state[n, c, 1 .. W-2], x[n, c]]   (oldest first)
 *
 * Shapes (F32, dense): x, y [N, C]; weight [C, W]; bias [C];
 * state [N, C, W-1]. y may be x: each work-item reads its x before writing.
 *
 * Work decomposition: one work-item per (n, c) (1-D, c fastest), groups of
 * WG consecutive pairs; each state row of W-1 floats is read and written by
 * its own work-item only. No local memory.
 *
 * Tuning macros (host plan: lib/ops/conv/conv.c, space conv/conv_step, whose
 * WG is the local size):
 *   W   kernel size, 2..8 (default 4)
 * Runtime flags: has_bias, silu.
 */
#include "gdn_common.clh"

#ifndef W
#define W 4
#endif
#if W < 2 || W > 8
#error "W must be in 2..8"
#endif

__kernel void conv_step(__global const float *x, __global const float *weight,
                        __global const float *bias, __global float *state, __global float *y,
                        int N, int C, int has_bias, int silu)
{
    const ulong i = get_global_id(0); /* n * C + c */
    if (i >= (ulong)N * (ulong)C)
        return;
    const int   c  = (int)(i % (ulong)C);
    const float xt = x[i];
    float       st[W - 1];
    float       acc = has_bias ? bias[c] : 0.0f;

    for (int w = 0; w < W - 1; w++)
        st[w] = state[i * (W - 1) + w];
    for (int w = 0; w < W - 1; w++)
        acc = fma(weight[(ulong)c * W + w], st[w], acc);
    acc = fma(weight[(ulong)c * W + W - 1], xt, acc);
    if (silu)
        acc = acc / (1.0f + exp(-acc));
    for (int w = 0; w < W - 2; w++)
        state[i * (W - 1) + w] = st[w + 1];
    state[i * (W - 1) + W - 2] = xt;
    y[i] = acc;
}
