/*
 * gdn.h - the public C API of libgdn: Gated DeltaNet and its hybrid blocks on
 * any OpenCL device, for training (forward and backward) and inference.
 *
 * If a function, type or macro is not declared in this file (or in gdn_cl.h
 * for OpenCL interop), it is not part of the API.
 *
 * Conventions
 *   - Every fallible function returns gdn_status: 0 is success, < 0 is an
 *     error. The detailed message of the most recent failure on a context is
 *     gdn_context_last_error(ctx).
 *   - Objects are opaque handles; each *_create has exactly one *_destroy.
 *     *_destroy(NULL) is a no-op. Create functions set *out = NULL on failure,
 *     so no half-built object is ever returned.
 *   - Ownership words in the comments: "copied" (the library copies what you
 *     pass before the call returns), "borrowed" (you keep ownership and must
 *     keep it alive as stated), "owned" (the returned object is yours to
 *     destroy, or, for strings, owned by the library).
 *   - Destruction order: objects created from a context should be destroyed
 *     before it. If the context is destroyed first, it is logged as a warning
 *     and its OpenCL resources are released when the last child goes; nothing
 *     crashes and nothing leaks.
 *   - Threading: a context and everything created from it is used by one
 *     thread at a time. Different contexts are independent. The only global
 *     state is read-only after first use (the device list).
 *   - Asynchrony: compute calls enqueue work on the context's in-order queue
 *     and return. gdn_tensor_write and gdn_tensor_read block until the copy is
 *     done; gdn_context_finish waits for everything enqueued. Some calls run
 *     two independent parts at once on GPUs (gdn_gated_delta_backward's
 *     scans), one of them on a second queue that the library creates on the
 *     same OpenCL context and device; events order it after the earlier
 *     commands of the context's queue and before the later ones, so the
 *     context's queue stays the only one to wait on or to order user work
 *     against.
 *   - Failure atomicity: on error, output tensors are unspecified but every
 *     object stays valid and destroyable; input tensors are never modified.
 *
 * Layout of every tensor: dense, row-major (the last dimension varies
 * fastest), no padding, in the tensor's dtype. Dimension names used in the
 * shape comments: T tokens, N sequences, H query/key heads, HV value heads,
 * K key head dim, V value head dim. Packed variable-length batches put all
 * sequences one after another along T and describe them by offsets (the
 * FlashAttention cu_seqlens convention: N + 1 int32 entries, offsets[0] = 0,
 * offsets[N] = T, non-decreasing).
 *
 * Environment variables read at context creation: GDN_DEVICE, GDN_CL_DIR,
 * GDN_CACHE, GDN_CACHE_DIR, XDG_CACHE_HOME, GDN_LOG (see README.md).
 */
#ifndef GDN_H
#define GDN_H

#include <stddef.h>
#include <stdint.h>

#define GDN_VERSION_MAJOR 0
#define GDN_VERSION_MINOR 1
#define GDN_VERSION_PATCH 0
#define GDN_VERSION_HEX                                                                            \
    ((GDN_VERSION_MAJOR << 16) | (GDN_VERSION_MINOR << 8) | (GDN_VERSION_PATCH))

#ifndef GDN_API
#    if defined(_WIN32) && defined(GDN_BUILDING_DLL)
#        define GDN_API __declspec(dllexport)
#    elif defined(_WIN32) && defined(GDN_USING_DLL)
#        define GDN_API __declspec(dllimport)
#    elif defined(__GNUC__) && __GNUC__ >= 4
#        define GDN_API __attribute__((visibility("default")))
#    else
#        define GDN_API
#    endif
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------ */
/* Status codes                                                             */
/* ------------------------------------------------------------------------ */

/* X-macro: name, value, message. Append only; never renumber. */
// clang-format off
#define GDN_STATUS_MAP(XX)                                                     \
    XX(OK,                    0, "success")                                    \
    XX(INVALID_ARGUMENT,     -1, "invalid argument")                           \
    XX(SHAPE_MISMATCH,       -2, "tensor shape or dtype does not match")       \
    XX(OUT_OF_HOST_MEMORY,   -3, "out of host memory")                         \
    XX(OUT_OF_DEVICE_MEMORY, -4, "out of device memory")                       \
    XX(NO_DEVICE,            -5, "no usable OpenCL device")                    \
    XX(UNSUPPORTED,          -6, "not supported on this device or build")      \
    XX(BUILD_FAILED,         -7, "OpenCL program build failed")                \
    XX(OPENCL,               -8, "OpenCL runtime error")                       \
    XX(TUNE_DB,              -9, "tuning database is missing or corrupt")      \
    XX(IO,                  -10, "file I/O error")                             \
    XX(ABORTED,             -11, "aborted by callback")                        \
    XX(INTERNAL,            -12, "internal error (please report)")
// clang-format on

/** Status of every fallible call; 0 is success, negative is an error. */
typedef enum gdn_status {
#define GDN_STATUS_ENUM_(name, value, msg) GDN_STATUS_##name = value,
    GDN_STATUS_MAP(GDN_STATUS_ENUM_)
#undef GDN_STATUS_ENUM_
} gdn_status;

/** Static English text for a status ("success", "invalid argument", ...).
 *  Unknown values give "unknown status". Never NULL, never to be freed. */
GDN_API const char *gdn_status_string(gdn_status status);

/** Static name of a status ("GDN_STATUS_OK", ...); "GDN_STATUS_UNKNOWN" for
 *  values not in the list. Never NULL. */
GDN_API const char *gdn_status_name(gdn_status status);

/** GDN_VERSION_HEX of the library that is linked, for checking that the
 *  header and the library agree at run time. */
GDN_API uint32_t gdn_version(void);

/** "MAJOR.MINOR.PATCH" of the linked library; static, never NULL. */
GDN_API const char *gdn_version_string(void);

/* ------------------------------------------------------------------------ */
/* Opaque objects                                                           */
/* ------------------------------------------------------------------------ */

typedef struct gdn_context gdn_context; /**< one device + queue + caches   */
typedef struct gdn_tensor  gdn_tensor;  /**< device buffer + shape + dtype */

/* ------------------------------------------------------------------------ */
/* Scalars and enums                                                        */
/* ------------------------------------------------------------------------ */

/** Element types. Ops state which they accept; F32 is accepted everywhere. */
typedef enum gdn_dtype {
    GDN_DTYPE_F32  = 0, /**< IEEE binary32, 4 bytes */
    GDN_DTYPE_F16  = 1, /**< IEEE binary16, 2 bytes (storage only) */
    GDN_DTYPE_BF16 = 2, /**< bfloat16, 2 bytes (storage only) */
    GDN_DTYPE_I32  = 3  /**< int32, 4 bytes (indices, token ids) */
} gdn_dtype;

/** Maximum number of tensor dimensions. */
#define GDN_MAX_DIMS 4

/** Bytes per element of a dtype; 0 for values that are not a gdn_dtype. */
GDN_API size_t gdn_dtype_size(gdn_dtype dtype);

typedef enum gdn_log_level {
    GDN_LOG_LEVEL_ERROR = 0,
    GDN_LOG_LEVEL_WARN  = 1,
    GDN_LOG_LEVEL_INFO  = 2,
    GDN_LOG_LEVEL_DEBUG = 3
} gdn_log_level;

/** Log callback. msg is a NUL-terminated line without the trailing newline,
 *  borrowed for the duration of the call. Called from the thread that made
 *  the library call. */
typedef void (*gdn_log_fn)(void *user, gdn_log_level level, const char *msg);

/* ------------------------------------------------------------------------ */
/* Devices                                                                  */
/* ------------------------------------------------------------------------ */

/** Capability flags in gdn_device_info.flags. */
#define GDN_DEVICE_FLAG_GPU       (1u << 0) /**< CL_DEVICE_TYPE_GPU            */
#define GDN_DEVICE_FLAG_CPU       (1u << 1) /**< CL_DEVICE_TYPE_CPU            */
#define GDN_DEVICE_FLAG_FP16      (1u << 2) /**< cl_khr_fp16                   */
#define GDN_DEVICE_FLAG_FP64      (1u << 3) /**< cl_khr_fp64 / double support  */
#define GDN_DEVICE_FLAG_SUBGROUPS (1u << 4) /**< cl_khr_subgroups or Intel's   */
#define GDN_DEVICE_FLAG_NV_ATTR   (1u << 5) /**< cl_nv_device_attribute_query */
#define GDN_DEVICE_FLAG_INLINE_PTX (1u << 6) /**< NVIDIA, compute cap >= 8.0:
                                                  inline PTX fast paths usable */

/** What libgdn sees of one OpenCL device. Plain data; filled by
 *  gdn_device_get_info. Strings are NUL-terminated (truncated if longer). */
typedef struct gdn_device_info {
    char     name[128];           /**< CL_DEVICE_NAME                         */
    char     vendor[64];          /**< CL_DEVICE_VENDOR                       */
    char     driver_version[64];  /**< CL_DRIVER_VERSION                      */
    char     platform_name[64];   /**< CL_PLATFORM_NAME                       */
    char     device_version[64];  /**< CL_DEVICE_VERSION                      */
    char     opencl_c_version[64];/**< CL_DEVICE_OPENCL_C_VERSION             */
    int32_t  platform_index;      /**< index of the platform (GDN_DEVICE p:d) */
    int32_t  device_index;        /**< index within the platform              */
    uint32_t vendor_id;           /**< CL_DEVICE_VENDOR_ID                    */
    uint32_t compute_units;       /**< CL_DEVICE_MAX_COMPUTE_UNITS            */
    uint32_t clock_mhz;           /**< CL_DEVICE_MAX_CLOCK_FREQUENCY          */
    uint32_t max_work_group_size; /**< CL_DEVICE_MAX_WORK_GROUP_SIZE          */
    uint64_t global_mem_bytes;    /**< CL_DEVICE_GLOBAL_MEM_SIZE              */
    uint64_t max_alloc_bytes;     /**< CL_DEVICE_MAX_MEM_ALLOC_SIZE           */
    uint64_t local_mem_bytes;     /**< CL_DEVICE_LOCAL_MEM_SIZE               */
    uint32_t flags;               /**< GDN_DEVICE_FLAG_*                      */
    uint32_t subgroup_size;       /**< warp/wavefront/sub-group width, 0 unknown */
    uint32_t nv_compute_capability; /**< major*10+minor, 0 when not NVIDIA    */
    uint32_t reserved[9];         /**< zero                                   */
} gdn_device_info;

/** Number of OpenCL devices over all platforms (0 when there is no OpenCL
 *  platform; that is not an error). @return OK, INVALID_ARGUMENT (NULL). */
GDN_API gdn_status gdn_device_count(int32_t *count);

/** Info of device `index` in [0, gdn_device_count). Blocks briefly.
 *  @return OK, INVALID_ARGUMENT (NULL info or index out of range), OPENCL. */
GDN_API gdn_status gdn_device_get_info(int32_t index, gdn_device_info *info);

/** The device index a context would use by default: GDN_DEVICE when set (a
 *  `platform:device` pair of indices, a flat index, or a case-insensitive
 *  substring of the device name), else the first GPU, else the first device.
 *  @return OK, NO_DEVICE (no device, or GDN_DEVICE matches none),
 *  INVALID_ARGUMENT (NULL). */
