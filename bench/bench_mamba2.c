/*
 * bench_mamba2.c - speed of the Mamba2 SSD core against the device's own
 * measured ceilings.
 *
 * For each training shape (the H2 1.3B Mamba2 layer: d_inner 4096 = 64
 * heads of P = 64, DS = 128, one group) and chunk size 64 / 128 / 256:
 * chunked forward and forward + backward (ms: median, p10-p90 of >= 20 runs
 * after warm-up, wall clock with finish, and the summed device time of the
 * kernels), tokens/s, achieved GFLOP/s from the FLOP model below and the
 * fraction of the measured fp32 FMA peak, per stage as well. Decode: step
 * time and state GB/s against the measured copy bandwidth.
 *
 * FLOP model, per token and head, as implemented (C chunk, R = C/64 row
 * tiles, k = R (R + 1) / 2 lower 64 x 64 tiles per chunk, hpg = H/G):
 *   bmm            k 64^2 2 DS / (C hpg)
 *   chunk_state    2 P DS           (forward states; backward: also dstates)
 *   chunk_scan     2 P DS + k 64^2 2 P / C
 *   dcb            k 64^2 2 P / C
 *   dx             2 P DS + k 64^2 2 P / C
 *   dbc            4 P DS + k 64^2 4 DS / C
 * forward = bmm + chunk_state + chunk_scan; backward = bmm + 2 chunk_state
 * + dcb + dx + dbc (the element-wise scans and reductions are not counted).
 *
 * --sweep: instead of the fixed shapes, the scaling sweep of bench_util.h:
 * T from 512 up to the tokens per batch (65536 on GPUs with the layer's
 * H = 64; 8192 elsewhere with H = 4; P = 64, DS = 128, G = 1, chunk 64),
 * forward and forward + backward. The chunked scan's cost is linear in T, so
 * tokens/s should stay flat. --quick runs a two-point sweep as well (T = 128,
 * 256, H = 2, DS = 64). FLOP model: the one above at C = 64. Byte model
 * (compulsory fp32 traffic, each tensor read or written once), per token:
 * forward 4 (2 H P + H + 2 G DS) (x, dt, B, C in; y out); backward
 * 4 (2 H P + 2 H + 4 G DS) (x, dt, B, C, dy in; dx, ddt, dB, dC out); the
 * per-head parameters are negligible.
 *
 * usage: bench_mamba2 [--quick] [--out DIR] [--device SEL] [--reps N] [--sweep]
 *                     [--tokens N]
 */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_util.h"

struct shape {
    int B, T, H, G, P, DS;
};

struct model {
    double C, P, N, hpg, k;
};

static double f_bmm(const struct model *m)
{
    return m->k * 4096.0 * 2 * m->N / (m->C * m->hpg);
}
static double f_intra(const struct model *m, double d)
{
    return m->k * 4096.0 * 2 * d / m->C;
}
static double flop_fwd(const struct model *m)
{
    return f_bmm(m) + 2 * m->P * m->N + 2 * m->P * m->N + f_intra(m, m->P);
}
static double flop_bwd(const struct model *m)
{
    return f_bmm(m) + 4 * m->P * m->N + f_intra(m, m->P) + 2 * m->P * m->N + f_intra(m, m->P) +
           4 * m->P * m->N + 2 * f_intra(m, m->N);
}
static double flop_stage(const char *name, const struct model *m)
{
    if (strstr(name, "bmm"))
        return f_bmm(m);
    if (strstr(name, "chunk_state"))
        return 2 * m->P * m->N;
    if (strstr(name, "chunk_scan"))
        return 2 * m->P * m->N + f_intra(m, m->P);
    if (strstr(name, "dcb"))
        return f_intra(m, m->P);
    if (strstr(name, "dx_bwd"))
        return 2 * m->P * m->N + f_intra(m, m->P);
    if (strstr(name, "dbc"))
        return 4 * m->P * m->N + 2 * f_intra(m, m->N);
    return 0;
}

struct m2_case {
    gdn_context      *ctx;
    gdn_mamba2_params params;
    gdn_mamba2_args   args;
    gdn_tensor *x, *dt, *Al, *bias, *B, *C, *D, *y, *dy, *dx, *ddt, *dAl, *dbias, *dB, *dC, *dD;
    gdn_tensor *state;
};

static gdn_status fn_fwd(void *arg)
{
    struct m2_case *c = arg;
    return gdn_mamba2_forward(c->ctx, &c->params, &c->args, c->y, NULL, NULL);
}

