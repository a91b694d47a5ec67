/*
 * bench_gated_delta.c - speed of the gated delta rule against the device's
 * own measured ceilings.
 *
 * For each training shape: chunked forward, forward + backward, and the
 * fused recurrent forward (ms: median, p10-p90 of >= 20 runs after warm-up,
 * wall clock with finish, and the summed device time of the kernels), with
 * tokens/s, achieved GFLOP/s from the FLOP model of docs/ALGORITHM.md §7 and
 * the fraction of the measured fp32 FMA peak, per stage as well. For decode:
 * step time and state GB/s against the measured copy bandwidth, and the
 * wall time per step when 32 steps are enqueued back to back with one
 * finish, as a decode loop enqueues one layer after the other (the single
 * step's wall time includes the driver's launch + finish round trip).
 *
 * usage: bench_gated_delta [--quick] [--out DIR] [--device SEL] [--reps N]
 *                          [--shape B,T,H,HV,K,V] [--only fwd|fwd+bwd|recurrent_fwd|decode]
 *                          [--sweep] [--tokens N]
 * --sweep: instead of the fixed shapes, the scaling sweep of bench_util.h: the
 * sequence length from 512 up to the tokens per batch (65536 on GPUs, H = 16;
 * 8192 elsewhere, H = 2; K = V = 128), chunked forward and forward + backward.
 * The chunked algorithm's cost is linear in T, so tokens/s should stay flat.
 * --quick runs a two-point sweep as well (T = 128, 256, H = 2, K = V = 64).
 * Byte model of the sweep: ALGORITHM.md §7's estimate with 4-byte (fp32)
 * activations, per token and value head: forward 4 (7K + 6V + 2C + 2KV/C) +
 * 30, backward 4 (20K + 15V + 2C + 4KV/C) + 60.
 */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_util.h"

#define C_ 64.0

/* FLOP per token and value head, as implemented (ALGORITHM.md §7). */
static double flop_fwd(double K, double V)
{
    return 1.25 * C_ * K + (4 * 7168 + 131072) / C_ + 2 * C_ * K + 2 * C_ * V + 4 * K * V +
           (2 * K * V + 2 * C_ * K + 2 * C_ * V);
}
static double flop_bwd(double K, double V)
{
    return 18 * C_ * K + 10 * C_ * V + 16 * K * V + 4 * C_ * C_;
}
static double bytes_fwd(double K, double V)
{
    return 4 * (7 * K + 6 * V + 2 * C_ + 2 * K * V / C_) + 30;
}
static double bytes_bwd(double K, double V)
{
    return 4 * (20 * K + 15 * V + 2 * C_ + 4 * K * V / C_) + 60;
}
/* Per-stage FLOP per token and value head, by kernel-name substring. */
static double flop_stage(const char *name, double K, double V)
{
    if (strstr(name, "kkt"))
        return 1.25 * C_ * K + (4 * 7168 + 131072) / C_;
    if (strstr(name, "wy_fwd"))
        return 2 * C_ * K + 2 * C_ * V;
    if (strstr(name, "state_fwd"))
        return 4 * K * V;
    if (strstr(name, "out_fwd"))
        return 2 * K * V + 2 * C_ * K + 2 * C_ * V;
    if (strstr(name, "dv_local"))
        return 2 * C_ * K + 2 * C_ * V;
    if (strstr(name, "state_bwd"))
        return 6 * K * V;
    if (strstr(name, "dqkwg"))
        return 6 * K * V + 4 * C_ * K + 2 * C_ * V;
    if (strstr(name, "wy_bwd"))
        return 10 * C_ * K + 4 * C_ * V + 4 * C_ * C_;
    if (strstr(name, "recurrent"))
        return 7 * K * V;
    return 0;
}

struct shape {
    int B, T, H, HV, K, V;
};

struct gd_case {
    gdn_context           *ctx;
    gdn_gated_delta_params params;
    gdn_gated_delta_args   args;
    gdn_tensor            *q, *k, *v, *g, *beta, *o, *ht, *do_, *dq, *dk, *dv, *dg, *db, *dh0;
    gdn_tensor            *state;
};

