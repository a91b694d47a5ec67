/*
 * test_gd_backward.c - device suite gd_backward: gdn_gated_delta_backward
 * (chunked, stages B1-B9 of ALGORITHM.md 2.3) against the float64 reference
 * backward of the token recurrence (gdn_ref_gd_backward), chained on the
 * host through the reference L2-norm, gate and beta backward for the in-op
 * options.
 *
 * Inputs: q, k L2-normalised rows (raw normal rows with QK_L2NORM); v
 * normal; log gates uniform in [-20, 0), exactly 0, in [-0.3, 0) (long
 * memory, exercises the inter-chunk paths) or in [-120, -40) (strong decay,
 * exp underflows); beta in (0, 1) (raw normal b with BETA_SIGMOID). Shapes
 * cover T in {1, 17, 64, 65, 300}, T not a multiple of 64, varlen batches
 * with length-1 and empty sequences, 4-D batched tensors, GVA ratios 1, 2, 4,
 * K, V in {16, 32, 64, 128} and one small case with K = 256, with and
 * without h0 and dht.
 *
 * Tolerances (relative RMS, fp32): dq, dk, dv, dh0 <= 1e-4; dg, dbeta (and
 * da, dA_log, ddt_bias) <= 1e-3. The measured errors are printed per case.
 *
 * Also: NULL entries of grads are allowed (the others are still right), and
 * two backward calls on one tape give bitwise identical results.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gated_delta_ref.h"
#include "gdn_test.h"

enum { GM_DEFAULT, GM_ZERO, GM_MILD, GM_STRONG };

struct gd_case {
    const char *desc;
    int32_t     nseq;
    int32_t     lens[8];
    int32_t     batched; /* 4-D tensors [B, T_b, ...]: all lens equal */
    int32_t     H, HV, K, V;
    uint32_t    flags;
    int32_t     gmode;
    int32_t     has_h0, has_dht;
};

#define L2  GDN_GATED_DELTA_QK_L2NORM
#define GIO GDN_GATED_DELTA_GATE_IN_OP
#define BS  GDN_GATED_DELTA_BETA_SIGMOID
#define NEG GDN_GATED_DELTA_NEG_EIGVAL

// clang-format off
static const struct gd_case cases[] = {
    {"T=1 K=V=16",                   1, {1},                     0, 1, 1,  16,  16, 0, GM_DEFAULT, 1, 1},
    {"T=17 GVA2 K=V=16 mild",        1, {17},                    0, 1, 2,  16,  16, 0, GM_MILD,    0, 1},
    {"T=64 K=V=64 mild",             1, {64},                    0, 2, 2,  64,  64, 0, GM_MILD,    1, 0},
    {"T=65 GVA4 K=V=64 g=0",         1, {65},                    0, 1, 4,  64,  64, 0, GM_ZERO,    1, 1},
    {"T=300 K=V=128",                1, {300},                   0, 1, 1, 128, 128, 0, GM_DEFAULT, 1, 1},
    {"T=300 GVA2 K=V=128 mild",      1, {300},                   0, 1, 2, 128, 128, 0, GM_MILD,    0, 0},
    {"T=130 K=V=64 strong decay",    1, {130},                   0, 1, 1,  64,  64, 0, GM_STRONG,  1, 1},
    {"varlen 8 GVA2 K=32 V=128",     8, {5, 1, 70, 64, 1, 0, 129, 17}, 0, 2, 4, 32, 128, 0, GM_MILD, 1, 1},
    {"varlen all T=1 GVA4 K=V=16",   3, {1, 1, 1},               0, 1, 4,  16,  16, 0, GM_MILD,    1, 1},
    {"batched 2x65 K=V=64 g=0",      2, {65, 65},                1, 2, 2,  64,  64, 0, GM_ZERO,    1, 0},
    {"in-op all, varlen GVA2",       4, {5, 70, 1, 130},         0, 2, 4,  64,  64, L2 | GIO | BS | NEG, GM_DEFAULT, 1, 1},
    {"in-op L2+sigmoid, batched",    2, {65, 65},                1, 1, 1, 128, 128, L2 | BS, GM_MILD, 0, 1},
    {"in-op gate, T=200 GVA2",       1, {200},                   0, 2, 4,  32, 128, GIO, GM_DEFAULT, 1, 0},
    {"in-op L2, varlen GVA4",        3, {1, 66, 17},             0, 1, 4,  16,  16, L2, GM_MILD,   0, 1},
    {"K=256 V=32 GVA2 small",        3, {40, 1, 9},              0, 1, 2, 256,  32, 0, GM_MILD,    1, 1},
    {"T=2048 K=V=64",                1, {2048},                  0, 1, 1,  64,  64, 0, GM_MILD,    1, 1},
    {"K=32 V=256 T=70",              1, {70},                    0, 1, 1,  32, 256, 0, GM_DEFAULT, 1, 1},
};
// clang-format on

