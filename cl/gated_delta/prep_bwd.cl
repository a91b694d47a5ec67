/*
 * gated_delta/prep_bwd.cl - backward stages B7-B9 and the GVA reduction
 * (ALGORITHM.md 2.3; fla chunk_local_cumsum(reverse), gdn_gate_bwd_kernel,
 * l2norm_bwd, fused beta-sigmoid backward).
 *
 * gated_delta_gate_bwd (B7, B8, B9 for beta) - one work-group of 64 per
 * (chunk, value head): global (64, NT, HV), local (64, 1, 1).
 *     dg_t = sum_{i >= t in chunk} dGsum_i          (reverse chunk-local cumsum;
 *            w.r.t. the natural-log gate: see "Why no scale on dg")
 *     GATE_IN_OP: x = a_t + dt_bias;  da_t = dg_t (-exp(A_log)) sigmoid(x);
 *            part[c][hv] = (sum_t dg_t gate_t, sum_t da_t) over the chunk
 *     dg_out = da (GATE_IN_OP) or dg
 *     dbeta_out = db_used * m sigmoid(b) (1 - sigmoid(b)) (BETA_SIGMOID,
 *            m = 2 with NEG_EIGVAL) or db_used
 *   Shapes: dGsum, a/g, gate, b, db_used, dg_out, dbeta_out [T, HV];
 *   A_log, dt_bias [HV]; part [NT, HV, 2].
 *
 * gated_delta_gate_param_bwd (B8 reductions) - one work-group of RWG per
 * value head: global (RWG, HV), local (RWG, 1). dA_log[hv] = sum_c part[c][hv][0],
 * ddt_bias[hv] = sum_c part[c][hv][1]: strided sums then a tree in local
 * memory, so the result does not depend on scheduling (no atomics).
 *
 * gated_delta_qk_bwd (GVA sum + B9 L2-norm backward) - QROWS rows of 16
 * lanes per work-group: global (16, ceil(T*H / QROWS) * QROWS), local
 * (16, QROWS). Row r = (t, h) of dst [T, H, K]:
 *     d = sum_{g < grp} src[t][h*grp + g][:]      (src [T, HV, K], grp = HV/H)
 *     l2norm: dst = (d - (d . y) y) rstd          (y, rstd of the forward)
 *     else:   dst = d
 *
 * Tuning macros (set by prepb_plan in lib/ops/gated_delta/chunk_bwd.c):
 *   K_DIM  key head dim (multiple of 16, <= 256)
 *   RWG    work-group size of gate_param_bwd, a power of two (default 256)
 *   QROWS  rows per work-group of qk_bwd (default 16; 16*QROWS <= device max)
 */
#include "gdn_common.clh"

#ifndef K_DIM
#    define K_DIM 64
#endif
#ifndef RWG
#    define RWG 256
#endif
#ifndef QROWS
#    define QROWS 16
#endif

#define CH    64
#define LANES 16

#if K_DIM % LANES != 0 || (RWG & (RWG - 1)) != 0
#    error "prep_bwd.cl: illegal tuning values"
#endif

static float gdn_sigmoid(float x)
{
    if (x >= 0.0f)
        return 1.0f / (1.0f + exp(-x));
    const float e = exp(x);
    return e / (1.0f + e);
}

