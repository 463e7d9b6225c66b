/* shardkit: the chunk engine shared by every volume store.
 * GPL-3.0-or-later.
 *
 * A volume of SIZE bytes is cut into chunks of CHUNK_SIZE bytes (a power of
 * two); chunk n holds bytes [n*C, (n+1)*C).  The engine turns NBD requests
 * into per-chunk operations on a store (chunk files in a directory, chunk
 * objects in a bucket, ...), keeps absent chunks sparse, serialises
 * operations that rewrite or remove a chunk, and answers extents from the
 * map of which chunks exist.
 *
 * Locking: every chunk maps to one of a fixed set of reader/writer locks.
 * Reads hold it shared; trims, zeros, read-modify-writes and anything
 * that may remove a chunk hold it exclusive, so a write never races a
 * trim or a read-modify-write of the same chunk.  Writes to a store that
 * writes in place (partial_write) share it with each other.
 */
#ifndef SHARDKIT_CHUNK_ENGINE_H
#define SHARDKIT_CHUNK_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct nbdkit_extents;

/* The bytes of a volume of SIZE bytes that chunk N covers: the chunk
 * size, except for a last chunk cut short by the end of the volume.
 */
static inline uint32_t
chunk_span_of (uint64_t size, uint32_t chunk_size, uint64_t n)
{
  uint64_t left = size - n * chunk_size;
  return left < chunk_size ? (uint32_t) left : chunk_size;
}

/* What a store provides.  Every function returns -1 with errno set on
 * failure.  Offsets and lengths are within one chunk; the engine never
 * crosses a chunk boundary in one call.
 *
 * Stores nest: a store may be built from other stores (struct
 * chunk_store pairs) and keep this interface, so that the engine, the
 * volume layer and both plugins take it unchanged.  A store that reads
 * through to a base volume answers read() from its own chunks and
 * falls back to the base's for chunks it does not hold (list() then
 * reports the union); one that mirrors or erasure-codes writes to each
 * of its stores and reads from any that answers; one that encrypts
 * transforms what passes.  Two rules make that safe: "does not exist"
 * (read() returning 1) is an answer, never an error code, so an outer
 * store can tell absence from failure; and a failure may have landed
 * (see chunk_engine's maybe-absent chunks), so an outer store records
 * what a failed inner store may hold rather than assume it holds
 * nothing.
 */
struct chunk_store_ops {
  /* true: write() accepts any range inside a chunk.
   * false: write() is only ever given a whole chunk (off 0, the chunk's
   * full length) and the engine does read-modify-write for smaller
   * writes, under the chunk's exclusive lock.
   */
  bool partial_write;

  /* Read LEN bytes at OFF in chunk N into BUF.  Bytes beyond the stored
   * length of the chunk read as zeros.  Returns 0, or 1 if the chunk does
   * not exist (BUF is then undefined).
   */
  int (*read) (void *store, uint64_t n, void *buf, uint32_t len, uint32_t off);

  /* Write LEN bytes at OFF in chunk N, creating the chunk if needed.  With
   * FUA the data (and the chunk's existence) are durable on return.
   */
  int (*write) (void *store, uint64_t n, const void *buf, uint32_t len,
                uint32_t off, bool fua);

  /* Remove the COUNT chunks in NS[] (absent ones are not an error).  With
   * FUA the removal is durable on return.  Stores that can remove many
   * chunks in one request (S3 DeleteObjects) should.
   */
  int (*remove) (void *store, const uint64_t *ns, size_t count, bool fua);

  /* Optional.  Make [OFF, OFF+LEN) of existing chunk N read as zeros
   * without writing data (punch a hole).  Returns 0 if the chunk still
   * holds data, 1 if it now holds none (the engine then removes it).
   * Without it the engine rewrites the chunk with zeros.
   */
  int (*punch) (void *store, uint64_t n, uint32_t len, uint32_t off, bool fua);

  /* Optional.  Add extents for [OFF, OFF+LEN) of existing chunk N, whose
   * first byte is at volume offset BASE, to EXTENTS (nbdkit_add_extent).
   * Without it an existing chunk is reported as data.
   */
  int (*extents) (void *store, uint64_t n, uint32_t len, uint32_t off,
                  uint64_t base, struct nbdkit_extents *extents);

  /* Optional.  Start loading [OFF, OFF+LEN) of existing chunk N. */
  int (*prefetch) (void *store, uint64_t n, uint32_t len, uint32_t off);

  /* Make every completed write and removal durable. */
  int (*sync) (void *store);

  /* Call FOUND(OPAQUE, n) for every chunk that exists.  Used once when the
   * volume is opened, to build the map of present chunks.
   */
  int (*list) (void *store, void (*found) (void *opaque, uint64_t n),
               void *opaque);
};

/* A store: its operations and its own state, as an outer store holds
 * the stores it is built from.
 */
struct chunk_store {
  const struct chunk_store_ops *ops;
  void *opaque;
};

struct chunk_engine;

/* Create an engine over STORE.  Lists the store's chunks.  Returns NULL
 * with an error reported through nbdkit_error on failure.  NAME is used in
 * messages only.
 */
/* Volumes with more chunks than this are refused (the map of present
 * chunks would pass 512 MiB): 16 PiB at 4 MiB chunks.
 */
#define CHUNK_ENGINE_MAX_CHUNKS (UINT64_C (1) << 32)

extern struct chunk_engine *chunk_engine_new (const char *name,
                                              const struct chunk_store_ops *ops,
                                              void *store,
                                              uint64_t size,
                                              uint32_t chunk_size);
extern void chunk_engine_free (struct chunk_engine *e);

/* Let one request that spans several chunks work on up to N of them at
 * once (reads and writes; each chunk still under its own lock), with a
 * pool of N-1 worker threads owned by the engine.  N = 1, the default,
 * is serial.  For stores whose operations wait on the network (S3);
 * a local store gains nothing.  Call before serving requests (from the
 * process that will serve them: threads do not survive fork).
 * Returns 0, or -1 after nbdkit_error.
 */
extern int chunk_engine_set_parallelism (struct chunk_engine *e, unsigned n);

extern uint64_t chunk_engine_size (const struct chunk_engine *e);
extern uint32_t chunk_engine_chunk_size (const struct chunk_engine *e);
extern uint64_t chunk_engine_count_present (const struct chunk_engine *e);
extern bool chunk_engine_is_present (const struct chunk_engine *e, uint64_t n);

extern int chunk_engine_pread (struct chunk_engine *e, void *buf,
                               uint32_t count, uint64_t offset);
extern int chunk_engine_pwrite (struct chunk_engine *e, const void *buf,
                                uint32_t count, uint64_t offset, bool fua);
extern int chunk_engine_trim (struct chunk_engine *e, uint32_t count,
                              uint64_t offset, bool fua);
/* FAST: fail with ENOTSUP, having changed nothing, if zeroing would have
 * to write data (NBD_CMD_FLAG_FAST_ZERO).
 */
extern int chunk_engine_zero (struct chunk_engine *e, uint32_t count,
                              uint64_t offset, bool fast, bool fua);
extern int chunk_engine_flush (struct chunk_engine *e);
extern int chunk_engine_extents (struct chunk_engine *e, uint32_t count,
                                 uint64_t offset, bool req_one,
                                 struct nbdkit_extents *extents);
extern int chunk_engine_cache (struct chunk_engine *e, uint32_t count,
                               uint64_t offset);

/* True if the LEN bytes at BUF are all zero. */
extern bool buffer_is_zero (const void *buf, size_t len);

#endif /* SHARDKIT_CHUNK_ENGINE_H */
