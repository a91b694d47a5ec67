/*
 * test_conv.c - device suite of the causal depthwise short convolution
 * (lib/ops/conv/) against the float64 reference of conv_ref.c.
 *
 * Cases: kernel sizes 2, 3, 4, 8; channels 1 to 256 (odd counts too);
 * packed varlen batches with empty sequences, length-1 sequences and
 * sequences shorter than W-1, one long sequence (many chunks), batched
 * [B, T, C]; with and without bias, SiLU, initial state, final state and
 * its gradient. Checked: y and final_state (2e-5), dx, dweight, dbias,
 * dinitial_state (1e-4), bit-identical dweight/dbias on a second run, the
 * in-place prefill (final_state == initial_state), and decode: prefill then
 * several gdn_conv_step calls equal the rows of one full forward (2e-5),
 * and the state after them equals the full forward's final state. Outputs
 * are poisoned (NaN) before every call. Argument checks name the argument.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conv_ref.h"
#include "gdn_test.h"

#define MAXSEQ 8

struct conv_case {
    int32_t W, C;
    int32_t batched; /* 1: x [B, T_b, C] with B = nseq, T_b = lens[0] */
    int32_t nseq;
    int32_t lens[MAXSEQ];
    int     bias, silu, init, final, dfinal;
};

static const struct conv_case conv_cases[] = {
    {4, 64, 0, 1, {300}, 1, 1, 1, 1, 1},
    {4, 37, 0, 6, {1, 0, 17, 70, 2, 3}, 1, 1, 1, 1, 1},
    {4, 128, 1, 3, {65, 65, 65}, 0, 0, 0, 1, 0},
    {2, 16, 0, 3, {5, 1, 40}, 0, 1, 1, 1, 1},
    {3, 96, 0, 1, {17}, 1, 0, 0, 0, 0},
    {8, 33, 0, 4, {7, 1, 100, 6}, 1, 1, 1, 1, 1},
    {4, 1, 0, 8, {3, 9, 0, 1, 2, 64, 5, 4}, 1, 1, 1, 1, 1},
    {4, 256, 1, 2, {1, 1}, 1, 1, 1, 1, 1},
};

static double *dalloc(size_t n)
{
    double *x = calloc(n ? n : 1, sizeof(double));
    ck_assert_ptr_nonnull(x);
    return x;
}

