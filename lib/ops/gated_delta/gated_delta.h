/*
 * gated_delta.h - internal interface of the gated delta rule op.
 *
 * Module layout (host side of cl/gated_delta/):
 *   api.c        public entry points: argument checks, index tables, tapes
 *   chunk_fwd.c  chunked forward stages F0-F5 and their plans
 *   chunk_bwd.c  chunked backward stages B1-B9 and their plans
 *   recurrent.c  fused recurrent forward and the decode step
 *   tune.c       the autotuner of the stages with tuning spaces
 * Math and stage split: docs/ALGORITHM.md §1-§2 (fla's chunk.py).
 *
 * Conventions shared by every stage:
 *   - All device data is F32. Token-major layouts as in gdn.h: x[t][head][d].
 *   - Chunks have GDN_GD_CHUNK = 64 tokens and never straddle sequences; the
 *     last chunk of a sequence may be partial (length < 64).
 *   - Gates: G holds the chunk-local inclusive cumulative sum of the log
 *     gate, multiplied by 1/ln 2 (log2 domain), so kernels use exp2 and every
 *     exponent they take is <= 0. Masks are applied with select() before exp2.
 *   - Per-chunk kernels index a global chunk table; per-sequence kernels
 *     (state scans) index the sequence offsets. Offsets into large buffers
 *     are computed in 64-bit (ulong) arithmetic.
 */
#ifndef GDN_OPS_GATED_DELTA_H
#define GDN_OPS_GATED_DELTA_H

#include "runtime.h"

#define GDN_GD_CHUNK 64

/* Problem shape of one call. */
struct gdn_gd_shape {
    int64_t  T;       /* total tokens over all sequences */
    int32_t  N;       /* sequences */
    int32_t  H, HV;   /* q/k heads, value heads (HV % H == 0) */
    int32_t  K, V;    /* head dims (multiples of 16, <= 256) */
    int32_t  NT;      /* chunks over all sequences */
    int32_t  max_len; /* longest sequence */
    float    scale;   /* output scale */
    float    eps;     /* L2-norm eps */
    uint32_t flags;   /* GDN_GATED_DELTA_* */
    bool     scan_shared; /* the forward scan runs beside the reverse scan
                             (the backward's fork): no split scan plan */
};

/* Index tables of one call (device copies are owned by the tape). */
struct gdn_gd_index {
    int32_t *offsets;   /* host copy, N + 1 token offsets */
    cl_mem   seq_off;   /* [N + 1] int: token offsets */
    cl_mem   chunk_off; /* [N + 1] int: index of each sequence's first chunk */
    cl_mem   chunks;    /* [NT] int4: (seq, first token, length, chunk index in seq) */
};

/* Everything one forward call computes for backward, plus the borrowed
 * inputs. Also used as the state of a forward call without a tape. */
struct gdn_gated_delta_tape {
    gdn_context        *ctx;
    struct gdn_gd_shape s;
    struct gdn_gd_index idx;
    /* borrowed inputs (NULL where not given) */
    const gdn_tensor *q, *k, *v, *g, *beta, *A_log, *dt_bias, *h0;
    /* owned, written by the forward prep stage */
    cl_mem qn, kn;         /* [T, H, K] L2-normalised q, k (QK_L2NORM only) */
    cl_mem rstd_q, rstd_k; /* [T, H] 1 / sqrt(sum x^2 + eps) (QK_L2NORM only) */
    cl_mem G;              /* [T, HV] chunk-local cumsum of log gate, log2 domain */
    cl_mem b;              /* [T, HV] beta as used (after the sigmoid) */
    cl_mem gate;           /* [T, HV] log gate as used (natural log; GATE_IN_OP only) */
    cl_mem Ai;             /* [T, HV, 64] rows of (I + A)^-1 per chunk */
};

/* The q and k the chunk kernels read: normalised copies or the inputs. */
static inline cl_mem gdn__gd_qmem(const struct gdn_gated_delta_tape *tp)
{
    return tp->qn ? tp->qn : tp->q->mem;
}
static inline cl_mem gdn__gd_kmem(const struct gdn_gated_delta_tape *tp)
{
    return tp->kn ? tp->kn : tp->k->mem;
}

/* ---- chunk_fwd.c ---- */
/* F0 + F1: L2 norms (QK_L2NORM), gate (GATE_IN_OP), beta (BETA_SIGMOID) and
 * the chunk-local cumsum into tp->qn/kn/rstd_*, tp->gate, tp->b, tp->G. */
