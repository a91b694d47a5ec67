/*
 * attn.c - the flash-attention stages of sliding-window attention and their
 * plans: forward (cl/swa/fwd.cl), and the backward's delta (bwd_prep.cl),
 * dq (bwd_dq.cl) and dk/dv (bwd_dkdv.cl).
 *
 * The three tile kernels share one plan shape (query rows BQ, keys BKV, the
 * D-slice DS of score products and the D-chunk DVC of output products, 256
 * work-items as 16 x 16); each has its own default function and local
 * memory formula. The -D options depend on D only, so a model with one head
 * dim builds three programs (plus the -D-free rope/prep kernels).
 */
#include <stdio.h>
#include <string.h>

#include "swa.h"
#include "tune/tune.h"

#define WG 256 /* work-items of the tile kernels (16 x 16) */

enum attn_stage { STAGE_FWD, STAGE_DQ, STAGE_DKDV };

static const char *const stage_file[]  = {"swa/fwd.cl", "swa/bwd_dq.cl", "swa/bwd_dkdv.cl"};
static const char *const stage_entry[] = {"swa_fwd", "swa_bwd_dq", "swa_bwd_dkdv"};

/* Plan of one tile stage. */
struct attn_plan {
    int32_t bq;  /* query rows per tile: 16, 32 or 64             */
    int32_t bkv; /* keys per tile: 16, 32 or 64                    */
    int32_t ds;  /* D-slice of score products: 16 or 32, | D        */
    int32_t dvc; /* D-chunk of output products: 16k <= 64, | D      */
    int32_t kwin; /* KWIN (host side): key tiles (fwd, dq) or (query head,
                     query tile) pairs (dkdv) per launch, 0 = all in one */
};

/* ------------------------------------------------ windows on llvmpipe */

/* Mesa llvmpipe silently ends a work-item's loops after 65535 iterations in
 * all (LP_MAX_TGSI_LOOP_ITERATIONS); one launch over a long window visits
 * hundreds of key tiles per work-group, each worth thousands of loop
 * iterations. There the host runs windows of KWIN tiles per launch. */
static bool loop_limited(const struct gdn_device *dev)
{
    return strstr(dev->info.name, "llvmpipe") != NULL;
}

/* KWIN values a tuning space may take (0 = one launch). */
#define ATTN_KWIN_VALUES 15, {0, 1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 128, 256}

/* Loop iterations of one GDN_TILE_MMA, counting every loop as not unrolled
 * (an upper bound; llvmpipe unrolls the short ones). */
static int64_t mma_iters(int64_t tm, int64_t tn, int64_t kd)
{
    return kd * (3 + tm + tn + tm * tn);
}

/* Upper bound of the loop iterations a work-item spends per visited tile
 * (fwd, dq: key tile; dkdv: (query head, query tile) pair), and outside the
 * tile loop. */
static void attn_iters(enum attn_stage stage, int32_t D, const struct attn_plan *p,
                       int64_t *per_tile, int64_t *fixed)
{
    const int64_t tq = p->bq / 16, tk = p->bkv / 16, tc = p->dvc / 16;
    const int64_t sl = D / p->ds, ch = D / p->dvc;
    const int64_t st = (int64_t)(p->bq + p->bkv) * p->ds / 256 + 4;
    const int64_t sv = (int64_t)(stage == STAGE_DKDV ? p->bq : p->bkv) * p->dvc / 256 + 2;
    switch (stage) {
    case STAGE_FWD:
        *per_tile = sl * (1 + st + mma_iters(tq, tk, p->ds)) + tq * (24 + 2 * tk + ch * tc) +
                    ch * (1 + sv + mma_iters(tq, tc, p->bkv));
        break;
    case STAGE_DQ:
        *per_tile = 2 * sl * (1 + st + mma_iters(tq, tk, p->ds)) + 2 * tq * (1 + tk) +
                    ch * (1 + sv + mma_iters(tq, tc, p->bkv));
        break;
    default:
        *per_tile = 2 * sl * (1 + st + mma_iters(tk, tq, p->ds)) + 4 * tk * (1 + tq) +
                    2 * ch * (1 + sv + mma_iters(tk, tc, p->bq));
        break;
    }
    *fixed = 4 * ch * (tq > tk ? tq : tk) * (1 + tc) + 256;
}

/* The largest window that keeps a work-item at half of llvmpipe's limit
 * (at least 1). */