GDN_API gdn_status gdn_device_default(int32_t *index);

/* ------------------------------------------------------------------------ */
/* Context                                                                  */
/* ------------------------------------------------------------------------ */

/** What a context does about kernel parameters that its device's user
 *  tuning database lacks (gdn_context_params.tune_mode). */
typedef enum gdn_tune_mode {
    GDN_TUNE_MODE_DB    = 0, /**< look values up only (deterministic; for CI)   */
    GDN_TUNE_MODE_LAZY  = 1, /**< tune an op's missing head dims at first use   */
    GDN_TUNE_MODE_EAGER = 2  /**< LAZY, and tune the fast-path head dims
                                  (K = V = 64, 128) at an op's first use        */
} gdn_tune_mode;

/** Context settings. Fill with gdn_context_params_init, then change fields. */
typedef struct gdn_context_params {
    int32_t     device_index;  /**< -1 (default): gdn_device_default()        */
    const char *kernel_dir;    /**< NULL: embedded kernels; else load cl/ from
                                    this folder (GDN_CL_DIR wins). Copied.    */
    const char *build_options; /**< appended to every clBuildProgram; NULL ok.
                                    Copied.                                    */
    const char *cache_dir;     /**< NULL: $GDN_CACHE_DIR, else
                                    $XDG_CACHE_HOME/gdn, else ~/.cache/gdn.
                                    Copied.                                    */
    int32_t     disk_cache;    /**< 1 (default): on-disk program cache unless
                                    GDN_CACHE=0; 0: off                        */
    gdn_log_fn  log_fn;        /**< NULL: write to stderr                     */
    void       *log_user;      /**< passed to log_fn, borrowed                */
    int32_t     log_level;     /**< -1 (default): GDN_LOG or WARN; else a
                                    gdn_log_level: messages above it dropped  */
    int32_t     tune_mode;     /**< -1 (default): GDN_TUNE_MODE (db, lazy,
                                    eager), else DB; or a gdn_tune_mode       */
    float       tune_budget_s; /**< seconds LAZY/EAGER tuning may spend in
                                    this context; 0 (default): GDN_TUNE_BUDGET,
                                    else 120 (LAZY) or 300 (EAGER)            */
    uint32_t    reserved[14];  /**< must be zero                              */
} gdn_context_params;

/** Fill *params with defaults. Always call this before setting fields. */
GDN_API void gdn_context_params_init(gdn_context_params *params);

/** Create a context on one device with its own OpenCL context and in-order,
 *  profiling-enabled queue. params may be NULL (defaults).
 *  @return OK; INVALID_ARGUMENT (NULL out, non-zero reserved, bad index);
 *  NO_DEVICE; OPENCL; OUT_OF_HOST_MEMORY. On failure *out = NULL and, where
 *  no context exists to hold it, the message goes to the log. */
GDN_API gdn_status gdn_context_create(const gdn_context_params *params, gdn_context **out);

/** Destroy a context (NULL: no-op). Waits for queued work. */
GDN_API void gdn_context_destroy(gdn_context *ctx);

/** Wait until everything enqueued on ctx is done. @return OK, OPENCL. */
GDN_API gdn_status gdn_context_finish(gdn_context *ctx);

/** Detailed message of the most recent failure on ctx, including the OpenCL
 *  build log after GDN_STATUS_BUILD_FAILED. Owned by ctx; valid until the
 *  next call on ctx. "" when there is none or ctx is NULL. */
GDN_API const char *gdn_context_last_error(const gdn_context *ctx);

/** Info of the context's device. @return OK, INVALID_ARGUMENT. */
GDN_API gdn_status gdn_context_device_info(const gdn_context *ctx, gdn_device_info *info);

/* ------------------------------------------------------------------------ */
/* Tensors                                                                  */
/* ------------------------------------------------------------------------ */

/** Create a device tensor of `ndim` (1..GDN_MAX_DIMS) dimensions, each >= 1
 *  except that a zero-sized dimension is allowed (an empty tensor). shape is
 *  copied. Contents are uninitialised.
 *  @return OK; INVALID_ARGUMENT (NULL, bad ndim, negative dim, bad dtype);
 *  OUT_OF_DEVICE_MEMORY (size overflows, exceeds the device's largest
 *  allocation, or allocation failed); OPENCL. */
GDN_API gdn_status gdn_tensor_create(gdn_context *ctx, gdn_dtype dtype, int32_t ndim,
                                     const int64_t *shape, gdn_tensor **out);

/** Destroy a tensor (NULL: no-op). Releases the library's reference to its
 *  buffer; a wrapped cl_mem stays valid for its owner. */
GDN_API void gdn_tensor_destroy(gdn_tensor *t);

/** Copy nbytes from host memory src (borrowed) into the tensor at byte
 *  offset; blocks until done. @return OK; INVALID_ARGUMENT (NULL, or the range
 *  [offset, offset + nbytes) is not inside the tensor); OPENCL. */
GDN_API gdn_status gdn_tensor_write(gdn_tensor *t, const void *src, size_t offset, size_t nbytes);

/** Copy nbytes at byte offset into host memory dst; waits for queued work
 *  that writes the tensor, then blocks until done. @return as _write. */
GDN_API gdn_status gdn_tensor_read(const gdn_tensor *t, void *dst, size_t offset, size_t nbytes);

/** Set every element of an F32 tensor to value (enqueued).
 *  @return OK; SHAPE_MISMATCH (not F32); INVALID_ARGUMENT; BUILD_FAILED; OPENCL. */
GDN_API gdn_status gdn_tensor_fill(gdn_tensor *t, float value);

GDN_API gdn_dtype   gdn_tensor_dtype(const gdn_tensor *t);   /**< F32 for NULL   */
GDN_API int32_t     gdn_tensor_ndim(const gdn_tensor *t);    /**< 0 for NULL     */
GDN_API int64_t     gdn_tensor_dim(const gdn_tensor *t, int32_t axis); /**< 0 if out of range */
GDN_API int64_t     gdn_tensor_numel(const gdn_tensor *t);   /**< 0 for NULL     */
GDN_API size_t      gdn_tensor_nbytes(const gdn_tensor *t);  /**< 0 for NULL     */
GDN_API gdn_context *gdn_tensor_context(const gdn_tensor *t); /**< borrowed     */

/* ------------------------------------------------------------------------ */
/* The gated delta rule (Gated DeltaNet's sequence mixer), op level          */
/* ------------------------------------------------------------------------ */
/*
 * Per sequence and value head hv (reading q/k head hv / (HV/H), as fla), with
 * the state h in R^{K x V} (fla's layout):
 *
 *     h_t = exp(g_t) h_{t-1};  u_t = beta_t (v_t - h_t^T k_t);
 *     h_t = h_t + k_t u_t^T;   o_t = scale * h_t^T q_t
 *
 * Tensors (all F32; packed layout, or batched with a leading B):
 *   q, k      [T, H, K]     or [B, T_b, H, K]
 *   v         [T, HV, V]    or [B, T_b, HV, V]
 *   g         [T, HV]       or [B, T_b, HV]   log gate (<= 0), or raw a with
 *                                              GDN_GATED_DELTA_GATE_IN_OP
 *   beta      [T, HV]       or [B, T_b, HV]   in (0, 2), or raw b with
 *                                              GDN_GATED_DELTA_BETA_SIGMOID
 *   A_log, dt_bias [HV]                        only with GATE_IN_OP
 *   h0, ht    [N, HV, K, V] initial / final state per sequence, row-major
 *                           with V fastest: h[n][hv][i][j] = h(i, j)
 *   o         [T, HV, V]    or [B, T_b, HV, V]
 * Sequences: with 4-D tensors, N = B sequences of T_b tokens. With 3-D
 * tensors, seq_offsets (N + 1 entries, host memory, copied) packs N
 * variable-length sequences along T; NULL means one sequence of T tokens.
 *
 * Head dims K and V: multiples of 16 from 16 to 256 (64 and 128 are the
 * fastest). HV must be a multiple of H.
 */

/** Options of the gated delta rule (flags). */
#define GDN_GATED_DELTA_QK_L2NORM     (1u << 0) /**< q, k <- x / sqrt(sum x^2 + eps) inside */
#define GDN_GATED_DELTA_GATE_IN_OP    (1u << 1) /**< g = -exp(A_log) softplus(a + dt_bias) */
#define GDN_GATED_DELTA_BETA_SIGMOID  (1u << 2) /**< beta = sigmoid(b) inside the op         */
#define GDN_GATED_DELTA_NEG_EIGVAL    (1u << 3) /**< with BETA_SIGMOID: 2 sigmoid(b)          */

/** Settings of one gated-delta call. Fill with gdn_gated_delta_params_init. */
typedef struct gdn_gated_delta_params {
    float    scale;        /**< output scale; 0 (default): K^-1/2              */
    float    l2norm_eps;   /**< eps of the in-op L2 norm; 0 (default): 1e-6    */
    uint32_t flags;        /**< GDN_GATED_DELTA_*; default 0                    */
    uint32_t reserved[13]; /**< must be zero                                   */
} gdn_gated_delta_params;

/** Fill *params with defaults (scale K^-1/2, eps 1e-6, no flags). */
GDN_API void gdn_gated_delta_params_init(gdn_gated_delta_params *params);

/** The inputs of one call. Tensors are borrowed for the duration of the call
 *  (and, when a tape is recorded, until the tape is destroyed: see below). */
typedef struct gdn_gated_delta_args {
    const gdn_tensor *q;           /**< [T, H, K]                              */
    const gdn_tensor *k;           /**< [T, H, K]                              */
    const gdn_tensor *v;           /**< [T, HV, V]                             */
    const gdn_tensor *g;           /**< [T, HV] log gate, or raw a             */
    const gdn_tensor *beta;        /**< [T, HV] beta, or raw b                 */
    const gdn_tensor *A_log;       /**< [HV], GATE_IN_OP only, else NULL       */
    const gdn_tensor *dt_bias;     /**< [HV], GATE_IN_OP only, else NULL       */
    const gdn_tensor *h0;          /**< [N, HV, K, V] or NULL (zero state)     */
    const int32_t    *seq_offsets; /**< N + 1 host ints (3-D tensors) or NULL  */
    int32_t           n_seqs;      /**< N when seq_offsets is set, else 0      */
    uint32_t          reserved[7]; /**< must be zero                           */
} gdn_gated_delta_args;

/** What forward saves for backward. Owned by the caller; destroy it with
 *  gdn_gated_delta_tape_destroy (before the context). It holds, per token and
 *  value head, the chunk inverse (64 floats), the cumulative gate and beta
 *  (2 floats) and, with QK_L2NORM, the normalised q and k per q/k head
 *  (2 K floats + 2 norms): at K = V = 128 that is 264 B per token and value
 *  head, plus 1032 B per token and q/k head with QK_L2NORM. It borrows the
 *  input tensors q, k, v, g, beta, A_log, dt_bias and h0: keep them alive and
 *  unchanged until backward has been enqueued. */
typedef struct gdn_gated_delta_tape gdn_gated_delta_tape;

GDN_API void gdn_gated_delta_tape_destroy(gdn_gated_delta_tape *tape);

