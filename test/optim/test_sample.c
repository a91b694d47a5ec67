/*
 * test_sample.c - host suite of the token sampler (gdn_sample,
 * lib/model/optim/sample.c).
 *
 * Greedy: argmax, lowest index on ties, NaN skipped, all -inf gives 0, the
 * state untouched. top_k = 1 equals greedy at temperatures from 1e-30 to
 * 1e30. Same seed, same sequence (and the same final state); different
 * seeds, different sequences. NaN and -inf never drawn; +inf logits take
 * all the mass. Frequencies (chi-square, 20000 draws, bound 30 where the
 * 99.9% point is 16.3 for 3 degrees of freedom): temperature 1 and 2,
 * top-k 3, top-p 0.85; top-p never draws outside the nucleus. Bad
 * arguments, out of memory. Timing at vocab 32000.
 */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core.h"
#include "gdn.h"

static int32_t draw(const float *logits, int32_t vocab, const gdn_sampler_params *p,
                    uint64_t *rng)
{
    int32_t    tok = -1;
    gdn_status st  = gdn_sample(logits, vocab, p, rng, &tok);
    ck_assert_msg(st == GDN_STATUS_OK, "gdn_sample: %s", gdn_status_name(st));
    ck_assert_msg(tok >= 0 && tok < vocab, "token %d out of [0, %d)", tok, vocab);
    return tok;
}

static gdn_sampler_params params(float temperature, int32_t top_k, float top_p)
{
    gdn_sampler_params p;
    gdn_sampler_params_init(&p);
    p.temperature = temperature;
    p.top_k       = top_k;
    p.top_p       = top_p;
    return p;
}

/* Logits from a simple LCG (the test does not need the library's RNG). */
static void fill_logits(float *x, int32_t n, uint64_t seed, int ties)
{
    uint64_t s = seed * 6364136223846793005ULL + 1442695040888963407ULL;
    for (int32_t i = 0; i < n; i++) {
        double u;
        s    = s * 6364136223846793005ULL + 1442695040888963407ULL;
        u    = (double)(s >> 11) / 9007199254740992.0;
        x[i] = (float)(8.0 * u - 4.0);
        if (ties)
            x[i] = roundf(x[i] * 2.0f) / 2.0f; /* 17 distinct values: many ties */
    }
}

START_TEST(test_init)
{
    gdn_sampler_params p;
    memset(&p, 0xab, sizeof(p));
    gdn_sampler_params_init(&p);
    ck_assert(p.temperature == 0.0f);
    ck_assert_int_eq(p.top_k, 0);
    ck_assert(p.top_p == 1.0f);
    for (size_t i = 0; i < sizeof(p.reserved) / sizeof(p.reserved[0]); i++)
        ck_assert_uint_eq(p.reserved[i], 0);
    gdn_sampler_params_init(NULL);
}
END_TEST

START_TEST(test_greedy)
{
    const gdn_sampler_params g = params(0.0f, 0, 1.0f);
    uint64_t                 rng = 42;
    static const float       ties[] = {1.0f, 3.0f, 3.0f, 2.0f, 3.0f};
    static const float       nans[] = {NAN, 1.0f, 5.0f, NAN, 4.0f};
    static const float       nan_first[] = {NAN, -INFINITY, -INFINITY};
    float                    x[1000];

    ck_assert_int_eq(draw(ties, 5, &g, &rng), 1);
    ck_assert_int_eq(draw(nans, 5, &g, &rng), 2);
    ck_assert_int_eq(draw(nan_first, 3, &g, &rng), 1);
    {
        const float ninf[4] = {-INFINITY, -INFINITY, -INFINITY, -INFINITY};
        const float allnan[3] = {NAN, NAN, NAN};
        const float pinf[4]   = {1.0f, INFINITY, 2.0f, INFINITY};
        ck_assert_int_eq(draw(ninf, 4, &g, &rng), 0);
        ck_assert_int_eq(draw(allnan, 3, &g, &rng), 0);
        ck_assert_int_eq(draw(pinf, 4, &g, &rng), 1);
        ck_assert_int_eq(draw(pinf, 1, &g, &rng), 0);
    }
    fill_logits(x, 1000, 3, 0);
    x[777] = 100.0f;
    ck_assert_int_eq(draw(x, 1000, &g, &rng), 777);
    ck_assert_msg(rng == 42, "greedy changed the RNG state");
}
END_TEST

