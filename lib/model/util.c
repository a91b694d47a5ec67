/*
 * util.c - plumbing of the model passes: the arena of per-pass tensors,
 * reshaped views, tensor copies, column slices (cl/model/slice.cl) and the
 * sequence table of a batch.
 */
#include "model.h"

#include <stdio.h>
#include <string.h>

#include "tune/tune.h"

static gdn_status arena_grow(struct gdn__arena *a)
{
    if (a->n == a->cap) {
        size_t       cap = a->cap ? 2 * a->cap : 64;
        gdn_tensor **t   = gdn__realloc(a->t, cap * sizeof(*t));
        cl_mem      *mm  = gdn__realloc(a->mem, cap * sizeof(*mm));
        if (t)
            a->t = t;
        if (mm)
            a->mem = mm;
        if (!t || !mm)
            return gdn__fail(a->ctx, GDN_STATUS_OUT_OF_HOST_MEMORY, "model: out of host memory");
        a->cap = cap;
    }
    return GDN_STATUS_OK;
}

/* Tensors of a pass come from the context's scratch pool (a decode step
 * would otherwise create and release a few hundred buffers per token). */
gdn_status gdn__arena_new(struct gdn__arena *a, int32_t ndim, const int64_t *shape,
                          gdn_dtype dtype, gdn_tensor **out)
{
    gdn_status st;
    cl_mem     mem   = NULL;
    int64_t    numel = 1;
    size_t     bytes;
    *out = NULL;
    for (int32_t i = 0; i < ndim; i++)
        numel *= shape[i];
    if ((st = arena_grow(a)))
        return st;
    if (!gdn__mul_size((size_t)numel, gdn_dtype_size(dtype), &bytes))
        return gdn__fail(a->ctx, GDN_STATUS_OUT_OF_DEVICE_MEMORY, "model: tensor size overflows");
    if ((st = gdn__scratch_acquire(a->ctx, bytes, &mem)))
        return st;
    st = gdn_tensor_wrap_cl_mem(a->ctx, mem, 0, dtype, ndim, shape, out);
    if (st) {
        gdn__scratch_release(a->ctx, mem);
        return st;
    }
    a->t[a->n]   = *out;
    a->mem[a->n] = mem;
    a->n++;
    return GDN_STATUS_OK;
}

gdn_status gdn__arena_view(struct gdn__arena *a, const gdn_tensor *src, int32_t ndim,
                           const int64_t *shape, gdn_tensor **out)
{
    gdn_status st;
    int64_t    numel = 1;
    *out             = NULL;
    for (int32_t i = 0; i < ndim; i++)
        numel *= shape[i];
    if (numel != src->numel)
        return gdn__fail(a->ctx, GDN_STATUS_INTERNAL, "model: view of %lld elements over %lld",
                         (long long)numel, (long long)src->numel);
    if ((st = arena_grow(a)))
        return st;
    st = gdn_tensor_wrap_cl_mem(a->ctx, src->mem, 0, src->dtype, ndim, shape, out);
    if (!st) {
        a->t[a->n]   = *out;
        a->mem[a->n] = NULL;
        a->n++;
    }
    return st;
}

void gdn__arena_free(struct gdn__arena *a)
{
    for (size_t i = 0; i < a->n; i++) {
        gdn_tensor_destroy(a->t[i]);
        if (a->mem[i])
            gdn__scratch_release(a->ctx, a->mem[i]);
    }
    gdn__free(a->t);
    gdn__free(a->mem);
    a->t   = NULL;
    a->mem = NULL;
    a->n   = 0;
    a->cap = 0;
}

gdn_status gdn__copy_tensor(gdn_context *ctx, const gdn_tensor *src, gdn_tensor *dst)
{
    cl_int err;
    if (src->nbytes != dst->nbytes)
        return gdn__fail(ctx, GDN_STATUS_INTERNAL, "model: copy of %zu bytes into %zu",
                         src->nbytes, dst->nbytes);
    if (!src->nbytes)
        return GDN_STATUS_OK;
    err = clEnqueueCopyBuffer(ctx->queue, src->mem, dst->mem, 0, 0, src->nbytes, 0, NULL, NULL);
    return err == CL_SUCCESS ? GDN_STATUS_OK : gdn__fail_cl(ctx, err, "model: clEnqueueCopyBuffer");
}

/* ------------------------------------------------------ column slices
 *
 * slice_cols runs a 2-D range (cols, rows) in work-groups of LX x LY
 * work-items. Tuning space "model/slice" (lib/tune/tune.h): LX, LY; bucket
 * "C2^a.N2^b": cols at most 2^a (a = 0, 2, 4, ..., 12) and rows * cols at
 * most 2^b (b = 12, 16, 20, ...). valid(): LX * LY within the device's and
 * the kernel's work-group limits and at most 65535 groups in dimension 1
 * (NVIDIA's limit). defaults(): the old plan, 32 x 4, or 32 x 1 (1 x 1)
 * where the device allows fewer than 128 (32) work-items, shrunk further
 * only where the kernel's own limit would refuse it. A copy: any plan gives
 * the same bits. */
