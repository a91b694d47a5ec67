/*
 * test_cache.c - device suite: the on-disk program cache across processes.
 *
 * Each check starts this same program again as a child process
 * (`test_cache --child <mode>`, through posix_spawn) with GDN_CACHE,
 * GDN_CACHE_DIR, ... set; the child creates a context, fills a tensor twice,
 * checks the result and prints its build counters:
 *
 *     builds_from_source=1 disk_hits=0 memory_hits=1 result=ok
 *
 * and the parent checks them: the first process builds from source and
 * writes <dir>/programs/<key>.clbin, the second loads it without building.
 * Corrupt entries (truncated, flipped payload byte, wrong magic, wrong
 * format, a binary the driver rejects) are detected, logged, rebuilt and
 * rewritten; an unwritable folder only turns the cache off; GDN_CACHE=0 and
 * params.disk_cache = 0 write nothing. Every child's output is printed, so
 * the counters show in the test log.
 */
#define _POSIX_C_SOURCE 200809L
#include <check.h>
#include <dirent.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "gdn.h"
#include "runtime.h"

extern char **environ;

#define TIMEOUT_S 600
#define HDR_SIZE  56 /* magic 8, format 8, payload size 8, sha256 32 (program.c) */

/* ================================================================ the child */

static void child_log(void *user, gdn_log_level level, const char *msg)
{
    (void)user;
    printf("log[%d] %s\n", (int)level, msg);
}

/* modes: "plain"; "nodisk" (params.disk_cache = 0); "opts" (extra build
 * option, so another cache key) */
static int child_main(const char *mode)
{
    gdn_context_params p;
    gdn_context       *ctx = NULL;
    gdn_tensor        *t   = NULL;
    const int64_t      shape[1] = {1000};
    float              out[1000];
    int                i, ok = 1;
    gdn_status         st;
    double             t0;

    gdn_context_params_init(&p);
    p.log_fn    = child_log;
    p.log_level = GDN_LOG_LEVEL_INFO;
    if (!strcmp(mode, "nodisk"))
        p.disk_cache = 0;
    if (!strcmp(mode, "opts"))
        p.build_options = "-DGDN_TEST_UNUSED_OPTION=1";
    st = gdn_context_create(&p, &ctx);
    if (st) {
        printf("gdn_context_create: %s\n", gdn_status_name(st));
        return 2;
    }
    printf("cache_dir=%s\n", ctx->cache_dir ? ctx->cache_dir : "off");
    t0 = gdn__now();
    if ((st = gdn_tensor_create(ctx, GDN_DTYPE_F32, 1, shape, &t)) ||
        (st = gdn_tensor_fill(t, 1.0f)) || (st = gdn_tensor_fill(t, 2.5f)) ||
        (st = gdn_tensor_read(t, out, 0, sizeof(out)))) {
        printf("failed: %s: %s\n", gdn_status_name(st), gdn_context_last_error(ctx));
        ok = 0;
    }
    for (i = 0; ok && i < 1000; i++)
        if (out[i] != 2.5f)
            ok = 0;
    printf("builds_from_source=%d disk_hits=%d memory_hits=%d result=%s (%.0f ms to the first "
           "result)\n",
           ctx->stats.builds_from_source, ctx->stats.disk_hits, ctx->stats.memory_hits,
           ok ? "ok" : "WRONG", 1e3 * (gdn__now() - t0));
    printf("cache_dir_after=%s\n", ctx->cache_dir ? ctx->cache_dir : "off");
    gdn_tensor_destroy(t);
    gdn_context_destroy(ctx);
    fflush(stdout);
    return ok ? 0 : 3;
}

/* ================================================================ the parent */

struct child_result {
    char text[65536];
    int  builds, disk_hits, memory_hits;
    int  exit_code;
    char cache_dir[600], cache_dir_after[600];
};

/* The last part of a child's output, for assertion messages (Check limits
 * their length; the whole output is printed to the log anyway). */
