/*
 * model.c - model configuration and presets, the parameter registry (fla's
 * names and shapes), fla's initialisation, and the small public accessors.
 */
#include "model.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* ---------------------------------------------------------------- config */

void gdn_model_config_init(gdn_model_config *cfg)
{
    if (cfg)
        memset(cfg, 0, sizeof(*cfg));
}

static void set_layers(gdn_model_config *c, const char *unit, int repeat)
{
    size_t u = strlen(unit), n = 0;
    for (int i = 0; i < repeat && n + u <= GDN_MODEL_MAX_LAYERS; i++, n += u)
        memcpy(c->layers + n, unit, u);
    c->layers[n] = '\0';
}

/* The paper's shapes (ALGORITHM.md 4.2). Where NVlabs' head sizing
 * (K = 0.75 D / 9, V = 1.5 D / 9) gives head dims the op does not take
 * (above 256 or not a multiple of 16), the same widths are split into more
 * heads, or the nearest supported widths are used (gdn-1.3b); README.md
 * lists each choice. H2 is not in the release: its Mamba2 layers use
 * mamba_ssm's defaults (expand 2, head dim 64, d_state 128, 1 group). */
gdn_status gdn_model_config_preset(const char *name, gdn_model_config *c)
{
    if (!name || !c)
        return GDN_STATUS_INVALID_ARGUMENT;
    gdn_model_config_init(c);
    c->gdn_conv = 4;
    c->m2_conv  = 4;
    if (!strncmp(name, "tiny-", 5)) {
        c->vocab        = 64;
        c->d_model      = 64;
        c->mlp_hidden   = 128;
        c->gdn_heads    = 2;
        c->gdn_v_heads  = 4;
        c->gdn_head_k   = 16;
        c->gdn_head_v   = 32;
        c->swa_heads    = 4;
        c->swa_kv_heads = 2;
        c->swa_head_dim = 16;
        c->swa_window   = 8;
        c->m2_heads     = 4;
        c->m2_head_dim  = 16;
        c->m2_state     = 16;
        c->m2_groups    = 2;
        if (!strcmp(name, "tiny-gdn"))
            set_layers(c, "gg", 1);
        else if (!strcmp(name, "tiny-h1"))
            set_layers(c, "gs", 1);
        else if (!strcmp(name, "tiny-h2"))
            set_layers(c, "mgs", 1);
        else
            return GDN_STATUS_INVALID_ARGUMENT;
        return GDN_STATUS_OK;
    }
    if (!strcmp(name, "small-h1")) {
        c->vocab          = 256;
        c->d_model        = 128;
        c->mlp_hidden     = 384;
        c->tie_embeddings = 1;
        c->gdn_heads      = 2;
        c->gdn_head_k     = 64;
        c->gdn_head_v     = 64;
        c->swa_heads      = 2;
        c->swa_head_dim   = 64;
        c->swa_window     = 128;
        c->m2_heads       = 4;
        c->m2_head_dim    = 64;
        c->m2_state       = 64;
        set_layers(c, "gs", 2);
        return GDN_STATUS_OK;
    }
    c->vocab = 32000;
    if (!strcmp(name, "gdn-0.4b") || !strcmp(name, "h1-0.4b") || !strcmp(name, "h2-0.4b")) {
        c->d_model      = 1536;
        c->mlp_hidden   = 6144;
        c->gdn_heads    = 9;
        c->gdn_head_k   = 128;
        c->gdn_head_v   = 256;
        c->swa_heads    = 12;
        c->swa_head_dim = 128;
        c->m2_heads     = 48;
        c->m2_head_dim  = 64;
        c->m2_state     = 128;
        if (name[1] == 'd')
            set_layers(c, "g", 11);
        else if (name[1] == '1')
            set_layers(c, "gs", 6);
        else
            set_layers(c, "mgs", 4);
        return GDN_STATUS_OK;
    }
    if (!strcmp(name, "gdn-1.3b")) {
        c->d_model    = 2400;
        c->mlp_hidden = 5888;
        c->gdn_heads  = 15; /* K = 128 (q/k width 1920 for 0.75 D = 1800) */
        c->gdn_head_k = 128;
        c->gdn_head_v = 240; /* 15 x 240 = 1.5 D */
        set_layers(c, "g", 16);
        return GDN_STATUS_OK;
    }
    if (!strcmp(name, "h1-1.3b") || !strcmp(name, "h2-1.3b")) {
        c->d_model      = 2304;
        c->mlp_hidden   = 6144;
        c->gdn_heads    = 18; /* 9 heads of K = 192, V = 384 split in two */
        c->gdn_head_k   = 96;
        c->gdn_head_v   = 192;
        c->swa_heads    = 18;
        c->swa_head_dim = 128;
        c->m2_heads     = 72;
        c->m2_head_dim  = 64;
        c->m2_state     = 128;
        set_layers(c, name[1] == '1' ? "gs" : "mgs", name[1] == '1' ? 9 : 6);
        return GDN_STATUS_OK;
    }
    return GDN_STATUS_INVALID_ARGUMENT;
}

