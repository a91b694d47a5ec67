/*
 * context.c - gdn_context: one device, its OpenCL context and in-order
 * queue, the program caches, logging settings and the last-error message.
 *
 * Lifetime: tensors and other children take a reference (gdn__context_ref).
 * gdn_context_destroy drops the user's reference; the OpenCL objects are
 * released when the count reaches zero, so destroying in the wrong order is
 * logged but never a use-after-free.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "runtime.h"
#include "tune/tune.h"

void gdn_context_params_init(gdn_context_params *params)
{
    if (!params)
        return;
    memset(params, 0, sizeof(*params));
    params->device_index = -1;
    params->disk_cache   = 1;
    params->log_level    = -1;
    params->tune_mode    = -1;
}

static gdn_log_level env_log_level(void)
{
    const char *s = getenv("GDN_LOG");
    if (!s || !*s)
        return GDN_LOG_LEVEL_WARN;
    if (!strcasecmp(s, "debug") || !strcmp(s, "3"))
        return GDN_LOG_LEVEL_DEBUG;
    if (!strcasecmp(s, "info") || !strcmp(s, "2"))
        return GDN_LOG_LEVEL_INFO;
    if (!strcasecmp(s, "error") || !strcmp(s, "0"))
        return GDN_LOG_LEVEL_ERROR;
    return GDN_LOG_LEVEL_WARN;
}

/* The cache base folder: params.cache_dir, $GDN_CACHE_DIR,
 * $XDG_CACHE_HOME/gdn or ~/.cache/gdn; NULL when none can be named. */
static char *cache_dir_for_base(const gdn_context_params *p)
{
    const char       *env;
    struct gdn_strbuf sb = {0};

    if (p->cache_dir && *p->cache_dir)
        return gdn__strdup(p->cache_dir);
    if ((env = getenv("GDN_CACHE_DIR")) && *env)
        return gdn__strdup(env);
    if ((env = getenv("XDG_CACHE_HOME")) && *env)
        gdn__strbuf_appendf(&sb, "%s/gdn", env);
    else if ((env = getenv("HOME")) && *env)
        gdn__strbuf_appendf(&sb, "%s/.cache/gdn", env);
    else
        return NULL;
    if (sb.oom) {
        gdn__strbuf_free(&sb);
        return NULL;
    }
    return sb.data;
}

/* The on-disk program cache folder, or NULL when the cache is off. */
static char *cache_dir_for(const gdn_context_params *p)
{
    const char *env = getenv("GDN_CACHE");
    if (!p->disk_cache || (env && !strcmp(env, "0")))
        return NULL;
    return cache_dir_for_base(p);
}

/* tune_mode in {-1, DB, LAZY, EAGER}, tune_budget_s finite and >= 0. */
static bool tune_params_ok(const gdn_context_params *p)
{
    return p->tune_mode >= -1 && p->tune_mode <= GDN_TUNE_MODE_EAGER &&
           p->tune_budget_s >= 0 && p->tune_budget_s <= 1e6f;
}

static bool reserved_zero(const gdn_context_params *p)
{
    size_t i;
    for (i = 0; i < GDN_ARRAY_SIZE(p->reserved); i++)
        if (p->reserved[i])
            return false;
    return true;
}

/* A constructor failed before a context exists to hold the message: send it
 * to the caller's log callback when params has one (at ERROR level, which no
 * log_level filters out), else to stderr. Returns status. */
static gdn_status create_fail(const gdn_context_params *p, gdn_status status, const char *fmt, ...)
    GDN_PRINTF(3, 4);
static gdn_status create_fail(const gdn_context_params *p, gdn_status status, const char *fmt, ...)
{
    struct gdn_strbuf sb = {0};
    va_list           ap;

    va_start(ap, fmt);
    gdn__strbuf_appendv(&sb, fmt, ap);
    va_end(ap);
    if (p && p->log_fn)
        p->log_fn(p->log_user, GDN_LOG_LEVEL_ERROR, sb.data ? sb.data : "(out of memory)");
    else
        gdn__fail(NULL, status, "%s", sb.data ? sb.data : "(out of memory)");
    gdn__strbuf_free(&sb);
    return status;
}

