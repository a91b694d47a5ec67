/*
 * tensor.c - gdn_tensor: a dense row-major device buffer with dtype and
 * shape; creation (checked sizes), wrapping of application buffers, blocking
 * host copies with range checks, fill, and the argument check every op uses.
 */
#include <string.h>

#include "runtime.h"

/* Validate dtype/ndim/shape and compute numel and bytes without overflow. */
static gdn_status shape_bytes(gdn_context *ctx, const char *fn, gdn_dtype dtype, int32_t ndim,
                              const int64_t *shape, int64_t *numel, size_t *nbytes)
{
    size_t  elems = 1, bytes;
    int32_t i;

    if (gdn_dtype_size(dtype) == 0)
        return gdn__fail(ctx, GDN_STATUS_INVALID_ARGUMENT, "%s: unknown dtype %d", fn, (int)dtype);
    if (ndim < 1 || ndim > GDN_MAX_DIMS)
        return gdn__fail(ctx, GDN_STATUS_INVALID_ARGUMENT, "%s: ndim %d not in [1, %d]", fn,
                         (int)ndim, GDN_MAX_DIMS);
    if (!shape)
        return gdn__fail(ctx, GDN_STATUS_INVALID_ARGUMENT, "%s: shape is NULL", fn);
    for (i = 0; i < ndim; i++) {
        if (shape[i] < 0)
            return gdn__fail(ctx, GDN_STATUS_INVALID_ARGUMENT, "%s: shape[%d] = %lld is negative",
                             fn, (int)i, (long long)shape[i]);
        if ((uint64_t)shape[i] > SIZE_MAX || !gdn__mul_size(elems, (size_t)shape[i], &elems))
            return gdn__fail(ctx, GDN_STATUS_OUT_OF_DEVICE_MEMORY,
                             "%s: the element count overflows size_t", fn);
    }
    if (!gdn__mul_size(elems, gdn_dtype_size(dtype), &bytes) || elems > (size_t)INT64_MAX)
        return gdn__fail(ctx, GDN_STATUS_OUT_OF_DEVICE_MEMORY, "%s: the byte size overflows size_t",
                         fn);
    *numel  = (int64_t)elems;
    *nbytes = bytes;
    return GDN_STATUS_OK;
}

static gdn_tensor *tensor_new(gdn_context *ctx, gdn_dtype dtype, int32_t ndim,
                              const int64_t *shape, int64_t numel, size_t nbytes)
{
    gdn_tensor *t = gdn__calloc(1, sizeof(*t));
    if (!t)
        return NULL;
    t->ctx    = ctx;
    t->dtype  = dtype;
    t->ndim   = ndim;
    t->numel  = numel;
    t->nbytes = nbytes;
    memcpy(t->shape, shape, (size_t)ndim * sizeof(*shape));
    return t;
}

gdn_status gdn__buffer_create(gdn_context *ctx, size_t nbytes, cl_mem *out)
{
    cl_int err;
    *out = NULL;
    if (nbytes > ctx->dev.info.max_alloc_bytes && ctx->dev.info.max_alloc_bytes)
        return gdn__fail(ctx, GDN_STATUS_OUT_OF_DEVICE_MEMORY,
                         "buffer of %zu bytes exceeds the device's largest allocation (%llu)",
                         nbytes, (unsigned long long)ctx->dev.info.max_alloc_bytes);
    /* Zero-sized buffers are invalid in OpenCL: keep a minimal one. */
    *out = clCreateBuffer(ctx->cl_ctx, CL_MEM_READ_WRITE, nbytes ? nbytes : 16, NULL, &err);
    if (err != CL_SUCCESS) {
        *out = NULL;
        return gdn__fail_cl(ctx, err, "clCreateBuffer");
    }
    return GDN_STATUS_OK;
}

void gdn__buffer_release(cl_mem mem)
{
    if (mem)
        clReleaseMemObject(mem);
}

