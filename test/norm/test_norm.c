/*
 * test_norm.c - device suite of the norm and element-wise layer ops
 * (lib/ops/norm/) against the float64 references of norm_ref.c.
 *
 * Norm cases cover every type, 1- to 4-dim tensors, normalised sizes 1, 7,
 * 32, 64, 100, 128, 1000, 3000, 4096 and 8192, groups (gpd 2, 3, 4, 8, with
 * row counts whose fold pattern differs), with and without weight, eps 1e-6
 * and 1e-5, rows scaled by 1e-3 and 1e3, the in-place forms (y == x,
 * dx == dy), bit-identical dweight on a second run, and poisoned outputs.
 * Tolerances (relative RMS, fp32 vs float64): y 2e-5; dx, dweight, dgate
 * 1e-4. Element-wise: every activation on values spanning [-40, 40]
 * including softplus's threshold, forward 2e-5, backward 1e-4, and the
 * residual add (also in place). Argument checks name the bad argument.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gdn_test.h"
#include "norm_ref.h"

struct norm_case {
    int     type;
    int32_t ndim;
    int64_t shape[4];
    int32_t group; /* params.group_size (0: whole last dim) */
    int     has_w;
    double  eps;   /* 0: default */
    int     inplace;
};

static const struct norm_case norm_cases[] = {
    /* L2 (q/k norm of the GDN mixer) */
    {0, 3, {5, 3, 128}, 0, 0, 0, 0},
    {0, 2, {7, 1}, 0, 0, 0, 0},
    {0, 2, {9, 64}, 32, 0, 0, 1},
    {0, 2, {3, 4096}, 0, 0, 0, 0},
    /* RMS */
    {1, 4, {2, 17, 4, 64}, 0, 1, 0, 0},
    {1, 2, {33, 100}, 0, 1, 1e-5, 0},
    {1, 1, {1000}, 0, 1, 0, 0},
    {1, 2, {300, 7}, 0, 1, 0, 1},
    {1, 2, {10, 256}, 0, 0, 0, 0},
    {1, 2, {3, 4096}, 0, 1, 0, 0},
    {1, 2, {2, 8192}, 0, 1, 0, 0},
    {1, 2, {65, 96}, 32, 1, 0, 0},
    /* gated, norm before gate (GDN output norm [T, HV, V]) */
    {2, 3, {17, 4, 128}, 0, 1, 0, 0},
    {2, 4, {2, 9, 2, 64}, 0, 1, 1e-5, 1},
    {2, 2, {50, 7}, 0, 1, 0, 0},
    {2, 2, {3, 3000}, 0, 0, 0, 0},
    /* gate first (Mamba2 norm over groups) */
    {3, 2, {17, 512}, 128, 1, 0, 0},
    {3, 2, {5, 96}, 32, 1, 0, 1},
    {3, 3, {2, 3, 8192}, 1024, 1, 1e-5, 0},
    {3, 2, {4, 4096}, 0, 1, 0, 0},
    {3, 2, {40, 1}, 0, 1, 0, 0},
};

static size_t numel_of(const struct norm_case *c)
{
    size_t n = 1;
    for (int32_t i = 0; i < c->ndim; i++)
        n *= (size_t)c->shape[i];
    return n;
}

static double *dalloc(size_t n)
{
    double *x = calloc(n ? n : 1, sizeof(double));
    ck_assert_ptr_nonnull(x);
    return x;
}

