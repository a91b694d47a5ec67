/*
 * bench_model.c - whole models through the public API: a training step
 * (forward, cross-entropy, backward, AdamW), prefill of a batch of prompts,
 * and decode steps at batch 1, 16, 64 and 256, for each preset that fits
 * the device.
 *
 * FLOP model: 6 x (parameters of the matrices: projections, MLPs, head) x
 * tokens for a training step and 2 x ... x tokens for prefill and decode
 * (the matrix products, which dominate at these widths); the mixers' own
 * FLOPs (gated delta rule, attention, SSD: bench_gated_delta, bench_swa,
 * bench_mamba2) are not counted, so the rate is a lower bound of the work
 * done. It is shown against the device's measured fp32 FMA peak.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_util.h"

#define HDR                                                                                        \
    "what,preset,layers,vocab,B,T,params,wall_ms_median,wall_ms_p10,wall_ms_p90,device_ms_median,"      \
    "tokens_per_s,gflops,fma_peak_frac"

struct mcase {
    gdn_context             *ctx;
    gdn_model               *m;
    gdn_model_config         cfg;
    int                      B, T;
    gdn_tensor              *ids, *tg, *lg, *loss;
    gdn_model_batch          batch;
    gdn_adamw_params         ap;
    gdn_cross_entropy_params cp;
    gdn_cross_entropy_out    co;
    /* decode */
    gdn_model_state *st;
    gdn_tensor      *dids, *dlg;
};

static bool                 g_profile;
static struct gdn_prof_sum *g_ps; /* profile of the last timed() call */
static size_t               g_np;

static int cmp_prof(const void *a, const void *b)
{
    double x = ((const struct gdn_prof_sum *)a)->ms, y = ((const struct gdn_prof_sum *)b)->ms;
    return x < y ? 1 : x > y ? -1 : 0;
}

/* Time fn; with --profile keep its kernels for report(). */
static gdn_status timed(gdn_context *ctx, bench_fn fn, void *arg, int warmup, int reps,
                        struct bench_stats *w, struct bench_stats *d)
{
    gdn__free(g_ps);
    g_ps = NULL;
    g_np = 0;
    return bench_time(ctx, fn, arg, warmup, reps, w, d, g_profile ? &g_ps : NULL, &g_np);
}

static void print_profile(void)
{
    double tot = 0;
    int    cnt = 0;
    if (!g_ps)
        return;
    qsort(g_ps, g_np, sizeof(*g_ps), cmp_prof);
    for (size_t i = 0; i < g_np; i++)
        tot += g_ps[i].ms, cnt += g_ps[i].count;
    printf("    profile: %d launches, %.3f ms in kernels\n", cnt, tot);
    for (size_t i = 0; i < g_np && i < 10; i++)
        printf("      %-36s %5d  %9.3f ms\n", g_ps[i].name, g_ps[i].count, g_ps[i].ms);
    gdn__free(g_ps);
    g_ps = NULL;
}

static gdn_status fn_train(void *arg)
{
    struct mcase   *c    = arg;
    gdn_model_tape *tape = NULL;
    gdn_status      st;
    (void)((st = gdn_model_zero_grad(c->m)) ||
           (st = gdn_model_forward(c->m, &c->batch, c->lg, &tape)) ||
           (st = gdn_cross_entropy_forward(c->ctx, &c->cp, c->lg, c->tg, &c->co)) ||
           (st = gdn_cross_entropy_backward(c->ctx, &c->cp, c->lg, c->tg, NULL, NULL, c->lg)) ||
           (st = gdn_model_backward(c->m, tape, c->lg)));
    gdn_model_tape_destroy(tape);
    return st ? st : gdn_model_optimizer_step(c->m, &c->ap, NULL);
}

static gdn_status fn_prefill(void *arg)
{
    struct mcase *c = arg;
    return gdn_model_prefill(c->m, c->st, &c->batch, c->dlg);
}

static gdn_status fn_decode(void *arg)
{
    struct mcase *c = arg;
    return gdn_model_decode(c->m, c->st, c->dids, c->dlg);
}

/* Parameters of the matrices (every 2-D parameter; the embedding counts
 * only as the head when tied, since a lookup does no FLOPs). */
static double matrix_params(gdn_model *m, const gdn_model_config *cfg)
{
    double n = 0;
    for (int32_t i = 0; i < gdn_model_param_tensors(m); i++) {
        const char *name;
        int64_t     numel;
        gdn_model_param_info(m, i, &name, &numel);
        if (strstr(name, "proj.weight") || (cfg->tie_embeddings && strstr(name, "embeddings")) ||
            !strcmp(name, "lm_head.weight"))
            n += (double)numel;
    }
    return n;
}