struct slice_tune_problem {
    int64_t rows, cols;
    size_t  kwg; /* CL_KERNEL_WORK_GROUP_SIZE of slice_cols */
};

static size_t slice_max_wg(const struct slice_tune_problem *pr, const struct gdn_device *dev)
{
    return pr->kwg && pr->kwg < dev->info.max_work_group_size ? pr->kwg
                                                              : dev->info.max_work_group_size;
}

static bool slice_valid(const int32_t *v, const void *problem, const struct gdn_device *dev)
{
    const struct slice_tune_problem *pr = problem;
    return (size_t)v[0] * (size_t)v[1] <= slice_max_wg(pr, dev) &&
           (pr->rows + v[1] - 1) / v[1] <= 65535;
}

static void slice_defaults(int32_t *v, const void *problem, const struct gdn_device *dev)
{
    const size_t max_wg = slice_max_wg(problem, dev);
    v[0] = 32, v[1] = 4;
    if (dev->info.max_work_group_size < 128) {
        v[0] = dev->info.max_work_group_size >= 32 ? 32 : 1;
        v[1] = 1;
    }
    while ((size_t)v[0] * (size_t)v[1] > max_wg && (v[0] > 1 || v[1] > 1)) {
        if (v[1] > 1)
            v[1] /= 2;
        else
            v[0] /= 2;
    }
}

static const struct gdn_tune_param slice_params[] = {
    {"LX", 32, 9, {1, 2, 4, 8, 16, 32, 64, 128, 256}},
    {"LY", 4, 5, {1, 2, 4, 8, 16}},
};

extern const struct gdn_tune_space gdn__model_slice_space;
const struct gdn_tune_space        gdn__model_slice_space = {
    "model/slice", (int32_t)GDN_ARRAY_SIZE(slice_params), slice_params, slice_valid,
    slice_defaults};

static gdn_status slice_plan(gdn_context *ctx, cl_kernel k, int64_t rows, int64_t cols,
                             size_t local[2])
{
    struct slice_tune_problem pr;
    int32_t                   v[GDN_TUNE_MAX_PARAMS];
    char                      bucket[32];
    int                       a = 0, b = 12;
    size_t                    kwg = 0;
    cl_int err = clGetKernelWorkGroupInfo(k, ctx->dev.id, CL_KERNEL_WORK_GROUP_SIZE, sizeof(kwg),
                                          &kwg, NULL);
    if (err != CL_SUCCESS)
        return gdn__fail_cl(ctx, err, "model: slice_cols CL_KERNEL_WORK_GROUP_SIZE");
    pr.rows = rows, pr.cols = cols, pr.kwg = kwg;
    while (a < 12 && ((int64_t)1 << a) < cols)
        a += 2;
    while (b < 60 && ((int64_t)1 << b) < rows * cols)
        b += 4;
    snprintf(bucket, sizeof(bucket), "C2^%d.N2^%d", a, b);
    gdn__tune_lookup(ctx, &gdn__model_slice_space, bucket, &pr, v, NULL);
    local[0] = (size_t)v[0];
    local[1] = (size_t)v[1];
    return GDN_STATUS_OK;
}

gdn_status gdn__slice_cols(gdn_context *ctx, const gdn_tensor *src, int64_t src_ld,
                           int64_t src_col, gdn_tensor *dst, int64_t dst_ld, int64_t dst_col,
                           int64_t rows, int64_t cols, bool accumulate)
{
    cl_kernel  k;
    gdn_status st;
    cl_long    l[4] = {src_ld, src_col, dst_ld, dst_col};
    size_t     local[2], global[2];
    cl_int     err = CL_SUCCESS;
    if (rows <= 0 || cols <= 0)
        return GDN_STATUS_OK;
    if (rows > INT32_MAX || cols > INT32_MAX || src_col + cols > src_ld ||
        dst_col + cols > dst_ld || rows * src_ld > src->numel || rows * dst_ld > dst->numel)
        return gdn__fail(ctx, GDN_STATUS_INTERNAL, "model: slice out of range");
    if ((st = gdn__kernel_get(ctx, "model/slice.cl", "", "slice_cols", &k)) ||
        (st = slice_plan(ctx, k, rows, cols, local)))
        return st;
    global[0] = (size_t)(cols + (int64_t)local[0] - 1) / local[0] * local[0];
    global[1] = (size_t)(rows + (int64_t)local[1] - 1) / local[1] * local[1];
    if ((st = gdn__arg_mem(ctx, k, 0, src->mem)))
        return st;
    err |= clSetKernelArg(k, 1, sizeof(cl_long), &l[0]);
    err |= clSetKernelArg(k, 2, sizeof(cl_long), &l[1]);
    if ((st = gdn__arg_mem(ctx, k, 3, dst->mem)))
        return st;
    err |= clSetKernelArg(k, 4, sizeof(cl_long), &l[2]);
    err |= clSetKernelArg(k, 5, sizeof(cl_long), &l[3]);
    if (err != CL_SUCCESS)
        return gdn__fail_cl(ctx, err, "model: slice_cols arguments");
    if ((st = gdn__arg_int(ctx, k, 6, (int32_t)rows)) ||
        (st = gdn__arg_int(ctx, k, 7, (int32_t)cols)) ||
        (st = gdn__arg_int(ctx, k, 8, accumulate ? 1 : 0)))
        return st;
    return gdn__launch(ctx, k, 2, global, local, NULL);
}

