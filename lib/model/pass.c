/*
 * pass.c - the model's passes, composed from the public ops: training
 * forward (with a tape) and backward of every block and mixer, and the
 * same mixers in prefill and decode mode (inference state from infer.c).
 *
 * Activations are packed [T, ...] with the batch's sequence offsets; every
 * tensor of a pass lives in an arena freed with the tape (training) or at
 * the end of each layer (inference). Parameter gradients are accumulated:
 * linear and embedding gradients by the ops' ACCUMULATE_DW flag, the rest
 * (norms, convs, A_log, dt_bias, D) through a temporary and an add.
 */
#include "model.h"

#include <string.h>

#define TRY(expr)                                                                                  \
    do {                                                                                           \
        if ((st = (expr)))                                                                         \
            return st;                                                                             \
    } while (0)

/* ---------------------------------------------------------------- helpers */

static gdn_status new2(struct gdn__arena *a, int64_t r, int64_t c, gdn_tensor **out)
{
    return gdn__arena_new(a, 2, (const int64_t[]){r, c}, GDN_DTYPE_F32, out);
}

static gdn_status new3(struct gdn__arena *a, int64_t r, int64_t h, int64_t c, gdn_tensor **out)
{
    return gdn__arena_new(a, 3, (const int64_t[]){r, h, c}, GDN_DTYPE_F32, out);
}

static gdn_status view2(struct gdn__arena *a, const gdn_tensor *t, int64_t r, int64_t c,
                        gdn_tensor **out)
{
    return gdn__arena_view(a, t, 2, (const int64_t[]){r, c}, out);
}

static gdn_status view3(struct gdn__arena *a, const gdn_tensor *t, int64_t r, int64_t h,
                        int64_t c, gdn_tensor **out)
{
    return gdn__arena_view(a, t, 3, (const int64_t[]){r, h, c}, out);
}

static gdn_tensor *W(gdn_model *m, const struct gdn__layer *ly, int i)
{
    return m->params[ly->p[i]].w;
}

static gdn_tensor *G(gdn_model *m, const struct gdn__layer *ly, int i)
{
    return m->params[ly->p[i]].g;
}

/* grad += tmp, where tmp is a fresh tensor shaped like the gradient. */
static gdn_status tmp_grad(struct gdn__arena *a, const gdn_tensor *g, gdn_tensor **out)
{
    return gdn__arena_new(a, g->ndim, g->shape, GDN_DTYPE_F32, out);
}

static gdn_status add_grad(gdn_context *ctx, gdn_tensor *g, const gdn_tensor *tmp)
{
    return gdn_residual_add(ctx, g, tmp, g);
}

static gdn_status linear(gdn_context *ctx, const gdn_tensor *x, const gdn_tensor *w, gdn_tensor *y,
                         uint32_t flags)
{
    gdn_linear_params p;
    gdn_linear_args   a;
    gdn_linear_params_init(&p);
    p.flags = flags;
    memset(&a, 0, sizeof(a));
    a.x = x;
    a.w = w;
    return gdn_linear_forward(ctx, &p, &a, y);
}

/* dx (=, or += with acc) dy W; dW += dy^T x. */
static gdn_status linear_bwd(gdn_context *ctx, const gdn_tensor *x, const gdn_tensor *w,
                             gdn_tensor *gw, const gdn_tensor *dy, gdn_tensor *dx, bool acc)
{
    gdn_linear_params p;
    gdn_linear_args   a;
    gdn_linear_grads  g;
    gdn_linear_params_init(&p);
    p.flags = GDN_LINEAR_ACCUMULATE_DW | (acc ? GDN_LINEAR_ACCUMULATE_DX : 0);
    memset(&a, 0, sizeof(a));
    memset(&g, 0, sizeof(g));
    a.x  = x;
    a.w  = w;
    g.dx = dx;
    g.dw = gw;
    return gdn_linear_backward(ctx, &p, &a, dy, &g);
}

static gdn_status rmsnorm(gdn_context *ctx, gdn_norm_type type, float eps, int32_t group,
                          const gdn_tensor *x, const gdn_tensor *w, const gdn_tensor *gate,
                          gdn_tensor *y)
{
    gdn_norm_params p;
    gdn_norm_args   a;
    gdn_norm_params_init(&p);
    p.type       = type;
    p.eps        = eps;
    p.group_size = group;
    memset(&a, 0, sizeof(a));
    a.x      = x;
    a.weight = w;
    a.gate   = gate;
    return gdn_norm_forward(ctx, &p, &a, y);
}

/* Norm backward: dx written (may be dy), the weight gradient added to gw,
 * the gate gradient written to dgate (gated types). */
static gdn_status rmsnorm_bwd(gdn_context *ctx, struct gdn__arena *ar, gdn_norm_type type,
                              float eps, int32_t group, const gdn_tensor *x, const gdn_tensor *w,
                              gdn_tensor *gw, const gdn_tensor *gate, const gdn_tensor *dy,
                              gdn_tensor *dx, gdn_tensor *dgate)
{
    gdn_norm_params p;
    gdn_norm_args   a;
    gdn_norm_grads  g;
    gdn_tensor     *tw;
    gdn_status      st;
    gdn_norm_params_init(&p);
    p.type       = type;
    p.eps        = eps;
    p.group_size = group;
    memset(&a, 0, sizeof(a));
    memset(&g, 0, sizeof(g));
    a.x      = x;
    a.weight = w;
    a.gate   = gate;
    TRY(tmp_grad(ar, gw, &tw));
    g.dx      = dx;
    g.dweight = tw;
    g.dgate   = dgate;
    TRY(gdn_norm_backward(ctx, &p, &a, dy, &g));
    return add_grad(ctx, gw, tw);
}

static void conv_args(gdn_conv_args *a, const gdn_tensor *x, const gdn_tensor *w,
                      const gdn_tensor *b, const struct gdn__seqs *s)
{
    memset(a, 0, sizeof(*a));
    a->x           = x;
    a->weight      = w;
    a->bias        = b;
    a->seq_offsets = s ? s->off : NULL;
    a->n_seqs      = s ? s->n : 0;
}