gdn_status gdn_tensor_create(gdn_context *ctx, gdn_dtype dtype, int32_t ndim,
                             const int64_t *shape, gdn_tensor **out)
{
    int64_t     numel;
    size_t      nbytes;
    gdn_tensor *t;
    gdn_status  st;

    if (!out)
        return ctx ? gdn__fail(ctx, GDN_STATUS_INVALID_ARGUMENT, "gdn_tensor_create: out is NULL")
                   : GDN_STATUS_INVALID_ARGUMENT;
    *out = NULL;
    if (!ctx)
        return GDN_STATUS_INVALID_ARGUMENT;
    st = shape_bytes(ctx, "gdn_tensor_create", dtype, ndim, shape, &numel, &nbytes);
    if (st)
        return st;
    t = tensor_new(ctx, dtype, ndim, shape, numel, nbytes);
    if (!t)
        return gdn__fail(ctx, GDN_STATUS_OUT_OF_HOST_MEMORY, "gdn_tensor_create: out of memory");
    st = gdn__buffer_create(ctx, nbytes, &t->mem);
    if (st) {
        gdn__free(t);
        return st;
    }
    gdn__context_ref(ctx);
    *out = t;
    return GDN_STATUS_OK;
}

gdn_status gdn_tensor_wrap_cl_mem(gdn_context *ctx, cl_mem mem, size_t offset, gdn_dtype dtype,
                                  int32_t ndim, const int64_t *shape, gdn_tensor **out)
{
    int64_t     numel;
    size_t      nbytes, mem_size = 0, end;
    cl_context  mem_ctx = NULL;
    gdn_tensor *t;
    gdn_status  st;
    cl_int      err;

    if (!out)
        return ctx ? gdn__fail(ctx, GDN_STATUS_INVALID_ARGUMENT, "gdn_tensor_wrap_cl_mem: out is NULL")
                   : GDN_STATUS_INVALID_ARGUMENT;
    *out = NULL;
    if (!ctx)
        return GDN_STATUS_INVALID_ARGUMENT;
    if (!mem)
        return gdn__fail(ctx, GDN_STATUS_INVALID_ARGUMENT, "gdn_tensor_wrap_cl_mem: mem is NULL");
    st = shape_bytes(ctx, "gdn_tensor_wrap_cl_mem", dtype, ndim, shape, &numel, &nbytes);
    if (st)
        return st;
    if (clGetMemObjectInfo(mem, CL_MEM_SIZE, sizeof(mem_size), &mem_size, NULL) != CL_SUCCESS ||
        clGetMemObjectInfo(mem, CL_MEM_CONTEXT, sizeof(mem_ctx), &mem_ctx, NULL) != CL_SUCCESS)
        return gdn__fail(ctx, GDN_STATUS_INVALID_ARGUMENT,
                         "gdn_tensor_wrap_cl_mem: mem is not a valid buffer");
    if (mem_ctx != ctx->cl_ctx)
        return gdn__fail(ctx, GDN_STATUS_INVALID_ARGUMENT,
                         "gdn_tensor_wrap_cl_mem: mem belongs to another OpenCL context");
    if (!gdn__add_size(offset, nbytes, &end) || end > mem_size)
        return gdn__fail(ctx, GDN_STATUS_INVALID_ARGUMENT,
                         "gdn_tensor_wrap_cl_mem: bytes [%zu, %zu + %zu) are outside the %zu-byte "
                         "buffer",
                         offset, offset, nbytes, mem_size);
    if (offset % ctx->dev.mem_base_align_bytes)
        return gdn__fail(ctx, GDN_STATUS_INVALID_ARGUMENT,
                         "gdn_tensor_wrap_cl_mem: offset %zu is not a multiple of the device's "
                         "base address alignment (%u bytes)",
                         offset, ctx->dev.mem_base_align_bytes);
    t = tensor_new(ctx, dtype, ndim, shape, numel, nbytes);
    if (!t)
        return gdn__fail(ctx, GDN_STATUS_OUT_OF_HOST_MEMORY, "gdn_tensor_wrap_cl_mem: out of memory");
    t->wrapped = true;
    if (offset == 0) {
        clRetainMemObject(mem);
        t->mem = mem;
    } else {
        cl_buffer_region region = {offset, nbytes ? nbytes : 1};
        t->mem = clCreateSubBuffer(mem, 0, CL_BUFFER_CREATE_TYPE_REGION, &region, &err);
        if (err != CL_SUCCESS) {
            gdn__free(t);
            return gdn__fail_cl(ctx, err, "gdn_tensor_wrap_cl_mem: clCreateSubBuffer");
        }
    }
    gdn__context_ref(ctx);
    *out = t;
    return GDN_STATUS_OK;
}

void gdn_tensor_destroy(gdn_tensor *t)
{
    gdn_context *ctx;
    if (!t)
        return;
    ctx = t->ctx;
    gdn__buffer_release(t->mem);
    gdn__free(t);
    gdn__context_unref(ctx);
}

