/*
 * swa/bwd_prep.cl - first stage of the sliding-window attention backward:
 * delta_r = sum_d do[r][d] o[r][d] for every row r = (t, hq) (the softmax
 * Jacobian term, flash-attention 2's D_i).
 *
 * Shapes (F32): o, do [rows, D] (rows = T * Hq, token-major [T, Hq, D]);
 * delta [rows]. One work-item per row, reading it with vload4 (D is a
 * multiple of 16); 1-D NDRange over rows (rounded up; extra work-items
 * return). Cost O(T Hq D), negligible next to the attention stages.
 *
 * Tuning macros: none (D is a runtime argument). Work-group size:
 * prep_plan_default in lib/ops/swa/attn.c.
 */
__kernel void swa_bwd_prep(__global const float *o, __global const float *dout,
                           __global float *delta, int rows, int D)
{
    const long r = get_global_id(0);
    if (r >= rows)
        return;
    __global const float *a = o + (ulong)r * (ulong)D, *b = dout + (ulong)r * (ulong)D;
    float4 acc = (float4)(0.0f);
    for (int i = 0; i < D / 4; i++)
        acc = fma(vload4(i, a), vload4(i, b), acc);
    delta[r] = (acc.x + acc.y) + (acc.z + acc.w);
}
