/*
 * mamba2/chunk_state.cl - the per-chunk state contraction of the Mamba2 SSD
 * scan (mamba_ssm ssd_chunk_state.py _chunk_state_fwd, and the dstates part
 * of ssd_chunk_scan.py _chunk_scan_bwd_dstates):
 *
 *   out[c, h] = X_c^T diag(w) Y_c          [P, DS] per (chunk c, head h)
 *
 *   MODE 0 (forward chunk states):  X = x,  Y = B,
 *                                   w_l = dt_l exp2(cs_last - cs_l)
 *   MODE 1 (backward, the output's direct state gradient):
 *                                   X = dy, Y = C,  w_l = exp2(cs_l)
 * l runs over the chunk's valid rows (l < L); every exponent is <= 0
 * (cs is the chunk-local cumulative log2 decay, non-increasing).
 * Head h reads group g = h / (H / G) of Y.
 *
 * Shapes (F32): X [T, H, P]; Y [T, G, DS]; dt, cs [T, H]; out
 * [NT, H, P, DS] (P rows, DS fastest); chunks [NT] int4.
 *
 * One work-group = one BP x BN tile of out for one (chunk, head): 256
 * work-items as 16 x 16, each a strided (BP/16) x (BN/16) micro-tile; the
 * chunk rows are staged in BK-row slices (X weighted by w). Partial tiles
 * (P % BP, DS % BN) are masked. Local memory CH + BK * (BP + BN) floats
 * (17 KiB at CH = 256, BK = 32, BP = BN = 64). Global
 * (256 nPt nNt NT, H), nPt = ceil(P/BP), nNt = ceil(DS/BN), group index
 * 0 = chunk * nPt nNt + tile; local (256, 1).
 *
 * Tuning macros (#ifndef defaults; set by the chunk_state plan in
 * lib/ops/mamba2/plan.c):
 *   MODE  0 forward states, 1 backward direct dstates (required)
 *   CH    chunk size: 64, 128 or 256 (default 64)
 *   BP    P tile: 16, 32 or 64 (default 64)
 *   BN    DS tile: 16, 32 or 64 (default 64)
 *   BK    row slice: 16 or 32 (default 32)
 */
#include "gdn_common.clh"
#include "gdn_mamba2_common.clh"
#include "gdn_tile.clh"

#ifndef MODE
#error "MODE must be defined (0 forward, 1 backward)"
#endif
#ifndef CH
#define CH 64
#endif
#ifndef BP
#define BP 64
#endif
#ifndef BN
#define BN 64
#endif
#ifndef BK
#define BK 32
#endif
#define TP (BP / 16)
#define TN (BN / 16)

#if (BP % 16) != 0 || (BN % 16) != 0 || CH > M2_WG
#error "chunk_state: BP, BN must be multiples of 16, CH <= 256"
#endif

__kernel __attribute__((reqd_work_group_size(M2_WG, 1, 1)))
void mamba2_chunk_state(__global const float *X, __global const float *Y,
                        __global const float *dt, __global const float *cs,
                        __global const int4 *chunks, __global float *out, int H, int G, int P,
                        int DS, int nPt, int nNt)
{
    __local float Wl[CH];
    __local float XL[BK * BP];
    __local float YL[BK * BN];
    const int     lid = (int)get_local_id(0);
    const int     tx = lid & 15, ty = lid >> 4;
    const int     c = (int)get_group_id(0) / (nPt * nNt);
    const int     q = (int)get_group_id(0) - c * (nPt * nNt);
    const int     p0 = (q / nNt) * BP, n0 = (q - (q / nNt) * nNt) * BN;
    const int     h = (int)get_group_id(1);
    const int     g = h / (H / G);
    const int4    ch = chunks[c];
    const int     first = ch.y, L = ch.z;
    float         acc[TP][TN];

    if (lid < CH) {
        float w = 0.0f;
        if (lid < L) {
            const ulong at = (ulong)(first + lid) * (ulong)H + (ulong)h;
#if MODE == 0
            const float cl = cs[(ulong)(first + L - 1) * (ulong)H + (ulong)h];
            w              = dt[at] * exp2(cl - cs[at]);
#else
            w = exp2(cs[at]);
#endif
        }
        Wl[lid] = w;
    }
    GDN_TILE_ZERO(acc, TP, TN);
    for (int l0 = 0; l0 < L; l0 += BK) {
        barrier(CLK_LOCAL_MEM_FENCE);
        for (int e = lid; e < BK * BP; e += M2_WG) {
            const int l = e / BP, p = e - (e / BP) * BP;
            float     v = 0.0f;
            if (l0 + l < L && p0 + p < P)
                v = Wl[l0 + l] * X[((ulong)(first + l0 + l) * (ulong)H + (ulong)h) * (ulong)P +
                                   (ulong)(p0 + p)];
            XL[e] = v;
        }
        for (int e = lid; e < BK * BN; e += M2_WG) {
            const int l = e / BN, n = e - (e / BN) * BN;
            float     v = 0.0f;
            if (l0 + l < L && n0 + n < DS)
                v = Y[((ulong)(first + l0 + l) * (ulong)G + (ulong)g) * (ulong)DS +
                      (ulong)(n0 + n)];
            YL[e] = v;
        }
        barrier(CLK_LOCAL_MEM_FENCE);
        GDN_TILE_MMA(acc, TP, TN, XL, BP, 1, YL, BN, 0, ty, 16, tx, 16, BK);
    }
    {
        const ulong base = ((ulong)c * (ulong)H + (ulong)h) * (ulong)P * (ulong)DS;
        for (int a = 0; a < TP; a++) {
            const int p = p0 + ty + 16 * a;
            if (p < P)
                for (int b = 0; b < TN; b++) {
                    const int n = n0 + tx + 16 * b;
                    if (n < DS)
                        out[base + (ulong)p * DS + (ulong)n] = acc[a][b];
                }
        }
    }
}
