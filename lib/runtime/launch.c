/*
 * launch.c - kernel arguments and NDRange launches with error messages that
 * name the kernel, plus the library's own small utility kernels (fill).
 */
#include <string.h>

#include "runtime.h"

static const char *kernel_name(cl_kernel k, char *buf, size_t cap)
{
    if (clGetKernelInfo(k, CL_KERNEL_FUNCTION_NAME, cap, buf, NULL) != CL_SUCCESS)
        gdn__strlcpy(buf, "?", cap);
    buf[cap - 1] = '\0';
    return buf;
}

static gdn_status set_arg(gdn_context *ctx, cl_kernel k, cl_uint i, size_t size, const void *v)
{
    cl_int err = clSetKernelArg(k, i, size, v);
    if (err != CL_SUCCESS) {
        char name[128];
        ctx->last_cl_error = err;
        return gdn__fail(ctx, gdn__status_from_cl(err), "%s: argument %u: %s (%d)",
                         kernel_name(k, name, sizeof(name)), (unsigned)i, gdn__cl_error_name(err),
                         (int)err);
    }
    return GDN_STATUS_OK;
}

gdn_status gdn__arg_mem(gdn_context *ctx, cl_kernel k, cl_uint i, cl_mem m)
{
    return set_arg(ctx, k, i, sizeof(m), &m);
}

gdn_status gdn__arg_int(gdn_context *ctx, cl_kernel k, cl_uint i, int32_t v)
{
    cl_int x = v;
    return set_arg(ctx, k, i, sizeof(x), &x);
}

gdn_status gdn__arg_float(gdn_context *ctx, cl_kernel k, cl_uint i, float v)
{
    cl_float x = v;
    return set_arg(ctx, k, i, sizeof(x), &x);
}

gdn_status gdn__arg_local(gdn_context *ctx, cl_kernel k, cl_uint i, size_t nbytes)
{
    return set_arg(ctx, k, i, nbytes, NULL);
}

static void prof_record(gdn_context *ctx, cl_kernel k, cl_event ev)
{
    char name[64];
    if (ctx->prof.n == ctx->prof.cap) {
        size_t               cap  = ctx->prof.cap ? 2 * ctx->prof.cap : 256;
        struct gdn_prof_rec *grow = gdn__realloc(ctx->prof.recs, cap * sizeof(*grow));
        if (!grow) {
            clReleaseEvent(ev);
            return;
        }
        ctx->prof.recs = grow;
        ctx->prof.cap  = cap;
    }
    ctx->prof.recs[ctx->prof.n].name = gdn__strdup(kernel_name(k, name, sizeof(name)));
    ctx->prof.recs[ctx->prof.n].ev   = ev;
    ctx->prof.n++;
}

void gdn__prof_enable(gdn_context *ctx, bool on)
{
    ctx->prof.on = on && ctx->profiling;
}

gdn_status gdn__prof_collect(gdn_context *ctx, struct gdn_prof_sum **out, size_t *n_out)
{
    struct gdn_prof_sum *sums = NULL;
    size_t               n = 0, i, j;
    gdn_status           st = GDN_STATUS_OK;

    *out   = NULL;
    *n_out = 0;
    if (ctx->prof.n)
        sums = gdn__calloc(ctx->prof.n, sizeof(*sums));
    for (i = 0; i < ctx->prof.n; i++) {
        struct gdn_prof_rec *r  = &ctx->prof.recs[i];
        cl_ulong             t0 = 0, t1 = 0;
        if (sums && clWaitForEvents(1, &r->ev) == CL_SUCCESS &&
            clGetEventProfilingInfo(r->ev, CL_PROFILING_COMMAND_START, sizeof(t0), &t0, NULL) ==
                CL_SUCCESS &&
            clGetEventProfilingInfo(r->ev, CL_PROFILING_COMMAND_END, sizeof(t1), &t1, NULL) ==
                CL_SUCCESS) {
            const char *nm = r->name ? r->name : "?";
            for (j = 0; j < n && strcmp(sums[j].name, nm); j++)
                ;
            if (j == n)
                gdn__strlcpy(sums[n++].name, nm, sizeof(sums[0].name));
            sums[j].ms += 1e-6 * (double)(t1 - t0);
            sums[j].count++;
        }
        clReleaseEvent(r->ev);
        gdn__free(r->name);
    }
    if (ctx->prof.n && !sums)
        st = GDN_STATUS_OUT_OF_HOST_MEMORY;
    ctx->prof.n = 0;
    *out        = sums;
    *n_out      = n;
    return st;
}

