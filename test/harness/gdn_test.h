/*
 * gdn_test.h - shared helpers of the Check suites that need a device.
 *
 * The OpenCL context is created inside a *checked* fixture (it runs in the
 * forked child): drivers break when OpenCL is initialised before fork().
 * Programs that need a device call gdn_test_run(), which exits 77 (meson's
 * SKIP) when there is no OpenCL device.
 */
#ifndef GDN_TEST_H
#define GDN_TEST_H

#include <check.h>
#include <stddef.h>
#include <stdint.h>

#include "compare.h"
#include "gdn.h"
#include "rng.h"

/* The fixture's context (valid inside tests of a TCase that uses
 * gdn_test_add_ctx_fixture). */
extern gdn_context *gdn_test_ctx;
void gdn_test_ctx_setup(void);
void gdn_test_ctx_teardown(void);
/* Add the checked fixture and a generous timeout to tc. */
void gdn_test_add_ctx_fixture(TCase *tc, double timeout_s);

/* The tuner suites' fixture: a fresh cache folder /tmp/gdn-<tag>-<pid> as
 * GDN_CACHE_DIR (so the user tuning database starts empty), GDN_TUNE,
 * GDN_TUNE_MODE and GDN_TUNE_BUDGET unset, then the fixture's context. The
 * teardown destroys the context and removes the folder. */
extern char gdn_test_cache_dir[128];
void gdn_test_fresh_cache_setup(const char *tag);
void gdn_test_fresh_cache_teardown(void);

/* Run the suite; returns the process exit status (77 when no device and
 * needs_device). */
int gdn_test_run(Suite *s, int needs_device);

/* Create an F32 tensor from float64 host data (rounded); data may be NULL
 * (then the tensor is filled with NaN, which also serves as poison). */
gdn_tensor *gdn_test_tensor(int32_t ndim, const int64_t *shape, const double *data);
/* Fill with NaN so unwritten outputs are caught. */
void gdn_test_poison(gdn_tensor *t);
/* Read a tensor into a new float array (free with free()). */
float *gdn_test_read(const gdn_tensor *t);

/* Compare a device tensor with a float64 reference; on failure the message
 * names `what`, the case and the metrics. Returns rel_rms. */
double gdn_test_expect(const gdn_tensor *t, const double *ref, double max_rel_rms,
                       const char *what, const char *case_desc);

/* ck_assert on a status, with gdn_context_last_error in the message. */
#define GDN_TEST_OK(expr)                                                                          \
    do {                                                                                           \
        gdn_status st_ = (expr);                                                                   \
        ck_assert_msg(st_ == GDN_STATUS_OK, "%s -> %s: %s", #expr, gdn_status_name(st_),           \
                      gdn_context_last_error(gdn_test_ctx));                                       \
    } while (0)

#endif /* GDN_TEST_H */
