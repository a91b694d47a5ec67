/*
 * test_model.c - device suite of the model layer (lib/model/): the tiny
 * Gated DeltaNet, H1 and H2 stacks.
 *
 *   grad      backward against central finite differences of the loss
 *             L = sum(logits * R) along a random direction of every
 *             parameter tensor (float32 forward, so the tolerance is that of
 *             a float32 difference quotient: 2e-2 relative)
 *   decode    prefill T tokens then m decode steps give the logits of a
 *             forward over T + m tokens (every stack, several sequences)
 *   varlen    a packed batch of sequences equals each sequence run alone
 *   batched   ids [B, T_b] equal the same tokens packed with offsets
 *   slice     the column-slice kernel against a plain C loop
 *   train     the loss falls over AdamW steps; the reported gradient norm
 *             is the norm of the gradients; save -> load gives identical
 *             logits, and training on from both gives identical losses
 *   files     missing, truncated, corrupt, non-finite and wrong-shape
 *             checkpoint files fail cleanly and change nothing
 *   checks    bad configs and arguments give the right status and message
 * Outputs are poisoned with NaN before every call.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gdn_test.h"
#include "model.h"

/* "tiny-gdn-v288": value heads of 288 columns, run as two op-level heads of
 * 144 (the model's split of heads wider than 256) */
static const char *const stacks[] = {"tiny-gdn", "tiny-h1", "tiny-h2", "tiny-gdn-v288"};

static gdn_model *make_model(const char *preset, uint64_t seed)
{
    gdn_model_config cfg;
    gdn_model       *m = NULL;
    if (!strcmp(preset, "tiny-gdn-v288")) {
        ck_assert_int_eq(gdn_model_config_preset("tiny-gdn", &cfg), GDN_STATUS_OK);
        cfg.gdn_head_v  = 288;
        cfg.gdn_v_heads = 2;
        GDN_TEST_OK(gdn_model_create(gdn_test_ctx, &cfg, seed, &m));
        return m;
    }
    ck_assert_int_eq(gdn_model_config_preset(preset, &cfg), GDN_STATUS_OK);
    GDN_TEST_OK(gdn_model_create(gdn_test_ctx, &cfg, seed, &m));
    return m;
}

static gdn_tensor *ids_tensor(int32_t ndim, const int64_t *shape, const int32_t *ids)
{
    gdn_tensor *t = NULL;
    int64_t     n = 1;
    for (int32_t i = 0; i < ndim; i++)
        n *= shape[i];
    GDN_TEST_OK(gdn_tensor_create(gdn_test_ctx, GDN_DTYPE_I32, ndim, shape, &t));
    if (n)
        GDN_TEST_OK(gdn_tensor_write(t, ids, 0, (size_t)n * sizeof(int32_t)));
    return t;
}

static void random_ids(struct gdn_rng *r, int32_t *ids, int64_t n, int32_t vocab)
{
    for (int64_t i = 0; i < n; i++)
        ids[i] = (int32_t)(gdn_rng_next_u64(r) % (uint64_t)vocab);
}

/* logits [T, vocab] of a forward over ids (packed with offsets or NULL). */
static float *forward_logits(gdn_model *m, gdn_tensor *ids, const int32_t *off, int32_t n,
                             int64_t T, int32_t vocab)
{
    gdn_tensor     *lg;
    gdn_model_batch b;
    float          *out;
    memset(&b, 0, sizeof(b));
    b.ids         = ids;
    b.seq_offsets = off;
    b.n_seqs      = off ? n : 0;
    lg            = gdn_test_tensor(2, (const int64_t[]){T, vocab}, NULL);
    GDN_TEST_OK(gdn_model_forward(m, &b, lg, NULL));
    out = gdn_test_read(lg);
    gdn_tensor_destroy(lg);
    return out;
}

static double max_rel(const float *a, const float *b, size_t n)
{
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        num = fmax(num, fabs((double)a[i] - b[i]));
        den = fmax(den, fabs((double)b[i]));
    }
    return den > 0 ? num / den : num;
}

/* ---- gradient check --------------------------------------------------- */

/* L = sum(logits * R) in double from a forward. */
static double loss_of(gdn_model *m, gdn_model_batch *b, gdn_tensor *lg, const float *R, size_t n)
{
    float *l;
    double s = 0;
    GDN_TEST_OK(gdn_model_forward(m, b, lg, NULL));
    l = gdn_test_read(lg);
    for (size_t i = 0; i < n; i++)
        s += (double)l[i] * R[i];
    free(l);
    return s;
}

