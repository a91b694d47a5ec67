/*
 * ckpt.c - model checkpoints as safetensors files with fla's tensor names
 * and layouts (lib/model/checkpoint/safetensors.c does the format).
 *
 * A file written by gdn_model_save holds every parameter (F32, checkpoint
 * shapes: conv weights [C, 1, W]); with GDN_MODEL_SAVE_OPTIMIZER also the
 * AdamW moments as "optimizer.exp_avg.<name>" / "optimizer.exp_avg_sq.<name>".
 * Its __metadata__ holds "format": "pt", "gdn.config" (the configuration as
 * a JSON object), "gdn.version", "gdn.optimizer_step" and the caller's keys.
 * Tied embeddings store the table once ("model.embeddings.weight"), as
 * safetensors does for shared tensors.
 */
#include <jansson.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "model.h"
#include "safetensors.h"

/* The configuration fields, by name, for the JSON of "gdn.config". */
struct cfg_field {
    const char *name;
    size_t      off;
    char        type; /* 'i' int32, 'f' float */
};
#define CI(f) {#f, offsetof(gdn_model_config, f), 'i'}
#define CF(f) {#f, offsetof(gdn_model_config, f), 'f'}
static const struct cfg_field cfg_fields[] = {
    CI(vocab),        CI(d_model),       CI(mlp_hidden),  CI(tie_embeddings), CF(norm_eps),
    CF(init_range),   CI(gdn_heads),     CI(gdn_v_heads), CI(gdn_head_k),     CI(gdn_head_v),
    CI(gdn_conv),     CI(gdn_neg_eigval), CF(gdn_norm_eps), CI(swa_heads),    CI(swa_kv_heads),
    CI(swa_head_dim), CI(swa_window),    CF(rope_base),   CI(m2_heads),       CI(m2_head_dim),
    CI(m2_state),     CI(m2_groups),     CI(m2_conv),     CF(m2_norm_eps),
};

static char *config_json(const gdn_model_config *c)
{
    json_t *o = json_object();
    char   *s;
    json_object_set_new(o, "layers", json_string(c->layers));
    for (size_t i = 0; i < sizeof(cfg_fields) / sizeof(cfg_fields[0]); i++) {
        const char *p = (const char *)c + cfg_fields[i].off;
        if (cfg_fields[i].type == 'i')
            json_object_set_new(o, cfg_fields[i].name, json_integer(*(const int32_t *)p));
        else
            json_object_set_new(o, cfg_fields[i].name, json_real(*(const float *)p));
    }
    s = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(o);
    return s;
}

static gdn_status config_parse(gdn_context *ctx, const char *path, const char *text,
                               gdn_model_config *c)
{
    json_error_t err;
    json_t      *o = json_loads(text, JSON_REJECT_DUPLICATES, &err), *v;
    gdn_status   st = GDN_STATUS_OK;
    gdn_model_config_init(c);
    if (!o || !json_is_object(o)) {
        json_decref(o);
        return gdn__fail(ctx, GDN_STATUS_INVALID_ARGUMENT,
                         "%s: gdn.config is not a JSON object (%s)", path, o ? "" : err.text);
    }
    v = json_object_get(o, "layers");
    if (!json_is_string(v) || json_string_length(v) < 1 ||
        json_string_length(v) > GDN_MODEL_MAX_LAYERS)
        st = gdn__fail(ctx, GDN_STATUS_INVALID_ARGUMENT, "%s: gdn.config: bad \"layers\"", path);
    else
        memcpy(c->layers, json_string_value(v), json_string_length(v));
    for (size_t i = 0; !st && i < sizeof(cfg_fields) / sizeof(cfg_fields[0]); i++) {
        char *p = (char *)c + cfg_fields[i].off;
        v       = json_object_get(o, cfg_fields[i].name);
        if (cfg_fields[i].type == 'i') {
            if (!json_is_integer(v) || json_integer_value(v) < INT32_MIN ||
                json_integer_value(v) > INT32_MAX)
                st = gdn__fail(ctx, GDN_STATUS_INVALID_ARGUMENT,
                               "%s: gdn.config: \"%s\" is missing or not a 32-bit integer", path,
                               cfg_fields[i].name);
            else
                *(int32_t *)p = (int32_t)json_integer_value(v);
        } else {
            if (!json_is_number(v) || !isfinite(json_number_value(v)))
                st = gdn__fail(ctx, GDN_STATUS_INVALID_ARGUMENT,
                               "%s: gdn.config: \"%s\" is missing or not a finite number", path,
                               cfg_fields[i].name);
            else
                *(float *)p = (float)json_number_value(v);
        }
    }
    json_decref(o);
    return st;
}

