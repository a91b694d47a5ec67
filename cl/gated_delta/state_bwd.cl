/*
 * gated_delta/state_bwd.cl - backward stage B4: the reverse scan of the
 * state gradient over the chunks of each sequence (ALGORITHM.md 2.3, fla
 * chunk_gated_delta_rule_bwd_kernel_dhu).
 *
 * Math, per sequence n and value head hv, dH (K x V) starting at dht (or 0),
 * for the chunks c of the sequence from last to first (L rows, gl = G[L-1]):
 *     dh[c] = dH                          (gradient of the state LEAVING c)
 *     dv2[c] = diag(exp2(gl - G)) (k_c dH) + dv_local[c]     (rows < L)
 *     dH = exp2(gl) dH + (scale diag(exp2 G) q_c)^T do_c - w_c^T dv2[c]
 * and finally dh0 = dH. dv2 is the full dL/dv_new (= dL/du).
 *
 * Shapes: q, k [T, H, K] (q/k head hv / (HV/H)); w [T, HV, K]; G [T, HV];
 * do, dv_local, dv2 [T, HV, V]; dht, dh0 [N, HV, K, V]; dh [NT, HV, K, V];
 * chunks [NT] int4 (seq, first token, length, chunk in seq); chunk_off
 * [N + 1] (first chunk of each sequence).
 *
 * Chunk windows, as in state_fwd.cl: one launch processes the chunks
 * numbered [rb, re) from each sequence's end (its last rb chunks were done
 * by earlier windows). A window that does not start at the last chunk takes
 * dH from dh[first chunk it processes] (stored by the previous window); a
 * window that stops before chunk 0 stores dH into dh[next chunk down]
 * instead of dh0. rb = 0, re >= every sequence's chunk count is the whole
 * scan in one launch (the host splits it on Mesa llvmpipe, whose work-items
 * stop after 65535 loop iterations).
 *
 * One work-group = one (V tile of BV columns, sequence, value head): global
 * (TY*TX * V/BV, N, HV), local (TY*TX, 1, 1). The K x BV slab of dH lives in
 * local memory for the whole scan; each work-item owns a strided register
 * micro-tile of every product (rows step TY, columns step TX). k, q and w
 * are streamed through local memory in BKS-column slices; the dH update is
 * one product over the stacked 128 rows [scale exp2(G) q ; -w]^T [do ; dv2].
 * Local memory: K*BV + 2*64*BV + 2*64*BKS + 64 floats.
 *
 * Tuning macros (set by sbwd_plan in lib/ops/gated_delta/chunk_bwd.c from the
 * tuning space gated_delta/state_bwd; any work-group size, also below 64):
 *   K_DIM, V_DIM  head dims (multiples of 16, <= 256)
 *   BV            V tile: multiple of TX dividing V_DIM (16 or 32; default 32)
 *   BKS           K slice: multiple of TY dividing K_DIM (default 16)
 *   TY, TX        work-item grid (TY divides 64 and BKS, TX divides BV;
 *                 default 16 x 16)
 *   REGSTATE      also build gated_delta_state_bwd_rs (end of this file):
 *                 the same function with dH in registers (tuning parameter
 *                 RS = 1; BKS is then its k slice width)
 *   RSVEC         with REGSTATE: 1, its float4 form (RS = 2); 2, its form
 *                 with slices copied two ahead (RS = 3)
 *   GDN_ASYNC     1: GDN_CP16 is cp.async (RSVEC=2 only; the host sets it
 *                 on NVIDIA compute capability >= 8.0), 0 (default): its
 *                 plain twin
 *   GDN_TILE_UNROLL  the unroll factor of the float4 products' loops over k
 *                    (tuning parameter UNROLL; 0, the default: the
 *                    compiler's choice; cl/include/gdn_tile.clh)
 */
#include "gdn_common.clh"
#include "gdn_tile.clh"

/* The parameters of every kernel in this file, in the order the host binds them
 * (lib/ops/gated_delta): the forms differ in their bodies only. */
#define STATE_BWD_PARAMS                                                                           \
    __global const int4 *chunks, __global const int *chunk_off, __global const float *q,           \
    __global const float *k, __global const float *w, __global const float *G,                     \
    __global const float *do_, __global const float *dvl, __global const float *dht,               \
    __global float *dh, __global float *dv2, __global float *dh0, int H, int HV, float scale,      \
    int has_dht, int write_dh0, int rb, int re

#ifndef K_DIM
#    define K_DIM 64
#endif
#ifndef V_DIM
#    define V_DIM 64
#endif
#ifndef BV
#    define BV 32
#endif
#ifndef BKS
#    define BKS 16
#endif
#ifndef TY
#    define TY 16
#endif
#ifndef TX
#    define TX 16
#endif

#define CH  64
#define WG  (TY * TX)
#define TM  (CH / TY)  /* rows of a 64-row product per work-item */
#define TMS (BKS / TY) /* rows of a BKS-row slice per work-item */
#define TN  (BV / TX)  /* columns per work-item */

#if K_DIM % BKS != 0 || V_DIM % BV != 0 || BV % TX != 0 || BKS % TY != 0 || CH % TY != 0
#    error "state_bwd.cl: illegal tile sizes"
#endif