gdn_status gdn__launch(gdn_context *ctx, cl_kernel k, cl_uint dims, const size_t *global,
                       const size_t *local, cl_event *event)
{
    const cl_command_queue q = ctx->on_side ? ctx->side_queue : ctx->queue;
    size_t                 g[3] = {1, 1, 1};
    cl_uint                d;
    cl_int                 err;

    if (event)
        *event = NULL;
    for (d = 0; d < dims; d++) {
        if (global[d] == 0)
            return GDN_STATUS_OK;
        g[d] = local ? (global[d] + local[d] - 1) / local[d] * local[d] : global[d];
    }
    if (ctx->prof.on && !event) {
        cl_event ev = NULL;
        err         = clEnqueueNDRangeKernel(q, k, dims, NULL, g, local, 0, NULL, &ev);
        if (err == CL_SUCCESS)
            prof_record(ctx, k, ev);
    } else {
        err = clEnqueueNDRangeKernel(q, k, dims, NULL, g, local, 0, NULL, event);
    }
    if (err != CL_SUCCESS) {
        char name[128];
        ctx->last_cl_error = err;
        return gdn__fail(ctx, gdn__status_from_cl(err),
                         "%s: clEnqueueNDRangeKernel: %s (%d), global %zu x %zu x %zu, local "
                         "%zu x %zu x %zu",
                         kernel_name(k, name, sizeof(name)), gdn__cl_error_name(err), (int)err,
                         g[0], dims > 1 ? g[1] : 1, dims > 2 ? g[2] : 1, local ? local[0] : 0,
                         local && dims > 1 ? local[1] : 1, local && dims > 2 ? local[2] : 1);
    }
    return GDN_STATUS_OK;
}

gdn_status gdn__fork_begin(gdn_context *ctx, struct gdn_fork *f)
{
    cl_event start = NULL;
    cl_int   err   = CL_SUCCESS;

    f->begun = false;
    f->done  = NULL;
    if (!ctx->side_queue) {
        ctx->side_queue = clCreateCommandQueue(
            ctx->cl_ctx, ctx->dev.id, ctx->profiling ? CL_QUEUE_PROFILING_ENABLE : 0, &err);
        if (err != CL_SUCCESS) {
            ctx->side_queue = NULL;
            return gdn__fail_cl(ctx, err, "fork: clCreateCommandQueue (side queue)");
        }
    }
    /* (A queue may wait on another queue's event only once that queue has
     * been flushed: OpenCL 1.2 section 5.13. Mesa's rusticl never runs the
     * waiting queue otherwise, even under clFinish of it.) */
    err = clEnqueueMarkerWithWaitList(ctx->queue, 0, NULL, &start);
    if (err == CL_SUCCESS) {
        err = clFlush(ctx->queue);
        if (err == CL_SUCCESS)
            err = clEnqueueBarrierWithWaitList(ctx->side_queue, 1, &start, NULL);
        clReleaseEvent(start);
    }
    if (err != CL_SUCCESS)
        return gdn__fail_cl(ctx, err, "fork: ordering the side queue after the main queue");
    f->begun     = true;
    ctx->on_side = true;
    return GDN_STATUS_OK;
}

gdn_status gdn__fork_switch(gdn_context *ctx, struct gdn_fork *f)
{
    cl_int err;

    ctx->on_side = false;
    if (!f->begun)
        return GDN_STATUS_OK;
    err = clEnqueueMarkerWithWaitList(ctx->side_queue, 0, NULL, &f->done);
    if (err == CL_SUCCESS)
        err = clFlush(ctx->side_queue);
    if (err != CL_SUCCESS)
        return gdn__fail_cl(ctx, err, "fork: marking the end of the side branch");
    return GDN_STATUS_OK;
}

