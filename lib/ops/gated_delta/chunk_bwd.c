/*
 * chunk_bwd.c - the chunked backward of the gated delta rule, stages B1-B9
 * of docs/ALGORITHM.md 2.3 (fla chunk_gated_delta_rule_bwd):
 *
 *   B1  w, u           recomputed by the forward stage gdn__gd_wy_fwd
 *   B2  h, v_new       recomputed by the forward stage gdn__gd_state_fwd
 *   B3  dv_local       gated_delta/dv_local_bwd.cl   per (chunk, value head)
 *   B4  dh, dv2, dh0   gated_delta/state_bwd.cl      per (V tile, seq, head)
 *   B5  dq, dk, dw, dG gated_delta/dqkwg_bwd.cl      per (K tile, chunk, head)
 *   B6  dk, dv, dbeta  gated_delta/wy_bwd.cl         per (chunk, value head)
 *   B7-B9, GVA sum     gated_delta/prep_bwd.cl       reverse cumsum, gate,
 *                                                    beta, L2-norm backward
 *
 * Each kernel stage has a plan struct (its -D options and NDRange); the
 * generic defaults live in one *_plan_default function per stage and the
 * plan is checked against the device's work-group and local-memory limits.
 * The -D options depend only on K, V and the device limits, so one build per
 * (K, V) serves every call.
 *
 * B3-B6 declare tuning spaces (lib/tune, as the forward stages in
 * chunk_fwd.c): their tile sizes and work-group shapes come from
 * gdn__tune_lookup (bucket "K<K>.V<V>"), the *_plan_default functions are
 * the spaces' generic defaults, and each space's valid() checks the kernel's
 * static constraints and the device's local memory and work-group size.
 * Every kernel loops over its 64 chunk rows, so work-groups smaller than 64
 * work-items (4 x 4 on CPUs) are legal. B7-B9 (prep_bwd) keep fixed plans.
 *
 * Scratch (device, released before return): w (reused as dw), u (reused as
 * dv_local, except when the schedule forks: see gdn__gd_sched_space), h,
 * v_new, dh, dv2; per-value-head dq/dk when they cannot be
 * written in place (GVA or in-op L2 norm); the gate partials of B5 (one row
 * per K tile), dbeta/dG sums [T, HV] and, with GATE_IN_OP, per-chunk
 * partials of dA_log / ddt_bias. No atomics: every reduction has a fixed
 * order, so results are bitwise reproducible.
 */
#include <string.h>

#include <stdio.h>

#include "gated_delta.h"
#include "tune/tune.h"

#define CH GDN_GD_CHUNK

/* ------------------------------------------------------------------ plans */

/* Every plan keeps its NDRange, local memory and -D string here. */
struct launch_geom {
    size_t global[3];
    size_t local[3];
    size_t lmem; /* bytes of __local memory the kernel declares */
    char   defines[256];
};

static int pick_div(int d, int pref)
{
    /* largest of pref, pref/2, ... >= 16 that divides d (d is a multiple of 16) */
    int t;
    for (t = pref; t > 16; t /= 2)
        if (d % t == 0)
            return t;
    return 16;
}

static gdn_status geom_check(gdn_context *ctx, const char *stage, const struct launch_geom *g)
{
    const gdn_device_info *di = &ctx->dev.info;
    size_t                 wg = g->local[0] * g->local[1] * g->local[2];
    if (di->max_work_group_size && wg > di->max_work_group_size)
        return gdn__fail(ctx, GDN_STATUS_UNSUPPORTED,
                         "gated_delta backward %s: work-group of %zu exceeds the device's %u", stage,
                         wg, (unsigned)di->max_work_group_size);
    if (di->local_mem_bytes && g->lmem > di->local_mem_bytes)
        return gdn__fail(ctx, GDN_STATUS_UNSUPPORTED,
                         "gated_delta backward %s: needs %zu B of local memory, the device has "
                         "%llu",
                         stage, g->lmem, (unsigned long long)di->local_mem_bytes);
    return GDN_STATUS_OK;
}

static bool lmem_fits(const struct gdn_device *dev, size_t bytes)
{
    return !dev->info.local_mem_bytes || bytes <= dev->info.local_mem_bytes;
}

static bool wg_fits(const struct gdn_device *dev, int ty, int tx)
{
    return !dev->info.max_work_group_size || (size_t)ty * (size_t)tx <= dev->info.max_work_group_size;
}

/* The legal work-group sides of every backward stage (each divides 64). */
#define BWD_SIDES 3, {4, 8, 16}

static size_t max_sz(size_t a, size_t b)
{
    return a > b ? a : b;
}

/* The last entry of a plan's define list: room for GDN_TILE_UNROLL. */
#define UNROLL_SLOT {NULL, 0}

/* A plan's n defines d[0 ... n-1] and, for a nonzero unroll, GDN_TILE_UNROLL
 * in d[n] (UNROLL_SLOT) into g's option string. */
static bool format_defines(struct gdn_define *d, size_t n, int unroll, struct launch_geom *g)
{
    n += gdn__gd_unroll_define(unroll, d + n);
    return gdn__defines_format(d, n, g->defines, sizeof(g->defines));
}

/* B3: dv_local_bwd.cl */
struct dvl_plan {
    int                bk, bv, ty, tx;
    int                vec;    /* VEC: gated_delta_dv_local_v, float4 operand reads; 2: on
                                  row-major operands copied a tile ahead; 3: 2's copies,
                                  the products on warp tiles of 16 x 8 (GDN_TC; BK 16,
                                  TX 16, TY 8 or 16) */
    int                unroll; /* UNROLL: GDN_TILE_UNROLL (gated_delta.h) */
    bool               async;  /* not tuned: VEC=2's and 3's copies are cp.async
                                  (GDN_ASYNC=1) and VEC=3's products 3xTF32 mma.sync
                                  (GDN_TC=1), set from gdn__gd_cp_async */
    struct launch_geom g;
};

static size_t dvl_lmem(const struct dvl_plan *p)
{
    if (p->vec == 3) { /* k, q slots (ld BK + 4), then Akq (ld 68) over them; do slots, G */
        const size_t r1 = max_sz((size_t)4 * CH * (p->bk + 4), (size_t)CH * (CH + 4));
        return (r1 + (size_t)2 * CH * (p->bv + 8) + CH) * 4;
    }
    if (p->vec == 2) { /* Akq and do slot 1, then do slot 0 past the k, q slots */
        const size_t d0 = max_sz((size_t)CH * (CH + p->bv), (size_t)4 * CH * (p->bk + 4));
        return (d0 + (size_t)CH * p->bv) * 4;
    }
    if (p->vec) { /* k, q tiles, then Akq and the do tile over them; a float4 array */
        const size_t lda = CH + 4, ldb = (size_t)p->bv + 4;
        return ((max_sz((size_t)2 * p->bk * lda, CH * (lda + ldb)) + 3) / 4 * 4 + CH) * 4;
    }
    return (size_t)(CH * (CH + 1) + 64) * 4 +
           max_sz((size_t)2 * CH * (p->bk + 1), (size_t)CH * (p->bv + 1)) * 4;
}

/* The kernels' static checks (#error in dv_local_bwd.cl). */
static bool dvl_plan_ok(const struct gdn_gd_shape *s, const struct dvl_plan *p)
{
    if (p->bk < 1 || p->bv < 1 || p->ty < 1 || p->tx < 1 || s->K % p->bk || s->V % p->bv ||
        p->bv % p->tx || CH % p->ty || CH % p->tx)
        return false;
    if (p->vec == 1) /* 64/TY, 64/TX, BV/TX multiples of 4 */
        return (CH / p->ty) % 4 == 0 && (CH / p->tx) % 4 == 0 && (p->bv / p->tx) % 4 == 0;
    if (p->vec == 2) /* BK a multiple of 4 (float4 copies), BV/TX of 4 */
        return p->bk % 4 == 0 && (p->bv / p->tx) % 4 == 0;
    if (p->vec == 3) /* TX 16, TY 8 or 16, BK 16, BV a multiple of 4 (TY TX / 32) */
        return p->tx == 16 && (p->ty == 8 || p->ty == 16) && p->bk == 16 &&
               p->bv % (p->ty * p->tx / 8) == 0;
    return p->vec == 0;
}

