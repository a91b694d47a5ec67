/*
 * swa/rope.cl - rotary position embedding of sliding-window attention
 * (rotate-half convention, ALGORITHM.md §4.3), forward and backward, on up
 * to two tensors at once (q and k share the positions).
 *
 * Math, token t of sequence n at position p = pos_off[n] + (t - seq_off[n]),
 * pair i < D/2 of every head, angle a = p * base^(-2i/D):
 *     y_i       = x_i cos(a) - x_{i+D/2} sign sin(a)
 *     y_{i+D/2} = x_{i+D/2} cos(a) + x_i sign sin(a)
 * sign = +1 forward, -1 backward (the rotation is orthogonal: dx = R^T dy).
 * y may be x (in place): each work-item reads its two elements before it
 * writes them, and no two work-items touch the same element.
 *
 * Shapes (F32, token-major): x1, y1 [T, H1, D]; x2, y2 [T, H2, D] (H2 may be
 * 0: then x2, y2 are not touched); seq_off [N + 1] int; pos_off [N] int
 * (read only when has_pos); freq [D/2] float2 (hi, lo) of base^(-2i/D).
 *
 * One work-item = one (t, i) pair for every head of both tensors (the
 * angle's cos/sin are computed once and reused H1 + H2 times). The sequence
 * of t is found by binary search over seq_off. 1-D NDRange over T * D/2
 * (rounded up to the work-group size; extra work-items return).
 *
 * Tuning macros: none (D and the head counts are runtime arguments, so one
 * build serves every shape). Work-group size: rope_plan_default in
 * lib/ops/swa/rope.c.
 */
#include "gdn_common.clh"
#include "gdn_swa_rope.clh"

__kernel void swa_rope(__global const float *x1, __global float *y1, int H1,
                       __global const float *x2, __global float *y2, int H2,
                       __global const int *seq_off, int N, __global const int *pos_off,
                       int has_pos, __global const float2 *freq, int T, int D, float sign)
{
    const int  hd   = D / 2;
    const long gid  = get_global_id(0);
    if (gid >= (long)T * hd)
        return;
    const int t = (int)(gid / hd), i = (int)(gid - (long)t * hd);

    int lo = 0, hi = N;
    while (hi - lo > 1) {
        int mid = (lo + hi) >> 1;
        if (seq_off[mid] <= t)
            lo = mid;
        else
            hi = mid;
    }
    const int    pos = (has_pos ? pos_off[lo] : 0) + (t - seq_off[lo]);
    const float2 cs  = gdn_swa_rope_cs(pos, freq[i]);
    const float  c = cs.x, s = sign * cs.y;

    for (int h = 0; h < H1; h++) {
        ulong base = ((ulong)t * (ulong)H1 + (ulong)h) * (ulong)D + (ulong)i;
        float a = x1[base], b = x1[base + hd];
        y1[base]        = a * c - b * s;
        y1[base + hd] = b * c + a * s;
    }
    for (int h = 0; h < H2; h++) {
        ulong base = ((ulong)t * (ulong)H2 + (ulong)h) * (ulong)D + (ulong)i;
        float a = x2[base], b = x2[base + hd];
        y2[base]        = a * c - b * s;
        y2[base + hd] = b * c + a * s;
    }
}
