/*
 * test_runtime.c - device suite of the foundation: contexts and device
 * selection (GDN_DEVICE), tensors and every bad input they take (with the
 * message checked), lifetime (destroying in the wrong order), logging
 * (callback, levels, GDN_LOG), the fill kernel, OpenCL interop (gdn_cl.h),
 * kernel folders (params.kernel_dir, GDN_CL_DIR, build options) and build
 * failures (GDN_STATUS_BUILD_FAILED with file, options and driver log).
 *
 * Every context is created inside the forked child (checked fixture or the
 * test body); the program exits 77 when there is no OpenCL device.
 */
#define _POSIX_C_SOURCE 200809L
#include <check.h>
#include <ctype.h>
#include <dirent.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "gdn.h"
#include "gdn_cl.h"
#include "gdn_test.h"
#include "runtime.h"

#ifndef GDN_TEST_CL_DIR
#    error GDN_TEST_CL_DIR (the source cl/ folder) must be defined by the build
#endif

#define TIMEOUT_S 300

/* ---------------------------------------------------------------- helpers */

/* Everything a log callback received, one "[level] message" per line. */
struct logcap {
    struct gdn_strbuf text;
    int               count[4];
};

static void log_capture(void *user, gdn_log_level level, const char *msg)
{
    struct logcap *c = user;
    ck_assert_ptr_nonnull(msg);
    if ((int)level >= 0 && (int)level < 4)
        c->count[level]++;
    gdn__strbuf_appendf(&c->text, "[%d] %s\n", (int)level, msg);
}

static const char *logcap_text(const struct logcap *c)
{
    return c->text.data ? c->text.data : "";
}

static void logcap_free(struct logcap *c)
{
    gdn__strbuf_free(&c->text);
    memset(c, 0, sizeof(*c));
}

#define EXPECT_STATUS(ctx, expr, want, substr)                                                     \
    do {                                                                                           \
        gdn_status  st_  = (expr);                                                                 \
        const char *msg_ = gdn_context_last_error(ctx);                                            \
        ck_assert_msg(st_ == (want), "%s -> %s, expected %s (last error: %s)", #expr,             \
                      gdn_status_name(st_), gdn_status_name(want), msg_);                          \
        if ((substr) != NULL)                                                                      \
            ck_assert_msg(strstr(msg_, (const char *)(substr)) != NULL,                            \
                          "%s: last error '%s' does not mention '%s'", #expr, msg_,                \
                          (const char *)(substr));                                                 \
    } while (0)

#define CTX_OK(ctx, expr)                                                                          \
    do {                                                                                           \
        gdn_status st_ = (expr);                                                                   \
        ck_assert_msg(st_ == GDN_STATUS_OK, "%s -> %s: %s", #expr, gdn_status_name(st_),           \
                      gdn_context_last_error(ctx));                                                \
    } while (0)

/* setenv/unsetenv that remember the old value (restored by env_restore), so
 * the tests also behave with CK_FORK=no. */
struct saved_env {
    char  name[32];
    char *value;
    int   set;
};
static struct saved_env g_env[8];
static int              g_nenv;

static void env_put(const char *name, const char *value)
{
    const char *old = getenv(name);
    ck_assert_int_lt(g_nenv, 8);
    snprintf(g_env[g_nenv].name, sizeof(g_env[g_nenv].name), "%s", name);
    g_env[g_nenv].set   = old != NULL;
    g_env[g_nenv].value = old ? strdup(old) : NULL;
    g_nenv++;
    if (value)
        ck_assert_int_eq(setenv(name, value, 1), 0);
    else
        ck_assert_int_eq(unsetenv(name), 0);
}

static void env_restore(void)
{
    while (g_nenv > 0) {
        struct saved_env *e = &g_env[--g_nenv];
        if (e->set)
            setenv(e->name, e->value, 1);
        else
            unsetenv(e->name);
        free(e->value);
        e->value = NULL;
    }
}

static gdn_context *ctx_with_log(struct logcap *cap, int32_t level)
{
    gdn_context_params p;
    gdn_context       *ctx = NULL;
    gdn_status         st;
    gdn_context_params_init(&p);
    p.log_fn    = log_capture;
    p.log_user  = cap;
    p.log_level = level;
    st          = gdn_context_create(&p, &ctx);
    ck_assert_msg(st == GDN_STATUS_OK, "gdn_context_create: %s\n%s", gdn_status_name(st),
                  logcap_text(cap));
    return ctx;
}

static int device_count(void)
{
    int32_t n = 0;
    ck_assert_int_eq(gdn_device_count(&n), GDN_STATUS_OK);
    ck_assert_int_gt(n, 0);
    return n;
}

/* The cl_platform_id / cl_device_id of a libgdn device index. */
static cl_device_id cl_device_of(int32_t index)
{
    gdn_device_info info;
    cl_uint         np = 0, nd = 0;
    cl_platform_id  plats[16];
    cl_device_id    devs[16];

    ck_assert_int_eq(gdn_device_get_info(index, &info), GDN_STATUS_OK);
    ck_assert_int_eq(clGetPlatformIDs(16, plats, &np), CL_SUCCESS);
    ck_assert_int_lt(info.platform_index, (int)np);
    ck_assert_int_eq(clGetDeviceIDs(plats[info.platform_index], CL_DEVICE_TYPE_ALL, 16, devs, &nd),
                     CL_SUCCESS);
    ck_assert_int_lt(info.device_index, (int)nd);
    return devs[info.device_index];
}

static cl_device_id cl_default_device(void)
{
    int32_t idx = -1;
    ck_assert_int_eq(gdn_device_default(&idx), GDN_STATUS_OK);
    return cl_device_of(idx);
}

static float *read_floats(const gdn_tensor *t)
{
    float *f = malloc(gdn_tensor_nbytes(t) ? gdn_tensor_nbytes(t) : 1);
    ck_assert_ptr_nonnull(f);
    CTX_OK(gdn_tensor_context(t), gdn_tensor_read(t, f, 0, gdn_tensor_nbytes(t)));
    return f;
}

static void expect_all(const gdn_tensor *t, float want, const char *what)
{
    float  *f = read_floats(t);
    int64_t i, n = gdn_tensor_numel(t);
    for (i = 0; i < n; i++)
        ck_assert_msg(f[i] == want, "%s: element %lld is %g, expected %g", what, (long long)i,
                      (double)f[i], (double)want);
    free(f);
}

/* Temporary folders for kernel sources. */
static char g_tmp[256];

static void tmp_make(void)
{
    const char *base = getenv("TMPDIR");
    snprintf(g_tmp, sizeof(g_tmp), "%s/gdn_test_runtime_XXXXXX", base && *base ? base : "/tmp");
    ck_assert_ptr_nonnull(mkdtemp(g_tmp));
}

static void rm_rf(const char *path)
{
    struct stat st;
    if (lstat(path, &st) != 0)
        return;
    if (S_ISDIR(st.st_mode)) {
        DIR           *d = opendir(path);
        struct dirent *e;
        while (d && (e = readdir(d)) != NULL) {
            char sub[1024];
            if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
                continue;
            snprintf(sub, sizeof(sub), "%s/%s", path, e->d_name);
            rm_rf(sub);
        }
        if (d)
            closedir(d);
        rmdir(path);
    } else {
        unlink(path);
    }
}

static void write_file(const char *dir, const char *rel, const char *text)
{
    char path[1024], sub[1024];
    snprintf(path, sizeof(path), "%s/%s", dir, rel);
    snprintf(sub, sizeof(sub), "%s", path);
    *strrchr(sub, '/') = '\0';
    ck_assert_int_eq(gdn__mkdirs(sub), GDN_STATUS_OK);
    ck_assert_int_eq(gdn__file_write_atomic(path, text, strlen(text)), GDN_STATUS_OK);
}

/* A kernel folder <g_tmp>/<name> with include/gdn_common.clh copied from the
 * source tree and core/fill.cl = fill_text (if not NULL). Returns the path. */
static const char *kernel_folder(const char *name, const char *fill_text, char *out, size_t cap)
{
    char  *hdr = NULL;
    size_t size;
    snprintf(out, cap, "%s/%s", g_tmp, name);
    ck_assert_int_eq(gdn__file_read(GDN_TEST_CL_DIR "/include/gdn_common.clh", &hdr, &size),
                     GDN_STATUS_OK);
    write_file(out, "include/gdn_common.clh", hdr);
    gdn__free(hdr);
    if (fill_text)
        write_file(out, "core/fill.cl", fill_text);
    return out;
}

/* A fill kernel that writes value + EXTRA (EXTRA defaults to 1). */
static const char k_fill_plus[] =
    "/* test kernel: x[i] = value + EXTRA */\n"
    "#include \"gdn_common.clh\"\n"
    "#ifndef EXTRA\n"
    "#define EXTRA 1\n"
    "#endif\n"
    "__kernel __attribute__((reqd_work_group_size(WG_SIZE, 1, 1)))\n"
    "void gdn_fill_f32(__global float *x, int n_hi, int n_lo, float value)\n"
    "{\n"
    "    const ulong n = ((ulong)n_hi << 31) + (ulong)n_lo;\n"
    "    for (ulong i = get_global_id(0); i < n; i += get_global_size(0))\n"
    "        x[i] = value + (float)(EXTRA);\n"
    "}\n";

/* A fill kernel with an error on line 9. */
static const char k_fill_broken[] =
    "/* test kernel with a syntax error */\n"
    "#include \"gdn_common.clh\"\n"
    "__kernel __attribute__((reqd_work_group_size(WG_SIZE, 1, 1)))\n"
    "void gdn_fill_f32(__global float *x, int n_hi, int n_lo, float value)\n"
    "{\n"
    "    const ulong n = ((ulong)n_hi << 31) + (ulong)n_lo;\n"
    "    for (ulong i = get_global_id(0); i < n; i += get_global_size(0))\n"
    "        x[i] = value +\n"
    "            gdn_test_undeclared_identifier;\n"
    "}\n";

/* ================================================================ context */

START_TEST(context_null_params)
{
    gdn_context    *ctx = (gdn_context *)&ctx;
    gdn_device_info info;

    ck_assert_int_eq(gdn_context_create(NULL, &ctx), GDN_STATUS_OK);
    ck_assert_ptr_nonnull(ctx);
    ck_assert_str_eq(gdn_context_last_error(ctx), "");
    memset(&info, 0xab, sizeof(info));
    CTX_OK(ctx, gdn_context_device_info(ctx, &info));
    ck_assert(info.name[0] != '\0');
    ck_assert_int_eq(gdn_context_finish(ctx), GDN_STATUS_OK);
    ck_assert_ptr_nonnull(gdn_context_cl_queue(ctx));
    ck_assert_ptr_nonnull(gdn_context_cl_context(ctx));
    ck_assert_ptr_nonnull(gdn_context_cl_device(ctx));
    gdn_context_destroy(ctx);

    ck_assert_int_eq(gdn_context_create(NULL, NULL), GDN_STATUS_INVALID_ARGUMENT);
}
END_TEST

