/* chunk_bwd.c - placeholder until the backward stages land. */
#include "gated_delta.h"

gdn_status gdn__gd_chunk_backward(const struct gdn_gated_delta_tape *tp, const gdn_tensor *do_,
                                  const gdn_tensor *dht, const gdn_gated_delta_grads *grads)
{
    (void)do_;
    (void)dht;
    (void)grads;
    return gdn__fail(tp->ctx, GDN_STATUS_UNSUPPORTED, "gated_delta: backward not built yet");
}