START_TEST(test_conv_case)
{
    const struct conv_case *cc = &conv_cases[_i];
    const int64_t           C = cc->C, W = cc->W, N = cc->nseq;
    int32_t                 off[MAXSEQ + 1];
    int64_t                 T, xs[3], ws[2] = {C, W}, ss[3] = {N, C, W - 1};
    struct gdn_rng          rng;
    double *x, *w, *b, *init, *dy, *dfin, *y, *fin, *dx, *dw, *db, *di;
    gdn_tensor     *tx, *tw, *tb = NULL, *ti = NULL, *ty, *tf = NULL, *tdy, *tdf = NULL;
    gdn_tensor     *tdx, *tdw, *tdb, *tdi;
    gdn_conv_params prm;
    gdn_conv_args   args;
    gdn_conv_grads  grads;
    char            desc[128];
    double          e_y, e_f = 0, e_dx, e_dw, e_db, e_di;

    off[0] = 0;
    for (int n = 0; n < N; n++)
        off[n + 1] = off[n] + cc->lens[n];
    T = off[N];
    snprintf(desc, sizeof(desc), "case %d: W %d C %d N %d T %lld%s", _i, cc->W, cc->C, cc->nseq,
             (long long)T, cc->batched ? " batched" : "");
    if (cc->batched)
        xs[0] = N, xs[1] = cc->lens[0], xs[2] = C;
    else
        xs[0] = T, xs[1] = C;
    gdn_rng_seed(&rng, 900 + (uint64_t)_i);
    x = dalloc((size_t)(T * C)), w = dalloc((size_t)(C * W)), b = dalloc((size_t)C);
    init = dalloc((size_t)(N * C * (W - 1))), dy = dalloc((size_t)(T * C));
    dfin = dalloc((size_t)(N * C * (W - 1))), y = dalloc((size_t)(T * C));
    fin = dalloc((size_t)(N * C * (W - 1))), dx = dalloc((size_t)(T * C));
    dw = dalloc((size_t)(C * W)), db = dalloc((size_t)C), di = dalloc((size_t)(N * C * (W - 1)));
    gdn_rng_fill_normal(&rng, x, (size_t)(T * C), 1.0);
    gdn_rng_fill_normal(&rng, w, (size_t)(C * W), 0.5);
    gdn_rng_fill_normal(&rng, b, (size_t)C, 0.2);
    gdn_rng_fill_normal(&rng, init, (size_t)(N * C * (W - 1)), 1.0);
    gdn_rng_fill_normal(&rng, dy, (size_t)(T * C), 1.0);
    gdn_rng_fill_normal(&rng, dfin, (size_t)(N * C * (W - 1)), 1.0);

    tx = gdn_test_tensor(cc->batched ? 3 : 2, xs, x);
    tw = gdn_test_tensor(2, ws, w);
    if (cc->bias)
        tb = gdn_test_tensor(1, &C, b);
    if (cc->init)
        ti = gdn_test_tensor(3, ss, init);
    gdn_conv_params_init(&prm);
    prm.flags = cc->silu ? GDN_CONV_SILU : 0;
    memset(&args, 0, sizeof(args));
    args.x = tx, args.weight = tw, args.bias = tb, args.initial_state = ti;
    if (!cc->batched) {
        args.seq_offsets = off;
        args.n_seqs      = (int32_t)N;
    }

    /* forward */
    conv_ref_forward(C, W, N, off, x, w, cc->bias ? b : NULL, cc->init ? init : NULL, cc->silu, y,
                     fin);
    ty = gdn_test_tensor(cc->batched ? 3 : 2, xs, NULL);
    if (cc->final)
        tf = gdn_test_tensor(3, ss, NULL);
    GDN_TEST_OK(gdn_conv_forward(gdn_test_ctx, &prm, &args, ty, tf));
    e_y = gdn_test_expect(ty, y, 2e-5, "y", desc);
    if (tf)
        e_f = gdn_test_expect(tf, fin, 2e-5, "final_state", desc);
    if (ti && tf) {
        /* in-place prefill: final_state == initial_state */
        gdn_tensor   *tio = gdn_test_tensor(3, ss, init);
        gdn_conv_args a2  = args;
        a2.initial_state  = tio;
        gdn_test_poison(ty);
        GDN_TEST_OK(gdn_conv_forward(gdn_test_ctx, &prm, &a2, ty, tio));
        gdn_test_expect(ty, y, 2e-5, "y (state in place)", desc);
        gdn_test_expect(tio, fin, 2e-5, "final_state (in place)", desc);
        gdn_tensor_destroy(tio);
    }

    /* backward */
    conv_ref_backward(C, W, N, off, x, w, cc->bias ? b : NULL, cc->init ? init : NULL, cc->silu,
                      dy, cc->dfinal ? dfin : NULL, dx, dw, db, di);
    tdy = gdn_test_tensor(cc->batched ? 3 : 2, xs, dy);
    if (cc->dfinal)
        tdf = gdn_test_tensor(3, ss, dfin);
    tdx = gdn_test_tensor(cc->batched ? 3 : 2, xs, NULL);
    tdw = gdn_test_tensor(2, ws, NULL);
    tdb = gdn_test_tensor(1, &C, NULL);
    tdi = gdn_test_tensor(3, ss, NULL);
    memset(&grads, 0, sizeof(grads));
    grads.dx = tdx, grads.dweight = tdw, grads.dbias = tdb, grads.dinitial_state = tdi;
    GDN_TEST_OK(gdn_conv_backward(gdn_test_ctx, &prm, &args, tdy, tdf, &grads));
    e_dx = gdn_test_expect(tdx, dx, 1e-4, "dx", desc);
    e_dw = gdn_test_expect(tdw, dw, 1e-4, "dweight", desc);
    e_db = gdn_test_expect(tdb, db, 1e-4, "dbias", desc);
    e_di = gdn_test_expect(tdi, di, 1e-4, "dinitial_state", desc);
    {
        /* weight and bias gradients alone, again: bit-identical */
        float         *w1 = gdn_test_read(tdw), *b1 = gdn_test_read(tdb), *w2, *b2;
        gdn_conv_grads g2;
        memset(&g2, 0, sizeof(g2));
        g2.dweight = tdw, g2.dbias = tdb;
        gdn_test_poison(tdw), gdn_test_poison(tdb);
        GDN_TEST_OK(gdn_conv_backward(gdn_test_ctx, &prm, &args, tdy, tdf, &g2));
        w2 = gdn_test_read(tdw), b2 = gdn_test_read(tdb);
        ck_assert_msg(!memcmp(w1, w2, (size_t)(C * W) * sizeof(float)) &&
                          !memcmp(b1, b2, (size_t)C * sizeof(float)),
                      "dweight/dbias differ between two runs [%s]", desc);
        free(w1), free(b1), free(w2), free(b2);
    }
    printf("conv %-40s y %.2e final %s%.2e dx %.2e dw %.2e db %.2e dinit %.2e\n", desc, e_y,
           tf ? "" : "(not asked) ", e_f, e_dx, e_dw, e_db, e_di);

    gdn_tensor_destroy(tx), gdn_tensor_destroy(tw), gdn_tensor_destroy(tb);
    gdn_tensor_destroy(ti), gdn_tensor_destroy(ty), gdn_tensor_destroy(tf);
    gdn_tensor_destroy(tdy), gdn_tensor_destroy(tdf), gdn_tensor_destroy(tdx);
    gdn_tensor_destroy(tdw), gdn_tensor_destroy(tdb), gdn_tensor_destroy(tdi);
    free(x), free(w), free(b), free(init), free(dy), free(dfin), free(y), free(fin), free(dx);
    free(dw), free(db), free(di);
}
END_TEST

