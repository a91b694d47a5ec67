/*
 * swa_ref.c - float64 reference of sliding-window attention (see swa_ref.h).
 * Straightforward loops: per sequence, query head and query token, the
 * masked scores over the window, a max-subtracted softmax, and the exact
 * gradients (dp = dO . v, ds = p (dp - sum_j p dp), dq = scale ds k,
 * dk = scale ds q, dv = p dO).
 */
#include "swa_ref.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define AT(x, t, H, h, D) ((x) + ((size_t)(t) * (size_t)(H) + (size_t)(h)) * (size_t)(D))

static int64_t total_tokens(const struct swa_ref_shape *s)
{
    return s->offsets[s->N];
}

void swa_ref_positions(const struct swa_ref_shape *s, int32_t *pos)
{
    for (int32_t n = 0; n < s->N; n++)
        for (int32_t t = s->offsets[n]; t < s->offsets[n + 1]; t++)
            pos[t] = (s->pos_off ? s->pos_off[n] : 0) + (t - s->offsets[n]);
}

void swa_ref_rope(const double *x, double *y, int64_t T, int32_t H, int32_t D,
                  const int32_t *pos, double base, int inverse)
{
    int32_t half = D / 2;
    for (int64_t t = 0; t < T; t++)
        for (int32_t i = 0; i < half; i++) {
            double ang = (double)pos[t] * pow(base, -2.0 * i / D);
            double c = cos(ang), sn = inverse ? -sin(ang) : sin(ang);
            for (int32_t h = 0; h < H; h++) {
                const double *xr = AT(x, t, H, h, D);
                double       *yr = AT(y, t, H, h, D);
                double        a = xr[i], b = xr[i + half];
                yr[i]           = a * c - b * sn;
                yr[i + half]    = b * c + a * sn;
            }
        }
}

/* Scores of query row i (sequence token index) against its window; fills
 * p[j - j0] with softmax weights for j in [j0, i]; returns j0 and lse. */
static int64_t row_softmax(const struct swa_ref_shape *s, const double *q, const double *k,
                           int64_t bos, int64_t i, int32_t hq, double *p, double *lse)
{
    int32_t G  = s->Hq / s->Hkv, hk = hq / G, D = s->D;
    int64_t j0 = i - s->W + 1 > 0 ? i - s->W + 1 : 0;
    double  m  = -INFINITY, l = 0.0;
    const double *qi = AT(q, bos + i, s->Hq, hq, D);
    for (int64_t j = j0; j <= i; j++) {
        const double *kj = AT(k, bos + j, s->Hkv, hk, D);
        double        d  = 0.0;
        for (int32_t c = 0; c < D; c++)
            d += qi[c] * kj[c];
        p[j - j0] = d * s->scale;
        if (p[j - j0] > m)
            m = p[j - j0];
    }
    for (int64_t j = j0; j <= i; j++) {
        p[j - j0] = exp(p[j - j0] - m);
        l += p[j - j0];
    }
    for (int64_t j = j0; j <= i; j++)
        p[j - j0] /= l;
    *lse = m + log(l);
    return j0;
}

void swa_ref_attn_fwd(const struct swa_ref_shape *s, const double *q, const double *k,
                      const double *v, double *o, double *lse)
{
    int32_t G = s->Hq / s->Hkv, D = s->D;
    int64_t maxlen = 1;
    for (int32_t n = 0; n < s->N; n++)
        if (s->offsets[n + 1] - s->offsets[n] > maxlen)
            maxlen = s->offsets[n + 1] - s->offsets[n];
    double *p = malloc((size_t)maxlen * sizeof(double));
    if (!p)
        abort();
    for (int32_t n = 0; n < s->N; n++) {
        int64_t bos = s->offsets[n], L = s->offsets[n + 1] - bos;
        for (int64_t i = 0; i < L; i++)
            for (int32_t hq = 0; hq < s->Hq; hq++) {
                double  l;
                int64_t j0 = row_softmax(s, q, k, bos, i, hq, p, &l);
                double *oi = AT(o, bos + i, s->Hq, hq, D);
                memset(oi, 0, (size_t)D * sizeof(double));
                for (int64_t j = j0; j <= i; j++) {
                    const double *vj = AT(v, bos + j, s->Hkv, hq / G, D);
                    for (int32_t c = 0; c < D; c++)
                        oi[c] += p[j - j0] * vj[c];
                }
                if (lse)
                    lse[(bos + i) * s->Hq + hq] = l;
            }
    }
    free(p);
}

