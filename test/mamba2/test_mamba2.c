/*
 * test_mamba2.c - device tests of the Mamba2 SSD core against the float64
 * sequential-scan reference (mamba2_ref.c), on PoCL in CI.
 *
 *   fwd_bwd   chunked forward (y, ht) and backward (dx, ddt, dA_log,
 *             ddt_bias, dB, dC, dD, dh0) over a table of awkward shapes:
 *             T = 1, T not a multiple of the chunk, varlen batches with
 *             lengths 1 and 0, batched 4-D, G in {1, 2, H}, with and without
 *             h0 / D / dt_bias / dht, strong, zero (A_log = -inf) and extreme
 *             (A_log = 80: every decay underflows) decay, dt clamp,
 *             chunk sizes 64, 128, 256, P and DS = 16 .. 256 incl. partial
 *             tiles (48, 80). Outputs are NaN-poisoned before each call.
 *             long_T16384 (256 chunks in one sequence) and c256_P256_DS256
 *             (the most loop iterations per work-item of the per-chunk
 *             kernels) guard against Mesa llvmpipe's silent cap of 65535
 *             loop iterations per work-item (all loops together, every
 *             loop entry costing one more): the only loops that grow with
 *             T are the state-passing scans (one iteration per chunk of a
 *             sequence) and param_reduce (one per chunk of the batch); the
 *             per-chunk kernels stay below about 20k at CH = 256,
 *             P = DS = 256, BK = 16 (dt_bwd about 10.5k).
 *   step      decode steps after a forward prefill == the reference forward
 *             over the whole sequence (last rows and final state), state
 *             updated in place.
 *   determinism  two backward runs are bitwise equal.
 *   errors    argument checks return the documented statuses.
 * Tolerances (relative RMS, fp32 vs float64): y, ht 2e-5; dx, dB, dC, dD,
 * dh0 1e-4; ddt, dA_log, ddt_bias 1e-3 (scalar gradients that are sums of
 * many cancelling terms, as dg in the gated delta suite).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gdn_test.h"
#include "mamba2_ref.h"

enum { DECAY_NORMAL = 0, DECAY_STRONG = 1, DECAY_ZERO = 2, DECAY_EXTREME = 3 };

struct m2_case {
    const char *name;
    int         nseq;
    int         lens[8];
    int         batched; /* 4-D tensors: nseq sequences of lens[0] tokens */
    int         H, G, P, DS, chunk;
    int         has_h0, has_D, has_bias, has_dht;
    int         decay;
    float       dt_min, dt_max;
};

// clang-format off
static const struct m2_case cases[] = {
    {"T1",            1, {1},                    0, 2, 1, 16, 16,   0, 0, 1, 1, 0, DECAY_NORMAL, 0, 0},
    {"T65_G2_h0",     1, {65},                   0, 4, 2, 64, 64,   0, 1, 1, 1, 1, DECAY_NORMAL, 0, 0},
    {"varlen_P48_DS80", 7, {1, 17, 64, 0, 65, 3, 130}, 0, 4, 2, 48, 80, 0, 1, 1, 1, 1, DECAY_NORMAL, 0, 0},
    {"batched_DS128", 2, {70},                   1, 2, 1, 64, 128,  0, 0, 0, 0, 0, DECAY_NORMAL, 0, 0},
    {"chunk128",      1, {300},                  0, 2, 2, 64, 64, 128, 1, 1, 1, 1, DECAY_NORMAL, 0, 0},
    {"chunk256_varlen", 4, {300, 1, 256, 45},    0, 2, 1, 64, 64, 256, 1, 0, 1, 1, DECAY_NORMAL, 0, 0},
    {"strong_decay",  2, {100, 33},              0, 2, 1, 16, 16,   0, 1, 1, 1, 1, DECAY_STRONG, 0, 0},
    {"zero_decay",    1, {150},                  0, 2, 1, 16, 16,   0, 1, 1, 1, 1, DECAY_ZERO,   0, 0},
    {"extreme_decay", 2, {70, 9},                0, 2, 2, 16, 16,   0, 1, 1, 1, 1, DECAY_EXTREME, 0, 0},
    {"clamp_G_eq_H",  2, {90, 40},               0, 4, 4, 64, 64,   0, 1, 1, 1, 1, DECAY_NORMAL, 0.01f, 0.05f},
    {"P256_DS256",    1, {70},                   0, 1, 1, 256, 256, 0, 1, 1, 1, 1, DECAY_NORMAL, 0, 0},
    {"long_T16384",   1, {16384},                0, 2, 1, 16, 16,   0, 1, 1, 1, 1, DECAY_NORMAL, 0, 0},
    {"c256_P256_DS256", 1, {512},           0, 1, 1, 256, 256, 256, 1, 1, 1, 1, DECAY_NORMAL, 0, 0},
};
// clang-format on

