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
 *   BK    K slice: 16 or 32 (8 or 16 with VEC=2 or 3), dividing K (default 16)
 *   BV    V tile: 16, 32, 64 or 128, dividing V (default 16)
 *   LX    work-items along columns: 1, 2, 4, 8 or 16, dividing BV (16)
 *   LY    work-items along rows: 4, 8 or 16 (default 16)
 *   VEC   1 or 2: the float4 forms below, for GPUs (2: row-major operands,
 *         copied ahead); 3: VEC=2's copies with the products on warp tiles
 *         (GDN_TC); 0 (default): the two forms above
 *   GDN_ASYNC  1: GDN_CP16 is cp.async (VEC=2 and 3; the host sets it on
 *         NVIDIA compute capability >= 8.0), 0 (default): its plain twin
 *   GDN_TC  1: VEC=3's products are 3xTF32 mma.sync (the host sets it where
 *         it sets GDN_ASYNC), 0 (default): their plain twin
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
#ifndef VEC
#define VEC 0
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

#if (K % BK) != 0 || (V % BV) != 0 || ((BK % 16) != 0 && !(VEC >= 2 && BK == 8)) ||           \
    (BV % 16) != 0 || BK > 64
#error "out_fwd: BK / BV must be multiples of 16 (BK 8 too with VEC=2, 3) dividing K / V (BK <= 64)"
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

/* Phase 2 of the forms with strided columns of S (VEC=2 and the scalar GPU
 * form): o rows ROW(a) scaled by exp2(G_i), and S (columns tx + LX e) masked
 * and stored at S_AT(i, j), with the gates GI(a) of the rows and GJ(e) of the
 * columns. The exponent is masked before exp2. */
#define OUT_SCALE_MASK(ROW, GI, GJ, S_AT)                                                          \
    do {                                                                                           \
        for (int a_ = 0; a_ < TMS; a_++) {                                                         \
            const int   i_  = ROW(a_);                                                             \
            const float ei_ = exp2(select(0.0f, GI(a_), (int)(i_ < L)));                           \
            for (int j_ = 0; j_ < TNO; j_++)                                                       \
                acco[a_][j_] *= ei_;                                                               \
            for (int e_ = 0; e_ < TNS; e_++) {                                                     \
                const int   j_ = tx + LX * e_;                                                     \
                const bool  m_ = j_ <= i_ && i_ < L;                                               \
                const float x_ = select(0.0f, GI(a_) - GJ(e_), (int)m_);                           \
                S_AT(i_, j_)   = select(0.0f, accs[a_][e_] * exp2(x_), (int)m_);                   \
            }                                                                                      \
        }                                                                                          \
    } while (0)

/* The float4 forms' output: rows ra + a < L of o, column groups 4 tx + 4 LX g
 * (g < TNO / 4), times scale. */
#define OUT_STORE4()                                                                               \
    do {                                                                                           \
        for (int a_ = 0; a_ < TMS; a_++) {                                                         \
            const int i_ = ra + a_;                                                                \
            if (i_ < L)                                                                            \
                for (int g_ = 0; g_ < TNO / 4; g_++)                                               \
                    GDN_ST4G(scale * (float4)(acco[a_][4 * g_], acco[a_][4 * g_ + 1],              \
                                              acco[a_][4 * g_ + 2], acco[a_][4 * g_ + 3]),         \
                             o + ((ulong)(first + i_) * (ulong)HV + (ulong)hv) * (ulong)V +        \
                                 (ulong)(v0 + 4 * tx + 4 * LX * g_));                              \
        }                                                                                          \
    } while (0)

/* The copied forms (VEC = 2, 3): slice s (columns s BK ... of q and k, rows
 * s BK ... of h) into slot b of LM, slots sz floats apart: q and k rows
 * (rows past L: row L - 1) ldq apart, then h rows ldh apart. */
