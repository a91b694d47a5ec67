/*
 * rng.h - seeded deterministic PRNG for the libgdn tests.
 *
 * xoshiro256** (Blackman & Vigna) seeded through splitmix64, so that a given
 * 64-bit seed produces the same stream on every platform and compiler.
 * Normal deviates use the Box-Muller transform (one spare value cached).
 * Used to build test inputs for the gated delta rule reference and kernels
 * (ALGORITHM.md 1.2: q/k are L2-normalised rows, see gdn_rng_fill_l2rows).
 */
#ifndef GDN_TEST_RNG_H
#define GDN_TEST_RNG_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

struct gdn_rng {
    uint64_t s[4];     /* xoshiro256** state */
    double spare;      /* cached second Box-Muller deviate */
    int has_spare;
};

/* Seed the generator (any seed, including 0, is fine). */
void gdn_rng_seed(struct gdn_rng *rng, uint64_t seed);
/* Next raw 64-bit output. */
uint64_t gdn_rng_next_u64(struct gdn_rng *rng);
/* Uniform double in [0, 1) with 53 random bits. */
double gdn_rng_uniform(struct gdn_rng *rng);
/* Standard normal deviate (mean 0, std 1). */
double gdn_rng_normal(struct gdn_rng *rng);

/* x[i] = uniform in [lo, hi), i < n. */
void gdn_rng_fill_uniform(struct gdn_rng *rng, double *x, size_t n, double lo, double hi);
/* x[i] = std * normal, i < n. */
void gdn_rng_fill_normal(struct gdn_rng *rng, double *x, size_t n, double std);
/* rows x D normal values, each row scaled to unit L2 norm (a zero row, which
 * is practically impossible, is left as is). */
void gdn_rng_fill_l2rows(struct gdn_rng *rng, double *x, size_t rows, size_t D);

#ifdef __cplusplus
}
#endif

#endif /* GDN_TEST_RNG_H */