START_TEST(test_model_grad)
{
    const char     *preset = stacks[_i];
    gdn_model      *m      = make_model(preset, 11 + (uint64_t)_i);
    gdn_model_config cfg;
    struct gdn_rng  r;
    const int32_t   off[] = {0, 5, 19, 19 + 41};
    const int64_t   T     = 60;
    int32_t         ids[60];
    gdn_tensor     *tid, *lg, *dl;
    gdn_model_tape *tape = NULL;
    gdn_model_batch b;
    float          *R;
    size_t          nl;
    int             checked = 0;
    gdn_model_get_config(m, &cfg);
    gdn_rng_seed(&r, 1234 + (uint64_t)_i);
    random_ids(&r, ids, T, cfg.vocab);
    tid = ids_tensor(1, (const int64_t[]){T}, ids);
    nl  = (size_t)T * (size_t)cfg.vocab;
    R   = malloc(nl * sizeof(float));
    for (size_t i = 0; i < nl; i++)
        R[i] = (float)gdn_rng_normal(&r);
    memset(&b, 0, sizeof(b));
    b.ids         = tid;
    b.seq_offsets = off;
    b.n_seqs      = 3;
    lg            = gdn_test_tensor(2, (const int64_t[]){T, cfg.vocab}, NULL);
    dl            = gdn_test_tensor(2, (const int64_t[]){T, cfg.vocab}, NULL);
    GDN_TEST_OK(gdn_tensor_write(dl, R, 0, nl * sizeof(float)));
    GDN_TEST_OK(gdn_model_zero_grad(m));
    GDN_TEST_OK(gdn_model_forward(m, &b, lg, &tape));
    GDN_TEST_OK(gdn_model_backward(m, tape, dl));
    gdn_model_tape_destroy(tape);
    for (int32_t p = 0; p < gdn_model_param_tensors(m); p++) {
        const char *name;
        int64_t     numel;
        float      *w, *g, *u, *wp;
        double      dir = 0, unorm = 0, lp, lm, fd, h, wmax = 0;
        GDN_TEST_OK(gdn_model_param_info(m, p, &name, &numel));
        w  = malloc((size_t)numel * sizeof(float));
        g  = malloc((size_t)numel * sizeof(float));
        u  = malloc((size_t)numel * sizeof(float));
        wp = malloc((size_t)numel * sizeof(float));
        GDN_TEST_OK(gdn_model_param_read(m, name, 0, w, (size_t)numel));
        GDN_TEST_OK(gdn_model_param_read(m, name, 1, g, (size_t)numel));
        for (int64_t i = 0; i < numel; i++) {
            u[i] = (float)gdn_rng_normal(&r);
            dir += (double)g[i] * u[i];
            unorm += (double)u[i] * u[i];
            wmax = fmax(wmax, fabs(w[i]));
        }
        /* Central differences at steps of 3e-3, 1e-2 and 1e-3 of the
         * tensor's scale per unit of u: float32 losses make small steps
         * drown in rounding and large ones in curvature, so the check passes
         * when one step agrees (a wrong gradient agrees at none). */
        {
            static const double rel[3] = {3e-3, 1e-2, 1e-3};
            double              best   = INFINITY, best_fd = 0;
            for (int k = 0; k < 3 && best > 2e-2; k++) {
                double err;
                h = rel[k] * fmax(wmax, 0.05) / sqrt(unorm / (double)numel);
                for (int64_t i = 0; i < numel; i++)
                    wp[i] = (float)(w[i] + h * u[i]);
                GDN_TEST_OK(gdn_model_param_write(m, name, wp, (size_t)numel));
                lp = loss_of(m, &b, lg, R, nl);
                for (int64_t i = 0; i < numel; i++)
                    wp[i] = (float)(w[i] - h * u[i]);
                GDN_TEST_OK(gdn_model_param_write(m, name, wp, (size_t)numel));
                lm = loss_of(m, &b, lg, R, nl);
                GDN_TEST_OK(gdn_model_param_write(m, name, w, (size_t)numel));
                fd  = (lp - lm) / (2 * h);
                err = fabs(fd - dir) / (fabs(dir) + 0.1 * sqrt(unorm));
                if (err < best) {
                    best    = err;
                    best_fd = fd;
                }
            }
            ck_assert_msg(isfinite(dir) && best <= 2e-2,
                          "%s %s: backward %.6g, finite difference %.6g", preset, name, dir,
                          best_fd);
        }
        checked++;
        free(w);
        free(g);
        free(u);
        free(wp);
    }
    ck_assert_int_gt(checked, 10);
    free(R);
    gdn_tensor_destroy(lg);
    gdn_tensor_destroy(dl);
    gdn_tensor_destroy(tid);
    gdn_model_destroy(m);
}
END_TEST

