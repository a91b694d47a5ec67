/*
 * test_conv_ref.c - host check (no device) of the float64 short-conv
 * reference in conv_ref.c: the exact backward against central finite
 * differences of the reference forward (w.r.t. x, weight, bias and the
 * initial state, with L = sum(y * cy) + sum(final * cf)), for W = 2, 4, 8,
 * with and without SiLU, varlen batches with empty sequences and sequences
 * shorter than W-1; and prefill + decode steps against one long forward.
 * Plain stdio; exit status 1 on any failure.
 */
#include "conv_ref.h"
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

struct prob {
    int64_t        C, W, N, T;
    const int32_t *off;
    int            silu;
    double        *x, *w, *b, *init, *cy, *cf, *y, *fin;
};

static double loss(const struct prob *p)
{
    double s = 0.0;
    conv_ref_forward(p->C, p->W, p->N, p->off, p->x, p->w, p->b, p->init, p->silu, p->y, p->fin);
    for (int64_t i = 0; i < p->T * p->C; i++)
        s += p->y[i] * p->cy[i];
    for (int64_t i = 0; i < p->N * p->C * (p->W - 1); i++)
        s += p->fin[i] * p->cf[i];
    return s;
}

static double fd_err(const struct prob *p, double *v, size_t n, const double *ana)
{
    const double h = 1e-6;
    double       emax = 0.0, amax = 0.0;
    for (size_t i = 0; i < n; i++) {
        double keep = v[i], lp, lm, num;
        v[i]        = keep + h;
        lp          = loss(p);
        v[i]        = keep - h;
        lm          = loss(p);
        v[i]        = keep;
        num         = (lp - lm) / (2.0 * h);
        if (fabs(num - ana[i]) > emax)
            emax = fabs(num - ana[i]);
        if (fabs(ana[i]) > amax)
            amax = fabs(ana[i]);
    }
    return emax / (amax > 1e-12 ? amax : 1e-12);
}

