/*
 * chunk_fwd.c - chunked forward of the gated delta rule: stages F0-F5 of
 * docs/ALGORITHM.md §2.2 (fla chunk_gated_delta_rule_fwd), host side of
 * cl/gated_delta/{prep_fwd,kkt_solve,wy_fwd,state_fwd,out_fwd}.cl.
 *
 *   F0+F1 prep_fwd   L2 norms of q, k (QK_L2NORM), gate (GATE_IN_OP), beta
 *                    (BETA_SIGMOID / NEG_EIGVAL), chunk-local cumsum G
 *   F2    kkt_solve  Ai = (I + A)^-1 per chunk and value head
 *   F3    wy_fwd     w = Ai diag(b exp2 G) K,  u = Ai diag(b) V
 *   F4    state_fwd  sequential scan: h (state entering each chunk), v_new, ht
 *   F5    out_fwd    o = scale (diag(exp2 G) Q h + tril(Q K^T o Gamma) v_new)
 *
 * Each stage has one plan struct (the single source of its -D options and
 * NDRange), a default (one function per stage; a tuning database will
 * replace it), a check against the device's local memory and work-group
 * limits, and a run function. Plan defines depend only on K and V, so a
 * test run builds few distinct programs.
 */
#include <stdio.h>
#include <string.h>

#include "gated_delta.h"
#include "tune/tune.h"

#define CH GDN_GD_CHUNK

/* ------------------------------------------------------------ helpers */

/* Format the defines and fetch the kernel; also check that the built kernel
 * accepts the plan's work-group size (register pressure can lower it). */
static gdn_status get_kernel(gdn_context *ctx, const char *path, const struct gdn_define *defs,
                             size_t ndefs, const char *entry, size_t wg, cl_kernel *out)
{
    char       opts[256];
    gdn_status st;

    if (!gdn__defines_format(defs, ndefs, opts, sizeof(opts)))
        return gdn__fail(ctx, GDN_STATUS_INTERNAL, "%s: build options too long", path);
    st = gdn__kernel_get(ctx, path, opts, entry, out);
    if (st)
        return st;
    {
        char what[320];
        snprintf(what, sizeof(what), "%s (%s)", entry, opts);
        return gdn__kernel_check_wg(ctx, *out, wg, what);
    }
}

/* Common device-limit check of a plan: work-group size and local memory. */
static gdn_status check_limits(gdn_context *ctx, const char *stage, const struct gdn_gd_shape *s,
                               size_t wg, size_t local_bytes)
{
    const gdn_device_info *in = &ctx->dev.info;
    if (wg > in->max_work_group_size || local_bytes > in->local_mem_bytes)
        return gdn__fail(ctx, GDN_STATUS_UNSUPPORTED,
                         "gated_delta %s: no plan fits this device for head dims K = %d, V = %d "
                         "(needs %zu work-items and %zu B of local memory; the device has %u "
                         "and %llu)",
                         stage, (int)s->K, (int)s->V, wg, local_bytes,
                         (unsigned)in->max_work_group_size,
                         (unsigned long long)in->local_mem_bytes);
    return GDN_STATUS_OK;
}

static bool fits(const struct gdn_device *dev, size_t wg, size_t local_bytes)
{
    return wg <= dev->info.max_work_group_size && local_bytes <= dev->info.local_mem_bytes;
}

/* A tuning space's device checks of a plan: work-group, local memory and
 * the loop limit (chunks: CHUNKS of a scan, -1 for a per-chunk stage). */
static bool space_fits(const struct gdn_device *dev, const struct gdn_gd_shape *s, size_t wg,
                       size_t local_bytes, int32_t chunks)
{
    return fits(dev, wg, local_bytes) && gdn__gd_loop_limit_ok(dev, s, (int32_t)wg, chunks);
}

/* The -D options of wy_fwd and out_fwd, whose plans have the same form: two
 * tile sizes (named na, nb), LX, LY, VEC and UNROLL. The number written. */
static size_t tile_plan_defines(const char *na, int32_t a, const char *nb, int32_t b, int32_t lx,
                                int32_t ly, int32_t vec, int32_t unroll,
                                const struct gdn_gd_shape *s, struct gdn_define *d)
{
    size_t n = 6;
    d[0].name = na, d[0].value = a;
    d[1].name = nb, d[1].value = b;
    d[2].name = "K", d[2].value = s->K;
    d[3].name = "LX", d[3].value = lx;
    d[4].name = "LY", d[4].value = ly;
    d[5].name = "V", d[5].value = s->V;
    if (vec) { /* (VEC=0 keeps the options, hence the cached programs, of before) */
        d[6].name = "VEC", d[6].value = vec;
        n         = 7;
    }
    return n + gdn__gd_unroll_define(unroll, d + n);
}

void gdn__gd_bucket(int32_t K, int32_t V, char *buf, size_t cap)
{
    snprintf(buf, cap, "K%d.V%d", (int)K, (int)V);
}

/* The tuned values of a stage for this problem: every tuned stage (forward
 * and backward) keys its database rows by head dims ("K128.V128"). */
void gdn__gd_stage_lookup(gdn_context *ctx, const struct gdn_tune_space *space,
                          const struct gdn_gd_shape *s, int32_t *vals)
{
    char bucket[32];
    gdn__gd_bucket(s->K, s->V, bucket, sizeof(bucket));
    gdn__tune_lookup(ctx, space, bucket, s, vals, NULL);
}

size_t gdn__gd_unroll_define(int32_t unroll, struct gdn_define *d)
{
    if (!unroll)
        return 0;
    d->name = "GDN_TILE_UNROLL", d->value = unroll;
    return 1;
}

size_t gdn__gd_maxreg_define(int32_t maxreg, struct gdn_define *d)
{
    if (!maxreg)
        return 0;
    d->name = "GDN_MAXREG", d->value = maxreg;
    return 1;
}

bool gdn__gd_maxreg_ok(const struct gdn_device *dev, int32_t maxreg)
{
    return !maxreg || (dev->info.flags & GDN_DEVICE_FLAG_NV_ATTR);
}

bool gdn__gd_cp_async(const struct gdn_device *dev)
{
    return (dev->info.flags & GDN_DEVICE_FLAG_GPU) &&
           (dev->info.flags & GDN_DEVICE_FLAG_INLINE_PTX);
}

size_t gdn__gd_async_define(bool async, bool tc, struct gdn_define *d)
{
    if (!async)
        return 0;
    d[0].name = "GDN_ASYNC", d[0].value = 1;
    if (!tc)
        return 1;
    d[1].name = "GDN_TC", d[1].value = 1;
    return 2;
}

/* Largest tile in {64, 32, 16} (capped at cap) that divides d. */
static int32_t tile_for(int32_t d, int32_t cap)
{
    int32_t t;
    for (t = cap; t > 16; t /= 2)
        if (d % t == 0)
            return t;
    return 16;
}

#define SET_MEM(i, m)                                                                              \
    do {                                                                                           \
        if (!st)                                                                                   \
            st = gdn__arg_mem(ctx, k, (i), (m));                                                   \
    } while (0)
#define SET_INT(i, v)                                                                              \
    do {                                                                                           \
        if (!st)                                                                                   \
            st = gdn__arg_int(ctx, k, (i), (int32_t)(v));                                          \
    } while (0)
#define SET_FLOAT(i, v)                                                                            \
    do {                                                                                           \
        if (!st)                                                                                   \
            st = gdn__arg_float(ctx, k, (i), (v));                                                 \
    } while (0)

/* ------------------------------------------------- F0 + F1: prep_fwd.cl */

struct gd_prep_plan {
    int32_t norm_lanes; /* NORM_LANES: work-items per L2-norm row (power of 2) */
    int32_t norm_rows;  /* NORM_ROWS: rows per work-group */
    int32_t gate_wg;    /* GATE_WG: work-group of the gate/cumsum kernel */
};

static void prep_plan_default(const struct gdn_gd_shape *s, struct gd_prep_plan *p)
{
    (void)s;
    p->norm_lanes = 32;
    p->norm_rows  = 8;
    p->gate_wg    = 64;
}

static gdn_status prep_plan_check(gdn_context *ctx, const struct gd_prep_plan *p,
                                  const struct gdn_gd_shape *s)
{
    size_t wg = (size_t)p->norm_lanes * (size_t)p->norm_rows;
    if ((p->norm_lanes & (p->norm_lanes - 1)) || p->norm_lanes < 1 || p->norm_rows < 1 ||
        p->gate_wg < 1)
        return gdn__fail(ctx, GDN_STATUS_INTERNAL, "gated_delta prep: bad plan");
    return check_limits(ctx, "prep", s, wg > (size_t)p->gate_wg ? wg : (size_t)p->gate_wg,
                        wg * sizeof(float));
}

