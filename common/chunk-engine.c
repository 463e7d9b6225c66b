/* shardkit: the chunk engine shared by every volume store.
 * GPL-3.0-or-later.  See chunk-engine.h for the model.
 */
#include <config.h>

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <nbdkit-plugin.h>

#include "chunk-engine.h"
#include "cleanup.h"
#include "thread-buffer.h"

/* Number of chunk locks.  Chunk n uses lock n % LOCK_STRIPES, so that up
 * to LOCK_STRIPES consecutive chunks never share a lock (removal batches
 * rely on that, see remove_whole_chunks).
 */
#define LOCK_STRIPES 1024
/* Largest DeleteObjects batch S3 accepts, and our batch for any store. */
#define REMOVE_BATCH 1000
/* Volumes with more chunks than this are refused: the presence map would
 * be over 512 MiB.  At the default 4 MiB chunks that is 16 PiB.
 */
#define MAX_CHUNKS CHUNK_ENGINE_MAX_CHUNKS

struct chunk_engine {
  char *name;
  const struct chunk_store_ops *ops;
  void *store;
  uint64_t size;
  uint32_t chunk_size;
  unsigned shift;
  uint64_t nr_chunks;
  /* One bit per chunk, 1 = the chunk exists in the store.  Bits change
   * only under the chunk's exclusive lock, but a byte holds bits of 8
   * chunks with different locks, hence the atomic operations.
   */
  uint8_t *present;
  /* One bit per chunk, 1 = the chunk may be absent from the store even
   * though its present bit is set: a write that created it, or a
   * removal, failed or is in flight, so the store may hold the chunk or
   * not.  Only then is "not found" a believable answer for a present
   * chunk; otherwise the store lost it (or lies), which is an error,
   * never zeros.  Same locking as PRESENT.
   */
  uint8_t *maybe_absent;
  pthread_rwlock_t locks[LOCK_STRIPES];

  /* Optional worker pool (chunk_engine_set_parallelism): requests that
   * span several chunks hand their pieces to it.  Batches waiting for
   * a worker are queued in FIFO order.
   */
  unsigned parallel;            /* pieces in flight per request; 1 = serial */
  pthread_t *workers;
  unsigned nworkers;
  pthread_mutex_t pool_lock;
  pthread_cond_t pool_cond;     /* work queued, or stopping */
  struct batch *queue_head, *queue_tail;
  bool stopping;
};

bool
buffer_is_zero (const void *buf, size_t len)
{
  const unsigned char *p = buf;
  size_t i, head = len < 16 ? len : 16;

  /* Check a few bytes by hand, then compare the buffer with itself
   * shifted: memcmp is vectorised and this needs no zero page.
   */
  for (i = 0; i < head; ++i)
    if (p[i])
      return false;
  return len <= 16 || memcmp (p, p + 16, len - 16) == 0;
}

bool
chunk_engine_is_present (const struct chunk_engine *e, uint64_t n)
{
  uint8_t byte = __atomic_load_n (&e->present[n >> 3], __ATOMIC_ACQUIRE);
  return (byte >> (n & 7)) & 1;
}

static void
set_present (struct chunk_engine *e, uint64_t n, bool yes)
{
  uint8_t bit = (uint8_t) (1u << (n & 7));

  if (yes)
    __atomic_fetch_or (&e->present[n >> 3], bit, __ATOMIC_RELEASE);
  else
    __atomic_fetch_and (&e->present[n >> 3], (uint8_t) ~bit, __ATOMIC_RELEASE);
}

static bool
is_maybe_absent (const struct chunk_engine *e, uint64_t n)
{
  uint8_t byte = __atomic_load_n (&e->maybe_absent[n >> 3], __ATOMIC_ACQUIRE);
  return (byte >> (n & 7)) & 1;
}

