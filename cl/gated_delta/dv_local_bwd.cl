/*
 * gated_delta/dv_local_bwd.cl - backward stage B3: the intra-chunk part of
 * dL/dv_new (ALGORITHM.md 2.3, fla chunk_bwd_kernel_dv_local).
 *
 * Math, per chunk of L <= 64 rows and value head hv (q, k at q/k head
 * hv / (HV/H), already L2-normalised when the op does that):
 *     Akq[i][j] = scale (k_i . q_j) exp2(G_j - G_i)   for i <= j < L, else 0
 *     dv_local[i][:] = sum_j Akq[i][j] do[j][:]               (rows i < L)
 * G is the chunk-local cumulative log2 gate, so G_j - G_i <= 0 for j >= i;
 * the mask is applied with a select before exp2.
 *
 * Shapes: q, k [T, H, K]; G [T, HV]; do, dv_local [T, HV, V];
 * chunks [NT] int4 (seq, first token, length, chunk index in seq).
 *
 * One work-group = one (chunk, value head): global (TY*TX, NT, HV), local
 * (TY*TX, 1, 1). It accumulates k q^T over K in BK-column tiles staged in
 * local memory (register micro-tiles of 64/TY x 64/TX per work-item, rows
 * strided by TY, columns by TX), keeps the masked 64 x 64 Akq in local
 * memory, then multiplies it by do in BV-column tiles.
 * Local memory: 64*65 + max(2*64*(BK+1), 64*(BV+1)) + 64 floats.
 *
 * Tuning macros (set by dvl_plan in lib/ops/gated_delta/chunk_bwd.c from the
 * tuning space gated_delta/dv_local; any work-group size, also below 64):
 *   K_DIM, V_DIM  head dims (multiples of 16, <= 256)
 *   BK            K tile: a divisor of K_DIM (16, 32 or 64; default 32)
 *   BV            V tile: a multiple of TX dividing V_DIM (default 32)
 *   TY, TX        work-item grid (TY divides 64, TX divides 64 and BV;
 *                 default 16 x 16)
 *   VEC           0: gated_delta_dv_local (above); 1: gated_delta_dv_local_v,
 *                 float4 operand reads (below; needs BV a multiple of 4 TX)
 *   GDN_TILE_UNROLL  the unroll factor of the float4 products' loops over k
 *                    (tuning parameter UNROLL; 0, the default: the
 *                    compiler's choice; cl/include/gdn_tile.clh)
 */
#include "gdn_common.clh"
#include "gdn_tile.clh"

/* The parameters of every kernel in this file, in the order the host binds them
 * (lib/ops/gated_delta): the forms differ in their bodies only. */
#define DV_LOCAL_PARAMS                                                                            \
    __global const int4 *chunks, __global const float *q, __global const float *k,                 \
    __global const float *G, __global const float *do_, __global float *dvl, int H, int HV,        \
    float scale

#ifndef K_DIM
#    define K_DIM 64
#endif
#ifndef V_DIM
#    define V_DIM 64
#endif
#ifndef BK
#    define BK 32
#endif
#ifndef BV
#    define BV 32
#endif
#ifndef TY
#    define TY 16
#endif
#ifndef TX
#    define TX 16
#endif

#define CH  64            /* chunk length */
#define WG  (TY * TX)     /* work-items per group */
#define TM  (CH / TY)     /* rows per work-item */
#define TNC (CH / TX)     /* columns per work-item of a 64-wide tile */
#define TNV (BV / TX)     /* columns per work-item of a BV-wide tile */
#define LDC (CH + 1)      /* padded row stride of 64-wide tiles */
#define LDK (BK + 1)
#define LDV (BV + 1)
#define XSZ (2 * CH * LDK > CH * LDV ? 2 * CH * LDK : CH * LDV)

#ifndef VEC
#    define VEC 0
#endif

#if K_DIM % BK != 0 || V_DIM % BV != 0 || BV % TX != 0 || CH % TY != 0 || CH % TX != 0
#    error "dv_local_bwd.cl: illegal tile sizes"
#endif

#if !VEC