static size_t prep_plan_defines(const struct gd_prep_plan *p, struct gdn_define *d)
{
    d[0].name = "GATE_WG", d[0].value = p->gate_wg;
    d[1].name = "NORM_LANES", d[1].value = p->norm_lanes;
    d[2].name = "NORM_ROWS", d[2].value = p->norm_rows;
    return 3;
}

static gdn_status run_l2norm(gdn_context *ctx, const struct gd_prep_plan *p, cl_kernel k,
                             cl_mem x, cl_mem y, cl_mem rstd, int64_t rows, int32_t D, float eps)
{
    size_t     global[2] = {(size_t)p->norm_lanes, (size_t)rows};
    size_t     local[2]  = {(size_t)p->norm_lanes, (size_t)p->norm_rows};
    gdn_status st        = GDN_STATUS_OK;
    SET_MEM(0, x);
    SET_MEM(1, y);
    SET_MEM(2, rstd);
    SET_INT(3, rows);
    SET_INT(4, D);
    SET_FLOAT(5, eps);
    if (!st)
        st = gdn__launch(ctx, k, 2, global, local, NULL);
    return st;
}

gdn_status gdn__gd_prep_fwd(struct gdn_gated_delta_tape *tp)
{
    gdn_context               *ctx = tp->ctx;
    const struct gdn_gd_shape *s   = &tp->s;
    struct gd_prep_plan        p;
    struct gdn_define          defs[3];
    size_t                     nd, global, local;
    cl_kernel                  k;
    gdn_status                 st;
    const bool                 norm = (s->flags & GDN_GATED_DELTA_QK_L2NORM) != 0;
    const bool                 gate = (s->flags & GDN_GATED_DELTA_GATE_IN_OP) != 0;

    if (!tp->G || !tp->b || (gate && !tp->gate) ||
        (norm && (!tp->qn || !tp->kn || !tp->rstd_q || !tp->rstd_k)))
        return gdn__fail(ctx, GDN_STATUS_INTERNAL, "gated_delta prep: tape buffers missing");
    prep_plan_default(s, &p);
    if ((st = prep_plan_check(ctx, &p, s)))
        return st;
    nd = prep_plan_defines(&p, defs);

    if (norm && s->T > 0) {
        const int64_t rows = s->T * (int64_t)s->H;
        st = get_kernel(ctx, "gated_delta/prep_fwd.cl", defs, nd, "gated_delta_prep_l2norm",
                        (size_t)p.norm_lanes * (size_t)p.norm_rows, &k);
        if (!st)
            st = run_l2norm(ctx, &p, k, tp->q->mem, tp->qn, tp->rstd_q, rows, s->K, s->eps);
        if (!st)
            st = run_l2norm(ctx, &p, k, tp->k->mem, tp->kn, tp->rstd_k, rows, s->K, s->eps);
        if (st)
            return st;
    }
    if (s->NT == 0)
        return GDN_STATUS_OK;
    st = get_kernel(ctx, "gated_delta/prep_fwd.cl", defs, nd, "gated_delta_prep_gate",
                    (size_t)p.gate_wg, &k);
    if (st)
        return st;
    SET_MEM(0, tp->g->mem);
    SET_MEM(1, tp->beta->mem);
    SET_MEM(2, gate ? tp->A_log->mem : NULL);
    SET_MEM(3, gate ? tp->dt_bias->mem : NULL);
    SET_MEM(4, tp->idx.chunks);
    SET_MEM(5, gate ? tp->gate : NULL);
    SET_MEM(6, tp->b);
    SET_MEM(7, tp->G);
    SET_INT(8, s->NT);
    SET_INT(9, s->HV);
    SET_INT(10, s->flags);
    global = (size_t)s->NT * (size_t)s->HV;
    local  = (size_t)p.gate_wg;
    if (!st)
        st = gdn__launch(ctx, k, 1, &global, &local, NULL);
    return st;
}

/* ------------------------------------------------------ F2: kkt_solve.cl */

#define KKT_WG 256 /* generic default: 16 x 16 */

struct gd_kkt_plan {
    int32_t bk; /* BK: key columns per staged slice (16 or 32) */
    int32_t lx; /* LX: work-items along columns (4, 8, 16) */
    int32_t ly; /* LY: work-items along rows (4, 8, 16) */
    int32_t vec; /* VEC: 2 = the Gram from row-major key slices copied a slice
                    ahead (BK 16, LX > 1), 3 = the same with the Gram on warp
                    tiles of 16 x 8 (GDN_TC; BK 16, LX 16, LY 8 or 16), 0 =
                    staged transposed */
    bool    async; /* not tuned: VEC=2's and 3's copies are cp.async
                      (GDN_ASYNC=1) and VEC=3's products 3xTF32 mma.sync
                      (GDN_TC=1), set from gdn__gd_cp_async */
};

static size_t kkt_plan_local(const struct gd_kkt_plan *p)
{
    size_t kl = (size_t)p->bk * (CH + 1); /* the key slice, then the solve's scratch */
    if (p->vec == 3 && kl < 32 * 40)      /* VEC=3: the merges' 32 x 40 */
        kl = 32 * 40;
    return sizeof(float) * ((size_t)CH * (CH + 1) + kl + 2 * CH);
}

static bool kkt_plan_ok(const struct gd_kkt_plan *p, const struct gdn_gd_shape *s);

static void kkt_plan_default(const struct gdn_device *dev, const struct gdn_gd_shape *s,
                             struct gd_kkt_plan *p)
{
    p->async = false;
    /* GPUs with cp.async and mma.sync (GDN_DEVICE_FLAG_INLINE_PTX): the Gram
     * on the tensor cores (VEC=3, 3xTF32), 16 x 8 work-items = four SIMD
     * groups (H200, K = V = 128, B = 4, T = 4096, H = 16, two alternated
     * runs: 0.165-0.168 ms against 0.197-0.203 for VEC=2; 16 x 16, 0.197-0.199;
     * the grid with the heads fastest instead of the chunks, 0.187-0.195).
     * Probes of that form, parts left out: the merges 0.041 ms, the Gram
     * 0.029, the diagonal substitution 0.009, all three 0.100 ms left. With
     * the merges on warp tiles too (two levels of pairs): 0.144-0.145 ms
     * (16 x 16: 0.150-0.151).
     * Before it, VEC=2: the Gram from key
     * slices copied ahead, 16 x 8 work-items (H200, K = V = 128, B = 4, T =
     * 4096, H = 16, three alternated runs: 0.211-0.217 ms against 0.236-0.238
     * for the sm_90 row before, BK=32 16 x 8 without it; 16 x 16, 0.224-0.225;
     * 8 x 8, 0.259-0.260; 16 x 4, 0.242-0.244). Going on to w and u in the
     * same work-group (Ai transposed from local memory into wy_fwd's
     * float4 product, no wy_fwd launch, no re-read of Ai): 0.416-0.446 ms
     * for both stages against 0.200 + 0.223 for the two kernels (B = 4,
     * tiles of 64 and 128, 16 x 8 and 16 x 16 work-items): nothing gained,
     * so the stages stay apart. */
    if (gdn__gd_cp_async(dev)) {
        p->vec = 3, p->bk = 16, p->lx = 16, p->ly = 8;
        if (kkt_plan_ok(p, s) && fits(dev, (size_t)(p->lx * p->ly), kkt_plan_local(p)))
            return;
    }
    p->lx = p->ly = 16;
    p->bk = s->K % 32 == 0 ? 32 : 16;
    p->vec = 0;
    if (!fits(dev, KKT_WG, kkt_plan_local(p)))
        p->bk = 16;
}

static bool kkt_plan_ok(const struct gd_kkt_plan *p, const struct gdn_gd_shape *s)
{
    return (p->bk == 16 || p->bk == 32 || p->bk == 64 || p->bk == 128) && s->K % p->bk == 0 &&
           p->lx >= 1 && p->ly >= 4 && 16 % p->lx == 0 && 16 % p->ly == 0 &&
           (p->vec == 0 || (p->vec == 2 && p->bk == 16 && p->lx > 1) ||
            (p->vec == 3 && p->bk == 16 && p->lx == 16 && p->ly >= 8));
}

