/*
 * test_swa.c - device tests of sliding-window attention against the float64
 * reference (swa_ref.c): forward (o, lse), backward (dq, dk, dv), the RoPE
 * op and its inverse, prefill + decode steps against the last row of a full
 * forward, determinism of the GQA backward, and argument checks.
 *
 * Inputs: q, k, v, do normal (std 1), so scaled scores are O(1). Outputs are
 * poisoned (NaN) before each run. Tolerances (relative RMS, fp32): o, lse,
 * decode o and RoPE <= 2e-5; dq, dk, dv <= 1e-4.
 *
 * Head dims used: 48 (odd multiple of 16: narrow slices and a 48-wide
 * chunk), 64, 128 and 256, so the suite builds each attention kernel 4
 * times and the decode kernels twice (PoCL caches them after the first run).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gdn_test.h"
#include "swa_ref.h"

#define TOL_FWD 2e-5
#define TOL_BWD 1e-4

static double *dalloc(size_t n)
{
    double *x = calloc(n ? n : 1, sizeof(double));
    ck_assert_ptr_nonnull(x);
    return x;
}

/* ------------------------------------------------------------ fwd + bwd */

struct attn_case {
    const char *name;
    int32_t     N;           /* packed sequences (B = 0), or batch (B > 0) */
    int32_t     offsets[9];  /* packed: N + 1 offsets */
    int32_t     B, Tb;       /* batched 4-D layout when B > 0 */
    int32_t     Hq, Hkv, D;
    int32_t     W;
    int         rope;
    int32_t     pos_off[8]; /* used with rope when any is non-zero */
    float       scale;      /* 0: default */
};

static const struct attn_case attn_cases[] = {
    {"T=1 W=1", 1, {0, 1}, 0, 0, 1, 1, 64, 1, 0, {0}, 0},
    {"T=17 W=1 GQA2", 1, {0, 17}, 0, 0, 2, 1, 64, 1, 0, {0}, 0},
    {"T=65 W=16 GQA4 rope", 1, {0, 65}, 0, 0, 4, 1, 64, 16, 1, {0}, 0},
    {"T=300 W=100 rope D=128", 1, {0, 300}, 0, 0, 2, 2, 128, 100, 1, {0}, 0},
    {"T=64 W=1000>T GQA2", 1, {0, 64}, 0, 0, 2, 1, 64, 1000, 0, {0}, 0},
    {"varlen {1,17,1,64,40} W=20 GQA2 rope+pos", 5, {0, 1, 18, 19, 83, 123}, 0, 0, 4, 2, 64, 20,
     1, {5, 0, 1000, 77, 123456}, 0},
    {"varlen with empty {0,5,0,70} W=64 GQA4", 4, {0, 0, 5, 5, 75}, 0, 0, 4, 1, 64, 64, 0, {0},
     0.2f},
    {"batched B=3 T=40 W=7 GQA2 rope D=128", 0, {0}, 3, 40, 4, 2, 128, 7, 1, {0}, 0},
    {"D=48 T=70 W=33 GQA2", 1, {0, 70}, 0, 0, 2, 1, 48, 33, 0, {0}, 0},
    {"D=256 T=40 W=24 rope", 1, {0, 40}, 0, 0, 1, 1, 256, 24, 1, {0}, 0},
    /* long: more loop iterations per work-item than Mesa llvmpipe's 65535
     * in every attention kernel at one launch (the "long" test case; the
     * host runs windows of key tiles there) */
    {"long T=1600 W=1600 GQA2 D=256 rope", 1, {0, 1600}, 0, 0, 2, 1, 256, 1600, 1, {0}, 0},
};
#define N_SHORT 10 /* attn_cases[N_SHORT ..] are the long ones */

struct attn_data {
    struct swa_ref_shape rs;
    int32_t              offsets[9];
    int64_t              T;
    int32_t              nd;
    int64_t              shq[4], shk[4], shl[3];
    double              *q, *k, *v, *dout;
};