/* Shared tail of both constructors: settings, caches, logging. */
static gdn_status context_init_common(gdn_context *ctx, const gdn_context_params *p)
{
    const char *env_dir = getenv("GDN_CL_DIR");

    ctx->refs      = 1;
    ctx->log_fn    = p->log_fn;
    ctx->log_user  = p->log_user;
    ctx->log_level = p->log_level >= 0 ? (gdn_log_level)p->log_level : env_log_level();
    ctx->tune_mode_param   = p->tune_mode;
    ctx->tune_budget_param = p->tune_budget_s;
    /* GDN_CL_DIR wins over params.kernel_dir; empty strings mean "not set". */
    if (!env_dir || !*env_dir)
        env_dir = p->kernel_dir && *p->kernel_dir ? p->kernel_dir : NULL;
    if (env_dir && !(ctx->kernel_dir = gdn__strdup(env_dir)))
        return GDN_STATUS_OUT_OF_HOST_MEMORY;
    {
        /* params.build_options, else GDN_BUILD_OPTIONS (developers: e.g.
         * -cl-nv-verbose, whose register report GDN_LOG=debug prints; NVIDIA
         * driver 580 accepts -cl-nv-maxrregcount=N but leaves the register
         * counts as they were, and rejects the spec's -cl-nv-maxrregcount N) */
        const char *bo = p->build_options ? p->build_options : getenv("GDN_BUILD_OPTIONS");
        if (bo && *bo && !(ctx->build_options = gdn__strdup(bo)))
            return GDN_STATUS_OUT_OF_HOST_MEMORY;
    }
    {
        /* The tuning database lives under the cache base even when the
         * program cache is off (GDN_CACHE=0 or PoCL). */
        gdn_context_params q = *p;
        const char        *ovr = getenv("GDN_TUNE");
        char              *base;
        q.disk_cache = 1;
        base         = cache_dir_for_base(&q);
        if (base) {
            struct gdn_strbuf sb = {0};
            gdn__strbuf_appendf(&sb, "%s/tune", base);
            ctx->tune_dir = sb.oom ? NULL : sb.data;
            if (sb.oom)
                gdn__strbuf_free(&sb);
            gdn__free(base);
        }
        if (ovr && *ovr && !(ctx->tune_override = gdn__strdup(ovr)))
            return GDN_STATUS_OUT_OF_HOST_MEMORY;
    }
    ctx->cache_dir = cache_dir_for(p);
    if (ctx->cache_dir) {
        const char *force = getenv("GDN_CACHE");
        if (ctx->dev.is_pocl && !(force && !strcmp(force, "force"))) {
            /* PoCL keeps its own binary cache, and reading CL_PROGRAM_BINARIES
             * there costs an extra compile: leave caching to PoCL. */
            gdn__log(ctx, GDN_LOG_LEVEL_DEBUG, "disk program cache left to PoCL's own cache");
            gdn__free(ctx->cache_dir);
            ctx->cache_dir = NULL;
        }
    }
    gdn__log(ctx, GDN_LOG_LEVEL_INFO, "context on '%s' (%s, driver %s); kernels from %s; "
             "disk cache %s",
             ctx->dev.info.name, ctx->dev.info.platform_name, ctx->dev.info.driver_version,
             ctx->kernel_dir ? ctx->kernel_dir : "the library", ctx->cache_dir ? ctx->cache_dir
                                                                               : "off");
    return GDN_STATUS_OK;
}

static void context_free(gdn_context *ctx)
{
    struct gdn_prof_sum *sums;
    size_t               n;

    if (gdn__prof_collect(ctx, &sums, &n) == GDN_STATUS_OK)
        gdn__free(sums);
    gdn__free(ctx->prof.recs);
    gdn__buffer_release(ctx->iota);
    gdn__int_tables_clear(ctx);
    gdn__scratch_trim(ctx);
    gdn__program_cache_clear(ctx);
    if (ctx->side_queue) {
        clFinish(ctx->side_queue);
        clReleaseCommandQueue(ctx->side_queue);
    }
    if (ctx->queue) {
        clFinish(ctx->queue);
        clReleaseCommandQueue(ctx->queue);
    }
    if (ctx->cl_ctx)
        clReleaseContext(ctx->cl_ctx);
    gdn__free(ctx->kernel_dir);
    gdn__free(ctx->build_options);
    gdn__free(ctx->cache_dir);
    gdn__free(ctx->tune_dir);
    gdn__free(ctx->tune_override);
    gdn__tune_db_free(ctx->tune_db);
    gdn__strbuf_free(&ctx->last_error);
    gdn__free(ctx);
}

