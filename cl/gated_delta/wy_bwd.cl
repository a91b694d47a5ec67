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
 *   VEC           0: the kernel below with scalar strided micro-tiles
 *                 (GDN_TILE_MMA); 1: the float4 variant further down
 *                 (GDN_TILE_MMA4), see its comment (default 0)
 *   GDN_TILE_UNROLL  the unroll factor of the float4 products' loops over k
 *                    (tuning parameter UNROLL; 0, the default: the
 *                    compiler's choice; cl/include/gdn_tile.clh)
 */
#include "gdn_common.clh"
#include "gdn_tile.clh"

/* The parameters of every kernel in this file, in the order the host binds them
 * (lib/ops/gated_delta): the forms differ in their bodies only. */
#define WY_BWD_PARAMS                                                                              \
    __global const int4 *chunks, __global const float *k, __global const float *v,                 \
    __global const float *beta, __global const float *G, __global const float *Ai,                 \
    __global const float *dw, __global const float *du, __global float *dkh, __global float *dv,   \
    __global float *db, __global const float *dGp, __global float *dGs, int H, int HV, int T,      \
    int NK, int write_dv, __global float *tscratch

#ifndef VEC
#    define VEC 0
#endif

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
/* Both kernels' start: the chunk's gates, beta and exp2(G) into sG, sB,
 * sGam, its inverse Ai (lower triangle, rows < L) into sAi with row stride
 * ld_, and the dT, dbeta and dG accumulators zeroed. */
#define WY_BWD_START(ld_)                                                                          \
    for (int r = tid; r < CH; r += WG) { /* WG may be below 64 */                                  \
        const bool  on = r < L;                                                                    \
        const float g  = on ? G[(ulong)(t0 + r) * HV + hv] : 0.0f;                                 \
        sG[r]          = g;                                                                        \
        sB[r]          = on ? beta[(ulong)(t0 + r) * HV + hv] : 0.0f;                              \
        sGam[r]        = on ? exp2(g) : 0.0f;                                                      \
    }                                                                                              \
    for (int idx = tid; idx < CH * CH; idx += WG) {                                                \
        const int i = idx / CH, j = idx % CH;                                                      \
        sAi[i * (ld_) + j] =                                                                       \
            (i < L && j <= i) ? Ai[((ulong)(t0 + i) * HV + hv) * CH + j] : 0.0f;                   \
    }                                                                                              \
    float dT[TM][TNC];                                                                             \
    float dbp[TM], dgp[TM];                                                                        \
    GDN_TILE_ZERO(dT, TM, TNC);                                                                    \
    for (int a = 0; a < TM; a++)                                                                   \
        dbp[a] = dgp[a] = 0.0f;

/* Both kernels' end: dbeta and dG of each row (sums over TX work-items,
 * the column sums of dG over TY, the K tiles' dG partials of stage B5) in a
 * fixed order, through local memory at buf_. R(a), C(b): the kernel's row
 * of accumulator row a and column of accumulator column b. */
#define WY_BWD_SUMS(buf_, R, C)                                                                    \
    barrier(WY_FENCE); /* tiles are dead */                                                        \
    {                                                                                              \
        __local float *rdb = (buf_), *rdg = (buf_) + CH * TX, *rcol = (buf_) + 2 * CH * TX;        \
        for (int a = 0; a < TM; a++) {                                                             \
            rdb[R(a) * TX + tx] = dbp[a];                                                          \
            rdg[R(a) * TX + tx] = dgp[a];                                                          \
        }                                                                                          \
        for (int b = 0; b < TNC; b++)                                                              \
            rcol[C(b) * TY + ty] = colp[b];                                                        \
        barrier(WY_FENCE);                                                                         \
        for (int r = tid; r < L; r += WG) {                                                        \
            const ulong o = (ulong)(t0 + r) * HV + hv;                                             \
            float       sb = 0.0f, sg = 0.0f;                                                      \
            for (int x = 0; x < TX; x++) {                                                         \
                sb += rdb[r * TX + x];                                                             \
                sg += rdg[r * TX + x];                                                             \
            }                                                                                      \
            for (int y = 0; y < TY; y++)                                                           \
                sg -= rcol[r * TY + y];                                                            \
            for (int x = 0; x < NK; x++)                                                           \
                sg += dGp[(ulong)x * T * HV + o];                                                  \
            db[o]  = sb;                                                                           \
            dGs[o] = sg;                                                                           \
        }                                                                                          \
    }

#if !VEC
#define XSZ MAX2(MAX2(3 * CH * LDK, 3 * CH * LDV), CH * (2 * TX + TY))

#if K_DIM % BK != 0 || V_DIM % BV != 0 || BK % TX != 0 || BV % TX != 0 || CH % TY != 0 ||     \
    CH % TX != 0
#    error "wy_bwd.cl: illegal tile sizes"
#endif

__kernel __attribute__((reqd_work_group_size(WG, 1, 1))) void
gated_delta_wy_bwd(WY_BWD_PARAMS)
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

    WY_BWD_START(LDC);

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
#define SROW(a) (ty + (a) * TY)
#define SCOL(b) (tx + (b) * TX)
    WY_BWD_SUMS(sX, SROW, SCOL);
#undef SROW
#undef SCOL
}

