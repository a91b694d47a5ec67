/*
 * swiglu.c - the SwiGLU MLP y = W_down (silu(W_gate x) * (W_up x))
 * (ALGORITHM.md §3.1 GatedMLP, §4.5), forward and backward, from the linear
 * layer functions of linear.c and the elementwise kernels of
 * cl/loss/swiglu.cl.
 *
 * Forward (x [M, D], a, b, h [M, F]):
 *   a = x W_gate^T; b = x W_up^T          two GEMMs (into the tape when kept)
 *   h = silu(a) * b                        swiglu_fwd (in place over a when
 *                                          there is no tape)
 *   y (+)= h W_down^T                      GEMM
 * Backward (from the tape's a, b):
 *   dh = dy W_down                         GEMM
 *   h, da (over dh), db                    swiglu_bwd (h recomputed, not saved)
 *   dW_down (+)= dy^T h                    GEMM
 *   dx (+)= da W_gate; dx += db W_up       GEMMs
 *   dW_gate (+)= da^T x; dW_up (+)= db^T x GEMMs
 * Scratch: forward F floats per row (h) with a tape, 2 F without; backward
 * 3 F (dh/da, db, h).
 */
#include <string.h>

#include "linear.h"

#define SWIGLU_CL "loss/swiglu.cl"

struct gdn_swiglu_tape {
    gdn_context      *ctx;
    const gdn_tensor *x, *w_gate, *w_up, *w_down; /* borrowed */
    int64_t           M, D, F, Dout;
    cl_mem            a, b; /* owned: [M, F] each */
};

void gdn_swiglu_tape_destroy(gdn_swiglu_tape *tape)
{
    if (!tape)
        return;
    gdn__buffer_release(tape->a);
    gdn__buffer_release(tape->b);
    gdn__context_unref(tape->ctx);
    gdn__free(tape);
}

/* ------------------------------------------------------------ kernels */

/* Plan of swiglu_fwd / swiglu_bwd: a grid-stride loop over n elements, WG
 * work-items per group, at most MAXG groups (4096 by default: enough to fill
 * any GPU; each work-item then loops). Spaces linear/swiglu_fwd and
 * linear/swiglu_bwd: WG, MAXG; bucket "N2^k" of n. defaults(): WG 256
 * (halved to the device's limits), MAXG 4096, the old plan. On llvmpipe a
 * work-item's trips stay under the loop cap (linear.h). */
static size_t act_groups(size_t n, size_t wg, size_t maxg)
{
    size_t g = (n + wg - 1) / wg;
    return g < maxg ? g : maxg;
}

static bool act_valid(const int32_t *v, const void *problem, const struct gdn_device *dev)
{
    const struct gdn_lin_tune_problem *pr     = problem;
    const size_t                       n      = (size_t)pr->n;
    const size_t                       global = act_groups(n, (size_t)v[0], (size_t)v[1]) *
                                                (size_t)v[0];
    return gdn__lin_wg_fits(v[0], dev, 0) &&
           (global == 0 || (int64_t)((n + global - 1) / global) + 1 <= gdn__lin_loop_cap(dev));
}

static void act_defaults(int32_t *v, const void *problem, const struct gdn_device *dev)
{
    (void)problem;
    v[0] = gdn__lin_wg_default(dev, 0);
    v[1] = 4096;
}

static const struct gdn_tune_param act_params[] = {
    GDN_LIN_WG_PARAM, {"MAXG", 4096, 8, {16, 64, 256, 1024, 4096, 16384, 65536, 262144}}};

const struct gdn_tune_space gdn__swiglu_fwd_space = {
    "linear/swiglu_fwd", (int32_t)GDN_ARRAY_SIZE(act_params), act_params, act_valid,
    act_defaults};
const struct gdn_tune_space gdn__swiglu_bwd_space = {
    "linear/swiglu_bwd", (int32_t)GDN_ARRAY_SIZE(act_params), act_params, act_valid,
    act_defaults};

/* The plan's WG; *maxg receives the group cap (groups are set after the
 * build, from the work-group size it kept). */
static void act_plan(gdn_context *ctx, const struct gdn_tune_space *space, size_t n,
                     struct gdn_lin_plan *p, size_t *maxg)
{
    struct gdn_lin_tune_problem pr = {(int64_t)n, 0};
    int32_t                     v[GDN_TUNE_MAX_PARAMS];
    char                        bucket[16];
    gdn__lin_bucket((int64_t)n, bucket, sizeof(bucket));
    gdn__tune_lookup(ctx, space, bucket, &pr, v, NULL);
    p->wg          = v[0];
    p->groups      = 0;
    p->lmem_per_wi = 0;
    *maxg          = (size_t)v[1];
}

