/*
 * swa/bwd_dq.cl - backward of sliding-window attention, dq (flash-attention
 * 2 style, recomputing the attention weights from the saved log-sum-exp).
 *
 * Math, per sequence (length L), query head hq (kv head hk = hq / (Hq/Hkv))
 * and query row i < L, with c = scale / ln 2, lse2_i = lse_i / ln 2 and
 * delta_i = do_i . o_i (bwd_prep.cl):
 *     p_ij  = exp2(c q_i . k_j - lse2_i)   for i - W < j <= i, else exactly
 *             0 (the exponent is replaced by -inf with a select first)
 *     dp_ij = do_i . v_j
 *     ds_ij = p_ij (dp_ij - delta_i)
 *     dq_i  = scale sum_j ds_ij k_j
 * (dk and dv are bwd_dkdv.cl's; keeping them apart makes every gradient a
 * plain sum in a fixed order: no atomics, deterministic.)
 *
 * Shapes (F32, token-major): q, do [T, Hq, D]; k, v [T, Hkv, D]; lse, delta
 * [T, Hq]; dq [T, Hq, D] (written); tiles [n_tiles] int4 (seq, bos, L, q0)
 * of BQ rows as in fwd.cl.
 *
 * One work-group = one (query tile, query head): 256 work-items as 16 x 16,
 * the ownership of fwd.cl. Visits the key tiles that intersect the tile's
 * windows; per key tile: S = Q K^T and dP = dO V^T over D in DS-wide
 * slices (staged in local memory), P and dS in registers, dS to local
 * memory, then dQ += dS K over D in DVC-wide chunks (K chunk staged).
 *
 * Windows (Mesa llvmpipe's loop limit, as in fwd.cl): a launch visits the
 * key tiles [kb, kb + ke) of the tile's list; a window that is not the last
 * leaves the unscaled sum in dq, one that is not the first starts from it.
 *
 * Local memory: 4 * (max((BQ + BKV) (DS + 1), BKV DVC) + BQ (BKV + 1)
 * + 2 BQ) bytes (33.3 KiB at BQ = BKV = 64, DS = 32, DVC = 64).
 * NDRange: global (256 * n_tiles, Hq), local (256, 1).
 *
 * Tuning macros (#ifndef defaults; set by dq_plan_default in
 * lib/ops/swa/attn.c): D (required), BQ, BKV, DS, DVC as in fwd.cl.
 */
#include "gdn_common.clh"
#include "gdn_swa_tile.clh"
#include "gdn_tile.clh"

#include "gdn_swa_plan.clh"
#define LDP (BKV + 1)
#define SA_S ((BQ + BKV) * LDS)
#define SA_V (BKV * DVC)
#define SA   (SA_S > SA_V ? SA_S : SA_V)

#if (D % 16) != 0 || (D % DS) != 0 || (D % DVC) != 0 || (DVC % 16) != 0 || (BQ % 16) != 0 ||  \
    (BKV % 16) != 0
#error "swa bwd_dq: D, DS, DVC, BQ, BKV do not fit together"
#endif

