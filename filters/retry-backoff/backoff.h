/* shardkit retry-backoff filter: exponential backoff with full jitter.
 * GPL-3.0-or-later.
 */
#ifndef RETRY_BACKOFF_BACKOFF_H
#define RETRY_BACKOFF_BACKOFF_H

#include <stdint.h>

/* The ceiling of the delay before retry number RETRY (1 = the first
 * retry): BASE * 2^(RETRY-1), capped at MAX.  Saturates, never overflows.
 */
extern uint64_t backoff_ceiling (uint64_t base, uint64_t max, unsigned retry);

/* Full jitter: a delay drawn uniformly from [0, ceiling].  Spreading the
 * retries of many connections over the whole window keeps them from
 * hitting a recovering server in lock step (the usual "thundering herd"
 * after an outage), at the cost of sometimes retrying sooner.
 * R is a uniformly distributed 64-bit random number.
 */
extern uint64_t backoff_jitter (uint64_t ceiling, uint64_t r);

/* A fast per-thread random number (not for anything secret). */
extern uint64_t backoff_random (void);

#endif
