/*
 * conv_ref.h - float64 plain-C reference of the causal depthwise short
 * convolution (lib/ops/conv/), forward, exact backward and decode step, for
 * the device tests (test_conv.c) and the finite-difference check
 * (test_conv_ref.c). Layouts as in gdn.h (short convolution): x, y [T, C] with
 * sequences packed by offsets[N + 1]; weight [C, W]; bias [C];
 * init, final [N, C, W-1] (oldest first). bias, init, final, dfinal may be
 * NULL (zero / not wanted); silu selects the SiLU activation.
 */
#ifndef GDN_CONV_REF_H
#define GDN_CONV_REF_H

#include <stdint.h>

void conv_ref_forward(int64_t C, int64_t W, int64_t N, const int32_t *offsets, const double *x,
                      const double *weight, const double *bias, const double *init, int silu,
                      double *y, double *final_state);

/* Gradients of L(y, final) given dy [T, C] and dfinal [N, C, W-1] (NULL:
 * zero). Outputs dx [T, C], dweight [C, W], dbias [C], dinit [N, C, W-1];
 * each may be NULL. */
void conv_ref_backward(int64_t C, int64_t W, int64_t N, const int32_t *offsets, const double *x,
                       const double *weight, const double *bias, const double *init, int silu,
                       const double *dy, const double *dfinal, double *dx, double *dweight,
                       double *dbias, double *dinit);

/* One decode step: x, y [N, C]; state [N, C, W-1] updated in place. */
void conv_ref_step(int64_t N, int64_t C, int64_t W, const double *x, const double *weight,
                   const double *bias, int silu, double *state, double *y);

#endif /* GDN_CONV_REF_H */