#else /* VEC */
/*
 * VEC = 1: the same stage with float4 operand reads (GDN_TILE_MMA4). The
 * scalar kernel above reads its operands from 65-float-padded rows with 4 x 1
 * to 4 x 4 strided micro-tiles: about one local-memory read per two fma, so
 * it is bound by local-memory instructions. Here every product takes both
 * operands k-major (A[k lda + row], B[k ldb + col]) and each work-item owns
 * groups of 4 contiguous rows and columns:
 *     rows  ROW(a) = 4 ty + (a / 4) 4 TY + a % 4   (a < TM = 64 / TY)
 *     cols  COL(b) = 4 tx + (b / 4) 4 TX + b % 4   (b < 64 / TX, BK / TX or BV / TX)
 * so one float4 read feeds four rows or columns and the reads of neighbouring
 * work-items are contiguous (no bank conflicts). Micro-tiles: (64 / TY) x
 * (64 / TX) for the 64 x 64 products (dT, the two of dA, k k^T), (64 / TY) x
 * (BK / TX) for Tm^T dw, dA k, dA^T (beta k), (64 / TY) x (BV / TX) for
 * Tm^T du; all multiples of 4. The 64 x 64 tiles have no padding (their
 * float4 reads never conflict); the staged row-major tiles are padded to
 * BK + 4 / BV + 4.
 *
 * Layouts (float offsets; sT and the staged tiles share one buffer sW):
 *   phases 1/2, per K (V) tile: dw^T [BK][LDT], kbg^T [BK][LDT] and dw
 *       [64][BK + 4] in sW (du^T, vb^T, du for V), Ai row-major [64][64]
 *       in sAi: dT += dw kbg^T reads dw^T and kbg^T; Tm^T dw reads Ai and
 *       dw. The elementwise tails read k and v as float4 from global memory
 *       (the rows just staged, in cache) and update dk / write dv as float4.
 *   phase 3: S = strict_lower(dT) row-major in sT; Z = Ai^T S (Ai, S);
 *       Z^T into sT and Ai^T into sAi (4 x 4 blocks through registers);
 *       Y = Z Ai^T (Z^T, Ai^T) = Tm^T S Tm^T. Then dA = -Y o exp2(G_i - G_j)
 *       goes to sAi transposed (sAi[j 64 + i] = dA(i, j)) and, scaled by
 *       its row's beta, to sT row-major (sT[i 64 + j] = beta_i dA(i, j)).
 *   k k^T: a loop over K tiles of k^T [BK][LDT] (after phase 3: only sX,
 *       the part of sW past sT, is free there).
 *   phase 4, per K tile of k [64][BK + 4] in sX: dkb = dA k reads dA^T;
 *       dA^T (beta k) = (beta o dA)^T k reads beta o dA, so k is staged
 *       once; P = (beta o dA) o (k k^T) in phase 5 reads the same tile.
 * Same arithmetic as above except the order of the two products of dA
 * (Tm^T S first) and beta applied to dA rather than to k in dA^T (beta k);
 * dT, k k^T and each product's k order are as above.
 * The transposed staged tiles have rows of LDT = 68 floats: the stores of
 * GDN_TILE_T_ROW's 8 rows x 4 column groups per warp then hit at most 2
 * lanes per bank (4 with rows of 64).
 * Local memory: 4 * (64 * 64 + WSZ + 3 * 64) bytes, WSZ = max(2 BK LDT +
 * 64 (BK + 4), 2 BV LDT + 64 (BV + 4), 64 * 64 + 64 (BK + 4)):
 * 43776 B at BK = BV = 32, 38656 B at 16. Needs 64 / TY, 64 / TX, BK / TX and
 * BV / TX to be multiples of 4, and T_IN_GLOBAL = 0. Barriers sit in loops
 * with compile-time trip counts only.
 * Where its H200 time goes (B = 4, T = 4096, H = 16, the sm_90 row; probes
 * with parts left out, wrong results): 1.163-1.167 ms in all, 0.570-0.572
 * without any product, 0.357-0.359 without any product nor the staged
 * tiles' loads. Its products (about 0.6 ms) and its loads and stores barely
 * overlap, as in dqkwg_bwd.cl.
 */
