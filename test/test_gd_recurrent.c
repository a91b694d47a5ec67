/*
 * test_gd_recurrent.c - suite gd_recurrent: the fused recurrent forward
 * (gdn_gated_delta_recurrent) and the decode step (gdn_gated_delta_step)
 * against the float64 token recurrence gdn_ref_gd_forward (ALGORITHM.md
 * §1.2, §1.4, §3.4).
 *
 * Inputs: q, k L2-normalised rows (raw normal rows with QK_L2NORM), v normal,
 * log gates in one of four regimes (uniform [-20, 0), mild [-1, 0), exactly
 * 0, strong [-120, -60) which underflows exp), beta in (0, 1) or (0, 2), or
 * raw a / b with GATE_IN_OP / BETA_SIGMOID that the host turns into the
 * reference's g / beta with gdn_ref_gate_fwd / gdn_ref_beta_fwd (and q, k
 * with gdn_ref_l2norm_fwd). Outputs are NaN-poisoned before each run.
 * Tolerance: relative RMS 2e-5 for o and the final state.
 *
 * A few cases force other work-group shapes through the context's tuning
 * override (as GDN_TUNE="gated_delta/recurrent:BV=..,VW=..,KS=.." would,
 * lib/ops/gated_delta/recurrent.c), so shapes a database may hold are
 * covered too.
 *
 * Each case prints its measured errors (run the binary directly to see
 * them).
 */
#define _POSIX_C_SOURCE 200809L /* setenv */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gated_delta_ref.h"
#include "gdn_test.h"
#include "runtime.h"

#define TOL 2e-5

enum gate_mode { GATE_RULES, GATE_MILD, GATE_ZERO, GATE_STRONG };

#define L2  GDN_GATED_DELTA_QK_L2NORM
#define GIO GDN_GATED_DELTA_GATE_IN_OP
#define BS  GDN_GATED_DELTA_BETA_SIGMOID
#define NEG GDN_GATED_DELTA_NEG_EIGVAL

/* ------------------------------------------------------------ input data */

struct data {
    int64_t  T;
    int32_t  N, H, HV, K, V;
    uint32_t flags;
    int32_t *off;
    /* raw inputs as uploaded */
    double *q, *k, *v, *g, *beta, *A_log, *dt_bias, *h0;
    /* what the reference reads */
    double *qr, *kr, *gr, *br;
};

static double *dalloc(size_t n)
{
    double *x = calloc(n ? n : 1, sizeof(double));
    ck_assert_ptr_nonnull(x);
    return x;
}

static void data_free(struct data *d)
{
    double *p[] = {d->q, d->k, d->v, d->g, d->beta, d->A_log, d->dt_bias, d->h0,
                   d->qr, d->kr, d->gr, d->br};
    size_t  i;
    for (i = 0; i < sizeof(p) / sizeof(p[0]); i++)
        free(p[i]);
    free(d->off);
}

/* Random inputs for the token layout of d->off; the reference's
 * preprocessed copies alias the raw ones where no in-op option applies. */
