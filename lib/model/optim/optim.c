/*
 * optim.c - host side of cl/optim/optim.cl: AdamW step, sum of squares,
 * in-place scaling (argument checks, plans, launches), and the
 * learning-rate schedule. Interface and semantics: optim.h.
 */
#include "optim.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "tune/tune.h"

#define OPTIM_CL "optim/optim.cl"

/* Largest numel the kernels take: n_hi * 2^31 + n_lo with n_hi an int. */
#define OPTIM_MAX_NUMEL ((uint64_t)INT32_MAX << 31)

/* Plan of the optim kernels (runtime values only; the program has no -D
 * options): a grid-stride loop over quads of 4 floats.
 *   local   work-group size (a power of two: optim_sumsq's tree needs one,
 *           and its local memory, local floats, must fit)
 *   groups  min(ceil(quads / (local * QPW)), GPC per compute unit), at
 *           least 1
 * Tuning spaces (lib/tune/tune.h), bucket "N2^k" of the element count
 * (k = 12, 16, 20, ...):
 *   optim/adamw, optim/scale   WG, GPC (QPW is 1)
 *   optim/sumsq                WG, GPC, QPW (quads per work-item at least)
 * valid(): WG within the device's and the kernel's work-group limits (and
 * local memory for optim_sumsq), and on Mesa llvmpipe, which silently ends
 * a work-item's loops after 65535 iterations in total, the grid-stride
 * loop, the tail and the tree under OPTIM_LOOP_CAP. defaults() are the old
 * plans: WG 256 halved to the limits, GPC 64 (element-wise) or 8 with QPW
 * 16 (optim_sumsq: few partials to read back, enough work-items to keep a
 * GPU's memory busy). optim_sumsq's summation order depends only on n and
 * the plan, and a plan depends only on n's bucket and the device, so the
 * result has the same bits every run. */
struct optim_plan {
    size_t local;
    size_t groups;
};

/* Problem of the optim spaces. */
struct optim_tune_problem {
    size_t n;      /* elements                                 */
    size_t kwg;    /* CL_KERNEL_WORK_GROUP_SIZE of the kernel  */
    bool   reduce; /* optim_sumsq: local memory, the tree      */
};

static int64_t optim_loop_cap(const struct gdn_device *dev)
{
    return strstr(dev->info.name, "llvmpipe") ? 32768 : INT64_MAX;
}

static size_t optim_groups(size_t n, size_t wg, size_t gpc, size_t qpw,
                           const struct gdn_device *dev)
{
    const size_t cu    = dev->info.compute_units ? (size_t)dev->info.compute_units : 1;
    const size_t quads = (n + 3) / 4, per_group = wg * qpw, cap = gpc * cu;
    size_t       g     = (quads + per_group - 1) / per_group;
    if (g > cap)
        g = cap;
    return g ? g : 1;
}

static bool optim_wg_fits(size_t wg, const struct optim_tune_problem *pr,
                          const struct gdn_device *dev)
{
    return wg <= pr->kwg && wg <= dev->info.max_work_group_size &&
           (!pr->reduce || wg * sizeof(float) <= dev->info.local_mem_bytes);
}

static bool optim_valid(const int32_t *v, const void *problem, const struct gdn_device *dev)
{
    const struct optim_tune_problem *pr  = problem;
    const size_t                     wg  = (size_t)v[0];
    const size_t                     qpw = pr->reduce ? (size_t)v[2] : 1;
    const size_t global = optim_groups(pr->n, wg, (size_t)v[1], qpw, dev) * wg;
    int64_t      trips  = (int64_t)((pr->n / 4 + global - 1) / global) + 3 + 1;
    for (size_t h = wg / 2; pr->reduce && h > 0; h /= 2)
        trips++;
    return optim_wg_fits(wg, pr, dev) && trips <= optim_loop_cap(dev) &&
           optim_groups(pr->n, wg, (size_t)v[1], qpw, dev) <= (size_t)INT32_MAX;
}