void swa_ref_attn_bwd(const struct swa_ref_shape *s, const double *q, const double *k,
                      const double *v, const double *dout, double *dq, double *dk, double *dv)
{
    int32_t G = s->Hq / s->Hkv, D = s->D;
    int64_t T = total_tokens(s), maxlen = 1;
    for (int32_t n = 0; n < s->N; n++)
        if (s->offsets[n + 1] - s->offsets[n] > maxlen)
            maxlen = s->offsets[n + 1] - s->offsets[n];
    double *p  = malloc((size_t)maxlen * sizeof(double));
    double *dp = malloc((size_t)maxlen * sizeof(double));
    if (!p || !dp)
        abort();
    memset(dq, 0, (size_t)T * s->Hq * D * sizeof(double));
    memset(dk, 0, (size_t)T * s->Hkv * D * sizeof(double));
    memset(dv, 0, (size_t)T * s->Hkv * D * sizeof(double));
    for (int32_t n = 0; n < s->N; n++) {
        int64_t bos = s->offsets[n], L = s->offsets[n + 1] - bos;
        for (int64_t i = 0; i < L; i++)
            for (int32_t hq = 0; hq < s->Hq; hq++) {
                int32_t       hk = hq / G;
                double        l, sum = 0.0;
                int64_t       j0 = row_softmax(s, q, k, bos, i, hq, p, &l);
                const double *doi = AT(dout, bos + i, s->Hq, hq, D);
                const double *qi  = AT(q, bos + i, s->Hq, hq, D);
                double       *dqi = AT(dq, bos + i, s->Hq, hq, D);
                for (int64_t j = j0; j <= i; j++) {
                    const double *vj = AT(v, bos + j, s->Hkv, hk, D);
                    double       *dvj = AT(dv, bos + j, s->Hkv, hk, D);
                    double        d   = 0.0;
                    for (int32_t c = 0; c < D; c++) {
                        d += doi[c] * vj[c];
                        dvj[c] += p[j - j0] * doi[c];
                    }
                    dp[j - j0] = d;
                    sum += p[j - j0] * d;
                }
                for (int64_t j = j0; j <= i; j++) {
                    const double *kj  = AT(k, bos + j, s->Hkv, hk, D);
                    double       *dkj = AT(dk, bos + j, s->Hkv, hk, D);
                    double        ds  = p[j - j0] * (dp[j - j0] - sum) * s->scale;
                    for (int32_t c = 0; c < D; c++) {
                        dqi[c] += ds * kj[c];
                        dkj[c] += ds * qi[c];
                    }
                }
            }
    }
    free(p);
    free(dp);
}

/* Rotated copies of q and k (or NULL when rope is off). */
static void rotated(const struct swa_ref_shape *s, const double *q, const double *k, double **qr,
                    double **kr, int32_t **pos)
{
    int64_t T = total_tokens(s);
    *qr = malloc((size_t)(T ? T : 1) * s->Hq * s->D * sizeof(double));
    *kr = malloc((size_t)(T ? T : 1) * s->Hkv * s->D * sizeof(double));
    *pos = malloc((size_t)(T ? T : 1) * sizeof(int32_t));
    if (!*qr || !*kr || !*pos)
        abort();
    swa_ref_positions(s, *pos);
    swa_ref_rope(q, *qr, T, s->Hq, s->D, *pos, s->base, 0);
    swa_ref_rope(k, *kr, T, s->Hkv, s->D, *pos, s->base, 0);
}

void swa_ref_forward(const struct swa_ref_shape *s, const double *q, const double *k,
                     const double *v, double *o, double *lse)
{
    double  *qr, *kr;
    int32_t *pos;
    if (!s->rope) {
        swa_ref_attn_fwd(s, q, k, v, o, lse);
        return;
    }
    rotated(s, q, k, &qr, &kr, &pos);
    swa_ref_attn_fwd(s, qr, kr, v, o, lse);
    free(qr);
    free(kr);
    free(pos);
}

void swa_ref_backward(const struct swa_ref_shape *s, const double *q, const double *k,
                      const double *v, const double *dout, double *dq, double *dk, double *dv)
{
    double  *qr, *kr;
    int32_t *pos;
    int64_t  T = total_tokens(s);
    if (!s->rope) {
        swa_ref_attn_bwd(s, q, k, v, dout, dq, dk, dv);
        return;
    }
    rotated(s, q, k, &qr, &kr, &pos);
    swa_ref_attn_bwd(s, qr, kr, v, dout, dq, dk, dv);
    swa_ref_rope(dq, dq, T, s->Hq, s->D, pos, s->base, 1);
    swa_ref_rope(dk, dk, T, s->Hkv, s->D, pos, s->base, 1);
    free(qr);
    free(kr);
    free(pos);
}