gdn_status gdn__fork_join(gdn_context *ctx, struct gdn_fork *f)
{
    cl_int err;

    ctx->on_side = false;
    if (!f->begun)
        return GDN_STATUS_OK;
    f->begun = false;
    if (f->done) {
        err = clEnqueueBarrierWithWaitList(ctx->queue, 1, &f->done, NULL);
        clReleaseEvent(f->done);
        f->done = NULL;
        if (err == CL_SUCCESS)
            return GDN_STATUS_OK;
    }
    /* No marker after the branch (an error before switch) or no barrier:
     * the host waits for the side queue, which orders it just as well. */
    err = clFinish(ctx->side_queue);
    if (err != CL_SUCCESS)
        return gdn__fail_cl(ctx, err, "fork: waiting for the side queue");
    return GDN_STATUS_OK;
}

gdn_status gdn__kernel_check_wg(gdn_context *ctx, cl_kernel k, size_t wg, const char *what)
{
    size_t kwg = 0, reqd[3] = {0, 0, 0};
    cl_int err;

    err = clGetKernelWorkGroupInfo(k, ctx->dev.id, CL_KERNEL_WORK_GROUP_SIZE, sizeof(kwg), &kwg,
                                   NULL);
    if (err != CL_SUCCESS)
        return gdn__fail_cl(ctx, err, "clGetKernelWorkGroupInfo(CL_KERNEL_WORK_GROUP_SIZE)");
    if (kwg >= wg)
        return GDN_STATUS_OK;
    if (clGetKernelWorkGroupInfo(k, ctx->dev.id, CL_KERNEL_COMPILE_WORK_GROUP_SIZE, sizeof(reqd),
                                 reqd, NULL) == CL_SUCCESS &&
        reqd[0] * (reqd[1] ? reqd[1] : 1) * (reqd[2] ? reqd[2] : 1) == wg &&
        wg <= ctx->dev.info.max_work_group_size)
        return GDN_STATUS_OK;
    return gdn__fail(ctx, GDN_STATUS_UNSUPPORTED,
                     "%s: the device runs at most %zu work-items of this kernel, the plan needs "
                     "%zu",
                     what, kwg, wg);
}

/* Plan of core/fill.cl: a plain grid-stride fill, WG_SIZE work-items per
 * group: 256, or the largest power of two the device allows below that. */
#define FILL_WG 256

gdn_status gdn__fill_f32(gdn_context *ctx, cl_mem mem, size_t n, float value)
{
    size_t                  local = FILL_WG, global;
    const size_t            max_wg = ctx->dev.info.max_work_group_size;
    struct gdn_define       defs[1];
    char                    opts[64];
    cl_kernel               k;
    gdn_status              st;

    while (max_wg && local > max_wg)
        local /= 2;
    defs[0].name  = "WG_SIZE";
    defs[0].value = (int64_t)local;
    if (n == 0)
        return GDN_STATUS_OK;
    if (n > (size_t)INT32_MAX * 64)
        return gdn__fail(ctx, GDN_STATUS_UNSUPPORTED, "fill: %zu elements is too many", n);
    gdn__defines_format(defs, GDN_ARRAY_SIZE(defs), opts, sizeof(opts));
    st = gdn__kernel_get(ctx, "core/fill.cl", opts, "gdn_fill_f32", &k);
    if (st)
        return st;
    global = n < local * 4096 ? n : local * 4096;
    if ((st = gdn__arg_mem(ctx, k, 0, mem)) || (st = gdn__arg_int(ctx, k, 1, (int32_t)(n >> 31))) ||
        (st = gdn__arg_int(ctx, k, 2, (int32_t)(n & 0x7fffffff))) ||
        (st = gdn__arg_float(ctx, k, 3, value)))
        return st;
    return gdn__launch(ctx, k, 1, &global, &local, NULL);
}