/* ---- decode equals forward --------------------------------------------- */

START_TEST(test_model_decode)
{
    const char      *preset = stacks[_i];
    gdn_model       *m      = make_model(preset, 5);
    gdn_model_config cfg;
    struct gdn_rng   r;
    enum { N = 3, STEPS = 12 };
    const int32_t    plen[N] = {1, 7, 20}; /* shorter and longer than the window and conv */
    int32_t          total[N], off[N + 1] = {0}, *ids[N];
    gdn_model_state *st = NULL;
    gdn_model_batch  b;
    gdn_tensor      *tid, *lg;
    float           *full[N];
    int32_t          pk[64];
    gdn_model_get_config(m, &cfg);
    gdn_rng_seed(&r, 99);
    for (int i = 0; i < N; i++) {
        total[i] = plen[i] + STEPS;
        ids[i]   = malloc((size_t)total[i] * sizeof(int32_t));
        random_ids(&r, ids[i], total[i], cfg.vocab);
        tid     = ids_tensor(1, (const int64_t[]){total[i]}, ids[i]);
        full[i] = forward_logits(m, tid, NULL, 1, total[i], cfg.vocab);
        gdn_tensor_destroy(tid);
        off[i + 1] = off[i] + plen[i];
        memcpy(pk + off[i], ids[i], (size_t)plen[i] * sizeof(int32_t));
    }
    GDN_TEST_OK(gdn_model_state_create(m, N, &st));
    tid = ids_tensor(1, (const int64_t[]){off[N]}, pk);
    lg  = gdn_test_tensor(2, (const int64_t[]){N, cfg.vocab}, NULL);
    memset(&b, 0, sizeof(b));
    b.ids         = tid;
    b.seq_offsets = off;
    b.n_seqs      = N;
    GDN_TEST_OK(gdn_model_prefill(m, st, &b, lg));
    gdn_tensor_destroy(tid);
    for (int s = 0; s <= STEPS; s++) {
        float *got = gdn_test_read(lg);
        for (int i = 0; i < N; i++) {
            const float *want = full[i] + (size_t)(plen[i] - 1 + s) * (size_t)cfg.vocab;
            double       e    = max_rel(got + (size_t)i * (size_t)cfg.vocab, want, (size_t)cfg.vocab);
            ck_assert_msg(e < 1e-4, "%s: sequence %d, step %d: decode differs from forward by %.3g",
                          preset, i, s, e);
        }
        free(got);
        if (s == STEPS)
            break;
        {
            int32_t next[N];
            for (int i = 0; i < N; i++)
                next[i] = ids[i][plen[i] + s];
            tid = ids_tensor(1, (const int64_t[]){N}, next);
            gdn_test_poison(lg);
            GDN_TEST_OK(gdn_model_decode(m, st, tid, lg));
            gdn_tensor_destroy(tid);
        }
    }
    for (int i = 0; i < N; i++) {
        free(ids[i]);
        free(full[i]);
    }
    gdn_tensor_destroy(lg);
    gdn_model_state_destroy(st);
    gdn_model_destroy(m);
}
END_TEST

/* ---- varlen and batched equal sequences one by one ----------------------- */