#if T_IN_GLOBAL || (CH / TY) % 4 != 0 || (CH / TX) % 4 != 0 || (BK / TX) % 4 != 0 ||               \
    (BV / TX) % 4 != 0 || K_DIM % BK != 0 || V_DIM % BV != 0 || (CH * CH / 16) % WG != 0
#    error "wy_bwd.cl: VEC needs 64 / TY, 64 / TX, BK / TX, BV / TX multiples of 4, T_IN_GLOBAL 0"
#endif

#define ROW_OF(y, a) (4 * (y) + ((a) / 4) * (4 * TY) + (a) % 4) /* row a of work-items ty = y */
#define ROW(a)       ROW_OF(ty, a)
/* The inner index of the products with a triangular operand runs only where
 * that operand can be non-zero for this work-item's rows ROW(0) ...
 * ROW(TM - 1) (GDN_TILE_MMA4_RANGE): Tm^T X from klo = ROW(0) and dA^T
 * (beta k) from klo + 1 (Tm(j, i) is zero for j < i, dA(j, i) for j <= i),
 * and to L (staged rows past L are zeros); dA k and Y = Z Tm^T (needed for
 * j < i only) below khi = min(ROW(TM - 1), L). Both are zero past these
 * bounds, up to the whole blocks GDN_TILE_MMA4_RANGE widens them to. With
 * 64 / TY = 4 (contiguous rows) this halves those products on average. */
#define COL(b) (4 * tx + ((b) / 4) * (4 * TX) + (b) % 4)
/* WY_MMA4_LOWER(acc, A, lda, B, ldb, KD): GDN_TILE_MMA4 of a 64 x 64 product
 * of which only the strictly lower part (column j < row i) is used, over the
 * column groups ncg counts: all, the first half, or none. The count is the
 * same for each block of 32 consecutive work-items (a warp on NVIDIA, so the
 * branch does not diverge there): WY_BLOCK_ROW(tid) is the last row of the
 * block (blocks of 32 hold whole rows of TX work-items), and column group g
 * of every work-item starts at column 4 TX g or later. Columns left out keep
 * their zeros; phases 3 and 5 mask them. */
#define WY_BLOCK_ROW(t) ROW_OF(min((t) / 32 * 32 + 31, WG - 1) / TX, TM - 1)
#define WY_MMA4_LOWER(acc, A, lda, B, ldb, KD)                                                     \
    do {                                                                                           \
        if (ncg > TNC / 8)                                                                         \
            GDN_TILE_MMA4(acc, TM, TNC, A, lda, 4 * ty, 4 * TY, B, ldb, 4 * tx, 4 * TX, KD);       \
        else if (TNC >= 8 && ncg > 0)                                                              \
            GDN_TILE_MMA4(acc, TM, (TNC >= 8 ? TNC / 2 : 4), A, lda, 4 * ty, 4 * TY, B, ldb,       \
                          4 * tx, 4 * TX, KD);                                                     \
    } while (0)