/* Decode: prefill lens[n] tokens per sequence through gdn_conv_forward
 * (final_state), then STEPS gdn_conv_step calls; each step's y equals the
 * matching row of one forward over lens[n] + STEPS tokens, and the state
 * after the steps equals that forward's final state. */
#define STEPS 6
struct step_case {
    int32_t W, C, nseq, lens[4];
    int     bias, silu, init;
};
static const struct step_case step_cases[] = {
    {4, 64, 4, {0, 1, 2, 20}, 1, 1, 1},
    {4, 24, 3, {5, 0, 3}, 0, 1, 0},
    {2, 8, 2, {3, 1}, 1, 0, 1},
    {8, 40, 3, {0, 5, 11}, 1, 1, 1},
};

START_TEST(test_conv_decode)
{
    const struct step_case *sc = &step_cases[_i];
    const int64_t           C = sc->C, W = sc->W, N = sc->nseq;
    int32_t                 offp[5], offf[5];
    int64_t                 Tp, Tf, ws[2] = {C, W}, ss[3] = {N, C, W - 1}, nc[2] = {N, C};
    struct gdn_rng          rng;
    double                 *xf, *xp, *w, *b, *init, *yf, *ff, *rowref;
    gdn_tensor             *tw, *tb = NULL, *ti = NULL, *txp, *typ, *tst, *txt, *tyt;
    gdn_tensor             *txf, *tyf;
    float                  *dev_full;
    double                  dmax = 0;
    gdn_conv_params         prm;
    gdn_conv_args           args, sargs;
    char                    desc[96];
    double                  emax = 0;

    offp[0] = offf[0] = 0;
    for (int n = 0; n < N; n++) {
        offp[n + 1] = offp[n] + sc->lens[n];
        offf[n + 1] = offf[n] + sc->lens[n] + STEPS;
    }
    Tp = offp[N], Tf = offf[N];
    snprintf(desc, sizeof(desc), "decode case %d: W %d C %d N %d", _i, sc->W, sc->C, sc->nseq);
    gdn_rng_seed(&rng, 4242 + (uint64_t)_i);
    xf = dalloc((size_t)(Tf * C)), xp = dalloc((size_t)(Tp * C)), w = dalloc((size_t)(C * W));
    b = dalloc((size_t)C), init = dalloc((size_t)(N * C * (W - 1)));
    yf = dalloc((size_t)(Tf * C)), ff = dalloc((size_t)(N * C * (W - 1)));
    rowref = dalloc((size_t)(N * C));
    gdn_rng_fill_normal(&rng, xf, (size_t)(Tf * C), 1.0);
    gdn_rng_fill_normal(&rng, w, (size_t)(C * W), 0.5);
    gdn_rng_fill_normal(&rng, b, (size_t)C, 0.2);
    gdn_rng_fill_normal(&rng, init, (size_t)(N * C * (W - 1)), 1.0);
    for (int n = 0; n < N; n++)
        memcpy(xp + (size_t)offp[n] * C, xf + (size_t)offf[n] * C,
               (size_t)(sc->lens[n] * C) * sizeof(double));
    conv_ref_forward(C, W, N, offf, xf, w, sc->bias ? b : NULL, sc->init ? init : NULL, sc->silu,
                     yf, ff);

    tw = gdn_test_tensor(2, ws, w);
    if (sc->bias)
        tb = gdn_test_tensor(1, &C, b);
    if (sc->init)
        ti = gdn_test_tensor(3, ss, init);
    gdn_conv_params_init(&prm);
    prm.flags = sc->silu ? GDN_CONV_SILU : 0;
    memset(&args, 0, sizeof(args));
    {
        int64_t xs[2] = {Tp, C};
        txp           = gdn_test_tensor(2, xs, xp);
        typ           = gdn_test_tensor(2, xs, NULL);
    }
    args.x = txp, args.weight = tw, args.bias = tb, args.initial_state = ti;
    args.seq_offsets = offp, args.n_seqs = (int32_t)N;
    tst              = gdn_test_tensor(3, ss, NULL);
    GDN_TEST_OK(gdn_conv_forward(gdn_test_ctx, &prm, &args, typ, tst));

    /* the device's own full forward over prefill + steps, for a direct
     * fp32-vs-fp32 comparison of the decode rows */
    {
        int64_t       xs[2] = {Tf, C};
        gdn_conv_args fa    = args;
        txf                 = gdn_test_tensor(2, xs, xf);
        tyf                 = gdn_test_tensor(2, xs, NULL);
        fa.x = txf, fa.seq_offsets = offf;
        GDN_TEST_OK(gdn_conv_forward(gdn_test_ctx, &prm, &fa, tyf, NULL));
        dev_full = gdn_test_read(tyf);
    }

    memset(&sargs, 0, sizeof(sargs));
    sargs.weight = tw, sargs.bias = tb;
    txt          = gdn_test_tensor(2, nc, NULL);
    tyt          = gdn_test_tensor(2, nc, NULL);
    for (int j = 0; j < STEPS; j++) {
        float *h = malloc((size_t)(N * C) * sizeof(float));
        ck_assert_ptr_nonnull(h);
        for (int n = 0; n < N; n++)
            for (int64_t c = 0; c < C; c++) {
                const size_t row = (size_t)(offf[n] + sc->lens[n] + j);
                h[n * C + c]      = (float)xf[row * C + c];
                rowref[n * C + c] = yf[row * C + c];
            }
        GDN_TEST_OK(gdn_tensor_write(txt, h, 0, (size_t)(N * C) * sizeof(float)));
        free(h);
        sargs.x = txt;
        gdn_test_poison(tyt);
        /* every other step in place (y == x) */
        GDN_TEST_OK(gdn_conv_step(gdn_test_ctx, &prm, &sargs, tst, (j & 1) ? txt : tyt));
        {
            double e = gdn_test_expect((j & 1) ? txt : tyt, rowref, 2e-5, "step y", desc);
            float *got = gdn_test_read((j & 1) ? txt : tyt);
            if (e > emax)
                emax = e;
            for (int n = 0; n < N; n++)
                for (int64_t c = 0; c < C; c++) {
                    const size_t row = (size_t)(offf[n] + sc->lens[n] + j);
                    double       d   = fabs((double)got[n * C + c] - (double)dev_full[row * C + c]);
                    if (d > dmax)
                        dmax = d;
                }
            free(got);
        }
    }
    {
        double e = gdn_test_expect(tst, ff, 2e-5, "state after the steps", desc);
        printf("conv %-36s step y max %.2e, state %.2e, |step - device forward row| max %.2e\n",
               desc, emax, e, dmax);
        ck_assert_msg(dmax <= 1e-6, "decode differs from the device forward by %.3e [%s]", dmax,
                      desc);
    }
    gdn_tensor_destroy(txf), gdn_tensor_destroy(tyf);
    free(dev_full);
    gdn_tensor_destroy(tw), gdn_tensor_destroy(tb), gdn_tensor_destroy(ti);
    gdn_tensor_destroy(txp), gdn_tensor_destroy(typ), gdn_tensor_destroy(tst);
    gdn_tensor_destroy(txt), gdn_tensor_destroy(tyt);
    free(xf), free(xp), free(w), free(b), free(init), free(yf), free(ff), free(rowref);
}
END_TEST

