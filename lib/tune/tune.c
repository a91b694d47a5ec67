/*
 * tune.c - parameter lookup: override -> user DB -> built-in device ->
 * architecture -> vendor -> generic default (see tune.h). Every candidate
 * assignment is checked for legality and against the stage's validity test
 * before it is used, so a bad table row or override can only cost speed.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tune.h"

const char *gdn__tune_source_name(enum gdn_tune_source src)
{
    switch (src) {
    case GDN_TUNE_SRC_GENERIC:
        return "generic default";
    case GDN_TUNE_SRC_VENDOR:
        return "built-in (vendor)";
    case GDN_TUNE_SRC_ARCH:
        return "built-in (architecture)";
    case GDN_TUNE_SRC_DEVICE:
        return "built-in (device)";
    case GDN_TUNE_SRC_USER_DB:
        return "user tuning database";
    case GDN_TUNE_SRC_OVERRIDE:
        return "override (GDN_TUNE)";
    }
    return "?";
}

void gdn__tune_arch(const struct gdn_device *dev, char *buf, size_t cap)
{
    if (dev->info.nv_compute_capability)
        snprintf(buf, cap, "sm_%u", (unsigned)dev->info.nv_compute_capability);
    else if (!strncmp(dev->info.name, "gfx", 3))
        gdn__strlcpy(buf, dev->info.name, cap); /* AMD reports its gfx name */
    else
        gdn__strlcpy(buf, "", cap);
}

const char *gdn__tune_vendor(const struct gdn_device *dev)
{
    if (dev->is_pocl)
        return "pocl";
    switch (dev->info.vendor_id) {
    case 0x10de:
        return "nvidia";
    case 0x1002:
        return "amd";
    case 0x8086:
        return gdn__strcasestr(dev->info.vendor, "intel") ? "intel" : "other";
    }
    if (gdn__strcasestr(dev->info.vendor, "nvidia"))
        return "nvidia";
    if (gdn__strcasestr(dev->info.vendor, "advanced micro") || gdn__strcasestr(dev->info.vendor, "amd"))
        return "amd";
    if (gdn__strcasestr(dev->info.vendor, "intel"))
        return "intel";
    return "other";
}

static int param_index(const struct gdn_tune_space *space, const char *name, size_t n)
{
    int32_t i;
    for (i = 0; i < space->n_params; i++)
        if (strlen(space->params[i].name) == n && !strncmp(space->params[i].name, name, n))
            return i;
    return -1;
}

static bool legal(const struct gdn_tune_param *p, int32_t v)
{
    int32_t i;
    for (i = 0; i < p->n_values; i++)
        if (p->values[i] == v)
            return true;
    return false;
}

bool gdn__tune_parse_values(const struct gdn_tune_space *space, const char *text, int32_t *vals,
                            char *err, size_t errcap)
{
    const char *p = text;
    int32_t     tmp[GDN_TUNE_MAX_PARAMS];

    memcpy(tmp, vals, (size_t)space->n_params * sizeof(*vals));
    while (*p) {
        const char *key, *eq;
        char       *end;
        long        v;
        int         idx;
        while (*p == ' ' || *p == ',' || *p == '\t')
            p++;
        if (!*p)
            break;
        key = p;
        eq  = strchr(p, '=');
        if (!eq) {
            snprintf(err, errcap, "%s: expected KEY=value at '%s'", space->stage, key);
            return false;
        }
        idx = param_index(space, key, (size_t)(eq - key));
        if (idx < 0) {
            snprintf(err, errcap, "%s: unknown parameter '%.*s'", space->stage, (int)(eq - key),
                     key);
            return false;
        }
        v = strtol(eq + 1, &end, 10);
        if (end == eq + 1 || (*end && *end != ' ' && *end != ',' && *end != '\t')) {
            snprintf(err, errcap, "%s: %s needs an integer value", space->stage,
                     space->params[idx].name);
            return false;
        }
        if (!legal(&space->params[idx], (int32_t)v)) {
            snprintf(err, errcap, "%s: %s=%ld is not a legal value", space->stage,
                     space->params[idx].name, v);
            return false;
        }
        tmp[idx] = (int32_t)v;
        p        = end;
    }
    memcpy(vals, tmp, (size_t)space->n_params * sizeof(*vals));
    return true;
}

void gdn__tune_format_values(const struct gdn_tune_space *space, const int32_t *vals, char *buf,
                             size_t cap)
{
    size_t  len = 0;
    int32_t i;
    buf[0]      = '\0';
    for (i = 0; i < space->n_params && len < cap; i++) {
        int w = snprintf(buf + len, cap - len, "%s%s=%d", i ? " " : "", space->params[i].name,
                         (int)vals[i]);
        if (w < 0)
            break;
        len += (size_t)w;
    }
}

