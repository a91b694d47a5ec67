/* chunk_fwd.c - placeholder until the forward stages land. */
#include "gated_delta.h"

gdn_status gdn__gd_chunk_forward(struct gdn_gated_delta_tape *tp, gdn_tensor *o, gdn_tensor *ht)
{
    (void)o;
    (void)ht;
    return gdn__fail(tp->ctx, GDN_STATUS_UNSUPPORTED, "gated_delta: chunked forward not built yet");
}
