/*
 * gated_delta_ref.c - plain C11 float64 reference of the gated delta rule
 * (fla convention, state h is [K, V] per value head) and its preprocessing
 * ops. See gated_delta_ref.h for the API and layouts.
 *
 * References (/work/shared/docs/ALGORITHM.md):
 *   1.2  fla convention: recurrence, scale, l2norm, Mamba2 gate, beta
 *   1.4  reference recurrent forward and naive backward (implemented as is;
 *        cross-checked against gdn_check.py::naive_bwd semantics)
 *   2.1  per-chunk mathematics (chunk-local cumsum, A, Tm = (I + A)^-1,
 *        W, U, V', O, H_out)
 *   2.3  backward conventions (GVA: dq/dk summed over the value heads of a
 *        group; B8 gate backward; B9 l2norm / beta-sigmoid backward)
 *
 * Everything is float64 and straightforward loops; speed is not a goal.
 * Scratch memory comes from malloc and is freed before returning; on malloc
 * failure the outputs are zero-filled (see the header).
 */
#include "gated_delta_ref.h"

#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------------ */
/* helpers                                                                   */
/* ------------------------------------------------------------------------ */

double gdn_ref_softplus(double x)
{
    if (x > 20.0) {
        return x;
    }
    return log1p(exp(x));
}

double gdn_ref_sigmoid(double x)
{
    if (x >= 0.0) {
        return 1.0 / (1.0 + exp(-x));
    }
    double e = exp(x);
    return e / (1.0 + e);
}

static void zero_fill(double *x, size_t n)
{
    if (x != NULL && n > 0) {
        memset(x, 0, n * sizeof(*x));
    }
}

/* Returns 1 if the problem description is usable, 0 otherwise. */
static int problem_ok(const struct gdn_ref_gd_problem *p)
{
    if (p == NULL || p->T < 0 || p->H <= 0 || p->HV <= 0 || p->K <= 0 || p->V <= 0 ||
        p->n_seqs < 0 || p->HV % p->H != 0) {
        return 0;
    }
    if (p->n_seqs == 0) {
        return p->T == 0;
    }
    if (p->offsets == NULL || p->offsets[0] != 0 || (int64_t)p->offsets[p->n_seqs] != p->T) {
        return 0;
    }
    for (int32_t n = 0; n < p->n_seqs; ++n) {
        if (p->offsets[n + 1] < p->offsets[n]) {
            return 0;
        }
    }
    return 1;
}

static int64_t max_seq_len(const struct gdn_ref_gd_problem *p)
{
    int64_t m = 0;
    for (int32_t n = 0; n < p->n_seqs; ++n) {
        int64_t L = (int64_t)p->offsets[n + 1] - p->offsets[n];
        if (L > m) {
            m = L;
        }
    }
    return m;
}

/* Sizes of the standard arrays. */
static size_t n_qk(const struct gdn_ref_gd_problem *p)
{
    return (size_t)p->T * (size_t)p->H * (size_t)p->K;
}
static size_t n_v(const struct gdn_ref_gd_problem *p)
{
    return (size_t)p->T * (size_t)p->HV * (size_t)p->V;
}
static size_t n_gate(const struct gdn_ref_gd_problem *p)
{
    return (size_t)p->T * (size_t)p->HV;
}
static size_t n_state(const struct gdn_ref_gd_problem *p)
{
    return (size_t)p->n_seqs * (size_t)p->HV * (size_t)p->K * (size_t)p->V;
}

/* Offsets of token t, head h into the standard arrays. */
static size_t at_qk(const struct gdn_ref_gd_problem *p, int64_t t, int32_t h)
{
    return ((size_t)t * (size_t)p->H + (size_t)h) * (size_t)p->K;
}
static size_t at_v(const struct gdn_ref_gd_problem *p, int64_t t, int32_t hv)
{
    return ((size_t)t * (size_t)p->HV + (size_t)hv) * (size_t)p->V;
}
static size_t at_gate(const struct gdn_ref_gd_problem *p, int64_t t, int32_t hv)
{
    return (size_t)t * (size_t)p->HV + (size_t)hv;
}
static size_t at_state(const struct gdn_ref_gd_problem *p, int32_t n, int32_t hv)
{
    return ((size_t)n * (size_t)p->HV + (size_t)hv) * (size_t)p->K * (size_t)p->V;
}

