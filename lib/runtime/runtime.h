/*
 * runtime.h - OpenCL plumbing shared by every op: the context, devices,
 * tensors, program building and caching, kernel launch. No model knowledge.
 *
 * How an op uses it (see lib/ops/gated_delta/ for a full example):
 *   1. a plan struct per kernel stage produces its -D options with
 *      gdn__defines_format() and its NDRange;
 *   2. gdn__kernel_get(ctx, "op/stage.cl", defines, "entry", &k) returns a
 *      cached cl_kernel, building (or loading from the caches) as needed;
 *   3. set arguments with gdn__arg_* and enqueue with gdn__launch().
 * Errors are recorded with gdn__fail() / gdn__fail_cl(), which fill the
 * context's last-error message and return the status to propagate.
 */
#ifndef GDN_RUNTIME_H
#define GDN_RUNTIME_H

#ifndef CL_TARGET_OPENCL_VERSION
#    define CL_TARGET_OPENCL_VERSION 120
#endif
#include <CL/cl.h>

#include "core.h"
#include "gdn.h"
#include "gdn_cl.h"

/* ---------------------------------------------------------------- devices */

/* Everything the library decides from, read once per device. */
struct gdn_device {
    cl_platform_id  platform;
    cl_device_id    id;
    gdn_device_info info;
    char            platform_version[128];
    uint32_t        mem_base_align_bytes; /* CL_DEVICE_MEM_BASE_ADDR_ALIGN / 8 */
    bool            is_pocl;              /* PoCL: skip our binary cache       */
    bool            is_nvidia;
};

/* Enumerate every device of every platform (cached for the process).
 * *devs is owned by the runtime; do not free. */
gdn_status gdn__devices(const struct gdn_device **devs, int32_t *count);
/* Resolve a GDN_DEVICE-style selector against the device list. */
gdn_status gdn__device_select(const char *selector, int32_t *index);
/* Fill a gdn_device from a cl_device_id (used for interop contexts). */
gdn_status gdn__device_query(cl_platform_id platform, cl_device_id id, struct gdn_device *dev);

/* ---------------------------------------------------------------- context */

struct gdn_program_entry; /* program.c */
struct gdn_tune_db;       /* lib/tune/db_file.c */

/* One profiled launch (launch.c). */
struct gdn_prof_rec {
    char    *name;
    cl_event ev;
};

#define GDN_INT_TABLES    8       /* gdn__int_table: tables kept per context */
#define GDN_INT_TABLE_MAX 65536   /* gdn__int_table: values of the largest kept */

struct gdn_context {
    struct gdn_device dev;
    cl_context        cl_ctx;
    cl_command_queue  queue;
    bool              profiling; /* queue has CL_QUEUE_PROFILING_ENABLE */
    cl_command_queue  side_queue; /* second in-order queue for gdn__fork_*, or NULL */
    bool              on_side;    /* gdn__launch enqueues on side_queue (inside a fork) */

    /* errors and logging */
    struct gdn_strbuf last_error;
    cl_int            last_cl_error;
    gdn_log_fn        log_fn;
    void             *log_user;
    gdn_log_level     log_level;

    /* kernel sources, build options, caches */
    char                     *kernel_dir;    /* NULL: embedded */
    char                     *build_options; /* user's extra options, may be NULL */
    char                     *cache_dir;     /* NULL: disk cache off */
    char                     *tune_dir;      /* <cache base>/tune, or NULL */
    char                     *tune_override; /* GDN_TUNE, or NULL */
    int32_t                   tune_mode_param;   /* params.tune_mode (-1: environment) */
    double                    tune_budget_param; /* params.tune_budget_s (0: environment) */
    struct gdn_tune_db       *tune_db;       /* user DB, loaded at first lookup */
    bool                      tune_db_loaded;
    struct gdn_program_entry *programs;      /* in-memory cache (linked list) */
    struct {
        int builds_from_source; /* clBuildProgram from source     */
        int disk_hits;          /* built from a cached binary     */
        int memory_hits;        /* reused within this context     */
    } stats;