static void dvl_plan_default(const struct gdn_device *dev, const struct gdn_gd_shape *s,
                             struct dvl_plan *p)
{
    p->unroll = 0; /* the compiler's choice (sm_90 rows in lib/tune/db_builtin.c) */
    p->async  = false;
    /* GPUs with cp.async and mma.sync (GDN_DEVICE_FLAG_INLINE_PTX): the
     * products on the tensor cores (VEC=3, 3xTF32), 8 x 16 work-items = four
     * SIMD groups, V tiles of 32. H200 (K = V = 128, B = 4, T = 4096, H = 16),
     * two alternated runs: 0.229-0.230 ms against 0.238 for VEC=2 below
     * (16 x 16: 0.236-0.239; V tiles of 16: 0.253-0.254; 64 do not fit in
     * 48 KiB). Next, the form whose copies
     * run a tile ahead, 8 x 16 work-items (TY x TX), slices of 16, V tiles
     * of 64. H200 (K = V = 128, B = 4, T = 4096, H = 16), three alternated
     * runs: 0.236-0.238 ms against 0.305-0.306 for the VEC=1 plan below
     * (16 x 16: 0.246-0.247; 16 x 8: 0.255; V tiles of 32, 0.266-0.267). */
    if (gdn__gd_cp_async(dev)) {
        p->vec = 3, p->ty = 8, p->tx = 16, p->bk = 16;
        p->bv = pick_div(s->V, 32);
        if (dvl_plan_ok(s, p) && lmem_fits(dev, dvl_lmem(p)))
            return;
        p->vec = 2;
        p->bv = pick_div(s->V, 64);
        if (dvl_plan_ok(s, p) && lmem_fits(dev, dvl_lmem(p)))
            return;
    }
    /* GPUs: the float4 form, 16 x 8 work-items, V tiles of 64 where legal.
     * H200 (K = V = 128, B = 4, T = 4096, H = 16), since its transposed
     * stagings read whole sectors: 0.324 ms against 0.461 for the best
     * scalar plan (6 plans; 0.50-0.65 ms before). */
    if (dev->info.flags & GDN_DEVICE_FLAG_GPU) {
        p->vec = 1, p->ty = 16, p->tx = 8;
        p->bk = pick_div(s->K, 32);
        p->bv = pick_div(s->V, 64);
        if (dvl_plan_ok(s, p) && lmem_fits(dev, dvl_lmem(p)))
            return;
    }
    p->vec = 0;
    p->bk  = pick_div(s->K, 32);
    p->bv  = pick_div(s->V, 32);
    p->ty = p->tx = 16;
    if (!lmem_fits(dev, dvl_lmem(p))) /* 32 KiB devices */
        p->bk = p->bv = 16;
}

static void dvl_plan_from(const int32_t *v, struct dvl_plan *p)
{
    p->bk = v[0], p->bv = v[1], p->ty = v[2], p->tx = v[3], p->vec = v[4], p->unroll = v[5];
    p->async = false;
}

/* Tuning space: BK, BV, TY, TX, VEC, UNROLL (the plan's fields in this order). */
static bool dvl_space_valid(const int32_t *v, const void *problem, const struct gdn_device *dev)
{
    const struct gdn_gd_shape *s = problem;
    struct dvl_plan            p;
    dvl_plan_from(v, &p);
    return dvl_plan_ok(s, &p) && wg_fits(dev, p.ty, p.tx) && lmem_fits(dev, dvl_lmem(&p)) &&
           gdn__gd_loop_limit_ok(dev, s, p.ty * p.tx, -1);
}

static void dvl_space_defaults(int32_t *v, const void *problem, const struct gdn_device *dev)
{
    struct dvl_plan p;
    dvl_plan_default(dev, problem, &p);
    v[0] = p.bk, v[1] = p.bv, v[2] = p.ty, v[3] = p.tx, v[4] = p.vec, v[5] = p.unroll;
}

static const struct gdn_tune_param dvl_params[] = {
    {"BK", 16, 3, {16, 32, 64}},
    {"BV", 16, 3, {16, 32, 64}},
    {"TY", 16, BWD_SIDES},
    {"TX", 16, BWD_SIDES},
    {"VEC", 0, 4, {0, 1, 2, 3}},
    GDN_GD_UNROLL_PARAM,
};
const struct gdn_tune_space gdn__gd_dvl_space = {
    "gated_delta/dv_local", (int32_t)GDN_ARRAY_SIZE(dvl_params), dvl_params, dvl_space_valid,
    dvl_space_defaults};

static gdn_status dvl_plan_finish(gdn_context *ctx, const struct gdn_gd_shape *s,
                                  struct dvl_plan *p)
{
    struct gdn_define   d[] = {{"K_DIM", s->K}, {"V_DIM", s->V}, {"BK", p->bk},
                               {"BV", p->bv},   {"TY", p->ty},   {"TX", p->tx},
                               {"VEC", p->vec}, {NULL, 0} /* GDN_ASYNC */,
                               {NULL, 0} /* GDN_TC */, UNROLL_SLOT};
    struct launch_geom *g   = &p->g;
    size_t              n   = GDN_ARRAY_SIZE(d) - 3;
    if (!dvl_plan_ok(s, p))
        return gdn__fail(ctx, GDN_STATUS_INTERNAL, "dv_local plan: illegal tile sizes");
    p->async = p->vec >= 2 && gdn__gd_cp_async(&ctx->dev);
    n += gdn__gd_async_define(p->async, p->vec == 3, d + n);
    g->lmem = dvl_lmem(p);
    g->local[0] = (size_t)(p->ty * p->tx), g->local[1] = g->local[2] = 1;
    g->global[0] = g->local[0], g->global[1] = (size_t)s->NT, g->global[2] = (size_t)s->HV;
    if (!format_defines(d, n, p->unroll, g))
        return gdn__fail(ctx, GDN_STATUS_INTERNAL, "dv_local plan: defines too long");
    return geom_check(ctx, "dv_local", g);
}

/* B4: state_bwd.cl */
struct sbwd_plan {
    int                bv, bks, ty, tx;
    int                chunks; /* CHUNKS (host side): chunks per launch, 0 = all */
    int                rs;     /* RS: 0 = gated_delta_state_bwd (dH in local memory);
                                  1 = gated_delta_state_bwd_rs (dH in registers, BKS
                                  its k slice width, next slice prefetched);
                                  2 = the same with contiguous micro-tiles read as
                                  float4 (RSVEC); 3 = dH in registers with row-major
                                  slices copied ahead into three slots (RSVEC=2,
                                  cp.async where gdn__gd_cp_async) */
    int                unroll; /* UNROLL: GDN_TILE_UNROLL (gated_delta.h) */
    bool               async;  /* not tuned: RS = 3's copies are cp.async (GDN_ASYNC=1) */
    struct launch_geom g;
};