static int32_t attn_kwin_max(enum attn_stage stage, int32_t D, const struct attn_plan *p)
{
    int64_t per, fixed, w;
    attn_iters(stage, D, p, &per, &fixed);
    w = (32768 - fixed) / per;
    return w < 1 ? 1 : w > 256 ? 256 : (int32_t)w;
}

/* Default KWIN: 0 (one launch) except on llvmpipe, where it is the largest
 * legal value within attn_kwin_max. */
static int32_t attn_kwin_default(const struct gdn_device *dev, enum attn_stage stage, int32_t D,
                                 const struct attn_plan *p)
{
    static const int32_t vals[] = {1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 128, 256};
    int32_t              cap = attn_kwin_max(stage, D, p), best = 1;
    size_t               i;
    if (!loop_limited(dev))
        return 0;
    for (i = 0; i < GDN_ARRAY_SIZE(vals); i++)
        if (vals[i] <= cap)
            best = vals[i];
    return best;
}

/* Largest multiple of 16 that is <= cap and divides D. */
static int32_t chunk_of(int32_t D, int32_t cap)
{
    int32_t c;
    for (c = cap; c > 16; c -= 16)
        if (D % c == 0)
            return c;
    return 16;
}

/* Generic defaults (the tuning database will replace them): 64 x 64 tiles,
 * 4 x 4 score micro-tiles per work-item; slices/chunks as wide as local
 * memory comfortably allows under NVIDIA's 48 KiB (33-37 KiB at D = 128). */
static void fwd_plan_default(int32_t D, struct attn_plan *p)
{
    p->bq  = 64;
    p->bkv = 64;
    p->ds  = D % 32 == 0 ? 32 : 16;
    p->dvc = chunk_of(D, 64);
}

/* Local memory of a stage in bytes (the formulas of the kernel headers). */
static size_t attn_plan_local_bytes(enum attn_stage stage, const struct attn_plan *p)
{
    size_t sa_s = (size_t)(p->bq + p->bkv) * (size_t)(p->ds + 1);
    size_t sa_v = (size_t)(stage == STAGE_DKDV ? p->bq : p->bkv) * (size_t)p->dvc;
    size_t sa   = sa_s > sa_v ? sa_s : sa_v;
    switch (stage) {
    case STAGE_FWD:
        return 4 * (sa + (size_t)p->bq * (p->bkv + 1) + 17 * (size_t)p->bq);
    case STAGE_DQ:
        return 4 * (sa + (size_t)p->bq * (p->bkv + 1) + 2 * (size_t)p->bq);
    default:
        return 4 * (sa + (size_t)p->bkv * (p->bq + 1) + 2 * (size_t)p->bq);
    }
}

static bool attn_plan_valid(int32_t D, const struct attn_plan *p)
{
    return (p->bq == 16 || p->bq == 32 || p->bq == 64) &&
           (p->bkv == 16 || p->bkv == 32 || p->bkv == 64) && (p->ds == 16 || p->ds == 32) &&
           D % p->ds == 0 && p->dvc >= 16 && p->dvc <= 64 && p->dvc % 16 == 0 && D % p->dvc == 0;
}

/* Fit to the device's local memory: narrow the chunk, then the slice, then
 * the tiles. */
static gdn_status attn_plan_fit(gdn_context *ctx, enum attn_stage stage, int32_t D,
                                struct attn_plan *p)
{
    const uint64_t lmem = ctx->dev.info.local_mem_bytes;

    if (!attn_plan_valid(D, p))
        return gdn__fail(ctx, GDN_STATUS_UNSUPPORTED,
                         "swa %s: invalid plan BQ=%d BKV=%d DS=%d DVC=%d for D=%d",
                         stage_entry[stage], (int)p->bq, (int)p->bkv, (int)p->ds, (int)p->dvc,
                         (int)D);
    if (ctx->dev.info.max_work_group_size < WG)
        return gdn__fail(ctx, GDN_STATUS_UNSUPPORTED,
                         "swa %s: needs work-groups of %d work-items, the device allows %u",
                         stage_entry[stage], WG, (unsigned)ctx->dev.info.max_work_group_size);
    while (attn_plan_local_bytes(stage, p) > lmem) {
        if (p->dvc > 16)
            p->dvc = chunk_of(D, p->dvc - 16);
        else if (p->ds > 16)
            p->ds = 16;
        else if (p->bkv > 16 && p->bkv >= p->bq)
            p->bkv /= 2;
        else if (p->bq > 16)
            p->bq /= 2;
        else
            return gdn__fail(ctx, GDN_STATUS_UNSUPPORTED,
                             "swa %s: no tile shape fits %llu B of local memory",
                             stage_entry[stage], (unsigned long long)lmem);
    }
    return GDN_STATUS_OK;
}

