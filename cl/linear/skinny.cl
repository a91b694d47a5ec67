/*
 * linear/skinny.cl - the "skinny" GEMM of gdn__gemm (lib/ops/linear/gemm.c):
 *
 *   C[M, N] = alpha * A[M, K] B[N, K]^T + beta * C        (NT, row-major)
 *
 * for few rows M (the tokens of a decode step: A = x, B = W [N, K]), where a
 * GEMM is bound by reading W once. Each of `batch` products uses
 * A + off_a + b stride_a, B + off_b + b stride_b, C + off_c + b stride_c;
 * row strides lda, ldb (>= K) and ldc (>= N). beta == 0: C is not read
 * (NaN in C does not propagate).
 *
 * Work decomposition. A work-group has WG = KS * NC work-items: work-item
 * lid is lane kl = lid % KS of column slot c = lid / KS. It owns the output
 * columns (rows of W) n0 + c NPI + j, j < NPI, of its column block
 * (NC * NPI columns per group) and the MT rows m0 .. m0 + MT - 1 of one row
 * tile. The KS lanes of a slot split K in quads (4 floats): lane kl takes
 * quads kl, kl + KS, kl + 2 KS, ... so consecutive lanes read consecutive
 * 16-byte pieces of each W row (coalesced along K). Each W element is read
 * from global memory once per row tile (A rows beyond MT: more row tiles,
 * placed next to each other in the grid so they share W through the cache).
 *
 * K is walked in tiles of KT = 4 KS QT floats: the group copies the MT x KT
 * tile of A (rows past M and columns past K as zeros) into local memory,
 * then each lane does QT quads of its NPI W rows against the MT rows of the
 * tile, accumulating MT x NPI floats in registers. Full tiles run an
 * unrolled loop without bounds checks; the last, partial tile checks each
 * quad (a quad past K is skipped, a quad cut by K is read element-wise).
 *
 * The KS partial sums of each output are then added by a fixed tree in local
 * memory (RC columns per round, NPI / RC rounds; the same local array as the
 * A tile), and lane results go to C as alpha * sum (+ beta * C).
 *
 * Summation order (deterministic: the same bits every run): lane kl adds
 * x[k] w[k] for its quads in increasing k, within a quad in order .x .y .z
 * .w; then the tree adds lanes pairwise (kl + s into kl for s = KS/2, ...,
 * 1). The order depends on KS only, not on M, MT, QT, NC or NPI (a row of A
 * is summed in the same order in a product of 1 row or of 64 rows when the
 * plan's KS is the same; the bits then also agree unless the compiler
 * contracts a * b + c into fma differently in the two builds).
 *
 * Loads of W: with VEC = 1 (host: off_b, ldb and stride_b multiples of 4
 * floats and 16-byte aligned buffers) W quads are float4 loads; with
 * VEC = 0 four scalar loads (any float offset). The A tile is copied with
 * scalar loads (coalesced along K; A is small). Rows of W past N
 * are clamped to row N - 1 (read, never written), so the loops need no
 * column checks.
 *
 * Grid (1-D; NVIDIA limits the other dimensions to 65535 groups):
 * groups = batch * n_blocks * m_tiles; group g -> row tile g % m_tiles,
 * column block (g / m_tiles) % n_blocks, product g / (m_tiles n_blocks).
 *
 * Macros (host plan: gdn__gemm_skinny_plan and skinny_defaults in
 * lib/ops/linear/gemm_skinny.c):
 *   MT   rows of A per group (accumulator rows)            1 .. 16
 *   NPI  W rows (output columns) per work-item             1 .. 8
 *   KS   lanes splitting K (power of two)                  1 .. 256
 *   NC   column slots per group (power of two)             1 .. 256
 *   QT   quads per lane per K tile                         1 .. 8
 *   RC   columns per reduction round (divides NPI)
 *   VEC  1: float4 loads of W
 * Local memory: max(MT KT, WG MT RC) floats (MT KT when KS = 1), rounded up
 * to a multiple of 4.
 */
