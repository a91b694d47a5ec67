/*
 * search.c - the search loop of the op autotuners (see search.h).
 */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tune/search.h"

/* One search in progress. */
struct search {
    gdn_context                  *ctx;
    const struct gdn_tune_search *s;
    void                         *problem;
    struct gdn_tune_problem       tp;
    int64_t                       n[GDN_TUNE_MAX_OUTS];   /* elements of each output */
    int64_t                       off[GDN_TUNE_MAX_OUTS]; /* offsets in ref / got */
    int64_t                       n_all;
    float                        *ref, *got;
    int32_t                       defs[GDN_TUNE_MAX_STAGES][GDN_TUNE_MAX_PARAMS];
    double                        t0, budget_s;
    struct gdn_strbuf             rep;
};

/* "stage:KEY=v,KEY=v" of vals, appended to sb with a ';' separator. */
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

/* The override of every stage at its default but stage `si` at vals (vals
 * NULL: all defaults) into ovr; false (with a message) when out of memory. */
static bool build_override(struct search *z, size_t si, const int32_t *vals,
                           struct gdn_strbuf *ovr)
{
    size_t sj;
    for (sj = 0; sj < z->s->n_stages; sj++)
        append_stage(ovr, z->s->stages[sj], sj == si && vals ? vals : z->defs[sj]);
    if (ovr->oom) {
        gdn__strbuf_free(ovr);
        gdn__fail(z->ctx, GDN_STATUS_OUT_OF_HOST_MEMORY, "%s: out of memory", z->s->what);
        return false;
    }
    return true;
}

/* Run `run` with the override ovr and read its outputs into host (at
 * z->off[]). */
static gdn_status run_read(struct search *z, char *ovr, int run, float *host)
{
    const struct gdn_tune_run *r = &z->s->runs[run];
    gdn_status                 st;
    int                        i;
    z->ctx->tune_override = ovr;
    st                    = z->s->run(z->ctx, z->problem, run, false);
    for (i = r->first_out; !st && i < r->first_out + r->n_outs; i++)
        st = gdn_tensor_read(z->tp.outs[i], host + z->off[i], 0, (size_t)z->n[i] * sizeof(float));
    return st;
}

/* Median device time (ms) of the kernels of `run` whose name starts with
 * `prefix`. */
