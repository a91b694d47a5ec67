/*
 * mamba2/dx_bwd.cl - backward of the Mamba2 SSD scan with respect to x
 * (mamba_ssm ssd_combined.py _chunk_scan_chunk_state_bwd_dx), with the
 * per-token partial sums of the dt, decay and D gradients.
 *
 * Math, per chunk c (rows i, j < L), head h (group g = h / (H / G)), with
 * dS = dstates[c] = dL/dS_c (state_passing_bwd.cl) and W_ij =
 * CB_ij exp2(cs_i - cs_j) for j <= i (0 otherwise, selected before exp2):
 *   a_j   = sum_{i >= j} W_ij dy_i                (intra-chunk)   [P]
 *   s_j   = exp2(cs_last - cs_j) dS B_j           (through S_c)   [P]
 *   dx_j  = dt_j (a_j + s_j) + D_h dy_j
 *   px_j  = x_j . (a_j + s_j)     (dL/d dt_j through dt_j x_j)
 *   pq_j  = dt_j (x_j . s_j)      (= Q_j: dcs_j -= Q_j, dcs_last += Q_j)
 *   pd_j  = dy_j . x_j            (dL/dD_h per token)
 * px, pq, pd are partial over the P tile: slots spx + pt, spq + pt,
 * spd + pt of part[slot][T][H] (summed in fixed order by dt_bwd.cl).
 *
 * Shapes (F32): x, dy, dx [T, H, P]; B [T, G, DS]; dt, cs [T, H];
 * CB [NT, G, CH, CH]; dstates [NT, H, P, DS]; D [H]; part [slots, T, H];
 * chunks [NT] int4. store_dx = 0 skips writing dx (partials only).
 *
 * One work-group = one (64-row tile jt, BP-column tile pt of P, chunk,
 * head): 256 work-items as 16 x 16 with strided 4 x (BP/16) micro-tiles.
 * Phase 1 loops over the row tiles it >= jt inside L, staging W (64 x 64)
 * and dy (64 x BP); phase 2 stages B (64 x BK) and dS^T (BK x BP) slices of
 * DS. Local memory max(64 65 + 64 BP, 64 (BK + 1) + BK BP, 3 64 17) + 2 CH
 * floats (34 KiB at BP = 64, CH = 256). Global (256 (CH/64) nPt NT, H),
 * nPt = ceil(P/BP), group index 0 = chunk * (CH/64) nPt + tile; local
 * (256, 1); row tiles past L return at once.
 *
 * Tuning macros (#ifndef defaults; set by the dx plan in
 * lib/ops/mamba2/plan.c):
 *   CH    chunk size: 64, 128 or 256 (default 64)
 *   BP    P tile: 16, 32 or 64 (default 64)
 *   BK    DS slice: 16 or 32 (default 32)
 */
#include "gdn_common.clh"
#include "gdn_mamba2_common.clh"
#include "gdn_tile.clh"

#ifndef CH
#define CH 64
#endif
#ifndef BP
#define BP 64
#endif
#ifndef BK
#define BK 32
#endif
#define NTL  (CH / M2_RT)
#define TP   (BP / 16)
#define LDW  (M2_RT + 1)
#define LDB  (BK + 1)
#define LDR  17
#define S1   (M2_RT * LDW + M2_RT * BP)
#define S2   (M2_RT * LDB + BK * BP)
#define S3   (3 * M2_RT * LDR)
#define S12  (S1 > S2 ? S1 : S2)
#define SCR  (S12 > S3 ? S12 : S3)

#if (BP % 16) != 0 || (CH % M2_RT) != 0 || CH > M2_WG
#error "dx_bwd: inconsistent tile macros"
#endif

