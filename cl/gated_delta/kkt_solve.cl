/*
 * gated_delta/kkt_solve.cl - forward stage F2 of the chunked gated delta rule
 * (docs/ALGORITHM.md §2.1, §2.2 "F2 pseudo-code"): the fused gated Gram
 * matrix and its unit lower-triangular inverse, per chunk and value head.
 *
 * Math, for a chunk with rows i, j < L (L <= 64), keys k_i (q/k head
 * hv / (HV/H)), beta b_i and log2-domain chunk cumsum G_i:
 *   A_ij = b_i (k_i . k_j) exp2(G_i - G_j)   if j < i < L, else exactly 0
 *   Ai   = (I + A)^-1                         (unit lower triangular)
 * Rows and columns >= L of A are 0, so those rows of Ai are rows of I (they
 * are not stored: Ai has one row per token). The exponent is masked with
 * select() before exp2, so partial chunks never produce inf/NaN.
 * The inverse uses the blocked scheme of §2.2, in fp32: forward
 * substitution on the four 16x16 diagonal blocks (one column per
 * work-item), then block rows p = 1..3 in order:
 *   X_pq  = sum_{m=q}^{p-1} A_pm Ai_mq,   Ai_pq = -Ai_pp X_pq   (q < p)
 * computed in place over A (block row p of A is dead once X is formed).
 * Only the 10 lower 16 x 16 blocks of the Gram matrix are computed (the
 * upper ones are masked to 0 anyway).
 *
 * Shapes (F32, token-major): k [T, H, K]; b, G [T, HV]; chunks [NT] int4
 * (seq, first token, length, chunk index); Ai [T, HV, 64] (row t holds its
 * chunk row; columns >= the chunk length are 0).
 *
 * One work-group = one (chunk, value head) of LX x LY work-items; the keys
 * are staged transposed (K_c^T, BK x 64) in slices of BK columns. Two forms
 * of the same arithmetic (same products, summed in the same order):
 *  - LX > 1 (GPUs): each work-item owns a (64/LY) x (64/LX) strided
 *    micro-tile of the Gram matrix and one column of a diagonal block in
 *    the forward substitution; the merge spreads the 16 x 16 elements of a
 *    block over the work-items, one scalar dot product each.
 *  - LX = 1 (CPUs, e.g. PoCL, where a work-group runs as a loop on one
 *    core): each work-item owns whole rows ty + LY a, held as four float16
 *    column vectors, in groups of 4 rows so the compiler keeps up to 16
 *    independent vector accumulators in registers. The gate mask (with
 *    exp2), the merge and the store work on float16 rows too. Scalar code
 *    in the GPU form left the CPU latency-bound on dependent fma chains,
 *    with gathers for the strided columns and one scalar exp2 per element.
 *    The row form's loops that would be innermost once their inner loops
 *    are unrolled run to WI_TRIP(n) (see below).
 * Local memory: 4 * (64 * 65 + BK * 65 + 128) bytes (24.8 KiB at BK = 32).
 * Global (LX * LY * NT, HV), local (LX * LY, 1).
 *
 * Tuning macros (#ifndef defaults; set by the kkt_solve plan in
 * lib/ops/gated_delta/chunk_fwd.c through the tuning lookup):
 *   K   key head dim, a multiple of 16 in [16, 256] (no default: required)
 *   BK  key columns per staged slice: 16, 32, 64 or 128, dividing K (16)
 *   LX  work-items along Gram columns: 1, 2, 4, 8 or 16 (default 16)
 *   LY  work-items along Gram rows: 4, 8 or 16 (default 16)
 *   VEC 2: the GPU form's Gram from row-major slices copied ahead (below);
 *       3: the same copies, the Gram on warp tiles (below); 0 (default): as
 *       above
 *   GDN_ASYNC  1: GDN_CP16 is cp.async (VEC=2, 3; the host sets it on
 *       NVIDIA compute capability >= 8.0), 0 (default): its plain twin
 *   GDN_TC  1: VEC=3's products are 3xTF32 mma.sync (set with GDN_ASYNC),
 *       0 (default): their plain twin
 */
#include "gdn_common.clh"
#include "gdn_tile.clh"