static size_t sbwd_lmem(const struct gdn_gd_shape *s, int bv, int bks, int rs)
{
    if (rs == 3) { /* three slots of a k slice (rows padded) or a q / w slice */
        const size_t bi = (size_t)CH * (size_t)bks / (size_t)s->K;
        return (3 * max_sz((size_t)CH * (size_t)(bks + 4), bi * (size_t)s->K) +
                max_sz((size_t)s->K, 2 * CH) * bv + 2 * CH) *
               4;
    }
    if (rs == 2) { /* k slice transposed or q / w slice, rows padded to 4 floats */
        const size_t bi = (size_t)CH * (size_t)bks / (size_t)s->K;
        return (max_sz((size_t)bks * (CH + 4), bi * (size_t)(s->K + 4)) +
                max_sz((size_t)s->K, 2 * CH) * bv + 2 * CH) *
               4;
    }
    if (rs) /* k / q / w slice; dH, then [do ; dv2]; G and exp2(G) */
        return ((size_t)CH * (bks + 1) + max_sz((size_t)s->K, 2 * CH) * bv + 2 * CH) * 4;
    return ((size_t)s->K * bv + (size_t)2 * CH * bv + (size_t)2 * CH * bks + CH) * 4;
}

/* The kernels' static checks (#error in state_bwd.cl; a REGSTATE build also
 * compiles the local-memory kernel, so its checks hold for RS = 1 too). */
static bool sbwd_plan_ok(const struct gdn_gd_shape *s, int bv, int bks, int ty, int tx, int rs)
{
    if (bv < 1 || bks < 1 || ty < 1 || tx < 1 || s->V % bv || s->K % bks || bv % tx ||
        bks % ty || CH % ty)
        return false;
    if (rs == 3) /* state_bwd.cl, RSVEC=2 */
        return s->K % ty == 0 && CH % (s->K / bks) == 0 && (s->K / ty) % 4 == 0 &&
               (bv / tx) % 4 == 0;
    if (rs == 1 || rs == 2) {
        if (s->K % ty || CH % (s->K / bks) || (CH * bks) % (ty * tx))
            return false;
        /* RSVEC: contiguous groups of 4 rows and 4 columns per work-item,
         * slices moved as whole float4s */
        return rs == 1 || ((CH / ty) % 4 == 0 && (s->K / ty) % 4 == 0 && (bv / tx) % 4 == 0 &&
                           (CH * bks) % (4 * ty * tx) == 0);
    }
    return rs == 0;
}

static void sbwd_plan_default(const struct gdn_device *dev, const struct gdn_gd_shape *s,
                              struct sbwd_plan *p)
{
    p->unroll = 0; /* the compiler's choice (sm_90 rows in lib/tune/db_builtin.c) */
    p->chunks = gdn__gd_scan_chunks_default(dev, s);
    /* GPUs: dH in registers, 16 x 16 work-items. The V tile trades work per
     * group against the number of groups (sequences x value heads x V / BV),
     * so it depends on the batch, which a tuning-database bucket does not
     * know. H200, K = V = 128, H = 16, 3.90 ms for the local-memory kernel
     * at B = 4, T = 4096:
     *   B = 4, T = 4096:  BV 64, k slices of 32: 1.38 ms; BV 32, slices of 64: 1.95 ms
     *   B = 2, T = 8192:  2.74 ms;                        1.95 ms
     *   B = 1, T = 16384: 5.49 ms;                        3.89 ms
     * (BV 16 or 16 x 8 work-items: no better at any of the three). So a V
     * tile of 64 once it still gives about one group per compute unit.
     * The float4 form (RS = 2) where the same plan allows it (BV / TX a
     * multiple of 4: BV = 64 with 16 x 16 work-items), else RS = 1 (B = 4:
     * 1.30 against 1.40 ms; at B = 1, T = 16384 no RS = 2 plan of three
     * beat RS = 1's 3.95 ms by more than 1%). Later (register scan with the
     * float4 stagings, B = 1, T = 16384): BV 16, slices of 64, 3.27 ms
     * against 3.94 ms for BV 32 (64 groups on 132 compute units). With the
     * float4 slices, BV 32 in the float4 form with 16 x 8 work-items: 2.80
     * ms against 3.26 for BV 16 (RS = 1); BV 16 with 16 x 4 float4
     * work-items, 3.38-3.76 ms. So below about one group per compute unit
     * for BV 64: BV 32 with 16 x 8 work-items, and BV 16 (16 x 16) only
     * below 0.45 groups per compute unit for BV 32 (not measured). */
    /* Later, with cp.async (gdn__gd_cp_async): dH in registers and row-major
     * slices copied two ahead into three slots (RS = 3), V tiles of 32,
     * slices of 32, 16 x 8 work-items (H200, B = 4, T = 4096, fwd+bwd, four
     * runs: 0.910-0.913 ms against 0.943-0.948 for RS = 2 with V tiles of 64;
     * UNROLL=0, 0.944-0.948; slices of 16, 2.27-2.35 ms; 8 x 8 work-items,
     * 2.73-2.78). At B = 1, T = 16384 (0.48 groups per compute unit) it
     * loses: 3.27 ms against 2.60 for the RS = 2 plan below, and at B = 2,
     * T = 8192 (0.97 per compute unit): 3.19-3.24 against 1.72; so, as
     * state_fwd's copied form (chunk_fwd.c), from 1.5 groups per compute
     * unit. */
    if (dev->info.flags & GDN_DEVICE_FLAG_GPU) {
        const int64_t groups64 = (int64_t)s->N * s->HV * (s->V / 64);
        const int64_t groups32 = (int64_t)s->N * s->HV * (s->V / 32);
        const int64_t cu       = (int64_t)dev->info.compute_units;
        if (gdn__gd_cp_async(dev) && s->V % 32 == 0 && groups32 * 2 >= cu * 3) {
            p->rs = 3, p->bv = 32, p->bks = 32, p->ty = 16, p->tx = 8;
            if (sbwd_plan_ok(s, p->bv, p->bks, p->ty, p->tx, 3) &&
                lmem_fits(dev, sbwd_lmem(s, p->bv, p->bks, 3)))
                return;
        }
        p->rs = 1, p->ty = p->tx = 16;
        p->bks = s->K % 64 ? 16 : 64; /* slices of 64 below V tiles of 64 */
        if (s->V % 64 == 0 && groups64 * 10 >= cu * 9)
            p->bv = 64, p->bks = 32;
        else if (s->V % 32 == 0 && groups32 * 20 >= cu * 9)
            p->bv = 32, p->tx = 8;
        else
            p->bv = pick_div(s->V, 16);
        for (; p->bks >= 16; p->bks /= 2)
            if (sbwd_plan_ok(s, p->bv, p->bks, p->ty, p->tx, 1) &&
                lmem_fits(dev, sbwd_lmem(s, p->bv, p->bks, 1))) {
                if (sbwd_plan_ok(s, p->bv, p->bks, p->ty, p->tx, 2) &&
                    lmem_fits(dev, sbwd_lmem(s, p->bv, p->bks, 2)))
                    p->rs = 2;
                return;
            }
    }
    p->rs  = 0;
    p->bks = 16;
    p->ty = p->tx = 16;
    p->bv          = pick_div(s->V, 32);
    if (p->bv > 16 && !lmem_fits(dev, sbwd_lmem(s, p->bv, p->bks, 0)))
        p->bv = 16;
    if (!lmem_fits(dev, sbwd_lmem(s, p->bv, p->bks, 0))) /* K = 256 on 32 KiB devices */
        p->bv = p->tx = 8;
}

/* Tuning space: BV, BKS, TY, TX, CHUNKS, RS, UNROLL. */
static bool sbwd_space_valid(const int32_t *v, const void *problem, const struct gdn_device *dev)
{
    const struct gdn_gd_shape *s  = problem;
    const int bv = v[0], bks = v[1], ty = v[2], tx = v[3], rs = v[5];
    return sbwd_plan_ok(s, bv, bks, ty, tx, rs) && wg_fits(dev, ty, tx) &&
           lmem_fits(dev, sbwd_lmem(s, bv, bks, rs)) &&
           gdn__gd_loop_limit_ok(dev, s, ty * tx, v[4]);
}