static void
set_maybe_absent (struct chunk_engine *e, uint64_t n, bool yes)
{
  uint8_t bit = (uint8_t) (1u << (n & 7));

  if (yes)
    __atomic_fetch_or (&e->maybe_absent[n >> 3], bit, __ATOMIC_RELEASE);
  else
    __atomic_fetch_and (&e->maybe_absent[n >> 3], (uint8_t) ~bit,
                        __ATOMIC_RELEASE);
}

/* Before a write or a removal whose outcome is not known until the store
 * answers (and not even then, if the answer is lost): the chunk counts
 * as present, so that a later trim removes whatever may be there, and
 * as maybe absent, so that a read may find nothing.
 */
static void
mark_uncertain (struct chunk_engine *e, uint64_t n)
{
  set_maybe_absent (e, n, true);
  set_present (e, n, true);
}

/* The store confirmed that chunk n exists (YES) or not. */
static void
mark_known (struct chunk_engine *e, uint64_t n, bool yes)
{
  set_present (e, n, yes);
  set_maybe_absent (e, n, false);
}

static void
found_chunk (void *opaque, uint64_t n)
{
  struct chunk_engine *e = opaque;

  if (n >= e->nr_chunks) {
    /* Left over from a larger volume of the same name, or a stray file:
     * never served, never touched.
     */
    nbdkit_debug ("%s: ignoring chunk %" PRIu64 " beyond the end of the "
                  "volume (%" PRIu64 " chunks)", e->name, n, e->nr_chunks);
    return;
  }
  set_present (e, n, true);
}

struct chunk_engine *
chunk_engine_new (const char *name, const struct chunk_store_ops *ops,
                  void *store, uint64_t size, uint32_t chunk_size)
{
  struct chunk_engine *e;
  size_t i;

  if (chunk_size == 0 || (chunk_size & (chunk_size - 1)) != 0 || size == 0 ||
      size > (uint64_t) INT64_MAX) {
    nbdkit_error ("%s: invalid size %" PRIu64 " or chunk size %" PRIu32,
                  name, size, chunk_size);
    errno = EINVAL;
    return NULL;
  }
  e = calloc (1, sizeof *e);
  if (e == NULL) {
    nbdkit_error ("calloc: %m");
    return NULL;
  }
  e->ops = ops;
  e->store = store;
  e->size = size;
  e->chunk_size = chunk_size;
  e->shift = (unsigned) __builtin_ctz (chunk_size);
  e->nr_chunks = (size + chunk_size - 1) >> e->shift;
  if (e->nr_chunks > MAX_CHUNKS) {
    nbdkit_error ("%s: %" PRIu64 " chunks is too many (at most %" PRIu64
                  "): use a larger chunk size", name, e->nr_chunks, MAX_CHUNKS);
    free (e);
    errno = EFBIG;
    return NULL;
  }
  e->name = strdup (name);
  e->present = calloc ((size_t) ((e->nr_chunks + 7) / 8), 1);
  e->maybe_absent = calloc ((size_t) ((e->nr_chunks + 7) / 8), 1);
  if (e->name == NULL || e->present == NULL || e->maybe_absent == NULL) {
    nbdkit_error ("calloc: %m");
    free (e->name);
    free (e->present);
    free (e->maybe_absent);
    free (e);
    return NULL;
  }
  for (i = 0; i < LOCK_STRIPES; ++i)
    pthread_rwlock_init (&e->locks[i], NULL);
  e->parallel = 1;
  pthread_mutex_init (&e->pool_lock, NULL);
  pthread_cond_init (&e->pool_cond, NULL);

  if (ops->list (store, found_chunk, e) == -1) {
    chunk_engine_free (e);
    return NULL;
  }
  nbdkit_debug ("%s: %" PRIu64 " bytes, %" PRIu64 " chunks of %" PRIu32
                ", %" PRIu64 " present", name, size, e->nr_chunks, chunk_size,
                chunk_engine_count_present (e));
  return e;
}

static void stop_workers (struct chunk_engine *e);

