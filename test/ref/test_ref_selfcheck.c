/*
 * test_ref_selfcheck.c - standalone self-check of the float64 gated delta
 * rule reference (gated_delta_ref.c) and the test harness (rng.c, compare.c).
 * Plain stdio, no test framework.
 *
 * Checks (ALGORITHM.md sections in brackets):
 *   (a) recurrent forward [1.2, 1.4] == chunked forward [2.1] for C = 64 and
 *       C = 8, varlen with lengths {1, 0, 17, 70}, GVA HV/H = 2, h0 present,
 *       log gates in [-20, 0) (plus a weak-gate and an h0 = NULL case);
 *   (b) recurrent backward [1.4, 2.3] against central finite differences for
 *       q, k, v, g, beta, h0 with loss = sum(o*do) + sum(ht*dht), log gates in
 *       [-5, 0);
 *   (c) l2norm / gate / beta backward [1.2, 2.3 B8, B9] against finite
 *       differences; scalar helper edge cases; harness sanity.
 * Prints one line per check and ends with "N passed, M failed"; the exit
 * status is nonzero if any check failed.
 *
 * Build (from the repository root): gcc -std=c11 -O2 -Wall -Wextra -Wpedantic
 *   -Werror -Itest/ref -Itest/harness, all .c files of test/ref and
 *   test/harness, -lm.
 */
#include "compare.h"
#include "gated_delta_ref.h"
#include "rng.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int g_passed;
static int g_failed;

static void report(int ok, const char *name, const char *detail)
{
    if (ok) {
        g_passed++;
    } else {
        g_failed++;
    }
    printf("%s  %s%s%s\n", ok ? "PASS" : "FAIL", name, detail ? ": " : "", detail ? detail : "");
    fflush(stdout);
}

static double *dalloc(size_t n)
{
    double *x = calloc(n > 0 ? n : 1, sizeof(*x));
    if (x == NULL) {
        fprintf(stderr, "out of memory\n");
        exit(2);
    }
    return x;
}

static double dot(const double *a, const double *b, size_t n)
{
    double s = 0.0;
    for (size_t i = 0; i < n; ++i) {
        s += a[i] * b[i];
    }
    return s;
}

static double max_abs_of(const double *x, size_t n)
{
    double m = 0.0;
    for (size_t i = 0; i < n; ++i) {
        if (fabs(x[i]) > m) {
            m = fabs(x[i]);
        }
    }
    return m;
}

/* max |num - ana| / max(max|num|, 1e-12) */
static double rel_max_err(const double *num, const double *ana, size_t n)
{
    double m = 0.0;
    for (size_t i = 0; i < n; ++i) {
        double d = fabs(num[i] - ana[i]);
        if (!(d <= m)) { /* also propagates NaN */
            m = d;
        }
    }
    double s = max_abs_of(num, n);
    return m / (s > 1e-12 ? s : 1e-12);
}

/* ------------------------------------------------------------------------ */
/* (a) recurrent vs chunked forward                                          */
/* ------------------------------------------------------------------------ */

