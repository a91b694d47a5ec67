/*
 * test_gd_forward.c - suite gd_forward: the chunked forward of the gated
 * delta rule (gdn_gated_delta_forward, stages F0-F5 of ALGORITHM.md §2.2)
 * against the float64 token recurrence gdn_ref_gd_forward (§1.2, §1.4).
 *
 * Inputs: q, k L2-normalised rows (raw normal rows with QK_L2NORM), v
 * normal, log gates in one of four regimes (uniform [-20, 0), mild
 * [-0.5, 0), exactly 0, strong [-120, -40) which underflows exp2 within a
 * token), beta uniform in (0, beta_max); with the in-op options the raw
 * inputs are a ~ N(0, 1) with A_log = log U(1, 16) and dt_bias the inverse
 * softplus of a log-uniform dt in [1e-3, 0.1], and b ~ N(0, 1). The host
 * turns raw inputs into what the reference reads with gdn_ref_l2norm_fwd,
 * gdn_ref_gate_fwd and gdn_ref_beta_fwd. Layouts: 4-D batched [B, T_b, ...]
 * or 3-D packed with seq_offsets (lengths including 1 and 0), with and
 * without h0, HV/H in {1, 2, 4}, K, V in {16, 32, 64, 128, 256}.
 * Outputs are NaN-poisoned before each run. Tolerance: relative RMS 2e-5
 * for o and ht.
 *
 * Also: the tape is returned and destroyed; ht may be NULL; an unsupported
 * head dim (K = 24, 272) fails with UNSUPPORTED, a message naming the head
 * dims, and leaves o and ht untouched.
 *
 * Each case prints its measured errors (run the binary directly to see
 * them).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gated_delta_ref.h"
#include "gdn_test.h"
#include "runtime.h" /* struct gdn_tensor, for test_index_range's descriptors */

#define TOL 2e-5

#define L2  GDN_GATED_DELTA_QK_L2NORM
#define GIO GDN_GATED_DELTA_GATE_IN_OP
#define BS  GDN_GATED_DELTA_BETA_SIGMOID
#define NEG GDN_GATED_DELTA_NEG_EIGVAL

enum gate_mode { GATE_WIDE, GATE_MILD, GATE_ZERO, GATE_STRONG };

/* One forward case. B > 0: 4-D tensors [B, Tb, ...]; B == 0: 3-D packed
 * tensors with the lengths in lens[0 .. nseq). */
struct fwd_case {
    const char *name;
    int32_t     B, Tb;
    int32_t     nseq;
    int32_t     lens[8];
    int32_t     H, HV, K, V;
    uint32_t    flags;
    int         gate;     /* enum gate_mode (ignored with GATE_IN_OP) */
    double      beta_max; /* beta ~ U(0, beta_max) without BETA_SIGMOID */
    int         with_h0;
    int         with_ht;
    int         with_tape;
};

/* Head-dim pairs used: (16,16) (32,64) (64,32) (64,64) (128,128) (256,256),
 * so the run builds few distinct programs. */
