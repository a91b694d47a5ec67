/*
 * gated_delta/out_fwd.cl - forward stage F5 of the chunked gated delta rule
 * (docs/ALGORITHM.md §2.1, §2.2 "F5 pseudo-code", fla chunk_fwd_kernel_o):
 * the output of one chunk from its entering state and the intra-chunk part.
 *
 * Math, per chunk (rows i < L), value head hv (q/k head hv / (HV/H)) and
 * V tile:
 *   S_ij = (q_i . k_j) exp2(G_i - G_j)   for j <= i < L, else exactly 0
 *   o_i  = scale ( exp2(G_i) q_i^T h[c] + sum_j S_ij v_new_j )
 * Exponents are <= 0 and masked with select() before exp2.
 *
 * Shapes (F32, token-major): q, k [T, H, K]; G [T, HV]; h [NT, HV, K, V]
 * (state entering each global chunk); v_new, o [T, HV, V]; chunks [NT] int4
 * (seq, first token, length, chunk index).
 *
 * One work-group = one (V tile, chunk, value head): LX x LY work-items
 * (16 x 16 by default). Phase 1 stages q, k (64 x BK) and h (BK x BV)
 * slices and accumulates S (64/LY x 64/LX micro-tile per work-item) and
 * q h (64/LY x BV/LX);
 * phase 2 reuses the same local memory for the masked S (64 x 65) and the
 * v_new tile (64 x BV). S is recomputed per V tile (V / BV times).
 * Local memory: 4 * max(2 * 64 * (BK + 1) + BK * BV, 64 * 65 + 64 * BV)
 * + 256 bytes (32.5 KiB at BK = 32, BV = 64). Global (WG * NT * V / BV, HV),
 * local (WG, 1); group (c * V / BV + iv, hv).
 *
 * Tuning macros (#ifndef defaults; set by the out_fwd plan in
 * lib/ops/gated_delta/chunk_fwd.c through the tuning lookup):
 *   K, V  head dims, multiples of 16 in [16, 256] (required)
 *   BK    K slice: 16 or 32, dividing K (default 16)
 *   BV    V tile: 16, 32, 64 or 128, dividing V (default 16)
 *   LX    work-items along columns: 4, 8 or 16, dividing BV (default 16)
 *   LY    work-items along rows: 4, 8 or 16 (default 16)
 */
#include "gdn_common.clh"
#include "gdn_tile.clh"

#ifndef K
#error "K (key head dim) must be defined"
#endif
#ifndef V
#error "V (value head dim) must be defined"
#endif
#ifndef BK
#define BK 16
#endif
#ifndef BV
#define BV 16
#endif

#ifndef LX
#define LX 16
#endif
#ifndef LY
#define LY 16
#endif
#define CH  64
#define WG  (LX * LY)
#define TMS (CH / LY) /* rows of S and o per work-item */
#define TNS (CH / LX) /* columns of S per work-item */
#define LDQ (BK + 1)
#define LDS (CH + 1)
#define TNO (BV / LX)
#define P1  (2 * CH * LDQ + BK * BV)
#define P2  (CH * LDS + CH * BV)
#define SCRATCH (P1 > P2 ? P1 : P2)

#if (K % BK) != 0 || (V % BV) != 0 || (BK % 16) != 0 || (BV % 16) != 0
#error "out_fwd: BK / BV must be multiples of 16 dividing K / V"
#endif
#if (CH % LX) != 0 || (CH % LY) != 0 || (BV % LX) != 0
#error "out_fwd: LX, LY must divide 64 and LX must divide BV"
#endif