gdn_status gdn__batch_seqs(gdn_context *ctx, const char *fn, const gdn_model_batch *b,
                           struct gdn__seqs *s)
{
    const gdn_tensor *ids = b->ids;
    memset(s, 0, sizeof(*s));
    for (size_t i = 0; i < sizeof(b->reserved) / sizeof(b->reserved[0]); i++)
        if (b->reserved[i])
            return gdn__fail(ctx, GDN_STATUS_INVALID_ARGUMENT, "%s: batch reserved[%zu] != 0", fn,
                             i);
    if (!ids)
        return gdn__fail(ctx, GDN_STATUS_INVALID_ARGUMENT, "%s: batch ids is NULL", fn);
    if (ids->ctx != ctx)
        return gdn__fail(ctx, GDN_STATUS_INVALID_ARGUMENT, "%s: ids belong to another context",
                         fn);
    if (ids->dtype != GDN_DTYPE_I32 || ids->ndim < 1 || ids->ndim > 2)
        return gdn__fail(ctx, GDN_STATUS_SHAPE_MISMATCH, "%s: ids must be I32 [T] or [B, T_b]",
                         fn);
    if (ids->numel > INT32_MAX)
        return gdn__fail(ctx, GDN_STATUS_UNSUPPORTED, "%s: more than 2^31 - 1 tokens", fn);
    s->T = ids->numel;
    if (ids->ndim == 2) {
        if (b->seq_offsets || b->n_seqs)
            return gdn__fail(ctx, GDN_STATUS_INVALID_ARGUMENT,
                             "%s: seq_offsets must be NULL with ids [B, T_b]", fn);
        if (ids->shape[0] > INT32_MAX - 1)
            return gdn__fail(ctx, GDN_STATUS_UNSUPPORTED, "%s: too many sequences", fn);
        s->n   = (int32_t)ids->shape[0];
        s->off = gdn__malloc(((size_t)s->n + 1) * sizeof(int32_t));
        if (!s->off)
            return gdn__fail(ctx, GDN_STATUS_OUT_OF_HOST_MEMORY, "%s: out of memory", fn);
        for (int32_t i = 0; i <= s->n; i++)
            s->off[i] = (int32_t)(i * ids->shape[1]);
        return GDN_STATUS_OK;
    }
    if (!b->seq_offsets) {
        if (b->n_seqs)
            return gdn__fail(ctx, GDN_STATUS_INVALID_ARGUMENT,
                             "%s: n_seqs = %d without seq_offsets", fn, b->n_seqs);
        s->n   = 1;
        s->off = gdn__malloc(2 * sizeof(int32_t));
        if (!s->off)
            return gdn__fail(ctx, GDN_STATUS_OUT_OF_HOST_MEMORY, "%s: out of memory", fn);
        s->off[0] = 0;
        s->off[1] = (int32_t)s->T;
        return GDN_STATUS_OK;
    }
    if (b->n_seqs < 1 || b->n_seqs > INT32_MAX - 1)
        return gdn__fail(ctx, GDN_STATUS_INVALID_ARGUMENT, "%s: n_seqs = %d must be >= 1", fn,
                         b->n_seqs);
    if (b->seq_offsets[0] != 0 || b->seq_offsets[b->n_seqs] != s->T)
        return gdn__fail(ctx, GDN_STATUS_INVALID_ARGUMENT,
                         "%s: seq_offsets must start at 0 and end at T = %lld", fn,
                         (long long)s->T);
    for (int32_t i = 0; i < b->n_seqs; i++)
        if (b->seq_offsets[i + 1] < b->seq_offsets[i])
            return gdn__fail(ctx, GDN_STATUS_INVALID_ARGUMENT,
                             "%s: seq_offsets decrease at entry %d", fn, i + 1);
    s->n   = b->n_seqs;
    s->off = gdn__malloc(((size_t)s->n + 1) * sizeof(int32_t));
    if (!s->off)
        return gdn__fail(ctx, GDN_STATUS_OUT_OF_HOST_MEMORY, "%s: out of memory", fn);
    memcpy(s->off, b->seq_offsets, ((size_t)s->n + 1) * sizeof(int32_t));
    return GDN_STATUS_OK;
}