START_TEST(test_norm_case)
{
    const struct norm_case *c = &norm_cases[_i];
    const size_t            n = numel_of(c);
    const int64_t           D = c->shape[c->ndim - 1];
    const int64_t           G = c->group ? c->group : D, gpd = D / G, rows = (int64_t)n / G;
    const int               gated = c->type == 2 || c->type == 3;
    const double            eps   = c->eps > 0 ? c->eps : 1e-6;
    struct gdn_rng          rng;
    double *x = dalloc(n), *g = dalloc(n), *dy = dalloc(n), *w = dalloc((size_t)D);
    double *y = dalloc(n), *dx = dalloc(n), *dg = dalloc(n), *dw = dalloc((size_t)D);
    gdn_tensor     *tx, *tg = NULL, *tw = NULL, *ty, *tdy, *tdx, *tdg = NULL, *tdw = NULL;
    gdn_norm_params prm;
    gdn_norm_args   args;
    gdn_norm_grads  grads;
    char            desc[160];
    double          e;

    snprintf(desc, sizeof(desc), "case %d: type %d numel %zu G %lld gpd %lld w %d inplace %d", _i,
             c->type, n, (long long)G, (long long)gpd, c->has_w, c->inplace);
    gdn_rng_seed(&rng, 77 + (uint64_t)_i);
    gdn_rng_fill_normal(&rng, x, n, 1.0);
    /* some rows tiny, some large: the norm must not care */
    for (int64_t r = 0; r < rows; r += 3)
        for (int64_t j = 0; j < G; j++)
            x[r * G + j] *= (r % 2) ? 1e3 : 1e-3;
    gdn_rng_fill_normal(&rng, g, n, 2.0);
    gdn_rng_fill_normal(&rng, dy, n, 1.0);
    for (int64_t j = 0; j < D; j++)
        w[j] = 1.0 + 0.2 * gdn_rng_normal(&rng);

    tx = gdn_test_tensor(c->ndim, c->shape, x);
    if (gated)
        tg = gdn_test_tensor(c->ndim, c->shape, g);
    if (c->has_w)
        tw = gdn_test_tensor(1, &D, w);

    gdn_norm_params_init(&prm);
    prm.type       = (gdn_norm_type)c->type;
    prm.eps        = (float)c->eps;
    prm.group_size = c->group;
    memset(&args, 0, sizeof(args));
    args.x      = tx;
    args.weight = tw;
    args.gate   = tg;

    /* forward */
    norm_ref_forward(c->type, eps, rows, G, gpd, x, c->has_w ? w : NULL, gated ? g : NULL, y);
    if (c->inplace) {
        gdn_tensor *tx2 = gdn_test_tensor(c->ndim, c->shape, x);
        gdn_norm_args a2 = args;
        a2.x             = tx2;
        GDN_TEST_OK(gdn_norm_forward(gdn_test_ctx, &prm, &a2, tx2));
        e = gdn_test_expect(tx2, y, 2e-5, "y (in place)", desc);
        gdn_tensor_destroy(tx2);
    }
    ty = gdn_test_tensor(c->ndim, c->shape, NULL);
    GDN_TEST_OK(gdn_norm_forward(gdn_test_ctx, &prm, &args, ty));
    e = gdn_test_expect(ty, y, 2e-5, "y", desc);
    printf("norm %-58s y %.2e", desc, e);

    /* backward */
    norm_ref_backward(c->type, eps, rows, G, gpd, x, c->has_w ? w : NULL, gated ? g : NULL, dy, dx,
                      c->has_w ? dw : NULL, gated ? dg : NULL);
    tdy = gdn_test_tensor(c->ndim, c->shape, dy);
    tdx = c->inplace ? tdy : gdn_test_tensor(c->ndim, c->shape, NULL);
    if (gated)
        tdg = gdn_test_tensor(c->ndim, c->shape, NULL);
    if (c->has_w)
        tdw = gdn_test_tensor(1, &D, NULL);
    memset(&grads, 0, sizeof(grads));
    grads.dx      = tdx;
    grads.dweight = tdw;
    grads.dgate   = tdg;
    GDN_TEST_OK(gdn_norm_backward(gdn_test_ctx, &prm, &args, tdy, &grads));
    printf(" dx %.2e", gdn_test_expect(tdx, dx, 1e-4, "dx", desc));
    if (tdg)
        printf(" dg %.2e", gdn_test_expect(tdg, dg, 1e-4, "dgate", desc));
    if (tdw) {
        float *first = gdn_test_read(tdw), *again;
        printf(" dw %.2e", gdn_test_expect(tdw, dw, 1e-4, "dweight", desc));
        /* dweight alone, second run: bit-identical (fixed reduction order) */
        if (!c->inplace) {
            gdn_norm_grads g2;
            memset(&g2, 0, sizeof(g2));
            g2.dweight = tdw;
            gdn_test_poison(tdw);
            GDN_TEST_OK(gdn_norm_backward(gdn_test_ctx, &prm, &args, tdy, &g2));
            again = gdn_test_read(tdw);
            ck_assert_msg(memcmp(first, again, (size_t)D * sizeof(float)) == 0,
                          "dweight differs between two runs [%s]", desc);
            free(again);
        }
        free(first);
    }
    printf("\n");

    gdn_tensor_destroy(tx), gdn_tensor_destroy(tg), gdn_tensor_destroy(tw);
    gdn_tensor_destroy(ty), gdn_tensor_destroy(tdy), gdn_tensor_destroy(tdg);
    gdn_tensor_destroy(tdw);
    if (!c->inplace)
        gdn_tensor_destroy(tdx);
    free(x), free(g), free(dy), free(w), free(y), free(dx), free(dg), free(dw);
}
END_TEST

