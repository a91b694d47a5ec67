/*
 * bench_util.c - ceilings, timing statistics and result files for bench/.
 */
#define _POSIX_C_SOURCE 200809L
#include "bench_util.h"
#include "tune/tune.h"

#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#ifndef GDN_GIT_REV
#    define GDN_GIT_REV "unknown"
#endif

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

void bench_stats_of(double *ms, int n, struct bench_stats *out)
{
    memset(out, 0, sizeof(*out));
    if (n <= 0)
        return;
    qsort(ms, (size_t)n, sizeof(*ms), cmp_double);
    out->n      = n;
    out->min    = ms[0];
    out->median = n % 2 ? ms[n / 2] : 0.5 * (ms[n / 2 - 1] + ms[n / 2]);
    out->p10    = ms[(n - 1) / 10];
    out->p90    = ms[(n - 1) - (n - 1) / 10];
}

gdn_status bench_time(gdn_context *ctx, bench_fn fn, void *arg, int warmup, int reps,
                      struct bench_stats *wall, struct bench_stats *device,
                      struct gdn_prof_sum **prof_out, size_t *nprof_out)
{
    double              *w = calloc((size_t)reps, sizeof(double));
    double              *d = calloc((size_t)reps, sizeof(double));
    struct gdn_prof_sum *sums = NULL;
    size_t               nsums = 0, j;
    gdn_status           st = GDN_STATUS_OK;
    int                  i;

    if (prof_out)
        *prof_out = NULL;
    if (nprof_out)
        *nprof_out = 0;
    if (!w || !d) {
        free(w);
        free(d);
        return GDN_STATUS_OUT_OF_HOST_MEMORY;
    }
    for (i = 0; i < warmup && !st; i++)
        st = fn(arg);
    if (!st)
        st = gdn_context_finish(ctx);
    /* Wall-clock pass: as a user calls it. */
    for (i = 0; i < reps && !st; i++) {
        double t0 = gdn__now();
        st        = fn(arg);
        if (!st)
            st = gdn_context_finish(ctx);
        w[i] = 1e3 * (gdn__now() - t0);
    }
    /* Device-time pass: sum of kernel times from profiling events. */
    for (i = 0; i < reps && !st; i++) {
        gdn__prof_enable(ctx, true);
        st = fn(arg);
        gdn__prof_enable(ctx, false);
        if (!st)
            st = gdn__prof_collect(ctx, &sums, &nsums);
        d[i] = 0;
        for (j = 0; j < nsums; j++)
            d[i] += sums[j].ms;
        if (i == reps - 1 && prof_out) {
            *prof_out  = sums;
            *nprof_out = nsums;
        } else {
            gdn__free(sums);
        }
        sums = NULL;
    }
    if (!st) {
        bench_stats_of(w, reps, wall);
        bench_stats_of(d, reps, device);
    }
    free(w);
    free(d);
    return st;
}

gdn_status bench_time_batched(gdn_context *ctx, bench_fn fn, void *arg, int calls, int reps,
                              struct bench_stats *per_call)
{
    double    *w = calloc((size_t)reps, sizeof(double));
    gdn_status st = GDN_STATUS_OK;
    int        i, j;

    if (!w)
        return GDN_STATUS_OUT_OF_HOST_MEMORY;
    for (i = -1; i < reps && !st; i++) { /* round -1: warm-up */
        double t0 = gdn__now();
        for (j = 0; j < calls && !st; j++)
            st = fn(arg);
        if (!st)
            st = gdn_context_finish(ctx);
        if (i >= 0)
            w[i] = 1e3 * (gdn__now() - t0) / calls;
    }
    if (!st)
        bench_stats_of(w, reps, per_call);
    free(w);
    return st;
}

