/*
 * infer.c - inference: the per-sequence state of every layer, prefill of a
 * packed batch of prompts, and decode steps for many sequences at once.
 */
#include "model.h"

#include <string.h>

struct gdn_model_state {
    gdn_model               *m;
    int32_t                  n;
    struct gdn__layer_state *ls;
    gdn_tensor              *last; /* I32 [N]: each prompt's last row (prefill) */
};

static gdn_status state_tensor(gdn_model *m, int32_t ndim, const int64_t *shape, gdn_dtype dt,
                               gdn_tensor **out)
{
    gdn_status st = gdn_tensor_create(m->ctx, dt, ndim, shape, out);
    if (!st && dt == GDN_DTYPE_F32)
        st = gdn_tensor_fill(*out, 0.0f);
    return st;
}

void gdn_model_state_destroy(gdn_model_state *s)
{
    if (!s)
        return;
    for (int32_t i = 0; s->ls && i < s->m->n_layers; i++) {
        struct gdn__layer_state *ls = &s->ls[i];
        for (int j = 0; j < 3; j++)
            gdn_tensor_destroy(ls->conv[j]);
        gdn_tensor_destroy(ls->S);
        gdn_tensor_destroy(ls->cache.k);
        gdn_tensor_destroy(ls->cache.v);
        gdn_tensor_destroy(ls->cache.len);
        gdn_tensor_destroy(ls->cache.pos);
    }
    gdn_tensor_destroy(s->last);
    gdn__free(s->ls);
    gdn__free(s);
}

gdn_status gdn_model_state_create(gdn_model *m, int32_t n, gdn_model_state **out)
{
    static const char *fn = "gdn_model_state_create";
    gdn_model_state   *s;
    struct gdn__dims   d;
    gdn_status         st = GDN_STATUS_OK;
    if (!m)
        return GDN_STATUS_INVALID_ARGUMENT;
    if (!out)
        return gdn__fail(m->ctx, GDN_STATUS_INVALID_ARGUMENT, "%s: out is NULL", fn);
    *out = NULL;
    if (n < 1)
        return gdn__fail(m->ctx, GDN_STATUS_INVALID_ARGUMENT, "%s: n_seqs = %d must be >= 1", fn,
                         n);
    gdn__model_dims(&m->cfg, &d);
    s = gdn__calloc(1, sizeof(*s));
    if (!s || !(s->ls = gdn__calloc((size_t)m->n_layers, sizeof(*s->ls)))) {
        gdn__free(s);
        return gdn__fail(m->ctx, GDN_STATUS_OUT_OF_HOST_MEMORY, "%s: out of memory", fn);
    }
    s->m = m;
    s->n = n;
    for (int32_t i = 0; !st && i < m->n_layers; i++) {
        struct gdn__layer_state *ls = &s->ls[i];
        switch (m->layers[i].kind) {
        case 'g':
            st = state_tensor(m, 3, (const int64_t[]){n, d.gH * d.gK, d.gW - 1}, GDN_DTYPE_F32,
                              &ls->conv[0]);
            if (!st)
                st = state_tensor(m, 3, (const int64_t[]){n, d.gH * d.gK, d.gW - 1},
                                  GDN_DTYPE_F32, &ls->conv[1]);
            if (!st)
                st = state_tensor(m, 3, (const int64_t[]){n, d.gHV * d.gV, d.gW - 1},
                                  GDN_DTYPE_F32, &ls->conv[2]);
            if (!st)
                st = state_tensor(m, 4,
                                  (const int64_t[]){n, d.gHV * gdn__gd_split(d.gV), d.gK,
                                                    d.gV / gdn__gd_split(d.gV)},
                                  GDN_DTYPE_F32, &ls->S);
            break;
        case 's':
            st = state_tensor(m, 4, (const int64_t[]){n, d.sHkv, d.sW, d.sD}, GDN_DTYPE_F32,
                              &ls->cache.k);
            if (!st)
                st = state_tensor(m, 4, (const int64_t[]){n, d.sHkv, d.sW, d.sD}, GDN_DTYPE_F32,
                                  &ls->cache.v);
            if (!st)
                st = state_tensor(m, 1, (const int64_t[]){n}, GDN_DTYPE_I32, &ls->cache.len);
            if (!st)
                st = state_tensor(m, 1, (const int64_t[]){n}, GDN_DTYPE_I32, &ls->cache.pos);
            if (!st) { /* an empty cache: no tokens, positions from 0 */
                int32_t *z = gdn__calloc((size_t)n, sizeof(int32_t));
                if (!z)
                    st = gdn__fail(m->ctx, GDN_STATUS_OUT_OF_HOST_MEMORY, "%s: out of memory", fn);
                if (!st)
                    st = gdn_tensor_write(ls->cache.len, z, 0, (size_t)n * sizeof(int32_t));
                if (!st)
                    st = gdn_tensor_write(ls->cache.pos, z, 0, (size_t)n * sizeof(int32_t));
                gdn__free(z);
            }
            break;
        default:
            st = state_tensor(m, 3, (const int64_t[]){n, d.mConvC, d.mW - 1}, GDN_DTYPE_F32,
                              &ls->conv[0]);
            if (!st)
                st = state_tensor(m, 4, (const int64_t[]){n, d.mH, d.mP, d.mN}, GDN_DTYPE_F32,
                                  &ls->S);
            break;
        }
    }
    if (!st)
        st = state_tensor(m, 1, (const int64_t[]){n}, GDN_DTYPE_I32, &s->last);
    if (st) {
        gdn_model_state_destroy(s);
        return st;
    }
    *out = s;
    return GDN_STATUS_OK;
}