void
chunk_engine_free (struct chunk_engine *e)
{
  size_t i;

  if (e == NULL)
    return;
  stop_workers (e);
  for (i = 0; i < LOCK_STRIPES; ++i)
    pthread_rwlock_destroy (&e->locks[i]);
  pthread_mutex_destroy (&e->pool_lock);
  pthread_cond_destroy (&e->pool_cond);
  free (e->present);
  free (e->maybe_absent);
  free (e->name);
  free (e);
}

uint64_t
chunk_engine_size (const struct chunk_engine *e)
{
  return e->size;
}

uint32_t
chunk_engine_chunk_size (const struct chunk_engine *e)
{
  return e->chunk_size;
}

uint64_t
chunk_engine_count_present (const struct chunk_engine *e)
{
  uint64_t i, count = 0;

  for (i = 0; i < (e->nr_chunks + 7) / 8; ++i)
    count += (uint64_t) __builtin_popcount (__atomic_load_n (&e->present[i],
                                                             __ATOMIC_ACQUIRE));
  return count;
}

/* The number of bytes of the volume that chunk n covers: the chunk size,
 * except for a last chunk cut short by the end of the volume.
 */
static uint32_t
chunk_span (const struct chunk_engine *e, uint64_t n)
{
  return chunk_span_of (e->size, e->chunk_size, n);
}

static pthread_rwlock_t *
chunk_lock (struct chunk_engine *e, uint64_t n)
{
  return &e->locks[n % LOCK_STRIPES];
}

/* Iterate over the per-chunk pieces of [offset, offset+count). */
struct piece {
  uint64_t n;                   /* chunk number */
  uint32_t off;                 /* offset inside the chunk */
  uint32_t len;                 /* bytes in this piece */
  uint64_t done;                /* bytes of the request before this piece */
};

#define FOR_EACH_PIECE(e, p, count, offset)                             \
  for (struct piece p = first_piece ((e), (count), (offset));           \
       p.done < (count);                                                \
       next_piece ((e), &p, (count), (offset)))

static struct piece
first_piece (const struct chunk_engine *e, uint32_t count, uint64_t offset)
{
  struct piece p = { .done = 0 };

  p.n = offset >> e->shift;
  p.off = (uint32_t) (offset & (e->chunk_size - 1));
  p.len = e->chunk_size - p.off;
  if (p.len > count)
    p.len = count;
  return p;
}

static void
next_piece (const struct chunk_engine *e, struct piece *p,
            uint32_t count, uint64_t offset)
{
  p->done += p->len;
  p->n++;
  p->off = 0;
  p->len = count - p->done < e->chunk_size ?
    (uint32_t) (count - p->done) : e->chunk_size;
}

static int
check_range (const struct chunk_engine *e, uint32_t count, uint64_t offset)
{
  if (offset > e->size || count > e->size - offset) {
    nbdkit_error ("%s: request [%" PRIu64 ", +%" PRIu32 ") is beyond the "
                  "end of the volume (%" PRIu64 " bytes)",
                  e->name, offset, count, e->size);
    errno = EINVAL;
    return -1;
  }
  return 0;
}

static int read_piece (struct chunk_engine *e, unsigned char *dst,
                       const struct piece *pp);
static int write_piece (struct chunk_engine *e, const unsigned char *src,
                        const struct piece *pp, bool fua);

/* Parallel requests.
 *
 * A request spanning several chunks becomes a batch of pieces.  The
 * calling thread works on the batch itself and queues it for up to
 * parallel-1 workers; each taker claims pieces by index until none are
 * left.  Each piece takes its own chunk lock exactly as in the serial
 * path, one at a time, so the locking (and the deadlock freedom) is the
 * same.  The first error wins; pieces not yet claimed are then skipped.
 */
enum batch_op { OP_READ, OP_WRITE };

struct batch {
  struct chunk_engine *e;
  enum batch_op op;
  unsigned char *buf;
  uint32_t count;
  uint64_t offset;
  bool fua;
  uint64_t npieces;
  uint64_t next;                /* next piece to claim (atomic) */
  int err;                      /* first errno, 0 if none (atomic) */
  unsigned tickets;             /* workers that may still take it */
  unsigned active;              /* workers working on it */
  struct batch *qnext;          /* in the engine's queue */
  pthread_cond_t done;          /* active dropped to 0 */
};

