/*
 * program.c - kernel sources and program building, with two caches.
 *
 * Sources: cl/<op>/<stage>.cl, embedded at build time by cl/embed_cl.py
 * (includes expanded, #line markers kept) or, when a kernel folder is set
 * (gdn_context_params.kernel_dir / GDN_CL_DIR), read from that folder and
 * expanded the same way here, so edits take effect without a rebuild.
 *
 * Caches:
 *   - in memory, per context: (path, options) -> cl_program + its kernels;
 *   - on disk: <cache_dir>/programs/<key>.clbin, key = sha256 over (source
 *     text, options, device name, driver version, platform version, library
 *     version, cache format). File = magic, format, payload size, sha256 of
 *     payload, payload (the device binary). A file that fails any check is
 *     logged, removed and rebuilt. Writes are atomic (temp file + rename); a
 *     folder that cannot be written only turns the disk cache off.
 *   - On PoCL the disk cache is off by default (context.c): PoCL caches
 *     binaries itself and reading CL_PROGRAM_BINARIES forces a recompile.
 */
#define _POSIX_C_SOURCE 200809L
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cl_sources.h"
#include "runtime.h"

#define CACHE_MAGIC  "GDNPBIN\n"
#define CACHE_FORMAT 1u

struct gdn_kernel_entry {
    char                    *name;
    cl_kernel                kernel;
    struct gdn_kernel_entry *next;
};

struct gdn_program_entry {
    char                     *path;
    char                     *options;
    cl_program                program;
    struct gdn_kernel_entry  *kernels;
    struct gdn_program_entry *next;
};

/* ---------------------------------------------------------------- defines */

/* Append "-DNAME=VALUE" (after a space unless first) at buf + *len; false
 * when it does not fit in cap bytes with the terminating NUL. Written out
 * by hand: one snprintf per define was the largest part of a decode step's
 * host time (callgrind: 16 k of 37 k instructions per gdn_gated_delta_step
 * on PoCL), and every launch formats its plan's options. */
static bool append_define(char *buf, size_t cap, size_t *len, bool first, const char *name,
                          int64_t value)
{
    char     digits[20]; /* 2^64 has 20 decimal digits */
    size_t   nd = 0, nn = strlen(name), need;
    uint64_t u  = value < 0 ? 0 - (uint64_t)value : (uint64_t)value;
    char    *p;

    do {
        digits[nd++] = (char)('0' + (int)(u % 10));
        u /= 10;
    } while (u);
    need = (first ? 0 : 1) + 2 + nn + 1 + (value < 0 ? 1 : 0) + nd;
    if (*len + need >= cap)
        return false;
    p = buf + *len;
    if (!first)
        *p++ = ' ';
    *p++ = '-';
    *p++ = 'D';
    memcpy(p, name, nn);
    p += nn;
    *p++ = '=';
    if (value < 0)
        *p++ = '-';
    while (nd)
        *p++ = digits[--nd];
    *p = '\0';
    *len += need;
    return true;
}

bool gdn__defines_format(const struct gdn_define *defs, size_t n, char *buf, size_t cap)
{
    struct gdn_define sorted[64];
    size_t            i, j, len = 0;

    if (n > GDN_ARRAY_SIZE(sorted) || cap == 0)
        return false;
    /* By name, insertion sort: a plan has a dozen defines. */
    for (i = 0; i < n; i++) {
        for (j = i; j > 0 && strcmp(sorted[j - 1].name, defs[i].name) > 0; j--)
            sorted[j] = sorted[j - 1];
        sorted[j] = defs[i];
    }
    buf[0] = '\0';
    for (i = 0; i < n; i++)
        if (!append_define(buf, cap, &len, i == 0, sorted[i].name, sorted[i].value))
            return false;
    return true;
}

/* ---------------------------------------------------------------- sources */

/* If [p, e) is an include line as cl/embed_cl.py reads them (its INCLUDE_RE,
 * ^\s*#\s*include\s+"([^"]+)"\s*$), point *name at the name and return its
 * length; else 0. Both expanders must agree (test/test_status.c checks). */
