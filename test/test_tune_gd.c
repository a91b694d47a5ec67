/*
 * test_tune_gd.c - device suite for the autotuner of the gated delta rule
 * (gdn_tune_gated_delta, gdn_tune_describe): a short search writes a user
 * database with one row per tuned stage (forward and backward), later
 * lookups take their values from it, the forward and the backward stay
 * correct with the tuned plans, and bad arguments fail cleanly; the context
 * modes (GDN_TUNE_MODE): db (default) never writes a database, lazy tunes a
 * missing head-dim bucket on its first use once and then stops when its
 * (tiny) budget is spent, eager also tunes the fast-path buckets. The cache
 * folder is a fresh temporary one.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gated_delta_ref.h"
#include "gdn_test.h"

static void setup(void)
{
    gdn_test_fresh_cache_setup("tune-gd");
}

/* The user database of the test context's device. */
static void db_path(char *path, size_t cap)
{
    gdn_device_info info;
    size_t          i, m = 0;
    char            slug[128];
    GDN_TEST_OK(gdn_context_device_info(gdn_test_ctx, &info));
    for (i = 0; info.name[i] && m + 1 < sizeof(slug); i++) {
        char c    = info.name[i];
        slug[m++] = ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
                        ? c
                        : '_';
    }
    slug[m] = '\0';
    snprintf(path, cap, "%s/tune/%s.txt", gdn_test_cache_dir, slug);
}

