/*
 * test_linear.c - device tests of the dense layer ops (lib/ops/linear/)
 * against the float64 references of linear_ref.c: linear layers (plain and
 * grouped, bias, M = 1 and M = 0, awkward sizes, sizes past CLBlast's
 * direct/indirect switch, accumulate flags), the SwiGLU MLP (tape reused),
 * token embedding (repeated ids, one id repeated everywhere, out-of-range
 * ids, determinism, weight tying with the output head), cross-entropy
 * (ignore_index rows, all rows ignored, logits in +-80 with -inf entries,
 * vocab 50000 with small M, mean and sum, given and recomputed lse, in-place
 * backward) and argument validation. The skinny GEMM path of gdn__gemm
 * (few rows, NT) has its own cases in test_gemm_skinny.c, added to this
 * suite.
 *
 * Inputs are rounded to fp32 before the reference runs, so the tolerances
 * measure the device arithmetic only: relative RMS <= 2e-5 forward, <= 1e-4
 * backward. Outputs are poisoned with NaN first (except where a test
 * accumulates into known values).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gdn_test.h"
#include "linear_ref.h"

#define TOL_FWD 2e-5
#define TOL_BWD 1e-4

static double *dal(size_t n)
{
    double *p = calloc(n ? n : 1, sizeof(double));
    ck_assert_ptr_nonnull(p);
    return p;
}

/* n fp32-representable normal values of standard deviation std. */
static double *rnd(struct gdn_rng *r, size_t n, double std)
{
    double *p = dal(n);
    size_t  i;
    gdn_rng_fill_normal(r, p, n, std);
    for (i = 0; i < n; i++)
        p[i] = (double)(float)p[i];
    return p;
}

static gdn_tensor *ten(int32_t nd, const int64_t *shape, const double *data)
{
    return gdn_test_tensor(nd, shape, data);
}

static gdn_tensor *ten_i32(int32_t nd, const int64_t *shape, const int32_t *data)
{
    gdn_tensor *t = NULL;
    GDN_TEST_OK(gdn_tensor_create(gdn_test_ctx, GDN_DTYPE_I32, nd, shape, &t));
    if (gdn_tensor_nbytes(t))
        GDN_TEST_OK(gdn_tensor_write(t, data, 0, gdn_tensor_nbytes(t)));
    return t;
}

static void expect(const gdn_tensor *t, const double *ref, double tol, const char *what,
                   const char *desc)
{
    double e = gdn_test_expect(t, ref, tol, what, desc);
    printf("  %-10s %-44s rel_rms %.2e\n", what, desc, e);
}

/* ======================================================== linear */

struct lin_case {
    int32_t M, G, in, out;
    int     bias;
    int     acc; /* 1: all ACCUMULATE flags onto random prior values */
};

static const struct lin_case lin_cases[] = {
    {1, 1, 5, 3, 1, 0},       /* M = 1 */
    {17, 1, 33, 19, 1, 0},    /* nothing a multiple of 16 */
    {37, 1, 70, 45, 0, 1},    /* no bias, accumulate */
    {520, 1, 257, 129, 1, 0}, /* past CLBlast's direct-GEMM size on PoCL */
    {1100, 1, 1030, 1040, 0, 0}, /* CLBlast's indirect Xgemm on GPUs too
                                    (checks the device parameter overrides) */
    {9, 3, 20, 12, 1, 0},     /* grouped: strided-batched GEMM */
    {11, 2, 16, 7, 1, 1},     /* grouped, accumulate */
    {0, 1, 8, 4, 1, 0},       /* M = 0: dw, db must be zeros */
};

