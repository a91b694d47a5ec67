/*
 * norm/elementwise.cl - element-wise layer ops: activations and their
 * backward, residual add.
 *
 *   act 0  SiLU      y = x sigmoid(x)            dx = dy s (1 + x (1 - s))
 *       1  sigmoid   y = s = 1 / (1 + exp(-x))    dx = dy s (1 - s)
 *       2  softplus  y = x > 20 ? x : log1p(exp(x))  (PyTorch, beta 1,
 *                    threshold 20)               dx = x > 20 ? dy : dy s
 *   add            y = a + b
 * with s = sigmoid(x). Every formula is finite for every finite x (exp
 * overflowing to +inf gives s = 0, silu = -0, never NaN).
 *
 * Shapes (F32, dense): every tensor has n = n_hi * 2^31 + n_lo elements
 * (so n may exceed INT_MAX). y may alias x, dx may alias dy, y may alias a
 * or b: each element is read and written by one work-item, reads first.
 *
 * Work decomposition: a grid-stride loop over quads of 4 elements (float4
 * loads and stores; buffers start 16-byte aligned), the last partial quad
 * element by element. Any global size works; the host launches
 * min(quads, GPC * compute units * WG) work-items in groups of WG (on
 * llvmpipe, whose work-items stop after 65535 loop iterations, the spaces
 * keep quads / global under half of that).
 *
 * No tuning macros (the operation is a runtime argument, so one build
 * serves every activation). WG and GPC: the spaces norm/act_fwd,
 * norm/act_bwd and norm/add in lib/ops/norm/elementwise.c.
 */
#include "gdn_common.clh"

#define ACT_SILU     0
#define ACT_SIGMOID  1
#define ACT_SOFTPLUS 2

static float act_fwd(int act, float x)
{
    if (act == ACT_SOFTPLUS)
        return x > 20.0f ? x : log1p(exp(x));
    {
        const float s = 1.0f / (1.0f + exp(-x));
        return act == ACT_SILU ? x * s : s;
    }
}

static float act_bwd(int act, float x, float dy)
{
    const float s = 1.0f / (1.0f + exp(-x));
    if (act == ACT_SOFTPLUS)
        return x > 20.0f ? dy : dy * s;
    if (act == ACT_SILU)
        return dy * s * (1.0f + x * (1.0f - s));
    return dy * s * (1.0f - s);
}

__kernel void elementwise_act_fwd(__global const float *x, __global float *y, int n_hi, int n_lo,
                                  int act)
{
    const ulong n  = ((ulong)n_hi << 31) + (ulong)n_lo;
    const ulong nq = n / 4;
    for (ulong q = get_global_id(0); q < nq; q += get_global_size(0)) {
        float4 v = vload4(q, x);
        v.x      = act_fwd(act, v.x);
        v.y      = act_fwd(act, v.y);
        v.z      = act_fwd(act, v.z);
        v.w      = act_fwd(act, v.w);
        vstore4(v, q, y);
    }
    if (get_global_id(0) == 0)
        for (ulong i = nq * 4; i < n; i++)
            y[i] = act_fwd(act, x[i]);
}

__kernel void elementwise_act_bwd(__global const float *x, __global const float *dy,
                                  __global float *dx, int n_hi, int n_lo, int act)
{
    const ulong n  = ((ulong)n_hi << 31) + (ulong)n_lo;
    const ulong nq = n / 4;
    for (ulong q = get_global_id(0); q < nq; q += get_global_size(0)) {
        const float4 xv = vload4(q, x);
        float4       d  = vload4(q, dy);
        d.x             = act_bwd(act, xv.x, d.x);
        d.y             = act_bwd(act, xv.y, d.y);
        d.z             = act_bwd(act, xv.z, d.z);
        d.w             = act_bwd(act, xv.w, d.w);
        vstore4(d, q, dx);
    }
    if (get_global_id(0) == 0)
        for (ulong i = nq * 4; i < n; i++)
            dx[i] = act_bwd(act, x[i], dy[i]);
}

__kernel void elementwise_add(__global const float *a, __global const float *b, __global float *y,
                              int n_hi, int n_lo)
{
    const ulong n  = ((ulong)n_hi << 31) + (ulong)n_lo;
    const ulong nq = n / 4;
    for (ulong q = get_global_id(0); q < nq; q += get_global_size(0))
        vstore4(vload4(q, a) + vload4(q, b), q, y);
    if (get_global_id(0) == 0)
        for (ulong i = nq * 4; i < n; i++)
            y[i] = a[i] + b[i];
}
