/*
 * norm_ref.c - float64 references of the norm and element-wise layer ops;
 * see norm_ref.h. The backward is written out from the chain rule term by
 * term (not in the fused form the kernels use), and is itself checked
 * against central finite differences by test_norm_ref.c.
 */
#include "norm_ref.h"

#include <math.h>
#include <stdlib.h>

static double sigm(double x)
{
    return 1.0 / (1.0 + exp(-x));
}

static double silu(double x)
{
    return x * sigm(x);
}

static double silu_grad(double x)
{
    double s = sigm(x);
    return s + x * s * (1.0 - s);
}

double act_ref(int act, double x)
{
    switch (act) {
    case 0:
        return silu(x);
    case 1:
        return sigm(x);
    default:
        return x > 20.0 ? x : log1p(exp(x));
    }
}

double act_ref_grad(int act, double x)
{
    switch (act) {
    case 0:
        return silu_grad(x);
    case 1:
        return sigm(x) * (1.0 - sigm(x));
    default:
        return x > 20.0 ? 1.0 : sigm(x);
    }
}

void norm_ref_forward(int type, double eps, int64_t rows, int64_t G, int64_t gpd, const double *x,
                      const double *w, const double *g, double *y)
{
    for (int64_t r = 0; r < rows; r++) {
        const double *xr = x + r * G;
        const double *gr = g ? g + r * G : NULL;
        const double *wr = w ? w + (r % gpd) * G : NULL;
        double       *yr = y + r * G;
        double        ss = 0.0, rstd;
        for (int64_t j = 0; j < G; j++) {
            double a = type == 3 ? xr[j] * silu(gr[j]) : xr[j];
            ss += a * a;
        }
        rstd = type == 0 ? 1.0 / sqrt(ss + eps) : 1.0 / sqrt(ss / (double)G + eps);
        for (int64_t j = 0; j < G; j++) {
            double a = type == 3 ? xr[j] * silu(gr[j]) : xr[j];
            double v = a * rstd;
            if (type != 0 && wr)
                v *= wr[j];
            if (type == 2)
                v *= silu(gr[j]);
            yr[j] = v;
        }
    }
}

/*
 * Per row, with a the normalised vector (x, or x * silu(g) for type 3),
 * S = sum a^2, m = S / n (n = 1 for L2, G otherwise), r = (m + eps)^-1/2,
 * y_j = a_j r c_j with c_j = w_j (times silu(g_j) for type 2):
 *   dL/da_j = dy_j c_j r + sum_k dy_k c_k a_k * dr/da_j,
 *   dr/da_j = -1/2 (m + eps)^-3/2 * 2 a_j / n = -r^3 a_j / n.
 */
void norm_ref_backward(int type, double eps, int64_t rows, int64_t G, int64_t gpd,
                       const double *x, const double *w, const double *g, const double *dy,
                       double *dx, double *dw, double *dg)
{
    const double n  = type == 0 ? 1.0 : (double)G;
    double      *a  = malloc((size_t)(G > 0 ? G : 1) * sizeof(double));
    double      *cw = malloc((size_t)(G > 0 ? G : 1) * sizeof(double));

    if (dw)
        for (int64_t j = 0; j < G * gpd; j++)
            dw[j] = 0.0;
    for (int64_t r = 0; r < rows; r++) {
        const double *xr  = x + r * G;
        const double *gr  = g ? g + r * G : NULL;
        const double *wr  = (w && type != 0) ? w + (r % gpd) * G : NULL;
        const double *dyr = dy + r * G;
        double        S = 0.0, rstd, r3, dot = 0.0;
        for (int64_t j = 0; j < G; j++) {
            a[j] = type == 3 ? xr[j] * silu(gr[j]) : xr[j];
            S += a[j] * a[j];
            cw[j] = (wr ? wr[j] : 1.0) * (type == 2 ? silu(gr[j]) : 1.0);
            dot += dyr[j] * cw[j] * a[j];
        }
        rstd = 1.0 / sqrt(S / n + eps);
        r3   = rstd * rstd * rstd;
        for (int64_t j = 0; j < G; j++) {
            double da = dyr[j] * cw[j] * rstd - dot * r3 * a[j] / n;
            if (dx)
                dx[r * G + j] = type == 3 ? da * silu(gr[j]) : da;
            if (dg) {
                if (type == 3)
                    dg[r * G + j] = da * xr[j] * silu_grad(gr[j]);
                else if (type == 2)
                    dg[r * G + j] = dyr[j] * a[j] * rstd * (wr ? wr[j] : 1.0) * silu_grad(gr[j]);
                else
                    dg[r * G + j] = 0.0;
            }
            if (dw && wr)
                dw[(r % gpd) * G + j] +=
                    dyr[j] * a[j] * rstd * (type == 2 ? silu(gr[j]) : 1.0);
        }
    }
    free(a);
    free(cw);
}