static struct piece
piece_at (const struct chunk_engine *e, uint32_t count, uint64_t offset,
          uint64_t i)
{
  struct piece p = first_piece (e, count, offset);

  if (i > 0) {
    p.done = p.len + (i - 1) * e->chunk_size;
    p.n += i;
    p.off = 0;
    p.len = count - p.done < e->chunk_size ?
      (uint32_t) (count - p.done) : e->chunk_size;
  }
  return p;
}

static uint64_t
count_pieces (const struct chunk_engine *e, uint32_t count, uint64_t offset)
{
  if (count == 0)
    return 0;
  return ((offset + count - 1) >> e->shift) - (offset >> e->shift) + 1;
}

static bool
use_workers (const struct chunk_engine *e, uint32_t count, uint64_t offset)
{
  return e->nworkers > 0 && count_pieces (e, count, offset) > 1;
}

static void
work_on (struct batch *b)
{
  struct chunk_engine *e = b->e;

  for (;;) {
    uint64_t i = __atomic_fetch_add (&b->next, 1, __ATOMIC_ACQ_REL);
    struct piece p;
    int r;

    if (i >= b->npieces || __atomic_load_n (&b->err, __ATOMIC_ACQUIRE))
      return;
    p = piece_at (e, b->count, b->offset, i);
    if (b->op == OP_READ)
      r = read_piece (e, b->buf + p.done, &p);
    else
      r = write_piece (e, b->buf + p.done, &p, b->fua);
    if (r == -1) {
      int expected = 0, err = errno ? errno : EIO;
      __atomic_compare_exchange_n (&b->err, &expected, err, false,
                                   __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE);
    }
  }
}

/* Remove B from the queue; called with pool_lock held. */
static void
dequeue (struct chunk_engine *e, struct batch *b)
{
  struct batch **pp, *prev = NULL;

  for (pp = &e->queue_head; *pp; prev = *pp, pp = &(*pp)->qnext) {
    if (*pp == b) {
      *pp = b->qnext;
      if (e->queue_tail == b)
        e->queue_tail = prev;
      b->qnext = NULL;
      return;
    }
  }
}

static void *
worker (void *arg)
{
  struct chunk_engine *e = arg;

  pthread_mutex_lock (&e->pool_lock);
  for (;;) {
    struct batch *b;

    while (e->queue_head == NULL && !e->stopping)
      pthread_cond_wait (&e->pool_cond, &e->pool_lock);
    if (e->stopping)
      break;
    b = e->queue_head;
    if (--b->tickets == 0)
      dequeue (e, b);
    b->active++;
    pthread_mutex_unlock (&e->pool_lock);

    work_on (b);

    pthread_mutex_lock (&e->pool_lock);
    if (--b->active == 0)
      pthread_cond_signal (&b->done);
  }
  pthread_mutex_unlock (&e->pool_lock);
  return NULL;
}

static int
run_parallel (struct chunk_engine *e, enum batch_op op, void *buf,
              uint32_t count, uint64_t offset, bool fua)
{
  struct batch b = {
    .e = e, .op = op, .buf = buf, .count = count, .offset = offset,
    .fua = fua, .npieces = count_pieces (e, count, offset),
  };
  uint64_t helpers = b.npieces - 1;

  if (helpers > e->parallel - 1)
    helpers = e->parallel - 1;
  if (helpers > e->nworkers)
    helpers = e->nworkers;
  pthread_cond_init (&b.done, NULL);

  pthread_mutex_lock (&e->pool_lock);
  b.tickets = (unsigned) helpers;
  if (e->queue_tail)
    e->queue_tail->qnext = &b;
  else
    e->queue_head = &b;
  e->queue_tail = &b;
  if (helpers == 1)
    pthread_cond_signal (&e->pool_cond);
  else
    pthread_cond_broadcast (&e->pool_cond);
  pthread_mutex_unlock (&e->pool_lock);

  work_on (&b);

  /* Nothing left to claim: withdraw the tickets nobody took, then wait
   * for the workers that did take one.
   */
  pthread_mutex_lock (&e->pool_lock);
  if (b.tickets > 0) {
    dequeue (e, &b);
    b.tickets = 0;
  }
  while (b.active > 0)
    pthread_cond_wait (&b.done, &e->pool_lock);
  pthread_mutex_unlock (&e->pool_lock);
  pthread_cond_destroy (&b.done);

  if (b.err) {
    errno = b.err;
    return -1;
  }
  return 0;
}