static gdn_status fn_fwd_bwd(void *arg)
{
    struct m2_case  *c    = arg;
    gdn_mamba2_tape *tape = NULL;
    gdn_mamba2_grads g;
    gdn_status       st;
    memset(&g, 0, sizeof(g));
    g.dx = c->dx, g.ddt = c->ddt, g.dA_log = c->dAl, g.ddt_bias = c->dbias, g.dB = c->dB;
    g.dC = c->dC, g.dD = c->dD;
    st = gdn_mamba2_forward(c->ctx, &c->params, &c->args, c->y, NULL, &tape);
    if (!st)
        st = gdn_mamba2_backward(c->ctx, tape, c->dy, NULL, &g);
    gdn_mamba2_tape_destroy(tape);
    return st;
}

static gdn_status fn_step(void *arg)
{
    struct m2_case *c = arg;
    return gdn_mamba2_step(c->ctx, &c->params, &c->args, c->state, c->y);
}

static void case_free(struct m2_case *c)
{
    gdn_tensor *ts[] = {c->x,  c->dt,  c->Al, c->bias, c->B,     c->C,  c->D,  c->y,   c->dy,
                        c->dx, c->ddt, c->dAl, c->dbias, c->dB, c->dC, c->dD, c->state};
    size_t      i;
    for (i = 0; i < GDN_ARRAY_SIZE(ts); i++)
        gdn_tensor_destroy(ts[i]);
    memset(c, 0, sizeof(*c));
}

/* Tensors of a [B, T, ...] problem (decode: 3-D, one token per sequence). */
static gdn_status case_init(gdn_context *ctx, const struct shape *s, bool grads, bool decode,
                            struct m2_case *c)
{
    unsigned   seed = 4242;
    int64_t    xs[4] = {s->B, s->T, s->H, s->P}, ts[3] = {s->B, s->T, s->H};
    int64_t    bs[4] = {s->B, s->T, s->G, s->DS}, hs = s->H;
    int64_t    ss[4] = {s->B, s->H, s->P, s->DS};
    int        nd = 4;
    gdn_status st;

    memset(c, 0, sizeof(*c));
    c->ctx = ctx;
    gdn_mamba2_params_init(&c->params);
    if (decode) {
        xs[1] = s->H, xs[2] = s->P, ts[1] = s->H, bs[1] = s->G, bs[2] = s->DS;
        nd    = 3;
    }
    if ((st = bench_random_tensor(ctx, nd, xs, &seed, -1, 1, false, &c->x)) ||
        (st = bench_random_tensor(ctx, nd - 1, ts, &seed, -1, 1, false, &c->dt)) ||
        (st = bench_random_tensor(ctx, 1, &hs, &seed, 0.0f, 2.77f, false, &c->Al)) ||
        (st = bench_random_tensor(ctx, 1, &hs, &seed, -6.9f, -2.25f, false, &c->bias)) ||
        (st = bench_random_tensor(ctx, nd, bs, &seed, -1, 1, false, &c->B)) ||
        (st = bench_random_tensor(ctx, nd, bs, &seed, -1, 1, false, &c->C)) ||
        (st = bench_random_tensor(ctx, 1, &hs, &seed, -1, 1, false, &c->D)) ||
        (st = gdn_tensor_create(ctx, GDN_DTYPE_F32, nd, xs, &c->y)))
        return st;
    if (decode && (st = bench_random_tensor(ctx, 4, ss, &seed, -0.1f, 0.1f, false, &c->state)))
        return st;
    if (grads) {
        if ((st = bench_random_tensor(ctx, nd, xs, &seed, -1, 1, false, &c->dy)) ||
            (st = gdn_tensor_create(ctx, GDN_DTYPE_F32, nd, xs, &c->dx)) ||
            (st = gdn_tensor_create(ctx, GDN_DTYPE_F32, nd - 1, ts, &c->ddt)) ||
            (st = gdn_tensor_create(ctx, GDN_DTYPE_F32, 1, &hs, &c->dAl)) ||
            (st = gdn_tensor_create(ctx, GDN_DTYPE_F32, 1, &hs, &c->dbias)) ||
            (st = gdn_tensor_create(ctx, GDN_DTYPE_F32, nd, bs, &c->dB)) ||
            (st = gdn_tensor_create(ctx, GDN_DTYPE_F32, nd, bs, &c->dC)) ||
            (st = gdn_tensor_create(ctx, GDN_DTYPE_F32, 1, &hs, &c->dD)))
            return st;
    }
    c->args.x = c->x, c->args.dt = c->dt, c->args.A_log = c->Al, c->args.dt_bias = c->bias;
    c->args.B = c->B, c->args.C = c->C, c->args.D = c->D;
    return GDN_STATUS_OK;
}

