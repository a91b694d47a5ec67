/*
 * tune.c - autotuning of the sliding-window attention stages that declare
 * tuning spaces (attn.c): swa/fwd, swa/rope (forward) and swa/bwd_prep,
 * swa/bwd_dq, swa/bwd_dkdv (backward), mirroring
 * lib/ops/gated_delta/tune.c.
 *
 * For one head dim D on the context's device: a representative problem
 * (GPU: B = 1, T = 4096, H = 16, W = 2048; elsewhere B = 1, T = 256, H = 2,
 * W = 128; RoPE on) runs forward and backward with every stage at its
 * generic default; o and dq, dk, dv are the references. Then, one stage at
 * a time, every legal candidate of its space (the others at their defaults)
 * runs (forward stages: the forward, checked on o; backward stages: forward
 * and backward, checked on o, dq, dk, dv); a candidate that differs by more
 * than TUNE_TOL relative RMS is discarded (logged), the others are timed
 * (the stage's kernels, by profiling events, median of TUNE_REPS runs after
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
#include "tune/tune.h"

#define TUNE_REPS 5
#define TUNE_TOL  1e-5 /* relative RMS against the generic default's output */

static const struct gdn_tune_space *const stages[] = {
    &gdn__swa_fwd_space, &gdn__swa_rope_space, &gdn__swa_prep_space, &gdn__swa_dq_space,
    &gdn__swa_dkdv_space,
};
#define N_STAGES GDN_ARRAY_SIZE(stages)
#define N_FWD    2 /* stages[0 .. N_FWD) run in the forward */

enum { OUT_O, OUT_DQ, OUT_DK, OUT_DV, N_OUTS };
static const char *const out_names[N_OUTS] = {"o", "dq", "dk", "dv"};

struct problem {
    gdn_swa_params params;
    gdn_swa_args   args;
    gdn_swa_grads  grads;
    gdn_tensor    *q, *k, *v, *o, *do_;
    gdn_tensor    *out[N_OUTS];
    int64_t        n[N_OUTS], off[N_OUTS], n_all;
};

