/* shardkit: durations such as "100ms", "2s", "1.5s" (see duration.h).
 * GPL-3.0-or-later.
 *
 * nbdkit_parse_* has no duration parser, and nbdkit's retry filters
 * take whole seconds, which is far too coarse for backoff against a local
 * store or a nearby S3 endpoint, so we parse our own.  Integer arithmetic
 * only: "0.1s" must be exactly 100000000 ns, not 99999999.
 */
#include <config.h>

#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "duration.h"

struct unit {
  const char *name;
  uint64_t ns;
};

/* Longest names first is not needed: names are matched whole. */
static const struct unit units[] = {
  { "ns", 1 },
  { "us", NS_PER_US },
  { "ms", NS_PER_MS },
  { "s", NS_PER_S },
  { "sec", NS_PER_S },
  { "m", 60 * NS_PER_S },
  { "min", 60 * NS_PER_S },
  { "h", 3600 * NS_PER_S },
};

int
parse_duration (const char *str, uint64_t *ns, const char **why)
{
  const char *p = str;
  uint64_t whole = 0, frac = 0, frac_scale = 1, mult = NS_PER_S, r;
  size_t ndigits = 0, nfrac = 0, i;

  while (isspace ((unsigned char) *p))
    p++;
  if (*p == '-') {
    *why = "a duration cannot be negative";
    return -1;
  }
  if (*p == '+')
    p++;
  for (; isdigit ((unsigned char) *p); p++, ndigits++) {
    uint64_t d = (uint64_t) (*p - '0');

    if (whole > (UINT64_MAX - d) / 10) {
      *why = "too large";
      return -1;
    }
    whole = whole * 10 + d;
  }
  if (*p == '.') {
    p++;
    for (; isdigit ((unsigned char) *p); p++, nfrac++) {
      if (nfrac >= 9) {
        *why = "more than 9 digits after the point";
        return -1;
      }
      frac = frac * 10 + (uint64_t) (*p - '0');
      frac_scale *= 10;
    }
  }
  if (ndigits == 0 && nfrac == 0) {
    *why = "not a duration (e.g. 100ms, 2s, 1.5s)";
    return -1;
  }

  /* The unit, if any ("2s" or "2 s"); trailing blanks are tolerated. */
  while (isspace ((unsigned char) *p))
    p++;
  if (*p != '\0' && !isspace ((unsigned char) *p)) {
    const char *u = p;
    size_t ulen;

    while (*p && !isspace ((unsigned char) *p))
      p++;
    ulen = (size_t) (p - u);
    for (i = 0; i < sizeof units / sizeof units[0]; i++)
      if (strlen (units[i].name) == ulen &&
          strncmp (units[i].name, u, ulen) == 0)
        break;
    if (i == sizeof units / sizeof units[0]) {
      *why = "unknown unit (use ns, us, ms, s, m or h)";
      return -1;
    }
    mult = units[i].ns;
  }
  while (isspace ((unsigned char) *p))
    p++;
  if (*p != '\0') {
    *why = "trailing characters after the unit";
    return -1;
  }

  /* whole * mult + frac * mult / frac_scale, with overflow checks.  The
   * fractional part must come out whole in nanoseconds ("1.5ns" does not).
   */
  if (whole > UINT64_MAX / mult) {
    *why = "too large";
    return -1;
  }
  r = whole * mult;
  if (frac) {
    uint64_t f;

    /* frac < frac_scale <= 1e9 and mult <= 3.6e12: the product could
     * overflow for hours, so divide first where that is exact.
     */
    if (mult % frac_scale == 0)
      f = frac * (mult / frac_scale);
    else if ((frac * mult) % frac_scale == 0)
      f = frac * mult / frac_scale;
    else {
      *why = "finer than a nanosecond";
      return -1;
    }
    if (r > UINT64_MAX - f) {
      *why = "too large";
      return -1;
    }
    r += f;
  }
  *ns = r;
  return 0;
}

void
format_duration (uint64_t ns, char *buf, size_t len)
{
  if (ns % NS_PER_S == 0)
    snprintf (buf, len, "%" PRIu64 "s", ns / NS_PER_S);
  else if (ns >= NS_PER_S)
    snprintf (buf, len, "%.3gs", (double) ns / NS_PER_S);
  else if (ns % NS_PER_MS == 0)
    snprintf (buf, len, "%" PRIu64 "ms", ns / NS_PER_MS);
  else
    snprintf (buf, len, "%.3gms", (double) ns / NS_PER_MS);
}
