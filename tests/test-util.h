/* shardkit unit tests: assertions that say what failed.  GPL-3.0-or-later. */
#ifndef SHARDKIT_TEST_UTIL_H
#define SHARDKIT_TEST_UTIL_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

static int test_failures;

#define CHECK(cond)                                                     \
  do {                                                                  \
    if (!(cond)) {                                                      \
      fprintf (stderr, "%s:%d: check failed: %s\n",                     \
               __FILE__, __LINE__, #cond);                              \
      test_failures++;                                                  \
    }                                                                   \
  } while (0)

/* xorshift64*: a random sequence reproducible from a printed seed.
 * Seed it with test_rng_seed (not 0).
 */
static inline uint64_t *
test_rng_state (void)
{
  static uint64_t state = 1;
  return &state;
}

static inline void
test_rng_seed (uint64_t seed)
{
  *test_rng_state () = seed ? seed : 1;
}

static inline uint64_t
test_rnd (void)
{
  uint64_t *s = test_rng_state ();
  *s ^= *s >> 12;
  *s ^= *s << 25;
  *s ^= *s >> 27;
  return *s * UINT64_C (2685821657736338717);
}

#define TEST_EXIT()                                                     \
  do {                                                                  \
    if (test_failures) {                                                \
      fprintf (stderr, "%d check(s) failed\n", test_failures);          \
      exit (EXIT_FAILURE);                                              \
    }                                                                   \
    printf ("all checks passed\n");                                     \
    exit (EXIT_SUCCESS);                                                \
  } while (0)

#endif