static void sbwd_space_defaults(int32_t *v, const void *problem, const struct gdn_device *dev)
{
    struct sbwd_plan p;
    sbwd_plan_default(dev, problem, &p);
    v[0] = p.bv, v[1] = p.bks, v[2] = p.ty, v[3] = p.tx, v[4] = p.chunks, v[5] = p.rs;
    v[6] = p.unroll;
}

static void sbwd_plan_from(const int32_t *v, struct sbwd_plan *p)
{
    p->bv = v[0], p->bks = v[1], p->ty = v[2], p->tx = v[3], p->chunks = v[4], p->rs = v[5];
    p->unroll = v[6];
}

static const struct gdn_tune_param sbwd_params[] = {
    {"BV", 16, 4, {8, 16, 32, 64}},
    {"BKS", 16, 3, {16, 32, 64}},
    {"TY", 16, BWD_SIDES},
    {"TX", 16, BWD_SIDES},
    {"CHUNKS", 0, GDN_GD_SCAN_CHUNKS},
    {"RS", 0, 4, {0, 1, 2, 3}},
    GDN_GD_UNROLL_PARAM,
};
const struct gdn_tune_space gdn__gd_sbwd_space = {
    "gated_delta/state_bwd", (int32_t)GDN_ARRAY_SIZE(sbwd_params), sbwd_params,
    sbwd_space_valid, sbwd_space_defaults};

static gdn_status sbwd_plan_finish(gdn_context *ctx, const struct gdn_gd_shape *s,
                                   struct sbwd_plan *p)
{
    struct gdn_define   d[9] = {{"K_DIM", s->K}, {"V_DIM", s->V}, {"BV", p->bv},
                                {"BKS", p->bks}, {"TY", p->ty},   {"TX", p->tx}};
    struct launch_geom *g    = &p->g;
    size_t              nd   = 6;
    if (!sbwd_plan_ok(s, p->bv, p->bks, p->ty, p->tx, p->rs))
        return gdn__fail(ctx, GDN_STATUS_INTERNAL, "state_bwd plan: illegal tile sizes");
    g->lmem                     = sbwd_lmem(s, p->bv, p->bks, p->rs);
    g->local[0] = (size_t)(p->ty * p->tx), g->local[1] = g->local[2] = 1;
    g->global[0] = g->local[0] * (size_t)(s->V / p->bv);
    g->global[1] = (size_t)s->N, g->global[2] = (size_t)s->HV;
    if (p->rs >= 1)
        d[nd++] = (struct gdn_define){"REGSTATE", 1};
    if (p->rs >= 2)
        d[nd++] = (struct gdn_define){"RSVEC", p->rs - 1};
    p->async = p->rs == 3 && gdn__gd_cp_async(&ctx->dev);
    nd += gdn__gd_async_define(p->async, false, d + nd);
    if (!format_defines(d, nd, p->unroll, g))
        return gdn__fail(ctx, GDN_STATUS_INTERNAL, "state_bwd plan: defines too long");
    return geom_check(ctx, "state_bwd", g);
}

static const char *sbwd_entry(const struct sbwd_plan *p)
{
    return p->rs ? "gated_delta_state_bwd_rs" : "gated_delta_state_bwd";
}

/* B5: dqkwg_bwd.cl */
struct dqkwg_plan {
    int                bk, bvt, ty, tx;
    int                vec;    /* VEC: gated_delta_dqkwg_v, float4 operand reads (2: prefetched;
                                  3: the products on warp tiles, GDN_TC, TY = TX = 16, BK =
                                  64, BVT = 8) */
    int                unroll; /* UNROLL: GDN_TILE_UNROLL (gated_delta.h) */
    struct launch_geom g;
};

static size_t dqkwg_lmem(int bk, int bvt, int ty, int tx, int vec)
{
    size_t a, b, c = (size_t)CH * (tx + ty) + (size_t)ty * tx;
    if (vec == 3) /* three slots of five 64 x BVT tiles (ld BVT + 4); q, k tiles (ld BK + 4) */
        return ((max_sz(15 * (size_t)CH * (size_t)(bvt + 4), 2 * (size_t)CH * (size_t)(bk + 4)) +
                 3) / 4 * 4 + CH) * 4;
    if (vec) {
        const size_t lda = CH + 4, ldb = (size_t)bk + 4;
        a = max_sz((size_t)bvt * (3 * lda + 2 * ldb), (size_t)bk * 2 * lda);
        b = CH * (lda + ldb);
        return ((max_sz(max_sz(a, b), c) + 3) / 4 * 4 + CH) * 4; /* a float4 array */
    }
    a = (size_t)(3 * CH + 2 * bk) * (bvt + 1);
    b = (size_t)CH * (CH + 1) + (size_t)CH * (bk + 1);
    return (max_sz(max_sz(a, b), c) + CH) * 4;
}

/* The kernels' static constraints (dqkwg_bwd.cl #errors on the others):
 * VEC = 1 and 2 want micro-tiles of whole float4 groups, and VEC = 2
 * prefetches whole tiles per work-item. */
static bool dqkwg_plan_ok(const struct dqkwg_plan *p, const struct gdn_gd_shape *s)
{
    const int wg = p->ty * p->tx;
    if (s->K % p->bk || s->V % p->bvt || p->bk % p->tx || CH % p->ty || CH % p->tx)
        return false;
    if (p->vec == 3)
        return p->ty == 16 && p->tx == 16 && p->bk == 64 && p->bvt == 8;
    return !p->vec ||
           ((CH / p->ty) % 4 == 0 && (CH / p->tx) % 4 == 0 && (p->bk / p->tx) % 4 == 0 &&
            p->bvt % 4 == 0 &&
            (p->vec != 2 || ((CH * (p->bvt / 4)) % wg == 0 && (p->bk * (p->bvt / 4)) % wg == 0)));
}

static void dqkwg_plan_default(const struct gdn_device *dev, const struct gdn_gd_shape *s,
                               struct dqkwg_plan *p)
{
    p->unroll = 0; /* the compiler's choice (sm_90 rows in lib/tune/db_builtin.c) */
    /* GPUs with cp.async and mma.sync: the products on the tensor cores
     * (VEC=3; H200, K = V = 128, B = 4, T = 4096, H = 16: 1.395-1.400 ms
     * against 1.631 for the VEC=2 row in lib/tune/db_builtin.c, two
     * alternated runs; 128 registers, 45 KiB; capped at 80 or 64 registers
     * it spills, 1.73-1.75 and 2.39 ms). */
    if (gdn__gd_cp_async(dev) && s->K % 64 == 0 && s->V % 8 == 0) {
        p->vec = 3, p->ty = p->tx = 16, p->bk = 64, p->bvt = 8;
        if (lmem_fits(dev, dqkwg_lmem(p->bk, p->bvt, p->ty, p->tx, 3)))
            return;
    }
    /* GPUs: the float4 variant, 16 x 16 work-items over K tiles of 64
     * (4 x 4 micro-tiles of every product; H200, K = V = 128, B = 4, T =
     * 4096, H = 16: 3.40 ms against 4.06 for the scalar kernel's best plan).
     * Its sm_90 row (8 x 16 work-items, prefetched V tiles, 2.80 ms) needs
     * about 250 registers per work-item, too many to be a generic choice. */
    if ((dev->info.flags & GDN_DEVICE_FLAG_GPU) && s->K % 64 == 0) {
        p->vec = 1, p->ty = p->tx = 16, p->bk = 64;
        p->bvt = pick_div(s->V, 32);
        if (p->bvt > 16 && !lmem_fits(dev, dqkwg_lmem(p->bk, p->bvt, p->ty, p->tx, 1)))
            p->bvt = 16;
        if (dqkwg_plan_ok(p, s) && lmem_fits(dev, dqkwg_lmem(p->bk, p->bvt, p->ty, p->tx, 1)))
            return;
    }
    p->vec = 0;
    p->ty = p->tx = 16;
    p->bk         = pick_div(s->K, 64);
    p->bvt        = pick_div(s->V, 32);
    if (p->bvt > 16 && !lmem_fits(dev, dqkwg_lmem(p->bk, p->bvt, p->ty, p->tx, 0)))
        p->bvt = 16;
    if (p->bk > 32 && !lmem_fits(dev, dqkwg_lmem(p->bk, p->bvt, p->ty, p->tx, 0)))
        p->bk = pick_div(s->K, 32);
}

