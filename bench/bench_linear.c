/*
 * bench_linear.c - speed of the dense layer ops against the device's own
 * measured ceilings: CLBlast SGEMM through gdn__gemm (square sizes and the
 * model's projection shapes, in the three transpose modes a linear layer
 * uses), a linear layer forward and forward + backward, the SwiGLU MLP,
 * the output head + cross-entropy, and the token embedding.
 *
 * Times: median (p10-p90) of >= 20 runs after warm-up, wall clock with
 * finish; "device" is the summed kernel time from profiling events (for a
 * CLBlast call only its last kernel is timed, so for GEMMs the wall time is
 * the number to read). GFLOP/s counts 2 M N K per GEMM (elementwise work is
 * left out) and is compared with the measured fp32 FMA peak; the memory-bound
 * ops (embedding, cross-entropy) report GB/s against the measured copy
 * bandwidth, counting each tensor byte read or written once.
 *
 * Shapes (ALGORITHM.md §3.1, §4.2): on a GPU M = 4096 tokens with
 * D = 1536 (F = 6144, the 0.4B configs) and D = 2048 (F = 5632, fla's
 * default), vocab 32000; on a CPU the same ops at M = 512, D = 512,
 * F = 1536, vocab 8192 (2 PoCL cores would need minutes per GPU shape).
 *
 * Skinny GEMMs (the linear layers of a decode step: y[M, N] = x[M, K] W^T
 * with W [N, K], M = 1, 16, 64 tokens against N x K = 1536 x 1536,
 * 6144 x 1536 and 32000 x 1536, on every device), each twice: through the
 * skinny kernel (GDN_SKINNY forced to M) and through CLBlast (GDN_SKINNY=0).
 * Their GB/s count the bytes of W, x and y once (a lower bound on traffic)
 * against the measured copy bandwidth; GFLOP/s 2 M N K.
 *
 * usage: bench_linear [--quick] [--gemm-only] [--skinny] [--out DIR] [--device SEL] [--reps N]
 *   --gemm-only  only the SGEMM lines (for trying CLBlast parameter
 *                overrides: GDN_CLBLAST_OVERRIDE, see lib/ops/linear/gemm.h)
 *   --skinny     only the skinny GEMM lines (tile sizes: GDN_TUNE=
 *                "linear/skinny:KS=..,NPI=..", see lib/ops/linear/gemm_skinny.h)
 *   --sweep      nothing to do (a token-wise op has no sequence-length sweep)
 */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_util.h"
#include "ops/linear/gemm_skinny.h"
#include "ops/linear/linear.h"

struct cfg {
    int M, D, F, V;
};

/* Every tensor a configuration needs (created once per configuration). */
struct lin_case {
    gdn_context *ctx;
    struct cfg   c;
    gdn_tensor  *x, *w, *y, *dy, *dx, *dw;           /* linear D -> D          */
    gdn_tensor  *wg, *wu, *wd, *ym, *dym, *dxm, *dwg, *dwu, *dwd; /* SwiGLU */
    gdn_tensor  *E, *logits, *ids, *targets, *loss, *lse, *dlogits, *dE, *emb;
    /* raw GEMM */
    cl_mem       A, B, C;
    size_t       gm, gn, gk;
    bool         ta, tb;
};

static gdn_status mk(gdn_context *ctx, int nd, const int64_t *shape, unsigned *seed, float amp,
                     gdn_tensor **out)
{
    gdn_status st = gdn_tensor_create(ctx, GDN_DTYPE_F32, nd, shape, out);
    size_t     n  = (size_t)gdn_tensor_numel(*out);
    float     *h;
    if (st)
        return st;
    h = malloc((n ? n : 1) * sizeof(float));
    if (!h)
        return GDN_STATUS_OUT_OF_HOST_MEMORY;
    bench_fill_uniform(h, n, seed, -amp, amp);
    st = gdn_tensor_write(*out, h, 0, n * sizeof(float));
    free(h);
    return st;
}

static gdn_status mk_ids(gdn_context *ctx, int64_t n, int32_t range, unsigned *seed,
                         gdn_tensor **out)
{
    gdn_status st = gdn_tensor_create(ctx, GDN_DTYPE_I32, 1, &n, out);
    int32_t   *h;
    int64_t    i;
    if (st)
        return st;
    h = malloc((size_t)(n ? n : 1) * sizeof(int32_t));
    if (!h)
        return GDN_STATUS_OUT_OF_HOST_MEMORY;
    for (i = 0; i < n; i++) {
        *seed = *seed * 1664525u + 1013904223u;
        h[i]  = (int32_t)((*seed >> 8) % (unsigned)range);
    }
    st = gdn_tensor_write(*out, h, 0, (size_t)n * sizeof(int32_t));
    free(h);
    return st;
}