static const struct fwd_case cases[] = {
    {"T=1 single token", 1, 1, 0, {0}, 1, 1, 16, 16, 0, GATE_WIDE, 1.0, 0, 1, 0},
    {"T=17 B=2 GVA x2", 2, 17, 0, {0}, 2, 4, 32, 64, 0, GATE_WIDE, 1.0, 1, 1, 1},
    {"T=64 one full chunk", 1, 64, 0, {0}, 1, 2, 64, 32, 0, GATE_MILD, 1.0, 1, 1, 0},
    {"T=65 gates exactly 0", 2, 65, 0, {0}, 2, 2, 64, 64, 0, GATE_ZERO, 1.0, 1, 1, 0},
    {"T=300 GVA x4 K=V=128", 0, 0, 1, {300}, 1, 4, 128, 128, 0, GATE_MILD, 1.0, 1, 1, 1},
    {"varlen 5 seqs", 0, 0, 5, {1, 64, 65, 17, 100}, 2, 4, 32, 64, 0, GATE_MILD, 1.0, 1, 1, 0},
    {"varlen 8 seqs with 1s and 0", 0, 0, 8, {1, 0, 30, 64, 128, 7, 65, 1}, 1, 1, 64, 64, 0,
     GATE_WIDE, 1.0, 1, 1, 0},
    {"strong decay", 1, 130, 0, {0}, 1, 2, 64, 64, 0, GATE_STRONG, 1.0, 1, 1, 0},
    {"beta in (0,2), gates 0", 1, 150, 0, {0}, 1, 1, 64, 64, 0, GATE_ZERO, 2.0, 0, 1, 0},
    {"no h0, no ht", 2, 65, 0, {0}, 1, 4, 64, 32, 0, GATE_WIDE, 1.0, 0, 0, 0},
    {"in-op all (L2 gate sigmoid) varlen", 0, 0, 4, {65, 1, 130, 20}, 2, 4, 64, 64, L2 | GIO | BS,
     GATE_MILD, 1.0, 1, 1, 1},
    {"in-op NEG_EIGVAL", 2, 70, 0, {0}, 2, 4, 32, 64, BS | NEG, GATE_ZERO, 1.0, 1, 1, 0},
    {"in-op L2 norm only", 1, 65, 0, {0}, 1, 2, 128, 128, L2, GATE_MILD, 1.0, 1, 1, 0},
    {"in-op gate only", 1, 100, 0, {0}, 1, 1, 16, 16, GIO, GATE_MILD, 1.0, 1, 1, 0},
    {"in-op all + NEG_EIGVAL", 3, 33, 0, {0}, 1, 2, 64, 32, L2 | GIO | BS | NEG, GATE_MILD, 1.0,
     1, 1, 1},
    {"K=V=256", 0, 0, 2, {65, 20}, 1, 1, 256, 256, 0, GATE_MILD, 1.0, 1, 1, 0},
    {"T=2048 long sequence", 1, 2048, 0, {0}, 1, 2, 64, 64, 0, GATE_MILD, 1.0, 1, 1, 0},
    {"K=16 V=128, K=128 V=16 mixed dims", 0, 0, 2, {70, 3}, 1, 1, 128, 16, 0, GATE_WIDE, 1.0, 1,
     1, 0},
};

/* ------------------------------------------------------------ input data */

struct data {
    int64_t  T;
    int32_t  N, H, HV, K, V;
    int32_t *off;
    double  *q, *k, *v, *g, *beta, *A_log, *dt_bias, *h0; /* as uploaded */
    double  *qr, *kr, *gr, *br;                           /* as the reference reads */
};

static double *dalloc(size_t n)
{
    double *x = calloc(n ? n : 1, sizeof(double));
    ck_assert_ptr_nonnull(x);
    return x;
}

static void data_free(struct data *d)
{
    double *p[] = {d->q,  d->k,  d->v,  d->g,  d->beta, d->A_log, d->dt_bias, d->h0,
                   d->qr, d->kr, d->gr, d->br};
    size_t  i;
    for (i = 0; i < sizeof(p) / sizeof(p[0]); i++)
        free(p[i]);
    free(d->off);
}