/** Chunked forward (chunk 64, WY representation; the training and prefill
 *  path). o (required) and ht (optional, [N, HV, K, V]) are written. When
 *  tape is not NULL, *tape receives a new tape for backward.
 *  @return OK; INVALID_ARGUMENT (NULL, bad offsets, non-zero reserved);
 *  SHAPE_MISMATCH; UNSUPPORTED (head dims); OUT_OF_DEVICE_MEMORY;
 *  BUILD_FAILED; OPENCL. Enqueued; returns before the device is done. */
GDN_API gdn_status gdn_gated_delta_forward(gdn_context *ctx, const gdn_gated_delta_params *params,
                                           const gdn_gated_delta_args *args, gdn_tensor *o,
                                           gdn_tensor *ht, gdn_gated_delta_tape **tape);

/** Gradients written by backward. Every non-NULL tensor is overwritten with
 *  the gradient of the same shape as its input: dq, dk [T, H, K]; dv [T, HV,
 *  V]; dg [T, HV] (w.r.t. the log gate, or w.r.t. raw a with GATE_IN_OP);
 *  dbeta [T, HV] (w.r.t. beta, or raw b with BETA_SIGMOID); dA_log, ddt_bias
 *  [HV] (GATE_IN_OP); dh0 [N, HV, K, V]. NULL entries are not written. */
typedef struct gdn_gated_delta_grads {
    gdn_tensor *dq;
    gdn_tensor *dk;
    gdn_tensor *dv;
    gdn_tensor *dg;
    gdn_tensor *dbeta;
    gdn_tensor *dA_log;
    gdn_tensor *ddt_bias;
    gdn_tensor *dh0;
    void       *reserved[4]; /**< must be NULL */
} gdn_gated_delta_grads;

/** Backward of the chunked forward recorded in tape. do_ is [T, HV, V]; dht
 *  [N, HV, K, V] or NULL (the final state was not used). The per-chunk states
 *  are recomputed, not read from the tape. A tape may be used for several
 *  backward calls. @return as gdn_gated_delta_forward. */
GDN_API gdn_status gdn_gated_delta_backward(gdn_context *ctx, const gdn_gated_delta_tape *tape,
                                            const gdn_tensor *do_, const gdn_tensor *dht,
                                            const gdn_gated_delta_grads *grads);

/** Fused recurrent forward, token by token (short prompts, speculative
 *  decoding, and a cross-check of the chunked path). Same arguments and
 *  outputs as gdn_gated_delta_forward, without a tape. */
GDN_API gdn_status gdn_gated_delta_recurrent(gdn_context *ctx,
                                             const gdn_gated_delta_params *params,
                                             const gdn_gated_delta_args *args, gdn_tensor *o,
                                             gdn_tensor *ht);

/** Decode: one token for each of N sequences, updating state [N, HV, K, V]
 *  in place. args->q, k are [N, H, K]; v [N, HV, V]; g, beta [N, HV] (with
 *  the same in-op options); args->h0 and seq_offsets must be NULL. o is
 *  [N, HV, V]. @return as gdn_gated_delta_forward. */
GDN_API gdn_status gdn_gated_delta_step(gdn_context *ctx, const gdn_gated_delta_params *params,
                                        const gdn_gated_delta_args *args, gdn_tensor *state,
                                        gdn_tensor *o);

/* ------------------------------------------------------------------------ */
/* Tuning                                                                   */
/* ------------------------------------------------------------------------ */
/*
 * Kernel parameters (tile sizes, work-group shapes, variants) come from, in
 * order: the GDN_TUNE override, the user tuning database of this device and
 * driver (<cache folder>/tune/<device>.txt, written by the tuner), built-in
 * values for this device, architecture or vendor, and generic defaults that
 * are correct on any OpenCL 1.2 device.
 */

/** Autotune the gated delta rule's chunked forward stages for head dims K,
 *  V on ctx's device. Every legal candidate of each stage is built and run on
 *  a representative problem (B=2, T=4096, H=16 on GPUs; B=1, T=1024, H=2
 *  elsewhere), checked against the generic default's output (candidates that
 *  differ by more than 1e-5 relative RMS are discarded and logged) and timed
 *  (median device time of 5 runs after a warm-up). The fastest per stage is
 *  written to the device's user tuning database, which later calls on any
 *  context of this device and driver use. budget_s bounds the search (0:
 *  300 s); the stages searched until then are still recorded. report (may be
 *  NULL) receives one line per stage (copied, truncated to report_cap).
 *  Blocks. @return OK; INVALID_ARGUMENT; UNSUPPORTED (head dims); IO (no
 *  cache folder, or the database cannot be written); BUILD_FAILED; OPENCL;
 *  OUT_OF_DEVICE_MEMORY. */
GDN_API gdn_status gdn_tune_gated_delta(gdn_context *ctx, int32_t K, int32_t V, double budget_s,
                                        char *report, size_t report_cap);

/** Autotune the stages of another op on ctx's device, as
 *  gdn_tune_gated_delta does (every legal candidate checked against the
 *  generic default's outputs and gradients, timed by profiling events,
 *  fastest per stage written to the user tuning database):
 *    op "mamba2": d0 = head dim P, d1 = state size DS
 *    op "swa":    d0 = head dim D (d1 ignored)
 *    op "gated_delta": d0 = K, d1 = V (the same as gdn_tune_gated_delta)
 *  @return OK; INVALID_ARGUMENT (NULL, unknown op); UNSUPPORTED (dims, or
 *  an op without a tuner in this build); IO; BUILD_FAILED; OPENCL. */
GDN_API gdn_status gdn_tune_op(gdn_context *ctx, const char *op, int32_t d0, int32_t d1,
                               double budget_s, char *report, size_t report_cap);

/** What the gated delta rule's tuned stages will use on ctx's device for
 *  head dims K, V, and where each value comes from (override, user
 *  database, built-in, generic), one line per stage, into buf (truncated to
 *  cap). @return OK, INVALID_ARGUMENT, OUT_OF_HOST_MEMORY. */
GDN_API gdn_status gdn_tune_describe(gdn_context *ctx, int32_t K, int32_t V, char *buf,
                                     size_t cap);

/* ------------------------------------------------------------------------ */
/* Sliding-window attention (SWA), op level                                 */
/* ------------------------------------------------------------------------ */
/*
 * Causal softmax attention in which token t of a sequence attends to the
 * tokens (t - W, t] of the same sequence (itself and the W - 1 before it;
 * flash-attn window_size = (W - 1, 0)). W >= the sequence length is plain
 * causal attention. Per sequence, query head h (reading key/value head
 * h / (Hq / Hkv), grouped-query attention) and query token i:
 *
 *     s_ij = scale * q_i . k_j           for i - W < j <= i
 *     o_i  = sum_j softmax_j(s_ij) v_j   lse_i = log sum_j exp(s_ij)
 *
 * With GDN_SWA_ROPE, q and k are first rotated (rotary position embedding,
 * rotate-half convention of fla / Llama / NVlabs): for d < D/2, the pair
 * (x_d, x_{d+D/2}) of a token at position p is rotated by the angle
 * p * base^(-2d/D):
 *     y_d       = x_d cos - x_{d+D/2} sin
 *     y_{d+D/2} = x_{d+D/2} cos + x_d sin
 * Positions count from each sequence's first token (0) plus an optional
 * per-sequence offset (pos_offsets; prefill continuation). The angle is
 * reduced in extended precision, so positions up to 2^24 keep fp32 accuracy.
 *
 * Tensors (all F32; packed layout, or batched with a leading B):
 *   q, o      [T, Hq, D]    or [B, T_b, Hq, D]
 *   k, v      [T, Hkv, D]   or [B, T_b, Hkv, D]
 *   lse       [T, Hq]       or [B, T_b, Hq]    natural-log log-sum-exp
 * Sequences: with 4-D tensors, N = B sequences of T_b tokens. With 3-D
 * tensors, seq_offsets (N + 1 entries, host memory, copied) packs N
 * variable-length sequences along T; NULL means one sequence of T tokens.
 * Head dim D: a multiple of 16 from 16 to 256 (64 and 128 are the fastest);
 * v has the same head dim as q and k. Hq must be a multiple of Hkv.
 *
 * Cost: O(T * min(W, T) * D) per head in time, O(T * Hq) extra memory (the
 * T x T matrix is never formed; key tiles wholly outside the window are
 * skipped).
 */

/** Options of sliding-window attention (flags). */
#define GDN_SWA_ROPE (1u << 0) /**< rotate q and k by their positions in the op */

/** Default window (the H1/H2 hybrids' SWA layers). */
#define GDN_SWA_DEFAULT_WINDOW 2048

/** Settings of one SWA call. Fill with gdn_swa_params_init. */
typedef struct gdn_swa_params {
    int32_t  window;       /**< W >= 1; 0 (default): GDN_SWA_DEFAULT_WINDOW;
                                INT32_MAX (or any W >= T): full causal     */
    float    scale;        /**< softmax scale; 0 (default): D^-1/2         */
    float    rope_base;    /**< RoPE base; 0 (default): 10000              */
    uint32_t flags;        /**< GDN_SWA_*; default 0                        */
    uint32_t reserved[12]; /**< must be zero                               */
} gdn_swa_params;

/** Fill *params with defaults (window 2048, scale D^-1/2, base 10000, no
 *  flags). */
GDN_API void gdn_swa_params_init(gdn_swa_params *params);

/** The inputs of one call. Tensors are borrowed for the duration of the call
 *  (and, when a tape is recorded, until the tape is destroyed). */
typedef struct gdn_swa_args {
    const gdn_tensor *q;           /**< [T, Hq, D]                             */
    const gdn_tensor *k;           /**< [T, Hkv, D]                            */
    const gdn_tensor *v;           /**< [T, Hkv, D]                            */
    const int32_t    *seq_offsets; /**< N + 1 host ints (3-D tensors) or NULL  */
    int32_t           n_seqs;      /**< N when seq_offsets is set, else 0      */
    const int32_t    *pos_offsets; /**< N host ints (copied): RoPE position of
                                        each sequence's first token; NULL: 0.
                                        Each in [0, 2^24 - length].          */
    uint32_t          reserved[8]; /**< must be zero                           */
} gdn_swa_args;

/** What forward saves for backward. Owned by the caller; destroy it with
 *  gdn_swa_tape_destroy (before the context). It holds the log-sum-exp
 *  [T, Hq] (4 B per token and query head) and, with GDN_SWA_ROPE, the
 *  rotated q and k (4 D B per token and head). It borrows q, k, v and the
 *  output o of the forward call: keep them alive and unchanged until
 *  backward has been enqueued. */
typedef struct gdn_swa_tape gdn_swa_tape;

GDN_API void gdn_swa_tape_destroy(gdn_swa_tape *tape);

/** Forward (flash-attention style, online softmax in fp32). o (required) is
 *  written; lse (optional, [T, Hq] or [B, T_b, Hq]) receives the natural-log
 *  log-sum-exp of the scaled scores of each row. When tape is not NULL,
 *  *tape receives a new tape for backward.
 *  @return OK; INVALID_ARGUMENT (NULL, bad offsets, non-zero reserved, bad
 *  window, scale or base, o aliasing an input); SHAPE_MISMATCH; UNSUPPORTED
 *  (head dim, sizes); OUT_OF_DEVICE_MEMORY; BUILD_FAILED; OPENCL. Enqueued;
 *  returns before the device is done. */