__kernel __attribute__((reqd_work_group_size(WG, 1, 1))) void
gated_delta_state_bwd(STATE_BWD_PARAMS)
{
    __local float sH[K_DIM * BV];      /* dH slab [K][BV] */
    __local float sD[2 * CH * BV];     /* [do ; dv2] rows of the chunk */
    __local float sA[2 * CH * BKS];    /* k slice, or [q' ; -w] slices */
    __local float sG[CH];

    const int   tid = (int)get_local_id(0), tx = tid % TX, ty = tid / TX;
    const int   v0 = (int)get_group_id(0) * BV, n = (int)get_group_id(1);
    const int   hv = (int)get_group_id(2);
    const int   hk = hv / (HV / H);
    const ulong st_base = ((ulong)n * HV + hv) * K_DIM * V_DIM + v0;

    const int c_first = chunk_off[n], nc = chunk_off[n + 1] - c_first;
    if (rb > 0 && rb >= nc)
        return; /* this sequence was finished by an earlier window */
    const int c_hi = c_first + nc - 1 - rb;           /* first chunk of this window */
    const int c_lo = max(c_first, c_first + nc - re); /* last one */
    {
        const ulong hb = ((ulong)c_hi * HV + hv) * K_DIM * V_DIM + v0;
        for (int idx = tid; idx < K_DIM * BV; idx += WG) {
            const int   i = idx / BV, j = idx % BV;
            const ulong o = (ulong)i * V_DIM + j;
            sH[idx]       = rb > 0 ? dh[hb + o] : has_dht ? dht[st_base + o] : 0.0f;
        }
    }
    for (int c = c_hi; c >= c_lo; c--) {
        const int4  e  = chunks[c];
        const int   t0 = e.y, L = e.z;
        const ulong dh_base = ((ulong)c * HV + hv) * K_DIM * V_DIM + v0;

        barrier(CLK_LOCAL_MEM_FENCE); /* sH final, sD/sA/sG free */
        for (int idx = tid; idx < K_DIM * BV; idx += WG) {
            const int i = idx / BV, j = idx % BV;
            dh[dh_base + (ulong)i * V_DIM + j] = sH[idx];
        }
        for (int r = tid; r < CH; r += WG) /* WG may be below 64 */
            sG[r] = r < L ? G[(ulong)(t0 + r) * HV + hv] : 0.0f;
        for (int idx = tid; idx < CH * BV; idx += WG) {
            const int r = idx / BV, j = idx % BV;
            sD[idx] = r < L ? do_[((ulong)(t0 + r) * HV + hv) * V_DIM + v0 + j] : 0.0f;
        }

        /* dv2 = diag(exp2(gl - G)) (k dH) + dv_local */
        float acc[TM][TN];
        GDN_TILE_ZERO(acc, TM, TN);
        for (int ks = 0; ks < K_DIM; ks += BKS) {
            barrier(CLK_LOCAL_MEM_FENCE);
            for (int idx = tid; idx < CH * BKS; idx += WG) {
                const int r = idx / BKS, cc = idx % BKS;
                sA[idx] = r < L ? k[((ulong)(t0 + r) * H + hk) * K_DIM + ks + cc] : 0.0f;
            }
            barrier(CLK_LOCAL_MEM_FENCE);
            GDN_TILE_MMA(acc, TM, TN, sA, BKS, 0, sH + ks * BV, BV, 0, ty, TY, tx, TX, BKS);
        }
        const float gl = sG[L - 1];
        for (int a = 0; a < TM; a++) {
            const int i = ty + a * TY;
            for (int b = 0; b < TN; b++) {
                const int j   = tx + b * TX;
                float     val = 0.0f;
                if (i < L) {
                    const ulong off = ((ulong)(t0 + i) * HV + hv) * V_DIM + v0 + j;
                    val             = exp2(gl - sG[i]) * acc[a][b] + dvl[off];
                    dv2[off]        = val;
                }
                sD[(CH + i) * BV + j] = val;
            }
        }

        /* dH = exp2(gl) dH + [scale exp2(G) q ; -w]^T [do ; dv2] */
        const float decay = exp2(gl);
        for (int ks = 0; ks < K_DIM; ks += BKS) {
            barrier(CLK_LOCAL_MEM_FENCE);
            for (int idx = tid; idx < CH * BKS; idx += WG) {
                const int r = idx / BKS, cc = idx % BKS;
                float     qv = 0.0f, wv = 0.0f;
                if (r < L) {
                    qv = q[((ulong)(t0 + r) * H + hk) * K_DIM + ks + cc] * scale * exp2(sG[r]);
                    wv = -w[((ulong)(t0 + r) * HV + hv) * K_DIM + ks + cc];
                }
                sA[idx]            = qv;
                sA[CH * BKS + idx] = wv;
            }
            barrier(CLK_LOCAL_MEM_FENCE);
            float up[TMS][TN];
            GDN_TILE_ZERO(up, TMS, TN);
            GDN_TILE_MMA(up, TMS, TN, sA, BKS, 1, sD, BV, 0, ty, TY, tx, TX, 2 * CH);
            for (int a = 0; a < TMS; a++)
                for (int b = 0; b < TN; b++) {
                    const int idx = (ks + ty + a * TY) * BV + tx + b * TX;
                    sH[idx]       = fma(decay, sH[idx], up[a][b]);
                }
        }
    }
    barrier(CLK_LOCAL_MEM_FENCE);
    if (c_lo > c_first) { /* dH leaving chunk c_lo - 1: the next window starts there */
        const ulong hb = ((ulong)(c_lo - 1) * HV + hv) * K_DIM * V_DIM + v0;
        for (int idx = tid; idx < K_DIM * BV; idx += WG) {
            const int i = idx / BV, j = idx % BV;
            dh[hb + (ulong)i * V_DIM + j] = sH[idx];
        }
    } else if (write_dh0) {
        for (int idx = tid; idx < K_DIM * BV; idx += WG) {
            const int i = idx / BV, j = idx % BV;
            dh0[st_base + (ulong)i * V_DIM + j] = sH[idx];
        }
    }
}

/* The register forms (gated_delta_state_bwd_rs, below): the window's chunks
 * c_hi down to c_lo of sequence n, and dH entering it (dht or 0 at the
 * sequence's last chunk, else dh[c_hi] as the previous window left it) into
 * the work-item's S[RTR][TN], rows SROW(a) and columns SCOL(j) as each form
 * defines them; at the end, S into dh[c_lo - 1] when chunks are left (the
 * next window starts there), else into dh0. */