__kernel __attribute__((reqd_work_group_size(CH, 1, 1))) void
gated_delta_gate_bwd(__global const int4 *chunks, __global const float *dGs,
                     __global const float *graw, __global const float *gate,
                     __global const float *A_log, __global const float *dt_bias,
                     __global const float *braw, __global const float *dbu,
                     __global float *dg_out, __global float *db_out, __global float *part,
                     int HV, int gate_in_op, int beta_sigmoid, int neg_eigval, int write_dg,
                     int write_db)
{
    __local float sD[CH];
    __local float sR[2][CH];

    const int   i = (int)get_local_id(0);
    const int   c = (int)get_group_id(1), hv = (int)get_group_id(2);
    const int4  e = chunks[c];
    const int   t0 = e.y, L = e.z;
    const bool  on = i < L;
    const ulong o  = (ulong)(t0 + i) * HV + hv;

    sD[i] = on ? dGs[o] : 0.0f;
    barrier(CLK_LOCAL_MEM_FENCE);
    float dg = 0.0f;
    for (int j = CH - 1; j >= i; j--) /* fixed order: last row first */
        dg += sD[j];

    float r0 = 0.0f, r1 = 0.0f;
    if (gate_in_op) {
        if (on) {
            const float x  = graw[o] + dt_bias[hv];
            const float da = dg * -exp(A_log[hv]) * gdn_sigmoid(x);
            r0             = dg * gate[o];
            r1             = da;
            dg             = da;
        }
        sR[0][i] = r0;
        sR[1][i] = r1;
    }
    if (on && write_dg)
        dg_out[o] = dg;
    if (on && write_db) {
        float d = dbu[o];
        if (beta_sigmoid) {
            const float s = gdn_sigmoid(braw[o]);
            d *= (neg_eigval ? 2.0f : 1.0f) * s * (1.0f - s);
        }
        db_out[o] = d;
    }
    /* chunk partials of dA_log and ddt_bias: a fixed tree */
    for (int w = CH / 2; w > 0; w >>= 1) {
        barrier(CLK_LOCAL_MEM_FENCE);
        if (gate_in_op && i < w) {
            sR[0][i] += sR[0][i + w];
            sR[1][i] += sR[1][i + w];
        }
    }
    if (gate_in_op && i == 0) {
        part[((ulong)c * HV + hv) * 2 + 0] = sR[0][0];
        part[((ulong)c * HV + hv) * 2 + 1] = sR[1][0];
    }
}

__kernel __attribute__((reqd_work_group_size(RWG, 1, 1))) void
gated_delta_gate_param_bwd(__global const float *part, __global float *dA_log,
                           __global float *ddt_bias, int HV, int NT, int write_A,
                           int write_dt)
{
    __local float sR[2][RWG];
    const int     i = (int)get_local_id(0), hv = (int)get_group_id(1);
    float         s0 = 0.0f, s1 = 0.0f;
    for (int c = i; c < NT; c += RWG) {
        s0 += part[((ulong)c * HV + hv) * 2 + 0];
        s1 += part[((ulong)c * HV + hv) * 2 + 1];
    }
    sR[0][i] = s0;
    sR[1][i] = s1;
    for (int w = RWG / 2; w > 0; w >>= 1) {
        barrier(CLK_LOCAL_MEM_FENCE);
        if (i < w) {
            sR[0][i] += sR[0][i + w];
            sR[1][i] += sR[1][i + w];
        }
    }
    if (i == 0) {
        if (write_A)
            dA_log[hv] = sR[0][0];
        if (write_dt)
            ddt_bias[hv] = sR[1][0];
    }
}

__kernel __attribute__((reqd_work_group_size(LANES, QROWS, 1))) void
gated_delta_qk_bwd(__global const float *src, __global const float *y,
                   __global const float *rstd, __global float *dst, int rows, int grp,
                   int l2norm)
{
    __local float sP[QROWS][LANES];

    const int  lx = (int)get_local_id(0), ly = (int)get_local_id(1);
    const int  r  = (int)get_group_id(1) * QROWS + ly;
    const bool on = r < rows;
    float      d[K_DIM / LANES];
    float      dot = 0.0f;

    for (int j = 0; j < K_DIM / LANES; j++) {
        const int col = lx + j * LANES;
        float     s   = 0.0f;
        if (on)
            for (int g = 0; g < grp; g++)
                s += src[((ulong)r * grp + g) * K_DIM + col];
        d[j] = s;
        if (on && l2norm)
            dot = fma(s, y[(ulong)r * K_DIM + col], dot);
    }
    sP[ly][lx] = dot;
    barrier(CLK_LOCAL_MEM_FENCE);
    if (!on)
        return;
    dot = 0.0f;
    for (int x = 0; x < LANES; x++)
        dot += sP[ly][x];
    const float rs = l2norm ? rstd[r] : 1.0f;
    for (int j = 0; j < K_DIM / LANES; j++) {
        const ulong off = (ulong)r * K_DIM + lx + j * LANES;
        dst[off]        = l2norm ? (d[j] - dot * y[off]) * rs : d[j];
    }
}
