/*
 * db_file.c - the user tuning database: one human-readable text file per
 * device under <cache>/tune/, written by the tuner, read at first lookup.
 *
 * Format (version 1):
 *     # comments
 *     gdn-tune-db 1
 *     device <CL_DEVICE_NAME>
 *     driver <CL_DRIVER_VERSION>
 *     vendor_id 0x10de
 *     compute_units 132
 *     row <stage> <bucket> KEY=v KEY=v ...   # optional comment
 * The identity lines must match the device exactly; a file for another
 * device or driver, of another version, or with a malformed line is
 * reported and ignored as a whole (the library then runs on built-in
 * values). Writes are atomic.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tune.h"

#define DB_VERSION 1

struct db_row {
    char *stage, *bucket, *values, *comment;
};

struct gdn_tune_db {
    struct db_row *rows;
    size_t         n, cap;
    /* the owning context's settings (not part of the file) */
    struct gdn_tune_settings settings;
};

struct gdn_tune_settings *gdn__tune_db_settings(struct gdn_tune_db *db)
{
    return &db->settings;
}

struct gdn_tune_db *gdn__tune_db_new(void)
{
    return gdn__calloc(1, sizeof(struct gdn_tune_db));
}

void gdn__tune_db_free(struct gdn_tune_db *db)
{
    size_t i;
    if (!db)
        return;
    for (i = 0; i < db->n; i++) {
        gdn__free(db->rows[i].stage);
        gdn__free(db->rows[i].bucket);
        gdn__free(db->rows[i].values);
        gdn__free(db->rows[i].comment);
    }
    gdn__free(db->rows);
    gdn__tune_db_free(db->settings.memo);
    gdn__free(db);
}

gdn_status gdn__tune_db_set(struct gdn_tune_db *db, const char *stage, const char *bucket,
                            const char *values, const char *comment)
{
    struct db_row r;
    size_t        i;

    r.stage   = gdn__strdup(stage);
    r.bucket  = gdn__strdup(bucket);
    r.values  = gdn__strdup(values);
    r.comment = comment ? gdn__strdup(comment) : NULL;
    if (!r.stage || !r.bucket || !r.values || (comment && !r.comment))
        goto oom;
    for (i = 0; i < db->n; i++)
        if (!strcmp(db->rows[i].stage, stage) && !strcmp(db->rows[i].bucket, bucket)) {
            gdn__free(db->rows[i].stage);
            gdn__free(db->rows[i].bucket);
            gdn__free(db->rows[i].values);
            gdn__free(db->rows[i].comment);
            db->rows[i] = r;
            return GDN_STATUS_OK;
        }
    if (db->n == db->cap) {
        size_t         cap  = db->cap ? 2 * db->cap : 32;
        struct db_row *grow = gdn__realloc(db->rows, cap * sizeof(*grow));
        if (!grow)
            goto oom;
        db->rows = grow;
        db->cap  = cap;
    }
    db->rows[db->n++] = r;
    return GDN_STATUS_OK;
oom:
    gdn__free(r.stage);
    gdn__free(r.bucket);
    gdn__free(r.values);
    gdn__free(r.comment);
    return GDN_STATUS_OUT_OF_HOST_MEMORY;
}

const char *gdn__tune_db_get(const struct gdn_tune_db *db, const char *stage, const char *bucket)
{
    size_t i;
    for (i = 0; db && i < db->n; i++)
        if (!strcmp(db->rows[i].stage, stage) && !strcmp(db->rows[i].bucket, bucket))
            return db->rows[i].values;
    return NULL;
}

char *gdn__tune_db_default_path(const gdn_context *ctx)
{
    struct gdn_strbuf sb = {0};
    char              slug[128];
    size_t            i, n = 0;
    const char       *base = ctx->tune_dir;

    if (!base)
        return NULL;
    for (i = 0; ctx->dev.info.name[i] && n + 1 < sizeof(slug); i++) {
        char c = ctx->dev.info.name[i];
        slug[n++] = ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
                        ? c
                        : '_';
    }
    slug[n] = '\0';
    gdn__strbuf_appendf(&sb, "%s/%s.txt", base, slug);
    if (sb.oom) {
        gdn__strbuf_free(&sb);
        return NULL;
    }
    return sb.data;
}

static char *trim(char *s)
{
    char *e;
    while (*s == ' ' || *s == '\t')
        s++;
    e = s + strlen(s);
    while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r' || e[-1] == '\n'))
        *--e = '\0';
    return s;
}