#define RS_WINDOW_BEGIN()                                                                          \
    const int c_first = chunk_off[n], nc = chunk_off[n + 1] - c_first;                             \
    if (rb > 0 && rb >= nc)                                                                        \
        return; /* this sequence was finished by an earlier window */                              \
    const int c_hi = c_first + nc - 1 - rb;           /* first chunk of this window */             \
    const int c_lo = max(c_first, c_first + nc - re); /* last one */                               \
    do {                                                                                           \
        const ulong hb_ = ((ulong)c_hi * HV + hv) * K_DIM * V_DIM + v0;                            \
        for (int a_ = 0; a_ < RTR; a_++)                                                           \
            for (int j_ = 0; j_ < TN; j_++) {                                                      \
                const ulong o_ = (ulong)SROW(a_) * V_DIM + SCOL(j_);                               \
                S[a_][j_] = rb > 0 ? dh[hb_ + o_] : has_dht ? dht[st_base + o_] : 0.0f;            \
            }                                                                                      \
    } while (0)
#define RS_WINDOW_END()                                                                            \
    do {                                                                                           \
        const ulong hb_ = ((ulong)(c_lo - 1) * HV + hv) * K_DIM * V_DIM + v0;                      \
        for (int a_ = 0; a_ < RTR; a_++)                                                           \
            for (int j_ = 0; j_ < TN; j_++) {                                                      \
                const ulong o_ = (ulong)SROW(a_) * V_DIM + SCOL(j_);                               \
                if (c_lo > c_first)                                                                \
                    dh[hb_ + o_] = S[a_][j_];                                                      \
                else if (write_dh0)                                                                \
                    dh0[st_base + o_] = S[a_][j_];                                                 \
            }                                                                                      \
    } while (0)

/* At a chunk's start in the register forms: dH (S) into dh[c] (at hb_) and
 * into XL, the B operand of k dH (float4s in the forms with RSVEC), and the
 * chunk's gates gr and exp2 of them into Gs, Es. */
#if defined(RSVEC) && RSVEC
#define RS_STATE_OUT_(hb_)                                                                         \
    for (int a_ = 0; a_ < RTR; a_++)                                                               \
        for (int j_ = 0; j_ < TN; j_ += 4) {                                                       \
            const int    r_ = SROW(a_), c_ = SCOL(j_);                                             \
            const float4 x_ = GDN_TILE_ROW4(S, a_, j_);                                            \
            GDN_ST4L(x_, XL + r_ * BV + c_);                                                       \
            GDN_ST4G(x_, dh + (hb_) + (ulong)r_ * V_DIM + c_);                                     \
        }
#else
#define RS_STATE_OUT_(hb_)                                                                         \
    for (int a_ = 0; a_ < RTR; a_++)                                                               \
        for (int j_ = 0; j_ < TN; j_++) {                                                          \
            const int r_ = SROW(a_), c_ = SCOL(j_);                                                \
            XL[r_ * BV + c_]                     = S[a_][j_];                                      \
            dh[(hb_) + (ulong)r_ * V_DIM + c_] = S[a_][j_];                                        \
        }
#endif
#define RS_CHUNK_STAGE(hb_)                                                                        \
    do {                                                                                           \
        RS_STATE_OUT_(hb_);                                                                        \
        for (int p_ = 0; p_ < NGS; p_++) {                                                         \
            const int r_ = tid + p_ * WG;                                                          \
            if (r_ < CH) {                                                                         \
                Gs[r_] = gr[p_];                                                                   \
                Es[r_] = exp2(gr[p_]);                                                             \
            }                                                                                      \
        }                                                                                          \
    } while (0)
/* The gates of rows t_ ... t_ + l_ - 1 into gr (0 past them). */
#define RS_LOAD_G(t_, l_)                                                                          \
    for (int p_ = 0; p_ < NGS; p_++) {                                                             \
        const int r_ = tid + p_ * WG;                                                              \
        gr[p_]       = r_ < (l_) ? G[(ulong)((t_) + r_) * HV + hv] : 0.0f;                         \
    }
/* The float4 forms (RSVEC = 1, 2): chunk cc's do and dv_local (the
 * work-item's dv2 entries, rows VROW(a) and columns SCOL(j)) and its gates.
 * Offsets are int (T HV max(K, V) < 2^31, api.c). */
#define RS_LOAD_DG4(cc)                                                                            \
    do {                                                                                           \
        const int4 e_ = chunks[cc];                                                                \
        const int  t_ = e_.y, l_ = e_.z;                                                           \
        for (int a_ = 0; a_ < TM; a_++) {                                                          \
            const int i_ = VROW(a_);                                                               \
            for (int j_ = 0; j_ < TN; j_ += 4) {                                                   \
                const int o_ = ((t_ + i_) * HV + hv) * V_DIM + v0 + SCOL(j_);                      \
                float4    x_ = (float4)(0.0f), y_ = (float4)(0.0f);                                \
                if (i_ < l_) {                                                                     \
                    x_ = GDN_LD4G(do_ + o_);                                                       \
                    y_ = GDN_LD4G(dvl + o_);                                                       \
                }                                                                                  \
                dor[a_][j_] = x_.x, dor[a_][j_ + 1] = x_.y, dor[a_][j_ + 2] = x_.z;                \
                dor[a_][j_ + 3] = x_.w;                                                            \
                dvr[a_][j_] = y_.x, dvr[a_][j_ + 1] = y_.y, dvr[a_][j_ + 2] = y_.z;                \
                dvr[a_][j_ + 3] = y_.w;                                                            \
            }                                                                                      \
        }                                                                                          \
        RS_LOAD_G(t_, l_);                                                                         \
    } while (0)

