/*
 * gated_delta/wy_bwd.cl - backward stage B6: the WY-representation backward
 * (ALGORITHM.md 2.3, fla prepare_wy_repr_bwd_kernel), with the K-tile sum of
 * the gate partials from B5 folded in.
 *
 * Math, per chunk (L rows) and value head hv, with Tm = Ai = (I + A)^-1
 * (unit lower), gamma = exp2(G), kbg = diag(beta gamma) k, vb = diag(beta) v,
 * dw from B5 and du = dv2 from B4:
 *     dT   = dw kbg^T + du vb^T
 *     dkbg = Tm^T dw:  dk += dkbg beta gamma; dbeta += rows(dkbg o k) gamma;
 *                      dG2 += rows(dkbg o kbg)
 *     dvb  = Tm^T du:  dv = dvb beta;         dbeta += rows(dvb o v)
 *     dA   = -(Tm^T strict_lower(dT) Tm^T) o exp2(G_i - G_j)  (j < i < L)
 *     dkb  = dA k:     dk += dkb beta + dA^T (diag(beta) k);  dbeta += rows(dkb o k)
 *     P    = dA o (beta_i k_i . k_j):  dG2 += rowsum(P) - colsum(P)
 *     dGsum = dG2 + sum over K tiles of dGp                 (input of B7)
 * k is the q/k head hv / (HV/H)'s (normalised) k; dk is added in place to
 * the per-value-head dk of B5.
 *
 * Shapes: k [T, H, K]; v [T, HV, V]; b, G, db, dGsum [T, HV]; Ai [T, HV, 64];
 * dw, dkh [T, HV, K]; dv2, dv [T, HV, V]; dGp [NK, T, HV].
 *
 * One work-group = one (chunk, value head): global (TY*TX, NT, HV), local
 * (TY*TX, 1, 1). Ai and dT/dA (64 x 64) stay in local memory; k, dw, v and
 * du are streamed in BK / BV column tiles. Every work-item owns the same
 * rows (ty + a*TY) in every product, so its per-row partial sums of dbeta
 * and dG2 are reduced over TX work-items at the end (fixed order).
 * Local memory: 2*64*65 + max(3*64*(BK+1), 3*64*(BV+1), 64*(2*TX+TY)) + 3*64
 * floats.
 *
 * Tuning macros (set by wyb_plan in lib/ops/gated_delta/chunk_bwd.c from the
 * tuning space gated_delta/wy_bwd; any work-group size, also below 64):
 *   K_DIM, V_DIM  head dims (multiples of 16, <= 256)
 *   BK, BV        column tiles: multiples of TX dividing K_DIM / V_DIM
 *                 (default 16)
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
#    define BK 16
#endif
#ifndef BV
#    define BV 16
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
#define TNV (BV / TX)
#define LDC (CH + 1)
#define LDK (BK + 1)
#define LDV (BV + 1)
#define MAX2(a, b) ((a) > (b) ? (a) : (b))

/* T_IN_GLOBAL = 1 keeps the 64 x 65 dT/dA tile in a per-work-group slice of
 * global scratch instead of local memory, for devices with the OpenCL 1.2
 * minimum of 32 KiB of local memory (Ai and dT together need 33 KiB). The
 * barriers then also fence global memory. Same arithmetic, same order. */
#ifndef T_IN_GLOBAL
#    define T_IN_GLOBAL 0
#endif
#if T_IN_GLOBAL
#    define WY_FENCE (CLK_LOCAL_MEM_FENCE | CLK_GLOBAL_MEM_FENCE)
#else
#    define WY_FENCE CLK_LOCAL_MEM_FENCE
#endif
#define XSZ MAX2(MAX2(3 * CH * LDK, 3 * CH * LDV), CH * (2 * TX + TY))

#if K_DIM % BK != 0 || V_DIM % BV != 0 || BK % TX != 0 || BV % TX != 0 || CH % TY != 0 ||     \
    CH % TX != 0
#    error "wy_bwd.cl: illegal tile sizes"
#endif

