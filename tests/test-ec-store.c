/* Unit test: the erasure-coded store (common/ec-store.h) over in-memory
 * stores that can be switched off (every call fails with EIO), with an
 * in-memory record of what each location lacks, under the chunk
 * engine, against a flat reference image, for 2+1 and 4+2: random
 * requests; with every choice of M locations switched off reads stay
 * right; a fragment corrupted at rest is detected, rebuilt and
 * rewritten by a read; writes below ec-min-write fail with EIO; after
 * locations come back the catch-up makes every fragment of every
 * location equal to a fresh encode of the reference; the scrub of a
 * chunk (ec_store_scrub_chunk) racing requests, and at rest.
 * GPL-3.0-or-later.
 */
#include <config.h>

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "chunk-engine.h"
#include "ec-codec.h"
#include "ec-store.h"
#include "nbdkit-shim.h"
#include "test-util.h"

#define CS 65536
#define SIZE (12 * CS + 999)
#define NR ((SIZE + CS - 1) / CS)

#define NLOC_MAX 6
#include "mem-store.h"

static unsigned K, M;

static struct ec_store *
make_ec (unsigned min_write)
{
  struct ec_config c = {
    .k = K, .m = M, .min_write = min_write, .threads = K + M - 1,
    .log = &log_ops, .log_opaque = &mlog,
    .probe = probe, .probe_opaque = stores,
  };
  unsigned i;

  for (i = 0; i < K + M; ++i) {
    c.loc[i] = (struct chunk_store) { .ops = &mem_ops, .opaque = &stores[i] };
    c.loc_name[i] = "mem";
  }
  return ec_store_new ("test", &c, SIZE, CS);
}

static struct chunk_engine *
make_engine (struct ec_store *s)
{
  struct chunk_store st = ec_store_as_store (s);
  return chunk_engine_new ("test", st.ops, st.opaque, SIZE, CS);
}

static bool
all_zero (const unsigned char *p, size_t len)
{
  while (len--)
    if (*p++)
      return false;
  return true;
}

/* Every location holds, for every chunk, exactly the fragment a fresh
 * encode of the reference gives (with a sound trailer), or nothing
 * where the reference is zeros and no location holds the chunk.
 */
static void
check_fragments (void)
{
  struct ec_codec *codec = ec_codec_new (K, M);
  static uint8_t frag[EC_STORE_MAX_LOCATIONS][CS];
  uint8_t *p[EC_STORE_MAX_LOCATIONS];
  uint64_t n, stamp;
  unsigned i;

  CHECK (codec != NULL);
  for (i = 0; i < K + M; ++i)
    p[i] = frag[i];
  for (n = 0; n < NR; ++n) {
    const uint32_t len = n == NR - 1 ? SIZE - (uint32_t) n * CS : CS;
    const size_t fl = ec_fragment_len (K, len);
    unsigned held = 0;

    ec_encode (codec, ref + n * CS, len, p);
    for (i = 0; i < K + M; ++i) {
      const unsigned char *f = stores[i].chunks[n];
      if (f == NULL)
        continue;
      held++;
      CHECK (ec_fragment_check (f, fl, i, K, M, n, len, &stamp));
      if (memcmp (f, frag[i], fl) != 0) {
        fprintf (stderr, "chunk %" PRIu64 " fragment %u differs\n", n, i);
        CHECK (0);
      }
    }
    CHECK (held == 0 || held == K + M);
    if (held == 0)
      CHECK (all_zero (ref + n * CS, len));
  }
  ec_codec_free (codec);
}

/* No location is recorded as lacking anything.  WITH_INTENTS: nor
 * are write intents left (a compaction ran: missing-set.h).
 */
static void
check_records (bool with_intents)
{
  unsigned h, l;
  for (h = 0; h < K + M; ++h)
    for (l = 0; l < K + M; ++l)
      if (h != l || with_intents)
        CHECK (mlog.count[h][l] == 0);
}

static void
check_records_empty (void)
{
  check_records (true);
}

