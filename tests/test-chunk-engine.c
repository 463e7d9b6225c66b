/* Unit test: the chunk engine over an in-memory store, in both store
 * kinds (partial writes with hole punching, like files; whole-chunk
 * writes only, like S3), against a flat reference image.  Random
 * unaligned requests; checks data, sparseness and extents.
 * GPL-3.0-or-later.
 */
#include <config.h>

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <time.h>
#include <unistd.h>

#include "chunk-engine.h"
#include "nbdkit-shim.h"
#include "test-util.h"

#define NBDKIT_EXTENT_HOLE (1<<0)
#define NBDKIT_EXTENT_ZERO (1<<1)

struct mem_store {
  uint32_t chunk_size;
  uint64_t size;
  uint64_t nr_chunks;
  unsigned char **chunks;       /* NULL = absent */
  unsigned writes, removes, remove_calls, partial_writes;
  bool fail_next_write;         /* inject one ENOSPC */
  bool land_failed_write;       /* ... after storing the data */
  bool fail_next_remove;        /* inject one EIO, nothing removed */
};

static int
m_read (void *s, uint64_t n, void *buf, uint32_t len, uint32_t off)
{
  struct mem_store *m = s;
  if (m->chunks[n] == NULL)
    return 1;
  memcpy (buf, m->chunks[n] + off, len);
  return 0;
}

static int
m_write (void *s, uint64_t n, const void *buf, uint32_t len, uint32_t off,
         bool fua)
{
  struct mem_store *m = s;
  if (m->fail_next_write && !m->land_failed_write) {
    m->fail_next_write = false;
    errno = ENOSPC;
    return -1;
  }
  if (m->chunks[n] == NULL)
    m->chunks[n] = calloc (1, m->chunk_size);
  memcpy (m->chunks[n] + off, buf, len);
  if (m->fail_next_write) {
    /* Stored, but the answer says it failed (a PUT whose answer was
     * lost).
     */
    m->fail_next_write = m->land_failed_write = false;
    errno = EIO;
    return -1;
  }
  /* Atomic: with parallelism, pieces of one request run at once. */
  __atomic_fetch_add (&m->writes, 1, __ATOMIC_RELAXED);
  {
    uint64_t span = m->size - n * m->chunk_size;
    if (span > m->chunk_size)
      span = m->chunk_size;
    if (off != 0 || len != span)
      __atomic_fetch_add (&m->partial_writes, 1, __ATOMIC_RELAXED);
  }
  return 0;
}

static int
m_remove (void *s, const uint64_t *ns, size_t count, bool fua)
{
  struct mem_store *m = s;
  size_t i;
  __atomic_fetch_add (&m->remove_calls, 1, __ATOMIC_RELAXED);
  if (m->fail_next_remove) {
    m->fail_next_remove = false;
    errno = EIO;
    return -1;
  }
  for (i = 0; i < count; ++i) {
    free (m->chunks[ns[i]]);
    m->chunks[ns[i]] = NULL;
    __atomic_fetch_add (&m->removes, 1, __ATOMIC_RELAXED);
  }
  return 0;
}

static int
m_punch (void *s, uint64_t n, uint32_t len, uint32_t off, bool fua)
{
  struct mem_store *m = s;
  uint32_t i;
  memset (m->chunks[n] + off, 0, len);
  for (i = 0; i < m->chunk_size; ++i)
    if (m->chunks[n][i])
      return 0;
  return 1;
}

static int
m_sync (void *s)
{
  return 0;
}

static int
m_list (void *s, void (*found) (void *, uint64_t), void *opaque)
{
  struct mem_store *m = s;
  uint64_t n;
  for (n = 0; n < m->nr_chunks; ++n)
    if (m->chunks[n])
      found (opaque, n);
  return 0;
}

static const struct chunk_store_ops file_like = {
  .partial_write = true,
  .read = m_read, .write = m_write, .remove = m_remove, .punch = m_punch,
  .sync = m_sync, .list = m_list,
};
static const struct chunk_store_ops object_like = {
  .partial_write = false,
  .read = m_read, .write = m_write, .remove = m_remove,
  .sync = m_sync, .list = m_list,
};

