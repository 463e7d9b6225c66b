/* shardkit unit tests: in-memory location stores for the stores of
 * stores (mirror, EC) that can be switched off (every call fails with
 * EIO), and an in-memory record of what each location lacks.  Include
 * once, after defining CS (chunk size), SIZE, NR (chunks) and NLOC_MAX.
 * GPL-3.0-or-later.
 */
#ifndef SHARDKIT_TEST_MEM_STORE_H
#define SHARDKIT_TEST_MEM_STORE_H

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "chunk-engine.h"
#include "missing-set.h"

struct mem_store {
  pthread_mutex_t lock;
  unsigned char *chunks[NR];    /* NULL = absent */
  uint32_t len[NR];
  bool off;                     /* every call fails */
};

/* The race test: widen the windows between a copy's read and its write. */
static bool slow;

static int
failing (struct mem_store *m)
{
  if (slow)
    usleep (20);
  if (__atomic_load_n (&m->off, __ATOMIC_ACQUIRE)) {
    errno = EIO;
    return 1;
  }
  return 0;
}

static int
m_read (void *s, uint64_t n, void *buf, uint32_t len, uint32_t off)
{
  struct mem_store *m = s;
  if (failing (m))
    return -1;
  pthread_mutex_lock (&m->lock);
  if (m->chunks[n] == NULL) {
    pthread_mutex_unlock (&m->lock);
    return 1;
  }
  memcpy (buf, m->chunks[n] + off, len);
  pthread_mutex_unlock (&m->lock);
  return 0;
}

static int
m_write (void *s, uint64_t n, const void *buf, uint32_t len, uint32_t off,
         bool fua)
{
  struct mem_store *m = s;
  if (failing (m))
    return -1;
  pthread_mutex_lock (&m->lock);
  if (m->chunks[n] == NULL)
    m->chunks[n] = calloc (1, CS);
  memcpy (m->chunks[n] + off, buf, len);
  pthread_mutex_unlock (&m->lock);
  return 0;
}

static int
m_remove (void *s, const uint64_t *ns, size_t count, bool fua)
{
  struct mem_store *m = s;
  size_t i;
  if (failing (m))
    return -1;
  pthread_mutex_lock (&m->lock);
  for (i = 0; i < count; ++i) {
    free (m->chunks[ns[i]]);
    m->chunks[ns[i]] = NULL;
  }
  pthread_mutex_unlock (&m->lock);
  return 0;
}

static int
m_punch (void *s, uint64_t n, uint32_t len, uint32_t off, bool fua)
{
  struct mem_store *m = s;
  uint32_t i;
  int r = 1;
  if (failing (m))
    return -1;
  pthread_mutex_lock (&m->lock);
  if (m->chunks[n]) {
    memset (m->chunks[n] + off, 0, len);
    for (i = 0; i < CS && r; ++i)
      if (m->chunks[n][i])
        r = 0;
  }
  pthread_mutex_unlock (&m->lock);
  return r;
}

static int
m_sync (void *s)
{
  return failing (s) ? -1 : 0;
}

static int
m_list (void *s, void (*found) (void *, uint64_t), void *opaque)
{
  struct mem_store *m = s;
  uint64_t n;
  if (failing (m))
    return -1;
  for (n = 0; n < NR; ++n)
    if (m->chunks[n])
      found (opaque, n);
  return 0;
}

static const struct chunk_store_ops mem_ops = {
  .partial_write = true,
  .read = m_read, .write = m_write, .remove = m_remove, .punch = m_punch,
  .sync = m_sync, .list = m_list,
};

/* The records: per (holder, lacking location), a list of chunks. */
struct mem_log {
  pthread_mutex_t lock;
  struct mem_store *stores;     /* a holder that is off fails */
  uint64_t *rec[NLOC_MAX][NLOC_MAX];
  size_t count[NLOC_MAX][NLOC_MAX];
};

