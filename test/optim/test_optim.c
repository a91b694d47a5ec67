/*
 * test_optim.c - device suite of the optimizer (lib/model/optim/optim.c,
 * cl/optim/optim.cl) against float64 references.
 *
 * AdamW: sizes 1, 7, 1000 (param shaped [10, 100], grad [1000]: only numel
 * matters) and 100003, weight decay 0 and 0.1, grad_scale 0.37, six steps
 * with the learning rate of gdn__lr_schedule (warm-up, cosine), gradients
 * of mixed magnitudes including exact zeros; p, m and v within 1e-6
 * relative RMS of a float64 reference (fed the same float inputs and float
 * hyper-parameters) and every element within 1e-5 of the reference RMS.
 * Two runs from the same state give the same bits.
 * sumsq: tensors of 1, 7, 0, 1000, 100003 and 4099 elements against a
 * float64 sum (2e-6 relative), same bits twice, NaN and inf propagate, huge
 * values overflow to non-finite, a NaN-poisoned scratch pool is ignored.
 * scale: exact float products, s = 0 gives +0 over NaN and inf.
 * Bad inputs: status and a message naming the argument.
 * lr schedule: warm-up start and end, cosine start, middle and end, after
 * the end, no warm-up, total <= warmup.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gdn_test.h"
#include "optim.h"

static double *dalloc(size_t n)
{
    double *x = calloc(n ? n : 1, sizeof(double));
    ck_assert_ptr_nonnull(x);
    return x;
}

/* Round to float and back (the values the device sees). */
static void round_f32(double *x, size_t n)
{
    for (size_t i = 0; i < n; i++)
        x[i] = (double)(float)x[i];
}

/* rel_rms <= tol (harness) and max |got - ref| <= 10 tol * rms(ref). */
static double expect_close(const gdn_tensor *t, const double *ref, double tol, const char *what,
                           const char *desc)
{
    const size_t n   = (size_t)gdn_tensor_numel(t);
    float       *got = gdn_test_read(t);
    double       rms = 0;

    for (size_t i = 0; i < n; i++)
        rms += ref[i] * ref[i];
    rms = n ? sqrt(rms / (double)n) : 0;
    for (size_t i = 0; i < n; i++) {
        const double d = fabs((double)got[i] - ref[i]);
        if (!(d <= 10 * tol * (rms > 0 ? rms : 1)))
            ck_abort_msg("%s [%s]: element %zu is %.9g, reference %.9g (rms %.3g)", what, desc,
                         i, (double)got[i], ref[i], rms);
    }
    free(got);
    return gdn_test_expect(t, ref, tol, what, desc);
}

/* ------------------------------------------------------------------ AdamW */

struct adamw_case {
    int64_t n;
    float   wd;
};

static const struct adamw_case adamw_cases[] = {
    {1, 0.0f},    {1, 0.1f},    {7, 0.0f},      {7, 0.1f},
    {1000, 0.0f}, {1000, 0.1f}, {100003, 0.0f}, {100003, 0.1f},
};

#define ADAMW_STEPS 6

static void adamw_hp_of(int t, float wd, struct gdn__adamw_hp *hp)
{
    hp->lr           = (float)gdn__lr_schedule(t - 1, 2, ADAMW_STEPS, 1e-2, 0.1);
    hp->beta1        = 0.9f;
    hp->beta2        = 0.95f;
    hp->eps          = 1e-8f;
    hp->weight_decay = wd;
    hp->grad_scale   = 0.37f;
    hp->step         = t;
}

/* Gradients of step t: normal with a per-element magnitude from 1e-4 to 10,
 * every 13th element exactly 0 (v = 0 there at step 1: update 0 / eps). */
static void adamw_grad(int64_t n, int t, double *g)
{
    struct gdn_rng rng;
    gdn_rng_seed(&rng, 1000 + (uint64_t)t * 7 + (uint64_t)n);
    for (int64_t i = 0; i < n; i++) {
        const double mag = pow(10.0, (double)(i % 6) - 4.0 + (i % 5 == 0 ? 1.0 : 0.0));
        g[i]             = i % 13 == 12 ? 0.0 : mag * gdn_rng_normal(&rng);
    }
    round_f32(g, (size_t)n);
}