gdn_status gdn__swiglu_act_fwd(gdn_context *ctx, cl_mem a, cl_mem b, cl_mem h, size_t n)
{
    struct gdn_lin_plan p;
    cl_kernel           k;
    size_t              maxg;
    gdn_status          st;

    if (n == 0)
        return GDN_STATUS_OK;
    act_plan(ctx, &gdn__swiglu_fwd_space, n, &p, &maxg);
    if ((st = gdn__lin_kernel(ctx, SWIGLU_CL, "swiglu_fwd", NULL, 0, &p, 1, &k)))
        return st;
    p.groups = act_groups(n, (size_t)p.wg, maxg);
    if ((st = gdn__arg_mem(ctx, k, 0, a)) || (st = gdn__arg_mem(ctx, k, 1, b)) ||
        (st = gdn__arg_mem(ctx, k, 2, h)) || (st = gdn__arg_int(ctx, k, 3, (int32_t)(n >> 31))) ||
        (st = gdn__arg_int(ctx, k, 4, (int32_t)(n & 0x7fffffff))))
        return st;
    return gdn__lin_launch(ctx, k, &p);
}

gdn_status gdn__swiglu_act_bwd(gdn_context *ctx, cl_mem a, cl_mem b, cl_mem dh, cl_mem h,
                               cl_mem da, cl_mem db, size_t n)
{
    struct gdn_lin_plan p;
    cl_kernel           k;
    size_t              maxg;
    gdn_status          st;

    if (n == 0)
        return GDN_STATUS_OK;
    act_plan(ctx, &gdn__swiglu_bwd_space, n, &p, &maxg);
    if ((st = gdn__lin_kernel(ctx, SWIGLU_CL, "swiglu_bwd", NULL, 0, &p, 1, &k)))
        return st;
    p.groups = act_groups(n, (size_t)p.wg, maxg);
    if ((st = gdn__arg_mem(ctx, k, 0, a)) || (st = gdn__arg_mem(ctx, k, 1, b)) ||
        (st = gdn__arg_mem(ctx, k, 2, dh)) || (st = gdn__arg_mem(ctx, k, 3, h ? h : db)) ||
        (st = gdn__arg_mem(ctx, k, 4, da)) || (st = gdn__arg_mem(ctx, k, 5, db)) ||
        (st = gdn__arg_int(ctx, k, 6, (int32_t)(n >> 31))) ||
        (st = gdn__arg_int(ctx, k, 7, (int32_t)(n & 0x7fffffff))) ||
        (st = gdn__arg_int(ctx, k, 8, h ? 1 : 0)))
        return st;
    return gdn__lin_launch(ctx, k, &p);
}

/* ------------------------------------------------------------ API */

static gdn_status check_params(gdn_context *ctx, const char *fn, const gdn_linear_params *params,
                               uint32_t allowed)
{
    if (!params)
        return GDN_STATUS_OK;
    if (!gdn__lin_zero(params->reserved, GDN_ARRAY_SIZE(params->reserved)))
        return gdn__fail(ctx, GDN_STATUS_INVALID_ARGUMENT,
                         "%s: params.reserved must be zero (use gdn_linear_params_init)", fn);
    if (params->flags & ~allowed)
        return gdn__fail(ctx, GDN_STATUS_INVALID_ARGUMENT, "%s: unknown or unused flags 0x%x",
                         fn, (unsigned)(params->flags & ~allowed));
    return GDN_STATUS_OK;
}

/* Scratch of n floats (n may be 0: a 1-float buffer keeps arguments valid). */
static gdn_status scratch(gdn_context *ctx, int64_t n, cl_mem *out)
{
    size_t bytes;
    if (!gdn__mul_size((size_t)(n > 0 ? n : 1), sizeof(float), &bytes))
        return gdn__fail(ctx, GDN_STATUS_OUT_OF_DEVICE_MEMORY, "swiglu: scratch size overflows");
    return gdn__buffer_create(ctx, bytes, out);
}

