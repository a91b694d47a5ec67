/*
 * mamba2/dbc_bwd.cl - backward of the Mamba2 SSD scan with respect to B and
 * C (mamba_ssm ssd_chunk_state.py _chunk_state_bwd_db and ssd_chunk_scan.py
 * _chunk_scan_bwd_dC), per head, with the inter-chunk output term of the
 * decay gradient.
 *
 * Math, per chunk c (rows r < L), head h (group g = h / (H / G)), with
 * h_in = hstates[c] (state entering c), dS = dstates[c] = dL/dS_c and
 * dCB_h from dcb_bwd.cl:
 *   o_r   = exp2(cs_r) dy_r h_in                                      [DS]
 *   dC_r  = o_r + sum_{j <= r} dCB_h[r, j] B_j
 *   dB_r  = exp2(cs_last - cs_r) dt_r dS^T x_r + sum_{i >= r} dCB_h[i, r] C_i
 *   po_r  = o_r . C_r       (= dy_r . y_off_r: dL/dcs_r of the inter-chunk
 *                            output term), partial over the DS tile: slot
 *                            spo + nt of part[slot][T][H]
 *   ppass[c, h, nt] = exp2(cs_last) sum_{p, n in tile} dS h_in
 *                           (dL/dcs_last through the state passing,
 *                            h_in[c+1] = exp2(cs_last) h_in[c] + S_c;
 *                            written by the row tile rt = 0 only)
 * Outputs go to dB/dC[(t * OH + oh) * DS + n], oh = h when OH == H (per-head
 * scratch, summed over the group by reduce_bwd.cl) else g (OH == G, used
 * when every group has one head).
 *
 * Shapes (F32): x, dy [T, H, P]; B, C [T, G, DS]; dt, cs [T, H]; hstates,
 * dstates [NT, H, P, DS]; dcb [NT, H, CH, CH]; part [slots, T, H]; ppass
 * [NT, H, nNt]; chunks [NT] int4. store_dB / store_dC = 0 skip the stores (partials only).
 *
 * One work-group = one (64-row tile rt, BN-column tile nt of DS, chunk,
 * head): 256 work-items as 16 x 16 with strided 4 x (BN/16) micro-tiles.
 * Phase A stages dy, x (64 x BK) and h_in, dS (BK x BN) slices of P;
 * phase B loops over the dCB tiles (rt, jt <= rt) with B rows and
 * (it >= rt, rt) with C rows. Local memory max(2 64 (BK+1) + 2 BK BN,
 * 64 65 + 64 BN) + 2 CH floats (34.5 KiB at BK = 32, BN = 64, CH = 256).
 * Global (256 (CH/64) nNt NT, H), nNt = ceil(DS/BN), group index 0 =
 * chunk * (CH/64) nNt + tile; local (256, 1).
 *
 * Tuning macros (#ifndef defaults; set by the dbc plan in
 * lib/ops/mamba2/plan.c):
 *   CH    chunk size: 64, 128 or 256 (default 64)
 *   BN    DS tile: 16, 32 or 64 (default 64)
 *   BK    P slice: 16 or 32 (default 32)
 */
#include "gdn_common.clh"
#include "gdn_mamba2_common.clh"
#include "gdn_tile.clh"

#ifndef CH
#define CH 64
#endif
#ifndef BN
#define BN 64
#endif
#ifndef BK
#define BK 32
#endif
#define NTL (CH / M2_RT)
#define TN  (BN / 16)
#define LDA (BK + 1)
#define LDW (M2_RT + 1)
#define LDR 17
#define S1  (2 * M2_RT * LDA + 2 * BK * BN)
#define S2  (M2_RT * LDW + M2_RT * BN)
#define SCR (S1 > S2 ? S1 : S2)

#if (BN % 16) != 0 || (CH % M2_RT) != 0 || CH > M2_WG
#error "dbc_bwd: inconsistent tile macros"
#endif

