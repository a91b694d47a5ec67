/*
 * bench_swa.c - speed of sliding-window attention against the device's own
 * measured ceilings.
 *
 * For each training shape: forward and forward + backward (ms: median,
 * p10-p90 of >= 20 runs after warm-up, wall clock with finish, and the
 * summed device time of the kernels), tokens/s, achieved GFLOP/s and the
 * fraction of the measured fp32 FMA peak, per stage as well. FLOP model
 * (per visible query/key pair, per query head; pairs = sum over tokens of
 * min(i + 1, W), so the cost is O(T W)):
 *   useful:   forward 4 D (q.k, p v); backward 10 D (s, dp, dv, dk, dq)
 *   executed: fwd 4 D; bwd_dkdv 8 D (s, dp, dv, dk); bwd_dq 6 D (s, dp, dq)
 * (the GFLOP/s of the whole call use the useful model, of the stages the
 * executed one; both ignore the masked parts of diagonal tiles).
 * The shapes follow the H1/H2 1.3B SWA layer (16 heads of 128, W = 2048)
 * at T = 4096 and 16384, plus full causal attention at T = 4096 for the
 * O(T^2) contrast. Decode: step time for N sequences with a full ring of
 * W = 2048 entries, and the cache GB/s (k and v read once) against the
 * measured copy bandwidth.
 *
 * --sweep: instead of the fixed shapes, the scaling sweep of bench_util.h:
 * T from 512 up to the tokens per batch (65536 on GPUs with Hq = Hkv = 16;
 * 8192 elsewhere with Hq = Hkv = 2; D = 128, RoPE), forward and forward +
 * backward, two series: `swa` with the window W (--window, default 2048),
 * whose cost per token grows with T up to T = W and is flat beyond (O(T W)
 * per sequence), and `attn_full` (W = T: full causal attention, O(T^2)) as
 * the quadratic reference, on GPUs up to T = 16384 only. --quick runs a
 * two-point sweep as well (T = 128, 256, W = 128, D = 64).
 * FLOP model of the sweep: the useful model above (4 D per visible pair and
 * query head forward, 14 D forward + backward), pairs counted exactly per
 * sequence, causal triangle included: W (W + 1) / 2 + (T - W) W for T > W,
 * T (T + 1) / 2 otherwise, i.e. about T min(W, T) - min(W, T)^2 / 2.
 * Byte model (compulsory fp32 traffic, each tensor read or written once):
 * forward 4 (2 Hq D + 2 Hkv D + Hq) per token (q, k, v in; o, lse out);
 * backward 4 (4 Hq D + 4 Hkv D + Hq) (q, k, v, o, do, lse in; dq, dk, dv out).
 *
 * usage: bench_swa [--quick] [--out DIR] [--device SEL] [--reps N]
 *                  [--only train|decode] [--sweep] [--tokens N] [--window W]
 */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_util.h"

struct shape {
    int B, T, Hq, Hkv, D, W, rope;
};

/* Visible (query, key) pairs of one sequence of L tokens. */
static double pairs_of(double L, double W)
{
    if (L <= W)
        return L * (L + 1) / 2;
    return W * (W + 1) / 2 + (L - W) * W;
}

/* Compulsory bytes per token (see the header comment). */
static double bytes_fwd(const struct shape *s)
{
    return 4.0 * (2.0 * s->Hq * s->D + 2.0 * s->Hkv * s->D + s->Hq);
}
static double bytes_bwd(const struct shape *s)
{
    return 4.0 * (4.0 * s->Hq * s->D + 4.0 * s->Hkv * s->D + s->Hq);
}

static double flop_stage(const char *name, double D)
{
    if (strstr(name, "dkdv"))
        return 8 * D;
    if (strstr(name, "bwd_dq"))
        return 6 * D;
    if (strstr(name, "swa_fwd"))
        return 4 * D;
    return 0;
}

struct swa_case {
    gdn_context   *ctx;
    gdn_swa_params params;
    gdn_swa_args   args;
    gdn_swa_cache  cache;
    gdn_tensor    *q, *k, *v, *o, *do_, *dq, *dk, *dv;
};

