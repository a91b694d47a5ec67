/*
 * bench_layer_ops.c - speed of the layer ops (norms, element-wise, short
 * convolution) against the device's measured copy bandwidth. Every one of
 * them is memory-bound (a few FLOP per byte), so the model is bytes: each
 * tensor element read or written once, 4 bytes, plus the weights; GB/s and
 * the fraction of the measured copy bandwidth (read + write) are reported,
 * with the median wall time (with finish) and device time (sum of kernels)
 * of >= 20 runs after warm-up and the per-kernel split.
 *
 * Shapes: the H1/H2 1.3B layer (D = 2304, K = 192, V = 384 per
 * ALGORITHM.md §3.2), 4 x 4096 tokens: the pre-norm RMSNorm [T, 2304]; the
 * GDN output norm (gated, per head, [T, 6, 384] -> rows of 384, HV = 6 heads
 * so 6 * 384 = 2304); the q/k L2 norm rows of 192; the Mamba2 gate-first
 * norm over d_inner = 4608 (one group); SiLU and the residual add on
 * [T, 2304]; the GDN q/k/v short conv (C = 2 * 1728 + 3456 = 6912, W = 4,
 * SiLU) forward and forward + backward; and the conv decode step (N = 1, 64,
 * 256). --quick shrinks everything for CI smoke runs.
 *
 * usage: bench_layer_ops [--quick] [--out DIR] [--device SEL] [--reps N]
 * (--sweep: nothing to do, their cost per token does not depend on T)
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_util.h"

struct lcase {
    gdn_context    *ctx;
    int             kind; /* 0 norm fwd, 1 norm bwd, 2 act fwd, 3 act bwd, 4 add,
                             5 conv fwd, 6 conv fwd+bwd, 7 conv step */
    gdn_norm_params np;
    gdn_norm_args   na;
    gdn_norm_grads  ng;
    gdn_conv_params cp;
    gdn_conv_args   ca;
    gdn_conv_grads  cg;
    gdn_tensor     *x, *y, *dy, *state; /* what run_case uses        */
    gdn_tensor     *t[12];              /* every tensor, for freeing */
    int             nt;
};

static gdn_status run_case(void *arg)
{
    struct lcase *c = arg;
    switch (c->kind) {
    case 0:
        return gdn_norm_forward(c->ctx, &c->np, &c->na, c->y);
    case 1:
        return gdn_norm_backward(c->ctx, &c->np, &c->na, c->dy, &c->ng);
    case 2:
        return gdn_activation_forward(c->ctx, GDN_ACTIVATION_SILU, c->x, c->y);
    case 3:
        return gdn_activation_backward(c->ctx, GDN_ACTIVATION_SILU, c->x, c->dy, c->y);
    case 4:
        return gdn_residual_add(c->ctx, c->x, c->dy, c->y);
    case 5:
        return gdn_conv_forward(c->ctx, &c->cp, &c->ca, c->y, NULL);
    case 6: {
        gdn_status st = gdn_conv_forward(c->ctx, &c->cp, &c->ca, c->y, NULL);
        return st ? st : gdn_conv_backward(c->ctx, &c->cp, &c->ca, c->dy, NULL, &c->cg);
    }
    default:
        return gdn_conv_step(c->ctx, &c->cp, &c->ca, c->state, c->y);
    }
}

static gdn_status tensor(struct lcase *c, int nd, const int64_t *shape, float fill,
                         gdn_tensor **out)
{
    gdn_status st = gdn_tensor_create(c->ctx, GDN_DTYPE_F32, nd, shape, out);
    if (st)
        return st;
    c->t[c->nt++] = *out;
    return gdn_tensor_fill(*out, fill);
}

static void lcase_free(struct lcase *c)
{
    for (int i = 0; i < c->nt; i++)
        gdn_tensor_destroy(c->t[i]);
    c->nt = 0;
}