gdn_status gdn__tune_db_load(gdn_context *ctx, const char *path, struct gdn_tune_db **out)
{
    struct gdn_tune_db *db;
    char               *text = NULL, *line, *save = NULL;
    size_t              size;
    int                 lineno = 0, version = -1;
    const char         *why    = NULL;
    gdn_status          st;

    *out = NULL;
    st   = gdn__file_read(path, &text, &size);
    if (st == GDN_STATUS_IO)
        return GDN_STATUS_OK; /* no database yet */
    if (st)
        return st;
    db = gdn__calloc(1, sizeof(*db));
    if (!db) {
        gdn__free(text);
        return GDN_STATUS_OUT_OF_HOST_MEMORY;
    }
    if (strlen(text) != size)
        why = "contains a NUL byte";
    for (line = strtok_r(text, "\n", &save); line && !why; line = strtok_r(NULL, "\n", &save)) {
        char *hash, *l;
        lineno++;
        hash = strchr(line, '#');
        if (hash)
            *hash = '\0';
        l = trim(line);
        if (!*l)
            continue;
        if (version < 0) {
            if (sscanf(l, "gdn-tune-db %d", &version) != 1)
                why = "the first line is not 'gdn-tune-db <version>'";
            else if (version != DB_VERSION)
                why = "written by another version of libgdn";
            continue;
        }
        if (!strncmp(l, "device ", 7)) {
            if (strcmp(trim(l + 7), ctx->dev.info.name))
                why = "for another device";
        } else if (!strncmp(l, "driver ", 7)) {
            if (strcmp(trim(l + 7), ctx->dev.info.driver_version))
                why = "for another driver version";
        } else if (!strncmp(l, "vendor_id ", 10) || !strncmp(l, "compute_units ", 14)) {
            unsigned long v   = strtoul(strchr(l, ' ') + 1, NULL, 0);
            unsigned long dev = l[0] == 'v' ? ctx->dev.info.vendor_id : ctx->dev.info.compute_units;
            if (v != dev)
                why = "for another device (vendor or compute units differ)";
        } else if (!strncmp(l, "row ", 4)) {
            char *stage = trim(l + 4), *bucket, *values;
            bucket      = strchr(stage, ' ');
            if (!bucket) {
                why = "malformed row";
                break;
            }
            *bucket++ = '\0';
            bucket    = trim(bucket);
            values    = strchr(bucket, ' ');
            if (!values) {
                why = "malformed row";
                break;
            }
            *values++ = '\0';
            values    = trim(values);
            if (!strchr(values, '=')) {
                why = "malformed row";
                break;
            }
            if ((st = gdn__tune_db_set(db, stage, bucket, values, NULL))) {
                gdn__free(text);
                gdn__tune_db_free(db);
                return st;
            }
        } else {
            why = "unknown line";
        }
    }
    if (!why && version < 0)
        why = "empty or truncated";
    gdn__free(text);
    if (why) {
        gdn__log(ctx, GDN_LOG_LEVEL_WARN, "tuning database %s ignored: %s (line %d); using "
                 "built-in values", path, why, lineno);
        gdn__tune_db_free(db);
        return GDN_STATUS_TUNE_DB;
    }
    gdn__log(ctx, GDN_LOG_LEVEL_DEBUG, "tuning database %s: %zu rows", path, db->n);
    *out = db;
    return GDN_STATUS_OK;
}

gdn_status gdn__tune_db_save(gdn_context *ctx, const struct gdn_tune_db *db, const char *path)
{
    struct gdn_strbuf sb = {0};
    size_t            i;
    gdn_status        st;
    char             *dir, *slash;

    gdn__strbuf_appendf(&sb, "# libgdn tuning database for one device and driver, written by "
                             "`gdn tune`.\n# Rows: row <stage> <bucket> <values>.\n");
    gdn__strbuf_appendf(&sb, "gdn-tune-db %d\ndevice %s\ndriver %s\nvendor_id 0x%x\n"
                             "compute_units %u\n",
                        DB_VERSION, ctx->dev.info.name, ctx->dev.info.driver_version,
                        (unsigned)ctx->dev.info.vendor_id, (unsigned)ctx->dev.info.compute_units);
    for (i = 0; db && i < db->n; i++)
        gdn__strbuf_appendf(&sb, "row %s %s %s%s%s\n", db->rows[i].stage, db->rows[i].bucket,
                            db->rows[i].values, db->rows[i].comment ? "   # " : "",
                            db->rows[i].comment ? db->rows[i].comment : "");
    if (sb.oom) {
        gdn__strbuf_free(&sb);
        return GDN_STATUS_OUT_OF_HOST_MEMORY;
    }
    dir = gdn__strdup(path);
    if (dir && (slash = strrchr(dir, '/')) != NULL) {
        *slash = '\0';
        gdn__mkdirs(dir);
    }
    gdn__free(dir);
    st = gdn__file_write_atomic(path, sb.data, sb.len);
    gdn__strbuf_free(&sb);
    if (st)
        return gdn__fail(ctx, GDN_STATUS_IO, "cannot write tuning database %s", path);
    return GDN_STATUS_OK;
}
