/*
 * gated_delta/wy_fwd.cl - forward stage F3 of the chunked gated delta rule
 * (docs/ALGORITHM.md §2.1, §2.2 "F3 pseudo-code", fla recompute_w_u):
 * the WY representation of one chunk.
 *
 * Math, per chunk (rows i < L) and value head hv (q/k head hv / (HV/H)):
 *   w = Ai diag(b exp2(G)) K_c      [L, K]
 *   u = Ai diag(b) V_c              [L, V]
 * with Ai the chunk's (I + A)^-1 rows from kkt_solve.cl. Rows >= L of the
 * operands are loaded as 0 and never stored. Exponents G_i <= 0.
 *
 * Shapes (F32, token-major): k [T, H, K]; v [T, HV, V]; b, G [T, HV];
 * Ai [T, HV, 64]; chunks [NT] int4 (seq, first token, length, chunk index);
 * w [T, HV, K]; u [T, HV, V].
 *
 * One work-group = one (chunk, value head): Ai (64 x 64) is staged in local
 * memory once, then every output column tile (BNK columns of w, then BNV
 * columns of u) is computed as Ai @ (scaled 64 x BN operand tile) by
 * LX x LY work-items (16 x 16 by default). Two forms of the same arithmetic
 * (same products, summed in the same order):
 *  - LX > 1 (GPUs): each work-item owns a 64/LY x BN/LX strided
 *    micro-tile.
 *  - LX = 1 (CPUs, e.g. PoCL, where a work-group runs as a loop on one
 *    core): each work-item owns whole rows ty + LY a of the tile as float16
 *    vectors, in register groups of 2 or 4 rows (up to 16 vector
 *    accumulators), and a group whose last row is in 16 x 16 block row p
 *    sums over the columns of blocks 0 .. p only (Ai is lower triangular:
 *    the rest are exact zeros). Row-form loops that would be innermost once
 *    their inner loops are unrolled run to WI_TRIP(n) (see below).
 * Local memory: 4 * (64 * 65 + 64 * max(BNK, BNV) + 128) bytes (33 KiB at
 * BN = 64). Global (WG * NT, HV), local (WG, 1), WG = LX * LY.
 *
 * Tuning macros (#ifndef defaults; set by the wy_fwd plan in
 * lib/ops/gated_delta/chunk_fwd.c through the tuning lookup):
 *   K, V  head dims, multiples of 16 in [16, 256] (required)
 *   BNK   w column tile: 16, 32, 64 or 128, dividing K (default 16)
 *   BNV   u column tile: 16, 32, 64 or 128, dividing V (default 16)
 *   LX    work-items along columns: 1, 2, 4, 8 or 16, dividing BNK and BNV
 *         (default 16)
 *   LY    work-items along rows: 4, 8 or 16 (default 16)
 *   VEC   1: the float4 form (WY_TILE4 below), for GPUs; 3: the products
 *         on warp tiles (below; BNK = BNV = 32, LX = LY = 16); 0 (default):
 *         the two forms above
 *   GDN_ASYNC, GDN_TC  VEC=3: cp.async copies and 3xTF32 mma.sync (the host
 *         sets both on NVIDIA compute capability >= 8.0), 0 (default): their
 *         plain twins
 *   GDN_TILE_UNROLL  the unroll factor of the float4 products' loops over k
 *                    (tuning parameter UNROLL; 0, the default: the
 *                    compiler's choice; cl/include/gdn_tile.clh)
 */
#include "gdn_common.clh"
#include "gdn_tile.clh"

#ifndef K
#error "K (key head dim) must be defined"
#endif
#ifndef V
#error "V (value head dim) must be defined"
#endif
#ifndef BNK
#define BNK 16
#endif
#ifndef BNV
#define BNV 16
#endif

#ifndef LX
#define LX 16
#endif
#ifndef LY
#define LY 16
#endif
#define CH  64
#define WG  (LX * LY)
#define TMW (CH / LY) /* rows per work-item */
#define LDA (CH + 1)
#define BNMAX (BNK > BNV ? BNK : BNV)