#ifndef K
#error "K (key head dim) must be defined"
#endif
#ifndef BK
#define BK 16
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
#define CH   64          /* chunk size */
#define WG   (LX * LY)   /* work-items */
#define TMG  (CH / LY)   /* Gram rows per work-item */
#define TNG  (CH / LX)   /* Gram columns per work-item */
#define LDA  (CH + 1)    /* padded row stride of the 64 x 64 tiles */
#define LDT  (CH + 1)    /* padded row stride of the transposed key slice */
#define LDX  (48 + 1)    /* row stride of the 16 x 48 merge scratch */
#define RG   4           /* rows per register group in the row form */

#if (K % BK) != 0 || (BK % 16) != 0
#error "BK must be a multiple of 16 dividing K"
#endif
#if (16 % LX) != 0 || (16 % LY) != 0 || LY < 4
#error "LX must divide 16, LY must be 4, 8 or 16"
#endif
#if VEC == 2 && (BK != 16 || LX == 1)
#error "kkt_solve: VEC=2 needs BK = 16 and LX > 1"
#endif
#if VEC == 3 && (BK != 16 || LX != 16 || LY < 8)
#error "kkt_solve: VEC=3 needs BK = 16, LX = 16 and LY = 8 or 16"
#endif
#define KKT_NW  (WG / 32)      /* VEC=3: SIMD groups */
#define KKT_TPW (32 / KKT_NW)  /* VEC=3: Gram tiles per group, at most */
#define KKT_LDX 40             /* VEC=3: row stride of the merges' X in KL */
/*
 * VEC=2 (the GPU form only): the Gram matrix from key slices staged
 * row-major and copied by GDN_CP16 (cp.async on NVIDIA, a plain load and
 * store on other devices: cl/include/gdn_tile.clh) into two slots in AL's
 * space (free until the mask writes A), the next slice in flight while the
 * current one is multiplied, one barrier per slice. A work-item owns the TMG
 * contiguous rows TMG ty ... (KKT_ROW) and the strided columns tx + LX e;
 * its rows are read as float4s of four k (GDN_TILE_LOAD4R) against the
 * column rows (GDN_TILE_DOT4_STEP), and a column stride whose columns all
 * lie at or past min(row end, L) is skipped (A is 0 there): with LX = 16 and
 * 8 rows per work-item a warp skips the upper blocks as a whole. Key rows
 * past L repeat row L - 1 (the mask zeroes what they reach); int offsets
 * (T HV max(K, V) < 2^31, api.c). Needs BK = 16 (two slots of 64 x 20
 * floats fit in AL).
 *
 * VEC=3: VEC=2's copies with the Gram products on GDN_TC's warp tiles
 * (cl/include/gdn_tile.clh: 3xTF32 mma.sync on NVIDIA's tensor cores with
 * GDN_TC=1, its plain twin elsewhere): KKT_NW = LX LY / 32 SIMD groups (4 or
 * 8); group w forms the 16 x 8 tiles of row block p = w % 4 whose columns
 * lie below the block's end and below L (tiles w / 4, w / 4 + KKT_NW / 4, ...
 * of the 2 p + 2 at or left of the diagonal); row blocks at or past L form
 * none. AL is zeroed before the mask writes the formed tiles, so the upper
 * blocks and the columns past L hold the zeros the inverse needs. The
 * merges after the diagonal substitution run on warp tiles too, in two
 * levels of pairs instead of three block rows (below). Local memory: 4 *
 * (64 * 65 + 32 * 40 + 128) bytes (22.2 KiB).
 */
#if VEC == 2
#define KKT_ROW(a) (TMG * ty + (a))
#else
#define KKT_ROW(a) (ty + LY * (a))
#endif
/* The trip count n, written so that PoCL sees it depend on the work-item
 * (lid >> 30 is 0; the term folds away once PoCL has built the work-item
 * loops). PoCL (ImplicitLoopBarriers) adds an implicit barrier to every
 * innermost loop with a work-item-uniform trip count, which runs the
 * work-item loop inside it and keeps the row form's accumulators in memory
 * (2-4x slower kernels). */
#define WI_TRIP(n) ((n) + (lid >> 30))
/* Gram row ty + LY a lies in 16 x 16 block row BLK(a) (LY divides 16). */
#define BLK(a) (((LY) * (a)) / 16)

