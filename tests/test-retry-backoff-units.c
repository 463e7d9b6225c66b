/* shardkit: unit tests of the retry-backoff filter's pure parts: the
 * duration parser, the backoff arithmetic and the errno policy.
 * GPL-3.0-or-later.
 */
#include <config.h>

#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "backoff.h"
#include "duration.h"
#include "errno-policy.h"
#include "test-util.h"

static uint64_t
dur (const char *s)
{
  uint64_t ns = 0;
  const char *why = NULL;

  if (parse_duration (s, &ns, &why) == -1) {
    fprintf (stderr, "parse_duration (\"%s\") failed: %s\n", s, why);
    return UINT64_MAX;
  }
  return ns;
}

static int
dur_fails (const char *s)
{
  uint64_t ns = 12345;
  const char *why = NULL;
  int r = parse_duration (s, &ns, &why);

  if (r == 0)
    fprintf (stderr, "parse_duration (\"%s\") = %" PRIu64 ", expected an "
             "error\n", s, ns);
  return r == -1 && why != NULL && *why && ns == 12345;
}

static void
test_duration (void)
{
  char buf[32];

  CHECK (dur ("100ms") == 100 * NS_PER_MS);
  CHECK (dur ("2s") == 2 * NS_PER_S);
  CHECK (dur ("1.5s") == 1500 * NS_PER_MS);
  CHECK (dur ("0.1s") == 100 * NS_PER_MS);    /* exact, no float rounding */
  CHECK (dur ("0.3s") == 300 * NS_PER_MS);
  CHECK (dur (".5s") == 500 * NS_PER_MS);
  CHECK (dur ("3.") == 3 * NS_PER_S);
  CHECK (dur ("10") == 10 * NS_PER_S);        /* bare number: seconds */
  CHECK (dur ("0") == 0);
  CHECK (dur ("0ms") == 0);
  CHECK (dur ("250us") == 250 * NS_PER_US);
  CHECK (dur ("1.5ms") == 1500 * NS_PER_US);
  CHECK (dur ("7ns") == 7);
  CHECK (dur ("2m") == 120 * NS_PER_S);
  CHECK (dur ("1.5m") == 90 * NS_PER_S);
  CHECK (dur ("1min") == 60 * NS_PER_S);
  CHECK (dur ("1h") == 3600 * NS_PER_S);
  CHECK (dur ("0.000000001s") == 1);
  CHECK (dur ("1.123456789s") == UINT64_C(1123456789));
  CHECK (dur (" 2s ") == 2 * NS_PER_S);
  CHECK (dur ("2 s") == 2 * NS_PER_S);
  CHECK (dur ("+2s") == 2 * NS_PER_S);

  CHECK (dur_fails (""));
  CHECK (dur_fails ("   "));
  CHECK (dur_fails ("s"));
  CHECK (dur_fails ("ms"));
  CHECK (dur_fails ("."));
  CHECK (dur_fails ("-1s"));
  CHECK (dur_fails ("1x"));
  CHECK (dur_fails ("1sec2"));
  CHECK (dur_fails ("1s 2"));
  CHECK (dur_fails ("1.2.3s"));
  CHECK (dur_fails ("abc"));
  CHECK (dur_fails ("1.5ns"));                /* finer than a nanosecond */
  CHECK (dur_fails ("0.0000000001s"));        /* 10 digits after the point */
  CHECK (dur_fails ("99999999999999999999s"));
  CHECK (dur_fails ("18446744073709551615s"));
  CHECK (dur_fails ("5124096h"));             /* > 2^64 ns */
  CHECK (dur ("18446744073709551615ns") == UINT64_MAX);

  format_duration (100 * NS_PER_MS, buf, sizeof buf);
  CHECK (strcmp (buf, "100ms") == 0);
  format_duration (10 * NS_PER_S, buf, sizeof buf);
  CHECK (strcmp (buf, "10s") == 0);
  format_duration (1500 * NS_PER_MS, buf, sizeof buf);
  CHECK (strcmp (buf, "1.5s") == 0);
  format_duration (0, buf, sizeof buf);
  CHECK (strcmp (buf, "0s") == 0);
  format_duration (437500, buf, sizeof buf);
  CHECK (strcmp (buf, "0.438ms") == 0);
}