static gdn_status time_kernel(gdn_context *ctx, cl_kernel k, size_t global, size_t local,
                              int reps, double *median_ms)
{
    double    *ms = calloc((size_t)reps, sizeof(double));
    gdn_status st = GDN_STATUS_OK;
    int        i;

    if (!ms)
        return GDN_STATUS_OUT_OF_HOST_MEMORY;
    for (i = -2; i < reps && !st; i++) {
        cl_event ev = NULL;
        cl_ulong t0 = 0, t1 = 0;
        cl_int   err;
        st = gdn__launch(ctx, k, 1, &global, &local, &ev);
        if (st)
            break;
        /* A kernel that fails while it runs (a fault) fails the wait. */
        err = clWaitForEvents(1, &ev);
        clGetEventProfilingInfo(ev, CL_PROFILING_COMMAND_START, sizeof(t0), &t0, NULL);
        clGetEventProfilingInfo(ev, CL_PROFILING_COMMAND_END, sizeof(t1), &t1, NULL);
        clReleaseEvent(ev);
        if (err != CL_SUCCESS)
            st = gdn__fail_cl(ctx, err, "bench: waiting for a ceiling kernel");
        else if (i >= 0)
            ms[i] = t1 > t0 ? 1e-6 * (double)(t1 - t0) : 0.0;
    }
    if (!st) {
        struct bench_stats s;
        bench_stats_of(ms, reps, &s);
        *median_ms = s.median;
    }
    free(ms);
    return st;
}

/* One optional ceiling: kernel `name` of cl/bench/ceiling.cl built with
 * defs (which switch it on), arguments (out, seed: int or float), `global`
 * work-items in groups of `local`, `flop` per launch. A failed build (which
 * includes the kernel's creation) or run is no error: returns 0 GFLOP/s,
 * writes "build failed" or "run failed" into why, logs the reason at INFO
 * and leaves the context's error state as it was. */
static double optional_ceiling(gdn_context *ctx, const struct gdn_define *defs, size_t ndefs,
                               const char *name, bool int_seed, cl_mem out, size_t global,
                               size_t local, int reps, double flop, char *why, size_t cap)
{
    const cl_int saved_cl_error = ctx->last_cl_error;
    const char  *stage          = "build";
    char         opts[256];
    cl_kernel    k  = NULL;
    double       ms = 0;
    gdn_status   st;

    why[0] = '\0';
    gdn__defines_format(defs, ndefs, opts, sizeof(opts));
    st = gdn__kernel_get(ctx, "bench/ceiling.cl", opts, name, &k);
    if (!st) {
        stage = "run";
        st    = gdn__arg_mem(ctx, k, 0, out);
        if (!st)
            st = int_seed ? gdn__arg_int(ctx, k, 1, 1) : gdn__arg_float(ctx, k, 1, 0.25f);
        if (!st)
            st = time_kernel(ctx, k, global, local, reps, &ms);
    }
    if (!st && ms > 0)
        return flop / (ms * 1e6);
    gdn__log(ctx, GDN_LOG_LEVEL_INFO, "bench: ceiling %s (%s) not available, %s failed: %s", name,
             opts, stage, st ? gdn_context_last_error(ctx) : "no device time measured");
    snprintf(why, cap, "%s failed", stage);
    gdn__clear_error(ctx);
    ctx->last_cl_error = saved_cl_error;
    return 0;
}

/* The ceilings that depend on the device's features (see bench_util.h),
 * measured last so that a kernel that faults cannot spoil the others. */