/* top_k = 1 is greedy at any temperature, ties and NaN included. */
START_TEST(test_top1_is_greedy)
{
    static const float temps[] = {1e-30f, 1e-3f, 0.5f, 1.0f, 7.0f, 1e30f};
    const gdn_sampler_params g = params(0.0f, 0, 1.0f);
    float                    x[1000];
    uint64_t                 rng = 9;

    for (uint64_t seed = 0; seed < 20; seed++) {
        int32_t want;
        fill_logits(x, 1000, seed, (int)(seed % 2));
        if (seed % 3 == 0)
            for (int i = 0; i < 1000; i += 7)
                x[i] = NAN;
        want = draw(x, 1000, &g, &rng);
        for (size_t t = 0; t < sizeof(temps) / sizeof(temps[0]); t++) {
            gdn_sampler_params p = params(temps[t], 1, 1.0f);
            ck_assert_int_eq(draw(x, 1000, &p, &rng), want);
            p.top_p = 0.5f;
            ck_assert_int_eq(draw(x, 1000, &p, &rng), want);
            /* a tiny nucleus is also the single best token */
            p = params(temps[t], 0, 1e-9f);
            ck_assert_int_eq(draw(x, 1000, &p, &rng), want);
        }
    }
}
END_TEST

START_TEST(test_seed_repeats)
{
    enum { V = 32000, N = 300 };
    static const gdn_sampler_params cfg[] = {
        {0.8f, 40, 0.9f, {0}},
        {1.0f, 0, 1.0f, {0}},
        {1.3f, 0, 0.95f, {0}},
        {0.7f, 100, 1.0f, {0}},
    };
    float   *x = malloc(V * sizeof(float));
    int32_t *a = malloc(N * sizeof(int32_t)), *b = malloc(N * sizeof(int32_t));
    ck_assert(x && a && b);
    fill_logits(x, V, 77, 0);
    for (size_t c = 0; c < sizeof(cfg) / sizeof(cfg[0]); c++) {
        uint64_t r1 = 123456789, r2 = 123456789, r3 = 987654321;
        int      differ = 0;
        for (int i = 0; i < N; i++)
            a[i] = draw(x, V, &cfg[c], &r1);
        for (int i = 0; i < N; i++)
            b[i] = draw(x, V, &cfg[c], &r2);
        ck_assert_msg(memcmp(a, b, N * sizeof(int32_t)) == 0, "config %zu: same seed, other draws",
                      c);
        ck_assert(r1 == r2 && r1 != 123456789);
        for (int i = 0; i < N; i++)
            differ += draw(x, V, &cfg[c], &r3) != a[i];
        ck_assert_msg(differ > N / 2, "config %zu: another seed gives %d of %d different draws",
                      c, differ, N);
    }
    /* seed 0 is fine too, and the state advances one step per draw */
    {
        uint64_t           r0 = 0;
        gdn_sampler_params p  = params(1.0f, 0, 1.0f);
        draw(x, V, &p, &r0);
        ck_assert(r0 == 0x9e3779b97f4a7c15ULL);
    }
    free(x), free(a), free(b);
}
END_TEST

