/* shardkit: the overlay store.  GPL-3.0-or-later.  See overlay-store.h.
 *
 * Locking: the engine above serialises what may remove a chunk (trim,
 * zero, whole-chunk zero writes) against everything else on that chunk,
 * but lets writes to a store that writes in place share the chunk.  So
 * the only race the overlay must settle itself is two writers of a chunk
 * TOP does not hold yet: both would copy BASE's chunk up, and the second
 * copy could overwrite the first writer's data.  The copy-up runs under
 * one of a set of striped mutexes, and the HELD bit is set only once TOP
 * holds the whole chunk, so that a reader never sees half a copy.
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
#include "overlay-store.h"

#define COPY_STRIPES 256

struct overlay_store {
  char *name;
  struct chunk_store_ops ops;   /* the overlay's, shaped by TOP's */
  struct chunk_store top, base;
  uint64_t size;
  uint32_t chunk_size;
  uint64_t nr_chunks;
  uint8_t *held;                /* TOP holds chunk n (data or whiteout) */
  uint8_t *below;               /* BASE has chunk n; never changes */
  pthread_mutex_t copy_locks[COPY_STRIPES];
};

static bool
bit_get (const uint8_t *map, uint64_t n)
{
  return __atomic_load_n (&map[n >> 3], __ATOMIC_ACQUIRE) & (1u << (n & 7));
}

static void
bit_set (uint8_t *map, uint64_t n, bool yes)
{
  const uint8_t bit = (uint8_t) (1u << (n & 7));

  if (yes)
    __atomic_fetch_or (&map[n >> 3], bit, __ATOMIC_RELEASE);
  else
    __atomic_fetch_and (&map[n >> 3], (uint8_t) ~bit, __ATOMIC_RELEASE);
}

static uint32_t
span (const struct overlay_store *o, uint64_t n)
{
  return chunk_span_of (o->size, o->chunk_size, n);
}

static int
ov_read (void *store, uint64_t n, void *buf, uint32_t len, uint32_t off)
{
  struct overlay_store *o = store;

  if (bit_get (o->held, n))
    return o->top.ops->read (o->top.opaque, n, buf, len, off);
  return o->base.ops->read (o->base.opaque, n, buf, len, off);
}

/* Make TOP hold chunk n before a write of part of it: copy BASE's chunk
 * up.  Called with the chunk's copy lock held and HELD clear.
 */
static int
copy_up (struct overlay_store *o, uint64_t n)
{
  const uint32_t len = span (o, n);
  CLEANUP_FREE void *buf = NULL;
  int r;

  if (!bit_get (o->below, n)) {
    /* Nothing to copy.  Held from now on: a write that fails half-way
     * may have created the chunk in TOP, and BASE has nothing to show.
     */
    bit_set (o->held, n, true);
    return 0;
  }
  buf = malloc (len);
  if (buf == NULL) {
    nbdkit_error ("%s: malloc: %m", o->name);
    return -1;
  }
  r = o->base.ops->read (o->base.opaque, n, buf, len, 0);
  if (r == -1)
    return -1;
  if (r == 1) {
    nbdkit_error ("%s: chunk %" PRIu64 " of the base is listed but does not "
                  "exist: not copied up as zeros", o->name, n);
    errno = EIO;
    return -1;
  }
  if (o->top.ops->write (o->top.opaque, n, buf, len, 0, false) == -1)
    return -1;
  bit_set (o->held, n, true);
  return 0;
}

static int
ov_write (void *store, uint64_t n, const void *buf, uint32_t len,
          uint32_t off, bool fua)
{
  struct overlay_store *o = store;

  if (!bit_get (o->held, n)) {
    pthread_mutex_t *lock = &o->copy_locks[n % COPY_STRIPES];
    ACQUIRE_LOCK_FOR_CURRENT_SCOPE (lock);

    if (!bit_get (o->held, n)) {
      /* A whole chunk needs nothing from BASE.  Held only once written:
       * until then readers see BASE's chunk, whole.
       */
      if (off == 0 && len == span (o, n)) {
        if (o->top.ops->write (o->top.opaque, n, buf, len, off, fua) == -1)
          return -1;
        bit_set (o->held, n, true);
        return 0;
      }
      if (copy_up (o, n) == -1)
        return -1;
    }
  }
  return o->top.ops->write (o->top.opaque, n, buf, len, off, fua);
}

/* Leave a whiteout for chunk n in TOP: a chunk of length 0. */
static int
whiteout (struct overlay_store *o, uint64_t n, bool fua)
{
  static const char nothing[1];

  /* Cut an existing chunk to nothing (the file store truncates when a
   * punch reaches the end), then write 0 bytes, which creates the chunk
   * if TOP did not hold it.  Never remove then create: in between,
   * BASE's bytes would show through.
   */
  if (bit_get (o->held, n) && o->top.ops->punch &&
      o->top.ops->punch (o->top.opaque, n, span (o, n), 0, false) == -1)
    return -1;
  if (o->top.ops->write (o->top.opaque, n, nothing, 0, 0, fua) == -1)
    return -1;
  bit_set (o->held, n, true);
  return 0;
}

