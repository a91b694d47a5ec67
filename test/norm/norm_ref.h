/*
 * norm_ref.h - float64 plain-C references of the norm and element-wise layer
 * ops (lib/ops/norm/), forward and exact backward, for the device tests
 * (test_norm.c) and the finite-difference check (test_norm_ref.c).
 *
 * Rows: `rows` groups of G consecutive elements; group r uses weight
 * w[(r % gpd) * G .. + G - 1] (D = G * gpd is the last dim). type is a
 * gdn_norm_type value: 0 L2, 1 RMS, 2 RMS_GATED (norm, then * silu(g)),
 * 3 RMS_GATE_FIRST (norm of x * silu(g)). w may be NULL (ones); g is used by
 * types 2 and 3 only.
 */
#ifndef GDN_NORM_REF_H
#define GDN_NORM_REF_H

#include <stddef.h>
#include <stdint.h>

void norm_ref_forward(int type, double eps, int64_t rows, int64_t G, int64_t gpd, const double *x,
                      const double *w, const double *g, double *y);

/* dx, dw ([G * gpd], summed over rows), dg may each be NULL. */
void norm_ref_backward(int type, double eps, int64_t rows, int64_t G, int64_t gpd,
                       const double *x, const double *w, const double *g, const double *dy,
                       double *dx, double *dw, double *dg);

/* act: 0 SiLU, 1 sigmoid, 2 softplus (threshold 20). */
double act_ref(int act, double x);
double act_ref_grad(int act, double x); /* d act / dx */

#endif /* GDN_NORM_REF_H */
