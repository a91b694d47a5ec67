/*
 * rope.c - rotary position embedding of sliding-window attention
 * (cl/swa/rope.cl): its plan, the frequency table and the launch. Used by
 * gdn_swa_rope, by the forward with GDN_SWA_ROPE (rotated copies of q and
 * k) and by the backward (inverse rotation of dq, dk in place).
 */
#include <math.h>
#include <string.h>

#include "swa.h"
#include "tune/tune.h"

#define ROPE_CL    "swa/rope.cl"
#define ROPE_ENTRY "swa_rope"

/* Plan of swa_rope: 1-D, one work-item per (token, pair). No -D options:
 * D and the head counts are runtime arguments, so one build serves all. */
struct rope_plan {
    size_t local;  /* work-items per group */
    size_t global; /* T * D/2 rounded up to local */
};

/* Work-group size from the stage's tuning space (gdn__swa_rope_space in
 * attn.c; generic default 64). */
static void rope_plan_default(gdn_context *ctx, int32_t D, struct rope_plan *p)
{
    struct gdn_swa_shape s;
    int32_t              vals[GDN_TUNE_MAX_PARAMS];
    memset(&s, 0, sizeof(s));
    s.D = D;
    gdn__swa_stage_lookup(ctx, &gdn__swa_rope_space, &s, vals);
    p->local = (size_t)vals[0];
}

static gdn_status rope_plan_fit(gdn_context *ctx, int64_t T, int32_t D, struct rope_plan *p)
{
    size_t n = (size_t)T * (size_t)(D / 2);
    while (p->local > ctx->dev.info.max_work_group_size && p->local > 1)
        p->local /= 2;
    if (p->local < 1)
        return gdn__fail(ctx, GDN_STATUS_UNSUPPORTED, "swa rope: no work-group size fits");
    p->global = (n + p->local - 1) / p->local * p->local;
    return GDN_STATUS_OK;
}

gdn_status gdn__swa_freq_table(gdn_context *ctx, int32_t D, float base, cl_mem *out)
{
    float   tab[1024];
    int32_t i;
    cl_int  err;

    *out = NULL;
    if (D < 2 || D > 1024)
        return gdn__fail(ctx, GDN_STATUS_INTERNAL, "swa rope: bad D %d", (int)D);
    for (i = 0; i < D / 2; i++) {
        double f       = pow((double)base, -2.0 * (double)i / (double)D);
        float  hi      = (float)f;
        tab[2 * i]     = hi;
        tab[2 * i + 1] = (float)(f - (double)hi);
    }
    *out = clCreateBuffer(ctx->cl_ctx, CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR,
                          (size_t)D * sizeof(float), tab, &err);
    if (err != CL_SUCCESS) {
        *out = NULL;
        return gdn__fail_cl(ctx, err, "swa rope: frequency table");
    }
    return GDN_STATUS_OK;
}

gdn_status gdn__swa_rope_enqueue(gdn_context *ctx, const struct gdn_swa_index *idx, int32_t N,
                                 int64_t T, int32_t D, float base, float sign, cl_mem x1,
                                 cl_mem y1, int32_t H1, cl_mem x2, cl_mem y2, int32_t H2)
{
    struct rope_plan p;
    cl_kernel        kr;
    cl_mem           freq = NULL;
    cl_uint          a    = 0;
    gdn_status       st;

    if (T == 0 || (H1 == 0 && H2 == 0))
        return GDN_STATUS_OK;
    if (H1 == 0) { /* keep x1 the non-empty one */
        x1 = x2, y1 = y2, H1 = H2;
        x2 = y2 = NULL, H2 = 0;
    }
    rope_plan_default(ctx, D, &p);
    if ((st = rope_plan_fit(ctx, T, D, &p)))
        return st;
    if ((st = gdn__kernel_get(ctx, ROPE_CL, "", ROPE_ENTRY, &kr)))
        return st;
    if ((st = gdn__swa_freq_table(ctx, D, base, &freq)))
        return st;
    if ((st = gdn__arg_mem(ctx, kr, a++, x1)) || (st = gdn__arg_mem(ctx, kr, a++, y1)) ||
        (st = gdn__arg_int(ctx, kr, a++, H1)) ||
        (st = gdn__arg_mem(ctx, kr, a++, x2 ? x2 : x1)) ||
        (st = gdn__arg_mem(ctx, kr, a++, y2 ? y2 : y1)) ||
        (st = gdn__arg_int(ctx, kr, a++, H2)) ||
        (st = gdn__arg_mem(ctx, kr, a++, idx->seq_off)) ||
        (st = gdn__arg_int(ctx, kr, a++, N)) ||
        (st = gdn__arg_mem(ctx, kr, a++, idx->pos_mem ? idx->pos_mem : idx->seq_off)) ||
        (st = gdn__arg_int(ctx, kr, a++, idx->pos_mem ? 1 : 0)) ||
        (st = gdn__arg_mem(ctx, kr, a++, freq)) ||
        (st = gdn__arg_int(ctx, kr, a++, (int32_t)T)) || (st = gdn__arg_int(ctx, kr, a++, D)) ||
        (st = gdn__arg_float(ctx, kr, a++, sign)))
        goto done;
    st = gdn__launch(ctx, kr, 1, &p.global, &p.local, NULL);
done:
    gdn__buffer_release(freq); /* the enqueued kernel keeps it alive */
    return st;
}
