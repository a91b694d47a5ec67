/*
 * mamba2_ref.c - float64 reference of the Mamba2 SSD core: sequential scan
 * and its exact backward (see mamba2_ref.h).
 */
#include "mamba2_ref.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void m2_ref_dt(double raw, double bias, double dt_min, double dt_max, double *dt, double *ddt)
{
    const double v  = raw + bias;
    const double sp = v > 20.0 ? v : log1p(exp(v));
    const double sg = v > 20.0 ? 1.0 : 1.0 / (1.0 + exp(-v));
    double       d  = sp;
    if (d < dt_min)
        d = dt_min;
    if (d > dt_max)
        d = dt_max;
    *dt = d;
    if (ddt)
        *ddt = (sp > dt_min && sp < dt_max) ? sg : 0.0;
}

static double *m2_alloc(size_t n)
{
    double *p = calloc(n ? n : 1, sizeof(double));
    if (!p)
        abort(); /* test code: out of memory is fatal */
    return p;
}

void m2_ref_forward(const struct m2_ref_shape *s, const double *x, const double *dt_raw,
                    const double *A_log, const double *dt_bias, const double *B, const double *C,
                    const double *D, const double *h0, double *y, double *ht)
{
    const int    H = s->H, G = s->G, P = s->P, DS = s->DS, hpg = H / G;
    const size_t SZ = (size_t)P * DS;
    double      *S  = m2_alloc(SZ);

    for (int n = 0; n < s->nseq; n++)
        for (int h = 0; h < H; h++) {
            const int    g = h / hpg;
            const double A = -exp(A_log[h]);
            if (h0)
                memcpy(S, h0 + ((size_t)n * H + h) * SZ, SZ * sizeof(double));
            else
                memset(S, 0, SZ * sizeof(double));
            for (int t = s->offsets[n]; t < s->offsets[n + 1]; t++) {
                const double *xt = x + ((size_t)t * H + h) * P;
                const double *Bt = B + ((size_t)t * G + g) * DS;
                const double *Ct = C + ((size_t)t * G + g) * DS;
                double        dt, a;
                m2_ref_dt(dt_raw[(size_t)t * H + h], dt_bias ? dt_bias[h] : 0.0, s->dt_min,
                          s->dt_max, &dt, NULL);
                a = exp(dt * A);
                for (int p = 0; p < P; p++) {
                    double acc = 0.0;
                    for (int j = 0; j < DS; j++) {
                        double *e = S + (size_t)p * DS + j;
                        *e        = a * *e + dt * xt[p] * Bt[j];
                        acc += *e * Ct[j];
                    }
                    y[((size_t)t * H + h) * P + p] = acc + (D ? D[h] * xt[p] : 0.0);
                }
            }
            if (ht)
                memcpy(ht + ((size_t)n * H + h) * SZ, S, SZ * sizeof(double));
        }
    free(S);
}

