/*
 * gated_delta/state_fwd.cl - forward stage F4 of the chunked gated delta rule
 * (docs/ALGORITHM.md §2.1, §2.2 "F4 pseudo-code", fla chunk_delta_h): the
 * only sequential stage, a scan over the chunks of each sequence.
 *
 * Math, per sequence n, value head hv (q/k head hv / (HV/H)) and V tile,
 * with the running state Hs [K, BV] (fp32) starting at h0 (or 0):
 *   for each chunk c of the sequence (rows i < L):
 *     h[c]   = Hs                                  (state ENTERING chunk c)
 *     Vn     = u_c - w_c Hs                        [L, BV] -> v_new (pre-decay)
 *     gl     = G[last valid row of c]
 *     Hs     = exp2(gl) Hs + K_c^T diag(exp2(gl - G)) Vn
 *   ht = Hs
 * Every exponent is <= 0; rows >= L are masked (select) before exp2.
 *
 * Shapes (F32, token-major): k [T, H, K]; w [T, HV, K]; u, v_new
 * [T, HV, V]; G [T, HV]; seq_off, chunk_off [N + 1] int; h0, ht
 * [N, HV, K, V] (either may be NULL: has_h0 / has_ht); h [NT, HV, K, V]
 * with chunk c of sequence n at global chunk index chunk_off[n] + c.
 *
 * Chunk windows: one launch scans chunks [cb, ce) of every sequence (ce is
 * clamped to the sequence's chunk count). A window that starts past chunk
 * 0 takes its state from h[cb] (written by the previous window), and a
 * window that stops before the last chunk stores its state to h[ce]
 * instead of ht. cb = 0, ce >= the longest sequence's chunk count is the
 * whole scan in one launch. The host splits the scan on devices that stop
 * long-running work-items (Mesa llvmpipe ends every loop of a work-item
 * after 65535 iterations in total, silently): see state_plan in
 * lib/ops/gated_delta/chunk_fwd.c.
 *
 * One work-group = one (sequence, V tile, value head). The state
 * tile lives in local memory (K x BV); w and k are staged in 64 x BK
 * slices; LX x LY work-items own strided micro-tiles: 64/LY x BV/LX of
 * Vn and BK/LY x BV/LX of each BK-row slice of the state update.
 * Local memory: 4 * (K * BV + 64 * (BK + 1) + 64 * BV + 64) bytes
 * (32.5 KiB at K = 128, BV = 32, BK = 32). Global (LX * LY * N * V / BV,
 * HV), local (LX * LY, 1); group (n * V / BV + iv, hv).
 *
 * Tuning macros (#ifndef defaults; set by state_plan_default in
 * lib/ops/gated_delta/chunk_fwd.c):
 *   K, V  head dims, multiples of 16 in [16, 256] (required)
 *   BV    V tile: 16, 32 or 64, dividing V (default 16)
 *   BK    K slice: 16, 32 or 64, dividing K, a multiple of LY (default 16)
 *   LX    work-items along the tile columns, dividing BV (default 4)
 *   LY    work-items along rows, dividing 64 and BK (default 16)
 *   PREFETCH, REGSTATE  build the variants gated_delta_state_fwd_pf and
 *         gated_delta_state_fwd_rs below (same function, other schedules)
 *   RSVEC, SPLITK  with REGSTATE: RSVEC=1 its float4 form (tuning value
 *         PREFETCH=3; with SPLITK=1, PREFETCH=4), RSVEC=2 its form with
 *         slices copied two ahead (PREFETCH=5), RSVEC=3 those copies with
 *         the products on warp tiles (PREFETCH=6)
 *   GDN_ASYNC  1: GDN_CP16 is cp.async (RSVEC=2 and 3; the host sets it on
 *         NVIDIA compute capability >= 8.0), 0 (default): its plain twin
 *   GDN_TC  1: RSVEC=3's products are 3xTF32 mma.sync (the host sets it
 *         where it sets GDN_ASYNC), 0 (default): their plain twin
 *   GDN_TILE_UNROLL  the unroll factor of the float4 products' loops over k
 *                    (tuning parameter UNROLL; 0, the default: the
 *                    compiler's choice; cl/include/gdn_tile.clh)
 */
#include "gdn_common.clh"
#include "gdn_tile.clh"

/* The parameters of every kernel in this file, in the order the host binds them
 * (lib/ops/gated_delta): the forms differ in their bodies only. */
#define STATE_FWD_PARAMS                                                                           \
    __global const float *k, __global const float *w, __global const float *u,                     \
    __global const float *G, __global const int *seq_off, __global const int *chunk_off,           \
    __global const float *h0, __global float *h, __global float *v_new, __global float *ht,        \
    int H, int HV, int has_h0, int has_ht, int cb, int ce

#ifndef K
#error "K (key head dim) must be defined"
#endif
#ifndef V
#error "V (value head dim) must be defined"
#endif
#ifndef BV
#define BV 16
#endif
#ifndef BK
#define BK 16
#endif
#ifndef LX
#define LX 4
#endif
#ifndef LY
#define LY 16
#endif

#define CH  64
#define WG  (LX * LY)
#define LDK (BK + 1)
#define TM1 (CH / LY)  /* rows of Vn per work-item */
#define TM2 (BK / LY)  /* rows of a state slice per work-item */
#define TN  (BV / LX)  /* columns per work-item */

#if (V % BV) != 0 || (K % BK) != 0 || (BV % LX) != 0 || (CH % LY) != 0 || (BK % LY) != 0
#error "state_fwd: inconsistent tile macros"
#endif

/* The indices every variant starts from: work-item (tx, ty), sequence n
 * (tokens [bos, eos), chunks c0 + [0, nc)), V tile at column v0, value head
 * hv reading q/k head kh, the state's offset sbase in h0 / ht, and the end
 * c_end of this launch's chunk window. */
#define SCAN_INDICES()                                                                             \
    const int   lid = (int)get_local_id(0);                                                        \
    const int   tx = lid % LX, ty = lid / LX;                                                      \
    const int   n = (int)get_group_id(0) / (V / BV);                                               \
    const int   iv = (int)get_group_id(0) - n * (V / BV);                                          \
    const int   hv = (int)get_group_id(1);                                                         \
    const int   kh = hv / (HV / H);                                                                \
    const int   v0 = iv * BV;                                                                      \
    const int   bos = seq_off[n], eos = seq_off[n + 1];                                            \
    const int   c0 = chunk_off[n], nc = chunk_off[n + 1] - c0;                                     \
    const ulong sbase = ((ulong)n * (ulong)HV + (ulong)hv) * (ulong)K * (ulong)V + (ulong)v0;      \
    const int   c_end = min(ce, nc)

/* The state entering chunk cb: h0 (or 0) for the first window, else h[cb]
 * as the previous window stored it. */
#define WINDOW_LOAD_STATE()                                                                        \
    do {                                                                                           \
        const ulong hb_ = ((ulong)(c0 + cb) * (ulong)HV + (ulong)hv) * (ulong)K * (ulong)V +      \
                          (ulong)v0;                                                               \
        for (int e = lid; e < K * BV; e += WG) {                                                   \
            const int   r = e / BV, j = e - r * BV;                                                \
            const ulong o = (ulong)r * V + (ulong)j;                                               \
            HsL[e] = cb > 0 ? h[hb_ + o] : has_h0 ? h0[sbase + o] : 0.0f;                          \
        }                                                                                          \
    } while (0)
/* After the window: the state entering chunk c_end into h[c_end] when the
 * sequence goes on, else the final state into ht. */
#define WINDOW_STORE_STATE()                                                                       \
    do {                                                                                           \
        const ulong hb_ = ((ulong)(c0 + c_end) * (ulong)HV + (ulong)hv) * (ulong)K * (ulong)V +   \
                          (ulong)v0;                                                               \
        if (c_end < nc || has_ht)                                                                  \
            for (int e = lid; e < K * BV; e += WG) {                                               \
                const int   r = e / BV, j = e - r * BV;                                            \
                const ulong o = (ulong)r * V + (ulong)j;                                           \
                if (c_end < nc)                                                                    \
                    h[hb_ + o] = HsL[e];                                                           \
                else                                                                               \
                    ht[sbase + o] = HsL[e];                                                        \
            }                                                                                      \
    } while (0)