static void data_make(struct data *d, struct gdn_rng *rng, int gate, double beta_max,
                      int with_h0)
{
    const size_t tqk = (size_t)d->T * d->H * d->K, tv = (size_t)d->T * d->HV * d->V;
    const size_t tg  = (size_t)d->T * d->HV;
    const size_t ns  = (size_t)d->N * d->HV * d->K * d->V;

    d->q = dalloc(tqk), d->k = dalloc(tqk), d->v = dalloc(tv);
    d->g = dalloc(tg), d->beta = dalloc(tg);
    d->qr = dalloc(tqk), d->kr = dalloc(tqk), d->gr = dalloc(tg), d->br = dalloc(tg);
    if (d->flags & L2) {
        gdn_rng_fill_normal(rng, d->q, tqk, 1.0);
        gdn_rng_fill_normal(rng, d->k, tqk, 1.0);
        gdn_ref_l2norm_fwd(d->T * d->H, d->K, 1e-6, d->q, d->qr, NULL);
        gdn_ref_l2norm_fwd(d->T * d->H, d->K, 1e-6, d->k, d->kr, NULL);
    } else {
        gdn_rng_fill_l2rows(rng, d->q, (size_t)d->T * d->H, (size_t)d->K);
        gdn_rng_fill_l2rows(rng, d->k, (size_t)d->T * d->H, (size_t)d->K);
        memcpy(d->qr, d->q, tqk * sizeof(double));
        memcpy(d->kr, d->k, tqk * sizeof(double));
    }
    gdn_rng_fill_normal(rng, d->v, tv, 1.0);
    if (d->flags & GIO) {
        d->A_log   = dalloc((size_t)d->HV);
        d->dt_bias = dalloc((size_t)d->HV);
        gdn_rng_fill_normal(rng, d->g, tg, 1.0);
        gdn_rng_fill_uniform(rng, d->A_log, (size_t)d->HV, -2.0, 1.0);
        gdn_rng_fill_normal(rng, d->dt_bias, (size_t)d->HV, 0.5);
        gdn_ref_gate_fwd(d->T, d->HV, d->g, d->A_log, d->dt_bias, d->gr);
    } else {
        switch (gate) {
        case GATE_RULES: gdn_rng_fill_uniform(rng, d->g, tg, -20.0, 0.0); break;
        case GATE_MILD: gdn_rng_fill_uniform(rng, d->g, tg, -1.0, 0.0); break;
        case GATE_STRONG: gdn_rng_fill_uniform(rng, d->g, tg, -120.0, -60.0); break;
        default: break; /* GATE_ZERO: calloc'd */
        }
        memcpy(d->gr, d->g, tg * sizeof(double));
    }
    if (d->flags & BS) {
        gdn_rng_fill_normal(rng, d->beta, tg, 2.0);
        gdn_ref_beta_fwd((int64_t)tg, (d->flags & NEG) ? 1 : 0, d->beta, d->br);
    } else {
        gdn_rng_fill_uniform(rng, d->beta, tg, 1e-3 * beta_max, beta_max);
        memcpy(d->br, d->beta, tg * sizeof(double));
    }
    if (with_h0) {
        d->h0 = dalloc(ns);
        gdn_rng_fill_normal(rng, d->h0, ns, 0.5);
    }
}

static void data_reference(const struct data *d, float scale, double *o, double *ht)
{
    struct gdn_ref_gd_problem p;
    p.T       = d->T;
    p.H       = d->H;
    p.HV      = d->HV;
    p.K       = d->K;
    p.V       = d->V;
    p.n_seqs  = d->N;
    p.offsets = d->off;
    p.scale   = scale > 0.0f ? (double)scale : 1.0 / sqrt((double)d->K);
    gdn_ref_gd_forward(&p, d->qr, d->kr, d->v, d->gr, d->br, d->h0, o, ht);
}

/* ------------------------------------------------- recurrent forward cases */

struct rcase {
    const char *name;
    int32_t     N;
    int32_t     lens[8]; /* -1: random in [1, 80] */
    int32_t     H, HV, K, V;
    uint32_t    flags;
    int         h0;       /* initial state given */
    int         gate;     /* enum gate_mode (ignored with GATE_IN_OP) */
    double      beta_max; /* beta range without BETA_SIGMOID */
    float       scale;    /* 0: default K^-1/2 */
    int         layout;   /* 0: packed varlen, 1: batched 4-D, 2: ht aliases h0,
                             3: no ht */
    const char *plan;     /* tuning override of gated_delta/recurrent, or NULL */
};

