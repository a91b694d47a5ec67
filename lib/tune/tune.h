/*
 * tune.h - tunable parameters of kernel stages and where their values come
 * from: the one place tuning values live.
 *
 * A kernel stage declares a gdn_tune_space: its parameters (each a -D macro
 * name, a generic default that is correct on any OpenCL 1.2 device, and the
 * legal values) and a validity check against problem and device. A plan
 * asks gdn__tune_lookup() for values; the lookup order is
 *   1. override     GDN_TUNE env ("stage:KEY=v,KEY=v;stage2:...", read at
 *                   context creation into ctx->tune_override); illegal
 *                   values are reported and ignored (the rest of the
 *                   lookup applies)
 *   (random)        GDN_TUNE_RANDOM=<seed>: a random legal candidate
 *                   instead of levels 2-5 (testing; see below)
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
 *
 * Per-context settings, read from the environment at a context's first
 * tuning lookup (struct gdn_tune_settings):
 *   GDN_TUNE_RANDOM=<seed>  testing: after the override, every tuned stage
 *                   uses one legal candidate of its space drawn at random
 *                   (uniformly among the assignments that pass `valid` for
 *                   this problem and device), deterministic in (seed,
 *                   stage, bucket); the user DB, built-in rows and generic
 *                   defaults are skipped. Each distinct draw is logged once
 *                   per context (WARN). Used to run the op suites over
 *                   random legal plans.
 *   GDN_TUNE_MODE=db|lazy|eager  what a context does about (op, bucket)
 *                   pairs without user DB rows: db (default) only looks
 *                   up; lazy runs the op's tuner on first use of a bucket;
 *                   eager also tunes the op's representative buckets at
 *                   its first use. Both spend at most GDN_TUNE_BUDGET
 *                   seconds per context (default 120 lazy, 300 eager) and
 *                   write the rows to the user DB.
 *
 * The tuners (gdn_tune_gated_delta, gdn_tune_op, the lazy and eager modes)
 * share one search (search.h): per stage, the generic default first, then
 * every other legal candidate once, in a pseudo-random order fixed by
 * (stage, bucket), so that a search cut short by its budget samples the
 * whole space evenly.
 */
#ifndef GDN_TUNE_H
#define GDN_TUNE_H

#include "runtime.h"

#define GDN_TUNE_MAX_PARAMS 12
#define GDN_TUNE_MAX_VALUES 16

struct gdn_tune_param {
    const char *name;                       /* -D macro name, e.g. "BV", or a
                                               host-side launch parameter
                                               (e.g. "CHUNKS" of the scans) */
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
    GDN_TUNE_SRC_RANDOM,
};
const char *gdn__tune_source_name(enum gdn_tune_source src);

/* One row of a tuning table (built-in or user DB). */
struct gdn_tune_row {
    const char *match;  /* device name, "sm_90", "gfx1100", vendor "nvidia"/"amd"/"intel", or "*" */
    const char *stage;
    const char *bucket; /* "*" matches every bucket */
    const char *values; /* "KEY=v KEY=v" */
};

/* Context tuning modes (GDN_TUNE_MODE). */
/* The modes are the public gdn_tune_mode (gdn.h): DB, LAZY, EAGER. */

/* A context's tuning settings and bookkeeping; lives beside its user DB
 * rows (ctx->tune_db), read from the environment at the first lookup. */
struct gdn_tune_settings {
    bool               random;      /* GDN_TUNE_RANDOM set */
    uint32_t           random_seed;
    enum gdn_tune_mode mode;        /* params.tune_mode, else GDN_TUNE_MODE */
    double             budget_s;    /* GDN_TUNE_BUDGET: seconds of lazy/eager tuning */
    double             spent_s;     /* spent so far by this context */
    bool               busy;        /* a tuner runs on this context: no nested tuning */
    bool               budget_warned;
    struct gdn_tune_db *memo;       /* (stage, bucket) seen: random draws logged,
                                       lazy (op, bucket) attempted */
};

/* The context's user DB (loaded from its file at the first call, empty when
 * there is none) with its settings. NULL only when out of host memory. */
struct gdn_tune_db       *gdn__tune_ctx_db(gdn_context *ctx);
struct gdn_tune_settings *gdn__tune_settings(gdn_context *ctx);

/* Lazy / eager tuning, asked by an op before it runs (bucket as its stages
 * key their rows). True when the context's mode is lazy or eager, no tuner
 * is running on it, GDN_TUNE_RANDOM is off, profiling is off, (op, bucket)
 * was not attempted yet by this context, some of `spaces` has no user DB
 * row for bucket, and budget is left: *budget_s receives what is left, and
 * (op, bucket) is marked attempted. The op then runs its tuner with
 * gdn__tune_begin() / gdn__tune_end() around it. */
bool gdn__tune_wanted(gdn_context *ctx, const char *op, const char *bucket,
                      const struct gdn_tune_space *const *spaces, size_t n_spaces,
                      double *budget_s);
/* Mark a tuner as running (no nested lazy tuning) / done, charging the
 * seconds it took to the context's budget. */
void gdn__tune_begin(gdn_context *ctx);
void gdn__tune_end(gdn_context *ctx, double seconds);

/* The random legal candidate of GDN_TUNE_RANDOM=seed for (space, bucket,
 * problem) on ctx's device (exposed for tests). False when no assignment is
 * valid. *index / *count (may be NULL) receive its rank among the valid
 * assignments (odometer order, first parameter fastest) and their number. */
bool gdn__tune_random_pick(const gdn_context *ctx, const struct gdn_tune_space *space,
                           const char *bucket, const void *problem, uint32_t seed,
                           int32_t *vals, size_t *index, size_t *count);

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
/* The settings stored beside a database's rows (never NULL for a DB). */
struct gdn_tune_settings *gdn__tune_db_settings(struct gdn_tune_db *db);
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