static void report(gdn_context *ctx, struct bench_out *out, const struct bench_ceilings *ceil,
                   const char *what, const char *preset, const gdn_model_config *cfg, int B,
                   int T, double params, double tokens, double flop,
                   const struct bench_stats *w, const struct bench_stats *d)
{
    /* rates from wall time: the profiled device time misses host gaps */
    double gf = flop / (w->median * 1e6), tps = tokens / (w->median * 1e-3);
    (void)ctx;
    printf("  %-16s B=%-4d T=%-6d wall %9.3f ms (p10 %.3f, p90 %.3f)  %10.0f tok/s  %8.1f GFLOP/s "
           "%5.1f%% of FMA peak\n",
           what, B, T, w->median, w->p10, w->p90, tps, gf, 100 * gf / ceil->fma_gflops);
    bench_out_row(out, HDR, "%s,%s,%s,%d,%d,%d,%.0f,%.4f,%.4f,%.4f,%.4f,%.1f,%.2f,%.4f", what,
                  preset, cfg->layers, cfg->vocab, B, T, params, w->median, w->p10, w->p90, d->median, tps, gf,
                  gf / ceil->fma_gflops);
    print_profile();
}

static gdn_status ids_random(gdn_context *ctx, int64_t n0, int64_t n1, int32_t vocab,
                             unsigned *seed, gdn_tensor **out)
{
    int64_t    n   = n0 * n1;
    int32_t   *ids = malloc((size_t)n * sizeof(int32_t));
    gdn_status st;
    if (!ids)
        return GDN_STATUS_OUT_OF_HOST_MEMORY;
    for (int64_t i = 0; i < n; i++) {
        *seed  = *seed * 1103515245u + 12345u;
        ids[i] = (int32_t)((*seed >> 8) % (unsigned)vocab);
    }
    st = n1 ? gdn_tensor_create(ctx, GDN_DTYPE_I32, 2, (const int64_t[]){n0, n1}, out)
            : gdn_tensor_create(ctx, GDN_DTYPE_I32, 1, (const int64_t[]){n0}, out);
    if (!st)
        st = gdn_tensor_write(*out, ids, 0, (size_t)n * sizeof(int32_t));
    free(ids);
    return st;
}

static void case_free(struct mcase *c)
{
    gdn_tensor_destroy(c->ids);
    gdn_tensor_destroy(c->tg);
    gdn_tensor_destroy(c->lg);
    gdn_tensor_destroy(c->loss);
    gdn_tensor_destroy(c->dids);
    gdn_tensor_destroy(c->dlg);
    gdn_model_state_destroy(c->st);
    gdn_model_destroy(c->m);
    memset(c, 0, sizeof(*c));
}

struct preset_case {
    const char *preset;
    int         vocab; /* 0: the preset's */
    int         B, T;  /* training and prefill batch */
};

