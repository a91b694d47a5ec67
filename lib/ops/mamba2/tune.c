/*
 * tune.c - autotuning of the Mamba2 SSD stages (the spaces of plan.c),
 * mirroring lib/ops/gated_delta/tune.c.
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
 * timed (the stage's kernels, by profiling events, median of TUNE_REPS runs
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
#include "tune/tune.h"

#define TUNE_REPS 5
#define TUNE_TOL  1e-5

enum { O_Y, O_DX, O_DDT, O_DA, O_DBIAS, O_DB, O_DC, O_DD, O_SY, O_SST, N_OUTS };
static const char *const out_names[N_OUTS] = {"y",  "dx", "ddt", "dA_log", "ddt_bias",
                                              "dB", "dC", "dD",  "step y", "step state"};
#define FIRST_STEP_OUT O_SY

struct problem {
    gdn_mamba2_params params;
    gdn_mamba2_args   args, sargs; /* chunked; decode step */
    gdn_mamba2_grads  grads;
    gdn_tensor       *x, *dt, *Al, *bias, *B, *C, *D, *dy;
    gdn_tensor       *sx, *sdt, *sB, *sC, *state0;
    gdn_tensor       *out[N_OUTS];
    float            *hstate; /* host copy of state0 (the step updates in place) */
    int64_t           n[N_OUTS], off[N_OUTS], n_all;
};

static void problem_free(struct problem *p)
{
    gdn_tensor *t[] = {p->x, p->dt, p->Al, p->bias, p->B, p->C, p->D, p->dy,
                       p->sx, p->sdt, p->sB, p->sC, p->state0};
    size_t      i;
    for (i = 0; i < GDN_ARRAY_SIZE(t); i++)
        gdn_tensor_destroy(t[i]);
    for (i = 0; i < N_OUTS; i++)
        gdn_tensor_destroy(p->out[i]);
    gdn__free(p->hstate);
}

/* Uniform values in [lo, hi) from a fixed LCG (NULL lo == hi: zeros). */
static gdn_status upload(gdn_context *ctx, int nd, const int64_t *shape, float lo, float hi,
                         uint32_t *seed, gdn_tensor **out)
{
    size_t     n = 1, i;
    float     *h;
    gdn_status st = gdn_tensor_create(ctx, GDN_DTYPE_F32, nd, shape, out);
    if (st)
        return st;
    for (i = 0; i < (size_t)nd; i++)
        n *= (size_t)shape[i];
    h = gdn__malloc((n ? n : 1) * sizeof(float));
    if (!h)
        return gdn__fail(ctx, GDN_STATUS_OUT_OF_HOST_MEMORY, "mamba2 tune: out of memory");
    for (i = 0; i < n; i++) {
        *seed = *seed * 1664525u + 1013904223u;
        h[i]  = lo + (hi - lo) * (float)(*seed >> 8) / 16777216.0f;
    }
    st = gdn_tensor_write(*out, h, 0, n * sizeof(float));
    gdn__free(h);
    return st;
}

