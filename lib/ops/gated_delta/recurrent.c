/*
 * recurrent.c - fused recurrent forward of the gated delta rule and the
 * decode step (ALGORITHM.md §1.2, §3.4): one kernel,
 * cl/gated_delta/recurrent.cl, that runs the token loop of every sequence
 * with the state slice in registers and every in-op option fused (L2 norm of
 * q/k, gate from raw a, sigmoid beta, scale, GVA head mapping).
 *
 * The decode step is the same kernel with one token per sequence and
 * h0 == ht (the state, updated in place): the kernel reads each work-group's
 * state slice completely before it writes it, and slices do not overlap. It
 * is built in that form (UNIT_SEQ, IN_PLACE: no sequence offsets, one state
 * argument), because each kernel argument costs host time at every launch
 * and a step is one launch (recurrent.cl's header has the figures).
 *
 * This path reads the raw inputs (tp->q->mem ...); the tape's saved buffers
 * are not allocated here.
 */
#include <string.h>

#include "gated_delta.h"
#include "tune/tune.h"

#define RECURRENT_CL    "gated_delta/recurrent.cl"
#define RECURRENT_ENTRY "gated_delta_recurrent"

/* Plan of gated_delta_recurrent: work-group shape and the -D options. */
struct recurrent_plan {
    int32_t bv; /* state columns per work-group (divides V, multiple of vw) */
    int32_t vw; /* columns per work-item: 1, 2 or 4                         */
    int32_t ks; /* work-items along K: power of two, K % (4 ks) == 0         */
    size_t  local;  /* (bv / vw) * ks work-items                            */
    size_t  groups; /* N * HV * (V / bv)                                    */
    bool    unit_seq; /* UNIT_SEQ: every sequence is one token (no seq_off)  */
    bool    in_place; /* IN_PLACE: h0 == ht, one state argument              */
};

/* Largest power of two <= x (x >= 1). */
static int32_t pow2_floor(int32_t x)
{
    int32_t p = 1;
    while (p * 2 <= x)
        p *= 2;
    return p;
}

/* Generic defaults (the space gated_delta/recurrent below). Two shapes,
 * picked by how many work-groups the problem has against the device's
 * compute units:
 *   wide:  BV = 64, VW = 4, 32 state rows per work-item (KS = K / 32):
 *          more work per barrier, best when there are >= CUs / 2 groups;
 *   lean:  BV = 32, VW = 2, 16 rows per work-item (KS = K / 16): 4x the
 *          groups and a shorter per-token critical path for few sequences.
 * H200, H = HV = 16, K = V = 128 (bench numbers in the kernel's header):
 * decode at N >= 64 runs at 96-98% of device copy bandwidth (wide), N = 1
 * is launch-bound (lean); 16..64-token prefill is within ~10% of the best of
 * 20 shapes tried, except B = 1 x 64 tokens (lean, 8% off). */
static void recurrent_plan_default(const struct gdn_gd_shape *s, uint32_t cus,
                                   struct recurrent_plan *p)
{
    const int32_t bv_wide = s->V % 64 == 0 ? 64 : s->V % 32 == 0 ? 32 : 16;
    const double  groups  = (double)s->N * (double)s->HV * (double)(s->V / bv_wide);
    int32_t       rows;

    if (groups * 2.0 >= (double)cus) {
        p->bv = bv_wide, p->vw = 4, rows = 32;
    } else {
        p->bv = s->V % 32 == 0 ? 32 : 16, p->vw = 2, rows = 16;
    }
    p->ks = pow2_floor(s->K / rows > 0 ? s->K / rows : 1);
    while (p->ks > 1 && s->K % (4 * p->ks) != 0)
        p->ks /= 2;
}

static bool recurrent_plan_valid(const struct gdn_gd_shape *s, const struct recurrent_plan *p)
{
    return (p->vw == 1 || p->vw == 2 || p->vw == 4) && p->bv >= p->vw && p->bv % p->vw == 0 &&
           s->V % p->bv == 0 && p->ks >= 1 && (p->ks & (p->ks - 1)) == 0 &&
           s->K % (4 * p->ks) == 0;
}