static gdn_status kkt_plan_check(gdn_context *ctx, const struct gd_kkt_plan *p,
                                 const struct gdn_gd_shape *s)
{
    if (!kkt_plan_ok(p, s))
        return gdn__fail(ctx, GDN_STATUS_INTERNAL, "gated_delta kkt_solve: bad plan");
    return check_limits(ctx, "kkt_solve", s, (size_t)(p->lx * p->ly), kkt_plan_local(p));
}

static size_t kkt_plan_defines(const struct gd_kkt_plan *p, const struct gdn_gd_shape *s,
                               struct gdn_define *d)
{
    size_t n;
    d[0].name = "BK", d[0].value = p->bk;
    d[1].name = "K", d[1].value = s->K;
    d[2].name = "LX", d[2].value = p->lx;
    d[3].name = "LY", d[3].value = p->ly;
    n = 4;
    if (p->vec) /* (VEC=0 keeps the options, hence the cached programs, of before) */
        d[n].name = "VEC", d[n++].value = p->vec;
    return n + gdn__gd_async_define(p->async, p->vec == 3, d + n);
}

static bool kkt_space_valid(const int32_t *v, const void *problem, const struct gdn_device *dev)
{
    const struct gd_kkt_plan p = {v[0], v[1], v[2], v[3], false};
    return kkt_plan_ok(&p, problem) &&
           space_fits(dev, problem, (size_t)(p.lx * p.ly), kkt_plan_local(&p), -1);
}

static void kkt_space_defaults(int32_t *v, const void *problem, const struct gdn_device *dev)
{
    struct gd_kkt_plan p;
    kkt_plan_default(dev, problem, &p);
    v[0] = p.bk, v[1] = p.lx, v[2] = p.ly, v[3] = p.vec;
}

static const struct gdn_tune_param kkt_params[] = {
    {"BK", 16, 4, {16, 32, 64, 128}},
    {"LX", 16, 5, {1, 2, 4, 8, 16}},
    {"LY", 16, 3, {4, 8, 16}},
    {"VEC", 0, 3, {0, 2, 3}},
};
const struct gdn_tune_space gdn__gd_kkt_space = {
    "gated_delta/kkt_solve", (int32_t)GDN_ARRAY_SIZE(kkt_params), kkt_params, kkt_space_valid,
    kkt_space_defaults};

gdn_status gdn__gd_kkt_solve(struct gdn_gated_delta_tape *tp)
{
    gdn_context               *ctx = tp->ctx;
    const struct gdn_gd_shape *s   = &tp->s;
    struct gd_kkt_plan         p;
    struct gdn_define          defs[8];
    size_t                     nd, global[2], local[2] = {KKT_WG, 1};
    cl_kernel                  k;
    gdn_status                 st;

    if (!tp->Ai || !tp->G || !tp->b)
        return gdn__fail(ctx, GDN_STATUS_INTERNAL, "gated_delta kkt_solve: tape buffers missing");
    if (s->NT == 0)
        return GDN_STATUS_OK;
    {
        int32_t vals[GDN_TUNE_MAX_PARAMS];
        gdn__gd_stage_lookup(ctx, &gdn__gd_kkt_space, s, vals);
        p.bk = vals[0], p.lx = vals[1], p.ly = vals[2], p.vec = vals[3];
        p.async  = p.vec >= 2 && gdn__gd_cp_async(&ctx->dev);
        local[0] = (size_t)(p.lx * p.ly);
    }
    if ((st = kkt_plan_check(ctx, &p, s)))
        return st;
    nd = kkt_plan_defines(&p, s, defs);
    st = get_kernel(ctx, "gated_delta/kkt_solve.cl", defs, nd, "gated_delta_kkt_solve", local[0],
                    &k);
    if (st)
        return st;
    SET_MEM(0, gdn__gd_kmem(tp));
    SET_MEM(1, tp->b);
    SET_MEM(2, tp->G);
    SET_MEM(3, tp->idx.chunks);
    SET_MEM(4, tp->Ai);
    SET_INT(5, s->H);
    SET_INT(6, s->HV);
    global[0] = local[0] * (size_t)s->NT;
    global[1] = (size_t)s->HV;
    if (!st)
        st = gdn__launch(ctx, k, 2, global, local, NULL);
    return st;
}

/* --------------------------------------------------------- F3: wy_fwd.cl */

#define WY_WG 256 /* generic default: 16 x 16 */

struct gd_wy_plan {
    int32_t bnk; /* BNK: w column tile (16, 32, 64, 128) */
    int32_t bnv; /* BNV: u column tile (16, 32, 64, 128) */
    int32_t lx;  /* LX: work-items along columns (4, 8, 16; divides BNK, BNV) */
    int32_t ly;  /* LY: work-items along rows (4, 8, 16) */
    int32_t vec; /* VEC: 1 = float4 operands, contiguous rows per work-item
                    (LX >= 4, BNK and BNV multiples of 4 LX); 3 = the products
                    on warp tiles of 16 x 8 (GDN_TC), slices copied a slice
                    ahead (BNK = BNV = 32, LX = LY = 16) */
    int32_t unroll; /* UNROLL: GDN_TILE_UNROLL, the unroll factor of the loops
                       over k of the float4 products (0: the compiler's) */
    bool    async;  /* not tuned: VEC=3's copies are cp.async (GDN_ASYNC=1) and
                       its products 3xTF32 mma.sync (GDN_TC=1), set from
                       gdn__gd_cp_async */
};

static size_t wy_plan_local(const struct gd_wy_plan *p)
{
    size_t bn = (size_t)(p->bnk > p->bnv ? p->bnk : p->bnv);
    if (p->vec == 3) /* Ai diag(s) (ld 68), two slots of 64 x 32 (ld 40), b and exp2(G) */
        return sizeof(float) * ((size_t)CH * (CH + 4) + 2 * (size_t)CH * 40 + 2 * CH);
    if (p->vec) /* Ai transposed (ld 64) + the operand tile; row scales from global memory */
        return sizeof(float) * ((size_t)CH * CH + (size_t)CH * bn);
    return sizeof(float) * ((size_t)CH * (CH + 1) + (size_t)CH * bn + 2 * CH);
}

static bool wy_plan_ok(const struct gd_wy_plan *p, const struct gdn_gd_shape *s);

static void wy_plan_default(const struct gdn_device *dev, const struct gdn_gd_shape *s,
                            struct gd_wy_plan *p)
{
    int32_t cap;

    p->unroll = 0; /* the compiler's choice (sm_90 rows in lib/tune/db_builtin.c) */
    p->async  = false;
    /* GPUs with cp.async and mma.sync (GDN_DEVICE_FLAG_INLINE_PTX): the
     * products on the tensor cores (VEC=3, 3xTF32), 16 x 8 work-items = four
     * SIMD groups of two 8-column tiles each (H200, K = V = 128, B = 4, T =
     * 4096, H = 16, two alternated runs: 0.195-0.196 ms against 0.220-0.223
     * for 16 x 16, one tile per group, and 0.223 for the VEC=1 plan below;
     * 16 x 16 with slices copied two ahead into three slots, 0.223-0.224;
     * the grid with the heads fastest, no change). Probes of the 16 x 16
     * form: 0.184 ms without the products, 0.212 without the stores, 0.100
     * with neither (its reads, 335 MB by count, at 3.3 TB/s). */
    if (gdn__gd_cp_async(dev)) {
        p->vec = 3, p->lx = 16, p->ly = 8, p->bnk = p->bnv = 32;
        if (wy_plan_ok(p, s) && fits(dev, (size_t)(p->lx * p->ly), wy_plan_local(p)))
            return;
    }
    /* GPUs: the float4 form, 16 x 16 work-items over whole 128-wide tiles
     * (H200, K = V = 128, B = 4, T = 4096, H = 16: 0.31 ms against 0.55 for
     * the scalar form's default; sweep of 7 plans with GDN_TUNE). */
    if (dev->info.flags & GDN_DEVICE_FLAG_GPU) {
        p->vec = 1, p->lx = p->ly = 16;
        for (cap = 128; cap >= 64; cap /= 2) {
            p->bnk = tile_for(s->K, cap);
            p->bnv = tile_for(s->V, cap);
            if (wy_plan_ok(p, s) && fits(dev, (size_t)(p->lx * p->ly), wy_plan_local(p)))
                return;
        }
    }
    p->lx = p->ly = 16;
    p->vec = 0;
    for (cap = 64; cap >= 16; cap /= 2) {
        p->bnk = tile_for(s->K, cap);
        p->bnv = tile_for(s->V, cap);
        if (fits(dev, WY_WG, wy_plan_local(p)))
            return;
    }
}