static gdn_status run_preset(gdn_context *ctx, const struct preset_case *pc, bool quick,
                             int reps, const struct bench_ceilings *ceil, struct bench_out *out)
{
    struct mcase       c;
    struct bench_stats w, d;
    unsigned           seed = 7;
    gdn_status         st;
    double             P, tokens;
    static const int   dec_gpu[] = {1, 16, 64, 256}, dec_cpu[] = {1, 16};
    const int         *dec = (ctx->dev.info.flags & GDN_DEVICE_FLAG_GPU) ? dec_gpu : dec_cpu;
    int ndec = (ctx->dev.info.flags & GDN_DEVICE_FLAG_GPU) ? 4 : (quick ? 1 : 2);
    memset(&c, 0, sizeof(c));
    c.ctx = ctx;
    c.B   = pc->B;
    c.T   = pc->T;
    gdn_model_config_preset(pc->preset, &c.cfg);
    if (pc->vocab)
        c.cfg.vocab = pc->vocab;
    st = gdn_model_create(ctx, &c.cfg, 1, &c.m);
    if (st)
        return st;
    gdn_model_get_config(c.m, &c.cfg);
    P = matrix_params(c.m, &c.cfg);
    printf("\n%s: layers \"%s\", D = %d, vocab %d, %.1f M parameters (%.1f M in matrices)\n",
           pc->preset, c.cfg.layers, c.cfg.d_model, c.cfg.vocab,
           (double)gdn_model_param_count(c.m) / 1e6, P / 1e6);
    fflush(stdout);
    gdn_adamw_params_init(&c.ap);
    gdn_cross_entropy_params_init(&c.cp);
    if ((st = ids_random(ctx, c.B, c.T, c.cfg.vocab, &seed, &c.ids)) ||
        (st = ids_random(ctx, c.B, c.T, c.cfg.vocab, &seed, &c.tg)) ||
        (st = gdn_tensor_create(ctx, GDN_DTYPE_F32, 3, (const int64_t[]){c.B, c.T, c.cfg.vocab},
                                &c.lg)) ||
        (st = gdn_tensor_create(ctx, GDN_DTYPE_F32, 1, (const int64_t[]){1}, &c.loss)))
        goto done;
    c.co.loss   = c.loss;
    c.batch.ids = c.ids;
    tokens      = (double)c.B * c.T;
    if ((st = timed(ctx, fn_train, &c, 1, reps, &w, &d)))
        goto done;
    report(ctx, out, ceil, "train step", pc->preset, &c.cfg, c.B, c.T, P, tokens, 6 * P * tokens,
           &w, &d);
    /* prefill of B prompts of T tokens: logits of the last tokens only */
    if ((st = gdn_model_state_create(c.m, c.B, &c.st)) ||
        (st = gdn_tensor_create(ctx, GDN_DTYPE_F32, 2, (const int64_t[]){c.B, c.cfg.vocab},
                                &c.dlg)) ||
        (st = timed(ctx, fn_prefill, &c, 1, reps, &w, &d)))
        goto done;
    report(ctx, out, ceil, "prefill", pc->preset, &c.cfg, c.B, c.T, P, tokens, 2 * P * tokens, &w,
           &d);
    gdn_model_state_destroy(c.st);
    gdn_tensor_destroy(c.dlg);
    c.st  = NULL;
    c.dlg = NULL;
    /* decode: N sequences after a 16-token prompt each, one token per step */
    for (int i = 0; i < ndec; i++) {
        int N = dec[i];
        gdn_tensor_destroy(c.ids);
        c.ids = NULL;
        if ((st = ids_random(ctx, N, 16, c.cfg.vocab, &seed, &c.ids)) ||
            (st = ids_random(ctx, N, 0, c.cfg.vocab, &seed, &c.dids)) ||
            (st = gdn_model_state_create(c.m, N, &c.st)) ||
            (st = gdn_tensor_create(ctx, GDN_DTYPE_F32, 2, (const int64_t[]){N, c.cfg.vocab},
                                    &c.dlg)))
            goto done;
        c.batch.ids = c.ids;
        if ((st = gdn_model_prefill(c.m, c.st, &c.batch, c.dlg)) ||
            (st = timed(ctx, fn_decode, &c, 2, reps, &w, &d)))
            goto done;
        report(ctx, out, ceil, "decode", pc->preset, &c.cfg, N, 1, P, N, 2 * P * N, &w, &d);
        gdn_model_state_destroy(c.st);
        gdn_tensor_destroy(c.dlg);
        gdn_tensor_destroy(c.dids);
        c.st   = NULL;
        c.dlg  = NULL;
        c.dids = NULL;
    }
done:
    if (st)
        fprintf(stderr, "  %s: %s: %s\n", pc->preset, gdn_status_string(st),
                gdn_context_last_error(ctx));
    case_free(&c);
    return st;
}

int main(int argc, char **argv)
{
    struct bench_opts     opt = BENCH_OPTS_INIT;
    gdn_context          *ctx = NULL;
    struct bench_ceilings ceil;
    struct bench_out      bout;
    const char           *only = NULL;
    gdn_status            st   = GDN_STATUS_OK;
    static const struct preset_case quick_cases[] = {{"tiny-h1", 0, 2, 64}};
    static const struct preset_case cpu_cases[]   = {
        {"small-h1", 256, 8, 128}, {"tiny-gdn", 0, 8, 128}, {"tiny-h2", 0, 8, 128}};
    static const struct preset_case gpu_cases[] = {
        {"small-h1", 256, 16, 512}, {"h1-0.4b", 256, 2, 4096}, {"gdn-0.4b", 0, 2, 4096},
        {"h1-0.4b", 0, 2, 4096},    {"h2-0.4b", 0, 2, 4096},   {"h1-1.3b", 0, 1, 4096}};
    const struct preset_case *cases;
    size_t                    ncase;
    for (int i = 1; i < argc; i++) {
        if (bench_common_arg(argc, argv, &i, &opt))
            continue;
        if (!strcmp(argv[i], "--profile")) {
            g_profile = true;
            continue;
        }
        if (!strcmp(argv[i], "--preset") && i + 1 < argc) {
            only = argv[++i];
            continue;
        }
        fprintf(stderr, "usage: %s " BENCH_USAGE " [--preset NAME] [--profile]\n", argv[0]);
        return 2;
    }
    if (bench_no_sweep("model", &opt))
        return 0;
    {
        int rc = bench_begin("model", &opt, &ctx, &ceil, &bout);
        if (rc)
            return rc;
    }
    if (opt.quick)
        cases = quick_cases, ncase = 1;
    else if (ctx->dev.info.flags & GDN_DEVICE_FLAG_GPU)
        cases = gpu_cases, ncase = sizeof(gpu_cases) / sizeof(gpu_cases[0]);
    else
        cases = cpu_cases, ncase = sizeof(cpu_cases) / sizeof(cpu_cases[0]);
    for (size_t i = 0; i < ncase; i++) {
        gdn_status s;
        if (only && strcmp(only, cases[i].preset))
            continue;
        s = run_preset(ctx, &cases[i], opt.quick, opt.quick ? 3 : opt.reps, &ceil, &bout);
        if (s && !st)
            st = s;
    }
    bench_out_close(&bout);
    gdn_context_destroy(ctx);
    return st ? 1 : 0;
}