/* The causal conv + SiLU of one mixer input in any mode. */
static gdn_status conv_fwd(gdn_context *ctx, enum gdn__mode mode, const struct gdn__seqs *s,
                           const gdn_tensor *x, const gdn_tensor *w, const gdn_tensor *b,
                           gdn_tensor *state, gdn_tensor *y)
{
    gdn_conv_params p;
    gdn_conv_args   a;
    gdn_conv_params_init(&p);
    p.flags = GDN_CONV_SILU;
    if (mode == GDN__DECODE) {
        conv_args(&a, x, w, b, NULL);
        return gdn_conv_step(ctx, &p, &a, state, y);
    }
    conv_args(&a, x, w, b, s);
    return gdn_conv_forward(ctx, &p, &a, y, mode == GDN__PREFILL ? state : NULL);
}

/* Conv backward: dx written, weight (and bias) gradients added. */
static gdn_status conv_bwd(gdn_context *ctx, struct gdn__arena *ar, const struct gdn__seqs *s,
                           const gdn_tensor *x, const gdn_tensor *w, gdn_tensor *gw,
                           const gdn_tensor *b, gdn_tensor *gb, const gdn_tensor *dy,
                           gdn_tensor *dx)
{
    gdn_conv_params p;
    gdn_conv_args   a;
    gdn_conv_grads  g;
    gdn_tensor     *tw, *tb = NULL;
    gdn_status      st;
    gdn_conv_params_init(&p);
    p.flags = GDN_CONV_SILU;
    conv_args(&a, x, w, b, s);
    memset(&g, 0, sizeof(g));
    TRY(tmp_grad(ar, gw, &tw));
    if (gb)
        TRY(tmp_grad(ar, gb, &tb));
    g.dx      = dx;
    g.dweight = tw;
    g.dbias   = tb;
    TRY(gdn_conv_backward(ctx, &p, &a, dy, NULL, &g));
    TRY(add_grad(ctx, gw, tw));
    return gb ? add_grad(ctx, gb, tb) : GDN_STATUS_OK;
}

/* ------------------------------------------------------- Gated DeltaNet */

/* Value heads wider than the op's 256 are run as `split` narrower heads of
 * V / split columns each: the columns of a gated delta state evolve
 * independently given q, k, g and beta, so value head hv becomes heads
 * hv * split + j (which read the same q/k head under the op's GVA rule),
 * with g, beta, A_log and dt_bias repeated and their gradients summed. */
int32_t gdn__gd_split(int64_t V)
{
    int32_t s = (int32_t)((V + 255) / 256);
    while (V % (16 * s))
        s++;
    return s;
}

/* dst[r * split + j] = src[r] for every j (rows of one column). */
static gdn_status repeat_cols(gdn_context *ctx, const gdn_tensor *src, gdn_tensor *dst,
                              int64_t rows, int32_t split)
{
    gdn_status st;
    for (int32_t j = 0; j < split; j++)
        TRY(gdn__slice_cols(ctx, src, 1, 0, dst, split, j, rows, 1, false));
    return GDN_STATUS_OK;
}

/* dst[r] = sum_j src[r * split + j], in order j = 0, 1, ... */
static gdn_status sum_cols(gdn_context *ctx, const gdn_tensor *src, gdn_tensor *dst,
                           int64_t rows, int32_t split)
{
    gdn_status st;
    for (int32_t j = 0; j < split; j++)
        TRY(gdn__slice_cols(ctx, src, split, j, dst, 1, 0, rows, 1, j > 0));
    return GDN_STATUS_OK;
}

enum { GT_QP, GT_KP, GT_VP, GT_A, GT_B, GT_GP, GT_Q, GT_K, GT_V, GT_O, GT_ON, GT_N };

static void gd_params(const gdn_model *m, gdn_gated_delta_params *p)
{
    gdn_gated_delta_params_init(p);
    p->flags = GDN_GATED_DELTA_QK_L2NORM | GDN_GATED_DELTA_GATE_IN_OP |
               GDN_GATED_DELTA_BETA_SIGMOID |
               (m->cfg.gdn_neg_eigval ? GDN_GATED_DELTA_NEG_EIGVAL : 0u);
}

