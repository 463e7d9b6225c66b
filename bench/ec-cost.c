/* shardkit benchmark: what erasure coding costs per GiB of chunks.
 * GPL-3.0-or-later.
 *
 * For each K+M, the CPU seconds per GiB of chunk data (4 MiB chunks) of
 *
 *   - encode: cutting a chunk into K data and M parity fragments (every
 *     write of an ec:K+M volume pays it);
 *   - rebuild: rebuilding M missing data fragments from the survivors
 *     (a read with M locations down pays it), plus the join;
 *
 * through common/ec-codec.c (ISA-L's Cauchy Reed-Solomon).  Each figure
 * is the best of REPS passes.  Compare it with the nbdkit CPU per GiB
 * that bench/redundancy.sh measures for the same sets: the coding should
 * be a small fraction of it.  The rebuilt chunk is checked against the
 * original first.
 *
 *   make -C bench ec-cost && bench/ec-cost [REPS]
 *
 * Prints figures; never passes or fails on them.
 */
#include <config.h>

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ec-codec.h"

#define CHUNK (4u << 20)
#define PASS_CHUNKS 64          /* 256 MiB per pass */

static double
cpu_now (void)
{
  struct timespec ts;
  clock_gettime (CLOCK_PROCESS_CPUTIME_ID, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void
measure (unsigned k, unsigned m, int reps, const unsigned char *chunk)
{
  struct ec_codec *ec = ec_codec_new (k, m);
  size_t flen = ec_fragment_len (k, CHUNK);
  uint8_t *frags[EC_MAX_K + EC_MAX_M];
  bool present[EC_MAX_K + EC_MAX_M];
  unsigned char *out = malloc (CHUNK);
  double best_enc = 1e9, best_reb = 1e9;
  const double gib = (double) PASS_CHUNKS * CHUNK / (1u << 30);
  unsigned i;
  int r, c;

  if (ec == NULL || out == NULL) {
    perror ("ec-cost");
    exit (EXIT_FAILURE);
  }
  for (i = 0; i < k + m; ++i)
    if ((frags[i] = aligned_alloc (64, flen)) == NULL) {
      perror ("ec-cost");
      exit (EXIT_FAILURE);
    }
  for (r = 0; r < reps; ++r) {
    double t0 = cpu_now (), t1;
    for (c = 0; c < PASS_CHUNKS; ++c)
      ec_encode (ec, chunk, CHUNK, frags);
    t1 = cpu_now ();
    if (t1 - t0 < best_enc)
      best_enc = t1 - t0;
    /* The worst case: M data fragments lost. */
    t0 = cpu_now ();
    for (c = 0; c < PASS_CHUNKS; ++c) {
      for (i = 0; i < k + m; ++i)
        present[i] = i >= m;
      if (ec_rebuild (ec, frags, present, flen) == -1) {
        perror ("ec_rebuild");
        exit (EXIT_FAILURE);
      }
      ec_join (ec, frags, out, CHUNK);
    }
    t1 = cpu_now ();
    if (t1 - t0 < best_reb)
      best_reb = t1 - t0;
    if (memcmp (out, chunk, CHUNK) != 0) {
      fprintf (stderr, "ec-cost: %u+%u: the rebuilt chunk differs\n", k, m);
      exit (EXIT_FAILURE);
    }
  }
  printf ("%-6s %10.3f %10.2f %12.3f %10.2f\n", "", best_enc / gib,
          gib / best_enc, best_reb / gib, gib / best_reb);
  for (i = 0; i < k + m; ++i)
    free (frags[i]);
  free (out);
  ec_codec_free (ec);
}

int
main (int argc, char *argv[])
{
  const unsigned sets[][2] = { { 2, 1 }, { 4, 2 }, { 6, 3 }, { 8, 4 } };
  int reps = argc > 1 ? atoi (argv[1]) : 3;
  unsigned char *chunk = malloc (CHUNK);
  size_t i;

  if (chunk == NULL || reps < 1) {
    fprintf (stderr, "usage: ec-cost [REPS]\n");
    return EXIT_FAILURE;
  }
  srand (1);
  for (i = 0; i < CHUNK; ++i)
    chunk[i] = (unsigned char) rand ();
  printf ("4 MiB chunks, best of %d passes of %d chunks; CPU s/GiB of "
          "chunk data\n", reps, PASS_CHUNKS);
  printf ("%-6s %10s %10s %12s %10s\n", "set", "encode", "GiB/s",
          "rebuild M", "GiB/s");
  for (i = 0; i < sizeof sets / sizeof sets[0]; ++i) {
    printf ("%u+%u", sets[i][0], sets[i][1]);
    fflush (stdout);
    measure (sets[i][0], sets[i][1], reps, chunk);
  }
  free (chunk);
  return 0;
}