void gdn__model_dims(const gdn_model_config *c, struct gdn__dims *d)
{
    memset(d, 0, sizeof(*d));
    d->D      = c->d_model;
    d->F      = c->mlp_hidden;
    d->vocab  = c->vocab;
    d->gH     = c->gdn_heads;
    d->gHV    = c->gdn_v_heads;
    d->gK     = c->gdn_head_k;
    d->gV     = c->gdn_head_v;
    d->gW     = c->gdn_conv;
    d->sH     = c->swa_heads;
    d->sHkv   = c->swa_kv_heads;
    d->sD     = c->swa_head_dim;
    d->sW     = c->swa_window;
    d->mH     = c->m2_heads;
    d->mP     = c->m2_head_dim;
    d->mN     = c->m2_state;
    d->mG     = c->m2_groups;
    d->mW     = c->m2_conv;
    d->mDi    = d->mH * d->mP;
    d->mConvC = d->mDi + 2 * d->mG * d->mN;
    d->mInOut = 2 * d->mDi + 2 * d->mG * d->mN + d->mH;
}

static bool head_dim_ok(int32_t x)
{
    return x >= 16 && x <= 256 && x % 16 == 0;
}

#define CFG_FAIL(...) return gdn__fail(ctx, GDN_STATUS_INVALID_ARGUMENT, __VA_ARGS__)