static gdn_status gdn_mixer_fwd(gdn_model *m, const struct gdn__layer *ly, enum gdn__mode mode,
                                const struct gdn__seqs *s, const gdn_tensor *h, gdn_tensor *xacc,
                                struct gdn__arena *ar, struct gdn__layer_tape *lt,
                                struct gdn__layer_state *ls)
{
    gdn_context           *ctx = m->ctx;
    struct gdn__dims       d;
    int64_t                T = s->T;
    gdn_tensor            *t[GT_N], *q3, *k3, *v3, *o3, *gp3, *on3, *on;
    gdn_gated_delta_params gp;
    gdn_gated_delta_args   ga;
    gdn_status             st;
    gdn__model_dims(&m->cfg, &d);
    int64_t qk = d.gH * d.gK, vv = d.gHV * d.gV;
    int32_t split = gdn__gd_split(d.gV);
    int64_t HVs = d.gHV * split, Vs = d.gV / split;
    TRY(new2(ar, T, qk, &t[GT_QP]));
    TRY(new2(ar, T, qk, &t[GT_KP]));
    TRY(new2(ar, T, vv, &t[GT_VP]));
    TRY(new2(ar, T, d.gHV, &t[GT_A]));
    TRY(new2(ar, T, d.gHV, &t[GT_B]));
    TRY(new2(ar, T, vv, &t[GT_GP]));
    TRY(new2(ar, T, qk, &t[GT_Q]));
    TRY(new2(ar, T, qk, &t[GT_K]));
    TRY(new2(ar, T, vv, &t[GT_V]));
    TRY(new3(ar, T, d.gHV, d.gV, &t[GT_O]));
    TRY(new3(ar, T, d.gHV, d.gV, &t[GT_ON]));
    TRY(linear(ctx, h, W(m, ly, G_Q), t[GT_QP], 0));
    TRY(linear(ctx, h, W(m, ly, G_K), t[GT_KP], 0));
    TRY(linear(ctx, h, W(m, ly, G_V), t[GT_VP], 0));
    TRY(linear(ctx, h, W(m, ly, G_A), t[GT_A], 0));
    TRY(linear(ctx, h, W(m, ly, G_B), t[GT_B], 0));
    TRY(linear(ctx, h, W(m, ly, G_G), t[GT_GP], 0));
    TRY(conv_fwd(ctx, mode, s, t[GT_QP], W(m, ly, G_QC), NULL, ls ? ls->conv[0] : NULL, t[GT_Q]));
    TRY(conv_fwd(ctx, mode, s, t[GT_KP], W(m, ly, G_KC), NULL, ls ? ls->conv[1] : NULL, t[GT_K]));
    TRY(conv_fwd(ctx, mode, s, t[GT_VP], W(m, ly, G_VC), NULL, ls ? ls->conv[2] : NULL, t[GT_V]));
    TRY(view3(ar, t[GT_Q], T, d.gH, d.gK, &q3));
    TRY(view3(ar, t[GT_K], T, d.gH, d.gK, &k3));
    TRY(view3(ar, t[GT_V], T, HVs, Vs, &v3));
    TRY(view3(ar, t[GT_O], T, HVs, Vs, &o3));
    gd_params(m, &gp);
    memset(&ga, 0, sizeof(ga));
    ga.q       = q3;
    ga.k       = k3;
    ga.v       = v3;
    ga.g       = t[GT_A];
    ga.beta    = t[GT_B];
    ga.A_log   = W(m, ly, G_ALOG);
    ga.dt_bias = W(m, ly, G_DTB);
    if (split > 1) {
        gdn_tensor *a2, *b2, *al2, *dtb2;
        TRY(new2(ar, T, HVs, &a2));
        TRY(new2(ar, T, HVs, &b2));
        TRY(gdn__arena_new(ar, 1, (const int64_t[]){HVs}, GDN_DTYPE_F32, &al2));
        TRY(gdn__arena_new(ar, 1, (const int64_t[]){HVs}, GDN_DTYPE_F32, &dtb2));
        TRY(repeat_cols(ctx, t[GT_A], a2, T * d.gHV, split));
        TRY(repeat_cols(ctx, t[GT_B], b2, T * d.gHV, split));
        TRY(repeat_cols(ctx, W(m, ly, G_ALOG), al2, d.gHV, split));
        TRY(repeat_cols(ctx, W(m, ly, G_DTB), dtb2, d.gHV, split));
        ga.g       = a2;
        ga.beta    = b2;
        ga.A_log   = al2;
        ga.dt_bias = dtb2;
    }
    if (mode == GDN__DECODE) {
        TRY(gdn_gated_delta_step(ctx, &gp, &ga, ls->S, o3));
    } else {
        ga.seq_offsets = s->off;
        ga.n_seqs      = s->n;
        TRY(gdn_gated_delta_forward(ctx, &gp, &ga, o3, mode == GDN__PREFILL ? ls->S : NULL,
                                    lt ? &lt->gd : NULL));
    }
    TRY(view3(ar, t[GT_GP], T, d.gHV, d.gV, &gp3));
    on3 = t[GT_ON];
    TRY(rmsnorm(ctx, GDN_NORM_RMS_GATED, m->cfg.gdn_norm_eps, 0, t[GT_O], W(m, ly, G_ONORM), gp3,
                on3));
    TRY(view2(ar, on3, T, vv, &on));
    TRY(linear(ctx, on, W(m, ly, G_O), xacc, GDN_LINEAR_ACCUMULATE_Y));
    if (lt) {
        memcpy(lt->t, t, sizeof(t));
        lt->t[GT_N] = gp3;
        lt->t[GT_N + 1] = on;
    }
    return GDN_STATUS_OK;
}

