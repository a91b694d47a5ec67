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
#endif /* VEC */