static void data_make(struct data *d, const struct fwd_case *c, struct gdn_rng *rng)
{
    const size_t tqk = (size_t)d->T * d->H * d->K, tv = (size_t)d->T * d->HV * d->V;
    const size_t tg = (size_t)d->T * d->HV, ns = (size_t)d->N * d->HV * d->K * d->V;
    size_t       i;

    d->q = dalloc(tqk), d->k = dalloc(tqk), d->v = dalloc(tv);
    d->g = dalloc(tg), d->beta = dalloc(tg);
    d->qr = dalloc(tqk), d->kr = dalloc(tqk), d->gr = dalloc(tg), d->br = dalloc(tg);
    if (c->flags & L2) {
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
    if (c->flags & GIO) {
        d->A_log = dalloc((size_t)d->HV), d->dt_bias = dalloc((size_t)d->HV);
        gdn_rng_fill_normal(rng, d->g, tg, 1.0);
        for (i = 0; i < (size_t)d->HV; i++) {
            double dt     = exp(log(1e-3) + gdn_rng_uniform(rng) * (log(0.1) - log(1e-3)));
            d->A_log[i]   = log(1.0 + 15.0 * gdn_rng_uniform(rng));
            d->dt_bias[i] = dt + log(-expm1(-dt));
        }
        gdn_ref_gate_fwd(d->T, d->HV, d->g, d->A_log, d->dt_bias, d->gr);
    } else {
        switch (c->gate) {
        case GATE_WIDE: gdn_rng_fill_uniform(rng, d->g, tg, -20.0, 0.0); break;
        case GATE_MILD: gdn_rng_fill_uniform(rng, d->g, tg, -0.5, 0.0); break;
        case GATE_ZERO: break; /* calloc: exactly 0 */
        default: gdn_rng_fill_uniform(rng, d->g, tg, -120.0, -40.0); break;
        }
        memcpy(d->gr, d->g, tg * sizeof(double));
    }
    if (c->flags & BS) {
        gdn_rng_fill_normal(rng, d->beta, tg, 1.0);
        gdn_ref_beta_fwd((int64_t)tg, (c->flags & NEG) != 0, d->beta, d->br);
    } else {
        gdn_rng_fill_uniform(rng, d->beta, tg, 0.0, c->beta_max);
        for (i = 0; i < tg; i++) /* keep beta strictly inside (0, max) */
            if (d->beta[i] == 0.0)
                d->beta[i] = 0.5 * c->beta_max;
        memcpy(d->br, d->beta, tg * sizeof(double));
    }
    if (c->with_h0) {
        d->h0 = dalloc(ns);
        gdn_rng_fill_normal(rng, d->h0, ns, 1.0);
    }
}

/* Shape helper: [lead..., a, b] with lead = {B, Tb} (4-D) or {T} (3-D). */
static int32_t shape_of(const struct fwd_case *c, int64_t T, int64_t a, int64_t b,
                        int64_t *shape)
{
    int32_t n = 0;
    if (c->B > 0) {
        shape[n++] = c->B;
        shape[n++] = c->Tb;
    } else {
        shape[n++] = T;
    }
    shape[n++] = a;
    if (b > 0)
        shape[n++] = b;
    return n;
}

/* ------------------------------------------------------------ the cases */

START_TEST(test_forward_case)
{
    const struct fwd_case    *c = &cases[_i];
    struct data               d;
    struct gdn_rng            rng;
    struct gdn_ref_gd_problem p;
    gdn_gated_delta_params    params;
    gdn_gated_delta_args      args;
    gdn_gated_delta_tape     *tape = NULL;
    gdn_tensor               *tq, *tk, *tv, *tg, *tb, *tA = NULL, *tdt = NULL, *th0 = NULL;
    gdn_tensor               *to, *tht = NULL;
    int64_t                   shp[4], sshape[4];
    int32_t                   nd, i;
    double                   *o_ref, *ht_ref, e_o, e_ht = 0.0;
    char                      desc[160];

    memset(&d, 0, sizeof(d));
    gdn_rng_seed(&rng, 0x9d5f0000u + (uint64_t)_i);
    d.H = c->H, d.HV = c->HV, d.K = c->K, d.V = c->V;
    if (c->B > 0) {
        d.N   = c->B;
        d.off = calloc((size_t)d.N + 1, sizeof(int32_t));
        ck_assert_ptr_nonnull(d.off);
        for (i = 0; i <= d.N; i++)
            d.off[i] = i * c->Tb;
    } else {
        d.N   = c->nseq;
        d.off = calloc((size_t)d.N + 1, sizeof(int32_t));
        ck_assert_ptr_nonnull(d.off);
        for (i = 0; i < d.N; i++)
            d.off[i + 1] = d.off[i] + c->lens[i];
    }
    d.T = d.off[d.N];
    data_make(&d, c, &rng);
    snprintf(desc, sizeof(desc), "case %d '%s': T=%lld N=%d H=%d HV=%d K=%d V=%d flags=0x%x",
             (int)_i, c->name, (long long)d.T, (int)d.N, (int)d.H, (int)d.HV, (int)d.K, (int)d.V,
             (unsigned)c->flags);

    /* device tensors */
    nd = shape_of(c, d.T, d.H, d.K, shp);
    tq = gdn_test_tensor(nd, shp, d.q);
    tk = gdn_test_tensor(nd, shp, d.k);
    nd = shape_of(c, d.T, d.HV, d.V, shp);
    tv = gdn_test_tensor(nd, shp, d.v);
    to = gdn_test_tensor(nd, shp, NULL); /* NaN poison */
    nd = shape_of(c, d.T, d.HV, 0, shp);
    tg = gdn_test_tensor(nd, shp, d.g);
    tb = gdn_test_tensor(nd, shp, d.beta);
    if (c->flags & GIO) {
        int64_t hv = d.HV;
        tA  = gdn_test_tensor(1, &hv, d.A_log);
        tdt = gdn_test_tensor(1, &hv, d.dt_bias);
    }
    sshape[0] = d.N, sshape[1] = d.HV, sshape[2] = d.K, sshape[3] = d.V;
    if (d.h0)
        th0 = gdn_test_tensor(4, sshape, d.h0);
    if (c->with_ht)
        tht = gdn_test_tensor(4, sshape, NULL);

    gdn_gated_delta_params_init(&params);
    params.flags = c->flags;
    memset(&args, 0, sizeof(args));
    args.q = tq, args.k = tk, args.v = tv, args.g = tg, args.beta = tb;
    args.A_log = tA, args.dt_bias = tdt, args.h0 = th0;
    if (c->B == 0) {
        args.seq_offsets = d.off;
        args.n_seqs      = d.N;
    }
    GDN_TEST_OK(gdn_gated_delta_forward(gdn_test_ctx, &params, &args, to, tht,
                                        c->with_tape ? &tape : NULL));
    if (c->with_tape)
        ck_assert_msg(tape != NULL, "%s: no tape returned", desc);
    GDN_TEST_OK(gdn_context_finish(gdn_test_ctx));

    /* reference */
    p.T = d.T, p.H = d.H, p.HV = d.HV, p.K = d.K, p.V = d.V, p.n_seqs = d.N;
    p.offsets = d.off;
    p.scale   = 1.0 / sqrt((double)d.K);
    o_ref     = dalloc((size_t)d.T * d.HV * d.V);
    ht_ref    = dalloc((size_t)d.N * d.HV * d.K * d.V);
    gdn_ref_gd_forward(&p, d.qr, d.kr, d.v, d.gr, d.br, d.h0, o_ref, ht_ref);

    e_o = gdn_test_expect(to, o_ref, TOL, "o", desc);
    if (tht)
        e_ht = gdn_test_expect(tht, ht_ref, TOL, "ht", desc);
    printf("gd_forward %-40s T=%4lld K=%3d V=%3d: o rel_rms %.2e, ht rel_rms %s%.2e\n", c->name,
           (long long)d.T, (int)d.K, (int)d.V, e_o, tht ? "" : "(not asked) ", e_ht);
    fflush(stdout);

    gdn_gated_delta_tape_destroy(tape);
    gdn_tensor_destroy(tq), gdn_tensor_destroy(tk), gdn_tensor_destroy(tv);
    gdn_tensor_destroy(tg), gdn_tensor_destroy(tb), gdn_tensor_destroy(tA);
    gdn_tensor_destroy(tdt), gdn_tensor_destroy(th0), gdn_tensor_destroy(to);
    gdn_tensor_destroy(tht);
    free(o_ref);
    free(ht_ref);
    data_free(&d);
}
END_TEST

/* ------------------------------------------- unsupported head dims */

static const int32_t bad_k[] = {24, 272};

START_TEST(test_bad_head_dim)
{
    const int32_t          K = bad_k[_i], V = 32, T = 8, H = 1, HV = 1;
    int64_t                sq[3] = {T, H, K}, sv[3] = {T, HV, V}, sg[2] = {T, HV};
    int64_t                ss[4] = {1, HV, K, V};
    gdn_tensor            *tq, *tk, *tv, *tg, *tb, *to, *tht;
    gdn_gated_delta_args   args;
    gdn_gated_delta_tape  *tape = (gdn_gated_delta_tape *)&args; /* must be reset to NULL */
    gdn_status             st;
    const char            *msg;
    float                 *o, *ht;
    int64_t                i;

    tq = gdn_test_tensor(3, sq, NULL), tk = gdn_test_tensor(3, sq, NULL);
    tv = gdn_test_tensor(3, sv, NULL), tg = gdn_test_tensor(2, sg, NULL);
    tb = gdn_test_tensor(2, sg, NULL);
    to = gdn_test_tensor(3, sv, NULL), tht = gdn_test_tensor(4, ss, NULL);
    GDN_TEST_OK(gdn_tensor_fill(to, 7.0f));
    GDN_TEST_OK(gdn_tensor_fill(tht, -3.0f));
    memset(&args, 0, sizeof(args));
    args.q = tq, args.k = tk, args.v = tv, args.g = tg, args.beta = tb;

    st = gdn_gated_delta_forward(gdn_test_ctx, NULL, &args, to, tht, &tape);
    msg = gdn_context_last_error(gdn_test_ctx);
    ck_assert_msg(st == GDN_STATUS_UNSUPPORTED, "K = %d: got %s (%s)", (int)K,
                  gdn_status_name(st), msg);
    ck_assert_msg(msg && strstr(msg, "head dim"), "K = %d: message does not name the head dim: %s",
                  (int)K, msg ? msg : "(null)");
    ck_assert_ptr_null(tape);
    GDN_TEST_OK(gdn_context_finish(gdn_test_ctx));
    o  = gdn_test_read(to);
    ht = gdn_test_read(tht);
    for (i = 0; i < gdn_tensor_numel(to); i++)
        ck_assert_msg(o[i] == 7.0f, "K = %d: o[%lld] was touched", (int)K, (long long)i);
    for (i = 0; i < gdn_tensor_numel(tht); i++)
        ck_assert_msg(ht[i] == -3.0f, "K = %d: ht[%lld] was touched", (int)K, (long long)i);
    printf("gd_forward bad K = %d: %s: %s\n", (int)K, gdn_status_name(st), msg);
    free(o);
    free(ht);
    gdn_tensor_destroy(tq), gdn_tensor_destroy(tk), gdn_tensor_destroy(tv);
    gdn_tensor_destroy(tg), gdn_tensor_destroy(tb), gdn_tensor_destroy(to);
    gdn_tensor_destroy(tht);
}
END_TEST

/* ------------------------------------------- index range of the kernels */

/* The chunk kernels address token-major tensors with int offsets, so the op
 * refuses T HV max(K, V) >= 2^31 (api.c). Reaching that needs q and v of
 * 8 GiB; their shapes are checked first, so q and v here are copies of small
 * tensors' descriptors with T raised (the op fails before any kernel could
 * read past their buffers). */
START_TEST(test_index_range)
{
    const int32_t         K = 16, V = 16, T = 8, H = 1, HV = 1;
    const int64_t         Tbig = ((int64_t)1 << 31) / (HV * K) + 1; /* T HV K = 2^31 + 16 */
    int64_t               sq[3] = {T, H, K}, sv[3] = {T, HV, V}, sg[2] = {T, HV};
    gdn_tensor           *tq, *tk, *tv, *tg, *tb, *to;
    struct gdn_tensor     bq, bv;
    gdn_gated_delta_args  args;
    gdn_gated_delta_tape *tape = (gdn_gated_delta_tape *)&args; /* must be reset to NULL */
    gdn_status            st;
    const char           *msg;
    float                *o;
    int64_t               i;

    tq = gdn_test_tensor(3, sq, NULL), tk = gdn_test_tensor(3, sq, NULL);
    tv = gdn_test_tensor(3, sv, NULL), tg = gdn_test_tensor(2, sg, NULL);
    tb = gdn_test_tensor(2, sg, NULL), to = gdn_test_tensor(3, sv, NULL);
    GDN_TEST_OK(gdn_tensor_fill(to, 7.0f));
    bq = *tq, bv = *tv;
    bq.shape[0] = bv.shape[0] = Tbig;
    bq.numel = Tbig * H * K, bv.numel = Tbig * HV * V;
    bq.nbytes = (size_t)bq.numel * sizeof(float), bv.nbytes = (size_t)bv.numel * sizeof(float);
    memset(&args, 0, sizeof(args));
    args.q = &bq, args.k = tk, args.v = &bv, args.g = tg, args.beta = tb;

    st  = gdn_gated_delta_forward(gdn_test_ctx, NULL, &args, to, NULL, &tape);
    msg = gdn_context_last_error(gdn_test_ctx);
    ck_assert_msg(st == GDN_STATUS_UNSUPPORTED, "got %s (%s)", gdn_status_name(st), msg);
    ck_assert_msg(msg && strstr(msg, "2^31"), "message does not name the limit: %s",
                  msg ? msg : "(null)");
    ck_assert_ptr_null(tape);
    GDN_TEST_OK(gdn_context_finish(gdn_test_ctx));
    o = gdn_test_read(to);
    for (i = 0; i < gdn_tensor_numel(to); i++)
        ck_assert_msg(o[i] == 7.0f, "o[%lld] was touched", (long long)i);
    printf("gd_forward T = %lld: %s: %s\n", (long long)Tbig, gdn_status_name(st), msg);
    free(o);
    gdn_tensor_destroy(tq), gdn_tensor_destroy(tk), gdn_tensor_destroy(tv);
    gdn_tensor_destroy(tg), gdn_tensor_destroy(tb), gdn_tensor_destroy(to);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("gd_forward");
    TCase *tc = tcase_create("cases");
    TCase *tb = tcase_create("unsupported");

    gdn_test_add_ctx_fixture(tc, 600.0);
    tcase_add_loop_test(tc, test_forward_case, 0, (int)(sizeof(cases) / sizeof(cases[0])));
    suite_add_tcase(s, tc);
    gdn_test_add_ctx_fixture(tb, 120.0);
    tcase_add_loop_test(tb, test_bad_head_dim, 0, (int)(sizeof(bad_k) / sizeof(bad_k[0])));
    tcase_add_test(tb, test_index_range);
    suite_add_tcase(s, tb);
    return s;
}

int main(void)
{
    return gdn_test_run(suite(), 1);
}
