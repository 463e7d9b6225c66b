/* shardkit: unit tests of common/backoff.c: the schedules and jitters
 * that the retry loops of the suite choose from.  (The arithmetic under
 * them, backoff_ceiling and backoff_jitter, is also tested in
 * test-retry-backoff-units.c, as retry-backoff uses it.)
 * GPL-3.0-or-later.
 */
#include <config.h>

#include <stdint.h>
#include <stdio.h>

#include "backoff.h"
#include "duration.h"
#include "test-util.h"

/* Draws of backoff_delay: each within [lo, hi], the extremes reached
 * within 1% of the range, the mean within 1% of the middle.
 */
static void
check_uniform (const struct backoff *b, unsigned retry, uint64_t lo,
               uint64_t hi)
{
  const unsigned n = 100000;
  uint64_t min = UINT64_MAX, max = 0, sum = 0, slack = (hi - lo) / 100;
  unsigned i;

  for (i = 0; i < n; i++) {
    uint64_t d = backoff_delay (b, retry, backoff_random ());

    CHECK (d >= lo && d <= hi);
    if (d < min) min = d;
    if (d > max) max = d;
    sum += d;
  }
  CHECK (min <= lo + slack);
  CHECK (max >= hi - slack);
  CHECK (sum / n >= (lo + hi) / 2 - slack && sum / n <= (lo + hi) / 2 + slack);
}

int
main (void)
{
  /* retry-backoff's defaults: full jitter in [0, 100ms * 2^(n-1)], at
   * most 10s.
   */
  const struct backoff full = {
    .first = 100 * NS_PER_MS, .max = 10 * NS_PER_S,
    .jitter = BACKOFF_FULL_JITTER,
  };
  /* s3-object's HTTP retries: [d/2, d], 200ms doubling to 3s. */
  const struct backoff equal = {
    .first = 200 * NS_PER_MS, .max = 3 * NS_PER_S,
    .jitter = BACKOFF_EQUAL_JITTER,
  };
  /* chunk-cache's write-back: 100ms doubling to 5s, no jitter. */
  const struct backoff none = {
    .first = 100 * NS_PER_MS, .max = 5 * NS_PER_S,
    .jitter = BACKOFF_NO_JITTER,
  };

  CHECK (backoff_delay (&full, 0, 12345) == 0);
  CHECK (backoff_delay (&equal, 0, 12345) == 0);
  CHECK (backoff_delay (&none, 0, 12345) == 0);

  /* The random number only picks the place in the range. */
  CHECK (backoff_delay (&full, 1, 0) == 0);
  CHECK (backoff_delay (&full, 1, 100 * NS_PER_MS) == 100 * NS_PER_MS);
  CHECK (backoff_delay (&equal, 1, 0) == 100 * NS_PER_MS);
  CHECK (backoff_delay (&equal, 1, 100 * NS_PER_MS) == 200 * NS_PER_MS);
  CHECK (backoff_delay (&equal, 1, 100 * NS_PER_MS + 1) == 100 * NS_PER_MS);

  check_uniform (&full, 1, 0, 100 * NS_PER_MS);
  check_uniform (&full, 4, 0, 800 * NS_PER_MS);
  check_uniform (&full, 20, 0, 10 * NS_PER_S);
  check_uniform (&equal, 1, 100 * NS_PER_MS, 200 * NS_PER_MS);
  check_uniform (&equal, 3, 400 * NS_PER_MS, 800 * NS_PER_MS);
  check_uniform (&equal, 5, 1500 * NS_PER_MS, 3 * NS_PER_S); /* 3.2s capped */
  check_uniform (&equal, UINT32_MAX, 1500 * NS_PER_MS, 3 * NS_PER_S);

  /* Odd ceilings: [ceiling/2, ceiling] still reaches the ceiling. */
  {
    const struct backoff odd = { .first = 3, .max = 3,
                                 .jitter = BACKOFF_EQUAL_JITTER };
    CHECK (backoff_delay (&odd, 1, 0) == 1);
    CHECK (backoff_delay (&odd, 1, 2) == 3);
    CHECK (backoff_delay (&odd, 1, 3) == 1);
  }

  /* No jitter: the ceiling itself, whatever the random number. */
  CHECK (backoff_delay (&none, 1, 999) == 100 * NS_PER_MS);
  CHECK (backoff_delay (&none, 2, 0) == 200 * NS_PER_MS);
  CHECK (backoff_delay (&none, 6, 0) == 3200 * NS_PER_MS);
  CHECK (backoff_delay (&none, 7, 0) == 5 * NS_PER_S);     /* 6.4s capped */
  CHECK (backoff_delay (&none, 1000, 0) == 5 * NS_PER_S);

  /* Saturation at the top of the range. */
  {
    const struct backoff huge = { .first = UINT64_MAX / 2 + 1,
                                  .max = UINT64_MAX,
                                  .jitter = BACKOFF_EQUAL_JITTER };
    CHECK (backoff_delay (&huge, 5, UINT64_MAX) >= UINT64_MAX / 2);
  }

  TEST_EXIT ();
}