static gdn_status st_fail(gdn_context *ctx, gdn_status st, const struct gdn__st_err *e)
{
    return gdn__fail(ctx, st, "%s", e->msg);
}

/* ---------------------------------------------------------------- save */

gdn_status gdn_model_save(gdn_model *m, const char *path, uint32_t flags,
                          const char *const *meta, size_t n_meta)
{
    static const char    *fn = "gdn_model_save";
    struct gdn__st_entry *e  = NULL;
    struct gdn__st_err    err;
    char                **names = NULL, *cfg = NULL, step[32];
    float               **bufs  = NULL;
    const char          **kv    = NULL;
    size_t                ne = 0, per = (flags & GDN_MODEL_SAVE_OPTIMIZER) ? 3 : 1, nkv = 0;
    gdn_status            st = GDN_STATUS_OK;
    if (!m)
        return GDN_STATUS_INVALID_ARGUMENT;
    if (!path || (n_meta && !meta) || (flags & ~(uint32_t)GDN_MODEL_SAVE_OPTIMIZER))
        return gdn__fail(m->ctx, GDN_STATUS_INVALID_ARGUMENT,
                         "%s: NULL path or meta, or unknown flags", fn);
    for (size_t i = 0; i < n_meta; i++) {
        const char *k = meta[2 * i], *v = meta[2 * i + 1];
        if (!k || !v || !strncmp(k, "gdn.", 4) || !strcmp(k, "format"))
            return gdn__fail(m->ctx, GDN_STATUS_INVALID_ARGUMENT,
                             "%s: meta pair %zu is NULL or uses a reserved key (\"format\", "
                             "\"gdn.*\")",
                             fn, i);
    }
    e     = gdn__calloc((size_t)m->n_params * per, sizeof(*e));
    names = gdn__calloc((size_t)m->n_params * per, sizeof(*names));
    bufs  = gdn__calloc((size_t)m->n_params * per, sizeof(*bufs));
    kv    = gdn__calloc(2 * n_meta + 8, sizeof(*kv));
    cfg   = config_json(&m->cfg);
    if (!e || !names || !bufs || !kv || !cfg)
        st = gdn__fail(m->ctx, GDN_STATUS_OUT_OF_HOST_MEMORY, "%s: out of memory", fn);
    for (int32_t i = 0; !st && i < m->n_params; i++) {
        struct gdn__param *p    = &m->params[i];
        size_t             n    = (size_t)gdn_tensor_numel(p->w);
        gdn_tensor        *src[3] = {p->w, p->m, p->v};
        const char        *pre[3] = {"", "optimizer.exp_avg.", "optimizer.exp_avg_sq."};
        for (size_t j = 0; !st && j < per; j++) {
            size_t len = strlen(pre[j]) + strlen(p->name) + 1;
            names[ne]  = gdn__malloc(len);
            bufs[ne]   = gdn__malloc(n ? n * sizeof(float) : 1);
            if (!names[ne] || !bufs[ne]) {
                st = gdn__fail(m->ctx, GDN_STATUS_OUT_OF_HOST_MEMORY, "%s: out of memory", fn);
                ne++;
                break;
            }
            snprintf(names[ne], len, "%s%s", pre[j], p->name);
            st            = gdn_tensor_read(src[j], bufs[ne], 0, n * sizeof(float));
            e[ne].name    = names[ne];
            e[ne].dtype   = "F32";
            e[ne].ndim    = p->ndim;
            e[ne].shape   = p->shape;
            e[ne].data    = bufs[ne];
            e[ne].nbytes  = n * sizeof(float);
            ne++;
        }
    }
    if (!st) {
        snprintf(step, sizeof(step), "%lld", (long long)m->opt_step);
        kv[nkv++] = "format";
        kv[nkv++] = "pt";
        kv[nkv++] = "gdn.config";
        kv[nkv++] = cfg;
        kv[nkv++] = "gdn.version";
        kv[nkv++] = gdn_version_string();
        if (flags & GDN_MODEL_SAVE_OPTIMIZER) {
            kv[nkv++] = "gdn.optimizer_step";
            kv[nkv++] = step;
        }
        for (size_t i = 0; i < 2 * n_meta; i++)
            kv[nkv++] = meta[i];
        if (gdn__st_write(path, e, ne, kv, nkv / 2, &err))
            st = st_fail(m->ctx, GDN_STATUS_IO, &err);
    }
    for (size_t i = 0; i < ne; i++) {
        gdn__free(names[i]);
        gdn__free(bufs[i]);
    }
    gdn__free(e);
    gdn__free(names);
    gdn__free(bufs);
    gdn__free(kv);
    free(cfg); /* jansson's allocator */
    return st;
}

