/*
 * linear.c - linear layers y = x W^T (+ b), plain or grouped (one weight per
 * head), forward and backward, on the GEMM interface of gemm.h, plus the
 * small kernels of cl/loss/linear.cl (bias broadcast, deterministic column
 * sums, the K == 0 scale) and the helpers shared by this op's files.
 *
 * GEMM mapping (row-major; x [M, G, in], W [G, out, in], y [M, G, out]):
 *   forward  y_g  = x_g W_g^T    : NT, M x out x in,  lda = G in,  ldb = in,  ldc = G out
 *   dx       dx_g = dy_g W_g     : NN, M x in  x out, lda = G out, ldb = in,  ldc = G in
 *   dw       dW_g = dy_g^T x_g   : TN, out x in x M,  lda = G out, ldb = G in, ldc = in
 * G = 1 is one CLBlastSgemm; G > 1 one CLBlastSgemmStridedBatched with
 * strides in / out (activations) and out * in (weights). A bias is broadcast
 * into y first (linear_bias_fwd), then the GEMM adds with beta = 1.
 */
#include <string.h>

#include "linear.h"

#define LINEAR_CL "loss/linear.cl"

/* ------------------------------------------------------------ helpers */

bool gdn__lin_zero(const uint32_t *w, size_t n)
{
    size_t i;
    for (i = 0; i < n; i++)
        if (w[i])
            return false;
    return true;
}

bool gdn__lin_null(void *const *p, size_t n)
{
    size_t i;
    for (i = 0; i < n; i++)
        if (p[i])
            return false;
    return true;
}

gdn_status gdn__lin_rows(gdn_context *ctx, const gdn_tensor *t, const char *name, gdn_dtype dtype,
                         int32_t tail, const int64_t *want, int64_t *rows)
{
    int32_t i;
    int64_t r = 1;

    if (!t)
        return gdn__fail(ctx, GDN_STATUS_INVALID_ARGUMENT, "%s is NULL", name);
    if (t->ctx != ctx)
        return gdn__fail(ctx, GDN_STATUS_INVALID_ARGUMENT, "%s belongs to another context", name);
    if (t->dtype != dtype)
        return gdn__fail(ctx, GDN_STATUS_SHAPE_MISMATCH, "%s: expected dtype %s, got %s", name,
                         dtype == GDN_DTYPE_I32 ? "I32" : "F32",
                         t->dtype == GDN_DTYPE_I32 ? "I32" : (t->dtype == GDN_DTYPE_F32 ? "F32" : "F16/BF16"));
    if (t->ndim < tail || t->ndim < 1)
        return gdn__fail(ctx, GDN_STATUS_SHAPE_MISMATCH,
                         "%s: needs at least %d dimensions, has %d", name, (int)(tail ? tail : 1),
                         (int)t->ndim);
    for (i = 0; i < tail; i++)
        if (t->shape[t->ndim - tail + i] != want[i])
            return gdn__fail(ctx, GDN_STATUS_SHAPE_MISMATCH,
                             "%s: dimension %d is %lld, expected %lld", name,
                             (int)(t->ndim - tail + i), (long long)t->shape[t->ndim - tail + i],
                             (long long)want[i]);
    for (i = 0; i < t->ndim - tail; i++)
        r *= t->shape[i];
    *rows = r;
    return GDN_STATUS_OK;
}