static size_t include_name(const char *p, const char *e, const char **name)
{
    const char *q;
    while (p < e && isspace((unsigned char)*p))
        p++;
    if (p == e || *p++ != '#')
        return 0;
    while (p < e && isspace((unsigned char)*p))
        p++;
    if (e - p < 8 || strncmp(p, "include", 7) != 0 || !isspace((unsigned char)p[7]))
        return 0;
    p += 7;
    while (p < e && isspace((unsigned char)*p))
        p++;
    if (p == e || *p != '"')
        return 0;
    q = ++p;
    while (p < e && *p != '"')
        p++;
    if (p == e || p == q)
        return 0;
    for (*name = q, q = p + 1; q < e; q++)
        if (!isspace((unsigned char)*q))
            return 0;
    return (size_t)(p - *name);
}

/* Expand `#include "x"` lines against <dir>/include/ (recursively; headers
 * carry include guards) and add #line markers, exactly like embed_cl.py
 * (which also reads CRLF line ends as LF). */
static gdn_status expand(gdn_context *ctx, const char *dir, const char *rel, const char *text,
                         struct gdn_strbuf *out, int depth)
{
    const char *line   = text;
    int         lineno = 1;

    if (depth > 16)
        return gdn__fail(ctx, GDN_STATUS_INVALID_ARGUMENT, "%s: includes nested too deeply", rel);
    gdn__strbuf_appendf(out, "#line 1 \"%s\"\n", rel);
    for (; *line; lineno++) {
        const char *end  = strchr(line, '\n');
        const char *next = end ? end + 1 : line + strlen(line);
        size_t      n    = end ? (size_t)(end - line) : strlen(line);
        const char *name = NULL;
        size_t      name_len;

        if (n > 0 && line[n - 1] == '\r')
            n--;
        name_len = include_name(line, line + n, &name);
        if (name_len) {
            struct gdn_strbuf inc_rel = {0}, inc_path = {0};
            char             *inc_text = NULL;
            size_t            inc_size;
            gdn_status        st;
            gdn__strbuf_appendf(&inc_rel, "include/%.*s", (int)name_len, name);
            gdn__strbuf_appendf(&inc_path, "%s/%s", dir, inc_rel.data ? inc_rel.data : "");
            st = gdn__file_read(inc_path.data ? inc_path.data : "", &inc_text, &inc_size);
            if (st == GDN_STATUS_OK)
                st = expand(ctx, dir, inc_rel.data, inc_text, out, depth + 1);
            else
                st = gdn__fail(ctx, GDN_STATUS_IO, "%s:%d: cannot read included file %s", rel,
                               lineno, inc_path.data ? inc_path.data : "?");
            gdn__free(inc_text);
            gdn__strbuf_free(&inc_rel);
            gdn__strbuf_free(&inc_path);
            if (st)
                return st;
            gdn__strbuf_appendf(out, "#line %d \"%s\"\n", lineno + 1, rel);
        } else {
            gdn__strbuf_append(out, line, n);
            gdn__strbuf_append(out, "\n", 1);
        }
        line = next;
    }
    return out->oom ? GDN_STATUS_OUT_OF_HOST_MEMORY : GDN_STATUS_OK;
}

gdn_status gdn__source_load(gdn_context *ctx, const char *path, char **text, size_t *size)
{
    *text = NULL;
    *size = 0;
    if (ctx->kernel_dir) {
        struct gdn_strbuf full = {0}, out = {0};
        char             *raw  = NULL;
        size_t            raw_size;
        gdn_status        st;
        gdn__strbuf_appendf(&full, "%s/%s", ctx->kernel_dir, path);
        if (full.oom) {
            gdn__strbuf_free(&full);
            return GDN_STATUS_OUT_OF_HOST_MEMORY;
        }
        st = gdn__file_read(full.data, &raw, &raw_size);
        if (st) {
            st = gdn__fail(ctx, st, "cannot read kernel source %s", full.data);
            gdn__strbuf_free(&full);
            return st;
        }
        st = expand(ctx, ctx->kernel_dir, path, raw, &out, 0);
        gdn__free(raw);
        gdn__strbuf_free(&full);
        if (st) {
            gdn__strbuf_free(&out);
            return st;
        }
        *text = out.data;
        *size = out.len;
        return GDN_STATUS_OK;
    } else {
        const struct gdn_cl_source *src = gdn__cl_source_find(path);
        if (!src)
            return gdn__fail(ctx, GDN_STATUS_INTERNAL, "kernel source %s is not embedded", path);
        *text = gdn__malloc(src->size + 1);
        if (!*text)
            return GDN_STATUS_OUT_OF_HOST_MEMORY;
        memcpy(*text, src->text, src->size + 1);
        *size = src->size;
        return GDN_STATUS_OK;
    }
}

