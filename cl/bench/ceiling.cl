/*
 * bench/ceiling.cl - microkernels that measure a device's own ceilings for
 * the roofline verdicts of bench/ (not datasheet numbers).
 *
 * gdn_bench_fma: every work-item runs CHAINS independent dependent chains
 *   x = fma(x, x, c) (ITERS times, unrolled by 8); 2 FLOP per fma. The
 *   result is stored only if it equals a sentinel, so nothing is optimised
 *   away and memory traffic is nil.
 * gdn_bench_copy: y[i] = x[i] over float4 elements, grid-stride; bytes moved
 *   = read + write.
 * Tuning parameters (bench/ceilings.c):
 *   WG_SIZE  work-group size (default 256)
 *   CHAINS   independent chains per work-item (default 8)
 *   ITERS    fma per chain, multiple of 8 (default 1024)
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

__kernel __attribute__((reqd_work_group_size(WG_SIZE, 1, 1)))
void gdn_bench_fma(__global float *out, float seed)
{
    float x[CHAINS];
    const float c = -0.5f;
    for (int j = 0; j < CHAINS; j++)
        x[j] = seed + 1e-3f * (float)(get_global_id(0) % 97) + 1e-4f * (float)j;
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
        s += x[j];
    if (s == 1234.5678f)
        out[get_global_id(0)] = s;
}

__kernel __attribute__((reqd_work_group_size(WG_SIZE, 1, 1)))
void gdn_bench_copy(__global const float4 *x, __global float4 *y, int n4)
{
    for (int i = get_global_id(0); i < n4; i += get_global_size(0))
        y[i] = x[i];
}
