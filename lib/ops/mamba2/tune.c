/*
 * tune.c - autotuning of the Mamba2 SSD stages (the spaces of plan.c),
 * with the search of lib/tune/search.c (search.h) that every op's tuner
 * shares; this file builds the problem and says how to run it.
 *
 * For one (P, DS) on the context's device: a representative problem (GPU:
 * B = 1, T = 4096, H = 64, G = 1; elsewhere B = 1, T = 256, H = 4, G = 1;
 * chunk 64) runs forward and backward (and one decode step) with every
 * stage at its generic default; y and the gradients dx, ddt, dA_log,
 * ddt_bias, dB, dC, dD (decode: y and the updated state) are the
 * references. Then, one stage at a time, every legal candidate of its space
 * (the other stages at their defaults) runs forward + backward (the decode
 * stage: a step) and is checked on every output: a candidate that differs
 * by more than TUNE_TOL relative RMS is discarded (logged); the others are
 * timed (the stage's kernels, by profiling events, median of GDN_TUNE_REPS runs
 * after a warm-up). The fastest candidate of each stage becomes a row of the
 * device's user tuning database (bucket "P<P>.DS<DS>.CH64"), written
 * atomically. A wall-time budget stops the search early; each stage gets an
 * equal share and its generic default is always timed.
 */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mamba2.h"
#include "tune/search.h"

#define TUNE_TOL 1e-5

enum { O_Y, O_DX, O_DDT, O_DA, O_DBIAS, O_DB, O_DC, O_DD, O_SY, O_SST, N_OUTS };
static const char *const out_names[N_OUTS] = {"y",  "dx", "ddt", "dA_log", "ddt_bias",
                                              "dB", "dC", "dD",  "step y", "step state"};
#define FIRST_STEP_OUT O_SY

/* The runs, both part of the reference: forward + backward (checked on y
 * and the gradients) and the decode step (checked on y and the state). */
enum { RUN_CHUNKED, RUN_STEP };
static const struct gdn_tune_run runs[] = {
    [RUN_CHUNKED] = {0, FIRST_STEP_OUT, true},
    [RUN_STEP]    = {FIRST_STEP_OUT, N_OUTS - FIRST_STEP_OUT, true},
};

struct problem {
    int32_t             P, DS;
    struct gdn_m2_shape s; /* the shape the stages see */
    gdn_mamba2_params   params;
    gdn_mamba2_args     args, sargs; /* chunked; decode step */
    gdn_mamba2_grads    grads;
    gdn_tensor         *x, *dt, *Al, *bias, *B, *C, *D, *dy;
    gdn_tensor         *sx, *sdt, *sB, *sC, *state0;
    gdn_tensor         *out[N_OUTS];
    float              *hstate; /* host copy of state0 (the step updates in place) */
    int64_t             n_state;
};

static void problem_free(void *problem)
{
    struct problem *p   = problem;
    gdn_tensor     *t[] = {p->x,  p->dt,  p->Al, p->bias, p->B,     p->C, p->D,
                           p->dy, p->sx, p->sdt, p->sB,   p->sC, p->state0};
    size_t          i;
    for (i = 0; i < GDN_ARRAY_SIZE(t); i++)
        gdn_tensor_destroy(t[i]);
    for (i = 0; i < N_OUTS; i++)
        gdn_tensor_destroy(p->out[i]);
    gdn__free(p->hstate);
}

