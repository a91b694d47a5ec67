/*
 * mamba2/step.cl - Mamba2 decode step (mamba_ssm selective_state_update):
 * one token for each of N sequences, the state updated in place.
 *
 * Math, per sequence s and head h (group g = h / (H / G)):
 *   dt = min(max(softplus(dt_raw + dt_bias_h), dt_min), dt_max)
 *   a  = exp(-exp(A_log_h) dt)
 *   S  = a S + dt x B^T           (S [P, DS], in place)
 *   y  = S C + D_h x
 *
 * Shapes (F32): x, y [N, H, P]; dt_raw [N, H]; B, C [N, G, DS]; A_log,
 * dt_bias, D [H]; state [N, H, P, DS] (DS fastest). Each state element is
 * read and written by exactly one work-item.
 *
 * One work-group = RW rows of P of one (sequence, head), LN lanes per row
 * striding over DS in float4 units (coalesced; DS % 4 == 0); y is reduced
 * over the LN lanes through
 * local memory. Local memory RW (LN + 1) floats. Global
 * (LN RW ceil(P/RW) H N), group = (s H + h) ceil(P/RW) + row block; local
 * (LN RW).
 *
 * Tuning macros (#ifndef defaults; set by the step plan in
 * lib/ops/mamba2/plan.c):
 *   LN    lanes along DS: 8, 16 or 32 (default 32); any DS % 4 == 0
 *   RW    rows of P per group: 4, 8, 16 or 32 (default 256 / LN); any P
 */
#include "gdn_common.clh"
#include "gdn_mamba2_common.clh"

#ifndef LN
#define LN 32
#endif
#ifndef RW
#define RW 8
#endif

__kernel __attribute__((reqd_work_group_size(LN * RW, 1, 1)))
void mamba2_step(__global const float *x, __global const float *dt_raw,
                 __global const float *A_log, __global const float *dt_bias,
                 __global const float *B, __global const float *C, __global const float *D,
                 __global float *state, __global float *y, int H, int G, int P, int DS,
                 int has_bias, int has_D, float dt_min, float dt_max)
{
    __local float red[RW * (LN + 1)];
    const int     lid = (int)get_local_id(0);
    const int     tx = lid % LN, ty = lid / LN;
    const int     npb = (P + RW - 1) / RW;
    const int     sh_ = (int)get_group_id(0) / npb; /* s * H + h */
    const int     p = ((int)get_group_id(0) - sh_ * npb) * RW + ty;
    const int     h = sh_ % H, s = sh_ / H;
    const int     g = h / (H / G);
    const bool    valid = p < P;
    const ulong   sh = (ulong)s * (ulong)H + (ulong)h;
    const float   bias = has_bias ? dt_bias[h] : 0.0f;
    const float   dtv = gdn_m2_dt(dt_raw[sh] + bias, dt_min, dt_max);
    const float   a = exp(-exp(A_log[h]) * dtv);
    const ulong   bc = ((ulong)s * (ulong)G + (ulong)g) * (ulong)DS;
    float         xv = 0.0f, acc = 0.0f;

    if (valid) {
        const ulong sb = (sh * (ulong)P + (ulong)p) * (ulong)DS;
        xv             = x[sh * (ulong)P + (ulong)p];
        const float dx = dtv * xv;
        for (int n = 4 * tx; n < DS; n += 4 * LN) {
            const float4 hs = fma((float4)(a), vload4(0, state + sb + n),
                                  (float4)(dx) * vload4(0, B + bc + n));
            const float4 cc = vload4(0, C + bc + n);
            vstore4(hs, 0, state + sb + n);
            acc = fma(hs.x, cc.x, fma(hs.y, cc.y, fma(hs.z, cc.z, fma(hs.w, cc.w, acc))));
        }
    }
    red[ty * (LN + 1) + tx] = acc;
    barrier(CLK_LOCAL_MEM_FENCE);
    if (tx == 0 && valid) {
        float sum = 0.0f;
        for (int k = 0; k < LN; k++)
            sum += red[ty * (LN + 1) + k];
        y[sh * (ulong)P + (ulong)p] = has_D ? fma(D[h], xv, sum) : sum;
    }
}
