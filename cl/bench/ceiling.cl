/*
 * bench/ceiling.cl - microkernels that measure a device's own ceilings for
 * the roofline verdicts of bench/ (not datasheet numbers).
 *
 * gdn_bench_fma: every work-item runs CHAINS independent dependent chains
 *   x = fma(x, x, c) on float4 values (ITERS times, unrolled by 8), i.e.
 *   8 FLOP per vector fma. Explicit vectors keep CPU implementations (PoCL)
 *   on their SIMD units whatever their auto-vectoriser does; GPUs run them
 *   as four scalar chains. The result is stored only if it equals a
 *   sentinel, so nothing is optimised away and memory traffic is nil.
 * gdn_bench_copy: y[i] = x[i] over float4 elements; bytes moved = read +
 *   write. CONTIGUOUS=0: grid-stride (coalesced on GPUs); CONTIGUOUS=1: each
 *   work-item copies one contiguous block (streams well on CPUs).
 * Tuning parameters (bench/ceilings.c):
 *   WG_SIZE  work-group size (default 256)
 *   CHAINS   independent chains per work-item (default 8)
 *   ITERS    fma per chain, multiple of 8 (default 1024)
 *   CONTIGUOUS  0 or 1, see above (default 0)
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

__kernel __attribute__((reqd_work_group_size(WG_SIZE, 1, 1)))
void gdn_bench_fma(__global float *out, float seed)
{
    float4 x[CHAINS];
    const float4 c = (float4)(-0.5f);
    for (int j = 0; j < CHAINS; j++)
        x[j] = (float4)(seed + 1e-3f * (float)(get_global_id(0) % 97) + 1e-4f * (float)j) +
               (float4)(0.0f, 1e-5f, 2e-5f, 3e-5f);
    for (int i = 0; i < ITERS; i += 8) {
#pragma unroll
        for (int u = 0; u < 8; u++) {
#pragma unroll
            for (int j = 0; j < CHAINS; j++)
                x[j] = fma(x[j], x[j], c);
        }
    }
    float s = 0.0f;
    for (int j = 0; j < CHAINS; j++)
        s += x[j].x + x[j].y + x[j].z + x[j].w;
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