/* The register forms (gated_delta_state_fwd_rs, below): the state entering
 * chunk cb (h0 or 0 for the first window, else h[cb]) into the work-item's
 * S[TRS][TN], rows SROW(a) and columns SCOL(j) as each form defines them;
 * after the window, S into h[c_end] when the sequence goes on, else into
 * ht. */
#define RS_WINDOW_LOAD_S()                                                                         \
    do {                                                                                           \
        const ulong hb_ = ((ulong)(c0 + cb) * (ulong)HV + (ulong)hv) * (ulong)K * (ulong)V +      \
                          (ulong)v0;                                                               \
        for (int a_ = 0; a_ < TRS; a_++)                                                           \
            for (int j_ = 0; j_ < TN; j_++) {                                                      \
                const ulong o_ = (ulong)SROW(a_) * V + (ulong)SCOL(j_);                            \
                S[a_][j_]      = cb > 0 ? h[hb_ + o_] : has_h0 ? h0[sbase + o_] : 0.0f;            \
            }                                                                                      \
    } while (0)
#define RS_WINDOW_STORE_S()                                                                        \
    do {                                                                                           \
        const ulong hb_ = ((ulong)(c0 + c_end) * (ulong)HV + (ulong)hv) * (ulong)K * (ulong)V +   \
                          (ulong)v0;                                                               \
        if (c_end < nc || has_ht)                                                                  \
            for (int a_ = 0; a_ < TRS; a_++)                                                       \
                for (int j_ = 0; j_ < TN; j_++) {                                                  \
                    const ulong o_ = (ulong)SROW(a_) * V + (ulong)SCOL(j_);                        \
                    if (c_end < nc)                                                                \
                        h[hb_ + o_] = S[a_][j_];                                                   \
                    else                                                                           \
                        ht[sbase + o_] = S[a_][j_];                                                \
                }                                                                                  \
    } while (0)

__kernel __attribute__((reqd_work_group_size(WG, 1, 1)))
void gated_delta_state_fwd(STATE_FWD_PARAMS)
{
    __local float HsL[K * BV];     /* running state tile */
    __local float SL[CH * LDK];    /* w or k slice */
    __local float VL[CH * BV];     /* decayed Vn */
    __local float Gs[CH];
    SCAN_INDICES();

    if (cb > 0 && cb >= nc)
        return; /* this sequence was finished by an earlier window */
    WINDOW_LOAD_STATE();

    for (int c = cb; c < c_end; c++) {
        const int   first = bos + c * CH;
        const int   L = min(CH, eos - first);
        const ulong hbase =
            ((ulong)(c0 + c) * (ulong)HV + (ulong)hv) * (ulong)K * (ulong)V + (ulong)v0;
        float acc1[TM1][TN];

        barrier(CLK_LOCAL_MEM_FENCE);
        /* h[c] = state entering the chunk; chunk gates. */
        for (int e = lid; e < K * BV; e += WG) {
            const int r = e / BV, j = e - r * BV;
            h[hbase + (ulong)r * V + (ulong)j] = HsL[e];
        }
        for (int r = lid; r < CH; r += WG)
            Gs[r] = r < L ? G[(ulong)(first + r) * (ulong)HV + (ulong)hv] : 0.0f;

        /* Vn = u - w Hs */
        GDN_TILE_ZERO(acc1, TM1, TN);
        for (int k0 = 0; k0 < K; k0 += BK) {
            barrier(CLK_LOCAL_MEM_FENCE);
            for (int e = lid; e < CH * BK; e += WG) {
                const int r = e / BK, d = e - r * BK;
                float     x = 0.0f;
                if (r < L)
                    x = w[((ulong)(first + r) * (ulong)HV + (ulong)hv) * (ulong)K +
                          (ulong)(k0 + d)];
                SL[r * LDK + d] = x;
            }
            barrier(CLK_LOCAL_MEM_FENCE);
            GDN_TILE_MMA(acc1, TM1, TN, SL, LDK, 0, (HsL + k0 * BV), BV, 0, ty, LY, tx, LX, BK);
        }
        {
            const float gl = Gs[L - 1];
            for (int a = 0; a < TM1; a++) {
                const int   i  = ty + LY * a;
                const bool  ok = i < L;
                const float dec = exp2(select(0.0f, gl - Gs[i], (int)ok));
                for (int j = 0; j < TN; j++) {
                    const int col = tx + LX * j;
                    float     vn  = 0.0f;
                    if (ok) {
                        const ulong at = ((ulong)(first + i) * (ulong)HV + (ulong)hv) * (ulong)V +
                                         (ulong)(v0 + col);
                        vn             = u[at] - acc1[a][j];
                        v_new[at]      = vn;
                    }
                    VL[i * BV + col] = select(0.0f, vn * dec, (int)ok);
                }
            }
        }

        /* Hs = exp2(gl) Hs + K_c^T VL, one BK-row slice at a time. */
        {
            const float decay = exp2(Gs[L - 1]);
            for (int k0 = 0; k0 < K; k0 += BK) {
                float acc2[TM2][TN];
                barrier(CLK_LOCAL_MEM_FENCE);
                for (int e = lid; e < CH * BK; e += WG) {
                    const int r = e / BK, d = e - r * BK;
                    float     x = 0.0f;
                    if (r < L)
                        x = k[((ulong)(first + r) * (ulong)H + (ulong)kh) * (ulong)K +
                              (ulong)(k0 + d)];
                    SL[r * LDK + d] = x;
                }
                barrier(CLK_LOCAL_MEM_FENCE);
                GDN_TILE_ZERO(acc2, TM2, TN);
                GDN_TILE_MMA(acc2, TM2, TN, SL, LDK, 1, VL, BV, 0, ty, LY, tx, LX, CH);
                for (int a = 0; a < TM2; a++)
                    for (int j = 0; j < TN; j++) {
                        const int at = (k0 + ty + LY * a) * BV + tx + LX * j;
                        HsL[at]      = fma(decay, HsL[at], acc2[a][j]);
                    }
            }
        }
    }

    barrier(CLK_LOCAL_MEM_FENCE);
    WINDOW_STORE_STATE();
}

#ifdef PREFETCH
/*
 * gated_delta_state_fwd_pf - the same function as gated_delta_state_fwd,
 * scheduled for latency: the whole chunk of w (then of k) is staged in local
 * memory at once, and the next chunk's w, k, u and G are loaded into
 * registers while the current chunk computes, so global latency is hidden
 * and a chunk costs four barriers instead of 2 K / BK + 2.
 *
 * Extra tuning macro: PREFETCH (defined: build this kernel). Local memory:
 * 4 * (64 * (K + 1) + K * BV + 64 * BV + 64) bytes: 45.3 KiB at K = 128,
 * BV = 16; the plan uses it only where that fits. Registers per work-item:
 * 2 * 64 * K / WG + TM1 * TN floats of prefetch.
 */
#define NPF (CH * K / WG) /* w (and k) elements prefetched per work-item */
#define TM2F (K / LY)     /* state rows per work-item */
#define LDW (K + 1)

#if (CH * K) % WG != 0 || K % LY != 0 || WG < CH
#error "state_fwd_pf: inconsistent tile macros (and one work-item per chunk row at least)"
#endif