/* One step of the float64 reference (the formula of optim.h, double
 * throughout, from the float hyper-parameters). */
static void adamw_ref(int64_t n, double *p, const double *grad, double *m, double *v,
                      const struct gdn__adamw_hp *hp)
{
    const double lr = hp->lr, b1 = hp->beta1, b2 = hp->beta2, eps = hp->eps;
    const double wd = hp->weight_decay, gs = hp->grad_scale;
    const double bc1 = 1.0 - pow(b1, (double)hp->step), bc2 = 1.0 - pow(b2, (double)hp->step);
    for (int64_t i = 0; i < n; i++) {
        const double g = grad[i] * gs;
        p[i] -= lr * wd * p[i];
        m[i] = b1 * m[i] + (1.0 - b1) * g;
        v[i] = b2 * v[i] + (1.0 - b2) * g * g;
        p[i] -= lr * (m[i] / bc1) / (sqrt(v[i] / bc2) + eps);
    }
}

START_TEST(test_adamw)
{
    const struct adamw_case *c = &adamw_cases[_i];
    const int64_t            n = c->n, pshape[2] = {10, 100};
    double *p = dalloc((size_t)n), *m = dalloc((size_t)n), *v = dalloc((size_t)n);
    double *g = dalloc((size_t)n), *p0;
    gdn_tensor *tp, *tg, *tm, *tv;
    struct gdn_rng rng;
    char           desc[96];
    double         ep, em, ev;

    snprintf(desc, sizeof(desc), "n %lld wd %g", (long long)n, (double)c->wd);
    gdn_rng_seed(&rng, 3 + (uint64_t)n);
    gdn_rng_fill_normal(&rng, p, (size_t)n, 1.0);
    round_f32(p, (size_t)n);
    p0 = dalloc((size_t)n);
    memcpy(p0, p, (size_t)n * sizeof(double));
    tp = n == 1000 ? gdn_test_tensor(2, pshape, p) : gdn_test_tensor(1, &n, p);
    tm = gdn_test_tensor(1, &n, m);
    tv = gdn_test_tensor(1, &n, v);
    tg = gdn_test_tensor(1, &n, NULL);
    for (int t = 1; t <= ADAMW_STEPS; t++) {
        struct gdn__adamw_hp hp;
        float               *gf = malloc((size_t)n * sizeof(float));
        ck_assert_ptr_nonnull(gf);
        adamw_hp_of(t, c->wd, &hp);
        adamw_grad(n, t, g);
        for (int64_t i = 0; i < n; i++)
            gf[i] = (float)g[i];
        GDN_TEST_OK(gdn_tensor_write(tg, gf, 0, (size_t)n * sizeof(float)));
        free(gf);
        GDN_TEST_OK(gdn__adamw_step(gdn_test_ctx, tp, tg, tm, tv, &hp));
        adamw_ref(n, p, g, m, v, &hp);
    }
    ep = expect_close(tp, p, 1e-6, "param", desc);
    em = expect_close(tm, m, 1e-6, "m", desc);
    ev = expect_close(tv, v, 1e-6, "v", desc);
    printf("adamw %-22s p %.2e m %.2e v %.2e\n", desc, ep, em, ev);
    {
        /* the parameters moved (the test is not vacuous) */
        float *got = gdn_test_read(tp);
        int    moved = 0;
        for (int64_t i = 0; i < n; i++)
            moved += (double)got[i] != p0[i];
        ck_assert_msg(moved > 0, "no parameter changed [%s]", desc);
        free(got);
    }
    gdn_tensor_destroy(tp), gdn_tensor_destroy(tg), gdn_tensor_destroy(tm);
    gdn_tensor_destroy(tv);
    free(p), free(m), free(v), free(g), free(p0);
}
END_TEST

