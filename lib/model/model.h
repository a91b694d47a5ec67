/*
 * model.h - internals of the model layer (lib/model/): the parameter
 * registry, the layer table, and the forward/backward/inference passes
 * that compose the public ops of gdn.h into Gated DeltaNet, H1 and H2
 * stacks.
 *
 *   model.c    configuration, presets, parameters, initialisation
 *   pass.c     training forward and backward of every layer kind
 *   infer.c    inference state, prefill and decode
 *   ckpt.c     safetensors save / load with fla's names
 *   train.c    the optimizer step (AdamW, clipping, schedule)
 *   util.c     the arena of per-pass tensors, views, copies, column slices
 *              (Mamba2's split; cl/model/slice.cl), batch sequence tables
 */
#ifndef GDN_MODEL_H
#define GDN_MODEL_H

#include "runtime.h"

/* One parameter tensor with its gradient and AdamW moments (m, v are
 * created with the model, zero). `shape` is the shape the checkpoint uses
 * (conv weights [C, 1, W]); the device tensors are dense with the same
 * numel and the op's shape. */
struct gdn__param {
    char        name[96];
    gdn_tensor *w, *g, *m, *v;
    int32_t     ndim;
    int64_t     shape[GDN_MAX_DIMS];
    bool        decay; /* weight decay applies (matrices only) */
};

/* Indices of a layer's parameters in the registry, per mixer kind. */
enum { P_ATTN_NORM, P_MLP_NORM, P_MLP_GATE, P_MLP_UP, P_MLP_DOWN, P_MIX0 };
enum { G_Q = P_MIX0, G_K, G_V, G_A, G_B, G_G, G_O, G_ALOG, G_DTB, G_QC, G_KC, G_VC, G_ONORM,
       G_END };
enum { S_Q = P_MIX0, S_K, S_V, S_O, S_END };
enum { M_IN = P_MIX0, M_CONVW, M_CONVB, M_DTB, M_ALOG, M_D, M_NORM, M_OUT, M_END };
#define GDN__LAYER_MAX_PARAMS G_END

struct gdn__layer {
    char    kind;                       /* 'g', 's' or 'm' */
    int32_t p[GDN__LAYER_MAX_PARAMS];   /* registry indices */
};

struct gdn_model {
    gdn_context      *ctx;
    gdn_model_config  cfg; /* defaults filled in */
    struct gdn__param *params;
    int32_t            n_params;
    struct gdn__layer *layers;
    int32_t            n_layers;
    int32_t            p_embed, p_norm, p_head; /* p_head = p_embed when tied */
    int64_t            opt_step;                /* AdamW steps taken          */
    int64_t            numel;                   /* parameters                 */
};

/* Derived sizes of a configuration (defaults filled in). */
struct gdn__dims {
    int64_t D, F, vocab;
    int64_t gH, gHV, gK, gV, gW;         /* Gated DeltaNet               */
    int64_t sH, sHkv, sD, sW;            /* SWA                          */
    int64_t mH, mP, mN, mG, mW, mDi;     /* Mamba2: d_inner = mH mP      */
    int64_t mConvC, mInOut;              /* conv channels, in_proj rows  */
};
void gdn__model_dims(const gdn_model_config *cfg, struct gdn__dims *d);

/* Fill the defaults of cfg in place and check it; messages go to ctx. */
gdn_status gdn__model_config_check(gdn_context *ctx, gdn_model_config *cfg);

/* Create an empty model (registry and layer table; tensors allocated,
 * uninitialised, gradients and moments zero). */
gdn_status gdn__model_alloc(gdn_context *ctx, const gdn_model_config *cfg, gdn_model **out);
struct gdn__param *gdn__model_param(gdn_model *m, const char *name);

