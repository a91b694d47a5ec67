/*
 * decode.c - the ring-buffer KV cache of sliding-window attention
 * (cl/swa/decode.cl): prefill's cache fill, and the decode step (attend
 * over splits of the ring, then combine and advance len/pos).
 */
#include <stdio.h>
#include <string.h>

#include "swa.h"
#include "tune/tune.h"

#define DECODE_CL "swa/decode.cl"

/* Plan of the decode kernels. */
struct decode_plan {
    int32_t wgd;   /* work-items per group: 32, 64 or 128 (-D WGD)        */
    int32_t gb;    /* query heads per attend group: divides G, <= wgd       */
    int32_t split; /* ring entries per attend group: a multiple of wgd      */
    int32_t S;     /* splits: ceil(W / split)                                */
};

/* Local memory of swa_decode_attend: q, acc [GB D], scores [GB WGD],
 * k_new [D], state [3 GB] floats. */
static size_t decode_local_bytes(int32_t D, const struct decode_plan *p)
{
    return sizeof(float) *
           ((size_t)p->gb * (2 * (size_t)D + (size_t)p->wgd) + (size_t)D + 3 * (size_t)p->gb);
}

/* Generic defaults (the tuning database will replace them): 64 work-items;
 * up to 8 query heads of a group share each key read; the ring is split so
 * that about two groups per compute unit are busy even at N = 1 (flash
 * decoding), in splits of at least 64 entries. */
static void decode_plan_default(gdn_context *ctx, const struct gdn_swa_shape *s, int32_t W,
                                struct decode_plan *p)
{
    int32_t G = s->Hq / s->Hkv, g;
    int64_t groups, want = 2 * (int64_t)(ctx->dev.info.compute_units ? ctx->dev.info.compute_units
                                                                      : 1);
    memset(p, 0, sizeof(*p));
    p->wgd = 64;
    p->gb  = 1;
    for (g = 8; g >= 1; g--)
        if (G % g == 0) {
            p->gb = g;
            break;
        }
    groups = (int64_t)s->N * s->Hkv * (G / p->gb);
    p->S   = (int32_t)((want + groups - 1) / groups);
    if (p->S > (W + p->wgd - 1) / p->wgd)
        p->S = (W + p->wgd - 1) / p->wgd;
    if (p->S < 1)
        p->S = 1;
}

static gdn_status decode_plan_fit(gdn_context *ctx, const struct gdn_swa_shape *s, int32_t W,
                                  struct decode_plan *p)
{
    const int32_t G = s->Hq / s->Hkv;
    while ((size_t)p->wgd > ctx->dev.info.max_work_group_size && p->wgd > 32)
        p->wgd /= 2;
    if ((size_t)p->wgd > ctx->dev.info.max_work_group_size)
        return gdn__fail(ctx, GDN_STATUS_UNSUPPORTED, "swa decode: work-groups too small");
    while (p->gb > 1 && (decode_local_bytes(s->D, p) > ctx->dev.info.local_mem_bytes ||
                         p->gb > p->wgd)) {
        do
            p->gb--;
        while (G % p->gb != 0);
    }
    if (decode_local_bytes(s->D, p) > ctx->dev.info.local_mem_bytes)
        return gdn__fail(ctx, GDN_STATUS_UNSUPPORTED,
                         "swa decode: %zu B of local memory needed, the device has %llu",
                         decode_local_bytes(s->D, p),
                         (unsigned long long)ctx->dev.info.local_mem_bytes);
    /* split: a multiple of wgd covering W in S pieces */
    p->split = (W + p->S - 1) / p->S;
    p->split = (p->split + p->wgd - 1) / p->wgd * p->wgd;
    p->S     = (W + p->split - 1) / p->split;
    return GDN_STATUS_OK;
}

/* Tuning space "swa/decode": WGD and GB (the split count follows from
 * them and the device as in decode_plan_default). Problem: the step's
 * shape (G = Hq / Hkv, D). */
static bool decode_space_valid(const int32_t *v, const void *problem, const struct gdn_device *dev)
{
    const struct gdn_swa_shape *s = problem;
    struct decode_plan          p;
    const int32_t               G = s->Hkv > 0 ? s->Hq / s->Hkv : 1;
    memset(&p, 0, sizeof(p));
    p.wgd = v[0], p.gb = v[1];
    return (size_t)p.wgd <= dev->info.max_work_group_size && p.gb <= p.wgd && G % p.gb == 0 &&
           decode_local_bytes(s->D, &p) <= dev->info.local_mem_bytes;
}