gdn_status gdn__model_config_check(gdn_context *ctx, gdn_model_config *c)
{
    size_t n = 0;
    while (n < sizeof(c->layers) && c->layers[n])
        n++;
    bool   has_g = false, has_s = false, has_m = false;
    for (size_t i = 0; i < sizeof(c->reserved) / sizeof(c->reserved[0]); i++)
        if (c->reserved[i])
            CFG_FAIL("model config: reserved[%zu] must be zero", i);
    if (n == 0 || n > GDN_MODEL_MAX_LAYERS)
        CFG_FAIL("model config: layers must hold 1 to %d layer letters", GDN_MODEL_MAX_LAYERS);
    for (size_t i = 0; i < n; i++) {
        char k = c->layers[i];
        if (k != 'g' && k != 's' && k != 'm')
            CFG_FAIL("model config: layers[%zu] = '%c' is not 'g', 's' or 'm'", i,
                     k >= 32 && k < 127 ? k : '?');
        has_g |= k == 'g';
        has_s |= k == 's';
        has_m |= k == 'm';
    }
    if (c->vocab < 1)
        CFG_FAIL("model config: vocab = %d must be >= 1", c->vocab);
    if (c->d_model < 1 || c->d_model > 65536)
        CFG_FAIL("model config: d_model = %d must be in [1, 65536]", c->d_model);
    if (c->mlp_hidden == 0)
        c->mlp_hidden = 256 * ((c->d_model * 8 / 3 + 255) / 256);
    if (c->mlp_hidden < 1 || c->mlp_hidden > 1 << 20)
        CFG_FAIL("model config: mlp_hidden = %d must be in [1, 2^20]", c->mlp_hidden);
    if (c->tie_embeddings != 0 && c->tie_embeddings != 1)
        CFG_FAIL("model config: tie_embeddings must be 0 or 1");
    if (c->norm_eps == 0)
        c->norm_eps = 1e-6f;
    if (c->init_range == 0)
        c->init_range = 0.02f;
    if (!(c->norm_eps > 0) || !isfinite(c->norm_eps) || !(c->init_range > 0) ||
        !isfinite(c->init_range))
        CFG_FAIL("model config: norm_eps and init_range must be finite and > 0");
    if (has_g) {
        if (c->gdn_v_heads == 0)
            c->gdn_v_heads = c->gdn_heads;
        if (c->gdn_conv == 0)
            c->gdn_conv = 4;
        if (c->gdn_norm_eps == 0)
            c->gdn_norm_eps = 1e-5f;
        if (c->gdn_heads < 1 || c->gdn_v_heads < 1 || c->gdn_v_heads % c->gdn_heads)
            CFG_FAIL("model config: gdn_heads = %d, gdn_v_heads = %d: need H >= 1 and HV a "
                     "multiple of H",
                     c->gdn_heads, c->gdn_v_heads);
        if (!head_dim_ok(c->gdn_head_k) || c->gdn_head_v < 16 || c->gdn_head_v > 1024 ||
            c->gdn_head_v % 16)
            return gdn__fail(ctx, GDN_STATUS_UNSUPPORTED,
                             "model config: gdn_head_k = %d, gdn_head_v = %d: K must be a "
                             "multiple of 16 in [16, 256], V one in [16, 1024]",
                             c->gdn_head_k, c->gdn_head_v);
        if (c->gdn_conv < 2 || c->gdn_conv > 8)
            CFG_FAIL("model config: gdn_conv = %d must be in [2, 8]", c->gdn_conv);
        if (c->gdn_neg_eigval != 0 && c->gdn_neg_eigval != 1)
            CFG_FAIL("model config: gdn_neg_eigval must be 0 or 1");
        if (!(c->gdn_norm_eps > 0) || !isfinite(c->gdn_norm_eps))
            CFG_FAIL("model config: gdn_norm_eps must be finite and > 0");
    }
    if (has_s) {
        if (c->swa_kv_heads == 0)
            c->swa_kv_heads = c->swa_heads;
        if (c->swa_window == 0)
            c->swa_window = GDN_SWA_DEFAULT_WINDOW;
        if (c->rope_base == 0)
            c->rope_base = 10000.0f;
        if (c->swa_heads < 1 || c->swa_kv_heads < 1 || c->swa_heads % c->swa_kv_heads)
            CFG_FAIL("model config: swa_heads = %d, swa_kv_heads = %d: need kv heads dividing "
                     "query heads",
                     c->swa_heads, c->swa_kv_heads);
        if (!head_dim_ok(c->swa_head_dim))
            return gdn__fail(ctx, GDN_STATUS_UNSUPPORTED,
                             "model config: swa_head_dim = %d must be a multiple of 16 in "
                             "[16, 256]",
                             c->swa_head_dim);
        if (c->swa_window < 1 || c->swa_window > 1 << 20)
            CFG_FAIL("model config: swa_window = %d must be in [1, 2^20] (the decode cache "
                     "holds W tokens)",
                     c->swa_window);
        if (!(c->rope_base > 1) || !isfinite(c->rope_base))
            CFG_FAIL("model config: rope_base must be finite and > 1");
    }
    if (has_m) {
        if (c->m2_groups == 0)
            c->m2_groups = 1;
        if (c->m2_conv == 0)
            c->m2_conv = 4;
        if (c->m2_norm_eps == 0)
            c->m2_norm_eps = 1e-5f;
        if (c->m2_heads < 1 || c->m2_groups < 1 || c->m2_heads % c->m2_groups)
            CFG_FAIL("model config: m2_heads = %d, m2_groups = %d: need groups dividing heads",
                     c->m2_heads, c->m2_groups);
        if (!head_dim_ok(c->m2_head_dim) || !head_dim_ok(c->m2_state))
            return gdn__fail(ctx, GDN_STATUS_UNSUPPORTED,
                             "model config: m2_head_dim = %d, m2_state = %d must be multiples "
                             "of 16 in [16, 256]",
                             c->m2_head_dim, c->m2_state);
        if (c->m2_conv < 2 || c->m2_conv > 8)
            CFG_FAIL("model config: m2_conv = %d must be in [2, 8]", c->m2_conv);
        if (!(c->m2_norm_eps > 0) || !isfinite(c->m2_norm_eps))
            CFG_FAIL("model config: m2_norm_eps must be finite and > 0");
    }
    return GDN_STATUS_OK;
}

