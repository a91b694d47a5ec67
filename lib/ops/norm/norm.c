/*
 * norm.c - L2 norm, RMSNorm and the two gated RMSNorms (fla
 * FusedRMSNormGated; Mamba2 RMSNormGated with norm_before_gate=False),
 * forward and backward (ALGORITHM.md §3.1, §4.4). Argument checks, the plan
 * of cl/norm/norm_fwd.cl and cl/norm/norm_bwd.cl, and the launches; the
 * weight gradient's second stage is cl/norm/colsum.cl (colsum.c).
 *
 * The forward saves nothing: the backward recomputes each row's norm from x
 * in the same pass that forms its other row sum, which costs one more FMA
 * per element and no memory traffic.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "norm.h"

#define NORM_FWD_CL    "norm/norm_fwd.cl"
#define NORM_FWD_ENTRY "norm_fwd"
#define NORM_BWD_CL    "norm/norm_bwd.cl"
#define NORM_BWD_ENTRY "norm_bwd"

void gdn_norm_params_init(gdn_norm_params *params)
{
    if (!params)
        return;
    memset(params, 0, sizeof(*params));
    params->type = GDN_NORM_RMS;
}

/* Shape of one call, after the checks. */
struct norm_shape {
    int32_t type;
    float   eps;
    int32_t G;    /* normalised size (group) */
    int32_t gpd;  /* groups per last dim: D = G * gpd */
    int32_t rows; /* numel / G */
    int64_t D;
    bool    gated;
};

/* Plan of norm_fwd / norm_bwd: -D options (NORM_TYPE, EPT) and geometry. */
struct norm_plan {
    int32_t ept;     /* EPT: elements per work-item, 4..GDN_NORM_MAX_EPT         */
    int32_t log_tpr; /* log2 of the work-items per row                          */
    int32_t rpg;     /* rows per work-group                                     */
    size_t  local;   /* (1 << log_tpr) * rpg                                    */
    /* backward only */
    int32_t ngroups; /* work-groups launched                                    */
    int32_t iters;   /* row blocks per work-group                               */
    int32_t fold;    /* partial dweight rows per work-group                     */
};

/* Generic defaults (the spaces' defaults()). Four elements per work-item
 * and a power-of-two number of lanes per row, capped at 512 (so 4096 takes
 * 512 x 8 and 8192 takes 512 x 16); small rows share a group of 256
 * work-items. EPT is 4 for every G <= 2048, so the tests and most models
 * build one program per (type, direction). */
static void norm_plan_default(int32_t G, struct norm_plan *p)
{
    int32_t tpr = gdn__pow2_ceil_i32(G) / 4;
    if (tpr < 1)
        tpr = 1;
    if (tpr > 512)
        tpr = 512;
    p->ept = 4;
    while (p->ept * tpr < G)
        p->ept *= 2;
    p->log_tpr = gdn__log2_i32(tpr);
    p->rpg     = tpr >= 256 ? 1 : 256 / tpr;
}

/* Shrink the plan until the work-group (max_wg) and its local memory
 * (bytes_per_item per work-item: 4 forward, 8 backward) fit: fewer rows per
 * group first, then fewer lanes per row with more elements each (EPT stays
 * the smallest that covers the row). EPT above 32 only happens on devices
 * whose kernels allow very small work-groups (Mesa's rusticl on llvmpipe
 * allows 32); it is correct there, and slow (private arrays). False when
 * nothing fits. */
static bool norm_plan_shrink(int32_t G, size_t max_wg, uint64_t lmem, size_t bytes_per_item,
                             struct norm_plan *p)
{
    for (;;) {
        p->local = ((size_t)1 << p->log_tpr) * (size_t)p->rpg;
        if (p->local <= max_wg && p->local * bytes_per_item <= lmem &&
            ((int64_t)p->ept << p->log_tpr) >= G)
            return true;
        if (p->rpg > 1)
            p->rpg /= 2;
        else if (p->log_tpr > 0 && p->ept < GDN_NORM_MAX_EPT)
            p->log_tpr--, p->ept *= 2;
        else
            return false;
    }
}