START_TEST(context_params_defaults)
{
    gdn_context_params p;
    size_t             i;
    memset(&p, 0x5a, sizeof(p));
    gdn_context_params_init(&p);
    ck_assert_int_eq(p.device_index, -1);
    ck_assert_ptr_null(p.kernel_dir);
    ck_assert_ptr_null(p.build_options);
    ck_assert_ptr_null(p.cache_dir);
    ck_assert_int_eq(p.disk_cache, 1);
    ck_assert(p.log_fn == NULL);
    ck_assert_int_eq(p.log_level, -1);
    for (i = 0; i < GDN_ARRAY_SIZE(p.reserved); i++)
        ck_assert_uint_eq(p.reserved[i], 0);
    gdn_context_params_init(NULL); /* no crash */
}
END_TEST

START_TEST(context_reserved_nonzero)
{
    gdn_context_params p;
    gdn_context       *ctx = (gdn_context *)&p;
    struct logcap      cap = {0};

    gdn_context_params_init(&p);
    p.reserved[13] = 1;
    p.log_fn       = log_capture;
    p.log_user     = &cap;
    ck_assert_int_eq(gdn_context_create(&p, &ctx), GDN_STATUS_INVALID_ARGUMENT);
    ck_assert_ptr_null(ctx);
    /* no context holds the message: it went to the caller's log callback */
    ck_assert_int_eq(cap.count[GDN_LOG_LEVEL_ERROR], 1);
    ck_assert_ptr_nonnull(strstr(logcap_text(&cap), "reserved must be zero"));
    /* tuning settings out of range */
    gdn_context_params_init(&p);
    p.log_fn    = log_capture;
    p.log_user  = &cap;
    p.tune_mode = 7;
    ck_assert_int_eq(gdn_context_create(&p, &ctx), GDN_STATUS_INVALID_ARGUMENT);
    ck_assert_ptr_nonnull(strstr(logcap_text(&cap), "tune_mode"));
    p.tune_mode     = GDN_TUNE_MODE_LAZY;
    p.tune_budget_s = -1.0f;
    ck_assert_int_eq(gdn_context_create(&p, &ctx), GDN_STATUS_INVALID_ARGUMENT);
    logcap_free(&cap);
}
END_TEST

START_TEST(context_bad_device_index)
{
    gdn_context_params p;
    gdn_context       *ctx = (gdn_context *)&p;
    struct logcap      cap = {0};
    int                n   = device_count();
    const int32_t      bad[] = {n, n + 1, INT32_MAX};
    size_t             i;

    gdn_context_params_init(&p);
    p.log_fn   = log_capture;
    p.log_user = &cap;
    for (i = 0; i < GDN_ARRAY_SIZE(bad); i++) {
        p.device_index = bad[i];
        ck_assert_int_eq(gdn_context_create(&p, &ctx), GDN_STATUS_INVALID_ARGUMENT);
        ck_assert_ptr_null(ctx);
    }
    ck_assert_int_eq(cap.count[GDN_LOG_LEVEL_ERROR], 3);
    ck_assert_ptr_nonnull(strstr(logcap_text(&cap), "out of range"));
    /* every valid index works */
    for (i = 0; i < (size_t)n; i++) {
        gdn_device_info want, got;
        p.device_index = (int32_t)i;
        ck_assert_int_eq(gdn_context_create(&p, &ctx), GDN_STATUS_OK);
        ck_assert_int_eq(gdn_device_get_info((int32_t)i, &want), GDN_STATUS_OK);
        ck_assert_int_eq(gdn_context_device_info(ctx, &got), GDN_STATUS_OK);
        ck_assert_int_eq(memcmp(&want, &got, sizeof(want)), 0);
        gdn_context_destroy(ctx);
    }
    logcap_free(&cap);
}
END_TEST

START_TEST(device_list)
{
    int             n = device_count(), i;
    gdn_device_info info;
    int32_t         def = -1;

    for (i = 0; i < n; i++) {
        size_t j;
        ck_assert_int_eq(gdn_device_get_info(i, &info), GDN_STATUS_OK);
        ck_assert_msg(info.name[0] != '\0', "device %d has no name", i);
        ck_assert(info.platform_name[0] != '\0');
        ck_assert_uint_gt(info.compute_units, 0);
        ck_assert_uint_gt(info.max_work_group_size, 0);
        ck_assert_uint_gt(info.local_mem_bytes, 0);
        ck_assert_uint_gt(info.global_mem_bytes, 0);
        ck_assert_uint_gt(info.max_alloc_bytes, 0);
        ck_assert(info.flags & (GDN_DEVICE_FLAG_CPU | GDN_DEVICE_FLAG_GPU));
        ck_assert_int_ge(info.platform_index, 0);
        ck_assert_int_ge(info.device_index, 0);
        for (j = 0; j < GDN_ARRAY_SIZE(info.reserved); j++)
            ck_assert_uint_eq(info.reserved[j], 0);
        printf("device %d = %d:%d '%s' (%s)\n", i, (int)info.platform_index,
               (int)info.device_index, info.name, info.platform_name);
    }
    ck_assert_int_eq(gdn_device_get_info(-1, &info), GDN_STATUS_INVALID_ARGUMENT);
    ck_assert_int_eq(gdn_device_get_info(n, &info), GDN_STATUS_INVALID_ARGUMENT);
    ck_assert_int_eq(gdn_device_get_info(0, NULL), GDN_STATUS_INVALID_ARGUMENT);
    ck_assert_int_eq(gdn_device_count(NULL), GDN_STATUS_INVALID_ARGUMENT);
    ck_assert_int_eq(gdn_device_default(NULL), GDN_STATUS_INVALID_ARGUMENT);
    env_put("GDN_DEVICE", NULL);
    ck_assert_int_eq(gdn_device_default(&def), GDN_STATUS_OK);
    ck_assert_int_ge(def, 0);
    ck_assert_int_lt(def, n);
    /* without GDN_DEVICE: the first GPU, else the first device */
    for (i = 0; i < n; i++) {
        ck_assert_int_eq(gdn_device_get_info(i, &info), GDN_STATUS_OK);
        if (info.flags & GDN_DEVICE_FLAG_GPU)
            break;
    }
    ck_assert_int_eq(def, i < n ? i : 0);
    env_restore();
}
END_TEST

/* Create a context with GDN_DEVICE = sel and check which device it got
 * (want >= 0) or that it fails with NO_DEVICE (want < 0). */
static void check_selector(const char *sel, int want)
{
    gdn_context   *ctx = NULL;
    struct logcap  cap = {0};
    gdn_context_params p;
    int32_t        idx = -7;
    gdn_status     st;

    env_put("GDN_DEVICE", sel);
    gdn_context_params_init(&p);
    p.log_fn   = log_capture;
    p.log_user = &cap;
    st         = gdn_context_create(&p, &ctx);
    if (want < 0) {
        ck_assert_msg(st == GDN_STATUS_NO_DEVICE, "GDN_DEVICE='%s': %s", sel, gdn_status_name(st));
        ck_assert_ptr_null(ctx);
        ck_assert_msg(strstr(logcap_text(&cap), "matches no device") != NULL &&
                          strstr(logcap_text(&cap), sel) != NULL,
                      "GDN_DEVICE='%s': log is '%s'", sel, logcap_text(&cap));
        ck_assert_int_eq(gdn_device_default(&idx), GDN_STATUS_NO_DEVICE);
        /* an explicit device_index ignores GDN_DEVICE */
        p.device_index = 0;
        ck_assert_int_eq(gdn_context_create(&p, &ctx), GDN_STATUS_OK);
        gdn_context_destroy(ctx);
    } else {
        gdn_device_info want_info, got;
        ck_assert_msg(st == GDN_STATUS_OK, "GDN_DEVICE='%s': %s\n%s", sel, gdn_status_name(st),
                      logcap_text(&cap));
        ck_assert_int_eq(gdn_device_get_info(want, &want_info), GDN_STATUS_OK);
        ck_assert_int_eq(gdn_context_device_info(ctx, &got), GDN_STATUS_OK);
        ck_assert_msg(got.platform_index == want_info.platform_index &&
                          got.device_index == want_info.device_index,
                      "GDN_DEVICE='%s' chose %d:%d, expected %d:%d", sel, (int)got.platform_index,
                      (int)got.device_index, (int)want_info.platform_index,
                      (int)want_info.device_index);
        ck_assert_int_eq(gdn_device_default(&idx), GDN_STATUS_OK);
        ck_assert_int_eq(idx, want);
        gdn_context_destroy(ctx);
    }
    env_restore();
    logcap_free(&cap);
}

START_TEST(device_select_env)
{
    int  n = device_count(), i;
    char sel[160];

    for (i = 0; i < n; i++) {
        gdn_device_info info;
        int             j, first = -1;
        ck_assert_int_eq(gdn_device_get_info(i, &info), GDN_STATUS_OK);
        /* "platform:device" */
        snprintf(sel, sizeof(sel), "%d:%d", (int)info.platform_index, (int)info.device_index);
        check_selector(sel, i);
        /* flat index */
        snprintf(sel, sizeof(sel), "%d", i);
        check_selector(sel, i);
        /* a case-changed substring of the name: the first device whose name
         * or platform contains it */
        snprintf(sel, sizeof(sel), "%s", info.name);
        if (strlen(sel) > 6)
            sel[6] = '\0';
        for (j = 0; sel[j]; j++)
            sel[j] = (char)(j % 2 ? toupper((unsigned char)sel[j]) : tolower((unsigned char)sel[j]));
        for (j = 0; j < n && first < 0; j++) {
            gdn_device_info o;
            ck_assert_int_eq(gdn_device_get_info(j, &o), GDN_STATUS_OK);
            if (gdn__strcasestr(o.name, sel) || gdn__strcasestr(o.platform_name, sel))
                first = j;
        }
        ck_assert_int_ge(first, 0);
        check_selector(sel, first);
        /* the full name */
        check_selector(info.name, i);
    }
    /* matches nothing */
    check_selector("no-such-device-xyzzy", -1);
    snprintf(sel, sizeof(sel), "%d", n);
    check_selector(sel, -1);
    check_selector("99:0", -1);
    check_selector("0:99", -1);
    check_selector("-1", -1);
}
END_TEST

START_TEST(device_select_empty_env)
{
    /* GDN_DEVICE="" counts as unset */
    int32_t def_unset = -1, def_empty = -1;
    env_put("GDN_DEVICE", NULL);
    ck_assert_int_eq(gdn_device_default(&def_unset), GDN_STATUS_OK);
    env_restore();
    env_put("GDN_DEVICE", "");
    ck_assert_int_eq(gdn_device_default(&def_empty), GDN_STATUS_OK);
    ck_assert_int_eq(def_unset, def_empty);
    env_restore();
}
END_TEST

/* ================================================================ tensors */

