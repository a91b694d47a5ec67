/*
 * test_status.c - host suite (no OpenCL device needed): status codes and
 * their strings, version, dtype sizes, and the host-only helpers of
 * lib/core (SHA-256, checked sizes, string buffers, file I/O) plus the -D
 * formatter and the embedded kernel table of lib/runtime.
 */
#define _POSIX_C_SOURCE 200809L
#include <check.h>
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cl_sources.h"
#include "core.h"
#include "gdn.h"
#include "runtime.h"

/* ---------------------------------------------------------------- statuses */

struct status_row {
    gdn_status  status;
    int         value;
    const char *name;
    const char *msg;
};

static const struct status_row k_statuses[] = {
#define ROW_(name, value, msg) {GDN_STATUS_##name, value, "GDN_STATUS_" #name, msg},
    GDN_STATUS_MAP(ROW_)
#undef ROW_
};

START_TEST(status_each)
{
    const struct status_row *r = &k_statuses[_i];
    const char              *s = gdn_status_string(r->status);
    const char              *n = gdn_status_name(r->status);
    size_t                   j;

    ck_assert_int_eq((int)r->status, r->value);
    ck_assert_ptr_nonnull(s);
    ck_assert_ptr_nonnull(n);
    ck_assert_msg(s[0] != '\0', "%s has an empty string", r->name);
    ck_assert_str_eq(s, r->msg);
    ck_assert_str_eq(n, r->name);
    ck_assert_str_ne(s, gdn_status_string((gdn_status)12345));
    ck_assert_str_ne(n, "GDN_STATUS_UNKNOWN");
    /* OK is 0, every error is negative */
    if (r->status == GDN_STATUS_OK)
        ck_assert_int_eq(r->value, 0);
    else
        ck_assert_int_lt(r->value, 0);
    for (j = 0; j < GDN_ARRAY_SIZE(k_statuses); j++) {
        if (j == (size_t)_i)
            continue;
        ck_assert_msg(k_statuses[j].value != r->value, "%s and %s share the value %d", r->name,
                      k_statuses[j].name, r->value);
        ck_assert_msg(strcmp(gdn_status_string(k_statuses[j].status), s) != 0,
                      "%s and %s share the string '%s'", r->name, k_statuses[j].name, s);
        ck_assert_msg(strcmp(gdn_status_name(k_statuses[j].status), n) != 0,
                      "%s and %s share the name", r->name, k_statuses[j].name);
    }
}
END_TEST

START_TEST(status_values_dense)
{
    /* Append-only, never renumbered: the values are 0, -1, -2, ... */
    size_t i;
    for (i = 0; i < GDN_ARRAY_SIZE(k_statuses); i++)
        ck_assert_int_eq(k_statuses[i].value, -(int)i);
}
END_TEST

START_TEST(status_unknown)
{
    static const int unknown[] = {1, 2, 12345, -(int)GDN_ARRAY_SIZE(k_statuses), -1000, INT32_MIN,
                                  INT32_MAX};
    size_t           i;
    for (i = 0; i < GDN_ARRAY_SIZE(unknown); i++) {
        gdn_status st = (gdn_status)unknown[i];
        ck_assert_str_eq(gdn_status_string(st), "unknown status");
        ck_assert_str_eq(gdn_status_name(st), "GDN_STATUS_UNKNOWN");
    }
}
END_TEST

START_TEST(version_matches_header)
{
    char want[32];
    ck_assert_uint_eq(gdn_version(), GDN_VERSION_HEX);
    ck_assert_uint_eq(gdn_version() >> 16, GDN_VERSION_MAJOR);
    ck_assert_uint_eq((gdn_version() >> 8) & 0xff, GDN_VERSION_MINOR);
    ck_assert_uint_eq(gdn_version() & 0xff, GDN_VERSION_PATCH);
    snprintf(want, sizeof(want), "%d.%d.%d", GDN_VERSION_MAJOR, GDN_VERSION_MINOR,
             GDN_VERSION_PATCH);
    ck_assert_ptr_nonnull(gdn_version_string());
    ck_assert_str_eq(gdn_version_string(), want);
}
END_TEST