/* The tuning space "gated_delta/recurrent": BV, VW, KS (the database,
 * GDN_TUNE and GDN_TUNE_RANDOM set them like any stage's; the autotuner
 * does not search it). Device limits are not checked here:
 * recurrent_plan_fit shrinks a plan until it fits. */
static bool recurrent_space_valid(const int32_t *v, const void *problem,
                                  const struct gdn_device *dev)
{
    const struct recurrent_plan p = {v[0], v[1], v[2], 0, 0, false, false};
    (void)dev;
    return recurrent_plan_valid(problem, &p);
}

static void recurrent_space_defaults(int32_t *v, const void *problem,
                                     const struct gdn_device *dev)
{
    struct recurrent_plan p;
    recurrent_plan_default(problem, dev->info.compute_units, &p);
    v[0] = p.bv, v[1] = p.vw, v[2] = p.ks;
}

static const struct gdn_tune_param recurrent_params[] = {
    {"BV", 32, 6, {8, 16, 32, 64, 128, 256}},
    {"VW", 2, 3, {1, 2, 4}},
    {"KS", 8, 7, {1, 2, 4, 8, 16, 32, 64}},
};
const struct gdn_tune_space gdn__gd_recurrent_space = {
    "gated_delta/recurrent", (int32_t)GDN_ARRAY_SIZE(recurrent_params), recurrent_params,
    recurrent_space_valid, recurrent_space_defaults};

/* Local memory of the kernel: red_hk, red_hq [2][KS][BV] + red_s [2][KS][3]. */
static size_t recurrent_plan_local_bytes(const struct recurrent_plan *p)
{
    return (size_t)2 * (size_t)p->ks * (2 * (size_t)p->bv + 3) * sizeof(float);
}

/* Fit the plan to the device: shrink KS (more rows per work-item), then BV,
 * until the work-group and its local memory fit. */
static gdn_status recurrent_plan_fit(gdn_context *ctx, const struct gdn_gd_shape *s,
                                     struct recurrent_plan *p, size_t max_wg)
{
    const uint64_t lmem = ctx->dev.info.local_mem_bytes;

    if (!recurrent_plan_valid(s, p))
        return gdn__fail(ctx, GDN_STATUS_UNSUPPORTED,
                         "gated_delta recurrent: invalid plan BV=%d VW=%d KS=%d for K=%d V=%d",
                         (int)p->bv, (int)p->vw, (int)p->ks, (int)s->K, (int)s->V);
    for (;;) {
        p->local = (size_t)(p->bv / p->vw) * (size_t)p->ks;
        if (p->local <= max_wg && recurrent_plan_local_bytes(p) <= lmem)
            break;
        if (p->ks > 1 && s->K / (p->ks / 2) <= 64)
            p->ks /= 2;
        else if (p->bv > p->vw && (p->bv / 2) % p->vw == 0 && s->V % (p->bv / 2) == 0)
            p->bv /= 2;
        else if (p->ks > 1)
            p->ks /= 2;
        else
            return gdn__fail(ctx, GDN_STATUS_UNSUPPORTED,
                             "gated_delta recurrent: no work-group shape fits the device (max "
                             "work-group %zu, local memory %llu B) for K=%d V=%d",
                             max_wg, (unsigned long long)lmem, (int)s->K, (int)s->V);
    }
    p->groups = (size_t)s->N * (size_t)s->HV * (size_t)(s->V / p->bv);
    if (p->groups > (size_t)INT32_MAX)
        return gdn__fail(ctx, GDN_STATUS_UNSUPPORTED,
                         "gated_delta recurrent: %zu work-groups exceed 2^31 - 1", p->groups);
    return GDN_STATUS_OK;
}

