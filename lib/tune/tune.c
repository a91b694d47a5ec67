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
    case GDN_TUNE_SRC_RANDOM:
        return "random (GDN_TUNE_RANDOM)";
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

/* ------------------------------------------------- per-context settings */

/* GDN_TUNE_RANDOM, GDN_TUNE_MODE and GDN_TUNE_BUDGET (see tune.h). */
static void read_settings(gdn_context *ctx, struct gdn_tune_settings *st)
{
    const char *r = getenv("GDN_TUNE_RANDOM"), *m = getenv("GDN_TUNE_MODE");
    const char *b = getenv("GDN_TUNE_BUDGET");

    if (r && *r) {
        char         *end;
        unsigned long v = strtoul(r, &end, 0);
        if (*end || r[0] == '-' || v > 0xffffffffUL) {
            gdn__log(ctx, GDN_LOG_LEVEL_WARN,
                     "GDN_TUNE_RANDOM='%s' ignored: expected a seed (unsigned 32-bit integer)", r);
        } else {
            st->random      = true;
            st->random_seed = (uint32_t)v;
            gdn__log(ctx, GDN_LOG_LEVEL_WARN,
                     "GDN_TUNE_RANDOM=%lu: tuned stages run random legal plans (testing only)", v);
        }
    }
    st->mode = GDN_TUNE_MODE_DB;
    if (m && *m) {
        if (!strcmp(m, "lazy"))
            st->mode = GDN_TUNE_MODE_LAZY;
        else if (!strcmp(m, "eager"))
            st->mode = GDN_TUNE_MODE_EAGER;
        else if (strcmp(m, "db"))
            gdn__log(ctx, GDN_LOG_LEVEL_WARN,
                     "GDN_TUNE_MODE='%s' ignored: expected db, lazy or eager; using db", m);
    }
    st->budget_s = st->mode == GDN_TUNE_MODE_EAGER ? 300.0 : 120.0;
    if (b && *b) {
        char  *end;
        double v = strtod(b, &end);
        if (*end || !(v > 0) || v > 1e6)
            gdn__log(ctx, GDN_LOG_LEVEL_WARN,
                     "GDN_TUNE_BUDGET='%s' ignored: expected seconds > 0; using %.0f", b,
                     st->budget_s);
        else
            st->budget_s = v;
    }
    /* the context's parameters win over the environment */
    if (ctx->tune_mode_param >= 0) {
        st->mode = (enum gdn_tune_mode)ctx->tune_mode_param;
        if (!(b && *b))
            st->budget_s = st->mode == GDN_TUNE_MODE_EAGER ? 300.0 : 120.0;
    }
    if (ctx->tune_budget_param > 0)
        st->budget_s = ctx->tune_budget_param;
    if (st->mode != GDN_TUNE_MODE_DB)
        gdn__log(ctx, GDN_LOG_LEVEL_INFO, "tuning mode %s, budget %.1f s",
                 st->mode == GDN_TUNE_MODE_LAZY ? "lazy" : "eager", st->budget_s);
}

struct gdn_tune_db *gdn__tune_ctx_db(gdn_context *ctx)
{
    if (!ctx->tune_db_loaded) {
        char *path          = gdn__tune_db_default_path(ctx);
        ctx->tune_db_loaded = true;
        if (path) {
            gdn__tune_db_load(ctx, path, &ctx->tune_db);
            gdn__free(path);
        }
        if (!ctx->tune_db)
            ctx->tune_db = gdn__tune_db_new();
        if (ctx->tune_db)
            read_settings(ctx, gdn__tune_db_settings(ctx->tune_db));
    }
    return ctx->tune_db;
}

struct gdn_tune_settings *gdn__tune_settings(gdn_context *ctx)
{
    struct gdn_tune_db *db = gdn__tune_ctx_db(ctx);
    return db ? gdn__tune_db_settings(db) : NULL;
}

/* Remember (stage, key) -> value in the context's memo; returns true when
 * it was already there with the same value. */
static bool memo_seen(struct gdn_tune_settings *st, const char *stage, const char *key,
                      const char *value)
{
    const char *old;
    if (!st->memo && !(st->memo = gdn__tune_db_new()))
        return false;
    old = gdn__tune_db_get(st->memo, stage, key);
    if (old && !strcmp(old, value))
        return true;
    gdn__tune_db_set(st->memo, stage, key, value, NULL);
    return false;
}

bool gdn__tune_wanted(gdn_context *ctx, const char *op, const char *bucket,
                      const struct gdn_tune_space *const *spaces, size_t n_spaces,
                      double *budget_s)
{
    struct gdn_tune_settings *st = gdn__tune_settings(ctx);
    char                      key[96];
    size_t                    i;
    bool                      missing = false;

    if (!st || st->mode == GDN_TUNE_MODE_DB || st->busy || st->random || ctx->prof.on)
        return false;
    for (i = 0; i < n_spaces && !missing; i++)
        missing = gdn__tune_db_get(ctx->tune_db, spaces[i]->stage, bucket) == NULL;
    if (!missing)
        return false;
    snprintf(key, sizeof(key), "tuned:%s", bucket);
    if (memo_seen(st, op, key, "1"))
        return false; /* attempted already by this context */
    if (!ctx->tune_dir) {
        gdn__log(ctx, GDN_LOG_LEVEL_WARN, "%s %s: no cache folder for the tuning database; "
                 "not tuning (GDN_TUNE_MODE)", op, bucket);
        return false;
    }
    if (st->spent_s >= st->budget_s) {
        gdn__log(ctx, st->budget_warned ? GDN_LOG_LEVEL_INFO : GDN_LOG_LEVEL_WARN,
                 "%s %s: this context's tuning budget (%.1f s) is spent; using built-in or "
                 "generic values", op, bucket, st->budget_s);
        st->budget_warned = true;
        return false;
    }
    *budget_s = st->budget_s - st->spent_s;
    gdn__log(ctx, GDN_LOG_LEVEL_INFO, "%s %s: no user database rows; tuning now (%.1f s left of "
             "the %s budget)", op, bucket, *budget_s,
             st->mode == GDN_TUNE_MODE_LAZY ? "lazy" : "eager");
    return true;
}