START_TEST(tensor_create_bad)
{
    gdn_context   *ctx   = gdn_test_ctx;
    gdn_tensor    *t     = (gdn_tensor *)&ctx;
    const int64_t  ok[4] = {2, 3, 4, 5};
    const int64_t  neg[3] = {2, -3, 4};
    const int64_t  neg0[1] = {INT64_MIN};

    ck_assert_str_eq(gdn_context_last_error(ctx), "");
    /* ndim */
    EXPECT_STATUS(ctx, gdn_tensor_create(ctx, GDN_DTYPE_F32, 0, ok, &t),
                  GDN_STATUS_INVALID_ARGUMENT, "gdn_tensor_create: ndim 0 not in [1, 4]");
    ck_assert_ptr_null(t);
    t = (gdn_tensor *)&ctx;
    EXPECT_STATUS(ctx, gdn_tensor_create(ctx, GDN_DTYPE_F32, 5, ok, &t),
                  GDN_STATUS_INVALID_ARGUMENT, "ndim 5 not in [1, 4]");
    ck_assert_ptr_null(t);
    EXPECT_STATUS(ctx, gdn_tensor_create(ctx, GDN_DTYPE_F32, -1, ok, &t),
                  GDN_STATUS_INVALID_ARGUMENT, "ndim -1 not in [1, 4]");
    /* negative dims */
    t = (gdn_tensor *)&ctx;
    EXPECT_STATUS(ctx, gdn_tensor_create(ctx, GDN_DTYPE_F32, 3, neg, &t),
                  GDN_STATUS_INVALID_ARGUMENT, "shape[1] = -3 is negative");
    ck_assert_ptr_null(t);
    EXPECT_STATUS(ctx, gdn_tensor_create(ctx, GDN_DTYPE_I32, 1, neg0, &t),
                  GDN_STATUS_INVALID_ARGUMENT, "shape[0] = -9223372036854775808 is negative");
    /* NULL shape */
    EXPECT_STATUS(ctx, gdn_tensor_create(ctx, GDN_DTYPE_F32, 2, NULL, &t),
                  GDN_STATUS_INVALID_ARGUMENT, "shape is NULL");
    /* unknown dtype */
    EXPECT_STATUS(ctx, gdn_tensor_create(ctx, (gdn_dtype)99, 2, ok, &t),
                  GDN_STATUS_INVALID_ARGUMENT, "unknown dtype 99");
    EXPECT_STATUS(ctx, gdn_tensor_create(ctx, (gdn_dtype)-1, 2, ok, &t),
                  GDN_STATUS_INVALID_ARGUMENT, "unknown dtype -1");
    /* NULL out, NULL context */
    EXPECT_STATUS(ctx, gdn_tensor_create(ctx, GDN_DTYPE_F32, 2, ok, NULL),
                  GDN_STATUS_INVALID_ARGUMENT, "out is NULL");
    t = (gdn_tensor *)&ctx;
    ck_assert_int_eq(gdn_tensor_create(NULL, GDN_DTYPE_F32, 2, ok, &t),
                     GDN_STATUS_INVALID_ARGUMENT);
    ck_assert_ptr_null(t);
    /* still usable after all that */
    CTX_OK(ctx, gdn_tensor_create(ctx, GDN_DTYPE_F32, 4, ok, &t));
    gdn_tensor_destroy(t);
}
END_TEST

START_TEST(tensor_create_too_big)
{
    gdn_context    *ctx = gdn_test_ctx;
    gdn_tensor     *t   = (gdn_tensor *)&ctx;
    gdn_device_info info;
    const int64_t   elems_overflow[2] = {(int64_t)1 << 40, (int64_t)1 << 40};
    const int64_t   bytes_overflow[1] = {(int64_t)1 << 62};  /* 2^62 elements fit, 2^64 bytes do not */
    const int64_t   huge[4]           = {INT64_MAX, INT64_MAX, 1, 1};
    int64_t         over_alloc[1];

    EXPECT_STATUS(ctx, gdn_tensor_create(ctx, GDN_DTYPE_F32, 2, elems_overflow, &t),
                  GDN_STATUS_OUT_OF_DEVICE_MEMORY, "element count overflows");
    ck_assert_ptr_null(t);
    EXPECT_STATUS(ctx, gdn_tensor_create(ctx, GDN_DTYPE_F32, 1, bytes_overflow, &t),
                  GDN_STATUS_OUT_OF_DEVICE_MEMORY, "byte size overflows");
    ck_assert_ptr_null(t);
    EXPECT_STATUS(ctx, gdn_tensor_create(ctx, GDN_DTYPE_BF16, 4, huge, &t),
                  GDN_STATUS_OUT_OF_DEVICE_MEMORY, "overflows");
    /* fits size_t, but is larger than the device's largest allocation */
    CTX_OK(ctx, gdn_context_device_info(ctx, &info));
    over_alloc[0] = (int64_t)(info.max_alloc_bytes / 4 + 1);
    EXPECT_STATUS(ctx, gdn_tensor_create(ctx, GDN_DTYPE_F32, 1, over_alloc, &t),
                  GDN_STATUS_OUT_OF_DEVICE_MEMORY, "exceeds the device's largest allocation");
    ck_assert_ptr_null(t);
    /* a zero dimension makes an empty tensor, even next to a huge one */
    {
        const int64_t empty[2] = {0, INT64_MAX};
        CTX_OK(ctx, gdn_tensor_create(ctx, GDN_DTYPE_F32, 2, empty, &t));
        ck_assert_int_eq(gdn_tensor_numel(t), 0);
        ck_assert_uint_eq(gdn_tensor_nbytes(t), 0);
        gdn_tensor_destroy(t);
    }
}
END_TEST

START_TEST(tensor_accessors)
{
    gdn_context  *ctx      = gdn_test_ctx;
    gdn_tensor   *t        = NULL;
    int64_t       shape[3] = {2, 3, 4};

    CTX_OK(ctx, gdn_tensor_create(ctx, GDN_DTYPE_I32, 3, shape, &t));
    shape[0] = 100; /* the shape was copied */
    ck_assert_int_eq(gdn_tensor_dtype(t), GDN_DTYPE_I32);
    ck_assert_int_eq(gdn_tensor_ndim(t), 3);
    ck_assert_int_eq(gdn_tensor_dim(t, 0), 2);
    ck_assert_int_eq(gdn_tensor_dim(t, 1), 3);
    ck_assert_int_eq(gdn_tensor_dim(t, 2), 4);
    ck_assert_int_eq(gdn_tensor_dim(t, 3), 0);
    ck_assert_int_eq(gdn_tensor_dim(t, -1), 0);
    ck_assert_int_eq(gdn_tensor_numel(t), 24);
    ck_assert_uint_eq(gdn_tensor_nbytes(t), 96);
    ck_assert_ptr_eq(gdn_tensor_context(t), ctx);
    ck_assert_ptr_nonnull(gdn_tensor_cl_mem(t));
    gdn_tensor_destroy(t);
    {
        const int64_t s1[1] = {7};
        CTX_OK(ctx, gdn_tensor_create(ctx, GDN_DTYPE_F16, 1, s1, &t));
        ck_assert_uint_eq(gdn_tensor_nbytes(t), 14);
        gdn_tensor_destroy(t);
        CTX_OK(ctx, gdn_tensor_create(ctx, GDN_DTYPE_BF16, 1, s1, &t));
        ck_assert_uint_eq(gdn_tensor_nbytes(t), 14);
        gdn_tensor_destroy(t);
    }
}
END_TEST

START_TEST(tensor_read_write)
{
    gdn_context  *ctx      = gdn_test_ctx;
    gdn_tensor   *t        = NULL;
    const int64_t shape[2] = {4, 4};
    float         in[16], out[16], sentinel[16];
    int           i;

    for (i = 0; i < 16; i++)
        in[i] = (float)i * 0.5f - 3.0f;
    CTX_OK(ctx, gdn_tensor_create(ctx, GDN_DTYPE_F32, 2, shape, &t));
    CTX_OK(ctx, gdn_tensor_write(t, in, 0, sizeof(in)));
    memset(out, 0, sizeof(out));
    CTX_OK(ctx, gdn_tensor_read(t, out, 0, sizeof(out)));
    ck_assert_int_eq(memcmp(in, out, sizeof(in)), 0);
    /* partial write and read at an offset */
    {
        const float two[2] = {100.0f, 200.0f};
        float       got[3];
        CTX_OK(ctx, gdn_tensor_write(t, two, 5 * sizeof(float), sizeof(two)));
        CTX_OK(ctx, gdn_tensor_read(t, got, 4 * sizeof(float), sizeof(got)));
        ck_assert(got[0] == in[4] && got[1] == 100.0f && got[2] == 200.0f);
        /* the last byte exactly */
        CTX_OK(ctx, gdn_tensor_read(t, got, 63, 1));
        CTX_OK(ctx, gdn_tensor_write(t, in, 0, sizeof(in)));
    }

    /* out of range: offset + nbytes > size, and offset + nbytes overflowing.
     * The host data and the tensor stay untouched. */
    for (i = 0; i < 16; i++)
        sentinel[i] = -777.0f;
    {
        static const struct {
            size_t offset, nbytes;
        } bad[] = {{0, 65}, {60, 8}, {64, 1}, {65, 0}, {1, 64}, {SIZE_MAX, 1}, {1, SIZE_MAX},
                   {SIZE_MAX - 3, 8}, {SIZE_MAX, SIZE_MAX}};
        size_t j;
        for (j = 0; j < GDN_ARRAY_SIZE(bad); j++) {
            float junk[32];
            for (i = 0; i < 32; i++)
                junk[i] = 9999.0f;
            memcpy(out, sentinel, sizeof(out));
            EXPECT_STATUS(ctx, gdn_tensor_read(t, out, bad[j].offset, bad[j].nbytes),
                          GDN_STATUS_INVALID_ARGUMENT, "outside the 64-byte tensor");
            ck_assert_ptr_nonnull(strstr(gdn_context_last_error(ctx), "gdn_tensor_read"));
            ck_assert_int_eq(memcmp(out, sentinel, sizeof(out)), 0);
            if (bad[j].nbytes <= sizeof(junk)) {
                EXPECT_STATUS(ctx, gdn_tensor_write(t, junk, bad[j].offset, bad[j].nbytes),
                              GDN_STATUS_INVALID_ARGUMENT, "outside the 64-byte tensor");
                ck_assert_ptr_nonnull(strstr(gdn_context_last_error(ctx), "gdn_tensor_write"));
            }
        }
        /* an overflowing nbytes with a real (short) buffer: never touched
         * because the range is checked first */
        EXPECT_STATUS(ctx, gdn_tensor_write(t, sentinel, 8, SIZE_MAX - 4),
                      GDN_STATUS_INVALID_ARGUMENT, "outside");
    }
    CTX_OK(ctx, gdn_tensor_read(t, out, 0, sizeof(out)));
    ck_assert_int_eq(memcmp(in, out, sizeof(in)), 0);

    /* NULL host pointers: an error unless nbytes == 0 */
    EXPECT_STATUS(ctx, gdn_tensor_write(t, NULL, 0, 4), GDN_STATUS_INVALID_ARGUMENT,
                  "gdn_tensor_write: host pointer is NULL");
    EXPECT_STATUS(ctx, gdn_tensor_read(t, NULL, 0, 4), GDN_STATUS_INVALID_ARGUMENT,
                  "gdn_tensor_read: host pointer is NULL");
    CTX_OK(ctx, gdn_tensor_write(t, NULL, 0, 0));
    CTX_OK(ctx, gdn_tensor_read(t, NULL, 64, 0));
    gdn_tensor_destroy(t);
}
END_TEST