static void recurrent_plan_options(const struct gdn_gd_shape *s, const struct recurrent_plan *p,
                                   char *buf, size_t cap)
{
    const struct gdn_define defs[] = {
        {"K", s->K},
        {"V", s->V},
        {"BV", p->bv},
        {"VW", p->vw},
        {"KS", p->ks},
        {"QK_L2NORM", (s->flags & GDN_GATED_DELTA_QK_L2NORM) ? 1 : 0},
        {"GATE_IN_OP", (s->flags & GDN_GATED_DELTA_GATE_IN_OP) ? 1 : 0},
        {"BETA_SIGMOID", (s->flags & GDN_GATED_DELTA_BETA_SIGMOID) ? 1 : 0},
        {"NEG_EIGVAL", (s->flags & GDN_GATED_DELTA_NEG_EIGVAL) ? 1 : 0},
        {"UNIT_SEQ", p->unit_seq ? 1 : 0},
        {"IN_PLACE", p->in_place ? 1 : 0},
    };
    gdn__defines_format(defs, GDN_ARRAY_SIZE(defs), buf, cap);
}

/* Build (or fetch) the kernel of a plan that fits the device, including the
 * per-kernel work-group limit (register pressure). */
static gdn_status recurrent_kernel(gdn_context *ctx, const struct gdn_gd_shape *s,
                                   struct recurrent_plan *p, cl_kernel *out)
{
    size_t     max_wg = ctx->dev.info.max_work_group_size;
    char       opts[256];
    gdn_status st;
    int        attempt;

    for (attempt = 0; attempt < 4; attempt++) {
        size_t kwg = 0;
        cl_int err;
        if ((st = recurrent_plan_fit(ctx, s, p, max_wg)))
            return st;
        recurrent_plan_options(s, p, opts, sizeof(opts));
        if ((st = gdn__kernel_get(ctx, RECURRENT_CL, opts, RECURRENT_ENTRY, out)))
            return st;
        err = clGetKernelWorkGroupInfo(*out, ctx->dev.id, CL_KERNEL_WORK_GROUP_SIZE, sizeof(kwg),
                                       &kwg, NULL);
        if (err != CL_SUCCESS)
            return gdn__fail_cl(ctx, err, "gated_delta recurrent: CL_KERNEL_WORK_GROUP_SIZE");
        if (p->local <= kwg)
            return GDN_STATUS_OK;
        max_wg = kwg; /* too many registers per work-item: refit below kwg */
    }
    return gdn__fail(ctx, GDN_STATUS_UNSUPPORTED,
                     "gated_delta recurrent: kernel allows only %zu work-items per group", max_wg);
}

/* Tokens per launch on loop-limited devices: this over K (128 at K = 64,
 * where one launch of about 980 tokens already reached llvmpipe's limit). */
#define RECURRENT_WINDOW_KV 8192

