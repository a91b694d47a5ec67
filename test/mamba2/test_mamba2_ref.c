/*
 * test_mamba2_ref.c - host check of the float64 Mamba2 reference: its exact
 * backward against central finite differences of loss = <y, dy> + <ht, dht>
 * for every input element (x, dt_raw, A_log, dt_bias, B, C, D, h0), on a
 * varlen batch (lengths 3, 1, 6), G = 2 groups of 2 heads, with an active
 * dt clamp, plus a case without bias / D / h0 / dht and a strong-decay case.
 * Plain stdio; exit status 1 on failure.
 */
#include "mamba2_ref.h"
#include "rng.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int g_failed;

static double *dalloc(size_t n)
{
    double *p = calloc(n ? n : 1, sizeof(double));
    if (!p) {
        fprintf(stderr, "out of memory\n");
        exit(2);
    }
    return p;
}

struct prob {
    struct m2_ref_shape s;
    int                 T;
    double *x, *dtr, *Al, *bias, *B, *C, *D, *h0, *dy, *dht;
};

static double loss(const struct prob *pr)
{
    const struct m2_ref_shape *s  = &pr->s;
    size_t                     ny = (size_t)pr->T * s->H * s->P;
    size_t                     nh = (size_t)s->nseq * s->H * s->P * s->DS;
    double                    *y = dalloc(ny), *ht = dalloc(nh), L = 0.0;
    m2_ref_forward(s, pr->x, pr->dtr, pr->Al, pr->bias, pr->B, pr->C, pr->D, pr->h0, y, ht);
    for (size_t i = 0; i < ny; i++)
        L += y[i] * pr->dy[i];
    if (pr->dht)
        for (size_t i = 0; i < nh; i++)
            L += ht[i] * pr->dht[i];
    free(y);
    free(ht);
    return L;
}

/* Compare grad[i] with the central difference of loss in v[i]. */
static void check(struct prob *pr, const char *name, double *v, const double *grad, size_t n)
{
    const double eps = 1e-6;
    double       maxerr = 0.0, maxg = 0.0;
    for (size_t i = 0; i < n; i++) {
        double keep = v[i], lp, lm, num;
        v[i] = keep + eps;
        lp   = loss(pr);
        v[i] = keep - eps;
        lm   = loss(pr);
        v[i] = keep;
        num  = (lp - lm) / (2 * eps);
        if (fabs(num - grad[i]) > maxerr)
            maxerr = fabs(num - grad[i]);
        if (fabs(grad[i]) > maxg)
            maxg = fabs(grad[i]);
    }
    {
        const double rel = maxerr / (maxg > 1e-12 ? maxg : 1e-12);
        /* FD noise floor: ~1e-16 |loss| / eps ~ 1e-8 at these sizes */
        const int    ok  = rel < 1e-6 || maxerr < 3e-8;
        printf("%s  %-8s max|fd - exact| = %.3e (rel %.3e, max|grad| %.3e)\n", ok ? "PASS" : "FAIL",
               name, maxerr, rel, maxg);
        if (!ok)
            g_failed++;
    }
}

