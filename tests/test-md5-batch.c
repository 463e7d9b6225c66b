/* Unit test: the multi-lane MD5 of s3-object against OpenSSL's MD5:
 * the lanes on 16 messages of different lengths (every padding case),
 * both lane kernels over many blocks from random states, the one- and
 * two-message scalar paths, md5_batch alone at the lengths around every
 * boundary, and md5_batch from 20 threads at once (the way concurrent
 * chunk PUTs use it), which must have used more than 8 lanes at a time.
 * The same for SHA-256 computed beside MD5 (md5-sha256.c and
 * md5_sha256_batch), against OpenSSL's SHA-256, alone and from 20
 * threads of which about half want it.
 * GPL-3.0-or-later.
 */
#include <config.h>

#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* SHA256_Update on a context with a chosen state: the reference for
 * the fused kernels from random states.
 */
#define OPENSSL_SUPPRESS_DEPRECATED 1
#include <openssl/evp.h>
#include <openssl/sha.h>

#include "md5-batch.h"
#include "md5-lanes.h"
#include "md5-sha256.h"
#include "test-util.h"

static unsigned char *
random_bytes (size_t len, unsigned *seed)
{
  unsigned char *p = malloc (len ? len : 1);
  size_t i;

  if (p == NULL) {
    perror ("malloc");
    exit (EXIT_FAILURE);
  }
  for (i = 0; i < len; ++i)
    p[i] = (unsigned char) rand_r (seed);
  return p;
}

static int
same_as_openssl (const void *data, size_t len, const unsigned char got[16])
{
  unsigned char want[16];

  EVP_Digest (data, len, want, NULL, EVP_md5 (), NULL);
  return memcmp (want, got, 16) == 0;
}

static int
sha256_same_as_openssl (const void *data, size_t len,
                        const unsigned char got[32])
{
  unsigned char want[32];

  EVP_Digest (data, len, want, NULL, EVP_sha256 (), NULL);
  return memcmp (want, got, 32) == 0;
}

/* OpenSSL's SHA-256 block function from STATE over NBLOCKS blocks. */
static void
sha256_blocks_openssl (uint32_t state[8], const unsigned char *p,
                       size_t nblocks)
{
  SHA256_CTX ctx;

  SHA256_Init (&ctx);
  memcpy (ctx.h, state, sizeof ctx.h);
  SHA256_Update (&ctx, p, 64 * nblocks);
  memcpy (state, ctx.h, sizeof ctx.h);
}

/* md5_sha256_blocks and _x2 from random states, SHA-256 reading other
 * blocks than MD5 (as when it lags behind), against OpenSSL.
 */
