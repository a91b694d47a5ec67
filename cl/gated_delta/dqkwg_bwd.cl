/*
 * gated_delta/dqkwg_bwd.cl - backward stage B5: dq, dk (per value head), dw
 * and the output path's part of the gate gradient (ALGORITHM.md 2.3, fla
 * chunk_bwd_kernel_dqkwg).
 *
 * Math, per chunk (L rows, gl = G[L-1]) and value head hv, with h = h[c]
 * the state entering the chunk, dh = dh[c] the gradient of the state
 * leaving it, dv2 = dL/dv_new, and the columns of one K tile:
 *     ds  = do v_new^T                                   (64 x 64)
 *     dq  = scale diag(exp2 G) do h^T                    (inter-chunk part)
 *     dk  = diag(exp2(gl - G)) v_new dh^T                (inter-chunk part)
 *     dw  = -dv2 h^T
 *     ds  = scale ds o exp2(G_i - G_j)  for j <= i < L, else 0
 *     P   = ds o (q k^T),  j < i only
 *     dG_i = rows(dq o q)_i - [i < L-1] rows(dk o k)_i + rowsum(P)_i - colsum(P)_i
 *     dG[L-1] += exp2(gl) <h, dh> + sum_{i < L-1} rows(dk o k)_i
 *     dq += ds k;   dk += ds^T q
 * This is fla's dG = rows(dq o q - dk o k) (final dq, dk), dG[L-1] += dgl
 * with the terms that cancel exactly left out: the diagonal of ds and row
 * L-1's inter-chunk dk o k. In fp32 those cancellations lose everything
 * when the true dG is tiny (strong decay), so they are never formed.
 * dG is partial (this K tile's columns); stage B6 sums the K tiles. q, k
 * are the ones the chunk kernels read (L2-normalised when the op does that)
 * at q/k head hv / (HV/H); dq and dk are per value head.
 *
 * Shapes: q, k [T, H, K]; G [T, HV]; do, v_new, dv2 [T, HV, V];
 * h, dh [NT, HV, K, V]; dqh, dkh, dw [T, HV, K]; dGp [K/BK, T, HV].
 *
 * One work-group = one (K tile, chunk, value head): global (TY*TX * K/BK,
 * NT, HV), local (TY*TX, 1, 1). First q k^T of the K tile (register
 * micro-tile; q, k staged in local memory). The V loop stages do, v_new,
 * dv2 (64 x BVT) and h, dh (BK x BVT) in local memory and accumulates four
 * register micro-tiles per work-item (rows step TY, columns step TX): ds
 * 64/TY x 64/TX, dq, dk, dw 64/TY x BK/TX. Then ds goes to local memory for
 * the two intra-chunk products. Row and column sums are reduced through
 * local memory in a fixed order (deterministic).
 * Local memory: max(2*64*(BK+1), (3*64 + 2*BK)*(BVT+1), 64*65 + 64*(BK+1),
 * 64*(TX + TY) + TY*TX) + 64 floats.
 *
 * Tuning macros (set by dqkwg_plan in lib/ops/gated_delta/chunk_bwd.c from
 * the tuning space gated_delta/dqkwg; any work-group size, also below 64):
 *   K_DIM, V_DIM  head dims (multiples of 16, <= 256)
 *   BK            K tile: multiple of TX dividing K_DIM (16, 32 or 64;
 *                 default 64 or K_DIM)
 *   BVT           V tile of the inner loop: divides V_DIM (default 16)
 *   TY, TX        work-item grid (both divide 64; default 16 x 16)
 *   GDN_TILE_UNROLL  the unroll factor of the float4 products' loops over k
 *                    (tuning parameter UNROLL; 0, the default: the
 *                    compiler's choice; cl/include/gdn_tile.clh)
 */
#include "gdn_common.clh"
#include "gdn_tile.clh"

/* The parameters of every kernel in this file, in the order the host binds them
 * (lib/ops/gated_delta): the forms differ in their bodies only. */
#define DQKWG_PARAMS                                                                               \
    __global const int4 *chunks, __global const float *q, __global const float *k,                 \
    __global const float *G, __global const float *do_, __global const float *vnew,                \
    __global const float *h, __global const float *dh, __global const float *dv2,                  \
    __global float *dqh, __global float *dkh, __global float *dw, __global float *dGp, int H,      \
    int HV, int T, float scale

#ifndef K_DIM
#    define K_DIM 64
#endif
#ifndef V_DIM
#    define V_DIM 64
#endif
#ifndef BK
#    define BK 64
#endif
#ifndef BVT
#    define BVT 16
#endif
#ifndef TY
#    define TY 16
#endif
#ifndef TX
#    define TX 16
#endif

#define CH  64
#define WG  (TY * TX)
#define TM  (CH / TY)
#define TNC (CH / TX)
#define TNK (BK / TX)
#define LDC (CH + 1)
#define LDK (BK + 1)
#define LDV (BVT + 1)
#define MAX2(a, b) ((a) > (b) ? (a) : (b))
#define XSZ MAX2(MAX2((3 * CH + 2 * BK) * LDV, CH * LDC + CH * LDK), CH * (TX + TY) + WG)

#ifndef VEC
#    define VEC 0
#endif

#if K_DIM % BK != 0 || V_DIM % BVT != 0 || BK % TX != 0 || CH % TY != 0 || CH % TX != 0
#    error "dqkwg_bwd.cl: illegal tile sizes"
#endif

/* Both kernels' indices: work-item (tx, ty), K tile ik at column k0, chunk c
 * (rows t0 ..., L valid), value head hv reading q/k head hk, and the offset
 * st_base of this K tile of h[c] and dh[c]. */