static void
stop_workers (struct chunk_engine *e)
{
  unsigned i;

  if (e->nworkers == 0)
    return;
  pthread_mutex_lock (&e->pool_lock);
  e->stopping = true;
  pthread_cond_broadcast (&e->pool_cond);
  pthread_mutex_unlock (&e->pool_lock);
  for (i = 0; i < e->nworkers; ++i)
    pthread_join (e->workers[i], NULL);
  free (e->workers);
  e->workers = NULL;
  e->nworkers = 0;
  e->stopping = false;
}

int
chunk_engine_set_parallelism (struct chunk_engine *e, unsigned n)
{
  unsigned i;
  int err;

  if (n == 0) {
    nbdkit_error ("%s: parallelism must be at least 1", e->name);
    errno = EINVAL;
    return -1;
  }
  stop_workers (e);
  e->parallel = n;
  if (n == 1)
    return 0;
  e->workers = calloc (n - 1, sizeof *e->workers);
  if (e->workers == NULL) {
    nbdkit_error ("calloc: %m");
    return -1;
  }
  for (i = 0; i < n - 1; ++i) {
    err = pthread_create (&e->workers[i], NULL, worker, e);
    if (err) {
      errno = err;
      nbdkit_error ("%s: pthread_create: %m", e->name);
      e->nworkers = i;
      stop_workers (e);
      e->parallel = 1;
      errno = err;
      return -1;
    }
    e->nworkers = i + 1;
  }
  return 0;
}

/* The store says that chunk n, which the map holds present, does not
 * exist.  Believable only while a write or removal of it has an unknown
 * outcome; otherwise the chunk was lost or the store lies, and serving
 * zeros (or writing them back in a read-modify-write) would destroy
 * data.  Returns 0 if the chunk reads as zeros, -1 (EIO) if not.
 */
static int
missing_chunk (struct chunk_engine *e, uint64_t n)
{
  if (is_maybe_absent (e, n)) {
    nbdkit_debug ("%s: chunk %" PRIu64 " is absent after a write or "
                  "removal that failed: reads as zeros", e->name, n);
    return 0;
  }
  nbdkit_error ("%s: chunk %" PRIu64 " (%s.%" PRIu64 ".chunk) is part of "
                "the volume but the store says it does not exist: "
                "not served as zeros", e->name, n, e->name, n);
  errno = EIO;
  return -1;
}

/* Read one piece into DST, under the chunk's shared lock. */
static int
read_piece (struct chunk_engine *e, unsigned char *dst, const struct piece *pp)
{
  const struct piece p = *pp;
  CLEANUP_RWLOCK_UNLOCK pthread_rwlock_t *lock = chunk_lock (e, p.n);
  int r;

  pthread_rwlock_rdlock (lock);
  if (!chunk_engine_is_present (e, p.n)) {
    memset (dst, 0, p.len);
    return 0;
  }
  r = e->ops->read (e->store, p.n, dst, p.len, p.off);
  if (r == -1)
    return -1;
  if (r == 1) {
    if (missing_chunk (e, p.n) == -1)
      return -1;
    memset (dst, 0, p.len);
  }
  return 0;
}

