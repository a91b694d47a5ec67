/*
 * test_safetensors.c - host suite for lib/model/checkpoint/safetensors.c:
 * write/read round trips, exact F16/BF16/F64 conversions, atomic writes,
 * a file laid out exactly as the python library writes it, and hostile or
 * corrupt files written byte by byte (each must give the right status and a
 * message that says what is wrong, without crashing, reading out of bounds
 * or leaking: CI runs this suite under ASan and UBSan).
 */
#define _POSIX_C_SOURCE 200809L
#include <check.h>
#include <dirent.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "core.h"
#include "safetensors.h"

static char tmpdir[64];

static void setup(void)
{
    strcpy(tmpdir, "/tmp/gdn-st-test-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

static void teardown(void)
{
    DIR           *d = opendir(tmpdir);
    struct dirent *de;
    char           p[512];

    if (d) {
        while ((de = readdir(d)) != NULL) {
            if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
                continue;
            snprintf(p, sizeof(p), "%s/%s", tmpdir, de->d_name);
            if (remove(p) != 0)
                rmdir(p);
        }
        closedir(d);
    }
    rmdir(tmpdir);
    gdn__alloc_fail_after(0);
}

static void tpath(char *buf, size_t cap, const char *name)
{
    snprintf(buf, cap, "%s/%s", tmpdir, name);
}

/* Entries of tmpdir whose name contains ".tmp." (leftover temp files). */
static int count_temp_files(void)
{
    DIR           *d = opendir(tmpdir);
    struct dirent *de;
    int            n = 0;

    ck_assert_ptr_nonnull(d);
    while ((de = readdir(d)) != NULL)
        n += strstr(de->d_name, ".tmp.") != NULL;
    closedir(d);
    return n;
}

static void put_le64(unsigned char *p, uint64_t v)
{
    int i;

    for (i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

/* The file: 8-byte length hlen, hdr_n header bytes, data_n data bytes
 * (0, 1, 2, ...), then the last `chop` bytes cut off. */
static void write_file(const char *path, uint64_t hlen, const char *hdr, size_t hdr_n,
                       size_t data_n, size_t chop)
{
    FILE         *f = fopen(path, "wb");
    unsigned char len[8];
    size_t        i;

    ck_assert_ptr_nonnull(f);
    put_le64(len, hlen);
    ck_assert_uint_eq(fwrite(len, 1, 8, f), 8);
    ck_assert_uint_eq(fwrite(hdr, 1, hdr_n, f), hdr_n);
    for (i = 0; i < data_n; i++)
        fputc((int)(i & 0xFF), f);
    ck_assert_int_eq(fclose(f), 0);
    if (chop)
        ck_assert_int_eq(truncate(path, (off_t)(8 + hdr_n + data_n - chop)), 0);
}

static unsigned char *slurp(const char *path, size_t *n)
{
    char      *data = NULL;
    gdn_status st   = gdn__file_read(path, &data, n);

    ck_assert_int_eq(st, GDN_STATUS_OK);
    return (unsigned char *)data;
}

static uint32_t bits_of(float x)
{
    uint32_t b;

    memcpy(&b, &x, sizeof(b));
    return b;
}

static float float_of(uint32_t b)
{
    float x;

    memcpy(&x, &b, sizeof(x));
    return x;
}

/* ------------------------------------------------------------------------ */
/* Round trips                                                              */
/* ------------------------------------------------------------------------ */

START_TEST(round_trip_dtypes_shapes_meta)
{
    char                 path[512];
    float                w[6]  = {-1.0f, -0.5f, 0.0f, 0.5f, 1.0f, 1.5f};
    float                hv[4] = {1.0f, -2.0f, 0.5f, 65504.0f};
    float                bv[6] = {1.0f, -3.0f, 0.25f, 1024.0f, -0.0f, 7.5f};
    double               dv[2] = {1.0 / 3.0, -1e300};
    int32_t              iv[5] = {1, -2, 3, 2147483647, -2147483647 - 1};
    int64_t              sv    = INT64_MIN;
    int8_t               yv[3] = {-128, 0, 127};
    uint16_t             h[4], b[6];
    const int64_t        s23[] = {2, 3}, s4[] = {4}, s312[] = {3, 1, 2}, s2[] = {2}, s5[] = {5};
    const int64_t        s0[] = {0}, s30[] = {3, 0}, s3[] = {3};
    const char *const    meta[] = {"format", "pt", "step", "12", "note", "h\xc3\xa9llo \"q\"\n"};
    struct gdn__st_entry e[]    = {
           {"w.f32", "F32", 2, s23, w, sizeof(w)},
           {"h.f16", "F16", 1, s4, h, sizeof(h)},
           {"b.bf16", "BF16", 3, s312, b, sizeof(b)},
           {"d.f64", "F64", 1, s2, dv, sizeof(dv)},
           {"i.i32", "I32", 1, s5, iv, sizeof(iv)},
           {"s.i64", "I64", 0, NULL, &sv, sizeof(sv)},
           {"e.u8", "U8", 1, s0, NULL, 0},
           {"z.bool", "BOOL", 2, s30, NULL, 0},
           {"y.i8", "I8", 1, s3, yv, sizeof(yv)},
    };
    const size_t         n = sizeof(e) / sizeof(e[0]);
    struct gdn__st_file *f = NULL;
    struct gdn__st_err   err;
    unsigned char       *bytes;
    size_t               i, nbytes;
    uint64_t             hlen;
    const char          *k, *v;

    for (i = 0; i < 4; i++)
        h[i] = gdn__st_f32_to_f16(hv[i]);
    for (i = 0; i < 6; i++)
        b[i] = gdn__st_f32_to_bf16(bv[i]);
    tpath(path, sizeof(path), "rt.safetensors");
    ck_assert_int_eq(gdn__st_write(path, e, n, meta, 3, &err), GDN_STATUS_OK);
    ck_assert_int_eq(count_temp_files(), 0);

    /* layout: data start 8-aligned, header padded with spaces, data in order */
    bytes = slurp(path, &nbytes);
    hlen  = 0;
    for (i = 0; i < 8; i++)
        hlen |= (uint64_t)bytes[i] << (8 * i);
    ck_assert_uint_eq((8 + hlen) % 8, 0);
    ck_assert(bytes[0 + 8 + hlen - 1] == ' ' || bytes[8 + hlen - 1] == '}');
    ck_assert_uint_eq(nbytes, 8 + hlen + sizeof(w) + sizeof(h) + sizeof(b) + sizeof(dv) +
                                  sizeof(iv) + sizeof(sv) + sizeof(yv));
    ck_assert_int_eq(memcmp(bytes + 8 + hlen, w, sizeof(w)), 0);
    gdn__free(bytes);

    ck_assert_int_eq(gdn__st_open(path, &f, &err), GDN_STATUS_OK);
    ck_assert_uint_eq(gdn__st_count(f), n);
    for (i = 1; i < n; i++)
        ck_assert_int_lt(strcmp(gdn__st_at(f, i - 1)->name, gdn__st_at(f, i)->name), 0);
    ck_assert_ptr_null(gdn__st_at(f, n));

    for (i = 0; i < n; i++) {
        const struct gdn__st_tensor *t = gdn__st_find(f, e[i].name);
        unsigned char                raw[64];
        int64_t                      numel = 1;
        int32_t                      d;

        ck_assert_msg(t != NULL, "%s not found", e[i].name);
        ck_assert_str_eq(t->name, e[i].name);
        ck_assert_str_eq(t->dtype, e[i].dtype);
        ck_assert_int_eq(t->ndim, e[i].ndim);
        for (d = 0; d < t->ndim; d++) {
            ck_assert_int_eq(t->shape[d], e[i].shape[d]);
            numel *= e[i].shape[d];
        }
        ck_assert_int_eq(t->numel, numel);
        ck_assert_uint_eq(t->end - t->begin, e[i].nbytes);
        ck_assert_int_eq(gdn__st_read_raw(f, t, raw, &err), GDN_STATUS_OK);
        if (e[i].nbytes)
            ck_assert_int_eq(memcmp(raw, e[i].data, e[i].nbytes), 0);
    }
    ck_assert_uint_eq(gdn__st_find(f, "w.f32")->begin, 0); /* written in the given order */
    ck_assert_int_eq(gdn__st_find(f, "s.i64")->numel, 1);

    {
        float                        out[8];
        const struct gdn__st_tensor *t;

        ck_assert_int_eq(gdn__st_read_f32(f, gdn__st_find(f, "w.f32"), out, &err), 0);
        ck_assert_int_eq(memcmp(out, w, sizeof(w)), 0);
        ck_assert_int_eq(gdn__st_read_f32(f, gdn__st_find(f, "h.f16"), out, &err), 0);
        ck_assert_int_eq(memcmp(out, hv, sizeof(hv)), 0);
        ck_assert_int_eq(gdn__st_read_f32(f, gdn__st_find(f, "b.bf16"), out, &err), 0);
        for (i = 0; i < 6; i++)
            ck_assert_uint_eq(bits_of(out[i]), bits_of(bv[i]));
        ck_assert_int_eq(gdn__st_read_f32(f, gdn__st_find(f, "d.f64"), out, &err), 0);
        ck_assert_uint_eq(bits_of(out[0]), bits_of((float)(1.0 / 3.0)));
        ck_assert(isinf(out[1]) && out[1] < 0);
        t = gdn__st_find(f, "i.i32");
        ck_assert_int_eq(gdn__st_read_f32(f, t, out, &err), GDN_STATUS_UNSUPPORTED);
        ck_assert_ptr_nonnull(strstr(err.msg, "I32"));
        ck_assert_ptr_nonnull(strstr(err.msg, "i.i32"));
        /* zero-sized: nothing to read, dst may be NULL */
        ck_assert_int_eq(gdn__st_read_raw(f, gdn__st_find(f, "e.u8"), NULL, &err), 0);
    }

    ck_assert_ptr_null(gdn__st_find(f, "missing"));
    ck_assert_ptr_null(gdn__st_find(f, ""));
    ck_assert_ptr_null(gdn__st_find(f, NULL));
    ck_assert_ptr_null(gdn__st_find(f, "w.f3"));
    ck_assert_ptr_null(gdn__st_find(f, "w.f32 "));
    ck_assert_ptr_null(gdn__st_find(f, "__metadata__"));

    ck_assert_uint_eq(gdn__st_meta_count(f), 3);
    ck_assert_str_eq(gdn__st_meta(f, "format"), "pt");
    ck_assert_str_eq(gdn__st_meta(f, "step"), "12");
    ck_assert_str_eq(gdn__st_meta(f, "note"), "h\xc3\xa9llo \"q\"\n");
    ck_assert_ptr_null(gdn__st_meta(f, "missing"));
    ck_assert_ptr_null(gdn__st_meta(f, NULL));
    ck_assert(gdn__st_meta_at(f, 1, &k, &v));
    ck_assert_str_eq(k, "step");
    ck_assert_str_eq(v, "12");
    ck_assert(!gdn__st_meta_at(f, 3, &k, &v));
    gdn__st_close(f);
    gdn__st_close(NULL);
}
END_TEST

START_TEST(empty_file_and_no_metadata)
{
    char                 path[512];
    struct gdn__st_file *f = NULL;
    struct gdn__st_err   err;
    size_t               n;
    unsigned char       *bytes;

    tpath(path, sizeof(path), "empty.safetensors");
    ck_assert_int_eq(gdn__st_write(path, NULL, 0, NULL, 0, &err), GDN_STATUS_OK);
    bytes = slurp(path, &n);
    ck_assert_uint_eq(n, 16); /* "{}" padded to 8 bytes */
    ck_assert_int_eq(memcmp(bytes + 8, "{}      ", 8), 0);
    gdn__free(bytes);
    ck_assert_int_eq(gdn__st_open(path, &f, &err), GDN_STATUS_OK);
    ck_assert_uint_eq(gdn__st_count(f), 0);
    ck_assert_uint_eq(gdn__st_meta_count(f), 0);
    ck_assert_ptr_null(gdn__st_find(f, "a"));
    ck_assert_ptr_null(gdn__st_meta(f, "format"));
    ck_assert_ptr_null(gdn__st_at(f, 0));
    gdn__st_close(f);
}
END_TEST

/* Large enough to cross the 16 KiB conversion buffer several times. */
START_TEST(large_tensors_convert_in_chunks)
{
    enum { N = 20011 };
    char                 path[512];
    float               *x = malloc(N * sizeof(float)), *out = malloc(N * sizeof(float));
    uint16_t            *h = malloc(N * sizeof(uint16_t)), *b = malloc(N * sizeof(uint16_t));
    double              *dd  = malloc(N * sizeof(double));
    const int64_t        s[] = {N};
    struct gdn__st_file *f   = NULL;
    struct gdn__st_err   err;
    size_t               i;

    ck_assert(x && out && h && b && dd);
    for (i = 0; i < N; i++) {
        x[i]  = (float)sin((double)i * 0.37) * (float)(1 + i % 97);
        h[i]  = gdn__st_f32_to_f16(x[i]);
        b[i]  = gdn__st_f32_to_bf16(x[i]);
        dd[i] = (double)x[i];
    }
    {
        struct gdn__st_entry e[] = {
            {"x", "F32", 1, s, x, N * sizeof(float)},
            {"h", "F16", 1, s, h, N * sizeof(uint16_t)},
            {"b", "BF16", 1, s, b, N * sizeof(uint16_t)},
            {"d", "F64", 1, s, dd, N * sizeof(double)},
        };
        tpath(path, sizeof(path), "large.safetensors");
        ck_assert_int_eq(gdn__st_write(path, e, 4, NULL, 0, &err), GDN_STATUS_OK);
    }
    ck_assert_int_eq(gdn__st_open(path, &f, &err), GDN_STATUS_OK);
    ck_assert_int_eq(gdn__st_read_f32(f, gdn__st_find(f, "x"), out, &err), 0);
    ck_assert_int_eq(memcmp(out, x, N * sizeof(float)), 0);
    ck_assert_int_eq(gdn__st_read_f32(f, gdn__st_find(f, "d"), out, &err), 0);
    ck_assert_int_eq(memcmp(out, x, N * sizeof(float)), 0);
    ck_assert_int_eq(gdn__st_read_f32(f, gdn__st_find(f, "h"), out, &err), 0);
    for (i = 0; i < N; i++)
        ck_assert_uint_eq(bits_of(out[i]), bits_of(gdn__st_f16_to_f32(h[i])));
    ck_assert_int_eq(gdn__st_read_f32(f, gdn__st_find(f, "b"), out, &err), 0);
    for (i = 0; i < N; i++)
        ck_assert_uint_eq(bits_of(out[i]), (uint32_t)b[i] << 16);
    gdn__st_close(f);
    free(x), free(out), free(h), free(b), free(dd);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Conversions                                                              */
/* ------------------------------------------------------------------------ */

/* Hand-written bytes with known values (little-endian). */
START_TEST(f16_bf16_f64_known_values)
{
    // clang-format off
    static const uint16_t f16[] = {
        0x3C00, 0xC000, 0x7BFF, 0x0001, 0x03FF, 0x0400, 0x7C00, 0xFC00,
        0x7E00, 0x8000, 0x3555, 0x8001, 0xFE01,
    };
    static const uint16_t bf16[] = {0x3F80, 0xC040, 0x7F80, 0xFF80, 0x7FC0, 0x0001, 0x8000,
                                    0x7F7F};
    // clang-format on
    const double  d64[] = {1.0, 1.0 / 3.0, 1e300, -0.0, 0x1p-149, 0x1p-150 * 1.5, 1e-50, -2.5};
    char          hdr[512], path[512];
    unsigned char data[256];
    size_t        pos = 0, i, hn;
    float         out[16];
    struct gdn__st_file *f = NULL;
    struct gdn__st_err   err;
    uint64_t             nan64 = 0x7FF8000000000001ull;

    for (i = 0; i < 13; i++, pos += 2)
        data[pos] = (unsigned char)(f16[i] & 0xFF), data[pos + 1] = (unsigned char)(f16[i] >> 8);
    for (i = 0; i < 8; i++, pos += 2)
        data[pos] = (unsigned char)(bf16[i] & 0xFF), data[pos + 1] = (unsigned char)(bf16[i] >> 8);
    for (i = 0; i < 9; i++, pos += 8) {
        uint64_t v;

        if (i < 8)
            memcpy(&v, &d64[i], 8);
        else
            v = nan64;
        put_le64(data + pos, v);
    }
    ck_assert_uint_eq(pos, 26 + 16 + 72);
    hn = (size_t)snprintf(hdr, sizeof(hdr),
                          "{\"h\":{\"dtype\":\"F16\",\"shape\":[13],\"data_offsets\":[0,26]},"
                          "\"b\":{\"dtype\":\"BF16\",\"shape\":[2,4],\"data_offsets\":[26,42]},"
                          "\"d\":{\"dtype\":\"F64\",\"shape\":[9],\"data_offsets\":[42,114]}}");
    tpath(path, sizeof(path), "conv.safetensors");
    {
        FILE         *fp = fopen(path, "wb");
        unsigned char len[8];

        ck_assert_ptr_nonnull(fp);
        put_le64(len, hn);
        fwrite(len, 1, 8, fp);
        fwrite(hdr, 1, hn, fp);
        fwrite(data, 1, pos, fp);
        fclose(fp);
    }
    ck_assert_int_eq(gdn__st_open(path, &f, &err), GDN_STATUS_OK);

    ck_assert_int_eq(gdn__st_read_f32(f, gdn__st_find(f, "h"), out, &err), GDN_STATUS_OK);
    ck_assert(out[0] == 1.0f);
    ck_assert(out[1] == -2.0f);
    ck_assert(out[2] == 65504.0f);
    ck_assert(out[3] == 0x1p-24f);           /* smallest subnormal */
    ck_assert(out[4] == 1023.0f * 0x1p-24f); /* largest subnormal */
    ck_assert(out[5] == 0x1p-14f);           /* smallest normal */
    ck_assert(isinf(out[6]) && out[6] > 0);
    ck_assert(isinf(out[7]) && out[7] < 0);
    ck_assert(isnan(out[8]) && !signbit(out[8]));
    ck_assert(out[9] == 0.0f && signbit(out[9]));
    ck_assert(out[10] == 0.333251953125f);
    ck_assert(out[11] == -0x1p-24f);
    ck_assert(isnan(out[12]) && signbit(out[12]));
    ck_assert_uint_eq(bits_of(out[12]) & 0x3FFu << 13, 0x201u << 13); /* payload kept */

    ck_assert_int_eq(gdn__st_read_f32(f, gdn__st_find(f, "b"), out, &err), GDN_STATUS_OK);
    ck_assert(out[0] == 1.0f);
    ck_assert(out[1] == -3.0f);
    ck_assert(isinf(out[2]) && out[2] > 0);
    ck_assert(isinf(out[3]) && out[3] < 0);
    ck_assert(isnan(out[4]));
    ck_assert_uint_eq(bits_of(out[5]), 0x00010000u); /* bf16 subnormal 2^-133 */
    ck_assert(out[6] == 0.0f && signbit(out[6]));
    ck_assert_uint_eq(bits_of(out[7]), 0x7F7F0000u);

    ck_assert_int_eq(gdn__st_read_f32(f, gdn__st_find(f, "d"), out, &err), GDN_STATUS_OK);
    ck_assert(out[0] == 1.0f);
    ck_assert(out[1] == (float)(1.0 / 3.0));
    ck_assert(isinf(out[2]) && out[2] > 0); /* overflow */
    ck_assert(out[3] == 0.0f && signbit(out[3]));
    ck_assert(out[4] == 0x1p-149f); /* smallest float subnormal, exact */
    ck_assert(out[5] == 0x1p-149f); /* 1.5 * 2^-150 rounds up */
    ck_assert(out[6] == 0.0f);      /* underflow */
    ck_assert(out[7] == -2.5f);
    ck_assert(isnan(out[8]));
    gdn__st_close(f);
}
END_TEST

/* Every half and bfloat16 value: exact widening and round trip. */
START_TEST(f16_bf16_exhaustive)
{
    uint32_t i;

    for (i = 0; i < 65536; i++) {
        uint16_t h   = (uint16_t)i;
        float    x   = gdn__st_f16_to_f32(h);
        int      exp = (h >> 10) & 0x1F, man = h & 0x3FF;
        double   ref;

        if (exp == 31) {
            ck_assert(man ? isnan(x) : isinf(x));
            ck_assert(!!signbit(x) == !!(h & 0x8000));
            ck_assert(man ? isnan(gdn__st_f16_to_f32(gdn__st_f32_to_f16(x)))
                          : gdn__st_f32_to_f16(x) == h);
        } else {
            ref = exp ? ldexp(1.0 + man / 1024.0, exp - 15) : ldexp((double)man, -24);
            if (h & 0x8000)
                ref = -ref;
            ck_assert_msg((double)x == ref && !!signbit(x) == !!(h & 0x8000),
                          "f16 0x%04x -> %a, want %a", h, (double)x, ref);
            ck_assert_msg(gdn__st_f32_to_f16(x) == h, "f16 0x%04x does not round-trip", h);
        }

        x = gdn__st_bf16_to_f32(h);
        ck_assert_uint_eq(bits_of(x), i << 16);
        if (isnan(x))
            ck_assert(isnan(gdn__st_bf16_to_f32(gdn__st_f32_to_bf16(x))));
        else
            ck_assert_uint_eq(gdn__st_f32_to_bf16(x), h);
    }
}
END_TEST

/* float32 -> half / bfloat16 rounds to nearest even. */
START_TEST(f32_to_half_rounding)
{
    ck_assert_uint_eq(gdn__st_f32_to_f16(1.0f + 0x1p-11f), 0x3C00);     /* tie -> even */
    ck_assert_uint_eq(gdn__st_f32_to_f16(1.0f + 3 * 0x1p-11f), 0x3C02); /* tie -> even */
    ck_assert_uint_eq(gdn__st_f32_to_f16(1.0f + 0x1p-11f + 0x1p-20f), 0x3C01);
    ck_assert_uint_eq(gdn__st_f32_to_f16(65504.0f), 0x7BFF);
    ck_assert_uint_eq(gdn__st_f32_to_f16(65519.0f), 0x7BFF);
    ck_assert_uint_eq(gdn__st_f32_to_f16(65520.0f), 0x7C00);
    ck_assert_uint_eq(gdn__st_f32_to_f16(-1e10f), 0xFC00);
    ck_assert_uint_eq(gdn__st_f32_to_f16(0x1p-25f), 0x0000); /* tie -> 0 */
    ck_assert_uint_eq(gdn__st_f32_to_f16(0x1p-25f * 1.0000001f), 0x0001);
    ck_assert_uint_eq(gdn__st_f32_to_f16(3 * 0x1p-25f), 0x0002); /* tie -> even */
    ck_assert_uint_eq(gdn__st_f32_to_f16(-0x1p-26f), 0x8000);
    ck_assert_uint_eq(gdn__st_f32_to_f16(0x1p-14f - 0x1p-26f), 0x0400); /* rounds up to normal */
    ck_assert_uint_eq(gdn__st_f32_to_f16(float_of(0x00000001u)), 0x0000);
    ck_assert_uint_eq(gdn__st_f32_to_f16(float_of(0xFFC00000u)) & 0xFE00u, 0xFE00u);

    ck_assert_uint_eq(gdn__st_f32_to_bf16(float_of(0x3F808000u)), 0x3F80); /* tie -> even */
    ck_assert_uint_eq(gdn__st_f32_to_bf16(float_of(0x3F818000u)), 0x3F82); /* tie -> even */
    ck_assert_uint_eq(gdn__st_f32_to_bf16(float_of(0x3F808001u)), 0x3F81);
    ck_assert_uint_eq(gdn__st_f32_to_bf16(float_of(0x7F7FFFFFu)), 0x7F80); /* overflow */
    ck_assert_uint_eq(gdn__st_f32_to_bf16(float_of(0x7F800001u)) & 0x7FC0u, 0x7FC0u);
    ck_assert_uint_eq(gdn__st_f32_to_bf16(float_of(0xFF800001u)) & 0xFFC0u, 0xFFC0u);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* The python library's layout, built by hand                               */
/* ------------------------------------------------------------------------ */

START_TEST(reads_python_layout_and_writes_it_byte_for_byte)
{
    const char          *json = "{\"__metadata__\":{\"format\":\"pt\"},"
                                "\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}";
    const float          a[2] = {1.5f, -2.25f};
    char                 hdr[256], path[512], path2[512];
    size_t               hn = strlen(json), n1, n2;
    unsigned char        le[8], *b1, *b2;
    FILE                *fp;
    float                out[2];
    struct gdn__st_file *f = NULL;
    struct gdn__st_err   err;
    const int64_t        s2[]    = {2};
    const char *const    meta[]  = {"format", "pt"};
    struct gdn__st_entry e       = {"a", "F32", 1, s2, a, sizeof(a)};
    uint32_t             bits[2] = {bits_of(a[0]), bits_of(a[1])};
    int                  i, j;

    memcpy(hdr, json, hn);
    while ((8 + hn) % 8)
        hdr[hn++] = ' ';
    ck_assert_uint_eq(hn, 88);
    tpath(path, sizeof(path), "python.safetensors");
    fp = fopen(path, "wb");
    ck_assert_ptr_nonnull(fp);
    put_le64(le, hn);
    fwrite(le, 1, 8, fp);
    fwrite(hdr, 1, hn, fp);
    for (i = 0; i < 2; i++)
        for (j = 0; j < 4; j++)
            fputc((int)((bits[i] >> (8 * j)) & 0xFF), fp);
    fclose(fp);

    ck_assert_int_eq(gdn__st_open(path, &f, &err), GDN_STATUS_OK);
    ck_assert_uint_eq(gdn__st_count(f), 1);
    ck_assert_str_eq(gdn__st_meta(f, "format"), "pt");
    ck_assert_int_eq(gdn__st_find(f, "a")->ndim, 1);
    ck_assert_int_eq(gdn__st_find(f, "a")->shape[0], 2);
    ck_assert_int_eq(gdn__st_read_f32(f, gdn__st_find(f, "a"), out, &err), GDN_STATUS_OK);
    ck_assert(out[0] == 1.5f && out[1] == -2.25f);
    gdn__st_close(f);

    /* our writer produces the same bytes */
    tpath(path2, sizeof(path2), "ours.safetensors");
    ck_assert_int_eq(gdn__st_write(path2, &e, 1, meta, 1, &err), GDN_STATUS_OK);
    b1 = slurp(path, &n1);
    b2 = slurp(path2, &n2);
    ck_assert_uint_eq(n1, n2);
    ck_assert_int_eq(memcmp(b1, b2, n1), 0);
    gdn__free(b1);
    gdn__free(b2);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Writing: argument checks and atomicity                                   */
/* ------------------------------------------------------------------------ */

static const int64_t s2[]   = {2};
static const int64_t sneg[] = {-2};
static const int64_t s9[9]  = {1, 1, 1, 1, 1, 1, 1, 1, 1};
static const int64_t sbig[] = {INT64_C(1) << 40, INT64_C(1) << 40};
static const float   two[2] = {1.0f, 2.0f};

static const struct {
    const char          *what;
    struct gdn__st_entry e[2];
    size_t               n;
    const char          *meta[4];
    size_t               n_meta;
    const char          *word;
} bad_writes[] = {
    {"duplicate name",
     {{"a", "F32", 1, s2, two, 8}, {"a", "F32", 1, s2, two, 8}},
     2,
     {0},
     0,
     "duplicate"},
    {"empty name", {{"", "F32", 1, s2, two, 8}}, 1, {0}, 0, "non-empty"},
    {"NULL name", {{NULL, "F32", 1, s2, two, 8}}, 1, {0}, 0, "name"},
    {"reserved name", {{"__metadata__", "F32", 1, s2, two, 8}}, 1, {0}, 0, "reserved"},
    {"non-UTF-8 name", {{"a\xff", "F32", 1, s2, two, 8}}, 1, {0}, 0, "UTF-8"},
    {"unknown dtype", {{"a", "F128", 1, s2, two, 8}}, 1, {0}, 0, "dtype"},
    {"NULL dtype", {{"a", NULL, 1, s2, two, 8}}, 1, {0}, 0, "dtype"},
    {"ndim 9", {{"a", "F32", 9, s9, two, 4}}, 1, {0}, 0, "ndim"},
    {"ndim -1", {{"a", "F32", -1, s2, two, 4}}, 1, {0}, 0, "ndim"},
    {"NULL shape", {{"a", "F32", 1, NULL, two, 4}}, 1, {0}, 0, "shape"},
    {"negative dim", {{"a", "F32", 1, sneg, two, 8}}, 1, {0}, 0, "negative"},
    {"numel overflow", {{"a", "F32", 2, sbig, two, 8}}, 1, {0}, 0, "overflow"},
    {"nbytes mismatch", {{"a", "F32", 1, s2, two, 4}}, 1, {0}, 0, "nbytes"},
    {"NULL data", {{"a", "F32", 1, s2, NULL, 8}}, 1, {0}, 0, "NULL"},
    {"duplicate metadata key",
     {{"a", "F32", 1, s2, two, 8}},
     1,
     {"k", "1", "k", "2"},
     2,
     "duplicate"},
    {"NULL metadata value", {{"a", "F32", 1, s2, two, 8}}, 1, {"k", NULL}, 1, "metadata"},
    {"non-UTF-8 metadata", {{"a", "F32", 1, s2, two, 8}}, 1, {"k", "\xc0\xaf"}, 1, "UTF-8"},
};

/* Each bad write is refused before anything is created, and leaves an
 * existing file untouched. */
START_TEST(bad_write_is_refused_and_existing_file_untouched)
{
    char                 path[512], fresh[512];
    struct gdn__st_entry good = {"old", "F32", 1, s2, two, 8};
    struct gdn__st_err   err;
    unsigned char       *before, *after;
    size_t               nb, na;
    struct stat          sb;

    tpath(path, sizeof(path), "existing.safetensors");
    tpath(fresh, sizeof(fresh), "fresh.safetensors");
    ck_assert_int_eq(gdn__st_write(path, &good, 1, NULL, 0, &err), GDN_STATUS_OK);
    before = slurp(path, &nb);

    ck_assert_int_eq(gdn__st_write(path, bad_writes[_i].e, bad_writes[_i].n, bad_writes[_i].meta,
                                   bad_writes[_i].n_meta, &err),
                     GDN_STATUS_INVALID_ARGUMENT);
    ck_assert_msg(strstr(err.msg, bad_writes[_i].word) != NULL, "%s: message '%s' lacks '%s'",
                  bad_writes[_i].what, err.msg, bad_writes[_i].word);
    ck_assert_msg(strstr(err.msg, path) != NULL, "%s: message '%s' lacks the path",
                  bad_writes[_i].what, err.msg);
    after = slurp(path, &na);
    ck_assert_uint_eq(na, nb);
    ck_assert_int_eq(memcmp(before, after, nb), 0);
    ck_assert_int_eq(count_temp_files(), 0);
    gdn__free(before);
    gdn__free(after);

    ck_assert_int_eq(gdn__st_write(fresh, bad_writes[_i].e, bad_writes[_i].n, bad_writes[_i].meta,
                                   bad_writes[_i].n_meta, &err),
                     GDN_STATUS_INVALID_ARGUMENT);
    ck_assert_int_ne(stat(fresh, &sb), 0);
    ck_assert_int_eq(count_temp_files(), 0);
}
END_TEST

/* I/O failures: the temp file is removed, nothing at path changes. */
START_TEST(io_failure_removes_temp_file)
{
    char                 path[512];
    struct gdn__st_entry good = {"a", "F32", 1, s2, two, 8};
    struct gdn__st_err   err;
    struct stat          sb;

    /* rename over a folder fails after the temp file was fully written */
    tpath(path, sizeof(path), "folder.safetensors");
    ck_assert_int_eq(mkdir(path, 0700), 0);
    ck_assert_int_eq(gdn__st_write(path, &good, 1, NULL, 0, &err), GDN_STATUS_IO);
    ck_assert_ptr_nonnull(strstr(err.msg, "rename"));
    ck_assert_int_eq(stat(path, &sb), 0);
    ck_assert(S_ISDIR(sb.st_mode));
    ck_assert_int_eq(count_temp_files(), 0);

    /* a folder that does not exist: no temp file can be made */
    tpath(path, sizeof(path), "no/such/dir/x.safetensors");
    ck_assert_int_eq(gdn__st_write(path, &good, 1, NULL, 0, &err), GDN_STATUS_IO);
    ck_assert_ptr_nonnull(strstr(err.msg, "temp"));
    ck_assert_int_eq(count_temp_files(), 0);

    /* NULL arguments */
    ck_assert_int_eq(gdn__st_write(NULL, &good, 1, NULL, 0, &err), GDN_STATUS_INVALID_ARGUMENT);
    ck_assert_int_eq(gdn__st_write(path, NULL, 1, NULL, 0, &err), GDN_STATUS_INVALID_ARGUMENT);
    ck_assert_int_eq(gdn__st_write(path, &good, 1, NULL, 1, &err), GDN_STATUS_INVALID_ARGUMENT);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Reading: files that are not what they claim                              */
/* ------------------------------------------------------------------------ */

START_TEST(open_failures_and_short_reads)
{
    char                 path[512];
    struct gdn__st_file *f = (struct gdn__st_file *)1;
    struct gdn__st_err   err;
    struct gdn__st_entry good = {"a", "F32", 1, s2, two, 8};
    float                out[2];

    tpath(path, sizeof(path), "absent.safetensors");
    ck_assert_int_eq(gdn__st_open(path, &f, &err), GDN_STATUS_IO);
    ck_assert_ptr_null(f);
    ck_assert_ptr_nonnull(strstr(err.msg, path));
    ck_assert_ptr_nonnull(strstr(err.msg, "cannot open"));

    ck_assert_int_eq(gdn__st_open(tmpdir, &f, &err), GDN_STATUS_IO); /* a folder */
    ck_assert_ptr_nonnull(strstr(err.msg, "regular"));
    ck_assert_int_eq(gdn__st_open(NULL, &f, &err), GDN_STATUS_INVALID_ARGUMENT);
    ck_assert_int_eq(gdn__st_open(path, NULL, NULL), GDN_STATUS_INVALID_ARGUMENT);

    /* the file shrinks after open: the read reports a short read */
    tpath(path, sizeof(path), "shrinks.safetensors");
    ck_assert_int_eq(gdn__st_write(path, &good, 1, NULL, 0, &err), GDN_STATUS_OK);
    ck_assert_int_eq(gdn__st_open(path, &f, &err), GDN_STATUS_OK);
    {
        struct stat sb;

        ck_assert_int_eq(stat(path, &sb), 0);
        ck_assert_int_eq(truncate(path, sb.st_size - 4), 0);
    }
    ck_assert_int_eq(gdn__st_read_f32(f, gdn__st_find(f, "a"), out, &err), GDN_STATUS_IO);
    ck_assert_ptr_nonnull(strstr(err.msg, "short read"));
    ck_assert_int_eq(gdn__st_read_raw(f, gdn__st_find(f, "a"), out, &err), GDN_STATUS_IO);
    ck_assert_int_eq(gdn__st_read_raw(f, NULL, out, &err), GDN_STATUS_INVALID_ARGUMENT);
    gdn__st_close(f);
}
END_TEST

#define TENSOR(dtype, shape, offsets)                                                              \
    "{\"w\":{\"dtype\":" dtype ",\"shape\":" shape ",\"data_offsets\":" offsets "}}"
#define NO_CUT 0
#define HLEN   UINT64_MAX /* write the real header length */

static const struct bad_file {
    const char *what;
    const char *header;
    size_t      header_n; /* 0: strlen(header) */
    uint64_t    hlen;     /* HLEN: header_n */
    size_t      data_n;
    size_t      chop; /* bytes cut off the end of the file (NO_CUT: 0) */
    gdn_status  st;
    const char *word;    /* in the message */
    bool        names_w; /* the message names tensor 'w' */
} bad_files[] = {
    // clang-format off
    {"empty file", "{}", 0, HLEN, 0, 10, GDN_STATUS_IO, "truncated", false},
    {"5-byte file", "{}", 0, HLEN, 0, 5, GDN_STATUS_IO, "8-byte", false},
    {"header length 0", "{}", 0, 0, 0, NO_CUT, GDN_STATUS_INVALID_ARGUMENT, "header length is 0", false},
    {"header length 2^63", "{}", 0, UINT64_C(1) << 63, 0, NO_CUT, GDN_STATUS_INVALID_ARGUMENT, "limit", false},
    {"header length 2^64-1", "{}", 0, UINT64_MAX - 1, 0, NO_CUT, GDN_STATUS_INVALID_ARGUMENT, "limit", false},
    {"header length 100 MiB + 1", "{}", 0, (UINT64_C(100) << 20) + 1, 0, NO_CUT, GDN_STATUS_INVALID_ARGUMENT, "limit", false},
    {"header length past the end", "{}", 0, 1000, 0, NO_CUT, GDN_STATUS_IO, "truncated", false},
    {"invalid UTF-8", "{\"a\xff\":{}}", 0, HLEN, 0, NO_CUT, GDN_STATUS_INVALID_ARGUMENT, "UTF-8", false},
    {"overlong UTF-8", "{\"\xc0\xaf\":{}}", 0, HLEN, 0, NO_CUT, GDN_STATUS_INVALID_ARGUMENT, "UTF-8", false},
    {"UTF-16 surrogate", "{\"\xed\xa0\x80\":{}}", 0, HLEN, 0, NO_CUT, GDN_STATUS_INVALID_ARGUMENT, "UTF-8", false},
    {"cut UTF-8 sequence", "{\"a\":{}}\xe2\x82", 0, HLEN, 0, NO_CUT, GDN_STATUS_INVALID_ARGUMENT, "UTF-8", false},
    {"not JSON", "hello world", 0, HLEN, 0, NO_CUT, GDN_STATUS_INVALID_ARGUMENT, "JSON", false},
    {"NUL in the header", "{\"w\0\":{}}", 9, HLEN, 0, NO_CUT, GDN_STATUS_INVALID_ARGUMENT, "JSON", false},
    {"escaped NUL in a name", "{\"w\\u0000\":{}}", 0, HLEN, 0, NO_CUT, GDN_STATUS_INVALID_ARGUMENT, "JSON", false},
    {"JSON cut short", "{\"w\":{\"dtype\"", 0, HLEN, 0, NO_CUT, GDN_STATUS_INVALID_ARGUMENT, "JSON", false},
    {"trailing garbage", "{} x", 0, HLEN, 0, NO_CUT, GDN_STATUS_INVALID_ARGUMENT, "JSON", false},
    {"top-level array", "[1, 2]", 0, HLEN, 0, NO_CUT, GDN_STATUS_INVALID_ARGUMENT, "object", false},
    {"top-level string", "\"w\"", 0, HLEN, 0, NO_CUT, GDN_STATUS_INVALID_ARGUMENT, "JSON", false},
    {"duplicate keys", "{\"w\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[0,4]},"
                       "\"w\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[4,8]}}",
     0, HLEN, 8, NO_CUT, GDN_STATUS_INVALID_ARGUMENT, "duplicate", false},
    {"duplicate keys inside an entry", "{\"w\":{\"dtype\":\"F32\",\"dtype\":\"F16\",\"shape\":[],"
                                       "\"data_offsets\":[0,4]}}",
     0, HLEN, 8, NO_CUT, GDN_STATUS_INVALID_ARGUMENT, "duplicate", false},
    {"entry not an object", "{\"w\":5}", 0, HLEN, 0, NO_CUT, GDN_STATUS_INVALID_ARGUMENT, "not a JSON object", true},
    {"entry is null", "{\"w\":null}", 0, HLEN, 0, NO_CUT, GDN_STATUS_INVALID_ARGUMENT, "not a JSON object", true},
    {"missing dtype", "{\"w\":{\"shape\":[1],\"data_offsets\":[0,4]}}", 0, HLEN, 4, NO_CUT, GDN_STATUS_INVALID_ARGUMENT, "missing \"dtype\"", true},
    {"missing shape", "{\"w\":{\"dtype\":\"F32\",\"data_offsets\":[0,4]}}", 0, HLEN, 4, NO_CUT, GDN_STATUS_INVALID_ARGUMENT, "missing \"shape\"", true},
    {"missing data_offsets", "{\"w\":{\"dtype\":\"F32\",\"shape\":[1]}}", 0, HLEN, 4, NO_CUT, GDN_STATUS_INVALID_ARGUMENT, "missing \"data_offsets\"", true},
    {"unknown dtype", TENSOR("\"F128\"", "[1]", "[0,16]"), 0, HLEN, 16, NO_CUT, GDN_STATUS_INVALID_ARGUMENT, "unknown dtype", true},
    {"lower-case dtype", TENSOR("\"f32\"", "[1]", "[0,4]"), 0, HLEN, 4, NO_CUT, GDN_STATUS_INVALID_ARGUMENT, "unknown dtype", true},
    {"long dtype", TENSOR("\"F32F32F32F32F32F32F32F32F32F32F32F32F32F32F32F32F32F32\"", "[1]", "[0,4]"), 0, HLEN, 4, NO_CUT, GDN_STATUS_INVALID_ARGUMENT, "unknown dtype", true},
    {"dtype not a string", TENSOR("32", "[1]", "[0,4]"), 0, HLEN, 4, NO_CUT, GDN_STATUS_INVALID_ARGUMENT, "\"dtype\" is not a string", true},
    {"shape not an array", TENSOR("\"F32\"", "4", "[0,16]"), 0, HLEN, 16, NO_CUT, GDN_STATUS_INVALID_ARGUMENT, "not an array", true},
    {"9 dims", TENSOR("\"F32\"", "[1,1,1,1,1,1,1,1,1]", "[0,4]"), 0, HLEN, 4, NO_CUT, GDN_STATUS_INVALID_ARGUMENT, "9 dims", true},
    {"negative dim", TENSOR("\"F32\"", "[2,-1]", "[0,4]"), 0, HLEN, 4, NO_CUT, GDN_STATUS_INVALID_ARGUMENT, "negative", true},
    {"real dim", TENSOR("\"F32\"", "[2.0]", "[0,8]"), 0, HLEN, 8, NO_CUT, GDN_STATUS_INVALID_ARGUMENT, "not an integer", true},
    {"string dim", TENSOR("\"F32\"", "[\"2\"]", "[0,8]"), 0, HLEN, 8, NO_CUT, GDN_STATUS_INVALID_ARGUMENT, "not an integer", true},
    {"numel overflow", TENSOR("\"F32\"", "[4294967296,4294967296]", "[0,4]"), 0, HLEN, 4, NO_CUT, GDN_STATUS_INVALID_ARGUMENT, "overflow", true},
    {"numel overflow past int64", TENSOR("\"U8\"", "[3037000500,3037000500]", "[0,4]"), 0, HLEN, 4, NO_CUT, GDN_STATUS_INVALID_ARGUMENT, "overflow", true},
    {"byte size overflow", TENSOR("\"F32\"", "[4611686018427387904]", "[0,4]"), 0, HLEN, 4, NO_CUT, GDN_STATUS_INVALID_ARGUMENT, "overflow", true},
    {"dim beyond int64", TENSOR("\"F32\"", "[18446744073709551616]", "[0,4]"), 0, HLEN, 4, NO_CUT, GDN_STATUS_INVALID_ARGUMENT, "JSON", false},
    {"data_offsets not an array", TENSOR("\"F32\"", "[1]", "4"), 0, HLEN, 4, NO_CUT, GDN_STATUS_INVALID_ARGUMENT, "data_offsets", true},
    {"one data offset", TENSOR("\"F32\"", "[1]", "[4]"), 0, HLEN, 4, NO_CUT, GDN_STATUS_INVALID_ARGUMENT, "data_offsets", true},
    {"three data offsets", TENSOR("\"F32\"", "[1]", "[0,4,8]"), 0, HLEN, 8, NO_CUT, GDN_STATUS_INVALID_ARGUMENT, "data_offsets", true},
    {"negative data offset", TENSOR("\"F32\"", "[1]", "[-4,0]"), 0, HLEN, 4, NO_CUT, GDN_STATUS_INVALID_ARGUMENT, "non-negative", true},
    {"real data offset", TENSOR("\"F32\"", "[1]", "[0,4.0]"), 0, HLEN, 4, NO_CUT, GDN_STATUS_INVALID_ARGUMENT, "data_offsets", true},
    {"begin after end", TENSOR("\"F32\"", "[1]", "[8,4]"), 0, HLEN, 8, NO_CUT, GDN_STATUS_INVALID_ARGUMENT, "begin 8 > end 4", true},
    {"span does not match the shape", TENSOR("\"F32\"", "[2]", "[0,4]"), 0, HLEN, 8, NO_CUT, GDN_STATUS_INVALID_ARGUMENT, "needs 8 bytes", true},
    {"huge end, wrong span", TENSOR("\"F32\"", "[2]", "[0,9223372036854775807]"), 0, HLEN, 8, NO_CUT, GDN_STATUS_INVALID_ARGUMENT, "needs", true},
    {"huge end, right span", TENSOR("\"F32\"", "[1152921504606846976]", "[0,4611686018427387904]"), 0, HLEN, 8, NO_CUT, GDN_STATUS_IO, "truncated", true},
    {"huge begin and end", TENSOR("\"F32\"", "[1]", "[9223372036854775803,9223372036854775807]"), 0, HLEN, 8, NO_CUT, GDN_STATUS_IO, "past the data buffer", true},
    {"end past the data", TENSOR("\"F32\"", "[2]", "[0,8]"), 0, HLEN, 4, NO_CUT, GDN_STATUS_IO, "truncated", true},
    {"data cut short", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                       "\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}}",
     0, HLEN, 16, 4, GDN_STATUS_IO, "truncated", true},
    {"overlapping tensors", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                            "\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}",
     0, HLEN, 12, NO_CUT, GDN_STATUS_INVALID_ARGUMENT, "overlap", true},
    {"tensor inside another", "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]},"
                              "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[12,16]},"
                              "\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
     0, HLEN, 16, NO_CUT, GDN_STATUS_INVALID_ARGUMENT, "overlap", true},
    {"same range twice", "{\"a\":{\"dtype\":\"I32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                         "\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}",
     0, HLEN, 4, NO_CUT, GDN_STATUS_INVALID_ARGUMENT, "overlap", true},
    {"metadata not an object", "{\"__metadata__\":[\"format\",\"pt\"]}", 0, HLEN, 0, NO_CUT, GDN_STATUS_INVALID_ARGUMENT, "__metadata__", false},
    {"metadata value not a string", "{\"__metadata__\":{\"format\":\"pt\",\"step\":12}}", 0, HLEN, 0, NO_CUT, GDN_STATUS_INVALID_ARGUMENT, "__metadata__", false},
    {"metadata value an object", "{\"__metadata__\":{\"k\":{}}}", 0, HLEN, 0, NO_CUT, GDN_STATUS_INVALID_ARGUMENT, "__metadata__", false},
    // clang-format on
};

START_TEST(hostile_file_is_rejected)
{
    const struct bad_file *c = &bad_files[_i];
    char                   path[512];
    size_t                 hn = c->header_n ? c->header_n : strlen(c->header);
    struct gdn__st_file   *f  = (struct gdn__st_file *)1;
    struct gdn__st_err     err;
    gdn_status             st;

    tpath(path, sizeof(path), "bad.safetensors");
    write_file(path, c->hlen == HLEN ? hn : c->hlen, c->header, hn, c->data_n, c->chop);
    memset(err.msg, 'x', sizeof(err.msg));
    st = gdn__st_open(path, &f, &err);
    ck_assert_msg(st == c->st, "%s: status %s, want %s (%s)", c->what, gdn_status_name(st),
                  gdn_status_name(c->st), err.msg);
    ck_assert_ptr_null(f);
    ck_assert_msg(memchr(err.msg, '\0', sizeof(err.msg)) != NULL, "%s: unterminated", c->what);
    ck_assert_msg(strstr(err.msg, c->word) != NULL, "%s: message '%s' lacks '%s'", c->what, err.msg,
                  c->word);
    ck_assert_msg(strstr(err.msg, path) != NULL, "%s: message '%s' lacks the path", c->what,
                  err.msg);
    if (c->names_w)
        ck_assert_msg(strstr(err.msg, "tensor 'w'") != NULL || strstr(err.msg, "'w'") != NULL,
                      "%s: message '%s' does not name the tensor", c->what, err.msg);
    /* err may be NULL */
    ck_assert_int_eq(gdn__st_open(path, &f, NULL), c->st);
}
END_TEST

/* Nesting far deeper than any real header: a parse error, not a crash. */
START_TEST(deep_nesting_is_rejected)
{
    enum { DEPTH = 200000 };
    char                *hdr = malloc(DEPTH * 2 + 16);
    char                 path[512];
    size_t               n = 0, i;
    struct gdn__st_file *f = NULL;
    struct gdn__st_err   err;

    ck_assert_ptr_nonnull(hdr);
    n += (size_t)sprintf(hdr, "{\"w\":");
    for (i = 0; i < DEPTH; i++)
        hdr[n++] = '[';
    for (i = 0; i < DEPTH; i++)
        hdr[n++] = ']';
    hdr[n++] = '}';
    tpath(path, sizeof(path), "deep.safetensors");
    write_file(path, n, hdr, n, 0, NO_CUT);
    free(hdr);
    ck_assert_int_eq(gdn__st_open(path, &f, &err), GDN_STATUS_INVALID_ARGUMENT);
    ck_assert_ptr_nonnull(strstr(err.msg, "JSON"));
    ck_assert_ptr_null(f);
}
END_TEST

/* Valid, if unusual, files that must be accepted. */
static const struct {
    const char *what;
    const char *header;
    size_t      data_n;
    size_t      count;
} odd_files[] = {
    {"zero-sized tensors anywhere",
     "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
     "\"z\":{\"dtype\":\"F32\",\"shape\":[0,3],\"data_offsets\":[4,4]},"
     "\"y\":{\"dtype\":\"BF16\",\"shape\":[5,0],\"data_offsets\":[8,8]}}",
     8, 3},
    {"gaps, trailing bytes, extra keys and padding",
     "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8],\"extra\":[1,{}]},"
     "\"b\":{\"dtype\":\"F64\",\"shape\":[],\"data_offsets\":[16,24]}}   \t\n  ",
     40, 2},
    {"empty metadata, escaped names",
     "{\"__metadata__\":{},\"a\\/b\\u00e9\":{\"dtype\":\"U8\",\"shape\":[3],"
     "\"data_offsets\":[0,3]}}",
     3, 1},
    {"only metadata", "{\"__metadata__\":{\"format\":\"pt\"}}", 0, 0},
    {"every dtype name",
     "{\"a\":{\"dtype\":\"F64\",\"shape\":[1],\"data_offsets\":[0,8]},"
     "\"b\":{\"dtype\":\"I64\",\"shape\":[1],\"data_offsets\":[8,16]},"
     "\"c\":{\"dtype\":\"U64\",\"shape\":[1],\"data_offsets\":[16,24]},"
     "\"d\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[24,28]},"
     "\"e\":{\"dtype\":\"I32\",\"shape\":[1],\"data_offsets\":[28,32]},"
     "\"f\":{\"dtype\":\"U32\",\"shape\":[1],\"data_offsets\":[32,36]},"
     "\"g\":{\"dtype\":\"F16\",\"shape\":[1],\"data_offsets\":[36,38]},"
     "\"h\":{\"dtype\":\"BF16\",\"shape\":[1],\"data_offsets\":[38,40]},"
     "\"i\":{\"dtype\":\"I16\",\"shape\":[1],\"data_offsets\":[40,42]},"
     "\"j\":{\"dtype\":\"U16\",\"shape\":[1],\"data_offsets\":[42,44]},"
     "\"k\":{\"dtype\":\"I8\",\"shape\":[1],\"data_offsets\":[44,45]},"
     "\"l\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[45,46]},"
     "\"m\":{\"dtype\":\"BOOL\",\"shape\":[1],\"data_offsets\":[46,47]},"
     "\"n\":{\"dtype\":\"F8_E4M3\",\"shape\":[1],\"data_offsets\":[47,48]},"
     "\"o\":{\"dtype\":\"F8_E5M2\",\"shape\":[1],\"data_offsets\":[48,49]}}",
     49, 15},
};

START_TEST(odd_but_valid_file_is_accepted)
{
    char                 path[512];
    struct gdn__st_file *f = NULL;
    struct gdn__st_err   err;
    size_t               i;

    tpath(path, sizeof(path), "odd.safetensors");
    write_file(path, strlen(odd_files[_i].header), odd_files[_i].header,
               strlen(odd_files[_i].header), odd_files[_i].data_n, NO_CUT);
    ck_assert_msg(gdn__st_open(path, &f, &err) == GDN_STATUS_OK, "%s: %s", odd_files[_i].what,
                  err.msg);
    ck_assert_uint_eq(gdn__st_count(f), odd_files[_i].count);
    for (i = 0; i < gdn__st_count(f); i++) {
        const struct gdn__st_tensor *t = gdn__st_at(f, i);
        unsigned char                raw[64];

        ck_assert_ptr_eq(gdn__st_find(f, t->name), t);
        ck_assert_uint_eq(t->end - t->begin, t->numel * gdn__st_dtype_size(t->dtype));
        ck_assert_int_eq(gdn__st_read_raw(f, t, raw, &err), GDN_STATUS_OK);
        ck_assert_uint_eq(raw[0], t->end > t->begin ? (unsigned)(t->begin & 0xFF) : raw[0]);
    }
    if (_i == 2)
        ck_assert_ptr_nonnull(gdn__st_find(f, "a/b\xc3\xa9"));
    gdn__st_close(f);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Out of memory at every allocation: a clean status, no leak               */
/* ------------------------------------------------------------------------ */

static void *counted_malloc(size_t n)
{
    return gdn__malloc(n);
}

START_TEST(out_of_memory_everywhere)
{
    char                 path[512];
    const int64_t        s[]    = {2};
    const char *const    meta[] = {"format", "pt", "step", "3"};
    struct gdn__st_entry e[]    = {{"a", "F32", 1, s, two, 8}, {"b", "F32", 1, s, two, 8}};
    struct gdn__st_err   err;
    int                  k, pass, ok_open = 0, ok_write = 0, streak;

    tpath(path, sizeof(path), "oom.safetensors");
    ck_assert_int_eq(gdn__st_write(path, e, 2, meta, 2, &err), GDN_STATUS_OK);
    /* pass 0: only our allocations fail; pass 1: jansson's too */
    for (pass = 0; pass < 2; pass++) {
        if (pass == 1)
            json_set_alloc_funcs(counted_malloc, gdn__free);
        /* stop after 10 clean runs in a row: k is past every allocation */
        for (k = 1, streak = 0; k < 1000 && streak < 10; k++) {
            struct gdn__st_file *f = NULL;
            gdn_status           st;
            bool                 open_ok;

            gdn__alloc_fail_after(k);
            st = gdn__st_open(path, &f, &err);
            gdn__alloc_fail_after(0);
            /* jansson may report a failed allocation inside its lexer as a
             * syntax error, so pass 1 also accepts that */
            ck_assert_msg(
                st == GDN_STATUS_OK || st == GDN_STATUS_OUT_OF_HOST_MEMORY ||
                    (pass == 1 && st == GDN_STATUS_INVALID_ARGUMENT && strstr(err.msg, "JSON")),
                "pass %d, open, allocation %d: %s (%s)", pass, k, gdn_status_name(st), err.msg);
            open_ok = st == GDN_STATUS_OK;
            if (open_ok) {
                ck_assert_str_eq(gdn__st_meta(f, "step"), "3");
                ck_assert_ptr_nonnull(gdn__st_find(f, "b"));
                ok_open++;
            } else {
                ck_assert_ptr_null(f);
            }
            gdn__st_close(f);

            gdn__alloc_fail_after(k);
            st = gdn__st_write(path, e, 2, meta, 2, &err);
            gdn__alloc_fail_after(0);
            ck_assert_msg(st == GDN_STATUS_OK || st == GDN_STATUS_OUT_OF_HOST_MEMORY,
                          "pass %d, write, allocation %d: %s (%s)", pass, k, gdn_status_name(st),
                          err.msg);
            ok_write += st == GDN_STATUS_OK;
            streak = st == GDN_STATUS_OK && open_ok ? streak + 1 : 0;
            ck_assert_int_eq(count_temp_files(), 0);
        }
    }
    json_set_alloc_funcs(malloc, free);
    ck_assert_int_gt(ok_open, 0);
    ck_assert_int_gt(ok_write, 0);
}
END_TEST

int main(void)
{
    Suite   *s = suite_create("safetensors");
    TCase   *tc;
    SRunner *sr;
    int      failed;

    tc = tcase_create("round_trip");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, round_trip_dtypes_shapes_meta);
    tcase_add_test(tc, empty_file_and_no_metadata);
    tcase_add_test(tc, large_tensors_convert_in_chunks);
    tcase_add_test(tc, reads_python_layout_and_writes_it_byte_for_byte);
    suite_add_tcase(s, tc);

    tc = tcase_create("convert");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, f16_bf16_f64_known_values);
    tcase_add_test(tc, f16_bf16_exhaustive);
    tcase_add_test(tc, f32_to_half_rounding);
    suite_add_tcase(s, tc);

    tc = tcase_create("write");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_loop_test(tc, bad_write_is_refused_and_existing_file_untouched, 0,
                        (int)(sizeof(bad_writes) / sizeof(bad_writes[0])));
    tcase_add_test(tc, io_failure_removes_temp_file);
    suite_add_tcase(s, tc);

    tc = tcase_create("hostile");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, open_failures_and_short_reads);
    tcase_add_loop_test(tc, hostile_file_is_rejected, 0,
                        (int)(sizeof(bad_files) / sizeof(bad_files[0])));
    tcase_add_test(tc, deep_nesting_is_rejected);
    tcase_add_loop_test(tc, odd_but_valid_file_is_accepted, 0,
                        (int)(sizeof(odd_files) / sizeof(odd_files[0])));
    tcase_add_test(tc, out_of_memory_everywhere);
    tcase_set_timeout(tc, 60);
    suite_add_tcase(s, tc);

    sr = srunner_create(s);
    srunner_run_all(sr, CK_ENV);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