/* Two runs from the same state: the same bits in p, m and v. */
START_TEST(test_adamw_deterministic)
{
    const int64_t n = 100003;
    double       *p = dalloc((size_t)n), *z = dalloc((size_t)n), *g = dalloc((size_t)n);
    float        *out[2][3];
    struct gdn_rng rng;

    gdn_rng_seed(&rng, 11);
    gdn_rng_fill_normal(&rng, p, (size_t)n, 1.0);
    for (int run = 0; run < 2; run++) {
        gdn_tensor *tp = gdn_test_tensor(1, &n, p), *tm = gdn_test_tensor(1, &n, z);
        gdn_tensor *tv = gdn_test_tensor(1, &n, z), *tg;
        for (int t = 1; t <= 3; t++) {
            struct gdn__adamw_hp hp;
            adamw_hp_of(t, 0.1f, &hp);
            adamw_grad(n, t, g);
            tg = gdn_test_tensor(1, &n, g);
            GDN_TEST_OK(gdn__adamw_step(gdn_test_ctx, tp, tg, tm, tv, &hp));
            gdn_tensor_destroy(tg);
        }
        out[run][0] = gdn_test_read(tp);
        out[run][1] = gdn_test_read(tm);
        out[run][2] = gdn_test_read(tv);
        gdn_tensor_destroy(tp), gdn_tensor_destroy(tm), gdn_tensor_destroy(tv);
    }
    for (int j = 0; j < 3; j++) {
        ck_assert_msg(memcmp(out[0][j], out[1][j], (size_t)n * sizeof(float)) == 0,
                      "AdamW run 2 differs from run 1 (tensor %d of p, m, v)", j);
        free(out[0][j]), free(out[1][j]);
    }
    free(p), free(z), free(g);
}
END_TEST

/* An empty tensor is a no-op; step 1 from zero m and v with weight decay 0
 * moves each parameter by lr * sign(g) (|m / sqrt(v)| = 1 after bias
 * correction) up to eps. */
START_TEST(test_adamw_edges)
{
    const int64_t        n = 9, zero = 0;
    double               p[9], z[9] = {0}, g[9];
    gdn_tensor          *tp, *tg, *tm, *tv;
    struct gdn__adamw_hp hp;
    float               *got;

    for (int i = 0; i < 9; i++) {
        p[i] = 0.5 * i - 2;
        g[i] = (i % 2 ? 1.0 : -1.0) * pow(10.0, i - 4);
    }
    tp = gdn_test_tensor(1, &n, p), tg = gdn_test_tensor(1, &n, g);
    tm = gdn_test_tensor(1, &n, z), tv = gdn_test_tensor(1, &n, z);
    adamw_hp_of(1, 0.0f, &hp);
    hp.lr         = 1e-3f;
    hp.grad_scale = 1.0f;
    GDN_TEST_OK(gdn__adamw_step(gdn_test_ctx, tp, tg, tm, tv, &hp));
    got = gdn_test_read(tp);
    for (int i = 0; i < 9; i++)
        ck_assert_msg(fabs((double)got[i] - (p[i] - 1e-3 * (g[i] > 0 ? 1 : -1))) < 1e-6,
                      "first step of element %d: %.9g", i, (double)got[i]);
    free(got);
    {
        gdn_tensor *e[4];
        for (int j = 0; j < 4; j++)
            e[j] = gdn_test_tensor(1, &zero, NULL);
        GDN_TEST_OK(gdn__adamw_step(gdn_test_ctx, e[0], e[1], e[2], e[3], &hp));
        for (int j = 0; j < 4; j++)
            gdn_tensor_destroy(e[j]);
    }
    gdn_tensor_destroy(tp), gdn_tensor_destroy(tg), gdn_tensor_destroy(tm);
    gdn_tensor_destroy(tv);
}
END_TEST

/* ------------------------------------------------------------------ sumsq */

