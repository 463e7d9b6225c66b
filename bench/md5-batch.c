/* shardkit benchmark: CPU seconds per GiB of MD5 when N threads hash
 * 4 MiB messages at once, through OpenSSL (each thread on its own) and
 * through s3-object's md5-batch (threads share its SIMD lanes); then the
 * same for MD5 and SHA-256 of each message (what a chunk PUT needs):
 * OpenSSL's two digests one after the other, against md5_sha256_batch
 * (SHA-256 in the same pass as MD5 where it can).  Each run hashes
 * 192 MiB in all and checks the digests against OpenSSL's.
 *
 *   make -C bench md5-batch && bench/md5-batch [THREADS...]
 *
 * (default thread counts 1 2 3 4 8 16).  Prints figures, never passes or
 * fails on them.
 * GPL-3.0-or-later.
 */
#include <config.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>

#include "md5-batch.h"
#include "md5-lanes.h"
#include "md5-sha256.h"

#define MSG (4 * 1024 * 1024)
#define TOTAL_MSGS 48           /* 192 MiB: divisible by 1, 2, 3, 4, 8, 16 */

static int use_batch, with_sha, per_thread, wrong;
static unsigned char *msgs[TOTAL_MSGS];  /* one message per thread */
static unsigned char digests[TOTAL_MSGS][16];
static unsigned char sha_digests[TOTAL_MSGS][32];

static void *
hash_messages (void *arg)
{
  size_t k = (size_t) arg;
  int i;

  for (i = 0; i < per_thread; ++i) {
    if (use_batch && with_sha)
      md5_sha256_batch (msgs[k], MSG, digests[k], sha_digests[k]);
    else if (use_batch)
      md5_batch (msgs[k], MSG, digests[k]);
    else {
      EVP_Digest (msgs[k], MSG, digests[k], NULL, EVP_md5 (), NULL);
      if (with_sha)
        EVP_Digest (msgs[k], MSG, sha_digests[k], NULL, EVP_sha256 (),
                    NULL);
    }
  }
  return NULL;
}

/* CPU seconds of the process per GiB hashed. */
static double
run (int threads, int batch, int sha)
{
  pthread_t t[64];
  struct timespec c0, c1;
  int i;

  use_batch = batch;
  with_sha = sha;
  memset (sha_digests, 0, sizeof sha_digests);
  per_thread = TOTAL_MSGS / threads;
  clock_gettime (CLOCK_PROCESS_CPUTIME_ID, &c0);
  for (i = 0; i < threads; ++i)
    if (pthread_create (&t[i], NULL, hash_messages, (void *) (size_t) i))
      abort ();
  for (i = 0; i < threads; ++i)
    pthread_join (t[i], NULL);
  clock_gettime (CLOCK_PROCESS_CPUTIME_ID, &c1);
  for (i = 0; i < threads; ++i) {
    unsigned char want[16];
    EVP_Digest (msgs[i], MSG, want, NULL, EVP_md5 (), NULL);
    if (memcmp (digests[i], want, 16) != 0)
      wrong++;
    if (sha) {
      unsigned char want_sha[32];
      EVP_Digest (msgs[i], MSG, want_sha, NULL, EVP_sha256 (), NULL);
      if (memcmp (sha_digests[i], want_sha, 32) != 0)
        wrong++;
    }
  }
  return ((c1.tv_sec - c0.tv_sec) + (c1.tv_nsec - c0.tv_nsec) / 1e9) *
    (1024.0 * 1024 * 1024) / ((double) per_thread * threads * MSG);
}

int
main (int argc, char **argv)
{
  static const int defaults[] = { 1, 2, 3, 4, 8, 16 };
  int i, n = argc > 1 ? argc - 1 : (int) (sizeof defaults / sizeof *defaults);

  unsigned seed = 1;
  size_t k, j;

  for (k = 0; k < TOTAL_MSGS; ++k) {
    if ((msgs[k] = malloc (MSG)) == NULL)
      abort ();
    for (j = 0; j < MSG; ++j)
      msgs[k][j] = (unsigned char) rand_r (&seed);
  }
  printf ("AVX-512 lanes: %s; SHA extensions: %s\n",
          md5_lanes_supported () ? "yes" : "no (md5-batch is OpenSSL)",
          md5_sha256_supported () ? "yes" : "no");
  printf ("%8s %14s %14s %18s %18s\n", "", "MD5", "MD5",
          "MD5 + SHA-256", "MD5 + SHA-256");
  printf ("%8s %14s %14s %18s %18s  (CPU s per GiB)\n", "threads",
          "OpenSSL", "md5-batch", "OpenSSL", "md5_sha256_batch");
  for (i = 0; i < n; ++i) {
    int th = argc > 1 ? atoi (argv[i + 1]) : defaults[i];
    double a, b, c, d;
    if (th < 1 || th > 48 || TOTAL_MSGS % th) {
      fprintf (stderr, "threads: a divisor of %d\n", TOTAL_MSGS);
      return 2;
    }
    a = run (th, 0, 0);
    b = run (th, 1, 0);
    c = run (th, 0, 1);
    d = run (th, 1, 1);
    printf ("%8d %14.2f %14.2f %18.2f %18.2f\n", th, a, b, c, d);
  }
  if (wrong) {
    fprintf (stderr, "md5-batch: %d wrong digests\n", wrong);
    return 1;
  }
  return 0;
}