/* The database's text ("" when there is none; free() it). */
static char *db_text(void)
{
    char  path[512], *text;
    FILE *f;
    long  n;
    db_path(path, sizeof(path));
    f = fopen(path, "r");
    if (!f)
        return calloc(1, 1);
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    text = calloc(1, (size_t)n + 1);
    ck_assert_int_eq(fread(text, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    return text;
}

/* Messages of the context made by use_logging_context(). */
static char logbuf[65536];

static void logger(void *user, gdn_log_level level, const char *msg)
{
    (void)user;
    (void)level;
    strncat(logbuf, msg, sizeof(logbuf) - strlen(logbuf) - 2);
    strcat(logbuf, "\n");
}

/* Replace the fixture's context by one that logs INFO into logbuf (the
 * teardown destroys it). */
static void use_logging_context(void)
{
    gdn_context_params cp;
    gdn_test_ctx_teardown();
    gdn_context_params_init(&cp);
    cp.log_fn    = logger;
    cp.log_level = GDN_LOG_LEVEL_INFO;
    GDN_TEST_OK(gdn_context_create(&cp, &gdn_test_ctx));
    logbuf[0] = '\0';
}

START_TEST(tune_writes_rows_and_they_are_used)
{
    char report[4096], desc[4096], path[512], *text = NULL;

    GDN_TEST_OK(gdn_tune_gated_delta(gdn_test_ctx, 16, 32, 6.0, report, sizeof(report)));
    ck_assert_msg(strstr(report, "gated_delta/state_fwd") && strstr(report, "gated_delta/wy_fwd") &&
                      strstr(report, "gated_delta/out_fwd") &&
                      strstr(report, "gated_delta/kkt_solve") &&
                      strstr(report, "gated_delta/dv_local") &&
                      strstr(report, "gated_delta/state_bwd") &&
                      strstr(report, "gated_delta/dqkwg") && strstr(report, "gated_delta/wy_bwd"),
                  "report: %s", report);
    /* The database file names the device and holds the rows. */
    GDN_TEST_OK(gdn_tune_describe(gdn_test_ctx, 16, 32, desc, sizeof(desc)));
    /* Under GDN_TUNE_RANDOM (the random-plan runs of this suite) the random
     * draw wins over the rows just written. */
    ck_assert_msg(strstr(desc, getenv("GDN_TUNE_RANDOM") ? "random (GDN_TUNE_RANDOM)"
                                                         : "user tuning database") != NULL,
                  "describe: %s", desc);
    db_path(path, sizeof(path));
    text = db_text();
    ck_assert_msg(text[0], "no database at %s", path);
    ck_assert_msg(strstr(text, "gdn-tune-db 1") && strstr(text, "row gated_delta/state_fwd K16.V32") &&
                      strstr(text, "row gated_delta/wy_bwd K16.V32") &&
                      strstr(text, "row gated_delta/state_bwd K16.V32"),
                  "database: %s", text);
    free(text);
}
END_TEST

/* After tuning, the forward and the backward with the tuned plans still
 * match the float64 reference (the tuner only keeps candidates that agree
 * with the default). */
/* Forward and backward at head dims K, V on gdn_test_ctx, checked against
 * the float64 reference (gd_forward / gd_backward tolerances). */
static void check_fwd_bwd(int32_t K, int32_t V, const char *what)
{
    struct gdn_ref_gd_problem p;
    struct gdn_rng            rng;
    const int64_t             T = 150;
    const int32_t             off[3] = {0, 70, 150};
    double                   *q, *k, *v, *g, *b, *o, *dO, *dq, *dk, *dv, *dg, *db;
    gdn_tensor               *tq, *tk, *tv, *tg, *tb, *to, *tdo, *tdq, *tdk, *tdv, *tdg, *tdb;
    gdn_gated_delta_args      a;
    gdn_gated_delta_grads     gr;
    gdn_gated_delta_tape     *tape = NULL;
    int64_t                   sq[3] = {T, 1, K}, sv[3] = {T, 1, V}, sg[2] = {T, 1};

    gdn_rng_seed(&rng, 7);
    q = malloc(sizeof(double) * (size_t)(T * K));
    k = malloc(sizeof(double) * (size_t)(T * K));
    v = malloc(sizeof(double) * (size_t)(T * V));
    g = malloc(sizeof(double) * (size_t)T);
    b = malloc(sizeof(double) * (size_t)T);
    o = malloc(sizeof(double) * (size_t)(T * V));
    gdn_rng_fill_l2rows(&rng, q, (size_t)T, (size_t)K);
    gdn_rng_fill_l2rows(&rng, k, (size_t)T, (size_t)K);
    gdn_rng_fill_normal(&rng, v, (size_t)(T * V), 1.0);
    gdn_rng_fill_uniform(&rng, g, (size_t)T, -2.0, 0.0);
    gdn_rng_fill_uniform(&rng, b, (size_t)T, 0.0, 1.0);
    tq = gdn_test_tensor(3, sq, q);
    tk = gdn_test_tensor(3, sq, k);
    tv = gdn_test_tensor(3, sv, v);
    tg = gdn_test_tensor(2, sg, g);
    tb = gdn_test_tensor(2, sg, b);
    to = gdn_test_tensor(3, sv, NULL);
    memset(&a, 0, sizeof(a));
    a.q = tq, a.k = tk, a.v = tv, a.g = tg, a.beta = tb, a.seq_offsets = off, a.n_seqs = 2;
    GDN_TEST_OK(gdn_gated_delta_forward(gdn_test_ctx, NULL, &a, to, NULL, &tape));
    memset(&p, 0, sizeof(p));
    p.T = T, p.H = 1, p.HV = 1, p.K = K, p.V = V, p.n_seqs = 2, p.offsets = off;
    p.scale = 1.0 / sqrt((double)K);
    gdn_ref_gd_forward(&p, q, k, v, g, b, NULL, o, NULL);
    gdn_test_expect(to, o, 2e-5, "o", what);

    /* the backward stages, tuned too (tolerances of the gd_backward suite) */
    dO = malloc(sizeof(double) * (size_t)(T * V));
    dq = malloc(sizeof(double) * (size_t)(T * K));
    dk = malloc(sizeof(double) * (size_t)(T * K));
    dv = malloc(sizeof(double) * (size_t)(T * V));
    dg = malloc(sizeof(double) * (size_t)T);
    db = malloc(sizeof(double) * (size_t)T);
    gdn_rng_fill_normal(&rng, dO, (size_t)(T * V), 1.0);
    tdo = gdn_test_tensor(3, sv, dO);
    tdq = gdn_test_tensor(3, sq, NULL), tdk = gdn_test_tensor(3, sq, NULL);
    tdv = gdn_test_tensor(3, sv, NULL);
    tdg = gdn_test_tensor(2, sg, NULL), tdb = gdn_test_tensor(2, sg, NULL);
    memset(&gr, 0, sizeof(gr));
    gr.dq = tdq, gr.dk = tdk, gr.dv = tdv, gr.dg = tdg, gr.dbeta = tdb;
    GDN_TEST_OK(gdn_gated_delta_backward(gdn_test_ctx, tape, tdo, NULL, &gr));
    gdn_ref_gd_backward(&p, q, k, v, g, b, NULL, dO, NULL, dq, dk, dv, dg, db, NULL);
    gdn_test_expect(tdq, dq, 1e-4, "dq", what);
    gdn_test_expect(tdk, dk, 1e-4, "dk", what);
    gdn_test_expect(tdv, dv, 1e-4, "dv", what);
    gdn_test_expect(tdg, dg, 1e-3, "dg", what);
    gdn_test_expect(tdb, db, 1e-3, "dbeta", what);
    gdn_gated_delta_tape_destroy(tape);
    gdn_tensor_destroy(tdo), gdn_tensor_destroy(tdq), gdn_tensor_destroy(tdk);
    gdn_tensor_destroy(tdv), gdn_tensor_destroy(tdg), gdn_tensor_destroy(tdb);
    free(dO), free(dq), free(dk), free(dv), free(dg), free(db);
    gdn_tensor_destroy(tq), gdn_tensor_destroy(tk), gdn_tensor_destroy(tv);
    gdn_tensor_destroy(tg), gdn_tensor_destroy(tb), gdn_tensor_destroy(to);
    free(q), free(k), free(v), free(g), free(b), free(o);
}

START_TEST(tuned_forward_is_correct)
{
    GDN_TEST_OK(gdn_tune_gated_delta(gdn_test_ctx, 16, 32, 3.0, NULL, 0));
    check_fwd_bwd(16, 32, "tuned plans");
}
END_TEST

/* GDN_TUNE_MODE unset (db): ops only look up; no database is written. */
START_TEST(db_mode_never_tunes)
{
    char *text;
    use_logging_context();
    check_fwd_bwd(16, 32, "db mode");
    text = db_text();
    ck_assert_msg(text[0] == '\0', "a database was written: %s", text);
    ck_assert_msg(strstr(logbuf, "tuning now") == NULL, "log: %s", logbuf);
    free(text);
}
END_TEST

/* GDN_TUNE_MODE=lazy with a tiny budget: the first use of K=16, V=32 tunes
 * it (every stage gets a row: at least its timed default), the second use
 * does not tune again, and once the budget is spent another bucket is left
 * to the built-in / generic values. The results are right throughout. */
START_TEST(lazy_mode_tunes_on_first_use)
{
    char       *text;
    const char *stages[] = {"kkt_solve", "wy_fwd",    "state_fwd", "out_fwd",
                            "dv_local",  "state_bwd", "dqkwg",     "wy_bwd"};
    size_t      i;

    unsetenv("GDN_TUNE_RANDOM"); /* random plans turn lazy tuning off */
    setenv("GDN_TUNE_MODE", "lazy", 1);
    setenv("GDN_TUNE_BUDGET", "0.5", 1);
    use_logging_context();
    check_fwd_bwd(16, 32, "lazy mode, first use");
    ck_assert_msg(strstr(logbuf, "gated_delta K16.V32: no user database rows; tuning now"),
                  "log: %s", logbuf);
    text = db_text();
    for (i = 0; i < sizeof(stages) / sizeof(stages[0]); i++) {
        char row[96];
        snprintf(row, sizeof(row), "row gated_delta/%s K16.V32 ", stages[i]);
        ck_assert_msg(strstr(text, row) != NULL, "no '%s' in the database: %s", row, text);
    }
    free(text);

    logbuf[0] = '\0';
    check_fwd_bwd(16, 32, "lazy mode, second use");
    ck_assert_msg(strstr(logbuf, "tuning now") == NULL, "tuned twice: %s", logbuf);

    logbuf[0] = '\0';
    check_fwd_bwd(32, 16, "lazy mode, budget spent");
    ck_assert_msg(strstr(logbuf, "K32.V16: this context's tuning budget (0.5 s) is spent"),
                  "log: %s", logbuf);
    text = db_text();
    ck_assert_msg(strstr(text, "K32.V16") == NULL, "tuned past the budget: %s", text);
    free(text);
}
END_TEST

/* The same through the context's parameters (which win over the
 * environment): tune_mode LAZY with a tiny budget tunes the first use. */
START_TEST(lazy_mode_from_params)
{
    gdn_context_params cp;
    char              *text;
    unsetenv("GDN_TUNE_RANDOM");
    setenv("GDN_TUNE_MODE", "db", 1);
    unsetenv("GDN_TUNE_BUDGET");
    gdn_test_ctx_teardown();
    gdn_context_params_init(&cp);
    cp.log_fn        = logger;
    cp.log_level     = GDN_LOG_LEVEL_INFO;
    cp.tune_mode     = GDN_TUNE_MODE_LAZY;
    cp.tune_budget_s = 0.5f;
    GDN_TEST_OK(gdn_context_create(&cp, &gdn_test_ctx));
    logbuf[0] = '\0';
    check_fwd_bwd(16, 32, "lazy mode from params");
    ck_assert_msg(strstr(logbuf, "tuning mode lazy, budget 0.5 s"), "log: %s", logbuf);
    text = db_text();
    ck_assert_msg(strstr(text, "row gated_delta/state_fwd K16.V32 ") != NULL, "db: %s", text);
    free(text);
    unsetenv("GDN_TUNE_MODE");
}
END_TEST

/* GDN_TUNE_MODE=eager: the first use tunes its bucket, then turns to the
 * fast-path buckets (K = V = 64, 128), here out of budget at once. */
START_TEST(eager_mode_tunes_fast_path_dims)
{
    char *text;
    unsetenv("GDN_TUNE_RANDOM");
    setenv("GDN_TUNE_MODE", "eager", 1);
    setenv("GDN_TUNE_BUDGET", "0.5", 1);
    use_logging_context();
    check_fwd_bwd(16, 32, "eager mode");
    text = db_text();
    ck_assert_msg(strstr(text, "row gated_delta/state_bwd K16.V32 ") != NULL, "database: %s",
                  text);
    free(text);
    ck_assert_msg(strstr(logbuf, "tuning mode eager, budget 0.5 s") &&
                      strstr(logbuf, "K64.V64: this context's tuning budget (0.5 s) is spent"),
                  "log: %s", logbuf);
}
END_TEST

/* A malformed mode is reported and the context stays in db mode. */
START_TEST(bad_mode_is_reported)
{
    char *text;
    setenv("GDN_TUNE_MODE", "sometimes", 1);
    use_logging_context();
    check_fwd_bwd(16, 16, "bad mode");
    ck_assert_msg(strstr(logbuf, "GDN_TUNE_MODE='sometimes' ignored"), "log: %s", logbuf);
    text = db_text();
    ck_assert_msg(text[0] == '\0', "a database was written: %s", text);
    free(text);
}
END_TEST

START_TEST(bad_arguments)
{
    char buf[64];
    ck_assert_int_eq(gdn_tune_gated_delta(NULL, 64, 64, 1, NULL, 0), GDN_STATUS_INVALID_ARGUMENT);
    ck_assert_int_eq(gdn_tune_gated_delta(gdn_test_ctx, 24, 64, 1, NULL, 0),
                     GDN_STATUS_UNSUPPORTED);
    ck_assert_msg(strstr(gdn_context_last_error(gdn_test_ctx), "K = 24") != NULL, "%s",
                  gdn_context_last_error(gdn_test_ctx));
    ck_assert_int_eq(gdn_tune_describe(gdn_test_ctx, 64, 64, NULL, 0),
                     GDN_STATUS_INVALID_ARGUMENT);
    ck_assert_int_eq(gdn_tune_describe(NULL, 64, 64, buf, sizeof(buf)),
                     GDN_STATUS_INVALID_ARGUMENT);
    /* gdn_tune_op: NULL context or op, unknown op, and an op's own checks */
    ck_assert_int_eq(gdn_tune_op(NULL, "swa", 64, 0, 1, NULL, 0), GDN_STATUS_INVALID_ARGUMENT);
    ck_assert_int_eq(gdn_tune_op(gdn_test_ctx, NULL, 64, 0, 1, NULL, 0),
                     GDN_STATUS_INVALID_ARGUMENT);
    ck_assert_msg(strstr(gdn_context_last_error(gdn_test_ctx), "op is NULL") != NULL, "%s",
                  gdn_context_last_error(gdn_test_ctx));
    ck_assert_int_eq(gdn_tune_op(gdn_test_ctx, "conv", 64, 0, 1, NULL, 0),
                     GDN_STATUS_INVALID_ARGUMENT);
    ck_assert_msg(strstr(gdn_context_last_error(gdn_test_ctx), "unknown op 'conv'") != NULL,
                  "%s", gdn_context_last_error(gdn_test_ctx));
    ck_assert_int_eq(gdn_tune_op(gdn_test_ctx, "gated_delta", 24, 64, 1, NULL, 0),
                     GDN_STATUS_UNSUPPORTED);
}
END_TEST

int main(void)
{
    Suite *s  = suite_create("tune_gd");
    TCase *tc = tcase_create("tune_gd");
    tcase_add_checked_fixture(tc, setup, gdn_test_fresh_cache_teardown);
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, tune_writes_rows_and_they_are_used);
    tcase_add_test(tc, tuned_forward_is_correct);
    tcase_add_test(tc, bad_arguments);
    tcase_add_test(tc, db_mode_never_tunes);
    tcase_add_test(tc, lazy_mode_tunes_on_first_use);
    tcase_add_test(tc, lazy_mode_from_params);
    tcase_add_test(tc, eager_mode_tunes_fast_path_dims);
    tcase_add_test(tc, bad_mode_is_reported);
    suite_add_tcase(s, tc);
    return gdn_test_run(s, 1);
}
