/*
 * mamba2.h - internal interface of the Mamba2 SSD mixer core.
 *
 * Module layout (host side of cl/mamba2/):
 *   api.c      public entry points: argument checks, index tables, tapes
 *   plan.c     one plan per kernel stage (-D options, NDRange, device fit)
 *   ssd_fwd.c  chunked forward: cumsum -> bmm -> chunk_state ->
 *              state_passing -> chunk_scan (mamba_ssm ssd_combined.py)
 *   ssd_bwd.c  chunked backward: recompute CB and chunk states, dstates,
 *              reverse state passing, dcb, dx, dB/dC, dt, reductions
 *   step.c     decode step
 * Math: docs/ALGORITHM.md §4.4; the per-stage formulas are in the comment
 * block of each kernel file.
 *
 * Conventions shared by every stage:
 *   - All device data is F32, token-major: x[t][h][p], B[t][g][s],
 *     states[c][h][p][s] (DS fastest, mamba_ssm's layout).
 *   - Chunks of CH tokens (64 default, 128, 256) never straddle sequences;
 *     the last chunk of a sequence may be partial. Every chunk kernel works
 *     on 64-row tiles; a chunk of CH rows has CH / 64 row tiles.
 *   - cs holds the chunk-local inclusive cumulative sum of dt A in the log2
 *     domain (each token's term floored at -1024, which exp2 already maps
 *     to 0, so cs stays finite), csl the cs of each chunk's last row; kernels
 *     use exp2 and every exponent they take is <= 0. Masks are applied with
 *     select() before exp2.
 *   - Per-token partial sums of the backward live in one scratch buffer
 *     part[slot][T][H]; slot ranges per kind are set in ssd_bwd.c and
 *     summed in fixed order (deterministic, no atomics).
 *   - Offsets into large buffers are computed in 64-bit arithmetic.
 */
#ifndef GDN_OPS_MAMBA2_H
#define GDN_OPS_MAMBA2_H

#include "runtime.h"

#define GDN_M2_CHUNK_DEFAULT 64
#define GDN_M2_TILE          64 /* row tile of the chunk kernels */
#define GDN_M2_WG            256 /* work-items of the tile kernels */

/* Problem shape of one call. */
struct gdn_m2_shape {
    int64_t T;        /* total tokens over all sequences */
    int32_t N;        /* sequences */
    int32_t H, G;     /* heads, B/C groups (H % G == 0) */
    int32_t P, DS;    /* head dim, state size */
    int32_t CH;       /* chunk size */
    int32_t NT;       /* chunks over all sequences */
    int32_t max_len;  /* longest sequence */
    float   dt_min;   /* lower clamp (0: none) */
    float   dt_max;   /* upper clamp (+inf: none) */
    bool    has_bias; /* dt_bias given */
    bool    has_D;    /* D given */
};

/* Index tables of one call. */
struct gdn_m2_index {
    int32_t *offsets;   /* host copy, N + 1 token offsets */
    cl_mem   chunk_off; /* [N + 1] int: first global chunk of each sequence */
    cl_mem   chunks;    /* [NT] int4: (seq, first token, length, chunk in seq) */
};

struct gdn_mamba2_tape {
    gdn_context        *ctx;
    struct gdn_m2_shape s;
    struct gdn_m2_index idx;
    /* borrowed inputs (NULL where not given) */
    const gdn_tensor *x, *dt, *A_log, *dt_bias, *B, *C, *D, *h0;
    /* owned, written by the forward */
    cl_mem dtv; /* [T, H] dt after softplus and clamp */
    cl_mem cs;  /* [T, H] chunk-local cumsum of dt A, log2 domain */
    cl_mem csl; /* [NT, H] cs of each chunk's last row (its total decay) */
};

/* ---- plan.c: one plan per kernel stage ---- */

/* Geometry every plan produces. */
struct gdn_m2_launch {
    cl_kernel k;
    size_t    global[3];
    size_t    local[3];
    cl_uint   dims;
};

/* Tile kernels (bmm, chunk_state, chunk_scan, dcb, dx, dbc): 256
 * work-items, 64-row tiles. bx is the column tile along P or DS (16, 32,
 * 64), by a second column tile (chunk_state's DS tile), bk the inner slice
 * (16 or 32). mode: chunk_state's MODE. */
struct gdn_m2_tile_plan {
    int32_t ch, bx, by, bk, mode;
};

/* Element-wise / per-head kernels (cumsum, state passing, dt, reductions). */
struct gdn_m2_vec_plan {
    int32_t wg;
};

/* Decode step: lanes along DS and rows of P per group. */
struct gdn_m2_step_plan {
    int32_t ln, rw;
};

/* The kernel stages. */
enum gdn_m2_stage {
    GDN_M2_CUMSUM,
    GDN_M2_BMM,
    GDN_M2_CHUNK_STATE,
    GDN_M2_PASS_FWD,
    GDN_M2_SCAN_FWD,
    GDN_M2_PASS_BWD,
    GDN_M2_DCB,
    GDN_M2_DX,
    GDN_M2_DBC,
    GDN_M2_DT_BWD,
    GDN_M2_GROUP_REDUCE,
    GDN_M2_PARAM_REDUCE,
    GDN_M2_STEP
};

/* Generic defaults (the spaces' defaults(); today's values). */
void gdn__m2_tile_plan_default(const struct gdn_m2_shape *s, enum gdn_m2_stage st,
                               struct gdn_m2_tile_plan *p);
void gdn__m2_vec_plan_default(const struct gdn_m2_shape *s, enum gdn_m2_stage st,
                              struct gdn_m2_vec_plan *p);
