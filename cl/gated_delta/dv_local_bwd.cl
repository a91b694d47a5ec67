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
 */
#include "gdn_common.clh"
#include "gdn_tile.clh"

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

#if K_DIM % BK != 0 || V_DIM % BV != 0 || BV % TX != 0 || CH % TY != 0 || CH % TX != 0
#    error "dv_local_bwd.cl: illegal tile sizes"
#endif

__kernel __attribute__((reqd_work_group_size(WG, 1, 1))) void
gated_delta_dv_local(__global const int4 *chunks, __global const float *q,
                     __global const float *k, __global const float *G,
                     __global const float *do_, __global float *dvl, int H, int HV, float scale)
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