static gdn_status optional_ceilings(gdn_context *ctx, bool quick, struct bench_ceilings *c)
{
    static const char *const mma_names[3] = {"tf32", "bf16", "f16"};
    static const double      mma_flop[3]  = {2.0 * 16 * 8 * 8, 2.0 * 16 * 8 * 16,
                                             2.0 * 16 * 8 * 16};
    const uint32_t           flags        = ctx->dev.info.flags;
    const bool               gpu          = (flags & GDN_DEVICE_FLAG_GPU) != 0;
    const int                reps         = quick ? 3 : 20;
    const size_t             cu  = ctx->dev.info.compute_units ? ctx->dev.info.compute_units : 1;
    const size_t             global = cu * 256 * (gpu ? 64 : 1);
    char                     why[32];
    cl_mem                   out = NULL;
    gdn_status               st;

    c->fp16_advertised = (flags & GDN_DEVICE_FLAG_FP16) != 0;
    if ((st = gdn__buffer_create(ctx, global * sizeof(float), &out)))
        return st;

    /* FMA fed from local memory, per micro-tile shape (TM x TN): 8 groups of
     * 128 per compute unit on GPUs, one on CPUs. Plain OpenCL C, but it
     * needs 128 work-items and up to 24 KiB of local memory per group, so a
     * device without them gets n/a rather than no bench. */
    {
        static const int tiles[3][2] = {{4, 4}, {8, 4}, {8, 8}};
        const size_t     lglobal = cu * 128 * (gpu ? 8 : 1);
        const int        lk = 32, liters = quick ? 4 : 256;
        for (int t = 0; t < 3; t++) {
            const struct gdn_define defs[] = {{"WG_SIZE", 128}, {"ITERS", liters}, {"LK", lk},
                                              {"TM", tiles[t][0]}, {"TN", tiles[t][1]}};
            c->lfma_gflops[t] = optional_ceiling(
                ctx, defs, GDN_ARRAY_SIZE(defs), "gdn_bench_lfma", false, out, lglobal, 128, reps,
                2.0 * tiles[t][0] * tiles[t][1] * lk * liters * (double)lglobal, why, sizeof(why));
        }
    }

    /* fp16: the half kernel builds or it does not, whether or not the device
     * advertises cl_khr_fp16 (NVIDIA builds half arithmetic without
     * advertising it). Not tried on CPUs that do not advertise it: PoCL has
     * no half type, and its failed build prints pages of errors on stderr.
     * 16 FLOP per half8 step (8 x mul + add). */
    if (!c->fp16_advertised && !gpu) {
        snprintf(c->fp16_note, sizeof(c->fp16_note),
                 "cl_khr_fp16 not advertised; not tried on a CPU device");
    } else {
        const int               chains = 8, iters = quick ? 256 : 2048;
        const struct gdn_define defs[] = {
            {"WG_SIZE", 256}, {"CHAINS", chains}, {"ITERS", iters}, {"GDN_CEIL_HALF", 1}};
        c->fp16_gflops = optional_ceiling(ctx, defs, GDN_ARRAY_SIZE(defs), "gdn_bench_fma_half",
                                          false, out, global, 256, reps,
                                          16.0 * chains * iters * (double)global, why,
                                          sizeof(why));
        snprintf(c->fp16_note, sizeof(c->fp16_note), "cl_khr_fp16 %sadvertised; %s",
                 c->fp16_advertised ? "" : "not ",
                 c->fp16_gflops > 0 ? "built with the pragma"
                 : !strcmp(why, "run failed") ? "built with the pragma, the run failed"
                                              : "the build with the pragma failed");
    }

    /* Tensor cores: inline PTX only where the device takes it; each type
     * builds and runs on its own, so one that fails leaves the others. */
    if (!(flags & GDN_DEVICE_FLAG_INLINE_PTX)) {
        snprintf(c->mma_note, sizeof(c->mma_note),
                 "no inline PTX: needs NVIDIA compute capability >= 8.0");
    } else {
        const int chains = 4, iters = quick ? 128 : 2048;
        double   *gf[3]  = {&c->mma_tf32_gflops, &c->mma_bf16_gflops, &c->mma_f16_gflops};
        size_t    n      = 0;
        int       t;
        for (t = 0; t < 3; t++) {
            const struct gdn_define defs[] = {{"WG_SIZE", 256},
                                              {"CHAINS", chains},
                                              {"ITERS", iters},
                                              {"GDN_CEIL_MMA", 1},
                                              {"MMA_TYPE", t}};
            /* one warp (32 work-items) issues each mma.sync: FLOP = warps x
             * ITERS x CHAINS x 2 m n k */
            *gf[t] = optional_ceiling(ctx, defs, GDN_ARRAY_SIZE(defs), "gdn_bench_mma", true, out,
                                      global, 256, reps,
                                      (double)(global / 32) * iters * chains * mma_flop[t], why,
                                      sizeof(why));
            if (*gf[t] <= 0 && n < sizeof(c->mma_note))
                n += (size_t)snprintf(c->mma_note + n, sizeof(c->mma_note) - n, "%s%s: %s",
                                      n ? ", " : "", mma_names[t], why);
        }
    }
    gdn__buffer_release(out);
    return GDN_STATUS_OK;
}

