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
 * (16 x 16 by default). Phase 1 stages q (64 x BK), k transposed (BK x 64)
 * and h (BK x BV) slices and accumulates S (lower 16 x 16 blocks only: the
 * upper ones are masked to 0) and q h; phase 2 reuses the same local
 * memory for the masked S (64 x 65) and the v_new tile (64 x BV). S is
 * recomputed per V tile (V / BV times). Two forms of the same arithmetic
 * (same products, summed in the same order):
 *  - LX > 1 (GPUs): each work-item owns a 64/LY x 64/LX strided micro-tile
 *    of S and a 64/LY x BV/LX one of o.
 *  - LX = 1 (CPUs, e.g. PoCL, where a work-group runs as a loop on one
 *    core): each work-item owns whole rows ty + LY a of S and o as float16
 *    vectors, processed in register groups of rows (4 rows of S; RGO rows
 *    of o) so the compiler keeps up to 16 vector accumulators in registers;
 *    the mask computes exp2 on float16, and S v_new skips the column blocks
 *    past each row's block. Row-form loops that would be innermost once
 *    their inner loops are unrolled run to WI_TRIP(n) (see below).
 * Local memory: 4 * max(2 * 64 * (BK + 1) + BK * BV, 64 * 65 + 64 * BV)
 * + 256 bytes (32.5 KiB at BK = 32, BV = 64). Global (WG * NT * V / BV, HV),
 * local (WG, 1); group (c * V / BV + iv, hv).
 *
 * Tuning macros (#ifndef defaults; set by the out_fwd plan in
 * lib/ops/gated_delta/chunk_fwd.c through the tuning lookup):
 *   K, V  head dims, multiples of 16 in [16, 256] (required)
 *   BK    K slice: 16 or 32, dividing K (default 16)
 *   BV    V tile: 16, 32, 64 or 128, dividing V (default 16)
 *   LX    work-items along columns: 1, 2, 4, 8 or 16, dividing BV (16)
 *   LY    work-items along rows: 4, 8 or 16 (default 16)
 *   VEC   1: the float4 form below (#if VEC), for GPUs; 0 (default): the
 *         two forms above
 *   GDN_TILE_UNROLL  the unroll factor of the float4 products' loops over k
 *                    (tuning parameter UNROLL; 0, the default: the
 *                    compiler's choice; cl/include/gdn_tile.clh)
 */
#include "gdn_common.clh"
#include "gdn_tile.clh"

/* The parameters of every kernel in this file, in the order the host binds them
 * (lib/ops/gated_delta): the forms differ in their bodies only. */
#define OUT_FWD_PARAMS                                                                             \
    __global const float *q, __global const float *k, __global const float *G,                     \
    __global const float *h, __global const float *v_new, __global const int4 *chunks,             \
    __global float *o, int H, int HV, float scale

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
#define LDT (CH + 1)  /* row stride of the transposed k slice */
#define LDS (CH + 1)
#define TNO (BV / LX)
#define NVO (BV / 16) /* float16 vectors per o row (row form) */
#define RGO (NVO >= 8 ? 2 : 4) /* rows per register group of o (row form) */
#define P1  (2 * CH * LDQ + BK * BV)
#define P2  (CH * LDS + CH * BV)
#define SCRATCH (P1 > P2 ? P1 : P2)

#if (K % BK) != 0 || (V % BV) != 0 || (BK % 16) != 0 || (BV % 16) != 0 || BK > 64
#error "out_fwd: BK / BV must be multiples of 16 dividing K / V (BK <= 64)"
#endif
#if (16 % LX) != 0 || (16 % LY) != 0 || LY < 4 || (BV % LX) != 0
#error "out_fwd: LX must divide 16 and BV, LY must be 4, 8 or 16"
#endif
/* The trip count n, written so that PoCL sees it depend on the work-item
 * (lid >> 30 is 0; the term folds away once PoCL has built the work-item
 * loops). PoCL (ImplicitLoopBarriers) adds an implicit barrier to every
 * innermost loop with a work-item-uniform trip count, which runs the
 * work-item loop inside it and keeps the row form's accumulators in memory
 * (2-4x slower kernels). */
#define WI_TRIP(n) ((n) + (lid >> 30))
/* Row ty + LY a of S lies in 16 x 16 block row BLK(a) (LY divides 16). */
#define BLK(a) (((LY) * (a)) / 16)

/* Both kernels' indices: work-item (tx, ty), chunk c (rows first ...
 * first + L - 1), value head hv reading q/k head kh, V tile at v0, and the
 * offset of the chunk's state tile. */
#define OUT_INDICES()                                                                              \
    const int   lid = (int)get_local_id(0);                                                        \
    const int   tx = lid % LX, ty = lid / LX;                                                      \
    const int   c  = (int)get_group_id(0) / (V / BV);                                              \
    const int   iv = (int)get_group_id(0) - c * (V / BV);                                          \
    const int   hv = (int)get_group_id(1);                                                         \
    const int   kh = hv / (HV / H);                                                                \
    const int   v0 = iv * BV;                                                                      \
    const int4  ch = chunks[c];                                                                    \
    const int   first = ch.y, L = ch.z;                                                            \
    const ulong hbase = ((ulong)c * (ulong)HV + (ulong)hv) * (ulong)K * (ulong)V + (ulong)v0

#ifndef VEC
#define VEC 0
#endif
#if VEC
/*
 * VEC=1: every product reads its operands from local memory as float4
 * (GDN_TILE_MMA4, outer-product layout: A k-major, B row-major). Work-item
 * (tx, ty) owns the TMS contiguous rows ra = TMS ty ... of S and o, and
 * column groups of 4 at 4 tx + 4 LX g (g < TNS / 4 of S, < TNO / 4 of o):
 * neighbouring work-items read neighbouring float4s (no bank conflicts).
 * Phase 1 stages q and k transposed (QT, KT: [BK][68], rows padded so the
 * transposed stores hit at most 2 lanes per bank) and h ([BK][BV]):
 * S += QT^T KT, o += QT^T h. Phase 2 stores the masked S transposed (ST:
 * [64][LDV], ST[j LDV + i] = S_ij) and v_new ([64][BV]): o += ST^T v_new.
 * The causal structure is skipped where a whole column group of S (or the
 * inner index of S v_new) lies past the work-item's last row: on GPUs this
 * saves the time of a SIMD group only when all its work-items skip, which
 * contiguous rows per work-item make common. The gates come from global
 * memory into registers. Needs 64 / LX, 64 / LY and BV / LX multiples of 4
 * (LX, LY in {4, 8, 16}, BV >= 4 LX). Local memory: 4 * max(2 * 68 BK + BK
 * BV, 64 LDV + 64 BV) bytes, LDV = 68 (64 at BV = 128): 33 KiB at BK = 32,
 * BV = 64; 48 KiB at BV = 128.
 */
#define LDV  (BV >= 128 ? CH : CH + 4)
#define NGS  (TNS / 4) /* column groups of S per work-item */
#define NGO  (TNO / 4) /* column groups of o per work-item */
#define LDQT (CH + 4) /* rows of QT and KT */
#define VP1  (2 * BK * LDQT + BK * BV)
#define VP2  (CH * LDV + CH * BV)
#define VSCR (VP1 > VP2 ? VP1 : VP2)
#if (TMS % 4) != 0 || (TNS % 4) != 0 || (TNO % 4) != 0
#error "out_fwd: VEC needs 64 / LY, 64 / LX and BV / LX to be multiples of 4"
#endif
/* Column of S (or o) in group g, lane e of work-item tx. */
#define VCOL(g, e) (4 * tx + 4 * LX * (g) + (e))

__kernel __attribute__((reqd_work_group_size(WG, 1, 1)))
void gated_delta_out_fwd(OUT_FWD_PARAMS)
{
    __local float4 LM4[VSCR / 4]; /* float4: aligned for the MMA4 reads */
    __local float *LM = (__local float *)LM4;
    __local float *QT = LM, *KT = LM + BK * LDQT, *HL = LM + 2 * BK * LDQT;
    __local float *ST = LM, *VL = LM + CH * LDV;
    OUT_INDICES();
    const ulong    qkbase = ((ulong)first * (ulong)H + (ulong)kh) * (ulong)K; /* row stride H K */
    const int      ra = TMS * ty;   /* this work-item's first row */
    const int      rend = ra + TMS; /* one past its last row */
    float          accs[NGS][TMS][4], acco[TMS][TNO], gr[TMS], gc[TNS];

    /* Gates of this work-item's rows and columns of S (0 past the chunk). */
    for (int a = 0; a < TMS; a++)
        gr[a] = ra + a < L ? G[(ulong)(first + ra + a) * (ulong)HV + (ulong)hv] : 0.0f;
    for (int g = 0; g < NGS; g++)
        for (int e = 0; e < 4; e++) {
            const int j = VCOL(g, e);
            gc[4 * g + e] = j < L ? G[(ulong)(first + j) * (ulong)HV + (ulong)hv] : 0.0f;
        }
    for (int g = 0; g < NGS; g++)
        GDN_TILE_ZERO(accs[g], TMS, 4);
    GDN_TILE_ZERO(acco, TMS, TNO);

    for (int k0 = 0; k0 < K; k0 += BK) {
        barrier(CLK_LOCAL_MEM_FENCE);
        /* q and k transposed */
        GDN_TILE_STAGE_T(QT, LDQT, q + qkbase + k0, (ulong)H * K, CH, BK, L, lid, WG);
        GDN_TILE_STAGE_T(KT, LDQT, k + qkbase + k0, (ulong)H * K, CH, BK, L, lid, WG);
        for (int e = lid; e < BK * (BV / 4); e += WG) {
            const int r = e / (BV / 4), j = 4 * (e - r * (BV / 4));
            GDN_ST4L(GDN_LD4G(h + hbase + (ulong)(k0 + r) * V + (ulong)j), HL + r * BV + j);
        }
        barrier(CLK_LOCAL_MEM_FENCE);
        /* S: column groups wholly past this work-item's last row are 0. */
#pragma unroll
        for (int g = 0; g < NGS; g++)
            if (VCOL(g, 0) < rend)
                GDN_TILE_MMA4(accs[g], TMS, 4, QT, LDQT, ra, 4, KT, LDQT, VCOL(g, 0), 4, BK);
        GDN_TILE_MMA4(acco, TMS, TNO, QT, LDQT, ra, 4, HL, BV, 4 * tx, 4 * LX, BK);
    }
    barrier(CLK_LOCAL_MEM_FENCE);

    /* Phase 2: o = exp2(G_i) q h; the masked S transposed and v_new. */
    for (int a = 0; a < TMS; a++) {
        const float ei = exp2(select(0.0f, gr[a], (int)(ra + a < L)));
        for (int j = 0; j < TNO; j++)
            acco[a][j] *= ei;
    }
#pragma unroll
    for (int g = 0; g < NGS; g++)
#pragma unroll
        for (int e = 0; e < 4; e++) {
            const int j = VCOL(g, e);
            for (int a = 0; a < TMS; a += 4) {
                float y[4];
#pragma unroll
                for (int t = 0; t < 4; t++) {
                    const int   i = ra + a + t;
                    const bool  m = j <= i && i < L;
                    const float x = select(0.0f, gr[a + t] - gc[4 * g + e], (int)m);
                    y[t]          = select(0.0f, accs[g][a + t][e] * exp2(x), (int)m);
                }
                *(__local float4 *)(ST + j * LDV + ra + a) = (float4)(y[0], y[1], y[2], y[3]);
            }
        }
    for (int e = lid; e < CH * (BV / 4); e += WG) {
        const int r = e / (BV / 4), j = 4 * (e - r * (BV / 4));
        float4    x = (float4)0.0f;
        if (r < L)
            x = GDN_LD4G(v_new + ((ulong)(first + r) * (ulong)HV + (ulong)hv) * (ulong)V +
                         (ulong)(v0 + j));
        GDN_ST4L(x, VL + r * BV + j);
    }
    barrier(CLK_LOCAL_MEM_FENCE);
    /* o += S v_new over j < min(last row + 1, L) (S_ij = 0 past them). */
    GDN_TILE_MMA4(acco, TMS, TNO, ST, LDV, ra, 4, VL, BV, 4 * tx, 4 * LX, min(rend, L));
    for (int a = 0; a < TMS; a++) {
        const int i = ra + a;
        if (i < L)
            for (int g = 0; g < NGO; g++)
                GDN_ST4G(scale * (float4)(acco[a][4 * g], acco[a][4 * g + 1], acco[a][4 * g + 2],
                                          acco[a][4 * g + 3]),
                         o + ((ulong)(first + i) * (ulong)HV + (ulong)hv) * (ulong)V +
                             (ulong)(v0 + VCOL(g, 0)));
    }
}
#else /* VEC */
__kernel __attribute__((reqd_work_group_size(WG, 1, 1)))
void gated_delta_out_fwd(OUT_FWD_PARAMS)
{
    __local float LM[SCRATCH];
    __local float Gs[CH];
    /* (BK x 65 of KT fits in the 64 x (BK + 1) of the slot for BK <= 64.) */
    __local float *QL = LM, *KT = LM + CH * LDQ, *HL = LM + 2 * CH * LDQ;
    __local float *SL = LM, *VL = LM + CH * LDS;
    OUT_INDICES();
#if LX == 1
    float16        accs[TMS][4], acco[TMS][NVO];
#else
    float          accs[TMS][TNS], acco[TMS][TNO];
#endif

    for (int r = lid; r < CH; r += WG)
        Gs[r] = r < L ? G[(ulong)(first + r) * (ulong)HV + (ulong)hv] : 0.0f;
#if LX == 1
    for (int a = 0; a < TMS; a++) {
        for (int v = 0; v < 4; v++)
            accs[a][v] = (float16)0.0f;
        for (int v = 0; v < NVO; v++)
            acco[a][v] = (float16)0.0f;
    }
#else
    GDN_TILE_ZERO(accs, TMS, TNS);
    GDN_TILE_ZERO(acco, TMS, TNO);
#endif
    for (int k0 = 0; k0 < K; k0 += BK) {
        barrier(CLK_LOCAL_MEM_FENCE);
#if LX == 1
        for (int r = lid; r < CH; r += WG) {
            const ulong at = ((ulong)(first + r) * (ulong)H + (ulong)kh) * (ulong)K + (ulong)k0;
            for (int d0 = 0; d0 < BK; d0 += 16) {
                float         x[16];
                const float16 xq = r < L ? vload16(0, q + at + d0) : (float16)0.0f;
                vstore16(xq, 0, QL + r * LDQ + d0);
                vstore16(r < L ? vload16(0, k + at + d0) : (float16)0.0f, 0, x);
#pragma unroll
                for (int d = 0; d < 16; d++)
                    KT[(d0 + d) * LDT + r] = x[d];
            }
        }
        for (int e = lid; e < BK * NVO; e += WG) {
            const int r = e / NVO, j = 16 * (e - r * NVO);
            vstore16(vload16(0, h + hbase + (ulong)(k0 + r) * V + (ulong)j), 0, HL + r * BV + j);
        }
#else
        for (int e = lid; e < CH * BK; e += WG) {
            const int r = e / BK, d = e - r * BK;
            float     xq = 0.0f, xk = 0.0f;
            if (r < L) {
                const ulong at =
                    ((ulong)(first + r) * (ulong)H + (ulong)kh) * (ulong)K + (ulong)(k0 + d);
                xq = q[at];
                xk = k[at];
            }
            QL[r * LDQ + d]  = xq;
            KT[d * LDT + r] = xk;
        }
        for (int e = lid; e < BK * BV; e += WG) {
            const int r = e / BV, j = e - r * BV;
            HL[e]       = h[hbase + (ulong)(k0 + r) * V + (ulong)j];
        }
#endif
        barrier(CLK_LOCAL_MEM_FENCE);
#if LX == 1
        /* S rows in groups of 4 (blocks 0 .. BLK(a) only), then q h rows in
         * groups of RGO. */
        for (int g = 0; g < TMS / 4; g++) {
            float16 cs[4][4];
#pragma unroll
            for (int r = 0; r < 4; r++)
#pragma unroll
                for (int v = 0; v < 4; v++)
                    cs[r][v] = accs[4 * g + r][v];
            for (int kk = 0; kk < WI_TRIP(BK); kk++) {
                float16 bk[4];
#pragma unroll
                for (int v = 0; v < 4; v++)
                    bk[v] = vload16(v, KT + kk * LDT);
#pragma unroll
                for (int r = 0; r < 4; r++) {
                    const float16 ar = (float16)QL[(ty + LY * (4 * g + r)) * LDQ + kk];
#pragma unroll
                    for (int v = 0; v < 4; v++)
                        if (v <= BLK(4 * g + r))
                            cs[r][v] = fma(ar, bk[v], cs[r][v]);
                }
            }
#pragma unroll
            for (int r = 0; r < 4; r++)
#pragma unroll
                for (int v = 0; v < 4; v++)
                    accs[4 * g + r][v] = cs[r][v];
        }
        for (int g = 0; g < TMS / RGO; g++) {
            float16 co[RGO][NVO];
#pragma unroll
            for (int r = 0; r < RGO; r++)
#pragma unroll
                for (int v = 0; v < NVO; v++)
                    co[r][v] = acco[RGO * g + r][v];
            for (int kk = 0; kk < WI_TRIP(BK); kk++) {
                float16 bh[NVO];
#pragma unroll
                for (int v = 0; v < NVO; v++)
                    bh[v] = vload16(v, HL + kk * BV);
#pragma unroll
                for (int r = 0; r < RGO; r++) {
                    const float16 ar = (float16)QL[(ty + LY * (RGO * g + r)) * LDQ + kk];
#pragma unroll
                    for (int v = 0; v < NVO; v++)
                        co[r][v] = fma(ar, bh[v], co[r][v]);
                }
            }
#pragma unroll
            for (int r = 0; r < RGO; r++)
#pragma unroll
                for (int v = 0; v < NVO; v++)
                    acco[RGO * g + r][v] = co[r][v];
        }
#else
        for (int kk = 0; kk < BK; kk++) {
            float bc[TNS];
            /* (unrolled, so the bound of e is a constant per a and the
             * accumulators stay in registers) */
#pragma unroll
            for (int e = 0; e < TNS; e++)
                bc[e] = KT[kk * LDT + tx + LX * e];
#pragma unroll
            for (int a = 0; a < TMS; a++) {
                const float ar = QL[(ty + LY * a) * LDQ + kk];
#pragma unroll
                for (int e = 0; e < (BLK(a) + 1) * (16 / LX); e++)
                    accs[a][e] = fma(ar, bc[e], accs[a][e]);
            }
        }
        GDN_TILE_MMA(acco, TMS, TNO, QL, LDQ, 0, HL, BV, 0, ty, LY, tx, LX, BK);
#endif
    }
    barrier(CLK_LOCAL_MEM_FENCE);

    /* Phase 2: masked S and the v_new tile in the same local memory. */
#if LX == 1
    for (int a = 0; a < WI_TRIP(TMS); a++) {
        const int     i = ty + LY * a;
        const float   gi = Gs[i];
        const float16 ei = (float16)exp2(select(0.0f, gi, (int)(i < L)));
#pragma unroll
        for (int v = 0; v < NVO; v++)
            acco[a][v] *= ei;
#pragma unroll
        for (int v = 0; v < 4; v++) {
            const int16   j = (int16)(16 * v) + (int16)(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12,
                                                        13, 14, 15);
            const int16   m = (j <= (int16)i) & (int16)(i < L ? -1 : 0);
            const float16 x = select((float16)0.0f, (float16)gi - vload16(v, Gs), m);
            float16       y = (float16)0.0f;
            if (v <= BLK(a))
                y = select((float16)0.0f, accs[a][v] * exp2(x), m);
            vstore16(y, 0, SL + i * LDS + 16 * v);
        }
    }
    for (int e = lid; e < CH * NVO; e += WG) {
        const int r = e / NVO, j = 16 * (e - r * NVO);
        float16   x = (float16)0.0f;
        if (r < L)
            x = vload16(0, v_new + ((ulong)(first + r) * (ulong)HV + (ulong)hv) * (ulong)V +
                               (ulong)(v0 + j));
        vstore16(x, 0, VL + r * BV + j);
    }
    barrier(CLK_LOCAL_MEM_FENCE);
    /* o rows += S v_new over the columns j of blocks 0 .. BLK(a) (S is 0
     * past them), in order of j. */
    for (int g = 0; g < TMS / RGO; g++) {
        float16 co[RGO][NVO];
#pragma unroll
        for (int r = 0; r < RGO; r++)
#pragma unroll
            for (int v = 0; v < NVO; v++)
                co[r][v] = acco[RGO * g + r][v];
        for (int j = 0; j < WI_TRIP(16 * (BLK(RGO * g + RGO - 1) + 1)); j++) {
            float16 bv[NVO];
#pragma unroll
            for (int v = 0; v < NVO; v++)
                bv[v] = vload16(v, VL + j * BV);
#pragma unroll
            for (int r = 0; r < RGO; r++)
                if (j < 16 * (BLK(RGO * g + r) + 1)) {
                    const float16 sr = (float16)SL[(ty + LY * (RGO * g + r)) * LDS + j];
#pragma unroll
                    for (int v = 0; v < NVO; v++)
                        co[r][v] = fma(sr, bv[v], co[r][v]);
                }
        }
#pragma unroll
        for (int r = 0; r < RGO; r++) {
            const int i = ty + LY * (RGO * g + r);
            if (i < L)
#pragma unroll
                for (int v = 0; v < NVO; v++)
                    vstore16(scale * co[r][v], 0,
                             o + ((ulong)(first + i) * (ulong)HV + (ulong)hv) * (ulong)V +
                                 (ulong)(v0 + 16 * v));
        }
    }
#else
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
#endif
}
#endif /* VEC */