static void check_chunked(const char *tag, uint64_t seed, const int32_t *lens, int32_t N,
                          int32_t H, int32_t HV, int32_t K, int32_t V, double glo, int use_h0,
                          const int32_t *Cs, int nC)
{
    struct gdn_rng rng;
    gdn_rng_seed(&rng, seed);
    int32_t *off = calloc((size_t)N + 1, sizeof(*off));
    if (off == NULL) {
        exit(2);
    }
    for (int32_t n = 0; n < N; ++n) {
        off[n + 1] = off[n] + lens[n];
    }
    struct gdn_ref_gd_problem p = {off[N], H, HV, K, V, N, off, 1.0 / sqrt((double)K)};
    const size_t T = (size_t)p.T;
    const size_t nqk = T * H * K, nv = T * HV * V, ng = T * HV;
    const size_t ns = (size_t)N * HV * K * V;
    double *q = dalloc(nqk), *k = dalloc(nqk), *v = dalloc(nv), *g = dalloc(ng), *b = dalloc(ng);
    double *h0 = dalloc(ns), *o1 = dalloc(nv), *o2 = dalloc(nv), *ht1 = dalloc(ns),
           *ht2 = dalloc(ns);
    gdn_rng_fill_l2rows(&rng, q, T * H, (size_t)K);
    gdn_rng_fill_l2rows(&rng, k, T * H, (size_t)K);
    gdn_rng_fill_normal(&rng, v, nv, 1.0);
    gdn_rng_fill_uniform(&rng, g, ng, glo, 0.0);
    gdn_rng_fill_uniform(&rng, b, ng, 0.0, 1.0);
    gdn_rng_fill_normal(&rng, h0, ns, 0.5);

    gdn_ref_gd_forward(&p, q, k, v, g, b, use_h0 ? h0 : NULL, o1, ht1);
    for (int c = 0; c < nC; ++c) {
        char name[160], det[256];
        struct gdn_cmp co, ch;
        memset(o2, 0xff, nv * sizeof(*o2)); /* NaN poison: every row must be written */
        memset(ht2, 0xff, ns * sizeof(*ht2));
        gdn_ref_gd_forward_chunked(&p, Cs[c], q, k, v, g, b, use_h0 ? h0 : NULL, o2, ht2);
        gdn_cmp_f64(o2, o1, nv, 1e-11, &co);
        gdn_cmp_f64(ht2, ht1, ns, 1e-11, &ch);
        int ok = co.first_bad < 0 && ch.first_bad < 0 && co.rel_rms < 1e-12 && ch.rel_rms < 1e-12;
        snprintf(name, sizeof(name), "fwd recurrent==chunked %s C=%d", tag, (int)Cs[c]);
        snprintf(det, sizeof(det), "o rel_rms=%.2e max_abs=%.2e | ht rel_rms=%.2e max_abs=%.2e",
                 co.rel_rms, co.max_abs, ch.rel_rms, ch.max_abs);
        report(ok, name, det);
    }
    free(q);
    free(k);
    free(v);
    free(g);
    free(b);
    free(h0);
    free(o1);
    free(o2);
    free(ht1);
    free(ht2);
    free(off);
}

/* ------------------------------------------------------------------------ */
/* (b) backward vs finite differences                                        */
/* ------------------------------------------------------------------------ */

struct fd_case {
    struct gdn_ref_gd_problem p;
    double *q, *k, *v, *g, *b, *h0, *dout, *dht;
    int dht_null; /* loss has no ht term and backward gets dht = NULL */
};

static double fd_loss(const struct fd_case *c, double *o, double *ht)
{
    const struct gdn_ref_gd_problem *p = &c->p;
    const size_t nv = (size_t)p->T * p->HV * p->V;
    const size_t ns = (size_t)p->n_seqs * p->HV * p->K * p->V;
    gdn_ref_gd_forward(p, c->q, c->k, c->v, c->g, c->b, c->h0, o, ht);
    double L = dot(o, c->dout, nv);
    if (!c->dht_null) {
        L += dot(ht, c->dht, ns);
    }
    return L;
}