int
chunk_engine_pread (struct chunk_engine *e, void *buf,
                    uint32_t count, uint64_t offset)
{
  if (check_range (e, count, offset) == -1)
    return -1;
  if (use_workers (e, count, offset))
    return run_parallel (e, OP_READ, buf, count, offset, false);

  FOR_EACH_PIECE (e, p, count, offset) {
    if (read_piece (e, (unsigned char *) buf + p.done, &p) == -1)
      return -1;
  }
  return 0;
}

/* Remove chunk n, under its exclusive lock. */
static int
remove_one (struct chunk_engine *e, uint64_t n, bool fua)
{
  mark_uncertain (e, n);
  if (e->ops->remove (e->store, &n, 1, fua) == -1)
    return -1;
  mark_known (e, n, false);
  return 0;
}

/* Write LEN bytes at OFF of chunk n (a whole chunk for stores without
 * partial writes).  A write that fails may still have landed (an S3 PUT
 * stored but its answer lost, a file created before the error), so the
 * chunk counts as present from the first attempt: a later trim or zero
 * then removes whatever is there, and the old bytes never come back.
 * Called with the chunk's exclusive lock held.
 */
static int
write_whole (struct chunk_engine *e, uint64_t n, const void *data,
             uint32_t len, bool fua)
{
  if (!chunk_engine_is_present (e, n))
    mark_uncertain (e, n);
  if (e->ops->write (e->store, n, data, len, 0, fua) == -1)
    return -1;
  mark_known (e, n, true);
  return 0;
}

/* The read-modify-write buffer: one per thread, kept between requests
 * (a fresh chunk-sized malloc per request was mostly page faults).
 */
static struct thread_buffer rmw_buffer = THREAD_BUFFER_INIT;

static void
put_rmw_buffer (unsigned char **p)
{
  thread_buffer_put (&rmw_buffer, *p);
}

/* Read-modify-write of one chunk for stores without partial writes:
 * called with the chunk's exclusive lock held.  DATA == NULL writes
 * zeros.  A chunk that ends up all zero is removed instead of stored.
 */
static int
rewrite_chunk (struct chunk_engine *e, uint64_t n, const void *data,
               uint32_t len, uint32_t off, bool fua)
{
  const uint32_t span = chunk_span (e, n);
  __attribute__ ((cleanup (put_rmw_buffer))) unsigned char *whole = NULL;
  int r;

  whole = thread_buffer_get (&rmw_buffer, span);
  if (whole == NULL) {
    nbdkit_error ("malloc: %m");
    return -1;
  }
  if (chunk_engine_is_present (e, n)) {
    /* Never write back what could not be read. */
    r = e->ops->read (e->store, n, whole, span, 0);
    if (r == -1)
      return -1;
    if (r == 1) {
      if (missing_chunk (e, n) == -1)
        return -1;
      memset (whole, 0, span);
    }
  }
  else
    memset (whole, 0, span);

  if (data)
    memcpy (whole + off, data, len);
  else
    memset (whole + off, 0, len);

  if (buffer_is_zero (whole, span)) {
    if (chunk_engine_is_present (e, n))
      return remove_one (e, n, fua);
    return 0;
  }
  return write_whole (e, n, whole, span, fua);
}