/* Few distinct (K, V, flags) sets: each is one program build on PoCL. */
static const struct rcase rcases[] = {
    {"T1", 1, {1}, 1, 1, 64, 64, 0, 1, GATE_RULES, 1, 0, 0, NULL},
    {"T17_gva2", 1, {17}, 2, 4, 64, 64, 0, 1, GATE_MILD, 1, 0, 0, NULL},
    {"varlen_1_64_65_17", 4, {1, 64, 65, 17}, 2, 2, 64, 64, 0, 0, GATE_RULES, 1, 0, 0, NULL},
    {"varlen8_gva4", 8, {1, -1, -1, 5, -1, 1, -1, -1}, 1, 4, 64, 64, 0, 1, GATE_MILD, 1, 0, 0,
     NULL},
    {"T300_strong", 2, {300, 1}, 1, 2, 64, 64, 0, 1, GATE_STRONG, 1, 0, 0, NULL},
    {"T300_mild_beta2", 1, {300}, 2, 4, 64, 64, 0, 1, GATE_MILD, 2, 0.3f, 0, NULL},
    {"gates_zero", 2, {65, 64}, 2, 4, 64, 64, 0, 1, GATE_ZERO, 1, 0, 0, NULL},
    {"empty_seq", 3, {0, 5, 0}, 1, 2, 64, 64, 0, 1, GATE_MILD, 1, 0, 0, NULL},
    {"K32_V128", 3, {17, 1, 40}, 2, 2, 32, 128, 0, 1, GATE_RULES, 1, 0, 0, NULL},
    {"K128_V32", 2, {65, 3}, 1, 2, 128, 32, 0, 1, GATE_MILD, 1, 0, 0, NULL},
    {"K16_V16", 3, {17, 1, 64}, 2, 4, 16, 16, 0, 1, GATE_MILD, 1, 0, 0, NULL},
    {"K128_V128", 2, {65, 17}, 2, 4, 128, 128, 0, 1, GATE_MILD, 1, 0, 0, NULL},
    {"K256_V256", 1, {17}, 1, 1, 256, 256, 0, 1, GATE_MILD, 1, 0, 0, NULL},
    {"l2norm", 3, {17, 1, 64}, 2, 4, 64, 64, L2, 1, GATE_MILD, 1, 0, 0, NULL},
    {"gate_in_op", 3, {17, 1, 65}, 1, 2, 64, 64, GIO, 0, GATE_MILD, 1, 0, 0, NULL},
    {"beta_sigmoid", 2, {64, 17}, 2, 2, 64, 64, BS, 1, GATE_RULES, 1, 0, 0, NULL},
    {"neg_eigval", 2, {65, 1}, 1, 4, 64, 64, BS | NEG, 1, GATE_MILD, 1, 0, 0, NULL},
    {"all_flags", 4, {17, 1, -1, 64}, 2, 4, 64, 64, L2 | GIO | BS | NEG, 1, GATE_MILD, 1, 0.2f,
     0, NULL},
    {"batched_4d", 3, {17, 17, 17}, 2, 4, 64, 64, 0, 1, GATE_MILD, 1, 0, 1, NULL},
    {"ht_aliases_h0", 3, {17, 1, 30}, 1, 2, 64, 64, 0, 1, GATE_MILD, 1, 0, 2, NULL},
    {"no_ht", 2, {17, 9}, 2, 2, 64, 64, 0, 1, GATE_MILD, 1, 0, 3, NULL},
    {"plan_8_1_8", 4, {17, 1, -1, 64}, 2, 4, 64, 64, L2 | GIO | BS | NEG, 1, GATE_MILD, 1, 0, 0,
     "gated_delta/recurrent:BV=8,VW=1,KS=8"},
    {"plan_32_2_8", 3, {65, 1, 17}, 1, 2, 64, 64, 0, 1, GATE_RULES, 1, 0, 0,
     "gated_delta/recurrent:BV=32,VW=2,KS=8"},
    {"plan_16_4_16", 3, {30, 1, 64}, 2, 2, 64, 64, 0, 1, GATE_MILD, 1, 0, 0,
     "gated_delta/recurrent:BV=16,VW=4,KS=16"},
};

#define N_RCASES ((int)(sizeof(rcases) / sizeof(rcases[0])))

static gdn_tensor *tensor_or_null(int32_t ndim, const int64_t *shape, const double *data)
{
    return data ? gdn_test_tensor(ndim, shape, data) : NULL;
}

