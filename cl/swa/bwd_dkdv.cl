/*
 * swa/bwd_dkdv.cl - backward of sliding-window attention, dk and dv
 * (flash-attention 2 style, weights recomputed from the saved log-sum-exp).
 *
 * Math, per sequence (length L), key/value head hk and key row j < L, over
 * the query heads hq = hk G + g (g < G = Hq / Hkv, in this order) and the
 * query rows i with j <= i < min(L, j + W); p_ij, dp_ij, ds_ij as in
 * bwd_dq.cl:
 *     dv_j = sum_{g, i} p_ij do_i
 *     dk_j = scale sum_{g, i} ds_ij q_i
 * The sums over the query heads of a group are made inside one work-group
 * in a fixed order (deterministic, no atomics).
 *
 * Shapes (F32, token-major): q, do [T, Hq, D]; k, v, dk, dv [T, Hkv, D];
 * lse, delta [T, Hq]; tiles [n_tiles] int4 (seq, bos, L, k0) of BKV key
 * rows (same table layout as the query tiles).
 *
 * One work-group = one (key tile of BKV rows, kv head): 256 work-items as
 * 16 x 16; work-item (ry, cx) owns key rows ry + 16 a (a < BKV/16) and
 * query columns cx + 16 b (b < BQ/16) of the transposed score tile, and
 * columns cx + 16 j of each DVC-wide chunk of dk and dv. Per (query head,
 * query tile in [k0, min(L, k0 + BKV + W - 1))):
 *   1. S^T = K Q^T, then dP^T = V dO^T, over D in DS-wide slices (staged);
 *   2. P^T (masked with select before exp2) to local memory;
 *      dV += P^T dO over D chunks (dO chunk staged);
 *   3. dS^T = P^T (dP^T - delta) to the same local buffer;
 *      dK += dS^T Q over D chunks (Q chunk staged).
 *
 * Windows (Mesa llvmpipe's loop limit, as in fwd.cl): the (query head,
 * query tile) pairs are visited in one list, heads outer; a launch takes
 * the pairs [kb, kb + ke) of it. A window that is not the last leaves the
 * unscaled sums in dk and dv, one that is not the first starts from them.
 *
 * Local memory: 4 * (max((BQ + BKV) (DS + 1), BQ DVC) + BKV (BQ + 1)
 * + 2 BQ) bytes (33.3 KiB at BQ = BKV = 64, DS = 32, DVC = 64).
 * NDRange: global (256 * n_tiles, Hkv), local (256, 1).
 *
 * Tuning macros (#ifndef defaults; set by dkdv_plan_default in
 * lib/ops/swa/attn.c): D (required), BQ, BKV, DS, DVC as in fwd.cl.
 */
#include "gdn_common.clh"
#include "gdn_swa_tile.clh"
#include "gdn_tile.clh"

#include "gdn_swa_plan.clh"
#define LDP (BQ + 1)
#define SA_S ((BQ + BKV) * LDS)
#define SA_V (BQ * DVC)
#define SA   (SA_S > SA_V ? SA_S : SA_V)

#if (D % 16) != 0 || (D % DS) != 0 || (D % DVC) != 0 || (DVC % 16) != 0 || (BQ % 16) != 0 ||  \
    (BKV % 16) != 0
#error "swa bwd_dkdv: D, DS, DVC, BQ, BKV do not fit together"
#endif

