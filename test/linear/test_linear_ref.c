/*
 * test_linear_ref.c - host-only check of the float64 references in
 * linear_ref.c: every backward against central finite differences of its
 * forward, with loss L = sum(y * c) for a random c (cross-entropy: L = the
 * loss itself, times dloss), plus the accumulate flags and edge cases.
 * Plain stdio; exit status nonzero if any check fails.
 */
#include "compare.h"
#include "linear_ref.h"
#include "rng.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int g_failed, g_passed;

static double *dalloc(size_t n)
{
    double *p = calloc(n ? n : 1, sizeof(double));
    if (!p) {
        fprintf(stderr, "out of memory\n");
        exit(2);
    }
    return p;
}

static void check(const char *name, const double *got, const double *want, size_t n, double tol)
{
    struct gdn_cmp c;
    char           d[256];
    gdn_cmp_f64(got, want, n, INFINITY, &c);
    gdn_cmp_describe(&c, d, sizeof(d));
    if (c.rel_rms <= tol && !c.n_nonfinite) {
        g_passed++;
        printf("PASS  %-40s %s\n", name, d);
    } else {
        g_failed++;
        printf("FAIL  %-40s %s (tol %.1e)\n", name, d, tol);
    }
}

static double dot(const double *a, const double *b, size_t n)
{
    double s = 0;
    for (size_t i = 0; i < n; i++)
        s += a[i] * b[i];
    return s;
}

#define H_ 1e-5
#define TOL 1e-7

/* ---- linear ---- */
static double linear_loss(size_t M, size_t G, size_t in, size_t out, const double *x,
                          const double *w, const double *b, const double *c)
{
    double *y = dalloc(M * G * out), l;
    ref_linear_fwd(M, G, in, out, x, w, b, y, 0);
    l = dot(y, c, M * G * out);
    free(y);
    return l;
}

static void fd_vec(double *p, size_t n, double *g, double (*f)(void *), void *arg)
{
    for (size_t i = 0; i < n; i++) {
        const double s = p[i];
        p[i]           = s + H_;
        const double a = f(arg);
        p[i]           = s - H_;
        const double b = f(arg);
        p[i]           = s;
        g[i]           = (a - b) / (2 * H_);
    }
}

struct lin_arg {
    size_t  M, G, in, out;
    double *x, *w, *b, *c;
};
static double lin_f(void *a)
{
    struct lin_arg *l = a;
    return linear_loss(l->M, l->G, l->in, l->out, l->x, l->w, l->b, l->c);
}

static void test_linear(struct gdn_rng *rng, size_t M, size_t G, size_t in, size_t out)
{
    struct lin_arg a = {M, G, in, out, dalloc(M * G * in), dalloc(G * out * in), dalloc(G * out),
                        dalloc(M * G * out)};
    double *dx = dalloc(M * G * in), *dw = dalloc(G * out * in), *db = dalloc(G * out);
    double *fx = dalloc(M * G * in), *fw = dalloc(G * out * in), *fb = dalloc(G * out);
    char    name[96];

    gdn_rng_fill_normal(rng, a.x, M * G * in, 1.0);
    gdn_rng_fill_normal(rng, a.w, G * out * in, 0.5);
    gdn_rng_fill_normal(rng, a.b, G * out, 0.5);
    gdn_rng_fill_normal(rng, a.c, M * G * out, 1.0);
    ref_linear_bwd(M, G, in, out, a.x, a.w, a.c, dx, 0, dw, db, 0);
    fd_vec(a.x, M * G * in, fx, lin_f, &a);
    fd_vec(a.w, G * out * in, fw, lin_f, &a);
    fd_vec(a.b, G * out, fb, lin_f, &a);
    snprintf(name, sizeof(name), "linear dx M=%zu G=%zu %zux%zu", M, G, in, out);
    check(name, dx, fx, M * G * in, TOL);
    snprintf(name, sizeof(name), "linear dw M=%zu G=%zu %zux%zu", M, G, in, out);
    check(name, dw, fw, G * out * in, TOL);
    snprintf(name, sizeof(name), "linear db M=%zu G=%zu %zux%zu", M, G, in, out);
    check(name, db, fb, G * out, TOL);
    /* accumulate: running bwd again with acc doubles the result */
    ref_linear_bwd(M, G, in, out, a.x, a.w, a.c, dx, 1, dw, db, 1);
    for (size_t i = 0; i < M * G * in; i++)
        fx[i] *= 2;
    for (size_t i = 0; i < G * out * in; i++)
        fw[i] *= 2;
    for (size_t i = 0; i < G * out; i++)
        fb[i] *= 2;
    check("linear accumulate dx", dx, fx, M * G * in, TOL);
    check("linear accumulate dw", dw, fw, G * out * in, TOL);
    check("linear accumulate db", db, fb, G * out, TOL);
    free(a.x), free(a.w), free(a.b), free(a.c), free(dx), free(dw), free(db), free(fx), free(fw),
        free(fb);
}

/* ---- SwiGLU ---- */
struct sw_arg {
    size_t  M, D, F, Do;
    double *x, *wg, *wu, *wd, *c;
};
static double sw_f(void *p)
{
    struct sw_arg *a = p;
    double        *y = dalloc(a->M * a->Do), l;
    ref_swiglu_fwd(a->M, a->D, a->F, a->Do, a->x, a->wg, a->wu, a->wd, y, 0);
    l = dot(y, a->c, a->M * a->Do);
    free(y);
    return l;
}