/* ---- arena of per-pass tensors (freed together) ---------------------- */
struct gdn__arena {
    gdn_context  *ctx;
    gdn_tensor  **t;
    cl_mem       *mem; /* scratch buffer behind t[i], NULL for views */
    size_t        n, cap;
};
gdn_status gdn__arena_new(struct gdn__arena *a, int32_t ndim, const int64_t *shape,
                          gdn_dtype dtype, gdn_tensor **out);
/* A tensor sharing `src`'s buffer with another shape of the same numel. */
gdn_status gdn__arena_view(struct gdn__arena *a, const gdn_tensor *src, int32_t ndim,
                           const int64_t *shape, gdn_tensor **out);
void       gdn__arena_free(struct gdn__arena *a);

/* ---- helpers over the public ops ------------------------------------ */
gdn_status gdn__copy_tensor(gdn_context *ctx, const gdn_tensor *src, gdn_tensor *dst);
/* dst[r, dst_col + c] (+)= src[r, src_col + c] for r < rows, c < cols;
 * src/dst are row-major with leading dims src_ld/dst_ld (in floats). */
gdn_status gdn__slice_cols(gdn_context *ctx, const gdn_tensor *src, int64_t src_ld,
                           int64_t src_col, gdn_tensor *dst, int64_t dst_ld, int64_t dst_col,
                           int64_t rows, int64_t cols, bool accumulate);

/* The sequences of a batch: N, offsets (N + 1), T. */
struct gdn__seqs {
    int32_t  n;
    int32_t *off; /* owned (n + 1 entries) */
    int64_t  T;
};
gdn_status gdn__batch_seqs(gdn_context *ctx, const char *fn, const gdn_model_batch *b,
                           struct gdn__seqs *s);

/* Layer-level passes (pass.c). */
enum gdn__mode {
    GDN__TRAIN,   /* training forward (tape optional), packed sequences      */
    GDN__PREFILL, /* forward that resets each sequence's inference state     */
    GDN__DECODE   /* one token per sequence, state updated in place          */
};

/* What one block's training forward keeps for backward. */
struct gdn__layer_tape {
    gdn_tensor           *x_in, *h1, *x_mid, *h2; /* block input, normed, middle */
    gdn_tensor           *t[16];                  /* the mixer's activations     */
    gdn_gated_delta_tape *gd;
    gdn_swa_tape         *swa;
    gdn_mamba2_tape      *m2;
    gdn_swiglu_tape      *mlp;
};
void gdn__layer_tape_clear(struct gdn__layer_tape *lt);

/* One layer's inference state (infer.c): conv states ([N, C, W-1]: q, k, v
 * for Gated DeltaNet, xBC for Mamba2), the recurrent state S, the SWA
 * cache. */
struct gdn__layer_state {
    gdn_tensor   *conv[3];
    gdn_tensor   *S;
    gdn_swa_cache cache;
};

/* Number of op-level value heads per model value head of width V (V > 256
 * is split; see pass.c). */
int32_t gdn__gd_split(int64_t V);

/* Block forward: x is the block input [T, D]. Training with a tape keeps
 * x and writes the output to a new tensor; otherwise x is updated in place.
 * *x_out receives the output. */
gdn_status gdn__block_forward(gdn_model *m, int32_t li, enum gdn__mode mode,
                              const struct gdn__seqs *s, gdn_tensor *x, gdn_tensor **x_out,
                              struct gdn__arena *ar, struct gdn__layer_tape *lt,
                              struct gdn__layer_state *ls);
gdn_status gdn__block_backward(gdn_model *m, int32_t li, const struct gdn__seqs *s,
                               gdn_tensor *dX, struct gdn__arena *ar, struct gdn__layer_tape *lt);
gdn_status gdn__embed(gdn_model *m, struct gdn__arena *ar, const gdn_tensor *ids, gdn_tensor **x);
gdn_status gdn__head(gdn_model *m, struct gdn__arena *ar, const gdn_tensor *x, gdn_tensor *logits,
                     gdn_tensor **hf_out);

#endif /* GDN_MODEL_H */