GDN_API gdn_status gdn_swa_forward(gdn_context *ctx, const gdn_swa_params *params,
                                   const gdn_swa_args *args, gdn_tensor *o, gdn_tensor *lse,
                                   gdn_swa_tape **tape);

/** Gradients written by backward. Every non-NULL tensor is overwritten with
 *  the gradient w.r.t. the input of the same shape: dq [T, Hq, D]; dk, dv
 *  [T, Hkv, D] (with GQA, summed over the query heads of each group, in a
 *  fixed order: deterministic). With GDN_SWA_ROPE, dq and dk are w.r.t. the
 *  unrotated q and k. NULL entries are not written (and, for dq, not
 *  computed). */
typedef struct gdn_swa_grads {
    gdn_tensor *dq;
    gdn_tensor *dk;
    gdn_tensor *dv;
    void       *reserved[4]; /**< must be NULL */
} gdn_swa_grads;

/** Backward of the forward recorded in tape, recomputing the attention
 *  weights from the saved log-sum-exp. do_ has o's shape. A tape may be used
 *  for several backward calls. The gradient tensors must not alias the
 *  tape's inputs or each other. @return as gdn_swa_forward. */
GDN_API gdn_status gdn_swa_backward(gdn_context *ctx, const gdn_swa_tape *tape,
                                    const gdn_tensor *do_, const gdn_swa_grads *grads);

/** Rotary position embedding alone (the op applied to q and k by
 *  GDN_SWA_ROPE). x and y are [T, H, D] or [B, T_b, H, D] (D even, from 2 to
 *  1024; H >= 1); y may be x (in place). Sequences and
 *  positions come from seq_offsets / n_seqs / pos_offsets as in
 *  gdn_swa_args (the other fields of args are ignored and may be NULL).
 *  base: 0 means 10000. inverse = 0 rotates by +angle (forward); inverse = 1
 *  rotates by -angle, which is the backward (dx from dy), the rotation being
 *  orthogonal. @return OK; INVALID_ARGUMENT; SHAPE_MISMATCH; UNSUPPORTED;
 *  BUILD_FAILED; OPENCL. Enqueued. */
GDN_API gdn_status gdn_swa_rope(gdn_context *ctx, const gdn_tensor *x, gdn_tensor *y,
                                const int32_t *seq_offsets, int32_t n_seqs,
                                const int32_t *pos_offsets, float base, int32_t inverse);

/*
 * Decode: a key/value cache per sequence that is a ring buffer of W entries
 * (memory O(W), not O(T)). The cache is made of caller-owned tensors:
 *   k, v   [N, Hkv, W, D] F32   rotated keys (GDN_SWA_ROPE) and values; the
 *                               c-th token appended to sequence n (c from 0)
 *                               lives in entry c % W
 *   len    [N] I32              tokens appended so far to each sequence
 *   pos    [N] I32              RoPE position of each sequence's next token
 * W is the window of the calls (params.window must equal the cache's W, or
 * be 0 when W = GDN_SWA_DEFAULT_WINDOW). Entries of a sequence that were
 * never written are never read, so a new cache needs no clearing beyond
 * gdn_swa_prefill (or len = 0, pos = first position, written by the caller).
 */
typedef struct gdn_swa_cache {
    gdn_tensor *k;           /**< [N, Hkv, W, D] F32                         */
    gdn_tensor *v;           /**< [N, Hkv, W, D] F32                         */
    gdn_tensor *len;         /**< [N] I32                                    */
    gdn_tensor *pos;         /**< [N] I32                                    */
    void       *reserved[4]; /**< must be NULL                               */
} gdn_swa_cache;

/** Prefill: run the forward over the prompts in args (packed or batched, as
 *  gdn_swa_forward) and reset the cache of every sequence n to its prompt:
 *  the last min(L_n, W) keys (rotated with GDN_SWA_ROPE) and values, len[n]
 *  = L_n, pos[n] = pos_offsets[n] + L_n. o (optional: NULL skips the
 *  attention and only fills the cache) and lse (optional) as in
 *  gdn_swa_forward. Prompts may be empty (L_n = 0). @return as
 *  gdn_swa_forward. Enqueued. */
GDN_API gdn_status gdn_swa_prefill(gdn_context *ctx, const gdn_swa_params *params,
                                   const gdn_swa_args *args, const gdn_swa_cache *cache,
                                   gdn_tensor *o, gdn_tensor *lse);

/** Decode step: one new token per sequence. args->q is [N, Hq, D], k and v
 *  [N, Hkv, D] (seq_offsets and pos_offsets must be NULL). For each sequence
 *  the token is rotated at position pos[n] (GDN_SWA_ROPE), its key and value
 *  are written into entry len[n] % W (replacing the token that leaves the
 *  window), o [N, Hq, D] receives its attention over the min(len[n] + 1, W)
 *  cached tokens, and len[n], pos[n] are incremented. Equal to the last row
 *  of a forward over the whole sequence. @return as gdn_swa_forward.
 *  Enqueued. */
GDN_API gdn_status gdn_swa_step(gdn_context *ctx, const gdn_swa_params *params,
                                const gdn_swa_args *args, const gdn_swa_cache *cache,
                                gdn_tensor *o);

/* ------------------------------------------------------------------------ */
/* Dense layers: linear, SwiGLU MLP, token embedding, output head, loss      */
/* ------------------------------------------------------------------------ */
/*
 * All tensors F32 except token ids and targets (I32). Weights use the
 * PyTorch / fla layout: a linear weight is [out, in] (row-major, `in`
 * fastest) and y = x W^T (+ b). Every leading dimension of an activation is
 * a row (token) dimension: x may be [in], [T, in], [B, T, in] or
 * [B, T, H, in], with M = numel(x) / in rows; outputs keep x's leading
 * dimensions. M = 0 (an empty tensor) is allowed and enqueues nothing.
 *
 * Matrix products run through CLBlast SGEMM (fp32 multiply and accumulate,
 * no tf32), behind one internal interface that a faster GEMM can replace.
 * The first product of each shape class in a context compiles CLBlast's
 * kernels (seconds on CPU OpenCL, once). Outputs must not alias inputs unless
 * a function says so.
 *
 * Weight tying (output head = embedding table E [vocab, D]): the head is
 * gdn_linear_forward with w = E; in backward, let the head's
 * gdn_linear_backward write dw = dE, then call gdn_embedding_backward with
 * GDN_LINEAR_ACCUMULATE_DW so the embedding gradient adds to it (or the other
 * way round: both orders give the same sums).
 */

/** Options of the dense ops (flags of gdn_linear_params). */
#define GDN_LINEAR_ACCUMULATE_Y  (1u << 0) /**< forward: y += result (a fused residual add) */
#define GDN_LINEAR_ACCUMULATE_DX (1u << 1) /**< backward: dx += dy W (x feeds several layers) */
#define GDN_LINEAR_ACCUMULATE_DW (1u << 2) /**< backward: dw += dy^T x, db += column sums of dy
                                                (gradient accumulation over micro-batches);
                                                also the embedding table gradient        */

/** Settings of one linear, SwiGLU or embedding call. Fill with
 *  gdn_linear_params_init. Without an ACCUMULATE flag the output is
 *  overwritten (it may hold anything before, NaN included). */
typedef struct gdn_linear_params {
    uint32_t flags;        /**< GDN_LINEAR_ACCUMULATE_*; default 0             */
    uint32_t reserved[15]; /**< must be zero                                  */
} gdn_linear_params;

/** Fill *params with defaults (no flags). */
GDN_API void gdn_linear_params_init(gdn_linear_params *params);

/** Inputs of a linear layer, borrowed for the duration of the call.
 *  Plain: w [out, in], x [..., in], b [out] or NULL; y = x W^T + b is
 *  [..., out]. Grouped (one weight per head, a block-diagonal layer run as a
 *  strided-batched GEMM): w [G, out, in], x [..., G, in], b [G, out] or NULL;
 *  y[..., g, :] = x[..., g, :] W_g^T + b_g is [..., G, out]. */
typedef struct gdn_linear_args {
    const gdn_tensor *x;           /**< [..., in] or [..., G, in]           */
    const gdn_tensor *w;           /**< [out, in] or [G, out, in]           */
    const gdn_tensor *b;           /**< [out] or [G, out], or NULL (no bias) */
    uint32_t          reserved[8]; /**< must be zero                         */
} gdn_linear_args;

/** y = x W^T + b (or y += ... with GDN_LINEAR_ACCUMULATE_Y). params may be
 *  NULL (defaults). y has x's leading dimensions and last dimension `out`
 *  ([..., G, out] when grouped).
 *  @return OK; INVALID_ARGUMENT (NULL, non-zero reserved, unknown flags,
 *  tensors of another context); SHAPE_MISMATCH (shapes or dtypes disagree,
 *  naming the tensor); OUT_OF_DEVICE_MEMORY; BUILD_FAILED; OPENCL; INTERNAL.
 *  Enqueued; returns before the device is done. */
GDN_API gdn_status gdn_linear_forward(gdn_context *ctx, const gdn_linear_params *params,
                                      const gdn_linear_args *args, gdn_tensor *y);

/** Gradients of a linear layer; NULL entries are not computed. dx has x's
 *  shape, dw w's shape, db [out] (or [G, out]) whether or not args->b is
 *  set. dx is overwritten, or added to with GDN_LINEAR_ACCUMULATE_DX; dw
 *  and db are overwritten, or added to with GDN_LINEAR_ACCUMULATE_DW. */
typedef struct gdn_linear_grads {
    gdn_tensor *dx;          /**< dy W                                     */
    gdn_tensor *dw;          /**< dy^T x (summed over every row)           */
    gdn_tensor *db;          /**< column sums of dy                        */
    void       *reserved[4]; /**< must be NULL                             */
} gdn_linear_grads;

/** Backward of gdn_linear_forward: dy has y's shape. args->x is needed for
 *  dw, args->w always (it fixes the shapes); args->b is not read. Column sums
 *  and GEMM reductions run in a fixed order: results are deterministic.
 *  @return as gdn_linear_forward. */
GDN_API gdn_status gdn_linear_backward(gdn_context *ctx, const gdn_linear_params *params,
                                       const gdn_linear_args *args, const gdn_tensor *dy,
                                       const gdn_linear_grads *grads);

/* ---- SwiGLU MLP (fla GatedMLP, xformers SwiGLU, bias-free) ------------- */

/** Inputs of the MLP y = W_down (silu(W_gate x) * (W_up x)), borrowed for the
 *  call (and, when a tape is recorded, until the tape is destroyed). D is the
 *  model width, F the hidden width (e.g. 6144 at D = 1536), D_out normally D.
 *  silu(a) = a * sigmoid(a). */
typedef struct gdn_swiglu_args {
    const gdn_tensor *x;           /**< [..., D]                           */
    const gdn_tensor *w_gate;      /**< [F, D]                             */
    const gdn_tensor *w_up;        /**< [F, D]                             */
    const gdn_tensor *w_down;      /**< [D_out, F]                         */
    uint32_t          reserved[8]; /**< must be zero                        */
} gdn_swiglu_args;

/** What the MLP forward saves for backward: the two hidden pre-activations
 *  W_gate x and W_up x (2 F floats per row; 48 KiB per token at F = 6144).
 *  Owned by the caller; destroy it (before the context) with
 *  gdn_swiglu_tape_destroy. It borrows args->x and the three weights: keep
 *  them alive and unchanged until the last backward has been enqueued. A
 *  tape may serve several backward calls. */