#define DQKWG_INDICES()                                                                            \
    const int   tid = (int)get_local_id(0), tx = tid % TX, ty = tid / TX;                          \
    const int   ik = (int)get_group_id(0), c = (int)get_group_id(1), hv = (int)get_group_id(2);    \
    const int   k0 = ik * BK;                                                                      \
    const int4  e  = chunks[c];                                                                    \
    const int   t0 = e.y, L = e.z;                                                                 \
    const int   hk = hv / (HV / H);                                                                \
    const ulong st_base = ((ulong)c * HV + hv) * K_DIM * V_DIM + (ulong)k0 * V_DIM

/*
 * The epilogue both kernels share. RV(a) and CC(b) are a kernel's chunk row
 * of accumulator row a and column of accumulator column b; QV(a, b) and
 * KV(a, b) its q and k at dq's position (a, b).
 *
 * DQKWG_GATES(): the inter-chunk scales of dq and dk, the mask and decay of
 * ds, and the gate terms that do not cancel, into rowp (per row), colp (per
 * column of ds) and dgl. Declares gl, rowp, colp.
 */
#define DQKWG_GATES()                                                                              \
    const float gl = sG[L - 1];                                                                    \
    float       rowp[TM], colp[TNC];                                                               \
    dgl *= exp2(gl);                                                                               \
    for (int b = 0; b < TNC; b++)                                                                  \
        colp[b] = 0.0f;                                                                            \
    for (int a = 0; a < TM; a++) {                                                                 \
        const int   i  = RV(a);                                                                    \
        const bool  on = i < L;                                                                    \
        const float fq = on ? scale * exp2(sG[i]) : 0.0f;                                          \
        const float fk = on ? exp2(gl - sG[i]) : 0.0f;                                             \
        rowp[a]        = 0.0f;                                                                     \
        for (int b = 0; b < TNK; b++) {                                                            \
            dq[a][b] *= fq;                                                                        \
            dk[a][b] *= fk;                                                                        \
            rowp[a] = fma(dq[a][b], QV(a, b), rowp[a]);                                            \
            if (i < L - 1) {                                                                       \
                rowp[a] -= dk[a][b] * KV(a, b);                                                    \
                dgl = fma(dk[a][b], KV(a, b), dgl);                                                \
            }                                                                                      \
        }                                                                                          \
        for (int b = 0; b < TNC; b++) {                                                            \
            const int  j  = CC(b);                                                                 \
            const bool in = j <= i && on;                                                          \
            ds[a][b]      = in ? scale * ds[a][b] * exp2(in ? sG[i] - sG[j] : 0.0f) : 0.0f;        \
            if (j < i) {                                                                           \
                const float p = ds[a][b] * qk[a][b];                                               \
                rowp[a] += p;                                                                      \
                colp[b] += p;                                                                      \
            }                                                                                      \
        }                                                                                          \
    }

/* DQKWG_STORE_DG(): row sums over TX work-items, column sums over TY, dgl
 * over all, in a fixed order (deterministic), into this K tile's dGp row.
 * Starts with a barrier: sX must be dead. */
#define DQKWG_STORE_DG()                                                                           \
    do {                                                                                           \
        __local float *rrow = sX, *rcol = sX + CH * TX, *sdgl = sX + CH * (TX + TY);               \
        barrier(CLK_LOCAL_MEM_FENCE);                                                              \
        for (int a = 0; a < TM; a++)                                                               \
            rrow[RV(a) * TX + tx] = rowp[a];                                                       \
        for (int b = 0; b < TNC; b++)                                                              \
            rcol[CC(b) * TY + ty] = colp[b];                                                       \
        sdgl[tid] = dgl;                                                                           \
        barrier(CLK_LOCAL_MEM_FENCE);                                                              \
        for (int r = tid; r < L; r += WG) {                                                        \
            float s = 0.0f;                                                                        \
            for (int x = 0; x < TX; x++)                                                           \
                s += rrow[r * TX + x];                                                             \
            for (int y = 0; y < TY; y++)                                                           \
                s -= rcol[r * TY + y];                                                             \
            if (r == L - 1)                                                                        \
                for (int x = 0; x < WG; x++)                                                       \
                    s += sdgl[x];                                                                  \
            dGp[((ulong)ik * T + t0 + r) * HV + hv] = s;                                           \
        }                                                                                          \
    } while (0)

#if !VEC

