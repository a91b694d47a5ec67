/*
 * compare.c - error metrics between a device result (float or double) and a
 * float64 reference for the libgdn tests; see compare.h for the definitions.
 * Used to check kernels against test/ref (ALGORITHM.md 1.4, 2.5).
 */
#include "compare.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>

struct cmp_acc {
    double sd; /* sum (got - ref)^2 */
    double sr; /* sum ref^2 */
    double sg; /* sum got^2 */
    double max_abs;
    int64_t first_bad;
    int64_t n_nonfinite;
};

static void acc_init(struct cmp_acc *a)
{
    a->sd = a->sr = a->sg = a->max_abs = 0.0;
    a->first_bad = -1;
    a->n_nonfinite = 0;
}

static void acc_add(struct cmp_acc *a, size_t i, double got, double ref, double tol)
{
    if (!isfinite(got) || !isfinite(ref)) {
        a->n_nonfinite++;
        if (a->first_bad < 0) {
            a->first_bad = (int64_t)i;
        }
        return;
    }
    const double d = got - ref;
    const double ad = fabs(d);
    a->sd += d * d;
    a->sr += ref * ref;
    a->sg += got * got;
    if (ad > a->max_abs) {
        a->max_abs = ad;
    }
    if (ad > tol && a->first_bad < 0) {
        a->first_bad = (int64_t)i;
    }
}

static void acc_finish(const struct cmp_acc *a, size_t n, struct gdn_cmp *out)
{
    const double nref = sqrt(a->sr);
    if (nref == 0.0) {
        out->rel_rms = sqrt(a->sg);
    } else {
        out->rel_rms = sqrt(a->sd) / (nref > 1e-30 ? nref : 1e-30);
    }
    out->max_abs = a->max_abs;
    out->ref_rms = n > 0 ? sqrt(a->sr / (double)n) : 0.0;
    out->first_bad = a->first_bad;
    out->n_nonfinite = a->n_nonfinite;
    if (a->n_nonfinite > 0) {
        out->rel_rms = INFINITY;
        out->max_abs = INFINITY;
    }
}

void gdn_cmp_f32(const float *got, const double *ref, size_t n, double tol_abs_for_first_bad,
                 struct gdn_cmp *out)
{
    struct cmp_acc a;
    acc_init(&a);
    for (size_t i = 0; i < n; ++i) {
        acc_add(&a, i, (double)got[i], ref[i], tol_abs_for_first_bad);
    }
    acc_finish(&a, n, out);
}

void gdn_cmp_f64(const double *got, const double *ref, size_t n, double tol_abs_for_first_bad,
                 struct gdn_cmp *out)
{
    struct cmp_acc a;
    acc_init(&a);
    for (size_t i = 0; i < n; ++i) {
        acc_add(&a, i, got[i], ref[i], tol_abs_for_first_bad);
    }
    acc_finish(&a, n, out);
}

int gdn_cmp_describe(const struct gdn_cmp *c, char *buf, size_t cap)
{
    return snprintf(buf, cap,
                    "rel_rms=%.3e max_abs=%.3e ref_rms=%.3e first_bad=%" PRId64
                    " nonfinite=%" PRId64,
                    c->rel_rms, c->max_abs, c->ref_rms, c->first_bad, c->n_nonfinite);
}

void gdn_f64_to_f32(const double *src, float *dst, size_t n)
{
    for (size_t i = 0; i < n; ++i) {
        dst[i] = (float)src[i];
    }
}

void gdn_f32_to_f64(const float *src, double *dst, size_t n)
{
    for (size_t i = 0; i < n; ++i) {
        dst[i] = (double)src[i];
    }
}
