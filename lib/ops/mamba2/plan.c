/*
 * plan.c - the plans of the Mamba2 SSD kernel stages: for each stage, the
 * single place that turns the problem shape and the tuning values into the
 * kernel's -D options, its NDRange and its local-memory footprint, checked
 * against the device. Generic defaults live in the *_plan_default
 * functions (a tuning database will replace them); the kernel files'
 * comment blocks list the legal values.
 *
 * Defines depend only on the chunk size, the tile sizes (which follow from
 * P and DS rounded to 16 / 32 / 64) and the stage's mode, so few distinct
 * programs are built; P, DS, H, G, T are kernel arguments.
 */
#include <stdio.h>
#include <string.h>

#include "mamba2.h"
#include "tune/tune.h"

/* Column tile for a dimension: 16, 32 or 64 (partial tiles are masked). */
static int32_t tile_for(int32_t d)
{
    return d <= 16 ? 16 : d <= 32 ? 32 : 64;
}

static size_t div_up(size_t a, size_t b)
{
    return (a + b - 1) / b;
}

void gdn__m2_tile_plan_default(const struct gdn_m2_shape *s, enum gdn_m2_stage st,
                               struct gdn_m2_tile_plan *p)
{
    memset(p, 0, sizeof(*p));
    p->ch = s->CH;
    p->bk = 32;
    switch (st) {
    case GDN_M2_CHUNK_STATE:
        p->bx = tile_for(s->P);
        p->by = tile_for(s->DS);
        break;
    case GDN_M2_SCAN_FWD:
    case GDN_M2_DX:
        p->bx = tile_for(s->P);
        break;
    case GDN_M2_DBC:
        p->bx = tile_for(s->DS);
        break;
    default:
        break;
    }
}

void gdn__m2_vec_plan_default(const struct gdn_m2_shape *s, enum gdn_m2_stage st,
                              struct gdn_m2_vec_plan *p)
{
    (void)s;
    switch (st) {
    case GDN_M2_CUMSUM:
    case GDN_M2_DT_BWD:
        p->wg = 64; /* one work-item per head */
        break;
    default:
        p->wg = 256;
        break;
    }
}

void gdn__m2_step_plan_default(const struct gdn_m2_shape *s, struct gdn_m2_step_plan *p)
{
    /* lanes cover DS in float4 units */
    p->ln = s->DS >= 128 ? 32 : s->DS >= 64 ? 16 : 8;
    p->rw = 256 / p->ln;
}

/* Local memory of a tile stage in bytes (mirrors the kernels' arrays). */
static size_t tile_lmem(enum gdn_m2_stage st, const struct gdn_m2_tile_plan *p)
{
    const size_t R = GDN_M2_TILE, ch = (size_t)p->ch, bx = (size_t)p->bx, by = (size_t)p->by;
    const size_t bk = (size_t)p->bk;
    size_t       a, b, c, f = 0;
    switch (st) {
    case GDN_M2_BMM:
        f = 2 * R * (bk + 1);
        break;
    case GDN_M2_CHUNK_STATE:
        f = ch + bk * (bx + by);
        break;
    case GDN_M2_SCAN_FWD:
        a = R * (bk + 1) + bk * bx, b = R * (R + 1) + R * bx;
        f = (a > b ? a : b) + 2 * ch;
        break;
    case GDN_M2_DCB:
        f = 2 * R * (bk + 1) + 2 * ch;
        break;
    case GDN_M2_DX:
        a = R * (R + 1) + R * bx, b = R * (bk + 1) + bk * bx, c = 3 * R * 17;
        a = a > b ? a : b;
        f = (a > c ? a : c) + 2 * ch;
        break;
    case GDN_M2_DBC:
        a = 2 * R * (bk + 1) + 2 * bk * bx, b = R * (R + 1) + R * bx;
        f = (a > b ? a : b) + 2 * ch;
        break;
    default:
        break;
    }
    return f * sizeof(float);
}

static bool tile_plan_valid(enum gdn_m2_stage st, const struct gdn_m2_tile_plan *p)
{
    const bool ch_ok = p->ch == 64 || p->ch == 128 || p->ch == 256;
    const bool bk_ok = p->bk == 16 || p->bk == 32;
    const bool bx_ok = p->bx == 16 || p->bx == 32 || p->bx == 64;
    const bool by_ok = p->by == 16 || p->by == 32 || p->by == 64;
    switch (st) {
    case GDN_M2_BMM:
    case GDN_M2_DCB:
        return ch_ok && bk_ok;
    case GDN_M2_CHUNK_STATE:
        return ch_ok && bk_ok && bx_ok && by_ok && (p->mode == 0 || p->mode == 1);
    case GDN_M2_SCAN_FWD:
    case GDN_M2_DX:
    case GDN_M2_DBC:
        return ch_ok && bk_ok && bx_ok;
    default:
        return false;
    }
}

