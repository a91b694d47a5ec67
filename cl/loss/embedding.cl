/*
 * loss/embedding.cl - token embedding: a gather forward and a deterministic
 * scatter-add backward (a counting sort of the token positions by id on the
 * device, then one ordered sum per table row; no float atomics).
 *
 * Shapes: table, dtable [V, D] (V = vocab); ids [T] int32; y, dy [T, D].
 *
 *   embedding_fwd        y[t, :] = (acc ? y[t, :] : 0) + table[ids[t], :],
 *                        NaN for ids outside [0, V). Group: WG columns of
 *                        one token; groups = T * ceil(D / WG).
 *   Backward, in order (the host zeroes `counts` first):
 *   embedding_bwd_count  counts[v] = #{t : ids[t] = v} (integer atomic_inc:
 *                        the result does not depend on the order). Any grid
 *                        (grid-stride loop).
 *   embedding_bwd_scan   start[v] = sum_{u < v} counts[u], start[V] = total;
 *                        counts[] = 0 again (it becomes the fill cursor).
 *                        ONE group: work-item i owns a contiguous chunk of
 *                        ceil(V / WG) ids; chunk sums are scanned serially by
 *                        work-item 0 (WG additions).
 *   embedding_bwd_fill   tmp[start[v] + atomic_inc(&counts[v])] = t: every
 *                        token lands in its id's bucket, in arbitrary order
 *                        within the bucket. Any grid.
 *   embedding_bwd_rank   order[start[v] + r] = t with r = #{j in bucket(v) :
 *                        tmp[j] < t}: the bucket sorted by token index, so
 *                        the result no longer depends on the fill order.
 *                        n_v^2 compares per id. Any grid.
 *   embedding_bwd_accum  dtable[v, :] = (acc ? dtable[v, :] : 0)
 *                        + sum_{j in [start[v], start[v+1])} dy[order[j], :]
 *                        in increasing j (= increasing token index). Group:
 *                        WG columns of one row; groups = V * ceil(D / WG).
 *
 * Offsets into big buffers are ulong; T, V, D < 2^31. Only
 * embedding_bwd_scan has barriers (one group, uniform control flow).
 *
 * Tuning macros (host plans and tuning spaces linear/embedding_* in
 * lib/ops/linear/embedding.c):
 *   WG   work-items per group, a power of two the device allows (default 256)
 * The token loops' group cap (MAXG, default 1024) is a host-side launch
 * parameter: any grid works for count, fill and rank.
 */
#include "gdn_common.clh"

#ifndef WG
#define WG 256
#endif

__kernel __attribute__((reqd_work_group_size(WG, 1, 1)))
void embedding_fwd(__global const float *table, __global const int *ids, __global float *y, int V,
                   int D, int nb, int accumulate)
{
    const ulong g = get_group_id(0);
    const ulong t = g / (ulong)nb;
    const int   d = (int)(g % (ulong)nb) * WG + (int)get_local_id(0);
    if (d < D) {
        const int   id = ids[t];
        const float v  = (id >= 0 && id < V) ? table[(ulong)id * (ulong)D + (ulong)d] : NAN;
        const ulong i  = t * (ulong)D + (ulong)d;
        y[i]           = accumulate ? y[i] + v : v;
    }
}

__kernel __attribute__((reqd_work_group_size(WG, 1, 1)))
void embedding_bwd_count(__global const int *ids, int T, int V, __global int *counts)
{
    for (int t = (int)get_global_id(0); t < T; t += (int)get_global_size(0)) {
        const int id = ids[t];
        if (id >= 0 && id < V)
            atomic_inc(&counts[id]);
    }
}

__kernel __attribute__((reqd_work_group_size(WG, 1, 1)))
void embedding_bwd_scan(__global int *counts, __global int *start, int V)
{
    __local int sums[WG];
    const int   lid   = (int)get_local_id(0);
    const int   chunk = (V + WG - 1) / WG;
    const int   v0    = min(lid * chunk, V);
    const int   v1    = min(v0 + chunk, V);
    int         s     = 0;

    for (int v = v0; v < v1; v++)
        s += counts[v];
    sums[lid] = s;
    barrier(CLK_LOCAL_MEM_FENCE);
    if (lid == 0) {
        int run = 0;
        for (int i = 0; i < WG; i++) {
            const int c = sums[i];
            sums[i]     = run;
            run += c;
        }
        start[V] = run;
    }
    barrier(CLK_LOCAL_MEM_FENCE);
    s = sums[lid];
    for (int v = v0; v < v1; v++) {
        const int c = counts[v];
        start[v]    = s;
        counts[v]   = 0;
        s += c;
    }
}

__kernel __attribute__((reqd_work_group_size(WG, 1, 1)))
void embedding_bwd_fill(__global const int *ids, int T, int V, __global const int *start,
                        __global int *cursor, __global int *tmp)
{
    for (int t = (int)get_global_id(0); t < T; t += (int)get_global_size(0)) {
        const int id = ids[t];
        if (id >= 0 && id < V)
            tmp[start[id] + atomic_inc(&cursor[id])] = t;
    }
}

__kernel __attribute__((reqd_work_group_size(WG, 1, 1)))
void embedding_bwd_rank(__global const int *ids, int T, int V, __global const int *start,
                        __global const int *tmp, __global int *order)
{
    for (int t = (int)get_global_id(0); t < T; t += (int)get_global_size(0)) {
        const int id = ids[t];
        if (id >= 0 && id < V) {
            const int j0 = start[id], j1 = start[id + 1];
            int       r  = 0;
            for (int j = j0; j < j1; j++)
                r += tmp[j] < t ? 1 : 0;
            order[j0 + r] = t;
        }
    }
}

__kernel __attribute__((reqd_work_group_size(WG, 1, 1)))
void embedding_bwd_accum(__global const float *dy, __global const int *start,
                         __global const int *order, __global float *dtable, int D, int nb,
                         int accumulate)
{
    const ulong g = get_group_id(0);
    const ulong v = g / (ulong)nb;
    const int   d = (int)(g % (ulong)nb) * WG + (int)get_local_id(0);
    if (d < D) {
        const ulong i  = v * (ulong)D + (ulong)d;
        const int   j0 = start[v], j1 = start[v + 1];
        float       s  = accumulate ? dtable[i] : 0.0f;
        for (int j = j0; j < j1; j++)
            s += dy[(ulong)order[j] * (ulong)D + (ulong)d];
        dtable[i] = s;
    }
}
