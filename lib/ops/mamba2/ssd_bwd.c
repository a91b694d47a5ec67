/*
 * ssd_bwd.c - chunked backward of the Mamba2 SSD core (mamba_ssm
 * ssd_combined.py _mamba_chunk_scan_combined_bwd), from the tape (dt, cs)
 * and the borrowed inputs:
 *   recompute   CB (bmm_fwd), chunk states + state passing -> h_in[c]
 *   dstates     chunk_state MODE 1: direct gradient of h_in[c] from y
 *   pass_bwd    reverse scan: dL/dS_c in place, dh0
 *   dcb         dCB per head (+ intra-chunk decay partials)
 *   dx          dx (+ dt, decay and D partials)
 *   dbc         dB, dC per head (+ inter-chunk output and state-passing
 *               decay partials)
 *   group       dB, dC summed over the heads of each group (if H > G)
 *   dt_bwd      dcs -> reverse cumsum -> ddt_raw, per-chunk parameter sums
 *   param       dA_log, ddt_bias, dD summed over chunks in order
 * Per-token partial sums share the scratch part[slot][T][H]; slot layout
 * (nP = P tiles of dx, nN = DS tiles of dbc, R = CH / 64 row tiles):
 *   px [0, nP)  pq [nP, 2nP)  pd [2nP, 3nP)  po [3nP, 3nP + nN)
 *   prow [.., + R)  pcol [.., + R)
 * Every reduction has a fixed order: results are bitwise reproducible.
 */
#include "mamba2.h"

#define M2_ARGS(L) {tp->ctx, (L).k, 0, GDN_STATUS_OK}

/* Scratch buffers of one backward call. */
struct bwd_bufs {
    cl_mem CB, hst, dst, ppass, part, dcb, pparam, dBh, dCh;
};

static void bufs_release(struct bwd_bufs *b)
{
    cl_mem *m[] = {&b->CB, &b->hst, &b->dst, &b->ppass, &b->part, &b->dcb, &b->pparam, &b->dBh,
                   &b->dCh};
    size_t  i;
    for (i = 0; i < GDN_ARRAY_SIZE(m); i++) {
        gdn__buffer_release(*m[i]);
        *m[i] = NULL;
    }
}

static gdn_status pass_bwd(const struct gdn_mamba2_tape *tp, struct bwd_bufs *b,
                           const gdn_tensor *dht, gdn_tensor *dh0)
{
    const struct gdn_m2_shape *s = &tp->s;
    struct gdn_m2_vec_plan     p;
    struct gdn_m2_launch       L;
    gdn_status                 st;

    gdn__m2_vec_plan(tp->ctx, s, GDN_M2_PASS_BWD, &p);
    if ((st = gdn__m2_vec_kernel(tp->ctx, s, GDN_M2_PASS_BWD, &p, &L)))
        return st;
    {
        struct gdn_m2_args a = M2_ARGS(L);
        gdn__m2_am(&a, b->dst);
        gdn__m2_am(&a, tp->csl);
        gdn__m2_am(&a, tp->idx.chunk_off);
        gdn__m2_am(&a, dht ? dht->mem : b->dst);
        gdn__m2_am(&a, dh0 ? dh0->mem : b->dst);
        gdn__m2_ai(&a, s->H);
        gdn__m2_ai(&a, s->P * s->DS);
        gdn__m2_ai(&a, dht != NULL);
        gdn__m2_ai(&a, dh0 != NULL);
        if (a.st)
            return a.st;
    }
    return gdn__m2_enqueue(tp->ctx, &L);
}