#if (K % BNK) != 0 || (V % BNV) != 0 || (BNK % 16) != 0 || (BNV % 16) != 0
#error "BNK / BNV must be multiples of 16 dividing K / V"
#endif
#if (CH % LY) != 0 || (BNK % LX) != 0 || (BNV % LX) != 0
#error "wy_fwd: LY must divide 64 and LX must divide BNK and BNV"
#endif
#if LX == 1 && ((16 % LY) != 0 || LY < 4)
#error "wy_fwd: the row form (LX = 1) needs LY = 4, 8 or 16"
#endif
/* The trip count n, written so that PoCL sees it depend on the work-item
 * (lid >> 30 is 0; the term folds away once PoCL has built the work-item
 * loops). PoCL (ImplicitLoopBarriers) adds an implicit barrier to every
 * innermost loop with a work-item-uniform trip count, which runs the
 * work-item loop inside it and keeps the row form's accumulators in memory
 * (2-4x slower kernels). */
#define WI_TRIP(n) ((n) + (lid >> 30))
/* Row ty + LY a lies in 16 x 16 block row BLK(a) (LY divides 16). */
#define BLK(a) (((LY) * (a)) / 16)

/* out[rows of the chunk, n0 .. n0 + BN) = AiL @ (scale_r * src rows). */
#define WY_TILE(BN, src, src_head, src_heads, D, scl, dst)                                         \
    do {                                                                                           \
        for (int n0 = 0; n0 < (D); n0 += (BN)) {                                                   \
            float acc_[TMW][(BN) / LX];                                                            \
            barrier(CLK_LOCAL_MEM_FENCE);                                                          \
            for (int e = lid; e < CH * (BN); e += WG) {                                            \
                const int r = e / (BN), d = e - r * (BN);                                          \
                float     x = 0.0f;                                                                \
                if (r < L)                                                                         \
                    x = src[((ulong)(first + r) * (ulong)(src_heads) + (ulong)(src_head)) *        \
                                (ulong)(D) + (ulong)(n0 + d)] * scl[r];                            \
                XL[r * (BN) + d] = x;                                                              \
            }                                                                                      \
            barrier(CLK_LOCAL_MEM_FENCE);                                                          \
            GDN_TILE_ZERO(acc_, TMW, (BN) / LX);                                                   \
            GDN_TILE_MMA(acc_, TMW, (BN) / LX, AL, LDA, 0, XL, (BN), 0, ty, LY, tx, LX, CH);       \
            for (int a = 0; a < TMW; a++) {                                                        \
                const int i = ty + LY * a;                                                         \
                if (i < L)                                                                         \
                    for (int j = 0; j < (BN) / LX; j++)                                            \
                        dst[((ulong)(first + i) * (ulong)HV + (ulong)hv) * (ulong)(D) +            \
                            (ulong)(n0 + tx + LX * j)] = acc_[a][j];                               \
            }                                                                                      \
        }                                                                                          \
    } while (0)

/* Row form of WY_TILE (LX = 1): WY_RG(BN) rows of BN / 16 vectors per
 * register group; columns j of Ai past the block of the group's last row are
 * skipped (exact zeros). */