static gdn_status fn_fwd(void *arg)
{
    struct gd_case *c = arg;
    return gdn_gated_delta_forward(c->ctx, &c->params, &c->args, c->o, NULL, NULL);
}

static gdn_status fn_fwd_bwd(void *arg)
{
    struct gd_case       *c    = arg;
    gdn_gated_delta_tape *tape = NULL;
    gdn_gated_delta_grads gr;
    gdn_status            st;
    memset(&gr, 0, sizeof(gr));
    gr.dq = c->dq, gr.dk = c->dk, gr.dv = c->dv, gr.dg = c->dg, gr.dbeta = c->db;
    st = gdn_gated_delta_forward(c->ctx, &c->params, &c->args, c->o, NULL, &tape);
    if (!st)
        st = gdn_gated_delta_backward(c->ctx, tape, c->do_, NULL, &gr);
    gdn_gated_delta_tape_destroy(tape);
    return st;
}

static gdn_status fn_recurrent(void *arg)
{
    struct gd_case *c = arg;
    return gdn_gated_delta_recurrent(c->ctx, &c->params, &c->args, c->o, NULL);
}

static gdn_status fn_step(void *arg)
{
    struct gd_case *c = arg;
    return gdn_gated_delta_step(c->ctx, &c->params, &c->args, c->state, c->o);
}

static void case_free(struct gd_case *c)
{
    gdn_tensor *ts[] = {c->q,  c->k,  c->v,  c->g,  c->beta, c->o,  c->ht,   c->do_,
                        c->dq, c->dk, c->dv, c->dg, c->db,   c->dh0, c->state};
    size_t      i;
    for (i = 0; i < GDN_ARRAY_SIZE(ts); i++)
        gdn_tensor_destroy(ts[i]);
    memset(c, 0, sizeof(*c));
}

/* Tensors of a [B, T, ...] problem (decode: T = 1, 3-D). */
static gdn_status case_init(gdn_context *ctx, const struct shape *s, bool grads, bool decode,
                            struct gd_case *c)
{
    unsigned   seed = 12345;
    int64_t    qk[4] = {s->B, s->T, s->H, s->K}, vv[4] = {s->B, s->T, s->HV, s->V};
    int64_t    gg[3] = {s->B, s->T, s->HV}, st4[4] = {s->B, s->HV, s->K, s->V};
    int        nd = 4, off = 0;
    gdn_status st;

    memset(c, 0, sizeof(*c));
    c->ctx = ctx;
    gdn_gated_delta_params_init(&c->params);
    if (decode) {
        /* [N, H, K] etc.: drop the T axis. */
        qk[1] = s->H, qk[2] = s->K, vv[1] = s->HV, vv[2] = s->V, gg[1] = s->HV;
        nd    = 3;
        off   = 1;
    }
    if ((st = bench_random_tensor(ctx, nd, qk, &seed, -1, 1, true, &c->q)) ||
        (st = bench_random_tensor(ctx, nd, qk, &seed, -1, 1, true, &c->k)) ||
        (st = bench_random_tensor(ctx, nd, vv, &seed, -1, 1, false, &c->v)) ||
        (st = bench_random_tensor(ctx, nd - 1, gg, &seed, -2, 0, false, &c->g)) ||
        (st = bench_random_tensor(ctx, nd - 1, gg, &seed, 0, 1, false, &c->beta)) ||
        (st = gdn_tensor_create(ctx, GDN_DTYPE_F32, nd, vv, &c->o)))
        return st;
    (void)off;
    if (decode && (st = bench_random_tensor(ctx, 4, st4, &seed, -0.1f, 0.1f, false, &c->state)))
        return st;
    if (grads) {
        if ((st = bench_random_tensor(ctx, nd, vv, &seed, -1, 1, false, &c->do_)) ||
            (st = gdn_tensor_create(ctx, GDN_DTYPE_F32, nd, qk, &c->dq)) ||
            (st = gdn_tensor_create(ctx, GDN_DTYPE_F32, nd, qk, &c->dk)) ||
            (st = gdn_tensor_create(ctx, GDN_DTYPE_F32, nd, vv, &c->dv)) ||
            (st = gdn_tensor_create(ctx, GDN_DTYPE_F32, nd - 1, gg, &c->dg)) ||
            (st = gdn_tensor_create(ctx, GDN_DTYPE_F32, nd - 1, gg, &c->db)))
            return st;
    }
    c->args.q = c->q, c->args.k = c->k, c->args.v = c->v, c->args.g = c->g,
    c->args.beta = c->beta;
    return GDN_STATUS_OK;
}

