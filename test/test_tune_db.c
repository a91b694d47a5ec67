/*
 * test_tune_db.c - host suite for lib/tune: lookup order and fallbacks,
 * override parsing with illegal values, user databases that are corrupt,
 * truncated, for another device or of another version, and the random
 * legal plans of GDN_TUNE_RANDOM (on a test space and on every tuned space
 * of the gated delta rule, for a 32 KiB and a 64 KiB local-memory device).
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

#include "gated_delta.h"
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
    ctx.dev.info.max_work_group_size   = 1024;
    ctx.dev.info.local_mem_bytes       = 48 * 1024;
    logbuf[0]                          = '\0';
    unsetenv("GDN_TUNE_RANDOM");
    unsetenv("GDN_TUNE_MODE");
    unsetenv("GDN_TUNE_BUDGET");
}

/* Forget the context's tuning state, as a new context would. */
static void reset_tune_state(void)
{
    gdn__tune_db_free(ctx.tune_db);
    ctx.tune_db        = NULL;
    ctx.tune_db_loaded = false;
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

/* ------------------------------------------------------ GDN_TUNE_RANDOM */

static bool is_legal(const struct gdn_tune_space *sp, const int32_t *v)
{
    int32_t i, j;
    for (i = 0; i < sp->n_params; i++) {
        bool ok = false;
        for (j = 0; j < sp->params[i].n_values; j++)
            ok = ok || sp->params[i].values[j] == v[i];
        if (!ok)
            return false;
    }
    return true;
}

START_TEST(random_plans_are_legal_and_seeded)
{
    int32_t              v[2], again[2], first[2] = {0, 0};
    enum gdn_tune_source src;
    char                 seed[16];
    int                  distinct = 0, i, seen[65][257];
    bool                 differs_by_bucket = false;

    memset(seen, 0, sizeof(seen));
    for (i = 0; i < 32; i++) {
        snprintf(seed, sizeof(seed), "%d", 1000 + i);
        setenv("GDN_TUNE_RANDOM", seed, 1);
        reset_tune_state();
        logbuf[0] = '\0';
        gdn__tune_lookup(&ctx, &space, "K128.V128", NULL, v, &src);
        ck_assert_int_eq(src, GDN_TUNE_SRC_RANDOM);
        ck_assert_msg(is_legal(&space, v) && valid(v, NULL, &ctx.dev), "seed %s: BV=%d WG=%d",
                      seed, (int)v[0], (int)v[1]);
        ck_assert_msg(strstr(logbuf, "GDN_TUNE_RANDOM=") && strstr(logbuf, "test/stage K128.V128"),
                      "the plan is logged: %s", logbuf);
        if (!seen[v[0]][v[1]]++)
            distinct++;
        /* the same seed in a new context draws the same plan */
        reset_tune_state();
        gdn__tune_lookup(&ctx, &space, "K128.V128", NULL, again, &src);
        ck_assert_int_eq(again[0], v[0]);
        ck_assert_int_eq(again[1], v[1]);
        /* another bucket draws independently */
        gdn__tune_lookup(&ctx, &space, "K64.V64", NULL, again, &src);
        differs_by_bucket = differs_by_bucket || again[0] != v[0] || again[1] != v[1];
        if (i == 0)
            memcpy(first, v, sizeof(first));
    }
    /* 11 legal assignments: 32 seeds must reach several of them */
    ck_assert_msg(distinct >= 5, "only %d distinct plans over 32 seeds", distinct);
    ck_assert(differs_by_bucket);

    /* Each draw is logged once per context, not at every lookup. */
    setenv("GDN_TUNE_RANDOM", "1000", 1);
    reset_tune_state();
    gdn__tune_lookup(&ctx, &space, "K128.V128", NULL, v, &src);
    ck_assert_int_eq(v[0], first[0]);
    logbuf[0] = '\0';
    gdn__tune_lookup(&ctx, &space, "K128.V128", NULL, v, &src);
    ck_assert_msg(strstr(logbuf, "GDN_TUNE_RANDOM") == NULL, "logged twice: %s", logbuf);

    /* The override still wins over the random draw. */
    {
        char ovr[] = "test/stage:BV=16,WG_SIZE=64";
        ctx.tune_override = ovr;
        gdn__tune_lookup(&ctx, &space, "K128.V128", NULL, v, &src);
        ck_assert_int_eq(src, GDN_TUNE_SRC_OVERRIDE);
        ctx.tune_override = NULL;
    }

    /* A malformed seed is reported and ignored. */
    setenv("GDN_TUNE_RANDOM", "12abc", 1);
    reset_tune_state();
    logbuf[0] = '\0';
    gdn__tune_lookup(&ctx, &space, "K128.V128", NULL, v, &src);
    ck_assert_int_eq(src, GDN_TUNE_SRC_GENERIC);
    ck_assert_msg(strstr(logbuf, "GDN_TUNE_RANDOM='12abc' ignored"), "log: %s", logbuf);
}
END_TEST

/* Every tuned space of the gated delta rule (forward and backward), at every
 * head-dim pair the op tests use, on a 32 KiB / 256 work-item device, a
 * 64 KiB / 1024 one and Mesa llvmpipe (32 KiB, 1024; its loop limit asks for
 * work-groups of 64 or more and scans in windows):
 * each seed's plan is legal and valid, the draw is uniform over the valid
 * assignments (its rank is below their count, which matches a brute-force
 * count) and the seeds reach more than one plan wherever there is a choice. */

static size_t brute_count(const struct gdn_tune_space *sp, const struct gdn_gd_shape *s)
{
    int32_t pos[GDN_TUNE_MAX_PARAMS] = {0}, v[GDN_TUNE_MAX_PARAMS];
    size_t  n = 0;
    int32_t i;
    for (;;) {
        for (i = 0; i < sp->n_params; i++)
            v[i] = sp->params[i].values[pos[i]];
        n += sp->valid(v, s, &ctx.dev);
        for (i = 0; i < sp->n_params && ++pos[i] == sp->params[i].n_values; i++)
            pos[i] = 0;
        if (i == sp->n_params)
            return n;
    }
}

START_TEST(random_plans_of_gated_delta_spaces)
{
    static const int32_t dims[][2] = {{16, 16}, {32, 64}, {64, 32},  {64, 64},
                                      {128, 128}, {256, 256}, {128, 16}, {16, 128}};
    size_t               si, di;
    int                  dev;

    for (dev = 0; dev < 3; dev++) {
        ctx.dev.info.local_mem_bytes     = dev == 1 ? 64 * 1024 : 32 * 1024;
        ctx.dev.info.max_work_group_size = dev ? 1024 : 256;
        gdn__strlcpy(ctx.dev.info.name, dev == 2 ? "llvmpipe (LLVM 15.0.6, 256 bits)" : "Test GPU 9000",
                     sizeof(ctx.dev.info.name));
        ck_assert(gdn__gd_loop_limited(&ctx.dev) == (dev == 2));
        ck_assert_uint_eq(gdn__gd_n_tuned_spaces, 8);
        for (si = 0; si < gdn__gd_n_tuned_spaces; si++)
            for (di = 0; di < GDN_ARRAY_SIZE(dims); di++) {
                const struct gdn_tune_space *sp = gdn__gd_tuned_spaces[si];
                struct gdn_gd_shape          s;
                int32_t                      v[GDN_TUNE_MAX_PARAMS], v0[GDN_TUNE_MAX_PARAMS];
                char                         bucket[32];
                size_t                       count, idx, cnt;
                bool                         varied = false;
                uint32_t                     seed;

                memset(&s, 0, sizeof(s));
                s.T = 4096, s.N = 1, s.H = s.HV = 1, s.NT = 64, s.max_len = 4096;
                s.K = dims[di][0], s.V = dims[di][1];
                count = brute_count(sp, &s);
                gdn__gd_bucket(s.K, s.V, bucket, sizeof(bucket));
                ck_assert_msg(count > 0, "%s K=%d V=%d: no valid plan", sp->stage, (int)s.K,
                              (int)s.V);
                /* the generic default is one of them */
                {
                    int32_t i;
                    for (i = 0; i < sp->n_params; i++)
                        v[i] = sp->params[i].def;
                    sp->defaults(v, &s, &ctx.dev);
                    ck_assert_msg(is_legal(sp, v) && sp->valid(v, &s, &ctx.dev),
                                  "%s %s: the generic default is not legal here", sp->stage,
                                  bucket);
                }
                for (seed = 1; seed <= 24; seed++) {
                    ck_assert(gdn__tune_random_pick(&ctx, sp, bucket, &s, seed, v, &idx, &cnt));
                    ck_assert_msg(is_legal(sp, v) && sp->valid(v, &s, &ctx.dev),
                                  "%s %s seed %u: illegal plan", sp->stage, bucket, seed);
                    ck_assert_uint_eq(cnt, count);
                    ck_assert_uint_lt(idx, cnt);
                    if (dev == 2) { /* llvmpipe: no scan in one launch */
                        int32_t i;
                        for (i = 0; i < sp->n_params; i++)
                            if (!strcmp(sp->params[i].name, "CHUNKS"))
                                ck_assert_int_gt(v[i], 0);
                    }
                    if (seed == 1)
                        memcpy(v0, v, sizeof(v0));
                    else
                        varied = varied || memcmp(v, v0, (size_t)sp->n_params * 4) != 0;
                }
                ck_assert_msg(varied || count == 1, "%s %s: 24 seeds drew one plan of %zu",
                              sp->stage, bucket, count);
            }
    }
}
END_TEST

/* wy_bwd's register cap (MAXREG) is a choice only where binaries are PTX
 * (NVIDIA's driver, cl_nv_device_attribute_query): elsewhere every cap
 * builds the same program, so the space holds MAXREG=0 alone. */
START_TEST(maxreg_only_on_nvidia_driver)
{
    const struct gdn_tune_space *sp = &gdn__gd_wyb_space;
    struct gdn_gd_shape          s;
    int32_t                      v[GDN_TUNE_MAX_PARAMS], i, im = -1;
    uint32_t                     seed;
    bool                         capped = false;

    memset(&s, 0, sizeof(s));
    s.T = 4096, s.N = 1, s.H = s.HV = 1, s.NT = 64, s.max_len = 4096, s.K = s.V = 128;
    for (i = 0; i < sp->n_params; i++)
        if (!strcmp(sp->params[i].name, "MAXREG"))
            im = i;
    ck_assert_int_ge(im, 0);
    ctx.dev.info.flags = GDN_DEVICE_FLAG_GPU;
    for (i = 0; i < sp->n_params; i++)
        v[i] = sp->params[i].def;
    sp->defaults(v, &s, &ctx.dev);
    ck_assert_int_eq(v[im], 0);
    ck_assert(sp->valid(v, &s, &ctx.dev));
    v[im] = 168;
    ck_assert(!sp->valid(v, &s, &ctx.dev));
    ctx.dev.info.flags |= GDN_DEVICE_FLAG_NV_ATTR;
    ck_assert(sp->valid(v, &s, &ctx.dev));
    /* the tuner's draws reach the caps there, and only there */
    for (seed = 1; seed <= 32; seed++) {
        size_t idx, cnt;
        ck_assert(gdn__tune_random_pick(&ctx, sp, "K128.V128", &s, seed, v, &idx, &cnt));
        capped = capped || v[im] != 0;
    }
    ck_assert(capped);
    ctx.dev.info.flags = GDN_DEVICE_FLAG_GPU;
    for (seed = 1; seed <= 32; seed++) {
        size_t idx, cnt;
        ck_assert(gdn__tune_random_pick(&ctx, sp, "K128.V128", &s, seed, v, &idx, &cnt));
        ck_assert_int_eq(v[im], 0);
    }
    ctx.dev.info.flags = 0;
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
    tcase_add_test(tc, random_plans_are_legal_and_seeded);
    tcase_add_test(tc, random_plans_of_gated_delta_spaces);
    tcase_add_test(tc, maxreg_only_on_nvidia_driver);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_ENV);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
