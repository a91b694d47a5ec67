/*
 * gated_delta/dqkwg_bwd.cl - backward stage B5: dq, dk (per value head), dw
 * and the output path's part of the gate gradient (ALGORITHM.md 2.3, fla
 * chunk_bwd_kernel_dqkwg).
 *
 * Math, per chunk (L rows, gl = G[L-1]) and value head hv, with h = h[c]
 * the state entering the chunk, dh = dh[c] the gradient of the state
 * leaving it, dv2 = dL/dv_new, and the columns of one K tile:
 *     ds  = do v_new^T                                   (64 x 64)
 *     dq  = scale diag(exp2 G) do h^T                    (inter-chunk part)
 *     dk  = diag(exp2(gl - G)) v_new dh^T                (inter-chunk part)
 *     dw  = -dv2 h^T
 *     ds  = scale ds o exp2(G_i - G_j)  for j <= i < L, else 0
 *     P   = ds o (q k^T),  j < i only
 *     dG_i = rows(dq o q)_i - [i < L-1] rows(dk o k)_i + rowsum(P)_i - colsum(P)_i
 *     dG[L-1] += exp2(gl) <h, dh> + sum_{i < L-1} rows(dk o k)_i
 *     dq += ds k;   dk += ds^T q
 * This is fla's dG = rows(dq o q - dk o k) (final dq, dk), dG[L-1] += dgl
 * with the terms that cancel exactly left out: the diagonal of ds and row
 * L-1's inter-chunk dk o k. In fp32 those cancellations lose everything
 * when the true dG is tiny (strong decay), so they are never formed.
 * dG is partial (this K tile's columns); stage B6 sums the K tiles. q, k
 * are the ones the chunk kernels read (L2-normalised when the op does that)
 * at q/k head hv / (HV/H); dq and dk are per value head.
 *
 * Shapes: q, k [T, H, K]; G [T, HV]; do, v_new, dv2 [T, HV, V];
 * h, dh [NT, HV, K, V]; dqh, dkh, dw [T, HV, K]; dGp [K/BK, T, HV].
 *
 * One work-group = one (K tile, chunk, value head): global (TY*TX * K/BK,
 * NT, HV), local (TY*TX, 1, 1). First q k^T of the K tile (register
 * micro-tile; q, k staged in local memory). The V loop stages do, v_new,
 * dv2 (64 x BVT) and h, dh (BK x BVT) in local memory and accumulates four
 * register micro-tiles per work-item (rows step TY, columns step TX): ds
 * 64/TY x 64/TX, dq, dk, dw 64/TY x BK/TX. Then ds goes to local memory for
 * the two intra-chunk products. Row and column sums are reduced through
 * local memory in a fixed order (deterministic).
 * Local memory: max(2*64*(BK+1), (3*64 + 2*BK)*(BVT+1), 64*65 + 64*(BK+1),
 * 64*(TX + TY) + TY*TX) + 64 floats.
 *
 * Tuning macros (set by dqkwg_plan in lib/ops/gated_delta/chunk_bwd.c from
 * the tuning space gated_delta/dqkwg; any work-group size, also below 64):
 *   K_DIM, V_DIM  head dims (multiples of 16, <= 256)
 *   BK            K tile: multiple of TX dividing K_DIM (16, 32 or 64;
 *                 default 64 or K_DIM)
 *   BVT           V tile of the inner loop: divides V_DIM (default 16)
 *   TY, TX        work-item grid (both divide 64; default 16 x 16)
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
#    define BK 64
#endif
#ifndef BVT
#    define BVT 16
#endif
#ifndef TY
#    define TY 16
#endif
#ifndef TX
#    define TX 16
#endif

#define CH  64
#define WG  (TY * TX)
#define TM  (CH / TY)
#define TNC (CH / TX)
#define TNK (BK / TX)
#define LDC (CH + 1)
#define LDK (BK + 1)
#define LDV (BVT + 1)
#define MAX2(a, b) ((a) > (b) ? (a) : (b))
#define XSZ MAX2(MAX2((3 * CH + 2 * BK) * LDV, CH * LDC + CH * LDK), CH * (TX + TY) + WG)

#if K_DIM % BK != 0 || V_DIM % BVT != 0 || BK % TX != 0 || CH % TY != 0 || CH % TX != 0
#    error "dqkwg_bwd.cl: illegal tile sizes"
#endif

__kernel __attribute__((reqd_work_group_size(WG, 1, 1))) void
gated_delta_dqkwg(__global const int4 *chunks, __global const float *q, __global const float *k,
                  __global const float *G, __global const float *do_,
                  __global const float *vnew, __global const float *h,
                  __global const float *dh, __global const float *dv2, __global float *dqh,
                  __global float *dkh, __global float *dw, __global float *dGp, int H, int HV,
                  int T, float scale)
{
    __local float sX[XSZ];
    __local float sG[CH];

    const int  tid = (int)get_local_id(0), tx = tid % TX, ty = tid / TX;
    const int  ik = (int)get_group_id(0), c = (int)get_group_id(1), hv = (int)get_group_id(2);
    const int  k0 = ik * BK;
    const int4 e  = chunks[c];
    const int  t0 = e.y, L = e.z;
    const int  hk = hv / (HV / H);
    const ulong st_base = ((ulong)c * HV + hv) * K_DIM * V_DIM + (ulong)k0 * V_DIM;

    for (int r = tid; r < CH; r += WG) /* WG may be below 64 */
        sG[r] = r < L ? G[(ulong)(t0 + r) * HV + hv] : 0.0f;

    /* q k^T of this K tile, and this work-item's q and k elements. */
    float qk[TM][TNC], qreg[TM][TNK], kreg[TM][TNK];
    GDN_TILE_ZERO(qk, TM, TNC);
    {
        __local float *sQ = sX, *sK = sX + CH * LDK;
        for (int idx = tid; idx < CH * BK; idx += WG) {
            const int r = idx / BK, cc = idx % BK;
            float     a = 0.0f, b = 0.0f;
            if (r < L) {
                const ulong off = ((ulong)(t0 + r) * H + hk) * K_DIM + k0 + cc;
                a               = q[off];
                b               = k[off];
            }
            sQ[r * LDK + cc] = a;
            sK[r * LDK + cc] = b;
        }
        barrier(CLK_LOCAL_MEM_FENCE);
        GDN_TILE_MMA(qk, TM, TNC, sQ, LDK, 0, sK, LDK, 1, ty, TY, tx, TX, BK);
        for (int a = 0; a < TM; a++)
            for (int b = 0; b < TNK; b++) {
                qreg[a][b] = sQ[(ty + a * TY) * LDK + tx + b * TX];
                kreg[a][b] = sK[(ty + a * TY) * LDK + tx + b * TX];
            }
    }

    float ds[TM][TNC], dq[TM][TNK], dk[TM][TNK], dwa[TM][TNK];
    float dgl = 0.0f;
    GDN_TILE_ZERO(ds, TM, TNC);
    GDN_TILE_ZERO(dq, TM, TNK);
    GDN_TILE_ZERO(dk, TM, TNK);
    GDN_TILE_ZERO(dwa, TM, TNK);
    {
        __local float *sDO = sX, *sVN = sX + CH * LDV, *sDV = sX + 2 * CH * LDV;
        __local float *sHt = sX + 3 * CH * LDV, *sDH = sX + (3 * CH + BK) * LDV;
        for (int v0 = 0; v0 < V_DIM; v0 += BVT) {
            barrier(CLK_LOCAL_MEM_FENCE);
            for (int idx = tid; idx < CH * BVT; idx += WG) {
                const int r = idx / BVT, cc = idx % BVT;
                float     a = 0.0f, b = 0.0f, d = 0.0f;
                if (r < L) {
                    const ulong off = ((ulong)(t0 + r) * HV + hv) * V_DIM + v0 + cc;
                    a               = do_[off];
                    b               = vnew[off];
                    d               = dv2[off];
                }
                sDO[r * LDV + cc] = a;
                sVN[r * LDV + cc] = b;
                sDV[r * LDV + cc] = d;
            }
            for (int idx = tid; idx < BK * BVT; idx += WG) {
                const int   r = idx / BVT, cc = idx % BVT;
                const ulong off = st_base + (ulong)r * V_DIM + v0 + cc;
                sHt[r * LDV + cc] = h[off];
                sDH[r * LDV + cc] = dh[off];
            }
            barrier(CLK_LOCAL_MEM_FENCE);
            GDN_TILE_MMA(ds, TM, TNC, sDO, LDV, 0, sVN, LDV, 1, ty, TY, tx, TX, BVT);
            GDN_TILE_MMA(dq, TM, TNK, sDO, LDV, 0, sHt, LDV, 1, ty, TY, tx, TX, BVT);
            GDN_TILE_MMA(dk, TM, TNK, sVN, LDV, 0, sDH, LDV, 1, ty, TY, tx, TX, BVT);
            GDN_TILE_MMA(dwa, TM, TNK, sDV, LDV, 0, sHt, LDV, 1, ty, TY, tx, TX, BVT);
            for (int idx = tid; idx < BK * BVT; idx += WG) {
                const int r = idx / BVT, cc = idx % BVT;
                dgl         = fma(sHt[r * LDV + cc], sDH[r * LDV + cc], dgl);
            }
        }
    }

    /* Inter-chunk parts and the gate terms that do not cancel. */
    const float gl = sG[L - 1];
    float       rowp[TM], colp[TNC];
    dgl *= exp2(gl);
    for (int b = 0; b < TNC; b++)
        colp[b] = 0.0f;
    for (int a = 0; a < TM; a++) {
        const int   i  = ty + a * TY;
        const bool  on = i < L;
        const float fq = on ? scale * exp2(sG[i]) : 0.0f;
        const float fk = on ? exp2(gl - sG[i]) : 0.0f;
        rowp[a]        = 0.0f;
        for (int b = 0; b < TNK; b++) {
            dq[a][b] *= fq;
            dk[a][b] *= fk;
            rowp[a] = fma(dq[a][b], qreg[a][b], rowp[a]);
            if (i < L - 1) {
                rowp[a] -= dk[a][b] * kreg[a][b];
                dgl = fma(dk[a][b], kreg[a][b], dgl);
            }
        }
        for (int b = 0; b < TNC; b++) {
            const int  j  = tx + b * TX;
            const bool in = j <= i && on;
            ds[a][b]      = in ? scale * ds[a][b] * exp2(in ? sG[i] - sG[j] : 0.0f) : 0.0f;
            if (j < i) {
                const float p = ds[a][b] * qk[a][b];
                rowp[a] += p;
                colp[b] += p;
            }
        }
    }

    /* Intra-chunk products: dq += ds k, dk += ds^T q. */
    __local float *sDS = sX, *sQK = sX + CH * LDC;
    barrier(CLK_LOCAL_MEM_FENCE); /* the V loop's tiles are dead */
    for (int a = 0; a < TM; a++)
        for (int b = 0; b < TNC; b++)
            sDS[(ty + a * TY) * LDC + tx + b * TX] = ds[a][b];
    for (int idx = tid; idx < CH * BK; idx += WG) {
        const int r = idx / BK, cc = idx % BK;
        sQK[r * LDK + cc] = r < L ? k[((ulong)(t0 + r) * H + hk) * K_DIM + k0 + cc] : 0.0f;
    }
    barrier(CLK_LOCAL_MEM_FENCE);
    GDN_TILE_MMA(dq, TM, TNK, sDS, LDC, 0, sQK, LDK, 0, ty, TY, tx, TX, CH);
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int idx = tid; idx < CH * BK; idx += WG) {
        const int r = idx / BK, cc = idx % BK;
        sQK[r * LDK + cc] = r < L ? q[((ulong)(t0 + r) * H + hk) * K_DIM + k0 + cc] : 0.0f;
    }
    barrier(CLK_LOCAL_MEM_FENCE);
    GDN_TILE_MMA(dk, TM, TNK, sDS, LDC, 1, sQK, LDK, 0, ty, TY, tx, TX, CH);

    /* Row sums over TX work-items, column sums over TY, dgl over all. */
    barrier(CLK_LOCAL_MEM_FENCE); /* sDS and sQK are dead */
    __local float *rrow = sX, *rcol = sX + CH * TX, *sdgl = sX + CH * (TX + TY);
    for (int a = 0; a < TM; a++)
        rrow[(ty + a * TY) * TX + tx] = rowp[a];
    for (int b = 0; b < TNC; b++)
        rcol[(tx + b * TX) * TY + ty] = colp[b];
    sdgl[tid] = dgl;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int r = tid; r < L; r += WG) {
        float s = 0.0f;
        for (int x = 0; x < TX; x++)
            s += rrow[r * TX + x];
        for (int y = 0; y < TY; y++)
            s -= rcol[r * TY + y];
        if (r == L - 1)
            for (int x = 0; x < WG; x++)
                s += sdgl[x];
        dGp[((ulong)ik * T + t0 + r) * HV + hv] = s;
    }
    for (int a = 0; a < TM; a++) {
        const int i = ty + a * TY;
        if (i < L)
            for (int b = 0; b < TNK; b++) {
                const ulong off = ((ulong)(t0 + i) * HV + hv) * K_DIM + k0 + tx + b * TX;
                dqh[off]        = dq[a][b];
                dkh[off]        = dk[a][b];
                dw[off]         = -dwa[a][b];
            }
    }
}
