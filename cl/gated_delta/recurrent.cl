/*
 * gated_delta/recurrent.cl - fused recurrent forward of the gated delta rule,
 * token by token (ALGORITHM.md §1.2, §3.4). Also the decode step (one token
 * per sequence, state updated in place).
 *
 * Math, per sequence n and value head hv (q/k head h = hv / (HV / H)), state
 * h in R^{K x V}, for each token t of the sequence:
 *     [QK_L2NORM]     q <- q / sqrt(|q|^2 + eps),  k <- k / sqrt(|k|^2 + eps)
 *     [GATE_IN_OP]    g <- -exp(A_log[hv]) * softplus(g + dt_bias[hv])
 *     [BETA_SIGMOID]  beta <- sigmoid(beta)   (x2 with NEG_EIGVAL)
 *     h <- exp(g) h;  u = beta (v - h^T k);  h <- h + k u^T;  o = scale h^T q
 * evaluated with one reduction over K per token:
 *     hk = h_old^T k, hq = h_old^T q, kq = k.q   (and |k|^2, |q|^2)
 *     u  = beta (v - exp(g) hk)
 *     o  = scale (exp(g) hq + u kq)
 *     h  = exp(g) h_old + k u^T
 *
 * Shapes (F32, token-major, packed varlen; seq_off [N + 1] token offsets):
 *     q, k [T, H, K]   v, o [T, HV, V]   g, beta [T, HV]   A_log, dt_bias [HV]
 *     h0, ht [N, HV, K, V] (V fastest). h0 and ht may be the same buffer
 *     (decode in place): every work-group reads its whole slice into
 *     registers before the token loop and writes it back after it, and the
 *     slices of different work-groups are disjoint.
 *
 * Work decomposition: one work-group per (n, hv, V-tile of BV columns),
 * groups numbered (n * HV + hv) * (V / BV) + tile (tiles of one head are
 * neighbours, so they share q/k in cache). The group is KS x (BV / VW)
 * work-items, 1-D, the column index fastest. Work-item (ks, jv) keeps rows
 * ks * RPW .. ks * RPW + RPW - 1 (RPW = K / KS) of columns
 * tile * BV + jv * VW .. + VW - 1 of the state in registers for the whole
 * token loop: each state row segment is read and written once, coalesced
 * (a warp covers whole 32-byte sectors of consecutive rows). The partial
 * sums over a work-item's rows are combined through local memory (double
 * buffered by token parity: one barrier per token); every work-item then
 * adds the KS partials of h^T k itself, and the row-0 work-items, which
 * write o, also those of h^T q. The next token's inputs are loaded before
 * the current token's reduction (software prefetch).
 *
 * Local memory: 2 * KS * (2 * BV + 3) floats (wide plan, K = V = 128:
 * 2 x 4 x 131 x 4 B = 4.1 KiB).
 *
 * Tuning macros (host plan: lib/ops/gated_delta/recurrent.c,
 * recurrent_plan_default, which also sets K, V and the flags):
 *     K, V          head dims (multiples of 16, <= 256)
 *     BV            state columns per work-group: a multiple of VW dividing V
 *                   (default 64)
 *     VW            columns per work-item, loaded as one vector: 1, 2 or 4
 *                   (default 4)
 *     KS            work-items along K: a power of two with K % (4 KS) == 0
 *                   (default 4); RPW = K / KS rows per work-item
 *     QK_L2NORM, GATE_IN_OP, BETA_SIGMOID, NEG_EIGVAL   0 or 1 (the
 *                   GDN_GATED_DELTA_* flags; NEG_EIGVAL needs BETA_SIGMOID)
 * The host picks "wide" (BV 64, VW 4, 32 rows per work-item) when there are
 * at least CUs / 2 such groups, else "lean" (BV 32, VW 2, 16 rows).
 *     UNIT_SEQ      1: every sequence is one token (decode), sequence n is
 *                   token n and there is no seq_off argument
 *     IN_PLACE      1: one state argument is both h0 and ht (decode), read
 *                   and written (has_h0 and store_ht must be 1)
 * Arguments: q, k, v, g, beta, [A_log, dt_bias: GATE_IN_OP], [seq_off: not
 * UNIT_SEQ], o, then state (IN_PLACE) or h0, ht, then H, HV, scale, eps,
 * [has_h0, store_ht: not IN_PLACE], [tb, te: not UNIT_SEQ]. Every kernel
 * argument costs host time at each launch (NVIDIA's driver on the H200:
 * about 0.3 us per buffer argument; 4.3 us for a kernel with one argument,
 * 7.3-8.3 us with 11 buffers and 8 scalars, this kernel's general form),
 * and a decode step is one launch, so the step's form passes only what it
 * reads. (The scalars as one struct argument were slower there: 13.2-15.3
 * us/step and 7.3-10.0 us of device time at N = 1, against 10.0-10.7 and
 * 6.5 for the former form in the same runs.) has_h0: else the state starts
 * at zero; store_ht: else the final state is not written; tb, te: the
 * window of tokens [tb, te) of every sequence this launch runs (clamped to
 * the sequence; 0, INT_MAX for all of it). The host splits long sequences
 * into windows on Mesa llvmpipe, which silently ends a work-item's loops
 * after 65535 iterations in total, passing the state from window to window
 * through ht -> h0.
 *
 * Measured on the H200 (NVIDIA OpenCL, H = HV = 16, K = V = 128, fp32 state;
 * back-to-back launches; copy = clEnqueueCopyBuffer of the state, which
 * reaches 4.1 TB/s at 256 MiB; an empty 1-element kernel costs 6-7.5 us):
 *     decode N = 1     lean   8-15 us/step (launch-bound; varies by run);
 *                     with UNIT_SEQ and IN_PLACE (8 fewer arguments), three
 *                     alternated runs: 9.5, 13.0, 12.6 us against 10.8,
 *                     16.3, 14.5 (N = 16: 10.5-13.3 against 15.0-16.7)
 *     decode N = 16    wide   9.4 us/step
 *     decode N = 64    wide   37.8 us/step, 3.55 TB/s, 98.5% of copy
 *     decode N = 256   wide   136 us/step,  3.93 TB/s, 96.1% of copy
 *     decode N = 64, HV = 32 (Qwen3-Next)   97.2% of copy
 *     decode N = 64, H = 8, K = V = 256     93.3% of copy
 *     prefill B x Tb tokens: 1 x 64: 28.8 us; 4 x 64: 49.8 us; 16 x 64: 165 us
 */