static int
ov_remove (void *store, const uint64_t *ns, size_t count, bool fua)
{
  struct overlay_store *o = store;
  CLEANUP_FREE uint64_t *gone = NULL;
  size_t i, k = 0;

  gone = malloc (count * sizeof *gone);
  if (gone == NULL) {
    nbdkit_error ("%s: malloc: %m", o->name);
    return -1;
  }
  for (i = 0; i < count; ++i) {
    if (bit_get (o->below, ns[i])) {
      if (whiteout (o, ns[i], fua) == -1)
        return -1;
    }
    else
      gone[k++] = ns[i];
  }
  if (k == 0)
    return 0;
  if (o->top.ops->remove (o->top.opaque, gone, k, fua) == -1)
    return -1;
  for (i = 0; i < k; ++i)
    bit_set (o->held, gone[i], false);
  return 0;
}

static int
ov_punch (void *store, uint64_t n, uint32_t len, uint32_t off, bool fua)
{
  struct overlay_store *o = store;

  if (!bit_get (o->held, n)) {
    pthread_mutex_t *lock = &o->copy_locks[n % COPY_STRIPES];
    ACQUIRE_LOCK_FOR_CURRENT_SCOPE (lock);

    if (!bit_get (o->held, n) && copy_up (o, n) == -1)
      return -1;
  }
  /* 1 (no data left) makes the engine remove the chunk: ov_remove then
   * leaves a whiteout if BASE has it.
   */
  return o->top.ops->punch (o->top.opaque, n, len, off, fua);
}

static int
ov_extents (void *store, uint64_t n, uint32_t len, uint32_t off,
            uint64_t base, struct nbdkit_extents *extents)
{
  struct overlay_store *o = store;
  const struct chunk_store *s = bit_get (o->held, n) ? &o->top : &o->base;

  /* Data that comes from BASE is data here. */
  if (s->ops->extents)
    return s->ops->extents (s->opaque, n, len, off, base, extents);
  return nbdkit_add_extent (extents, base + off, len, 0);
}

static int
ov_prefetch (void *store, uint64_t n, uint32_t len, uint32_t off)
{
  struct overlay_store *o = store;
  const struct chunk_store *s = bit_get (o->held, n) ? &o->top : &o->base;

  if (s->ops->prefetch)
    return s->ops->prefetch (s->opaque, n, len, off);
  return 0;
}

static int
ov_sync (void *store)
{
  struct overlay_store *o = store;
  return o->top.ops->sync (o->top.opaque);
}

static int
ov_list (void *store, void (*found) (void *opaque, uint64_t n), void *opaque)
{
  struct overlay_store *o = store;
  uint64_t i, n;

  for (i = 0; i < (o->nr_chunks + 7) / 8; ++i) {
    uint8_t byte = o->held[i] | o->below[i];
    if (byte == 0)
      continue;
    for (n = i * 8; n < i * 8 + 8 && n < o->nr_chunks; ++n)
      if (byte & (1u << (n & 7)))
        found (opaque, n);
  }
  return 0;
}

struct listing {
  struct overlay_store *o;
  uint8_t *map;
};

static void
found_chunk (void *opaque, uint64_t n)
{
  struct listing *l = opaque;

  /* Chunks past the end are strays the engine ignores too. */
  if (n < l->o->nr_chunks)
    bit_set (l->map, n, true);
}

struct overlay_store *
overlay_store_new (const char *name, struct chunk_store top,
                   struct chunk_store base, uint64_t size, uint32_t chunk_size)
{
  struct overlay_store *o;
  struct listing l;
  size_t bytes;
  unsigned i;

  o = calloc (1, sizeof *o);
  if (o == NULL) {
    nbdkit_error ("calloc: %m");
    return NULL;
  }
  for (i = 0; i < COPY_STRIPES; ++i)
    pthread_mutex_init (&o->copy_locks[i], NULL);
  o->top = top;
  o->base = base;
  o->size = size;
  o->chunk_size = chunk_size;
  o->nr_chunks = (size + chunk_size - 1) / chunk_size;
  bytes = (size_t) ((o->nr_chunks + 7) / 8);
  o->name = strdup (name);
  o->held = calloc (bytes ? bytes : 1, 1);
  o->below = calloc (bytes ? bytes : 1, 1);
  if (o->name == NULL || o->held == NULL || o->below == NULL) {
    nbdkit_error ("calloc: %m");
    goto err;
  }
  o->ops = (struct chunk_store_ops) {
    .partial_write = top.ops->partial_write,
    .read = ov_read,
    .write = ov_write,
    .remove = ov_remove,
    /* Without TOP's punch the engine rewrites partial chunks itself. */
    .punch = top.ops->punch ? ov_punch : NULL,
    .extents = ov_extents,
    .prefetch = ov_prefetch,
    .sync = ov_sync,
    .list = ov_list,
  };

  l.o = o;
  l.map = o->held;
  if (top.ops->list (top.opaque, found_chunk, &l) == -1)
    goto err;
  l.map = o->below;
  if (base.ops->list (base.opaque, found_chunk, &l) == -1)
    goto err;
  return o;

 err:
  overlay_store_free (o);
  return NULL;
}

void
overlay_store_free (struct overlay_store *o)
{
  unsigned i;

  if (o == NULL)
    return;
  for (i = 0; i < COPY_STRIPES; ++i)
    pthread_mutex_destroy (&o->copy_locks[i]);
  free (o->held);
  free (o->below);
  free (o->name);
  free (o);
}

struct chunk_store
overlay_store_as_store (struct overlay_store *o)
{
  return (struct chunk_store) { .ops = &o->ops, .opaque = o };
}