/* Random requests; then every choice of M locations off, reads right. */
static void
test_random (void)
{
  struct ec_store *s;
  struct chunk_engine *e;
  uint32_t off_mask;
  int k;

  printf ("%u+%u: random requests, every %u locations off\n", K, M, M);
  reset ();
  s = make_ec (0);
  e = make_engine (s);
  CHECK (s && e);
  for (k = 0; k < 400; ++k)
    random_op (e);
  check_image (e);
  check_fragments ();
  shim_quiet = getenv ("VERBOSE") == NULL;
  for (off_mask = 0; off_mask < (1u << (K + M)); ++off_mask) {
    unsigned i;
    if ((unsigned) __builtin_popcount (off_mask) != M)
      continue;
    for (i = 0; i < K + M; ++i)
      stores[i].off = off_mask & (1u << i);
    check_image (e);
    /* Reading repairs: a location whose repair failed is down and
     * behind.  Back on, the catch-up makes it whole again.
     */
    for (i = 0; i < K + M; ++i)
      stores[i].off = false;
    CHECK (ec_store_catch_up (s) == 0);
  }
  for (k = 0; k < (int) (K + M); ++k)
    stores[k].off = false;
  shim_quiet = 0;
  /* The reads touched no fragment. */
  check_fragments ();
  chunk_engine_free (e);
  ec_store_free (s);
}

/* A fragment corrupted at rest, and one deleted: found, rebuilt,
 * rewritten by a read.
 */
static void
test_repair (void)
{
  struct ec_store *s;
  struct chunk_engine *e;
  static unsigned char buf[CS];
  unsigned i;

  printf ("%u+%u: read repair\n", K, M);
  reset ();
  s = make_ec (0);
  e = make_engine (s);
  CHECK (s && e);
  for (i = 0; i < CS; ++i)
    buf[i] = (unsigned char) test_rnd ();
  CHECK (chunk_engine_pwrite (e, buf, CS, 2 * CS, false) == 0);
  CHECK (chunk_engine_pwrite (e, buf, CS, 5 * CS, false) == 0);
  memcpy (ref + 2 * CS, buf, CS);
  memcpy (ref + 5 * CS, buf, CS);
  shim_quiet = 1;
  stores[0].chunks[2][100] ^= 1;                /* data, at rest */
  if (M >= 2)
    stores[K].chunks[2][7] ^= 0x80;             /* parity too */
  free (stores[1].chunks[5]);                   /* lost */
  stores[1].chunks[5] = NULL;
  check_image (e);
  shim_quiet = 0;
  /* Chunk 2's parity is read only when a data fragment is bad: here. */
  CHECK (ec_store_repairs (s) >= (M >= 2 ? 3 : 2));
  check_fragments ();
  /* The records of the repairs go with the catch-up's compaction. */
  CHECK (ec_store_catch_up (s) == 0);
  check_records_empty ();
  chunk_engine_free (e);
  ec_store_free (s);
}

/* M locations down while writing: the writes go on (K+1 <= K+M-M only
 * if... so ec-min-write=K here), then come back and are caught up; a
 * restart in between reads right.  Then below ec-min-write: EIO.
 */
static void
test_catch_up (void)
{
  struct ec_store *s;
  struct chunk_engine *e;
  static unsigned char buf[CS];
  unsigned i;
  int k;

  printf ("%u+%u: %u locations down while writing, caught up\n", K, M, M);
  reset ();
  s = make_ec (K);
  e = make_engine (s);
  CHECK (s && e);
  for (k = 0; k < 200; ++k)
    random_op (e);
  shim_quiet = 1;
  for (i = 0; i < M; ++i)
    stores[(i * 2 + 1) % (K + M)].off = true;
  for (k = 0; k < 400; ++k)
    random_op (e);
  CHECK (ec_store_catch_up (s) == 1);
  check_image (e);
  CHECK (chunk_engine_flush (e) == 0);
  for (i = 0; i < K + M; ++i)
    stores[i].off = false;
  shim_quiet = 0;

  /* A restart before the catch-up: the records say what is stale. */
  chunk_engine_free (e);
  ec_store_free (s);
  s = make_ec (K);
  CHECK (s != NULL);
  CHECK (ec_store_lacking (s, 1) > 0);
  e = make_engine (s);
  CHECK (e != NULL);
  check_image (e);
  for (k = 0; k < 100; ++k)
    random_op (e);
  CHECK (ec_store_catch_up (s) == 0);
  for (i = 0; i < K + M; ++i)
    CHECK (ec_store_lacking (s, i) == 0);
  check_records_empty ();
  check_fragments ();
  check_image (e);
  chunk_engine_free (e);
  ec_store_free (s);

  printf ("%u+%u: below ec-min-write\n", K, M);
  s = make_ec (0);                              /* K+1 */
  e = make_engine (s);
  CHECK (s && e);
  memset (buf, 9, CS);
  shim_quiet = 1;
  for (i = 0; i < M; ++i)
    stores[i].off = true;
  CHECK (chunk_engine_pwrite (e, buf, CS, 3 * CS, false) == -1);
  CHECK (errno == EIO);
  CHECK (chunk_engine_flush (e) == -1);
  shim_quiet = 0;
  /* What landed is recorded: the others lack chunk 3. */
  for (i = 0; i < M; ++i)
    CHECK (ec_store_lacking (s, i) == 1);
  for (i = 0; i < K + M; ++i)
    stores[i].off = false;
  CHECK (ec_store_catch_up (s) == 0);
  /* The failed write landed on K: it may read either way; make it
   * known, then every fragment is whole.
   */
  memcpy (ref + 3 * CS, buf, CS);
  check_fragments ();
  chunk_engine_free (e);
  ec_store_free (s);
}