/* Inputs of one problem, float64 values already rounded to float. */
struct m2_data {
    int    T, nseq, *off;
    size_t nx, nt, nbc, nst;
    double *x, *dtr, *Al, *bias, *B, *C, *D, *h0, *dy, *dht;
};

static double *dalloc(size_t n)
{
    double *p = calloc(n ? n : 1, sizeof(double));
    ck_assert_ptr_nonnull(p);
    return p;
}

static void round_f32(double *x, size_t n)
{
    for (size_t i = 0; i < n; i++)
        x[i] = (double)(float)x[i];
}

static void gen(struct m2_data *d, const struct m2_case *c, uint64_t seed)
{
    struct gdn_rng rng;
    gdn_rng_seed(&rng, seed);
    d->nseq = c->nseq;
    d->off  = calloc((size_t)c->nseq + 1, sizeof(int));
    ck_assert_ptr_nonnull(d->off);
    for (int n = 0; n < c->nseq; n++)
        d->off[n + 1] = d->off[n] + (c->batched ? c->lens[0] : c->lens[n]);
    d->T   = d->off[c->nseq];
    d->nx  = (size_t)d->T * c->H * c->P;
    d->nt  = (size_t)d->T * c->H;
    d->nbc = (size_t)d->T * c->G * c->DS;
    d->nst = (size_t)c->nseq * c->H * c->P * c->DS;
    d->x = dalloc(d->nx), d->dtr = dalloc(d->nt), d->Al = dalloc(c->H), d->B = dalloc(d->nbc);
    d->C = dalloc(d->nbc), d->dy = dalloc(d->nx), d->bias = dalloc(c->H), d->D = dalloc(c->H);
    d->h0 = dalloc(d->nst), d->dht = dalloc(d->nst);
    gdn_rng_fill_normal(&rng, d->x, d->nx, 1.0);
    gdn_rng_fill_normal(&rng, d->dtr, d->nt, 1.0);
    gdn_rng_fill_normal(&rng, d->B, d->nbc, 1.0);
    gdn_rng_fill_normal(&rng, d->C, d->nbc, 1.0);
    gdn_rng_fill_normal(&rng, d->dy, d->nx, 1.0);
    gdn_rng_fill_normal(&rng, d->D, c->H, 1.0);
    gdn_rng_fill_normal(&rng, d->h0, d->nst, 1.0);
    gdn_rng_fill_normal(&rng, d->dht, d->nst, 1.0);
    for (int h = 0; h < c->H; h++) {
        /* mamba_ssm init: A in [1, 16], dt in [1e-3, 0.1] through the bias */
        double a = 1.0 + 15.0 * gdn_rng_uniform(&rng);
        double t = exp(log(1e-3) + (log(0.1) - log(1e-3)) * gdn_rng_uniform(&rng));
        if (c->decay == DECAY_STRONG) {
            a = 50.0 + 50.0 * gdn_rng_uniform(&rng);
            t = 0.5 + 0.5 * gdn_rng_uniform(&rng);
        }
        d->Al[h]   = c->decay == DECAY_ZERO ? -INFINITY : log(a); /* A = -0: no decay */
        if (c->decay == DECAY_EXTREME && h == 0)
            d->Al[h] = 80.0; /* A = -5.5e34: dt A underflows every decay to 0 */
        d->bias[h] = log(expm1(t)); /* inverse softplus */
    }
    if (!c->has_bias) /* fold the bias into dt_raw so dt stays realistic */
        for (size_t i = 0; i < d->nt; i++)
            d->dtr[i] += d->bias[i % (size_t)c->H];
    round_f32(d->x, d->nx), round_f32(d->dtr, d->nt), round_f32(d->Al, c->H);
    round_f32(d->B, d->nbc), round_f32(d->C, d->nbc), round_f32(d->dy, d->nx);
    round_f32(d->bias, c->H), round_f32(d->D, c->H), round_f32(d->h0, d->nst);
    round_f32(d->dht, d->nst);
}

