/*
 * test_tune_db.c - host suite for lib/tune: lookup order and fallbacks,
 * override parsing with illegal values, and user databases that are
 * corrupt, truncated, for another device or of another version.
 *
 * Uses a context struct filled by hand (no OpenCL device needed): the lookup
 * reads only the device identity, the log settings and the tune fields.
 */
#define _POSIX_C_SOURCE 200809L
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tune/tune.h"

static const struct gdn_tune_param params[] = {
    {"BV", 32, 4, {8, 16, 32, 64}},
    {"WG_SIZE", 128, 3, {64, 128, 256}},
};

/* BV * 8 must not exceed WG_SIZE (an example cross-parameter constraint). */
static bool valid(const int32_t *v, const void *problem, const struct gdn_device *dev)
{
    (void)problem;
    (void)dev;
    return v[0] * 8 <= v[1] * 4;
}

static const struct gdn_tune_space space = {"test/stage", 2, params, valid, NULL};

static char        tmpdir[256];
static char        logbuf[4096];
static gdn_context ctx;

static void logger(void *user, gdn_log_level level, const char *msg)
{
    (void)user;
    (void)level;
    strncat(logbuf, msg, sizeof(logbuf) - strlen(logbuf) - 2);
    strcat(logbuf, "\n");
}

static void setup(void)
{
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/gdn-tune-test-%ld", (long)getpid());
    gdn__mkdirs(tmpdir);
    memset(&ctx, 0, sizeof(ctx));
    gdn__strlcpy(ctx.dev.info.name, "Test GPU 9000", sizeof(ctx.dev.info.name));
    gdn__strlcpy(ctx.dev.info.driver_version, "1.2.3", sizeof(ctx.dev.info.driver_version));
    gdn__strlcpy(ctx.dev.info.vendor, "NVIDIA Corporation", sizeof(ctx.dev.info.vendor));
    ctx.dev.info.vendor_id             = 0x10de;
    ctx.dev.info.compute_units         = 7;
    ctx.dev.info.nv_compute_capability = 90;
    ctx.dev.is_nvidia                  = true;
    ctx.log_fn                         = logger;
    ctx.log_level                      = GDN_LOG_LEVEL_DEBUG;
    ctx.tune_dir                       = tmpdir;
    logbuf[0]                          = '\0';
}

static void teardown(void)
{
    char *p = gdn__tune_db_default_path(&ctx);
    if (p)
        remove(p);
    gdn__free(p);
    rmdir(tmpdir);
    gdn__tune_db_free(ctx.tune_db);
}