/* ------------------------------------------------------ tuning spaces
 *
 * Every stage declares a gdn_tune_space (lib/tune/tune.h), keyed by the
 * bucket "P<P>.DS<DS>.CH<CH>" (gdn__m2_bucket); its defaults() are the
 * *_plan_default values above, the tile plans shrunk to local memory as
 * gdn__m2_tile_kernel does, so the generic level changes nothing. The
 * chunk size is not tuned: it is the caller's parameter (params.chunk_size)
 * and fixes the tape's chunk tables. Mesa llvmpipe's cap of 65535 loop
 * iterations per work-item needs no constraint here: no plan of these
 * spaces comes near it (see test/mamba2/test_mamba2.c).
 */

void gdn__m2_bucket(const struct gdn_m2_shape *s, char *buf, size_t cap)
{
    snprintf(buf, cap, "P%d.DS%d.CH%d", (int)s->P, (int)s->DS, (int)s->CH);
}

/* Tile stages: values in the order of the space's params. */
struct tile_space_info {
    enum gdn_m2_stage st;
    bool              bx, by; /* which column tiles the stage has */
};

static bool tile_fits(enum gdn_m2_stage st, const struct gdn_m2_tile_plan *p,
                      const struct gdn_device *dev)
{
    return tile_plan_valid(st, p) && tile_lmem(st, p) <= dev->info.local_mem_bytes &&
           (size_t)GDN_M2_WG <= dev->info.max_work_group_size;
}

static void tile_shrink(enum gdn_m2_stage st, struct gdn_m2_tile_plan *p, uint64_t lmem_dev)
{
    while (tile_lmem(st, p) > lmem_dev) {
        if (p->bx > 16)
            p->bx /= 2;
        else if (p->by > 16)
            p->by /= 2;
        else if (p->bk > 16)
            p->bk /= 2;
        else
            break;
    }
}

#define TILE_SPACE(NAME, ST, HAS_BX, HAS_BY)                                                      \
    static void NAME##_from(const int32_t *v, const struct gdn_m2_shape *s,                       \
                            struct gdn_m2_tile_plan *p)                                           \
    {                                                                                              \
        int i = 0;                                                                                 \
        memset(p, 0, sizeof(*p));                                                                  \
        p->ch = s->CH, p->bk = v[i++];                                                             \
        if (HAS_BX)                                                                                \
            p->bx = v[i++];                                                                        \
        if (HAS_BY)                                                                                \
            p->by = v[i++];                                                                        \
    }                                                                                              \
    static bool NAME##_valid(const int32_t *v, const void *problem, const struct gdn_device *dev) \
    {                                                                                              \
        struct gdn_m2_tile_plan p;                                                                 \
        NAME##_from(v, problem, &p);                                                               \
        return tile_fits(ST, &p, dev);                                                             \
    }                                                                                              \
    static void NAME##_defaults(int32_t *v, const void *problem, const struct gdn_device *dev)    \
    {                                                                                              \
        struct gdn_m2_tile_plan p;                                                                 \
        int                     i = 0;                                                             \
        gdn__m2_tile_plan_default(problem, ST, &p);                                                \
        tile_shrink(ST, &p, dev->info.local_mem_bytes);                                            \
        v[i++] = p.bk;                                                                             \
        if (HAS_BX)                                                                                \
            v[i++] = p.bx;                                                                         \
        if (HAS_BY)                                                                                \
            v[i++] = p.by;                                                                         \
    }

TILE_SPACE(bmm, GDN_M2_BMM, 0, 0)
TILE_SPACE(cstate, GDN_M2_CHUNK_STATE, 1, 1)
TILE_SPACE(scan, GDN_M2_SCAN_FWD, 1, 0)
TILE_SPACE(dcb, GDN_M2_DCB, 0, 0)
TILE_SPACE(dx, GDN_M2_DX, 1, 0)
TILE_SPACE(dbc, GDN_M2_DBC, 1, 0)