START_TEST(test_sumsq)
{
    static const int64_t sizes[] = {1, 7, 0, 1000, 100003, 4099};
    enum { NT = sizeof(sizes) / sizeof(sizes[0]) };
    gdn_tensor          *ts[NT];
    double               ref = 0, got = 0, again = 0, sub;
    struct gdn_rng       rng;

    gdn_rng_seed(&rng, 21);
    for (int i = 0; i < NT; i++) {
        double *x = dalloc((size_t)sizes[i]);
        gdn_rng_fill_normal(&rng, x, (size_t)sizes[i], i == 3 ? 100.0 : 1.0);
        round_f32(x, (size_t)sizes[i]);
        for (int64_t j = 0; j < sizes[i]; j++)
            ref += x[j] * x[j];
        ts[i] = gdn_test_tensor(1, &sizes[i], x);
        free(x);
    }
    {
        /* a scratch pool full of NaN: every partial must be written */
        cl_mem junk[3];
        for (int j = 0; j < 3; j++) {
            GDN_TEST_OK(gdn__scratch_acquire(gdn_test_ctx, (size_t)4096 << j, &junk[j]));
            GDN_TEST_OK(gdn__fill_f32(gdn_test_ctx, junk[j], (size_t)1024 << j, NAN));
        }
        for (int j = 0; j < 3; j++)
            gdn__scratch_release(gdn_test_ctx, junk[j]);
    }
    GDN_TEST_OK(gdn__sumsq(gdn_test_ctx, (const gdn_tensor *const *)ts, NT, &got));
    GDN_TEST_OK(gdn__sumsq(gdn_test_ctx, (const gdn_tensor *const *)ts, NT, &again));
    printf("sumsq: %.17g reference %.17g rel %.2e\n", got, ref, fabs(got - ref) / ref);
    ck_assert_msg(fabs(got - ref) <= 2e-6 * ref, "sumsq %.17g, reference %.17g", got, ref);
    ck_assert_msg(memcmp(&got, &again, sizeof(got)) == 0, "sumsq differs between runs");
    /* one tensor alone, and no tensors */
    GDN_TEST_OK(gdn__sumsq(gdn_test_ctx, (const gdn_tensor *const *)&ts[1], 1, &sub));
    ck_assert(sub > 0 && sub < got);
    GDN_TEST_OK(gdn__sumsq(gdn_test_ctx, NULL, 0, &sub));
    ck_assert(sub == 0.0);
    GDN_TEST_OK(gdn__sumsq(gdn_test_ctx, (const gdn_tensor *const *)&ts[2], 1, &sub));
    ck_assert(sub == 0.0);

    /* non-finite values propagate, wherever they are (quad or tail) */
    {
        static const int64_t at[] = {0, 50000, 100002};
        static const float   bad[] = {NAN, INFINITY, -INFINITY, 1e20f};
        for (size_t a = 0; a < sizeof(at) / sizeof(at[0]); a++)
            for (size_t b = 0; b < sizeof(bad) / sizeof(bad[0]); b++) {
                float keep;
                GDN_TEST_OK(gdn_tensor_read(ts[4], &keep, (size_t)at[a] * 4, 4));
                GDN_TEST_OK(gdn_tensor_write(ts[4], &bad[b], (size_t)at[a] * 4, 4));
                GDN_TEST_OK(gdn__sumsq(gdn_test_ctx, (const gdn_tensor *const *)ts, NT, &sub));
                ck_assert_msg(!isfinite(sub), "sumsq with %g at %lld is finite: %g",
                              (double)bad[b], (long long)at[a], sub);
                if (isnan(bad[b]))
                    ck_assert_msg(isnan(sub), "sumsq with NaN is %g", sub);
                GDN_TEST_OK(gdn_tensor_write(ts[4], &keep, (size_t)at[a] * 4, 4));
            }
        GDN_TEST_OK(gdn__sumsq(gdn_test_ctx, (const gdn_tensor *const *)ts, NT, &sub));
        ck_assert_msg(memcmp(&got, &sub, sizeof(got)) == 0, "sumsq after restoring differs");
    }
    for (int i = 0; i < NT; i++)
        gdn_tensor_destroy(ts[i]);
}
END_TEST

/* ------------------------------------------------------------------ scale */

