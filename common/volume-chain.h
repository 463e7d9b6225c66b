/* shardkit: the chain of bases of a layered volume, checked the same
 * way by every store.
 * GPL-3.0-or-later.
 *
 * A clone or a snapshotted volume names its base (base=, base-uuid=);
 * the base may have a base of its own, up to OVERLAY_MAX_DEPTH.  A
 * hand-edited or half-copied namespace can break that chain: a base
 * that is missing, one that is another volume of the same name (its
 * uuid differs), a cycle, a chain too deep, a base of another size.
 * Each is refused with one line naming the volume that was asked for,
 * before anything is served from it.
 *
 * The stores (plugins/sharded-file, plugins/s3-object) open the layers
 * themselves; they call these as they go down the chain:
 *
 *   volume_chain_start (&c, NAME)
 *   for each layer with base=B:
 *     volume_chain_push (&c, WHERE, layer, B)         cycle? too deep?
 *     read B's metadata: absent -> volume_chain_missing (&c, WHERE, B)
 *     volume_chain_attach (&c, WHERE, layer, ...)       the right base?
 *                                                        (then overlay)
 */
#ifndef SHARDKIT_VOLUME_CHAIN_H
#define SHARDKIT_VOLUME_CHAIN_H

#include "overlay-store.h"
#include "volume-meta.h"

/* How a store opens a volume (file_volume_open, s3_volume_open). */
/* A server, not the volume tool: a snapshot is opened read-only (its
 * lock shared) however it is asked for.
 */
#define VOLUME_OPEN_SERVE       1
/* Only the volume's own chunks, its bases not opened: the volume tool
 * deletes a volume whose chain is broken (a base deleted by hand).
 */
#define VOLUME_OPEN_OWN_CHUNKS  2
/* The metadata, the lock or lease, and the chain of bases checked
 * from their metadata, but no chunk listed: no overlay, no engine (the
 * volume's own store still works).  What snapshot and clone need, and
 * a server's start-up check: it costs the same for a volume of any
 * size.
 */
#define VOLUME_OPEN_META_ONLY   4
/* A location of a set, opened by the set (volume-set.h): its set keys
 * are expected, and it gets no engine of its own (the set's store is
 * the engine's).
 */
#define VOLUME_OPEN_LOCATION    8

struct volume_chain {
  const char *names[OVERLAY_MAX_DEPTH + 2];     /* top first; borrowed */
  unsigned depth;
};

static inline void
volume_chain_start (struct volume_chain *c, const char *top)
{
  c->names[0] = top;
  c->depth = 1;
}

/* True if the volume being opened is a base (not the one asked for). */
static inline bool
volume_chain_in_base (const struct volume_chain *c)
{
  return c->depth > 1;
}

/* LAYER (in WHERE, for messages) names BASE as its base: refuse a
 * cycle or a chain longer than OVERLAY_MAX_DEPTH, else add BASE.
 * BASE must outlive the chain.  Returns 0, or -1 after nbdkit_error
 * (EINVAL).
 */
extern int volume_chain_push (struct volume_chain *c, const char *where,
                              const char *layer, const char *base);

/* The base BASE of the chain does not exist: one nbdkit_error naming
 * the volume asked for, errno ENOENT.  Returns -1.
 */
extern int volume_chain_missing (const struct volume_chain *c,
                                 const char *where, const char *base);

/* Once LAYER's base is open (BM its metadata and BASE its store, both
 * NULL if opening it failed): refuse a base whose uuid is not
 * base-uuid= (another volume of that name) or whose size or chunk size
 * differ (EINVAL).  Then, unless FLAGS has VOLUME_OPEN_META_ONLY, build
 * the overlay of *TOP (LAYER's own chunks) over BASE: *OVERLAY gets it
 * and *TOP becomes its store.  Returns 0, or -1 after nbdkit_error.
 */
extern int volume_chain_attach (const struct volume_chain *c,
                                const char *where, const char *layer,
                                const struct volume_meta *m,
                                const struct volume_meta *bm,
                                const struct chunk_store *base,
                                unsigned flags, struct chunk_store *top,
                                struct overlay_store **overlay);

#endif /* SHARDKIT_VOLUME_CHAIN_H */
