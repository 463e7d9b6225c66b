/* shardkit: exponential backoff with jitter (see backoff.h).
 * GPL-3.0-or-later.
 */
#include <config.h>

#include <stdint.h>
#include <stdlib.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "backoff.h"

uint64_t
backoff_ceiling (uint64_t base, uint64_t max, unsigned retry)
{
  uint64_t d = base;
  unsigned i;

  if (retry == 0)
    return 0;
  for (i = 1; i < retry && d < max; i++) {
    if (d > UINT64_MAX / 2)
      return max;
    d *= 2;
  }
  return d < max ? d : max;
}

uint64_t
backoff_delay (const struct backoff *b, unsigned retry, uint64_t r)
{
  uint64_t ceiling = backoff_ceiling (b->first, b->max, retry), low;

  switch (b->jitter) {
  case BACKOFF_FULL_JITTER:
    return backoff_jitter (ceiling, r);
  case BACKOFF_EQUAL_JITTER:
    low = ceiling / 2;
    return low + backoff_jitter (ceiling - low, r);
  case BACKOFF_NO_JITTER:
    return ceiling;
  }
  abort ();                     /* Not a jitter: a bug in the caller. */
}

uint64_t
backoff_jitter (uint64_t ceiling, uint64_t r)
{
  /* Uniform over [0, ceiling] inclusive.  The modulo bias is below
   * ceiling / 2^64: irrelevant for delays.
   */
  if (ceiling == UINT64_MAX)
    return r;
  return r % (ceiling + 1);
}

/* xorshift64*, one state per thread, seeded from the kernel (or the clock
 * and thread if getrandom fails), so that threads and processes do not
 * draw the same delays.
 */
static __thread uint64_t rng_state;

uint64_t
backoff_random (void)
{
  uint64_t x = rng_state;

  if (x == 0) {
    if (getrandom (&x, sizeof x, GRND_NONBLOCK) != (ssize_t) sizeof x ||
        x == 0) {
      struct timespec ts;

      clock_gettime (CLOCK_MONOTONIC, &ts);
      x = ((uint64_t) ts.tv_sec * 1000000007u) ^ (uint64_t) ts.tv_nsec ^
        ((uint64_t) gettid () << 32) ^ (uintptr_t) &rng_state;
      if (x == 0)
        x = 0x9e3779b97f4a7c15u;
    }
  }
  x ^= x >> 12;
  x ^= x << 25;
  x ^= x >> 27;
  rng_state = x;
  return x * UINT64_C(0x2545F4914F6CDD1D);
}