/* ------------------------------------------------------ tuning spaces */

void gdn__swa_bucket(int32_t D, char *buf, size_t cap)
{
    snprintf(buf, cap, "D%d", (int)D);
}

static void attn_plan_from(const int32_t *v, struct attn_plan *p)
{
    p->bq = v[0], p->bkv = v[1], p->ds = v[2], p->dvc = v[3], p->kwin = v[4];
}

static bool attn_space_valid(enum attn_stage stage, const int32_t *v, const void *problem,
                             const struct gdn_device *dev)
{
    const struct gdn_swa_shape *s = problem;
    struct attn_plan            p;
    attn_plan_from(v, &p);
    if (!attn_plan_valid(s->D, &p) || dev->info.max_work_group_size < WG ||
        attn_plan_local_bytes(stage, &p) > dev->info.local_mem_bytes || p.kwin < 0)
        return false;
    /* llvmpipe: windows small enough for its loop limit */
    return !loop_limited(dev) || (p.kwin > 0 && p.kwin <= attn_kwin_max(stage, s->D, &p));
}

/* Today's plan: the stage's default narrowed to the device's local memory
 * (attn_plan_fit's order), then the llvmpipe window. */
static void attn_space_defaults(enum attn_stage stage, int32_t *v, const void *problem,
                                const struct gdn_device *dev)
{
    const struct gdn_swa_shape *s = problem;
    const uint64_t              lmem = dev->info.local_mem_bytes;
    struct attn_plan            p;
    fwd_plan_default(s->D, &p); /* dq and dkdv share it */
    while (attn_plan_local_bytes(stage, &p) > lmem) {
        if (p.dvc > 16)
            p.dvc = chunk_of(s->D, p.dvc - 16);
        else if (p.ds > 16)
            p.ds = 16;
        else if (p.bkv > 16 && p.bkv >= p.bq)
            p.bkv /= 2;
        else if (p.bq > 16)
            p.bq /= 2;
        else
            break;
    }
    p.kwin = attn_kwin_default(dev, stage, s->D, &p);
    v[0] = p.bq, v[1] = p.bkv, v[2] = p.ds, v[3] = p.dvc, v[4] = p.kwin;
}

#define ATTN_SPACE_FUNCS(name, stage)                                                              \
    static bool name##_valid(const int32_t *v, const void *pr, const struct gdn_device *dev)      \
    {                                                                                              \
        return attn_space_valid(stage, v, pr, dev);                                                \
    }                                                                                              \
    static void name##_defaults(int32_t *v, const void *pr, const struct gdn_device *dev)         \
    {                                                                                              \
        attn_space_defaults(stage, v, pr, dev);                                                    \
    }
ATTN_SPACE_FUNCS(fwd_space, STAGE_FWD)
ATTN_SPACE_FUNCS(dq_space, STAGE_DQ)
ATTN_SPACE_FUNCS(dkdv_space, STAGE_DKDV)

/* BQ, BKV, DS, DVC (-D macros of gdn_swa_plan.clh) and KWIN (host side). */
static const struct gdn_tune_param attn_params[] = {
    {"BQ", 64, 3, {16, 32, 64}},
    {"BKV", 64, 3, {16, 32, 64}},
    {"DS", 16, 2, {16, 32}},
    {"DVC", 16, 4, {16, 32, 48, 64}},
    {"KWIN", 0, ATTN_KWIN_VALUES},
};
const struct gdn_tune_space gdn__swa_fwd_space = {
    "swa/fwd", (int32_t)GDN_ARRAY_SIZE(attn_params), attn_params, fwd_space_valid,
    fwd_space_defaults};
const struct gdn_tune_space gdn__swa_dq_space = {
    "swa/bwd_dq", (int32_t)GDN_ARRAY_SIZE(attn_params), attn_params, dq_space_valid,
    dq_space_defaults};
const struct gdn_tune_space gdn__swa_dkdv_space = {
    "swa/bwd_dkdv", (int32_t)GDN_ARRAY_SIZE(attn_params), attn_params, dkdv_space_valid,
    dkdv_space_defaults};
static const struct gdn_tune_space *const attn_spaces[] = {
    &gdn__swa_fwd_space, &gdn__swa_dq_space, &gdn__swa_dkdv_space};

