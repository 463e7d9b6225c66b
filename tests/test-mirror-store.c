/* Unit test: the mirror store (common/mirror-store.h) over in-memory
 * stores that can be switched off (every call fails with EIO), with an
 * in-memory record of what each location lacks, under the chunk
 * engine, against a flat reference image.  Sync (quorum 1 of 3) and
 * async (2 locations): random requests while one location goes down
 * and comes back; reads stay right throughout; after the catch-up each
 * location alone holds the reference image and the records are empty.
 * A "restart" (a new mirror over the same stores and records, before
 * any catch-up) reads right and converges too.  Then writer threads
 * race the catch-up on the same chunks.
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
#include "mirror-store.h"
#include "nbdkit-shim.h"
#include "test-util.h"

#define CS 65536
#define SIZE (12 * CS + 999)
#define NR ((SIZE + CS - 1) / CS)

#define NLOC_MAX 3
#include "mem-store.h"

static struct mirror_store *
make_mirror (unsigned nloc, enum mirror_mode mode, unsigned quorum,
             unsigned threads)
{
  struct mirror_config c = {
    .nloc = nloc, .mode = mode, .write_quorum = quorum, .threads = threads,
    .log = &log_ops, .log_opaque = &mlog,
    .probe = probe, .probe_opaque = stores,
  };
  unsigned i;

  for (i = 0; i < nloc; ++i) {
    c.loc[i] = (struct chunk_store) { .ops = &mem_ops, .opaque = &stores[i] };
    c.loc_name[i] = "mem";
  }
  return mirror_store_new ("test", &c, SIZE, CS);
}

static struct chunk_engine *
make_engine (struct mirror_store *m)
{
  struct chunk_store s = mirror_store_as_store (m);
  return chunk_engine_new ("test", s.ops, s.opaque, SIZE, CS);
}

/* Location LOC alone holds the reference image. */
static void
check_location (unsigned loc)
{
  uint64_t n;

  for (n = 0; n < NR; ++n) {
    uint32_t len = n == NR - 1 ? SIZE - (uint32_t) n * CS : CS;
    if (stores[loc].chunks[n])
      CHECK (memcmp (stores[loc].chunks[n], ref + n * CS, len) == 0);
    else {
      uint32_t i;
      for (i = 0; i < len; ++i)
        CHECK (ref[n * CS + i] == 0);
    }
  }
}

static void
check_records_empty (unsigned nloc)
{
  unsigned h, l;
  for (h = 0; h < nloc; ++h)
    for (l = 0; l < nloc; ++l)
      CHECK (mlog.count[h][l] == 0);
}

static void
test_failover (unsigned nloc, enum mirror_mode mode, unsigned quorum,
               unsigned threads, unsigned victim)
{
  struct mirror_store *m;
  struct chunk_engine *e;
  unsigned i;
  int k;

  printf ("mirror of %u, %s, quorum %u, %u threads, location %u fails\n",
          nloc, mode == MIRROR_SYNC ? "sync" : "async", quorum, threads,
          victim);
  reset ();
  m = make_mirror (nloc, mode, quorum, threads);
  CHECK (m != NULL);
  e = make_engine (m);
  CHECK (e != NULL);
  for (k = 0; k < 300; ++k)
    random_op (e);
  shim_quiet = 1;
  stores[victim].off = true;
  for (k = 0; k < 600; ++k)
    random_op (e);
  /* Still down: the catch-up cannot copy (async: it finds it down). */
  CHECK (mirror_store_catch_up (m) == 1);
  CHECK (!mirror_store_is_up (m, victim));
  CHECK (mirror_store_lacking (m, victim) > 0);
  check_image (e);
  CHECK (chunk_engine_flush (e) == 0);
  stores[victim].off = false;
  shim_quiet = 0;

  /* A restart before the catch-up: the records say what is stale. */
  chunk_engine_free (e);
  mirror_store_free (m);
  m = make_mirror (nloc, mode, quorum, threads);
  CHECK (m != NULL);
  CHECK (mirror_store_lacking (m, victim) > 0);
  e = make_engine (m);
  CHECK (e != NULL);
  check_image (e);
  for (k = 0; k < 200; ++k)
    random_op (e);
  check_image (e);

  CHECK (mirror_store_catch_up (m) == 0);
  CHECK (mirror_store_lacking (m, victim) == 0);
  check_records_empty (nloc);
  for (i = 0; i < nloc; ++i)
    check_location (i);
  check_image (e);
  chunk_engine_free (e);
  mirror_store_free (m);
}