static void attn_data_make(const struct attn_case *c, uint64_t seed, struct attn_data *d)
{
    struct gdn_rng rng;
    int            has_pos = 0, i;
    memset(d, 0, sizeof(*d));
    if (c->B > 0) {
        d->rs.N = c->B;
        for (i = 0; i <= c->B; i++)
            d->offsets[i] = i * c->Tb;
        d->nd     = 4;
        d->shq[0] = d->shk[0] = d->shl[0] = c->B;
        d->shq[1] = d->shk[1] = d->shl[1] = c->Tb;
        d->shq[2] = c->Hq, d->shq[3] = c->D;
        d->shk[2] = c->Hkv, d->shk[3] = c->D;
        d->shl[2] = c->Hq;
    } else {
        d->rs.N = c->N;
        memcpy(d->offsets, c->offsets, sizeof(d->offsets));
        d->nd     = 3;
        d->shq[0] = d->shk[0] = d->shl[0] = c->offsets[c->N];
        d->shq[1] = c->Hq, d->shq[2] = c->D;
        d->shk[1] = c->Hkv, d->shk[2] = c->D;
        d->shl[1] = c->Hq;
    }
    for (i = 0; i < 8; i++)
        has_pos |= c->pos_off[i] != 0;
    d->T          = d->offsets[d->rs.N];
    d->rs.offsets = d->offsets;
    d->rs.pos_off = has_pos ? c->pos_off : NULL;
    d->rs.Hq = c->Hq, d->rs.Hkv = c->Hkv, d->rs.D = c->D, d->rs.W = c->W;
    d->rs.scale = c->scale > 0 ? c->scale : 1.0 / sqrt((double)c->D);
    d->rs.rope  = c->rope;
    d->rs.base  = 10000.0;
    d->q        = dalloc((size_t)d->T * c->Hq * c->D);
    d->k        = dalloc((size_t)d->T * c->Hkv * c->D);
    d->v        = dalloc((size_t)d->T * c->Hkv * c->D);
    d->dout     = dalloc((size_t)d->T * c->Hq * c->D);
    gdn_rng_seed(&rng, seed);
    gdn_rng_fill_normal(&rng, d->q, (size_t)d->T * c->Hq * c->D, 1.0);
    gdn_rng_fill_normal(&rng, d->k, (size_t)d->T * c->Hkv * c->D, 1.0);
    gdn_rng_fill_normal(&rng, d->v, (size_t)d->T * c->Hkv * c->D, 1.0);
    gdn_rng_fill_normal(&rng, d->dout, (size_t)d->T * c->Hq * c->D, 1.0);
}

static void attn_data_free(struct attn_data *d)
{
    free(d->q), free(d->k), free(d->v), free(d->dout);
}

static void fill_args(const struct attn_case *c, const struct attn_data *d, gdn_swa_params *p,
                      gdn_swa_args *a, const gdn_tensor *q, const gdn_tensor *k,
                      const gdn_tensor *v)
{
    gdn_swa_params_init(p);
    p->window = c->W;
    p->scale  = c->scale;
    p->flags  = c->rope ? GDN_SWA_ROPE : 0;
    memset(a, 0, sizeof(*a));
    a->q = q, a->k = k, a->v = v;
    if (c->B == 0) {
        a->seq_offsets = d->offsets;
        a->n_seqs      = d->rs.N;
    }
    a->pos_offsets = d->rs.pos_off;
}