/* ---------------------------------------------------------------- registry */

struct reg {
    gdn_model  *m;
    gdn_status  st;
};

static int32_t add_param(struct reg *r, bool decay, int32_t ndim, const int64_t *shape,
                         const char *fmt, ...) GDN_PRINTF(5, 6);

static int32_t add_param(struct reg *r, bool decay, int32_t ndim, const int64_t *shape,
                         const char *fmt, ...)
{
    gdn_model         *m = r->m;
    struct gdn__param *p;
    va_list            ap;
    int64_t            numel = 1;
    if (r->st)
        return -1;
    p = &m->params[m->n_params];
    va_start(ap, fmt);
    vsnprintf(p->name, sizeof(p->name), fmt, ap);
    va_end(ap);
    p->ndim  = ndim;
    p->decay = decay;
    for (int32_t i = 0; i < ndim; i++) {
        p->shape[i] = shape[i];
        numel *= shape[i];
    }
    gdn_tensor **ts[4] = {&p->w, &p->g, &p->m, &p->v};
    /* Conv weights are [C, 1, W] in checkpoints and [C, W] for the op. */
    int64_t dev_shape[2] = {shape[0], ndim == 3 ? shape[2] : 0};
    for (int i = 0; i < 4 && !r->st; i++)
        r->st = ndim == 3 ? gdn_tensor_create(m->ctx, GDN_DTYPE_F32, 2, dev_shape, ts[i])
                          : gdn_tensor_create(m->ctx, GDN_DTYPE_F32, ndim, shape, ts[i]);
    for (int i = 1; i < 4 && !r->st; i++)
        r->st = gdn_tensor_fill(*ts[i], 0.0f);
    m->numel += numel;
    return m->n_params++;
}

#define SHAPE(...) ((const int64_t[]){__VA_ARGS__})
#define ADD(decay, nd, shp, ...) add_param(&r, decay, nd, shp, __VA_ARGS__)

