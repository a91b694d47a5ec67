/*
 * mamba2/state_passing_bwd.cl - backward of the inter-chunk state passing
 * (mamba_ssm ssd_state_passing.py _state_passing_bwd): a reverse
 * element-wise scan over the chunks of each sequence.
 *
 * Math, per sequence n, head h, state element e; dH starts at dht (or 0):
 *   for each chunk c of the sequence, last to first:
 *     d          = dstates[c]          (direct gradient of h_in[c] from y)
 *     dstates[c] <- dH                 (= dL/dS_c = dL/dh_in[c+1])
 *     dH <- exp2(csl[c]) dH + d
 *   dh0[n, h] = dH
 * The decay gradient exp2(csl[c]) <dL/dS_c, h_in[c]> is summed by
 * dbc_bwd.cl, which reads both tiles anyway.
 *
 * Shapes (F32): dstates [NT, H, P, DS]; csl [NT, H]; chunk_off [N + 1];
 * dht, dh0 [N, H, P, DS] (has_dht / has_dh0; unused pointers may be any
 * buffer). P DS is a multiple of 256.
 *
 * One work-item = 4 consecutive state elements (float4) of one
 * (sequence, head); the previous chunk's value is loaded before the current
 * one is stored. No local memory, no barriers. Global (nblk WG N H),
 * nblk = P DS / (4 WG), group = (n H + h) nblk + block; local (WG).
 *
 * Tuning macros (#ifndef defaults; set by the state_passing plan in
 * lib/ops/mamba2/plan.c):
 *   WG    work-items per group: 64, 128 or 256 (default 256)
 */
#include "gdn_common.clh"

#ifndef WG
#define WG 256
#endif

__kernel __attribute__((reqd_work_group_size(WG, 1, 1)))
void mamba2_state_passing_bwd(__global float *restrict dstates,
                              __global const float *restrict csl,
                              __global const int *restrict chunk_off,
                              __global const float *restrict dht, __global float *restrict dh0,
                              int H, int PDS, int has_dht, int has_dh0)
{
    const int nblk = (PDS / 4 + WG - 1) / WG;
    const int nh   = (int)get_group_id(0) / nblk;
    const int e4   = ((int)get_group_id(0) - nh * nblk) * WG + (int)get_local_id(0);
    const int h    = nh % H;
    if (4 * e4 >= PDS)
        return;
    {
        const int   c0 = chunk_off[nh / H], nc = chunk_off[nh / H + 1] - c0;
        const ulong stride = (ulong)H * (ulong)PDS;
        const ulong sbase = (ulong)nh * (ulong)PDS + 4 * (ulong)e4;
        ulong       at = ((ulong)(c0 + nc - 1) * (ulong)H + (ulong)h) * (ulong)PDS + 4 * (ulong)e4;
        float4      dH = has_dht ? vload4(0, dht + sbase) : (float4)(0.0f);
        float4      d = nc > 0 ? vload4(0, dstates + at) : (float4)(0.0f);
        for (int ci = nc - 1; ci >= 0; ci--) {
            const float  dec  = exp2(csl[(ulong)(c0 + ci) * (ulong)H + (ulong)h]);
            const float4 prev = ci > 0 ? vload4(0, dstates + at - stride) : (float4)(0.0f);
            vstore4(dH, 0, dstates + at);
            dH = fma((float4)(dec), dH, d);
            d  = prev;
            at -= stride;
        }
        if (has_dh0)
            vstore4(dH, 0, dh0 + sbase);
    }
}