__kernel __attribute__((reqd_work_group_size(WG, 1, 1)))
void gated_delta_state_fwd_pf(STATE_FWD_PARAMS)
{
    __local float SL[CH * LDW];  /* the chunk's w, then its k */
    __local float HsL[K * BV];   /* running state tile */
    __local float VL[CH * BV];   /* decayed Vn */
    __local float Gs[CH];
    SCAN_INDICES();
    float         wr[NPF], kr[NPF], ur[TM1][TN], gr = 0.0f;

    if (cb > 0 && cb >= nc)
        return; /* this sequence was finished by an earlier window */
    WINDOW_LOAD_STATE();

/* Load chunk cc's w, k, u, G into registers (rows past the chunk: 0). */
#define PF_LOAD_WK(cc)                                                                             \
    do {                                                                                           \
        const int f_ = bos + (cc) * CH, l_ = min(CH, eos - f_);                                    \
        for (int p_ = 0; p_ < NPF; p_++) {                                                         \
            const int e_ = lid + p_ * WG, r_ = e_ / K, d_ = e_ - r_ * K;                           \
            const bool ok_ = r_ < l_;                                                              \
            wr[p_] = ok_ ? w[((ulong)(f_ + r_) * (ulong)HV + (ulong)hv) * (ulong)K + (ulong)d_]    \
                         : 0.0f;                                                                   \
            kr[p_] = ok_ ? k[((ulong)(f_ + r_) * (ulong)H + (ulong)kh) * (ulong)K + (ulong)d_]     \
                         : 0.0f;                                                                   \
        }                                                                                          \
    } while (0)
#define PF_LOAD_UG(cc)                                                                             \
    do {                                                                                           \
        const int f_ = bos + (cc) * CH, l_ = min(CH, eos - f_);                                    \
        for (int a_ = 0; a_ < TM1; a_++) {                                                         \
            const int i_ = ty + LY * a_;                                                           \
            for (int j_ = 0; j_ < TN; j_++)                                                        \
                ur[a_][j_] = i_ < l_ ? u[((ulong)(f_ + i_) * (ulong)HV + (ulong)hv) * (ulong)V +  \
                                         (ulong)(v0 + tx + LX * j_)]                               \
                                     : 0.0f;                                                       \
        }                                                                                          \
        gr = lid < l_ ? G[(ulong)(f_ + lid) * (ulong)HV + (ulong)hv] : 0.0f;                       \
    } while (0)

    if (cb < c_end) {
        PF_LOAD_WK(cb);
        PF_LOAD_UG(cb);
    }
    for (int c = cb; c < c_end; c++) {
        const int   first = bos + c * CH;
        const int   L = min(CH, eos - first);
        const ulong hbase =
            ((ulong)(c0 + c) * (ulong)HV + (ulong)hv) * (ulong)K * (ulong)V + (ulong)v0;
        float acc1[TM1][TN];
        float ucur[TM1][TN];

        barrier(CLK_LOCAL_MEM_FENCE);
        /* h[c] = state entering the chunk; stage w and the gates. */
        for (int e = lid; e < K * BV; e += WG) {
            const int r = e / BV, j = e - r * BV;
            h[hbase + (ulong)r * V + (ulong)j] = HsL[e];
        }
        for (int p = 0; p < NPF; p++) {
            const int e = lid + p * WG, r = e / K, d = e - r * K;
            SL[r * LDW + d] = wr[p];
        }
        if (lid < CH)
            Gs[lid] = gr;
        for (int a = 0; a < TM1; a++)
            for (int j = 0; j < TN; j++)
                ucur[a][j] = ur[a][j];
        barrier(CLK_LOCAL_MEM_FENCE);
        /* The next chunk's w is in flight while this one computes. */
        if (c + 1 < c_end) {
            const int f_ = bos + (c + 1) * CH, l_ = min(CH, eos - f_);
            for (int p_ = 0; p_ < NPF; p_++) {
                const int  e_ = lid + p_ * WG, r_ = e_ / K, d_ = e_ - r_ * K;
                wr[p_] = r_ < l_ ? w[((ulong)(f_ + r_) * (ulong)HV + (ulong)hv) * (ulong)K +
                                     (ulong)d_]
                                 : 0.0f;
            }
        }

        /* Vn = u - w Hs */
        GDN_TILE_ZERO(acc1, TM1, TN);
        GDN_TILE_MMA(acc1, TM1, TN, SL, LDW, 0, HsL, BV, 0, ty, LY, tx, LX, K);
        {
            const float gl = Gs[L - 1];
            for (int a = 0; a < TM1; a++) {
                const int   i   = ty + LY * a;
                const bool  ok  = i < L;
                const float dec = exp2(select(0.0f, gl - Gs[i], (int)ok));
                for (int j = 0; j < TN; j++) {
                    const int   col = tx + LX * j;
                    const float vn  = ucur[a][j] - acc1[a][j];
                    if (ok)
                        v_new[((ulong)(first + i) * (ulong)HV + (ulong)hv) * (ulong)V +
                              (ulong)(v0 + col)] = vn;
                    VL[i * BV + col] = select(0.0f, vn * dec, (int)ok);
                }
            }
        }
        if (c + 1 < c_end)
            PF_LOAD_UG(c + 1);
        barrier(CLK_LOCAL_MEM_FENCE);
        /* Stage k over w (all reads of w are done). */
        for (int p = 0; p < NPF; p++) {
            const int e = lid + p * WG, r = e / K, d = e - r * K;
            SL[r * LDW + d] = kr[p];
        }
        barrier(CLK_LOCAL_MEM_FENCE);
        if (c + 1 < c_end) {
            const int f_ = bos + (c + 1) * CH, l_ = min(CH, eos - f_);
            for (int p_ = 0; p_ < NPF; p_++) {
                const int e_ = lid + p_ * WG, r_ = e_ / K, d_ = e_ - r_ * K;
                kr[p_] = r_ < l_ ? k[((ulong)(f_ + r_) * (ulong)H + (ulong)kh) * (ulong)K +
                                     (ulong)d_]
                                 : 0.0f;
            }
        }
        /* Hs = exp2(gl) Hs + K_c^T VL (each work-item owns its state rows). */
        {
            const float decay = exp2(Gs[L - 1]);
            float       acc2[TM2F][TN];
            GDN_TILE_ZERO(acc2, TM2F, TN);
            GDN_TILE_MMA(acc2, TM2F, TN, SL, LDW, 1, VL, BV, 0, ty, LY, tx, LX, CH);
            for (int a = 0; a < TM2F; a++)
                for (int j = 0; j < TN; j++) {
                    const int at = (ty + LY * a) * BV + tx + LX * j;
                    HsL[at]      = fma(decay, HsL[at], acc2[a][j]);
                }
        }
    }
#undef PF_LOAD_WK
#undef PF_LOAD_UG

    barrier(CLK_LOCAL_MEM_FENCE);
    WINDOW_STORE_STATE();
}
#endif /* PREFETCH */

/* At a chunk's start in the register forms: S into h[c] (at hb_) and into XL,
 * the B operand of w Hs (float4s in the forms with RSVEC), and the chunk's
 * gates gr into Gs. */
#if defined(RSVEC) && RSVEC
#define RS_STATE_OUT_(hb_)                                                                         \
    for (int a_ = 0; a_ < TRS; a_++)                                                               \
        for (int j_ = 0; j_ < TN; j_ += 4) {                                                       \
            const int    r_ = SROW(a_), c_ = SCOL(j_);                                             \
            const float4 x_ = GDN_TILE_ROW4(S, a_, j_);                                            \
            GDN_ST4L(x_, XL + r_ * BV + c_);                                                       \
            GDN_ST4G(x_, h + (hb_) + (ulong)r_ * V + (ulong)c_);                                   \
        }
#else
#define RS_STATE_OUT_(hb_)                                                                         \
    for (int a_ = 0; a_ < TRS; a_++)                                                               \
        for (int j_ = 0; j_ < TN; j_++) {                                                          \
            const int r_ = SROW(a_), c_ = SCOL(j_);                                                \
            XL[r_ * BV + c_]                       = S[a_][j_];                                    \
            h[(hb_) + (ulong)r_ * V + (ulong)c_] = S[a_][j_];                                      \
        }
#endif
#define RS_CHUNK_STAGE(hb_)                                                                        \
    do {                                                                                           \
        RS_STATE_OUT_(hb_);                                                                        \
        for (int p_ = 0; p_ < NGS; p_++)                                                           \
            if (lid + p_ * WG < CH)                                                                \
                Gs[lid + p_ * WG] = gr[p_];                                                        \
    } while (0)
/* The gates of rows f_ ... f_ + l_ - 1 into gr (0 past them). */
#define RS_LOAD_G(f_, l_)                                                                          \
    for (int p_ = 0; p_ < NGS; p_++) {                                                             \
        const int r_ = lid + p_ * WG;                                                              \
        gr[p_] = r_ < (l_) ? G[((f_) + r_) * HV + hv] : 0.0f;                                     \
    }
/* The float4 forms (RSVEC = 1, 2): chunk cc's u (the work-item's Vn
 * entries, rows VROW(a) and columns SCOL(j); of row a_ only where keep
 * holds, else 0) and its gates. */