static const char *tail(const char *text)
{
    size_t n = strlen(text);
    return n > 2000 ? text + n - 2000 : text;
}

static void run_child(const char *mode, struct child_result *r)
{
    char                       exe[64];
    ssize_t                    n;
    int                        fds[2], status = 0;
    pid_t                      pid;
    posix_spawn_file_actions_t fa;
    char                      *argv[4];
    size_t                     len = 0;
    const char                *s;
    static int                 run_no;

    memset(r, 0, sizeof(*r));
    r->builds = r->disk_hits = r->memory_hits = -1;
    /* /proc/self/exe, not the path it names: it still runs this program
     * when the file has been relinked meanwhile */
    snprintf(exe, sizeof(exe), "/proc/self/exe");
    ck_assert_int_eq(pipe(fds), 0);
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
    posix_spawn_file_actions_adddup2(&fa, fds[1], 2);
    posix_spawn_file_actions_addclose(&fa, fds[0]);
    posix_spawn_file_actions_addclose(&fa, fds[1]);
    argv[0] = exe;
    argv[1] = (char *)"--child";
    argv[2] = (char *)mode;
    argv[3] = NULL;
    ck_assert_int_eq(posix_spawn(&pid, exe, &fa, NULL, argv, environ), 0);
    posix_spawn_file_actions_destroy(&fa);
    close(fds[1]);
    for (;;) {
        char junk[4096];
        /* keep reading past a full buffer: the child must not get SIGPIPE */
        if (len < sizeof(r->text) - 1)
            n = read(fds[0], r->text + len, sizeof(r->text) - 1 - len);
        else
            n = read(fds[0], junk, sizeof(junk));
        if (n <= 0)
            break;
        if (len < sizeof(r->text) - 1)
            len += (size_t)n;
    }
    r->text[len] = '\0';
    close(fds[0]);
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    r->exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    /* into the test log */
    printf("---- child %d (%s, GDN_CACHE=%s): exit %d\n%s", ++run_no, mode,
           getenv("GDN_CACHE") ? getenv("GDN_CACHE") : "(unset)", r->exit_code, r->text);
    fflush(stdout);
    if ((s = strstr(r->text, "builds_from_source=")) != NULL)
        sscanf(s, "builds_from_source=%d disk_hits=%d memory_hits=%d", &r->builds, &r->disk_hits,
               &r->memory_hits);
    if ((s = strstr(r->text, "cache_dir=")) != NULL)
        sscanf(s, "cache_dir=%599[^\n]", r->cache_dir);
    if ((s = strstr(r->text, "cache_dir_after=")) != NULL)
        sscanf(s, "cache_dir_after=%599[^\n]", r->cache_dir_after);
    ck_assert_msg(r->exit_code == 0, "child (%s) failed with %d:\n%s", mode, r->exit_code,
                  tail(r->text));
    ck_assert_msg(strstr(r->text, "result=ok") != NULL, "child (%s) gave wrong results:\n%s",
                  mode, tail(r->text));
    /* the second fill always reuses the program in memory */
    ck_assert_int_eq(r->memory_hits, 1);
}

static void expect_counts(const struct child_result *r, int builds, int disk_hits)
{
    ck_assert_msg(r->builds == builds && r->disk_hits == disk_hits,
                  "expected builds_from_source=%d disk_hits=%d, got %d and %d:\n%s", builds,
                  disk_hits, r->builds, r->disk_hits, tail(r->text));
}

/* ---------------------------------------------------------------- files */

static char g_tmp[256];

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

/* Each test: a fresh folder, and a known environment (inherited by the
 * children). Tests run in forked processes, so nothing leaks between them. */