__kernel __attribute__((reqd_work_group_size(WG, 1, 1))) void
gated_delta_dv_local(DV_LOCAL_PARAMS)
{
    __local float sS[CH * LDC];
    __local float sX[XSZ];
    __local float sG[CH];

    const int  tid = (int)get_local_id(0), tx = tid % TX, ty = tid / TX;
    const int  c = (int)get_group_id(1), hv = (int)get_group_id(2);
    const int4 e  = chunks[c];
    const int  t0 = e.y, L = e.z;
    const int  hk = hv / (HV / H);
    __local float *sK = sX, *sQ = sX + CH * LDK;

    for (int r = tid; r < CH; r += WG) /* WG may be below 64 */
        sG[r] = r < L ? G[(ulong)(t0 + r) * HV + hv] : 0.0f;

    float acc[TM][TNC];
    GDN_TILE_ZERO(acc, TM, TNC);
    for (int k0 = 0; k0 < K_DIM; k0 += BK) {
        barrier(CLK_LOCAL_MEM_FENCE);
        for (int idx = tid; idx < CH * BK; idx += WG) {
            const int r = idx / BK, cc = idx % BK;
            float     kv = 0.0f, qv = 0.0f;
            if (r < L) {
                const ulong off = ((ulong)(t0 + r) * H + hk) * K_DIM + k0 + cc;
                kv = k[off];
                qv = q[off];
            }
            sK[r * LDK + cc] = kv;
            sQ[r * LDK + cc] = qv;
        }
        barrier(CLK_LOCAL_MEM_FENCE);
        /* acc[i][j] += k_i . q_j */
        GDN_TILE_MMA(acc, TM, TNC, sK, LDK, 0, sQ, LDK, 1, ty, TY, tx, TX, BK);
    }
    for (int a = 0; a < TM; a++) {
        const int i = ty + a * TY;
        for (int b = 0; b < TNC; b++) {
            const int  j  = tx + b * TX;
            const bool on = i <= j && j < L;
            sS[i * LDC + j] = on ? scale * acc[a][b] * exp2(on ? sG[j] - sG[i] : 0.0f) : 0.0f;
        }
    }
    for (int v0 = 0; v0 < V_DIM; v0 += BV) {
        barrier(CLK_LOCAL_MEM_FENCE);
        for (int idx = tid; idx < CH * BV; idx += WG) {
            const int r = idx / BV, cc = idx % BV;
            sX[r * LDV + cc] = r < L ? do_[((ulong)(t0 + r) * HV + hv) * V_DIM + v0 + cc] : 0.0f;
        }
        barrier(CLK_LOCAL_MEM_FENCE);
        float out[TM][TNV];
        GDN_TILE_ZERO(out, TM, TNV);
        GDN_TILE_MMA(out, TM, TNV, sS, LDC, 0, sX, LDV, 0, ty, TY, tx, TX, CH);
        for (int a = 0; a < TM; a++) {
            const int i = ty + a * TY;
            if (i < L)
                for (int b = 0; b < TNV; b++)
                    dvl[((ulong)(t0 + i) * HV + hv) * V_DIM + v0 + tx + b * TX] = out[a][b];
        }
    }
}
#endif /* !VEC */

#if VEC
/*
 * VEC=1: gated_delta_dv_local_v, the same function with every local-memory
 * operand read as float4 (GDN_TILE_MMA4), for GPUs where the scalar
 * kernel's small strided micro-tiles are bound by local-memory reads.
 * Operands are staged in the layout of the outer product (A k-major, B
 * row-major): k q^T reads k and q transposed (K-major, staged by
 * GDN_TILE_STAGE_T), Akq do reads Akq transposed (column-major, written
 * from registers as float4 along rows) and do row-major. A work-item owns
 * TM = 64/TY rows in groups of 4 contiguous rows (4 TY apart) and TNC =
 * 64/TX (k q^T) or TNV = BV/TX (output) columns in groups of 4 (4 TX
 * apart), so TM, TNC and TNV must be multiples of 4. Akq is zero for j < i,
 * so the second product starts at row 4 ty of do (this work-item's first
 * row) and stops at L (rows >= L of do are zeros): fma of an exact zero
 * leaves the sum unchanged, so the result equals the scalar kernel's.
 * Akq overwrites the k, q tiles (one extra barrier), so local memory is
 * max(2 BK (64 + 4), 64 (64 + 4) + 64 (BV + 4)) + 64 floats: 34.25 KiB for
 * any BK, BV <= 64.
 */