#define OUT_COPY_SLICE_(s, b, sz, ldq, ldh)                                                        \
    do {                                                                                           \
        __local float *d_ = LM + (b) * (sz);                                                       \
        const int      k0_ = (s) * BK;                                                             \
        for (int e_ = lid; e_ < CH * (BK / 4); e_ += WG) {                                         \
            const int r_ = e_ / (BK / 4), c_ = 4 * (e_ - r_ * (BK / 4));                           \
            const int o_ = min(r_, L - 1) * (H * K) + k0_ + c_;                                    \
            GDN_CP16(d_ + r_ * (ldq) + c_, qc + o_);                                               \
            GDN_CP16(d_ + CH * (ldq) + r_ * (ldq) + c_, kc + o_);                                  \
        }                                                                                          \
        for (int e_ = lid; e_ < BK * (BV / 4); e_ += WG) {                                         \
            const int r_ = e_ / (BV / 4), c_ = 4 * (e_ - r_ * (BV / 4));                           \
            GDN_CP16(d_ + 2 * CH * (ldq) + r_ * (ldh) + c_, hc + ((k0_ + r_) * V + c_));           \
        }                                                                                          \
    } while (0)

#if VEC == 1
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
    OUT_STORE4();
}
#elif VEC == 2
/*
 * VEC=2: the float4 products of VEC=1 with every operand staged row-major
 * and copied by GDN_CP16 (cp.async on NVIDIA, a plain load and store on
 * other devices: cl/include/gdn_tile.clh) into two slots, so the copy of K
 * slice s + 1 runs while slice s is multiplied, with one barrier per slice.
 * (H200, B = 4: VEC=1 took 0.56 ms, and 0.44 without its phase 1 loads: the
 * loads and the products of its groups did not overlap.) A slot holds the q
 * and k slices (64 x BK each, rows padded to BK + 4 floats, so the float4
 * reads of k rows by 8 neighbouring work-items hit different banks) and h
 * rows (BK x BV).
 * Work-item (tx, ty) owns the TMS contiguous rows ra = TMS ty ... of S and
 * o, the strided columns tx + LX e (e < TNS) of S and the column groups
 * 4 tx + 4 LX g of o. q is read as one float4 of four k per row
 * (GDN_TILE_LOAD4R) for both products: S += q k^T (GDN_TILE_DOT4_STEP) and
 * o += q h (GDN_TILE_MMA4R_STEP). A column stride e of S whose columns all
 * lie past the work-item's last row or past L (LX e >= min(row end, L)) is
 * skipped; with LX = 16 and 8 rows per work-item the two row groups of a
 * warp of 32 skip the same strides, so the causal half of q k^T costs no
 * time. Phase 2: S masked into SR (row-major, 64 x 64) while v_new is copied
 * (VL, 64 x BV); o += S v_new over j < min(row end, L) rounded up to 4 (S is
 * an exact 0 there). q, k and v_new rows past L repeat row L - 1: they reach
 * only entries of S the mask zeroes, rows of o never stored and exact zeros
 * of S. Offsets into the token-major tensors are int (T HV max(K, V) < 2^31,
 * api.c). Needs BK = 8 or 16 and BV / LX a multiple of 4. Local memory:
 * 4 * max(2 (2 * 64 (BK + 4) + BK BV), 64 * 64 + 64 BV) bytes, 48 KiB at
 * BV = 128.
 */
#define LDQ2 (BK + 4) /* row stride of the q and k slices */
#define SLOT (2 * CH * LDQ2 + BK * BV)
#define AP1  (2 * SLOT)
#define AP2  (CH * CH + CH * BV)
#define ASCR (AP1 > AP2 ? AP1 : AP2)
#if (BK != 8 && BK != 16) || (TNO % 4) != 0
#error "out_fwd: VEC=2 needs BK = 8 or 16 and BV / LX a multiple of 4"
#endif