START_TEST(test_scale)
{
    const int64_t n = 1031;
    double       *x = dalloc((size_t)n);
    gdn_tensor   *t;
    float        *got;
    float         xf[1031];

    for (int64_t i = 0; i < n; i++)
        x[i] = (double)(float)(0.001 * (double)(i * i % 977) - 0.3);
    x[3]    = NAN;
    x[1030] = INFINITY;
    x[500]  = -INFINITY;
    t       = gdn_test_tensor(1, &n, x);
    for (int64_t i = 0; i < n; i++)
        xf[i] = (float)x[i];
    GDN_TEST_OK(gdn__scale_f32(gdn_test_ctx, t, 1.0f));
    GDN_TEST_OK(gdn__scale_f32(gdn_test_ctx, t, -2.75f));
    got = gdn_test_read(t);
    for (int64_t i = 0; i < n; i++) {
        const float want = xf[i] * -2.75f;
        ck_assert_msg(memcmp(&got[i], &want, 4) == 0 || (isnan(want) && isnan(got[i])),
                      "scale: element %lld is %g, want %g", (long long)i, (double)got[i],
                      (double)want);
    }
    free(got);
    GDN_TEST_OK(gdn__scale_f32(gdn_test_ctx, t, 0.0f));
    got = gdn_test_read(t);
    for (int64_t i = 0; i < n; i++)
        ck_assert_msg(got[i] == 0.0f && !signbit(got[i]), "scale by 0: element %lld is %g",
                      (long long)i, (double)got[i]);
    free(got);
    gdn_tensor_destroy(t);
    free(x);
}
END_TEST

/* ------------------------------------------------------------------ checks */