static void
random_request (uint64_t size, uint32_t cs, uint64_t *off, uint32_t *len)
{
  switch (test_rnd () % 4) {
  case 0:                       /* aligned whole chunks */
    *off = (test_rnd () % (size / cs)) * cs;
    *len = cs * (uint32_t) (1 + test_rnd () % 3);
    break;
  case 1:                       /* tiny */
    *off = test_rnd () % size;
    *len = 1 + (uint32_t) (test_rnd () % 17);
    break;
  default:                      /* unaligned, often crossing chunks */
    *off = test_rnd () % size;
    *len = 1 + (uint32_t) (test_rnd () % (3 * cs));
  }
  if (*off + *len > size)
    *len = (uint32_t) (size - *off);
  if (*len == 0)
    *len = 1, *off = size - 1;
}

static void
run (const struct chunk_store_ops *ops, const char *what, uint64_t seed,
     unsigned parallel)
{
  const uint32_t cs = 65536;
  const uint64_t size = 10 * 65536 + 1234;       /* short last chunk */
  struct mem_store m = { .chunk_size = cs, .size = size };
  unsigned char *ref, *buf;
  struct chunk_engine *e;
  uint64_t n, i;
  int iter;

  test_rng_seed (seed);
  m.nr_chunks = (size + cs - 1) / cs;
  m.chunks = calloc (m.nr_chunks, sizeof *m.chunks);
  ref = calloc (1, size);
  buf = malloc (size);

  /* Pre-existing chunk 3 is found by the listing. */
  m.chunks[3] = calloc (1, cs);
  memset (m.chunks[3], 0x33, cs);
  memset (ref + 3 * cs, 0x33, cs);

  e = chunk_engine_new (what, ops, &m, size, cs);
  CHECK (e != NULL);
  CHECK (chunk_engine_count_present (e) == 1);
  CHECK (chunk_engine_set_parallelism (e, parallel) == 0);

  for (iter = 0; iter < 3000; ++iter) {
    uint64_t off;
    uint32_t len;
    int op = (int) (test_rnd () % 10);

    random_request (size, cs, &off, &len);
    switch (op) {
    case 0: case 1: case 2:     /* random data */
      for (i = 0; i < len; ++i)
        buf[i] = (unsigned char) test_rnd ();
      CHECK (chunk_engine_pwrite (e, buf, len, off, test_rnd () & 1) == 0);
      memcpy (ref + off, buf, len);
      break;
    case 3:                     /* zeros written as data */
      memset (buf, 0, len);
      CHECK (chunk_engine_pwrite (e, buf, len, off, false) == 0);
      memset (ref + off, 0, len);
      break;
    case 4:
      CHECK (chunk_engine_trim (e, len, off, false) == 0);
      memset (ref + off, 0, len);
      break;
    case 5:
      CHECK (chunk_engine_zero (e, len, off, false, test_rnd () & 1) == 0);
      memset (ref + off, 0, len);
      break;
    case 6:
      CHECK (chunk_engine_flush (e) == 0);
      break;
    default:
      CHECK (chunk_engine_pread (e, buf, len, off) == 0);
      if (memcmp (buf, ref + off, len) != 0) {
        fprintf (stderr, "%s: seed %" PRIu64 " iter %d: read [%" PRIu64
                 ", +%" PRIu32 ") differs\n", what, seed, iter, off, len);
        test_failures++;
        goto out;
      }
    }
  }

  /* Whole image, store contents and sparseness. */
  CHECK (chunk_engine_pread (e, buf, (uint32_t) size, 0) == 0);
  CHECK (memcmp (buf, ref, size) == 0);
  for (n = 0; n < m.nr_chunks; ++n) {
    uint64_t span = n == m.nr_chunks - 1 ? size - n * cs : cs;
    bool zero = true;
    for (i = 0; i < span; ++i)
      if (ref[n * cs + i]) {
        zero = false;
        break;
      }
    /* A chunk holding data must be stored.  With whole-chunk stores every
     * all-zero chunk must be gone; with punching stores a chunk made zero
     * by a data write of zeros may remain.
     */
    if (!zero)
      CHECK (m.chunks[n] != NULL);
    if (zero && !ops->partial_write && m.chunks[n] != NULL) {
      fprintf (stderr, "%s: chunk %" PRIu64 " is all zero but stored\n",
               what, n);
      test_failures++;
    }
    CHECK (chunk_engine_is_present (e, n) == (m.chunks[n] != NULL));
  }
  if (!ops->partial_write)
    CHECK (m.partial_writes == 0);

  /* Extents agree with the store. */
  {
    static struct nbdkit_extents ex;
    size_t k;
    ex.count = 0;
    CHECK (chunk_engine_extents (e, (uint32_t) size, 0, false, &ex) == 0);
    for (k = 0; k < ex.count; ++k) {
      uint64_t first = ex.e[k].offset / cs;
      uint64_t last = (ex.e[k].offset + ex.e[k].length - 1) / cs;
      for (n = first; n <= last; ++n)
        CHECK ((ex.e[k].type == 0) == (m.chunks[n] != NULL));
    }
    CHECK (ex.count > 0 && ex.e[ex.count-1].offset + ex.e[ex.count-1].length
           == size);
  }

  /* Out of range requests fail with EINVAL. */
  shim_quiet = 1;
  errno = 0;
  CHECK (chunk_engine_pread (e, buf, 2, size - 1) == -1 && errno == EINVAL);
  CHECK (chunk_engine_trim (e, 1, size, false) == -1 && errno == EINVAL);
  shim_quiet = 0;

  /* A failing store write is reported and does not mark the chunk. */
  {
    uint64_t target = 7 * cs;
    chunk_engine_trim (e, cs, target, false);
    m.fail_next_write = true;
    memset (buf, 0xab, 100);
    errno = 0;
    CHECK (chunk_engine_pwrite (e, buf, 100, target, false) == -1);
    CHECK (errno == ENOSPC);
    /* A failed write may still have landed (a file created before the
     * error, a PUT stored but its answer lost), so the engine counts the
     * chunk as present from the first attempt (a later trim then
     * removes it), and its absence from the store reads as zeros.
     */
    CHECK (chunk_engine_is_present (e, 7));
    CHECK (chunk_engine_pread (e, buf, 100, target) == 0);
    for (i = 0; i < 100; ++i)
      CHECK (buf[i] == 0);
    CHECK (chunk_engine_trim (e, cs, target, false) == 0);
    CHECK (!chunk_engine_is_present (e, 7) && m.chunks[7] == NULL);
  }

  /* A failed write that landed: a trim removes what landed, so the
   * bytes never come back (e.g. after a restart, which lists the store).
   */
  {
    uint64_t target = 8 * cs;
    chunk_engine_trim (e, cs, target, false);
    m.fail_next_write = m.land_failed_write = true;
    memset (buf, 0xcd, cs);
    shim_quiet = 1;
    CHECK (chunk_engine_pwrite (e, buf, cs, target, false) == -1);
    shim_quiet = 0;
    CHECK (m.chunks[8] != NULL);
    CHECK (chunk_engine_is_present (e, 8));
    CHECK (chunk_engine_trim (e, cs, target, false) == 0);
    CHECK (m.chunks[8] == NULL);
  }

  /* A chunk the engine holds present that the store says does not
   * exist (lost, or a lying store): EIO for reads, and a partial write
   * never writes zeros back over it.
   */
  {
    uint64_t target = 5 * cs;
    unsigned char *hidden;
    unsigned writes;

    memset (buf, 0x5a, cs);
    CHECK (chunk_engine_pwrite (e, buf, cs, target, false) == 0);
    hidden = m.chunks[5];
    m.chunks[5] = NULL;        /* the store hides it */
    shim_quiet = 1;
    errno = 0;
    CHECK (chunk_engine_pread (e, buf, 100, target + 7) == -1 &&
           errno == EIO);
    writes = m.writes;
    errno = 0;
    if (!ops->partial_write) {
      CHECK (chunk_engine_pwrite (e, buf, 10, target + 3, false) == -1 &&
             errno == EIO);
      CHECK (m.writes == writes && m.chunks[5] == NULL);
    }
    shim_quiet = 0;
    m.chunks[5] = hidden;      /* back: served as it was */
    CHECK (chunk_engine_pread (e, buf, 100, target + 7) == 0 &&
           buf[0] == 0x5a && buf[99] == 0x5a);
  }

  /* A removal that failed may have happened: absence then reads as
   * zeros, not EIO, and a later trim is tried again.
   */
  {
    uint64_t target = 6 * cs;

    memset (buf, 0x6b, cs);
    CHECK (chunk_engine_pwrite (e, buf, cs, target, false) == 0);
    m.fail_next_remove = true;
    shim_quiet = 1;
    CHECK (chunk_engine_trim (e, cs, target, false) == -1);
    shim_quiet = 0;
    CHECK (chunk_engine_is_present (e, 6));
    free (m.chunks[6]);        /* it had landed after all */
    m.chunks[6] = NULL;
    CHECK (chunk_engine_pread (e, buf, 100, target) == 0 && buf[0] == 0);
    CHECK (chunk_engine_trim (e, cs, target, false) == 0);
    CHECK (!chunk_engine_is_present (e, 6));
  }

  /* Fast zero on a store that cannot punch refuses partial chunks. */
  if (!ops->partial_write) {
    memset (buf, 1, 10);
    CHECK (chunk_engine_pwrite (e, buf, 10, 2 * cs + 5, false) == 0);
    errno = 0;
    CHECK (chunk_engine_zero (e, 3, 2 * cs + 6, true, false) == -1 &&
           errno == ENOTSUP);
    CHECK (chunk_engine_pread (e, buf, 10, 2 * cs + 5) == 0 && buf[1] == 1);
    /* Whole chunks are fine. */
    CHECK (chunk_engine_zero (e, cs, 2 * cs, true, false) == 0);
    CHECK (!chunk_engine_is_present (e, 2));
  }

  /* Large trims remove in batches. */
  m.remove_calls = 0;
  memset (buf, 7, cs);
  for (n = 0; n < 10; ++n)
    CHECK (chunk_engine_pwrite (e, buf, cs, n * cs, false) == 0);
  CHECK (chunk_engine_trim (e, (uint32_t) size, 0, false) == 0);
  CHECK (chunk_engine_count_present (e) == 0);
  CHECK (m.remove_calls == 1);

 out:
  chunk_engine_free (e);
  for (n = 0; n < m.nr_chunks; ++n)
    free (m.chunks[n]);
  free (m.chunks);
  free (ref);
  free (buf);
}