START_TEST(tensor_empty)
{
    gdn_context  *ctx      = gdn_test_ctx;
    gdn_tensor   *t        = NULL;
    const int64_t shape[3] = {3, 0, 2};
    float         x        = 1.0f;

    CTX_OK(ctx, gdn_tensor_create(ctx, GDN_DTYPE_F32, 3, shape, &t));
    ck_assert_int_eq(gdn_tensor_numel(t), 0);
    ck_assert_uint_eq(gdn_tensor_nbytes(t), 0);
    CTX_OK(ctx, gdn_tensor_write(t, &x, 0, 0));
    CTX_OK(ctx, gdn_tensor_read(t, &x, 0, 0));
    CTX_OK(ctx, gdn_tensor_fill(t, 2.0f));
    EXPECT_STATUS(ctx, gdn_tensor_write(t, &x, 0, 1), GDN_STATUS_INVALID_ARGUMENT,
                  "outside the 0-byte tensor");
    ck_assert(x == 1.0f);
    gdn_tensor_destroy(t);
}
END_TEST

START_TEST(nulls_everywhere)
{
    float           x = 0;
    gdn_device_info info;
    gdn_context    *ctx = gdn_test_ctx;
    gdn_tensor     *t   = (gdn_tensor *)&x;

    gdn_context_destroy(NULL);
    gdn_tensor_destroy(NULL);
    ck_assert_str_eq(gdn_context_last_error(NULL), "");
    ck_assert_int_eq(gdn_context_finish(NULL), GDN_STATUS_INVALID_ARGUMENT);
    ck_assert_int_eq(gdn_context_device_info(NULL, &info), GDN_STATUS_INVALID_ARGUMENT);
    ck_assert_int_eq(gdn_context_device_info(ctx, NULL), GDN_STATUS_INVALID_ARGUMENT);
    ck_assert_int_eq(gdn_tensor_write(NULL, &x, 0, 4), GDN_STATUS_INVALID_ARGUMENT);
    ck_assert_int_eq(gdn_tensor_read(NULL, &x, 0, 4), GDN_STATUS_INVALID_ARGUMENT);
    ck_assert_int_eq(gdn_tensor_fill(NULL, 1.0f), GDN_STATUS_INVALID_ARGUMENT);
    ck_assert_int_eq(gdn_tensor_dtype(NULL), GDN_DTYPE_F32);
    ck_assert_int_eq(gdn_tensor_ndim(NULL), 0);
    ck_assert_int_eq(gdn_tensor_dim(NULL, 0), 0);
    ck_assert_int_eq(gdn_tensor_numel(NULL), 0);
    ck_assert_uint_eq(gdn_tensor_nbytes(NULL), 0);
    ck_assert_ptr_null(gdn_tensor_context(NULL));
    ck_assert_ptr_null(gdn_tensor_cl_mem(NULL));
    ck_assert_ptr_null(gdn_context_cl_queue(NULL));
    ck_assert_ptr_null(gdn_context_cl_device(NULL));
    ck_assert_ptr_null(gdn_context_cl_context(NULL));
    ck_assert_int_eq(gdn_tensor_wrap_cl_mem(NULL, NULL, 0, GDN_DTYPE_F32, 1, NULL, &t),
                     GDN_STATUS_INVALID_ARGUMENT);
    ck_assert_ptr_null(t);
    ck_assert_int_eq(gdn_tensor_wrap_cl_mem(ctx, NULL, 0, GDN_DTYPE_F32, 1, NULL, NULL),
                     GDN_STATUS_INVALID_ARGUMENT);
    t = (gdn_tensor *)&x;
    EXPECT_STATUS(ctx, gdn_tensor_wrap_cl_mem(ctx, NULL, 0, GDN_DTYPE_F32, 1, NULL, &t),
                  GDN_STATUS_INVALID_ARGUMENT, "mem is NULL");
    ck_assert_ptr_null(t);
    {
        gdn_context *c = (gdn_context *)&x;
        ck_assert_int_eq(gdn_context_create_from_cl(NULL, NULL, NULL, NULL, &c),
                         GDN_STATUS_INVALID_ARGUMENT);
        ck_assert_ptr_null(c);
        ck_assert_int_eq(gdn_context_create_from_cl(NULL, NULL, NULL, NULL, NULL),
                         GDN_STATUS_INVALID_ARGUMENT);
    }
}
END_TEST

/* ================================================================ fill */

START_TEST(tensor_fill)
{
    gdn_context *ctx = gdn_test_ctx;
    gdn_tensor  *t   = NULL, *ti = NULL;
    /* more elements than one pass of the grid-stride loop covers
     * (256 x 4096), and not a multiple of the work-group size */
    const int64_t big[1]   = {256 * 4096 + 1000 + 3};
    const int64_t small[2] = {3, 5};
    int           builds;

    CTX_OK(ctx, gdn_tensor_create(ctx, GDN_DTYPE_F32, 2, small, &t));
    CTX_OK(ctx, gdn_tensor_fill(t, -2.5f));
    expect_all(t, -2.5f, "fill small");
    builds = ctx->stats.builds_from_source + ctx->stats.disk_hits;
    ck_assert_int_eq(builds, 1);
    CTX_OK(ctx, gdn_tensor_fill(t, 7.0f));
    expect_all(t, 7.0f, "fill small again");
    /* the second fill reused the program from the in-memory cache */
    ck_assert_int_eq(ctx->stats.builds_from_source + ctx->stats.disk_hits, 1);
    ck_assert_int_ge(ctx->stats.memory_hits, 1);
    {
        float *f;
        CTX_OK(ctx, gdn_tensor_fill(t, NAN));
        f = read_floats(t);
        ck_assert(isnan(f[0]) && isnan(f[14]));
        free(f);
    }
    gdn_tensor_destroy(t);

    CTX_OK(ctx, gdn_tensor_create(ctx, GDN_DTYPE_F32, 1, big, &t));
    CTX_OK(ctx, gdn_tensor_fill(t, 0.0f));
    CTX_OK(ctx, gdn_tensor_fill(t, 1.25f));
    CTX_OK(ctx, gdn_context_finish(ctx));
    expect_all(t, 1.25f, "fill big");
    gdn_tensor_destroy(t);

    /* only F32 */
    CTX_OK(ctx, gdn_tensor_create(ctx, GDN_DTYPE_I32, 2, small, &ti));
    EXPECT_STATUS(ctx, gdn_tensor_fill(ti, 1.0f), GDN_STATUS_SHAPE_MISMATCH,
                  "gdn_tensor_fill: tensor is not F32");
    gdn_tensor_destroy(ti);
}
END_TEST

/* ================================================================ lifetime and logging */

START_TEST(destroy_context_first)
{
    struct logcap cap = {0};
    gdn_context  *ctx = ctx_with_log(&cap, -1);
    gdn_tensor   *a = NULL, *b = NULL;
    const int64_t shape[1] = {64};

    CTX_OK(ctx, gdn_tensor_create(ctx, GDN_DTYPE_F32, 1, shape, &a));
    CTX_OK(ctx, gdn_tensor_create(ctx, GDN_DTYPE_F32, 1, shape, &b));
    CTX_OK(ctx, gdn_tensor_fill(a, 3.0f));
    ck_assert_int_eq(cap.count[GDN_LOG_LEVEL_WARN], 0);
    gdn_context_destroy(ctx); /* wrong order: logged, nothing freed yet */
    ck_assert_int_eq(cap.count[GDN_LOG_LEVEL_WARN], 1);
    ck_assert_msg(strstr(logcap_text(&cap),
                         "[1] gdn_context_destroy: 2 objects created from this context are still "
                         "alive") != NULL,
                  "log: %s", logcap_text(&cap));
    /* the tensors are still valid and usable until destroyed */
    expect_all(a, 3.0f, "tensor after its context was destroyed");
    gdn_tensor_destroy(a);
    gdn_tensor_destroy(b); /* the last child: the context goes now */
    ck_assert_int_eq(cap.count[GDN_LOG_LEVEL_WARN], 1);
    logcap_free(&cap);
}
END_TEST

START_TEST(default_log_to_stderr)
{
    /* without a callback, warnings go to stderr as "gdn: warning: ..." */
    char          path[300], *text = NULL;
    size_t        size;
    int           fd, saved;
    gdn_context  *ctx = NULL;
    gdn_tensor   *t   = NULL;
    const int64_t shape[1] = {4};

    tmp_make();
    snprintf(path, sizeof(path), "%s/stderr.txt", g_tmp);
    fflush(stderr);
    saved = dup(2);
    fd    = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_ge(dup2(fd, 2), 0);
    close(fd);
    env_put("GDN_LOG", NULL);
    ck_assert_int_eq(gdn_context_create(NULL, &ctx), GDN_STATUS_OK);
    ck_assert_int_eq(gdn_tensor_create(ctx, GDN_DTYPE_F32, 1, shape, &t), GDN_STATUS_OK);
    gdn_context_destroy(ctx);
    gdn_tensor_destroy(t);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    env_restore();
    ck_assert_int_eq(gdn__file_read(path, &text, &size), GDN_STATUS_OK);
    ck_assert_msg(strstr(text, "gdn: warning: gdn_context_destroy: 1 objects") != NULL,
                  "stderr was: %s", text);
    ck_assert_msg(strstr(text, "gdn: debug") == NULL && strstr(text, "gdn: info") == NULL,
                  "only warnings by default; stderr was: %s", text);
    gdn__free(text);
    rm_rf(g_tmp);
}
END_TEST

START_TEST(log_levels)
{
    struct logcap cap = {0};
    gdn_context  *ctx;
    gdn_tensor   *t = NULL;
    const int64_t shape[1] = {4};

    /* DEBUG through params: the context's INFO line, then build and error
     * details at DEBUG */
    env_put("GDN_LOG", NULL);
    ctx = ctx_with_log(&cap, GDN_LOG_LEVEL_DEBUG);
    ck_assert_int_ge(cap.count[GDN_LOG_LEVEL_INFO], 1);
    ck_assert_ptr_nonnull(strstr(logcap_text(&cap), "[2] context on '"));
    CTX_OK(ctx, gdn_tensor_create(ctx, GDN_DTYPE_F32, 1, shape, &t));
    CTX_OK(ctx, gdn_tensor_fill(t, 1.0f));
    ck_assert_msg(strstr(logcap_text(&cap), "[3] program core/fill.cl: ") != NULL,
                  "log: %s", logcap_text(&cap));
    ck_assert_int_eq(gdn_tensor_fill(NULL, 0), GDN_STATUS_INVALID_ARGUMENT);
    {
        gdn_tensor *bad = NULL;
        ck_assert_int_eq(gdn_tensor_create(ctx, GDN_DTYPE_F32, 0, shape, &bad),
                         GDN_STATUS_INVALID_ARGUMENT);
    }
    ck_assert_ptr_nonnull(strstr(logcap_text(&cap), "[3] error GDN_STATUS_INVALID_ARGUMENT: "
                                                    "gdn_tensor_create: ndim 0"));
    gdn_tensor_destroy(t);
    gdn_context_destroy(ctx);
    logcap_free(&cap);

    /* ERROR only: the wrong-order warning is dropped */
    ctx = ctx_with_log(&cap, GDN_LOG_LEVEL_ERROR);
    CTX_OK(ctx, gdn_tensor_create(ctx, GDN_DTYPE_F32, 1, shape, &t));
    gdn_context_destroy(ctx);
    gdn_tensor_destroy(t);
    ck_assert_msg(cap.text.len == 0, "log: %s", logcap_text(&cap));
    logcap_free(&cap);

    /* default (WARN): nothing at INFO or DEBUG */
    ctx = ctx_with_log(&cap, -1);
    CTX_OK(ctx, gdn_tensor_create(ctx, GDN_DTYPE_F32, 1, shape, &t));
    CTX_OK(ctx, gdn_tensor_fill(t, 1.0f));
    gdn_tensor_destroy(t);
    gdn_context_destroy(ctx);
    ck_assert_msg(cap.text.len == 0, "log: %s", logcap_text(&cap));
    logcap_free(&cap);
    env_restore();
}
END_TEST