static gdn_status check_state(gdn_model *m, const char *fn, gdn_model_state *s,
                              const gdn_tensor *logits)
{
    if (!s || s->m != m)
        return gdn__fail(m->ctx, GDN_STATUS_INVALID_ARGUMENT,
                         "%s: state is NULL or of another model", fn);
    if (!logits)
        return gdn__fail(m->ctx, GDN_STATUS_INVALID_ARGUMENT, "%s: logits is NULL", fn);
    return gdn__check_tensor(m->ctx, logits, "logits", GDN_DTYPE_F32, 2,
                             (const int64_t[]){s->n, m->cfg.vocab});
}

/* The blocks over x [rows, D] in place, then the head. */
static gdn_status run_blocks(gdn_model *m, gdn_model_state *s, enum gdn__mode mode,
                             const struct gdn__seqs *seqs, gdn_tensor *x)
{
    gdn_status st = GDN_STATUS_OK;
    for (int32_t i = 0; !st && i < m->n_layers; i++) {
        struct gdn__arena la = {m->ctx, NULL, NULL, 0, 0};
        gdn_tensor       *y;
        st = gdn__block_forward(m, i, mode, seqs, x, &y, &la, NULL, &s->ls[i]);
        gdn__arena_free(&la);
    }
    return st;
}

gdn_status gdn_model_prefill(gdn_model *m, gdn_model_state *s, const gdn_model_batch *batch,
                             gdn_tensor *logits)
{
    static const char *fn = "gdn_model_prefill";
    struct gdn__arena  ar = {0};
    struct gdn__seqs   seqs;
    gdn_tensor        *ids, *x, *xl;
    int32_t           *last = NULL;
    gdn_status         st;
    if (!m)
        return GDN_STATUS_INVALID_ARGUMENT;
    if ((st = check_state(m, fn, s, logits)))
        return st;
    if (!batch)
        return gdn__fail(m->ctx, GDN_STATUS_INVALID_ARGUMENT, "%s: batch is NULL", fn);
    if ((st = gdn__batch_seqs(m->ctx, fn, batch, &seqs)))
        return st;
    ar.ctx = m->ctx;
    if (seqs.n != s->n)
        st = gdn__fail(m->ctx, GDN_STATUS_INVALID_ARGUMENT,
                       "%s: the batch has %d sequences, the state %d", fn, seqs.n, s->n);
    for (int32_t i = 0; !st && i < seqs.n; i++)
        if (seqs.off[i + 1] == seqs.off[i])
            st = gdn__fail(m->ctx, GDN_STATUS_INVALID_ARGUMENT,
                           "%s: prompt %d is empty (every prompt needs a token)", fn, i);
    if (!st && !(last = gdn__malloc((size_t)seqs.n * sizeof(int32_t))))
        st = gdn__fail(m->ctx, GDN_STATUS_OUT_OF_HOST_MEMORY, "%s: out of memory", fn);
    if (!st) {
        for (int32_t i = 0; i < seqs.n; i++)
            last[i] = seqs.off[i + 1] - 1;
        st = gdn_tensor_write(s->last, last, 0, (size_t)seqs.n * sizeof(int32_t));
    }
    if (!st)
        st = gdn__arena_view(&ar, batch->ids, 1, (const int64_t[]){seqs.T}, &ids);
    if (!st)
        st = gdn__embed(m, &ar, ids, &x);
    if (!st)
        st = run_blocks(m, s, GDN__PREFILL, &seqs, x);
    /* the last row of each prompt, gathered by the embedding op */
    if (!st)
        st = gdn__arena_new(&ar, 2, (const int64_t[]){seqs.n, m->cfg.d_model}, GDN_DTYPE_F32, &xl);
    if (!st)
        st = gdn_embedding_forward(m->ctx, NULL, x, s->last, xl);
    if (!st)
        st = gdn__head(m, &ar, xl, logits, NULL);
    gdn__free(last);
    gdn__free(seqs.off);
    gdn__arena_free(&ar);
    return st;
}

gdn_status gdn_model_decode(gdn_model *m, gdn_model_state *s, const gdn_tensor *ids,
                            gdn_tensor *logits)
{
    static const char *fn = "gdn_model_decode";
    struct gdn__arena  ar = {0};
    struct gdn__seqs   seqs = {0};
    gdn_tensor        *x;
    gdn_status         st;
    if (!m)
        return GDN_STATUS_INVALID_ARGUMENT;
    if ((st = check_state(m, fn, s, logits)))
        return st;
    if ((st = gdn__check_tensor(m->ctx, ids, "ids", GDN_DTYPE_I32, 1, (const int64_t[]){s->n})))
        return st;
    ar.ctx = m->ctx;
    seqs.n = s->n;
    seqs.T = s->n;
    st     = gdn__embed(m, &ar, ids, &x);
    if (!st)
        st = run_blocks(m, s, GDN__DECODE, &seqs, x);
    if (!st)
        st = gdn__head(m, &ar, x, logits, NULL);
    gdn__arena_free(&ar);
    return st;
}