#define WY_TILE_ROWS(BN, src, src_head, src_heads, D, scl, dst)                                    \
    do {                                                                                           \
        for (int n0 = 0; n0 < (D); n0 += (BN)) {                                                   \
            barrier(CLK_LOCAL_MEM_FENCE);                                                          \
            for (int e = lid; e < CH * ((BN) / 16); e += WG) {                                     \
                const int r = e / ((BN) / 16), d = 16 * (e - r * ((BN) / 16));                     \
                float16   x = (float16)0.0f;                                                       \
                if (r < L)                                                                         \
                    x = vload16(0, src + ((ulong)(first + r) * (ulong)(src_heads) +                \
                                          (ulong)(src_head)) * (ulong)(D) + (ulong)(n0 + d)) *    \
                        scl[r];                                                                    \
                vstore16(x, 0, XL + r * (BN) + d);                                                 \
            }                                                                                      \
            barrier(CLK_LOCAL_MEM_FENCE);                                                          \
            for (int g = 0; g < TMW / WY_RG(BN); g++) {                                            \
                float16 c_[WY_RG(BN)][(BN) / 16];                                                  \
                _Pragma("unroll") for (int r = 0; r < WY_RG(BN); r++)                              \
                    _Pragma("unroll") for (int v = 0; v < (BN) / 16; v++)                          \
                        c_[r][v] = (float16)0.0f;                                                  \
                for (int j = 0; j < WI_TRIP(16 * (BLK(WY_RG(BN) * (g + 1) - 1) + 1)); j++) {      \
                    float16 b_[(BN) / 16];                                                         \
                    _Pragma("unroll") for (int v = 0; v < (BN) / 16; v++)                          \
                        b_[v] = vload16(v, XL + j * (BN));                                         \
                    _Pragma("unroll") for (int r = 0; r < WY_RG(BN); r++) {                        \
                        const float16 a_ = (float16)AL[(ty + LY * (WY_RG(BN) * g + r)) * LDA + j]; \
                        _Pragma("unroll") for (int v = 0; v < (BN) / 16; v++)                      \
                            c_[r][v] = fma(a_, b_[v], c_[r][v]);                                   \
                    }                                                                              \
                }                                                                                  \
                _Pragma("unroll") for (int r = 0; r < WY_RG(BN); r++) {                            \
                    const int i = ty + LY * (WY_RG(BN) * g + r);                                   \
                    if (i < L)                                                                     \
                        _Pragma("unroll") for (int v = 0; v < (BN) / 16; v++)                      \
                            vstore16(c_[r][v], 0,                                                  \
                                     dst + ((ulong)(first + i) * (ulong)HV + (ulong)hv) *          \
                                               (ulong)(D) + (ulong)(n0 + 16 * v));                 \
                }                                                                                  \
            }                                                                                      \
        }                                                                                          \
    } while (0)
/* Rows per register group of the row form: 16 accumulators of float16. */
#define WY_RG(BN) ((BN) >= 128 ? 2 : 4)

#ifndef VEC
#define VEC 0
#endif
#if VEC == 1
/*
 * VEC=1: the product reads its operands from local memory as float4
 * (GDN_TILE_MMA4): Ai is staged transposed (AT[j 64 + i] = Ai_ij, k-major A)
 * and the operand tile row-major; work-item (tx, ty) owns the TMW contiguous
 * rows TMW ty ... and column groups of 4 at 4 tx + 4 LX g, so neighbouring
 * work-items read neighbouring float4s. The inner index stops past the
 * work-item's last row (Ai is lower triangular), and at L. The row scales
 * b exp2(G) and b are read from global memory per staged float4 (no local
 * arrays), so BN = 128 fits in 48 KiB. The product never reads operand
 * rows past L, so those rows repeat row L - 1 (unconditional loads: on the
 * H200 wy_fwd took 0.267 -> 0.222 ms at B = 4, T = 4096, H = 16, against
 * predicated loads with a zero fill). Needs 64 / LY, BNK / LX and BNV / LX
 * multiples of 4. Local memory: 4 * (64 * 64 + 64 * max(BNK, BNV)) bytes
 * (32 KiB at BN = 64, 48 KiB at BN = 128).
 */
#if (TMW % 4) != 0 || ((BNK / LX) % 4) != 0 || ((BNV / LX) % 4) != 0
#error "wy_fwd: VEC needs 64 / LY, BNK / LX and BNV / LX to be multiples of 4"
#endif
#define WY_TILE4(BN, src, src_head, src_heads, D, scl, dst)                                        \
    do {                                                                                           \
        for (int n0 = 0; n0 < (D); n0 += (BN)) {                                                   \
            float acc_[TMW][(BN) / LX];                                                            \
            barrier(CLK_LOCAL_MEM_FENCE);                                                          \
            for (int e = lid; e < CH * ((BN) / 4); e += WG) { /* rows past L: never read */    \
                const int r = e / ((BN) / 4), d = 4 * (e - r * ((BN) / 4)), rc = min(r, L - 1);    \
                GDN_ST4L(GDN_LD4G(src + ((first + rc) * (src_heads) + (src_head)) * (D) + n0 +    \
                                  d) * scl(rc),                                                    \
                         XL + r * (BN) + d);                                                       \
            }                                                                                      \
            barrier(CLK_LOCAL_MEM_FENCE);                                                          \
            GDN_TILE_ZERO(acc_, TMW, (BN) / LX);                                                   \
            GDN_TILE_MMA4(acc_, TMW, (BN) / LX, AL, CH, TMW * ty, 4, XL, (BN), 4 * tx, 4 * LX,    \
                          min(TMW * (ty + 1), L));                                                 \
            for (int a = 0; a < TMW; a++) {                                                        \
                const int i = TMW * ty + a;                                                        \
                if (i < L)                                                                         \
                    for (int g = 0; g < (BN) / LX / 4; g++)                                        \
                        GDN_ST4G((float4)(acc_[a][4 * g], acc_[a][4 * g + 1], acc_[a][4 * g + 2], \
                                          acc_[a][4 * g + 3]),                                     \
                                 dst + ((ulong)(first + i) * (ulong)HV + (ulong)hv) * (ulong)(D) + \
                                     (ulong)(n0 + 4 * tx + 4 * LX * g));                           \
            }                                                                                      \
        }                                                                                          \
    } while (0)