#if defined(REGSTATE) && !(defined(RSVEC) && RSVEC == 2)
/*
 * gated_delta_state_bwd_rs - the same function as gated_delta_state_bwd
 * (same arguments, outputs dh, dv2, dh0, chunk windows and masking), with
 * dH in registers for the whole scan: work-item (tx, ty) owns the dH rows
 * ty + TY a (a < K_DIM / TY) and columns tx + TX j (j < BV / TX), and the
 * dv2 rows ty + TY a (a < 64 / TY) with the same columns. Each chunk:
 *   1. dH goes to dh[c] and to local memory (the B operand of k_c dH);
 *   2. acc = k_c dH over NSL = K_DIM / BKS slices of BKS columns of k;
 *   3. dv2 = diag(exp2(gl - G)) acc + dv_local (rows < L) goes to dv2 and,
 *      under do, replaces dH in local memory: [do ; dv2] (128 x BV);
 *   4. dH = exp2(gl) dH + [scale exp2(G) q ; -w]^T [do ; dv2] over 2 NSL
 *      slices of BI = 64 / NSL rows of q (then of w) with all K_DIM
 *      columns, so every slice updates all of a work-item's dH.
 * k, q and w slices hold the same number of values (64 BKS): one register
 * buffer carries any of them. The next slice (and the next chunk's do,
 * dv_local and gates) is loaded into registers while the current one
 * computes: a chunk costs 6 K_DIM / BKS barriers and no exposed global
 * latency after the first.
 *
 * Extra tuning macro: REGSTATE (defined: build this kernel). BKS: the K
 * slice of staged k columns (divides K_DIM; K_DIM / BKS divides 64; 64 BKS
 * is a multiple of TY TX). TY must divide 64 and K_DIM. Local memory:
 * 4 * (64 * (BKS + 1) + max(K_DIM, 128) * BV + 128) bytes (32.75 KiB at
 * K = 128, BV = 32, BKS = 64; 40.75 KiB at BV = 64, BKS = 32). Registers
 * per work-item: K_DIM BV / WG dH + 3 * 64 BV / WG (k dH accumulator,
 * prefetched do and dv_local) + 64 BKS / WG prefetched slice + 64 / WG
 * gates (57 at K = 128, BV = 32, BKS = 64, 16 x 16 work-items).
 *
 * RSVEC=1 (tuning parameter RS = 2) is the float4 form of this kernel, as
 * state_fwd_rs's: work-item (tx, ty) owns the contiguous dH rows
 * ty K_DIM / TY + a, the contiguous dv2 rows ty 64 / TY + a and TN / 4 groups
 * of 4 contiguous columns 4 TX apart (SROW, VROW, SCOL), and both products
 * read their operands from local memory as float4 (GDN_TILE_MMA4): the k
 * slice is stored transposed ([BKS][64 + 4]), q and w slices are rows of
 * K_DIM + 4 floats. A quarter of the local-memory reads per fma; the
 * slices, do, dv_local, dv2 and dh also move as float4s. It needs 64 / TY,
 * K_DIM / TY, BV / TX and 16 BKS / (TY TX) to be multiples of 4. Local memory:
 * 4 * (max(BKS (64 + 4), BI (K_DIM + 4)) + max(K_DIM, 128) * BV + 128) bytes
 * (41.0 KiB at K = 128, BV = 64, BKS = 32).
 */
#define RTR   (K_DIM / TY)           /* dH rows per work-item */
#define NSL   (K_DIM / BKS)          /* slices of k (and of q, of w) per chunk */
#define BI    (CH / NSL)             /* rows of q or w per slice */
#define NPS   (CH * BKS / WG)        /* slice elements per work-item */
#define NGS   ((CH + WG - 1) / WG)   /* gates per work-item */
#define LDS   (BKS + 1)
#define XROWS (K_DIM > 2 * CH ? K_DIM : 2 * CH)
#ifndef RSVEC
#    define RSVEC 0
#endif
#if RSVEC
#    define SROW(a) (ty * RTR + (a)) /* dH rows of a work-item: RTR contiguous */
#    define VROW(a) (ty * TM + (a))  /* dv2 rows: TM contiguous */
/* columns: TN / 4 groups of 4 contiguous ones, 4 TX apart (the float4 reads
 * of neighbouring work-items are contiguous) */
#    define SCOL(j) (4 * tx + ((j) / 4) * (4 * TX) + (j) % 4)
#    define LDA     (CH + 4)    /* k slice stored transposed: [BKS][LDA] */
#    define LDQ     (K_DIM + 4) /* q or w slice: [BI][LDQ] */
#    define SLN     (BKS * LDA > BI * LDQ ? BKS * LDA : BI * LDQ)
#    define NP4     (NPS / 4)   /* float4s of a staged slice per work-item */
#    if TM % 4 != 0 || RTR % 4 != 0 || TN % 4 != 0 || (CH * BKS) % (4 * WG) != 0
#        error "state_bwd.cl (RSVEC): 64/TY, K_DIM/TY, BV/TX and 16 BKS/WG must be multiples of 4"
#    endif
#else
#    define SROW(a) (ty + TY * (a))
#    define VROW(a) (ty + TY * (a))
#    define SCOL(j) (tx + TX * (j))
#    define LDA     LDS         /* k slice: [64][LDA] */
#    define LDQ     (K_DIM + 1) /* q or w slice: [BI][LDQ] */
#endif

#if K_DIM % TY != 0 || K_DIM % BKS != 0 || CH % NSL != 0 || (CH * BKS) % WG != 0
#    error "state_bwd.cl (REGSTATE): illegal tile sizes"
#endif