/* Everything of one problem on the host (float64, rounded to float where the
 * device sees it) and the device tensors. */
struct gd_problem {
    const struct gd_case     *c;
    struct gdn_ref_gd_problem p;
    int32_t                   offsets[9];
    int64_t                   T;
    /* raw inputs as given to the op */
    double *q, *k, *v, *g, *beta, *A_log, *dt_bias, *h0, *do_, *dht;
    /* reference gradients w.r.t. the op's inputs */
    double *dq, *dk, *dv, *dg, *dbeta, *dA_log, *ddt_bias, *dh0;
    /* device */
    gdn_tensor *tq, *tk, *tv, *tg, *tb, *tA, *tdt, *th0, *to, *tdo, *tdht;
};

static double *alloc_d(size_t n)
{
    double *x = calloc(n ? n : 1, sizeof(double));
    ck_assert_ptr_nonnull(x);
    return x;
}

static void round_f32(double *x, size_t n)
{
    for (size_t i = 0; i < n; i++)
        x[i] = (double)(float)x[i];
}

static void problem_build(struct gd_problem *P, const struct gd_case *c, uint64_t seed)
{
    struct gdn_rng rng;
    size_t         nqk, nv, ng, ns;
    int32_t        n;

    memset(P, 0, sizeof(*P));
    P->c = c;
    gdn_rng_seed(&rng, seed);
    P->offsets[0] = 0;
    for (n = 0; n < c->nseq; n++)
        P->offsets[n + 1] = P->offsets[n] + c->lens[n];
    P->T        = P->offsets[c->nseq];
    P->p.T      = P->T;
    P->p.H      = c->H;
    P->p.HV     = c->HV;
    P->p.K      = c->K;
    P->p.V      = c->V;
    P->p.n_seqs = c->nseq;
    P->p.offsets = P->offsets;
    P->p.scale  = 1.0 / sqrt((double)c->K);
    nqk         = (size_t)P->T * c->H * c->K;
    nv          = (size_t)P->T * c->HV * c->V;
    ng          = (size_t)P->T * c->HV;
    ns          = (size_t)c->nseq * c->HV * c->K * c->V;

    P->q = alloc_d(nqk), P->k = alloc_d(nqk), P->v = alloc_d(nv), P->g = alloc_d(ng);
    P->beta = alloc_d(ng), P->A_log = alloc_d(c->HV), P->dt_bias = alloc_d(c->HV);
    P->h0 = alloc_d(ns), P->do_ = alloc_d(nv), P->dht = alloc_d(ns);
    if (c->flags & L2) {
        gdn_rng_fill_normal(&rng, P->q, nqk, 1.0);
        gdn_rng_fill_normal(&rng, P->k, nqk, 1.0);
    } else {
        gdn_rng_fill_l2rows(&rng, P->q, (size_t)P->T * c->H, (size_t)c->K);
        gdn_rng_fill_l2rows(&rng, P->k, (size_t)P->T * c->H, (size_t)c->K);
    }
    gdn_rng_fill_normal(&rng, P->v, nv, 1.0);
    if (c->flags & GIO) {
        for (int32_t h = 0; h < c->HV; h++) {
            double dt    = exp(log(1e-3) + gdn_rng_uniform(&rng) * (log(0.1) - log(1e-3)));
            P->A_log[h]  = log(1.0 + 15.0 * gdn_rng_uniform(&rng));
            P->dt_bias[h] = dt + log(-expm1(-dt));
        }
        gdn_rng_fill_normal(&rng, P->g, ng, 1.0);
    } else if (c->gmode == GM_ZERO) {
        memset(P->g, 0, ng * sizeof(double));
    } else if (c->gmode == GM_MILD) {
        gdn_rng_fill_uniform(&rng, P->g, ng, -0.3, 0.0);
    } else if (c->gmode == GM_STRONG) {
        gdn_rng_fill_uniform(&rng, P->g, ng, -120.0, -40.0);
    } else {
        gdn_rng_fill_uniform(&rng, P->g, ng, -20.0, 0.0);
    }
    if (c->flags & BS)
        gdn_rng_fill_normal(&rng, P->beta, ng, 2.0);
    else
        gdn_rng_fill_uniform(&rng, P->beta, ng, 0.02, 0.98);
    gdn_rng_fill_normal(&rng, P->h0, ns, 0.5);
    gdn_rng_fill_normal(&rng, P->do_, nv, 1.0);
    gdn_rng_fill_normal(&rng, P->dht, ns, 0.5);
    round_f32(P->q, nqk), round_f32(P->k, nqk), round_f32(P->v, nv), round_f32(P->g, ng);
    round_f32(P->beta, ng), round_f32(P->A_log, (size_t)c->HV);
    round_f32(P->dt_bias, (size_t)c->HV), round_f32(P->h0, ns), round_f32(P->do_, nv);
    round_f32(P->dht, ns);
}