    /* free scratch buffers kept for reuse (gdn__scratch_*) */
    struct {
        cl_mem mem;
        size_t bytes;
    } scratch[32];
    int32_t n_scratch;

    /* int32 0, 1, 2, ... on the device (gdn__iota), grown on demand */
    cl_mem  iota;
    int32_t iota_n;

    /* device copies of small host int tables (gdn__int_table), the most
     * recent first */
    struct {
        int32_t *host; /* the table's values (the key) */
        size_t   n;
        cl_mem   mem;
    } int_tables[GDN_INT_TABLES];

    /* per-kernel profiling (bench and tuner only; off by default) */
    struct {
        bool                 on;
        struct gdn_prof_rec *recs;
        size_t               n, cap;
    } prof;

    /* lifetime: children (tensors, ...) hold references */
    int  refs;
    bool destroyed;
};

/* Record an error on ctx (printf-style message) and return status. Also logs
 * it at DEBUG level. ctx may be NULL (then only logged to stderr at WARN). */
gdn_status gdn__fail(gdn_context *ctx, gdn_status status, const char *fmt, ...) GDN_PRINTF(3, 4);
/* Map an OpenCL error to a status, record "<what>: <CL_NAME> (<code>)". */
gdn_status gdn__fail_cl(gdn_context *ctx, cl_int err, const char *what);
gdn_status gdn__status_from_cl(cl_int err);
const char *gdn__cl_error_name(cl_int err);
void gdn__clear_error(gdn_context *ctx);

/* Logging through the context's callback. */
void gdn__log(const gdn_context *ctx, gdn_log_level level, const char *fmt, ...) GDN_PRINTF(3, 4);

/* Child reference counting: a context is freed when destroyed and its last
 * child is gone. */
void gdn__context_ref(gdn_context *ctx);
void gdn__context_unref(gdn_context *ctx);

/* ---------------------------------------------------------------- tensors */

struct gdn_tensor {
    gdn_context *ctx;
    cl_mem       mem; /* byte 0 = first element */
    gdn_dtype    dtype;
    int32_t      ndim;
    int64_t      shape[GDN_MAX_DIMS];
    int64_t      numel;
    size_t       nbytes;
    bool         wrapped;
};

/* Check a tensor argument of an op: non-NULL, same context, dtype and exact
 * shape (ndim entries). `name` goes into the message. */
gdn_status gdn__check_tensor(gdn_context *ctx, const gdn_tensor *t, const char *name,
                             gdn_dtype dtype, int32_t ndim, const int64_t *shape);

/* The sequences of an op call as N + 1 token offsets (heap copy in *out,
 * free with gdn__free; count in *n_out). With seq_offsets (n_seqs + 1 host
 * ints): checks 1 <= n_seqs <= 2^24, offsets[0] = 0, offsets[n_seqs] = T and
 * no decrease. Without: B sequences of Tb tokens (1 <= B <= 2^24).
 * Failures are INVALID_ARGUMENT with a message that starts with fn. */
gdn_status gdn__seq_offsets(gdn_context *ctx, const char *fn, const int32_t *seq_offsets,
                            int32_t n_seqs, int64_t B, int64_t Tb, int32_t **out,
                            int32_t *n_out);

/* Internal scratch buffers (device memory not visible to the user). */
gdn_status gdn__buffer_create(gdn_context *ctx, size_t nbytes, cl_mem *out);
void       gdn__buffer_release(cl_mem mem);

/* Scratch buffers for the intermediates of one op call. acquire() reuses a
 * free buffer of at least `bytes` (and at most 4x that) or creates one;
 * release() hands it back for reuse (or frees it when the pool is full).
 * Reuse is safe on the in-order queue: later commands that write a reused
 * buffer run after the earlier ones that read it. trim() frees the pool. */