START_TEST(test_linear_case)
{
    const struct lin_case *c = &lin_cases[_i];
    struct gdn_rng         rng;
    const size_t           M = (size_t)c->M, G = (size_t)c->G, in = (size_t)c->in,
                 out = (size_t)c->out;
    double *x, *w, *b, *dy, *y_ref, *dx_ref, *dw_ref, *db_ref;
    int64_t xs[3], ws[3], bs[2], ys[3];
    int32_t nd = c->G > 1 ? 3 : 2, wnd = c->G > 1 ? 3 : 2;
    gdn_tensor       *tx, *tw, *tb = NULL, *ty, *tdy, *tdx, *tdw, *tdb;
    gdn_linear_params prm;
    gdn_linear_args   args;
    gdn_linear_grads  gr;
    char              desc[128];

    gdn_rng_seed(&rng, 100 + (uint64_t)_i);
    snprintf(desc, sizeof(desc), "M=%d G=%d in=%d out=%d%s%s", c->M, c->G, c->in, c->out,
             c->bias ? " bias" : "", c->acc ? " accumulate" : "");
    x  = rnd(&rng, M * G * in, 1.0);
    w  = rnd(&rng, G * out * in, 1.0 / sqrt((double)in));
    b  = rnd(&rng, G * out, 0.5);
    dy = rnd(&rng, M * G * out, 1.0);
    /* prior values of the outputs (accumulate) */
    y_ref  = c->acc ? rnd(&rng, M * G * out, 1.0) : dal(M * G * out);
    dx_ref = c->acc ? rnd(&rng, M * G * in, 1.0) : dal(M * G * in);
    dw_ref = c->acc ? rnd(&rng, G * out * in, 1.0) : dal(G * out * in);
    db_ref = c->acc ? rnd(&rng, G * out, 1.0) : dal(G * out);

    if (c->G > 1) {
        xs[0] = c->M, xs[1] = c->G, xs[2] = c->in;
        ys[0] = c->M, ys[1] = c->G, ys[2] = c->out;
        ws[0] = c->G, ws[1] = c->out, ws[2] = c->in;
        bs[0] = c->G, bs[1] = c->out;
    } else {
        nd = 2, wnd = 2;
        xs[0] = c->M, xs[1] = c->in;
        ys[0] = c->M, ys[1] = c->out;
        ws[0] = c->out, ws[1] = c->in;
        bs[0] = c->out;
    }
    tx  = ten(nd, xs, x);
    tw  = ten(wnd, ws, w);
    tb  = c->bias ? ten(wnd - 1, bs, b) : NULL;
    tdy = ten(nd, ys, dy);
    ty  = ten(nd, ys, c->acc ? y_ref : NULL);
    tdx = ten(nd, xs, c->acc ? dx_ref : NULL);
    tdw = ten(wnd, ws, c->acc ? dw_ref : NULL);
    tdb = ten(wnd - 1, bs, c->acc ? db_ref : NULL);

    gdn_linear_params_init(&prm);
    if (c->acc)
        prm.flags = GDN_LINEAR_ACCUMULATE_Y | GDN_LINEAR_ACCUMULATE_DX | GDN_LINEAR_ACCUMULATE_DW;
    memset(&args, 0, sizeof(args));
    args.x = tx, args.w = tw, args.b = tb;
    memset(&gr, 0, sizeof(gr));
    gr.dx = tdx, gr.dw = tdw, gr.db = tdb;

    GDN_TEST_OK(gdn_linear_forward(gdn_test_ctx, &prm, &args, ty));
    GDN_TEST_OK(gdn_linear_backward(gdn_test_ctx, &prm, &args, tdy, &gr));
    ref_linear_fwd(M, G, in, out, x, w, c->bias ? b : NULL, y_ref, c->acc);
    ref_linear_bwd(M, G, in, out, x, w, dy, dx_ref, c->acc, dw_ref, db_ref, c->acc);
    expect(ty, y_ref, TOL_FWD, "y", desc);
    expect(tdx, dx_ref, TOL_BWD, "dx", desc);
    expect(tdw, dw_ref, TOL_BWD, "dw", desc);
    expect(tdb, db_ref, TOL_BWD, "db", desc);

    gdn_tensor_destroy(tx), gdn_tensor_destroy(tw), gdn_tensor_destroy(tb);
    gdn_tensor_destroy(ty), gdn_tensor_destroy(tdy), gdn_tensor_destroy(tdx);
    gdn_tensor_destroy(tdw), gdn_tensor_destroy(tdb);
    free(x), free(w), free(b), free(dy), free(y_ref), free(dx_ref), free(dw_ref), free(db_ref);
}
END_TEST

/* dx only, without x (M from dy), and a 4-D activation [2, 3, 2, in]. */
START_TEST(test_linear_shapes)
{
    struct gdn_rng   rng;
    const int64_t    xs[4] = {2, 3, 2, 13}, ys[4] = {2, 3, 2, 6}, ws[2] = {6, 13};
    double          *x, *w, *dy, *y_ref = dal(12 * 6), *dx_ref = dal(12 * 13);
    gdn_tensor      *tx, *tw, *ty, *tdy, *tdx;
    gdn_linear_args  args;
    gdn_linear_grads gr;

    gdn_rng_seed(&rng, 5);
    x  = rnd(&rng, 12 * 13, 1.0);
    w  = rnd(&rng, 6 * 13, 0.3);
    dy = rnd(&rng, 12 * 6, 1.0);
    tx = ten(4, xs, x), tw = ten(2, ws, w), ty = ten(4, ys, NULL), tdy = ten(4, ys, dy);
    tdx = ten(4, xs, NULL);
    memset(&args, 0, sizeof(args));
    args.x = tx, args.w = tw;
    GDN_TEST_OK(gdn_linear_forward(gdn_test_ctx, NULL, &args, ty));
    args.x = NULL;
    memset(&gr, 0, sizeof(gr));
    gr.dx = tdx;
    GDN_TEST_OK(gdn_linear_backward(gdn_test_ctx, NULL, &args, tdy, &gr));
    ref_linear_fwd(12, 1, 13, 6, x, w, NULL, y_ref, 0);
    ref_linear_bwd(12, 1, 13, 6, x, w, dy, dx_ref, 0, NULL, NULL, 0);
    expect(ty, y_ref, TOL_FWD, "y", "4-D x [2,3,2,13]");
    expect(tdx, dx_ref, TOL_BWD, "dx", "4-D, dx only, x NULL");
    gdn_tensor_destroy(tx), gdn_tensor_destroy(tw), gdn_tensor_destroy(ty);
    gdn_tensor_destroy(tdy), gdn_tensor_destroy(tdx);
    free(x), free(w), free(dy), free(y_ref), free(dx_ref);
}
END_TEST