static void report(gdn_context *ctx, struct bench_out *out, const struct bench_ceilings *ceil,
                   const char *what, const char *shape, double bytes, struct lcase *c, int reps)
{
    struct bench_stats   w, d;
    struct gdn_prof_sum *prof = NULL;
    size_t               nprof = 0;
    gdn_status           st    = bench_time(ctx, run_case, c, 2, reps, &w, &d, &prof, &nprof);
    if (st) {
        printf("  %-28s %-22s failed: %s: %s\n", what, shape, gdn_status_name(st),
               gdn_context_last_error(ctx));
        return;
    }
    printf("  %-28s %-22s wall %8.3f ms (p10 %.3f p90 %.3f)  device %8.3f ms  %7.1f GB/s  "
           "%5.1f%% of copy\n",
           what, shape, w.median, w.p10, w.p90, d.median, bytes / (d.median * 1e6),
           100 * bytes / (d.median * 1e6) / ceil->copy_gbs);
    for (size_t j = 0; nprof > 1 && j < nprof; j++)
        printf("      %-30s %8.3f ms\n", prof[j].name, prof[j].ms);
    bench_out_row(out, "what,shape,wall_ms_median,wall_ms_p10,wall_ms_p90,device_ms_median,gbs,"
                       "copy_frac",
                  "what=\"%s\";shape=\"%s\";wall_ms_median=%.4f;wall_ms_p10=%.4f;"
                  "wall_ms_p90=%.4f;device_ms_median=%.4f;gbs=%.1f;copy_frac=%.4f",
                  what, shape, w.median, w.p10, w.p90, d.median, bytes / (d.median * 1e6),
                  bytes / (d.median * 1e6) / ceil->copy_gbs);
    gdn__free(prof);
}

/* Norm of rows of G over [T, D] (G divides D). */
static void bench_norm(gdn_context *ctx, struct bench_out *out, const struct bench_ceilings *ceil,
                       int reps, const char *what, gdn_norm_type type, int64_t T, int64_t D,
                       int32_t group, int weight)
{
    struct lcase c;
    int64_t      xs[2] = {T, D};
    gdn_tensor  *x, *w = NULL, *g = NULL, *y, *dy, *dx, *dw = NULL, *dg = NULL;
    const int    gated = type == GDN_NORM_RMS_GATED || type == GDN_NORM_RMS_GATE_FIRST;
    const double n     = (double)T * (double)D;
    char         shape[64];

    memset(&c, 0, sizeof(c));
    c.ctx = ctx;
    if (tensor(&c, 2, xs, 0.5f, &x) || (weight && tensor(&c, 1, &D, 1.0f, &w)) ||
        (gated && tensor(&c, 2, xs, 0.3f, &g)) || tensor(&c, 2, xs, 0, &y) ||
        tensor(&c, 2, xs, 0.1f, &dy) || tensor(&c, 2, xs, 0, &dx) ||
        (weight && tensor(&c, 1, &D, 0, &dw)) || (gated && tensor(&c, 2, xs, 0, &dg))) {
        printf("  %s: setup failed: %s\n", what, gdn_context_last_error(ctx));
        lcase_free(&c);
        return;
    }
    c.y = y, c.dy = dy;
    gdn_norm_params_init(&c.np);
    c.np.type       = type;
    c.np.group_size = group;
    c.na.x = x, c.na.weight = w, c.na.gate = g;
    c.ng.dx = dx, c.ng.dweight = dw, c.ng.dgate = dg;
    snprintf(shape, sizeof(shape), "[%lld, %lld] G=%d", (long long)T, (long long)D,
             (int)(group ? group : D));
    c.kind = 0;
    report(ctx, out, ceil, what, shape, 4.0 * n * (2 + gated), &c, reps);
    c.kind = 1;
    snprintf(shape, sizeof(shape), "bwd [%lld, %lld]", (long long)T, (long long)D);
    report(ctx, out, ceil, what, shape, 4.0 * n * (3 + 2 * gated), &c, reps);
    lcase_free(&c);
}