void gdn__m2_step_plan_default(const struct gdn_m2_shape *s, struct gdn_m2_step_plan *p);

/* Tuning (lib/tune): every stage has a space ("mamba2/<kernel file>",
 * bucket "P<P>.DS<DS>.CH<CH>"); the plans below go through
 * gdn__tune_lookup (GDN_TUNE override, GDN_TUNE_RANDOM, user DB, built-in
 * rows, generic defaults). chunk_state's MODE is set by the caller. */
struct gdn_tune_space;
const struct gdn_tune_space *gdn__m2_space(enum gdn_m2_stage st);
void gdn__m2_bucket(const struct gdn_m2_shape *s, char *buf, size_t cap);
void gdn__m2_tile_plan(gdn_context *ctx, const struct gdn_m2_shape *s, enum gdn_m2_stage st,
                       struct gdn_m2_tile_plan *p);
void gdn__m2_vec_plan(gdn_context *ctx, const struct gdn_m2_shape *s, enum gdn_m2_stage st,
                      struct gdn_m2_vec_plan *p);
void gdn__m2_step_plan(gdn_context *ctx, const struct gdn_m2_shape *s, struct gdn_m2_step_plan *p);
#define GDN_M2_N_STAGES ((int)GDN_M2_STEP + 1)

/* Tune every stage for (P, DS) on the context's device (tune.c): candidates
 * checked against the generic default's outputs (forward y, backward
 * gradients, decode y and state), timed with profiling events (median of 5
 * after a warm-up); the fastest per stage goes to the user tuning
 * database. A summary (one line per stage) is copied to report. */
gdn_status gdn__mamba2_tune(gdn_context *ctx, int32_t P, int32_t DS, double budget_s,
                            char *report, size_t report_cap);

/* Fit a plan to the device (shrinking tiles if local memory is short),
 * build its kernel and fill the NDRange for the shape. *L receives the
 * kernel and geometry; the plan may be changed (the tile counts the host
 * needs, e.g. ceil(P / bx), follow from the returned plan). */
gdn_status gdn__m2_tile_kernel(gdn_context *ctx, const struct gdn_m2_shape *s,
                               enum gdn_m2_stage st, struct gdn_m2_tile_plan *p,
                               struct gdn_m2_launch *L);
gdn_status gdn__m2_vec_kernel(gdn_context *ctx, const struct gdn_m2_shape *s,
                              enum gdn_m2_stage st, const struct gdn_m2_vec_plan *p,
                              struct gdn_m2_launch *L);
gdn_status gdn__m2_step_kernel(gdn_context *ctx, const struct gdn_m2_shape *s,
                               const struct gdn_m2_step_plan *p, struct gdn_m2_launch *L);

/* Kernel-argument cursor: each call sets the next argument; after the first
 * failure the rest are skipped and st keeps the error. */
struct gdn_m2_args {
    gdn_context *ctx;
    cl_kernel    k;
    cl_uint      i;
    gdn_status   st;
};
static inline void gdn__m2_am(struct gdn_m2_args *a, cl_mem m)
{
    if (!a->st)
        a->st = gdn__arg_mem(a->ctx, a->k, a->i++, m);
}
static inline void gdn__m2_ai(struct gdn_m2_args *a, int32_t v)
{
    if (!a->st)
        a->st = gdn__arg_int(a->ctx, a->k, a->i++, v);
}
static inline void gdn__m2_af(struct gdn_m2_args *a, float v)
{
    if (!a->st)
        a->st = gdn__arg_float(a->ctx, a->k, a->i++, v);
}

/* Enqueue a launch. */
gdn_status gdn__m2_enqueue(gdn_context *ctx, const struct gdn_m2_launch *L);

/* Scratch buffer of n floats (at least one). */
gdn_status gdn__m2_scratch(gdn_context *ctx, size_t n, cl_mem *out);

/* ---- ssd_fwd.c ---- */
/* The whole forward: dt/cs into tp->dtv/cs, y, ht (may be NULL). */
gdn_status gdn__m2_forward(struct gdn_mamba2_tape *tp, gdn_tensor *y, gdn_tensor *ht);
/* Stages shared with the backward's recomputation. */
gdn_status gdn__m2_bmm(const struct gdn_mamba2_tape *tp, cl_mem CB);
gdn_status gdn__m2_chunk_state(const struct gdn_mamba2_tape *tp, int32_t mode, cl_mem X,
                               cl_mem Y, cl_mem out);
gdn_status gdn__m2_pass_fwd(const struct gdn_mamba2_tape *tp, cl_mem states, cl_mem h0,
                            cl_mem ht);

/* ---- ssd_bwd.c ---- */
gdn_status gdn__m2_backward(const struct gdn_mamba2_tape *tp, const gdn_tensor *dy,
                            const gdn_tensor *dht, const gdn_mamba2_grads *grads);

/* ---- step.c ---- */
gdn_status gdn__m2_step(const struct gdn_mamba2_tape *tp, gdn_tensor *state, gdn_tensor *y);

/* ---- api.c ---- */
/* Validate params/args against y (and ht), fill the shape and index tables
 * and, when alloc_saved, allocate the tape's owned buffers. */
gdn_status gdn__m2_tape_init(gdn_context *ctx, const gdn_mamba2_params *params,
                             const gdn_mamba2_args *args, const gdn_tensor *y,
                             const gdn_tensor *ht, bool alloc_saved,
                             struct gdn_mamba2_tape **out);
void gdn__m2_tape_free(struct gdn_mamba2_tape *tp);

#endif /* GDN_OPS_MAMBA2_H */