static void data_free(struct m2_data *d)
{
    free(d->off), free(d->x), free(d->dtr), free(d->Al), free(d->B), free(d->C), free(d->dy);
    free(d->bias), free(d->D), free(d->h0), free(d->dht);
}

/* Token-dim tensor shapes: packed [T, a(, b)] or batched [B, Tb, a(, b)]. */
static gdn_tensor *tok_tensor(const struct m2_case *c, const struct m2_data *d, int64_t a,
                              int64_t b, const double *data)
{
    int64_t shp[4];
    int32_t nd = 0;
    if (c->batched) {
        shp[nd++] = c->nseq;
        shp[nd++] = c->lens[0];
    } else {
        shp[nd++] = d->T;
    }
    shp[nd++] = a;
    if (b > 0)
        shp[nd++] = b;
    return gdn_test_tensor(nd, shp, data);
}

static gdn_tensor *vec_tensor(int64_t n, const double *data)
{
    return gdn_test_tensor(1, &n, data);
}

static gdn_tensor *state_tensor(const struct m2_case *c, const double *data)
{
    int64_t shp[4] = {c->nseq, c->H, c->P, c->DS};
    return gdn_test_tensor(4, shp, data);
}

/* gdn_test_expect, and print the measured error (for the report). */
static void expect(const gdn_tensor *t, const double *ref, double tol, const char *what,
                   const char *desc)
{
    double e = gdn_test_expect(t, ref, tol, what, desc);
    printf("  %-28s %-9s rel_rms %.2e (tol %.0e)\n", desc, what, e, tol);
    fflush(stdout);
}

static void tensor_bitwise_equal(const gdn_tensor *a, const gdn_tensor *b, const char *what)
{
    float *fa = gdn_test_read(a), *fb = gdn_test_read(b);
    ck_assert_msg(memcmp(fa, fb, gdn_tensor_nbytes(a)) == 0, "%s: backward not deterministic",
                  what);
    free(fa);
    free(fb);
}