static void decode_space_defaults(int32_t *v, const void *problem, const struct gdn_device *dev)
{
    const struct gdn_swa_shape *s = problem;
    const int32_t               G = s->Hkv > 0 ? s->Hq / s->Hkv : 1;
    struct decode_plan          p;
    int32_t                     g;
    memset(&p, 0, sizeof(p));
    p.wgd = 64;
    p.gb  = 1;
    for (g = 8; g >= 1; g--)
        if (G % g == 0) {
            p.gb = g;
            break;
        }
    while ((size_t)p.wgd > dev->info.max_work_group_size && p.wgd > 32)
        p.wgd /= 2;
    while (p.gb > 1 && (decode_local_bytes(s->D, &p) > dev->info.local_mem_bytes || p.gb > p.wgd)) {
        do
            p.gb--;
        while (G % p.gb != 0);
    }
    v[0] = p.wgd, v[1] = p.gb;
}

static const struct gdn_tune_param decode_params[] = {
    {"WGD", 64, 3, {32, 64, 128}},
    {"GB", 1, 4, {1, 2, 4, 8}},
};
const struct gdn_tune_space gdn__swa_decode_space = {
    "swa/decode", (int32_t)GDN_ARRAY_SIZE(decode_params), decode_params, decode_space_valid,
    decode_space_defaults};

static gdn_status decode_kernel(gdn_context *ctx, int32_t D, const struct decode_plan *p,
                                const char *entry, cl_kernel *out)
{
    char                    opts[128];
    const struct gdn_define defs[] = {{"D", D}, {"WGD", p->wgd}};
    if (!gdn__defines_format(defs, GDN_ARRAY_SIZE(defs), opts, sizeof(opts)))
        return gdn__fail(ctx, GDN_STATUS_INTERNAL, "swa decode: options too long");
    return gdn__kernel_get(ctx, DECODE_CL, opts, entry, out);
}

gdn_status gdn__swa_cache_fill(gdn_context *ctx, const struct gdn_swa_shape *s,
                               const struct gdn_swa_index *idx, cl_mem k, cl_mem v,
                               const gdn_swa_cache *cache, int32_t W)
{
    struct decode_plan p;
    cl_kernel          kr;
    cl_uint            a = 0;
    size_t             global[3], local[3] = {64, 1, 1};
    gdn_status         st;

    memset(&p, 0, sizeof(p));
    p.wgd = 64; /* only the -D set is shared with the step kernels */
    while (local[0] > ctx->dev.info.max_work_group_size && local[0] > 1)
        local[0] /= 2;
    if ((st = decode_kernel(ctx, s->D, &p, "swa_cache_fill", &kr)))
        return st;
    if ((st = gdn__arg_mem(ctx, kr, a++, k)) || (st = gdn__arg_mem(ctx, kr, a++, v)) ||
        (st = gdn__arg_mem(ctx, kr, a++, idx->seq_off)) ||
        (st = gdn__arg_mem(ctx, kr, a++, idx->pos_mem ? idx->pos_mem : idx->seq_off)) ||
        (st = gdn__arg_int(ctx, kr, a++, idx->pos_mem ? 1 : 0)) ||
        (st = gdn__arg_mem(ctx, kr, a++, cache->k->mem)) ||
        (st = gdn__arg_mem(ctx, kr, a++, cache->v->mem)) ||
        (st = gdn__arg_mem(ctx, kr, a++, cache->len->mem)) ||
        (st = gdn__arg_mem(ctx, kr, a++, cache->pos->mem)) ||
        (st = gdn__arg_int(ctx, kr, a++, s->Hkv)) || (st = gdn__arg_int(ctx, kr, a++, W)))
        return st;
    global[0] = ((size_t)W * (size_t)s->D + local[0] - 1) / local[0] * local[0];
    global[1] = (size_t)s->Hkv;
    global[2] = (size_t)s->N;
    return gdn__launch(ctx, kr, 3, global, local, NULL);
}

