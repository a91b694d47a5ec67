/*
 * test_swa_ref.c - host-only self-check of the float64 SWA reference
 * (swa_ref.c), no device: plain stdio, ends with "N passed, M failed".
 *
 *   (a) swa_ref_backward against central finite differences of
 *       loss = sum(o * dout) for q, k, v: varlen with a length-1 sequence,
 *       GQA 2 and 4, W = 1, W = 3, W > T, RoPE on (with position offsets)
 *       and off;
 *   (b) RoPE: inverse after forward is the identity, position 0 is the
 *       identity, and norms of every pair are kept;
 *   (c) W = 1 gives o = v of the token itself (lse = scale q.k); W >= T
 *       equals W = T (full causal).
 */
#include "rng.h"
#include "swa_ref.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int g_passed, g_failed;

static void report(int ok, const char *name, double err)
{
    if (ok)
        g_passed++;
    else
        g_failed++;
    printf("%s  %s: %.3e\n", ok ? "PASS" : "FAIL", name, err);
    fflush(stdout);
}

static double *dalloc(size_t n)
{
    double *x = calloc(n ? n : 1, sizeof(double));
    if (!x) {
        fprintf(stderr, "out of memory\n");
        exit(2);
    }
    return x;
}

static double loss(const struct swa_ref_shape *s, const double *q, const double *k,
                   const double *v, const double *dout, int64_t T)
{
    double *o = dalloc((size_t)T * s->Hq * s->D), l = 0.0;
    swa_ref_forward(s, q, k, v, o, NULL);
    for (size_t i = 0; i < (size_t)T * s->Hq * s->D; i++)
        l += o[i] * dout[i];
    free(o);
    return l;
}

/* max |fd - ana| / max(max |fd|, 1e-12) over every element of x. */
static double fd_check(const struct swa_ref_shape *s, double *q, double *k, double *v,
                       const double *dout, int64_t T, double *x, const double *ana, size_t n)
{
    const double h = 1e-5;
    double       worst = 0.0, scale = 1e-12;
    for (size_t i = 0; i < n; i++) {
        double x0 = x[i], lp, lm, fd;
        x[i] = x0 + h;
        lp   = loss(s, q, k, v, dout, T);
        x[i] = x0 - h;
        lm   = loss(s, q, k, v, dout, T);
        x[i] = x0;
        fd   = (lp - lm) / (2 * h);
        if (fabs(fd) > scale)
            scale = fabs(fd);
        if (fabs(fd - ana[i]) > worst)
            worst = fabs(fd - ana[i]);
    }
    return worst / scale;
}

struct fd_case {
    const char *name;
    int32_t     N;
    int32_t     offsets[6];
    int32_t     pos_off[5];
    int32_t     Hq, Hkv, D;
    int64_t     W;
    int         rope;
};

static const struct fd_case fd_cases[] = {
    {"varlen {1,5,12} GQA2 W=3 rope+offsets", 3, {0, 1, 6, 18}, {0, 7, 100}, 4, 2, 6, 3, 1},
    {"one seq T=9 GQA4 W=1 norope", 1, {0, 9}, {0}, 4, 1, 4, 1, 0},
    {"two seqs {7,4} MHA W>T rope", 2, {0, 7, 11}, {0, 0}, 2, 2, 8, 100, 1},
    {"one seq T=10 GQA2 W=4 norope", 1, {0, 10}, {0}, 2, 1, 4, 4, 0},
};

static void run_fd(const struct fd_case *c)
{
    struct swa_ref_shape s;
    struct gdn_rng       rng;
    int64_t              T = c->offsets[c->N];
    size_t               nq = (size_t)T * c->Hq * c->D, nk = (size_t)T * c->Hkv * c->D;
    double *q = dalloc(nq), *k = dalloc(nk), *v = dalloc(nk), *dout = dalloc(nq);
    double *dq = dalloc(nq), *dk = dalloc(nk), *dv = dalloc(nk);
    char    name[160];
    double  e;

    memset(&s, 0, sizeof(s));
    s.N = c->N, s.offsets = c->offsets, s.pos_off = c->rope ? c->pos_off : NULL;
    s.Hq = c->Hq, s.Hkv = c->Hkv, s.D = c->D, s.W = c->W, s.rope = c->rope, s.base = 10000.0;
    s.scale = 1.0 / sqrt((double)c->D);
    gdn_rng_seed(&rng, 1234);
    gdn_rng_fill_normal(&rng, q, nq, 1.0);
    gdn_rng_fill_normal(&rng, k, nk, 1.0);
    gdn_rng_fill_normal(&rng, v, nk, 1.0);
    gdn_rng_fill_normal(&rng, dout, nq, 1.0);
    swa_ref_backward(&s, q, k, v, dout, dq, dk, dv);
    snprintf(name, sizeof(name), "fd dq [%s]", c->name);
    e = fd_check(&s, q, k, v, dout, T, q, dq, nq);
    report(e < 1e-7, name, e);
    snprintf(name, sizeof(name), "fd dk [%s]", c->name);
    e = fd_check(&s, q, k, v, dout, T, k, dk, nk);
    report(e < 1e-7, name, e);
    snprintf(name, sizeof(name), "fd dv [%s]", c->name);
    e = fd_check(&s, q, k, v, dout, T, v, dv, nk);
    report(e < 1e-7, name, e);
    free(q), free(k), free(v), free(dout), free(dq), free(dk), free(dv);
}