gdn_status gdn__lin_kernel(gdn_context *ctx, const char *file, const char *entry,
                           const struct gdn_define *extra, size_t n_extra, struct gdn_lin_plan *p,
                           int32_t min_wg, cl_kernel *out)
{
    struct gdn_define defs[8];
    char              opts[256];
    size_t            i, max_wg = ctx->dev.info.max_work_group_size;
    const uint64_t    lmem = ctx->dev.info.local_mem_bytes;
    gdn_status        st;
    int               attempt;

    if (n_extra + 1 > GDN_ARRAY_SIZE(defs))
        return gdn__fail(ctx, GDN_STATUS_INTERNAL, "%s: too many defines", entry);
    for (attempt = 0; attempt < 8; attempt++) {
        size_t kwg = 0;
        cl_int err;
        while (((size_t)p->wg > max_wg || (uint64_t)p->wg * p->lmem_per_wi > lmem) &&
               p->wg / 2 >= min_wg)
            p->wg /= 2;
        if ((size_t)p->wg > max_wg || (uint64_t)p->wg * p->lmem_per_wi > lmem || p->wg < 1)
            return gdn__fail(ctx, GDN_STATUS_UNSUPPORTED,
                             "%s: needs work-groups of %d work-items and %zu B of local memory "
                             "each; the device allows %zu work-items and %llu B",
                             entry, (int)min_wg, (size_t)min_wg * p->lmem_per_wi, max_wg,
                             (unsigned long long)lmem);
        defs[0].name  = "WG";
        defs[0].value = p->wg;
        for (i = 0; i < n_extra; i++)
            defs[i + 1] = extra[i];
        if (!gdn__defines_format(defs, n_extra + 1, opts, sizeof(opts)))
            return gdn__fail(ctx, GDN_STATUS_INTERNAL, "%s: options too long", entry);
        if ((st = gdn__kernel_get(ctx, file, opts, entry, out)))
            return st;
        err = clGetKernelWorkGroupInfo(*out, ctx->dev.id, CL_KERNEL_WORK_GROUP_SIZE, sizeof(kwg),
                                       &kwg, NULL);
        if (err != CL_SUCCESS)
            return gdn__fail_cl(ctx, err, entry);
        if ((size_t)p->wg <= kwg)
            return GDN_STATUS_OK;
        max_wg = kwg; /* the kernel allows fewer (registers): refit */
    }
    return gdn__fail(ctx, GDN_STATUS_UNSUPPORTED, "%s: no work-group size fits", entry);
}

gdn_status gdn__lin_launch(gdn_context *ctx, cl_kernel k, const struct gdn_lin_plan *p)
{
    size_t local = (size_t)p->wg, global;
    if (p->groups == 0)
        return GDN_STATUS_OK;
    if (p->groups > (size_t)INT32_MAX)
        return gdn__fail(ctx, GDN_STATUS_UNSUPPORTED, "%zu work-groups exceed 2^31 - 1",
                         p->groups);
    global = p->groups * local;
    return gdn__launch(ctx, k, 1, &global, &local, NULL);
}

static gdn_status arg_ulong(gdn_context *ctx, cl_kernel k, cl_uint i, uint64_t v)
{
    cl_ulong x   = v;
    cl_int   err = clSetKernelArg(k, i, sizeof(x), &x);
    return err == CL_SUCCESS ? GDN_STATUS_OK : gdn__fail_cl(ctx, err, "linear: kernel argument");
}

static size_t div_up(size_t a, size_t b)
{
    return (a + b - 1) / b;
}

/* ------------------------------------------------------------ small kernels */

/* Plan of linear_bias_fwd / linear_scale: WG columns of one row per group. */
static void rowwise_plan_default(size_t rows, size_t cols, struct gdn_lin_plan *p)
{
    p->wg          = 256;
    p->groups      = 0;
    p->lmem_per_wi = 0;
    (void)rows, (void)cols;
}

gdn_status gdn__lin_scale(gdn_context *ctx, cl_mem C, size_t off, size_t rows, size_t cols,
                          size_t ldc, float beta)
{
    struct gdn_lin_plan p;
    cl_kernel           k;
    gdn_status          st;
    size_t              nb;

    if (beta == 1.0f || rows == 0 || cols == 0)
        return GDN_STATUS_OK;
    rowwise_plan_default(rows, cols, &p);
    if ((st = gdn__lin_kernel(ctx, LINEAR_CL, "linear_scale", NULL, 0, &p, 1, &k)))
        return st;
    nb       = div_up(cols, (size_t)p.wg);
    p.groups = rows * nb;
    if ((st = gdn__arg_mem(ctx, k, 0, C)) || (st = arg_ulong(ctx, k, 1, off)) ||
        (st = gdn__arg_int(ctx, k, 2, (int32_t)cols)) || (st = arg_ulong(ctx, k, 3, ldc)) ||
        (st = gdn__arg_int(ctx, k, 4, (int32_t)nb)) || (st = gdn__arg_float(ctx, k, 5, beta)))
        return st;
    return gdn__lin_launch(ctx, k, &p);
}