static gdn_status norm_plan_fit(gdn_context *ctx, const struct norm_shape *s, bool bwd,
                                size_t max_wg, struct norm_plan *p)
{
    if (norm_plan_shrink(s->G, max_wg, ctx->dev.info.local_mem_bytes,
                         (bwd ? 2 : 1) * sizeof(float), p))
        return GDN_STATUS_OK;
    return gdn__fail(ctx, GDN_STATUS_UNSUPPORTED,
                     "norm: no work-group shape fits the device (max work-group %zu, local "
                     "memory %llu B) for a normalised size of %d",
                     max_wg, (unsigned long long)ctx->dev.info.local_mem_bytes, (int)s->G);
}

static int32_t gcd_i32(int32_t a, int32_t b)
{
    while (b) {
        int32_t t = a % b;
        a         = b;
        b         = t;
    }
    return a;
}

/* Backward geometry: one group per row block when dweight is not wanted;
 * else about gpc groups per compute unit looping over row blocks, rounded
 * up so that ngroups * rpg is a multiple of gpd (see norm_bwd.cl). */
static void norm_bwd_groups(const struct gdn_device *dev, int32_t rows, int32_t gpd, bool dw,
                            int32_t gpc, struct norm_plan *p)
{
    const int32_t nblocks = (int32_t)(((int64_t)rows + p->rpg - 1) / p->rpg);
    int32_t       ng      = nblocks;

    p->fold = 1;
    if (dw) {
        const int32_t m      = gpd / gcd_i32(p->rpg, gpd);
        int64_t       target = (int64_t)gpc * (int64_t)(dev->info.compute_units
                                                              ? dev->info.compute_units
                                                              : 1);
        if (target > nblocks)
            target = nblocks;
        target  = (target + m - 1) / m * m;
        ng      = (int32_t)target;
        p->fold = p->rpg % gpd == 0 ? gpd : p->rpg;
    }
    p->ngroups = ng;
    p->iters   = (nblocks + ng - 1) / ng;
}

/* ------------------------------------------------------ tuning spaces
 *
 * norm/norm_fwd and norm/norm_bwd: EPT, TPR (lanes per row, 1 << log_tpr),
 * RPG; the backward adds GPC, the groups per compute unit of its dweight
 * pass. Bucket "G<pow2 ceil of G>". Legal: EPT * TPR covers the row with
 * the smallest EPT that does (larger EPT only holds masked registers), TPR
 * at most the row rounded up to a power of two, and the work-group and its
 * local memory (4 B per work-item forward, 8 B backward) within the
 * device's limits. The kernel's own work-group limit (registers, known
 * once the EPT program is built) still shrinks a plan at build time, as
 * before. defaults(): norm_plan_default shrunk to the device, the values
 * these kernels always ran with. */

static const struct gdn_tune_param norm_fwd_params[] = {
    {"EPT", 4, 7, {4, 8, 16, 32, 64, 128, 256}},
    {"TPR", 32, 11, {1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024}},
    {"RPG", 8, 9, {1, 2, 4, 8, 16, 32, 64, 128, 256}},
};
static const struct gdn_tune_param norm_bwd_params[] = {
    {"EPT", 4, 7, {4, 8, 16, 32, 64, 128, 256}},
    {"TPR", 32, 11, {1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024}},
    {"RPG", 8, 9, {1, 2, 4, 8, 16, 32, 64, 128, 256}},
    {"GPC", 4, 7, {1, 2, 4, 8, 16, 32, 64}},
};