#define RS_LOAD_UG4(cc, keep)                                                                      \
    do {                                                                                           \
        const int              f_ = bos + (cc) * CH, l_ = min(CH, eos - f_);                      \
        const __global float *b_ = u + (f_ * HV + hv) * V + v0;                                   \
        for (int a_ = 0; a_ < RVS; a_++) {                                                         \
            const int i_ = VROW(a_);                                                               \
            for (int j_ = 0; j_ < TN; j_ += 4) {                                                   \
                float4 t_ = (float4)(0.0f);                                                        \
                if (i_ < l_ && (keep))                                                             \
                    t_ = GDN_LD4G(b_ + (i_ * HV * V + SCOL(j_)));                                  \
                ur[a_][j_] = t_.x, ur[a_][j_ + 1] = t_.y, ur[a_][j_ + 2] = t_.z;                   \
                ur[a_][j_ + 3] = t_.w;                                                             \
            }                                                                                      \
        }                                                                                          \
        RS_LOAD_G(f_, l_);                                                                         \
    } while (0)

#if defined(REGSTATE) && !(defined(RSVEC) && RSVEC >= 2)
/*
 * gated_delta_state_fwd_rs - the same function as gated_delta_state_fwd,
 * with the running state in registers: work-item (tx, ty) owns the state
 * rows ty + LY a (a < K / LY) and columns tx + LX j (j < BV / LX) for the
 * whole scan, so the update Hs = exp2(gl) Hs + K_c^T VL accumulates straight
 * into registers and each product has a larger micro-tile per work-item
 * than the sliced kernel (fewer local-memory reads per fma). Each chunk:
 *   1. the state goes to local memory (the B operand of w Hs) and to h[c];
 *   2. Vn = u - w Hs over BK-column slices of w;
 *   3. the decayed Vn replaces the state in local memory;
 *   4. Hs = exp2(gl) Hs + K_c^T VL over slices of 64 K / BK rows of k (all
 *      K columns), so every slice updates all of a work-item's state.
 * w and k slices hold the same number of values (64 BK): one register
 * buffer carries either.
 * The next slice of w or k (and the next chunk's u and gates) is loaded
 * into registers while the current one computes: a chunk costs 4 K / BK
 * barriers and no exposed global latency after the first.
 *
 * RSVEC=1 (PREFETCH=3 in the tuning space) makes every work-item own
 * contiguous rows and columns instead of strided ones and read its operands
 * from local memory as float4 (w is staged transposed, rows padded to a
 * multiple of 4 floats), a quarter of the local-memory instructions per
 * fma; the slices, u, v_new, h and the state tile also move as float4s. It
 * needs 64 / LY, K / LY, BV / LX and 64 BK / (4 WG) to be whole.
 *
 * SPLITK=1 (PREFETCH=4 in the tuning space, needs RSVEC) doubles the
 * work-group: two halves of LX x LY work-items share each chunk's products.
 * Half hf owns state rows hf K/2 ... (K/2 / LY contiguous rows per
 * work-item), so the update K_c^T VL is split by rows; for Vn = u - w Hs
 * both halves compute the same Vn entries over their own K/2 rows of Hs
 * (each staged w slice holds BK/2 columns of either half), exchange their
 * partial sums through local memory (RL, 2 x 64 x BV floats) and each
 * finishes half the rows of Vn. Per chunk a work-item does half the fmas of
 * the plain form with half the state in registers: a shorter sequential path
 * per chunk for the same V tile, meant for few (sequence, head) pairs per
 * compute unit: the GPU default when there are fewer groups than compute
 * units (state_plan_default in lib/ops/gated_delta/chunk_fwd.c).
 *
 * Extra tuning macro: REGSTATE (defined: build this kernel). BK: the K
 * slice of staged w columns (divides K, a multiple of LY, and K / BK divides
 * 64). LY must divide 64 and K. Local memory: 4 * (max(64 (BK + 1),
 * BI (K + 1)) + max(K, 64) BV + 64) bytes (41.3 KiB at K = 128, BV = 64,
 * BK = 32); with RSVEC the slice takes max(BK (64 + 4), BI (K + 4)) floats. Registers per work-item:
 * K BV / WG state + 2 * 64 BV / WG (Vn accumulator, u) + 64 BK / WG
 * prefetched slice.
 */
#ifndef SPLITK
#define SPLITK 0
#endif
#if SPLITK
#undef WG
#define WG (2 * LX * LY) /* two halves */
#define KH (K / 2)       /* state rows of a half */
#define HB (BK / 2)      /* columns of a staged w slice per half */
#if !RSVEC || (K % (2 * LY)) != 0 || (BK % 2) != 0
#error "state_fwd_rs: SPLITK needs RSVEC, K a multiple of 2 LY and BK even"
#endif
#else
#define KH K
#define HB BK
#endif
#define TRS (KH / LY)           /* state rows per work-item */
#define RVS (CH / LY)           /* Vn rows per work-item */
#define NSL (K / BK)            /* slices of w (and of k) per chunk */
#define BI  (CH / NSL)          /* rows of k per slice */
#define NPS (CH * BK / WG)      /* slice elements per work-item */
#define NGS ((CH + WG - 1) / WG) /* gates per work-item */
#define XROWS (K > CH ? K : CH)
#undef LDW
#undef LDK
#ifndef RSVEC
#define RSVEC 0
#endif
#if RSVEC
#define SROW(a) (hf * KH + tq * TRS + (a)) /* state rows, Vn rows, columns of a work-item */
#define VROW(a) (tq * RVS + (a))
#define SCOL(j) (tx * TN + (j))
#define LDW (CH + 4) /* w slice stored transposed: [BK][LDW] */
#define LDK (K + 4)  /* k slice: [BI][LDK] */
#define SLN (BK * LDW > BI * LDK ? BK * LDW : BI * LDK)
#define NP4 (NPS / 4)      /* float4s of a staged slice per work-item */
#if (RVS % 4) != 0 || (TRS % 4) != 0 || (TN % 4) != 0 || (CH * BK) % (4 * WG) != 0
#error "state_fwd_rs: RSVEC needs 64 / LY, K / LY, BV / LX and 16 BK / WG to be multiples of 4"
#endif
#else
#define SROW(a) (ty + LY * (a))
#define VROW(a) (ty + LY * (a))
#define SCOL(j) (tx + LX * (j))
#define LDW (BK + 1) /* w slice: [64][LDW] */
#define LDK (K + 1)  /* k slice: [BI][LDK] */
#define SLN (CH * LDW > BI * LDK ? CH * LDW : BI * LDK)
#endif

#if (K % LY) != 0 || (BK % LY) != 0 || (K % BK) != 0 || (CH * BK) % WG != 0 || (CH % NSL) != 0
#error "state_fwd_rs: inconsistent tile macros"
#endif