/* ec_store_scrub_chunk.  Racing random requests (its exclusive copy
 * lock against writes and removals) it finds every chunk sound or
 * absent and changes nothing.  At rest it rewrites a corrupted fragment
 * and one of an older write, restores a deleted one, leaves a chunk
 * with fragments on fewer than K locations, and changes nothing of a
 * chunk with M+1 bad fragments.
 */
struct scrub_race {
  struct ec_store *s;
  bool stop;
  unsigned wrong;
  unsigned passes;
};

static void *
scrub_loop (void *arg)
{
  struct scrub_race *r = arg;
  struct ec_scrub_result res;
  uint64_t n;

  while (!__atomic_load_n (&r->stop, __ATOMIC_ACQUIRE)) {
    for (n = 0; n < NR; ++n)
      if (ec_store_scrub_chunk (r->s, n, &res) == -1 ||
          (res.state != EC_SCRUB_ABSENT && res.state != EC_SCRUB_SOUND)) {
        fprintf (stderr, "chunk %" PRIu64 ": scrub state %d\n", n,
                 (int) res.state);
        __atomic_fetch_add (&r->wrong, 1, __ATOMIC_RELAXED);
      }
    __atomic_fetch_add (&r->passes, 1, __ATOMIC_RELAXED);
  }
  return NULL;
}

static void
write_chunk (struct chunk_engine *e, uint64_t n)
{
  static unsigned char buf[CS];
  unsigned i;

  for (i = 0; i < CS; ++i)
    buf[i] = (unsigned char) test_rnd ();
  CHECK (chunk_engine_pwrite (e, buf, CS, n * CS, false) == 0);
  memcpy (ref + n * CS, buf, CS);
}

