/*
 * test_swa_tune.c - device suite for the SWA autotuner (gdn__swa_tune): a
 * short search (2 s budget) for D = 64 writes one legal row per tuned stage
 * (swa/fwd, swa/rope, swa/bwd_prep, swa/bwd_dq, swa/bwd_dkdv) into the user
 * database of a fresh cache folder; a new context then takes those values
 * (user DB) and forward + backward still match the float64 reference.
 */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gdn_test.h"
#include "swa.h"
#include "swa_ref.h"
#include "tune/tune.h"

static void setup(void)
{
    unsetenv("GDN_TUNE_RANDOM");
    gdn_test_fresh_cache_setup("tune-swa");
}

START_TEST(test_tune)
{
    static const struct gdn_tune_space *const sp[] = {
        &gdn__swa_fwd_space, &gdn__swa_rope_space, &gdn__swa_prep_space, &gdn__swa_dq_space,
        &gdn__swa_dkdv_space};
    char                 report[4096], *path;
    struct gdn_tune_db  *db = NULL;
    struct gdn_swa_shape s;
    size_t               i;

    GDN_TEST_OK(gdn__swa_tune(gdn_test_ctx, 64, 2.0, report, sizeof(report)));
    printf("%s", report);
    path = gdn__tune_db_default_path(gdn_test_ctx);
    ck_assert_ptr_nonnull(path);
    GDN_TEST_OK(gdn__tune_db_load(gdn_test_ctx, path, &db));
    memset(&s, 0, sizeof(s));
    s.D = 64, s.N = 1, s.Hq = s.Hkv = 2, s.T = 256, s.max_len = 256, s.W = s.window = 128;
    for (i = 0; i < sizeof(sp) / sizeof(sp[0]); i++) {
        const char *row = gdn__tune_db_get(db, sp[i]->stage, "D64");
        int32_t     vals[GDN_TUNE_MAX_PARAMS];
        char        err[256];
        int32_t     j;
        ck_assert_msg(row != NULL, "no user DB row for %s D64", sp[i]->stage);
        for (j = 0; j < sp[i]->n_params; j++)
            vals[j] = sp[i]->params[j].def;
        ck_assert_msg(gdn__tune_parse_values(sp[i], row, vals, err, sizeof(err)), "%s: %s",
                      sp[i]->stage, err);
        ck_assert_msg(sp[i]->valid(vals, &s, &gdn_test_ctx->dev), "%s: row %s is not valid",
                      sp[i]->stage, row);
    }
    gdn__tune_db_free(db);
    free(path);

    /* a fresh context reads the rows; forward + backward still correct */
    gdn_test_ctx_teardown();
    gdn_test_ctx_setup();
    {
        const int32_t        T = 300, Hq = 2, Hkv = 1, D = 64, W = 100;
        int32_t              off[2] = {0, T};
        struct swa_ref_shape rs;
        struct gdn_rng       rng;
        size_t               nq = (size_t)T * Hq * D, nk = (size_t)T * Hkv * D;
        double *q = calloc(nq, 8), *k = calloc(nk, 8), *v = calloc(nk, 8), *dout = calloc(nq, 8);
        double *o = calloc(nq, 8), *dq = calloc(nq, 8), *dk = calloc(nk, 8), *dv = calloc(nk, 8);
        int64_t        shq[3] = {T, Hq, D}, shk[3] = {T, Hkv, D};
        gdn_swa_params p;
        gdn_swa_args   a;
        gdn_swa_grads  g;
        gdn_swa_tape  *tape = NULL;
        enum gdn_tune_source src;
        int32_t        vals[GDN_TUNE_MAX_PARAMS];

        memset(&s, 0, sizeof(s));
        s.D = D, s.N = 1, s.Hq = Hq, s.Hkv = Hkv, s.T = T, s.max_len = T, s.W = s.window = W;
        gdn__tune_lookup(gdn_test_ctx, &gdn__swa_fwd_space, "D64", &s, vals, &src);
        ck_assert_int_eq(src, GDN_TUNE_SRC_USER_DB);
        gdn_rng_seed(&rng, 3);
        gdn_rng_fill_normal(&rng, q, nq, 1.0);
        gdn_rng_fill_normal(&rng, k, nk, 1.0);
        gdn_rng_fill_normal(&rng, v, nk, 1.0);
        gdn_rng_fill_normal(&rng, dout, nq, 1.0);
        memset(&rs, 0, sizeof(rs));
        rs.N = 1, rs.offsets = off, rs.Hq = Hq, rs.Hkv = Hkv, rs.D = D, rs.W = W;
        rs.scale = 1.0 / sqrt((double)D), rs.rope = 1, rs.base = 10000.0;
        swa_ref_forward(&rs, q, k, v, o, NULL);
        swa_ref_backward(&rs, q, k, v, dout, dq, dk, dv);
        gdn_tensor *tq = gdn_test_tensor(3, shq, q), *tk = gdn_test_tensor(3, shk, k);
        gdn_tensor *tv = gdn_test_tensor(3, shk, v), *tdo = gdn_test_tensor(3, shq, dout);
        gdn_tensor *to = gdn_test_tensor(3, shq, NULL), *tdq = gdn_test_tensor(3, shq, NULL);
        gdn_tensor *tdk = gdn_test_tensor(3, shk, NULL), *tdv = gdn_test_tensor(3, shk, NULL);
        gdn_swa_params_init(&p);
        p.window = W, p.flags = GDN_SWA_ROPE;
        memset(&a, 0, sizeof(a));
        a.q = tq, a.k = tk, a.v = tv, a.seq_offsets = off, a.n_seqs = 1;
        GDN_TEST_OK(gdn_swa_forward(gdn_test_ctx, &p, &a, to, NULL, &tape));
        gdn_test_expect(to, o, 2e-5, "o", "tuned plans");
        memset(&g, 0, sizeof(g));
        g.dq = tdq, g.dk = tdk, g.dv = tdv;
        GDN_TEST_OK(gdn_swa_backward(gdn_test_ctx, tape, tdo, &g));
        gdn_test_expect(tdq, dq, 1e-4, "dq", "tuned plans");
        gdn_test_expect(tdk, dk, 1e-4, "dk", "tuned plans");
        gdn_test_expect(tdv, dv, 1e-4, "dv", "tuned plans");
        gdn_swa_tape_destroy(tape);
        gdn_tensor_destroy(tq), gdn_tensor_destroy(tk), gdn_tensor_destroy(tv);
        gdn_tensor_destroy(tdo), gdn_tensor_destroy(to), gdn_tensor_destroy(tdq);
        gdn_tensor_destroy(tdk), gdn_tensor_destroy(tdv);
        free(q), free(k), free(v), free(dout), free(o), free(dq), free(dk), free(dv);
    }
    {
        char cmd[256];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", gdn_test_cache_dir);
        ck_assert_int_eq(system(cmd), 0);
    }
}
END_TEST

int main(void)
{
    Suite *s  = suite_create("swa_tune");
    TCase *tc = tcase_create("tune");
    tcase_add_checked_fixture(tc, setup, gdn_test_fresh_cache_teardown);
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, test_tune);
    suite_add_tcase(s, tc);
    return gdn_test_run(s, 1);
}