__kernel __attribute__((reqd_work_group_size(WG, 1, 1)))
void gated_delta_state_fwd_rs(STATE_FWD_PARAMS)
{
    /* float4 arrays: aligned for the RSVEC reads */
    __local float4 SL4[(SLN + 3) / 4];   /* a 64 x BK slice of w or a BI x K slice of k */
    __local float4 XL4[XROWS * BV / 4];  /* the state tile, then the decayed Vn */
    __local float  Gs[CH];
    __local float *SL = (__local float *)SL4, *XL = (__local float *)XL4;
#if SPLITK
    __local float4 RL4[2 * CH * BV / 4]; /* both halves' partial w Hs */
    __local float *RL = (__local float *)RL4;
#endif
    SCAN_INDICES();
    const int     hf = SPLITK ? ty / LY : 0, tq = ty - hf * LY; /* half, row in the half */
    float         S[TRS][TN], ur[RVS][TN], gr[NGS];
#if RSVEC
    float4        pr[NP4];
#else
    float         pr[NPS];
#endif

    if (cb > 0 && cb >= nc)
        return; /* this sequence was finished by an earlier window */

    RS_WINDOW_LOAD_S();

#if RSVEC
/* RSVEC moves every global and staged operand as float4: pr holds float4s
 * of the slice (NP4 per work-item), u, v_new, h and the state tile in XL
 * go four contiguous columns at a time. A w slice is read in the order of
 * GDN_TILE_T_ROW / GDN_TILE_T_COL (8 rows x 4 columns per 8 work-items), so
 * its transposed stores into SL hit at most 2 lanes per bank. */
/* Slice sl of chunk cc into pr: sl < NSL is w[:, sl BK ...] (64 x BK; with
 * SPLITK columns sl HB ... and K/2 + sl HB ... of both halves), else
 * k[(sl - NSL) BI ..., :] (BI x K). Rows past the chunk repeat its last
 * row: they only meet exact zeros (the rows of VL past L) or rows of Vn
 * that are never stored, and an unpredicated load was faster than a load
 * with a zero fill (H200: 0.756 -> 0.72 ms per forward scan at B = 4).
 * Offsets into the token-major tensors are int (the host keeps T HV
 * max(K, V) below 2^31, api.c), added to a pointer to the chunk's first
 * row (H200 SASS: the loads' 64-bit offsets and predicates had taken
 * about 540 of the 5750 instructions per chunk; 186 fewer with int). */
#define RS_LOAD_SLICE(cc, sl)                                                                      \
    do {                                                                                           \
        const int              f_  = bos + (cc) * CH, l_ = min(CH, eos - f_);                     \
        const bool             k_  = (sl) >= NSL;                                                  \
        const __global float *b_  = k_ ? k + (f_ * H + kh) * K : w + (f_ * HV + hv) * K;          \
        const int              rs_ = (k_ ? H : HV) * K; /* row stride */                           \
        for (int p_ = 0; p_ < NP4; p_++) {                                                         \
            const int e_ = lid + p_ * WG;                                                          \
            int       r_, d_;                                                                      \
            if (k_) {                                                                              \
                r_ = ((sl) - NSL) * BI + e_ / (K / 4), d_ = 4 * (e_ % (K / 4));                    \
            } else {                                                                               \
                const int c_ = GDN_TILE_T_COL(e_, BK);                                             \
                r_ = GDN_TILE_T_ROW(e_, BK), d_ = (c_ / HB) * KH + (sl) * HB + c_ % HB;            \
            }                                                                                      \
            pr[p_] = GDN_LD4G(b_ + (min(r_, l_ - 1) * rs_ + d_));                                \
        }                                                                                          \
    } while (0)
#define RS_LOAD_UG(cc) RS_LOAD_UG4(cc, (!SPLITK || (a_ < RVS / 2) == (hf == 0)))
/* pr into SL: a w slice transposed (element (r, d) at SL[d LDW + r]), or a
 * k slice (at SL[r LDK + d]). */
#define RS_STORE_W()                                                                               \
    do {                                                                                           \
        for (int p_ = 0; p_ < NP4; p_++) {                                                         \
            const int e_ = lid + p_ * WG;                                                          \
            GDN_TILE_STORE_T4(SL, LDW, GDN_TILE_T_ROW(e_, BK), GDN_TILE_T_COL(e_, BK), pr[p_]);    \
        }                                                                                          \
    } while (0)
#define RS_STORE_K()                                                                               \
    do {                                                                                           \
        for (int p_ = 0; p_ < NP4; p_++) {                                                         \
            const int e_ = lid + p_ * WG, r_ = e_ / (K / 4);                                       \
            GDN_ST4L(pr[p_], SL + r_ * LDK + 4 * (e_ - r_ * (K / 4)));                             \
        }                                                                                          \
    } while (0)
#else
/* Slice sl of chunk cc into pr: sl < NSL is w[:, sl BK ...] (64 x BK),
 * else k[(sl - NSL) BI ..., :] (BI x K); rows past the chunk: 0. */
#define RS_LOAD_SLICE(cc, sl)                                                                      \
    do {                                                                                           \
        const int  f_ = bos + (cc) * CH, l_ = min(CH, eos - f_);                                   \
        const bool isk_ = (sl) >= NSL;                                                             \
        const int  wd_ = isk_ ? K : BK;                                                            \
        const int  r0_ = isk_ ? ((sl) - NSL) * BI : 0;                                             \
        for (int p_ = 0; p_ < NPS; p_++) {                                                         \
            const int e_ = lid + p_ * WG, rl_ = e_ / wd_, r_ = r0_ + rl_, dl_ = e_ - rl_ * wd_;    \
            const int d_ = isk_ ? dl_ : (dl_ / HB) * KH + (sl) * HB + dl_ % HB;                    \
            pr[p_]       = r_ >= l_ ? 0.0f                                                         \
                           : isk_ ? k[((ulong)(f_ + r_) * (ulong)H + (ulong)kh) * (ulong)K +      \
                                      (ulong)d_]                                                   \
                                  : w[((ulong)(f_ + r_) * (ulong)HV + (ulong)hv) * (ulong)K +     \
                                      (ulong)d_];                                                  \
        }                                                                                          \
    } while (0)
/* Chunk cc's u (this work-item's Vn entries) and gates into registers. */
#define RS_LOAD_UG(cc)                                                                             \
    do {                                                                                           \
        const int f_ = bos + (cc) * CH, l_ = min(CH, eos - f_);                                    \
        for (int a_ = 0; a_ < RVS; a_++) {                                                         \
            const int i_ = VROW(a_);                                                               \
            for (int j_ = 0; j_ < TN; j_++)                                                        \
                ur[a_][j_] = i_ < l_ && (!SPLITK || (a_ < RVS / 2) == (hf == 0))                 \
                                 ? u[((ulong)(f_ + i_) * (ulong)HV + (ulong)hv) * (ulong)V +      \
                                     (ulong)(v0 + SCOL(j_))]                                       \
                                 : 0.0f;                                                           \
        }                                                                                          \
        RS_LOAD_G(f_, l_);                                                                         \
    } while (0)
/* pr into SL: a w slice (element (r, d) at SL[r LDW + d]), or a k slice
 * (at SL[r LDK + d]). */
#define RS_STORE_W()                                                                               \
    do {                                                                                           \
        for (int p_ = 0; p_ < NPS; p_++) {                                                         \
            const int e_ = lid + p_ * WG, r_ = e_ / BK, d_ = e_ - r_ * BK;                         \
            SL[r_ * LDW + d_] = pr[p_];                                                            \
        }                                                                                          \
    } while (0)
#define RS_STORE_K()                                                                               \
    do {                                                                                           \
        for (int p_ = 0; p_ < NPS; p_++) {                                                         \
            const int e_ = lid + p_ * WG, r_ = e_ / K;                                             \
            SL[r_ * LDK + e_ - r_ * K] = pr[p_];                                                   \
        }                                                                                          \
    } while (0)

#endif /* RSVEC */

    if (cb < c_end) {
        RS_LOAD_SLICE(cb, 0);
        RS_LOAD_UG(cb);
    }
    for (int c = cb; c < c_end; c++) {
        const int   first = bos + c * CH;
        const int   L = min(CH, eos - first);
        const ulong hbase =
            ((ulong)(c0 + c) * (ulong)HV + (ulong)hv) * (ulong)K * (ulong)V + (ulong)v0;
        float acc[RVS][TN];

        barrier(CLK_LOCAL_MEM_FENCE); /* the previous chunk's readers of XL and SL are done */
        RS_CHUNK_STAGE(hbase); /* h[c] = the state entering the chunk; XL, Gs */

        /* Vn = u - w Hs, one BK-column slice of w at a time. */
        GDN_TILE_ZERO(acc, RVS, TN);
        RS_STORE_W();
#pragma unroll
        for (int s = 0; s < NSL; s++) {
            if (s > 0) {
                barrier(CLK_LOCAL_MEM_FENCE);
                RS_STORE_W();
            }
            barrier(CLK_LOCAL_MEM_FENCE);
            RS_LOAD_SLICE(c, s + 1); /* w slice s + 1, or k slice 0 */
#if RSVEC
            /* (half hf: its HB columns of the slice, its rows of the state) */
            GDN_TILE_MMA4(acc, RVS, TN, (SL + hf * HB * LDW), LDW, VROW(0), 4,
                          (XL + (hf * KH + s * HB) * BV), BV, SCOL(0), 4, HB);
#else
            GDN_TILE_MMA(acc, RVS, TN, SL, LDW, 0, (XL + s * BK * BV), BV, 0, ty, LY, tx, LX, BK);
#endif
        }
        barrier(CLK_LOCAL_MEM_FENCE); /* every read of the state in XL and of w is done */
#if SPLITK
        /* Each half's partial sums of w Hs to RL, then each adds the other's,
         * so both hold all of w Hs and each finishes half the rows of Vn. (A
         * first form, the upper half storing and the lower half adding and
         * finishing all of Vn under if (hf) / if (!hf), gave wrong results on
         * PoCL 3.1.) */
        GDN_TILE_HALVES_SUM(acc, RVS, TN, RL, hf, CH, BV, VROW, SCOL);
#endif
        {
            const float gl = Gs[L - 1];
            for (int a = 0; a < RVS; a++) {
                const int   i   = VROW(a);
                const bool  ok  = i < L;
                const bool  mine = !SPLITK || (a < RVS / 2) == (hf == 0); /* rows it stores */
                const float dec = exp2(select(0.0f, gl - Gs[i], (int)ok));
#if RSVEC
                for (int j = 0; j < TN; j += 4) {
                    const int    col = SCOL(j);
                    const float4 vn  = GDN_TILE_ROW4(ur, a, j) - GDN_TILE_ROW4(acc, a, j);
                    if (ok && mine)
                        GDN_ST4G(vn, v_new + ((first + i) * HV + hv) * V + v0 + col);
                    if (mine)
                        GDN_ST4L(ok ? vn * dec : (float4)(0.0f), XL + i * BV + col);
                }
#else
                for (int j = 0; j < TN; j++) {
                    const int   col = SCOL(j);
                    const float vn  = ur[a][j] - acc[a][j];
                    if (ok && mine)
                        v_new[((ulong)(first + i) * (ulong)HV + (ulong)hv) * (ulong)V +
                              (ulong)(v0 + col)] = vn;
                    if (mine)
                        XL[i * BV + col] = select(0.0f, vn * dec, (int)ok);
                }
#endif
            }
            for (int a = 0; a < TRS; a++)
                for (int j = 0; j < TN; j++)
                    S[a][j] *= exp2(gl);
        }
        if (c + 1 < c_end)
            RS_LOAD_UG(c + 1);

        /* Hs += K_c^T VL, one BI-row slice of k (all K columns) at a time. */
        RS_STORE_K();
#pragma unroll
        for (int s = 0; s < NSL; s++) {
            if (s > 0) {
                barrier(CLK_LOCAL_MEM_FENCE);
                RS_STORE_K();
            }
            barrier(CLK_LOCAL_MEM_FENCE);
            if (s + 1 < NSL)
                RS_LOAD_SLICE(c, NSL + s + 1);
            else if (c + 1 < c_end)
                RS_LOAD_SLICE(c + 1, 0);
#if RSVEC
            GDN_TILE_MMA4(S, TRS, TN, SL, LDK, SROW(0), 4, (XL + s * BI * BV), BV, SCOL(0), 4, BI);
#else
            GDN_TILE_MMA(S, TRS, TN, SL, LDK, 1, (XL + s * BI * BV), BV, 0, ty, LY, tx, LX, BI);
#endif
        }
    }
#undef RS_LOAD_SLICE
#undef RS_LOAD_UG
#undef RS_STORE_W
#undef RS_STORE_K

    RS_WINDOW_STORE_S();
}
#endif /* REGSTATE */