/* ------------------------------------------------------------------------ */
/* recurrent forward (ALGORITHM.md 1.2 / 1.4)                                */
/* ------------------------------------------------------------------------ */

void gdn_ref_gd_forward(const struct gdn_ref_gd_problem *p, const double *q, const double *k,
                        const double *v, const double *g, const double *beta, const double *h0,
                        double *o, double *ht)
{
    if (!problem_ok(p) || (p->T > 0 && (!q || !k || !v || !g || !beta || !o))) {
        return;
    }
    const int32_t K = p->K, V = p->V, HV = p->HV;
    const int32_t grp = p->HV / p->H;
    const size_t KV = (size_t)K * (size_t)V;

    double *h = malloc(KV * sizeof(*h));
    double *u = malloc((size_t)V * sizeof(*u));
    if (h == NULL || u == NULL) {
        free(h);
        free(u);
        zero_fill(o, n_v(p));
        zero_fill(ht, n_state(p));
        return;
    }

    for (int32_t n = 0; n < p->n_seqs; ++n) {
        const int64_t bos = p->offsets[n], eos = p->offsets[n + 1];
        for (int32_t hv = 0; hv < HV; ++hv) {
            const int32_t hq = hv / grp;
            if (h0 != NULL) {
                memcpy(h, h0 + at_state(p, n, hv), KV * sizeof(*h));
            } else {
                zero_fill(h, KV);
            }
            for (int64_t t = bos; t < eos; ++t) {
                const double *qt = q + at_qk(p, t, hq);
                const double *kt = k + at_qk(p, t, hq);
                const double *vt = v + at_v(p, t, hv);
                const double a = exp(g[at_gate(p, t, hv)]);
                const double b = beta[at_gate(p, t, hv)];
                double *ot = o + at_v(p, t, hv);

                for (size_t e = 0; e < KV; ++e) {
                    h[e] *= a;
                }
                for (int32_t j = 0; j < V; ++j) {
                    double s = 0.0;
                    for (int32_t i = 0; i < K; ++i) {
                        s += h[(size_t)i * V + j] * kt[i];
                    }
                    u[j] = b * (vt[j] - s);
                }
                for (int32_t i = 0; i < K; ++i) {
                    for (int32_t j = 0; j < V; ++j) {
                        h[(size_t)i * V + j] += kt[i] * u[j];
                    }
                }
                for (int32_t j = 0; j < V; ++j) {
                    double s = 0.0;
                    for (int32_t i = 0; i < K; ++i) {
                        s += h[(size_t)i * V + j] * qt[i];
                    }
                    ot[j] = p->scale * s;
                }
            }
            if (ht != NULL) {
                memcpy(ht + at_state(p, n, hv), h, KV * sizeof(*h));
            }
        }
    }
    free(h);
    free(u);
}

/* ------------------------------------------------------------------------ */
/* recurrent backward (ALGORITHM.md 1.4 naive backward)                      */
/* ------------------------------------------------------------------------ */