static void
test_fused_kernels (void)
{
  unsigned seed = 2024;
  unsigned char *m0, *m1;
  uint32_t md5a[4], md5b[4], wmd5a[4], wmd5b[4];
  uint32_t shaa[8], shab[8], wshaa[8], wshab[8];
  size_t i;

  if (!md5_sha256_supported ()) {
    printf ("no SHA extensions: fused kernels not tested\n");
    return;
  }
  m0 = random_bytes (64 * 200, &seed);
  m1 = random_bytes (64 * 200, &seed);
  for (i = 0; i < 4; ++i) {
    md5a[i] = wmd5a[i] = (uint32_t) rand_r (&seed) * 2654435761u;
    md5b[i] = wmd5b[i] = (uint32_t) rand_r (&seed) * 2246822519u;
  }
  for (i = 0; i < 8; ++i) {
    shaa[i] = wshaa[i] = (uint32_t) rand_r (&seed) * 3266489917u;
    shab[i] = wshab[i] = (uint32_t) rand_r (&seed) * 668265263u;
  }
  /* One message: MD5 at block 100, SHA-256 at block 37. */
  md5_sha256_blocks (md5a, m0 + 64 * 100, shaa, m0 + 64 * 37, 63);
  md5_blocks_scalar (wmd5a, m0 + 64 * 100, 63);
  sha256_blocks_openssl (wshaa, m0 + 64 * 37, 63);
  CHECK (memcmp (md5a, wmd5a, sizeof md5a) == 0);
  CHECK (memcmp (shaa, wshaa, sizeof shaa) == 0);
  /* Two messages, each lagging differently. */
  md5_sha256_blocks_x2 (md5a, m0 + 64 * 10, shaa, m0 + 64 * 3,
                        md5b, m1 + 64 * 50, shab, m1, 91);
  md5_blocks_scalar (wmd5a, m0 + 64 * 10, 91);
  sha256_blocks_openssl (wshaa, m0 + 64 * 3, 91);
  md5_blocks_scalar (wmd5b, m1 + 64 * 50, 91);
  sha256_blocks_openssl (wshab, m1, 91);
  CHECK (memcmp (md5a, wmd5a, sizeof md5a) == 0);
  CHECK (memcmp (shaa, wshaa, sizeof shaa) == 0);
  CHECK (memcmp (md5b, wmd5b, sizeof md5b) == 0);
  CHECK (memcmp (shab, wshab, sizeof shab) == 0);
  /* From the initial states. */
  memcpy (shaa, sha256_iv, sizeof shaa);
  memcpy (md5a, md5_iv, sizeof md5a);
  md5_sha256_blocks (md5a, m0, shaa, m0, 1);
  memcpy (wshaa, sha256_iv, sizeof wshaa);
  memcpy (wmd5a, md5_iv, sizeof wmd5a);
  sha256_blocks_openssl (wshaa, m0, 1);
  md5_blocks_scalar (wmd5a, m0, 1);
  CHECK (memcmp (shaa, wshaa, sizeof shaa) == 0);
  CHECK (memcmp (md5a, wmd5a, sizeof md5a) == 0);
  free (m0);
  free (m1);
}

/* Sixteen messages through md5_lanes_blocks directly, each with its own
 * length, the short ones finishing while the long ones go on.
 */
static void
test_lanes (void)
{
  static const size_t lens[MD5_LANES] = {
    0, 1, 55, 56, 57, 63, 64, 65, 119, 120, 128, 1000, 4096, 65535,
    65536, 300001
  };
  unsigned seed = 7;
  unsigned char *msg[MD5_LANES], pad[MD5_LANES][128], out[16];
  uint32_t state[MD5_LANES][4];
  size_t data_left[MD5_LANES], pad_n[MD5_LANES], pad_left[MD5_LANES];
  const unsigned char *at[MD5_LANES];
  static unsigned char idle[64];
  size_t l, active;

  if (!md5_lanes_supported ()) {
    printf ("test_lanes: no AVX-512 here, lanes not tested\n");
    return;
  }
  for (l = 0; l < MD5_LANES; ++l) {
    msg[l] = random_bytes (lens[l], &seed);
    memcpy (state[l], md5_iv, sizeof state[l]);
    data_left[l] = lens[l] / 64;
    at[l] = msg[l];
    pad_n[l] = pad_left[l] = md5_padding (msg[l] + lens[l] / 64 * 64,
                                          lens[l], pad[l]);
  }
  /* One block per pass, lanes that are done read zeros. */
  do {
    const unsigned char *data[MD5_LANES];
    active = 0;
    for (l = 0; l < MD5_LANES; ++l) {
      if (data_left[l] > 0)
        data[l] = at[l];
      else if (pad_left[l] > 0)
        data[l] = pad[l] + 64 * (pad_n[l] - pad_left[l]);
      else {
        data[l] = idle;
        continue;
      }
      active++;
    }
    if (active == 0)
      break;
    {
      uint32_t saved[MD5_LANES][4];
      memcpy (saved, state, sizeof saved);
      md5_lanes_blocks (state, data, 1);
      for (l = 0; l < MD5_LANES; ++l) {
        if (data[l] == idle)
          memcpy (state[l], saved[l], sizeof state[l]);
        else if (data_left[l] > 0) {
          data_left[l]--;
          at[l] += 64;
        }
        else
          pad_left[l]--;
      }
    }
  } while (active);
  for (l = 0; l < MD5_LANES; ++l) {
    md5_state_bytes (state[l], out);
    if (!same_as_openssl (msg[l], lens[l], out))
      fprintf (stderr, "lane %zu, %zu bytes: wrong digest\n", l, lens[l]);
    CHECK (same_as_openssl (msg[l], lens[l], out));
    free (msg[l]);
  }
}

