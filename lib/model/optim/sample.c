/*
 * sample.c - the host-side token sampler (gdn_sampler_params_init,
 * gdn_sample; contract in gdn.h, "Sampling (host side)").
 *
 * Random numbers: splitmix64 (Steele, Lea, Flood 2014; the seeding
 * generator of xoshiro) with the caller's uint64 *rng as its whole state:
 *   s += 0x9e3779b97f4a7c15; z = s;
 *   z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9;
 *   z = (z ^ (z >> 27)) * 0x94d049bb133111eb;
 *   out = z ^ (z >> 31)
 * and u = (out >> 11) * 2^-53, uniform in [0, 1). Every seed is valid (0
 * included), and a call with temperature > 0 advances the state by exactly
 * one step (one u), whatever the logits; greedy calls (temperature 0) and
 * rejected calls leave it unchanged. So a run from the same seed repeats
 * exactly, on every platform (integer arithmetic, then IEEE double).
 *
 * Steps for temperature T > 0:
 *   1. candidates: every logit that is neither NaN nor -inf, with
 *      z = logit / T in double (cannot overflow: |logit| < 2^128 and
 *      T >= 2^-149). If some logit is +inf, the candidates are the +inf
 *      logits, all with z = 0 (equally likely). No candidate: the first
 *      non-NaN index (every such logit is -inf), or 0 when all are NaN.
 *   2. top-k (0 < top_k < candidates): keep the k best in the order
 *      (z descending, index ascending), so ties keep the lowest indices and
 *      top_k = 1 is the greedy choice. Selection through a heap of k
 *      entries: O(vocab log k).
 *   3. weights w = exp(z - max z) in double (softmax with max subtraction;
 *      the best candidate has w = 1, so the total is >= 1).
 *   4. top-p (< 1): sort what top-k kept in the same order and keep the
 *      shortest prefix whose weight reaches top_p * total (the total of
 *      step 3). Only candidates of weight >= a cut are sorted, for the
 *      largest cut of 1e-2, 1e-4, 1e-8, 1e-16 whose candidates already
 *      reach the goal (they are a prefix of the order, w growing with z),
 *      else all: usually a few hundred of 32000.
 *   5. draw: target = u * (total weight kept); walk the kept candidates
 *      and return the first whose running sum exceeds target (a zero
 *      weight is never returned; rounding past the end returns the last
 *      kept candidate of non-zero weight).
 * Without top-k and top-p, steps 1-5 run over the logits in index order with
 * no scratch (two passes, exp computed twice).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core.h"
#include "gdn.h"

void gdn_sampler_params_init(gdn_sampler_params *params)
{
    if (!params)
        return;
    memset(params, 0, sizeof(*params));
    params->temperature = 0.0f;
    params->top_k       = 0;
    params->top_p       = 1.0f;
}

/* Uniform in [0, 1) with 53 random bits. */
static double uniform01(uint64_t *s)
{
    return (double)(gdn__splitmix64(s) >> 11) * (1.0 / 9007199254740992.0);
}

struct cand {
    double  z; /* logit / T: the order          */
    double  w; /* exp(z - max z): the weight    */
    int32_t idx;
};

/* The candidate order: larger z first, then lower index (a total order). */
static int better(const struct cand *a, const struct cand *b)
{
    return a->z > b->z || (a->z == b->z && a->idx < b->idx);
}

static int cand_cmp(const void *pa, const void *pb)
{
    const struct cand *a = pa, *b = pb;
    return better(a, b) ? -1 : better(b, a) ? 1 : 0;
}

/* Min-heap by `better`: h[0] is the worst kept candidate. */
static void sift_down(struct cand *h, size_t k, size_t pos)
{
    for (;;) {
        size_t      l = 2 * pos + 1, r = l + 1, w = pos;
        struct cand t;
        if (l < k && better(&h[w], &h[l]))
            w = l;
        if (r < k && better(&h[w], &h[r]))
            w = r;
        if (w == pos)
            return;
        t      = h[pos];
        h[pos] = h[w];
        h[w]   = t;
        pos    = w;
    }
}

/* Keep the k best of c[0 .. n) in c[0 .. k) (heap order), 0 < k < n. */
static void select_top_k(struct cand *c, size_t n, size_t k)
{
    size_t i;
    for (i = k / 2; i-- > 0;)
        sift_down(c, k, i);
    for (i = k; i < n; i++)
        if (better(&c[i], &c[0])) {
            c[0] = c[i];
            sift_down(c, k, 0);
        }
}

/* Keep the nucleus of c[0 .. kept) (weights set, total their sum): sorts
 * its prefix, returns its length and its weight in *nucleus_total. */