/* The program's build log as a NUL-terminated string (caller frees), ""
 * when it could not be read back, NULL when there is none or no memory. */
static char *build_log(gdn_context *ctx, cl_program prog)
{
    size_t log_size = 0;
    char  *log;
    if (clGetProgramBuildInfo(prog, ctx->dev.id, CL_PROGRAM_BUILD_LOG, 0, NULL, &log_size) !=
            CL_SUCCESS ||
        log_size == 0 || (log = gdn__malloc(log_size + 1)) == NULL)
        return NULL;
    if (clGetProgramBuildInfo(prog, ctx->dev.id, CL_PROGRAM_BUILD_LOG, log_size, log, NULL) !=
        CL_SUCCESS)
        log[0] = '\0';
    log[log_size] = '\0';
    return log;
}

/* At GDN_LOG=debug, a built program's build log (warnings, and the register
 * reports of -cl-nv-verbose), when it has one. */
static void debug_build_log(gdn_context *ctx, const char *path, cl_program prog)
{
    char *log;
    if (ctx->log_level < GDN_LOG_LEVEL_DEBUG)
        return;
    log = build_log(ctx, prog);
    if (log && log[0])
        gdn__log(ctx, GDN_LOG_LEVEL_DEBUG, "program %s: build log:\n%s", path, log);
    gdn__free(log);
}

/* ---------------------------------------------------------------- disk cache */

static void cache_key(const gdn_context *ctx, const char *text, size_t size, const char *options,
                      char key[65])
{
    struct gdn_sha256 s;
    uint8_t           d[32];
    const char       *parts[5];
    char              fmt[32];
    size_t            i;

    snprintf(fmt, sizeof(fmt), "format %u", CACHE_FORMAT);
    parts[0] = options;
    parts[1] = ctx->dev.info.name;
    parts[2] = ctx->dev.info.driver_version;
    parts[3] = ctx->dev.platform_version;
    parts[4] = gdn_version_string();
    gdn__sha256_init(&s);
    gdn__sha256_update(&s, text, size);
    for (i = 0; i < GDN_ARRAY_SIZE(parts); i++) {
        gdn__sha256_update(&s, "\0", 1);
        gdn__sha256_update(&s, parts[i], strlen(parts[i]));
    }
    gdn__sha256_update(&s, "\0", 1);
    gdn__sha256_update(&s, fmt, strlen(fmt));
    gdn__sha256_final(&s, d);
    gdn__sha256_hex(d, key);
}

static char *cache_file(const gdn_context *ctx, const char *key)
{
    struct gdn_strbuf sb = {0};
    gdn__strbuf_appendf(&sb, "%s/programs/%s.clbin", ctx->cache_dir, key);
    if (sb.oom) {
        gdn__strbuf_free(&sb);
        return NULL;
    }
    return sb.data;
}