gdn_status gdn__swa_decode_step(gdn_context *ctx, const struct gdn_swa_shape *s, cl_mem q,
                                cl_mem k, cl_mem v, const gdn_swa_cache *cache, int32_t W,
                                cl_mem o)
{
    struct decode_plan p;
    cl_kernel          ka, kc;
    cl_mem             part = NULL, freq = NULL;
    cl_uint            a    = 0;
    const int32_t      G    = s->Hq / s->Hkv, D = s->D;
    size_t             global[3], local[3], nbytes;
    gdn_status         st;

    decode_plan_default(ctx, s, W, &p);
    {
        int32_t vals[GDN_TUNE_MAX_PARAMS];
        char    bucket[32];
        snprintf(bucket, sizeof(bucket), "D%d.G%d", (int)D, (int)G);
        gdn__tune_lookup(ctx, &gdn__swa_decode_space, bucket, s, vals, NULL);
        p.wgd = vals[0], p.gb = vals[1];
        /* the split count for the chosen head block (decode_plan_default) */
        {
            int64_t groups = (int64_t)s->N * s->Hkv * (G / p.gb);
            int64_t want   = 2 * (int64_t)(ctx->dev.info.compute_units
                                               ? ctx->dev.info.compute_units
                                               : 1);
            p.S            = (int32_t)((want + groups - 1) / groups);
            if (p.S > (W + p.wgd - 1) / p.wgd)
                p.S = (W + p.wgd - 1) / p.wgd;
            if (p.S < 1)
                p.S = 1;
        }
    }
    if ((st = decode_plan_fit(ctx, s, W, &p)))
        return st;
    if ((st = decode_kernel(ctx, D, &p, "swa_decode_attend", &ka)) ||
        (st = decode_kernel(ctx, D, &p, "swa_decode_combine", &kc)))
        return st;
    nbytes = (size_t)s->N * (size_t)s->Hq * (size_t)p.S * (size_t)(D + 2) * sizeof(float);
    if ((st = gdn__buffer_create(ctx, nbytes, &part)))
        return st;
    if ((s->flags & GDN_SWA_ROPE) && (st = gdn__swa_freq_table(ctx, D, s->base, &freq)))
        goto done;
    if ((st = gdn__arg_mem(ctx, ka, a++, q)) || (st = gdn__arg_mem(ctx, ka, a++, k)) ||
        (st = gdn__arg_mem(ctx, ka, a++, v)) ||
        (st = gdn__arg_mem(ctx, ka, a++, cache->k->mem)) ||
        (st = gdn__arg_mem(ctx, ka, a++, cache->v->mem)) ||
        (st = gdn__arg_mem(ctx, ka, a++, cache->len->mem)) ||
        (st = gdn__arg_mem(ctx, ka, a++, cache->pos->mem)) ||
        (st = gdn__arg_mem(ctx, ka, a++, freq ? freq : part)) ||
        (st = gdn__arg_mem(ctx, ka, a++, part)) ||
        (st = gdn__arg_local(ctx, ka, a++, decode_local_bytes(D, &p))) ||
        (st = gdn__arg_int(ctx, ka, a++, s->Hq)) || (st = gdn__arg_int(ctx, ka, a++, s->Hkv)) ||
        (st = gdn__arg_int(ctx, ka, a++, W)) || (st = gdn__arg_int(ctx, ka, a++, p.gb)) ||
        (st = gdn__arg_int(ctx, ka, a++, p.split)) || (st = gdn__arg_int(ctx, ka, a++, p.S)) ||
        (st = gdn__arg_int(ctx, ka, a++, freq ? 1 : 0)) ||
        (st = gdn__arg_float(ctx, ka, a++, s->scale * 1.4426950408889634f)))
        goto done;
    local[0] = (size_t)p.wgd, local[1] = 1, local[2] = 1;
    global[0] = (size_t)p.S * (size_t)p.wgd;
    global[1] = (size_t)s->Hkv * (size_t)(G / p.gb);
    global[2] = (size_t)s->N;
    if ((st = gdn__launch(ctx, ka, 3, global, local, NULL)))
        goto done;
    a = 0;
    if ((st = gdn__arg_mem(ctx, kc, a++, part)) || (st = gdn__arg_mem(ctx, kc, a++, o)) ||
        (st = gdn__arg_mem(ctx, kc, a++, cache->len->mem)) ||
        (st = gdn__arg_mem(ctx, kc, a++, cache->pos->mem)) ||
        (st = gdn__arg_int(ctx, kc, a++, s->Hq)) || (st = gdn__arg_int(ctx, kc, a++, p.S)))
        goto done;
    global[0] = (size_t)p.wgd;
    global[1] = (size_t)s->Hq;
    st        = gdn__launch(ctx, kc, 3, global, local, NULL);
done:
    gdn__buffer_release(part);
    gdn__buffer_release(freq);
    return st;
}