static void setup(void)
{
    const char *base = getenv("TMPDIR");
    snprintf(g_tmp, sizeof(g_tmp), "%s/gdn_test_cache_XXXXXX", base && *base ? base : "/tmp");
    ck_assert_ptr_nonnull(mkdtemp(g_tmp));
    unsetenv("GDN_CL_DIR");
    unsetenv("GDN_LOG");
    setenv("GDN_CACHE_DIR", g_tmp, 1);
    setenv("GDN_CACHE", "force", 1);
}

static void teardown(void)
{
    rm_rf(g_tmp);
}

/* Count files under dir ending in suffix ("" = all); put the last one found
 * in path (if not NULL). -1 when dir does not exist. */
static int count_files(const char *dir, const char *suffix, char *path, size_t cap)
{
    DIR           *d = opendir(dir);
    struct dirent *e;
    int            n = 0;
    if (!d)
        return -1;
    while ((e = readdir(d)) != NULL) {
        size_t l = strlen(e->d_name), ls = strlen(suffix);
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        if (l >= ls && !strcmp(e->d_name + l - ls, suffix)) {
            n++;
            if (path)
                snprintf(path, cap, "%s/%s", dir, e->d_name);
        }
    }
    closedir(d);
    return n;
}

static void programs_dir(char *out, size_t cap)
{
    snprintf(out, cap, "%s/programs", g_tmp);
}

/* Exactly one .clbin and nothing else (no temporary files) under programs/;
 * returns its path in file. */
static void expect_one_entry(char *file, size_t cap)
{
    char dir[300];
    programs_dir(dir, sizeof(dir));
    ck_assert_int_eq(count_files(dir, ".clbin", file, cap), 1);
    ck_assert_int_eq(count_files(dir, "", NULL, 0), 1);
}

/* ================================================================ tests */

START_TEST(second_process_loads_from_disk)
{
    struct child_result r;
    char                file[700], *data = NULL;
    size_t              size;

    run_child("plain", &r);
    expect_counts(&r, 1, 0);
    ck_assert_str_eq(r.cache_dir, g_tmp);
    expect_one_entry(file, sizeof(file));
    ck_assert_int_eq(gdn__file_read(file, &data, &size), GDN_STATUS_OK);
    ck_assert_uint_gt(size, HDR_SIZE);
    ck_assert_int_eq(memcmp(data, "GDNPBIN\n", 8), 0);
    gdn__free(data);
    printf("first process: builds_from_source=%d disk_hits=%d; entry %s (%zu bytes)\n", r.builds,
           r.disk_hits, file, size);

    run_child("plain", &r);
    expect_counts(&r, 0, 1);
    printf("second process: builds_from_source=%d disk_hits=%d\n", r.builds, r.disk_hits);
    ck_assert_msg(strstr(r.text, "log[1]") == NULL, "no warnings expected:\n%s", tail(r.text));
    expect_one_entry(file, sizeof(file));

    /* other build options: another key, another entry */
    run_child("opts", &r);
    expect_counts(&r, 1, 0);
    programs_dir(file, sizeof(file));
    ck_assert_int_eq(count_files(file, ".clbin", NULL, 0), 2);
    run_child("opts", &r);
    expect_counts(&r, 0, 1);
}
END_TEST

/* Corruptions of a cache entry and the reason the library gives. */
enum corruption { TRUNCATE_PAYLOAD, TRUNCATE_HEADER, EMPTY, FLIP_PAYLOAD, FLIP_CHECKSUM, BAD_MAGIC,
                  BAD_FORMAT, BAD_BINARY };
static const struct {
    enum corruption kind;
    const char     *name;
    const char     *reason; /* NULL: either of the driver reasons */
} k_corruptions[] = {
    {TRUNCATE_PAYLOAD, "payload truncated", "truncated"},
    {TRUNCATE_HEADER, "header truncated", "bad header"},
    {EMPTY, "empty file", "bad header"},
    {FLIP_PAYLOAD, "payload byte flipped", "checksum mismatch"},
    {FLIP_CHECKSUM, "checksum byte flipped", "checksum mismatch"},
    {BAD_MAGIC, "wrong magic", "bad header"},
    {BAD_FORMAT, "other format version", "other format version"},
    {BAD_BINARY, "a consistent file whose binary is garbage", NULL},
};