#define LDA (CH + 4)
#define LDB (BV + 4)
#define RV(a) (4 * ty + ((a) / 4) * 4 * TY + (a) % 4) /* chunk row of accumulator row a */
#define CC(b) (4 * tx + ((b) / 4) * 4 * TX + (b) % 4) /* column of accumulator column b */
#define VSZ   (2 * BK * LDA > CH * (LDA + LDB) ? 2 * BK * LDA : CH * (LDA + LDB))

#if VEC == 3
/*
 * VEC=3: VEC=2's copies with the products on GDN_TC's warp tiles
 * (cl/include/gdn_tile.clh: 3xTF32 mma.sync on NVIDIA's tensor cores with
 * GDN_TC=1, its plain twin elsewhere), TX = 16 and TY = 8 or 16: NW3 = four
 * or eight SIMD groups. Akq = k q^T on 16 x 8 tiles: group w forms the
 * tiles of row block p = w % 4 at or right of the diagonal (columns from
 * 16 p) and below L, every (NW3 / 4)-th of them from tile 2 p + w / 4, over
 * the k and q slices (64 x 16, rows padded to 20) copied a slice ahead into
 * two slots; the masked tiles go to sS (64 x 68, row-major) over the dead
 * slots. dv_local = Akq do over do tiles of 64 x BV (rows padded to BV + 8)
 * in two slots, the first copied with the first slice, each next one while
 * the current one is multiplied: group w owns columns 8 NT3 (w / 2) ... of
 * the tile in two row blocks whose products are the same length together
 * (rows of block p need Akq's columns from 16 p: blocks 0 and 3 for even w,
 * 1 and 2 for odd w), each A fragment loaded once for its NT3 tiles; k
 * steps stop at L. Rows past L of k, q and do repeat row L - 1 (finite,
 * meeting only Akq's zeros and rows never stored). Local memory: 4 * (max(4
 * * 64 * 20, 64 * 68) + 2 * 64 (BV + 8) + 64) bytes (40.3 KiB at BV = 32).
 */
#define LDQ3   (BK + 4)           /* row stride of the k and q slices */
#define LDS3   (CH + 4)           /* row stride of sS */
#define LDD3   (BV + 8)           /* row stride of a do tile */
#define SLOTQ3 (2 * CH * LDQ3)    /* one slot: a k slice, then a q slice */
#define R13    (2 * SLOTQ3 > CH * LDS3 ? 2 * SLOTQ3 : CH * LDS3)
#define NW3    (WG / 32)          /* SIMD groups */
#define TPW3   (32 / NW3)         /* Akq tiles per group, at most */
#define NT3    (BV / 4 / NW3)     /* 8-column do tiles per row block per group */
#if TX != 16 || (TY != 8 && TY != 16) || BK != 16 || BV % (4 * NW3) != 0
#    error "dv_local_bwd.cl: VEC=3 needs TX = 16, TY = 8 or 16, BK = 16, BV a multiple of NW3 * 4"
#endif

