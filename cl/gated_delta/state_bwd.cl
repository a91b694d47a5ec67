/*
 * gated_delta/state_bwd.cl - backward stage B4: the reverse scan of the
 * state gradient over the chunks of each sequence (ALGORITHM.md 2.3, fla
 * chunk_gated_delta_rule_bwd_kernel_dhu).
 *
 * Math, per sequence n and value head hv, dH (K x V) starting at dht (or 0),
 * for the chunks c of the sequence from last to first (L rows, gl = G[L-1]):
 *     dh[c] = dH                          (gradient of the state LEAVING c)
 *     dv2[c] = diag(exp2(gl - G)) (k_c dH) + dv_local[c]     (rows < L)
 *     dH = exp2(gl) dH + (scale diag(exp2 G) q_c)^T do_c - w_c^T dv2[c]
 * and finally dh0 = dH. dv2 is the full dL/dv_new (= dL/du).
 *
 * Shapes: q, k [T, H, K] (q/k head hv / (HV/H)); w [T, HV, K]; G [T, HV];
 * do, dv_local, dv2 [T, HV, V]; dht, dh0 [N, HV, K, V]; dh [NT, HV, K, V];
 * chunks [NT] int4 (seq, first token, length, chunk in seq); chunk_off
 * [N + 1] (first chunk of each sequence).
 *
 * Chunk windows, as in state_fwd.cl: one launch processes the chunks
 * numbered [rb, re) from each sequence's end (its last rb chunks were done
 * by earlier windows). A window that does not start at the last chunk takes
 * dH from dh[first chunk it processes] (stored by the previous window); a
 * window that stops before chunk 0 stores dH into dh[next chunk down]
 * instead of dh0. rb = 0, re >= every sequence's chunk count is the whole
 * scan in one launch (the host splits it on Mesa llvmpipe, whose work-items
 * stop after 65535 loop iterations).
 *
 * One work-group = one (V tile of BV columns, sequence, value head): global
 * (TY*TX * V/BV, N, HV), local (TY*TX, 1, 1). The K x BV slab of dH lives in
 * local memory for the whole scan; each work-item owns a strided register
 * micro-tile of every product (rows step TY, columns step TX). k, q and w
 * are streamed through local memory in BKS-column slices; the dH update is
 * one product over the stacked 128 rows [scale exp2(G) q ; -w]^T [do ; dv2].
 * Local memory: K*BV + 2*64*BV + 2*64*BKS + 64 floats.
 *
 * Tuning macros (set by sbwd_plan in lib/ops/gated_delta/chunk_bwd.c from the
 * tuning space gated_delta/state_bwd; any work-group size, also below 64):
 *   K_DIM, V_DIM  head dims (multiples of 16, <= 256)
 *   BV            V tile: multiple of TX dividing V_DIM (16 or 32; default 32)
 *   BKS           K slice: multiple of TY dividing K_DIM (default 16)
 *   TY, TX        work-item grid (TY divides 64 and BKS, TX divides BV;
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
#ifndef BV
#    define BV 32
#endif
#ifndef BKS
#    define BKS 16
#endif
#ifndef TY
#    define TY 16
#endif
#ifndef TX
#    define TX 16
#endif

#define CH  64
#define WG  (TY * TX)
#define TM  (CH / TY)  /* rows of a 64-row product per work-item */
#define TMS (BKS / TY) /* rows of a BKS-row slice per work-item */
#define TN  (BV / TX)  /* columns per work-item */

#if K_DIM % BKS != 0 || V_DIM % BV != 0 || BV % TX != 0 || BKS % TY != 0 || CH % TY != 0
#    error "state_bwd.cl: illegal tile sizes"
#endif