START_TEST(log_env)
{
    struct logcap cap = {0};
    gdn_context  *ctx;
    gdn_tensor   *t = NULL;
    const int64_t shape[1] = {4};

    /* GDN_LOG=debug raises the default level */
    env_put("GDN_LOG", "debug");
    ctx = ctx_with_log(&cap, -1);
    CTX_OK(ctx, gdn_tensor_create(ctx, GDN_DTYPE_F32, 1, shape, &t));
    CTX_OK(ctx, gdn_tensor_fill(t, 1.0f));
    gdn_tensor_destroy(t);
    gdn_context_destroy(ctx);
    ck_assert_int_ge(cap.count[GDN_LOG_LEVEL_INFO], 1);
    ck_assert_int_ge(cap.count[GDN_LOG_LEVEL_DEBUG], 1);
    ck_assert_msg(strstr(logcap_text(&cap), "[3] program core/fill.cl: ") != NULL, "log: %s",
                  logcap_text(&cap));
    logcap_free(&cap);

    /* GDN_LOG=info: INFO but no DEBUG */
    env_restore();
    env_put("GDN_LOG", "INFO");
    ctx = ctx_with_log(&cap, -1);
    gdn_context_destroy(ctx);
    ck_assert_int_ge(cap.count[GDN_LOG_LEVEL_INFO], 1);
    ck_assert_int_eq(cap.count[GDN_LOG_LEVEL_DEBUG], 0);
    logcap_free(&cap);

    /* an explicit params.log_level wins over GDN_LOG */
    env_restore();
    env_put("GDN_LOG", "debug");
    ctx = ctx_with_log(&cap, GDN_LOG_LEVEL_WARN);
    gdn_context_destroy(ctx);
    ck_assert_msg(cap.text.len == 0, "log: %s", logcap_text(&cap));
    logcap_free(&cap);
    env_restore();
}
END_TEST

/* ================================================================ interop */

START_TEST(interop_context_from_cl)
{
    cl_device_id     dev = cl_default_device();
    cl_int           err;
    cl_context       c = clCreateContext(NULL, 1, &dev, NULL, NULL, &err);
    cl_command_queue q;
    gdn_context     *ctx = NULL;
    gdn_tensor      *t   = NULL;
    const int64_t    shape[1] = {1000};
    cl_uint          refs_before = 0, refs_after = 0;

    ck_assert_int_eq(err, CL_SUCCESS);
    q = clCreateCommandQueue(c, dev, 0, &err);
    ck_assert_int_eq(err, CL_SUCCESS);
    clGetContextInfo(c, CL_CONTEXT_REFERENCE_COUNT, sizeof(refs_before), &refs_before, NULL);
    ck_assert_int_eq(gdn_context_create_from_cl(c, dev, q, NULL, &ctx), GDN_STATUS_OK);
    clGetContextInfo(c, CL_CONTEXT_REFERENCE_COUNT, sizeof(refs_after), &refs_after, NULL);
    ck_assert_uint_gt(refs_after, refs_before); /* retained */
    ck_assert_ptr_eq(gdn_context_cl_context(ctx), c);
    ck_assert_ptr_eq(gdn_context_cl_queue(ctx), q);
    ck_assert_ptr_eq(gdn_context_cl_device(ctx), dev);
    ck_assert_str_eq(gdn_context_last_error(ctx), "");
    /* the application lets go of its own references: libgdn keeps working */
    ck_assert_int_eq(clReleaseCommandQueue(q), CL_SUCCESS);
    ck_assert_int_eq(clReleaseContext(c), CL_SUCCESS);
    CTX_OK(ctx, gdn_tensor_create(ctx, GDN_DTYPE_F32, 1, shape, &t));
    CTX_OK(ctx, gdn_tensor_fill(t, 4.5f));
    expect_all(t, 4.5f, "fill on an interop context");
    {
        float in[10] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, out[10];
        CTX_OK(ctx, gdn_tensor_write(t, in, 40, sizeof(in)));
        CTX_OK(ctx, gdn_tensor_read(t, out, 40, sizeof(out)));
        ck_assert_int_eq(memcmp(in, out, sizeof(in)), 0);
    }
    gdn_tensor_destroy(t);
    gdn_context_destroy(ctx); /* releases the last references */
}
END_TEST

START_TEST(interop_context_from_cl_bad)
{
    cl_device_id       dev = cl_default_device();
    cl_int             err;
    cl_context         c1 = clCreateContext(NULL, 1, &dev, NULL, NULL, &err);
    cl_context         c2 = clCreateContext(NULL, 1, &dev, NULL, NULL, &err);
    cl_command_queue   q1, q2, qo;
    gdn_context       *ctx = NULL;
    gdn_context_params p;
    struct logcap      cap = {0};

    ck_assert_ptr_nonnull(c1);
    ck_assert_ptr_nonnull(c2);
    q1 = clCreateCommandQueue(c1, dev, 0, &err);
    ck_assert_int_eq(err, CL_SUCCESS);
    q2 = clCreateCommandQueue(c2, dev, 0, &err);
    ck_assert_int_eq(err, CL_SUCCESS);
    gdn_context_params_init(&p);
    p.log_fn   = log_capture;
    p.log_user = &cap;

    /* NULL handles */
    ck_assert_int_eq(gdn_context_create_from_cl(NULL, dev, q1, &p, &ctx),
                     GDN_STATUS_INVALID_ARGUMENT);
    ck_assert_int_eq(gdn_context_create_from_cl(c1, NULL, q1, &p, &ctx),
                     GDN_STATUS_INVALID_ARGUMENT);
    ck_assert_int_eq(gdn_context_create_from_cl(c1, dev, NULL, &p, &ctx),
                     GDN_STATUS_INVALID_ARGUMENT);
    ck_assert_ptr_null(ctx);
    ck_assert_int_eq(gdn_context_create_from_cl(c1, dev, q1, &p, NULL),
                     GDN_STATUS_INVALID_ARGUMENT);
    ck_assert_ptr_nonnull(strstr(logcap_text(&cap), "NULL OpenCL handle"));
    /* the queue of another context */
    ctx = (gdn_context *)&p;
    ck_assert_int_eq(gdn_context_create_from_cl(c1, dev, q2, &p, &ctx),
                     GDN_STATUS_INVALID_ARGUMENT);
    ck_assert_ptr_null(ctx);
    ck_assert_msg(strstr(logcap_text(&cap), "queue belongs to another context") != NULL, "log: %s",
                  logcap_text(&cap));
    /* non-zero reserved */
    p.reserved[0] = 3;
    ck_assert_int_eq(gdn_context_create_from_cl(c1, dev, q1, &p, &ctx),
                     GDN_STATUS_INVALID_ARGUMENT);
    ck_assert_ptr_nonnull(strstr(logcap_text(&cap), "reserved must be zero"));
    p.reserved[0] = 0;
    /* an out-of-order queue, where the driver offers one */
    qo = clCreateCommandQueue(c1, dev, CL_QUEUE_OUT_OF_ORDER_EXEC_MODE_ENABLE, &err);
    if (err == CL_SUCCESS) {
        ck_assert_int_eq(gdn_context_create_from_cl(c1, dev, qo, &p, &ctx),
                         GDN_STATUS_INVALID_ARGUMENT);
        ck_assert_ptr_nonnull(strstr(logcap_text(&cap), "must be in-order"));
        clReleaseCommandQueue(qo);
    } else {
        printf("out-of-order queues not supported here (%d): that check is skipped\n", (int)err);
    }
    /* the good combination still works; params.device_index is ignored */
    p.device_index = 12345;
    ck_assert_int_eq(gdn_context_create_from_cl(c2, dev, q2, &p, &ctx), GDN_STATUS_OK);
    gdn_context_destroy(ctx);
    clReleaseCommandQueue(q1);
    clReleaseCommandQueue(q2);
    clReleaseContext(c1);
    clReleaseContext(c2);
    logcap_free(&cap);
}
END_TEST