gdn_status bench_measure_ceilings(gdn_context *ctx, bool quick, struct bench_ceilings *c)
{
    const int               chains = 8, iters = quick ? 256 : 2048;
    char                    opts[256];
    cl_kernel               k;
    cl_mem                  a = NULL, b = NULL;
    size_t                  cu = ctx->dev.info.compute_units ? ctx->dev.info.compute_units : 1;
    size_t                  global, local = 256, bytes;
    double                  ms = 0;
    gdn_status              st;
    int                     reps = quick ? 3 : 20;

    memset(c, 0, sizeof(*c));
    /* Enough work-groups to fill every compute unit many times over. */
    global = cu * 256 * (ctx->dev.info.flags & GDN_DEVICE_FLAG_GPU ? 64 : 1);
    bytes  = global * sizeof(float);
    if ((st = gdn__buffer_create(ctx, bytes, &a)))
        return st;
    /* The best of three vector widths (a CPU's SIMD width is not known). */
    for (int vw = 4; vw <= 16; vw *= 2) {
        const struct gdn_define d[] = {{"WG_SIZE", 256}, {"CHAINS", chains}, {"ITERS", iters},
                                       {"CONTIGUOUS", 0}, {"VW", vw}};
        gdn__defines_format(d, GDN_ARRAY_SIZE(d), opts, sizeof(opts));
        if ((st = gdn__kernel_get(ctx, "bench/ceiling.cl", opts, "gdn_bench_fma", &k)) ||
            (st = gdn__arg_mem(ctx, k, 0, a)) || (st = gdn__arg_float(ctx, k, 1, 0.25f)) ||
            (st = time_kernel(ctx, k, global, local, reps, &ms)))
            goto out;
        const double gflops = 2.0 * vw * chains * iters * (double)global / (ms * 1e6);
        if (gflops > c->fma_gflops)
            c->fma_gflops = gflops;
    }

    /* Copy bandwidth: a buffer well beyond the caches. */
    bytes = ctx->dev.info.flags & GDN_DEVICE_FLAG_GPU ? ((size_t)512 << 20) : ((size_t)64 << 20);
    if (quick)
        bytes /= 8;
    gdn__buffer_release(a);
    a = NULL;
    if ((st = gdn__buffer_create(ctx, bytes, &a)) || (st = gdn__buffer_create(ctx, bytes, &b)) ||
        (st = gdn__fill_f32(ctx, a, bytes / 4, 1.0f)))
        goto out;
    {
        const bool              gpu         = (ctx->dev.info.flags & GDN_DEVICE_FLAG_GPU) != 0;
        const struct gdn_define copy_defs[] = {
            {"WG_SIZE", 256}, {"CHAINS", chains}, {"ITERS", iters}, {"CONTIGUOUS", gpu ? 0 : 1}};
        gdn__defines_format(copy_defs, GDN_ARRAY_SIZE(copy_defs), opts, sizeof(opts));
    }
    if ((st = gdn__kernel_get(ctx, "bench/ceiling.cl", opts, "gdn_bench_copy", &k)))
        goto out;
    global = cu * 256 * (ctx->dev.info.flags & GDN_DEVICE_FLAG_GPU ? 16 : 1);
    if ((st = gdn__arg_mem(ctx, k, 0, a)) || (st = gdn__arg_mem(ctx, k, 1, b)) ||
        (st = gdn__arg_int(ctx, k, 2, (int32_t)(bytes / 16))) ||
        (st = time_kernel(ctx, k, global, local, reps, &ms)))
        goto out;
    c->copy_gbs = 2.0 * (double)bytes / (ms * 1e6);

    /* Launch latency: a tiny copy, enqueue + finish, wall clock. */
    {
        double t0;
        int    i, n = quick ? 20 : 200;
        size_t g1 = 256;
        if ((st = gdn__arg_int(ctx, k, 2, 64)))
            goto out;
        if ((st = gdn__launch(ctx, k, 1, &g1, &local, NULL)) || (st = gdn_context_finish(ctx)))
            goto out;
        t0 = gdn__now();
        for (i = 0; i < n && !st; i++) {
            st = gdn__launch(ctx, k, 1, &g1, &local, NULL);
            if (!st)
                st = gdn_context_finish(ctx);
        }
        c->launch_us = 1e6 * (gdn__now() - t0) / n;
    }
    /* Host <-> device transfers: blocking writes / reads of the copy buffer
     * from ordinary (pageable) host memory, best of a few. */
    {
        void  *host = malloc(bytes);
        int    i, n = quick ? 2 : 5;
        double best_w = 0, best_r = 0;
        cl_int err  = CL_SUCCESS;
        if (!host) {
            st = GDN_STATUS_OUT_OF_HOST_MEMORY;
            goto out;
        }
        memset(host, 0, bytes);
        for (i = 0; i < n && err == CL_SUCCESS; i++) {
            double t0 = gdn__now(), t1;
            err       = clEnqueueWriteBuffer(ctx->queue, a, CL_TRUE, 0, bytes, host, 0, NULL, NULL);
            t1        = gdn__now();
            if (err == CL_SUCCESS && t1 > t0 && bytes / (t1 - t0) / 1e9 > best_w)
                best_w = bytes / (t1 - t0) / 1e9;
            t0  = gdn__now();
            err = err ? err : clEnqueueReadBuffer(ctx->queue, a, CL_TRUE, 0, bytes, host, 0, NULL, NULL);
            t1  = gdn__now();
            if (err == CL_SUCCESS && t1 > t0 && bytes / (t1 - t0) / 1e9 > best_r)
                best_r = bytes / (t1 - t0) / 1e9;
        }
        free(host);
        if (err != CL_SUCCESS) {
            st = gdn__fail_cl(ctx, err, "bench: host transfer");
            goto out;
        }
        c->h2d_gbs = best_w;
        c->d2h_gbs = best_r;
    }
    st = optional_ceilings(ctx, quick, c);
out:
    gdn__buffer_release(a);
    gdn__buffer_release(b);
    return st;
}

