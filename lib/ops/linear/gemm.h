/*
 * gemm.h - the library's one internal matrix-product interface (fp32).
 *
 * Every op that needs a plain GEMM (linear layers, the SwiGLU MLP, the output
 * head, projections inside other ops) calls these two functions and nothing
 * else, so a faster GEMM (our own tensor-core kernels on NVIDIA, say) can
 * replace the backend in one file. The backends today (gemm.c):
 *   - skinny: our own kernel (cl/linear/skinny.cl, gemm_skinny.c) for NT
 *     products (trans_a false, trans_b true: y = x W^T) with few rows,
 *     by default 1 <= M <= 16 on GPUs and M <= 8 on other devices (CPUs):
 *     the linear layers of a decode step, which are bound by reading W
 *     once (thresholds explained in gemm_skinny.h). Each group streams a block of W rows
 *     once with coalesced float4 loads along K and keeps the rows of A in
 *     local memory; deterministic summation order (same bits every run).
 *   - CLBlast 1.5.3: CLBlastSgemm and CLBlastSgemmStridedBatched for the
 *     rest, and for skinny shapes where no skinny plan fits the device.
 *
 * GDN_SKINNY (read at every call): unset or empty = the skinny path for
 * M up to the device's default (16 on GPUs, 8 elsewhere), 0 = never
 * (CLBlast only, e.g. to compare in a benchmark), a positive integer n =
 * for M <= n on any device. Its tile sizes are the tuning stage
 * "linear/skinny" (GDN_TUNE, see gemm_skinny.h).
 *
 * Conventions (BLAS, row-major):
 *   C[M, N] = alpha * op(A) op(B) + beta * C
 *   op(A) is [M, K]: A itself (trans_a false, A stored [M, K] with row stride
 *   lda >= K) or A^T (trans_a true, A stored [K, M], lda >= M); likewise
 *   op(B) is [K, N] from B [K, N] (ldb >= N) or B^T from B [N, K] (ldb >= K).
 *   C is [M, N] with row stride ldc >= N. Offsets, leading dimensions and
 *   batch strides are in elements (floats), not bytes.
 *   beta == 0 means C is not read (NaN in C does not propagate).
 *   M == 0 or N == 0: nothing is enqueued. K == 0: C = beta * C (an own
 *   kernel; CLBlast rejects K == 0).
 * The call enqueues on ctx's queue and returns; errors are recorded on ctx
 * (CLBlast failures with the CLBlast status name; gdn_context_last_error).
 *
 * Threading: CLBlast 1.5.3's program cache is not thread-safe, so every
 * CLBlast call is serialised by one process-wide lock (contexts used from
 * different threads stay correct, they just do not overlap host-side GEMM
 * submission). CLBlast compiles its kernels per OpenCL context at first use
 * and keeps them in memory only (seconds on PoCL the first time, then served
 * from PoCL's own cache).
 *
 * Tuning: CLBlast has no database entry for some devices (NVIDIA H200). Its
 * parameters can be overridden per device (CLBlastOverrideParameters) from
 * the built-in table in gemm.c (keyed by a substring of the device name) and
 * from the environment variable GDN_CLBLAST_OVERRIDE, applied once per
 * device before its first GEMM:
 *   GDN_CLBLAST_OVERRIDE="Xgemm:GEMMK=0,KREG=1,KWG=32,...;XgemmDirect:WGD=32,..."
 * (a kernel name, then every parameter of that kernel; CLBlast rejects
 * partial sets with CLBlastMissingOverrideParameter). The variable's sets
 * are applied after the built-in ones (so they win);
 * GDN_CLBLAST_OVERRIDE=none skips the built-in table (CLBlast's own
 * parameters only).
 */
#ifndef GDN_OPS_LINEAR_GEMM_H
#define GDN_OPS_LINEAR_GEMM_H

#include "runtime.h"

/* C = alpha op(A) op(B) + beta C (see the conventions above). */
gdn_status gdn__gemm(gdn_context *ctx, bool trans_a, bool trans_b, size_t M, size_t N, size_t K,
                     float alpha, cl_mem A, size_t off_a, size_t lda, cl_mem B, size_t off_b,
                     size_t ldb, float beta, cl_mem C, size_t off_c, size_t ldc);

/* `batch` independent products of the same shape; product i uses
 * A + off_a + i * stride_a, B + off_b + i * stride_b, C + off_c + i * stride_c.
 * batch == 0 enqueues nothing. */
gdn_status gdn__gemm_strided_batched(gdn_context *ctx, bool trans_a, bool trans_b, size_t M,
                                     size_t N, size_t K, float alpha, cl_mem A, size_t off_a,
                                     size_t lda, size_t stride_a, cl_mem B, size_t off_b,
                                     size_t ldb, size_t stride_b, float beta, cl_mem C,
                                     size_t off_c, size_t ldc, size_t stride_c, size_t batch);

/* Which backend gdn__gemm_strided_batched gives a call of this shape (batch
 * 1 for gdn__gemm) on ctx's device, with GDN_SKINNY as it is now: "none"
 * (nothing to do), "scale" (K == 0), "skinny" or "clblast". Static string.
 * (A skinny plan that the compiled kernel cannot run, which is only known
 * after the build, also goes to CLBlast; gdn__gemm_skinny_launches() in
 * gemm_skinny.h counts what really ran.) */
const char *gdn__gemm_path(gdn_context *ctx, bool trans_a, bool trans_b, size_t M, size_t N,
                           size_t K, size_t batch);

/* Name of the general backend, for logs and benchmarks ("CLBlast"). Static. */
const char *gdn__gemm_backend_name(void);

/* CLBlast's program cache holds a reference to every OpenCL context that ran
 * a GEMM, until the process exits (so such a context is never freed). The
 * runtime may call this when a context is freed: it empties CLBlast's caches
 * (for every context; the others recompile, from the driver's cache, at
 * their next GEMM) and forgets which devices got parameter overrides (they
 * are applied again). Not wired into context.c yet. */
void gdn__gemm_release_caches(void);

#endif /* GDN_OPS_LINEAR_GEMM_H */