bool gdn__tune_defines(const struct gdn_tune_space *space, const int32_t *vals, char *buf,
                       size_t cap)
{
    struct gdn_define defs[GDN_TUNE_MAX_PARAMS];
    int32_t           i;
    for (i = 0; i < space->n_params; i++) {
        defs[i].name  = space->params[i].name;
        defs[i].value = vals[i];
    }
    return gdn__defines_format(defs, (size_t)space->n_params, buf, cap);
}

/* The generic defaults of a space for this problem. */
static void base_values(const gdn_context *ctx, const struct gdn_tune_space *space,
                        const void *problem, int32_t *vals)
{
    int32_t i;
    for (i = 0; i < space->n_params; i++)
        vals[i] = space->params[i].def;
    if (space->defaults)
        space->defaults(vals, problem, &ctx->dev);
}

/* Try one source's text: parse over the defaults, check validity. */
static bool try_values(gdn_context *ctx, const struct gdn_tune_space *space, const char *text,
                       const void *problem, int32_t *vals, const char *from)
{
    int32_t tmp[GDN_TUNE_MAX_PARAMS];
    char    err[256];

    base_values(ctx, space, problem, tmp);
    if (!gdn__tune_parse_values(space, text, tmp, err, sizeof(err))) {
        gdn__log(ctx, GDN_LOG_LEVEL_WARN, "tuning %s ignored: %s", from, err);
        return false;
    }
    if (space->valid && !space->valid(tmp, problem, &ctx->dev)) {
        gdn__log(ctx, GDN_LOG_LEVEL_INFO, "tuning %s for %s ('%s') does not fit this problem or "
                 "device; falling back", from, space->stage, text);
        return false;
    }
    memcpy(vals, tmp, (size_t)space->n_params * sizeof(*vals));
    return true;
}

/* Find "stage:..." in the override string; copies the value part. */
static bool find_override(const char *ovr, const char *stage, char *out, size_t cap)
{
    size_t      n = strlen(stage);
    const char *p = ovr;
    while (p && *p) {
        const char *end = strchr(p, ';');
        size_t      len = end ? (size_t)(end - p) : strlen(p);
        while (*p == ' ' && len)
            p++, len--;
        if (len > n && !strncmp(p, stage, n) && p[n] == ':') {
            size_t m = len - n - 1;
            if (m >= cap)
                m = cap - 1;
            memcpy(out, p + n + 1, m);
            out[m] = '\0';
            return true;
        }
        p = end ? end + 1 : NULL;
    }
    return false;
}

void gdn__tune_lookup(gdn_context *ctx, const struct gdn_tune_space *space, const char *bucket,
                      const void *problem, int32_t *vals, enum gdn_tune_source *src)
{
    char        text[256], arch[32];
    const char *levels[3];
    size_t      i;
    int         lv;

    base_values(ctx, space, problem, vals);
    if (src)
        *src = GDN_TUNE_SRC_GENERIC;

    /* 1. override */
    if (ctx->tune_override && find_override(ctx->tune_override, space->stage, text, sizeof(text)) &&
        try_values(ctx, space, text, problem, vals, "override")) {
        if (src)
            *src = GDN_TUNE_SRC_OVERRIDE;
        return;
    }
    /* 2. user DB */
    if (!ctx->tune_db_loaded) {
        char *path         = gdn__tune_db_default_path(ctx);
        ctx->tune_db_loaded = true;
        if (path) {
            gdn__tune_db_load(ctx, path, &ctx->tune_db);
            gdn__free(path);
        }
    }
    if (ctx->tune_db) {
        const char *v = gdn__tune_db_get(ctx->tune_db, space->stage, bucket);
        if (v && try_values(ctx, space, v, problem, vals, "user database row")) {
            if (src)
                *src = GDN_TUNE_SRC_USER_DB;
            return;
        }
    }
    /* 3-4. built-in: device name, architecture, vendor (exact bucket rows
     * first, then "*" rows, at each level). */
    gdn__tune_arch(&ctx->dev, arch, sizeof(arch));
    levels[0] = ctx->dev.info.name;
    levels[1] = arch;
    levels[2] = gdn__tune_vendor(&ctx->dev);
    for (lv = 0; lv < 3; lv++) {
        int pass;
        if (!levels[lv][0])
            continue;
        for (pass = 0; pass < 2; pass++)
            for (i = 0; i < gdn__tune_builtin_count; i++) {
                const struct gdn_tune_row *r = &gdn__tune_builtin[i];
                if (strcmp(r->stage, space->stage) || strcmp(r->match, levels[lv]))
                    continue;
                if (pass == 0 ? strcmp(r->bucket, bucket) : strcmp(r->bucket, "*"))
                    continue;
                if (try_values(ctx, space, r->values, problem, vals, "built-in row")) {
                    if (src)
                        *src = lv == 0 ? GDN_TUNE_SRC_DEVICE
                                       : lv == 1 ? GDN_TUNE_SRC_ARCH : GDN_TUNE_SRC_VENDOR;
                    return;
                }
            }
    }
    /* 5. generic defaults */
    base_values(ctx, space, problem, vals);
}