/* Work-group size of the one-dimensional kernels (bwd_prep, rope). */
static bool wg_space_valid(const int32_t *v, const void *pr, const struct gdn_device *dev)
{
    (void)pr;
    return (size_t)v[0] <= dev->info.max_work_group_size;
}
static void wg_space_defaults(int32_t *v, const void *pr, const struct gdn_device *dev)
{
    (void)pr;
    v[0] = 64;
    while ((size_t)v[0] > dev->info.max_work_group_size && v[0] > 1)
        v[0] /= 2;
}
static const struct gdn_tune_param wg_params[] = {{"WG", 64, 7, {4, 8, 16, 32, 64, 128, 256}}};
const struct gdn_tune_space gdn__swa_prep_space = {
    "swa/bwd_prep", 1, wg_params, wg_space_valid, wg_space_defaults};
const struct gdn_tune_space gdn__swa_rope_space = {
    "swa/rope", 1, wg_params, wg_space_valid, wg_space_defaults};

void gdn__swa_stage_lookup(gdn_context *ctx, const struct gdn_tune_space *space,
                           const struct gdn_swa_shape *s, int32_t *vals)
{
    char bucket[32];
    gdn__swa_bucket(s->D, bucket, sizeof(bucket));
    gdn__tune_lookup(ctx, space, bucket, s, vals, NULL);
}

static gdn_status attn_kernel(gdn_context *ctx, enum attn_stage stage,
                              const struct gdn_swa_shape *s, struct attn_plan *p, cl_kernel *out)
{
    const int32_t D = s->D;
    int32_t       vals[GDN_TUNE_MAX_PARAMS];
    char          opts[256];
    gdn_status    st;

    gdn__swa_stage_lookup(ctx, attn_spaces[stage], s, vals);
    attn_plan_from(vals, p);
    if ((st = attn_plan_fit(ctx, stage, D, p)))
        return st;
    if (loop_limited(&ctx->dev) && !attn_space_valid(stage, vals, s, &ctx->dev))
        p->kwin = attn_kwin_default(&ctx->dev, stage, D, p);
    {
        const struct gdn_define defs[] = {
            {"D", D}, {"BQ", p->bq}, {"BKV", p->bkv}, {"DS", p->ds}, {"DVC", p->dvc},
        };
        if (!gdn__defines_format(defs, GDN_ARRAY_SIZE(defs), opts, sizeof(opts)))
            return gdn__fail(ctx, GDN_STATUS_INTERNAL, "swa: options too long");
    }
    if ((st = gdn__kernel_get(ctx, stage_file[stage], opts, stage_entry[stage], out)))
        return st;
    return gdn__kernel_check_wg(ctx, *out, WG, stage_entry[stage]);
}

/* Upper bound of the tiles (fwd, dq) or pairs (dkdv) one work-group visits,
 * and the window step of the plan. */
static int32_t attn_visits(enum attn_stage stage, const struct gdn_swa_shape *s,
                           const struct attn_plan *p)
{
    if (stage == STAGE_DKDV)
        return (s->Hq / s->Hkv) * ((s->W + p->bkv - 2) / p->bq + 2);
    return (s->W + p->bq - 2) / p->bkv + 2;
}

/* Launch kr over the windows [kb, kb + KWIN) of the visits (arguments kb, ke
 * at a, a + 1); one launch when KWIN is 0 or covers them all. */
static gdn_status attn_launch_windows(gdn_context *ctx, cl_kernel kr, cl_uint a, int32_t visits,
                                      int32_t kwin, const size_t *global, const size_t *local)
{
    const int32_t step = kwin > 0 && kwin < visits ? kwin : visits;
    int32_t       kb   = 0;
    gdn_status    st   = GDN_STATUS_OK;
    do {
        if ((st = gdn__arg_int(ctx, kr, a, kb)) || (st = gdn__arg_int(ctx, kr, a + 1, step)) ||
            (st = gdn__launch(ctx, kr, 2, global, local, NULL)))
            return st;
        kb += step;
    } while (kb < visits);
    return st;
}

/* Tile table: one int4 (seq, bos, L, first row) per tile of `tile` rows of
 * every non-empty sequence. */