static void test_swiglu(struct gdn_rng *rng, size_t M, size_t D, size_t F, size_t Do)
{
    struct sw_arg a = {M, D, F, Do, dalloc(M * D), dalloc(F * D), dalloc(F * D), dalloc(Do * F),
                       dalloc(M * Do)};
    double *dx = dalloc(M * D), *dg = dalloc(F * D), *du = dalloc(F * D), *dd = dalloc(Do * F);
    double *fx = dalloc(M * D), *fg = dalloc(F * D), *fu = dalloc(F * D), *fd = dalloc(Do * F);

    gdn_rng_fill_normal(rng, a.x, M * D, 1.0);
    gdn_rng_fill_normal(rng, a.wg, F * D, 1.0);
    gdn_rng_fill_normal(rng, a.wu, F * D, 1.0);
    gdn_rng_fill_normal(rng, a.wd, Do * F, 1.0);
    gdn_rng_fill_normal(rng, a.c, M * Do, 1.0);
    ref_swiglu_bwd(M, D, F, Do, a.x, a.wg, a.wu, a.wd, a.c, dx, 0, dg, du, dd, 0);
    fd_vec(a.x, M * D, fx, sw_f, &a);
    fd_vec(a.wg, F * D, fg, sw_f, &a);
    fd_vec(a.wu, F * D, fu, sw_f, &a);
    fd_vec(a.wd, Do * F, fd, sw_f, &a);
    check("swiglu dx", dx, fx, M * D, 1e-6);
    check("swiglu dw_gate", dg, fg, F * D, 1e-6);
    check("swiglu dw_up", du, fu, F * D, 1e-6);
    check("swiglu dw_down", dd, fd, Do * F, 1e-6);
    free(a.x), free(a.wg), free(a.wu), free(a.wd), free(a.c);
    free(dx), free(dg), free(du), free(dd), free(fx), free(fg), free(fu), free(fd);
}

/* ---- embedding ---- */
struct emb_arg {
    size_t         T, V, D;
    double        *table, *c;
    const int32_t *ids;
};
static double emb_f(void *p)
{
    struct emb_arg *a = p;
    double         *y = dalloc(a->T * a->D), l;
    ref_embedding_fwd(a->T, a->V, a->D, a->table, a->ids, y, 0);
    l = dot(y, a->c, a->T * a->D);
    free(y);
    return l;
}

static void test_embedding(struct gdn_rng *rng)
{
    const int32_t  ids[] = {3, 0, 3, 6, 3, 1, 0};
    struct emb_arg a = {7, 7, 5, dalloc(7 * 5), dalloc(7 * 5), ids};
    double        *g = dalloc(7 * 5), *f = dalloc(7 * 5);
    gdn_rng_fill_normal(rng, a.table, 35, 1.0);
    gdn_rng_fill_normal(rng, a.c, 35, 1.0);
    ref_embedding_bwd(7, 7, 5, ids, a.c, g, 0);
    fd_vec(a.table, 35, f, emb_f, &a);
    check("embedding dtable (ids repeat, some rows unused)", g, f, 35, TOL);
    free(a.table), free(a.c), free(g), free(f);
}

/* ---- cross-entropy ---- */
struct ce_arg {
    size_t         M, V;
    double        *logits;
    const int32_t *t;
    int            sum_mode;
    double         dloss;
};
static double ce_f(void *p)
{
    struct ce_arg *a = p;
    double         l;
    ref_cross_entropy_fwd(a->M, a->V, a->logits, a->t, -100, a->sum_mode, NULL, NULL, &l, NULL);
    return l * a->dloss;
}

static void test_ce(struct gdn_rng *rng, int sum_mode, double scale)
{
    const int32_t t[] = {2, -100, 0, 9, 5, -100};
    struct ce_arg a   = {6, 10, dalloc(60), t, sum_mode, 0.7};
    double       *g = dalloc(60), *f = dalloc(60), loss, lse[6], rl[6];
    int32_t       n;
    char          name[96];
    gdn_rng_fill_normal(rng, a.logits, 60, scale);
    ref_cross_entropy_bwd(6, 10, a.logits, t, -100, sum_mode, 0.7, g);
    fd_vec(a.logits, 60, f, ce_f, &a);
    snprintf(name, sizeof(name), "cross_entropy dlogits %s, logit std %g",
             sum_mode ? "sum" : "mean", scale);
    check(name, g, f, 60, 1e-6);
    ref_cross_entropy_fwd(6, 10, a.logits, t, -100, sum_mode, lse, rl, &loss, &n);
    if (n == 4 && rl[1] == 0.0 && rl[5] == 0.0)
        g_passed++, printf("PASS  cross_entropy count = 4, ignored rows 0\n");
    else
        g_failed++, printf("FAIL  cross_entropy count %d\n", (int)n);
    free(a.logits), free(g), free(f);
}

int main(void)
{
    struct gdn_rng rng;
    gdn_rng_seed(&rng, 7);
    test_linear(&rng, 5, 1, 7, 3);
    test_linear(&rng, 1, 1, 4, 6);
    test_linear(&rng, 3, 2, 5, 4);
    test_swiglu(&rng, 3, 5, 7, 4);
    test_embedding(&rng);
    test_ce(&rng, 0, 1.0);
    test_ce(&rng, 1, 3.0);
    printf("%d passed, %d failed\n", g_passed, g_failed);
    return g_failed ? 1 : 0;
}
