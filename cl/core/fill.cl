/*
 * core/fill.cl - x[i] = value for i < n (the library's zeroing and the
 * tests' poisoning of outputs).
 *
 * Shapes: x [n] f32, n = n_hi * 2^31 + n_lo (so n may exceed INT_MAX).
 * Work: a grid-stride loop; any global size works.
 * Tuning parameters (lib/runtime/launch.c):
 *   WG_SIZE  work-group size, any value the device allows (default 256)
 */
#include "gdn_common.clh"

#ifndef WG_SIZE
#define WG_SIZE 256
#endif

__kernel __attribute__((reqd_work_group_size(WG_SIZE, 1, 1)))
void gdn_fill_f32(__global float *x, int n_hi, int n_lo, float value)
{
    const ulong n = ((ulong)n_hi << 31) + (ulong)n_lo;
    for (ulong i = get_global_id(0); i < n; i += get_global_size(0))
        x[i] = value;
}