static void print_stages(const struct gdn_prof_sum *p, size_t n, const struct model *m,
                         double tokens_heads, const struct bench_ceilings *ceil)
{
    size_t i;
    double total = 0;
    for (i = 0; i < n; i++)
        total += p[i].ms;
    for (i = 0; i < n; i++) {
        double f = flop_stage(p[i].name, m) * tokens_heads * (p[i].count > 1 ? p[i].count : 1);
        printf("      %-30s x%d %8.3f ms %5.1f%%", p[i].name, (int)p[i].count, p[i].ms,
               100 * p[i].ms / total);
        if (f > 0)
            printf("  %8.1f GFLOP/s  %5.1f%% of FMA peak", f / (p[i].ms * 1e6),
                   100 * f / (p[i].ms * 1e6) / ceil->fma_gflops);
        printf("\n");
    }
}

static const char *HDR_TRAIN =
    "what,B,T,H,G,P,DS,chunk,wall_ms_median,wall_ms_p10,wall_ms_p90,device_ms_median,"
    "tokens_per_s,gflops,fma_peak_frac";
static const char *HDR_DEC =
    "what,N,H,G,P,DS,wall_us_median,wall_us_p10,wall_us_p90,device_us_median,state_gbs,"
    "copy_frac";

int main(int argc, char **argv)
{
    struct bench_opts     o = BENCH_OPTS_INIT;
    bool                  quick;
    int                   reps, i;
    gdn_context          *ctx  = NULL;
    struct bench_ceilings ceil;
    struct bench_out      out;
    gdn_status            st = GDN_STATUS_OK;
    struct shape          train_gpu[] = {{4, 4096, 64, 1, 64, 128}, {1, 16384, 64, 1, 64, 128}};
    struct shape          train_cpu[] = {{1, 1024, 4, 1, 64, 128}};
    struct shape          train_quick[] = {{1, 256, 2, 1, 64, 64}};
    int                   chunks[] = {64, 128, 256};
    int                   dec_n[] = {1, 16, 64, 256};
    const struct shape   *train;
    size_t                ntrain;

    memset(&out, 0, sizeof(out));
    for (i = 1; i < argc; i++) {
        if (bench_common_arg(argc, argv, &i, &o))
            continue;
        else {
            fprintf(stderr, "usage: %s " BENCH_USAGE "\n",
                    argv[0]);
            return 2;
        }
    }
    {
        int rc = bench_begin("mamba2", &o, &ctx, &ceil, &out);
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
    if (o.sweep)
        ntrain = 0;

    for (i = 0; i < (int)ntrain && !st; i++) {
        const struct shape *s = &train[i];
        struct m2_case      c;
        double              th = (double)s->B * s->T * s->H;
        size_t              ci;

        printf("\nB=%d T=%d H=%d G=%d P=%d DS=%d\n", s->B, s->T, s->H, s->G, s->P, s->DS);
        st = case_init(ctx, s, true, false, &c);
        for (ci = 0; ci < GDN_ARRAY_SIZE(chunks) && !st; ci++) {
            const double R = chunks[ci] / 64.0;
            struct model m = {chunks[ci], s->P, s->DS, (double)s->H / s->G, R * (R + 1) / 2};
            const char  *names[] = {"fwd", "fwd+bwd"};
            bench_fn     fns[]   = {fn_fwd, fn_fwd_bwd};
            double       flops[2];
            int          pass;
            if (quick && ci > 0)
                break;
            c.params.chunk_size = chunks[ci];
            flops[0]            = th * flop_fwd(&m);
            flops[1]            = th * (flop_fwd(&m) + flop_bwd(&m));
            printf("  chunk %d\n", chunks[ci]);
            for (pass = 0; pass < 2 && !st; pass++) {
                struct bench_stats   w, d;
                struct gdn_prof_sum *prof  = NULL;
                size_t               nprof = 0;
                st = bench_time(ctx, fns[pass], &c, quick ? 1 : 2, reps, &w, &d, &prof, &nprof);
                if (st)
                    break;
                printf("  %-8s wall %9.3f ms (p10 %.3f, p90 %.3f, n=%d)  device %9.3f ms  %10.0f "
                       "tok/s  %8.1f GFLOP/s  %5.1f%% of FMA peak\n",
                       names[pass], w.median, w.p10, w.p90, w.n, d.median,
                       (double)s->B * s->T / (w.median * 1e-3), flops[pass] / (w.median * 1e6),
                       100 * flops[pass] / (w.median * 1e6) / ceil.fma_gflops);
                print_stages(prof, nprof, &m, th, &ceil);
                bench_out_row(&out, HDR_TRAIN,
                              "what=\"%s\";B=%d;T=%d;H=%d;G=%d;P=%d;DS=%d;chunk=%d;"
                              "wall_ms_median=%.4f;wall_ms_p10=%.4f;wall_ms_p90=%.4f;"
                              "device_ms_median=%.4f;tokens_per_s=%.1f;gflops=%.2f;"
                              "fma_peak_frac=%.4f",
                              names[pass], s->B, s->T, s->H, s->G, s->P, s->DS, chunks[ci],
                              w.median, w.p10, w.p90, d.median,
                              (double)s->B * s->T / (w.median * 1e-3),
                              flops[pass] / (w.median * 1e6),
                              flops[pass] / (w.median * 1e6) / ceil.fma_gflops);
                gdn__free(prof);
            }
        }
        case_free(&c);
    }

    /* Scaling sweep: T doubles at a fixed number of tokens per batch. */
    if ((o.sweep || quick) && !st) {
        const bool   gpu = (ctx->dev.info.flags & GDN_DEVICE_FLAG_GPU) != 0 && !quick;
        const int    H = gpu ? 64 : quick ? 2 : 4, G = 1, P = 64, DS = quick ? 64 : 128;
        const struct model m = {64, P, DS, (double)H / G, 1};
        int          tokens, Ts[BENCH_SWEEP_MAX], n = bench_sweep_lengths(&o, gpu, &tokens, Ts), j;
        char         shape[64];
        snprintf(shape, sizeof(shape), "H=%d G=%d P=%d DS=%d chunk=64", H, G, P, DS);
        printf("\nsweep: %d tokens per batch, %s, median of %d\n", tokens, shape, reps);
        for (j = 0; j < n && !st; j++) {
            struct shape   sh = {tokens / Ts[j], Ts[j], H, G, P, DS};
            struct m2_case c;
            const double   bt = (double)sh.B * sh.T;
            int            pass;
            st                  = case_init(ctx, &sh, true, false, &c);
            c.params.chunk_size = 64;
            for (pass = 0; pass < 2 && !st; pass++) {
                struct bench_stats       w, d;
                struct bench_sweep_point p = {"mamba2", pass ? "fwd+bwd" : "fwd", shape,
                                              sh.B, sh.T, 0, 0};
                p.flop  = bt * H * (flop_fwd(&m) + (pass ? flop_bwd(&m) : 0));
                p.bytes = bt * 4.0 *
                          (2.0 * H * P + H + 2.0 * G * DS +
                           (pass ? 2.0 * H * P + 2.0 * H + 4.0 * G * DS : 0));
                st = bench_time(ctx, pass ? fn_fwd_bwd : fn_fwd, &c, 1, reps, &w, &d, NULL, NULL);
                if (!st)
                    bench_sweep_report(&out, &ceil, &p, &w, &d);
            }
            case_free(&c);
        }
    }

    /* Decode: one token per sequence at the layer shape (not with --sweep). */
    for (i = 0; i < (int)GDN_ARRAY_SIZE(dec_n) && !o.sweep && !st; i++) {
        struct shape       s = {dec_n[i], 1, 64, 1, 64, 128};
        struct m2_case     c;
        struct bench_stats w, d;
        double             bytes;
        if (quick && dec_n[i] > 16)
            break;
        if (quick)
            s.H = 2;
        bytes = 8.0 * s.P * s.DS * s.H * s.B;
        st    = case_init(ctx, &s, false, true, &c);
        if (!st)
            st = bench_time(ctx, fn_step, &c, 3, quick ? 3 : 50, &w, &d, NULL, NULL);
        if (!st) {
            printf("%sdecode N=%-4d wall %8.1f us (p10 %.1f, p90 %.1f)  device %8.1f us  state "
                   "%7.1f GB/s  %5.1f%% of copy\n",
                   i == 0 ? "\n" : "", s.B, 1e3 * w.median, 1e3 * w.p10, 1e3 * w.p90,
                   1e3 * d.median, bytes / (d.median * 1e6),
                   100 * bytes / (d.median * 1e6) / ceil.copy_gbs);
            bench_out_row(&out, HDR_DEC,
                          "what=\"decode\";N=%d;H=%d;G=%d;P=%d;DS=%d;wall_us_median=%.2f;"
                          "wall_us_p10=%.2f;wall_us_p90=%.2f;device_us_median=%.2f;"
                          "state_gbs=%.1f;copy_frac=%.4f",
                          s.B, s.H, s.G, s.P, s.DS, 1e3 * w.median, 1e3 * w.p10, 1e3 * w.p90,
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