static gdn_status fn_fwd(void *arg)
{
    struct swa_case *c = arg;
    return gdn_swa_forward(c->ctx, &c->params, &c->args, c->o, NULL, NULL);
}

static gdn_status fn_fwd_bwd(void *arg)
{
    struct swa_case *c    = arg;
    gdn_swa_tape    *tape = NULL;
    gdn_swa_grads    gr;
    gdn_status       st;
    memset(&gr, 0, sizeof(gr));
    gr.dq = c->dq, gr.dk = c->dk, gr.dv = c->dv;
    st = gdn_swa_forward(c->ctx, &c->params, &c->args, c->o, NULL, &tape);
    if (!st)
        st = gdn_swa_backward(c->ctx, tape, c->do_, &gr);
    gdn_swa_tape_destroy(tape);
    return st;
}

static gdn_status fn_step(void *arg)
{
    struct swa_case *c = arg;
    return gdn_swa_step(c->ctx, &c->params, &c->args, &c->cache, c->o);
}

static void case_free(struct swa_case *c)
{
    gdn_tensor *ts[] = {c->q,  c->k,  c->v,  c->o,       c->do_,     c->dq,        c->dk,
                        c->dv, c->cache.k, c->cache.v, c->cache.len, c->cache.pos};
    size_t      i;
    for (i = 0; i < GDN_ARRAY_SIZE(ts); i++)
        gdn_tensor_destroy(ts[i]);
    memset(c, 0, sizeof(*c));
}

/* Training tensors [B, T, H, D]; decode: [N, H, D] plus a full cache. */
static gdn_status case_init(gdn_context *ctx, const struct shape *s, bool decode,
                            struct swa_case *c)
{
    unsigned   seed = 12345;
    int64_t    sq[4] = {s->B, s->T, s->Hq, s->D}, sk[4] = {s->B, s->T, s->Hkv, s->D};
    int        nd    = 4;
    gdn_status st;

    memset(c, 0, sizeof(*c));
    c->ctx = ctx;
    gdn_swa_params_init(&c->params);
    c->params.window = s->W;
    c->params.flags  = s->rope ? GDN_SWA_ROPE : 0;
    if (decode) {
        sq[1] = s->Hq, sq[2] = s->D, sk[1] = s->Hkv, sk[2] = s->D;
        nd = 3;
    }
    if ((st = bench_random_tensor(ctx, nd, sq, &seed, -1, 1, false, &c->q)) ||
        (st = bench_random_tensor(ctx, nd, sk, &seed, -1, 1, false, &c->k)) ||
        (st = bench_random_tensor(ctx, nd, sk, &seed, -1, 1, false, &c->v)) ||
        (st = gdn_tensor_create(ctx, GDN_DTYPE_F32, nd, sq, &c->o)))
        return st;
    c->args.q = c->q, c->args.k = c->k, c->args.v = c->v;
    if (decode) {
        int64_t  sc[4] = {s->B, s->Hkv, s->W, s->D}, n = s->B;
        int32_t *h     = malloc((size_t)s->B * sizeof(int32_t));
        int      i;
        if (!h)
            return GDN_STATUS_OUT_OF_HOST_MEMORY;
        for (i = 0; i < s->B; i++)
            h[i] = 4 * s->W; /* a full ring */
        if ((st = bench_random_tensor(ctx, 4, sc, &seed, -1, 1, false, &c->cache.k)) ||
            (st = bench_random_tensor(ctx, 4, sc, &seed, -1, 1, false, &c->cache.v)) ||
            (st = gdn_tensor_create(ctx, GDN_DTYPE_I32, 1, &n, &c->cache.len)) ||
            (st = gdn_tensor_create(ctx, GDN_DTYPE_I32, 1, &n, &c->cache.pos)) ||
            (st = gdn_tensor_write(c->cache.len, h, 0, (size_t)n * sizeof(int32_t))) ||
            (st = gdn_tensor_write(c->cache.pos, h, 0, (size_t)n * sizeof(int32_t)))) {
            free(h);
            return st;
        }
        free(h);
        return GDN_STATUS_OK;
    }
    if ((st = bench_random_tensor(ctx, nd, sq, &seed, -1, 1, false, &c->do_)) ||
        (st = gdn_tensor_create(ctx, GDN_DTYPE_F32, nd, sq, &c->dq)) ||
        (st = gdn_tensor_create(ctx, GDN_DTYPE_F32, nd, sk, &c->dk)) ||
        (st = gdn_tensor_create(ctx, GDN_DTYPE_F32, nd, sk, &c->dv)))
        return st;
    return GDN_STATUS_OK;
}

