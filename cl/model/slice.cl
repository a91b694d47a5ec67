/*
 * model/slice.cl - column slices of row-major [rows, ld] activations: the
 * split of Mamba2's in-projection into z, xBC, dt (and of the conv output
 * into x, B, C), and the scatter of their gradients back.
 *
 *   dst[r * dst_ld + dst_col + c] (+)= src[r * src_ld + src_col + c]
 *   for r < rows, c < cols
 *
 * One work-item per element of the slice, a 2-D range (cols, rows) rounded
 * up to the work-group shape by the host; indices are 64-bit. No tuning
 * macros: the work-group shape (LX x LY) is a host-side launch parameter,
 * tuning space "model/slice" in lib/model/util.c (a copy: any shape gives
 * the same bits).
 */
__kernel void slice_cols(__global const float *src, long src_ld, long src_col,
                         __global float *dst, long dst_ld, long dst_col, int rows, int cols,
                         int accumulate)
{
    const int c = (int)get_global_id(0);
    const int r = (int)get_global_id(1);
    if (c >= cols || r >= rows)
        return;
    {
        const float v = src[(long)r * src_ld + src_col + c];
        __global float *d = dst + (long)r * dst_ld + dst_col + c;
        *d = accumulate ? *d + v : v;
    }
}