__kernel __attribute__((reqd_work_group_size(WG, 1, 1))) void
gated_delta_dv_local_v(DV_LOCAL_PARAMS)
{
    __local float4 sX4[(R13 + 2 * CH * LDD3) / 4]; /* float4: aligned for the copies */
    __local float  sG[CH];
    __local float *sX = (__local float *)sX4, *sS = sX, *sD = sX + R13;

    const int   tid = (int)get_local_id(0);
    const int   c = (int)get_group_id(1), hv = (int)get_group_id(2);
    const int4  e4 = chunks[c];
    const int   t0 = e4.y, L = e4.z;
    const int   hk = hv / (HV / H);
    const int   w = tid >> 5, p1 = w & 3, j1 = w >> 2;                  /* Akq */
    const int   pa = w & 1, pb = 3 - pa, n2 = 8 * NT3 * (w >> 1);       /* dv_local */
    const int   nl = (L + 7) / 8; /* 8-wide tiles and k steps holding rows < L */
    const __global float *kc = k + (t0 * H + hk) * K_DIM, *qc = q + (t0 * H + hk) * K_DIM;
    const __global float *dc = do_ + (t0 * HV + hv) * V_DIM;
    float       acc[TPW3][4], out[2][NT3][4], af[GDN_TC_AN], bf[NT3][GDN_TC_BN];

/* Slice s of k and q into slot b; do tile t into do slot t & 1. */
#define DVL3_COPY_KQ(s, b)                                                                         \
    do {                                                                                           \
        __local float *d_ = sX + (b) * SLOTQ3;                                                     \
        for (int e_ = tid; e_ < CH * (BK / 4); e_ += WG) {                                         \
            const int r_ = e_ / (BK / 4), c_ = 4 * (e_ - r_ * (BK / 4));                           \
            const int o_ = min(r_, L - 1) * (H * K_DIM) + (s) * BK + c_;                           \
            GDN_CP16(d_ + r_ * LDQ3 + c_, kc + o_);                                                \
            GDN_CP16(d_ + CH * LDQ3 + r_ * LDQ3 + c_, qc + o_);                                    \
        }                                                                                          \
    } while (0)
#define DVL3_COPY_DO(t)                                                                            \
    do {                                                                                           \
        __local float *d_ = sD + ((t) & 1) * CH * LDD3;                                            \
        for (int e_ = tid; e_ < CH * (BV / 4); e_ += WG) {                                         \
            const int r_ = e_ / (BV / 4), c_ = 4 * (e_ - r_ * (BV / 4));                           \
            GDN_CP16(d_ + r_ * LDD3 + c_,                                                          \
                     dc + (min(r_, L - 1) * (HV * V_DIM) + (t) * BV + c_));                        \
        }                                                                                          \
    } while (0)

    for (int r = tid; r < CH; r += WG)
        sG[r] = G[(t0 + min(r, L - 1)) * HV + hv];
    DVL3_COPY_DO(0);
    DVL3_COPY_KQ(0, 0);
    GDN_TILE_ZERO(acc, TPW3, 4);
    for (int s = 0; s < K_DIM / BK; s++) {
        __local const float *sK = sX + (s & 1) * SLOTQ3, *sQ = sK + CH * LDQ3;
        GDN_CP_WAIT();
        barrier(CLK_LOCAL_MEM_FENCE); /* slice s is in; the other slot's readers are done */
        if (s + 1 < K_DIM / BK)
            DVL3_COPY_KQ(s + 1, (s + 1) & 1);
        if (16 * p1 < L)
#pragma unroll
            for (int kk = 0; kk < BK; kk += 8) {
                GDN_TC_LOAD_A(af, sK, LDQ3, 16 * p1, kk);
#pragma unroll
                for (int e = 0; e < TPW3; e++) {
                    const int j = 2 * p1 + j1 + (NW3 / 4) * e;
                    if (j < nl) {
                        GDN_TC_LOAD_BT(bf[0], sQ, LDQ3, kk, 8 * j);
                        GDN_TC_MMA(acc[e], af, bf[0]);
                    }
                }
            }
    }
    barrier(CLK_LOCAL_MEM_FENCE); /* the k, q slots are free: sS lies over them */
    if (16 * p1 < L)
#pragma unroll
        for (int e = 0; e < TPW3; e++) {
            const int j = 2 * p1 + j1 + (NW3 / 4) * e;
            if (j < nl)
                for (int f = 0; f < 4; f++) {
                    const int  i = 16 * p1 + GDN_TC_ROW(f), jj = 8 * j + GDN_TC_COL(f);
                    const bool on = i <= jj && jj < L;
                    sS[i * LDS3 + jj] =
                        on ? scale * acc[e][f] * exp2(on ? sG[jj] - sG[i] : 0.0f) : 0.0f;
                }
        }
    for (int t = 0; t < V_DIM / BV; t++) {
        __local const float *sDt = sD + (t & 1) * CH * LDD3;
        GDN_CP_WAIT();
        barrier(CLK_LOCAL_MEM_FENCE); /* sS and do tile t are in; tile t - 1's readers are done */
        if (t + 1 < V_DIM / BV)
            DVL3_COPY_DO(t + 1);
        GDN_TILE_ZERO(out[0], NT3, 4);
        GDN_TILE_ZERO(out[1], NT3, 4);
        /* (Fixed trip counts, bounds as conditions: see wy_fwd.cl VEC=3.) */
        for (int ks = 0; ks < CH / 8; ks++)
            if (ks < nl) {
#pragma unroll
                for (int n = 0; n < NT3; n++)
                    GDN_TC_LOAD_B(bf[n], sDt, LDD3, 8 * ks, n2 + 8 * n);
                if (ks >= 2 * pa) {
                    GDN_TC_LOAD_A(af, sS, LDS3, 16 * pa, 8 * ks);
#pragma unroll
                    for (int n = 0; n < NT3; n++)
                        GDN_TC_MMA(out[0][n], af, bf[n]);
                }
                if (ks >= 2 * pb) {
                    GDN_TC_LOAD_A(af, sS, LDS3, 16 * pb, 8 * ks);
#pragma unroll
                    for (int n = 0; n < NT3; n++)
                        GDN_TC_MMA(out[1][n], af, bf[n]);
                }
            }
#pragma unroll
        for (int qb = 0; qb < 2; qb++)
#pragma unroll
            for (int e = 0; e < 4; e += 2) {
                const int i = 16 * (qb ? pb : pa) + GDN_TC_ROW(e);
                if (i < L)
#pragma unroll
                    for (int n = 0; n < NT3; n++)
                        *(__global float2 *)(dvl + ((t0 + i) * HV + hv) * V_DIM + t * BV + n2 +
                                             8 * n + GDN_TC_COL(e)) =
                            (float2)(out[qb][n][e], out[qb][n][e + 1]);
            }
    }
#undef DVL3_COPY_KQ
#undef DVL3_COPY_DO
}
#elif VEC == 2
/*
 * VEC=2: the same function with every operand staged row-major and copied
 * by GDN_CP16 (cp.async on NVIDIA, a plain load and store on other devices:
 * cl/include/gdn_tile.clh) a tile ahead: the k and q slices (64 x BK each,
 * rows padded to BK + 4 floats) in two slots, one barrier per slice, and
 * the do tiles (64 x BV) in two slots, the first copied with the first
 * slice, the next while the current one is multiplied. A work-item owns the
 * TM contiguous rows ra = TM ty ..., the strided columns tx + TX e of Akq
 * (e < TNC) and the column groups 4 tx + 4 TX g of dv_local. k rows are read
 * as float4s of four k (GDN_TILE_LOAD4R) against q rows (GDN_TILE_DOT4_STEP);
 * a column stride whose columns all lie before the work-item's first row or
 * at or past L is skipped (Akq is 0 there). Akq, masked, is stored row-major
 * (sS) and multiplied by do over rows j in [ra rounded down to 4, L rounded
 * up to 4) (GDN_TILE_MMA4R_STEP): Akq is 0 outside [ra, L). k, q and do rows
 * past L repeat row L - 1 (finite; they meet only Akq's zeros and rows never
 * stored). Offsets into the token-major tensors are int (T HV max(K, V) <
 * 2^31, api.c). Needs BV/TX a multiple of 4. Local memory: sS (64 x 64) and
 * do slot 1 after it, do slot 0 at max(64 (64 + BV), 4 * 64 (BK + 4)) floats
 * (the k and q slots lie below it): 48 KiB at BK = 16, BV = 64.
 */