/* The row scales of w and u (row r < L of the chunk), as bw and bu below. */
#define WY_AT(r)    ((ulong)(first + (r)) * (ulong)HV + (ulong)hv)
#define WY_SCL_W(r) (b[WY_AT(r)] * exp2(G[WY_AT(r)]))
#define WY_SCL_U(r) (b[WY_AT(r)])
#endif
#if VEC == 3
/*
 * VEC=3: the products on GDN_TC's warp tiles (cl/include/gdn_tile.clh:
 * 3xTF32 mma.sync on NVIDIA's tensor cores with GDN_TC=1, its plain twin
 * elsewhere), 16 x 8 or 16 x 16 work-items = four or eight SIMD groups of
 * 32. The row scales go into Ai's columns instead of the operand rows
 * (Ai diag(s) X = (Ai diag(s)) X), so the operand slices are plain copies:
 * k and v in slices of 32 columns (64 x 32, rows padded to 40 so the B
 * fragments are free of bank conflicts; rows past L repeat row L - 1, which
 * meet only Ai's zero columns) copied a slice ahead into two slots
 * (GDN_CP16: cp.async on NVIDIA). The V slices come first, against
 * AL = Ai diag(b) (rows past L zero, ld 68); then AL's columns are
 * multiplied by exp2(G) in place for the K slices (w's scale b exp2(G),
 * rounded as (Ai b) exp2(G)). Group w owns NTW3 8-column tiles of each
 * slice, from column 8 NTW3 (w / 2) (two tiles with four groups, one with
 * eight: a group loads each A fragment once for its tiles), in two row
 * blocks of 16 whose products are the same length together (Ai is lower
 * triangular: rows 16 p ... need k < 16 (p + 1)): blocks 0 and 3 for even w,
 * 1 and 2 for odd w; the k steps also stop at L. Each slice's results go
 * from the accumulators straight to w or u. Local memory: 4 * (64 * 68 +
 * 2 * 64 * 40 + 128) bytes (37.5 KiB).
 */
#define BN3   32         /* columns per slice */
#define LDA3  (CH + 4)   /* row stride of AL */
#define LDX3  (BN3 + 8)  /* row stride of a slice */
#define SLOT3 (CH * LDX3)
#define NSV3  (V / BN3)  /* slices of v, then K / BN3 of k */
#define NTW3  (8 * 32 / WG) /* 8-column tiles of a slice per SIMD group: 2 or 1 */
#if LX != 16 || (LY != 8 && LY != 16) || BNK != BN3 || BNV != BN3
#error "wy_fwd: VEC=3 needs 16 x 8 or 16 x 16 work-items and BNK = BNV = 32"
#endif
#endif

__kernel __attribute__((reqd_work_group_size(WG, 1, 1)))
void gated_delta_wy_fwd(__global const float *k, __global const float *v,
                        __global const float *b, __global const float *G,
                        __global const float *Ai, __global const int4 *chunks,
                        __global float *w, __global float *u, int H, int HV)