gdn_status gdn__gd_recurrent_forward(struct gdn_gated_delta_tape *tp, cl_mem h0_mem, cl_mem o_mem,
                                     cl_mem ht_mem)
{
    gdn_context               *ctx = tp->ctx;
    const struct gdn_gd_shape *s   = &tp->s;
    const bool                 gate_in_op = (s->flags & GDN_GATED_DELTA_GATE_IN_OP) != 0;
    struct recurrent_plan      p;
    cl_kernel                  kr;
    cl_uint                    a = 0;
    size_t                     global;
    int32_t                    win, nwin;
    gdn_status                 st;

    if (s->N == 0 || (s->T == 0 && !ht_mem))
        return GDN_STATUS_OK;
    if (gate_in_op && (!tp->A_log || !tp->dt_bias))
        return gdn__fail(ctx, GDN_STATUS_INVALID_ARGUMENT,
                         "gated_delta recurrent: GATE_IN_OP needs A_log and dt_bias");
    {
        int32_t v[GDN_TUNE_MAX_PARAMS];
        gdn__gd_stage_lookup(ctx, &gdn__gd_recurrent_space, s, v);
        p.bv = v[0], p.vw = v[1], p.ks = v[2];
    }
    /* Token windows on Mesa llvmpipe (gdn__gd_loop_limited): each launch
     * runs RECURRENT_WINDOW_KV / K tokens of every sequence, the state going
     * h0 -> S -> ... -> S -> ht through a scratch state S. */
    win  = gdn__gd_loop_limited(&ctx->dev) ? RECURRENT_WINDOW_KV / s->K : 0;
    nwin = win > 0 && s->max_len > win ? (s->max_len + win - 1) / win : 1;
    /* The decode step's form: one token per sequence, state in place. */
    p.unit_seq = s->max_len == 1 && s->T == (int64_t)s->N;
    p.in_place = nwin == 1 && h0_mem && h0_mem == ht_mem;
    if ((st = recurrent_kernel(ctx, s, &p, &kr)))
        return st;

    /* The inputs; unused buffer arguments (no h0 or no ht) get a valid
     * buffer that is never touched. */
    if ((st = gdn__arg_mem(ctx, kr, a++, tp->q->mem)) ||
        (st = gdn__arg_mem(ctx, kr, a++, tp->k->mem)) ||
        (st = gdn__arg_mem(ctx, kr, a++, tp->v->mem)) ||
        (st = gdn__arg_mem(ctx, kr, a++, tp->g->mem)) ||
        (st = gdn__arg_mem(ctx, kr, a++, tp->beta->mem)))
        return st;
    if (gate_in_op && ((st = gdn__arg_mem(ctx, kr, a++, tp->A_log->mem)) ||
                       (st = gdn__arg_mem(ctx, kr, a++, tp->dt_bias->mem))))
        return st;
    if (!p.unit_seq && (st = gdn__arg_mem(ctx, kr, a++, tp->idx.seq_off)))
        return st;
    if ((st = gdn__arg_mem(ctx, kr, a++, o_mem)))
        return st;
    global = p.groups * p.local;
    /* Then the state (IN_PLACE) or h0, ht (at as, set per window below); H,
     * HV, scale, eps (at ai); has_h0, store_ht (at af, not IN_PLACE); tb,
     * te (at aw, not UNIT_SEQ). */
    {
        const cl_uint as = a, ai = as + (p.in_place ? 1 : 2), af = ai + 4;
        const cl_uint aw = af + (p.in_place ? 0 : 2);
        cl_mem        S  = NULL;
        int32_t       w;
        if ((st = gdn__arg_int(ctx, kr, ai, s->H)) ||
            (st = gdn__arg_int(ctx, kr, ai + 1, s->HV)) ||
            (st = gdn__arg_float(ctx, kr, ai + 2, s->scale)) ||
            (st = gdn__arg_float(ctx, kr, ai + 3, s->eps)))
            return st;
        if (nwin > 1 && (st = gdn__scratch_acquire(ctx, (size_t)s->N * (size_t)s->HV *
                                                            (size_t)s->K * (size_t)s->V * 4,
                                                   &S)))
            return st;
        for (w = 0; w < nwin && !st; w++) {
            const bool   first = w == 0, last = w == nwin - 1;
            const cl_mem in = first ? h0_mem : S, out = last ? ht_mem : S;
            if (p.in_place) /* (one window: in == out == the state) */
                st = gdn__arg_mem(ctx, kr, as, in);
            else if (!(st = gdn__arg_mem(ctx, kr, as, in ? in : tp->q->mem)) &&
                     !(st = gdn__arg_mem(ctx, kr, as + 1, out ? out : o_mem)) &&
                     !(st = gdn__arg_int(ctx, kr, af, in ? 1 : 0)))
                st = gdn__arg_int(ctx, kr, af + 1, out ? 1 : 0);
            if (!st && !p.unit_seq && !(st = gdn__arg_int(ctx, kr, aw, nwin > 1 ? w * win : 0)))
                st = gdn__arg_int(ctx, kr, aw + 1, last ? INT32_MAX : (w + 1) * win);
            if (!st)
                st = gdn__launch(ctx, kr, 1, &global, &p.local, NULL);
        }
        gdn__scratch_release(ctx, S);
    }
    return st;
}
