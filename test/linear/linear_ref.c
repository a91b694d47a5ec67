/*
 * linear_ref.c - float64 references of the dense layer ops; see
 * linear_ref.h. Straightforward loops, written for clarity, not speed.
 */
#include "linear_ref.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void ref_linear_fwd(size_t M, size_t G, size_t in, size_t out, const double *x, const double *w,
                    const double *b, double *y, int acc)
{
    for (size_t i = 0; i < M; i++)
        for (size_t g = 0; g < G; g++)
            for (size_t o = 0; o < out; o++) {
                const double *xr = x + (i * G + g) * in;
                const double *wr = w + (g * out + o) * in;
                double        s  = b ? b[g * out + o] : 0.0;
                for (size_t k = 0; k < in; k++)
                    s += xr[k] * wr[k];
                double *yo = &y[(i * G + g) * out + o];
                *yo        = acc ? *yo + s : s;
            }
}

void ref_linear_bwd(size_t M, size_t G, size_t in, size_t out, const double *x, const double *w,
                    const double *dy, double *dx, int acc_dx, double *dw, double *db, int acc_dw)
{
    if (dx)
        for (size_t i = 0; i < M; i++)
            for (size_t g = 0; g < G; g++)
                for (size_t k = 0; k < in; k++) {
                    double s = 0.0;
                    for (size_t o = 0; o < out; o++)
                        s += dy[(i * G + g) * out + o] * w[(g * out + o) * in + k];
                    double *d = &dx[(i * G + g) * in + k];
                    *d        = acc_dx ? *d + s : s;
                }
    if (dw)
        for (size_t g = 0; g < G; g++)
            for (size_t o = 0; o < out; o++)
                for (size_t k = 0; k < in; k++) {
                    double s = 0.0;
                    for (size_t i = 0; i < M; i++)
                        s += dy[(i * G + g) * out + o] * x[(i * G + g) * in + k];
                    double *d = &dw[(g * out + o) * in + k];
                    *d        = acc_dw ? *d + s : s;
                }
    if (db)
        for (size_t j = 0; j < G * out; j++) {
            double s = 0.0;
            for (size_t i = 0; i < M; i++)
                s += dy[i * G * out + j];
            db[j] = acc_dw ? db[j] + s : s;
        }
}

static double sigmoid(double a)
{
    return 1.0 / (1.0 + exp(-a));
}

/* a = x wg^T, b = x wu^T  ([M, F] each, heap). */
static void swiglu_pre(size_t M, size_t D, size_t F, const double *x, const double *wg,
                       const double *wu, double **a, double **b)
{
    *a = calloc(M * F + 1, sizeof(double));
    *b = calloc(M * F + 1, sizeof(double));
    ref_linear_fwd(M, 1, D, F, x, wg, NULL, *a, 0);
    ref_linear_fwd(M, 1, D, F, x, wu, NULL, *b, 0);
}

void ref_swiglu_fwd(size_t M, size_t D, size_t F, size_t Dout, const double *x, const double *wg,
                    const double *wu, const double *wd, double *y, int acc)
{
    double *a, *b;
    swiglu_pre(M, D, F, x, wg, wu, &a, &b);
    for (size_t i = 0; i < M * F; i++)
        a[i] = a[i] * sigmoid(a[i]) * b[i];
    ref_linear_fwd(M, 1, F, Dout, a, wd, NULL, y, acc);
    free(a);
    free(b);
}