/* Reference gradients w.r.t. the op's inputs. */
static void problem_reference(struct gd_problem *P)
{
    const struct gd_case *c   = P->c;
    size_t                nqk = (size_t)P->T * c->H * c->K, nv = (size_t)P->T * c->HV * c->V;
    size_t                ng = (size_t)P->T * c->HV, ns = (size_t)c->nseq * c->HV * c->K * c->V;
    double *qu = alloc_d(nqk), *ku = alloc_d(nqk), *gu = alloc_d(ng), *bu = alloc_d(ng);
    double *dqu = alloc_d(nqk), *dku = alloc_d(nqk), *dgu = alloc_d(ng), *dbu = alloc_d(ng);

    P->dq = alloc_d(nqk), P->dk = alloc_d(nqk), P->dv = alloc_d(nv), P->dg = alloc_d(ng);
    P->dbeta = alloc_d(ng), P->dA_log = alloc_d(c->HV), P->ddt_bias = alloc_d(c->HV);
    P->dh0 = alloc_d(ns);
    if (c->flags & L2) {
        gdn_ref_l2norm_fwd(P->T * c->H, c->K, 1e-6, P->q, qu, NULL);
        gdn_ref_l2norm_fwd(P->T * c->H, c->K, 1e-6, P->k, ku, NULL);
    } else {
        memcpy(qu, P->q, nqk * sizeof(double));
        memcpy(ku, P->k, nqk * sizeof(double));
    }
    if (c->flags & GIO)
        gdn_ref_gate_fwd(P->T, c->HV, P->g, P->A_log, P->dt_bias, gu);
    else
        memcpy(gu, P->g, ng * sizeof(double));
    if (c->flags & BS)
        gdn_ref_beta_fwd((int64_t)ng, (c->flags & NEG) != 0, P->beta, bu);
    else
        memcpy(bu, P->beta, ng * sizeof(double));

    gdn_ref_gd_backward(&P->p, qu, ku, P->v, gu, bu, c->has_h0 ? P->h0 : NULL, P->do_,
                        c->has_dht ? P->dht : NULL, dqu, dku, P->dv, dgu, dbu, P->dh0);

    if (c->flags & L2) {
        gdn_ref_l2norm_bwd(P->T * c->H, c->K, 1e-6, P->q, dqu, P->dq);
        gdn_ref_l2norm_bwd(P->T * c->H, c->K, 1e-6, P->k, dku, P->dk);
    } else {
        memcpy(P->dq, dqu, nqk * sizeof(double));
        memcpy(P->dk, dku, nqk * sizeof(double));
    }
    if (c->flags & GIO)
        gdn_ref_gate_bwd(P->T, c->HV, P->g, P->A_log, P->dt_bias, dgu, P->dg, P->dA_log,
                         P->ddt_bias);
    else
        memcpy(P->dg, dgu, ng * sizeof(double));
    if (c->flags & BS)
        gdn_ref_beta_bwd((int64_t)ng, (c->flags & NEG) != 0, P->beta, dbu, P->dbeta);
    else
        memcpy(P->dbeta, dbu, ng * sizeof(double));
    free(qu), free(ku), free(gu), free(bu), free(dqu), free(dku), free(dgu), free(dbu);
}