#include "gdn_common.clh"

#ifndef MT
#    define MT 1
#endif
#ifndef NPI
#    define NPI 4
#endif
#ifndef KS
#    define KS 64
#endif
#ifndef NC
#    define NC 4
#endif
#ifndef QT
#    define QT 1
#endif
#ifndef RC
#    define RC 1
#endif
#ifndef VEC
#    define VEC 0
#endif

#define WG       (KS * NC)
#define KT       (4 * KS * QT)
#define KT4      (KS * QT)
#define LM_X     (MT * KT)
#if KS > 1
#    define LM_R (WG * MT * RC)
#else
#    define LM_R 0 /* no reduction */
#endif
#define LM_MAX   (LM_X > LM_R ? LM_X : LM_R)
#define LM4      ((LM_MAX + 3) / 4)
#define NB_COLS  (NC * NPI)

#if NPI % RC != 0
#    error "RC must divide NPI"
#endif

/* A full quad of W row p at element k. */
static float4 load_quad(__global const float *p, int k)
{
#if VEC
    return *(__global const float4 *)(p + k);
#else
    return (float4)(p[k], p[k + 1], p[k + 2], p[k + 3]);
#endif
}

/* A quad that K may cut: elements at or past K read as 0. */
static float4 load_quad_tail(__global const float *p, int k, int K)
{
    float4 v = (float4)(0.0f);
    v.x      = p[k];
    if (k + 1 < K)
        v.y = p[k + 1];
    if (k + 2 < K)
        v.z = p[k + 2];
    if (k + 3 < K)
        v.w = p[k + 3];
    return v;
}

/* acc[m][j] += x_m . w_j over one quad (quad q of the A tile xs), in the
 * fixed order .x .y .z .w. A macro, not a function: PoCL 3.1 miscompiled
 * the function version taking acc by pointer (NaN results for NPI > 1).
 * Loops of constant trip count, unrolled by the compilers. */
#define QUAD_FMA(q)                                                                                \
    for (int m_ = 0; m_ < MT; m_++) {                                                              \
        const float4 xv_ = xs[m_ * KT4 + (q)];                                                     \
        for (int j_ = 0; j_ < NPI; j_++) {                                                         \
            float a_ = acc[m_][j_];                                                                \
            a_ += xv_.x * wv[j_].x;                                                                \
            a_ += xv_.y * wv[j_].y;                                                                \
            a_ += xv_.z * wv[j_].z;                                                                \
            a_ += xv_.w * wv[j_].w;                                                                \
            acc[m_][j_] = a_;                                                                      \
        }                                                                                          \
    }

/* alpha * v (+ beta * C[m, n]) into C (beta == 0: C is not read). */
static void store_c(__global float *cp, float v, float alpha, float beta)
{
    v *= alpha;
    if (beta != 0.0f)
        v += beta * *cp;
    *cp = v;
}