static void run_case(const char *title, int with_opt, double decay_scale, double dt_min,
                     double dt_max, uint64_t seed)
{
    static const int offs[] = {0, 3, 4, 10};
    struct prob      pr;
    struct gdn_rng   rng;
    struct m2_ref_shape *s = &pr.s;
    size_t nx, nt, nbc, nh;
    double *dx, *ddt, *dAl, *dbias, *dB, *dC, *dD, *dh0;

    printf("-- %s\n", title);
    memset(&pr, 0, sizeof(pr));
    s->nseq = 3, s->offsets = offs, s->H = 4, s->G = 2, s->P = 3, s->DS = 4;
    s->dt_min = dt_min, s->dt_max = dt_max;
    pr.T = offs[3];
    nx = (size_t)pr.T * s->H * s->P, nt = (size_t)pr.T * s->H;
    nbc = (size_t)pr.T * s->G * s->DS, nh = (size_t)s->nseq * s->H * s->P * s->DS;
    gdn_rng_seed(&rng, seed);
    pr.x = dalloc(nx), pr.dtr = dalloc(nt), pr.Al = dalloc(s->H), pr.B = dalloc(nbc);
    pr.C = dalloc(nbc), pr.dy = dalloc(nx);
    gdn_rng_fill_normal(&rng, pr.x, nx, 1.0);
    gdn_rng_fill_normal(&rng, pr.dtr, nt, 1.5);
    gdn_rng_fill_uniform(&rng, pr.Al, s->H, log(1.0), log(16.0));
    for (int h = 0; h < s->H; h++)
        pr.Al[h] += log(decay_scale);
    gdn_rng_fill_normal(&rng, pr.B, nbc, 1.0);
    gdn_rng_fill_normal(&rng, pr.C, nbc, 1.0);
    gdn_rng_fill_normal(&rng, pr.dy, nx, 1.0);
    if (with_opt) {
        pr.bias = dalloc(s->H), pr.D = dalloc(s->H), pr.h0 = dalloc(nh), pr.dht = dalloc(nh);
        gdn_rng_fill_uniform(&rng, pr.bias, s->H, -3.0, 0.5);
        gdn_rng_fill_normal(&rng, pr.D, s->H, 1.0);
        gdn_rng_fill_normal(&rng, pr.h0, nh, 1.0);
        gdn_rng_fill_normal(&rng, pr.dht, nh, 1.0);
    }
    /* keep the softplus output away from the clamp edges (FD across a kink) */
    for (size_t i = 0; i < nt; i++) {
        double dt, v;
        for (;;) {
            v = pr.dtr[i] + (pr.bias ? pr.bias[i % s->H] : 0.0);
            m2_ref_dt(pr.dtr[i], pr.bias ? pr.bias[i % s->H] : 0.0, 0.0, INFINITY, &dt, NULL);
            if (fabs(dt - dt_min) > 1e-3 && fabs(dt - dt_max) > 1e-3)
                break;
            pr.dtr[i] += 0.01;
        }
        (void)v;
    }
    dx = dalloc(nx), ddt = dalloc(nt), dAl = dalloc(s->H), dbias = dalloc(s->H);
    dB = dalloc(nbc), dC = dalloc(nbc), dD = dalloc(s->H), dh0 = dalloc(nh);
    m2_ref_backward(s, pr.x, pr.dtr, pr.Al, pr.bias, pr.B, pr.C, pr.D, pr.h0, pr.dy, pr.dht, dx,
                    ddt, dAl, pr.bias ? dbias : NULL, dB, dC, pr.D ? dD : NULL, dh0);
    check(&pr, "x", pr.x, dx, nx);
    check(&pr, "dt_raw", pr.dtr, ddt, nt);
    check(&pr, "A_log", pr.Al, dAl, s->H);
    check(&pr, "B", pr.B, dB, nbc);
    check(&pr, "C", pr.C, dC, nbc);
    if (with_opt) {
        check(&pr, "dt_bias", pr.bias, dbias, s->H);
        check(&pr, "D", pr.D, dD, s->H);
        check(&pr, "h0", pr.h0, dh0, nh);
    }
    {
        /* clamped tokens must have exactly zero gradient */
        int nclamp = 0;
        for (size_t i = 0; i < nt; i++) {
            double dt;
            m2_ref_dt(pr.dtr[i], pr.bias ? pr.bias[i % s->H] : 0.0, dt_min, dt_max, &dt, NULL);
            if (dt == dt_min || dt == dt_max) {
                nclamp++;
                if (ddt[i] != 0.0) {
                    printf("FAIL  clamped token %zu has ddt_raw %g\n", i, ddt[i]);
                    g_failed++;
                }
            }
        }
        printf("      %d of %zu dt values clamped\n", nclamp, nt);
    }
    free(pr.x), free(pr.dtr), free(pr.Al), free(pr.B), free(pr.C), free(pr.dy);
    free(pr.bias), free(pr.D), free(pr.h0), free(pr.dht);
    free(dx), free(ddt), free(dAl), free(dbias), free(dB), free(dC), free(dD), free(dh0);
}

int main(void)
{
    run_case("bias, D, h0, dht, clamp [0.05, 1.0]", 1, 1.0, 0.05, 1.0, 1);
    run_case("no bias / D / h0 / dht, no clamp", 0, 1.0, 0.0, INFINITY, 2);
    run_case("strong decay (A x 20), clamp [0.1, 2]", 1, 20.0, 0.1, 2.0, 3);
    run_case("weak decay (A x 1e-4)", 1, 1e-4, 0.0, INFINITY, 4);
    printf("%s\n", g_failed ? "FAILED" : "all passed");
    return g_failed ? 1 : 0;
}
