/*
 * loss/cross_entropy.cl - softmax cross-entropy over a vocabulary, forward
 * and backward.
 *
 * Math, per row r of logits x [M, V] with target t_r (ignored when
 * t_r == ignore_index):
 *   lse_r  = m_r + log(sum_j exp(x_rj - m_r)),   m_r = max_j x_rj
 *   loss_r = (m_r - x_r,t) + log(sum_j exp(x_rj - m_r))   (= lse_r - x_r,t,
 *            written so that a confident row keeps its small loss accurate)
 *   loss   = sum_r loss_r / count (mean) or sum_r loss_r (SUM), count =
 *            #{r : t_r != ignore_index}; 0 when count == 0
 *   dx_rj  = (exp(x_rj - lse_r) - [j == t_r]) * scale,
 *            scale = dloss / count (mean) or dloss (sum); 0 rows when ignored
 * A target outside [0, V) that is not ignore_index gives a NaN row loss and
 * a NaN gradient row.
 *
 * The sum of exponentials is taken in one pass with a running maximum per
 * work-item (s <- s exp(m - x) + 1 when x > m, else s += exp(x - m)), then
 * the (m, s) pairs are merged in a fixed tree: all in fp32, never exp of a
 * positive argument, so logits of any magnitude are safe. -inf logits
 * contribute 0 (they are skipped, not exp'd as exp(-inf - -inf) = NaN); a NaN
 * logit makes the row NaN.
 *
 * Kernels:
 *   cross_entropy_fwd        one group per row (groups = M): lse[r], row_loss[r].
 *   cross_entropy_reduce     ONE group: loss[0] and count[0] from row_loss and
 *                            the targets (fixed-order sum: deterministic).
 *   cross_entropy_bwd_scale  ONE group: scale[0] from the targets and dloss.
 *   cross_entropy_bwd        group g: row g / nb, columns [(g % nb) WG PER,
 *                            + WG PER), PER per work-item, stride WG
 *                            (coalesced); groups = M * nb. dlogits may alias
 *                            logits (each element is read, then written, by
 *                            one work-item).
 * Offsets into big buffers are ulong; M, V < 2^31. Barriers only in the
 * reductions, reached by every work-item.
 *
 * Tuning macros (host plans and tuning spaces linear/ce_fwd, ce_reduce,
 * ce_bwd_scale, ce_bwd in lib/ops/linear/cross_entropy.c):
 *   WG   work-items per group, a power of two the device allows (default 256)
 *   PER  elements per work-item in cross_entropy_bwd, >= 1 (default 4)
 */
#include "gdn_common.clh"

#ifndef WG
#define WG 256
#endif
#ifndef PER
#define PER 4
#endif

/* Merge the partial (m2, s2) into (m, s): s = sum exp(x - m) over both. */
static inline void lse_merge(float *m, float *s, float m2, float s2)
{
    const float mn = fmax(*m, m2);
    if (mn == -INFINITY) { /* both empty or all -inf: keep NaN if any */
        *s = *s + s2;
        return;
    }
    *s = *s * exp(*m - mn) + s2 * exp(m2 - mn);
    *m = mn;
}

/* Work-group reduction of (m, s) pairs; every work-item gets the result. */
static inline void lse_reduce(__local float *lm, __local float *ls, float *m, float *s)
{
    const int lid = (int)get_local_id(0);
    lm[lid]       = *m;
    ls[lid]       = *s;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int h = WG / 2; h > 0; h >>= 1) {
        if (lid < h) {
            float m1 = lm[lid], s1 = ls[lid];
            lse_merge(&m1, &s1, lm[lid + h], ls[lid + h]);
            lm[lid] = m1;
            ls[lid] = s1;
        }
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    *m = lm[0];
    *s = ls[0];
}

