/*
 * train.c - the optimizer step of a model: global gradient norm, clipping
 * as torch.nn.utils.clip_grad_norm_, learning-rate schedule, AdamW on every
 * parameter (kernels in lib/model/optim/).
 */
#include "model.h"
#include "optim.h"

#include <math.h>
#include <string.h>

void gdn_adamw_params_init(gdn_adamw_params *p)
{
    if (!p)
        return;
    memset(p, 0, sizeof(*p));
    p->lr           = 4e-4f;
    p->beta1        = 0.9f;
    p->beta2        = 0.95f;
    p->eps          = 1e-8f;
    p->weight_decay = 0.1f;
    p->clip_norm    = 1.0f;
    p->min_lr_ratio = 0.1f;
    p->accum_steps  = 1;
}

static gdn_status check_params(gdn_context *ctx, const gdn_adamw_params *p)
{
    static const char *fn = "gdn_model_optimizer_step";
    for (size_t i = 0; i < sizeof(p->reserved) / sizeof(p->reserved[0]); i++)
        if (p->reserved[i])
            return gdn__fail(ctx, GDN_STATUS_INVALID_ARGUMENT, "%s: reserved[%zu] != 0", fn, i);
    if (!(p->lr >= 0) || !isfinite(p->lr))
        return gdn__fail(ctx, GDN_STATUS_INVALID_ARGUMENT, "%s: lr = %g", fn, (double)p->lr);
    if (!(p->beta1 >= 0 && p->beta1 < 1) || !(p->beta2 >= 0 && p->beta2 < 1))
        return gdn__fail(ctx, GDN_STATUS_INVALID_ARGUMENT,
                         "%s: beta1 = %g, beta2 = %g must be in [0, 1)", fn, (double)p->beta1,
                         (double)p->beta2);
    if (!(p->eps > 0) || !isfinite(p->eps) || !(p->weight_decay >= 0) ||
        !isfinite(p->weight_decay) || !(p->clip_norm >= 0) || !isfinite(p->clip_norm))
        return gdn__fail(ctx, GDN_STATUS_INVALID_ARGUMENT,
                         "%s: eps must be > 0, weight_decay and clip_norm >= 0, all finite", fn);
    if (p->warmup_steps < 0 || p->total_steps < 0 || p->accum_steps < 1 ||
        !(p->min_lr_ratio >= 0 && p->min_lr_ratio <= 1))
        return gdn__fail(ctx, GDN_STATUS_INVALID_ARGUMENT,
                         "%s: warmup_steps, total_steps >= 0, accum_steps >= 1 and "
                         "min_lr_ratio in [0, 1] required",
                         fn);
    return GDN_STATUS_OK;
}

gdn_status gdn_model_optimizer_step(gdn_model *m, const gdn_adamw_params *p,
                                    gdn_step_report *rep)
{
    const gdn_tensor    **grads;
    struct gdn__adamw_hp  hp;
    double                ss = 0, norm, scale, lr;
    gdn_status            st;
    if (rep)
        memset(rep, 0, sizeof(*rep));
    if (!m)
        return GDN_STATUS_INVALID_ARGUMENT;
    if (!p)
        return gdn__fail(m->ctx, GDN_STATUS_INVALID_ARGUMENT,
                         "gdn_model_optimizer_step: params is NULL");
    if ((st = check_params(m->ctx, p)))
        return st;
    grads = gdn__malloc((size_t)m->n_params * sizeof(*grads));
    if (!grads)
        return gdn__fail(m->ctx, GDN_STATUS_OUT_OF_HOST_MEMORY,
                         "gdn_model_optimizer_step: out of memory");
    for (int32_t i = 0; i < m->n_params; i++)
        grads[i] = m->params[i].g;
    st = gdn__sumsq(m->ctx, grads, (size_t)m->n_params, &ss);
    gdn__free(grads);
    if (st)
        return st;
    /* the gradients hold sums over accum_steps micro-batches of mean losses */
    norm = sqrt(ss) / p->accum_steps;
    lr   = gdn__lr_schedule(m->opt_step, p->warmup_steps, p->total_steps, p->lr, p->min_lr_ratio);
    if (rep) {
        rep->lr        = lr;
        rep->grad_norm = norm;
        rep->step      = m->opt_step;
    }
    if (!isfinite(norm)) {
        if (rep)
            rep->skipped = 1;
        gdn__log(m->ctx, GDN_LOG_LEVEL_WARN,
                 "optimizer step %lld skipped: the gradient norm is not finite",
                 (long long)m->opt_step);
        return GDN_STATUS_OK;
    }
    scale = 1.0 / p->accum_steps;
    if (p->clip_norm > 0) { /* torch: coef = max_norm / (norm + 1e-6), clamped to 1 */
        double coef = p->clip_norm / (norm + 1e-6);
        if (coef < 1)
            scale *= coef;
    }
    memset(&hp, 0, sizeof(hp));
    hp.lr         = (float)lr;
    hp.beta1      = p->beta1;
    hp.beta2      = p->beta2;
    hp.eps        = p->eps;
    hp.grad_scale = (float)scale;
    hp.step       = m->opt_step + 1;
    for (int32_t i = 0; i < m->n_params; i++) {
        struct gdn__param *q = &m->params[i];
        hp.weight_decay      = q->decay ? p->weight_decay : 0.0f;
        if ((st = gdn__adamw_step(m->ctx, q->w, q->g, q->m, q->v, &hp)))
            return st;
    }
    m->opt_step++;
    if (rep)
        rep->step = m->opt_step;
    return GDN_STATUS_OK;
}