static void put_u64le(unsigned char *p, uint64_t v)
{
    int i;
    for (i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static void corrupt(const char *file, enum corruption kind)
{
    char          *data = NULL;
    size_t         size, new_size;
    unsigned char *p;
    FILE          *f;

    ck_assert_int_eq(gdn__file_read(file, &data, &size), GDN_STATUS_OK);
    ck_assert_uint_gt(size, HDR_SIZE + 16);
    p        = (unsigned char *)data;
    new_size = size;
    switch (kind) {
    case TRUNCATE_PAYLOAD:
        new_size = HDR_SIZE + (size - HDR_SIZE) / 2;
        break;
    case TRUNCATE_HEADER:
        new_size = 10;
        break;
    case EMPTY:
        new_size = 0;
        break;
    case FLIP_PAYLOAD:
        p[HDR_SIZE + (size - HDR_SIZE) / 3] ^= 0x40;
        break;
    case FLIP_CHECKSUM:
        p[30] ^= 0x01;
        break;
    case BAD_MAGIC:
        memcpy(p, "NOTABIN\n", 8);
        break;
    case BAD_FORMAT:
        put_u64le(p + 8, 999);
        break;
    case BAD_BINARY: {
        /* valid header and checksum around 256 bytes of junk */
        size_t i;
        new_size = HDR_SIZE + 256;
        for (i = 0; i < 256; i++)
            p[HDR_SIZE + i] = (unsigned char)(i * 37 + 11);
        put_u64le(p + 16, 256);
        {
            struct gdn_sha256 s;
            uint8_t           d[32];
            gdn__sha256_init(&s);
            gdn__sha256_update(&s, p + HDR_SIZE, 256);
            gdn__sha256_final(&s, d);
            memcpy(p + 24, d, 32);
        }
        break;
    }
    }
    f = fopen(file, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(p, 1, new_size, f), new_size);
    ck_assert_int_eq(fclose(f), 0);
    gdn__free(data);
}

START_TEST(corrupt_entry_is_rebuilt)
{
    struct child_result r;
    char                file[700], want[200];
    int                 c = _i;

    printf("==== corruption: %s\n", k_corruptions[c].name);
    if (k_corruptions[c].kind == BAD_BINARY) {
        /* Mesa 22.3's rusticl panics (aborts the process) on a binary it
         * cannot parse instead of returning CL_INVALID_BINARY. The cache never
         * feeds a driver a binary it did not write itself (the key covers
         * device, driver and platform versions; the checksum covers the
         * bytes), so only this deliberately forged entry can reach it. */
        gdn_device_info info;
        int32_t         idx;
        ck_assert_int_eq(gdn_device_default(&idx), GDN_STATUS_OK);
        ck_assert_int_eq(gdn_device_get_info(idx, &info), GDN_STATUS_OK);
        if (!strcmp(info.platform_name, "rusticl")) {
            printf("skipped on rusticl (it aborts on a forged binary)\n");
            return;
        }
    }
    run_child("plain", &r);
    expect_counts(&r, 1, 0);
    expect_one_entry(file, sizeof(file));
    corrupt(file, k_corruptions[c].kind);

    /* detected, logged as a warning, rebuilt from source, correct results */
    run_child("plain", &r);
    expect_counts(&r, 1, 0);
    ck_assert_msg(strstr(r.text, "log[1] program cache entry ") != NULL,
                  "no warning about the corrupt entry:\n%s", tail(r.text));
    if (k_corruptions[c].reason) {
        snprintf(want, sizeof(want), "is unusable (%s); rebuilding it", k_corruptions[c].reason);
        ck_assert_msg(strstr(r.text, want) != NULL, "expected '%s' in:\n%s", want, tail(r.text));
    } else {
        ck_assert_msg(strstr(r.text, "is unusable (driver rejected the binary)") != NULL ||
                          strstr(r.text, "is unusable (building the binary failed)") != NULL,
                      "expected the driver to refuse the junk binary:\n%s", tail(r.text));
    }
    /* the rebuilt program was stored again, and the next process uses it */
    expect_one_entry(file, sizeof(file));
    run_child("plain", &r);
    expect_counts(&r, 0, 1);
    ck_assert_msg(strstr(r.text, "log[1]") == NULL, "no warnings expected:\n%s", tail(r.text));
}
END_TEST

START_TEST(unwritable_folder_turns_the_cache_off)
{
    struct child_result r;
    char                plain[400], dir[500];
    FILE               *f;

    /* a folder below a regular file can never be created (even by root) */
    snprintf(plain, sizeof(plain), "%s/regular_file", g_tmp);
    f = fopen(plain, "w");
    ck_assert_ptr_nonnull(f);
    fputs("not a folder\n", f);
    fclose(f);
    snprintf(dir, sizeof(dir), "%s/cache", plain);
    setenv("GDN_CACHE_DIR", dir, 1);
    run_child("plain", &r);
    expect_counts(&r, 1, 0);
    ck_assert_str_eq(r.cache_dir, dir);
    ck_assert_str_eq(r.cache_dir_after, "off");
    ck_assert_msg(strstr(r.text, "log[2] cannot write the program cache under") != NULL,
                  "expected an INFO line about the unwritable cache:\n%s", tail(r.text));
    ck_assert_msg(strstr(r.text, "log[1]") == NULL && strstr(r.text, "log[0]") == NULL,
                  "an unwritable cache is not worth a warning:\n%s", tail(r.text));
    run_child("plain", &r);
    expect_counts(&r, 1, 0);
    ck_assert_int_eq(count_files(g_tmp, "", NULL, 0), 1); /* just the regular file */
}
END_TEST

START_TEST(cache_disabled_writes_nothing)
{
    struct child_result r;

    setenv("GDN_CACHE", "0", 1);
    run_child("plain", &r);
    expect_counts(&r, 1, 0);
    ck_assert_str_eq(r.cache_dir, "off");
    run_child("plain", &r);
    expect_counts(&r, 1, 0);
    ck_assert_int_eq(count_files(g_tmp, "", NULL, 0), 0);

    /* params.disk_cache = 0 wins over GDN_CACHE=force */
    setenv("GDN_CACHE", "force", 1);
    run_child("nodisk", &r);
    expect_counts(&r, 1, 0);
    ck_assert_str_eq(r.cache_dir, "off");
    ck_assert_int_eq(count_files(g_tmp, "", NULL, 0), 0);
}
END_TEST

START_TEST(cache_folder_from_xdg_and_home)
{
    struct child_result r;
    char                xdg[400], home[400], dir[500];

    unsetenv("GDN_CACHE_DIR");
    if (!getenv("POCL_CACHE_DIR")) {
        /* keep PoCL's own cache where it was (it also follows XDG_CACHE_HOME
         * and HOME), so PoCL does not compile from scratch here */
        char        pocl[600];
        const char *x = getenv("XDG_CACHE_HOME"), *h = getenv("HOME");
        if (x && *x)
            snprintf(pocl, sizeof(pocl), "%s/pocl/kcache", x);
        else
            snprintf(pocl, sizeof(pocl), "%s/.cache/pocl/kcache", h ? h : "/tmp");
        setenv("POCL_CACHE_DIR", pocl, 1);
    }
    snprintf(xdg, sizeof(xdg), "%s/xdg", g_tmp);
    setenv("XDG_CACHE_HOME", xdg, 1);
    run_child("plain", &r);
    expect_counts(&r, 1, 0);
    snprintf(dir, sizeof(dir), "%s/gdn", xdg);
    ck_assert_str_eq(r.cache_dir, dir);
    snprintf(dir, sizeof(dir), "%s/gdn/programs", xdg);
    ck_assert_int_eq(count_files(dir, ".clbin", NULL, 0), 1);
    run_child("plain", &r);
    expect_counts(&r, 0, 1);

    unsetenv("XDG_CACHE_HOME");
    snprintf(home, sizeof(home), "%s/home", g_tmp);
    setenv("HOME", home, 1);
    run_child("plain", &r);
    expect_counts(&r, 1, 0);
    snprintf(dir, sizeof(dir), "%s/.cache/gdn", home);
    ck_assert_str_eq(r.cache_dir, dir);
    snprintf(dir, sizeof(dir), "%s/.cache/gdn/programs", home);
    ck_assert_int_eq(count_files(dir, ".clbin", NULL, 0), 1);
}
END_TEST

START_TEST(default_mode)
{
    /* GDN_CACHE unset: on PoCL the library leaves caching to PoCL's own cache
     * (reading CL_PROGRAM_BINARIES there costs an extra compile); elsewhere
     * (rusticl, GPU drivers) the disk cache is on. */
    struct child_result r;
    gdn_device_info     info;
    int32_t             idx;
    int                 pocl;

    unsetenv("GDN_CACHE");
    ck_assert_int_eq(gdn_device_default(&idx), GDN_STATUS_OK);
    ck_assert_int_eq(gdn_device_get_info(idx, &info), GDN_STATUS_OK);
    pocl = gdn__strcasestr(info.platform_name, "Portable Computing Language") ||
           gdn__strcasestr(info.platform_name, "pocl");
    run_child("plain", &r);
    expect_counts(&r, 1, 0);
    if (pocl) {
        printf("default mode on %s: disk cache left to PoCL\n", info.platform_name);
        ck_assert_str_eq(r.cache_dir, "off");
        ck_assert_int_eq(count_files(g_tmp, "", NULL, 0), 0);
    } else {
        char file[700];
        ck_assert_str_eq(r.cache_dir, g_tmp);
        expect_one_entry(file, sizeof(file));
        run_child("plain", &r);
        expect_counts(&r, 0, 1);
        printf("default mode on %s: second process builds_from_source=%d disk_hits=%d\n",
               info.platform_name, r.builds, r.disk_hits);
    }
}
END_TEST

static Suite *cache_suite(void)
{
    Suite *s  = suite_create("cache");
    TCase *tc = tcase_create("disk");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, TIMEOUT_S);
    tcase_add_test(tc, second_process_loads_from_disk);
    tcase_add_loop_test(tc, corrupt_entry_is_rebuilt, 0, (int)GDN_ARRAY_SIZE(k_corruptions));
    tcase_add_test(tc, unwritable_folder_turns_the_cache_off);
    tcase_add_test(tc, cache_disabled_writes_nothing);
    tcase_add_test(tc, cache_folder_from_xdg_and_home);
    tcase_add_test(tc, default_mode);
    suite_add_tcase(s, tc);
    return s;
}

/* Whether an OpenCL device exists, asked in a child process (OpenCL must not
 * be initialised in this process before Check forks: see test_runtime.c). */
static int have_device(void)
{
    int   status = 0;
    pid_t pid    = fork();
    if (pid == 0) {
        int32_t n = 0;
        _exit(gdn_device_count(&n) == GDN_STATUS_OK && n > 0 ? 0 : 1);
    }
    if (pid < 0 || waitpid(pid, &status, 0) != pid)
        return 0;
    return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

int main(int argc, char **argv)
{
    SRunner *sr;
    int      failed;

    if (argc >= 3 && !strcmp(argv[1], "--child"))
        return child_main(argv[2]);
    if (!have_device()) {
        printf("no OpenCL device: skipping\n");
        return 77;
    }
    sr = srunner_create(cache_suite());
    srunner_run_all(sr, CK_ENV);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