START_TEST(test_checks)
{
    const int64_t        n = 16, n2 = 17;
    gdn_tensor          *p = gdn_test_tensor(1, &n, NULL), *g = gdn_test_tensor(1, &n, NULL);
    gdn_tensor          *m = gdn_test_tensor(1, &n, NULL), *v = gdn_test_tensor(1, &n, NULL);
    gdn_tensor          *m17 = gdn_test_tensor(1, &n2, NULL), *h16 = NULL, *i32 = NULL;
    gdn_tensor          *other = NULL;
    gdn_context         *ctx2  = NULL;
    struct gdn__adamw_hp hp, ok;
    gdn_status           st;
    double               out = 0;

    GDN_TEST_OK(gdn_tensor_create(gdn_test_ctx, GDN_DTYPE_F16, 1, &n, &h16));
    GDN_TEST_OK(gdn_tensor_create(gdn_test_ctx, GDN_DTYPE_I32, 1, &n, &i32));
    GDN_TEST_OK(gdn_context_create(NULL, &ctx2));
    GDN_TEST_OK(gdn_tensor_create(ctx2, GDN_DTYPE_F32, 1, &n, &other));
    adamw_hp_of(1, 0.1f, &ok);

#define EXPECT(expr, status, word)                                                                 \
    do {                                                                                           \
        st = (expr);                                                                               \
        ck_assert_msg(st == (status), "%s -> %s", #expr, gdn_status_name(st));                     \
        ck_assert_msg(strstr(gdn_context_last_error(gdn_test_ctx), word) != NULL,                  \
                      "%s: message '%s' lacks '%s'", #expr,                                        \
                      gdn_context_last_error(gdn_test_ctx), word);                                 \
    } while (0)
#define ADAMW(P, G, M, V, HP) gdn__adamw_step(gdn_test_ctx, P, G, M, V, HP)

    ck_assert_int_eq(gdn__adamw_step(NULL, p, g, m, v, &ok), GDN_STATUS_INVALID_ARGUMENT);
    EXPECT(ADAMW(NULL, g, m, v, &ok), GDN_STATUS_INVALID_ARGUMENT, "param");
    EXPECT(ADAMW(p, NULL, m, v, &ok), GDN_STATUS_INVALID_ARGUMENT, "grad");
    EXPECT(ADAMW(p, g, NULL, v, &ok), GDN_STATUS_INVALID_ARGUMENT, "m is NULL");
    EXPECT(ADAMW(p, g, m, NULL, &ok), GDN_STATUS_INVALID_ARGUMENT, "v is NULL");
    EXPECT(ADAMW(p, g, m, v, NULL), GDN_STATUS_INVALID_ARGUMENT, "hp");
    EXPECT(ADAMW(p, h16, m, v, &ok), GDN_STATUS_SHAPE_MISMATCH, "grad must be F32");
    EXPECT(ADAMW(p, g, m, i32, &ok), GDN_STATUS_SHAPE_MISMATCH, "v must be F32");
    EXPECT(ADAMW(p, g, m17, v, &ok), GDN_STATUS_SHAPE_MISMATCH, "m has 17");
    EXPECT(ADAMW(other, g, m, v, &ok), GDN_STATUS_INVALID_ARGUMENT, "another context");
    EXPECT(ADAMW(p, g, p, v, &ok), GDN_STATUS_INVALID_ARGUMENT, "alias");
    EXPECT(ADAMW(p, g, m, g, &ok), GDN_STATUS_INVALID_ARGUMENT, "alias");
    EXPECT(ADAMW(p, g, m, m, &ok), GDN_STATUS_INVALID_ARGUMENT, "alias");
#define BAD_HP(field, value, word)                                                                 \
    do {                                                                                           \
        hp       = ok;                                                                             \
        hp.field = value;                                                                          \
        EXPECT(ADAMW(p, g, m, v, &hp), GDN_STATUS_INVALID_ARGUMENT, word);                         \
    } while (0)
    BAD_HP(lr, NAN, "lr");
    BAD_HP(lr, INFINITY, "lr");
    BAD_HP(lr, -1e-3f, "lr");
    BAD_HP(beta1, 1.0f, "beta1");
    BAD_HP(beta1, -0.1f, "beta1");
    BAD_HP(beta1, NAN, "beta1");
    BAD_HP(beta2, 1.5f, "beta2");
    BAD_HP(beta2, NAN, "beta2");
    BAD_HP(eps, 0.0f, "eps");
    BAD_HP(eps, -1e-8f, "eps");
    BAD_HP(eps, INFINITY, "eps");
    BAD_HP(weight_decay, -0.1f, "weight_decay");
    BAD_HP(weight_decay, NAN, "weight_decay");
    BAD_HP(grad_scale, INFINITY, "grad_scale");
    BAD_HP(grad_scale, -1.0f, "grad_scale");
    BAD_HP(step, 0, "step");
    BAD_HP(step, -5, "step");
#undef BAD_HP
    /* nothing was written by the failed calls: p is still all NaN */
    {
        float *h = gdn_test_read(p);
        for (int i = 0; i < 16; i++)
            ck_assert(isnan(h[i]));
        free(h);
    }

    {
        const gdn_tensor *ts[3] = {p, NULL, g};
        ck_assert_int_eq(gdn__sumsq(NULL, ts, 1, &out), GDN_STATUS_INVALID_ARGUMENT);
        ck_assert(isnan(out));
        EXPECT(gdn__sumsq(gdn_test_ctx, ts, 1, NULL), GDN_STATUS_INVALID_ARGUMENT, "out");
        EXPECT(gdn__sumsq(gdn_test_ctx, NULL, 2, &out), GDN_STATUS_INVALID_ARGUMENT, "ts is NULL");
        out = 0;
        EXPECT(gdn__sumsq(gdn_test_ctx, ts, 3, &out), GDN_STATUS_INVALID_ARGUMENT, "ts[1]");
        ck_assert(isnan(out));
        ts[1] = h16;
        EXPECT(gdn__sumsq(gdn_test_ctx, ts, 3, &out), GDN_STATUS_SHAPE_MISMATCH, "ts[1]");
        ts[1] = other;
        EXPECT(gdn__sumsq(gdn_test_ctx, ts, 3, &out), GDN_STATUS_INVALID_ARGUMENT,
               "another context");
    }

    ck_assert_int_eq(gdn__scale_f32(NULL, p, 2.0f), GDN_STATUS_INVALID_ARGUMENT);
    EXPECT(gdn__scale_f32(gdn_test_ctx, NULL, 2.0f), GDN_STATUS_INVALID_ARGUMENT, "t is NULL");
    EXPECT(gdn__scale_f32(gdn_test_ctx, h16, 2.0f), GDN_STATUS_SHAPE_MISMATCH, "F32");
    EXPECT(gdn__scale_f32(gdn_test_ctx, other, 2.0f), GDN_STATUS_INVALID_ARGUMENT,
           "another context");
    EXPECT(gdn__scale_f32(gdn_test_ctx, p, NAN), GDN_STATUS_INVALID_ARGUMENT, "finite");
    EXPECT(gdn__scale_f32(gdn_test_ctx, p, INFINITY), GDN_STATUS_INVALID_ARGUMENT, "finite");
#undef ADAMW
#undef EXPECT

    gdn_tensor_destroy(p), gdn_tensor_destroy(g), gdn_tensor_destroy(m), gdn_tensor_destroy(v);
    gdn_tensor_destroy(m17), gdn_tensor_destroy(h16), gdn_tensor_destroy(i32);
    gdn_tensor_destroy(other);
    gdn_context_destroy(ctx2);
}
END_TEST

/* ------------------------------------------------------------------ schedule */

static void expect_lr(int64_t step, int64_t warmup, int64_t total, double want)
{
    const double got = gdn__lr_schedule(step, warmup, total, 1e-3, 0.1);
    ck_assert_msg(fabs(got - want) <= 1e-15, "lr(step %lld, warmup %lld, total %lld) = %.17g, want %.17g",
                  (long long)step, (long long)warmup, (long long)total, got, want);
}

START_TEST(test_lr_schedule)
{
    /* warm-up 10, cosine over steps 10 .. 110 (total 111): 100 steps */
    expect_lr(0, 10, 111, 1e-4);
    expect_lr(4, 10, 111, 5e-4);
    expect_lr(9, 10, 111, 1e-3);
    expect_lr(10, 10, 111, 1e-3);
    expect_lr(35, 10, 111, 1e-4 + 9e-4 * 0.5 * (1 + cos(3.14159265358979323846 * 0.25)));
    expect_lr(60, 10, 111, 5.5e-4);
    expect_lr(110, 10, 111, 1e-4);
    expect_lr(111, 10, 111, 1e-4);
    expect_lr(100000, 10, 111, 1e-4);
    /* no warm-up */
    expect_lr(0, 0, 101, 1e-3);
    expect_lr(50, 0, 101, 5.5e-4);
    expect_lr(100, 0, 101, 1e-4);
    expect_lr(-3, 0, 101, 1e-3);
    /* total <= warmup + 1: constant peak after warm-up */
    expect_lr(3, 10, 5, 4e-4);
    expect_lr(20, 10, 5, 1e-3);
    expect_lr(10, 10, 11, 1e-3);
    expect_lr(50, 10, 11, 1e-3);
    expect_lr(0, 0, 0, 1e-3);
    /* decreasing through the decay */
    for (int64_t s = 10; s < 111; s++)
        ck_assert(gdn__lr_schedule(s + 1, 10, 111, 1e-3, 0.1) <=
                  gdn__lr_schedule(s, 10, 111, 1e-3, 0.1));
}
END_TEST

int main(void)
{
    Suite *s  = suite_create("optim");
    TCase *ta = tcase_create("adamw");
    TCase *tr = tcase_create("reduce");
    TCase *th = tcase_create("host");

    gdn_test_add_ctx_fixture(ta, 600);
    tcase_add_loop_test(ta, test_adamw, 0, (int)(sizeof(adamw_cases) / sizeof(adamw_cases[0])));
    tcase_add_test(ta, test_adamw_deterministic);
    tcase_add_test(ta, test_adamw_edges);
    suite_add_tcase(s, ta);
    gdn_test_add_ctx_fixture(tr, 600);
    tcase_add_test(tr, test_sumsq);
    tcase_add_test(tr, test_scale);
    tcase_add_test(tr, test_checks);
    suite_add_tcase(s, tr);
    tcase_add_test(th, test_lr_schedule);
    suite_add_tcase(s, th);
    return gdn_test_run(s, 1);
}
