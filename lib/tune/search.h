/*
 * search.h - the search loop the op autotuners share (search.c); each op's
 * tuner (lib/ops/<op>/tune.c) only builds its representative problem and
 * says how to run it.
 *
 * gdn__tune_search() tunes an op's stages for one bucket on the context's
 * device:
 *   1. setup() builds the problem (device tensors, the stages' shape
 *      struct, the bucket, the outputs);
 *   2. reference: every stage at its generic default (the space's
 *      `defaults`), each run marked `reference` once; the outputs read
 *      back are the reference;
 *   3. one stage at a time (the others at their defaults), the legal
 *      candidates of its space (every assignment of the Cartesian product
 *      of its values that passes `valid`), each tried once, in this order:
 *      the generic default first, then every other legal candidate in a
 *      pseudo-random permutation, deterministic in (stage, bucket) (a
 *      Fisher-Yates shuffle driven by gdn__splitmix64 seeded by a hash of
 *      the stage name and bucket), so that a search the budget cuts short
 *      samples the whole space evenly instead of only the first values of
 *      the first parameters; an unlimited budget tries every one. Each
 *      candidate is run by the stage's run and compared, on that run's
 *      outputs, with the reference; a candidate whose relative RMS
 *      difference exceeds `tol` on any of them is discarded (WARN), one
 *      whose build or launch reports UNSUPPORTED or BUILD_FAILED is skipped
 *      (INFO); the others are timed: the kernels whose names start with the
 *      stage name ('/' -> '_'), median device time (profiling events) of
 *      GDN_TUNE_REPS runs after one warm-up;
 *   4. the fastest candidate of each stage becomes a row of the device's
 *      user tuning database ("<ms> ms; generic default <ms> ms; <n> of <m>
 *      legal tried, <r> rejected"), a report line and a log line; the
 *      database is written atomically at the end.
 * Budget: stage i (of n) may search until budget_s * (i + 1) / n seconds
 * after the start (an equal share each, what one stage leaves is the next
 * one's); its generic default (the first candidate) is always timed, and
 * what was measured when the share runs out is still recorded ("<t> of
 * <m> legal tried").
 */
#ifndef GDN_TUNE_SEARCH_H
#define GDN_TUNE_SEARCH_H

#include "tune/tune.h"

#define GDN_TUNE_REPS        5  /* timed runs per candidate (the median counts) */
#define GDN_TUNE_MAX_OUTS    16 /* outputs a problem may compare */
#define GDN_TUNE_MAX_STAGES  16 /* stages one search may tune */

/* One way of running the op's problem (a forward, forward + backward, a
 * decode step). */
struct gdn_tune_run {
    int  first_out, n_outs; /* the outputs it writes: outs[first_out ..
                               first_out + n_outs); a stage timed by this
                               run is checked on them */
    bool reference;         /* run at the generic defaults for the
                               reference; the reference runs together must
                               write every output */
};

/* What an op's setup() hands the search. */
struct gdn_tune_problem {
    const void *shape;                   /* the stages' shape struct (the
                                            spaces' valid / defaults) */
    char        bucket[48];              /* the rows' bucket */
    gdn_tensor *outs[GDN_TUNE_MAX_OUTS]; /* the compared outputs (f32) */
};

/* An op's tuner. `problem` is the op's own state, opaque to the search. */
struct gdn_tune_search {
    const char *fn;   /* the tuner in error messages ("gdn_tune_gated_delta") */
    const char *what; /* log prefix and out-of-memory messages ("tune") */
    const struct gdn_tune_space *const *stages;
    const int  *stage_run; /* stage_run[i]: the run (index into runs) that
                              checks and times stages[i] */
    size_t      n_stages;  /* at most GDN_TUNE_MAX_STAGES */
    const struct gdn_tune_run *runs;
    size_t                     n_runs;
    const char *const *out_names; /* n_outs names, for the discard log */
    int                n_outs;    /* at most GDN_TUNE_MAX_OUTS */
    double             tol;       /* relative RMS against the reference */
    int                width[3];  /* report columns: stage, bucket, values */
    /* Build the problem into *tp. On failure it returns a status with a
     * message and leaves what it made for teardown(). */
    gdn_status (*setup)(gdn_context *ctx, void *problem, struct gdn_tune_problem *tp);
    /* Run runs[run] with the plans of ctx->tune_override, with profiling on
     * around the part being timed when prof. */
    gdn_status (*run)(gdn_context *ctx, void *problem, int run, bool prof);
    /* Free what setup() made (also after a failed setup). */
    void (*teardown)(void *problem);
};

/* Tune the stages of `s` for `problem`: see above. budget_s <= 0: 300 s.
 * report (may be NULL) receives one line per tuned stage, also when the
 * search fails part way. The user DB is loaded first so that its other
 * rows are kept; lazy tuning is off while the search runs (and its seconds
 * are charged to the context's tuning budget). */
gdn_status gdn__tune_search(gdn_context *ctx, const struct gdn_tune_search *s, void *problem,
                            double budget_s, char *report, size_t report_cap);

/* For an op's setup(): a new F32 tensor of `shape` (nd dims) in *out,
 * filled with uniform values in [lo, hi) from the LCG seed' = 1664525 seed
 * + 1013904223 advanced through *seed (repeatable problems); with l2 each
 * row of the last dimension is scaled to unit L2 norm (q, k). On failure
 * *out may hold the tensor, for the caller's teardown. */
gdn_status gdn__tune_upload(gdn_context *ctx, int nd, const int64_t *shape, float lo, float hi,
                            bool l2, uint32_t *seed, gdn_tensor **out);

#endif /* GDN_TUNE_SEARCH_H */
