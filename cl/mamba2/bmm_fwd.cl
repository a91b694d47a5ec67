/*
 * mamba2/bmm_fwd.cl - forward stage 2 of the Mamba2 SSD scan (mamba_ssm
 * ssd_bmm.py _bmm_chunk_fwd): the per-chunk, per-group Gram matrix
 *   CB[c, g]_ij = C_i . B_j     (i, j rows of chunk c, inner dim DS)
 * shared by the heads of the group (decay and dt are per head and applied
 * by the consumers). Only lower 64 x 64 tiles (tile row >= tile column)
 * inside the chunk's valid rows are written; rows/columns >= L of a written
 * tile are 0. Consumers read nothing else.
 *
 * Shapes (F32): B, C [T, G, DS]; CB [NT, G, CH, CH]; chunks [NT] int4.
 *
 * One work-group = one 64 x 64 tile (ti, tj) of one (chunk, group): 256
 * work-items as 16 x 16, each a strided 4 x 4 micro-tile; C and B rows are
 * staged in BK-column slices of DS (masked past DS and L). Local memory
 * 2 * 64 * (BK + 1) floats (16.5 KiB at BK = 32). Global
 * (256 (CH/64)^2 NT, G), group index 0 = chunk * (CH/64)^2 + tile (large
 * counts go to dimension 0: NVIDIA limits dimensions 1, 2 to 65535
 * groups); local (256, 1). Tiles above the diagonal or past L return at
 * once (uniformly).
 *
 * Tuning macros (#ifndef defaults; set by the bmm plan in
 * lib/ops/mamba2/plan.c):
 *   CH    chunk size: 64, 128 or 256 (default 64)
 *   BK    DS slice: 16 or 32 (default 32); any DS (masked)
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

#if (CH % M2_RT) != 0
#error "bmm_fwd: CH must be a multiple of 64"
#endif

__kernel __attribute__((reqd_work_group_size(M2_WG, 1, 1)))
void mamba2_bmm_fwd(__global const float *B, __global const float *C,
                    __global const int4 *chunks, __global float *CB, int G, int DS)
{
    __local float CL[M2_RT * LDS];
    __local float BL[M2_RT * LDS];
    const int     lid = (int)get_local_id(0);
    const int     tx = lid & 15, ty = lid >> 4;
    const int     c = (int)get_group_id(0) / (NTL * NTL);
    const int     q = (int)get_group_id(0) - c * (NTL * NTL);
    const int     ti = q / NTL, tj = q - (q / NTL) * NTL;
    const int     g = (int)get_group_id(1);
    const int4    ch = chunks[c];
    const int     first = ch.y, L = ch.z;
    float         acc[M2_TM][M2_TM];

    if (tj > ti || ti * M2_RT >= L)
        return;
    GDN_TILE_ZERO(acc, M2_TM, M2_TM);
    for (int n0 = 0; n0 < DS; n0 += BK) {
        barrier(CLK_LOCAL_MEM_FENCE);
        for (int e = lid; e < M2_RT * BK; e += M2_WG) {
            const int r = e / BK, d = e - (e / BK) * BK;
            const int i = ti * M2_RT + r, j = tj * M2_RT + r, n = n0 + d;
            float     cv = 0.0f, bv = 0.0f;
            if (n < DS) {
                if (i < L)
                    cv = C[((ulong)(first + i) * (ulong)G + (ulong)g) * (ulong)DS + (ulong)n];
                if (j < L)
                    bv = B[((ulong)(first + j) * (ulong)G + (ulong)g) * (ulong)DS + (ulong)n];
            }
            CL[r * LDS + d] = cv;
            BL[r * LDS + d] = bv;
        }
        barrier(CLK_LOCAL_MEM_FENCE);
        GDN_TILE_MMA(acc, M2_TM, M2_TM, CL, LDS, 0, BL, LDS, 1, ty, 16, tx, 16, BK);
    }
    {
        const ulong base = ((ulong)c * (ulong)G + (ulong)g) * (ulong)CH * (ulong)CH;
        for (int a = 0; a < M2_TM; a++)
            for (int b = 0; b < M2_TM; b++) {
                const int i = ti * M2_RT + ty + 16 * a, j = tj * M2_RT + tx + 16 * b;
                CB[base + (ulong)i * CH + (ulong)j] = acc[a][b];
            }
    }
}
