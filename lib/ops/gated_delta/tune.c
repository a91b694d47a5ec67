/*
 * tune.c - autotuning of the gated delta rule's chunked stages that declare
 * tuning spaces: the forward kkt_solve, wy_fwd, state_fwd, out_fwd
 * (chunk_fwd.c) and the backward dv_local, state_bwd, dqkwg, wy_bwd
 * (chunk_bwd.c).
 *
 * For one (K, V) on the context's device: run the forward and the backward
 * on a representative problem with every stage at its generic default and
 * keep o and the gradients (dq, dk, dv, dg, dbeta) as the references; then,
 * one stage at a time, build and run every legal candidate of its space
 * (the others at their defaults; the generic default first, then the
 * others in a pseudo-random order fixed by stage and bucket): a forward
 * stage's candidate runs the forward and is checked on o, a backward
 * stage's runs forward and backward and is checked on every gradient. A
 * candidate whose output differs from the reference by more than TUNE_TOL
 * relative RMS is discarded (logged); the others are timed (the stage's
 * kernels, median device time of GDN_TUNE_REPS runs after one warm-up).
 * The fastest candidate of each stage becomes a row of the device's user
 * tuning database, which is written atomically. A wall-time budget stops the search early; what was measured
 * until then is still recorded (each stage gets an equal share, and the
 * generic default is always timed).
 *
 * The search itself is lib/tune/search.c (search.h), shared with the other
 * ops' tuners; this file builds the problem and says how to run it.
 */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gated_delta.h"
#include "tune/search.h"

#define TUNE_TOL 1e-5 /* relative RMS against the generic default's output */

const struct gdn_tune_space *const gdn__gd_tuned_spaces[] = {
    &gdn__gd_kkt_space, &gdn__gd_wy_space,    &gdn__gd_state_space, &gdn__gd_out_space,
    &gdn__gd_dvl_space, &gdn__gd_sbwd_space, &gdn__gd_dqkwg_space, &gdn__gd_wyb_space,
};
const size_t gdn__gd_n_tuned_spaces = GDN_ARRAY_SIZE(gdn__gd_tuned_spaces);
#define N_STAGES GDN_ARRAY_SIZE(gdn__gd_tuned_spaces)

/* The outputs a candidate is checked on: o, then the gradients. */
enum { OUT_O, OUT_DQ, OUT_DK, OUT_DV, OUT_DG, OUT_DB, N_OUTS };
static const char *const out_names[N_OUTS] = {"o", "dq", "dk", "dv", "dg", "dbeta"};

/* The runs: the forward (checked on o), the forward and the backward
 * (checked on o and every gradient; the reference). The first four stages
 * run in the forward. */
enum { RUN_FWD, RUN_BWD };
static const struct gdn_tune_run runs[] = {
    [RUN_FWD] = {OUT_O, 1, false},
    [RUN_BWD] = {OUT_O, N_OUTS, true},
};
static const int stage_run[N_STAGES] = {RUN_FWD, RUN_FWD, RUN_FWD, RUN_FWD,
                                        RUN_BWD, RUN_BWD, RUN_BWD, RUN_BWD};

struct problem {
    int32_t               K, V;
    struct gdn_gd_shape   s; /* the shape the stages see */
    gdn_gated_delta_args  args;
    gdn_gated_delta_grads grads;
    gdn_tensor           *q, *k, *v, *g, *b, *o, *do_;
    gdn_tensor           *out[N_OUTS]; /* o, dq, dk, dv, dg, dbeta */
};

static void problem_free(void *problem)
{
    struct problem *p = problem;
    int             i;
    gdn_tensor_destroy(p->q);
    gdn_tensor_destroy(p->k);
    gdn_tensor_destroy(p->v);
    gdn_tensor_destroy(p->g);
    gdn_tensor_destroy(p->b);
    gdn_tensor_destroy(p->do_);
    for (i = 1; i < N_OUTS; i++)
        gdn_tensor_destroy(p->out[i]);
    gdn_tensor_destroy(p->o);
}

/* A problem big enough to fill the device: B=2, T=4096, H=16 on GPUs;
 * B=1, T=1024, H=2 elsewhere. */