/* Tuning space: BK, BVT, TY, TX, VEC, UNROLL (the plan's fields in this order). */
static void dqkwg_plan_from(const int32_t *v, struct dqkwg_plan *p)
{
    p->bk = v[0], p->bvt = v[1], p->ty = v[2], p->tx = v[3], p->vec = v[4], p->unroll = v[5];
}

static bool dqkwg_space_valid(const int32_t *v, const void *problem, const struct gdn_device *dev)
{
    const struct gdn_gd_shape *s = problem;
    struct dqkwg_plan          p;
    dqkwg_plan_from(v, &p);
    return dqkwg_plan_ok(&p, s) && wg_fits(dev, p.ty, p.tx) &&
           lmem_fits(dev, dqkwg_lmem(p.bk, p.bvt, p.ty, p.tx, p.vec)) &&
           gdn__gd_loop_limit_ok(dev, s, p.ty * p.tx, -1);
}

static void dqkwg_space_defaults(int32_t *v, const void *problem, const struct gdn_device *dev)
{
    struct dqkwg_plan p;
    dqkwg_plan_default(dev, problem, &p);
    v[0] = p.bk, v[1] = p.bvt, v[2] = p.ty, v[3] = p.tx, v[4] = p.vec, v[5] = p.unroll;
}

static const struct gdn_tune_param dqkwg_params[] = {
    {"BK", 16, 3, {16, 32, 64}},
    {"BVT", 16, 4, {8, 16, 32, 64}},
    {"TY", 16, BWD_SIDES},
    {"TX", 16, BWD_SIDES},
    {"VEC", 0, 4, {0, 1, 2, 3}},
    GDN_GD_UNROLL_PARAM,
};
const struct gdn_tune_space gdn__gd_dqkwg_space = {
    "gated_delta/dqkwg", (int32_t)GDN_ARRAY_SIZE(dqkwg_params), dqkwg_params,
    dqkwg_space_valid, dqkwg_space_defaults};

static gdn_status dqkwg_plan_finish(gdn_context *ctx, const struct gdn_gd_shape *s,
                                    struct dqkwg_plan *p)
{
    struct gdn_define   d[] = {{"K_DIM", s->K}, {"V_DIM", s->V}, {"BK", p->bk},
                               {"BVT", p->bvt}, {"TY", p->ty},   {"TX", p->tx},
                               {"VEC", p->vec}, {NULL, 0} /* GDN_ASYNC */,
                               {NULL, 0} /* GDN_TC */, UNROLL_SLOT};
    struct launch_geom *g   = &p->g;
    size_t              n   = GDN_ARRAY_SIZE(d) - 3;
    if (!dqkwg_plan_ok(p, s))
        return gdn__fail(ctx, GDN_STATUS_INTERNAL, "dqkwg plan: illegal tile sizes");
    /* cp.async copies, 3xTF32 products */
    n += gdn__gd_async_define(p->vec == 3 && gdn__gd_cp_async(&ctx->dev), true, d + n);
    g->lmem = dqkwg_lmem(p->bk, p->bvt, p->ty, p->tx, p->vec);
    g->local[0] = (size_t)(p->ty * p->tx), g->local[1] = g->local[2] = 1;
    g->global[0] = g->local[0] * (size_t)(s->K / p->bk);
    g->global[1] = (size_t)s->NT, g->global[2] = (size_t)s->HV;
    if (!format_defines(d, n, p->unroll, g))
        return gdn__fail(ctx, GDN_STATUS_INTERNAL, "dqkwg plan: defines too long");
    return geom_check(ctx, "dqkwg", g);
}

/* B6: wy_bwd.cl */
struct wyb_plan {
    int                bk, bv, ty, tx;
    int                t_in_global; /* T_IN_GLOBAL: dT tile in global scratch */
    int                vec;         /* VEC: float4 operand reads (GDN_TILE_MMA4) */
    int                unroll;      /* UNROLL: GDN_TILE_UNROLL (gated_delta.h) */
    int                maxreg;      /* MAXREG: GDN_MAXREG (gated_delta.h) */
    struct launch_geom g;
};

static size_t wyb_lmem(const struct wyb_plan *p)
{
    size_t tiles;
    if (p->vec) { /* Ai 64 x 64, the dT/dA tile and the staged tiles (sW; the
                     transposed ones with rows of 64 + 4), gates */
        tiles = max_sz(max_sz((size_t)2 * p->bk * (CH + 4) + (size_t)CH * (p->bk + 4),
                              (size_t)2 * p->bv * (CH + 4) + (size_t)CH * (p->bv + 4)),
                       (size_t)CH * CH + (size_t)CH * (p->bk + 4));
        return ((size_t)CH * CH + tiles + 3 * CH) * 4;
    }
    tiles = max_sz(max_sz((size_t)3 * CH * (p->bk + 1), (size_t)3 * CH * (p->bv + 1)),
                   (size_t)CH * (2 * p->tx + p->ty));
    return ((size_t)(p->t_in_global ? 1 : 2) * CH * (CH + 1) + tiles + 3 * CH) * 4;
}

/* The kernel's static constraints (wy_bwd.cl #errors on the others). */
static bool wyb_plan_ok(const struct wyb_plan *p, const struct gdn_gd_shape *s)
{
    if (s->K % p->bk || s->V % p->bv || p->bk % p->tx || p->bv % p->tx || CH % p->ty ||
        CH % p->tx)
        return false;
    /* VEC: micro-tiles of whole float4 groups; 64 x 64 / 16 blocks spread evenly */
    return !p->vec || (!p->t_in_global && (CH / p->ty) % 4 == 0 && (CH / p->tx) % 4 == 0 &&
                       (p->bk / p->tx) % 4 == 0 && (p->bv / p->tx) % 4 == 0 &&
                       (CH * CH / 16) % (p->ty * p->tx) == 0);
}

static void wyb_plan_default(const struct gdn_device *dev, const struct gdn_gd_shape *s,
                             struct wyb_plan *p)
{
    p->unroll = 0; /* the compiler's choice (sm_90 rows in lib/tune/db_builtin.c) */
    p->maxreg = 0;
    /* GPUs: the float4 variant, 16 x 8 work-items, 4 x 8 micro-tiles on the
     * 64 x 64 products and 4 x 4 on the 64 x 32 ones (42 KiB of local
     * memory at BK = BV = 32). */
    if (dev->info.flags & GDN_DEVICE_FLAG_GPU) {
        p->vec = 1, p->t_in_global = 0;
        p->bk = p->bv = 32;
        p->ty = 16, p->tx = 8;
        if (wyb_plan_ok(p, s) && wg_fits(dev, p->ty, p->tx) && lmem_fits(dev, wyb_lmem(p)))
            return;
        p->bk = p->bv = 16; /* K or V not a multiple of 32 */
        p->tx = 4;
        if (wyb_plan_ok(p, s) && wg_fits(dev, p->ty, p->tx) && lmem_fits(dev, wyb_lmem(p)))
            return;
    }
    p->vec = 0;
    p->bk = p->bv = 16;
    p->ty = p->tx = 16;
    p->t_in_global = 0;
    if (!lmem_fits(dev, wyb_lmem(p))) /* 32 KiB devices */
        p->t_in_global = 1;
}