static gdn_status gdn_mixer_bwd(gdn_model *m, const struct gdn__layer *ly,
                                const struct gdn__seqs *s, const gdn_tensor *h,
                                const gdn_tensor *dy, gdn_tensor *dh, struct gdn__arena *ar,
                                struct gdn__layer_tape *lt)
{
    gdn_context           *ctx = m->ctx;
    struct gdn__dims       d;
    int64_t                T = s->T;
    gdn_tensor           **t = lt->t, *don, *don3, *do3, *dgp, *dq, *dk, *dv, *da, *db, *dal, *ddt;
    gdn_tensor            *dq2, *dk2, *dv2, *dqp, *dkp, *dvp;
    gdn_gated_delta_grads  gg;
    gdn_status             st;
    gdn__model_dims(&m->cfg, &d);
    int64_t qk = d.gH * d.gK, vv = d.gHV * d.gV;
    int32_t split = gdn__gd_split(d.gV);
    int64_t HVs = d.gHV * split, Vs = d.gV / split;
    gdn_tensor *do3s, *da2 = NULL, *db2 = NULL, *dal2 = NULL, *ddt2 = NULL;
    TRY(new2(ar, T, vv, &don));
    TRY(linear_bwd(ctx, t[GT_N + 1], W(m, ly, G_O), G(m, ly, G_O), dy, don, false));
    TRY(view3(ar, don, T, d.gHV, d.gV, &don3));
    TRY(new3(ar, T, d.gHV, d.gV, &do3));
    TRY(new3(ar, T, d.gHV, d.gV, &dgp));
    TRY(rmsnorm_bwd(ctx, ar, GDN_NORM_RMS_GATED, m->cfg.gdn_norm_eps, 0, t[GT_O], W(m, ly, G_ONORM),
                    G(m, ly, G_ONORM), t[GT_N], don3, do3, dgp));
    TRY(new3(ar, T, d.gH, d.gK, &dq));
    TRY(new3(ar, T, d.gH, d.gK, &dk));
    TRY(new3(ar, T, HVs, Vs, &dv));
    TRY(new2(ar, T, d.gHV, &da));
    TRY(new2(ar, T, d.gHV, &db));
    TRY(tmp_grad(ar, G(m, ly, G_ALOG), &dal));
    TRY(tmp_grad(ar, G(m, ly, G_DTB), &ddt));
    TRY(view3(ar, do3, T, HVs, Vs, &do3s));
    memset(&gg, 0, sizeof(gg));
    gg.dq       = dq;
    gg.dk       = dk;
    gg.dv       = dv;
    gg.dg       = da;
    gg.dbeta    = db;
    gg.dA_log   = dal;
    gg.ddt_bias = ddt;
    if (split > 1) {
        TRY(new2(ar, T, HVs, &da2));
        TRY(new2(ar, T, HVs, &db2));
        TRY(gdn__arena_new(ar, 1, (const int64_t[]){HVs}, GDN_DTYPE_F32, &dal2));
        TRY(gdn__arena_new(ar, 1, (const int64_t[]){HVs}, GDN_DTYPE_F32, &ddt2));
        gg.dg       = da2;
        gg.dbeta    = db2;
        gg.dA_log   = dal2;
        gg.ddt_bias = ddt2;
    }
    TRY(gdn_gated_delta_backward(ctx, lt->gd, do3s, NULL, &gg));
    if (split > 1) {
        TRY(sum_cols(ctx, da2, da, T * d.gHV, split));
        TRY(sum_cols(ctx, db2, db, T * d.gHV, split));
        TRY(sum_cols(ctx, dal2, dal, d.gHV, split));
        TRY(sum_cols(ctx, ddt2, ddt, d.gHV, split));
    }
    TRY(add_grad(ctx, G(m, ly, G_ALOG), dal));
    TRY(add_grad(ctx, G(m, ly, G_DTB), ddt));
    TRY(view2(ar, dq, T, qk, &dq2));
    TRY(view2(ar, dk, T, qk, &dk2));
    TRY(view2(ar, dv, T, vv, &dv2));
    TRY(new2(ar, T, qk, &dqp));
    TRY(new2(ar, T, qk, &dkp));
    TRY(new2(ar, T, vv, &dvp));
    TRY(conv_bwd(ctx, ar, s, t[GT_QP], W(m, ly, G_QC), G(m, ly, G_QC), NULL, NULL, dq2, dqp));
    TRY(conv_bwd(ctx, ar, s, t[GT_KP], W(m, ly, G_KC), G(m, ly, G_KC), NULL, NULL, dk2, dkp));
    TRY(conv_bwd(ctx, ar, s, t[GT_VP], W(m, ly, G_VC), G(m, ly, G_VC), NULL, NULL, dv2, dvp));
    TRY(linear_bwd(ctx, h, W(m, ly, G_Q), G(m, ly, G_Q), dqp, dh, false));
    TRY(linear_bwd(ctx, h, W(m, ly, G_K), G(m, ly, G_K), dkp, dh, true));
    TRY(linear_bwd(ctx, h, W(m, ly, G_V), G(m, ly, G_V), dvp, dh, true));
    TRY(linear_bwd(ctx, h, W(m, ly, G_A), G(m, ly, G_A), da, dh, true));
    TRY(linear_bwd(ctx, h, W(m, ly, G_B), G(m, ly, G_B), db, dh, true));
    {
        gdn_tensor *dgp2;
        TRY(view2(ar, dgp, T, vv, &dgp2));
        TRY(linear_bwd(ctx, h, W(m, ly, G_G), G(m, ly, G_G), dgp2, dh, true));
    }
    return GDN_STATUS_OK;
}

/* ------------------------------------------------ sliding-window attention */

enum { ST_Q, ST_K, ST_V, ST_O, ST_O2, ST_N };

static void swa_params(const gdn_model *m, gdn_swa_params *p)
{
    gdn_swa_params_init(p);
    p->window    = m->cfg.swa_window;
    p->rope_base = m->cfg.rope_base;
    p->flags     = GDN_SWA_ROPE;
}

static gdn_status swa_mixer_fwd(gdn_model *m, const struct gdn__layer *ly, enum gdn__mode mode,
                                const struct gdn__seqs *s, const gdn_tensor *h, gdn_tensor *xacc,
                                struct gdn__arena *ar, struct gdn__layer_tape *lt,
                                struct gdn__layer_state *ls)
{
    gdn_context     *ctx = m->ctx;
    struct gdn__dims d;
    int64_t          T = s->T;
    gdn_tensor      *t[ST_N], *q3, *k3, *v3;
    gdn_swa_params   sp;
    gdn_swa_args     sa;
    gdn_status       st;
    gdn__model_dims(&m->cfg, &d);
    TRY(new2(ar, T, d.sH * d.sD, &t[ST_Q]));
    TRY(new2(ar, T, d.sHkv * d.sD, &t[ST_K]));
    TRY(new2(ar, T, d.sHkv * d.sD, &t[ST_V]));
    TRY(new3(ar, T, d.sH, d.sD, &t[ST_O]));
    TRY(linear(ctx, h, W(m, ly, S_Q), t[ST_Q], 0));
    TRY(linear(ctx, h, W(m, ly, S_K), t[ST_K], 0));
    TRY(linear(ctx, h, W(m, ly, S_V), t[ST_V], 0));
    TRY(view3(ar, t[ST_Q], T, d.sH, d.sD, &q3));
    TRY(view3(ar, t[ST_K], T, d.sHkv, d.sD, &k3));
    TRY(view3(ar, t[ST_V], T, d.sHkv, d.sD, &v3));
    swa_params(m, &sp);
    memset(&sa, 0, sizeof(sa));
    sa.q = q3;
    sa.k = k3;
    sa.v = v3;
    if (mode == GDN__DECODE) {
        TRY(gdn_swa_step(ctx, &sp, &sa, &ls->cache, t[ST_O]));
    } else {
        sa.seq_offsets = s->off;
        sa.n_seqs      = s->n;
        if (mode == GDN__PREFILL)
            TRY(gdn_swa_prefill(ctx, &sp, &sa, &ls->cache, t[ST_O], NULL));
        else
            TRY(gdn_swa_forward(ctx, &sp, &sa, t[ST_O], NULL, lt ? &lt->swa : NULL));
    }
    TRY(view2(ar, t[ST_O], T, d.sH * d.sD, &t[ST_O2]));
    TRY(linear(ctx, t[ST_O2], W(m, ly, S_O), xacc, GDN_LINEAR_ACCUMULATE_Y));
    if (lt)
        memcpy(lt->t, t, sizeof(t));
    return GDN_STATUS_OK;
}