static gdn_status check_range(const gdn_tensor *t, const void *p, size_t offset, size_t nbytes,
                              const char *fn)
{
    size_t end;
    if (!p && nbytes)
        return gdn__fail(t->ctx, GDN_STATUS_INVALID_ARGUMENT, "%s: host pointer is NULL", fn);
    if (!gdn__add_size(offset, nbytes, &end) || end > t->nbytes)
        return gdn__fail(t->ctx, GDN_STATUS_INVALID_ARGUMENT,
                         "%s: bytes [%zu, %zu + %zu) are outside the %zu-byte tensor", fn, offset,
                         offset, nbytes, t->nbytes);
    return GDN_STATUS_OK;
}

gdn_status gdn_tensor_write(gdn_tensor *t, const void *src, size_t offset, size_t nbytes)
{
    gdn_status st;
    cl_int     err;
    if (!t)
        return GDN_STATUS_INVALID_ARGUMENT;
    st = check_range(t, src, offset, nbytes, "gdn_tensor_write");
    if (st || nbytes == 0)
        return st;
    err = clEnqueueWriteBuffer(t->ctx->queue, t->mem, CL_TRUE, offset, nbytes, src, 0, NULL, NULL);
    return err == CL_SUCCESS ? GDN_STATUS_OK
                             : gdn__fail_cl(t->ctx, err, "gdn_tensor_write: clEnqueueWriteBuffer");
}

gdn_status gdn_tensor_read(const gdn_tensor *t, void *dst, size_t offset, size_t nbytes)
{
    gdn_status st;
    cl_int     err;
    if (!t)
        return GDN_STATUS_INVALID_ARGUMENT;
    st = check_range(t, dst, offset, nbytes, "gdn_tensor_read");
    if (st || nbytes == 0)
        return st;
    err = clEnqueueReadBuffer(t->ctx->queue, t->mem, CL_TRUE, offset, nbytes, dst, 0, NULL, NULL);
    return err == CL_SUCCESS ? GDN_STATUS_OK
                             : gdn__fail_cl(t->ctx, err, "gdn_tensor_read: clEnqueueReadBuffer");
}

gdn_status gdn_tensor_fill(gdn_tensor *t, float value)
{
    if (!t)
        return GDN_STATUS_INVALID_ARGUMENT;
    if (t->dtype != GDN_DTYPE_F32)
        return gdn__fail(t->ctx, GDN_STATUS_SHAPE_MISMATCH, "gdn_tensor_fill: tensor is not F32");
    return gdn__fill_f32(t->ctx, t->mem, (size_t)t->numel, value);
}

gdn_dtype gdn_tensor_dtype(const gdn_tensor *t)
{
    return t ? t->dtype : GDN_DTYPE_F32;
}

int32_t gdn_tensor_ndim(const gdn_tensor *t)
{
    return t ? t->ndim : 0;
}

int64_t gdn_tensor_dim(const gdn_tensor *t, int32_t axis)
{
    if (!t || axis < 0 || axis >= t->ndim)
        return 0;
    return t->shape[axis];
}

int64_t gdn_tensor_numel(const gdn_tensor *t)
{
    return t ? t->numel : 0;
}

size_t gdn_tensor_nbytes(const gdn_tensor *t)
{
    return t ? t->nbytes : 0;
}

gdn_context *gdn_tensor_context(const gdn_tensor *t)
{
    return t ? t->ctx : NULL;
}

cl_mem gdn_tensor_cl_mem(const gdn_tensor *t)
{
    return t ? t->mem : NULL;
}

static const char *dtype_name(gdn_dtype d)
{
    switch (d) {
    case GDN_DTYPE_F32:
        return "f32";
    case GDN_DTYPE_F16:
        return "f16";
    case GDN_DTYPE_BF16:
        return "bf16";
    case GDN_DTYPE_I32:
        return "i32";
    }
    return "?";
}

