/*
 * ssd_fwd.c - chunked forward of the Mamba2 SSD core (mamba_ssm
 * ssd_combined.py _mamba_chunk_scan_combined_fwd), five stages:
 *   1 cumsum_fwd      dt (softplus, clamp) and the chunk-local log2 decay cs
 *   2 bmm_fwd         CB = C B^T per chunk and group
 *   3 chunk_state     S_c = X^T diag(dt exp2(cs_last - cs)) B per chunk, head
 *   4 state_passing   h_in[c] (state entering each chunk, in place), ht
 *   5 chunk_scan_fwd  y = exp2(cs) C h_in^T + (CB o decay o dt) X + D x
 * Stages 2-4 are also the backward's recomputation. Scratch: CB
 * [NT, G, CH, CH] and states [NT, H, P, DS], released before returning.
 */
#include "mamba2.h"

#define M2_ARGS(L) {tp->ctx, (L).k, 0, GDN_STATUS_OK}

static gdn_status cumsum_fwd(const struct gdn_mamba2_tape *tp)
{
    const struct gdn_m2_shape *s = &tp->s;
    struct gdn_m2_vec_plan     p;
    struct gdn_m2_launch       L;
    gdn_status                 st;

    gdn__m2_vec_plan(tp->ctx, s, GDN_M2_CUMSUM, &p);
    if ((st = gdn__m2_vec_kernel(tp->ctx, s, GDN_M2_CUMSUM, &p, &L)))
        return st;
    {
        struct gdn_m2_args a = M2_ARGS(L);
        gdn__m2_am(&a, tp->dt->mem);
        gdn__m2_am(&a, tp->A_log->mem);
        gdn__m2_am(&a, s->has_bias ? tp->dt_bias->mem : tp->A_log->mem);
        gdn__m2_am(&a, tp->idx.chunks);
        gdn__m2_am(&a, tp->dtv);
        gdn__m2_am(&a, tp->cs);
        gdn__m2_am(&a, tp->csl);
        gdn__m2_ai(&a, s->H);
        gdn__m2_ai(&a, s->has_bias);
        gdn__m2_af(&a, s->dt_min);
        gdn__m2_af(&a, s->dt_max);
        if (a.st)
            return a.st;
    }
    return gdn__m2_enqueue(tp->ctx, &L);
}

gdn_status gdn__m2_bmm(const struct gdn_mamba2_tape *tp, cl_mem CB)
{
    const struct gdn_m2_shape *s = &tp->s;
    struct gdn_m2_tile_plan    p;
    struct gdn_m2_launch       L;
    gdn_status                 st;

    gdn__m2_tile_plan(tp->ctx, s, GDN_M2_BMM, &p);
    if ((st = gdn__m2_tile_kernel(tp->ctx, s, GDN_M2_BMM, &p, &L)))
        return st;
    {
        struct gdn_m2_args a = M2_ARGS(L);
        gdn__m2_am(&a, tp->B->mem);
        gdn__m2_am(&a, tp->C->mem);
        gdn__m2_am(&a, tp->idx.chunks);
        gdn__m2_am(&a, CB);
        gdn__m2_ai(&a, s->G);
        gdn__m2_ai(&a, s->DS);
        if (a.st)
            return a.st;
    }
    return gdn__m2_enqueue(tp->ctx, &L);
}

gdn_status gdn__m2_chunk_state(const struct gdn_mamba2_tape *tp, int32_t mode, cl_mem X,
                               cl_mem Y, cl_mem out)
{
    const struct gdn_m2_shape *s = &tp->s;
    struct gdn_m2_tile_plan    p;
    struct gdn_m2_launch       L;
    gdn_status                 st;

    gdn__m2_tile_plan(tp->ctx, s, GDN_M2_CHUNK_STATE, &p);
    p.mode = mode;
    if ((st = gdn__m2_tile_kernel(tp->ctx, s, GDN_M2_CHUNK_STATE, &p, &L)))
        return st;
    {
        struct gdn_m2_args a = M2_ARGS(L);
        gdn__m2_am(&a, X);
        gdn__m2_am(&a, Y);
        gdn__m2_am(&a, tp->dtv);
        gdn__m2_am(&a, tp->cs);
        gdn__m2_am(&a, tp->idx.chunks);
        gdn__m2_am(&a, out);
        gdn__m2_ai(&a, s->H);
        gdn__m2_ai(&a, s->G);
        gdn__m2_ai(&a, s->P);
        gdn__m2_ai(&a, s->DS);
        gdn__m2_ai(&a, (s->P + p.bx - 1) / p.bx);
        gdn__m2_ai(&a, (s->DS + p.by - 1) / p.by);
        if (a.st)
            return a.st;
    }
    return gdn__m2_enqueue(tp->ctx, &L);
}