static void case_free(struct lin_case *k)
{
    gdn_tensor *ts[] = {k->x,   k->w,   k->y,   k->dy,  k->dx,      k->dw,   k->wg,
                        k->wu,  k->wd,  k->ym,  k->dym, k->dxm,     k->dwg,  k->dwu,
                        k->dwd, k->E,   k->logits, k->ids, k->targets, k->loss, k->lse,
                        k->dlogits, k->dE, k->emb};
    size_t      i;
    for (i = 0; i < GDN_ARRAY_SIZE(ts); i++)
        gdn_tensor_destroy(ts[i]);
    gdn__buffer_release(k->A);
    gdn__buffer_release(k->B);
    gdn__buffer_release(k->C);
    memset(k, 0, sizeof(*k));
}

static gdn_status case_init(gdn_context *ctx, const struct cfg *c, struct lin_case *k)
{
    unsigned      seed = 4321;
    const int64_t xs[2] = {c->M, c->D}, ww[2] = {c->D, c->D}, fd[2] = {c->F, c->D},
                  df[2] = {c->D, c->F}, vd[2] = {c->V, c->D}, mv[2] = {c->M, c->V},
                  one[1] = {1};
    gdn_status    st;

    memset(k, 0, sizeof(*k));
    k->ctx = ctx;
    k->c   = *c;
    if ((st = mk(ctx, 2, xs, &seed, 1, &k->x)) || (st = mk(ctx, 2, ww, &seed, 0.03f, &k->w)) ||
        (st = mk(ctx, 2, xs, &seed, 1, &k->y)) || (st = mk(ctx, 2, xs, &seed, 1, &k->dy)) ||
        (st = mk(ctx, 2, xs, &seed, 1, &k->dx)) || (st = mk(ctx, 2, ww, &seed, 1, &k->dw)) ||
        (st = mk(ctx, 2, fd, &seed, 0.03f, &k->wg)) || (st = mk(ctx, 2, fd, &seed, 0.03f, &k->wu)) ||
        (st = mk(ctx, 2, df, &seed, 0.02f, &k->wd)) || (st = mk(ctx, 2, xs, &seed, 1, &k->ym)) ||
        (st = mk(ctx, 2, xs, &seed, 1, &k->dym)) || (st = mk(ctx, 2, xs, &seed, 1, &k->dxm)) ||
        (st = mk(ctx, 2, fd, &seed, 1, &k->dwg)) || (st = mk(ctx, 2, fd, &seed, 1, &k->dwu)) ||
        (st = mk(ctx, 2, df, &seed, 1, &k->dwd)) || (st = mk(ctx, 2, vd, &seed, 0.05f, &k->E)) ||
        (st = mk(ctx, 2, mv, &seed, 1, &k->logits)) ||
        (st = mk_ids(ctx, c->M, c->V, &seed, &k->ids)) ||
        (st = mk_ids(ctx, c->M, c->V, &seed, &k->targets)) ||
        (st = mk(ctx, 1, one, &seed, 1, &k->loss)) ||
        (st = gdn_tensor_create(ctx, GDN_DTYPE_F32, 1, &xs[0], &k->lse)) ||
        (st = mk(ctx, 2, mv, &seed, 1, &k->dlogits)) || (st = mk(ctx, 2, vd, &seed, 1, &k->dE)) ||
        (st = mk(ctx, 2, xs, &seed, 1, &k->emb)))
        return st;
    return GDN_STATUS_OK;
}

/* ---------------------------------------------------------------- runs */

static gdn_status fn_gemm(void *arg)
{
    struct lin_case *k = arg;
    /* row-major, packed: lda/ldb from the stored shapes */
    size_t lda = k->ta ? k->gm : k->gk, ldb = k->tb ? k->gk : k->gn;
    return gdn__gemm(k->ctx, k->ta, k->tb, k->gm, k->gn, k->gk, 1.0f, k->A, 0, lda, k->B, 0, ldb,
                     0.0f, k->C, 0, k->gn);
}