/* Write one piece from SRC, under the chunk's lock. */
static int
write_piece (struct chunk_engine *e, const unsigned char *src,
             const struct piece *pp, bool fua)
{
  const struct piece p = *pp;
  const bool whole = p.off == 0 && p.len == chunk_span (e, p.n);
  const bool zero = buffer_is_zero (src, p.len);
  CLEANUP_RWLOCK_UNLOCK pthread_rwlock_t *lock = chunk_lock (e, p.n);
  bool present;

  /* A store that writes in place can take writes to one chunk side by
   * side (like a file: the kernel orders overlapping ones), so they
   * share the lock; only what may remove the chunk, and read-modify-
   * write, needs it alone.  Trims and zeros always hold it exclusive.
   */
  if (e->ops->partial_write && !(whole && zero))
    pthread_rwlock_rdlock (lock);
  else
    pthread_rwlock_wrlock (lock);
  present = chunk_engine_is_present (e, p.n);

  if (zero) {
    /* Zeros into an absent chunk change nothing; zeros over a whole
     * chunk remove it.
     */
    if (!present)
      return 0;
    if (whole)
      return remove_one (e, p.n, fua);
  }

  if (e->ops->partial_write) {
    /* Mark the chunk present first: a write that fails half-way may
     * still have created it, and a later trim must then remove it rather
     * than believe it absent (and let the stale bytes come back).  A
     * reader racing this sees a missing file, which reads as zeros
     * while the chunk is marked maybe absent.
     */
    if (!present)
      mark_uncertain (e, p.n);
    if (e->ops->write (e->store, p.n, src, p.len, p.off, fua) == -1)
      return -1;
    if (!present)
      set_maybe_absent (e, p.n, false);
  }
  else if (whole) {
    if (write_whole (e, p.n, src, p.len, fua) == -1)
      return -1;
  }
  else if (rewrite_chunk (e, p.n, src, p.len, p.off, fua) == -1)
    return -1;
  return 0;
}

int
chunk_engine_pwrite (struct chunk_engine *e, const void *buf,
                     uint32_t count, uint64_t offset, bool fua)
{
  if (check_range (e, count, offset) == -1)
    return -1;
  if (use_workers (e, count, offset))
    return run_parallel (e, OP_WRITE, (void *) buf, count, offset, fua);

  FOR_EACH_PIECE (e, p, count, offset) {
    if (write_piece (e, (const unsigned char *) buf + p.done, &p, fua) == -1)
      return -1;
  }
  return 0;
}

static void
unlock_stripes (struct chunk_engine *e, uint64_t first, size_t count)
{
  size_t i;

  for (i = 0; i < count; ++i)
    pthread_rwlock_unlock (chunk_lock (e, first + i));
}

/* Remove the COUNT whole chunks starting at FIRST, in batches.  COUNT is at
 * most REMOVE_BATCH < LOCK_STRIPES, so the chunks use distinct locks;
 * taking them in chunk order can deadlock with another batch only if the
 * two batches wrap the stripe array in different places, so take them in
 * stripe order instead.
 */
static int
remove_whole_chunks (struct chunk_engine *e, uint64_t first, size_t count,
                     bool fua)
{
  uint64_t ns[REMOVE_BATCH];
  size_t i, k = 0;
  size_t split = 0;             /* chunks before the stripe wrap */
  int r = 0;

  /* Stripe order: chunks whose stripe index is below FIRST's come after
   * the wrap; lock those first.
   */
  for (i = 0; i < count; ++i)
    if ((first + i) % LOCK_STRIPES == 0 && i > 0)
      split = i;
  for (i = split; i < count; ++i)
    pthread_rwlock_wrlock (chunk_lock (e, first + i));
  for (i = 0; i < split; ++i)
    pthread_rwlock_wrlock (chunk_lock (e, first + i));

  for (i = 0; i < count; ++i)
    if (chunk_engine_is_present (e, first + i))
      ns[k++] = first + i;
  if (k > 0) {
    /* A batch that fails may have removed some of its chunks. */
    for (i = 0; i < k; ++i)
      mark_uncertain (e, ns[i]);
    r = e->ops->remove (e->store, ns, k, fua);
    if (r == 0)
      for (i = 0; i < k; ++i)
        mark_known (e, ns[i], false);
  }
  unlock_stripes (e, first, count);
  return r;
}