gdn_status gdn__model_alloc(gdn_context *ctx, const gdn_model_config *cfg, gdn_model **out)
{
    struct gdn__dims d;
    gdn_model       *m;
    struct reg       r = {0};
    int32_t          L = (int32_t)strlen(cfg->layers);
    *out               = NULL;
    m                  = gdn__calloc(1, sizeof(*m));
    if (!m)
        return gdn__fail(ctx, GDN_STATUS_OUT_OF_HOST_MEMORY, "gdn_model_create: out of memory");
    m->ctx      = ctx;
    gdn__context_ref(ctx); /* released by gdn_model_destroy */
    m->cfg      = *cfg;
    m->n_layers = L;
    m->params   = gdn__calloc((size_t)L * (GDN__LAYER_MAX_PARAMS + 1) + 4, sizeof(*m->params));
    m->layers   = gdn__calloc((size_t)L, sizeof(*m->layers));
    if (!m->params || !m->layers) {
        gdn_model_destroy(m);
        return gdn__fail(ctx, GDN_STATUS_OUT_OF_HOST_MEMORY, "gdn_model_create: out of memory");
    }
    gdn__model_dims(cfg, &d);
    r.m        = m;
    m->p_embed = ADD(true, 2, SHAPE(d.vocab, d.D), "model.embeddings.weight");
    for (int32_t i = 0; i < L && !r.st; i++) {
        struct gdn__layer *ly = &m->layers[i];
        const char        *mx = cfg->layers[i] == 'm' ? "mixer" : "attn";
        ly->kind              = cfg->layers[i];
        ly->p[P_ATTN_NORM]    = ADD(false, 1, SHAPE(d.D), "model.layers.%d.attn_norm.weight", i);
        if (ly->kind == 'g') {
            int64_t qk = d.gH * d.gK, vv = d.gHV * d.gV;
            ly->p[G_Q]  = ADD(true, 2, SHAPE(qk, d.D), "model.layers.%d.%s.q_proj.weight", i, mx);
            ly->p[G_K]  = ADD(true, 2, SHAPE(qk, d.D), "model.layers.%d.%s.k_proj.weight", i, mx);
            ly->p[G_V]  = ADD(true, 2, SHAPE(vv, d.D), "model.layers.%d.%s.v_proj.weight", i, mx);
            ly->p[G_A]  = ADD(true, 2, SHAPE(d.gHV, d.D), "model.layers.%d.%s.a_proj.weight", i,
                              mx);
            ly->p[G_B]  = ADD(true, 2, SHAPE(d.gHV, d.D), "model.layers.%d.%s.b_proj.weight", i,
                              mx);
            ly->p[G_G]  = ADD(true, 2, SHAPE(vv, d.D), "model.layers.%d.%s.g_proj.weight", i, mx);
            ly->p[G_O]  = ADD(true, 2, SHAPE(d.D, vv), "model.layers.%d.%s.o_proj.weight", i, mx);
            ly->p[G_ALOG] = ADD(false, 1, SHAPE(d.gHV), "model.layers.%d.%s.A_log", i, mx);
            ly->p[G_DTB]  = ADD(false, 1, SHAPE(d.gHV), "model.layers.%d.%s.dt_bias", i, mx);
            ly->p[G_QC]   = ADD(false, 3, SHAPE(qk, 1, d.gW), "model.layers.%d.%s.q_conv1d.weight",
                                i, mx);
            ly->p[G_KC]   = ADD(false, 3, SHAPE(qk, 1, d.gW), "model.layers.%d.%s.k_conv1d.weight",
                                i, mx);
            ly->p[G_VC]   = ADD(false, 3, SHAPE(vv, 1, d.gW), "model.layers.%d.%s.v_conv1d.weight",
                                i, mx);
            ly->p[G_ONORM] = ADD(false, 1, SHAPE(d.gV), "model.layers.%d.%s.o_norm.weight", i, mx);
        } else if (ly->kind == 's') {
            int64_t q = d.sH * d.sD, kv = d.sHkv * d.sD;
            ly->p[S_Q] = ADD(true, 2, SHAPE(q, d.D), "model.layers.%d.%s.q_proj.weight", i, mx);
            ly->p[S_K] = ADD(true, 2, SHAPE(kv, d.D), "model.layers.%d.%s.k_proj.weight", i, mx);
            ly->p[S_V] = ADD(true, 2, SHAPE(kv, d.D), "model.layers.%d.%s.v_proj.weight", i, mx);
            ly->p[S_O] = ADD(true, 2, SHAPE(d.D, q), "model.layers.%d.%s.o_proj.weight", i, mx);
        } else {
            ly->p[M_IN]    = ADD(true, 2, SHAPE(d.mInOut, d.D), "model.layers.%d.%s.in_proj.weight",
                                 i, mx);
            ly->p[M_CONVW] = ADD(false, 3, SHAPE(d.mConvC, 1, d.mW),
                                 "model.layers.%d.%s.conv1d.weight", i, mx);
            ly->p[M_CONVB] = ADD(false, 1, SHAPE(d.mConvC), "model.layers.%d.%s.conv1d.bias", i,
                                 mx);
            ly->p[M_DTB]   = ADD(false, 1, SHAPE(d.mH), "model.layers.%d.%s.dt_bias", i, mx);
            ly->p[M_ALOG]  = ADD(false, 1, SHAPE(d.mH), "model.layers.%d.%s.A_log", i, mx);
            ly->p[M_D]     = ADD(false, 1, SHAPE(d.mH), "model.layers.%d.%s.D", i, mx);
            ly->p[M_NORM]  = ADD(false, 1, SHAPE(d.mDi), "model.layers.%d.%s.norm.weight", i, mx);
            ly->p[M_OUT]   = ADD(true, 2, SHAPE(d.D, d.mDi), "model.layers.%d.%s.out_proj.weight",
                                 i, mx);
        }
        ly->p[P_MLP_NORM] = ADD(false, 1, SHAPE(d.D), "model.layers.%d.mlp_norm.weight", i);
        ly->p[P_MLP_GATE] = ADD(true, 2, SHAPE(d.F, d.D), "model.layers.%d.mlp.gate_proj.weight", i);
        ly->p[P_MLP_UP]   = ADD(true, 2, SHAPE(d.F, d.D), "model.layers.%d.mlp.up_proj.weight", i);
        ly->p[P_MLP_DOWN] = ADD(true, 2, SHAPE(d.D, d.F), "model.layers.%d.mlp.down_proj.weight", i);
    }
    m->p_norm = ADD(false, 1, SHAPE(d.D), "model.norm.weight");
    m->p_head = cfg->tie_embeddings ? m->p_embed : ADD(true, 2, SHAPE(d.vocab, d.D), "lm_head.weight");
    if (r.st) {
        gdn_model_destroy(m);
        return r.st;
    }
    *out = m;
    return GDN_STATUS_OK;
}