static gdn_status fn_linear_fwd(void *arg)
{
    struct lin_case *k = arg;
    gdn_linear_args  a;
    memset(&a, 0, sizeof(a));
    a.x = k->x, a.w = k->w;
    return gdn_linear_forward(k->ctx, NULL, &a, k->y);
}

static gdn_status fn_linear_fwd_bwd(void *arg)
{
    struct lin_case  *k = arg;
    gdn_linear_args   a;
    gdn_linear_grads  g;
    gdn_linear_params p;
    gdn_status        st;
    memset(&a, 0, sizeof(a));
    memset(&g, 0, sizeof(g));
    gdn_linear_params_init(&p);
    p.flags = GDN_LINEAR_ACCUMULATE_DW; /* as in gradient accumulation */
    a.x = k->x, a.w = k->w;
    g.dx = k->dx, g.dw = k->dw;
    if ((st = gdn_linear_forward(k->ctx, NULL, &a, k->y)))
        return st;
    return gdn_linear_backward(k->ctx, &p, &a, k->dy, &g);
}

static gdn_status fn_swiglu(void *arg, bool bwd)
{
    struct lin_case *k    = arg;
    gdn_swiglu_tape *tape = NULL;
    gdn_swiglu_args  a;
    gdn_swiglu_grads g;
    gdn_status       st;
    memset(&a, 0, sizeof(a));
    memset(&g, 0, sizeof(g));
    a.x = k->x, a.w_gate = k->wg, a.w_up = k->wu, a.w_down = k->wd;
    st = gdn_swiglu_forward(k->ctx, NULL, &a, k->ym, bwd ? &tape : NULL);
    if (!st && bwd) {
        g.dx = k->dxm, g.dw_gate = k->dwg, g.dw_up = k->dwu, g.dw_down = k->dwd;
        st = gdn_swiglu_backward(k->ctx, NULL, tape, k->dym, &g);
    }
    gdn_swiglu_tape_destroy(tape);
    return st;
}
static gdn_status fn_swiglu_fwd(void *arg)
{
    return fn_swiglu(arg, false);
}
static gdn_status fn_swiglu_fwd_bwd(void *arg)
{
    return fn_swiglu(arg, true);
}

/* Output head (tied to E) + cross-entropy, forward and backward. */
static gdn_status fn_head_ce(void *arg)
{
    struct lin_case      *k = arg;
    gdn_linear_args       a;
    gdn_linear_grads      g;
    gdn_cross_entropy_out o;
    gdn_status            st;
    memset(&a, 0, sizeof(a));
    memset(&g, 0, sizeof(g));
    memset(&o, 0, sizeof(o));
    a.x = k->x, a.w = k->E;
    o.loss = k->loss, o.lse = k->lse;
    g.dx = k->dx, g.dw = k->dE;
    if ((st = gdn_linear_forward(k->ctx, NULL, &a, k->logits)) ||
        (st = gdn_cross_entropy_forward(k->ctx, NULL, k->logits, k->targets, &o)) ||
        (st = gdn_cross_entropy_backward(k->ctx, NULL, k->logits, k->targets, k->lse, NULL,
                                         k->logits)))
        return st;
    return gdn_linear_backward(k->ctx, NULL, &a, k->logits, &g);
}

static gdn_status fn_ce_fwd(void *arg)
{
    struct lin_case      *k = arg;
    gdn_cross_entropy_out o;
    memset(&o, 0, sizeof(o));
    o.loss = k->loss, o.lse = k->lse;
    return gdn_cross_entropy_forward(k->ctx, NULL, k->logits, k->targets, &o);
}

static gdn_status fn_ce_bwd(void *arg)
{
    struct lin_case *k = arg;
    return gdn_cross_entropy_backward(k->ctx, NULL, k->logits, k->targets, k->lse, NULL,
                                      k->dlogits);
}

static gdn_status fn_emb_fwd(void *arg)
{
    struct lin_case *k = arg;
    return gdn_embedding_forward(k->ctx, NULL, k->E, k->ids, k->emb);
}

static gdn_status fn_emb_bwd(void *arg)
{
    struct lin_case *k = arg;
    return gdn_embedding_backward(k->ctx, NULL, k->ids, k->dy, k->dE);
}

/* ---------------------------------------------------------------- report */

static const char *HDR =
    "what,M,D,F,V,N,K,wall_ms_median,wall_ms_p10,wall_ms_p90,device_ms_median,gflops,"
    "fma_peak_frac,gbs,copy_frac";