static void check_bwd_fd(const char *tag, uint64_t seed, const int32_t *lens, int32_t N,
                         int32_t H, int32_t HV, int32_t K, int32_t V, int null_h0_dht)
{
    struct gdn_rng rng;
    gdn_rng_seed(&rng, seed);
    int32_t *off = calloc((size_t)N + 1, sizeof(*off));
    if (off == NULL) {
        exit(2);
    }
    for (int32_t n = 0; n < N; ++n) {
        off[n + 1] = off[n] + lens[n];
    }
    struct fd_case c;
    memset(&c, 0, sizeof(c));
    c.p = (struct gdn_ref_gd_problem){off[N], H, HV, K, V, N, off, 1.0 / sqrt((double)K)};
    const size_t T = (size_t)c.p.T;
    const size_t nqk = T * H * K, nv = T * HV * V, ng = T * HV;
    const size_t ns = (size_t)N * HV * K * V;
    c.q = dalloc(nqk);
    c.k = dalloc(nqk);
    c.v = dalloc(nv);
    c.g = dalloc(ng);
    c.b = dalloc(ng);
    c.h0 = dalloc(ns);
    c.dout = dalloc(nv);
    c.dht = dalloc(ns);
    c.dht_null = null_h0_dht;
    gdn_rng_fill_l2rows(&rng, c.q, T * H, (size_t)K);
    gdn_rng_fill_l2rows(&rng, c.k, T * H, (size_t)K);
    gdn_rng_fill_normal(&rng, c.v, nv, 1.0);
    gdn_rng_fill_uniform(&rng, c.g, ng, -5.0, 0.0);
    gdn_rng_fill_uniform(&rng, c.b, ng, 0.05, 1.95); /* covers neg-eigval range */
    if (!null_h0_dht) {
        gdn_rng_fill_normal(&rng, c.h0, ns, 0.5); /* else h0 stays 0 */
    }
    gdn_rng_fill_normal(&rng, c.dout, nv, 1.0);
    gdn_rng_fill_normal(&rng, c.dht, ns, 1.0);

    double *dq = dalloc(nqk), *dk = dalloc(nqk), *dv = dalloc(nv), *dg = dalloc(ng),
           *db = dalloc(ng), *dh0 = dalloc(ns);
    double *o = dalloc(nv), *ht = dalloc(ns);
    /* poison outputs: the backward must write (or zero) every element */
    memset(dq, 0xff, nqk * sizeof(*dq));
    memset(dk, 0xff, nqk * sizeof(*dk));
    gdn_ref_gd_backward(&c.p, c.q, c.k, c.v, c.g, c.b, null_h0_dht ? NULL : c.h0, c.dout,
                        null_h0_dht ? NULL : c.dht, dq, dk, dv, dg, db, dh0);

    const double eps = 1e-6;
    struct {
        const char *name;
        double *x;
        const double *ana;
        size_t n;
    } in[6] = {{"dq", c.q, dq, nqk}, {"dk", c.k, dk, nqk}, {"dv", c.v, dv, nv},
               {"dg", c.g, dg, ng},  {"dbeta", c.b, db, ng}, {"dh0", c.h0, dh0, ns}};
    for (int a = 0; a < 6; ++a) {
        double *num = dalloc(in[a].n);
        for (size_t i = 0; i < in[a].n; ++i) {
            const double x0 = in[a].x[i];
            in[a].x[i] = x0 + eps;
            const double lp = fd_loss(&c, o, ht);
            in[a].x[i] = x0 - eps;
            const double lm = fd_loss(&c, o, ht);
            in[a].x[i] = x0;
            num[i] = (lp - lm) / (2.0 * eps);
        }
        const double err = rel_max_err(num, in[a].ana, in[a].n);
        char name[160], det[128];
        snprintf(name, sizeof(name), "bwd vs FD %s %s", tag, in[a].name);
        snprintf(det, sizeof(det), "rel max err=%.2e (max|grad|=%.2e)", err,
                 max_abs_of(num, in[a].n));
        report(err < 1e-6, name, det);
        free(num);
    }
    free(dq);
    free(dk);
    free(dv);
    free(dg);
    free(db);
    free(dh0);
    free(o);
    free(ht);
    free(c.q);
    free(c.k);
    free(c.v);
    free(c.g);
    free(c.b);
    free(c.h0);
    free(c.dout);
    free(c.dht);
    free(off);
}

/* ------------------------------------------------------------------------ */
/* (c) preprocessing ops vs finite differences                               */
/* ------------------------------------------------------------------------ */

static void check_l2norm_fd(void)
{
    const int64_t rows = 5;
    const int32_t D = 7;
    const double leps = 1e-6, eps = 1e-6;
    const size_t n = (size_t)rows * D;
    struct gdn_rng rng;
    gdn_rng_seed(&rng, 301);
    double *x = dalloc(n), *y = dalloc(n), *dy = dalloc(n), *dx = dalloc(n), *num = dalloc(n);
    double *rstd = dalloc((size_t)rows);
    gdn_rng_fill_normal(&rng, x, n, 1.0);
    for (int32_t d = 0; d < D; ++d) {
        x[d] *= 1e-2; /* one small-norm row, where eps matters more */
    }
    gdn_rng_fill_normal(&rng, dy, n, 1.0);
    gdn_ref_l2norm_bwd(rows, D, leps, x, dy, dx);
    for (size_t i = 0; i < n; ++i) {
        const double x0 = x[i];
        x[i] = x0 + eps;
        gdn_ref_l2norm_fwd(rows, D, leps, x, y, NULL);
        const double lp = dot(y, dy, n);
        x[i] = x0 - eps;
        gdn_ref_l2norm_fwd(rows, D, leps, x, y, NULL);
        const double lm = dot(y, dy, n);
        x[i] = x0;
        num[i] = (lp - lm) / (2.0 * eps);
    }
    double err = rel_max_err(num, dx, n);
    char det[128];
    snprintf(det, sizeof(det), "rel max err=%.2e", err);
    report(err < 1e-6, "l2norm bwd vs FD dx", det);

    /* forward: rows have norm sqrt(ss / (ss + eps)), rstd matches */
    gdn_ref_l2norm_fwd(rows, D, leps, x, y, rstd);
    double worst = 0.0;
    for (int64_t r = 0; r < rows; ++r) {
        const double ss = dot(x + r * D, x + r * D, (size_t)D);
        const double want = sqrt(ss / (ss + leps));
        const double got = sqrt(dot(y + r * D, y + r * D, (size_t)D));
        worst = fmax(worst, fabs(got - want));
        worst = fmax(worst, fabs(rstd[r] * sqrt(ss + leps) - 1.0));
    }
    snprintf(det, sizeof(det), "max err=%.2e", worst);
    report(worst < 1e-14, "l2norm fwd row norms and rstd", det);
    free(x);
    free(y);
    free(dy);
    free(dx);
    free(num);
    free(rstd);
}