/* NaN and -inf are never drawn; +inf logits share all the mass. */
START_TEST(test_nonfinite)
{
    float    x[64];
    uint64_t rng = 5;
    int      seen[64] = {0};

    for (int i = 0; i < 64; i++)
        x[i] = i % 3 == 0 ? NAN : i % 3 == 1 ? -INFINITY : (float)(i % 5) * 0.1f;
    for (int rep = 0; rep < 4000; rep++) {
        gdn_sampler_params p = params(rep % 2 ? 5.0f : 1.0f, rep % 4 < 2 ? 0 : 10,
                                      rep % 3 ? 1.0f : 0.8f);
        int32_t            t = draw(x, 64, &p, &rng);
        ck_assert_msg(t % 3 == 2, "drew token %d (logit %g)", t, (double)x[t]);
        seen[t]++;
    }
    for (int i = 2; i < 64; i += 3)
        ck_assert_msg(seen[i] > 0, "token %d never drawn", i);
    {
        const float ninf[5]  = {NAN, -INFINITY, -INFINITY, NAN, -INFINITY};
        const float allnan[2] = {NAN, NAN};
        const float pinf[6]  = {1.0f, INFINITY, NAN, 3.0f, INFINITY, -INFINITY};
        gdn_sampler_params p = params(1.0f, 0, 1.0f);
        int         hits[6] = {0};
        ck_assert_int_eq(draw(ninf, 5, &p, &rng), 1);
        ck_assert_int_eq(draw(allnan, 2, &p, &rng), 0);
        for (int rep = 0; rep < 2000; rep++)
            hits[draw(pinf, 6, &p, &rng)]++;
        ck_assert_msg(hits[1] + hits[4] == 2000 && hits[1] > 850 && hits[4] > 850,
                      "+inf draws: %d and %d", hits[1], hits[4]);
        p.top_k = 1;
        ck_assert_int_eq(draw(pinf, 6, &p, &rng), 1);
    }
}
END_TEST

/* Chi-square of n draws against probabilities q (0 where never allowed:
 * such a draw fails at once). */
static double chi_square(const float *logits, int32_t V, const gdn_sampler_params *p,
                         const double *q, int n, uint64_t seed)
{
    int      count[16] = {0};
    uint64_t rng = seed;
    double   chi = 0;
    for (int i = 0; i < n; i++) {
        int32_t t = draw(logits, V, p, &rng);
        ck_assert_msg(q[t] > 0, "drew token %d, outside the allowed set", t);
        count[t]++;
    }
    for (int32_t t = 0; t < V; t++)
        if (q[t] > 0)
            chi += (count[t] - n * q[t]) * (count[t] - n * q[t]) / (n * q[t]);
    return chi;
}

START_TEST(test_frequencies)
{
    static const double prob[4] = {0.1, 0.2, 0.3, 0.4};
    float               x[4];
    double              q[4], s, chi;
    gdn_sampler_params  p;

    for (int i = 0; i < 4; i++)
        x[i] = (float)log(prob[i]) + 1.5f; /* shift: softmax ignores it */

    p   = params(1.0f, 0, 1.0f);
    chi = chi_square(x, 4, &p, prob, 20000, 1);
    printf("chi-square T=1: %.2f\n", chi);
    ck_assert_msg(chi < 30.0, "T = 1: chi-square %.2f", chi);

    /* T = 2: q ~ sqrt(prob) */
    s = 0;
    for (int i = 0; i < 4; i++)
        s += q[i] = sqrt(prob[i]);
    for (int i = 0; i < 4; i++)
        q[i] /= s;
    p   = params(2.0f, 0, 1.0f);
    chi = chi_square(x, 4, &p, q, 20000, 2);
    printf("chi-square T=2: %.2f\n", chi);
    ck_assert_msg(chi < 30.0, "T = 2: chi-square %.2f", chi);

    /* top-k 3: token 0 dropped, the rest renormalised */
    q[0] = 0, q[1] = 0.2 / 0.9, q[2] = 0.3 / 0.9, q[3] = 0.4 / 0.9;
    p    = params(1.0f, 3, 1.0f);
    chi  = chi_square(x, 4, &p, q, 20000, 3);
    printf("chi-square top-k 3: %.2f\n", chi);
    ck_assert_msg(chi < 30.0, "top-k 3: chi-square %.2f", chi);
}
END_TEST