static gdn_status swa_mixer_bwd(gdn_model *m, const struct gdn__layer *ly,
                                const struct gdn__seqs *s, const gdn_tensor *h,
                                const gdn_tensor *dy, gdn_tensor *dh, struct gdn__arena *ar,
                                struct gdn__layer_tape *lt)
{
    gdn_context     *ctx = m->ctx;
    struct gdn__dims d;
    int64_t          T = s->T;
    gdn_tensor     **t = lt->t, *do2, *do3, *dq, *dk, *dv, *dq2, *dk2, *dv2;
    gdn_swa_grads    g;
    gdn_status       st;
    gdn__model_dims(&m->cfg, &d);
    TRY(new2(ar, T, d.sH * d.sD, &do2));
    TRY(linear_bwd(ctx, t[ST_O2], W(m, ly, S_O), G(m, ly, S_O), dy, do2, false));
    TRY(view3(ar, do2, T, d.sH, d.sD, &do3));
    TRY(new3(ar, T, d.sH, d.sD, &dq));
    TRY(new3(ar, T, d.sHkv, d.sD, &dk));
    TRY(new3(ar, T, d.sHkv, d.sD, &dv));
    memset(&g, 0, sizeof(g));
    g.dq = dq;
    g.dk = dk;
    g.dv = dv;
    TRY(gdn_swa_backward(ctx, lt->swa, do3, &g));
    TRY(view2(ar, dq, T, d.sH * d.sD, &dq2));
    TRY(view2(ar, dk, T, d.sHkv * d.sD, &dk2));
    TRY(view2(ar, dv, T, d.sHkv * d.sD, &dv2));
    TRY(linear_bwd(ctx, h, W(m, ly, S_Q), G(m, ly, S_Q), dq2, dh, false));
    TRY(linear_bwd(ctx, h, W(m, ly, S_K), G(m, ly, S_K), dk2, dh, true));
    TRY(linear_bwd(ctx, h, W(m, ly, S_V), G(m, ly, S_V), dv2, dh, true));
    return GDN_STATUS_OK;
}

/* ------------------------------------------------------------------ Mamba2 */

enum { MT_ZX, MT_Z, MT_XBC, MT_DT, MT_XBCC, MT_X, MT_B, MT_C, MT_Y, MT_Y2, MT_YN, MT_N };

static gdn_status m2_mixer_fwd(gdn_model *m, const struct gdn__layer *ly, enum gdn__mode mode,
                               const struct gdn__seqs *s, const gdn_tensor *h, gdn_tensor *xacc,
                               struct gdn__arena *ar, struct gdn__layer_tape *lt,
                               struct gdn__layer_state *ls)
{
    gdn_context      *ctx = m->ctx;
    struct gdn__dims  d;
    int64_t           T = s->T, GN;
    gdn_tensor       *t[MT_N];
    gdn_mamba2_params mp;
    gdn_mamba2_args   ma;
    gdn_status        st;
    gdn__model_dims(&m->cfg, &d);
    GN = d.mG * d.mN;
    TRY(new2(ar, T, d.mInOut, &t[MT_ZX]));
    TRY(new2(ar, T, d.mDi, &t[MT_Z]));
    TRY(new2(ar, T, d.mConvC, &t[MT_XBC]));
    TRY(new2(ar, T, d.mH, &t[MT_DT]));
    TRY(new2(ar, T, d.mConvC, &t[MT_XBCC]));
    TRY(new3(ar, T, d.mH, d.mP, &t[MT_X]));
    TRY(new3(ar, T, d.mG, d.mN, &t[MT_B]));
    TRY(new3(ar, T, d.mG, d.mN, &t[MT_C]));
    TRY(new3(ar, T, d.mH, d.mP, &t[MT_Y]));
    TRY(new2(ar, T, d.mDi, &t[MT_YN]));
    TRY(linear(ctx, h, W(m, ly, M_IN), t[MT_ZX], 0));
    TRY(gdn__slice_cols(ctx, t[MT_ZX], d.mInOut, 0, t[MT_Z], d.mDi, 0, T, d.mDi, false));
    TRY(gdn__slice_cols(ctx, t[MT_ZX], d.mInOut, d.mDi, t[MT_XBC], d.mConvC, 0, T, d.mConvC,
                        false));
    TRY(gdn__slice_cols(ctx, t[MT_ZX], d.mInOut, d.mDi + d.mConvC, t[MT_DT], d.mH, 0, T, d.mH,
                        false));
    TRY(conv_fwd(ctx, mode, s, t[MT_XBC], W(m, ly, M_CONVW), W(m, ly, M_CONVB),
                 ls ? ls->conv[0] : NULL, t[MT_XBCC]));
    TRY(gdn__slice_cols(ctx, t[MT_XBCC], d.mConvC, 0, t[MT_X], d.mDi, 0, T, d.mDi, false));
    TRY(gdn__slice_cols(ctx, t[MT_XBCC], d.mConvC, d.mDi, t[MT_B], GN, 0, T, GN, false));
    TRY(gdn__slice_cols(ctx, t[MT_XBCC], d.mConvC, d.mDi + GN, t[MT_C], GN, 0, T, GN, false));
    gdn_mamba2_params_init(&mp);
    memset(&ma, 0, sizeof(ma));
    ma.x       = t[MT_X];
    ma.dt      = t[MT_DT];
    ma.A_log   = W(m, ly, M_ALOG);
    ma.dt_bias = W(m, ly, M_DTB);
    ma.B       = t[MT_B];
    ma.C       = t[MT_C];
    ma.D       = W(m, ly, M_D);
    if (mode == GDN__DECODE) {
        TRY(gdn_mamba2_step(ctx, &mp, &ma, ls->S, t[MT_Y]));
    } else {
        ma.seq_offsets = s->off;
        ma.n_seqs      = s->n;
        TRY(gdn_mamba2_forward(ctx, &mp, &ma, t[MT_Y], mode == GDN__PREFILL ? ls->S : NULL,
                               lt ? &lt->m2 : NULL));
    }
    TRY(view2(ar, t[MT_Y], T, d.mDi, &t[MT_Y2]));
    TRY(rmsnorm(ctx, GDN_NORM_RMS_GATE_FIRST, m->cfg.m2_norm_eps, (int32_t)(d.mDi / d.mG),
                t[MT_Y2], W(m, ly, M_NORM), t[MT_Z], t[MT_YN]));
    TRY(linear(ctx, t[MT_YN], W(m, ly, M_OUT), xacc, GDN_LINEAR_ACCUMULATE_Y));
    if (lt)
        memcpy(lt->t, t, sizeof(t));
    return GDN_STATUS_OK;
}