START_TEST(test_fwd_bwd)
{
    const struct m2_case *c = &cases[_i];
    struct m2_data        d;
    struct m2_ref_shape   rs;
    double *y, *ht, *dx, *ddt, *dAl, *dbias, *dB, *dC, *dD, *dh0;
    gdn_tensor *tx, *tdt, *tAl, *tbias = NULL, *tB, *tC, *tD = NULL, *th0 = NULL;
    gdn_tensor *ty, *tht, *tdy, *tdht = NULL;
    gdn_tensor *gdx, *gddt, *gdAl, *gdbias = NULL, *gdB, *gdC, *gdD = NULL, *gdh0;
    gdn_mamba2_params p;
    gdn_mamba2_args   a;
    gdn_mamba2_grads  g;
    gdn_mamba2_tape  *tape = NULL;
    char              desc[160];

    memset(&d, 0, sizeof(d));
    gen(&d, c, 1000 + (uint64_t)_i);
    snprintf(desc, sizeof(desc), "%s", c->name);
    printf("%s: T=%d N=%d H=%d G=%d P=%d DS=%d chunk=%d\n", c->name, d.T, c->nseq, c->H, c->G,
           c->P, c->DS, c->chunk ? c->chunk : 64);

    /* reference */
    memset(&rs, 0, sizeof(rs));
    rs.nseq = c->nseq, rs.offsets = d.off, rs.H = c->H, rs.G = c->G, rs.P = c->P, rs.DS = c->DS;
    rs.dt_min = c->dt_min;
    rs.dt_max = c->dt_max > 0 ? c->dt_max : INFINITY;
    y = dalloc(d.nx), ht = dalloc(d.nst), dx = dalloc(d.nx), ddt = dalloc(d.nt);
    dAl = dalloc(c->H), dbias = dalloc(c->H), dB = dalloc(d.nbc), dC = dalloc(d.nbc);
    dD = dalloc(c->H), dh0 = dalloc(d.nst);
    m2_ref_forward(&rs, d.x, d.dtr, d.Al, c->has_bias ? d.bias : NULL, d.B, d.C,
                   c->has_D ? d.D : NULL, c->has_h0 ? d.h0 : NULL, y, ht);
    m2_ref_backward(&rs, d.x, d.dtr, d.Al, c->has_bias ? d.bias : NULL, d.B, d.C,
                    c->has_D ? d.D : NULL, c->has_h0 ? d.h0 : NULL, d.dy,
                    c->has_dht ? d.dht : NULL, dx, ddt, dAl, dbias, dB, dC, dD, dh0);

    /* device */
    tx  = tok_tensor(c, &d, c->H, c->P, d.x);
    tdt = tok_tensor(c, &d, c->H, 0, d.dtr);
    tAl = vec_tensor(c->H, d.Al);
    tB  = tok_tensor(c, &d, c->G, c->DS, d.B);
    tC  = tok_tensor(c, &d, c->G, c->DS, d.C);
    if (c->has_bias)
        tbias = vec_tensor(c->H, d.bias);
    if (c->has_D)
        tD = vec_tensor(c->H, d.D);
    if (c->has_h0)
        th0 = state_tensor(c, d.h0);
    ty  = tok_tensor(c, &d, c->H, c->P, NULL);
    tht = state_tensor(c, NULL);
    tdy = tok_tensor(c, &d, c->H, c->P, d.dy);
    if (c->has_dht)
        tdht = state_tensor(c, d.dht);

    gdn_mamba2_params_init(&p);
    p.dt_min = c->dt_min, p.dt_max = c->dt_max, p.chunk_size = c->chunk;
    memset(&a, 0, sizeof(a));
    a.x = tx, a.dt = tdt, a.A_log = tAl, a.dt_bias = tbias, a.B = tB, a.C = tC, a.D = tD;
    a.h0 = th0;
    if (!c->batched) {
        a.seq_offsets = d.off;
        a.n_seqs      = c->nseq;
    }
    GDN_TEST_OK(gdn_mamba2_forward(gdn_test_ctx, &p, &a, ty, tht, &tape));
    expect(ty, y, 2e-5, "y", desc);
    expect(tht, ht, 2e-5, "ht", desc);

    gdx = tok_tensor(c, &d, c->H, c->P, NULL);
    gddt = tok_tensor(c, &d, c->H, 0, NULL);
    gdAl = vec_tensor(c->H, NULL);
    gdB = tok_tensor(c, &d, c->G, c->DS, NULL);
    gdC = tok_tensor(c, &d, c->G, c->DS, NULL);
    gdh0 = state_tensor(c, NULL);
    if (c->has_bias)
        gdbias = vec_tensor(c->H, NULL);
    if (c->has_D)
        gdD = vec_tensor(c->H, NULL);
    memset(&g, 0, sizeof(g));
    g.dx = gdx, g.ddt = gddt, g.dA_log = gdAl, g.ddt_bias = gdbias, g.dB = gdB, g.dC = gdC;
    g.dD = gdD, g.dh0 = gdh0;
    GDN_TEST_OK(gdn_mamba2_backward(gdn_test_ctx, tape, tdy, tdht, &g));
    expect(gdx, dx, 1e-4, "dx", desc);
    expect(gdB, dB, 1e-4, "dB", desc);
    expect(gdC, dC, 1e-4, "dC", desc);
    expect(gdh0, dh0, 1e-4, "dh0", desc);
    if (gdD)
        expect(gdD, dD, 1e-4, "dD", desc);
    expect(gddt, ddt, 1e-3, "ddt", desc);
    expect(gdAl, dAl, 1e-3, "dA_log", desc);
    if (gdbias)
        expect(gdbias, dbias, 1e-3, "ddt_bias", desc);

    if (_i == 2) { /* determinism: a second backward is bitwise equal */
        gdn_tensor      *e[4];
        gdn_mamba2_grads g2;
        e[0] = tok_tensor(c, &d, c->H, 0, NULL);
        e[1] = vec_tensor(c->H, NULL);
        e[2] = tok_tensor(c, &d, c->G, c->DS, NULL);
        e[3] = tok_tensor(c, &d, c->H, c->P, NULL);
        memset(&g2, 0, sizeof(g2));
        g2.ddt = e[0], g2.dA_log = e[1], g2.dB = e[2], g2.dx = e[3];
        GDN_TEST_OK(gdn_mamba2_backward(gdn_test_ctx, tape, tdy, tdht, &g2));
        tensor_bitwise_equal(e[0], gddt, "ddt");
        tensor_bitwise_equal(e[1], gdAl, "dA_log");
        tensor_bitwise_equal(e[2], gdB, "dB");
        tensor_bitwise_equal(e[3], gdx, "dx");
        for (int k = 0; k < 4; k++)
            gdn_tensor_destroy(e[k]);
    }

    gdn_mamba2_tape_destroy(tape);
    {
        gdn_tensor *all[] = {tx,  tdt, tAl,  tbias, tB,  tC,  tD,     th0,  ty,  tht, tdy,
                             tdht, gdx, gddt, gdAl, gdbias, gdB, gdC, gdD, gdh0};
        for (size_t k = 0; k < sizeof(all) / sizeof(all[0]); k++)
            gdn_tensor_destroy(all[k]);
    }
    free(y), free(ht), free(dx), free(ddt), free(dAl), free(dbias), free(dB), free(dC);
    free(dD), free(dh0);
    data_free(&d);
}
END_TEST

