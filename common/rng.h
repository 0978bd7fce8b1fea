/* Explicit, seedable random number generator (xoshiro256**, seeded through splitmix64).
 *
 * Every random choice in caviar (weight init, shuffles, dropout masks, augmentation, search
 * sampling) draws from a cv_rng_t passed in by the caller, so a seed reproduces a run exactly.
 * There is no global generator. */
#ifndef CV_RNG_H
#define CV_RNG_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint64_t s[4];   /* xoshiro256** state; never all zero */
    double spare;    /* second normal deviate of the last Box-Muller pair */
    int has_spare;   /* 1 when spare is valid */
} cv_rng_t;

/* Seeds the generator; distinct seeds give independent-looking streams. */
void cv_rng_seed(cv_rng_t *rng, uint64_t seed);
/* Derives a child seed from a parent seed and a stream index (e.g. job seed and trial number). */
uint64_t cv_rng_derive(uint64_t seed, uint64_t stream);
/* Next 64 random bits. Inline: dropout masks draw one per activation in the training loop. */
static inline uint64_t cv_rng_next(cv_rng_t *rng) {
    uint64_t *s = rng->s;
    uint64_t x = s[1] * 5;
    uint64_t result = ((x << 7) | (x >> 57)) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = (s[3] << 45) | (s[3] >> 19);
    return result;
}
/* Uniform double in [0, 1) with 53 random bits. */
static inline double cv_rng_uniform(cv_rng_t *rng) {
    return (double)(cv_rng_next(rng) >> 11) * 0x1.0p-53;
}
/* Uniform float in [0, 1) with 24 random bits. */
static inline float cv_rng_uniformf(cv_rng_t *rng) {
    return (float)(cv_rng_next(rng) >> 40) * 0x1.0p-24f;
}
/* Standard normal deviate (mean 0, variance 1). */
double cv_rng_normal(cv_rng_t *rng);
/* Uniform integer in [0, n); n > 0. Unbiased (Lemire's multiply-and-reject). */
uint32_t cv_rng_below(cv_rng_t *rng, uint32_t n);
/* Fisher-Yates shuffle of n indices in place. */
void cv_rng_shuffle_u32(cv_rng_t *rng, uint32_t *a, size_t n);

#endif
