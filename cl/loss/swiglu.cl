/*
 * loss/swiglu.cl - the elementwise part of the SwiGLU MLP
 * y = W_down (silu(W_gate x) * (W_up x)) (ALGORITHM.md §3.1, §4.5); the
 * three products run through lib/ops/linear/gemm.c.
 *
 * With a = W_gate x, b = W_up x (each [M, F], flat n = M F elements),
 * s = sigmoid(a) = 1 / (1 + exp(-a)), silu(a) = a s:
 *   swiglu_fwd:  h = silu(a) * b                    (h may alias a)
 *   swiglu_bwd:  from dh = dL/dh:
 *                h  = silu(a) * b        (written when write_h != 0)
 *                db = dh * silu(a)
 *                da = dh * b * s * (1 + a (1 - s))  (d silu / da)
 *                (da may alias dh: each element is read before it is
 *                written, by the same work-item)
 * sigmoid is safe for any a: exp(-a) overflows to +inf for a < -88 and
 * 1 / inf = 0, so silu -> -0 and its derivative -> 0, never NaN.
 *
 * Work: a grid-stride loop over n = n_hi 2^31 + n_lo elements; any grid
 * works (the host caps it at WG * MAXG work-items, MAXG 4096 by default).
 * No barriers.
 *
 * Tuning macros (host plan and tuning spaces linear/swiglu_fwd, swiglu_bwd
 * in lib/ops/linear/swiglu.c):
 *   WG   work-items per group, a power of two the device allows (default 256)
 */
#include "gdn_common.clh"

#ifndef WG
#define WG 256
#endif

__kernel __attribute__((reqd_work_group_size(WG, 1, 1)))
void swiglu_fwd(__global const float *a, __global const float *b, __global float *h, int n_hi,
                int n_lo)
{
    const ulong n = ((ulong)n_hi << 31) + (ulong)n_lo;
    for (ulong i = get_global_id(0); i < n; i += get_global_size(0)) {
        const float x = a[i];
        const float s = 1.0f / (1.0f + exp(-x));
        h[i]          = x * s * b[i];
    }
}

__kernel __attribute__((reqd_work_group_size(WG, 1, 1)))
void swiglu_bwd(__global const float *a, __global const float *b, __global const float *dh,
                __global float *h, __global float *da, __global float *db, int n_hi, int n_lo,
                int write_h)
{
    const ulong n = ((ulong)n_hi << 31) + (ulong)n_lo;
    for (ulong i = get_global_id(0); i < n; i += get_global_size(0)) {
        const float x  = a[i];
        const float y  = b[i];
        const float d  = dh[i];
        const float s  = 1.0f / (1.0f + exp(-x));
        const float si = x * s;
        if (write_h)
            h[i] = si * y;
        db[i] = d * si;
        da[i] = d * y * (s * (1.0f + x * (1.0f - s)));
    }
}