/* A slow store that records how many of its operations run at once. */
struct slow_store {
  struct mem_store m;
  int in_flight, max_in_flight;
  uint64_t fail_chunk;          /* reads/writes of it fail with EIO */
};

static void
slow_enter (struct slow_store *s)
{
  int now = __atomic_add_fetch (&s->in_flight, 1, __ATOMIC_ACQ_REL);
  int max = __atomic_load_n (&s->max_in_flight, __ATOMIC_ACQUIRE);
  while (now > max &&
         !__atomic_compare_exchange_n (&s->max_in_flight, &max, now, false,
                                       __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
    ;
  usleep (20000);
  __atomic_sub_fetch (&s->in_flight, 1, __ATOMIC_ACQ_REL);
}

static int
slow_read (void *st, uint64_t n, void *buf, uint32_t len, uint32_t off)
{
  struct slow_store *s = st;
  slow_enter (s);
  if (n == s->fail_chunk) {
    errno = EIO;
    return -1;
  }
  return m_read (&s->m, n, buf, len, off);
}

static int
slow_write (void *st, uint64_t n, const void *buf, uint32_t len, uint32_t off,
            bool fua)
{
  struct slow_store *s = st;
  slow_enter (s);
  if (n == s->fail_chunk) {
    errno = EIO;
    return -1;
  }
  return m_write (&s->m, n, buf, len, off, fua);
}

static int
slow_remove (void *st, const uint64_t *ns, size_t count, bool fua)
{
  struct slow_store *s = st;
  return m_remove (&s->m, ns, count, fua);
}

static int
slow_sync (void *st)
{
  return 0;
}

static int
slow_list (void *st, void (*found) (void *, uint64_t), void *opaque)
{
  struct slow_store *s = st;
  return m_list (&s->m, found, opaque);
}

static const struct chunk_store_ops slow_ops = {
  .partial_write = false,
  .read = slow_read, .write = slow_write, .remove = slow_remove,
  .sync = slow_sync, .list = slow_list,
};

struct writer_arg {
  struct chunk_engine *e;
  unsigned char fill;
  uint64_t offset;
};

static void *
writer (void *arg)
{
  struct writer_arg *a = arg;
  unsigned char buf[1000];

  memset (buf, a->fill, sizeof buf);
  CHECK (chunk_engine_pwrite (a->e, buf, sizeof buf, a->offset, false) == 0);
  return NULL;
}

/* Parallel requests really overlap, stay bounded, report errors, and keep
 * read-modify-writes of one chunk from losing data.
 */
static void
test_parallel (void)
{
  const uint32_t cs = 65536;
  const uint64_t size = 16 * (uint64_t) cs;
  struct slow_store s = { .m = { .chunk_size = cs, .size = size,
                                 .nr_chunks = 16 },
                          .fail_chunk = UINT64_MAX };
  unsigned char *buf = malloc (size), *back = malloc (size);
  struct chunk_engine *e;
  uint64_t i;

  s.m.chunks = calloc (16, sizeof *s.m.chunks);
  e = chunk_engine_new ("parallel", &slow_ops, &s, size, cs);
  CHECK (e != NULL);
  CHECK (chunk_engine_set_parallelism (e, 4) == 0);
  for (i = 0; i < size; ++i)
    buf[i] = (unsigned char) (i * 13 + 1);

  /* 16 whole chunks with 4 in flight.  Each store call lasts 20 ms, so
   * the calls overlap: exactly 4 at a time (a count, not a time, so a
   * loaded machine cannot fail it).
   */
  CHECK (chunk_engine_pwrite (e, buf, (uint32_t) size, 0, false) == 0);
  CHECK (s.max_in_flight == 4);
  s.max_in_flight = 0;
  CHECK (chunk_engine_pread (e, back, (uint32_t) size, 0) == 0);
  CHECK (memcmp (buf, back, size) == 0);
  CHECK (s.max_in_flight == 4);

  /* An unaligned read across 3 chunks. */
  CHECK (chunk_engine_pread (e, back, 2 * cs + 10, cs / 2) == 0);
  CHECK (memcmp (buf + cs / 2, back, 2 * cs + 10) == 0);

  /* One failing piece fails the request with its errno; the others'
   * data is intact.
   */
  s.fail_chunk = 9;
  shim_quiet = 1;
  errno = 0;
  CHECK (chunk_engine_pread (e, back, (uint32_t) size, 0) == -1 &&
         errno == EIO);
  memset (buf + 9 * cs, 0xee, 3 * cs);
  errno = 0;
  CHECK (chunk_engine_pwrite (e, buf + 9 * cs, 3 * cs, 9 * cs, false) == -1 &&
         errno == EIO);
  shim_quiet = 0;
  s.fail_chunk = UINT64_MAX;

  /* Parallelism back to 1: serial again. */
  CHECK (chunk_engine_set_parallelism (e, 1) == 0);
  s.max_in_flight = 0;
  CHECK (chunk_engine_pread (e, back, 4 * cs, 0) == 0);
  CHECK (s.max_in_flight == 1);

  /* Many small writes into one chunk from many threads, each a
   * read-modify-write: none is lost.
   */
  CHECK (chunk_engine_set_parallelism (e, 4) == 0);
  {
    pthread_t th[16];
    struct writer_arg a[16];
    int k;
    for (k = 0; k < 16; ++k) {
      a[k] = (struct writer_arg) { e, (unsigned char) (k + 1),
                                   2 * (uint64_t) cs + (uint64_t) k * 2000 };
      pthread_create (&th[k], NULL, writer, &a[k]);
    }
    for (k = 0; k < 16; ++k)
      pthread_join (th[k], NULL);
    CHECK (chunk_engine_pread (e, back, cs, 2 * cs) == 0);
    for (k = 0; k < 16; ++k)
      for (i = 0; i < 1000; ++i)
        if (back[k * 2000 + i] != k + 1) {
          fprintf (stderr, "write %d lost at byte %" PRIu64 "\n", k, i);
          test_failures++;
          break;
        }
  }

  chunk_engine_free (e);
  for (i = 0; i < 16; ++i)
    free (s.m.chunks[i]);
  free (s.m.chunks);
  free (buf);
  free (back);
}

int
main (int argc, char *argv[])
{
  uint64_t seed = argc > 1 ? strtoull (argv[1], NULL, 0) : UINT64_C (0x5eed);
  int i;

  for (i = 0; i < 4; ++i) {
    run (&file_like, "file-like", seed + (uint64_t) i, 1);
    run (&object_like, "object-like", seed + (uint64_t) i, 1);
    /* The same, with requests spread over worker threads. */
    run (&file_like, "file-like parallel", seed + (uint64_t) i, 3);
    run (&object_like, "object-like parallel", seed + (uint64_t) i, 4);
  }
  test_parallel ();
  CHECK (buffer_is_zero ("", 0));
  CHECK (buffer_is_zero ("\0\0\0", 3));
  CHECK (!buffer_is_zero ("\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0x", 18));
  TEST_EXIT ();
}
