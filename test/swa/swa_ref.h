/*
 * swa_ref.h - float64 plain-C reference of sliding-window attention
 * (the SWA section of include/gdn.h): naive masked softmax attention, its exact
 * backward, and the rotary position embedding (rotate-half convention) with
 * its backward. No OpenCL. Layouts as in the op: token-major packed
 * x[t][head][d], sequences given by N + 1 offsets.
 */
#ifndef GDN_TEST_SWA_REF_H
#define GDN_TEST_SWA_REF_H

#include <stdint.h>

struct swa_ref_shape {
    int32_t        N;       /* sequences */
    const int32_t *offsets; /* N + 1 token offsets; offsets[N] = T */
    const int32_t *pos_off; /* N RoPE position offsets, or NULL (0) */
    int32_t        Hq, Hkv; /* query heads, key/value heads (Hq % Hkv == 0) */
    int32_t        D;       /* head dim */
    int64_t        W;       /* window >= 1 (token i sees j in (i - W, i]) */
    double         scale;   /* softmax scale */
    int            rope;    /* rotate q and k first */
    double         base;    /* RoPE base */
};

/* pos[t] = pos_off[n] + (t - offsets[n]) for t in sequence n. */
void swa_ref_positions(const struct swa_ref_shape *s, int32_t *pos);

/* y[t][h] = R(pos[t]) x[t][h] (inverse: R^T, the backward). y may be x. */
void swa_ref_rope(const double *x, double *y, int64_t T, int32_t H, int32_t D,
                  const int32_t *pos, double base, int inverse);

/* Attention on already-rotated q, k: o [T, Hq, D], lse [T, Hq] (lse may be
 * NULL). */
void swa_ref_attn_fwd(const struct swa_ref_shape *s, const double *q, const double *k,
                      const double *v, double *o, double *lse);
/* Its exact backward for loss = sum(o * dout): dq [T, Hq, D], dk, dv
 * [T, Hkv, D] (overwritten). */
void swa_ref_attn_bwd(const struct swa_ref_shape *s, const double *q, const double *k,
                      const double *v, const double *dout, double *dq, double *dk, double *dv);

/* The whole op: RoPE (when s->rope) then attention; and its backward w.r.t.
 * the unrotated inputs. */
void swa_ref_forward(const struct swa_ref_shape *s, const double *q, const double *k,
                     const double *v, double *o, double *lse);
void swa_ref_backward(const struct swa_ref_shape *s, const double *q, const double *k,
                      const double *v, const double *dout, double *dq, double *dk, double *dv);

#endif /* GDN_TEST_SWA_REF_H */