/* ---------------------------------------------------------------- load */

/* Read every tensor of `prefix` + parameter name into host buffers (all or
 * nothing), checking shapes. out[i] receives n_params buffers. */
static gdn_status read_set(gdn_model *m, struct gdn__st_file *f, const char *path,
                           const char *prefix, float **out)
{
    gdn_status         st = GDN_STATUS_OK;
    struct gdn__st_err err;
    char               name[160];
    for (int32_t i = 0; !st && i < m->n_params; i++) {
        struct gdn__param           *p = &m->params[i];
        const struct gdn__st_tensor *t;
        bool                         ok;
        snprintf(name, sizeof(name), "%s%s", prefix, p->name);
        t = gdn__st_find(f, name);
        if (!t)
            return gdn__fail(m->ctx, GDN_STATUS_INVALID_ARGUMENT, "%s: tensor '%s' is missing",
                             path, name);
        ok = t->ndim == p->ndim && !memcmp(t->shape, p->shape, (size_t)p->ndim * sizeof(int64_t));
        if (!ok && p->ndim == 3) /* conv weights may come as [C, W] */
            ok = t->ndim == 2 && t->shape[0] == p->shape[0] && t->shape[1] == p->shape[2];
        if (!ok) {
            char want[96] = "", got[96] = "";
            for (int32_t d = 0; d < p->ndim; d++)
                snprintf(want + strlen(want), sizeof(want) - strlen(want), "%s%lld", d ? ", " : "",
                         (long long)p->shape[d]);
            for (int32_t d = 0; d < t->ndim && d < 8; d++)
                snprintf(got + strlen(got), sizeof(got) - strlen(got), "%s%lld", d ? ", " : "",
                         (long long)t->shape[d]);
            return gdn__fail(m->ctx, GDN_STATUS_SHAPE_MISMATCH,
                             "%s: tensor '%s' has shape [%s], the model needs [%s]", path, name,
                             got, want);
        }
        out[i] = gdn__malloc(t->numel ? (size_t)t->numel * sizeof(float) : 1);
        if (!out[i])
            return gdn__fail(m->ctx, GDN_STATUS_OUT_OF_HOST_MEMORY, "%s: out of memory", path);
        if (gdn__st_read_f32(f, t, out[i], &err))
            return st_fail(m->ctx, GDN_STATUS_IO, &err);
        for (int64_t j = 0; j < t->numel; j++)
            if (!isfinite(out[i][j]))
                return gdn__fail(m->ctx, GDN_STATUS_INVALID_ARGUMENT,
                                 "%s: tensor '%s' holds a non-finite value at element %lld", path,
                                 name, (long long)j);
    }
    return st;
}