/* The two-message scalar path and the single one against OpenSSL. */
static void
test_scalar (void)
{
  enum { BLOCKS = 1000 };
  unsigned seed = 3;
  unsigned char *m0 = random_bytes (BLOCKS * 64, &seed);
  unsigned char *m1 = random_bytes (BLOCKS * 64, &seed);
  unsigned char pad[128], out[16];
  uint32_t s0[4], s1[4];
  size_t nb;

  memcpy (s0, md5_iv, sizeof s0);
  memcpy (s1, md5_iv, sizeof s1);
  md5_blocks_scalar_x2 (s0, s1, m0, m1, BLOCKS / 2);
  md5_blocks_scalar_x2 (s0, s1, m0 + BLOCKS / 2 * 64, m1 + BLOCKS / 2 * 64,
                        BLOCKS - BLOCKS / 2);
  nb = md5_padding (m0 + BLOCKS * 64, BLOCKS * 64, pad);
  md5_blocks_scalar (s0, pad, nb);
  md5_blocks_scalar (s1, pad, nb);
  md5_state_bytes (s0, out);
  CHECK (same_as_openssl (m0, BLOCKS * 64, out));
  md5_state_bytes (s1, out);
  CHECK (same_as_openssl (m1, BLOCKS * 64, out));
  free (m0);
  free (m1);
}

/* Both lane kernels over several blocks at once (each block at its own
 * offset in every lane), from random states, against the single-stream
 * path lane by lane; lanes 8-15 are ignored by the 8-lane kernel.
 */
static void
test_kernels_multiblock (void)
{
  enum { BLOCKS = 37 };
  unsigned seed = 11;
  unsigned char *m[MD5_LANES];
  uint32_t start[MD5_LANES][4], got[MD5_LANES][4], want[4];
  const unsigned char *data[MD5_LANES];
  size_t l, i;
  int kernel;

  if (!md5_lanes_supported ())
    return;
  for (l = 0; l < MD5_LANES; ++l) {
    m[l] = random_bytes (BLOCKS * 64, &seed);
    data[l] = m[l];
    for (i = 0; i < 4; ++i)
      start[l][i] = (uint32_t) rand_r (&seed) ^ ((uint32_t) rand_r (&seed) << 16);
  }
  for (kernel = 0; kernel < 2; ++kernel) {
    size_t lanes = kernel == 0 ? MD5_LANES : MD5_LANES / 2;
    memcpy (got, start, sizeof got);
    if (kernel == 0)
      md5_lanes_blocks (got, data, BLOCKS);
    else
      md5_lanes_blocks_8 (got, data, BLOCKS);
    for (l = 0; l < lanes; ++l) {
      memcpy (want, start[l], sizeof want);
      md5_blocks_scalar (want, m[l], BLOCKS);
      if (memcmp (want, got[l], sizeof want) != 0)
        fprintf (stderr, "%s kernel, lane %zu: wrong state after %d blocks\n",
                 kernel == 0 ? "16-lane" : "8-lane", l, BLOCKS);
      CHECK (memcmp (want, got[l], sizeof want) == 0);
    }
  }
  for (l = 0; l < MD5_LANES; ++l)
    free (m[l]);
}

/* Two messages of different lengths through the two-chain path, then
 * each finished on its own, from random states.
 */
