/*
 * tune.c - autotuning of the sliding-window attention stages that declare
 * tuning spaces (attn.c): swa/fwd, swa/rope (forward) and swa/bwd_prep,
 * swa/bwd_dq, swa/bwd_dkdv (backward), with the search of
 * lib/tune/search.c (search.h) that every op's tuner shares; this file
 * builds the problem and says how to run it.
 *
 * For one head dim D on the context's device: a representative problem
 * (GPU: B = 1, T = 4096, H = 16, W = 2048; elsewhere B = 1, T = 256, H = 2,
 * W = 128; RoPE on) runs forward and backward with every stage at its
 * generic default; o and dq, dk, dv are the references. Then, one stage at
 * a time, every legal candidate of its space (the others at their defaults)
 * runs (forward stages: the forward, checked on o; backward stages: forward
 * and backward, checked on o, dq, dk, dv); a candidate that differs by more
 * than TUNE_TOL relative RMS is discarded (logged), the others are timed
 * (the stage's kernels, by profiling events, median of GDN_TUNE_REPS runs after
 * a warm-up). The fastest candidate of each stage becomes a row of the
 * device's user tuning database (bucket "D<D>"), written atomically. A
 * wall-time budget stops the search early; each stage gets an equal share
 * and its generic default is always timed. The decode stage (swa/decode) is
 * not tuned here.
 */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "swa.h"
#include "tune/search.h"

#define TUNE_TOL 1e-5 /* relative RMS against the generic default's output */

static const struct gdn_tune_space *const stages[] = {
    &gdn__swa_fwd_space, &gdn__swa_rope_space, &gdn__swa_prep_space, &gdn__swa_dq_space,
    &gdn__swa_dkdv_space,
};
#define N_STAGES GDN_ARRAY_SIZE(stages)

enum { OUT_O, OUT_DQ, OUT_DK, OUT_DV, N_OUTS };
static const char *const out_names[N_OUTS] = {"o", "dq", "dk", "dv"};

/* The runs: the forward (checked on o), the forward and the backward
 * (checked on o, dq, dk, dv; the reference). The first two stages run in
 * the forward. */
enum { RUN_FWD, RUN_BWD };
static const struct gdn_tune_run runs[] = {
    [RUN_FWD] = {OUT_O, 1, false},
    [RUN_BWD] = {OUT_O, N_OUTS, true},
};
static const int stage_run[N_STAGES] = {RUN_FWD, RUN_FWD, RUN_BWD, RUN_BWD, RUN_BWD};

struct problem {
    int32_t              D;
    struct gdn_swa_shape s; /* the shape the stages see */
    gdn_swa_params       params;
    gdn_swa_args         args;
    gdn_swa_grads        grads;
    gdn_tensor          *q, *k, *v, *o, *do_;
    gdn_tensor          *out[N_OUTS];
};

static void problem_free(void *problem)
{
    struct problem *p = problem;
    int             i;
    gdn_tensor_destroy(p->q);
    gdn_tensor_destroy(p->k);
    gdn_tensor_destroy(p->v);
    gdn_tensor_destroy(p->do_);
    for (i = 1; i < N_OUTS; i++)
        gdn_tensor_destroy(p->out[i]);
    gdn_tensor_destroy(p->o);
}

/* Normal-ish values (sum of uniforms) from a fixed LCG. */
static gdn_status upload(gdn_context *ctx, const int64_t *shape, uint32_t *seed, gdn_tensor **out)
{
    size_t     n = (size_t)(shape[0] * shape[1] * shape[2] * shape[3]), i;
    float     *h;
    gdn_status st = gdn_tensor_create(ctx, GDN_DTYPE_F32, 4, shape, out);
    if (st)
        return st;
    h = gdn__malloc(n * sizeof(float));
    if (!h)
        return gdn__fail(ctx, GDN_STATUS_OUT_OF_HOST_MEMORY, "tune: out of memory");
    for (i = 0; i < n; i++) {
        float a = 0;
        int   r;
        for (r = 0; r < 3; r++) {
            *seed = *seed * 1664525u + 1013904223u;
            a += (float)(*seed >> 8) / 16777216.0f - 0.5f;
        }
        h[i] = 2.0f * a;
    }
    st = gdn_tensor_write(*out, h, 0, n * sizeof(float));
    gdn__free(h);
    return st;
}

