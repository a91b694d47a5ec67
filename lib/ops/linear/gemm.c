/*
 * gemm.c - the backends of gdn__gemm / gdn__gemm_strided_batched (interface
 * and conventions in gemm.h): the skinny NT kernel for few rows
 * (gemm_skinny.c) and CLBlast for everything else, with status mapping with
 * CLBlast's error names, a process-wide lock (CLBlast 1.5.3 is not
 * thread-safe), per-device parameter overrides, profiling records, and the
 * K == 0 case.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <clblast_c.h>

#include "gemm.h"
#include "gemm_skinny.h"
#include "linear.h"

#if defined(_WIN32)
#    include <windows.h>
static SRWLOCK gemm_lock_ = SRWLOCK_INIT;
static void    gemm_lock(void)
{
    AcquireSRWLockExclusive(&gemm_lock_);
}
static void gemm_unlock(void)
{
    ReleaseSRWLockExclusive(&gemm_lock_);
}
#else
#    include <pthread.h>
static pthread_mutex_t gemm_lock_ = PTHREAD_MUTEX_INITIALIZER;
static void            gemm_lock(void)
{
    pthread_mutex_lock(&gemm_lock_);
}
static void gemm_unlock(void)
{
    pthread_mutex_unlock(&gemm_lock_);
}
#endif

const char *gdn__gemm_backend_name(void)
{
    return "CLBlast";
}

/* ------------------------------------------------------------ statuses */

static const char *clblast_name(CLBlastStatusCode s)
{
    switch (s) {
#define N_(x)                                                                                      \
    case x:                                                                                        \
        return #x;
        N_(CLBlastSuccess)
        N_(CLBlastOpenCLCompilerNotAvailable)
        N_(CLBlastTempBufferAllocFailure)
        N_(CLBlastOpenCLOutOfResources)
        N_(CLBlastOpenCLOutOfHostMemory)
        N_(CLBlastOpenCLBuildProgramFailure)
        N_(CLBlastInvalidValue)
        N_(CLBlastInvalidCommandQueue)
        N_(CLBlastInvalidMemObject)
        N_(CLBlastInvalidBinary)
        N_(CLBlastInvalidBuildOptions)
        N_(CLBlastInvalidProgram)
        N_(CLBlastInvalidProgramExecutable)
        N_(CLBlastInvalidKernelName)
        N_(CLBlastInvalidKernelDefinition)
        N_(CLBlastInvalidKernel)
        N_(CLBlastInvalidArgIndex)
        N_(CLBlastInvalidArgValue)
        N_(CLBlastInvalidArgSize)
        N_(CLBlastInvalidKernelArgs)
        N_(CLBlastInvalidLocalNumDimensions)
        N_(CLBlastInvalidLocalThreadsTotal)
        N_(CLBlastInvalidLocalThreadsDim)
        N_(CLBlastInvalidGlobalOffset)
        N_(CLBlastInvalidEventWaitList)
        N_(CLBlastInvalidEvent)
        N_(CLBlastInvalidOperation)
        N_(CLBlastInvalidBufferSize)
        N_(CLBlastInvalidGlobalWorkSize)
        N_(CLBlastNotImplemented)
        N_(CLBlastInvalidMatrixA)
        N_(CLBlastInvalidMatrixB)
        N_(CLBlastInvalidMatrixC)
        N_(CLBlastInvalidVectorX)
        N_(CLBlastInvalidVectorY)
        N_(CLBlastInvalidDimension)
        N_(CLBlastInvalidLeadDimA)
        N_(CLBlastInvalidLeadDimB)
        N_(CLBlastInvalidLeadDimC)
        N_(CLBlastInvalidIncrementX)
        N_(CLBlastInvalidIncrementY)
        N_(CLBlastInsufficientMemoryA)
        N_(CLBlastInsufficientMemoryB)
        N_(CLBlastInsufficientMemoryC)
        N_(CLBlastInsufficientMemoryX)
        N_(CLBlastInsufficientMemoryY)
        N_(CLBlastInsufficientMemoryTemp)
        N_(CLBlastInvalidBatchCount)
        N_(CLBlastInvalidOverrideKernel)
        N_(CLBlastMissingOverrideParameter)
        N_(CLBlastInvalidLocalMemUsage)
        N_(CLBlastNoHalfPrecision)
        N_(CLBlastNoDoublePrecision)
        N_(CLBlastInvalidVectorScalar)
        N_(CLBlastInsufficientMemoryScalar)
        N_(CLBlastDatabaseError)
        N_(CLBlastUnknownError)
        N_(CLBlastUnexpectedError)
#undef N_
    }
    return "CLBlast status unknown";
}