static int
log_load (void *opaque, unsigned holder, unsigned loc,
          void (*found) (void *, uint64_t), void *arg)
{
  struct mem_log *l = opaque;
  size_t i;
  if (failing (&l->stores[holder]))
    return -1;
  for (i = 0; i < l->count[holder][loc]; ++i)
    found (arg, l->rec[holder][loc][i]);
  return 0;
}

static int
log_append (void *opaque, unsigned holder, unsigned loc,
            const uint64_t *ns, size_t count)
{
  struct mem_log *l = opaque;
  size_t i;
  if (failing (&l->stores[holder]))
    return -1;
  pthread_mutex_lock (&l->lock);
  for (i = 0; i < count; ++i) {
    size_t c = l->count[holder][loc]++;
    l->rec[holder][loc] = realloc (l->rec[holder][loc], (c + 1) * 8);
    l->rec[holder][loc][c] = ns[i];
  }
  pthread_mutex_unlock (&l->lock);
  return 0;
}

static int
log_clear (void *opaque, unsigned holder, unsigned loc)
{
  struct mem_log *l = opaque;
  if (failing (&l->stores[holder]))
    return -1;
  pthread_mutex_lock (&l->lock);
  l->count[holder][loc] = 0;
  pthread_mutex_unlock (&l->lock);
  return 0;
}

static const struct missing_log_ops log_ops = {
  .load = log_load, .append = log_append, .clear = log_clear,
};

static int
probe (void *opaque, unsigned loc)
{
  struct mem_store *stores = opaque;
  return failing (&stores[loc]) ? -1 : 0;
}

static struct mem_store stores[NLOC_MAX];
static struct mem_log mlog = { .stores = stores };
static unsigned char ref[SIZE];

static void
reset (void)
{
  unsigned i, j;
  uint64_t n;

  for (i = 0; i < NLOC_MAX; ++i) {
    for (n = 0; n < NR; ++n) {
      free (stores[i].chunks[n]);
      stores[i].chunks[n] = NULL;
    }
    stores[i].off = false;
    pthread_mutex_init (&stores[i].lock, NULL);
    for (j = 0; j < NLOC_MAX; ++j) {
      free (mlog.rec[i][j]);
      mlog.rec[i][j] = NULL;
      mlog.count[i][j] = 0;
    }
  }
  pthread_mutex_init (&mlog.lock, NULL);
  memset (ref, 0, sizeof ref);
}

/* Random requests through an engine E over the store under test,
 * applied to REF too, and the whole image checked against REF (needs
 * test_rnd and CHECK: include after test-util.h).
 */
/* One random request, applied to the engine and the reference. */
static void
random_op (struct chunk_engine *e)
{
  static unsigned char buf[3 * CS];
  uint64_t off = test_rnd () % SIZE;
  uint32_t len = 1 + (uint32_t) (test_rnd () % (3 * CS)), i;

  if (test_rnd () % 3 == 0)
    off = off / CS * CS, len = CS;
  if (off + len > SIZE)
    len = (uint32_t) (SIZE - off);
  switch (test_rnd () % 5) {
  case 0: case 1:
    for (i = 0; i < len; ++i)
      buf[i] = (unsigned char) test_rnd ();
    CHECK (chunk_engine_pwrite (e, buf, len, off, test_rnd () % 8 == 0) == 0);
    memcpy (ref + off, buf, len);
    break;
  case 2:
    CHECK (chunk_engine_trim (e, len, off, false) == 0);
    memset (ref + off, 0, len);
    break;
  case 3:
    CHECK (chunk_engine_zero (e, len, off, false, false) == 0);
    memset (ref + off, 0, len);
    break;
  default:
    CHECK (chunk_engine_pread (e, buf, len, off) == 0);
    CHECK (memcmp (buf, ref + off, len) == 0);
  }
}

static void
check_image (struct chunk_engine *e)
{
  static unsigned char buf[SIZE];
  CHECK (chunk_engine_pread (e, buf, SIZE, 0) == 0);
  CHECK (memcmp (buf, ref, SIZE) == 0);
}

#endif /* SHARDKIT_TEST_MEM_STORE_H */