static gdn_status m2_mixer_bwd(gdn_model *m, const struct gdn__layer *ly,
                               const struct gdn__seqs *s, const gdn_tensor *h,
                               const gdn_tensor *dy, gdn_tensor *dh, struct gdn__arena *ar,
                               struct gdn__layer_tape *lt)
{
    gdn_context      *ctx = m->ctx;
    struct gdn__dims  d;
    int64_t           T = s->T, GN;
    gdn_tensor      **t = lt->t, *dyn, *dy2, *dy3, *dz, *dx, *ddt, *dB, *dC, *dal, *ddtb, *dD;
    gdn_tensor       *dxbcc, *dxbc, *dzx;
    gdn_mamba2_grads  g;
    gdn_status        st;
    gdn__model_dims(&m->cfg, &d);
    GN = d.mG * d.mN;
    TRY(new2(ar, T, d.mDi, &dyn));
    TRY(linear_bwd(ctx, t[MT_YN], W(m, ly, M_OUT), G(m, ly, M_OUT), dy, dyn, false));
    TRY(new2(ar, T, d.mDi, &dy2));
    TRY(new2(ar, T, d.mDi, &dz));
    TRY(rmsnorm_bwd(ctx, ar, GDN_NORM_RMS_GATE_FIRST, m->cfg.m2_norm_eps, (int32_t)(d.mDi / d.mG),
                    t[MT_Y2], W(m, ly, M_NORM), G(m, ly, M_NORM), t[MT_Z], dyn, dy2, dz));
    TRY(view3(ar, dy2, T, d.mH, d.mP, &dy3));
    TRY(new3(ar, T, d.mH, d.mP, &dx));
    TRY(new2(ar, T, d.mH, &ddt));
    TRY(new3(ar, T, d.mG, d.mN, &dB));
    TRY(new3(ar, T, d.mG, d.mN, &dC));
    TRY(tmp_grad(ar, G(m, ly, M_ALOG), &dal));
    TRY(tmp_grad(ar, G(m, ly, M_DTB), &ddtb));
    TRY(tmp_grad(ar, G(m, ly, M_D), &dD));
    memset(&g, 0, sizeof(g));
    g.dx       = dx;
    g.ddt      = ddt;
    g.dA_log   = dal;
    g.ddt_bias = ddtb;
    g.dB       = dB;
    g.dC       = dC;
    g.dD       = dD;
    TRY(gdn_mamba2_backward(ctx, lt->m2, dy3, NULL, &g));
    TRY(add_grad(ctx, G(m, ly, M_ALOG), dal));
    TRY(add_grad(ctx, G(m, ly, M_DTB), ddtb));
    TRY(add_grad(ctx, G(m, ly, M_D), dD));
    TRY(new2(ar, T, d.mConvC, &dxbcc));
    TRY(gdn__slice_cols(ctx, dx, d.mDi, 0, dxbcc, d.mConvC, 0, T, d.mDi, false));
    TRY(gdn__slice_cols(ctx, dB, GN, 0, dxbcc, d.mConvC, d.mDi, T, GN, false));
    TRY(gdn__slice_cols(ctx, dC, GN, 0, dxbcc, d.mConvC, d.mDi + GN, T, GN, false));
    TRY(new2(ar, T, d.mConvC, &dxbc));
    TRY(conv_bwd(ctx, ar, s, t[MT_XBC], W(m, ly, M_CONVW), G(m, ly, M_CONVW), W(m, ly, M_CONVB),
                 G(m, ly, M_CONVB), dxbcc, dxbc));
    TRY(new2(ar, T, d.mInOut, &dzx));
    TRY(gdn__slice_cols(ctx, dz, d.mDi, 0, dzx, d.mInOut, 0, T, d.mDi, false));
    TRY(gdn__slice_cols(ctx, dxbc, d.mConvC, 0, dzx, d.mInOut, d.mDi, T, d.mConvC, false));
    TRY(gdn__slice_cols(ctx, ddt, d.mH, 0, dzx, d.mInOut, d.mDi + d.mConvC, T, d.mH, false));
    return linear_bwd(ctx, h, W(m, ly, M_IN), G(m, ly, M_IN), dzx, dh, false);
}

/* ------------------------------------------------------------------ blocks */

