/*
 * gated_delta_ref.h - plain C11 float64 reference of the gated delta rule
 * (Gated DeltaNet) and its preprocessing ops, for testing the OpenCL port.
 *
 * Convention: fla (ALGORITHM.md 1.2). The state h is [K, V] per value head
 * (h = S^T of the paper form), g is the natural-log gate (g <= 0), and value
 * head hv reads q/k head hv / (HV/H) (fla grouped GVA mapping, ALGORITHM.md
 * 1.3 / 3.3). Per token, per value head:
 *
 *     h <- h * exp(g_t)
 *     u  = beta_t * (v_t - h^T k_t)
 *     h <- h + k_t u^T
 *     o_t = scale * h^T q_t
 *
 * Contents:
 *   - gdn_ref_gd_forward          token recurrence (ALGORITHM.md 1.2, 1.4)
 *   - gdn_ref_gd_backward         exact reverse mode of it (ALGORITHM.md 1.4,
 *                                 "naive backward", per-token states stored)
 *   - gdn_ref_gd_forward_chunked  chunkwise form (ALGORITHM.md 2.1) for
 *                                 cross-checking the recurrence
 *   - l2norm / gate / beta forward and backward (ALGORITHM.md 1.2, 2.3 B8/B9)
 *
 * Layouts (row-major, packed varlen, B = 1):
 *   q, k   [T, H, K]        v, o   [T, HV, V]       g, beta [T, HV]
 *   h0, ht, dht, dh0        [N, HV, K, V]
 * Sequence n covers tokens offsets[n] .. offsets[n+1]-1; empty sequences are
 * allowed (their ht is h0, or zero).
 *
 * Error handling (test code): all functions return void. If the problem
 * description is invalid (NULL pointers for required arrays, non-positive
 * dims, HV % H != 0, bad offsets) the functions return without touching the
 * outputs. If an internal malloc fails, the outputs are zero-filled and the
 * function returns. All scratch memory is freed before returning.
 *
 * Memory: gdn_ref_gd_backward stores (Lmax + 1) * K * V doubles of states,
 * where Lmax is the longest sequence (e.g. 4096 tokens at K = V = 128 is
 * about 0.5 GiB); use short sequences for large heads.
 */
#ifndef GDN_TEST_GATED_DELTA_REF_H
#define GDN_TEST_GATED_DELTA_REF_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

struct gdn_ref_gd_problem {
    int64_t T;              /* total tokens (packed) */
    int32_t H, HV, K, V;    /* q/k heads, value heads (HV % H == 0), head dims */
    int32_t n_seqs;         /* N */
    const int32_t *offsets; /* N+1 entries, offsets[0]=0, offsets[N]=T, nondecreasing */
    double scale;           /* output scale, usually K^-0.5 */
};

/* Core recurrence, inputs already preprocessed (q, k as given, g = log gate,
 * beta as given). q,k [T,H,K]; v [T,HV,V]; g,beta [T,HV]; h0 [N,HV,K,V] or
 * NULL (zeros). Outputs o [T,HV,V], ht [N,HV,K,V] (ht may be NULL). */
void gdn_ref_gd_forward(const struct gdn_ref_gd_problem *p, const double *q, const double *k,
                        const double *v, const double *g, const double *beta, const double *h0,
                        double *o, double *ht);

/* Exact reverse mode of gdn_ref_gd_forward (ALGORITHM.md 1.4).
 * do_ [T,HV,V]; dht [N,HV,K,V] or NULL (zeros); h0 may be NULL (zeros).
 * Outputs dq, dk [T,H,K] (summed over the value heads of a group),
 * dv [T,HV,V], dg, dbeta [T,HV], dh0 [N,HV,K,V] (dh0 may be NULL). */
void gdn_ref_gd_backward(const struct gdn_ref_gd_problem *p, const double *q, const double *k,
                         const double *v, const double *g, const double *beta, const double *h0,
                         const double *do_, const double *dht, double *dq, double *dk, double *dv,
                         double *dg, double *dbeta, double *dh0);

/* Chunked form (ALGORITHM.md 2.1): chunk size C (C < 1 means 64), chunk-local
 * cumulative log decay, (I + A)^-1 by forward substitution, single gated
 * inverse for both W and U. Same inputs and outputs as gdn_ref_gd_forward. */
void gdn_ref_gd_forward_chunked(const struct gdn_ref_gd_problem *p, int32_t C, const double *q,
                                const double *k, const double *v, const double *g,
                                const double *beta, const double *h0, double *o, double *ht);

/* y = x * rstd, rstd = 1 / sqrt(sum x^2 + eps), per row of D elements
 * (fla l2norm, eps inside the sqrt). rstd [rows] may be NULL. */
void gdn_ref_l2norm_fwd(int64_t rows, int32_t D, double eps, const double *x, double *y,
                        double *rstd);
/* dx = (dy - (dy . y) y) * rstd, recomputing y and rstd from x. */
void gdn_ref_l2norm_bwd(int64_t rows, int32_t D, double eps, const double *x, const double *dy,
                        double *dx);

/* g = -exp(A_log[h]) * softplus(a + dt_bias[h]); a, g [T,HV]; A_log, dt_bias [HV].
 * softplus(x) = x for x > 20, else log1p(exp(x)). */
void gdn_ref_gate_fwd(int64_t T, int32_t HV, const double *a, const double *A_log,
                      const double *dt_bias, double *g);
/* da = dg * (-exp(A_log)) * sigmoid(a + dt_bias)   (sigmoid = d softplus, as fla B8)
 * dA_log[h] = sum_t dg * g,  ddt_bias[h] = sum_t da.  dA_log, ddt_bias [HV]. */
void gdn_ref_gate_bwd(int64_t T, int32_t HV, const double *a, const double *A_log,
                      const double *dt_bias, const double *dg, double *da, double *dA_log,
                      double *ddt_bias);

/* beta = m * sigmoid(b), m = 2 if neg_eigval else 1. */
void gdn_ref_beta_fwd(int64_t n, int neg_eigval, const double *b, double *beta);
/* db = dbeta * m * sigmoid(b) * (1 - sigmoid(b)). */
void gdn_ref_beta_bwd(int64_t n, int neg_eigval, const double *b, const double *dbeta,
                      double *db);

/* Scalar helpers used above (numerically safe). */
double gdn_ref_softplus(double x);
double gdn_ref_sigmoid(double x);

#ifdef __cplusplus
}
#endif

#endif /* GDN_TEST_GATED_DELTA_REF_H */
