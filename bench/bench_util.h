/*
 * bench_util.h - shared pieces of the bench/ programs: device ceilings
 * measured on the device itself, robust timing (median and spread of many
 * runs after warm-up), and result files that name device, driver, shapes,
 * library version, git revision and date.
 */
#ifndef GDN_BENCH_UTIL_H
#define GDN_BENCH_UTIL_H

#include <stdio.h>

#include "runtime.h"

struct bench_ceilings {
    double fma_gflops;   /* fp32 FMA throughput, GFLOP/s (2 FLOP per fma) */
    double copy_gbs;     /* device copy, GB/s counting read + write       */
    double launch_us;    /* empty-ish kernel launch + finish latency      */
};

/* Measure the ceilings with the microkernels of cl/bench/ceiling.cl. */
gdn_status bench_measure_ceilings(gdn_context *ctx, bool quick, struct bench_ceilings *c);

/* Statistics of a sample of times (ms). */
struct bench_stats {
    double median, p10, p90, min;
    int    n;
};
void bench_stats_of(double *ms, int n, struct bench_stats *out); /* sorts ms */

/* Time fn(arg) `reps` times after `warmup` calls: wall-clock ms per call
 * (with gdn_context_finish), and the device time of its kernels from
 * profiling events (ms per call, summed over kernels). prof_out, when not
 * NULL, receives the per-kernel breakdown of the LAST call (caller frees). */
typedef gdn_status (*bench_fn)(void *arg);
gdn_status bench_time(gdn_context *ctx, bench_fn fn, void *arg, int warmup, int reps,
                      struct bench_stats *wall, struct bench_stats *device,
                      struct gdn_prof_sum **prof_out, size_t *nprof_out);

/* Results file: opened in dir (created), named <op>-<device slug>.{csv,json}.
 * The header lines name device, driver, library version, git revision and
 * the date. */
struct bench_out {
    FILE *csv;
    FILE *json;
    int   json_rows;
};
gdn_status bench_out_open(gdn_context *ctx, const char *dir, const char *op,
                          const struct bench_ceilings *c, struct bench_out *out);
void bench_out_row(struct bench_out *out, const char *csv_header, const char *fmt, ...)
    GDN_PRINTF(3, 4);
void bench_out_close(struct bench_out *out);

#endif /* GDN_BENCH_UTIL_H */