gdn_status gdn__block_forward(gdn_model *m, int32_t li, enum gdn__mode mode,
                              const struct gdn__seqs *s, gdn_tensor *x, gdn_tensor **x_out,
                              struct gdn__arena *ar, struct gdn__layer_tape *lt,
                              struct gdn__layer_state *ls)
{
    gdn_context             *ctx = m->ctx;
    const struct gdn__layer *ly  = &m->layers[li];
    int64_t                  T = s->T, D = m->cfg.d_model;
    gdn_tensor              *h1, *h2, *xm = x, *xo = x;
    gdn_linear_params        lp;
    gdn_swiglu_args          sa;
    gdn_status               st;
    TRY(new2(ar, T, D, &h1));
    TRY(rmsnorm(ctx, GDN_NORM_RMS, m->cfg.norm_eps, 0, x, W(m, ly, P_ATTN_NORM), NULL, h1));
    if (lt) { /* training keeps every block's input and middle */
        TRY(new2(ar, T, D, &xm));
        TRY(gdn__copy_tensor(ctx, x, xm));
    }
    if (ly->kind == 'g')
        TRY(gdn_mixer_fwd(m, ly, mode, s, h1, xm, ar, lt, ls));
    else if (ly->kind == 's')
        TRY(swa_mixer_fwd(m, ly, mode, s, h1, xm, ar, lt, ls));
    else
        TRY(m2_mixer_fwd(m, ly, mode, s, h1, xm, ar, lt, ls));
    TRY(new2(ar, T, D, &h2));
    TRY(rmsnorm(ctx, GDN_NORM_RMS, m->cfg.norm_eps, 0, xm, W(m, ly, P_MLP_NORM), NULL, h2));
    xo = xm;
    if (lt) {
        TRY(new2(ar, T, D, &xo));
        TRY(gdn__copy_tensor(ctx, xm, xo));
    }
    gdn_linear_params_init(&lp);
    lp.flags = GDN_LINEAR_ACCUMULATE_Y;
    memset(&sa, 0, sizeof(sa));
    sa.x      = h2;
    sa.w_gate = W(m, ly, P_MLP_GATE);
    sa.w_up   = W(m, ly, P_MLP_UP);
    sa.w_down = W(m, ly, P_MLP_DOWN);
    TRY(gdn_swiglu_forward(ctx, &lp, &sa, xo, lt ? &lt->mlp : NULL));
    if (lt) {
        lt->x_in  = x;
        lt->h1    = h1;
        lt->x_mid = xm;
        lt->h2    = h2;
    }
    *x_out = xo;
    return GDN_STATUS_OK;
}

/* dX: gradient w.r.t. the block output on entry, w.r.t. its input on exit. */
gdn_status gdn__block_backward(gdn_model *m, int32_t li, const struct gdn__seqs *s, gdn_tensor *dX,
                               struct gdn__arena *ar, struct gdn__layer_tape *lt)
{
    gdn_context             *ctx = m->ctx;
    const struct gdn__layer *ly  = &m->layers[li];
    int64_t                  T = s->T, D = m->cfg.d_model;
    gdn_tensor              *dh2, *dh1;
    gdn_linear_params        lp;
    gdn_swiglu_grads         sg;
    gdn_status               st;
    TRY(new2(ar, T, D, &dh2));
    gdn_linear_params_init(&lp);
    lp.flags = GDN_LINEAR_ACCUMULATE_DW;
    memset(&sg, 0, sizeof(sg));
    sg.dx      = dh2;
    sg.dw_gate = G(m, ly, P_MLP_GATE);
    sg.dw_up   = G(m, ly, P_MLP_UP);
    sg.dw_down = G(m, ly, P_MLP_DOWN);
    TRY(gdn_swiglu_backward(ctx, &lp, lt->mlp, dX, &sg));
    TRY(rmsnorm_bwd(ctx, ar, GDN_NORM_RMS, m->cfg.norm_eps, 0, lt->x_mid, W(m, ly, P_MLP_NORM),
                    G(m, ly, P_MLP_NORM), NULL, dh2, dh2, NULL));
    TRY(gdn_residual_add(ctx, dX, dh2, dX));
    TRY(new2(ar, T, D, &dh1));
    if (ly->kind == 'g')
        TRY(gdn_mixer_bwd(m, ly, s, lt->h1, dX, dh1, ar, lt));
    else if (ly->kind == 's')
        TRY(swa_mixer_bwd(m, ly, s, lt->h1, dX, dh1, ar, lt));
    else
        TRY(m2_mixer_bwd(m, ly, s, lt->h1, dX, dh1, ar, lt));
    TRY(rmsnorm_bwd(ctx, ar, GDN_NORM_RMS, m->cfg.norm_eps, 0, lt->x_in, W(m, ly, P_ATTN_NORM),
                    G(m, ly, P_ATTN_NORM), NULL, dh1, dh1, NULL));
    return gdn_residual_add(ctx, dX, dh1, dX);
}

void gdn__layer_tape_clear(struct gdn__layer_tape *lt)
{
    gdn_gated_delta_tape_destroy(lt->gd);
    gdn_swa_tape_destroy(lt->swa);
    gdn_mamba2_tape_destroy(lt->m2);
    gdn_swiglu_tape_destroy(lt->mlp);
    memset(lt, 0, sizeof(*lt));
}

/* ------------------------------------------------------------ model level */

struct gdn_model_tape {
    gdn_model              *m;
    struct gdn__arena       ar;
    struct gdn__seqs        s;
    gdn_tensor             *ids; /* [T] view */
    gdn_tensor             *xL, *hf, *logits_shape_ref;
    struct gdn__layer_tape *lt;
    bool                    used;
};

void gdn_model_tape_destroy(gdn_model_tape *tp)
{
    if (!tp)
        return;
    for (int32_t i = 0; tp->lt && i < tp->m->n_layers; i++)
        gdn__layer_tape_clear(&tp->lt[i]);
    gdn__free(tp->lt);
    gdn__arena_free(&tp->ar);
    gdn__free(tp->s.off);
    gdn__free(tp);
}

/* Check logits: F32, `rows` x vocab with any leading shape. */
static gdn_status check_logits(gdn_model *m, const char *fn, const gdn_tensor *lg,
                               const gdn_tensor *ids, int64_t rows)
{
    if (!lg)
        return gdn__fail(m->ctx, GDN_STATUS_INVALID_ARGUMENT, "%s: logits is NULL", fn);
    if (lg->ctx != m->ctx)
        return gdn__fail(m->ctx, GDN_STATUS_INVALID_ARGUMENT, "%s: logits of another context", fn);
    if (lg->dtype != GDN_DTYPE_F32 || lg->shape[lg->ndim - 1] != m->cfg.vocab ||
        lg->numel != rows * (int64_t)m->cfg.vocab ||
        (ids && (lg->ndim != ids->ndim + 1 ||
                 memcmp(lg->shape, ids->shape, (size_t)ids->ndim * sizeof(int64_t)))))
        return gdn__fail(m->ctx, GDN_STATUS_SHAPE_MISMATCH,
                         "%s: logits must be F32 with the ids' shape plus vocab = %d", fn,
                         m->cfg.vocab);
    return GDN_STATUS_OK;
}

