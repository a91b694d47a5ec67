/*
 * rng.c - seeded deterministic PRNG for the libgdn tests (see rng.h).
 *
 * xoshiro256** 1.0 with splitmix64 seeding; Box-Muller normals. Public
 * domain algorithms by D. Blackman and S. Vigna (prng.di.unimi.it).
 * Test-input conventions follow ALGORITHM.md 1.2 (unit-norm q/k rows).
 */
#include "rng.h"

#include <math.h>

#define GDN_RNG_TWO_PI 6.283185307179586476925286766559

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += UINT64_C(0x9E3779B97F4A7C15));
    z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
    return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

void gdn_rng_seed(struct gdn_rng *rng, uint64_t seed)
{
    uint64_t x = seed;
    for (int i = 0; i < 4; ++i) {
        rng->s[i] = splitmix64(&x);
    }
    rng->spare = 0.0;
    rng->has_spare = 0;
}

uint64_t gdn_rng_next_u64(struct gdn_rng *rng)
{
    uint64_t *s = rng->s;
    const uint64_t result = rotl(s[1] * 5, 7) * 9;
    const uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

double gdn_rng_uniform(struct gdn_rng *rng)
{
    return (double)(gdn_rng_next_u64(rng) >> 11) * 0x1.0p-53;
}

double gdn_rng_normal(struct gdn_rng *rng)
{
    if (rng->has_spare) {
        rng->has_spare = 0;
        return rng->spare;
    }
    const double u1 = 1.0 - gdn_rng_uniform(rng); /* (0, 1]: log is finite */
    const double u2 = gdn_rng_uniform(rng);
    const double rad = sqrt(-2.0 * log(u1));
    rng->spare = rad * sin(GDN_RNG_TWO_PI * u2);
    rng->has_spare = 1;
    return rad * cos(GDN_RNG_TWO_PI * u2);
}

void gdn_rng_fill_uniform(struct gdn_rng *rng, double *x, size_t n, double lo, double hi)
{
    for (size_t i = 0; i < n; ++i) {
        double y = lo + (hi - lo) * gdn_rng_uniform(rng);
        if (hi > lo && y >= hi) { /* rounding can reach hi; keep [lo, hi) */
            y = nextafter(hi, lo);
        }
        x[i] = y;
    }
}

void gdn_rng_fill_normal(struct gdn_rng *rng, double *x, size_t n, double std)
{
    for (size_t i = 0; i < n; ++i) {
        x[i] = std * gdn_rng_normal(rng);
    }
}

void gdn_rng_fill_l2rows(struct gdn_rng *rng, double *x, size_t rows, size_t D)
{
    for (size_t r = 0; r < rows; ++r) {
        double *xr = x + r * D;
        double ss = 0.0;
        for (size_t d = 0; d < D; ++d) {
            xr[d] = gdn_rng_normal(rng);
            ss += xr[d] * xr[d];
        }
        if (ss > 0.0) {
            const double inv = 1.0 / sqrt(ss);
            for (size_t d = 0; d < D; ++d) {
                xr[d] *= inv;
            }
        }
    }
}
