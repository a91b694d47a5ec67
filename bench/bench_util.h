/*
 * bench_util.h - shared pieces of the bench/ programs: device ceilings
 * measured on the device itself, robust timing (median and spread of many
 * runs after warm-up), and result files that name device, driver, shapes,
 * library version, git revision, date and the ceilings.
 *
 * Ceilings (microkernels of cl/bench/ceiling.cl, FLOP counts there): fp32
 * FMA, device copy, launch latency and host <-> device transfers on every
 * device; fp32 FMA fed from local memory where the device runs its kernel;
 * fp16 FMA and tensor-core mma.sync (tf32, bf16, f16) where the device has
 * them. Those are feature-tested at run time, never assumed:
 * fp16 by building the half kernel (with the cl_khr_fp16 pragma, whether or
 * not the device advertises the extension), mma.sync only on devices with
 * GDN_DEVICE_FLAG_INLINE_PTX, by building and running each type. A build or
 * run that fails leaves that ceiling at 0 (not available), with a note, and
 * no error on the context.
 */
#ifndef GDN_BENCH_UTIL_H
#define GDN_BENCH_UTIL_H

#include <stdio.h>

#include "runtime.h"

struct bench_ceilings {
    double fma_gflops;   /* fp32 FMA throughput, GFLOP/s (2 FLOP per fma) */
    double copy_gbs;     /* device copy, GB/s counting read + write       */
    double launch_us;    /* empty-ish kernel launch + finish latency      */
    double h2d_gbs;      /* host -> device transfer (blocking write), GB/s */
    double d2h_gbs;      /* device -> host transfer (blocking read), GB/s  */
    /* fp32 FMA with operands from local memory (float4 micro-tiles of 4 x 4,
     * 8 x 4 and 8 x 8 per work-item, groups of 128): the ceiling of the
     * chunk kernels' tile products at each shape, GFLOP/s (0: the device
     * cannot run it, e.g. fewer than 128 work-items or 24 KiB per group) */
    double lfma_gflops[3];
    /* Where the device has them (0: not available; the notes say why): */
    double fp16_gflops;     /* half FMA throughput (x * x + c on half8), GFLOP/s */
    bool   fp16_advertised; /* the device lists cl_khr_fp16                       */
    double mma_tf32_gflops; /* tensor cores, inline PTX mma.sync m16n8k8 tf32     */
    double mma_bf16_gflops; /* ... m16n8k16 bf16, f32 accumulators                */
    double mma_f16_gflops;  /* ... m16n8k16 f16, f32 accumulators                 */
    char   fp16_note[96];   /* how the half kernel was built, or why it is n/a    */
    char   mma_note[128];   /* why an mma ceiling is n/a ("" when all measured)   */
};

/* Measure the ceilings with the microkernels of cl/bench/ceiling.cl. Errors
 * are those of the fp32, copy and transfer ceilings; the optional ones
 * (local-memory FMA, fp16, mma) are 0 when their build or run fails.
 * Quick: small sizes. */
gdn_status bench_measure_ceilings(gdn_context *ctx, bool quick, struct bench_ceilings *c);

/* Results file: opened in dir (created), named <op>-<device slug>.{csv,json}.
 * The header lines name device, driver, library version, git revision, the
 * date and the ceilings: CSV comment keys fma_gflops copy_gbs launch_us
 * h2d_gbs d2h_gbs lfma4x4_gflops lfma8x4_gflops lfma8x8_gflops tuning
 * fp16_gflops fp16_advertised mma_tf32_gflops mma_bf16_gflops mma_f16_gflops;
 * JSON "ceilings" the same (0: n/a). */
struct bench_out {
    FILE *csv;
    FILE *json;
    int   json_rows;
};
gdn_status bench_out_open(gdn_context *ctx, const char *dir, const char *op,
                          const struct bench_ceilings *c, struct bench_out *out);
/* The options every bench program takes. */
struct bench_opts {
    bool        quick;   /* --quick: CI smoke sizes, 3 runs */
    const char *out_dir; /* --out DIR: CSV + JSON result files */
    int         reps;    /* --reps N: timed runs (default 20) */
    bool        sweep;   /* --sweep: only the scaling sweep (where the op has one) */
    int         tokens;  /* --tokens N: tokens per batch of the sweep (0: default) */
    int         window;  /* --window W: SWA's window in its sweep (0: default; the
                            other programs take and ignore it) */
};
#define BENCH_OPTS_INIT {false, NULL, 20, false, 0, 0}
#define BENCH_USAGE                                                                          \
    "[--quick] [--out DIR] [--device SEL] [--reps N] [--sweep] [--tokens N] [--window W]"