START_TEST(test_attn)
{
    const struct attn_case *c = &attn_cases[_i];
    struct attn_data        d;
    gdn_swa_params          p;
    gdn_swa_args            a;
    gdn_swa_tape           *tape = NULL;
    gdn_swa_grads           g;
    size_t                  nq, nk;
    double                 *o, *lse, *dq, *dk, *dv, e;

    attn_data_make(c, 1000 + (uint64_t)_i, &d);
    nq = (size_t)d.T * c->Hq * c->D, nk = (size_t)d.T * c->Hkv * c->D;
    o = dalloc(nq), lse = dalloc((size_t)d.T * c->Hq);
    dq = dalloc(nq), dk = dalloc(nk), dv = dalloc(nk);
    swa_ref_forward(&d.rs, d.q, d.k, d.v, o, lse);
    swa_ref_backward(&d.rs, d.q, d.k, d.v, d.dout, dq, dk, dv);

    gdn_tensor *tq = gdn_test_tensor(d.nd, d.shq, d.q), *tk = gdn_test_tensor(d.nd, d.shk, d.k);
    gdn_tensor *tv = gdn_test_tensor(d.nd, d.shk, d.v), *tdo = gdn_test_tensor(d.nd, d.shq, d.dout);
    gdn_tensor *to = gdn_test_tensor(d.nd, d.shq, NULL);
    gdn_tensor *tl = gdn_test_tensor(d.nd - 1, d.shl, NULL);
    gdn_tensor *tdq = gdn_test_tensor(d.nd, d.shq, NULL), *tdk = gdn_test_tensor(d.nd, d.shk, NULL);
    gdn_tensor *tdv = gdn_test_tensor(d.nd, d.shk, NULL);

    fill_args(c, &d, &p, &a, tq, tk, tv);
    GDN_TEST_OK(gdn_swa_forward(gdn_test_ctx, &p, &a, to, tl, &tape));
    e = gdn_test_expect(to, o, TOL_FWD, "o", c->name);
    printf("swa [%s] o %.2e", c->name, e);
    e = gdn_test_expect(tl, lse, TOL_FWD, "lse", c->name);
    printf(" lse %.2e", e);
    memset(&g, 0, sizeof(g));
    g.dq = tdq, g.dk = tdk, g.dv = tdv;
    GDN_TEST_OK(gdn_swa_backward(gdn_test_ctx, tape, tdo, &g));
    e = gdn_test_expect(tdq, dq, TOL_BWD, "dq", c->name);
    printf(" dq %.2e", e);
    e = gdn_test_expect(tdk, dk, TOL_BWD, "dk", c->name);
    printf(" dk %.2e", e);
    e = gdn_test_expect(tdv, dv, TOL_BWD, "dv", c->name);
    printf(" dv %.2e\n", e);

    /* only dk (dv and dq not asked for): scratch paths; same values (not
     * repeated for the long cases, to keep them cheap on CPU devices) */
    if (_i >= N_SHORT)
        goto out;
    gdn_test_poison(tdk);
    g.dq = NULL, g.dv = NULL;
    GDN_TEST_OK(gdn_swa_backward(gdn_test_ctx, tape, tdo, &g));
    gdn_test_expect(tdk, dk, TOL_BWD, "dk alone", c->name);
    /* forward without a tape or lse */
    gdn_test_poison(to);
    GDN_TEST_OK(gdn_swa_forward(gdn_test_ctx, &p, &a, to, NULL, NULL));
    gdn_test_expect(to, o, TOL_FWD, "o (no tape)", c->name);

out:
    gdn_swa_tape_destroy(tape);
    gdn_tensor_destroy(tq), gdn_tensor_destroy(tk), gdn_tensor_destroy(tv);
    gdn_tensor_destroy(tdo), gdn_tensor_destroy(to), gdn_tensor_destroy(tl);
    gdn_tensor_destroy(tdq), gdn_tensor_destroy(tdk), gdn_tensor_destroy(tdv);
    free(o), free(lse), free(dq), free(dk), free(dv);
    attn_data_free(&d);
}
END_TEST

/* GQA dk/dv sums are made in a fixed order: two runs agree bit for bit. */
START_TEST(test_deterministic)
{
    const struct attn_case *c = &attn_cases[2];
    struct attn_data        d;
    gdn_swa_params          p;
    gdn_swa_args            a;
    gdn_swa_tape           *tape = NULL;
    gdn_swa_grads           g;
    float                  *r1, *r2;
    size_t                  nk;

    attn_data_make(c, 77, &d);
    nk = (size_t)d.T * c->Hkv * c->D;
    gdn_tensor *tq = gdn_test_tensor(d.nd, d.shq, d.q), *tk = gdn_test_tensor(d.nd, d.shk, d.k);
    gdn_tensor *tv = gdn_test_tensor(d.nd, d.shk, d.v), *tdo = gdn_test_tensor(d.nd, d.shq, d.dout);
    gdn_tensor *to = gdn_test_tensor(d.nd, d.shq, NULL), *tdk = gdn_test_tensor(d.nd, d.shk, NULL);
    fill_args(c, &d, &p, &a, tq, tk, tv);
    GDN_TEST_OK(gdn_swa_forward(gdn_test_ctx, &p, &a, to, NULL, &tape));
    memset(&g, 0, sizeof(g));
    g.dk = tdk;
    GDN_TEST_OK(gdn_swa_backward(gdn_test_ctx, tape, tdo, &g));
    r1 = gdn_test_read(tdk);
    gdn_test_poison(tdk);
    GDN_TEST_OK(gdn_swa_backward(gdn_test_ctx, tape, tdo, &g));
    r2 = gdn_test_read(tdk);
    ck_assert_msg(memcmp(r1, r2, nk * sizeof(float)) == 0, "dk differs between two runs");
    free(r1), free(r2);
    gdn_swa_tape_destroy(tape);
    gdn_tensor_destroy(tq), gdn_tensor_destroy(tk), gdn_tensor_destroy(tv);
    gdn_tensor_destroy(tdo), gdn_tensor_destroy(to), gdn_tensor_destroy(tdk);
    attn_data_free(&d);
}
END_TEST

