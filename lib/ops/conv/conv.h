/*
 * conv.h - internal interface of the causal depthwise short convolution
 * (lib/ops/conv/): the public functions are declared in gdn.h; this header
 * holds the shape, plan and index structs shared by the forward, backward
 * and decode paths of conv.c.
 *
 * Module owner: layer ops (issue 5).
 */
#ifndef GDN_OPS_CONV_H
#define GDN_OPS_CONV_H

#include "../norm/norm.h" /* gdn__norm_colsum, gdn__pow2_ceil_i32 */
#include "runtime.h"

/* One call's sizes, after the argument checks. */
struct gdn_conv_shape {
    int32_t  T;       /* tokens, all sequences                           */
    int32_t  C;       /* channels                                        */
    int32_t  W;       /* kernel size, 2..8                               */
    int32_t  N;       /* sequences                                       */
    uint32_t flags;   /* GDN_CONV_*                                      */
    int32_t *offsets; /* N + 1 token offsets (host copy, owned)          */
};
void gdn__conv_shape_free(struct gdn_conv_shape *s);

/* Plan of conv_fwd / conv_bwd: work-groups of CB channels (dimension 0)
 * times CG chunks (dimension 1), and the chunk length in tokens (the chunk
 * table). The only -D option is W, a property of the weight. */
struct gdn_conv_plan {
    int32_t cb; /* channels per work-group (power of two)              */
    int32_t cg; /* chunks per work-group (power of two)                */
    int32_t tt; /* tokens per chunk, 4..256                            */
};

/* ---- tuning (lib/tune/tune.h). Every plan comes from gdn__tune_lookup;
 * the spaces' defaults() are the plans these kernels always ran with.
 *
 *   stage           bucket            params
 *   conv/conv_fwd   W<W>.C<2^k>       CB (channels per group), CG (chunks per
 *   conv/conv_bwd                     group), TT (tokens per chunk)
 *   conv/conv_step  W<W>.C<2^k>       WG (work-group size)
 * (2^k: C rounded up to a power of two, capped at 2^16.) */
struct gdn_conv_tune_problem {
    const struct gdn_conv_shape *s; /* step: T = N tokens, offsets unused */
    size_t                       kwg; /* CL_KERNEL_WORK_GROUP_SIZE of the kernel */
};
extern const struct gdn_tune_space gdn__conv_fwd_space;
extern const struct gdn_tune_space gdn__conv_bwd_space;
extern const struct gdn_tune_space gdn__conv_step_space;

/* Device tables: seq_off [N + 1] and chunks [nt] int4 (n, t0, t1, bos);
 * every sequence has at least one chunk (empty ones one empty chunk). */
struct gdn_conv_index {
    cl_mem  seq_off;
    cl_mem  chunks;
    int32_t nt;
};
gdn_status gdn__conv_index_build(gdn_context *ctx, const struct gdn_conv_shape *s, int32_t tt,
                                 struct gdn_conv_index *ix);
void       gdn__conv_index_free(struct gdn_conv_index *ix);

#endif /* GDN_OPS_CONV_H */