#define M2_BK {"BK", 32, 2, {16, 32}}
#define M2_T(name) {name, 64, 3, {16, 32, 64}}
static const struct gdn_tune_param bmm_params[]    = {M2_BK};
static const struct gdn_tune_param cstate_params[] = {M2_BK, M2_T("BP"), M2_T("BN")};
static const struct gdn_tune_param scan_params[]   = {M2_BK, M2_T("BP")};
static const struct gdn_tune_param dcb_params[]    = {M2_BK};
static const struct gdn_tune_param dx_params[]     = {M2_BK, M2_T("BP")};
static const struct gdn_tune_param dbc_params[]    = {M2_BK, M2_T("BN")};

#define M2_SPACE(VAR, STAGE, PARAMS, NAME)                                                        \
    const struct gdn_tune_space VAR = {STAGE, (int32_t)GDN_ARRAY_SIZE(PARAMS), PARAMS,             \
                                       NAME##_valid, NAME##_defaults}

M2_SPACE(gdn__m2_bmm_space, "mamba2/bmm_fwd", bmm_params, bmm);
M2_SPACE(gdn__m2_cstate_space, "mamba2/chunk_state", cstate_params, cstate);
M2_SPACE(gdn__m2_scan_space, "mamba2/chunk_scan_fwd", scan_params, scan);
M2_SPACE(gdn__m2_dcb_space, "mamba2/dcb_bwd", dcb_params, dcb);
M2_SPACE(gdn__m2_dx_space, "mamba2/dx_bwd", dx_params, dx);
M2_SPACE(gdn__m2_dbc_space, "mamba2/dbc_bwd", dbc_params, dbc);

/* Vector stages: WG, capped at the device's work-group limit. */
static bool vec_wg_valid(int32_t wg, const struct gdn_device *dev)
{
    return (size_t)wg <= dev->info.max_work_group_size;
}

#define VEC_SPACE(NAME, ST)                                                                        \
    static bool NAME##_valid(const int32_t *v, const void *problem, const struct gdn_device *dev) \
    {                                                                                              \
        (void)problem;                                                                             \
        return vec_wg_valid(v[0], dev);                                                            \
    }                                                                                              \
    static void NAME##_defaults(int32_t *v, const void *problem, const struct gdn_device *dev)    \
    {                                                                                              \
        struct gdn_m2_vec_plan p;                                                                  \
        gdn__m2_vec_plan_default(problem, ST, &p);                                                 \
        while (p.wg > 32 && !vec_wg_valid(p.wg, dev))                                              \
            p.wg /= 2;                                                                             \
        v[0] = p.wg;                                                                               \
    }

VEC_SPACE(cumsum, GDN_M2_CUMSUM)
VEC_SPACE(pfwd, GDN_M2_PASS_FWD)
VEC_SPACE(pbwd, GDN_M2_PASS_BWD)
VEC_SPACE(dtb, GDN_M2_DT_BWD)
VEC_SPACE(gred, GDN_M2_GROUP_REDUCE)
VEC_SPACE(pred, GDN_M2_PARAM_REDUCE)

/* Legal WG per kernel (its comment block). */
static const struct gdn_tune_param wg32_params[] = {{"WG", 64, 4, {32, 64, 128, 256}}};
static const struct gdn_tune_param wg64_params[] = {{"WG", 256, 3, {64, 128, 256}}};

M2_SPACE(gdn__m2_cumsum_space, "mamba2/cumsum_fwd", wg32_params, cumsum);
M2_SPACE(gdn__m2_pass_fwd_space, "mamba2/state_passing_fwd", wg64_params, pfwd);
M2_SPACE(gdn__m2_pass_bwd_space, "mamba2/state_passing_bwd", wg64_params, pbwd);
M2_SPACE(gdn__m2_dt_bwd_space, "mamba2/dt_bwd", wg32_params, dtb);
M2_SPACE(gdn__m2_group_reduce_space, "mamba2/group_reduce", wg64_params, gred);
M2_SPACE(gdn__m2_param_reduce_space, "mamba2/param_reduce", wg64_params, pred);

/* Decode step: LN x RW work-items, RW (LN + 1) floats of local memory. */
static bool step_valid(const int32_t *v, const void *problem, const struct gdn_device *dev)
{
    const size_t wg = (size_t)v[0] * (size_t)v[1];
    (void)problem;
    return wg <= dev->info.max_work_group_size &&
           (size_t)v[1] * ((size_t)v[0] + 1) * sizeof(float) <= dev->info.local_mem_bytes;
}

static void step_defaults(int32_t *v, const void *problem, const struct gdn_device *dev)
{
    struct gdn_m2_step_plan p;
    gdn__m2_step_plan_default(problem, &p);
    while (p.rw > 4 && (size_t)(p.ln * p.rw) > dev->info.max_work_group_size)
        p.rw /= 2;
    v[0] = p.ln, v[1] = p.rw;
}

static const struct gdn_tune_param step_params[] = {{"LN", 32, 3, {8, 16, 32}},
                                                    {"RW", 8, 4, {4, 8, 16, 32}}};
M2_SPACE(gdn__m2_step_space, "mamba2/step", step_params, step);

static const struct gdn_tune_space *const stage_space[] = {
    [GDN_M2_CUMSUM] = &gdn__m2_cumsum_space,
    [GDN_M2_BMM] = &gdn__m2_bmm_space,
    [GDN_M2_CHUNK_STATE] = &gdn__m2_cstate_space,
    [GDN_M2_PASS_FWD] = &gdn__m2_pass_fwd_space,
    [GDN_M2_SCAN_FWD] = &gdn__m2_scan_space,
    [GDN_M2_PASS_BWD] = &gdn__m2_pass_bwd_space,
    [GDN_M2_DCB] = &gdn__m2_dcb_space,
    [GDN_M2_DX] = &gdn__m2_dx_space,
    [GDN_M2_DBC] = &gdn__m2_dbc_space,
    [GDN_M2_DT_BWD] = &gdn__m2_dt_bwd_space,
    [GDN_M2_GROUP_REDUCE] = &gdn__m2_group_reduce_space,
    [GDN_M2_PARAM_REDUCE] = &gdn__m2_param_reduce_space,
    [GDN_M2_STEP] = &gdn__m2_step_space,
};

const struct gdn_tune_space *gdn__m2_space(enum gdn_m2_stage st)
{
    return stage_space[st];
}

static void lookup(gdn_context *ctx, const struct gdn_m2_shape *s, enum gdn_m2_stage st,
                   int32_t *vals)
{
    char bucket[48];
    gdn__m2_bucket(s, bucket, sizeof(bucket));
    gdn__tune_lookup(ctx, stage_space[st], bucket, s, vals, NULL);
}

void gdn__m2_tile_plan(gdn_context *ctx, const struct gdn_m2_shape *s, enum gdn_m2_stage st,
                       struct gdn_m2_tile_plan *p)
{
    int32_t v[GDN_TUNE_MAX_PARAMS];
    lookup(ctx, s, st, v);
    switch (st) {
    case GDN_M2_BMM:
        bmm_from(v, s, p);
        break;
    case GDN_M2_CHUNK_STATE:
        cstate_from(v, s, p);
        break;
    case GDN_M2_SCAN_FWD:
        scan_from(v, s, p);
        break;
    case GDN_M2_DCB:
        dcb_from(v, s, p);
        break;
    case GDN_M2_DX:
        dx_from(v, s, p);
        break;
    case GDN_M2_DBC:
        dbc_from(v, s, p);
        break;
    default:
        gdn__m2_tile_plan_default(s, st, p);
        break;
    }
}

void gdn__m2_vec_plan(gdn_context *ctx, const struct gdn_m2_shape *s, enum gdn_m2_stage st,
                      struct gdn_m2_vec_plan *p)
{
    int32_t v[GDN_TUNE_MAX_PARAMS];
    lookup(ctx, s, st, v);
    p->wg = v[0];
}

void gdn__m2_step_plan(gdn_context *ctx, const struct gdn_m2_shape *s, struct gdn_m2_step_plan *p)
{
    int32_t v[GDN_TUNE_MAX_PARAMS];
    lookup(ctx, s, GDN_M2_STEP, v);
    p->ln = v[0], p->rw = v[1];
}

/* Format the options, build the kernel and check its work-group limit. */
static gdn_status build(gdn_context *ctx, const char *file, const char *entry,
                        const struct gdn_define *defs, size_t n, size_t wg, size_t lmem,
                        cl_kernel *out)
{
    char       opts[256];
    gdn_status st;

    if (wg > ctx->dev.info.max_work_group_size || lmem > ctx->dev.info.local_mem_bytes)
        return gdn__fail(ctx, GDN_STATUS_UNSUPPORTED,
                         "mamba2 %s: needs %zu work-items and %zu B of local memory per group; "
                         "the device allows %u and %llu",
                         entry, wg, lmem, (unsigned)ctx->dev.info.max_work_group_size,
                         (unsigned long long)ctx->dev.info.local_mem_bytes);
    if (!gdn__defines_format(defs, n, opts, sizeof(opts)))
        return gdn__fail(ctx, GDN_STATUS_INTERNAL, "mamba2 %s: options too long", entry);
    if ((st = gdn__kernel_get(ctx, file, opts, entry, out)))
        return st;
    return gdn__kernel_check_wg(ctx, *out, wg, entry);
}

gdn_status gdn__m2_tile_kernel(gdn_context *ctx, const struct gdn_m2_shape *s,
                               enum gdn_m2_stage st, struct gdn_m2_tile_plan *p,
                               struct gdn_m2_launch *L)
{
    const uint64_t lmem_dev = ctx->dev.info.local_mem_bytes;
    const size_t   ntl = (size_t)p->ch / GDN_M2_TILE;
    const char    *file = NULL, *entry = NULL;
    size_t         groups0 = 0, dim2 = (size_t)s->H;
    struct gdn_define defs[5];
    size_t         nd = 0;

    if (!tile_plan_valid(st, p))
        return gdn__fail(ctx, GDN_STATUS_INTERNAL,
                         "mamba2: invalid tile plan (stage %d: ch %d bx %d by %d bk %d)", (int)st,
                         (int)p->ch, (int)p->bx, (int)p->by, (int)p->bk);
    /* Fit local memory: shrink the column tiles, then the inner slice
     * (build() reports what still does not fit). */
    tile_shrink(st, p, lmem_dev);
    switch (st) {
    case GDN_M2_BMM:
        file = "mamba2/bmm_fwd.cl", entry = "mamba2_bmm_fwd";
        groups0 = ntl * ntl, dim2 = (size_t)s->G;
        break;
    case GDN_M2_CHUNK_STATE:
        file = "mamba2/chunk_state.cl", entry = "mamba2_chunk_state";
        groups0 = div_up((size_t)s->P, (size_t)p->bx) * div_up((size_t)s->DS, (size_t)p->by);
        break;
    case GDN_M2_SCAN_FWD:
        file = "mamba2/chunk_scan_fwd.cl", entry = "mamba2_chunk_scan_fwd";
        groups0 = ntl * div_up((size_t)s->P, (size_t)p->bx);
        break;
    case GDN_M2_DCB:
        file = "mamba2/dcb_bwd.cl", entry = "mamba2_dcb_bwd";
        groups0 = ntl * ntl;
        break;
    case GDN_M2_DX:
        file = "mamba2/dx_bwd.cl", entry = "mamba2_dx_bwd";
        groups0 = ntl * div_up((size_t)s->P, (size_t)p->bx);
        break;
    case GDN_M2_DBC:
        file = "mamba2/dbc_bwd.cl", entry = "mamba2_dbc_bwd";
        groups0 = ntl * div_up((size_t)s->DS, (size_t)p->bx);
        break;
    default:
        return gdn__fail(ctx, GDN_STATUS_INTERNAL, "mamba2: stage %d is not a tile stage",
                         (int)st);
    }
    defs[nd++] = (struct gdn_define){"CH", p->ch};
    defs[nd++] = (struct gdn_define){"BK", p->bk};
    if (st == GDN_M2_CHUNK_STATE) {
        defs[nd++] = (struct gdn_define){"BP", p->bx};
        defs[nd++] = (struct gdn_define){"BN", p->by};
        defs[nd++] = (struct gdn_define){"MODE", p->mode};
    } else if (st == GDN_M2_SCAN_FWD || st == GDN_M2_DX) {
        defs[nd++] = (struct gdn_define){"BP", p->bx};
    } else if (st == GDN_M2_DBC) {
        defs[nd++] = (struct gdn_define){"BN", p->bx};
    }
    /* Large counts in dimension 0 (NVIDIA allows 65535 groups in 1 and 2). */
    L->dims      = 2;
    L->local[0]  = 256, L->local[1] = 1, L->local[2] = 1;
    L->global[0] = 256 * groups0 * (size_t)s->NT;
    L->global[1] = dim2;
    L->global[2] = 1;
    return build(ctx, file, entry, defs, nd, GDN_M2_WG, tile_lmem(st, p), &L->k);
}

gdn_status gdn__m2_vec_kernel(gdn_context *ctx, const struct gdn_m2_shape *s,
                              enum gdn_m2_stage st, const struct gdn_m2_vec_plan *p,
                              struct gdn_m2_launch *L)
{
    const size_t      wg   = (size_t)p->wg;
    const size_t      nblk = div_up((size_t)s->P * (size_t)s->DS / 4, wg); /* float4 */
    const char       *file = NULL, *entry = NULL;
    struct gdn_define def  = {"WG", p->wg};
    const size_t      lmem = 0;

    if (!(p->wg == 32 || p->wg == 64 || p->wg == 128 || p->wg == 256))
        return gdn__fail(ctx, GDN_STATUS_INTERNAL, "mamba2: invalid work-group size %d",
                         (int)p->wg);
    /* All 1-D: group counts can exceed NVIDIA's 65535 in dimensions 1, 2. */
    L->local[0] = wg, L->local[1] = 1, L->local[2] = 1;
    L->dims     = 1;
    L->global[1] = 1, L->global[2] = 1;
    switch (st) {
    case GDN_M2_CUMSUM:
        file = "mamba2/cumsum_fwd.cl", entry = "mamba2_cumsum_fwd";
        L->global[0] = div_up((size_t)s->H, wg) * wg * (size_t)s->NT;
        break;
    case GDN_M2_DT_BWD:
        file = "mamba2/dt_bwd.cl", entry = "mamba2_dt_bwd";
        L->global[0] = div_up((size_t)s->H, wg) * wg * (size_t)s->NT;
        break;
    case GDN_M2_PASS_FWD:
        file = "mamba2/state_passing_fwd.cl", entry = "mamba2_state_passing_fwd";
        L->global[0] = nblk * wg * (size_t)s->N * (size_t)s->H;
        break;
    case GDN_M2_PASS_BWD:
        file = "mamba2/state_passing_bwd.cl", entry = "mamba2_state_passing_bwd";
        L->global[0] = nblk * wg * (size_t)s->N * (size_t)s->H;
        break;
    case GDN_M2_GROUP_REDUCE:
        file = "mamba2/reduce_bwd.cl", entry = "mamba2_group_reduce";
        L->global[0] = div_up((size_t)s->T * (size_t)s->G * (size_t)s->DS, wg) * wg;
        break;
    case GDN_M2_PARAM_REDUCE:
        file = "mamba2/reduce_bwd.cl", entry = "mamba2_param_reduce";
        L->global[0] = div_up((size_t)s->H, wg) * wg;
        break;
    default:
        return gdn__fail(ctx, GDN_STATUS_INTERNAL, "mamba2: stage %d is not a vector stage",
                         (int)st);
    }
    return build(ctx, file, entry, &def, 1, wg, lmem, &L->k);
}

gdn_status gdn__m2_step_kernel(gdn_context *ctx, const struct gdn_m2_shape *s,
                               const struct gdn_m2_step_plan *p, struct gdn_m2_launch *L)
{
    const struct gdn_define defs[] = {{"LN", p->ln}, {"RW", p->rw}};
    const size_t            wg     = (size_t)p->ln * (size_t)p->rw;

    if (!(p->ln == 8 || p->ln == 16 || p->ln == 32) || !(p->rw == 4 || p->rw == 8 || p->rw == 16 || p->rw == 32))
        return gdn__fail(ctx, GDN_STATUS_INTERNAL, "mamba2 step: invalid plan LN=%d RW=%d",
                         (int)p->ln, (int)p->rw);
    L->dims      = 1;
    L->local[0]  = wg, L->local[1] = 1, L->local[2] = 1;
    L->global[0] = wg * div_up((size_t)s->P, (size_t)p->rw) * (size_t)s->H * (size_t)s->N;
    L->global[1] = 1, L->global[2] = 1;
    return build(ctx, "mamba2/step.cl", "mamba2_step", defs, GDN_ARRAY_SIZE(defs), wg,
                 (size_t)p->rw * ((size_t)p->ln + 1) * sizeof(float), &L->k);
}

gdn_status gdn__m2_enqueue(gdn_context *ctx, const struct gdn_m2_launch *L)
{
    return gdn__launch(ctx, L->k, L->dims, L->global, L->local, NULL);
}

gdn_status gdn__m2_scratch(gdn_context *ctx, size_t n, cl_mem *out)
{
    size_t bytes;
    *out = NULL;
    if (!gdn__mul_size(n ? n : 1, sizeof(float), &bytes))
        return gdn__fail(ctx, GDN_STATUS_OUT_OF_DEVICE_MEMORY, "mamba2: scratch size overflows");
    return gdn__buffer_create(ctx, bytes, out);
}