START_TEST(test_recurrent)
{
    const struct rcase    *c = &rcases[_i];
    struct data            d;
    struct gdn_rng         rng;
    gdn_gated_delta_params params;
    gdn_gated_delta_args   args;
    gdn_tensor            *tq, *tk, *tv, *tg, *tb, *tA = NULL, *tdt = NULL, *th0, *to, *tht = NULL;
    double                *o_ref, *ht_ref;
    double                 eo, eh = 0.0;
    int32_t                n;
    const int32_t          batched = c->layout == 1;

    memset(&d, 0, sizeof(d));
    gdn_rng_seed(&rng, 0x5eed0000u + (uint64_t)_i);
    d.N = c->N, d.H = c->H, d.HV = c->HV, d.K = c->K, d.V = c->V, d.flags = c->flags;
    d.off = calloc((size_t)c->N + 1, sizeof(int32_t));
    ck_assert_ptr_nonnull(d.off);
    for (n = 0; n < c->N; n++) {
        int32_t len = c->lens[n] >= 0 ? c->lens[n] : 1 + (int32_t)(gdn_rng_uniform(&rng) * 80.0);
        d.off[n + 1] = d.off[n] + len;
    }
    d.T = d.off[c->N];
    data_make(&d, &rng, c->gate, c->beta_max, c->h0);

    o_ref  = dalloc((size_t)d.T * d.HV * d.V);
    ht_ref = dalloc((size_t)d.N * d.HV * d.K * d.V);
    data_reference(&d, c->scale, o_ref, ht_ref);

    {
        /* Packed [T, ...] or batched [B, T_b, ...] shapes. */
        const int64_t Tb = batched ? d.T / d.N : d.T;
        int64_t       sq[4], sv[4], sg[3], shv[1] = {d.HV};
        int64_t       ss[4] = {d.N, d.HV, d.K, d.V};
        int32_t       nd = 0;
        if (batched)
            sq[nd] = sv[nd] = sg[nd] = d.N, nd++;
        sq[nd] = sv[nd] = sg[nd] = Tb;
        sq[nd + 1] = d.H, sq[nd + 2] = d.K;
        sv[nd + 1] = d.HV, sv[nd + 2] = d.V;
        sg[nd + 1] = d.HV;
        tq  = gdn_test_tensor(nd + 3, sq, d.q);
        tk  = gdn_test_tensor(nd + 3, sq, d.k);
        tv  = gdn_test_tensor(nd + 3, sv, d.v);
        tg  = gdn_test_tensor(nd + 2, sg, d.g);
        tb  = gdn_test_tensor(nd + 2, sg, d.beta);
        tA  = tensor_or_null(1, shv, d.A_log);
        tdt = tensor_or_null(1, shv, d.dt_bias);
        th0 = tensor_or_null(4, ss, d.h0);
        to  = gdn_test_tensor(nd + 3, sv, NULL);
        if (c->layout == 2)
            tht = th0;
        else if (c->layout != 3)
            tht = gdn_test_tensor(4, ss, NULL);
    }

    gdn_gated_delta_params_init(&params);
    params.flags = c->flags;
    params.scale = c->scale;
    memset(&args, 0, sizeof(args));
    args.q = tq, args.k = tk, args.v = tv, args.g = tg, args.beta = tb;
    args.A_log = tA, args.dt_bias = tdt, args.h0 = th0;
    if (!batched) {
        args.seq_offsets = d.off;
        args.n_seqs      = d.N;
    }
    {
        /* (the override GDN_TUNE sets at context creation, for this call) */
        char *const saved = gdn_test_ctx->tune_override;
        if (c->plan)
            gdn_test_ctx->tune_override = (char *)c->plan;
        GDN_TEST_OK(gdn_gated_delta_recurrent(gdn_test_ctx, &params, &args, to, tht));
        gdn_test_ctx->tune_override = saved;
    }

    eo = gdn_test_expect(to, o_ref, TOL, "o", c->name);
    if (tht)
        eh = gdn_test_expect(tht, ht_ref, TOL, "ht", c->name);
    printf("gd_recurrent %-18s T=%-4lld N=%d H=%d HV=%-2d K=%-3d V=%-3d flags=%x  o %.2e  ht "
           "%.2e\n",
           c->name, (long long)d.T, (int)d.N, (int)d.H, (int)d.HV, (int)d.K, (int)d.V,
           (unsigned)c->flags, eo, eh);
    fflush(stdout);

    gdn_tensor_destroy(tq), gdn_tensor_destroy(tk), gdn_tensor_destroy(tv);
    gdn_tensor_destroy(tg), gdn_tensor_destroy(tb), gdn_tensor_destroy(tA);
    gdn_tensor_destroy(tdt), gdn_tensor_destroy(th0), gdn_tensor_destroy(to);
    if (tht != th0)
        gdn_tensor_destroy(tht);
    free(o_ref), free(ht_ref);
    data_free(&d);
}
END_TEST

/* ------------------------------------------------------------ decode step */

struct scase {
    const char *name;
    int32_t     N, m; /* sequences, steps */
    int32_t     H, HV, K, V;
    uint32_t    flags;
    int         gate;
};

static const struct scase scases[] = {
    {"N1_H16_K128", 1, 5, 16, 16, 128, 128, 0, GATE_MILD},
    {"N16_gva2", 16, 4, 1, 2, 64, 64, 0, GATE_RULES},
    {"N4_all_flags", 4, 6, 2, 4, 64, 64, L2 | GIO | BS | NEG, GATE_MILD},
    {"N3_gates_zero", 3, 8, 2, 2, 64, 64, 0, GATE_ZERO},
};