/* Decode: prefill Tb tokens with the chunked forward, then `steps` decode
 * steps; compare with the reference forward over Tb + steps tokens. */
struct step_case {
    const char *name;
    int         nseq, Tb, steps, H, G, P, DS, has_bias, has_D;
    float       dt_min, dt_max;
};
static const struct step_case step_cases[] = {
    {"decode_DS128_clamp", 3, 20, 3, 4, 2, 64, 128, 1, 1, 0.002f, 0.08f},
    {"decode_P48_DS80", 2, 1, 4, 2, 1, 48, 80, 0, 0, 0.0f, 0.0f},
    {"decode_P16_DS16_from_zero", 2, 0, 3, 2, 2, 16, 16, 1, 1, 0.0f, 0.0f},
};

START_TEST(test_step)
{
    const struct step_case *sc = &step_cases[_i];
    struct m2_case          c;
    struct m2_data          d;
    struct m2_ref_shape     rs;
    const int               Tt = sc->Tb + sc->steps;
    double                 *yref, *htref;
    gdn_tensor             *state;
    gdn_mamba2_params       p;
    char                    desc[128];

    memset(&c, 0, sizeof(c));
    c.name = sc->name, c.nseq = sc->nseq, c.lens[0] = Tt, c.batched = 1, c.H = sc->H;
    c.G = sc->G, c.P = sc->P, c.DS = sc->DS, c.has_h0 = 1, c.has_D = sc->has_D;
    c.has_bias = sc->has_bias;
    memset(&d, 0, sizeof(d));
    gen(&d, &c, 77 + (uint64_t)_i);
    memset(&rs, 0, sizeof(rs));
    rs.nseq = c.nseq, rs.offsets = d.off, rs.H = c.H, rs.G = c.G, rs.P = c.P, rs.DS = c.DS;
    rs.dt_min = sc->dt_min, rs.dt_max = sc->dt_max > 0 ? sc->dt_max : INFINITY;
    yref = dalloc(d.nx), htref = dalloc(d.nst);
    m2_ref_forward(&rs, d.x, d.dtr, d.Al, sc->has_bias ? d.bias : NULL, d.B, d.C,
                   sc->has_D ? d.D : NULL, d.h0, yref, htref);

    gdn_mamba2_params_init(&p);
    p.dt_min = sc->dt_min, p.dt_max = sc->dt_max;
    state = state_tensor(&c, d.h0);
    {
        gdn_tensor *tAl = vec_tensor(c.H, d.Al);
        gdn_tensor *tbias = sc->has_bias ? vec_tensor(c.H, d.bias) : NULL;
        gdn_tensor *tD = sc->has_D ? vec_tensor(c.H, d.D) : NULL;
        /* gather per-token slices of the batched inputs */
        const size_t xs = (size_t)c.H * c.P, ts = (size_t)c.H, bs = (size_t)c.G * c.DS;
        if (sc->Tb > 0) {
            double *px = dalloc(c.nseq * sc->Tb * xs), *pt = dalloc(c.nseq * sc->Tb * ts);
            double *pB = dalloc(c.nseq * sc->Tb * bs), *pC = dalloc(c.nseq * sc->Tb * bs);
            int64_t shx[4] = {c.nseq, sc->Tb, c.H, c.P}, sht[3] = {c.nseq, sc->Tb, c.H};
            int64_t shb[4] = {c.nseq, sc->Tb, c.G, c.DS};
            gdn_tensor *tx, *tdt, *tB, *tC, *ty, *tht;
            gdn_mamba2_args a;
            for (int n = 0; n < c.nseq; n++)
                for (int t = 0; t < sc->Tb; t++) {
                    size_t src = (size_t)n * Tt + t, dst = (size_t)n * sc->Tb + t;
                    memcpy(px + dst * xs, d.x + src * xs, xs * sizeof(double));
                    memcpy(pt + dst * ts, d.dtr + src * ts, ts * sizeof(double));
                    memcpy(pB + dst * bs, d.B + src * bs, bs * sizeof(double));
                    memcpy(pC + dst * bs, d.C + src * bs, bs * sizeof(double));
                }
            tx = gdn_test_tensor(4, shx, px), tdt = gdn_test_tensor(3, sht, pt);
            tB = gdn_test_tensor(4, shb, pB), tC = gdn_test_tensor(4, shb, pC);
            ty = gdn_test_tensor(4, shx, NULL), tht = state_tensor(&c, NULL);
            memset(&a, 0, sizeof(a));
            a.x = tx, a.dt = tdt, a.A_log = tAl, a.dt_bias = tbias, a.B = tB, a.C = tC;
            a.D = tD, a.h0 = state;
            GDN_TEST_OK(gdn_mamba2_forward(gdn_test_ctx, &p, &a, ty, tht, NULL));
            gdn_tensor_destroy(state);
            state = tht;
            gdn_tensor_destroy(tx), gdn_tensor_destroy(tdt), gdn_tensor_destroy(tB);
            gdn_tensor_destroy(tC), gdn_tensor_destroy(ty);
            free(px), free(pt), free(pB), free(pC);
        }
        for (int k = 0; k < sc->steps; k++) {
            const int t = sc->Tb + k;
            double *px = dalloc(c.nseq * xs), *pt = dalloc(c.nseq * ts);
            double *pB = dalloc(c.nseq * bs), *pC = dalloc(c.nseq * bs), *yr = dalloc(c.nseq * xs);
            int64_t shx[3] = {c.nseq, c.H, c.P}, sht[2] = {c.nseq, c.H}, shb[3] = {c.nseq, c.G, c.DS};
            gdn_tensor *tx, *tdt, *tB, *tC, *ty;
            gdn_mamba2_args a;
            for (int n = 0; n < c.nseq; n++) {
                size_t src = (size_t)n * Tt + t;
                memcpy(px + n * xs, d.x + src * xs, xs * sizeof(double));
                memcpy(pt + n * ts, d.dtr + src * ts, ts * sizeof(double));
                memcpy(pB + n * bs, d.B + src * bs, bs * sizeof(double));
                memcpy(pC + n * bs, d.C + src * bs, bs * sizeof(double));
                memcpy(yr + n * xs, yref + src * xs, xs * sizeof(double));
            }
            tx = gdn_test_tensor(3, shx, px), tdt = gdn_test_tensor(2, sht, pt);
            tB = gdn_test_tensor(3, shb, pB), tC = gdn_test_tensor(3, shb, pC);
            ty = gdn_test_tensor(3, shx, NULL);
            memset(&a, 0, sizeof(a));
            a.x = tx, a.dt = tdt, a.A_log = tAl, a.dt_bias = tbias, a.B = tB, a.C = tC;
            a.D = tD;
            GDN_TEST_OK(gdn_mamba2_step(gdn_test_ctx, &p, &a, state, ty));
            snprintf(desc, sizeof(desc), "%s step %d", sc->name, k);
            expect(ty, yr, 2e-5, "y", desc);
            gdn_tensor_destroy(tx), gdn_tensor_destroy(tdt), gdn_tensor_destroy(tB);
            gdn_tensor_destroy(tC), gdn_tensor_destroy(ty);
            free(px), free(pt), free(pB), free(pC), free(yr);
        }
        snprintf(desc, sizeof(desc), "%s final state", sc->name);
        expect(state, htref, 2e-5, "state", desc);
        gdn_tensor_destroy(tAl), gdn_tensor_destroy(tbias), gdn_tensor_destroy(tD);
    }
    gdn_tensor_destroy(state);
    free(yref), free(htref);
    data_free(&d);
}
END_TEST

