/*
 * swa/decode.cl - decode of sliding-window attention with a ring-buffer KV
 * cache (lib/ops/swa/swa_public.h, gdn_swa_prefill / gdn_swa_step):
 *   swa_cache_fill      prefill: cache <- last min(L, W) prompt tokens
 *   swa_decode_attend   one new token per sequence: rotate, write into the
 *                       ring, partial attention over one split of the ring
 *   swa_decode_combine  merge the splits' partial softmax states; advance
 *                       len and pos
 *
 * Cache (F32 unless noted): kc, vc [N, Hkv, W, D] (rotated keys, values;
 * the c-th token of sequence n lives in entry c % W); len [N] I32 (tokens
 * appended so far), pos [N] I32 (RoPE position of the next token).
 *
 * swa_cache_fill. Math: for sequence n of length L (tokens bos ..) and entry
 * e < W: the newest token c < L with c % W == e, i.e. c = e + W floor((L - 1
 * - e) / W) when e < L (else the entry is zeroed); len[n] = L, pos[n] =
 * pos_off[n] + L. Shapes: k [T, Hkv, D] (already rotated), v [T, Hkv, D];
 * seq_off [N + 1]; pos_off [N] (read when has_pos). One work-item per cache
 * element: NDRange (W * D rounded up, Hkv, N).
 *
 * swa_decode_attend. Math, sequence n with count = len[n], position p =
 * pos[n], new token (q_g, k, v) for the GB query heads g of this group
 * (query head hq = hk G + gb GB + g): with RoPE, q and k are rotated at p;
 * the key and value are written into entry snew = count % W (it held the
 * token that leaves the window, or nothing); the token attends to itself and
 * to the old entries e < min(count, W), e != snew. Entries are split into
 * ranges of SPLIT; each work-group computes, over its range (split 0 also
 * takes the new token), the online-softmax state (m, l, acc) with scores
 * c q.k (c = scale / ln 2, exp2 domain), masked with select before exp2.
 * Partials: part [N, Hq, S, D + 2] = (m, l, acc[D]); an empty range gives
 * (-inf, 0, 0). Entries never written are never read. No entry is read and
 * written by the same launch (snew is excluded from the reads).
 * One work-group = (split, kv head x head block, sequence) of WGD
 * work-items; NDRange (S WGD, Hkv G/GB, N). Local memory: one dynamic
 * buffer sized by the host, split here into q [GB D], acc [GB D], scores
 * [GB WGD], k_new [D], state [3 GB] floats.
 *
 * swa_decode_combine. Math: M = max_s m_s, w_s = exp2(m_s - M) (0 for empty
 * splits, selected before exp2), o = sum_s w_s acc_s / sum_s w_s l_s; then
 * the group of (n, hq = 0) increments len[n] and pos[n] (no other group of
 * this launch reads them). NDRange (WGD, Hq, N).
 *
 * Tuning macros (#ifndef defaults; set by decode_plan_default in
 * lib/ops/swa/decode.c):
 *   D    head dim, a multiple of 16 in [16, 256] (required)
 *   WGD  work-items per group of the decode kernels: 32, 64 or 128
 *        (default 64)
 * SPLIT (entries per split) and GB (query heads per group) are runtime
 * arguments chosen by the same plan.
 */
#include "gdn_common.clh"
#include "gdn_swa_rope.clh"

#ifndef D
#error "D (head dim) must be defined"
#endif
#ifndef WGD
#define WGD 64
#endif
#if (D % 16) != 0
#error "swa decode: D must be a multiple of 16"
#endif

#define HALF (D / 2)