/* The gdn_status of a CLBlast status. Argument-class errors cannot come from
 * a validated op call, so they are INTERNAL. */
static gdn_status clblast_status(CLBlastStatusCode s)
{
    switch (s) {
    case CLBlastSuccess:
        return GDN_STATUS_OK;
    case CLBlastTempBufferAllocFailure:
        return GDN_STATUS_OUT_OF_DEVICE_MEMORY;
    case CLBlastOpenCLOutOfHostMemory:
        return GDN_STATUS_OUT_OF_HOST_MEMORY;
    case CLBlastOpenCLBuildProgramFailure:
    case CLBlastOpenCLCompilerNotAvailable:
        return GDN_STATUS_BUILD_FAILED;
    case CLBlastNotImplemented:
    case CLBlastInvalidLocalMemUsage:
    case CLBlastNoHalfPrecision:
    case CLBlastNoDoublePrecision:
        return GDN_STATUS_UNSUPPORTED;
    case CLBlastInvalidOverrideKernel:
    case CLBlastMissingOverrideParameter:
    case CLBlastDatabaseError:
        return GDN_STATUS_TUNE_DB;
    case CLBlastInvalidMatrixA:
    case CLBlastInvalidMatrixB:
    case CLBlastInvalidMatrixC:
    case CLBlastInvalidVectorX:
    case CLBlastInvalidVectorY:
    case CLBlastInvalidDimension:
    case CLBlastInvalidLeadDimA:
    case CLBlastInvalidLeadDimB:
    case CLBlastInvalidLeadDimC:
    case CLBlastInvalidIncrementX:
    case CLBlastInvalidIncrementY:
    case CLBlastInsufficientMemoryA:
    case CLBlastInsufficientMemoryB:
    case CLBlastInsufficientMemoryC:
    case CLBlastInsufficientMemoryX:
    case CLBlastInsufficientMemoryY:
    case CLBlastInsufficientMemoryTemp:
    case CLBlastInvalidBatchCount:
    case CLBlastInvalidVectorScalar:
    case CLBlastInsufficientMemoryScalar:
    case CLBlastUnknownError:
    case CLBlastUnexpectedError:
        return GDN_STATUS_INTERNAL;
    default:
        /* the OpenCL range (-1 .. -70): same mapping as the runtime */
        return (int)s > -1000 ? gdn__status_from_cl((cl_int)s) : GDN_STATUS_INTERNAL;
    }
}

/* ------------------------------------------------------------ overrides */

/* One CLBlastOverrideParameters call: every parameter of one kernel for the
 * devices whose name contains `device` (case-insensitive). */
struct clblast_override {
    const char *device;
    const char *kernel; /* "Xgemm", "XgemmDirect", "Copy", "Pad", "Transpose", ... */
    size_t      n;
    const char *names[20];
    size_t      values[20];
};

/* Built-in table. CLBlast 1.5.3 has no Hopper entry and runs its generic
 * NVIDIA Xgemm parameters there (64 x 32 tiles, 256 threads of 4 x 2
 * outputs). On the H200 (driver 580.159.04, bench_linear --gemm-only) a
 * 128 x 128 tile with 128 threads of 8 x 16 outputs (the GTX 1070 entry of
 * CLBlast's database) raised SGEMM from 31.2 to 42.4 TFLOP/s at n = 4096,
 * 33.4 to 45.6 at n = 8192, and the model's projection GEMMs (M = 4096,
 * D = 1536 / 2048, F = 6144 / 5632; NT, NN, TN) from 28-31 to 33-40 TFLOP/s.
 * Only measured on the H200; a proper search (CLBlast's tuner) may do better.
 * Order of the values as the names. */
#define XGEMM_NAMES                                                                                \
    {"GEMMK", "KREG", "KWG", "KWI", "MDIMA", "MDIMC", "MWG", "NDIMB", "NDIMC", "NWG", "SA", "SB",  \
     "STRM", "STRN", "VWM", "VWN"}
static const struct clblast_override builtin_overrides[] = {
    {"H200", "Xgemm", 16, XGEMM_NAMES, {0, 1, 16, 2, 32, 16, 128, 32, 8, 128, 1, 1, 1, 0, 4, 1}},
    {NULL, NULL, 0, {NULL}, {0}},
};

/* Devices whose overrides were applied (process-wide, under the lock). */
#define MAX_DEVICES 64
static cl_device_id applied_devices[MAX_DEVICES];
static int          n_applied;