__kernel __attribute__((reqd_work_group_size(WG, 1, 1)))
void gated_delta_kkt_solve(__global const float *k, __global const float *b,
                           __global const float *G, __global const int4 *chunks,
                           __global float *Ai, int H, int HV)
{
#if VEC >= 2
    __local float4 AL4[(CH * LDA + 3) / 4]; /* A, then Ai in place; first the key slots */
    __local float *AL = (__local float *)AL4;
#else
    __local float AL[CH * LDA];       /* A, then Ai in place */
#endif
#if VEC == 3 /* the merges' X: 32 x KKT_LDX */
    __local float KL[BK * LDT > 32 * KKT_LDX ? BK * LDT : 32 * KKT_LDX];
#else
    __local float KL[BK * LDT];       /* key slice K_c^T; later the solve scratch */
#endif
    __local float Gs[CH], bs[CH];
    const int     lid = (int)get_local_id(0);
    const int     tx = lid % LX, ty = lid / LX;
    const int     c = (int)get_group_id(0), hv = (int)get_group_id(1);
    const int     kh = hv / (HV / H);
    const int4    ch = chunks[c];
    const int     first = ch.y, L = ch.z;
#if VEC == 3
    const int     wq = lid >> 5, pq = wq & 3, jq = wq >> 2;
    const int     njq = min(2 * pq + 2, (L + 7) / 8); /* tiles the rows need */
    float         acc[KKT_TPW][4], af[GDN_TC_AN], bf[GDN_TC_BN];
#elif LX == 1
    float16       acc[TMG][4];
#else
    float         acc[TMG][TNG];
#endif

    for (int r = lid; r < CH; r += WG) {
        const bool  ok = r < L;
        const ulong at = (ulong)(first + (ok ? r : 0)) * (ulong)HV + (ulong)hv;
        Gs[r]          = ok ? G[at] : 0.0f;
        bs[r]          = ok ? b[at] : 0.0f;
    }

    /* Gram matrix K_c K_c^T over slices of BK key columns, lower blocks
     * only: row i = ty + LY a needs the columns of blocks 0 .. BLK(a). */
#if VEC == 3
    GDN_TILE_ZERO(acc, KKT_TPW, 4);
#elif LX == 1
    for (int a = 0; a < TMG; a++)
        for (int v = 0; v < 4; v++)
            acc[a][v] = (float16)0.0f;
#else
    GDN_TILE_ZERO(acc, TMG, TNG);
#endif
#if VEC >= 2
    {
        const __global float *kc = k + (first * H + kh) * K;
#if VEC == 2
        const int             rend = TMG * ty + TMG;
        const int             ne = min(TNG, (min(rend, L) + LX - 1) / LX); /* column strides */
#endif
#define KKT_COPY(s_, b_)                                                                           \
    for (int e_ = lid; e_ < CH * (BK / 4); e_ += WG) {                                             \
        const int r_ = e_ / (BK / 4), c_ = 4 * (e_ - r_ * (BK / 4));                               \
        GDN_CP16(AL + (b_) * CH * (BK + 4) + r_ * (BK + 4) + c_,                                   \
                 kc + (min(r_, L - 1) * (H * K) + (s_) * BK + c_));                                \
    }
        KKT_COPY(0, 0);
        for (int s = 0; s < K / BK; s++) {
            __local const float *KS = AL + (s & 1) * CH * (BK + 4);
            GDN_CP_WAIT();
            barrier(CLK_LOCAL_MEM_FENCE); /* slice s is in; the other slot's readers are done */
            if (s + 1 < K / BK)
                KKT_COPY(s + 1, (s + 1) & 1);
#if VEC == 3
            if (16 * pq < L)
#pragma unroll
                for (int kk = 0; kk < BK; kk += 8) {
                    GDN_TC_LOAD_A(af, KS, BK + 4, 16 * pq, kk);
#pragma unroll
                    for (int e = 0; e < KKT_TPW; e++)
                        if (jq + (KKT_NW / 4) * e < njq) {
                            GDN_TC_LOAD_BT(bf, KS, BK + 4, kk, 8 * (jq + (KKT_NW / 4) * e));
                            GDN_TC_MMA(acc[e], af, bf);
                        }
                }
#else
#pragma unroll
            for (int kk = 0; kk < BK; kk += 4) {
                float4 a4[TMG];
                GDN_TILE_LOAD4R(a4, TMG, KS, BK + 4, TMG * ty, kk);
                GDN_TILE_DOT4_STEP(acc, TMG, TNG, a4, KS, BK + 4, tx, LX, 0, ne, kk);
            }
#endif
        }
#undef KKT_COPY
        barrier(CLK_LOCAL_MEM_FENCE); /* the slots' readers are done: the mask writes AL */
    }
#else /* VEC < 2 */
    for (int k0 = 0; k0 < K; k0 += BK) {
        barrier(CLK_LOCAL_MEM_FENCE);
#if LX == 1
        for (int r = lid; r < CH; r += WG) {
            const __global float *kr = k + ((ulong)(first + r) * (ulong)H + (ulong)kh) * (ulong)K;
            for (int d0 = 0; d0 < BK; d0 += 16) {
                float x[16];
                vstore16(r < L ? vload16(0, kr + k0 + d0) : (float16)0.0f, 0, x);
#pragma unroll
                for (int d = 0; d < 16; d++)
                    KL[(d0 + d) * LDT + r] = x[d];
            }
        }
#else
        /* rows past L repeat row L - 1 (unconditional loads, int offsets:
         * T HV K < 2^31, api.c); the mask below zeroes what they reach */
        for (int e = lid; e < CH * BK; e += WG) {
            const int r = e / BK, d = e - r * BK;
            KL[d * LDT + r] = k[((first + min(r, L - 1)) * H + kh) * K + k0 + d];
        }
#endif
        barrier(CLK_LOCAL_MEM_FENCE);
#if LX == 1
        for (int g = 0; g < TMG / RG; g++) {
            float16 cg[RG][4];
#pragma unroll
            for (int r = 0; r < RG; r++)
#pragma unroll
                for (int v = 0; v < 4; v++)
                    cg[r][v] = acc[RG * g + r][v];
            for (int kk = 0; kk < WI_TRIP(BK); kk++) {
                const __local float *kr = KL + kk * LDT;
                float16              bv[4];
#pragma unroll
                for (int v = 0; v < 4; v++)
                    bv[v] = vload16(v, kr);
#pragma unroll
                for (int r = 0; r < RG; r++) {
                    const float16 ar = (float16)kr[ty + LY * (RG * g + r)];
#pragma unroll
                    for (int v = 0; v < 4; v++)
                        if (v <= BLK(RG * g + r))
                            cg[r][v] = fma(ar, bv[v], cg[r][v]);
                }
            }
#pragma unroll
            for (int r = 0; r < RG; r++)
#pragma unroll
                for (int v = 0; v < 4; v++)
                    acc[RG * g + r][v] = cg[r][v];
        }
#else
        for (int kk = 0; kk < BK; kk++) {
            float bc[TNG];
            /* (unrolled, so the bound of e is a constant per a and the
             * accumulators stay in registers) */
#pragma unroll
            for (int e = 0; e < TNG; e++)
                bc[e] = KL[kk * LDT + tx + LX * e];
#pragma unroll
            for (int a = 0; a < TMG; a++) {
                const float ar = KL[kk * LDT + ty + LY * a];
#pragma unroll
                for (int e = 0; e < (BLK(a) + 1) * (16 / LX); e++)
                    acc[a][e] = fma(ar, bc[e], acc[a][e]);
            }
        }
#endif
    }
#endif /* VEC >= 2 */

    /* Gate, beta and the strict-lower mask (mask first, then exp2). */
#if VEC == 3
    for (int e = lid; e < CH * LDA; e += WG)
        AL[e] = 0.0f;
    barrier(CLK_LOCAL_MEM_FENCE);
    if (16 * pq < L)
#pragma unroll
        for (int e = 0; e < KKT_TPW; e++)
            if (jq + (KKT_NW / 4) * e < njq)
                for (int f = 0; f < 4; f++) {
                    const int   i = 16 * pq + GDN_TC_ROW(f);
                    const int   j = 8 * (jq + (KKT_NW / 4) * e) + GDN_TC_COL(f);
                    const bool  m = j < i && i < L;
                    const float x = select(0.0f, Gs[i] - Gs[j], (int)m);
                    AL[i * LDA + j] = select(0.0f, bs[i] * acc[e][f] * exp2(x), (int)m);
                }
#elif LX == 1
    for (int a = 0; a < WI_TRIP(TMG); a++) {
        const int   i = ty + LY * a;
        const float gi = Gs[i], bi = bs[i];
#pragma unroll
        for (int v = 0; v < 4; v++) {
            const int16   j = (int16)(16 * v) + (int16)(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12,
                                                        13, 14, 15);
            const int16   m = (j < (int16)i) & (int16)(i < L ? -1 : 0);
            const float16 x = select((float16)0.0f, (float16)gi - vload16(v, Gs), m);
            float16       y = (float16)0.0f;
            if (v <= BLK(a))
                y = select((float16)0.0f, (float16)bi * acc[a][v] * exp2(x), m);
            vstore16(y, 0, AL + i * LDA + 16 * v);
        }
    }
#else
    for (int a = 0; a < TMG; a++)
        for (int e = 0; e < TNG; e++) {
            const int   i = KKT_ROW(a), j = tx + LX * e;
            const bool  m = j < i && i < L;
            const float x = select(0.0f, Gs[i] - Gs[j], (int)m);
            AL[i * LDA + j] = select(0.0f, bs[i] * acc[a][e] * exp2(x), (int)m);
        }
#endif
    barrier(CLK_LOCAL_MEM_FENCE);

    /* Diagonal 16 x 16 blocks: column cc of block p by forward substitution. */
    /* (Columns are solved into KL, which is free now, then copied back, so
     * no column is overwritten while another still reads it.) */
    for (int col = lid; col < CH; col += WG) {
        const int p = col >> 4, cc = col & 15, o = 16 * p;
        float     x[16];
#pragma unroll
        for (int r = 0; r < 16; r++) {
            float s = r == cc ? 1.0f : 0.0f;
#pragma unroll
            for (int m = 0; m < r; m++)
                s = fma(-AL[(o + r) * LDA + o + m], x[m], s);
            x[r] = s;
        }
#pragma unroll
        for (int r = 0; r < 16; r++)
            KL[col * 16 + r] = x[r];
    }
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int e = lid; e < CH * 16; e += WG) {
        const int col = e >> 4, r = e & 15, o = 16 * (col >> 4);
        AL[(o + r) * LDA + o + (col & 15)] = KL[col * 16 + r];
    }
    barrier(CLK_LOCAL_MEM_FENCE);

    /* Block rows 1..3: X_pq = A_p,[q,p) Ai_[q,p),q ; Ai_pq = -Ai_pp X_pq. */