/* top-p keeps the smallest set of most likely tokens reaching p. */
START_TEST(test_top_p)
{
    static const double prob[6] = {0.15, 0.5, 0.02, 0.3, 0.01, 0.02};
    float               x[6];
    double              q[6] = {0};
    double              chi;
    gdn_sampler_params  p;

    for (int i = 0; i < 6; i++)
        x[i] = (float)log(prob[i]);
    /* p = 0.85: 0.5 + 0.3 = 0.8 < 0.85, + 0.15 = 0.95 >= 0.85 -> {1, 3, 0} */
    q[1] = 0.5 / 0.95, q[3] = 0.3 / 0.95, q[0] = 0.15 / 0.95;
    p    = params(1.0f, 0, 0.85f);
    chi  = chi_square(x, 6, &p, q, 20000, 4);
    printf("chi-square top-p 0.85: %.2f\n", chi);
    ck_assert_msg(chi < 30.0, "top-p 0.85: chi-square %.2f", chi);
    /* p = 0.7 -> {1, 3}; with top-k 1 first -> {1} */
    memset(q, 0, sizeof(q));
    q[1] = 0.5 / 0.8, q[3] = 0.3 / 0.8;
    p    = params(1.0f, 0, 0.7f);
    chi  = chi_square(x, 6, &p, q, 5000, 5);
    ck_assert_msg(chi < 30.0, "top-p 0.7: chi-square %.2f", chi);
    /* top-p over what top-k kept: top-k 2 keeps {1, 3} (probs renormalised
     * to 0.625, 0.375); p = 0.6 then keeps {1} */
    p = params(1.0f, 2, 0.6f);
    {
        uint64_t rng = 6;
        for (int i = 0; i < 2000; i++)
            ck_assert_int_eq(draw(x, 6, &p, &rng), 1);
    }
    /* vocab 32000: draws always among the nucleus */
    {
        enum { V = 32000 };
        float   *y = malloc(V * sizeof(float));
        int32_t *order;
        double  *w, tot = 0, cum = 0, mx = -1e30;
        char    *in = calloc(V, 1);
        uint64_t rng = 8;
        int      n_in = 0;
        ck_assert(y && in);
        fill_logits(y, V, 99, 0);
        for (int i = 0; i < V; i++)
            y[i] *= 2.0f; /* sharper */
        w     = malloc(V * sizeof(double));
        order = malloc(V * sizeof(int32_t));
        ck_assert(w && order);
        for (int i = 0; i < V; i++)
            mx = y[i] > mx ? y[i] : mx;
        for (int i = 0; i < V; i++) {
            w[i] = exp((double)y[i] - mx);
            tot += w[i];
            order[i] = i;
        }
        /* nucleus of 0.5 by selection sort on the largest (few thousand) */
        while (cum < 0.5 * tot) {
            int best = -1;
            for (int i = 0; i < V; i++)
                if (!in[i] && (best < 0 || w[i] > w[best]))
                    best = i;
            in[best] = 1;
            cum += w[best];
            n_in++;
        }
        p = params(1.0f, 0, 0.5f);
        for (int i = 0; i < 3000; i++) {
            int32_t t = draw(y, V, &p, &rng);
            ck_assert_msg(in[t], "drew %d outside the nucleus of %d tokens", t, n_in);
        }
        printf("vocab 32000 nucleus 0.5: %d tokens\n", n_in);
        free(y), free(w), free(order), free(in);
    }
}
END_TEST