/* ------------------------------------------------------------ RoPE op */

START_TEST(test_rope)
{
    /* packed: 3 sequences with large position offsets (fp32 angle
     * reduction), 3 heads, D = 64; and batched with D = 6 (any even D) */
    const int32_t  off[4] = {0, 7, 8, 30}, pos[3] = {0, 1000000, 16000000};
    const int32_t  D = 64, H = 3, T = 30;
    int32_t        p[30];
    struct gdn_rng rng;
    size_t         n = (size_t)T * H * D;
    double        *x = dalloc(n), *y = dalloc(n), e;
    int64_t        shp[3] = {T, H, D};
    struct swa_ref_shape rs;

    gdn_rng_seed(&rng, 5);
    gdn_rng_fill_normal(&rng, x, n, 1.0);
    memset(&rs, 0, sizeof(rs));
    rs.N = 3, rs.offsets = off, rs.pos_off = pos;
    swa_ref_positions(&rs, p);
    swa_ref_rope(x, y, T, H, D, p, 10000.0, 0);
    gdn_tensor *tx = gdn_test_tensor(3, shp, x), *ty = gdn_test_tensor(3, shp, NULL);
    GDN_TEST_OK(gdn_swa_rope(gdn_test_ctx, tx, ty, off, 3, pos, 0.0f, 0));
    e = gdn_test_expect(ty, y, TOL_FWD, "rope", "packed, positions up to 1.6e7");
    printf("swa rope: forward %.2e", e);
    /* inverse in place gives x back */
    GDN_TEST_OK(gdn_swa_rope(gdn_test_ctx, ty, ty, off, 3, pos, 10000.0f, 1));
    e = gdn_test_expect(ty, x, TOL_FWD, "rope inverse", "in place");
    printf(" inverse %.2e", e);
    /* the inverse is the backward: against the reference R^T */
    swa_ref_rope(x, y, T, H, D, p, 500.0, 1);
    GDN_TEST_OK(gdn_swa_rope(gdn_test_ctx, tx, ty, off, 3, pos, 500.0f, 1));
    e = gdn_test_expect(ty, y, TOL_FWD, "rope backward", "base 500");
    printf(" backward %.2e", e);
    gdn_tensor_destroy(tx), gdn_tensor_destroy(ty);

    {
        int64_t sb[4] = {2, 5, 1, 6};
        int32_t pb[10], offb[3] = {0, 5, 10};
        double  xb[60], yb[60];
        gdn_rng_fill_normal(&rng, xb, 60, 1.0);
        rs.N = 2, rs.offsets = offb, rs.pos_off = NULL;
        swa_ref_positions(&rs, pb);
        swa_ref_rope(xb, yb, 10, 1, 6, pb, 10000.0, 0);
        gdn_tensor *bx = gdn_test_tensor(4, sb, xb), *by = gdn_test_tensor(4, sb, NULL);
        GDN_TEST_OK(gdn_swa_rope(gdn_test_ctx, bx, by, NULL, 0, NULL, 0.0f, 0));
        e = gdn_test_expect(by, yb, TOL_FWD, "rope", "batched D=6");
        printf(" batched %.2e\n", e);
        gdn_tensor_destroy(bx), gdn_tensor_destroy(by);
    }
    free(x), free(y);
}
END_TEST

/* ------------------------------------------------------------ decode */

struct decode_case {
    const char *name;
    int32_t     N;
    int32_t     prompt[4]; /* prompt lengths (0 allowed) */
    int32_t     pos_off[4];
    int32_t     Hq, Hkv, D, W;
    int         rope;
    int         steps;
};

static const struct decode_case decode_cases[] = {
    {"W=16 GQA2 rope prompts {5,16,40}", 3, {5, 16, 40}, {0, 3, 100}, 4, 2, 64, 16, 1, 6},
    {"W=1 prompts {0,3}", 2, {0, 3}, {0, 0}, 2, 1, 64, 1, 0, 3},
    {"W=200 (2 splits) GQA4 rope D=128 prompts {150,260}", 2, {150, 260}, {7, 0}, 4, 1, 128, 200,
     1, 4},
};