static void print_stages(const struct gdn_prof_sum *p, size_t n, double K, double V,
                         double tokens_heads, const struct bench_ceilings *ceil)
{
    size_t i;
    double total = 0;
    for (i = 0; i < n; i++)
        total += p[i].ms;
    for (i = 0; i < n; i++) {
        double f = flop_stage(p[i].name, K, V) * tokens_heads;
        printf("      %-34s %8.3f ms %5.1f%%", p[i].name, p[i].ms, 100 * p[i].ms / total);
        if (f > 0)
            printf("  %8.1f GFLOP/s  %5.1f%% of FMA peak", f / (p[i].ms * 1e6),
                   100 * f / (p[i].ms * 1e6) / ceil->fma_gflops);
        printf("\n");
    }
}

static const char *HDR_TRAIN =
    "what,B,T,H,HV,K,V,wall_ms_median,wall_ms_p10,wall_ms_p90,device_ms_median,tokens_per_s,"
    "gflops,fma_peak_frac";
static const char *HDR_STAGE = "what,B,T,H,HV,K,V,stage,ms,gflops,fma_peak_frac";
static const char *HDR_DEC =
    "what,N,H,HV,K,V,wall_us_median,wall_us_p10,wall_us_p90,device_us_median,state_gbs,"
    "copy_frac,batched_us_median";