static gdn_status tile_table(gdn_context *ctx, const struct gdn_swa_shape *s,
                             const struct gdn_swa_index *idx, int32_t tile, cl_mem *out,
                             int32_t *count)
{
    int64_t  total = 0;
    int32_t *tab, n, r, c = 0;
    gdn_status st;

    for (n = 0; n < s->N; n++)
        total += (idx->offsets[n + 1] - idx->offsets[n] + tile - 1) / tile;
    if (total > INT32_MAX / 4)
        return gdn__fail(ctx, GDN_STATUS_UNSUPPORTED, "swa: too many tiles");
    tab = gdn__malloc((size_t)(total ? total : 1) * 4 * sizeof(int32_t));
    if (!tab)
        return gdn__fail(ctx, GDN_STATUS_OUT_OF_HOST_MEMORY, "swa: out of memory");
    for (n = 0; n < s->N; n++) {
        int32_t bos = idx->offsets[n], L = idx->offsets[n + 1] - bos;
        for (r = 0; r < L; r += tile, c++) {
            tab[4 * c + 0] = n;
            tab[4 * c + 1] = bos;
            tab[4 * c + 2] = L;
            tab[4 * c + 3] = r;
        }
    }
    *count = c;
    st     = gdn__int_table(ctx, tab, (size_t)(total ? total : 1) * 4, out);
    gdn__free(tab);
    return st;
}

gdn_status gdn__swa_attn_forward(gdn_context *ctx, const struct gdn_swa_shape *s,
                                 const struct gdn_swa_index *idx, cl_mem q, cl_mem k, cl_mem v,
                                 cl_mem o, cl_mem lse)
{
    struct attn_plan p;
    cl_kernel        kr;
    cl_mem           tiles = NULL, lsum = NULL;
    int32_t          nt    = 0, visits;
    cl_uint          a     = 0;
    size_t           global[2], local[2] = {WG, 1};
    gdn_status       st;

    if ((st = attn_kernel(ctx, STAGE_FWD, s, &p, &kr)))
        return st;
    if ((st = tile_table(ctx, s, idx, p.bq, &tiles, &nt)))
        return st;
    if (nt == 0)
        goto done;
    visits = attn_visits(STAGE_FWD, s, &p);
    if (p.kwin > 0 && p.kwin < visits &&
        (st = gdn__buffer_create(ctx, (size_t)s->T * (size_t)s->Hq * sizeof(float), &lsum)))
        goto done;
    if ((st = gdn__arg_mem(ctx, kr, a++, q)) || (st = gdn__arg_mem(ctx, kr, a++, k)) ||
        (st = gdn__arg_mem(ctx, kr, a++, v)) || (st = gdn__arg_mem(ctx, kr, a++, tiles)) ||
        (st = gdn__arg_mem(ctx, kr, a++, o)) || (st = gdn__arg_mem(ctx, kr, a++, lse)) ||
        (st = gdn__arg_mem(ctx, kr, a++, lsum ? lsum : lse)) ||
        (st = gdn__arg_int(ctx, kr, a++, s->Hq)) || (st = gdn__arg_int(ctx, kr, a++, s->Hkv)) ||
        (st = gdn__arg_int(ctx, kr, a++, s->W)) ||
        (st = gdn__arg_float(ctx, kr, a++, s->scale * 1.4426950408889634f)))
        goto done;
    global[0] = (size_t)nt * WG;
    global[1] = (size_t)s->Hq;
    st        = attn_launch_windows(ctx, kr, a, visits, p.kwin, global, local);
done:
    gdn__buffer_release(tiles);
    gdn__buffer_release(lsum);
    return st;
}

/* delta = rowsum(do * o) over [T * Hq] rows. */
static gdn_status attn_prep(gdn_context *ctx, const struct gdn_swa_shape *s, cl_mem o,
                            cl_mem dout, cl_mem delta)
{
    cl_kernel  kr;
    size_t     rows = (size_t)s->T * (size_t)s->Hq, local, global;
    cl_uint    a    = 0;
    int32_t    vals[GDN_TUNE_MAX_PARAMS];
    gdn_status st;

    gdn__swa_stage_lookup(ctx, &gdn__swa_prep_space, s, vals);
    local = (size_t)vals[0];
    while (local > ctx->dev.info.max_work_group_size && local > 1)
        local /= 2;
    global = (rows + local - 1) / local * local;
    if ((st = gdn__kernel_get(ctx, "swa/bwd_prep.cl", "", "swa_bwd_prep", &kr)) ||
        (st = gdn__arg_mem(ctx, kr, a++, o)) || (st = gdn__arg_mem(ctx, kr, a++, dout)) ||
        (st = gdn__arg_mem(ctx, kr, a++, delta)) ||
        (st = gdn__arg_int(ctx, kr, a++, (int32_t)rows)) ||
        (st = gdn__arg_int(ctx, kr, a++, s->D)))
        return st;
    return gdn__launch(ctx, kr, 1, &global, &local, NULL);
}

