/* shardkit: exponential backoff with jitter, for every retry loop in the
 * suite (retry-backoff's requests and opens, s3-object's HTTP requests,
 * chunk-cache's write-back), each with its own parameters.
 * GPL-3.0-or-later.
 *
 * Delays are in nanoseconds (see duration.h).  The functions are pure
 * but for backoff_random, so they can be unit tested; sleeping is the
 * caller's, with nbdkit_nanosleep so that a shutdown ends the sleep:
 *
 *   static const struct backoff b = {
 *     .first = 200 * NS_PER_MS, .max = 3 * NS_PER_S,
 *     .jitter = BACKOFF_EQUAL_JITTER,
 *   };
 *   uint64_t d = backoff_delay (&b, retry, backoff_random ());
 *   if (nbdkit_nanosleep (d / NS_PER_S, d % NS_PER_S) == -1)
 *     ... shutting down: give up ...
 */
#ifndef SHARDKIT_BACKOFF_H
#define SHARDKIT_BACKOFF_H

#include <stdint.h>

/* Where in [0, ceiling] the delay falls. */
enum backoff_jitter {
  /* Uniform in [0, ceiling]: spreading the retries of many connections
   * over the whole window keeps them from hitting a recovering server in
   * lock step (the "thundering herd" after an outage), at the cost of
   * sometimes retrying sooner.  retry-backoff's.
   */
  BACKOFF_FULL_JITTER,
  /* Uniform in [ceiling/2, ceiling]: spread, but never much sooner than
   * the ceiling.  s3-object's HTTP retries.
   */
  BACKOFF_EQUAL_JITTER,
  /* Exactly the ceiling: for a retry that is not in step with others'
   * anyway (chunk-cache's write-back, one timer per block).
   */
  BACKOFF_NO_JITTER,
};

/* A backoff schedule.  The ceiling before retry n (1 = the first retry)
 * is first * 2^(n-1), capped at max.
 */
struct backoff {
  uint64_t first;               /* ns: ceiling before the first retry */
  uint64_t max;                 /* ns: largest ceiling */
  enum backoff_jitter jitter;
};

/* The delay before retry number RETRY (1 = the first retry; 0 gives 0)
 * under schedule B.  R is a uniformly distributed 64-bit random number
 * (backoff_random (), or any other source; unused with
 * BACKOFF_NO_JITTER).
 */
extern uint64_t backoff_delay (const struct backoff *b, unsigned retry,
                               uint64_t r);

/* The ceiling of the delay before retry number RETRY (1 = the first
 * retry): BASE * 2^(RETRY-1), capped at MAX.  Saturates, never overflows.
 */
extern uint64_t backoff_ceiling (uint64_t base, uint64_t max, unsigned retry);

/* Full jitter: a delay drawn uniformly from [0, ceiling], given R, a
 * uniformly distributed 64-bit random number.
 */
extern uint64_t backoff_jitter (uint64_t ceiling, uint64_t r);

/* A fast per-thread random number (not for anything secret), seeded from
 * the kernel, so that threads and processes do not draw the same delays.
 */
extern uint64_t backoff_random (void);

#endif /* SHARDKIT_BACKOFF_H */