#if VEC == 3
    /* On warp tiles, in two levels of the block inverse
     *   [P 0; Q R]^-1 = [P^-1 0; -R^-1 Q P^-1  R^-1]:
     * the pairs of 16 x 16 blocks (0, 1) and (2, 3) side by side, then the
     * 32 x 32 halves. Each level: X = Q P^-1 into KL, then -R^-1 X over Q in
     * AL (Q is read only by X, R^-1 and X only by the second product).
     * Tiles and k steps past what a product needs are skipped by conditions
     * inside fixed trip counts (see wy_fwd.cl VEC=3 on PoCL). */
    for (int t0 = 0; t0 < 4; t0 += KKT_NW) { /* level 1, X: pair P, 8-column tile n */
        const int t = t0 + wq, P = t >> 1, n = t & 1;
        if (t < 4) {
            float x[4] = {0.0f, 0.0f, 0.0f, 0.0f};
            for (int ks = 0; ks < 2; ks++) {
                GDN_TC_LOAD_A(af, AL, LDA, 32 * P + 16, 32 * P + 8 * ks);
                GDN_TC_LOAD_B(bf, AL, LDA, 32 * P + 8 * ks, 32 * P + 8 * n);
                GDN_TC_MMA(x, af, bf);
            }
            for (int e = 0; e < 4; e++)
                KL[(16 * P + GDN_TC_ROW(e)) * KKT_LDX + 8 * n + GDN_TC_COL(e)] = x[e];
        }
    }
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int t0 = 0; t0 < 4; t0 += KKT_NW) { /* level 1: Ai_ba = -Ai_bb X */
        const int t = t0 + wq, P = t >> 1, n = t & 1;
        if (t < 4) {
            float y[4] = {0.0f, 0.0f, 0.0f, 0.0f};
            for (int ks = 0; ks < 2; ks++) {
                GDN_TC_LOAD_A(af, AL, LDA, 32 * P + 16, 32 * P + 16 + 8 * ks);
                GDN_TC_LOAD_B(bf, KL + 16 * P * KKT_LDX, KKT_LDX, 8 * ks, 8 * n);
                GDN_TC_MMA(y, af, bf);
            }
            for (int e = 0; e < 4; e++)
                AL[(32 * P + 16 + GDN_TC_ROW(e)) * LDA + 32 * P + 8 * n + GDN_TC_COL(e)] = -y[e];
        }
    }
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int t0 = 0; t0 < 8; t0 += KKT_NW) { /* level 2, X: row block rb, tile j */
        const int t = t0 + wq, rb = t >> 2, j = t & 3;
        float     x[4] = {0.0f, 0.0f, 0.0f, 0.0f};
        for (int ks = 0; ks < 4; ks++)
            if (ks >= j) { /* (Ai_[01][01] is lower triangular) */
                GDN_TC_LOAD_A(af, AL, LDA, 32 + 16 * rb, 8 * ks);
                GDN_TC_LOAD_B(bf, AL, LDA, 8 * ks, 8 * j);
                GDN_TC_MMA(x, af, bf);
            }
        for (int e = 0; e < 4; e++)
            KL[(16 * rb + GDN_TC_ROW(e)) * KKT_LDX + 8 * j + GDN_TC_COL(e)] = x[e];
    }
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int t0 = 0; t0 < 8; t0 += KKT_NW) { /* level 2: Ai_[23][01] = -Ai_[23][23] X */
        const int t = t0 + wq, rb = t >> 2, j = t & 3;
        float     y[4] = {0.0f, 0.0f, 0.0f, 0.0f};
        for (int ks = 0; ks < 4; ks++)
            if (ks < 2 * rb + 2) {
                GDN_TC_LOAD_A(af, AL, LDA, 32 + 16 * rb, 32 + 8 * ks);
                GDN_TC_LOAD_B(bf, KL, KKT_LDX, 8 * ks, 8 * j);
                GDN_TC_MMA(y, af, bf);
            }
        for (int e = 0; e < 4; e++)
            AL[(32 + 16 * rb + GDN_TC_ROW(e)) * LDA + 8 * j + GDN_TC_COL(e)] = -y[e];
    }
    barrier(CLK_LOCAL_MEM_FENCE);