gdn_status gdn__swa_attn_backward(gdn_context *ctx, const struct gdn_swa_shape *s,
                                  const struct gdn_swa_index *idx, cl_mem q, cl_mem k, cl_mem v,
                                  cl_mem o, cl_mem lse, cl_mem dout, cl_mem dq, cl_mem dk,
                                  cl_mem dv)
{
    struct attn_plan pq, pk;
    cl_kernel        kq = NULL, kk;
    cl_mem           delta = NULL, tq = NULL, tk = NULL;
    int32_t          nq = 0, nk = 0;
    cl_uint          a;
    size_t           global[2], local[2] = {WG, 1};
    const float      sl2 = s->scale * 1.4426950408889634f;
    gdn_status       st;

    if ((st = attn_kernel(ctx, STAGE_DKDV, s, &pk, &kk)))
        return st;
    if (dq) {
        if ((st = attn_kernel(ctx, STAGE_DQ, s, &pq, &kq)))
            return st;
    }
    if ((st = gdn__buffer_create(ctx, (size_t)s->T * (size_t)s->Hq * sizeof(float), &delta)))
        return st;
    if ((st = attn_prep(ctx, s, o, dout, delta)))
        goto done;

    if ((st = tile_table(ctx, s, idx, pk.bkv, &tk, &nk)))
        goto done;
    a = 0;
    if ((st = gdn__arg_mem(ctx, kk, a++, q)) || (st = gdn__arg_mem(ctx, kk, a++, k)) ||
        (st = gdn__arg_mem(ctx, kk, a++, v)) || (st = gdn__arg_mem(ctx, kk, a++, dout)) ||
        (st = gdn__arg_mem(ctx, kk, a++, lse)) || (st = gdn__arg_mem(ctx, kk, a++, delta)) ||
        (st = gdn__arg_mem(ctx, kk, a++, tk)) || (st = gdn__arg_mem(ctx, kk, a++, dk)) ||
        (st = gdn__arg_mem(ctx, kk, a++, dv)) || (st = gdn__arg_int(ctx, kk, a++, s->Hq)) ||
        (st = gdn__arg_int(ctx, kk, a++, s->Hkv)) || (st = gdn__arg_int(ctx, kk, a++, s->W)) ||
        (st = gdn__arg_float(ctx, kk, a++, sl2)) ||
        (st = gdn__arg_float(ctx, kk, a++, s->scale)))
        goto done;
    global[0] = (size_t)nk * WG;
    global[1] = (size_t)s->Hkv;
    if (nk && (st = attn_launch_windows(ctx, kk, a, attn_visits(STAGE_DKDV, s, &pk), pk.kwin,
                                        global, local)))
        goto done;

    if (dq) {
        if ((st = tile_table(ctx, s, idx, pq.bq, &tq, &nq)))
            goto done;
        a = 0;
        if ((st = gdn__arg_mem(ctx, kq, a++, q)) || (st = gdn__arg_mem(ctx, kq, a++, k)) ||
            (st = gdn__arg_mem(ctx, kq, a++, v)) || (st = gdn__arg_mem(ctx, kq, a++, dout)) ||
            (st = gdn__arg_mem(ctx, kq, a++, lse)) || (st = gdn__arg_mem(ctx, kq, a++, delta)) ||
            (st = gdn__arg_mem(ctx, kq, a++, tq)) || (st = gdn__arg_mem(ctx, kq, a++, dq)) ||
            (st = gdn__arg_int(ctx, kq, a++, s->Hq)) ||
            (st = gdn__arg_int(ctx, kq, a++, s->Hkv)) ||
            (st = gdn__arg_int(ctx, kq, a++, s->W)) ||
            (st = gdn__arg_float(ctx, kq, a++, sl2)) ||
            (st = gdn__arg_float(ctx, kq, a++, s->scale)))
            goto done;
        global[0] = (size_t)nq * WG;
        global[1] = (size_t)s->Hq;
        if (nq && (st = attn_launch_windows(ctx, kq, a, attn_visits(STAGE_DQ, s, &pq), pq.kwin,
                                            global, local)))
            goto done;
    }
done:
    gdn__buffer_release(delta);
    gdn__buffer_release(tq);
    gdn__buffer_release(tk);
    return st;
}