START_TEST(test_conv_checks)
{
    const int64_t   xs[2] = {10, 8}, ws[2] = {8, 4}, w9[2] = {8, 9}, ss[3] = {2, 8, 3};
    const int64_t   sbad[3] = {2, 8, 4}, nc[2] = {2, 8};
    gdn_tensor     *x = gdn_test_tensor(2, xs, NULL), *y = gdn_test_tensor(2, xs, NULL);
    gdn_tensor     *w = gdn_test_tensor(2, ws, NULL), *wb = gdn_test_tensor(2, w9, NULL);
    gdn_tensor     *st = gdn_test_tensor(3, ss, NULL), *sb = gdn_test_tensor(3, sbad, NULL);
    gdn_tensor     *xt = gdn_test_tensor(2, nc, NULL);
    int32_t         off[3] = {0, 4, 10}, bad[3] = {0, 6, 5};
    gdn_conv_params p;
    gdn_conv_args   a;
    gdn_status      s;

#define EXPECT(expr, status, word)                                                                 \
    do {                                                                                           \
        s = (expr);                                                                                \
        ck_assert_msg(s == (status), "%s -> %s", #expr, gdn_status_name(s));                       \
        ck_assert_msg(strstr(gdn_context_last_error(gdn_test_ctx), word) != NULL,                  \
                      "%s: message '%s' lacks '%s'", #expr,                                        \
                      gdn_context_last_error(gdn_test_ctx), word);                                 \
    } while (0)

    gdn_conv_params_init(&p);
    memset(&a, 0, sizeof(a));
    a.x = x, a.weight = w, a.seq_offsets = off, a.n_seqs = 2;
    GDN_TEST_OK(gdn_conv_forward(gdn_test_ctx, &p, &a, y, NULL));
    p.flags = 8;
    EXPECT(gdn_conv_forward(gdn_test_ctx, &p, &a, y, NULL), GDN_STATUS_INVALID_ARGUMENT, "flags");
    gdn_conv_params_init(&p);
    a.weight = wb;
    EXPECT(gdn_conv_forward(gdn_test_ctx, &p, &a, y, NULL), GDN_STATUS_UNSUPPORTED, "W");
    a.weight      = w;
    a.seq_offsets = bad;
    EXPECT(gdn_conv_forward(gdn_test_ctx, &p, &a, y, NULL), GDN_STATUS_INVALID_ARGUMENT,
           "seq_offsets");
    a.seq_offsets = off;
    EXPECT(gdn_conv_forward(gdn_test_ctx, &p, &a, x, NULL), GDN_STATUS_INVALID_ARGUMENT, "alias");
    a.initial_state = sb;
    EXPECT(gdn_conv_forward(gdn_test_ctx, &p, &a, y, NULL), GDN_STATUS_SHAPE_MISMATCH,
           "initial_state");
    a.initial_state = NULL;
    EXPECT(gdn_conv_forward(gdn_test_ctx, &p, &a, y, sb), GDN_STATUS_SHAPE_MISMATCH,
           "final_state");
    a.n_seqs = 0;
    EXPECT(gdn_conv_forward(gdn_test_ctx, &p, &a, y, NULL), GDN_STATUS_INVALID_ARGUMENT, "n_seqs");
    a.n_seqs = 2;
    {
        gdn_conv_grads g;
        memset(&g, 0, sizeof(g));
        g.dx = y;
        EXPECT(gdn_conv_backward(gdn_test_ctx, &p, &a, y, NULL, &g), GDN_STATUS_INVALID_ARGUMENT,
               "dx");
        g.dx      = NULL;
        g.dweight = st;
        EXPECT(gdn_conv_backward(gdn_test_ctx, &p, &a, x, NULL, &g), GDN_STATUS_SHAPE_MISMATCH,
               "dweight");
    }
    {
        gdn_conv_args sa;
        memset(&sa, 0, sizeof(sa));
        sa.x = xt, sa.weight = w;
        GDN_TEST_OK(gdn_conv_step(gdn_test_ctx, &p, &sa, st, xt));
        EXPECT(gdn_conv_step(gdn_test_ctx, &p, &sa, sb, xt), GDN_STATUS_SHAPE_MISMATCH, "state");
        sa.initial_state = st;
        EXPECT(gdn_conv_step(gdn_test_ctx, &p, &sa, st, xt), GDN_STATUS_INVALID_ARGUMENT,
               "initial_state");
    }
#undef EXPECT
    gdn_tensor_destroy(x), gdn_tensor_destroy(y), gdn_tensor_destroy(w), gdn_tensor_destroy(wb);
    gdn_tensor_destroy(st), gdn_tensor_destroy(sb), gdn_tensor_destroy(xt);
}
END_TEST

int main(void)
{
    Suite *s  = suite_create("conv");
    TCase *tc = tcase_create("conv");

    gdn_test_add_ctx_fixture(tc, 600);
    tcase_add_loop_test(tc, test_conv_case, 0, (int)(sizeof(conv_cases) / sizeof(conv_cases[0])));
    tcase_add_loop_test(tc, test_conv_decode, 0,
                        (int)(sizeof(step_cases) / sizeof(step_cases[0])));
    tcase_add_test(tc, test_conv_checks);
    suite_add_tcase(s, tc);
    return gdn_test_run(s, 1);
}
