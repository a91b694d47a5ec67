/*
 * conv/conv_fwd.cl - causal depthwise short convolution over time, per
 * channel (ALGORITHM.md §3.1 ShortConvolution, §3.4 prefill, §4.4 Mamba2
 * conv on xBC):
 *
 *   y_t[c] = act(sum_{w < W} weight[c, w] * x_{t-W+1+w}[c] + bias[c])
 *
 * within each sequence; positions before the sequence's first token read
 * its initial conv state (the last W-1 inputs before the sequence, oldest
 * first) or zero. act is SiLU (silu = 1) or the identity. The final conv
 * state of a sequence is the last W-1 raw inputs of [initial state, x]:
 * when the sequence is shorter than W-1 it keeps the newest initial-state
 * entries (or zeros) in front.
 *
 * Shapes (F32, dense): x, y [T, C] (all sequences packed along T; batched
 * [B, T_b, C] is the same with T = B T_b); weight [C, W]; bias [C];
 * init, fstate [N, C, W-1]; seq_off [N + 1] token offsets; chunks [NT] int4
 * (n, t0, t1, bos): token range [t0, t1) of sequence n, which starts at bos.
 * Every sequence has at least one chunk (an empty sequence one chunk with
 * t0 = t1 = bos, so its final state is still written). fstate must not be
 * init (the host copies init first when the caller passes the same tensor).
 *
 * Work decomposition: 2-D NDRange; dimension 0 is the channel (work-groups
 * of CB consecutive channels: loads and stores are coalesced), dimension 1
 * the chunk (CG chunks per work-group; the host rounds both global sizes up
 * to the work-group, so work-items past C or past the nt chunks return at
 * once). A work-item runs its chunk's tokens in order with the last W-1
 * inputs in registers, so each x element is read once, plus W-1 halo reads
 * per chunk. No local memory, no barriers.
 *
 * Tuning macros (host plan: lib/ops/conv/conv.c, space conv/conv_fwd):
 *   W   kernel size, 2..8 (default 4)
 * Runtime plan values: CB x CG (the local size), the chunk length TT (chunk
 * table).
 * Runtime flags: has_bias, silu, has_init, store_final.
 */
#include "gdn_common.clh"

#ifndef W
#define W 4
#endif
#if W < 2 || W > 8
#error "W must be in 2..8"
#endif

__kernel void conv_fwd(__global const float *x, __global const float *weight,
                       __global const float *bias, __global const float *init,
                       __global const int4 *chunks, __global const int *seq_off,
                       __global float *y, __global float *fstate, int C, int nt, int has_bias,
                       int silu, int has_init, int store_final)
{
    const int c = (int)get_global_id(0);
    if (c >= C || get_global_id(1) >= (size_t)nt)
        return;
    const int4 ch = chunks[get_global_id(1)];
    const int  n = ch.x, t0 = ch.y, t1 = ch.z, bos = ch.w;

    float wt[W], win[W - 1];
    for (int w = 0; w < W; w++)
        wt[w] = weight[(ulong)c * W + w];
    const float b     = has_bias ? bias[c] : 0.0f;
    const ulong sbase = ((ulong)n * (ulong)C + (ulong)c) * (W - 1);

    /* The W-1 inputs before t0: earlier tokens of the sequence, else the
     * initial state (entry W-1+p-bos for position p < bos), else zero. */
    for (int w = 0; w < W - 1; w++) {
        const int p = t0 - (W - 1) + w;
        win[w]      = p >= bos   ? x[(ulong)p * (ulong)C + (ulong)c]
                      : has_init ? init[sbase + (ulong)(W - 1 + p - bos)]
                                 : 0.0f;
    }

    for (int t = t0; t < t1; t++) {
        const float xt  = x[(ulong)t * (ulong)C + (ulong)c];
        float       acc = b;
        for (int w = 0; w < W - 1; w++)
            acc = fma(wt[w], win[w], acc);
        acc = fma(wt[W - 1], xt, acc);
        if (silu)
            acc = acc / (1.0f + exp(-acc));
        y[(ulong)t * (ulong)C + (ulong)c] = acc;
        for (int w = 0; w < W - 2; w++)
            win[w] = win[w + 1];
        win[W - 2] = xt;
    }

    if (store_final && t1 == seq_off[n + 1])
        for (int w = 0; w < W - 1; w++)
            fstate[sbase + w] = win[w];
}