__kernel __attribute__((reqd_work_group_size(WG, 1, 1))) void
swa_bwd_dkdv(__global const float *q, __global const float *k, __global const float *v,
             __global const float *dout, __global const float *lse,
             __global const float *delta, __global const int4 *tiles, __global float *dk,
             __global float *dv, int Hq, int Hkv, int W, float scale_log2, float scale, int kb,
             int ke)
{
    __local float sA[SA];
    __local float Ps[BKV * LDP];
    __local float rowv[2 * BQ];
    __local float *Ks = sA, *Qs = sA + BKV * LDS, *Xc = sA;

    const int  lid = get_local_id(0), ry = lid / 16, cx = lid % 16;
    const int4 tl  = tiles[get_group_id(0)];
    const int  hk = get_group_id(1), G = Hq / Hkv;
    const int  bos = tl.y, L = tl.z, k0 = tl.w;

    const int  ihi = min(L - 1, k0 + BKV - 1 + W - 1); /* W <= longest sequence */
    const int  qt0 = k0 / BQ, nqt = ihi / BQ - qt0 + 1, nit = G * nqt;
    if (kb >= nit)
        return; /* this tile's windows are done (uniform in the group) */
    const bool first = kb == 0, last = ke >= nit - kb;
    const int  ite   = kb + (last ? nit - kb : ke);

    float dkacc[NCH][TK][TC], dvacc[NCH][TK][TC];
    for (int c = 0; c < NCH; c++) {
        GDN_TILE_ZERO(dkacc[c], TK, TC);
        GDN_TILE_ZERO(dvacc[c], TK, TC);
    }
    if (!first)
        for (int a = 0; a < TK; a++) {
            const int j = k0 + ry + 16 * a;
            if (j < L) {
                const ulong row = (ulong)(bos + j) * (ulong)Hkv + (ulong)hk;
                for (int c = 0; c < NCH; c++)
                    for (int jj = 0; jj < TC; jj++) {
                        dkacc[c][a][jj] = dk[row * D + c * DVC + cx + 16 * jj];
                        dvacc[c][a][jj] = dv[row * D + c * DVC + cx + 16 * jj];
                    }
            }
        }

    for (int it = kb; it < ite; it++) {
        const int g = it / nqt, hq = hk * G + g;
        {
            const int q0 = (qt0 + it - g * nqt) * BQ;
            float     s[TK][TQ], dp[TK][TQ];
            GDN_TILE_ZERO(s, TK, TQ);
            GDN_TILE_ZERO(dp, TK, TQ);
            for (int d0 = 0; d0 < D; d0 += DS) {
                barrier(CLK_LOCAL_MEM_FENCE);
                if (d0 == 0) {
                    gdn_swa_stage_row(rowv, lse, Hq, hq, bos, q0, L, BQ, M_LOG2E_F, lid, WG);
                    gdn_swa_stage_row(rowv + BQ, delta, Hq, hq, bos, q0, L, BQ, 1.0f, lid, WG);
                }
                gdn_swa_stage(Ks, LDS, k, Hkv, hk, D, bos, k0, L, d0, BKV, DS, lid, WG);
                gdn_swa_stage(Qs, LDS, q, Hq, hq, D, bos, q0, L, d0, BQ, DS, lid, WG);
                barrier(CLK_LOCAL_MEM_FENCE);
                GDN_TILE_MMA(s, TK, TQ, Ks, LDS, 0, Qs, LDS, 1, ry, 16, cx, 16, DS);
            }
            for (int d0 = 0; d0 < D; d0 += DS) {
                barrier(CLK_LOCAL_MEM_FENCE);
                gdn_swa_stage(Ks, LDS, v, Hkv, hk, D, bos, k0, L, d0, BKV, DS, lid, WG);
                gdn_swa_stage(Qs, LDS, dout, Hq, hq, D, bos, q0, L, d0, BQ, DS, lid, WG);
                barrier(CLK_LOCAL_MEM_FENCE);
                GDN_TILE_MMA(dp, TK, TQ, Ks, LDS, 0, Qs, LDS, 1, ry, 16, cx, 16, DS);
            }
            /* P^T with the mask applied before exp2; the previous tile's
             * reads of Ps ended before the slice barriers */
            for (int a = 0; a < TK; a++) {
                const int j = k0 + ry + 16 * a;
                for (int b = 0; b < TQ; b++) {
                    const int   i = q0 + cx + 16 * b;
                    const float e = GDN_SWA_VISIBLE(i, j, L, W)
                                        ? s[a][b] * scale_log2 - rowv[cx + 16 * b]
                                        : -INFINITY;
                    s[a][b]                               = exp2(e); /* p */
                    Ps[(ry + 16 * a) * LDP + cx + 16 * b] = s[a][b];
                }
            }
#pragma unroll
            for (int c = 0; c < NCH; c++) {
                barrier(CLK_LOCAL_MEM_FENCE);
                gdn_swa_stage(Xc, DVC, dout, Hq, hq, D, bos, q0, L, c * DVC, BQ, DVC, lid, WG);
                barrier(CLK_LOCAL_MEM_FENCE);
                GDN_TILE_MMA(dvacc[c], TK, TC, Ps, LDP, 0, Xc, DVC, 0, ry, 16, cx, 16, BQ);
            }
            barrier(CLK_LOCAL_MEM_FENCE);
            for (int a = 0; a < TK; a++)
                for (int b = 0; b < TQ; b++)
                    Ps[(ry + 16 * a) * LDP + cx + 16 * b] =
                        s[a][b] * (dp[a][b] - rowv[BQ + cx + 16 * b]);
#pragma unroll
            for (int c = 0; c < NCH; c++) {
                barrier(CLK_LOCAL_MEM_FENCE);
                gdn_swa_stage(Xc, DVC, q, Hq, hq, D, bos, q0, L, c * DVC, BQ, DVC, lid, WG);
                barrier(CLK_LOCAL_MEM_FENCE);
                GDN_TILE_MMA(dkacc[c], TK, TC, Ps, LDP, 0, Xc, DVC, 0, ry, 16, cx, 16, BQ);
            }
        }
    }

    for (int a = 0; a < TK; a++) {
        const int j = k0 + ry + 16 * a;
        if (j < L) {
            const ulong row = (ulong)(bos + j) * (ulong)Hkv + (ulong)hk;
            for (int c = 0; c < NCH; c++)
                for (int jj = 0; jj < TC; jj++) {
                    dk[row * D + c * DVC + cx + 16 * jj] = dkacc[c][a][jj] * (last ? scale : 1.0f);
                    dv[row * D + c * DVC + cx + 16 * jj] = dvacc[c][a][jj];
                }
        }
    }
}