START_TEST(dtype_sizes)
{
    ck_assert_uint_eq(gdn_dtype_size(GDN_DTYPE_F32), 4);
    ck_assert_uint_eq(gdn_dtype_size(GDN_DTYPE_F16), 2);
    ck_assert_uint_eq(gdn_dtype_size(GDN_DTYPE_BF16), 2);
    ck_assert_uint_eq(gdn_dtype_size(GDN_DTYPE_I32), 4);
    ck_assert_uint_eq(gdn_dtype_size((gdn_dtype)4), 0);
    ck_assert_uint_eq(gdn_dtype_size((gdn_dtype)-1), 0);
    ck_assert_uint_eq(gdn_dtype_size((gdn_dtype)1000), 0);
}
END_TEST

/* ---------------------------------------------------------------- sha256 */

static void hex_of(const void *data, size_t n, char out[65])
{
    gdn__sha256_hex_of(data, n, out);
}

START_TEST(sha256_vectors)
{
    /* FIPS 180-2 / NIST examples */
    char   hex[65];
    char  *mil;
    size_t i;

    hex_of("", 0, hex);
    ck_assert_str_eq(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    hex_of("abc", 3, hex);
    ck_assert_str_eq(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    hex_of("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", 56, hex);
    ck_assert_str_eq(hex, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
    mil = malloc(1000000);
    ck_assert_ptr_nonnull(mil);
    memset(mil, 'a', 1000000);
    hex_of(mil, 1000000, hex);
    ck_assert_str_eq(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");

    /* the same million bytes fed in odd-sized pieces (crossing block edges) */
    {
        struct gdn_sha256 s;
        uint8_t           d[32];
        size_t            step = 1, off = 0;
        gdn__sha256_init(&s);
        while (off < 1000000) {
            size_t n = step < 1000000 - off ? step : 1000000 - off;
            gdn__sha256_update(&s, mil + off, n);
            off += n;
            step = step * 3 % 257 + 1;
        }
        gdn__sha256_final(&s, d);
        gdn__sha256_hex(d, hex);
        ck_assert_str_eq(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
    }
    /* lengths around the padding boundary (55, 56, 63, 64, 65 bytes) agree
     * between one-shot and byte-by-byte hashing */
    for (i = 50; i <= 130; i++) {
        struct gdn_sha256 s;
        uint8_t           d[32];
        char              h2[65];
        size_t            j;
        hex_of(mil, i, hex);
        gdn__sha256_init(&s);
        for (j = 0; j < i; j++)
            gdn__sha256_update(&s, mil + j, 1);
        gdn__sha256_final(&s, d);
        gdn__sha256_hex(d, h2);
        ck_assert_str_eq(hex, h2);
    }
    free(mil);
}
END_TEST

/* ---------------------------------------------------------------- -D options */

START_TEST(defines_sorted)
{
    const struct gdn_define defs[] = {{"WG_SIZE", 256}, {"CHUNK", 64}, {"K_TILE", -3},
                                      {"BIG", INT64_MAX}};
    char                    buf[256];

    ck_assert(gdn__defines_format(defs, GDN_ARRAY_SIZE(defs), buf, sizeof(buf)));
    ck_assert_str_eq(buf, "-DBIG=9223372036854775807 -DCHUNK=64 -DK_TILE=-3 -DWG_SIZE=256");
    /* the order of the input does not matter */
    {
        const struct gdn_define rev[] = {{"BIG", INT64_MAX}, {"K_TILE", -3}, {"CHUNK", 64},
                                         {"WG_SIZE", 256}};
        char                    buf2[256];
        ck_assert(gdn__defines_format(rev, GDN_ARRAY_SIZE(rev), buf2, sizeof(buf2)));
        ck_assert_str_eq(buf, buf2);
    }
    /* the caller's array is not reordered */
    ck_assert_str_eq(defs[0].name, "WG_SIZE");
    /* none */
    ck_assert(gdn__defines_format(defs, 0, buf, sizeof(buf)));
    ck_assert_str_eq(buf, "");
    /* values written as printf's %lld writes them, the extremes included */
    {
        static const int64_t vals[] = {0, 1, -1, 9, 10, -10, 123456789, INT32_MIN, INT64_MAX,
                                       INT64_MIN};
        size_t               i;
        for (i = 0; i < GDN_ARRAY_SIZE(vals); i++) {
            const struct gdn_define one[] = {{"V", vals[i]}};
            char                    want[64];
            snprintf(want, sizeof(want), "-DV=%lld", (long long)vals[i]);
            ck_assert(gdn__defines_format(one, 1, buf, sizeof(buf)));
            ck_assert_str_eq(buf, want);
        }
    }
}
END_TEST

START_TEST(defines_overflow)
{
    const struct gdn_define one[] = {{"A", 1}};
    const struct gdn_define two[] = {{"B", 22}, {"A", 1}};
    struct gdn_define       many[65];
    char                    buf[64];
    size_t                  i;

    /* "-DA=1" is 5 characters: needs 6 bytes */
    ck_assert(gdn__defines_format(one, 1, buf, 6));
    ck_assert_str_eq(buf, "-DA=1");
    ck_assert(!gdn__defines_format(one, 1, buf, 5));
    ck_assert(!gdn__defines_format(one, 1, buf, 1));
    ck_assert(!gdn__defines_format(one, 0, buf, 0));
    /* "-DA=1 -DB=22" is 12 characters */
    ck_assert(gdn__defines_format(two, 2, buf, 13));
    ck_assert_str_eq(buf, "-DA=1 -DB=22");
    ck_assert(!gdn__defines_format(two, 2, buf, 12));
    /* more than the formatter's limit of 64 defines */
    for (i = 0; i < GDN_ARRAY_SIZE(many); i++) {
        many[i].name  = "X";
        many[i].value = (int64_t)i;
    }
    {
        char big[2048];
        ck_assert(gdn__defines_format(many, 64, big, sizeof(big)));
        ck_assert(!gdn__defines_format(many, 65, big, sizeof(big)));
    }
}
END_TEST

/* ---------------------------------------------------------------- strbuf */

START_TEST(strbuf_basic)
{
    struct gdn_strbuf sb = {0};
    char              longer[2000];
    size_t            i;

    gdn__strbuf_appendf(&sb, "%s-%d", "abc", 42);
    ck_assert_str_eq(sb.data, "abc-42");
    ck_assert_uint_eq(sb.len, 6);
    gdn__strbuf_append(&sb, "xyz", 2);
    ck_assert_str_eq(sb.data, "abc-42xy");
    gdn__strbuf_append(&sb, "", 0);
    ck_assert_str_eq(sb.data, "abc-42xy");
    /* longer than the formatter's stack buffer and the initial capacity */
    for (i = 0; i < sizeof(longer) - 1; i++)
        longer[i] = (char)('a' + i % 26);
    longer[sizeof(longer) - 1] = '\0';
    gdn__strbuf_appendf(&sb, "[%s]", longer);
    ck_assert_uint_eq(sb.len, 8 + 2 + sizeof(longer) - 1);
    ck_assert_uint_eq(strlen(sb.data), sb.len);
    ck_assert_int_eq(memcmp(sb.data + 9, longer, sizeof(longer) - 1), 0);
    ck_assert_int_eq(sb.data[sb.len - 1], ']');
    ck_assert(sb.cap > sb.len);
    ck_assert(!sb.oom);
    gdn__strbuf_free(&sb);
    ck_assert_ptr_null(sb.data);
    ck_assert_uint_eq(sb.len, 0);
    ck_assert_uint_eq(sb.cap, 0);
    /* free of an empty buffer is fine */
    gdn__strbuf_free(&sb);
}
END_TEST

START_TEST(strbuf_oom)
{
    struct gdn_strbuf sb = {0};
    gdn__strbuf_appendf(&sb, "first");
    ck_assert(!sb.oom);
    /* growing past 256 bytes reallocates: make that fail */
    gdn__alloc_fail_after(1);
    {
        char s[400];
        memset(s, 'x', sizeof(s) - 1);
        s[sizeof(s) - 1] = '\0';
        gdn__strbuf_append(&sb, s, strlen(s));
    }
    ck_assert(sb.oom);
    ck_assert_str_eq(sb.data, "first"); /* what fitted is kept */
    gdn__strbuf_appendf(&sb, "more");   /* ignored after a failure */
    ck_assert_str_eq(sb.data, "first");
    gdn__strbuf_free(&sb);
    ck_assert(!sb.oom);
    gdn__alloc_fail_after(0);
}
END_TEST

START_TEST(alloc_fail_injection)
{
    void *p;
    gdn__alloc_fail_after(2);
    p = gdn__malloc(8);
    ck_assert_ptr_nonnull(p);
    gdn__free(p);
    ck_assert_ptr_null(gdn__malloc(8)); /* the 2nd fails */
    p = gdn__malloc(8);                 /* then back to normal */
    ck_assert_ptr_nonnull(p);
    gdn__free(p);
    ck_assert_ptr_null(gdn__strdup(NULL));
    p = gdn__strdup("copy");
    ck_assert_str_eq((char *)p, "copy");
    gdn__free(p);
    p = gdn__calloc(0, 0); /* zero sizes still give a pointer */
    ck_assert_ptr_nonnull(p);
    gdn__free(p);
    gdn__free(NULL);
}
END_TEST

/* ---------------------------------------------------------------- sizes */

START_TEST(checked_sizes)
{
    size_t r = 7;
    ck_assert(gdn__mul_size(3, 5, &r));
    ck_assert_uint_eq(r, 15);
    ck_assert(gdn__mul_size(0, SIZE_MAX, &r));
    ck_assert_uint_eq(r, 0);
    ck_assert(gdn__mul_size(SIZE_MAX, 1, &r));
    ck_assert_uint_eq(r, SIZE_MAX);
    r = 7;
    ck_assert(!gdn__mul_size(SIZE_MAX, 2, &r));
    ck_assert_uint_eq(r, 7); /* unchanged on overflow */
    ck_assert(!gdn__mul_size((size_t)1 << (sizeof(size_t) * 4), (size_t)1 << (sizeof(size_t) * 4),
                             &r));
    ck_assert(gdn__mul_size(((size_t)1 << (sizeof(size_t) * 4)) - 1,
                            ((size_t)1 << (sizeof(size_t) * 4)) + 1, &r));
    ck_assert_uint_eq(r, SIZE_MAX);
    ck_assert(gdn__add_size(SIZE_MAX - 1, 1, &r));
    ck_assert_uint_eq(r, SIZE_MAX);
    r = 7;
    ck_assert(!gdn__add_size(SIZE_MAX, 1, &r));
    ck_assert(!gdn__add_size(1, SIZE_MAX, &r));
    ck_assert(!gdn__add_size(SIZE_MAX / 2 + 1, SIZE_MAX / 2 + 1, &r));
    ck_assert_uint_eq(r, 7);
    ck_assert(gdn__add_size(0, 0, &r));
    ck_assert_uint_eq(r, 0);
}
END_TEST

/* ---------------------------------------------------------------- strings */

START_TEST(strings)
{
    char buf[8];
    ck_assert(gdn__strcasestr("NVIDIA H200", "h200"));
    ck_assert(gdn__strcasestr("pthread-skylake", "SKY"));
    ck_assert(gdn__strcasestr("abc", ""));
    ck_assert(!gdn__strcasestr("abc", "abcd"));
    ck_assert(!gdn__strcasestr("", "a"));
    ck_assert(gdn__strcasestr("aab", "ab")); /* restart after a partial match */
    gdn__strlcpy(buf, "0123456789", sizeof(buf));
    ck_assert_str_eq(buf, "0123456");
    gdn__strlcpy(buf, "ab", sizeof(buf));
    ck_assert_str_eq(buf, "ab");
    gdn__strlcpy(buf, NULL, sizeof(buf));
    ck_assert_str_eq(buf, "");
    buf[0] = 'z';
    gdn__strlcpy(buf, "ab", 0); /* cap 0: nothing written */
    ck_assert_int_eq(buf[0], 'z');
    gdn__strlcpy(buf, "ab", 1);
    ck_assert_str_eq(buf, "");
}
END_TEST

/* ---------------------------------------------------------------- files */

static char g_tmp[256];

static void tmp_setup(void)
{
    const char *base = getenv("TMPDIR");
    snprintf(g_tmp, sizeof(g_tmp), "%s/gdn_test_status_XXXXXX", base && *base ? base : "/tmp");
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

static void tmp_teardown(void)
{
    rm_rf(g_tmp);
}

static int count_entries(const char *dir)
{
    DIR           *d = opendir(dir);
    struct dirent *e;
    int            n = 0;
    if (!d)
        return -1;
    while ((e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
            n++;
    closedir(d);
    return n;
}

START_TEST(file_atomic_write)
{
    char   path[512], sub[512], *data;
    size_t size;

    snprintf(path, sizeof(path), "%s/a.bin", g_tmp);
    ck_assert_int_eq(gdn__file_write_atomic(path, "hello\0world", 11), GDN_STATUS_OK);
    ck_assert_int_eq(gdn__file_read(path, &data, &size), GDN_STATUS_OK);
    ck_assert_uint_eq(size, 11);
    ck_assert_int_eq(memcmp(data, "hello\0world", 11), 0);
    ck_assert_int_eq(data[11], '\0'); /* NUL-terminated */
    gdn__free(data);
    /* replacing an existing file */
    ck_assert_int_eq(gdn__file_write_atomic(path, "x", 1), GDN_STATUS_OK);
    ck_assert_int_eq(gdn__file_read(path, &data, &size), GDN_STATUS_OK);
    ck_assert_uint_eq(size, 1);
    ck_assert_str_eq(data, "x");
    gdn__free(data);
    /* an empty file */
    ck_assert_int_eq(gdn__file_write_atomic(path, "", 0), GDN_STATUS_OK);
    ck_assert_int_eq(gdn__file_read(path, &data, &size), GDN_STATUS_OK);
    ck_assert_uint_eq(size, 0);
    ck_assert_ptr_nonnull(data);
    ck_assert_str_eq(data, "");
    gdn__free(data);
    /* no temporary file is left behind */
    ck_assert_int_eq(count_entries(g_tmp), 1);

    /* into a missing folder: IO, nothing created */
    snprintf(sub, sizeof(sub), "%s/missing/b.bin", g_tmp);
    ck_assert_int_eq(gdn__file_write_atomic(sub, "x", 1), GDN_STATUS_IO);
    /* over a folder: the rename fails, the temporary file is removed */
    snprintf(sub, sizeof(sub), "%s/dir", g_tmp);
    ck_assert_int_eq(mkdir(sub, 0755), 0);
    {
        char inner[600];
        snprintf(inner, sizeof(inner), "%s/keep", sub);
        ck_assert_int_eq(gdn__file_write_atomic(inner, "k", 1), GDN_STATUS_OK);
    }
    ck_assert_int_eq(gdn__file_write_atomic(sub, "x", 1), GDN_STATUS_IO);
    ck_assert_int_eq(count_entries(g_tmp), 2); /* a.bin and dir only */

    /* reading what is not there */
    snprintf(sub, sizeof(sub), "%s/nope", g_tmp);
    data = (char *)sub;
    ck_assert_int_eq(gdn__file_read(sub, &data, &size), GDN_STATUS_IO);
    ck_assert_ptr_null(data);
    ck_assert_uint_eq(size, 0);
}
END_TEST

START_TEST(file_mkdirs)
{
    char path[512], file[512];
    struct stat st;

    snprintf(path, sizeof(path), "%s/a/b/c/", g_tmp);
    ck_assert_int_eq(gdn__mkdirs(path), GDN_STATUS_OK);
    ck_assert_int_eq(stat(path, &st), 0);
    ck_assert(S_ISDIR(st.st_mode));
    ck_assert_int_eq(gdn__mkdirs(path), GDN_STATUS_OK); /* exists already */
    /* under a regular file */
    snprintf(file, sizeof(file), "%s/plain", g_tmp);
    ck_assert_int_eq(gdn__file_write_atomic(file, "x", 1), GDN_STATUS_OK);
    snprintf(path, sizeof(path), "%s/plain/sub/dir", g_tmp);
    ck_assert_int_eq(gdn__mkdirs(path), GDN_STATUS_IO);
    snprintf(path, sizeof(path), "%s/plain/sub", g_tmp);
    ck_assert_int_eq(gdn__mkdirs(path), GDN_STATUS_IO);
}
END_TEST

/* ---------------------------------------------------------------- embedded kernels */

START_TEST(embedded_sources)
{
    size_t i;
    ck_assert_uint_gt(gdn__cl_sources_count, 0);
    for (i = 0; i < gdn__cl_sources_count; i++) {
        const struct gdn_cl_source *s = &gdn__cl_sources[i];
        char                        hex[65], marker[300];
        ck_assert_ptr_eq(gdn__cl_source_find(s->path), s);
        ck_assert_uint_eq(strlen(s->text), s->size);
        hex_of(s->text, s->size, hex);
        ck_assert_str_eq(hex, s->sha256);
        snprintf(marker, sizeof(marker), "#line 1 \"%s\"\n", s->path);
        ck_assert_msg(strncmp(s->text, marker, strlen(marker)) == 0,
                      "%s does not start with a #line marker", s->path);
        ck_assert_msg(strstr(s->text, "#include \"") == NULL, "%s: an #include was not expanded",
                      s->path);
    }
    ck_assert_ptr_null(gdn__cl_source_find("core/missing.cl"));
    ck_assert_ptr_nonnull(gdn__cl_source_find("core/fill.cl"));
    ck_assert_ptr_nonnull(strstr(gdn__cl_source_find("core/fill.cl")->text,
                                 "#line 1 \"include/gdn_common.clh\""));
}
END_TEST

START_TEST(build_log_locations)
{
    /* what NVIDIA's compiler prints for a source whose #line markers it
     * ignores; physical line 6 is core/fill.cl line 4 */
    static const char src[] = "#line 1 \"core/fill.cl\"\n"   /* 1 */
                              "#line 1 \"include/x.clh\"\n"  /* 2 */
                              "x1\n"                          /* 3: x.clh 1 */
                              "#line 3 \"core/fill.cl\"\n"   /* 4 */
                              "f3\n"                          /* 5: fill.cl 3 */
                              "f4 error here\n"               /* 6: fill.cl 4 */
                              "f5\n";                         /* 7 */
    char *m;
    m = gdn__map_log_locations("<kernel>:6:13: error: bad\n<kernel>:3:1: note\n", src);
    ck_assert_str_eq(m, "core/fill.cl:4:13: error: bad\ninclude/x.clh:1:1: note\n");
    gdn__free(m);
    m = gdn__map_log_locations("<kernel>:7:2 <kernel>:99:1 <kernel>:x <kernel>:", src);
    ck_assert_str_eq(m, "core/fill.cl:5:2 <kernel>:99:1 <kernel>:x <kernel>:");
    gdn__free(m);
    m = gdn__map_log_locations("core/fill.cl:9:13: error (clang honours #line)", src);
    ck_assert_str_eq(m, "core/fill.cl:9:13: error (clang honours #line)");
    gdn__free(m);
    m = gdn__map_log_locations("", src);
    ck_assert_str_eq(m, "");
    gdn__free(m);
}
END_TEST

#ifdef GDN_TEST_CL_DIR
/* The run-time expander (kernel_dir / GDN_CL_DIR) produces exactly what the
 * build-time generator (cl/embed_cl.py) embedded, for every kernel. */
START_TEST(embedded_equals_runtime_expansion)
{
    gdn_context *ctx = calloc(1, sizeof(*ctx));
    size_t       i;
    ck_assert_ptr_nonnull(ctx);
    ctx->log_level  = GDN_LOG_LEVEL_WARN;
    ctx->kernel_dir = GDN_TEST_CL_DIR;
    for (i = 0; i < gdn__cl_sources_count; i++) {
        const struct gdn_cl_source *s = &gdn__cl_sources[i];
        char                       *text = NULL;
        size_t                      size = 0;
        ck_assert_int_eq(gdn__source_load(ctx, s->path, &text, &size), GDN_STATUS_OK);
        ck_assert_uint_eq(size, s->size);
        ck_assert_msg(strcmp(text, s->text) == 0, "%s: run-time expansion differs", s->path);
        gdn__free(text);
    }
    /* a missing file: IO with the path in the message */
    {
        char  *text = (char *)"x";
        size_t size = 1;
        ck_assert_int_eq(gdn__source_load(ctx, "core/missing.cl", &text, &size), GDN_STATUS_IO);
        ck_assert_ptr_null(text);
        ck_assert_ptr_nonnull(strstr(ctx->last_error.data, "core/missing.cl"));
    }
    gdn__strbuf_free(&ctx->last_error);
    free(ctx);
}
END_TEST
#endif

#if defined(GDN_TEST_PYTHON) && defined(GDN_TEST_EMBED_CL)
/* The byte array src_0 of a file generated by embed_cl.py, as a string. */
static char *parse_generated(const char *c_text)
{
    const char *p = strstr(c_text, "src_0[] = {");
    char       *out, *o;
    ck_assert_ptr_nonnull(p);
    out = o = malloc(strlen(p));
    ck_assert_ptr_nonnull(out);
    p += strlen("src_0[] = {");
    while ((p = strpbrk(p, "0}")) != NULL && *p == '0') {
        unsigned v;
        ck_assert_int_eq(sscanf(p, "0x%2x", &v), 1);
        *o++ = (char)v;
        p += 4;
    }
    ck_assert_ptr_nonnull(p);
    ck_assert(o > out && o[-1] == '\0');
    return out;
}

/* Both expanders (embed_cl.py at build time, program.c for kernel_dir /
 * GDN_CL_DIR) treat unusual include lines and CRLF line ends the same. */
START_TEST(expanders_agree_on_odd_input)
{
    static const char kernel[] =
        "/* odd include lines */\n"
        "#include \"a.clh\"\n"
        "  #  include   \"b.clh\"  \r\n"
        "#include \"c.clh\" // a comment: not an include line for either\n"
        "#include <d.clh>\n"
        "#includex \"a.clh\"\n"
        "#include\"a.clh\"\n"
        "#include \"\"\n"
        "\t#include\t\"c.clh\"\r\n"
        "\n"
        "last line without a newline";
    gdn_context *ctx = calloc(1, sizeof(*ctx));
    char         path[512], out_c[512], cmd[2048], *gen = NULL, *text = NULL, *want;
    size_t       size;

    ck_assert_ptr_nonnull(ctx);
    snprintf(path, sizeof(path), "%s/include", g_tmp);
    ck_assert_int_eq(gdn__mkdirs(path), GDN_STATUS_OK);
    snprintf(path, sizeof(path), "%s/include/a.clh", g_tmp);
    ck_assert_int_eq(gdn__file_write_atomic(path, "A1\nA2\n", 6), GDN_STATUS_OK);
    snprintf(path, sizeof(path), "%s/include/b.clh", g_tmp);
    ck_assert_int_eq(gdn__file_write_atomic(path, "B1\r\n#include \"a.clh\"\r\n", 22),
                     GDN_STATUS_OK);
    snprintf(path, sizeof(path), "%s/include/c.clh", g_tmp);
    ck_assert_int_eq(gdn__file_write_atomic(path, "C1", 2), GDN_STATUS_OK);
    snprintf(path, sizeof(path), "%s/k.cl", g_tmp);
    ck_assert_int_eq(gdn__file_write_atomic(path, kernel, strlen(kernel)), GDN_STATUS_OK);
    snprintf(out_c, sizeof(out_c), "%s/out.c", g_tmp);
    snprintf(cmd, sizeof(cmd), "'%s' '%s' --root '%s' --out '%s' '%s'", GDN_TEST_PYTHON,
             GDN_TEST_EMBED_CL, g_tmp, out_c, path);
    ck_assert_msg(system(cmd) == 0, "%s failed", cmd);
    ck_assert_int_eq(gdn__file_read(out_c, &gen, &size), GDN_STATUS_OK);
    want = parse_generated(gen);

    ctx->log_level  = GDN_LOG_LEVEL_WARN;
    ctx->kernel_dir = g_tmp;
    ck_assert_int_eq(gdn__source_load(ctx, "k.cl", &text, &size), GDN_STATUS_OK);
    ck_assert_msg(strcmp(text, want) == 0, "embed_cl.py:\n%s\n---- program.c:\n%s", want, text);
    /* and what that is: a, b (with a inside) and the tab-separated c are
     * expanded; the rest passes through; CR are gone */
    ck_assert_ptr_nonnull(strstr(text, "#line 1 \"include/a.clh\"\nA1\nA2\n#line 3 \"k.cl\"\n"));
    ck_assert_ptr_nonnull(strstr(text, "#line 1 \"include/b.clh\"\nB1\n#line 1 \"include/a.clh\""));
    ck_assert_ptr_nonnull(strstr(text, "\n#include \"c.clh\" // a comment"));
    ck_assert_ptr_nonnull(strstr(text, "#line 1 \"include/c.clh\"\nC1\n#line 10 \"k.cl\"\n"));
    ck_assert_ptr_null(strchr(text, '\r'));
    ck_assert_ptr_nonnull(strstr(text, "\nlast line without a newline\n"));
    free(want);
    gdn__free(gen);
    gdn__free(text);
    gdn__strbuf_free(&ctx->last_error);
    free(ctx);
}
END_TEST
#endif

static Suite *status_suite(void)
{
    Suite *s = suite_create("host");
    TCase *tc;

    tc = tcase_create("status");
    tcase_add_loop_test(tc, status_each, 0, (int)GDN_ARRAY_SIZE(k_statuses));
    tcase_add_test(tc, status_values_dense);
    tcase_add_test(tc, status_unknown);
    tcase_add_test(tc, version_matches_header);
    tcase_add_test(tc, dtype_sizes);
    suite_add_tcase(s, tc);

    tc = tcase_create("core");
    tcase_add_test(tc, sha256_vectors);
    tcase_add_test(tc, defines_sorted);
    tcase_add_test(tc, defines_overflow);
    tcase_add_test(tc, strbuf_basic);
    tcase_add_test(tc, strbuf_oom);
    tcase_add_test(tc, alloc_fail_injection);
    tcase_add_test(tc, checked_sizes);
    tcase_add_test(tc, strings);
    suite_add_tcase(s, tc);

    tc = tcase_create("files");
    tcase_add_checked_fixture(tc, tmp_setup, tmp_teardown);
    tcase_add_test(tc, file_atomic_write);
    tcase_add_test(tc, file_mkdirs);
#if defined(GDN_TEST_PYTHON) && defined(GDN_TEST_EMBED_CL)
    tcase_add_test(tc, expanders_agree_on_odd_input);
#endif
    suite_add_tcase(s, tc);

    tc = tcase_create("embed");
    tcase_add_test(tc, embedded_sources);
    tcase_add_test(tc, build_log_locations);
#ifdef GDN_TEST_CL_DIR
    tcase_add_test(tc, embedded_equals_runtime_expansion);
#endif
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(status_suite());
    int      failed;
    srunner_run_all(sr, CK_ENV);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