START_TEST(test_decode)
{
    const struct decode_case *c = &decode_cases[_i];
    const int32_t             N = c->N, Hq = c->Hq, Hkv = c->Hkv, D = c->D;
    int32_t  full_off[5], pr_off[5], lens[4], i, n, step;
    int64_t  Tfull = 0, Tp = 0;
    struct gdn_rng rng;
    double   worst = 0.0, e;
    char     desc[200];

    /* full sequences: prompt + steps tokens each, packed */
    full_off[0] = pr_off[0] = 0;
    for (n = 0; n < N; n++) {
        lens[n]         = c->prompt[n] + c->steps;
        full_off[n + 1] = full_off[n] + lens[n];
        pr_off[n + 1]   = pr_off[n] + c->prompt[n];
    }
    Tfull = full_off[N], Tp = pr_off[N];
    size_t  rq = (size_t)Hq * D, rk = (size_t)Hkv * D;
    double *q = dalloc(Tfull * rq), *k = dalloc(Tfull * rk), *v = dalloc(Tfull * rk);
    double *o = dalloc(Tfull * rq);
    gdn_rng_seed(&rng, 4242 + (uint64_t)_i);
    gdn_rng_fill_normal(&rng, q, Tfull * rq, 1.0);
    gdn_rng_fill_normal(&rng, k, Tfull * rk, 1.0);
    gdn_rng_fill_normal(&rng, v, Tfull * rk, 1.0);

    struct swa_ref_shape rs;
    memset(&rs, 0, sizeof(rs));
    rs.N = N, rs.offsets = full_off, rs.pos_off = c->pos_off, rs.Hq = Hq, rs.Hkv = Hkv;
    rs.D = D, rs.W = c->W, rs.scale = 1.0 / sqrt((double)D), rs.rope = c->rope, rs.base = 10000.0;
    swa_ref_forward(&rs, q, k, v, o, NULL);

    /* prompts, packed */
    double *pq = dalloc(Tp * rq), *pk = dalloc(Tp * rk), *pv = dalloc(Tp * rk);
    double *po = dalloc(Tp * rq);
    for (n = 0; n < N; n++)
        for (i = 0; i < c->prompt[n]; i++) {
            memcpy(pq + (pr_off[n] + i) * rq, q + (full_off[n] + i) * rq, rq * sizeof(double));
            memcpy(pk + (pr_off[n] + i) * rk, k + (full_off[n] + i) * rk, rk * sizeof(double));
            memcpy(pv + (pr_off[n] + i) * rk, v + (full_off[n] + i) * rk, rk * sizeof(double));
            memcpy(po + (pr_off[n] + i) * rq, o + (full_off[n] + i) * rq, rq * sizeof(double));
        }

    gdn_swa_params p;
    gdn_swa_args   a;
    gdn_swa_cache  cache;
    int64_t        shq[3] = {Tp, Hq, D}, shk[3] = {Tp, Hkv, D};
    int64_t        shc[4] = {N, Hkv, c->W, D}, shn = N;
    gdn_swa_params_init(&p);
    p.window = c->W;
    p.flags  = c->rope ? GDN_SWA_ROPE : 0;
    memset(&cache, 0, sizeof(cache));
    cache.k = gdn_test_tensor(4, shc, NULL);
    cache.v = gdn_test_tensor(4, shc, NULL);
    GDN_TEST_OK(gdn_tensor_create(gdn_test_ctx, GDN_DTYPE_I32, 1, &shn, &cache.len));
    GDN_TEST_OK(gdn_tensor_create(gdn_test_ctx, GDN_DTYPE_I32, 1, &shn, &cache.pos));

    gdn_tensor *tq = gdn_test_tensor(3, shq, pq), *tk = gdn_test_tensor(3, shk, pk);
    gdn_tensor *tv = gdn_test_tensor(3, shk, pv), *to = gdn_test_tensor(3, shq, NULL);
    memset(&a, 0, sizeof(a));
    a.q = tq, a.k = tk, a.v = tv, a.seq_offsets = pr_off, a.n_seqs = N, a.pos_offsets = c->pos_off;
    /* case 1 fills the cache only (o = NULL: no attention over the prompt) */
    GDN_TEST_OK(gdn_swa_prefill(gdn_test_ctx, &p, &a, &cache, _i == 1 ? NULL : to, NULL));
    if (Tp > 0 && _i != 1) {
        e = gdn_test_expect(to, po, TOL_FWD, "prefill o", c->name);
        printf("swa decode [%s]: prefill o %.2e", c->name, e);
    }

    int64_t sq1[3] = {N, Hq, D}, sk1[3] = {N, Hkv, D};
    double *sq = dalloc(N * rq), *sk = dalloc(N * rk), *sv = dalloc(N * rk), *so = dalloc(N * rq);
    for (step = 0; step < c->steps; step++) {
        for (n = 0; n < N; n++) {
            int64_t t = full_off[n] + c->prompt[n] + step;
            memcpy(sq + n * rq, q + t * rq, rq * sizeof(double));
            memcpy(sk + n * rk, k + t * rk, rk * sizeof(double));
            memcpy(sv + n * rk, v + t * rk, rk * sizeof(double));
            memcpy(so + n * rq, o + t * rq, rq * sizeof(double));
        }
        gdn_tensor *xq = gdn_test_tensor(3, sq1, sq), *xk = gdn_test_tensor(3, sk1, sk);
        gdn_tensor *xv = gdn_test_tensor(3, sk1, sv), *xo = gdn_test_tensor(3, sq1, NULL);
        memset(&a, 0, sizeof(a));
        a.q = xq, a.k = xk, a.v = xv;
        GDN_TEST_OK(gdn_swa_step(gdn_test_ctx, &p, &a, &cache, xo));
        snprintf(desc, sizeof(desc), "%s, step %d", c->name, (int)step);
        e = gdn_test_expect(xo, so, TOL_FWD, "step o", desc);
        worst = e > worst ? e : worst;
        gdn_tensor_destroy(xq), gdn_tensor_destroy(xk), gdn_tensor_destroy(xv);
        gdn_tensor_destroy(xo);
    }
    printf("%sswa decode [%s]: steps worst %.2e\n", _i == 1 ? "" : "\n", c->name, worst);
    {
        int32_t len[4], pos[4];
        GDN_TEST_OK(gdn_tensor_read(cache.len, len, 0, (size_t)N * sizeof(int32_t)));
        GDN_TEST_OK(gdn_tensor_read(cache.pos, pos, 0, (size_t)N * sizeof(int32_t)));
        for (n = 0; n < N; n++) {
            ck_assert_int_eq(len[n], lens[n]);
            ck_assert_int_eq(pos[n], c->pos_off[n] + lens[n]);
        }
    }
    gdn_tensor_destroy(tq), gdn_tensor_destroy(tk), gdn_tensor_destroy(tv);
    gdn_tensor_destroy(to);
    gdn_tensor_destroy(cache.k), gdn_tensor_destroy(cache.v);
    gdn_tensor_destroy(cache.len), gdn_tensor_destroy(cache.pos);
    free(q), free(k), free(v), free(o), free(pq), free(pk), free(pv), free(po);
    free(sq), free(sk), free(sv), free(so);
}
END_TEST