__kernel __attribute__((reqd_work_group_size(WG, 1, 1))) void
gated_delta_dqkwg(DQKWG_PARAMS)
{
    __local float sX[XSZ];
    __local float sG[CH];

    DQKWG_INDICES();

    for (int r = tid; r < CH; r += WG) /* WG may be below 64 */
        sG[r] = r < L ? G[(ulong)(t0 + r) * HV + hv] : 0.0f;

    /* q k^T of this K tile, and this work-item's q and k elements. */
    float qk[TM][TNC], qreg[TM][TNK], kreg[TM][TNK];
    GDN_TILE_ZERO(qk, TM, TNC);
    {
        __local float *sQ = sX, *sK = sX + CH * LDK;
        for (int idx = tid; idx < CH * BK; idx += WG) {
            const int r = idx / BK, cc = idx % BK;
            float     a = 0.0f, b = 0.0f;
            if (r < L) {
                const ulong off = ((ulong)(t0 + r) * H + hk) * K_DIM + k0 + cc;
                a               = q[off];
                b               = k[off];
            }
            sQ[r * LDK + cc] = a;
            sK[r * LDK + cc] = b;
        }
        barrier(CLK_LOCAL_MEM_FENCE);
        GDN_TILE_MMA(qk, TM, TNC, sQ, LDK, 0, sK, LDK, 1, ty, TY, tx, TX, BK);
        for (int a = 0; a < TM; a++)
            for (int b = 0; b < TNK; b++) {
                qreg[a][b] = sQ[(ty + a * TY) * LDK + tx + b * TX];
                kreg[a][b] = sK[(ty + a * TY) * LDK + tx + b * TX];
            }
    }

    float ds[TM][TNC], dq[TM][TNK], dk[TM][TNK], dwa[TM][TNK];
    float dgl = 0.0f;
    GDN_TILE_ZERO(ds, TM, TNC);
    GDN_TILE_ZERO(dq, TM, TNK);
    GDN_TILE_ZERO(dk, TM, TNK);
    GDN_TILE_ZERO(dwa, TM, TNK);
    {
        __local float *sDO = sX, *sVN = sX + CH * LDV, *sDV = sX + 2 * CH * LDV;
        __local float *sHt = sX + 3 * CH * LDV, *sDH = sX + (3 * CH + BK) * LDV;
        for (int v0 = 0; v0 < V_DIM; v0 += BVT) {
            barrier(CLK_LOCAL_MEM_FENCE);
            for (int idx = tid; idx < CH * BVT; idx += WG) {
                const int r = idx / BVT, cc = idx % BVT;
                float     a = 0.0f, b = 0.0f, d = 0.0f;
                if (r < L) {
                    const ulong off = ((ulong)(t0 + r) * HV + hv) * V_DIM + v0 + cc;
                    a               = do_[off];
                    b               = vnew[off];
                    d               = dv2[off];
                }
                sDO[r * LDV + cc] = a;
                sVN[r * LDV + cc] = b;
                sDV[r * LDV + cc] = d;
            }
            for (int idx = tid; idx < BK * BVT; idx += WG) {
                const int   r = idx / BVT, cc = idx % BVT;
                const ulong off = st_base + (ulong)r * V_DIM + v0 + cc;
                sHt[r * LDV + cc] = h[off];
                sDH[r * LDV + cc] = dh[off];
            }
            barrier(CLK_LOCAL_MEM_FENCE);
            GDN_TILE_MMA(ds, TM, TNC, sDO, LDV, 0, sVN, LDV, 1, ty, TY, tx, TX, BVT);
            GDN_TILE_MMA(dq, TM, TNK, sDO, LDV, 0, sHt, LDV, 1, ty, TY, tx, TX, BVT);
            GDN_TILE_MMA(dk, TM, TNK, sVN, LDV, 0, sDH, LDV, 1, ty, TY, tx, TX, BVT);
            GDN_TILE_MMA(dwa, TM, TNK, sDV, LDV, 0, sHt, LDV, 1, ty, TY, tx, TX, BVT);
            for (int idx = tid; idx < BK * BVT; idx += WG) {
                const int r = idx / BVT, cc = idx % BVT;
                dgl         = fma(sHt[r * LDV + cc], sDH[r * LDV + cc], dgl);
            }
        }
    }

    /* Inter-chunk parts and the gate terms that do not cancel. */
#define RV(a)    (ty + (a) * TY)
#define CC(b)    (tx + (b) * TX)
#define QV(a, b) qreg[a][b]
#define KV(a, b) kreg[a][b]
    DQKWG_GATES();

    /* Intra-chunk products: dq += ds k, dk += ds^T q. */
    __local float *sDS = sX, *sQK = sX + CH * LDC;
    barrier(CLK_LOCAL_MEM_FENCE); /* the V loop's tiles are dead */
    for (int a = 0; a < TM; a++)
        for (int b = 0; b < TNC; b++)
            sDS[(ty + a * TY) * LDC + tx + b * TX] = ds[a][b];
    for (int idx = tid; idx < CH * BK; idx += WG) {
        const int r = idx / BK, cc = idx % BK;
        sQK[r * LDK + cc] = r < L ? k[((ulong)(t0 + r) * H + hk) * K_DIM + k0 + cc] : 0.0f;
    }
    barrier(CLK_LOCAL_MEM_FENCE);
    GDN_TILE_MMA(dq, TM, TNK, sDS, LDC, 0, sQK, LDK, 0, ty, TY, tx, TX, CH);
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int idx = tid; idx < CH * BK; idx += WG) {
        const int r = idx / BK, cc = idx % BK;
        sQK[r * LDK + cc] = r < L ? q[((ulong)(t0 + r) * H + hk) * K_DIM + k0 + cc] : 0.0f;
    }
    barrier(CLK_LOCAL_MEM_FENCE);
    GDN_TILE_MMA(dk, TM, TNK, sDS, LDC, 1, sQK, LDK, 0, ty, TY, tx, TX, CH);

    DQKWG_STORE_DG(); /* sDS and sQK are dead */
    for (int a = 0; a < TM; a++) {
        const int i = ty + a * TY;
        if (i < L)
            for (int b = 0; b < TNK; b++) {
                const ulong off = ((ulong)(t0 + i) * HV + hv) * K_DIM + k0 + tx + b * TX;
                dqh[off]        = dq[a][b];
                dkh[off]        = dk[a][b];
                dw[off]         = -dwa[a][b];
            }
    }
}
#undef RV
#undef CC
#undef QV
#undef KV
#endif /* !VEC */

#if VEC == 1 || VEC == 2
/*
 * VEC=1 (and 2, below): gated_delta_dqkwg_v, the same function with every local-memory
 * operand read as float4 (GDN_TILE_MMA4), for GPUs where the scalar
 * kernel's small strided micro-tiles are bound by local-memory reads. Each
 * operand is staged in the layout of the outer product, A k-major and B
 * row-major: the V loop stores do, v_new, dv2 (64 x BVT) and h, dh
 * (BK x BVT) transposed, v-major; q k^T reads q and k K-major; dq += ds k
 * reads ds transposed and k row-major; dk += ds^T q reads ds and q
 * row-major. A work-item owns TM = 64/TY rows in groups of 4 contiguous rows
 * (4 TY apart) and TNC = 64/TX (ds, q k^T) or TNK = BK/TX (dq, dk, dw)
 * columns in groups of 4 (4 TX apart), so TM, TNC and TNK must be multiples
 * of 4. dw is stored right after the V loop, which frees its registers for
 * q k^T. Local memory: max(3 BVT (64 + 4) + 2 BVT (BK + 4), 2 BK (64 + 4),
 * 64 (64 + 4) + 64 (BK + 4), 64 (TX + TY) + TY TX) + 64 floats.
 */