static uint64_t read_u64le(const unsigned char *p)
{
    uint64_t v = 0;
    int      i;
    for (i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

static void write_u64le(unsigned char *p, uint64_t v)
{
    int i;
    for (i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

#define HDR_SIZE (8 + 8 + 8 + 32)

/* Try the disk cache. Returns a built program or NULL (and logs why). */
static cl_program cache_load(gdn_context *ctx, const char *path, const char *key,
                             const char *options)
{
    char                *file = cache_file(ctx, key);
    char                *data = NULL;
    size_t               size = 0;
    const unsigned char *p;
    uint64_t             payload;
    uint8_t              digest[32];
    struct gdn_sha256    s;
    cl_program           prog = NULL;
    cl_int               err, bin_status = CL_SUCCESS;
    const char          *why  = NULL;

    if (!file)
        return NULL;
    if (gdn__file_read(file, &data, &size) != GDN_STATUS_OK) {
        gdn__free(file);
        return NULL; /* a miss */
    }
    p = (const unsigned char *)data;
    if (size < HDR_SIZE || memcmp(p, CACHE_MAGIC, 8) != 0) {
        why = "bad header";
    } else if (read_u64le(p + 8) != CACHE_FORMAT) {
        why = "other format version";
    } else if ((payload = read_u64le(p + 16)) != size - HDR_SIZE) {
        why = "truncated";
    } else {
        gdn__sha256_init(&s);
        gdn__sha256_update(&s, p + HDR_SIZE, (size_t)payload);
        gdn__sha256_final(&s, digest);
        if (memcmp(digest, p + 24, 32) != 0)
            why = "checksum mismatch";
    }
    if (!why) {
        const unsigned char *bin = p + HDR_SIZE;
        size_t               bin_size = size - HDR_SIZE;
        prog = clCreateProgramWithBinary(ctx->cl_ctx, 1, &ctx->dev.id, &bin_size, &bin,
                                         &bin_status, &err);
        if (err != CL_SUCCESS || bin_status != CL_SUCCESS) {
            why  = "driver rejected the binary";
            if (prog)
                clReleaseProgram(prog);
            prog = NULL;
        } else if (clBuildProgram(prog, 1, &ctx->dev.id, options, NULL, NULL) != CL_SUCCESS) {
            why = "building the binary failed";
            clReleaseProgram(prog);
            prog = NULL;
        }
    }
    if (why) {
        gdn__log(ctx, GDN_LOG_LEVEL_WARN, "program cache entry %s for %s is unusable (%s); "
                 "rebuilding it", file, path, why);
        remove(file);
    } else {
        gdn__log(ctx, GDN_LOG_LEVEL_DEBUG, "program %s: loaded from disk cache %s", path, file);
        debug_build_log(ctx, path, prog);
    }
    gdn__free(data);
    gdn__free(file);
    return prog;
}

static void cache_store(gdn_context *ctx, const char *path, const char *key, cl_program prog)
{
    size_t            bin_size = 0;
    unsigned char    *buf      = NULL, *bin;
    char             *file     = NULL;
    struct gdn_strbuf dir      = {0};
    struct gdn_sha256 s;
    uint8_t           digest[32];

    if (clGetProgramInfo(prog, CL_PROGRAM_BINARY_SIZES, sizeof(bin_size), &bin_size, NULL) !=
            CL_SUCCESS ||
        bin_size == 0)
        return;
    buf = gdn__malloc(HDR_SIZE + bin_size);
    if (!buf)
        return;
    bin = buf + HDR_SIZE;
    if (clGetProgramInfo(prog, CL_PROGRAM_BINARIES, sizeof(bin), &bin, NULL) != CL_SUCCESS)
        goto out;
    memcpy(buf, CACHE_MAGIC, 8);
    write_u64le(buf + 8, CACHE_FORMAT);
    write_u64le(buf + 16, bin_size);
    gdn__sha256_init(&s);
    gdn__sha256_update(&s, bin, bin_size);
    gdn__sha256_final(&s, digest);
    memcpy(buf + 24, digest, 32);
    gdn__strbuf_appendf(&dir, "%s/programs", ctx->cache_dir);
    file = cache_file(ctx, key);
    if (dir.oom || !file)
        goto out;
    if (gdn__mkdirs(dir.data) != GDN_STATUS_OK ||
        gdn__file_write_atomic(file, buf, HDR_SIZE + bin_size) != GDN_STATUS_OK) {
        gdn__log(ctx, GDN_LOG_LEVEL_INFO, "cannot write the program cache under %s; disk cache "
                 "off for this context", dir.data);
        gdn__free(ctx->cache_dir);
        ctx->cache_dir = NULL;
        goto out;
    }
    gdn__log(ctx, GDN_LOG_LEVEL_DEBUG, "program %s: stored in disk cache %s", path, file);
out:
    gdn__strbuf_free(&dir);
    gdn__free(file);
    gdn__free(buf);
}

/* ---------------------------------------------------------------- building */

/* The file and line that physical line `target` of an expanded source came
 * from, through its #line markers. */
static bool source_line(const char *src, long target, char *file, size_t cap, long *line)
{
    const char *p       = src;
    long        phys    = 1, logical = 1;
    char        cur[256] = "?";

    while (*p && phys < target) {
        const char *e = strchr(p, '\n');
        long        l;
        char        f[256];
        if (!strncmp(p, "#line ", 6) && sscanf(p, "#line %ld \"%255[^\"\n]\"", &l, f) == 2) {
            gdn__strlcpy(cur, f, sizeof(cur));
            logical = l;
        } else {
            logical++;
        }
        phys++;
        if (!e)
            return false;
        p = e + 1;
    }
    if (phys != target || !*p)
        return false;
    gdn__strlcpy(file, cur, cap);
    *line = logical;
    return true;
}

/* Some compilers ignore #line (NVIDIA's log says "<kernel>:24:13: error"):
 * rewrite such locations to the real file and line. Returns a new string
 * (or NULL when out of memory). */
char *gdn__map_log_locations(const char *log, const char *src)
{
    static const char tag[] = "<kernel>:";
    struct gdn_strbuf out   = {0};
    const char       *p     = log, *hit;

    while ((hit = strstr(p, tag)) != NULL) {
        const char *d = hit + sizeof(tag) - 1;
        char       *end;
        long        phys = strtol(d, &end, 10);
        char        file[256];
        long        line;
        gdn__strbuf_append(&out, p, (size_t)(hit - p));
        if (end != d && source_line(src, phys, file, sizeof(file), &line))
            gdn__strbuf_appendf(&out, "%s:%ld", file, line);
        else
            gdn__strbuf_append(&out, hit, (size_t)(end - hit));
        p = end;
    }
    gdn__strbuf_append(&out, p, strlen(p));
    if (out.oom) {
        gdn__strbuf_free(&out);
        return NULL;
    }
    return out.data;
}

static gdn_status build_from_source(gdn_context *ctx, const char *path, const char *text,
                                    size_t size, const char *options, cl_program *out)
{
    cl_program prog;
    cl_int     err;
    double     t0 = gdn__now();

    prog = clCreateProgramWithSource(ctx->cl_ctx, 1, &text, &size, &err);
    if (err != CL_SUCCESS)
        return gdn__fail_cl(ctx, err, "clCreateProgramWithSource");
    err = clBuildProgram(prog, 1, &ctx->dev.id, options, NULL, NULL);
    if (err != CL_SUCCESS) {
        char      *log = build_log(ctx, prog);
        gdn_status st;
        ctx->last_cl_error = err;
        if (log) {
            char *mapped = gdn__map_log_locations(log, text);
            if (mapped) {
                gdn__free(log);
                log = mapped;
            }
        }
        st = gdn__fail(ctx, err == CL_BUILD_PROGRAM_FAILURE ? GDN_STATUS_BUILD_FAILED
                                                            : gdn__status_from_cl(err),
                       "%s: build failed (%s %d) with options '%s' on '%s' (%s, driver %s):\n%s",
                       path, gdn__cl_error_name(err), (int)err, options, ctx->dev.info.name,
                       ctx->dev.info.platform_name, ctx->dev.info.driver_version,
                       log ? log : "(no build log)");
        gdn__free(log);
        clReleaseProgram(prog);
        return st;
    }
    ctx->stats.builds_from_source++;
    gdn__log(ctx, GDN_LOG_LEVEL_DEBUG, "program %s: built from source in %.1f ms (%s)", path,
             1e3 * (gdn__now() - t0), options);
    debug_build_log(ctx, path, prog);
    *out = prog;
    return GDN_STATUS_OK;
}

/* ------------------------------------------------------ register caps */

int gdn__maxreg_option(const char *options)
{
    static const char key[] = "-DGDN_MAXREG=";
    const char       *p     = options ? strstr(options, key) : NULL;
    char             *end;
    long              v;
    if (!p)
        return 0;
    v = strtol(p + sizeof(key) - 1, &end, 10);
    if (end == p + sizeof(key) - 1 || (*end && *end != ' ') || v < 16 || v > 255)
        return 0;
    return (int)v;
}

/* First occurrence of the NUL-terminated needle in hay[0 .. n), or NULL. */
static const char *find_in(const char *hay, size_t n, const char *needle)
{
    size_t m = strlen(needle), i;
    for (i = 0; m <= n && i <= n - m; i++)
        if (hay[i] == needle[0] && !memcmp(hay + i, needle, m))
            return hay + i;
    return NULL;
}

/* Where the body of the .entry at e starts ("\n{"), or NULL. */
static const char *entry_body(const char *e, const char *end)
{
    return find_in(e, (size_t)(end - e), "\n{");
}

bool gdn__ptx_cap_registers(const char *ptx, size_t size, int maxreg, char **out,
                            size_t *out_size)
{
    const char *end, *e;
    char        ins[24], *buf, *w;
    size_t      n = size, entries = 0, ins_len, total;
    const char *from;

    *out = NULL, *out_size = 0;
    while (n && ptx[n - 1] == '\0')
        n--;
    end = ptx + n;
    if (maxreg < 1 || !find_in(ptx, n, ".version ") || !find_in(ptx, n, ".target ") ||
        find_in(ptx, n, ".maxnreg"))
        return false;
    for (e = find_in(ptx, n, ".entry "); e; e = find_in(e + 1, (size_t)(end - e - 1), ".entry ")) {
        if (!entry_body(e, end))
            return false;
        entries++;
    }
    if (!entries)
        return false;
    ins_len = (size_t)snprintf(ins, sizeof(ins), "\n.maxnreg %d", maxreg);
    total   = n + entries * ins_len + (n < size ? 1 : 0);
    if (!(buf = gdn__malloc(total)))
        return false;
    w    = buf;
    from = ptx;
    for (e = find_in(ptx, n, ".entry "); e; e = find_in(e + 1, (size_t)(end - e - 1), ".entry ")) {
        const char *body = entry_body(e, end);
        memcpy(w, from, (size_t)(body - from)), w += body - from;
        memcpy(w, ins, ins_len), w += ins_len;
        from = body;
    }
    memcpy(w, from, (size_t)(end - from)), w += end - from;
    if (n < size)
        *w = '\0';
    *out = buf, *out_size = total;
    return true;
}

/* Rebuild *prog from its PTX with every entry capped at maxreg registers
 * (gdn__ptx_cap_registers). When that cannot be done the uncapped program
 * stays, which computes the same function: a debug line where the binaries
 * are not PTX (every other driver), a warning where the driver refused. */
static void cap_registers(gdn_context *ctx, const char *path, const char *options, int maxreg,
                          cl_program *prog)
{
    size_t         size = 0, capped_size = 0;
    unsigned char *bin    = NULL;
    char          *capped = NULL;
    const char    *why = NULL, *fail = NULL;

    if (clGetProgramInfo(*prog, CL_PROGRAM_BINARY_SIZES, sizeof(size), &size, NULL) !=
            CL_SUCCESS ||
        size == 0 || !(bin = gdn__malloc(size)) ||
        clGetProgramInfo(*prog, CL_PROGRAM_BINARIES, sizeof(bin), &bin, NULL) != CL_SUCCESS)
        why = "no program binary";
    else if (!gdn__ptx_cap_registers((const char *)bin, size, maxreg, &capped, &capped_size))
        why = "the program binary is not PTX text, or no memory";
    if (!why) {
        const unsigned char *cb = (const unsigned char *)capped;
        cl_int               err, bin_status = CL_SUCCESS;
        cl_program           p2 = clCreateProgramWithBinary(ctx->cl_ctx, 1, &ctx->dev.id,
                                                            &capped_size, &cb, &bin_status, &err);
        if (err != CL_SUCCESS || bin_status != CL_SUCCESS)
            fail = "the driver rejected the capped PTX";
        else if (clBuildProgram(p2, 1, &ctx->dev.id, options, NULL, NULL) != CL_SUCCESS)
            fail = "building the capped PTX failed";
        if (fail) {
            if (p2)
                clReleaseProgram(p2);
        } else {
            clReleaseProgram(*prog);
            *prog = p2;
            gdn__log(ctx, GDN_LOG_LEVEL_DEBUG, "program %s: rebuilt with .maxnreg %d", path,
                     maxreg);
            debug_build_log(ctx, path, p2);
        }
    }
    if (why)
        gdn__log(ctx, GDN_LOG_LEVEL_DEBUG, "program %s: GDN_MAXREG=%d not applied (%s)", path,
                 maxreg, why);
    if (fail)
        gdn__log(ctx, GDN_LOG_LEVEL_WARN, "program %s: GDN_MAXREG=%d not applied (%s); "
                 "using the program as built", path, maxreg, fail);
    gdn__free(capped);
    gdn__free(bin);
}

gdn_status gdn__program_get(gdn_context *ctx, const char *path, const char *options,
                            cl_program *out)
{
    struct gdn_program_entry *e;
    struct gdn_strbuf         opts = {0};
    char                     *text = NULL;
    size_t                    size;
    char                      key[65] = "";
    cl_program                prog = NULL;
    gdn_status                st;
    int                       maxreg;

    *out = NULL;
    if (!options)
        options = "";
    /* Full option string: plan defines, then the user's. */
    gdn__strbuf_appendf(&opts, "%s%s%s", options, ctx->build_options ? " " : "",
                        ctx->build_options ? ctx->build_options : "");
    if (opts.oom) {
        gdn__strbuf_free(&opts);
        return GDN_STATUS_OUT_OF_HOST_MEMORY;
    }
    for (e = ctx->programs; e; e = e->next)
        if (!strcmp(e->path, path) && !strcmp(e->options, opts.data)) {
            ctx->stats.memory_hits++;
            gdn__strbuf_free(&opts);
            *out = e->program;
            return GDN_STATUS_OK;
        }
    st = gdn__source_load(ctx, path, &text, &size);
    if (st)
        goto out;
    if (ctx->cache_dir) {
        cache_key(ctx, text, size, opts.data, key);
        prog = cache_load(ctx, path, key, opts.data);
        if (prog)
            ctx->stats.disk_hits++;
    }
    if (!prog) {
        st = build_from_source(ctx, path, text, size, opts.data, &prog);
        if (st)
            goto out;
        if ((maxreg = gdn__maxreg_option(opts.data)) != 0)
            cap_registers(ctx, path, opts.data, maxreg, &prog);
        if (ctx->cache_dir)
            cache_store(ctx, path, key, prog);
    }
    e = gdn__calloc(1, sizeof(*e));
    if (!e || !(e->path = gdn__strdup(path))) {
        gdn__free(e);
        clReleaseProgram(prog);
        st = GDN_STATUS_OUT_OF_HOST_MEMORY;
        goto out;
    }
    e->options    = opts.data;
    opts.data     = NULL;
    e->program    = prog;
    e->next       = ctx->programs;
    ctx->programs = e;
    *out          = prog;
out:
    gdn__free(text);
    gdn__strbuf_free(&opts);
    return st;
}

gdn_status gdn__kernel_get(gdn_context *ctx, const char *path, const char *options,
                           const char *name, cl_kernel *out)
{
    struct gdn_program_entry *e;
    struct gdn_kernel_entry  *k;
    cl_program                prog;
    cl_int                    err;
    gdn_status                st;

    *out = NULL;
    st   = gdn__program_get(ctx, path, options, &prog);
    if (st)
        return st;
    for (e = ctx->programs; e && e->program != prog; e = e->next)
        ;
    if (!e)
        return gdn__fail(ctx, GDN_STATUS_INTERNAL, "program cache lost %s", path);
    for (k = e->kernels; k; k = k->next)
        if (!strcmp(k->name, name)) {
            *out = k->kernel;
            return GDN_STATUS_OK;
        }
    k = gdn__calloc(1, sizeof(*k));
    if (!k || !(k->name = gdn__strdup(name))) {
        gdn__free(k);
        return GDN_STATUS_OUT_OF_HOST_MEMORY;
    }
    k->kernel = clCreateKernel(prog, name, &err);
    if (err != CL_SUCCESS) {
        gdn__free(k->name);
        gdn__free(k);
        return gdn__fail(ctx, gdn__status_from_cl(err), "%s: kernel '%s': %s (%d)", path, name,
                         gdn__cl_error_name(err), (int)err);
    }
    k->next    = e->kernels;
    e->kernels = k;
    *out       = k->kernel;
    return GDN_STATUS_OK;
}

void gdn__program_cache_clear(gdn_context *ctx)
{
    struct gdn_program_entry *e = ctx->programs, *en;
    while (e) {
        struct gdn_kernel_entry *k = e->kernels, *kn;
        while (k) {
            kn = k->next;
            clReleaseKernel(k->kernel);
            gdn__free(k->name);
            gdn__free(k);
            k = kn;
        }
        en = e->next;
        clReleaseProgram(e->program);
        gdn__free(e->path);
        gdn__free(e->options);
        gdn__free(e);
        e = en;
    }
    ctx->programs = NULL;
}