/* Tuning space: BK, BV, TY, TX, T_IN_GLOBAL, VEC, UNROLL, MAXREG. */
static void wyb_plan_from(const int32_t *v, struct wyb_plan *p)
{
    p->bk = v[0], p->bv = v[1], p->ty = v[2], p->tx = v[3], p->t_in_global = v[4], p->vec = v[5];
    p->unroll = v[6], p->maxreg = v[7];
}

static bool wyb_space_valid(const int32_t *v, const void *problem, const struct gdn_device *dev)
{
    const struct gdn_gd_shape *s = problem;
    struct wyb_plan            p;
    wyb_plan_from(v, &p);
    return wyb_plan_ok(&p, s) && wg_fits(dev, p.ty, p.tx) && lmem_fits(dev, wyb_lmem(&p)) &&
           gdn__gd_loop_limit_ok(dev, s, p.ty * p.tx, -1) && gdn__gd_maxreg_ok(dev, p.maxreg);
}

static void wyb_space_defaults(int32_t *v, const void *problem, const struct gdn_device *dev)
{
    struct wyb_plan p;
    wyb_plan_default(dev, problem, &p);
    v[0] = p.bk, v[1] = p.bv, v[2] = p.ty, v[3] = p.tx, v[4] = p.t_in_global, v[5] = p.vec;
    v[6] = p.unroll, v[7] = p.maxreg;
}

static const struct gdn_tune_param wyb_params[] = {
    {"BK", 16, 3, {16, 32, 64}},
    {"BV", 16, 3, {16, 32, 64}},
    {"TY", 16, BWD_SIDES},
    {"TX", 16, BWD_SIDES},
    {"T_IN_GLOBAL", 0, 2, {0, 1}},
    {"VEC", 0, 2, {0, 1}},
    GDN_GD_UNROLL_PARAM,
    GDN_GD_MAXREG_PARAM,
};
const struct gdn_tune_space gdn__gd_wyb_space = {
    "gated_delta/wy_bwd", (int32_t)GDN_ARRAY_SIZE(wyb_params), wyb_params, wyb_space_valid,
    wyb_space_defaults};

static gdn_status wyb_plan_finish(gdn_context *ctx, const struct gdn_gd_shape *s,
                                  struct wyb_plan *p)
{
    struct gdn_define   d[] = {{"K_DIM", s->K},
                               {"V_DIM", s->V},
                               {"BK", p->bk},
                               {"BV", p->bv},
                               {"TY", p->ty},
                               {"TX", p->tx},
                               {"T_IN_GLOBAL", p->t_in_global},
                               {"VEC", p->vec},
                               {NULL, 0} /* GDN_MAXREG */,
                               UNROLL_SLOT};
    struct launch_geom *g   = &p->g;
    size_t              n   = GDN_ARRAY_SIZE(d) - 2;
    if (!wyb_plan_ok(p, s))
        return gdn__fail(ctx, GDN_STATUS_INTERNAL, "wy_bwd plan: illegal tile sizes");
    n += gdn__gd_maxreg_define(p->maxreg, d + n);
    g->lmem                     = wyb_lmem(p);
    g->local[0] = (size_t)(p->ty * p->tx), g->local[1] = g->local[2] = 1;
    g->global[0] = g->local[0], g->global[1] = (size_t)s->NT, g->global[2] = (size_t)s->HV;
    if (!format_defines(d, n, p->unroll, g))
        return gdn__fail(ctx, GDN_STATUS_INTERNAL, "wy_bwd plan: defines too long");
    return geom_check(ctx, "wy_bwd", g);
}

/* B7-B9 and the GVA sum: prep_bwd.cl (three kernels, one program). */
struct prepb_plan {
    int                rwg, qrows;
    struct launch_geom gate, param, qk;
};

static void prepb_plan_default(const gdn_context *ctx, struct prepb_plan *p)
{
    uint32_t mx = ctx->dev.info.max_work_group_size ? ctx->dev.info.max_work_group_size : 256;
    p->rwg      = 256;
    while ((uint32_t)p->rwg > mx && p->rwg > 64)
        p->rwg /= 2;
    p->qrows = 16;
    while ((uint32_t)(16 * p->qrows) > mx && p->qrows > 1)
        p->qrows /= 2;
}

static gdn_status prepb_plan_finish(gdn_context *ctx, const struct gdn_gd_shape *s,
                                    struct prepb_plan *p)
{
    const struct gdn_define d[] = {{"K_DIM", s->K}, {"RWG", p->rwg}, {"QROWS", p->qrows}};
    size_t                  rows = (size_t)s->T * (size_t)s->H;
    gdn_status              st;

    if (!gdn__defines_format(d, GDN_ARRAY_SIZE(d), p->gate.defines, sizeof(p->gate.defines)))
        return gdn__fail(ctx, GDN_STATUS_INTERNAL, "prep_bwd plan: defines too long");
    memcpy(p->param.defines, p->gate.defines, sizeof(p->gate.defines));
    memcpy(p->qk.defines, p->gate.defines, sizeof(p->gate.defines));
    p->gate.local[0] = CH, p->gate.local[1] = p->gate.local[2] = 1;
    p->gate.global[0] = CH, p->gate.global[1] = (size_t)s->NT, p->gate.global[2] = (size_t)s->HV;
    p->gate.lmem = (size_t)3 * CH * 4;
    p->param.local[0] = (size_t)p->rwg, p->param.local[1] = p->param.local[2] = 1;
    p->param.global[0] = (size_t)p->rwg, p->param.global[1] = (size_t)s->HV;
    p->param.global[2] = 1;
    p->param.lmem      = (size_t)2 * p->rwg * 4;
    p->qk.local[0] = 16, p->qk.local[1] = (size_t)p->qrows, p->qk.local[2] = 1;
    p->qk.global[0] = 16;
    p->qk.global[1] = (rows + (size_t)p->qrows - 1) / (size_t)p->qrows * (size_t)p->qrows;
    p->qk.global[2] = 1;
    p->qk.lmem      = (size_t)16 * p->qrows * 4;
    if ((st = geom_check(ctx, "gate", &p->gate)) || (st = geom_check(ctx, "gate_param", &p->param)))
        return st;
    return geom_check(ctx, "qk", &p->qk);
}

/* The schedule: BWD_FORK. */
static void sched_space_defaults(int32_t *v, const void *problem, const struct gdn_device *dev)
{
    const struct gdn_gd_shape *s = problem;
    /* (sequence, value head, V tile of 32) groups of the forward scan */
    const int64_t groups = (int64_t)s->N * s->HV * ((s->V + 31) / 32);
    /* The two scans, B2 and B4, have one group per sequence, value head
     * and V tile: with few sequences they leave most of a GPU idle, and run
     * together they fill it (NVIDIA's OpenCL runs the kernels of two queues
     * at once). H200, K = V = 128, H = 16, fwd+bwd wall, medians of 20:
     *   B = 1, T = 16384: 8.99 ms against 10.64-10.77 on one queue
     *                     (with the plain forward scan: scan_shared)
     *   B = 2, T = 8192:  7.45-7.51 ms against 7.98-8.00
     *   B = 4, T = 4096:  7.00-7.11 ms against 7.00-7.13 (no change: the
     *                     forward scan's 256 groups of 128 work-items at
     *                     223 registers fill the register files, so the
     *                     reverse scan waits for it).
     * Later (the copied scans, 128 registers in the forward one): B = 4,
     * 6.736-6.740 ms against 6.377-6.382 (kernel times while they overlap:
     * the two forward scans 1.43 ms against 1.25, the reverse scan 1.87
     * against 0.92).
     * With the reverse scan capped at 128 registers (MAXREG's .maxnreg; 24
     * bytes of spills), so that two groups of each scan fit a compute unit's
     * registers together: 6.360-6.445 ms against 6.326-6.334 unforked (the
     * reverse scan 1.57 ms while they overlap, the forward scans 1.47), so
     * the two scans share a limit of the compute unit other than registers.
     * So GPUs fork while the forward scan has at most one group per compute
     * unit (B = 4 above has two; one queue saves the dv_local buffer). On
     * CPUs (PoCL, B = 1, T = 4096, H = 2) the two schedules are within noise
     * of each other. */
    v[0] = (dev->info.flags & GDN_DEVICE_FLAG_GPU) && groups <= (int64_t)dev->info.compute_units;
}