START_TEST(test_model_varlen)
{
    const char      *preset = stacks[_i];
    gdn_model       *m      = make_model(preset, 8);
    gdn_model_config cfg;
    struct gdn_rng   r;
    const int32_t    off[] = {0, 1, 31, 31, 100};
    int32_t          ids[100];
    gdn_tensor      *tid;
    float           *packed;
    gdn_model_get_config(m, &cfg);
    gdn_rng_seed(&r, 7);
    random_ids(&r, ids, 100, cfg.vocab);
    tid    = ids_tensor(1, (const int64_t[]){100}, ids);
    packed = forward_logits(m, tid, off, 4, 100, cfg.vocab);
    gdn_tensor_destroy(tid);
    for (int s = 0; s < 4; s++) {
        int32_t len = off[s + 1] - off[s];
        float  *one;
        if (!len)
            continue;
        tid = ids_tensor(1, (const int64_t[]){len}, ids + off[s]);
        one = forward_logits(m, tid, NULL, 1, len, cfg.vocab);
        ck_assert_msg(max_rel(packed + (size_t)off[s] * (size_t)cfg.vocab, one,
                              (size_t)len * (size_t)cfg.vocab) < 1e-5,
                      "%s: packed sequence %d differs from it alone", preset, s);
        free(one);
        gdn_tensor_destroy(tid);
    }
    /* batched [2, 35] == packed with offsets {0, 35, 70} */
    {
        const int32_t o2[] = {0, 35, 70};
        gdn_tensor   *tb   = ids_tensor(2, (const int64_t[]){2, 35}, ids);
        gdn_tensor   *lg   = gdn_test_tensor(3, (const int64_t[]){2, 35, cfg.vocab}, NULL);
        gdn_model_batch b;
        float          *a, *p2;
        memset(&b, 0, sizeof(b));
        b.ids = tb;
        GDN_TEST_OK(gdn_model_forward(m, &b, lg, NULL));
        a   = gdn_test_read(lg);
        tid = ids_tensor(1, (const int64_t[]){70}, ids);
        p2  = forward_logits(m, tid, o2, 2, 70, cfg.vocab);
        ck_assert_msg(max_rel(a, p2, (size_t)70 * (size_t)cfg.vocab) == 0,
                      "%s: batched ids differ from the same packed batch", preset);
        free(a);
        free(p2);
        gdn_tensor_destroy(tid);
        gdn_tensor_destroy(tb);
        gdn_tensor_destroy(lg);
    }
    free(packed);
    gdn_model_destroy(m);
}
END_TEST

/* ---- the column slice kernel -------------------------------------------- */

START_TEST(test_model_slice)
{
    enum { R = 37, CS = 29, CD = 23 };
    double      src[R * CS], dst0[R * CD];
    gdn_tensor *ts, *td;
    float      *got;
    struct gdn_rng rng;
    gdn_rng_seed(&rng, 3);
    for (int i = 0; i < R * CS; i++)
        src[i] = gdn_rng_normal(&rng);
    for (int i = 0; i < R * CD; i++)
        dst0[i] = gdn_rng_normal(&rng);
    ts = gdn_test_tensor(2, (const int64_t[]){R, CS}, src);
    for (int acc = 0; acc < 2; acc++) {
        td = gdn_test_tensor(2, (const int64_t[]){R, CD}, dst0);
        GDN_TEST_OK(gdn__slice_cols(gdn_test_ctx, ts, CS, 5, td, CD, 3, R, 17, acc));
        got = gdn_test_read(td);
        for (int r = 0; r < R; r++)
            for (int c = 0; c < CD; c++) {
                double want = (float)dst0[r * CD + c];
                if (c >= 3 && c < 20)
                    want = (acc ? want : 0) + (float)src[r * CS + 5 + c - 3];
                ck_assert_msg(fabs(got[r * CD + c] - want) <= 1e-6 * (1 + fabs(want)),
                              "slice acc=%d [%d,%d]: %g vs %g", acc, r, c, got[r * CD + c], want);
            }
        free(got);
        gdn_tensor_destroy(td);
    }
    gdn_tensor_destroy(ts);
}
END_TEST


/* ---- training steps, checkpoints, resume --------------------------------- */

/* One training step on a fixed batch (mean cross-entropy of next tokens);
 * returns the loss. */
static float train_step(gdn_model *m, gdn_tensor *tid, gdn_tensor *ttg, gdn_tensor *lg,
                        const gdn_adamw_params *ap, gdn_step_report *rep)
{
    gdn_cross_entropy_params cp;
    gdn_cross_entropy_out    co;
    gdn_model_batch          b;
    gdn_model_tape          *tape = NULL;
    gdn_tensor              *loss = gdn_test_tensor(1, (const int64_t[]){1}, NULL);
    float                    l;
    gdn_cross_entropy_params_init(&cp);
    memset(&co, 0, sizeof(co));
    co.loss = loss;
    memset(&b, 0, sizeof(b));
    b.ids = tid;
    GDN_TEST_OK(gdn_model_zero_grad(m));
    GDN_TEST_OK(gdn_model_forward(m, &b, lg, &tape));
    GDN_TEST_OK(gdn_cross_entropy_forward(gdn_test_ctx, &cp, lg, ttg, &co));
    GDN_TEST_OK(gdn_cross_entropy_backward(gdn_test_ctx, &cp, lg, ttg, NULL, NULL, lg));
    GDN_TEST_OK(gdn_model_backward(m, tape, lg));
    gdn_model_tape_destroy(tape);
    GDN_TEST_OK(gdn_tensor_read(loss, &l, 0, sizeof(l)));
    GDN_TEST_OK(gdn_model_optimizer_step(m, ap, rep));
    gdn_tensor_destroy(loss);
    return l;
}