__kernel __attribute__((reqd_work_group_size(WG, 1, 1)))
void gated_delta_out_fwd(OUT_FWD_PARAMS)
{
    __local float4 LM4[ASCR / 4]; /* float4: aligned for the float4 reads and copies */
    __local float *LM = (__local float *)LM4;
    __local float *SR = LM, *VL = LM + CH * CH;
    OUT_INDICES();
    const __global float *qc = q + (first * H + kh) * K; /* the chunk's first rows */
    const __global float *kc = k + (first * H + kh) * K;
    const __global float *hc = h + hbase;
    const int             ra = TMS * ty, rend = ra + TMS;
    const int             ne = min(TNS, (min(rend, L) + LX - 1) / LX); /* S column strides */
    float                 accs[TMS][TNS], acco[TMS][TNO], gr[TMS], gc[TNS];

    for (int a = 0; a < TMS; a++)
        gr[a] = ra + a < L ? G[(first + ra + a) * HV + hv] : 0.0f;
    for (int e = 0; e < TNS; e++)
        gc[e] = tx + LX * e < L ? G[(first + tx + LX * e) * HV + hv] : 0.0f;
    GDN_TILE_ZERO(accs, TMS, TNS);
    GDN_TILE_ZERO(acco, TMS, TNO);

#define OUT_COPY_SLICE(s, b) OUT_COPY_SLICE_(s, b, SLOT, LDQ2, BV)

    OUT_COPY_SLICE(0, 0);
    for (int s = 0; s < K / BK; s++) {
        __local const float *QS = LM + (s & 1) * SLOT, *KS = QS + CH * LDQ2;
        __local const float *HS = KS + CH * LDQ2;
        GDN_CP_WAIT();
        barrier(CLK_LOCAL_MEM_FENCE); /* slice s is in; the other slot's readers are done */
        if (s + 1 < K / BK)
            OUT_COPY_SLICE(s + 1, (s + 1) & 1);
#pragma unroll
        for (int kk = 0; kk < BK; kk += 4) {
            float4 a4[TMS];
            GDN_TILE_LOAD4R(a4, TMS, QS, LDQ2, ra, kk);
            GDN_TILE_DOT4_STEP(accs, TMS, TNS, a4, KS, LDQ2, tx, LX, 0, ne, kk);
            GDN_TILE_MMA4R_STEP(acco, TMS, TNO, a4, HS, BV, 4 * tx, 4 * LX, kk);
        }
    }
#undef OUT_COPY_SLICE
    barrier(CLK_LOCAL_MEM_FENCE); /* the slots are free: phase 2 reuses them */

    /* Phase 2: v_new copied while S is masked into SR. */
    for (int e = lid; e < CH * (BV / 4); e += WG) {
        const int r = e / (BV / 4), c = 4 * (e - r * (BV / 4));
        GDN_CP16(VL + r * BV + c, v_new + ((first + min(r, L - 1)) * HV + hv) * V + v0 + c);
    }
#define OUT_ROW(a)  (ra + (a))
#define OUT_GI(a)   gr[a]
#define OUT_GJ(e)   gc[e]
#define OUT_S(i, j) SR[(i) * CH + (j)]
    OUT_SCALE_MASK(OUT_ROW, OUT_GI, OUT_GJ, OUT_S);
#undef OUT_ROW
#undef OUT_GI
#undef OUT_GJ
#undef OUT_S
    GDN_CP_WAIT();
    barrier(CLK_LOCAL_MEM_FENCE);
    /* o += S v_new over j < min(row end, L) (S_ij = 0 past it) */
    for (int kk = 0; kk < min(rend, L); kk += 4) {
        float4 a4[TMS];
        GDN_TILE_LOAD4R(a4, TMS, SR, CH, ra, kk);
        GDN_TILE_MMA4R_STEP(acco, TMS, TNO, a4, VL, BV, 4 * tx, 4 * LX, kk);
    }
    OUT_STORE4();
}
#elif VEC == 3
/*
 * VEC=3: the products on GDN_TC's warp tiles (cl/include/gdn_tile.clh:
 * 3xTF32 mma.sync on NVIDIA's tensor cores with GDN_TC=1, its plain twin
 * elsewhere), 16 x 16 work-items = eight SIMD groups of 32. Group w owns
 * rows r0 = 16 (w % 4) ... r0 + 15 of the chunk, the 8-column tiles 4 (w /
 * 4) ... of S that its rows need (tiles past its last row or past L are
 * never formed: the group of rows 0-15 forms one or two, that of rows 48-63
 * up to four) and half of the V tile for o (BV / 2 columns: BV / 16 tiles).
 * Phase 1 copies q, k (64 x BK, rows padded to BK + 4) and h (BK x BV, rows
 * padded to BV + 8, so every fragment read is free of bank conflicts) a
 * slice ahead into two slots, as VEC=2: S += q k^T, o += q h, eight k per
 * step. Phase 2: S masked (select before exp2) into SR (64 x 68,
 * row-major) while the first 32 rows of v_new are copied; o += S v_new over
 * those rows, then over the next 32 (which rows 32-63 need). The group of
 * rows r0 reads S columns below 8 ceil(min(r0 + 16, L) / 8) only: those are
 * formed by it and its twin group of the other V half. q, k and v_new rows
 * past L repeat row L - 1 (finite, reaching only products the mask zeroes or
 * rows never stored). Local memory: 4 * max(2 (2 * 64 (BK + 4) + BK (BV +
 * 8)), 64 * 68 + 32 (BV + 8)) bytes, 37 KiB at BK = 16, BV = 128.
 */