struct gdn__param *gdn__model_param(gdn_model *m, const char *name)
{
    for (int32_t i = 0; m && name && i < m->n_params; i++)
        if (!strcmp(m->params[i].name, name))
            return &m->params[i];
    return NULL;
}

void gdn_model_destroy(gdn_model *m)
{
    if (!m)
        return;
    for (int32_t i = 0; m->params && i < m->n_params; i++) {
        gdn_tensor_destroy(m->params[i].w);
        gdn_tensor_destroy(m->params[i].g);
        gdn_tensor_destroy(m->params[i].m);
        gdn_tensor_destroy(m->params[i].v);
    }
    gdn__free(m->params);
    gdn__free(m->layers);
    if (m->ctx)
        gdn__context_unref(m->ctx);
    gdn__free(m);
}

/* ---------------------------------------------------------------- init */

/* The parameter initialiser draws from gdn__splitmix64 (deterministic in
 * the seed; parameters are drawn in registry order). */
static double unif(uint64_t *s) /* (0, 1) */
{
    return ((double)(gdn__splitmix64(s) >> 11) + 0.5) * (1.0 / 9007199254740992.0);
}

static double normal(uint64_t *s)
{
    double u1 = unif(s), u2 = unif(s);
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && !strcmp(s + n - k, suffix);
}

/* Inverse softplus of dt drawn log-uniformly in [1e-3, 0.1], floored at
 * 1e-4 (fla GatedDeltaNet and mamba_ssm). */
static double dt_bias_init(uint64_t *s)
{
    double dt = exp(log(1e-3) + unif(s) * (log(0.1) - log(1e-3)));
    if (dt < 1e-4)
        dt = 1e-4;
    return dt + log(-expm1(-dt));
}

static gdn_status init_params(gdn_model *m, uint64_t seed)
{
    const gdn_model_config *c = &m->cfg;
    uint64_t                s = seed ^ 0x67646e00ull;
    double                  resid = 1.0 / sqrt(2.0 * m->n_layers);
    for (int32_t i = 0; i < m->n_params; i++) {
        struct gdn__param *p = &m->params[i];
        size_t             n = (size_t)gdn_tensor_numel(p->w);
        float             *h = gdn__malloc(n ? n * sizeof(float) : 1);
        gdn_status         st;
        bool               m2 = strstr(p->name, ".mixer.") != NULL;
        if (!h)
            return gdn__fail(m->ctx, GDN_STATUS_OUT_OF_HOST_MEMORY, "gdn_model_create: out of memory");
        for (size_t j = 0; j < n; j++) {
            double v;
            if (ends_with(p->name, "norm.weight") || ends_with(p->name, ".D"))
                v = 1.0;
            else if (ends_with(p->name, "A_log"))
                v = m2 ? log(1.0 + 15.0 * unif(&s)) : log(16.0 * unif(&s));
            else if (ends_with(p->name, "dt_bias"))
                v = dt_bias_init(&s);
            else if (ends_with(p->name, "conv1d.weight") || ends_with(p->name, "conv1d.bias"))
                v = (2.0 * unif(&s) - 1.0) / sqrt((double)(m2 ? c->m2_conv : c->gdn_conv));
            else {
                v = normal(&s) * c->init_range;
                if (ends_with(p->name, "o_proj.weight") || ends_with(p->name, "down_proj.weight") ||
                    ends_with(p->name, "out_proj.weight"))
                    v *= resid;
            }
            h[j] = (float)v;
        }
        st = gdn_tensor_write(p->w, h, 0, n * sizeof(float));
        gdn__free(h);
        if (st)
            return st;
    }
    return GDN_STATUS_OK;
}