#elif LX == 1
    /* Row form: work-item ty owns rows ty + LY a2 of block row P (a2 <
     * 16 / LY); X (16 x 16P, in KL) and Ai_P,[0,P) are formed as float16
     * row segments, q-block by q-block, each summed over m in order. */
#define KKT_MERGE_ROWS(P)                                                                          \
    do {                                                                                           \
        for (int a2 = 0; a2 < 16 / LY; a2++) {                                                     \
            const int r = ty + LY * a2, i = 16 * (P) + r;                                          \
            float16   x_[P];                                                                       \
            _Pragma("unroll") for (int q = 0; q < (P); q++) x_[q] = (float16)0.0f;                 \
            _Pragma("unroll") for (int s = 0; s < (P); s++)                                        \
                for (int m = 16 * s; m < WI_TRIP(16 * s + 16); m++) {                              \
                    const float16 am = (float16)AL[i * LDA + m];                                   \
                    _Pragma("unroll") for (int q = 0; q <= s; q++)                                 \
                        x_[q] = fma(am, vload16(0, AL + m * LDA + 16 * q), x_[q]);                 \
                }                                                                                  \
            _Pragma("unroll") for (int q = 0; q < (P); q++)                                        \
                vstore16(x_[q], 0, KL + r * LDX + 16 * q);                                         \
        }                                                                                          \
        barrier(CLK_LOCAL_MEM_FENCE);                                                              \
        for (int a2 = 0; a2 < 16 / LY; a2++) {                                                     \
            const int r = ty + LY * a2, i = 16 * (P) + r;                                          \
            float16   y_[P];                                                                       \
            _Pragma("unroll") for (int q = 0; q < (P); q++) y_[q] = (float16)0.0f;                 \
            for (int m = 0; m < WI_TRIP(16); m++) {                                                \
                const float16 am = (float16)AL[i * LDA + 16 * (P) + m];                            \
                _Pragma("unroll") for (int q = 0; q < (P); q++)                                    \
                    y_[q] = fma(am, vload16(0, KL + m * LDX + 16 * q), y_[q]);                     \
            }                                                                                      \
            _Pragma("unroll") for (int q = 0; q < (P); q++)                                        \
                vstore16(-y_[q], 0, AL + i * LDA + 16 * q);                                        \
        }                                                                                          \
        barrier(CLK_LOCAL_MEM_FENCE);                                                              \
    } while (0)
    KKT_MERGE_ROWS(1);
    KKT_MERGE_ROWS(2);
    KKT_MERGE_ROWS(3);