static void slug(const char *in, char *out, size_t cap)
{
    size_t n = 0;
    for (; *in && n + 1 < cap; in++) {
        char ch = (char)tolower((unsigned char)*in);
        if (isalnum((unsigned char)ch))
            out[n++] = ch;
        else if (n && out[n - 1] != '-')
            out[n++] = '-';
    }
    while (n && out[n - 1] == '-')
        n--;
    out[n] = '\0';
}

/* Where the tuned kernel parameters come from: the gated delta rule's tuned
 * stages at K = V = 128 (gdn_tune_describe), "stage=source, ...". The other
 * ops have no tuning rows yet: generic defaults. */
static void tuning_summary(gdn_context *ctx, char *out, size_t cap)
{
    char   text[4096], *line, *save = NULL;
    size_t n = 0;
    int    k;

    n += (size_t)snprintf(out, cap, "gated_delta K=V=128:");
    if (gdn_tune_describe(ctx, 128, 128, text, sizeof(text)) != GDN_STATUS_OK)
        text[0] = '\0';
    for (line = strtok_r(text, "\n", &save); line && n < cap;
         line = strtok_r(NULL, "\n", &save)) {
        const char *stage = line, *src = "?", *slash;
        size_t      len = strcspn(line, " "), ll = strlen(line);
        if ((slash = memchr(line, '/', len)) != NULL)
            len -= (size_t)(slash + 1 - line), stage = slash + 1;
        for (k = GDN_TUNE_SRC_GENERIC; k <= GDN_TUNE_SRC_OVERRIDE; k++) {
            const char *name = gdn__tune_source_name((enum gdn_tune_source)k);
            size_t      nl   = strlen(name);
            if (ll >= nl && !strcmp(line + ll - nl, name))
                src = name;
        }
        n += (size_t)snprintf(out + n, cap - n, " %.*s=%s,", (int)len, stage, src);
    }
    if (n < cap && n > 0 && out[n - 1] == ',')
        out[--n] = '\0';
    if (n < cap)
        snprintf(out + n, cap - n, "; other ops: generic defaults");
}

