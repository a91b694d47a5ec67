/*
 * test_mamba2_tune.c - the Mamba2 tuner (lib/ops/mamba2/tune.c) with a tiny
 * budget: every stage gets a user-database row for its bucket, the rows
 * are what the lookup then uses (unless GDN_TUNE_RANDOM is set), and the
 * op still runs with them.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gdn_test.h"
#include "mamba2.h"
#include "tune/tune.h"

static void setup(void)
{
    gdn_test_fresh_cache_setup("tune-m2");
}

START_TEST(tune_writes_rows)
{
    char                report[8192], bucket[48];
    struct gdn_m2_shape s;
    int                 st;

    GDN_TEST_OK(gdn__mamba2_tune(gdn_test_ctx, 16, 32, 4.0, report, sizeof(report)));
    printf("%s", report);
    memset(&s, 0, sizeof(s));
    s.T = 256, s.N = 1, s.H = 4, s.G = 1, s.P = 16, s.DS = 32, s.CH = 64, s.NT = 4;
    s.max_len = 256;
    gdn__m2_bucket(&s, bucket, sizeof(bucket));
    ck_assert_str_eq(bucket, "P16.DS32.CH64");
    for (st = 0; st < GDN_M2_N_STAGES; st++) {
        const struct gdn_tune_space *sp = gdn__m2_space((enum gdn_m2_stage)st);
        int32_t                      vals[GDN_TUNE_MAX_PARAMS];
        enum gdn_tune_source         src;
        ck_assert_msg(strstr(report, sp->stage) != NULL, "%s missing from report: %s",
                      sp->stage, report);
        ck_assert_msg(gdn__tune_db_get(gdn__tune_ctx_db(gdn_test_ctx), sp->stage, bucket),
                      "no row for %s", sp->stage);
        gdn__tune_lookup(gdn_test_ctx, sp, bucket, &s, vals, &src);
        ck_assert_int_eq(src, getenv("GDN_TUNE_RANDOM") ? GDN_TUNE_SRC_RANDOM
                                                        : GDN_TUNE_SRC_USER_DB);
    }
    /* the database file exists */
    {
        char *path = gdn__tune_db_default_path(gdn_test_ctx);
        ck_assert_ptr_nonnull(path);
        ck_assert_int_eq(access(path, R_OK), 0);
        free(path);
    }
}
END_TEST

START_TEST(tune_rejects_bad_dims)
{
    ck_assert_int_eq(gdn__mamba2_tune(gdn_test_ctx, 24, 32, 1.0, NULL, 0),
                     GDN_STATUS_UNSUPPORTED);
}
END_TEST

int main(void)
{
    Suite *s  = suite_create("mamba2_tune");
    TCase *tc = tcase_create("tune");
    tcase_add_checked_fixture(tc, setup, gdn_test_fresh_cache_teardown);
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, tune_rejects_bad_dims);
    tcase_add_test(tc, tune_writes_rows);
    suite_add_tcase(s, tc);
    return gdn_test_run(s, 1);
}