__kernel __attribute__((reqd_work_group_size(M2_WG, 1, 1)))
void mamba2_dx_bwd(__global const float *x, __global const float *dy, __global const float *B,
                   __global const float *dt, __global const float *cs,
                   __global const float *CB, __global const float *dstates,
                   __global const float *D, __global const int4 *chunks, __global float *dx,
                   __global float *part, int T, int H, int G, int P, int DS, int nPt, int has_D,
                   int store_dx, int spx, int spq, int spd)
{
    __local float  LM[SCR];
    __local float  CSL[CH], DTL[CH];
    __local float *WL = LM, *DYL = LM + M2_RT * LDW;
    __local float *BL = LM, *SL = LM + M2_RT * LDB;
    __local float *R0 = LM, *R1 = LM + M2_RT * LDR, *R2 = LM + 2 * M2_RT * LDR;
    const int      lid = (int)get_local_id(0);
    const int      tx = lid & 15, ty = lid >> 4;
    const int      c = (int)get_group_id(0) / (NTL * nPt);
    const int      q = (int)get_group_id(0) - c * (NTL * nPt);
    const int      jt = q / nPt, pt = q - (q / nPt) * nPt, p0 = pt * BP;
    const int      h = (int)get_group_id(1);
    const int      g = h / (H / G);
    const int4     ch = chunks[c];
    const int      first = ch.y, L = ch.z;
    const int      j0 = jt * M2_RT;
    const ulong    sbase = ((ulong)c * (ulong)H + (ulong)h) * (ulong)P * (ulong)DS;
    const ulong    cbase = ((ulong)c * (ulong)G + (ulong)g) * (ulong)CH * (ulong)CH;
    float          acc1[M2_TM][TP], acc2[M2_TM][TP];

    if (j0 >= L)
        return;
    if (lid < CH) {
        const bool  ok = lid < L;
        const ulong at = (ulong)(first + (ok ? lid : 0)) * (ulong)H + (ulong)h;
        CSL[lid]       = ok ? cs[at] : 0.0f;
        DTL[lid]       = ok ? dt[at] : 0.0f;
    }
    GDN_TILE_ZERO(acc1, M2_TM, TP);
    GDN_TILE_ZERO(acc2, M2_TM, TP);

    /* Phase 1: a = W^T dy over the row tiles it >= jt. */
    for (int i0 = j0; i0 < L; i0 += M2_RT) {
        barrier(CLK_LOCAL_MEM_FENCE);
        for (int e = lid; e < M2_RT * M2_RT; e += M2_WG) {
            const int   r = e / M2_RT, s = e - (e / M2_RT) * M2_RT;
            const int   i = i0 + r, j = j0 + s;
            const bool  m = j <= i && i < L;
            const float ex = select(0.0f, CSL[i] - CSL[j], (int)m);
            WL[r * LDW + s] = m ? CB[cbase + (ulong)i * CH + (ulong)j] * exp2(ex) : 0.0f;
        }
        for (int e = lid; e < M2_RT * BP; e += M2_WG) {
            const int r = e / BP, p = e - (e / BP) * BP;
            float     v = 0.0f;
            if (i0 + r < L && p0 + p < P)
                v = dy[((ulong)(first + i0 + r) * (ulong)H + (ulong)h) * (ulong)P +
                       (ulong)(p0 + p)];
            DYL[e] = v;
        }
        barrier(CLK_LOCAL_MEM_FENCE);
        GDN_TILE_MMA(acc1, M2_TM, TP, WL, LDW, 1, DYL, BP, 0, ty, 16, tx, 16, M2_RT);
    }

    /* Phase 2: s = B dS^T over DS slices, then the decay to the chunk end. */
    for (int n0 = 0; n0 < DS; n0 += BK) {
        barrier(CLK_LOCAL_MEM_FENCE);
        for (int e = lid; e < M2_RT * BK; e += M2_WG) {
            const int r = e / BK, d = e - (e / BK) * BK;
            float     v = 0.0f;
            if (j0 + r < L && n0 + d < DS)
                v = B[((ulong)(first + j0 + r) * (ulong)G + (ulong)g) * (ulong)DS +
                      (ulong)(n0 + d)];
            BL[r * LDB + d] = v;
        }
        for (int e = lid; e < BK * BP; e += M2_WG) {
            const int p = e / BK, d = e - (e / BK) * BK;
            float     v = 0.0f;
            if (p0 + p < P && n0 + d < DS)
                v = dstates[sbase + (ulong)(p0 + p) * DS + (ulong)(n0 + d)];
            SL[d * BP + p] = v;
        }
        barrier(CLK_LOCAL_MEM_FENCE);
        GDN_TILE_MMA(acc2, M2_TM, TP, BL, LDB, 0, SL, BP, 0, ty, 16, tx, 16, BK);
    }

    {
        const float cl = CSL[L - 1];
        const float Dh = has_D ? D[h] : 0.0f;
        float       sx[M2_TM], sq[M2_TM], sd[M2_TM];
        for (int a = 0; a < M2_TM; a++) {
            const int   j   = j0 + ty + 16 * a;
            const bool  ok  = j < L;
            const float dec = exp2(select(0.0f, cl - CSL[j], (int)ok));
            sx[a] = sq[a] = sd[a] = 0.0f;
            for (int b = 0; b < TP; b++) {
                const int p = p0 + tx + 16 * b;
                if (ok && p < P) {
                    const ulong at =
                        ((ulong)(first + j) * (ulong)H + (ulong)h) * (ulong)P + (ulong)p;
                    const float xv = x[at], dyv = dy[at];
                    const float s  = acc2[a][b] * dec;
                    const float br = acc1[a][b] + s;
                    if (store_dx)
                        dx[at] = fma(DTL[j], br, Dh * dyv);
                    sx[a] = fma(xv, br, sx[a]);
                    sq[a] = fma(xv, s, sq[a]);
                    sd[a] = fma(dyv, xv, sd[a]);
                }
            }
        }
        barrier(CLK_LOCAL_MEM_FENCE);
        for (int a = 0; a < M2_TM; a++) {
            R0[(ty + 16 * a) * LDR + tx] = sx[a];
            R1[(ty + 16 * a) * LDR + tx] = sq[a];
            R2[(ty + 16 * a) * LDR + tx] = sd[a];
        }
        barrier(CLK_LOCAL_MEM_FENCE);
        if (lid < M2_RT) {
            const int j = j0 + lid;
            float     s0 = 0.0f, s1 = 0.0f, s2 = 0.0f;
            for (int k = 0; k < 16; k++) {
                s0 += R0[lid * LDR + k];
                s1 += R1[lid * LDR + k];
                s2 += R2[lid * LDR + k];
            }
            if (j < L) {
                const ulong tok = (ulong)(first + j) * (ulong)H + (ulong)h;
                const ulong TH  = (ulong)T * (ulong)H;
                part[(ulong)(spx + pt) * TH + tok] = s0;
                part[(ulong)(spq + pt) * TH + tok] = DTL[j] * s1;
                part[(ulong)(spd + pt) * TH + tok] = s2;
            }
        }
    }
}