static void optim_defaults(int32_t *v, const void *problem, const struct gdn_device *dev)
{
    const struct optim_tune_problem *pr = problem;
    int32_t                          wg = 256;
    while (wg > 1 && !optim_wg_fits((size_t)wg, pr, dev))
        wg /= 2;
    v[0] = wg;
    v[1] = pr->reduce ? 8 : 64;
    if (pr->reduce)
        v[2] = 16;
}

#define OPTIM_WG {"WG", 256, 11, {1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024}}
static const struct gdn_tune_param optim_ew_params[] = {
    OPTIM_WG, {"GPC", 64, 9, {1, 2, 4, 8, 16, 32, 64, 128, 256}}};
static const struct gdn_tune_param optim_sumsq_params[] = {
    OPTIM_WG, {"GPC", 8, 9, {1, 2, 4, 8, 16, 32, 64, 128, 256}},
    {"QPW", 16, 7, {1, 2, 4, 8, 16, 32, 64}}};

const struct gdn_tune_space gdn__optim_adamw_space = {
    "optim/adamw", (int32_t)GDN_ARRAY_SIZE(optim_ew_params), optim_ew_params, optim_valid,
    optim_defaults};
const struct gdn_tune_space gdn__optim_scale_space = {
    "optim/scale", (int32_t)GDN_ARRAY_SIZE(optim_ew_params), optim_ew_params, optim_valid,
    optim_defaults};
const struct gdn_tune_space gdn__optim_sumsq_space = {
    "optim/sumsq", (int32_t)GDN_ARRAY_SIZE(optim_sumsq_params), optim_sumsq_params, optim_valid,
    optim_defaults};

static gdn_status optim_plan(gdn_context *ctx, const struct gdn_tune_space *space, cl_kernel k,
                             size_t n, bool reduce, struct optim_plan *p)
{
    struct optim_tune_problem pr;
    int32_t                   v[GDN_TUNE_MAX_PARAMS];
    char                      bucket[16];
    int                       lg  = 12;
    size_t                    kwg = 0;
    cl_int err = clGetKernelWorkGroupInfo(k, ctx->dev.id, CL_KERNEL_WORK_GROUP_SIZE,
                                          sizeof(kwg), &kwg, NULL);
    if (err != CL_SUCCESS)
        return gdn__fail_cl(ctx, err, "optim: CL_KERNEL_WORK_GROUP_SIZE");
    pr.n = n, pr.kwg = kwg, pr.reduce = reduce;
    while (lg < 60 && ((uint64_t)1 << lg) < (uint64_t)n)
        lg += 4;
    snprintf(bucket, sizeof(bucket), "N2^%d", lg);
    gdn__tune_lookup(ctx, space, bucket, &pr, v, NULL);
    p->local  = (size_t)v[0];
    p->groups = optim_groups(n, p->local, (size_t)v[1], reduce ? (size_t)v[2] : 1, &ctx->dev);
    return GDN_STATUS_OK;
}

static gdn_status set_n(gdn_context *ctx, cl_kernel k, cl_uint a, size_t n)
{
    gdn_status st = gdn__arg_int(ctx, k, a, (int32_t)(n >> 31));
    return st ? st : gdn__arg_int(ctx, k, a + 1, (int32_t)(n & 0x7fffffff));
}

/* Non-NULL, this context, F32, not too large. */
static gdn_status check_f32(gdn_context *ctx, const char *fn, const gdn_tensor *t,
                            const char *name)
{
    if (!t)
        return gdn__fail(ctx, GDN_STATUS_INVALID_ARGUMENT, "%s: %s is NULL", fn, name);
    if (t->ctx != ctx)
        return gdn__fail(ctx, GDN_STATUS_INVALID_ARGUMENT, "%s: %s belongs to another context",
                         fn, name);
    if (t->dtype != GDN_DTYPE_F32)
        return gdn__fail(ctx, GDN_STATUS_SHAPE_MISMATCH, "%s: %s must be F32", fn, name);
    if ((uint64_t)t->numel > OPTIM_MAX_NUMEL)
        return gdn__fail(ctx, GDN_STATUS_UNSUPPORTED, "%s: %s has too many elements (%lld)", fn,
                         name, (long long)t->numel);
    return GDN_STATUS_OK;
}