#define LDQ3  (BK + 4)  /* row stride of the q and k slices */
#define LDH3  (BV + 8)  /* row stride of h and v_new */
#define LDS3  (CH + 4)  /* row stride of S */
#define SLOT3 (2 * CH * LDQ3 + BK * LDH3)
#define NO3   (BV / 16) /* 8-column tiles of o per group */
#define TP1   (2 * SLOT3)
#define TP2   (CH * LDS3 + 32 * LDH3)
#define TSCR  (TP1 > TP2 ? TP1 : TP2)
#if WG != 256 || (BK != 8 && BK != 16) || (BV % 16) != 0 || BV > 128
#error "out_fwd: VEC=3 needs 16 x 16 work-items, BK = 8 or 16 and BV = 16, 32, 64 or 128"
#endif

__kernel __attribute__((reqd_work_group_size(WG, 1, 1)))
void gated_delta_out_fwd(OUT_FWD_PARAMS)
{
    __local float4 LM4[TSCR / 4]; /* float4: aligned for the copies */
    __local float *LM = (__local float *)LM4;
    __local float *SR = LM, *VL = LM + CH * LDS3;
    OUT_INDICES();
    const __global float *qc = q + (first * H + kh) * K; /* the chunk's first rows */
    const __global float *kc = k + (first * H + kh) * K;
    const __global float *hc = h + hbase;
    const int             w = lid >> 5, r0 = 16 * (w & 3), vh = w >> 2;
    const int             nc = min(2 * (w & 3) + 2, (L + 7) / 8); /* tiles of S the rows need */
    const int             j0 = 4 * vh, n0 = vh * (BV / 2);
    float                 accs[4][4], acco[NO3][4], af[GDN_TC_AN], bf[GDN_TC_BN];

    GDN_TILE_ZERO(accs, 4, 4);
    GDN_TILE_ZERO(acco, NO3, 4);

#define OUT_COPY_SLICE3(s, b) OUT_COPY_SLICE_(s, b, SLOT3, LDQ3, LDH3)
/* Rows r1 ... r1 + 31 of the v_new tile into VL. */
#define OUT_COPY_VNEW3(r1)                                                                         \
    do {                                                                                           \
        for (int e_ = lid; e_ < 32 * (BV / 4); e_ += WG) {                                         \
            const int r_ = e_ / (BV / 4), c_ = 4 * (e_ - r_ * (BV / 4));                           \
            GDN_CP16(VL + r_ * LDH3 + c_,                                                          \
                     v_new + ((first + min((r1) + r_, L - 1)) * HV + hv) * V + v0 + c_);           \
        }                                                                                          \
    } while (0)

    OUT_COPY_SLICE3(0, 0);
    for (int s = 0; s < K / BK; s++) {
        __local const float *QS = LM + (s & 1) * SLOT3, *KS = QS + CH * LDQ3;
        __local const float *HS = KS + CH * LDQ3;
        GDN_CP_WAIT();
        barrier(CLK_LOCAL_MEM_FENCE); /* slice s is in; the other slot's readers are done */
        if (s + 1 < K / BK)
            OUT_COPY_SLICE3(s + 1, (s + 1) & 1);
#pragma unroll
        for (int kk = 0; kk < BK; kk += 8) {
            GDN_TC_LOAD_A(af, QS, LDQ3, r0, kk);
#pragma unroll
            for (int j = 0; j < 4; j++)
                if (j0 + j < nc) {
                    GDN_TC_LOAD_BT(bf, KS, LDQ3, kk, 8 * (j0 + j));
                    GDN_TC_MMA(accs[j], af, bf);
                }
#pragma unroll
            for (int j = 0; j < NO3; j++) {
                GDN_TC_LOAD_B(bf, HS, LDH3, kk, n0 + 8 * j);
                GDN_TC_MMA(acco[j], af, bf);
            }
        }
    }
    barrier(CLK_LOCAL_MEM_FENCE); /* the slots are free: phase 2 reuses them */

    /* Phase 2: v_new rows 0-31 copied while o is scaled by exp2(G_i) and S
     * masked into SR. */
    OUT_COPY_VNEW3(0);
    for (int e = 0; e < 4; e += 2) {
        const int   i  = r0 + GDN_TC_ROW(e);
        const float gi = i < L ? G[(first + i) * HV + hv] : 0.0f;
        const float ei = exp2(gi);
        for (int j = 0; j < NO3; j++)
            acco[j][e] *= ei, acco[j][e + 1] *= ei;
        for (int j = 0; j < 4; j++)
            if (j0 + j < nc)
                for (int f = e; f < e + 2; f++) {
                    const int   c  = 8 * (j0 + j) + GDN_TC_COL(f);
                    const bool  m  = c <= i && i < L;
                    const float gc = c < L ? G[(first + c) * HV + hv] : 0.0f;
                    const float x  = select(0.0f, gi - gc, (int)m);
                    SR[i * LDS3 + c] = select(0.0f, accs[j][f] * exp2(x), (int)m);
                }
    }
    GDN_CP_WAIT();
    barrier(CLK_LOCAL_MEM_FENCE);
    /* o += S v_new: S columns 0-31 (tiles j < min(nc, 4)), then 32-63 */
#pragma unroll
    for (int j = 0; j < 4; j++)
        if (j < nc) {
            GDN_TC_LOAD_A(af, SR, LDS3, r0, 8 * j);
#pragma unroll
            for (int n = 0; n < NO3; n++) {
                GDN_TC_LOAD_B(bf, VL, LDH3, 8 * j, n0 + 8 * n);
                GDN_TC_MMA(acco[n], af, bf);
            }
        }
    /* (Also when L <= 32, where no group needs them: PoCL 3.1 skipped the
     * last tile of this loop when the barriers sat inside an if (L > 32).) */
    barrier(CLK_LOCAL_MEM_FENCE);
    OUT_COPY_VNEW3(32);
    GDN_CP_WAIT();
    barrier(CLK_LOCAL_MEM_FENCE);
#pragma unroll
    for (int j = 4; j < 8; j++)
        if (j < nc) {
            GDN_TC_LOAD_A(af, SR, LDS3, r0, 8 * j);
#pragma unroll
            for (int n = 0; n < NO3; n++) {
                GDN_TC_LOAD_B(bf, VL, LDH3, 8 * (j - 4), n0 + 8 * n);
                GDN_TC_MMA(acco[n], af, bf);
            }
        }
#undef OUT_COPY_SLICE3
#undef OUT_COPY_VNEW3
    /* o rows r0 + ROW(e) < L, columns n0 + 8 n + COL(e), times scale */
    for (int e = 0; e < 4; e += 2) {
        const int i = r0 + GDN_TC_ROW(e);
        if (i < L)
            for (int n = 0; n < NO3; n++)
                *(__global float2 *)(o + ((first + i) * HV + hv) * V + v0 + n0 + 8 * n +
                                     GDN_TC_COL(e)) =
                    scale * (float2)(acco[n][e], acco[n][e + 1]);
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
#define OUT_ROW(a)  (ty + LY * (a))
#define OUT_GI(a)   Gs[ty + LY * (a)]
#define OUT_GJ(e)   Gs[tx + LX * (e)]
#define OUT_S(i, j) SL[(i) * LDS + (j)]
    OUT_SCALE_MASK(OUT_ROW, OUT_GI, OUT_GJ, OUT_S);
#undef OUT_ROW
#undef OUT_GI
#undef OUT_GJ
#undef OUT_S
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