static gdn_status problem_init(gdn_context *ctx, void *problem, struct gdn_tune_problem *tp)
{
    struct problem       *p   = problem;
    const bool            gpu = (ctx->dev.info.flags & GDN_DEVICE_FLAG_GPU) != 0;
    const int32_t         D   = p->D;
    int64_t               T = gpu ? 4096 : 256, H = gpu ? 16 : 2;
    int64_t               sh[4] = {1, T, H, D};
    struct gdn_swa_shape *s    = &p->s;
    uint32_t              seed = 20261129u;
    gdn_status            st;

    gdn_swa_params_init(&p->params);
    p->params.window = gpu ? 2048 : 128;
    p->params.flags  = GDN_SWA_ROPE;
    if ((st = upload(ctx, sh, &seed, &p->q)) || (st = upload(ctx, sh, &seed, &p->k)) ||
        (st = upload(ctx, sh, &seed, &p->v)) || (st = upload(ctx, sh, &seed, &p->do_)) ||
        (st = gdn_tensor_create(ctx, GDN_DTYPE_F32, 4, sh, &p->o)) ||
        (st = gdn_tensor_create(ctx, GDN_DTYPE_F32, 4, sh, &p->out[OUT_DQ])) ||
        (st = gdn_tensor_create(ctx, GDN_DTYPE_F32, 4, sh, &p->out[OUT_DK])) ||
        (st = gdn_tensor_create(ctx, GDN_DTYPE_F32, 4, sh, &p->out[OUT_DV])))
        return st;
    p->out[OUT_O] = p->o;
    memcpy(tp->outs, p->out, sizeof(p->out));
    p->args.q   = p->q;
    p->args.k   = p->k;
    p->args.v   = p->v;
    p->grads.dq = p->out[OUT_DQ];
    p->grads.dk = p->out[OUT_DK];
    p->grads.dv = p->out[OUT_DV];
    /* The shape the stages see (for the spaces' checks and defaults). */
    s->T = T;
    s->N = 1, s->Hq = s->Hkv = (int32_t)H;
    s->D = D, s->max_len = (int32_t)T;
    s->window = s->W = p->params.window < s->max_len ? p->params.window : s->max_len;
    s->flags = p->params.flags;
    tp->shape = s;
    gdn__swa_bucket(D, tp->bucket, sizeof(tp->bucket));
    return GDN_STATUS_OK;
}

/* One run with the plans of ctx->tune_override: the forward (RUN_FWD), or
 * the forward with a tape and the backward (RUN_BWD), with profiling on
 * around the part being timed when prof. */
static gdn_status run_once(gdn_context *ctx, void *problem, int run, bool prof)
{
    struct problem *p    = problem;
    const bool      bwd  = run == RUN_BWD;
    gdn_swa_tape   *tape = NULL;
    gdn_status      st;

    if (prof && !bwd)
        gdn__prof_enable(ctx, true);
    st = gdn_swa_forward(ctx, &p->params, &p->args, p->o, NULL, bwd ? &tape : NULL);
    if (prof && !bwd)
        gdn__prof_enable(ctx, false);
    if (!st && bwd) {
        if (prof)
            gdn__prof_enable(ctx, true);
        st = gdn_swa_backward(ctx, tape, p->do_, &p->grads);
        if (prof)
            gdn__prof_enable(ctx, false);
    }
    gdn_swa_tape_destroy(tape);
    return st;
}

static const struct gdn_tune_search swa_search = {
    .fn        = "gdn__swa_tune",
    .what      = "tune",
    .stages    = stages,
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

gdn_status gdn__swa_tune(gdn_context *ctx, int32_t D, double budget_s, char *report,
                         size_t report_cap)
{
    struct problem p;

    if (!ctx)
        return GDN_STATUS_INVALID_ARGUMENT;
    if (report && report_cap)
        report[0] = '\0';
    if (D < 16 || D > 256 || D % 16)
        return gdn__fail(ctx, GDN_STATUS_UNSUPPORTED,
                         "gdn__swa_tune: head dim D = %d is not supported", (int)D);
    memset(&p, 0, sizeof(p));
    p.D = D;
    return gdn__tune_search(ctx, &swa_search, &p, budget_s, report, report_cap);
}
