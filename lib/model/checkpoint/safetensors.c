/*
 * safetensors.c - reader and writer of safetensors checkpoints.
 *
 * The header is parsed with jansson (JSON_REJECT_DUPLICATES; its parser
 * limits nesting depth, so a hostile header cannot exhaust the stack) after
 * our own UTF-8 check. Every size is computed in uint64_t with an overflow
 * check, and every tensor range is checked against the data buffer before
 * the file object is returned, so reads never need to trust the header.
 * Tensor data stay on disk and are read on demand through the open FILE*.
 *
 * Status policy: GDN_STATUS_IO when the file cannot be read or is shorter
 * than its own header says (truncated); GDN_STATUS_INVALID_ARGUMENT when the
 * header is malformed or inconsistent by itself.
 */
#define _POSIX_C_SOURCE 200809L
#include "safetensors.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include <jansson.h>

#include "core.h"

#define META_KEY "__metadata__"

struct gdn__st_file {
    FILE                  *fp;
    char                  *path;
    uint64_t               data_off;  /* 8 + header length */
    uint64_t               data_size; /* bytes of the data buffer */
    size_t                 n;         /* tensors */
    struct gdn__st_tensor *t;         /* sorted by name */
    size_t                 n_meta;
    char                 **meta; /* 2 * n_meta: key, value, in file order */
};

/* ------------------------------------------------------------------------ */
/* Small helpers                                                            */
/* ------------------------------------------------------------------------ */

static void set_err(struct gdn__st_err *err, const char *fmt, ...) GDN_PRINTF(2, 3);

static void set_err(struct gdn__st_err *err, const char *fmt, ...)
{
    va_list ap;

    if (!err)
        return;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
    va_end(ap);
}

// clang-format off
static const struct {
    const char *name;
    uint8_t     size;
} dtypes[] = {
    {"F64", 8}, {"F32", 4}, {"F16", 2}, {"BF16", 2},
    {"I64", 8}, {"I32", 4}, {"I16", 2}, {"I8", 1},
    {"U64", 8}, {"U32", 4}, {"U16", 2}, {"U8", 1},
    {"BOOL", 1}, {"F8_E4M3", 1}, {"F8_E5M2", 1},
};
// clang-format on

size_t gdn__st_dtype_size(const char *dtype)
{
    size_t i;

    if (!dtype)
        return 0;
    for (i = 0; i < GDN_ARRAY_SIZE(dtypes); i++)
        if (strcmp(dtype, dtypes[i].name) == 0)
            return dtypes[i].size;
    return 0;
}

static bool mul_u64(uint64_t a, uint64_t b, uint64_t *out)
{
    if (a != 0 && b > UINT64_MAX / a)
        return false;
    *out = a * b;
    return true;
}