gdn_status gdn__gd_prep_fwd(struct gdn_gated_delta_tape *tp);
/* F2: Ai = (I + strict_lower(diag(b) K K^T * exp2(G_i - G_j)))^-1 per chunk. */
gdn_status gdn__gd_kkt_solve(struct gdn_gated_delta_tape *tp);
/* F3: w = Ai diag(b exp2(G)) K, u = Ai diag(b) V; w [T, HV, K], u [T, HV, V]. */
gdn_status gdn__gd_wy_fwd(struct gdn_gated_delta_tape *tp, cl_mem w, cl_mem u);
/* F4: sequential state scan. h [NT, HV, K, V] receives the state entering
 * each chunk; v_new [T, HV, V] = u - w h (pre-decay); ht optional. */
gdn_status gdn__gd_state_fwd(struct gdn_gated_delta_tape *tp, cl_mem w, cl_mem u, cl_mem h,
                             cl_mem v_new, cl_mem ht);
/* F5: o = scale (diag(exp2 G) Q h + tril((Q K^T) * exp2(G_i - G_j)) v_new). */
gdn_status gdn__gd_out_fwd(struct gdn_gated_delta_tape *tp, cl_mem h, cl_mem v_new, cl_mem o);
/* The whole forward: prep, kkt_solve, wy, state, out (scratch allocated and
 * released inside). ht may be NULL. */
gdn_status gdn__gd_chunk_forward(struct gdn_gated_delta_tape *tp, gdn_tensor *o, gdn_tensor *ht);

/* Tuning spaces of the forward stages (lib/tune; problem = gdn_gd_shape). */
struct gdn_tune_space;
extern const struct gdn_tune_space gdn__gd_kkt_space;
extern const struct gdn_tune_space gdn__gd_wy_space;
extern const struct gdn_tune_space gdn__gd_state_space;
extern const struct gdn_tune_space gdn__gd_out_space;
/* Mesa llvmpipe (gallivm) silently ends every loop of a work-item after
 * 65535 iterations in total (LP_MAX_TGSI_LOOP_ITERATIONS): there the tuned
 * per-chunk stages need work-groups of at least max(64, K, V) work-items,
 * and the two scans (state_fwd, state_bwd) at least 64 and windows of a few
 * chunks per launch (fewer as K grows or the work-group shrinks). */
bool    gdn__gd_loop_limited(const struct gdn_device *dev);
/* The scans' CHUNKS (chunks per launch) by default: 0 (one launch) except
 * on loop-limited devices. */
int32_t gdn__gd_scan_chunks_default(const struct gdn_device *dev, const struct gdn_gd_shape *s);
/* Whether a plan with wg work-items per group and CHUNKS chunks per launch
 * (0 for a per-chunk stage: always fine there) respects the device's loop
 * limit. */
bool gdn__gd_loop_limit_ok(const struct gdn_device *dev, const struct gdn_gd_shape *s, int32_t wg,
                           int32_t chunks);
/* The legal values of a scan's CHUNKS parameter. */
#define GDN_GD_SCAN_CHUNKS 6, {0, 1, 2, 4, 8, 16}
/* UNROLL, the tuning parameter of the stages with float4 products: the
 * unroll factor of GDN_TILE_MMA4's loop over k (cl/include/gdn_tile.clh),
 * 0 for the compiler's choice. */
#define GDN_GD_UNROLL_PARAM {"UNROLL", 0, 4, {0, 2, 4, 8}}
/* Its define GDN_TILE_UNROLL into d (a nonzero factor only, so plans
 * without it keep the options, hence the cached programs, of before):
 * the number of defines written, 0 or 1. */
size_t gdn__gd_unroll_define(int32_t unroll, struct gdn_define *d);
/* MAXREG, the tuning parameter of the stages whose registers bound the
 * work-groups per compute unit: the register cap GDN_MAXREG (applied where
 * program binaries are PTX, lib/runtime/runtime.h), 0 for none. 168 and 128
 * let three and four groups of 128 work-items share 64 Ki registers. */
#define GDN_GD_MAXREG_PARAM {"MAXREG", 0, 3, {0, 128, 168}}
/* Its define GDN_MAXREG into d (a nonzero cap only): 0 or 1 defines. */
size_t gdn__gd_maxreg_define(int32_t maxreg, struct gdn_define *d);
/* Whether a space may hold this cap on dev: 0 always, others only on
 * NVIDIA's driver (cl_nv_device_attribute_query), whose binaries are PTX;
 * elsewhere every cap builds the same program, which the tuner need not
 * time three times. (The rebuild still tests the binary itself.) */