void ref_swiglu_bwd(size_t M, size_t D, size_t F, size_t Dout, const double *x, const double *wg,
                    const double *wu, const double *wd, const double *dy, double *dx, int acc_dx,
                    double *dwg, double *dwu, double *dwd, int acc_dw)
{
    double *a, *b, *h = calloc(M * F + 1, sizeof(double)), *dh = calloc(M * F + 1, sizeof(double));
    double *da = calloc(M * F + 1, sizeof(double)), *dbb = calloc(M * F + 1, sizeof(double));
    swiglu_pre(M, D, F, x, wg, wu, &a, &b);
    for (size_t i = 0; i < M * F; i++)
        h[i] = a[i] * sigmoid(a[i]) * b[i];
    ref_linear_bwd(M, 1, F, Dout, h, wd, dy, dh, 0, dwd, NULL, acc_dw);
    for (size_t i = 0; i < M * F; i++) {
        const double s = sigmoid(a[i]);
        dbb[i]         = dh[i] * a[i] * s;
        da[i]          = dh[i] * b[i] * s * (1.0 + a[i] * (1.0 - s));
    }
    if (dx) {
        double *t = calloc(M * D + 1, sizeof(double));
        ref_linear_bwd(M, 1, D, F, x, wg, da, t, 0, NULL, NULL, 0);
        ref_linear_bwd(M, 1, D, F, x, wu, dbb, t, 1, NULL, NULL, 0);
        for (size_t i = 0; i < M * D; i++)
            dx[i] = acc_dx ? dx[i] + t[i] : t[i];
        free(t);
    }
    if (dwg)
        ref_linear_bwd(M, 1, D, F, x, wg, da, NULL, 0, dwg, NULL, acc_dw);
    if (dwu)
        ref_linear_bwd(M, 1, D, F, x, wu, dbb, NULL, 0, dwu, NULL, acc_dw);
    free(a);
    free(b);
    free(h);
    free(dh);
    free(da);
    free(dbb);
}

void ref_embedding_fwd(size_t T, size_t V, size_t D, const double *table, const int32_t *ids,
                       double *y, int acc)
{
    for (size_t t = 0; t < T; t++) {
        const int32_t id = ids[t];
        for (size_t d = 0; d < D; d++) {
            const double v = (id >= 0 && (size_t)id < V) ? table[(size_t)id * D + d] : NAN;
            y[t * D + d]   = acc ? y[t * D + d] + v : v;
        }
    }
}

void ref_embedding_bwd(size_t T, size_t V, size_t D, const int32_t *ids, const double *dy,
                       double *dtable, int acc)
{
    if (!acc)
        memset(dtable, 0, V * D * sizeof(double));
    for (size_t t = 0; t < T; t++) {
        const int32_t id = ids[t];
        if (id < 0 || (size_t)id >= V)
            continue;
        for (size_t d = 0; d < D; d++)
            dtable[(size_t)id * D + d] += dy[t * D + d];
    }
}

/* log-sum-exp of a row, max-subtracted. */
static double row_lse(const double *x, size_t V)
{
    double m = -INFINITY, s = 0.0;
    for (size_t j = 0; j < V; j++)
        if (x[j] > m)
            m = x[j];
    for (size_t j = 0; j < V; j++)
        s += exp(x[j] - m);
    return m + log(s);
}

void ref_cross_entropy_fwd(size_t M, size_t V, const double *logits, const int32_t *targets,
                           int32_t ignore_index, int sum_mode, double *lse, double *row_loss,
                           double *loss, int32_t *count)
{
    double  total = 0.0;
    int32_t n     = 0;
    for (size_t r = 0; r < M; r++) {
        const double *x = logits + r * V;
        const double  L = row_lse(x, V);
        const int32_t t = targets[r];
        double        l;
        if (t == ignore_index)
            l = 0.0;
        else if (t < 0 || (size_t)t >= V)
            l = NAN;
        else
            l = L - x[t];
        if (t != ignore_index)
            n++;
        total += l;
        if (lse)
            lse[r] = L;
        if (row_loss)
            row_loss[r] = l;
    }
    if (loss)
        *loss = sum_mode ? total : (n > 0 ? total / n : 0.0);
    if (count)
        *count = n;
}

void ref_cross_entropy_bwd(size_t M, size_t V, const double *logits, const int32_t *targets,
                           int32_t ignore_index, int sum_mode, double dloss, double *dlogits)
{
    int32_t n = 0;
    for (size_t r = 0; r < M; r++)
        n += targets[r] != ignore_index;
    const double scale = sum_mode ? dloss : (n > 0 ? dloss / n : 0.0);
    for (size_t r = 0; r < M; r++) {
        const double *x = logits + r * V;
        const int32_t t = targets[r];
        double       *g = dlogits + r * V;
        if (t == ignore_index) {
            for (size_t j = 0; j < V; j++)
                g[j] = 0.0;
            continue;
        }
        const double L = row_lse(x, V);
        for (size_t j = 0; j < V; j++)
            g[j] = (t < 0 || (size_t)t >= V)
                       ? NAN
                       : (exp(x[j] - L) - ((size_t)t == j ? 1.0 : 0.0)) * scale;
    }
}