#include "gdn_common.clh"

#ifndef K
#define K 128
#endif
#ifndef V
#define V 128
#endif
#ifndef BV
#define BV 64
#endif
#ifndef VW
#define VW 4
#endif
#ifndef KS
#define KS 4
#endif
#ifndef QK_L2NORM
#define QK_L2NORM 0
#endif
#ifndef GATE_IN_OP
#define GATE_IN_OP 0
#endif
#ifndef BETA_SIGMOID
#define BETA_SIGMOID 0
#endif
#ifndef NEG_EIGVAL
#define NEG_EIGVAL 0
#endif
#ifndef UNIT_SEQ
#define UNIT_SEQ 0
#endif
#ifndef IN_PLACE
#define IN_PLACE 0
#endif

#define RPW (K / KS)  /* state rows per work-item */
#define NJ  (BV / VW) /* work-items along V */
#define WG  (NJ * KS) /* work-group size */
#define NVT (V / BV)  /* V-tiles per head */

#if K % (4 * KS) != 0
#error "K must be a multiple of 4 * KS"
#endif
#if BV % VW != 0 || V % BV != 0
#error "BV must be a multiple of VW and divide V"
#endif

#if VW == 1
typedef float vec_t;
#elif VW == 2
typedef float2 vec_t;
#elif VW == 4
typedef float4 vec_t;
#else
#error "VW must be 1, 2 or 4"
#endif
/* Offsets are multiples of VW elements, so vector accesses are aligned. */
#define VLOAD(p, off)     (*(__global const vec_t *)((p) + (off)))
#define VSTORE(p, off, x) (*(__global vec_t *)((p) + (off)) = (x))