/* Trim and zero: both make the range read as zeros. */
static int
clear_range (struct chunk_engine *e, uint32_t count, uint64_t offset,
             bool fast, bool fua)
{
  uint64_t batch_first = 0;
  size_t batch_len = 0;

  if (check_range (e, count, offset) == -1)
    return -1;

  /* A store that cannot punch holes must rewrite partial chunks: for a
   * fast zero, refuse before changing anything.
   */
  if (fast && e->ops->punch == NULL) {
    FOR_EACH_PIECE (e, p, count, offset) {
      if (!(p.off == 0 && p.len == chunk_span (e, p.n)) &&
          chunk_engine_is_present (e, p.n)) {
        errno = ENOTSUP;
        return -1;
      }
    }
  }

  FOR_EACH_PIECE (e, p, count, offset) {
    const bool whole = p.off == 0 && p.len == chunk_span (e, p.n);

    if (whole) {
      if (batch_len == 0)
        batch_first = p.n;
      batch_len++;
      if (batch_len == REMOVE_BATCH) {
        if (remove_whole_chunks (e, batch_first, batch_len, fua) == -1)
          return -1;
        batch_len = 0;
      }
      continue;
    }

    /* A partial chunk, at the start or the end of the range. */
    {
      CLEANUP_RWLOCK_UNLOCK pthread_rwlock_t *lock = chunk_lock (e, p.n);
      int r;

      pthread_rwlock_wrlock (lock);
      if (!chunk_engine_is_present (e, p.n))
        continue;
      if (e->ops->punch) {
        r = e->ops->punch (e->store, p.n, p.len, p.off, fua);
        if (r == -1)
          return -1;
        if (r == 1 && remove_one (e, p.n, fua) == -1)
          return -1;
      }
      else if (rewrite_chunk (e, p.n, NULL, p.len, p.off, fua) == -1)
        return -1;
    }
  }
  if (batch_len > 0 &&
      remove_whole_chunks (e, batch_first, batch_len, fua) == -1)
    return -1;
  return 0;
}

int
chunk_engine_trim (struct chunk_engine *e, uint32_t count, uint64_t offset,
                   bool fua)
{
  return clear_range (e, count, offset, false, fua);
}

int
chunk_engine_zero (struct chunk_engine *e, uint32_t count, uint64_t offset,
                   bool fast, bool fua)
{
  /* The volume format stores zeros as absence, so zeroing is trimming
   * whether or not the client allowed holes: reads see zeros either way.
   */
  return clear_range (e, count, offset, fast, fua);
}

int
chunk_engine_flush (struct chunk_engine *e)
{
  return e->ops->sync (e->store);
}

int
chunk_engine_extents (struct chunk_engine *e, uint32_t count, uint64_t offset,
                      bool req_one, struct nbdkit_extents *extents)
{
  if (check_range (e, count, offset) == -1)
    return -1;

  FOR_EACH_PIECE (e, p, count, offset) {
    const uint64_t base = p.n << e->shift;
    CLEANUP_RWLOCK_UNLOCK pthread_rwlock_t *lock = chunk_lock (e, p.n);

    pthread_rwlock_rdlock (lock);
    if (!chunk_engine_is_present (e, p.n)) {
      if (nbdkit_add_extent (extents, base + p.off, p.len,
                             NBDKIT_EXTENT_HOLE | NBDKIT_EXTENT_ZERO) == -1)
        return -1;
    }
    else if (e->ops->extents) {
      if (e->ops->extents (e->store, p.n, p.len, p.off, base, extents) == -1)
        return -1;
    }
    else if (nbdkit_add_extent (extents, base + p.off, p.len, 0) == -1)
      return -1;

    /* With REQ_ONE the client wants just the first extent; absent chunks
     * are cheap, so keep merging holes but stop at the first data.
     */
    if (req_one && chunk_engine_is_present (e, p.n))
      break;
  }
  return 0;
}

int
chunk_engine_cache (struct chunk_engine *e, uint32_t count, uint64_t offset)
{
  if (check_range (e, count, offset) == -1)
    return -1;
  if (e->ops->prefetch == NULL)
    return 0;

  FOR_EACH_PIECE (e, p, count, offset) {
    CLEANUP_RWLOCK_UNLOCK pthread_rwlock_t *lock = chunk_lock (e, p.n);

    pthread_rwlock_rdlock (lock);
    if (chunk_engine_is_present (e, p.n) &&
        e->ops->prefetch (e->store, p.n, p.len, p.off) == -1)
      return -1;
  }
  return 0;
}