/* The copied forms (RSVEC = 2, 3), which define NSL, BI and NSC (slices of
 * w and of k per chunk, rows of k per slice, slices per chunk): slice sl of
 * chunk cc into slot b of SL, slots sz floats apart; a w slice (sl < NSL)
 * is 64 x BK with rows ldw apart, a k slice BI x K with rows ldk apart (rows
 * past the chunk: its last row). Offsets into the token-major tensors are
 * int (T HV max(K, V) < 2^31, api.c), added to a pointer to the chunk's
 * first row. SCAN_COPY_AHEAD, at slice p of chunk cc (slot cur): the copy
 * of the slice two ahead (into the slot after the next), then a commit, also
 * when nothing is left. */
#define SCAN_COPY_SLICE(cc, sl, b, sz, ldw, ldk)                                                   \
    do {                                                                                           \
        const int      f_ = bos + (cc) * CH, l_ = min(CH, eos - f_);                               \
        __local float *d_ = SL + (b) * (sz);                                                       \
        if ((sl) < NSL) {                                                                          \
            const __global float *s_ = w + ((f_ * HV + hv) * K + (sl) * BK);                       \
            for (int e_ = lid; e_ < CH * (BK / 4); e_ += WG) {                                     \
                const int r_ = e_ / (BK / 4), c_ = 4 * (e_ - r_ * (BK / 4));                       \
                GDN_CP16(d_ + r_ * (ldw) + c_, s_ + (min(r_, l_ - 1) * (HV * K) + c_));            \
            }                                                                                      \
        } else {                                                                                   \
            const int             r0_ = ((sl) - NSL) * BI;                                         \
            const __global float *s_ = k + (f_ * H + kh) * K;                                      \
            for (int e_ = lid; e_ < BI * (K / 4); e_ += WG) {                                      \
                const int r_ = e_ / (K / 4), c_ = 4 * (e_ - r_ * (K / 4));                         \
                GDN_CP16(d_ + r_ * (ldk) + c_, s_ + (min(r0_ + r_, l_ - 1) * (H * K) + c_));       \
            }                                                                                      \
        }                                                                                          \
    } while (0)
#define SCAN_COPY_AHEAD(cc, p, sz, ldw, ldk)                                                       \
    do {                                                                                           \
        const int b_ = GDN_SLOT3_AHEAD(cur);                                                       \
        if ((p) + 2 < NSC)                                                                         \
            SCAN_COPY_SLICE(cc, (p) + 2, b_, sz, ldw, ldk);                                        \
        else if ((cc) + 1 < c_end)                                                                 \
            SCAN_COPY_SLICE((cc) + 1, (p) + 2 - NSC, b_, sz, ldw, ldk);                            \
        GDN_CP_COMMIT();                                                                           \
    } while (0)

#if defined(REGSTATE) && defined(RSVEC) && RSVEC == 2
/*
 * gated_delta_state_fwd_rs, RSVEC=2 (PREFETCH=5 in the tuning space): the
 * state in registers as in the form above, with every slice of w and k
 * staged row-major and copied by GDN_CP16 (cp.async on NVIDIA, a plain
 * load and store elsewhere: cl/include/gdn_tile.clh) into three slots, so
 * the copies of slices i + 1 and i + 2 are in flight while slice i is
 * multiplied, with one barrier per slice and no registers holding the next
 * slices. A chunk's slices are w[:, s BK ...] (64 x BK, s < K / BK), then
 * k[s BI ..., :] (BI x K), then the next chunk's; they take the slots in
 * turn. (Two slots, one slice ahead: H200, B = 4, 0.68 ms per scan at BK
 * = 32 and 0.85 at BK = 16, against 0.625 now: one slice in flight did not
 * cover the latency of the copies. Four slots, three ahead, with unpadded
 * w slices swizzled per row and the gates in registers to fit 48 KiB:
 * 0.630-0.638 ms against 0.637-0.638 in the same run, so two slices in
 * flight are enough. With no copies at all (a probe, wrong results) the
 * scan took 0.517-0.520 ms against 0.624-0.626: the copies cost about a
 * sixth; the rest is the products and barriers of two groups of four warps
 * per compute unit. Computing Vn as Ai (beta v - beta gamma k Hs) instead,
 * which would leave wy_fwd's u (0.22 ms) out of the forward, adds a
 * 64 x 64 x BV product and two barriers per chunk: with only those added (a
 * probe, wrong results) the scan took 0.768-0.773 ms against 0.625, so the
 * forward would gain about 0.06 ms and forward+backward nothing. Four more
 * warps per group forming out_fwd's q h[c] beside w Hs (same B operand;
 * a probe with the w slices standing in for q, 256 work-items): 0.831-0.837
 * ms against 0.626-0.628, before any copies of q; that product is about
 * half of out_fwd's fma (0.49 ms), so little would be left to gain.)
 *   Vn = u - w Hs: work-item (tx, ty) owns the strided rows ty + LY a of Vn
 *     and the contiguous columns TN tx ...; it reads one float4 of four k
 *     per w row (GDN_TILE_MMA4R_STEP; rows LY apart, padded to BK + 4
 *     floats, so the four row groups of a warp hit different banks) and
 *     the state rows from local memory.
 *   Hs = exp2(gl) Hs + K_c^T VL: k rows are k-major for this product as
 *     they come (GDN_TILE_MMA4); the work-item's state rows TRS ty ... and
 *     columns are its registers.
 * Rows past the chunk repeat its last row, as in the form above.
 * Needs K / LY and BV / LX multiples of 4, BK a multiple of 4 dividing K
 * with K / BK dividing 64. Local memory: 4 * (3 max(64 (BK + 4), BI K) +
 * max(K, 64) BV + 64) bytes (43.3 KiB at K = 128, BV = 32, BK = 32).
 */
