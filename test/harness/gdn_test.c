#define _POSIX_C_SOURCE 200809L
/*
 * gdn_test.c - fixtures and tensor helpers for the device test suites.
 */
#include "gdn_test.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

gdn_context *gdn_test_ctx;

void gdn_test_ctx_setup(void)
{
    gdn_status st = gdn_context_create(NULL, &gdn_test_ctx);
    ck_assert_msg(st == GDN_STATUS_OK, "gdn_context_create: %s", gdn_status_name(st));
}

void gdn_test_ctx_teardown(void)
{
    gdn_context_destroy(gdn_test_ctx);
    gdn_test_ctx = NULL;
}

void gdn_test_add_ctx_fixture(TCase *tc, double timeout_s)
{
    tcase_add_checked_fixture(tc, gdn_test_ctx_setup, gdn_test_ctx_teardown);
    tcase_set_timeout(tc, timeout_s);
}

char gdn_test_cache_dir[128];

void gdn_test_fresh_cache_setup(const char *tag)
{
    snprintf(gdn_test_cache_dir, sizeof(gdn_test_cache_dir), "/tmp/gdn-%s-%ld", tag,
             (long)getpid());
    setenv("GDN_CACHE_DIR", gdn_test_cache_dir, 1);
    unsetenv("GDN_TUNE");
    unsetenv("GDN_TUNE_MODE");
    unsetenv("GDN_TUNE_BUDGET");
    gdn_test_ctx_setup();
}

void gdn_test_fresh_cache_teardown(void)
{
    char cmd[256];
    gdn_test_ctx_teardown();
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", gdn_test_cache_dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", gdn_test_cache_dir);
}

/* Whether an OpenCL device exists, asked in a throw-away child process:
 * touching OpenCL in the parent starts driver threads (PoCL) that a forked
 * test child then waits on forever. */
static int device_present(void)
{
    pid_t pid = fork();
    int   status = 0;

    if (pid < 0)
        return 1; /* cannot tell: let the tests find out */
    if (pid == 0) {
        int32_t n = 0;
        _exit(gdn_device_count(&n) == GDN_STATUS_OK && n > 0 ? 0 : 77);
    }
    if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status))
        return 1;
    return WEXITSTATUS(status) == 0;
}

int gdn_test_run(Suite *s, int needs_device)
{
    SRunner *sr;
    int      failed;

    if (needs_device && !device_present()) {
        printf("no OpenCL device: skipping\n");
        srunner_free(srunner_create(s)); /* frees the suite */
        return 77;
    }
    sr = srunner_create(s);
    srunner_run_all(sr, CK_ENV);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}

gdn_tensor *gdn_test_tensor(int32_t ndim, const int64_t *shape, const double *data)
{
    gdn_tensor *t = NULL;
    int64_t     n = 1, i;
    float      *f;

    GDN_TEST_OK(gdn_tensor_create(gdn_test_ctx, GDN_DTYPE_F32, ndim, shape, &t));
    for (i = 0; i < ndim; i++)
        n *= shape[i];
    f = malloc((size_t)(n ? n : 1) * sizeof(float));
    ck_assert_ptr_nonnull(f);
    for (i = 0; i < n; i++)
        f[i] = data ? (float)data[i] : NAN;
    GDN_TEST_OK(gdn_tensor_write(t, f, 0, (size_t)n * sizeof(float)));
    free(f);
    return t;
}

void gdn_test_poison(gdn_tensor *t)
{
    GDN_TEST_OK(gdn_tensor_fill(t, NAN));
}

float *gdn_test_read(const gdn_tensor *t)
{
    size_t n = gdn_tensor_nbytes(t);
    float *f = malloc(n ? n : 1);
    ck_assert_ptr_nonnull(f);
    GDN_TEST_OK(gdn_tensor_read(t, f, 0, n));
    return f;
}

double gdn_test_expect(const gdn_tensor *t, const double *ref, double max_rel_rms,
                       const char *what, const char *case_desc)
{
    float         *got = gdn_test_read(t);
    struct gdn_cmp c;
    char           desc[256];
    size_t         n = (size_t)gdn_tensor_numel(t);

    gdn_cmp_f32(got, ref, n, INFINITY, &c);
    gdn_cmp_describe(&c, desc, sizeof(desc));
    if (!(c.rel_rms <= max_rel_rms) || c.n_nonfinite) {
        int64_t bad = c.first_bad;
        /* first element that is off by more than the tolerance allows */
        if (bad < 0) {
            size_t i;
            for (i = 0; i < n; i++)
                if (fabs((double)got[i] - ref[i]) > max_rel_rms * (c.ref_rms > 0 ? c.ref_rms : 1) * 10) {
                    bad = (int64_t)i;
                    break;
                }
        }
        free(got);
        ck_abort_msg("%s [%s]: rel_rms > %.1e: %s (first bad index %lld)", what, case_desc,
                     max_rel_rms, desc, (long long)bad);
    }
    free(got);
    return c.rel_rms;
}