typedef struct gdn_swiglu_tape gdn_swiglu_tape;

GDN_API void gdn_swiglu_tape_destroy(gdn_swiglu_tape *tape); /**< NULL: no-op */

/** MLP forward: y [..., D_out] (x's leading dimensions) is written, or added
 *  to with GDN_LINEAR_ACCUMULATE_Y (fused residual add). When tape is not
 *  NULL, *tape receives a new tape for backward (NULL on failure).
 *  Temporary device memory: F floats per row (plus the tape's 2 F when
 *  recorded, else one more F).
 *  @return as gdn_linear_forward. */
GDN_API gdn_status gdn_swiglu_forward(gdn_context *ctx, const gdn_linear_params *params,
                                      const gdn_swiglu_args *args, gdn_tensor *y,
                                      gdn_swiglu_tape **tape);

/** Gradients of the MLP; NULL entries are not computed (the shared work is
 *  done once either way). Each has its input's shape. dx follows
 *  GDN_LINEAR_ACCUMULATE_DX, the weights GDN_LINEAR_ACCUMULATE_DW. */
typedef struct gdn_swiglu_grads {
    gdn_tensor *dx;          /**< [..., D]                                 */
    gdn_tensor *dw_gate;     /**< [F, D]                                   */
    gdn_tensor *dw_up;       /**< [F, D]                                   */
    gdn_tensor *dw_down;     /**< [D_out, F]                               */
    void       *reserved[4]; /**< must be NULL                             */
} gdn_swiglu_grads;

/** MLP backward from tape; dy has y's shape. Temporary device memory: 3 F
 *  floats per row. params: the ACCUMULATE_DX / _DW flags (NULL: none).
 *  @return as gdn_linear_forward; INVALID_ARGUMENT also for a tape of
 *  another context. */
GDN_API gdn_status gdn_swiglu_backward(gdn_context *ctx, const gdn_linear_params *params,
                                       const gdn_swiglu_tape *tape, const gdn_tensor *dy,
                                       const gdn_swiglu_grads *grads);

/* ---- token embedding ------------------------------------------------- */

/** y[..., :] = table[ids[...], :]: table [vocab, D] F32, ids I32 of any shape
 *  [...] (1 to 3 dimensions), y [..., D]. An id outside [0, vocab) gives a
 *  row of NaN (loud rather than silently wrong). params: ACCUMULATE_Y adds
 *  to y (e.g. a learned position embedding); NULL: defaults.
 *  @return as gdn_linear_forward. */
GDN_API gdn_status gdn_embedding_forward(gdn_context *ctx, const gdn_linear_params *params,
                                         const gdn_tensor *table, const gdn_tensor *ids,
                                         gdn_tensor *y);

/** dtable [vocab, D] = sum over tokens t with ids[t] = v of dy[t, :], for
 *  every row v (rows no token uses get 0), or added to dtable with
 *  GDN_LINEAR_ACCUMULATE_DW (weight tying, gradient accumulation). ids as in
 *  forward (ids outside [0, vocab) are skipped), dy [..., D]. Deterministic:
 *  each row sums its tokens in increasing token order (a counting sort on
 *  the device, no float atomics). Temporary device memory: 2 vocab + 2 T
 *  ints. Cost: one pass over dy and dtable, plus sum over ids of n_id^2
 *  integer compares (n_id = occurrences of the id), so a batch that is one
 *  token repeated T times costs T^2 compares.
 *  @return as gdn_linear_forward. */
GDN_API gdn_status gdn_embedding_backward(gdn_context *ctx, const gdn_linear_params *params,
                                          const gdn_tensor *ids, const gdn_tensor *dy,
                                          gdn_tensor *dtable);

/* ---- cross-entropy loss --------------------------------------------- */

/** Options of the cross-entropy loss. */
#define GDN_CROSS_ENTROPY_SUM (1u << 0) /**< loss = sum over counted tokens (default: mean) */

/** Settings of the loss. Fill with gdn_cross_entropy_params_init. */
typedef struct gdn_cross_entropy_params {
    int32_t  ignore_index; /**< targets equal to it are skipped; default -100  */
    uint32_t flags;        /**< GDN_CROSS_ENTROPY_*; default 0 (mean)          */
    uint32_t reserved[14]; /**< must be zero                                  */
} gdn_cross_entropy_params;

/** Fill *params with defaults (ignore_index -100, mean). */
GDN_API void gdn_cross_entropy_params_init(gdn_cross_entropy_params *params);

/** Outputs of the forward. loss is required; the rest may be NULL. */
typedef struct gdn_cross_entropy_out {
    gdn_tensor *loss;        /**< F32 [1]: mean over counted tokens of
                                  lse(row) - logit[target] (sum with
                                  GDN_CROSS_ENTROPY_SUM); 0 if none counted */
    gdn_tensor *count;       /**< I32 [1]: number of counted tokens        */
    gdn_tensor *lse;         /**< F32 [...] (targets' shape): log-sum-exp of
                                  each row, for backward                    */
    gdn_tensor *row_loss;    /**< F32 [...]: per-token loss, 0 if ignored  */
    void       *reserved[4]; /**< must be NULL                             */
} gdn_cross_entropy_out;

/** Cross-entropy of logits [..., vocab] against targets I32 [...] (the same
 *  leading dimensions; 1 to 3 of them): -log softmax(logits)[target], over
 *  tokens whose target is not params->ignore_index. The log-sum-exp is
 *  max-subtracted in fp32 (logits of any magnitude are safe; -inf logits are
 *  allowed), one work-group per row, reduced in a fixed order (deterministic).
 *  A target outside [0, vocab) that is not ignore_index makes that row's
 *  loss, and so the mean, NaN. vocab up to 2^31 - 1.
 *  @return as gdn_linear_forward. */
GDN_API gdn_status gdn_cross_entropy_forward(gdn_context *ctx,
                                             const gdn_cross_entropy_params *params,
                                             const gdn_tensor *logits, const gdn_tensor *targets,
                                             const gdn_cross_entropy_out *out);

/** dlogits = (softmax(logits) - onehot(target)) * dloss / count (mean) or
 *  * dloss (sum); rows of ignored targets are 0, rows of out-of-range
 *  targets NaN. lse: the forward's lse output, or NULL to recompute it (one
 *  more pass over the logits). dloss: F32 [1] on the device, or NULL for 1.
 *  dlogits has logits' shape and may be the same tensor as logits (in
 *  place: saves vocab floats per row). count is recomputed from targets.
 *  @return as gdn_linear_forward. */
GDN_API gdn_status gdn_cross_entropy_backward(gdn_context *ctx,
                                              const gdn_cross_entropy_params *params,
                                              const gdn_tensor *logits, const gdn_tensor *targets,
                                              const gdn_tensor *lse, const gdn_tensor *dloss,
                                              gdn_tensor *dlogits);

/* ------------------------------------------------------------------------ */
/* Mamba2 (SSD) mixer core, op level                                        */
/* ------------------------------------------------------------------------ */
/*
 * The selective state-space recurrence of Mamba2 (mamba_ssm's
 * mamba_chunk_scan_combined / ssd_minimal, with dt_softplus = True). Per
 * sequence and head h, reading B/C group g = h / (H/G), state S in
 * R^{P x DS}:
 *
 *     dt_t = min(max(softplus(dt_raw_t + dt_bias_h), dt_min), dt_max)
 *     A_h  = -exp(A_log_h)
 *     S_t  = exp(dt_t A_h) S_{t-1} + dt_t x_t B_t^T
 *     y_t  = S_t C_t + D_h x_t
 *
 * softplus(v) = v for v > 20 (as torch). Where the clamp is active the
 * gradient of dt_raw is 0 (as mamba_ssm).
 *
 * Tensors (all F32; packed layout, or batched with a leading B):
 *   x         [T, H, P]     or [B, T_b, H, P]     head inputs
 *   dt        [T, H]        or [B, T_b, H]        raw dt (before bias/softplus)
 *   A_log     [H]                                 A = -exp(A_log)
 *   dt_bias   [H]           optional (NULL: 0)
 *   B, C      [T, G, DS]    or [B, T_b, G, DS]    input / output projections
 *   D         [H]           optional skip (NULL: none)
 *   h0, ht    [N, H, P, DS] initial / final state per sequence, row-major
 *                           with DS fastest: h[n][h][p][s] (mamba_ssm's
 *                           (batch, nheads, headdim, dstate))
 *   y         [T, H, P]     or [B, T_b, H, P]
 * Sequences: with 4-D x, N = B sequences of T_b tokens. With 3-D x,
 * seq_offsets (N + 1 entries, host memory, copied) packs N variable-length
 * sequences along T (lengths may be 0 or 1); NULL means one sequence.
 *
 * Dimensions: P (head dim) and DS (state size) multiples of 16 from 16 to
 * 256 (DS = 64 and 128, P = 64 are the fastest); H a multiple of G;
 * H, G <= 4096. Chunked scan with chunk size 64 (default), 128 or 256.
 */

/** Settings of one Mamba2 call. Fill with gdn_mamba2_params_init. */
typedef struct gdn_mamba2_params {
    float    dt_min;       /**< lower clamp of dt; 0 (default): none          */
    float    dt_max;       /**< upper clamp of dt; 0 (default) or +inf: none;
                                else must be > dt_min                        */
    int32_t  chunk_size;   /**< 0 (default): the library's choice (64); else
                                64, 128 or 256. Results agree to rounding.   */
    uint32_t reserved[13]; /**< must be zero                                 */
} gdn_mamba2_params;

/** Fill *params with defaults (no clamp, default chunk size). */
GDN_API void gdn_mamba2_params_init(gdn_mamba2_params *params);

/** The inputs of one call. Tensors are borrowed for the duration of the call
 *  (and, when a tape is recorded, until the tape is destroyed). */
typedef struct gdn_mamba2_args {
    const gdn_tensor *x;           /**< [T, H, P]                              */
    const gdn_tensor *dt;          /**< [T, H] raw dt                          */
    const gdn_tensor *A_log;       /**< [H]                                    */
    const gdn_tensor *dt_bias;     /**< [H] or NULL (zero bias)                */
    const gdn_tensor *B;           /**< [T, G, DS]                             */
    const gdn_tensor *C;           /**< [T, G, DS]                             */
    const gdn_tensor *D;           /**< [H] or NULL (no skip term)             */
    const gdn_tensor *h0;          /**< [N, H, P, DS] or NULL (zero state)     */
    const int32_t    *seq_offsets; /**< N + 1 host ints (3-D tensors) or NULL  */
    int32_t           n_seqs;      /**< N when seq_offsets is set, else 0      */
    uint32_t          reserved[7]; /**< must be zero                           */
} gdn_mamba2_args;

/** What forward saves for backward: dt after softplus/clamp and the
 *  chunk-local cumulative decay (8 bytes per token and head, plus 4 per
 *  chunk and head), the sequence
 *  tables, and borrowed references to x, dt, A_log, dt_bias, B, C, D and h0:
 *  keep those alive and unchanged until backward has been enqueued. Owned by
 *  the caller; destroy with gdn_mamba2_tape_destroy (before the context). */