#define TRS   (K / LY)             /* state rows per work-item (contiguous) */
#define RVS   (CH / LY)            /* Vn rows per work-item (strided by LY) */
#define NSL   (K / BK)             /* slices of w (and of k) per chunk */
#define BI    (CH / NSL)           /* rows of k per slice */
#define NGS   ((CH + WG - 1) / WG) /* gates per work-item */
#define XROWS (K > CH ? K : CH)
#define LDW2  (BK + 4)
#define SLOT2 (CH * LDW2 > BI * K ? CH * LDW2 : BI * K)
#define NSC   (2 * NSL) /* slices per chunk */
#define SROW(a) (TRS * ty + (a))
#define VROW(a) (ty + LY * (a))
#define SCOL(j) (TN * tx + (j))
#if (TRS % 4) != 0 || (TN % 4) != 0 || (BK % 4) != 0 || (K % BK) != 0 || (CH % NSL) != 0
#error "state_fwd_rs: RSVEC=2 needs K / LY and BV / LX multiples of 4, BK | K, (K / BK) | 64"
#endif

__kernel __attribute__((reqd_work_group_size(WG, 1, 1)))
void gated_delta_state_fwd_rs(STATE_FWD_PARAMS)
{
    __local float4 SL4[3 * SLOT2 / 4];  /* three slots of w or k slices */
    __local float4 XL4[XROWS * BV / 4]; /* the state tile, then the decayed Vn */
    __local float  Gs[CH];
    __local float *SL = (__local float *)SL4, *XL = (__local float *)XL4;
    SCAN_INDICES();
    float S[TRS][TN], ur[RVS][TN], gr[NGS];
    int   cur = 0; /* the slot of the slice multiplied next */

    if (cb > 0 && cb >= nc)
        return; /* this sequence was finished by an earlier window */

    RS_WINDOW_LOAD_S();

#define RS2_COPY(cc, sl, b) SCAN_COPY_SLICE(cc, sl, b, SLOT2, LDW2, K)
#define RS2_AHEAD(cc, p)    SCAN_COPY_AHEAD(cc, p, SLOT2, LDW2, K)

    if (cb < c_end) {
        RS2_COPY(cb, 0, 0);
        GDN_CP_COMMIT();
        RS2_COPY(cb, 1, 1); /* w slice 1, or k slice 0 */
        GDN_CP_COMMIT();
        RS_LOAD_UG4(cb, 1);
    }
    for (int c = cb; c < c_end; c++) {
        const int   first = bos + c * CH;
        const int   L = min(CH, eos - first);
        const ulong hbase =
            ((ulong)(c0 + c) * (ulong)HV + (ulong)hv) * (ulong)K * (ulong)V + (ulong)v0;
        float acc[RVS][TN];

        barrier(CLK_LOCAL_MEM_FENCE); /* the previous chunk's readers of XL and Gs are done */
        RS_CHUNK_STAGE(hbase); /* h[c] = the state entering the chunk; XL, Gs */

        /* Vn = u - w Hs, one BK-column slice of w at a time. */
        GDN_TILE_ZERO(acc, RVS, TN);
#pragma unroll
        for (int s = 0; s < NSL; s++) {
            __local const float *WS = SL + cur * SLOT2;
            __local const float *HS = XL + s * BK * BV;
            GDN_CP_WAIT1();
            barrier(CLK_LOCAL_MEM_FENCE); /* slice s is in; slice s - 1's readers are done */
            RS2_AHEAD(c, s);
            GDN_TILE_MMA4R_S(acc, RVS, TN, WS, LDW2, VROW(0), LY, HS, BV, SCOL(0), 4, BK);
            GDN_SLOT3_NEXT(cur);
        }
        barrier(CLK_LOCAL_MEM_FENCE); /* every read of the state in XL is done */
        {
            const float gl = Gs[L - 1];
            for (int a = 0; a < RVS; a++) {
                const int   i   = VROW(a);
                const bool  ok  = i < L;
                const float dec = exp2(select(0.0f, gl - Gs[i], (int)ok));
                for (int j = 0; j < TN; j += 4) {
                    const int    col = SCOL(j);
                    const float4 vn  = GDN_TILE_ROW4(ur, a, j) - GDN_TILE_ROW4(acc, a, j);
                    if (ok)
                        GDN_ST4G(vn, v_new + ((first + i) * HV + hv) * V + v0 + col);
                    GDN_ST4L(ok ? vn * dec : (float4)(0.0f), XL + i * BV + col);
                }
            }
            for (int a = 0; a < TRS; a++)
                for (int j = 0; j < TN; j++)
                    S[a][j] *= exp2(gl);
        }
        if (c + 1 < c_end)
            RS_LOAD_UG4(c + 1, 1);

        /* Hs += K_c^T VL, one BI-row slice of k (all K columns) at a time. */
#pragma unroll
        for (int s = 0; s < NSL; s++) {
            __local const float *KS = SL + cur * SLOT2;
            GDN_CP_WAIT1();
            barrier(CLK_LOCAL_MEM_FENCE); /* k slice s (and VL) is in */
            RS2_AHEAD(c, NSL + s);
            GDN_TILE_MMA4(S, TRS, TN, KS, K, SROW(0), 4, (XL + s * BI * BV), BV, SCOL(0), 4, BI);
            GDN_SLOT3_NEXT(cur);
        }
    }
#undef RS2_COPY
#undef RS2_AHEAD

    RS_WINDOW_STORE_S();
}
#endif /* REGSTATE, RSVEC == 2 */

#if defined(REGSTATE) && defined(RSVEC) && RSVEC == 3
/*
 * gated_delta_state_fwd_rs, RSVEC=3 (PREFETCH=6 in the tuning space): the
 * scan on GDN_TC's warp tiles (cl/include/gdn_tile.clh: 3xTF32 mma.sync
 * on NVIDIA's tensor cores with GDN_TC=1, its plain twin elsewhere), in
 * the transposed frame. SIMD group wp of the work-group (LX LY = 2 BV
 * work-items: one group of 32 per 16 value columns) owns columns m0 = 16
 * wp ... m0 + 15 of the V tile and keeps Hs^T [16 x K] for them in
 * registers (ST: K / 8 accumulator tiles) for the whole scan. Each chunk:
 *   Vn^T = u^T - Hs^T w^T over K / BK slices of w (64 x BK): Hs^T's own
 *     accumulator tiles are the A operand (GDN_TC_A_FROM_C), w slices the
 *     transposed B (GDN_TC_LOAD_BTP); Vn^T lands in 8 tiles (64 chunk rows).
 *   Hs^T = exp2(gl) Hs^T + Vd^T K_c over K / BK slices of BI = 64 BK / K
 *     rows of k (all K columns): the decayed Vn^T tiles are the A operand,
 *     k rows the row-major B (GDN_TC_LOAD_BP).
 * So the state and Vn never leave registers, and the groups of a
 * work-group share only the staged w and k slices, copied two ahead into
 * three slots as in RSVEC=2 (one barrier per slice). Rows past the chunk
 * repeat its last row, as in the forms above (their Vn is masked to 0
 * before the update and never stored). Needs K <= 128 (ST is K / 2
 * registers), BK a multiple of 8 dividing K with K / BK dividing 64 and
 * BI a multiple of 8, LX LY = 2 BV. Local memory: 4 * (3 max(64 (BK + 8),
 * BI (K + 4)) + 64 + 32 BV) bytes (32.5 KiB at K = 128, BV = 64, BK = 32;
 * the last term is the twin's exchange buffer).
 * (H200, B = 4, T = 4096, H = 16: 0.493-0.499 ms per scan, 218 registers.
 * Two SIMD groups per 16 value columns, each forming Vn^T over half of K
 * and updating its half of the state, the halves of Vn^T summed through
 * local memory (two more barriers per chunk; 204 registers): 0.500-0.502
 * ms with V tiles of 64, 0.565-0.568 with 32, against 0.500-0.509 in the
 * same run, so half the products per group on the sequential path did not
 * pay; not kept.)
 */