static gdn_status bias_fwd(gdn_context *ctx, cl_mem b, cl_mem y, size_t M, size_t N,
                           bool accumulate)
{
    struct gdn_lin_plan p;
    cl_kernel           k;
    gdn_status          st;
    size_t              nb;

    if (M == 0 || N == 0)
        return GDN_STATUS_OK;
    rowwise_plan_default(M, N, &p);
    if ((st = gdn__lin_kernel(ctx, LINEAR_CL, "linear_bias_fwd", NULL, 0, &p, 1, &k)))
        return st;
    nb       = div_up(N, (size_t)p.wg);
    p.groups = M * nb;
    if ((st = gdn__arg_mem(ctx, k, 0, b)) || (st = gdn__arg_mem(ctx, k, 1, y)) ||
        (st = gdn__arg_int(ctx, k, 2, (int32_t)N)) || (st = gdn__arg_int(ctx, k, 3, (int32_t)nb)) ||
        (st = gdn__arg_int(ctx, k, 4, accumulate ? 1 : 0)))
        return st;
    return gdn__lin_launch(ctx, k, &p);
}

/* Plan of the column sums: R rows per chunk so that there are at most
 * ~256 chunks (enough groups for a large GPU at out >= 256) and at least 64
 * rows per chunk (each partial is worth its write). */
struct colsum_plan {
    struct gdn_lin_plan part, fin;
    int32_t             R, C;
};

static void colsum_plan_default(size_t M, size_t N, struct colsum_plan *p)
{
    size_t R = div_up(M, 256);
    if (R < 64)
        R = 64;
    p->R           = (int32_t)R;
    p->C           = (int32_t)div_up(M, R);
    p->part.wg     = 256;
    p->fin.wg      = 256;
    p->part.groups = 0;
    p->fin.groups  = 0;
    p->part.lmem_per_wi = 0;
    p->fin.lmem_per_wi  = 0;
    (void)N;
}

gdn_status gdn__linear_bwd_db(gdn_context *ctx, const struct gdn_linear_shape *s, cl_mem dy,
                              cl_mem db, bool accumulate)
{
    const size_t       M = (size_t)s->M, N = (size_t)(s->G * s->out);
    struct colsum_plan p;
    cl_kernel          kp, kf;
    cl_mem             part = NULL;
    gdn_status         st;
    size_t             nb;

    if (N == 0)
        return GDN_STATUS_OK;
    if (M == 0)
        return accumulate ? GDN_STATUS_OK : gdn__fill_f32(ctx, db, N, 0.0f);
    if (M > (size_t)INT32_MAX || N > (size_t)INT32_MAX)
        return gdn__fail(ctx, GDN_STATUS_UNSUPPORTED, "linear db: %zu x %zu is too large", M, N);
    colsum_plan_default(M, N, &p);
    if ((st = gdn__lin_kernel(ctx, LINEAR_CL, "linear_colsum_partial", NULL, 0, &p.part, 1, &kp)) ||
        (st = gdn__lin_kernel(ctx, LINEAR_CL, "linear_colsum_final", NULL, 0, &p.fin, 1, &kf)))
        return st;
    if ((st = gdn__buffer_create(ctx, (size_t)p.C * N * sizeof(float), &part)))
        return st;
    nb           = div_up(N, (size_t)p.part.wg);
    p.part.groups = (size_t)p.C * nb;
    p.fin.groups  = div_up(N, (size_t)p.fin.wg);
    if (!(st = gdn__arg_mem(ctx, kp, 0, dy)) && !(st = gdn__arg_mem(ctx, kp, 1, part)) &&
        !(st = gdn__arg_int(ctx, kp, 2, (int32_t)M)) &&
        !(st = gdn__arg_int(ctx, kp, 3, (int32_t)N)) && !(st = gdn__arg_int(ctx, kp, 4, p.R)) &&
        !(st = gdn__arg_int(ctx, kp, 5, (int32_t)nb)) && !(st = gdn__lin_launch(ctx, kp, &p.part)) &&
        !(st = gdn__arg_mem(ctx, kf, 0, part)) && !(st = gdn__arg_mem(ctx, kf, 1, db)) &&
        !(st = gdn__arg_int(ctx, kf, 2, (int32_t)N)) && !(st = gdn__arg_int(ctx, kf, 3, p.C)) &&
        !(st = gdn__arg_int(ctx, kf, 4, accumulate ? 1 : 0)))
        st = gdn__lin_launch(ctx, kf, &p.fin);
    gdn__buffer_release(part); /* released after the enqueued kernels finish */
    return st;
}