typedef struct gdn_mamba2_tape gdn_mamba2_tape;

GDN_API void gdn_mamba2_tape_destroy(gdn_mamba2_tape *tape);

/** Chunked forward (training and prefill). y (required) and ht (optional,
 *  [N, H, P, DS]; must not alias h0) are written. When tape is not NULL,
 *  *tape receives a new tape for backward (NULL on failure).
 *  @return OK; INVALID_ARGUMENT (NULL, bad offsets, non-zero reserved, bad
 *  clamp or chunk size, aliasing); SHAPE_MISMATCH; UNSUPPORTED (P, DS,
 *  device limits); OUT_OF_DEVICE_MEMORY; OUT_OF_HOST_MEMORY; BUILD_FAILED;
 *  OPENCL. Enqueued; returns before the device is done. */
GDN_API gdn_status gdn_mamba2_forward(gdn_context *ctx, const gdn_mamba2_params *params,
                                      const gdn_mamba2_args *args, gdn_tensor *y, gdn_tensor *ht,
                                      gdn_mamba2_tape **tape);

/** Gradients written by backward. Every non-NULL tensor is overwritten with
 *  the gradient of the same shape as its input: dx [T, H, P]; ddt [T, H]
 *  (w.r.t. raw dt); dA_log [H]; ddt_bias [H] (needs dt_bias); dB, dC
 *  [T, G, DS] (summed over the heads of each group); dD [H] (needs D);
 *  dh0 [N, H, P, DS] (allowed without h0: the gradient of a zero initial
 *  state). NULL entries are not written. Per-head parameter gradients are
 *  reduced in a fixed order (bitwise reproducible, no atomics). */
typedef struct gdn_mamba2_grads {
    gdn_tensor *dx;
    gdn_tensor *ddt;
    gdn_tensor *dA_log;
    gdn_tensor *ddt_bias;
    gdn_tensor *dB;
    gdn_tensor *dC;
    gdn_tensor *dD;
    gdn_tensor *dh0;
    void       *reserved[4]; /**< must be NULL */
} gdn_mamba2_grads;

/** Backward of the forward recorded in tape for loss gradients dy [like y]
 *  and dht [N, H, P, DS] (NULL: the final state was not used). Chunk states
 *  are recomputed. A tape may be used for several backward calls. Gradient
 *  tensors must not alias the inputs, dy, dht or each other.
 *  @return as gdn_mamba2_forward. */
GDN_API gdn_status gdn_mamba2_backward(gdn_context *ctx, const gdn_mamba2_tape *tape,
                                       const gdn_tensor *dy, const gdn_tensor *dht,
                                       const gdn_mamba2_grads *grads);

/** Decode: one token for each of N sequences, updating state [N, H, P, DS]
 *  in place (mamba_ssm selective_state_update). args->x is [N, H, P]; dt
 *  [N, H]; B, C [N, G, DS]; A_log, dt_bias, D as above; args->h0 and
 *  seq_offsets must be NULL. y is [N, H, P]. params: only dt_min/dt_max are
 *  used. @return as gdn_mamba2_forward. */
GDN_API gdn_status gdn_mamba2_step(gdn_context *ctx, const gdn_mamba2_params *params,
                                   const gdn_mamba2_args *args, gdn_tensor *state, gdn_tensor *y);

/* ------------------------------------------------------------------------ */
/* Layer ops: norms                                                         */
/* ------------------------------------------------------------------------ */
/*
 * Norms over the last dimension D of a tensor x of any shape [..., D], or,
 * with params.group_size = G > 0, over each group of G consecutive elements
 * of the last dimension (D must be a multiple of G; group i of a row covers
 * elements i G .. i G + G - 1 and uses weight w[i G .. i G + G - 1]). Call
 * one group a "row"; with G = D (the default) the rows are the rows of x.
 * Per row, with n = G and s = silu(g) = g sigmoid(g):
 *
 *   GDN_NORM_L2              y = x / sqrt(sum x^2 + eps)
 *   GDN_NORM_RMS             y = x / sqrt(sum x^2 / n + eps) * w
 *   GDN_NORM_RMS_GATED       y = x / sqrt(sum x^2 / n + eps) * w * silu(g)
 *                            (fla FusedRMSNormGated, the GDN output norm:
 *                            norm per head over V, then gate)
 *   GDN_NORM_RMS_GATE_FIRST  u = x * silu(g);  y = u / sqrt(sum u^2 / n + eps) * w
 *                            (Mamba2 RMSNormGated, norm_before_gate=False,
 *                            with group_size = d_inner / n_groups)
 *
 * Tensors (all F32, dense):
 *   x, y        [..., D]   any shape of 1 to 4 dims (numel 0 is a no-op)
 *   weight      [D]        RMS types; NULL means no weight (w = 1). Must be
 *                          NULL for L2.
 *   gate        like x     the g of the two gated types; NULL otherwise
 * The normalised size G (= D by default) must be in [1, 8192] (UNSUPPORTED
 * otherwise); 64 .. 4096 is the fast range. y may be x (in place).
 *
 * Nothing is saved for backward: the backward recomputes the norm from x.
 */

/** Which norm (gdn_norm_params.type). */
typedef enum gdn_norm_type {
    GDN_NORM_L2             = 0, /**< x / sqrt(sum x^2 + eps)                   */
    GDN_NORM_RMS            = 1, /**< x * rsqrt(mean x^2 + eps) * w             */
    GDN_NORM_RMS_GATED      = 2, /**< rmsnorm(x) * w * silu(gate)               */
    GDN_NORM_RMS_GATE_FIRST = 3  /**< rmsnorm(x * silu(gate)) * w               */
} gdn_norm_type;

/** Settings of one norm call. Fill with gdn_norm_params_init. */
typedef struct gdn_norm_params {
    gdn_norm_type type;         /**< default GDN_NORM_RMS                        */
    float         eps;          /**< added to sum x^2 (L2) or mean x^2 (RMS);
                                     0 (default): 1e-6. Must be finite, >= 0.  */
    int32_t       group_size;   /**< G; 0 (default): the whole last dim        */
    uint32_t      reserved[13]; /**< must be zero                              */
} gdn_norm_params;

/** Fill *params with defaults (RMS, eps 1e-6, whole last dim). */
GDN_API void gdn_norm_params_init(gdn_norm_params *params);

/** Inputs of a norm call, borrowed for the duration of the call. */
typedef struct gdn_norm_args {
    const gdn_tensor *x;           /**< [..., D]                                */
    const gdn_tensor *weight;      /**< [D] or NULL (RMS types only)            */
    const gdn_tensor *gate;        /**< like x (gated types), else NULL         */
    uint32_t          reserved[8]; /**< must be zero                            */
} gdn_norm_args;

/** Forward: y (required, like x) = norm(x). params may be NULL (defaults).
 *  @return OK; INVALID_ARGUMENT (NULL, non-zero reserved, bad type or eps,
 *  weight with L2, gate missing or given when the type does not use it,
 *  y aliasing weight or gate); SHAPE_MISMATCH (x not F32, other shapes,
 *  group_size not dividing D); UNSUPPORTED (G > 8192, or nothing fits the
 *  device); BUILD_FAILED; OPENCL. Enqueued; returns before the device is
 *  done. */
GDN_API gdn_status gdn_norm_forward(gdn_context *ctx, const gdn_norm_params *params,
                                    const gdn_norm_args *args, gdn_tensor *y);

/** Gradients written by gdn_norm_backward. Non-NULL entries are overwritten:
 *  dx like x; dweight [D] (summed over all rows in a fixed order: the result
 *  is bit-identical from run to run; no atomics); dgate like x (gated types
 *  only). NULL entries are not computed. */
typedef struct gdn_norm_grads {
    gdn_tensor *dx;
    gdn_tensor *dweight;     /**< needs args.weight                              */
    gdn_tensor *dgate;       /**< needs args.gate                                */
    void       *reserved[4]; /**< must be NULL                                   */
} gdn_norm_grads;

/** Backward of gdn_norm_forward with the same params and args: dy is like x.
 *  dx may be dy (in place); no other output may alias an input. With
 *  dweight, allocates a temporary device buffer for per-work-group partial
 *  sums of at most max(4 x compute units, D / G) x max(1024, G) floats
 *  (2 MiB to 17 MiB on a 132-CU GPU), released when the work is done.
 *  @return as gdn_norm_forward; OUT_OF_DEVICE_MEMORY (scratch). */
GDN_API gdn_status gdn_norm_backward(gdn_context *ctx, const gdn_norm_params *params,
                                     const gdn_norm_args *args, const gdn_tensor *dy,
                                     const gdn_norm_grads *grads);

/* ------------------------------------------------------------------------ */
/* Layer ops: element-wise                                                  */
/* ------------------------------------------------------------------------ */

/** Element-wise activations, with s = sigmoid(x) = 1 / (1 + exp(-x)). */
typedef enum gdn_activation {
    GDN_ACTIVATION_SILU     = 0, /**< x s;          d/dx = s (1 + x (1 - s))        */
    GDN_ACTIVATION_SIGMOID  = 1, /**< s;            d/dx = s (1 - s)                */
    GDN_ACTIVATION_SOFTPLUS = 2  /**< log(1 + e^x), = x when x > 20 (PyTorch's
                                      threshold); d/dx = s, = 1 when x > 20        */
} gdn_activation;

/** y = act(x) element by element. x and y are F32 tensors of the same shape
 *  (any shape; numel 0 is a no-op); y may be x (in place).
 *  @return OK; INVALID_ARGUMENT (NULL, unknown act); SHAPE_MISMATCH;
 *  BUILD_FAILED; OPENCL. Enqueued. */
GDN_API gdn_status gdn_activation_forward(gdn_context *ctx, gdn_activation act,
                                          const gdn_tensor *x, gdn_tensor *y);

/** dx = dy * act'(x), where x is the forward's INPUT (not its output). All
 *  three F32 of one shape; dx may be dy (in place), not x.
 *  @return as gdn_activation_forward. */
GDN_API gdn_status gdn_activation_backward(gdn_context *ctx, gdn_activation act,
                                           const gdn_tensor *x, const gdn_tensor *dy,
                                           gdn_tensor *dx);

/** Residual add y = a + b, all F32 of one shape; y may be a or b (in place:
 *  gdn_residual_add(ctx, h, f, h) is h += f). The backward is the identity
 *  (da = db = dy), so it has no function of its own.
 *  @return as gdn_activation_forward. */
GDN_API gdn_status gdn_residual_add(gdn_context *ctx, const gdn_tensor *a, const gdn_tensor *b,
                                    gdn_tensor *y);