START_TEST(interop_wrap_cl_mem)
{
    gdn_context     *ctx = gdn_test_ctx;
    cl_context       c   = gdn_context_cl_context(ctx);
    cl_command_queue q   = gdn_context_cl_queue(ctx);
    cl_device_id     dev = gdn_context_cl_device(ctx);
    cl_uint          align_bits = 0;
    size_t           align, size, i;
    cl_int           err;
    cl_mem           mem;
    float           *host, out[256];
    gdn_tensor      *t = NULL;
    const int64_t    shape[2] = {16, 16}; /* 1 KiB */

    ck_assert_int_eq(clGetDeviceInfo(dev, CL_DEVICE_MEM_BASE_ADDR_ALIGN, sizeof(align_bits),
                                     &align_bits, NULL),
                     CL_SUCCESS);
    align = align_bits / 8;
    ck_assert_uint_gt(align, 0);
    size = align + 2048;
    host = malloc(size);
    ck_assert_ptr_nonnull(host);
    for (i = 0; i < size / sizeof(float); i++)
        host[i] = (float)i;
    mem = clCreateBuffer(c, CL_MEM_READ_WRITE, size, NULL, &err);
    ck_assert_int_eq(err, CL_SUCCESS);
    /* written through OpenCL directly, read through libgdn */
    ck_assert_int_eq(clEnqueueWriteBuffer(q, mem, CL_TRUE, 0, size, host, 0, NULL, NULL),
                     CL_SUCCESS);
    CTX_OK(ctx, gdn_tensor_wrap_cl_mem(ctx, mem, 0, GDN_DTYPE_F32, 2, shape, &t));
    ck_assert_ptr_eq(gdn_tensor_cl_mem(t), mem);
    ck_assert_uint_eq(gdn_tensor_nbytes(t), 1024);
    CTX_OK(ctx, gdn_tensor_read(t, out, 0, sizeof(out)));
    ck_assert_int_eq(memcmp(out, host, sizeof(out)), 0);
    /* written through libgdn, read through OpenCL */
    CTX_OK(ctx, gdn_tensor_fill(t, -1.0f));
    ck_assert_int_eq(clEnqueueReadBuffer(q, mem, CL_TRUE, 0, sizeof(out), out, 0, NULL, NULL),
                     CL_SUCCESS);
    for (i = 0; i < 256; i++)
        ck_assert(out[i] == -1.0f);
    /* the rest of the buffer was not touched */
    ck_assert_int_eq(clEnqueueReadBuffer(q, mem, CL_TRUE, 1024, sizeof(float), out, 0, NULL, NULL),
                     CL_SUCCESS);
    ck_assert(out[0] == 256.0f);
    gdn_tensor_destroy(t);
    /* the buffer is still the application's and still valid */
    ck_assert_int_eq(clEnqueueReadBuffer(q, mem, CL_TRUE, 0, sizeof(float), out, 0, NULL, NULL),
                     CL_SUCCESS);
    ck_assert(out[0] == -1.0f);

    /* at an aligned offset: a sub-buffer whose byte 0 is the first element */
    ck_assert_int_eq(clEnqueueWriteBuffer(q, mem, CL_TRUE, 0, size, host, 0, NULL, NULL),
                     CL_SUCCESS);
    CTX_OK(ctx, gdn_tensor_wrap_cl_mem(ctx, mem, align, GDN_DTYPE_F32, 2, shape, &t));
    ck_assert_ptr_ne(gdn_tensor_cl_mem(t), mem);
    {
        cl_mem parent = NULL;
        ck_assert_int_eq(clGetMemObjectInfo(gdn_tensor_cl_mem(t), CL_MEM_ASSOCIATED_MEMOBJECT,
                                            sizeof(parent), &parent, NULL),
                         CL_SUCCESS);
        ck_assert_ptr_eq(parent, mem);
    }
    CTX_OK(ctx, gdn_tensor_read(t, out, 0, sizeof(out)));
    ck_assert_int_eq(memcmp(out, host + align / sizeof(float), sizeof(out)), 0);
    CTX_OK(ctx, gdn_tensor_fill(t, 8.0f));
    ck_assert_int_eq(clEnqueueReadBuffer(q, mem, CL_TRUE, align, sizeof(out), out, 0, NULL, NULL),
                     CL_SUCCESS);
    for (i = 0; i < 256; i++)
        ck_assert(out[i] == 8.0f);
    gdn_tensor_destroy(t);

    /* bad ranges and offsets */
    t = (gdn_tensor *)&ctx;
    {
        const int64_t too_long[1] = {(int64_t)(size / 4 + 1)};
        const int64_t fits[1]     = {(int64_t)(size / 4)};
        EXPECT_STATUS(ctx, gdn_tensor_wrap_cl_mem(ctx, mem, 0, GDN_DTYPE_F32, 1, too_long, &t),
                      GDN_STATUS_INVALID_ARGUMENT, "are outside the");
        ck_assert_ptr_null(t);
        CTX_OK(ctx, gdn_tensor_wrap_cl_mem(ctx, mem, 0, GDN_DTYPE_F32, 1, fits, &t));
        gdn_tensor_destroy(t);
        EXPECT_STATUS(ctx, gdn_tensor_wrap_cl_mem(ctx, mem, align, GDN_DTYPE_F32, 1, fits, &t),
                      GDN_STATUS_INVALID_ARGUMENT, "are outside the");
        EXPECT_STATUS(ctx, gdn_tensor_wrap_cl_mem(ctx, mem, SIZE_MAX - 3, GDN_DTYPE_F32, 2, shape,
                                                  &t),
                      GDN_STATUS_INVALID_ARGUMENT, "are outside the");
        EXPECT_STATUS(ctx, gdn_tensor_wrap_cl_mem(ctx, mem, size, GDN_DTYPE_F32, 2, shape, &t),
                      GDN_STATUS_INVALID_ARGUMENT, "are outside the");
        EXPECT_STATUS(ctx, gdn_tensor_wrap_cl_mem(ctx, mem, 4, GDN_DTYPE_F32, 2, shape, &t),
                      GDN_STATUS_INVALID_ARGUMENT, "base address alignment");
        ck_assert_ptr_null(t);
    }
    /* bad shapes are checked as for gdn_tensor_create */
    {
        const int64_t neg[1] = {-1};
        EXPECT_STATUS(ctx, gdn_tensor_wrap_cl_mem(ctx, mem, 0, GDN_DTYPE_F32, 1, neg, &t),
                      GDN_STATUS_INVALID_ARGUMENT, "gdn_tensor_wrap_cl_mem: shape[0] = -1");
        EXPECT_STATUS(ctx, gdn_tensor_wrap_cl_mem(ctx, mem, 0, GDN_DTYPE_F32, 1, NULL, &t),
                      GDN_STATUS_INVALID_ARGUMENT, "shape is NULL");
        EXPECT_STATUS(ctx, gdn_tensor_wrap_cl_mem(ctx, mem, 0, (gdn_dtype)7, 1, shape, &t),
                      GDN_STATUS_INVALID_ARGUMENT, "unknown dtype 7");
    }
    /* a buffer of another OpenCL context */
    {
        cl_context c2   = clCreateContext(NULL, 1, &dev, NULL, NULL, &err);
        cl_mem     mem2 = clCreateBuffer(c2, CL_MEM_READ_WRITE, size, NULL, &err);
        ck_assert_int_eq(err, CL_SUCCESS);
        EXPECT_STATUS(ctx, gdn_tensor_wrap_cl_mem(ctx, mem2, 0, GDN_DTYPE_F32, 2, shape, &t),
                      GDN_STATUS_INVALID_ARGUMENT, "mem belongs to another OpenCL context");
        ck_assert_ptr_null(t);
        clReleaseMemObject(mem2);
        clReleaseContext(c2);
    }
    /* the wrapped tensor keeps the buffer alive after the application's
     * release */
    CTX_OK(ctx, gdn_tensor_wrap_cl_mem(ctx, mem, 0, GDN_DTYPE_F32, 2, shape, &t));
    ck_assert_int_eq(clReleaseMemObject(mem), CL_SUCCESS);
    CTX_OK(ctx, gdn_tensor_fill(t, 5.0f));
    expect_all(t, 5.0f, "wrapped tensor after the application released its buffer");
    gdn_tensor_destroy(t);
    free(host);
}
END_TEST

START_TEST(interop_own_queue_ordering)
{
    /* gdn_tensor_cl_mem + gdn_context_cl_queue: work enqueued by the
     * application on libgdn's queue is ordered with libgdn's */
    gdn_context     *ctx = gdn_test_ctx;
    gdn_tensor      *t   = NULL;
    const int64_t    shape[1] = {300};
    float            in[300], out[300];
    int              i;
    cl_command_queue q = gdn_context_cl_queue(ctx);

    for (i = 0; i < 300; i++)
        in[i] = (float)(i * i);
    CTX_OK(ctx, gdn_tensor_create(ctx, GDN_DTYPE_F32, 1, shape, &t));
    CTX_OK(ctx, gdn_tensor_fill(t, 0.0f)); /* enqueued, not waited for */
    ck_assert_int_eq(clEnqueueWriteBuffer(q, gdn_tensor_cl_mem(t), CL_FALSE, 0, sizeof(in), in, 0,
                                          NULL, NULL),
                     CL_SUCCESS);
    CTX_OK(ctx, gdn_tensor_read(t, out, 0, sizeof(out)));
    ck_assert_int_eq(memcmp(in, out, sizeof(in)), 0);
    CTX_OK(ctx, gdn_tensor_fill(t, 2.0f));
    ck_assert_int_eq(
        clEnqueueReadBuffer(q, gdn_tensor_cl_mem(t), CL_TRUE, 0, sizeof(out), out, 0, NULL, NULL),
        CL_SUCCESS);
    for (i = 0; i < 300; i++)
        ck_assert(out[i] == 2.0f);
    gdn_tensor_destroy(t);
}
END_TEST

/* Has the command behind ev finished, 100 ms after the queues were flushed? */
static bool done_after_wait(cl_event ev)
{
    cl_int               status = CL_QUEUED;
    const struct timespec ts    = {0, 100 * 1000 * 1000};
    nanosleep(&ts, NULL);
    ck_assert_int_eq(clGetEventInfo(ev, CL_EVENT_COMMAND_EXECUTION_STATUS, sizeof(status),
                                    &status, NULL),
                     CL_SUCCESS);
    return status == CL_COMPLETE;
}

/* The device values of a cached int table. */
static void expect_table(gdn_context *ctx, cl_mem m, const int32_t *want, size_t n)
{
    int32_t got[64];
    ck_assert_uint_le(n, 64);
    ck_assert_int_eq(clEnqueueReadBuffer(ctx->queue, m, CL_TRUE, 0, n * sizeof(int32_t), got, 0,
                                         NULL, NULL),
                     CL_SUCCESS);
    ck_assert_int_eq(memcmp(got, want, n * sizeof(int32_t)), 0);
}

START_TEST(int_table_cache)
{
    /* gdn__int_table: the same values give the same buffer back (what a
     * forward pass on one batch shape reuses); other values or lengths a
     * new one; a table leaves the cache after GDN_INT_TABLES newer ones;
     * a buffer released by the cache stays valid for its holder. */
    gdn_context *ctx = gdn_test_ctx;
    int32_t      a[5] = {0, 64, 128, 130, 200}, b[5] = {0, 64, 128, 131, 200}, t[8];
    cl_mem       m1, m2, m3, m4, mk;
    int          i;

    CTX_OK(ctx, gdn__int_table(ctx, a, 5, &m1));
    CTX_OK(ctx, gdn__int_table(ctx, a, 5, &m2));
    ck_assert_ptr_eq(m1, m2);
    CTX_OK(ctx, gdn__int_table(ctx, b, 5, &m3));
    ck_assert_ptr_ne(m1, m3);
    CTX_OK(ctx, gdn__int_table(ctx, a, 4, &m4));
    ck_assert_ptr_ne(m1, m4);
    expect_table(ctx, m1, a, 5);
    expect_table(ctx, m3, b, 5);
    expect_table(ctx, m4, a, 4);
    for (i = 0; i < GDN_INT_TABLES; i++) { /* push a out */
        cl_mem m;
        int    j;
        for (j = 0; j < 8; j++)
            t[j] = 1000 * (i + 1) + j;
        CTX_OK(ctx, gdn__int_table(ctx, t, 8, &m));
        gdn__buffer_release(m);
    }
    CTX_OK(ctx, gdn__int_table(ctx, a, 5, &mk));
    ck_assert_ptr_ne(m1, mk);
    expect_table(ctx, mk, a, 5);
    expect_table(ctx, m1, a, 5); /* still held by this test */
    gdn__buffer_release(m1);
    gdn__buffer_release(m2);
    gdn__buffer_release(m3);
    gdn__buffer_release(m4);
    gdn__buffer_release(mk);
}
END_TEST