/* A long ring (W = 8192, D = 256, 8 query heads sharing one key head): one
 * decode step reads every entry, far more loop iterations than llvmpipe's
 * 65535 per work-item unless the ring is split finely enough. The prompt
 * only fills the cache (o = NULL); the reference is computed here for the
 * step rows alone. */
START_TEST(test_decode_long)
{
    const int32_t  P = 8192, W = 8192, Hq = 8, D = 256, steps = 2, T = P + steps;
    const double   scale = 1.0 / sqrt((double)D);
    struct gdn_rng rng;
    double *k = dalloc((size_t)T * D), *v = dalloc((size_t)T * D), *q = dalloc((size_t)Hq * D);
    double *o = dalloc((size_t)Hq * D), *sc = dalloc((size_t)W), worst = 0.0, e;
    int32_t off[2] = {0, P}, step, g, j, d;
    int64_t shp[3] = {P, 1, D}, shc[4] = {1, 1, W, D}, shn = 1, sq[3] = {1, Hq, D};
    int64_t sk[3] = {1, 1, D};
    gdn_swa_params p;
    gdn_swa_args   a;
    gdn_swa_cache  cache;

    gdn_rng_seed(&rng, 99);
    gdn_rng_fill_normal(&rng, k, (size_t)T * D, 1.0);
    gdn_rng_fill_normal(&rng, v, (size_t)T * D, 1.0);
    gdn_swa_params_init(&p);
    p.window = W;
    memset(&cache, 0, sizeof(cache));
    cache.k = gdn_test_tensor(4, shc, NULL);
    cache.v = gdn_test_tensor(4, shc, NULL);
    GDN_TEST_OK(gdn_tensor_create(gdn_test_ctx, GDN_DTYPE_I32, 1, &shn, &cache.len));
    GDN_TEST_OK(gdn_tensor_create(gdn_test_ctx, GDN_DTYPE_I32, 1, &shn, &cache.pos));
    {
        int64_t     sq0[3] = {P, Hq, D};
        gdn_tensor *tq = gdn_test_tensor(3, sq0, NULL), *tk = gdn_test_tensor(3, shp, k);
        gdn_tensor *tv = gdn_test_tensor(3, shp, v);
        memset(&a, 0, sizeof(a));
        a.q = tq, a.k = tk, a.v = tv, a.seq_offsets = off, a.n_seqs = 1;
        GDN_TEST_OK(gdn_swa_prefill(gdn_test_ctx, &p, &a, &cache, NULL, NULL));
        gdn_tensor_destroy(tq), gdn_tensor_destroy(tk), gdn_tensor_destroy(tv);
    }
    for (step = 0; step < steps; step++) {
        const int32_t t = P + step, j0 = t - W + 1;
        gdn_rng_fill_normal(&rng, q, (size_t)Hq * D, 1.0);
        for (g = 0; g < Hq; g++) { /* keys j0 .. t */
            double m = -INFINITY, l = 0.0;
            for (j = j0; j <= t; j++) {
                double s = 0.0;
                for (d = 0; d < D; d++)
                    s += q[g * D + d] * k[(size_t)j * D + d];
                sc[j - j0] = s * scale;
                m          = sc[j - j0] > m ? sc[j - j0] : m;
            }
            for (d = 0; d < D; d++)
                o[g * D + d] = 0.0;
            for (j = j0; j <= t; j++) {
                double w = exp(sc[j - j0] - m);
                l += w;
                for (d = 0; d < D; d++)
                    o[g * D + d] += w * v[(size_t)j * D + d];
            }
            for (d = 0; d < D; d++)
                o[g * D + d] /= l;
        }
        gdn_tensor *xq = gdn_test_tensor(3, sq, q), *xk = gdn_test_tensor(3, sk, k + (size_t)t * D);
        gdn_tensor *xv = gdn_test_tensor(3, sk, v + (size_t)t * D);
        gdn_tensor *xo = gdn_test_tensor(3, sq, NULL);
        memset(&a, 0, sizeof(a));
        a.q = xq, a.k = xk, a.v = xv;
        GDN_TEST_OK(gdn_swa_step(gdn_test_ctx, &p, &a, &cache, xo));
        e     = gdn_test_expect(xo, o, TOL_FWD, "step o", "long ring W=8192 D=256 GQA8");
        worst = e > worst ? e : worst;
        gdn_tensor_destroy(xq), gdn_tensor_destroy(xk), gdn_tensor_destroy(xv);
        gdn_tensor_destroy(xo);
    }
    printf("swa decode [long ring W=8192 D=256 GQA8]: steps worst %.2e\n", worst);
    gdn_tensor_destroy(cache.k), gdn_tensor_destroy(cache.v);
    gdn_tensor_destroy(cache.len), gdn_tensor_destroy(cache.pos);
    free(k), free(v), free(q), free(o), free(sc);
}
END_TEST