gdn_status gdn_context_create(const gdn_context_params *params, gdn_context **out)
{
    gdn_context_params       defaults;
    const struct gdn_device *devs;
    int32_t                  n, index;
    gdn_context             *ctx;
    cl_int                   err;
    gdn_status               st;

    if (!out)
        return GDN_STATUS_INVALID_ARGUMENT;
    *out = NULL;
    if (!params) {
        gdn_context_params_init(&defaults);
        params = &defaults;
    }
    if (!reserved_zero(params))
        return create_fail(params, GDN_STATUS_INVALID_ARGUMENT,
                         "gdn_context_create: params.reserved must be zero "
                         "(call gdn_context_params_init)");
    if (!tune_params_ok(params))
        return create_fail(params, GDN_STATUS_INVALID_ARGUMENT,
                           "gdn_context_create: params.tune_mode must be -1 or a gdn_tune_mode "
                           "and tune_budget_s in [0, 1e6]");
    st = gdn__devices(&devs, &n);
    if (st)
        return st;
    if (n == 0)
        return create_fail(params, GDN_STATUS_NO_DEVICE, "gdn_context_create: no OpenCL device");
    if (params->device_index >= 0) {
        if (params->device_index >= n)
            return create_fail(params, GDN_STATUS_INVALID_ARGUMENT,
                             "gdn_context_create: device_index %d out of range (%d devices)",
                             (int)params->device_index, (int)n);
        index = params->device_index;
    } else {
        const char *sel = getenv("GDN_DEVICE");
        st              = gdn__device_select(sel, &index);
        if (st)
            return create_fail(params, st, "gdn_context_create: GDN_DEVICE='%s' matches no device",
                             sel ? sel : "");
    }

    ctx = gdn__calloc(1, sizeof(*ctx));
    if (!ctx)
        return GDN_STATUS_OUT_OF_HOST_MEMORY;
    ctx->dev    = devs[index];
    ctx->cl_ctx = clCreateContext(NULL, 1, &ctx->dev.id, NULL, NULL, &err);
    if (err != CL_SUCCESS) {
        st = create_fail(params, gdn__status_from_cl(err), "clCreateContext: %s (%d)",
                       gdn__cl_error_name(err), (int)err);
        goto out_free;
    }
    ctx->queue =
        clCreateCommandQueue(ctx->cl_ctx, ctx->dev.id, CL_QUEUE_PROFILING_ENABLE, &err);
    if (err != CL_SUCCESS) {
        st = create_fail(params, gdn__status_from_cl(err), "clCreateCommandQueue: %s (%d)",
                       gdn__cl_error_name(err), (int)err);
        goto out_free;
    }
    ctx->profiling = true;
    st             = context_init_common(ctx, params);
    if (st)
        goto out_free;
    *out = ctx;
    return GDN_STATUS_OK;

out_free:
    context_free(ctx);
    return st;
}

