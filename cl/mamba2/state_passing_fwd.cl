/*
 * mamba2/state_passing_fwd.cl - forward stage 4 of the Mamba2 SSD scan
 * (mamba_ssm ssd_state_passing.py _state_passing_fwd): the only sequential
 * stage, an element-wise scan over the chunks of each sequence.
 *
 * Math, per sequence n, head h and state element e of the P x DS state,
 * with S_c the chunk states of chunk_state.cl (MODE 0):
 *   run = h0[n, h] (or 0)
 *   for each chunk c of the sequence:  states[c] <- run   (state ENTERING c)
 *                                      run <- exp2(csl[c]) run + S_c
 *   ht[n, h] = run
 * csl[c, h] is the chunk's total log2 decay (cumsum_fwd.cl), <= 0. states
 * is rewritten in place (S_c is read before h_in[c] is written, by the same
 * work-item). The next chunk's S is loaded before the current one is
 * stored (software pipelining of the latency-bound loop).
 *
 * Shapes (F32): states [NT, H, P, DS]; csl [NT, H]; chunk_off [N + 1] int
 * (first global chunk of each sequence); h0, ht [N, H, P, DS] (has_h0 /
 * has_ht; unused pointers may be any buffer). P DS is a multiple of 256.
 *
 * One work-item = 4 consecutive state elements (float4) of one
 * (sequence, head); coalesced. No local memory, no barriers. Global
 * (nblk WG N H), nblk = P DS / (4 WG), group = (n H + h) nblk + block;
 * local (WG).
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
void mamba2_state_passing_fwd(__global float *restrict states, __global const float *restrict csl,
                              __global const int *restrict chunk_off,
                              __global const float *restrict h0, __global float *restrict ht,
                              int H, int PDS, int has_h0, int has_ht)
{
    const int nblk = (PDS / 4 + WG - 1) / WG;
    const int nh   = (int)get_group_id(0) / nblk;
    const int e4   = ((int)get_group_id(0) - nh * nblk) * WG + (int)get_local_id(0);
    const int h    = nh % H;
    if (4 * e4 >= PDS)
        return;
    {
        const int   c0 = chunk_off[nh / H], nc = chunk_off[nh / H + 1] - c0;
        const ulong stride = (ulong)H * (ulong)PDS; /* between chunks */
        const ulong sbase = (ulong)nh * (ulong)PDS + 4 * (ulong)e4;
        ulong       at = ((ulong)c0 * (ulong)H + (ulong)h) * (ulong)PDS + 4 * (ulong)e4;
        float4      run = has_h0 ? vload4(0, h0 + sbase) : (float4)(0.0f);
        float4      s = nc > 0 ? vload4(0, states + at) : (float4)(0.0f);
        for (int ci = 0; ci < nc; ci++) {
            const float  d    = exp2(csl[(ulong)(c0 + ci) * (ulong)H + (ulong)h]);
            const float4 next = ci + 1 < nc ? vload4(0, states + at + stride) : (float4)(0.0f);
            vstore4(run, 0, states + at);
            run = fma((float4)(d), run, s);
            s   = next;
            at += stride;
        }
        if (has_ht)
            vstore4(run, 0, ht + sbase);
    }
}