/* ------------------------------------------------------------ arguments */

START_TEST(test_args)
{
    gdn_context   *ctx = gdn_test_ctx;
    int64_t        sq[3] = {8, 4, 64}, sk[3] = {8, 2, 64}, sk3[3] = {8, 3, 64};
    int64_t        sd[3] = {8, 2, 40};
    gdn_tensor    *q = gdn_test_tensor(3, sq, NULL), *k = gdn_test_tensor(3, sk, NULL);
    gdn_tensor    *v = gdn_test_tensor(3, sk, NULL), *o = gdn_test_tensor(3, sq, NULL);
    gdn_tensor    *k3 = gdn_test_tensor(3, sk3, NULL), *x40 = gdn_test_tensor(3, sd, NULL);
    gdn_swa_params p;
    gdn_swa_args   a;
    gdn_swa_tape  *tape = (gdn_swa_tape *)&p; /* must be reset to NULL on failure */
    int32_t        bad_off[3] = {0, 9, 8}, off[3] = {0, 3, 8};

#define EXPECT(call, status)                                                                       \
    do {                                                                                           \
        gdn_status st_ = (call);                                                                   \
        ck_assert_msg(st_ == (status), "%s -> %s, expected %s", #call, gdn_status_name(st_),       \
                      gdn_status_name(status));                                                    \
        ck_assert_msg(gdn_context_last_error(ctx)[0] != '\0', "%s: no message", #call);           \
    } while (0)

    gdn_swa_params_init(&p);
    memset(&a, 0, sizeof(a));
    a.q = q, a.k = k, a.v = v;
    EXPECT(gdn_swa_forward(ctx, &p, NULL, o, NULL, &tape), GDN_STATUS_INVALID_ARGUMENT);
    ck_assert_ptr_null(tape);
    EXPECT(gdn_swa_forward(ctx, &p, &a, NULL, NULL, NULL), GDN_STATUS_INVALID_ARGUMENT);
    p.window = -1;
    EXPECT(gdn_swa_forward(ctx, &p, &a, o, NULL, NULL), GDN_STATUS_INVALID_ARGUMENT);
    gdn_swa_params_init(&p);
    p.reserved[3] = 1;
    EXPECT(gdn_swa_forward(ctx, &p, &a, o, NULL, NULL), GDN_STATUS_INVALID_ARGUMENT);
    gdn_swa_params_init(&p);
    p.flags = 0x10;
    EXPECT(gdn_swa_forward(ctx, &p, &a, o, NULL, NULL), GDN_STATUS_INVALID_ARGUMENT);
    gdn_swa_params_init(&p);
    a.k = k3, a.v = k3; /* 4 query heads over 3 kv heads */
    EXPECT(gdn_swa_forward(ctx, &p, &a, o, NULL, NULL), GDN_STATUS_SHAPE_MISMATCH);
    a.k = k, a.v = v;
    a.seq_offsets = bad_off, a.n_seqs = 2;
    EXPECT(gdn_swa_forward(ctx, &p, &a, o, NULL, NULL), GDN_STATUS_INVALID_ARGUMENT);
    a.seq_offsets = off, a.n_seqs = 3; /* offsets[3] is not T */
    EXPECT(gdn_swa_forward(ctx, &p, &a, o, NULL, NULL), GDN_STATUS_INVALID_ARGUMENT);
    a.seq_offsets = NULL, a.n_seqs = 0;
    EXPECT(gdn_swa_forward(ctx, &p, &a, k, NULL, NULL), GDN_STATUS_SHAPE_MISMATCH);
    EXPECT(gdn_swa_forward(ctx, &p, &a, (gdn_tensor *)q, NULL, NULL), GDN_STATUS_INVALID_ARGUMENT);
    a.q = x40, a.k = x40, a.v = x40;
    EXPECT(gdn_swa_forward(ctx, &p, &a, o, NULL, NULL), GDN_STATUS_UNSUPPORTED);
    a.q = q, a.k = k, a.v = v;
    EXPECT(gdn_swa_rope(ctx, q, k, NULL, 0, NULL, 0.0f, 0), GDN_STATUS_SHAPE_MISMATCH);
    EXPECT(gdn_swa_rope(ctx, q, o, NULL, 0, NULL, 0.5f, 0), GDN_STATUS_INVALID_ARGUMENT);
    {
        gdn_swa_cache c;
        memset(&c, 0, sizeof(c));
        EXPECT(gdn_swa_step(ctx, &p, &a, &c, o), GDN_STATUS_INVALID_ARGUMENT);
    }
    /* a valid call still works after the failures */
    GDN_TEST_OK(gdn_swa_forward(ctx, NULL, &a, o, NULL, NULL));
#undef EXPECT
    gdn_tensor_destroy(q), gdn_tensor_destroy(k), gdn_tensor_destroy(v), gdn_tensor_destroy(o);
    gdn_tensor_destroy(k3), gdn_tensor_destroy(x40);
}
END_TEST

int main(void)
{
    Suite *s  = suite_create("swa");
    TCase *tc = tcase_create("attn");
    gdn_test_add_ctx_fixture(tc, 600);
    tcase_add_loop_test(tc, test_attn, 0, N_SHORT);
    tcase_add_test(tc, test_deterministic);
    suite_add_tcase(s, tc);

    tc = tcase_create("long");
    gdn_test_add_ctx_fixture(tc, 600);
    tcase_add_loop_test(tc, test_attn, N_SHORT,
                        (int)(sizeof(attn_cases) / sizeof(attn_cases[0])));
    tcase_add_test(tc, test_decode_long);
    suite_add_tcase(s, tc);

    tc = tcase_create("rope");
    gdn_test_add_ctx_fixture(tc, 300);
    tcase_add_test(tc, test_rope);
    suite_add_tcase(s, tc);

    tc = tcase_create("decode");
    gdn_test_add_ctx_fixture(tc, 600);
    tcase_add_loop_test(tc, test_decode, 0,
                        (int)(sizeof(decode_cases) / sizeof(decode_cases[0])));
    suite_add_tcase(s, tc);

    tc = tcase_create("args");
    gdn_test_add_ctx_fixture(tc, 300);
    tcase_add_test(tc, test_args);
    suite_add_tcase(s, tc);
    return gdn_test_run(s, 1);
}