static void
test_scalar_x2_states (void)
{
  unsigned seed = 5;
  unsigned char *m0 = random_bytes (64 * 50, &seed);
  unsigned char *m1 = random_bytes (64 * 80, &seed);
  uint32_t a[4], b[4], wa[4], wb[4];
  size_t i;

  for (i = 0; i < 4; ++i) {
    a[i] = wa[i] = (uint32_t) rand_r (&seed) * 2654435761u;
    b[i] = wb[i] = (uint32_t) rand_r (&seed) * 2246822519u;
  }
  md5_blocks_scalar_x2 (a, b, m0, m1, 50);
  md5_blocks_scalar (b, m1 + 64 * 50, 30);
  md5_blocks_scalar (wa, m0, 50);
  md5_blocks_scalar (wb, m1, 80);
  CHECK (memcmp (a, wa, sizeof a) == 0);
  CHECK (memcmp (b, wb, sizeof b) == 0);
  free (m0);
  free (m1);
}

static void
test_alone (void)
{
  static const size_t lens[] = {
    0, 1, 63, 64, 65, 65535, 65536, 65537, 65536 + 55, 65536 + 56,
    65536 + 63, 262144, 4194304, 4194304 - 1, 4194304 + 100
  };
  unsigned seed = 99;
  unsigned char out[16], sha[32];
  size_t i;

  for (i = 0; i < sizeof lens / sizeof lens[0]; ++i) {
    unsigned char *m = random_bytes (lens[i], &seed);
    CHECK (md5_batch (m, lens[i], out) == 0);
    if (!same_as_openssl (m, lens[i], out))
      fprintf (stderr, "alone, %zu bytes: wrong digest\n", lens[i]);
    CHECK (same_as_openssl (m, lens[i], out));
    memset (out, 0, sizeof out);
    CHECK (md5_sha256_batch (m, lens[i], out, sha) == 0);
    if (!same_as_openssl (m, lens[i], out) ||
        !sha256_same_as_openssl (m, lens[i], sha))
      fprintf (stderr, "alone with SHA-256, %zu bytes: wrong digest\n",
               lens[i]);
    CHECK (same_as_openssl (m, lens[i], out));
    CHECK (sha256_same_as_openssl (m, lens[i], sha));
    free (m);
  }
}

/* A message of more than 512 MiB: SHA-256's bit count then needs its
 * high word (pages of calloc that are never written cost no memory).
 */
static void
test_huge (void)
{
  const size_t len = ((size_t) 1 << 29) + 4096 + 37;
  unsigned char *m = calloc (len, 1), out[16], sha[32];
  unsigned seed = 5;
  size_t i;

  if (m == NULL) {
    printf ("no memory for %zu bytes: huge message not tested\n", len);
    return;
  }
  for (i = 0; i < 4096; ++i)    /* not all zeros: a bit at each end */
    m[i] = m[len - 1 - i] = (unsigned char) rand_r (&seed);
  CHECK (md5_sha256_batch (m, len, out, sha) == 0);
  CHECK (same_as_openssl (m, len, out));
  CHECK (sha256_same_as_openssl (m, len, sha));
  free (m);
}

/* More callers than 8 lanes, so the 16-lane kernel is used too; then
 * callers of which half want SHA-256 as well.
 */
enum { THREADS = 20, PER_THREAD = 12 };
static pthread_barrier_t start;
static int with_sha;            /* second round: some want SHA-256 */
static bool lanes_on, sha_on;   /* what md5-batch may use (main) */