/* Argument checks (no kernel is built). */
START_TEST(test_errors)
{
    int64_t          sx[3] = {5, 4, 64}, st[2] = {5, 4}, sb[3] = {5, 2, 64}, sh = 4;
    int64_t          sbad[3] = {5, 3, 64}, sx24[3] = {5, 4, 24};
    gdn_tensor      *x = gdn_test_tensor(3, sx, NULL), *dt = gdn_test_tensor(2, st, NULL);
    gdn_tensor      *B = gdn_test_tensor(3, sb, NULL), *C = gdn_test_tensor(3, sb, NULL);
    gdn_tensor      *Al = gdn_test_tensor(1, &sh, NULL), *y = gdn_test_tensor(3, sx, NULL);
    gdn_tensor      *Bbad = gdn_test_tensor(3, sbad, NULL), *x24 = gdn_test_tensor(3, sx24, NULL);
    gdn_mamba2_args  a;
    gdn_mamba2_params p;
    gdn_mamba2_tape *tape = (gdn_mamba2_tape *)1;
    int32_t          off[3] = {0, 3, 4};

    memset(&a, 0, sizeof(a));
    a.x = x, a.dt = dt, a.A_log = Al, a.B = B, a.C = C;
    gdn_mamba2_params_init(&p);
    ck_assert_int_eq(gdn_mamba2_forward(gdn_test_ctx, &p, &a, NULL, NULL, &tape),
                     GDN_STATUS_INVALID_ARGUMENT);
    ck_assert_ptr_null(tape);
    p.chunk_size = 32;
    ck_assert_int_eq(gdn_mamba2_forward(gdn_test_ctx, &p, &a, y, NULL, NULL),
                     GDN_STATUS_INVALID_ARGUMENT);
    p.chunk_size = 0, p.dt_min = 0.5f, p.dt_max = 0.1f;
    ck_assert_int_eq(gdn_mamba2_forward(gdn_test_ctx, &p, &a, y, NULL, NULL),
                     GDN_STATUS_INVALID_ARGUMENT);
    gdn_mamba2_params_init(&p);
    p.reserved[0] = 1;
    ck_assert_int_eq(gdn_mamba2_forward(gdn_test_ctx, &p, &a, y, NULL, NULL),
                     GDN_STATUS_INVALID_ARGUMENT);
    gdn_mamba2_params_init(&p);
    a.B = Bbad; /* H = 4 not a multiple of G = 3 */
    ck_assert_int_eq(gdn_mamba2_forward(gdn_test_ctx, &p, &a, y, NULL, NULL),
                     GDN_STATUS_SHAPE_MISMATCH);
    a.B = B, a.x = x24; /* P = 24 */
    ck_assert_int_eq(gdn_mamba2_forward(gdn_test_ctx, &p, &a, y, NULL, NULL),
                     GDN_STATUS_UNSUPPORTED);
    a.x = x, a.seq_offsets = off, a.n_seqs = 2; /* offsets end at 4, T = 5 */
    ck_assert_int_eq(gdn_mamba2_forward(gdn_test_ctx, &p, &a, y, NULL, NULL),
                     GDN_STATUS_INVALID_ARGUMENT);
    a.seq_offsets = NULL, a.n_seqs = 0, a.C = NULL;
    ck_assert_int_eq(gdn_mamba2_forward(gdn_test_ctx, &p, &a, y, NULL, NULL),
                     GDN_STATUS_INVALID_ARGUMENT);
    ck_assert_msg(strstr(gdn_context_last_error(gdn_test_ctx), "C") != NULL, "message names C");
    a.C = C, a.dt = x; /* dt with the wrong shape */
    ck_assert_int_eq(gdn_mamba2_forward(gdn_test_ctx, &p, &a, y, NULL, NULL),
                     GDN_STATUS_SHAPE_MISMATCH);
    a.dt = dt;
    ck_assert_int_eq(gdn_mamba2_forward(gdn_test_ctx, &p, &a, x, NULL, NULL),
                     GDN_STATUS_INVALID_ARGUMENT); /* y aliases x */
    {
        gdn_tensor *all[] = {x, dt, B, C, Al, y, Bbad, x24};
        for (size_t k = 0; k < sizeof(all) / sizeof(all[0]); k++)
            gdn_tensor_destroy(all[k]);
    }
}
END_TEST

int main(void)
{
    Suite *s  = suite_create("mamba2");
    TCase *tc = tcase_create("fwd_bwd");
    TCase *ts = tcase_create("step");
    TCase *te = tcase_create("errors");
    gdn_test_add_ctx_fixture(tc, 600);
    gdn_test_add_ctx_fixture(ts, 300);
    gdn_test_add_ctx_fixture(te, 60);
    tcase_add_loop_test(tc, test_fwd_bwd, 0, (int)(sizeof(cases) / sizeof(cases[0])));
    tcase_add_loop_test(ts, test_step, 0, (int)(sizeof(step_cases) / sizeof(step_cases[0])));
    tcase_add_test(te, test_errors);
    suite_add_tcase(s, te);
    suite_add_tcase(s, tc);
    suite_add_tcase(s, ts);
    return gdn_test_run(s, 1);
}