/* A write below quorum fails, and what landed is recorded. */
static void
test_quorum (void)
{
  struct mirror_store *m;
  struct chunk_engine *e;
  static unsigned char buf[CS];

  printf ("quorum: 2 of 3 with two down\n");
  reset ();
  m = make_mirror (3, MIRROR_SYNC, 2, 2);
  e = make_engine (m);
  CHECK (m && e);
  memset (buf, 7, CS);
  CHECK (chunk_engine_pwrite (e, buf, CS, 0, false) == 0);
  stores[1].off = stores[2].off = true;
  shim_quiet = 1;
  CHECK (chunk_engine_pwrite (e, buf, 100, CS, false) == -1);
  CHECK (errno == EIO);
  shim_quiet = 0;
  /* Location 0 took it, and knows that the others lack it. */
  CHECK (mirror_store_lacking (m, 1) == 1 && mirror_store_lacking (m, 2) == 1);
  stores[1].off = stores[2].off = false;
  CHECK (mirror_store_catch_up (m) == 0);
  CHECK (stores[2].chunks[1] && stores[2].chunks[1][99] == 7);
  check_records_empty (3);
  chunk_engine_free (e);
  mirror_store_free (m);
}

/* Writers race the catch-up on the same chunks: no write is undone by
 * an older copy.
 */
struct writer {
  struct chunk_engine *e;
  unsigned id;
};
static unsigned writers_done;

static void *
writer (void *arg)
{
  struct writer *w = arg;
  unsigned char buf[512];
  uint64_t slot;

  /* Every 512-byte slot written once, by one thread: a copy that
   * undid a write would leave its slot stale at the end.
   */
  for (slot = w->id; slot < (NR - 1) * CS / 512; slot += 4) {
    uint64_t off = (slot % (NR - 1)) * CS + slot / (NR - 1) * 512;
    memset (buf, (int) (slot % 251) + 1, sizeof buf);
    CHECK (chunk_engine_pwrite (w->e, buf, sizeof buf, off, false) == 0);
    memcpy (ref + off, buf, sizeof buf);
  }
  __atomic_fetch_add (&writers_done, 1, __ATOMIC_RELEASE);
  return NULL;
}

static void *
catcher (void *arg)
{
  struct mirror_store *m = arg;
  int k;
  for (k = 0; __atomic_load_n (&writers_done, __ATOMIC_ACQUIRE) < 4; ++k) {
    __atomic_store_n (&stores[1].off, k % 2 == 0, __ATOMIC_RELEASE);
    mirror_store_catch_up (m);
  }
  __atomic_store_n (&stores[1].off, false, __ATOMIC_RELEASE);
  return NULL;
}

static void
test_race (void)
{
  struct mirror_store *m;
  struct chunk_engine *e;
  pthread_t t[4], c;
  struct writer w[4];
  unsigned i;

  printf ("race: 4 writers against the catch-up\n");
  reset ();
  m = make_mirror (2, MIRROR_SYNC, 1, 1);
  e = make_engine (m);
  CHECK (m && e);
  shim_quiet = 1;
  slow = true;
  for (i = 0; i < 4; ++i) {
    w[i] = (struct writer) { .e = e, .id = i };
    pthread_create (&t[i], NULL, writer, &w[i]);
  }
  pthread_create (&c, NULL, catcher, m);
  for (i = 0; i < 4; ++i)
    pthread_join (t[i], NULL);
  pthread_join (c, NULL);
  slow = false;
  shim_quiet = 0;
  while (mirror_store_catch_up (m) != 0)
    ;
  check_location (0);
  check_location (1);
  check_image (e);
  chunk_engine_free (e);
  mirror_store_free (m);
}

int
main (int argc, char *argv[])
{
  uint64_t seed = argc > 1 ? strtoull (argv[1], NULL, 10) : 12345;
  unsigned i;

  printf ("seed %" PRIu64 "\n", seed);
  test_rng_seed (seed);
  test_failover (3, MIRROR_SYNC, 1, 2, 1);
  test_failover (3, MIRROR_SYNC, 2, 0, 2);
  test_failover (2, MIRROR_SYNC, 1, 1, 0);
  test_failover (2, MIRROR_ASYNC, 1, 1, 1);
  test_quorum ();
  test_race ();
  reset ();
  for (i = 0; i < NLOC_MAX; ++i)
    pthread_mutex_destroy (&stores[i].lock);
  TEST_EXIT ();
}