gdn_status gdn__m2_pass_fwd(const struct gdn_mamba2_tape *tp, cl_mem states, cl_mem h0,
                            cl_mem ht)
{
    const struct gdn_m2_shape *s = &tp->s;
    struct gdn_m2_vec_plan     p;
    struct gdn_m2_launch       L;
    gdn_status                 st;

    gdn__m2_vec_plan(tp->ctx, s, GDN_M2_PASS_FWD, &p);
    if ((st = gdn__m2_vec_kernel(tp->ctx, s, GDN_M2_PASS_FWD, &p, &L)))
        return st;
    {
        struct gdn_m2_args a = M2_ARGS(L);
        gdn__m2_am(&a, states);
        gdn__m2_am(&a, tp->csl);
        gdn__m2_am(&a, tp->idx.chunk_off);
        gdn__m2_am(&a, h0 ? h0 : states);
        gdn__m2_am(&a, ht ? ht : states);
        gdn__m2_ai(&a, s->H);
        gdn__m2_ai(&a, s->P * s->DS);
        gdn__m2_ai(&a, h0 != NULL);
        gdn__m2_ai(&a, ht != NULL);
        if (a.st)
            return a.st;
    }
    return gdn__m2_enqueue(tp->ctx, &L);
}

static gdn_status scan_fwd(const struct gdn_mamba2_tape *tp, cl_mem states, cl_mem CB, cl_mem y)
{
    const struct gdn_m2_shape *s = &tp->s;
    struct gdn_m2_tile_plan    p;
    struct gdn_m2_launch       L;
    gdn_status                 st;

    gdn__m2_tile_plan(tp->ctx, s, GDN_M2_SCAN_FWD, &p);
    if ((st = gdn__m2_tile_kernel(tp->ctx, s, GDN_M2_SCAN_FWD, &p, &L)))
        return st;
    {
        struct gdn_m2_args a = M2_ARGS(L);
        gdn__m2_am(&a, tp->x->mem);
        gdn__m2_am(&a, tp->C->mem);
        gdn__m2_am(&a, tp->dtv);
        gdn__m2_am(&a, tp->cs);
        gdn__m2_am(&a, states);
        gdn__m2_am(&a, CB);
        gdn__m2_am(&a, s->has_D ? tp->D->mem : tp->A_log->mem);
        gdn__m2_am(&a, tp->idx.chunks);
        gdn__m2_am(&a, y);
        gdn__m2_ai(&a, s->H);
        gdn__m2_ai(&a, s->G);
        gdn__m2_ai(&a, s->P);
        gdn__m2_ai(&a, s->DS);
        gdn__m2_ai(&a, (s->P + p.bx - 1) / p.bx);
        gdn__m2_ai(&a, s->has_D);
        if (a.st)
            return a.st;
    }
    return gdn__m2_enqueue(tp->ctx, &L);
}

gdn_status gdn__m2_forward(struct gdn_mamba2_tape *tp, gdn_tensor *y, gdn_tensor *ht)
{
    const struct gdn_m2_shape *s  = &tp->s;
    cl_mem                     CB = NULL, states = NULL;
    gdn_status                 st;

    if ((st = cumsum_fwd(tp)))
        return st;
    if ((st = gdn__m2_scratch(tp->ctx,
                              (size_t)s->NT * (size_t)s->G * (size_t)s->CH * (size_t)s->CH, &CB)))
        goto done;
    if ((st = gdn__m2_scratch(tp->ctx,
                              (size_t)s->NT * (size_t)s->H * (size_t)s->P * (size_t)s->DS,
                              &states)))
        goto done;
    if ((st = gdn__m2_bmm(tp, CB)) || (st = gdn__m2_chunk_state(tp, 0, tp->x->mem, tp->B->mem,
                                                                 states)) ||
        (st = gdn__m2_pass_fwd(tp, states, tp->h0 ? tp->h0->mem : NULL, ht ? ht->mem : NULL)) ||
        (st = scan_fwd(tp, states, CB, y->mem)))
        goto done;
done:
    gdn__buffer_release(CB);
    gdn__buffer_release(states);
    return st;
}
