/* shardkit: durations such as "100ms", "2s", "1.5s", in nanoseconds.
 * GPL-3.0-or-later.
 */
#ifndef SHARDKIT_DURATION_H
#define SHARDKIT_DURATION_H

#include <stddef.h>
#include <stdint.h>

#define NS_PER_US UINT64_C(1000)
#define NS_PER_MS UINT64_C(1000000)
#define NS_PER_S  UINT64_C(1000000000)

/* The longest duration a parameter takes (params.h: param_duration):
 * longer is a typo, and nbdkit_nanosleep takes whole seconds as an
 * unsigned int.
 */
#define DURATION_MAX (24 * 3600 * NS_PER_S)

/* Parse a duration: a non-negative decimal number (at most 9 digits after
 * the point) followed by an optional unit: ns, us, ms, s, m (minutes) or h.
 * A bare number is in seconds, as in nbdkit's own retry filters.
 * Returns 0 and sets *ns, or -1 and points *why at a short reason (the
 * caller names the parameter).  Pure: no logging, safe in unit tests.
 */
extern int parse_duration (const char *str, uint64_t *ns, const char **why);

/* Format NS compactly for logs and messages ("250ms", "1.5s", "10s"). */
extern void format_duration (uint64_t ns, char *buf, size_t len);

#endif /* SHARDKIT_DURATION_H */