gdn_status gdn__scratch_acquire(gdn_context *ctx, size_t bytes, cl_mem *out);
void       gdn__scratch_release(gdn_context *ctx, cl_mem mem);
void       gdn__scratch_trim(gdn_context *ctx);

/* A device buffer holding the int32 sequence 0, 1, ..., n - 1 (at least n
 * entries), owned by ctx; used as the offsets of n one-token sequences so
 * decode steps allocate nothing. */
gdn_status gdn__iota(gdn_context *ctx, int32_t n, cl_mem *out);
/* A read-only device buffer holding src[0 .. n-1], for the caller to
 * release: the buffer uploaded for the same values earlier, if the context
 * still keeps it (the last GDN_INT_TABLES tables of at most
 * GDN_INT_TABLE_MAX values), else a new upload. A forward pass uploads its
 * chunk tables this way, so repeated calls on one batch shape upload
 * nothing. */
gdn_status gdn__int_table(gdn_context *ctx, const int32_t *src, size_t n, cl_mem *out);
/* Release the context's cached tables. */
void gdn__int_tables_clear(gdn_context *ctx);

/* ---------------------------------------------------------------- programs */

/* One -D option; plans produce arrays of these. */
struct gdn_define {
    const char *name;
    int64_t     value;
};
/* "-DA=1 -DB=2 ..." sorted by name (deterministic), into buf (cap bytes).
 * Returns false if it did not fit. */
bool gdn__defines_format(const struct gdn_define *defs, size_t n, char *buf, size_t cap);

/* Source text of a kernel file (path relative to cl/, e.g. "core/fill.cl"),
 * with includes expanded and #line markers. From ctx->kernel_dir when set,
 * else from the embedded table. *text is heap-allocated; free with gdn__free. */
gdn_status gdn__source_load(gdn_context *ctx, const char *path, char **text, size_t *size);

/* Get a built program for (path, options), from the in-memory cache, the
 * on-disk cache, or by building it. The program stays owned by ctx. */
gdn_status gdn__program_get(gdn_context *ctx, const char *path, const char *options,
                            cl_program *out);
/* Register caps. A program whose options hold -DGDN_MAXREG=N (16 <= N <=
 * 255; plans add it from their MAXREG tuning value) is, where the device's
 * program binaries are PTX text (NVIDIA's driver, which ignores
 * -cl-nv-maxrregcount), rebuilt from its PTX with ".maxnreg N" on every
 * kernel entry: fewer registers per work-item, more work-groups per compute
 * unit. Elsewhere GDN_MAXREG is a define no kernel reads, so the same source
 * computes the same function everywhere. */
/* The value of -DGDN_MAXREG=N in options, or 0 when absent or out of range. */
int gdn__maxreg_option(const char *options);
/* ptx (size bytes, a trailing NUL allowed) with "\n.maxnreg maxreg" added
 * before the body of every .entry: a new heap buffer of *out_size bytes
 * (with the trailing NUL when ptx had one) into *out. false when ptx does not
 * look like PTX text (.version, .target and at least one .entry), already
 * caps an entry, or memory ran out. */
bool gdn__ptx_cap_registers(const char *ptx, size_t size, int maxreg, char **out,
                            size_t *out_size);
/* Get a kernel (cached per program and name; owned by ctx). */
gdn_status gdn__kernel_get(gdn_context *ctx, const char *path, const char *options,
                           const char *name, cl_kernel *out);
/* A build log with "<kernel>:LINE" locations (compilers that ignore #line,
 * such as NVIDIA's) rewritten to "file:line" through the #line markers of
 * src, the expanded source. New heap string, or NULL when out of memory. */
char *gdn__map_log_locations(const char *log, const char *src);
/* Can kernel k run work-groups of wg work-items? Yes when the kernel's
 * CL_KERNEL_WORK_GROUP_SIZE allows it, or when the kernel was compiled with
 * reqd_work_group_size equal to wg and the device allows wg (Mesa's rusticl
 * 22.x reports its SIMD width, 32, as the kernel limit even then, and runs
 * such kernels correctly). Else GDN_STATUS_UNSUPPORTED naming `what`. */