#define LDRK   (BK + 4)
#define LDRV   (BV + 4)
#define LDT    (CH + 4) /* the transposed staged tiles: [BK or BV][LDT] */
#define XSZ1   MAX2(2 * BK * LDT + CH * LDRK, 2 * BV * LDT + CH * LDRV)
#define WSZ    MAX2(XSZ1, CH * CH + CH * LDRK)
#define NB4    (CH * CH / 16 / WG) /* 4 x 4 blocks of Ai per work-item in the transpose */
#define F4(v, t) ((t) == 0 ? (v).x : (t) == 1 ? (v).y : (t) == 2 ? (v).z : (v).w)

/* The staged tiles stream through registers: every 64 x BW column tile of
 * the chunk rows is loaded one step ahead of its use, so its global latency
 * hides behind the previous step's products. A work-item holds NPT float4s
 * of a tile (GDN_TILE_T_ROW / GDN_TILE_T_COL order: coalesced reads).
 * WY_LOAD(R, src, RS, c0, BW): columns c0 ... c0 + BW - 1 of the 64 chunk
 * rows of src (row r at src + (t0 + r) RS) into R; rows past L repeat row
 * L - 1 (unconditional loads, int offsets: T HV max(K, V) < 2^31, api.c).
 * Those rows reach only entries that are masked or multiplied by exact
 * zeros: rows and columns of dT past L (masked when staged), rows of k k^T
 * past L (met by dA's zeros), the rows of the triangular products' operands
 * past L (their inner index stops at L), and the dbeta terms of rows past L
 * (dkb is zero there and they are not stored).
 * WY_PUT_T(R, BW, EXPR_T, DST_T, ROWMAJ, DST_R, LDR): each float4 x of R
 * (row r, columns c ...) transposed as DST_T[c LDT + r] = EXPR_T (an
 * expression of x and r) and, if ROWMAJ, row-major as DST_R[r LDR + c] = x. */
#define NPT ((CH * MAX2(BK, BV) / 4 + WG - 1) / WG)
#define WY_LOAD(R, src, RS, c0, BW)                                                                \
    do {                                                                                           \
        for (int p_ = 0; p_ < NPT; p_++) {                                                         \
            const int idx_ = tid + p_ * WG, r_ = GDN_TILE_T_ROW(idx_, BW);                         \
            (R)[p_]        = (float4)(0.0f);                                                       \
            if (idx_ < CH * (BW) / 4)                                                              \
                (R)[p_] = GDN_LD4G((src) + (t0 + min(r_, L - 1)) * (int)(RS) + (c0) +              \
                                   GDN_TILE_T_COL(idx_, BW));                                      \
        }                                                                                          \
    } while (0)
#define WY_PUT_T(R, BW, EXPR_T, DST_T, ROWMAJ, DST_R, LDR)                                         \
    do {                                                                                           \
        for (int p_ = 0; p_ < NPT; p_++) {                                                         \
            const int idx_ = tid + p_ * WG;                                                        \
            if (idx_ < CH * (BW) / 4) {                                                            \
                const int    r = GDN_TILE_T_ROW(idx_, BW), c_ = GDN_TILE_T_COL(idx_, BW);          \
                const float4 x = (R)[p_], xt_ = EXPR_T;                                            \
                (DST_T)[(c_ + 0) * LDT + r] = xt_.x;                                               \
                (DST_T)[(c_ + 1) * LDT + r] = xt_.y;                                               \
                (DST_T)[(c_ + 2) * LDT + r] = xt_.z;                                               \
                (DST_T)[(c_ + 3) * LDT + r] = xt_.w;                                               \
                if (ROWMAJ)                                                                        \
                    GDN_ST4L(x, (DST_R) + r * (LDR) + c_);                                         \
            }                                                                                      \
        }                                                                                          \
    } while (0)
/* The tiles in order of use, step s: K tiles of dw and k (phase 1), V tiles
 * of du and v (phase 2), K tiles of k (k k^T), K tiles of k (phase 4);
 * WY_LOAD_STEP(s) loads step s's tiles into pa (and pb). */