static void
test_backoff (void)
{
  const uint64_t base = 100 * NS_PER_MS, max = 10 * NS_PER_S;
  unsigned i, n;
  uint64_t lo, hi, sum;

  CHECK (backoff_ceiling (base, max, 0) == 0);
  CHECK (backoff_ceiling (base, max, 1) == base);
  CHECK (backoff_ceiling (base, max, 2) == 2 * base);
  CHECK (backoff_ceiling (base, max, 3) == 4 * base);
  CHECK (backoff_ceiling (base, max, 7) == 64 * base);
  CHECK (backoff_ceiling (base, max, 8) == max);       /* 12.8s capped */
  CHECK (backoff_ceiling (base, max, 1000) == max);
  CHECK (backoff_ceiling (base, max, UINT32_MAX) == max);
  CHECK (backoff_ceiling (UINT64_MAX / 2 + 1, UINT64_MAX, 5) == UINT64_MAX);
  CHECK (backoff_ceiling (0, max, 5) == 0);
  CHECK (backoff_ceiling (base, base, 5) == base);

  /* Full jitter: every value in [0, ceiling], and spread over the whole
   * range rather than bunched at the top (which would be plain
   * exponential backoff) or the bottom.
   */
  CHECK (backoff_jitter (0, 12345) == 0);
  CHECK (backoff_jitter (10, 10) == 10);
  CHECK (backoff_jitter (10, 11) == 0);
  CHECK (backoff_jitter (UINT64_MAX, 77) == 77);
  lo = UINT64_MAX;
  hi = 0;
  sum = 0;
  n = 100000;
  for (i = 0; i < n; i++) {
    uint64_t d = backoff_jitter (base, backoff_random ());

    CHECK (d <= base);
    if (d < lo) lo = d;
    if (d > hi) hi = d;
    sum += d;
  }
  CHECK (lo < base / 100);
  CHECK (hi > base - base / 100);
  /* Mean of U[0, base] is base/2; with 100000 draws it is within 1%. */
  CHECK (sum / n > base / 2 - base / 100 && sum / n < base / 2 + base / 100);
}

static void
test_errno_policy (void)
{
  struct errno_policy p;
  char why[128];
  size_t i;
  static const int transient[] = {
    EIO, ETIMEDOUT, EAGAIN, EWOULDBLOCK, ESHUTDOWN, ECONNRESET,
    ECONNREFUSED, ENOTCONN, EPIPE,
  };
  static const int permanent[] = {
    ENOSPC, EROFS, EINVAL, EPERM, EACCES, EFBIG, ENOTSUP, EOPNOTSUPP,
  };

  errno_policy_init (&p);
  for (i = 0; i < sizeof transient / sizeof transient[0]; i++)
    CHECK (errno_policy_is_transient (&p, transient[i]));
  for (i = 0; i < sizeof permanent / sizeof permanent[0]; i++) {
    CHECK (!errno_policy_is_transient (&p, permanent[i]));
    CHECK (errno_is_permanent (permanent[i]));
  }
  CHECK (!errno_policy_is_transient (&p, ENOMEM));
  CHECK (!errno_policy_is_transient (&p, ENOENT));
  CHECK (!errno_policy_is_transient (&p, 0));
  CHECK (!errno_policy_is_transient (&p, -5));
  CHECK (!errno_policy_is_transient (&p, 100000));

  CHECK (errno_policy_add_list (&p, "ENOMEM,EBUSY", why, sizeof why) == 0);
  CHECK (errno_policy_is_transient (&p, ENOMEM));
  CHECK (errno_policy_is_transient (&p, EBUSY));
  CHECK (errno_policy_add_list (&p, " enoent , 116", why, sizeof why) == 0);
  CHECK (errno_policy_is_transient (&p, ENOENT));
  CHECK (errno_policy_is_transient (&p, 116));

  CHECK (errno_policy_add_list (&p, "ENOSPC", why, sizeof why) == -1);
  CHECK (strstr (why, "ENOSPC") != NULL);
  CHECK (errno_policy_add_list (&p, "EIO,EROFS", why, sizeof why) == -1);
  CHECK (errno_policy_add_list (&p, "EOPNOTSUPP", why, sizeof why) == -1);
  CHECK (errno_policy_add_list (&p, "EBOGUS", why, sizeof why) == -1);
  CHECK (strstr (why, "EBOGUS") != NULL);
  CHECK (errno_policy_add_list (&p, "", why, sizeof why) == -1);
  CHECK (errno_policy_add_list (&p, "EIO,", why, sizeof why) == -1);
  CHECK (errno_policy_add_list (&p, "EIO,,EPIPE", why, sizeof why) == -1);
  CHECK (errno_policy_add_list (&p, "0", why, sizeof why) == -1);
  CHECK (errno_policy_add_list (&p, "99999", why, sizeof why) == -1);
  CHECK (!errno_policy_is_transient (&p, ENOSPC));

  CHECK (strcmp (errno_name (EIO), "EIO") == 0);
  CHECK (strcmp (errno_name (ESHUTDOWN), "ESHUTDOWN") == 0);
  CHECK (errno_name (9999) == NULL);
}

int
main (void)
{
  test_duration ();
  test_backoff ();
  test_errno_policy ();
  TEST_EXIT ();
}