/* Shape of a per-token tensor with `inner` trailing dims, 3-D packed or 4-D. */
static int32_t tok_shape(const struct gd_problem *P, int64_t d1, int64_t d2, int64_t *shape)
{
    int32_t nd = 0;
    if (P->c->batched) {
        shape[nd++] = P->c->nseq;
        shape[nd++] = P->c->lens[0];
    } else {
        shape[nd++] = P->T;
    }
    shape[nd++] = d1;
    if (d2 > 0)
        shape[nd++] = d2;
    return nd;
}

static void problem_upload(struct gd_problem *P)
{
    const struct gd_case *c = P->c;
    int64_t               sh[4];
    int32_t               nd;
    int64_t               st[4] = {c->nseq, c->HV, c->K, c->V}, hv = c->HV;

    nd    = tok_shape(P, c->H, c->K, sh);
    P->tq = gdn_test_tensor(nd, sh, P->q);
    P->tk = gdn_test_tensor(nd, sh, P->k);
    nd    = tok_shape(P, c->HV, c->V, sh);
    P->tv = gdn_test_tensor(nd, sh, P->v);
    P->to = gdn_test_tensor(nd, sh, NULL);
    P->tdo = gdn_test_tensor(nd, sh, P->do_);
    nd    = tok_shape(P, c->HV, 0, sh);
    P->tg = gdn_test_tensor(nd, sh, P->g);
    P->tb = gdn_test_tensor(nd, sh, P->beta);
    if (c->flags & GIO) {
        P->tA  = gdn_test_tensor(1, &hv, P->A_log);
        P->tdt = gdn_test_tensor(1, &hv, P->dt_bias);
    }
    if (c->has_h0)
        P->th0 = gdn_test_tensor(4, st, P->h0);
    if (c->has_dht)
        P->tdht = gdn_test_tensor(4, st, P->dht);
}

static void problem_free(struct gd_problem *P)
{
    gdn_tensor *ts[] = {P->tq, P->tk, P->tv, P->tg, P->tb, P->tA, P->tdt, P->th0, P->to, P->tdo,
                        P->tdht};
    double     *hs[] = {P->q,  P->k,     P->v,        P->g,  P->beta, P->A_log, P->dt_bias,
                        P->h0, P->do_,   P->dht,      P->dq, P->dk,   P->dv,    P->dg,
                        P->dbeta, P->dA_log, P->ddt_bias, P->dh0};
    for (size_t i = 0; i < sizeof(ts) / sizeof(ts[0]); i++)
        gdn_tensor_destroy(ts[i]);
    for (size_t i = 0; i < sizeof(hs) / sizeof(hs[0]); i++)
        free(hs[i]);
}

/* Forward with a tape. */
static gdn_gated_delta_tape *problem_forward(struct gd_problem *P)
{
    gdn_gated_delta_params prm;
    gdn_gated_delta_args   args;
    gdn_gated_delta_tape  *tape = NULL;

    gdn_gated_delta_params_init(&prm);
    prm.flags = P->c->flags;
    memset(&args, 0, sizeof(args));
    args.q = P->tq, args.k = P->tk, args.v = P->tv, args.g = P->tg, args.beta = P->tb;
    args.A_log = P->tA, args.dt_bias = P->tdt, args.h0 = P->th0;
    if (!P->c->batched) {
        args.seq_offsets = P->offsets;
        args.n_seqs      = P->c->nseq;
    }
    GDN_TEST_OK(gdn_gated_delta_forward(gdn_test_ctx, &prm, &args, P->to, NULL, &tape));
    ck_assert_ptr_nonnull(tape);
    return tape;
}

/* Gradient tensors shaped like the inputs, poisoned with NaN. */
struct gd_grads {
    gdn_gated_delta_grads g;
};