__kernel __attribute__((reqd_work_group_size(WG, 1, 1))) void
gated_delta_wy_bwd(__global const int4 *chunks, __global const float *k,
                   __global const float *v, __global const float *beta,
                   __global const float *G, __global const float *Ai,
                   __global const float *dw, __global const float *du,
                   __global float *dkh, __global float *dv, __global float *db,
                   __global const float *dGp, __global float *dGs, int H, int HV, int T, int NK,
                   int write_dv, __global float *tscratch)
{
    __local float sAi[CH * LDC];
#if T_IN_GLOBAL
    __global float *sT =
        tscratch + ((ulong)get_group_id(2) * get_num_groups(1) + get_group_id(1)) * (CH * LDC);
#else
    __local float sT[CH * LDC];
#endif
    __local float sX[XSZ];
    __local float sB[CH], sG[CH], sGam[CH];

    const int  tid = (int)get_local_id(0), tx = tid % TX, ty = tid / TX;
    const int  c = (int)get_group_id(1), hv = (int)get_group_id(2);
    const int4 e  = chunks[c];
    const int  t0 = e.y, L = e.z;
    const int  hk = hv / (HV / H);

    for (int r = tid; r < CH; r += WG) { /* WG may be below 64 */
        const bool  on = r < L;
        const float g  = on ? G[(ulong)(t0 + r) * HV + hv] : 0.0f;
        sG[r]          = g;
        sB[r]          = on ? beta[(ulong)(t0 + r) * HV + hv] : 0.0f;
        sGam[r]        = on ? exp2(g) : 0.0f;
    }
    for (int idx = tid; idx < CH * CH; idx += WG) {
        const int i = idx / CH, j = idx % CH;
        sAi[i * LDC + j] = (i < L && j <= i) ? Ai[((ulong)(t0 + i) * HV + hv) * CH + j] : 0.0f;
    }

    float dT[TM][TNC];
    float dbp[TM], dgp[TM];
    GDN_TILE_ZERO(dT, TM, TNC);
    for (int a = 0; a < TM; a++)
        dbp[a] = dgp[a] = 0.0f;

    /* Phase 1: K tiles of dw and kbg. */
    {
        __local float *sK = sX, *sKb = sX + CH * LDK, *sDW = sX + 2 * CH * LDK;
        for (int k0 = 0; k0 < K_DIM; k0 += BK) {
            barrier(WY_FENCE);
            for (int idx = tid; idx < CH * BK; idx += WG) {
                const int r = idx / BK, cc = idx % BK;
                float     kv = 0.0f, dwv = 0.0f;
                if (r < L) {
                    kv  = k[((ulong)(t0 + r) * H + hk) * K_DIM + k0 + cc];
                    dwv = dw[((ulong)(t0 + r) * HV + hv) * K_DIM + k0 + cc];
                }
                sK[r * LDK + cc]  = kv;
                sKb[r * LDK + cc] = kv * sB[r] * sGam[r];
                sDW[r * LDK + cc] = dwv;
            }
            barrier(WY_FENCE);
            GDN_TILE_MMA(dT, TM, TNC, sDW, LDK, 0, sKb, LDK, 1, ty, TY, tx, TX, BK);
            float acc[TM][TNK];
            GDN_TILE_ZERO(acc, TM, TNK);
            GDN_TILE_MMA(acc, TM, TNK, sAi, LDC, 1, sDW, LDK, 0, ty, TY, tx, TX, CH);
            for (int a = 0; a < TM; a++) {
                const int i = ty + a * TY;
                for (int b = 0; b < TNK; b++) {
                    const int cc = tx + b * TX;
                    dbp[a] += acc[a][b] * sK[i * LDK + cc] * sGam[i];
                    dgp[a] += acc[a][b] * sKb[i * LDK + cc];
                    if (i < L) {
                        const ulong off = ((ulong)(t0 + i) * HV + hv) * K_DIM + k0 + cc;
                        dkh[off] += acc[a][b] * sB[i] * sGam[i];
                    }
                }
            }
        }
    }

    /* Phase 2: V tiles of du and vb. */
    {
        __local float *sV = sX, *sVb = sX + CH * LDV, *sDU = sX + 2 * CH * LDV;
        for (int v0 = 0; v0 < V_DIM; v0 += BV) {
            barrier(WY_FENCE);
            for (int idx = tid; idx < CH * BV; idx += WG) {
                const int r = idx / BV, cc = idx % BV;
                float     vv = 0.0f, duv = 0.0f;
                if (r < L) {
                    const ulong off = ((ulong)(t0 + r) * HV + hv) * V_DIM + v0 + cc;
                    vv              = v[off];
                    duv             = du[off];
                }
                sV[r * LDV + cc]  = vv;
                sVb[r * LDV + cc] = vv * sB[r];
                sDU[r * LDV + cc] = duv;
            }
            barrier(WY_FENCE);
            GDN_TILE_MMA(dT, TM, TNC, sDU, LDV, 0, sVb, LDV, 1, ty, TY, tx, TX, BV);
            float acc[TM][TNV];
            GDN_TILE_ZERO(acc, TM, TNV);
            GDN_TILE_MMA(acc, TM, TNV, sAi, LDC, 1, sDU, LDV, 0, ty, TY, tx, TX, CH);
            for (int a = 0; a < TM; a++) {
                const int i = ty + a * TY;
                for (int b = 0; b < TNV; b++) {
                    const int cc = tx + b * TX;
                    dbp[a] += acc[a][b] * sV[i * LDV + cc];
                    if (write_dv && i < L)
                        dv[((ulong)(t0 + i) * HV + hv) * V_DIM + v0 + cc] = acc[a][b] * sB[i];
                }
            }
        }
    }

    /* Phase 3: dA = -(Tm^T strict_lower(dT) Tm^T) o Gamma. */
    for (int a = 0; a < TM; a++) {
        const int i = ty + a * TY;
        for (int b = 0; b < TNC; b++) {
            const int j      = tx + b * TX;
            sT[i * LDC + j] = (j < i && i < L) ? dT[a][b] : 0.0f;
        }
    }
    barrier(WY_FENCE);
    {
        float x[TM][TNC];
        GDN_TILE_ZERO(x, TM, TNC);
        GDN_TILE_MMA(x, TM, TNC, sT, LDC, 0, sAi, LDC, 1, ty, TY, tx, TX, CH);
        barrier(WY_FENCE);
        for (int a = 0; a < TM; a++)
            for (int b = 0; b < TNC; b++)
                sT[(ty + a * TY) * LDC + tx + b * TX] = x[a][b];
        barrier(WY_FENCE);
        GDN_TILE_ZERO(x, TM, TNC);
        GDN_TILE_MMA(x, TM, TNC, sAi, LDC, 1, sT, LDC, 0, ty, TY, tx, TX, CH);
        barrier(WY_FENCE);
        for (int a = 0; a < TM; a++) {
            const int i = ty + a * TY;
            for (int b = 0; b < TNC; b++) {
                const int  j  = tx + b * TX;
                const bool on = j < i && i < L;
                sT[i * LDC + j] = on ? -x[a][b] * exp2(on ? sG[i] - sG[j] : 0.0f) : 0.0f;
            }
        }
    }

    /* Phase 4: K tiles again: dk += dA k beta + dA^T (beta k), and k k^T. */
    float kk[TM][TNC];
    GDN_TILE_ZERO(kk, TM, TNC);
    {
        __local float *sK = sX, *sKb = sX + CH * LDK;
        for (int k0 = 0; k0 < K_DIM; k0 += BK) {
            barrier(WY_FENCE);
            for (int idx = tid; idx < CH * BK; idx += WG) {
                const int r  = idx / BK, cc = idx % BK;
                const float kv = r < L ? k[((ulong)(t0 + r) * H + hk) * K_DIM + k0 + cc] : 0.0f;
                sK[r * LDK + cc]  = kv;
                sKb[r * LDK + cc] = kv * sB[r];
            }
            barrier(WY_FENCE);
            GDN_TILE_MMA(kk, TM, TNC, sK, LDK, 0, sK, LDK, 1, ty, TY, tx, TX, BK);
            float dkb[TM][TNK], dkt[TM][TNK];
            GDN_TILE_ZERO(dkb, TM, TNK);
            GDN_TILE_ZERO(dkt, TM, TNK);
            GDN_TILE_MMA(dkb, TM, TNK, sT, LDC, 0, sK, LDK, 0, ty, TY, tx, TX, CH);
            GDN_TILE_MMA(dkt, TM, TNK, sT, LDC, 1, sKb, LDK, 0, ty, TY, tx, TX, CH);
            for (int a = 0; a < TM; a++) {
                const int i = ty + a * TY;
                for (int b = 0; b < TNK; b++) {
                    const int cc = tx + b * TX;
                    dbp[a] += dkb[a][b] * sK[i * LDK + cc];
                    if (i < L) {
                        const ulong off = ((ulong)(t0 + i) * HV + hv) * K_DIM + k0 + cc;
                        dkh[off] += fma(dkb[a][b], sB[i], dkt[a][b]);
                    }
                }
            }
        }
    }

    /* Phase 5: P = dA o (beta_i k_i . k_j); row and column sums; reductions. */
    float colp[TNC];
    for (int b = 0; b < TNC; b++)
        colp[b] = 0.0f;
    for (int a = 0; a < TM; a++) {
        const int i = ty + a * TY;
        for (int b = 0; b < TNC; b++) {
            const float p = sT[i * LDC + tx + b * TX] * sB[i] * kk[a][b];
            dgp[a] += p;
            colp[b] += p;
        }
    }
    barrier(WY_FENCE); /* tiles are dead */
    {
        __local float *rdb = sX, *rdg = sX + CH * TX, *rcol = sX + 2 * CH * TX;
        for (int a = 0; a < TM; a++) {
            rdb[(ty + a * TY) * TX + tx] = dbp[a];
            rdg[(ty + a * TY) * TX + tx] = dgp[a];
        }
        for (int b = 0; b < TNC; b++)
            rcol[(tx + b * TX) * TY + ty] = colp[b];
        barrier(WY_FENCE);
        for (int r = tid; r < L; r += WG) {
            const ulong o = (ulong)(t0 + r) * HV + hv;
            float       sb = 0.0f, sg = 0.0f;
            for (int x = 0; x < TX; x++) {
                sb += rdb[r * TX + x];
                sg += rdg[r * TX + x];
            }
            for (int y = 0; y < TY; y++)
                sg -= rcol[r * TY + y];
            for (int x = 0; x < NK; x++)
                sg += dGp[(ulong)x * T * HV + o];
            db[o]  = sb;
            dGs[o] = sg;
        }
    }
}
