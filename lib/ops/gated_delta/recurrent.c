/* recurrent.c - placeholder until the recurrent kernels land. */
#include "gated_delta.h"

gdn_status gdn__gd_recurrent_forward(struct gdn_gated_delta_tape *tp, cl_mem h0_mem, cl_mem o_mem,
                                     cl_mem ht_mem)
{
    (void)h0_mem;
    (void)o_mem;
    (void)ht_mem;
    return gdn__fail(tp->ctx, GDN_STATUS_UNSUPPORTED, "gated_delta: recurrent not built yet");
}