gdn_status gdn__m2_backward(const struct gdn_mamba2_tape *tp, const gdn_tensor *dy,
                            const gdn_tensor *dht, const gdn_mamba2_grads *g)
{
    gdn_context               *ctx = tp->ctx;
    const struct gdn_m2_shape *s   = &tp->s;
    const size_t               TH  = (size_t)s->T * (size_t)s->H;
    const size_t               SZ  = (size_t)s->NT * (size_t)s->H * (size_t)s->P * (size_t)s->DS;
    const bool need_tok = g->dx || g->ddt || g->dA_log || g->ddt_bias || g->dB || g->dC || g->dD;
    const bool per_head = s->H != s->G;
    struct bwd_bufs            b   = {0};
    struct gdn_m2_tile_plan    pdcb, pdx, pdbc;
    struct gdn_m2_launch       Ldcb, Ldx, Ldbc;
    int32_t                    nP, nN, R, spx, spq, spd, spo, spr, spc, nslots;
    gdn_status                 st;

    /* Recompute h_in[c]; direct state gradients; reverse state passing. */
    if ((st = gdn__m2_scratch(ctx, SZ, &b.hst)) || (st = gdn__m2_scratch(ctx, SZ, &b.dst)))
        goto done;
    if ((st = gdn__m2_chunk_state(tp, 0, tp->x->mem, tp->B->mem, b.hst)) ||
        (st = gdn__m2_pass_fwd(tp, b.hst, tp->h0 ? tp->h0->mem : NULL, NULL)) ||
        (st = gdn__m2_chunk_state(tp, 1, dy->mem, tp->C->mem, b.dst)) ||
        (st = pass_bwd(tp, &b, dht, g->dh0)))
        goto done;
    if (!need_tok || s->T == 0) {
        /* Parameter gradients of an empty batch are zero. */
        if (g->dA_log && (st = gdn__fill_f32(ctx, g->dA_log->mem, (size_t)s->H, 0.0f)))
            goto done;
        if (g->ddt_bias && (st = gdn__fill_f32(ctx, g->ddt_bias->mem, (size_t)s->H, 0.0f)))
            goto done;
        if (g->dD && (st = gdn__fill_f32(ctx, g->dD->mem, (size_t)s->H, 0.0f)))
            goto done;
        goto done;
    }

    /* Plans first: the partial-slot layout follows from their tiles. */
    gdn__m2_tile_plan(tp->ctx, s, GDN_M2_DCB, &pdcb);
    gdn__m2_tile_plan(tp->ctx, s, GDN_M2_DX, &pdx);
    gdn__m2_tile_plan(tp->ctx, s, GDN_M2_DBC, &pdbc);
    if ((st = gdn__m2_tile_kernel(ctx, s, GDN_M2_DCB, &pdcb, &Ldcb)) ||
        (st = gdn__m2_tile_kernel(ctx, s, GDN_M2_DX, &pdx, &Ldx)) ||
        (st = gdn__m2_tile_kernel(ctx, s, GDN_M2_DBC, &pdbc, &Ldbc)))
        goto done;
    nP = (s->P + pdx.bx - 1) / pdx.bx;
    nN = (s->DS + pdbc.bx - 1) / pdbc.bx;
    R  = s->CH / GDN_M2_TILE;
    spx = 0, spq = nP, spd = 2 * nP, spo = 3 * nP, spr = spo + nN, spc = spr + R;
    nslots = spc + R;
    if ((st = gdn__m2_scratch(ctx, (size_t)s->NT * (size_t)s->G * (size_t)s->CH * (size_t)s->CH,
                              &b.CB)) ||
        (st = gdn__m2_scratch(ctx, (size_t)s->NT * (size_t)s->H * (size_t)s->CH * (size_t)s->CH,
                              &b.dcb)) ||
        (st = gdn__m2_scratch(ctx, (size_t)nslots * TH, &b.part)) ||
        (st = gdn__m2_scratch(ctx, (size_t)s->NT * (size_t)s->H * 3, &b.pparam)) ||
        (st = gdn__m2_scratch(ctx, (size_t)s->NT * (size_t)s->H * (size_t)nN, &b.ppass)))
        goto done;
    if (per_head && ((g->dB && (st = gdn__m2_scratch(ctx, TH * (size_t)s->DS, &b.dBh))) ||
                     (g->dC && (st = gdn__m2_scratch(ctx, TH * (size_t)s->DS, &b.dCh)))))
        goto done;
    if ((st = gdn__m2_bmm(tp, b.CB)))
        goto done;

    { /* dcb */
        struct gdn_m2_args a = {ctx, Ldcb.k, 0, GDN_STATUS_OK};
        gdn__m2_am(&a, tp->x->mem);
        gdn__m2_am(&a, dy->mem);
        gdn__m2_am(&a, tp->dtv);
        gdn__m2_am(&a, tp->cs);
        gdn__m2_am(&a, b.CB);
        gdn__m2_am(&a, tp->idx.chunks);
        gdn__m2_am(&a, b.dcb);
        gdn__m2_am(&a, b.part);
        gdn__m2_ai(&a, (int32_t)s->T);
        gdn__m2_ai(&a, s->H);
        gdn__m2_ai(&a, s->G);
        gdn__m2_ai(&a, s->P);
        gdn__m2_ai(&a, spr);
        gdn__m2_ai(&a, spc);
        if ((st = a.st) || (st = gdn__m2_enqueue(ctx, &Ldcb)))
            goto done;
    }
    { /* dx */
        struct gdn_m2_args a = {ctx, Ldx.k, 0, GDN_STATUS_OK};
        gdn__m2_am(&a, tp->x->mem);
        gdn__m2_am(&a, dy->mem);
        gdn__m2_am(&a, tp->B->mem);
        gdn__m2_am(&a, tp->dtv);
        gdn__m2_am(&a, tp->cs);
        gdn__m2_am(&a, b.CB);
        gdn__m2_am(&a, b.dst);
        gdn__m2_am(&a, s->has_D ? tp->D->mem : tp->A_log->mem);
        gdn__m2_am(&a, tp->idx.chunks);
        gdn__m2_am(&a, g->dx ? g->dx->mem : b.part);
        gdn__m2_am(&a, b.part);
        gdn__m2_ai(&a, (int32_t)s->T);
        gdn__m2_ai(&a, s->H);
        gdn__m2_ai(&a, s->G);
        gdn__m2_ai(&a, s->P);
        gdn__m2_ai(&a, s->DS);
        gdn__m2_ai(&a, nP);
        gdn__m2_ai(&a, s->has_D);
        gdn__m2_ai(&a, g->dx != NULL);
        gdn__m2_ai(&a, spx);
        gdn__m2_ai(&a, spq);
        gdn__m2_ai(&a, spd);
        if ((st = a.st) || (st = gdn__m2_enqueue(ctx, &Ldx)))
            goto done;
    }
    { /* dbc */
        cl_mem             oB = per_head ? b.dBh : (g->dB ? g->dB->mem : NULL);
        cl_mem             oC = per_head ? b.dCh : (g->dC ? g->dC->mem : NULL);
        struct gdn_m2_args a  = {ctx, Ldbc.k, 0, GDN_STATUS_OK};
        gdn__m2_am(&a, tp->x->mem);
        gdn__m2_am(&a, dy->mem);
        gdn__m2_am(&a, tp->B->mem);
        gdn__m2_am(&a, tp->C->mem);
        gdn__m2_am(&a, tp->dtv);
        gdn__m2_am(&a, tp->cs);
        gdn__m2_am(&a, b.hst);
        gdn__m2_am(&a, b.dst);
        gdn__m2_am(&a, b.dcb);
        gdn__m2_am(&a, tp->idx.chunks);
        gdn__m2_am(&a, oB ? oB : b.part);
        gdn__m2_am(&a, oC ? oC : b.part);
        gdn__m2_am(&a, b.part);
        gdn__m2_am(&a, b.ppass);
        gdn__m2_ai(&a, (int32_t)s->T);
        gdn__m2_ai(&a, s->H);
        gdn__m2_ai(&a, s->G);
        gdn__m2_ai(&a, s->P);
        gdn__m2_ai(&a, s->DS);
        gdn__m2_ai(&a, nN);
        gdn__m2_ai(&a, per_head ? s->H : s->G);
        gdn__m2_ai(&a, oB != NULL);
        gdn__m2_ai(&a, oC != NULL);
        gdn__m2_ai(&a, spo);
        if ((st = a.st) || (st = gdn__m2_enqueue(ctx, &Ldbc)))
            goto done;
    }
    if (per_head && (g->dB || g->dC)) { /* sum the heads of each group */
        struct gdn_m2_vec_plan p;
        struct gdn_m2_launch   L;
        int                    k;
        gdn__m2_vec_plan(tp->ctx, s, GDN_M2_GROUP_REDUCE, &p);
        if ((st = gdn__m2_vec_kernel(ctx, s, GDN_M2_GROUP_REDUCE, &p, &L)))
            goto done;
        for (k = 0; k < 2; k++) {
            gdn_tensor        *dst = k ? g->dC : g->dB;
            struct gdn_m2_args a   = {ctx, L.k, 0, GDN_STATUS_OK};
            if (!dst)
                continue;
            gdn__m2_am(&a, k ? b.dCh : b.dBh);
            gdn__m2_am(&a, dst->mem);
            gdn__m2_ai(&a, (int32_t)s->T);
            gdn__m2_ai(&a, s->H);
            gdn__m2_ai(&a, s->G);
            gdn__m2_ai(&a, s->DS);
            if ((st = a.st) || (st = gdn__m2_enqueue(ctx, &L)))
                goto done;
        }
    }
    { /* dt_bwd */
        struct gdn_m2_vec_plan p;
        struct gdn_m2_launch   L;
        gdn__m2_vec_plan(tp->ctx, s, GDN_M2_DT_BWD, &p);
        if ((st = gdn__m2_vec_kernel(ctx, s, GDN_M2_DT_BWD, &p, &L)))
            goto done;
        {
            struct gdn_m2_args a = {ctx, L.k, 0, GDN_STATUS_OK};
            gdn__m2_am(&a, b.part);
            gdn__m2_am(&a, b.ppass);
            gdn__m2_am(&a, tp->dtv);
            gdn__m2_am(&a, tp->dt->mem);
            gdn__m2_am(&a, tp->A_log->mem);
            gdn__m2_am(&a, s->has_bias ? tp->dt_bias->mem : tp->A_log->mem);
            gdn__m2_am(&a, tp->idx.chunks);
            gdn__m2_am(&a, g->ddt ? g->ddt->mem : b.part);
            gdn__m2_am(&a, b.pparam);
            gdn__m2_ai(&a, (int32_t)s->T);
            gdn__m2_ai(&a, s->H);
            gdn__m2_ai(&a, nN); /* ppass blocks: dbc's DS tiles */
            gdn__m2_ai(&a, spx);
            gdn__m2_ai(&a, spq);
            gdn__m2_ai(&a, spd);
            gdn__m2_ai(&a, nP);
            gdn__m2_ai(&a, spo);
            gdn__m2_ai(&a, nN);
            gdn__m2_ai(&a, spr);
            gdn__m2_ai(&a, spc);
            gdn__m2_ai(&a, s->has_bias);
            gdn__m2_ai(&a, g->ddt != NULL);
            gdn__m2_af(&a, s->dt_min);
            gdn__m2_af(&a, s->dt_max);
            if ((st = a.st) || (st = gdn__m2_enqueue(ctx, &L)))
                goto done;
        }
    }
    if (g->dA_log || g->ddt_bias || g->dD) { /* per-head parameters */
        struct gdn_m2_vec_plan p;
        struct gdn_m2_launch   L;
        gdn__m2_vec_plan(tp->ctx, s, GDN_M2_PARAM_REDUCE, &p);
        if ((st = gdn__m2_vec_kernel(ctx, s, GDN_M2_PARAM_REDUCE, &p, &L)))
            goto done;
        {
            struct gdn_m2_args a = {ctx, L.k, 0, GDN_STATUS_OK};
            gdn__m2_am(&a, b.pparam);
            gdn__m2_am(&a, tp->A_log->mem);
            gdn__m2_am(&a, g->dA_log ? g->dA_log->mem : b.pparam);
            gdn__m2_am(&a, g->ddt_bias ? g->ddt_bias->mem : b.pparam);
            gdn__m2_am(&a, g->dD ? g->dD->mem : b.pparam);
            gdn__m2_ai(&a, s->NT);
            gdn__m2_ai(&a, s->H);
            gdn__m2_ai(&a, g->dA_log != NULL);
            gdn__m2_ai(&a, g->ddt_bias != NULL);
            gdn__m2_ai(&a, g->dD != NULL);
            if ((st = a.st) || (st = gdn__m2_enqueue(ctx, &L)))
                goto done;
        }
    }
done:
    bufs_release(&b);
    return st;
}