static bool wy_plan_ok(const struct gd_wy_plan *p, const struct gdn_gd_shape *s)
{
    return !(p->bnk % 16 || p->bnv % 16 || p->bnk > 128 || p->bnv > 128 || s->K % p->bnk ||
             s->V % p->bnv || p->lx < 1 || p->ly < 1 || CH % p->ly || p->bnk % p->lx ||
             p->bnv % p->lx || (p->lx == 1 && (16 % p->ly || p->ly < 4)) ||
             /* VEC: 64 / LY, BNK / LX and BNV / LX multiples of 4 (the kernel's #error) */
             (p->vec == 1 && (p->lx < 4 || (CH / p->ly) % 4 || p->bnk % (4 * p->lx) ||
                              p->bnv % (4 * p->lx))) ||
             (p->vec == 3 &&
              (p->lx != 16 || (p->ly != 8 && p->ly != 16) || p->bnk != 32 || p->bnv != 32)) ||
             (p->vec != 0 && p->vec != 1 && p->vec != 3));
}

static gdn_status wy_plan_check(gdn_context *ctx, const struct gd_wy_plan *p,
                                const struct gdn_gd_shape *s)
{
    if (!wy_plan_ok(p, s))
        return gdn__fail(ctx, GDN_STATUS_INTERNAL, "gated_delta wy_fwd: bad plan");
    return check_limits(ctx, "wy_fwd", s, (size_t)(p->lx * p->ly), wy_plan_local(p));
}

static size_t wy_plan_defines(const struct gd_wy_plan *p, const struct gdn_gd_shape *s,
                              struct gdn_define *d)
{
    size_t n =
        tile_plan_defines("BNK", p->bnk, "BNV", p->bnv, p->lx, p->ly, p->vec, p->unroll, s, d);
    return n + gdn__gd_async_define(p->async, true, d + n); /* async: VEC=3 only */
}

static bool wy_space_valid(const int32_t *v, const void *problem, const struct gdn_device *dev)
{
    const struct gd_wy_plan p = {v[0], v[1], v[2], v[3], v[4], v[5], false};
    return wy_plan_ok(&p, problem) &&
           space_fits(dev, problem, (size_t)(p.lx * p.ly), wy_plan_local(&p), -1);
}

static void wy_space_defaults(int32_t *v, const void *problem, const struct gdn_device *dev)
{
    struct gd_wy_plan p;
    wy_plan_default(dev, problem, &p);
    v[0] = p.bnk, v[1] = p.bnv, v[2] = p.lx, v[3] = p.ly, v[4] = p.vec, v[5] = p.unroll;
}

static const struct gdn_tune_param wy_params[] = {
    {"BNK", 16, 4, {16, 32, 64, 128}},
    {"BNV", 16, 4, {16, 32, 64, 128}},
    {"LX", 16, 5, {1, 2, 4, 8, 16}},
    {"LY", 16, 3, {4, 8, 16}},
    {"VEC", 0, 3, {0, 1, 3}},
    GDN_GD_UNROLL_PARAM,
};
const struct gdn_tune_space gdn__gd_wy_space = {
    "gated_delta/wy_fwd", (int32_t)GDN_ARRAY_SIZE(wy_params), wy_params, wy_space_valid,
    wy_space_defaults};

gdn_status gdn__gd_wy_fwd(struct gdn_gated_delta_tape *tp, cl_mem w, cl_mem u)
{
    gdn_context               *ctx = tp->ctx;
    const struct gdn_gd_shape *s   = &tp->s;
    struct gd_wy_plan          p;
    struct gdn_define          defs[10];
    size_t                     nd, global[2], local[2] = {WY_WG, 1};
    cl_kernel                  k;
    gdn_status                 st;

    if (!tp->Ai || !tp->G || !tp->b)
        return gdn__fail(ctx, GDN_STATUS_INTERNAL, "gated_delta wy_fwd: tape buffers missing");
    if (s->NT == 0)
        return GDN_STATUS_OK;
    {
        int32_t vals[GDN_TUNE_MAX_PARAMS];
        gdn__gd_stage_lookup(ctx, &gdn__gd_wy_space, s, vals);
        p.bnk = vals[0], p.bnv = vals[1], p.lx = vals[2], p.ly = vals[3], p.vec = vals[4];
        p.unroll = vals[5];
        p.async  = p.vec == 3 && gdn__gd_cp_async(&ctx->dev);
        local[0] = (size_t)(p.lx * p.ly);
    }
    if ((st = wy_plan_check(ctx, &p, s)))
        return st;
    nd = wy_plan_defines(&p, s, defs);
    st = get_kernel(ctx, "gated_delta/wy_fwd.cl", defs, nd, "gated_delta_wy_fwd", local[0], &k);
    if (st)
        return st;
    SET_MEM(0, gdn__gd_kmem(tp));
    SET_MEM(1, tp->v->mem);
    SET_MEM(2, tp->b);
    SET_MEM(3, tp->G);
    SET_MEM(4, tp->Ai);
    SET_MEM(5, tp->idx.chunks);
    SET_MEM(6, w);
    SET_MEM(7, u);
    SET_INT(8, s->H);
    SET_INT(9, s->HV);
    global[0] = local[0] * (size_t)s->NT;
    global[1] = (size_t)s->HV;
    if (!st)
        st = gdn__launch(ctx, k, 2, global, local, NULL);
    return st;
}

/* ------------------------------------------------------ F4: state_fwd.cl */

struct gd_state_plan {
    int32_t bv; /* BV: V tile per work-group (16, 32, 64) */
    int32_t bk; /* BK: K slice of staged w / k rows (16, 32, 64) */
    int32_t lx; /* LX: work-items along the tile's columns */
    int32_t ly; /* LY: work-items along rows (divides 64 and BK) */
    int32_t pf; /* PREFETCH: 0 = sliced kernel gated_delta_state_fwd;
                   1 = gated_delta_state_fwd_pf (whole chunk staged, next
                   chunk prefetched into registers); 2 =
                   gated_delta_state_fwd_rs (state in registers, slices of
                   w / k staged, next slice prefetched); 3 = the same with
                   contiguous micro-tiles read as float4 (RSVEC); 4 = that
                   with two halves of LX x LY work-items splitting the
                   state's rows (SPLITK); 5 = the state in registers with
                   row-major slices copied ahead into three slots (RSVEC=2,
                   cp.async where gdn__gd_cp_async); 6 = those copies with
                   the products on warp tiles in the transposed frame
                   (RSVEC=3, GDN_TC; LX = BV / 4, LY = 8: one SIMD group
                   of 32 per 16 value columns; K <= 128) */
    int32_t chunks; /* CHUNKS (host side): chunks of each sequence per launch,
                       0 = the whole scan in one launch */
    int32_t unroll; /* UNROLL: GDN_TILE_UNROLL, as gd_wy_plan's */
    bool    async;  /* (host side) GDN_ASYNC: the copies of PREFETCH=5 and 6 are
                       cp.async, and 6's products 3xTF32 mma.sync (GDN_TC), from
                       gdn__gd_cp_async */
};

/* Work-items per group: LX x LY, twice that for the split form. */
static size_t state_plan_wg(const struct gd_state_plan *p)
{
    return (size_t)(p->lx * p->ly) * (p->pf == 4 ? 2 : 1);
}