START_TEST(test_linear_errors)
{
    const int64_t     xs[2] = {4, 8}, ws[2] = {3, 8}, bad[2] = {4, 9}, ys[2] = {4, 3};
    gdn_tensor       *tx = ten(2, xs, NULL), *tw = ten(2, ws, NULL), *ty = ten(2, ys, NULL);
    gdn_tensor       *tbad = ten(2, bad, NULL);
    gdn_linear_params prm;
    gdn_linear_args   args;
    gdn_status        st;

    memset(&args, 0, sizeof(args));
    args.x = tbad, args.w = tw;
    st     = gdn_linear_forward(gdn_test_ctx, NULL, &args, ty);
    ck_assert_int_eq(st, GDN_STATUS_SHAPE_MISMATCH);
    ck_assert_ptr_nonnull(strstr(gdn_context_last_error(gdn_test_ctx), "x"));
    args.x = tx;
    st     = gdn_linear_forward(gdn_test_ctx, NULL, &args, tbad);
    ck_assert_int_eq(st, GDN_STATUS_SHAPE_MISMATCH);
    gdn_linear_params_init(&prm);
    prm.reserved[3] = 1;
    st              = gdn_linear_forward(gdn_test_ctx, &prm, &args, ty);
    ck_assert_int_eq(st, GDN_STATUS_INVALID_ARGUMENT);
    gdn_linear_params_init(&prm);
    prm.flags = 1u << 9;
    st        = gdn_linear_forward(gdn_test_ctx, &prm, &args, ty);
    ck_assert_int_eq(st, GDN_STATUS_INVALID_ARGUMENT);
    args.w = NULL;
    st     = gdn_linear_forward(gdn_test_ctx, NULL, &args, ty);
    ck_assert_int_eq(st, GDN_STATUS_INVALID_ARGUMENT);
    st = gdn_linear_forward(gdn_test_ctx, NULL, NULL, ty);
    ck_assert_int_eq(st, GDN_STATUS_INVALID_ARGUMENT);
    gdn_tensor_destroy(tx), gdn_tensor_destroy(tw), gdn_tensor_destroy(ty);
    gdn_tensor_destroy(tbad);
}
END_TEST

/* ======================================================== SwiGLU */

struct sw_case {
    int32_t M, D, F, Dout;
    int     acc;
};

static const struct sw_case sw_cases[] = {
    {1, 16, 40, 16, 0},
    {19, 48, 136, 48, 0},
    {33, 20, 50, 24, 1},
};

