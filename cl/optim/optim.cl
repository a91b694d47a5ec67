/*
 * optim/optim.cl - the optimizer's element-wise kernels: one AdamW step,
 * the sum of squares of a tensor (gradient norm for clipping), in-place
 * scaling.
 *
 *   optim_adamw   (torch.optim.AdamW, amsgrad=False, single-tensor form)
 *       g = grad * gs
 *       p = p * decay                         decay = 1 - lr * wd
 *       m = lerp(m, g, omb1)                  omb1 = 1 - beta1 (PyTorch's
 *                                             lerp: two forms split at 0.5)
 *       v = v * b2 + omb2 * (g * g)           omb2 = 1 - beta2
 *       p = p - step_size * (m / (sqrt(v) / sbc2 + eps))
 *                                             step_size = lr / (1 - beta1^t)
 *                                             sbc2 = sqrt(1 - beta2^t)
 *     every scalar computed on the host in double (lib/model/optim/optim.c).
 *   optim_sumsq   partial[off + group] = sum of x[i]^2 over the elements of
 *                 this work-group's work-items
 *   optim_scale   x = x * s
 *
 * Shapes (F32, dense): each tensor has n = n_hi * 2^31 + n_lo elements (n
 * may exceed INT_MAX). p, g, m, v are distinct buffers.
 *
 * Work decomposition: grid-stride loops over quads of 4 elements (vload4 /
 * vstore4; buffers start 16-byte aligned), the last n % 4 elements by
 * work-item 0. Any global size and any work-group size work, except
 * optim_sumsq, whose work-group size must be a power of two (tree
 * reduction in local memory, `red`: one float per work-item).
 *
 * optim_sumsq order: work-item i (global id) sums the squares of quads i,
 * i + G, i + 2G, ... (G = global size) lane by lane with Kahan compensation,
 * then its 4 lanes as (x + y) + (z + w), work-item 0 adding the tail; the
 * group sums its work-items with a fixed binary tree. The order depends
 * only on n, G and the group size, so the partials have the same bits every
 * run. NaN/inf elements make the partial NaN or inf.
 *
 * No tuning macros; the plans (work-group size, number of groups) and their
 * tuning spaces (optim/adamw, optim/scale, optim/sumsq) are in
 * lib/model/optim/optim.c.
 */
#include "gdn_common.clh"

static float adamw_m(float m, float g, float b1, float omb1)
{
    /* PyTorch's lerp(m, g, w): w < 0.5 ? m + w (g - m) : g - (g - m) (1 - w) */
    return omb1 < 0.5f ? m + omb1 * (g - m) : g - (g - m) * b1;
}

__kernel void optim_adamw(__global float *p, __global const float *grad, __global float *m,
                          __global float *v, int n_hi, int n_lo, float gs, float decay, float b1,
                          float omb1, float b2, float omb2, float step_size, float sbc2, float eps)
{
    const ulong n  = ((ulong)n_hi << 31) + (ulong)n_lo;
    const ulong nq = n / 4;
    for (ulong q = get_global_id(0); q < nq; q += get_global_size(0)) {
        const float4 g  = vload4(q, grad) * gs;
        float4       pv = vload4(q, p) * decay;
        float4       mv = vload4(q, m);
        float4       vv = vload4(q, v);
        mv.x            = adamw_m(mv.x, g.x, b1, omb1);
        mv.y            = adamw_m(mv.y, g.y, b1, omb1);
        mv.z            = adamw_m(mv.z, g.z, b1, omb1);
        mv.w            = adamw_m(mv.w, g.w, b1, omb1);
        vv              = vv * b2 + omb2 * (g * g);
        pv              = pv - step_size * (mv / (sqrt(vv) / sbc2 + eps));
        vstore4(pv, q, p);
        vstore4(mv, q, m);
        vstore4(vv, q, v);
    }
    if (get_global_id(0) == 0)
        for (ulong i = nq * 4; i < n; i++) {
            const float g  = grad[i] * gs;
            float       pi = p[i] * decay;
            const float mi = adamw_m(m[i], g, b1, omb1);
            const float vi = v[i] * b2 + omb2 * (g * g);
            pi             = pi - step_size * (mi / (sqrt(vi) / sbc2 + eps));
            p[i]           = pi;
            m[i]           = mi;
            v[i]           = vi;
        }
}

__kernel void optim_sumsq(__global const float *x, int n_hi, int n_lo, __global float *partial,
                          int off, __local float *red)
{
    const ulong n   = ((ulong)n_hi << 31) + (ulong)n_lo;
    const ulong nq  = n / 4;
    const int   lid = (int)get_local_id(0);
    const int   wg  = (int)get_local_size(0);
    float4      s = (float4)(0.0f), c = (float4)(0.0f);
    float       t;

    for (ulong q = get_global_id(0); q < nq; q += get_global_size(0)) {
        const float4 a  = vload4(q, x);
        const float4 y  = a * a - c;
        const float4 sn = s + y;
        c               = (sn - s) - y;
        s               = sn;
    }
    s = s - c;
    t = (s.x + s.y) + (s.z + s.w);
    if (get_global_id(0) == 0)
        for (ulong i = nq * 4; i < n; i++)
            t += x[i] * x[i];
    red[lid] = t;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int h = wg / 2; h > 0; h /= 2) {
        if (lid < h)
            red[lid] += red[lid + h];
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    if (lid == 0)
        partial[off + (int)get_group_id(0)] = red[0];
}

__kernel void optim_scale(__global float *x, int n_hi, int n_lo, float s)
{
    const ulong n  = ((ulong)n_hi << 31) + (ulong)n_lo;
    const ulong nq = n / 4;
    for (ulong q = get_global_id(0); q < nq; q += get_global_size(0))
        vstore4(vload4(q, x) * s, q, x);
    if (get_global_id(0) == 0)
        for (ulong i = nq * 4; i < n; i++)
            x[i] *= s;
}