/* The argument checks: each bad call fails with the right status and a
 * message naming the argument. */
START_TEST(test_norm_checks)
{
    const int64_t   s2[2] = {4, 64}, s1 = 64, s33 = 33;
    gdn_tensor     *x = gdn_test_tensor(2, s2, NULL), *y = gdn_test_tensor(2, s2, NULL);
    gdn_tensor     *w = gdn_test_tensor(1, &s1, NULL), *w33 = gdn_test_tensor(1, &s33, NULL);
    gdn_norm_params p;
    gdn_norm_args   a;
    gdn_status      st;

#define EXPECT(expr, status, word)                                                                 \
    do {                                                                                           \
        st = (expr);                                                                               \
        ck_assert_msg(st == (status), "%s -> %s", #expr, gdn_status_name(st));                     \
        ck_assert_msg(strstr(gdn_context_last_error(gdn_test_ctx), word) != NULL,                  \
                      "%s: message '%s' lacks '%s'", #expr,                                        \
                      gdn_context_last_error(gdn_test_ctx), word);                                 \
    } while (0)

    memset(&a, 0, sizeof(a));
    a.x = x;
    gdn_norm_params_init(&p);
    ck_assert_int_eq(p.type, GDN_NORM_RMS);
    p.type = (gdn_norm_type)7;
    EXPECT(gdn_norm_forward(gdn_test_ctx, &p, &a, y), GDN_STATUS_INVALID_ARGUMENT, "type");
    gdn_norm_params_init(&p);
    p.reserved[2] = 1;
    EXPECT(gdn_norm_forward(gdn_test_ctx, &p, &a, y), GDN_STATUS_INVALID_ARGUMENT, "reserved");
    gdn_norm_params_init(&p);
    p.eps = -1.0f;
    EXPECT(gdn_norm_forward(gdn_test_ctx, &p, &a, y), GDN_STATUS_INVALID_ARGUMENT, "eps");
    gdn_norm_params_init(&p);
    p.group_size = 48;
    EXPECT(gdn_norm_forward(gdn_test_ctx, &p, &a, y), GDN_STATUS_SHAPE_MISMATCH, "group_size");
    gdn_norm_params_init(&p);
    p.type = GDN_NORM_L2;
    a.weight = w;
    EXPECT(gdn_norm_forward(gdn_test_ctx, &p, &a, y), GDN_STATUS_INVALID_ARGUMENT, "weight");
    p.type = GDN_NORM_RMS;
    a.weight = w33;
    EXPECT(gdn_norm_forward(gdn_test_ctx, &p, &a, y), GDN_STATUS_SHAPE_MISMATCH, "weight");
    a.weight = w;
    p.type   = GDN_NORM_RMS_GATED;
    EXPECT(gdn_norm_forward(gdn_test_ctx, &p, &a, y), GDN_STATUS_INVALID_ARGUMENT, "gate");
    p.type = GDN_NORM_RMS;
    a.gate = y;
    EXPECT(gdn_norm_forward(gdn_test_ctx, &p, &a, y), GDN_STATUS_INVALID_ARGUMENT, "gate");
    a.gate = NULL;
    EXPECT(gdn_norm_forward(gdn_test_ctx, &p, &a, w), GDN_STATUS_SHAPE_MISMATCH, "y");
    EXPECT(gdn_norm_forward(gdn_test_ctx, &p, &a, NULL), GDN_STATUS_INVALID_ARGUMENT, "y");
    {
        gdn_norm_grads gr;
        memset(&gr, 0, sizeof(gr));
        gr.dweight = w33;
        EXPECT(gdn_norm_backward(gdn_test_ctx, &p, &a, y, &gr), GDN_STATUS_SHAPE_MISMATCH,
               "dweight");
        gr.dweight = NULL;
        gr.dx      = x;
        EXPECT(gdn_norm_backward(gdn_test_ctx, &p, &a, y, &gr), GDN_STATUS_INVALID_ARGUMENT,
               "alias");
        gr.dx    = y;
        gr.dgate = w;
        EXPECT(gdn_norm_backward(gdn_test_ctx, &p, &a, y, &gr), GDN_STATUS_INVALID_ARGUMENT,
               "dgate");
    }
    {
        const int64_t big[2] = {1, 16384};
        gdn_tensor   *xb     = gdn_test_tensor(2, big, NULL);
        a.x                  = xb;
        a.weight             = NULL;
        EXPECT(gdn_norm_forward(gdn_test_ctx, &p, &a, xb), GDN_STATUS_UNSUPPORTED, "8192");
        gdn_tensor_destroy(xb);
    }
    {
        /* empty tensors: no-op; dweight of nothing is zero */
        const int64_t e2[2] = {0, 64};
        gdn_tensor   *xe = gdn_test_tensor(2, e2, NULL), *dw = gdn_test_tensor(1, &s1, NULL);
        gdn_tensor   *de = gdn_test_tensor(2, e2, NULL);
        gdn_norm_grads gr;
        float         *h;
        memset(&gr, 0, sizeof(gr));
        gr.dweight = dw;
        gr.dx      = de;
        a.x        = xe;
        a.weight   = w;
        gdn_norm_params_init(&p);
        GDN_TEST_OK(gdn_norm_forward(gdn_test_ctx, &p, &a, xe));
        GDN_TEST_OK(gdn_norm_backward(gdn_test_ctx, &p, &a, xe, &gr));
        h = gdn_test_read(dw);
        for (int i = 0; i < 64; i++)
            ck_assert_msg(h[i] == 0.0f, "dweight of an empty x must be 0");
        free(h);
        gdn_tensor_destroy(xe), gdn_tensor_destroy(dw), gdn_tensor_destroy(de);
    }
#undef EXPECT
    gdn_tensor_destroy(x), gdn_tensor_destroy(y), gdn_tensor_destroy(w), gdn_tensor_destroy(w33);
}
END_TEST

/* Activations and residual add over n values (n = 1003: not a multiple of
 * 4, so the scalar tail runs). */
START_TEST(test_elementwise)
{
    const int64_t  n = 1003;
    double        *x = dalloc((size_t)n), *dy = dalloc((size_t)n), *r = dalloc((size_t)n);
    struct gdn_rng rng;
    static const double special[] = {0.0, 20.0, 19.999, 20.001, -20.0, 40.0, -40.0, 1e-7, -88.0, 88.0};
    char           desc[64];

    gdn_rng_seed(&rng, 5);
    gdn_rng_fill_uniform(&rng, x, (size_t)n, -30.0, 30.0);
    for (size_t i = 0; i < sizeof(special) / sizeof(special[0]); i++)
        x[i * 97] = special[i];
    gdn_rng_fill_normal(&rng, dy, (size_t)n, 1.0);
    for (int act = 0; act < 3; act++) {
        gdn_tensor *tx = gdn_test_tensor(1, &n, x), *ty = gdn_test_tensor(1, &n, NULL);
        gdn_tensor *tdy = gdn_test_tensor(1, &n, dy), *tdx = gdn_test_tensor(1, &n, NULL);
        double      ef, eb, ei;
        snprintf(desc, sizeof(desc), "activation %d", act);
        for (int64_t i = 0; i < n; i++)
            r[i] = act_ref(act, x[i]);
        GDN_TEST_OK(gdn_activation_forward(gdn_test_ctx, (gdn_activation)act, tx, ty));
        ef = gdn_test_expect(ty, r, 2e-5, "y", desc);
        for (int64_t i = 0; i < n; i++)
            r[i] = dy[i] * act_ref_grad(act, x[i]);
        GDN_TEST_OK(gdn_activation_backward(gdn_test_ctx, (gdn_activation)act, tx, tdy, tdx));
        eb = gdn_test_expect(tdx, r, 1e-4, "dx", desc);
        /* in place: dx into dy, then y into x */
        GDN_TEST_OK(gdn_activation_backward(gdn_test_ctx, (gdn_activation)act, tx, tdy, tdy));
        ei = gdn_test_expect(tdy, r, 1e-4, "dx (in place)", desc);
        for (int64_t i = 0; i < n; i++)
            r[i] = act_ref(act, x[i]);
        GDN_TEST_OK(gdn_activation_forward(gdn_test_ctx, (gdn_activation)act, tx, tx));
        gdn_test_expect(tx, r, 2e-5, "y (in place)", desc);
        printf("%s: y %.2e dx %.2e dx in place %.2e\n", desc, ef, eb, ei);
        gdn_tensor_destroy(tx), gdn_tensor_destroy(ty), gdn_tensor_destroy(tdy);
        gdn_tensor_destroy(tdx);
    }
    {
        gdn_tensor *ta = gdn_test_tensor(1, &n, x), *tb = gdn_test_tensor(1, &n, dy);
        gdn_tensor *ty = gdn_test_tensor(1, &n, NULL);
        for (int64_t i = 0; i < n; i++)
            r[i] = x[i] + dy[i];
        GDN_TEST_OK(gdn_residual_add(gdn_test_ctx, ta, tb, ty));
        gdn_test_expect(ty, r, 1e-7, "a + b", "residual add");
        GDN_TEST_OK(gdn_residual_add(gdn_test_ctx, ta, tb, ta));
        gdn_test_expect(ta, r, 1e-7, "a += b", "residual add");
        ck_assert_int_eq(gdn_residual_add(gdn_test_ctx, ta, NULL, ta), GDN_STATUS_INVALID_ARGUMENT);
        ck_assert_int_eq(gdn_activation_forward(gdn_test_ctx, (gdn_activation)9, ta, ta),
                         GDN_STATUS_INVALID_ARGUMENT);
        ck_assert_int_eq(gdn_activation_backward(gdn_test_ctx, GDN_ACTIVATION_SILU, ta, tb, ta),
                         GDN_STATUS_INVALID_ARGUMENT);
        gdn_tensor_destroy(ta), gdn_tensor_destroy(tb), gdn_tensor_destroy(ty);
    }
    {
        /* small sizes: 1..5 elements (tail only, one quad plus tail) */
        for (int64_t m = 1; m <= 5; m++) {
            gdn_tensor *tx = gdn_test_tensor(1, &m, x), *ty = gdn_test_tensor(1, &m, NULL);
            for (int64_t i = 0; i < m; i++)
                r[i] = act_ref(0, x[i]);
            GDN_TEST_OK(gdn_activation_forward(gdn_test_ctx, GDN_ACTIVATION_SILU, tx, ty));
            gdn_test_expect(ty, r, 2e-5, "y", "silu, tiny n");
            gdn_tensor_destroy(tx), gdn_tensor_destroy(ty);
        }
    }
    free(x), free(dy), free(r);
}
END_TEST

int main(void)
{
    Suite *s  = suite_create("norm");
    TCase *tc = tcase_create("norm");
    TCase *te = tcase_create("elementwise");

    gdn_test_add_ctx_fixture(tc, 600);
    tcase_add_loop_test(tc, test_norm_case, 0, (int)(sizeof(norm_cases) / sizeof(norm_cases[0])));
    tcase_add_test(tc, test_norm_checks);
    suite_add_tcase(s, tc);
    gdn_test_add_ctx_fixture(te, 300);
    tcase_add_test(te, test_elementwise);
    suite_add_tcase(s, te);
    return gdn_test_run(s, 1);
}