__kernel __attribute__((reqd_work_group_size(WG, 1, 1))) void
swa_bwd_dq(__global const float *q, __global const float *k, __global const float *v,
           __global const float *dout, __global const float *lse, __global const float *delta,
           __global const int4 *tiles, __global float *dq, int Hq, int Hkv, int W,
           float scale_log2, float scale, int kb, int ke)
{
    __local float sA[SA];
    __local float Ps[BQ * LDP];
    __local float rowv[2 * BQ];
    __local float *As = sA, *Bs = sA + BQ * LDS, *Kc = sA;

    const int  lid = get_local_id(0), ry = lid / 16, cx = lid % 16;
    const int4 tl  = tiles[get_group_id(0)];
    const int  hq = get_group_id(1), hk = hq / (Hq / Hkv);
    const int  bos = tl.y, L = tl.z, q0 = tl.w;
    const int  jlo = max(0, q0 - W + 1), jhi = min(q0 + BQ, L) - 1;
    const int  kt0 = jlo / BKV, nkt = jhi / BKV - kt0 + 1;
    if (kb >= nkt)
        return; /* this tile's windows are done (uniform in the group) */
    const bool first = kb == 0, last = ke >= nkt - kb;
    const int  kte   = kt0 + kb + (last ? nkt - kb : ke);

    gdn_swa_stage_row(rowv, lse, Hq, hq, bos, q0, L, BQ, M_LOG2E_F, lid, WG);
    gdn_swa_stage_row(rowv + BQ, delta, Hq, hq, bos, q0, L, BQ, 1.0f, lid, WG);
    barrier(CLK_LOCAL_MEM_FENCE);
    float lse2[TQ], dl[TQ];
    for (int a = 0; a < TQ; a++)
        lse2[a] = rowv[ry + 16 * a], dl[a] = rowv[BQ + ry + 16 * a];

    float dacc[NCH][TQ][TC];
    for (int c = 0; c < NCH; c++)
        GDN_TILE_ZERO(dacc[c], TQ, TC);
    if (!first)
        for (int a = 0; a < TQ; a++) {
            const int i = q0 + ry + 16 * a;
            if (i < L) {
                const ulong row = (ulong)(bos + i) * (ulong)Hq + (ulong)hq;
                for (int c = 0; c < NCH; c++)
                    for (int jj = 0; jj < TC; jj++)
                        dacc[c][a][jj] = dq[row * D + c * DVC + cx + 16 * jj];
            }
        }

    for (int kt = kt0 + kb; kt < kte; kt++) {
        const int k0 = kt * BKV;
        float     s[TQ][TK], dp[TQ][TK];
        GDN_TILE_ZERO(s, TQ, TK);
        GDN_TILE_ZERO(dp, TQ, TK);
        for (int d0 = 0; d0 < D; d0 += DS) {
            barrier(CLK_LOCAL_MEM_FENCE);
            gdn_swa_stage(As, LDS, q, Hq, hq, D, bos, q0, L, d0, BQ, DS, lid, WG);
            gdn_swa_stage(Bs, LDS, k, Hkv, hk, D, bos, k0, L, d0, BKV, DS, lid, WG);
            barrier(CLK_LOCAL_MEM_FENCE);
            GDN_TILE_MMA(s, TQ, TK, As, LDS, 0, Bs, LDS, 1, ry, 16, cx, 16, DS);
        }
        for (int d0 = 0; d0 < D; d0 += DS) {
            barrier(CLK_LOCAL_MEM_FENCE);
            gdn_swa_stage(As, LDS, dout, Hq, hq, D, bos, q0, L, d0, BQ, DS, lid, WG);
            gdn_swa_stage(Bs, LDS, v, Hkv, hk, D, bos, k0, L, d0, BKV, DS, lid, WG);
            barrier(CLK_LOCAL_MEM_FENCE);
            GDN_TILE_MMA(dp, TQ, TK, As, LDS, 0, Bs, LDS, 1, ry, 16, cx, 16, DS);
        }
        /* ds = p (dp - delta), p recomputed with the mask applied first;
         * the previous tile's reads of Ps ended before the slice barriers */
        for (int a = 0; a < TQ; a++) {
            const int i = q0 + ry + 16 * a;
            for (int b = 0; b < TK; b++) {
                const int   j = k0 + cx + 16 * b;
                const float e =
                    GDN_SWA_VISIBLE(i, j, L, W) ? s[a][b] * scale_log2 - lse2[a] : -INFINITY;
                const float p = exp2(e);
                Ps[(ry + 16 * a) * LDP + cx + 16 * b] = p * (dp[a][b] - dl[a]);
            }
        }
#pragma unroll
        for (int c = 0; c < NCH; c++) {
            barrier(CLK_LOCAL_MEM_FENCE);
            gdn_swa_stage(Kc, DVC, k, Hkv, hk, D, bos, k0, L, c * DVC, BKV, DVC, lid, WG);
            barrier(CLK_LOCAL_MEM_FENCE);
            GDN_TILE_MMA(dacc[c], TQ, TC, Ps, LDP, 0, Kc, DVC, 0, ry, 16, cx, 16, BKV);
        }
    }

    for (int a = 0; a < TQ; a++) {
        const int i = q0 + ry + 16 * a;
        if (i < L) {
            const ulong row = (ulong)(bos + i) * (ulong)Hq + (ulong)hq;
            for (int c = 0; c < NCH; c++)
                for (int jj = 0; jj < TC; jj++)
                    dq[row * D + c * DVC + cx + 16 * jj] = dacc[c][a][jj] * (last ? scale : 1.0f);
        }
    }
}