__kernel __attribute__((reqd_work_group_size(WG, 1, 1)))
void cross_entropy_fwd(__global const float *logits, __global const int *targets,
                       __global float *lse, __global float *row_loss, int V, int ignore_index)
{
    __local float               lm[WG], ls[WG];
    const int                   lid = (int)get_local_id(0);
    const ulong                 r   = get_group_id(0);
    __global const float *const row = logits + r * (ulong)V;
    float                       m = -INFINITY, s = 0.0f;

    for (int j = lid; j < V; j += WG) {
        const float x = row[j];
        if (x > m) {
            s = s * exp(m - x) + 1.0f;
            m = x;
        } else if (x != -INFINITY) {
            s += exp(x - m); /* x <= m, or NaN (propagates) */
        }
    }
    lse_reduce(lm, ls, &m, &s);
    if (lid == 0) {
        const int   t  = targets[r];
        const float ln = log(s);
        float       loss;
        if (t == ignore_index)
            loss = 0.0f;
        else if (t < 0 || t >= V)
            loss = NAN;
        else
            loss = (m - row[t]) + ln;
        lse[r]      = m + ln;
        row_loss[r] = loss;
    }
}

__kernel __attribute__((reqd_work_group_size(WG, 1, 1)))
void cross_entropy_reduce(__global const float *row_loss, __global const int *targets, int M,
                          int ignore_index, int sum_mode, __global float *loss,
                          __global int *count)
{
    __local float lsum[WG];
    __local int   lcnt[WG];
    const int     lid = (int)get_local_id(0);
    float         s   = 0.0f;
    int           c   = 0;

    for (int r = lid; r < M; r += WG) {
        s += row_loss[r];
        c += targets[r] != ignore_index ? 1 : 0;
    }
    lsum[lid] = s;
    lcnt[lid] = c;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int h = WG / 2; h > 0; h >>= 1) {
        if (lid < h) {
            lsum[lid] += lsum[lid + h];
            lcnt[lid] += lcnt[lid + h];
        }
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    if (lid == 0) {
        const int n = lcnt[0];
        loss[0]     = sum_mode ? lsum[0] : (n > 0 ? lsum[0] / (float)n : 0.0f);
        count[0]    = n;
    }
}

__kernel __attribute__((reqd_work_group_size(WG, 1, 1)))
void cross_entropy_bwd_scale(__global const int *targets, int M, int ignore_index, int sum_mode,
                             __global const float *dloss, int has_dloss, __global float *scale)
{
    __local int lcnt[WG];
    const int   lid = (int)get_local_id(0);
    int         c   = 0;

    for (int r = lid; r < M; r += WG)
        c += targets[r] != ignore_index ? 1 : 0;
    lcnt[lid] = c;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int h = WG / 2; h > 0; h >>= 1) {
        if (lid < h)
            lcnt[lid] += lcnt[lid + h];
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    if (lid == 0) {
        const float d = has_dloss ? dloss[0] : 1.0f;
        const int   n = lcnt[0];
        scale[0]      = sum_mode ? d : (n > 0 ? d / (float)n : 0.0f);
    }
}

__kernel __attribute__((reqd_work_group_size(WG, 1, 1)))
void cross_entropy_bwd(__global const float *logits, __global const int *targets,
                       __global const float *lse, __global const float *scale,
                       __global float *dlogits, int V, int nb, int ignore_index)
{
    const ulong g   = get_group_id(0);
    const ulong r   = g / (ulong)nb;
    const int   j0  = (int)(g % (ulong)nb) * (WG * PER) + (int)get_local_id(0);
    const int   t   = targets[r];
    const bool  ign = t == ignore_index;
    const bool  bad = !ign && (t < 0 || t >= V);
    const float L   = lse[r];
    const float sc  = scale[0];
    const ulong base = r * (ulong)V;

    for (int i = 0; i < PER; i++) {
        const int j = j0 + i * WG;
        if (j < V) {
            const float x   = logits[base + (ulong)j];
            const float arg = ign ? 0.0f : x - L; /* mask before exp */
            const float p   = exp(arg);
            const float gr  = (p - (j == t ? 1.0f : 0.0f)) * sc;
            dlogits[base + (ulong)j] = ign ? 0.0f : (bad ? NAN : gr);
        }
    }
}
