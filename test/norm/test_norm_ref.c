/*
 * test_norm_ref.c - host check (no device) of the float64 norm and
 * activation references in norm_ref.c: the exact backward against central
 * finite differences of the reference forward, for every norm type, with
 * and without weight, with groups (gpd > 1), for L = sum(y * c) with random
 * c; and the activation derivatives (including both sides of softplus's
 * threshold). Plain stdio; exit status 1 on any failure.
 */
#include "norm_ref.h"
#include "rng.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int failures;

static double *dalloc(size_t n)
{
    double *x = calloc(n ? n : 1, sizeof(double));
    if (!x) {
        fprintf(stderr, "out of memory\n");
        exit(2);
    }
    return x;
}

static double loss(int type, double eps, int64_t rows, int64_t G, int64_t gpd, const double *x,
                   const double *w, const double *g, const double *c, double *y)
{
    double s = 0.0;
    norm_ref_forward(type, eps, rows, G, gpd, x, w, g, y);
    for (int64_t i = 0; i < rows * G; i++)
        s += y[i] * c[i];
    return s;
}

/* max |num - ana| / max |ana| over the entries of one gradient. */
static double fd_err(double *p, size_t n, const double *ana, int type, double eps, int64_t rows,
                     int64_t G, int64_t gpd, const double *x, const double *w, const double *g,
                     const double *c, double *y)
{
    const double h = 1e-6;
    double       emax = 0.0, amax = 0.0;
    for (size_t i = 0; i < n; i++) {
        double keep = p[i], lp, lm, num;
        p[i]        = keep + h;
        lp          = loss(type, eps, rows, G, gpd, x, w, g, c, y);
        p[i]        = keep - h;
        lm          = loss(type, eps, rows, G, gpd, x, w, g, c, y);
        p[i]        = keep;
        num         = (lp - lm) / (2.0 * h);
        if (fabs(num - ana[i]) > emax)
            emax = fabs(num - ana[i]);
        if (fabs(ana[i]) > amax)
            amax = fabs(ana[i]);
    }
    return emax / (amax > 1e-12 ? amax : 1e-12);
}

static void check_norm(int type, int64_t rows, int64_t G, int64_t gpd, int has_w, double eps)
{
    struct gdn_rng rng;
    const size_t   n  = (size_t)(rows * G), nw = (size_t)(G * gpd);
    double        *x  = dalloc(n), *g = dalloc(n), *c = dalloc(n), *y = dalloc(n);
    double        *w  = dalloc(nw), *dx = dalloc(n), *dg = dalloc(n), *dw = dalloc(nw);
    const int      gated = type == 2 || type == 3;
    double         ex, ew = 0.0, eg = 0.0;
    int            ok;

    gdn_rng_seed(&rng, (uint64_t)(1000 * type + rows * 7 + G));
    gdn_rng_fill_normal(&rng, x, n, 1.0);
    gdn_rng_fill_normal(&rng, g, n, 2.0);
    gdn_rng_fill_normal(&rng, c, n, 1.0);
    for (size_t i = 0; i < nw; i++)
        w[i] = 1.0 + 0.3 * gdn_rng_normal(&rng);
    norm_ref_backward(type, eps, rows, G, gpd, x, has_w ? w : NULL, gated ? g : NULL, c, dx,
                      has_w ? dw : NULL, gated ? dg : NULL);
    ex = fd_err(x, n, dx, type, eps, rows, G, gpd, x, has_w ? w : NULL, gated ? g : NULL, c, y);
    if (has_w)
        ew = fd_err(w, nw, dw, type, eps, rows, G, gpd, x, w, gated ? g : NULL, c, y);
    if (gated)
        eg = fd_err(g, n, dg, type, eps, rows, G, gpd, x, has_w ? w : NULL, g, c, y);
    ok = ex < 1e-6 && ew < 1e-6 && eg < 1e-6;
    printf("%s  norm type %d rows %lld G %lld gpd %lld w %d eps %g: dx %.2e dw %.2e dg %.2e\n",
           ok ? "PASS" : "FAIL", type, (long long)rows, (long long)G, (long long)gpd, has_w, eps,
           ex, ew, eg);
    failures += !ok;
    free(x), free(g), free(c), free(y), free(w), free(dx), free(dg), free(dw);
}

static void check_act(int act)
{
    static const double xs[] = {-40.0, -19.0, -3.5, -1.0, -1e-3, 0.0, 0.7, 2.0, 19.5, 19.999, 20.001, 25.0};
    double              emax = 0.0;
    int                 ok;
    for (size_t i = 0; i < sizeof(xs) / sizeof(xs[0]); i++) {
        const double h   = 1e-6;
        double       num = (act_ref(act, xs[i] + h) - act_ref(act, xs[i] - h)) / (2.0 * h);
        double       e   = fabs(num - act_ref_grad(act, xs[i])) /
                   (fabs(act_ref_grad(act, xs[i])) > 1e-3 ? fabs(act_ref_grad(act, xs[i])) : 1e-3);
        /* softplus's threshold is a (tiny) kink: skip points within h of 20 */
        if (act == 2 && fabs(xs[i] - 20.0) < 2e-3)
            continue;
        if (e > emax)
            emax = e;
    }
    ok = emax < 1e-6;
    printf("%s  activation %d: max rel err %.2e\n", ok ? "PASS" : "FAIL", act, emax);
    failures += !ok;
}

int main(void)
{
    for (int type = 0; type < 4; type++) {
        check_norm(type, 3, 8, 1, type != 0, 1e-6);
        check_norm(type, 4, 5, 2, type != 0, 1e-5);
        check_norm(type, 2, 1, 1, type != 0, 0.5); /* G = 1: a non-vanishing slope */
        if (type)
            check_norm(type, 3, 6, 3, 0, 1e-6);
    }
    for (int act = 0; act < 3; act++)
        check_act(act);
    /* softplus's forward picks a branch at the threshold as PyTorch does */
    if (act_ref(2, 21.0) != 21.0 || fabs(act_ref(2, 19.0) - log1p(exp(19.0))) > 0) {
        printf("FAIL  softplus threshold\n");
        failures++;
    }
    printf("%s\n", failures ? "FAILED" : "all passed");
    return failures ? 1 : 0;
}
