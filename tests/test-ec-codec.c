/* shardkit unit test: the erasure-coding layer (common/ec-codec.c).
 * GPL-3.0-or-later.
 *
 * For several K+M sets and chunk lengths (including lengths that do not
 * divide by K, and a whole 4 MiB chunk): every choice of K surviving
 * fragments rebuilds every missing fragment, data and parity, byte for
 * byte, and the chunk joined from them is the chunk; fewer than K is
 * EIO and changes nothing; bad K and M are refused.
 */
#include <config.h>

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ec-codec.h"
#include "test-util.h"

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;

static uint8_t
rnd (void)
{
  rng_state ^= rng_state << 13;
  rng_state ^= rng_state >> 7;
  rng_state ^= rng_state << 17;
  return rng_state >> 24;
}

static unsigned combos_checked;

/* Try every subset of survivors of size exactly K (bitmask walk). */
static void
check_set (unsigned k, unsigned m, size_t len)
{
  const unsigned n = k + m;
  struct ec_codec *ec = ec_codec_new (k, m);
  size_t fl = ec_fragment_len (k, len), i;
  uint8_t *chunk = malloc (len), *back = malloc (len);
  uint8_t *orig[EC_MAX_K + EC_MAX_M], *work[EC_MAX_K + EC_MAX_M];
  uint32_t mask;

  CHECK (ec != NULL);
  CHECK (chunk != NULL && back != NULL);
  if (ec == NULL || chunk == NULL || back == NULL)
    exit (EXIT_FAILURE);
  CHECK (fl * k >= len && fl % 64 == 0);
  for (i = 0; i < len; ++i)
    chunk[i] = rnd ();
  for (i = 0; i < n; ++i) {
    orig[i] = malloc (fl);
    work[i] = malloc (fl);
    if (orig[i] == NULL || work[i] == NULL)
      exit (EXIT_FAILURE);
  }
  CHECK (ec_encode (ec, chunk, len, orig) == 0);

  /* The data fragments are the chunk itself, in order. */
  ec_join (ec, orig, back, len);
  CHECK (memcmp (back, chunk, len) == 0);

  for (mask = 0; mask < (1u << n); ++mask) {
    bool present[EC_MAX_K + EC_MAX_M];
    unsigned have = __builtin_popcount (mask);

    if (have != k && have != k - 1)
      continue;
    for (i = 0; i < n; ++i) {
      present[i] = mask & (1u << i);
      if (present[i])
        memcpy (work[i], orig[i], fl);
      else
        memset (work[i], 0xa5, fl);     /* garbage where it is missing */
    }
    if (have < k) {
      /* Too few: refused, and nothing present is touched. */
      errno = 0;
      CHECK (ec_rebuild (ec, work, present, fl) == -1 && errno == EIO);
      for (i = 0; i < n; ++i)
        if (present[i])
          CHECK (memcmp (work[i], orig[i], fl) == 0);
      continue;
    }
    CHECK (ec_rebuild (ec, work, present, fl) == 0);
    for (i = 0; i < n; ++i)
      if (memcmp (work[i], orig[i], fl) != 0) {
        fprintf (stderr, "%u+%u len %zu survivors 0x%x: fragment %zu "
                 "rebuilt wrong\n", k, m, len, mask, i);
        test_failures++;
      }
    ec_join (ec, work, back, len);
    CHECK (memcmp (back, chunk, len) == 0);
    combos_checked++;
  }

  for (i = 0; i < n; ++i) {
    free (orig[i]);
    free (work[i]);
  }
  free (chunk);
  free (back);
  ec_codec_free (ec);
}

int
main (void)
{
  static const struct { unsigned k, m; } sets[] = {
    { 1, 1 }, { 2, 1 }, { 2, 2 }, { 3, 2 }, { 4, 2 }, { 4, 3 }, { 6, 3 },
    { 8, 4 }, { 10, 4 },
  };
  static const size_t lens[] = { 1, 63, 64, 4095, 65536 + 7, 1 << 20 };
  size_t s, l;

  for (s = 0; s < sizeof sets / sizeof sets[0]; ++s)
    for (l = 0; l < sizeof lens / sizeof lens[0]; ++l)
      check_set (sets[s].k, sets[s].m, lens[l]);
  /* A whole default-size chunk through the sets the issue names. */
  check_set (2, 1, 4 << 20);
  check_set (4, 2, 4 << 20);

  errno = 0;
  CHECK (ec_codec_new (0, 1) == NULL && errno == EINVAL);
  CHECK (ec_codec_new (1, 0) == NULL && errno == EINVAL);
  CHECK (ec_codec_new (EC_MAX_K + 1, 1) == NULL && errno == EINVAL);
  CHECK (ec_codec_new (2, EC_MAX_M + 1) == NULL && errno == EINVAL);
  CHECK (ec_fragment_len (4, 4 << 20) == 1 << 20);
  CHECK (ec_fragment_len (3, 100) == 64);

  printf ("%u survivor sets rebuilt\n", combos_checked);
  TEST_EXIT ();
}
