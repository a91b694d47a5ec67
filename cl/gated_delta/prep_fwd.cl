/*
 * gated_delta/prep_fwd.cl - forward stages F0 + F1 of the chunked gated delta
 * rule (docs/ALGORITHM.md §1.2, §2.2): in-op input preparation and the
 * chunk-local cumulative log gate.
 *
 * Math:
 *   F0  (QK_L2NORM)  y = x * rstd, rstd = 1 / sqrt(sum_d x_d^2 + eps), per row
 *       (GATE_IN_OP) gate = -exp(A_log[hv]) * softplus(a + dt_bias[hv]),
 *                    softplus(x) = x for x > 20, else log1p(exp(x))
 *       beta         b = sigmoid(b_raw) (BETA_SIGMOID), 2 sigmoid(b_raw)
 *                    (with NEG_EIGVAL), else b = beta (copied)
 *   F1  G_t = (1 / ln 2) * sum_{s <= t, s in the chunk of t} g_s
 *       (chunk-local inclusive cumsum, log2 domain; chunks never straddle
 *       sequences, so the chunk table gives every token's chunk)
 *
 * Shapes (F32, token-major): x, y [rows, D]; rstd [rows]; g, beta, gate, b,
 * G [T, HV]; A_log, dt_bias [HV]; chunks [NT] int4 (seq, first token,
 * length, chunk index in sequence).
 *
 * Kernels and what one work-group computes:
 *   gated_delta_prep_l2norm  NORM_ROWS rows; NORM_LANES work-items share a
 *       row (strided over d) and reduce the sum of squares in local memory.
 *       Local size (NORM_LANES, NORM_ROWS); global (NORM_LANES, rows).
 *   gated_delta_prep_gate    GATE_WG (chunk, value head) pairs, one per
 *       work-item, flattened as c * HV + hv (neighbouring work-items read
 *       neighbouring heads of one token); each walks its chunk's tokens.
 *       The option flags are a kernel argument (uniform branches) so that
 *       one program serves every flag combination.
 *
 * Tuning macros (#ifndef defaults; set by the prep plan in
 * lib/ops/gated_delta/chunk_fwd.c, prep_plan_default):
 *   NORM_LANES  work-items per row, a power of two in [1, 256] (default 32)
 *   NORM_ROWS   rows per work-group, >= 1, NORM_LANES * NORM_ROWS <= device
 *               max work-group size (default 8)
 *   GATE_WG     work-group size of the gate kernel, >= 1 (default 64)
 */
#include "gdn_common.clh"

#ifndef NORM_LANES
#define NORM_LANES 32
#endif
#ifndef NORM_ROWS
#define NORM_ROWS 8
#endif
#ifndef GATE_WG
#define GATE_WG 64
#endif
#define PREP_BLK 8 /* tokens whose gate and beta loads are issued together */

/* Flag bits as in gdn.h (GDN_GATED_DELTA_*). */
#define PREP_GATE_IN_OP   2
#define PREP_BETA_SIGMOID 4
#define PREP_NEG_EIGVAL   8

__kernel __attribute__((reqd_work_group_size(NORM_LANES, NORM_ROWS, 1)))
void gated_delta_prep_l2norm(__global const float *x, __global float *y, __global float *rstd,
                             int rows, int D, float eps)
{
    __local float part[NORM_ROWS][NORM_LANES];
    const int     lane = (int)get_local_id(0);
    const int     lr   = (int)get_local_id(1);
    const int     row  = (int)get_group_id(1) * NORM_ROWS + lr;
    const bool    ok   = row < rows;
    const ulong   base = (ulong)(ok ? row : 0) * (ulong)D;
    float         s    = 0.0f;

    if (ok)
        for (int d = lane; d < D; d += NORM_LANES) {
            const float xv = x[base + (ulong)d];
            s              = fma(xv, xv, s);
        }
    part[lr][lane] = s;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int w = NORM_LANES / 2; w > 0; w >>= 1) {
        if (lane < w)
            part[lr][lane] += part[lr][lane + w];
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    if (ok) {
        const float r = 1.0f / sqrt(part[lr][0] + eps);
        for (int d = lane; d < D; d += NORM_LANES)
            y[base + (ulong)d] = x[base + (ulong)d] * r;
        if (lane == 0)
            rstd[row] = r;
    }
}

static float prep_softplus(float x)
{
    return x > 20.0f ? x : log1p(exp(x));
}

__kernel __attribute__((reqd_work_group_size(GATE_WG, 1, 1)))
void gated_delta_prep_gate(__global const float *g, __global const float *beta,
                           __global const float *A_log, __global const float *dt_bias,
                           __global const int4 *chunks, __global float *gate_out,
                           __global float *b_out, __global float *G_out, int NT, int HV,
                           int flags)
{
    const int id = (int)get_global_id(0);
    if (id >= NT * HV)
        return;
    const int  c  = id / HV;
    const int  hv = id - c * HV;
    const int4 ch = chunks[c];
    float      A = 0.0f, dtb = 0.0f;
    float      cum = 0.0f;

    if (flags & PREP_GATE_IN_OP) {
        A   = -exp(A_log[hv]);
        dtb = dt_bias[hv];
    }
    /* Blocks of PREP_BLK tokens: a block's loads are all issued before its
     * stores (the compiler may not move a load above an earlier store to a
     * buffer that could alias it), so a work-item has 2 PREP_BLK loads in
     * flight instead of 2. Past the chunk's end they re-read its last token.
     * The sum is still taken token by token. */
    for (int i0 = 0; i0 < ch.z; i0 += PREP_BLK) {
        float gv[PREP_BLK], bv[PREP_BLK];
        for (int u = 0; u < PREP_BLK; u++) {
            const ulong at = (ulong)(ch.y + min(i0 + u, ch.z - 1)) * (ulong)HV + (ulong)hv;
            gv[u]          = g[at];
            bv[u]          = beta[at];
        }
        for (int u = 0; u < PREP_BLK && i0 + u < ch.z; u++) {
            const ulong at = (ulong)(ch.y + i0 + u) * (ulong)HV + (ulong)hv;
            float       x  = gv[u], y = bv[u];
            if (flags & PREP_GATE_IN_OP) {
                x            = A * prep_softplus(x + dtb);
                gate_out[at] = x;
            }
            if (flags & PREP_BETA_SIGMOID) {
                y = 1.0f / (1.0f + exp(-y));
                if (flags & PREP_NEG_EIGVAL)
                    y *= 2.0f;
            }
            b_out[at] = y;
            cum += x;
            G_out[at] = cum * GDN_RCP_LN2;
        }
    }
}