__kernel __attribute__((reqd_work_group_size(WG, 1, 1))) void
gated_delta_state_bwd_rs(STATE_BWD_PARAMS)
{
#if RSVEC /* float4 arrays: aligned for the float4 reads */
    __local float4 SL4[SLN / 4];       /* a k slice (transposed) or a q or w slice */
    __local float4 XL4[XROWS * BV / 4]; /* dH [K][BV], then [do ; dv2] [128][BV] */
    __local float *SL = (__local float *)SL4, *XL = (__local float *)XL4;
#else
    __local float SL[CH * LDS];    /* a 64 x BKS slice of k or a BI x K_DIM slice of q or w */
    __local float XL[XROWS * BV];  /* dH [K][BV], then [do ; dv2] [128][BV] */
#endif
    __local float Gs[CH], Es[CH];  /* G and exp2(G) of the chunk's rows (0 and 1 past L) */

    const int   tid = (int)get_local_id(0), tx = tid % TX, ty = tid / TX;
    const int   v0 = (int)get_group_id(0) * BV, n = (int)get_group_id(1);
    const int   hv = (int)get_group_id(2);
    const int   hk = hv / (HV / H);
    const ulong st_base = ((ulong)n * HV + hv) * K_DIM * V_DIM + v0;
    float       S[RTR][TN], acc[TM][TN], dor[TM][TN], dvr[TM][TN], gr[NGS];
#if RSVEC
    float4      pr[NP4];
#else
    float       pr[NPS];
#endif

    RS_WINDOW_BEGIN();

#if RSVEC
/* RSVEC moves every global and staged operand as float4 (GDN_LD4G, ...): pr
 * holds NP4 float4s of a slice; a k slice is read in the order of
 * GDN_TILE_T_ROW / GDN_TILE_T_COL, so its transposed stores hit at most 2
 * lanes per bank; do, dv_local, dv2, dh and the tiles in XL go four
 * contiguous columns at a time. */
/* Slice qi of chunk cc into pr: qi < NSL is k[:, qi BKS ...] (64 x BKS);
 * NSL <= qi < 2 NSL is q[(qi - NSL) BI ..., :] and 2 NSL <= qi < 3 NSL is
 * w[(qi - 2 NSL) BI ..., :] (BI x K_DIM). Rows past the chunk repeat its
 * last row, as in state_fwd_rs: k's give rows of k dH that are masked to
 * zeros before dv2 is stored or staged, q's and w's meet the rows of do
 * and dv2 past L, which are exact zeros. Offsets into the token-major
 * tensors are int (the host keeps T HV max(K, V) below 2^31, api.c). */
#define RS_LOAD_SLICE(cc, qi)                                                                      \
    do {                                                                                           \
        const int4             e_  = chunks[cc];                                                   \
        const int              t_  = e_.y, l_ = e_.z;                                              \
        const int              kd_ = (qi) < NSL ? 0 : (qi) < 2 * NSL ? 1 : 2; /* k, q, w */        \
        const __global float *b_  = kd_ == 2 ? w + (t_ * HV + hv) * K_DIM                          \
                                              : (kd_ ? q : k) + (t_ * H + hk) * K_DIM;             \
        const int              rs_ = (kd_ == 2 ? HV : H) * K_DIM; /* row stride */                 \
        for (int p_ = 0; p_ < NP4; p_++) {                                                         \
            const int e2_ = tid + p_ * WG;                                                         \
            int       r_, d_;                                                                      \
            if (kd_ == 0) {                                                                        \
                r_ = GDN_TILE_T_ROW(e2_, BKS), d_ = (qi) * BKS + GDN_TILE_T_COL(e2_, BKS);         \
            } else {                                                                               \
                r_ = ((qi) - kd_ * NSL) * BI + e2_ / (K_DIM / 4), d_ = 4 * (e2_ % (K_DIM / 4));   \
            }                                                                                      \
            pr[p_] = GDN_LD4G(b_ + (min(r_, l_ - 1) * rs_ + d_));                                 \
        }                                                                                          \
    } while (0)
#define RS_LOAD_DG(cc) RS_LOAD_DG4(cc)
/* pr into SL: a k slice transposed (element (r, d) at SL[d LDA + r]) or a
 * q or w slice (at SL[r LDQ + d]); q rows times scale exp2(G), w negated. */
#define RS_STORE_SLICE(qi)                                                                         \
    do {                                                                                           \
        for (int p_ = 0; p_ < NP4; p_++) {                                                         \
            const int e2_ = tid + p_ * WG;                                                         \
            if ((qi) < NSL) {                                                                      \
                GDN_TILE_STORE_T4(SL, LDA, GDN_TILE_T_ROW(e2_, BKS), GDN_TILE_T_COL(e2_, BKS),     \
                                  pr[p_]);                                                         \
            } else {                                                                               \
                const int kd_ = (qi) < 2 * NSL ? 1 : 2, r_ = e2_ / (K_DIM / 4);                    \
                const int r0_ = ((qi) - kd_ * NSL) * BI;                                           \
                GDN_ST4L(kd_ == 1 ? pr[p_] * scale * Es[r0_ + r_] : -pr[p_],                       \
                         SL + r_ * LDQ + 4 * (e2_ % (K_DIM / 4)));                                 \
            }                                                                                      \
        }                                                                                          \
    } while (0)
#else
/* Slice qi of chunk cc into pr: qi < NSL is k[:, qi BKS ...] (64 x BKS);
 * NSL <= qi < 2 NSL is q[(qi - NSL) BI ..., :] and 2 NSL <= qi < 3 NSL is
 * w[(qi - 2 NSL) BI ..., :] (BI x K_DIM); rows past the chunk: 0. */
#define RS_LOAD_SLICE(cc, qi)                                                                      \
    do {                                                                                           \
        const int4 e_   = chunks[cc];                                                              \
        const int  t_   = e_.y, l_ = e_.z;                                                         \
        const int  kd_  = (qi) < NSL ? 0 : (qi) < 2 * NSL ? 1 : 2;                                 \
        const int  wd_  = kd_ == 0 ? BKS : K_DIM;                                                  \
        const int  r0_  = kd_ == 0 ? 0 : ((qi) - kd_ * NSL) * BI;                                  \
        const int  d0_  = kd_ == 0 ? (qi) * BKS : 0;                                               \
        for (int p_ = 0; p_ < NPS; p_++) {                                                         \
            const int e2_ = tid + p_ * WG, rl_ = e2_ / wd_, r_ = r0_ + rl_;                        \
            const int d_  = d0_ + e2_ - rl_ * wd_;                                                 \
            pr[p_]        = r_ >= l_    ? 0.0f                                                     \
                            : kd_ == 2 ? w[((ulong)(t_ + r_) * HV + hv) * K_DIM + d_]              \
                                       : (kd_ == 1 ? q : k)[((ulong)(t_ + r_) * H + hk) * K_DIM + \
                                                            d_];                                   \
        }                                                                                          \
    } while (0)
/* Chunk cc's do and dv_local (this work-item's dv2 entries) and gates. */
#define RS_LOAD_DG(cc)                                                                             \
    do {                                                                                           \
        const int4 e_ = chunks[cc];                                                                \
        const int  t_ = e_.y, l_ = e_.z;                                                           \
        for (int a_ = 0; a_ < TM; a_++) {                                                          \
            const int i_ = VROW(a_);                                                               \
            for (int j_ = 0; j_ < TN; j_++) {                                                      \
                const ulong o_ = ((ulong)(t_ + i_) * HV + hv) * V_DIM + v0 + SCOL(j_);             \
                dor[a_][j_]    = i_ < l_ ? do_[o_] : 0.0f;                                         \
                dvr[a_][j_]    = i_ < l_ ? dvl[o_] : 0.0f;                                         \
            }                                                                                      \
        }                                                                                          \
        RS_LOAD_G(t_, l_);                                                                         \
    } while (0)
/* pr into SL: a k slice (element (r, d) at SL[r LDA + d]) or a q or w
 * slice (at SL[r LDQ + d]); q rows times scale exp2(G), w negated. */
#define RS_STORE_SLICE(qi)                                                                         \
    do {                                                                                           \
        const int kd_ = (qi) < NSL ? 0 : (qi) < 2 * NSL ? 1 : 2;                                   \
        const int wd_ = kd_ == 0 ? BKS : K_DIM;                                                    \
        const int r0_ = kd_ == 0 ? 0 : ((qi) - kd_ * NSL) * BI;                                    \
        for (int p_ = 0; p_ < NPS; p_++) {                                                         \
            const int e2_ = tid + p_ * WG, r_ = e2_ / wd_;                                         \
            float     x_  = pr[p_];                                                                \
            if (kd_ == 1)                                                                          \
                x_ = x_ * scale * Es[r0_ + r_];                                                    \
            else if (kd_ == 2)                                                                     \
                x_ = -x_;                                                                          \
            const int d_ = e2_ - r_ * wd_;                                                         \
            SL[kd_ != 0 ? r_ * LDQ + d_ : r_ * LDA + d_] = x_;                                     \
        }                                                                                          \
    } while (0)

#endif /* RSVEC */

    if (c_hi >= c_lo) {
        RS_LOAD_SLICE(c_hi, 0);
        RS_LOAD_DG(c_hi);
    }
    for (int c = c_hi; c >= c_lo; c--) {
        const int4  e       = chunks[c];
        const int   t0      = e.y, L = e.z;
        const ulong dh_base = ((ulong)c * HV + hv) * K_DIM * V_DIM + v0;

        barrier(CLK_LOCAL_MEM_FENCE); /* the previous chunk's readers of XL, SL, Gs, Es are done */
        RS_CHUNK_STAGE(dh_base); /* dh[c] = dH (leaving the chunk); XL, Gs, Es */

        /* acc = k dH, one BKS-column slice of k at a time. */
        GDN_TILE_ZERO(acc, TM, TN);
        RS_STORE_SLICE(0);
#pragma unroll
        for (int s = 0; s < NSL; s++) {
            if (s > 0) {
                barrier(CLK_LOCAL_MEM_FENCE);
                RS_STORE_SLICE(s);
            }
            barrier(CLK_LOCAL_MEM_FENCE);
            RS_LOAD_SLICE(c, s + 1); /* k slice s + 1, or q slice 0 */
#if RSVEC
            GDN_TILE_MMA4(acc, TM, TN, SL, LDA, VROW(0), 4, (XL + s * BKS * BV), BV, SCOL(0),
                          4 * TX, BKS);
#else
            GDN_TILE_MMA(acc, TM, TN, SL, LDS, 0, (XL + s * BKS * BV), BV, 0, ty, TY, tx, TX, BKS);
#endif
        }
        barrier(CLK_LOCAL_MEM_FENCE); /* every read of dH in XL and of k is done */
        {
            /* dv2 = diag(exp2(gl - G)) (k dH) + dv_local; [do ; dv2] into XL */
            const float gl = Gs[L - 1];
            for (int a = 0; a < TM; a++) {
                const int   i   = VROW(a);
                const bool  ok  = i < L;
                const float dec = exp2(select(0.0f, gl - Gs[i], (int)ok));
#if RSVEC
                for (int j = 0; j < TN; j += 4) {
                    const int    col = SCOL(j);
                    const float4 val = ok ? dec * GDN_TILE_ROW4(acc, a, j) +
                                                GDN_TILE_ROW4(dvr, a, j)
                                          : (float4)(0.0f);
                    if (ok)
                        GDN_ST4G(val, dv2 + ((ulong)(t0 + i) * HV + hv) * V_DIM + v0 + col);
                    GDN_ST4L(GDN_TILE_ROW4(dor, a, j), XL + i * BV + col);
                    GDN_ST4L(val, XL + (CH + i) * BV + col);
                }
#else
                for (int j = 0; j < TN; j++) {
                    const int   col = SCOL(j);
                    const float val = ok ? dec * acc[a][j] + dvr[a][j] : 0.0f;
                    if (ok)
                        dv2[((ulong)(t0 + i) * HV + hv) * V_DIM + v0 + col] = val;
                    XL[i * BV + col]        = dor[a][j];
                    XL[(CH + i) * BV + col] = val;
                }
#endif
            }
            const float decay = exp2(gl);
            for (int a = 0; a < RTR; a++)
                for (int j = 0; j < TN; j++)
                    S[a][j] *= decay;
        }
        if (c - 1 >= c_lo)
            RS_LOAD_DG(c - 1);

        /* dH += [q' ; -w]^T [do ; dv2], one BI-row slice of q' or -w (all
         * K_DIM columns) at a time: slice s is stacked rows s BI ... */
        RS_STORE_SLICE(NSL);
#pragma unroll
        for (int s = 0; s < 2 * NSL; s++) {
            if (s > 0) {
                barrier(CLK_LOCAL_MEM_FENCE);
                RS_STORE_SLICE(NSL + s);
            }
            barrier(CLK_LOCAL_MEM_FENCE);
            if (s + 1 < 2 * NSL)
                RS_LOAD_SLICE(c, NSL + s + 1);
            else if (c - 1 >= c_lo)
                RS_LOAD_SLICE(c - 1, 0);
#if RSVEC
            GDN_TILE_MMA4(S, RTR, TN, SL, LDQ, SROW(0), 4, (XL + s * BI * BV), BV, SCOL(0), 4 * TX,
                          BI);
#else
            GDN_TILE_MMA(S, RTR, TN, SL, K_DIM + 1, 1, (XL + s * BI * BV), BV, 0, ty, TY, tx, TX,
                         BI);
#endif
        }
    }
#undef RS_LOAD_SLICE
#undef RS_LOAD_DG
#undef RS_STORE_SLICE

    RS_WINDOW_END();
}
#endif /* REGSTATE */