static const struct gdn_tune_param sched_params[] = {
    {"BWD_FORK", 0, 2, {0, 1}},
};
const struct gdn_tune_space gdn__gd_sched_space = {
    "gated_delta/schedule", (int32_t)GDN_ARRAY_SIZE(sched_params), sched_params, NULL,
    sched_space_defaults};

/* ------------------------------------------------------------- launching */

/* Set a list of kernel arguments: 'm' cl_mem, 'i' int, 'f' float. */
struct karg {
    char    type;
    cl_mem  m;
    int32_t i;
    float   f;
};
#define KM(x) {'m', (x), 0, 0.0f}
#define KI(x) {'i', NULL, (x), 0.0f}
#define KF(x) {'f', NULL, 0, (x)}

static gdn_status run(gdn_context *ctx, const char *file, const char *entry,
                      const struct launch_geom *g, cl_uint dims, const struct karg *args,
                      size_t nargs)
{
    cl_kernel  k;
    gdn_status st = gdn__kernel_get(ctx, file, g->defines, entry, &k);
    size_t     i, wg = g->local[0] * g->local[1] * g->local[2];
    if (st)
        return st;
    /* The built kernel may accept fewer work-items than the device maximum
     * (register pressure): the plan's work-group must still fit. */
    {
        char what[320];
        snprintf(what, sizeof(what), "%s (%s)", entry, g->defines);
        if ((st = gdn__kernel_check_wg(ctx, k, wg, what)))
            return st;
    }
    for (i = 0; i < nargs && !st; i++) {
        switch (args[i].type) {
        case 'm':
            st = gdn__arg_mem(ctx, k, (cl_uint)i, args[i].m);
            break;
        case 'i':
            st = gdn__arg_int(ctx, k, (cl_uint)i, args[i].i);
            break;
        default:
            st = gdn__arg_float(ctx, k, (cl_uint)i, args[i].f);
            break;
        }
    }
    if (st)
        return st;
    return gdn__launch(ctx, k, dims, g->global, g->local, NULL);
}

#define RUN(file, entry, geom, dims, ...)                                                          \
    do {                                                                                           \
        const struct karg a_[] = {__VA_ARGS__};                                                    \
        if ((st = run(ctx, "gated_delta/" file, entry, (geom), (dims), a_, GDN_ARRAY_SIZE(a_))))   \
            goto done;                                                                             \
    } while (0)

#define ALLOC(mem, n_floats)                                                                       \
    do {                                                                                           \
        if ((st = gdn__scratch_acquire(ctx, (size_t)(n_floats) * sizeof(float), &(mem))))          \
            goto done;                                                                             \
    } while (0)

/* T == 0: nothing flows except dht into dh0; parameter grads are zero. */
static gdn_status backward_empty(const struct gdn_gated_delta_tape *tp, const gdn_tensor *dht,
                                 const gdn_gated_delta_grads *grads)
{
    gdn_context *ctx = tp->ctx;
    gdn_status   st  = GDN_STATUS_OK;
    if (grads->dh0) {
        if (dht) {
            cl_int err = clEnqueueCopyBuffer(ctx->queue, dht->mem, grads->dh0->mem, 0, 0,
                                             grads->dh0->nbytes, 0, NULL, NULL);
            if (err != CL_SUCCESS)
                return gdn__fail_cl(ctx, err, "gated_delta backward: copying dht to dh0");
        } else if ((st = gdn__fill_f32(ctx, grads->dh0->mem, (size_t)grads->dh0->numel, 0.0f))) {
            return st;
        }
    }
    if (grads->dA_log && (st = gdn__fill_f32(ctx, grads->dA_log->mem, (size_t)tp->s.HV, 0.0f)))
        return st;
    if (grads->ddt_bias && (st = gdn__fill_f32(ctx, grads->ddt_bias->mem, (size_t)tp->s.HV, 0.0f)))
        return st;
    return GDN_STATUS_OK;
}