/* ------------------------------------------------------------------------ */
/* Layer ops: causal depthwise short convolution                            */
/* ------------------------------------------------------------------------ */
/*
 * The short convolution in front of the GDN q/k/v (fla ShortConvolution)
 * and of Mamba2's xBC (causal_conv1d): per channel c, within each sequence,
 *
 *     y_t[c] = act(sum_{w < W} weight[c, w] * x_{t-W+1+w}[c] + bias[c])
 *
 * where positions before the sequence's first token read its initial conv
 * state (or zero), and act is SiLU with GDN_CONV_SILU, else the identity.
 * Inputs never leak from one sequence into the next.
 *
 * Conv state: the last W-1 raw (pre-convolution) inputs of a sequence per
 * channel, oldest first: state[n, c, W-2] is the newest. (fla keeps W
 * entries; its first one is never used.) The final state of a sequence of
 * length L < W-1 is [the newest W-1-L entries of its initial state (zeros
 * without one), its L inputs].
 *
 * Tensors (all F32, dense):
 *   x, y            [T, C] packed (with seq_offsets) or [B, T_b, C] batched
 *   weight          [C, W]        W in 2..8 (4 in every model here)
 *   bias            [C] or NULL
 *   initial_state,
 *   final_state     [N, C, W-1]   N = n_seqs (packed) or B (batched)
 * Sequences: with 3-D tensors N = B sequences of T_b tokens; with 2-D
 * tensors seq_offsets (N + 1 host ints, copied; offsets[0] = 0,
 * offsets[N] = T, non-decreasing; empty sequences allowed) packs N
 * sequences along T, and NULL means one sequence of T tokens.
 */

/** Options of the short convolution (flags). */
#define GDN_CONV_SILU (1u << 0) /**< y = silu(conv + bias) (fla activation 'silu') */

/** Settings of one call. Fill with gdn_conv_params_init. */
typedef struct gdn_conv_params {
    uint32_t flags;        /**< GDN_CONV_*; default 0 (no activation)       */
    uint32_t reserved[15]; /**< must be zero                                 */
} gdn_conv_params;

/** Fill *params with defaults (no activation). */
GDN_API void gdn_conv_params_init(gdn_conv_params *params);

/** The inputs of one call, borrowed for its duration. */
typedef struct gdn_conv_args {
    const gdn_tensor *x;             /**< [T, C] or [B, T_b, C]                  */
    const gdn_tensor *weight;        /**< [C, W]                                 */
    const gdn_tensor *bias;          /**< [C] or NULL (zero)                     */
    const gdn_tensor *initial_state; /**< [N, C, W-1] or NULL (zeros)            */
    const int32_t    *seq_offsets;   /**< N + 1 host ints (2-D x) or NULL        */
    int32_t           n_seqs;        /**< N when seq_offsets is set, else 0      */
    uint32_t          reserved[7];   /**< must be zero                           */
} gdn_conv_args;

/** Forward (training and prefill). y (required) is like x; final_state
 *  ([N, C, W-1]) is written when not NULL and may be args.initial_state
 *  (then the state is updated in place, as a prefill into a cache does).
 *  y must not alias x. params may be NULL (defaults).
 *  @return OK; INVALID_ARGUMENT (NULL, bad offsets, non-zero reserved,
 *  unknown flags, aliasing); SHAPE_MISMATCH; UNSUPPORTED (W outside 2..8,
 *  sizes beyond 2^31 - 1 elements per dim); OUT_OF_DEVICE_MEMORY;
 *  BUILD_FAILED; OPENCL. Enqueued; returns before the device is done. */
GDN_API gdn_status gdn_conv_forward(gdn_context *ctx, const gdn_conv_params *params,
                                    const gdn_conv_args *args, gdn_tensor *y,
                                    gdn_tensor *final_state);

/** Gradients written by gdn_conv_backward; non-NULL entries are
 *  overwritten, NULL ones are not computed. dx like x; dweight [C, W] and
 *  dbias [C] (each summed over all tokens in a fixed order: bit-identical
 *  from run to run, no atomics; dbias is the gradient w.r.t. the bias even
 *  when args.bias is NULL); dinitial_state [N, C, W-1] (w.r.t. the initial
 *  state, also when args.initial_state is NULL). */
typedef struct gdn_conv_grads {
    gdn_tensor *dx;
    gdn_tensor *dweight;
    gdn_tensor *dbias;
    gdn_tensor *dinitial_state;
    void       *reserved[4]; /**< must be NULL */
} gdn_conv_grads;

/** Backward of gdn_conv_forward with the same params and args (the
 *  pre-activation is recomputed from x). dy is like x; dfinal_state
 *  [N, C, W-1] is the gradient w.r.t. the final state, or NULL (unused).
 *  Gradients must not alias inputs or each other. With dweight or dbias,
 *  allocates a temporary device buffer of (W + 1) * C floats per chunk
 *  (chunks are 8 to 64 tokens of one sequence: at most (T / 8 + N) chunks),
 *  released when the work is done. @return as gdn_conv_forward. */
GDN_API gdn_status gdn_conv_backward(gdn_context *ctx, const gdn_conv_params *params,
                                     const gdn_conv_args *args, const gdn_tensor *dy,
                                     const gdn_tensor *dfinal_state,
                                     const gdn_conv_grads *grads);

/** Decode: one token for each of N sequences. args->x is [N, C], weight and
 *  bias as above; args->initial_state and seq_offsets must be NULL. state
 *  [N, C, W-1] is read and updated in place (shifted by one, x appended);
 *  y [N, C] (may be args->x) receives the outputs. The result equals the
 *  last row of gdn_conv_forward over the whole history.
 *  @return as gdn_conv_forward. */
GDN_API gdn_status gdn_conv_step(gdn_context *ctx, const gdn_conv_params *params,
                                 const gdn_conv_args *args, gdn_tensor *state, gdn_tensor *y);


/* ------------------------------------------------------------------------ */
/* Models: Gated DeltaNet, H1 and H2 hybrid stacks                          */
/* ------------------------------------------------------------------------ */
/*
 * A causal language model: token embedding, a stack of blocks, a final
 * RMSNorm and the output head (fla's GatedDeltaNetForCausalLM layout). Each
 * block is pre-norm:
 *
 *     x = x + mixer(rmsnorm(x));   x = x + swiglu_mlp(rmsnorm(x))
 *
 * and its mixer is one of
 *   'g'  Gated DeltaNet (fla GatedDeltaNet): q, k, v, a, b, g projections;
 *        causal conv (kernel conv_size) + SiLU on q, k and v; L2-normalised
 *        q and k; beta = sigmoid(b) (2 sigmoid(b) with allow_neg_eigval);
 *        gate = -exp(A_log) softplus(a + dt_bias); the gated delta rule; an
 *        RMSNorm per value head gated by SiLU(g); the output projection.
 *   's'  sliding-window attention (fla Attention): q, k, v projections,
 *        RoPE, causal attention over the last `window` tokens, output
 *        projection.
 *   'm'  Mamba2 (mamba_ssm Mamba2): one in-projection split into z, x, B,
 *        C, dt; causal conv (with bias) + SiLU on x, B, C; the SSD scan with
 *        the D skip; RMSNorm of y * SiLU(z) per group; out-projection.
 * Layer kinds are given as a string, one letter per layer: "gggg" is pure
 * Gated DeltaNet, "gsgs" H1, "mgsmgs" H2 (Mamba2 -> GDN -> SWA).
 *
 * All parameters, activations, gradients and optimizer moments are F32.
 * Token ids are I32. A batch is packed (ids [T] with seq_offsets, N + 1
 * host ints) or batched (ids [B, T_b]); logits then have the ids' shape
 * plus a last dimension vocab.
 */

typedef struct gdn_model       gdn_model;       /**< parameters, gradients, optimizer state */
typedef struct gdn_model_tape  gdn_model_tape;  /**< what forward saved for backward        */
typedef struct gdn_model_state gdn_model_state; /**< inference caches of N sequences        */

/** Largest number of layers of a model. */
#define GDN_MODEL_MAX_LAYERS 128

/** Description of a model. Fill with gdn_model_config_preset (or
 *  gdn_model_config_init and set every field). Fields that are 0 take the
 *  value given in their comment. */
typedef struct gdn_model_config {
    char    layers[GDN_MODEL_MAX_LAYERS + 1]; /**< one of 'g','s','m' per layer   */
    int32_t vocab;           /**< vocabulary size                               */
    int32_t d_model;         /**< D, the width of the residual stream           */
    int32_t mlp_hidden;      /**< F; 0: 256 ceil(8 D / 3 / 256) (fla's rule)    */
    int32_t tie_embeddings;  /**< 1: the head is the embedding table            */
    float   norm_eps;        /**< block and final RMSNorms; 0: 1e-6             */
    float   init_range;      /**< std of the normal initialisation; 0: 0.02     */
    /* Gated DeltaNet layers */
    int32_t gdn_heads;       /**< H (q/k heads)                                 */
    int32_t gdn_v_heads;     /**< HV (value heads, a multiple of H); 0: H       */
    int32_t gdn_head_k;      /**< K, multiple of 16 in [16, 256]                */
    int32_t gdn_head_v;      /**< V, multiple of 16 in [16, 1024] (above 256 run
                                  as several op-level value heads)           */
    int32_t gdn_conv;        /**< short conv kernel size in [2, 8]; 0: 4        */
    int32_t gdn_neg_eigval;  /**< 1: beta = 2 sigmoid(b)                        */
    float   gdn_norm_eps;    /**< the output RMSNorm; 0: 1e-5                   */
    /* sliding-window attention layers */
    int32_t swa_heads;       /**< query heads                                   */
    int32_t swa_kv_heads;    /**< key/value heads (dividing swa_heads); 0: same */
    int32_t swa_head_dim;    /**< multiple of 16 in [16, 256]                   */
    int32_t swa_window;      /**< W; 0: GDN_SWA_DEFAULT_WINDOW                  */
    float   rope_base;       /**< 0: 10000                                      */
    /* Mamba2 layers */
    int32_t m2_heads;        /**< H; d_inner = H * m2_head_dim                  */
    int32_t m2_head_dim;     /**< P, multiple of 16 in [16, 256]                */
    int32_t m2_state;        /**< DS (d_state), multiple of 16 in [16, 256]     */
    int32_t m2_groups;       /**< G (n_groups, dividing H); 0: 1                */
    int32_t m2_conv;         /**< conv kernel size in [2, 8]; 0: 4              */
    float   m2_norm_eps;     /**< the gated RMSNorm; 0: 1e-5                    */
    uint32_t reserved[32];   /**< must be zero                                  */
} gdn_model_config;

/** Zero *cfg (every optional field then takes its default). */
GDN_API void gdn_model_config_init(gdn_model_config *cfg);

/** Fill *cfg with a named preset:
 *   "tiny-gdn", "tiny-h1", "tiny-h2"   tests and CPUs (D = 64, 2 to 3 layers)
 *   "small-h1"                         the main job's byte-level model
 *   "gdn-0.4b", "h1-0.4b", "h2-0.4b"   the paper's 0.4B shapes (D = 1536)
 *   "gdn-1.3b", "h1-1.3b", "h2-1.3b"   the paper's 1.3B shapes
 * with vocab 32000 for the paper's shapes (set vocab after the call to
 * change it). The README lists each preset's fields and where they differ
 * from the released configs (head dims above 256 are split into more heads
 * of the same total width). @return OK; INVALID_ARGUMENT (NULL or unknown
 * name). */
GDN_API gdn_status gdn_model_config_preset(const char *name, gdn_model_config *cfg);

/** Create a model on ctx with parameters initialised as fla does (normal
 *  init_range for linears and embeddings, output projections scaled by
 *  1 / sqrt(2 layers), norms 1, A_log and dt_bias from their ranges, conv
 *  weights uniform +-1/sqrt(kernel size)), drawn from seed. Gradients start
 *  at zero, the optimizer at step 0.
 *  @return OK; INVALID_ARGUMENT (NULL, bad config with the field named);
 *  UNSUPPORTED (head dims); OUT_OF_DEVICE_MEMORY; OUT_OF_HOST_MEMORY. */
