/*
 * mamba2/dcb_bwd.cl - backward of the intra-chunk product (mamba_ssm
 * ssd_chunk_scan.py _chunk_scan_bwd_dcb): the gradient of the Gram matrix
 * CB per head, and the intra-chunk part of the gradient of the cumulative
 * log-decay.
 *
 * Math, per chunk c (rows i, j < L), head h (group g = h / (H / G)):
 *   dCB_h[i, j] = (dy_i . x_j) exp2(cs_i - cs_j) dt_j     for j <= i, else 0
 *   M_ij        = CB[i, j] dCB_h[i, j]
 *   dcs_i      += sum_{j != i} M_ij - sum_{k != i} M_ki   (natural log; the
 *                 diagonal cancels exactly and is left out of both sums)
 * The row sums of tile (it, jt) go to slot sr0 + jt, the column sums to
 * slot sc0 + it of the per-token partial buffer part[slot][T][H]; dt_bwd.cl
 * adds the slots of a token in a fixed order (deterministic, no atomics).
 *
 * Shapes (F32): x, dy [T, H, P]; dt, cs [T, H]; CB [NT, G, CH, CH]; dcb
 * [NT, H, CH, CH] (every entry of each written tile, 0 where masked);
 * part [slots, T, H]; chunks [NT] int4.
 *
 * One work-group = one 64 x 64 tile (it >= jt) of one (chunk, head): 256
 * work-items as 16 x 16 with strided 4 x 4 micro-tiles; dy and x rows are
 * staged in BK-column slices of P. Local memory 2 * 64 * (BK + 1) + 2 CH
 * floats (18.5 KiB at BK = 32, CH = 256). Global (256 (CH/64)^2 NT, H),
 * group index 0 = chunk * (CH/64)^2 + tile; local (256, 1); tiles above
 * the diagonal or past L return at once.
 *
 * Tuning macros (#ifndef defaults; set by the dcb plan in
 * lib/ops/mamba2/plan.c):
 *   CH    chunk size: 64, 128 or 256 (default 64)
 *   BK    P slice: 16 or 32 (default 32)
 */
#include "gdn_common.clh"
#include "gdn_mamba2_common.clh"
#include "gdn_tile.clh"

#ifndef CH
#define CH 64
#endif
#ifndef BK
#define BK 32
#endif
#define NTL (CH / M2_RT)
#define LDS (BK + 1)
#define LDR 17

#if (CH % M2_RT) != 0 || CH > M2_WG || 2 * M2_RT * LDR > 2 * M2_RT * LDS
#error "dcb_bwd: inconsistent tile macros"
#endif

__kernel __attribute__((reqd_work_group_size(M2_WG, 1, 1)))
void mamba2_dcb_bwd(__global const float *x, __global const float *dy,
                    __global const float *dt, __global const float *cs,
                    __global const float *CB, __global const int4 *chunks, __global float *dcb,
                    __global float *part, int T, int H, int G, int P, int sr0, int sc0)
{
    __local float  LM[2 * M2_RT * LDS];
    __local float  CSL[CH], DTL[CH];
    __local float *DYL = LM, *XL = LM + M2_RT * LDS;
    __local float *RS = LM, *CS = LM + M2_RT * LDR;
    const int      lid = (int)get_local_id(0);
    const int      tx = lid & 15, ty = lid >> 4;
    const int      c = (int)get_group_id(0) / (NTL * NTL);
    const int      q = (int)get_group_id(0) - c * (NTL * NTL);
    const int      it = q / NTL, jt = q - (q / NTL) * NTL;
    const int      h = (int)get_group_id(1);
    const int      g = h / (H / G);
    const int4     ch = chunks[c];
    const int      first = ch.y, L = ch.z;
    const int      i0 = it * M2_RT, j0 = jt * M2_RT;
    float          acc[M2_TM][M2_TM];
    float          rs[M2_TM], cls[M2_TM];

    if (jt > it || i0 >= L)
        return;
    if (lid < CH) {
        const bool  ok = lid < L;
        const ulong at = (ulong)(first + (ok ? lid : 0)) * (ulong)H + (ulong)h;
        CSL[lid]       = ok ? cs[at] : 0.0f;
        DTL[lid]       = ok ? dt[at] : 0.0f;
    }
    GDN_TILE_ZERO(acc, M2_TM, M2_TM);
    for (int p0 = 0; p0 < P; p0 += BK) {
        barrier(CLK_LOCAL_MEM_FENCE);
        for (int e = lid; e < M2_RT * BK; e += M2_WG) {
            const int r = e / BK, d = e - (e / BK) * BK;
            float     a = 0.0f, b = 0.0f;
            if (p0 + d < P) {
                if (i0 + r < L)
                    a = dy[((ulong)(first + i0 + r) * (ulong)H + (ulong)h) * (ulong)P +
                           (ulong)(p0 + d)];
                if (j0 + r < L)
                    b = x[((ulong)(first + j0 + r) * (ulong)H + (ulong)h) * (ulong)P +
                          (ulong)(p0 + d)];
            }
            DYL[r * LDS + d] = a;
            XL[r * LDS + d]  = b;
        }
        barrier(CLK_LOCAL_MEM_FENCE);
        GDN_TILE_MMA(acc, M2_TM, M2_TM, DYL, LDS, 0, XL, LDS, 1, ty, 16, tx, 16, BK);
    }

    {
        const ulong dbase = ((ulong)c * (ulong)H + (ulong)h) * (ulong)CH * (ulong)CH;
        const ulong cbase = ((ulong)c * (ulong)G + (ulong)g) * (ulong)CH * (ulong)CH;
        for (int a = 0; a < M2_TM; a++)
            rs[a] = cls[a] = 0.0f;
        for (int a = 0; a < M2_TM; a++) {
            const int i = i0 + ty + 16 * a;
            for (int b = 0; b < M2_TM; b++) {
                const int   j  = j0 + tx + 16 * b;
                const bool  m  = j <= i && i < L;
                const float ex = select(0.0f, CSL[i] - CSL[j], (int)m);
                const float d  = m ? acc[a][b] * exp2(ex) * DTL[j] : 0.0f;
                /* the diagonal adds M_ii to row i and subtracts it from column
                 * i: it cancels exactly, so it is left out of both sums */
                const float mm = (m && j != i) ? CB[cbase + (ulong)i * CH + (ulong)j] * d : 0.0f;
                dcb[dbase + (ulong)i * CH + (ulong)j] = d;
                rs[a] += mm;
                cls[b] += mm;
            }
        }
    }
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int a = 0; a < M2_TM; a++) {
        RS[(ty + 16 * a) * LDR + tx] = rs[a];
        CS[(tx + 16 * a) * LDR + ty] = cls[a];
    }
    barrier(CLK_LOCAL_MEM_FENCE);
    if (lid < 2 * M2_RT) {
        const int            r   = lid & (M2_RT - 1);
        const bool           row = lid < M2_RT;
        __local const float *src = row ? RS : CS;
        const int            tok = (row ? i0 : j0) + r;
        float                s   = 0.0f;
        for (int k = 0; k < 16; k++)
            s += src[r * LDR + k];
        if (tok < L)
            part[((ulong)(row ? sr0 + jt : sc0 + it) * (ulong)T + (ulong)(first + tok)) *
                     (ulong)H +
                 (ulong)h] = s;
    }
}