bool gdn__gd_maxreg_ok(const struct gdn_device *dev, int32_t maxreg);
/* Whether the device runs GDN_CP16 (cl/include/gdn_tile.clh) as PTX cp.async:
 * an NVIDIA GPU of compute capability 8.0 or more (GDN_DEVICE_FLAG_INLINE_PTX).
 * The one feature test of the stages' forms that copy tiles ahead (kkt_solve,
 * out_fwd and dv_local VEC=2): their GPU defaults there, and GDN_ASYNC=1. */
bool gdn__gd_cp_async(const struct gdn_device *dev);
/* A plan's async flag as the define GDN_ASYNC=1 into d, and with tc (a form
 * whose products are on warp tiles) GDN_TC=1 after it: the tensor-core
 * products go with cp.async, on the same devices. Written only when set, so
 * the twins keep their options: the number of defines written, 0 to 2. */
size_t gdn__gd_async_define(bool async, bool tc, struct gdn_define *d);
/* The bucket of every tuned stage's rows: "K<K>.V<V>". */
void gdn__gd_bucket(int32_t K, int32_t V, char *buf, size_t cap);
/* gdn__tune_lookup of a stage for this problem (bucket from K, V). */
void gdn__gd_stage_lookup(gdn_context *ctx, const struct gdn_tune_space *space,
                          const struct gdn_gd_shape *s, int32_t *vals);

/* ---- chunk_bwd.c ---- */
/* Tuning spaces of the backward stages B3-B6 (problem = gdn_gd_shape). */
extern const struct gdn_tune_space gdn__gd_dvl_space;
extern const struct gdn_tune_space gdn__gd_sbwd_space;
extern const struct gdn_tune_space gdn__gd_dqkwg_space;
extern const struct gdn_tune_space gdn__gd_wyb_space;
/* The backward's schedule (problem = gdn_gd_shape): BWD_FORK = 1 runs B4
 * (the reverse scan) on a second queue, concurrently with B2 (the forward
 * scan), which it does not depend on; B3 (dv_local) runs before both, into
 * a buffer of its own. Not searched by
 * the autotuner, which times stages one at a time: set by the tuning
 * database (and GDN_TUNE) only. */
extern const struct gdn_tune_space gdn__gd_sched_space;
/* ---- recurrent.c ---- */
/* The fused recurrent kernel's work-group shape (BV, VW, KS; problem =
 * gdn_gd_shape). Not searched by the autotuner, which tunes the chunked
 * stages: set by the tuning database and GDN_TUNE only. */
extern const struct gdn_tune_space gdn__gd_recurrent_space;
gdn_status gdn__gd_chunk_backward(const struct gdn_gated_delta_tape *tp, const gdn_tensor *do_,
                                  const gdn_tensor *dht, const gdn_gated_delta_grads *grads);

/* ---- recurrent.c ---- */
/* Token-by-token forward over every sequence of tp (in-op options fused).
 * h0_mem / ht_mem may be NULL; they may be the same buffer (decode in place). */
gdn_status gdn__gd_recurrent_forward(struct gdn_gated_delta_tape *tp, cl_mem h0_mem, cl_mem o_mem,
                                     cl_mem ht_mem);

/* ---- tune.c ---- */
/* Every tuned stage of the op, forward then backward. */
extern const struct gdn_tune_space *const gdn__gd_tuned_spaces[];
extern const size_t                       gdn__gd_n_tuned_spaces;
/* GDN_TUNE_MODE lazy / eager: tune head dims (K, V) (eager: also K = V = 64
 * and 128) before the op's first use of them when the user DB lacks their
 * rows, within the context's tuning budget (lib/tune/tune.h). Never fails
 * the op: a failed tuning is logged and the lookup falls back as usual. */
void gdn__gd_tune_on_use(gdn_context *ctx, int32_t K, int32_t V);

/* ---- api.c ---- */
/* Validate params/args against o (and ht), fill the shape and index tables
 * and, when alloc_saved, allocate the tape's owned buffers. */
gdn_status gdn__gd_tape_init(gdn_context *ctx, const gdn_gated_delta_params *params,
                             const gdn_gated_delta_args *args, const gdn_tensor *o,
                             const gdn_tensor *ht, bool alloc_saved,
                             struct gdn_gated_delta_tape **out);

#endif /* GDN_OPS_GATED_DELTA_H */