static void check(int64_t C, int64_t W, int64_t N, const int32_t *off, int silu)
{
    struct prob    p;
    struct gdn_rng rng;
    const int64_t  T = off[N], ns = N * C * (W - 1);
    double        *dx = dalloc((size_t)(T * C)), *dw = dalloc((size_t)(C * W));
    double        *db = dalloc((size_t)C), *di = dalloc((size_t)ns);
    double         ex, ew, eb, ei;
    int            ok;

    memset(&p, 0, sizeof(p));
    p.C = C, p.W = W, p.N = N, p.T = T, p.off = off, p.silu = silu;
    p.x = dalloc((size_t)(T * C)), p.w = dalloc((size_t)(C * W)), p.b = dalloc((size_t)C);
    p.init = dalloc((size_t)ns), p.cy = dalloc((size_t)(T * C)), p.cf = dalloc((size_t)ns);
    p.y = dalloc((size_t)(T * C)), p.fin = dalloc((size_t)ns);
    gdn_rng_seed(&rng, (uint64_t)(W * 100 + C + silu));
    gdn_rng_fill_normal(&rng, p.x, (size_t)(T * C), 1.0);
    gdn_rng_fill_normal(&rng, p.w, (size_t)(C * W), 0.5);
    gdn_rng_fill_normal(&rng, p.b, (size_t)C, 0.2);
    gdn_rng_fill_normal(&rng, p.init, (size_t)ns, 1.0);
    gdn_rng_fill_normal(&rng, p.cy, (size_t)(T * C), 1.0);
    gdn_rng_fill_normal(&rng, p.cf, (size_t)ns, 1.0);
    conv_ref_backward(C, W, N, off, p.x, p.w, p.b, p.init, silu, p.cy, p.cf, dx, dw, db, di);
    ex = fd_err(&p, p.x, (size_t)(T * C), dx);
    ew = fd_err(&p, p.w, (size_t)(C * W), dw);
    eb = fd_err(&p, p.b, (size_t)C, db);
    ei = fd_err(&p, p.init, (size_t)ns, di);
    ok = ex < 1e-6 && ew < 1e-6 && eb < 1e-6 && ei < 1e-6;
    printf("%s  conv W %lld C %lld N %lld T %lld silu %d: dx %.2e dw %.2e db %.2e dinit %.2e\n",
           ok ? "PASS" : "FAIL", (long long)W, (long long)C, (long long)N, (long long)T, silu, ex,
           ew, eb, ei);
    failures += !ok;

    /* prefill (all but the last 3 tokens of each sequence of length >= 3)
     * then 3 decode steps == the full forward's rows */
    {
        int32_t *off2 = malloc((size_t)(N + 1) * sizeof(int32_t));
        double  *xs = dalloc((size_t)(T * C)), *y2 = dalloc((size_t)(T * C));
        double  *st = dalloc((size_t)ns), *xt = dalloc((size_t)(N * C)), *yt = dalloc((size_t)(N * C));
        double   emax = 0.0;
        int64_t  k = 0;
        if (!off2)
            exit(2);
        /* prefill lengths L - 3; sequences shorter than 3 are prefilled
         * whole and left out of the comparison */
        off2[0] = 0;
        for (int64_t n = 0; n < N; n++) {
            int64_t L = off[n + 1] - off[n], Lp = L >= 3 ? L - 3 : L;
            for (int64_t i = 0; i < Lp; i++)
                for (int64_t c = 0; c < C; c++)
                    xs[(k + i) * C + c] = p.x[(off[n] + i) * C + c];
            k += Lp;
            off2[n + 1] = (int32_t)k;
        }
        conv_ref_forward(C, W, N, off2, xs, p.w, p.b, p.init, silu, y2, st);
        conv_ref_forward(C, W, N, off, p.x, p.w, p.b, p.init, silu, p.y, p.fin);
        for (int j = 0; j < 3; j++) {
            for (int64_t n = 0; n < N; n++) {
                int64_t L = off[n + 1] - off[n];
                for (int64_t c = 0; c < C; c++)
                    xt[n * C + c] = L >= 3 ? p.x[(off[n] + L - 3 + j) * C + c] : 0.0;
            }
            conv_ref_step(N, C, W, xt, p.w, p.b, silu, st, yt);
            for (int64_t n = 0; n < N; n++) {
                int64_t L = off[n + 1] - off[n];
                if (L < 3)
                    continue;
                for (int64_t c = 0; c < C; c++) {
                    double d = fabs(yt[n * C + c] - p.y[(off[n] + L - 3 + j) * C + c]);
                    if (d > emax)
                        emax = d;
                }
            }
        }
        for (int64_t n = 0; n < N; n++) {
            if (off[n + 1] - off[n] < 3)
                continue;
            for (int64_t i = 0; i < C * (W - 1); i++) {
                double d = fabs(st[n * C * (W - 1) + i] - p.fin[n * C * (W - 1) + i]);
                if (d > emax)
                    emax = d;
            }
        }
        ok = emax < 1e-12;
        printf("%s  conv W %lld prefill + 3 steps == forward: max diff %.2e\n", ok ? "PASS" : "FAIL",
               (long long)W, emax);
        failures += !ok;
        free(off2), free(xs), free(y2), free(st), free(xt), free(yt);
    }
    free(p.x), free(p.w), free(p.b), free(p.init), free(p.cy), free(p.cf), free(p.y), free(p.fin);
    free(dx), free(dw), free(db), free(di);
}

int main(void)
{
    static const int32_t off_a[] = {0, 2, 2, 9, 10};
    static const int32_t off_b[] = {0, 5};
    static const int32_t off_c[] = {0, 3, 13, 13};
    check(3, 4, 4, off_a, 1);
    check(3, 4, 4, off_a, 0);
    check(2, 2, 1, off_b, 1);
    check(2, 8, 3, off_c, 1);
    check(2, 3, 3, off_c, 0);
    printf("%s\n", failures ? "FAILED" : "all passed");
    return failures ? 1 : 0;
}