int main(int argc, char **argv)
{
    struct bench_opts     o = BENCH_OPTS_INIT;
    bool                  quick;
    int                   reps, i;
    gdn_context          *ctx  = NULL;
    struct bench_ceilings ceil;
    struct bench_out      out;
    int64_t               T = 4 * 4096, Dm = 2304, Cc = 6912;

    for (i = 1; i < argc; i++) {
        if (!bench_common_arg(argc, argv, &i, &o)) {
            fprintf(stderr, "usage: %s " BENCH_USAGE "\n", argv[0]);
            return 2;
        }
    }
    if (bench_no_sweep("layer_ops", &o))
        return 0;
    {
        int rc = bench_begin("layer_ops", &o, &ctx, &ceil, &out);
        if (rc)
            return rc;
        quick = o.quick, reps = o.reps;
    }
    if (quick)
        T = 256, Dm = 256, Cc = 512;

    printf("\nnorms (bytes: x, y [, gate]; bwd x, dy, dx [, gate, dgate])\n");
    bench_norm(ctx, &out, &ceil, reps, "rmsnorm (pre-norm)", GDN_NORM_RMS, T, Dm, 0, 1);
    bench_norm(ctx, &out, &ceil, reps, "gated rmsnorm (GDN o)", GDN_NORM_RMS_GATED, T * Dm / 384,
               384, 0, 1);
    bench_norm(ctx, &out, &ceil, reps, "l2norm (q/k rows)", GDN_NORM_L2, T * Dm * 3 / 4 / 192, 192,
               0, 0);
    bench_norm(ctx, &out, &ceil, reps, "gate-first rmsnorm (Mamba2)", GDN_NORM_RMS_GATE_FIRST, T,
               2 * Dm, 0, 1);
    bench_norm(ctx, &out, &ceil, reps, "rmsnorm rows of 64", GDN_NORM_RMS, T * Dm / 64, 64, 0, 1);

    printf("\nelement-wise [%lld, %lld]\n", (long long)T, (long long)Dm);
    {
        struct lcase c;
        int64_t      xs[2] = {T, Dm};
        gdn_tensor  *a, *b, *d;
        const double n = (double)T * (double)Dm;
        memset(&c, 0, sizeof(c));
        c.ctx = ctx;
        if (!tensor(&c, 2, xs, 0.5f, &a) && !tensor(&c, 2, xs, 0, &b) &&
            !tensor(&c, 2, xs, 0.1f, &d)) {
            c.x = a, c.y = b, c.dy = d;
            c.kind = 2;
            report(ctx, &out, &ceil, "silu fwd", "", 8.0 * n, &c, reps);
            c.kind = 3;
            report(ctx, &out, &ceil, "silu bwd", "", 12.0 * n, &c, reps);
            c.kind = 4;
            report(ctx, &out, &ceil, "residual add", "", 12.0 * n, &c, reps);
        }
        lcase_free(&c);
    }

    printf("\nshort conv W=4, SiLU, C=%lld (bytes: x, y; bwd adds x, dy, dx)\n", (long long)Cc);
    {
        struct lcase c;
        int64_t      xs[3] = {4, T / 4, Cc}, ws[2] = {Cc, 4};
        gdn_tensor  *x, *w, *y, *dy, *dx, *dw, *db;
        const double n = (double)T * (double)Cc;
        memset(&c, 0, sizeof(c));
        c.ctx = ctx;
        if (!tensor(&c, 3, xs, 0.5f, &x) && !tensor(&c, 2, ws, 0.25f, &w) &&
            !tensor(&c, 3, xs, 0, &y) && !tensor(&c, 3, xs, 0.1f, &dy) &&
            !tensor(&c, 3, xs, 0, &dx) && !tensor(&c, 2, ws, 0, &dw) &&
            !tensor(&c, 1, &Cc, 0, &db)) {
            gdn_conv_params_init(&c.cp);
            c.cp.flags = GDN_CONV_SILU;
            c.ca.x = x, c.ca.weight = w;
            c.cg.dx = dx, c.cg.dweight = dw, c.cg.dbias = db;
            c.y = y, c.dy = dy;
            c.kind = 5;
            report(ctx, &out, &ceil, "conv fwd", "[4, T/4, C]", 8.0 * n, &c, reps);
            c.kind = 6;
            report(ctx, &out, &ceil, "conv fwd+bwd", "[4, T/4, C]", 20.0 * n, &c, reps);
        }
        lcase_free(&c);
    }
    {
        static const int64_t ns[] = {1, 64, 256};
        for (size_t k = 0; k < sizeof(ns) / sizeof(ns[0]); k++) {
            struct lcase c;
            int64_t      xs[2] = {ns[k], Cc}, ws[2] = {Cc, 4}, ss[3] = {ns[k], Cc, 3};
            gdn_tensor  *x, *w, *s, *y;
            char         shape[32];
            memset(&c, 0, sizeof(c));
            c.ctx = ctx;
            if (!tensor(&c, 2, xs, 0.5f, &x) && !tensor(&c, 2, ws, 0.25f, &w) &&
                !tensor(&c, 3, ss, 0.1f, &s) && !tensor(&c, 2, xs, 0, &y)) {
                gdn_conv_params_init(&c.cp);
                c.cp.flags = GDN_CONV_SILU;
                c.ca.x = x, c.ca.weight = w;
                c.state = s, c.y = y;
                c.kind = 7;
                snprintf(shape, sizeof(shape), "N=%lld", (long long)ns[k]);
                report(ctx, &out, &ceil, "conv decode step", shape,
                       4.0 * (double)ns[k] * (double)Cc * 8 + 16.0 * (double)Cc, &c, reps);
            }
            lcase_free(&c);
        }
    }
    bench_out_close(&out);
    gdn_context_destroy(ctx);
    return 0;
}