static gdn_status problem_init(gdn_context *ctx, void *problem, struct gdn_tune_problem *tp)
{
    struct problem     *p   = problem;
    const bool          gpu = (ctx->dev.info.flags & GDN_DEVICE_FLAG_GPU) != 0;
    const int32_t       K = p->K, V = p->V;
    int64_t             B = gpu ? 2 : 1, T = gpu ? 4096 : 1024, H = gpu ? 16 : 2;
    int64_t             qk[4] = {B, T, H, K}, vv[4] = {B, T, H, V}, gg[3] = {B, T, H};
    struct gdn_gd_shape *s    = &p->s;
    uint32_t            seed = 20261128u;
    gdn_status          st;

    if ((st = gdn__tune_upload(ctx, 4, qk, -1, 1, true, &seed, &p->q)) ||
        (st = gdn__tune_upload(ctx, 4, qk, -1, 1, true, &seed, &p->k)) ||
        (st = gdn__tune_upload(ctx, 4, vv, -1, 1, false, &seed, &p->v)) ||
        (st = gdn__tune_upload(ctx, 3, gg, -1, 0, false, &seed, &p->g)) ||
        (st = gdn__tune_upload(ctx, 3, gg, 0, 1, false, &seed, &p->b)) ||
        (st = gdn__tune_upload(ctx, 4, vv, -1, 1, false, &seed, &p->do_)) ||
        (st = gdn_tensor_create(ctx, GDN_DTYPE_F32, 4, vv, &p->o)) ||
        (st = gdn_tensor_create(ctx, GDN_DTYPE_F32, 4, qk, &p->out[OUT_DQ])) ||
        (st = gdn_tensor_create(ctx, GDN_DTYPE_F32, 4, qk, &p->out[OUT_DK])) ||
        (st = gdn_tensor_create(ctx, GDN_DTYPE_F32, 4, vv, &p->out[OUT_DV])) ||
        (st = gdn_tensor_create(ctx, GDN_DTYPE_F32, 3, gg, &p->out[OUT_DG])) ||
        (st = gdn_tensor_create(ctx, GDN_DTYPE_F32, 3, gg, &p->out[OUT_DB])))
        return st;
    p->out[OUT_O] = p->o;
    memcpy(tp->outs, p->out, sizeof(p->out));
    p->args.q      = p->q;
    p->args.k      = p->k;
    p->args.v      = p->v;
    p->args.g      = p->g;
    p->args.beta   = p->b;
    p->grads.dq    = p->out[OUT_DQ];
    p->grads.dk    = p->out[OUT_DK];
    p->grads.dv    = p->out[OUT_DV];
    p->grads.dg    = p->out[OUT_DG];
    p->grads.dbeta = p->out[OUT_DB];
    /* The shape the stages see (for the spaces' checks and defaults). */
    s->T = B * T;
    s->N = (int32_t)B, s->H = s->HV = (int32_t)H;
    s->K = K, s->V = V, s->max_len = (int32_t)T;
    s->NT = s->N * ((s->max_len + GDN_GD_CHUNK - 1) / GDN_GD_CHUNK);
    tp->shape = s;
    gdn__gd_bucket(K, V, tp->bucket, sizeof(tp->bucket));
    return GDN_STATUS_OK;
}

/* One run with the plans of ctx->tune_override: the forward (RUN_FWD), or
 * the forward with a tape and the backward (RUN_BWD), with profiling on
 * around the part being timed when prof. */
static gdn_status run_once(gdn_context *ctx, void *problem, int run, bool prof)
{
    struct problem       *p    = problem;
    const bool            bwd  = run == RUN_BWD;
    gdn_gated_delta_tape *tape = NULL;
    gdn_status            st;

    if (prof && !bwd)
        gdn__prof_enable(ctx, true);
    st = gdn_gated_delta_forward(ctx, NULL, &p->args, p->o, NULL, bwd ? &tape : NULL);
    if (prof && !bwd)
        gdn__prof_enable(ctx, false);
    if (!st && bwd) {
        /* The search times each stage by its own kernels, so the backward's
         * two scans run on one queue here (gated_delta/schedule): forked,
         * each would be timed while sharing the device with the other. */
        char *const       saved = ctx->tune_override;
        struct gdn_strbuf ovr   = {0};
        gdn__strbuf_appendf(&ovr, "%s%sgated_delta/schedule:BWD_FORK=0", saved ? saved : "",
                            saved && saved[0] ? ";" : "");
        if (ovr.oom) {
            gdn__strbuf_free(&ovr);
            gdn_gated_delta_tape_destroy(tape);
            return gdn__fail(ctx, GDN_STATUS_OUT_OF_HOST_MEMORY, "tune: out of memory");
        }
        ctx->tune_override = ovr.data;
        if (prof)
            gdn__prof_enable(ctx, true);
        st = gdn_gated_delta_backward(ctx, tape, p->do_, NULL, &p->grads);
        if (prof)
            gdn__prof_enable(ctx, false);
        ctx->tune_override = saved;
        gdn__strbuf_free(&ovr);
    }
    gdn_gated_delta_tape_destroy(tape);
    return st;
}

static const struct gdn_tune_search gd_search = {
    .fn        = "gdn_tune_gated_delta",
    .what      = "tune",
    .stages    = gdn__gd_tuned_spaces,
    .stage_run = stage_run,
    .n_stages  = N_STAGES,
    .runs      = runs,
    .n_runs    = GDN_ARRAY_SIZE(runs),
    .out_names = out_names,
    .n_outs    = N_OUTS,
    .tol       = TUNE_TOL,
    .width     = {22, 9, 40},
    .setup     = problem_init,
    .run       = run_once,
    .teardown  = problem_free,
};