START_TEST(test_model_train_ckpt)
{
    const char      *preset = stacks[_i];
    gdn_model       *m = make_model(preset, 21), *m2 = NULL;
    gdn_model_config cfg;
    gdn_adamw_params ap;
    gdn_step_report  rep;
    struct gdn_rng   r;
    enum { B = 2, TT = 33, K1 = 3, K2 = 3 };
    int32_t          ids[B * (TT + 1)], in[B * TT], tg[B * TT];
    gdn_tensor      *tid, *ttg, *lg;
    float            la[K2], lb[K2], *l1, *l2;
    char             path[256], buf[64];
    gdn_model_get_config(m, &cfg);
    gdn_rng_seed(&r, 31);
    random_ids(&r, ids, B * (TT + 1), cfg.vocab);
    for (int b = 0; b < B; b++)
        for (int t = 0; t < TT; t++) {
            in[b * TT + t] = ids[b * (TT + 1) + t];
            tg[b * TT + t] = ids[b * (TT + 1) + t + 1];
        }
    tid = ids_tensor(2, (const int64_t[]){B, TT}, in);
    ttg = ids_tensor(2, (const int64_t[]){B, TT}, tg);
    lg  = gdn_test_tensor(3, (const int64_t[]){B, TT, cfg.vocab}, NULL);
    gdn_adamw_params_init(&ap);
    ap.lr           = 3e-3f;
    ap.warmup_steps = 2;
    ap.total_steps  = K1 + K2;
    /* the loss goes down on a fixed batch; the reported norm is the
     * gradient's */
    {
        float  l0 = train_step(m, tid, ttg, lg, &ap, &rep);
        double g2 = 0;
        ck_assert(rep.step == 1 && !rep.skipped && rep.grad_norm > 0);
        for (int32_t p = 0; p < gdn_model_param_tensors(m); p++) {
            const char *name;
            int64_t     n;
            float      *g;
            gdn_model_param_info(m, p, &name, &n);
            g = malloc((size_t)n * sizeof(float));
            GDN_TEST_OK(gdn_model_param_read(m, name, 1, g, (size_t)n));
            for (int64_t i = 0; i < n; i++)
                g2 += (double)g[i] * g[i];
            free(g);
        }
        ck_assert_msg(fabs(sqrt(g2) - rep.grad_norm) <= 1e-4 * rep.grad_norm,
                      "grad norm %g vs %g", rep.grad_norm, sqrt(g2));
        for (int k = 1; k < K1; k++)
            (void)train_step(m, tid, ttg, lg, &ap, &rep);
        ck_assert_msg(train_step(m, tid, ttg, lg, &ap, &rep) < l0, "%s: loss did not decrease",
                      preset);
        ck_assert_int_eq(rep.step, K1 + 1);
    }
    snprintf(path, sizeof(path), "%s/gdn-test-model-%d-%d.safetensors",
             getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp", (int)getpid(), _i);
    {
        const char *meta[] = {"train.note", "hello"};
        GDN_TEST_OK(gdn_model_save(m, path, GDN_MODEL_SAVE_OPTIMIZER, meta, 1));
        GDN_TEST_OK(gdn_checkpoint_meta(path, "train.note", buf, sizeof(buf)));
        ck_assert_str_eq(buf, "hello");
    }
    /* load -> identical logits; continue both -> identical losses */
    GDN_TEST_OK(gdn_model_load(gdn_test_ctx, path, &m2));
    {
        const int32_t off[] = {0, TT, 2 * TT};
        gdn_tensor   *t1    = ids_tensor(1, (const int64_t[]){B * TT}, in);
        l1                  = forward_logits(m, t1, off, B, B * TT, cfg.vocab);
        l2                  = forward_logits(m2, t1, off, B, B * TT, cfg.vocab);
        gdn_tensor_destroy(t1);
    }
    ck_assert_msg(!memcmp(l1, l2, (size_t)B * TT * (size_t)cfg.vocab * sizeof(float)),
                  "%s: logits of the loaded model differ", preset);
    free(l1);
    free(l2);
    for (int k = 0; k < K2; k++) {
        la[k] = train_step(m, tid, ttg, lg, &ap, &rep);
        lb[k] = train_step(m2, tid, ttg, lg, &ap, &rep);
        ck_assert_msg(!memcmp(&la[k], &lb[k], sizeof(float)),
                      "%s: resumed step %d loss %.9g vs %.9g", preset, k, la[k], lb[k]);
    }
    gdn_model_destroy(m2);
    m2 = NULL;
    unlink(path);
    gdn_tensor_destroy(tid);
    gdn_tensor_destroy(ttg);
    gdn_tensor_destroy(lg);
    gdn_model_destroy(m);
}
END_TEST

/* Write `n` bytes of `data` to path. */
static void write_file(const char *path, const void *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(data, 1, n, f), n);
    fclose(f);
}