#if defined(REGSTATE) && defined(RSVEC) && RSVEC == 2
/*
 * gated_delta_state_bwd_rs, RSVEC=2 (tuning parameter RS = 3): dH in
 * registers as in the forms above, with every slice staged row-major as it
 * lies in memory and copied by GDN_CP16 (cp.async on NVIDIA, a plain load
 * and store elsewhere: cl/include/gdn_tile.clh) into three slots, so the
 * copies of slices i + 1 and i + 2 are in flight while slice i is
 * multiplied, with one barrier per slice and no registers holding the next
 * slices (as state_fwd_rs's RSVEC=2). A chunk's 3 K_DIM / BKS slices are
 * k[:, s BKS ...] (64 x BKS, rows padded to BKS + 4 floats), then q[s BI
 * ..., :] and w[s BI ..., :] (BI x K_DIM), then the next chunk's (the one
 * before); they take the slots in turn.
 *   acc = k dH: work-item (tx, ty) owns the strided rows ty + TY a of acc
 *     (and dv2) and the column groups SCOL; it reads one float4 of four k
 *     per k row (GDN_TILE_MMA4R_STEP) and the dH rows from local memory.
 *   dH = exp2(gl) dH + q^T [scale exp2(G) do] + w^T [-dv2]: the scale and
 *     sign go onto the staged do and dv2 rows (the copied q and w are raw),
 *     q and w rows are k-major for this product as they come (GDN_TILE_MMA4).
 * Rows past the chunk repeat its last row, as in the float4 form above.
 * Needs K_DIM / TY and BV / TX multiples of 4, K_DIM / BKS dividing 64.
 * Local memory: 4 * (3 max(64 (BKS + 4), BI K_DIM) + max(K_DIM, 128) BV +
 * 128) bytes (47.5 KiB at K = 128, BV = 64, BKS = 16; 43.5 KiB at BV = 32,
 * BKS = 32).
 */