/* check_f32 plus numel equal to grad's. */
static gdn_status check_like_grad(gdn_context *ctx, const char *fn, const gdn_tensor *t,
                                  const char *name, const gdn_tensor *grad)
{
    gdn_status st = check_f32(ctx, fn, t, name);
    if (st)
        return st;
    if (t->numel != grad->numel)
        return gdn__fail(ctx, GDN_STATUS_SHAPE_MISMATCH,
                         "%s: %s has %lld elements, grad has %lld", fn, name,
                         (long long)t->numel, (long long)grad->numel);
    return GDN_STATUS_OK;
}

static bool same_buffer(const gdn_tensor *a, const gdn_tensor *b)
{
    return a == b || a->mem == b->mem;
}

static gdn_status check_hp(gdn_context *ctx, const char *fn, const struct gdn__adamw_hp *hp)
{
    if (!hp)
        return gdn__fail(ctx, GDN_STATUS_INVALID_ARGUMENT, "%s: hp is NULL", fn);
    if (!isfinite(hp->lr) || hp->lr < 0.0f)
        return gdn__fail(ctx, GDN_STATUS_INVALID_ARGUMENT,
                         "%s: lr = %g must be finite and >= 0", fn, (double)hp->lr);
    if (!(hp->beta1 >= 0.0f && hp->beta1 < 1.0f))
        return gdn__fail(ctx, GDN_STATUS_INVALID_ARGUMENT, "%s: beta1 = %g is not in [0, 1)", fn,
                         (double)hp->beta1);
    if (!(hp->beta2 >= 0.0f && hp->beta2 < 1.0f))
        return gdn__fail(ctx, GDN_STATUS_INVALID_ARGUMENT, "%s: beta2 = %g is not in [0, 1)", fn,
                         (double)hp->beta2);
    if (!isfinite(hp->eps) || hp->eps <= 0.0f)
        return gdn__fail(ctx, GDN_STATUS_INVALID_ARGUMENT,
                         "%s: eps = %g must be finite and > 0", fn, (double)hp->eps);
    if (!isfinite(hp->weight_decay) || hp->weight_decay < 0.0f)
        return gdn__fail(ctx, GDN_STATUS_INVALID_ARGUMENT,
                         "%s: weight_decay = %g must be finite and >= 0", fn,
                         (double)hp->weight_decay);
    if (!isfinite(hp->grad_scale) || hp->grad_scale < 0.0f)
        return gdn__fail(ctx, GDN_STATUS_INVALID_ARGUMENT,
                         "%s: grad_scale = %g must be finite and >= 0", fn,
                         (double)hp->grad_scale);
    if (hp->step < 1)
        return gdn__fail(ctx, GDN_STATUS_INVALID_ARGUMENT, "%s: step = %lld must be >= 1", fn,
                         (long long)hp->step);
    return GDN_STATUS_OK;
}