#define NKT (K_DIM / BK)
#define NVT (V_DIM / BV)
#define WY_LOAD_STEP(s)                                                                            \
    do {                                                                                           \
        if ((s) < NKT) {                                                                           \
            WY_LOAD(pa, dwh, RSW, (s) * BK, BK);                                                   \
            WY_LOAD(pb, kh, RSK, (s) * BK, BK);                                                    \
        } else if ((s) < NKT + NVT) {                                                              \
            WY_LOAD(pa, duh, RSV, ((s) - NKT) * BV, BV);                                           \
            WY_LOAD(pb, vh, RSV, ((s) - NKT) * BV, BV);                                            \
        } else if ((s) < 2 * NKT + NVT) {                                                          \
            WY_LOAD(pa, kh, RSK, ((s) - NKT - NVT) * BK, BK);                                      \
        } else if ((s) < 3 * NKT + NVT) {                                                          \
            WY_LOAD(pa, kh, RSK, ((s) - 2 * NKT - NVT) * BK, BK);                                  \
        }                                                                                          \
    } while (0)

__kernel __attribute__((reqd_work_group_size(WG, 1, 1))) void
gated_delta_wy_bwd(WY_BWD_PARAMS)
{
    /* float4 arrays: aligned for the float4 reads */
    __local float4 sAi4[CH * CH / 4];
    __local float4 sW4[WSZ / 4];
    __local float  sB[CH], sG[CH], sGam[CH];
    __local float *sAi = (__local float *)sAi4, *sT = (__local float *)sW4, *sX = sT + CH * CH;

    const int  tid = (int)get_local_id(0), tx = tid % TX, ty = tid / TX;
    const int  c = (int)get_group_id(1), hv = (int)get_group_id(2);
    const int4 e  = chunks[c];
    const int  t0 = e.y, L = e.z;
    const int  hk = hv / (HV / H);
    /* The triangular products' inner index ranges (see klo, khi above). */
    const int  klo = ROW(0), khi = min(ROW(TM - 1), L);
    /* dT and k k^T are needed for j < i only: the column groups of 4 TX
     * columns that start below the last row of this work-item's block of 32
     * (WY_MMA4_LOWER). */
    const int  ncg = min(TNC / 4, (WY_BLOCK_ROW(tid) + 4 * TX - 1) / (4 * TX));
    const ulong RSK = (ulong)H * K_DIM, RSW = (ulong)HV * K_DIM, RSV = (ulong)HV * V_DIM;
    __global const float *kh = k + (ulong)hk * K_DIM, *dwh = dw + (ulong)hv * K_DIM;
    __global const float *vh = v + (ulong)hv * V_DIM, *duh = du + (ulong)hv * V_DIM;
    (void)tscratch;

    float4 pa[NPT], pb[NPT]; /* the next staged tiles (WY_LOAD_STEP) */
    WY_LOAD_STEP(0);         /* in flight while Ai and the gates load */
    WY_BWD_START(CH);

    /* Phase 1: K tiles of dw and kbg. */
    {
        __local float *sDWT = sT, *sKBT = sT + BK * LDT, *sDW = sT + 2 * BK * LDT;
        for (int k0 = 0; k0 < K_DIM; k0 += BK) {
            barrier(CLK_LOCAL_MEM_FENCE);
            WY_PUT_T(pa, BK, x, sDWT, 1, sDW, LDRK);
            WY_PUT_T(pb, BK, x * sB[r] * sGam[r], sKBT, 0, sDW, LDRK);
            barrier(CLK_LOCAL_MEM_FENCE);
            WY_LOAD_STEP(k0 / BK + 1);
            /* the tail's k and dk, loaded before the products (latency hidden) */
            float4 tk[TM][TNK / 4], td[TM][TNK / 4];
            for (int a = 0; a < TM; a++)
                for (int q = 0; q < TNK / 4; q++) {
                    const int i = ROW(a), cc = k0 + COL(4 * q);
                    tk[a][q] = td[a][q] = (float4)(0.0f);
                    if (i < L) {
                        tk[a][q] = GDN_LD4G(kh + (ulong)(t0 + i) * RSK + cc);
                        td[a][q] = GDN_LD4G(dkh + ((ulong)(t0 + i) * HV + hv) * K_DIM + cc);
                    }
                }
            WY_MMA4_LOWER(dT, sDWT, LDT, sKBT, LDT, BK);
            float acc[TM][TNK];
            GDN_TILE_ZERO(acc, TM, TNK);
            GDN_TILE_MMA4_RANGE(acc, TM, TNK, sAi, CH, 4 * ty, 4 * TY, sDW, LDRK, 4 * tx, 4 * TX,
                                klo, L);
            for (int a = 0; a < TM; a++) {
                const int   i = ROW(a);
                const float b = sB[i], gm = sGam[i];
                for (int q = 0; q < TNK / 4; q++) {
                    const int    cc = k0 + COL(4 * q);
                    const float4 kv = tk[a][q];
                    float4       d  = td[a][q];
                    const float4 kb = kv * b * gm;
                    for (int t = 0; t < 4; t++) {
                        const float g = acc[a][4 * q + t];
                        dbp[a] += g * F4(kv, t) * gm;
                        dgp[a] += g * F4(kb, t);
                    }
                    d += (float4)(acc[a][4 * q] * b * gm, acc[a][4 * q + 1] * b * gm,
                                  acc[a][4 * q + 2] * b * gm, acc[a][4 * q + 3] * b * gm);
                    if (i < L)
                        GDN_ST4G(d, dkh + ((ulong)(t0 + i) * HV + hv) * K_DIM + cc);
                }
            }
        }
    }

    /* Phase 2: V tiles of du and vb. */
    {
        __local float *sDUT = sT, *sVBT = sT + BV * LDT, *sDU = sT + 2 * BV * LDT;
        for (int v0 = 0; v0 < V_DIM; v0 += BV) {
            barrier(CLK_LOCAL_MEM_FENCE);
            WY_PUT_T(pa, BV, x, sDUT, 1, sDU, LDRV);
            WY_PUT_T(pb, BV, x * sB[r], sVBT, 0, sDU, LDRV);
            barrier(CLK_LOCAL_MEM_FENCE);
            WY_LOAD_STEP(NKT + v0 / BV + 1);
            float4 tv[TM][TNV / 4]; /* the tail's v, loaded before the products */
            for (int a = 0; a < TM; a++)
                for (int q = 0; q < TNV / 4; q++) {
                    const int i = ROW(a);
                    tv[a][q]    = i < L ? GDN_LD4G(vh + (ulong)(t0 + i) * RSV + v0 + COL(4 * q))
                                        : (float4)(0.0f);
                }
            WY_MMA4_LOWER(dT, sDUT, LDT, sVBT, LDT, BV);
            float acc[TM][TNV];
            GDN_TILE_ZERO(acc, TM, TNV);
            GDN_TILE_MMA4_RANGE(acc, TM, TNV, sAi, CH, 4 * ty, 4 * TY, sDU, LDRV, 4 * tx, 4 * TX,
                                klo, L);
            for (int a = 0; a < TM; a++) {
                const int   i = ROW(a);
                const float b = sB[i];
                for (int q = 0; q < TNV / 4; q++) {
                    const int    cc = v0 + COL(4 * q);
                    const float4 vv = tv[a][q];
                    for (int t = 0; t < 4; t++)
                        dbp[a] += acc[a][4 * q + t] * F4(vv, t);
                    if (write_dv && i < L)
                        GDN_ST4G((float4)(acc[a][4 * q] * b, acc[a][4 * q + 1] * b,
                                          acc[a][4 * q + 2] * b, acc[a][4 * q + 3] * b),
                                 dv + ((ulong)(t0 + i) * HV + hv) * V_DIM + cc);
                }
            }
        }
    }

    /* Phase 3: dA = -(Tm^T strict_lower(dT) Tm^T) o Gamma. */
    barrier(CLK_LOCAL_MEM_FENCE); /* phase 2's tiles in sW are dead */
    for (int a = 0; a < TM; a++) {
        const int i = ROW(a);
        for (int q = 0; q < TNC / 4; q++) {
            const int j = COL(4 * q);
            GDN_ST4L((float4)(j < i && i < L ? dT[a][4 * q] : 0.0f,
                             j + 1 < i && i < L ? dT[a][4 * q + 1] : 0.0f,
                             j + 2 < i && i < L ? dT[a][4 * q + 2] : 0.0f,
                              j + 3 < i && i < L ? dT[a][4 * q + 3] : 0.0f),
                     sT + i * CH + j);
        }
    }
    barrier(CLK_LOCAL_MEM_FENCE);
    {
        float  x[TM][TNC];
        float4 tb[NB4][4];
        GDN_TILE_ZERO(x, TM, TNC);
        GDN_TILE_MMA4_RANGE(x, TM, TNC, sAi, CH, 4 * ty, 4 * TY, sT, CH, 4 * tx, 4 * TX, klo, L);
        for (int p = 0; p < NB4; p++) { /* Ai, 4 x 4 block (br, bc) */
            const int bi = tid + p * WG, br = 4 * (bi / (CH / 4)), bc = 4 * (bi % (CH / 4));
            for (int t = 0; t < 4; t++)
                tb[p][t] = GDN_LD4L(sAi + (br + t) * CH + bc);
        }
        barrier(CLK_LOCAL_MEM_FENCE);
        for (int p = 0; p < NB4; p++) { /* Ai^T: sAi[m 64 + n] = Ai(n, m) */
            const int bi = tid + p * WG, br = 4 * (bi / (CH / 4)), bc = 4 * (bi % (CH / 4));
            GDN_ST4L((float4)(tb[p][0].x, tb[p][1].x, tb[p][2].x, tb[p][3].x),
                     sAi + (bc + 0) * CH + br);
            GDN_ST4L((float4)(tb[p][0].y, tb[p][1].y, tb[p][2].y, tb[p][3].y),
                     sAi + (bc + 1) * CH + br);
            GDN_ST4L((float4)(tb[p][0].z, tb[p][1].z, tb[p][2].z, tb[p][3].z),
                     sAi + (bc + 2) * CH + br);
            GDN_ST4L((float4)(tb[p][0].w, tb[p][1].w, tb[p][2].w, tb[p][3].w),
                     sAi + (bc + 3) * CH + br);
        }
        for (int g = 0; g < TM / 4; g++) /* Z^T: sT[j 64 + i] = Z(i, j) */
            for (int b = 0; b < TNC; b++)
                GDN_ST4L((float4)(x[4 * g][b], x[4 * g + 1][b], x[4 * g + 2][b], x[4 * g + 3][b]),
                         sT + COL(b) * CH + ROW(4 * g));
        barrier(CLK_LOCAL_MEM_FENCE);
        GDN_TILE_ZERO(x, TM, TNC);
        GDN_TILE_MMA4_RANGE(x, TM, TNC, sT, CH, 4 * ty, 4 * TY, sAi, CH, 4 * tx, 4 * TX, 0, khi);
        barrier(CLK_LOCAL_MEM_FENCE);
        for (int a = 0; a < TM; a++) {
            const int   i = ROW(a);
            const float b = sB[i];
            for (int q = 0; q < TNC / 4; q++) {
                float d[4];
                for (int t = 0; t < 4; t++) {
                    const int  j  = COL(4 * q + t);
                    const bool on = j < i && i < L;
                    d[t] = on ? -x[a][4 * q + t] * exp2(on ? sG[i] - sG[j] : 0.0f) : 0.0f;
                    x[a][4 * q + t] = d[t];
                }
                GDN_ST4L((float4)(d[0] * b, d[1] * b, d[2] * b, d[3] * b),
                         sT + i * CH + COL(4 * q));
            }
        }
        for (int g = 0; g < TM / 4; g++) /* dA^T: sAi[j 64 + i] = dA(i, j) */
            for (int b = 0; b < TNC; b++)
                GDN_ST4L((float4)(x[4 * g][b], x[4 * g + 1][b], x[4 * g + 2][b], x[4 * g + 3][b]),
                         sAi + COL(b) * CH + ROW(4 * g));
    }

    /* k k^T over K tiles of k^T in sX. */
    float kk[TM][TNC];
    GDN_TILE_ZERO(kk, TM, TNC);
    for (int k0 = 0; k0 < K_DIM; k0 += BK) {
        barrier(CLK_LOCAL_MEM_FENCE);
        WY_PUT_T(pa, BK, x, sX, 0, sX, LDRK);
        barrier(CLK_LOCAL_MEM_FENCE);
        WY_LOAD_STEP(NKT + NVT + k0 / BK + 1);
        WY_MMA4_LOWER(kk, sX, LDT, sX, LDT, BK);
    }

    /* Phase 4: K tiles again: dk += dA k beta + dA^T (beta k). */
    for (int k0 = 0; k0 < K_DIM; k0 += BK) {
        barrier(CLK_LOCAL_MEM_FENCE);
        for (int p = 0; p < NPT; p++) {
            const int idx = tid + p * WG;
            if (idx < CH * BK / 4)
                GDN_ST4L(pa[p], sX + GDN_TILE_T_ROW(idx, BK) * LDRK + GDN_TILE_T_COL(idx, BK));
        }
        barrier(CLK_LOCAL_MEM_FENCE);
        WY_LOAD_STEP(2 * NKT + NVT + k0 / BK + 1);
        float4 td[TM][TNK / 4]; /* dk of the tail, loaded before the products */
        for (int a = 0; a < TM; a++)
            for (int q = 0; q < TNK / 4; q++) {
                const int i = ROW(a);
                td[a][q]    = i < L ? GDN_LD4G(dkh + ((ulong)(t0 + i) * HV + hv) * K_DIM + k0 +
                                                    COL(4 * q))
                                    : (float4)(0.0f);
            }
        float dkb[TM][TNK], dkt[TM][TNK];
        GDN_TILE_ZERO(dkb, TM, TNK);
        GDN_TILE_ZERO(dkt, TM, TNK);
        GDN_TILE_MMA4_RANGE(dkb, TM, TNK, sAi, CH, 4 * ty, 4 * TY, sX, LDRK, 4 * tx, 4 * TX, 0,
                            khi);
        GDN_TILE_MMA4_RANGE(dkt, TM, TNK, sT, CH, 4 * ty, 4 * TY, sX, LDRK, 4 * tx, 4 * TX, klo + 1,
                            L);
        for (int a = 0; a < TM; a++) {
            const int   i = ROW(a);
            const float b = sB[i];
            for (int q = 0; q < TNK / 4; q++) {
                const int    cc = COL(4 * q);
                const float4 kv = GDN_LD4L(sX + i * LDRK + cc);
                for (int t = 0; t < 4; t++)
                    dbp[a] += dkb[a][4 * q + t] * F4(kv, t);
                if (i < L) {
                    __global float *o = dkh + ((ulong)(t0 + i) * HV + hv) * K_DIM + k0 + cc;
                    float4          d = td[a][q];
                    d += (float4)(fma(dkb[a][4 * q], b, dkt[a][4 * q]),
                                  fma(dkb[a][4 * q + 1], b, dkt[a][4 * q + 1]),
                                  fma(dkb[a][4 * q + 2], b, dkt[a][4 * q + 2]),
                                  fma(dkb[a][4 * q + 3], b, dkt[a][4 * q + 3]));
                    GDN_ST4G(d, o);
                }
            }
        }
    }

    /* Phase 5: P = (beta o dA) o (k k^T); row and column sums; reductions. */
    float colp[TNC];
    for (int b = 0; b < TNC; b++)
        colp[b] = 0.0f;
    for (int a = 0; a < TM; a++) {
        const int i = ROW(a);
        for (int q = 0; q < TNC / 4; q++) {
            const float4 da = GDN_LD4L(sT + i * CH + COL(4 * q));
            for (int t = 0; t < 4; t++) {
                const float p = F4(da, t) * kk[a][4 * q + t];
                dgp[a] += p;
                colp[4 * q + t] += p;
            }
        }
    }
    WY_BWD_SUMS(sT, ROW, COL);
}
#endif /* VEC */