void gdn__tune_begin(gdn_context *ctx)
{
    struct gdn_tune_settings *st = gdn__tune_settings(ctx);
    if (st)
        st->busy = true;
}

void gdn__tune_end(gdn_context *ctx, double seconds)
{
    struct gdn_tune_settings *st = gdn__tune_settings(ctx);
    if (st) {
        st->busy = false;
        st->spent_s += seconds;
    }
}

/* ------------------------------------------------------- random plans */

static uint64_t mix64(uint64_t x) /* one splitmix64 step from state x */
{
    return gdn__splitmix64(&x);
}

static uint64_t pick_hash(uint32_t seed, const char *stage, const char *bucket)
{
    uint64_t    h = 0xcbf29ce484222325ULL; /* FNV-1a of "stage\0bucket" */
    const char *p;
    for (p = stage; *p; p++)
        h = (h ^ (unsigned char)*p) * 0x100000001b3ULL;
    h *= 0x100000001b3ULL;
    for (p = bucket; *p; p++)
        h = (h ^ (unsigned char)*p) * 0x100000001b3ULL;
    return mix64(h ^ mix64(seed));
}

static bool odometer(const struct gdn_tune_space *sp, int32_t *pos, int32_t *vals)
{
    int32_t i;
    for (i = 0; i < sp->n_params; i++) {
        if (++pos[i] < sp->params[i].n_values) {
            vals[i] = sp->params[i].values[pos[i]];
            return true;
        }
        pos[i]  = 0;
        vals[i] = sp->params[i].values[0];
    }
    return false;
}

#define RANDOM_ENUM_MAX ((size_t)1 << 20) /* larger spaces: rejection sampling */

bool gdn__tune_random_pick(const gdn_context *ctx, const struct gdn_tune_space *space,
                           const char *bucket, const void *problem, uint32_t seed,
                           int32_t *vals, size_t *index, size_t *count)
{
    int32_t  pos[GDN_TUNE_MAX_PARAMS] = {0}, cur[GDN_TUNE_MAX_PARAMS];
    uint64_t h = pick_hash(seed, space->stage, bucket);
    size_t   total = 1, n = 0, target, k;
    int32_t  i;

    if (index)
        *index = 0;
    if (count)
        *count = 0;
    for (i = 0; i < space->n_params; i++) {
        cur[i] = space->params[i].values[0];
        if (total <= RANDOM_ENUM_MAX)
            total *= (size_t)space->params[i].n_values;
    }
    if (total > RANDOM_ENUM_MAX) {
        int tries;
        for (tries = 0; tries < 100000; tries++) {
            for (i = 0; i < space->n_params; i++) {
                h      = mix64(h);
                cur[i] = space->params[i].values[h % (uint64_t)space->params[i].n_values];
            }
            if (!space->valid || space->valid(cur, problem, &ctx->dev)) {
                memcpy(vals, cur, (size_t)space->n_params * sizeof(*vals));
                return true;
            }
        }
        return false;
    }
    do
        n += !space->valid || space->valid(cur, problem, &ctx->dev);
    while (odometer(space, pos, cur));
    if (n == 0)
        return false;
    target = (size_t)(h % (uint64_t)n);
    k      = 0;
    do {
        if (space->valid && !space->valid(cur, problem, &ctx->dev))
            continue;
        if (k++ == target)
            break;
    } while (odometer(space, pos, cur));
    memcpy(vals, cur, (size_t)space->n_params * sizeof(*vals));
    if (index)
        *index = target;
    if (count)
        *count = n;
    return true;
}

/* ------------------------------------------------------------- lookup */

void gdn__tune_lookup(gdn_context *ctx, const struct gdn_tune_space *space, const char *bucket,
                      const void *problem, int32_t *vals, enum gdn_tune_source *src)
{
    char                      text[256], arch[32];
    const char               *levels[3];
    struct gdn_tune_settings *set;
    size_t                    i;
    int                       lv;

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
    set = gdn__tune_settings(ctx); /* loads the user DB at the first lookup */
    /* GDN_TUNE_RANDOM: a random legal candidate instead of levels 2-5. */
    if (set && set->random) {
        int32_t tmp[GDN_TUNE_MAX_PARAMS];
        size_t  idx, cnt;
        if (gdn__tune_random_pick(ctx, space, bucket, problem, set->random_seed, tmp, &idx,
                                  &cnt)) {
            char key[96];
            memcpy(vals, tmp, (size_t)space->n_params * sizeof(*vals));
            if (src)
                *src = GDN_TUNE_SRC_RANDOM;
            gdn__tune_format_values(space, vals, text, sizeof(text));
            snprintf(key, sizeof(key), "random:%s", bucket);
            if (!memo_seen(set, space->stage, key, text))
                gdn__log(ctx, GDN_LOG_LEVEL_WARN,
                         "GDN_TUNE_RANDOM=%u: %s %s runs %s (candidate %zu of %zu legal)",
                         (unsigned)set->random_seed, space->stage, bucket, text, idx + 1, cnt);
            return;
        }
        gdn__log(ctx, GDN_LOG_LEVEL_INFO, "GDN_TUNE_RANDOM: %s %s has no legal candidate; using "
                 "the normal lookup", space->stage, bucket);
    }
    /* 2. user DB */
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