gdn_status bench_out_open(gdn_context *ctx, const char *dir, const char *op,
                          const struct bench_ceilings *c, struct bench_out *out)
{
    char       dev[96], path[1024], date[64], tuning[1024];
    time_t     now = time(NULL);
    struct tm  tmv;
    const gdn_device_info *d = &ctx->dev.info;

    const char *git = getenv("GDN_GIT_REV") && *getenv("GDN_GIT_REV") ? getenv("GDN_GIT_REV")
                                                                     : GDN_GIT_REV;

    memset(out, 0, sizeof(*out));
    if (!dir)
        return GDN_STATUS_OK;
    if (gdn__mkdirs(dir) != GDN_STATUS_OK)
        return GDN_STATUS_IO;
    slug(d->name, dev, sizeof(dev));
    tuning_summary(ctx, tuning, sizeof(tuning));
    gmtime_r(&now, &tmv);
    strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%SZ", &tmv);
    snprintf(path, sizeof(path), "%s/%s-%s.csv", dir, op, dev);
    out->csv = fopen(path, "w");
    snprintf(path, sizeof(path), "%s/%s-%s.json", dir, op, dev);
    out->json = fopen(path, "w");
    if (!out->csv || !out->json) {
        bench_out_close(out);
        return GDN_STATUS_IO;
    }
    fprintf(out->csv,
            "# op=%s device=\"%s\" platform=\"%s\" driver=\"%s\" libgdn=%s git=%s date=%s "
            "fma_gflops=%.1f copy_gbs=%.1f launch_us=%.2f h2d_gbs=%.2f d2h_gbs=%.2f "
            "lfma4x4_gflops=%.1f lfma8x4_gflops=%.1f lfma8x8_gflops=%.1f "
            "tuning=\"%s\" fp16_gflops=%.1f fp16_advertised=%d mma_tf32_gflops=%.1f "
            "mma_bf16_gflops=%.1f mma_f16_gflops=%.1f\n",
            op, d->name, d->platform_name, d->driver_version, gdn_version_string(), git,
            date, c->fma_gflops, c->copy_gbs, c->launch_us, c->h2d_gbs, c->d2h_gbs,
            c->lfma_gflops[0], c->lfma_gflops[1], c->lfma_gflops[2], tuning,
            c->fp16_gflops, c->fp16_advertised ? 1 : 0, c->mma_tf32_gflops, c->mma_bf16_gflops,
            c->mma_f16_gflops);
    fprintf(out->json,
            "{\n  \"op\": \"%s\",\n  \"device\": \"%s\",\n  \"platform\": \"%s\",\n"
            "  \"driver\": \"%s\",\n  \"libgdn\": \"%s\",\n  \"git\": \"%s\",\n"
            "  \"date\": \"%s\",\n  \"tuning\": \"%s\",\n"
            "  \"ceilings\": {\"fma_gflops\": %.1f, \"copy_gbs\": %.1f, \"launch_us\": %.2f, "
            "\"h2d_gbs\": %.2f, \"d2h_gbs\": %.2f, \"lfma4x4_gflops\": %.1f, "
            "\"lfma8x4_gflops\": %.1f, \"lfma8x8_gflops\": %.1f, \"fp16_gflops\": %.1f, "
            "\"fp16_advertised\": %s, \"mma_tf32_gflops\": %.1f, \"mma_bf16_gflops\": %.1f, "
            "\"mma_f16_gflops\": %.1f},\n"
            "  \"rows\": [",
            op, d->name, d->platform_name, d->driver_version, gdn_version_string(), git,
            date, tuning, c->fma_gflops, c->copy_gbs, c->launch_us, c->h2d_gbs, c->d2h_gbs,
            c->lfma_gflops[0], c->lfma_gflops[1], c->lfma_gflops[2], c->fp16_gflops,
            c->fp16_advertised ? "true" : "false", c->mma_tf32_gflops, c->mma_bf16_gflops,
            c->mma_f16_gflops);
    return GDN_STATUS_OK;
}

/* fmt is a list of `key=value` pairs separated by ';' (value printed as is:
 * numbers, or strings already quoted). csv_header names the keys in order. */
void bench_out_row(struct bench_out *out, const char *csv_header, const char *fmt, ...)
{
    char    line[2048], *p, *save = NULL;
    va_list ap;
    int     first = 1;

    if (!out->csv)
        return;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    if (ftell(out->csv) >= 0 && csv_header) {
        static const char *last_header;
        if (last_header != csv_header) {
            fprintf(out->csv, "%s\n", csv_header);
            last_header = csv_header;
        }
    }
    fprintf(out->json, "%s\n    {", out->json_rows++ ? "," : "");
    for (p = strtok_r(line, ";", &save); p; p = strtok_r(NULL, ";", &save)) {
        char *eq = strchr(p, '=');
        if (!eq)
            continue;
        *eq = '\0';
        fprintf(out->csv, "%s%s", first ? "" : ",", eq + 1);
        fprintf(out->json, "%s\"%s\": %s", first ? "" : ", ", p, eq + 1);
        first = 0;
    }
    fprintf(out->csv, "\n");
    fprintf(out->json, "}");
    /* A run cut short (a time limit) keeps every row it measured: the CSV is
     * complete up to there (the JSON then lacks only its closing brackets). */
    fflush(out->csv);
    fflush(out->json);
}

void bench_out_close(struct bench_out *out)
{
    if (out->json) {
        fprintf(out->json, "\n  ]\n}\n");
        fclose(out->json);
    }
    if (out->csv)
        fclose(out->csv);
    memset(out, 0, sizeof(*out));
}

const char *bench_arg_value(int argc, char **argv, int *i, const char *name)
{
    const char *a = argv[*i];
    size_t      n = strlen(name);
    if (strncmp(a, name, n))
        return NULL;
    if (a[n] == '=')
        return a + n + 1;
    if (a[n] == '\0' && *i + 1 < argc)
        return argv[++*i];
    return NULL;
}