static size_t state_plan_local(const struct gd_state_plan *p, const struct gdn_gd_shape *s)
{
    size_t staged;
    if (p->pf == 6) { /* three slots of a w or k slice, gates, the twin's exchange buffer */
        const size_t wsl = (size_t)CH * (size_t)(p->bk + 8);
        const size_t ksl = (size_t)CH * (size_t)p->bk / (size_t)s->K * (size_t)(s->K + 4);
        staged = wsl > ksl ? wsl : ksl;
        return sizeof(float) * (3 * staged + CH + 8 * (size_t)p->bv);
    }
    if (p->pf == 5) { /* three slots of a w or k slice, the state tile / decayed Vn, gates */
        const size_t wsl = (size_t)CH * (size_t)(p->bk + 4);
        const size_t ksl = (size_t)CH * (size_t)p->bk; /* 64 BK / K rows of K */
        staged = wsl > ksl ? wsl : ksl;
        return sizeof(float) *
               (3 * staged + (size_t)(s->K > CH ? s->K : CH) * (size_t)p->bv + CH);
    }
    if (p->pf >= 2) { /* a w or k slice; the state tile and the decayed Vn share one buffer;
                         the split form's partial w Hs of both halves (RL) */
        const bool   v4  = p->pf >= 3;
        const size_t bi  = (size_t)CH * (size_t)p->bk / (size_t)s->K;
        const size_t wsl = v4 ? (size_t)p->bk * (CH + 4) : (size_t)CH * (size_t)(p->bk + 1);
        const size_t ksl = bi * (size_t)(s->K + (v4 ? 4 : 1));
        staged = wsl > ksl ? wsl : ksl;
        return sizeof(float) * (staged + (size_t)(s->K > CH ? s->K : CH) * (size_t)p->bv + CH +
                                (p->pf == 4 ? 2 * (size_t)CH * (size_t)p->bv : 0));
    }
    staged = (size_t)CH * (size_t)((p->pf == 1 ? s->K : p->bk) + 1);
    return sizeof(float) *
           ((size_t)s->K * (size_t)p->bv + staged + (size_t)CH * (size_t)p->bv + CH);
}

/* Measured on the H200 (B = 4, T = 4096, H = HV = 16), state_fwd alone:
 *   K = V = 128: BV 32, BK 32, 8 x 32 work-items 2.26 ms; 8 x 16: 2.55 ms;
 *                BK 64 (8 x 32 or 8 x 64): 2.35-2.41 ms; BV 16 or BK 16: 3.26 ms
 *   K = V = 64:  BV 32, BK 64, 8 x 64: 0.76 ms; BK 32, 8 x 32: 1.07 ms;
 *                8 x 16: 1.40 ms
 * The scan is latency-bound: more warps per group and fewer staged slices
 * (barriers) per chunk pay. */
static bool state_plan_ok(const struct gd_state_plan *p, const struct gdn_gd_shape *s);

static void state_plan_default(const struct gdn_device *dev, const struct gdn_gd_shape *s,
                               struct gd_state_plan *p)
{
    int32_t cap;

    p->unroll = 0; /* the compiler's choice (sm_90 rows in lib/tune/db_builtin.c) */

    p->chunks = gdn__gd_scan_chunks_default(dev, s);

    /* GPUs: the state in registers, 8 x 16 work-items with contiguous 4-wide
     * micro-tiles read as float4 (H200, K = V = 128, B = 4, T = 4096, H =
     * 16: 0.86 ms against 2.27 ms for the prefetching kernel below, its
     * best plan; bench_gated_delta with GDN_TUNE sweeps of 13 plans). With
     * fewer groups than compute units, the split form (two halves of 8 x 16
     * sharing each chunk): B = 1, T = 16384 (64 groups on 132 compute
     * units) 2.21 against 2.59 ms; at B = 4 (256 groups) it loses: 1.14
     * ms, 0.89 at best (halves of 8 x 8), against 0.86 (4 legal plans at
     * each shape). Later, with the float4 slices (UNROLL=8, slices of 64,
     * fwd+bwd, two calls): the split form with V tiles of 16 (halves of 4 x
     * 16) at B = 1 (0.48 groups of V tiles of 32 per compute unit): 3.31 ms
     * against 3.99 for V tiles of 32 (2.88 at UNROLL=4); at B = 2, T = 8192
     * (0.97 per compute unit): 2.37 against 2.07; B = 4: 2.37 against 1.52.
     * So the split form takes V tiles of 16 below 0.7 groups of 32 per
     * compute unit. In the backward's fork (scan_shared: the reverse scan
     * runs beside this one, chunk_bwd.c) the plain form wins instead: B =
     * 1, fwd+bwd 9.22 ms against 9.60 for the split form with V tiles of 16
     * and 9.27 with V tiles of 32. */
    /* Later, with cp.async (gdn__gd_cp_async): the state in registers and
     * row-major slices copied two ahead into three slots (PREFETCH=5), 8 x
     * 16 work-items, V tiles of 32, BK = 32 (H200, B = 4, two alternated
     * runs, forward: 0.625 ms per scan against 0.709-0.711 for the float4
     * form with the sm_90 row, BK=64 UNROLL=8; BK = 16, 0.671-0.673; 16 x 16
     * work-items with V tiles of 64, 0.676-0.679; 8 x 32, 0.711-0.713;
     * V tiles of 16 (512 groups; this form takes 128 registers and 44 KiB,
     * so two of its groups of V tiles of 32 leave half a compute unit's
     * registers idle): 0.717-0.718 ms with 4 x 16 work-items, 0.732-0.737
     * with 4 x 32, 0.803-0.811 with 4 x 16 and BK = 16;
     * fwd+bwd, both scans: 1.244-1.249 against 1.416-1.421; later, V
     * tiles of 64 at BK = 16 for larger micro-tiles, 8 x 16 and 16 x 8
     * work-items: 2.50-2.55 ms, 16 x 16: 0.678-0.680, against 0.625-0.627).
     * It loses where
     * groups are few: B = 1, T = 16384 (0.48 groups of V tiles of 32 per
     * compute unit), fwd+bwd, both scans: 4.12 ms (V tiles of 32) and 5.20
     * (16) against 3.19 for the forms below; B = 2, T = 8192 (0.97 per
     * compute unit): 3.80-3.87 against 2.61. So it is taken from 1.5 groups
     * per compute unit (between 0.97 and 1.94 not measured). The forms below
     * then start at BK = 64 (the sm_90 row's value before; B = 1, fwd+bwd,
     * both scans: 3.20 ms against 3.59 at 32). */
    if (dev->info.flags & GDN_DEVICE_FLAG_GPU) {
        const int64_t groups = (int64_t)s->N * s->HV * (s->V / tile_for(s->V, 32));
        const int64_t cu     = (int64_t)dev->info.compute_units;
        if (gdn__gd_cp_async(dev) && groups * 2 >= cu * 3) {
            /* The products on the tensor cores (PREFETCH=6), V tiles of 64 (4
             * SIMD groups), BK = 32: 0.493-0.499 ms per scan against
             * 0.626-0.629 (same shape, two alternated runs); V tiles of 32,
             * 0.539; of 16, 0.652-0.653; BK = 16, 0.638. 218 registers. */
            p->pf = 6, p->bv = tile_for(s->V, 64), p->lx = p->bv / 4, p->ly = 8;
            for (p->bk = 32; p->bk >= 16; p->bk /= 2)
                if (state_plan_ok(p, s) && fits(dev, state_plan_wg(p), state_plan_local(p, s)))
                    return;
            p->pf = 5, p->bv = tile_for(s->V, 32), p->lx = p->bv / 4, p->ly = 16;
            for (p->bk = 32; p->bk >= 16; p->bk /= 2)
                if (state_plan_ok(p, s) && fits(dev, state_plan_wg(p), state_plan_local(p, s)))
                    return;
        }
        for (p->pf = groups < cu && !s->scan_shared ? 4 : 3; p->pf >= 3; p->pf--) {
            p->bv = tile_for(s->V, p->pf == 4 && groups * 10 < cu * 7 ? 16 : 32);
            p->lx = p->bv / 4;
            p->ly = 16;
            for (p->bk = gdn__gd_cp_async(dev) ? 64 : 32; p->bk >= 16; p->bk /= 2)
                if (state_plan_ok(p, s) && fits(dev, state_plan_wg(p), state_plan_local(p, s)))
                    return;
        }
    }

    /* Prefetching variant: 256 work-items, BV 16 (K > 64) or 32, when the
     * whole staged chunk fits in local memory (K <= 128 on 48 KiB). */
    p->pf = 1;
    p->bv = tile_for(s->V, s->K > 64 ? 16 : 32);
    p->lx = p->bv / 4;
    p->ly = 256 / p->lx;
    if (p->ly > CH)
        p->ly = CH, p->lx = 256 / CH;
    p->bk = p->ly; /* only the sliced kernel's static checks read BK here */
    if (s->K % p->ly == 0 && p->bv % p->lx == 0 && (CH * s->K) % (p->lx * p->ly) == 0 &&
        s->K % p->bk == 0 && fits(dev, (size_t)(p->lx * p->ly), state_plan_local(p, s)))
        return;
    p->pf = 0;
    for (cap = 32; cap >= 16; cap /= 2) {
        p->bv = tile_for(s->V, cap);
        p->lx = p->bv / 4;
        p->bk = s->K % 32 ? 16 : s->K <= 64 ? s->K : 32;
        p->ly = p->bk;
        if (fits(dev, (size_t)(p->lx * p->ly), state_plan_local(p, s)))
            return;
        p->bk = p->ly = 16;
        if (fits(dev, (size_t)(p->lx * p->ly), state_plan_local(p, s)))
            return;
    }
}