static double gate_loss(int64_t T, int32_t HV, const double *a, const double *A_log,
                        const double *dt_bias, const double *dg, double *g)
{
    gdn_ref_gate_fwd(T, HV, a, A_log, dt_bias, g);
    return dot(g, dg, (size_t)T * HV);
}

static void check_gate_fd(void)
{
    const int64_t T = 6;
    const int32_t HV = 3;
    const double eps = 1e-6;
    const size_t n = (size_t)T * HV;
    struct gdn_rng rng;
    gdn_rng_seed(&rng, 302);
    double *a = dalloc(n), *g = dalloc(n), *dg = dalloc(n), *da = dalloc(n);
    double *A_log = dalloc((size_t)HV), *dt_bias = dalloc((size_t)HV);
    double *dA = dalloc((size_t)HV), *ddt = dalloc((size_t)HV);
    gdn_rng_fill_normal(&rng, a, n, 2.0);
    a[4] = 25.0; /* softplus linear branch (x > 20) */
    a[7] = -30.0; /* deep negative: softplus ~ exp(x) */
    gdn_rng_fill_normal(&rng, A_log, (size_t)HV, 0.5);
    gdn_rng_fill_normal(&rng, dt_bias, (size_t)HV, 1.0);
    gdn_rng_fill_normal(&rng, dg, n, 1.0);
    gdn_ref_gate_bwd(T, HV, a, A_log, dt_bias, dg, da, dA, ddt);

    struct {
        const char *name;
        double *x;
        const double *ana;
        size_t n;
    } in[3] = {{"gate bwd vs FD da", a, da, n},
               {"gate bwd vs FD dA_log", A_log, dA, (size_t)HV},
               {"gate bwd vs FD ddt_bias", dt_bias, ddt, (size_t)HV}};
    for (int i = 0; i < 3; ++i) {
        double *num = dalloc(in[i].n);
        for (size_t j = 0; j < in[i].n; ++j) {
            const double x0 = in[i].x[j];
            in[i].x[j] = x0 + eps;
            const double lp = gate_loss(T, HV, a, A_log, dt_bias, dg, g);
            in[i].x[j] = x0 - eps;
            const double lm = gate_loss(T, HV, a, A_log, dt_bias, dg, g);
            in[i].x[j] = x0;
            num[j] = (lp - lm) / (2.0 * eps);
        }
        const double err = rel_max_err(num, in[i].ana, in[i].n);
        char det[128];
        snprintf(det, sizeof(det), "rel max err=%.2e", err);
        report(err < 1e-6, in[i].name, det);
        free(num);
    }
    free(a);
    free(g);
    free(dg);
    free(da);
    free(A_log);
    free(dt_bias);
    free(dA);
    free(ddt);
}