static const char *HDR_TRAIN = "what,B,T,Hq,Hkv,D,W,rope,wall_ms_median,wall_ms_p10,wall_ms_p90,"
                               "device_ms_median,tokens_per_s,gflops,fma_peak_frac";
static const char *HDR_STAGE = "what,B,T,Hq,Hkv,D,W,stage,ms,gflops,fma_peak_frac";
static const char *HDR_DEC   = "what,N,Hq,Hkv,D,W,wall_us_median,wall_us_p10,wall_us_p90,"
                               "device_us_median,cache_gbs,copy_frac";

int main(int argc, char **argv)
{
    struct bench_opts     o    = BENCH_OPTS_INIT;
    bool                  quick;
    const char           *only = NULL;
    int                   reps, i;
    gdn_context          *ctx  = NULL;
    struct bench_ceilings ceil;
    struct bench_out      out;
    gdn_status            st = GDN_STATUS_OK;
    struct shape          train_gpu[] = {{1, 4096, 16, 16, 128, 2048, 1},
                                         {1, 16384, 16, 16, 128, 2048, 1},
                                         {4, 4096, 16, 16, 128, 2048, 1},
                                         {1, 4096, 16, 16, 128, 4096, 1},
                                         {1, 4096, 16, 16, 64, 2048, 0},
                                         {1, 4096, 16, 4, 128, 2048, 0}};
    struct shape          train_cpu[] = {{1, 1024, 2, 2, 128, 256, 1},
                                         {1, 2048, 2, 2, 128, 256, 1}};
    struct shape          train_quick[] = {{1, 256, 2, 1, 64, 64, 1}};
    int                   dec_n[] = {1, 16, 64};
    const struct shape   *train;
    size_t                ntrain;

    for (i = 1; i < argc; i++) {
        if (bench_common_arg(argc, argv, &i, &o))
            continue;
        if (!strcmp(argv[i], "--only") && i + 1 < argc)
            only = argv[++i];
        else {
            fprintf(stderr,
                    "usage: %s " BENCH_USAGE " [--only "
                    "train|decode]\n",
                    argv[0]);
            return 2;
        }
    }
    {
        int rc = bench_begin("swa", &o, &ctx, &ceil, &out);
        if (rc)
            return rc;
        quick = o.quick, reps = o.reps;
    }

    if (quick)
        train = train_quick, ntrain = GDN_ARRAY_SIZE(train_quick);
    else if (ctx->dev.info.flags & GDN_DEVICE_FLAG_GPU)
        train = train_gpu, ntrain = GDN_ARRAY_SIZE(train_gpu);
    else
        train = train_cpu, ntrain = GDN_ARRAY_SIZE(train_cpu);
    if (o.sweep || (only && !strcmp(only, "decode")))
        ntrain = 0;

    for (i = 0; i < (int)ntrain && !st; i++) {
        const struct shape  *s = &train[i];
        struct swa_case      c;
        struct bench_stats   w, d;
        struct gdn_prof_sum *prof = NULL;
        size_t               nprof = 0, j;
        double               ph    = (double)s->B * s->Hq * pairs_of(s->T, s->W);
        int                  pass;
        const char          *names[] = {"fwd", "fwd+bwd"};
        bench_fn             fns[]   = {fn_fwd, fn_fwd_bwd};
        double               flops[2];

        flops[0] = ph * 4.0 * s->D;
        flops[1] = ph * 14.0 * s->D;
        printf("\nB=%d T=%d Hq=%d Hkv=%d D=%d W=%d rope=%d (%.3g visible pairs per head)\n",
               s->B, s->T, s->Hq, s->Hkv, s->D, s->W, s->rope, ph / s->Hq);
        st = case_init(ctx, s, false, &c);
        for (pass = 0; pass < 2 && !st; pass++) {
            st = bench_time(ctx, fns[pass], &c, quick ? 1 : 2, reps, &w, &d, &prof, &nprof);
            if (st) {
                fprintf(stderr, "  %s: %s: %s\n", names[pass], gdn_status_string(st),
                        gdn_context_last_error(ctx));
                break;
            }
            printf("  %-8s wall %9.3f ms (p10 %.3f, p90 %.3f, n=%d)  device %9.3f ms  %10.0f "
                   "tok/s  %8.1f GFLOP/s  %5.1f%% of FMA peak\n",
                   names[pass], w.median, w.p10, w.p90, w.n, d.median,
                   (double)s->B * s->T / (w.median * 1e-3), flops[pass] / (w.median * 1e6),
                   100 * flops[pass] / (w.median * 1e6) / ceil.fma_gflops);
            bench_out_row(&out, HDR_TRAIN,
                          "what=\"%s\";B=%d;T=%d;Hq=%d;Hkv=%d;D=%d;W=%d;rope=%d;"
                          "wall_ms_median=%.4f;wall_ms_p10=%.4f;wall_ms_p90=%.4f;"
                          "device_ms_median=%.4f;tokens_per_s=%.1f;gflops=%.2f;"
                          "fma_peak_frac=%.4f",
                          names[pass], s->B, s->T, s->Hq, s->Hkv, s->D, s->W, s->rope, w.median,
                          w.p10, w.p90, d.median, (double)s->B * s->T / (w.median * 1e-3),
                          flops[pass] / (w.median * 1e6),
                          flops[pass] / (w.median * 1e6) / ceil.fma_gflops);
            for (j = 0; j < nprof; j++) {
                double f = flop_stage(prof[j].name, s->D) * ph;
                printf("      %-24s %9.3f ms", prof[j].name, prof[j].ms);
                if (f > 0)
                    printf("  %8.1f GFLOP/s  %5.1f%% of FMA peak", f / (prof[j].ms * 1e6),
                           100 * f / (prof[j].ms * 1e6) / ceil.fma_gflops);
                printf("\n");
                bench_out_row(&out, HDR_STAGE,
                              "what=\"%s\";B=%d;T=%d;Hq=%d;Hkv=%d;D=%d;W=%d;stage=\"%s\";"
                              "ms=%.4f;gflops=%.2f;fma_peak_frac=%.4f",
                              names[pass], s->B, s->T, s->Hq, s->Hkv, s->D, s->W, prof[j].name,
                              prof[j].ms, f / (prof[j].ms * 1e6),
                              f / (prof[j].ms * 1e6) / ceil.fma_gflops);
            }
            gdn__free(prof);
            prof = NULL;
        }
        case_free(&c);
    }

    /* Scaling sweep: T doubles at a fixed number of tokens per batch; the
     * window W, then W = T (full causal attention). */
    if ((o.sweep || quick) && !st) {
        const bool gpu = (ctx->dev.info.flags & GDN_DEVICE_FLAG_GPU) != 0 && !quick;
        const int  heads = gpu ? 16 : 2, D = quick ? 64 : 128;
        const int  W = o.window > 0 ? o.window : quick ? 128 : GDN_SWA_DEFAULT_WINDOW;
        const int  full_tmax = gpu ? 16384 : 1 << 30;
        int        tokens, Ts[BENCH_SWEEP_MAX], n = bench_sweep_lengths(&o, gpu, &tokens, Ts), j;
        int        series;
        printf("\nsweep: %d tokens per batch, Hq=Hkv=%d D=%d rope, W=%d and W=T, median of %d\n",
               tokens, heads, D, W, reps);
        for (series = 0; series < 2 && !st; series++) {
            for (j = 0; j < n && !st; j++) {
                struct shape    sh = {tokens / Ts[j], Ts[j], heads, heads, D,
                                      series ? Ts[j] : W, 1};
                struct swa_case c;
                const double    ph = (double)sh.B * sh.Hq * pairs_of(sh.T, sh.W);
                char            shape[96];
                int             pass;
                if (series && sh.T > full_tmax)
                    break;
                snprintf(shape, sizeof(shape), "Hq=%d Hkv=%d D=%d W=%s%d rope=1", sh.Hq, sh.Hkv,
                         sh.D, series ? "T=" : "", sh.W);
                st = case_init(ctx, &sh, false, &c);
                for (pass = 0; pass < 2 && !st; pass++) {
                    struct bench_stats       w, d;
                    struct bench_sweep_point p = {series ? "attn_full" : "swa",
                                                  pass ? "fwd+bwd" : "fwd", shape, sh.B, sh.T,
                                                  0, 0};
                    p.flop  = ph * (pass ? 14.0 : 4.0) * sh.D;
                    p.bytes = (double)sh.B * sh.T *
                              (bytes_fwd(&sh) + (pass ? bytes_bwd(&sh) : 0));
                    st = bench_time(ctx, pass ? fn_fwd_bwd : fn_fwd, &c, 1, reps, &w, &d, NULL,
                                    NULL);
                    if (!st)
                        bench_sweep_report(&out, &ceil, &p, &w, &d);
                }
                case_free(&c);
            }
        }
    }

    /* Decode: N sequences, 16 heads of 128, a full ring of W = 2048 (not with
     * --sweep). */
    for (i = 0; i < (int)GDN_ARRAY_SIZE(dec_n) && !o.sweep && !st &&
                !(only && !strcmp(only, "train"));
         i++) {
        struct shape       s = {dec_n[i], 1, 16, 16, 128, quick ? 256 : 2048, 1};
        struct swa_case    c;
        struct bench_stats w, d;
        double             bytes;
        if (quick && dec_n[i] > 16)
            break;
        bytes = 2.0 * 4.0 * s.B * s.Hkv * (double)s.W * s.D;
        st    = case_init(ctx, &s, true, &c);
        if (!st)
            st = bench_time(ctx, fn_step, &c, 3, quick ? 3 : 50, &w, &d, NULL, NULL);
        if (!st) {
            printf("%sdecode N=%-4d W=%d wall %8.1f us (p10 %.1f, p90 %.1f)  device %8.1f us  "
                   "cache %7.1f GB/s  %5.1f%% of copy\n",
                   i == 0 ? "\n" : "", s.B, s.W, 1e3 * w.median, 1e3 * w.p10, 1e3 * w.p90,
                   1e3 * d.median, bytes / (d.median * 1e6),
                   100 * bytes / (d.median * 1e6) / ceil.copy_gbs);
            bench_out_row(&out, HDR_DEC,
                          "what=\"decode\";N=%d;Hq=%d;Hkv=%d;D=%d;W=%d;wall_us_median=%.2f;"
                          "wall_us_p10=%.2f;wall_us_p90=%.2f;device_us_median=%.2f;"
                          "cache_gbs=%.1f;copy_frac=%.4f",
                          s.B, s.Hq, s.Hkv, s.D, s.W, 1e3 * w.median, 1e3 * w.p10, 1e3 * w.p90,
                          1e3 * d.median, bytes / (d.median * 1e6),
                          bytes / (d.median * 1e6) / ceil.copy_gbs);
        }
        case_free(&c);
    }
    if (st)
        fprintf(stderr, "bench: %s: %s\n", gdn_status_string(st), gdn_context_last_error(ctx));
    bench_out_close(&out);
    gdn_context_destroy(ctx);
    return st ? 1 : 0;
}