/* ------------------------------------------------------------ GEMMs */

gdn_status gdn__linear_fwd(gdn_context *ctx, const struct gdn_linear_shape *s, cl_mem x, cl_mem w,
                           cl_mem b, cl_mem y, bool accumulate)
{
    const size_t M = (size_t)s->M, G = (size_t)s->G, in = (size_t)s->in, out = (size_t)s->out;
    float        beta = accumulate ? 1.0f : 0.0f;
    gdn_status   st;

    if (M == 0 || out == 0)
        return GDN_STATUS_OK;
    if (b) {
        if ((st = bias_fwd(ctx, b, y, M, G * out, accumulate)))
            return st;
        beta = 1.0f;
    }
    return gdn__gemm_strided_batched(ctx, false, true, M, out, in, 1.0f, x, 0, G * in, in, w, 0,
                                     in, out * in, beta, y, 0, G * out, out, G);
}

gdn_status gdn__linear_bwd_dx(gdn_context *ctx, const struct gdn_linear_shape *s, cl_mem dy,
                              cl_mem w, cl_mem dx, bool accumulate)
{
    const size_t M = (size_t)s->M, G = (size_t)s->G, in = (size_t)s->in, out = (size_t)s->out;
    return gdn__gemm_strided_batched(ctx, false, false, M, in, out, 1.0f, dy, 0, G * out, out, w,
                                     0, in, out * in, accumulate ? 1.0f : 0.0f, dx, 0, G * in, in,
                                     G);
}

gdn_status gdn__linear_bwd_dw(gdn_context *ctx, const struct gdn_linear_shape *s, cl_mem dy,
                              cl_mem x, cl_mem dw, bool accumulate)
{
    const size_t M = (size_t)s->M, G = (size_t)s->G, in = (size_t)s->in, out = (size_t)s->out;
    return gdn__gemm_strided_batched(ctx, true, false, out, in, M, 1.0f, dy, 0, G * out, out, x,
                                     0, G * in, in, accumulate ? 1.0f : 0.0f, dw, 0, in, out * in,
                                     G);
}

/* ------------------------------------------------------------ public API */

void gdn_linear_params_init(gdn_linear_params *params)
{
    if (params)
        memset(params, 0, sizeof(*params));
}

#define LINEAR_FLAGS                                                                               \
    (GDN_LINEAR_ACCUMULATE_Y | GDN_LINEAR_ACCUMULATE_DX | GDN_LINEAR_ACCUMULATE_DW)