bool bench_common_arg(int argc, char **argv, int *i, struct bench_opts *o)
{
    const char *a = argv[*i], *v;
    if (!strcmp(a, "--quick")) {
        o->quick = true;
        return true;
    }
    if (!strcmp(a, "--sweep")) {
        o->sweep = true;
        return true;
    }
    if ((v = bench_arg_value(argc, argv, i, "--out")))
        o->out_dir = v;
    else if ((v = bench_arg_value(argc, argv, i, "--device")))
        setenv("GDN_DEVICE", v, 1);
    else if ((v = bench_arg_value(argc, argv, i, "--reps")))
        o->reps = atoi(v);
    else if ((v = bench_arg_value(argc, argv, i, "--tokens")))
        o->tokens = atoi(v);
    else if ((v = bench_arg_value(argc, argv, i, "--window")))
        o->window = atoi(v);
    else
        return false;
    return true;
}

bool bench_no_sweep(const char *op, const struct bench_opts *o)
{
    if (!o->sweep || o->quick)
        return false;
    printf("%s: no scaling sweep (the sweeps are those of gated_delta, swa and mamba2); "
           "skipped\n",
           op);
    return true;
}

int bench_sweep_lengths(const struct bench_opts *o, bool gpu, int *tokens, int *T)
{
    int n = 0, t, tmin = 512;

    *tokens = o->tokens > 0 ? o->tokens : gpu ? 65536 : 8192;
    if (o->quick && o->tokens <= 0)
        *tokens = 256, tmin = 128;
    if (tmin > *tokens)
        tmin = *tokens;
    for (t = tmin; t <= *tokens && n < BENCH_SWEEP_MAX; t *= 2)
        T[n++] = t;
    return n;
}

void bench_sweep_report(struct bench_out *out, const struct bench_ceilings *c,
                        const struct bench_sweep_point *p, const struct bench_stats *wall,
                        const struct bench_stats *device)
{
    const double s    = wall->median * 1e-3;
    const double tps  = (double)p->B * p->T / s;
    const double gf   = p->flop / (s * 1e9), gb = p->bytes / (s * 1e9);
    const double ff   = c->fma_gflops > 0 ? gf / c->fma_gflops : 0;
    const double cf   = c->copy_gbs > 0 ? gb / c->copy_gbs : 0;
    const double roof = ff > cf ? ff : cf;

    printf("  %-12s %-8s B=%-4d T=%-6d wall %10.3f ms (p10 %.3f, p90 %.3f)  %10.0f tok/s  "
           "%8.1f GFLOP/s %7.1f GB/s  %5.1f%% of roofline\n",
           p->series, p->pass, p->B, p->T, wall->median, wall->p10, wall->p90, tps, gf, gb,
           100 * roof);
    fflush(stdout);
    bench_out_row(out, BENCH_SWEEP_HDR,
                  "what=\"sweep\";series=\"%s\";pass=\"%s\";B=%d;T=%d;shape=\"%s\";"
                  "wall_ms_median=%.4f;wall_ms_p10=%.4f;wall_ms_p90=%.4f;device_ms_median=%.4f;"
                  "tokens_per_s=%.1f;gflops=%.3f;gbs=%.3f;fma_peak_frac=%.4f;copy_frac=%.4f;"
                  "roofline_frac=%.4f",
                  p->series, p->pass, p->B, p->T, p->shape, wall->median, wall->p10, wall->p90,
                  device->median, tps, gf, gb, ff, cf, roof);
}

/* "%.1f" of a ceiling, or "n/a" for 0 (not available). */
static const char *gflops_or_na(double v, char *buf, size_t cap)
{
    if (v > 0)
        snprintf(buf, cap, "%.1f", v);
    else
        snprintf(buf, cap, "n/a");
    return buf;
}

int bench_begin(const char *op, struct bench_opts *o, gdn_context **ctx,
                struct bench_ceilings *ceil, struct bench_out *out)
{
    gdn_status st;