static bool norm_vals_valid(const int32_t *v, const struct gdn_norm_tune_problem *pr,
                            const struct gdn_device *dev, bool bwd)
{
    const int64_t ept = v[0], tpr = v[1], rpg = v[2];
    const size_t  local = (size_t)(tpr * rpg);
    if (ept * tpr < pr->G || (ept > 4 && (ept / 2) * tpr >= pr->G) ||
        tpr > gdn__pow2_ceil_i32(pr->G))
        return false;
    if (local > dev->info.max_work_group_size ||
        local * (bwd ? 2 : 1) * sizeof(float) > dev->info.local_mem_bytes)
        return false;
    if (bwd) {
        /* llvmpipe: the loops over row blocks, elements, the reduction
         * and the dweight fold stay under its cap */
        struct norm_plan p = {0};
        p.ept = (int32_t)ept, p.log_tpr = gdn__log2_i32((int32_t)tpr), p.rpg = (int32_t)rpg;
        norm_bwd_groups(dev, pr->rows, pr->gpd, pr->dw, v[3], &p);
        if ((int64_t)p.iters * (2 * ept + 2 * p.log_tpr + 4) + ept * (rpg + 2) >
            gdn__layer_loop_cap(dev))
            return false;
    }
    return true;
}

static bool norm_fwd_valid(const int32_t *v, const void *problem, const struct gdn_device *dev)
{
    return norm_vals_valid(v, problem, dev, false);
}

static bool norm_bwd_valid(const int32_t *v, const void *problem, const struct gdn_device *dev)
{
    return norm_vals_valid(v, problem, dev, true);
}

/* Today's generic plan: the default shrunk to the device with 8 B of local
 * memory per work-item in both directions (what the plans always used). */
static void norm_vals_default(int32_t *v, const struct gdn_norm_tune_problem *pr,
                              const struct gdn_device *dev)
{
    struct norm_plan p;
    norm_plan_default(pr->G, &p);
    (void)norm_plan_shrink(pr->G, dev->info.max_work_group_size, dev->info.local_mem_bytes,
                           2 * sizeof(float), &p); /* nothing fits: the build reports it */
    v[0] = p.ept, v[1] = 1 << p.log_tpr, v[2] = p.rpg;
}

static void norm_fwd_defaults(int32_t *v, const void *problem, const struct gdn_device *dev)
{
    norm_vals_default(v, problem, dev);
}

static void norm_bwd_defaults(int32_t *v, const void *problem, const struct gdn_device *dev)
{
    norm_vals_default(v, problem, dev);
    v[3] = 4;
}

const struct gdn_tune_space gdn__norm_fwd_space = {
    "norm/norm_fwd", (int32_t)GDN_ARRAY_SIZE(norm_fwd_params), norm_fwd_params, norm_fwd_valid,
    norm_fwd_defaults};
const struct gdn_tune_space gdn__norm_bwd_space = {
    "norm/norm_bwd", (int32_t)GDN_ARRAY_SIZE(norm_bwd_params), norm_bwd_params, norm_bwd_valid,
    norm_bwd_defaults};

/* The plan of a call: the lookup's values (vals: GPC for the backward). */
static void norm_plan_lookup(gdn_context *ctx, const struct norm_shape *s, bool bwd, bool dw,
                             struct norm_plan *p, int32_t *gpc)
{
    struct gdn_norm_tune_problem pr = {s->G, s->gpd, s->rows, dw};
    int32_t                      v[GDN_TUNE_MAX_PARAMS];
    char                         bucket[24];

    snprintf(bucket, sizeof(bucket), "G%d", (int)gdn__pow2_ceil_i32(s->G));
    gdn__tune_lookup(ctx, bwd ? &gdn__norm_bwd_space : &gdn__norm_fwd_space, bucket, &pr, v,
                     NULL);
    memset(p, 0, sizeof(*p));
    p->ept     = v[0];
    p->log_tpr = gdn__log2_i32(v[1]);
    p->rpg     = v[2];
    p->local   = (size_t)v[1] * (size_t)v[2];
    *gpc       = bwd ? v[3] : 0;
}

/* Build (or fetch) the kernel of a plan that fits the device, including the
 * kernel's own work-group limit (registers). */