static void check_beta_fd(int neg_eigval)
{
    const int64_t n = 12;
    const double eps = 1e-6;
    struct gdn_rng rng;
    gdn_rng_seed(&rng, 303 + (uint64_t)neg_eigval);
    double *b = dalloc((size_t)n), *beta = dalloc((size_t)n), *dbeta = dalloc((size_t)n);
    double *db = dalloc((size_t)n), *num = dalloc((size_t)n);
    gdn_rng_fill_normal(&rng, b, (size_t)n, 3.0);
    b[0] = 40.0;
    b[1] = -40.0;
    gdn_rng_fill_normal(&rng, dbeta, (size_t)n, 1.0);
    gdn_ref_beta_bwd(n, neg_eigval, b, dbeta, db);
    for (int64_t i = 0; i < n; ++i) {
        const double x0 = b[i];
        b[i] = x0 + eps;
        gdn_ref_beta_fwd(n, neg_eigval, b, beta);
        const double lp = dot(beta, dbeta, (size_t)n);
        b[i] = x0 - eps;
        gdn_ref_beta_fwd(n, neg_eigval, b, beta);
        const double lm = dot(beta, dbeta, (size_t)n);
        b[i] = x0;
        num[i] = (lp - lm) / (2.0 * eps);
    }
    const double err = rel_max_err(num, db, (size_t)n);
    char name[64], det[128];
    snprintf(name, sizeof(name), "beta bwd vs FD db (neg_eigval=%d)", neg_eigval);
    snprintf(det, sizeof(det), "rel max err=%.2e", err);
    report(err < 1e-6, name, det);
    free(b);
    free(beta);
    free(dbeta);
    free(db);
    free(num);
}

static void check_scalars(void)
{
    int ok = 1;
    ok &= gdn_ref_softplus(100.0) == 100.0;
    ok &= gdn_ref_softplus(-800.0) == 0.0;
    ok &= fabs(gdn_ref_softplus(0.0) - log(2.0)) < 1e-15;
    ok &= gdn_ref_sigmoid(-800.0) == 0.0;
    ok &= gdn_ref_sigmoid(800.0) == 1.0;
    ok &= fabs(gdn_ref_sigmoid(0.0) - 0.5) < 1e-16;
    ok &= fabs(gdn_ref_sigmoid(1.5) + gdn_ref_sigmoid(-1.5) - 1.0) < 1e-15;
    double a0 = 0.0, al = 0.0, dtb = 0.0, g = 0.0, beta2 = 0.0;
    gdn_ref_gate_fwd(1, 1, &a0, &al, &dtb, &g);
    ok &= fabs(g + log(2.0)) < 1e-15;
    gdn_ref_beta_fwd(1, 1, &a0, &beta2);
    ok &= beta2 == 1.0;
    report(ok, "scalar helpers (softplus/sigmoid/gate/beta edge values)", NULL);
}

/* Trivial cases: T = 0 keeps ht = h0; a single token has a closed form. */
static void check_trivial(void)
{
    int32_t off0[3] = {0, 0, 0};
    struct gdn_ref_gd_problem p0 = {0, 1, 1, 2, 2, 2, off0, 1.0};
    double h0[8] = {1, 2, 3, 4, 5, 6, 7, 8}, ht[8], ht2[8], dh0[8];
    double dht[8] = {1, 1, 1, 1, 2, 2, 2, 2};
    gdn_ref_gd_forward(&p0, NULL, NULL, NULL, NULL, NULL, h0, NULL, ht);
    gdn_ref_gd_forward_chunked(&p0, 64, NULL, NULL, NULL, NULL, NULL, h0, NULL, ht2);
    gdn_ref_gd_backward(&p0, NULL, NULL, NULL, NULL, NULL, h0, NULL, dht, NULL, NULL, NULL, NULL,
                        NULL, dh0);
    int ok = memcmp(ht, h0, sizeof(h0)) == 0 && memcmp(ht2, h0, sizeof(h0)) == 0 &&
             memcmp(dh0, dht, sizeof(dht)) == 0;
    report(ok, "empty sequences: ht == h0, dh0 == dht", NULL);

    /* one token, h0 = 0: u = beta v, h = beta k v^T, o = scale beta (q.k) v */
    int32_t off1[2] = {0, 1};
    struct gdn_ref_gd_problem p1 = {1, 1, 1, 2, 3, 1, off1, 0.5};
    double q[2] = {0.6, 0.8}, k[2] = {1.0, 0.0}, v[3] = {1.0, -2.0, 3.0};
    double g = -0.7, beta = 0.25, o[3], h[6];
    gdn_ref_gd_forward(&p1, q, k, v, &g, &beta, NULL, o, h);
    double err = 0.0;
    for (int j = 0; j < 3; ++j) {
        err = fmax(err, fabs(o[j] - 0.5 * 0.25 * 0.6 * v[j]));
        err = fmax(err, fabs(h[j] - 0.25 * v[j]));
        err = fmax(err, fabs(h[3 + j]));
    }
    char det[64];
    snprintf(det, sizeof(det), "max err=%.2e", err);
    report(err < 1e-15, "single token closed form", det);
}