#define N_SCASES ((int)(sizeof(scases) / sizeof(scases[0])))

/* Rows of token (n * m + s) for every n: [N, heads, D] from [N * m, heads, D]. */
static void gather(const double *src, double *dst, int32_t N, int32_t m, int32_t s, size_t row)
{
    int32_t n;
    for (n = 0; n < N; n++)
        memcpy(dst + (size_t)n * row, src + ((size_t)n * m + s) * row, row * sizeof(double));
}

START_TEST(test_step)
{
    const struct scase    *c = &scases[_i];
    struct data            d;
    struct gdn_rng         rng;
    gdn_gated_delta_params params;
    gdn_gated_delta_args   args;
    gdn_tensor            *tstate, *tA = NULL, *tdt = NULL;
    double                *o_ref, *ht_ref, *buf;
    const size_t           rq = (size_t)c->H * c->K, rv = (size_t)c->HV * c->V;
    const size_t           rg = (size_t)c->HV;
    int64_t                ss[4] = {c->N, c->HV, c->K, c->V}, shv[1] = {c->HV};
    double                 eo_max = 0.0, eh;
    int32_t                n, s;

    memset(&d, 0, sizeof(d));
    gdn_rng_seed(&rng, 0x57e90000u + (uint64_t)_i);
    d.N = c->N, d.H = c->H, d.HV = c->HV, d.K = c->K, d.V = c->V, d.flags = c->flags;
    d.off = calloc((size_t)c->N + 1, sizeof(int32_t));
    ck_assert_ptr_nonnull(d.off);
    for (n = 0; n <= c->N; n++)
        d.off[n] = n * c->m;
    d.T = d.off[c->N];
    data_make(&d, &rng, c->gate, 1.0, 1);
    o_ref  = dalloc((size_t)d.T * rv);
    ht_ref = dalloc((size_t)d.N * d.HV * d.K * d.V);
    data_reference(&d, 0.0f, o_ref, ht_ref);

    tstate = gdn_test_tensor(4, ss, d.h0);
    tA     = tensor_or_null(1, shv, d.A_log);
    tdt    = tensor_or_null(1, shv, d.dt_bias);
    buf    = dalloc((size_t)c->N * (rq > rv ? rq : rv));
    gdn_gated_delta_params_init(&params);
    params.flags = c->flags;

    for (s = 0; s < c->m; s++) {
        int64_t     sq[3] = {c->N, c->H, c->K}, sv[3] = {c->N, c->HV, c->V};
        int64_t     sg[2] = {c->N, c->HV};
        gdn_tensor *tq, *tk, *tv, *tg, *tb, *to;
        char        what[32];
        double      eo;

        gather(d.q, buf, c->N, c->m, s, rq), tq = gdn_test_tensor(3, sq, buf);
        gather(d.k, buf, c->N, c->m, s, rq), tk = gdn_test_tensor(3, sq, buf);
        gather(d.v, buf, c->N, c->m, s, rv), tv = gdn_test_tensor(3, sv, buf);
        gather(d.g, buf, c->N, c->m, s, rg), tg = gdn_test_tensor(2, sg, buf);
        gather(d.beta, buf, c->N, c->m, s, rg), tb = gdn_test_tensor(2, sg, buf);
        to = gdn_test_tensor(3, sv, NULL);
        memset(&args, 0, sizeof(args));
        args.q = tq, args.k = tk, args.v = tv, args.g = tg, args.beta = tb;
        args.A_log = tA, args.dt_bias = tdt;
        GDN_TEST_OK(gdn_gated_delta_step(gdn_test_ctx, &params, &args, tstate, to));

        gather(o_ref, buf, c->N, c->m, s, rv);
        snprintf(what, sizeof(what), "o of step %d", (int)s);
        eo = gdn_test_expect(to, buf, TOL, what, c->name);
        if (eo > eo_max)
            eo_max = eo;
        gdn_tensor_destroy(tq), gdn_tensor_destroy(tk), gdn_tensor_destroy(tv);
        gdn_tensor_destroy(tg), gdn_tensor_destroy(tb), gdn_tensor_destroy(to);
    }
    eh = gdn_test_expect(tstate, ht_ref, TOL, "final state", c->name);
    printf("gd_step      %-18s N=%-3d steps=%d H=%-2d HV=%-2d K=%-3d V=%-3d flags=%x  o(max) %.2e  "
           "state %.2e\n",
           c->name, (int)c->N, (int)c->m, (int)c->H, (int)c->HV, (int)c->K, (int)c->V,
           (unsigned)c->flags, eo_max, eh);
    fflush(stdout);

    gdn_tensor_destroy(tstate), gdn_tensor_destroy(tA), gdn_tensor_destroy(tdt);
    free(buf), free(o_ref), free(ht_ref);
    data_free(&d);
}
END_TEST

