/*
 * mamba2/chunk_scan_fwd.cl - forward stage 5 of the Mamba2 SSD scan
 * (mamba_ssm ssd_chunk_scan.py _chunk_scan_fwd): the output of one chunk
 * from its entering state and the intra-chunk (C B^T o L) X term.
 *
 * Math, per chunk c (rows i < L), head h (group g = h / (H / G)):
 *   y_i = exp2(cs_i) C_i h_in[c]^T                       (inter-chunk)
 *       + sum_{j <= i} CB_ij exp2(cs_i - cs_j) dt_j x_j  (intra-chunk)
 *       + D_h x_i                                        (skip, has_D)
 * with h_in[c] [P, DS] the state entering the chunk (state_passing_fwd.cl)
 * and CB from bmm_fwd.cl. Every exponent is <= 0; entries with j > i or
 * rows >= L are selected to 0 before exp2 is used.
 *
 * Shapes (F32): x, y [T, H, P]; C [T, G, DS]; dt, cs [T, H]; hstates
 * [NT, H, P, DS]; CB [NT, G, CH, CH]; D [H]; chunks [NT] int4.
 *
 * One work-group = one (64-row tile it, BP-column tile of P, chunk, head):
 * 256 work-items as 16 x 16 with strided 4 x (BP/16) micro-tiles.
 * Phase 1 stages C (64 x BK) and h_in^T (BK x BP) slices of DS; phase 2
 * loops over the column tiles jt <= it, staging the masked decayed
 * 64 x 64 block W_ij = CB_ij exp2(cs_i - cs_j) dt_j and the x rows of jt.
 * Local memory max(64 (BK + 1) + BK BP, 64 65 + 64 BP) + 2 CH floats
 * (34 KiB at BP = 64, CH = 256). Global (256 (CH/64) nPt NT, H),
 * nPt = ceil(P/BP), group index 0 = chunk * (CH/64) nPt + tile; local
 * (256, 1); row tiles past L return at once.
 *
 * Tuning macros (#ifndef defaults; set by the chunk_scan plan in
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
#define NTL (CH / M2_RT)
#define TP  (BP / 16)
#define LDC (BK + 1)
#define LDW (M2_RT + 1)
#define S1  (M2_RT * LDC + BK * BP)
#define S2  (M2_RT * LDW + M2_RT * BP)
#define SCR (S1 > S2 ? S1 : S2)

#if (BP % 16) != 0 || (CH % M2_RT) != 0 || CH > M2_WG
#error "chunk_scan_fwd: inconsistent tile macros"
#endif

__kernel __attribute__((reqd_work_group_size(M2_WG, 1, 1)))
void mamba2_chunk_scan_fwd(__global const float *x, __global const float *C,
                           __global const float *dt, __global const float *cs,
                           __global const float *hstates, __global const float *CB,
                           __global const float *D, __global const int4 *chunks,
                           __global float *y, int H, int G, int P, int DS, int nPt, int has_D)
{
    __local float  LM[SCR];
    __local float  CSL[CH], DTL[CH];
    __local float *CLs = LM, *HL = LM + M2_RT * LDC;
    __local float *WL = LM, *XL = LM + M2_RT * LDW;
    const int      lid = (int)get_local_id(0);
    const int      tx = lid & 15, ty = lid >> 4;
    const int      c = (int)get_group_id(0) / (NTL * nPt);
    const int      q = (int)get_group_id(0) - c * (NTL * nPt);
    const int      it = q / nPt, p0 = (q - (q / nPt) * nPt) * BP;
    const int      h = (int)get_group_id(1);
    const int      g = h / (H / G);
    const int4     ch = chunks[c];
    const int      first = ch.y, L = ch.z;
    const int      i0 = it * M2_RT;
    const ulong    sbase = ((ulong)c * (ulong)H + (ulong)h) * (ulong)P * (ulong)DS;
    const ulong    cbase = ((ulong)c * (ulong)G + (ulong)g) * (ulong)CH * (ulong)CH;
    float          acc[M2_TM][TP];

    if (i0 >= L)
        return;
    if (lid < CH) {
        const bool ok = lid < L;
        const ulong at = (ulong)(first + (ok ? lid : 0)) * (ulong)H + (ulong)h;
        CSL[lid]       = ok ? cs[at] : 0.0f;
        DTL[lid]       = ok ? dt[at] : 0.0f;
    }
    GDN_TILE_ZERO(acc, M2_TM, TP);

    /* Phase 1: C_i h_in^T over DS slices. */
    for (int n0 = 0; n0 < DS; n0 += BK) {
        barrier(CLK_LOCAL_MEM_FENCE);
        for (int e = lid; e < M2_RT * BK; e += M2_WG) {
            const int r = e / BK, d = e - (e / BK) * BK;
            float     v = 0.0f;
            if (i0 + r < L && n0 + d < DS)
                v = C[((ulong)(first + i0 + r) * (ulong)G + (ulong)g) * (ulong)DS +
                      (ulong)(n0 + d)];
            CLs[r * LDC + d] = v;
        }
        for (int e = lid; e < BK * BP; e += M2_WG) {
            const int p = e / BK, d = e - (e / BK) * BK;
            float     v = 0.0f;
            if (p0 + p < P && n0 + d < DS)
                v = hstates[sbase + (ulong)(p0 + p) * DS + (ulong)(n0 + d)];
            HL[d * BP + p] = v;
        }
        barrier(CLK_LOCAL_MEM_FENCE);
        GDN_TILE_MMA(acc, M2_TM, TP, CLs, LDC, 0, HL, BP, 0, ty, 16, tx, 16, BK);
    }
    for (int a = 0; a < M2_TM; a++) {
        const int   i  = i0 + ty + 16 * a;
        const float sc = exp2(select(0.0f, CSL[i], (int)(i < L)));
        for (int b = 0; b < TP; b++)
            acc[a][b] *= sc;
    }

    /* Phase 2: intra-chunk blocks jt <= it. */
    for (int jt = 0; jt <= it; jt++) {
        const int j0 = jt * M2_RT;
        barrier(CLK_LOCAL_MEM_FENCE);
        for (int e = lid; e < M2_RT * M2_RT; e += M2_WG) {
            const int  r = e / M2_RT, s = e - (e / M2_RT) * M2_RT;
            const int  i = i0 + r, j = j0 + s;
            const bool m = j <= i && i < L;
            const float ex = select(0.0f, CSL[i] - CSL[j], (int)m);
            WL[r * LDW + s] = m ? CB[cbase + (ulong)i * CH + (ulong)j] * exp2(ex) * DTL[j] : 0.0f;
        }
        for (int e = lid; e < M2_RT * BP; e += M2_WG) {
            const int r = e / BP, p = e - (e / BP) * BP;
            float     v = 0.0f;
            if (j0 + r < L && p0 + p < P)
                v = x[((ulong)(first + j0 + r) * (ulong)H + (ulong)h) * (ulong)P +
                      (ulong)(p0 + p)];
            XL[e] = v;
        }
        barrier(CLK_LOCAL_MEM_FENCE);
        GDN_TILE_MMA(acc, M2_TM, TP, WL, LDW, 0, XL, BP, 0, ty, 16, tx, 16, M2_RT);
    }

    /* Skip term and store. */
    {
        const float Dh = has_D ? D[h] : 0.0f;
        for (int a = 0; a < M2_TM; a++) {
            const int i = i0 + ty + 16 * a;
            if (i < L)
                for (int b = 0; b < TP; b++) {
                    const int p = p0 + tx + 16 * b;
                    if (p < P) {
                        const ulong at =
                            ((ulong)(first + i) * (ulong)H + (ulong)h) * (ulong)P + (ulong)p;
                        y[at] = has_D ? fma(Dh, x[at], acc[a][b]) : acc[a][b];
                    }
                }
        }
    }
}
