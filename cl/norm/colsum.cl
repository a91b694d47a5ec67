/*
 * norm/colsum.cl - deterministic column sums: out[m] = sum_{p < P} in[p * M + m]
 * for m < M. The second stage of every reduction over rows that must not
 * use atomics: the RMSNorm weight gradient (partials from norm/norm_bwd.cl)
 * and the conv weight and bias gradients (partials from conv/conv_bwd.cl).
 *
 * Shapes (F32): in [P, M] row-major, out [M].
 *
 * Work decomposition: a work-group of CT * PS work-items owns CT
 * consecutive columns (group g: columns g * CT ..); work-item (strip, col),
 * col fastest (coalesced), sums rows strip, strip + PS, strip + 2 PS, ... in
 * increasing order, then strip 0 adds the PS strip sums in increasing
 * order through local memory. The summation order depends only on (P, PS),
 * so results are bit-reproducible run to run.
 *
 * Local memory: CT * PS floats (the `red` argument).
 *
 * No tuning macros; the runtime plan values ct (columns per group, CT) and
 * ps (strips, PS) come from the space norm/colsum in lib/ops/norm/colsum.c
 * (on llvmpipe it keeps P / PS + PS under the loop cap).
 */
#include "gdn_common.clh"

__kernel void norm_colsum(__global const float *in, __global float *out, __local float *red,
                          int P, int M, int ct, int ps)
{
    const int lid   = (int)get_local_id(0);
    const int col   = lid % ct;
    const int strip = lid / ct;
    const int m     = (int)get_group_id(0) * ct + col;
    float     s     = 0.0f;

    if (m < M)
        for (int p = strip; p < P; p += ps)
            s += in[(ulong)p * (ulong)M + (ulong)m];
    red[lid] = s;
    barrier(CLK_LOCAL_MEM_FENCE);
    if (strip == 0 && m < M) {
        float t = 0.0f;
        for (int q = 0; q < ps; q++)
            t += red[q * ct + col];
        out[m] = t;
    }
}
