/*
 * mamba2/dt_bwd.cl - the scalar end of the Mamba2 SSD backward (mamba_ssm
 * ssd_chunk_state.py _chunk_cumsum_bwd): gradient of the chunk-local
 * cumulative log-decay -> per-token decay -> dt -> dt_raw, and per-chunk
 * partial sums of the per-head parameter gradients.
 *
 * Math, per chunk c (rows l < L), head h, A = -exp(A_log_h), with the
 * per-token partials of part[slot][T][H] (each group of slots summed in
 * slot order). The gradient of the chunk-local cumsum cs is
 *   dcs_l = po_l + sum_{jt <= l/64} prow_l - sum_{l/64 <= it <= (L-1)/64}
 *           pcol_l - pq_l   [+ sum_j pq_j + sum_blk ppass  at l = L - 1]
 * and the per-token decay a_l = dt_l A gets da_l = sum_{m >= l} dcs_m. The
 * pq terms are summed in their closed form sum_{j < l} pq_j (an exclusive
 * prefix sum: the large pq of the last rows would otherwise be added and
 * subtracted again, losing the small true da under strong decay):
 *   da_l  = sum_{m >= l} (po_m + prow_m - pcol_m) + sum_{j < l} pq_j
 *           + sum_blk ppass
 *   ddt_l = px_l + A da_l      (A da_l and dt_l da_l left out where the
 *                               log decay was floored, see cumsum_fwd.cl)
 *   ddt_raw_l = ddt_l d dt / d v (v = dt_raw_l + dt_bias_h; 0 if clamped)
 *   pparam[c, h] = (sum_l dt_l da_l, sum_l ddt_raw_l, sum_l pd_l)
 * (dA_log = A sum dt da; ddt_bias = sum ddt_raw; dD = sum dy . x; summed
 * over chunks by reduce_bwd.cl in chunk order: no atomics.)
 * Two passes over the rows: the reverse suffix sums are parked in the
 * first po slot of each token (read before it is overwritten), then a
 * forward pass adds the prefix sums.
 *
 * Shapes (F32): part [slots, T, H] (its first po slot is overwritten); ppass [NT, H, nblk]; dt, dt_raw,
 * ddt_raw [T, H]; A_log, dt_bias [H]; pparam [NT, H, 3]; chunks [NT] int4.
 *
 * One work-item = one (chunk, head), looping over the chunk's rows in
 * reverse; work-items of a group are consecutive heads (coalesced). No
 * local memory, no barriers. Global (ceil(H/WG) WG NT), group =
 * chunk * ceil(H/WG) + head block; local (WG).
 *
 * Tuning macros (#ifndef defaults; set by the dt_bwd plan in
 * lib/ops/mamba2/plan.c):
 *   WG    work-items per group: 32, 64, 128 or 256 (default 64)
 */
#include "gdn_common.clh"
#include "gdn_mamba2_common.clh"

#ifndef WG
#define WG 64
#endif

__kernel __attribute__((reqd_work_group_size(WG, 1, 1)))
void mamba2_dt_bwd(__global float *part, __global const float *ppass,
                   __global const float *dt, __global const float *dt_raw,
                   __global const float *A_log, __global const float *dt_bias,
                   __global const int4 *chunks, __global float *ddt_raw, __global float *pparam,
                   int T, int H, int nblk, int spx, int spq, int spd, int nP, int spo, int nN,
                   int spr, int spc, int has_bias, int store_ddt, float dt_min, float dt_max)
{
    const int hb = (H + WG - 1) / WG; /* head blocks */
    const int c  = (int)get_group_id(0) / hb;
    const int h  = ((int)get_group_id(0) - c * hb) * WG + (int)get_local_id(0);
    if (h >= H)
        return;
    {
        const int4  ch = chunks[c];
        const int   first = ch.y, L = ch.z;
        const ulong TH = (ulong)T * (ulong)H;
        const float A = -exp(A_log[h]);
        const float bias = has_bias ? dt_bias[h] : 0.0f;
        const int   lastt = (L - 1) / M2_RT;
        float       tail = 0.0f, run = 0.0f, sA = 0.0f, sB = 0.0f, sD = 0.0f;

        for (int b = 0; b < nblk; b++)
            tail += ppass[((ulong)c * (ulong)H + (ulong)h) * (ulong)nblk + (ulong)b];
        /* pass 1 (reverse): suffix sums of po + prow - pcol -> part[spo] */
        for (int l = L - 1; l >= 0; l--) {
            const ulong tok = (ulong)(first + l) * (ulong)H + (ulong)h;
            const int   tl  = l / M2_RT;
            float       dcs = 0.0f;
            for (int s = 0; s < nN; s++)
                dcs += part[(ulong)(spo + s) * TH + tok];
            for (int s = 0; s <= tl; s++)
                dcs += part[(ulong)(spr + s) * TH + tok];
            for (int s = tl; s <= lastt; s++)
                dcs -= part[(ulong)(spc + s) * TH + tok];
            run += dcs;
            part[(ulong)spo * TH + tok] = run;
        }
        /* pass 2 (forward): prefix sums of pq, then dt, dt_raw, sums */
        run = 0.0f;
        for (int l = 0; l < L; l++) {
            const ulong tok = (ulong)(first + l) * (ulong)H + (ulong)h;
            float       q = 0.0f, px = 0.0f, pd = 0.0f;
            for (int s = 0; s < nP; s++) {
                q += part[(ulong)(spq + s) * TH + tok];
                px += part[(ulong)(spx + s) * TH + tok];
                pd += part[(ulong)(spd + s) * TH + tok];
            }
            {
                const float da  = part[(ulong)spo * TH + tok] + run + tail;
                const float dtv = dt[tok];
                const bool  fl  = dtv * A * GDN_RCP_LN2 < M2_MIN_LOG2_DECAY;
                const float ddt = fl ? px : fma(A, da, px);
                const float ddr = ddt * gdn_m2_ddt(dt_raw[tok] + bias, dt_min, dt_max);
                if (store_ddt)
                    ddt_raw[tok] = ddr;
                sA = fl ? sA : fma(dtv, da, sA);
                sB += ddr;
                sD += pd;
            }
            run += q; /* exclusive prefix: pq_l counts from row l + 1 on */
        }
        {
            const ulong at = ((ulong)c * (ulong)H + (ulong)h) * 3;
            pparam[at]     = sA;
            pparam[at + 1] = sB;
            pparam[at + 2] = sD;
        }
    }
}