static gdn_status norm_kernel(gdn_context *ctx, const struct norm_shape *s, bool bwd,
                              struct norm_plan *p, cl_kernel *out)
{
    size_t     max_wg = ctx->dev.info.max_work_group_size;
    char       opts[128];
    gdn_status st;
    int        attempt;

    for (attempt = 0; attempt < 8; attempt++) {
        struct gdn_define defs[2];
        size_t            kwg = 0;
        cl_int            err;
        /* Fit first: the fit may change EPT, which the options carry. */
        if ((st = norm_plan_fit(ctx, s, bwd, max_wg, p)))
            return st;
        defs[0].name = "NORM_TYPE", defs[0].value = s->type;
        defs[1].name = "EPT", defs[1].value = p->ept;
        gdn__defines_format(defs, GDN_ARRAY_SIZE(defs), opts, sizeof(opts));
        if ((st = gdn__kernel_get(ctx, bwd ? NORM_BWD_CL : NORM_FWD_CL, opts,
                                  bwd ? NORM_BWD_ENTRY : NORM_FWD_ENTRY, out)))
            return st;
        err = clGetKernelWorkGroupInfo(*out, ctx->dev.id, CL_KERNEL_WORK_GROUP_SIZE, sizeof(kwg),
                                       &kwg, NULL);
        if (err != CL_SUCCESS)
            return gdn__fail_cl(ctx, err, "norm: CL_KERNEL_WORK_GROUP_SIZE");
        if (p->local <= kwg)
            return GDN_STATUS_OK;
        max_wg = kwg;
    }
    return gdn__fail(ctx, GDN_STATUS_UNSUPPORTED, "norm: kernel allows only %zu work-items",
                     max_wg);
}

static bool type_gated(int32_t type)
{
    return type == GDN_NORM_RMS_GATED || type == GDN_NORM_RMS_GATE_FIRST;
}