gdn_status gdn_context_create_from_cl(cl_context cl_ctx, cl_device_id device,
                                      cl_command_queue queue, const gdn_context_params *params,
                                      gdn_context **out)
{
    gdn_context_params          defaults;
    gdn_context                *ctx;
    cl_context                  q_ctx = NULL;
    cl_device_id                q_dev = NULL;
    cl_command_queue_properties props = 0;
    cl_platform_id              platform;
    gdn_status                  st;

    if (!out)
        return GDN_STATUS_INVALID_ARGUMENT;
    *out = NULL;
    if (!cl_ctx || !device || !queue)
        return create_fail(params, GDN_STATUS_INVALID_ARGUMENT,
                         "gdn_context_create_from_cl: NULL OpenCL handle");
    if (!params) {
        gdn_context_params_init(&defaults);
        params = &defaults;
    }
    if (!reserved_zero(params))
        return create_fail(params, GDN_STATUS_INVALID_ARGUMENT,
                         "gdn_context_create_from_cl: params.reserved must be zero");
    if (!tune_params_ok(params))
        return create_fail(params, GDN_STATUS_INVALID_ARGUMENT,
                           "gdn_context_create_from_cl: params.tune_mode must be -1 or a "
                           "gdn_tune_mode and tune_budget_s in [0, 1e6]");
    if (clGetCommandQueueInfo(queue, CL_QUEUE_CONTEXT, sizeof(q_ctx), &q_ctx, NULL) !=
            CL_SUCCESS ||
        clGetCommandQueueInfo(queue, CL_QUEUE_DEVICE, sizeof(q_dev), &q_dev, NULL) != CL_SUCCESS ||
        clGetCommandQueueInfo(queue, CL_QUEUE_PROPERTIES, sizeof(props), &props, NULL) !=
            CL_SUCCESS)
        return create_fail(params, GDN_STATUS_INVALID_ARGUMENT,
                         "gdn_context_create_from_cl: queue is not a valid command queue");
    if (q_ctx != cl_ctx || q_dev != device)
        return create_fail(params, GDN_STATUS_INVALID_ARGUMENT,
                         "gdn_context_create_from_cl: queue belongs to another context/device");
    if (props & CL_QUEUE_OUT_OF_ORDER_EXEC_MODE_ENABLE)
        return create_fail(params, GDN_STATUS_INVALID_ARGUMENT,
                         "gdn_context_create_from_cl: the queue must be in-order");
    if (clGetDeviceInfo(device, CL_DEVICE_PLATFORM, sizeof(platform), &platform, NULL) !=
        CL_SUCCESS)
        return create_fail(params, GDN_STATUS_INVALID_ARGUMENT,
                         "gdn_context_create_from_cl: invalid device");

    ctx = gdn__calloc(1, sizeof(*ctx));
    if (!ctx)
        return GDN_STATUS_OUT_OF_HOST_MEMORY;
    st = gdn__device_query(platform, device, &ctx->dev);
    if (st) {
        gdn__free(ctx);
        return st;
    }
    clRetainContext(cl_ctx);
    clRetainCommandQueue(queue);
    ctx->cl_ctx    = cl_ctx;
    ctx->queue     = queue;
    ctx->profiling = (props & CL_QUEUE_PROFILING_ENABLE) != 0;
    st             = context_init_common(ctx, params);
    if (st) {
        context_free(ctx);
        return st;
    }
    *out = ctx;
    return GDN_STATUS_OK;
}

void gdn__context_ref(gdn_context *ctx)
{
    ctx->refs++;
}

void gdn__context_unref(gdn_context *ctx)
{
    if (--ctx->refs == 0)
        context_free(ctx);
}

void gdn_context_destroy(gdn_context *ctx)
{
    if (!ctx || ctx->destroyed)
        return;
    ctx->destroyed = true;
    if (ctx->refs > 1)
        gdn__log(ctx, GDN_LOG_LEVEL_WARN,
                 "gdn_context_destroy: %d objects created from this context are still alive; "
                 "its OpenCL resources are released when the last one is destroyed",
                 ctx->refs - 1);
    gdn__context_unref(ctx);
}

gdn_status gdn_context_finish(gdn_context *ctx)
{
    cl_int err;
    if (!ctx)
        return GDN_STATUS_INVALID_ARGUMENT;
    err = clFinish(ctx->queue);
    if (err != CL_SUCCESS)
        return gdn__fail_cl(ctx, err, "clFinish");
    return GDN_STATUS_OK;
}

gdn_status gdn_context_device_info(const gdn_context *ctx, gdn_device_info *info)
{
    if (!ctx || !info)
        return GDN_STATUS_INVALID_ARGUMENT;
    *info = ctx->dev.info;
    return GDN_STATUS_OK;
}

cl_command_queue gdn_context_cl_queue(const gdn_context *ctx)
{
    return ctx ? ctx->queue : NULL;
}

cl_device_id gdn_context_cl_device(const gdn_context *ctx)
{
    return ctx ? ctx->dev.id : NULL;
}

cl_context gdn_context_cl_context(const gdn_context *ctx)
{
    return ctx ? ctx->cl_ctx : NULL;
}