static bool state_plan_ok(const struct gd_state_plan *p, const struct gdn_gd_shape *s)
{
    if (p->pf == 6) /* the warp tiles: see state_fwd.cl, RSVEC=3 */
        return p->bv % 16 == 0 && p->bv <= 64 && s->V % p->bv == 0 && p->lx == p->bv / 4 &&
               p->ly == 8 && p->bk % 8 == 0 && s->K % p->bk == 0 && s->K <= 128 &&
               CH % (s->K / p->bk) == 0 && (CH / (s->K / p->bk)) % 8 == 0;
    if (p->bv % 16 || s->V % p->bv || p->bk % 16 || s->K % p->bk || p->lx < 1 ||
        p->bv % p->lx || p->ly < 1 || CH % p->ly || p->bk % p->ly)
        return false;
    if (p->pf == 1 && (s->K % p->ly || (CH * s->K) % (p->lx * p->ly) || p->lx * p->ly < CH))
        return false;
    if (p->pf == 5) /* the copied slices: see state_fwd.cl, RSVEC=2 */
        return s->K % p->ly == 0 && (s->K / p->ly) % 4 == 0 && (p->bv / p->lx) % 4 == 0 &&
               CH % (s->K / p->bk) == 0;
    if (p->pf >= 2 &&
        (s->K % p->ly || (CH * p->bk) % (int32_t)state_plan_wg(p) || CH % (s->K / p->bk)))
        return false;
    if (p->pf >= 3 && ((CH / p->ly) % 4 || (s->K / p->ly) % 4 || (p->bv / p->lx) % 4 ||
                       (CH * p->bk) % (4 * (int32_t)state_plan_wg(p))))
        return false;
    if (p->pf == 4 && ((s->K / 2) % p->ly || (s->K / 2 / p->ly) % 4 || p->bk % 2))
        return false;
    return p->pf >= 0 && p->pf <= 4;
}

static gdn_status state_plan_check(gdn_context *ctx, const struct gd_state_plan *p,
                                   const struct gdn_gd_shape *s)
{
    if (!state_plan_ok(p, s))
        return gdn__fail(ctx, GDN_STATUS_INTERNAL, "gated_delta state_fwd: bad plan");
    return check_limits(ctx, "state_fwd", s, state_plan_wg(p), state_plan_local(p, s));
}

/* The stage's tuning space (lib/tune): the plan's fields in this order. */
static void state_plan_from(const int32_t *v, struct gd_state_plan *p)
{
    p->pf = v[0], p->bv = v[1], p->bk = v[2], p->lx = v[3], p->ly = v[4], p->chunks = v[5];
    p->unroll = v[6];
    p->async  = false;
}

static bool state_space_valid(const int32_t *v, const void *problem, const struct gdn_device *dev)
{
    const struct gdn_gd_shape *s = problem;
    struct gd_state_plan       p;
    state_plan_from(v, &p);
    return state_plan_ok(&p, s) &&
           space_fits(dev, s, state_plan_wg(&p), state_plan_local(&p, s), p.chunks);
}

static void state_space_defaults(int32_t *v, const void *problem, const struct gdn_device *dev)
{
    struct gd_state_plan p;
    state_plan_default(dev, problem, &p);
    v[0] = p.pf, v[1] = p.bv, v[2] = p.bk, v[3] = p.lx, v[4] = p.ly, v[5] = p.chunks;
    v[6] = p.unroll;
}

static const struct gdn_tune_param state_params[] = {
    {"PREFETCH", 0, 7, {0, 1, 2, 3, 4, 5, 6}},
    {"BV", 16, 3, {16, 32, 64}},
    {"BK", 16, 3, {16, 32, 64}},
    {"LX", 4, 5, {1, 2, 4, 8, 16}},
    {"LY", 16, 5, {4, 8, 16, 32, 64}},
    {"CHUNKS", 0, GDN_GD_SCAN_CHUNKS},
    GDN_GD_UNROLL_PARAM,
};
const struct gdn_tune_space gdn__gd_state_space = {
    "gated_delta/state_fwd", (int32_t)GDN_ARRAY_SIZE(state_params), state_params,
    state_space_valid, state_space_defaults};

static size_t state_plan_defines(const struct gd_state_plan *p, const struct gdn_gd_shape *s,
                                 struct gdn_define *d)
{
    size_t n;
    d[0].name = "BK", d[0].value = p->bk;
    d[1].name = "BV", d[1].value = p->bv;
    d[2].name = "K", d[2].value = s->K;
    d[3].name = "LX", d[3].value = p->lx;
    d[4].name = "LY", d[4].value = p->ly;
    d[5].name = "V", d[5].value = s->V;
    n         = 6;
    if (p->pf) {
        d[n].name    = p->pf >= 2 ? "REGSTATE" : "PREFETCH";
        d[n++].value = 1;
    }
    if (p->pf >= 3) {
        d[n].name    = "RSVEC";
        d[n++].value = p->pf == 6 ? 3 : p->pf == 5 ? 2 : 1;
    }
    if (p->pf == 4) {
        d[n].name    = "SPLITK";
        d[n++].value = 1;
    }
    n += gdn__gd_async_define(p->async, p->pf == 6, d + n);
    return n + gdn__gd_unroll_define(p->unroll, d + n);
}

/* ------------------------------------------------ scans on llvmpipe */

bool gdn__gd_loop_limited(const struct gdn_device *dev)
{
    return strstr(dev->info.name, "llvmpipe") != NULL;
}

/* Chunks per launch that keep a scan's work-items far from llvmpipe's
 * limit: about 16 chunks at K = 64 with 64 work-items per group. */
static int32_t scan_chunks_max(const struct gdn_gd_shape *s, int32_t wg)
{
    int64_t c = (int64_t)16 * 64 / s->K * wg / 64;
    return c < 1 ? 1 : c > 16 ? 16 : (int32_t)c;
}

int32_t gdn__gd_scan_chunks_default(const struct gdn_device *dev, const struct gdn_gd_shape *s)
{
    int32_t c, best = 1;
    if (!gdn__gd_loop_limited(dev))
        return 0;
    for (c = 1; c <= scan_chunks_max(s, 64); c *= 2)
        best = c;
    return best;
}

bool gdn__gd_loop_limit_ok(const struct gdn_device *dev, const struct gdn_gd_shape *s, int32_t wg,
                           int32_t chunks)
{
    if (!gdn__gd_loop_limited(dev))
        return true;
    if (wg < 64) /* fewer work-items do more loop iterations each */
        return false;
    if (chunks < 0) /* a per-chunk stage: about K (or V) / wg of a chunk each */
        return wg >= s->K && wg >= s->V;
    return chunks > 0 && chunks <= scan_chunks_max(s, wg);
}