static void free_set(float **b, int32_t n)
{
    for (int32_t i = 0; b && i < n; i++)
        gdn__free(b[i]);
    gdn__free(b);
}

/* Load parameters (and optimizer state when `opt`) from an open file. */
static gdn_status load_into(gdn_model *m, struct gdn__st_file *f, const char *path, bool opt)
{
    float     **w = gdn__calloc((size_t)m->n_params, sizeof(float *));
    float     **mm = opt ? gdn__calloc((size_t)m->n_params, sizeof(float *)) : NULL;
    float     **vv = opt ? gdn__calloc((size_t)m->n_params, sizeof(float *)) : NULL;
    gdn_status  st = GDN_STATUS_OK;
    const char *s;
    long long   step = 0;
    if (!w || (opt && (!mm || !vv)))
        st = gdn__fail(m->ctx, GDN_STATUS_OUT_OF_HOST_MEMORY, "%s: out of memory", path);
    if (!st)
        st = read_set(m, f, path, "", w);
    if (!st && opt) {
        s = gdn__st_meta(f, "gdn.optimizer_step");
        if (!s || sscanf(s, "%lld", &step) != 1 || step < 0)
            st = gdn__fail(m->ctx, GDN_STATUS_INVALID_ARGUMENT,
                           "%s: optimizer state without a valid gdn.optimizer_step", path);
        if (!st)
            st = read_set(m, f, path, "optimizer.exp_avg.", mm);
        if (!st)
            st = read_set(m, f, path, "optimizer.exp_avg_sq.", vv);
        for (int32_t i = 0; !st && i < m->n_params; i++)
            for (int64_t j = 0; j < gdn_tensor_numel(m->params[i].v); j++)
                if (vv[i][j] < 0) {
                    st = gdn__fail(m->ctx, GDN_STATUS_INVALID_ARGUMENT,
                                   "%s: optimizer.exp_avg_sq.%s is negative", path,
                                   m->params[i].name);
                    break;
                }
    }
    /* everything read and checked: now write the device tensors */
    for (int32_t i = 0; !st && i < m->n_params; i++) {
        struct gdn__param *p = &m->params[i];
        size_t             n = (size_t)gdn_tensor_numel(p->w) * sizeof(float);
        st                   = gdn_tensor_write(p->w, w[i], 0, n);
        if (!st && opt)
            st = gdn_tensor_write(p->m, mm[i], 0, n);
        if (!st && opt)
            st = gdn_tensor_write(p->v, vv[i], 0, n);
    }
    if (!st && opt)
        m->opt_step = step;
    free_set(w, m->n_params);
    free_set(mm, m->n_params);
    free_set(vv, m->n_params);
    return st;
}

gdn_status gdn_model_load_weights(gdn_model *m, const char *path)
{
    struct gdn__st_file *f = NULL;
    struct gdn__st_err   err;
    gdn_status           st;
    if (!m)
        return GDN_STATUS_INVALID_ARGUMENT;
    if (!path)
        return gdn__fail(m->ctx, GDN_STATUS_INVALID_ARGUMENT, "gdn_model_load_weights: path is NULL");
    if ((st = gdn__st_open(path, &f, &err)))
        return st_fail(m->ctx, st, &err);
    st = load_into(m, f, path, false);
    gdn__st_close(f);
    return st;
}

