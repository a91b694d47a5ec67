/*
 * mamba2/cumsum_fwd.cl - forward stage 1 of the Mamba2 SSD scan (mamba_ssm
 * ssd_chunk_state.py _chunk_cumsum_fwd): dt and the chunk-local cumulative
 * log-decay.
 *
 * Math, per chunk (rows l < L, never straddling sequences) and head h:
 *   dt_l = min(max(softplus(dt_raw_l + dt_bias_h), dt_min), dt_max)
 *   cs_l = sum_{m <= l} max(dt_m A_h / ln 2, -1024),  A_h = -exp(A_log_h)
 *   (the floor only keeps cs finite: exp2(-1024) is 0 in fp32)
 * cs is in the log2 domain (later stages take exp2 of differences
 * cs_i - cs_j, i >= j, and of cs_last - cs_j, all <= 0) and restarts at
 * every chunk, so it never grows with T. csl[c, h] = cs of the chunk's last
 * row (its total decay, read by the state-passing scans).
 *
 * Shapes (F32): dt_raw, dt, cs [T, H]; csl [NT, H]; A_log, dt_bias [H];
 * chunks [NT] int4
 * (sequence, first token, length, chunk index in sequence).
 *
 * One work-item = one (chunk, head), looping over the chunk's rows; the
 * work-items of a group are consecutive heads, so each row is read and
 * written coalesced. No local memory, no barriers. Global
 * (ceil(H/WG) WG NT), group = chunk * ceil(H/WG) + head block; local (WG).
 *
 * Tuning macros (#ifndef defaults; set by the cumsum plan in
 * lib/ops/mamba2/plan.c):
 *   WG    work-items per group: 32, 64, 128 or 256 (default 64)
 */
#include "gdn_common.clh"
#include "gdn_mamba2_common.clh"

#ifndef WG
#define WG 64
#endif

__kernel __attribute__((reqd_work_group_size(WG, 1, 1)))
void mamba2_cumsum_fwd(__global const float *dt_raw, __global const float *A_log,
                       __global const float *dt_bias, __global const int4 *chunks,
                       __global float *dt_out, __global float *cs_out, __global float *csl,
                       int H, int has_bias,
                       float dt_min, float dt_max)
{
    const int hb = (H + WG - 1) / WG; /* head blocks */
    const int c  = (int)get_group_id(0) / hb;
    const int h  = ((int)get_group_id(0) - c * hb) * WG + (int)get_local_id(0);
    if (h >= H)
        return;
    {
        const int4  ch   = chunks[c];
        const float A2   = -exp(A_log[h]) * GDN_RCP_LN2;
        const float bias = has_bias ? dt_bias[h] : 0.0f;
        float       s    = 0.0f;
        for (int l = 0; l < ch.z; l++) {
            const ulong at = (ulong)(ch.y + l) * (ulong)H + (ulong)h;
            const float dt = gdn_m2_dt(dt_raw[at] + bias, dt_min, dt_max);
            s += fmax(dt * A2, M2_MIN_LOG2_DECAY);
            dt_out[at]     = dt;
            cs_out[at]     = s;
        }
        csl[(ulong)c * (ulong)H + (ulong)h] = s;
    }
}