#define RTR   (K_DIM / TY)         /* dH rows per work-item (contiguous) */
#define NSL   (K_DIM / BKS)        /* slices of k (and of q, of w) per chunk */
#define BI    (CH / NSL)           /* rows of q or w per slice */
#define NGS   ((CH + WG - 1) / WG) /* gates per work-item */
#define XROWS (K_DIM > 2 * CH ? K_DIM : 2 * CH)
#define LDW2  (BKS + 4)
#define SLOT2 (CH * LDW2 > BI * K_DIM ? CH * LDW2 : BI * K_DIM)
#define NSC   (3 * NSL) /* slices per chunk */
#define SROW(a) (ty * RTR + (a))
#define VROW(a) (ty + TY * (a))
/* columns: TN / 4 groups of 4 contiguous ones, 4 TX apart */
#define SCOL(j) (4 * tx + ((j) / 4) * (4 * TX) + (j) % 4)
#if RTR % 4 != 0 || TN % 4 != 0 || K_DIM % BKS != 0 || CH % NSL != 0
#    error "state_bwd.cl (RSVEC=2): K_DIM/TY and BV/TX must be multiples of 4, K_DIM/BKS | 64"
#endif

__kernel __attribute__((reqd_work_group_size(WG, 1, 1))) void
gated_delta_state_bwd_rs(STATE_BWD_PARAMS)
{
    __local float4 SL4[3 * SLOT2 / 4];  /* three slots of k, q or w slices */
    __local float4 XL4[XROWS * BV / 4]; /* dH [K][BV], then [do' ; -dv2] [128][BV] */
    __local float  Gs[CH], Es[CH];      /* G and exp2(G) of the chunk's rows (0 and 1 past L) */
    __local float *SL = (__local float *)SL4, *XL = (__local float *)XL4;

    const int   tid = (int)get_local_id(0), tx = tid % TX, ty = tid / TX;
    const int   v0 = (int)get_group_id(0) * BV, n = (int)get_group_id(1);
    const int   hv = (int)get_group_id(2);
    const int   hk = hv / (HV / H);
    const ulong st_base = ((ulong)n * HV + hv) * K_DIM * V_DIM + v0;
    float       S[RTR][TN], acc[TM][TN], dor[TM][TN], dvr[TM][TN], gr[NGS];
    int         cur = 0; /* the slot of the slice multiplied next */

    RS_WINDOW_BEGIN();

/* Slice qi of chunk cc into slot b: qi < NSL is k[:, qi BKS ...], NSL <= qi
 * < 2 NSL is q[(qi - NSL) BI ..., :], then w[(qi - 2 NSL) BI ..., :]. Rows
 * past the chunk repeat its last row. Offsets into the token-major tensors
 * are int (T HV max(K, V) < 2^31, api.c). */
#define RS2_COPY(cc, qi, b)                                                                        \
    do {                                                                                           \
        const int4     e_ = chunks[cc];                                                            \
        const int      t_ = e_.y, l_ = e_.z;                                                       \
        __local float *d_ = SL + (b) * SLOT2;                                                      \
        if ((qi) < NSL) {                                                                          \
            const __global float *s_ = k + ((t_ * H + hk) * K_DIM + (qi) * BKS);                   \
            for (int e2_ = tid; e2_ < CH * (BKS / 4); e2_ += WG) {                                 \
                const int r_ = e2_ / (BKS / 4), c_ = 4 * (e2_ - r_ * (BKS / 4));                   \
                GDN_CP16(d_ + r_ * LDW2 + c_, s_ + (min(r_, l_ - 1) * (H * K_DIM) + c_));          \
            }                                                                                      \
        } else {                                                                                   \
            const bool            w_  = (qi) >= 2 * NSL;                                           \
            const int             r0_ = ((qi) - (w_ ? 2 : 1) * NSL) * BI;                          \
            const __global float *s_  = w_ ? w + (t_ * HV + hv) * K_DIM                            \
                                           : q + (t_ * H + hk) * K_DIM;                            \
            const int             rs_ = (w_ ? HV : H) * K_DIM; /* row stride */                    \
            for (int e2_ = tid; e2_ < BI * (K_DIM / 4); e2_ += WG) {                               \
                const int r_ = e2_ / (K_DIM / 4), c_ = 4 * (e2_ - r_ * (K_DIM / 4));               \
                GDN_CP16(d_ + r_ * K_DIM + c_, s_ + (min(r0_ + r_, l_ - 1) * rs_ + c_));           \
            }                                                                                      \
        }                                                                                          \
    } while (0)
/* At slice p of chunk cc (slot cur): the copy of the slice two ahead (into
 * the slot after the next), then a commit, also when nothing is left. */
#define RS2_AHEAD(cc, p)                                                                           \
    do {                                                                                           \
        const int b_ = GDN_SLOT3_AHEAD(cur);                                                       \
        if ((p) + 2 < NSC)                                                                         \
            RS2_COPY(cc, (p) + 2, b_);                                                             \
        else if ((cc) - 1 >= c_lo)                                                                 \
            RS2_COPY((cc) - 1, (p) + 2 - NSC, b_);                                                 \
        GDN_CP_COMMIT();                                                                           \
    } while (0)

    if (c_hi >= c_lo) {
        RS2_COPY(c_hi, 0, 0);
        GDN_CP_COMMIT();
        RS2_COPY(c_hi, 1, 1); /* k slice 1, or q slice 0 */
        GDN_CP_COMMIT();
        RS_LOAD_DG4(c_hi);
    }
    for (int c = c_hi; c >= c_lo; c--) {
        const int4  e       = chunks[c];
        const int   t0      = e.y, L = e.z;
        const ulong dh_base = ((ulong)c * HV + hv) * K_DIM * V_DIM + v0;

        barrier(CLK_LOCAL_MEM_FENCE); /* the previous chunk's readers of XL, Gs, Es are done */
        RS_CHUNK_STAGE(dh_base); /* dh[c] = dH (leaving the chunk); XL, Gs, Es */

        /* acc = k dH, one BKS-column slice of k at a time. */
        GDN_TILE_ZERO(acc, TM, TN);
#pragma unroll
        for (int s = 0; s < NSL; s++) {
            __local const float *KS = SL + cur * SLOT2;
            __local const float *HS = XL + s * BKS * BV;
            GDN_CP_WAIT1();
            barrier(CLK_LOCAL_MEM_FENCE); /* slice s is in; slice s - 1's readers are done */
            RS2_AHEAD(c, s);
            GDN_TILE_MMA4R_S(acc, TM, TN, KS, LDW2, VROW(0), TY, HS, BV, 4 * tx, 4 * TX, BKS);
            GDN_SLOT3_NEXT(cur);
        }
        barrier(CLK_LOCAL_MEM_FENCE); /* every read of dH in XL is done */
        {
            /* dv2 = diag(exp2(gl - G)) (k dH) + dv_local; [do' ; -dv2] into XL,
             * do' = scale exp2(G) do */
            const float gl = Gs[L - 1];
            for (int a = 0; a < TM; a++) {
                const int   i   = VROW(a);
                const bool  ok  = i < L;
                const float dec = exp2(select(0.0f, gl - Gs[i], (int)ok));
                const float sq  = scale * Es[i];
                for (int j = 0; j < TN; j += 4) {
                    const int    col = SCOL(j);
                    const float4 val = ok ? dec * GDN_TILE_ROW4(acc, a, j) +
                                                GDN_TILE_ROW4(dvr, a, j)
                                          : (float4)(0.0f);
                    if (ok)
                        GDN_ST4G(val, dv2 + ((t0 + i) * HV + hv) * V_DIM + v0 + col);
                    GDN_ST4L(sq * GDN_TILE_ROW4(dor, a, j), XL + i * BV + col);
                    GDN_ST4L(-val, XL + (CH + i) * BV + col);
                }
            }
            const float decay = exp2(gl);
            for (int a = 0; a < RTR; a++)
                for (int j = 0; j < TN; j++)
                    S[a][j] *= decay;
        }
        if (c - 1 >= c_lo)
            RS_LOAD_DG4(c - 1);

        /* dH += [q ; w]^T [do' ; -dv2], one BI-row slice of q or w (all
         * K_DIM columns) at a time: slice s is stacked rows s BI ... */
#pragma unroll
        for (int s = 0; s < 2 * NSL; s++) {
            __local const float *QS = SL + cur * SLOT2;
            GDN_CP_WAIT1();
            barrier(CLK_LOCAL_MEM_FENCE); /* slice s (and XL) is in */
            RS2_AHEAD(c, NSL + s);
            GDN_TILE_MMA4(S, RTR, TN, QS, K_DIM, SROW(0), 4, (XL + s * BI * BV), BV, SCOL(0),
                          4 * TX, BI);
            GDN_SLOT3_NEXT(cur);
        }
    }
#undef RS2_COPY
#undef RS2_AHEAD

    RS_WINDOW_END();
}
#endif /* REGSTATE, RSVEC == 2 */