static gdn_status apply_one(gdn_context *ctx, const char *kernel, size_t n, const char **names,
                            const size_t *values, const char *source)
{
    CLBlastStatusCode s =
        CLBlastOverrideParameters(ctx->dev.id, kernel, CLBlastPrecisionSingle, n, names, values);
    if (s != CLBlastSuccess)
        return gdn__fail(ctx, clblast_status(s),
                         "CLBlastOverrideParameters(%s, %zu parameters) from %s: %s (%d)", kernel, n,
                         source, clblast_name(s), (int)s);
    gdn__log(ctx, GDN_LOG_LEVEL_INFO, "CLBlast: %s parameters overridden from %s on %s", kernel,
             source, ctx->dev.info.name);
    return GDN_STATUS_OK;
}

/* Parse "Kernel:NAME=V,NAME=V;Kernel2:..." and apply each kernel's set. */
static gdn_status apply_env(gdn_context *ctx, const char *spec)
{
    char      *copy = gdn__strdup(spec), *save_k = NULL, *part;
    gdn_status st   = GDN_STATUS_OK;

    if (!copy)
        return gdn__fail(ctx, GDN_STATUS_OUT_OF_HOST_MEMORY, "GDN_CLBLAST_OVERRIDE: no memory");
    for (part = strtok_r(copy, ";", &save_k); part && !st; part = strtok_r(NULL, ";", &save_k)) {
        const char *names[32];
        size_t      values[32], n = 0;
        char       *colon = strchr(part, ':'), *save_p = NULL, *kv;
        if (!colon) {
            st = gdn__fail(ctx, GDN_STATUS_INVALID_ARGUMENT,
                           "GDN_CLBLAST_OVERRIDE: '%s' is not 'Kernel:NAME=V,...'", part);
            break;
        }
        *colon = '\0';
        for (kv = strtok_r(colon + 1, ",", &save_p); kv; kv = strtok_r(NULL, ",", &save_p)) {
            char *eq = strchr(kv, '='), *end = NULL;
            long  v;
            if (!eq || n == GDN_ARRAY_SIZE(names)) {
                st = gdn__fail(ctx, GDN_STATUS_INVALID_ARGUMENT,
                               "GDN_CLBLAST_OVERRIDE: bad or too many parameters at '%s'", kv);
                break;
            }
            *eq = '\0';
            v   = strtol(eq + 1, &end, 10);
            if (end == eq + 1 || *end || v < 0) {
                st = gdn__fail(ctx, GDN_STATUS_INVALID_ARGUMENT,
                               "GDN_CLBLAST_OVERRIDE: %s=%s is not a non-negative integer", kv,
                               eq + 1);
                break;
            }
            names[n]    = kv;
            values[n++] = (size_t)v;
        }
        if (!st)
            st = apply_one(ctx, part, n, names, values, "GDN_CLBLAST_OVERRIDE");
    }
    gdn__free(copy);
    return st;
}

/* Apply the built-in and environment overrides for ctx's device once per
 * process. Called with the lock held. */
static gdn_status apply_overrides(gdn_context *ctx)
{
    const char *env;
    gdn_status  st = GDN_STATUS_OK;
    size_t      i;
    int         d;

    for (d = 0; d < n_applied; d++)
        if (applied_devices[d] == ctx->dev.id)
            return GDN_STATUS_OK;
    env = getenv("GDN_CLBLAST_OVERRIDE");
    if (env && !strcmp(env, "none")) /* CLBlast's own parameters only */
        env = NULL;
    else
        for (i = 0; i < GDN_ARRAY_SIZE(builtin_overrides) && !st; i++) {
            const struct clblast_override *o = &builtin_overrides[i];
            if (o->device && gdn__strcasestr(ctx->dev.info.name, o->device))
                st = apply_one(ctx, o->kernel, o->n, (const char **)o->names, o->values,
                               "the built-in table");
        }
    if (!st && env && *env)
        st = apply_env(ctx, env);
    if (st)
        return st; /* not recorded: the next call reports the error again */
    if (n_applied < MAX_DEVICES)
        applied_devices[n_applied++] = ctx->dev.id;
    return GDN_STATUS_OK;
}

void gdn__gemm_release_caches(void)
{
    gemm_lock();
    CLBlastClearCache();
    n_applied = 0;
    gemm_unlock();
}

/* ------------------------------------------------------------ profiling */

/* Same record as gdn__launch makes, so bench_time sees CLBlast's time. The
 * event is CLBlast's last kernel (the indirect path also runs pad/transpose
 * kernels before it), so this slightly undercounts. */
static void prof_record(gdn_context *ctx, const char *name, cl_event ev)
{
    if (ctx->prof.n == ctx->prof.cap) {
        size_t               cap  = ctx->prof.cap ? 2 * ctx->prof.cap : 256;
        struct gdn_prof_rec *grow = gdn__realloc(ctx->prof.recs, cap * sizeof(*grow));
        if (!grow) {
            clReleaseEvent(ev);
            return;
        }
        ctx->prof.recs = grow;
        ctx->prof.cap  = cap;
    }
    ctx->prof.recs[ctx->prof.n].name = gdn__strdup(name);
    ctx->prof.recs[ctx->prof.n].ev   = ev;
    ctx->prof.n++;
}