static size_t top_p_filter(struct cand *c, size_t kept, double total, float top_p,
                           double *nucleus_total)
{
    static const double cuts[] = {1e-2, 1e-4, 1e-8, 1e-16, -1.0};
    const double        goal   = (double)top_p * total;
    size_t              m = kept, ci, j;
    double              cum;

    for (ci = 0; ci < sizeof(cuts) / sizeof(cuts[0]); ci++) {
        double s = 0.0;
        m        = 0;
        for (j = 0; j < kept; j++)
            if (c[j].w >= cuts[ci]) {
                const struct cand t = c[m];
                c[m]                = c[j];
                c[j]                = t;
                s += c[m++].w;
            }
        if (s >= goal)
            break;
    }
    qsort(c, m, sizeof(*c), cand_cmp);
    cum = 0.0;
    for (j = 0; j < m; j++) {
        cum += c[j].w;
        if (cum >= goal)
            break;
    }
    *nucleus_total = cum;
    return j < m ? j + 1 : m;
}

static int params_ok(const float *logits, int32_t vocab, const gdn_sampler_params *p,
                     const uint64_t *rng, const int32_t *token)
{
    size_t i;
    if (!logits || !p || !rng || !token || vocab < 1)
        return 0;
    if (!(isfinite(p->temperature) && p->temperature >= 0.0f))
        return 0;
    if (p->top_k < 0 || !(p->top_p > 0.0f && p->top_p <= 1.0f))
        return 0;
    for (i = 0; i < sizeof(p->reserved) / sizeof(p->reserved[0]); i++)
        if (p->reserved[i])
            return 0;
    return 1;
}

gdn_status gdn_sample(const float *logits, int32_t vocab, const gdn_sampler_params *params,
                      uint64_t *rng, int32_t *token)
{
    int32_t      i, first = -1, n_cand = 0, n_posinf = 0, best = -1;
    float        mx = -INFINITY;
    double       temp, u, zmax, total, target, cum;
    struct cand *c;
    size_t       n, kept, j, last;

    if (!params_ok(logits, vocab, params, rng, token))
        return GDN_STATUS_INVALID_ARGUMENT;

    /* Greedy: argmax, lowest index on ties, NaN skipped. */
    if (params->temperature == 0.0f) {
        for (i = 0; i < vocab; i++)
            if (!isnan(logits[i]) && (best < 0 || logits[i] > logits[best]))
                best = i;
        *token = best < 0 ? 0 : best;
        return GDN_STATUS_OK;
    }

    temp = (double)params->temperature;
    u    = uniform01(rng);
    for (i = 0; i < vocab; i++) {
        const float x = logits[i];
        if (isnan(x))
            continue;
        if (first < 0)
            first = i;
        if (x == -INFINITY)
            continue;
        n_cand++;
        n_posinf += x == INFINITY;
        if (x > mx)
            mx = x;
    }
    if (n_cand == 0) {
        *token = first < 0 ? 0 : first;
        return GDN_STATUS_OK;
    }
    if (n_posinf)
        n_cand = n_posinf;
    /* z of a candidate: +inf logits all 0 (equal), else logit / T. */
#define CAND_Z(x)  (n_posinf ? 0.0 : (double)(x) / temp)
#define IS_CAND(x) (n_posinf ? (x) == INFINITY : !isnan(x) && (x) != -INFINITY)
    zmax = n_posinf ? 0.0 : (double)mx / temp;

    if ((params->top_k == 0 || params->top_k >= n_cand) && params->top_p >= 1.0f) {
        /* No filters: two passes in index order, no scratch. */
        total = 0.0;
        for (i = 0; i < vocab; i++)
            if (IS_CAND(logits[i]))
                total += exp(CAND_Z(logits[i]) - zmax);
        target = u * total;
        cum    = 0.0;
        best   = -1;
        for (i = 0; i < vocab; i++) {
            double w;
            if (!IS_CAND(logits[i]))
                continue;
            w = exp(CAND_Z(logits[i]) - zmax);
            if (w > 0.0)
                best = i;
            cum += w;
            if (cum > target && w > 0.0)
                break;
        }
        *token = best;
        return GDN_STATUS_OK;
    }

    n = (size_t)n_cand;
    c = gdn__malloc(n * sizeof(*c));
    if (!c)
        return GDN_STATUS_OUT_OF_HOST_MEMORY;
    for (i = 0, j = 0; i < vocab; i++)
        if (IS_CAND(logits[i])) {
            c[j].z   = CAND_Z(logits[i]);
            c[j].idx = i;
            j++;
        }
#undef CAND_Z
#undef IS_CAND
    kept = n;
    if (params->top_k > 0 && (size_t)params->top_k < n) {
        kept = (size_t)params->top_k;
        select_top_k(c, n, kept);
    }
    total = 0.0;
    for (j = 0; j < kept; j++) {
        c[j].w = exp(c[j].z - zmax);
        total += c[j].w;
    }
    if (params->top_p < 1.0f)
        kept = top_p_filter(c, kept, total, params->top_p, &total);
    target = u * total;
    cum    = 0.0;
    last   = 0; /* some kept weight is 1 (the best candidate): overwritten */
    for (j = 0; j < kept; j++) {
        if (c[j].w <= 0.0)
            continue;
        last = j;
        cum += c[j].w;
        if (cum > target)
            break;
    }
    *token = c[last].idx;
    gdn__free(c);
    return GDN_STATUS_OK;
}