START_TEST(test_swiglu_case)
{
    const struct sw_case *c = &sw_cases[_i];
    struct gdn_rng        rng;
    const size_t          M = (size_t)c->M, D = (size_t)c->D, F = (size_t)c->F,
                 Do = (size_t)c->Dout;
    double *x, *wg, *wu, *wd, *dy, *y_ref, *dx_ref, *dg_ref, *du_ref, *dd_ref;
    const int64_t xs[2] = {c->M, c->D}, ys[2] = {c->M, c->Dout}, fs[2] = {c->F, c->D},
                  ds[2] = {c->Dout, c->F};
    gdn_tensor       *tx, *tg, *tu, *td, *ty, *tdy, *tdx, *tdg, *tdu, *tdd;
    gdn_swiglu_tape  *tape = NULL;
    gdn_swiglu_args   args;
    gdn_swiglu_grads  gr;
    gdn_linear_params prm;
    char              desc[128];
    int               rep;

    gdn_rng_seed(&rng, 200 + (uint64_t)_i);
    snprintf(desc, sizeof(desc), "M=%d D=%d F=%d Dout=%d%s", c->M, c->D, c->F, c->Dout,
             c->acc ? " accumulate" : "");
    x      = rnd(&rng, M * D, 1.0);
    wg     = rnd(&rng, F * D, 1.5 / sqrt((double)D));
    wu     = rnd(&rng, F * D, 1.0 / sqrt((double)D));
    wd     = rnd(&rng, Do * F, 1.0 / sqrt((double)F));
    dy     = rnd(&rng, M * Do, 1.0);
    y_ref  = c->acc ? rnd(&rng, M * Do, 1.0) : dal(M * Do);
    dx_ref = c->acc ? rnd(&rng, M * D, 1.0) : dal(M * D);
    dg_ref = c->acc ? rnd(&rng, F * D, 1.0) : dal(F * D);
    du_ref = c->acc ? rnd(&rng, F * D, 1.0) : dal(F * D);
    dd_ref = c->acc ? rnd(&rng, Do * F, 1.0) : dal(Do * F);
    tx = ten(2, xs, x), tg = ten(2, fs, wg), tu = ten(2, fs, wu), td = ten(2, ds, wd);
    tdy = ten(2, ys, dy);
    ty  = ten(2, ys, c->acc ? y_ref : NULL);
    tdx = ten(2, xs, c->acc ? dx_ref : NULL);
    tdg = ten(2, fs, c->acc ? dg_ref : NULL);
    tdu = ten(2, fs, c->acc ? du_ref : NULL);
    tdd = ten(2, ds, c->acc ? dd_ref : NULL);

    gdn_linear_params_init(&prm);
    memset(&args, 0, sizeof(args));
    args.x = tx, args.w_gate = tg, args.w_up = tu, args.w_down = td;
    if (c->acc)
        prm.flags = GDN_LINEAR_ACCUMULATE_Y;
    GDN_TEST_OK(gdn_swiglu_forward(gdn_test_ctx, &prm, &args, ty, &tape));
    ck_assert_ptr_nonnull(tape);
    ref_swiglu_fwd(M, D, F, Do, x, wg, wu, wd, y_ref, c->acc);
    expect(ty, y_ref, TOL_FWD, "y", desc);

    memset(&gr, 0, sizeof(gr));
    gr.dx = tdx, gr.dw_gate = tdg, gr.dw_up = tdu, gr.dw_down = tdd;
    prm.flags = c->acc ? GDN_LINEAR_ACCUMULATE_DX | GDN_LINEAR_ACCUMULATE_DW : 0;
    /* twice from the same tape: the second run gives the same (or, when
     * accumulating, twice the gradient on top of the prior values) */
    for (rep = 0; rep < 2; rep++) {
        GDN_TEST_OK(gdn_swiglu_backward(gdn_test_ctx, &prm, tape, tdy, &gr));
        if (rep == 0 || c->acc)
            ref_swiglu_bwd(M, D, F, Do, x, wg, wu, wd, dy, dx_ref, c->acc, dg_ref, du_ref, dd_ref,
                           c->acc);
    }
    expect(tdx, dx_ref, TOL_BWD, "dx", desc);
    expect(tdg, dg_ref, TOL_BWD, "dw_gate", desc);
    expect(tdu, du_ref, TOL_BWD, "dw_up", desc);
    expect(tdd, dd_ref, TOL_BWD, "dw_down", desc);

    /* forward without a tape gives the same y */
    if (!c->acc) {
        gdn_test_poison(ty);
        GDN_TEST_OK(gdn_swiglu_forward(gdn_test_ctx, NULL, &args, ty, NULL));
        expect(ty, y_ref, TOL_FWD, "y (no tape)", desc);
    }
    gdn_swiglu_tape_destroy(tape);
    gdn_tensor_destroy(tx), gdn_tensor_destroy(tg), gdn_tensor_destroy(tu);
    gdn_tensor_destroy(td), gdn_tensor_destroy(ty), gdn_tensor_destroy(tdy);
    gdn_tensor_destroy(tdx), gdn_tensor_destroy(tdg), gdn_tensor_destroy(tdu);
    gdn_tensor_destroy(tdd);
    free(x), free(wg), free(wu), free(wd), free(dy), free(y_ref), free(dx_ref), free(dg_ref);
    free(du_ref), free(dd_ref);
}
END_TEST

/* ======================================================== embedding */

struct emb_case {
    int32_t B, T, V, D;
    int32_t id_range; /* ids drawn from [0, id_range): repeats when small; 1: all equal */
    int     acc;
};

static const struct emb_case emb_cases[] = {
    {1, 1, 5, 7, 5, 0},
    {3, 37, 40, 130, 12, 0}, /* many repeats, most rows unused */
    {1, 300, 9, 33, 1, 0},   /* one id everywhere */
    {2, 50, 64, 24, 64, 1},  /* accumulate */
};