/* ------------------------------------------------------------ GEMM */

static CLBlastTranspose tr(bool t)
{
    return t ? CLBlastTransposeYes : CLBlastTransposeNo;
}

gdn_status gdn__gemm_strided_batched(gdn_context *ctx, bool trans_a, bool trans_b, size_t M,
                                     size_t N, size_t K, float alpha, cl_mem A, size_t off_a,
                                     size_t lda, size_t stride_a, cl_mem B, size_t off_b,
                                     size_t ldb, size_t stride_b, float beta, cl_mem C,
                                     size_t off_c, size_t ldc, size_t stride_c, size_t batch)
{
    CLBlastStatusCode s;
    cl_event          ev  = NULL;
    cl_event         *evp = ctx->prof.on ? &ev : NULL;
    gdn_status        st;

    if (M == 0 || N == 0 || batch == 0)
        return GDN_STATUS_OK;
    if (K == 0) {
        /* C = beta C for each batch entry (CLBlast rejects K == 0). */
        size_t i;
        for (i = 0; i < batch; i++)
            if ((st = gdn__lin_scale(ctx, C, off_c + i * stride_c, M, N, ldc, beta)))
                return st;
        return GDN_STATUS_OK;
    }
    if (gdn__gemm_skinny_wanted(ctx, trans_a, trans_b, M, N, K, batch)) {
        bool ran = false;
        st = gdn__gemm_skinny(ctx, M, N, K, alpha, A, off_a, lda, stride_a, B, off_b, ldb,
                              stride_b, beta, C, off_c, ldc, stride_c, batch, &ran);
        if (st || ran)
            return st;
        /* no skinny plan fits this device: CLBlast */
    }
    gemm_lock();
    st = apply_overrides(ctx);
    if (st) {
        gemm_unlock();
        return st;
    }
    if (batch == 1)
        s = CLBlastSgemm(CLBlastLayoutRowMajor, tr(trans_a), tr(trans_b), M, N, K, alpha, A, off_a,
                         lda, B, off_b, ldb, beta, C, off_c, ldc, &ctx->queue, evp);
    else
        s = CLBlastSgemmStridedBatched(CLBlastLayoutRowMajor, tr(trans_a), tr(trans_b), M, N, K,
                                       alpha, A, off_a, lda, stride_a, B, off_b, ldb, stride_b,
                                       beta, C, off_c, ldc, stride_c, batch, &ctx->queue, evp);
    gemm_unlock();
    if (s != CLBlastSuccess)
        return gdn__fail(ctx, clblast_status(s),
                         "%s (%c%c, M=%zu N=%zu K=%zu, lda=%zu ldb=%zu ldc=%zu, batch %zu): %s (%d)",
                         batch == 1 ? "CLBlastSgemm" : "CLBlastSgemmStridedBatched",
                         trans_a ? 'T' : 'N', trans_b ? 'T' : 'N', M, N, K, lda, ldb, ldc, batch,
                         clblast_name(s), (int)s);
    if (ev)
        prof_record(ctx, batch == 1 ? "clblast_sgemm" : "clblast_sgemm_batched", ev);
    return GDN_STATUS_OK;
}

const char *gdn__gemm_path(gdn_context *ctx, bool trans_a, bool trans_b, size_t M, size_t N,
                           size_t K, size_t batch)
{
    if (M == 0 || N == 0 || batch == 0)
        return "none";
    if (K == 0)
        return "scale";
    if (gdn__gemm_skinny_wanted(ctx, trans_a, trans_b, M, N, K, batch)) {
        struct gdn_skinny_problem pr;
        struct gdn_skinny_plan    p;
        pr.M = (int64_t)M, pr.N = (int64_t)N, pr.K = (int64_t)K, pr.batch = (int64_t)batch;
        if (gdn__gemm_skinny_plan(ctx, &pr, &p))
            return "skinny";
    }
    return "clblast";
}

gdn_status gdn__gemm(gdn_context *ctx, bool trans_a, bool trans_b, size_t M, size_t N, size_t K,
                     float alpha, cl_mem A, size_t off_a, size_t lda, cl_mem B, size_t off_b,
                     size_t ldb, float beta, cl_mem C, size_t off_c, size_t ldc)
{
    return gdn__gemm_strided_batched(ctx, trans_a, trans_b, M, N, K, alpha, A, off_a, lda, 0, B,
                                     off_b, ldb, 0, beta, C, off_c, ldc, 0, 1);
}