/* Checks shared by forward and backward; fills *s. */
static gdn_status norm_check(gdn_context *ctx, const char *fn, const gdn_norm_params *params,
                             const gdn_norm_args *args, struct norm_shape *s)
{
    const gdn_tensor *x;
    gdn_status        st;
    size_t            i;
    int64_t           G, rows;

    memset(s, 0, sizeof(*s));
    for (i = 0; i < GDN_ARRAY_SIZE(params->reserved); i++)
        if (params->reserved[i])
            return gdn__fail(ctx, GDN_STATUS_INVALID_ARGUMENT,
                             "%s: params.reserved must be zero (use gdn_norm_params_init)", fn);
    if (!args)
        return gdn__fail(ctx, GDN_STATUS_INVALID_ARGUMENT, "%s: args is NULL", fn);
    for (i = 0; i < GDN_ARRAY_SIZE(args->reserved); i++)
        if (args->reserved[i])
            return gdn__fail(ctx, GDN_STATUS_INVALID_ARGUMENT, "%s: args.reserved must be zero",
                             fn);
    if ((int)params->type < GDN_NORM_L2 || (int)params->type > GDN_NORM_RMS_GATE_FIRST)
        return gdn__fail(ctx, GDN_STATUS_INVALID_ARGUMENT, "%s: params.type = %d is not a "
                         "gdn_norm_type", fn, (int)params->type);
    if (!(params->eps >= 0.0f) || !isfinite(params->eps))
        return gdn__fail(ctx, GDN_STATUS_INVALID_ARGUMENT,
                         "%s: params.eps must be finite and >= 0", fn);
    if (params->group_size < 0)
        return gdn__fail(ctx, GDN_STATUS_INVALID_ARGUMENT, "%s: params.group_size = %d < 0", fn,
                         (int)params->group_size);
    x = args->x;
    if (!x)
        return gdn__fail(ctx, GDN_STATUS_INVALID_ARGUMENT, "%s: args.x is NULL", fn);
    if (x->ctx != ctx)
        return gdn__fail(ctx, GDN_STATUS_INVALID_ARGUMENT, "%s: x belongs to another context", fn);
    if (x->dtype != GDN_DTYPE_F32)
        return gdn__fail(ctx, GDN_STATUS_SHAPE_MISMATCH, "%s: x must be F32", fn);
    s->type  = (int32_t)params->type;
    s->eps   = params->eps > 0.0f ? params->eps : 1e-6f;
    s->gated = type_gated(s->type);
    s->D     = x->shape[x->ndim - 1];
    G        = params->group_size > 0 ? params->group_size : s->D;

    /* weight and gate */
    if (s->type == GDN_NORM_L2 && args->weight)
        return gdn__fail(ctx, GDN_STATUS_INVALID_ARGUMENT,
                         "%s: args.weight must be NULL for GDN_NORM_L2", fn);
    if (args->weight && (st = gdn__check_tensor(ctx, args->weight, "weight", GDN_DTYPE_F32, 1,
                                                &s->D)))
        return st;
    if (s->gated) {
        if (!args->gate)
            return gdn__fail(ctx, GDN_STATUS_INVALID_ARGUMENT,
                             "%s: args.gate is required by the gated norm types", fn);
        if ((st = gdn__check_tensor(ctx, args->gate, "gate", GDN_DTYPE_F32, x->ndim, x->shape)))
            return st;
    } else if (args->gate) {
        return gdn__fail(ctx, GDN_STATUS_INVALID_ARGUMENT,
                         "%s: args.gate is only used by the gated norm types", fn);
    }
    if (x->numel == 0)
        return GDN_STATUS_OK; /* rows = 0: nothing to do */
    if (G < 1 || s->D % G != 0)
        return gdn__fail(ctx, GDN_STATUS_SHAPE_MISMATCH,
                         "%s: group_size %lld does not divide the last dim %lld", fn,
                         (long long)G, (long long)s->D);
    if (G > GDN_NORM_MAX_G)
        return gdn__fail(ctx, GDN_STATUS_UNSUPPORTED,
                         "%s: normalised size %lld exceeds %d", fn, (long long)G, GDN_NORM_MAX_G);
    rows = x->numel / G;
    if (rows > INT32_MAX)
        return gdn__fail(ctx, GDN_STATUS_UNSUPPORTED, "%s: %lld rows exceed 2^31 - 1", fn,
                         (long long)rows);
    s->G    = (int32_t)G;
    s->gpd  = (int32_t)(s->D / G);
    s->rows = (int32_t)rows;
    return GDN_STATUS_OK;
}

gdn_status gdn_norm_forward(gdn_context *ctx, const gdn_norm_params *params,
                            const gdn_norm_args *args, gdn_tensor *y)
{
    static const char *fn = "gdn_norm_forward";
    gdn_norm_params    defaults;
    struct norm_shape  s;
    struct norm_plan   p;
    int32_t            gpc;
    cl_kernel          k;
    cl_uint            a = 0;
    size_t             global;
    gdn_status         st;

    if (!ctx)
        return GDN_STATUS_INVALID_ARGUMENT;
    if (!params) {
        gdn_norm_params_init(&defaults);
        params = &defaults;
    }
    if ((st = norm_check(ctx, fn, params, args, &s)))
        return st;
    if ((st = gdn__check_tensor(ctx, y, "y", GDN_DTYPE_F32, args->x->ndim, args->x->shape)))
        return st;
    if (y == args->weight || y == args->gate)
        return gdn__fail(ctx, GDN_STATUS_INVALID_ARGUMENT,
                         "%s: y aliases %s (only y == x is allowed)", fn,
                         y == args->weight ? "weight" : "gate");
    if (s.rows == 0)
        return GDN_STATUS_OK;

    norm_plan_lookup(ctx, &s, false, false, &p, &gpc);
    if ((st = norm_kernel(ctx, &s, false, &p, &k)))
        return st;
    if ((st = gdn__arg_mem(ctx, k, a++, args->x->mem)) ||
        (st = gdn__arg_mem(ctx, k, a++, args->weight ? args->weight->mem : args->x->mem)) ||
        (st = gdn__arg_mem(ctx, k, a++, args->gate ? args->gate->mem : args->x->mem)) ||
        (st = gdn__arg_mem(ctx, k, a++, y->mem)) ||
        (st = gdn__arg_local(ctx, k, a++, p.local * sizeof(float))) ||
        (st = gdn__arg_int(ctx, k, a++, s.rows)) || (st = gdn__arg_int(ctx, k, a++, s.G)) ||
        (st = gdn__arg_int(ctx, k, a++, s.gpd)) || (st = gdn__arg_int(ctx, k, a++, p.log_tpr)) ||
        (st = gdn__arg_int(ctx, k, a++, p.rpg)) || (st = gdn__arg_float(ctx, k, a++, s.eps)) ||
        (st = gdn__arg_int(ctx, k, a++, args->weight ? 1 : 0)))
        return st;
    global = (((size_t)s.rows + (size_t)p.rpg - 1) / (size_t)p.rpg) * p.local;
    return gdn__launch(ctx, k, 1, &global, &p.local, NULL);
}

