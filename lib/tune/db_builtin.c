/*
 * db_builtin.c - built-in tuning values, by device name, architecture and
 * vendor (lookup order in tune.h). This is data: rows come from `gdn tune`
 * result files checked in under lib/tune/results/ and are copied here in
 * aligned columns. A stage without rows runs its generic defaults, which are
 * correct on any OpenCL 1.2 device.
 */
#include "tune.h"

// clang-format off
const struct gdn_tune_row gdn__tune_builtin[] = {
    /* match       stage                         bucket   values */
    {"*",          "",                           "",      ""}, /* sentinel, never matches */
};
// clang-format on

const size_t gdn__tune_builtin_count = sizeof(gdn__tune_builtin) / sizeof(gdn__tune_builtin[0]);