static void check_harness(void)
{
    struct gdn_rng r1, r2;
    gdn_rng_seed(&r1, 42);
    gdn_rng_seed(&r2, 42);
    int same = 1, in_range = 1;
    double s = 0.0, s2 = 0.0;
    const int n = 20000;
    for (int i = 0; i < 1000; ++i) {
        same &= gdn_rng_next_u64(&r1) == gdn_rng_next_u64(&r2);
    }
    for (int i = 0; i < n; ++i) {
        double u = gdn_rng_uniform(&r1);
        in_range &= u >= 0.0 && u < 1.0;
        double z = gdn_rng_normal(&r2);
        s += z;
        s2 += z * z;
    }
    const double mean = s / n, var = s2 / n - mean * mean;
    char det[128];
    snprintf(det, sizeof(det), "normal mean=%.3f var=%.3f", mean, var);
    report(same && in_range && fabs(mean) < 0.05 && fabs(var - 1.0) < 0.05,
           "rng determinism / ranges / moments", det);

    double ref[4] = {1.0, 2.0, 3.0, 0.0};
    float got[4] = {1.0f, 2.0f, 3.5f, 0.0f};
    struct gdn_cmp c;
    gdn_cmp_f32(got, ref, 4, 0.1, &c);
    int ok = c.first_bad == 2 && c.n_nonfinite == 0 && fabs(c.max_abs - 0.5) < 1e-15 &&
             fabs(c.rel_rms - 0.5 / sqrt(14.0)) < 1e-15 && fabs(c.ref_rms - sqrt(14.0 / 4)) < 1e-15;
    got[3] = (float)NAN;
    gdn_cmp_f32(got, ref, 4, 1.0, &c);
    ok &= c.first_bad == 3 && c.n_nonfinite == 1 && isinf(c.rel_rms);
    double zero[2] = {0.0, 0.0}, g2[2] = {3.0, 4.0};
    gdn_cmp_f64(g2, zero, 2, 10.0, &c);
    ok &= c.first_bad == -1 && c.rel_rms == 5.0;
    char buf[160];
    ok &= gdn_cmp_describe(&c, buf, sizeof(buf)) > 0;
    float f[2];
    double back[2];
    gdn_f64_to_f32(ref, f, 2);
    gdn_f32_to_f64(f, back, 2);
    ok &= back[0] == 1.0 && back[1] == 2.0;
    report(ok, "compare metrics / describe / conversions", buf);
}

int main(void)
{
    /* (a) recurrent vs chunked */
    {
        const int32_t lens[4] = {1, 0, 17, 70};
        const int32_t Cs[3] = {64, 8, 5};
        check_chunked("varlen{1,0,17,70} H=2 HV=4 K=16 V=12 g[-20,0) h0", 11, lens, 4, 2, 4, 16,
                      12, -20.0, 1, Cs, 3);
        check_chunked("varlen{1,0,17,70} H=2 HV=4 K=16 V=12 g[-0.3,0) h0", 12, lens, 4, 2, 4, 16,
                      12, -0.3, 1, Cs, 3);
        const int32_t lens1[1] = {150};
        check_chunked("T=150 H=1 HV=2 K=8 V=20 g[-20,0) h0=NULL", 13, lens1, 1, 1, 2, 8, 20,
                      -20.0, 0, Cs, 2);
    }
    /* (b) backward vs finite differences */
    {
        const int32_t lens[2] = {4, 5};
        check_bwd_fd("T=9{4,5} H=1 HV=2 K=4 V=3", 21, lens, 2, 1, 2, 4, 3, 0);
        const int32_t lens2[4] = {0, 3, 1, 5};
        check_bwd_fd("T=9{0,3,1,5} H=2 HV=4 K=4 V=3 h0=dht=NULL", 22, lens2, 4, 2, 4, 4, 3, 1);
    }
    /* (c) preprocessing ops, edge cases, harness */
    check_l2norm_fd();
    check_gate_fd();
    check_beta_fd(0);
    check_beta_fd(1);
    check_scalars();
    check_trivial();
    check_harness();

    printf("%d passed, %d failed\n", g_passed, g_failed);
    return g_failed != 0;
}