START_TEST(fork_join_ordering)
{
    /* gdn__fork_*: the side branch runs after everything enqueued on the
     * main queue before the fork, and what the main queue enqueues after the
     * join runs after the side branch. A user event holds one queue back;
     * the other branch, on another buffer (PoCL and rusticl order commands
     * on the same buffer by themselves), must not finish meanwhile. */
    gdn_context    *ctx = gdn_test_ctx;
    gdn_tensor     *x = NULL, *y = NULL;
    const int64_t   shape[1] = {4096 + 3};
    const size_t    n        = (size_t)shape[0];
    struct gdn_fork f        = GDN_FORK_INIT;
    cl_int          err;
    cl_event        hold, after;

    CTX_OK(ctx, gdn_tensor_create(ctx, GDN_DTYPE_F32, 1, shape, &x));
    CTX_OK(ctx, gdn_tensor_create(ctx, GDN_DTYPE_F32, 1, shape, &y));
    /* 1. main: held, then x = 1; side branch: y = 2, which waits. */
    hold = clCreateUserEvent(ctx->cl_ctx, &err);
    ck_assert_int_eq(err, CL_SUCCESS);
    ck_assert_int_eq(clEnqueueBarrierWithWaitList(ctx->queue, 1, &hold, NULL), CL_SUCCESS);
    CTX_OK(ctx, gdn__fill_f32(ctx, gdn_tensor_cl_mem(x), n, 1.0f));
    CTX_OK(ctx, gdn__fork_begin(ctx, &f));
    ck_assert(ctx->on_side && ctx->side_queue);
    CTX_OK(ctx, gdn__fill_f32(ctx, gdn_tensor_cl_mem(y), n, 2.0f));
    CTX_OK(ctx, gdn__fork_switch(ctx, &f));
    ck_assert(!ctx->on_side && f.done);
    ck_assert_msg(!done_after_wait(f.done), "the side branch ran before the main queue's work");
    CTX_OK(ctx, gdn__fork_join(ctx, &f));
    ck_assert_int_eq(clSetUserEventStatus(hold, CL_COMPLETE), CL_SUCCESS);
    clReleaseEvent(hold);
    expect_all(x, 1.0f, "main queue before the fork");
    expect_all(y, 2.0f, "side branch");

    /* 2. side branch: held, then y = 3; main after the join: x = 4, which
     * waits. */
    CTX_OK(ctx, gdn__fork_begin(ctx, &f));
    hold = clCreateUserEvent(ctx->cl_ctx, &err);
    ck_assert_int_eq(err, CL_SUCCESS);
    ck_assert_int_eq(clEnqueueBarrierWithWaitList(ctx->side_queue, 1, &hold, NULL), CL_SUCCESS);
    CTX_OK(ctx, gdn__fill_f32(ctx, gdn_tensor_cl_mem(y), n, 3.0f));
    CTX_OK(ctx, gdn__fork_switch(ctx, &f));
    CTX_OK(ctx, gdn__fork_join(ctx, &f));
    CTX_OK(ctx, gdn__fill_f32(ctx, gdn_tensor_cl_mem(x), n, 4.0f));
    ck_assert_int_eq(clEnqueueMarkerWithWaitList(ctx->queue, 0, NULL, &after), CL_SUCCESS);
    ck_assert_int_eq(clFlush(ctx->queue), CL_SUCCESS);
    ck_assert_msg(!done_after_wait(after), "the main queue ran past the join");
    ck_assert_int_eq(clSetUserEventStatus(hold, CL_COMPLETE), CL_SUCCESS);
    clReleaseEvent(hold);
    clReleaseEvent(after);
    expect_all(x, 4.0f, "main queue after the join");
    expect_all(y, 3.0f, "held side branch");

    /* 3. join straight after begin (an error inside the branch): it waits
     * on the host and puts launches back on the main queue. */
    CTX_OK(ctx, gdn__fork_begin(ctx, &f));
    CTX_OK(ctx, gdn__fill_f32(ctx, gdn_tensor_cl_mem(x), n, 5.0f));
    CTX_OK(ctx, gdn__fork_join(ctx, &f));
    ck_assert(!ctx->on_side && !f.begun);
    CTX_OK(ctx, gdn__fill_f32(ctx, gdn_tensor_cl_mem(x), n, 6.0f));
    expect_all(x, 6.0f, "join without switch");
    /* A join of a fork that never began is a no-op. */
    CTX_OK(ctx, gdn__fork_join(ctx, &f));
    gdn_tensor_destroy(x);
    gdn_tensor_destroy(y);
}
END_TEST

/* ================================================================ kernel folders */

START_TEST(build_failure)
{
    char               dir[512];
    gdn_context_params p;
    gdn_context       *ctx = NULL;
    gdn_tensor        *t   = NULL;
    const int64_t      shape[1] = {16};
    const char        *msg;
    struct logcap      cap = {0};

    tmp_make();
    env_put("GDN_CL_DIR", NULL);
    kernel_folder("broken", k_fill_broken, dir, sizeof(dir));
    gdn_context_params_init(&p);
    p.kernel_dir = dir;
    p.log_fn     = log_capture;
    p.log_user   = &cap;
    ck_assert_int_eq(gdn_context_create(&p, &ctx), GDN_STATUS_OK);
    CTX_OK(ctx, gdn_tensor_create(ctx, GDN_DTYPE_F32, 1, shape, &t));
    EXPECT_STATUS(ctx, gdn_tensor_fill(t, 1.0f), GDN_STATUS_BUILD_FAILED, "core/fill.cl");
    msg = gdn_context_last_error(ctx);
    printf("build failure message:\n%s\n", msg);
    ck_assert_msg(strstr(msg, "-DWG_SIZE=") != NULL, "no options in: %s", msg);
    ck_assert_msg(strstr(msg, "CL_BUILD_PROGRAM_FAILURE") != NULL, "%s", msg);
    /* the driver's log: it names the undeclared identifier (which appears in
     * the message only through the log) at the kernel file's real line */
    ck_assert_msg(strstr(msg, "gdn_test_undeclared_identifier") != NULL,
                  "no driver log in: %s", msg);
    ck_assert_msg(strstr(msg, "core/fill.cl:9") != NULL,
                  "the driver log does not point at core/fill.cl line 9: %s", msg);
    ck_assert_int_eq(ctx->stats.builds_from_source, 0);
    /* failures are not cached: the next call fails the same way */
    EXPECT_STATUS(ctx, gdn_tensor_fill(t, 1.0f), GDN_STATUS_BUILD_FAILED,
                  "gdn_test_undeclared_identifier");
    /* and everything else still works */
    {
        float x[16];
        for (int i = 0; i < 16; i++)
            x[i] = (float)i;
        CTX_OK(ctx, gdn_tensor_write(t, x, 0, sizeof(x)));
        CTX_OK(ctx, gdn_tensor_read(t, x, 0, sizeof(x)));
        ck_assert(x[15] == 15.0f);
    }
    gdn_tensor_destroy(t);
    gdn_context_destroy(ctx);
    logcap_free(&cap);
    env_restore();
    rm_rf(g_tmp);
}
END_TEST

/* GDN_BUILD_OPTIONS reaches every build when params.build_options is NULL:
 * options that break the kernel source fail its build with a status and a
 * message naming them (no crash); params.build_options wins over it. (An
 * unknown option would not do: PoCL accepts those silently.) */
START_TEST(build_options_env)
{
    gdn_context_params p;
    gdn_context       *ctx = NULL;
    gdn_tensor        *t   = NULL;
    const int64_t      shape[1] = {16};
    struct logcap      cap = {0};

    env_put("GDN_CL_DIR", NULL);
    env_put("GDN_BUILD_OPTIONS", "-Dfloat=gdn_test_no_such_type");
    gdn_context_params_init(&p);
    p.log_fn   = log_capture;
    p.log_user = &cap;
    ck_assert_int_eq(gdn_context_create(&p, &ctx), GDN_STATUS_OK);
    CTX_OK(ctx, gdn_tensor_create(ctx, GDN_DTYPE_F32, 1, shape, &t));
    EXPECT_STATUS(ctx, gdn_tensor_fill(t, 1.0f), GDN_STATUS_BUILD_FAILED,
                  "-Dfloat=gdn_test_no_such_type");
    gdn_tensor_destroy(t);
    gdn_context_destroy(ctx);

    t                = NULL;
    p.build_options  = "-DGDN_TEST_UNUSED=1";
    ck_assert_int_eq(gdn_context_create(&p, &ctx), GDN_STATUS_OK);
    CTX_OK(ctx, gdn_tensor_create(ctx, GDN_DTYPE_F32, 1, shape, &t));
    CTX_OK(ctx, gdn_tensor_fill(t, 1.0f));
    gdn_tensor_destroy(t);
    gdn_context_destroy(ctx);
    logcap_free(&cap);
    env_restore();
}
END_TEST

/* The register cap's PTX rewrite (lib/runtime/runtime.h), on text shaped
 * like NVIDIA's: every .entry gets ".maxnreg N" before its body, .func
 * bodies and the rest stay as they were, and anything else is refused. */
static const char k_ptx[] =
    "//\n// Generated by NVIDIA NVVM Compiler\n//\n\n.version 8.8\n.target sm_90\n"
    ".address_size 64\n\n"
    ".func  (.param .b32 func_retval0) helper(\n\t.param .b32 helper_param_0\n)\n{\n\tret;\n}\n"
    "\t// .globl\tk_one\n"
    ".entry k_one(\n\t.param .u64 .ptr .global .align 4 k_one_param_0,\n"
    "\t.param .u32 k_one_param_1\n)\n.reqntid 128, 1, 1\n{\n\tret;\n}\n"
    "\t// .globl\tk_two\n"
    ".visible .entry k_two(\n\t.param .u32 k_two_param_0\n)\n{\n\tret;\n}\n";

START_TEST(ptx_register_cap)
{
    static const char want[] =
        "//\n// Generated by NVIDIA NVVM Compiler\n//\n\n.version 8.8\n.target sm_90\n"
        ".address_size 64\n\n"
        ".func  (.param .b32 func_retval0) helper(\n\t.param .b32 helper_param_0\n)\n{\n"
        "\tret;\n}\n"
        "\t// .globl\tk_one\n"
        ".entry k_one(\n\t.param .u64 .ptr .global .align 4 k_one_param_0,\n"
        "\t.param .u32 k_one_param_1\n)\n.reqntid 128, 1, 1\n.maxnreg 168\n{\n\tret;\n}\n"
        "\t// .globl\tk_two\n"
        ".visible .entry k_two(\n\t.param .u32 k_two_param_0\n)\n.maxnreg 168\n{\n\tret;\n}\n";
    char  *out = NULL, *bad;
    size_t n   = 0;

    /* with the trailing NUL a program binary query returns */
    ck_assert(gdn__ptx_cap_registers(k_ptx, sizeof(k_ptx), 168, &out, &n));
    ck_assert_uint_eq(n, sizeof(want));
    ck_assert_str_eq(out, want);
    gdn__free(out);
    /* without it */
    ck_assert(gdn__ptx_cap_registers(k_ptx, strlen(k_ptx), 168, &out, &n));
    ck_assert_uint_eq(n, strlen(want));
    ck_assert(!memcmp(out, want, n));
    /* capping the capped text again is refused */
    ck_assert(!gdn__ptx_cap_registers(want, sizeof(want), 128, &bad, &n));
    ck_assert_ptr_null(bad);
    ck_assert_uint_eq(n, 0);
    gdn__free(out);
    /* not PTX: another driver's binary, text without .target or entries */
#define REFUSED(text) ck_assert(!gdn__ptx_cap_registers((text), strlen(text), 168, &out, &n))
    REFUSED("\x7f" "ELF\2\1\1");
    REFUSED(".version 8.8\n.entry k(\n)\n{\n}\n");
    REFUSED(".version 8.8\n.target sm_90\n");
    REFUSED(".version 8.8\n.target sm_90\n.entry k(\n)\n"); /* no body */
    REFUSED("");
#undef REFUSED
    /* a well-formed capped entry, for contrast */
    ck_assert(gdn__ptx_cap_registers(".version 8.8\n.target sm_90\n.entry k(\n)\n{\n}\n", 43,
                                     100, &out, &n));
    ck_assert_uint_eq(n, 43 + 13);
    ck_assert(!memcmp(out, ".version 8.8\n.target sm_90\n.entry k(\n)\n.maxnreg 100\n{\n}\n", n));
    gdn__free(out);
    ck_assert(!gdn__ptx_cap_registers("", 0, 168, &out, &n));
    ck_assert_ptr_null(out);

    ck_assert_int_eq(gdn__maxreg_option("-DA=1 -DGDN_MAXREG=168 -DZ=2"), 168);
    ck_assert_int_eq(gdn__maxreg_option("-DGDN_MAXREG=128"), 128);
    ck_assert_int_eq(gdn__maxreg_option("-DGDN_MAXREG=255 -cl-nv-verbose"), 255);
    ck_assert_int_eq(gdn__maxreg_option("-DGDN_MAXREG=15"), 0);
    ck_assert_int_eq(gdn__maxreg_option("-DGDN_MAXREG=256"), 0);
    ck_assert_int_eq(gdn__maxreg_option("-DGDN_MAXREG=168x"), 0);
    ck_assert_int_eq(gdn__maxreg_option("-DGDN_MAXREG="), 0);
    ck_assert_int_eq(gdn__maxreg_option("-DGDN_MAXREGS=168"), 0);
    ck_assert_int_eq(gdn__maxreg_option("-DA=1"), 0);
    ck_assert_int_eq(gdn__maxreg_option(""), 0);
    ck_assert_int_eq(gdn__maxreg_option(NULL), 0);
}
END_TEST

