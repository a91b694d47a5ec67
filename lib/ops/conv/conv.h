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

/* Plan of conv_fwd / conv_bwd: CB channels per work-group (the local size
 * along dimension 0) and the chunk length in tokens (the chunk table). The
 * only -D option is W, a property of the weight. */
struct gdn_conv_plan {
    int32_t cb; /* channels per work-group (power of two)              */
    int32_t tt; /* tokens per chunk, 8..64                             */
};

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