gdn_status gdn_model_load(gdn_context *ctx, const char *path, gdn_model **out)
{
    struct gdn__st_file *f = NULL;
    struct gdn__st_err   err;
    gdn_model_config     cfg;
    const char          *s;
    gdn_status           st;
    if (!out)
        return ctx ? gdn__fail(ctx, GDN_STATUS_INVALID_ARGUMENT, "gdn_model_load: out is NULL")
                   : GDN_STATUS_INVALID_ARGUMENT;
    *out = NULL;
    if (!ctx)
        return GDN_STATUS_INVALID_ARGUMENT;
    if (!path)
        return gdn__fail(ctx, GDN_STATUS_INVALID_ARGUMENT, "gdn_model_load: path is NULL");
    if ((st = gdn__st_open(path, &f, &err)))
        return st_fail(ctx, st, &err);
    s = gdn__st_meta(f, "gdn.config");
    if (!s)
        st = gdn__fail(ctx, GDN_STATUS_INVALID_ARGUMENT,
                       "%s: no gdn.config in the metadata (not written by gdn_model_save; use "
                       "gdn_model_load_weights with a configuration)",
                       path);
    if (!st)
        st = config_parse(ctx, path, s, &cfg);
    if (!st)
        st = gdn__model_config_check(ctx, &cfg);
    if (!st)
        st = gdn__model_alloc(ctx, &cfg, out);
    if (!st)
        st = load_into(*out, f, path, gdn__st_meta(f, "gdn.optimizer_step") != NULL);
    if (st) {
        gdn_model_destroy(*out);
        *out = NULL;
    }
    gdn__st_close(f);
    return st;
}

gdn_status gdn_checkpoint_meta(const char *path, const char *key, char *buf, size_t cap)
{
    struct gdn__st_file *f = NULL;
    struct gdn__st_err   err;
    const char          *v;
    gdn_status           st;
    if (!path || !key || !buf || !cap)
        return GDN_STATUS_INVALID_ARGUMENT;
    if ((st = gdn__st_open(path, &f, &err)))
        return st;
    v = gdn__st_meta(f, key);
    if (v)
        snprintf(buf, cap, "%s", v);
    else
        st = GDN_STATUS_INVALID_ARGUMENT;
    gdn__st_close(f);
    return st;
}

/* ------------------------------------------------------- fla config.json */

static bool js_int(json_t *o, const char *key, int64_t lo, int64_t hi, int32_t *out, bool *bad)
{
    json_t *v = json_object_get(o, key);
    if (!v || json_is_null(v))
        return false;
    if (!json_is_integer(v) || json_integer_value(v) < lo || json_integer_value(v) > hi) {
        *bad = true;
        return false;
    }
    *out = (int32_t)json_integer_value(v);
    return true;
}

static bool js_num(json_t *o, const char *key, double *out, bool *bad)
{
    json_t *v = json_object_get(o, key);
    if (!v || json_is_null(v))
        return false;
    if (!json_is_number(v) || !isfinite(json_number_value(v))) {
        *bad = true;
        return false;
    }
    *out = json_number_value(v);
    return true;
}

static bool js_true(json_t *o, const char *key, bool dflt)
{
    json_t *v = json_object_get(o, key);
    return json_is_boolean(v) ? json_is_true(v) : dflt;
}