__kernel void swa_cache_fill(__global const float *k, __global const float *v,
                             __global const int *seq_off, __global const int *pos_off, int has_pos,
                             __global float *kc, __global float *vc, __global int *len,
                             __global int *pos, int Hkv, int W)
{
    const long gid = get_global_id(0);
    const int  hk = get_global_id(1), n = get_global_id(2);
    if (gid >= (long)W * D)
        return;
    const int   e = (int)(gid / D), d = (int)(gid - (long)e * D);
    const int   bos = seq_off[n], L = seq_off[n + 1] - bos;
    const ulong dst = (((ulong)n * (ulong)Hkv + (ulong)hk) * (ulong)W + (ulong)e) * D + (ulong)d;
    if (e < L) {
        const int   c   = e + W * ((L - 1 - e) / W);
        const ulong src = ((ulong)(bos + c) * (ulong)Hkv + (ulong)hk) * D + (ulong)d;
        kc[dst]         = k[src];
        vc[dst]         = v[src];
    } else {
        kc[dst] = 0.0f;
        vc[dst] = 0.0f;
    }
    if (gid == 0 && hk == 0) {
        len[n] = L;
        pos[n] = (has_pos ? pos_off[n] : 0) + L;
    }
}

__kernel __attribute__((reqd_work_group_size(WGD, 1, 1))) void
swa_decode_attend(__global const float *q, __global const float *knew,
                  __global const float *vnew, __global float *kc, __global float *vc,
                  __global const int *len, __global const int *pos, __global const float2 *freq,
                  __global float *part, __local float *lm, int Hq, int Hkv, int W, int GB,
                  int SPLIT, int S, int rope, float scale_log2)
{
    __local float *qs = lm, *acc = qs + GB * D, *sc = acc + GB * D, *kn = sc + GB * WGD;
    __local float *st = kn + D;
    const int lid = get_local_id(0), split = get_group_id(0), n = get_group_id(2);
    const int G = Hq / Hkv, nblk = G / GB;
    const int hk = get_group_id(1) / nblk, hq0 = hk * G + (get_group_id(1) - hk * nblk) * GB;
    const int count = len[n], p = pos[n];
    const int nold = min(count, W), snew = count % W;
    const int e0 = split * SPLIT, e1 = min(e0 + SPLIT, W);
    __local float *mg = st, *lg = st + GB, *ag = st + 2 * GB;

    /* rotated, scaled q of the GB heads; rotated new key */
    for (int idx = lid; idx < (GB + 1) * HALF; idx += WGD) {
        const int g = idx / HALF, i = idx - g * HALF;
        float2    cs = (float2)(1.0f, 0.0f);
        if (rope)
            cs = gdn_swa_rope_cs(p, freq[i]);
        if (g < GB) {
            __global const float *x = q + ((ulong)n * (ulong)Hq + (ulong)(hq0 + g)) * D;
            const float           a = x[i], b = x[i + HALF];
            qs[g * D + i]        = (a * cs.x - b * cs.y) * scale_log2;
            qs[g * D + i + HALF] = (b * cs.x + a * cs.y) * scale_log2;
        } else {
            __global const float *x = knew + ((ulong)n * (ulong)Hkv + (ulong)hk) * D;
            const float           a = x[i], b = x[i + HALF];
            kn[i]        = a * cs.x - b * cs.y;
            kn[i + HALF] = b * cs.x + a * cs.y;
        }
    }
    barrier(CLK_LOCAL_MEM_FENCE);

    /* the split holding entry snew stores the new key and value there */
    __global const float *vn = vnew + ((ulong)n * (ulong)Hkv + (ulong)hk) * D;
    const ulong           cache0 = ((ulong)n * (ulong)Hkv + (ulong)hk) * (ulong)W * D;
    if (snew >= e0 && snew < e1 && hq0 == hk * G)
        for (int d = lid; d < D; d += WGD) {
            kc[cache0 + (ulong)snew * D + d] = kn[d];
            vc[cache0 + (ulong)snew * D + d] = vn[d];
        }

    /* initial state: the new token in split 0 (p = 1 at m = its score) */
    for (int g = lid; g < GB; g += WGD) {
        float s = 0.0f;
        for (int d = 0; d < D; d++)
            s = fma(qs[g * D + d], kn[d], s);
        mg[g] = split == 0 ? s : -INFINITY;
        lg[g] = split == 0 ? 1.0f : 0.0f;
    }
    for (int idx = lid; idx < GB * D; idx += WGD)
        acc[idx] = split == 0 ? vn[idx % D] : 0.0f;
    barrier(CLK_LOCAL_MEM_FENCE);

    for (int b0 = e0; b0 < e1; b0 += WGD) {
        const int  e     = b0 + lid;
        const bool valid = e < e1 && e < nold && e != snew;
        for (int g = 0; g < GB; g++) {
            float s = 0.0f;
            if (valid) {
                __global const float *kr = kc + cache0 + (ulong)e * D;
                __local const float  *qr = qs + g * D;
                float4                a4 = (float4)(0.0f);
                for (int d = 0; d < D / 4; d++) /* vload4: no float4 alignment assumed */
                    a4 = fma(vload4(d, qr), vload4(d, kr), a4);
                s = (a4.x + a4.y) + (a4.z + a4.w);
            }
            sc[g * WGD + lid] = valid ? s : -INFINITY;
        }
        barrier(CLK_LOCAL_MEM_FENCE);
        for (int g = lid; g < GB; g += WGD) {
            float mt = -INFINITY;
            for (int c = 0; c < WGD; c++)
                mt = fmax(mt, sc[g * WGD + c]);
            const float mn = fmax(mg[g], mt), mu = mn == -INFINITY ? 0.0f : mn;
            const float al = exp2(mg[g] - mu);
            float       l  = lg[g] * al;
            for (int c = 0; c < WGD; c++) {
                const float pe    = exp2(sc[g * WGD + c] - mu);
                sc[g * WGD + c] = pe;
                l += pe;
            }
            mg[g] = mn, lg[g] = l, ag[g] = al;
        }
        barrier(CLK_LOCAL_MEM_FENCE);
        const int nb = min(WGD, e1 - b0);
        for (int d = lid; d < D; d += WGD)
            for (int g = 0; g < GB; g++) {
                float a = acc[g * D + d] * ag[g];
                for (int c = 0; c < nb; c++) {
                    const float pe = sc[g * WGD + c];
                    if (pe != 0.0f) /* never touch entries outside the window */
                        a = fma(pe, vc[cache0 + (ulong)(b0 + c) * D + d], a);
                }
                acc[g * D + d] = a;
            }
        barrier(CLK_LOCAL_MEM_FENCE);
    }

    for (int g = 0; g < GB; g++) {
        __global float *pr =
            part + (((ulong)n * (ulong)Hq + (ulong)(hq0 + g)) * (ulong)S + (ulong)split) * (D + 2);
        for (int d = lid; d < D; d += WGD)
            pr[2 + d] = acc[g * D + d];
        if (lid == 0)
            pr[0] = mg[g], pr[1] = lg[g];
    }
}