GDN_API gdn_status gdn_model_create(gdn_context *ctx, const gdn_model_config *cfg, uint64_t seed,
                                    gdn_model **out);

GDN_API void gdn_model_destroy(gdn_model *model); /**< NULL: no-op */

/** The model's configuration, with every default filled in. */
GDN_API gdn_status gdn_model_get_config(const gdn_model *model, gdn_model_config *cfg);

/** Number of parameters (elements over all parameter tensors). */
GDN_API int64_t gdn_model_param_count(const gdn_model *model);

/** A batch of token ids, borrowed for the call. */
typedef struct gdn_model_batch {
    const gdn_tensor *ids;         /**< I32 [T] (packed) or [B, T_b]         */
    const int32_t    *seq_offsets; /**< N + 1 host ints for packed ids, or
                                        NULL (one sequence)                  */
    int32_t           n_seqs;      /**< N when seq_offsets is set, else 0    */
    uint32_t          reserved[7]; /**< must be zero                         */
} gdn_model_batch;

/** Forward over a batch: logits [..., vocab] (the ids' shape plus vocab) are
 *  written. With tape, *tape receives what backward needs (activations of
 *  every layer; it borrows the model and batch->ids until destroyed).
 *  @return OK; INVALID_ARGUMENT; SHAPE_MISMATCH; OUT_OF_DEVICE_MEMORY;
 *  BUILD_FAILED; OPENCL. Enqueued. */
GDN_API gdn_status gdn_model_forward(gdn_model *model, const gdn_model_batch *batch,
                                     gdn_tensor *logits, gdn_model_tape **tape);

GDN_API void gdn_model_tape_destroy(gdn_model_tape *tape); /**< NULL: no-op */

/** Backward from the gradient of the loss w.r.t. the logits (dlogits, like
 *  logits). The parameter gradients are ADDED to the model's gradient
 *  buffers (gradient accumulation over micro-batches; see
 *  gdn_model_zero_grad). A tape serves one backward call.
 *  @return as gdn_model_forward. */
GDN_API gdn_status gdn_model_backward(gdn_model *model, gdn_model_tape *tape,
                                      const gdn_tensor *dlogits);

/** Set every gradient buffer to zero. @return OK; OPENCL. */
GDN_API gdn_status gdn_model_zero_grad(gdn_model *model);

/** Copy the value (grad = 0) or the gradient (grad = 1) of the parameter
 *  called name (fla's checkpoint name, e.g.
 *  "model.layers.0.attn.q_proj.weight") into host memory dst of cap floats.
 *  gdn_model_param_write sets the value from n floats at src (n must be the
 *  parameter's element count). Both block.
 *  @return OK; INVALID_ARGUMENT (unknown name, cap or n wrong); OPENCL. */
GDN_API gdn_status gdn_model_param_read(gdn_model *model, const char *name, int32_t grad,
                                        float *dst, size_t cap);
GDN_API gdn_status gdn_model_param_write(gdn_model *model, const char *name, const float *src,
                                         size_t n);
/** Name and element count of parameter i in [0, gdn_model_param_tensors).
 *  The name is owned by the model. @return OK; INVALID_ARGUMENT. */
GDN_API int32_t    gdn_model_param_tensors(const gdn_model *model);
GDN_API gdn_status gdn_model_param_info(const gdn_model *model, int32_t i, const char **name,
                                        int64_t *numel);

/** AdamW with decoupled weight decay, gradient clipping by global norm,
 *  linear warm-up then cosine decay. Fill with gdn_adamw_params_init. */
typedef struct gdn_adamw_params {
    float    lr;             /**< peak learning rate; default 4e-4             */
    float    beta1, beta2;   /**< default 0.9, 0.95                            */
    float    eps;            /**< default 1e-8                                 */
    float    weight_decay;   /**< default 0.1; applied to matrices (linears,
                                  embeddings) only, not to norms, convs,
                                  A_log, dt_bias, D or biases                 */
    float    clip_norm;      /**< max global gradient norm; 0: no clipping;
                                  default 1                                   */
    int32_t  warmup_steps;   /**< default 0                                    */
    int32_t  total_steps;    /**< cosine decay ends here; 0: constant lr       */
    float    min_lr_ratio;   /**< lr at the end / peak; default 0.1            */
    int32_t  accum_steps;    /**< micro-batches summed into the gradients; the
                                  step divides by it; default 1               */
    uint32_t reserved[14];   /**< must be zero                                 */
} gdn_adamw_params;

GDN_API void gdn_adamw_params_init(gdn_adamw_params *params);

/** What one optimizer step did. */
typedef struct gdn_step_report {
    int64_t step;       /**< optimizer steps taken so far (after this one)     */
    double  lr;         /**< learning rate used                                */
    double  grad_norm;  /**< global norm of the (averaged) gradient            */
    int32_t skipped;    /**< 1: the norm was not finite; nothing was changed   */
    int32_t reserved[7];
} gdn_step_report;

/** One AdamW step on every parameter from the accumulated gradients (which
 *  are then left as they are: call gdn_model_zero_grad before the next
 *  accumulation). Deterministic: the same gradients give the same bits.
 *  Blocks (reads the gradient norm). report may be NULL.
 *  @return OK; INVALID_ARGUMENT (bad settings); OPENCL. */
GDN_API gdn_status gdn_model_optimizer_step(gdn_model *model, const gdn_adamw_params *params,
                                            gdn_step_report *report);

/** Inference state for n_seqs sequences: per layer the conv states, the
 *  gated delta rule and Mamba2 states, and the SWA ring-buffer caches (W
 *  entries per sequence). @return OK; INVALID_ARGUMENT;
 *  OUT_OF_DEVICE_MEMORY. */
GDN_API gdn_status gdn_model_state_create(gdn_model *model, int32_t n_seqs,
                                          gdn_model_state **out);
GDN_API void       gdn_model_state_destroy(gdn_model_state *state); /**< NULL: no-op */

/** Prefill: run the prompts in batch (packed or batched; n_seqs must equal
 *  the state's, every prompt at least one token), reset each sequence's
 *  state to its prompt, and write logits [N, vocab] of each prompt's last
 *  token. @return as gdn_model_forward. */
GDN_API gdn_status gdn_model_prefill(gdn_model *model, gdn_model_state *state,
                                     const gdn_model_batch *batch, gdn_tensor *logits);

/** Decode step: one token per sequence, ids I32 [N]; updates the state and
 *  writes logits [N, vocab]. Equal to the last row of a forward over the
 *  whole history. @return as gdn_model_forward. */
GDN_API gdn_status gdn_model_decode(gdn_model *model, gdn_model_state *state,
                                    const gdn_tensor *ids, gdn_tensor *logits);

/** Checkpoint flags. */
#define GDN_MODEL_SAVE_OPTIMIZER (1u << 0) /**< also the AdamW moments and step */

/** Save the parameters (and, with GDN_MODEL_SAVE_OPTIMIZER, the optimizer
 *  state) as a safetensors file with fla's tensor names and layouts
 *  ("model.embeddings.weight", "model.layers.{i}.attn.q_proj.weight", ...,
 *  "lm_head.weight"); the configuration and the caller's metadata (n_meta
 *  key/value string pairs, may be 0) go into its __metadata__. Written
 *  atomically: on failure an existing file is untouched.
 *  @return OK; INVALID_ARGUMENT; IO; OPENCL. Blocks. */
GDN_API gdn_status gdn_model_save(gdn_model *model, const char *path, uint32_t flags,
                                  const char *const *meta, size_t n_meta);

/** Create a model from a file written by gdn_model_save (configuration,
 *  parameters and, when present, optimizer state). A truncated, corrupt,
 *  wrong-shape or hostile file gives a status and a message naming the
 *  problem, and no model. @return OK; INVALID_ARGUMENT; IO;
 *  OUT_OF_DEVICE_MEMORY. */
GDN_API gdn_status gdn_model_load(gdn_context *ctx, const char *path, gdn_model **out);

/** Load the parameters of a safetensors file with fla's names (e.g. an fla
 *  GatedDeltaNet checkpoint converted to F32, F16 or BF16) into an existing
 *  model whose configuration matches; every parameter must be present with
 *  its shape (conv weights as [C, 1, W] or [C, W]). Nothing is changed on
 *  failure. @return as gdn_model_load. */
GDN_API gdn_status gdn_model_load_weights(gdn_model *model, const char *path);

/** Fill *cfg from an fla GatedDeltaNet config.json (model_type
 *  "gated_deltanet": hidden_size, num_hidden_layers, num_heads, head_dim,
 *  expand_v, num_v_heads, conv_size, allow_neg_eigval, norm_eps, vocab_size,
 *  tie_word_embeddings, hidden_ratio / intermediate_size, and the hybrid
 *  "attn" block {layers, num_heads, num_kv_heads, window_size, rope_theta}),
 *  so that gdn_model_create + gdn_model_load_weights run an fla checkpoint.
 *  @return OK; IO (unreadable); INVALID_ARGUMENT (not JSON, a field of the
 *  wrong type); UNSUPPORTED (features libgdn does not have: use_gate or
 *  use_short_conv false, qkv_bias, head dims outside 16..256). */
GDN_API gdn_status gdn_model_config_from_fla(const char *config_json_path,
                                             gdn_model_config *cfg);

/** Value of a __metadata__ key of a checkpoint file, copied into buf
 *  (truncated to cap). @return OK; INVALID_ARGUMENT (absent key); IO. */
GDN_API gdn_status gdn_checkpoint_meta(const char *path, const char *key, char *buf, size_t cap);

/* ------------------------------------------------------------------------ */
/* Sampling (host side)                                                     */
/* ------------------------------------------------------------------------ */

/** How gdn_sample picks a token from a row of logits. Fill with
 *  gdn_sampler_params_init. Order of the filters: temperature, then top-k,
 *  then top-p (nucleus) over what top-k kept, then a draw. */
typedef struct gdn_sampler_params {
    float    temperature;  /**< 0 (default): greedy (argmax, lowest index on
                                ties); else logits / temperature, > 0      */
    int32_t  top_k;        /**< keep the k largest; 0 (default): all       */
    float    top_p;        /**< keep the smallest set of largest
                                probabilities whose sum reaches p; 1
                                (default): all; must be in (0, 1]          */
    uint32_t reserved[13]; /**< must be zero                              */
} gdn_sampler_params;

/** Fill *params with defaults (greedy, no top-k, top-p 1). */
GDN_API void gdn_sampler_params_init(gdn_sampler_params *params);

/** Draw one token id from logits[0 .. vocab) (host memory, borrowed) with
 *  the random state *rng (any 64-bit seed; advanced by the call, so a run
 *  from the same seed repeats exactly). NaN logits are never drawn; -inf
 *  logits only when every logit is -inf (then the first index). Allocates
 *  vocab entries of scratch for top-k / top-p.
 *  @return OK; INVALID_ARGUMENT (NULL, vocab < 1, bad settings, non-zero
 *  reserved); OUT_OF_HOST_MEMORY. */
GDN_API gdn_status gdn_sample(const float *logits, int32_t vocab,
                              const gdn_sampler_params *params, uint64_t *rng,
                              int32_t *token);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* GDN_H */