#define LDA (CH + 4)
#define LDB (BK + 4)
#define RV(a) (4 * ty + ((a) / 4) * 4 * TY + (a) % 4) /* chunk row of accumulator row a */
#define CC(b) (4 * tx + ((b) / 4) * 4 * TX + (b) % 4) /* column of accumulator column b */
#define QV(a, b) sQt[CC(b) * LDA + RV(a)]              /* q, k at dq's (a, b): staged K-major */
#define KV(a, b) sKt[CC(b) * LDA + RV(a)]
#define NQK ((CH * BK / 4 + WG - 1) / WG) /* float4s of a 64 x BK tile per work-item */
#define VSZ                                                                                        \
    MAX2(MAX2(3 * BVT * LDA + 2 * BVT * LDB, 2 * BK * LDA), MAX2(CH * LDA + CH * LDB, CH * (TX + TY) + WG))

#if TM % 4 != 0 || TNC % 4 != 0 || TNK % 4 != 0 || BVT % 4 != 0
#    error "dqkwg_bwd.cl: VEC needs 64/TY, 64/TX, BK/TX and BVT multiples of 4"
#endif

#if VEC == 2
/* VEC=2: GDN_TILE_STAGE_T split in two, so the next V tile's loads are in flight
 * while the current one computes: PF_LOAD reads float4s of do, v_new, dv2
 * (NPA per work-item each) and h, dh (NPH each) into registers, PF_STORE
 * writes them transposed into local memory and adds <h, dh>. Needs 64 BVT / 4
 * and BK BVT / 4 to be multiples of the work-group size. PF_LOAD and this
 * kernel's other global loads and stores keep vload4 / vstore4 (four scalar
 * accesses each on NVIDIA) rather than GDN_LD4G / GDN_ST4G: with the vector
 * accesses it took 1.71-1.74 ms against 1.63 ms on the H200 (B=4, T=4096,
 * H=16, K=V=128), while the other stages gained.
 * Where the 1.63 ms go (probes with parts left out, wrong results, same
 * plan): without the V loop's products 1.11 ms, without q k^T and the two
 * intra-chunk products 1.33, without any product 0.77, and without any
 * product nor the V loop's loads 0.39. Products alone would take about
 * 0.86 ms and the memory traffic (about 1.6 GB) about 0.42 at the copy
 * bandwidth: they barely overlap with two groups of four warps per compute
 * unit (255 registers; 167 with no products at all, for the epilogue's ds,
 * dq, dk, q k^T and q, k registers). Leaving out ds's product (computed
 * once per K tile) saves 0.13 ms only. Forms tried instead of this one:
 * the next V tile copied by cp.async into a raw row-major slot and
 * transposed from there (no registers held): 1.69 ms; every operand
 * row-major with the V tiles copied two ahead into three slots and products
 * of rows against rows (GDN_TILE_DOT4_STEP; 255 registers and spills): 2.0
 * ms at BVT=8, 8 x 16 work-items, 2.09-2.28 with 16 x 8 and 16 x 16; one
 * work-group per chunk over all of K (two grids of 8 x 16, one per K tile
 * of 64, so ds and the do, v_new, dv2 loads happen once per chunk; q k^T
 * over all of K in ds's layout, the intra-chunk products in passes of 16
 * chunk rows): 1.72 ms at 235 registers, 1.645 with the epilogue's q and k
 * loads a stage ahead (253 registers, one work-group of eight warps per
 * compute unit), 1.95 with the first of those loads in the V loop (228
 * bytes of spills), against 1.63 for this form. */
#    define NPA (CH * (BVT / 4) / WG)
#    define NPH (BK * (BVT / 4) / WG)
#    if (CH * (BVT / 4)) % WG != 0 || (BK * (BVT / 4)) % WG != 0
#        error "dqkwg_bwd.cl: VEC=2 needs 16 BVT and BK BVT / 4 multiples of TY TX"
#    endif
#    define PF_LOAD(v0_)                                                                           \
        do {                                                                                       \
            for (int p_ = 0; p_ < NPA; p_++) {                                                     \
                const int idx_ = tid + p_ * WG, r_ = GDN_TILE_T_ROW(idx_, BVT);                    \
                const int c_   = GDN_TILE_T_COL(idx_, BVT);                                        \
                pa[0][p_] = pa[1][p_] = pa[2][p_] = (float4)(0.0f);                                \
                if (r_ < L) {                                                                      \
                    const ulong o_ = v_base + (v0_) + (ulong)r_ * HV * V_DIM + c_;                 \
                    pa[0][p_]      = vload4(0, do_ + o_);                                          \
                    pa[1][p_]      = vload4(0, vnew + o_);                                         \
                    pa[2][p_]      = vload4(0, dv2 + o_);                                          \
                }                                                                                  \
            }                                                                                      \
            for (int p_ = 0; p_ < NPH; p_++) {                                                     \
                const int idx_ = tid + p_ * WG, r_ = GDN_TILE_T_ROW(idx_, BVT);                    \
                const int c_   = GDN_TILE_T_COL(idx_, BVT);                                        \
                const ulong o_   = st_base + (v0_) + (ulong)r_ * V_DIM + c_;                       \
                ph[0][p_]        = vload4(0, h + o_);                                              \
                ph[1][p_]        = vload4(0, dh + o_);                                             \
            }                                                                                      \
        } while (0)
#    define PF_STORE()                                                                             \
        do {                                                                                       \
            for (int p_ = 0; p_ < NPA; p_++) {                                                     \
                const int idx_ = tid + p_ * WG, r_ = GDN_TILE_T_ROW(idx_, BVT);                    \
                const int c_   = GDN_TILE_T_COL(idx_, BVT);                                        \
                GDN_TILE_STORE_T4(sDO, LDA, r_, c_, pa[0][p_]);                                    \
                GDN_TILE_STORE_T4(sVN, LDA, r_, c_, pa[1][p_]);                                    \
                GDN_TILE_STORE_T4(sDV, LDA, r_, c_, pa[2][p_]);                                    \
            }                                                                                      \
            for (int p_ = 0; p_ < NPH; p_++) {                                                     \
                const int idx_ = tid + p_ * WG, r_ = GDN_TILE_T_ROW(idx_, BVT);                    \
                const int c_   = GDN_TILE_T_COL(idx_, BVT);                                        \
                GDN_TILE_STORE_T4(sHt, LDB, r_, c_, ph[0][p_]);                                    \
                GDN_TILE_STORE_T4(sDH, LDB, r_, c_, ph[1][p_]);                                    \
                dgl += dot(ph[0][p_], ph[1][p_]);                                                  \
            }                                                                                      \
        } while (0)