__kernel __attribute__((reqd_work_group_size(WG, 1, 1)))
void gated_delta_out_fwd(__global const float *q, __global const float *k,
                         __global const float *G, __global const float *h,
                         __global const float *v_new, __global const int4 *chunks,
                         __global float *o, int H, int HV, float scale)
{
    __local float LM[SCRATCH];
    __local float Gs[CH];
    __local float *QL = LM, *KL = LM + CH * LDQ, *HL = LM + 2 * CH * LDQ;
    __local float *SL = LM, *VL = LM + CH * LDS;
    const int      lid = (int)get_local_id(0);
    const int      tx = lid % LX, ty = lid / LX;
    const int      c = (int)get_group_id(0) / (V / BV);
    const int      iv = (int)get_group_id(0) - c * (V / BV);
    const int      hv = (int)get_group_id(1);
    const int      kh = hv / (HV / H);
    const int      v0 = iv * BV;
    const int4     ch = chunks[c];
    const int      first = ch.y, L = ch.z;
    const ulong    hbase = ((ulong)c * (ulong)HV + (ulong)hv) * (ulong)K * (ulong)V + (ulong)v0;
    float          accs[TMS][TNS], acco[TMS][TNO];

    for (int r = lid; r < CH; r += WG)
        Gs[r] = r < L ? G[(ulong)(first + r) * (ulong)HV + (ulong)hv] : 0.0f;
    GDN_TILE_ZERO(accs, TMS, TNS);
    GDN_TILE_ZERO(acco, TMS, TNO);
    for (int k0 = 0; k0 < K; k0 += BK) {
        barrier(CLK_LOCAL_MEM_FENCE);
        for (int e = lid; e < CH * BK; e += WG) {
            const int r = e / BK, d = e - r * BK;
            float     xq = 0.0f, xk = 0.0f;
            if (r < L) {
                const ulong at =
                    ((ulong)(first + r) * (ulong)H + (ulong)kh) * (ulong)K + (ulong)(k0 + d);
                xq = q[at];
                xk = k[at];
            }
            QL[r * LDQ + d] = xq;
            KL[r * LDQ + d] = xk;
        }
        for (int e = lid; e < BK * BV; e += WG) {
            const int r = e / BV, j = e - r * BV;
            HL[e]       = h[hbase + (ulong)(k0 + r) * V + (ulong)j];
        }
        barrier(CLK_LOCAL_MEM_FENCE);
        GDN_TILE_MMA(accs, TMS, TNS, QL, LDQ, 0, KL, LDQ, 1, ty, LY, tx, LX, BK);
        GDN_TILE_MMA(acco, TMS, TNO, QL, LDQ, 0, HL, BV, 0, ty, LY, tx, LX, BK);
    }
    barrier(CLK_LOCAL_MEM_FENCE);

    /* Phase 2: masked S and the v_new tile in the same local memory. */
    for (int a = 0; a < TMS; a++) {
        const int   i   = ty + LY * a;
        const float gi  = exp2(select(0.0f, Gs[i], (int)(i < L)));
        for (int j = 0; j < TNO; j++)
            acco[a][j] *= gi;
        for (int e = 0; e < TNS; e++) {
            const int   jj = tx + LX * e;
            const bool  m  = jj <= i && i < L;
            const float x  = select(0.0f, Gs[i] - Gs[jj], (int)m);
            SL[i * LDS + jj] = select(0.0f, accs[a][e] * exp2(x), (int)m);
        }
    }
    for (int e = lid; e < CH * BV; e += WG) {
        const int r = e / BV, j = e - r * BV;
        float     x = 0.0f;
        if (r < L)
            x = v_new[((ulong)(first + r) * (ulong)HV + (ulong)hv) * (ulong)V + (ulong)(v0 + j)];
        VL[e] = x;
    }
    barrier(CLK_LOCAL_MEM_FENCE);
    GDN_TILE_MMA(acco, TMS, TNO, SL, LDS, 0, VL, BV, 0, ty, LY, tx, LX, CH);
    for (int a = 0; a < TMS; a++) {
        const int i = ty + LY * a;
        if (i < L)
            for (int j = 0; j < TNO; j++)
                o[((ulong)(first + i) * (ulong)HV + (ulong)hv) * (ulong)V +
                  (ulong)(v0 + tx + LX * j)] = scale * acco[a][j];
    }
}
