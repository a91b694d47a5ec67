/*
 * mamba2_ref.h - float64 plain-C reference of the Mamba2 SSD mixer core
 * (ALGORITHM.md §4.4; mamba_ssm ssd_minimal / selective_state_update):
 * the token-sequential recurrence and its exact backward.
 *
 * Per sequence n and head h (group g = h / (H / G)), with the state
 * S in R^{P x DS}:
 *     dt_t = clamp(softplus(dt_raw_t + dt_bias), dt_min, dt_max)
 *            (softplus(v) = v for v > 20, as torch / mamba_ssm)
 *     A    = -exp(A_log)
 *     S_t  = exp(dt_t A) S_{t-1} + dt_t x_t B_t^T
 *     y_t  = S_t C_t + D x_t
 * Layouts (row-major, token-major packed): x, y [T, H, P]; dt_raw [T, H];
 * B, C [T, G, DS]; A_log, dt_bias, D [H]; h0, ht [N, H, P, DS]; sequence n
 * covers tokens offsets[n] .. offsets[n + 1] - 1.
 *
 * The backward is the exact adjoint of the forward (reverse-mode through
 * the recurrence). Where the clamp is active (softplus output <= dt_min or
 * >= dt_max) the gradient of dt_raw is 0, as in mamba_ssm.
 */
#ifndef GDN_MAMBA2_REF_H
#define GDN_MAMBA2_REF_H

#include <stddef.h>

struct m2_ref_shape {
    int        nseq;    /* N sequences */
    const int *offsets; /* N + 1 token offsets */
    int        H, G;    /* heads, groups (H % G == 0) */
    int        P, DS;   /* head dim, state size */
    double     dt_min;  /* lower clamp (0: none) */
    double     dt_max;  /* upper clamp (INFINITY: none) */
};

/* dt from raw dt + bias, and d dt / d raw (0 where clamped). */
void m2_ref_dt(double raw, double bias, double dt_min, double dt_max, double *dt, double *ddt);

/* Forward. dt_bias, D, h0 may be NULL (zero / no skip / zero state);
 * ht may be NULL. */
void m2_ref_forward(const struct m2_ref_shape *s, const double *x, const double *dt_raw,
                    const double *A_log, const double *dt_bias, const double *B, const double *C,
                    const double *D, const double *h0, double *y, double *ht);

/* Backward of loss = <y, dy> + <ht, dht> (dht may be NULL = 0). Every
 * output may be NULL (not computed). Inputs as for m2_ref_forward. */
void m2_ref_backward(const struct m2_ref_shape *s, const double *x, const double *dt_raw,
                     const double *A_log, const double *dt_bias, const double *B, const double *C,
                     const double *D, const double *h0, const double *dy, const double *dht,
                     double *dx, double *ddt_raw, double *dA_log, double *ddt_bias, double *dB,
                     double *dC, double *dD, double *dh0);

#endif /* GDN_MAMBA2_REF_H */
