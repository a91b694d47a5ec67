/*
 * tune_op.c - gdn_tune_op: one public entry to every op's tuner (each op
 * keeps its tuner beside its plans: lib/ops/<op>/tune.c).
 */
#include <string.h>

#include "gated_delta.h"
#include "mamba2.h"
#include "swa.h"

gdn_status gdn_tune_op(gdn_context *ctx, const char *op, int32_t d0, int32_t d1, double budget_s,
                       char *report, size_t report_cap)
{
    if (!ctx)
        return GDN_STATUS_INVALID_ARGUMENT;
    if (!op)
        return gdn__fail(ctx, GDN_STATUS_INVALID_ARGUMENT, "gdn_tune_op: op is NULL");
    if (!strcmp(op, "gated_delta"))
        return gdn_tune_gated_delta(ctx, d0, d1, budget_s, report, report_cap);
    if (!strcmp(op, "mamba2"))
        return gdn__mamba2_tune(ctx, d0, d1, budget_s, report, report_cap);
    if (!strcmp(op, "swa"))
        return gdn__swa_tune(ctx, d0, budget_s, report, report_cap);
    return gdn__fail(ctx, GDN_STATUS_INVALID_ARGUMENT,
                     "gdn_tune_op: unknown op '%s' (gated_delta, mamba2, swa)", op);
}
