/*
 * swa/fwd.cl - forward of sliding-window attention, flash-attention style
 * (online softmax in fp32, log-sum-exp saved for backward; ALGORITHM.md
 * §4.3, lib/ops/swa/swa_public.h).
 *
 * Math, per sequence (length L), query head hq (key/value head
 * hk = hq / (Hq / Hkv)) and query row i < L, with c = scale / ln 2:
 *     s_ij = c q_i . k_j           for i - W < j <= i, else -inf (select)
 *     m_i  = max_j s_ij,  l_i = sum_j exp2(s_ij - m_i)
 *     o_i  = sum_j exp2(s_ij - m_i) v_j / l_i,   lse_i = (m_i + log2 l_i) ln 2
 * accumulated over key tiles with the running max (online softmax). Masked
 * scores are set to -inf with a select before exp2, so they give exactly 0;
 * a row whose running max is still -inf uses 0 as its reference (no
 * -inf - -inf). Every row i < L sees at least its own key, so l_i >= 1.
 *
 * Shapes (F32, token-major): q, o [T, Hq, D]; k, v [T, Hkv, D]; lse
 * [T, Hq]; tiles [n_tiles] int4 (seq, first token bos, length L, first row
 * q0 of the tile inside the sequence), tiles of BQ rows never straddle
 * sequences. Rotary embedding, when used, was applied before (rope.cl).
 *
 * One work-group = one (query tile of BQ rows, query head): 256 work-items
 * as a 16 x 16 grid (ry = lid / 16, cx = lid % 16). Work-item (ry, cx) owns
 * rows ry + 16 a (a < BQ/16) and, of each score tile, columns cx + 16 b
 * (b < BKV/16); of the output, columns cx + 16 j of every DVC-wide chunk.
 * Only key tiles that intersect the window of some row of the tile are
 * visited: [max(0, q0 - W + 1), min(q0 + BQ, L) - 1] (cost O(BQ * (W + BQ))
 * per tile, O(T * W) in all). Per key tile:
 *   1. S = Q K^T over D in slices of DS columns (Q and K slices staged in
 *      local memory, GDN_TILE_MMA with BQ/16 x BKV/16 micro-tiles);
 *   2. mask, row max through local memory (red), rescale of o and l;
 *   3. P = exp2(S - m) to local memory, then O += P V over D in chunks of
 *      DVC columns (V chunk staged in local memory).
 * Row sums l are kept as per-work-item partials and reduced once at the end.
 *
 * Windows (Mesa llvmpipe, whose work-items stop looping after 65535 loop
 * iterations in all): a launch visits only the key tiles [kb, kb + ke) of
 * the tile's list (0-based, in order); the host runs consecutive windows and
 * the state is carried in the outputs. A window that is not the last leaves
 * the unnormalised o, the running max m in lse and the row sum l in lsum;
 * one that is not the first starts from them. With kb = 0 and ke at least
 * the number of key tiles (every other device) it is the single pass above
 * and lsum is not touched.
 *
 * Local memory: 4 * (max((BQ + BKV) (DS + 1), BKV DVC) + BQ (BKV + 1)
 * + 17 BQ) bytes (37 KiB at BQ = BKV = 64, DS = 32, DVC = 64).
 * NDRange: global (256 * n_tiles, Hq), local (256, 1).
 *
 * Tuning macros (#ifndef defaults; set by fwd_plan_default in
 * lib/ops/swa/attn.c):
 *   D    head dim, a multiple of 16 in [16, 256] (required)
 *   BQ   query rows per tile: 16, 32 or 64 (default 64)
 *   BKV  keys per tile: 16, 32 or 64 (default 64)
 *   DS   D-slice of the score product: 16 or 32 dividing D (default 16)
 *   DVC  D-chunk of the output product: a multiple of 16 dividing D (64
 *        or less; default 16)
 */
#include "gdn_common.clh"
#include "gdn_swa_tile.clh"
#include "gdn_tile.clh"

#include "gdn_swa_plan.clh"
#define LDP (BKV + 1)
#define LDR 17
#define SA_S ((BQ + BKV) * LDS)
#define SA_V (BKV * DVC)
#define SA   (SA_S > SA_V ? SA_S : SA_V)

#if (D % 16) != 0 || (D % DS) != 0 || (D % DVC) != 0 || (DVC % 16) != 0 || (BQ % 16) != 0 ||  \
    (BKV % 16) != 0
#error "swa fwd: D, DS, DVC, BQ, BKV do not fit together"
#endif