static gdn_status problem_init(gdn_context *ctx, int32_t P, int32_t DS, struct problem *p)
{
    const bool gpu = (ctx->dev.info.flags & GDN_DEVICE_FLAG_GPU) != 0;
    int64_t    Bn = 1, T = gpu ? 4096 : 256, H = gpu ? 64 : 4, G = 1;
    int64_t    sx[4] = {Bn, T, H, P}, st2[3] = {Bn, T, H}, sbc[4] = {Bn, T, G, DS}, sh = H;
    int64_t    kx[3] = {Bn, H, P}, kt[2] = {Bn, H}, kbc[3] = {Bn, G, DS};
    int64_t    kst[4] = {Bn, H, P, DS};
    uint32_t   seed = 20261129u;
    gdn_status st;
    int        i;

    memset(p, 0, sizeof(*p));
    gdn_mamba2_params_init(&p->params);
    if ((st = upload(ctx, 4, sx, -1, 1, &seed, &p->x)) ||
        (st = upload(ctx, 3, st2, -4, 0, &seed, &p->dt)) ||
        (st = upload(ctx, 1, &sh, 0, 2.5f, &seed, &p->Al)) ||
        (st = upload(ctx, 1, &sh, -1, 0, &seed, &p->bias)) ||
        (st = upload(ctx, 4, sbc, -1, 1, &seed, &p->B)) ||
        (st = upload(ctx, 4, sbc, -1, 1, &seed, &p->C)) ||
        (st = upload(ctx, 1, &sh, -1, 1, &seed, &p->D)) ||
        (st = upload(ctx, 4, sx, -1, 1, &seed, &p->dy)) ||
        (st = upload(ctx, 3, kx, -1, 1, &seed, &p->sx)) ||
        (st = upload(ctx, 2, kt, -4, 0, &seed, &p->sdt)) ||
        (st = upload(ctx, 3, kbc, -1, 1, &seed, &p->sB)) ||
        (st = upload(ctx, 3, kbc, -1, 1, &seed, &p->sC)) ||
        (st = upload(ctx, 4, kst, -1, 1, &seed, &p->state0)) ||
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
    for (i = 0; i < N_OUTS; i++) {
        p->n[i]   = gdn_tensor_numel(p->out[i]);
        p->off[i] = p->n_all;
        p->n_all += p->n[i];
    }
    p->hstate = gdn__malloc((size_t)p->n[O_SST] * sizeof(float));
    if (!p->hstate)
        return gdn__fail(ctx, GDN_STATUS_OUT_OF_HOST_MEMORY, "mamba2 tune: out of memory");
    if ((st = gdn_tensor_read(p->state0, p->hstate, 0, (size_t)p->n[O_SST] * sizeof(float))))
        return st;
    p->args.x = p->x, p->args.dt = p->dt, p->args.A_log = p->Al, p->args.dt_bias = p->bias;
    p->args.B = p->B, p->args.C = p->C, p->args.D = p->D;
    p->sargs = p->args;
    p->sargs.x = p->sx, p->sargs.dt = p->sdt, p->sargs.B = p->sB, p->sargs.C = p->sC;
    p->grads.dx = p->out[O_DX], p->grads.ddt = p->out[O_DDT], p->grads.dA_log = p->out[O_DA];
    p->grads.ddt_bias = p->out[O_DBIAS], p->grads.dB = p->out[O_DB];
    p->grads.dC = p->out[O_DC], p->grads.dD = p->out[O_DD];
    return GDN_STATUS_OK;
}

static void append_stage(struct gdn_strbuf *sb, const struct gdn_tune_space *sp,
                         const int32_t *vals)
{
    char   text[256];
    size_t i;
    gdn__tune_format_values(sp, vals, text, sizeof(text));
    for (i = 0; text[i]; i++)
        if (text[i] == ' ')
            text[i] = ',';
    gdn__strbuf_appendf(sb, "%s%s:%s", sb->len ? ";" : "", sp->stage, text);
}

/* One run: forward + backward (step false) or a decode step from state0. */
static gdn_status run_once(gdn_context *ctx, struct problem *p, bool step, bool prof)
{
    gdn_mamba2_tape *tape = NULL;
    gdn_status       st;

    if (step) {
        st = gdn_tensor_write(p->out[O_SST], p->hstate, 0,
                              (size_t)p->n[O_SST] * sizeof(float));
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

static gdn_status run_read(gdn_context *ctx, struct problem *p, char *ovr, bool step, float *host)
{
    gdn_status st;
    int        i;
    ctx->tune_override = ovr;
    st                 = run_once(ctx, p, step, false);
    for (i = step ? FIRST_STEP_OUT : 0; !st && i < (step ? N_OUTS : FIRST_STEP_OUT); i++)
        st = gdn_tensor_read(p->out[i], host + p->off[i], 0, (size_t)p->n[i] * sizeof(float));
    return st;
}

static gdn_status time_stage(gdn_context *ctx, struct problem *p, char *ovr, const char *prefix,
                             bool step, double *median)
{
    double     ms[TUNE_REPS], t;
    gdn_status st;
    int        r, i, j;

    ctx->tune_override = ovr;
    if ((st = run_once(ctx, p, step, false)) || (st = gdn_context_finish(ctx)))
        return st;
    for (r = 0; r < TUNE_REPS; r++) {
        struct gdn_prof_sum *sums = NULL;
        size_t               n = 0, k;
        st = run_once(ctx, p, step, true);
        if (!st)
            st = gdn__prof_collect(ctx, &sums, &n);
        if (st) {
            gdn__free(sums);
            return st;
        }
        ms[r] = 0;
        for (k = 0; k < n; k++)
            if (!strncmp(sums[k].name, prefix, strlen(prefix)))
                ms[r] += sums[k].ms;
        gdn__free(sums);
    }
    for (i = 1; i < TUNE_REPS; i++)
        for (j = i; j > 0 && ms[j - 1] > ms[j]; j--)
            t = ms[j], ms[j] = ms[j - 1], ms[j - 1] = t;
    *median = ms[TUNE_REPS / 2];
    return GDN_STATUS_OK;
}

static double rel_rms(const float *a, const float *ref, int64_t n)
{
    double  num = 0, den = 0;
    int64_t i;
    for (i = 0; i < n; i++) {
        double d = (double)a[i] - ref[i];
        num += d * d;
        den += (double)ref[i] * ref[i];
    }
    if (!isfinite(num))
        return INFINITY;
    return sqrt(num / (den > 0 ? den : 1e-30));
}

static double max_rel_rms(const struct problem *p, const float *a, const float *ref, bool step,
                          int *which)
{
    double worst = 0;
    int    i;
    *which = step ? FIRST_STEP_OUT : 0;
    for (i = step ? FIRST_STEP_OUT : 0; i < (step ? N_OUTS : FIRST_STEP_OUT); i++) {
        double e = rel_rms(a + p->off[i], ref + p->off[i], p->n[i]);
        if (!(e <= worst)) {
            worst  = e;
            *which = i;
        }
    }
    return worst;
}

static bool next_candidate(const struct gdn_tune_space *sp, int32_t *pos, int32_t *vals)
{
    int32_t i;
    for (i = 0; i < sp->n_params; i++) {
        if (++pos[i] < sp->params[i].n_values) {
            vals[i] = sp->params[i].values[pos[i]];
            return true;
        }
        pos[i]  = 0;
        vals[i] = sp->params[i].values[0];
    }
    return false;
}

gdn_status gdn__mamba2_tune(gdn_context *ctx, int32_t P, int32_t DS, double budget_s,
                            char *report, size_t report_cap)
{
    const int           NS = GDN_M2_N_STAGES;
    struct gdn_m2_shape s;
    struct problem      p;
    struct gdn_strbuf   rep = {0};
    char               *saved_ovr, *path = NULL, bucket[48];
    float              *ref = NULL, *got = NULL;
    int32_t             defs[GDN_M2_N_STAGES][GDN_TUNE_MAX_PARAMS];
    double              t0 = gdn__now();
    gdn_status          st;
    int                 si;

    if (!ctx)
        return GDN_STATUS_INVALID_ARGUMENT;
    if (report && report_cap)
        report[0] = '\0';
    if (P < 16 || P > 256 || P % 16 || DS < 16 || DS > 256 || DS % 16)
        return gdn__fail(ctx, GDN_STATUS_UNSUPPORTED,
                         "mamba2 tune: P = %d, DS = %d are not supported", (int)P, (int)DS);
    if (!(budget_s > 0))
        budget_s = 300;
    path = gdn__tune_db_default_path(ctx);
    if (!path)
        return gdn__fail(ctx, GDN_STATUS_IO,
                         "mamba2 tune: no cache folder for the tuning database (set "
                         "GDN_CACHE_DIR)");
    if (!gdn__tune_ctx_db(ctx)) {
        gdn__free(path);
        return gdn__fail(ctx, GDN_STATUS_OUT_OF_HOST_MEMORY, "mamba2 tune: out of memory");
    }
    gdn__tune_begin(ctx);
    saved_ovr = ctx->tune_override;
    st        = problem_init(ctx, P, DS, &p);
    if (st)
        goto out;
    memset(&s, 0, sizeof(s));
    s.T = gdn_tensor_dim(p.x, 1), s.N = 1, s.H = (int32_t)gdn_tensor_dim(p.x, 2), s.G = 1;
    s.P = P, s.DS = DS, s.CH = GDN_M2_CHUNK_DEFAULT, s.max_len = (int32_t)s.T;
    s.NT = (int32_t)((s.T + s.CH - 1) / s.CH), s.dt_max = INFINITY;
    s.has_bias = s.has_D = true;
    gdn__m2_bucket(&s, bucket, sizeof(bucket));

    ref = gdn__malloc((size_t)p.n_all * sizeof(float));
    got = gdn__malloc((size_t)p.n_all * sizeof(float));
    if (!ref || !got) {
        st = gdn__fail(ctx, GDN_STATUS_OUT_OF_HOST_MEMORY, "mamba2 tune: out of memory");
        goto out;
    }
    { /* references: every stage at its generic default */
        struct gdn_strbuf ovr = {0};
        for (si = 0; si < NS; si++) {
            const struct gdn_tune_space *sp = gdn__m2_space((enum gdn_m2_stage)si);
            sp->defaults(defs[si], &s, &ctx->dev);
            append_stage(&ovr, sp, defs[si]);
        }
        st = ovr.oom ? GDN_STATUS_OUT_OF_HOST_MEMORY : run_read(ctx, &p, ovr.data, false, ref);
        if (!st)
            st = run_read(ctx, &p, ovr.data, true, ref);
        gdn__strbuf_free(&ovr);
        if (st)
            goto out;
    }

    for (si = 0; si < NS && !st; si++) {
        const struct gdn_tune_space *sp   = gdn__m2_space((enum gdn_m2_stage)si);
        const bool                   step = si == (int)GDN_M2_STEP;
        int32_t pos[GDN_TUNE_MAX_PARAMS] = {0}, vals[GDN_TUNE_MAX_PARAMS];
        int32_t best[GDN_TUNE_MAX_PARAMS];
        double  best_ms = INFINITY, def_ms = INFINITY;
        int     tried = 0, rejected = 0, legal = 0, i;
        char    prefix[64], text[256], comment[160];
        bool    more = true;

        /* kernels of stage "mamba2/x" are named mamba2_x */
        snprintf(prefix, sizeof(prefix), "%s", sp->stage);
        for (i = 0; prefix[i]; i++)
            if (prefix[i] == '/')
                prefix[i] = '_';
        for (i = 0; i < sp->n_params; i++)
            vals[i] = sp->params[i].values[0];
        for (; more && !st; more = next_candidate(sp, pos, vals)) {
            struct gdn_strbuf ovr = {0};
            double            ms, err;
            int               sj, worst;
            bool              is_def = !memcmp(vals, defs[si], (size_t)sp->n_params * 4);
            if (!sp->valid(vals, &s, &ctx->dev))
                continue;
            legal++;
            if (gdn__now() - t0 > budget_s * (double)(si + 1) / NS && !is_def)
                continue;
            for (sj = 0; sj < NS; sj++)
                append_stage(&ovr, gdn__m2_space((enum gdn_m2_stage)sj),
                             sj == si ? vals : defs[sj]);
            if (ovr.oom) {
                st = GDN_STATUS_OUT_OF_HOST_MEMORY;
                break;
            }
            tried++;
            st = run_read(ctx, &p, ovr.data, step, got);
            if (st == GDN_STATUS_UNSUPPORTED || st == GDN_STATUS_BUILD_FAILED) {
                gdn__log(ctx, GDN_LOG_LEVEL_INFO, "mamba2 tune %s: %s skipped: %s", sp->stage,
                         ovr.data, gdn_context_last_error(ctx));
                gdn__strbuf_free(&ovr);
                rejected++;
                st = GDN_STATUS_OK;
                continue;
            }
            if (!st && (err = max_rel_rms(&p, got, ref, step, &worst)) > TUNE_TOL) {
                gdn__log(ctx, GDN_LOG_LEVEL_WARN,
                         "mamba2 tune %s: candidate %s disagrees with the generic default (%s: "
                         "rel RMS %.2e): discarded",
                         sp->stage, ovr.data, out_names[worst], err);
                gdn__strbuf_free(&ovr);
                rejected++;
                continue;
            }
            if (!st)
                st = time_stage(ctx, &p, ovr.data, prefix, step, &ms);
            gdn__strbuf_free(&ovr);
            if (st)
                break;
            if (is_def)
                def_ms = ms;
            if (ms < best_ms) {
                best_ms = ms;
                memcpy(best, vals, sizeof(best));
            }
        }
        if (st || best_ms == INFINITY)
            break;
        gdn__tune_format_values(sp, best, text, sizeof(text));
        snprintf(comment, sizeof(comment),
                 "%.4f ms; generic default %.4f ms; %d of %d legal tried, %d rejected", best_ms,
                 def_ms, tried, legal, rejected);
        st = gdn__tune_db_set(ctx->tune_db, sp->stage, bucket, text, comment);
        gdn__strbuf_appendf(&rep, "%-26s %-16s %-24s %s\n", sp->stage, bucket, text, comment);
        gdn__log(ctx, GDN_LOG_LEVEL_INFO, "mamba2 tune [%d/%d] %s %s: %s (%s); %.1f s elapsed",
                 si + 1, NS, sp->stage, bucket, text, comment, gdn__now() - t0);
    }
    if (!st)
        st = gdn__tune_db_save(ctx, ctx->tune_db, path);
out:
    ctx->tune_override = saved_ovr;
    gdn__tune_end(ctx, gdn__now() - t0);
    if (report && report_cap && rep.data)
        gdn__strlcpy(report, rep.data, report_cap);
    gdn__strbuf_free(&rep);
    gdn__free(ref);
    gdn__free(got);
    gdn__free(path);
    problem_free(&p);
    return st;
}
