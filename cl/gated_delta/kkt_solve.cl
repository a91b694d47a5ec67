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
 *
 * Shapes (F32, token-major): k [T, H, K]; b, G [T, HV]; chunks [NT] int4
 * (seq, first token, length, chunk index); Ai [T, HV, 64] (row t holds its
 * chunk row; columns >= the chunk length are 0).
 *
 * One work-group = one (chunk, value head): 256 work-items as 16 x 16,
 * each owning a 4 x 4 strided micro-tile of the 64 x 64 Gram matrix, which
 * is accumulated over K in slices of BK columns staged in local memory.
 * Local memory: 4 * (64 * 65 + 64 * (BK + 1) + 128) bytes (25 KiB at
 * BK = 32). Global (256 * NT, HV), local (256, 1).
 *
 * Tuning macros (#ifndef defaults; set by kkt_plan_default in
 * lib/ops/gated_delta/chunk_fwd.c):
 *   K   key head dim, a multiple of 16 in [16, 256] (no default: required)
 *   BK  key columns per staged slice: 16 or 32, dividing K (default 16)
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
#ifndef LY
#define LY 16
#endif
#define CH   64          /* chunk size */
#define WG   (LX * LY)   /* work-items */
#define TMG  (CH / LY)   /* Gram rows per work-item */
#define TNG  (CH / LX)   /* Gram columns per work-item */
#define LDA  (CH + 1)    /* padded row stride of the 64 x 64 tiles */
#define LDK  (BK + 1)    /* padded row stride of the key slice */
#define LDX  (48 + 1)    /* row stride of the 16 x 48 merge scratch */

#if (K % BK) != 0 || (BK % 16) != 0
#error "BK must be a multiple of 16 dividing K"
#endif
#if (CH % LX) != 0 || (CH % LY) != 0
#error "LX and LY must divide 64"
#endif

__kernel __attribute__((reqd_work_group_size(WG, 1, 1)))
void gated_delta_kkt_solve(__global const float *k, __global const float *b,
                           __global const float *G, __global const int4 *chunks,
                           __global float *Ai, int H, int HV)
{
    __local float AL[CH * LDA];       /* A, then Ai in place */
    __local float KL[CH * LDK];       /* key slice; later the merge scratch X */
    __local float Gs[CH], bs[CH];
    const int     lid = (int)get_local_id(0);
    const int     tx = lid % LX, ty = lid / LX;
    const int     c = (int)get_group_id(0), hv = (int)get_group_id(1);
    const int     kh = hv / (HV / H);
    const int4    ch = chunks[c];
    const int     first = ch.y, L = ch.z;
    float         acc[TMG][TNG];

    for (int r = lid; r < CH; r += WG) {
        const bool  ok = r < L;
        const ulong at = (ulong)(first + (ok ? r : 0)) * (ulong)HV + (ulong)hv;
        Gs[r]          = ok ? G[at] : 0.0f;
        bs[r]          = ok ? b[at] : 0.0f;
    }

    /* Gram matrix K_c K_c^T over slices of BK key columns. */
    GDN_TILE_ZERO(acc, TMG, TNG);
    for (int k0 = 0; k0 < K; k0 += BK) {
        barrier(CLK_LOCAL_MEM_FENCE);
        for (int e = lid; e < CH * BK; e += WG) {
            const int r = e / BK, d = e - r * BK;
            float     x = 0.0f;
            if (r < L)
                x = k[((ulong)(first + r) * (ulong)H + (ulong)kh) * (ulong)K + (ulong)(k0 + d)];
            KL[r * LDK + d] = x;
        }
        barrier(CLK_LOCAL_MEM_FENCE);
        GDN_TILE_MMA(acc, TMG, TNG, KL, LDK, 0, KL, LDK, 1, ty, LY, tx, LX, BK);
    }

    /* Gate, beta and the strict-lower mask (mask first, then exp2). */
    for (int a = 0; a < TMG; a++)
        for (int e = 0; e < TNG; e++) {
            const int   i = ty + LY * a, j = tx + LX * e;
            const bool  m = j < i && i < L;
            const float x = select(0.0f, Gs[i] - Gs[j], (int)m);
            AL[i * LDA + j] = select(0.0f, bs[i] * acc[a][e] * exp2(x), (int)m);
        }
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
    /* (Each of the 16 x 16 block elements (ey, ex) is computed by work-item
     * (ey * 16 + ex) % WG, in turn.) */
    for (int p = 1; p < 4; p++) {
        for (int e = lid; e < 256; e += WG) {
            const int ey = e >> 4, ex = e & 15;
            for (int q = 0; q < p; q++) {
                float x1[1][1] = {{0.0f}};
                GDN_TILE_MMA(x1, 1, 1, (AL + 16 * p * LDA + 16 * q), LDA, 0,
                             (AL + 16 * q * LDA + 16 * q), LDA, 0, ey, 1, ex, 1, 16 * (p - q));
                KL[ey * LDX + 16 * q + ex] = x1[0][0];
            }
        }
        barrier(CLK_LOCAL_MEM_FENCE);
        for (int e = lid; e < 256; e += WG) {
            const int ey = e >> 4, ex = e & 15;
            for (int q = 0; q < p; q++) {
                float x1[1][1] = {{0.0f}};
                GDN_TILE_MMA(x1, 1, 1, (AL + 16 * p * LDA + 16 * p), LDA, 0, (KL + 16 * q), LDX,
                             0, ey, 1, ex, 1, 16);
                AL[(16 * p + ey) * LDA + 16 * q + ex] = -x1[0][0];
            }
        }
        barrier(CLK_LOCAL_MEM_FENCE);
    }

    /* Store the chunk's valid rows (all 64 columns). */
    for (int e = lid; e < CH * CH; e += WG) {
        const int i = e >> 6, j = e & 63;
        if (i < L)
            Ai[((ulong)(first + i) * (ulong)HV + (ulong)hv) * CH + (ulong)j] = AL[i * LDA + j];
    }
}