#endif

__kernel __attribute__((reqd_work_group_size(WG, 1, 1))) void
gated_delta_dqkwg_v(DQKWG_PARAMS)
{
    __local float4 sX4[(VSZ + 3) / 4]; /* float4: aligned for the float4 reads */
    __local float  sG[CH];
    __local float *sX = (__local float *)sX4;

    DQKWG_INDICES();
    const ulong qk_base = ((ulong)t0 * H + hk) * K_DIM + k0; /* row stride H K_DIM */
    const ulong v_base  = ((ulong)t0 * HV + hv) * V_DIM;     /* row stride HV V_DIM */
    const ulong o_base  = ((ulong)t0 * HV + hv) * K_DIM + k0; /* dq, dk, dw: row stride HV K_DIM */

    for (int r = tid; r < CH; r += WG) /* WG may be below 64 */
        sG[r] = r < L ? G[(ulong)(t0 + r) * HV + hv] : 0.0f;

    /* The V loop: ds, dq, dk, dw and <h, dh>. */
    float ds[TM][TNC], dq[TM][TNK], dk[TM][TNK];
    float dgl = 0.0f;
    GDN_TILE_ZERO(ds, TM, TNC);
    GDN_TILE_ZERO(dq, TM, TNK);
    GDN_TILE_ZERO(dk, TM, TNK);
    {
        float          dwa[TM][TNK];
        __local float *sDO = sX, *sVN = sX + BVT * LDA, *sDV = sX + 2 * BVT * LDA;
        __local float *sHt = sX + 3 * BVT * LDA, *sDH = sHt + BVT * LDB;
        GDN_TILE_ZERO(dwa, TM, TNK);
#if VEC == 2
        /* The next V tile is loaded into registers while this one computes. */
        float4 pa[3][NPA], ph[2][NPH];
        PF_LOAD(0);
#endif
        for (int v0 = 0; v0 < V_DIM; v0 += BVT) {
            barrier(CLK_LOCAL_MEM_FENCE);
#if VEC == 2
            PF_STORE();
            barrier(CLK_LOCAL_MEM_FENCE);
            if (v0 + BVT < V_DIM)
                PF_LOAD(v0 + BVT);
#else
            GDN_TILE_STAGE_T(sDO, LDA, do_ + v_base + v0, (ulong)HV * V_DIM, CH, BVT, L, tid, WG);
            GDN_TILE_STAGE_T(sVN, LDA, vnew + v_base + v0, (ulong)HV * V_DIM, CH, BVT, L, tid, WG);
            GDN_TILE_STAGE_T(sDV, LDA, dv2 + v_base + v0, (ulong)HV * V_DIM, CH, BVT, L, tid, WG);
            GDN_TILE_STAGE_T(sHt, LDB, h + st_base + v0, (ulong)V_DIM, BK, BVT, BK, tid, WG);
            GDN_TILE_STAGE_T(sDH, LDB, dh + st_base + v0, (ulong)V_DIM, BK, BVT, BK, tid, WG);
            barrier(CLK_LOCAL_MEM_FENCE);
            for (int idx = tid; idx < BK * BVT; idx += WG) {
                const int o = (idx / BK) * LDB + idx % BK;
                dgl         = fma(sHt[o], sDH[o], dgl);
            }
#endif
            /* the four products in one loop over v: do, v_new and h are
             * read once per v for the two products each takes part in */
            GDN_TILE_K_UNROLL
            for (int kv = 0; kv < BVT; kv++) {
                GDN_TILE_MMA4_STEP(ds, TM, TNC, sDO, LDA, 4 * ty, 4 * TY, sVN, LDA, 4 * tx, 4 * TX,
                                   kv);
                GDN_TILE_MMA4_STEP(dq, TM, TNK, sDO, LDA, 4 * ty, 4 * TY, sHt, LDB, 4 * tx, 4 * TX,
                                   kv);
                GDN_TILE_MMA4_STEP(dk, TM, TNK, sVN, LDA, 4 * ty, 4 * TY, sDH, LDB, 4 * tx, 4 * TX,
                                   kv);
                GDN_TILE_MMA4_STEP(dwa, TM, TNK, sDV, LDA, 4 * ty, 4 * TY, sHt, LDB, 4 * tx,
                                   4 * TX, kv);
            }
        }
        /* dw is final */
        for (int a = 0; a < TM; a++)
            if (RV(a) < L)
                for (int b = 0; b < TNK; b += 4)
                    vstore4(-(float4)(dwa[a][b], dwa[a][b + 1], dwa[a][b + 2], dwa[a][b + 3]), 0,
                            dw + o_base + (ulong)RV(a) * HV * K_DIM + CC(b));
    }

    /* q and k of this K tile into registers, once (one exposed global
     * latency): the three products below stage them from there. */
    float4 qr[NQK], kr[NQK];
    for (int p = 0; p < NQK; p++) {
        const int e = tid + p * WG, r = GDN_TILE_T_ROW(e, BK), c4 = GDN_TILE_T_COL(e, BK);
        qr[p] = kr[p] = (float4)(0.0f);
        if (e < CH * BK / 4 && r < L) {
            qr[p] = vload4(0, q + qk_base + (ulong)r * H * K_DIM + c4);
            kr[p] = vload4(0, k + qk_base + (ulong)r * H * K_DIM + c4);
        }
    }

    /* q k^T of this K tile (q and k staged K-major). */
    float qk[TM][TNC];
    GDN_TILE_ZERO(qk, TM, TNC);
    __local float *sQt = sX, *sKt = sX + BK * LDA;
    barrier(CLK_LOCAL_MEM_FENCE); /* the V loop's tiles are dead */
    for (int p = 0; p < NQK; p++) {
        const int e = tid + p * WG, r = GDN_TILE_T_ROW(e, BK), c4 = GDN_TILE_T_COL(e, BK);
        if (e < CH * BK / 4) {
            GDN_TILE_STORE_T4(sQt, LDA, r, c4, qr[p]);
            GDN_TILE_STORE_T4(sKt, LDA, r, c4, kr[p]);
        }
    }
    barrier(CLK_LOCAL_MEM_FENCE);
    GDN_TILE_MMA4(qk, TM, TNC, sQt, LDA, 4 * ty, 4 * TY, sKt, LDA, 4 * tx, 4 * TX, BK);

    /* Inter-chunk parts and the gate terms that do not cancel. */
    DQKWG_GATES();

    /* Intra-chunk products: dq += ds k (ds transposed, k row-major), then
     * dk += ds^T q (ds and q row-major). */
    __local float *sA = sX, *sB = sX + CH * LDA;
    for (int pass = 0; pass < 2; pass++) {
        barrier(CLK_LOCAL_MEM_FENCE); /* the previous tiles are dead */
        for (int a = 0; a < TM; a++)
            for (int b = 0; b < TNC; b++) {
                if (pass)
                    sA[RV(a) * LDA + CC(b)] = ds[a][b];
                else
                    sA[CC(b) * LDA + RV(a)] = ds[a][b];
            }
        for (int p = 0; p < NQK; p++) {
            const int e = tid + p * WG, r = GDN_TILE_T_ROW(e, BK), c4 = GDN_TILE_T_COL(e, BK);
            if (e < CH * BK / 4)
                *(__local float4 *)(sB + r * LDB + c4) = pass ? qr[p] : kr[p];
        }
        barrier(CLK_LOCAL_MEM_FENCE);
        if (pass)
            GDN_TILE_MMA4(dk, TM, TNK, sA, LDA, 4 * ty, 4 * TY, sB, LDB, 4 * tx, 4 * TX, CH);
        else
            GDN_TILE_MMA4(dq, TM, TNK, sA, LDA, 4 * ty, 4 * TY, sB, LDB, 4 * tx, 4 * TX, CH);
    }

    DQKWG_STORE_DG(); /* sA and sB are dead */
    for (int a = 0; a < TM; a++)
        if (RV(a) < L)
            for (int b = 0; b < TNK; b += 4) {
                const ulong off = o_base + (ulong)RV(a) * HV * K_DIM + CC(b);
                vstore4((float4)(dq[a][b], dq[a][b + 1], dq[a][b + 2], dq[a][b + 3]), 0, dqh + off);
                vstore4((float4)(dk[a][b], dk[a][b + 1], dk[a][b + 2], dk[a][b + 3]), 0, dkh + off);
            }
}
#endif /* VEC */