/* Embedding of ids ([rows] I32) into a new [rows, D] tensor. */
gdn_status gdn__embed(gdn_model *m, struct gdn__arena *ar, const gdn_tensor *ids, gdn_tensor **x)
{
    gdn_status st;
    TRY(new2(ar, ids->numel, m->cfg.d_model, x));
    return gdn_embedding_forward(m->ctx, NULL, m->params[m->p_embed].w, ids, *x);
}

/* Final norm and head of x [rows, D] into logits (any shape of rows x vocab). */
gdn_status gdn__head(gdn_model *m, struct gdn__arena *ar, const gdn_tensor *x, gdn_tensor *logits,
                     gdn_tensor **hf_out)
{
    gdn_tensor *hf, *lg2;
    gdn_status  st;
    int64_t     rows = x->shape[0];
    TRY(new2(ar, rows, m->cfg.d_model, &hf));
    TRY(rmsnorm(m->ctx, GDN_NORM_RMS, m->cfg.norm_eps, 0, x, m->params[m->p_norm].w, NULL, hf));
    TRY(view2(ar, logits, rows, m->cfg.vocab, &lg2));
    TRY(linear(m->ctx, hf, m->params[m->p_head].w, lg2, 0));
    if (hf_out)
        *hf_out = hf;
    return GDN_STATUS_OK;
}

gdn_status gdn_model_forward(gdn_model *m, const gdn_model_batch *batch, gdn_tensor *logits,
                             gdn_model_tape **tape)
{
    static const char *fn = "gdn_model_forward";
    gdn_model_tape    *tp;
    gdn_tensor        *x;
    gdn_status         st;
    if (tape)
        *tape = NULL;
    if (!m)
        return GDN_STATUS_INVALID_ARGUMENT;
    if (!batch)
        return gdn__fail(m->ctx, GDN_STATUS_INVALID_ARGUMENT, "%s: batch is NULL", fn);
    tp = gdn__calloc(1, sizeof(*tp));
    if (!tp)
        return gdn__fail(m->ctx, GDN_STATUS_OUT_OF_HOST_MEMORY, "%s: out of memory", fn);
    tp->m      = m;
    tp->ar.ctx = m->ctx;
    st         = gdn__batch_seqs(m->ctx, fn, batch, &tp->s);
    if (!st)
        st = check_logits(m, fn, logits, batch->ids, tp->s.T);
    if (!st && !(tp->lt = gdn__calloc((size_t)m->n_layers, sizeof(*tp->lt))))
        st = gdn__fail(m->ctx, GDN_STATUS_OUT_OF_HOST_MEMORY, "%s: out of memory", fn);
    if (!st)
        st = gdn__arena_view(&tp->ar, batch->ids, 1, (const int64_t[]){tp->s.T}, &tp->ids);
    if (!st)
        st = gdn__embed(m, &tp->ar, tp->ids, &x);
    for (int32_t i = 0; !st && i < m->n_layers; i++) {
        if (tape) {
            st = gdn__block_forward(m, i, GDN__TRAIN, &tp->s, x, &x, &tp->ar, &tp->lt[i], NULL);
        } else { /* inference: free each block's temporaries as it ends */
            struct gdn__arena la = {m->ctx, NULL, NULL, 0, 0};
            gdn_tensor       *y;
            st = gdn__block_forward(m, i, GDN__TRAIN, &tp->s, x, &y, &la, NULL, NULL);
            gdn__arena_free(&la);
        }
    }
    if (!st) {
        tp->xL = x;
        st     = gdn__head(m, &tp->ar, x, logits, &tp->hf);
    }
    if (st || !tape) {
        gdn_model_tape_destroy(tp);
        return st;
    }
    *tape = tp;
    return GDN_STATUS_OK;
}

gdn_status gdn_model_backward(gdn_model *m, gdn_model_tape *tp, const gdn_tensor *dlogits)
{
    static const char *fn = "gdn_model_backward";
    gdn_context       *ctx;
    gdn_tensor        *dl2, *dhf, *dX;
    gdn_status         st;
    int64_t            T, D;
    if (!m)
        return GDN_STATUS_INVALID_ARGUMENT;
    ctx = m->ctx;
    if (!tp || tp->m != m)
        return gdn__fail(ctx, GDN_STATUS_INVALID_ARGUMENT, "%s: tape is NULL or of another model",
                         fn);
    if (tp->used)
        return gdn__fail(ctx, GDN_STATUS_INVALID_ARGUMENT, "%s: the tape was already used", fn);
    T = tp->s.T;
    D = m->cfg.d_model;
    TRY(check_logits(m, fn, dlogits, NULL, T));
    tp->used = true;
    TRY(view2(&tp->ar, dlogits, T, m->cfg.vocab, &dl2));
    TRY(new2(&tp->ar, T, D, &dhf));
    TRY(linear_bwd(ctx, tp->hf, m->params[m->p_head].w, m->params[m->p_head].g, dl2, dhf, false));
    TRY(new2(&tp->ar, T, D, &dX));
    TRY(rmsnorm_bwd(ctx, &tp->ar, GDN_NORM_RMS, m->cfg.norm_eps, 0, tp->xL, m->params[m->p_norm].w,
                    m->params[m->p_norm].g, NULL, dhf, dX, NULL));
    for (int32_t i = m->n_layers - 1; i >= 0; i--)
        TRY(gdn__block_backward(m, i, &tp->s, dX, &tp->ar, &tp->lt[i]));
    {
        gdn_linear_params lp;
        gdn_linear_params_init(&lp);
        lp.flags = GDN_LINEAR_ACCUMULATE_DW;
        TRY(gdn_embedding_backward(ctx, &lp, tp->ids, dX, m->params[m->p_embed].g));
    }
    return GDN_STATUS_OK;
}
