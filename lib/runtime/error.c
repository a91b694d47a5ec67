/*
 * error.c - status strings (generated from GDN_STATUS_MAP), OpenCL error
 * names, the per-context last-error message and logging.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime.h"

const char *gdn_status_string(gdn_status status)
{
    switch (status) {
#define GDN_STATUS_STR_(name, value, msg)                                                          \
    case GDN_STATUS_##name:                                                                        \
        return msg;
        GDN_STATUS_MAP(GDN_STATUS_STR_)
#undef GDN_STATUS_STR_
    }
    return "unknown status";
}

const char *gdn_status_name(gdn_status status)
{
    switch (status) {
#define GDN_STATUS_NAME_(name, value, msg)                                                         \
    case GDN_STATUS_##name:                                                                        \
        return "GDN_STATUS_" #name;
        GDN_STATUS_MAP(GDN_STATUS_NAME_)
#undef GDN_STATUS_NAME_
    }
    return "GDN_STATUS_UNKNOWN";
}

uint32_t gdn_version(void)
{
    return GDN_VERSION_HEX;
}

#define GDN_STR2_(x) #x
#define GDN_STR_(x)  GDN_STR2_(x)
const char *gdn_version_string(void)
{
    return GDN_STR_(GDN_VERSION_MAJOR) "." GDN_STR_(GDN_VERSION_MINOR) "." GDN_STR_(
        GDN_VERSION_PATCH);
}

size_t gdn_dtype_size(gdn_dtype dtype)
{
    switch (dtype) {
    case GDN_DTYPE_F32:
    case GDN_DTYPE_I32:
        return 4;
    case GDN_DTYPE_F16:
    case GDN_DTYPE_BF16:
        return 2;
    }
    return 0;
}

const char *gdn__cl_error_name(cl_int err)
{
    switch (err) {
#define E(x)                                                                                       \
    case x:                                                                                        \
        return #x;
        E(CL_SUCCESS)
        E(CL_DEVICE_NOT_FOUND)
        E(CL_DEVICE_NOT_AVAILABLE)
        E(CL_COMPILER_NOT_AVAILABLE)
        E(CL_MEM_OBJECT_ALLOCATION_FAILURE)
        E(CL_OUT_OF_RESOURCES)
        E(CL_OUT_OF_HOST_MEMORY)
        E(CL_PROFILING_INFO_NOT_AVAILABLE)
        E(CL_MEM_COPY_OVERLAP)
        E(CL_IMAGE_FORMAT_MISMATCH)
        E(CL_IMAGE_FORMAT_NOT_SUPPORTED)
        E(CL_BUILD_PROGRAM_FAILURE)
        E(CL_MAP_FAILURE)
        E(CL_MISALIGNED_SUB_BUFFER_OFFSET)
        E(CL_INVALID_VALUE)
        E(CL_INVALID_DEVICE_TYPE)
        E(CL_INVALID_PLATFORM)
        E(CL_INVALID_DEVICE)
        E(CL_INVALID_CONTEXT)
        E(CL_INVALID_QUEUE_PROPERTIES)
        E(CL_INVALID_COMMAND_QUEUE)
        E(CL_INVALID_HOST_PTR)
        E(CL_INVALID_MEM_OBJECT)
        E(CL_INVALID_BINARY)
        E(CL_INVALID_BUILD_OPTIONS)
        E(CL_INVALID_PROGRAM)
        E(CL_INVALID_PROGRAM_EXECUTABLE)
        E(CL_INVALID_KERNEL_NAME)
        E(CL_INVALID_KERNEL_DEFINITION)
        E(CL_INVALID_KERNEL)
        E(CL_INVALID_ARG_INDEX)
        E(CL_INVALID_ARG_VALUE)
        E(CL_INVALID_ARG_SIZE)
        E(CL_INVALID_KERNEL_ARGS)
        E(CL_INVALID_WORK_DIMENSION)
        E(CL_INVALID_WORK_GROUP_SIZE)
        E(CL_INVALID_WORK_ITEM_SIZE)
        E(CL_INVALID_GLOBAL_OFFSET)
        E(CL_INVALID_EVENT_WAIT_LIST)
        E(CL_INVALID_EVENT)
        E(CL_INVALID_OPERATION)
        E(CL_INVALID_BUFFER_SIZE)
        E(CL_INVALID_GLOBAL_WORK_SIZE)
#undef E
    default:
        return "CL_UNKNOWN_ERROR";
    }
}

gdn_status gdn__status_from_cl(cl_int err)
{
    switch (err) {
    case CL_SUCCESS:
        return GDN_STATUS_OK;
    case CL_MEM_OBJECT_ALLOCATION_FAILURE:
    case CL_OUT_OF_RESOURCES:
    case CL_INVALID_BUFFER_SIZE:
        return GDN_STATUS_OUT_OF_DEVICE_MEMORY;
    case CL_OUT_OF_HOST_MEMORY:
        return GDN_STATUS_OUT_OF_HOST_MEMORY;
    case CL_BUILD_PROGRAM_FAILURE:
        return GDN_STATUS_BUILD_FAILED;
    case CL_DEVICE_NOT_FOUND:
        return GDN_STATUS_NO_DEVICE;
    default:
        return GDN_STATUS_OPENCL;
    }
}

void gdn__clear_error(gdn_context *ctx)
{
    if (ctx && ctx->last_error.data) {
        ctx->last_error.len     = 0;
        ctx->last_error.data[0] = '\0';
        ctx->last_error.oom     = false;
    }
}

static gdn_status failv(gdn_context *ctx, gdn_status status, const char *fmt, va_list ap)
{
    if (!ctx) {
        char buf[1024];
        vsnprintf(buf, sizeof(buf), fmt, ap);
        fprintf(stderr, "gdn: error: %s\n", buf);
        return status;
    }
    gdn__clear_error(ctx);
    gdn__strbuf_appendv(&ctx->last_error, fmt, ap);
    gdn__log(ctx, GDN_LOG_LEVEL_DEBUG, "error %s: %s", gdn_status_name(status),
             ctx->last_error.data ? ctx->last_error.data : "(out of memory)");
    return status;
}

gdn_status gdn__fail(gdn_context *ctx, gdn_status status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    status = failv(ctx, status, fmt, ap);
    va_end(ap);
    return status;
}

gdn_status gdn__fail_cl(gdn_context *ctx, cl_int err, const char *what)
{
    if (ctx)
        ctx->last_cl_error = err;
    return gdn__fail(ctx, gdn__status_from_cl(err), "%s: %s (%d)", what, gdn__cl_error_name(err),
                     (int)err);
}

const char *gdn_context_last_error(const gdn_context *ctx)
{
    if (!ctx || !ctx->last_error.data)
        return "";
    return ctx->last_error.data;
}

static const char *level_name(gdn_log_level level)
{
    switch (level) {
    case GDN_LOG_LEVEL_ERROR:
        return "error";
    case GDN_LOG_LEVEL_WARN:
        return "warning";
    case GDN_LOG_LEVEL_INFO:
        return "info";
    case GDN_LOG_LEVEL_DEBUG:
        return "debug";
    }
    return "?";
}

void gdn__log(const gdn_context *ctx, gdn_log_level level, const char *fmt, ...)
{
    struct gdn_strbuf sb = {0};
    va_list           ap;
    gdn_log_level     max = ctx ? ctx->log_level : GDN_LOG_LEVEL_WARN;

    if (level > max)
        return;
    va_start(ap, fmt);
    gdn__strbuf_appendv(&sb, fmt, ap);
    va_end(ap);
    if (ctx && ctx->log_fn)
        ctx->log_fn(ctx->log_user, level, sb.data ? sb.data : "(out of memory)");
    else
        fprintf(stderr, "gdn: %s: %s\n", level_name(level), sb.data ? sb.data : "(out of memory)");
    gdn__strbuf_free(&sb);
}