static void problem_free(struct problem *p)
{
    int i;
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

static gdn_status problem_init(gdn_context *ctx, int32_t D, struct problem *p)
{
    const bool gpu = (ctx->dev.info.flags & GDN_DEVICE_FLAG_GPU) != 0;
    int64_t    T = gpu ? 4096 : 256, H = gpu ? 16 : 2;
    int64_t    sh[4] = {1, T, H, D};
    uint32_t   seed = 20261129u;
    gdn_status st;
    int        i;

    memset(p, 0, sizeof(*p));
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
    for (i = 0; i < N_OUTS; i++) {
        p->n[i]   = gdn_tensor_numel(p->out[i]);
        p->off[i] = p->n_all;
        p->n_all += p->n[i];
    }
    p->args.q   = p->q;
    p->args.k   = p->k;
    p->args.v   = p->v;
    p->grads.dq = p->out[OUT_DQ];
    p->grads.dk = p->out[OUT_DK];
    p->grads.dv = p->out[OUT_DV];
    return GDN_STATUS_OK;
}

/* "stage:KEY=v,KEY=v" of vals, appended to sb with a ';' separator. */
static void append_stage(struct gdn_strbuf *sb, const struct gdn_tune_space *sp,
                         const int32_t *vals)
{
    char    text[256];
    size_t  i;
    gdn__tune_format_values(sp, vals, text, sizeof(text));
    for (i = 0; text[i]; i++)
        if (text[i] == ' ')
            text[i] = ',';
    gdn__strbuf_appendf(sb, "%s%s:%s", sb->len ? ";" : "", sp->stage, text);
}

/* One run with the given override: the forward (bwd false), or the
 * forward with a tape and the backward, with profiling on around the part
 * being timed when prof. */
static gdn_status run_once(gdn_context *ctx, struct problem *p, bool bwd, bool prof)
{
    gdn_swa_tape *tape = NULL;
    gdn_status            st;

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

/* Run with the given override and read o (and, with bwd, the gradients)
 * into host (p->n_all floats, at p->off[]). */
static gdn_status run_read(gdn_context *ctx, struct problem *p, char *ovr, bool bwd, float *host)
{
    gdn_status st;
    int        i;
    ctx->tune_override = ovr;
    st                 = run_once(ctx, p, bwd, false);
    for (i = 0; !st && i < (bwd ? N_OUTS : 1); i++)
        st = gdn_tensor_read(p->out[i], host + p->off[i], 0, (size_t)p->n[i] * sizeof(float));
    return st;
}

/* Median device time (ms) of the kernels whose name starts with `prefix`. */
static gdn_status time_stage(gdn_context *ctx, struct problem *p, char *ovr, const char *prefix,
                             bool bwd, double *median)
{
    double     ms[TUNE_REPS], t;
    gdn_status st;
    int        r, i, j;

    ctx->tune_override = ovr;
    if ((st = run_once(ctx, p, bwd, false)) || (st = gdn_context_finish(ctx)))
        return st;
    for (r = 0; r < TUNE_REPS; r++) {
        struct gdn_prof_sum *sums = NULL;
        size_t               n = 0, k;
        st = run_once(ctx, p, bwd, true);
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
    for (i = 1; i < TUNE_REPS; i++) /* insertion sort */
        for (j = i; j > 0 && ms[j - 1] > ms[j]; j--)
            t = ms[j], ms[j] = ms[j - 1], ms[j - 1] = t;
    *median = ms[TUNE_REPS / 2];
    return GDN_STATUS_OK;
}

static double rel_rms(const float *a, const float *ref, int64_t n)
{
    double num = 0, den = 0;
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

/* The largest relative RMS difference over the checked outputs; *which
 * names the worst one. */
static double max_rel_rms(const struct problem *p, const float *a, const float *ref, bool bwd,
                          int *which)
{
    double worst = 0;
    int    i;
    *which = OUT_O;
    for (i = 0; i < (bwd ? N_OUTS : 1); i++) {
        double e = rel_rms(a + p->off[i], ref + p->off[i], p->n[i]);
        if (!(e <= worst)) { /* NaN counts as worst */
            worst  = e;
            *which = i;
        }
    }
    return worst;
}

/* Advance vals over the Cartesian product of the legal values (odometer);
 * false when every combination has been visited. */
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

gdn_status gdn__swa_tune(gdn_context *ctx, int32_t D, double budget_s, char *report,
                         size_t report_cap)
{
    struct gdn_swa_shape s;
    struct problem      p;
    struct gdn_strbuf   rep = {0};
    char               *saved_ovr, *path = NULL, bucket[32];
    float              *ref = NULL, *got = NULL;
    int32_t             defs[N_STAGES][GDN_TUNE_MAX_PARAMS];
    double              t0 = gdn__now();
    gdn_status          st;
    size_t              si;

    if (!ctx)
        return GDN_STATUS_INVALID_ARGUMENT;
    if (report && report_cap)
        report[0] = '\0';
    if (D < 16 || D > 256 || D % 16)
        return gdn__fail(ctx, GDN_STATUS_UNSUPPORTED,
                         "gdn__swa_tune: head dim D = %d is not supported", (int)D);
    if (!(budget_s > 0))
        budget_s = 300;
    path = gdn__tune_db_default_path(ctx);
    if (!path)
        return gdn__fail(ctx, GDN_STATUS_IO,
                         "gdn__swa_tune: no cache folder for the tuning database (set "
                         "GDN_CACHE_DIR)");
    /* The user DB is loaded first so that its other rows are kept. */
    if (!gdn__tune_ctx_db(ctx)) {
        gdn__free(path);
        return gdn__fail(ctx, GDN_STATUS_OUT_OF_HOST_MEMORY, "tune: out of memory");
    }
    gdn__tune_begin(ctx); /* no lazy tuning inside the tuner's own runs */
    saved_ovr = ctx->tune_override;
    st        = problem_init(ctx, D, &p);
    if (st)
        goto out;
    /* The shape the stages see (for the spaces' checks and defaults). */
    memset(&s, 0, sizeof(s));
    s.T = gdn_tensor_dim(p.q, 0) * gdn_tensor_dim(p.q, 1);
    s.N = (int32_t)gdn_tensor_dim(p.q, 0), s.Hq = s.Hkv = (int32_t)gdn_tensor_dim(p.q, 2);
    s.D = D, s.max_len = (int32_t)gdn_tensor_dim(p.q, 1);
    s.window = s.W = p.params.window < s.max_len ? p.params.window : s.max_len;
    s.flags = p.params.flags;
    gdn__swa_bucket(D, bucket, sizeof(bucket));

    ref = gdn__malloc((size_t)p.n_all * sizeof(float));
    got = gdn__malloc((size_t)p.n_all * sizeof(float));
    if (!ref || !got) {
        st = gdn__fail(ctx, GDN_STATUS_OUT_OF_HOST_MEMORY, "tune: out of memory");
        goto out;
    }
    /* Reference: every stage at its generic default, forward and backward. */
    {
        struct gdn_strbuf ovr = {0};
        for (si = 0; si < N_STAGES; si++) {
            int32_t i;
            for (i = 0; i < stages[si]->n_params; i++)
                defs[si][i] = stages[si]->params[i].def;
            stages[si]->defaults(defs[si], &s, &ctx->dev);
            append_stage(&ovr, stages[si], defs[si]);
        }
        st = ovr.oom ? GDN_STATUS_OUT_OF_HOST_MEMORY : run_read(ctx, &p, ovr.data, true, ref);
        gdn__strbuf_free(&ovr);
        if (st)
            goto out;
    }

    for (si = 0; si < N_STAGES && !st; si++) {
        const struct gdn_tune_space *sp  = stages[si];
        const bool                   bwd = si >= N_FWD;
        int32_t pos[GDN_TUNE_MAX_PARAMS] = {0}, vals[GDN_TUNE_MAX_PARAMS];
        int32_t best[GDN_TUNE_MAX_PARAMS];
        double  best_ms = INFINITY, def_ms = INFINITY;
        int     tried = 0, rejected = 0, legal = 0, i;
        char    prefix[64], text[256], comment[160];
        bool    more = true;

        /* kernels of stage "swa/x" are named swa_x* */
        snprintf(prefix, sizeof(prefix), "%s", sp->stage);
        for (i = 0; prefix[i]; i++)
            if (prefix[i] == '/')
                prefix[i] = '_';
        for (i = 0; i < sp->n_params; i++)
            vals[i] = sp->params[i].values[0];
        for (; more && !st; more = next_candidate(sp, pos, vals)) {
            struct gdn_strbuf ovr = {0};
            double            ms, err;
            size_t            sj;
            int               worst;
            bool              is_def = !memcmp(vals, defs[si], (size_t)sp->n_params * 4);
            if (!sp->valid(vals, &s, &ctx->dev))
                continue;
            legal++;
            /* Each stage gets an equal share of the budget; past its share
             * only the default is still timed. */
            if (gdn__now() - t0 > budget_s * (double)(si + 1) / N_STAGES && !is_def)
                continue;
            for (sj = 0; sj < N_STAGES; sj++)
                append_stage(&ovr, stages[sj], sj == si ? vals : defs[sj]);
            if (ovr.oom) {
                st = GDN_STATUS_OUT_OF_HOST_MEMORY;
                break;
            }
            tried++;
            st = run_read(ctx, &p, ovr.data, bwd, got);
            if (st == GDN_STATUS_UNSUPPORTED || st == GDN_STATUS_BUILD_FAILED) {
                gdn__log(ctx, GDN_LOG_LEVEL_INFO, "tune %s: %s skipped: %s", sp->stage,
                         ovr.data, gdn_context_last_error(ctx));
                gdn__strbuf_free(&ovr);
                rejected++;
                st = GDN_STATUS_OK;
                continue;
            }
            if (!st && (err = max_rel_rms(&p, got, ref, bwd, &worst)) > TUNE_TOL) {
                gdn__log(ctx, GDN_LOG_LEVEL_WARN,
                         "tune %s: candidate %s disagrees with the generic default (%s: rel "
                         "RMS %.2e): discarded",
                         sp->stage, ovr.data, out_names[worst], err);
                gdn__strbuf_free(&ovr);
                rejected++;
                continue;
            }
            if (!st)
                st = time_stage(ctx, &p, ovr.data, prefix, bwd, &ms);
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
        gdn__strbuf_appendf(&rep, "%-22s %-9s %-40s %s\n", sp->stage, bucket, text, comment);
        gdn__log(ctx, GDN_LOG_LEVEL_INFO, "tune [%zu/%zu] %s %s: %s (%s); %.1f s elapsed",
                 si + 1, (size_t)N_STAGES, sp->stage, bucket, text, comment, gdn__now() - t0);
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