START_TEST(test_embedding_case)
{
    const struct emb_case *c = &emb_cases[_i];
    struct gdn_rng         rng;
    const size_t           T = (size_t)c->B * (size_t)c->T, V = (size_t)c->V, D = (size_t)c->D;
    int32_t               *ids = malloc(T * sizeof(int32_t));
    double                *table, *dy, *y_ref, *dt_ref;
    const int64_t          is[2] = {c->B, c->T}, ys[3] = {c->B, c->T, c->D}, tsh[2] = {c->V, c->D};
    gdn_tensor            *tt, *tid, *ty, *tdy, *tdt;
    gdn_linear_params      prm;
    float                 *first, *second;
    char                   desc[128];
    size_t                 i;

    gdn_rng_seed(&rng, 300 + (uint64_t)_i);
    snprintf(desc, sizeof(desc), "B=%d T=%d V=%d D=%d ids<%d%s", c->B, c->T, c->V, c->D,
             c->id_range, c->acc ? " accumulate" : "");
    for (i = 0; i < T; i++)
        ids[i] = (int32_t)(gdn_rng_next_u64(&rng) % (uint64_t)c->id_range);
    table  = rnd(&rng, V * D, 1.0);
    dy     = rnd(&rng, T * D, 1.0);
    y_ref  = c->acc ? rnd(&rng, T * D, 1.0) : dal(T * D);
    dt_ref = c->acc ? rnd(&rng, V * D, 1.0) : dal(V * D);
    tt  = ten(2, tsh, table);
    tid = ten_i32(2, is, ids);
    tdy = ten(3, ys, dy);
    ty  = ten(3, ys, c->acc ? y_ref : NULL);
    tdt = ten(2, tsh, c->acc ? dt_ref : NULL);
    gdn_linear_params_init(&prm);
    prm.flags = c->acc ? GDN_LINEAR_ACCUMULATE_Y : 0;
    GDN_TEST_OK(gdn_embedding_forward(gdn_test_ctx, &prm, tt, tid, ty));
    prm.flags = c->acc ? GDN_LINEAR_ACCUMULATE_DW : 0;
    GDN_TEST_OK(gdn_embedding_backward(gdn_test_ctx, &prm, tid, tdy, tdt));
    ref_embedding_fwd(T, V, D, table, ids, y_ref, c->acc);
    ref_embedding_bwd(T, V, D, ids, dy, dt_ref, c->acc);
    expect(ty, y_ref, TOL_FWD, "y", desc);
    expect(tdt, dt_ref, TOL_BWD, "dtable", desc);
    if (!c->acc) {
        /* bitwise deterministic */
        first = gdn_test_read(tdt);
        gdn_test_poison(tdt);
        GDN_TEST_OK(gdn_embedding_backward(gdn_test_ctx, &prm, tid, tdy, tdt));
        second = gdn_test_read(tdt);
        ck_assert_msg(memcmp(first, second, V * D * sizeof(float)) == 0,
                      "embedding backward is not deterministic [%s]", desc);
        free(first), free(second);
    }
    gdn_tensor_destroy(tt), gdn_tensor_destroy(tid), gdn_tensor_destroy(ty);
    gdn_tensor_destroy(tdy), gdn_tensor_destroy(tdt);
    free(ids), free(table), free(dy), free(y_ref), free(dt_ref);
}
END_TEST

/* Out-of-range ids: NaN rows forward, skipped backward. */
START_TEST(test_embedding_bad_ids)
{
    const int32_t ids[5]  = {2, -1, 0, 7, 2};
    const int64_t is[1]   = {5}, ys[2] = {5, 3}, tsh[2] = {4, 3};
    double        table[12], dy[15], dt_ref[12];
    gdn_tensor   *tt, *tid, *ty, *tdy, *tdt;
    float        *y;
    int           i;
    for (i = 0; i < 12; i++)
        table[i] = i + 1;
    for (i = 0; i < 15; i++)
        dy[i] = 0.5 * i;
    tt = ten(2, tsh, table), tid = ten_i32(1, is, ids), ty = ten(2, ys, NULL);
    tdy = ten(2, ys, dy), tdt = ten(2, tsh, NULL);
    GDN_TEST_OK(gdn_embedding_forward(gdn_test_ctx, NULL, tt, tid, ty));
    y = gdn_test_read(ty);
    ck_assert(y[0] == 7.0f && y[8] == 3.0f && isnan(y[3]) && isnan(y[9]) && y[12] == 7.0f);
    free(y);
    GDN_TEST_OK(gdn_embedding_backward(gdn_test_ctx, NULL, tid, tdy, tdt));
    ref_embedding_bwd(5, 4, 3, ids, dy, dt_ref, 0);
    expect(tdt, dt_ref, TOL_BWD, "dtable", "ids -1 and 7 with vocab 4");
    gdn_tensor_destroy(tt), gdn_tensor_destroy(tid), gdn_tensor_destroy(ty);
    gdn_tensor_destroy(tdy), gdn_tensor_destroy(tdt);
}
END_TEST