void gdn_ref_gd_backward(const struct gdn_ref_gd_problem *p, const double *q, const double *k,
                         const double *v, const double *g, const double *beta, const double *h0,
                         const double *do_, const double *dht, double *dq, double *dk, double *dv,
                         double *dg, double *dbeta, double *dh0)
{
    if (!problem_ok(p) || (p->T > 0 && (!q || !k || !v || !g || !beta || !do_ || !dq || !dk ||
                                        !dv || !dg || !dbeta))) {
        return;
    }
    const int32_t K = p->K, V = p->V, HV = p->HV;
    const int32_t grp = p->HV / p->H;
    const size_t KV = (size_t)K * (size_t)V;
    const int64_t Lmax = max_seq_len(p);

    /* dq, dk are accumulated over the value heads of a group. */
    zero_fill(dq, n_qk(p));
    zero_fill(dk, n_qk(p));

    double *hs = malloc(((size_t)Lmax + 1) * KV * sizeof(*hs)); /* h_0 .. h_L */
    double *dh = malloc(KV * sizeof(*dh));
    double *hp = malloc(KV * sizeof(*hp));
    double *vec = malloc(3 * (size_t)V * sizeof(*vec));
    if (hs == NULL || dh == NULL || hp == NULL || vec == NULL) {
        free(hs);
        free(dh);
        free(hp);
        free(vec);
        zero_fill(dv, n_v(p));
        zero_fill(dg, n_gate(p));
        zero_fill(dbeta, n_gate(p));
        zero_fill(dh0, n_state(p));
        return;
    }
    double *u = vec, *r = vec + V, *du = vec + 2 * (size_t)V;

    for (int32_t n = 0; n < p->n_seqs; ++n) {
        const int64_t bos = p->offsets[n], eos = p->offsets[n + 1];
        const int64_t L = eos - bos;
        for (int32_t hv = 0; hv < HV; ++hv) {
            const int32_t hq = hv / grp;

            /* forward, storing every state h_0 .. h_L */
            if (h0 != NULL) {
                memcpy(hs, h0 + at_state(p, n, hv), KV * sizeof(*hs));
            } else {
                zero_fill(hs, KV);
            }
            for (int64_t l = 0; l < L; ++l) {
                const int64_t t = bos + l;
                const double *kt = k + at_qk(p, t, hq);
                const double *vt = v + at_v(p, t, hv);
                const double a = exp(g[at_gate(p, t, hv)]);
                const double b = beta[at_gate(p, t, hv)];
                const double *hprev = hs + (size_t)l * KV;
                double *hnext = hs + (size_t)(l + 1) * KV;
                for (size_t e = 0; e < KV; ++e) {
                    hnext[e] = a * hprev[e];
                }
                for (int32_t j = 0; j < V; ++j) {
                    double s = 0.0;
                    for (int32_t i = 0; i < K; ++i) {
                        s += hnext[(size_t)i * V + j] * kt[i];
                    }
                    u[j] = b * (vt[j] - s);
                }
                for (int32_t i = 0; i < K; ++i) {
                    for (int32_t j = 0; j < V; ++j) {
                        hnext[(size_t)i * V + j] += kt[i] * u[j];
                    }
                }
            }

            /* reverse sweep */
            if (dht != NULL) {
                memcpy(dh, dht + at_state(p, n, hv), KV * sizeof(*dh));
            } else {
                zero_fill(dh, KV);
            }
            for (int64_t l = L - 1; l >= 0; --l) {
                const int64_t t = bos + l;
                const double *qt = q + at_qk(p, t, hq);
                const double *kt = k + at_qk(p, t, hq);
                const double *vt = v + at_v(p, t, hv);
                const double *dot = do_ + at_v(p, t, hv);
                const double a = exp(g[at_gate(p, t, hv)]);
                const double b = beta[at_gate(p, t, hv)];
                const double *hprev = hs + (size_t)l * KV;
                const double *hcur = hs + (size_t)(l + 1) * KV;
                double *dqt = dq + at_qk(p, t, hq);
                double *dkt = dk + at_qk(p, t, hq);
                double *dvt = dv + at_v(p, t, hv);

                /* hp = e^g h_{t-1};  r = v - hp^T k;  u = beta r */
                for (size_t e = 0; e < KV; ++e) {
                    hp[e] = a * hprev[e];
                }
                for (int32_t j = 0; j < V; ++j) {
                    double s = 0.0;
                    for (int32_t i = 0; i < K; ++i) {
                        s += hp[(size_t)i * V + j] * kt[i];
                    }
                    r[j] = vt[j] - s;
                    u[j] = b * r[j];
                }
                /* o_t = s h_t^T q_t:  dh += s q do^T;  dq = s h_t do */
                for (int32_t i = 0; i < K; ++i) {
                    double s = 0.0;
                    for (int32_t j = 0; j < V; ++j) {
                        dh[(size_t)i * V + j] += p->scale * qt[i] * dot[j];
                        s += hcur[(size_t)i * V + j] * dot[j];
                    }
                    dqt[i] += p->scale * s;
                }
                /* h_t = hp + k u^T:  du = dh^T k;  dk = dh u */
                for (int32_t j = 0; j < V; ++j) {
                    double s = 0.0;
                    for (int32_t i = 0; i < K; ++i) {
                        s += dh[(size_t)i * V + j] * kt[i];
                    }
                    du[j] = s;
                }
                for (int32_t i = 0; i < K; ++i) {
                    double s = 0.0;
                    for (int32_t j = 0; j < V; ++j) {
                        s += dh[(size_t)i * V + j] * u[j];
                    }
                    dkt[i] += s;
                }
                /* u = beta (v - hp^T k): dv = beta du;  dbeta = du . r;
                 * dhp = dh - beta k du^T;  dk -= beta hp du */
                double db = 0.0;
                for (int32_t j = 0; j < V; ++j) {
                    dvt[j] = b * du[j];
                    db += du[j] * r[j];
                }
                dbeta[at_gate(p, t, hv)] = db;
                for (int32_t i = 0; i < K; ++i) {
                    double s = 0.0;
                    for (int32_t j = 0; j < V; ++j) {
                        s += hp[(size_t)i * V + j] * du[j];
                        dh[(size_t)i * V + j] -= b * kt[i] * du[j];
                    }
                    dkt[i] -= b * s;
                }
                /* hp = e^g h_{t-1}:  dg = <dhp, hp>;  dh = e^g dhp */
                double sg = 0.0;
                for (size_t e = 0; e < KV; ++e) {
                    sg += dh[e] * hp[e];
                    dh[e] *= a;
                }
                dg[at_gate(p, t, hv)] = sg;
            }
            if (dh0 != NULL) {
                memcpy(dh0 + at_state(p, n, hv), dh, KV * sizeof(*dh));
            }
        }
    }
    free(hs);
    free(dh);
    free(hp);
    free(vec);
}