gdn_status gdn__gd_state_fwd(struct gdn_gated_delta_tape *tp, cl_mem w, cl_mem u, cl_mem h,
                             cl_mem v_new, cl_mem ht)
{
    gdn_context               *ctx = tp->ctx;
    const struct gdn_gd_shape *s   = &tp->s;
    struct gd_state_plan       p;
    struct gdn_define          defs[12]; /* state_plan_defines writes up to 11 */
    size_t                     nd, global[2], local[2];
    cl_kernel                  k;
    gdn_status                 st;

    if (!tp->G)
        return gdn__fail(ctx, GDN_STATUS_INTERNAL, "gated_delta state_fwd: tape buffers missing");
    if (s->N == 0 || (s->NT == 0 && !ht))
        return GDN_STATUS_OK;
    {
        int32_t vals[GDN_TUNE_MAX_PARAMS];
        gdn__gd_stage_lookup(ctx, &gdn__gd_state_space, s, vals);
        state_plan_from(vals, &p);
        p.async = p.pf >= 5 && gdn__gd_cp_async(&ctx->dev);
    }
    if ((st = state_plan_check(ctx, &p, s)))
        return st;
    nd       = state_plan_defines(&p, s, defs);
    local[0] = state_plan_wg(&p);
    local[1] = 1;
    st = get_kernel(ctx, "gated_delta/state_fwd.cl", defs, nd,
                    p.pf >= 2   ? "gated_delta_state_fwd_rs"
                    : p.pf == 1 ? "gated_delta_state_fwd_pf"
                                : "gated_delta_state_fwd",
                    local[0], &k);
    if (st)
        return st;
    SET_MEM(0, gdn__gd_kmem(tp));
    SET_MEM(1, w);
    SET_MEM(2, u);
    SET_MEM(3, tp->G);
    SET_MEM(4, tp->idx.seq_off);
    SET_MEM(5, tp->idx.chunk_off);
    SET_MEM(6, tp->h0 ? tp->h0->mem : NULL);
    SET_MEM(7, h);
    SET_MEM(8, v_new);
    SET_MEM(9, ht);
    SET_INT(10, s->H);
    SET_INT(11, s->HV);
    SET_INT(12, tp->h0 != NULL);
    SET_INT(13, ht != NULL);
    global[0] = local[0] * (size_t)s->N * (size_t)(s->V / p.bv);
    global[1] = (size_t)s->HV;
    {
        /* Chunk windows [cb, cb + CHUNKS) of every sequence, in order (the
         * in-order queue carries the state through h). */
        const int32_t nmax = (s->max_len + CH - 1) / CH;
        const int32_t step = p.chunks > 0 ? p.chunks : (nmax > 0 ? nmax : 1);
        int32_t       cb   = 0;
        do {
            SET_INT(14, cb);
            SET_INT(15, cb + step);
            if (!st)
                st = gdn__launch(ctx, k, 2, global, local, NULL);
            cb += step;
        } while (!st && cb < nmax);
    }
    return st;
}

/* -------------------------------------------------------- F5: out_fwd.cl */

#define OUT_WG 256 /* fixed in the kernel: 16 x 16 */

struct gd_out_plan {
    int32_t bk; /* BK: K slice of staged q, k, h (16, 32) */
    int32_t bv; /* BV: V tile per work-group (16, 32, 64, 128) */
    int32_t lx; /* LX: work-items along columns (4, 8, 16; divides BV) */
    int32_t ly; /* LY: work-items along rows (4, 8, 16) */
    int32_t vec; /* VEC: 1 = float4 operands, contiguous rows per work-item
                    (LX, LY in {4, 8, 16}, BV a multiple of 4 LX); 2 = the
                    same products on row-major operands copied a slice ahead
                    (BK 8 or 16, BV a multiple of 4 LX); 3 = VEC=2's copies
                    with the products on warp tiles of 16 x 8 (GDN_TC; BK 8
                    or 16, LX = LY = 16) */
    int32_t unroll; /* UNROLL: GDN_TILE_UNROLL, as gd_wy_plan's */
    int32_t maxreg; /* MAXREG: GDN_MAXREG (gated_delta.h), 0 for none */
    bool    async;  /* not tuned: VEC=2's and 3's copies are cp.async
                       (GDN_ASYNC=1) and VEC=3's products 3xTF32 mma.sync
                       (GDN_TC=1), set from gdn__gd_cp_async */
};

static size_t out_plan_local(const struct gd_out_plan *p)
{
    size_t p1, p2;
    if (p->vec == 3) { /* two slots of q, k (ld BK + 4), h (ld BV + 8); then S, 32 rows of v_new */
        p1 = 2 * (2 * (size_t)CH * (size_t)(p->bk + 4) + (size_t)p->bk * (size_t)(p->bv + 8));
        p2 = (size_t)CH * (CH + 4) + 32 * (size_t)(p->bv + 8);
        return sizeof(float) * (p1 > p2 ? p1 : p2);
    }
    if (p->vec == 2) { /* two slots of q, k (ld BK + 4) and h; then S (64 x 64) + v_new */
        p1 = 2 * (2 * (size_t)CH * (size_t)(p->bk + 4) + (size_t)p->bk * (size_t)p->bv);
        p2 = (size_t)CH * CH + (size_t)CH * (size_t)p->bv;
        return sizeof(float) * (p1 > p2 ? p1 : p2);
    }
    if (p->vec) { /* q, k transposed (ld 68) + h; then S transposed (ld 68, 64 at BV 128) + v_new */
        p1 = 2 * (size_t)(CH + 4) * (size_t)p->bk + (size_t)p->bk * (size_t)p->bv;
        p2 = (size_t)CH * (p->bv >= 128 ? CH : CH + 4) + (size_t)CH * (size_t)p->bv;
        return sizeof(float) * (p1 > p2 ? p1 : p2);
    }
    p1 = 2 * (size_t)CH * (size_t)(p->bk + 1) + (size_t)p->bk * (size_t)p->bv;
    p2 = (size_t)CH * (CH + 1) + (size_t)CH * (size_t)p->bv;
    return sizeof(float) * ((p1 > p2 ? p1 : p2) + CH);
}

static bool out_plan_ok(const struct gd_out_plan *p, const struct gdn_gd_shape *s);

static void out_plan_default(const struct gdn_device *dev, const struct gdn_gd_shape *s,
                             struct gd_out_plan *p)
{
    int32_t cap;

    p->unroll = 0; /* the compiler's choice (sm_90 rows in lib/tune/db_builtin.c) */
    p->maxreg = 0;
    p->async  = false;
    /* GPUs with cp.async and mma.sync (GDN_DEVICE_FLAG_INLINE_PTX): the
     * products on the tensor cores (VEC=3, 3xTF32), slices of 16, V tiles of
     * 128 (H200, K = V = 128, B = 4, T = 4096, H = 16: 0.395-0.399 ms, and
     * 0.365-0.366 capped at 80 registers, the sm_90 row; against 0.490-0.491
     * for VEC=2; slices of 8, 0.934-0.937; V tiles of 64, 0.528-0.529; two
     * alternated runs each). Next, the form whose copies run a slice ahead
     * (VEC=2), 16 x 16 work-items, V tiles of 128 (same shape: 0.487-0.489 ms
     * against 0.559-0.561 for the VEC=1 plan below, three alternated runs;
     * B = 1, T = 16384: 0.489 against 0.559-0.561). Its plain twin was slower
     * than VEC=1 there (16 x 8 work-items: 0.619 against 0.533 with cp.async
     * and 0.560 for VEC=1). */
    if (gdn__gd_cp_async(dev)) {
        p->vec = 3, p->lx = p->ly = 16, p->bk = 16;
        for (cap = 128; cap >= 16; cap /= 2) {
            p->bv = tile_for(s->V, cap);
            if (out_plan_ok(p, s) && fits(dev, (size_t)(p->lx * p->ly), out_plan_local(p)))
                return;
        }
        p->vec = 2;
        for (cap = 128; cap >= 64; cap /= 2) {
            p->bv = tile_for(s->V, cap);
            if (out_plan_ok(p, s) && fits(dev, (size_t)(p->lx * p->ly), out_plan_local(p)))
                return;
        }
    }
    /* GPUs: the float4 form, 16 x 8 work-items, V tiles of 128 (H200, K = V
     * = 128, B = 4, T = 4096, H = 16: 0.84 ms against 1.10 for the best
     * scalar plan; sweep of 8 plans with GDN_TUNE). */
    if (dev->info.flags & GDN_DEVICE_FLAG_GPU) {
        p->vec = 1, p->lx = 16, p->ly = 8;
        p->bk  = s->K % 32 == 0 ? 32 : 16;
        for (cap = 128; cap >= 64; cap /= 2) {
            p->bv = tile_for(s->V, cap);
            if (out_plan_ok(p, s) && fits(dev, (size_t)(p->lx * p->ly), out_plan_local(p)))
                return;
        }
    }
    p->lx = p->ly = 16;
    p->vec = 0;
    for (cap = 64; cap >= 16; cap /= 2) {
        p->bv = tile_for(s->V, cap);
        p->bk = s->K % 32 == 0 ? 32 : 16;
        if (fits(dev, OUT_WG, out_plan_local(p)))
            return;
        p->bk = 16;
        if (fits(dev, OUT_WG, out_plan_local(p)))
            return;
    }
}