gdn_status gdn_model_config_from_fla(const char *path, gdn_model_config *c)
{
    json_error_t err;
    json_t      *o, *attn, *mt;
    bool         bad = false;
    int32_t      L = 0, H = 0, hd = 0, hv = 0, inter = 0;
    double       ev = 2.0, ratio = 4.0, eps = 1e-6, theta = 10000;
    if (!path || !c)
        return GDN_STATUS_INVALID_ARGUMENT;
    gdn_model_config_init(c);
    o = json_load_file(path, JSON_REJECT_DUPLICATES, &err);
    if (!o)
        return err.line <= 0 && err.position == 0 ? GDN_STATUS_IO : GDN_STATUS_INVALID_ARGUMENT;
    if (!json_is_object(o)) {
        json_decref(o);
        return GDN_STATUS_INVALID_ARGUMENT;
    }
    mt = json_object_get(o, "model_type");
    if (json_is_string(mt) && strcmp(json_string_value(mt), "gated_deltanet")) {
        json_decref(o);
        return GDN_STATUS_UNSUPPORTED;
    }
    if (!js_true(o, "use_gate", true) || !js_true(o, "use_short_conv", true)) {
        json_decref(o);
        return GDN_STATUS_UNSUPPORTED;
    }
    c->d_model = 2048; /* fla GatedDeltaNetConfig defaults */
    c->vocab   = 32000;
    L          = 21;
    H          = 6;
    hd         = 256;
    c->gdn_conv = 4;
    js_int(o, "hidden_size", 1, 65536, &c->d_model, &bad);
    js_int(o, "vocab_size", 1, INT32_MAX, &c->vocab, &bad);
    js_int(o, "num_hidden_layers", 1, GDN_MODEL_MAX_LAYERS, &L, &bad);
    js_int(o, "num_heads", 1, 4096, &H, &bad);
    js_int(o, "head_dim", 1, 4096, &hd, &bad);
    js_num(o, "expand_v", &ev, &bad);
    js_int(o, "num_v_heads", 1, 4096, &hv, &bad);
    js_int(o, "conv_size", 2, 8, &c->gdn_conv, &bad);
    js_num(o, "norm_eps", &eps, &bad);
    js_num(o, "hidden_ratio", &ratio, &bad);
    js_int(o, "intermediate_size", 1, 1 << 20, &inter, &bad);
    c->gdn_neg_eigval = js_true(o, "allow_neg_eigval", false);
    c->tie_embeddings = js_true(o, "tie_word_embeddings", false);
    c->gdn_heads      = H;
    c->gdn_v_heads    = hv ? hv : H;
    c->gdn_head_k     = hd;
    c->gdn_head_v     = (int32_t)(hd * ev);
    c->norm_eps       = (float)eps;
    c->gdn_norm_eps   = (float)eps;
    /* fla GatedMLP: 256 * ceil(int(D * ratio * 2 / 3) / 256) */
    c->mlp_hidden = inter ? inter
                          : (int32_t)(256 * (((int64_t)(c->d_model * ratio * 2 / 3) + 255) / 256));
    for (int32_t i = 0; i < L; i++)
        c->layers[i] = 'g';
    c->layers[L] = '\0';
    attn         = json_object_get(o, "attn");
    if (json_is_object(attn)) {
        json_t *ly = json_object_get(attn, "layers");
        size_t  i;
        json_t *v;
        int32_t w = 0;
        if (js_true(attn, "qkv_bias", false)) {
            json_decref(o);
            return GDN_STATUS_UNSUPPORTED;
        }
        c->swa_heads = 0;
        js_int(attn, "num_heads", 1, 4096, &c->swa_heads, &bad);
        js_int(attn, "num_kv_heads", 1, 4096, &c->swa_kv_heads, &bad);
        if (!js_int(attn, "window_size", 1, 1 << 20, &w, &bad)) /* null: full attention */
            js_int(o, "max_position_embeddings", 1, 1 << 20, &w, &bad);
        c->swa_window = w ? w : 2048;
        js_num(attn, "rope_theta", &theta, &bad);
        c->rope_base    = (float)theta;
        c->swa_head_dim = c->swa_heads ? c->d_model / c->swa_heads : 0;
        if (!json_is_array(ly))
            bad = true;
        json_array_foreach(ly, i, v)
        {
            if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) >= L)
                bad = true;
            else
                c->layers[json_integer_value(v)] = 's';
        }
    }
    json_decref(o);
    if (bad)
        return GDN_STATUS_INVALID_ARGUMENT;
    {
        bool ok16 = c->gdn_head_k % 16 == 0 && c->gdn_head_v % 16 == 0 && c->gdn_head_k <= 256 &&
                    c->gdn_head_v <= 1024 && (!c->swa_heads || (c->swa_head_dim % 16 == 0 &&
                                                               c->swa_head_dim <= 256));
        if (!ok16)
            return GDN_STATUS_UNSUPPORTED;
    }
    return GDN_STATUS_OK;
}