static uint64_t load_le64(const unsigned char *p)
{
    uint64_t v = 0;
    int      i;

    for (i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

static void store_le64(unsigned char *p, uint64_t v)
{
    int i;

    for (i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static bool host_is_le(void)
{
    const uint16_t one = 1;
    unsigned char  c;

    memcpy(&c, &one, 1);
    return c == 1;
}

/* Strict UTF-8: no overlong forms, no surrogates, nothing past U+10FFFF.
 * On failure *bad is the offset of the first bad sequence. */
static bool utf8_valid(const unsigned char *s, size_t n, size_t *bad)
{
    size_t i = 0;

    while (i < n) {
        unsigned c = s[i];
        size_t   len, k;
        uint32_t cp, min;

        if (c < 0x80) {
            i++;
            continue;
        } else if ((c & 0xE0) == 0xC0) {
            len = 2, cp = c & 0x1F, min = 0x80;
        } else if ((c & 0xF0) == 0xE0) {
            len = 3, cp = c & 0x0F, min = 0x800;
        } else if ((c & 0xF8) == 0xF0) {
            len = 4, cp = c & 0x07, min = 0x10000;
        } else {
            goto fail;
        }
        if (n - i < len)
            goto fail;
        for (k = 1; k < len; k++) {
            if ((s[i + k] & 0xC0) != 0x80)
                goto fail;
            cp = (cp << 6) | (s[i + k] & 0x3Fu);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            goto fail;
        i += len;
    }
    return true;
fail:
    if (bad)
        *bad = i;
    return false;
}

static void format_shape(char *buf, size_t cap, int32_t ndim, const int64_t *shape)
{
    size_t  len = 0;
    int32_t d;

    buf[0] = '\0';
    len += (size_t)snprintf(buf, cap, "[");
    for (d = 0; d < ndim && len < cap; d++)
        len += (size_t)snprintf(buf + len, cap - len, "%s%" PRId64, d ? ", " : "", shape[d]);
    if (len < cap)
        snprintf(buf + len, cap - len, "]");
}

/* ------------------------------------------------------------------------ */
/* Half and bfloat16                                                        */
/* ------------------------------------------------------------------------ */

static float f32_from_bits(uint32_t b)
{
    float x;

    memcpy(&x, &b, sizeof(x));
    return x;
}

float gdn__st_f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp  = (h >> 10) & 0x1Fu;
    uint32_t man  = h & 0x3FFu;
    uint32_t e;

    if (exp == 0x1F) /* inf, or NaN with its payload */
        return f32_from_bits(sign | 0x7F800000u | (man << 13));
    if (exp != 0)
        return f32_from_bits(sign | ((exp + 112) << 23) | (man << 13));
    if (man == 0)
        return f32_from_bits(sign);
    /* subnormal man * 2^-24: normalise so bit 10 is the implicit one */
    e = 113;
    while (!(man & 0x400u)) {
        man <<= 1;
        e--;
    }
    return f32_from_bits(sign | (e << 23) | ((man & 0x3FFu) << 13));
}

float gdn__st_bf16_to_f32(uint16_t b)
{
    return f32_from_bits((uint32_t)b << 16);
}

/* Shift m right by s (1..31) with round to nearest even. */
static uint32_t shift_rne(uint32_t m, unsigned s)
{
    uint32_t q    = m >> s;
    uint32_t rem  = m & ((1u << s) - 1);
    uint32_t half = 1u << (s - 1);

    if (rem > half || (rem == half && (q & 1)))
        q++;
    return q;
}

uint16_t gdn__st_f32_to_f16(float x)
{
    uint32_t b, sign, a;

    memcpy(&b, &x, sizeof(b));
    sign = (b >> 16) & 0x8000u;
    a    = b & 0x7FFFFFFFu;
    if (a > 0x7F800000u) /* NaN: quiet, keep the top payload bits */
        return (uint16_t)(sign | 0x7E00u | ((a >> 13) & 0x3FFu));
    if (a >= 0x477FF000u) /* >= 65520 (the tie above 65504 goes to even: inf) */
        return (uint16_t)(sign | 0x7C00u);
    if (a >= 0x38800000u) /* normal half: rebias 127 -> 15, round 23 -> 10 bits */
        return (uint16_t)(sign | shift_rne(a - (112u << 23), 13));
    {
        /* half subnormal (or zero): round (m * 2^(e-150)) / 2^-24 = m >> (126 - e) */
        uint32_t e = a >> 23;
        uint32_t m = (a & 0x7FFFFFu) | (e ? 0x800000u : 0);
        unsigned s = 126 - e;

        if (e == 0 || s > 24)
            return (uint16_t)sign; /* below half of the smallest subnormal */
        return (uint16_t)(sign | shift_rne(m, s));
    }
}

uint16_t gdn__st_f32_to_bf16(float x)
{
    uint32_t b;

    memcpy(&b, &x, sizeof(b));
    if ((b & 0x7FFFFFFFu) > 0x7F800000u)
        return (uint16_t)((b >> 16) | 0x40u); /* quiet NaN, sign kept */
    return (uint16_t)((b + 0x7FFFu + ((b >> 16) & 1u)) >> 16);
}

/* ------------------------------------------------------------------------ */
/* Opening                                                                  */
/* ------------------------------------------------------------------------ */

static int cmp_name(const void *a, const void *b)
{
    return strcmp(((const struct gdn__st_tensor *)a)->name,
                  ((const struct gdn__st_tensor *)b)->name);
}

static int cmp_range(const void *a, const void *b)
{
    const struct gdn__st_tensor *x = *(const struct gdn__st_tensor *const *)a;
    const struct gdn__st_tensor *y = *(const struct gdn__st_tensor *const *)b;

    if (x->begin != y->begin)
        return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end)
        return x->end < y->end ? -1 : 1;
    return 0;
}

/* One tensor entry: fills t (name already set). */
static gdn_status parse_tensor(const struct gdn__st_file *f, json_t *val, struct gdn__st_tensor *t,
                               struct gdn__st_err *err)
{
    const char *path = f->path;
    const char *name = t->name;
    json_t     *dt, *sh, *off, *jb, *je;
    const char *dts;
    size_t      esize, d;
    uint64_t    numel = 1, nbytes;
    json_int_t  b, e;

    if (!json_is_object(val)) {
        set_err(err, "%s: tensor '%s': entry is not a JSON object", path, name);
        return GDN_STATUS_INVALID_ARGUMENT;
    }

    dt = json_object_get(val, "dtype");
    if (!dt) {
        set_err(err, "%s: tensor '%s': missing \"dtype\"", path, name);
        return GDN_STATUS_INVALID_ARGUMENT;
    }
    if (!json_is_string(dt)) {
        set_err(err, "%s: tensor '%s': \"dtype\" is not a string", path, name);
        return GDN_STATUS_INVALID_ARGUMENT;
    }
    dts   = json_string_value(dt);
    esize = gdn__st_dtype_size(dts);
    if (!esize) {
        set_err(err, "%s: tensor '%s': unknown dtype \"%.32s\"", path, name, dts);
        return GDN_STATUS_INVALID_ARGUMENT;
    }
    gdn__strlcpy(t->dtype, dts, sizeof(t->dtype));

    sh = json_object_get(val, "shape");
    if (!sh) {
        set_err(err, "%s: tensor '%s': missing \"shape\"", path, name);
        return GDN_STATUS_INVALID_ARGUMENT;
    }
    if (!json_is_array(sh)) {
        set_err(err, "%s: tensor '%s': \"shape\" is not an array", path, name);
        return GDN_STATUS_INVALID_ARGUMENT;
    }
    if (json_array_size(sh) > GDN__ST_MAX_DIMS) {
        set_err(err, "%s: tensor '%s': shape has %zu dims, more than %d", path, name,
                json_array_size(sh), GDN__ST_MAX_DIMS);
        return GDN_STATUS_INVALID_ARGUMENT;
    }
    t->ndim = (int32_t)json_array_size(sh);
    for (d = 0; d < json_array_size(sh); d++) {
        json_t    *jd = json_array_get(sh, d);
        json_int_t v;

        if (!json_is_integer(jd)) {
            set_err(err, "%s: tensor '%s': shape dim %zu is not an integer", path, name, d);
            return GDN_STATUS_INVALID_ARGUMENT;
        }
        v = json_integer_value(jd);
        if (v < 0) {
            set_err(err, "%s: tensor '%s': shape dim %zu is negative (%lld)", path, name, d,
                    (long long)v);
            return GDN_STATUS_INVALID_ARGUMENT;
        }
        if (!mul_u64(numel, (uint64_t)v, &numel) || numel > (uint64_t)INT64_MAX) {
            set_err(err, "%s: tensor '%s': element count overflows at shape dim %zu", path, name,
                    d);
            return GDN_STATUS_INVALID_ARGUMENT;
        }
        t->shape[d] = (int64_t)v;
    }
    t->numel = (int64_t)numel;
    if (!mul_u64(numel, esize, &nbytes)) {
        set_err(err, "%s: tensor '%s': byte size overflows (%" PRIu64 " elements of %s)", path,
                name, numel, t->dtype);
        return GDN_STATUS_INVALID_ARGUMENT;
    }

    off = json_object_get(val, "data_offsets");
    if (!off) {
        set_err(err, "%s: tensor '%s': missing \"data_offsets\"", path, name);
        return GDN_STATUS_INVALID_ARGUMENT;
    }
    jb = json_array_get(off, 0);
    je = json_array_get(off, 1);
    if (!json_is_array(off) || json_array_size(off) != 2 || !json_is_integer(jb) ||
        !json_is_integer(je) || json_integer_value(jb) < 0 || json_integer_value(je) < 0) {
        set_err(err, "%s: tensor '%s': \"data_offsets\" is not two non-negative integers", path,
                name);
        return GDN_STATUS_INVALID_ARGUMENT;
    }
    b = json_integer_value(jb);
    e = json_integer_value(je);
    if (b > e) {
        set_err(err, "%s: tensor '%s': data_offsets begin %lld > end %lld", path, name,
                (long long)b, (long long)e);
        return GDN_STATUS_INVALID_ARGUMENT;
    }
    t->begin = (uint64_t)b;
    t->end   = (uint64_t)e;
    if (t->end - t->begin != nbytes) {
        char shape[160];

        format_shape(shape, sizeof(shape), t->ndim, t->shape);
        set_err(err,
                "%s: tensor '%s': data_offsets span %" PRIu64 " bytes but %s %s needs %" PRIu64
                " bytes",
                path, name, t->end - t->begin, t->dtype, shape, nbytes);
        return GDN_STATUS_INVALID_ARGUMENT;
    }
    if (t->end > f->data_size) {
        set_err(err,
                "%s: tensor '%s': data end %" PRIu64 " is past the data buffer (%" PRIu64
                " bytes): file truncated?",
                path, name, t->end, f->data_size);
        return GDN_STATUS_IO;
    }
    return GDN_STATUS_OK;
}

static gdn_status parse_meta(struct gdn__st_file *f, json_t *m, struct gdn__st_err *err)
{
    const char *key;
    json_t     *val;
    size_t      i = 0;

    if (!json_is_object(m)) {
        set_err(err, "%s: \"" META_KEY "\" is not an object", f->path);
        return GDN_STATUS_INVALID_ARGUMENT;
    }
    f->meta = gdn__calloc(2 * json_object_size(m) + 1, sizeof(*f->meta));
    if (!f->meta)
        return GDN_STATUS_OUT_OF_HOST_MEMORY;
    json_object_foreach(m, key, val)
    {
        if (!json_is_string(val)) {
            set_err(err, "%s: \"" META_KEY "\" value of key '%s' is not a string", f->path, key);
            return GDN_STATUS_INVALID_ARGUMENT;
        }
        f->meta[2 * i]     = gdn__strdup(key);
        f->meta[2 * i + 1] = gdn__strdup(json_string_value(val));
        f->n_meta          = ++i;
        if (!f->meta[2 * i - 2] || !f->meta[2 * i - 1])
            return GDN_STATUS_OUT_OF_HOST_MEMORY;
    }
    return GDN_STATUS_OK;
}

static gdn_status check_overlap(const struct gdn__st_file *f, struct gdn__st_err *err)
{
    const struct gdn__st_tensor **by   = NULL;
    const struct gdn__st_tensor  *prev = NULL;
    size_t                        i;

    if (f->n < 2)
        return GDN_STATUS_OK;
    by = gdn__calloc(f->n, sizeof(*by));
    if (!by)
        return GDN_STATUS_OUT_OF_HOST_MEMORY;
    for (i = 0; i < f->n; i++)
        by[i] = &f->t[i];
    qsort(by, f->n, sizeof(*by), cmp_range);
    for (i = 0; i < f->n; i++) {
        if (by[i]->begin == by[i]->end)
            continue; /* empty tensors occupy no bytes */
        if (prev && by[i]->begin < prev->end) {
            set_err(err,
                    "%s: tensors '%s' [%" PRIu64 ", %" PRIu64 ") and '%s' [%" PRIu64 ", %" PRIu64
                    ") overlap",
                    f->path, prev->name, prev->begin, prev->end, by[i]->name, by[i]->begin,
                    by[i]->end);
            gdn__free(by);
            return GDN_STATUS_INVALID_ARGUMENT;
        }
        if (!prev || by[i]->end > prev->end)
            prev = by[i];
    }
    gdn__free(by);
    return GDN_STATUS_OK;
}

static gdn_status parse_header(struct gdn__st_file *f, json_t *root, struct gdn__st_err *err)
{
    const char *key;
    json_t     *val;
    gdn_status  st;

    f->t = gdn__calloc(json_object_size(root) + 1, sizeof(*f->t));
    if (!f->t)
        return GDN_STATUS_OUT_OF_HOST_MEMORY;
    json_object_foreach(root, key, val)
    {
        struct gdn__st_tensor *t;

        if (strcmp(key, META_KEY) == 0) {
            st = parse_meta(f, val, err);
            if (st)
                return st;
            continue;
        }
        t       = &f->t[f->n++];
        t->name = gdn__strdup(key);
        if (!t->name)
            return GDN_STATUS_OUT_OF_HOST_MEMORY;
        st = parse_tensor(f, val, t, err);
        if (st)
            return st;
    }
    st = check_overlap(f, err);
    if (st)
        return st;
    qsort(f->t, f->n, sizeof(*f->t), cmp_name);
    return GDN_STATUS_OK;
}

gdn_status gdn__st_open(const char *path, struct gdn__st_file **out, struct gdn__st_err *err)
{
    struct gdn__st_file *f    = NULL;
    char                *hdr  = NULL;
    json_t              *root = NULL;
    unsigned char        lenb[8];
    uint64_t             fsize, hlen;
    size_t               bad;
    struct stat          sb;
    json_error_t         jerr;
    gdn_status           st;

    if (err)
        err->msg[0] = '\0';
    if (out)
        *out = NULL;
    if (!path || !out) {
        set_err(err, "safetensors open: path and out must not be NULL");
        return GDN_STATUS_INVALID_ARGUMENT;
    }
    f = gdn__calloc(1, sizeof(*f));
    if (!f || !(f->path = gdn__strdup(path))) {
        set_err(err, "%s: out of host memory", path);
        gdn__free(f);
        return GDN_STATUS_OUT_OF_HOST_MEMORY;
    }

    f->fp = fopen(path, "rb");
    if (!f->fp) {
        set_err(err, "%s: cannot open: %s", path, strerror(errno));
        st = GDN_STATUS_IO;
        goto fail;
    }
    if (fstat(fileno(f->fp), &sb) != 0 || !S_ISREG(sb.st_mode) || sb.st_size < 0) {
        set_err(err, "%s: cannot read: not a regular file", path);
        st = GDN_STATUS_IO;
        goto fail;
    }
    fsize = (uint64_t)sb.st_size;
    if (fsize < 8) {
        set_err(err,
                "%s: file is %" PRIu64 " bytes, shorter than the 8-byte header length: "
                "truncated",
                path, fsize);
        st = GDN_STATUS_IO;
        goto fail;
    }
    if (fread(lenb, 1, 8, f->fp) != 8) {
        set_err(err, "%s: cannot read the header length: truncated or unreadable", path);
        st = GDN_STATUS_IO;
        goto fail;
    }
    hlen = load_le64(lenb);
    if (hlen == 0) {
        set_err(err, "%s: header length is 0", path);
        st = GDN_STATUS_INVALID_ARGUMENT;
        goto fail;
    }
    if (hlen > GDN__ST_MAX_HEADER) {
        set_err(err, "%s: header length %" PRIu64 " is over the limit of %" PRIu64 " bytes", path,
                hlen, GDN__ST_MAX_HEADER);
        st = GDN_STATUS_INVALID_ARGUMENT;
        goto fail;
    }
    if (hlen > fsize - 8) {
        set_err(err,
                "%s: header length %" PRIu64 " runs past the end of the file (%" PRIu64
                " bytes): truncated",
                path, hlen, fsize);
        st = GDN_STATUS_IO;
        goto fail;
    }
    f->data_off  = 8 + hlen;
    f->data_size = fsize - 8 - hlen;

    hdr = gdn__malloc((size_t)hlen);
    if (!hdr) {
        set_err(err, "%s: out of host memory for a %" PRIu64 "-byte header", path, hlen);
        st = GDN_STATUS_OUT_OF_HOST_MEMORY;
        goto fail;
    }
    if (fread(hdr, 1, (size_t)hlen, f->fp) != (size_t)hlen) {
        set_err(err, "%s: short read of the %" PRIu64 "-byte header: truncated", path, hlen);
        st = GDN_STATUS_IO;
        goto fail;
    }
    if (!utf8_valid((const unsigned char *)hdr, (size_t)hlen, &bad)) {
        set_err(err, "%s: header is not valid UTF-8 (at header byte %zu)", path, bad);
        st = GDN_STATUS_INVALID_ARGUMENT;
        goto fail;
    }
    root = json_loadb(hdr, (size_t)hlen, JSON_REJECT_DUPLICATES, &jerr);
    gdn__free(hdr);
    hdr = NULL;
    /* jansson leaves the text empty only when its lexer buffer cannot be
     * allocated; every parse error has a text. */
    if (!root && (json_error_code(&jerr) == json_error_out_of_memory || !jerr.text[0])) {
        set_err(err, "%s: out of host memory parsing the header", path);
        st = GDN_STATUS_OUT_OF_HOST_MEMORY;
        goto fail;
    }
    if (!root) {
        set_err(err, "%s: header is not valid JSON: %s (line %d, column %d)", path, jerr.text,
                jerr.line, jerr.column);
        st = GDN_STATUS_INVALID_ARGUMENT;
        goto fail;
    }
    if (!json_is_object(root)) {
        set_err(err, "%s: header is not a JSON object", path);
        st = GDN_STATUS_INVALID_ARGUMENT;
        goto fail;
    }
    st = parse_header(f, root, err);
    if (st) {
        if (st == GDN_STATUS_OUT_OF_HOST_MEMORY)
            set_err(err, "%s: out of host memory", path);
        goto fail;
    }
    json_decref(root);
    *out = f;
    return GDN_STATUS_OK;

fail:
    json_decref(root);
    gdn__free(hdr);
    gdn__st_close(f);
    return st;
}

void gdn__st_close(struct gdn__st_file *f)
{
    size_t i;

    if (!f)
        return;
    if (f->fp)
        fclose(f->fp);
    if (f->t)
        for (i = 0; i < f->n; i++)
            gdn__free(f->t[i].name);
    if (f->meta)
        for (i = 0; i < 2 * f->n_meta; i++)
            gdn__free(f->meta[i]);
    gdn__free(f->t);
    gdn__free(f->meta);
    gdn__free(f->path);
    gdn__free(f);
}

/* ------------------------------------------------------------------------ */
/* Lookup                                                                   */
/* ------------------------------------------------------------------------ */

size_t gdn__st_count(const struct gdn__st_file *f)
{
    return f ? f->n : 0;
}

const struct gdn__st_tensor *gdn__st_at(const struct gdn__st_file *f, size_t i)
{
    return f && i < f->n ? &f->t[i] : NULL;
}

const struct gdn__st_tensor *gdn__st_find(const struct gdn__st_file *f, const char *name)
{
    struct gdn__st_tensor key;

    if (!f || !name || !f->n)
        return NULL;
    memset(&key, 0, sizeof(key));
    key.name = (char *)(uintptr_t)name; /* only read by cmp_name */
    return bsearch(&key, f->t, f->n, sizeof(*f->t), cmp_name);
}

const char *gdn__st_meta(const struct gdn__st_file *f, const char *key)
{
    size_t i;

    if (!f || !key)
        return NULL;
    for (i = 0; i < f->n_meta; i++)
        if (strcmp(f->meta[2 * i], key) == 0)
            return f->meta[2 * i + 1];
    return NULL;
}

size_t gdn__st_meta_count(const struct gdn__st_file *f)
{
    return f ? f->n_meta : 0;
}

int gdn__st_meta_at(const struct gdn__st_file *f, size_t i, const char **key, const char **value)
{
    if (!f || i >= f->n_meta)
        return 0;
    if (key)
        *key = f->meta[2 * i];
    if (value)
        *value = f->meta[2 * i + 1];
    return 1;
}

/* ------------------------------------------------------------------------ */
/* Reading tensor data                                                      */
/* ------------------------------------------------------------------------ */

/* Check t against this file (a caller could pass a forged or foreign one)
 * and seek to its first byte. */
static gdn_status seek_tensor(struct gdn__st_file *f, const struct gdn__st_tensor *t,
                              struct gdn__st_err *err)
{
    uint64_t pos;

    if (!f || !t || !t->name) {
        set_err(err, "safetensors read: file, tensor and its name must not be NULL");
        return GDN_STATUS_INVALID_ARGUMENT;
    }
    if (t->begin > t->end || t->end > f->data_size) {
        set_err(err,
                "%s: tensor '%s': range [%" PRIu64 ", %" PRIu64 ") is outside the data "
                "buffer (%" PRIu64 " bytes)",
                f->path, t->name, t->begin, t->end, f->data_size);
        return GDN_STATUS_INVALID_ARGUMENT;
    }
    pos = f->data_off + t->begin; /* <= file size, so it fits off_t */
    if ((uint64_t)(off_t)pos != pos || fseeko(f->fp, (off_t)pos, SEEK_SET) != 0) {
        set_err(err, "%s: tensor '%s': cannot seek to byte %" PRIu64 ": %s", f->path, t->name, pos,
                strerror(errno));
        return GDN_STATUS_IO;
    }
    return GDN_STATUS_OK;
}

static gdn_status read_exact(struct gdn__st_file *f, const struct gdn__st_tensor *t, void *dst,
                             size_t n, struct gdn__st_err *err)
{
    if (n && fread(dst, 1, n, f->fp) != n) {
        set_err(err, "%s: tensor '%s': short read (%s): file truncated since it was opened?",
                f->path, t->name, ferror(f->fp) ? strerror(errno) : "end of file");
        clearerr(f->fp);
        return GDN_STATUS_IO;
    }
    return GDN_STATUS_OK;
}

gdn_status gdn__st_read_raw(struct gdn__st_file *f, const struct gdn__st_tensor *t, void *dst,
                            struct gdn__st_err *err)
{
    gdn_status st;
    uint64_t   n;

    if (err)
        err->msg[0] = '\0';
    st = seek_tensor(f, t, err);
    if (st)
        return st;
    n = t->end - t->begin;
    if (n == 0)
        return GDN_STATUS_OK;
    if (n > SIZE_MAX || !dst) {
        set_err(err, "%s: tensor '%s': %s", f->path, t->name,
                dst ? "too large for this host" : "dst is NULL");
        return GDN_STATUS_INVALID_ARGUMENT;
    }
    return read_exact(f, t, dst, (size_t)n, err);
}

gdn_status gdn__st_read_f32(struct gdn__st_file *f, const struct gdn__st_tensor *t, float *dst,
                            struct gdn__st_err *err)
{
    unsigned char buf[16384];
    size_t        esize, per, done, numel, i;
    gdn_status    st;
    uint64_t      nbytes;
    int           kind; /* 0 F32, 1 F16, 2 BF16, 3 F64 */

    if (err)
        err->msg[0] = '\0';
    st = seek_tensor(f, t, err);
    if (st)
        return st;
    if (strcmp(t->dtype, "F32") == 0)
        kind = 0;
    else if (strcmp(t->dtype, "F16") == 0)
        kind = 1;
    else if (strcmp(t->dtype, "BF16") == 0)
        kind = 2;
    else if (strcmp(t->dtype, "F64") == 0)
        kind = 3;
    else {
        set_err(err, "%s: tensor '%s': dtype %s does not convert to float32 (read it raw)", f->path,
                t->name, t->dtype);
        return GDN_STATUS_UNSUPPORTED;
    }
    esize = gdn__st_dtype_size(t->dtype);
    if (t->numel < 0 || !mul_u64((uint64_t)t->numel, esize, &nbytes) ||
        nbytes != t->end - t->begin) {
        set_err(err, "%s: tensor '%s': numel does not match its byte range", f->path, t->name);
        return GDN_STATUS_INVALID_ARGUMENT;
    }
    if (t->numel == 0)
        return GDN_STATUS_OK;
    if ((uint64_t)t->numel > SIZE_MAX / sizeof(float) || !dst) {
        set_err(err, "%s: tensor '%s': %s", f->path, t->name,
                dst ? "too large for this host" : "dst is NULL");
        return GDN_STATUS_INVALID_ARGUMENT;
    }
    numel = (size_t)t->numel;

    if (kind == 0) {
        st = read_exact(f, t, dst, numel * sizeof(float), err);
        if (st == GDN_STATUS_OK && !host_is_le())
            for (i = 0; i < numel; i++) {
                unsigned char *p = (unsigned char *)&dst[i], c;

                c = p[0], p[0] = p[3], p[3] = c;
                c = p[1], p[1] = p[2], p[2] = c;
            }
        return st;
    }
    per = sizeof(buf) / esize;
    for (done = 0; done < numel; done += per) {
        size_t m = numel - done < per ? numel - done : per;

        st = read_exact(f, t, buf, m * esize, err);
        if (st)
            return st;
        for (i = 0; i < m; i++) {
            const unsigned char *p = buf + i * esize;

            if (kind == 1) {
                dst[done + i] = gdn__st_f16_to_f32((uint16_t)(p[0] | (p[1] << 8)));
            } else if (kind == 2) {
                dst[done + i] = gdn__st_bf16_to_f32((uint16_t)(p[0] | (p[1] << 8)));
            } else {
                uint64_t v = load_le64(p);
                double   x;

                memcpy(&x, &v, sizeof(x));
                dst[done + i] = (float)x;
            }
        }
    }
    return GDN_STATUS_OK;
}

/* ------------------------------------------------------------------------ */
/* Writing                                                                  */
/* ------------------------------------------------------------------------ */

/* Build the header object and check every argument. */
static gdn_status build_header(const char *path, const struct gdn__st_entry *e, size_t n,
                               const char *const *meta, size_t n_meta, json_t **out,
                               struct gdn__st_err *err)
{
    json_t    *root = json_object();
    gdn_status st   = GDN_STATUS_INVALID_ARGUMENT;
    uint64_t   pos  = 0;
    size_t     i;
    int32_t    d;

    *out = NULL;
    if (!root)
        goto oom;
    if (n_meta) {
        json_t *m = json_object();

        if (!m || json_object_set_new(root, META_KEY, m))
            goto oom;
        for (i = 0; i < n_meta; i++) {
            const char *k = meta[2 * i], *v = meta[2 * i + 1];
            json_t     *js;

            if (!k || !v || !utf8_valid((const unsigned char *)k, strlen(k), NULL) ||
                !utf8_valid((const unsigned char *)v, strlen(v), NULL)) {
                set_err(err, "%s: metadata pair %zu: key and value must be UTF-8 strings", path, i);
                goto fail;
            }
            if (json_object_get(m, k)) {
                set_err(err, "%s: metadata key '%s' appears twice (duplicate)", path, k);
                goto fail;
            }
            js = json_string(v);
            if (!js || json_object_set_new(m, k, js))
                goto oom;
        }
    }
    for (i = 0; i < n; i++) {
        const char *name = e[i].name;
        size_t      esize;
        uint64_t    numel = 1, nbytes;
        json_t     *jt, *js;

        if (!name || !*name || !utf8_valid((const unsigned char *)name, strlen(name), NULL)) {
            set_err(err, "%s: entry %zu: the name must be a non-empty UTF-8 string", path, i);
            goto fail;
        }
        if (strcmp(name, META_KEY) == 0 || json_object_get(root, name)) {
            set_err(err, "%s: tensor '%s': the name is %s", path, name,
                    strcmp(name, META_KEY) == 0 ? "reserved" : "a duplicate");
            goto fail;
        }
        esize = gdn__st_dtype_size(e[i].dtype);
        if (!esize) {
            set_err(err, "%s: tensor '%s': unknown dtype \"%.32s\"", path, name,
                    e[i].dtype ? e[i].dtype : "(null)");
            goto fail;
        }
        if (e[i].ndim < 0 || e[i].ndim > GDN__ST_MAX_DIMS || (e[i].ndim && !e[i].shape)) {
            set_err(err, "%s: tensor '%s': ndim %d is not in 0..%d (or shape is NULL)", path, name,
                    (int)e[i].ndim, GDN__ST_MAX_DIMS);
            goto fail;
        }
        for (d = 0; d < e[i].ndim; d++) {
            if (e[i].shape[d] < 0) {
                set_err(err, "%s: tensor '%s': shape dim %d is negative", path, name, (int)d);
                goto fail;
            }
            if (!mul_u64(numel, (uint64_t)e[i].shape[d], &numel) || numel > (uint64_t)INT64_MAX) {
                set_err(err, "%s: tensor '%s': element count overflows", path, name);
                goto fail;
            }
        }
        if (!mul_u64(numel, esize, &nbytes) || nbytes != (uint64_t)e[i].nbytes) {
            set_err(err, "%s: tensor '%s': nbytes %zu does not match %" PRIu64 " elements of %s",
                    path, name, e[i].nbytes, numel, e[i].dtype);
            goto fail;
        }
        if (nbytes && !e[i].data) {
            set_err(err, "%s: tensor '%s': data is NULL", path, name);
            goto fail;
        }
        if (pos + nbytes < pos || pos + nbytes > (uint64_t)INT64_MAX) {
            set_err(err, "%s: tensor '%s': the data buffer overflows", path, name);
            goto fail;
        }

        jt = json_object();
        if (!jt || json_object_set_new(root, name, jt))
            goto oom;
        if (json_object_set_new(jt, "dtype", json_string(e[i].dtype)) || !(js = json_array()) ||
            json_object_set_new(jt, "shape", js))
            goto oom;
        for (d = 0; d < e[i].ndim; d++)
            if (json_array_append_new(js, json_integer((json_int_t)e[i].shape[d])))
                goto oom;
        js = json_array();
        if (!js || json_object_set_new(jt, "data_offsets", js) ||
            json_array_append_new(js, json_integer((json_int_t)pos)) ||
            json_array_append_new(js, json_integer((json_int_t)(pos + nbytes))))
            goto oom;
        pos += nbytes;
    }
    *out = root;
    return GDN_STATUS_OK;

oom:
    set_err(err, "%s: out of host memory building the header", path);
    st = GDN_STATUS_OUT_OF_HOST_MEMORY;
fail:
    json_decref(root);
    return st;
}

/* Best effort: make the rename durable. */
static void fsync_parent(const char *path)
{
    const char *slash = strrchr(path, '/');
    char       *dir;
    int         fd;

    if (!slash)
        dir = gdn__strdup(".");
    else if (slash == path)
        dir = gdn__strdup("/");
    else {
        dir = gdn__malloc((size_t)(slash - path) + 1);
        if (dir) {
            memcpy(dir, path, (size_t)(slash - path));
            dir[slash - path] = '\0';
        }
    }
    if (!dir)
        return;
    fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        (void)fsync(fd);
        close(fd);
    }
    gdn__free(dir);
}

gdn_status gdn__st_write(const char *path, const struct gdn__st_entry *e, size_t n,
                         const char *const *meta, size_t n_meta, struct gdn__st_err *err)
{
    json_t           *root = NULL;
    char             *txt  = NULL;
    FILE             *fp   = NULL;
    struct gdn_strbuf tmp  = {0};
    unsigned char     lenb[8];
    size_t            len, pad, i;
    int               fd = -1, k;
    gdn_status        st;

    if (err)
        err->msg[0] = '\0';
    if (!path || !*path || (n && !e) || (n_meta && !meta)) {
        set_err(err, "%s: safetensors write: path, entries or metadata are NULL",
                path ? path : "(null)");
        return GDN_STATUS_INVALID_ARGUMENT;
    }
    st = build_header(path, e, n, meta, n_meta, &root, err);
    if (st)
        return st;
    txt = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(root);
    if (!txt) {
        set_err(err, "%s: out of host memory serialising the header", path);
        return GDN_STATUS_OUT_OF_HOST_MEMORY;
    }
    len = strlen(txt);
    pad = (8 - len % 8) % 8; /* 8 + len + pad is a multiple of 8 */
    store_le64(lenb, (uint64_t)len + pad);

    /* A fresh temp file next to path: "<path>.tmp.<pid>.<k>", created
     * exclusively so two writers never share one. */
    st = GDN_STATUS_IO;
    for (k = 0; k < 100 && fd < 0; k++) {
        tmp.len = 0;
        gdn__strbuf_appendf(&tmp, "%s.tmp.%ld.%d", path, (long)getpid(), k);
        if (tmp.oom) {
            set_err(err, "%s: out of host memory", path);
            st = GDN_STATUS_OUT_OF_HOST_MEMORY;
            goto out;
        }
        fd = open(tmp.data, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        if (fd < 0 && errno != EEXIST)
            break;
    }
    if (fd < 0) {
        set_err(err, "%s: cannot create the temp file %s: %s", path, tmp.data, strerror(errno));
        goto out;
    }
    fp = fdopen(fd, "wb");
    if (!fp) {
        set_err(err, "%s: fdopen of the temp file failed: %s", path, strerror(errno));
        close(fd);
        goto out_remove;
    }
    if (fwrite(lenb, 1, 8, fp) != 8 || fwrite(txt, 1, len, fp) != len)
        goto write_failed;
    for (i = 0; i < pad; i++)
        if (fputc(' ', fp) == EOF)
            goto write_failed;
    for (i = 0; i < n; i++)
        if (e[i].nbytes && fwrite(e[i].data, 1, e[i].nbytes, fp) != e[i].nbytes)
            goto write_failed;
    if (fflush(fp) != 0 || fsync(fileno(fp)) != 0)
        goto write_failed;
    if (fclose(fp) != 0) {
        fp = NULL;
        goto write_failed;
    }
    fp = NULL;
    if (rename(tmp.data, path) != 0) {
        set_err(err, "%s: cannot rename the temp file over it: %s", path, strerror(errno));
        goto out_remove;
    }
    fsync_parent(path);
    st = GDN_STATUS_OK;
    goto out;

write_failed:
    set_err(err, "%s: write to the temp file failed: %s", path, strerror(errno));
    if (fp)
        fclose(fp);
out_remove:
    remove(tmp.data);
out:
    gdn__strbuf_free(&tmp);
    {
        json_free_t jfree;

        json_get_alloc_funcs(NULL, &jfree);
        jfree(txt);
    }
    return st;
}