static bool out_plan_ok(const struct gd_out_plan *p, const struct gdn_gd_shape *s)
{
    if ((p->vec >= 2 ? p->bk != 8 && p->bk != 16 : p->bk % 16 || p->bk > 32) || s->K % p->bk ||
        p->bv % 16 || p->bv > 128 || s->V % p->bv || p->lx < 1 || p->ly < 4 || 16 % p->lx ||
        16 % p->ly || p->bv % p->lx)
        return false;
    /* VEC=1: 64 / LY, 64 / LX and BV / LX multiples of 4; VEC=2: BV / LX (the
     * kernel's #error) */
    return p->vec == 0 || (p->vec == 1 && p->lx >= 4 && p->bv % (4 * p->lx) == 0) ||
           (p->vec == 2 && p->bv % (4 * p->lx) == 0) ||
           (p->vec == 3 && p->lx == 16 && p->ly == 16);
}

static gdn_status out_plan_check(gdn_context *ctx, const struct gd_out_plan *p,
                                 const struct gdn_gd_shape *s)
{
    if (!out_plan_ok(p, s))
        return gdn__fail(ctx, GDN_STATUS_INTERNAL, "gated_delta out_fwd: bad plan");
    return check_limits(ctx, "out_fwd", s, (size_t)(p->lx * p->ly), out_plan_local(p));
}

static size_t out_plan_defines(const struct gd_out_plan *p, const struct gdn_gd_shape *s,
                               struct gdn_define *d)
{
    size_t n = tile_plan_defines("BK", p->bk, "BV", p->bv, p->lx, p->ly, p->vec, p->unroll, s, d);
    n += gdn__gd_async_define(p->async, p->vec == 3, d + n);
    return n + gdn__gd_maxreg_define(p->maxreg, d + n);
}

static bool out_space_valid(const int32_t *v, const void *problem, const struct gdn_device *dev)
{
    const struct gd_out_plan p = {v[0], v[1], v[2], v[3], v[4], v[5], v[6], false};
    return out_plan_ok(&p, problem) &&
           space_fits(dev, problem, (size_t)(p.lx * p.ly), out_plan_local(&p), -1) &&
           gdn__gd_maxreg_ok(dev, p.maxreg);
}

static void out_space_defaults(int32_t *v, const void *problem, const struct gdn_device *dev)
{
    struct gd_out_plan p;
    out_plan_default(dev, problem, &p);
    v[0] = p.bk, v[1] = p.bv, v[2] = p.lx, v[3] = p.ly, v[4] = p.vec, v[5] = p.unroll;
    v[6] = p.maxreg;
}

static const struct gdn_tune_param out_params[] = {
    {"BK", 16, 3, {8, 16, 32}},
    {"BV", 16, 4, {16, 32, 64, 128}},
    {"LX", 16, 5, {1, 2, 4, 8, 16}},
    {"LY", 16, 3, {4, 8, 16}},
    {"VEC", 0, 4, {0, 1, 2, 3}},
    GDN_GD_UNROLL_PARAM,
    {"MAXREG", 0, 3, {0, 64, 80}}, /* four and three groups of 256 per 64 Ki registers */
};
const struct gdn_tune_space gdn__gd_out_space = {
    "gated_delta/out_fwd", (int32_t)GDN_ARRAY_SIZE(out_params), out_params, out_space_valid,
    out_space_defaults};

gdn_status gdn__gd_out_fwd(struct gdn_gated_delta_tape *tp, cl_mem h, cl_mem v_new, cl_mem o)
{
    gdn_context               *ctx = tp->ctx;
    const struct gdn_gd_shape *s   = &tp->s;
    struct gd_out_plan         p;
    struct gdn_define          defs[12];
    size_t                     nd, global[2], local[2] = {OUT_WG, 1};
    cl_kernel                  k;
    gdn_status                 st;

    if (!tp->G)
        return gdn__fail(ctx, GDN_STATUS_INTERNAL, "gated_delta out_fwd: tape buffers missing");
    if (s->NT == 0)
        return GDN_STATUS_OK;
    {
        int32_t vals[GDN_TUNE_MAX_PARAMS];
        gdn__gd_stage_lookup(ctx, &gdn__gd_out_space, s, vals);
        p.bk = vals[0], p.bv = vals[1], p.lx = vals[2], p.ly = vals[3], p.vec = vals[4];
        p.unroll = vals[5], p.maxreg = vals[6];
        p.async  = p.vec >= 2 && gdn__gd_cp_async(&ctx->dev);
        local[0] = (size_t)(p.lx * p.ly);
    }
    if ((st = out_plan_check(ctx, &p, s)))
        return st;
    nd = out_plan_defines(&p, s, defs);
    st = get_kernel(ctx, "gated_delta/out_fwd.cl", defs, nd, "gated_delta_out_fwd", local[0], &k);
    if (st)
        return st;
    SET_MEM(0, gdn__gd_qmem(tp));
    SET_MEM(1, gdn__gd_kmem(tp));
    SET_MEM(2, tp->G);
    SET_MEM(3, h);
    SET_MEM(4, v_new);
    SET_MEM(5, tp->idx.chunks);
    SET_MEM(6, o);
    SET_INT(7, s->H);
    SET_INT(8, s->HV);
    SET_FLOAT(9, s->scale);
    global[0] = local[0] * (size_t)s->NT * (size_t)(s->V / p.bv);
    global[1] = (size_t)s->HV;
    if (!st)
        st = gdn__launch(ctx, k, 2, global, local, NULL);
    return st;
}

/* ------------------------------------------------------- the whole forward */

/* n floats of scratch (at least one, so empty problems still get a buffer). */
static gdn_status scratch(gdn_context *ctx, size_t a, size_t b, size_t c, cl_mem *out)
{
    size_t n, bytes;
    *out = NULL;
    if (!gdn__mul_size(a, b, &n) || !gdn__mul_size(n, c, &n) ||
        !gdn__mul_size(n ? n : 1, sizeof(float), &bytes))
        return gdn__fail(ctx, GDN_STATUS_OUT_OF_DEVICE_MEMORY, "gated_delta: scratch size overflow");
    return gdn__scratch_acquire(ctx, bytes, out);
}

/* One queue, stage after stage. Overlapping the scan with the other stages
 * (other heads' kkt_solve and wy_fwd, or out_fwd, on a second queue) would
 * pay only if they ran beside it at little cost. A probe on the H200 (B = 4,
 * T = 4096, H = 16, K = V = 128, forward wall, two alternated runs; the scan
 * launched first on the side queue after a clFinish, 1.609-1.629 ms with
 * nothing beside it) ran a second copy of some stage beside the scan: wy_fwd
 * (0.22 ms alone) added 0.17-0.24 ms, kkt_solve and wy_fwd (0.42) 0.33-0.36,
 * out_fwd (0.49) 0.38-0.44; launched before the scan, wy_fwd added all of
 * its time. The kernels did run at once (summed kernel times 0.5-0.9 ms
 * above the wall time), but slowed each other nearly as much as running
 * one after the other: splitting the heads into a pipeline of two halves
 * would save a few hundredths of a ms at most. */
gdn_status gdn__gd_chunk_forward(struct gdn_gated_delta_tape *tp, gdn_tensor *o, gdn_tensor *ht)
{
    gdn_context               *ctx = tp->ctx;
    const struct gdn_gd_shape *s   = &tp->s;
    const size_t               T = (size_t)s->T, HV = (size_t)s->HV;
    cl_mem                     w = NULL, u = NULL, h = NULL, v_new = NULL;
    gdn_status                 st;

    if (!o)
        return gdn__fail(ctx, GDN_STATUS_INVALID_ARGUMENT, "gated_delta: o is NULL");
    st = gdn__gd_prep_fwd(tp);
    if (!st)
        st = gdn__gd_kkt_solve(tp);
    if (!st)
        st = scratch(ctx, T, HV, (size_t)s->K, &w);
    if (!st)
        st = scratch(ctx, T, HV, (size_t)s->V, &u);
    if (!st)
        st = scratch(ctx, T, HV, (size_t)s->V, &v_new);
    if (!st)
        st = scratch(ctx, (size_t)s->NT * HV, (size_t)s->K, (size_t)s->V, &h);
    if (!st)
        st = gdn__gd_wy_fwd(tp, w, u);
    if (!st)
        st = gdn__gd_state_fwd(tp, w, u, h, v_new, ht ? ht->mem : NULL);
    if (!st)
        st = gdn__gd_out_fwd(tp, h, v_new, o->mem);
    /* Back to the context's pool: the in-order queue makes reuse safe. */
    gdn__scratch_release(ctx, w);
    gdn__scratch_release(ctx, u);
    gdn__scratch_release(ctx, v_new);
    gdn__scratch_release(ctx, h);
    return st;
}