#define LDQ2 (BK + 4)
#define D1   (CH * CH)
#define D0   (CH * (CH + BV) > 4 * CH * LDQ2 ? CH * (CH + BV) : 4 * CH * LDQ2)
#if TNV % 4 != 0
#    error "dv_local_bwd.cl: VEC=2 needs BV/TX a multiple of 4"
#endif

__kernel __attribute__((reqd_work_group_size(WG, 1, 1))) void
gated_delta_dv_local_v(DV_LOCAL_PARAMS)
{
    __local float4 sX4[(D0 + CH * BV) / 4]; /* float4: aligned for the float4 reads, copies */
    __local float *sX = (__local float *)sX4, *sS = sX;

    const int   tid = (int)get_local_id(0), tx = tid % TX, ty = tid / TX;
    const int   c = (int)get_group_id(1), hv = (int)get_group_id(2);
    const int4  e4 = chunks[c];
    const int   t0 = e4.y, L = e4.z;
    const int   hk = hv / (HV / H);
    const int   ra = TM * ty;
    const int   e0 = ra / TX, e1 = min(TNC, (L + TX - 1) / TX); /* Akq column strides */
    const __global float *kc = k + (t0 * H + hk) * K_DIM, *qc = q + (t0 * H + hk) * K_DIM;
    const __global float *dc = do_ + (t0 * HV + hv) * V_DIM;
    float       acc[TM][TNC], gr[TM], gc[TNC];

/* Slice s of k and q into slot b; do tile t into slot t & 1. */
#define DVL_COPY_KQ(s, b)                                                                          \
    do {                                                                                           \
        __local float *d_ = sX + (b) * 2 * CH * LDQ2;                                              \
        for (int e_ = tid; e_ < CH * (BK / 4); e_ += WG) {                                         \
            const int r_ = e_ / (BK / 4), c_ = 4 * (e_ - r_ * (BK / 4));                           \
            const int o_ = min(r_, L - 1) * (H * K_DIM) + (s) * BK + c_;                           \
            GDN_CP16(d_ + r_ * LDQ2 + c_, kc + o_);                                                \
            GDN_CP16(d_ + CH * LDQ2 + r_ * LDQ2 + c_, qc + o_);                                    \
        }                                                                                          \
    } while (0)
#define DVL_COPY_DO(t)                                                                             \
    do {                                                                                           \
        __local float *d_ = sX + (((t) & 1) ? D1 : D0);                                            \
        for (int e_ = tid; e_ < CH * (BV / 4); e_ += WG) {                                         \
            const int r_ = e_ / (BV / 4), c_ = 4 * (e_ - r_ * (BV / 4));                           \
            GDN_CP16(d_ + r_ * BV + c_, dc + (min(r_, L - 1) * (HV * V_DIM) + (t) * BV + c_));     \
        }                                                                                          \
    } while (0)

    for (int a = 0; a < TM; a++)
        gr[a] = G[(t0 + min(ra + a, L - 1)) * HV + hv];
    for (int e = 0; e < TNC; e++)
        gc[e] = G[(t0 + min(tx + TX * e, L - 1)) * HV + hv];
    DVL_COPY_DO(0);
    DVL_COPY_KQ(0, 0);
    GDN_TILE_ZERO(acc, TM, TNC);
    for (int s = 0; s < K_DIM / BK; s++) {
        __local const float *sK = sX + (s & 1) * 2 * CH * LDQ2, *sQ = sK + CH * LDQ2;
        GDN_CP_WAIT();
        barrier(CLK_LOCAL_MEM_FENCE); /* slice s is in; the other slot's readers are done */
        if (s + 1 < K_DIM / BK)
            DVL_COPY_KQ(s + 1, (s + 1) & 1);
#pragma unroll
        for (int kk = 0; kk < BK; kk += 4) {
            float4 a4[TM];
            GDN_TILE_LOAD4R(a4, TM, sK, LDQ2, ra, kk);
            GDN_TILE_DOT4_STEP(acc, TM, TNC, a4, sQ, LDQ2, tx, TX, e0, e1, kk);
        }
    }
    barrier(CLK_LOCAL_MEM_FENCE); /* the k, q slots are free */
    if (V_DIM / BV > 1)
        DVL_COPY_DO(1);
    for (int a = 0; a < TM; a++)
        for (int e = 0; e < TNC; e++) {
            const int  i = ra + a, j = tx + TX * e;
            const bool on = i <= j && j < L;
            sS[i * CH + j] = on ? scale * acc[a][e] * exp2(on ? gc[e] - gr[a] : 0.0f) : 0.0f;
        }
    for (int t = 0; t < V_DIM / BV; t++) {
        __local const float *sD = sX + ((t & 1) ? D1 : D0);
        float                out[TM][TNV];
        if (t > 0)
            GDN_CP_WAIT();
        barrier(CLK_LOCAL_MEM_FENCE); /* sS and do tile t are in; tile t - 1's readers are done */
        if (t > 0 && t + 1 < V_DIM / BV)
            DVL_COPY_DO(t + 1);
        GDN_TILE_ZERO(out, TM, TNV);
        for (int j = ra & ~3; j < L; j += 4) {
            float4 a4[TM];
            GDN_TILE_LOAD4R(a4, TM, sS, CH, ra, j);
            GDN_TILE_MMA4R_STEP(out, TM, TNV, a4, sD, BV, 4 * tx, 4 * TX, j);
        }
        for (int a = 0; a < TM; a++)
            if (ra + a < L)
                for (int b = 0; b < TNV; b += 4)
                    GDN_ST4G((float4)(out[a][b], out[a][b + 1], out[a][b + 2], out[a][b + 3]),
                             dvl + (t0 + ra + a) * HV * V_DIM + hv * V_DIM + t * BV + 4 * tx +
                                 4 * TX * (b / 4));
    }
#undef DVL_COPY_KQ
#undef DVL_COPY_DO
}
#else /* VEC == 1 */
#if TM % 4 != 0 || TNC % 4 != 0 || TNV % 4 != 0
#    error "dv_local_bwd.cl: VEC needs 64/TY, 64/TX and BV/TX multiples of 4"
#endif