gdn_status gdn__adamw_step(gdn_context *ctx, gdn_tensor *param, const gdn_tensor *grad,
                           gdn_tensor *m, gdn_tensor *v, const struct gdn__adamw_hp *hp)
{
    static const char *fn = "adamw_step";
    struct optim_plan  p;
    cl_kernel          k;
    size_t             n, global;
    double             b1, b2, bc1, bc2;
    gdn_status         st;

    if (!ctx)
        return GDN_STATUS_INVALID_ARGUMENT;
    if ((st = check_hp(ctx, fn, hp)) || (st = check_f32(ctx, fn, grad, "grad")) ||
        (st = check_like_grad(ctx, fn, param, "param", grad)) ||
        (st = check_like_grad(ctx, fn, m, "m", grad)) ||
        (st = check_like_grad(ctx, fn, v, "v", grad)))
        return st;
    if (same_buffer(param, grad) || same_buffer(param, m) || same_buffer(param, v) ||
        same_buffer(grad, m) || same_buffer(grad, v) || same_buffer(m, v))
        return gdn__fail(ctx, GDN_STATUS_INVALID_ARGUMENT,
                         "%s: param, grad, m and v must be distinct buffers (alias)", fn);
    n = (size_t)grad->numel;
    if (n == 0)
        return GDN_STATUS_OK;

    /* The scalars in double, as PyTorch computes them from Python floats. */
    b1  = (double)hp->beta1;
    b2  = (double)hp->beta2;
    bc1 = 1.0 - pow(b1, (double)hp->step);
    bc2 = 1.0 - pow(b2, (double)hp->step);

    if ((st = gdn__kernel_get(ctx, OPTIM_CL, "", "optim_adamw", &k)) ||
        (st = optim_plan(ctx, &gdn__optim_adamw_space, k, n, false, &p)))
        return st;
    if ((st = gdn__arg_mem(ctx, k, 0, param->mem)) || (st = gdn__arg_mem(ctx, k, 1, grad->mem)) ||
        (st = gdn__arg_mem(ctx, k, 2, m->mem)) || (st = gdn__arg_mem(ctx, k, 3, v->mem)) ||
        (st = set_n(ctx, k, 4, n)) || (st = gdn__arg_float(ctx, k, 6, hp->grad_scale)) ||
        (st = gdn__arg_float(ctx, k, 7,
                             (float)(1.0 - (double)hp->lr * (double)hp->weight_decay))) ||
        (st = gdn__arg_float(ctx, k, 8, hp->beta1)) ||
        (st = gdn__arg_float(ctx, k, 9, (float)(1.0 - b1))) ||
        (st = gdn__arg_float(ctx, k, 10, hp->beta2)) ||
        (st = gdn__arg_float(ctx, k, 11, (float)(1.0 - b2))) ||
        (st = gdn__arg_float(ctx, k, 12, (float)((double)hp->lr / bc1))) ||
        (st = gdn__arg_float(ctx, k, 13, (float)sqrt(bc2))) ||
        (st = gdn__arg_float(ctx, k, 14, hp->eps)))
        return st;
    global = p.groups * p.local;
    return gdn__launch(ctx, k, 1, &global, &p.local, NULL);
}

gdn_status gdn__sumsq(gdn_context *ctx, const gdn_tensor *const *ts, size_t n, double *out)
{
    static const char *fn = "sumsq";
    struct optim_plan *plans = NULL;
    cl_kernel          k     = NULL;
    cl_mem             part  = NULL;
    float             *host  = NULL;
    size_t             total = 0, i, g, off;
    double             sum;
    cl_int             err;
    gdn_status         st;

    if (out)
        *out = NAN;
    if (!ctx)
        return GDN_STATUS_INVALID_ARGUMENT;
    if (!out)
        return gdn__fail(ctx, GDN_STATUS_INVALID_ARGUMENT, "%s: out is NULL", fn);
    if (n > 0 && !ts)
        return gdn__fail(ctx, GDN_STATUS_INVALID_ARGUMENT, "%s: ts is NULL", fn);
    for (i = 0; i < n; i++) {
        char name[32];
        snprintf(name, sizeof(name), "ts[%zu]", i);
        if ((st = check_f32(ctx, fn, ts[i], name)))
            return st;
    }

    /* Plans first (total partial count), then one scratch buffer. */
    if (n > 0 && !(plans = gdn__calloc(n, sizeof(*plans))))
        return gdn__fail(ctx, GDN_STATUS_OUT_OF_HOST_MEMORY, "%s: plans of %zu tensors", fn, n);
    for (i = 0; i < n; i++) {
        if (ts[i]->numel == 0)
            continue;
        if (!k && (st = gdn__kernel_get(ctx, OPTIM_CL, "", "optim_sumsq", &k)))
            goto done;
        if ((st = optim_plan(ctx, &gdn__optim_sumsq_space, k, (size_t)ts[i]->numel, true,
                              &plans[i])))
            goto done;
        total += plans[i].groups;
    }
    if (total == 0) {
        *out = 0.0;
        st   = GDN_STATUS_OK;
        goto done;
    }
    if (total > (size_t)INT32_MAX) {
        st = gdn__fail(ctx, GDN_STATUS_UNSUPPORTED, "%s: %zu partial sums are too many", fn, total);
        goto done;
    }
    if (!(host = gdn__malloc(total * sizeof(float)))) {
        st = gdn__fail(ctx, GDN_STATUS_OUT_OF_HOST_MEMORY, "%s: %zu partial sums", fn, total);
        goto done;
    }
    if ((st = gdn__scratch_acquire(ctx, total * sizeof(float), &part)))
        goto done;
    for (i = 0, off = 0; i < n; i++) {
        size_t global;
        if (ts[i]->numel == 0)
            continue;
        if ((st = gdn__arg_mem(ctx, k, 0, ts[i]->mem)) ||
            (st = set_n(ctx, k, 1, (size_t)ts[i]->numel)) ||
            (st = gdn__arg_mem(ctx, k, 3, part)) || (st = gdn__arg_int(ctx, k, 4, (int32_t)off)) ||
            (st = gdn__arg_local(ctx, k, 5, plans[i].local * sizeof(float))))
            goto done;
        global = plans[i].groups * plans[i].local;
        if ((st = gdn__launch(ctx, k, 1, &global, &plans[i].local, NULL)))
            goto done;
        off += plans[i].groups;
    }
    err = clEnqueueReadBuffer(ctx->queue, part, CL_TRUE, 0, total * sizeof(float), host, 0, NULL,
                              NULL);
    if (err != CL_SUCCESS) {
        st = gdn__fail_cl(ctx, err, "sumsq: reading the partial sums");
        goto done;
    }
    /* Fixed order: tensor by tensor, group by group. */
    sum = 0.0;
    for (g = 0; g < total; g++)
        sum += (double)host[g];
    *out = sum;
    st   = GDN_STATUS_OK;
done:
    if (part)
        gdn__scratch_release(ctx, part);
    gdn__free(host);
    gdn__free(plans);
    return st;
}