gdn_status gdn_swiglu_forward(gdn_context *ctx, const gdn_linear_params *params,
                              const gdn_swiglu_args *args, gdn_tensor *y, gdn_swiglu_tape **tape)
{
    static const char      *fn = "gdn_swiglu_forward";
    struct gdn_swiglu_tape *tp = NULL;
    struct gdn_linear_shape up, down;
    int64_t                 M, D, F, Dout, want[1];
    cl_mem                  a = NULL, b = NULL, h = NULL;
    gdn_status              st;

    if (tape)
        *tape = NULL;
    if (!ctx)
        return GDN_STATUS_INVALID_ARGUMENT;
    if (!args)
        return gdn__fail(ctx, GDN_STATUS_INVALID_ARGUMENT, "%s: args is NULL", fn);
    if ((st = check_params(ctx, fn, params, GDN_LINEAR_ACCUMULATE_Y)))
        return st;
    if (!gdn__lin_zero(args->reserved, GDN_ARRAY_SIZE(args->reserved)))
        return gdn__fail(ctx, GDN_STATUS_INVALID_ARGUMENT, "%s: args.reserved must be zero", fn);
    if (!args->w_gate || args->w_gate->ndim != 2)
        return gdn__fail(ctx, args->w_gate ? GDN_STATUS_SHAPE_MISMATCH
                                           : GDN_STATUS_INVALID_ARGUMENT,
                         "%s: w_gate must be an F32 [F, D] tensor", fn);
    F = args->w_gate->shape[0];
    D = args->w_gate->shape[1];
    if (!args->w_down || args->w_down->ndim != 2)
        return gdn__fail(ctx, args->w_down ? GDN_STATUS_SHAPE_MISMATCH
                                           : GDN_STATUS_INVALID_ARGUMENT,
                         "%s: w_down must be an F32 [D_out, F] tensor", fn);
    Dout = args->w_down->shape[0];
    {
        const int64_t fd[2] = {F, D}, df[2] = {Dout, F};
        want[0]             = D;
        if ((st = gdn__check_tensor(ctx, args->w_gate, "w_gate", GDN_DTYPE_F32, 2, fd)) ||
            (st = gdn__check_tensor(ctx, args->w_up, "w_up", GDN_DTYPE_F32, 2, fd)) ||
            (st = gdn__check_tensor(ctx, args->w_down, "w_down", GDN_DTYPE_F32, 2, df)) ||
            (st = gdn__lin_rows(ctx, args->x, "x", GDN_DTYPE_F32, 1, want, &M)))
            return st;
    }
    {
        int64_t shape[GDN_MAX_DIMS];
        int32_t i;
        for (i = 0; i < args->x->ndim; i++)
            shape[i] = args->x->shape[i];
        shape[args->x->ndim - 1] = Dout;
        if ((st = gdn__check_tensor(ctx, y, "y", GDN_DTYPE_F32, args->x->ndim, shape)))
            return st;
    }
    if (F > INT32_MAX || D > INT32_MAX || Dout > INT32_MAX)
        return gdn__fail(ctx, GDN_STATUS_UNSUPPORTED, "%s: widths beyond 2^31 - 1", fn);

    up.M = M, up.G = 1, up.in = D, up.out = F;
    down.M = M, down.G = 1, down.in = F, down.out = Dout;
    if (tape) {
        tp = gdn__calloc(1, sizeof(*tp));
        if (!tp)
            return gdn__fail(ctx, GDN_STATUS_OUT_OF_HOST_MEMORY, "%s: tape", fn);
        tp->ctx = ctx;
        gdn__context_ref(ctx);
        tp->x = args->x, tp->w_gate = args->w_gate, tp->w_up = args->w_up,
        tp->w_down = args->w_down;
        tp->M = M, tp->D = D, tp->F = F, tp->Dout = Dout;
    }
    if (!(st = scratch(ctx, M * F, &a)) && !(st = scratch(ctx, M * F, &b)) &&
        !(st = (tp ? scratch(ctx, M * F, &h) : GDN_STATUS_OK)) &&
        !(st = gdn__linear_fwd(ctx, &up, args->x->mem, args->w_gate->mem, NULL, a, false)) &&
        !(st = gdn__linear_fwd(ctx, &up, args->x->mem, args->w_up->mem, NULL, b, false)) &&
        !(st = gdn__swiglu_act_fwd(ctx, a, b, tp ? h : a, (size_t)(M * F))))
        st = gdn__linear_fwd(ctx, &down, tp ? h : a, args->w_down->mem, NULL, y->mem,
                             params && (params->flags & GDN_LINEAR_ACCUMULATE_Y));
    gdn__buffer_release(h);
    if (tp && !st) {
        tp->a  = a;
        tp->b  = b;
        *tape = tp;
        return GDN_STATUS_OK;
    }
    gdn__buffer_release(a);
    gdn__buffer_release(b);
    gdn_swiglu_tape_destroy(tp);
    return st;
}

