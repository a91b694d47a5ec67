/*
 * tune.h - tunable parameters of kernel stages and where their values come
 * from: the one place tuning values live.
 *
 * A kernel stage declares a gdn_tune_space: its parameters (each a -D macro
 * name, a generic default that is correct on any OpenCL 1.2 device, and the
 * legal values) and a validity check against problem and device. A plan
 * asks gdn__tune_lookup() for values; the lookup order is
 *   1. override     GDN_TUNE env ("stage:KEY=v,KEY=v;stage2:...") or
 *                   gdn__tune_override(); illegal values are reported and
 *                   ignored (the rest of the lookup applies)
 *   2. user DB      <cache>/tune/<device>.txt, this exact device + driver
 *   3. built-in     rows for this device name
 *   4. built-in     rows for its architecture (NVIDIA compute capability
 *                   "sm_90", AMD gfx name), then for its vendor
 *   5. generic      the space's defaults
 * Rows are keyed by (stage, bucket); a bucket is a short string chosen by the
 * stage, e.g. "K128.V128" or "K128.V128.L" (size class). Values found at a
 * level must all be legal and pass the space's check, else that level is
 * skipped (logged) and the next one is tried. The source of the values is
 * reported for `gdn tune --show` and the bench result files.
 */
#ifndef GDN_TUNE_H
#define GDN_TUNE_H

#include "runtime.h"

#define GDN_TUNE_MAX_PARAMS 12
#define GDN_TUNE_MAX_VALUES 16

struct gdn_tune_param {
    const char *name;                       /* -D macro name, e.g. "BV" */
    int32_t     def;                        /* generic default          */
    int32_t     n_values;                   /* legal values             */
    int32_t     values[GDN_TUNE_MAX_VALUES];
};

struct gdn_tune_space {
    const char                  *stage;     /* "gated_delta/state_fwd"  */
    int32_t                      n_params;
    const struct gdn_tune_param *params;
    /* Is this assignment usable for the problem on the device? `problem` is
     * the stage's own shape struct. NULL: every legal combination is. */
    bool (*valid)(const int32_t *vals, const void *problem, const struct gdn_device *dev);
    /* Generic defaults that depend on the problem and the device's limits
     * (e.g. the largest tile that fits local memory). NULL: the params'
     * static `def` values. Must give values that pass `valid` on any
     * OpenCL 1.2 device the op supports. */
    void (*defaults)(int32_t *vals, const void *problem, const struct gdn_device *dev);
};

enum gdn_tune_source {
    GDN_TUNE_SRC_GENERIC = 0,
    GDN_TUNE_SRC_VENDOR,
    GDN_TUNE_SRC_ARCH,
    GDN_TUNE_SRC_DEVICE,
    GDN_TUNE_SRC_USER_DB,
    GDN_TUNE_SRC_OVERRIDE,
};
const char *gdn__tune_source_name(enum gdn_tune_source src);

/* One row of a tuning table (built-in or user DB). */
struct gdn_tune_row {
    const char *match;  /* device name, "sm_90", "gfx1100", vendor "nvidia"/"amd"/"intel", or "*" */
    const char *stage;
    const char *bucket; /* "*" matches every bucket */
    const char *values; /* "KEY=v KEY=v" */
};

/* Values for (space, bucket): vals[i] for space->params[i]. Never fails: the
 * generic defaults are the last resort. *src may be NULL. */
void gdn__tune_lookup(gdn_context *ctx, const struct gdn_tune_space *space, const char *bucket,
                      const void *problem, int32_t *vals, enum gdn_tune_source *src);

/* Parse "KEY=v KEY=v" (also ',' separated) into vals for space; unknown keys
 * or illegal values -> false with a message in err. Keys not mentioned keep
 * their current vals. */
bool gdn__tune_parse_values(const struct gdn_tune_space *space, const char *text, int32_t *vals,
                            char *err, size_t errcap);
/* Format vals as "KEY=v KEY=v" (declaration order). */
void gdn__tune_format_values(const struct gdn_tune_space *space, const int32_t *vals, char *buf,
                             size_t cap);
/* Append the -D options of vals (sorted, complete) to buf. */
bool gdn__tune_defines(const struct gdn_tune_space *space, const int32_t *vals, char *buf,
                       size_t cap);

/* Device identity strings used for matching rows. */
void gdn__tune_arch(const struct gdn_device *dev, char *buf, size_t cap);   /* "sm_90", ... */
const char *gdn__tune_vendor(const struct gdn_device *dev);                 /* "nvidia", ... */

/* ---- the user database (db_file.c) ---- */
struct gdn_tune_db;
/* Load <dir>/tune/<slug>.txt for ctx's device. A missing file is an empty DB;
 * a malformed or foreign-version file is reported (WARN) and ignored. */
gdn_status gdn__tune_db_load(gdn_context *ctx, const char *path, struct gdn_tune_db **out);
/* An empty database (NULL when out of memory). */
struct gdn_tune_db *gdn__tune_db_new(void);
void       gdn__tune_db_free(struct gdn_tune_db *db);
/* Set (stage, bucket) -> values; replaces an existing row. */
gdn_status gdn__tune_db_set(struct gdn_tune_db *db, const char *stage, const char *bucket,
                            const char *values, const char *comment);
const char *gdn__tune_db_get(const struct gdn_tune_db *db, const char *stage, const char *bucket);
/* Write atomically (temp file + rename). */
gdn_status gdn__tune_db_save(gdn_context *ctx, const struct gdn_tune_db *db, const char *path);
/* The default path of ctx's device DB (heap string, or NULL when there is no
 * cache folder). */
char *gdn__tune_db_default_path(const gdn_context *ctx);

/* Built-in rows (db_builtin.c), generated from checked-in tuner results. */
extern const struct gdn_tune_row gdn__tune_builtin[];
extern const size_t              gdn__tune_builtin_count;

#endif /* GDN_TUNE_H */