gdn_status gdn__scale_f32(gdn_context *ctx, gdn_tensor *t, float s)
{
    static const char *fn = "scale_f32";
    struct optim_plan  p;
    cl_kernel          k;
    size_t             n, global;
    gdn_status         st;

    if (!ctx)
        return GDN_STATUS_INVALID_ARGUMENT;
    if ((st = check_f32(ctx, fn, t, "t")))
        return st;
    if (!isfinite(s))
        return gdn__fail(ctx, GDN_STATUS_INVALID_ARGUMENT, "%s: s = %g must be finite", fn,
                         (double)s);
    n = (size_t)t->numel;
    if (n == 0 || s == 1.0f)
        return GDN_STATUS_OK;
    if (s == 0.0f) /* a fill, not a multiply: 0 * NaN is NaN */
        return gdn__fill_f32(ctx, t->mem, n, 0.0f);
    if ((st = gdn__kernel_get(ctx, OPTIM_CL, "", "optim_scale", &k)) ||
        (st = optim_plan(ctx, &gdn__optim_scale_space, k, n, false, &p)))
        return st;
    if ((st = gdn__arg_mem(ctx, k, 0, t->mem)) || (st = set_n(ctx, k, 1, n)) ||
        (st = gdn__arg_float(ctx, k, 3, s)))
        return st;
    global = p.groups * p.local;
    return gdn__launch(ctx, k, 1, &global, &p.local, NULL);
}

double gdn__lr_schedule(int64_t step, int64_t warmup, int64_t total, double peak,
                        double min_ratio)
{
    const double pi = 3.14159265358979323846;
    double       t, lo;

    if (step < 0)
        step = 0;
    if (warmup < 0)
        warmup = 0;
    if (step < warmup)
        return peak * (double)(step + 1) / (double)warmup;
    if (total <= warmup || total - warmup <= 1) /* no room to decay */
        return peak;
    t  = (double)(step - warmup) / (double)(total - 1 - warmup);
    t  = t < 1.0 ? t : 1.0;
    lo = peak * min_ratio;
    return lo + (peak - lo) * 0.5 * (1.0 + cos(pi * t));
}