    memset(out, 0, sizeof(*out));
    if (o->quick && o->reps > 3)
        o->reps = 3;
    if (o->reps < 1)
        o->reps = 1;
    st = gdn_context_create(NULL, ctx);
    if (st) {
        fprintf(stderr, "bench: no context: %s\n", gdn_status_string(st));
        return st == GDN_STATUS_NO_DEVICE ? 77 : 1;
    }
    printf("device: %s (%s, driver %s), %u CUs\n", (*ctx)->dev.info.name,
           (*ctx)->dev.info.platform_name, (*ctx)->dev.info.driver_version,
           (*ctx)->dev.info.compute_units);
    st = bench_measure_ceilings(*ctx, o->quick, ceil);
    if (st) {
        fprintf(stderr, "bench: ceilings: %s: %s\n", gdn_status_string(st),
                gdn_context_last_error(*ctx));
        gdn_context_destroy(*ctx);
        *ctx = NULL;
        return 1;
    }
    printf("measured ceilings: fp32 FMA %.1f GFLOP/s, copy %.1f GB/s (read+write), launch+finish "
           "%.1f us, host->device %.2f GB/s, device->host %.2f GB/s\n",
           ceil->fma_gflops, ceil->copy_gbs, ceil->launch_us, ceil->h2d_gbs, ceil->d2h_gbs);
    {
        char lf[3][32];
        for (int t = 0; t < 3; t++)
            gflops_or_na(ceil->lfma_gflops[t], lf[t], sizeof(lf[t]));
        printf("measured ceilings: fp32 FMA from local memory, float4 micro-tiles 4x4 %s, 8x4 %s, "
               "8x8 %s GFLOP/s (%.0f%%, %.0f%%, %.0f%% of the FMA peak)\n",
               lf[0], lf[1], lf[2], 100 * ceil->lfma_gflops[0] / ceil->fma_gflops,
               100 * ceil->lfma_gflops[1] / ceil->fma_gflops,
               100 * ceil->lfma_gflops[2] / ceil->fma_gflops);
    }
    {
        char fp16[32], tf32[32], bf16[32], f16[32];
        if (ceil->fp16_gflops > 0)
            snprintf(fp16, sizeof(fp16), "%.1f GFLOP/s", ceil->fp16_gflops);
        else
            snprintf(fp16, sizeof(fp16), "n/a");
        printf("measured ceilings: fp16 FMA %s (%s), tensor mma.sync ", fp16, ceil->fp16_note);
        if (ceil->mma_tf32_gflops > 0 || ceil->mma_bf16_gflops > 0 || ceil->mma_f16_gflops > 0)
            printf("tf32 %s, bf16 %s, f16 %s GFLOP/s",
                   gflops_or_na(ceil->mma_tf32_gflops, tf32, sizeof(tf32)),
                   gflops_or_na(ceil->mma_bf16_gflops, bf16, sizeof(bf16)),
                   gflops_or_na(ceil->mma_f16_gflops, f16, sizeof(f16)));
        else
            printf("n/a");
        printf("%s%s%s\n", ceil->mma_note[0] ? " (" : "", ceil->mma_note,
               ceil->mma_note[0] ? ")" : "");
    }
    if (bench_out_open(*ctx, o->out_dir, op, ceil, out) != GDN_STATUS_OK)
        fprintf(stderr, "bench: cannot write results under %s\n", o->out_dir);
    return 0;
}

void bench_fill_uniform(float *x, size_t n, unsigned *seed, float lo, float hi)
{
    size_t i;
    for (i = 0; i < n; i++) {
        *seed = *seed * 1664525u + 1013904223u;
        x[i]  = lo + (hi - lo) * (float)(*seed >> 8) / (float)(1u << 24);
    }
}

gdn_status bench_random_tensor(gdn_context *ctx, int nd, const int64_t *shape, unsigned *seed,
                               float lo, float hi, bool l2rows, gdn_tensor **out)
{
    gdn_status st = gdn_tensor_create(ctx, GDN_DTYPE_F32, nd, shape, out);
    size_t     n, i, j, D;
    float     *h;

    if (st)
        return st;
    n = (size_t)gdn_tensor_numel(*out);
    D = (size_t)shape[nd - 1];
    h = malloc((n ? n : 1) * sizeof(float));
    if (!h)
        return GDN_STATUS_OUT_OF_HOST_MEMORY;
    bench_fill_uniform(h, n, seed, lo, hi);
    for (i = 0; l2rows && D && i < n / D; i++) {
        double s2 = 0;
        for (j = 0; j < D; j++)
            s2 += (double)h[i * D + j] * h[i * D + j];
        for (j = 0; j < D; j++)
            h[i * D + j] /= (float)sqrt(s2 + 1e-12);
    }
    st = gdn_tensor_write(*out, h, 0, n * sizeof(float));
    free(h);
    return st;
}