START_TEST(test_bad_args)
{
    const float        x[3] = {1, 2, 3};
    gdn_sampler_params p    = params(1.0f, 0, 1.0f), b;
    uint64_t           rng  = 1;
    int32_t            tok  = -7;

#define BAD(expr) ck_assert_int_eq((expr), GDN_STATUS_INVALID_ARGUMENT)
    BAD(gdn_sample(NULL, 3, &p, &rng, &tok));
    BAD(gdn_sample(x, 3, NULL, &rng, &tok));
    BAD(gdn_sample(x, 3, &p, NULL, &tok));
    BAD(gdn_sample(x, 3, &p, &rng, NULL));
    BAD(gdn_sample(x, 0, &p, &rng, &tok));
    BAD(gdn_sample(x, -1, &p, &rng, &tok));
#define BAD_P(field, value)                                                                        \
    do {                                                                                           \
        b       = p;                                                                               \
        b.field = value;                                                                           \
        BAD(gdn_sample(x, 3, &b, &rng, &tok));                                                     \
    } while (0)
    BAD_P(temperature, -1.0f);
    BAD_P(temperature, NAN);
    BAD_P(temperature, INFINITY);
    BAD_P(top_k, -1);
    BAD_P(top_p, 0.0f);
    BAD_P(top_p, -0.5f);
    BAD_P(top_p, 1.0001f);
    BAD_P(top_p, NAN);
    BAD_P(reserved[0], 1);
    BAD_P(reserved[12], 0x80000000u);
#undef BAD_P
#undef BAD
    ck_assert_int_eq(tok, -7);
    ck_assert(rng == 1);
    /* greedy with a bad top_p is still rejected */
    b       = params(0.0f, 0, 2.0f);
    ck_assert_int_eq(gdn_sample(x, 3, &b, &rng, &tok), GDN_STATUS_INVALID_ARGUMENT);
    /* top_k larger than vocab is fine */
    b = params(1.0f, 1000, 1.0f);
    ck_assert_int_eq(gdn_sample(x, 3, &b, &rng, &tok), GDN_STATUS_OK);
    /* the scratch of top-k / top-p: out of memory is reported */
    b = params(1.0f, 2, 1.0f);
    gdn__alloc_fail_after(1);
    ck_assert_int_eq(gdn_sample(x, 3, &b, &rng, &tok), GDN_STATUS_OUT_OF_HOST_MEMORY);
    gdn__alloc_fail_after(0);
    ck_assert_int_eq(gdn_sample(x, 3, &b, &rng, &tok), GDN_STATUS_OK);
}
END_TEST

START_TEST(test_speed)
{
    enum { V = 32000, N = 200 };
    static const gdn_sampler_params cfg[] = {
        {1.0f, 0, 1.0f, {0}},  {0.8f, 50, 1.0f, {0}},  {0.8f, 0, 0.9f, {0}},
        {0.8f, 50, 0.9f, {0}}, {0.8f, V, 0.95f, {0}},
    };
    float   *x = malloc(V * sizeof(float));
    uint64_t rng = 3;
    ck_assert_ptr_nonnull(x);
    fill_logits(x, V, 5, 0);
    for (size_t c = 0; c < sizeof(cfg) / sizeof(cfg[0]); c++) {
        double t0 = gdn__now(), ms;
        for (int i = 0; i < N; i++)
            draw(x, V, &cfg[c], &rng);
        ms = 1e3 * (gdn__now() - t0) / N;
        printf("vocab %d T %.1f top_k %d top_p %.2f: %.3f ms per draw\n", V,
               (double)cfg[c].temperature, cfg[c].top_k, (double)cfg[c].top_p, ms);
        ck_assert_msg(ms < 100.0, "%.1f ms per draw", ms); /* generous: sanitizers, slow CI */
    }
    free(x);
}
END_TEST

int main(void)
{
    Suite   *s  = suite_create("sample");
    TCase   *tc = tcase_create("sample");
    SRunner *sr;
    int      failed;

    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_init);
    tcase_add_test(tc, test_greedy);
    tcase_add_test(tc, test_top1_is_greedy);
    tcase_add_test(tc, test_seed_repeats);
    tcase_add_test(tc, test_nonfinite);
    tcase_add_test(tc, test_frequencies);
    tcase_add_test(tc, test_top_p);
    tcase_add_test(tc, test_bad_args);
    tcase_add_test(tc, test_speed);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_ENV);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
