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
  bool awaited;                 /* closing, and a sync waits for it */
  struct entry *hnext;          /* hash chain; list of victims to close */
  struct entry *prev, *next;    /* LRU list, most recent first; or the
                                   list of dirty entries being closed */
};

struct fd_cache {
  pthread_mutex_t lock;
  size_t max, count;
  size_t nbuckets;
  struct entry **buckets;
  struct entry lru;             /* sentinel */
  fd_cache_open_fn open_fn;
  void *opaque;

  /* Dirty descriptors evicted from the table and being fdatasync'd before
   * their close, outside the lock.  A sync waits for those that were
   * closing when it started (they hold writes it covers): NR_AWAITED of
   * them are left, and CLOSED is signalled as each finishes.
   */
  struct entry closing;         /* sentinel */
  size_t nr_awaited;
  pthread_cond_t closed;

  /* The errno of the first fdatasync that failed, its chunk, and when:
   * sticky, as the kernel may have dropped the pages and will not say so
   * again.
   */
  int lost_err;
  uint64_t lost_n;
  const char *lost_when;
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
  pthread_cond_init (&c->closed, NULL);
  c->lru.prev = c->lru.next = &c->lru;
  c->closing.prev = c->closing.next = &c->closing;
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
list_push_front (struct entry *head, struct entry *e)
{
  e->next = head->next;
  e->prev = head;
  head->next->prev = e;
  head->next = e;
}

static void
lru_push_front (struct fd_cache *c, struct entry *e)
{
  list_push_front (&c->lru, e);
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

/* fdatasync a dirty descriptor that is about to be closed, then close it.
 * Returns 0, or the errno of the failure.  A close that fails after a
 * good fdatasync (NFS reports write-back there) counts as a failed sync.
 */
static int
sync_and_close (int fd)
{
  int err = 0;

  if (fdatasync (fd) == -1)
    err = errno;
  if (close (fd) == -1 && err == 0 && errno != EINTR)
    err = errno;
  return err;
}

/* Record a failed fdatasync.  Lock held. */
static void
note_lost (struct fd_cache *c, uint64_t n, int err, const char *when)
{
  nbdkit_error ("fdatasync: chunk %" PRIu64 " %s: %s", n, when,
                strerror (err));
  if (c->lost_err == 0) {
    c->lost_err = err;
    c->lost_n = n;
    c->lost_when = when;
  }
}

/* Report the sticky failure, if any.  Lock held. */
static int
check_lost (struct fd_cache *c)
{
  if (c->lost_err == 0)
    return 0;
  nbdkit_error ("an fdatasync of chunk %" PRIu64 " failed %s (%s): writes "
                "acknowledged before it may be lost", c->lost_n,
                c->lost_when, strerror (c->lost_err));
  errno = EIO;
  return -1;
}

/* Take idle descriptors out of the table, least recently used first,
 * while over the limit.  Called with the lock held; returns the victims
 * (chained by hnext) for close_victims, which must be called without the
 * lock: a dirty one needs an fdatasync first, which must not stall every
 * other thread's I/O.  Dirty victims stay on the closing list meanwhile,
 * so that a sync can wait for them.
 */
static struct entry *
evict (struct fd_cache *c)
{
  struct entry *e = c->lru.prev, *victims = NULL;

  while (c->count > c->max && e != &c->lru) {
    struct entry *prev = e->prev;

    if (e->refs == 0) {
      lru_unlink (e);
      hash_remove (c, e);
      c->count--;
      if (e->dirty)
        list_push_front (&c->closing, e);
      e->hnext = victims;
      victims = e;
    }
    e = prev;
  }
  return victims;
}

/* Close what evict took out.  Called without the lock. */
static void
close_victims (struct fd_cache *c, struct entry *victims)
{
  struct entry *e, *next;

  for (e = victims; e; e = next) {
    next = e->hnext;
    if (!e->dirty) {
      close (e->fd);
      free (e);
      continue;
    }
    int err = sync_and_close (e->fd);
    ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&c->lock);
    if (err)
      note_lost (c, e->n, err, "before closing its descriptor");
    lru_unlink (e);             /* off the closing list */
    if (e->awaited && --c->nr_awaited == 0)
      pthread_cond_broadcast (&c->closed);
    free (e);
  }
}

int
fd_cache_get (struct fd_cache *c, uint64_t n, bool create, bool *created)
{
  struct entry *e;
  struct entry *victims;
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

  {
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
    victims = evict (c);
  }
  close_victims (c, victims);
  return fd;
}

void
fd_cache_put (struct fd_cache *c, uint64_t n, bool dirtied)
{
  struct entry *victims;

  {
    ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&c->lock);
    struct entry *e = lookup (c, n);

    if (e == NULL)
      return;
    if (dirtied)
      e->dirty = true;
    e->refs--;
    victims = evict (c);
  }
  close_victims (c, victims);
}

