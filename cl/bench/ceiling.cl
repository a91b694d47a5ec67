/*
 * bench/ceiling.cl - microkernels that measure a device's own ceilings for
 * the roofline verdicts of bench/ (not datasheet numbers).
 *
 * gdn_bench_fma: every work-item runs CHAINS independent dependent chains
 *   x = fma(x, x, c) on floatVW values (ITERS times, unrolled by 8), i.e.
 *   2 VW FLOP per vector fma. Explicit vectors keep CPU implementations
 *   (PoCL) on their SIMD units whatever their auto-vectoriser does; a width
 *   below the CPU's SIMD width leaves part of each unit idle (float4 on
 *   AVX-512 measures a quarter of the peak), so the host takes the best of
 *   VW = 4, 8 and 16. GPUs run the lanes as scalar chains. The result is
 *   stored only if it equals a sentinel, so nothing is optimised away and
 *   memory traffic is nil.
 * gdn_bench_lfma: fp32 FMA with both operands read from local memory, the
 *   way the chunk kernels' products run (GDN_TILE_MMA4, cl/include/
 *   gdn_tile.clh): each work-item owns a TM x TN micro-tile of a 64 x NB
 *   product and, per k, reads TM / 4 float4s of A (k-major, 64 rows) and
 *   TN / 4 of B (NB columns) from local memory for TM TN fmas. The local
 *   memory path delivers far fewer operands per cycle than the FMA units
 *   consume, so small micro-tiles are bound by it (TM + TN operands per
 *   TM TN fmas); this ceiling says how far each tile shape can go. Work-
 *   item (tx, ty) owns the rows 4 ty + 4 LY q ... + 3 (q < TM / 4) and the
 *   columns 4 tx + 4 LX q ... + 3 (q < TN / 4), as the stages' float4
 *   forms do (LX = NB / TN work-items along columns, LY = 64 / TM along
 *   rows): consecutive work-items read consecutive float4s, no bank
 *   conflicts. 2 TM TN LK ITERS FLOP per work-item; a barrier every LK k,
 *   as the stages stage slices.
 * gdn_bench_copy: y[i] = x[i] over float4 elements; bytes moved = read +
 *   write. CONTIGUOUS=0: grid-stride (coalesced on GPUs); CONTIGUOUS=1: each
 *   work-item copies one contiguous block (streams well on CPUs).
 *
 * Optional kernels, compiled only when their switch is defined non-zero (the
 * default build of this file holds neither half nor asm code). bench_util.c
 * tests for them at run time: it builds the program with the switch on, and
 * a build or launch that fails means "not available on this device" (a
 * ceiling of 0), not an error.
 * gdn_bench_fma_half (GDN_CEIL_HALF=1): as gdn_bench_fma on half8 values
 *   with x = x * x + c (contracted to fma where the compiler does; plain
 *   arithmetic, since some drivers that build half arithmetic lack the half
 *   math builtins), i.e. 16 FLOP per half8 step. Needs cl_khr_fp16 or a
 *   driver that accepts its pragma without advertising it (NVIDIA's).
 * gdn_bench_mma (GDN_CEIL_MMA=1): tensor cores through inline PTX mma.sync
 *   (NVIDIA, compute capability >= 8.0 only; the host never builds it
 *   elsewhere). Each warp of 32 work-items keeps CHAINS independent 16x8
 *   f32 accumulator tiles (4 registers per work-item each) and issues ITERS
 *   mma.sync per tile, operands from registers only (derived from the
 *   global id and the seed argument, so nothing is constant-folded).
 *   MMA_TYPE selects the instruction and its FLOP per warp-level issue:
 *     0  m16n8k8.row.col.f32.tf32.tf32.f32   2*16*8*8  = 2048
 *     1  m16n8k16.row.col.f32.bf16.bf16.f32  2*16*8*16 = 4096
 *     2  m16n8k16.row.col.f32.f16.f16.f32    2*16*8*16 = 4096
 *   FLOP per launch = (global size / 32) * ITERS * CHAINS * that
 *   (bench_util.c: CHAINS=4, one build per MMA_TYPE so that one type that
 *   fails leaves the others).
 * Tuning parameters (bench/bench_util.c):
 *   WG_SIZE  work-group size (default 256; a multiple of 32 for the mma)
 *   CHAINS   independent chains (tiles) per work-item (warp) (default 8)
 *   ITERS    fma (mma) per chain, multiple of 8 (default 1024)
 *   CONTIGUOUS  0 or 1, see above (default 0)
 *   VW       vector width of gdn_bench_fma: 4, 8 or 16 (default 4)
 *   MMA_TYPE 0, 1 or 2, see above (default 1)
 *   TM, TN   gdn_bench_lfma's micro-tile: multiples of 4, TM dividing 64
 *            (default 4 x 4); LK its k per barrier (default 32)
 */
