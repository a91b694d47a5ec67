/*
 * loss/linear.cl - the small non-GEMM parts of a linear layer (the matrix
 * products go through lib/ops/linear/gemm.c, CLBlast).
 *
 *   linear_bias_fwd        y[i, j] = (acc ? y[i, j] : 0) + b[j]
 *                          y [M, N] row-major (N = G * out), b [N].
 *                          One group: WG columns of one row; groups =
 *                          M * ceil(N / WG), group g -> row g / nb, column
 *                          block g % nb.
 *   linear_colsum_partial  part[c, j] = sum_{i in [c R, min((c+1) R, M))} dy[i, j]
 *                          (rows in increasing order). One group: WG columns
 *                          of one row chunk c; groups = C * ceil(N / WG).
 *   linear_colsum_final    db[j] = (acc ? db[j] : 0) + sum_{c < C} part[c, j]
 *                          (chunks in increasing order). groups = ceil(N / WG).
 *                          The two passes make the column sums deterministic
 *                          (no atomics) with C * nb groups of parallelism.
 *   linear_scale           C[off + i ldc + j] = beta == 0 ? 0 : beta C[...]
 *                          for i < rows, j < cols (a GEMM with K = 0);
 *                          groups = rows * ceil(cols / WG).
 *
 * Offsets into big buffers are ulong. No barriers, no local memory.
 *
 * Tuning macros (host plans in lib/ops/linear/linear.c, *_plan_default):
 *   WG   work-items per group, a power of two the device allows (default 256)
 */
#include "gdn_common.clh"

#ifndef WG
#define WG 256
#endif

__kernel __attribute__((reqd_work_group_size(WG, 1, 1)))
void linear_bias_fwd(__global const float *b, __global float *y, int N, int nb, int accumulate)
{
    const ulong g   = get_group_id(0);
    const ulong row = g / (ulong)nb;
    const int   j   = (int)(g % (ulong)nb) * WG + (int)get_local_id(0);
    if (j < N) {
        const ulong i = row * (ulong)N + (ulong)j;
        y[i]          = accumulate ? y[i] + b[j] : b[j];
    }
}

__kernel __attribute__((reqd_work_group_size(WG, 1, 1)))
void linear_colsum_partial(__global const float *dy, __global float *part, int M, int N, int R,
                           int nb)
{
    const int g  = (int)get_group_id(0);
    const int c  = g / nb;
    const int j  = (g % nb) * WG + (int)get_local_id(0);
    const int i0 = c * R;
    const int i1 = min(i0 + R, M);
    if (j < N) {
        float s = 0.0f;
        for (int i = i0; i < i1; i++)
            s += dy[(ulong)i * (ulong)N + (ulong)j];
        part[(ulong)c * (ulong)N + (ulong)j] = s;
    }
}

__kernel __attribute__((reqd_work_group_size(WG, 1, 1)))
void linear_colsum_final(__global const float *part, __global float *db, int N, int C,
                         int accumulate)
{
    const int j = (int)get_global_id(0);
    if (j < N) {
        float s = 0.0f;
        for (int c = 0; c < C; c++)
            s += part[(ulong)c * (ulong)N + (ulong)j];
        db[j] = accumulate ? db[j] + s : s;
    }
}

__kernel __attribute__((reqd_work_group_size(WG, 1, 1)))
void linear_scale(__global float *C, ulong off, int cols, ulong ldc, int nb, float beta)
{
    const ulong g   = get_group_id(0);
    const ulong row = g / (ulong)nb;
    const int   j   = (int)(g % (ulong)nb) * WG + (int)get_local_id(0);
    if (j < cols) {
        const ulong i = off + row * ldc + (ulong)j;
        C[i]          = beta == 0.0f ? 0.0f : beta * C[i];
    }
}
