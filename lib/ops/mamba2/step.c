/*
 * step.c - Mamba2 decode step (mamba_ssm selective_state_update): one token
 * per sequence, the state updated in place by cl/mamba2/step.cl.
 * The tape here only carries the validated shape and borrowed inputs (its
 * saved buffers are not allocated).
 */
#include "mamba2.h"

gdn_status gdn__m2_step(const struct gdn_mamba2_tape *tp, gdn_tensor *state, gdn_tensor *y)
{
    const struct gdn_m2_shape *s = &tp->s;
    struct gdn_m2_step_plan    p;
    struct gdn_m2_launch       L;
    gdn_status                 st;

    gdn__m2_step_plan(tp->ctx, s, &p);
    if ((st = gdn__m2_step_kernel(tp->ctx, s, &p, &L)))
        return st;
    {
        struct gdn_m2_args a = {tp->ctx, L.k, 0, GDN_STATUS_OK};
        gdn__m2_am(&a, tp->x->mem);
        gdn__m2_am(&a, tp->dt->mem);
        gdn__m2_am(&a, tp->A_log->mem);
        gdn__m2_am(&a, s->has_bias ? tp->dt_bias->mem : tp->A_log->mem);
        gdn__m2_am(&a, tp->B->mem);
        gdn__m2_am(&a, tp->C->mem);
        gdn__m2_am(&a, s->has_D ? tp->D->mem : tp->A_log->mem);
        gdn__m2_am(&a, state->mem);
        gdn__m2_am(&a, y->mem);
        gdn__m2_ai(&a, s->H);
        gdn__m2_ai(&a, s->G);
        gdn__m2_ai(&a, s->P);
        gdn__m2_ai(&a, s->DS);
        gdn__m2_ai(&a, s->has_bias);
        gdn__m2_ai(&a, s->has_D);
        gdn__m2_af(&a, s->dt_min);
        gdn__m2_af(&a, s->dt_max);
        if (a.st)
            return a.st;
    }
    return gdn__m2_enqueue(tp->ctx, &L);
}
