/* shardkit sharded-file: a bounded cache of open chunk file descriptors.
 * GPL-3.0-or-later.
 */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <nbdkit-plugin.h>

#include "cleanup.h"
#include "fd-cache.h"

struct entry {
  uint64_t n;
  int fd;
  unsigned refs;                /* threads using fd right now */
  bool dirty;                   /* written since the last sync */
  bool doomed;                  /* forgotten while a sync held it */
  struct entry *hnext;          /* hash chain */
  struct entry *prev, *next;    /* LRU list, most recent first */
};

struct fd_cache {
  pthread_mutex_t lock;
  size_t max, count;
  size_t nbuckets;
  struct entry **buckets;
  struct entry lru;             /* sentinel */
  fd_cache_open_fn open_fn;
  void *opaque;

  /* Chunks written but closed before they were synced: a flush reopens
   * and syncs them.  Unsorted, may hold duplicates (harmless).
   */
  uint64_t *closed_dirty;
  size_t nr_closed_dirty, cap_closed_dirty;
};

static size_t
bucket_of (const struct fd_cache *c, uint64_t n)
{
  return (size_t) ((n * UINT64_C (0x9E3779B97F4A7C15)) >> 20) % c->nbuckets;
}

struct fd_cache *
fd_cache_new (size_t max, fd_cache_open_fn open_fn, void *opaque)
{
  struct fd_cache *c = calloc (1, sizeof *c);

  if (c == NULL)
    return NULL;
  c->max = max > 0 ? max : 1;
  c->nbuckets = c->max * 2 + 1;
  c->buckets = calloc (c->nbuckets, sizeof *c->buckets);
  if (c->buckets == NULL) {
    free (c);
    return NULL;
  }
  pthread_mutex_init (&c->lock, NULL);
  c->lru.prev = c->lru.next = &c->lru;
  c->open_fn = open_fn;
  c->opaque = opaque;
  return c;
}

static void
lru_unlink (struct entry *e)
{
  e->prev->next = e->next;
  e->next->prev = e->prev;
}

static void
lru_push_front (struct fd_cache *c, struct entry *e)
{
  e->next = c->lru.next;
  e->prev = &c->lru;
  c->lru.next->prev = e;
  c->lru.next = e;
}

static struct entry *
lookup (struct fd_cache *c, uint64_t n)
{
  struct entry *e;

  for (e = c->buckets[bucket_of (c, n)]; e; e = e->hnext)
    if (e->n == n)
      return e;
  return NULL;
}

static void
hash_remove (struct fd_cache *c, struct entry *e)
{
  struct entry **pp = &c->buckets[bucket_of (c, e->n)];

  while (*pp != e)
    pp = &(*pp)->hnext;
  *pp = e->hnext;
}

static int
compare_u64 (const void *a, const void *b)
{
  uint64_t x = *(const uint64_t *) a, y = *(const uint64_t *) b;
  return x < y ? -1 : x > y;
}

/* Sort the list and drop duplicates: a client that rewrites a few chunks
 * with a tiny max-open-files would otherwise grow it by one entry per
 * eviction until the next flush (and make that flush sync each again).
 */
static void
dedupe_closed_dirty (struct fd_cache *c)
{
  size_t i, k = 0;

  qsort (c->closed_dirty, c->nr_closed_dirty, sizeof (uint64_t), compare_u64);
  for (i = 0; i < c->nr_closed_dirty; ++i)
    if (k == 0 || c->closed_dirty[k-1] != c->closed_dirty[i])
      c->closed_dirty[k++] = c->closed_dirty[i];
  c->nr_closed_dirty = k;
}

/* Remember that chunk N still needs a sync though its fd is closing. */
static int
note_closed_dirty (struct fd_cache *c, uint64_t n)
{
  /* Before growing, see whether duplicates make room; grow only when the
   * list is at least half distinct chunks, so the sorting stays cheap.
   */
  if (c->nr_closed_dirty == c->cap_closed_dirty && c->nr_closed_dirty > 0)
    dedupe_closed_dirty (c);
  if (c->nr_closed_dirty * 2 > c->cap_closed_dirty ||
      c->cap_closed_dirty == 0) {
    size_t cap = c->cap_closed_dirty ? c->cap_closed_dirty * 2 : 64;
    uint64_t *p = realloc (c->closed_dirty, cap * sizeof *p);
    if (p == NULL)
      return -1;
    c->closed_dirty = p;
    c->cap_closed_dirty = cap;
  }
  c->closed_dirty[c->nr_closed_dirty++] = n;
  return 0;
}