static void
test_scrub (void)
{
  struct scrub_race race = { 0 };
  struct ec_scrub_result r;
  struct ec_store *s;
  struct chunk_engine *e;
  static unsigned char old7[CS], good9[EC_STORE_MAX_LOCATIONS][CS];
  static unsigned char bad9[EC_STORE_MAX_LOCATIONS][CS];
  const uint32_t all = (1u << (K + M)) - 1;
  pthread_t t;
  unsigned i;
  int k;

  printf ("%u+%u: scrub, racing requests, then at rest\n", K, M);
  reset ();
  s = make_ec (0);
  e = make_engine (s);
  CHECK (s && e);
  race.s = s;
  slow = true;                  /* widen the windows */
  CHECK (pthread_create (&t, NULL, scrub_loop, &race) == 0);
  for (k = 0; k < 300; ++k)
    random_op (e);
  while (__atomic_load_n (&race.passes, __ATOMIC_RELAXED) < 2)
    random_op (e);
  __atomic_store_n (&race.stop, true, __ATOMIC_RELEASE);
  pthread_join (t, NULL);
  slow = false;
  CHECK (race.wrong == 0);
  CHECK (ec_store_repairs (s) == 0);
  check_image (e);
  check_fragments ();

  /* At rest. */
  write_chunk (e, 2);
  write_chunk (e, 5);
  write_chunk (e, 7);
  write_chunk (e, 9);
  memcpy (old7, stores[K - 1].chunks[7], CS);
  write_chunk (e, 7);
  CHECK (chunk_engine_trim (e, CS, 11 * CS, false) == 0);
  memset (ref + 11 * CS, 0, CS);
  check_fragments ();
  for (i = 0; i < K + M; ++i)
    memcpy (good9[i], stores[i].chunks[9], CS);
  stores[0].chunks[2][100] ^= 1;                /* fails its digest */
  free (stores[1].chunks[5]);                   /* lost */
  stores[1].chunks[5] = NULL;
  memcpy (stores[K - 1].chunks[7], old7, CS);   /* of the write before */
  for (i = 0; i <= M; ++i)                      /* M+1 bad */
    stores[i].chunks[9][3] ^= 0x10;
  for (i = 0; i < K + M; ++i)
    memcpy (bad9[i], stores[i].chunks[9], CS);
  stores[0].chunks[11] = calloc (1, CS);        /* a stray fragment */
  memcpy (stores[0].chunks[11], stores[0].chunks[5], CS);

  shim_quiet = 1;
  CHECK (ec_store_scrub_chunk (s, 2, &r) == 0);
  CHECK (r.state == EC_SCRUB_REPAIRED && r.read == all &&
         r.bad == 1u && r.rewritten == 1u && r.restored == 0 &&
         r.good == (all & ~1u));
  CHECK (ec_store_scrub_chunk (s, 5, &r) == 0);
  CHECK (r.state == EC_SCRUB_REPAIRED && r.absent == 2u &&
         r.restored == 2u && r.rewritten == 0);
  CHECK (ec_store_scrub_chunk (s, 7, &r) == 0);
  CHECK (r.state == EC_SCRUB_REPAIRED && r.bad == 0 &&
         r.other_write == 1u << (K - 1) && r.rewritten == 1u << (K - 1));
  CHECK (ec_store_scrub_chunk (s, 9, &r) == 0);
  CHECK (r.state == EC_SCRUB_UNRECOVERABLE &&
         r.bad == (1u << (M + 1)) - 1 && r.rewritten == 0 &&
         r.restored == 0);
  for (i = 0; i < K + M; ++i)
    CHECK (memcmp (stores[i].chunks[9], bad9[i], CS) == 0);
  CHECK (ec_store_scrub_chunk (s, 11, &r) == 0);
  CHECK (r.state == EC_SCRUB_CUT_SHORT && r.absent == (all & ~1u) &&
         r.rewritten == 0 && r.restored == 0);
  CHECK (stores[0].chunks[11] != NULL);
  for (i = 1; i < K + M; ++i)
    CHECK (stores[i].chunks[11] == NULL);
  CHECK (ec_store_scrub_chunk (s, 0, &r) == 0);
  CHECK (r.state == EC_SCRUB_ABSENT || r.state == EC_SCRUB_SOUND);
  shim_quiet = 0;
  CHECK (ec_store_repairs (s) == 3);

  /* Chunk 9 put right by hand, the stray gone: every fragment is a
   * fresh encode's again.
   */
  for (i = 0; i < K + M; ++i)
    memcpy (stores[i].chunks[9], good9[i], CS);
  free (stores[0].chunks[11]);
  stores[0].chunks[11] = NULL;
  check_fragments ();
  check_image (e);
  /* Scrub records nothing; the writes' intents wait for a compaction. */
  check_records (false);
  CHECK (ec_store_catch_up (s) == 0);
  check_records_empty ();
  chunk_engine_free (e);
  ec_store_free (s);
}

int
main (int argc, char *argv[])
{
  uint64_t seed = argc > 1 ? strtoull (argv[1], NULL, 10) : 12345;
  static const unsigned sets[][2] = { { 2, 1 }, { 4, 2 } };
  unsigned i;

  printf ("seed %" PRIu64 "\n", seed);
  test_rng_seed (seed);
  for (i = 0; i < 2; ++i) {
    K = sets[i][0];
    M = sets[i][1];
    test_random ();
    test_repair ();
    test_catch_up ();
    test_scrub ();
  }
  reset ();
  for (i = 0; i < NLOC_MAX; ++i)
    pthread_mutex_destroy (&stores[i].lock);
  TEST_EXIT ();
}