__kernel __attribute__((reqd_work_group_size(WG, 1, 1))) void
gated_delta_dv_local_v(DV_LOCAL_PARAMS)
{
    __local float4 sX4[(VSZ + 3) / 4]; /* float4: aligned for the float4 reads */
    __local float  sG[CH];
    __local float *sX = (__local float *)sX4;

    const int   tid = (int)get_local_id(0), tx = tid % TX, ty = tid / TX;
    const int   c = (int)get_group_id(1), hv = (int)get_group_id(2);
    const int4  e  = chunks[c];
    const int   t0 = e.y, L = e.z;
    const int   hk = hv / (HV / H);
    const ulong qk_base = ((ulong)t0 * H + hk) * K_DIM;  /* row stride H K_DIM */
    const ulong v_base  = ((ulong)t0 * HV + hv) * V_DIM; /* row stride HV V_DIM */

    for (int r = tid; r < CH; r += WG) /* WG may be below 64 */
        sG[r] = r < L ? G[(ulong)(t0 + r) * HV + hv] : 0.0f;

    /* acc[i][j] = k_i . q_j, K tiles staged transposed: sKt[c][i], sQt[c][j]. */
    float          acc[TM][TNC];
    __local float *sKt = sX, *sQt = sX + BK * LDA;
    GDN_TILE_ZERO(acc, TM, TNC);
    for (int k0 = 0; k0 < K_DIM; k0 += BK) {
        barrier(CLK_LOCAL_MEM_FENCE);
        GDN_TILE_STAGE_T(sKt, LDA, k + qk_base + k0, (ulong)H * K_DIM, CH, BK, L, tid, WG);
        GDN_TILE_STAGE_T(sQt, LDA, q + qk_base + k0, (ulong)H * K_DIM, CH, BK, L, tid, WG);
        barrier(CLK_LOCAL_MEM_FENCE);
        GDN_TILE_MMA4(acc, TM, TNC, sKt, LDA, 4 * ty, 4 * TY, sQt, LDA, 4 * tx, 4 * TX, BK);
    }

    /* Masked Akq, transposed (sSt[j][i]), over the dead k, q tiles. */
    __local float *sSt = sX, *sDO = sX + CH * LDA;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int a = 0; a < TM; a += 4)
        for (int b = 0; b < TNC; b++) {
            const int j = CC(b);
            float     o[4];
            for (int u = 0; u < 4; u++) {
                const int  i  = RV(a + u);
                const bool on = i <= j && j < L;
                o[u] = on ? scale * acc[a + u][b] * exp2(on ? sG[j] - sG[i] : 0.0f) : 0.0f;
            }
            *(__local float4 *)(sSt + j * LDA + RV(a)) = (float4)(o[0], o[1], o[2], o[3]);
        }

    /* dv_local = Akq do over rows j in [4 ty, L) of do. */
    const int j0 = 4 * ty;
    for (int v0 = 0; v0 < V_DIM; v0 += BV) {
        barrier(CLK_LOCAL_MEM_FENCE);
        for (int idx = tid; idx < CH * (BV / 4); idx += WG) {
            const int r = idx / (BV / 4), c4 = 4 * (idx % (BV / 4));
            *(__local float4 *)(sDO + r * LDB + c4) =
                r < L ? GDN_LD4G(do_ + v_base + (ulong)r * HV * V_DIM + v0 + c4) : (float4)(0.0f);
        }
        barrier(CLK_LOCAL_MEM_FENCE);
        float out[TM][TNV];
        GDN_TILE_ZERO(out, TM, TNV);
        GDN_TILE_MMA4(out, TM, TNV, sSt + j0 * LDA, LDA, 4 * ty, 4 * TY, sDO + j0 * LDB, LDB,
                      4 * tx, 4 * TX, L - j0);
        for (int a = 0; a < TM; a++)
            if (RV(a) < L)
                for (int b = 0; b < TNV; b += 4)
                    GDN_ST4G((float4)(out[a][b], out[a][b + 1], out[a][b + 2], out[a][b + 3]),
                             dvl + v_base + (ulong)RV(a) * HV * V_DIM + v0 + CC(b));
    }
}
#endif /* VEC == 2 */
#endif /* VEC */