static unsigned char *read_file(const char *path, size_t *n)
{
    FILE          *f = fopen(path, "rb");
    unsigned char *b;
    ck_assert_ptr_nonnull(f);
    fseek(f, 0, SEEK_END);
    *n = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    b = malloc(*n);
    ck_assert_uint_eq(fread(b, 1, *n, f), *n);
    fclose(f);
    return b;
}

START_TEST(test_model_bad_files)
{
    gdn_context     *ctx = gdn_test_ctx;
    gdn_model       *m = make_model("tiny-h1", 3), *other = make_model("tiny-gdn", 3), *x = NULL;
    gdn_model_config cfg;
    char             path[256], bad[300];
    unsigned char   *b;
    size_t           n;
    int32_t          ids[20];
    gdn_tensor      *tid;
    float           *before, *after;
    gdn_status       st;
    gdn_model_get_config(m, &cfg);
    for (int i = 0; i < 20; i++)
        ids[i] = (i * 5) % cfg.vocab;
    tid = ids_tensor(1, (const int64_t[]){20}, ids);
    snprintf(path, sizeof(path), "%s/gdn-test-bad-%d.safetensors",
             getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp", (int)getpid());
    snprintf(bad, sizeof(bad), "%s.bad", path);
    GDN_TEST_OK(gdn_model_save(m, path, 0, NULL, 0));
    b = read_file(path, &n);
    before = forward_logits(m, tid, NULL, 1, 20, cfg.vocab);

    /* missing file */
    ck_assert_int_eq(gdn_model_load(ctx, "/nonexistent/x.safetensors", &x), GDN_STATUS_IO);
    ck_assert_ptr_null(x);
    /* truncated: in the data, then in the header */
    write_file(bad, b, n - 100);
    st = gdn_model_load(ctx, bad, &x);
    ck_assert_msg(st == GDN_STATUS_IO && x == NULL, "truncated data: %s", gdn_status_name(st));
    ck_assert_ptr_nonnull(strstr(gdn_context_last_error(ctx), "truncated"));
    write_file(bad, b, 20);
    ck_assert_int_ne(gdn_model_load(ctx, bad, &x), GDN_STATUS_OK);
    ck_assert_ptr_null(x);
    /* corrupt header byte */
    {
        unsigned char *c = malloc(n);
        memcpy(c, b, n);
        c[9] = '!';
        write_file(bad, c, n);
        ck_assert_int_eq(gdn_model_load(ctx, bad, &x), GDN_STATUS_INVALID_ARGUMENT);
        ck_assert_ptr_null(x);
        /* a non-finite weight: the first data float set to NaN */
        memcpy(c, b, n);
        {
            uint64_t hl = 0;
            for (int i = 7; i >= 0; i--)
                hl = hl << 8 | c[i];
            memset(c + 8 + hl, 0xff, 4);
        }
        write_file(bad, c, n);
        ck_assert_int_eq(gdn_model_load(ctx, bad, &x), GDN_STATUS_INVALID_ARGUMENT);
        ck_assert_ptr_nonnull(strstr(gdn_context_last_error(ctx), "non-finite"));
        ck_assert_int_eq(gdn_model_load_weights(m, bad), GDN_STATUS_INVALID_ARGUMENT);
        free(c);
    }
    /* wrong shapes: another model's weights; nothing changes */
    {
        char p2[300];
        snprintf(p2, sizeof(p2), "%s.other", path);
        GDN_TEST_OK(gdn_model_save(other, p2, 0, NULL, 0));
        st = gdn_model_load_weights(m, p2);
        ck_assert_msg(st == GDN_STATUS_SHAPE_MISMATCH || st == GDN_STATUS_INVALID_ARGUMENT,
                      "wrong model: %s", gdn_status_name(st));
        unlink(p2);
    }
    after = forward_logits(m, tid, NULL, 1, 20, cfg.vocab);
    ck_assert_msg(!memcmp(before, after, 20 * (size_t)cfg.vocab * sizeof(float)),
                  "a failed load changed the model");
    /* a good file into the same config works; reserved metadata keys refused */
    GDN_TEST_OK(gdn_model_load_weights(m, path));
    {
        const char *meta[] = {"gdn.config", "x"};
        ck_assert_int_eq(gdn_model_save(m, bad, 0, meta, 1), GDN_STATUS_INVALID_ARGUMENT);
    }
    ck_assert_int_eq(gdn_model_save(m, "/nonexistent-dir/x.safetensors", 0, NULL, 0),
                     GDN_STATUS_IO);
    free(before);
    free(after);
    free(b);
    unlink(bad);
    unlink(path);
    gdn_tensor_destroy(tid);
    gdn_model_destroy(m);
    gdn_model_destroy(other);
}
END_TEST


/* ---- fla config.json ---------------------------------------------------- */

START_TEST(test_model_fla_config)
{
    gdn_model_config c;
    char             path[256];
    snprintf(path, sizeof(path), "%s/gdn-test-fla-%d.json",
             getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp", (int)getpid());
    {
        const char *js = "{\"model_type\": \"gated_deltanet\", \"hidden_size\": 256, "
                         "\"num_hidden_layers\": 4, \"num_heads\": 2, \"head_dim\": 64, "
                         "\"expand_v\": 2, \"num_v_heads\": 4, \"vocab_size\": 1000, "
                         "\"norm_eps\": 1e-06, \"hidden_ratio\": 4, \"intermediate_size\": null, "
                         "\"tie_word_embeddings\": true, \"use_gate\": true, "
                         "\"attn\": {\"layers\": [1, 3], \"num_heads\": 4, \"num_kv_heads\": 2, "
                         "\"window_size\": 512, \"rope_theta\": 10000.0, \"qkv_bias\": false}}";
        write_file(path, js, strlen(js));
    }
    GDN_TEST_OK(gdn_model_config_from_fla(path, &c));
    ck_assert_str_eq(c.layers, "gsgs");
    ck_assert_int_eq(c.d_model, 256);
    ck_assert_int_eq(c.vocab, 1000);
    ck_assert_int_eq(c.gdn_heads, 2);
    ck_assert_int_eq(c.gdn_v_heads, 4);
    ck_assert_int_eq(c.gdn_head_k, 64);
    ck_assert_int_eq(c.gdn_head_v, 128);
    ck_assert_int_eq(c.mlp_hidden, 768); /* 256 ceil(int(256 * 4 * 2 / 3) / 256) */
    ck_assert_int_eq(c.tie_embeddings, 1);
    ck_assert_int_eq(c.swa_heads, 4);
    ck_assert_int_eq(c.swa_kv_heads, 2);
    ck_assert_int_eq(c.swa_head_dim, 64);
    ck_assert_int_eq(c.swa_window, 512);
    {
        gdn_model *m = NULL;
        GDN_TEST_OK(gdn_model_create(gdn_test_ctx, &c, 1, &m));
        gdn_model_destroy(m);
    }
    write_file(path, "{\"hidden_size\": \"big\"}", 22);
    ck_assert_int_eq(gdn_model_config_from_fla(path, &c), GDN_STATUS_INVALID_ARGUMENT);
    write_file(path, "{\"use_short_conv\": false}", 25);
    ck_assert_int_eq(gdn_model_config_from_fla(path, &c), GDN_STATUS_UNSUPPORTED);
    write_file(path, "[1, 2", 5);
    ck_assert_int_eq(gdn_model_config_from_fla(path, &c), GDN_STATUS_INVALID_ARGUMENT);
    unlink(path);
    ck_assert_int_eq(gdn_model_config_from_fla(path, &c), GDN_STATUS_IO);
    ck_assert_int_eq(gdn_model_config_from_fla(NULL, &c), GDN_STATUS_INVALID_ARGUMENT);
}
END_TEST

/* ---- argument checks ---------------------------------------------------- */

START_TEST(test_model_checks)
{
    gdn_context     *ctx = gdn_test_ctx;
    gdn_model_config cfg;
    gdn_model       *m = NULL;
    ck_assert_int_eq(gdn_model_config_preset("no-such-model", &cfg), GDN_STATUS_INVALID_ARGUMENT);
    ck_assert_int_eq(gdn_model_config_preset("tiny-h1", NULL), GDN_STATUS_INVALID_ARGUMENT);
    gdn_model_config_preset("tiny-h1", &cfg);
    strcpy(cfg.layers, "gxs");
    ck_assert_int_eq(gdn_model_create(ctx, &cfg, 1, &m), GDN_STATUS_INVALID_ARGUMENT);
    ck_assert_ptr_null(m);
    ck_assert_ptr_nonnull(strstr(gdn_context_last_error(ctx), "layers[1]"));
    gdn_model_config_preset("tiny-h1", &cfg);
    cfg.gdn_head_k = 24;
    ck_assert_int_eq(gdn_model_create(ctx, &cfg, 1, &m), GDN_STATUS_UNSUPPORTED);
    ck_assert_ptr_nonnull(strstr(gdn_context_last_error(ctx), "gdn_head_k"));
    gdn_model_config_preset("tiny-h1", &cfg);
    cfg.gdn_v_heads = 3;
    ck_assert_int_eq(gdn_model_create(ctx, &cfg, 1, &m), GDN_STATUS_INVALID_ARGUMENT);
    gdn_model_config_preset("tiny-h1", &cfg);
    cfg.reserved[3] = 1;
    ck_assert_int_eq(gdn_model_create(ctx, &cfg, 1, &m), GDN_STATUS_INVALID_ARGUMENT);
    ck_assert_int_eq(gdn_model_create(ctx, NULL, 1, &m), GDN_STATUS_INVALID_ARGUMENT);
    gdn_model_config_preset("tiny-h1", &cfg);
    GDN_TEST_OK(gdn_model_create(ctx, &cfg, 1, &m));
    {
        int32_t         ids[4] = {1, 2, 3, 4};
        gdn_tensor     *tid    = ids_tensor(1, (const int64_t[]){4}, ids);
        gdn_tensor     *bad    = gdn_test_tensor(2, (const int64_t[]){4, cfg.vocab + 1}, NULL);
        gdn_model_batch b;
        const int32_t   off[] = {0, 3, 2};
        memset(&b, 0, sizeof(b));
        b.ids = tid;
        ck_assert_int_eq(gdn_model_forward(m, &b, bad, NULL), GDN_STATUS_SHAPE_MISMATCH);
        ck_assert_ptr_nonnull(strstr(gdn_context_last_error(ctx), "vocab"));
        b.seq_offsets = off;
        b.n_seqs      = 2;
        ck_assert_int_eq(gdn_model_forward(m, &b, bad, NULL), GDN_STATUS_INVALID_ARGUMENT);
        ck_assert_int_eq(gdn_model_forward(m, NULL, bad, NULL), GDN_STATUS_INVALID_ARGUMENT);
        ck_assert_int_eq(gdn_model_backward(m, NULL, bad), GDN_STATUS_INVALID_ARGUMENT);
        ck_assert_int_eq(gdn_model_state_create(m, 0, &(gdn_model_state *){NULL}),
                         GDN_STATUS_INVALID_ARGUMENT);
        ck_assert_int_eq(gdn_model_param_read(m, "nope", 0, NULL, 0), GDN_STATUS_INVALID_ARGUMENT);
        ck_assert_ptr_nonnull(strstr(gdn_context_last_error(ctx), "nope"));
        gdn_tensor_destroy(tid);
        gdn_tensor_destroy(bad);
    }
    gdn_model_destroy(m);
    gdn_model_destroy(NULL);
    gdn_model_tape_destroy(NULL);
    gdn_model_state_destroy(NULL);
}
END_TEST

int main(void)
{
    Suite *s  = suite_create("model");
    TCase *tc = tcase_create("model");
    gdn_test_add_ctx_fixture(tc, 900);
    tcase_add_test(tc, test_model_checks);
    tcase_add_test(tc, test_model_slice);
    tcase_add_loop_test(tc, test_model_varlen, 0, 4);
    tcase_add_loop_test(tc, test_model_decode, 0, 4);
    tcase_add_loop_test(tc, test_model_grad, 0, 4);
    tcase_add_loop_test(tc, test_model_train_ckpt, 0, 3);
    tcase_add_test(tc, test_model_bad_files);
    tcase_add_test(tc, test_model_fla_config);
    suite_add_tcase(s, tc);
    return gdn_test_run(s, 1);
}