__kernel __attribute__((reqd_work_group_size(WG, 1, 1))) void
gated_delta_state_bwd(__global const int4 *chunks, __global const int *chunk_off,
                      __global const float *q, __global const float *k,
                      __global const float *w, __global const float *G,
                      __global const float *do_, __global const float *dvl,
                      __global const float *dht, __global float *dh, __global float *dv2,
                      __global float *dh0, int H, int HV, float scale, int has_dht,
                      int write_dh0, int rb, int re)
{
    __local float sH[K_DIM * BV];      /* dH slab [K][BV] */
    __local float sD[2 * CH * BV];     /* [do ; dv2] rows of the chunk */
    __local float sA[2 * CH * BKS];    /* k slice, or [q' ; -w] slices */
    __local float sG[CH];

    const int   tid = (int)get_local_id(0), tx = tid % TX, ty = tid / TX;
    const int   v0 = (int)get_group_id(0) * BV, n = (int)get_group_id(1);
    const int   hv = (int)get_group_id(2);
    const int   hk = hv / (HV / H);
    const ulong st_base = ((ulong)n * HV + hv) * K_DIM * V_DIM + v0;

    const int c_first = chunk_off[n], nc = chunk_off[n + 1] - c_first;
    if (rb > 0 && rb >= nc)
        return; /* this sequence was finished by an earlier window */
    const int c_hi = c_first + nc - 1 - rb;           /* first chunk of this window */
    const int c_lo = max(c_first, c_first + nc - re); /* last one */
    {
        const ulong hb = ((ulong)c_hi * HV + hv) * K_DIM * V_DIM + v0;
        for (int idx = tid; idx < K_DIM * BV; idx += WG) {
            const int   i = idx / BV, j = idx % BV;
            const ulong o = (ulong)i * V_DIM + j;
            sH[idx]       = rb > 0 ? dh[hb + o] : has_dht ? dht[st_base + o] : 0.0f;
        }
    }
    for (int c = c_hi; c >= c_lo; c--) {
        const int4  e  = chunks[c];
        const int   t0 = e.y, L = e.z;
        const ulong dh_base = ((ulong)c * HV + hv) * K_DIM * V_DIM + v0;

        barrier(CLK_LOCAL_MEM_FENCE); /* sH final, sD/sA/sG free */
        for (int idx = tid; idx < K_DIM * BV; idx += WG) {
            const int i = idx / BV, j = idx % BV;
            dh[dh_base + (ulong)i * V_DIM + j] = sH[idx];
        }
        for (int r = tid; r < CH; r += WG) /* WG may be below 64 */
            sG[r] = r < L ? G[(ulong)(t0 + r) * HV + hv] : 0.0f;
        for (int idx = tid; idx < CH * BV; idx += WG) {
            const int r = idx / BV, j = idx % BV;
            sD[idx] = r < L ? do_[((ulong)(t0 + r) * HV + hv) * V_DIM + v0 + j] : 0.0f;
        }

        /* dv2 = diag(exp2(gl - G)) (k dH) + dv_local */
        float acc[TM][TN];
        GDN_TILE_ZERO(acc, TM, TN);
        for (int ks = 0; ks < K_DIM; ks += BKS) {
            barrier(CLK_LOCAL_MEM_FENCE);
            for (int idx = tid; idx < CH * BKS; idx += WG) {
                const int r = idx / BKS, cc = idx % BKS;
                sA[idx] = r < L ? k[((ulong)(t0 + r) * H + hk) * K_DIM + ks + cc] : 0.0f;
            }
            barrier(CLK_LOCAL_MEM_FENCE);
            GDN_TILE_MMA(acc, TM, TN, sA, BKS, 0, sH + ks * BV, BV, 0, ty, TY, tx, TX, BKS);
        }
        const float gl = sG[L - 1];
        for (int a = 0; a < TM; a++) {
            const int i = ty + a * TY;
            for (int b = 0; b < TN; b++) {
                const int j   = tx + b * TX;
                float     val = 0.0f;
                if (i < L) {
                    const ulong off = ((ulong)(t0 + i) * HV + hv) * V_DIM + v0 + j;
                    val             = exp2(gl - sG[i]) * acc[a][b] + dvl[off];
                    dv2[off]        = val;
                }
                sD[(CH + i) * BV + j] = val;
            }
        }

        /* dH = exp2(gl) dH + [scale exp2(G) q ; -w]^T [do ; dv2] */
        const float decay = exp2(gl);
        for (int ks = 0; ks < K_DIM; ks += BKS) {
            barrier(CLK_LOCAL_MEM_FENCE);
            for (int idx = tid; idx < CH * BKS; idx += WG) {
                const int r = idx / BKS, cc = idx % BKS;
                float     qv = 0.0f, wv = 0.0f;
                if (r < L) {
                    qv = q[((ulong)(t0 + r) * H + hk) * K_DIM + ks + cc] * scale * exp2(sG[r]);
                    wv = -w[((ulong)(t0 + r) * HV + hv) * K_DIM + ks + cc];
                }
                sA[idx]            = qv;
                sA[CH * BKS + idx] = wv;
            }
            barrier(CLK_LOCAL_MEM_FENCE);
            float up[TMS][TN];
            GDN_TILE_ZERO(up, TMS, TN);
            GDN_TILE_MMA(up, TMS, TN, sA, BKS, 1, sD, BV, 0, ty, TY, tx, TX, 2 * CH);
            for (int a = 0; a < TMS; a++)
                for (int b = 0; b < TN; b++) {
                    const int idx = (ks + ty + a * TY) * BV + tx + b * TX;
                    sH[idx]       = fma(decay, sH[idx], up[a][b]);
                }
        }
    }
    barrier(CLK_LOCAL_MEM_FENCE);
    if (c_lo > c_first) { /* dH leaving chunk c_lo - 1: the next window starts there */
        const ulong hb = ((ulong)(c_lo - 1) * HV + hv) * K_DIM * V_DIM + v0;
        for (int idx = tid; idx < K_DIM * BV; idx += WG) {
            const int i = idx / BV, j = idx % BV;
            dh[hb + (ulong)i * V_DIM + j] = sH[idx];
        }
    } else if (write_dh0) {
        for (int idx = tid; idx < K_DIM * BV; idx += WG) {
            const int i = idx / BV, j = idx % BV;
            dh0[st_base + (ulong)i * V_DIM + j] = sH[idx];
        }
    }
}
