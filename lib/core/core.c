/*
 * core.c - allocation hooks, checked sizes, string buffers, small file I/O.
 *
 * Everything that can fail returns a status or false; nothing aborts.
 */
#define _POSIX_C_SOURCE 200809L
#include "core.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

static int alloc_fail_countdown; /* tests only; 0 = never fail */

void gdn__alloc_fail_after(int n)
{
    alloc_fail_countdown = n;
}

static bool alloc_should_fail(void)
{
    if (alloc_fail_countdown <= 0)
        return false;
    return --alloc_fail_countdown == 0;
}

void *gdn__malloc(size_t n)
{
    if (alloc_should_fail())
        return NULL;
    return malloc(n ? n : 1);
}

void *gdn__calloc(size_t count, size_t size)
{
    if (alloc_should_fail())
        return NULL;
    return calloc(count ? count : 1, size ? size : 1);
}

void *gdn__realloc(void *p, size_t n)
{
    if (alloc_should_fail())
        return NULL;
    return realloc(p, n ? n : 1);
}

void gdn__free(void *p)
{
    free(p);
}

char *gdn__strdup(const char *s)
{
    size_t n;
    char  *d;

    if (!s)
        return NULL;
    n = strlen(s) + 1;
    d = gdn__malloc(n);
    if (d)
        memcpy(d, s, n);
    return d;
}

bool gdn__mul_size(size_t a, size_t b, size_t *out)
{
    if (a != 0 && b > SIZE_MAX / a)
        return false;
    *out = a * b;
    return true;
}

bool gdn__add_size(size_t a, size_t b, size_t *out)
{
    if (b > SIZE_MAX - a)
        return false;
    *out = a + b;
    return true;
}

void gdn__strbuf_append(struct gdn_strbuf *sb, const char *s, size_t n)
{
    if (sb->oom)
        return;
    if (sb->len + n + 1 > sb->cap) {
        size_t cap = sb->cap ? sb->cap : 256;
        char  *d;
        while (cap < sb->len + n + 1)
            cap *= 2;
        d = gdn__realloc(sb->data, cap);
        if (!d) {
            sb->oom = true;
            return;
        }
        sb->data = d;
        sb->cap  = cap;
    }
    memcpy(sb->data + sb->len, s, n);
    sb->len += n;
    sb->data[sb->len] = '\0';
}

void gdn__strbuf_appendv(struct gdn_strbuf *sb, const char *fmt, va_list ap)
{
    char    small[512];
    va_list ap2;
    int     n;

    va_copy(ap2, ap);
    n = vsnprintf(small, sizeof(small), fmt, ap);
    if (n < 0) {
        va_end(ap2);
        return;
    }
    if ((size_t)n < sizeof(small)) {
        gdn__strbuf_append(sb, small, (size_t)n);
    } else {
        char *big = gdn__malloc((size_t)n + 1);
        if (!big) {
            sb->oom = true;
        } else {
            vsnprintf(big, (size_t)n + 1, fmt, ap2);
            gdn__strbuf_append(sb, big, (size_t)n);
            gdn__free(big);
        }
    }
    va_end(ap2);
}

void gdn__strbuf_appendf(struct gdn_strbuf *sb, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    gdn__strbuf_appendv(sb, fmt, ap);
    va_end(ap);
}

void gdn__strbuf_free(struct gdn_strbuf *sb)
{
    gdn__free(sb->data);
    memset(sb, 0, sizeof(*sb));
}

gdn_status gdn__file_read(const char *path, char **data, size_t *size)
{
    FILE *f;
    long  len;
    char *buf;

    *data = NULL;
    *size = 0;
    f     = fopen(path, "rb");
    if (!f)
        return GDN_STATUS_IO;
    if (fseek(f, 0, SEEK_END) != 0 || (len = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0) {
        fclose(f);
        return GDN_STATUS_IO;
    }
    buf = gdn__malloc((size_t)len + 1);
    if (!buf) {
        fclose(f);
        return GDN_STATUS_OUT_OF_HOST_MEMORY;
    }
    if (fread(buf, 1, (size_t)len, f) != (size_t)len) {
        gdn__free(buf);
        fclose(f);
        return GDN_STATUS_IO;
    }
    fclose(f);
    buf[len] = '\0';
    *data    = buf;
    *size    = (size_t)len;
    return GDN_STATUS_OK;
}

gdn_status gdn__file_write_atomic(const char *path, const void *data, size_t size)
{
    struct gdn_strbuf tmp = {0};
    FILE             *f;
    gdn_status        st = GDN_STATUS_IO;

    gdn__strbuf_appendf(&tmp, "%s.tmp.%ld", path, (long)getpid());
    if (tmp.oom) {
        gdn__strbuf_free(&tmp);
        return GDN_STATUS_OUT_OF_HOST_MEMORY;
    }
    f = fopen(tmp.data, "wb");
    if (!f)
        goto out;
    if (fwrite(data, 1, size, f) != size) {
        fclose(f);
        remove(tmp.data);
        goto out;
    }
    if (fclose(f) != 0) {
        remove(tmp.data);
        goto out;
    }
    if (rename(tmp.data, path) != 0) {
        remove(tmp.data);
        goto out;
    }
    st = GDN_STATUS_OK;
out:
    gdn__strbuf_free(&tmp);
    return st;
}

gdn_status gdn__mkdirs(const char *path)
{
    char  *p = gdn__strdup(path);
    char  *s;
    size_t n;

    if (!p)
        return GDN_STATUS_OUT_OF_HOST_MEMORY;
    n = strlen(p);
    while (n > 1 && p[n - 1] == '/')
        p[--n] = '\0';
    for (s = p + 1; *s; s++) {
        if (*s == '/') {
            *s = '\0';
            if (mkdir(p, 0755) != 0 && errno != EEXIST) {
                gdn__free(p);
                return GDN_STATUS_IO;
            }
            *s = '/';
        }
    }
    if (mkdir(p, 0755) != 0 && errno != EEXIST) {
        gdn__free(p);
        return GDN_STATUS_IO;
    }
    gdn__free(p);
    return GDN_STATUS_OK;
}

bool gdn__strcasestr(const char *haystack, const char *needle)
{
    size_t n = strlen(needle);
    if (n == 0)
        return true;
    for (; *haystack; haystack++) {
        size_t i = 0;
        while (i < n && haystack[i] &&
               tolower((unsigned char)haystack[i]) == tolower((unsigned char)needle[i]))
            i++;
        if (i == n)
            return true;
    }
    return false;
}

void gdn__strlcpy(char *dst, const char *src, size_t cap)
{
    size_t n;
    if (cap == 0)
        return;
    n = src ? strlen(src) : 0;
    if (n >= cap)
        n = cap - 1;
    if (n)
        memcpy(dst, src, n);
    dst[n] = '\0';
}

double gdn__now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}