/* Tied output head: logits = h E^T; dE = head dw + embedding scatter. */
START_TEST(test_tied_head)
{
    struct gdn_rng    rng;
    const int32_t     T = 23, V = 50, D = 20;
    int32_t           ids[23];
    double           *E, *h, *dlog, *dE_ref = dal(50 * 20), *demb, *log_ref = dal(23 * 50);
    const int64_t     es[2] = {V, D}, hs[2] = {T, D}, ls[2] = {T, V}, is[1] = {T};
    gdn_tensor       *tE, *th, *tl, *tdl, *tdE, *tid, *tdemb;
    gdn_linear_args   args;
    gdn_linear_grads  gr;
    gdn_linear_params prm;
    int               i;

    gdn_rng_seed(&rng, 77);
    for (i = 0; i < T; i++)
        ids[i] = (int32_t)(gdn_rng_next_u64(&rng) % 30);
    E    = rnd(&rng, 50 * 20, 0.5);
    h    = rnd(&rng, 23 * 20, 1.0);
    dlog = rnd(&rng, 23 * 50, 0.1);
    demb = rnd(&rng, 23 * 20, 1.0);
    tE = ten(2, es, E), th = ten(2, hs, h), tl = ten(2, ls, NULL), tdl = ten(2, ls, dlog);
    tdE = ten(2, es, NULL), tid = ten_i32(1, is, ids), tdemb = ten(2, hs, demb);
    memset(&args, 0, sizeof(args));
    args.x = th, args.w = tE;
    GDN_TEST_OK(gdn_linear_forward(gdn_test_ctx, NULL, &args, tl));
    memset(&gr, 0, sizeof(gr));
    gr.dw = tdE;
    GDN_TEST_OK(gdn_linear_backward(gdn_test_ctx, NULL, &args, tdl, &gr));
    gdn_linear_params_init(&prm);
    prm.flags = GDN_LINEAR_ACCUMULATE_DW;
    GDN_TEST_OK(gdn_embedding_backward(gdn_test_ctx, &prm, tid, tdemb, tdE));
    ref_linear_fwd(23, 1, 20, 50, h, E, NULL, log_ref, 0);
    ref_linear_bwd(23, 1, 20, 50, h, E, dlog, NULL, 0, dE_ref, NULL, 0);
    ref_embedding_bwd(23, 50, 20, ids, demb, dE_ref, 1);
    expect(tl, log_ref, TOL_FWD, "logits", "tied head T=23 V=50 D=20");
    expect(tdE, dE_ref, TOL_BWD, "dE", "tied head + embedding");
    gdn_tensor_destroy(tE), gdn_tensor_destroy(th), gdn_tensor_destroy(tl);
    gdn_tensor_destroy(tdl), gdn_tensor_destroy(tdE), gdn_tensor_destroy(tid);
    gdn_tensor_destroy(tdemb);
    free(E), free(h), free(dlog), free(dE_ref), free(demb), free(log_ref);
}
END_TEST

/* ======================================================== cross-entropy */

struct ce_case {
    int32_t M, V;
    double  lo, hi;    /* logits uniform in [lo, hi) */
    int     n_ignore;  /* rows with ignore_index (every k-th) */
    int     neg_inf;   /* set a few non-target logits to -inf */
    int     sum_mode;
    int     give_lse;  /* backward with the forward's lse (else recomputed) */
    int     in_place;  /* backward writes over the logits tensor */
    int     dloss;     /* pass dloss = 0.7 on the device (else NULL = 1) */
};

static const struct ce_case ce_cases[] = {
    {1, 7, -2, 2, 0, 0, 0, 1, 0, 0},
    {13, 1000, -6, 6, 3, 0, 0, 1, 0, 1},
    {9, 2000, -80, 80, 2, 1, 0, 0, 0, 0},  /* big logits, -inf entries */
    {5, 50000, -4, 4, 1, 0, 1, 1, 1, 1},   /* vocab 50000, small M, sum */
    {4, 10, -1, 1, 4, 0, 0, 1, 0, 0},      /* every row ignored */
    {70, 33, -3, 3, 10, 0, 0, 0, 1, 0},
};