struct ctx_out {
    gdn_context                 *ctx;
    const struct bench_ceilings *ceil;
    struct bench_out            *out;
    int                          reps, warmup;
};

/* Time fn and print one line. flop or bytes may be 0. */
static gdn_status report(struct ctx_out *o, const char *what, const struct cfg *c, size_t n,
                         size_t kk, bench_fn fn, void *arg, double flop, double bytes)
{
    struct bench_stats w, d;
    double             gf, gb;
    gdn_status         st = bench_time(o->ctx, fn, arg, o->warmup, o->reps, &w, &d, NULL, NULL);
    if (st) {
        fprintf(stderr, "  %s: %s: %s\n", what, gdn_status_string(st),
                gdn_context_last_error(o->ctx));
        return st;
    }
    gf = flop / (w.median * 1e6);
    gb = bytes / (w.median * 1e6);
    printf("  %-28s wall %9.3f ms (p10 %.3f, p90 %.3f)  device %9.3f ms", what, w.median, w.p10,
           w.p90, d.median);
    if (flop > 0)
        printf("  %9.1f GFLOP/s %5.1f%% of FMA peak", gf, 100 * gf / o->ceil->fma_gflops);
    if (bytes > 0)
        printf("  %8.1f GB/s %5.1f%% of copy", gb, 100 * gb / o->ceil->copy_gbs);
    printf("\n");
    bench_out_row(o->out, HDR,
                  "what=\"%s\";M=%d;D=%d;F=%d;V=%d;N=%zu;K=%zu;wall_ms_median=%.4f;"
                  "wall_ms_p10=%.4f;wall_ms_p90=%.4f;device_ms_median=%.4f;gflops=%.2f;"
                  "fma_peak_frac=%.4f;gbs=%.2f;copy_frac=%.4f",
                  what, c->M, c->D, c->F, c->V, n, kk, w.median, w.p10, w.p90, d.median, gf,
                  gf / o->ceil->fma_gflops, gb, gb / o->ceil->copy_gbs);
    return GDN_STATUS_OK;
}

/* Fresh buffers for C[m, n] = A B with k inner (A: m x kk, B: kk x n
 * elements, whatever the transposes), A and B filled with uniform values in
 * [-1, 1) drawn from `seed`. */
static gdn_status gemm_buffers(struct ctx_out *o, struct lin_case *k, size_t m, size_t n,
                               size_t kk, unsigned seed)
{
    const size_t na = m * kk, nb = kk * n;
    gdn_status   st;
    float       *h;
    size_t       i;

    gdn__buffer_release(k->A), gdn__buffer_release(k->B), gdn__buffer_release(k->C);
    k->A = k->B = k->C = NULL;
    if ((st = gdn__buffer_create(o->ctx, na * 4, &k->A)) ||
        (st = gdn__buffer_create(o->ctx, nb * 4, &k->B)) ||
        (st = gdn__buffer_create(o->ctx, m * n * 4, &k->C)))
        return st;
    h = malloc((na > nb ? na : nb) * sizeof(float));
    if (!h)
        return GDN_STATUS_OUT_OF_HOST_MEMORY;
    bench_fill_uniform(h, na > nb ? na : nb, &seed, -1, 1);
    for (i = 0; i < 2 && !st; i++) {
        cl_int err = clEnqueueWriteBuffer(o->ctx->queue, i ? k->B : k->A, CL_TRUE, 0,
                                          (i ? nb : na) * 4, h, 0, NULL, NULL);
        if (err != CL_SUCCESS)
            st = gdn__fail_cl(o->ctx, err, "bench: write");
    }
    free(h);
    return st;
}

/* Raw GEMM C[m, n] = op(A) op(B) with k inner, in one transpose mode. */
static gdn_status bench_gemm(struct ctx_out *o, struct lin_case *k, const struct cfg *c,
                             const char *label, size_t m, size_t n, size_t kk, bool ta, bool tb)
{
    char       what[96];
    gdn_status st = gemm_buffers(o, k, m, n, kk, 99);

    if (st)
        return st;
    k->gm = m, k->gn = n, k->gk = kk, k->ta = ta, k->tb = tb;
    snprintf(what, sizeof(what), "sgemm %s %c%c %zux%zux%zu", label, ta ? 'T' : 'N',
             tb ? 'T' : 'N', m, n, kk);
    return report(o, what, c, n, kk, fn_gemm, k, 2.0 * (double)m * (double)n * (double)kk, 0);
}

