/*
 * conv_ref.c - float64 reference of the causal depthwise short convolution;
 * see conv_ref.h. Each sequence and channel is handled through its combined
 * input comb = [initial state (W-1 entries, zeros without one), x (L)], so
 * y_i = act(sum_w weight[w] comb[i + w] + bias) and final = comb[L ..]. The
 * backward pushes gradients into comb (exact chain rule) and splits them
 * into dx and dinit.
 */
#include "conv_ref.h"

#include <math.h>
#include <stdlib.h>

static double sigm(double x)
{
    return 1.0 / (1.0 + exp(-x));
}

static double *comb_of(int64_t C, int64_t W, int64_t n, int64_t c, int64_t bos, int64_t L,
                       const double *x, const double *init)
{
    double *comb = malloc((size_t)(L + W - 1) * sizeof(double));
    if (!comb)
        abort(); /* test code: out of memory is fatal */
    for (int64_t k = 0; k < W - 1; k++)
        comb[k] = init ? init[(n * C + c) * (W - 1) + k] : 0.0;
    for (int64_t i = 0; i < L; i++)
        comb[W - 1 + i] = x[(bos + i) * C + c];
    return comb;
}

void conv_ref_forward(int64_t C, int64_t W, int64_t N, const int32_t *offsets, const double *x,
                      const double *weight, const double *bias, const double *init, int silu,
                      double *y, double *final_state)
{
    for (int64_t n = 0; n < N; n++) {
        const int64_t bos = offsets[n], L = offsets[n + 1] - offsets[n];
        for (int64_t c = 0; c < C; c++) {
            double *comb = comb_of(C, W, n, c, bos, L, x, init);
            for (int64_t i = 0; i < L; i++) {
                double pre = bias ? bias[c] : 0.0;
                for (int64_t w = 0; w < W; w++)
                    pre += weight[c * W + w] * comb[i + w];
                y[(bos + i) * C + c] = silu ? pre * sigm(pre) : pre;
            }
            if (final_state)
                for (int64_t k = 0; k < W - 1; k++)
                    final_state[(n * C + c) * (W - 1) + k] = comb[L + k];
            free(comb);
        }
    }
}

void conv_ref_backward(int64_t C, int64_t W, int64_t N, const int32_t *offsets, const double *x,
                       const double *weight, const double *bias, const double *init, int silu,
                       const double *dy, const double *dfinal, double *dx, double *dweight,
                       double *dbias, double *dinit)
{
    if (dweight)
        for (int64_t i = 0; i < C * W; i++)
            dweight[i] = 0.0;
    if (dbias)
        for (int64_t c = 0; c < C; c++)
            dbias[c] = 0.0;
    for (int64_t n = 0; n < N; n++) {
        const int64_t bos = offsets[n], L = offsets[n + 1] - offsets[n];
        for (int64_t c = 0; c < C; c++) {
            double *comb  = comb_of(C, W, n, c, bos, L, x, init);
            double *dcomb = calloc((size_t)(L + W - 1), sizeof(double));
            if (!dcomb)
                abort();
            for (int64_t k = 0; k < W - 1; k++)
                dcomb[L + k] += dfinal ? dfinal[(n * C + c) * (W - 1) + k] : 0.0;
            for (int64_t i = 0; i < L; i++) {
                double pre = bias ? bias[c] : 0.0, dp;
                for (int64_t w = 0; w < W; w++)
                    pre += weight[c * W + w] * comb[i + w];
                dp = dy[(bos + i) * C + c];
                if (silu) {
                    double s = sigm(pre);
                    dp *= s + pre * s * (1.0 - s);
                }
                for (int64_t w = 0; w < W; w++) {
                    if (dweight)
                        dweight[c * W + w] += dp * comb[i + w];
                    dcomb[i + w] += weight[c * W + w] * dp;
                }
                if (dbias)
                    dbias[c] += dp;
            }
            for (int64_t i = 0; i < L; i++)
                if (dx)
                    dx[(bos + i) * C + c] = dcomb[W - 1 + i];
            for (int64_t k = 0; k < W - 1; k++)
                if (dinit)
                    dinit[(n * C + c) * (W - 1) + k] = dcomb[k];
            free(comb);
            free(dcomb);
        }
    }
}

void conv_ref_step(int64_t N, int64_t C, int64_t W, const double *x, const double *weight,
                   const double *bias, int silu, double *state, double *y)
{
    for (int64_t n = 0; n < N; n++)
        for (int64_t c = 0; c < C; c++) {
            double *st  = state + (n * C + c) * (W - 1);
            double  pre = bias ? bias[c] : 0.0;
            for (int64_t w = 0; w < W - 1; w++)
                pre += weight[c * W + w] * st[w];
            pre += weight[c * W + W - 1] * x[n * C + c];
            y[n * C + c] = silu ? pre * sigm(pre) : pre;
            for (int64_t w = 0; w + 1 < W - 1; w++)
                st[w] = st[w + 1];
            st[W - 2] = x[n * C + c];
        }
}