/* ------------------------------------------------------------------------ */
/* chunked forward (ALGORITHM.md 2.1)                                        */
/* ------------------------------------------------------------------------ */

void gdn_ref_gd_forward_chunked(const struct gdn_ref_gd_problem *p, int32_t C, const double *q,
                                const double *k, const double *v, const double *g,
                                const double *beta, const double *h0, double *o, double *ht)
{
    if (!problem_ok(p) || (p->T > 0 && (!q || !k || !v || !g || !beta || !o))) {
        return;
    }
    if (C < 1) {
        C = 64;
    }
    const int32_t K = p->K, V = p->V, HV = p->HV;
    const int32_t grp = p->HV / p->H;
    const size_t KV = (size_t)K * (size_t)V;
    const size_t Cs = (size_t)C;

    double *G = malloc(Cs * sizeof(*G));         /* chunk-local cumsum of g */
    double *A = malloc(Cs * Cs * sizeof(*A));    /* strict_lower(diag(beta) K K^T o Gamma) */
    double *Tm = malloc(Cs * Cs * sizeof(*Tm));  /* (I + A)^-1, unit lower */
    double *W = malloc(Cs * (size_t)K * sizeof(*W));
    double *U = malloc(Cs * (size_t)V * sizeof(*U));
    double *Vn = malloc(Cs * (size_t)V * sizeof(*Vn)); /* V' = U - W H (pre-decay) */
    double *H = malloc(KV * sizeof(*H));
    if (!G || !A || !Tm || !W || !U || !Vn || !H) {
        free(G);
        free(A);
        free(Tm);
        free(W);
        free(U);
        free(Vn);
        free(H);
        zero_fill(o, n_v(p));
        zero_fill(ht, n_state(p));
        return;
    }

    for (int32_t n = 0; n < p->n_seqs; ++n) {
        const int64_t bos = p->offsets[n], eos = p->offsets[n + 1];
        for (int32_t hv = 0; hv < HV; ++hv) {
            const int32_t hq = hv / grp;
            if (h0 != NULL) {
                memcpy(H, h0 + at_state(p, n, hv), KV * sizeof(*H));
            } else {
                zero_fill(H, KV);
            }
            for (int64_t s0 = bos; s0 < eos; s0 += C) {
                const int64_t e0 = (s0 + C < eos) ? s0 + C : eos;
                const int32_t L = (int32_t)(e0 - s0);
#define KR(i) (k + at_qk(p, s0 + (i), hq))
#define QR(i) (q + at_qk(p, s0 + (i), hq))
#define VR(i) (v + at_v(p, s0 + (i), hv))
#define BR(i) (beta[at_gate(p, s0 + (i), hv)])
                /* G_i = sum_{t <= i in chunk} g_t */
                double acc = 0.0;
                for (int32_t i = 0; i < L; ++i) {
                    acc += g[at_gate(p, s0 + i, hv)];
                    G[i] = acc;
                }
                /* A_ij = beta_i (k_i . k_j) e^{G_i - G_j}, j < i */
                for (int32_t i = 0; i < L; ++i) {
                    for (int32_t j = 0; j < i; ++j) {
                        double s = 0.0;
                        for (int32_t d = 0; d < K; ++d) {
                            s += KR(i)[d] * KR(j)[d];
                        }
                        A[(size_t)i * Cs + j] = BR(i) * s * exp(G[i] - G[j]);
                    }
                }
                /* Tm = (I + A)^-1 by forward substitution, row by row:
                 * Tm_ii = 1, Tm_ij = -sum_{m=j}^{i-1} A_im Tm_mj (j < i) */
                for (int32_t i = 0; i < L; ++i) {
                    for (int32_t j = 0; j < i; ++j) {
                        double s = 0.0;
                        for (int32_t m = j; m < i; ++m) {
                            s += A[(size_t)i * Cs + m] * Tm[(size_t)m * Cs + j];
                        }
                        Tm[(size_t)i * Cs + j] = -s;
                    }
                    Tm[(size_t)i * Cs + i] = 1.0;
                }
                /* W = Tm diag(beta gamma) K_c;  U = Tm diag(beta) V_c */
                for (int32_t i = 0; i < L; ++i) {
                    double *wi = W + (size_t)i * K;
                    double *ui = U + (size_t)i * V;
                    zero_fill(wi, (size_t)K);
                    zero_fill(ui, (size_t)V);
                    for (int32_t j = 0; j <= i; ++j) {
                        const double t_ij = Tm[(size_t)i * Cs + j];
                        const double cw = t_ij * BR(j) * exp(G[j]);
                        const double cu = t_ij * BR(j);
                        for (int32_t d = 0; d < K; ++d) {
                            wi[d] += cw * KR(j)[d];
                        }
                        for (int32_t d = 0; d < V; ++d) {
                            ui[d] += cu * VR(j)[d];
                        }
                    }
                }
                /* V' = U - W H */
                for (int32_t i = 0; i < L; ++i) {
                    for (int32_t j = 0; j < V; ++j) {
                        double s = 0.0;
                        for (int32_t d = 0; d < K; ++d) {
                            s += W[(size_t)i * K + d] * H[(size_t)d * V + j];
                        }
                        Vn[(size_t)i * V + j] = U[(size_t)i * V + j] - s;
                    }
                }
                /* O_i = scale (gamma_i q_i^T H + sum_{j<=i} (q_i . k_j) e^{G_i-G_j} V'_j) */
                for (int32_t i = 0; i < L; ++i) {
                    double *oi = o + at_v(p, s0 + i, hv);
                    const double gi = exp(G[i]);
                    for (int32_t j = 0; j < V; ++j) {
                        double s = 0.0;
                        for (int32_t d = 0; d < K; ++d) {
                            s += QR(i)[d] * H[(size_t)d * V + j];
                        }
                        oi[j] = gi * s;
                    }
                    for (int32_t m = 0; m <= i; ++m) {
                        double s = 0.0;
                        for (int32_t d = 0; d < K; ++d) {
                            s += QR(i)[d] * KR(m)[d];
                        }
                        s *= exp(G[i] - G[m]);
                        for (int32_t j = 0; j < V; ++j) {
                            oi[j] += s * Vn[(size_t)m * V + j];
                        }
                    }
                    for (int32_t j = 0; j < V; ++j) {
                        oi[j] *= p->scale;
                    }
                }
                /* H_out = e^{G_last} H + K_c^T diag(e^{G_last - G}) V' */
                const double glast = G[L - 1];
                const double al = exp(glast);
                for (size_t e = 0; e < KV; ++e) {
                    H[e] *= al;
                }
                for (int32_t m = 0; m < L; ++m) {
                    const double dm = exp(glast - G[m]);
                    for (int32_t d = 0; d < K; ++d) {
                        const double c = KR(m)[d] * dm;
                        for (int32_t j = 0; j < V; ++j) {
                            H[(size_t)d * V + j] += c * Vn[(size_t)m * V + j];
                        }
                    }
                }
#undef KR
#undef QR
#undef VR
#undef BR
            }
            if (ht != NULL) {
                memcpy(ht + at_state(p, n, hv), H, KV * sizeof(*H));
            }
        }
    }
    free(G);
    free(A);
    free(Tm);
    free(W);
    free(U);
    free(Vn);
    free(H);
}