gdn_status gdn__check_tensor(gdn_context *ctx, const gdn_tensor *t, const char *name,
                             gdn_dtype dtype, int32_t ndim, const int64_t *shape)
{
    struct gdn_strbuf want = {0}, got = {0};
    int32_t           i;
    bool              ok;
    gdn_status        st;

    if (!t)
        return gdn__fail(ctx, GDN_STATUS_INVALID_ARGUMENT, "%s is NULL", name);
    if (t->ctx != ctx)
        return gdn__fail(ctx, GDN_STATUS_INVALID_ARGUMENT, "%s belongs to another context", name);
    ok = t->dtype == dtype && t->ndim == ndim;
    for (i = 0; ok && i < ndim; i++)
        ok = t->shape[i] == shape[i];
    if (ok)
        return GDN_STATUS_OK;
    for (i = 0; i < ndim; i++)
        gdn__strbuf_appendf(&want, "%s%lld", i ? ", " : "", (long long)shape[i]);
    for (i = 0; i < t->ndim; i++)
        gdn__strbuf_appendf(&got, "%s%lld", i ? ", " : "", (long long)t->shape[i]);
    st = gdn__fail(ctx, GDN_STATUS_SHAPE_MISMATCH, "%s: expected %s [%s], got %s [%s]", name,
                   dtype_name(dtype), want.data ? want.data : "", dtype_name(t->dtype),
                   got.data ? got.data : "");
    gdn__strbuf_free(&want);
    gdn__strbuf_free(&got);
    return st;
}

gdn_status gdn__iota(gdn_context *ctx, int32_t n, cl_mem *out)
{
    *out = NULL;
    if (n > ctx->iota_n) {
        int32_t  cap = n < 1024 ? 1024 : n, i;
        int32_t *h   = gdn__malloc((size_t)cap * sizeof(int32_t));
        cl_mem   m;
        cl_int   err;
        if (!h)
            return gdn__fail(ctx, GDN_STATUS_OUT_OF_HOST_MEMORY, "iota: out of memory");
        for (i = 0; i < cap; i++)
            h[i] = i;
        m = clCreateBuffer(ctx->cl_ctx, CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR,
                           (size_t)cap * sizeof(int32_t), h, &err);
        gdn__free(h);
        if (err != CL_SUCCESS)
            return gdn__fail_cl(ctx, err, "iota: clCreateBuffer");
        gdn__buffer_release(ctx->iota);
        ctx->iota   = m;
        ctx->iota_n = cap;
    }
    *out = ctx->iota;
    return GDN_STATUS_OK;
}

gdn_status gdn__int_table(gdn_context *ctx, const int32_t *src, size_t n, cl_mem *out)
{
    const size_t nt = GDN_INT_TABLES;
    size_t       i;
    int32_t     *h;
    cl_mem       m;
    cl_int       err;

    *out = NULL;
    if (n == 0) { /* an empty table: one element, never read */
        m = clCreateBuffer(ctx->cl_ctx, CL_MEM_READ_ONLY, sizeof(int32_t), NULL, &err);
        if (err != CL_SUCCESS)
            return gdn__fail_cl(ctx, err, "uploading an index table");
        *out = m;
        return GDN_STATUS_OK;
    }
    for (i = 0; i < nt && ctx->int_tables[i].mem; i++)
        if (ctx->int_tables[i].n == n &&
            memcmp(ctx->int_tables[i].host, src, n * sizeof(int32_t)) == 0) {
            clRetainMemObject(ctx->int_tables[i].mem);
            *out = ctx->int_tables[i].mem;
            return GDN_STATUS_OK;
        }
    m = clCreateBuffer(ctx->cl_ctx, CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR, n * sizeof(int32_t),
                       (void *)(uintptr_t)src, &err);
    if (err != CL_SUCCESS)
        return gdn__fail_cl(ctx, err, "uploading an index table");
    *out = m;
    if (n > GDN_INT_TABLE_MAX || !(h = gdn__malloc(n * sizeof(int32_t))))
        return GDN_STATUS_OK; /* not kept: uploaded again next time */
    memcpy(h, src, n * sizeof(int32_t));
    /* Keep it first; the oldest (last) falls out. */
    gdn__free(ctx->int_tables[nt - 1].host);
    gdn__buffer_release(ctx->int_tables[nt - 1].mem);
    memmove(&ctx->int_tables[1], &ctx->int_tables[0], (nt - 1) * sizeof(ctx->int_tables[0]));
    clRetainMemObject(m);
    ctx->int_tables[0].host = h;
    ctx->int_tables[0].n    = n;
    ctx->int_tables[0].mem  = m;
    return GDN_STATUS_OK;
}