static gdn_status problem_init(gdn_context *ctx, void *problem, struct gdn_tune_problem *tp)
{
    struct problem      *p   = problem;
    const bool           gpu = (ctx->dev.info.flags & GDN_DEVICE_FLAG_GPU) != 0;
    const int32_t        P = p->P, DS = p->DS;
    int64_t              Bn = 1, T = gpu ? 4096 : 256, H = gpu ? 64 : 4, G = 1;
    int64_t              sx[4] = {Bn, T, H, P}, st2[3] = {Bn, T, H}, sbc[4] = {Bn, T, G, DS};
    int64_t              sh = H, kx[3] = {Bn, H, P}, kt[2] = {Bn, H}, kbc[3] = {Bn, G, DS};
    int64_t              kst[4] = {Bn, H, P, DS};
    struct gdn_m2_shape *s    = &p->s;
    uint32_t             seed = 20261129u;
    gdn_status           st;

    gdn_mamba2_params_init(&p->params);
    if ((st = gdn__tune_upload(ctx, 4, sx, -1, 1, false, &seed, &p->x)) ||
        (st = gdn__tune_upload(ctx, 3, st2, -4, 0, false, &seed, &p->dt)) ||
        (st = gdn__tune_upload(ctx, 1, &sh, 0, 2.5f, false, &seed, &p->Al)) ||
        (st = gdn__tune_upload(ctx, 1, &sh, -1, 0, false, &seed, &p->bias)) ||
        (st = gdn__tune_upload(ctx, 4, sbc, -1, 1, false, &seed, &p->B)) ||
        (st = gdn__tune_upload(ctx, 4, sbc, -1, 1, false, &seed, &p->C)) ||
        (st = gdn__tune_upload(ctx, 1, &sh, -1, 1, false, &seed, &p->D)) ||
        (st = gdn__tune_upload(ctx, 4, sx, -1, 1, false, &seed, &p->dy)) ||
        (st = gdn__tune_upload(ctx, 3, kx, -1, 1, false, &seed, &p->sx)) ||
        (st = gdn__tune_upload(ctx, 2, kt, -4, 0, false, &seed, &p->sdt)) ||
        (st = gdn__tune_upload(ctx, 3, kbc, -1, 1, false, &seed, &p->sB)) ||
        (st = gdn__tune_upload(ctx, 3, kbc, -1, 1, false, &seed, &p->sC)) ||
        (st = gdn__tune_upload(ctx, 4, kst, -1, 1, false, &seed, &p->state0)) ||
        (st = gdn_tensor_create(ctx, GDN_DTYPE_F32, 4, sx, &p->out[O_Y])) ||
        (st = gdn_tensor_create(ctx, GDN_DTYPE_F32, 4, sx, &p->out[O_DX])) ||
        (st = gdn_tensor_create(ctx, GDN_DTYPE_F32, 3, st2, &p->out[O_DDT])) ||
        (st = gdn_tensor_create(ctx, GDN_DTYPE_F32, 1, &sh, &p->out[O_DA])) ||
        (st = gdn_tensor_create(ctx, GDN_DTYPE_F32, 1, &sh, &p->out[O_DBIAS])) ||
        (st = gdn_tensor_create(ctx, GDN_DTYPE_F32, 4, sbc, &p->out[O_DB])) ||
        (st = gdn_tensor_create(ctx, GDN_DTYPE_F32, 4, sbc, &p->out[O_DC])) ||
        (st = gdn_tensor_create(ctx, GDN_DTYPE_F32, 1, &sh, &p->out[O_DD])) ||
        (st = gdn_tensor_create(ctx, GDN_DTYPE_F32, 3, kx, &p->out[O_SY])) ||
        (st = gdn_tensor_create(ctx, GDN_DTYPE_F32, 4, kst, &p->out[O_SST])))
        return st;
    memcpy(tp->outs, p->out, sizeof(p->out));
    p->n_state = gdn_tensor_numel(p->out[O_SST]);
    p->hstate  = gdn__malloc((size_t)p->n_state * sizeof(float));
    if (!p->hstate)
        return gdn__fail(ctx, GDN_STATUS_OUT_OF_HOST_MEMORY, "mamba2 tune: out of memory");
    if ((st = gdn_tensor_read(p->state0, p->hstate, 0, (size_t)p->n_state * sizeof(float))))
        return st;
    p->args.x = p->x, p->args.dt = p->dt, p->args.A_log = p->Al, p->args.dt_bias = p->bias;
    p->args.B = p->B, p->args.C = p->C, p->args.D = p->D;
    p->sargs = p->args;
    p->sargs.x = p->sx, p->sargs.dt = p->sdt, p->sargs.B = p->sB, p->sargs.C = p->sC;
    p->grads.dx = p->out[O_DX], p->grads.ddt = p->out[O_DDT], p->grads.dA_log = p->out[O_DA];
    p->grads.ddt_bias = p->out[O_DBIAS], p->grads.dB = p->out[O_DB];
    p->grads.dC = p->out[O_DC], p->grads.dD = p->out[O_DD];
    /* The shape the stages see (for the spaces' checks and defaults). */
    s->T = T, s->N = 1, s->H = (int32_t)H, s->G = 1;
    s->P = P, s->DS = DS, s->CH = GDN_M2_CHUNK_DEFAULT, s->max_len = (int32_t)s->T;
    s->NT = (int32_t)((s->T + s->CH - 1) / s->CH), s->dt_max = INFINITY;
    s->has_bias = s->has_D = true;
    tp->shape = s;
    gdn__m2_bucket(s, tp->bucket, sizeof(tp->bucket));
    return GDN_STATUS_OK;
}