/* ------------------------------------------------------------------------ */
/* preprocessing ops (ALGORITHM.md 1.2, 2.3 B8/B9)                           */
/* ------------------------------------------------------------------------ */

void gdn_ref_l2norm_fwd(int64_t rows, int32_t D, double eps, const double *x, double *y,
                        double *rstd)
{
    if (rows <= 0 || D <= 0 || x == NULL || y == NULL) {
        return;
    }
    for (int64_t r = 0; r < rows; ++r) {
        const double *xr = x + (size_t)r * (size_t)D;
        double *yr = y + (size_t)r * (size_t)D;
        double ss = 0.0;
        for (int32_t d = 0; d < D; ++d) {
            ss += xr[d] * xr[d];
        }
        const double rs = 1.0 / sqrt(ss + eps);
        for (int32_t d = 0; d < D; ++d) {
            yr[d] = xr[d] * rs;
        }
        if (rstd != NULL) {
            rstd[r] = rs;
        }
    }
}

void gdn_ref_l2norm_bwd(int64_t rows, int32_t D, double eps, const double *x, const double *dy,
                        double *dx)
{
    if (rows <= 0 || D <= 0 || x == NULL || dy == NULL || dx == NULL) {
        return;
    }
    for (int64_t r = 0; r < rows; ++r) {
        const double *xr = x + (size_t)r * (size_t)D;
        const double *dyr = dy + (size_t)r * (size_t)D;
        double *dxr = dx + (size_t)r * (size_t)D;
        double ss = 0.0;
        for (int32_t d = 0; d < D; ++d) {
            ss += xr[d] * xr[d];
        }
        const double rs = 1.0 / sqrt(ss + eps);
        double dot = 0.0; /* dy . y */
        for (int32_t d = 0; d < D; ++d) {
            dot += dyr[d] * xr[d] * rs;
        }
        for (int32_t d = 0; d < D; ++d) {
            dxr[d] = (dyr[d] - dot * xr[d] * rs) * rs;
        }
    }
}