void m2_ref_backward(const struct m2_ref_shape *s, const double *x, const double *dt_raw,
                     const double *A_log, const double *dt_bias, const double *B, const double *C,
                     const double *D, const double *h0, const double *dy, const double *dht,
                     double *dx, double *ddt_raw, double *dA_log, double *ddt_bias, double *dB,
                     double *dC, double *dD, double *dh0)
{
    const int    H = s->H, G = s->G, P = s->P, DS = s->DS, hpg = H / G;
    const size_t SZ = (size_t)P * DS;
    const int    T  = s->offsets[s->nseq];
    int          maxlen = 0;
    double      *Sall, *dS;

    for (int n = 0; n < s->nseq; n++)
        if (s->offsets[n + 1] - s->offsets[n] > maxlen)
            maxlen = s->offsets[n + 1] - s->offsets[n];
    Sall = m2_alloc(SZ * ((size_t)maxlen + 1)); /* Sall[0] = entering state */
    dS   = m2_alloc(SZ);
    if (dx)
        memset(dx, 0, (size_t)T * H * P * sizeof(double));
    if (ddt_raw)
        memset(ddt_raw, 0, (size_t)T * H * sizeof(double));
    if (dB)
        memset(dB, 0, (size_t)T * G * DS * sizeof(double));
    if (dC)
        memset(dC, 0, (size_t)T * G * DS * sizeof(double));
    if (dA_log)
        memset(dA_log, 0, (size_t)H * sizeof(double));
    if (ddt_bias)
        memset(ddt_bias, 0, (size_t)H * sizeof(double));
    if (dD)
        memset(dD, 0, (size_t)H * sizeof(double));

    for (int n = 0; n < s->nseq; n++)
        for (int h = 0; h < H; h++) {
            const int    g = h / hpg, bos = s->offsets[n], len = s->offsets[n + 1] - bos;
            const double A = -exp(A_log[h]);
            double       dAc = 0.0;
            /* forward, keeping every state */
            if (h0)
                memcpy(Sall, h0 + ((size_t)n * H + h) * SZ, SZ * sizeof(double));
            else
                memset(Sall, 0, SZ * sizeof(double));
            for (int l = 0; l < len; l++) {
                const int     t  = bos + l;
                const double *xt = x + ((size_t)t * H + h) * P;
                const double *Bt = B + ((size_t)t * G + g) * DS;
                double        dt, a;
                m2_ref_dt(dt_raw[(size_t)t * H + h], dt_bias ? dt_bias[h] : 0.0, s->dt_min,
                          s->dt_max, &dt, NULL);
                a = exp(dt * A);
                for (size_t e = 0; e < SZ; e++)
                    Sall[(l + 1) * SZ + e] =
                        a * Sall[l * SZ + e] + dt * xt[e / DS] * Bt[e % DS];
            }
            /* reverse */
            if (dht)
                memcpy(dS, dht + ((size_t)n * H + h) * SZ, SZ * sizeof(double));
            else
                memset(dS, 0, SZ * sizeof(double));
            for (int l = len - 1; l >= 0; l--) {
                const int     t   = bos + l;
                const double *xt  = x + ((size_t)t * H + h) * P;
                const double *Bt  = B + ((size_t)t * G + g) * DS;
                const double *Ct  = C + ((size_t)t * G + g) * DS;
                const double *dyt = dy + ((size_t)t * H + h) * P;
                const double *St  = Sall + (size_t)(l + 1) * SZ;
                const double *Sp  = Sall + (size_t)l * SZ;
                double        dt, dfac, a, ddt = 0.0, da = 0.0;
                m2_ref_dt(dt_raw[(size_t)t * H + h], dt_bias ? dt_bias[h] : 0.0, s->dt_min,
                          s->dt_max, &dt, &dfac);
                a = exp(dt * A);
                /* y_t = S_t C_t + D x_t */
                for (int p = 0; p < P; p++)
                    for (int j = 0; j < DS; j++)
                        dS[(size_t)p * DS + j] += dyt[p] * Ct[j];
                if (dC)
                    for (int j = 0; j < DS; j++) {
                        double acc = 0.0;
                        for (int p = 0; p < P; p++)
                            acc += St[(size_t)p * DS + j] * dyt[p];
                        dC[((size_t)t * G + g) * DS + j] += acc;
                    }
                if (dD)
                    for (int p = 0; p < P; p++)
                        dD[h] += dyt[p] * xt[p];
                /* S_t = a S_{t-1} + dt x_t B_t^T */
                for (int p = 0; p < P; p++) {
                    double acc = 0.0;
                    for (int j = 0; j < DS; j++) {
                        acc += dS[(size_t)p * DS + j] * Bt[j];
                        da += dS[(size_t)p * DS + j] * Sp[(size_t)p * DS + j];
                    }
                    ddt += acc * xt[p];
                    if (dx)
                        dx[((size_t)t * H + h) * P + p] = dt * acc + (D ? D[h] * dyt[p] : 0.0);
                }
                if (dB)
                    for (int j = 0; j < DS; j++) {
                        double acc = 0.0;
                        for (int p = 0; p < P; p++)
                            acc += dS[(size_t)p * DS + j] * xt[p];
                        dB[((size_t)t * G + g) * DS + j] += dt * acc;
                    }
                ddt += da * a * A;
                dAc += da * a * dt;
                for (size_t e = 0; e < SZ; e++)
                    dS[e] *= a;
                if (ddt_raw)
                    ddt_raw[(size_t)t * H + h] = ddt * dfac;
                if (ddt_bias)
                    ddt_bias[h] += ddt * dfac;
            }
            if (dh0)
                memcpy(dh0 + ((size_t)n * H + h) * SZ, dS, SZ * sizeof(double));
            if (dA_log)
                dA_log[h] += dAc * A;
        }
    free(Sall);
    free(dS);
}