gdn_status gdn__kernel_check_wg(gdn_context *ctx, cl_kernel k, size_t wg, const char *what);
/* Free every cached program and kernel of ctx. */
void gdn__program_cache_clear(gdn_context *ctx);

/* ---------------------------------------------------------------- launch */

/* Kernel arguments: record the failed index in the message. */
gdn_status gdn__arg_mem(gdn_context *ctx, cl_kernel k, cl_uint i, cl_mem m);
gdn_status gdn__arg_int(gdn_context *ctx, cl_kernel k, cl_uint i, int32_t v);
gdn_status gdn__arg_float(gdn_context *ctx, cl_kernel k, cl_uint i, float v);
gdn_status gdn__arg_local(gdn_context *ctx, cl_kernel k, cl_uint i, size_t nbytes);

/* Enqueue an NDRange. global is rounded up to a multiple of local (kernels
 * bound-check). `event` may be NULL. A zero-sized global is a no-op. */
gdn_status gdn__launch(gdn_context *ctx, cl_kernel k, cl_uint dims, const size_t *global,
                       const size_t *local, cl_event *event);

/* Profiling: while on, every gdn__launch records an event. collect() waits,
 * sums the device time per kernel name into *out (owned by the caller, free
 * with gdn__free) and forgets the records. */
struct gdn_prof_sum {
    char    name[64];
    double  ms;    /* total device time */
    int32_t count; /* launches */
};
void       gdn__prof_enable(gdn_context *ctx, bool on);
gdn_status gdn__prof_collect(gdn_context *ctx, struct gdn_prof_sum **out, size_t *n);

/*
 * Fork and join: two branches of an op that do not depend on each other run
 * concurrently, one on the main queue and one on a second in-order queue of
 * the same device (created at the first fork, with the main queue's
 * profiling property). Two scans with fewer groups than the device has
 * room for fill it together: NVIDIA's OpenCL runs kernels of two queues
 * concurrently, never those of one queue (in-order or not).
 *
 *   struct gdn_fork f;
 *   st = gdn__fork_begin(ctx, &f);   the side queue waits for every command
 *                                    enqueued on the main queue so far, and
 *                                    gdn__launch enqueues there from now on
 *   ... launches of the side branch ...
 *   st = gdn__fork_switch(ctx, &f);  gdn__launch is back on the main queue
 *   ... launches of the main branch (concurrent with the side branch) ...
 *   st = gdn__fork_join(ctx, &f);    the main queue waits for the side branch
 *
 * Only gdn__launch follows the fork (so gdn__fill_f32, which launches a
 * kernel, does too); other enqueues (copies, reads, writes) stay on the main
 * queue, so the side branch holds kernel launches only. Call join on every
 * path once begin has been called (also after an error: it then waits for
 * the side queue on the host), before scratch buffers the branch uses are
 * released; after it the main queue is ordered after both branches, as if
 * everything had run on it, so scratch reuse and gdn_context_finish keep
 * their in-order meaning. A struct gdn_fork that begin never saw must be
 * zeroed (GDN_FORK_INIT) for join to be a no-op.
 */
struct gdn_fork {
    bool     begun;
    cl_event done; /* marker after the side branch */
};
#define GDN_FORK_INIT {false, NULL}
gdn_status gdn__fork_begin(gdn_context *ctx, struct gdn_fork *f);
gdn_status gdn__fork_switch(gdn_context *ctx, struct gdn_fork *f);
gdn_status gdn__fork_join(gdn_context *ctx, struct gdn_fork *f);

/* Enqueue the fill kernel: n floats of mem = value. */
gdn_status gdn__fill_f32(gdn_context *ctx, cl_mem mem, size_t n, float value);

#endif /* GDN_RUNTIME_H */