void gdn__int_tables_clear(gdn_context *ctx)
{
    size_t i;
    for (i = 0; i < GDN_INT_TABLES; i++) {
        gdn__free(ctx->int_tables[i].host);
        gdn__buffer_release(ctx->int_tables[i].mem);
        ctx->int_tables[i].host = NULL;
        ctx->int_tables[i].n    = 0;
        ctx->int_tables[i].mem  = NULL;
    }
}

gdn_status gdn__scratch_acquire(gdn_context *ctx, size_t bytes, cl_mem *out)
{
    int32_t    i, best = -1;
    gdn_status st;

    *out = NULL;
    if (bytes == 0)
        bytes = 16;
    for (i = 0; i < ctx->n_scratch; i++) {
        size_t b = ctx->scratch[i].bytes;
        if (b >= bytes && b / 4 <= bytes && (best < 0 || b < ctx->scratch[best].bytes))
            best = i;
    }
    if (best >= 0) {
        *out = ctx->scratch[best].mem;
        ctx->scratch[best] = ctx->scratch[--ctx->n_scratch];
        return GDN_STATUS_OK;
    }
    st = gdn__buffer_create(ctx, bytes, out);
    if (st == GDN_STATUS_OUT_OF_DEVICE_MEMORY && ctx->n_scratch) {
        /* Give the pool back to the device and try once more. */
        gdn__scratch_trim(ctx);
        gdn__clear_error(ctx);
        st = gdn__buffer_create(ctx, bytes, out);
    }
    return st;
}

void gdn__scratch_release(gdn_context *ctx, cl_mem mem)
{
    size_t bytes = 0;
    if (!mem)
        return;
    if (ctx->n_scratch < (int32_t)GDN_ARRAY_SIZE(ctx->scratch) &&
        clGetMemObjectInfo(mem, CL_MEM_SIZE, sizeof(bytes), &bytes, NULL) == CL_SUCCESS) {
        ctx->scratch[ctx->n_scratch].mem   = mem;
        ctx->scratch[ctx->n_scratch].bytes = bytes;
        ctx->n_scratch++;
        return;
    }
    gdn__buffer_release(mem);
}

void gdn__scratch_trim(gdn_context *ctx)
{
    while (ctx->n_scratch > 0)
        gdn__buffer_release(ctx->scratch[--ctx->n_scratch].mem);
}

gdn_status gdn__seq_offsets(gdn_context *ctx, const char *fn, const int32_t *seq_offsets,
                            int32_t n_seqs, int64_t B, int64_t Tb, int32_t **out,
                            int32_t *n_out)
{
    const int64_t T = B * Tb;
    int32_t       n, i, *off;

    *out   = NULL;
    *n_out = 0;
    if (seq_offsets ? n_seqs < 1 || n_seqs > (1 << 24) : B < 1 || B > (1 << 24))
        return gdn__fail(ctx, GDN_STATUS_INVALID_ARGUMENT, "%s: %s = %lld must be in [1, 2^24]",
                         fn, seq_offsets ? "n_seqs" : "batch",
                         seq_offsets ? (long long)n_seqs : (long long)B);
    n   = seq_offsets ? n_seqs : (int32_t)B;
    off = gdn__malloc(((size_t)n + 1) * sizeof(int32_t));
    if (!off)
        return gdn__fail(ctx, GDN_STATUS_OUT_OF_HOST_MEMORY, "%s: out of memory", fn);
    if (!seq_offsets) {
        for (i = 0; i <= n; i++)
            off[i] = (int32_t)(i * Tb);
    } else {
        memcpy(off, seq_offsets, ((size_t)n + 1) * sizeof(int32_t));
        if (off[0] != 0 || off[n] != T) {
            gdn__fail(ctx, GDN_STATUS_INVALID_ARGUMENT,
                      "%s: seq_offsets must start at 0 and end at T = %lld (got %d and %d)", fn,
                      (long long)T, (int)off[0], (int)off[n]);
            gdn__free(off);
            return GDN_STATUS_INVALID_ARGUMENT;
        }
        for (i = 0; i < n; i++)
            if (off[i + 1] < off[i]) {
                gdn__fail(ctx, GDN_STATUS_INVALID_ARGUMENT,
                          "%s: seq_offsets decreases at entry %d (%d > %d)", fn, (int)i + 1,
                          (int)off[i], (int)off[i + 1]);
                gdn__free(off);
                return GDN_STATUS_INVALID_ARGUMENT;
            }
    }
    *out   = off;
    *n_out = n;
    return GDN_STATUS_OK;
}