/* A state of the wrong shape is rejected before anything is enqueued, and
 * its contents stay as they were. */
START_TEST(test_step_wrong_state)
{
    const int32_t N = 2, H = 1, HV = 2, K = 64, V = 64;
    int64_t       sq[3] = {N, H, K}, sv[3] = {N, HV, V}, sg[2] = {N, HV};
    int64_t       bad[4][4] = {{N, HV, K, V + 16}, {N + 1, HV, K, V}, {N, HV * 2, K, V},
                               {N, HV, K + 16, V}};
    struct gdn_rng rng;
    int            b;

    gdn_rng_seed(&rng, 0xbad5);
    for (b = 0; b < 4; b++) {
        const size_t  nstate = (size_t)bad[b][0] * bad[b][1] * bad[b][2] * bad[b][3];
        double       *x = dalloc(nstate > (size_t)N * HV * V ? nstate : (size_t)N * HV * V);
        float        *before, *after;
        gdn_tensor   *tq, *tk, *tv, *tg, *tb, *to, *tstate;
        gdn_gated_delta_args args;
        gdn_status    st;

        gdn_rng_fill_l2rows(&rng, x, (size_t)N * H, (size_t)K);
        tq = gdn_test_tensor(3, sq, x);
        tk = gdn_test_tensor(3, sq, x);
        gdn_rng_fill_normal(&rng, x, (size_t)N * HV * V, 1.0);
        tv = gdn_test_tensor(3, sv, x);
        gdn_rng_fill_uniform(&rng, x, (size_t)N * HV, -1.0, 0.0);
        tg = gdn_test_tensor(2, sg, x);
        gdn_rng_fill_uniform(&rng, x, (size_t)N * HV, 0.1, 0.9);
        tb = gdn_test_tensor(2, sg, x);
        to = gdn_test_tensor(3, sv, NULL);
        gdn_rng_fill_normal(&rng, x, nstate, 1.0);
        tstate = gdn_test_tensor(4, bad[b], x);
        before = gdn_test_read(tstate);

        memset(&args, 0, sizeof(args));
        args.q = tq, args.k = tk, args.v = tv, args.g = tg, args.beta = tb;
        st = gdn_gated_delta_step(gdn_test_ctx, NULL, &args, tstate, to);
        ck_assert_msg(st == GDN_STATUS_SHAPE_MISMATCH, "state [%lld %lld %lld %lld]: got %s (%s)",
                      (long long)bad[b][0], (long long)bad[b][1], (long long)bad[b][2],
                      (long long)bad[b][3], gdn_status_name(st),
                      gdn_context_last_error(gdn_test_ctx));
        ck_assert_msg(strlen(gdn_context_last_error(gdn_test_ctx)) > 0, "no error message");
        GDN_TEST_OK(gdn_context_finish(gdn_test_ctx));
        after = gdn_test_read(tstate);
        ck_assert_msg(memcmp(before, after, nstate * sizeof(float)) == 0,
                      "the state changed after a rejected step");
        free(before), free(after), free(x);
        gdn_tensor_destroy(tq), gdn_tensor_destroy(tk), gdn_tensor_destroy(tv);
        gdn_tensor_destroy(tg), gdn_tensor_destroy(tb), gdn_tensor_destroy(to);
        gdn_tensor_destroy(tstate);
    }
}
END_TEST

static Suite *gd_recurrent_suite(void)
{
    Suite *s  = suite_create("gd_recurrent");
    TCase *tc = tcase_create("recurrent");
    gdn_test_add_ctx_fixture(tc, 600);
    tcase_add_loop_test(tc, test_recurrent, 0, N_RCASES);
    suite_add_tcase(s, tc);
    tc = tcase_create("step");
    gdn_test_add_ctx_fixture(tc, 600);
    tcase_add_loop_test(tc, test_step, 0, N_SCASES);
    tcase_add_test(tc, test_step_wrong_state);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return gdn_test_run(gd_recurrent_suite(), 1);
}