/* One skinny GEMM shape, y[m, n] = x[m, kk] W[n, kk]^T, through the skinny
 * kernel and through CLBlast (GDN_SKINNY set for each, then restored). */
static gdn_status bench_skinny(struct ctx_out *o, struct lin_case *k, const struct cfg *c,
                               size_t m, size_t n, size_t kk)
{
    const char  *saved = getenv("GDN_SKINNY");
    char        *keep  = saved ? strdup(saved) : NULL;
    const double flop = 2.0 * (double)m * (double)n * (double)kk,
                 bytes = 4.0 * ((double)n * (double)kk + (double)m * (double)kk +
                                (double)m * (double)n);
    gdn_status   st   = gemm_buffers(o, k, m, n, kk, 7);
    int          path;

    k->gm = m, k->gn = n, k->gk = kk, k->ta = false, k->tb = true;
    for (path = 0; path < 2 && !st; path++) {
        char        what[96], mstr[32];
        const char *used;
        snprintf(mstr, sizeof(mstr), "%zu", m);
        setenv("GDN_SKINNY", path == 0 ? mstr : "0", 1);
        used = gdn__gemm_path(o->ctx, false, true, m, n, kk, 1);
        snprintf(what, sizeof(what), "%-7s y=xW^T %zux%zux%zu", used, m, n, kk);
        st = report(o, what, c, n, kk, fn_gemm, k, flop, bytes);
    }
    if (keep)
        setenv("GDN_SKINNY", keep, 1);
    else
        unsetenv("GDN_SKINNY");
    free(keep);
    return st;
}