__kernel __attribute__((reqd_work_group_size(WGD, 1, 1))) void
swa_decode_combine(__global const float *part, __global float *o, __global int *len,
                   __global int *pos, int Hq, int S)
{
    const int             lid = get_local_id(0), hq = get_group_id(1), n = get_group_id(2);
    __global const float *pr  = part + ((ulong)n * (ulong)Hq + (ulong)hq) * (ulong)S * (D + 2);
    float                 M   = -INFINITY, l = 0.0f;
    for (int s = 0; s < S; s++)
        M = fmax(M, pr[(ulong)s * (D + 2)]);
    for (int s = 0; s < S; s++) {
        const float ms = pr[(ulong)s * (D + 2)];
        l += (ms == -INFINITY ? 0.0f : exp2(ms - M)) * pr[(ulong)s * (D + 2) + 1];
    }
    const float inv = 1.0f / l;
    for (int d = lid; d < D; d += WGD) {
        float a = 0.0f;
        for (int s = 0; s < S; s++) {
            const float ms = pr[(ulong)s * (D + 2)];
            const float w  = exp2(ms == -INFINITY ? -INFINITY : ms - M);
            a              = fma(w, pr[(ulong)s * (D + 2) + 2 + d], a);
        }
        o[((ulong)n * (ulong)Hq + (ulong)hq) * D + d] = a * inv;
    }
    if (hq == 0 && lid == 0) {
        len[n] += 1;
        pos[n] += 1;
    }
}