#if VEC == 3
{
    __local float4 LM4[(CH * LDA3 + 2 * SLOT3) / 4]; /* float4: aligned for the copies */
    __local float *AL = (__local float *)LM4, *XS = AL + CH * LDA3;
    __local float4 bs4[CH / 4], es4[CH / 4]; /* b and exp2(G) per row, 0 past L */
    __local float *bs = (__local float *)bs4, *es = (__local float *)es4;
    const int      lid = (int)get_local_id(0);
    const int      c = (int)get_group_id(0), hv = (int)get_group_id(1);
    const int      kh = hv / (HV / H);
    const int4     ch = chunks[c];
    const int      first = ch.y, L = ch.z;
    const int      g = lid >> 5, pa = g & 1, pb = 3 - pa, n0 = 8 * NTW3 * (g >> 1);
    /* k steps of 8 of the two row blocks: to the block's end and to L */
    const int      na = min(2 * pa + 2, (L + 7) / 8), nb = min(2 * pb + 2, (L + 7) / 8);
    const __global float *kc = k + (first * H + kh) * K, *vc = v + (first * HV + hv) * V;
    float          acc[2][NTW3][4], af[GDN_TC_AN], bf[NTW3][GDN_TC_BN];

/* Slice s (v's columns BN3 s ..., then k's) into slot b_. */
#define WY_COPY3(s, b_)                                                                            \
    do {                                                                                           \
        const bool            iv_ = (s) < NSV3;                                                    \
        const __global float *src_ = iv_ ? vc + (s) * BN3 : kc + ((s) - NSV3) * BN3;               \
        const int             ld_ = iv_ ? HV * V : H * K;                                          \
        for (int e_ = lid; e_ < CH * (BN3 / 4); e_ += WG) {                                        \
            const int r_ = e_ / (BN3 / 4), c_ = 4 * (e_ - r_ * (BN3 / 4));                         \
            GDN_CP16(XS + (b_) * SLOT3 + r_ * LDX3 + c_, src_ + (min(r_, L - 1) * ld_ + c_));       \
        }                                                                                          \
    } while (0)

    WY_COPY3(0, 0);
    for (int r = lid; r < CH; r += WG) {
        const bool  ok = r < L;
        const ulong at = (ulong)(first + (ok ? r : 0)) * (ulong)HV + (ulong)hv;
        bs[r]          = ok ? b[at] : 0.0f;
        es[r]          = ok ? exp2(G[at]) : 0.0f;
    }
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int e = lid; e < CH * (CH / 4); e += WG) { /* AL = Ai diag(b), rows past L zero */
        const int r = e / (CH / 4), cc = 4 * (e - r * (CH / 4));
        float4    x = (float4)0.0f;
        if (r < L)
            x = GDN_LD4G(Ai + ((ulong)(first + r) * (ulong)HV + (ulong)hv) * CH + (ulong)cc);
        GDN_ST4L(x * GDN_LD4L(bs + cc), AL + r * LDA3 + cc);
    }
    for (int s = 0; s < NSV3 + K / BN3; s++) {
        __local const float *X = XS + (s & 1) * SLOT3;
        GDN_CP_WAIT();
        barrier(CLK_LOCAL_MEM_FENCE); /* slice s is in; the other slot's readers are done */
        if (s == NSV3) { /* w's scale: AL = Ai diag(b exp2(G)) */
            for (int e = lid; e < CH * (CH / 4); e += WG) {
                const int r = e / (CH / 4), cc = 4 * (e - r * (CH / 4));
                GDN_ST4L(GDN_LD4L(AL + r * LDA3 + cc) * GDN_LD4L(es + cc), AL + r * LDA3 + cc);
            }
            barrier(CLK_LOCAL_MEM_FENCE);
        }
        if (s + 1 < NSV3 + K / BN3)
            WY_COPY3(s + 1, (s + 1) & 1);
        GDN_TILE_ZERO(acc[0], NTW3, 4);
        GDN_TILE_ZERO(acc[1], NTW3, 4);
        /* (A fixed trip count: PoCL 3.1 ran this loop to the odd groups'
         * nb in every group when nb was its bound, for some K and V.) */
        for (int ks = 0; ks < CH / 8; ks++)
            if (ks < nb) {
#pragma unroll
                for (int j = 0; j < NTW3; j++)
                    GDN_TC_LOAD_B(bf[j], X, LDX3, 8 * ks, n0 + 8 * j);
                if (ks < na) {
                    GDN_TC_LOAD_A(af, AL, LDA3, 16 * pa, 8 * ks);
#pragma unroll
                    for (int j = 0; j < NTW3; j++)
                        GDN_TC_MMA(acc[0][j], af, bf[j]);
                }
                GDN_TC_LOAD_A(af, AL, LDA3, 16 * pb, 8 * ks);
#pragma unroll
                for (int j = 0; j < NTW3; j++)
                    GDN_TC_MMA(acc[1][j], af, bf[j]);
            }
        {
            const bool      iv = s < NSV3;
            const int       D = iv ? V : K, c0 = BN3 * (iv ? s : s - NSV3) + n0;
            __global float *dst = iv ? u : w;
#pragma unroll
            for (int q = 0; q < 2; q++)
#pragma unroll
                for (int e = 0; e < 4; e += 2) {
                    const int i = 16 * (q ? pb : pa) + GDN_TC_ROW(e);
                    if (i < L)
#pragma unroll
                        for (int j = 0; j < NTW3; j++)
                            *(__global float2 *)(dst + ((first + i) * HV + hv) * D + c0 + 8 * j +
                                                 GDN_TC_COL(e)) =
                                (float2)(acc[q][j][e], acc[q][j][e + 1]);
                }
        }
    }