static gdn_tensor *nan_like(const gdn_tensor *t)
{
    int64_t shape[GDN_MAX_DIMS];
    int32_t nd = gdn_tensor_ndim(t);
    for (int32_t i = 0; i < nd; i++)
        shape[i] = gdn_tensor_dim(t, i);
    return gdn_test_tensor(nd, shape, NULL);
}

static void grads_create(const struct gd_problem *P, struct gd_grads *G)
{
    memset(G, 0, sizeof(*G));
    G->g.dq    = nan_like(P->tq);
    G->g.dk    = nan_like(P->tk);
    G->g.dv    = nan_like(P->tv);
    G->g.dg    = nan_like(P->tg);
    G->g.dbeta = nan_like(P->tb);
    {
        int64_t st[4] = {P->c->nseq, P->c->HV, P->c->K, P->c->V}, hv = P->c->HV;
        G->g.dh0 = gdn_test_tensor(4, st, NULL);
        if (P->c->flags & GIO) {
            G->g.dA_log   = gdn_test_tensor(1, &hv, NULL);
            G->g.ddt_bias = gdn_test_tensor(1, &hv, NULL);
        }
    }
}

static void grads_destroy(struct gd_grads *G)
{
    gdn_tensor_destroy(G->g.dq);
    gdn_tensor_destroy(G->g.dk);
    gdn_tensor_destroy(G->g.dv);
    gdn_tensor_destroy(G->g.dg);
    gdn_tensor_destroy(G->g.dbeta);
    gdn_tensor_destroy(G->g.dA_log);
    gdn_tensor_destroy(G->g.ddt_bias);
    gdn_tensor_destroy(G->g.dh0);
}

static void check_grads(const struct gd_problem *P, const gdn_gated_delta_grads *g,
                        const char *tag)
{
    char   desc[160];
    double e[8] = {-1, -1, -1, -1, -1, -1, -1, -1};
    snprintf(desc, sizeof(desc), "%s%s", P->c->desc, tag);
    if (g->dq)
        e[0] = gdn_test_expect(g->dq, P->dq, 1e-4, "dq", desc);
    if (g->dk)
        e[1] = gdn_test_expect(g->dk, P->dk, 1e-4, "dk", desc);
    if (g->dv)
        e[2] = gdn_test_expect(g->dv, P->dv, 1e-4, "dv", desc);
    if (g->dh0)
        e[3] = gdn_test_expect(g->dh0, P->dh0, 1e-4, "dh0", desc);
    if (g->dg)
        e[4] = gdn_test_expect(g->dg, P->dg, 1e-3, "dg", desc);
    if (g->dbeta)
        e[5] = gdn_test_expect(g->dbeta, P->dbeta, 1e-3, "dbeta", desc);
    if (g->dA_log)
        e[6] = gdn_test_expect(g->dA_log, P->dA_log, 1e-3, "dA_log", desc);
    if (g->ddt_bias)
        e[7] = gdn_test_expect(g->ddt_bias, P->ddt_bias, 1e-3, "ddt_bias", desc);
    printf("gd_backward [%s]: rel_rms dq %.2e dk %.2e dv %.2e dh0 %.2e dg %.2e dbeta %.2e "
           "dA_log %.2e ddt_bias %.2e\n",
           desc, e[0], e[1], e[2], e[3], e[4], e[5], e[6], e[7]);
    fflush(stdout);
}

START_TEST(test_backward_vs_reference)
{
    const struct gd_case *c = &cases[_i];
    struct gd_problem     P;
    struct gd_grads       G;
    gdn_gated_delta_tape *tape;

    problem_build(&P, c, 0x9d0b0000u + (uint64_t)_i);
    problem_reference(&P);
    problem_upload(&P);
    tape = problem_forward(&P);
    grads_create(&P, &G);
    GDN_TEST_OK(gdn_gated_delta_backward(gdn_test_ctx, tape, P.tdo, P.tdht, &G.g));
    GDN_TEST_OK(gdn_context_finish(gdn_test_ctx));
    check_grads(&P, &G.g, "");
    grads_destroy(&G);
    gdn_gated_delta_tape_destroy(tape);
    problem_free(&P);
}
END_TEST

/* NULL grads entries are skipped, the rest still right; and a second
 * backward on the same tape is bitwise identical to the first. */