gdn_status gdn_swiglu_backward(gdn_context *ctx, const gdn_linear_params *params,
                               const gdn_swiglu_tape *tape, const gdn_tensor *dy,
                               const gdn_swiglu_grads *grads)
{
    static const char      *fn    = "gdn_swiglu_backward";
    const uint32_t          flags = params ? params->flags : 0;
    const bool              acc_w = (flags & GDN_LINEAR_ACCUMULATE_DW) != 0;
    struct gdn_linear_shape up, down;
    cl_mem                  dh = NULL, db = NULL, h = NULL;
    gdn_status              st;

    if (!ctx)
        return GDN_STATUS_INVALID_ARGUMENT;
    if (!tape || !dy || !grads)
        return gdn__fail(ctx, GDN_STATUS_INVALID_ARGUMENT, "%s: tape, dy and grads are required",
                         fn);
    if (tape->ctx != ctx)
        return gdn__fail(ctx, GDN_STATUS_INVALID_ARGUMENT, "%s: the tape belongs to another context",
                         fn);
    if ((st = check_params(ctx, fn, params,
                           GDN_LINEAR_ACCUMULATE_DX | GDN_LINEAR_ACCUMULATE_DW)))
        return st;
    if (!gdn__lin_null(grads->reserved, GDN_ARRAY_SIZE(grads->reserved)))
        return gdn__fail(ctx, GDN_STATUS_INVALID_ARGUMENT, "%s: grads.reserved must be NULL", fn);
    {
        int64_t shape[GDN_MAX_DIMS];
        int32_t i;
        for (i = 0; i < tape->x->ndim; i++)
            shape[i] = tape->x->shape[i];
        shape[tape->x->ndim - 1] = tape->Dout;
        if ((st = gdn__check_tensor(ctx, dy, "dy", GDN_DTYPE_F32, tape->x->ndim, shape)))
            return st;
    }
    if ((grads->dx && (st = gdn__check_tensor(ctx, grads->dx, "dx", GDN_DTYPE_F32, tape->x->ndim,
                                               tape->x->shape))) ||
        (grads->dw_gate && (st = gdn__check_tensor(ctx, grads->dw_gate, "dw_gate", GDN_DTYPE_F32,
                                                    2, tape->w_gate->shape))) ||
        (grads->dw_up && (st = gdn__check_tensor(ctx, grads->dw_up, "dw_up", GDN_DTYPE_F32, 2,
                                                  tape->w_up->shape))) ||
        (grads->dw_down && (st = gdn__check_tensor(ctx, grads->dw_down, "dw_down", GDN_DTYPE_F32,
                                                    2, tape->w_down->shape))))
        return st;
    if (!grads->dx && !grads->dw_gate && !grads->dw_up && !grads->dw_down)
        return GDN_STATUS_OK;

    up.M = tape->M, up.G = 1, up.in = tape->D, up.out = tape->F;
    down.M = tape->M, down.G = 1, down.in = tape->F, down.out = tape->Dout;
    if ((st = scratch(ctx, tape->M * tape->F, &dh)) ||
        (st = scratch(ctx, tape->M * tape->F, &db)) ||
        (grads->dw_down && (st = scratch(ctx, tape->M * tape->F, &h))))
        goto done;
    /* dh = dy W_down; then h, da (in place over dh), db */
    if ((st = gdn__linear_bwd_dx(ctx, &down, dy->mem, tape->w_down->mem, dh, false)) ||
        (st = gdn__swiglu_act_bwd(ctx, tape->a, tape->b, dh, h, dh, db,
                                  (size_t)(tape->M * tape->F))))
        goto done;
    if (grads->dw_down &&
        (st = gdn__linear_bwd_dw(ctx, &down, dy->mem, h, grads->dw_down->mem, acc_w)))
        goto done;
    if (grads->dx &&
        ((st = gdn__linear_bwd_dx(ctx, &up, dh, tape->w_gate->mem, grads->dx->mem,
                                  (flags & GDN_LINEAR_ACCUMULATE_DX) != 0)) ||
         (st = gdn__linear_bwd_dx(ctx, &up, db, tape->w_up->mem, grads->dx->mem, true))))
        goto done;
    if (grads->dw_gate &&
        (st = gdn__linear_bwd_dw(ctx, &up, dh, tape->x->mem, grads->dw_gate->mem, acc_w)))
        goto done;
    if (grads->dw_up &&
        (st = gdn__linear_bwd_dw(ctx, &up, db, tape->x->mem, grads->dw_up->mem, acc_w)))
        goto done;
done:
    gdn__buffer_release(dh);
    gdn__buffer_release(db);
    gdn__buffer_release(h);
    return st;
}
