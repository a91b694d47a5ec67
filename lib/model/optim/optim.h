/*
 * optim.h - internal interface of the optimizer (lib/model/optim/): one
 * AdamW step over a parameter tensor, the global gradient norm for
 * clipping, in-place scaling (gradient zeroing and accumulation) and the
 * learning-rate schedule. Device side: cl/optim/optim.cl. The token sampler
 * of the same folder (sample.c) is public API (gdn_sample in gdn.h).
 *
 * A training step of the model layer uses them in this order:
 *   sq = gdn__sumsq(every gradient)            blocks once, one read-back
 *   if (!isfinite(sq)) skip the step (zero the gradients with scale 0)
 *   clip = min(1, max_norm / (sqrt(sq) + 1e-6)) (torch.nn.utils.clip_grad_norm_)
 *   hp.grad_scale = clip (times 1/accumulation steps when the gradients are
 *                   sums of micro-batches)
 *   hp.lr = gdn__lr_schedule(step - 1, ...), hp.step = step (1-based)
 *   gdn__adamw_step(param, grad, m, v) per tensor (weight_decay 0 for norms,
 *                   biases and gates as the model decides)
 *   gdn__scale_f32(grad, 0) per tensor         exact zeros, NaN included
 *
 * Every function checks its arguments and records a message with
 * gdn__fail(); none aborts. Everything on the device is enqueued on the
 * context's in-order queue, so callers need no synchronisation between them.
 */
#ifndef GDN_MODEL_OPTIM_H
#define GDN_MODEL_OPTIM_H

#include "runtime.h"

/* Hyper-parameters of one AdamW step (torch.optim.AdamW, amsgrad=False,
 * maximize=False). */
struct gdn__adamw_hp {
    float   lr;            /* learning rate of this step, finite, >= 0               */
    float   beta1, beta2;  /* each in [0, 1), e.g. 0.9, 0.95                          */
    float   eps;           /* finite, > 0, e.g. 1e-8                                  */
    float   weight_decay;  /* decoupled (AdamW), finite, >= 0; 0: no decay            */
    float   grad_scale;    /* gradients are multiplied by this first (clip
                              coefficient and/or 1/accumulation steps), finite, >= 0 */
    int64_t step;          /* 1-based step count for bias correction, >= 1           */
};

/* One AdamW step over a parameter tensor, in place (PyTorch's single-tensor
 * formulation, element by element, in float):
 *   g = grad * grad_scale
 *   p = p * (1 - lr * weight_decay)
 *   m = lerp(m, g, 1 - beta1)                  (= beta1 m + (1 - beta1) g)
 *   v = v * beta2 + (1 - beta2) g^2
 *   p = p - (lr / bc1) * m / (sqrt(v) / sqrt(bc2) + eps)
 * with bc1 = 1 - beta1^step, bc2 = 1 - beta2^step, and every scalar factor
 * (1 - lr wd, 1 - beta, lr / bc1, sqrt(bc2)) computed on the host in double
 * and passed as float. param, m, v: F32, numel equal to grad's (shapes may
 * differ); grad: F32, read only; the four must be distinct buffers. m and v
 * start at zero for step 1 (the caller zeroes them). A NaN or inf gradient
 * poisons its element of p, m and v: check gdn__sumsq first. Deterministic
 * (each element is computed by one work-item, no reductions). Enqueued.
 * @return OK; INVALID_ARGUMENT (NULL, another context, aliasing, bad hp:
 * message names the field); SHAPE_MISMATCH (not F32, numel differs);
 * UNSUPPORTED (numel beyond 2^62); OPENCL / BUILD_FAILED. */
gdn_status gdn__adamw_step(gdn_context *ctx, gdn_tensor *param, const gdn_tensor *grad,
                           gdn_tensor *m, gdn_tensor *v, const struct gdn__adamw_hp *hp);

/* *out = sum over the n F32 tensors ts[0 .. n) of the sum of the squares of
 * their elements (the global gradient norm squared, for clipping). Each
 * tensor is reduced on the device into a few per-work-group partial sums
 * (float, Kahan-compensated per work-item, then a fixed tree in local
 * memory) written to one scratch buffer; a single blocking read brings all
 * partials back and the host adds them in double, tensor by tensor, group
 * by group. The order depends only on the sizes and the device's plan, so
 * the result has the same bits on every run. Empty tensors and n = 0 give
 * 0. A NaN or inf element (or a float partial overflowing, i.e. elements
 * beyond about 1.8e19 in magnitude) makes *out non-finite (inf or NaN), so
 * the caller can skip the step. Blocks (finishes the queue up to here).
 * @return OK; INVALID_ARGUMENT (ts or out NULL, a NULL tensor, another
 * context); SHAPE_MISMATCH (not F32); UNSUPPORTED (too large);
 * OUT_OF_DEVICE_MEMORY / OPENCL. *out is NaN on any error. */
gdn_status gdn__sumsq(gdn_context *ctx, const gdn_tensor *const *ts, size_t n, double *out);

/* t *= s in place, t F32 (any shape), s finite. s == 0 is a fill with +0.0
 * (exact zeros even over NaN/inf: gradient zeroing); s == 1 enqueues
 * nothing. Enqueued.
 * @return OK; INVALID_ARGUMENT (NULL, another context, s not finite);
 * SHAPE_MISMATCH (not F32); UNSUPPORTED; OPENCL / BUILD_FAILED. */
gdn_status gdn__scale_f32(gdn_context *ctx, gdn_tensor *t, float s);

/* Learning rate at 0-based `step`:
 *   step < warmup:      peak * (step + 1) / warmup   (linear warm-up; reaches
 *                       peak at step warmup - 1)
 *   total <= warmup + 1: peak for every step >= warmup (no room to decay;
 *                       this includes total <= warmup)
 *   otherwise:          min + (peak - min) (1 + cos(pi t)) / 2 with
 *                       min = peak * min_ratio and
 *                       t = min(1, (step - warmup) / (total - 1 - warmup)):
 *                       peak at step warmup, min at step total - 1 and after.
 * warmup = 0 is allowed (no warm-up); negative step or warmup count as 0.
 * Pure function of its arguments. */
double gdn__lr_schedule(int64_t step, int64_t warmup, int64_t total, double peak,
                        double min_ratio);

/* Tuning spaces of the kernels (optim.c; lib/tune/tune.h): "optim/adamw",
 * "optim/scale" (WG, GPC) and "optim/sumsq" (WG, GPC, QPW), bucket "N2^k" of
 * the tensor's element count. */
struct gdn_tune_space;
extern const struct gdn_tune_space gdn__optim_adamw_space;
extern const struct gdn_tune_space gdn__optim_scale_space;
extern const struct gdn_tune_space gdn__optim_sumsq_space;

#endif /* GDN_MODEL_OPTIM_H */