START_TEST(test_ce_case)
{
    const struct ce_case *c = &ce_cases[_i];
    struct gdn_rng        rng;
    const size_t          M = (size_t)c->M, V = (size_t)c->V;
    double               *lg = dal(M * V), *lse_ref = dal(M), *rl_ref = dal(M), loss_ref;
    double               *dl_ref = dal(M * V), dloss_v = 0.7;
    int32_t              *t      = malloc(M * sizeof(int32_t)), count_ref, count_got;
    const int64_t         ls[2]  = {c->M, c->V}, ms[1] = {c->M}, one[1] = {1};
    gdn_tensor           *tl, *tt, *tloss, *tcnt, *tlse, *trl, *tdl, *tdloss = NULL;
    gdn_cross_entropy_params prm;
    gdn_cross_entropy_out    out;
    char                     desc[160];
    size_t                   i, r;

    gdn_rng_seed(&rng, 400 + (uint64_t)_i);
    snprintf(desc, sizeof(desc), "M=%d V=%d logits [%g,%g) ign=%d%s%s%s%s", c->M, c->V, c->lo,
             c->hi, c->n_ignore, c->neg_inf ? " -inf" : "", c->sum_mode ? " sum" : " mean",
             c->give_lse ? " lse" : "", c->in_place ? " in-place" : "");
    gdn_rng_fill_uniform(&rng, lg, M * V, c->lo, c->hi);
    for (i = 0; i < M * V; i++)
        lg[i] = (double)(float)lg[i];
    for (r = 0; r < M; r++) {
        t[r] = (int32_t)(gdn_rng_next_u64(&rng) % V);
        if (c->n_ignore && (int)(r % (size_t)(c->M / c->n_ignore > 0 ? c->M / c->n_ignore : 1)) == 0)
            t[r] = -100;
        if (c->neg_inf)
            for (i = 0; i < 5; i++) {
                size_t j = (size_t)(gdn_rng_next_u64(&rng) % V);
                if ((int32_t)j != t[r])
                    lg[r * V + j] = -INFINITY;
            }
    }
    if (c->n_ignore >= c->M)
        for (r = 0; r < M; r++)
            t[r] = -100;
    tl    = ten(2, ls, lg);
    tt    = ten_i32(1, ms, t);
    tloss = ten(1, one, NULL);
    GDN_TEST_OK(gdn_tensor_create(gdn_test_ctx, GDN_DTYPE_I32, 1, one, &tcnt));
    tlse = ten(1, ms, NULL);
    trl  = ten(1, ms, NULL);
    tdl  = c->in_place ? tl : ten(2, ls, NULL);
    if (c->dloss)
        tdloss = ten(1, one, &dloss_v);

    gdn_cross_entropy_params_init(&prm);
    if (c->sum_mode)
        prm.flags = GDN_CROSS_ENTROPY_SUM;
    memset(&out, 0, sizeof(out));
    out.loss = tloss, out.count = tcnt, out.lse = tlse, out.row_loss = trl;
    GDN_TEST_OK(gdn_cross_entropy_forward(gdn_test_ctx, &prm, tl, tt, &out));
    ref_cross_entropy_fwd(M, V, lg, t, -100, c->sum_mode, lse_ref, rl_ref, &loss_ref, &count_ref);
    expect(tloss, &loss_ref, TOL_FWD, "loss", desc);
    expect(tlse, lse_ref, TOL_FWD, "lse", desc);
    expect(trl, rl_ref, TOL_FWD, "row_loss", desc);
    GDN_TEST_OK(gdn_tensor_read(tcnt, &count_got, 0, sizeof(count_got)));
    ck_assert_int_eq(count_got, count_ref);

    GDN_TEST_OK(gdn_cross_entropy_backward(gdn_test_ctx, &prm, tl, tt, c->give_lse ? tlse : NULL,
                                           tdloss, tdl));
    ref_cross_entropy_bwd(M, V, lg, t, -100, c->sum_mode, c->dloss ? dloss_v : 1.0, dl_ref);
    expect(tdl, dl_ref, TOL_BWD, "dlogits", desc);

    /* forward with only the loss output */
    if (!c->in_place) {
        memset(&out, 0, sizeof(out));
        out.loss = tloss;
        gdn_test_poison(tloss);
        GDN_TEST_OK(gdn_cross_entropy_forward(gdn_test_ctx, &prm, tl, tt, &out));
        expect(tloss, &loss_ref, TOL_FWD, "loss only", desc);
    }
    gdn_tensor_destroy(tl), gdn_tensor_destroy(tt), gdn_tensor_destroy(tloss);
    gdn_tensor_destroy(tcnt), gdn_tensor_destroy(tlse), gdn_tensor_destroy(trl);
    if (!c->in_place)
        gdn_tensor_destroy(tdl);
    gdn_tensor_destroy(tdloss);
    free(lg), free(lse_ref), free(rl_ref), free(dl_ref), free(t);
}
END_TEST