gdn_status gdn_tune_gated_delta(gdn_context *ctx, int32_t K, int32_t V, double budget_s,
                                char *report, size_t report_cap)
{
    struct problem p;

    if (!ctx)
        return GDN_STATUS_INVALID_ARGUMENT;
    if (report && report_cap)
        report[0] = '\0';
    if (K < 16 || K > 256 || K % 16 || V < 16 || V > 256 || V % 16)
        return gdn__fail(ctx, GDN_STATUS_UNSUPPORTED,
                         "gdn_tune_gated_delta: head dims K = %d, V = %d are not supported",
                         (int)K, (int)V);
    memset(&p, 0, sizeof(p));
    p.K = K, p.V = V;
    return gdn__tune_search(ctx, &gd_search, &p, budget_s, report, report_cap);
}

/* One line of gdn_tune_describe: the stage, bucket, values and source. */
static void describe_line(gdn_context *ctx, const struct gdn_tune_space *sp, const char *bucket,
                          const struct gdn_gd_shape *s, struct gdn_strbuf *sb)
{
    int32_t              vals[GDN_TUNE_MAX_PARAMS];
    enum gdn_tune_source src;
    char                 text[256];
    gdn__tune_lookup(ctx, sp, bucket, s, vals, &src);
    gdn__tune_format_values(sp, vals, text, sizeof(text));
    gdn__strbuf_appendf(sb, "%-22s %-9s %-40s %s\n", sp->stage, bucket, text,
                        gdn__tune_source_name(src));
}

gdn_status gdn_tune_describe(gdn_context *ctx, int32_t K, int32_t V, char *buf, size_t cap)
{
    struct gdn_gd_shape s;
    struct gdn_strbuf   sb = {0};
    char                bucket[32];
    size_t              si;

    if (!ctx || !buf || !cap)
        return GDN_STATUS_INVALID_ARGUMENT;
    memset(&s, 0, sizeof(s));
    s.N = 1, s.H = s.HV = 1, s.K = K, s.V = V, s.T = 4096, s.max_len = 4096, s.NT = 64;
    gdn__gd_bucket(K, V, bucket, sizeof(bucket));
    for (si = 0; si < N_STAGES; si++)
        describe_line(ctx, gdn__gd_tuned_spaces[si], bucket, &s, &sb);
    describe_line(ctx, &gdn__gd_sched_space, bucket, &s, &sb); /* (these two: not tuned) */
    describe_line(ctx, &gdn__gd_recurrent_space, bucket, &s, &sb);
    if (sb.oom) {
        gdn__strbuf_free(&sb);
        return GDN_STATUS_OUT_OF_HOST_MEMORY;
    }
    gdn__strlcpy(buf, sb.data ? sb.data : "", cap);
    gdn__strbuf_free(&sb);
    return GDN_STATUS_OK;
}

/* ------------------------------------------- lazy and eager tuning modes */

/* Tune one (K, V) bucket when the context's mode asks for it. */
static void tune_bucket_on_use(gdn_context *ctx, int32_t K, int32_t V)
{
    char       bucket[32];
    double     budget, t0;
    gdn_status st;

    gdn__gd_bucket(K, V, bucket, sizeof(bucket));
    if (!gdn__tune_wanted(ctx, "gated_delta", bucket, gdn__gd_tuned_spaces, N_STAGES, &budget))
        return;
    t0 = gdn__now();
    st = gdn_tune_gated_delta(ctx, K, V, budget, NULL, 0);
    if (st)
        gdn__log(ctx, GDN_LOG_LEVEL_WARN,
                 "tuning gated_delta %s on first use failed (%s: %s); using built-in or generic "
                 "values",
                 bucket, gdn_status_name(st), gdn_context_last_error(ctx));
    else
        gdn__log(ctx, GDN_LOG_LEVEL_INFO, "tuned gated_delta %s on first use in %.1f s", bucket,
                 gdn__now() - t0);
    gdn__clear_error(ctx); /* the op itself has not failed */
}

void gdn__gd_tune_on_use(gdn_context *ctx, int32_t K, int32_t V)
{
    /* Eager mode also tunes the fast-path head dims at the first use of the
     * op; each bucket is attempted once per context. */
    static const int32_t      eager[][2] = {{64, 64}, {128, 128}};
    struct gdn_tune_settings *set        = gdn__tune_settings(ctx);
    size_t                    i;

    if (!set || set->mode == GDN_TUNE_MODE_DB || set->busy)
        return;
    tune_bucket_on_use(ctx, K, V);
    if (set->mode == GDN_TUNE_MODE_EAGER)
        for (i = 0; i < GDN_ARRAY_SIZE(eager); i++)
            tune_bucket_on_use(ctx, eager[i][0], eager[i][1]);
}