static gdn_status time_stage(struct search *z, char *ovr, const char *prefix, int run,
                             double *median)
{
    gdn_context *ctx = z->ctx;
    double       ms[GDN_TUNE_REPS], t;
    size_t       plen = strlen(prefix);
    gdn_status   st;
    int          r, i, j;

    ctx->tune_override = ovr;
    if ((st = z->s->run(ctx, z->problem, run, false)) || (st = gdn_context_finish(ctx)))
        return st;
    for (r = 0; r < GDN_TUNE_REPS; r++) {
        struct gdn_prof_sum *sums = NULL;
        size_t               n = 0, k;
        st = z->s->run(ctx, z->problem, run, true);
        if (!st)
            st = gdn__prof_collect(ctx, &sums, &n);
        if (st) {
            gdn__free(sums);
            return st;
        }
        ms[r] = 0;
        for (k = 0; k < n; k++)
            if (!strncmp(sums[k].name, prefix, plen))
                ms[r] += sums[k].ms;
        gdn__free(sums);
    }
    for (i = 1; i < GDN_TUNE_REPS; i++) /* insertion sort */
        for (j = i; j > 0 && ms[j - 1] > ms[j]; j--)
            t = ms[j], ms[j] = ms[j - 1], ms[j - 1] = t;
    *median = ms[GDN_TUNE_REPS / 2];
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

/* The largest relative RMS difference over the outputs of `run`; *which
 * names the worst one. */
static double max_rel_rms(const struct search *z, int run, int *which)
{
    const struct gdn_tune_run *r     = &z->s->runs[run];
    double                     worst = 0;
    int                        i;
    *which = r->first_out;
    for (i = r->first_out; i < r->first_out + r->n_outs; i++) {
        double e = rel_rms(z->got + z->off[i], z->ref + z->off[i], z->n[i]);
        if (!(e <= worst)) { /* NaN counts as worst */
            worst  = e;
            *which = i;
        }
    }
    return worst;
}

/* Assignment number idx of the Cartesian product of sp's values into vals
 * (odometer order: the first parameter's values fastest). */
static void decode(const struct gdn_tune_space *sp, uint64_t idx, int32_t *vals)
{
    int32_t i;
    for (i = 0; i < sp->n_params; i++) {
        vals[i] = sp->params[i].values[idx % (uint64_t)sp->params[i].n_values];
        idx /= (uint64_t)sp->params[i].n_values;
    }
}

static bool is_valid(const struct search *z, const struct gdn_tune_space *sp,
                     const int32_t *vals)
{
    return !sp->valid || sp->valid(vals, z->tp.shape, &z->ctx->dev);
}

/* The seed of a stage's search order: a hash of stage and bucket, each
 * byte and each string's end mixed in by a splitmix64 step. */
static uint64_t order_seed(const char *stage, const char *bucket)
{
    const char *const str[2] = {stage, bucket};
    uint64_t          h      = 0;
    const char       *p;
    int               k;
    for (k = 0; k < 2; k++) {
        for (p = str[k]; *p; p++) {
            h ^= (unsigned char)*p;
            h = gdn__splitmix64(&h);
        }
        h = gdn__splitmix64(&h);
    }
    return h;
}

static void swap_rows(int32_t *c, size_t np, size_t a, size_t b)
{
    size_t i;
    for (i = 0; i < np; i++) {
        int32_t t      = c[a * np + i];
        c[a * np + i] = c[b * np + i];
        c[b * np + i] = t;
    }
}

/* The legal candidates of stage si (the assignments of the Cartesian
 * product of its values that pass `valid`) in search order: the generic
 * default first (when it is legal), then the others in a pseudo-random
 * permutation (Fisher-Yates driven by gdn__splitmix64, seeded by
 * order_seed(stage, bucket)), so that a search cut short by the budget
 * samples the whole space evenly. *cands: *count rows of n_params values
 * (heap; NULL when there are none); *has_def: row 0 is the default. */
static gdn_status candidates(struct search *z, size_t si, int32_t **cands, size_t *count,
                             bool *has_def)
{
    const struct gdn_tune_space *sp = z->s->stages[si];
    const size_t                 np = (size_t)sp->n_params;
    int32_t  vals[GDN_TUNE_MAX_PARAMS], *c;
    size_t   n = 0, k, def = SIZE_MAX, first;
    uint64_t total = 1, idx, h;
    int32_t  i;

    *cands   = NULL;
    *count   = 0;
    *has_def = false;
    /* at most GDN_TUNE_MAX_VALUES^GDN_TUNE_MAX_PARAMS = 2^48 assignments */
    for (i = 0; i < sp->n_params; i++)
        total *= (uint64_t)(sp->params[i].n_values > 0 ? sp->params[i].n_values : 0);
    for (idx = 0; idx < total; idx++) {
        decode(sp, idx, vals);
        n += is_valid(z, sp, vals);
    }
    if (n == 0)
        return GDN_STATUS_OK;
    c = gdn__malloc(n * (np ? np : 1) * sizeof(*c));
    if (!c)
        return gdn__fail(z->ctx, GDN_STATUS_OUT_OF_HOST_MEMORY, "%s: out of memory",
                         z->s->what);
    for (idx = 0, k = 0; idx < total && k < n; idx++) {
        decode(sp, idx, vals);
        if (!is_valid(z, sp, vals))
            continue;
        memcpy(c + k * np, vals, np * sizeof(*c));
        if (def == SIZE_MAX && !memcmp(vals, z->defs[si], np * sizeof(*c)))
            def = k;
        k++;
    }
    n     = k;
    first = 0;
    if (def != SIZE_MAX) {
        swap_rows(c, np, 0, def);
        first = 1;
    }
    h = order_seed(sp->stage, z->tp.bucket);
    for (k = n; k > first + 1; k--) /* rows [first, k) left to place */
        swap_rows(c, np, k - 1, first + (size_t)(gdn__splitmix64(&h) % (k - first)));
    *cands   = c;
    *count   = n;
    *has_def = def != SIZE_MAX;
    return GDN_STATUS_OK;
}

/* Search stage si; its row, report and log line when some candidate was
 * timed. *done is set when the search should stop (nothing timed). */
static gdn_status search_stage(struct search *z, size_t si, bool *done)
{
    gdn_context                 *ctx = z->ctx;
    const struct gdn_tune_space *sp  = z->s->stages[si];
    const int                    run = z->s->stage_run[si];
    const size_t                 ns  = z->s->n_stages;
    const size_t                 np  = (size_t)sp->n_params;
    int32_t                      best[GDN_TUNE_MAX_PARAMS] = {0}, *cands = NULL;
    double                       best_ms = INFINITY, def_ms = INFINITY;
    int                          tried = 0, rejected = 0, i;
    size_t                       legal = 0, k;
    char                         prefix[64], text[256], comment[160];
    bool                         has_def;
    gdn_status                   st;

    /* kernels of stage "op/x" are named op_x* */
    snprintf(prefix, sizeof(prefix), "%s", sp->stage);
    for (i = 0; prefix[i]; i++)
        if (prefix[i] == '/')
            prefix[i] = '_';
    if ((st = candidates(z, si, &cands, &legal, &has_def)))
        return st;
    for (k = 0; k < legal && !st; k++) {
        const int32_t    *vals   = cands + k * np;
        const bool        is_def = has_def && k == 0;
        struct gdn_strbuf ovr    = {0};
        double            ms, err;
        int               worst;
        /* Past the stage's share of the budget only the default (the
         * first candidate) is still timed. */
        if (!is_def && gdn__now() - z->t0 > z->budget_s * (double)(si + 1) / (double)ns)
            break;
        if (!build_override(z, si, vals, &ovr)) {
            st = GDN_STATUS_OUT_OF_HOST_MEMORY;
            break;
        }
        tried++;
        st = run_read(z, ovr.data, run, z->got);
        if (st == GDN_STATUS_UNSUPPORTED || st == GDN_STATUS_BUILD_FAILED) {
            gdn__log(ctx, GDN_LOG_LEVEL_INFO, "%s %s: %s skipped: %s", z->s->what, sp->stage,
                     ovr.data, gdn_context_last_error(ctx));
            gdn__strbuf_free(&ovr);
            rejected++;
            st = GDN_STATUS_OK;
            continue;
        }
        if (!st && (err = max_rel_rms(z, run, &worst)) > z->s->tol) {
            gdn__log(ctx, GDN_LOG_LEVEL_WARN,
                     "%s %s: candidate %s disagrees with the generic default (%s: rel RMS "
                     "%.2e): discarded",
                     z->s->what, sp->stage, ovr.data, z->s->out_names[worst], err);
            gdn__strbuf_free(&ovr);
            rejected++;
            continue;
        }
        if (!st)
            st = time_stage(z, ovr.data, prefix, run, &ms);
        gdn__strbuf_free(&ovr);
        if (st)
            break;
        if (is_def)
            def_ms = ms;
        if (ms < best_ms) {
            best_ms = ms;
            memcpy(best, vals, np * sizeof(*vals));
        }
    }
    gdn__free(cands);
    if (st)
        return st;
    if (best_ms == INFINITY) {
        *done = true;
        return GDN_STATUS_OK;
    }
    gdn__tune_format_values(sp, best, text, sizeof(text));
    snprintf(comment, sizeof(comment),
             "%.4f ms; generic default %.4f ms; %d of %d legal tried, %d rejected", best_ms,
             def_ms, tried, (int)legal, rejected);
    st = gdn__tune_db_set(ctx->tune_db, sp->stage, z->tp.bucket, text, comment);
    gdn__strbuf_appendf(&z->rep, "%-*s %-*s %-*s %s\n", z->s->width[0], sp->stage,
                        z->s->width[1], z->tp.bucket, z->s->width[2], text, comment);
    gdn__log(ctx, GDN_LOG_LEVEL_INFO, "%s [%zu/%zu] %s %s: %s (%s); %.1f s elapsed", z->s->what,
             si + 1, ns, sp->stage, z->tp.bucket, text, comment, gdn__now() - z->t0);
    return st;
}

/* Everything after setup: reference, stages. */
static gdn_status search_all(struct search *z)
{
    const struct gdn_tune_search *s   = z->s;
    gdn_context                  *ctx = z->ctx;
    struct gdn_strbuf             ovr = {0};
    gdn_status                    st  = GDN_STATUS_OK;
    bool                          done = false;
    size_t                        si;
    int                           i;

    for (i = 0; i < s->n_outs; i++) {
        if (!z->tp.outs[i])
            return gdn__fail(ctx, GDN_STATUS_INVALID_ARGUMENT, "%s: output %s missing",
                             s->what, s->out_names[i]);
        z->n[i]   = gdn_tensor_numel(z->tp.outs[i]);
        z->off[i] = z->n_all;
        z->n_all += z->n[i];
    }
    z->ref = gdn__malloc((size_t)z->n_all * sizeof(float));
    z->got = gdn__malloc((size_t)z->n_all * sizeof(float));
    if (!z->ref || !z->got)
        return gdn__fail(ctx, GDN_STATUS_OUT_OF_HOST_MEMORY, "%s: out of memory", s->what);

    /* Reference: every stage at its generic default. */
    for (si = 0; si < s->n_stages; si++) {
        const struct gdn_tune_space *sp = s->stages[si];
        for (i = 0; i < sp->n_params; i++)
            z->defs[si][i] = sp->params[i].def;
        if (sp->defaults)
            sp->defaults(z->defs[si], z->tp.shape, &ctx->dev);
    }
    if (!build_override(z, s->n_stages, NULL, &ovr))
        return GDN_STATUS_OUT_OF_HOST_MEMORY;
    for (i = 0; !st && i < (int)s->n_runs; i++)
        if (s->runs[i].reference)
            st = run_read(z, ovr.data, i, z->ref);
    gdn__strbuf_free(&ovr);

    for (si = 0; si < s->n_stages && !st && !done; si++)
        st = search_stage(z, si, &done);
    return st;
}

gdn_status gdn__tune_search(gdn_context *ctx, const struct gdn_tune_search *s, void *problem,
                            double budget_s, char *report, size_t report_cap)
{
    struct search z;
    char         *saved_ovr, *path;
    double        t0 = gdn__now();
    gdn_status    st;
    size_t        i;

    if (!ctx || !s)
        return GDN_STATUS_INVALID_ARGUMENT;
    if (s->n_stages > GDN_TUNE_MAX_STAGES || s->n_outs > GDN_TUNE_MAX_OUTS)
        return gdn__fail(ctx, GDN_STATUS_INVALID_ARGUMENT, "%s: too many stages or outputs",
                         s->fn);
    for (i = 0; i < s->n_stages; i++)
        if (s->stage_run[i] < 0 || (size_t)s->stage_run[i] >= s->n_runs)
            return gdn__fail(ctx, GDN_STATUS_INVALID_ARGUMENT, "%s: stage %s has no run",
                             s->fn, s->stages[i]->stage);
    for (i = 0; i < s->n_runs; i++)
        if (s->runs[i].first_out < 0 || s->runs[i].n_outs < 0 ||
            s->runs[i].first_out + s->runs[i].n_outs > s->n_outs)
            return gdn__fail(ctx, GDN_STATUS_INVALID_ARGUMENT, "%s: run %zu has bad outputs",
                             s->fn, i);
    if (!(budget_s > 0))
        budget_s = 300;
    path = gdn__tune_db_default_path(ctx);
    if (!path)
        return gdn__fail(ctx, GDN_STATUS_IO,
                         "%s: no cache folder for the tuning database (set GDN_CACHE_DIR)",
                         s->fn);
    /* The user DB is loaded first so that its other rows are kept. */
    if (!gdn__tune_ctx_db(ctx)) {
        gdn__free(path);
        return gdn__fail(ctx, GDN_STATUS_OUT_OF_HOST_MEMORY, "%s: out of memory", s->what);
    }
    memset(&z, 0, sizeof(z));
    z.ctx = ctx, z.s = s, z.problem = problem, z.t0 = t0, z.budget_s = budget_s;

    gdn__tune_begin(ctx); /* no lazy tuning inside the tuner's own runs */
    saved_ovr = ctx->tune_override;
    st        = s->setup(ctx, problem, &z.tp);
    if (!st)
        st = search_all(&z);
    if (!st)
        st = gdn__tune_db_save(ctx, ctx->tune_db, path);
    ctx->tune_override = saved_ovr;
    gdn__tune_end(ctx, gdn__now() - t0);
    if (report && report_cap && z.rep.data)
        gdn__strlcpy(report, z.rep.data, report_cap);
    s->teardown(problem);
    gdn__strbuf_free(&z.rep);
    gdn__free(z.ref);
    gdn__free(z.got);
    gdn__free(path);
    return st;
}

gdn_status gdn__tune_upload(gdn_context *ctx, int nd, const int64_t *shape, float lo, float hi,
                            bool l2, uint32_t *seed, gdn_tensor **out)
{
    size_t     n = 1, i, j, D = (size_t)shape[nd - 1];
    float     *h;
    gdn_status st = gdn_tensor_create(ctx, GDN_DTYPE_F32, nd, shape, out);
    if (st)
        return st;
    for (i = 0; i < (size_t)nd; i++)
        n *= (size_t)shape[i];
    h = gdn__malloc((n ? n : 1) * sizeof(float));
    if (!h)
        return gdn__fail(ctx, GDN_STATUS_OUT_OF_HOST_MEMORY, "tune: out of memory");
    for (i = 0; i < n; i++) {
        *seed = *seed * 1664525u + 1013904223u;
        h[i]  = lo + (hi - lo) * (float)(*seed >> 8) / 16777216.0f;
    }
    for (i = 0; l2 && D && i < n / D; i++) {
        double s2 = 0;
        for (j = 0; j < D; j++)
            s2 += (double)h[i * D + j] * h[i * D + j];
        for (j = 0; j < D; j++)
            h[i * D + j] = (float)(h[i * D + j] / sqrt(s2 + 1e-12));
    }
    st = gdn_tensor_write(*out, h, 0, n * sizeof(float));
    gdn__free(h);
    return st;
}