/* An out-of-range target makes the loss NaN; errors are reported. */
START_TEST(test_ce_errors)
{
    const int32_t t[3]   = {1, 5, 0};
    const int64_t ls[2]  = {3, 4}, ms[1] = {3}, one[1] = {1}, bad[2] = {4, 4};
    double        lg[12] = {0};
    gdn_tensor   *tl = ten(2, ls, lg), *tt = ten_i32(1, ms, t), *tloss = ten(1, one, NULL);
    gdn_tensor   *tbad = ten(2, bad, NULL), *tdl = ten(2, ls, NULL);
    gdn_cross_entropy_out    out;
    gdn_cross_entropy_params prm;
    float                    loss, *dl;

    memset(&out, 0, sizeof(out));
    out.loss = tloss;
    GDN_TEST_OK(gdn_cross_entropy_forward(gdn_test_ctx, NULL, tl, tt, &out));
    GDN_TEST_OK(gdn_tensor_read(tloss, &loss, 0, sizeof(loss)));
    ck_assert(isnan(loss));
    GDN_TEST_OK(gdn_cross_entropy_backward(gdn_test_ctx, NULL, tl, tt, NULL, NULL, tdl));
    dl = gdn_test_read(tdl);
    ck_assert(isnan(dl[4]) && !isnan(dl[0]) && !isnan(dl[8]));
    free(dl);
    ck_assert_int_eq(gdn_cross_entropy_forward(gdn_test_ctx, NULL, tbad, tt, &out),
                     GDN_STATUS_SHAPE_MISMATCH);
    ck_assert_int_eq(gdn_cross_entropy_backward(gdn_test_ctx, NULL, tl, tt, NULL, NULL, tbad),
                     GDN_STATUS_SHAPE_MISMATCH);
    ck_assert_int_eq(gdn_cross_entropy_forward(gdn_test_ctx, NULL, tl, tl, &out),
                     GDN_STATUS_SHAPE_MISMATCH);
    gdn_cross_entropy_params_init(&prm);
    ck_assert_int_eq(prm.ignore_index, -100);
    prm.reserved[0] = 1;
    ck_assert_int_eq(gdn_cross_entropy_forward(gdn_test_ctx, &prm, tl, tt, &out),
                     GDN_STATUS_INVALID_ARGUMENT);
    out.loss = NULL;
    ck_assert_int_eq(gdn_cross_entropy_forward(gdn_test_ctx, NULL, tl, tt, &out),
                     GDN_STATUS_INVALID_ARGUMENT);
    gdn_tensor_destroy(tl), gdn_tensor_destroy(tt), gdn_tensor_destroy(tloss);
    gdn_tensor_destroy(tbad), gdn_tensor_destroy(tdl);
}
END_TEST

/* test_gemm_skinny.c: the skinny GEMM path of gdn__gemm */
void gemm_skinny_add_tests(Suite *s);

static Suite *suite(void)
{
    Suite *s = suite_create("linear");
    TCase *tc;

    tc = tcase_create("linear");
    gdn_test_add_ctx_fixture(tc, 600);
    tcase_add_loop_test(tc, test_linear_case, 0, (int)(sizeof(lin_cases) / sizeof(lin_cases[0])));
    tcase_add_test(tc, test_linear_shapes);
    tcase_add_test(tc, test_linear_errors);
    suite_add_tcase(s, tc);

    tc = tcase_create("swiglu");
    gdn_test_add_ctx_fixture(tc, 600);
    tcase_add_loop_test(tc, test_swiglu_case, 0, (int)(sizeof(sw_cases) / sizeof(sw_cases[0])));
    suite_add_tcase(s, tc);

    tc = tcase_create("embedding");
    gdn_test_add_ctx_fixture(tc, 600);
    tcase_add_loop_test(tc, test_embedding_case, 0,
                        (int)(sizeof(emb_cases) / sizeof(emb_cases[0])));
    tcase_add_test(tc, test_embedding_bad_ids);
    tcase_add_test(tc, test_tied_head);
    suite_add_tcase(s, tc);

    tc = tcase_create("cross_entropy");
    gdn_test_add_ctx_fixture(tc, 600);
    tcase_add_loop_test(tc, test_ce_case, 0, (int)(sizeof(ce_cases) / sizeof(ce_cases[0])));
    tcase_add_test(tc, test_ce_errors);
    suite_add_tcase(s, tc);

    gemm_skinny_add_tests(s);
    return s;
}

int main(void)
{
    return gdn_test_run(suite(), 1);
}