/* RPW consecutive floats at p + off (16-byte aligned) into dst[0..RPW). */
#define LOAD_ROWS(dst, p, off)                                                                     \
    do {                                                                                           \
        __global const float4 *p4_ = (__global const float4 *)((p) + (off));                       \
        for (int r4_ = 0; r4_ < RPW / 4; r4_++) {                                                  \
            float4 x_          = p4_[r4_];                                                         \
            (dst)[4 * r4_]     = x_.x;                                                             \
            (dst)[4 * r4_ + 1] = x_.y;                                                             \
            (dst)[4 * r4_ + 2] = x_.z;                                                             \
            (dst)[4 * r4_ + 3] = x_.w;                                                             \
        }                                                                                          \
    } while (0)

__kernel __attribute__((reqd_work_group_size(WG, 1, 1)))
void gated_delta_recurrent(__global const float *q, __global const float *k,
                           __global const float *v, __global const float *g,
                           __global const float *beta,
#if GATE_IN_OP
                           __global const float *A_log, __global const float *dt_bias,
#endif
#if !UNIT_SEQ
                           __global const int *seq_off,
#endif
                           __global float *o,
#if IN_PLACE
                           __global float *state,
#else
                           __global const float *h0, __global float *ht,
#endif
                           int H, int HV, float scale, float eps
#if !IN_PLACE
                           , int has_h0, int store_ht
#endif
#if !UNIT_SEQ
                           , int tb, int te
#endif
                           )
{
#if IN_PLACE
    __global const float *h0 = state;
    __global float       *ht = state;
    const int             has_h0 = 1, store_ht = 1;
#endif
#if UNIT_SEQ
    const int tb = 0, te = 1;
#endif
    __local vec_t red_hk[2][KS][NJ];
    __local vec_t red_hq[2][KS][NJ];
    __local float red_s[2][KS][3]; /* k.q, |k|^2, |q|^2 */

    const int   lid = (int)get_local_id(0);
    const int   jv  = lid % NJ;
    const int   ks  = lid / NJ;
    const ulong grp = get_group_id(0);
    const int   vt  = (int)(grp % NVT);
    const ulong nh  = grp / NVT; /* n * HV + hv */
    const int   hv  = (int)(nh % (ulong)HV);
    const int   n   = (int)(nh / (ulong)HV);
    const int   hk_ = hv / (HV / H);
    const int   c0  = vt * BV + jv * VW; /* first column of this work-item */
    const int   r0  = ks * RPW;          /* first row of this work-item */
#if UNIT_SEQ
    const int   first = n, len = 1;
#else
    const int   first = seq_off[n], len = seq_off[n + 1] - first;
#endif
    const int   bos = first + min(tb, len); /* this launch's tokens */
    const int   eos = first + min(te, len);
    const ulong sbase = (nh * K + (ulong)r0) * V + (ulong)c0;

    vec_t hs[RPW];
    if (has_h0) {
        for (int r = 0; r < RPW; r++)
            hs[r] = VLOAD(h0, sbase + (ulong)r * V);
    } else {
        for (int r = 0; r < RPW; r++)
            hs[r] = (vec_t)(0.0f);
    }

#if GATE_IN_OP
    const float neg_A = -exp(A_log[hv]);
    const float dtb   = dt_bias[hv];
#endif

    /* Inputs of the current token (loaded one token ahead). */
    float kc[RPW], qc[RPW];
    vec_t vc = (vec_t)(0.0f);
    float gc = 0.0f, bc = 0.0f;
    if (bos < eos) {
        const ulong tq = ((ulong)bos * H + hk_) * K + r0;
        const ulong tv = (ulong)bos * HV + hv;
        LOAD_ROWS(kc, k, tq);
        LOAD_ROWS(qc, q, tq);
        vc = VLOAD(v, tv * V + c0);
        gc = g[tv];
        bc = beta[tv];
    }

    for (int t = bos; t < eos; t++) {
        const int buf = (t - bos) & 1;
        float     kn[RPW], qn[RPW];
        vec_t     vn = vc;
        float     gn = gc, bn = bc;

        /* Prefetch token t + 1 (uniform branch). */
        if (t + 1 < eos) {
            const ulong tq = ((ulong)(t + 1) * H + hk_) * K + r0;
            const ulong tv = (ulong)(t + 1) * HV + hv;
            LOAD_ROWS(kn, k, tq);
            LOAD_ROWS(qn, q, tq);
            vn = VLOAD(v, tv * V + c0);
            gn = g[tv];
            bn = beta[tv];
        } else {
            for (int r = 0; r < RPW; r++)
                kn[r] = qn[r] = 0.0f;
        }

        /* Partial sums over this work-item's rows. */
        {
            vec_t phk = (vec_t)(0.0f), phq = (vec_t)(0.0f);
            float pkq = 0.0f, pkk = 0.0f, pqq = 0.0f;
            for (int r = 0; r < RPW; r++) {
                phk = fma(hs[r], (vec_t)(kc[r]), phk);
                phq = fma(hs[r], (vec_t)(qc[r]), phq);
                pkq = fma(kc[r], qc[r], pkq);
#if QK_L2NORM
                pkk = fma(kc[r], kc[r], pkk);
                pqq = fma(qc[r], qc[r], pqq);
#endif
            }
            red_hk[buf][ks][jv] = phk;
            red_hq[buf][ks][jv] = phq;
            if (jv == 0) {
                red_s[buf][ks][0] = pkq;
                red_s[buf][ks][1] = pkk;
                red_s[buf][ks][2] = pqq;
            }
        }
        barrier(CLK_LOCAL_MEM_FENCE);

        {
            /* Every work-item needs h^T k (and |k|^2) for its columns; only
             * the row-0 work-items, which write o, also sum h^T q, k.q and
             * |q|^2. Sums run in the same order everywhere. */
            vec_t HK = (vec_t)(0.0f);
            for (int s = 0; s < KS; s++)
                HK += red_hk[buf][s][jv];
#if QK_L2NORM
            float KK = 0.0f;
            for (int s = 0; s < KS; s++)
                KK += red_s[buf][s][1];
            const float rk = 1.0f / sqrt(KK + eps);
            HK *= rk;
#else
            const float rk = 1.0f;
#endif
#if GATE_IN_OP
            const float x    = gc + dtb;
            const float sp   = x > 20.0f ? x : log1p(exp(x));
            const float gate = neg_A * sp;
#else
            const float gate = gc;
#endif
#if BETA_SIGMOID
            float b = 1.0f / (1.0f + exp(-bc));
#if NEG_EIGVAL
            b *= 2.0f;
#endif
#else
            const float b = bc;
#endif
            const float decay = exp(gate);
            const vec_t u     = b * (vc - decay * HK);
            if (ks == 0) {
                vec_t HQ = (vec_t)(0.0f);
                float KQ = 0.0f;
                for (int s = 0; s < KS; s++) {
                    HQ += red_hq[buf][s][jv];
                    KQ += red_s[buf][s][0];
                }
#if QK_L2NORM
                float QQ = 0.0f;
                for (int s = 0; s < KS; s++)
                    QQ += red_s[buf][s][2];
                const float rq = 1.0f / sqrt(QQ + eps);
                HQ *= rq;
                KQ *= rk * rq;
#else
                (void)eps;
#endif
                const vec_t ov = scale * fma((vec_t)(decay), HQ, u * KQ);
                VSTORE(o, ((ulong)t * HV + hv) * V + c0, ov);
            }
            for (int r = 0; r < RPW; r++)
                hs[r] = fma((vec_t)(kc[r] * rk), u, decay * hs[r]);
        }

        for (int r = 0; r < RPW; r++) {
            kc[r] = kn[r];
            qc[r] = qn[r];
        }
        vc = vn;
        gc = gn;
        bc = bn;
    }

    if (store_ht) {
        for (int r = 0; r < RPW; r++)
            VSTORE(ht, sbase + (ulong)r * V, hs[r]);
    }
}