static void write_db(const char *text)
{
    char *p = gdn__tune_db_default_path(&ctx);
    FILE *f = fopen(p, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
    gdn__free(p);
}

START_TEST(generic_when_nothing_matches)
{
    int32_t              v[2];
    enum gdn_tune_source src;
    gdn__tune_lookup(&ctx, &space, "K128.V128", NULL, v, &src);
    ck_assert_int_eq(v[0], 32);
    ck_assert_int_eq(v[1], 128);
    ck_assert_int_eq(src, GDN_TUNE_SRC_GENERIC);
}
END_TEST

START_TEST(override_wins_and_illegal_is_rejected)
{
    int32_t              v[2];
    enum gdn_tune_source src;
    char                 ovr[] = "other:BV=8;test/stage:BV=16,WG_SIZE=64";
    ctx.tune_override          = ovr;
    gdn__tune_lookup(&ctx, &space, "K128.V128", NULL, v, &src);
    ck_assert_int_eq(src, GDN_TUNE_SRC_OVERRIDE);
    ck_assert_int_eq(v[0], 16);
    ck_assert_int_eq(v[1], 64);

    /* An illegal value: reported, defaults used. */
    strcpy(ovr, "test/stage:BV=24");
    gdn__tune_lookup(&ctx, &space, "K128.V128", NULL, v, &src);
    ck_assert_int_eq(src, GDN_TUNE_SRC_GENERIC);
    ck_assert_int_eq(v[0], 32);
    ck_assert_msg(strstr(logbuf, "BV=24 is not a legal value") != NULL, "log: %s", logbuf);

    /* Legal values that break the stage's constraint: not used. */
    logbuf[0] = '\0';
    strcpy(ovr, "test/stage:BV=64,WG_SIZE=64");
    gdn__tune_lookup(&ctx, &space, "K128.V128", NULL, v, &src);
    ck_assert_int_eq(src, GDN_TUNE_SRC_GENERIC);
    ck_assert_msg(strstr(logbuf, "does not fit") != NULL, "log: %s", logbuf);

    /* An unknown key. */
    logbuf[0] = '\0';
    strcpy(ovr, "test/stage:XX=1");
    gdn__tune_lookup(&ctx, &space, "K128.V128", NULL, v, &src);
    ck_assert_int_eq(src, GDN_TUNE_SRC_GENERIC);
    ck_assert_msg(strstr(logbuf, "unknown parameter 'XX'") != NULL, "log: %s", logbuf);
    ctx.tune_override = NULL;
}
END_TEST

START_TEST(user_db_round_trip_and_order)
{
    struct gdn_tune_db  *db = NULL;
    char                *path = gdn__tune_db_default_path(&ctx);
    int32_t              v[2];
    enum gdn_tune_source src;
    char                 ovr[] = "test/stage:BV=8";

    ck_assert_int_eq(gdn__tune_db_load(&ctx, path, &db), GDN_STATUS_OK); /* missing: empty */
    ck_assert_ptr_null(db);
    db = NULL;
    {
        struct gdn_tune_db *fresh = NULL;
        /* build one through set() and save it */
        ck_assert_int_eq(gdn__tune_db_load(&ctx, "/nonexistent/x.txt", &fresh), GDN_STATUS_OK);
    }
    write_db("gdn-tune-db 1\ndevice Test GPU 9000\ndriver 1.2.3\nvendor_id 0x10de\n"
             "compute_units 7\nrow test/stage K128.V128 BV=64 WG_SIZE=256  # tuned\n"
             "row test/stage K64.V64 BV=8\n");
    gdn__tune_lookup(&ctx, &space, "K128.V128", NULL, v, &src);
    ck_assert_int_eq(src, GDN_TUNE_SRC_USER_DB);
    ck_assert_int_eq(v[0], 64);
    ck_assert_int_eq(v[1], 256);
    /* keys not in the row keep their generic default */
    gdn__tune_lookup(&ctx, &space, "K64.V64", NULL, v, &src);
    ck_assert_int_eq(src, GDN_TUNE_SRC_USER_DB);
    ck_assert_int_eq(v[0], 8);
    ck_assert_int_eq(v[1], 128);
    /* another bucket: generic */
    gdn__tune_lookup(&ctx, &space, "K32.V32", NULL, v, &src);
    ck_assert_int_eq(src, GDN_TUNE_SRC_GENERIC);
    /* the override still wins over the user DB */
    ctx.tune_override = ovr;
    gdn__tune_lookup(&ctx, &space, "K128.V128", NULL, v, &src);
    ck_assert_int_eq(src, GDN_TUNE_SRC_OVERRIDE);
    ctx.tune_override = NULL;

    /* save + load keeps the rows */
    ck_assert_int_eq(gdn__tune_db_set(ctx.tune_db, "test/stage", "K16.V16", "BV=16", "x"),
                     GDN_STATUS_OK);
    ck_assert_int_eq(gdn__tune_db_save(&ctx, ctx.tune_db, path), GDN_STATUS_OK);
    ck_assert_int_eq(gdn__tune_db_load(&ctx, path, &db), GDN_STATUS_OK);
    ck_assert_str_eq(gdn__tune_db_get(db, "test/stage", "K16.V16"), "BV=16");
    ck_assert_str_eq(gdn__tune_db_get(db, "test/stage", "K128.V128"), "BV=64 WG_SIZE=256");
    gdn__tune_db_free(db);
    gdn__free(path);
}
END_TEST

/* Bad files: each is reported and ignored as a whole. */
static const struct {
    const char *text;
    const char *why;
} bad[] = {
    {"gdn-tune-db 2\ndevice Test GPU 9000\nrow test/stage * BV=8\n", "another version"},
    {"gdn-tune-db 1\ndevice Other GPU\nrow test/stage * BV=8\n", "another device"},
    {"gdn-tune-db 1\ndevice Test GPU 9000\ndriver 9.9\nrow test/stage * BV=8\n",
     "another driver"},
    {"gdn-tune-db 1\ndevice Test GPU 9000\nrow test/stage\n", "malformed row"},
    {"", "empty or truncated"},
    {"garbage\x01\x02\n", "first line"},
    {"gdn-tune-db 1\nwhatever else\n", "unknown line"},
};

START_TEST(bad_database_is_ignored)
{
    int32_t              v[2];
    enum gdn_tune_source src;
    write_db(bad[_i].text);
    gdn__tune_lookup(&ctx, &space, "K128.V128", NULL, v, &src);
    ck_assert_int_eq(src, GDN_TUNE_SRC_GENERIC);
    ck_assert_int_eq(v[0], 32);
    ck_assert_msg(strstr(logbuf, "ignored") && strstr(logbuf, bad[_i].why), "case %d log: %s",
                  _i, logbuf);
}
END_TEST

START_TEST(parse_and_format)
{
    int32_t v[2] = {32, 128};
    char    err[128], buf[64];
    ck_assert(gdn__tune_parse_values(&space, "WG_SIZE=256", v, err, sizeof(err)));
    ck_assert_int_eq(v[1], 256);
    ck_assert(!gdn__tune_parse_values(&space, "BV", v, err, sizeof(err)));
    ck_assert(!gdn__tune_parse_values(&space, "BV=x", v, err, sizeof(err)));
    ck_assert(!gdn__tune_parse_values(&space, "BV=16x", v, err, sizeof(err)));
    ck_assert_int_eq(v[0], 32); /* failed parses change nothing */
    gdn__tune_format_values(&space, v, buf, sizeof(buf));
    ck_assert_str_eq(buf, "BV=32 WG_SIZE=256");
    ck_assert(gdn__tune_defines(&space, v, buf, sizeof(buf)));
    ck_assert_str_eq(buf, "-DBV=32 -DWG_SIZE=256");
    gdn__tune_arch(&ctx.dev, buf, sizeof(buf));
    ck_assert_str_eq(buf, "sm_90");
    ck_assert_str_eq(gdn__tune_vendor(&ctx.dev), "nvidia");
}
END_TEST

int main(void)
{
    Suite   *s  = suite_create("tune_db");
    TCase   *tc = tcase_create("tune_db");
    SRunner *sr;
    int      failed;

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, generic_when_nothing_matches);
    tcase_add_test(tc, override_wins_and_illegal_is_rejected);
    tcase_add_test(tc, user_db_round_trip_and_order);
    tcase_add_loop_test(tc, bad_database_is_ignored, 0, (int)(sizeof(bad) / sizeof(bad[0])));
    tcase_add_test(tc, parse_and_format);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_ENV);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