#ifndef WG_SIZE
#define WG_SIZE 256
#endif
#ifndef CHAINS
#define CHAINS 8
#endif
#ifndef ITERS
#define ITERS 1024
#endif
#ifndef CONTIGUOUS
#define CONTIGUOUS 0
#endif
#ifndef VW
#define VW 4
#endif
#define GDN_CAT_(a, b) a##b
#define GDN_CAT(a, b)  GDN_CAT_(a, b)
#define FVEC           GDN_CAT(float, VW)

__kernel __attribute__((reqd_work_group_size(WG_SIZE, 1, 1)))
void gdn_bench_fma(__global float *out, float seed)
{
    FVEC        x[CHAINS];
    const FVEC  c = (FVEC)(-0.5f);
    float       lanes[VW];
    for (int j = 0; j < CHAINS; j++) { /* distinct lanes: no splat to scalarise */
        for (int l = 0; l < VW; l++)
            lanes[l] = seed + 1e-3f * (float)(get_global_id(0) % 97) + 1e-4f * (float)j +
                       1e-5f * (float)l;
        x[j] = GDN_CAT(vload, VW)(0, lanes);
    }
    for (int i = 0; i < ITERS; i += 8) {
#pragma unroll
        for (int u = 0; u < 8; u++) {
#pragma unroll
            for (int j = 0; j < CHAINS; j++)
                x[j] = fma(x[j], x[j], c);
        }
    }
    float s = 0.0f;
    for (int j = 0; j < CHAINS; j++) {
        GDN_CAT(vstore, VW)(x[j], 0, lanes);
        for (int l = 0; l < VW; l++)
            s += lanes[l];
    }
    if (s == 1234.5678f)
        out[get_global_id(0)] = s;
}

#ifndef TM
#define TM 4
#endif
#ifndef TN
#define TN 4
#endif
#ifndef LK
#define LK 32
#endif
#define LF_LY (64 / TM)       /* work-items along rows */
#define LF_LX (WG_SIZE / LF_LY) /* work-items along columns */
#define LF_NB (LF_LX * TN)    /* columns of B */

__kernel __attribute__((reqd_work_group_size(WG_SIZE, 1, 1)))
void gdn_bench_lfma(__global float *out, float seed)
{
    __local float4 A4[LK * 64 / 4], B4[LK * LF_NB / 4]; /* float4: aligned reads */
    __local float *A = (__local float *)A4, *B = (__local float *)B4;
    const int      lid = (int)get_local_id(0), tx = lid % LF_LX, ty = lid / LF_LX;
    float          acc[TM][TN];

    for (int e = lid; e < LK * 64; e += WG_SIZE)
        A[e] = seed + 1e-3f * (float)(e % 97);
    for (int e = lid; e < LK * LF_NB; e += WG_SIZE)
        B[e] = seed - 1e-3f * (float)(e % 89);
    for (int i = 0; i < TM; i++)
        for (int j = 0; j < TN; j++)
            acc[i][j] = 0.0f;
    for (int it = 0; it < ITERS; it++) {
        barrier(CLK_LOCAL_MEM_FENCE);
#pragma unroll 8
        for (int k = 0; k < LK; k++) {
            float a[TM], b[TN];
            for (int q = 0; q < TM / 4; q++) {
                const float4 t = *(__local const float4 *)(A + k * 64 + 4 * ty + 4 * LF_LY * q);
                a[4 * q] = t.x, a[4 * q + 1] = t.y, a[4 * q + 2] = t.z, a[4 * q + 3] = t.w;
            }
            for (int q = 0; q < TN / 4; q++) {
                const float4 t = *(__local const float4 *)(B + k * LF_NB + 4 * tx + 4 * LF_LX * q);
                b[4 * q] = t.x, b[4 * q + 1] = t.y, b[4 * q + 2] = t.z, b[4 * q + 3] = t.w;
            }
            for (int i = 0; i < TM; i++)
                for (int j = 0; j < TN; j++)
                    acc[i][j] = fma(a[i], b[j], acc[i][j]);
        }
    }
    float s = 0.0f;
    for (int i = 0; i < TM; i++)
        for (int j = 0; j < TN; j++)
            s += acc[i][j];
    if (s == 1234.5678f)
        out[get_global_id(0)] = s;
}

__kernel __attribute__((reqd_work_group_size(WG_SIZE, 1, 1)))
void gdn_bench_copy(__global const float4 *x, __global float4 *y, int n4)
{
#if CONTIGUOUS
    const int per = (n4 + (int)get_global_size(0) - 1) / (int)get_global_size(0);
    const int lo = (int)get_global_id(0) * per, hi = min(n4, lo + per);
    for (int i = lo; i < hi; i++)
        y[i] = x[i];
#else
    for (int i = get_global_id(0); i < n4; i += get_global_size(0))
        y[i] = x[i];
#endif
}