#if VEC == 3
/*
 * VEC=3: gated_delta_dqkwg_v with every product on GDN_TC's warp tiles
 * (cl/include/gdn_tile.clh: 3xTF32 mma.sync on NVIDIA's tensor cores with
 * GDN_TC=1, its plain twin elsewhere). 16 x 16 work-items = eight SIMD
 * groups of 32; group wp owns rows r0 = 16 (wp % 4) ... r0 + 15 and the
 * column half hh = wp / 4 (columns 32 hh ... of ds, q k^T and of the K
 * tile of dq, dk, dw): four 8-column tiles of each, of which ds and q k^T
 * form only those its rows need (as out_fwd's VEC=3). q k^T first, from q
 * and k tiles staged in local memory. The V loop copies do, v_new, dv2 and
 * h, dh (64 x 8 each, rows padded to 12) two tiles ahead into three slots
 * (GDN_CP16, one barrier per tile); per tile the group forms ds += do
 * v_new^T, dq += do h^T, dw += dv2 h^T (one B fragment of h^T for both)
 * and dk += v_new dh^T. The accumulators then take the scalar kernel's
 * layout for DQKWG_GATES (row RV(a) = r0 + g + 8 a, column CC(b) = 32 hh +
 * 8 (b / 2) + 2 t + b % 2 of lane (g, t)); ds goes to local memory for
 * dq += ds k (rows of ds up to the group's last row) and dk += ds^T q
 * (rows of ds from the group's first row; GDN_TC_LOAD_AT). Operand rows
 * past L repeat row L - 1 (finite; they reach only rows never stored and
 * entries the mask zeroes, and the gates scale those rows of dq and dk to
 * 0). Needs TY = TX = 16, BK = 64, BVT = 8. Local memory: max(3 * 5 * 64 *
 * 12, 2 * 64 * 68, 64 * 40 + 256) + 64 floats (45 KiB).
 */
#if TY != 16 || TX != 16 || BK != 64 || BVT != 8
#    error "dqkwg_bwd.cl: VEC=3 needs 16 x 16 work-items, BK = 64 and BVT = 8"
#endif
#define LDT3  (BVT + 4) /* row stride of the V loop's tiles */
#define TILE3 (CH * LDT3)
#define SLOT3 (5 * TILE3) /* do, v_new, dv2, h, dh */
#define LDQ3  (BK + 4)    /* row stride of the q, k and ds tiles */
#define DSZ3  MAX2(3 * SLOT3, MAX2(2 * CH * LDQ3, CH * 40 + WG))
#undef TM
#undef TNC
#undef TNK
#define TM  2 /* the accumulators' rows and columns per work-item, as DQKWG_GATES reads them */
#define TNC 8
#define TNK 8