static const struct gd_case repeat_cases[] = {
    {"repeat, in-op all, varlen GVA2", 3, {70, 1, 33}, 0, 1, 2, 64, 64, L2 | GIO | BS, GM_DEFAULT,
     1, 1},
    {"repeat, plain GVA1", 2, {65, 3}, 0, 2, 2, 16, 16, 0, GM_MILD, 1, 1},
};

START_TEST(test_null_grads_and_repeat)
{
    const struct gd_case *c = &repeat_cases[_i];
    struct gd_problem     P;
    struct gd_grads       G1, G2;
    gdn_gated_delta_grads part;
    gdn_gated_delta_tape *tape;

    problem_build(&P, c, 0x5eed0000u + (uint64_t)_i);
    problem_reference(&P);
    problem_upload(&P);
    tape = problem_forward(&P);
    grads_create(&P, &G1);
    grads_create(&P, &G2);

    /* Only some gradients: the others stay NULL (and G1's stay NaN). */
    memset(&part, 0, sizeof(part));
    part.dk = G1.g.dk;
    part.dg = G1.g.dg;
    part.dA_log = G1.g.dA_log;
    GDN_TEST_OK(gdn_gated_delta_backward(gdn_test_ctx, tape, P.tdo, P.tdht, &part));
    GDN_TEST_OK(gdn_context_finish(gdn_test_ctx));
    check_grads(&P, &part, " (partial grads)");
    memset(&part, 0, sizeof(part));
    part.dq = G1.g.dq;
    part.dbeta = G1.g.dbeta;
    part.dh0 = G1.g.dh0;
    GDN_TEST_OK(gdn_gated_delta_backward(gdn_test_ctx, tape, P.tdo, P.tdht, &part));
    GDN_TEST_OK(gdn_context_finish(gdn_test_ctx));
    check_grads(&P, &part, " (other partial grads)");

    /* All grads, twice on the same tape: identical bits. */
    GDN_TEST_OK(gdn_gated_delta_backward(gdn_test_ctx, tape, P.tdo, P.tdht, &G1.g));
    GDN_TEST_OK(gdn_gated_delta_backward(gdn_test_ctx, tape, P.tdo, P.tdht, &G2.g));
    GDN_TEST_OK(gdn_context_finish(gdn_test_ctx));
    check_grads(&P, &G2.g, " (second call)");
    {
        gdn_tensor *a[] = {G1.g.dq, G1.g.dk, G1.g.dv, G1.g.dg, G1.g.dbeta, G1.g.dA_log,
                           G1.g.ddt_bias, G1.g.dh0};
        gdn_tensor *b[] = {G2.g.dq, G2.g.dk, G2.g.dv, G2.g.dg, G2.g.dbeta, G2.g.dA_log,
                           G2.g.ddt_bias, G2.g.dh0};
        for (size_t i = 0; i < sizeof(a) / sizeof(a[0]); i++) {
            float *x, *y;
            if (!a[i])
                continue;
            x = gdn_test_read(a[i]);
            y = gdn_test_read(b[i]);
            ck_assert_msg(memcmp(x, y, gdn_tensor_nbytes(a[i])) == 0,
                          "[%s] gradient %zu differs between two backward calls", c->desc, i);
            free(x);
            free(y);
        }
    }
    grads_destroy(&G1);
    grads_destroy(&G2);
    gdn_gated_delta_tape_destroy(tape);
    problem_free(&P);
}
END_TEST

int main(void)
{
    Suite *s  = suite_create("gd_backward");
    TCase *tc = tcase_create("vs_reference");
    TCase *tr = tcase_create("null_and_repeat");

    gdn_test_add_ctx_fixture(tc, 600.0);
    tcase_add_loop_test(tc, test_backward_vs_reference, 0, (int)(sizeof(cases) / sizeof(cases[0])));
    suite_add_tcase(s, tc);
    gdn_test_add_ctx_fixture(tr, 600.0);
    tcase_add_loop_test(tr, test_null_grads_and_repeat, 0,
                        (int)(sizeof(repeat_cases) / sizeof(repeat_cases[0])));
    suite_add_tcase(s, tr);
    return gdn_test_run(s, 1);
}