#if defined(GDN_CEIL_HALF) && GDN_CEIL_HALF
#pragma OPENCL EXTENSION cl_khr_fp16 : enable
#pragma OPENCL FP_CONTRACT ON

/* Half conversions are casts, not builtins (see the file-top comment). */
__kernel __attribute__((reqd_work_group_size(WG_SIZE, 1, 1)))
void gdn_bench_fma_half(__global float *out, float seed)
{
    half8 x[CHAINS];
    const half8 c = (half8)((half)-0.5f);
    const half8 step = (half8)((half)0.0f, (half)1e-3f, (half)2e-3f, (half)3e-3f, (half)4e-3f,
                               (half)5e-3f, (half)6e-3f, (half)7e-3f);
    for (int j = 0; j < CHAINS; j++)
        x[j] = (half8)((half)(seed + 1e-3f * (float)(get_global_id(0) % 97) +
                              1e-2f * (float)j)) +
               step;
    for (int i = 0; i < ITERS; i += 8) {
#pragma unroll
        for (int u = 0; u < 8; u++) {
#pragma unroll
            for (int j = 0; j < CHAINS; j++)
                x[j] = x[j] * x[j] + c;
        }
    }
    float s = 0.0f;
    for (int j = 0; j < CHAINS; j++)
        s += (float)x[j].s0 + (float)x[j].s1 + (float)x[j].s2 + (float)x[j].s3 +
             (float)x[j].s4 + (float)x[j].s5 + (float)x[j].s6 + (float)x[j].s7;
    if (s == 1234.5678f)
        out[get_global_id(0)] = s;
}
#endif /* GDN_CEIL_HALF */

#if defined(GDN_CEIL_MMA) && GDN_CEIL_MMA
#ifndef MMA_TYPE
#define MMA_TYPE 1
#endif
/* Operand bits from r in [0, 96): values of about 0.008 to 0.014 in every type
 * (exponent 2^-7, r in the mantissa), so the accumulators stay finite. A
 * register holds one tf32 value (fp32 bits, low 13 ignored) or two 16-bit
 * values. */
#if MMA_TYPE == 0
#define MMA_INSN "mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 "
#define MMA_OPERAND(r) (0x3C000000u + ((uint)(r) << 13))
#elif MMA_TYPE == 1
#define MMA_INSN "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 "
#define MMA_OPERAND(r) ((0x3C00u + (uint)(r)) * 0x10001u)
#elif MMA_TYPE == 2
#define MMA_INSN "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 "
#define MMA_OPERAND(r) ((0x2000u + ((uint)(r) << 3)) * 0x10001u)
#else
#error "MMA_TYPE must be 0 (tf32), 1 (bf16) or 2 (f16)"
#endif

/* D = A B + D on one accumulator tile (d0..d3), as in
 * shared/device/examples/mma_tf32_probe.c. */
#define MMA_STEP(d0, d1, d2, d3)                                                              \
    asm volatile(MMA_INSN "{%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};"           \
                 : "+f"(d0), "+f"(d1), "+f"(d2), "+f"(d3)                                    \
                 : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1))

__kernel __attribute__((reqd_work_group_size(WG_SIZE, 1, 1)))
void gdn_bench_mma(__global float *out, int seed)
{
    const uint r = (uint)(get_global_id(0) + (uint)seed) % 89u;
    const uint a0 = MMA_OPERAND(r), a1 = MMA_OPERAND(r + 1u), a2 = MMA_OPERAND(r + 2u),
               a3 = MMA_OPERAND(r + 3u), b0 = MMA_OPERAND(r + 5u), b1 = MMA_OPERAND(r + 7u);
    float d[CHAINS][4];
#pragma unroll
    for (int j = 0; j < CHAINS; j++)
        d[j][0] = d[j][1] = d[j][2] = d[j][3] = 0.0f;
    for (int i = 0; i < ITERS; i += 8) {
#pragma unroll
        for (int u = 0; u < 8; u++) {
#pragma unroll
            for (int j = 0; j < CHAINS; j++)
                MMA_STEP(d[j][0], d[j][1], d[j][2], d[j][3]);
        }
    }
    float s = 0.0f;
#pragma unroll
    for (int j = 0; j < CHAINS; j++)
        s += d[j][0] + d[j][1] + d[j][2] + d[j][3];
    if (s == 1234.5678f)
        out[get_global_id(0)] = s;
}
#endif /* GDN_CEIL_MMA */
