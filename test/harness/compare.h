/*
 * compare.h - error metrics between a device result and a float64 reference
 * for the libgdn tests (tolerances per ALGORITHM.md 2.5 precision summary).
 *
 *   rel_rms   = ||got - ref||_2 / max(||ref||_2, 1e-30);
 *               if ||ref||_2 == 0 exactly, rel_rms = ||got||_2
 *   max_abs   = max_i |got_i - ref_i|
 *   ref_rms   = sqrt(sum ref_i^2 / n)   (0 for n == 0)
 *   first_bad = first i with |got_i - ref_i| > tol, or got_i / ref_i not
 *               finite; -1 if none
 *   n_nonfinite = number of i where got_i or ref_i is NaN / Inf. Such entries
 *               are left out of the norms; if n_nonfinite > 0, rel_rms and
 *               max_abs are set to +Inf so no threshold on them can pass.
 */
#ifndef GDN_TEST_COMPARE_H
#define GDN_TEST_COMPARE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

struct gdn_cmp {
    double rel_rms;
    double max_abs;
    double ref_rms;
    int64_t first_bad;
    int64_t n_nonfinite;
};

/* float result vs double reference. */
void gdn_cmp_f32(const float *got, const double *ref, size_t n, double tol_abs_for_first_bad,
                 struct gdn_cmp *out);
/* double result vs double reference. */
void gdn_cmp_f64(const double *got, const double *ref, size_t n, double tol_abs_for_first_bad,
                 struct gdn_cmp *out);
/* One-line summary (no trailing newline) into buf; returns snprintf's value. */
int gdn_cmp_describe(const struct gdn_cmp *c, char *buf, size_t cap);

/* Element-wise conversions (round to nearest for f64 -> f32). */
void gdn_f64_to_f32(const double *src, float *dst, size_t n);
void gdn_f32_to_f64(const float *src, double *dst, size_t n);

#ifdef __cplusplus
}
#endif

#endif /* GDN_TEST_COMPARE_H */