gdn_status gdn_norm_backward(gdn_context *ctx, const gdn_norm_params *params,
                             const gdn_norm_args *args, const gdn_tensor *dy,
                             const gdn_norm_grads *grads)
{
    static const char *fn = "gdn_norm_backward";
    gdn_norm_params    defaults;
    struct norm_shape  s;
    struct norm_plan   p;
    int32_t            gpc;
    cl_kernel          k;
    cl_mem             part = NULL;
    cl_uint            a    = 0;
    size_t             global, i, part_floats = 0;
    gdn_status         st;
    const gdn_tensor  *outs[3];

    if (!ctx)
        return GDN_STATUS_INVALID_ARGUMENT;
    if (!params) {
        gdn_norm_params_init(&defaults);
        params = &defaults;
    }
    if (!grads)
        return gdn__fail(ctx, GDN_STATUS_INVALID_ARGUMENT, "%s: grads is NULL", fn);
    for (i = 0; i < GDN_ARRAY_SIZE(grads->reserved); i++)
        if (grads->reserved[i])
            return gdn__fail(ctx, GDN_STATUS_INVALID_ARGUMENT, "%s: grads.reserved must be NULL",
                             fn);
    if ((st = norm_check(ctx, fn, params, args, &s)))
        return st;
    if ((st = gdn__check_tensor(ctx, dy, "dy", GDN_DTYPE_F32, args->x->ndim, args->x->shape)))
        return st;
    if (grads->dx &&
        (st = gdn__check_tensor(ctx, grads->dx, "dx", GDN_DTYPE_F32, args->x->ndim,
                                args->x->shape)))
        return st;
    if (grads->dweight) {
        if (!args->weight)
            return gdn__fail(ctx, GDN_STATUS_INVALID_ARGUMENT,
                             "%s: grads.dweight needs args.weight", fn);
        if ((st = gdn__check_tensor(ctx, grads->dweight, "dweight", GDN_DTYPE_F32, 1, &s.D)))
            return st;
    }
    if (grads->dgate) {
        if (!s.gated)
            return gdn__fail(ctx, GDN_STATUS_INVALID_ARGUMENT,
                             "%s: grads.dgate needs a gated norm type", fn);
        if ((st = gdn__check_tensor(ctx, grads->dgate, "dgate", GDN_DTYPE_F32, args->x->ndim,
                                    args->x->shape)))
            return st;
    }
    /* Aliasing: only dx == dy is allowed. */
    outs[0] = grads->dx, outs[1] = grads->dweight, outs[2] = grads->dgate;
    for (i = 0; i < 3; i++) {
        const gdn_tensor *o = outs[i];
        size_t            j;
        if (!o)
            continue;
        if (o == args->x || o == args->weight || o == args->gate || (o == dy && i != 0))
            return gdn__fail(ctx, GDN_STATUS_INVALID_ARGUMENT,
                             "%s: grads.%s aliases an input (only dx == dy is allowed)", fn,
                             i == 0 ? "dx" : i == 1 ? "dweight" : "dgate");
        for (j = 0; j < i; j++)
            if (outs[j] == o)
                return gdn__fail(ctx, GDN_STATUS_INVALID_ARGUMENT,
                                 "%s: two gradients are the same tensor", fn);
    }
    if (!grads->dx && !grads->dweight && !grads->dgate)
        return GDN_STATUS_OK;
    if (s.rows == 0) /* empty x: dweight = 0 */
        return grads->dweight ? gdn__fill_f32(ctx, grads->dweight->mem, (size_t)s.D, 0.0f)
                              : GDN_STATUS_OK;

    norm_plan_lookup(ctx, &s, true, grads->dweight != NULL, &p, &gpc);
    if ((st = norm_kernel(ctx, &s, true, &p, &k)))
        return st;
    norm_bwd_groups(&ctx->dev, s.rows, s.gpd, grads->dweight != NULL, gpc, &p);
    if (grads->dweight) {
        part_floats = (size_t)p.ngroups * (size_t)p.fold * (size_t)s.G;
        if ((st = gdn__buffer_create(ctx, part_floats * sizeof(float), &part)))
            return st;
    }
    if ((st = gdn__arg_mem(ctx, k, a++, args->x->mem)) ||
        (st = gdn__arg_mem(ctx, k, a++, args->weight ? args->weight->mem : args->x->mem)) ||
        (st = gdn__arg_mem(ctx, k, a++, args->gate ? args->gate->mem : args->x->mem)) ||
        (st = gdn__arg_mem(ctx, k, a++, dy->mem)) ||
        (st = gdn__arg_mem(ctx, k, a++, grads->dx ? grads->dx->mem : dy->mem)) ||
        (st = gdn__arg_mem(ctx, k, a++, grads->dgate ? grads->dgate->mem : dy->mem)) ||
        (st = gdn__arg_mem(ctx, k, a++, part ? part : dy->mem)) ||
        (st = gdn__arg_local(ctx, k, a++, p.local * 2 * sizeof(float))) ||
        (st = gdn__arg_int(ctx, k, a++, s.rows)) || (st = gdn__arg_int(ctx, k, a++, s.G)) ||
        (st = gdn__arg_int(ctx, k, a++, s.gpd)) || (st = gdn__arg_int(ctx, k, a++, p.log_tpr)) ||
        (st = gdn__arg_int(ctx, k, a++, p.rpg)) || (st = gdn__arg_int(ctx, k, a++, p.ngroups)) ||
        (st = gdn__arg_int(ctx, k, a++, p.iters)) || (st = gdn__arg_int(ctx, k, a++, p.fold)) ||
        (st = gdn__arg_float(ctx, k, a++, s.eps)) ||
        (st = gdn__arg_int(ctx, k, a++, args->weight ? 1 : 0)) ||
        (st = gdn__arg_int(ctx, k, a++, grads->dx ? 1 : 0)) ||
        (st = gdn__arg_int(ctx, k, a++, grads->dgate ? 1 : 0)) ||
        (st = gdn__arg_int(ctx, k, a++, grads->dweight ? 1 : 0)))
        goto done;
    global = (size_t)p.ngroups * p.local;
    if ((st = gdn__launch(ctx, k, 1, &global, &p.local, NULL)))
        goto done;
    if (grads->dweight)
        st = gdn__norm_colsum(ctx, part, (int32_t)(part_floats / (size_t)s.D), (int32_t)s.D,
                              grads->dweight->mem);
done:
    /* The queue holds its own reference to buffers of enqueued kernels. */
    gdn__buffer_release(part);
    return st;
}