#else
    /* Each work-item owns 4 x 4 tiles of the 16 x 16 p block row in turn
     * (tile t: rows 4 (t / 4p) ..., columns 4 (t % 4p) ...), summed over m
     * in order as a 1 x 1 product would: 8 local reads per 16 fma instead of
     * 2 per fma (H200, B = 4: the merges took about 0.06 of kkt_solve's
     * 0.21 ms, bound by local-memory reads). Later probes of the sm_90 plan
     * (VEC=2), parts left out: 0.200-0.204 ms in all, 0.144-0.145 without
     * the diagonal substitution and the merges, 0.121-0.122 without the
     * Gram products; their loads and stores alone are about 0.05 ms at the
     * copy bandwidth. */
    for (int p = 1; p < 4; p++) {
        /* X_pq = A_p,[q,p) Ai_[q,p),q for every q < p, into KL (16 x 16 p) */
        for (int t = lid; t < 16 * p; t += WG) {
            const int r0 = 4 * (t / (4 * p)), c0 = 4 * (t % (4 * p)), q = c0 >> 4;
            float     x[4][4];
            GDN_TILE_ZERO(x, 4, 4);
            GDN_TILE_MMA(x, 4, 4, (AL + 16 * p * LDA + 16 * q), LDA, 0, (AL + 16 * q * LDA), LDA,
                         0, r0, 1, c0, 1, 16 * (p - q));
            for (int i = 0; i < 4; i++)
                for (int j = 0; j < 4; j++)
                    KL[(r0 + i) * LDX + c0 + j] = x[i][j];
        }
        barrier(CLK_LOCAL_MEM_FENCE);
        /* Ai_pq = -Ai_pp X_pq */
        for (int t = lid; t < 16 * p; t += WG) {
            const int r0 = 4 * (t / (4 * p)), c0 = 4 * (t % (4 * p));
            float     y[4][4];
            GDN_TILE_ZERO(y, 4, 4);
            GDN_TILE_MMA(y, 4, 4, (AL + 16 * p * LDA + 16 * p), LDA, 0, KL, LDX, 0, r0, 1, c0, 1,
                         16);
            for (int i = 0; i < 4; i++)
                for (int j = 0; j < 4; j++)
                    AL[(16 * p + r0 + i) * LDA + c0 + j] = -y[i][j];
        }
        barrier(CLK_LOCAL_MEM_FENCE);
    }
#endif

    /* Store the chunk's valid rows (all 64 columns). */
#if LX == 1
    for (int a = 0; a < WI_TRIP(TMG); a++) {
        const int i = ty + LY * a;
        if (i < L)
#pragma unroll
            for (int v = 0; v < 4; v++)
                vstore16(vload16(0, AL + i * LDA + 16 * v), 0,
                         Ai + ((ulong)(first + i) * (ulong)HV + (ulong)hv) * CH + (ulong)(16 * v));
    }
#else
    for (int e = lid; e < CH * CH; e += WG) {
        const int i = e >> 6, j = e & 63;
        if (i < L)
            Ai[((ulong)(first + i) * (ulong)HV + (ulong)hv) * CH + (ulong)j] = AL[i * LDA + j];
    }
#endif
}