int main(int argc, char **argv)
{
    struct bench_opts     o     = BENCH_OPTS_INIT;
    bool                  quick;
    int                   reps, i;
    gdn_context          *ctx = NULL;
    struct bench_ceilings ceil;
    struct bench_out      out;
    gdn_status            st = GDN_STATUS_OK;
    struct shape          train_gpu[] = {{4, 4096, 16, 16, 128, 128}, {1, 16384, 16, 16, 128, 128}};
    struct shape          train_cpu[] = {{1, 4096, 2, 2, 128, 128}, {1, 4096, 4, 4, 64, 64}};
    struct shape          train_quick[] = {{2, 256, 2, 2, 64, 64}};
    int                   dec_n[] = {1, 16, 64, 256};
    const struct shape   *train;
    size_t                ntrain;
    struct shape          custom;
    bool                  have_custom = false;
    const char           *only        = NULL;

    for (i = 1; i < argc; i++) {
        if (bench_common_arg(argc, argv, &i, &o))
            continue;
        if (!strcmp(argv[i], "--shape") && i + 1 < argc &&
            sscanf(argv[i + 1], "%d,%d,%d,%d,%d,%d", &custom.B, &custom.T, &custom.H, &custom.HV,
                   &custom.K, &custom.V) == 6)
            have_custom = true, i++;
        else if (!strcmp(argv[i], "--only") && i + 1 < argc)
            only = argv[++i];
        else {
            fprintf(stderr,
                    "usage: %s " BENCH_USAGE
                    " [--shape B,T,H,HV,K,V] [--only fwd|fwd+bwd|recurrent_fwd|decode]\n",
                    argv[0]);
            return 2;
        }
    }
    {
        int rc = bench_begin("gated_delta", &o, &ctx, &ceil, &out);
        if (rc)
            return rc;
        quick = o.quick, reps = o.reps;
    }

    if (have_custom)
        train = &custom, ntrain = 1;
    else if (quick)
        train = train_quick, ntrain = GDN_ARRAY_SIZE(train_quick);
    else if (ctx->dev.info.flags & GDN_DEVICE_FLAG_GPU)
        train = train_gpu, ntrain = GDN_ARRAY_SIZE(train_gpu);
    else
        train = train_cpu, ntrain = GDN_ARRAY_SIZE(train_cpu);
    if (o.sweep)
        ntrain = 0;

    for (i = 0; i < (int)ntrain && !st && !(only && !strcmp(only, "decode")); i++) {
        const struct shape *s = &train[i];
        struct gd_case      c;
        struct bench_stats  w, d;
        struct gdn_prof_sum *prof = NULL;
        size_t              nprof = 0;
        double              th = (double)s->B * s->T * s->HV;
        int                 pass;
        const char         *names[] = {"fwd", "fwd+bwd", "recurrent_fwd"};
        bench_fn            fns[]   = {fn_fwd, fn_fwd_bwd, fn_recurrent};
        double              flops[3];

        flops[0] = th * flop_fwd(s->K, s->V);
        flops[1] = th * (flop_fwd(s->K, s->V) + flop_bwd(s->K, s->V));
        flops[2] = th * 7.0 * s->K * s->V;
        printf("\nB=%d T=%d H=%d HV=%d K=%d V=%d\n", s->B, s->T, s->H, s->HV, s->K, s->V);
        st = case_init(ctx, s, true, false, &c);
        for (pass = 0; pass < 3 && !st; pass++) {
            int r = reps;
            if (only && strcmp(only, names[pass]))
                continue;
            /* The token-sequential path is slow on CPUs: fewer runs there. */
            if (pass == 2 && !(ctx->dev.info.flags & GDN_DEVICE_FLAG_GPU) && r > 3)
                r = 3;
            st = bench_time(ctx, fns[pass], &c, quick ? 1 : 2, r, &w, &d, &prof, &nprof);
            if (st) {
                fprintf(stderr, "  %s: %s: %s\n", names[pass], gdn_status_string(st),
                        gdn_context_last_error(ctx));
                if (st == GDN_STATUS_UNSUPPORTED) {
                    st = GDN_STATUS_OK; /* not built yet: report and go on */
                    continue;
                }
                break;
            }
            printf("  %-14s wall %9.3f ms (p10 %.3f, p90 %.3f, n=%d)  device %9.3f ms  %10.0f "
                   "tok/s  %8.1f GFLOP/s  %5.1f%% of FMA peak\n",
                   names[pass], w.median, w.p10, w.p90, w.n, d.median,
                   (double)s->B * s->T / (w.median * 1e-3), flops[pass] / (w.median * 1e6),
                   100 * flops[pass] / (w.median * 1e6) / ceil.fma_gflops);
            print_stages(prof, nprof, s->K, s->V, th, &ceil);
            bench_out_row(&out, HDR_TRAIN,
                          "what=\"%s\";B=%d;T=%d;H=%d;HV=%d;K=%d;V=%d;wall_ms_median=%.4f;"
                          "wall_ms_p10=%.4f;wall_ms_p90=%.4f;device_ms_median=%.4f;"
                          "tokens_per_s=%.1f;gflops=%.2f;fma_peak_frac=%.4f",
                          names[pass], s->B, s->T, s->H, s->HV, s->K, s->V, w.median, w.p10, w.p90,
                          d.median, (double)s->B * s->T / (w.median * 1e-3),
                          flops[pass] / (w.median * 1e6),
                          flops[pass] / (w.median * 1e6) / ceil.fma_gflops);
            {
                size_t j;
                for (j = 0; j < nprof; j++) {
                    double f = flop_stage(prof[j].name, s->K, s->V) * th;
                    bench_out_row(&out, HDR_STAGE,
                                  "what=\"%s\";B=%d;T=%d;H=%d;HV=%d;K=%d;V=%d;stage=\"%s\";"
                                  "ms=%.4f;gflops=%.2f;fma_peak_frac=%.4f",
                                  names[pass], s->B, s->T, s->H, s->HV, s->K, s->V, prof[j].name,
                                  prof[j].ms, f / (prof[j].ms * 1e6),
                                  f / (prof[j].ms * 1e6) / ceil.fma_gflops);
                }
            }
            gdn__free(prof);
            prof = NULL;
        }
        case_free(&c);
    }

    /* Scaling sweep: T doubles at a fixed number of tokens per batch. */
    if ((o.sweep || quick) && !st) {
        const bool gpu = (ctx->dev.info.flags & GDN_DEVICE_FLAG_GPU) != 0 && !quick;
        const int  heads = gpu ? 16 : 2, KV = quick ? 64 : 128;
        int        tokens, Ts[BENCH_SWEEP_MAX], n = bench_sweep_lengths(&o, gpu, &tokens, Ts), j;
        char       shape[64];
        snprintf(shape, sizeof(shape), "H=%d K=%d V=%d", heads, KV, KV);
        printf("\nsweep: %d tokens per batch, %s, median of %d\n", tokens, shape, reps);
        for (j = 0; j < n && !st; j++) {
            struct shape       sh = {tokens / Ts[j], Ts[j], heads, heads, KV, KV};
            struct gd_case     c;
            const double       th = (double)sh.B * sh.T * sh.HV;
            int                pass;
            st = case_init(ctx, &sh, true, false, &c);
            for (pass = 0; pass < 2 && !st; pass++) {
                struct bench_stats       w, d;
                struct bench_sweep_point p = {"gated_delta", pass ? "fwd+bwd" : "fwd", shape,
                                              sh.B, sh.T, 0, 0};
                p.flop  = th * (flop_fwd(KV, KV) + (pass ? flop_bwd(KV, KV) : 0));
                p.bytes = th * (bytes_fwd(KV, KV) + (pass ? bytes_bwd(KV, KV) : 0));
                st = bench_time(ctx, pass ? fn_fwd_bwd : fn_fwd, &c, 1, reps, &w, &d, NULL, NULL);
                if (!st)
                    bench_sweep_report(&out, &ceil, &p, &w, &d);
            }
            case_free(&c);
        }
    }

    /* Decode: one token per sequence, H = 16, K = V = 128 (not with --sweep). */
    for (i = 0; i < (int)GDN_ARRAY_SIZE(dec_n) && !o.sweep && !st &&
                !(only && strcmp(only, "decode"));
         i++) {
        struct shape       s = {dec_n[i], 1, 16, 16, 128, 128};
        struct gd_case     c;
        struct bench_stats w, d, b;
        double             bytes;
        if (quick && dec_n[i] > 16)
            break;
        bytes = 8.0 * s.K * s.V * s.HV * s.B;
        st    = case_init(ctx, &s, false, true, &c);
        if (!st)
            st = bench_time(ctx, fn_step, &c, 3, quick ? 3 : 50, &w, &d, NULL, NULL);
        if (!st) /* steps enqueued back to back, as consecutive layers are */
            st = bench_time_batched(ctx, fn_step, &c, 32, quick ? 3 : 20, &b);
        if (st == GDN_STATUS_UNSUPPORTED) {
            fprintf(stderr, "  decode: %s\n", gdn_context_last_error(ctx));
            st = GDN_STATUS_OK;
            case_free(&c);
            break;
        }
        if (!st) {
            printf("%sdecode N=%-4d wall %8.1f us (p10 %.1f, p90 %.1f)  device %8.1f us  state "
                   "%7.1f GB/s  %5.1f%% of copy  back-to-back %6.1f us/step\n",
                   i == 0 ? "\n" : "", s.B, 1e3 * w.median, 1e3 * w.p10, 1e3 * w.p90,
                   1e3 * d.median, bytes / (d.median * 1e6),
                   100 * bytes / (d.median * 1e6) / ceil.copy_gbs, 1e3 * b.median);
            bench_out_row(&out, HDR_DEC,
                          "what=\"decode\";N=%d;H=%d;HV=%d;K=%d;V=%d;wall_us_median=%.2f;"
                          "wall_us_p10=%.2f;wall_us_p90=%.2f;device_us_median=%.2f;"
                          "state_gbs=%.1f;copy_frac=%.4f;batched_us_median=%.2f",
                          s.B, s.H, s.HV, s.K, s.V, 1e3 * w.median, 1e3 * w.p10, 1e3 * w.p90,
                          1e3 * d.median, bytes / (d.median * 1e6),
                          bytes / (d.median * 1e6) / ceil.copy_gbs, 1e3 * b.median);
        }
        case_free(&c);
    }
    if (st)
        fprintf(stderr, "bench: %s: %s\n", gdn_status_string(st), gdn_context_last_error(ctx));
    bench_out_close(&out);
    gdn_context_destroy(ctx);
    return st ? 1 : 0;
}