#undef WY_COPY3
}
#else /* VEC != 3 */
{
#if VEC == 1 /* float4 arrays: aligned for the MMA4 reads; Ai transposed, ld 64 */
    __local float4 AL4[CH * CH / 4], XL4[CH * BNMAX / 4];
    __local float *AL = (__local float *)AL4, *XL = (__local float *)XL4;
#else
    __local float AL[CH * LDA];
    __local float XL[CH * BNMAX];
    __local float bw[CH], bu[CH];
#endif
    const int     lid = (int)get_local_id(0);
    const int     tx = lid % LX, ty = lid / LX;
    const int     c = (int)get_group_id(0), hv = (int)get_group_id(1);
    const int     kh = hv / (HV / H);
    const int4    ch = chunks[c];
    const int     first = ch.y, L = ch.z;

#if !VEC
    for (int r = lid; r < CH; r += WG) {
        const bool  ok = r < L;
        const ulong at = (ulong)(first + (ok ? r : 0)) * (ulong)HV + (ulong)hv;
        const float bv = ok ? b[at] : 0.0f;
        const float gv = ok ? G[at] : 0.0f;
        bu[r]          = bv;
        bw[r]          = bv * exp2(gv);
    }
#endif
#if VEC == 1
    /* Ai transposed */
    GDN_TILE_STAGE_T(AL, CH, Ai + ((ulong)first * (ulong)HV + (ulong)hv) * CH, (ulong)HV * CH, CH,
                     CH, L, lid, WG);
    WY_TILE4(BNK, k, kh, H, K, WY_SCL_W, w);
    WY_TILE4(BNV, v, hv, HV, V, WY_SCL_U, u);
#elif LX == 1
    for (int e = lid; e < CH * 4; e += WG) {
        const int i = e >> 2, j = 16 * (e & 3);
        float16   x = (float16)0.0f;
        if (i < L)
            x = vload16(0, Ai + ((ulong)(first + i) * (ulong)HV + (ulong)hv) * CH + (ulong)j);
        vstore16(x, 0, AL + i * LDA + j);
    }
    WY_TILE_ROWS(BNK, k, kh, H, K, bw, w);
    WY_TILE_ROWS(BNV, v, hv, HV, V, bu, u);
#else
    for (int e = lid; e < CH * CH; e += WG) {
        const int i = e >> 6, j = e & 63;
        float     x = 0.0f;
        if (i < L)
            x = Ai[((ulong)(first + i) * (ulong)HV + (ulong)hv) * CH + (ulong)j];
        AL[i * LDA + j] = x;
    }
    WY_TILE(BNK, k, kh, H, K, bw, w);
    WY_TILE(BNV, v, hv, HV, V, bu, u);
#endif
}
#endif /* VEC */
