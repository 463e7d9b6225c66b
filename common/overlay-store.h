/* shardkit: the overlay store, a volume read through to its base.
 * GPL-3.0-or-later.
 *
 * A clone, or a volume that has been snapshotted, holds only the chunks
 * written since; every other chunk is its base's (a snapshot, itself
 * perhaps an overlay: chains).  The overlay is a store (chunk-engine.h,
 * "Stores nest") over two stores:
 *
 *   TOP   this volume's own chunks, written here;
 *   BASE  the base volume's store, only ever read.
 *
 * read() answers from TOP for a chunk TOP holds, else from BASE.
 * A trim or zero that would remove a chunk BASE has leaves a whiteout
 * in TOP instead: a chunk of length 0, which reads as zeros (stores
 * read bytes past a chunk's stored length as zeros) and hides BASE's.
 * A partial write to a chunk TOP does not hold copies BASE's chunk up
 * first, under a per-chunk mutex, so that two writers of one chunk
 * copy it once.  list() is the union; a whiteout is listed (it reads as
 * zeros, and TOP's extents report it as a hole).
 *
 * Which chunks TOP holds (data or whiteout) and which BASE has are two
 * bitmaps built at creation from one listing of each: BASE never
 * changes under a running overlay (a base is a snapshot, read-only).
 */
#ifndef SHARDKIT_OVERLAY_STORE_H
#define SHARDKIT_OVERLAY_STORE_H

#include <stdint.h>

#include "chunk-engine.h"

/* A volume with more bases than this (its base, its base's base...)
 * is refused when it is opened.
 */
#define OVERLAY_MAX_DEPTH 16

struct overlay_store;

/* Build an overlay of TOP over BASE for a volume of SIZE bytes in chunks
 * of CHUNK_SIZE (both stores' volumes have these).  Lists both stores.
 * NAME is for messages.  Returns NULL after nbdkit_error.  The stores
 * stay their owner's: overlay_store_free does not free them.
 */
extern struct overlay_store *overlay_store_new (const char *name,
                                                struct chunk_store top,
                                                struct chunk_store base,
                                                uint64_t size,
                                                uint32_t chunk_size);
extern void overlay_store_free (struct overlay_store *o);

/* The overlay as a store, for an engine or an overlay above it. */
extern struct chunk_store overlay_store_as_store (struct overlay_store *o);

#endif /* SHARDKIT_OVERLAY_STORE_H */