__kernel __attribute__((reqd_work_group_size(WG, 1, 1))) void
swa_fwd(__global const float *q, __global const float *k, __global const float *v,
        __global const int4 *tiles, __global float *o, __global float *lse, __global float *lsum,
        int Hq, int Hkv, int W, float scale_log2, int kb, int ke)
{
    __local float sA[SA];
    __local float Ps[BQ * LDP];
    __local float red[BQ * LDR];
    __local float *Qs = sA, *Ks = sA + BQ * LDS, *Vs = sA;

    const int  lid = get_local_id(0), ry = lid / 16, cx = lid % 16;
    const int4 tl  = tiles[get_group_id(0)];
    const int  hq = get_group_id(1), hk = hq / (Hq / Hkv);
    const int  bos = tl.y, L = tl.z, q0 = tl.w;

    const int jlo = max(0, q0 - W + 1), jhi = min(q0 + BQ, L) - 1;
    const int kt0 = jlo / BKV, nkt = jhi / BKV - kt0 + 1;
    if (kb >= nkt)
        return; /* this tile's windows are done (uniform in the group) */
    const bool first = kb == 0, last = ke >= nkt - kb;
    const int  kte   = kt0 + kb + (last ? nkt - kb : ke);

    float oacc[NCH][TQ][TC];
    float m[TQ], lp[TQ];
    for (int c = 0; c < NCH; c++)
        GDN_TILE_ZERO(oacc[c], TQ, TC);
    for (int a = 0; a < TQ; a++)
        m[a] = -INFINITY, lp[a] = 0.0f;
    if (!first)
        for (int a = 0; a < TQ; a++) {
            const int i = q0 + ry + 16 * a;
            if (i < L) {
                const ulong row = (ulong)(bos + i) * (ulong)Hq + (ulong)hq;
                m[a]            = lse[row];
                lp[a]           = cx == 0 ? lsum[row] : 0.0f;
                for (int c = 0; c < NCH; c++)
                    for (int jj = 0; jj < TC; jj++)
                        oacc[c][a][jj] = o[row * D + c * DVC + cx + 16 * jj];
            }
        }

    for (int kt = kt0 + kb; kt < kte; kt++) {
        const int k0 = kt * BKV;
        float     s[TQ][TK];
        GDN_TILE_ZERO(s, TQ, TK);
        for (int d0 = 0; d0 < D; d0 += DS) {
            barrier(CLK_LOCAL_MEM_FENCE);
            gdn_swa_stage(Qs, LDS, q, Hq, hq, D, bos, q0, L, d0, BQ, DS, lid, WG);
            gdn_swa_stage(Ks, LDS, k, Hkv, hk, D, bos, k0, L, d0, BKV, DS, lid, WG);
            barrier(CLK_LOCAL_MEM_FENCE);
            GDN_TILE_MMA(s, TQ, TK, Qs, LDS, 0, Ks, LDS, 1, ry, 16, cx, 16, DS);
        }
        /* mask with select, partial row max */
        for (int a = 0; a < TQ; a++) {
            const int i  = q0 + ry + 16 * a;
            float     pm = -INFINITY;
            for (int b = 0; b < TK; b++) {
                const int j = k0 + cx + 16 * b;
                s[a][b]     = GDN_SWA_VISIBLE(i, j, L, W) ? s[a][b] * scale_log2 : -INFINITY;
                pm          = fmax(pm, s[a][b]);
            }
            red[(ry + 16 * a) * LDR + cx] = pm;
        }
        barrier(CLK_LOCAL_MEM_FENCE);
        for (int a = 0; a < TQ; a++) {
            float mt = -INFINITY;
            for (int c = 0; c < 16; c++)
                mt = fmax(mt, red[(ry + 16 * a) * LDR + c]);
            const float mn = fmax(m[a], mt);
            const float mu = mn == -INFINITY ? 0.0f : mn;
            const float al = exp2(m[a] - mu);
            m[a]           = mn;
            lp[a] *= al;
            for (int c = 0; c < NCH; c++)
                for (int jj = 0; jj < TC; jj++)
                    oacc[c][a][jj] *= al;
            for (int b = 0; b < TK; b++) {
                const float p = exp2(s[a][b] - mu);
                lp[a] += p;
                Ps[(ry + 16 * a) * LDP + cx + 16 * b] = p;
            }
        }
#pragma unroll
        for (int c = 0; c < NCH; c++) {
            barrier(CLK_LOCAL_MEM_FENCE);
            gdn_swa_stage(Vs, DVC, v, Hkv, hk, D, bos, k0, L, c * DVC, BKV, DVC, lid, WG);
            barrier(CLK_LOCAL_MEM_FENCE);
            GDN_TILE_MMA(oacc[c], TQ, TC, Ps, LDP, 0, Vs, DVC, 0, ry, 16, cx, 16, BKV);
        }
    }

    /* row sums, output, log-sum-exp */
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int a = 0; a < TQ; a++)
        red[(ry + 16 * a) * LDR + cx] = lp[a];
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int a = 0; a < TQ; a++) {
        const int i = q0 + ry + 16 * a;
        float     l = 0.0f;
        for (int c = 0; c < 16; c++)
            l += red[(ry + 16 * a) * LDR + c];
        if (i < L) {
            const float inv = last ? 1.0f / l : 1.0f;
            const ulong row = (ulong)(bos + i) * (ulong)Hq + (ulong)hq;
            for (int c = 0; c < NCH; c++)
                for (int jj = 0; jj < TC; jj++)
                    o[row * D + c * DVC + cx + 16 * jj] = oacc[c][a][jj] * inv;
            if (cx == 0 && last)
                lse[row] = (m[a] + log2(l)) * M_LN2_F;
            else if (cx == 0)
                lse[row] = m[a], lsum[row] = l;
        }
    }
}