gdn_status gdn__gd_chunk_backward(const struct gdn_gated_delta_tape *tp, const gdn_tensor *do_,
                                  const gdn_tensor *dht, const gdn_gated_delta_grads *grads)
{
    gdn_context               *ctx = tp->ctx;
    const struct gdn_gd_shape *s   = &tp->s;
    struct gdn_gated_delta_tape t  = *tp; /* the forward stages take a mutable tape */
    struct dvl_plan             pdvl;
    struct sbwd_plan            psb;
    struct dqkwg_plan           pdq;
    struct wyb_plan             pwy;
    struct prepb_plan           ppr;
    const bool   l2   = (s->flags & GDN_GATED_DELTA_QK_L2NORM) != 0;
    const bool   gate = (s->flags & GDN_GATED_DELTA_GATE_IN_OP) != 0;
    const bool   direct = s->HV == s->H && !l2; /* dq, dk per value head = final */
    const size_t T = (size_t)s->T, HV = (size_t)s->HV, NT = (size_t)s->NT;
    const size_t K = (size_t)s->K, V = (size_t)s->V;
    const cl_mem qm = gdn__gd_qmem(tp), km = gdn__gd_kmem(tp);
    cl_mem w = NULL, u = NULL, h = NULL, vn = NULL, dh = NULL, dv2 = NULL, dvl = NULL;
    cl_mem dqs = NULL, dks = NULL, dGp = NULL, db = NULL, dGs = NULL, part = NULL, tsc = NULL;
    cl_mem dqh, dkh;
    int    nk;
    bool   fork;
    struct gdn_fork fk = GDN_FORK_INIT;
    gdn_status      st;

    if (s->T == 0 || s->NT == 0)
        return backward_empty(tp, dht, grads);

    {
        int32_t v[GDN_TUNE_MAX_PARAMS];
        gdn__gd_stage_lookup(ctx, &gdn__gd_dvl_space, s, v);
        dvl_plan_from(v, &pdvl);
        gdn__gd_stage_lookup(ctx, &gdn__gd_sbwd_space, s, v);
        sbwd_plan_from(v, &psb);
        gdn__gd_stage_lookup(ctx, &gdn__gd_dqkwg_space, s, v);
        dqkwg_plan_from(v, &pdq);
        gdn__gd_stage_lookup(ctx, &gdn__gd_wyb_space, s, v);
        wyb_plan_from(v, &pwy);
        gdn__gd_stage_lookup(ctx, &gdn__gd_sched_space, s, v);
        fork = v[0] != 0;
    }
    prepb_plan_default(ctx, &ppr);
    if ((st = dvl_plan_finish(ctx, s, &pdvl)) || (st = sbwd_plan_finish(ctx, s, &psb)) ||
        (st = dqkwg_plan_finish(ctx, s, &pdq)) || (st = wyb_plan_finish(ctx, s, &pwy)) ||
        (st = prepb_plan_finish(ctx, s, &ppr)))
        return st;
    nk = s->K / pdq.bk;

    ALLOC(w, T * HV * K);
    ALLOC(u, T * HV * V);
    ALLOC(vn, T * HV * V);
    ALLOC(dv2, T * HV * V);
    ALLOC(h, NT * HV * K * V);
    ALLOC(dh, NT * HV * K * V);
    ALLOC(dGp, (size_t)nk * T * HV);
    ALLOC(db, T * HV);
    ALLOC(dGs, T * HV);
    if (gate)
        ALLOC(part, NT * HV * 2);
    if (direct && grads->dq)
        dqh = grads->dq->mem;
    else {
        ALLOC(dqs, T * HV * K);
        dqh = dqs;
    }
    if (direct && grads->dk)
        dkh = grads->dk->mem;
    else {
        ALLOC(dks, T * HV * K);
        dkh = dks;
    }

    /* B1: recompute w, u. */
    if ((st = gdn__gd_wy_fwd(&t, w, u)))
        goto done;

    /* B4 does not depend on B2: with the fork the two scans run at the same
     * time, B4 on the side queue, so dv_local (B3, read by B4) needs its own
     * buffer (B2 still reads u). */
    if (fork) {
        ALLOC(dvl, T * HV * V);
        t.s.scan_shared = true;
    } else {
        /* B2: h (entering each chunk) and v_new; then dv_local into u. */
        if ((st = gdn__gd_state_fwd(&t, w, u, h, vn, NULL)))
            goto done;
        dvl = u;
    }

    /* B3: dv_local. */
    RUN("dv_local_bwd.cl", pdvl.vec ? "gated_delta_dv_local_v" : "gated_delta_dv_local", &pdvl.g,
        3, KM(tp->idx.chunks), KM(qm), KM(km), KM(tp->G), KM(do_->mem), KM(dvl), KI(s->H),
        KI(s->HV), KF(s->scale));
    /* (No second queue to be had: the same order on one queue.) */
    if (fork && gdn__fork_begin(ctx, &fk)) {
        gdn__log(ctx, GDN_LOG_LEVEL_WARN,
                 "gated_delta backward: the scans run one after the other: %s",
                 gdn_context_last_error(ctx));
        gdn__clear_error(ctx);
    }

    /* B4: reverse state scan: dh per chunk, dv2, dh0; in windows of CHUNKS
     * chunks from each sequence's end when the plan says so (llvmpipe). */
    {
        const int nmax = (s->max_len + CH - 1) / CH;
        const int step = psb.chunks > 0 ? psb.chunks : (nmax > 0 ? nmax : 1);
        int       rb   = 0;
        do {
            RUN("state_bwd.cl", sbwd_entry(&psb), &psb.g, 3, KM(tp->idx.chunks),
                KM(tp->idx.chunk_off), KM(qm), KM(km), KM(w), KM(tp->G), KM(do_->mem), KM(dvl),
                KM(dht ? dht->mem : NULL), KM(dh), KM(dv2),
                KM(grads->dh0 ? grads->dh0->mem : NULL), KI(s->H), KI(s->HV), KF(s->scale),
                KI(dht != NULL), KI(grads->dh0 != NULL), KI(rb), KI(rb + step));
            rb += step;
        } while (rb < nmax);
    }

    /* B2 on the main queue, then both branches end. */
    if (fork && ((st = gdn__fork_switch(ctx, &fk)) ||
                 (st = gdn__gd_state_fwd(&t, w, u, h, vn, NULL)) ||
                 (st = gdn__fork_join(ctx, &fk))))
        goto done; /* (switch and join are no-ops when begin failed) */

    /* B5: dq, dk (per value head), dw into w (dead after B4), gate partials. */
    RUN("dqkwg_bwd.cl", pdq.vec ? "gated_delta_dqkwg_v" : "gated_delta_dqkwg", &pdq.g, 3, KM(tp->idx.chunks), KM(qm), KM(km),
        KM(tp->G), KM(do_->mem), KM(vn), KM(h), KM(dh), KM(dv2), KM(dqh), KM(dkh), KM(w), KM(dGp),
        KI(s->H), KI(s->HV), KI((int32_t)s->T), KF(s->scale));

    /* B6: WY backward: dk += dk2, dv, dbeta (as used), dG sum. On 32 KiB
     * devices its dT tile lives in global scratch (one slice per group). */
    if (pwy.t_in_global)
        ALLOC(tsc, NT * HV * (size_t)CH * (CH + 1));
    RUN("wy_bwd.cl", "gated_delta_wy_bwd", &pwy.g, 3, KM(tp->idx.chunks), KM(km), KM(tp->v->mem),
        KM(tp->b), KM(tp->G), KM(tp->Ai), KM(w), KM(dv2), KM(dkh),
        KM(grads->dv ? grads->dv->mem : NULL), KM(db), KM(dGp), KM(dGs), KI(s->H), KI(s->HV),
        KI((int32_t)s->T), KI(nk), KI(grads->dv != NULL), KM(tsc));

    /* B7-B9: reverse cumsum, gate and beta backward. */
    if (grads->dg || grads->dbeta || (gate && (grads->dA_log || grads->ddt_bias)))
        RUN("prep_bwd.cl", "gated_delta_gate_bwd", &ppr.gate, 3, KM(tp->idx.chunks), KM(dGs),
            KM(tp->g->mem), KM(tp->gate), KM(gate ? tp->A_log->mem : NULL),
            KM(gate ? tp->dt_bias->mem : NULL), KM(tp->beta->mem), KM(db),
            KM(grads->dg ? grads->dg->mem : NULL), KM(grads->dbeta ? grads->dbeta->mem : NULL),
            KM(part), KI(s->HV), KI(gate), KI((s->flags & GDN_GATED_DELTA_BETA_SIGMOID) != 0),
            KI((s->flags & GDN_GATED_DELTA_NEG_EIGVAL) != 0), KI(grads->dg != NULL),
            KI(grads->dbeta != NULL));
    if (gate && (grads->dA_log || grads->ddt_bias))
        RUN("prep_bwd.cl", "gated_delta_gate_param_bwd", &ppr.param, 2, KM(part),
            KM(grads->dA_log ? grads->dA_log->mem : NULL),
            KM(grads->ddt_bias ? grads->ddt_bias->mem : NULL), KI(s->HV), KI(s->NT),
            KI(grads->dA_log != NULL), KI(grads->ddt_bias != NULL));

    /* GVA sum over the value heads of each q/k head, then the L2-norm backward. */
    if (!direct && grads->dq)
        RUN("prep_bwd.cl", "gated_delta_qk_bwd", &ppr.qk, 2, KM(dqh), KM(tp->qn), KM(tp->rstd_q),
            KM(grads->dq->mem), KI((int32_t)(s->T * s->H)), KI(s->HV / s->H), KI(l2));
    if (!direct && grads->dk)
        RUN("prep_bwd.cl", "gated_delta_qk_bwd", &ppr.qk, 2, KM(dkh), KM(tp->kn), KM(tp->rstd_k),
            KM(grads->dk->mem), KI((int32_t)(s->T * s->H)), KI(s->HV / s->H), KI(l2));

done:
    if (fk.begun) { /* an error inside the fork: order the queues first */
        gdn_status st2 = gdn__fork_join(ctx, &fk);
        if (!st)
            st = st2;
    }
    gdn__scratch_release(ctx, w);
    gdn__scratch_release(ctx, u);
    if (dvl != u)
        gdn__scratch_release(ctx, dvl);
    gdn__scratch_release(ctx, vn);
    gdn__scratch_release(ctx, dv2);
    gdn__scratch_release(ctx, h);
    gdn__scratch_release(ctx, dh);
    gdn__scratch_release(ctx, dGp);
    gdn__scratch_release(ctx, db);
    gdn__scratch_release(ctx, dGs);
    gdn__scratch_release(ctx, part);
    gdn__scratch_release(ctx, dqs);
    gdn__scratch_release(ctx, dks);
    gdn__scratch_release(ctx, tsc);
    return st;
}