__kernel __attribute__((reqd_work_group_size(M2_WG, 1, 1)))
void mamba2_dbc_bwd(__global const float *x, __global const float *dy, __global const float *B,
                    __global const float *C, __global const float *dt,
                    __global const float *cs, __global const float *hstates,
                    __global const float *dstates, __global const float *dcb,
                    __global const int4 *chunks, __global float *dB, __global float *dC,
                    __global float *part, __global float *ppass, int T, int H, int G, int P,
                    int DS, int nNt, int OH,
                    int store_dB, int store_dC, int spo)
{
    __local float  LM[SCR];
    __local float  CSL[CH], DTL[CH];
    __local float *DYL = LM, *XL = LM + M2_RT * LDA;
    __local float *HL = LM + 2 * M2_RT * LDA, *SL = LM + 2 * M2_RT * LDA + BK * BN;
    __local float *DL = LM, *ML = LM + M2_RT * LDW;
    __local float *RO = LM;
    const int      lid = (int)get_local_id(0);
    const int      tx = lid & 15, ty = lid >> 4;
    const int      c = (int)get_group_id(0) / (NTL * nNt);
    const int      q = (int)get_group_id(0) - c * (NTL * nNt);
    const int      rt = q / nNt, nt = q - (q / nNt) * nNt, n0 = nt * BN;
    const int      h = (int)get_group_id(1);
    const int      g = h / (H / G);
    const int      oh = OH == H ? h : g;
    const int4     ch = chunks[c];
    const int      first = ch.y, L = ch.z;
    const int      r0 = rt * M2_RT;
    const ulong    sbase = ((ulong)c * (ulong)H + (ulong)h) * (ulong)P * (ulong)DS;
    const ulong    dbase = ((ulong)c * (ulong)H + (ulong)h) * (ulong)CH * (ulong)CH;
    float          accC[M2_TM][TN], accB[M2_TM][TN];
    float          pacc = 0.0f; /* this work-item's part of sum dS h_in */

    if (r0 >= L)
        return;
    if (lid < CH) {
        const bool  ok = lid < L;
        const ulong at = (ulong)(first + (ok ? lid : 0)) * (ulong)H + (ulong)h;
        CSL[lid]       = ok ? cs[at] : 0.0f;
        DTL[lid]       = ok ? dt[at] : 0.0f;
    }
    GDN_TILE_ZERO(accC, M2_TM, TN);
    GDN_TILE_ZERO(accB, M2_TM, TN);

    /* Phase A: dy h_in and x dS over P slices. */
    for (int p0 = 0; p0 < P; p0 += BK) {
        barrier(CLK_LOCAL_MEM_FENCE);
        for (int e = lid; e < M2_RT * BK; e += M2_WG) {
            const int r = e / BK, d = e - (e / BK) * BK;
            float     a = 0.0f, b = 0.0f;
            if (r0 + r < L && p0 + d < P) {
                const ulong at =
                    ((ulong)(first + r0 + r) * (ulong)H + (ulong)h) * (ulong)P + (ulong)(p0 + d);
                a = dy[at];
                b = x[at];
            }
            DYL[r * LDA + d] = a;
            XL[r * LDA + d]  = b;
        }
        for (int e = lid; e < BK * BN; e += M2_WG) {
            const int d = e / BN, n = e - (e / BN) * BN;
            float     a = 0.0f, b = 0.0f;
            if (p0 + d < P && n0 + n < DS) {
                const ulong at = sbase + (ulong)(p0 + d) * DS + (ulong)(n0 + n);
                a              = hstates[at];
                b              = dstates[at];
                pacc           = fma(a, b, pacc);
            }
            HL[e] = a;
            SL[e] = b;
        }
        barrier(CLK_LOCAL_MEM_FENCE);
        GDN_TILE_MMA(accC, M2_TM, TN, DYL, LDA, 0, HL, BN, 0, ty, 16, tx, 16, BK);
        GDN_TILE_MMA(accB, M2_TM, TN, XL, LDA, 0, SL, BN, 0, ty, 16, tx, 16, BK);
    }

    /* The state-passing part of dL/dcs_last (row tile 0 only: uniform). */
    if (rt == 0) {
        barrier(CLK_LOCAL_MEM_FENCE);
        LM[lid] = pacc;
        for (int s = M2_WG / 2; s > 0; s >>= 1) {
            barrier(CLK_LOCAL_MEM_FENCE);
            if (lid < s)
                LM[lid] += LM[lid + s];
        }
        barrier(CLK_LOCAL_MEM_FENCE);
        if (lid == 0)
            ppass[((ulong)c * (ulong)H + (ulong)h) * (ulong)nNt + (ulong)nt] =
                exp2(CSL[L - 1]) * LM[0];
    }

    /* Decays; the inter-chunk output part of dcs. */
    {
        const float cl = CSL[L - 1];
        float       so[M2_TM];
        for (int a = 0; a < M2_TM; a++) {
            const int   r   = r0 + ty + 16 * a;
            const bool  ok  = r < L;
            const float eo  = exp2(select(0.0f, CSL[r], (int)ok));
            const float eb  = exp2(select(0.0f, cl - CSL[r], (int)ok)) * DTL[r];
            so[a]           = 0.0f;
            for (int b = 0; b < TN; b++) {
                const int n = n0 + tx + 16 * b;
                accC[a][b] *= eo;
                accB[a][b] *= eb;
                if (ok && n < DS)
                    so[a] = fma(accC[a][b],
                                C[((ulong)(first + r) * (ulong)G + (ulong)g) * (ulong)DS +
                                  (ulong)n],
                                so[a]);
            }
        }
        barrier(CLK_LOCAL_MEM_FENCE);
        for (int a = 0; a < M2_TM; a++)
            RO[(ty + 16 * a) * LDR + tx] = so[a];
        barrier(CLK_LOCAL_MEM_FENCE);
        if (lid < M2_RT) {
            const int r = r0 + lid;
            float     s = 0.0f;
            for (int k = 0; k < 16; k++)
                s += RO[lid * LDR + k];
            if (r < L)
                part[((ulong)(spo + nt) * (ulong)T + (ulong)(first + r)) * (ulong)H + (ulong)h] =
                    s;
        }
    }

    /* Phase B1: dC += dCB[r, j] B_j over column tiles jt <= rt. */
    for (int j0 = 0; j0 <= r0; j0 += M2_RT) {
        barrier(CLK_LOCAL_MEM_FENCE);
        for (int e = lid; e < M2_RT * M2_RT; e += M2_WG) {
            const int r = e / M2_RT, s = e - (e / M2_RT) * M2_RT;
            DL[r * LDW + s] = dcb[dbase + (ulong)(r0 + r) * CH + (ulong)(j0 + s)];
        }
        for (int e = lid; e < M2_RT * BN; e += M2_WG) {
            const int r = e / BN, n = e - (e / BN) * BN;
            float     v = 0.0f;
            if (j0 + r < L && n0 + n < DS)
                v = B[((ulong)(first + j0 + r) * (ulong)G + (ulong)g) * (ulong)DS +
                      (ulong)(n0 + n)];
            ML[e] = v;
        }
        barrier(CLK_LOCAL_MEM_FENCE);
        GDN_TILE_MMA(accC, M2_TM, TN, DL, LDW, 0, ML, BN, 0, ty, 16, tx, 16, M2_RT);
    }
    /* Phase B2: dB += dCB[i, r]^T C_i over row tiles it >= rt inside L. */
    for (int i0 = r0; i0 < L; i0 += M2_RT) {
        barrier(CLK_LOCAL_MEM_FENCE);
        for (int e = lid; e < M2_RT * M2_RT; e += M2_WG) {
            const int r = e / M2_RT, s = e - (e / M2_RT) * M2_RT;
            DL[r * LDW + s] = dcb[dbase + (ulong)(i0 + r) * CH + (ulong)(r0 + s)];
        }
        for (int e = lid; e < M2_RT * BN; e += M2_WG) {
            const int r = e / BN, n = e - (e / BN) * BN;
            float     v = 0.0f;
            if (i0 + r < L && n0 + n < DS)
                v = C[((ulong)(first + i0 + r) * (ulong)G + (ulong)g) * (ulong)DS +
                      (ulong)(n0 + n)];
            ML[e] = v;
        }
        barrier(CLK_LOCAL_MEM_FENCE);
        GDN_TILE_MMA(accB, M2_TM, TN, DL, LDW, 1, ML, BN, 0, ty, 16, tx, 16, M2_RT);
    }

    for (int a = 0; a < M2_TM; a++) {
        const int r = r0 + ty + 16 * a;
        if (r < L)
            for (int b = 0; b < TN; b++) {
                const int n = n0 + tx + 16 * b;
                if (n < DS) {
                    const ulong at =
                        ((ulong)(first + r) * (ulong)OH + (ulong)oh) * (ulong)DS + (ulong)n;
                    if (store_dC)
                        dC[at] = accC[a][b];
                    if (store_dB)
                        dB[at] = accB[a][b];
                }
            }
    }
}