/* Close idle descriptors, least recently used first, while over the
 * limit.  Called with the lock held.  A dirty file that cannot be noted
 * for a later sync is synced now instead, so nothing is forgotten.
 */
static void
evict (struct fd_cache *c)
{
  struct entry *e = c->lru.prev;

  while (c->count > c->max && e != &c->lru) {
    struct entry *prev = e->prev;

    if (e->refs == 0) {
      if (e->dirty && note_closed_dirty (c, e->n) == -1 &&
          fdatasync (e->fd) == -1) {
        e = prev;               /* keep it: it still needs a sync */
        continue;
      }
      lru_unlink (e);
      hash_remove (c, e);
      close (e->fd);
      free (e);
      c->count--;
    }
    e = prev;
  }
}

int
fd_cache_get (struct fd_cache *c, uint64_t n, bool create, bool *created)
{
  struct entry *e;
  bool made = false;
  int fd;

  if (created)
    *created = false;
  {
    ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&c->lock);
    e = lookup (c, n);
    if (e) {
      e->refs++;
      lru_unlink (e);
      lru_push_front (c, e);
      return e->fd;
    }
  }

  /* Open outside the lock: opening may touch the disk. */
  fd = c->open_fn (c->opaque, n, create, &made);
  if (fd == -1)
    return -1;
  if (created)
    *created = made;

  ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&c->lock);
  e = lookup (c, n);
  if (e) {
    /* Another reader of the same chunk opened it meanwhile. */
    close (fd);
    e->refs++;
    lru_unlink (e);
    lru_push_front (c, e);
    return e->fd;
  }
  e = calloc (1, sizeof *e);
  if (e == NULL) {
    int saved = errno;
    close (fd);
    errno = saved;
    return -1;
  }
  e->n = n;
  e->fd = fd;
  e->refs = 1;
  e->hnext = c->buckets[bucket_of (c, n)];
  c->buckets[bucket_of (c, n)] = e;
  lru_push_front (c, e);
  c->count++;
  evict (c);
  return fd;
}

void
fd_cache_put (struct fd_cache *c, uint64_t n, bool dirtied)
{
  ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&c->lock);
  struct entry *e = lookup (c, n);

  if (e == NULL)
    return;
  if (dirtied)
    e->dirty = true;
  e->refs--;
  evict (c);
}

void
fd_cache_forget (struct fd_cache *c, uint64_t n)
{
  ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&c->lock);
  struct entry *e = lookup (c, n);
  size_t i;

  /* The file is going away, so its pending sync is moot. */
  for (i = 0; i < c->nr_closed_dirty; ) {
    if (c->closed_dirty[i] == n)
      c->closed_dirty[i] = c->closed_dirty[--c->nr_closed_dirty];
    else
      i++;
  }
  if (e == NULL)
    return;
  lru_unlink (e);
  hash_remove (c, e);
  c->count--;
  if (e->refs > 0) {
    /* Only fd_cache_sync can hold it now (the caller has the chunk's
     * exclusive lock); it frees the entry when done.  Out of the table
     * already, so a new file of the same chunk gets a new descriptor.
     */
    e->doomed = true;
    return;
  }
  close (e->fd);
  free (e);
}

/* fdatasync many files from a few threads at once: the kernel merges the
 * cache flushes of concurrent syncs, and each file's wait overlaps the
 * others'.  ERRS[i] gets the errno of file i, or 0.
 */
#define SYNC_THREADS 4
struct sync_job {
  struct entry **entries;
  int *errs;
  size_t nr;
  size_t next;                  /* next index to take, atomically */
};

static void *
sync_worker (void *arg)
{
  struct sync_job *j = arg;
  size_t i;

  while ((i = __atomic_fetch_add (&j->next, 1, __ATOMIC_RELAXED)) < j->nr)
    if (fdatasync (j->entries[i]->fd) == -1)
      j->errs[i] = errno;
  return NULL;
}