static void *
hasher (void *arg)
{
  unsigned seed = (unsigned) (uintptr_t) arg;
  /* The data is made before the start, so that the threads then arrive
   * at md5_batch together and it has to fill its lanes.
   */
  unsigned char *data = random_bytes (4194304 + 65536, &seed);
  unsigned char out[16], sha[32];
  long wrong = 0;
  int i;

  pthread_barrier_wait (&start);
  for (i = 0; i < PER_THREAD; ++i) {
    /* Mostly chunk-sized messages, some odd lengths, at odd offsets. */
    size_t len = rand_r (&seed) % 4 == 0 ?
      (size_t) rand_r (&seed) % (600 * 1024) :
      (size_t) 4194304 - 64 * (size_t) (i % 3);
    const unsigned char *m = data + rand_r (&seed) % 65536;
    /* In the second round half the calls want SHA-256 too (chunk PUTs),
     * so that messages with and without it meet.
     */
    if (with_sha && rand_r (&seed) % 2) {
      if (md5_sha256_batch (m, len, out, sha) == -1 ||
          !same_as_openssl (m, len, out) ||
          !sha256_same_as_openssl (m, len, sha))
        wrong++;
    }
    else if (md5_batch (m, len, out) == -1 || !same_as_openssl (m, len, out))
      wrong++;
  }
  free (data);
  return (void *) wrong;
}

static void
test_concurrent (int sha)
{
  pthread_t t[THREADS];
  struct md5_batch_stats st, st0;
  void *wrong;
  long total = 0;
  int i;

  with_sha = sha;
  md5_batch_get_stats (&st0);
  pthread_barrier_init (&start, NULL, THREADS);
  for (i = 0; i < THREADS; ++i)
    CHECK (pthread_create (&t[i], NULL, hasher,
                           (void *) (uintptr_t) (i + 1)) == 0);
  for (i = 0; i < THREADS; ++i) {
    pthread_join (t[i], &wrong);
    total += (long) wrong;
  }
  pthread_barrier_destroy (&start);
  if (total)
    fprintf (stderr, "concurrent: %ld wrong digests\n", total);
  CHECK (total == 0);
  md5_batch_get_stats (&st);
  /* This round's part of the counters (max_shared is since the start). */
  st.bytes_alone -= st0.bytes_alone;
  st.bytes_shared -= st0.bytes_shared;
  st.bytes_sha_fused -= st0.bytes_sha_fused;
  st.bytes_sha_fused_pairs -= st0.bytes_sha_fused_pairs;
  st.bytes_sha_lagged -= st0.bytes_sha_lagged;
  printf ("concurrent%s: at most %u messages hashed together, "
          "%" PRIu64 " bytes alone, %" PRIu64 " bytes together; SHA-256 "
          "%" PRIu64 " bytes in the same pass (%" PRIu64 " two at a time), "
          "%" PRIu64 " left to the owner\n", sha ? ", with SHA-256" : "",
          st.max_shared, st.bytes_alone, st.bytes_shared,
          st.bytes_sha_fused, st.bytes_sha_fused_pairs, st.bytes_sha_lagged);
  if (!sha)
    CHECK (st.bytes_sha_fused == 0 && st.bytes_sha_lagged == 0);
  /* Messages that want SHA-256 go at most two at a time, so the first
   * round (MD5 only) is the one that fills the lanes.
   */
  if (lanes_on && !sha)
    CHECK (st.max_shared > MD5_LANES / 2 && st.bytes_shared > 0);
  if (sha_on && sha)
    CHECK (st.bytes_sha_fused_pairs > 0);
  if (!sha_on)
    CHECK (st.bytes_sha_fused == 0);
}

int
main (void)
{
  int mode;

  test_fused_kernels ();
  test_lanes ();
  test_kernels_multiblock ();
  test_scalar ();
  test_scalar_x2_states ();
  test_alone ();
  test_huge ();
  /* md5-batch as on this CPU, then with the lanes, the fused SHA-256 or
   * both turned off: every path, whatever the CPU.
   */
  for (mode = 0; mode < 4; ++mode) {
    bool lanes = (mode & 1) == 0, sha = (mode & 2) == 0;
    md5_batch_set_cpu (lanes, sha);
    lanes_on = lanes && md5_lanes_supported ();
    sha_on = sha && md5_sha256_supported ();
    printf ("md5-batch %s the MD5 lanes, %s the fused SHA-256:\n",
            lanes_on ? "with" : "without", sha_on ? "with" : "without");
    test_alone ();
    test_concurrent (0);
    test_concurrent (1);
  }
  TEST_EXIT ();
}