/* If argv[*i] is a common option (--quick, --out DIR, --device SEL, which
 * sets GDN_DEVICE, --reps N, --sweep, --tokens N, --window W), take it
 * (advancing *i past its value) and return true. Options with a value also
 * take the `--opt=v` form, which `gdn bench` passes through unchanged (it
 * passes only --out, --device and --reps with a separate value). */
bool bench_common_arg(int argc, char **argv, int *i, struct bench_opts *o);
/* `--name V` or `--name=V` at argv[*i]: its value (advancing *i past it), else
 * NULL. */
const char *bench_arg_value(int argc, char **argv, int *i, const char *name);

/* For the programs without a scaling sweep: with --sweep (and not --quick),
 * say so and return true (main then exits 0, so `gdn bench --sweep` runs the
 * sweeps of the others). */
bool bench_no_sweep(const char *op, const struct bench_opts *o);

/* Clamp o->reps, create the context, print the device, measure and print
 * its ceilings and open the result files of `op` (when o->out_dir). Returns
 * 0, or the exit status for main (77: no device, 1: error). */
int bench_begin(const char *op, struct bench_opts *o, gdn_context **ctx,
                struct bench_ceilings *ceil, struct bench_out *out);

/* Uniform values in [lo, hi) from a small LCG advanced through *seed
 * (repeatable inputs across devices). */
void bench_fill_uniform(float *x, size_t n, unsigned *seed, float lo, float hi);
/* A new F32 tensor of `shape` filled by bench_fill_uniform; with l2rows,
 * each row of the last dimension is scaled to unit L2 norm (q, k). */
gdn_status bench_random_tensor(gdn_context *ctx, int nd, const int64_t *shape, unsigned *seed,
                               float lo, float hi, bool l2rows, gdn_tensor **out);

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

/* Back-to-back calls, as a decode loop enqueues one layer's op after the
 * other's without waiting: `calls` calls of fn(arg) and one
 * gdn_context_finish, `reps` times (after one such warm-up round); the
 * statistics are of wall ms per call. */
gdn_status bench_time_batched(gdn_context *ctx, bench_fn fn, void *arg, int calls, int reps,
                              struct bench_stats *per_call);

void bench_out_row(struct bench_out *out, const char *csv_header, const char *fmt, ...)
    GDN_PRINTF(3, 4);
void bench_out_close(struct bench_out *out);

/*
 * Scaling sweeps (--sweep): the sequence length T doubles from 512 up to the
 * number of tokens per batch, which stays fixed (B = tokens / T), so a cost
 * linear in T shows as flat tokens/s and a cost of O(T W) or O(T^2) as
 * tokens/s falling with T. Tokens per batch: --tokens, else 65536 on GPUs and
 * 8192 elsewhere; --quick: 256 tokens, T = 128 and 256 (two points, a smoke
 * test of the code path).
 */
#define BENCH_SWEEP_MAX 32
/* The lengths into T[] (at most BENCH_SWEEP_MAX), their count as the return
 * value; *tokens receives the tokens per batch. */
int bench_sweep_lengths(const struct bench_opts *o, bool gpu, int *tokens, int *T);

/* One point of a sweep: `series` (the curve: an op, or a variant such as
 * attn_full), `pass` (fwd, fwd+bwd), the batch, a free-form shape string
 * ("H=2 D=128 W=2048") and the FLOP and byte model of the whole call. */
struct bench_sweep_point {
    const char *series, *pass, *shape;
    int         B, T;
    double      flop, bytes;
};
/* Print one line and write one row (CSV header BENCH_SWEEP_HDR, what =
 * "sweep"): wall time (median, p10, p90), device time, tokens/s, GFLOP/s and
 * GB/s from the models, their fractions of the measured FMA peak and copy
 * bandwidth, and roofline_frac, the larger of the two: the achieved fraction
 * of the roofline bound min(FMA peak, intensity x copy bandwidth). */
#define BENCH_SWEEP_HDR                                                                      \
    "what,series,pass,B,T,shape,wall_ms_median,wall_ms_p10,wall_ms_p90,device_ms_median,"  \
    "tokens_per_s,gflops,gbs,fma_peak_frac,copy_frac,roofline_frac"
void bench_sweep_report(struct bench_out *out, const struct bench_ceilings *c,
                        const struct bench_sweep_point *p, const struct bench_stats *wall,
                        const struct bench_stats *device);

#endif /* GDN_BENCH_UTIL_H */