__kernel __attribute__((reqd_work_group_size(WG, 1, 1))) void
gated_delta_dqkwg_v(DQKWG_PARAMS)
{
    __local float4 sX4[(DSZ3 + 3) / 4];
    __local float  sG[CH];
    __local float *sX = (__local float *)sX4;
    DQKWG_INDICES();
    const int wp = tid >> 5, rb = wp & 3, r0 = 16 * rb, hh = wp >> 2;
    const int nc = min(2 * rb + 2, (L + 7) / 8); /* 8-column tiles of ds the rows need */
    float     qkT[4][4], dsT[4][4], dqT[4][4], dkT[4][4], dwT[4][4];
    float     af[GDN_TC_AN], af2[GDN_TC_AN], bf[GDN_TC_BN];
    float     dgl = 0.0f;
    (void)tx, (void)ty;

    for (int r = tid; r < CH; r += WG)
        sG[r] = r < L ? G[(ulong)(t0 + r) * HV + hv] : 0.0f;
    GDN_TILE_ZERO(qkT, 4, 4);
    GDN_TILE_ZERO(dsT, 4, 4);
    GDN_TILE_ZERO(dqT, 4, 4);
    GDN_TILE_ZERO(dkT, 4, 4);
    GDN_TILE_ZERO(dwT, 4, 4);

/* Rows (clamped to L - 1) of the chunk's q or k tile of this K tile into dst
 * (64 x LDQ3). */
#define DQ3_STAGE_QK(dst, src)                                                                     \
    do {                                                                                           \
        for (int e_ = tid; e_ < CH * (BK / 4); e_ += WG) {                                         \
            const int   r_ = e_ / (BK / 4), c_ = 4 * (e_ - r_ * (BK / 4));                         \
            const ulong o_ = ((ulong)(t0 + min(r_, L - 1)) * H + hk) * K_DIM + k0 + c_;            \
            GDN_ST4L(GDN_LD4G((src) + o_), (dst) + r_ * LDQ3 + c_);                                \
        }                                                                                          \
    } while (0)

    /* q k^T of this K tile */
    {
        __local float *sQ = sX, *sK = sX + CH * LDQ3;
        DQ3_STAGE_QK(sQ, q);
        DQ3_STAGE_QK(sK, k);
        barrier(CLK_LOCAL_MEM_FENCE);
GDN_TC_UNROLL
        for (int kk = 0; kk < BK; kk += 8) {
            GDN_TC_LOAD_A(af, sQ, LDQ3, r0, kk);
GDN_TC_UNROLL
            for (int jt = 0; jt < 4; jt++)
                if (4 * hh + jt < nc) {
                    GDN_TC_LOAD_BT(bf, sK, LDQ3, kk, 8 * (4 * hh + jt));
                    GDN_TC_MMA(qkT[jt], af, bf);
                }
        }
        barrier(CLK_LOCAL_MEM_FENCE); /* the slots below reuse sQ, sK */
    }

/* V tile vt (columns vt BVT ...) of do, v_new, dv2 (rows clamped to L - 1)
 * and of h, dh (this K tile's rows) into slot b. */
#define DQ3_COPY(vt, b)                                                                            \
    do {                                                                                           \
        __local float *d_  = sX + (b) * SLOT3;                                                     \
        const int      v0_ = (vt) * BVT;                                                           \
        for (int e_ = tid; e_ < CH * (BVT / 4); e_ += WG) {                                        \
            const int   r_ = e_ / (BVT / 4), c_ = 4 * (e_ - r_ * (BVT / 4));                       \
            const ulong o_ = ((ulong)(t0 + min(r_, L - 1)) * HV + hv) * V_DIM + v0_ + c_;          \
            const ulong s_ = st_base + (ulong)r_ * V_DIM + v0_ + c_;                               \
            GDN_CP16(d_ + r_ * LDT3 + c_, do_ + o_);                                               \
            GDN_CP16(d_ + TILE3 + r_ * LDT3 + c_, vnew + o_);                                      \
            GDN_CP16(d_ + 2 * TILE3 + r_ * LDT3 + c_, dv2 + o_);                                   \
            GDN_CP16(d_ + 3 * TILE3 + r_ * LDT3 + c_, h + s_);                                     \
            GDN_CP16(d_ + 4 * TILE3 + r_ * LDT3 + c_, dh + s_);                                    \
        }                                                                                          \
    } while (0)

    {
        int cur = 0; /* the slot of the tile multiplied next */
        DQ3_COPY(0, 0);
        GDN_CP_COMMIT();
        if (V_DIM / BVT > 1)
            DQ3_COPY(1, 1);
        GDN_CP_COMMIT();
        for (int vt = 0; vt < V_DIM / BVT; vt++) {
            __local const float *S_ = sX + cur * SLOT3;
            GDN_CP_WAIT1();
            barrier(CLK_LOCAL_MEM_FENCE); /* tile vt is in; tile vt - 1's readers are done */
            if (vt + 2 < V_DIM / BVT)
                DQ3_COPY(vt + 2, GDN_SLOT3_AHEAD(cur));
            GDN_CP_COMMIT();
            /* ds += do v_new^T; dq += do h^T; dw += dv2 h^T */
            GDN_TC_LOAD_A(af, S_, LDT3, r0, 0);
            GDN_TC_LOAD_A(af2, S_ + 2 * TILE3, LDT3, r0, 0);
GDN_TC_UNROLL
            for (int jt = 0; jt < 4; jt++)
                if (4 * hh + jt < nc) {
                    GDN_TC_LOAD_BT(bf, S_ + TILE3, LDT3, 0, 8 * (4 * hh + jt));
                    GDN_TC_MMA(dsT[jt], af, bf);
                }
GDN_TC_UNROLL
            for (int jt = 0; jt < 4; jt++) {
                GDN_TC_LOAD_BT(bf, S_ + 3 * TILE3, LDT3, 0, 32 * hh + 8 * jt);
                GDN_TC_MMA(dqT[jt], af, bf);
                GDN_TC_MMA(dwT[jt], af2, bf);
            }
            /* dk += v_new dh^T */
            GDN_TC_LOAD_A(af, S_ + TILE3, LDT3, r0, 0);
GDN_TC_UNROLL
            for (int jt = 0; jt < 4; jt++) {
                GDN_TC_LOAD_BT(bf, S_ + 4 * TILE3, LDT3, 0, 32 * hh + 8 * jt);
                GDN_TC_MMA(dkT[jt], af, bf);
            }
            /* <h, dh> over this tile */
            for (int e = tid; e < BK * BVT; e += WG) {
                const int r = e / BVT, cc = e - r * BVT;
                const int o = r * LDT3 + cc;
                dgl         = fma(S_[3 * TILE3 + o], S_[4 * TILE3 + o], dgl);
            }
            GDN_SLOT3_NEXT(cur);
        }
    }
#undef DQ3_COPY

    /* The scalar kernel's layout: element (a, b) is tile b / 2's element
     * 2 a + b % 2. */
#define RV(a)    (r0 + GDN_TC_ROW(2 * (a)))
#define CC(b)    (32 * hh + 8 * ((b) >> 1) + GDN_TC_COL(b))
#define QV(a, b) qreg[a][b]
#define KV(a, b) kreg[a][b]
    float ds[2][8], dq[2][8], dk[2][8], qk[2][8], qreg[2][8], kreg[2][8];
    for (int a = 0; a < 2; a++)
        for (int b = 0; b < 8; b++) {
            const int   e = 2 * a + (b & 1);
            const ulong o = ((ulong)(t0 + min(RV(a), L - 1)) * H + hk) * K_DIM + k0 + CC(b);
            ds[a][b]      = dsT[b >> 1][e];
            dq[a][b]      = dqT[b >> 1][e];
            dk[a][b]      = dkT[b >> 1][e];
            qk[a][b]      = qkT[b >> 1][e];
            qreg[a][b]    = q[o];
            kreg[a][b]    = k[o];
        }
    DQKWG_GATES();
    for (int a = 0; a < 2; a++)
        for (int b = 0; b < 8; b++) {
            dqT[b >> 1][2 * a + (b & 1)] = dq[a][b];
            dkT[b >> 1][2 * a + (b & 1)] = dk[a][b];
        }

    /* Intra-chunk products: dq += ds k, dk += ds^T q. */
    {
        __local float *SR = sX, *sT = sX + CH * LDQ3;
        barrier(CLK_LOCAL_MEM_FENCE); /* the V loop's slots are dead */
        for (int a = 0; a < 2; a++)
            for (int b = 0; b < 8; b++)
                SR[RV(a) * LDQ3 + CC(b)] = ds[a][b];
        DQ3_STAGE_QK(sT, k);
        barrier(CLK_LOCAL_MEM_FENCE);
GDN_TC_UNROLL
        for (int jj = 0; jj < 8; jj++)
            if (jj < nc) { /* ds_ij = 0 for j past row r0 + 15 or past L */
                GDN_TC_LOAD_A(af, SR, LDQ3, r0, 8 * jj);
GDN_TC_UNROLL
                for (int jt = 0; jt < 4; jt++) {
                    GDN_TC_LOAD_B(bf, sT, LDQ3, 8 * jj, 32 * hh + 8 * jt);
                    GDN_TC_MMA(dqT[jt], af, bf);
                }
            }
        barrier(CLK_LOCAL_MEM_FENCE);
        DQ3_STAGE_QK(sT, q);
        barrier(CLK_LOCAL_MEM_FENCE);
GDN_TC_UNROLL
        for (int jj = 0; jj < 8; jj++)
            if (jj >= 2 * rb && jj < (L + 7) / 8) { /* ds_ij = 0 for i before row r0 or past L */
                GDN_TC_LOAD_AT(af, SR, LDQ3, r0, 8 * jj);
GDN_TC_UNROLL
                for (int jt = 0; jt < 4; jt++) {
                    GDN_TC_LOAD_B(bf, sT, LDQ3, 8 * jj, 32 * hh + 8 * jt);
                    GDN_TC_MMA(dkT[jt], af, bf);
                }
            }
    }
#undef DQ3_STAGE_QK

    /* dG: row sums over the 8 lanes of a row (column half, t), column sums
     * over the 32 of a column (row block, g), dgl over all, in a fixed order
     * (deterministic). */
    {
        __local float *rrow = sX, *rcol = sX + CH * 8, *sdgl = sX + CH * 40;
        const int      g = GDN_TC_LANE() >> 2, t = GDN_TC_LANE() & 3;
        barrier(CLK_LOCAL_MEM_FENCE); /* SR and sT are dead */
        for (int a = 0; a < 2; a++)
            rrow[RV(a) * 8 + 4 * hh + t] = rowp[a];
        for (int b = 0; b < 8; b++)
            rcol[CC(b) * 32 + 8 * rb + g] = colp[b];
        sdgl[tid] = dgl;
        barrier(CLK_LOCAL_MEM_FENCE);
        for (int r = tid; r < L; r += WG) {
            float sum = 0.0f;
            for (int x = 0; x < 8; x++)
                sum += rrow[r * 8 + x];
            for (int y = 0; y < 32; y++)
                sum -= rcol[r * 32 + y];
            if (r == L - 1)
                for (int x = 0; x < WG; x++)
                    sum += sdgl[x];
            dGp[((ulong)ik * T + t0 + r) * HV + hv] = sum;
        }
    }
    for (int jt = 0; jt < 4; jt++)
        for (int e = 0; e < 4; e++) {
            const int i = r0 + GDN_TC_ROW(e);
            if (i < L) {
                const ulong o = ((ulong)(t0 + i) * HV + hv) * K_DIM + k0 + 32 * hh + 8 * jt +
                                GDN_TC_COL(e);
                dqh[o] = dqT[jt][e];
                dkh[o] = dkT[jt][e];
                dw[o]  = -dwT[jt][e];
            }
        }
}
#undef RV
#undef CC
#undef QV
#undef KV
#endif /* VEC == 3 */