/* One run: forward + backward (RUN_CHUNKED) or a decode step from state0
 * (RUN_STEP). */
static gdn_status run_once(gdn_context *ctx, void *problem, int run, bool prof)
{
    struct problem  *p    = problem;
    gdn_mamba2_tape *tape = NULL;
    gdn_status       st;

    if (run == RUN_STEP) {
        st = gdn_tensor_write(p->out[O_SST], p->hstate, 0, (size_t)p->n_state * sizeof(float));
        if (prof)
            gdn__prof_enable(ctx, true);
        if (!st)
            st = gdn_mamba2_step(ctx, &p->params, &p->sargs, p->out[O_SST], p->out[O_SY]);
        if (prof)
            gdn__prof_enable(ctx, false);
        return st;
    }
    if (prof)
        gdn__prof_enable(ctx, true);
    st = gdn_mamba2_forward(ctx, &p->params, &p->args, p->out[O_Y], NULL, &tape);
    if (!st)
        st = gdn_mamba2_backward(ctx, tape, p->dy, NULL, &p->grads);
    if (prof)
        gdn__prof_enable(ctx, false);
    gdn_mamba2_tape_destroy(tape);
    return st;
}

gdn_status gdn__mamba2_tune(gdn_context *ctx, int32_t P, int32_t DS, double budget_s,
                            char *report, size_t report_cap)
{
    const struct gdn_tune_space *stages[GDN_M2_N_STAGES];
    int                          stage_run[GDN_M2_N_STAGES], si;
    struct problem               p;
    struct gdn_tune_search       search = {
        .fn        = "mamba2 tune",
        .what      = "mamba2 tune",
        .stages    = stages,
        .stage_run = stage_run,
        .n_stages  = GDN_M2_N_STAGES,
        .runs      = runs,
        .n_runs    = GDN_ARRAY_SIZE(runs),
        .out_names = out_names,
        .n_outs    = N_OUTS,
        .tol       = TUNE_TOL,
        .width     = {26, 16, 24},
        .setup     = problem_init,
        .run       = run_once,
        .teardown  = problem_free,
    };

    if (!ctx)
        return GDN_STATUS_INVALID_ARGUMENT;
    if (report && report_cap)
        report[0] = '\0';
    if (P < 16 || P > 256 || P % 16 || DS < 16 || DS > 256 || DS % 16)
        return gdn__fail(ctx, GDN_STATUS_UNSUPPORTED,
                         "mamba2 tune: P = %d, DS = %d are not supported", (int)P, (int)DS);
    for (si = 0; si < GDN_M2_N_STAGES; si++) {
        stages[si]    = gdn__m2_space((enum gdn_m2_stage)si);
        stage_run[si] = si == (int)GDN_M2_STEP ? RUN_STEP : RUN_CHUNKED;
    }
    memset(&p, 0, sizeof(p));
    p.P = P, p.DS = DS;
    return gdn__tune_search(ctx, &search, &p, budget_s, report, report_cap);
}