#define NW3   (BV / 16) /* SIMD groups, 16 value columns each */
#define NKT   (K / 8)   /* 8-column tiles of Hs^T */
#define NSL   (K / BK)  /* slices of w (and of k) per chunk */
#define BI    (CH / NSL) /* rows of k per slice */
#define NSC   (2 * NSL)
#define NGS   ((CH + WG - 1) / WG)
#define LDW3  (BK + 8)  /* row stride of a w slice */
#define LDK3  (K + 4)   /* row stride of a k slice */
#define SLOT3 (CH * LDW3 > BI * LDK3 ? CH * LDW3 : BI * LDK3)
#if WG != 2 * BV || (BK % 8) != 0 || (K % BK) != 0 || (CH % NSL) != 0 || (BI % 8) != 0 ||       \
    K > 128
#error "state_fwd_rs: RSVEC=3 needs LX LY = 2 BV, 8 | BK | K, (K / BK) | 64, 8 | BI, K <= 128"
#endif

__kernel __attribute__((reqd_work_group_size(WG, 1, 1)))
void gated_delta_state_fwd_rs(STATE_FWD_PARAMS)
{
    __local float4 SL4[3 * SLOT3 / 4]; /* three slots of w or k slices */
    __local float  Gs[CH];
    __local float  XC[NW3 * 128]; /* the twin's exchange of accumulator tiles */
    __local float *SL = (__local float *)SL4;
    SCAN_INDICES();
    const int wp = lid >> 5, m0 = 16 * wp;
    __local float *XW = XC + 128 * wp;
    float          ST[NKT][4], VT[8][4], UT[8][4], gr[NGS], af[GDN_TC_AN], bf[GDN_TC_BN];
    int            cur = 0; /* the slot of the slice multiplied next */

    if (cb > 0 && cb >= nc)
        return; /* this sequence was finished by an earlier window */
    (void)XW;

    /* The state entering chunk cb: h0 (or 0) for the first window, else h[cb]. */
    {
        const ulong hb = ((ulong)(c0 + cb) * (ulong)HV + (ulong)hv) * (ulong)K * (ulong)V +
                         (ulong)v0;
        for (int j = 0; j < NKT; j++)
            for (int e = 0; e < 4; e++) {
                const ulong o = (ulong)(8 * j + GDN_TC_COL(e)) * V + (ulong)(m0 + GDN_TC_ROW(e));
                ST[j][e]      = cb > 0 ? h[hb + o] : has_h0 ? h0[sbase + o] : 0.0f;
            }
    }

#define TC_COPY(cc, sl, b) SCAN_COPY_SLICE(cc, sl, b, SLOT3, LDW3, LDK3)
#define TC_AHEAD(cc, p)    SCAN_COPY_AHEAD(cc, p, SLOT3, LDW3, LDK3)
/* Chunk cc's u^T in the layout of Vn^T (rows past the chunk 0) and its
 * gates (0 past the chunk) into UT and gr. */
#define TC_LOAD_UG(cc)                                                                             \
    do {                                                                                           \
        const int f_ = bos + (cc) * CH, l_ = min(CH, eos - f_);                                    \
        for (int j_ = 0; j_ < 8; j_++)                                                             \
            for (int e_ = 0; e_ < 4; e_++) {                                                       \
                const int i_ = 8 * j_ + GDN_TC_COL(e_);                                            \
                UT[j_][e_]   = i_ < l_ ? u[((f_ + i_) * HV + hv) * V + v0 + m0 + GDN_TC_ROW(e_)]  \
                                       : 0.0f;                                                     \
            }                                                                                      \
        for (int p_ = 0; p_ < NGS; p_++) {                                                         \
            const int r_ = lid + p_ * WG;                                                          \
            gr[p_]       = r_ < l_ ? G[(f_ + r_) * HV + hv] : 0.0f;                                \
        }                                                                                          \
    } while (0)

    if (cb < c_end) {
        TC_COPY(cb, 0, 0);
        GDN_CP_COMMIT();
        TC_COPY(cb, 1, 1); /* w slice 1, or k slice 0 */
        GDN_CP_COMMIT();
        TC_LOAD_UG(cb);
    }
    for (int c = cb; c < c_end; c++) {
        const int   first = bos + c * CH;
        const int   L = min(CH, eos - first);
        const ulong hbase =
            ((ulong)(c0 + c) * (ulong)HV + (ulong)hv) * (ulong)K * (ulong)V + (ulong)v0;

        barrier(CLK_LOCAL_MEM_FENCE); /* the previous chunk's readers of Gs are done */
        for (int j = 0; j < NKT; j++) /* h[c] = the state entering the chunk */
            for (int e = 0; e < 4; e++)
                h[hbase + (ulong)(8 * j + GDN_TC_COL(e)) * V + (ulong)(m0 + GDN_TC_ROW(e))] =
                    ST[j][e];
        for (int p = 0; p < NGS; p++)
            if (lid + p * WG < CH)
                Gs[lid + p * WG] = gr[p];

        /* Vn^T = u^T - Hs^T w^T, one BK-column slice of w at a time */
        GDN_TILE_ZERO(VT, 8, 4);
GDN_TC_UNROLL
        for (int s = 0; s < NSL; s++) {
            __local const float *WS = SL + cur * SLOT3;
            GDN_CP_WAIT1();
            barrier(CLK_LOCAL_MEM_FENCE); /* slice s is in; slice s - 1's readers are done */
            TC_AHEAD(c, s);
GDN_TC_UNROLL
            for (int kk = 0; kk < BK; kk += 8) {
                GDN_TC_A_FROM_C(af, ST[(s * BK + kk) / 8], XW);
GDN_TC_UNROLL
                for (int jn = 0; jn < 8; jn++) {
                    GDN_TC_LOAD_BTP(bf, WS, LDW3, kk, 8 * jn);
                    GDN_TC_MMA(VT[jn], af, bf);
                }
            }
            GDN_SLOT3_NEXT(cur);
        }
        {   /* v_new (rows < L); the decayed Vn^T (0 past L) replaces VT */
            const float gl = Gs[L - 1];
            for (int j = 0; j < 8; j++)
                for (int e = 0; e < 4; e++) {
                    const int   i  = 8 * j + GDN_TC_COL(e);
                    const bool  ok = i < L;
                    const float vn = UT[j][e] - VT[j][e];
                    if (ok)
                        v_new[((first + i) * HV + hv) * V + v0 + m0 + GDN_TC_ROW(e)] = vn;
                    VT[j][e] = select(0.0f, vn * exp2(select(0.0f, gl - Gs[i], (int)ok)), (int)ok);
                }
            for (int j = 0; j < NKT; j++)
                for (int e = 0; e < 4; e++)
                    ST[j][e] *= exp2(gl);
        }
        if (c + 1 < c_end)
            TC_LOAD_UG(c + 1);

        /* Hs^T += Vd^T K_c, one BI-row slice of k (all K columns) at a time */
GDN_TC_UNROLL
        for (int s = 0; s < NSL; s++) {
            __local const float *KS = SL + cur * SLOT3;
            GDN_CP_WAIT1();
            barrier(CLK_LOCAL_MEM_FENCE); /* k slice s is in */
            TC_AHEAD(c, NSL + s);
GDN_TC_UNROLL
            for (int kk = 0; kk < BI; kk += 8) {
                GDN_TC_A_FROM_C(af, VT[(s * BI + kk) / 8], XW);
GDN_TC_UNROLL
                for (int jn = 0; jn < NKT; jn++) {
                    GDN_TC_LOAD_BP(bf, KS, LDK3, kk, 8 * jn);
                    GDN_TC_MMA(ST[jn], af, bf);
                }
            }
            GDN_SLOT3_NEXT(cur);
        }
    }
#undef TC_COPY
#undef TC_AHEAD
#undef TC_LOAD_UG

    /* After the window: the state into h[c_end] when the sequence goes on,
     * else into ht. */
    {
        const ulong hb = ((ulong)(c0 + c_end) * (ulong)HV + (ulong)hv) * (ulong)K * (ulong)V +
                         (ulong)v0;
        if (c_end < nc || has_ht)
            for (int j = 0; j < NKT; j++)
                for (int e = 0; e < 4; e++) {
                    const ulong o =
                        (ulong)(8 * j + GDN_TC_COL(e)) * V + (ulong)(m0 + GDN_TC_ROW(e));
                    if (c_end < nc)
                        h[hb + o] = ST[j][e];
                    else
                        ht[sbase + o] = ST[j][e];
                }
    }
}
#endif /* REGSTATE, RSVEC == 3 */