__kernel __attribute__((reqd_work_group_size(WG, 1, 1)))
void gemm_skinny_nt(int M, int N, int K, float alpha, float beta,
                    __global const float *A, ulong off_a, ulong lda, ulong stride_a,
                    __global const float *B, ulong off_b, ulong ldb, ulong stride_b,
                    __global float *C, ulong off_c, ulong ldc, ulong stride_c,
                    int n_blocks, int m_tiles)
{
    __local float4 xs[LM4];
    __local float *ls = (__local float *)xs;

    const int   lid   = (int)get_local_id(0);
    const int   kl    = lid % KS;
    const int   c     = lid / KS;
    const ulong g     = get_group_id(0);
    const int   mt    = (int)(g % (ulong)m_tiles);
    const ulong rest  = g / (ulong)m_tiles;
    const int   nb    = (int)(rest % (ulong)n_blocks);
    const ulong bi    = rest / (ulong)n_blocks;
    const int   m0    = mt * MT;
    const int   mrows = min(MT, M - m0);
    const int   ncol0 = nb * NB_COLS; /* first column of the group */
    const int   n0    = ncol0 + c * NPI;

    __global const float *a  = A + off_a + bi * stride_a + (ulong)m0 * lda;
    __global float       *cb = C + off_c + bi * stride_c + (ulong)m0 * ldc;
    __global const float *w[NPI];
    float                 acc[MT][NPI];

#pragma unroll
    for (int j = 0; j < NPI; j++)
        w[j] = B + off_b + bi * stride_b + (ulong)min(n0 + j, N - 1) * ldb;
#pragma unroll
    for (int m = 0; m < MT; m++)
#pragma unroll
        for (int j = 0; j < NPI; j++)
            acc[m][j] = 0.0f;

    for (int kt = 0; kt < K; kt += KT) {
        if (kt)
            barrier(CLK_LOCAL_MEM_FENCE); /* the previous tile is consumed */
        for (int i = lid; i < MT * KT; i += WG) {
            const int m = i / KT, k = i - m * KT;
            ls[i]       = (m < mrows && kt + k < K) ? a[(ulong)m * lda + (ulong)(kt + k)] : 0.0f;
        }
        barrier(CLK_LOCAL_MEM_FENCE);
        if (kt + KT <= K) {
#pragma unroll
            for (int i = 0; i < QT; i++) {
                const int q = kl + i * KS;
                float4    wv[NPI];
#pragma unroll
                for (int j = 0; j < NPI; j++)
                    wv[j] = load_quad(w[j], kt + 4 * q);
                QUAD_FMA(q)
            }
        } else {
            for (int q = kl; kt + 4 * q < K; q += KS) {
                const int k = kt + 4 * q;
                float4    wv[NPI];
                if (k + 4 <= K) {
#pragma unroll
                    for (int j = 0; j < NPI; j++)
                        wv[j] = load_quad(w[j], k);
                } else {
#pragma unroll
                    for (int j = 0; j < NPI; j++)
                        wv[j] = load_quad_tail(w[j], k, K);
                }
                QUAD_FMA(q)
            }
        }
    }

#if KS == 1
    /* no lanes to combine: write from registers */
#pragma unroll
    for (int m = 0; m < MT; m++)
#pragma unroll
        for (int j = 0; j < NPI; j++)
            if (m < mrows && n0 + j < N)
                store_c(cb + (ulong)m * ldc + (ulong)(n0 + j), acc[m][j], alpha, beta);
#else
    /* Rows of the reduction: r = (c MT + m) RC + jj, KS lanes each. */
#pragma unroll
    for (int r0 = 0; r0 < NPI; r0 += RC) {
        barrier(CLK_LOCAL_MEM_FENCE); /* the A tile (or the previous round) is consumed */
#pragma unroll
        for (int m = 0; m < MT; m++)
#pragma unroll
            for (int jj = 0; jj < RC; jj++)
                ls[((c * MT + m) * RC + jj) * KS + kl] = acc[m][r0 + jj];
        barrier(CLK_LOCAL_MEM_FENCE);
        for (int s = KS / 2; s > 0; s >>= 1) {
            for (int i = lid; i < NC * MT * RC * s; i += WG) {
                const int r = i / s, l = i - r * s;
                ls[r * KS + l] += ls[r * KS + l + s];
            }
            barrier(CLK_LOCAL_MEM_FENCE);
        }
        for (int r = lid; r < NC * MT * RC; r += WG) {
            const int jj = r % RC, m = (r / RC) % MT, cc = r / (RC * MT);
            const int n  = ncol0 + cc * NPI + r0 + jj;
            if (m < mrows && n < N)
                store_c(cb + (ulong)m * ldc + (ulong)n, ls[r * KS], alpha, beta);
        }
    }
#endif
}