gdn_status gdn_model_create(gdn_context *ctx, const gdn_model_config *cfg, uint64_t seed,
                            gdn_model **out)
{
    gdn_model_config c;
    gdn_status       st;
    if (!out)
        return ctx ? gdn__fail(ctx, GDN_STATUS_INVALID_ARGUMENT, "gdn_model_create: out is NULL")
                   : GDN_STATUS_INVALID_ARGUMENT;
    *out = NULL;
    if (!ctx)
        return GDN_STATUS_INVALID_ARGUMENT;
    if (!cfg)
        return gdn__fail(ctx, GDN_STATUS_INVALID_ARGUMENT, "gdn_model_create: cfg is NULL");
    c  = *cfg;
    st = gdn__model_config_check(ctx, &c);
    if (st)
        return st;
    st = gdn__model_alloc(ctx, &c, out);
    if (!st)
        st = init_params(*out, seed);
    if (st) {
        gdn_model_destroy(*out);
        *out = NULL;
    }
    return st;
}

gdn_status gdn_model_get_config(const gdn_model *m, gdn_model_config *cfg)
{
    if (!m || !cfg)
        return GDN_STATUS_INVALID_ARGUMENT;
    *cfg = m->cfg;
    return GDN_STATUS_OK;
}

int64_t gdn_model_param_count(const gdn_model *m)
{
    return m ? m->numel : 0;
}

int32_t gdn_model_param_tensors(const gdn_model *m)
{
    return m ? m->n_params : 0;
}

gdn_status gdn_model_param_info(const gdn_model *m, int32_t i, const char **name, int64_t *numel)
{
    if (!m || i < 0 || i >= m->n_params)
        return GDN_STATUS_INVALID_ARGUMENT;
    if (name)
        *name = m->params[i].name;
    if (numel)
        *numel = gdn_tensor_numel(m->params[i].w);
    return GDN_STATUS_OK;
}

gdn_status gdn_model_param_read(gdn_model *m, const char *name, int32_t grad, float *dst,
                                size_t cap)
{
    struct gdn__param *p;
    size_t             n;
    if (!m)
        return GDN_STATUS_INVALID_ARGUMENT;
    p = gdn__model_param(m, name);
    if (!p)
        return gdn__fail(m->ctx, GDN_STATUS_INVALID_ARGUMENT,
                         "gdn_model_param_read: no parameter called '%s'", name ? name : "(null)");
    n = (size_t)gdn_tensor_numel(p->w);
    if (!dst || cap < n)
        return gdn__fail(m->ctx, GDN_STATUS_INVALID_ARGUMENT,
                         "gdn_model_param_read: '%s' has %zu elements, dst holds %zu", name, n,
                         dst ? cap : 0);
    return gdn_tensor_read(grad ? p->g : p->w, dst, 0, n * sizeof(float));
}

gdn_status gdn_model_param_write(gdn_model *m, const char *name, const float *src, size_t n)
{
    struct gdn__param *p;
    if (!m)
        return GDN_STATUS_INVALID_ARGUMENT;
    p = gdn__model_param(m, name);
    if (!p)
        return gdn__fail(m->ctx, GDN_STATUS_INVALID_ARGUMENT,
                         "gdn_model_param_write: no parameter called '%s'", name ? name : "(null)");
    if (!src || n != (size_t)gdn_tensor_numel(p->w))
        return gdn__fail(m->ctx, GDN_STATUS_INVALID_ARGUMENT,
                         "gdn_model_param_write: '%s' has %lld elements, got %zu", name,
                         (long long)gdn_tensor_numel(p->w), src ? n : 0);
    return gdn_tensor_write(p->w, src, 0, n * sizeof(float));
}

gdn_status gdn_model_zero_grad(gdn_model *m)
{
    if (!m)
        return GDN_STATUS_INVALID_ARGUMENT;
    for (int32_t i = 0; i < m->n_params; i++) {
        gdn_status st = gdn_tensor_fill(m->params[i].g, 0.0f);
        if (st)
            return st;
    }
    return GDN_STATUS_OK;
}