static gdn_status check_params(gdn_context *ctx, const char *fn, const gdn_linear_params *params)
{
    if (!params)
        return GDN_STATUS_OK;
    if (!gdn__lin_zero(params->reserved, GDN_ARRAY_SIZE(params->reserved)))
        return gdn__fail(ctx, GDN_STATUS_INVALID_ARGUMENT,
                         "%s: params.reserved must be zero (use gdn_linear_params_init)", fn);
    if (params->flags & ~(uint32_t)LINEAR_FLAGS)
        return gdn__fail(ctx, GDN_STATUS_INVALID_ARGUMENT, "%s: unknown flags 0x%x", fn,
                         (unsigned)params->flags);
    return GDN_STATUS_OK;
}

/* Shapes from args (w, x; b checked when set), into *s. */
static gdn_status linear_shape(gdn_context *ctx, const char *fn, const gdn_linear_args *args,
                               bool need_x, struct gdn_linear_shape *s)
{
    const gdn_tensor *w = args->w;
    int64_t           want[2];
    gdn_status        st;

    if (!gdn__lin_zero(args->reserved, GDN_ARRAY_SIZE(args->reserved)))
        return gdn__fail(ctx, GDN_STATUS_INVALID_ARGUMENT, "%s: args.reserved must be zero", fn);
    if (!w)
        return gdn__fail(ctx, GDN_STATUS_INVALID_ARGUMENT, "%s: args.w is NULL", fn);
    if (w->ctx != ctx)
        return gdn__fail(ctx, GDN_STATUS_INVALID_ARGUMENT, "%s: w belongs to another context",
                         fn);
    if (w->dtype != GDN_DTYPE_F32 || (w->ndim != 2 && w->ndim != 3))
        return gdn__fail(ctx, GDN_STATUS_SHAPE_MISMATCH,
                         "%s: w must be F32 [out, in] or [G, out, in] (has %d dimensions)", fn,
                         (int)w->ndim);
    s->G   = w->ndim == 3 ? w->shape[0] : 1;
    s->out = w->shape[w->ndim - 2];
    s->in  = w->shape[w->ndim - 1];
    s->M   = 0;
    if (s->G == 0)
        return gdn__fail(ctx, GDN_STATUS_SHAPE_MISMATCH, "%s: w has G = 0 groups", fn);
    if (need_x || args->x) {
        want[0] = s->G, want[1] = s->in;
        if (w->ndim == 3)
            st = gdn__lin_rows(ctx, args->x, "x", GDN_DTYPE_F32, 2, want, &s->M);
        else
            st = gdn__lin_rows(ctx, args->x, "x", GDN_DTYPE_F32, 1, want + 1, &s->M);
        if (st)
            return st;
    }
    if (args->b) {
        const int64_t bs[2] = {s->G, s->out};
        if (w->ndim == 3)
            st = gdn__check_tensor(ctx, args->b, "b", GDN_DTYPE_F32, 2, bs);
        else
            st = gdn__check_tensor(ctx, args->b, "b", GDN_DTYPE_F32, 1, bs + 1);
        if (st)
            return st;
    }
    if (s->G * s->in > INT32_MAX || s->G * s->out > INT32_MAX)
        return gdn__fail(ctx, GDN_STATUS_UNSUPPORTED, "%s: rows of %lld or %lld floats are too long",
                         fn, (long long)(s->G * s->in), (long long)(s->G * s->out));
    return GDN_STATUS_OK;
}

/* An activation like x with the last dim (or last two, grouped) replaced. */
static gdn_status check_like(gdn_context *ctx, const gdn_tensor *t, const char *name,
                             const gdn_tensor *x, int64_t G, bool grouped, int64_t last)
{
    int64_t shape[GDN_MAX_DIMS];
    int32_t i;
    for (i = 0; i < x->ndim; i++)
        shape[i] = x->shape[i];
    shape[x->ndim - 1] = last;
    if (grouped)
        shape[x->ndim - 2] = G;
    return gdn__check_tensor(ctx, t, name, GDN_DTYPE_F32, x->ndim, shape);
}