void
fd_cache_forget (struct fd_cache *c, uint64_t n)
{
  ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&c->lock);
  struct entry *e = lookup (c, n);

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

bool
fd_cache_forget_lost (struct fd_cache *c)
{
  ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&c->lock);
  bool was = c->lost_err != 0;

  c->lost_err = 0;
  return was;
}

int
fd_cache_sync (struct fd_cache *c, bool *lost)
{
  CLEANUP_FREE struct entry **open_dirty = NULL;
  CLEANUP_FREE int *errs = NULL;
  struct entry *e, *victims;
  size_t nr_open = 0, i;
  int err = 0;

  *lost = false;
  /* Take a snapshot of what needs syncing, holding a reference on every
   * open dirty descriptor so it is not closed under us.  A write that
   * lands after the snapshot marks its entry dirty again.  Dirty
   * descriptors being closed right now are synced by their closer: note
   * that we wait for them.
   */
  {
    ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&c->lock);
    if (check_lost (c) == -1) {
      *lost = true;
      return -1;
    }
    /* Nothing is marked yet, so failing here loses nothing: a later
     * sync, with memory to spare, covers the same files.
     */
    open_dirty = malloc ((c->count + 1) * sizeof *open_dirty);
    errs = calloc (c->count + 1, sizeof *errs);
    if (open_dirty == NULL || errs == NULL) {
      int saved = errno;
      nbdkit_error ("fd cache sync: %m");
      errno = saved;
      return -1;
    }
    for (e = c->lru.next; e != &c->lru; e = e->next) {
      if (e->dirty) {
        e->dirty = false;
        e->refs++;
        open_dirty[nr_open++] = e;
      }
    }
    for (e = c->closing.next; e != &c->closing; e = e->next) {
      if (!e->awaited) {
        e->awaited = true;
        c->nr_awaited++;
      }
    }
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

  {
    ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&c->lock);
    for (i = 0; i < nr_open; ++i) {
      e = open_dirty[i];
      if (errs[i]) {
        note_lost (c, e->n, errs[i], "at a flush");
        /* No retry will make it durable (the kernel may have dropped the
         * pages), but keep it dirty so that closing it tries and logs.
         */
        e->dirty = true;
      }
      if (--e->refs == 0 && e->doomed) {
        close (e->fd);
        free (e);
      }
    }
    /* The writes of descriptors closing at the snapshot are covered by
     * this sync too: wait for their fdatasyncs, and their verdict.
     */
    while (c->nr_awaited > 0)
      pthread_cond_wait (&c->closed, &c->lock);
    err = check_lost (c);
    victims = evict (c);
  }
  close_victims (c, victims);
  if (err == -1) {
    *lost = true;
    errno = EIO;
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
    int err;

    next = e->next;
    if (e->dirty && (err = sync_and_close (e->fd)) != 0)
      nbdkit_error ("fdatasync: chunk %" PRIu64 " at shutdown: %s: writes "
                    "since the last flush may be lost", e->n, strerror (err));
    else if (!e->dirty)
      close (e->fd);
    free (e);
  }
  free (c->buckets);
  pthread_cond_destroy (&c->closed);
  pthread_mutex_destroy (&c->lock);
  free (c);
}
