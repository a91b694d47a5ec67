/*
 * core.h - host-only helpers shared by the whole library: allocation,
 * overflow-checked sizes, hashing, small file I/O and string helpers.
 * Nothing here knows about OpenCL.
 */
#ifndef GDN_CORE_H
#define GDN_CORE_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gdn.h"

#if defined(__GNUC__)
#    define GDN_PRINTF(fmt, args) __attribute__((format(printf, fmt, args)))
#else
#    define GDN_PRINTF(fmt, args)
#endif

#define GDN_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* Allocation: thin wrappers so a test can inject failures in one place. */
void *gdn__malloc(size_t n);
void *gdn__calloc(size_t count, size_t size);
void *gdn__realloc(void *p, size_t n);
void  gdn__free(void *p);
char *gdn__strdup(const char *s);   /* NULL in, NULL out */
/* Fail the next `n`-th allocation (1 = the next one); 0 disables. Tests only. */
void gdn__alloc_fail_after(int n);

/* Overflow-checked arithmetic: return false on overflow (result unchanged). */
bool gdn__mul_size(size_t a, size_t b, size_t *out);
bool gdn__add_size(size_t a, size_t b, size_t *out);

/* Formatted append into a growing heap string. */
struct gdn_strbuf {
    char  *data;
    size_t len;
    size_t cap;
    bool   oom; /* an append failed; data holds what fitted */
};
void gdn__strbuf_appendf(struct gdn_strbuf *sb, const char *fmt, ...) GDN_PRINTF(2, 3);
void gdn__strbuf_appendv(struct gdn_strbuf *sb, const char *fmt, va_list ap);
void gdn__strbuf_append(struct gdn_strbuf *sb, const char *s, size_t n);
void gdn__strbuf_free(struct gdn_strbuf *sb);

/* SHA-256. */
struct gdn_sha256 {
    uint32_t h[8];
    uint64_t nbytes;
    uint8_t  buf[64];
    size_t   nbuf;
};
void gdn__sha256_init(struct gdn_sha256 *s);
void gdn__sha256_update(struct gdn_sha256 *s, const void *data, size_t n);
void gdn__sha256_final(struct gdn_sha256 *s, uint8_t out[32]);
void gdn__sha256_hex(const uint8_t digest[32], char out[65]);
/* Convenience: hex digest of one buffer. */
void gdn__sha256_hex_of(const void *data, size_t n, char out[65]);

/* Files. Read a whole file (NUL-terminated; *size excludes the NUL).
 * Returns GDN_STATUS_IO when it cannot be opened or read. */
gdn_status gdn__file_read(const char *path, char **data, size_t *size);
/* Write atomically: to "<path>.tmp.<pid>" then rename over path. */
gdn_status gdn__file_write_atomic(const char *path, const void *data, size_t size);
/* mkdir -p; returns GDN_STATUS_IO on failure. */
gdn_status gdn__mkdirs(const char *path);

/* Case-insensitive substring search. */
bool gdn__strcasestr(const char *haystack, const char *needle);
/* Copy with truncation; always NUL-terminates when cap > 0. */
void gdn__strlcpy(char *dst, const char *src, size_t cap);

/* Monotonic clock in seconds. */
double gdn__now(void);

/* splitmix64 (Steele, Lea, Flood 2014): advances *state and returns the
 * next 64 random bits. The library's one small generator: model
 * initialisation, token sampling and random tuning plans. */
static inline uint64_t gdn__splitmix64(uint64_t *state)
{
    uint64_t z = (*state += UINT64_C(0x9e3779b97f4a7c15));
    z          = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z          = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

#endif /* GDN_CORE_H */