static void check_rope(void)
{
    struct gdn_rng rng;
    const int64_t  T = 20;
    const int32_t  H = 3, D = 16;
    size_t         n = (size_t)T * H * D;
    double *x = dalloc(n), *y = dalloc(n), *z = dalloc(n), e = 0.0, e0 = 0.0, en = 0.0;
    int32_t pos[20];
    gdn_rng_seed(&rng, 7);
    gdn_rng_fill_normal(&rng, x, n, 1.0);
    for (int i = 0; i < T; i++)
        pos[i] = i * 977;
    swa_ref_rope(x, y, T, H, D, pos, 10000.0, 0);
    swa_ref_rope(y, z, T, H, D, pos, 10000.0, 1);
    for (size_t i = 0; i < n; i++)
        e = fmax(e, fabs(z[i] - x[i]));
    report(e < 1e-12, "rope inverse(forward(x)) == x", e);
    for (int64_t t = 0; t < T; t++)
        for (int32_t h = 0; h < H; h++)
            for (int32_t i = 0; i < D / 2; i++) {
                const double *a = x + ((size_t)t * H + h) * D, *b = y + ((size_t)t * H + h) * D;
                double na = a[i] * a[i] + a[i + D / 2] * a[i + D / 2];
                double nb = b[i] * b[i] + b[i + D / 2] * b[i + D / 2];
                en        = fmax(en, fabs(na - nb));
                if (t == 0)
                    e0 = fmax(e0, fabs(a[i] - b[i]) + fabs(a[i + D / 2] - b[i + D / 2]));
            }
    report(e0 == 0.0, "rope at position 0 is the identity", e0);
    report(en < 1e-12, "rope keeps pair norms", en);
    free(x), free(y), free(z);
}

static void check_windows(void)
{
    struct swa_ref_shape s;
    struct gdn_rng       rng;
    int32_t              off[2] = {0, 13};
    const int32_t        Hq = 2, Hkv = 1, D = 8;
    size_t               nq = 13 * Hq * D, nk = 13 * Hkv * D;
    double *q = dalloc(nq), *k = dalloc(nk), *v = dalloc(nk), *o = dalloc(nq), *o2 = dalloc(nq);
    double *lse = dalloc(13 * Hq), e = 0.0, el = 0.0;

    memset(&s, 0, sizeof(s));
    s.N = 1, s.offsets = off, s.Hq = Hq, s.Hkv = Hkv, s.D = D, s.W = 1, s.scale = 0.3;
    gdn_rng_seed(&rng, 99);
    gdn_rng_fill_normal(&rng, q, nq, 1.0);
    gdn_rng_fill_normal(&rng, k, nk, 1.0);
    gdn_rng_fill_normal(&rng, v, nk, 1.0);
    swa_ref_forward(&s, q, k, v, o, lse);
    for (int t = 0; t < 13; t++)
        for (int h = 0; h < Hq; h++) {
            double d = 0.0;
            for (int c = 0; c < D; c++) {
                e = fmax(e, fabs(o[((size_t)t * Hq + h) * D + c] - v[(size_t)t * D + c]));
                d += q[((size_t)t * Hq + h) * D + c] * k[(size_t)t * D + c];
            }
            el = fmax(el, fabs(lse[t * Hq + h] - 0.3 * d));
        }
    report(e < 1e-14, "W = 1: o = v", e);
    report(el < 1e-12, "W = 1: lse = scale q.k", el);
    s.W = 13;
    swa_ref_forward(&s, q, k, v, o, NULL);
    s.W = 1000000;
    swa_ref_forward(&s, q, k, v, o2, NULL);
    e = 0.0;
    for (size_t i = 0; i < nq; i++)
        e = fmax(e, fabs(o[i] - o2[i]));
    report(e == 0.0, "W >= T equals W = T", e);
    free(q), free(k), free(v), free(o), free(o2), free(lse);
}

int main(void)
{
    for (size_t i = 0; i < sizeof(fd_cases) / sizeof(fd_cases[0]); i++)
        run_fd(&fd_cases[i]);
    check_rope();
    check_windows();
    printf("%d passed, %d failed\n", g_passed, g_failed);
    return g_failed ? 1 : 0;
}