void gdn_ref_gate_fwd(int64_t T, int32_t HV, const double *a, const double *A_log,
                      const double *dt_bias, double *g)
{
    if (T <= 0 || HV <= 0 || a == NULL || A_log == NULL || dt_bias == NULL || g == NULL) {
        return;
    }
    for (int64_t t = 0; t < T; ++t) {
        for (int32_t h = 0; h < HV; ++h) {
            const size_t i = (size_t)t * (size_t)HV + (size_t)h;
            g[i] = -exp(A_log[h]) * gdn_ref_softplus(a[i] + dt_bias[h]);
        }
    }
}

void gdn_ref_gate_bwd(int64_t T, int32_t HV, const double *a, const double *A_log,
                      const double *dt_bias, const double *dg, double *da, double *dA_log,
                      double *ddt_bias)
{
    if (HV <= 0 || dA_log == NULL || ddt_bias == NULL) {
        return;
    }
    zero_fill(dA_log, (size_t)HV);
    zero_fill(ddt_bias, (size_t)HV);
    if (T <= 0 || a == NULL || A_log == NULL || dt_bias == NULL || dg == NULL || da == NULL) {
        return;
    }
    for (int64_t t = 0; t < T; ++t) {
        for (int32_t h = 0; h < HV; ++h) {
            const size_t i = (size_t)t * (size_t)HV + (size_t)h;
            const double x = a[i] + dt_bias[h];
            const double ea = exp(A_log[h]);
            const double gi = -ea * gdn_ref_softplus(x);
            const double dai = dg[i] * (-ea) * gdn_ref_sigmoid(x);
            da[i] = dai;
            dA_log[h] += dg[i] * gi;
            ddt_bias[h] += dai;
        }
    }
}

void gdn_ref_beta_fwd(int64_t n, int neg_eigval, const double *b, double *beta)
{
    if (n <= 0 || b == NULL || beta == NULL) {
        return;
    }
    const double m = neg_eigval ? 2.0 : 1.0;
    for (int64_t i = 0; i < n; ++i) {
        beta[i] = m * gdn_ref_sigmoid(b[i]);
    }
}

void gdn_ref_beta_bwd(int64_t n, int neg_eigval, const double *b, const double *dbeta,
                      double *db)
{
    if (n <= 0 || b == NULL || dbeta == NULL || db == NULL) {
        return;
    }
    const double m = neg_eigval ? 2.0 : 1.0;
    for (int64_t i = 0; i < n; ++i) {
        const double s = gdn_ref_sigmoid(b[i]);
        db[i] = dbeta[i] * m * s * (1.0 - s);
    }
}
