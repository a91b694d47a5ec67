/*
 * mamba2/reduce_bwd.cl - deterministic reductions of the Mamba2 SSD
 * backward (no atomics; fixed summation order):
 *
 *   mamba2_group_reduce:  dst[t, g, n] = sum_{k < H/G} src[t, g (H/G) + k, n]
 *       (per-head dB / dC of dbc_bwd.cl -> the group's gradient). Shapes
 *       src [T, H, DS], dst [T, G, DS]. One work-item per dst element;
 *       global (round_up(T G DS, WG)), local (WG).
 *   mamba2_param_reduce:  over the chunks c = 0 .. NT-1 in order,
 *       dA_log[h] = A_h sum_c pparam[c, h, 0]   (A_h = -exp(A_log_h))
 *       ddt_bias[h] = sum_c pparam[c, h, 1]
 *       dD[h]       = sum_c pparam[c, h, 2]
 *       each written only when its store flag is set. One work-item per
 *       head; global (round_up(H, WG)), local (WG).
 *
 * Tuning macros (#ifndef defaults; set by the reduce plan in
 * lib/ops/mamba2/plan.c):
 *   WG    work-items per group: 64, 128 or 256 (default 256)
 */
#include "gdn_common.clh"

#ifndef WG
#define WG 256
#endif

__kernel __attribute__((reqd_work_group_size(WG, 1, 1)))
void mamba2_group_reduce(__global const float *src, __global float *dst, int T, int H, int G,
                         int DS)
{
    const ulong e = get_global_id(0);
    const ulong total = (ulong)T * (ulong)G * (ulong)DS;
    if (e >= total)
        return;
    {
        const int   hpg = H / G;
        const ulong n   = e % (ulong)DS;
        const ulong tg  = e / (ulong)DS; /* t * G + g */
        const ulong t = tg / (ulong)G, g = tg % (ulong)G;
        const ulong base = (t * (ulong)H + g * (ulong)hpg) * (ulong)DS + n;
        float       s    = 0.0f;
        for (int k = 0; k < hpg; k++)
            s += src[base + (ulong)k * DS];
        dst[e] = s;
    }
}

__kernel __attribute__((reqd_work_group_size(WG, 1, 1)))
void mamba2_param_reduce(__global const float *pparam, __global const float *A_log,
                         __global float *dA_log, __global float *ddt_bias, __global float *dD,
                         int NT, int H, int store_dA, int store_dbias, int store_dD)
{
    const int h = (int)get_global_id(0);
    if (h >= H)
        return;
    {
        float sA = 0.0f, sB = 0.0f, sD = 0.0f;
        for (int c = 0; c < NT; c++) {
            const ulong at = ((ulong)c * (ulong)H + (ulong)h) * 3;
            sA += pparam[at];
            sB += pparam[at + 1];
            sD += pparam[at + 2];
        }
        if (store_dA)
            dA_log[h] = -exp(A_log[h]) * sA;
        if (store_dbias)
            ddt_bias[h] = sB;
        if (store_dD)
            dD[h] = sD;
    }
}