/* A program built with -DGDN_MAXREG: capped where the binaries are PTX,
 * built as it is elsewhere (PoCL), and it computes the same either way. */
START_TEST(maxreg_option_builds)
{
    gdn_context_params p;
    gdn_context       *ctx = NULL;
    gdn_tensor        *t   = NULL;
    const int64_t      shape[1] = {300};
    float              x[300];
    struct logcap      cap = {0};
    int                i;

    env_put("GDN_CL_DIR", NULL);
    env_put("GDN_BUILD_OPTIONS", NULL);
    gdn_context_params_init(&p);
    p.log_fn        = log_capture;
    p.log_user      = &cap;
    p.log_level     = GDN_LOG_LEVEL_DEBUG;
    p.disk_cache    = 0;
    p.build_options = "-DGDN_MAXREG=64";
    ck_assert_int_eq(gdn_context_create(&p, &ctx), GDN_STATUS_OK);
    CTX_OK(ctx, gdn_tensor_create(ctx, GDN_DTYPE_F32, 1, shape, &t));
    CTX_OK(ctx, gdn_tensor_fill(t, 2.5f));
    CTX_OK(ctx, gdn_tensor_read(t, x, 0, sizeof(x)));
    for (i = 0; i < 300; i++)
        ck_assert_float_eq(x[i], 2.5f);
    ck_assert_msg(strstr(logcap_text(&cap), "rebuilt with .maxnreg 64") ||
                      strstr(logcap_text(&cap), "GDN_MAXREG=64 not applied"),
                  "no word of the register cap in the log:\n%s", logcap_text(&cap));
    gdn_tensor_destroy(t);
    gdn_context_destroy(ctx);
    logcap_free(&cap);
    env_restore();
}
END_TEST

START_TEST(kernel_folder_missing_files)
{
    char               dir[512];
    gdn_context_params p;
    gdn_context       *ctx = NULL;
    gdn_tensor        *t   = NULL;
    const int64_t      shape[1] = {16};
    struct logcap      cap = {0};

    tmp_make();
    env_put("GDN_CL_DIR", NULL);
    gdn_context_params_init(&p);
    p.log_fn   = log_capture;
    p.log_user = &cap;
    /* no core/fill.cl in the folder */
    kernel_folder("empty", NULL, dir, sizeof(dir));
    p.kernel_dir = dir;
    ck_assert_int_eq(gdn_context_create(&p, &ctx), GDN_STATUS_OK);
    CTX_OK(ctx, gdn_tensor_create(ctx, GDN_DTYPE_F32, 1, shape, &t));
    EXPECT_STATUS(ctx, gdn_tensor_fill(t, 1.0f), GDN_STATUS_IO, "cannot read kernel source");
    ck_assert_ptr_nonnull(strstr(gdn_context_last_error(ctx), "core/fill.cl"));
    gdn_tensor_destroy(t);
    gdn_context_destroy(ctx);
    /* a kernel that includes a header the folder lacks */
    {
        char path[600];
        kernel_folder("noinc", k_fill_plus, dir, sizeof(dir));
        snprintf(path, sizeof(path), "%s/include/gdn_common.clh", dir);
        ck_assert_int_eq(unlink(path), 0);
        p.kernel_dir = dir;
        ck_assert_int_eq(gdn_context_create(&p, &ctx), GDN_STATUS_OK);
        CTX_OK(ctx, gdn_tensor_create(ctx, GDN_DTYPE_F32, 1, shape, &t));
        EXPECT_STATUS(ctx, gdn_tensor_fill(t, 1.0f), GDN_STATUS_IO,
                      "core/fill.cl:2: cannot read included file");
        ck_assert_ptr_nonnull(strstr(gdn_context_last_error(ctx), "gdn_common.clh"));
        gdn_tensor_destroy(t);
        gdn_context_destroy(ctx);
    }
    logcap_free(&cap);
    env_restore();
    rm_rf(g_tmp);
}
END_TEST

START_TEST(kernel_dir_and_cl_dir_env)
{
    char               plus[512], broken[512];
    gdn_context_params p;
    gdn_context       *ctx = NULL;
    gdn_tensor        *t   = NULL;
    const int64_t      shape[1] = {1000};
    struct logcap      cap = {0};

    tmp_make();
    kernel_folder("plus", k_fill_plus, plus, sizeof(plus));
    kernel_folder("broken", k_fill_broken, broken, sizeof(broken));
    gdn_context_params_init(&p);
    p.log_fn   = log_capture;
    p.log_user = &cap;

    /* GDN_CL_DIR: a folder whose fill writes value + 1 proves it is used,
     * and it wins over params.kernel_dir */
    env_put("GDN_CL_DIR", plus);
    p.kernel_dir = broken;
    ck_assert_int_eq(gdn_context_create(&p, &ctx), GDN_STATUS_OK);
    CTX_OK(ctx, gdn_tensor_create(ctx, GDN_DTYPE_F32, 1, shape, &t));
    CTX_OK(ctx, gdn_tensor_fill(t, 3.0f));
    expect_all(t, 4.0f, "fill from GDN_CL_DIR");
    gdn_tensor_destroy(t);
    gdn_context_destroy(ctx);
    env_restore();

    /* params.kernel_dir alone, with params.build_options reaching the
     * compiler (-DEXTRA=10 instead of the kernel's default 1) */
    env_put("GDN_CL_DIR", NULL);
    p.kernel_dir    = plus;
    p.build_options = "-DEXTRA=10";
    ck_assert_int_eq(gdn_context_create(&p, &ctx), GDN_STATUS_OK);
    CTX_OK(ctx, gdn_tensor_create(ctx, GDN_DTYPE_F32, 1, shape, &t));
    CTX_OK(ctx, gdn_tensor_fill(t, 3.0f));
    expect_all(t, 13.0f, "fill from params.kernel_dir with build_options");
    gdn_tensor_destroy(t);
    gdn_context_destroy(ctx);
    p.build_options = NULL;

    /* GDN_CL_DIR="" counts as unset; the embedded kernels are used */
    env_restore();
    env_put("GDN_CL_DIR", "");
    p.kernel_dir = NULL;
    ck_assert_int_eq(gdn_context_create(&p, &ctx), GDN_STATUS_OK);
    ck_assert_ptr_null(ctx->kernel_dir);
    CTX_OK(ctx, gdn_tensor_create(ctx, GDN_DTYPE_F32, 1, shape, &t));
    CTX_OK(ctx, gdn_tensor_fill(t, 3.0f));
    expect_all(t, 3.0f, "fill from the embedded kernels");
    gdn_tensor_destroy(t);
    gdn_context_destroy(ctx);

    /* the source tree itself (what `meson devenv` sets) */
    env_restore();
    env_put("GDN_CL_DIR", GDN_TEST_CL_DIR);
    ck_assert_int_eq(gdn_context_create(&p, &ctx), GDN_STATUS_OK);
    ck_assert_str_eq(ctx->kernel_dir, GDN_TEST_CL_DIR);
    CTX_OK(ctx, gdn_tensor_create(ctx, GDN_DTYPE_F32, 1, shape, &t));
    CTX_OK(ctx, gdn_tensor_fill(t, 3.0f));
    expect_all(t, 3.0f, "fill from the source tree");
    gdn_tensor_destroy(t);
    gdn_context_destroy(ctx);
    env_restore();
    ck_assert_msg(cap.text.len == 0, "unexpected log: %s", logcap_text(&cap));
    logcap_free(&cap);
    rm_rf(g_tmp);
}
END_TEST

/* ================================================================ suite */

static Suite *runtime_suite(void)
{
    Suite *s = suite_create("runtime");
    TCase *tc;

    tc = tcase_create("context");
    tcase_set_timeout(tc, TIMEOUT_S);
    tcase_add_test(tc, context_null_params);
    tcase_add_test(tc, context_params_defaults);
    tcase_add_test(tc, context_reserved_nonzero);
    tcase_add_test(tc, context_bad_device_index);
    tcase_add_test(tc, device_list);
    tcase_add_test(tc, device_select_env);
    tcase_add_test(tc, device_select_empty_env);
    suite_add_tcase(s, tc);

    tc = tcase_create("tensor");
    gdn_test_add_ctx_fixture(tc, TIMEOUT_S);
    tcase_add_test(tc, tensor_create_bad);
    tcase_add_test(tc, tensor_create_too_big);
    tcase_add_test(tc, tensor_accessors);
    tcase_add_test(tc, tensor_read_write);
    tcase_add_test(tc, tensor_empty);
    tcase_add_test(tc, nulls_everywhere);
    tcase_add_test(tc, tensor_fill);
    suite_add_tcase(s, tc);

    tc = tcase_create("lifetime");
    tcase_set_timeout(tc, TIMEOUT_S);
    tcase_add_test(tc, destroy_context_first);
    tcase_add_test(tc, default_log_to_stderr);
    tcase_add_test(tc, log_levels);
    tcase_add_test(tc, log_env);
    suite_add_tcase(s, tc);

    tc = tcase_create("interop");
    gdn_test_add_ctx_fixture(tc, TIMEOUT_S);
    tcase_add_test(tc, interop_context_from_cl);
    tcase_add_test(tc, interop_context_from_cl_bad);
    tcase_add_test(tc, interop_wrap_cl_mem);
    tcase_add_test(tc, interop_own_queue_ordering);
    tcase_add_test(tc, fork_join_ordering);
    tcase_add_test(tc, int_table_cache);
    suite_add_tcase(s, tc);

    tc = tcase_create("kernels");
    tcase_set_timeout(tc, TIMEOUT_S);
    tcase_add_test(tc, build_failure);
    tcase_add_test(tc, build_options_env);
    tcase_add_test(tc, ptx_register_cap);
    tcase_add_test(tc, maxreg_option_builds);
    tcase_add_test(tc, kernel_folder_missing_files);
    tcase_add_test(tc, kernel_dir_and_cl_dir_env);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return gdn_test_run(runtime_suite(), 1);
}