static void
sync_in_parallel (struct entry **entries, size_t nr, int *errs)
{
  struct sync_job j = { .entries = entries, .errs = errs, .nr = nr };
  pthread_t t[SYNC_THREADS - 1];
  size_t i, started = 0;

  /* Helpers only pay off with several files; if a thread cannot be
   * started, this thread does the rest.
   */
  for (i = 0; i < SYNC_THREADS - 1 && (i + 1) * 4 < nr; ++i) {
    if (pthread_create (&t[i], NULL, sync_worker, &j) != 0)
      break;
    started++;
  }
  sync_worker (&j);
  for (i = 0; i < started; ++i)
    pthread_join (t[i], NULL);
}

int
fd_cache_sync (struct fd_cache *c)
{
  CLEANUP_FREE struct entry **open_dirty = NULL;
  CLEANUP_FREE uint64_t *closed = NULL;
  CLEANUP_FREE int *errs = NULL;
  size_t nr_open = 0, nr_closed, i;
  struct entry *e;
  int err = 0;

  /* Take a snapshot of what needs syncing, holding a reference on every
   * open dirty descriptor so it is not closed under us.  A write that
   * lands after the snapshot marks its entry dirty again.
   */
  {
    ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&c->lock);
    open_dirty = malloc ((c->count + 1) * sizeof *open_dirty);
    errs = calloc (c->count + 1, sizeof *errs);
    if (open_dirty == NULL || errs == NULL)
      return -1;
    for (e = c->lru.next; e != &c->lru; e = e->next) {
      if (e->dirty) {
        e->dirty = false;
        e->refs++;
        open_dirty[nr_open++] = e;
      }
    }
    closed = c->closed_dirty;
    nr_closed = c->nr_closed_dirty;
    c->closed_dirty = NULL;
    c->nr_closed_dirty = c->cap_closed_dirty = 0;
  }

#ifdef SYNC_FILE_RANGE_WRITE
  /* Start writeback of every dirty file first, so that the device gets
   * all of it at once and the block allocations of all files land in one
   * journal transaction: the first fdatasync below then commits it, and
   * the others find little left to do.  Syncing one file after another
   * costs a journal commit per file (256 for 1 GiB at 4 MiB chunks).
   * Only a hint: errors are reported by the fdatasync.
   */
  for (i = 0; i < nr_open; ++i)
    sync_file_range (open_dirty[i]->fd, 0, 0, SYNC_FILE_RANGE_WRITE);
#endif
  sync_in_parallel (open_dirty, nr_open, errs);
  for (i = 0; i < nr_open; ++i) {
    if (errs[i]) {
      err = errs[i];
      nbdkit_error ("fdatasync: chunk %" PRIu64 ": %s", open_dirty[i]->n,
                    strerror (err));
      ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&c->lock);
      open_dirty[i]->dirty = true;      /* try again at the next flush */
    }
  }
  for (i = 0; i < nr_closed; ++i) {
    int fd = c->open_fn (c->opaque, closed[i], false, NULL);
    if (fd == -1) {
      if (errno == ENOENT)
        continue;               /* removed since: nothing to sync */
      err = errno;
    }
    else if (fdatasync (fd) == -1)
      err = errno;
    else {
      close (fd);
      continue;
    }
    if (fd >= 0)
      close (fd);
    nbdkit_error ("sync of closed chunk %" PRIu64 ": %s", closed[i],
                  strerror (err));
    ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&c->lock);
    note_closed_dirty (c, closed[i]);
  }

  {
    ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&c->lock);
    for (i = 0; i < nr_open; ++i) {
      e = open_dirty[i];
      if (--e->refs == 0 && e->doomed) {
        close (e->fd);
        free (e);
      }
    }
    evict (c);
  }
  if (err) {
    errno = err;
    return -1;
  }
  return 0;
}

void
fd_cache_free (struct fd_cache *c)
{
  struct entry *e, *next;

  if (c == NULL)
    return;
  for (e = c->lru.next; e != &c->lru; e = next) {
    next = e->next;
    close (e->fd);
    free (e);
  }
  free (c->buckets);
  free (c->closed_dirty);
  pthread_mutex_destroy (&c->lock);
  free (c);
}