gdn_status gdn_linear_forward(gdn_context *ctx, const gdn_linear_params *params,
                              const gdn_linear_args *args, gdn_tensor *y)
{
    struct gdn_linear_shape s;
    gdn_status              st;

    if (!ctx)
        return GDN_STATUS_INVALID_ARGUMENT;
    if (!args)
        return gdn__fail(ctx, GDN_STATUS_INVALID_ARGUMENT, "gdn_linear_forward: args is NULL");
    if ((st = check_params(ctx, "gdn_linear_forward", params)) ||
        (st = linear_shape(ctx, "gdn_linear_forward", args, true, &s)) ||
        (st = check_like(ctx, y, "y", args->x, s.G, args->w->ndim == 3, s.out)))
        return st;
    return gdn__linear_fwd(ctx, &s, args->x->mem, args->w->mem, args->b ? args->b->mem : NULL,
                           y->mem, params && (params->flags & GDN_LINEAR_ACCUMULATE_Y));
}

gdn_status gdn_linear_backward(gdn_context *ctx, const gdn_linear_params *params,
                               const gdn_linear_args *args, const gdn_tensor *dy,
                               const gdn_linear_grads *grads)
{
    static const char      *fn = "gdn_linear_backward";
    struct gdn_linear_shape s;
    const uint32_t          flags = params ? params->flags : 0;
    const gdn_tensor       *shape_src;
    bool                    grouped;
    gdn_status              st;

    if (!ctx)
        return GDN_STATUS_INVALID_ARGUMENT;
    if (!args || !grads || !dy)
        return gdn__fail(ctx, GDN_STATUS_INVALID_ARGUMENT, "%s: args, dy and grads are required",
                         fn);
    if (!gdn__lin_null(grads->reserved, GDN_ARRAY_SIZE(grads->reserved)))
        return gdn__fail(ctx, GDN_STATUS_INVALID_ARGUMENT, "%s: grads.reserved must be NULL", fn);
    if ((st = check_params(ctx, fn, params)) ||
        (st = linear_shape(ctx, fn, args, grads->dw != NULL, &s)))
        return st;
    grouped = args->w->ndim == 3;
    /* dy's rows fix M when x is not given. */
    {
        int64_t want[2] = {s.G, s.out}, M;
        st = grouped ? gdn__lin_rows(ctx, dy, "dy", GDN_DTYPE_F32, 2, want, &M)
                     : gdn__lin_rows(ctx, dy, "dy", GDN_DTYPE_F32, 1, want + 1, &M);
        if (st)
            return st;
        if (args->x) {
            if ((st = check_like(ctx, dy, "dy", args->x, s.G, grouped, s.out)))
                return st;
        } else {
            s.M = M;
        }
    }
    shape_src = args->x ? args->x : dy;
    if (grads->dx && (st = check_like(ctx, grads->dx, "dx", shape_src, s.G, grouped, s.in)))
        return st;
    if (grads->dw && (st = gdn__check_tensor(ctx, grads->dw, "dw", GDN_DTYPE_F32, args->w->ndim,
                                             args->w->shape)))
        return st;
    if (grads->db) {
        const int64_t bs[2] = {s.G, s.out};
        st = grouped ? gdn__check_tensor(ctx, grads->db, "db", GDN_DTYPE_F32, 2, bs)
                     : gdn__check_tensor(ctx, grads->db, "db", GDN_DTYPE_F32, 1, bs + 1);
        if (st)
            return st;
    }
    if (grads->dx && (st = gdn__linear_bwd_dx(ctx, &s, dy->mem, args->w->mem, grads->dx->mem,
                                              flags & GDN_LINEAR_ACCUMULATE_DX)))
        return st;
    if (grads->dw && (st = gdn__linear_bwd_dw(ctx, &s, dy->mem, args->x->mem, grads->dw->mem,
                                              flags & GDN_LINEAR_ACCUMULATE_DW)))
        return st;
    if (grads->db && (st = gdn__linear_bwd_db(ctx, &s, dy->mem, grads->db->mem,
                                              flags & GDN_LINEAR_ACCUMULATE_DW)))
        return st;
    return GDN_STATUS_OK;
}