int main(int argc, char **argv)
{
    struct bench_opts     opt   = BENCH_OPTS_INIT;
    bool                  quick, gemm_only = false, skinny_only = false, gpu;
    int                   reps, i;
    gdn_context          *ctx  = NULL;
    struct bench_ceilings ceil;
    struct bench_out      bout;
    struct ctx_out        o;
    gdn_status            st = GDN_STATUS_OK;
    const struct cfg      cfg_gpu[]   = {{4096, 1536, 6144, 32000}, {4096, 2048, 5632, 32000}};
    const struct cfg      cfg_cpu[]   = {{512, 512, 1536, 8192}};
    const struct cfg      cfg_quick[] = {{64, 64, 192, 1000}};
    const struct cfg     *cfgs;
    size_t                ncfg;
    const size_t          sq_gpu[] = {1024, 4096, 8192}, sq_cpu[] = {256, 512, 1024};
    const size_t         *sq;
    size_t                nsq;

    for (i = 1; i < argc; i++) {
        if (bench_common_arg(argc, argv, &i, &opt))
            continue;
        if (!strcmp(argv[i], "--gemm-only"))
            gemm_only = true;
        else if (!strcmp(argv[i], "--skinny"))
            skinny_only = true;
        else {
            fprintf(stderr, "usage: %s " BENCH_USAGE " [--gemm-only] [--skinny]\n", argv[0]);
            return 2;
        }
    }
    if (bench_no_sweep("linear", &opt))
        return 0;
    {
        int rc = bench_begin("linear", &opt, &ctx, &ceil, &bout);
        if (rc)
            return rc;
        quick = opt.quick, reps = opt.reps;
    }
    gpu = (ctx->dev.info.flags & GDN_DEVICE_FLAG_GPU) != 0;
    printf("GEMM backend: %s\n", gdn__gemm_backend_name());
    o.ctx = ctx, o.ceil = &ceil, o.out = &bout, o.reps = reps, o.warmup = quick ? 1 : 2;

    if (quick)
        cfgs = cfg_quick, ncfg = 1, sq = sq_cpu, nsq = 1;
    else if (gpu)
        cfgs = cfg_gpu, ncfg = GDN_ARRAY_SIZE(cfg_gpu), sq = sq_gpu, nsq = GDN_ARRAY_SIZE(sq_gpu);
    else
        cfgs = cfg_cpu, ncfg = GDN_ARRAY_SIZE(cfg_cpu), sq = sq_cpu, nsq = GDN_ARRAY_SIZE(sq_cpu);

    /* skinny GEMMs: decode-step linear layers (M tokens, W [N, K]) */
    {
        const size_t     sk_m[]  = {1, 16, 64};
        const size_t     sk_nk[][2] = {{1536, 1536}, {6144, 1536}, {32000, 1536}};
        const size_t     sk_q[][2]  = {{192, 64}, {768, 64}};
        const struct cfg c0      = {0, 0, 0, 0};
        struct lin_case  k;
        size_t           a, b, nnk = quick ? GDN_ARRAY_SIZE(sk_q) : GDN_ARRAY_SIZE(sk_nk);
        memset(&k, 0, sizeof(k));
        k.ctx = ctx;
        printf("\nskinny GEMMs y[M, N] = x[M, K] W[N, K]^T (gdn__gemm gives M <= %zu to the "
               "skinny kernel here; GDN_SKINNY)\n",
               gdn__gemm_skinny_max_m(ctx));
        for (b = 0; b < nnk && !st; b++)
            for (a = 0; a < GDN_ARRAY_SIZE(sk_m) && !st; a++)
                st = bench_skinny(&o, &k, &c0, sk_m[a], quick ? sk_q[b][0] : sk_nk[b][0],
                                  quick ? sk_q[b][1] : sk_nk[b][1]);
        gdn__buffer_release(k.A), gdn__buffer_release(k.B), gdn__buffer_release(k.C);
    }

    for (i = 0; i < (int)ncfg && !st && !skinny_only; i++) {
        const struct cfg *c = &cfgs[i];
        struct lin_case   k;
        const double      M = c->M, D = c->D, F = c->F, V = c->V;
        size_t            j;

        printf("\nM=%d tokens, D=%d, F=%d, vocab=%d\n", c->M, c->D, c->F, c->V);
        st = case_init(ctx, c, &k);
        if (i == 0)
            for (j = 0; j < nsq && !st; j++)
                st = bench_gemm(&o, &k, c, "square", sq[j], sq[j], sq[j], false, false);
        /* the GEMMs of one linear D -> F: forward NT, dx NN, dW TN */
        if (!st)
            st = bench_gemm(&o, &k, c, "fwd x W^T", (size_t)c->M, (size_t)c->F, (size_t)c->D,
                            false, true);
        if (!st)
            st = bench_gemm(&o, &k, c, "dx = dy W", (size_t)c->M, (size_t)c->D, (size_t)c->F,
                            false, false);
        if (!st)
            st = bench_gemm(&o, &k, c, "dW = dy^T x", (size_t)c->F, (size_t)c->D, (size_t)c->M,
                            true, false);
        if (gemm_only) {
            case_free(&k);
            continue;
        }
        if (!st)
            st = report(&o, "linear DxD fwd", c, (size_t)c->D, (size_t)c->D, fn_linear_fwd, &k,
                        2 * M * D * D, 0);
        if (!st)
            st = report(&o, "linear DxD fwd+bwd", c, (size_t)c->D, (size_t)c->D,
                        fn_linear_fwd_bwd, &k, 3 * 2 * M * D * D, 0);
        if (!st)
            st = report(&o, "swiglu fwd", c, (size_t)c->F, (size_t)c->D, fn_swiglu_fwd, &k,
                        3 * 2 * M * D * F, 0);
        if (!st)
            st = report(&o, "swiglu fwd+bwd", c, (size_t)c->F, (size_t)c->D, fn_swiglu_fwd_bwd,
                        &k, 9 * 2 * M * D * F, 0);
        if (!st)
            st = report(&o, "cross_entropy fwd", c, (size_t)c->V, 0, fn_ce_fwd, &k, 0,
                        4 * M * V);
        if (!st)
            st = report(&o, "cross_entropy bwd", c, (size_t)c->V, 0, fn_ce_bwd, &k, 0,
                        8 * M * V);
        if (!st)
            st = report(&o, "head+CE fwd+bwd (tied)", c, (size_t)c->V, (size_t)c->D, fn_head_ce,
                        &k, 3 * 2 * M * D * V, 0);
        if (!st)
            st = report(&o, "embedding fwd", c, (size_t)c->D, 0, fn_emb_fwd, &k, 0, 8 * M * D);
        if (!st)
            st = report(&o, "embedding bwd", c, (size_t)c->D, 0, fn_emb_bwd, &k, 0,
                        4 * M * D + 4 * V * D);
        case_free(&k);
    }
    if (st)
        fprintf(stderr, "bench: %s: %s\n", gdn_status_string(st), gdn_context_last_error(ctx));
    bench_out_close(&bout);
    gdn_context_destroy(ctx);
    return st ? 1 : 0;
}
